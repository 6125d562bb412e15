//! The `flux-rs` cluster commands against the REAL controllers: flux-testenv, a `git daemon`
//! on 127.0.0.1 and the source-, kustomize-, helm- and notification-controller binaries
//! running as child processes (their JSON logs written to files). The CRDs come from
//! `flux-rs install`; every Flux object is created with `flux-rs create`.
//!
//! The one stand-in left: source-controller does not serve HelmCharts yet, so when the
//! HelmChart generated for the HelmRelease gets no artifact from it, the test packages the
//! chart from the Git work tree, serves it and writes the HelmChart's status (with a NOTICE).

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common_cli_ctl/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flux_testenv::TestEnv;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject};
use kube::Api;
use serde_json::{json, Value};
use sha2::Digest as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

use common::{commit_all, free_port, git_available, spawn_controller, start_git, wait_for, write};

const NS: &str = "flux-system";

const CHART_YAML: &str = "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n";
const CHART_VALUES: &str = "message: hello\n";
const CHART_CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  message: {{ .Values.message | quote }}\n";

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: apps\ndata:\n  value: \"{value}\"\n"
    )
}

/// flux-testenv, a kubeconfig for it, the Git server and the controller processes.
struct Stack {
    env: Arc<TestEnv>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    repo: common::GitServer,
    controllers: Vec<common::ControllerProcess>,
}

