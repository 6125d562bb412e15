//! helm-controller: reconciles HelmReleases with flux-helm's renderer and release records.
//!
//! Per HelmRelease: finalizer, suspend, dependsOn, the HelmChart from `spec.chart` (or
//! `spec.chartRef`), the chart artifact (downloaded, digest verified), values and
//! valuesFrom, then install/upgrade/rollback/uninstall with Helm-compatible release Secrets,
//! server-side applied objects, readiness wait, remediation and Flux's status.
//! Decisions live in [`super::helm_plan`]; this module does the I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::discovery::{ApiCapabilities, Scope};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use serde_json::{json, Map, Value};

use flux_api::conditions as conds;
use flux_api::constants::{condition, reason, status as cstatus, FINALIZER};
use flux_api::helm::{HelmRelease, HelmReleaseStatus, ReleaseAction, RemediationStrategy};
use flux_api::kustomize::ValuesSourceKind;
use flux_helm::release::{self as rel, status as rls, Release};

use super::common::{now_time, split_api_version};
use super::helm_actions as actions;
use super::helm_plan::{self as plan, HelmAction, ReleaseState, Remediation, TestState};
use crate::runtime::events::{
    build_event, EventInput, EventPoster, EventType, InvolvedObject, KubeEventRecorder,
};
use crate::runtime::metrics::{Metrics, ObjectKey};

/// Controller name (field manager, event reporter).
pub const CONTROLLER: &str = "helm-controller";

/// helm-controller settings.
#[derive(Debug, Clone)]
pub struct HelmOptions {
    /// Watch one namespace only.
    pub namespace: Option<String>,
    /// Concurrent reconciles.
    pub concurrency: usize,
    /// Requeue delay while dependencies or the source are not ready.
    pub requeue_dependency: Duration,
    /// Where events are posted (`--events-addr`), empty for none.
    pub events_addr: String,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Retry delay after a failure when the object sets no `retryInterval`.
    pub retry_interval: Duration,
    /// `--watch-label-selector` (sharding); empty for all.
    pub label_selector: String,
    /// Impersonation (`serviceAccountName`, `--default-service-account`) and remote clusters.
    pub access: crate::runtime::access::AccessOptions,
}

impl Default for HelmOptions {
    fn default() -> Self {
        HelmOptions {
            namespace: None,
            concurrency: 4,
            requeue_dependency: Duration::from_secs(30),
            events_addr: String::new(),
            no_cross_namespace_refs: false,
            retry_interval: Duration::from_secs(30),
            label_selector: String::new(),
            access: crate::runtime::access::AccessOptions::default(),
        }
    }
}

/// Shared reconcile state.
pub struct Context {
    pub(super) client: Client,
    opts: HelmOptions,
    http: reqwest::Client,
    events: Option<EventPoster>,
    recorder: KubeEventRecorder,
    /// Reconcile metrics (`gotk_*`).
    pub metrics: Arc<Metrics>,
    resources: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("opts", &self.opts).finish()
    }
}

/// A reconcile failure (requeued with backoff by the controller loop).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReconcileError(String);

impl From<anyhow::Error> for ReconcileError {
    fn from(e: anyhow::Error) -> Self {
        ReconcileError(format!("{e:#}"))
    }
}

impl Context {
    /// This context acting with `target` for the release (storage Secrets, objects,
    /// discovery); events are still recorded through the controller's own client.
    fn for_target(&self, target: Client) -> Context {
        Context {
            recorder: KubeEventRecorder::new(self.client.clone(), CONTROLLER, CONTROLLER),
            client: target,
            opts: self.opts.clone(),
            http: self.http.clone(),
            events: self.events.clone(),
            metrics: Arc::clone(&self.metrics),
            resources: Mutex::new(HashMap::new()),
        }
    }
}

/// The context for `hr`'s release: `None` when the controller's own client serves, else one
/// impersonating `serviceAccountName` and/or talking to the `kubeConfig` cluster.
async fn release_context(ctx: &Context, hr: &HelmRelease) -> Result<Option<Context>> {
    use crate::runtime::access;
    let namespace = hr.namespace().unwrap_or_default();
    let target = access::Target {
        namespace: &namespace,
        service_account: hr.spec.service_account_name.as_deref(),
        kube_config: hr.spec.kube_config.as_ref(),
    };
    if target.is_default(&ctx.opts.access) {
        return Ok(None);
    }
    let client = access::target_client(&ctx.client, target, &ctx.opts.access).await?;
    Ok(Some(ctx.for_target(client)))
}

fn helm_chart_resource() -> ApiResource {
    ApiResource::erase::<flux_api::source::HelmChart>(&())
}

fn oci_repository_resource() -> ApiResource {
    ApiResource::erase::<flux_api::source::OCIRepository>(&())
}

/// Builds the shared context.
pub fn context(client: Client, opts: HelmOptions, metrics: Arc<Metrics>) -> Arc<Context> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    Arc::new(Context {
        events: EventPoster::new(&opts.events_addr),
        recorder: KubeEventRecorder::new(client.clone(), CONTROLLER, CONTROLLER),
        client,
        opts,
        http,
        metrics,
        resources: Mutex::new(HashMap::new()),
    })
}

/// Runs the controller until the stream of HelmRelease changes ends.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let (releases, charts, ocis): (Api<HelmRelease>, Api<DynamicObject>, Api<DynamicObject>) =
        match &ctx.opts.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::all_with(client.clone(), &helm_chart_resource()),
                Api::namespaced_with(client.clone(), ns, &oci_repository_resource()),
            ),
            None => (
                Api::all(client.clone()),
                Api::all_with(client.clone(), &helm_chart_resource()),
                Api::all_with(client.clone(), &oci_repository_resource()),
            ),
        };
    let mut watch = watcher::Config::default();
    if !ctx.opts.label_selector.is_empty() {
        watch = watch.labels(&ctx.opts.label_selector);
    }
    let controller = Controller::new(releases, watch);
    let store = controller.store();
    let oci_store = store.clone();
    let concurrency = u16::try_from(ctx.opts.concurrency.max(1)).unwrap_or(u16::MAX);
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        // A HelmChart (or OCIRepository) artifact change re-queues the releases using it.
        .watches_with(
            charts,
            helm_chart_resource(),
            watcher::Config::default(),
            move |chart| referrers(&store.state(), "HelmChart", &chart),
        )
        .watches_with(
            ocis,
            oci_repository_resource(),
            watcher::Config::default(),
            move |repo| referrers(&oci_store.state(), "OCIRepository", &repo),
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("reconcile loop: {e}");
            }
        })
        .await;
}

fn referrers(
    releases: &[Arc<HelmRelease>],
    kind: &str,
    source: &DynamicObject,
) -> Vec<ObjectRef<HelmRelease>> {
    let ns = source.namespace().unwrap_or_default();
    let id = format!("{ns}/{}", source.name_any());
    releases
        .iter()
        .filter(|hr| {
            let by_template = kind == "HelmChart"
                && hr.status.as_ref().and_then(|s| s.helm_chart.as_deref()) == Some(id.as_str());
            let by_ref = hr.spec.chart_ref.as_ref().is_some_and(|r| {
                format!("{:?}", r.kind) == kind
                    && r.name == source.name_any()
                    && r.namespace
                        .clone()
                        .or_else(|| hr.namespace())
                        .unwrap_or_default()
                        == ns
            });
            by_template || by_ref
        })
        .map(|hr| ObjectRef::from_obj(hr.as_ref()))
        .collect()
}

fn error_policy(hr: Arc<HelmRelease>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(
        "HelmRelease {}/{}: {error}",
        hr.namespace().unwrap_or_default(),
        hr.name_any()
    );
    Action::requeue(retry_interval(&hr, &ctx))
}

fn retry_interval(hr: &HelmRelease, ctx: &Context) -> Duration {
    let from_strategy = |s: Option<&flux_api::helm::ActionStrategy>| {
        s.and_then(|s| s.retry_interval.as_deref())
            .and_then(|d| flux_api::duration::parse(d).ok())
    };
    from_strategy(hr.spec.upgrade.as_ref().and_then(|u| u.strategy.as_ref()))
        .or_else(|| from_strategy(hr.spec.install.as_ref().and_then(|i| i.strategy.as_ref())))
        .unwrap_or(ctx.opts.retry_interval)
}

fn interval(hr: &HelmRelease) -> Duration {
    flux_api::duration::parse(&hr.spec.interval).unwrap_or(Duration::from_secs(600))
}

