//! The event server end to end: HTTP event in → Alert routing → provider request out.

use std::sync::Arc;
use std::time::Duration;

use flux_notify::alert::Alert;
use flux_notify::error::Condition;
use flux_notify::provider::{Provider, Secrets};
use flux_notify::sender::RetryPolicy;
use flux_notify::server::{self, MemoryReconciler, Notifier, Options, Registry};

use crate::capture::CaptureServer;

const ALERT: &str = r#"
metadata: {name: webapp-alerts, namespace: apps}
spec:
  providerRef: {name: webhook}
  eventSources:
    - {kind: Kustomization, name: "web*"}
  exclusionList:
    - "^Dependencies do not meet ready condition"
  eventMetadata: {cluster: eu-1}
"#;

fn event(name: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": name, "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": "info",
        "timestamp": "2026-01-02T15:04:05Z",
        "message": message,
        "reason": "ReconciliationSucceeded",
        "metadata": {"kustomize.toolkit.fluxcd.io/revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
                     "kustomize.toolkit.fluxcd.io/token": "t-1", "kustomize.toolkit.fluxcd.io/checksum": "c"},
        "reportingController": "kustomize-controller",
    }))
    .unwrap()
}

async fn start(
    provider_yaml: &str,
    secrets: Secrets,
    retry: RetryPolicy,
) -> (Arc<Notifier>, String) {
    let registry = Registry {
        alerts: vec![Alert::from_yaml(ALERT).unwrap()],
        providers: vec![Provider::from_yaml(provider_yaml).unwrap()],
        secrets,
        ..Registry::default()
    };
    let options = Options {
        retry,
        ..Options::default()
    };
    let notifier = Notifier::new(registry, options, Arc::new(MemoryReconciler::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(server::serve(
        listener,
        server::event_router(Arc::clone(&notifier)),
    ));
    (notifier, url)
}

async fn post(url: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn wildcard_source_exclusion_and_dedup() {
    let hook = CaptureServer::start().await;
    let provider = format!(
        "metadata: {{name: webhook, namespace: apps}}\nspec: {{type: generic, address: '{}/flux'}}",
        hook.base
    );
    let (notifier, url) = start(&provider, Secrets::default(), RetryPolicy::default()).await;

    // Event in → one request out.
    assert_eq!(
        post(&url, event("webapp", "Applied revision main")).await,
        202
    );
    let got = hook.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(
        got[0].header("gotk-component"),
        Some("kustomize-controller")
    );
    assert_eq!(
        body["metadata"],
        serde_json::json!({"cluster": "eu-1", "revision": "main@sha1:0123456789abcdef0123456789abcdef01234567"}),
        "metadata merged, token and checksum removed"
    );

    // Duplicate within the window → 429 and nothing sent.
    assert_eq!(
        post(&url, event("webapp", "Applied revision main")).await,
        429
    );
    // Excluded message, non-matching name → accepted, nothing sent.
    assert_eq!(
        post(
            &url,
            event("webapp", "Dependencies do not meet ready condition")
        )
        .await,
        202
    );
    assert_eq!(post(&url, event("api", "Applied revision main")).await, 202);
    notifier.drain().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hook.count(), 1);

    // A different message is a different key: delivered.
    assert_eq!(
        post(&url, event("web-2", "Applied revision main")).await,
        202
    );
    assert_eq!(hook.wait_for(2).await.len(), 2);
    assert!(notifier.warnings().is_empty(), "{:?}", notifier.warnings());
}

#[tokio::test]
async fn malformed_event_json_is_400() {
    let (_n, url) = start("metadata: {name: webhook, namespace: apps}\nspec: {type: generic, address: 'http://127.0.0.1:9/'}", Secrets::default(), RetryPolicy::default()).await;
    assert_eq!(post(&url, b"{\"involvedObject\": ".to_vec()).await, 400);
    assert_eq!(post(&url, b"[1,2,3]".to_vec()).await, 400);
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    assert_eq!(post(&url, big).await, 413);
}

#[tokio::test]
async fn unknown_provider_type_is_reported_not_crashed() {
    let yaml = "metadata: {name: webhook, namespace: apps}\nspec: {type: carrier-pigeon, address: 'http://127.0.0.1:9/'}";
    let (notifier, url) = start(yaml, Secrets::default(), RetryPolicy::default()).await;
    assert_eq!(post(&url, event("webapp", "m")).await, 202);
    let w = notifier.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].reason, "NotificationDispatchFailed");
    assert!(
        w[0].message
            .contains("unsupported provider type 'carrier-pigeon' in spec.type"),
        "{}",
        w[0].message
    );
    let err = Provider::from_yaml(yaml)
        .unwrap()
        .resolve(&Secrets::default())
        .unwrap_err();
    let cond = Condition::not_ready(&err);
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("False", "ValidationFailed")
    );
}

