//! Harness shared by the flux-bin end-to-end tests: a real Git server (`git daemon` on
//! 127.0.0.1), the cluster (flux-testenv, or a real one with `FLUX_E2E_KUBECONFIG`), the
//! source- and kustomize-controller in-process, the controller binaries as child processes
//! (`FLUX_E2E_BIN_DIR` picks e.g. a release build), and polling helpers.

// Each test binary uses a subset of the harness.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flux_bin::controllers::kustomize::{self, KustomizeContext, KustomizeOptions};
use flux_bin::controllers::source::{self, SourceOptions};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve::Shutdown;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Runs `git` in `dir` with a fixed identity; panics when it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "flux")
        .env("GIT_AUTHOR_EMAIL", "flux@example.com")
        .env("GIT_COMMITTER_NAME", "flux")
        .env("GIT_COMMITTER_EMAIL", "flux@example.com")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// The commit `HEAD` points at.
pub fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .expect("git rev-parse");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits every change in `dir`; returns the new commit.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    head(dir)
}

pub fn git_available() -> bool {
    Command::new("git").arg("--version").output().is_ok()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A Git repository served by `git daemon` (killed on drop).
pub struct GitServer {
    _base: tempfile::TempDir,
    /// The repository's work tree: commit here.
    pub work: PathBuf,
    /// `git://127.0.0.1:<port>/repo`, or `file://` when `git daemon` is missing.
    pub url: String,
    daemon: Option<Child>,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.daemon {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn start_git() -> GitServer {
    let base = tempfile::tempdir().expect("tempdir");
    let work = base.path().join("repo");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    let port = free_port();
    let daemon = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.path().display()),
        ])
        .arg(base.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut daemon = daemon.ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut up = false;
    while daemon.is_some() && Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = if up {
        format!("git://127.0.0.1:{port}/repo")
    } else {
        eprintln!("NOTICE: git daemon unavailable, using file:// instead");
        if let Some(child) = &mut daemon {
            let _ = child.kill();
        }
        daemon = None;
        format!("file://{}", work.display())
    };
    GitServer {
        _base: base,
        work,
        url,
        daemon,
    }
}

/// Writes `text` to `dir/path`, creating directories.
pub fn write(dir: &Path, path: &str, text: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}

/// A ConfigMap `name` in namespace `apps` with `data.value`.
pub fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: apps\ndata:\n  value: \"{value}\"\n"
    )
}

/// The cluster: flux-testenv, or a real one (`FLUX_E2E_KUBECONFIG`).
pub struct Cluster {
    pub testenv: Option<flux_testenv::TestEnv>,
    pub client: kube::Client,
    /// A kubeconfig for child processes (the controller binaries).
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn env(&self) -> Option<&flux_testenv::TestEnv> {
        self.testenv.as_ref()
    }
}

/// Connects to the cluster, installs our Flux CRDs and (re)creates `namespaces`.
///
/// Against a real cluster the namespaces are deleted first (after stripping the finalizers of
/// the Flux objects in them, since no controller may be running to remove them): the tests
/// own them, so run them against a throwaway cluster.
pub async fn cluster(namespaces: &[&str]) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Ok(path) = std::env::var("FLUX_E2E_KUBECONFIG") {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config");
        let client = kube::Client::try_from(config).expect("client");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in flux_api::crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(
                &name,
                &PatchParams::apply("flux-e2e").force(),
                &Patch::Apply(&crd),
            )
            .await
            .expect("crd applied");
        }
        for ns in namespaces {
            recreate_namespace(&client, ns).await;
        }
        return Cluster {
            testenv: None,
            client,
            kubeconfig: PathBuf::from(path),
            _dir: dir,
        };
    }
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
    let client = env.client().expect("client");
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    Cluster {
        testenv: Some(env),
        client,
        kubeconfig,
        _dir: dir,
    }
}

