//! HTTP servers: the event endpoint (controllers POST events to `/`) and the receiver
//! endpoint (`/hook/<digest>`), on axum. All decisions are delegated to the pure modules;
//! this module only moves bytes, keeps the in-memory registry and records warnings.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{any, post};
use axum::Router;
use tokio::sync::Semaphore;

use crate::alert::{Alert, Warning};
use crate::dedup::{Deduper, DEFAULT_INTERVAL};
use crate::event::{Event, ObjectReference, MAX_BODY_BYTES};
use crate::provider::{self, Provider, ProviderConfig, Secrets};
use crate::receiver::{self, GcrTokenValidator, Receiver, Target, RECONCILE_REQUEST_ANNOTATION};
use crate::sender::{RetryPolicy, Sender};

/// A boxed future, for the object-safe [`Reconciler`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The Kubernetes side of receivers: list objects by labels and set an annotation.
pub trait Reconciler: Send + Sync {
    /// Names of `kind` objects in `namespace` carrying all `labels`.
    fn list<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Vec<String>, String>>;
    /// Merge-patches `annotations[key] = value` on the object.
    fn annotate<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// An object held by [`MemoryReconciler`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryObject {
    /// `group/version`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// An in-memory object store implementing [`Reconciler`] (tests, dry runs).
#[derive(Debug, Default)]
pub struct MemoryReconciler {
    /// The objects.
    pub objects: Mutex<Vec<MemoryObject>>,
}

impl MemoryReconciler {
    /// Adds an object.
    pub fn add(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) {
        if let Ok(mut objects) = self.objects.lock() {
            objects.push(MemoryObject {
                api_version: api_version.into(),
                kind: kind.into(),
                namespace: namespace.into(),
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect(),
                annotations: BTreeMap::new(),
            });
        }
    }

    /// An object's annotation.
    pub fn annotation(&self, kind: &str, namespace: &str, name: &str, key: &str) -> Option<String> {
        let objects = self.objects.lock().ok()?;
        objects
            .iter()
            .find(|o| o.kind == kind && o.namespace == namespace && o.name == name)
            .and_then(|o| o.annotations.get(key).cloned())
    }
}

impl Reconciler for MemoryReconciler {
    fn list<'a>(&'a self, t: &'a Target) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let objects = self.objects.lock().map_err(|e| e.to_string())?;
            Ok(objects
                .iter()
                .filter(|o| {
                    o.api_version == t.api_version && o.kind == t.kind && o.namespace == t.namespace
                })
                .filter(|o| {
                    t.match_labels
                        .iter()
                        .all(|(k, v)| o.labels.get(k) == Some(v))
                })
                .map(|o| o.name.clone())
                .collect())
        })
    }

    fn annotate<'a>(
        &'a self,
        t: &'a Target,
        name: &'a str,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut objects = self.objects.lock().map_err(|e| e.to_string())?;
            let obj = objects
                .iter_mut()
                .find(|o| {
                    o.api_version == t.api_version
                        && o.kind == t.kind
                        && o.namespace == t.namespace
                        && o.name == name
                })
                .ok_or_else(|| {
                    format!(
                        "unable to annotate {} \"{}/{name}\" error: not found",
                        t.kind, t.namespace
                    )
                })?;
            obj.annotations.insert(key.into(), value.into());
            Ok(())
        })
    }
}

/// The objects the servers act on (what the controller would read from the API server).
#[derive(Debug, Default)]
pub struct Registry {
    /// Alerts (all namespaces).
    pub alerts: Vec<Alert>,
    /// Providers.
    pub providers: Vec<Provider>,
    /// Receivers.
    pub receivers: Vec<Receiver>,
    /// Secrets.
    pub secrets: Secrets,
    /// Labels of involved objects, for `matchLabels` (`(kind, namespace, name)` → labels).
    pub object_labels: BTreeMap<(String, String, String), BTreeMap<String, String>>,
}

/// Server options (notification-controller flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--rate-limit-interval`.
    pub rate_limit_interval: Duration,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Retry policy for providers.
    pub retry: RetryPolicy,
    /// Maximum deliveries in flight (bounds memory under load).
    pub max_in_flight: usize,
    /// Overrides fixed SaaS API bases (tests only).
    pub api_base_override: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_limit_interval: DEFAULT_INTERVAL,
            no_cross_namespace_refs: false,
            retry: RetryPolicy::default(),
            max_in_flight: 256,
            api_base_override: None,
        }
    }
}

/// Shared server state.
pub struct Notifier {
    /// The objects.
    pub registry: RwLock<Registry>,
    options: Options,
    deduper: Mutex<Deduper>,
    sender: Sender,
    in_flight: Arc<Semaphore>,
    warnings: Mutex<Vec<Warning>>,
    reconciler: Arc<dyn Reconciler>,
    gcr: Option<Arc<dyn GcrTokenValidator>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("options", &self.options)
            .finish()
    }
}

