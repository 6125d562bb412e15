//! Small helpers every reconciler uses: the current time as a condition timestamp, status
//! patches that clear absent fields, finalizer patches through the API, and object keys.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::finalizer;

/// Now, as a condition timestamp (second precision, as the API stores it).
pub fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// The finalizer step every reconcile starts with. A live object without the finalizer gets
/// it; a deleting one runs `cleanup` and loses it. `Some(action)` ends the reconcile there,
/// `None` lets it go on. An error names what was being done, for the caller's error type.
pub async fn finalizer_step<K, Fut>(
    api: &Api<K>,
    object: &K,
    name: &str,
    cleanup: impl FnOnce() -> Fut,
) -> Result<Option<kube::runtime::controller::Action>, (&'static str, kube::Error)>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    Fut: std::future::Future<Output = ()>,
{
    use kube::runtime::controller::Action;
    let deleting = object.meta().deletion_timestamp.is_some();
    match finalizer::plan(object.finalizers(), deleting, name) {
        finalizer::FinalizerStep::Add(_) => {
            add_finalizer(api, object, name)
                .await
                .map_err(|e| ("adding finalizer to", e))?;
            Ok(Some(Action::await_change()))
        }
        finalizer::FinalizerStep::Cleanup => {
            cleanup().await;
            remove_finalizer(api, object, name)
                .await
                .map_err(|e| ("removing finalizer from", e))?;
            Ok(Some(Action::await_change()))
        }
        finalizer::FinalizerStep::Done => Ok(Some(Action::await_change())),
        finalizer::FinalizerStep::Reconcile => Ok(None),
    }
}

/// `namespace/name`.
pub fn key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// A merge patch body for the status subresource: every field of `status` plus explicit
/// `null`s for the `clearable` fields it lacks (merge patches only remove what is null).
pub fn status_patch<S: Serialize>(status: &S, clearable: &[&str]) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut value {
        for field in clearable {
            map.entry((*field).to_string()).or_insert(Value::Null);
        }
    }
    json!({ "status": value })
}

/// Writes `status` through the status subresource.
pub async fn patch_status<K, S>(
    api: &Api<K>,
    name: &str,
    status: &S,
    clearable: &[&str],
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(status_patch(status, clearable)),
    )
    .await
}

/// Adds `finalizer` (guarded JSON patch).
pub async fn add_finalizer<K>(api: &Api<K>, object: &K, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = finalizer::add_patch(object.finalizers(), name);
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await
    .map(|_| ())
}

/// Removes `finalizer` when present (guarded JSON patch); a vanished object is fine.
pub async fn remove_finalizer<K>(api: &Api<K>, object: &K, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(patch) = finalizer::remove_patch(object.finalizers(), name) else {
        return Ok(());
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
    match api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        #[serde(skip_serializing_if = "Option::is_none")]
        artifact: Option<String>,
        observed_generation: i64,
    }

    #[test]
    fn absent_fields_become_null() {
        let patch = status_patch(
            &Status {
                artifact: None,
                observed_generation: 2,
            },
            &["artifact", "observedGeneration"],
        );
        assert_eq!(
            patch,
            json!({"status": {"artifact": null, "observedGeneration": 2}})
        );
        let kept = status_patch(
            &Status {
                artifact: Some("a".into()),
                observed_generation: 1,
            },
            &["artifact"],
        );
        assert_eq!(kept["status"]["artifact"], "a");
    }
}
