//! Harness shared by the end-to-end tests: local servers on 127.0.0.1 (Debian's
//! `docker-registry`, lighttpd serving a directory), Git helpers and polling.

// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()
        .map(|a| a.port())
}

fn wait_listening(process: Proc, port: u16) -> Option<(Proc, u16)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((process, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Debian's `docker-registry` on a random loopback port, storing under `dir`; `None` when the
/// binary is missing.
pub fn start_registry(dir: &Path) -> Option<(Proc, u16)> {
    let binary = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let port = free_port()?;
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )
    .ok()?;
    let child = Command::new(binary)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_listening(Proc(child), port)
}

/// lighttpd serving `docroot` on a random loopback port; `/private` needs basic auth with
/// `user`. `None` when lighttpd is missing.
pub fn start_lighttpd(dir: &Path, docroot: &Path, user: (&str, &str)) -> Option<(Proc, u16)> {
    let binary = ["/usr/sbin/lighttpd", "/usr/bin/lighttpd"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let port = free_port()?;
    let users = dir.join("lighttpd-users");
    std::fs::write(&users, format!("{}:{}\n", user.0, user.1)).ok()?;
    let conf = format!(
        r#"server.document-root = "{docroot}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/lighttpd-error.log"
server.pid-file = "{dir}/lighttpd.pid"
# The tests rewrite index.yaml in place: serve what is on disk, not a cached stat of it.
server.stat-cache-engine = "disable"
server.modules = ("mod_access", "mod_auth", "mod_authn_file")
mimetype.assign = (".yaml" => "application/x-yaml", ".tgz" => "application/gzip", "" => "application/octet-stream")
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ("/private" => ("method" => "basic", "realm" => "flux", "require" => "valid-user"))
"#,
        docroot = docroot.display(),
        dir = dir.display(),
        users = users.display(),
    );
    let conf_path = dir.join("lighttpd.conf");
    std::fs::write(&conf_path, conf).ok()?;
    let child = Command::new(binary)
        .arg("-D")
        .arg("-f")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_listening(Proc(child), port)
}

/// Runs `git` in `dir` with a fixed identity; panics when it fails.
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

/// The commit id of `HEAD` in `dir`.
pub fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .expect("git rev-parse");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits everything in `dir`; returns the new commit id.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    head(dir)
}

/// Polls `check` every 100 ms until it returns `Some`, failing after `seconds`.
pub async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
