//! OCIRepository reconciler of source-controller: resolves the tag/semver/digest with
//! `flux_source::oci`, stores the selected layer as an artifact (extracted and re-archived,
//! or copied) and writes status as for GitRepository (shared [`apply_fetch_conditions`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flux_api::conditions;
use flux_api::constants::reason;
use flux_api::meta::Time;
use flux_api::source::{OCILayerOperation, OCIRepository, OCIRepositoryStatus};
use flux_source::artifact::FetchOutcome;
use flux_source::oci::{LayerOperation, LayerSelector, OciOptions, OciRef, OciSpec};
use flux_source::storage::StoredState;
use futures::StreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::{Api, ResourceExt};

use super::common::{secret_data, secret_not_found};
use super::source::{
    api_artifact, apply_fetch_conditions, begin, failure, source_artifact, success, FetchResult,
    SourceContext, SourceError,
};
use crate::runtime::events::EventType;
use crate::runtime::metrics::ObjectKey;
use crate::runtime::status;

/// Runs the OCIRepository controller until `shutdown` resolves.
pub async fn controller(
    context: Arc<SourceContext>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<OCIRepository> = match &context.options.namespace {
        Some(ns) => Api::namespaced(context.client.clone(), ns),
        None => Api::all(context.client.clone()),
    };
    Controller::new(
        api,
        crate::runtime::flags::primary_watch_config(&context.options.label_selector),
    )
    .with_config(ControllerConfig::default().concurrency(context.options.concurrency))
    .graceful_shutdown_on(shutdown)
    .run(reconcile_oci, error_policy, context)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "OCIRepository reconcile error");
        }
    })
    .await;
}

