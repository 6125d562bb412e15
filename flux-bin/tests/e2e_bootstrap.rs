//! End to end: `flux-rs bootstrap git` pushes `flux-system/` into an empty repository served
//! by `git daemon` (git://, receive-pack enabled) or git http-backend behind lighttpd (basic
//! auth), installs into flux-testenv, then the real source-controller and kustomize-controller
//! (in-process) sync the pushed commit and the bootstrap's wait sees them Ready.

#[path = "common_bootstrap/mod.rs"]
mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flux_api::source::GitRepository;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use common::{ready, wait_for, Controllers};

const NS: &str = "flux-system";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/lib/git-core", "/usr/libexec/git-core"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed on drop, listening on `port`.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, port: u16) -> Server {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "server exited early"
        );
        assert!(Instant::now() < deadline, "server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child)
}

/// An empty bare repository `<root>/fleet.git` (branch `main` unborn) accepting pushes.
fn empty_remote(root: &Path) -> PathBuf {
    let bare = root.join("fleet.git");
    std::fs::create_dir_all(&bare).expect("mkdir");
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    git(&bare, &["config", "http.receivepack", "true"]);
    bare
}

async fn flux(kubeconfig: &Path, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flux-rs"))
        .args(args)
        .args(["--timeout", "90s", "--kubeconfig"])
        .arg(kubeconfig)
        .env("FLUX_RS_POLL_INTERVAL", "100ms")
        .env_remove("KUBECONFIG")
        .env_remove("FLUX_SYSTEM_NAMESPACE")
        .output()
        .await
        .expect("flux-rs runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Cluster {
    env: flux_testenv::TestEnv,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

async fn testenv() -> Cluster {
    let env = flux_testenv::TestEnv::start().await.expect("testenv");
    env.set_workloads_ready(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    Cluster {
        env,
        kubeconfig,
        _dir: dir,
    }
}

const COMPONENTS: &str = "source-controller,kustomize-controller";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_into_git_daemon_then_controllers_sync_the_pushed_commit() {
    if find_binary("git").is_none() {
        eprintln!("NOTICE: skipping e2e_bootstrap: git is not installed");
        return;
    }
    let served = tempfile::tempdir().expect("tempdir");
    let bare = empty_remote(served.path());
    let port = free_port();
    let _daemon = spawn(
        Command::new("git").args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", served.path().display()),
            &served.path().display().to_string(),
        ]),
        port,
    );
    let url = format!("git://127.0.0.1:{port}/fleet.git");
    let env = testenv().await;
    let args = [
        "bootstrap",
        "git",
        "--url",
        url.as_str(),
        "--path",
        "clusters/dev",
        "--components",
        COMPONENTS,
        "--commit-message-appendix",
        "[ci skip]",
        "--interval",
        "1h",
    ];

    // First run without waiting: the commit is pushed and the components installed.
    let mut first: Vec<&str> = args.to_vec();
    first.extend(["--wait", "false"]);
    let (code, err) = flux(&env.kubeconfig, &first).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("✔ committed component manifests to \"main\""),
        "{err}"
    );
    let pushed = git(&bare, &["rev-parse", "main"]);
    assert!(err.contains(&pushed), "{err}");
    // The real git reads what we pushed.
    let clone = served.path().join("clone");
    git(
        served.path(),
        &["clone", "-q", &url, clone.to_str().expect("utf8")],
    );
    git(&clone, &["fsck", "--strict"]);
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), pushed);
    assert_eq!(
        git(&clone, &["log", "-1", "--format=%an <%ae>%n%B"]),
        "Flux <flux@users.noreply.github.com>\nAdd Flux sync manifests\n\n[ci skip]"
    );
    let sync = std::fs::read_to_string(clone.join("clusters/dev/flux-system/gotk-sync.yaml"))
        .expect("gotk-sync.yaml");
    assert!(sync.contains(&format!("url: {url}")), "{sync}");
    assert!(!sync.contains("secretRef"), "git:// has no credentials");
    let kustomization =
        std::fs::read_to_string(clone.join("clusters/dev/flux-system/kustomization.yaml"))
            .expect("kustomization.yaml");
    assert!(kustomization.contains("- gotk-components.yaml\n- gotk-sync.yaml\n"));

    // The controllers run, the second run makes no commit and waits for them.
    let client = env.env.client().expect("client");
    let _controllers = Controllers::start(client.clone()).await;
    let (code, err) = flux(&env.kubeconfig, &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("✔ component manifests are up to date"),
        "{err}"
    );
    assert!(
        err.ends_with("✔ Kustomization reconciled successfully\n"),
        "{err}"
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), pushed, "no new commit");

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    let revision = wait_for("GitRepository ready", Duration::from_secs(60), || {
        let repos = repos.clone();
        async move {
            let object = repos.get("flux-system").await.ok()?;
            let status = object.status.as_ref()?;
            let (ready_status, _, _) = ready(status.conditions.as_ref())?;
            (ready_status == "True").then(|| status.artifact.as_ref().map(|a| a.revision.clone()))
        }
    })
    .await;
    assert_eq!(revision, Some(format!("main@sha1:{pushed}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_over_smart_http_stores_credentials() {
    let (Some(lighttpd), Some(backend)) =
        (find_binary("lighttpd"), find_binary("git-http-backend"))
    else {
        eprintln!("NOTICE: skipping http bootstrap test: lighttpd or git-http-backend missing (CI installs them via .ci/setup.d/source.sh)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let git_root = dir.path().join("gitroot");
    let bare = empty_remote(&git_root);
    let users = dir.path().join("users");
    std::fs::write(&users, "flux:s3cret\n").expect("users");
    let port = free_port();
    let conf = dir.path().join("lighttpd.conf");
    std::fs::write(
        &conf,
        format!(
            r#"server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ("/git" => ("method" => "basic", "realm" => "flux", "require" => "valid-user"))
alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
}}
"#,
            root = git_root.display(),
            users = users.display(),
            backend = backend.display(),
        ),
    )
    .expect("conf");
    let _server = spawn(Command::new(lighttpd).arg("-D").arg("-f").arg(&conf), port);
    let url = format!("http://127.0.0.1:{port}/git/fleet.git");
    let env = testenv().await;
    let base = [
        "bootstrap",
        "git",
        "--url",
        url.as_str(),
        "--path",
        "clusters/prod",
        "--components",
        COMPONENTS,
        "--wait",
        "false",
        "--username",
        "flux",
    ];

    // http:// needs the explicit opt-in, wrong credentials are refused: nothing pushed.
    let mut insecure = base.to_vec();
    insecure.extend(["--password", "s3cret"]);
    let (code, err) = flux(&env.kubeconfig, &insecure).await;
    assert_ne!(code, 0);
    assert!(err.contains("--allow-insecure-http"), "{err}");
    let mut wrong = base.to_vec();
    wrong.extend(["--password", "wrong", "--allow-insecure-http"]);
    let (code, err) = flux(&env.kubeconfig, &wrong).await;
    assert_ne!(code, 0);
    assert!(err.contains("authentication failed"), "{err}");
    assert_eq!(git(&bare, &["for-each-ref"]), "", "nothing pushed");

    insecure.push("--allow-insecure-http");
    let (code, err) = flux(&env.kubeconfig, &insecure).await;
    assert_eq!(code, 0, "{err}");
    let pushed = git(&bare, &["rev-parse", "main"]);
    let sync = git(
        &bare,
        &["show", "main:clusters/prod/flux-system/gotk-sync.yaml"],
    );
    assert!(sync.contains("secretRef:\n    name: flux-system"), "{sync}");
    let secrets: Api<Secret> = Api::namespaced(env.env.client().expect("client"), NS);
    let secret = secrets.get("flux-system").await.expect("secret created");
    let data = secret.data.expect("data");
    assert_eq!(data["username"].0, b"flux");
    assert_eq!(data["password"].0, b"s3cret");

    // Same flags again: up to date, no commit.
    let (code, err) = flux(&env.kubeconfig, &insecure).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("component manifests are up to date"), "{err}");
    assert_eq!(git(&bare, &["rev-parse", "main"]), pushed);
}
