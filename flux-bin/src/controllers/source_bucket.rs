//! Bucket reconciler of source-controller: lists an S3-compatible bucket (`generic` and `aws`
//! providers, through `flux_source::bucket`), builds the etag index whose digest is the
//! revision, downloads and archives the objects when that revision is new, and writes status
//! as Flux does (`stored artifact: revision '<rev>'`, `building artifact: new upstream
//! revision '<rev>'` while building, `BucketOperationFailed`/`AuthenticationFailed` failures).
//!
//! The spec mapping ([`s3_config`]), the index error messages and the status computation
//! ([`bucket_status`]) are pure; [`reconcile_bucket`] does the I/O around them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flux_api::conditions;
use flux_api::constants::{condition, reason, FINALIZER};
use flux_api::meta::{Condition, Time};
use flux_api::source::{Bucket, BucketStatus, CloudProvider};
use flux_source::artifact::FetchOutcome;
use flux_source::bucket::{self, BucketSpec, EtagIndex, S3Client, S3Config};
use flux_source::storage::StoredState;
use flux_source::tls::{ProxyConfig, TlsConfig};
use futures::StreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::common::{secret_data, secret_not_found};
use super::source::{
    api_artifact, apply_fetch_conditions_with, failure, patch_conditions, progress_conditions,
    source_artifact, success, FetchResult, SourceContext, SourceError,
};
use crate::runtime::events::EventType;
use crate::runtime::gate::Trigger;
use crate::runtime::metrics::ObjectKey;
use crate::runtime::status;

/// Runs the Bucket controller until `shutdown` resolves.
pub async fn controller(
    context: Arc<SourceContext>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<Bucket> = match &context.options.namespace {
        Some(ns) => Api::namespaced(context.client.clone(), ns),
        None => Api::all(context.client.clone()),
    };
    Controller::new(api, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(context.options.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_bucket, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "Bucket reconcile error");
            }
        })
        .await;
}

