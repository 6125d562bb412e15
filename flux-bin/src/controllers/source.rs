//! source-controller: reconciles GitRepository objects into artifacts with `flux-source`,
//! stores them under `--storage-path` and serves them over HTTP (`--storage-addr`,
//! advertised as `--storage-adv-addr`).
//!
//! The status computation ([`git_status`]) is pure; [`reconcile_git`] does the I/O around it
//! (Secret read, blocking fetch on a worker thread, status patch, events).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use flux_api::conditions;
use flux_api::constants::{condition, reason, FINALIZER};
use flux_api::meta::{Artifact as ApiArtifact, Condition, Time};
use flux_api::source::{GitRepository, GitRepositoryStatus, GitVerificationMode};
use flux_source::artifact::FetchOutcome;
use flux_source::git::{GitAuth, GitRef, GitSpec, GitVerify, Keyring, VerifyMode};
use flux_source::storage::{Retention, Storage, StoredState};
use futures::StreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::{Api, ResourceExt};

use super::common::{secret_data, secret_not_found};
use crate::runtime::events::EventType;
use crate::runtime::flags::primary_watch_config;
use crate::runtime::gate::{Gate, Trigger};
use crate::runtime::metrics::{Metrics, ObjectKey};
use crate::runtime::requeue;
use crate::runtime::serve::EventSink;
use crate::runtime::status;

/// Controller name (field manager, event source).
pub const CONTROLLER: &str = flux_api::constants::controller::SOURCE;

/// Settings of one source-controller.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Storage directory (`--storage-path`).
    pub storage_path: PathBuf,
    /// Address the artifact server binds (`--storage-addr`).
    pub storage_addr: SocketAddr,
    /// Address advertised in artifact URLs (`--storage-adv-addr`); the bound address when empty.
    pub storage_adv_addr: String,
    /// Namespace to watch; every namespace when `None`.
    pub namespace: Option<String>,
    /// Concurrent reconciles.
    pub concurrency: u16,
    /// Interval jitter in percent.
    pub jitter_percentage: u8,
    /// Failure backoff bounds.
    pub min_retry_delay: Duration,
    /// Failure backoff bounds.
    pub max_retry_delay: Duration,
    /// Artifact retention.
    pub retention: Retention,
    /// `--watch-label-selector` (sharding); empty watches every object.
    pub label_selector: String,
}

impl SourceOptions {
    /// Defaults for a storage directory, serving on `storage_addr`.
    pub fn new(storage_path: PathBuf, storage_addr: SocketAddr) -> Self {
        SourceOptions {
            storage_path,
            storage_addr,
            storage_adv_addr: String::new(),
            namespace: None,
            concurrency: 2,
            jitter_percentage: 5,
            min_retry_delay: Duration::from_millis(750),
            max_retry_delay: Duration::from_secs(900),
            retention: Retention::default(),
            label_selector: String::new(),
        }
    }
}

/// Shared state of the GitRepository reconciler.
pub struct SourceContext {
    pub(crate) client: kube::Client,
    pub(crate) storage: Storage,
    pub(crate) events: EventSink,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) gate: Gate,
    pub(crate) failures: Mutex<HashMap<String, u32>>,
    pub(crate) options: SourceOptions,
}

