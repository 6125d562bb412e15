//! End to end with an OCIRepository: an artifact pushed to Debian's `docker-registry` on
//! 127.0.0.1 → source-controller stores it → a Kustomization using it applies the objects;
//! a new push + requestedAt updates them. Skipped with a NOTICE without docker-registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common_source_helm/mod.rs"]
mod common;
use common::start_registry;

use flux_api::kustomize::Kustomization;
use flux_api::source::OCIRepository;
use flux_bin::controllers::kustomize::{self, KustomizeContext, KustomizeOptions};
use flux_bin::controllers::source::{self, SourceOptions};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve::Shutdown;
use flux_source::oci::{OciOptions, Reference, Registry};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

const NS: &str = "flux-system";

async fn push(registry: &Registry, host: &str, value: &str) -> String {
    let content = tempfile::tempdir().expect("tmp");
    std::fs::write(
        content.path().join("cm.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-oci\n  namespace: apps\ndata:\n  value: \"{value}\"\n"),
    )
    .expect("write");
    let (tgz, _) = flux_source::archive::pack_to_vec(content.path(), None).expect("pack");
    let reference = Reference::with_tag(host.to_string(), "flux/manifests".into(), "latest".into());
    registry
        .push_artifact(&reference, tgz, BTreeMap::new())
        .await
        .expect("pushed")
}

async fn value(client: &kube::Client) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    api.get_opt("from-oci")
        .await
        .ok()
        .flatten()
        .and_then(|c| c.data)
        .and_then(|d| d.get("value").cloned())
}

async fn wait_applied(client: &kube::Client, revision: &str) {
    let ks: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let expected = format!("Applied revision: {revision}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = ks.get("oci").await.ok().and_then(|k| {
            k.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Ready")
        });
        if ready
            .as_ref()
            .is_some_and(|c| c.status == "True" && c.message == expected)
        {
            return;
        }
        assert!(Instant::now() < deadline, "not applied: {ready:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oci_repository_to_kustomization() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some((_registry_process, port)) = start_registry(dir.path()) else {
        eprintln!("NOTICE: skipping e2e_oci: docker-registry is not available");
        return;
    };
    let host = format!("127.0.0.1:{port}");
    let registry = Registry::new(&OciOptions {
        insecure: true,
        ..OciOptions::default()
    })
    .expect("registry client");
    let first = push(&registry, &host, "one").await;

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
    let (context, listener) = source::prepare(
        client.clone(),
        Arc::new(Metrics::default()),
        "",
        SourceOptions::new(
            storage.path().to_path_buf(),
            "127.0.0.1:0".parse().expect("addr"),
        ),
    )
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

    let repos: Api<OCIRepository> = Api::namespaced(client.clone(), NS);
    let repo: OCIRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
        "metadata": {"name": "manifests", "namespace": NS},
        "spec": {"url": format!("oci://{host}/flux/manifests"), "interval": "1h",
                 "insecure": true, "ref": {"tag": "latest"}}
    }))
    .expect("oci repo");
    repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("created");
    let ks: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let object: Kustomization = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "oci", "namespace": NS},
        "spec": {"interval": "1h", "prune": true, "path": "./",
                 "sourceRef": {"kind": "OCIRepository", "name": "manifests"}}
    }))
    .expect("ks");
    ks.create(&PostParams::default(), &object)
        .await
        .expect("created");

    wait_applied(&client, &format!("latest@{first}")).await;
    assert_eq!(value(&client).await.as_deref(), Some("one"));
    let status = repos
        .get("manifests")
        .await
        .expect("repo")
        .status
        .expect("status");
    let artifact = status.artifact.expect("artifact");
    assert_eq!(artifact.revision, format!("latest@{first}"));
    assert_eq!(
        status.url.as_deref(),
        Some(format!("oci://{host}/flux/manifests").as_str())
    );

    let second = push(&registry, &host, "two").await;
    assert_ne!(first, second);
    repos
        .patch(
            "manifests",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}}),
            ),
        )
        .await
        .expect("annotate");
    wait_applied(&client, &format!("latest@{second}")).await;
    assert_eq!(value(&client).await.as_deref(), Some("two"));

    stop.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(10), source_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), kustomize_task).await;
}