/// One reconcile of one HelmRelease.
pub async fn reconcile(hr: Arc<HelmRelease>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let ns = hr.namespace().unwrap_or_default();
    let name = hr.name_any();
    let key = ObjectKey::new("HelmRelease", &name, &ns);
    let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), &ns);
    // The watch cache can lag behind our own last status write (a queued reconcile would
    // then start from a status without its conditions): work from the live object.
    let hr = match api.get_opt(&name).await {
        Ok(Some(live)) => Arc::new(live),
        Ok(None) => return Ok(Action::await_change()),
        Err(e) => return Err(anyhow!("reading HelmRelease {ns}/{name}: {e}").into()),
    };
    let finalizers = hr.finalizers().to_vec();

    if hr.metadata.deletion_timestamp.is_some() {
        if finalizers.iter().any(|f| f == FINALIZER) {
            if !hr.spec.suspend.unwrap_or(false) {
                // A target that cannot be reached any more does not block deletion (Flux drops
                // the finalizer then).
                match release_context(&ctx, &hr).await {
                    Ok(scoped) => uninstall_all(scoped.as_ref().unwrap_or(&ctx), &hr).await?,
                    Err(error) => {
                        tracing::warn!(%error, "HelmRelease {ns}/{name}: skipping uninstall");
                    }
                }
                delete_template_chart(&ctx, &hr).await?;
            }
            if let Some(patch) = crate::runtime::finalizer::remove_patch(&finalizers, FINALIZER) {
                api.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::<Value>::Json(
                        serde_json::from_value(patch).context("finalizer patch")?,
                    ),
                )
                .await
                .context("removing the finalizer")?;
            }
        }
        ctx.metrics.delete_object(&key);
        return Ok(Action::await_change());
    }
    ctx.metrics
        .record_suspend(&key, hr.spec.suspend.unwrap_or(false));
    if hr.spec.suspend.unwrap_or(false) {
        tracing::info!("HelmRelease {ns}/{name}: reconciliation is suspended for this object");
        return Ok(Action::await_change());
    }
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let patch = crate::runtime::finalizer::add_patch(&finalizers, FINALIZER);
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::<Value>::Json(serde_json::from_value(patch).context("finalizer patch")?),
        )
        .await
        .context("adding the finalizer")?;
    }

    let mut status = hr.status.clone().unwrap_or_default();
    let outcome = reconcile_release(&ctx, &hr, &mut status).await;
    let generation = hr.metadata.generation;
    let mut conditions = status.conditions.take().unwrap_or_default();
    let now = now_time();
    let requeue = match &outcome {
        Ok(Outcome::Done) => {
            conds::delete(&mut conditions, condition::RECONCILING);
            conds::delete(&mut conditions, condition::STALLED);
            status.observed_generation = generation;
            Action::requeue(interval(&hr))
        }
        Ok(Outcome::Retry {
            reason,
            message,
            after,
        }) => {
            conds::mark_false(
                &mut conditions,
                condition::READY,
                reason,
                message,
                generation,
                now.clone(),
            );
            Action::requeue(after.unwrap_or_else(|| retry_interval(&hr, &ctx)))
        }
        Ok(Outcome::Stalled {
            reason,
            message,
            stalled,
        }) => {
            // Retries exhausted: nothing more happens until the spec (or a reset) changes.
            conds::delete(&mut conditions, condition::RECONCILING);
            conds::mark_true(
                &mut conditions,
                condition::STALLED,
                "RetriesExceeded",
                stalled,
                generation,
                now.clone(),
            );
            conds::mark_false(
                &mut conditions,
                condition::READY,
                reason,
                message,
                generation,
                now.clone(),
            );
            status.observed_generation = generation;
            Action::requeue(interval(&hr))
        }
        Err(e) => {
            conds::mark_false(
                &mut conditions,
                condition::READY,
                reason::RECONCILIATION_FAILED,
                &format!("{e:#}"),
                generation,
                now.clone(),
            );
            Action::requeue(retry_interval(&hr, &ctx))
        }
    };
    if let Some(requested) = conds::reconcile_request(hr.metadata.annotations.as_ref()) {
        status.last_handled_reconcile_at = Some(requested.to_string());
    }
    status.conditions = Some(conditions);
    ctx.metrics
        .record_conditions(&key, status.conditions.as_deref().unwrap_or_default());
    ctx.metrics
        .observe_duration(&key, started.elapsed().as_secs_f64());
    write_status(&api, &name, &status).await?;
    Ok(requeue)
}

async fn write_status(
    api: &Api<HelmRelease>,
    name: &str,
    status: &HelmReleaseStatus,
) -> Result<()> {
    let value = serde_json::to_value(status).context("encoding status")?;
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": value })),
    )
    .await
    .with_context(|| format!("patching the status of HelmRelease {name}"))?;
    Ok(())
}

/// How a reconcile ended (errors are `Err`).
enum Outcome {
    /// Release in sync (or an action finished); Ready already set.
    Done,
    /// Not ready yet; Ready=False with this reason and message.
    Retry {
        reason: &'static str,
        message: String,
        after: Option<Duration>,
    },
    /// Retries exhausted: `Stalled=True` with `stalled`, Ready=False as given.
    Stalled {
        reason: &'static str,
        message: String,
        stalled: String,
    },
}

/// A chart ready to render.
#[derive(Clone)]
struct LoadedChart {
    archive: Vec<u8>,
    name: String,
    version: String,
    /// The OCI manifest digest, for an OCIRepository source.
    oci_digest: Option<String>,
}