impl SourceContext {
    /// The storage the artifacts go to.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

/// Errors that end a reconcile early (the API being unreachable, mostly); they are retried
/// with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A Kubernetes API call failed.
    #[error("{action} {object}: {source}")]
    Kube {
        /// What was being done.
        action: &'static str,
        /// `namespace/name`.
        object: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Binds the artifact server and builds the reconciler state. Returns the bound address
/// (so `:0` works in tests).
pub async fn prepare(
    client: kube::Client,
    metrics: Arc<Metrics>,
    events_addr: &str,
    options: SourceOptions,
) -> anyhow::Result<(Arc<SourceContext>, tokio::net::TcpListener)> {
    let listener = tokio::net::TcpListener::bind(options.storage_addr).await?;
    let bound = listener.local_addr()?;
    let advertised = if options.storage_adv_addr.is_empty() {
        bound.to_string()
    } else {
        options.storage_adv_addr.clone()
    };
    let storage = Storage::new(&options.storage_path, advertised)?;
    let context = Arc::new(SourceContext {
        events: EventSink::new(Some(client.clone()), CONTROLLER, events_addr),
        client,
        storage,
        metrics,
        gate: Gate::default(),
        failures: Mutex::new(HashMap::new()),
        options,
    });
    Ok((context, listener))
}

/// Runs the artifact server and the GitRepository controller until `shutdown` resolves.
pub async fn run(
    context: Arc<SourceContext>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let root = context.storage.root().to_path_buf();
    let server = tokio::spawn(async move {
        flux_source::server::serve(listener, root, async {
            let _ = server_stopped.await;
        })
        .await
    });
    let api: Api<GitRepository> = match &context.options.namespace {
        Some(ns) => Api::namespaced(context.client.clone(), ns),
        None => Api::all(context.client.clone()),
    };
    let shutdown = futures::FutureExt::shared(shutdown);
    let git = Controller::new(api, primary_watch_config(&context.options.label_selector))
        .with_config(ControllerConfig::default().concurrency(context.options.concurrency))
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_git, git_error_policy, Arc::clone(&context))
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "GitRepository reconcile error");
            }
        });
    let helm = super::source_helm::controllers(Arc::clone(&context), shutdown.clone());
    let oci = super::source_oci::controller(Arc::clone(&context), shutdown.clone());
    let bucket = super::source_bucket::controller(Arc::clone(&context), shutdown);
    futures::join!(git, oci, helm, bucket);
    let _ = stop_server.send(());
    let _ = server.await;
    Ok(())
}