#[tokio::test]
async fn unreachable_address_warns_with_masked_token() {
    let yaml = "metadata: {name: webhook, namespace: apps}\nspec: {type: generic-hmac, address: 'http://127.0.0.1:1/s3cr3t-path', secretRef: {name: hmac}}";
    let mut secrets = Secrets::default();
    secrets.insert("apps", "hmac", &[("token", "s3cr3t-path")]);
    let retry = RetryPolicy {
        max_retries: 2,
        wait_min: Duration::from_millis(10),
        wait_max: Duration::from_millis(20),
    };
    let (notifier, url) = start(yaml, secrets, retry).await;
    assert_eq!(post(&url, event("webapp", "m")).await, 202);
    notifier.drain().await;
    let w = notifier.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].reason, "NotificationDispatchFailed");
    assert!(
        w[0].message
            .starts_with("failed to send notification for Kustomization/apps/webapp"),
        "{}",
        w[0].message
    );
    assert!(
        w[0].message.contains("giving up after 3 attempts"),
        "{}",
        w[0].message
    );
    assert!(
        !w[0].message.contains("s3cr3t"),
        "token must be masked: {}",
        w[0].message
    );
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let hook = CaptureServer::start().await;
    hook.set_status(503);
    let provider = format!(
        "metadata: {{name: webhook, namespace: apps}}\nspec: {{type: generic, address: '{}/flux'}}",
        hook.base
    );
    let retry = RetryPolicy {
        max_retries: 4,
        wait_min: Duration::from_millis(150),
        wait_max: Duration::from_millis(300),
    };
    let (notifier, url) = start(&provider, Secrets::default(), retry).await;
    assert_eq!(post(&url, event("webapp", "retry me")).await, 202);
    hook.wait_for(2).await;
    hook.set_status(200);
    notifier.drain().await;
    let n = hook.count();
    assert!((3..=5).contains(&n), "attempts: {n}");
    assert!(notifier.warnings().is_empty(), "{:?}", notifier.warnings());
}

#[tokio::test]
async fn cross_namespace_refs_blocked_and_suspend_respected() {
    let hook = CaptureServer::start().await;
    let provider = format!(
        "metadata: {{name: webhook, namespace: apps}}\nspec: {{type: generic, address: '{}/flux'}}",
        hook.base
    );
    // An alert in flux-system watching apps, with --no-cross-namespace-refs.
    let alert = "metadata: {name: x, namespace: apps}\nspec:\n  providerRef: {name: webhook}\n  eventSources: [{kind: Kustomization, name: '*', namespace: other}]";
    let registry = Registry {
        alerts: vec![Alert::from_yaml(alert).unwrap()],
        providers: vec![Provider::from_yaml(&provider).unwrap()],
        ..Registry::default()
    };
    let options = Options {
        no_cross_namespace_refs: true,
        ..Options::default()
    };
    let notifier = Notifier::new(registry, options, Arc::new(MemoryReconciler::default()));
    let mut body: serde_json::Value = serde_json::from_slice(&event("webapp", "m")).unwrap();
    body["involvedObject"]["namespace"] = "other".into();
    let (status, _) = notifier
        .handle_event(&serde_json::to_vec(&body).unwrap())
        .await;
    assert_eq!(status.as_u16(), 202);
    let w = notifier.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].message
            .contains("cross-namespace references have been blocked"),
        "{}",
        w[0].message
    );

    // A suspended provider gets nothing and raises nothing.
    {
        let mut reg = notifier.registry.write().unwrap();
        reg.alerts = vec![Alert::from_yaml(ALERT).unwrap()];
        reg.providers[0].spec.suspend = true;
    }
    let (status, _) = notifier.handle_event(&event("webapp", "suspended")).await;
    assert_eq!(status.as_u16(), 202);
    notifier.drain().await;
    assert_eq!(hook.count(), 0);
    assert_eq!(notifier.warnings().len(), 1);
}