async fn reconcile_release(
    ctx: &Context,
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
) -> Result<Outcome> {
    let generation = hr.metadata.generation;
    let mut conditions = status.conditions.take().unwrap_or_default();
    conds::mark_true(
        &mut conditions,
        condition::RECONCILING,
        reason::PROGRESSING,
        "Fulfilling prerequisites",
        generation,
        now_time(),
    );
    status.conditions = Some(conditions);

    if let Some(message) = dependencies_not_ready(ctx, hr).await? {
        return Ok(Outcome::Retry {
            reason: reason::DEPENDENCY_NOT_READY,
            message,
            after: Some(ctx.opts.requeue_dependency),
        });
    }

    let chart = match load_chart_source(ctx, hr, status).await? {
        Ok(chart) => chart,
        Err((reason, message)) => {
            return Ok(Outcome::Retry {
                reason,
                message,
                after: Some(ctx.opts.requeue_dependency.min(Duration::from_secs(5))),
            })
        }
    };

    let values = match compose_values(ctx, hr).await? {
        Ok(v) => v,
        Err(message) => {
            return Ok(Outcome::Retry {
                reason: reason::VALUES_ERROR,
                message,
                after: None,
            })
        }
    };
    let digest = plan::config_digest(&values);

    // The release (storage Secrets and objects) lives in the target cluster and is handled
    // as the target identity from here on.
    let scoped = release_context(ctx, hr).await?;
    let ctx = scoped.as_ref().unwrap_or(ctx);

    // `reconcile.fluxcd.io/resetAt` / `forceAt`, acted on when paired with requestedAt.
    let annotations = hr.metadata.annotations.as_ref();
    let last_reconcile = status.last_handled_reconcile_at.clone();
    let (reset_at, reset) = conds::handle_paired_request(
        annotations,
        flux_api::constants::annotation::RESET_REQUESTED_AT,
        last_reconcile.as_deref(),
        status.last_handled_reset_at.as_deref(),
    );
    status.last_handled_reset_at = reset_at;
    let (force_at, mut force) = conds::handle_paired_request(
        annotations,
        flux_api::constants::annotation::FORCE_REQUESTED_AT,
        last_reconcile.as_deref(),
        status.last_handled_force_at.as_deref(),
    );
    status.last_handled_force_at = force_at;

    // Failure counters restart when the desired state changes (Flux resets them on a new
    // generation, chart version or values) or on a reset request.
    if reset
        || status.last_attempted_generation != generation
        || status.last_attempted_config_digest.as_deref() != Some(digest.as_str())
        || status.last_attempted_revision.as_deref() != Some(chart.version.as_str())
    {
        status.failures = Some(0);
        status.install_failures = Some(0);
        status.upgrade_failures = Some(0);
    }
    status.last_attempted_generation = generation;
    status.last_attempted_config_digest = Some(digest.clone());
    status.last_attempted_revision = Some(chart.version.clone());
    status
        .last_attempted_revision_digest
        .clone_from(&chart.oci_digest);
    let storage_ns = plan::storage_namespace(hr);
    status.storage_namespace = Some(storage_ns.clone());

    let release_name = plan::release_name(hr);
    let store = SecretStore {
        api: Api::namespaced(ctx.client.clone(), &storage_ns),
        name: release_name.clone(),
    };

    // Flux loops over release states until in sync, an error or a terminal outcome.
    for _ in 0..6 {
        let history = store.history().await?;
        status.history = Some(plan::merge_history(
            &history,
            status.history.as_deref(),
            chart.oci_digest.as_deref(),
        ));
        let mut state = plan::release_state(&history, &chart.name, &chart.version, &digest);
        if state == ReleaseState::InSync
            && status.observed_generation != generation
            && observed_render_digests(hr)
                != (
                    status.observed_post_renderers_digest.clone(),
                    status.observed_common_metadata_digest.clone(),
                )
        {
            // Post-renderers or commonMetadata changed: the manifest differs, upgrade.
            state = ReleaseState::OutOfSync;
        }
        // A force request upgrades once, whatever the state and the retries.
        let forced = force
            && matches!(
                state,
                ReleaseState::InSync | ReleaseState::OutOfSync | ReleaseState::Failed
            );
        if forced {
            force = false;
            state = ReleaseState::OutOfSync;
        }
        if state == ReleaseState::InSync {
            let latest_snapshot = status.history.as_ref().and_then(|h| h.first());
            let active = status.last_attempted_release_action.unwrap_or_default();
            match plan::test_state(hr, latest_snapshot) {
                TestState::Untested => {
                    if let Some(latest) = plan::latest(&history).cloned() {
                        run_tests(ctx, hr, status, &store, latest).await?;
                        continue;
                    }
                }
                // A failed test not ignored is a failed release: remediate it.
                TestState::Failed if !plan::ignore_test_failures(hr, active) => {
                    state = ReleaseState::Failed;
                }
                _ => {}
            }
        }
        tracing::debug!(
            "HelmRelease {}/{}: state {state:?}",
            hr.namespace().unwrap_or_default(),
            hr.name_any()
        );
        match state {
            ReleaseState::InSync => {
                let latest = plan::latest(&history).cloned().unwrap_or_default();
                update_inventory(status, &latest);
                detect_drift(ctx, hr, &latest, status).await?;
                let mut conditions = status.conditions.take().unwrap_or_default();
                if !plan::tests_enabled(hr) {
                    conds::delete(&mut conditions, condition::TEST_SUCCESS);
                }
                // Ready mirrors TestSuccess before Released, unless test failures are ignored.
                let tested = summarized_test(hr, &conditions);
                if let Some(failed) = tested.as_ref().filter(|c| c.status != cstatus::TRUE) {
                    let message = failed.message.clone();
                    let reason = if failed.reason == "Pending" {
                        "Pending"
                    } else {
                        reason::TEST_FAILED
                    };
                    status.conditions = Some(conditions);
                    return Ok(Outcome::Retry {
                        reason,
                        message,
                        after: Some(interval(hr)),
                    });
                }
                let released_reason = tested
                    .or_else(|| conds::get(&conditions, condition::RELEASED).cloned())
                    .filter(|c| c.status == cstatus::TRUE)
                    .map(|c| (c.reason.clone(), c.message.clone()));
                let (ready_reason, ready_message) = released_reason.unwrap_or_else(|| {
                    let action = if latest.version > 1 {
                        "upgrade"
                    } else {
                        "install"
                    };
                    (
                        if latest.version > 1 {
                            reason::UPGRADE_SUCCEEDED.to_string()
                        } else {
                            reason::INSTALL_SUCCEEDED.to_string()
                        },
                        plan::succeeded_message(action, &latest),
                    )
                });
                conds::mark_ready(
                    &mut conditions,
                    &ready_reason,
                    &ready_message,
                    generation,
                    &now_time(),
                );
                status.conditions = Some(conditions);
                return Ok(Outcome::Done);
            }
            ReleaseState::Locked => {
                if let Some(mut latest) = plan::latest(&history).cloned() {
                    let previous = latest.status().to_string();
                    set_status(
                        &mut latest,
                        rls::FAILED,
                        &format!("Release unlocked from stale '{previous}' state"),
                    );
                    store.update(&latest).await?;
                    let message = format!(
                        "Unlocked Helm release {} with chart {} in {previous} state",
                        plan::release_ref(&latest),
                        plan::chart_ref(&latest)
                    );
                    emit(ctx, hr, EventType::Normal, "PendingRelease", &message).await;
                }
            }
            ReleaseState::Absent => {
                let install = Remediation::install(hr);
                if install.exhausted(status.install_failures.unwrap_or(0)) {
                    return Ok(retries_exceeded(
                        hr,
                        status,
                        "install",
                        status.install_failures,
                    ));
                }
                let next = plan::latest(&history).map_or(1, |r| r.version + 1);
                run_install_or_upgrade(
                    ctx, hr, status, &store, &chart, &values, &history, next, false,
                )
                .await?;
                if status_failed_last(status)
                    && !install.should_remediate(status.install_failures.unwrap_or(0))
                {
                    return Ok(failed_outcome(hr, status));
                }
                if status_failed_last(status) {
                    // Install remediation: uninstall, then try again on the next reconcile.
                    remediate_uninstall(ctx, hr, status, &store).await?;
                    return Ok(failed_outcome(hr, status));
                }
            }
            ReleaseState::OutOfSync => {
                let upgrade = Remediation::upgrade(hr);
                if !forced && upgrade.exhausted(status.upgrade_failures.unwrap_or(0)) {
                    return Ok(retries_exceeded(
                        hr,
                        status,
                        "upgrade",
                        status.upgrade_failures,
                    ));
                }
                let next = plan::latest(&history).map_or(1, |r| r.version + 1);
                run_install_or_upgrade(
                    ctx, hr, status, &store, &chart, &values, &history, next, true,
                )
                .await?;
            }
            ReleaseState::Failed => {
                let last_action = status.last_attempted_release_action.unwrap_or_default();
                let (remediation, failures) = match last_action {
                    ReleaseAction::Install => (
                        Remediation::install(hr),
                        status.install_failures.unwrap_or(0),
                    ),
                    ReleaseAction::Upgrade => (
                        Remediation::upgrade(hr),
                        status.upgrade_failures.unwrap_or(0),
                    ),
                };
                if failures == 0 {
                    // The desired state changed since the failure: upgrade again.
                    let next = plan::latest(&history).map_or(1, |r| r.version + 1);
                    run_install_or_upgrade(
                        ctx, hr, status, &store, &chart, &values, &history, next, true,
                    )
                    .await?;
                    continue;
                }
                if !remediation.should_remediate(failures) {
                    let action = match last_action {
                        ReleaseAction::Install => "install",
                        ReleaseAction::Upgrade => "upgrade",
                    };
                    return Ok(retries_exceeded(hr, status, action, Some(failures)));
                }
                if conds::is_true(
                    status.conditions.as_deref().unwrap_or_default(),
                    condition::REMEDIATED,
                ) {
                    // Already remediated this failure; wait for a change.
                    return Ok(failed_outcome(hr, status));
                }
                match remediation.strategy {
                    RemediationStrategy::Rollback => {
                        remediate_rollback(ctx, hr, status, &store, &history).await?;
                    }
                    RemediationStrategy::Uninstall => {
                        remediate_uninstall(ctx, hr, status, &store).await?;
                    }
                }
                return Ok(failed_outcome(hr, status));
            }
        }
    }
    Err(anyhow!("release did not settle after 6 actions"))
}

/// Digests of `spec.postRenderers` and `spec.commonMetadata`, as recorded in status.
fn observed_render_digests(hr: &HelmRelease) -> (Option<String>, Option<String>) {
    use sha2::Digest as _;
    let common = hr
        .spec
        .common_metadata
        .as_ref()
        .and_then(|c| serde_json::to_vec(c).ok())
        .map(|json| format!("sha256:{}", hex::encode(sha2::Sha256::digest(json))));
    (
        plan::post_renderers_digest(hr.spec.post_renderers.as_ref()),
        common,
    )
}

pub(super) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

fn status_failed_last(status: &HelmReleaseStatus) -> bool {
    conds::is_false(
        status.conditions.as_deref().unwrap_or_default(),
        condition::RELEASED,
    )
}

fn failed_outcome(hr: &HelmRelease, status: &HelmReleaseStatus) -> Outcome {
    let conditions = status.conditions.as_deref().unwrap_or_default();
    // Ready mirrors Remediated when a remediation ran, else Released.
    let source = conds::get(conditions, condition::REMEDIATED)
        .filter(|c| c.status == cstatus::TRUE)
        .or_else(|| {
            conds::get(conditions, condition::TEST_SUCCESS)
                .filter(|c| c.status == cstatus::FALSE && !ignores_test_failures(hr))
        })
        .or_else(|| conds::get(conditions, condition::RELEASED));
    let (reason, message) = source.map_or((reason::UPGRADE_FAILED, String::new()), |c| {
        (static_reason(&c.reason), c.message.clone())
    });
    Outcome::Retry {
        reason,
        message,
        after: None,
    }
}

/// Flux's `ErrExceededMaxRetries` handling: `Stalled=True` `RetriesExceeded`
/// "Failed to <action> after <n> attempt(s)"; Ready keeps the last failure.
fn retries_exceeded(
    hr: &HelmRelease,
    status: &HelmReleaseStatus,
    action: &str,
    failures: Option<i64>,
) -> Outcome {
    let stalled = format!(
        "Failed to {action} after {} attempt(s)",
        failures.unwrap_or(0)
    );
    match failed_outcome(hr, status) {
        Outcome::Retry {
            reason, message, ..
        } => Outcome::Stalled {
            reason,
            message: if message.is_empty() {
                stalled.clone()
            } else {
                message
            },
            stalled,
        },
        other => other,
    }
}

/// `spec.test.ignoreFailures`: the TestSuccess condition is left out of Ready.
fn ignores_test_failures(hr: &HelmRelease) -> bool {
    hr.spec
        .test
        .as_ref()
        .and_then(|t| t.ignore_failures)
        .unwrap_or(false)
}

/// The TestSuccess condition when it takes part in Ready (tests on, failures not ignored).
fn summarized_test(
    hr: &HelmRelease,
    conditions: &[flux_api::meta::Condition],
) -> Option<flux_api::meta::Condition> {
    if !plan::tests_enabled(hr) || ignores_test_failures(hr) {
        return None;
    }
    conds::get(conditions, condition::TEST_SUCCESS).cloned()
}

