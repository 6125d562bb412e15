//! Harness shared by the end-to-end tests: flux-testenv with our Flux CRDs and the
//! `flux-system`/`apps` namespaces, source- and kustomize-controller running in-process, and
//! polling helpers ("eventually", never timed assertions).

#![allow(dead_code)] // each test binary uses its own subset

use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_api::meta::Condition;
use flux_bin::controllers::kustomize::{self, KustomizeContext, KustomizeOptions};
use flux_bin::controllers::source::{self, SourceOptions};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve::Shutdown;
use serde_json::json;

/// The namespace the Flux objects live in.
pub const NS: &str = "flux-system";

/// A test API server with both controllers running against it.
pub struct Controllers {
    pub env: flux_testenv::TestEnv,
    pub client: kube::Client,
    stop: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _storage: tempfile::TempDir,
}

impl Controllers {
    /// Starts flux-testenv (CRDs, namespaces) and the two controllers.
    pub async fn start() -> Controllers {
        let env = flux_testenv::TestEnv::start().await.expect("testenv");
        for crd in flux_api::crds() {
            env.create_object(serde_json::to_value(&crd).expect("crd"))
                .expect("crd");
        }
        for ns in [NS, "apps"] {
            env.create_object(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .expect("ns");
        }
        let client = env.client().expect("client");
        let storage = tempfile::tempdir().expect("storage");
        let mut options = SourceOptions::new(
            storage.path().to_path_buf(),
            "127.0.0.1:0".parse().expect("addr"),
        );
        options.min_retry_delay = Duration::from_millis(200);
        options.max_retry_delay = Duration::from_secs(2);
        let (context, listener) =
            source::prepare(client.clone(), Arc::new(Metrics::default()), "", options)
                .await
                .expect("source");
        let stop = Shutdown::default();
        let source_task = tokio::spawn(source::run(context, listener, stop.wait()));
        let kustomize_context = KustomizeContext::new(
            client.clone(),
            Arc::new(Metrics::default()),
            "",
            KustomizeOptions {
                requeue_dependency: Duration::from_millis(500),
                ..KustomizeOptions::default()
            },
        )
        .expect("kustomize");
        let kustomize_task = tokio::spawn(kustomize::run(kustomize_context, stop.wait()));
        Controllers {
            env,
            client,
            stop,
            tasks: vec![source_task, kustomize_task],
            _storage: storage,
        }
    }

    /// Stops the controllers and waits (bounded) for them to finish.
    pub async fn stop(self) {
        self.stop.trigger();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some`, failing with `what` and the last
/// observation after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(Instant::now() < deadline, "{what}: last seen {last}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The condition of `type_` in `list`.
pub fn condition<'a>(list: Option<&'a [Condition]>, type_: &str) -> Option<&'a Condition> {
    list?.iter().find(|c| c.type_ == type_)
}
