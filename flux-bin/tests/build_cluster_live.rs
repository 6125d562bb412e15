//! `flux-rs build|diff kustomization NAME --path DIR` without `--kustomization-file`: the
//! Flux Kustomization and its `substituteFrom` ConfigMaps/Secrets are read from a cluster
//! (here the Kubernetes-API-compatible test server); `diff` compares with the live objects.

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn flux_rs(kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flux-rs"))
        .args(args)
        .current_dir(workspace())
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", "/nonexistent")
        .output()
        .expect("run flux-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A test server with our CRDs, the fleet's `apps` Kustomization and cluster-only variables.
async fn cluster() -> flux_testenv::TestEnv {
    let env = flux_testenv::TestEnv::start().await.unwrap();
    let manifests =
        flux_bin::install::manifests(&flux_bin::install::InstallOptions::default()).unwrap();
    for crd in manifests
        .into_iter()
        .filter(|m| m["kind"] == "CustomResourceDefinition")
    {
        env.create_object(crd).unwrap();
    }
    env.create_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .unwrap();
    let text =
        std::fs::read_to_string(workspace().join("examples/fleet/clusters/staging/apps.yaml"))
            .unwrap();
    let object: Value = serde_yaml::from_str(&text).unwrap();
    env.create_object(object).unwrap();
    // Values only the cluster has.
    env.create_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
        "data": {"cluster_domain": "live.example.net", "podinfo_replicas": "3"}}))
        .unwrap();
    env.create_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cluster-secrets", "namespace": "flux-system"},
        "data": {"redis_password": "bGl2ZQ=="}}))
        .unwrap();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_kustomization_and_substitute_from_objects_from_the_cluster() {
    let env = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();

    let args = [
        "build",
        "kustomization",
        "apps",
        "--path",
        "examples/fleet/apps/staging",
        "--age-key-file=examples/fleet/demo.agekey",
    ];
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let kubeconfig = kubeconfig.clone();
        move || flux_rs(&kubeconfig, &args)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let objects = flux_kustomize::yaml::parse_documents(&stdout).unwrap();
    let release = objects
        .iter()
        .find(|o| o["kind"] == "HelmRelease" && o["metadata"]["name"] == "guestbook")
        .unwrap();
    assert_eq!(
        release["spec"]["values"]["ingress"]["host"],
        "guestbook.live.example.net"
    );

    // Unknown name: a clear error naming it.
    let mut unknown = args;
    unknown[2] = "nope";
    let (code, _, stderr) = tokio::task::spawn_blocking(move || flux_rs(&kubeconfig, &unknown))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Kustomization flux-system/nope not found in the cluster"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_kustomization_against_live_objects() {
    let env = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let args = [
        "diff",
        "kustomization",
        "apps",
        "--path",
        "examples/fleet/apps/staging",
        "--age-key-file=examples/fleet/demo.agekey",
    ];
    let run =
        |kubeconfig: PathBuf| tokio::task::spawn_blocking(move || flux_rs(&kubeconfig, &args));
    // Nothing applied yet: every object is created.
    let (code, stdout, stderr) = run(kubeconfig.clone()).await.unwrap();
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("► Kustomization/flux-system/apps"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  + Deployment/podinfo/podinfo created"),
        "{stdout}"
    );
    assert!(!stdout.contains("drifted"), "{stdout}");

    // Apply the render as it is, then change one live object by hand.
    let build = [
        "build",
        "kustomization",
        "apps",
        "--path",
        "examples/fleet/apps/staging",
        "--age-key-file=examples/fleet/demo.agekey",
        "--show-secrets",
    ];
    let k = kubeconfig.clone();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || flux_rs(&k, &build))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let mut objects = flux_kustomize::yaml::parse_documents(&stdout).unwrap();
    // Namespaces first, as kustomize-controller applies them.
    objects.sort_by_key(|o| o["kind"] != "Namespace");
    for object in objects {
        env.create_object(object).unwrap();
    }
    let (code, stdout, stderr) = run(kubeconfig.clone()).await.unwrap();
    assert_eq!(code, 0, "in sync: {stdout}{stderr}");

    // The last apply also left an object this render no longer has: it would be pruned.
    env.patch_status(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        Some("flux-system"),
        "apps",
        json!({"inventory": {"entries": [
            {"id": "podinfo_podinfo_apps_Deployment", "v": "v1"},
            {"id": "podinfo_old-config__ConfigMap", "v": "v1"},
            {"id": "_old-role_rbac.authorization.k8s.io_ClusterRole", "v": "v1"},
        ]}}),
    )
    .unwrap();
    let (code, stdout, stderr) = run(kubeconfig.clone()).await.unwrap();
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("  - ConfigMap/podinfo/old-config deleted\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - ClusterRole/old-role deleted\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("Deployment/podinfo/podinfo"), "{stdout}");
    env.patch_status(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        Some("flux-system"),
        "apps",
        json!({"inventory": {"entries": []}}),
    )
    .unwrap();

    let client = env.client().unwrap();
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client, "podinfo");
    deployments
        .patch(
            "podinfo",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let (code, stdout, stderr) = run(kubeconfig).await.unwrap();
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("  ~ Deployment/podinfo/podinfo drifted"),
        "{stdout}"
    );
    assert!(stdout.contains("-  replicas: 5"), "{stdout}");
    assert!(
        !stdout.contains("podinfo-demo-password") && !stdout.contains("fleet-demo-api-token"),
        "{stdout}"
    );
}
