//! Drives the server with the real `kubectl`.
//!
//! Every test works in its own namespace, so the same suite runs against a real cluster:
//! set `FLUX_TESTENV_REAL_KUBECONFIG=/path/to/kubeconfig` (tests that need the test server's
//! switches are skipped there). `FLUX_TESTENV_KUBECTL` picks another kubectl binary.
//! Without kubectl on PATH the tests print a notice and pass.

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Harness {
    env: Option<flux_testenv::TestEnv>,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    ns: String,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// The kubectl binary: `$FLUX_TESTENV_KUBECTL` or `kubectl` from PATH.
fn kubectl_bin() -> std::ffi::OsString {
    std::env::var_os("FLUX_TESTENV_KUBECTL").unwrap_or_else(|| "kubectl".into())
}

fn kubectl_available() -> bool {
    let found = Command::new(kubectl_bin())
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("NOTICE: kubectl not found on PATH; skipping the kubectl suite");
    }
    found
}

/// Starts a harness, or None (after a notice) when kubectl is missing.
async fn harness(test: &str) -> Option<Harness> {
    if !kubectl_available() {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (env, kubeconfig) = match std::env::var_os("FLUX_TESTENV_REAL_KUBECONFIG") {
        Some(path) => (None, PathBuf::from(path)),
        None => {
            let env = flux_testenv::TestEnv::start()
                .await
                .expect("start test server");
            let path = dir.path().join("kubeconfig");
            env.write_kubeconfig(&path).expect("write kubeconfig");
            (Some(env), path)
        }
    };
    let suffix = flux_testenv::util::random_suffix();
    let h = Harness {
        env,
        kubeconfig,
        dir,
        ns: format!("t-{test}-{suffix}"),
    };
    h.ok_stdin(
        &["create", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
            h.ns
        ),
    );
    Some(h)
}

impl Harness {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_bin());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args);
        cmd
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("kubectl output");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_stdin(args, "")
    }

    /// Runs and asserts success, returning stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_stdin(args, stdin);
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// `kubectl get -o json` in the test namespace.
    fn get_json(&self, what: &str) -> Value {
        let text = self.ok(&["get", "-n", &self.ns, what, "-o", "json"]);
        serde_json::from_str(&text).expect("kubectl json")
    }

    fn exists(&self, what: &str) -> bool {
        let out = self.run(&["get", "-n", &self.ns, what, "-o", "name"]);
        if !out.ok {
            assert!(
                out.stderr.contains("NotFound") || out.stderr.contains("not found"),
                "{}",
                out.stderr
            );
        }
        out.ok
    }

    /// `kubectl create -f -` of a ConfigMap with one key (the `create configmap` generator sends protobuf).
    fn create_cm(&self, name: &str, extra: &[&str]) -> Out {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"1\"\n"
        );
        let mut args = vec!["create", "-n", &self.ns, "-f", "-"];
        args.extend_from_slice(extra);
        self.run_stdin(&args, &yaml)
    }

    fn real_cluster(&self) -> bool {
        self.env.is_none()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self
            .command(&["delete", "namespace", &self.ns, "--wait=false"])
            .output();
    }
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: demo
data:
  color: blue
  size: large
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.25
        env:
        - name: A
          value: \"1\"
        - name: B
          value: \"2\"
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
        command: [\"sleep\", \"3600\"]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_and_versions() {
    let Some(h) = harness("discovery").await else {
        return;
    };
    let out = h.ok(&["api-resources"]);
    for name in [
        "deployments",
        "configmaps",
        "customresourcedefinitions",
        "leases",
        "priorityclasses",
        "networkpolicies",
    ] {
        assert!(out.contains(name), "api-resources lacks {name}:\n{out}");
    }
    let namespaced = h.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(
        namespaced.lines().any(|l| l == "namespaces"),
        "{namespaced}"
    );
    assert!(
        !namespaced.lines().any(|l| l == "configmaps"),
        "{namespaced}"
    );
    let versions = h.ok(&["api-versions"]);
    assert!(versions.lines().any(|l| l == "apps/v1"), "{versions}");
    assert!(versions.lines().any(|l| l == "v1"), "{versions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_get_and_delete() {
    let Some(h) = harness("csa").await else {
        return;
    };
    let ns = h.ns.clone();
    let out = h.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &format!("{CONFIGMAP}---\n{DEPLOYMENT}"),
    );
    assert!(out.contains("configmap/settings created"), "{out}");
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let yaml = h.ok(&["get", "-n", &ns, "configmap", "settings", "-o", "yaml"]);
    assert!(yaml.contains("color: blue"), "{yaml}");
    assert!(
        yaml.contains("kubectl.kubernetes.io/last-applied-configuration"),
        "{yaml}"
    );
    let table = h.ok(&["get", "-n", &ns, "configmaps,deployments"]);
    assert!(
        table.contains("settings") && table.contains("web"),
        "{table}"
    );
    assert!(
        table.contains("DATA") && table.contains("UP-TO-DATE"),
        "{table}"
    );

    // Second apply: change a value, drop a key, drop an env var and the sidecar.
    let cm2 = CONFIGMAP.replace("color: blue\n  size: large\n", "color: green\n");
    let dep2 = DEPLOYMENT
        .replace("        - name: B\n          value: \"2\"\n", "")
        .replace("      - name: sidecar\n        image: busybox:1.36\n        command: [\"sleep\", \"3600\"]\n", "");
    let out = h.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &format!("{cm2}---\n{dep2}"),
    );
    assert!(out.contains("configmap/settings configured"), "{out}");
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let cm = h.get_json("configmap/settings");
    assert_eq!(cm["data"], serde_json::json!({"color": "green"}));
    let dep = h.get_json("deployment/web");
    let containers = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(
        containers[0]["env"],
        serde_json::json!([{"name": "A", "value": "1"}])
    );
    assert_eq!(dep["metadata"]["generation"], 2);

    // Unchanged apply is a no-op.
    let out = h.ok_stdin(&["apply", "-n", &ns, "-f", "-"], &cm2);
    assert!(out.contains("configmap/settings unchanged"), "{out}");

    let out = h.ok(&["delete", "-n", &ns, "configmap", "settings"]);
    assert!(out.contains("deleted"), "{out}");
    let out = h.run(&["get", "-n", &ns, "configmap", "settings"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("configmaps \"settings\" not found"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflict_and_force() {
    let Some(h) = harness("ssa").await else {
        return;
    };
    let ns = h.ns.clone();
    let out = h.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=alice",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        CONFIGMAP,
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let bob = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: red\n";
    let out = h.run_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        bob,
    );
    assert!(!out.ok, "conflicting apply succeeded: {}", out.stdout);
    assert!(out.stderr.contains("conflict"), "{}", out.stderr);
    assert!(out.stderr.contains(".data.color"), "{}", out.stderr);
    assert!(out.stderr.contains("alice"), "{}", out.stderr);
    let out = h.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=bob",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        bob,
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let text = h.ok(&[
        "get",
        "-n",
        &ns,
        "configmap/settings",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let cm: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(cm["data"]["color"], "red");
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"alice") && managers.contains(&"bob"),
        "{managers:?}"
    );
    // alice no longer owns .data.color: applying without it keeps bob's value.
    let alice2 = CONFIGMAP.replace("  color: blue\n", "");
    h.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=alice",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        &alice2,
    );
    let cm = h.get_json("configmap/settings");
    assert_eq!(cm["data"]["color"], "red");
    // alice drops `size` from its config: the field is removed.
    let alice3 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n";
    h.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=alice",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        alice3,
    );
    let cm = h.get_json("configmap/settings");
    assert!(cm["data"].get("size").is_none(), "{cm}");
    assert!(
        cm["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("app").is_none()),
        "{cm}"
    );
    // Moving from client-side to server-side apply (manager `kubectl`) takes over without conflicts.
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: upgrade\ndata:\n  a: \"1\"\n";
    h.ok_stdin(&["apply", "-n", &ns, "-f", "-"], v1);
    let v2 = v1.replace("a: \"1\"", "a: \"2\"");
    h.ok_stdin(&["apply", "--server-side", "-n", &ns, "-f", "-"], &v2);
    assert_eq!(h.get_json("configmap/upgrade")["data"]["a"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_types() {
    let Some(h) = harness("patch").await else {
        return;
    };
    let ns = h.ns.clone();
    h.ok_stdin(&["apply", "-n", &ns, "-f", "-"], DEPLOYMENT);
    h.ok(&[
        "patch",
        "-n",
        &ns,
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"merge"}}}"#,
    ]);
    h.ok(&[
        "patch",
        "-n",
        &ns,
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
    ]);
    h.ok(&["patch", "-n", &ns, "deployment", "web", "--type=strategic", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.27","env":[{"name":"C","value":"3"}]}]}}}}"#]);
    let dep = h.get_json("deployment/web");
    assert_eq!(dep["metadata"]["labels"]["patched"], "merge");
    assert_eq!(dep["spec"]["replicas"], 3);
    let containers = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(
        containers.len(),
        2,
        "strategic merge must keep the sidecar: {containers:?}"
    );
    assert_eq!(containers[0]["image"], "nginx:1.27");
    let env: Vec<&str> = containers[0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, vec!["A", "B", "C"]);
    // A failing JSON patch test op is rejected and changes nothing.
    let out = h.run(&["patch", "-n", &ns, "deployment", "web", "--type=json", "-p", r#"[{"op":"test","path":"/spec/replicas","value":7},{"op":"replace","path":"/spec/replicas","value":9}]"#]);
    assert!(!out.ok);
    assert_eq!(h.get_json("deployment/web")["spec"]["replicas"], 3);
}

/// Reads a child's stdout into a shared string from a thread.
fn collect_stdout(child: &mut std::process::Child) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn watch_events(text: &str) -> Vec<(String, String)> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .map(|v| {
            (
                v["type"].as_str().unwrap_or_default().to_string(),
                v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_sees_events() {
    let Some(h) = harness("watch").await else {
        return;
    };
    let ns = h.ns.clone();
    assert!(h.create_cm("first", &[]).ok);
    let mut child = h
        .command(&[
            "get",
            "configmaps",
            "-n",
            &ns,
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl watch");
    let text = collect_stdout(&mut child);
    let seen = |ev: &str, name: &str| {
        watch_events(&text.lock().expect("lock"))
            .iter()
            .any(|(t, n)| t == ev && n == name)
    };
    wait_for("initial ADDED", Duration::from_secs(20), || {
        seen("ADDED", "first")
    });
    assert!(h.create_cm("second", &[]).ok);
    h.ok(&["label", "configmap", "second", "-n", &ns, "touched=yes"]);
    h.ok(&["delete", "configmap", "second", "-n", &ns]);
    wait_for("DELETED event", Duration::from_secs(20), || {
        seen("DELETED", "second")
    });
    assert!(seen("ADDED", "second"));
    assert!(seen("MODIFIED", "second"));
    let _ = child.kill();
    let _ = child.wait();
}

fn owned_configmap(name: &str, owner: &str, uid: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\ndata:\n  x: y\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_cascading() {
    let Some(h) = harness("cascade").await else {
        return;
    };
    let ns = h.ns.clone();
    for (mode, dependent_survives) in [
        ("foreground", false),
        ("background", false),
        ("orphan", true),
    ] {
        let owner = format!("owner-{mode}");
        let dep = format!("dep-{mode}");
        assert!(h.create_cm(&owner, &[]).ok);
        let uid = h.get_json(&format!("configmap/{owner}"))["metadata"]["uid"]
            .as_str()
            .expect("uid")
            .to_string();
        h.ok_stdin(
            &["apply", "-n", &ns, "-f", "-"],
            &owned_configmap(&dep, &owner, &uid),
        );
        h.ok(&[
            "delete",
            "configmap",
            &owner,
            "-n",
            &ns,
            &format!("--cascade={mode}"),
        ]);
        assert!(!h.exists(&format!("configmap/{owner}")));
        if dependent_survives {
            let d = h.get_json(&format!("configmap/{dep}"));
            assert!(
                d["metadata"].get("ownerReferences").is_none(),
                "orphan keeps refs: {d}"
            );
        } else {
            h.ok(&[
                "wait",
                "--for=delete",
                &format!("configmap/{dep}"),
                "-n",
                &ns,
                "--timeout=30s",
            ]);
            assert!(!h.exists(&format!("configmap/{dep}")));
        }
    }
}

const WIDGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.testenv.flux-rs.io
spec:
  group: testenv.flux-rs.io
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type==\"Ready\")].status
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
                minimum: 1
              color:
                type: string
                default: blue
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
";

/// Installs the Widget CRD (shared by tests; tolerant of an existing one on a real cluster).
fn install_widget_crd(h: &Harness) {
    let out = h.run_stdin(&["apply", "--server-side", "-f", "-"], WIDGET_CRD);
    assert!(out.ok, "{}", out.stderr);
    h.ok(&[
        "wait",
        "--for=condition=established",
        "crd/widgets.testenv.flux-rs.io",
        "--timeout=30s",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_condition_on_custom_resource() {
    let Some(h) = harness("wait").await else {
        return;
    };
    let ns = h.ns.clone();
    install_widget_crd(&h);
    h.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        "apiVersion: testenv.flux-rs.io/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 2\n",
    );
    let w = h.get_json("widget/w");
    assert_eq!(w["spec"]["color"], "blue", "schema default applied: {w}");
    assert_eq!(w["metadata"]["generation"], 1);
    let mut waiter = h
        .command(&[
            "wait",
            "--for=condition=Ready",
            "widget/w",
            "-n",
            &ns,
            "--timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl wait");
    std::thread::sleep(Duration::from_millis(500));
    h.ok(&["patch", "widget", "w", "-n", &ns, "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Done","message":"ok"}]}}"#]);
    let status = waiter.wait().expect("wait exits");
    let mut err = String::new();
    if let Some(mut e) = waiter.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "kubectl wait failed: {err}");
    let w = h.get_json("widget/w");
    assert_eq!(
        w["metadata"]["generation"], 1,
        "status changes do not bump generation"
    );
    let table = h.ok(&["get", "widgets", "-n", &ns]);
    assert!(table.contains("READY") && table.contains("True"), "{table}");
    // 422 from schema validation.
    let out = h.run_stdin(&["apply", "-n", &ns, "-f", "-"], "apiVersion: testenv.flux-rs.io/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: 0\n");
    assert!(!out.ok);
    assert!(out.stderr.contains("spec.size"), "{}", out.stderr);
    // kubectl asks for strict field validation: unknown fields are refused.
    let out = h.run_stdin(&["apply", "-n", &ns, "-f", "-"], "apiVersion: testenv.flux-rs.io/v1\nkind: Widget\nmetadata:\n  name: typo\nspec:\n  size: 1\n  colour: red\n");
    assert!(!out.ok);
    assert!(
        out.stderr.contains("unknown field \"spec.colour\""),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_deployment_available_when_workloads_ready() {
    let Some(h) = harness("ready").await else {
        return;
    };
    let Some(env) = &h.env else {
        println!("NOTICE: readiness switch is a test-server feature; skipped on a real cluster");
        return;
    };
    env.set_workloads_ready(true);
    let ns = h.ns.clone();
    h.ok_stdin(&["apply", "-n", &ns, "-f", "-"], DEPLOYMENT);
    h.ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "-n",
        &ns,
        "--timeout=20s",
    ]);
    let out = h.ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        &ns,
        "--timeout=20s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    // The scale subresource writes through to spec.replicas; readiness follows.
    h.ok(&["scale", "deployment/web", "-n", &ns, "--replicas=3"]);
    let dep = h.get_json("deployment/web");
    assert_eq!(dep["spec"]["replicas"], 3);
    assert_eq!(dep["status"]["readyReplicas"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_validation_errors() {
    let Some(h) = harness("dryrun").await else {
        return;
    };
    let ns = h.ns.clone();
    let out = h.create_cm("ghost", &["--dry-run=server", "-o", "yaml"]);
    assert!(
        out.ok && out.stdout.contains("name: ghost"),
        "{}",
        out.stderr
    );
    assert!(!h.exists("configmap/ghost"));
    assert!(h.create_cm("real", &[]).ok);
    h.ok(&["delete", "configmap", "real", "-n", &ns, "--dry-run=server"]);
    assert!(h.exists("configmap/real"));
    let out = h.create_cm("Bad_Name", &[]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("is invalid") && out.stderr.contains("metadata.name"),
        "{}",
        out.stderr
    );
    let out = h.create_cm("real", &[]);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_uses_openapi() {
    let Some(h) = harness("explain").await else {
        return;
    };
    let out = h.ok(&["explain", "deployment.spec.replicas"]);
    assert!(out.contains("replicas"), "{out}");
    install_widget_crd(&h);
    let out = h.ok(&["explain", "widgets.spec"]);
    assert!(out.contains("size"), "{out}");
}

fn flux_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/flux-api");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "NOTICE: {} not found; skipping the Flux CRD tests",
            dir.display()
        );
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_crds_and_objects() {
    let Some(flux) = flux_dir() else { return };
    let Some(h) = harness("flux").await else {
        return;
    };
    let ns = h.ns.clone();
    let crds = flux.join("crds");
    let crd_dir = crds.to_str().expect("utf-8 path");
    if h.real_cluster() {
        h.ok(&["apply", "--server-side", "-f", crd_dir]);
    } else {
        let out = h.ok(&["create", "-f", crd_dir]);
        assert!(out.contains("customresourcedefinition.apiextensions.k8s.io/gitrepositories.source.toolkit.fluxcd.io created"), "{out}");
    }
    h.ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/gitrepositories.source.toolkit.fluxcd.io",
        "crd/kustomizations.kustomize.toolkit.fluxcd.io",
    ]);
    let resources = h.ok(&[
        "api-resources",
        "--api-group=source.toolkit.fluxcd.io",
        "-o",
        "name",
    ]);
    assert!(
        resources.contains("gitrepositories.source.toolkit.fluxcd.io"),
        "{resources}"
    );
    let mut created = 0;
    for kind in ["gitrepository", "kustomization"] {
        let dir = flux.join("examples").join(kind);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("examples")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("example");
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let mut value: Value = serde::Deserialize::deserialize(doc).expect("yaml");
                if value.is_null() {
                    continue;
                }
                // Examples name their own namespace; put them in ours.
                value["metadata"]["namespace"] = ns.clone().into();
                let out = h.run_stdin(
                    &["create", "-f", "-", "-o", "name"],
                    &serde_json::to_string(&value).expect("json"),
                );
                assert!(out.ok, "{}: {}", file.display(), out.stderr);
                created += 1;
            }
        }
    }
    assert!(created >= 2);
    let table = h.ok(&["get", "gitrepositories", "-n", &ns]);
    assert!(table.contains("URL"), "{table}");
    assert!(table.contains("podinfo"), "{table}");
    let ks = h.ok(&[
        "get",
        "kustomizations.kustomize.toolkit.fluxcd.io",
        "-n",
        &ns,
        "-o",
        "yaml",
    ]);
    assert!(ks.contains("kind: Kustomization"), "{ks}");
    // Status through the status subresource; spec untouched, generation unchanged.
    let name = h.ok(&[
        "get",
        "gitrepositories",
        "-n",
        &ns,
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    h.ok(&["patch", "gitrepository", &name, "-n", &ns, "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"Succeeded","message":"stored artifact","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}"#]);
    h.ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("gitrepository/{name}"),
        "-n",
        &ns,
        "--timeout=20s",
    ]);
    let out = h.run_stdin(&["create", "-n", &ns, "-f", "-"], "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: broken\nspec:\n  interval: 1m\n");
    assert!(!out.ok);
    assert!(
        out.stderr.contains("spec.url") && out.stderr.contains("Required value"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_generators_send_protobuf() {
    let Some(h) = harness("gen").await else {
        return;
    };
    let ns = h.ns.clone();
    h.ok(&[
        "create",
        "configmap",
        "gen-cm",
        "-n",
        &ns,
        "--from-literal=k=v",
    ]);
    h.ok(&[
        "create",
        "secret",
        "generic",
        "gen-secret",
        "-n",
        &ns,
        "--from-literal=p=q",
    ]);
    h.ok(&["create", "serviceaccount", "gen-sa", "-n", &ns]);
    assert_eq!(h.get_json("configmap/gen-cm")["data"]["k"], "v");
    assert_eq!(h.get_json("secret/gen-secret")["data"]["p"], "cQ==");
    assert!(h.exists("serviceaccount/gen-sa"));
    let name = format!("{ns}-extra");
    h.ok(&["create", "namespace", &name]);
    let out = h.ok(&["get", "namespace", &name, "-o", "jsonpath={.status.phase}"]);
    assert_eq!(out, "Active");
    h.ok(&["delete", "namespace", &name]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonated_requests_follow_rbac() {
    let Some(h) = harness("rbac").await else {
        return;
    };
    let ns = h.ns.clone();
    h.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &format!(
            "apiVersion: v1
kind: ServiceAccount
metadata:
  name: deployer
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: configmaps
rules:
- apiGroups: [\"\"]
  resources: [\"configmaps\"]
  verbs: [\"get\", \"list\", \"create\", \"patch\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: deployer-configmaps
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: configmaps
subjects:
- kind: ServiceAccount
  name: deployer
  namespace: {ns}
"
        ),
    );
    let user = format!("--as=system:serviceaccount:{ns}:deployer");
    let can_i = |verb: &str, what: &str, namespace: &str| {
        let out = h.run(&[&user, "auth", "can-i", verb, what, "-n", namespace]);
        (out.ok, out.stdout.trim().to_string())
    };
    assert_eq!(can_i("get", "configmaps", &ns), (true, "yes".to_string()));
    assert_eq!(
        can_i("create", "configmaps", &ns),
        (true, "yes".to_string())
    );
    assert_eq!(
        can_i("delete", "configmaps", &ns),
        (false, "no".to_string())
    );
    assert_eq!(can_i("get", "secrets", &ns), (false, "no".to_string()));
    assert_eq!(
        can_i("get", "configmaps", "default"),
        (false, "no".to_string())
    );
    // The harness's own identity is not restricted.
    assert_eq!(
        h.ok(&["auth", "can-i", "delete", "secrets", "-n", &ns])
            .trim(),
        "yes"
    );

    // Allowed: create and read ConfigMaps as the service account.
    h.ok_stdin(&[&user, "apply", "-n", &ns, "-f", "-"], CONFIGMAP);
    let listed = h.ok(&[&user, "get", "configmaps", "-n", &ns, "-o", "name"]);
    assert!(listed.contains("configmap/settings"), "{listed}");
    // Denied: the API's 403 wording, and nothing changes.
    let out = h.run(&[&user, "get", "secrets", "-n", &ns]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains(&format!(
            "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:{ns}:deployer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{ns}\""
        )),
        "{}",
        out.stderr
    );
    let out = h.run(&[&user, "delete", "configmap", "settings", "-n", &ns]);
    assert!(
        out.stderr.contains(&format!(
            "configmaps \"settings\" is forbidden: User \"system:serviceaccount:{ns}:deployer\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"{ns}\""
        )),
        "{}",
        out.stderr
    );
    assert!(h.exists("configmap/settings"));
}
