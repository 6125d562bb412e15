//! kustomize-controller: reconciles Kustomizations — source artifact → build → decrypt →
//! substitute → staged server-side apply → inventory → prune → health checks — and writes
//! status as Flux does (`Ready`/`Reconciling`/`Stalled`/`Healthy`, `Applied revision: …`).
//!
//! Building is in [`super::kustomize_build`], applying and pruning in
//! [`super::kustomize_apply`]; this module sequences them and owns status and requeues.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_api::conditions;
use flux_api::constants::{condition, reason, FINALIZER};
use flux_api::kustomize::KustomizationSourceKind;
use flux_api::kustomize::{DeletionPolicy, Kustomization, KustomizationStatus, ValuesSourceKind};
use flux_api::meta::{Condition, ResourceInventory};
use flux_api::source::{Bucket, GitRepository, OCIRepository};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::Value;

use super::kustomize_apply::{self as apply, Applier, Change, ObjectId};
use super::kustomize_build::{self as build, BuildInput, FetchError};
use crate::runtime::access::{self, AccessError, AccessOptions};
use crate::runtime::events::EventType;
use crate::runtime::gate::{Gate, Trigger};
use crate::runtime::metrics::{Metrics, ObjectKey};
use crate::runtime::requeue;
use crate::runtime::serve::EventSink;
use crate::runtime::status;

/// Controller name (field manager, event source).
pub const CONTROLLER: &str = flux_api::constants::controller::KUSTOMIZE;

/// Settings of one kustomize-controller.
#[derive(Clone, Debug)]
pub struct KustomizeOptions {
    /// Namespace to watch; every namespace when `None`.
    pub namespace: Option<String>,
    /// Concurrent reconciles.
    pub concurrency: u16,
    /// Interval jitter in percent.
    pub jitter_percentage: u8,
    /// Requeue while a dependency or the source is not ready (`--requeue-dependency`).
    pub requeue_dependency: Duration,
    /// Health-check polling period (Flux: 5 s).
    pub health_poll: Duration,
    /// Refuse cross-namespace source references.
    pub no_cross_namespace_refs: bool,
    /// Artifact download retries (`--http-retry`).
    pub http_retry: u32,
    /// Impersonation and remote-cluster settings.
    pub access: AccessOptions,
    /// `--watch-label-selector` (sharding); empty watches every Kustomization.
    pub label_selector: String,
}

impl Default for KustomizeOptions {
    fn default() -> Self {
        KustomizeOptions {
            namespace: None,
            concurrency: 4,
            jitter_percentage: 5,
            requeue_dependency: Duration::from_secs(30),
            health_poll: Duration::from_secs(5),
            no_cross_namespace_refs: false,
            http_retry: 9,
            access: AccessOptions::default(),
            label_selector: String::new(),
        }
    }
}

/// Shared state of the Kustomization reconciler.
pub struct KustomizeContext {
    client: kube::Client,
    http: reqwest::Client,
    applier: Applier,
    events: EventSink,
    metrics: Arc<Metrics>,
    gate: Gate,
    options: KustomizeOptions,
}

impl KustomizeContext {
    /// Builds the reconciler state.
    pub fn new(
        client: kube::Client,
        metrics: Arc<Metrics>,
        events_addr: &str,
        options: KustomizeOptions,
    ) -> anyhow::Result<Arc<Self>> {
        // No idle connection reuse: a source-controller that went away must be noticed on the
        // next download, not hidden by a kept-alive connection to its old server task.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Arc::new(KustomizeContext {
            events: EventSink::new(Some(client.clone()), CONTROLLER, events_addr),
            applier: Applier::new(client.clone()),
            client,
            http,
            metrics,
            gate: Gate::default(),
            options,
        }))
    }
}

/// Errors that end a reconcile early (API failures outside apply); retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum KustomizeError {
    /// A Kubernetes API call failed.
    #[error("{action} {object}: {source}")]
    Kube {
        /// What was being done.
        action: &'static str,
        /// `namespace/name`.
        object: String,
        /// The error.
        source: kube::Error,
    },
}

