//! GitRepository against git daemon (git://), file://, smart HTTP with basic auth (lighttpd +
//! git-http-backend) and sshd.

use flux_source::artifact::FetchOutcome;
use flux_source::git::{self, GitAuth, GitRef, GitSpec};
use flux_source::storage::Storage;

use crate::support::*;

fn spec(url: &str, reference: GitRef) -> GitSpec {
    GitSpec {
        url: url.to_string(),
        reference,
        shallow: true,
        ..GitSpec::default()
    }
}

fn branch(b: &str) -> GitRef {
    GitRef {
        branch: Some(b.into()),
        ..GitRef::default()
    }
}

/// The fixture's commits have fixed dates, so its commit ids and artifact digest are the same
/// on every machine: this golden guards the whole pipeline (clone, ignore rules, tar, gzip).
const GOLDEN_MAIN_DIGEST: &str =
    "sha256:b68c393fb76530a792abec4c4695afc8693e653cd390d4ab70459118e51aa801";

#[test]
fn git_daemon_refs_revisions_and_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(daemon) = git_daemon(tmp.path()) else {
        return;
    };
    let (_bare, c1, c2, c3) = fixture_repo(tmp.path());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let storage = Storage::new(tmp.path().join("storage"), "localhost:9090").unwrap();

    let main = git::fetch(
        &spec(&url, branch("main")),
        &storage,
        "ns",
        "repo",
        None,
        true,
    )
    .unwrap();
    let FetchOutcome::New(main) = main else {
        panic!("expected a new artifact")
    };
    assert_eq!(main.revision, format!("main@sha1:{c2}"));
    assert_eq!(main.path, format!("gitrepository/ns/repo/{c2}.tar.gz"));
    storage.verify(&main).unwrap();
    let names = tar_names(&storage.local_path(&main).unwrap());
    assert_eq!(
        names,
        [
            ".",
            ".sourceignore",
            "app.yaml",
            "deploy",
            "deploy/prod.yaml",
            "logo.png"
        ],
        ".git and *.tmp excluded; logo.png kept because a .sourceignore exists"
    );
    assert_eq!(main.digest.as_deref(), Some(GOLDEN_MAIN_DIGEST));

    // Same upstream revision and content config: no new artifact.
    let again = git::fetch(
        &spec(&url, branch("main")),
        &storage,
        "ns",
        "repo",
        Some(&main),
        true,
    )
    .unwrap();
    assert_eq!(again, FetchOutcome::Unchanged(main.clone()));
    // Changed content config forces a rebuild.
    let rebuilt = git::fetch(
        &spec(&url, branch("main")),
        &storage,
        "ns",
        "repo",
        Some(&main),
        false,
    )
    .unwrap();
    assert!(matches!(rebuilt, FetchOutcome::New(_)));

    let cases = [
        (
            GitRef {
                tag: Some("v1.0.0".into()),
                ..GitRef::default()
            },
            format!("v1.0.0@sha1:{c1}"),
        ),
        (
            GitRef {
                tag: Some("v1.1.0".into()),
                ..GitRef::default()
            },
            format!("v1.1.0@sha1:{c2}"),
        ),
        (
            GitRef {
                semver: Some("~1.0".into()),
                ..GitRef::default()
            },
            format!("v1.0.0@sha1:{c1}"),
        ),
        (
            GitRef {
                semver: Some(">=1.0.0".into()),
                ..GitRef::default()
            },
            format!("v1.1.0@sha1:{c2}"),
        ),
        (branch("feature/x"), format!("feature/x@sha1:{c3}")),
        (
            GitRef {
                name: Some("refs/heads/feature/x".into()),
                ..GitRef::default()
            },
            format!("refs/heads/feature/x@sha1:{c3}"),
        ),
        (
            GitRef {
                commit: Some(c1.clone()),
                ..GitRef::default()
            },
            format!("sha1:{c1}"),
        ),
        (
            GitRef {
                branch: Some("main".into()),
                commit: Some(c1.clone()),
                ..GitRef::default()
            },
            format!("main@sha1:{c1}"),
        ),
    ];
    for (reference, expected) in cases {
        let outcome = git::fetch(
            &spec(&url, reference.clone()),
            &storage,
            "ns",
            "cases",
            None,
            false,
        )
        .unwrap_or_else(|e| panic!("{reference:?}: {e}"));
        assert_eq!(outcome.artifact().revision, expected, "{reference:?}");
        storage.verify(outcome.artifact()).unwrap();
    }
    let c1_artifact = git::fetch(
        &spec(
            &url,
            GitRef {
                commit: Some(c1.clone()),
                ..GitRef::default()
            },
        ),
        &storage,
        "ns",
        "c1",
        None,
        false,
    )
    .unwrap();
    let names = tar_names(&storage.local_path(c1_artifact.artifact()).unwrap());
    assert!(
        !names.contains(&"deploy".to_string()),
        "commit 1 has no deploy/: {names:?}"
    );
}

