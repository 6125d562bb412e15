//! Reading what `build kustomization` needs from a cluster when no `--kustomization-file`
//! is given: the Flux Kustomization and the ConfigMaps/Secrets its `substituteFrom` names.

use anyhow::Context;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

/// The Kustomization `namespace/name` (as JSON) and the `substituteFrom` objects that exist.
/// A missing non-optional one is reported by the render, as kustomize-controller does.
pub fn kustomization_and_inputs(
    namespace: &str,
    name: &str,
) -> anyhow::Result<(Value, Vec<Value>)> {
    flux_source::tls::ensure_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    runtime.block_on(fetch(namespace, name))
}

async fn fetch(namespace: &str, name: &str) -> anyhow::Result<(Value, Vec<Value>)> {
    let client = kube::Client::try_default().await.context(
        "connecting to the cluster (KUBECONFIG); pass --kustomization-file FILE to build offline",
    )?;
    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
    let object = api
        .get_opt(name)
        .await
        .with_context(|| format!("reading Kustomization {namespace}/{name}"))?
        .with_context(|| format!("Kustomization {namespace}/{name} not found in the cluster"))?;
    let mut object = serde_json::to_value(object)?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), "kustomize.toolkit.fluxcd.io/v1".into());
        map.insert("kind".into(), "Kustomization".into());
        if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
            metadata.remove("managedFields");
        }
    }
    let mut inputs = Vec::new();
    let sources = object
        .pointer("/spec/postBuild/substituteFrom")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for source in sources {
        let source_name = source.get("name").and_then(Value::as_str).unwrap_or("");
        let found = match source.get("kind").and_then(Value::as_str) {
            Some("Secret") => Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(source_name)
                .await
                .with_context(|| format!("reading Secret {namespace}/{source_name}"))?
                .map(|s| with_type(serde_json::to_value(s), "Secret")),
            _ => Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get_opt(source_name)
                .await
                .with_context(|| format!("reading ConfigMap {namespace}/{source_name}"))?
                .map(|c| with_type(serde_json::to_value(c), "ConfigMap")),
        };
        if let Some(found) = found {
            inputs.push(found?);
        }
    }
    Ok((object, inputs))
}

fn with_type(value: serde_json::Result<Value>, kind: &str) -> anyhow::Result<Value> {
    let mut value = value?;
    if let Value::Object(map) = &mut value {
        map.insert("apiVersion".into(), "v1".into());
        map.insert("kind".into(), kind.into());
    }
    Ok(value)
}