impl Notifier {
    /// A notifier over `registry`, reconciling through `reconciler`.
    pub fn new(registry: Registry, options: Options, reconciler: Arc<dyn Reconciler>) -> Arc<Self> {
        Arc::new(Notifier {
            registry: RwLock::new(registry),
            deduper: Mutex::new(Deduper::new(options.rate_limit_interval)),
            sender: Sender::new(options.retry),
            in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            warnings: Mutex::new(Vec::new()),
            options,
            reconciler,
            gcr: None,
        })
    }

    /// Same, with a Google token validator for `gcr` receivers.
    pub fn with_gcr(
        registry: Registry,
        options: Options,
        reconciler: Arc<dyn Reconciler>,
        gcr: Arc<dyn GcrTokenValidator>,
    ) -> Arc<Self> {
        let mut n = Notifier::new(registry, options, reconciler);
        if let Some(inner) = Arc::get_mut(&mut n) {
            inner.gcr = Some(gcr);
        }
        n
    }

    /// Warning events recorded so far (what Flux would emit as Kubernetes Events).
    pub fn warnings(&self) -> Vec<Warning> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn warn(&self, w: Warning) {
        tracing::warn!(object = %w.object, reason = %w.reason, "{}", w.message);
        if let Ok(mut all) = self.warnings.lock() {
            all.push(w);
        }
    }

    /// Waits until all in-flight deliveries have finished.
    pub async fn drain(&self) {
        let n = u32::try_from(self.options.max_in_flight.max(1)).unwrap_or(u32::MAX);
        if let Ok(permits) = self.in_flight.acquire_many(n).await {
            drop(permits);
        }
    }

