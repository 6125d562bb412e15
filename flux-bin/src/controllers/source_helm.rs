//! HelmRepository and HelmChart reconcilers of source-controller.
//!
//! - HelmRepository (type `default`): downloads `index.yaml` with the credentials and TLS of
//!   `secretRef`/`certSecretRef` (`flux_source::helm::fetch_repository`), stores it as the
//!   artifact (`index-<hex>.yaml`, revision = digest of the downloaded bytes, `index.yaml`
//!   link in `status.url`). Type `oci` is a static object as in Flux v1: stored files, the
//!   finalizer and the status are removed.
//! - HelmChart: from a HelmRepository (version picked from the stored index, chart downloaded
//!   and digest-checked; OCI repositories by tag/semver), a GitRepository or a Bucket
//!   (directory packaged with the `ChartVersion`/`Revision` rules), `valuesFiles` merged, stored
//!   as `<name>-<version>.tgz`. Changes of the referenced source's artifact re-queue the charts
//!   using it.
//!
//! Condition and status computation ([`apply_outcome`], [`repository_status`],
//! [`chart_status`]) is pure; the reconcile functions do the I/O around it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use flux_api::conditions;
use flux_api::constants::{condition, reason, FINALIZER};
use flux_api::meta::{Artifact as ApiArtifact, Condition, Time};
use flux_api::source::{
    Bucket, GitRepository, HelmChart, HelmChartSourceKind, HelmChartStatus, HelmRepository,
    HelmRepositoryStatus, HelmRepositoryType, ReconcileStrategy as ApiStrategy,
};
use flux_source::artifact::FetchOutcome;
use flux_source::helm::{
    self, deps, BuildStage, ChartBuild, HelmRepoSpec, HttpAuth, IndexCache, IndexFile,
    ReconcileStrategy, StagedError, ValuesSpec,
};
use flux_source::oci::OciOptions;
use flux_source::storage::StoredState;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::source::{
    api_artifact, begin, failure, source_artifact, success, SourceContext, SourceError,
};
use crate::runtime::events::EventType;
use crate::runtime::gate::Trigger;
use crate::runtime::metrics::ObjectKey;
use crate::runtime::status;

/// Parsed indexes by artifact path (the path names the index digest, so entries never go
/// stale; the TTL bounds memory like Flux's `--helm-cache-ttl`).
static INDEXES: LazyLock<IndexCache> =
    LazyLock::new(|| IndexCache::new(Duration::from_secs(15 * 60)));

/// How long the gate holds a stalled object (only watch events with new inputs re-run it).
const STALLED_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Failure reasons of chart builds (Flux's `chart.BuildErrorReason`).
mod build_reason {
    pub const CHART_PULL_ERROR: &str = "ChartPullError";
    pub const CHART_PACKAGE_ERROR: &str = "ChartPackageError";
    pub const VALUES_FILES_ERROR: &str = "ValuesFilesError";
    pub const DEPENDENCY_BUILD_ERROR: &str = "DependencyBuildError";
    pub const NO_SOURCE_ARTIFACT: &str = "NoSourceArtifact";
    pub const SOURCE_UNAVAILABLE: &str = "SourceUnavailable";
}

/// Runs the HelmRepository and HelmChart controllers until `shutdown` resolves.
pub async fn controllers(
    context: Arc<SourceContext>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let repositories = Controller::new(
        api_for::<HelmRepository>(&context),
        watcher::Config::default(),
    )
    .with_config(ControllerConfig::default().concurrency(context.options.concurrency))
    .graceful_shutdown_on(shutdown.clone())
    .run(
        reconcile_repository,
        repository_error_policy,
        Arc::clone(&context),
    )
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "HelmRepository reconcile error");
        }
    });
    let charts = Controller::new(api_for::<HelmChart>(&context), watcher::Config::default());
    let (by_repo, by_git, by_bucket) = (charts.store(), charts.store(), charts.store());
    let charts = charts
        .with_config(ControllerConfig::default().concurrency(context.options.concurrency))
        .watches(
            api_for::<HelmRepository>(&context),
            watcher::Config::default(),
            move |repo| users_of(&by_repo, HelmChartSourceKind::HelmRepository, &repo),
        )
        .watches(
            api_for::<GitRepository>(&context),
            watcher::Config::default(),
            move |repo| users_of(&by_git, HelmChartSourceKind::GitRepository, &repo),
        )
        .watches(
            api_for::<Bucket>(&context),
            watcher::Config::default(),
            move |bucket| users_of(&by_bucket, HelmChartSourceKind::Bucket, &bucket),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile_chart, chart_error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "HelmChart reconcile error");
            }
        });
    futures::join!(repositories, charts);
}

fn api_for<K>(context: &SourceContext) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match &context.options.namespace {
        Some(ns) => Api::namespaced(context.client.clone(), ns),
        None => Api::all(context.client.clone()),
    }
}

/// The HelmCharts in `store` whose `sourceRef` is `source` (of `kind`, same namespace).
fn users_of<S: ResourceExt>(
    store: &Store<HelmChart>,
    kind: HelmChartSourceKind,
    source: &S,
) -> Vec<ObjectRef<HelmChart>> {
    let (namespace, name) = (source.namespace(), source.name_any());
    store
        .state()
        .iter()
        .filter(|chart| {
            chart.spec.source_ref.kind == kind
                && chart.spec.source_ref.name == name
                && chart.namespace() == namespace
        })
        .map(|chart| ObjectRef::from_obj(chart.as_ref()))
        .collect()
}