/// Runs the Kustomization controller (watching Kustomizations and the GitRepositories they
/// use) until `shutdown` resolves.
pub async fn run(
    context: Arc<KustomizeContext>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let client = context.client.clone();
    let (api, git, oci): (Api<Kustomization>, Api<GitRepository>, Api<OCIRepository>) =
        match &context.options.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client),
            ),
        };
    let controller = Controller::new(
        api,
        crate::runtime::flags::primary_watch_config(&context.options.label_selector),
    );
    let (git_store, oci_store) = (controller.store(), controller.store());
    let bucket_store = controller.store();
    let buckets: Api<Bucket> = match &context.options.namespace {
        Some(ns) => Api::namespaced(context.client.clone(), ns),
        None => Api::all(context.client.clone()),
    };
    controller
        .watches(
            buckets,
            watcher::Config::default(),
            move |source: Bucket| users_of(&bucket_store, KustomizationSourceKind::Bucket, &source),
        )
        .watches(
            git,
            watcher::Config::default(),
            move |source: GitRepository| {
                users_of(&git_store, KustomizationSourceKind::GitRepository, &source)
            },
        )
        .watches(
            oci,
            watcher::Config::default(),
            move |source: OCIRepository| {
                users_of(&oci_store, KustomizationSourceKind::OCIRepository, &source)
            },
        )
        .with_config(ControllerConfig::default().concurrency(context.options.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::clone(&context))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "Kustomization reconcile error");
            }
        })
        .await;
    Ok(())
}

/// The Kustomizations in `store` whose `sourceRef` is `source` (of `kind`).
fn users_of<S: kube::Resource>(
    store: &kube::runtime::reflector::Store<Kustomization>,
    kind: KustomizationSourceKind,
    source: &S,
) -> Vec<ObjectRef<Kustomization>> {
    let (name, namespace) = (source.name_any(), source.namespace().unwrap_or_default());
    store
        .state()
        .into_iter()
        .filter(|k| {
            let reference = &k.spec.source_ref;
            reference.kind == kind
                && reference.name == name
                && reference
                    .namespace
                    .clone()
                    .unwrap_or_else(|| k.namespace().unwrap_or_default())
                    == namespace
        })
        .map(|k| ObjectRef::from_obj(k.as_ref()))
        .collect()
}

