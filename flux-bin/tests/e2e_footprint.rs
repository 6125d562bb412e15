//! Footprint figures (ignored by default): the four controller binaries run as child processes
//! against flux-testenv (or `FLUX_E2E_KUBECONFIG`), each posting its events to the
//! notification-controller. Printed: idle RSS of each (`VmRSS` 3 s after start), then the
//! peak (`VmHWM`, the kernel's high-water mark, so no sample is missed) of
//! - notification-controller while 1,000 Alerts are read and 1,000 events are dispatched,
//! - helm-controller while 100 HelmReleases install (chartRef to one HelmChart whose artifact
//!   the test serves, as source-controller would),
//! - source- and kustomize-controller while 1,000 Kustomizations reconcile (one object each).
//!
//! `FLUX_E2E_BIN_DIR=$PWD/target/release cargo test -p flux-bin --test e2e_footprint -- --ignored --nocapture`
//! (without `FLUX_E2E_BIN_DIR`: the dev-profile binaries). `FLUX_E2E_KUSTOMIZATIONS`,
//! `FLUX_E2E_HELMRELEASES` and `FLUX_E2E_ALERTS` change the counts.

#[path = "common_perf_e2e/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{
    cluster, commit_all, free_port, proc_status_kib, spawn_controller, start_git, write, Proc,
};
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use sha2::Digest as _;

const NS: &str = "flux-system";

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mib(kib: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let value = kib as f64 / 1024.0;
    format!("{value:.1} MiB")
}

/// Creates `objects` through the API, 8 at a time.
async fn create_all(client: &kube::Client, resource: &ApiResource, objects: Vec<Value>) {
    futures_util::stream::iter(objects)
        .for_each_concurrent(8, |object| {
            let client = client.clone();
            async move {
                let namespace = object["metadata"]["namespace"].as_str().unwrap_or(NS);
                let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, resource);
                let object: DynamicObject = serde_json::from_value(object).expect("object");
                api.create(&PostParams::default(), &object)
                    .await
                    .expect("created");
            }
        })
        .await;
}