fn repository_error_policy(
    _: Arc<HelmRepository>,
    error: &SourceError,
    _: Arc<SourceContext>,
) -> Action {
    tracing::warn!(%error, "HelmRepository reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn chart_error_policy(_: Arc<HelmChart>, error: &SourceError, _: Arc<SourceContext>) -> Action {
    tracing::warn!(%error, "HelmChart reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

// ---------------------------------------------------------------------------------------------
// Conditions (pure)

/// How a reconcile ended, as the conditions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An artifact is stored: `ArtifactInStorage` and `Ready` get this reason and message.
    Stored {
        /// `Succeeded`, `ChartPullSucceeded` or `ChartPackageSucceeded`.
        reason: String,
        /// `stored artifact: revision '…'`, `pulled 'demo' chart with version '1.0.0'`, …
        message: String,
    },
    /// The reconcile failed.
    Failed {
        /// `FetchFailed`, `BuildFailed` or `StorageOperationFailed`.
        condition: &'static str,
        /// The condition reason.
        reason: String,
        /// The error.
        message: String,
        /// Only a spec change (or a new source revision) can fix it: `Stalled`, no retry.
        stalled: bool,
    },
}

/// Updates the source conditions for `outcome` and summarises `Ready` as Flux's source
/// reconcilers do. Returns whether `observedGeneration` advances (success or stalled).
pub fn apply_outcome(
    list: &mut Vec<Condition>,
    outcome: &Outcome,
    generation: Option<i64>,
    now: &Time,
) -> bool {
    match outcome {
        Outcome::Stored { reason, message } => {
            for stale in [
                condition::FETCH_FAILED,
                condition::BUILD_FAILED,
                condition::ARTIFACT_OUTDATED,
                condition::STORAGE_OPERATION_FAILED,
            ] {
                conditions::delete(list, stale);
            }
            conditions::mark_true(
                list,
                condition::ARTIFACT_IN_STORAGE,
                reason,
                message,
                generation,
                now.clone(),
            );
            conditions::mark_ready(list, reason, message, generation, now);
            true
        }
        Outcome::Failed {
            condition: failed,
            reason,
            message,
            stalled,
        } => {
            // A fetch error replaces a build error and the reverse (Flux's observeChartBuild).
            for other in [condition::FETCH_FAILED, condition::BUILD_FAILED] {
                if other != *failed {
                    conditions::delete(list, other);
                }
            }
            conditions::mark_true(list, failed, reason, message, generation, now.clone());
            if *stalled {
                conditions::delete(list, condition::RECONCILING);
                conditions::mark_true(
                    list,
                    condition::STALLED,
                    reason,
                    message,
                    generation,
                    now.clone(),
                );
            } else {
                conditions::delete(list, condition::STALLED);
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
            }
            conditions::summarize(
                list,
                &[
                    condition::STORAGE_OPERATION_FAILED,
                    condition::FETCH_FAILED,
                    condition::BUILD_FAILED,
                    condition::ARTIFACT_OUTDATED,
                ],
                &[condition::ARTIFACT_IN_STORAGE],
                generation,
                now,
            );
            *stalled
        }
    }
}

fn failed(condition: &'static str, reason: &str, message: String, stalled: bool) -> Outcome {
    Outcome::Failed {
        condition,
        reason: reason.to_string(),
        message,
        stalled,
    }
}

/// Go's `units.HumanSize`: decimal units, four significant digits (`1.234kB`, `532B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    #[allow(clippy::cast_precision_loss)]
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    // `%.4g` for 1 <= size < 1000: four significant digits, trailing zeros dropped.
    let integer_digits = if size < 10.0 {
        1
    } else if size < 100.0 {
        2
    } else {
        3
    };
    let mut text = format!("{size:.prec$}", prec = 4 - integer_digits);
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// Reads a Secret's data. `Ok(Err(message))`: the Secret is missing.
async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Result<BTreeMap<String, Vec<u8>>, String>, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    Ok(match secrets.get_opt(name).await? {
        Some(secret) => Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()),
        None => Err(format!(
            "failed to get secret '{namespace}/{name}': secrets \"{name}\" not found"
        )),
    })
}

fn utf8(data: &BTreeMap<String, Vec<u8>>, key: &str) -> Option<String> {
    data.get(key).map(|v| {
        String::from_utf8_lossy(v)
            .trim_end_matches('\n')
            .to_string()
    })
}

/// The HTTP credentials of a (default type) HelmRepository: basic auth from `secretRef`, TLS
/// from `certSecretRef` (or, deprecated, TLS keys in `secretRef`). `Ok(Err(message))` is an
/// `AuthenticationFailed` outcome.
async fn http_auth(
    client: &kube::Client,
    namespace: &str,
    repo: &HelmRepository,
) -> Result<Result<HttpAuth, String>, kube::Error> {
    let mut auth = HttpAuth::default();
    let mut legacy_tls = None;
    if let Some(reference) = &repo.spec.secret_ref {
        let data = match secret_data(client, namespace, &reference.name).await? {
            Ok(data) => data,
            Err(message) => return Ok(Err(message)),
        };
        match (utf8(&data, "username"), utf8(&data, "password")) {
            (Some(user), Some(password)) => auth.basic = Some((user, password)),
            (None, None) => {}
            _ => {
                return Ok(Err(format!(
                "invalid '{namespace}/{}' secret data: required fields 'username' and 'password'",
                reference.name
            )))
            }
        }
        if [
            "tls.crt", "tls.key", "ca.crt", "certFile", "keyFile", "caFile",
        ]
        .iter()
        .any(|k| data.contains_key(*k))
        {
            legacy_tls = Some(data);
        }
    }
    let tls_data = match &repo.spec.cert_secret_ref {
        Some(reference) => match secret_data(client, namespace, &reference.name).await? {
            Ok(data) => Some(data),
            Err(message) => return Ok(Err(message)),
        },
        None => legacy_tls,
    };
    if let Some(data) = tls_data {
        match flux_source::tls::TlsConfig::from_secret_data(&data) {
            Ok(tls) => {
                auth.ca_pem = tls.ca_pem;
                auth.client_cert = tls.client_cert;
            }
            Err(error) => return Ok(Err(format!("failed to construct TLS config: {error}"))),
        }
    }
    Ok(Ok(auth))
}

fn timeout_of(repo: &HelmRepository) -> Duration {
    repo.spec
        .timeout
        .as_deref()
        .and_then(|t| flux_api::duration::parse(t).ok())
        .unwrap_or(Duration::from_secs(60))
}

/// The client settings of a HelmRepository of type `default`.
async fn repo_spec(
    client: &kube::Client,
    namespace: &str,
    repo: &HelmRepository,
) -> Result<Result<HelmRepoSpec, String>, kube::Error> {
    Ok(http_auth(client, namespace, repo)
        .await?
        .map(|auth| HelmRepoSpec {
            url: repo.spec.url.clone(),
            auth,
            pass_credentials: repo.spec.pass_credentials.unwrap_or(false),
            timeout: timeout_of(repo),
        }))
}

/// Registry settings of a HelmRepository of type `oci`: `insecure`, credentials from a
/// `.dockerconfigjson` or `username`/`password` `secretRef`, `ca.crt` from `certSecretRef`.
async fn oci_options(
    client: &kube::Client,
    namespace: &str,
    repo: &HelmRepository,
) -> Result<Result<OciOptions, String>, kube::Error> {
    let mut options = OciOptions {
        insecure: repo.spec.insecure.unwrap_or(false),
        ..OciOptions::default()
    };
    if let Some(reference) = &repo.spec.secret_ref {
        let data = match secret_data(client, namespace, &reference.name).await? {
            Ok(data) => data,
            Err(message) => return Ok(Err(message)),
        };
        if let Some(config) = data.get(".dockerconfigjson") {
            let registry = repo
                .spec
                .url
                .trim_start_matches("oci://")
                .split('/')
                .next()
                .unwrap_or_default();
            match options.clone().with_docker_config(config, registry) {
                Ok(with) => options = with,
                Err(error) => return Ok(Err(error.to_string())),
            }
        } else if let (Some(user), Some(password)) =
            (utf8(&data, "username"), utf8(&data, "password"))
        {
            options.basic = Some((user, password));
        }
    }
    if let Some(reference) = &repo.spec.cert_secret_ref {
        match secret_data(client, namespace, &reference.name).await? {
            Ok(data) => options.ca_pem = data.get("ca.crt").cloned(),
            Err(message) => return Ok(Err(message)),
        }
    }
    Ok(Ok(options))
}

// ---------------------------------------------------------------------------------------------
// HelmRepository

