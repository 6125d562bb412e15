//! flux-notify against the shared Flux API examples and notification-controller testdata
//! (read from `../shared` at run time; skipped with a notice when absent).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use flux_notify::provider::{Provider, ProviderType, Secrets};
use flux_notify::receiver::{self, Receiver, ReceiverType, RECONCILE_REQUEST_ANNOTATION};
use flux_notify::server::{MemoryReconciler, Notifier, Options, Registry};
use flux_notify::Alert;

fn docs(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("\n---\n").filter(|d| d.contains("kind:")) {
            out.push((
                path.file_name().unwrap().to_string_lossy().to_string(),
                doc.to_string(),
            ));
        }
    }
    out
}

#[test]
fn alert_examples_parse_and_route() {
    let Some(shared) = flux_tests::shared_dir("flux-api examples") else {
        return;
    };
    let alerts: Vec<Alert> = docs(&shared.join("flux-api/examples/alert"))
        .iter()
        .map(|(_, d)| Alert::from_yaml(d).unwrap())
        .collect();
    assert_eq!(alerts.len(), 3);
    let on_call = alerts
        .iter()
        .find(|a| a.metadata.name == "on-call")
        .unwrap();
    assert_eq!(
        on_call
            .spec
            .event_metadata
            .get("cluster")
            .map(String::as_str),
        Some("eu-prod-1")
    );
    // on-call takes error events from any Kustomization in flux-system.
    let event = |severity: &str, ns: &str| {
        flux_notify::Event::from_json(
            serde_json::json!({"involvedObject": {"kind": "Kustomization", "namespace": ns, "name": "x",
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1"}, "severity": severity, "message": "m",
                "reason": "r", "reportingController": "kustomize-controller"})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    };
    let (hits, _) = flux_notify::alert::route(
        &event("error", "flux-system"),
        &alerts,
        &flux_notify::alert::no_labels,
    );
    assert_eq!(
        hits.iter()
            .map(|a| a.metadata.name.as_str())
            .collect::<Vec<_>>(),
        ["on-call"]
    );
    let (hits, _) = flux_notify::alert::route(
        &event("info", "flux-system"),
        &alerts,
        &flux_notify::alert::no_labels,
    );
    assert!(
        hits.is_empty(),
        "commit-status alert watches only flux-system/flux-system"
    );
}

#[test]
fn provider_examples_resolve() {
    let Some(shared) = flux_tests::shared_dir("flux-api examples") else {
        return;
    };
    let mut secrets = Secrets::default();
    secrets.insert("flux-system", "slack-bot-token", &[("token", "xoxb-1")]);
    secrets.insert(
        "flux-system",
        "webhook-hmac",
        &[("token", "k"), ("headers", "X-Env: prod")],
    );
    secrets.insert(
        "flux-system",
        "webhook-ca",
        &[(
            "ca.crt",
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        )],
    );
    secrets.insert(
        "flux-system",
        "corp-proxy",
        &[("address", "http://proxy.corp:3128")],
    );
    secrets.insert("flux-system", "github-token", &[("token", "ghp_1")]);
    let mut types = Vec::new();
    for (file, doc) in docs(&shared.join("flux-api/examples/provider")) {
        let p = Provider::from_yaml(&doc).unwrap();
        match p.resolve(&secrets) {
            Ok(cfg) => types.push(cfg.provider_type.unwrap()),
            // The github example uses a CEL commitStatusExpr: resolved fine, refused at build.
            Err(e) => panic!("{file}: {e}"),
        }
    }
    assert_eq!(
        types,
        [
            ProviderType::Slack,
            ProviderType::GenericHmac,
            ProviderType::GitHub,
            ProviderType::Alertmanager
        ]
    );
}

#[test]
fn receiver_examples() {
    let Some(shared) = flux_tests::shared_dir("flux-api examples") else {
        return;
    };
    let receivers: Vec<Receiver> = docs(&shared.join("flux-api/examples/receiver"))
        .iter()
        .map(|(_, d)| Receiver::from_yaml(d).unwrap())
        .collect();
    let kinds: Vec<Option<ReceiverType>> =
        receivers.iter().map(|r| r.receiver_type().ok()).collect();
    // generic-oidc is not implemented (needs OIDC discovery + CEL): a clear error, not a crash.
    assert_eq!(
        kinds,
        [
            Some(ReceiverType::GitHub),
            Some(ReceiverType::GenericHmac),
            None,
            Some(ReceiverType::Harbor)
        ]
    );
    let oidc = &receivers[2];
    assert!(oidc
        .receiver_type()
        .unwrap_err()
        .to_string()
        .contains("unsupported receiver type 'generic-oidc'"));
    // The CEL-filtered example is refused per resource, naming the field.
    let t = receiver::targets(&receivers[1], false);
    assert!(t[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("spec.resources[0]"));
    // Harbor's cross-namespace resource is refused only with --no-cross-namespace-refs.
    assert!(receiver::targets(&receivers[3], false)[0].is_ok());
    assert!(receiver::targets(&receivers[3], true)[0].is_err());
}

/// The notification-controller server testdata objects (namespace template `%[1]s`), used as
/// the cluster a generic receiver with `matchLabels` reconciles.
#[tokio::test]
async fn receiver_annotates_testdata_objects_by_label() {
    let Some(shared) = flux_tests::shared_dir("notification-controller testdata") else {
        return;
    };
    let store = Arc::new(MemoryReconciler::default());
    for (_, doc) in docs(&shared.join("flux-api/testdata/notification-controller/server")) {
        let v: serde_yaml::Value = serde_yaml::from_str(&doc.replace("%[1]s", "apps")).unwrap();
        let labels: BTreeMap<String, String> =
            serde_yaml::from_value(v["metadata"]["labels"].clone()).unwrap_or_default();
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        store.add(
            v["apiVersion"].as_str().unwrap(),
            v["kind"].as_str().unwrap(),
            v["metadata"]["namespace"].as_str().unwrap(),
            v["metadata"]["name"].as_str().unwrap(),
            &labels,
        );
    }
    let receiver = Receiver::from_yaml(
        "metadata: {name: r, namespace: apps}\nspec:\n  type: generic\n  secretRef: {name: t}\n  resources:\n  - {kind: GitRepository, name: '*', matchLabels: {app: podinfo}}\n",
    )
    .unwrap();
    let mut secrets = Secrets::default();
    secrets.insert("apps", "t", &[("token", "tok")]);
    let path = receiver.webhook_path("tok");
    let registry = Registry {
        receivers: vec![receiver],
        secrets,
        ..Registry::default()
    };
    let reconciler: Arc<dyn flux_notify::server::Reconciler> = store.clone();
    let notifier = Notifier::new(registry, Options::default(), reconciler);
    let (status, body) = notifier.handle_hook(&path, &[], b"{}").await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert!(store
        .annotation(
            "GitRepository",
            "apps",
            "podinfo",
            RECONCILE_REQUEST_ANNOTATION
        )
        .is_some());
    assert!(store
        .annotation(
            "GitRepository",
            "apps",
            "podinfo-two",
            RECONCILE_REQUEST_ANNOTATION
        )
        .is_none());
    assert!(store
        .annotation("Kustomization", "apps", "foo", RECONCILE_REQUEST_ANNOTATION)
        .is_none());
}
