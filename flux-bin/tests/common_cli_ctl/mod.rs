//! Harness shared by the end-to-end test files: a Git repository served by `git daemon`,
//! polling with a generous timeout, and the controller binaries run as child processes
//! with their JSON logs written to files.

// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs git in `dir` with a fixed identity; panics when it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "flux")
        .env("GIT_AUTHOR_EMAIL", "flux@example.com")
        .env("GIT_COMMITTER_NAME", "flux")
        .env("GIT_COMMITTER_EMAIL", "flux@example.com")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// The commit HEAD points to.
pub fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .expect("git rev-parse");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits everything in the work tree; returns the new commit.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    head(dir)
}

/// A Git repository served by `git daemon` (killed on drop).
pub struct GitServer {
    _base: tempfile::TempDir,
    /// The work tree (branch `main`).
    pub work: PathBuf,
    /// `git://127.0.0.1:PORT/repo`, or `file://` when git daemon could not start.
    pub url: String,
    daemon: Option<Child>,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.daemon {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a `git` binary is on PATH.
pub fn git_available() -> bool {
    Command::new("git").arg("--version").output().is_ok()
}

/// A free port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// An empty repository on branch `main`, served by `git daemon` on 127.0.0.1.
pub fn start_git() -> GitServer {
    let base = tempfile::tempdir().expect("tempdir");
    let work = base.path().join("repo");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    let port = free_port();
    let daemon = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.path().display()),
        ])
        .arg(base.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut daemon = daemon.ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut up = false;
    while daemon.is_some() && Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = if up {
        format!("git://127.0.0.1:{port}/repo")
    } else {
        eprintln!("NOTICE: git daemon unavailable, using file:// instead");
        if let Some(child) = &mut daemon {
            let _ = child.kill();
        }
        daemon = None;
        format!("file://{}", work.display())
    };
    GitServer {
        _base: base,
        work,
        url,
        daemon,
    }
}

/// Writes `text` to `dir/path`, creating parent directories.
pub fn write(dir: &Path, path: &str, text: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}

/// Polls `check` every 100 ms until it returns Some, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A controller binary running as a child process (killed on drop), its stderr (the JSON
/// log) going to `log`.
pub struct ControllerProcess {
    child: Child,
    /// The controller's log file.
    pub log: PathBuf,
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` against `kubeconfig` with probes and metrics on random loopback ports
/// and its log written to `log_dir/<name>.log`.
pub fn spawn_controller(
    binary: &str,
    name: &str,
    kubeconfig: &Path,
    log_dir: &Path,
    extra: &[String],
) -> ControllerProcess {
    let log = log_dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(binary)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"])
        .args(extra)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("controller starts");
    ControllerProcess { child, log }
}
