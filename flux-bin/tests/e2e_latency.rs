//! The receiver path end to end: a commit on a real Git server (`git daemon` on 127.0.0.1), a
//! GitHub-style push webhook (HMAC-SHA256 signed) to the notification-controller's Receiver,
//! source-controller fetching the new revision, kustomize-controller applying it.
//!
//! - `github_push_webhook_applies_the_commit` (normal test): the three controllers in-process.
//! - `receiver_latency_figures` (ignored, figures): the controller binaries as child processes
//!   (`FLUX_E2E_BIN_DIR=target/release` for release builds), a 100-object Kustomization,
//!   commit → webhook → all 100 objects updated in the API, repeated; prints min/median/max.
//!
//! Both run against flux-testenv, or a real cluster with `FLUX_E2E_KUBECONFIG` (flux-bin/NOTES.md).

#[path = "common_perf_e2e/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{
    apply_yaml, cluster, commit_all, config_map, git_available, github_push_payload,
    github_signature, spawn_controller, start_git, wait_for, write, Controllers,
};
use flux_api::kustomize::Kustomization;
use flux_bin::controllers::notification::{self, NotificationOptions};
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher;
use kube::Api;

const NS: &str = "flux-system";
const TOKEN: &str = "s3cr3t-t0ken";

/// The Secret, GitRepository, Kustomization and github Receiver of these tests.
fn objects(url: &str) -> String {
    format!(
        r"
apiVersion: v1
kind: Secret
metadata: {{name: webhook-token, namespace: {NS}}}
stringData: {{token: {TOKEN}}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: repo, namespace: {NS}}}
spec: {{url: '{url}', interval: 1h, ref: {{branch: main}}}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: {NS}}}
spec:
  interval: 1h
  retryInterval: 1s
  prune: true
  path: ./apps
  sourceRef: {{kind: GitRepository, name: repo}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: github, namespace: {NS}}}
spec:
  type: github
  events: [push]
  secretRef: {{name: webhook-token}}
  resources:
    - {{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: repo}}
"
    )
}

/// The Receiver's `status.webhookPath` once it is Ready.
async fn webhook_path(client: &kube::Client) -> String {
    let receivers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::erase::<flux_api::notification::Receiver>(&()),
    );
    wait_for(
        "the Receiver's webhookPath",
        Duration::from_secs(60),
        || {
            let receivers = receivers.clone();
            async move {
                let receiver = receivers.get("github").await.ok()?;
                let status = &receiver.data["status"];
                let ready = status["conditions"]
                    .as_array()?
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                ready.then(|| status["webhookPath"].as_str().map(str::to_string))?
            }
        },
    )
    .await
}

/// POSTs a signed GitHub push event for `before..after`; returns the HTTP status.
async fn push_webhook(
    http: &reqwest::Client,
    receiver_addr: SocketAddr,
    path: &str,
    url: &str,
    (before, after): (&str, &str),
) -> u16 {
    let body = github_push_payload(url, before, after);
    http.post(format!("http://{receiver_addr}{path}"))
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/flux-e2e")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", format!("delivery-{after}"))
        .header("X-Hub-Signature-256", github_signature(TOKEN, &body))
        .body(body)
        .send()
        .await
        .expect("webhook POST")
        .status()
        .as_u16()
}

fn write_apps(work: &std::path::Path, count: usize, value: &str) {
    for i in 0..count {
        write(
            work,
            &format!("apps/cm{i:03}.yaml"),
            &config_map(&format!("cm{i:03}"), value),
        );
    }
}

/// `data.value` of every ConfigMap in `apps` named `cm*`.
async fn values(client: &kube::Client) -> BTreeMap<String, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    let list = api
        .list(&kube::api::ListParams::default())
        .await
        .expect("list");
    list.items
        .into_iter()
        .filter_map(|c| {
            let name = c.metadata.name?;
            let value = c.data?.get("value")?.clone();
            name.starts_with("cm").then_some((name, value))
        })
        .collect()
}