fn error_policy(_: Arc<OCIRepository>, error: &SourceError, _: Arc<SourceContext>) -> Action {
    tracing::warn!(%error, "OCIRepository reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// The OCI settings Flux derives from an OCIRepository spec (credentials added later).
pub fn oci_spec(object: &OCIRepository) -> OciSpec {
    let spec = &object.spec;
    let reference = spec
        .reference
        .as_ref()
        .map_or_else(OciRef::default, |r| OciRef {
            tag: r.tag.clone(),
            semver: r.semver.clone(),
            semver_filter: r.semver_filter.clone(),
            digest: r.digest.clone(),
        });
    let layer_selector = spec
        .layer_selector
        .as_ref()
        .map_or_else(LayerSelector::default, |l| LayerSelector {
            media_type: l.media_type.clone(),
            operation: match l.operation {
                Some(OCILayerOperation::Copy) => LayerOperation::Copy,
                _ => LayerOperation::Extract,
            },
        });
    OciSpec {
        url: spec.url.clone(),
        reference,
        layer_selector,
        ignore: spec.ignore.clone(),
        options: OciOptions {
            insecure: spec.insecure.unwrap_or(false),
            ..OciOptions::default()
        },
    }
}

/// The status after a fetch (pure).
pub fn oci_status(
    object: &OCIRepository,
    previous: Option<&OCIRepositoryStatus>,
    result: &FetchResult,
    now: &Time,
) -> OCIRepositoryStatus {
    let generation = object.metadata.generation;
    let mut status = previous.cloned().unwrap_or_default();
    let mut list = status.conditions.take().unwrap_or_default();
    status.last_handled_reconcile_at = conditions::handle_reconcile_request(
        object.metadata.annotations.as_ref(),
        status.last_handled_reconcile_at.as_deref(),
    );
    if let Some(artifact) = apply_fetch_conditions(&mut list, result, generation, now) {
        status.artifact = Some(artifact);
        status.observed_ignore.clone_from(&object.spec.ignore);
        status
            .observed_layer_selector
            .clone_from(&object.spec.layer_selector);
        status.url = Some(object.spec.url.clone());
        status.observed_generation = generation;
    }
    status.conditions = Some(list);
    status
}

/// Reconciles one OCIRepository.
pub async fn reconcile_oci(
    object: Arc<OCIRepository>,
    context: Arc<SourceContext>,
) -> Result<Action, SourceError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let key = format!("OCIRepository/{}", status::key(object.as_ref()));
    let api: Api<OCIRepository> = Api::namespaced(context.client.clone(), &namespace);
    let kube_error = |action: &'static str| {
        let key = key.clone();
        move |source| SourceError::Kube {
            action,
            object: key,
            source,
        }
    };
    let metric_key = ObjectKey::new("OCIRepository", &name, &namespace);
    let suspended = object.spec.suspend.unwrap_or(false);
    let trigger = match begin(
        &context,
        &api,
        object.as_ref(),
        "OCIRepository",
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
    let mut spec = oci_spec(&object);
    let mut auth_error = None;
    if let Some(reference) = &object.spec.secret_ref {
        match secret_data(&context.client, &namespace, &reference.name)
            .await
            .map_err(kube_error("reading secret for"))?
        {
            Some(data) => {
                if let Some(config) = data.get(".dockerconfigjson") {
                    let registry = spec
                        .url
                        .trim_start_matches("oci://")
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    match spec.options.clone().with_docker_config(config, &registry) {
                        Ok(options) => spec.options = options,
                        Err(error) => auth_error = Some(error.to_string()),
                    }
                }
            }
            None => {
                auth_error = Some(format!(
                    "failed to get secret '{namespace}/{}': {}",
                    reference.name,
                    secret_not_found(&reference.name)
                ));
            }
        }
    }
    let mut current = object
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .and_then(source_artifact);
    if let Some(stored) = &current {
        if !matches!(
            context.storage.check_stored(stored),
            Ok(StoredState::Present)
        ) {
            current = None;
        }
    }
    let unchanged = object
        .status
        .as_ref()
        .and_then(|s| s.observed_ignore.clone())
        == object.spec.ignore
        && object
            .status
            .as_ref()
            .and_then(|s| s.observed_layer_selector.clone())
            == object.spec.layer_selector;
    let result = if let Some(message) = auth_error {
        FetchResult::Failed {
            reason: reason::AUTHENTICATION_FAILED.to_string(),
            message,
        }
    } else {
        let timeout = object
            .spec
            .timeout
            .as_deref()
            .and_then(|t| flux_api::duration::parse(t).ok())
            .unwrap_or(Duration::from_secs(60));
        let fetched = tokio::time::timeout(
            timeout,
            flux_source::oci::fetch(
                &spec,
                &context.storage,
                &namespace,
                &name,
                current.as_ref(),
                unchanged,
            ),
        )
        .await;
        match fetched {
            Ok(Ok(outcome)) => {
                let is_new = matches!(outcome, FetchOutcome::New(_));
                let mut artifact = outcome.artifact().clone();
                if is_new {
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
                match api_artifact(&artifact) {
                    Some(a) if is_new => FetchResult::New(a),
                    Some(a) => FetchResult::Unchanged(a),
                    None => FetchResult::Failed {
                        reason: reason::OCI_ARTIFACT_PULL_FAILED.to_string(),
                        message: "artifact has no digest".into(),
                    },
                }
            }
            Ok(Err(error)) => FetchResult::Failed {
                reason: reason::OCI_ARTIFACT_PULL_FAILED.to_string(),
                message: error.to_string(),
            },
            Err(_) => FetchResult::Failed {
                reason: reason::OCI_ARTIFACT_PULL_FAILED.to_string(),
                message: format!("timed out after {}", flux_api::duration::format(timeout)),
            },
        }
    };
    let new_status = oci_status(&object, object.status.as_ref(), &result, &status::now());
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
        FetchResult::New(artifact) => {
            context.events.emit(
                object.as_ref(),
                EventType::Normal,
                reason::NEW_ARTIFACT,
                &format!(
                    "stored artifact with revision '{}' from '{}'",
                    artifact.revision, object.spec.url
                ),
                BTreeMap::from([
                    ("revision".to_string(), artifact.revision.clone()),
                    ("digest".to_string(), artifact.digest.clone()),
                ]),
            );
            success(&context, &key, trigger, interval)
        }
        FetchResult::Unchanged(_) => success(&context, &key, trigger, interval),
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flux_api::source::{OCILayerSelector, OCIRepositoryRef, OCIRepositorySpec};

    #[test]
    fn spec_and_status_follow_flux() {
        let mut object = OCIRepository::new(
            "manifests",
            OCIRepositorySpec {
                url: "oci://127.0.0.1:5000/flux/manifests".into(),
                interval: "1m".into(),
                insecure: Some(true),
                reference: Some(OCIRepositoryRef {
                    tag: Some("latest".into()),
                    ..Default::default()
                }),
                layer_selector: Some(OCILayerSelector {
                    media_type: Some("application/vnd.cncf.flux.content.v1.tar+gzip".into()),
                    operation: Some(OCILayerOperation::Copy),
                }),
                ..OCIRepositorySpec::default()
            },
        );
        object.metadata.generation = Some(2);
        let spec = oci_spec(&object);
        assert_eq!(spec.reference.tag.as_deref(), Some("latest"));
        assert_eq!(spec.layer_selector.operation, LayerOperation::Copy);
        assert!(spec.options.insecure);
        let artifact = flux_api::meta::Artifact {
            digest: "sha256:11".into(),
            last_update_time: status::now(),
            metadata: None,
            path: "ocirepository/default/manifests/sha256:22.tar.gz".into(),
            revision: "latest@sha256:22".into(),
            size: None,
            url: "http://x/ocirepository/default/manifests/sha256:22.tar.gz".into(),
        };
        let status = oci_status(&object, None, &FetchResult::New(artifact), &status::now());
        let list = status.conditions.expect("conditions");
        let ready = conditions::get(&list, "Ready").expect("ready");
        assert_eq!(
            ready.message,
            "stored artifact for revision 'latest@sha256:22'"
        );
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            status.url.as_deref(),
            Some("oci://127.0.0.1:5000/flux/manifests")
        );
        assert!(status.observed_layer_selector.is_some());
    }
}