/// The stored artifact of `status`, if it is still in storage; a file whose digest changed
/// is reported (`ArtifactVerificationFailed`) and rebuilt.
fn stored_artifact<K>(
    context: &SourceContext,
    object: &K,
    artifact: Option<&ApiArtifact>,
) -> Option<flux_source::Artifact>
where
    K: kube::Resource<DynamicType = ()>,
{
    let stored = artifact.and_then(source_artifact)?;
    match context.storage.check_stored(&stored) {
        Ok(StoredState::Present) => Some(stored),
        Ok(StoredState::Corrupt { expected, actual }) => {
            context.events.emit(
                object,
                EventType::Warning,
                reason::ARTIFACT_VERIFICATION_FAILED,
                &format!(
                    "failed to verify artifact: computed digest doesn't match '{expected}' (got '{actual}')"
                ),
                BTreeMap::new(),
            );
            None
        }
        _ => None,
    }
}

/// What a HelmRepository reconcile produced.
#[derive(Clone, Debug)]
pub enum RepositoryResult {
    /// The index is stored (`new`: a new revision was written).
    Stored {
        /// The index artifact.
        artifact: ApiArtifact,
        /// URL of the `index.yaml` link.
        url: String,
        /// Whether it is a new artifact.
        new: bool,
    },
    /// Fetching or storing failed.
    Failed(Outcome),
}

/// The HelmRepository status after a reconcile (pure).
pub fn repository_status(
    object: &HelmRepository,
    previous: Option<&HelmRepositoryStatus>,
    result: &RepositoryResult,
    now: &Time,
) -> HelmRepositoryStatus {
    let generation = object.metadata.generation;
    let mut status = previous.cloned().unwrap_or_default();
    let mut list = status.conditions.take().unwrap_or_default();
    status.last_handled_reconcile_at = conditions::handle_reconcile_request(
        object.metadata.annotations.as_ref(),
        status.last_handled_reconcile_at.as_deref(),
    );
    let outcome = match result {
        RepositoryResult::Stored { artifact, url, .. } => {
            status.artifact = Some(artifact.clone());
            status.url = Some(url.clone());
            Outcome::Stored {
                reason: reason::SUCCEEDED.to_string(),
                message: format!("stored artifact: revision '{}'", artifact.revision),
            }
        }
        RepositoryResult::Failed(outcome) => outcome.clone(),
    };
    if apply_outcome(&mut list, &outcome, generation, now) {
        status.observed_generation = generation;
    }
    status.conditions = Some(list);
    status
}

/// Checks the URL of a `default` HelmRepository (Flux's `URLInvalid`, stalled).
fn check_http_url(url: &str) -> Result<(), String> {
    if url.starts_with("oci://") {
        return Err("invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type".into());
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!(
            "invalid Helm repository URL: scheme of '{url}' is not supported, must be http or https"
        ))
    }
}

fn repository_failure(error: &flux_source::Error) -> Outcome {
    match error {
        flux_source::Error::Parse { .. } => failed(
            condition::FETCH_FAILED,
            reason::INDEXATION_FAILED,
            format!("failed to load Helm repository from index YAML: {error}"),
            false,
        ),
        flux_source::Error::Auth { .. } => failed(
            condition::FETCH_FAILED,
            reason::AUTHENTICATION_FAILED,
            format!("failed to fetch Helm repository index: {error}"),
            false,
        ),
        flux_source::Error::Io { .. } | flux_source::Error::IllegalPath { .. } => failed(
            condition::STORAGE_OPERATION_FAILED,
            reason::ARCHIVE_OPERATION_FAILED,
            format!("unable to save artifact to storage: {error}"),
            false,
        ),
        _ => failed(
            condition::FETCH_FAILED,
            reason::FAILED,
            format!("failed to fetch Helm repository index: {error}"),
            false,
        ),
    }
}

/// Flux v1 keeps an OCI HelmRepository static: no artifact, no finalizer, empty status.
async fn make_static(
    api: &Api<HelmRepository>,
    object: &HelmRepository,
    context: &SourceContext,
    key: &str,
) -> Result<Action, SourceError> {
    let kube_error = |action: &'static str| {
        move |source| SourceError::Kube {
            action,
            object: key.to_string(),
            source,
        }
    };
    let (storage, ns, name) = (
        context.storage.clone(),
        object.namespace().unwrap_or_default(),
        object.name_any(),
    );
    let _ =
        tokio::task::spawn_blocking(move || storage.remove_all("HelmRepository", &ns, &name)).await;
    context.gate.forget(key);
    status::remove_finalizer(api, object, FINALIZER)
        .await
        .map_err(kube_error("removing finalizer from"))?;
    if object.metadata.deletion_timestamp.is_none()
        && object
            .status
            .as_ref()
            .is_some_and(|s| *s != HelmRepositoryStatus::default())
    {
        status::patch_status(
            api,
            &object.name_any(),
            &HelmRepositoryStatus::default(),
            &[
                "artifact",
                "conditions",
                "lastHandledReconcileAt",
                "observedGeneration",
                "url",
            ],
        )
        .await
        .map_err(kube_error("resetting status of"))?;
    }
    Ok(Action::await_change())
}

/// Reconciles one HelmRepository.
pub async fn reconcile_repository(
    object: Arc<HelmRepository>,
    context: Arc<SourceContext>,
) -> Result<Action, SourceError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let key = format!("HelmRepository/{}", status::key(object.as_ref()));
    let api: Api<HelmRepository> = Api::namespaced(context.client.clone(), &namespace);
    let kube_error = |action: &'static str| {
        let key = key.clone();
        move |source| SourceError::Kube {
            action,
            object: key,
            source,
        }
    };
    if object.spec.repository_type == Some(HelmRepositoryType::Oci) {
        return make_static(&api, &object, &context, &key).await;
    }
    let metric_key = ObjectKey::new("HelmRepository", &name, &namespace);
    let suspended = object.spec.suspend.unwrap_or(false);
    let trigger = match begin(
        &context,
        &api,
        object.as_ref(),
        "HelmRepository",
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
    let interval = object
        .spec
        .interval
        .as_deref()
        .and_then(|i| flux_api::duration::parse(i).ok())
        .unwrap_or(Duration::from_secs(60));

    let current = stored_artifact(
        &context,
        object.as_ref(),
        object.status.as_ref().and_then(|s| s.artifact.as_ref()),
    );
    let result = match check_http_url(&object.spec.url) {
        Err(message) => RepositoryResult::Failed(failed(
            condition::FETCH_FAILED,
            reason::URL_INVALID,
            message,
            true,
        )),
        Ok(()) => match repo_spec(&context.client, &namespace, &object)
            .await
            .map_err(kube_error("reading secrets for"))?
        {
            Err(message) => RepositoryResult::Failed(failed(
                condition::FETCH_FAILED,
                reason::AUTHENTICATION_FAILED,
                message,
                false,
            )),
            Ok(spec) => fetch_index(&context, spec, &namespace, &name, current).await,
        },
    };

    let new_status = repository_status(&object, object.status.as_ref(), &result, &status::now());
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
    Ok(match &result {
        RepositoryResult::Stored { artifact, new, .. } => {
            if *new {
                context.events.emit(
                    object.as_ref(),
                    EventType::Normal,
                    reason::NEW_ARTIFACT,
                    &format!(
                        "fetched index of size {} from '{}'",
                        human_size(
                            artifact
                                .size
                                .and_then(|s| u64::try_from(s).ok())
                                .unwrap_or(0)
                        ),
                        object.spec.url
                    ),
                    artifact_metadata(artifact),
                );
            }
            success(&context, &key, trigger, interval)
        }
        RepositoryResult::Failed(failed) => {
            end_failed(&context, object.as_ref(), &key, trigger, failed, interval)
        }
    })
}

