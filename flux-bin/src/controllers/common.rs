//! Glue the controllers share: dynamic API access by apiVersion/kind, Secret data, status
//! patches, the runtime namespace and timestamps. Process plumbing (client, logging, probes,
//! leader election, shutdown) is `crate::runtime::serve`.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::Client;

/// Splits `group/version` (or `v1`) into its parts.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Resolves the API resource of `apiVersion`/`kind` through discovery.
pub async fn resource_for(client: &Client, api_version: &str, kind: &str) -> Result<ApiResource> {
    let (group, version) = split_api_version(api_version);
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("no API resource for {kind} in {api_version}"))?;
    Ok(resource)
}

/// A namespaced (or cluster-scoped, when `namespace` is empty) dynamic API.
pub fn dynamic_api(client: &Client, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
    if namespace.is_empty() {
        Api::all_with(client.clone(), resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, resource)
    }
}

/// Merge-patches the status subresource of an object.
pub async fn patch_status<K>(api: &Api<K>, name: &str, status: serde_json::Value) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .with_context(|| format!("patching the status of {name}"))?;
    Ok(())
}

/// The data of Secret `namespace/name` as bytes (`stringData` is folded into `data` by the API
/// server); `None` when the Secret does not exist, so callers can write their own not-found
/// condition. Other API errors are returned for a retry.
pub async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, kube::Error> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    Ok(secrets.get_opt(name).await?.map(|secret| {
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, value.0))
            .collect()
    }))
}

/// The message Kubernetes gives for a missing Secret, as Flux quotes it in conditions.
pub fn secret_not_found(name: &str) -> String {
    format!("secrets \"{name}\" not found")
}

/// The controller's own namespace (`RUNTIME_NAMESPACE`, as Flux's deployments set it).
pub fn runtime_namespace() -> String {
    std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".into())
}

/// The current time as a metav1 `Time`.
pub fn now_time() -> flux_api::meta::Time {
    flux_api::meta::Time(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_split() {
        assert_eq!(
            split_api_version("source.toolkit.fluxcd.io/v1"),
            ("source.toolkit.fluxcd.io", "v1")
        );
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