/// Flux's Test action on the latest release: TestSuccess True/False with Flux's messages,
/// events, the tested snapshot in `status.history`, and on failure `failures` plus the active
/// remediation's counter (unless test failures are ignored).
async fn run_tests(
    ctx: &Context,
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
    store: &SecretStore,
    latest: Release,
) -> Result<()> {
    let generation = hr.metadata.generation;
    let (tested, result) = actions::test_release(ctx, hr, store, latest).await?;
    let history = store.history().await?;
    let mut snapshots = plan::merge_history(&history, status.history.as_deref(), None);
    let observed = plan::test_hooks(&tested);
    let ran = observed.values().any(|h| h.phase.is_some());
    if let Some(first) = snapshots
        .first_mut()
        .filter(|f| i64::from(f.version) == tested.version)
    {
        if result.is_ok() || ran {
            first.test_hooks = Some(observed);
        }
    }
    status.history = Some(snapshots);
    let mut conditions = status.conditions.take().unwrap_or_default();
    match result {
        Ok(count) => {
            let message = plan::test_succeeded_message(&tested, count);
            conds::mark_true(
                &mut conditions,
                condition::TEST_SUCCESS,
                reason::TEST_SUCCEEDED,
                &message,
                generation,
                now_time(),
            );
            status.conditions = Some(conditions);
            emit(ctx, hr, EventType::Normal, reason::TEST_SUCCEEDED, &message).await;
            Ok(())
        }
        Err(e) => {
            let message = plan::test_failed_message(&tested, &format!("{e:#}"));
            conds::mark_false(
                &mut conditions,
                condition::TEST_SUCCESS,
                reason::TEST_FAILED,
                &message,
                generation,
                now_time(),
            );
            status.conditions = Some(conditions);
            status.failures = Some(status.failures.unwrap_or(0) + 1);
            let active = status.last_attempted_release_action.unwrap_or_default();
            if ran && !plan::ignore_test_failures(hr, active) {
                match active {
                    ReleaseAction::Install => {
                        status.install_failures = Some(status.install_failures.unwrap_or(0) + 1);
                    }
                    ReleaseAction::Upgrade => {
                        status.upgrade_failures = Some(status.upgrade_failures.unwrap_or(0) + 1);
                    }
                }
            }
            emit(ctx, hr, EventType::Warning, reason::TEST_FAILED, &message).await;
            if ran {
                Ok(())
            } else {
                // Nothing observed: retry the test on the next reconcile.
                Err(e)
            }
        }
    }
}

fn static_reason(reason: &str) -> &'static str {
    [
        reason::INSTALL_FAILED,
        reason::UPGRADE_FAILED,
        reason::ROLLBACK_SUCCEEDED,
        reason::ROLLBACK_FAILED,
        reason::UNINSTALL_SUCCEEDED,
        reason::UNINSTALL_FAILED,
        reason::INSTALL_SUCCEEDED,
        reason::UPGRADE_SUCCEEDED,
        reason::TEST_FAILED,
        reason::TEST_SUCCEEDED,
    ]
    .into_iter()
    .find(|r| *r == reason)
    .unwrap_or(reason::UPGRADE_FAILED)
}

pub(super) fn set_status(release: &mut Release, status: &str, description: &str) {
    let info = release.info.get_or_insert_with(Default::default);
    info.status = status.to_string();
    if !description.is_empty() {
        info.description = description.to_string();
    }
}

pub(super) fn now_string() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

fn update_inventory(status: &mut HelmReleaseStatus, release: &Release) {
    let Ok(objects) = plan::manifest_objects(&release.manifest) else {
        return;
    };
    let mut entries: Vec<_> = objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            if o.pointer("/metadata/namespace").is_none() {
                if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("namespace".into(), Value::String(release.namespace.clone()));
                }
            }
            plan::inventory_entry(&o)
        })
        .collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    status.inventory = Some(flux_api::meta::ResourceInventory { entries });
}

/// Renders the chart for `values` and records + applies revision `version`.
#[allow(clippy::too_many_arguments)]
async fn run_install_or_upgrade(
    ctx: &Context,
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
    store: &SecretStore,
    chart: &LoadedChart,
    values: &Map<String, Value>,
    history: &[Release],
    version: i64,
    upgrade: bool,
) -> Result<()> {
    let started = Instant::now();
    let action = if upgrade { "upgrade" } else { "install" };
    let generation = hr.metadata.generation;
    let rel_ns = plan::release_namespace(hr);
    let name = store.name.clone();
    let chart_label = format!("{}@{}", chart.name, chart.version);
    status.last_attempted_release_action = Some(if upgrade {
        ReleaseAction::Upgrade
    } else {
        ReleaseAction::Install
    });
    let previous = plan::latest(history)
        .filter(|r| r.status() != rls::UNINSTALLED)
        .cloned();
    let rendered = {
        let (hr, chart, values) = (hr.clone(), chart.clone(), values.clone());
        let (name, rel_ns, is_upgrade) =
            (name.clone(), rel_ns.clone(), upgrade && previous.is_some());
        let lookup = actions::ClusterLookup {
            client: ctx.client.clone(),
            handle: tokio::runtime::Handle::current(),
        };
        // The renderer is synchronous and `lookup` blocks on API calls: render off the
        // async workers.
        tokio::task::spawn_blocking(move || {
            render(
                &hr, &chart, &values, &name, &rel_ns, is_upgrade, version, lookup,
            )
        })
        .await
        .map_err(|e| anyhow!("render task: {e}"))
        .and_then(|r| r)
    };
    let result = match rendered {
        Err(e) => Err(e),
        Ok(mut release) => {
            set_status(
                &mut release,
                if upgrade {
                    rls::PENDING_UPGRADE
                } else {
                    rls::PENDING_INSTALL
                },
                if upgrade {
                    "Preparing upgrade"
                } else {
                    "Initial install underway"
                },
            );
            if let (Some(prev), Some(info)) = (previous.as_ref(), release.info.as_mut()) {
                info.first_deployed = prev.info.as_ref().and_then(|i| i.first_deployed.clone());
            }
            store.create(&release).await?;
            let opts = plan::action_options(
                hr,
                if upgrade {
                    HelmAction::Upgrade
                } else {
                    HelmAction::Install
                },
            );
            let (pre, post) = if previous.is_some() {
                ("pre-upgrade", "post-upgrade")
            } else {
                ("pre-install", "post-install")
            };
            let mut created = Vec::new();
            let mut applied = install_crds(ctx, hr, chart, values, previous.is_some()).await;
            if applied.is_ok() && !opts.disable_hooks {
                applied = actions::run_hooks(ctx, &mut release, pre, opts.timeout, &|_| true)
                    .await
                    .map(|_| ())
                    .map_err(|e| anyhow!("{pre} hooks failed: {e:#}"));
            }
            if applied.is_ok() {
                applied =
                    apply_release(ctx, &release, previous.as_ref(), &opts, &mut created).await;
            }
            if applied.is_ok() && !opts.disable_hooks {
                applied = actions::run_hooks(ctx, &mut release, post, opts.timeout, &|_| true)
                    .await
                    .map(|_| ())
                    .map_err(|e| anyhow!("{post} hooks failed: {e:#}"));
            }
            if applied.is_err() && opts.cleanup_on_fail {
                cleanup_created(ctx, &release, &created).await;
            }
            match applied {
                Ok(()) => {
                    supersede(store, history, None).await?;
                    set_status(
                        &mut release,
                        rls::DEPLOYED,
                        if upgrade {
                            "Upgrade complete"
                        } else {
                            "Install complete"
                        },
                    );
                    store.update(&release).await?;
                    Ok(release)
                }
                Err(e) => {
                    set_status(
                        &mut release,
                        rls::FAILED,
                        &format!("{action} failed: {e:#}"),
                    );
                    store.update(&release).await?;
                    Err(e)
                }
            }
        }
    };
    status.last_attempted_release_action_duration = Some(format!("{:?}", started.elapsed()));
    let mut conditions = status.conditions.take().unwrap_or_default();
    let now = now_time();
    match result {
        Ok(release) => {
            let message = plan::succeeded_message(action, &release);
            let reason = if upgrade {
                reason::UPGRADE_SUCCEEDED
            } else {
                reason::INSTALL_SUCCEEDED
            };
            conds::mark_true(
                &mut conditions,
                condition::RELEASED,
                reason,
                &message,
                generation,
                now.clone(),
            );
            conds::delete(&mut conditions, condition::REMEDIATED);
            // The new release is not tested yet (Flux: install False, upgrade Unknown).
            if plan::tests_enabled(hr) {
                let pending = format!(
                    "Helm release {} with chart {} is awaiting tests",
                    plan::release_ref(&release),
                    plan::chart_ref(&release)
                );
                if upgrade {
                    conds::mark_unknown(
                        &mut conditions,
                        condition::TEST_SUCCESS,
                        "Pending",
                        &pending,
                        generation,
                        now.clone(),
                    );
                } else {
                    conds::mark_false(
                        &mut conditions,
                        condition::TEST_SUCCESS,
                        "Pending",
                        &pending,
                        generation,
                        now.clone(),
                    );
                }
            }
            status.conditions = Some(conditions);
            status.failures = Some(0);
            (
                status.observed_post_renderers_digest,
                status.observed_common_metadata_digest,
            ) = observed_render_digests(hr);
            emit(ctx, hr, EventType::Normal, reason, &message).await;
            let pruned = prune_history(store, hr).await;
            if let Err(e) = pruned {
                tracing::warn!("pruning release history: {e:#}");
            }
        }
        Err(e) => {
            let message =
                plan::failed_message(action, &rel_ns, &name, &chart_label, &format!("{e:#}"));
            let reason = if upgrade {
                reason::UPGRADE_FAILED
            } else {
                reason::INSTALL_FAILED
            };
            conds::mark_false(
                &mut conditions,
                condition::RELEASED,
                reason,
                &message,
                generation,
                now.clone(),
            );
            conds::delete(&mut conditions, condition::REMEDIATED);
            status.conditions = Some(conditions);
            status.failures = Some(status.failures.unwrap_or(0) + 1);
            if upgrade {
                status.upgrade_failures = Some(status.upgrade_failures.unwrap_or(0) + 1);
            } else {
                status.install_failures = Some(status.install_failures.unwrap_or(0) + 1);
            }
            emit(ctx, hr, EventType::Warning, reason, &message).await;
        }
    }
    Ok(())
}