/// Ends a failed reconcile: a Warning event with the reason, then no retry when stalled (a spec
/// change or a new source artifact, both watched, re-runs it) or a retry with backoff.
fn end_failed<K>(
    context: &SourceContext,
    object: &K,
    key: &str,
    trigger: Trigger,
    outcome: &Outcome,
    interval: Duration,
) -> Action
where
    K: kube::Resource<DynamicType = ()>,
{
    let Outcome::Failed {
        reason,
        message,
        stalled,
        ..
    } = outcome
    else {
        return success(context, key, trigger, interval);
    };
    context
        .events
        .emit(object, EventType::Warning, reason, message, BTreeMap::new());
    if *stalled {
        context
            .gate
            .done(key, trigger, Instant::now(), STALLED_WAIT);
        Action::await_change()
    } else {
        failure(context, key, trigger)
    }
}

fn artifact_metadata(artifact: &ApiArtifact) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("revision".to_string(), artifact.revision.clone()),
        ("digest".to_string(), artifact.digest.clone()),
    ])
}

/// Downloads and stores the index on a blocking thread; garbage-collects old indexes.
async fn fetch_index(
    context: &SourceContext,
    spec: HelmRepoSpec,
    namespace: &str,
    name: &str,
    current: Option<flux_source::Artifact>,
) -> RepositoryResult {
    let storage = context.storage.clone();
    let (ns, n) = (namespace.to_string(), name.to_string());
    let fetched = tokio::task::spawn_blocking(move || {
        helm::fetch_repository(&spec, &storage, &ns, &n, current.as_ref())
    })
    .await;
    let (outcome, index) = match fetched {
        Ok(Ok(done)) => done,
        Ok(Err(error)) => return RepositoryResult::Failed(repository_failure(&error)),
        Err(join) => {
            return RepositoryResult::Failed(failed(
                condition::FETCH_FAILED,
                reason::FAILED,
                format!("fetch worker failed: {join}"),
                false,
            ))
        }
    };
    let new = matches!(outcome, FetchOutcome::New(_));
    let mut artifact = outcome.artifact().clone();
    if new {
        let (storage, kept, retention) = (
            context.storage.clone(),
            artifact.clone(),
            context.options.retention,
        );
        let _ = tokio::task::spawn_blocking(move || {
            storage.garbage_collect(&kept, retention, SystemTime::now())
        })
        .await;
    } else {
        context.storage.refresh_url(&mut artifact);
    }
    INDEXES.put(&artifact.path, index);
    let url = context
        .storage
        .url_for(&sibling(&artifact.path, "index.yaml"));
    match api_artifact(&artifact) {
        Some(artifact) => RepositoryResult::Stored { artifact, url, new },
        None => RepositoryResult::Failed(failed(
            condition::STORAGE_OPERATION_FAILED,
            reason::ARCHIVE_OPERATION_FAILED,
            "artifact has no digest".into(),
            false,
        )),
    }
}

