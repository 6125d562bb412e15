//! Glue shared by helm-controller and notification-controller: dynamic API access by
//! apiVersion/kind, status patches, the probes/metrics server and shutdown on signals.
//! (The lead may fold this into `runtime` when merging.)

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::Client;

use crate::runtime::metrics::Metrics;
use crate::runtime::probes::{self, Endpoints};

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

/// Starts the `/metrics` and `/healthz`/`/readyz` servers (one server when both addresses
/// are the same). Empty or `0` addresses disable a server.
pub async fn serve_probes(
    metrics_addr: &str,
    health_addr: &str,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for (addr, with_metrics) in [(metrics_addr, true), (health_addr, false)] {
        if addr.is_empty() || addr == "0" {
            continue;
        }
        let socket = crate::runtime::flags::listen_addr(addr).map_err(anyhow::Error::msg)?;
        let endpoints = Endpoints {
            metrics: with_metrics.then(|| Arc::clone(&metrics)),
            ready: Arc::clone(&ready),
        };
        let (local, _task) = probes::serve(socket, endpoints)
            .await
            .with_context(|| format!("binding {addr}"))?;
        bound.push(local);
    }
    Ok(bound)
}

/// A client from `--kubeconfig`/`KUBECONFIG`, or the in-cluster configuration.
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<Client> {
    // kube's TLS stack needs a process-wide rustls provider; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::incluster().context("in-cluster configuration")?,
    };
    Client::try_from(config).context("building the Kubernetes client")
}

/// The current time as a metav1 `Time`.
pub fn now_time() -> flux_api::meta::Time {
    flux_api::meta::Time(k8s_openapi::jiff::Timestamp::now())
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
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
