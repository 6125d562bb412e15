//! notification-controller: keeps flux-notify's registry in step with the Alerts, Providers,
//! Receivers and their Secrets in the cluster, reconciles Receiver status (`webhookPath`,
//! `Ready`), serves the event endpoint (`--events-addr` of the other controllers) and the
//! receiver endpoint, and annotates the objects a receiver targets through the API.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::Client;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use flux_api::constants::{condition, reason, status as cond_status};
use flux_notify::receiver::Target;
use flux_notify::server::{self, BoxFuture, Notifier, Options, Reconciler, Registry};

use super::common::{dynamic_api, now_time, resource_for};

/// Controller name (field manager, event reporter).
pub const CONTROLLER: &str = "notification-controller";

/// What the controller needs to run.
#[derive(Debug, Clone)]
pub struct NotificationOptions {
    /// Event endpoint listen address (Flux: `:9090`).
    pub events_addr: SocketAddr,
    /// Receiver endpoint listen address (Flux: `:9292`).
    pub receiver_addr: SocketAddr,
    /// Watch one namespace only (`--watch-all-namespaces=false`).
    pub namespace: Option<String>,
    /// `--rate-limit-interval`.
    pub rate_limit_interval: Duration,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Full re-read of objects and Secrets even without watch events (Secret rotation).
    pub resync: Duration,
}

/// A running notification-controller.
#[derive(Debug)]
pub struct NotificationController {
    /// Bound event endpoint.
    pub events_addr: SocketAddr,
    /// Bound receiver endpoint.
    pub receiver_addr: SocketAddr,
    /// The shared notifier (registry, warnings).
    pub notifier: Arc<Notifier>,
    tasks: Vec<JoinHandle<()>>,
}

impl NotificationController {
    /// Stops the servers and the sync loop.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Resolves when any task ends (a server failed or the sync loop gave up).
    pub async fn wait(&mut self) {
        if self.tasks.is_empty() {
            return;
        }
        let tasks = std::mem::take(&mut self.tasks);
        let _ = futures_util::future::select_all(tasks).await;
    }
}

impl Drop for NotificationController {
    fn drop(&mut self) {
        self.stop();
    }
}

fn flux_resource<K: kube::Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// Binds both servers, reads the objects once and starts the sync loop.
pub async fn start(client: Client, opts: NotificationOptions) -> Result<NotificationController> {
    let notify_opts = Options {
        rate_limit_interval: opts.rate_limit_interval,
        no_cross_namespace_refs: opts.no_cross_namespace_refs,
        ..Options::default()
    };
    let reconciler = Arc::new(KubeReconciler {
        client: client.clone(),
    });
    let notifier = Notifier::new(Registry::default(), notify_opts, reconciler);
    let sync = Sync {
        client,
        namespace: opts.namespace.clone(),
        notifier: Arc::clone(&notifier),
    };
    sync.resync()
        .await
        .context("initial read of notification objects")?;

    let events = TcpListener::bind(opts.events_addr)
        .await
        .with_context(|| format!("binding the event endpoint {}", opts.events_addr))?;
    let receivers = TcpListener::bind(opts.receiver_addr)
        .await
        .with_context(|| format!("binding the receiver endpoint {}", opts.receiver_addr))?;
    let events_addr = events.local_addr()?;
    let receiver_addr = receivers.local_addr()?;
    let event_router = server::event_router(Arc::clone(&notifier));
    let receiver_router = server::receiver_router(Arc::clone(&notifier));
    let tasks = vec![
        tokio::spawn(async move {
            if let Err(e) = server::serve(events, event_router).await {
                tracing::error!("event server failed: {e}");
            }
        }),
        tokio::spawn(async move {
            if let Err(e) = server::serve(receivers, receiver_router).await {
                tracing::error!("receiver server failed: {e}");
            }
        }),
        tokio::spawn(sync.run(opts.resync)),
    ];
    Ok(NotificationController {
        events_addr,
        receiver_addr,
        notifier,
        tasks,
    })
}

/// Reads the cluster into the notifier's registry.
struct Sync {
    client: Client,
    namespace: Option<String>,
    notifier: Arc<Notifier>,
}

