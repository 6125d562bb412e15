//! Figures (ignored by default): the controller binaries run as child processes against an
//! in-process flux-testenv; idle RSS, peak RSS while 1,000 Kustomizations reconcile, and
//! commit → applied latency of a 100-object Kustomization triggered by `requestedAt`.
//!
//! `cargo test -p flux-bin --test e2e_footprint -- --ignored --nocapture`
//! (add `--release` for release-build figures).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flux_api::kustomize::Kustomization;
use flux_api::source::GitRepository;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

#[path = "common_source_helm/mod.rs"]
mod common;
use common::git;

const NS: &str = "flux-system";

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(binary: &str, kubeconfig: &Path, extra: &[String]) -> Proc {
    let child = Command::new(binary)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--log-level=error",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("controller starts");
    Proc(child)
}

fn write_apps(work: &Path, count: usize, value: &str) {
    let dir = work.join("apps");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..count {
        std::fs::write(
            dir.join(format!("cm{i:03}.yaml")),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i:03}\n  namespace: apps\ndata:\n  value: \"{value}\"\n"),
        )
        .expect("write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures; run with --ignored --nocapture"]
async fn footprint_and_latency() {
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
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let work = dir.path().join("repo");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    write_apps(&work, 100, "one");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);

    let storage = dir.path().join("storage");
    let source = spawn(
        env!("CARGO_BIN_EXE_source-controller"),
        &kubeconfig,
        &[
            format!("--storage-path={}", storage.display()),
            "--storage-addr=127.0.0.1:0".into(),
        ],
    );
    let kustomize = spawn(env!("CARGO_BIN_EXE_kustomize-controller"), &kubeconfig, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (source_pid, kustomize_pid) = (source.0.id(), kustomize.0.id());
    println!(
        "idle RSS: source-controller {} KiB, kustomize-controller {} KiB",
        rss_kib(source_pid),
        rss_kib(kustomize_pid)
    );

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    let repo: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "repo", "namespace": NS},
        "spec": {"url": format!("file://{}", work.display()), "interval": "1h", "ref": {"branch": "main"}}
    }))
    .expect("repo");
    repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("repo");
    let ks: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let create = |name: String, spec: serde_json::Value| {
        let ks = ks.clone();
        async move {
            let mut full = json!({"interval": "1h", "prune": true, "path": "./apps",
                                  "sourceRef": {"kind": "GitRepository", "name": "repo"}});
            if let (Some(full), serde_json::Value::Object(extra)) = (full.as_object_mut(), spec) {
                full.extend(extra);
            }
            let object: Kustomization = serde_json::from_value(json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": name, "namespace": NS}, "spec": full
            }))
            .expect("ks");
            ks.create(&PostParams::default(), &object)
                .await
                .expect("ks created");
        }
    };

    // Latency: 100 objects, commit → requestedAt → applied.
    create("hundred".into(), json!({})).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    let value_of = |name: &'static str| {
        let configmaps = configmaps.clone();
        async move {
            configmaps
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|c| c.data)
                .and_then(|d| d.get("value").cloned())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while value_of("cm099").await.as_deref() != Some("one") {
        assert!(Instant::now() < deadline, "first apply");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for round in 0..3 {
        let value = format!("v{round}");
        write_apps(&work, 100, &value);
        git(&work, &["commit", "-qam", &value]);
        let started = Instant::now();
        repos
            .patch(
                "repo",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": value}}})),
            )
            .await
            .expect("annotate");
        while value_of("cm099").await.as_deref() != Some(value.as_str()) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "update applied"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("commit → 100 objects applied: {:?}", started.elapsed());
    }

    // Scale: 1,000 Kustomizations (one object each).
    let mut one = std::fs::read_dir(work.join("apps")).expect("ls").count();
    assert_eq!(one, 100);
    std::fs::create_dir_all(work.join("one")).expect("mkdir");
    std::fs::write(
        work.join("one/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: apps\ndata:\n  value: x\n",
    )
    .expect("write");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "one"]);
    repos
        .patch(
            "repo",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "scale"}}}),
            ),
        )
        .await
        .expect("annotate");
    let started = Instant::now();
    for i in 0..1000 {
        create(
            format!("k{i:04}"),
            json!({"path": "./one", "namePrefix": format!("k{i:04}-")}),
        )
        .await;
    }
    let mut peak = (0, 0);
    loop {
        peak = (
            peak.0.max(rss_kib(source_pid)),
            peak.1.max(rss_kib(kustomize_pid)),
        );
        let list = configmaps.list(&ListParams::default()).await.expect("list");
        one = list
            .items
            .iter()
            .filter(|c| {
                c.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with('k'))
            })
            .count();
        println!("  {:>4?}s: {one} applied", started.elapsed().as_secs());
        if one == 1000 || started.elapsed() > Duration::from_secs(1200) {
            break;
        }
        // Listing 1,000+ objects from the (unoptimised) in-process test server is itself
        // expensive; RSS is sampled more often than the list.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak = (
                peak.0.max(rss_kib(source_pid)),
                peak.1.max(rss_kib(kustomize_pid)),
            );
        }
    }
    println!(
        "1,000 Kustomizations: {one} applied in {:?}; peak RSS source-controller {} KiB, kustomize-controller {} KiB",
        started.elapsed(),
        peak.0,
        peak.1
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "after: RSS source-controller {} KiB, kustomize-controller {} KiB",
        rss_kib(source_pid),
        rss_kib(kustomize_pid)
    );
    assert_eq!(one, 1000);
    drop(kustomize);
    drop(source);
}
