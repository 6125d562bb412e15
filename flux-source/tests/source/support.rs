//! Helpers: finding binaries, free ports, child processes that die with the test, fixture repos.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Finds `name` on PATH or in the usual sbin/libexec places.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/sbin",
            "/sbin",
            "/usr/lib/git-core",
            "/usr/libexec/git-core",
        ]
        .map(PathBuf::from),
    );
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Returns the binary or prints why the test is skipped.
pub fn require(name: &str, test: &str) -> Option<PathBuf> {
    let found = find_binary(name);
    if found.is_none() {
        eprintln!("NOTICE: skipping {test}: `{name}` is not installed (CI installs it via .ci/setup.d/source.sh)");
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 30s");
}

/// A child process killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(cmd: &mut Command, port: u16, what: &str) -> Server {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    wait_for_port(port, &mut child, what);
    Server { child, port }
}

/// Runs git with fixed identity and dates so commit ids are reproducible.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Flux Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Flux Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository `<root>/repo.git` with:
/// - `main`: commit 1 (app.yaml, logo.png, .sourceignore ignoring `*.tmp`, notes.tmp),
///   commit 2 (adds deploy/prod.yaml), tagged `v1.0.0` (lightweight, commit 1),
///   `v1.1.0` (annotated, commit 2), `v2.0.0-rc.1` (commit 2);
/// - `feature/x`: one more commit on top of main.
///
/// Returns (bare repo path, commit1, commit2, feature commit).
pub fn fixture_repo(root: &Path) -> (PathBuf, String, String, String) {
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
    )
    .unwrap();
    std::fs::write(work.join("logo.png"), [0x89, b'P', b'N', b'G']).unwrap();
    std::fs::write(work.join(".sourceignore"), "*.tmp\n").unwrap();
    std::fs::write(work.join("notes.tmp"), "scratch\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    let c1 = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "v1.0.0"]);
    std::fs::create_dir_all(work.join("deploy")).unwrap();
    std::fs::write(work.join("deploy/prod.yaml"), "replicas: 3\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "second"]);
    let c2 = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "-a", "v1.1.0", "-m", "release 1.1.0"]);
    git(&work, &["tag", "v2.0.0-rc.1"]);
    git(&work, &["checkout", "-q", "-b", "feature/x"]);
    std::fs::write(work.join("feature.yaml"), "feature: true\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "feature"]);
    let c3 = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "main"]);
    let bare = root.join("repo.git");
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["config", "http.receivepack", "false"]);
    (bare, c1, c2, c3)
}

/// Lists the entry names of a tar.gz file.
pub fn tar_names(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// lighttpd serving `docroot` statically and, when `git_root` is given, git-http-backend
/// under `/git`; `/private` and `/git` need basic auth user:pass from `users`.
pub fn lighttpd(
    dir: &Path,
    docroot: &Path,
    git_root: Option<&Path>,
    user: (&str, &str),
) -> Option<Server> {
    lighttpd_with(dir, docroot, git_root, user, "")
}

/// [`lighttpd`] with extra configuration lines (e.g. TLS).
pub fn lighttpd_with(
    dir: &Path,
    docroot: &Path,
    git_root: Option<&Path>,
    user: (&str, &str),
    extra: &str,
) -> Option<Server> {
    let bin = require("lighttpd", "lighttpd-backed test")?;
    let port = free_port();
    let users = dir.join("lighttpd-users");
    std::fs::write(&users, format!("{}:{}\n", user.0, user.1)).unwrap();
    let mut conf = format!(
        r#"server.document-root = "{docroot}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/lighttpd-error.log"
server.pid-file = "{dir}/lighttpd.pid"
server.modules = ("mod_access", "mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
mimetype.assign = (".yaml" => "application/x-yaml", ".tgz" => "application/gzip", "" => "application/octet-stream")
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ("/private" => ("method" => "basic", "realm" => "flux", "require" => "valid-user"),
                "/git" => ("method" => "basic", "realm" => "flux", "require" => "valid-user"))
"#,
        docroot = docroot.display(),
        dir = dir.display(),
        users = users.display(),
    );
    if let Some(git_root) = git_root {
        let backend = find_binary("git-http-backend").expect("git-http-backend");
        conf.push_str(&format!(
            r#"alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
}}
"#,
            backend = backend.display(),
            root = git_root.display(),
        ));
    }
    conf.push_str(extra);
    let conf_path = dir.join("lighttpd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    Some(spawn(
        Command::new(bin).arg("-D").arg("-f").arg(&conf_path),
        port,
        "lighttpd",
    ))
}

/// `git daemon` serving every repository under `root` on a random 127.0.0.1 port, with
/// `receive-pack` enabled (pushes allowed).
pub fn git_daemon(root: &Path) -> Option<Server> {
    require("git", "git daemon test")?;
    let port = free_port();
    let base = root.to_str().unwrap();
    Some(spawn(
        Command::new("git").args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={base}"),
            base,
        ]),
        port,
        "git daemon",
    ))
}

pub fn ssh_keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An sshd on a random 127.0.0.1 port accepting `client_key` for the current user;
/// `known_hosts` has its host key, `other_key` is a key it does not accept.
pub struct Sshd {
    pub server: Server,
    pub user: String,
    pub known_hosts: String,
    pub client_key: PathBuf,
    pub other_key: PathBuf,
}

/// Starts [`Sshd`] in `dir`, or prints why the test is skipped.
pub fn sshd(dir: &Path) -> Option<Sshd> {
    let sshd = require("sshd", "ssh test")?;
    require("ssh-keygen", "ssh test")?;
    require("ssh", "ssh test")?;
    let host_key = dir.join("host_key");
    let client_key = dir.join("client_key");
    let other_key = dir.join("other_key");
    ssh_keygen(&host_key);
    ssh_keygen(&client_key);
    ssh_keygen(&other_key);
    let authorized = dir.join("authorized_keys");
    std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n\
             UsePAM no\nPidFile {pid}\n",
            hk = host_key.display(),
            ak = authorized.display(),
            pid = dir.join("sshd.pid").display(),
        ),
    )
    .unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
                .trim()
                .to_string()
        });
    let server = spawn(
        Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config),
        port,
        "sshd",
    );
    let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
    let known_hosts = format!("[127.0.0.1]:{} {}", server.port, host_pub.trim());
    Some(Sshd {
        server,
        user,
        known_hosts,
        client_key,
        other_key,
    })
}
