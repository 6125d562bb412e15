//! Harness shared by the end-to-end tests: source-controller and kustomize-controller
//! running in-process against a cluster client, and polling helpers.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_bin::controllers::kustomize::{self, KustomizeContext, KustomizeOptions};
use flux_bin::controllers::source::{self, SourceOptions};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve::Shutdown;

pub struct Controllers {
    pub source: Option<(Shutdown, tokio::task::JoinHandle<()>)>,
    pub kustomize: Option<tokio::task::JoinHandle<()>>,
    pub kustomize_shutdown: Shutdown,
    pub storage: tempfile::TempDir,
    pub client: kube::Client,
}

impl Controllers {
    pub async fn start(client: kube::Client) -> Controllers {
        let mut controllers = Controllers {
            source: None,
            kustomize: None,
            kustomize_shutdown: Shutdown::default(),
            storage: tempfile::tempdir().expect("storage"),
            client,
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
            "",
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
            "",
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

pub fn ready(
    conditions: Option<&Vec<flux_api::meta::Condition>>,
) -> Option<(String, String, String)> {
    conditions?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}