impl Stack {
    /// Test server + `flux-rs install` (CRDs, namespace, Deployments reported ready by
    /// the test server's readiness switch) + the `apps` namespace + a Git repository.
    async fn start() -> Stack {
        let env = TestEnv::start().await.unwrap();
        env.set_workloads_ready(true);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        env.write_kubeconfig(&kubeconfig).unwrap();
        env.create_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
        )
        .unwrap();
        let stack = Stack {
            env: Arc::new(env),
            dir,
            kubeconfig,
            repo: start_git(),
            controllers: Vec::new(),
        };
        let (code, _, err) = stack.flux(&["install", "--timeout", "60s"]).await;
        assert_eq!(code, 0, "install: {err}");
        stack
    }

    /// The four controllers as child processes; source, kustomize and helm post their
    /// events to notification-controller.
    fn start_controllers(&mut self) {
        let events_port = free_port();
        let receiver_port = free_port();
        let events = format!("--events-addr=http://127.0.0.1:{events_port}");
        let logs = self.dir.path().to_path_buf();
        let storage = self.dir.path().join("storage");
        self.controllers = vec![
            spawn_controller(
                env!("CARGO_BIN_EXE_notification-controller"),
                "notification-controller",
                &self.kubeconfig,
                &logs,
                &[
                    format!("--events-addr=127.0.0.1:{events_port}"),
                    format!("--receiverAddr=127.0.0.1:{receiver_port}"),
                ],
            ),
            spawn_controller(
                env!("CARGO_BIN_EXE_source-controller"),
                "source-controller",
                &self.kubeconfig,
                &logs,
                &[
                    format!("--storage-path={}", storage.display()),
                    "--storage-addr=127.0.0.1:0".into(),
                    events.clone(),
                ],
            ),
            spawn_controller(
                env!("CARGO_BIN_EXE_kustomize-controller"),
                "kustomize-controller",
                &self.kubeconfig,
                &logs,
                &[events.clone(), "--requeue-dependency=1s".into()],
            ),
            spawn_controller(
                env!("CARGO_BIN_EXE_helm-controller"),
                "helm-controller",
                &self.kubeconfig,
                &logs,
                &[events, "--requeue-dependency=1s".into()],
            ),
        ];
    }

    fn flux_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_flux-rs"));
        command
            .args(args)
            .args(if args.contains(&"--timeout") {
                &[][..]
            } else {
                &["--timeout", "60s"][..]
            })
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("FLUX_RS_POLL_INTERVAL", "100ms")
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .env_remove("FLUX_SYSTEM_NAMESPACE");
        command
    }

    /// Runs flux-rs (tokio's process API: the API server runs on this test's runtime).
    async fn flux(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.flux_command(args).output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs flux-rs and requires exit 0; returns (stdout, stderr).
    async fn flux_ok(&self, args: &[&str]) -> (String, String) {
        let (code, out, err) = self.flux(args).await;
        assert_eq!(
            code,
            0,
            "flux-rs {args:?}\nstdout: {out}\nstderr: {err}\n{}",
            self.controller_logs()
        );
        (out, err)
    }

    /// The last lines of every controller's log (for failure messages).
    fn controller_logs(&self) -> String {
        let mut text = String::new();
        for controller in &self.controllers {
            let log = std::fs::read_to_string(&controller.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let _ = writeln!(text, "--- {}", controller.log.display());
            for line in &lines[lines.len().saturating_sub(15)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    async fn config_value(&self, name: &str) -> Option<String> {
        let api: Api<ConfigMap> = Api::namespaced(self.env.client().unwrap(), "apps");
        api.get_opt(name)
            .await
            .unwrap()
            .and_then(|c| c.data)
            .and_then(|d| d.get("value").cloned())
    }

    async fn object(&self, resource: &ApiResource, name: &str) -> Value {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.env.client().unwrap(), NS, resource);
        serde_json::to_value(api.get(name).await.unwrap()).unwrap()
    }
}

fn kustomization_resource() -> ApiResource {
    ApiResource::erase::<flux_api::kustomize::Kustomization>(&())
}

fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split('\t').next().map(str::trim) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

/// Columns of a table row, trimmed.
fn cells(row: &str) -> Vec<&str> {
    row.split('\t').map(str::trim).collect()
}

/// Serves `body` for every request on a random loopback port; returns the URL.
async fn serve_bytes(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/helmchart/{NS}/{NS}-demo/demo-0.1.0.tgz",
        listener.local_addr().unwrap()
    );
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = Arc::clone(&body);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(header.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    url
}

/// Gives the generated HelmChart an artifact when source-controller does not.
async fn helm_chart_artifact(stack: &Stack, chart_dir: &Path) {
    let charts = ApiResource::erase::<flux_api::source::HelmChart>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(stack.env.client().unwrap(), NS, &charts);
    let name = format!("{NS}-demo");
    let chart = wait_for("the generated HelmChart", Duration::from_secs(60), || {
        let api = api.clone();
        let name = name.clone();
        async move { api.get_opt(&name).await.unwrap() }
    })
    .await;
    let served = wait_for_artifact(&api, &name, Duration::from_secs(10)).await;
    if served {
        return;
    }
    eprintln!("NOTICE: source-controller serves no HelmChart: the test provides its artifact");
    let archive = flux_helm::package(chart_dir).unwrap();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&archive)));
    let url = serve_bytes(archive).await;
    stack
        .env
        .patch_status(
            "source.toolkit.fluxcd.io/v1",
            "HelmChart",
            Some(NS),
            &name,
            json!({
                "observedGeneration": chart.metadata.generation,
                "conditions": [{"type": "Ready", "status": "True", "reason": "ChartPullSucceeded",
                                "message": "packaged 'demo' chart with version '0.1.0'",
                                "lastTransitionTime": "2026-11-23T06:00:00Z"}],
                "artifact": {"path": format!("helmchart/{NS}/{name}/demo-0.1.0.tgz"), "url": url,
                             "revision": "0.1.0", "digest": digest,
                             "lastUpdateTime": "2026-11-23T06:00:00Z"}
            }),
        )
        .unwrap();
}

