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

/// The live side of `diff kustomization` without `--against-*`, as flux does it: for every
/// rendered object that exists in the cluster, the live object (before) and the result of a
/// server-side dry-run apply by `kustomize-controller` (after); objects that do not exist
/// are created. Server-managed fields (`managedFields`, `resourceVersion`, `uid`,
/// `generation`, `creationTimestamp`, `status`) are left out of both sides.
pub fn live_states(objects: &[Value]) -> anyhow::Result<Vec<(Option<Value>, Value)>> {
    flux_source::tls::ensure_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the cluster (KUBECONFIG)")?;
        let mut states = Vec::with_capacity(objects.len());
        for object in objects {
            states.push(live_state(&client, object).await?);
        }
        Ok(states)
    })
}

async fn live_state(
    client: &kube::Client,
    object: &Value,
) -> anyhow::Result<(Option<Value>, Value)> {
    use kube::api::{Patch, PatchParams};
    use kube::discovery::Scope;
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let id = format!("{kind}/{name}");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("{id}: the cluster does not serve {api_version} {kind}"))?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => {
            let ns = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default");
            Api::namespaced_with(client.clone(), ns, &resource)
        }
    };
    let Some(live) = api
        .get_opt(name)
        .await
        .with_context(|| format!("reading {id}"))?
    else {
        return Ok((None, object.clone()));
    };
    let params = PatchParams::apply("kustomize-controller").force().dry_run();
    let applied = api
        .patch(name, &params, &Patch::Apply(object))
        .await
        .with_context(|| format!("server-side dry-run apply of {id}"))?;
    Ok((
        Some(comparable(serde_json::to_value(live)?)),
        comparable(serde_json::to_value(applied)?),
    ))
}

/// Drops what the server owns, so only the desired state is compared.
fn comparable(mut object: Value) -> Value {
    if let Value::Object(map) = &mut object {
        map.remove("status");
        if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
            for field in [
                "managedFields",
                "resourceVersion",
                "uid",
                "generation",
                "creationTimestamp",
            ] {
                metadata.remove(field);
            }
        }
    }
    object
}