fn error_policy(_: Arc<Bucket>, error: &SourceError, _: Arc<SourceContext>) -> Action {
    tracing::warn!(%error, "Bucket reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// What the Secrets of a Bucket hold (`secretRef`, `certSecretRef`, `proxySecretRef`).
#[derive(Clone, Debug, Default)]
pub struct BucketCredentials {
    /// `accesskey` and `secretkey` of `secretRef`.
    pub keys: Option<(String, String)>,
    /// CA and client certificate of `certSecretRef`.
    pub tls: Option<TlsConfig>,
    /// `proxySecretRef`.
    pub proxy: Option<ProxyConfig>,
}

/// A failure with the condition reason Flux gives it.
type Failed = (String, String);

fn auth_failed(message: String) -> Failed {
    (reason::AUTHENTICATION_FAILED.to_string(), message)
}

/// The `accesskey`/`secretkey` pair of a `secretRef` Secret (minio's validation message).
pub fn access_keys(
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<(String, String), String> {
    match (data.get("accesskey"), data.get("secretkey")) {
        (Some(access), Some(secret)) => Ok((
            String::from_utf8_lossy(access).trim().to_string(),
            String::from_utf8_lossy(secret).trim().to_string(),
        )),
        _ => Err(format!(
            "invalid '{name}' secret data: required fields 'accesskey' and 'secretkey'"
        )),
    }
}

/// Reads the Secrets the Bucket names. The outer error is the API's (retried), the inner one
/// the condition Flux writes (missing Secret, bad data).
async fn read_credentials(
    client: &kube::Client,
    namespace: &str,
    object: &Bucket,
) -> Result<Result<BucketCredentials, Failed>, kube::Error> {
    let mut credentials = BucketCredentials::default();
    let missing = |name: &str| format!("'{namespace}/{name}': {}", secret_not_found(name));
    if let Some(reference) = &object.spec.secret_ref {
        let Some(data) = secret_data(client, namespace, &reference.name).await? else {
            return Ok(Err(auth_failed(format!(
                "failed to get secret {}",
                missing(&reference.name)
            ))));
        };
        match access_keys(&reference.name, &data) {
            Ok(keys) => credentials.keys = Some(keys),
            Err(message) => return Ok(Err(auth_failed(message))),
        }
    }
    if let Some(reference) = &object.spec.proxy_secret_ref {
        let proxy = match secret_data(client, namespace, &reference.name).await? {
            None => Err(format!("secret {}", missing(&reference.name))),
            Some(data) => ProxyConfig::from_secret_data(&data).map_err(|e| e.to_string()),
        };
        match proxy {
            Ok(proxy) => credentials.proxy = Some(proxy),
            Err(e) => return Ok(Err(auth_failed(format!("failed to get proxy URL: {e}")))),
        }
    }
    if let Some(reference) = &object.spec.cert_secret_ref {
        let tls = match secret_data(client, namespace, &reference.name).await? {
            None => Err(format!("secret {}", missing(&reference.name))),
            Some(data) => TlsConfig::from_secret_data(&data).map_err(|e| e.to_string()),
        };
        match tls {
            Ok(tls) => credentials.tls = Some(tls),
            Err(e) => return Ok(Err(auth_failed(format!("failed to get TLS config: {e}")))),
        }
    }
    Ok(Ok(credentials))
}

/// `spec.timeout` (Flux default `60s`).
pub fn timeout(object: &Bucket) -> Duration {
    object
        .spec
        .timeout
        .as_deref()
        .and_then(|t| flux_api::duration::parse(t).ok())
        .unwrap_or(Duration::from_secs(60))
}

/// The S3 settings of a Bucket. Providers other than `generic`/`aws` and `sts` are refused
/// with a message naming the field (flux-rs has no GCS, Azure or STS client).
pub fn s3_config(object: &Bucket, credentials: &BucketCredentials) -> Result<BucketSpec, Failed> {
    let spec = &object.spec;
    let provider = spec.provider.unwrap_or_default();
    if matches!(provider, CloudProvider::Gcp | CloudProvider::Azure) {
        let name = if provider == CloudProvider::Gcp {
            "gcp"
        } else {
            "azure"
        };
        return Err((
            reason::BUCKET_OPERATION_FAILED.to_string(),
            format!(
                "spec.provider '{name}' is not supported by this source-controller (generic and aws are)"
            ),
        ));
    }
    if spec.sts.is_some() {
        return Err((
            reason::INVALID_STS_CONFIGURATION.to_string(),
            "spec.sts is not supported by this source-controller".to_string(),
        ));
    }
    let tls = credentials.tls.clone().unwrap_or_default();
    let (access_key, secret_key) = credentials
        .keys
        .clone()
        .map_or((None, None), |(a, s)| (Some(a), Some(s)));
    Ok(BucketSpec {
        s3: S3Config {
            endpoint: spec.endpoint.clone(),
            bucket: spec.bucket_name.clone(),
            region: spec
                .region
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".to_string()),
            insecure: spec.insecure.unwrap_or(false),
            access_key,
            secret_key,
            timeout: timeout(object),
            ca_pem: tls.ca_pem,
            client_cert: tls.client_cert,
            proxy: credentials.proxy.clone(),
        },
        prefix: spec.prefix.clone().unwrap_or_default(),
        ignore: spec.ignore.clone(),
    })
}

/// The detail of an S3 error without the crate's own prefix (Flux quotes the client's text).
fn s3_detail(error: &flux_source::Error) -> String {
    match error {
        flux_source::Error::Bucket { detail, .. } | flux_source::Error::Auth { detail, .. } => {
            detail.clone()
        }
        other => other.to_string(),
    }
}

/// Lists the bucket into the filtered etag index (root `.sourceignore` + `spec.ignore`), with
/// Flux's messages for each step that can fail.
fn index_bucket(client: &S3Client, spec: &BucketSpec) -> Result<EtagIndex, String> {
    let name = &spec.s3.bucket;
    if let Err(error) = client.bucket_exists() {
        let detail = s3_detail(&error);
        return Err(if detail == format!("bucket '{name}' not found") {
            detail
        } else {
            format!("failed to confirm existence of '{name}' bucket: {detail}")
        });
    }
    let ignore_file = flux_source::ignore::SOURCEIGNORE;
    let mut patterns = Vec::new();
    match client.get(ignore_file, 1 << 20) {
        Ok(Some((bytes, _))) => patterns.extend(flux_source::ignore::Rules::parse(
            &String::from_utf8_lossy(&bytes),
            &[],
        )),
        Ok(None) => {}
        Err(error) => {
            return Err(format!(
                "failed to get Etag for '{ignore_file}' object: {}",
                s3_detail(&error)
            ))
        }
    }
    if let Some(ignore) = &spec.ignore {
        patterns.extend(flux_source::ignore::Rules::parse(ignore, &[]));
    }
    let rules = flux_source::ignore::Rules::from_patterns(patterns);
    let listed = client.list(&spec.prefix).map_err(|error| {
        format!(
            "indexation of objects from bucket '{name}' failed: {}",
            s3_detail(&error)
        )
    })?;
    Ok(bucket::build_index(listed, &rules))
}

/// The status after a fetch, computed from the status so far (pure).
pub fn bucket_status(
    object: &Bucket,
    previous: Option<&BucketStatus>,
    result: &FetchResult,
    now: &Time,
) -> BucketStatus {
    let generation = object.metadata.generation;
    let mut status = previous.cloned().unwrap_or_default();
    let mut list: Vec<Condition> = status.conditions.take().unwrap_or_default();
    status.last_handled_reconcile_at = conditions::handle_reconcile_request(
        object.metadata.annotations.as_ref(),
        status.last_handled_reconcile_at.as_deref(),
    );
    if let Some(artifact) =
        apply_fetch_conditions_with(&mut list, result, generation, now, |artifact| {
            format!("stored artifact: revision '{}'", artifact.revision)
        })
    {
        status.url = artifact
            .url
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/latest.tar.gz"));
        status.artifact = Some(artifact);
        status.observed_ignore.clone_from(&object.spec.ignore);
        status.observed_generation = generation;
    }
    status.conditions = Some(list);
    status
}

/// Reconciles one Bucket.
#[allow(clippy::too_many_lines)] // the pipeline reads top to bottom like Flux's sub-reconcilers
pub async fn reconcile_bucket(
    object: Arc<Bucket>,
    context: Arc<SourceContext>,
) -> Result<Action, SourceError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let key = format!("Bucket/{}", status::key(object.as_ref()));
    let api: Api<Bucket> = Api::namespaced(context.client.clone(), &namespace);
    let kube_error = |action: &'static str| {
        let key = key.clone();
        move |source| SourceError::Kube {
            action,
            object: key,
            source,
        }
    };
    let metric_key = ObjectKey::new("Bucket", &name, &namespace);
    let deleting = object.metadata.deletion_timestamp.is_some();
    let step = status::finalizer_step(&api, object.as_ref(), FINALIZER, || async {
        let storage = context.storage.clone();
        let (ns, n) = (namespace.clone(), name.clone());
        if let Ok(Err(error)) =
            tokio::task::spawn_blocking(move || storage.remove_all("Bucket", &ns, &n)).await
        {
            tracing::warn!(%error, object = %key, "removing artifacts failed");
        }
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
    let trigger = Trigger {
        generation: object.metadata.generation,
        requested_at: conditions::reconcile_request(object.metadata.annotations.as_ref())
            .map(str::to_string),
        deleting,
        extra: String::new(),
    };
    if let Some(wait) = context.gate.check(&key, &trigger, Instant::now()) {
        return Ok(Action::requeue(wait));
    }
    let started = Instant::now();
    let interval =
        flux_api::duration::parse(&object.spec.interval).unwrap_or(Duration::from_secs(60));
    let generation = object.metadata.generation;
    let was_failing = object
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .is_some_and(|c| conditions::is_false(c, condition::READY));
    // The status as it evolves through the progress writes; the final one builds on it.
    let mut working = object.status.clone().unwrap_or_default();

    // Storage: the recorded artifact must still be there and intact.
    let mut current = working.artifact.as_ref().and_then(source_artifact);
    let mut disappeared = false;
    if let Some(stored) = &current {
        match context.storage.check_stored(stored) {
            Ok(StoredState::Present) => {}
            Ok(StoredState::Corrupt { expected, actual }) => {
                context.events.emit(
                    object.as_ref(),
                    EventType::Warning,
                    reason::ARTIFACT_VERIFICATION_FAILED,
                    &format!(
                        "failed to verify integrity of artifact: computed digest doesn't match '{expected}' (got '{actual}')"
                    ),
                    BTreeMap::new(),
                );
                disappeared = true;
            }
            _ => disappeared = true,
        }
        if disappeared {
            current = None;
        }
    }
    if current.is_none() {
        let mut list = working.conditions.take().unwrap_or_default();
        let message = if disappeared {
            "building artifact: disappeared from storage"
        } else {
            "building artifact"
        };
        progress_conditions(&mut list, None, message, generation, &status::now());
        conditions::delete(&mut list, condition::ARTIFACT_IN_STORAGE);
        patch_conditions(&api, &name, &list)
            .await
            .map_err(kube_error("patching status of"))?;
        working.conditions = Some(list);
    }

    // Source: credentials, then the etag index.
    let listed = match read_credentials(&context.client, &namespace, &object)
        .await
        .map_err(kube_error("reading secrets for"))?
        .and_then(|credentials| s3_config(&object, &credentials))
    {
        Err(failed) => Err(failed),
        Ok(spec) => {
            let limit = timeout(&object);
            let listing = tokio::task::spawn_blocking(move || {
                let client = S3Client::new(spec.s3.clone()).map_err(|e| e.to_string())?;
                index_bucket(&client, &spec).map(|index| (spec, index))
            });
            match tokio::time::timeout(limit, listing).await {
                Ok(Ok(Ok(listed))) => Ok(listed),
                Ok(Ok(Err(message))) => Err((reason::BUCKET_OPERATION_FAILED.to_string(), message)),
                Ok(Err(join)) => Err((
                    reason::BUCKET_OPERATION_FAILED.to_string(),
                    format!("listing worker failed: {join}"),
                )),
                Err(_) => Err((
                    reason::BUCKET_OPERATION_FAILED.to_string(),
                    format!(
                        "failed to confirm existence of '{}' bucket: timed out after {}",
                        object.spec.bucket_name,
                        flux_api::duration::format(limit)
                    ),
                )),
            }
        }
    };

    // Artifact: archive the objects when the index has a new revision.
    let mut files = 0;
    let result = match listed {
        Err((reason, message)) => FetchResult::Failed { reason, message },
        Ok((spec, index)) => {
            files = index.len();
            let revision = bucket::index_revision(&index).to_string();
            match current.clone() {
                Some(mut stored) if stored.revision == revision => {
                    context.storage.refresh_url(&mut stored);
                    tracing::debug!(object = %key, "artifact up-to-date with remote revision: '{revision}'");
                    artifact_result(&stored, FetchResult::Unchanged)
                }
                _ => {
                    let mut list = working.conditions.take().unwrap_or_default();
                    let outdated = format!("new upstream revision '{revision}'");
                    progress_conditions(
                        &mut list,
                        current
                            .is_some()
                            .then_some((reason::NEW_REVISION, outdated.as_str())),
                        &format!("building artifact: {outdated}"),
                        generation,
                        &status::now(),
                    );
                    patch_conditions(&api, &name, &list)
                        .await
                        .map_err(kube_error("patching status of"))?;
                    working.conditions = Some(list);
                    store(&context, &object, spec, current.clone()).await
                }
            }
        }
    };

    let new_status = bucket_status(&object, Some(&working), &result, &status::now());
    status::patch_status(
        &api,
        &name,
        &new_status,
        &["artifact", "url", "lastHandledReconcileAt"],
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

    let stored_message = format!(
        "stored artifact with {files} fetched files from '{}' bucket",
        object.spec.bucket_name
    );
    Ok(match &result {
        FetchResult::New(artifact) | FetchResult::Unchanged(artifact) => {
            let is_new = matches!(result, FetchResult::New(_));
            if is_new || was_failing {
                context.events.emit(
                    object.as_ref(),
                    EventType::Normal,
                    if is_new {
                        reason::NEW_ARTIFACT
                    } else {
                        reason::SUCCEEDED
                    },
                    &stored_message,
                    BTreeMap::from([
                        ("revision".to_string(), artifact.revision.clone()),
                        ("digest".to_string(), artifact.digest.clone()),
                    ]),
                );
            }
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
    })
}

/// The API form of a stored artifact as `make` (`New`/`Unchanged`).
fn artifact_result(
    artifact: &flux_source::Artifact,
    make: fn(flux_api::meta::Artifact) -> FetchResult,
) -> FetchResult {
    api_artifact(artifact).map_or_else(
        || FetchResult::Failed {
            reason: reason::ARCHIVE_OPERATION_FAILED.to_string(),
            message: "artifact has no digest".to_string(),
        },
        make,
    )
}

/// Downloads, archives and garbage-collects on a blocking thread.
async fn store(
    context: &SourceContext,
    object: &Bucket,
    spec: BucketSpec,
    current: Option<flux_source::Artifact>,
) -> FetchResult {
    let storage = context.storage.clone();
    let retention = context.options.retention;
    let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
    let bucket_name = object.spec.bucket_name.clone();
    let limit = timeout(object);
    let work = tokio::task::spawn_blocking(move || {
        let outcome = bucket::fetch(&spec, &storage, &namespace, &name, current.as_ref())?;
        if let FetchOutcome::New(artifact) = &outcome {
            // Best effort, as Flux: a failed collection does not fail the reconcile.
            let _ = storage.garbage_collect(artifact, retention, SystemTime::now());
        }
        Ok::<_, flux_source::Error>(outcome)
    });
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(Ok(FetchOutcome::New(artifact)))) => artifact_result(&artifact, FetchResult::New),
        Ok(Ok(Ok(FetchOutcome::Unchanged(mut artifact)))) => {
            context.storage.refresh_url(&mut artifact);
            artifact_result(&artifact, FetchResult::Unchanged)
        }
        Ok(Ok(Err(error))) => {
            let reason = match error {
                flux_source::Error::Io { .. }
                | flux_source::Error::InvalidDir(_)
                | flux_source::Error::Tarball { .. } => reason::ARCHIVE_OPERATION_FAILED,
                _ => reason::BUCKET_OPERATION_FAILED,
            };
            FetchResult::Failed {
                reason: reason.to_string(),
                message: format!(
                    "fetch from bucket '{bucket_name}' failed: {}",
                    s3_detail(&error)
                ),
            }
        }
        Ok(Err(join)) => FetchResult::Failed {
            reason: reason::BUCKET_OPERATION_FAILED.to_string(),
            message: format!("fetch worker failed: {join}"),
        },
        Err(_) => FetchResult::Failed {
            reason: reason::BUCKET_OPERATION_FAILED.to_string(),
            message: format!(
                "fetch from bucket '{bucket_name}' failed: timed out after {}",
                flux_api::duration::format(limit)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flux_api::source::BucketSpec as ApiBucketSpec;

    fn object() -> Bucket {
        let mut object = Bucket::new(
            "podinfo",
            ApiBucketSpec {
                bucket_name: "flux".into(),
                endpoint: "127.0.0.1:9000".into(),
                interval: "1m".into(),
                insecure: Some(true),
                prefix: Some("apps/".into()),
                ignore: Some("*.md".into()),
                timeout: Some("20s".into()),
                ..ApiBucketSpec::default()
            },
        );
        object.metadata.namespace = Some("flux-system".into());
        object.metadata.generation = Some(2);
        object
    }

    #[test]
    fn spec_maps_endpoint_keys_prefix_and_timeout() {
        let credentials = BucketCredentials {
            keys: Some(("AK".into(), "SK".into())),
            ..BucketCredentials::default()
        };
        let spec = s3_config(&object(), &credentials).expect("supported");
        assert_eq!(spec.s3.endpoint, "127.0.0.1:9000");
        assert_eq!(spec.s3.bucket, "flux");
        assert_eq!(spec.s3.region, "us-east-1", "minio's default region");
        assert!(spec.s3.insecure);
        assert_eq!(spec.s3.access_key.as_deref(), Some("AK"));
        assert_eq!(spec.s3.secret_key.as_deref(), Some("SK"));
        assert_eq!(spec.s3.timeout, Duration::from_secs(20));
        assert_eq!(spec.prefix, "apps/");
        assert_eq!(spec.ignore.as_deref(), Some("*.md"));

        let mut gcp = object();
        gcp.spec.provider = Some(CloudProvider::Gcp);
        let (reason, message) = s3_config(&gcp, &credentials).expect_err("unsupported");
        assert_eq!(reason, "BucketOperationFailed");
        assert!(message.contains("'gcp'"), "{message}");
    }

    #[test]
    fn secret_needs_both_keys() {
        let data = BTreeMap::from([("accesskey".to_string(), b"AK\n".to_vec())]);
        assert_eq!(
            access_keys("creds", &data).expect_err("secretkey missing"),
            "invalid 'creds' secret data: required fields 'accesskey' and 'secretkey'"
        );
        let mut data = data;
        data.insert("secretkey".into(), b"SK".to_vec());
        assert_eq!(
            access_keys("creds", &data).expect("complete"),
            ("AK".to_string(), "SK".to_string())
        );
    }

    fn artifact(revision: &str) -> flux_api::meta::Artifact {
        flux_api::meta::Artifact {
            digest: "sha256:11".into(),
            last_update_time: status::now(),
            metadata: None,
            path: "bucket/flux-system/podinfo/22.tar.gz".into(),
            revision: revision.into(),
            size: Some(3),
            url: "http://h/bucket/flux-system/podinfo/22.tar.gz".into(),
        }
    }

    #[test]
    fn status_follows_flux_after_progress_and_failure() {
        let object = object();
        let now = status::now();
        // The progress write of a rebuild.
        let mut list = Vec::new();
        progress_conditions(
            &mut list,
            Some(("NewRevision", "new upstream revision 'sha256:22'")),
            "building artifact: new upstream revision 'sha256:22'",
            Some(2),
            &now,
        );
        let working = BucketStatus {
            conditions: Some(list),
            ..BucketStatus::default()
        };
        let ready = conditions::get(working.conditions.as_deref().unwrap_or_default(), "Ready")
            .expect("ready")
            .clone();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("Unknown", "Progressing")
        );

        let done = bucket_status(
            &object,
            Some(&working),
            &FetchResult::New(artifact("sha256:22")),
            &now,
        );
        let list = done.conditions.clone().expect("conditions");
        let ready = conditions::get(&list, "Ready").expect("ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.message, "stored artifact: revision 'sha256:22'");
        assert!(conditions::get(&list, "Reconciling").is_none());
        assert!(conditions::get(&list, "ArtifactOutdated").is_none());
        assert_eq!(
            done.url.as_deref(),
            Some("http://h/bucket/flux-system/podinfo/latest.tar.gz")
        );
        assert_eq!(done.observed_ignore.as_deref(), Some("*.md"));
        assert_eq!(done.observed_generation, Some(2));

        let failed = bucket_status(
            &object,
            Some(&done),
            &FetchResult::Failed {
                reason: "BucketOperationFailed".into(),
                message: "failed to confirm existence of 'flux' bucket: head bucket: 403 Forbidden"
                    .into(),
            },
            &now,
        );
        let list = failed.conditions.expect("conditions");
        let ready = conditions::get(&list, "Ready").expect("ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "BucketOperationFailed")
        );
        assert!(conditions::is_true(&list, "FetchFailed"));
        assert_eq!(
            failed.artifact.map(|a| a.revision),
            Some("sha256:22".to_string()),
            "the previous artifact stays"
        );
    }
}