impl Sync {
    fn api(&self, resource: &ApiResource) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Re-reads on every watch event of the three kinds, and every `resync` anyway.
    async fn run(self, resync: Duration) {
        let kinds = [
            flux_resource::<flux_api::notification::Alert>(),
            flux_resource::<flux_api::notification::Provider>(),
            flux_resource::<flux_api::notification::Receiver>(),
        ];
        let streams = kinds.iter().map(|r| {
            watcher::watcher(self.api(r), watcher::Config::default())
                .map(|_| ())
                .boxed()
        });
        let mut changes = futures_util::stream::select_all(streams);
        let mut tick = tokio::time::interval(resync.max(Duration::from_secs(1)));
        loop {
            tokio::select! {
                next = changes.next() => {
                    if next.is_none() {
                        return;
                    }
                    // Coalesce a burst of watch events into one read.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ = tick.tick() => {}
            }
            if let Err(e) = self.resync().await {
                tracing::warn!("reading notification objects failed: {e:#}");
            }
        }
    }

    async fn list(&self, resource: &ApiResource) -> Result<Vec<serde_json::Value>> {
        let list = self
            .api(resource)
            .list(&ListParams::default())
            .await
            .with_context(|| format!("listing {}", resource.plural))?;
        list.items
            .into_iter()
            .map(|o| serde_json::to_value(o).context("encoding object"))
            .collect()
    }

    async fn resync(&self) -> Result<()> {
        let alerts = self
            .list(&flux_resource::<flux_api::notification::Alert>())
            .await?;
        let providers = self
            .list(&flux_resource::<flux_api::notification::Provider>())
            .await?;
        let receivers = self
            .list(&flux_resource::<flux_api::notification::Receiver>())
            .await?;
        let mut registry = Registry::default();
        let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
        for value in &alerts {
            match serde_json::from_value(value.clone()) {
                Ok(alert) => registry.alerts.push(alert),
                Err(e) => tracing::warn!("skipping Alert {}: {e}", object_id(value)),
            }
        }
        for value in &providers {
            match serde_json::from_value::<flux_notify::provider::Provider>(value.clone()) {
                Ok(provider) => {
                    let ns = provider.metadata.namespace.clone();
                    for field in ["secretRef", "certSecretRef", "proxySecretRef"] {
                        if let Some(name) = value
                            .pointer(&format!("/spec/{field}/name"))
                            .and_then(|v| v.as_str())
                        {
                            wanted.insert((ns.clone(), name.to_string()));
                        }
                    }
                    registry.providers.push(provider);
                }
                Err(e) => tracing::warn!("skipping Provider {}: {e}", object_id(value)),
            }
        }
        let mut parsed_receivers = Vec::new();
        for value in &receivers {
            match serde_json::from_value::<flux_notify::receiver::Receiver>(value.clone()) {
                Ok(receiver) => {
                    if let Some(secret) = &receiver.spec.secret_ref {
                        wanted.insert((receiver.metadata.namespace.clone(), secret.name.clone()));
                    }
                    parsed_receivers.push((value, receiver));
                }
                Err(e) => tracing::warn!("skipping Receiver {}: {e}", object_id(value)),
            }
        }
        for (ns, name) in wanted {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
            match api.get_opt(&name).await {
                Ok(Some(secret)) => {
                    let data: BTreeMap<String, Vec<u8>> = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    registry.secrets.0.insert((ns, name), data);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("reading Secret {ns}/{name}: {e}"),
            }
        }
        self.read_object_labels(&mut registry).await;
        for (value, receiver) in parsed_receivers {
            let status = receiver_status(&receiver, &registry.secrets);
            if let Err(e) = self.write_receiver_status(value, &receiver, status).await {
                tracing::warn!("Receiver {}: {e:#}", receiver.id());
            }
            registry.receivers.push(receiver);
        }
        if let Ok(mut current) = self.notifier.registry.write() {
            *current = registry;
        }
        Ok(())
    }

    /// Labels of the objects that `eventSources` with `matchLabels` select (read at every
    /// sync), so routing can match them without an API call per event.
    async fn read_object_labels(&self, registry: &mut Registry) {
        let mut wanted: BTreeSet<(String, String, String)> = BTreeSet::new();
        for alert in &registry.alerts {
            for source in &alert.spec.event_sources {
                if source.match_labels.as_ref().is_none_or(BTreeMap::is_empty) {
                    continue;
                }
                let api_version = if source.api_version.is_empty() {
                    flux_kind_api_version(&source.kind)
                        .unwrap_or_default()
                        .to_string()
                } else {
                    source.api_version.clone()
                };
                let namespace = if source.namespace.is_empty() {
                    alert.metadata.namespace.clone()
                } else {
                    source.namespace.clone()
                };
                if !api_version.is_empty() {
                    wanted.insert((api_version, source.kind.clone(), namespace));
                }
            }
        }
        for (api_version, kind, namespace) in wanted {
            let resource = match resource_for(&self.client, &api_version, &kind).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("matchLabels: {e:#}");
                    continue;
                }
            };
            let api = dynamic_api(&self.client, &resource, &namespace);
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    for object in list.items {
                        let name = object.metadata.name.clone().unwrap_or_default();
                        registry.object_labels.insert(
                            (kind.clone(), namespace.clone(), name),
                            object.metadata.labels.clone().unwrap_or_default(),
                        );
                    }
                }
                Err(e) => tracing::warn!("matchLabels: listing {kind} in {namespace}: {e}"),
            }
        }
    }

    async fn write_receiver_status(
        &self,
        value: &serde_json::Value,
        receiver: &flux_notify::receiver::Receiver,
        desired: ReceiverStatus,
    ) -> Result<()> {
        let current = value.get("status").cloned().unwrap_or_default();
        let mut conditions: Vec<flux_api::meta::Condition> = current
            .get("conditions")
            .cloned()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default();
        let generation = value
            .pointer("/metadata/generation")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_default();
        let ready = flux_api::conditions::new_condition(
            condition::READY,
            if desired.ready {
                cond_status::TRUE
            } else {
                cond_status::FALSE
            },
            &desired.reason,
            &desired.message,
            Some(generation),
            now_time(),
        );
        flux_api::conditions::set(&mut conditions, ready);
        let mut status = serde_json::json!({
            "conditions": conditions,
            "observedGeneration": generation,
            "webhookPath": desired.webhook_path,
        });
        let annotations: Option<BTreeMap<String, String>> = value
            .pointer("/metadata/annotations")
            .cloned()
            .and_then(|a| serde_json::from_value(a).ok());
        if let Some(requested) = flux_api::conditions::reconcile_request(annotations.as_ref()) {
            status["lastHandledReconcileAt"] = serde_json::Value::String(requested.to_string());
        } else if let Some(previous) = current.get("lastHandledReconcileAt") {
            status["lastHandledReconcileAt"] = previous.clone();
        }
        if same_status(&current, &status) {
            return Ok(());
        }
        let api = dynamic_api(
            &self.client,
            &flux_resource::<flux_api::notification::Receiver>(),
            &receiver.metadata.namespace,
        );
        api.patch_status(
            &receiver.metadata.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await
        .context("patching status")?;
        Ok(())
    }
}