/// Renders and post-renders a release record (on a blocking thread: the chart model is not
/// `Send`, and `lookup` blocks).
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
fn render(
    hr: &HelmRelease,
    chart: &LoadedChart,
    values: &Map<String, Value>,
    name: &str,
    namespace: &str,
    is_upgrade: bool,
    version: i64,
    lookup: actions::ClusterLookup,
) -> Result<Release> {
    let loaded = flux_helm::load_archive(
        &chart.archive,
        &format!("{}-{}.tgz", chart.name, chart.version),
    )
    .map_err(|e| anyhow!("failed to load chart: {e}"))?;
    // The version may carry the OCI digest (`+<12 hex>`), as Flux mutates it.
    if let Some(meta) = loaded.metadata.as_map() {
        meta.borrow_mut()
            .insert("version".into(), flux_helm::Value::str(&chart.version));
    }
    let user = flux_helm::json::from_serde(Value::Object(values.clone()));
    let skip_schema = if is_upgrade {
        hr.spec
            .upgrade
            .as_ref()
            .and_then(|u| u.disable_schema_validation)
    } else {
        hr.spec
            .install
            .as_ref()
            .and_then(|i| i.disable_schema_validation)
    }
    .unwrap_or(false);
    let opts = flux_helm::RenderOptions {
        release_name: name.to_string(),
        namespace: namespace.to_string(),
        include_crds: false,
        skip_schema_validation: skip_schema,
        is_upgrade,
        ..flux_helm::RenderOptions::default()
    };
    let env = flux_helm::ReleaseEnv {
        revision: version,
        lookup: Some(std::rc::Rc::new(lookup)),
    };
    let rendered =
        flux_helm::render_in(loaded.clone(), &user, &opts, &env).map_err(|e| anyhow!("{e}"))?;
    let mut release = rel::new_release(
        name,
        namespace,
        version,
        &loaded,
        &user,
        &rendered,
        rls::PENDING_INSTALL,
        &now_string(),
        "",
    );
    let kustomized = plan::kustomize_post_render(
        &release.manifest,
        hr.spec.post_renderers.as_deref().unwrap_or_default(),
    )
    .map_err(|e| anyhow!("{e}"))?;
    release.manifest = plan::post_render(
        &kustomized,
        &hr.name_any(),
        &hr.namespace().unwrap_or_default(),
        hr.spec.common_metadata.as_ref(),
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(release)
}

/// Marks every deployed revision (and `failed_current`, on rollback) superseded.
async fn supersede(
    store: &SecretStore,
    history: &[Release],
    failed_current: Option<&Release>,
) -> Result<()> {
    for old in history {
        let is_current = failed_current.is_some_and(|c| c.version == old.version);
        if old.status() == rls::DEPLOYED || is_current {
            let mut old = old.clone();
            set_status(&mut old, rls::SUPERSEDED, "");
            store.update(&old).await?;
        }
    }
    Ok(())
}

async fn prune_history(store: &SecretStore, hr: &HelmRelease) -> Result<()> {
    let max = usize::try_from(hr.spec.max_history.unwrap_or(5)).unwrap_or(0);
    let history = store.history().await?;
    for key in rel::prune(&history, max) {
        store.delete(&key).await?;
    }
    Ok(())
}

async fn remediate_rollback(
    ctx: &Context,
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
    store: &SecretStore,
    history: &[Release],
) -> Result<()> {
    let generation = hr.metadata.generation;
    let Some(target) = plan::rollback_target(history).cloned() else {
        let mut conditions = status.conditions.take().unwrap_or_default();
        conds::mark_false(
            &mut conditions,
            condition::REMEDIATED,
            reason::ROLLBACK_FAILED,
            "missing target release for rollback",
            generation,
            now_time(),
        );
        status.conditions = Some(conditions);
        return Ok(());
    };
    let Some(current) = plan::latest(history).cloned() else {
        return Ok(());
    };
    let mut release = target.clone();
    release.version = current.version + 1;
    let info = release.info.get_or_insert_with(Default::default);
    info.status = rls::PENDING_ROLLBACK.into();
    info.description = format!("Rollback to {}", target.version);
    info.last_deployed = Some(now_string());
    info.rollback_revision = target.version;
    store.create(&release).await?;
    let opts = plan::action_options(hr, HelmAction::Rollback);
    let mut created = Vec::new();
    let mut applied = Ok(());
    if !opts.disable_hooks {
        applied = actions::run_hooks(ctx, &mut release, "pre-rollback", opts.timeout, &|_| true)
            .await
            .map(|_| ());
    }
    if applied.is_ok() {
        applied = apply_release(ctx, &release, Some(&current), &opts, &mut created).await;
    }
    if applied.is_ok() && !opts.disable_hooks {
        applied = actions::run_hooks(ctx, &mut release, "post-rollback", opts.timeout, &|_| true)
            .await
            .map(|_| ());
    }
    if applied.is_err() && opts.cleanup_on_fail {
        cleanup_created(ctx, &release, &created).await;
    }
    let mut conditions = status.conditions.take().unwrap_or_default();
    let message_ok = format!(
        "Helm rollback to previous release {} with chart {} succeeded",
        plan::release_ref(&target),
        plan::chart_ref(&target)
    );
    match applied {
        Ok(()) => {
            supersede(store, history, Some(&current)).await?;
            set_status(&mut release, rls::DEPLOYED, "");
            store.update(&release).await?;
            conds::mark_true(
                &mut conditions,
                condition::REMEDIATED,
                reason::ROLLBACK_SUCCEEDED,
                &message_ok,
                generation,
                now_time(),
            );
            status.conditions = Some(conditions);
            emit(
                ctx,
                hr,
                EventType::Normal,
                reason::ROLLBACK_SUCCEEDED,
                &message_ok,
            )
            .await;
        }
        Err(e) => {
            let description = format!("Rollback \"{}\" failed: {e:#}", release.name);
            set_status(&mut release, rls::FAILED, &description);
            store.update(&release).await?;
            let message = format!(
                "Helm rollback to previous release {} with chart {} failed: {e:#}",
                plan::release_ref(&target),
                plan::chart_ref(&target)
            );
            conds::mark_false(
                &mut conditions,
                condition::REMEDIATED,
                reason::ROLLBACK_FAILED,
                &message,
                generation,
                now_time(),
            );
            status.conditions = Some(conditions);
            emit(
                ctx,
                hr,
                EventType::Warning,
                reason::ROLLBACK_FAILED,
                &message,
            )
            .await;
        }
    }
    let history = store.history().await?;
    status.history = Some(plan::merge_history(
        &history,
        status.history.as_deref(),
        None,
    ));
    Ok(())
}

async fn remediate_uninstall(
    ctx: &Context,
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
    store: &SecretStore,
) -> Result<()> {
    let generation = hr.metadata.generation;
    let history = store.history().await?;
    let latest = plan::latest(&history).cloned();
    let result = actions::uninstall_release(ctx, hr, store, &history).await;
    let mut conditions = status.conditions.take().unwrap_or_default();
    let target = latest.as_ref().map_or_else(String::new, plan::release_ref);
    match result {
        Ok(()) => {
            let message = format!("Helm uninstall remediation for release {target} succeeded");
            conds::mark_true(
                &mut conditions,
                condition::REMEDIATED,
                reason::UNINSTALL_SUCCEEDED,
                &message,
                generation,
                now_time(),
            );
            emit(
                ctx,
                hr,
                EventType::Normal,
                reason::UNINSTALL_SUCCEEDED,
                &message,
            )
            .await;
        }
        Err(e) => {
            let message = format!("Helm uninstall remediation for release {target} failed: {e:#}");
            conds::mark_false(
                &mut conditions,
                condition::REMEDIATED,
                reason::UNINSTALL_FAILED,
                &message,
                generation,
                now_time(),
            );
            emit(
                ctx,
                hr,
                EventType::Warning,
                reason::UNINSTALL_FAILED,
                &message,
            )
            .await;
        }
    }
    status.conditions = Some(conditions);
    Ok(())
}

async fn uninstall_all(ctx: &Context, hr: &HelmRelease) -> Result<()> {
    let store = SecretStore {
        api: Api::namespaced(ctx.client.clone(), &plan::storage_namespace(hr)),
        name: plan::release_name(hr),
    };
    let history = store.history().await?;
    if history.is_empty() {
        return Ok(());
    }
    if plan::latest(&history).is_some_and(|r| r.status() == rls::UNINSTALLED) {
        // Already uninstalled with keepHistory.
        return Ok(());
    }
    actions::uninstall_release(ctx, hr, &store, &history).await?;
    let latest = plan::latest(&history).map_or_else(String::new, plan::release_ref);
    emit(
        ctx,
        hr,
        EventType::Normal,
        reason::UNINSTALL_SUCCEEDED,
        &format!("Helm uninstall succeeded for release {latest}"),
    )
    .await;
    Ok(())
}

async fn delete_template_chart(ctx: &Context, hr: &HelmRelease) -> Result<()> {
    let Some(id) = hr.status.as_ref().and_then(|s| s.helm_chart.clone()) else {
        return Ok(());
    };
    let Some((ns, name)) = id.split_once('/') else {
        return Ok(());
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &helm_chart_resource());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(anyhow!("deleting HelmChart {id}: {e}")),
    }
}

