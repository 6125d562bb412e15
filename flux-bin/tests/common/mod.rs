//! Harness shared by the controller end-to-end tests: flux-testenv with the Flux CRDs,
//! polling with a generous deadline, Ready condition readers, and a source stand-in that
//! serves artifacts the way source-controller does (a GitRepository whose status points at a
//! tarball on a loopback HTTP server), for tests about what happens after the source.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A flux-testenv with the Flux CRDs and these namespaces.
pub async fn testenv(namespaces: &[&str]) -> flux_testenv::TestEnv {
    let env = flux_testenv::TestEnv::start().await.expect("testenv");
    for crd in flux_api::crds() {
        env.create_object(serde_json::to_value(&crd).expect("crd json"))
            .expect("crd created");
    }
    for ns in namespaces {
        env.create_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .expect("namespace");
    }
    env
}

/// Polls `check` every 100 ms until it returns `Some`, failing after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(status, reason, message)` of the Ready condition.
pub fn ready(
    conditions: Option<&Vec<flux_api::meta::Condition>>,
) -> Option<(String, String, String)> {
    conditions?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Serves artifacts over HTTP on 127.0.0.1 (flux-source's artifact server over a temp
/// storage root) and publishes them as GitRepository statuses.
pub struct ArtifactServer {
    root: tempfile::TempDir,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ArtifactServer {
    pub async fn start() -> ArtifactServer {
        let root = tempfile::tempdir().expect("storage root");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let served = root.path().to_path_buf();
        let task = tokio::spawn(async move {
            let _ = flux_source::server::serve(listener, served, std::future::pending()).await;
        });
        ArtifactServer { root, addr, task }
    }

    /// Packs `files` (`path`, `text`) as revision `revision` of GitRepository
    /// `namespace/name` and returns the `status.artifact` to publish.
    pub fn pack(
        &self,
        namespace: &str,
        name: &str,
        revision: &str,
        files: &[(&str, &str)],
    ) -> Value {
        let source = tempfile::tempdir().expect("source dir");
        for (path, text) in files {
            let file = source.path().join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(file, text).expect("write");
        }
        let (bytes, packed) =
            flux_source::archive::pack_to_vec(source.path(), None).expect("packed");
        let file = format!("{}.tar.gz", revision.replace([':', '@', '/'], "-"));
        let path = format!("gitrepository/{namespace}/{name}/{file}");
        let target = self.root.path().join(&path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, &bytes).expect("artifact written");
        json!({
            "digest": packed.digest.to_string(),
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "path": path,
            "revision": revision,
            "size": packed.size,
            "url": format!("http://{}/{path}", self.addr),
        })
    }

    /// Creates (or updates) GitRepository `namespace/name` in `env` with `files` as its
    /// artifact at `revision`.
    pub fn publish(
        &self,
        env: &flux_testenv::TestEnv,
        namespace: &str,
        name: &str,
        revision: &str,
        files: &[(&str, &str)],
    ) {
        let artifact = self.pack(namespace, name, revision, files);
        let _ = env.create_object(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"url": "https://example.invalid/repo.git", "interval": "1h"}
        }));
        env.patch_status(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            Some(namespace),
            name,
            json!({"artifact": artifact}),
        )
        .expect("artifact published");
    }
}

/// A Kustomization of the GitRepository `source` (same namespace), applying `./` with prune.
pub fn kustomization(namespace: &str, name: &str, source: &str, extra_spec: &Value) -> Value {
    let mut object = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "1h", "retryInterval": "1s", "path": "./", "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": source}
        }
    });
    if let (Some(spec), Some(extra)) = (object["spec"].as_object_mut(), extra_spec.as_object()) {
        for (key, value) in extra {
            spec.insert(key.clone(), value.clone());
        }
    }
    object
}

/// A ConfigMap manifest.
pub fn config_map(namespace: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  value: \"{value}\"\n"
    )
}
