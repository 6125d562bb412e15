//! notification-controller end to end on flux-testenv: an Alert delivers a posted event to a
//! local webhook; a GitHub-style Receiver (HMAC-SHA256 signature) annotates a GitRepository
//! with `reconcile.fluxcd.io/requestedAt`. Against flux-testenv, or a real cluster with
//! `FLUX_E2E_KUBECONFIG` (flux-bin/NOTES.md).

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common_perf_e2e/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::{json, Value};

use flux_bin::controllers::notification::{self, NotificationOptions};

fn options() -> NotificationOptions {
    NotificationOptions {
        events_addr: "127.0.0.1:0".parse().unwrap(),
        receiver_addr: "127.0.0.1:0".parse().unwrap(),
        namespace: None,
        rate_limit_interval: Duration::from_secs(300),
        no_cross_namespace_refs: false,
        resync: Duration::from_secs(30),
    }
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn event(name: &str, reason: &str, message: &str) -> Value {
    json!({
        "involvedObject": {
            "kind": "Kustomization",
            "namespace": "apps",
            "name": name,
            "uid": "8f2c0d51-8f3e-4d1a-9d0e-6c9f1b7f7f10",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "resourceVersion": "1"
        },
        "severity": "info",
        "timestamp": "2026-11-23T06:00:00Z",
        "message": message,
        "reason": reason,
        "metadata": {"revision": "main@sha1:0123456789abcdef0123456789abcdef01234567"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-0"
    })
}

#[tokio::test]
async fn alert_delivers_posted_events_to_a_local_webhook() {
    let cluster = common::cluster(&["apps"]).await;
    let (url, seen) = common::webhook_sink().await;
    common::apply_yaml(
        &cluster.client,
        &format!(
            r"
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {{name: hook, namespace: apps}}
spec: {{type: generic, address: '{url}'}}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {{name: apps, namespace: apps}}
spec:
  providerRef: {{name: hook}}
  eventSeverity: info
  eventSources: [{{kind: Kustomization, name: 'web*'}}]
  exclusionList: ['.*ignored.*']
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {{name: labelled, namespace: apps}}
spec:
  providerRef: {{name: hook}}
  eventSources: [{{kind: Kustomization, name: '*', matchLabels: {{team: data}}}}]
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: db, namespace: apps, labels: {{team: data}}}}
spec: {{interval: 5m, prune: true, sourceRef: {{kind: GitRepository, name: repo}}}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: cache, namespace: apps, labels: {{team: other}}}}
spec: {{interval: 5m, prune: true, sourceRef: {{kind: GitRepository, name: repo}}}}
"
        ),
    )
    .await;
    let controller = notification::start(cluster.client.clone(), options())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let endpoint = format!("http://{}/", controller.events_addr);

    let post = |body: Value| {
        let http = http.clone();
        let endpoint = endpoint.clone();
        async move {
            http.post(&endpoint)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(event("web-frontend", "ReconciliationSucceeded", "applied")).await,
        202
    );
    wait_for("the webhook delivery", || {
        let seen = Arc::clone(&seen);
        async move { !seen.lock().unwrap().is_empty() }
    })
    .await;
    // Same event again within the rate-limit window: discarded.
    assert_eq!(
        post(event("web-frontend", "ReconciliationSucceeded", "applied")).await,
        429
    );
    // Not matched by any Alert (labels differ), or excluded by its regex: nothing sent.
    assert_eq!(
        post(event("cache", "ReconciliationSucceeded", "x")).await,
        202
    );
    assert_eq!(
        post(event(
            "web-api",
            "ReconciliationSucceeded",
            "ignored change"
        ))
        .await,
        202
    );
    // Matched through the labelled Alert's matchLabels (labels read from the API).
    assert_eq!(post(event("db", "ReconciliationFailed", "boom")).await, 202);
    controller.notifier.drain().await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "two deliveries: {seen:?}");
    let labelled: Value = serde_json::from_slice(&seen[1].1).unwrap();
    assert_eq!(labelled["involvedObject"]["name"], "db");
    assert_eq!(labelled["message"], "boom");
    let (head, body) = &seen[0];
    assert!(head.starts_with("POST /hook"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("gotk-component: kustomize-controller"),
        "{head}"
    );
    let delivered: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(delivered["involvedObject"]["name"], "web-frontend");
    assert_eq!(delivered["message"], "applied");
    assert_eq!(delivered["reason"], "ReconciliationSucceeded");
}

#[tokio::test]
async fn github_receiver_annotates_the_git_repository() {
    let cluster = common::cluster(&["flux-system"]).await;
    common::apply_yaml(
        &cluster.client,
        r"
apiVersion: v1
kind: Secret
metadata: {name: webhook-token, namespace: flux-system}
stringData: {token: s3cr3t-t0ken}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: podinfo, namespace: flux-system}
spec: {url: 'https://example.invalid/podinfo', interval: 5m, ref: {branch: main}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {name: github, namespace: flux-system}
spec:
  type: github
  events: [push]
  secretRef: {name: webhook-token}
  resources:
    - {apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, name: podinfo}
",
    )
    .await;
    let client = cluster.client.clone();
    let controller = notification::start(client.clone(), options())
        .await
        .unwrap();

    let receivers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ApiResource::erase::<flux_api::notification::Receiver>(&()),
    );
    let expected_path =
        flux_notify::receiver::webhook_path("s3cr3t-t0ken", "github", "flux-system");
    let receiver = receivers.get("github").await.unwrap();
    let status = &receiver.data["status"];
    assert_eq!(status["webhookPath"], expected_path.as_str());
    assert_eq!(status["conditions"][0]["type"], "Ready");
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(status["conditions"][0]["reason"], "Succeeded");
    assert_eq!(
        status["conditions"][0]["message"],
        format!("Receiver initialized for path: {expected_path}").as_str()
    );

    let url = format!("http://{}{expected_path}", controller.receiver_addr);
    let body = br#"{"ref":"refs/heads/main","after":"0123456789abcdef"}"#;
    let http = reqwest::Client::new();
    // A bad signature is refused and annotates nothing.
    let refused = http
        .post(&url)
        .header("X-GitHub-Event", "push")
        .header(
            "X-Hub-Signature-256",
            common::github_signature("wrong", body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let repos: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "flux-system",
        &ApiResource::erase::<flux_api::source::GitRepository>(&()),
    );
    let before = repos.get("podinfo").await.unwrap();
    assert!(!before
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("reconcile.fluxcd.io/requestedAt"));

    let accepted = http
        .post(&url)
        .header("X-GitHub-Event", "push")
        .header(
            "X-Hub-Signature-256",
            common::github_signature("s3cr3t-t0ken", body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    let after = repos.get("podinfo").await.unwrap();
    let requested = after
        .metadata
        .annotations
        .unwrap_or_default()
        .get("reconcile.fluxcd.io/requestedAt")
        .cloned()
        .expect("requestedAt annotation");
    // Go's time.Time.String() form: "2026-11-23 06:00:00.123456789 +0000 UTC".
    assert!(requested.ends_with(" +0000 UTC"), "{requested}");
    drop(controller);
}
