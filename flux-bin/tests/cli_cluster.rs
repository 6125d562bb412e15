//! The cluster commands (`get`, `reconcile`, `suspend`, `resume`, ...) run as the built
//! `flux-rs` binary against flux-testenv. Where a Flux controller would answer, a task in the
//! test plays it: it sees the requestedAt annotation and writes lastHandledReconcileAt and a
//! Ready condition into status — this tests the CLI's wait logic, not a controller.

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flux_testenv::TestEnv;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::Api;
use serde_json::{json, Value};

/// A test server with our CRDs and the flux-system namespace, plus a kubeconfig for it.
struct Fixture {
    env: Arc<TestEnv>,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn fixture() -> Fixture {
    let env = TestEnv::start().await.unwrap();
    env.create_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .unwrap();
    env.create_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
    )
    .unwrap();
    for crd in flux_api::crds() {
        env.create_object(serde_json::to_value(crd).unwrap())
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    Fixture {
        env: Arc::new(env),
        _dir: dir,
        kubeconfig,
    }
}

impl Fixture {
    /// Runs flux-rs with `--kubeconfig` and a short poll interval.
    async fn flux(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flux-rs"))
            .args(args)
            .args(if args.contains(&"--timeout") {
                &[][..]
            } else {
                &["--timeout", "30s"][..]
            })
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("FLUX_RS_POLL_INTERVAL", "100ms")
            .env_remove("KUBECONFIG")
            .env_remove("FLUX_SYSTEM_NAMESPACE")
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn create(&self, yaml: &str) {
        self.env.create_yaml("fixture", yaml).unwrap();
    }

    fn status(&self, api_version: &str, kind: &str, ns: &str, name: &str, status: Value) {
        self.env
            .patch_status(api_version, kind, Some(ns), name, status)
            .unwrap();
    }

    async fn object(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        ns: &str,
        name: &str,
    ) -> Value {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.env.client().unwrap(),
            ns,
            &resource(group, version, kind, plural),
        );
        serde_json::to_value(api.get(name).await.unwrap()).unwrap()
    }
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

const GIT: &str = "
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  url: https://example.com/fleet.git
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./infra
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  namespace: apps
spec:
  interval: 10m0s
  path: ./web
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
";

fn ready(status: &str, message: &str) -> Value {
    json!([{
        "type": "Ready", "status": status, "reason": if status == "True" { "Succeeded" } else { "Failed" },
        "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"
    }])
}

/// Plays the controllers: every Flux object with a new generation or a requestedAt that
/// differs from its lastHandledReconcileAt gets it handled with Ready = `outcome`.
fn fake_controller(env: Arc<TestEnv>, outcome: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = env.client().unwrap();
        let kinds = [
            resource(
                "source.toolkit.fluxcd.io",
                "v1",
                "GitRepository",
                "gitrepositories",
            ),
            resource(
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations",
            ),
            resource(
                "helm.toolkit.fluxcd.io",
                "v2",
                "HelmRelease",
                "helmreleases",
            ),
        ];
        loop {
            for ar in &kinds {
                let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
                let Ok(list) = api.list(&ListParams::default()).await else {
                    continue;
                };
                for object in list.items {
                    let object = serde_json::to_value(object).unwrap();
                    let token = object["metadata"]["annotations"]
                        ["reconcile.fluxcd.io/requestedAt"]
                        .as_str();
                    let handled = object["status"]["lastHandledReconcileAt"].as_str() == token;
                    let observed =
                        object["status"]["observedGeneration"] == object["metadata"]["generation"];
                    if handled && observed {
                        continue;
                    }
                    let revision = "main@sha1:0123456789abcdef0123456789abcdef01234567";
                    let message = if outcome == "True" {
                        format!("Applied revision: {revision}")
                    } else {
                        "kustomization path not found: ./apps".to_string()
                    };
                    env.patch_status(
                        &ar.api_version,
                        &ar.kind,
                        object["metadata"]["namespace"].as_str(),
                        object["metadata"]["name"].as_str().unwrap(),
                        json!({
                            "lastHandledReconcileAt": token,
                            "observedGeneration": object["metadata"]["generation"],
                            "lastAppliedRevision": revision,
                            "lastAttemptedRevision": "6.0.0",
                            "artifact": {"revision": revision, "path": "x", "url": "http://x", "digest": "sha256:0", "lastUpdateTime": "2026-01-01T00:00:00Z"},
                            "conditions": ready(outcome, &message),
                        }),
                    )
                    .unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_flux_tables() {
    let fx = fixture().await;
    fx.create(GIT);
    fx.status(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "flux-system",
        "flux-system",
        json!({"artifact": {"revision": "main@sha1:abc", "path": "x", "url": "http://x", "digest": "sha256:0", "lastUpdateTime": "2026-01-01T00:00:00Z"},
               "conditions": ready("True", "stored artifact for revision 'main@sha1:abc'")}),
    );
    fx.status(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "flux-system",
        "infra",
        json!({"lastAppliedRevision": "main@sha1:abc", "conditions": ready("False", "health check failed")}),
    );

    let (code, out, err) = fx.flux(&["get", "sources", "git"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "NAME       \tREVISION     \tSUSPENDED\tREADY\tMESSAGE\n\
         flux-system\tmain@sha1:abc\tFalse    \tTrue \tstored artifact for revision 'main@sha1:abc'\n"
    );

    let (code, out, err) = fx.flux(&["get", "ks"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("apps "), "{out}");
    assert!(
        lines[1].ends_with("False\twaiting to be reconciled"),
        "{out}"
    );
    assert!(
        lines[2].contains("main@sha1:abc") && lines[2].ends_with("False\thealth check failed"),
        "{out}"
    );

    // -A adds NAMESPACE and finds the Kustomization in `apps`.
    let (code, out, _) = fx.flux(&["get", "kustomizations", "-A"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("NAMESPACE  \tNAME "), "{out}");
    assert!(out.contains("\napps       \tweb "), "{out}");

    // --status-selector keeps only objects whose Ready is False with a condition.
    let (code, out, _) = fx
        .flux(&["get", "ks", "--status-selector", "ready=false"])
        .await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("infra"), "{out}");

    // One object by name; `get all` prefixes names with the kind.
    let (code, out, _) = fx.flux(&["get", "ks", "infra", "--no-header"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("infra") && out.lines().count() == 1,
        "{out}"
    );
    let (code, out, _) = fx.flux(&["get", "all"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("gitrepository/flux-system"), "{out}");
    assert!(out.contains("kustomization/infra"), "{out}");
    assert!(
        out.contains("\n\nNAME"),
        "tables are separated by a blank line: {out}"
    );

    // --watch prints the table, then the rows that change, until --timeout.
    // The change is made only after the watch's first LIST, so it cannot land in the table.
    let lists = |env: &TestEnv| {
        env.requests()
            .iter()
            .filter(|r| r.starts_with("GET /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations"))
            .count()
    };
    let before = lists(&fx.env);
    let env = Arc::clone(&fx.env);
    let changer = tokio::spawn(async move {
        while lists(&env) == before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        env.patch_status(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some("flux-system"),
            "apps",
            json!({"conditions": ready("True", "Applied revision: main@sha1:def")}),
        )
        .unwrap();
    });
    let (code, out, err) = fx.flux(&["get", "ks", "--watch", "--timeout", "3s"]).await;
    changer.await.unwrap();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    assert_eq!(lines.len(), 4, "header, two rows, one changed row: {out}");
    assert!(
        lines[3].starts_with("apps")
            && lines[3].ends_with("\tTrue \tApplied revision: main@sha1:def"),
        "{out}"
    );

    // Nothing of a kind: a notice, exit 0, no table.
    let (code, out, err) = fx.flux(&["get", "hr"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no HelmRelease objects found in flux-system namespace"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_bad_input() {
    let fx = fixture().await;
    fx.create(GIT);
    let (code, out, err) = fx.flux(&["get", "ks", "nope"]).await;
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("Kustomization \"nope\" not found in flux-system namespace"),
        "{err}"
    );
    let (code, _, err) = fx.flux(&["get", "deployments"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unrecognized subcommand 'deployments'"),
        "{err}"
    );
    let (code, _, err) = fx.flux(&["get", "ks", "--status-selector", "ready"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("expected <condition>=<status>"), "{err}");

    // A server error is not an empty result.
    fx.env.fail_next(1, 500);
    let (code, _, err) = fx.flux(&["get", "all"]).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.starts_with("✗ GitRepository: "), "{err}");

    // A server without the CRDs: the message says what is missing.
    let bare = TestEnv::start().await.unwrap();
    bare.write_kubeconfig(&fx.kubeconfig).unwrap();
    let (code, _, err) = fx.flux(&["get", "ks"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("Kustomization: the kustomizations CRD is not installed"),
        "{err}"
    );
    // `get all` skips missing CRDs (nothing to show) but not other failures.
    let (code, out, err) = fx.flux(&["get", "all"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");

    // No server at all.
    drop(bare);
    let (code, _, err) = fx.flux(&["get", "ks", "--timeout", "2s"]).await;
    assert_ne!(code, 0);
    assert!(err.starts_with("✗ "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_with_source_waits_for_the_controller() {
    let fx = fixture().await;
    fx.create(GIT);
    let controller = fake_controller(Arc::clone(&fx.env), "True");
    let (code, _, err) = fx.flux(&["reconcile", "ks", "apps", "--with-source"]).await;
    controller.abort();
    assert_eq!(code, 0, "{err}");
    let expected = "► annotating GitRepository flux-system in flux-system namespace\n\
        ✔ GitRepository annotated\n\
        ◎ waiting for GitRepository reconciliation\n\
        ✔ GitRepository reconciliation completed\n\
        ✔ fetched revision main@sha1:0123456789abcdef0123456789abcdef01234567\n\
        ► annotating Kustomization apps in flux-system namespace\n\
        ✔ Kustomization annotated\n\
        ◎ waiting for Kustomization reconciliation\n\
        ✔ Kustomization reconciliation completed\n\
        ✔ applied revision main@sha1:0123456789abcdef0123456789abcdef01234567\n";
    assert_eq!(err, expected);
    let ks = fx
        .object(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
            "flux-system",
            "apps",
        )
        .await;
    let token = ks["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        .as_str()
        .unwrap();
    assert_eq!(ks["status"]["lastHandledReconcileAt"].as_str(), Some(token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_failure_and_timeout() {
    let fx = fixture().await;
    fx.create(GIT);
    // Nobody answers: the wait ends at --timeout with an error naming the object.
    let started = std::time::Instant::now();
    let (code, _, err) = fx
        .flux(&["reconcile", "ks", "apps", "--timeout", "1s"])
        .await;
    assert_ne!(code, 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.contains("◎ waiting for Kustomization reconciliation"),
        "{err}"
    );
    assert!(
        err.contains(
            "✗ timed out after 1s waiting for Kustomization flux-system/apps reconciliation"
        ),
        "{err}"
    );

    // The controller reports Ready=False: exit 1 with the condition's message.
    let controller = fake_controller(Arc::clone(&fx.env), "False");
    let (code, _, err) = fx.flux(&["reconcile", "kustomization", "apps"]).await;
    controller.abort();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.ends_with(
            "✗ Kustomization reconciliation failed: kustomization path not found: ./apps\n"
        ),
        "{err}"
    );
    assert!(!err.contains("reconciliation completed"), "{err}");

    // An unknown name fails before anything is annotated.
    let (code, _, err) = fx.flux(&["reconcile", "source", "git", "missing"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("GitRepository \"missing\" not found"), "{err}");
    assert!(!err.contains("annotating"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_resume() {
    let fx = fixture().await;
    fx.create(GIT);
    let (code, _, err) = fx.flux(&["suspend", "ks", "--all"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "► suspending kustomization apps in flux-system namespace\n✔ kustomization suspended\n\
         ► suspending kustomization infra in flux-system namespace\n✔ kustomization suspended\n"
    );
    for name in ["apps", "infra"] {
        let ks = fx
            .object(
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations",
                "flux-system",
                name,
            )
            .await;
        assert_eq!(ks["spec"]["suspend"], json!(true));
    }
    // The Kustomization in another namespace is untouched.
    let web = fx
        .object(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
            "apps",
            "web",
        )
        .await;
    assert!(web["spec"]["suspend"].is_null());
    let (_, out, _) = fx.flux(&["get", "ks", "apps", "--no-header"]).await;
    assert!(out.contains("\tTrue     \t"), "SUSPENDED column: {out}");

    // A suspended object is not reconciled.
    let (code, _, err) = fx.flux(&["reconcile", "ks", "apps"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("is suspended"), "{err}");

    // Resume waits for the controller.
    let controller = fake_controller(Arc::clone(&fx.env), "True");
    let (code, _, err) = fx.flux(&["resume", "ks", "apps"]).await;
    controller.abort();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "► resuming kustomization apps in flux-system namespace\n✔ kustomization resumed\n\
         ◎ waiting for Kustomization reconciliation\n✔ Kustomization reconciliation completed\n\
         ✔ applied revision main@sha1:0123456789abcdef0123456789abcdef01234567\n"
    );
    let ks = fx
        .object(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
            "flux-system",
            "apps",
        )
        .await;
    assert_eq!(ks["spec"]["suspend"], json!(false));

    // Resume without a controller and --wait=false returns at once.
    let (code, _, err) = fx.flux(&["resume", "ks", "infra", "--wait=false"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("waiting"), "{err}");

    // Bad input: neither names nor --all, unknown name.
    let (code, _, err) = fx.flux(&["suspend", "ks"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("name is required"), "{err}");
    let (code, _, err) = fx.flux(&["suspend", "hr", "ghost"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("HelmRelease \"ghost\" not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_check() {
    let env = TestEnv::start().await.unwrap();
    env.set_workloads_ready(true);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let fx = Fixture {
        env: Arc::new(env),
        _dir: dir,
        kubeconfig,
    };

    // Before the install: prerequisites pass, the full check fails and says why.
    let (code, _, err) = fx.flux(&["check", "--pre"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("✔ Kubernetes 1."), "{err}");
    assert!(err.ends_with("✔ prerequisites checks passed\n"), "{err}");
    let (code, _, err) = fx.flux(&["check"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("✗ no Flux controllers found in flux-system namespace"),
        "{err}"
    );
    assert!(
        err.contains("✗ kustomizations.kustomize.toolkit.fluxcd.io: not installed"),
        "{err}"
    );
    assert!(err.ends_with("✗ check failed\n"), "{err}");

    let (code, out, err) = fx.flux(&["install", "--timeout", "20s"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Namespace/flux-system created\n"), "{out}");
    assert!(
        out.contains(
            "CustomResourceDefinition/kustomizations.kustomize.toolkit.fluxcd.io created\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("Deployment/flux-system/source-controller created\n"),
        "{out}"
    );
    assert!(err.contains("✔ CRDs established"), "{err}");
    assert!(
        err.contains("✔ kustomize-controller: deployment ready"),
        "{err}"
    );
    assert!(err.ends_with("✔ install finished\n"), "{err}");

    // Applying again changes nothing.
    let (code, out, err) = fx.flux(&["install"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().all(|l| l.ends_with(" unchanged")), "{out}");

    let (code, _, err) = fx.flux(&["check"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("✔ helm-controller: deployment ready"), "{err}");
    assert!(
        err.contains("✔ alerts.notification.toolkit.fluxcd.io/v1beta3"),
        "{err}"
    );
    assert!(err.ends_with("✔ all checks passed\n"), "{err}");

    // A controller that stops being ready fails the check.
    fx.env.set_workloads_ready(false);
    fx.env
        .patch_status(
            "apps/v1",
            "Deployment",
            Some("flux-system"),
            "helm-controller",
            json!({"readyReplicas": 0, "availableReplicas": 0, "updatedReplicas": 0,
                   "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "no pods"}]}),
        )
        .unwrap();
    let (code, _, err) = fx.flux(&["check"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("✗ helm-controller: deployment not ready"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_times_out_when_controllers_never_get_ready() {
    let fx = fixture().await;
    let (code, _, err) = fx.flux(&["install", "--timeout", "1s"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("✗ timed out after 1s waiting for Deployment/source-controller to be ready"),
        "{err}"
    );
    assert!(!err.contains("install finished"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_export_and_apply() {
    let fx = fixture().await;
    // --export needs no cluster: the kubeconfig does not even exist.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flux-rs"))
        .args([
            "create",
            "source",
            "git",
            "podinfo",
            "--url",
            "https://github.com/stefanprodan/podinfo",
            "--branch",
            "master",
            "--export",
        ])
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"),
        "{text}"
    );

    // Apply + wait, with the fake controller answering.
    let controller = fake_controller(Arc::clone(&fx.env), "True");
    let (code, _, err) = fx
        .flux(&[
            "create",
            "source",
            "git",
            "podinfo",
            "--url",
            "https://github.com/stefanprodan/podinfo",
            "--branch",
            "master",
            "--label",
            "team=web",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "✚ generating GitRepository source\n► applying GitRepository source\n✔ GitRepository source created\n\
         ◎ waiting for GitRepository source reconciliation\n✔ GitRepository source podinfo is ready\n\
         ✔ fetched revision main@sha1:0123456789abcdef0123456789abcdef01234567\n"
    );
    let (code, _, err) = fx
        .flux(&[
            "create",
            "ks",
            "podinfo",
            "--source",
            "podinfo",
            "--path",
            "./kustomize",
            "--prune",
            "--interval",
            "10m",
        ])
        .await;
    controller.abort();
    assert_eq!(code, 0, "{err}");
    let git = fx
        .object(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
            "flux-system",
            "podinfo",
        )
        .await;
    assert_eq!(git["spec"]["ref"]["branch"], "master");
    assert_eq!(git["metadata"]["labels"]["team"], "web");
    assert_eq!(git["metadata"]["managedFields"][0]["manager"], "flux");

    // export prints clean YAML: no status, no server metadata; server defaults stay.
    let (code, out, err) = fx.flux(&["export", "ks", "podinfo"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n"), "{out}");
    assert!(
        out.contains("  interval: 10m0s\n  path: ./kustomize\n  prune: true\n"),
        "{out}"
    );
    for absent in [
        "status:",
        "managedFields",
        "resourceVersion",
        "uid:",
        "creationTimestamp",
    ] {
        assert!(!out.contains(absent), "{absent} in {out}");
    }
    let (code, out, err) = fx.flux(&["export", "source", "git", "--all"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("kind: GitRepository").count(), 1, "{out}");
    // The exported YAML is valid input for the server again.
    let exported: Vec<Value> = serde_yaml::Deserializer::from_str(&out)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .collect();
    assert_eq!(
        exported[0]["spec"]["url"],
        "https://github.com/stefanprodan/podinfo"
    );

    // --wait=false returns without a controller; a failing reconciliation is exit 1.
    let (code, _, err) = fx
        .flux(&[
            "create",
            "source",
            "helm",
            "charts",
            "--url",
            "https://charts.example.com",
            "--wait=false",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("waiting"), "{err}");
    let controller = fake_controller(Arc::clone(&fx.env), "False");
    let (code, _, err) = fx
        .flux(&[
            "create",
            "ks",
            "broken",
            "--source",
            "GitRepository/podinfo",
            "--path",
            "./nope",
        ])
        .await;
    controller.abort();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("✗ Kustomization reconciliation failed:"),
        "{err}"
    );

    // Bad flags: no cluster call, clear message.
    let (code, _, err) = fx
        .flux(&["create", "source", "git", "x", "--url", "https://h/r"])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("a Git ref is required"), "{err}");
    let (code, _, err) = fx.flux(&["export", "ks", "ghost"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("Kustomization \"ghost\" not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_logs_and_tree() {
    let fx = fixture().await;
    fx.create(GIT);
    let now = jiff::Timestamp::now().to_string();
    for (name, kind, api, reason, kind_type) in [
        (
            "e1",
            "Kustomization",
            "kustomize.toolkit.fluxcd.io/v1",
            "ReconciliationSucceeded",
            "Normal",
        ),
        (
            "e2",
            "GitRepository",
            "source.toolkit.fluxcd.io/v1",
            "GitOperationFailed",
            "Warning",
        ),
        ("e3", "Pod", "v1", "Scheduled", "Normal"),
    ] {
        fx.env
            .create_object(json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": "flux-system"},
                "involvedObject": {"apiVersion": api, "kind": kind, "name": if kind == "Kustomization" { "apps" } else { "flux-system" }, "namespace": "flux-system"},
                "reason": reason, "message": format!("{reason} happened"), "type": kind_type,
                "lastTimestamp": now, "firstTimestamp": now, "count": 1,
                "source": {"component": "kustomize-controller"},
            }))
            .unwrap();
    }
    let (code, out, err) = fx.flux(&["events"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("LAST SEEN\tTYPE   \tREASON"), "{out}");
    assert!(out.contains("Kustomization/apps"), "{out}");
    assert!(out.contains("GitRepository/flux-system"), "{out}");
    assert!(!out.contains("Pod/"), "only Flux objects: {out}");
    let (code, out, _) = fx.flux(&["events", "--for", "Kustomization/apps"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("ReconciliationSucceeded happened"), "{out}");
    let (code, _, err) = fx.flux(&["events", "--for", "Widget/x"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("unknown kind \"Widget\""), "{err}");

    // The test server keeps no container logs: with no controller pods the error says so,
    // with a pod the API's answer for the log subresource is reported, nothing is printed.
    let (code, out, err) = fx.flux(&["logs"]).await;
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(
        err.contains("no Flux controller pods found in flux-system namespace"),
        "{err}"
    );
    fx.env
        .create_object(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kustomize-controller-1", "namespace": "flux-system",
                         "labels": {"app": "kustomize-controller", "app.kubernetes.io/part-of": "flux"}},
            "spec": {"containers": [{"name": "manager", "image": "ghcr.io/flux-rs/kustomize-controller"}]},
        }))
        .unwrap();
    let (code, out, err) = fx.flux(&["logs", "--kind", "Kustomization"]).await;
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(
        err.contains("reading the logs of pod flux-system/kustomize-controller-1"),
        "{err}"
    );

    // tree: apps lists a Deployment, a nested Kustomization and a HelmRelease whose release
    // Secret holds a manifest.
    let inventory = |entries: &[&str]| json!({"inventory": {"entries": entries.iter().map(|id| json!({"id": id, "v": "v1"})).collect::<Vec<_>>()}});
    fx.status(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "flux-system",
        "apps",
        inventory(&[
            "_apps__Namespace",
            "apps_web_apps_Deployment",
            "flux-system_infra_kustomize.toolkit.fluxcd.io_Kustomization",
            "apps_podinfo_helm.toolkit.fluxcd.io_HelmRelease",
        ]),
    );
    fx.status(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "flux-system",
        "infra",
        inventory(&["_ingress__Namespace"]),
    );
    fx.create(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: apps\nspec:\n  interval: 5m\n  chart:\n    spec:\n      chart: podinfo\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n",
    );
    fx.status(
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        "apps",
        "podinfo",
        json!({"history": [{"name": "podinfo", "namespace": "apps", "version": 1, "chartName": "podinfo", "chartVersion": "6.0.0", "configDigest": "sha256:0", "digest": "sha256:0", "firstDeployed": "2026-01-01T00:00:00Z", "lastDeployed": "2026-01-01T00:00:00Z", "status": "deployed"}]}),
    );
    let release = flux_helm::release::Release {
        name: "podinfo".into(),
        namespace: "apps".into(),
        version: 1,
        manifest: "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\n".into(),
        ..Default::default()
    };
    fx.env
        .create_object(flux_helm::release::to_secret(&release).unwrap())
        .unwrap();

    let (code, out, err) = fx.flux(&["tree", "ks", "apps"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Kustomization/flux-system/apps\n\
         ├── Namespace/apps\n\
         ├── Deployment/apps/web\n\
         ├── Kustomization/flux-system/infra\n\
         │   └── Namespace/ingress\n\
         └── HelmRelease/apps/podinfo\n    \
             ├── Service/apps/podinfo\n    \
             └── Deployment/apps/podinfo\n"
    );
    let (code, out, _) = fx.flux(&["tree", "ks", "apps", "--compact"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Kustomization/flux-system/apps\n├── Kustomization/flux-system/infra\n└── HelmRelease/apps/podinfo\n"
    );
    let (code, _, err) = fx.flux(&["tree", "ks", "ghost"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("Kustomization \"ghost\" not found"), "{err}");
}

/// The content of `path` at the tip of `branch` in a repository, read with gix.
fn file_at(repo: &std::path::Path, branch: &str, path: &str) -> (String, String) {
    let repo = gix::open(repo).unwrap();
    let mut reference = repo
        .find_reference(&format!("refs/heads/{branch}"))
        .unwrap();
    let commit = reference.peel_to_commit().unwrap();
    let tree = commit.tree().unwrap();
    let entry = tree.lookup_entry_by_path(path).unwrap().unwrap();
    let data = entry.object().unwrap().data.clone();
    (commit.id.to_string(), String::from_utf8(data).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_git_commits_and_installs() {
    let env = TestEnv::start().await.unwrap();
    env.set_workloads_ready(true);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let fx = Fixture {
        env: Arc::new(env),
        _dir: dir,
        kubeconfig,
    };
    let repo_dir = tempfile::tempdir().unwrap();
    let bare = repo_dir.path().join("fleet.git");
    gix::init_bare(&bare).unwrap();
    let url = format!("file://{}", bare.display());

    let controller = fake_controller(Arc::clone(&fx.env), "True");
    let args = [
        "bootstrap",
        "git",
        "--url",
        url.as_str(),
        "--branch",
        "main",
        "--path",
        "./clusters/staging/",
    ];
    let (code, _, err) = fx.flux(&args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("✔ committed component manifests to \"main\""),
        "{err}"
    );
    assert!(err.contains("✔ installed components"), "{err}");
    assert!(
        err.ends_with("✔ Kustomization reconciled successfully\n"),
        "{err}"
    );

    let (commit, sync) = file_at(&bare, "main", "clusters/staging/flux-system/gotk-sync.yaml");
    assert!(sync.contains(&format!("url: {url}")), "{sync}");
    assert!(sync.contains("path: ./clusters/staging\n"), "{sync}");
    let (_, kustomization) = file_at(
        &bare,
        "main",
        "clusters/staging/flux-system/kustomization.yaml",
    );
    assert!(
        kustomization.contains("- gotk-components.yaml\n- gotk-sync.yaml\n"),
        "{kustomization}"
    );
    let (_, components) = file_at(
        &bare,
        "main",
        "clusters/staging/flux-system/gotk-components.yaml",
    );
    assert!(
        components.contains("kind: CustomResourceDefinition"),
        "first lines: {}",
        &components[..200]
    );

    // The cluster got the sync objects pointing at the repository.
    let git = fx
        .object(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
            "flux-system",
            "flux-system",
        )
        .await;
    assert_eq!(git["spec"]["url"], url.as_str());
    assert_eq!(git["spec"]["ref"]["branch"], "main");

    // Again: no new commit.
    let (code, _, err) = fx.flux(&args).await;
    controller.abort();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("component manifests are up to date"), "{err}");
    assert_eq!(
        file_at(&bare, "main", "clusters/staging/flux-system/gotk-sync.yaml").0,
        commit
    );

    // Bad flags are refused before anything is written or applied.
    let (code, _, err) = fx
        .flux(&[
            "bootstrap",
            "git",
            "--url",
            "http://127.0.0.1:9/x",
            "--password",
            "p",
            "--path",
            "clusters/prod",
        ])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("--allow-insecure-http"), "{err}");
    let (code, _, err) = fx
        .flux(&["bootstrap", "git", "--url", url.as_str(), "--path", "../x"])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("--path \"../x\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_helmrelease_force_and_reset() {
    let fx = fixture().await;
    fx.create(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: apps\nspec:\n  interval: 5m\n  chart:\n    spec:\n      chart: podinfo\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n        namespace: flux-system\n",
    );
    let controller = fake_controller(Arc::clone(&fx.env), "True");
    let (code, _, err) = fx
        .flux(&[
            "reconcile",
            "hr",
            "podinfo",
            "-n",
            "apps",
            "--force",
            "--reset",
        ])
        .await;
    controller.abort();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("► annotating HelmRelease podinfo in apps namespace\n"),
        "{err}"
    );
    assert!(
        err.ends_with("✔ HelmRelease reconciliation completed\n✔ applied revision 6.0.0\n"),
        "{err}"
    );
    let hr = fx
        .object(
            "helm.toolkit.fluxcd.io",
            "v2",
            "HelmRelease",
            "helmreleases",
            "apps",
            "podinfo",
        )
        .await;
    let annotations = &hr["metadata"]["annotations"];
    let token = annotations["reconcile.fluxcd.io/requestedAt"]
        .as_str()
        .unwrap();
    assert_eq!(
        annotations["reconcile.fluxcd.io/forceAt"].as_str(),
        Some(token)
    );
    assert_eq!(
        annotations["reconcile.fluxcd.io/resetAt"].as_str(),
        Some(token)
    );

    // --with-source needs the generated HelmChart; without it the error names it.
    let (code, _, err) = fx
        .flux(&[
            "reconcile",
            "hr",
            "podinfo",
            "-n",
            "apps",
            "--with-source",
            "--timeout",
            "2s",
        ])
        .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("HelmChart \"apps-podinfo\" not found in flux-system namespace"),
        "{err}"
    );
}