async fn resource(
    ctx: &Context,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, ApiCapabilities)> {
    let key = (api_version.to_string(), kind.to_string());
    if let Some(found) = ctx.resources.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(found);
    }
    let (group, version) = split_api_version(api_version);
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let found = kube::discovery::pinned_kind(&ctx.client, &gvk)
        .await
        .map_err(|e| anyhow!("no matches for kind \"{kind}\" in version \"{api_version}\": {e}"))?;
    if let Ok(mut map) = ctx.resources.lock() {
        map.insert(key, found.clone());
    }
    Ok(found)
}

pub(super) async fn object_api(
    ctx: &Context,
    object: &Value,
    default_ns: &str,
) -> Result<(Api<DynamicObject>, String)> {
    let (api_version, kind, ns, name) = plan::object_key(object);
    let (ar, caps) = resource(ctx, &api_version, &kind).await?;
    let api = if caps.scope == Scope::Namespaced {
        let ns = if ns.is_empty() {
            default_ns.to_string()
        } else {
            ns
        };
        Api::namespaced_with(ctx.client.clone(), &ns, &ar)
    } else {
        Api::all_with(ctx.client.clone(), &ar)
    };
    Ok((api, name))
}

async fn delete_object(ctx: &Context, object: &Value, default_ns: &str) -> Result<()> {
    let (api, name) = object_api(ctx, object, default_ns).await?;
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(anyhow!("deleting {name}: {e}")),
    }
}

/// Server-side applies every object of `release` (with Helm's ownership metadata), deletes
/// objects the previous revision had and this one has not, then waits for readiness, all per
/// the action's options. Objects that did not exist before are pushed to `created` (for
/// `cleanupOnFail`).
async fn apply_release(
    ctx: &Context,
    release: &Release,
    previous: Option<&Release>,
    opts: &plan::ActionOptions,
    created: &mut Vec<Value>,
) -> Result<()> {
    let objects = plan::manifest_objects(&release.manifest).map_err(|e| anyhow!(e))?;
    let previous_keys: BTreeSet<(String, String, String, String)> = previous
        .map(|p| {
            plan::manifest_objects(&p.manifest)
                .unwrap_or_default()
                .iter()
                .map(plan::object_key)
                .collect()
        })
        .unwrap_or_default();
    let mut applied = Vec::new();
    let mut keep = BTreeSet::new();
    for object in objects {
        let is_new = !previous_keys.contains(&plan::object_key(&object));
        let object = plan::with_ownership(object, &release.name, &release.namespace);
        let (api, name) = object_api(ctx, &object, &release.namespace).await?;
        let (api_version, kind, _, _) = plan::object_key(&object);
        if is_new
            && !actions::check_adoption(&api, &name, &kind, release, opts, previous.is_some())
                .await?
        {
            created.push(object.clone());
        }
        let params = PatchParams::apply(CONTROLLER).force();
        let patched = match api.patch(&name, &params, &Patch::Apply(&object)).await {
            // `force`: replace what the API refuses to patch (e.g. immutable fields).
            Err(kube::Error::Api(e)) if opts.force && (e.code == 422 || e.code == 409) => {
                api.delete(&name, &DeleteParams::background())
                    .await
                    .map_err(|e| anyhow!("{kind} \"{name}\" ({api_version}): {e}"))?;
                api.patch(&name, &params, &Patch::Apply(&object)).await
            }
            other => other,
        }
        .map_err(|e| anyhow!("{kind} \"{name}\" ({api_version}): {e}"))?;
        keep.insert((
            api_version,
            kind.clone(),
            patched.namespace().unwrap_or_default(),
            name,
        ));
        if kind != "Job" || opts.wait_for_jobs {
            applied.push((api, patched.name_any()));
        }
    }
    if let Some(previous) = previous {
        for old in plan::manifest_objects(&previous.manifest).unwrap_or_default() {
            let (api_version, kind, ns, name) = plan::object_key(&old);
            let (_, caps) = resource(ctx, &api_version, &kind).await?;
            let ns = if caps.scope == Scope::Namespaced && ns.is_empty() {
                previous.namespace.clone()
            } else {
                ns
            };
            if !keep.contains(&(api_version, kind, ns.clone(), name)) {
                delete_object(ctx, &old, &ns).await?;
            }
        }
    }
    if opts.wait {
        wait_ready(&applied, opts.timeout).await?;
    }
    Ok(())
}

/// `cleanupOnFail`: deletes the objects a failed action created.
async fn cleanup_created(ctx: &Context, release: &Release, created: &[Value]) {
    for object in created {
        if let Err(e) = delete_object(ctx, object, &release.namespace).await {
            tracing::warn!("cleanupOnFail: {e:#}");
        }
    }
}