async fn applied_revision(client: &kube::Client) -> Option<String> {
    let api: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    api.get("apps").await.ok()?.status?.last_applied_revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn github_push_webhook_applies_the_commit() {
    if !git_available() {
        eprintln!("NOTICE: skipping e2e_latency: git is not installed");
        return;
    }
    let cluster = cluster(&[NS, "apps"]).await;
    let client = cluster.client.clone();
    let repo = start_git();
    write_apps(&repo.work, 20, "one");
    let first = commit_all(&repo.work, "first");

    let notification = notification::start(
        client.clone(),
        NotificationOptions {
            events_addr: "127.0.0.1:0".parse().expect("addr"),
            receiver_addr: "127.0.0.1:0".parse().expect("addr"),
            namespace: None,
            rate_limit_interval: Duration::from_secs(300),
            no_cross_namespace_refs: false,
            resync: Duration::from_secs(30),
        },
    )
    .await
    .expect("notification-controller");
    let controllers = Controllers::start_posting_events(
        client.clone(),
        &format!("http://{}", notification.events_addr),
    )
    .await;
    apply_yaml(&client, &objects(&repo.url)).await;
    wait_for("the first commit applied", Duration::from_secs(60), || {
        let client = client.clone();
        let expected = format!("main@sha1:{first}");
        async move { (applied_revision(&client).await? == expected).then_some(()) }
    })
    .await;
    assert_eq!(values(&client).await.len(), 20);
    let path = webhook_path(&client).await;

    // A new commit, announced by a signed push event: everything is updated without any
    // requestedAt set by the test (the GitRepository interval is 1h).
    write_apps(&repo.work, 20, "two");
    std::fs::remove_file(repo.work.join("apps/cm019.yaml")).expect("rm");
    let second = commit_all(&repo.work, "second");
    let http = reqwest::Client::new();
    // A payload signed with another token is refused.
    let forged = github_push_payload(&repo.url, &first, &second);
    let refused = http
        .post(format!("http://{}{path}", notification.receiver_addr))
        .header("X-GitHub-Event", "push")
        .header(
            "X-Hub-Signature-256",
            github_signature("not-the-token", &forged),
        )
        .body(forged)
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(
        push_webhook(
            &http,
            notification.receiver_addr,
            &path,
            &repo.url,
            (&first, &second)
        )
        .await,
        200
    );
    let updated = wait_for("the pushed commit applied", Duration::from_secs(60), || {
        let client = client.clone();
        async move {
            let values = values(&client).await;
            (values.len() == 19 && values.values().all(|v| v == "two")).then_some(values)
        }
    })
    .await;
    assert!(!updated.contains_key("cm019"), "cm019 pruned");
    wait_for(
        "status at the pushed revision",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            let expected = format!("main@sha1:{second}");
            async move { (applied_revision(&client).await? == expected).then_some(()) }
        },
    )
    .await;
    let repos: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::erase::<flux_api::source::GitRepository>(&()),
    );
    let repo_object = repos.get("repo").await.expect("repo");
    let annotations = repo_object.metadata.annotations.unwrap_or_default();
    let requested = annotations
        .get("reconcile.fluxcd.io/requestedAt")
        .expect("requestedAt set by the receiver");
    assert_eq!(
        repo_object.data["status"]["lastHandledReconcileAt"].as_str(),
        Some(requested.as_str()),
        "source-controller handled the receiver's request"
    );
    drop(controllers);
    drop(notification);
}

/// Watches the ConfigMaps in `apps` and the GitRepository; returns when all `count`
/// `cm*` ConfigMaps hold `value`, with the time the artifact revision changed to `revision`.
struct Progress {
    configmaps: std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>>
                + Send,
        >,
    >,
    repos: std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>>
                + Send,
        >,
    >,
    values: BTreeMap<String, String>,
    revision: String,
}

/// When the stages of one round were observed (from the webhook POST).
#[derive(Default)]
struct Milestones {
    artifact: Option<Duration>,
    first_object: Option<Duration>,
}