pub(crate) fn git_error_policy(
    _: Arc<GitRepository>,
    error: &SourceError,
    _: Arc<SourceContext>,
) -> Action {
    tracing::warn!(%error, "GitRepository reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// The Git settings Flux derives from a GitRepository spec.
pub fn git_spec(object: &GitRepository, auth: GitAuth) -> GitSpec {
    let spec = &object.spec;
    let reference = spec
        .reference
        .as_ref()
        .map_or_else(GitRef::default, |r| GitRef {
            branch: r.branch.clone(),
            tag: r.tag.clone(),
            semver: r.semver.clone(),
            name: r.name.clone(),
            commit: r.commit.clone(),
        });
    GitSpec {
        url: spec.url.clone(),
        reference,
        auth,
        ignore: spec.ignore.clone(),
        recurse_submodules: spec.recurse_submodules.unwrap_or(false),
        include: Vec::new(),
        shallow: true,
        sparse_checkout: spec.sparse_checkout.clone().unwrap_or_default(),
        // Set by the reconciler once the keys Secret is read (`verification_keys`).
        verify: None,
        timeout: Some(
            spec.timeout
                .as_deref()
                .and_then(|t| flux_api::duration::parse(t).ok())
                .unwrap_or(Duration::from_secs(60)),
        ),
    }
}

/// The trusted keys of `spec.verify`, read from its Secret. A failure is the fetch's failure:
/// an unverifiable source never gets an artifact.
async fn verification_keys(
    client: &kube::Client,
    namespace: &str,
    object: &GitRepository,
) -> Result<Result<Option<GitVerify>, (String, String)>, kube::Error> {
    let Some(verify) = &object.spec.verify else {
        return Ok(Ok(None));
    };
    let mode = match verify.mode.unwrap_or_default() {
        GitVerificationMode::HeadLegacy | GitVerificationMode::Head => VerifyMode::Head,
        GitVerificationMode::Tag => VerifyMode::Tag,
        GitVerificationMode::TagAndHEAD => VerifyMode::TagAndHead,
    };
    let name = &verify.secret_ref.name;
    let Some(data) = secret_data(client, namespace, name).await? else {
        return Ok(Err((
            reason::VERIFICATION_ERROR.to_string(),
            format!("PGP public keys secret error: {}", secret_not_found(name)),
        )));
    };
    Ok(Keyring::from_secret_data(&data)
        .map(|keyring| Some(GitVerify { mode, keyring }))
        .map_err(|e| (reason::VERIFICATION_ERROR.to_string(), e.to_string())))
}

/// Whether the settings that shape the artifact's content are those it was built with.
fn content_unchanged(object: &GitRepository) -> bool {
    let status = object.status.as_ref();
    status.and_then(|s| s.observed_ignore.clone()) == object.spec.ignore
        && status
            .and_then(|s| s.observed_recurse_submodules)
            .unwrap_or(false)
            == object.spec.recurse_submodules.unwrap_or(false)
        && status.and_then(|s| s.observed_sparse_checkout.clone()) == object.spec.sparse_checkout
        // A verified source is verified again for every artifact (Flux's `requiresVerification`).
        && object.spec.verify.is_none()
}

/// What a fetch produced, as the status step sees it.
#[derive(Clone, Debug)]
pub enum FetchResult {
    /// A new artifact was stored.
    New(ApiArtifact),
    /// The stored artifact is current.
    Unchanged(ApiArtifact),
    /// Fetching failed: condition reason and message.
    Failed {
        /// `GitOperationFailed`, `AuthenticationFailed`, ...
        reason: String,
        /// The error.
        message: String,
    },
}

/// The status after a fetch, computed from the previous status (pure).
pub fn git_status(
    object: &GitRepository,
    previous: Option<&GitRepositoryStatus>,
    result: &FetchResult,
    now: &Time,
) -> GitRepositoryStatus {
    let generation = object.metadata.generation;
    let mut status = previous.cloned().unwrap_or_default();
    let mut list: Vec<Condition> = status.conditions.take().unwrap_or_default();
    status.last_handled_reconcile_at = conditions::handle_reconcile_request(
        object.metadata.annotations.as_ref(),
        status.last_handled_reconcile_at.as_deref(),
    );
    if let Some(artifact) = apply_fetch_conditions(&mut list, result, generation, now) {
        status.artifact = Some(artifact);
        status.observed_ignore.clone_from(&object.spec.ignore);
        status.observed_recurse_submodules = object.spec.recurse_submodules;
        status
            .observed_sparse_checkout
            .clone_from(&object.spec.sparse_checkout);
        status.observed_generation = generation;
    }
    status.conditions = Some(list);
    status
}

/// Updates the conditions every source kind shares after a fetch; returns the artifact to
/// record on success (the caller then also advances `observedGeneration`).
pub fn apply_fetch_conditions(
    list: &mut Vec<Condition>,
    result: &FetchResult,
    generation: Option<i64>,
    now: &Time,
) -> Option<ApiArtifact> {
    apply_fetch_conditions_with(list, result, generation, now, |artifact| {
        format!("stored artifact for revision '{}'", artifact.revision)
    })
}

/// [`apply_fetch_conditions`] with the kind's own `ArtifactInStorage`/`Ready` message (Bucket
/// says `stored artifact: revision '<rev>'`).
pub fn apply_fetch_conditions_with(
    list: &mut Vec<Condition>,
    result: &FetchResult,
    generation: Option<i64>,
    now: &Time,
    stored_message: impl Fn(&ApiArtifact) -> String,
) -> Option<ApiArtifact> {
    match result {
        FetchResult::New(artifact) | FetchResult::Unchanged(artifact) => {
            let message = stored_message(artifact);
            conditions::delete(list, condition::FETCH_FAILED);
            conditions::delete(list, condition::ARTIFACT_OUTDATED);
            conditions::delete(list, condition::STORAGE_OPERATION_FAILED);
            conditions::mark_true(
                list,
                condition::ARTIFACT_IN_STORAGE,
                reason::SUCCEEDED,
                &message,
                generation,
                now.clone(),
            );
            conditions::mark_ready(list, reason::SUCCEEDED, &message, generation, now);
            Some(artifact.clone())
        }
        FetchResult::Failed { reason, message } => {
            conditions::mark_true(
                list,
                condition::FETCH_FAILED,
                reason,
                message,
                generation,
                now.clone(),
            );
            conditions::summarize(
                list,
                &[
                    condition::STORAGE_OPERATION_FAILED,
                    condition::FETCH_FAILED,
                    condition::INCLUDE_UNAVAILABLE,
                    condition::ARTIFACT_OUTDATED,
                ],
                &[condition::ARTIFACT_IN_STORAGE],
                generation,
                now,
            );
            if let Some(reconciling) = conditions::get(list, condition::RECONCILING).cloned() {
                if reconciling.status == flux_api::constants::status::TRUE {
                    conditions::mark_true(
                        list,
                        condition::RECONCILING,
                        reason::PROGRESSING_WITH_RETRY,
                        &reconciling.message,
                        generation,
                        now.clone(),
                    );
                }
            }
            None
        }
    }
}

/// Flux's intermediate status while an artifact is built: `Reconciling=True` and
/// `Ready=Unknown` (reason `Progressing`) with `message`, plus `ArtifactOutdated=True` when an
/// existing artifact is being replaced (`(reason, message)`, e.g. `NewRevision`).
pub fn progress_conditions(
    list: &mut Vec<Condition>,
    outdated: Option<(&str, &str)>,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    if let Some((reason, outdated_message)) = outdated {
        conditions::mark_true(
            list,
            condition::ARTIFACT_OUTDATED,
            reason,
            outdated_message,
            generation,
            now.clone(),
        );
    }
    conditions::mark_reconciling(list, message, generation, now);
}

/// Writes only `status.conditions` (the progress step between fetching and storing).
pub(crate) async fn patch_conditions<K>(
    api: &Api<K>,
    name: &str,
    list: &[Condition],
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    status::patch_status(api, name, &serde_json::json!({ "conditions": list }), &[])
        .await
        .map(|_| ())
}

/// Converts a flux-source artifact into the API type.
pub(crate) fn api_artifact(artifact: &flux_source::Artifact) -> Option<ApiArtifact> {
    serde_json::from_value(serde_json::to_value(artifact).ok()?).ok()
}

/// Converts an API artifact back (for storage checks).
pub(crate) fn source_artifact(artifact: &ApiArtifact) -> Option<flux_source::Artifact> {
    serde_json::from_value(serde_json::to_value(artifact).ok()?).ok()
}

fn fetch_failure(error: &flux_source::Error) -> (String, String) {
    let reason = match error {
        flux_source::Error::Auth { .. } => reason::AUTHENTICATION_FAILED,
        flux_source::Error::Io { .. }
        | flux_source::Error::InvalidDir(_)
        | flux_source::Error::Tarball { .. } => reason::ARCHIVE_OPERATION_FAILED,
        flux_source::Error::IllegalPath { .. } => reason::ILLEGAL_PATH,
        _ => reason::GIT_OPERATION_FAILED,
    };
    (reason.to_string(), error.to_string())
}

/// Reconciles one GitRepository.
pub async fn reconcile_git(
    object: Arc<GitRepository>,
    context: Arc<SourceContext>,
) -> Result<Action, SourceError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let key = status::key(object.as_ref());
    let api: Api<GitRepository> = Api::namespaced(context.client.clone(), &namespace);
    let kube_error = |action: &'static str| {
        let key = key.clone();
        move |source| SourceError::Kube {
            action,
            object: key,
            source,
        }
    };
    let metric_key = ObjectKey::new("GitRepository", &name, &namespace);
    let suspended = object.spec.suspend.unwrap_or(false);
    let trigger = match begin(
        &context,
        &api,
        object.as_ref(),
        "GitRepository",
        &key,
        suspended,
        String::new(),
    )
    .await?
    {
        ControlFlow::Break(action) => return Ok(action),
        ControlFlow::Continue(trigger) => trigger,
    };
    let started = Instant::now();
    let interval =
        flux_api::duration::parse(&object.spec.interval).unwrap_or(Duration::from_secs(60));

    // Credentials.
    let auth = match &object.spec.secret_ref {
        None => Ok(GitAuth::default()),
        Some(reference) => {
            match secret_data(&context.client, &namespace, &reference.name)
                .await
                .map_err(kube_error("reading secret for"))?
            {
                Some(data) => GitAuth::from_secret_data(&data).map_err(|e| {
                    (
                        reason::AUTHENTICATION_FAILED.to_string(),
                        format!("failed to configure authentication options: {e}"),
                    )
                }),
                None => Err((
                    reason::AUTHENTICATION_FAILED.to_string(),
                    format!(
                        "failed to get secret '{namespace}/{}': {}",
                        reference.name,
                        secret_not_found(&reference.name)
                    ),
                )),
            }
        }
    };

    // The stored artifact must still be there and intact.
    let mut current = object
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .and_then(source_artifact);
    if let Some(stored) = &current {
        match context.storage.check_stored(stored) {
            Ok(StoredState::Present) => {}
            Ok(StoredState::Corrupt { expected, actual }) => {
                context.events.emit(
                    object.as_ref(),
                    EventType::Warning,
                    reason::ARTIFACT_VERIFICATION_FAILED,
                    &format!(
                        "failed to verify artifact: computed digest doesn't match '{expected}' (got '{actual}')"
                    ),
                    BTreeMap::new(),
                );
                current = None;
            }
            _ => current = None,
        }
    }

    let verify = verification_keys(&context.client, &namespace, &object)
        .await
        .map_err(kube_error("reading verification keys for"))?;
    let result = match auth.and_then(|auth| verify.map(|verify| (auth, verify))) {
        Err((reason, message)) => FetchResult::Failed { reason, message },
        Ok((auth, verify)) => {
            let mut spec = git_spec(&object, auth);
            spec.verify = verify;
            let storage = context.storage.clone();
            let unchanged = content_unchanged(&object);
            let (ns, n, previous) = (namespace.clone(), name.clone(), current.clone());
            let fetched = tokio::task::spawn_blocking(move || {
                flux_source::git::fetch(&spec, &storage, &ns, &n, previous.as_ref(), unchanged)
            })
            .await;
            match fetched {
                Ok(Ok(FetchOutcome::New(artifact))) => {
                    let retention = context.options.retention;
                    let storage = context.storage.clone();
                    let kept = artifact.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        storage.garbage_collect(&kept, retention, SystemTime::now())
                    })
                    .await;
                    api_artifact(&artifact).map_or_else(
                        || FetchResult::Failed {
                            reason: reason::ARCHIVE_OPERATION_FAILED.to_string(),
                            message: "artifact has no digest".to_string(),
                        },
                        FetchResult::New,
                    )
                }
                Ok(Ok(FetchOutcome::Unchanged(mut artifact))) => {
                    context.storage.refresh_url(&mut artifact);
                    api_artifact(&artifact).map_or_else(
                        || FetchResult::Failed {
                            reason: reason::ARCHIVE_OPERATION_FAILED.to_string(),
                            message: "artifact has no digest".to_string(),
                        },
                        FetchResult::Unchanged,
                    )
                }
                Ok(Err(error)) => {
                    let (reason, message) = fetch_failure(&error);
                    FetchResult::Failed { reason, message }
                }
                Err(join) => FetchResult::Failed {
                    reason: reason::GIT_OPERATION_FAILED.to_string(),
                    message: format!("fetch worker failed: {join}"),
                },
            }
        }
    };

    let previous = object.status.as_ref();
    let was_failing = previous
        .and_then(|s| s.conditions.as_deref())
        .is_some_and(|c| conditions::is_false(c, condition::READY));
    let new_status = git_status(&object, previous, &result, &status::now());
    status::patch_status(
        &api,
        &name,
        &new_status,
        &["artifact", "lastHandledReconcileAt"],
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

    let action = match &result {
        FetchResult::New(artifact) => {
            let metadata = BTreeMap::from([
                ("revision".to_string(), artifact.revision.clone()),
                ("digest".to_string(), artifact.digest.clone()),
            ]);
            context.events.emit(
                object.as_ref(),
                EventType::Normal,
                reason::NEW_ARTIFACT,
                &format!("stored artifact for revision '{}'", artifact.revision),
                metadata,
            );
            success(&context, &key, trigger, interval)
        }
        FetchResult::Unchanged(artifact) => {
            if was_failing {
                context.events.emit(
                    object.as_ref(),
                    EventType::Normal,
                    reason::SUCCEEDED,
                    &format!("stored artifact for revision '{}'", artifact.revision),
                    BTreeMap::new(),
                );
            }
            tracing::debug!(object = %key, "artifact up-to-date with remote revision: '{}'", artifact.revision);
            success(&context, &key, trigger, interval)
        }
        FetchResult::Failed { reason, message } => {
            context.events.emit(
                object.as_ref(),
                EventType::Warning,
                reason,
                message,
                BTreeMap::new(),
            );
            failure(&context, &key, trigger)
        }
    };
    Ok(action)
}

