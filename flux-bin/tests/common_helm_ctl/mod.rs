//! Harness shared by the end-to-end tests: a loopback artifact server, polling, HelmRelease
//! conditions, release Secrets and the optional real Helm binary.

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use flux_api::helm::HelmRelease;

/// Serves `body` for every request on a random loopback port; returns `http://<addr><path>`.
pub async fn serve_bytes(body: Vec<u8>, path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = Arc::clone(&body);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(header.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    url
}

/// Polls `check` every 100 ms until it returns `Some`, failing after `seconds`.
pub async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(status, reason, message)` of a HelmRelease condition.
pub fn condition(hr: &HelmRelease, type_: &str) -> Option<(String, String, String)> {
    hr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The release Secrets of `name`, sorted by Secret name.
pub async fn release_secrets(secrets: &Api<Secret>, name: &str) -> Vec<Secret> {
    let mut list = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={name}")))
        .await
        .unwrap()
        .items;
    list.sort_by_key(|s| s.metadata.name.clone());
    list
}

/// A label value ("" when absent).
pub fn label<'s>(secret: &'s Secret, key: &str) -> &'s str {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

/// A real Helm 4 (`FLUX_HELM_BIN`, or the oracle from `../shared/tools/install-oracles`).
pub fn helm_binary() -> Option<PathBuf> {
    std::env::var_os("FLUX_HELM_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/flux-oracles/bin/helm4"))
        })
        .filter(|p| p.exists())
}

/// Runs `helm <args>` against the test API server and parses its JSON output. Uses tokio's
/// process API: the API server runs on the test's runtime and must keep serving.
pub async fn helm_json(
    helm: &std::path::Path,
    env: &flux_testenv::TestEnv,
    args: &[&str],
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let out = tokio::process::Command::new(helm)
        .args(args)
        .env("KUBECONFIG", &kubeconfig)
        .env("HELM_CACHE_HOME", dir.path().join("cache"))
        .env("HELM_CONFIG_HOME", dir.path().join("config"))
        .env("HELM_DATA_HOME", dir.path().join("data"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A flux-testenv API server with our Flux CRDs installed.
pub async fn env_with_flux_crds() -> flux_testenv::TestEnv {
    let env = flux_testenv::TestEnv::start().await.unwrap();
    for crd in flux_api::crds() {
        env.create_yaml("crds", &serde_yaml::to_string(&crd).unwrap())
            .unwrap();
    }
    env
}

/// Runs a helm-controller on `client` (failures retried after `retry_interval`).
pub fn spawn_helm_controller(
    client: kube::Client,
    retry_interval: Duration,
) -> tokio::task::JoinHandle<()> {
    use flux_bin::controllers::helm::{self, HelmOptions};
    let ctx = helm::context(
        client,
        HelmOptions {
            retry_interval,
            ..HelmOptions::default()
        },
        Arc::default(),
    );
    tokio::spawn(helm::run(ctx))
}