async fn eventually(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls (every 2 s, listing is expensive on the test server) until `ready` of the listed
/// objects reaches `want`; prints progress.
async fn until_count<F>(what: &str, want: usize, timeout: Duration, mut ready: F) -> usize
where
    F: FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>>,
{
    let started = Instant::now();
    loop {
        let have = ready().await;
        println!(
            "  {:>4}s: {have}/{want} {what}",
            started.elapsed().as_secs()
        );
        if have >= want || started.elapsed() > timeout {
            return have;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn chart_archive() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("tiny");
    write(
        &root,
        "Chart.yaml",
        "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
    );
    write(&root, "values.yaml", "message: hello\n");
    write(
        &root,
        "templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  message: {{ .Values.message | quote }}\n",
    );
    flux_helm::package(&root).expect("chart packaged")
}

fn ready_true(object: &DynamicObject) -> bool {
    object.data["status"]["conditions"]
        .as_array()
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn report(name: &str, process: &Proc, idle: u64) {
    println!(
        "{name}: idle {}, peak (VmHWM) {}, now {}",
        mib(idle),
        mib(proc_status_kib(process.pid(), "VmHWM")),
        mib(proc_status_kib(process.pid(), "VmRSS"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures; run with --ignored --nocapture (see flux-bin/NOTES.md)"]
#[allow(clippy::too_many_lines)]
async fn footprint_idle_and_under_load() {
    let (kustomizations, releases, alerts) = (
        count("FLUX_E2E_KUSTOMIZATIONS", 1000),
        count("FLUX_E2E_HELMRELEASES", 100),
        count("FLUX_E2E_ALERTS", 1000),
    );
    let cluster = cluster(&[NS, "apps"]).await;
    if let Some(env) = cluster.env() {
        env.set_workloads_ready(true);
    }
    let client = cluster.client.clone();
    let repo = start_git();
    write(
        &repo.work,
        "one/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: apps\ndata:\n  value: x\n",
    );
    commit_all(&repo.work, "one");

    let storage = tempfile::tempdir().expect("storage");
    let events_port = free_port();
    let events = format!("--events-addr=http://127.0.0.1:{events_port}");
    let notification = spawn_controller(
        "notification-controller",
        &cluster.kubeconfig,
        &[
            format!("--events-addr=127.0.0.1:{events_port}"),
            format!("--receiverAddr=127.0.0.1:{}", free_port()),
        ],
    );
    let source = spawn_controller(
        "source-controller",
        &cluster.kubeconfig,
        &[
            format!("--storage-path={}", storage.path().display()),
            "--storage-addr=127.0.0.1:0".into(),
            events.clone(),
        ],
    );
    let kustomize = spawn_controller(
        "kustomize-controller",
        &cluster.kubeconfig,
        std::slice::from_ref(&events),
    );
    let helm = spawn_controller("helm-controller", &cluster.kubeconfig, &[events]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = |p: &Proc| proc_status_kib(p.pid(), "VmRSS");
    let idle = (
        idle(&source),
        idle(&kustomize),
        idle(&helm),
        idle(&notification),
    );
    println!(
        "{}, load average {}",
        common::binary_profile(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "idle RSS: source {}, kustomize {}, helm {}, notification {}",
        mib(idle.0),
        mib(idle.1),
        mib(idle.2),
        mib(idle.3)
    );

    // notification-controller: a Provider, `alerts` Alerts (one object name each), and one
    // event per Alert posted to the event endpoint.
    let (sink, delivered) = common::webhook_sink().await;
    let delivered_count = || {
        delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    };
    let provider = ApiResource::erase::<flux_api::notification::Provider>(&());
    create_all(
        &client,
        &provider,
        vec![json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "sink", "namespace": NS},
            "spec": {"type": "generic", "address": sink}
        })],
    )
    .await;
    let alert = ApiResource::erase::<flux_api::notification::Alert>(&());
    let started = Instant::now();
    create_all(
        &client,
        &alert,
        (0..alerts)
            .map(|i| {
                json!({
                    "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
                    "metadata": {"name": format!("a{i:04}"), "namespace": NS},
                    "spec": {"providerRef": {"name": "sink"},
                             "eventSources": [{"kind": "Kustomization", "name": format!("a{i:04}")}]}
                })
            })
            .collect(),
    )
    .await;
    // The controller re-reads its objects after watch events settle; give it time to.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let http = reqwest::Client::new();
    let endpoint = format!("http://127.0.0.1:{events_port}/");
    let accepted = futures_util::stream::iter(0..alerts)
        .map(|i| {
            let (http, endpoint) = (http.clone(), endpoint.clone());
            async move {
                let event = json!({
                    "involvedObject": {"kind": "Kustomization", "namespace": NS, "name": format!("a{i:04}"),
                                       "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
                    "severity": "info", "timestamp": "2026-11-23T06:00:00Z",
                    "message": format!("event {i}"), "reason": "ReconciliationSucceeded",
                    "reportingController": "kustomize-controller"
                });
                http.post(&endpoint)
                    .json(&event)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(8)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    eventually("webhook deliveries", Duration::from_secs(300), || {
        delivered_count() >= alerts
    })
    .await;
    println!(
        "{alerts} Alerts, {accepted} events accepted, {} delivered in {:?}",
        delivered_count(),
        started.elapsed()
    );
    report("notification-controller", &notification, idle.3);

    // helm-controller: `releases` HelmReleases sharing one HelmChart (the test plays
    // source-controller for it).
    let archive = chart_archive();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&archive)));
    let url = common::serve_bytes(archive, "/helmchart/apps/tiny/tiny-0.1.0.tgz").await;
    let chart = ApiResource::erase::<flux_api::source::HelmChart>(&());
    create_all(
        &client,
        &chart,
        vec![json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
            "metadata": {"name": "tiny", "namespace": "apps"},
            "spec": {"chart": "tiny", "interval": "1h", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
        })],
    )
    .await;
    let charts: Api<DynamicObject> = Api::namespaced_with(client.clone(), "apps", &chart);
    charts
        .patch_status(
            "tiny",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True", "reason": "ChartPullSucceeded",
                                "message": "pulled 'tiny' chart with version '0.1.0'",
                                "lastTransitionTime": "2026-11-23T06:00:00Z"}],
                "artifact": {"path": "helmchart/apps/tiny/tiny-0.1.0.tgz", "url": url,
                             "revision": "0.1.0", "digest": digest,
                             "lastUpdateTime": "2026-11-23T06:00:00Z"}
            }})),
        )
        .await
        .expect("HelmChart status");
    let release = ApiResource::erase::<flux_api::helm::HelmRelease>(&());
    let started = Instant::now();
    create_all(
        &client,
        &release,
        (0..releases)
            .map(|i| {
                json!({
                    "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                    "metadata": {"name": format!("r{i:03}"), "namespace": "apps"},
                    "spec": {"interval": "1h", "chartRef": {"kind": "HelmChart", "name": "tiny"}}
                })
            })
            .collect(),
    )
    .await;
    let hr_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "apps", &release);
    let installed = until_count(
        "HelmReleases ready",
        releases,
        Duration::from_secs(900),
        || {
            let hr_api = hr_api.clone();
            Box::pin(async move {
                hr_api
                    .list(&ListParams::default())
                    .await
                    .map_or(0, |l| l.items.iter().filter(|o| ready_true(o)).count())
            })
        },
    )
    .await;
    println!(
        "{installed}/{releases} HelmReleases installed in {:?}",
        started.elapsed()
    );
    report("helm-controller", &helm, idle.2);

    // source- and kustomize-controller: one GitRepository, `kustomizations` Kustomizations.
    let git_repository = ApiResource::erase::<flux_api::source::GitRepository>(&());
    create_all(
        &client,
        &git_repository,
        vec![json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "repo", "namespace": NS},
            "spec": {"url": repo.url, "interval": "1h", "ref": {"branch": "main"}}
        })],
    )
    .await;
    let kustomization = ApiResource::erase::<flux_api::kustomize::Kustomization>(&());
    let started = Instant::now();
    create_all(
        &client,
        &kustomization,
        (0..kustomizations)
            .map(|i| {
                json!({
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                    "metadata": {"name": format!("k{i:04}"), "namespace": NS},
                    "spec": {"interval": "1h", "prune": true, "path": "./one",
                             "namePrefix": format!("k{i:04}-"),
                             "sourceRef": {"kind": "GitRepository", "name": "repo"}}
                })
            })
            .collect(),
    )
    .await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    let applied = until_count(
        "Kustomizations applied",
        kustomizations,
        Duration::from_secs(1500),
        || {
            let configmaps = configmaps.clone();
            Box::pin(async move {
                configmaps
                    .list(&ListParams::default().labels("kustomize.toolkit.fluxcd.io/name"))
                    .await
                    .map_or(0, |l| l.items.len())
            })
        },
    )
    .await;
    println!(
        "{applied}/{kustomizations} Kustomizations applied in {:?}",
        started.elapsed()
    );
    report("source-controller", &source, idle.0);
    report("kustomize-controller", &kustomize, idle.1);
    assert_eq!(applied, kustomizations);
    assert_eq!(installed, releases);
}