/// `<dir of path>/<file>`: the path of a link next to an artifact.
fn sibling(path: &str, file: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{file}"),
        None => file.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// HelmChart

/// What a HelmChart reconcile produced.
#[derive(Clone, Debug)]
pub enum ChartResult {
    /// A chart artifact is stored.
    Stored {
        /// The chart artifact.
        artifact: ApiArtifact,
        /// The chart name.
        name: String,
        /// Values files merged into it.
        values_files: Vec<String>,
        /// Packaged here (values merged or built from a directory) rather than pulled as-is.
        packaged: bool,
        /// Whether a new artifact was written.
        new: bool,
        /// URL of the `latest.tar.gz` link.
        url: String,
    },
    /// The build failed.
    Failed(Outcome),
}

/// Flux's `Build.Summary()`: `pulled 'demo' chart with version '1.0.0'`,
/// `packaged '…' chart with version '…' and merged values files [a.yaml b.yaml]`.
pub fn build_summary(name: &str, version: &str, packaged: bool, values_files: &[String]) -> String {
    let action = if packaged { "packaged" } else { "pulled" };
    let mut summary = format!("{action} '{name}' chart with version '{version}'");
    if !values_files.is_empty() {
        let _ = write!(
            summary,
            " and merged values files [{}]",
            values_files.join(" ")
        );
    }
    summary
}

/// The HelmChart status after a reconcile (pure). `source_revision`: the revision of the
/// source artifact the build used (none for OCI repositories).
pub fn chart_status(
    object: &HelmChart,
    previous: Option<&HelmChartStatus>,
    result: &ChartResult,
    source_revision: Option<&str>,
    now: &Time,
) -> HelmChartStatus {
    let generation = object.metadata.generation;
    let mut status = previous.cloned().unwrap_or_default();
    let mut list = status.conditions.take().unwrap_or_default();
    status.last_handled_reconcile_at = conditions::handle_reconcile_request(
        object.metadata.annotations.as_ref(),
        status.last_handled_reconcile_at.as_deref(),
    );
    if let Some(revision) = source_revision {
        status.observed_source_artifact_revision = Some(revision.to_string());
    }
    let outcome = match result {
        ChartResult::Stored {
            artifact,
            name,
            values_files,
            packaged,
            url,
            ..
        } => {
            status.artifact = Some(artifact.clone());
            status.url = Some(url.clone());
            status.observed_chart_name = Some(name.clone());
            status.observed_values_files = (!values_files.is_empty()).then(|| values_files.clone());
            Outcome::Stored {
                reason: if *packaged {
                    reason::CHART_PACKAGE_SUCCEEDED
                } else {
                    reason::CHART_PULL_SUCCEEDED
                }
                .to_string(),
                message: build_summary(name, &artifact.revision, *packaged, values_files),
            }
        }
        ChartResult::Failed(outcome) => outcome.clone(),
    };
    if apply_outcome(&mut list, &outcome, generation, now) {
        status.observed_generation = generation;
    }
    status.conditions = Some(list);
    status
}

/// Maps a failed build step to Flux's condition, reason and message.
fn build_failure(staged: &StagedError) -> Outcome {
    let error = &staged.error;
    match staged.stage {
        BuildStage::Load | BuildStage::Package => failed(
            condition::BUILD_FAILED,
            build_reason::CHART_PACKAGE_ERROR,
            format!("chart package error: {error}"),
            false,
        ),
        BuildStage::ValuesMerge => failed(
            condition::BUILD_FAILED,
            build_reason::VALUES_FILES_ERROR,
            format!("values files merge error: failed to merge chart values: {error}"),
            true,
        ),
        BuildStage::Dependencies => failed(
            condition::BUILD_FAILED,
            build_reason::DEPENDENCY_BUILD_ERROR,
            format!("dependency build error: {error}"),
            false,
        ),
        BuildStage::Store => failed(
            condition::STORAGE_OPERATION_FAILED,
            reason::ARCHIVE_OPERATION_FAILED,
            format!("unable to copy Helm chart to storage: {error}"),
            false,
        ),
    }
}

fn invalid_reference(message: &str) -> Outcome {
    failed(
        condition::FETCH_FAILED,
        reason::INVALID_CHART_REFERENCE,
        format!(
            "invalid chart reference: failed to get chart version for remote reference: {message}"
        ),
        true,
    )
}

/// Helm's chart version lookup with Flux's messages for a missing name or version.
fn resolve_version(index: &IndexFile, chart: &str, version: &str) -> Result<String, Outcome> {
    if index.entries.get(chart).is_none_or(Vec::is_empty) {
        return Err(invalid_reference("no chart name found"));
    }
    match index.get(chart, version) {
        Ok(entry) => Ok(entry.version.clone()),
        Err(flux_source::Error::NotFound(_)) => Err(invalid_reference(&format!(
            "no '{chart}' chart with version matching '{version}' found"
        ))),
        Err(error) => Err(invalid_reference(&error.to_string())),
    }
}

/// The chart's build inputs that do not depend on the source.
struct ChartRequest {
    namespace: String,
    name: String,
    chart: String,
    version: String,
    values: ValuesSpec,
    /// A spec change forces a rebuild even when the version is unchanged.
    force: bool,
    /// The current artifact and the chart name it holds.
    current: Option<(flux_source::Artifact, String, Vec<String>)>,
}

impl ChartRequest {
    /// The current artifact when it already is `version` of this chart (no rebuild needed).
    fn up_to_date(&self, chart_name: &str, version: &str, packaged: bool) -> Option<ChartResult> {
        let (artifact, name, values_files) = self.current.as_ref()?;
        if self.force || artifact.revision != version || name != chart_name {
            return None;
        }
        Some(ChartResult::Stored {
            artifact: api_artifact(artifact)?,
            name: name.clone(),
            values_files: values_files.clone(),
            packaged,
            new: false,
            url: String::new(),
        })
    }
}

/// Stores a downloaded chart (as-is or with values) on a blocking thread.
async fn store_downloaded(
    context: &SourceContext,
    request: &ChartRequest,
    bytes: Vec<u8>,
    version: String,
) -> ChartResult {
    let storage = context.storage.clone();
    let (chart, values, ns, n) = (
        request.chart.clone(),
        request.values.clone(),
        request.namespace.clone(),
        request.name.clone(),
    );
    let built = tokio::task::spawn_blocking(move || {
        helm::store_remote_chart(&bytes, &chart, &version, &values, &storage, &ns, &n)
    })
    .await;
    stored_result(built)
}

fn stored_result(
    built: Result<Result<ChartBuild, StagedError>, tokio::task::JoinError>,
) -> ChartResult {
    match built {
        Ok(Ok(build)) => match api_artifact(&build.artifact) {
            Some(artifact) => ChartResult::Stored {
                artifact,
                name: build.name,
                values_files: build.values_files,
                packaged: build.packaged,
                new: true,
                url: String::new(),
            },
            None => ChartResult::Failed(failed(
                condition::STORAGE_OPERATION_FAILED,
                reason::ARCHIVE_OPERATION_FAILED,
                "artifact has no digest".into(),
                false,
            )),
        },
        Ok(Err(staged)) => ChartResult::Failed(build_failure(&staged)),
        Err(join) => ChartResult::Failed(failed(
            condition::BUILD_FAILED,
            build_reason::CHART_PACKAGE_ERROR,
            format!("build worker failed: {join}"),
            false,
        )),
    }
}

fn no_source_artifact(kind: &str, name: &str) -> ChartResult {
    ChartResult::Failed(failed(
        condition::FETCH_FAILED,
        build_reason::NO_SOURCE_ARTIFACT,
        format!("no artifact available for {kind} source '{name}'"),
        false,
    ))
}

/// The parsed index of a HelmRepository artifact (cached by path).
async fn load_index(
    context: &SourceContext,
    artifact: &flux_source::Artifact,
) -> Result<IndexFile, String> {
    if let Some(index) = INDEXES.get(&artifact.path) {
        return Ok(index);
    }
    let path: PathBuf = context
        .storage
        .local_path(artifact)
        .map_err(|e| e.to_string())?;
    let source = artifact.url.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        IndexFile::parse(&bytes, &source).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    INDEXES.put(&artifact.path, parsed.clone());
    Ok(parsed)
}

/// HelmChart from a HelmRepository of type `default`.
async fn chart_from_http_repository(
    context: &SourceContext,
    request: &ChartRequest,
    repo: &HelmRepository,
    repo_artifact: &flux_source::Artifact,
) -> Result<ChartResult, kube::Error> {
    let index = match load_index(context, repo_artifact).await {
        Ok(index) => index,
        Err(message) => {
            return Ok(ChartResult::Failed(failed(
                condition::FETCH_FAILED,
                build_reason::CHART_PULL_ERROR,
                format!("chart pull error: failed to load index: {message}"),
                false,
            )))
        }
    };
    let entry_version = match resolve_version(&index, &request.chart, &request.version) {
        Ok(version) => version,
        Err(outcome) => return Ok(ChartResult::Failed(outcome)),
    };
    let version = helm::remote_chart_version(&entry_version, &request.values);
    if let Some(done) = request.up_to_date(&request.chart, &version, request.values.effective()) {
        return Ok(done);
    }
    let spec = match repo_spec(&context.client, &request.namespace, repo).await? {
        Ok(spec) => spec,
        Err(message) => {
            return Ok(ChartResult::Failed(failed(
                condition::FETCH_FAILED,
                reason::AUTHENTICATION_FAILED,
                message,
                false,
            )))
        }
    };
    let (chart, wanted) = (request.chart.clone(), request.version.clone());
    let pulled = tokio::task::spawn_blocking(move || {
        helm::pull_chart(&spec, &index, &chart, &wanted)
            .map(|(entry, bytes)| (entry.version, bytes))
    })
    .await;
    Ok(match pulled {
        Ok(Ok((version, bytes))) => store_downloaded(context, request, bytes, version).await,
        Ok(Err(error)) => ChartResult::Failed(failed(
            condition::FETCH_FAILED,
            build_reason::CHART_PULL_ERROR,
            format!("chart pull error: failed to download chart for remote reference: {error}"),
            false,
        )),
        Err(join) => ChartResult::Failed(failed(
            condition::FETCH_FAILED,
            build_reason::CHART_PULL_ERROR,
            format!("chart pull error: {join}"),
            false,
        )),
    })
}

/// HelmChart from a HelmRepository of type `oci` (tags listed, semver-selected, pulled).
async fn chart_from_oci_repository(
    context: &SourceContext,
    request: &ChartRequest,
    repo: &HelmRepository,
) -> Result<ChartResult, kube::Error> {
    let options = match oci_options(&context.client, &request.namespace, repo).await? {
        Ok(options) => options,
        Err(message) => {
            return Ok(ChartResult::Failed(failed(
                condition::FETCH_FAILED,
                reason::AUTHENTICATION_FAILED,
                message,
                false,
            )))
        }
    };
    let timeout = timeout_of(repo);
    let pulled = tokio::time::timeout(
        timeout,
        flux_source::oci::pull_helm_chart(
            &repo.spec.url,
            &request.chart,
            &request.version,
            &options,
        ),
    )
    .await;
    Ok(match pulled {
        Ok(Ok((version, bytes))) => {
            let revision = helm::remote_chart_version(&version, &request.values);
            match request.up_to_date(&request.chart, &revision, request.values.effective()) {
                Some(done) => done,
                None => store_downloaded(context, request, bytes, version).await,
            }
        }
        Ok(Err(flux_source::Error::NotFound(message))) => {
            ChartResult::Failed(invalid_reference(&message))
        }
        Ok(Err(error)) => ChartResult::Failed(failed(
            condition::FETCH_FAILED,
            build_reason::CHART_PULL_ERROR,
            format!("chart pull error: failed to download chart for remote reference: {error}"),
            false,
        )),
        Err(_) => ChartResult::Failed(failed(
            condition::FETCH_FAILED,
            build_reason::CHART_PULL_ERROR,
            format!(
                "chart pull error: timed out after {}",
                flux_api::duration::format(timeout)
            ),
            false,
        )),
    })
}

/// Repository settings for dependencies: every `default` HelmRepository of the namespace, with
/// its credentials (Flux looks the dependency's repository URL up among them).
async fn dependency_repositories(
    client: &kube::Client,
    namespace: &str,
) -> Result<deps::Repositories, kube::Error> {
    let api: Api<HelmRepository> = Api::namespaced(client.clone(), namespace);
    let mut repositories = deps::Repositories::default();
    for repo in api.list(&kube::api::ListParams::default()).await?.items {
        if repo.spec.repository_type == Some(HelmRepositoryType::Oci) {
            continue;
        }
        if let Ok(spec) = repo_spec(client, namespace, &repo).await? {
            repositories.insert(spec);
        }
    }
    Ok(repositories)
}

/// HelmChart packaged from a GitRepository or Bucket artifact.
async fn chart_from_directory(
    context: &SourceContext,
    request: &ChartRequest,
    strategy: ReconcileStrategy,
    source: &flux_source::Artifact,
) -> Result<ChartResult, kube::Error> {
    let storage = context.storage.clone();
    let (artifact, chart) = (source.clone(), request.chart.clone());
    // Extract the source artifact and read the chart's metadata.
    let extracted = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().map_err(|e| format!("creating temp dir: {e}"))?;
        let path = storage.local_path(&artifact).map_err(|e| e.to_string())?;
        let file =
            std::fs::File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        flux_source::extract::unpack_gz(
            std::io::BufReader::new(file),
            dir.path(),
            &flux_source::extract::Limits::default(),
            &artifact.path,
        )
        .map_err(|e| format!("artifact untar error: {e}"))?;
        let chart_dir = flux_source::extract::safe_relative(&chart)
            .map(|rel| dir.path().join(rel))
            .map_err(|e| format!("invalid chart reference: {e}"))?;
        let meta = helm::chart::load_meta(&chart_dir)
            .map_err(|e| format!("invalid chart reference: {e}"))?
            .0;
        let has_deps = deps::declared(&chart_dir).is_ok_and(|d| !d.is_empty());
        Ok::<_, String>((dir, meta, has_deps))
    })
    .await;
    let (dir, meta, has_deps) = match extracted {
        Ok(Ok(found)) => found,
        Ok(Err(message)) => {
            let stalled = message.starts_with("invalid chart reference");
            return Ok(ChartResult::Failed(failed(
                condition::FETCH_FAILED,
                if stalled {
                    reason::INVALID_CHART_REFERENCE
                } else {
                    reason::FAILED
                },
                message,
                stalled,
            )));
        }
        Err(join) => {
            return Ok(ChartResult::Failed(failed(
                condition::FETCH_FAILED,
                reason::FAILED,
                format!("artifact untar error: {join}"),
                false,
            )))
        }
    };
    let version =
        helm::dir_chart_version(&meta.version, strategy, &source.revision, &request.values);
    if let Some(done) = request.up_to_date(&meta.name, &version, true) {
        return Ok(done);
    }
    let repositories = if has_deps {
        dependency_repositories(&context.client, &request.namespace).await?
    } else {
        deps::Repositories::default()
    };
    let storage = context.storage.clone();
    let (chart, values, ns, n, revision) = (
        request.chart.clone(),
        request.values.clone(),
        request.namespace.clone(),
        request.name.clone(),
        source.revision.clone(),
    );
    let built = tokio::task::spawn_blocking(move || {
        helm::build_chart_from_dir_detailed(
            dir.path(),
            &chart,
            strategy,
            &revision,
            &values,
            &repositories,
            &storage,
            &ns,
            &n,
        )
    })
    .await;
    Ok(stored_result(built))
}