#[test]
fn missing_ref_is_a_clear_error_and_keeps_previous_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(daemon) = git_daemon(tmp.path()) else {
        return;
    };
    let (_bare, _, c2, _) = fixture_repo(tmp.path());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let first = git::fetch(&spec(&url, branch("main")), &storage, "ns", "r", None, true).unwrap();
    let err = git::fetch(
        &spec(&url, branch("nope")),
        &storage,
        "ns",
        "r",
        Some(first.artifact()),
        true,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "unable to resolve branch 'nope'");
    let err = git::fetch(
        &spec(
            &url,
            GitRef {
                semver: Some(">=9".into()),
                ..GitRef::default()
            },
        ),
        &storage,
        "ns",
        "r",
        None,
        true,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no match found for semver"),
        "{err}"
    );
    storage.verify(first.artifact()).unwrap();
    let dir = storage
        .local_path(first.artifact())
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(files, [format!("{c2}.tar.gz")]);
}

#[test]
fn server_down_is_an_error_without_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let url = format!("git://127.0.0.1:{port}/repo.git");
    let err = git::fetch(&spec(&url, branch("main")), &storage, "ns", "r", None, true).unwrap_err();
    assert!(matches!(err, flux_source::Error::Git { .. }), "{err}");
    assert!(!tmp.path().join("storage/gitrepository").exists());
}

#[test]
fn unresponsive_server_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let _held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let mut s = spec(&format!("git://127.0.0.1:{port}/repo.git"), branch("main"));
    s.timeout = Some(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let err = git::fetch(&s, &storage, "ns", "r", None, true).unwrap_err();
    assert!(err.to_string().contains("ls-remote"), "{err}");
    assert!(format!("{err:?}").contains("timed out"), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(!tmp.path().join("storage/gitrepository").exists());
}

#[test]
fn file_url_and_includes() {
    let tmp = tempfile::tempdir().unwrap();
    if require("git", "file:// test").is_none() {
        return;
    }
    let (bare, _, c2, _) = fixture_repo(tmp.path());
    let url = format!("file://{}", bare.display());
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let included = git::fetch(
        &spec(&url, branch("main")),
        &storage,
        "ns",
        "lib",
        None,
        true,
    )
    .unwrap();
    let include = git::Include {
        artifact: included.artifact().clone(),
        tarball: storage.local_path(included.artifact()).unwrap(),
        from_path: "deploy".into(),
        to_path: "vendor/lib".into(),
    };
    let mut s = spec(&url, branch("feature/x"));
    s.include = vec![include];
    let outcome = git::fetch(&s, &storage, "ns", "app", None, true).unwrap();
    let names = tar_names(&storage.local_path(outcome.artifact()).unwrap());
    assert!(
        names.contains(&"vendor/lib/prod.yaml".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"feature.yaml".to_string()));
    assert!(outcome.artifact().revision.starts_with("feature/x@sha1:"));
    assert_ne!(outcome.artifact().revision, format!("feature/x@sha1:{c2}"));
}

#[test]
fn recurse_submodules_checks_out_recorded_commits() {
    let tmp = tempfile::tempdir().unwrap();
    if require("git", "submodule test").is_none() {
        return;
    }
    let (bare, _, _, _) = fixture_repo(tmp.path());
    let lib_work = tmp.path().join("lib");
    std::fs::create_dir_all(&lib_work).unwrap();
    git(&lib_work, &["init", "-q", "-b", "main"]);
    std::fs::write(lib_work.join("lib.yaml"), "lib: true\n").unwrap();
    git(&lib_work, &["add", "-A"]);
    git(&lib_work, &["commit", "-q", "-m", "lib"]);
    let lib_bare = tmp.path().join("lib.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            lib_work.to_str().unwrap(),
            lib_bare.to_str().unwrap(),
        ],
    );
    let app = tmp.path().join("app");
    git(
        tmp.path(),
        &["clone", "-q", bare.to_str().unwrap(), app.to_str().unwrap()],
    );
    let lib_url = format!("file://{}", lib_bare.display());
    git(
        &app,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &lib_url,
            "vendor/lib",
        ],
    );
    git(&app, &["commit", "-q", "-m", "add submodule"]);
    git(&app, &["push", "-q", "origin", "main"]);
    let url = format!("file://{}", bare.display());
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();

    let mut with = spec(&url, branch("main"));
    with.recurse_submodules = true;
    let outcome = git::fetch(&with, &storage, "ns", "sub", None, true).unwrap();
    let names = tar_names(&storage.local_path(outcome.artifact()).unwrap());
    assert!(
        names.contains(&"vendor/lib/lib.yaml".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains(".git/")), "{names:?}");

    let without = git::fetch(
        &spec(&url, branch("main")),
        &storage,
        "ns",
        "nosub",
        None,
        true,
    )
    .unwrap();
    let names = tar_names(&storage.local_path(without.artifact()).unwrap());
    assert!(
        !names.contains(&"vendor/lib/lib.yaml".to_string()),
        "{names:?}"
    );
}