fn error_policy(_: Arc<Kustomization>, error: &KustomizeError, _: Arc<KustomizeContext>) -> Action {
    tracing::warn!(%error, "Kustomization reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn parse_duration(value: Option<&str>) -> Option<Duration> {
    value.and_then(|v| flux_api::duration::parse(v).ok())
}

/// `spec.timeout`, else interval − 30 s with a 30 s floor (Flux's `GetTimeout`).
pub fn timeout_of(object: &Kustomization) -> Duration {
    parse_duration(object.spec.timeout.as_deref()).unwrap_or_else(|| {
        let interval =
            parse_duration(Some(&object.spec.interval)).unwrap_or(Duration::from_secs(60));
        interval
            .saturating_sub(Duration::from_secs(30))
            .max(Duration::from_secs(30))
    })
}

/// Go's `time.Duration.String()` for whole/fractional seconds (`1m0s`, `30s`, `1.5s`).
pub fn go_duration(duration: Duration) -> String {
    flux_api::duration::format(duration)
}

/// How a reconcile attempt ended, for status and requeue.
#[derive(Debug)]
enum Failure {
    /// Ready=False with this reason/message, requeue after `after`.
    Retry {
        reason: &'static str,
        message: String,
        after: Duration,
    },
    /// Ready=False + Stalled; no requeue.
    Stalled {
        reason: &'static str,
        message: String,
    },
}

/// Reconciles one Kustomization.
pub async fn reconcile(
    object: Arc<Kustomization>,
    context: Arc<KustomizeContext>,
) -> Result<Action, KustomizeError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let key = status::key(object.as_ref());
    let api: Api<Kustomization> = Api::namespaced(context.client.clone(), &namespace);
    let kube_error = |action: &'static str| {
        let key = key.clone();
        move |source| KustomizeError::Kube {
            action,
            object: key,
            source,
        }
    };
    let metric_key = ObjectKey::new("Kustomization", &name, &namespace);
    let deleting = object.metadata.deletion_timestamp.is_some();
    let step = status::finalizer_step(&api, object.as_ref(), FINALIZER, || async {
        finalize(&object, &context).await;
        context.metrics.delete_object(&metric_key);
        context.gate.forget(&key);
    })
    .await
    .map_err(|(action, error)| kube_error(action)(error))?;
    if let Some(action) = step {
        return Ok(action);
    }
    let suspended = object.spec.suspend.unwrap_or(false);
    context.metrics.record_suspend(&metric_key, suspended);
    if suspended {
        tracing::info!(object = %key, "Reconciliation is suspended for this object");
        context.gate.forget(&key);
        return Ok(Action::await_change());
    }
    let interval = parse_duration(Some(&object.spec.interval)).unwrap_or(Duration::from_secs(600));
    let retry_interval = parse_duration(object.spec.retry_interval.as_deref()).unwrap_or(interval);

    // Source.
    let source_ref = &object.spec.source_ref;
    let source_namespace = source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| namespace.clone());
    let source_id = format!(
        "{:?}/{source_namespace}/{}",
        source_ref.kind, source_ref.name
    );
    let source = if context.options.no_cross_namespace_refs && source_namespace != namespace {
        Err(Failure::Stalled {
            reason: reason::ACCESS_DENIED,
            message: format!(
                "cannot access {source_id}, cross-namespace references have been disabled"
            ),
        })
    } else {
        let found = match source_ref.kind {
            KustomizationSourceKind::GitRepository => Ok({
                let sources: Api<GitRepository> =
                    Api::namespaced(context.client.clone(), &source_namespace);
                sources
                    .get_opt(&source_ref.name)
                    .await
                    .map_err(kube_error("reading source of"))?
                    .map(|s| s.status.and_then(|s| s.artifact))
            }),
            KustomizationSourceKind::OCIRepository => Ok({
                let sources: Api<OCIRepository> =
                    Api::namespaced(context.client.clone(), &source_namespace);
                sources
                    .get_opt(&source_ref.name)
                    .await
                    .map_err(kube_error("reading source of"))?
                    .map(|s| s.status.and_then(|s| s.artifact))
            }),
            KustomizationSourceKind::Bucket => Ok({
                let sources: Api<Bucket> =
                    Api::namespaced(context.client.clone(), &source_namespace);
                sources
                    .get_opt(&source_ref.name)
                    .await
                    .map_err(kube_error("reading source of"))?
                    .map(|s| s.status.and_then(|s| s.artifact))
            }),
            KustomizationSourceKind::ExternalArtifact => Err(Failure::Retry {
                reason: reason::ARTIFACT_FAILED,
                message: format!(
                    "source kind {:?} is not supported by this controller yet",
                    source_ref.kind
                ),
                after: retry_interval,
            }),
        };
        match found {
            Err(failure) => Err(failure),
            Ok(None) => Err(Failure::Retry {
                reason: reason::ARTIFACT_FAILED,
                message: format!("Source '{source_id}' not found"),
                after: retry_interval,
            }),
            Ok(Some(artifact)) => match artifact {
                None => Err(Failure::Retry {
                    reason: reason::ARTIFACT_FAILED,
                    message: format!(
                        "Source artifact not found, retrying in {}",
                        go_duration(context.options.requeue_dependency)
                    ),
                    after: context.options.requeue_dependency,
                }),
                Some(artifact) => Ok(artifact),
            },
        }
    };
    let trigger = Trigger {
        generation: object.metadata.generation,
        requested_at: conditions::reconcile_request(object.metadata.annotations.as_ref())
            .map(str::to_string),
        deleting,
        extra: source
            .as_ref()
            .map(|a| format!("{}@{}", a.revision, a.digest))
            .unwrap_or_default(),
    };
    if let Some(wait) = context.gate.check(&key, &trigger, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    let started = Instant::now();
    let mut new_status = object.status.clone().unwrap_or_default();
    new_status.last_handled_reconcile_at = conditions::handle_reconcile_request(
        object.metadata.annotations.as_ref(),
        new_status.last_handled_reconcile_at.as_deref(),
    );
    let generation = object.metadata.generation;

    let outcome = match source {
        Err(failure) => Err(failure),
        Ok(artifact) => match check_dependencies(&object, &context, &artifact.revision).await {
            Err(message) => {
                context.events.emit(
                    object.as_ref(),
                    EventType::Normal,
                    reason::DEPENDENCY_NOT_READY,
                    &format!(
                        "Dependencies do not meet ready condition, retrying in {}",
                        go_duration(context.options.requeue_dependency)
                    ),
                    BTreeMap::new(),
                );
                Err(Failure::Retry {
                    reason: reason::DEPENDENCY_NOT_READY,
                    message,
                    after: context.options.requeue_dependency,
                })
            }
            Ok(()) => {
                apply_revision(
                    &object,
                    &context,
                    &api,
                    &mut new_status,
                    &artifact,
                    retry_interval,
                )
                .await
            }
        },
    };

    let now = status::now();
    let mut list: Vec<Condition> = new_status.conditions.take().unwrap_or_default();
    let action = match outcome {
        Ok(revision) => {
            let message = format!("Applied revision: {revision}");
            conditions::mark_ready(
                &mut list,
                reason::RECONCILIATION_SUCCEEDED,
                &message,
                generation,
                &now,
            );
            new_status.observed_generation = generation;
            new_status.last_applied_revision = Some(revision.clone());
            let wait = requeue::jitter_random(interval, context.options.jitter_percentage);
            let metadata = BTreeMap::from([
                ("revision".to_string(), revision.clone()),
                (
                    flux_api::constants::event_metadata::COMMIT_STATUS.to_string(),
                    flux_api::constants::event_metadata::COMMIT_STATUS_UPDATE.to_string(),
                ),
            ]);
            context.events.emit(
                object.as_ref(),
                EventType::Normal,
                reason::RECONCILIATION_SUCCEEDED,
                &format!(
                    "Reconciliation finished in {}, next run in {}",
                    go_duration(Duration::from_millis(started.elapsed().as_millis() as u64)),
                    go_duration(interval)
                ),
                metadata,
            );
            context.gate.done(&key, trigger, Instant::now(), wait);
            Action::requeue(wait)
        }
        Err(Failure::Retry {
            reason,
            message,
            after,
        }) => {
            conditions::mark_failed(&mut list, reason, &message, generation, &now);
            if reason != reason::DEPENDENCY_NOT_READY {
                context.events.emit(
                    object.as_ref(),
                    EventType::Warning,
                    reason,
                    &message,
                    BTreeMap::from([(
                        "revision".to_string(),
                        new_status
                            .last_attempted_revision
                            .clone()
                            .unwrap_or_default(),
                    )]),
                );
            }
            context.gate.done(&key, trigger, Instant::now(), after);
            Action::requeue(after)
        }
        Err(Failure::Stalled { reason, message }) => {
            conditions::mark_stalled(&mut list, reason, &message, generation, &now);
            new_status.observed_generation = generation;
            context.events.emit(
                object.as_ref(),
                EventType::Warning,
                reason,
                &message,
                BTreeMap::new(),
            );
            context.gate.done(
                &key,
                trigger,
                Instant::now(),
                Duration::from_secs(24 * 3600),
            );
            Action::await_change()
        }
    };
    new_status.conditions = Some(list);
    status::patch_status(
        &api,
        &name,
        &new_status,
        &["inventory", "lastHandledReconcileAt"],
    )
    .await
    .map_err(kube_error("patching status of"))?;
    context
        .metrics
        .observe_duration(&metric_key, started.elapsed().as_secs_f64());
    context.metrics.record_conditions(
        &metric_key,
        new_status.conditions.as_deref().unwrap_or_default(),
    );
    Ok(action)
}