/// The referenced source, read from the API: its kind-specific view for the build.
enum ChartSource {
    Repository(Box<HelmRepository>),
    Directory(Option<ApiArtifact>),
}

fn source_resource(kind: HelmChartSourceKind) -> &'static str {
    match kind {
        HelmChartSourceKind::HelmRepository => "helmrepositories",
        HelmChartSourceKind::GitRepository => "gitrepositories",
        HelmChartSourceKind::Bucket => "buckets",
    }
}

async fn get_source(
    client: &kube::Client,
    namespace: &str,
    kind: HelmChartSourceKind,
    name: &str,
) -> Result<Option<ChartSource>, kube::Error> {
    Ok(match kind {
        HelmChartSourceKind::HelmRepository => {
            Api::<HelmRepository>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await?
                .map(|repo| ChartSource::Repository(Box::new(repo)))
        }
        HelmChartSourceKind::GitRepository => {
            Api::<GitRepository>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await?
                .map(|git| ChartSource::Directory(git.status.and_then(|s| s.artifact)))
        }
        HelmChartSourceKind::Bucket => Api::<Bucket>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|bucket| ChartSource::Directory(bucket.status.and_then(|s| s.artifact))),
    })
}

/// Reconciles one HelmChart.
#[allow(clippy::too_many_lines)]
pub async fn reconcile_chart(
    object: Arc<HelmChart>,
    context: Arc<SourceContext>,
) -> Result<Action, SourceError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let key = format!("HelmChart/{}", status::key(object.as_ref()));
    let api: Api<HelmChart> = Api::namespaced(context.client.clone(), &namespace);
    let kube_error = |action: &'static str| {
        let key = key.clone();
        move |source| SourceError::Kube {
            action,
            object: key,
            source,
        }
    };
    let metric_key = ObjectKey::new("HelmChart", &name, &namespace);
    let source_ref = &object.spec.source_ref;
    let source = get_source(
        &context.client,
        &namespace,
        source_ref.kind,
        &source_ref.name,
    )
    .await
    .map_err(kube_error("reading source of"))?;
    // The source's artifact (or, for OCI repositories, its generation) is an input: a new
    // revision re-runs the build even when nothing else changed.
    let source_input = match &source {
        None => "missing".to_string(),
        Some(ChartSource::Repository(repo)) => format!(
            "{:?}/{:?}",
            repo.metadata.generation,
            repo.status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .map(|a| &a.digest)
        ),
        Some(ChartSource::Directory(artifact)) => {
            format!("{:?}", artifact.as_ref().map(|a| (&a.revision, &a.digest)))
        }
    };
    let suspended = object.spec.suspend.unwrap_or(false);
    let trigger = match begin(
        &context,
        &api,
        object.as_ref(),
        "HelmChart",
        &key,
        suspended,
        source_input,
    )
    .await?
    {
        ControlFlow::Break(action) => return Ok(action),
        ControlFlow::Continue(trigger) => trigger,
    };
    let started = Instant::now();
    let interval =
        flux_api::duration::parse(&object.spec.interval).unwrap_or(Duration::from_secs(60));

    let previous = object.status.as_ref();
    let current = stored_artifact(
        &context,
        object.as_ref(),
        previous.and_then(|s| s.artifact.as_ref()),
    )
    .map(|artifact| {
        (
            artifact,
            previous
                .and_then(|s| s.observed_chart_name.clone())
                .unwrap_or_default(),
            previous
                .and_then(|s| s.observed_values_files.clone())
                .unwrap_or_default(),
        )
    });
    let request = ChartRequest {
        namespace: namespace.clone(),
        name: name.clone(),
        chart: object.spec.chart.clone(),
        version: object
            .spec
            .version
            .clone()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "*".into()),
        values: ValuesSpec {
            files: object.spec.values_files.clone().unwrap_or_default(),
            ignore_missing: object.spec.ignore_missing_values_files.unwrap_or(false),
            generation: object.metadata.generation.unwrap_or(0),
        },
        force: previous.and_then(|s| s.observed_generation) != object.metadata.generation,
        current,
    };
    let strategy = match object.spec.reconcile_strategy {
        Some(ApiStrategy::Revision) => ReconcileStrategy::Revision,
        _ => ReconcileStrategy::ChartVersion,
    };
    let kind_name = format!("{:?}", source_ref.kind);
    let mut source_revision = None;
    let result = match &source {
        None => ChartResult::Failed(failed(
            condition::FETCH_FAILED,
            build_reason::SOURCE_UNAVAILABLE,
            format!(
                "failed to get source: {}.source.toolkit.fluxcd.io \"{}\" not found",
                source_resource(source_ref.kind),
                source_ref.name
            ),
            false,
        )),
        Some(ChartSource::Repository(repo))
            if repo.spec.repository_type == Some(HelmRepositoryType::Oci) =>
        {
            chart_from_oci_repository(&context, &request, repo)
                .await
                .map_err(kube_error("reading secrets for"))?
        }
        Some(ChartSource::Repository(repo)) => {
            let artifact = repo
                .status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .and_then(source_artifact)
                .filter(|a| context.storage.exists(a));
            match artifact {
                None => no_source_artifact(&kind_name, &source_ref.name),
                Some(artifact) => {
                    source_revision = Some(artifact.revision.clone());
                    chart_from_http_repository(&context, &request, repo, &artifact)
                        .await
                        .map_err(kube_error("reading secrets for"))?
                }
            }
        }
        Some(ChartSource::Directory(artifact)) => {
            match artifact
                .as_ref()
                .and_then(source_artifact)
                .filter(|a| context.storage.exists(a))
            {
                None => no_source_artifact(&kind_name, &source_ref.name),
                Some(artifact) => {
                    source_revision = Some(artifact.revision.clone());
                    chart_from_directory(&context, &request, strategy, &artifact)
                        .await
                        .map_err(kube_error("listing HelmRepositories for"))?
                }
            }
        }
    };
    let result = match result {
        ChartResult::Stored {
            mut artifact,
            name: chart_name,
            values_files,
            packaged,
            new,
            ..
        } => {
            // Old chart versions go; the URLs follow the advertised address.
            if new {
                if let Some(kept) = source_artifact(&artifact) {
                    let (storage, retention) = (context.storage.clone(), context.options.retention);
                    let _ = tokio::task::spawn_blocking(move || {
                        storage.garbage_collect(&kept, retention, SystemTime::now())
                    })
                    .await;
                }
            } else {
                artifact.url = context.storage.url_for(&artifact.path);
            }
            ChartResult::Stored {
                url: context
                    .storage
                    .url_for(&sibling(&artifact.path, "latest.tar.gz")),
                artifact,
                name: chart_name,
                values_files,
                packaged,
                new,
            }
        }
        failed @ ChartResult::Failed(_) => failed,
    };

    let was_failing = previous
        .and_then(|s| s.conditions.as_deref())
        .is_some_and(|c| conditions::is_false(c, condition::READY));
    let new_status = chart_status(
        &object,
        previous,
        &result,
        source_revision.as_deref(),
        &status::now(),
    );
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
    Ok(match &result {
        ChartResult::Stored {
            artifact,
            name: chart_name,
            values_files,
            packaged,
            new,
            ..
        } => {
            if *new || was_failing {
                let event_reason = if *packaged {
                    reason::CHART_PACKAGE_SUCCEEDED
                } else {
                    reason::CHART_PULL_SUCCEEDED
                };
                context.events.emit(
                    object.as_ref(),
                    EventType::Normal,
                    event_reason,
                    &build_summary(chart_name, &artifact.revision, *packaged, values_files),
                    artifact_metadata(artifact),
                );
            }
            success(&context, &key, trigger, interval)
        }
        ChartResult::Failed(failed) => {
            end_failed(&context, object.as_ref(), &key, trigger, failed, interval)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flux_api::source::{HelmChartSpec, HelmRepositorySpec, LocalHelmChartSourceReference};

    fn artifact(path: &str, revision: &str) -> ApiArtifact {
        ApiArtifact {
            digest: "sha256:00".into(),
            last_update_time: status::now(),
            metadata: None,
            path: path.into(),
            revision: revision.into(),
            size: Some(1234),
            url: format!("http://127.0.0.1/{path}"),
        }
    }

    fn ready(list: &[Condition]) -> (String, String, String) {
        let c = conditions::get(list, "Ready").expect("Ready");
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    fn chart(generation: i64) -> HelmChart {
        let mut object = HelmChart::new(
            "demo",
            HelmChartSpec {
                chart: "demo".into(),
                interval: "1m".into(),
                source_ref: LocalHelmChartSourceReference {
                    kind: HelmChartSourceKind::HelmRepository,
                    name: "charts".into(),
                    api_version: None,
                },
                ..HelmChartSpec::default()
            },
        );
        object.metadata.generation = Some(generation);
        object
    }

    #[test]
    fn human_size_is_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(532), "532B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(2000), "2kB");
        assert_eq!(human_size(12_345), "12.35kB");
        assert_eq!(human_size(52_428_800), "52.43MB");
    }

    #[test]
    fn summary_is_flux_build_summary() {
        assert_eq!(
            build_summary("demo", "1.0.0", false, &[]),
            "pulled 'demo' chart with version '1.0.0'"
        );
        assert_eq!(
            build_summary("demo", "1.0.0+2", true, &["a.yaml".into(), "b.yaml".into()]),
            "packaged 'demo' chart with version '1.0.0+2' and merged values files [a.yaml b.yaml]"
        );
    }

    #[test]
    fn repository_status_ready_then_failed_keeps_artifact() {
        let mut repo = HelmRepository::new(
            "charts",
            HelmRepositorySpec {
                url: "http://127.0.0.1/charts".into(),
                ..HelmRepositorySpec::default()
            },
        );
        repo.metadata.generation = Some(1);
        let stored = repository_status(
            &repo,
            None,
            &RepositoryResult::Stored {
                artifact: artifact("helmrepository/ns/charts/index-ab.yaml", "sha256:ab"),
                url: "http://127.0.0.1/helmrepository/ns/charts/index.yaml".into(),
                new: true,
            },
            &status::now(),
        );
        let list = stored.conditions.clone().expect("conditions");
        assert_eq!(
            ready(&list),
            (
                "True".into(),
                "Succeeded".into(),
                "stored artifact: revision 'sha256:ab'".into()
            )
        );
        assert!(conditions::is_true(&list, "ArtifactInStorage"));
        assert_eq!(stored.observed_generation, Some(1));
        repo.metadata.generation = Some(2);
        let down = repository_status(
            &repo,
            Some(&stored),
            &RepositoryResult::Failed(repository_failure(&flux_source::Error::Http {
                method: "GET",
                url: "http://127.0.0.1/charts/index.yaml".into(),
                detail: "connection refused".into(),
            })),
            &status::now(),
        );
        let list = down.conditions.clone().expect("conditions");
        let (state, reason, message) = ready(&list);
        assert_eq!((state.as_str(), reason.as_str()), ("False", "Failed"));
        assert!(message.starts_with("failed to fetch Helm repository index: GET "));
        assert!(conditions::is_true(&list, "FetchFailed"));
        assert_eq!(down.observed_generation, Some(1), "retryable: not advanced");
        assert!(down.artifact.is_some());
        assert!(down.url.is_some());
    }

    #[test]
    fn url_checks_are_stalling_errors() {
        assert!(check_http_url("https://charts.example.com").is_ok());
        assert_eq!(
            check_http_url("oci://ghcr.io/charts").unwrap_err(),
            "invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type"
        );
        assert!(check_http_url("ftp://x").is_err());
    }

    #[test]
    fn version_lookup_uses_flux_messages() {
        let index = IndexFile::parse(
            b"apiVersion: v1\nentries:\n  demo:\n  - {name: demo, version: 1.2.0, urls: [demo-1.2.0.tgz]}\n  - {name: demo, version: 1.1.0, urls: [demo-1.1.0.tgz]}\n",
            "index.yaml",
        )
        .expect("index");
        assert_eq!(resolve_version(&index, "demo", "*").unwrap(), "1.2.0");
        assert_eq!(resolve_version(&index, "demo", "~1.1").unwrap(), "1.1.0");
        let Err(Outcome::Failed {
            reason,
            message,
            stalled,
            ..
        }) = resolve_version(&index, "demo", "9.x")
        else {
            panic!("no error")
        };
        assert_eq!(reason, "InvalidChartReference");
        assert!(stalled);
        assert_eq!(
            message,
            "invalid chart reference: failed to get chart version for remote reference: no 'demo' chart with version matching '9.x' found"
        );
        let Err(Outcome::Failed { message, .. }) = resolve_version(&index, "other", "*") else {
            panic!("no error")
        };
        assert!(message.ends_with("no chart name found"), "{message}");
    }

    #[test]
    fn chart_status_stalls_then_recovers() {
        let object = chart(3);
        let stalled = chart_status(
            &object,
            None,
            &ChartResult::Failed(invalid_reference("no chart name found")),
            Some("sha256:ab"),
            &status::now(),
        );
        let list = stalled.conditions.clone().expect("conditions");
        assert_eq!(ready(&list).1, "InvalidChartReference");
        assert!(conditions::is_true(&list, "Stalled"));
        assert!(conditions::is_true(&list, "FetchFailed"));
        assert_eq!(stalled.observed_generation, Some(3), "stalled: advanced");
        assert_eq!(
            stalled.observed_source_artifact_revision.as_deref(),
            Some("sha256:ab")
        );
        let built = chart_status(
            &chart(4),
            Some(&stalled),
            &ChartResult::Stored {
                artifact: artifact("helmchart/ns/demo/demo-1.0.0+4.tgz", "1.0.0+4"),
                name: "demo".into(),
                values_files: vec!["prod.yaml".into()],
                packaged: true,
                new: true,
                url: "http://127.0.0.1/helmchart/ns/demo/latest.tar.gz".into(),
            },
            Some("sha256:cd"),
            &status::now(),
        );
        let list = built.conditions.clone().expect("conditions");
        assert_eq!(
            ready(&list),
            (
                "True".into(),
                "ChartPackageSucceeded".into(),
                "packaged 'demo' chart with version '1.0.0+4' and merged values files [prod.yaml]"
                    .into()
            )
        );
        assert!(conditions::get(&list, "Stalled").is_none());
        assert!(conditions::get(&list, "FetchFailed").is_none());
        assert_eq!(built.observed_generation, Some(4));
        assert_eq!(built.observed_chart_name.as_deref(), Some("demo"));
        assert_eq!(built.observed_values_files, Some(vec!["prod.yaml".into()]));
        assert_eq!(
            built.url.as_deref(),
            Some("http://127.0.0.1/helmchart/ns/demo/latest.tar.gz")
        );
    }

    #[test]
    fn build_errors_map_to_flux_reasons() {
        let staged = |stage| StagedError {
            stage,
            error: flux_source::Error::NotFound("x".into()),
        };
        let reason_of = |outcome: Outcome| match outcome {
            Outcome::Failed {
                condition,
                reason,
                stalled,
                ..
            } => (condition, reason, stalled),
            Outcome::Stored { .. } => panic!("not a failure"),
        };
        assert_eq!(
            reason_of(build_failure(&staged(BuildStage::ValuesMerge))),
            ("BuildFailed", "ValuesFilesError".into(), true)
        );
        assert_eq!(
            reason_of(build_failure(&staged(BuildStage::Dependencies))),
            ("BuildFailed", "DependencyBuildError".into(), false)
        );
        assert_eq!(
            reason_of(build_failure(&staged(BuildStage::Package))),
            ("BuildFailed", "ChartPackageError".into(), false)
        );
        assert_eq!(
            reason_of(build_failure(&staged(BuildStage::Store))),
            (
                "StorageOperationFailed",
                "ArchiveOperationFailed".into(),
                false
            )
        );
    }
}