#[test]
fn smart_http_with_basic_auth() {
    let tmp = tempfile::tempdir().unwrap();
    if require("git-http-backend", "smart HTTP test").is_none() {
        return;
    }
    let git_root = tmp.path().join("gitroot");
    std::fs::create_dir_all(&git_root).unwrap();
    let (_bare, _, c2, _) = fixture_repo(&git_root);
    let docroot = tmp.path().join("www");
    std::fs::create_dir_all(&docroot).unwrap();
    let Some(server) = lighttpd(tmp.path(), &docroot, Some(&git_root), ("flux", "s3cret")) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/git/repo.git", server.port);
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();

    let mut good = spec(&url, branch("main"));
    good.auth = GitAuth {
        basic: Some(("flux".into(), "s3cret".into())),
        ..GitAuth::default()
    };
    let outcome = git::fetch(&good, &storage, "ns", "http", None, true).unwrap();
    assert_eq!(outcome.artifact().revision, format!("main@sha1:{c2}"));

    let mut bad = spec(&url, branch("main"));
    bad.auth = GitAuth {
        basic: Some(("flux".into(), "wrong".into())),
        ..GitAuth::default()
    };
    let err = git::fetch(&bad, &storage, "ns", "http-bad", None, true).unwrap_err();
    assert!(matches!(err, flux_source::Error::Auth { .. }), "{err:?}");
    assert!(!storage
        .root()
        .join("gitrepository/ns/http-bad")
        .join(format!("{c2}.tar.gz"))
        .exists());

    let anonymous = spec(&url, branch("main"));
    let err = git::fetch(&anonymous, &storage, "ns", "http-anon", None, true).unwrap_err();
    assert!(matches!(err, flux_source::Error::Auth { .. }), "{err:?}");
}

#[test]
fn ssh_with_key_and_known_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ssh) = sshd(tmp.path()) else {
        return;
    };
    let (bare, _, c2, _) = fixture_repo(tmp.path());
    let (server, user, known_hosts) = (&ssh.server, &ssh.user, ssh.known_hosts.clone());
    let (client_key, other_key) = (&ssh.client_key, &ssh.other_key);
    let url = format!("ssh://{user}@127.0.0.1:{}{}", server.port, bare.display());
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();

    let mut good = spec(&url, branch("main"));
    good.auth = GitAuth {
        ssh_identity: Some(std::fs::read(client_key).unwrap()),
        ssh_known_hosts: Some(known_hosts.clone()),
        ..GitAuth::default()
    };
    let outcome =
        git::fetch(&good, &storage, "ns", "ssh", None, true).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(outcome.artifact().revision, format!("main@sha1:{c2}"));

    // Unknown host key: the server's key is not the one in known_hosts.
    let other_pub = std::fs::read_to_string(other_key.with_extension("pub")).unwrap();
    let mut unknown = good.clone();
    unknown.auth.ssh_known_hosts =
        Some(format!("[127.0.0.1]:{} {}", server.port, other_pub.trim()));
    let err = git::fetch(&unknown, &storage, "ns", "ssh-unknown", None, true).unwrap_err();
    assert!(matches!(err, flux_source::Error::Auth { .. }), "{err:?}");

    // Wrong key: authentication refused.
    let mut wrong = good.clone();
    wrong.auth.ssh_identity = Some(std::fs::read(other_key).unwrap());
    let err = git::fetch(&wrong, &storage, "ns", "ssh-wrong", None, true).unwrap_err();
    assert!(matches!(err, flux_source::Error::Auth { .. }), "{err:?}");

    // known_hosts is mandatory.
    let mut none = good.clone();
    none.auth.ssh_known_hosts = None;
    assert!(git::fetch(&none, &storage, "ns", "ssh-none", None, true).is_err());
    assert!(!storage
        .root()
        .join("gitrepository/ns/ssh-unknown")
        .join(format!("{c2}.tar.gz"))
        .exists());
}