/// The start every source reconcile shares: the finalizer (a deleted object's stored
/// artifacts of `kind` are removed), `suspend`, and the watch gate (`extra` names inputs
/// besides the object itself, e.g. a HelmChart's source artifact).
/// `Break(action)` ends the reconcile there; `Continue(trigger)` means work is due.
pub(crate) async fn begin<K>(
    context: &SourceContext,
    api: &Api<K>,
    object: &K,
    kind: &'static str,
    key: &str,
    suspended: bool,
    extra: String,
) -> Result<ControlFlow<Action, Trigger>, SourceError>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let metric_key = ObjectKey::new(kind, &name, &namespace);
    let step = status::finalizer_step(api, object, FINALIZER, || async {
        let storage = context.storage.clone();
        let removed =
            tokio::task::spawn_blocking(move || storage.remove_all(kind, &namespace, &name)).await;
        if let Ok(Err(error)) = removed {
            tracing::warn!(%error, object = %key, "removing artifacts failed");
        }
        context.metrics.delete_object(&metric_key);
        context.gate.forget(key);
    })
    .await
    .map_err(|(action, source)| SourceError::Kube {
        action,
        object: key.to_string(),
        source,
    })?;
    if let Some(action) = step {
        return Ok(ControlFlow::Break(action));
    }
    context.metrics.record_suspend(&metric_key, suspended);
    if suspended {
        tracing::info!(object = %key, "Reconciliation is suspended for this object");
        context.gate.forget(key);
        return Ok(ControlFlow::Break(Action::await_change()));
    }
    let trigger = Trigger {
        generation: object.meta().generation,
        requested_at: conditions::reconcile_request(object.meta().annotations.as_ref())
            .map(str::to_string),
        deleting: object.meta().deletion_timestamp.is_some(),
        extra,
    };
    if let Some(wait) = context.gate.check(key, &trigger, Instant::now()) {
        return Ok(ControlFlow::Break(Action::requeue(wait)));
    }
    Ok(ControlFlow::Continue(trigger))
}

