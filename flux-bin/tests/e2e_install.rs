//! `flux-rs install --export` checked by the real `kubectl` (client dry-run with schema
//! validation, then server-side apply, CRDs Established) against flux-testenv, or a real
//! cluster with `FLUX_E2E_KUBECONFIG`. Without a `kubectl` binary (`FLUX_KUBECTL_BIN`, else
//! `kubectl` on PATH) it prints a NOTICE and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn kubectl_binary() -> Option<PathBuf> {
    let kubectl = std::env::var_os("FLUX_KUBECTL_BIN")
        .map_or_else(|| PathBuf::from("kubectl"), PathBuf::from);
    Command::new(&kubectl)
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(kubectl)
}

/// Runs kubectl; returns stdout, panics with stderr on failure.
fn kubectl(binary: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_manifests_pass_kubectl_validation_and_apply() {
    let Some(binary) = kubectl_binary() else {
        eprintln!("NOTICE: no kubectl binary; skipping the kubectl check of install --export");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (kubeconfig, _env) = match std::env::var("FLUX_E2E_KUBECONFIG") {
        Ok(path) => (PathBuf::from(path), None),
        Err(_) => {
            // A bare API server: the CRDs must come from the manifests themselves.
            let env = flux_testenv::TestEnv::start().await.expect("testenv");
            let path = dir.path().join("kubeconfig");
            env.write_kubeconfig(&path).expect("kubeconfig");
            (path, Some(env))
        }
    };
    let out = Command::new(env!("CARGO_BIN_EXE_flux-rs"))
        .args(["install", "--export"])
        .output()
        .expect("flux-rs runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifests = dir.path().join("gotk-components.yaml");
    std::fs::write(&manifests, &out.stdout).expect("write");
    let file = manifests.to_str().expect("utf-8 path");
    let kinds = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("kind: CustomResourceDefinition"))
        .count();
    assert_eq!(kinds, flux_api::crds().len());

    let dry_run = tokio::task::block_in_place(|| {
        kubectl(
            &binary,
            &kubeconfig,
            &["apply", "--dry-run=client", "--validate=strict", "-f", file],
        )
    });
    assert!(
        dry_run.contains("customresourcedefinition.apiextensions.k8s.io/kustomizations.kustomize.toolkit.fluxcd.io")
            && dry_run.contains("deployment.apps/kustomize-controller"),
        "{dry_run}"
    );
    let applied = tokio::task::block_in_place(|| {
        kubectl(
            &binary,
            &kubeconfig,
            &["apply", "--server-side", "-f", file],
        )
    });
    assert!(
        applied.contains("serverside-applied"),
        "server-side apply: {applied}"
    );
    let established = tokio::task::block_in_place(|| {
        kubectl(
            &binary,
            &kubeconfig,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd",
                "gitrepositories.source.toolkit.fluxcd.io",
                "kustomizations.kustomize.toolkit.fluxcd.io",
                "helmreleases.helm.toolkit.fluxcd.io",
                "receivers.notification.toolkit.fluxcd.io",
            ],
        )
    });
    assert_eq!(established.lines().count(), 4, "{established}");
}