async fn wait_for_artifact(api: &Api<DynamicObject>, name: &str, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Some(chart) = api.get_opt(name).await.unwrap() {
            if chart.data["status"]["artifact"]["url"].is_string() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(clippy::too_many_lines)]
async fn cluster_commands_against_the_controllers() {
    if !git_available() {
        eprintln!("NOTICE: skipping cli_controllers: git is not installed");
        return;
    }
    let mut stack = Stack::start().await;
    let work = stack.repo.work.clone();
    write(&work, "apps/demo.yaml", &config_map("demo", "one"));
    write(&work, "other/other.yaml", &config_map("other", "one"));
    write(&work, "charts/demo/Chart.yaml", CHART_YAML);
    write(&work, "charts/demo/values.yaml", CHART_VALUES);
    write(
        &work,
        "charts/demo/templates/configmap.yaml",
        CHART_CONFIGMAP,
    );
    let first = commit_all(&work, "first");

    // `check` before the controllers run: it verifies the Kubernetes version, the CRDs
    // `install` applied and the Deployments' readiness — which here is the test server's
    // switch; the controllers themselves are processes `check` cannot see.
    let (_, err) = stack.flux_ok(&["check"]).await;
    assert!(
        err.contains("✔ source-controller: deployment ready"),
        "{err}"
    );
    assert!(
        err.contains("✔ kustomizations.kustomize.toolkit.fluxcd.io/v1"),
        "{err}"
    );
    assert!(err.ends_with("✔ all checks passed\n"), "{err}");

    stack.start_controllers();

    // create waits for the real controllers' Ready.
    let url = stack.repo.url.clone();
    let (_, err) = stack
        .flux_ok(&[
            "create",
            "source",
            "git",
            "repo",
            "--url",
            &url,
            "--branch",
            "main",
            "--interval",
            "1h",
        ])
        .await;
    assert!(
        err.contains(&format!("fetched revision: main@sha1:{first}"))
            || err.contains(&format!("main@sha1:{first}")),
        "{err}"
    );
    for (name, path) in [("apps", "./apps"), ("other", "./other")] {
        stack
            .flux_ok(&[
                "create",
                "ks",
                name,
                "--source",
                "GitRepository/repo",
                "--path",
                path,
                "--prune",
                "--interval",
                "1h",
            ])
            .await;
    }
    assert_eq!(stack.config_value("demo").await.as_deref(), Some("one"));

    // HelmRelease from a chart in the Git repository.
    let chart_dir = work.join("charts/demo");
    let (hr, ()) = tokio::join!(
        stack.flux(&[
            "create",
            "hr",
            "demo",
            "--source",
            "GitRepository/repo",
            "--chart",
            "./charts/demo",
            "--target-namespace",
            "apps",
            "--interval",
            "1h",
        ]),
        helm_chart_artifact(&stack, &chart_dir),
    );
    assert_eq!(
        hr.0,
        0,
        "create hr: {}\n{}\n{}\n{}\n{}",
        hr.1,
        hr.2,
        stack.controller_logs(),
        stack
            .object(
                &ApiResource::erase::<flux_api::helm::HelmRelease>(&()),
                "demo"
            )
            .await,
        stack
            .object(
                &ApiResource::erase::<flux_api::source::HelmChart>(&()),
                "flux-system-demo"
            )
            .await
    );
    let api: Api<ConfigMap> = Api::namespaced(stack.env.client().unwrap(), "apps");
    // Flux names the release `<targetNamespace>-<name>`.
    let released = api.get("apps-demo-config").await.unwrap();
    assert_eq!(released.data.unwrap()["message"], "hello");

    // Tables with what the controllers wrote.
    let (out, _) = stack.flux_ok(&["get", "sources", "git"]).await;
    assert!(out.starts_with("NAME"), "{out}");
    let repo_row = cells(row(&out, "repo"));
    assert_eq!(repo_row[1], format!("main@sha1:{first}"), "{out}");
    assert_eq!(&repo_row[2..4], ["False", "True"], "{out}");
    assert_eq!(
        repo_row[4],
        format!("stored artifact for revision 'main@sha1:{first}'"),
        "{out}"
    );

    let (out, _) = stack.flux_ok(&["get", "ks"]).await;
    for name in ["apps", "other"] {
        let ks = cells(row(&out, name));
        assert_eq!(
            ks[1..],
            [
                format!("main@sha1:{first}").as_str(),
                "False",
                "True",
                format!("Applied revision: main@sha1:{first}").as_str()
            ],
            "{out}"
        );
    }

    let (out, _) = stack.flux_ok(&["get", "hr"]).await;
    let hr_row = cells(row(&out, "demo"));
    assert_eq!(hr_row[1], "0.1.0", "{out}");
    assert_eq!(&hr_row[2..4], ["False", "True"], "{out}");
    assert!(hr_row[4].contains("Helm install succeeded"), "{out}");

    let (out, _) = stack.flux_ok(&["get", "all", "-A"]).await;
    for (object, revision) in [
        ("gitrepository/repo", format!("main@sha1:{first}")),
        ("kustomization/apps", format!("main@sha1:{first}")),
        ("helmrelease/demo", "0.1.0".to_string()),
    ] {
        assert!(
            out.lines()
                .map(cells)
                .any(|c| c.len() > 4 && c[..5] == [NS, object, revision.as_str(), "False", "True"]),
            "{object} in:\n{out}"
        );
    }

    // A new commit: `reconcile source git` fetches it.
    write(&work, "apps/demo.yaml", &config_map("demo", "two"));
    let second = commit_all(&work, "second");
    let (_, err) = stack.flux_ok(&["reconcile", "source", "git", "repo"]).await;
    assert!(
        err.contains(&format!("✔ fetched revision main@sha1:{second}")),
        "{err}"
    );
    let (out, _) = stack.flux_ok(&["get", "sources", "git", "repo"]).await;
    assert!(out.contains(&format!("main@sha1:{second}")), "{out}");

    // Another commit: `reconcile ks --with-source` fetches and applies it.
    write(&work, "apps/demo.yaml", &config_map("demo", "three"));
    let third = commit_all(&work, "third");
    let (_, err) = stack
        .flux_ok(&["reconcile", "ks", "apps", "--with-source"])
        .await;
    assert!(
        err.contains(&format!("✔ fetched revision main@sha1:{third}")),
        "{err}"
    );
    assert!(
        err.ends_with(&format!("✔ applied revision main@sha1:{third}\n")),
        "{err}"
    );
    assert_eq!(stack.config_value("demo").await.as_deref(), Some("three"));

    // Suspended: a later commit is not applied, while `other` (same source) applies it.
    let (_, err) = stack.flux_ok(&["suspend", "ks", "apps"]).await;
    assert!(err.contains("✔ kustomization suspended"), "{err}");
    write(&work, "apps/demo.yaml", &config_map("demo", "four"));
    write(&work, "other/other.yaml", &config_map("other", "four"));
    let fourth = commit_all(&work, "fourth");
    stack
        .flux_ok(&["reconcile", "ks", "other", "--with-source"])
        .await;
    assert_eq!(stack.config_value("other").await.as_deref(), Some("four"));
    assert_eq!(stack.config_value("demo").await.as_deref(), Some("three"));
    let apps = stack.object(&kustomization_resource(), "apps").await;
    assert_eq!(
        apps["status"]["lastAppliedRevision"],
        format!("main@sha1:{third}")
    );
    let (out, _) = stack.flux_ok(&["get", "ks", "apps", "--no-header"]).await;
    let suspended = cells(&out);
    assert_eq!(
        suspended[1..3],
        [format!("main@sha1:{third}").as_str(), "True"],
        "{out}"
    );
    let (code, _, err) = stack.flux(&["reconcile", "ks", "apps"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("is suspended"), "{err}");

    // Resumed: applied, and the command waits for it.
    let (_, err) = stack.flux_ok(&["resume", "ks", "apps"]).await;
    assert!(
        err.ends_with(&format!("✔ applied revision main@sha1:{fourth}\n")),
        "{err}"
    );
    assert_eq!(stack.config_value("demo").await.as_deref(), Some("four"));

    // HelmRelease reconcile: the real helm-controller handles the request.
    let (_, err) = stack.flux_ok(&["reconcile", "hr", "demo"]).await;
    assert!(
        err.contains("✔ HelmRelease reconciliation completed"),
        "{err}"
    );
    assert!(err.ends_with("✔ applied revision 0.1.0\n"), "{err}");

    // suspend/resume --all.
    let (_, err) = stack.flux_ok(&["suspend", "ks", "--all"]).await;
    assert_eq!(err.matches("✔ kustomization suspended").count(), 2, "{err}");
    for name in ["apps", "other"] {
        let ks = stack.object(&kustomization_resource(), name).await;
        assert_eq!(ks["spec"]["suspend"], json!(true), "{name}");
    }
    write(&work, "other/other.yaml", &config_map("other", "five"));
    let fifth = commit_all(&work, "fifth");
    stack.flux_ok(&["reconcile", "source", "git", "repo"]).await;
    let (_, err) = stack.flux_ok(&["resume", "ks", "--all"]).await;
    assert_eq!(
        err.matches(&format!("✔ applied revision main@sha1:{fifth}"))
            .count(),
        2,
        "{err}"
    );
    assert_eq!(stack.config_value("other").await.as_deref(), Some("five"));

    // `get ks --watch` sees the controller apply a new commit.
    write(&work, "apps/demo.yaml", &config_map("demo", "six"));
    let sixth = commit_all(&work, "sixth");
    let mut watch = stack
        .flux_command(&["get", "ks", "apps", "--watch", "--timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let header = lines.next_line().await.unwrap().unwrap();
    assert!(header.starts_with("NAME"), "{header}");
    let initial = lines.next_line().await.unwrap().unwrap();
    assert!(initial.contains(&format!("main@sha1:{fifth}")), "{initial}");
    stack
        .flux_ok(&["reconcile", "ks", "apps", "--with-source"])
        .await;
    let applied = format!("Applied revision: main@sha1:{sixth}");
    let seen = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.ends_with(&applied) {
                return line;
            }
        }
        panic!("the watch ended without showing {applied}");
    })
    .await
    .expect("the watch shows the new revision");
    assert!(seen.starts_with("apps"), "{seen}");
    let _ = watch.kill().await;

    // tree and events.
    let (out, _) = stack.flux_ok(&["tree", "ks", "apps"]).await;
    assert_eq!(
        out,
        "Kustomization/flux-system/apps\n└── ConfigMap/apps/demo\n"
    );
    let (out, _) = stack
        .flux_ok(&["events", "--for", "Kustomization/apps"])
        .await;
    assert!(out.contains("ReconciliationSucceeded"), "{out}");
    assert!(out.contains("Kustomization/apps"), "{out}");
    let (out, _) = stack
        .flux_ok(&["events", "--for", "GitRepository/repo"])
        .await;
    assert!(out.contains("NewArtifact"), "{out}");

    // Notification objects served by notification-controller.
    stack
        .env
        .create_object(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "webhook-token", "namespace": NS},
            "stringData": {"token": "s3cr3t"}
        }))
        .unwrap();
    stack
        .flux_ok(&[
            "create",
            "alert-provider",
            "sink",
            "--type",
            "generic",
            "--address",
            "http://127.0.0.1:9/hook",
        ])
        .await;
    stack
        .flux_ok(&[
            "create",
            "alert",
            "all",
            "--provider-ref",
            "sink",
            "--event-source",
            "Kustomization/*",
        ])
        .await;
    let (_, err) = stack
        .flux_ok(&[
            "create",
            "receiver",
            "push",
            "--type",
            "generic",
            "--resource",
            "GitRepository/repo",
            "--secret-ref",
            "webhook-token",
        ])
        .await;
    assert!(err.contains("webhook path /hook/"), "{err}");
    let (out, _) = stack.flux_ok(&["get", "receivers"]).await;
    let receiver = cells(row(&out, "push"));
    assert_eq!(receiver[1..3], ["False", "True"], "{out}");
    assert!(
        receiver[3].starts_with("Receiver initialized for path: /hook/"),
        "{out}"
    );
    let (out, _) = stack.flux_ok(&["get", "alerts"]).await;
    assert!(row(&out, "all").contains("False"), "{out}");
    let (out, _) = stack.flux_ok(&["get", "alert-providers"]).await;
    assert!(row(&out, "sink").contains("False"), "{out}");
    let (_, err) = stack.flux_ok(&["reconcile", "receiver", "push"]).await;
    assert!(err.contains("✔ Receiver reconciliation completed"), "{err}");
}