/// Counts one more failure in a row and requeues with exponential backoff.
pub(crate) fn failure(context: &SourceContext, key: &str, trigger: Trigger) -> Action {
    let failures = {
        let mut map = context
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(key.to_string()).or_insert(0);
        *entry += 1;
        *entry - 1
    };
    let wait = requeue::backoff(
        failures,
        context.options.min_retry_delay,
        context.options.max_retry_delay,
    );
    context.gate.done(key, trigger, Instant::now(), wait);
    Action::requeue(wait)
}

pub(crate) fn success(
    context: &SourceContext,
    key: &str,
    trigger: Trigger,
    interval: Duration,
) -> Action {
    context
        .failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(key);
    let wait = requeue::jitter_random(interval, context.options.jitter_percentage);
    context.gate.done(key, trigger, Instant::now(), wait);
    Action::requeue(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flux_api::source::GitRepositorySpec;
    use k8s_openapi::jiff::Timestamp;

    fn repo(generation: i64, requested: Option<&str>) -> GitRepository {
        let mut object = GitRepository::new(
            "podinfo",
            GitRepositorySpec {
                url: "git://127.0.0.1/podinfo".into(),
                interval: "1m".into(),
                ..GitRepositorySpec::default()
            },
        );
        object.metadata.namespace = Some("flux-system".into());
        object.metadata.generation = Some(generation);
        if let Some(token) = requested {
            object.metadata.annotations = Some(BTreeMap::from([(
                "reconcile.fluxcd.io/requestedAt".to_string(),
                token.to_string(),
            )]));
        }
        object
    }

    fn artifact(revision: &str) -> ApiArtifact {
        ApiArtifact {
            digest: "sha256:00".into(),
            last_update_time: Time(Timestamp::UNIX_EPOCH),
            metadata: None,
            path: "gitrepository/flux-system/podinfo/abc.tar.gz".into(),
            revision: revision.into(),
            size: Some(10),
            url: "http://127.0.0.1/gitrepository/flux-system/podinfo/abc.tar.gz".into(),
        }
    }

    #[test]
    fn new_artifact_makes_ready_with_flux_message() {
        let object = repo(3, Some("t1"));
        let now = status::now();
        let status = git_status(
            &object,
            None,
            &FetchResult::New(artifact("main@sha1:abc")),
            &now,
        );
        let list = status.conditions.clone().expect("conditions");
        let ready = conditions::get(&list, "Ready").expect("ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason, "Succeeded");
        assert_eq!(
            ready.message,
            "stored artifact for revision 'main@sha1:abc'"
        );
        assert!(conditions::is_true(&list, "ArtifactInStorage"));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("t1"));
        assert_eq!(list[0].type_, "Ready", "Ready sorts first");
    }

    #[test]
    fn failure_keeps_artifact_and_generation() {
        let object = repo(4, None);
        let now = status::now();
        let ok = git_status(
            &repo(3, None),
            None,
            &FetchResult::New(artifact("main@sha1:abc")),
            &now,
        );
        let failed = git_status(
            &object,
            Some(&ok),
            &FetchResult::Failed {
                reason: "GitOperationFailed".into(),
                message: "failed to checkout and determine revision: unable to clone".into(),
            },
            &now,
        );
        let list = failed.conditions.clone().expect("conditions");
        let ready = conditions::get(&list, "Ready").expect("ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "GitOperationFailed")
        );
        assert!(conditions::is_true(&list, "FetchFailed"));
        assert_eq!(
            failed.observed_generation,
            Some(3),
            "not advanced on failure"
        );
        assert_eq!(
            failed.artifact.as_ref().map(|a| a.revision.as_str()),
            Some("main@sha1:abc")
        );
        let recovered = git_status(
            &object,
            Some(&failed),
            &FetchResult::Unchanged(artifact("main@sha1:abc")),
            &now,
        );
        let list = recovered.conditions.expect("conditions");
        assert!(conditions::get(&list, "FetchFailed").is_none());
        assert!(conditions::is_true(&list, "Ready"));
        assert_eq!(recovered.observed_generation, Some(4));
    }

    #[test]
    fn spec_maps_reference_and_timeout() {
        let mut object = repo(1, None);
        object.spec.reference = Some(flux_api::source::GitRepositoryRef {
            branch: Some("main".into()),
            ..Default::default()
        });
        object.spec.timeout = Some("20s".into());
        let spec = git_spec(&object, GitAuth::default());
        assert_eq!(spec.reference.branch.as_deref(), Some("main"));
        assert_eq!(spec.timeout, Some(Duration::from_secs(20)));
        assert!(spec.shallow);
        assert!(content_unchanged(&object));
        object.spec.ignore = Some("*.md".into());
        assert!(!content_unchanged(&object));
    }
}