/// Flux's built-in dependency check: each dependency exists, is Ready for its current
/// generation, and (same source) has applied the current source revision.
async fn check_dependencies(
    object: &Kustomization,
    context: &KustomizeContext,
    revision: &str,
) -> Result<(), String> {
    let namespace = object.namespace().unwrap_or_default();
    for dependency in object.spec.depends_on.as_deref().unwrap_or_default() {
        let dep_namespace = dependency
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.clone());
        let id = format!("{dep_namespace}/{}", dependency.name);
        let api: Api<Kustomization> = Api::namespaced(context.client.clone(), &dep_namespace);
        let dep = match api.get_opt(&dependency.name).await {
            Ok(Some(dep)) => dep,
            Ok(None) => return Err(format!("dependency '{id}' not found")),
            Err(error) => return Err(format!("unable to get '{id}' dependency: {error}")),
        };
        let dep_status = dep.status.clone().unwrap_or_default();
        let list = dep_status.conditions.as_deref().unwrap_or_default();
        if list.is_empty()
            || dep.metadata.generation != dep_status.observed_generation
            || !conditions::is_true(list, condition::READY)
        {
            return Err(format!("dependency '{id}' is not ready"));
        }
        let same_source = dep.spec.source_ref.kind == object.spec.source_ref.kind
            && dep.spec.source_ref.name == object.spec.source_ref.name
            && dep
                .spec
                .source_ref
                .namespace
                .clone()
                .unwrap_or_else(|| dep_namespace.clone())
                == object
                    .spec
                    .source_ref
                    .namespace
                    .clone()
                    .unwrap_or_else(|| namespace.clone());
        if same_source && dep_status.last_applied_revision.as_deref() != Some(revision) {
            return Err(format!("dependency '{id}' revision is not up to date"));
        }
    }
    Ok(())
}

