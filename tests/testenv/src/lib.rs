//! A Kubernetes-API-compatible in-memory test server for end-to-end tests of flux-rs.
//!
//! [`TestEnv::start`] binds 127.0.0.1 on a random port and serves enough of the API for
//! `kubectl` and `kube` clients: discovery, OpenAPI v3, CRUD with resourceVersions, patches
//! (JSON, merge, strategic merge, server-side apply), watches, garbage collection and CRDs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flux_testenv::Error> {
//! let env = flux_testenv::TestEnv::start().await?;
//! let client = env.client()?;
//! env.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! # drop(client);
//! # Ok(()) }
//! ```

// Tests may unwrap; the store's operations mirror the API's many parameters.
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![allow(clippy::too_many_arguments)]

pub mod authz;
pub mod discovery;
pub mod error;
pub mod fields;
pub mod kinds;
pub mod openapi;
pub mod patch;
pub mod proto;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod util;

pub use error::{ApiError, Error};
pub use store::Store;

use hyper_util::rt::TokioIo;
use serde_json::Value;
use server::{Faults, Shared};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running test API server. Dropping it stops the server.
pub struct TestEnv {
    shared: Arc<Shared>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TestEnv {
    /// Starts a server on 127.0.0.1 with a random port.
    pub async fn start() -> Result<Self, Error> {
        Self::start_on(0).await
    }

    /// Starts a server on 127.0.0.1:`port` (0 = random).
    pub async fn start_on(port: u16) -> Result<Self, Error> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let (drop_watches, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            faults: Mutex::new(Faults::default()),
            drop_watches,
            requests: Mutex::new(Vec::new()),
            bookmark_interval: Duration::from_secs(1),
            addr,
        });
        let accept_shared = Arc::clone(&shared);
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let conn_shared = Arc::clone(&accept_shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        server::handle(Arc::clone(&conn_shared), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            shared,
            accept_task,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A kubeconfig for this server (plain HTTP, no credentials, namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: flux-testenv\n  cluster:\n    server: {}\ncontexts:\n- name: flux-testenv\n  context:\n    cluster: flux-testenv\n    user: flux-testenv\n    namespace: default\ncurrent-context: flux-testenv\nusers:\n- name: flux-testenv\n  user: {{}}\n",
            self.url()
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| Error::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// A `kube::Client` for this server (default namespace `default`).
    pub fn client(&self) -> Result<kube::Client, Error> {
        let url = self.url();
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| Error::Client {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let config = kube::Config::new(uri);
        // Plain HTTP: kube's own builder always sets up rustls (which needs a process-wide
        // crypto provider), so the client is assembled from an HTTP-only hyper client.
        use kube::client::ConfigExt as _;
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let service = tower::ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .service(http);
        Ok(kube::Client::new(service, "default"))
    }

    /// Direct access to the store (for seeding objects or inspecting state without HTTP).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store()
    }

    /// Creates (or, when it exists, leaves alone) an object given as JSON, without HTTP.
    pub fn create_object(&self, obj: Value) -> Result<Value, Error> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut store = self.store();
        let rt = store
            .registry
            .find_kind(&api_version, &kind)
            .cloned()
            .ok_or_else(|| Error::Manifest {
                name: name.clone(),
                message: format!("no resource serves {api_version} {kind}"),
            })?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .map(str::to_string)
            .or_else(|| rt.namespaced.then(|| "default".to_string()));
        let opts = store::WriteOptions {
            field_manager: "flux-testenv".into(),
            ..store::WriteOptions::default()
        };
        Ok(store.create(&rt, ns.as_deref(), obj, &opts)?)
    }

    /// Creates every object in a multi-document YAML text (CRDs first is up to the caller).
    pub fn create_yaml(&self, name: &str, text: &str) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value =
                <Value as serde::Deserialize>::deserialize(doc).map_err(|e| Error::Manifest {
                    name: name.to_string(),
                    message: e.to_string(),
                })?;
            if value.is_null() {
                continue;
            }
            out.push(self.create_object(value)?);
        }
        Ok(out)
    }

    /// Merges `status` into an object's status through the status subresource, without HTTP
    /// (e.g. to make one Deployment report a failed rollout for a health-check test).
    pub fn patch_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, Error> {
        let mut store = self.store();
        let rt = store
            .registry
            .find_kind(api_version, kind)
            .cloned()
            .ok_or_else(|| Error::Manifest {
                name: name.to_string(),
                message: format!("no resource serves {api_version} {kind}"),
            })?;
        let sub = if rt.has_status {
            store::Sub::Status
        } else {
            store::Sub::Main
        };
        let patch = serde_json::json!({ "status": status }).to_string();
        let opts = store::WriteOptions {
            field_manager: "flux-testenv".into(),
            ..store::WriteOptions::default()
        };
        let (obj, _) = store.patch(
            &rt,
            namespace,
            name,
            store::PatchType::Merge,
            patch.as_bytes(),
            sub,
            &opts,
        )?;
        Ok(obj)
    }

    /// Turns the readiness switch on or off: when on, Deployments, StatefulSets, DaemonSets,
    /// ReplicaSets and Jobs report ready/complete status right after every change.
    pub fn set_workloads_ready(&self, ready: bool) {
        self.store().set_workloads_ready(ready);
    }

    /// Fails the next `count` resource requests (not discovery) with HTTP `code`.
    pub fn fail_next(&self, count: u32, code: u16) {
        self.fail_next_matching(count, code, None);
    }

    /// Fails the next `count` resource requests whose path contains `path_part`.
    pub fn fail_next_matching(&self, count: u32, code: u16, path_part: Option<&str>) {
        let mut f = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.fail_remaining = count;
        f.fail_code = code;
        f.fail_path = path_part.map(str::to_string);
    }

    /// Delays every resource request by `delay` (zero to stop).
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .delay = delay;
    }

    /// Ends every open watch stream (clients must re-watch).
    pub fn drop_watches(&self) {
        self.shared.drop_watches.send_modify(|n| *n += 1);
    }

    /// Forgets the event history: watches resuming from older resourceVersions get 410 Gone.
    pub fn compact(&self) {
        self.store().compact();
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store().resource_version()
    }

    /// Requests received so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.drop_watches();
    }
}