impl Progress {
    fn new(client: &kube::Client) -> Progress {
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
        let repos: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            NS,
            &ApiResource::erase::<flux_api::source::GitRepository>(&()),
        );
        Progress {
            configmaps: watcher::watcher(configmaps, watcher::Config::default()).boxed(),
            repos: watcher::watcher(repos, watcher::Config::default()).boxed(),
            values: BTreeMap::new(),
            revision: String::new(),
        }
    }

    /// Waits until every `cm*` of `count` holds `value`; returns when (relative to
    /// `started`) the source artifact reached `revision` and the first object held `value`.
    async fn until(
        &mut self,
        count: usize,
        value: &str,
        revision: &str,
        started: Instant,
    ) -> Milestones {
        let mut seen = Milestones::default();
        let deadline = started + Duration::from_secs(120);
        loop {
            if self.revision == revision && seen.artifact.is_none() {
                seen.artifact = Some(started.elapsed());
            }
            if seen.first_object.is_none() && self.values.values().any(|v| v == value) {
                seen.first_object = Some(started.elapsed());
            }
            if self.values.len() == count && self.values.values().all(|v| v == value) {
                return seen;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            assert!(!remaining.is_zero(), "timed out waiting for {value}");
            tokio::select! {
                event = self.configmaps.next() => {
                    if let Some(Ok(event)) = event {
                        self.on_configmap(event);
                    }
                }
                event = self.repos.next() => {
                    if let Some(Ok(watcher::Event::Apply(repo) | watcher::Event::InitApply(repo))) = event {
                        if let Some(r) = repo.data["status"]["artifact"]["revision"].as_str() {
                            self.revision = r.to_string();
                        }
                    }
                }
                () = tokio::time::sleep(remaining) => {}
            }
        }
    }

    fn on_configmap(&mut self, event: watcher::Event<ConfigMap>) {
        match event {
            watcher::Event::Apply(cm) | watcher::Event::InitApply(cm) => {
                let Some(name) = cm.metadata.name.filter(|n| n.starts_with("cm")) else {
                    return;
                };
                let value = cm
                    .data
                    .and_then(|d| d.get("value").cloned())
                    .unwrap_or_default();
                self.values.insert(name, value);
            }
            watcher::Event::Delete(cm) => {
                if let Some(name) = cm.metadata.name {
                    self.values.remove(&name);
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures; run with --ignored --nocapture (see flux-bin/NOTES.md)"]
async fn receiver_latency_figures() {
    const OBJECTS: usize = 100;
    let rounds: usize = std::env::var("FLUX_E2E_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let cluster = cluster(&[NS, "apps"]).await;
    let client = cluster.client.clone();
    let repo = start_git();
    write_apps(&repo.work, OBJECTS, "v0");
    let mut before = commit_all(&repo.work, "v0");

    let storage = tempfile::tempdir().expect("storage");
    let (events_port, receiver_port) = (common::free_port(), common::free_port());
    let events_url = format!("--events-addr=http://127.0.0.1:{events_port}");
    let _notification = spawn_controller(
        "notification-controller",
        &cluster.kubeconfig,
        &[
            format!("--events-addr=127.0.0.1:{events_port}"),
            format!("--receiverAddr=127.0.0.1:{receiver_port}"),
        ],
    );
    let _source = spawn_controller(
        "source-controller",
        &cluster.kubeconfig,
        &[
            format!("--storage-path={}", storage.path().display()),
            "--storage-addr=127.0.0.1:0".into(),
            events_url.clone(),
        ],
    );
    let _kustomize = spawn_controller("kustomize-controller", &cluster.kubeconfig, &[events_url]);
    apply_yaml(&client, &objects(&repo.url)).await;
    let mut progress = Progress::new(&client);
    progress.until(OBJECTS, "v0", "", Instant::now()).await;
    let path = webhook_path(&client).await;
    let receiver_addr: SocketAddr = format!("127.0.0.1:{receiver_port}").parse().expect("addr");
    let http = reqwest::Client::new();

    println!(
        "receiver → applied, {OBJECTS} ConfigMaps, {}, load average {}",
        common::binary_profile(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut totals = Vec::new();
    for round in 1..=rounds {
        let value = format!("v{round}");
        write_apps(&repo.work, OBJECTS, &value);
        let after = commit_all(&repo.work, &value);
        let started = Instant::now();
        let status = push_webhook(&http, receiver_addr, &path, &repo.url, (&before, &after)).await;
        let answered = started.elapsed();
        assert_eq!(status, 200, "webhook accepted");
        let seen = progress
            .until(OBJECTS, &value, &format!("main@sha1:{after}"), started)
            .await;
        let total = started.elapsed();
        println!(
            "  round {round}: webhook answered {} ms, artifact stored {} ms, first object {} ms, all {OBJECTS} applied {} ms",
            answered.as_millis(),
            seen.artifact.unwrap_or_default().as_millis(),
            seen.first_object.unwrap_or_default().as_millis(),
            total.as_millis(),
        );
        totals.push(total);
        before = after;
    }
    totals.sort();
    println!(
        "commit → webhook → {OBJECTS} objects applied over {rounds} rounds: min {:?}, median {:?}, max {:?}",
        totals[0],
        totals[totals.len() / 2],
        totals[totals.len() - 1]
    );
}