/// The served version of a Flux kind that can be an event source.
pub fn flux_kind_api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "GitRepository" | "OCIRepository" | "HelmRepository" | "HelmChart" | "Bucket"
        | "ExternalArtifact" => "source.toolkit.fluxcd.io/v1",
        "Kustomization" => "kustomize.toolkit.fluxcd.io/v1",
        "HelmRelease" => "helm.toolkit.fluxcd.io/v2",
        "ImageRepository" | "ImagePolicy" => "image.toolkit.fluxcd.io/v1",
        "ImageUpdateAutomation" => "image.toolkit.fluxcd.io/v1",
        "Alert" | "Provider" => "notification.toolkit.fluxcd.io/v1beta3",
        "Receiver" => "notification.toolkit.fluxcd.io/v1",
        _ => return None,
    })
}

/// True when the status already says what `desired` says (conditions compared without
/// their transition times), so no write (and no watch event loop) happens.
fn same_status(current: &serde_json::Value, desired: &serde_json::Value) -> bool {
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(conds) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
            for c in conds {
                if let Some(obj) = c.as_object_mut() {
                    obj.remove("lastTransitionTime");
                }
            }
        }
        if let Some(obj) = v.as_object_mut() {
            obj.retain(|_, field| !field.is_null());
        }
        v
    };
    strip(current) == strip(desired)
}

fn object_id(value: &serde_json::Value) -> String {
    let get = |p: &str| {
        value
            .pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    format!("{}/{}", get("/metadata/namespace"), get("/metadata/name"))
}

/// The Receiver status Flux computes (no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverStatus {
    /// Ready=True?
    pub ready: bool,
    /// Ready reason.
    pub reason: String,
    /// Ready message.
    pub message: String,
    /// `status.webhookPath` (null when the token is missing).
    pub webhook_path: Option<String>,
}