/// Reads `postBuild.substituteFrom` objects and the inline map.
async fn variables(
    object: &Kustomization,
    context: &KustomizeContext,
) -> Result<Option<flux_kustomize::postbuild::Variables>, String> {
    let Some(post_build) = &object.spec.post_build else {
        return Ok(None);
    };
    let namespace = object.namespace().unwrap_or_default();
    let mut vars = flux_kustomize::postbuild::Variables::new();
    for source in post_build.substitute_from.as_deref().unwrap_or_default() {
        let (kind, data) = match source.kind {
            ValuesSourceKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(context.client.clone(), &namespace);
                let found = api.get_opt(&source.name).await.map_err(|e| {
                    format!("substitute from 'ConfigMap/{}' error: {e}", source.name)
                })?;
                ("ConfigMap", found.map(|c| c.data.unwrap_or_default()))
            }
            ValuesSourceKind::Secret => {
                let api: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
                let found = api
                    .get_opt(&source.name)
                    .await
                    .map_err(|e| format!("substitute from 'Secret/{}' error: {e}", source.name))?;
                (
                    "Secret",
                    found.map(|s| {
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect()
                    }),
                )
            }
        };
        vars.add_source(
            kind,
            &source.name,
            source.optional.unwrap_or(false),
            data.as_ref(),
        )
        .map_err(|e| e.to_string())?;
    }
    if let Some(inline) = &post_build.substitute {
        vars.add_inline(inline).map_err(|e| e.to_string())?;
    }
    Ok(Some(vars))
}