    /// Handles one event body; returns the HTTP status the event server answers.
    pub async fn handle_event(self: &Arc<Self>, body: &[u8]) -> (StatusCode, String) {
        let mut event = match Event::from_json(body) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("decoding the request body failed: {e}");
                return (StatusCode::BAD_REQUEST, e.to_string());
            }
        };
        event.cleanup_metadata();
        let admitted = self
            .deduper
            .lock()
            .map_or(true, |mut d| d.admit(&event.dedup_key(), Instant::now()));
        if !admitted {
            tracing::debug!("Discarding event, rate limiting duplicate events");
            return (StatusCode::TOO_MANY_REQUESTS, "rate limited".into());
        }
        event.exclude_internal_metadata();
        let (deliveries, warnings) = self.plan(&event);
        for w in warnings {
            self.warn(w);
        }
        if deliveries.is_empty() {
            tracing::info!("discarding event, no alerts found for the involved object");
            return (StatusCode::ACCEPTED, String::new());
        }
        for (alert_id, cfg, outbound) in deliveries {
            let Ok(permit) = Arc::clone(&self.in_flight).acquire_owned().await else {
                break;
            };
            let me = Arc::clone(self);
            let object = event.object_string();
            tokio::spawn(async move {
                let timeout = cfg.timeout;
                let mut failure = None;
                for out in &outbound {
                    let result = tokio::time::timeout(timeout, me.sender.send(&cfg, out)).await;
                    match result {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failure = Some(e.to_string()),
                        Err(_) => {
                            failure = Some(format!("provider timeout of {timeout:?} exceeded"));
                        }
                    }
                    if failure.is_some() {
                        break;
                    }
                }
                if let Some(err) = failure {
                    me.warn(Warning {
                        object: alert_id,
                        reason: "NotificationDispatchFailed".into(),
                        message: format!(
                            "failed to send notification for {object}: {}",
                            cfg.mask(&err)
                        ),
                    });
                }
                drop(permit);
            });
        }
        (StatusCode::ACCEPTED, String::new())
    }

    /// Pure-ish planning under the registry lock: matching alerts → provider configs →
    /// payloads. Returns `(alert, provider config, deliveries)` triples and warnings.
    #[allow(clippy::type_complexity)]
    fn plan(
        &self,
        event: &Event,
    ) -> (
        Vec<(String, ProviderConfig, Vec<provider::Outbound>)>,
        Vec<Warning>,
    ) {
        let Ok(reg) = self.registry.read() else {
            return (Vec::new(), Vec::new());
        };
        let labels = |o: &ObjectReference| {
            reg.object_labels
                .get(&(o.kind.clone(), o.namespace.clone(), o.name.clone()))
                .cloned()
        };
        let (alerts, mut warnings) = crate::alert::route(event, &reg.alerts, &labels);
        let mut out = Vec::new();
        let mut merge_warnings = Vec::new();
        for alert in alerts {
            let alert_id = alert.object_string();
            let mut fail = |message: String| {
                warnings.push(Warning {
                    object: alert_id.clone(),
                    reason: "NotificationDispatchFailed".into(),
                    message: format!(
                        "failed to dispatch notification for {}: {message}",
                        event.object_string()
                    ),
                });
            };
            if self.options.no_cross_namespace_refs
                && event.involved_object.namespace != alert.metadata.namespace
            {
                fail(format!(
                    "discarding event, access denied to cross-namespace sources: alert '{}/{}' can't process event from '{}', cross-namespace references have been blocked",
                    alert.metadata.namespace,
                    alert.metadata.name,
                    event.object_string()
                ));
                continue;
            }
            let Some(p) = reg.providers.iter().find(|p| {
                p.metadata.namespace == alert.metadata.namespace
                    && p.metadata.name == alert.spec.provider_ref.name
            }) else {
                fail(format!(
                    "failed to read provider: Provider.notification.toolkit.fluxcd.io \"{}\" not found",
                    alert.spec.provider_ref.name
                ));
                continue;
            };
            if p.spec.suspend {
                continue;
            }
            let mut cfg = match p.resolve(&reg.secrets) {
                Ok(c) => c,
                Err(e) => {
                    fail(format!(
                        "failed to initialize notifier for provider '{}': {e}",
                        p.metadata.name
                    ));
                    continue;
                }
            };
            cfg.api_base_override
                .clone_from(&self.options.api_base_override);
            let Some(kind) = cfg.provider_type else {
                continue;
            };
            if !kind.accepts(event) {
                continue;
            }
            let notification = alert.notification(event, &mut merge_warnings);
            match provider::build(&notification, &cfg) {
                Ok(deliveries) if deliveries.is_empty() => {}
                Ok(deliveries) => out.push((alert_id, cfg, deliveries)),
                Err(e) => fail(cfg.mask(&e.to_string())),
            }
        }
        warnings.extend(merge_warnings);
        (out, warnings)
    }

    /// Handles a webhook request to `path`.
    pub async fn handle_hook(
        self: &Arc<Self>,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (StatusCode, String) {
        let found = {
            let Ok(reg) = self.registry.read() else {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "registry poisoned".into(),
                );
            };
            reg.receivers.iter().find_map(|r| {
                let name = &r.spec.secret_ref.as_ref()?.name;
                let secret =
                    provider::SecretSource::secret(&reg.secrets, &r.metadata.namespace, name)?;
                let token = String::from_utf8_lossy(secret.get("token")?).to_string();
                (r.webhook_path(&token) == path).then(|| (r.clone(), secret))
            })
        };
        let Some((receiver, secret)) = found else {
            return (StatusCode::NOT_FOUND, "receiver not found".into());
        };
        if receiver.spec.suspend {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "receiver is suspended".into(),
            );
        }
        let verified = match receiver::verify(
            &receiver,
            &secret,
            headers,
            body,
            self.gcr.as_deref(),
        ) {
            Ok(v) => v,
            Err(e) => {
                let status = match e {
                    crate::Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::BAD_REQUEST,
                };
                // The message never contains the token.
                tracing::error!(receiver = %receiver.id(), "unable to process the request: {e}");
                return (status, e.to_string());
            }
        };
        if let Some(event) = &verified.event {
            tracing::info!(receiver = %receiver.id(), "handling {} event: {event}", receiver.spec.type_);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let value = crate::time::go_time_string(now.as_secs() as i64, now.subsec_nanos());
        let mut errors = Vec::new();
        for target in receiver::targets(&receiver, self.options.no_cross_namespace_refs) {
            let target = match target {
                Ok(t) => t,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let names = if target.name == "*" {
                match self.reconciler.list(&target).await {
                    Ok(n) => n,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            } else {
                vec![target.name.clone()]
            };
            for name in names {
                if let Err(e) = self
                    .reconciler
                    .annotate(&target, &name, RECONCILE_REQUEST_ANNOTATION, &value)
                    .await
                {
                    errors.push(e);
                } else {
                    tracing::info!(receiver = %receiver.id(), "resource {} {}/{name} annotated", target.kind, target.namespace);
                }
            }
        }
        if errors.is_empty() {
            (StatusCode::OK, String::new())
        } else {
            tracing::error!(receiver = %receiver.id(), "unable to request reconciliation: {}", errors.join("; "));
            (StatusCode::INTERNAL_SERVER_ERROR, errors.join("; "))
        }
    }
}

async fn event_endpoint(State(n): State<Arc<Notifier>>, body: Bytes) -> (StatusCode, String) {
    n.handle_event(&body).await
}

async fn hook_endpoint(
    State(n): State<Arc<Notifier>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    n.handle_hook(&format!("/hook/{digest}"), &headers, &body)
        .await
}

/// The event server router (`POST /`), with the 3 MiB body limit (413 above it).
pub fn event_router(n: Arc<Notifier>) -> Router {
    Router::new()
        .route("/", post(event_endpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(n)
}

/// The receiver server router (`/hook/<digest>`), with the 3 MiB body limit.
pub fn receiver_router(n: Arc<Notifier>) -> Router {
    Router::new()
        .route("/hook/{digest}", any(hook_endpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(n)
}

/// Serves `router` on `listener` until the task is dropped or fails.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}