/// Computes the Receiver status from its Secret: `Succeeded` with the webhook path, or
/// `TokenNotFound` when the Secret or its `token` key is missing.
pub fn receiver_status(
    receiver: &flux_notify::receiver::Receiver,
    secrets: &flux_notify::provider::Secrets,
) -> ReceiverStatus {
    if let Err(e) = receiver.receiver_type() {
        return ReceiverStatus {
            ready: false,
            reason: "ValidationFailed".into(),
            message: e.to_string(),
            webhook_path: None,
        };
    }
    let ns = &receiver.metadata.namespace;
    let Some(secret_ref) = &receiver.spec.secret_ref else {
        return token_not_found(format!(
            "unable to read token from secret '{ns}/': secretRef is not set"
        ));
    };
    let Some(secret) = secrets.0.get(&(ns.clone(), secret_ref.name.clone())) else {
        return token_not_found(format!(
            "unable to read token from secret '{ns}/{}' error: Secret \"{}\" not found",
            secret_ref.name, secret_ref.name
        ));
    };
    let Some(token) = secret.get("token") else {
        return token_not_found(format!(
            "invalid '{}' secret data: required field 'token'",
            secret_ref.name
        ));
    };
    let path = receiver.webhook_path(&String::from_utf8_lossy(token));
    ReceiverStatus {
        ready: true,
        reason: reason::SUCCEEDED.into(),
        message: format!("Receiver initialized for path: {path}"),
        webhook_path: Some(path),
    }
}

fn token_not_found(message: String) -> ReceiverStatus {
    ReceiverStatus {
        ready: false,
        reason: "TokenNotFound".into(),
        message,
        webhook_path: None,
    }
}

/// Receiver targets in the cluster: list by labels, annotate by merge patch.
struct KubeReconciler {
    client: Client,
}

impl Reconciler for KubeReconciler {
    fn list<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let resource = resource_for(&self.client, &target.api_version, &target.kind)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let api = dynamic_api(&self.client, &resource, &target.namespace);
            let selector = target
                .match_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| {
                    format!(
                        "failed listing resources in namespace {} by matching labels {selector:?}: {e}",
                        target.namespace
                    )
                })?;
            Ok(list
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect())
        })
    }

    fn annotate<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let resource = resource_for(&self.client, &target.api_version, &target.kind)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let api = dynamic_api(&self.client, &resource, &target.namespace);
            let patch = serde_json::json!({ "metadata": { "annotations": { key: value } } });
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    format!(
                        "unable to annotate {} '{}/{name}' error: {e}",
                        target.kind, target.namespace
                    )
                })?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(secret: Option<&str>) -> flux_notify::receiver::Receiver {
        let mut yaml = String::from(
            "metadata: {name: hook, namespace: apps}\nspec:\n  type: github\n  resources: []\n",
        );
        if let Some(name) = secret {
            yaml.push_str("  secretRef: {name: ");
            yaml.push_str(name);
            yaml.push_str("}\n");
        }
        flux_notify::receiver::Receiver::from_yaml(&yaml).unwrap()
    }

    #[test]
    fn receiver_ready_with_the_flux_webhook_path() {
        let mut secrets = flux_notify::provider::Secrets::default();
        secrets.insert("apps", "tok", &[("token", "s3cret")]);
        let status = receiver_status(&receiver(Some("tok")), &secrets);
        let expected = flux_notify::receiver::webhook_path("s3cret", "hook", "apps");
        assert!(status.ready);
        assert_eq!(status.reason, "Succeeded");
        assert_eq!(
            status.message,
            format!("Receiver initialized for path: {expected}")
        );
        assert_eq!(status.webhook_path.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn receiver_without_token_is_not_ready() {
        let mut secrets = flux_notify::provider::Secrets::default();
        let missing = receiver_status(&receiver(Some("tok")), &secrets);
        assert!(!missing.ready);
        assert_eq!(missing.reason, "TokenNotFound");
        assert_eq!(missing.webhook_path, None);
        secrets.insert("apps", "tok", &[("other", "x")]);
        let no_key = receiver_status(&receiver(Some("tok")), &secrets);
        assert_eq!(no_key.reason, "TokenNotFound");
        assert!(no_key.message.contains("'token'"));
    }

    #[test]
    fn status_comparison_ignores_transition_times() {
        let a = serde_json::json!({"conditions": [{"type": "Ready", "lastTransitionTime": "1"}], "webhookPath": "/hook/x"});
        let b = serde_json::json!({"conditions": [{"type": "Ready", "lastTransitionTime": "2"}], "webhookPath": "/hook/x", "lastHandledReconcileAt": null});
        assert!(same_status(&a, &b));
        let c = serde_json::json!({"conditions": [{"type": "Ready"}], "webhookPath": "/hook/y"});
        assert!(!same_status(&a, &c));
    }
}