/// SOPS keys from `decryption.secretRef` (`*.agekey`, `*.asc`).
async fn decryption_keys(
    object: &Kustomization,
    context: &KustomizeContext,
) -> Result<Option<flux_sops::KeySet>, String> {
    let Some(decryption) = &object.spec.decryption else {
        return Ok(None);
    };
    let mut keys = flux_sops::KeySet::new();
    if let Some(reference) = &decryption.secret_ref {
        let namespace = object.namespace().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
        let secret = api
            .get_opt(&reference.name)
            .await
            .map_err(|e| {
                format!(
                    "cannot get decryption Secret '{namespace}/{}': {e}",
                    reference.name
                )
            })?
            .ok_or_else(|| {
                format!(
                    "cannot get decryption Secret '{namespace}/{}': secrets \"{}\" not found",
                    reference.name, reference.name
                )
            })?;
        for (key, value) in secret.data.unwrap_or_default() {
            let text = String::from_utf8_lossy(&value.0).into_owned();
            let source = format!("Secret/{namespace}/{} key {key}", reference.name);
            let extension = std::path::Path::new(&key)
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase());
            if extension.as_deref() == Some("agekey") {
                keys.add_age_identities(&text, &source)
                    .map_err(|e| e.to_string())?;
            } else if extension.as_deref() == Some("asc") {
                keys.add_pgp_armored(&text, &source)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(Some(keys))
}

/// Fetch, build, apply, prune and health-check one artifact; returns the applied revision.
/// Status fields (`lastAttemptedRevision`, `inventory`, `Healthy`) are updated in place.
async fn apply_revision(
    object: &Kustomization,
    context: &KustomizeContext,
    api: &Api<Kustomization>,
    new_status: &mut KustomizationStatus,
    artifact: &flux_api::meta::Artifact,
    retry_interval: Duration,
) -> Result<String, Failure> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let generation = object.metadata.generation;
    let revision = artifact.revision.clone();
    let timeout = timeout_of(object);
    let retry = |reason: &'static str, message: String| Failure::Retry {
        reason,
        message,
        after: retry_interval,
    };

    // Progress: Reconciling=True, Ready=Unknown.
    {
        let mut list = new_status.conditions.clone().unwrap_or_default();
        conditions::mark_reconciling(
            &mut list,
            &format!(
                "Fetching manifests for revision {revision} with a timeout of {}",
                go_duration(timeout)
            ),
            generation,
            &status::now(),
        );
        new_status.conditions = Some(list);
        new_status.last_attempted_revision = Some(revision.clone());
        if let Err(error) = status::patch_status(api, &name, &*new_status, &[]).await {
            return Err(retry(
                reason::RECONCILIATION_FAILED,
                format!("status update failed: {error}"),
            ));
        }
    }

    let work = tempfile::Builder::new()
        .prefix("kustomization-")
        .tempdir()
        .map_err(|e| retry(reason::DIRECTORY_CREATION_FAILED, e.to_string()))?;
    match tokio::time::timeout(
        timeout,
        build::fetch_artifact(
            &context.http,
            &artifact.url,
            &artifact.digest,
            work.path(),
            context.options.http_retry,
        ),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(FetchError::NotFound)) => {
            return Err(Failure::Retry {
                reason: reason::ARTIFACT_FAILED,
                message: FetchError::NotFound.to_string(),
                after: context.options.requeue_dependency,
            })
        }
        Ok(Err(error)) => return Err(retry(reason::ARTIFACT_FAILED, error.to_string())),
        Err(_) => {
            return Err(retry(
                reason::ARTIFACT_FAILED,
                format!("artifact download timed out after {}", go_duration(timeout)),
            ))
        }
    }

    let keys = decryption_keys(object, context)
        .await
        .map_err(|e| retry(reason::BUILD_FAILED, e))?;
    let vars = variables(object, context)
        .await
        .map_err(|e| retry(reason::BUILD_FAILED, e))?;
    let root = work.path().to_path_buf();
    let (spec, owner_name, owner_namespace) =
        (object.spec.clone(), name.clone(), namespace.clone());
    let built = tokio::task::spawn_blocking(move || {
        build::build(
            &root,
            &BuildInput {
                name: &owner_name,
                namespace: &owner_namespace,
                spec: &spec,
                keys: keys.as_ref(),
                variables: vars.as_ref(),
            },
        )
    })
    .await
    .map_err(|e| retry(reason::BUILD_FAILED, e.to_string()))?;
    let mut objects = match built {
        Ok(objects) => objects,
        Err(message) if message.starts_with("kustomization path not found") => {
            return Err(retry(reason::ARTIFACT_FAILED, message))
        }
        Err(message) => return Err(retry(reason::BUILD_FAILED, message)),
    };
    drop(work);

    // Apply, prune and health checks act as the object's service account / in its cluster.
    let scoped = applier_for(object, context)
        .await
        .map_err(|e| retry(reason::RECONCILIATION_FAILED, e.to_string()))?;
    let applier = scoped.as_ref().unwrap_or(&context.applier);

    // Apply-time guard and normalisation.
    for manifest in &mut objects {
        let id = ObjectId::of(manifest);
        if id.kind.is_empty() || id.name.is_empty() || id.version.is_empty() {
            return Err(retry(
                reason::BUILD_FAILED,
                format!("object {} has no apiVersion, kind or name", id.display()),
            ));
        }
        if id.kind == "Secret"
            && id.group.is_empty()
            && manifest.get("sops").is_some()
            && !flux_sops_disabled(manifest)
        {
            return Err(retry(
                reason::RECONCILIATION_FAILED,
                format!(
                    "{} is SOPS encrypted, configuring decryption is required for this secret to be reconciled",
                    id.display()
                ),
            ));
        }
        apply::normalize(manifest);
    }
    apply::sort_for_apply(&mut objects);

    let force = object.spec.force.unwrap_or(false);
    let (changes, failed) = applier.apply_all(&objects, force).await;
    if let Some(error) = failed {
        let mut message = error.to_string();
        let applied: Vec<String> = changes
            .iter()
            .filter(|c| c.action != "unchanged")
            .map(Change::line)
            .collect();
        if !applied.is_empty() {
            message = format!("{message}\n{}", applied.join("\n"));
        }
        return Err(retry(reason::RECONCILIATION_FAILED, message));
    }
    let changed: Vec<String> = changes
        .iter()
        .filter(|c| c.action == "created" || c.action == "configured")
        .map(Change::line)
        .collect();
    if !changed.is_empty() {
        context.events.emit(
            object,
            EventType::Normal,
            reason::PROGRESSING,
            &changed.join("\n"),
            BTreeMap::from([("revision".to_string(), revision.clone())]),
        );
    }

    // Inventory and prune.
    let old_inventory = new_status.inventory.clone().unwrap_or_default();
    let mut inventory = apply::inventory_of(&changes);
    if object.spec.prune {
        let stale = apply::stale_entries(&old_inventory, &inventory);
        let mut deleted = Vec::new();
        let mut failed = Vec::new();
        for id in &stale {
            match applier.prune_one(id, &name, &namespace).await {
                Ok(change) if change.action == "deleted" => deleted.push(change.line()),
                Ok(_) => {}
                Err(error) => failed.push((id.clone(), error.to_string())),
            }
        }
        if !deleted.is_empty() {
            context.events.emit(
                object,
                EventType::Normal,
                reason::PROGRESSING,
                &deleted.join("\n"),
                BTreeMap::from([("revision".to_string(), revision.clone())]),
            );
        }
        if !failed.is_empty() {
            for (id, _) in &failed {
                inventory.entries.push(flux_api::meta::ResourceRef {
                    id: id.inventory_id(),
                    v: id.version.clone(),
                });
            }
            new_status.inventory = Some(inventory);
            let message = failed
                .iter()
                .map(|(_, e)| e.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            return Err(retry(reason::PRUNE_FAILED, message));
        }
    }
    new_status.inventory = Some(inventory);

    // Health checks.
    let targets = health_targets(object, &changes);
    let mut list = new_status.conditions.clone().unwrap_or_default();
    if targets.is_empty() {
        conditions::delete(&mut list, condition::HEALTHY);
        new_status.conditions = Some(list);
        return Ok(revision);
    }
    let message = format!(
        "Running health checks for revision {revision} with a timeout of {}",
        go_duration(timeout)
    );
    let now = status::now();
    conditions::mark_true(
        &mut list,
        condition::RECONCILING,
        reason::PROGRESSING,
        &message,
        generation,
        now.clone(),
    );
    conditions::mark_unknown(
        &mut list,
        condition::HEALTHY,
        reason::PROGRESSING,
        &message,
        generation,
        now,
    );
    new_status.conditions = Some(list);
    let _ = status::patch_status(api, &name, &*new_status, &["inventory"]).await;
    let started = Instant::now();
    let result = wait_healthy(applier, context.options.health_poll, &targets, timeout).await;
    let elapsed = go_duration(Duration::from_millis(started.elapsed().as_millis() as u64));
    let mut list = new_status.conditions.clone().unwrap_or_default();
    let now = status::now();
    match result {
        Ok(()) => {
            let was_healthy = conditions::is_true(&list, condition::HEALTHY);
            let message = format!("Health check passed in {elapsed}");
            conditions::mark_true(
                &mut list,
                condition::HEALTHY,
                reason::SUCCEEDED,
                &message,
                generation,
                now,
            );
            new_status.conditions = Some(list);
            if !was_healthy {
                context.events.emit(
                    object,
                    EventType::Normal,
                    reason::SUCCEEDED,
                    &message,
                    BTreeMap::new(),
                );
            }
            Ok(revision)
        }
        Err(error) => {
            conditions::mark_false(
                &mut list,
                condition::HEALTHY,
                reason::HEALTH_CHECK_FAILED,
                &error,
                generation,
                now,
            );
            new_status.conditions = Some(list);
            Err(retry(
                reason::HEALTH_CHECK_FAILED,
                format!("health check failed after {elapsed}: {error}"),
            ))
        }
    }
}