/// Deletes `name` (Flux objects' finalizers stripped first) and creates it again.
async fn recreate_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await.expect("namespace").is_some() {
        for crd in flux_api::crds() {
            let Some(version) = crd.spec.versions.iter().find(|v| v.storage) else {
                continue;
            };
            let resource = ApiResource {
                group: crd.spec.group.clone(),
                version: version.name.clone(),
                api_version: format!("{}/{}", crd.spec.group, version.name),
                kind: crd.spec.names.kind.clone(),
                plural: crd.spec.names.plural.clone(),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, &resource);
            let Ok(list) = api.list(&ListParams::default()).await else {
                continue;
            };
            for object in list.items {
                let _ = api
                    .patch(
                        &object.metadata.name.unwrap_or_default(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
        let _ = namespaces
            .delete(name, &kube::api::DeleteParams::default())
            .await;
        wait_for(
            &format!("namespace {name} deleted"),
            Duration::from_secs(180),
            || {
                let namespaces = namespaces.clone();
                async move { matches!(namespaces.get_opt(name).await, Ok(None)).then_some(()) }
            },
        )
        .await;
    }
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace"),
        )
        .await
        .expect("namespace created");
}

/// Creates the objects of `yaml` through the API (server-side apply, so it works the same on
/// flux-testenv and a real cluster).
pub async fn apply_yaml(client: &kube::Client, yaml: &str) {
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let object: DynamicObject = serde::Deserialize::deserialize(document).expect("object yaml");
        let types = object.types.clone().expect("apiVersion and kind");
        let gvk = kube::api::GroupVersionKind::try_from(&types).expect("gvk");
        let (resource, _) = discovery.resolve_gvk(&gvk).expect("kind served");
        let api: Api<DynamicObject> = match &object.metadata.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let name = object.metadata.name.clone().expect("name");
        api.patch(
            &name,
            &kube::api::PatchParams::apply("flux-e2e").force(),
            &kube::api::Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("{} {name} applied: {e}", types.kind));
    }
}

/// Polls `check` every 100 ms until it returns a value; panics after `timeout`.
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

/// source-controller and kustomize-controller running in-process (tokio tasks).
pub struct Controllers {
    source: Option<(Shutdown, tokio::task::JoinHandle<()>)>,
    kustomize: Option<tokio::task::JoinHandle<()>>,
    kustomize_shutdown: Shutdown,
    storage: tempfile::TempDir,
    client: kube::Client,
    /// Where the controllers post events (a notification-controller), empty for none.
    events_addr: String,
}

impl Controllers {
    pub async fn start(client: kube::Client) -> Controllers {
        Self::start_posting_events(client, "").await
    }

    /// Both controllers, posting their events to `events_addr` (`http://host:port`).
    pub async fn start_posting_events(client: kube::Client, events_addr: &str) -> Controllers {
        let mut controllers = Controllers {
            source: None,
            kustomize: None,
            kustomize_shutdown: Shutdown::default(),
            storage: tempfile::tempdir().expect("storage"),
            client,
            events_addr: events_addr.to_string(),
        };
        controllers.start_source().await;
        controllers.start_kustomize();
        controllers
    }

    pub async fn start_source(&mut self) {
        let options = SourceOptions::new(
            self.storage.path().to_path_buf(),
            "127.0.0.1:0".parse().expect("addr"),
        );
        let (context, listener) = source::prepare(
            self.client.clone(),
            Arc::new(Metrics::default()),
            &self.events_addr,
            options,
        )
        .await
        .expect("source prepared");
        let shutdown = Shutdown::default();
        let wait = shutdown.wait();
        let task = tokio::spawn(async move {
            source::run(context, listener, wait)
                .await
                .expect("source runs");
        });
        self.source = Some((shutdown, task));
    }

    pub async fn stop_source(&mut self) {
        if let Some((shutdown, task)) = self.source.take() {
            shutdown.trigger();
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    pub fn start_kustomize(&mut self) {
        let options = KustomizeOptions {
            requeue_dependency: Duration::from_millis(500),
            health_poll: Duration::from_millis(200),
            http_retry: 1,
            ..KustomizeOptions::default()
        };
        let context = KustomizeContext::new(
            self.client.clone(),
            Arc::new(Metrics::default()),
            &self.events_addr,
            options,
        )
        .expect("kustomize context");
        self.kustomize_shutdown = Shutdown::default();
        let wait = self.kustomize_shutdown.wait();
        self.kustomize = Some(tokio::spawn(async move {
            kustomize::run(context, wait).await.expect("kustomize runs");
        }));
    }

    /// Kills the kustomize-controller task wherever it is (no graceful shutdown).
    pub fn abort_kustomize(&mut self) {
        if let Some(task) = self.kustomize.take() {
            task.abort();
        }
    }
}

/// The path of a controller binary: `$FLUX_E2E_BIN_DIR/<name>` when set (e.g.
/// `target/release` after `cargo build --release -p flux-bin --bins`), else the binary
/// Cargo built for this test.
pub fn controller_binary(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("FLUX_E2E_BIN_DIR") {
        let path = Path::new(&dir).join(name);
        assert!(
            path.is_file(),
            "FLUX_E2E_BIN_DIR: {} does not exist",
            path.display()
        );
        return path;
    }
    PathBuf::from(match name {
        "source-controller" => env!("CARGO_BIN_EXE_source-controller"),
        "kustomize-controller" => env!("CARGO_BIN_EXE_kustomize-controller"),
        "helm-controller" => env!("CARGO_BIN_EXE_helm-controller"),
        "notification-controller" => env!("CARGO_BIN_EXE_notification-controller"),
        other => panic!("unknown controller binary {other}"),
    })
}

/// Which build the controller binaries come from, for printed figures.
pub fn binary_profile() -> String {
    std::env::var("FLUX_E2E_BIN_DIR").map_or_else(
        |_| "binaries built for this test (dev profile unless --release)".to_string(),
        |dir| format!("binaries from {dir}"),
    )
}

/// A controller child process, killed on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts controller binary `name` against `kubeconfig` with metrics/health on free ports,
/// error-level logs (`FLUX_E2E_LOG_LEVEL` to change) and `extra` flags.
pub fn spawn_controller(name: &str, kubeconfig: &Path, extra: &[String]) -> Proc {
    let level = std::env::var("FLUX_E2E_LOG_LEVEL").unwrap_or_else(|_| "error".into());
    let child = Command::new(controller_binary(name))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            &format!("--log-level={level}"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    Proc(child)
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`), 0 when unreadable.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A one-shot-per-connection HTTP sink recording request bodies.
pub async fn webhook_sink() -> (String, Arc<Mutex<Vec<(String, Vec<u8>)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("sink");
    let url = format!("http://{}/hook", listener.local_addr().expect("sink"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    let body = buf[end + 4..end + 4 + length].to_vec();
                    record
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((head, body));
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (url, seen)
}

/// Serves `body` for every request on a loopback port (an artifact server); returns the URL
/// of `path` on it.
pub async fn serve_bytes(body: Vec<u8>, path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
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
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(header.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    url
}

/// GitHub's `X-Hub-Signature-256` header value for `body`.
pub fn github_signature(token: &str, body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A push event body shaped like GitHub's (`ref`, `before`, `after`, `repository`, `pusher`,
/// `head_commit`), for the commit `after` on `main`.
pub fn github_push_payload(url: &str, before: &str, after: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "compare": format!("{url}/compare/{}...{}", &before[..before.len().min(12)], &after[..after.len().min(12)]),
        "repository": {
            "id": 1,
            "name": "repo",
            "full_name": "flux/repo",
            "default_branch": "main",
            "clone_url": url
        },
        "pusher": {"name": "flux", "email": "flux@example.com"},
        "head_commit": {"id": after, "message": "update", "author": {"name": "flux", "email": "flux@example.com"}}
    }))
    .expect("payload")
}