/// The chart's `crds/` objects (root chart and enabled subcharts), per the `install.crds` (default `Create`) or
/// `upgrade.crds` (default `Skip`) policy: `Create` creates missing CRDs and never updates,
/// `CreateReplace` also replaces existing ones. They get the HelmRelease origin labels.
async fn install_crds(
    ctx: &Context,
    hr: &HelmRelease,
    chart: &LoadedChart,
    values: &Map<String, Value>,
    upgrade: bool,
) -> Result<()> {
    use flux_api::helm::CrdsPolicy;
    let policy = if upgrade {
        hr.spec
            .upgrade
            .as_ref()
            .and_then(|u| u.crds)
            .unwrap_or(CrdsPolicy::Skip)
    } else if hr.spec.install.as_ref().and_then(|i| i.skip_crds) == Some(true) {
        CrdsPolicy::Skip
    } else {
        hr.spec
            .install
            .as_ref()
            .and_then(|i| i.crds)
            .unwrap_or(CrdsPolicy::Create)
    };
    if policy == CrdsPolicy::Skip {
        return Ok(());
    }
    let manifest = actions::chart_crds(&chart.archive, values)?;
    if manifest.is_empty() {
        return Ok(());
    }
    let labelled = plan::post_render(
        &manifest,
        &hr.name_any(),
        &hr.namespace().unwrap_or_default(),
        None,
    )
    .map_err(|e| anyhow!("{e}"))?;
    for object in plan::manifest_objects(&labelled).map_err(|e| anyhow!(e))? {
        let (api, name) = object_api(ctx, &object, "").await?;
        if policy == CrdsPolicy::Create && api.get_opt(&name).await?.is_some() {
            continue;
        }
        api.patch(
            &name,
            &PatchParams::apply(CONTROLLER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(|e| anyhow!("failed to create CustomResourceDefinition {name}: {e}"))?;
    }
    Ok(())
}

/// `spec.driftDetection`: compares each release object's server-side dry run with the
/// live object; `enabled` corrects drift by applying (re-creating deleted objects), `warn`
/// only reports. Sets `Drifted` and emits `DriftDetected`.
async fn detect_drift(
    ctx: &Context,
    hr: &HelmRelease,
    release: &Release,
    status: &mut HelmReleaseStatus,
) -> Result<()> {
    use flux_api::helm::DriftDetectionMode;
    let detection = hr.spec.drift_detection.clone().unwrap_or_default();
    let mode = detection.mode.unwrap_or_default();
    let generation = hr.metadata.generation;
    if mode == DriftDetectionMode::Disabled {
        let mut conditions = status.conditions.take().unwrap_or_default();
        conds::delete(&mut conditions, condition::DRIFTED);
        status.conditions = Some(conditions);
        return Ok(());
    }
    let mut lines = Vec::new();
    let mut drifted = Vec::new();
    for object in plan::manifest_objects(&release.manifest).map_err(|e| anyhow!(e))? {
        if plan::drift_disabled(&object) {
            continue;
        }
        let object = plan::with_ownership(object, &release.name, &release.namespace);
        let (api, name) = object_api(ctx, &object, &release.namespace).await?;
        let (_, kind, _, _) = plan::object_key(&object);
        let ns = api_namespace(&object, &release.namespace);
        let id = if ns.is_empty() {
            format!("{kind}/{name}")
        } else {
            format!("{kind}/{ns}/{name}")
        };
        let ignore: Vec<String> = detection
            .ignore
            .iter()
            .flatten()
            .filter(|rule| {
                rule.target.as_ref().is_none_or(|t| {
                    t.kind.as_deref().is_none_or(|k| k == kind)
                        && t.name.as_deref().is_none_or(|n| n == name)
                })
            })
            .flat_map(|rule| rule.paths.clone())
            .collect();
        let Some(live) = api
            .get_opt(&name)
            .await
            .with_context(|| format!("reading {id}"))?
        else {
            lines.push(format!("{id} removed"));
            drifted.push(object);
            continue;
        };
        let dry_run = api
            .patch(
                &name,
                &PatchParams::apply(CONTROLLER).force().dry_run(),
                &Patch::Apply(&object),
            )
            .await
            .with_context(|| format!("dry-run apply of {id}"))?;
        let desired = serde_json::to_value(&dry_run).context("encoding object")?;
        let current = serde_json::to_value(&live).context("encoding object")?;
        let (additions, changes, removals) = plan::drift_counts(&desired, &current, &ignore);
        if additions + changes + removals > 0 {
            lines.push(format!(
                "{id} changed ({additions} additions, {changes} changes, {removals} removals)"
            ));
            drifted.push(object);
        }
    }
    let mut conditions = status.conditions.take().unwrap_or_default();
    if lines.is_empty() {
        conds::mark_false(
            &mut conditions,
            condition::DRIFTED,
            reason::NO_DRIFT_DETECTED,
            &format!(
                "No drift detected for release {}",
                plan::release_ref(release)
            ),
            generation,
            now_time(),
        );
        status.conditions = Some(conditions);
        return Ok(());
    }
    let message = format!(
        "Cluster state of release {} has drifted from the desired state:\n{}",
        plan::release_ref(release),
        lines.join("\n")
    );
    conds::mark_true(
        &mut conditions,
        condition::DRIFTED,
        reason::DRIFT_DETECTED,
        &message,
        generation,
        now_time(),
    );
    status.conditions = Some(conditions);
    emit(
        ctx,
        hr,
        EventType::Warning,
        reason::DRIFT_DETECTED,
        &message,
    )
    .await;
    if mode == DriftDetectionMode::Enabled {
        for object in drifted {
            let (api, name) = object_api(ctx, &object, &release.namespace).await?;
            api.patch(
                &name,
                &PatchParams::apply(CONTROLLER).force(),
                &Patch::Apply(&object),
            )
            .await
            .with_context(|| format!("correcting drift of {name}"))?;
        }
    }
    Ok(())
}

fn api_namespace(object: &Value, default_ns: &str) -> String {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map_or_else(|| default_ns.to_string(), str::to_string)
}

async fn wait_ready(objects: &[(Api<DynamicObject>, String)], limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut pending = Vec::new();
        for (api, name) in objects {
            let object = api
                .get(name)
                .await
                .map_err(|e| anyhow!("reading {name}: {e}"))?;
            let value = serde_json::to_value(&object).context("encoding object")?;
            let health = flux_api::health::evaluate(&value, k8s_openapi::jiff::Timestamp::now())
                .map_err(|e| anyhow!("{name}: {e}"))?;
            if health.status != flux_api::health::HealthStatus::Current {
                pending.push(format!(
                    "{}/{} status: '{:?}'",
                    object
                        .types
                        .as_ref()
                        .map(|t| t.kind.as_str())
                        .unwrap_or_default(),
                    name,
                    health.status
                ));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(anyhow!("context deadline exceeded: {}", pending.join(", ")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn dependencies_not_ready(ctx: &Context, hr: &HelmRelease) -> Result<Option<String>> {
    let Some(deps) = &hr.spec.depends_on else {
        return Ok(None);
    };
    for dep in deps {
        let ns = dep
            .namespace
            .clone()
            .unwrap_or_else(|| hr.namespace().unwrap_or_default());
        let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), &ns);
        let Some(found) = api.get_opt(&dep.name).await.context("reading dependency")? else {
            return Ok(Some(format!(
                "dependency '{ns}/{}' is not ready: not found",
                dep.name
            )));
        };
        let status = found.status.clone().unwrap_or_default();
        let ready = found.metadata.generation == status.observed_generation
            && conds::is_ready(status.conditions.as_deref().unwrap_or_default());
        if !ready {
            return Ok(Some(format!("dependency '{ns}/{}' is not ready", dep.name)));
        }
    }
    Ok(None)
}

/// Ensures the HelmChart (template) or resolves `chartRef`, waits for its artifact and
/// downloads it. `Ok(Err((reason, message)))` is a not-ready-yet outcome.
async fn load_chart_source(
    ctx: &Context,
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
) -> Result<std::result::Result<LoadedChart, (&'static str, String)>> {
    let hr_ns = hr.namespace().unwrap_or_default();
    let (kind, source_ns, source_name, ar) = if let Some(template) = &hr.spec.chart {
        let source_ns = template
            .spec
            .source_ref
            .namespace
            .clone()
            .unwrap_or_else(|| hr_ns.clone());
        if ctx.opts.no_cross_namespace_refs && source_ns != hr_ns {
            return Ok(Err((
                reason::ACCESS_DENIED,
                format!("cross-namespace references are not allowed: {source_ns}"),
            )));
        }
        let name = plan::helm_chart_name(hr);
        let spec = &template.spec;
        let mut chart_spec = json!({
            "chart": spec.chart,
            "version": spec.version.clone().unwrap_or_else(|| "*".into()),
            "sourceRef": {
                "kind": format!("{:?}", spec.source_ref.kind),
                "name": spec.source_ref.name,
            },
            "interval": spec.interval.clone().unwrap_or_else(|| hr.spec.interval.clone()),
        });
        if let Some(strategy) = &spec.reconcile_strategy {
            chart_spec["reconcileStrategy"] = serde_json::to_value(strategy).unwrap_or_default();
        }
        if let Some(files) = &spec.values_files {
            chart_spec["valuesFiles"] = json!(files);
        }
        if let Some(ignore) = spec.ignore_missing_values_files {
            chart_spec["ignoreMissingValuesFiles"] = json!(ignore);
        }
        if let Some(verify) = &spec.verify {
            chart_spec["verify"] = serde_json::to_value(verify).unwrap_or_default();
        }
        let mut metadata = json!({ "name": name, "namespace": source_ns });
        if let Some(meta) = &template.metadata {
            if let Some(labels) = &meta.labels {
                metadata["labels"] = json!(labels);
            }
            if let Some(annotations) = &meta.annotations {
                metadata["annotations"] = json!(annotations);
            }
        }
        let object = json!({
            "apiVersion": format!("{}/{}", flux_api::source::GROUP, flux_api::source::VERSION),
            "kind": "HelmChart",
            "metadata": metadata,
            "spec": chart_spec,
        });
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &source_ns, &helm_chart_resource());
        api.patch(
            &name,
            &PatchParams::apply(CONTROLLER).force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("failed to create HelmChart '{source_ns}/{name}'"))?;
        status.helm_chart = Some(format!("{source_ns}/{name}"));
        ("HelmChart", source_ns, name, helm_chart_resource())
    } else if let Some(chart_ref) = &hr.spec.chart_ref {
        let source_ns = chart_ref.namespace.clone().unwrap_or_else(|| hr_ns.clone());
        if ctx.opts.no_cross_namespace_refs && source_ns != hr_ns {
            return Ok(Err((
                reason::ACCESS_DENIED,
                format!("cross-namespace references are not allowed: {source_ns}"),
            )));
        }
        match chart_ref.kind {
            flux_api::helm::ChartReferenceKind::HelmChart => (
                "HelmChart",
                source_ns,
                chart_ref.name.clone(),
                helm_chart_resource(),
            ),
            flux_api::helm::ChartReferenceKind::OCIRepository => (
                "OCIRepository",
                source_ns,
                chart_ref.name.clone(),
                oci_repository_resource(),
            ),
            flux_api::helm::ChartReferenceKind::ExternalArtifact => {
                return Ok(Err((
                    reason::ARTIFACT_FAILED,
                    "chartRef kind ExternalArtifact is not supported by flux-rs".into(),
                )))
            }
        }
    } else {
        return Ok(Err((
            reason::ARTIFACT_FAILED,
            "one of spec.chart or spec.chartRef must be set".into(),
        )));
    };

    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &source_ns, &ar);
    let Some(source) = api
        .get_opt(&source_name)
        .await
        .context("reading the chart source")?
    else {
        return Ok(Err((
            reason::SOURCE_NOT_READY,
            format!("could not get {kind} object: {kind} '{source_ns}/{source_name}' not found"),
        )));
    };
    let source_status = source.data.get("status").cloned().unwrap_or_default();
    let conditions: Vec<flux_api::meta::Condition> = source_status
        .get("conditions")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    let observed = source_status
        .get("observedGeneration")
        .and_then(Value::as_i64);
    if !conds::is_ready(&conditions) || observed != source.metadata.generation {
        // Flux appends the source's Ready message when it has one.
        let message = match conds::get(&conditions, condition::READY) {
            Some(c) if !c.message.is_empty() => {
                format!(
                    "{kind} '{source_ns}/{source_name}' is not ready: {}",
                    c.message
                )
            }
            _ => format!("{kind} '{source_ns}/{source_name}' is not ready"),
        };
        return Ok(Err((reason::SOURCE_NOT_READY, message)));
    }
    let Some(artifact) = source_status.get("artifact") else {
        return Ok(Err((
            reason::SOURCE_NOT_READY,
            format!("{kind} '{source_ns}/{source_name}' is not ready: no artifact"),
        )));
    };
    let url = artifact
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let digest = artifact
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let archive = match download(ctx, url, digest).await {
        Ok(a) => a,
        Err(e) => return Ok(Err((reason::ARTIFACT_FAILED, format!("{e:#}")))),
    };
    let (name, version) = match chart_metadata(&archive) {
        Ok(found) => found,
        Err(e) => {
            return Ok(Err((
                reason::ARTIFACT_FAILED,
                format!("failed to load chart: {e}"),
            )))
        }
    };
    // Flux appends the OCI digest to the chart version, so a moved tag upgrades.
    let mut oci_digest = None;
    let mut version = version;
    if kind == "OCIRepository" {
        let revision = artifact
            .get("revision")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match plan::oci_chart_version(&version, revision) {
            Ok((mutated, digest)) => {
                version = mutated;
                oci_digest = Some(digest);
            }
            Err(e) => return Ok(Err((reason::CHART_MUTATE_ERROR, e))),
        }
    }
    Ok(Ok(LoadedChart {
        archive,
        name,
        version,
        oci_digest,
    }))
}

fn chart_metadata(archive: &[u8]) -> std::result::Result<(String, String), String> {
    let chart = flux_helm::load_archive(archive, "chart.tgz").map_err(|e| e.to_string())?;
    let get = |k: &str| {
        chart
            .metadata
            .get(k)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    Ok((get("name"), get("version")))
}

async fn download(ctx: &Context, url: &str, digest: &str) -> Result<Vec<u8>> {
    use sha2::Digest as _;
    let response = ctx
        .http
        .get(url)
        .send()
        .await
        .with_context(|| format!("failed to download artifact from {url}"))?;
    if !response.status().is_success() {
        return Err(anyhow!(
            "failed to download artifact from {url}, status: {}",
            response.status()
        ));
    }
    let bytes = response.bytes().await.context("reading artifact")?.to_vec();
    let Some(expected) = digest.strip_prefix("sha256:") else {
        return Err(anyhow!("unsupported artifact digest '{digest}'"));
    };
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    if actual != expected {
        return Err(anyhow!(
            "failed to verify artifact: computed digest doesn't match '{digest}'"
        ));
    }
    Ok(bytes)
}

/// valuesFrom in order, then `spec.values` on top. `Ok(Err(message))` is a ValuesError.
async fn compose_values(
    ctx: &Context,
    hr: &HelmRelease,
) -> Result<std::result::Result<Map<String, Value>, String>> {
    let ns = hr.namespace().unwrap_or_default();
    let mut values = Map::new();
    for reference in hr.spec.values_from.as_deref().unwrap_or_default() {
        let key = reference
            .values_key
            .clone()
            .unwrap_or_else(|| "values.yaml".into());
        let optional = reference.optional.unwrap_or(false);
        let (kind, data): (&str, Option<BTreeMap<String, Vec<u8>>>) = match reference.kind {
            ValuesSourceKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
                let found = api
                    .get_opt(&reference.name)
                    .await
                    .context("reading ConfigMap")?;
                (
                    "ConfigMap",
                    found.map(|cm| {
                        cm.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes()))
                            .collect()
                    }),
                )
            }
            ValuesSourceKind::Secret => {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
                let found = api
                    .get_opt(&reference.name)
                    .await
                    .context("reading Secret")?;
                (
                    "Secret",
                    found.map(|s| {
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0))
                            .collect()
                    }),
                )
            }
        };
        let id = format!("{ns}/{}", reference.name);
        let Some(data) = data else {
            if optional {
                continue;
            }
            return Ok(Err(format!("could not find {kind} '{id}'")));
        };
        let Some(raw) = data.get(&key) else {
            if optional {
                continue;
            }
            return Ok(Err(format!("missing key '{key}' in {kind} '{id}'")));
        };
        let text = String::from_utf8_lossy(raw).to_string();
        match reference.target_path.as_deref().filter(|p| !p.is_empty()) {
            Some(path) => match plan::set_target_path(&values, path, &text) {
                Ok(updated) => values = updated,
                Err(e) => return Ok(Err(format!("unable to merge value from key '{key}' in {kind} '{id}' into target path '{path}': {e}"))),
            },
            None => match plan::parse_values_document(&text) {
                Ok(parsed) => plan::merge_values(&mut values, &parsed),
                Err(e) => {
                    return Ok(Err(format!(
                        "unable to read values from key '{key}' in {kind} '{id}': {e}"
                    )))
                }
            },
        }
    }
    if let Some(Value::Object(inline)) = &hr.spec.values {
        plan::merge_values(&mut values, inline);
    }
    Ok(Ok(values))
}