/// An applier over the object's impersonated or remote client; `None` when the controller's
/// own shared applier (and its discovery cache) serves.
async fn applier_for(
    object: &Kustomization,
    context: &KustomizeContext,
) -> Result<Option<Applier>, AccessError> {
    let namespace = object.namespace().unwrap_or_default();
    let target = access::Target {
        namespace: &namespace,
        service_account: object.spec.service_account_name.as_deref(),
        kube_config: object.spec.kube_config.as_ref(),
    };
    if target.is_default(&context.options.access) {
        return Ok(None);
    }
    let client = access::target_client(&context.client, target, &context.options.access).await?;
    Ok(Some(Applier::new(client)))
}

fn flux_sops_disabled(manifest: &Value) -> bool {
    manifest
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(flux_api::constants::annotation::KUSTOMIZE_DECRYPT))
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
}

/// What to wait for: every applied (not skipped) object with `wait`, else `healthChecks`;
/// never this Kustomization itself.
fn health_targets(object: &Kustomization, changes: &[Change]) -> Vec<ObjectId> {
    let (name, namespace) = (object.name_any(), object.namespace().unwrap_or_default());
    let targets: Vec<ObjectId> = if object.spec.wait.unwrap_or(false) {
        changes
            .iter()
            .filter(|c| c.action != "skipped")
            .map(|c| c.id.clone())
            .collect()
    } else {
        object
            .spec
            .health_checks
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|reference| {
                let api_version = reference
                    .api_version
                    .clone()
                    .unwrap_or_else(|| "apps/v1".into());
                let (group, version) = match api_version.rsplit_once('/') {
                    Some((g, v)) => (g.to_string(), v.to_string()),
                    None => (String::new(), api_version.clone()),
                };
                ObjectId {
                    group,
                    version,
                    kind: reference.kind.clone(),
                    namespace: reference.namespace.clone().unwrap_or_default(),
                    name: reference.name.clone(),
                }
            })
            .collect()
    };
    targets
        .into_iter()
        .filter(|t| !(t.kind == "Kustomization" && t.name == name && t.namespace == namespace))
        .collect()
}

/// Polls until every target is Current (or one Failed, or the timeout passes).
async fn wait_healthy(
    applier: &Applier,
    poll: Duration,
    targets: &[ObjectId],
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut pending = Vec::new();
        let mut failed = Vec::new();
        for target in targets {
            let status = match applier.get(target).await {
                Ok(Some(live)) => {
                    match flux_api::health::evaluate(&live, k8s_openapi::jiff::Timestamp::now()) {
                        Ok(health) => health.status.to_string(),
                        Err(error) => format!("Unknown: {error}"),
                    }
                }
                Ok(None) => "NotFound".to_string(),
                Err(error) => format!("Unknown: {error}"),
            };
            if status == "Failed" {
                failed.push(format!("{} status: '{status}'", target.display()));
            } else if status != "Current" {
                pending.push(format!("{} status: '{status}'", target.display()));
            }
        }
        if pending.is_empty() && failed.is_empty() {
            return Ok(());
        }
        if !failed.is_empty() {
            failed.extend(pending);
            return Err(format!(
                "failed early due to stalled resources: [{}]",
                failed.join(", ")
            ));
        }
        if Instant::now() + poll > deadline {
            return Err(format!("timeout waiting for: [{}]", pending.join(", ")));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Deletion: prune the inventory according to `deletionPolicy` (not when suspended).
async fn finalize(object: &Kustomization, context: &KustomizeContext) {
    let inventory: ResourceInventory = object
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    if object.spec.suspend.unwrap_or(false) || inventory.entries.is_empty() {
        return;
    }
    let delete = match object.spec.deletion_policy.unwrap_or_default() {
        DeletionPolicy::MirrorPrune => object.spec.prune,
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::Orphan => false,
    };
    if !delete {
        return;
    }
    let (name, namespace) = (object.name_any(), object.namespace().unwrap_or_default());
    let stale = apply::stale_entries(&inventory, &ResourceInventory::default());
    // Without a usable identity or cluster nothing is deleted (Flux skips pruning then).
    let scoped = match applier_for(object, context).await {
        Ok(scoped) => scoped,
        Err(error) => {
            let objects: Vec<String> = stale.iter().map(ObjectId::display).collect();
            context.events.emit(
                object,
                EventType::Warning,
                reason::PRUNE_FAILED,
                &format!("unable to prune objects: {error}\n{}", objects.join("\n")),
                BTreeMap::new(),
            );
            return;
        }
    };
    let applier = scoped.as_ref().unwrap_or(&context.applier);
    for id in &stale {
        if let Err(error) = applier.prune_one(id, &name, &namespace).await {
            context.events.emit(
                object,
                EventType::Warning,
                reason::PRUNE_FAILED,
                &format!("pruning for deleted resource failed: {error}"),
                BTreeMap::new(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flux_api::kustomize::{CrossNamespaceSourceReference, KustomizationSpec};

    fn kustomization(interval: &str, timeout: Option<&str>) -> Kustomization {
        let mut object = Kustomization::new(
            "apps",
            KustomizationSpec {
                interval: interval.into(),
                timeout: timeout.map(str::to_string),
                prune: true,
                source_ref: CrossNamespaceSourceReference {
                    name: "repo".into(),
                    ..Default::default()
                },
                ..KustomizationSpec::default()
            },
        );
        object.metadata.namespace = Some("flux-system".into());
        object
    }

    #[test]
    fn timeout_defaults_like_flux() {
        assert_eq!(
            timeout_of(&kustomization("10m", None)),
            Duration::from_secs(570)
        );
        assert_eq!(
            timeout_of(&kustomization("40s", None)),
            Duration::from_secs(30)
        );
        assert_eq!(
            timeout_of(&kustomization("10m", Some("2m"))),
            Duration::from_secs(120)
        );
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn health_targets_skip_self_and_skipped() {
        let mut object = kustomization("1m", None);
        object.spec.wait = Some(true);
        let change = |kind: &str, name: &str, action: &'static str| Change {
            id: ObjectId {
                group: "kustomize.toolkit.fluxcd.io".into(),
                version: "v1".into(),
                kind: kind.into(),
                namespace: "flux-system".into(),
                name: name.into(),
            },
            action,
        };
        let targets = health_targets(
            &object,
            &[
                change("Kustomization", "apps", "configured"),
                change("Kustomization", "other", "created"),
                change("ConfigMap", "skipme", "skipped"),
            ],
        );
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].name, "other");
        object.spec.wait = None;
        object.spec.health_checks = Some(vec![flux_api::meta::NamespacedObjectKindReference {
            api_version: None,
            kind: "Deployment".into(),
            name: "web".into(),
            namespace: Some("apps".into()),
        }]);
        let targets = health_targets(&object, &[]);
        assert_eq!(targets[0].api_version(), "apps/v1");
    }
}