async fn emit(ctx: &Context, hr: &HelmRelease, event_type: EventType, reason: &str, message: &str) {
    match event_type {
        EventType::Warning => tracing::warn!(
            "HelmRelease {}/{}: {reason}: {message}",
            hr.namespace().unwrap_or_default(),
            hr.name_any()
        ),
        _ => tracing::info!(
            "HelmRelease {}/{}: {reason}: {message}",
            hr.namespace().unwrap_or_default(),
            hr.name_any()
        ),
    }
    let reference = kube::Resource::object_ref(hr, &());
    if let Err(e) = ctx
        .recorder
        .record(&reference, event_type, reason, message)
        .await
    {
        tracing::warn!("recording a Kubernetes Event: {e}");
    }
    let Some(poster) = &ctx.events else {
        return;
    };
    let object = InvolvedObject {
        kind: "HelmRelease".into(),
        namespace: hr.namespace().unwrap_or_default(),
        name: hr.name_any(),
        uid: hr.uid().unwrap_or_default(),
        api_version: format!("{}/{}", flux_api::helm::GROUP, flux_api::helm::VERSION),
        resource_version: hr.resource_version().unwrap_or_default(),
    };
    let metadata = BTreeMap::new();
    let input = EventInput {
        object: &object,
        annotations: hr.metadata.annotations.as_ref(),
        event_type,
        reason,
        message,
        metadata: &metadata,
        controller: CONTROLLER,
        instance: CONTROLLER,
    };
    if let Some(event) = build_event(&input, k8s_openapi::jiff::Timestamp::now()) {
        if let Err(e) = poster.post(&event).await {
            tracing::warn!("posting event: {e}");
        }
    }
}

/// Release Secrets of one release in the storage namespace.
pub(super) struct SecretStore {
    api: Api<Secret>,
    name: String,
}

impl SecretStore {
    pub(super) async fn history(&self) -> Result<Vec<Release>> {
        let list = self
            .api
            .list(&ListParams::default().labels(&format!("owner=helm,name={}", self.name)))
            .await
            .context("listing release Secrets")?;
        list.items
            .iter()
            .map(|s| {
                let value = serde_json::to_value(s).context("encoding Secret")?;
                rel::from_secret(&value)
                    .map_err(|e| anyhow!("decoding release Secret {}: {e}", s.name_any()))
            })
            .collect()
    }

    fn secret(release: &Release) -> Result<Secret> {
        let value = rel::to_secret(release).map_err(|e| anyhow!("{e}"))?;
        let mut secret: Secret = serde_json::from_value(value).context("release Secret")?;
        // The Secret lives in the storage namespace (the API's), not the release's target one.
        secret.metadata.namespace = None;
        Ok(secret)
    }

    pub(super) async fn create(&self, release: &Release) -> Result<()> {
        self.api
            .create(&PostParams::default(), &Self::secret(release)?)
            .await
            .with_context(|| {
                format!(
                    "create: failed to create: {}",
                    rel::storage_key(&release.name, release.version)
                )
            })?;
        Ok(())
    }

    pub(super) async fn update(&self, release: &Release) -> Result<()> {
        let secret = Self::secret(release)?;
        let name = rel::storage_key(&release.name, release.version);
        let mut existing = self
            .api
            .get(&name)
            .await
            .with_context(|| format!("update: reading {name}"))?;
        existing.data = secret.data;
        existing.metadata.labels = secret.metadata.labels;
        self.api
            .replace(&name, &PostParams::default(), &existing)
            .await
            .with_context(|| format!("update: failed to update {name}"))?;
        Ok(())
    }

    pub(super) async fn delete(&self, key: &str) -> Result<()> {
        match self.api.delete(key, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(anyhow!("deleting {key}: {e}")),
        }
    }
}

/// Decodes the release stored in a release Secret (as read through the API).
pub fn decode_release_secret(secret: &Secret) -> Result<Release> {
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| anyhow!("secret has no data.release"))?;
    let text = String::from_utf8_lossy(&data.0).to_string();
    rel::decode(&text).map_err(|e| anyhow!("{e}"))
}
