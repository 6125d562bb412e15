//! `git::push::push` (our receive-pack client) against real servers: git daemon with
//! receive-pack enabled, git http-backend behind lighttpd with basic auth, sshd. Every pushed
//! state is read back with the real `git` (clone, rev-parse, show).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flux_source::git::push::{push, Lease, PushRequest};
use flux_source::git::GitAuth;
use flux_source::Error;

use crate::support::*;

/// An empty bare repository `<root>/<name>` accepting pushes over any transport.
fn empty_remote(root: &Path, name: &str) -> PathBuf {
    let bare = root.join(name);
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    git(&bare, &["config", "http.receivepack", "true"]);
    bare
}

/// A working repository with one commit (two files in a sub-directory), returns (path, commit).
fn local_repo(root: &Path) -> (PathBuf, String) {
    let work = root.join("local");
    std::fs::create_dir_all(work.join("clusters/dev")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("clusters/dev/a.yaml"), "a: 1\n").unwrap();
    std::fs::write(work.join("README.md"), "fleet\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    (work, head)
}

fn commit_file(work: &Path, path: &str, text: &str, message: &str) -> String {
    std::fs::write(work.join(path), text).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["rev-parse", "HEAD"])
}

fn request<'a>(repo: &'a Path, commit: &'a str, lease: Lease) -> PushRequest<'a> {
    PushRequest {
        repository: repo,
        commit,
        remote_ref: "refs/heads/main",
        lease,
    }
}

/// Clones `url` with the real git and returns (HEAD of main, content of `path`).
fn clone_and_read(root: &Path, url: &str, path: &str) -> (String, String) {
    static CLONES: AtomicUsize = AtomicUsize::new(0);
    let dest = root.join(format!("clone-{}", CLONES.fetch_add(1, Ordering::Relaxed)));
    git(
        root,
        &["clone", "-q", "-b", "main", url, dest.to_str().unwrap()],
    );
    git(&dest, &["fsck", "--strict"]);
    let head = git(&dest, &["rev-parse", "HEAD"]);
    let text = std::fs::read_to_string(dest.join(path)).unwrap();
    (head, text)
}

#[test]
fn git_daemon_create_fast_forward_up_to_date_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let Some(daemon) = git_daemon(&root) else {
        return;
    };
    let bare = empty_remote(&root, "fleet.git");
    let url = format!("git://127.0.0.1:{}/fleet.git", daemon.port);
    let (work, first) = local_repo(tmp.path());
    let auth = GitAuth::default();

    // Create the branch in an empty repository.
    let outcome = push(&url, &auth, &request(&work, &first, Lease::Expect(None))).unwrap();
    assert_eq!(outcome.old, None);
    assert_eq!(outcome.new, first);
    assert_eq!(outcome.objects_sent, 6, "commit + 3 trees + 2 blobs");
    assert!(!outcome.up_to_date);
    let (head, text) = clone_and_read(tmp.path(), &url, "clusters/dev/a.yaml");
    assert_eq!(head, first);
    assert_eq!(text, "a: 1\n");

    // Fast-forward: only the new commit, its root tree, the changed sub-trees and blob.
    let second = commit_file(&work, "clusters/dev/a.yaml", "a: 2\n", "second");
    let outcome = push(&url, &auth, &request(&work, &second, Lease::FastForward)).unwrap();
    assert_eq!(outcome.old.as_deref(), Some(first.as_str()));
    assert_eq!(outcome.objects_sent, 5, "commit + 3 trees + 1 blob");
    assert_eq!(git(&bare, &["rev-parse", "main"]), second);
    let (_, text) = clone_and_read(tmp.path(), &url, "clusters/dev/a.yaml");
    assert_eq!(text, "a: 2\n");

    // Same commit again: nothing is sent.
    let outcome = push(&url, &auth, &request(&work, &second, Lease::FastForward)).unwrap();
    assert!(outcome.up_to_date);
    assert_eq!(outcome.objects_sent, 0);

    // A commit that does not contain the remote's: refused before sending, remote unchanged.
    git(&work, &["reset", "-q", "--hard", &first]);
    let diverged = commit_file(&work, "README.md", "other\n", "diverged");
    let err = push(&url, &auth, &request(&work, &diverged, Lease::FastForward)).unwrap_err();
    match &err {
        Error::PushRejected {
            url: u,
            reference,
            reason,
        } => {
            assert_eq!(u, &url);
            assert_eq!(reference, "refs/heads/main");
            assert!(reason.starts_with("non-fast-forward"), "{reason}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(err.to_string().contains(&url), "{err}");
    assert_eq!(git(&bare, &["rev-parse", "main"]), second);

    // A stale lease is refused too.
    let err = push(
        &url,
        &auth,
        &request(&work, &diverged, Lease::Expect(Some(first.clone()))),
    )
    .unwrap_err();
    assert!(err.to_string().contains("stale info"), "{err}");

    // The server's own refusal (receive.denyNonFastForwards) comes back as an `ng` line.
    git(&bare, &["config", "receive.denyNonFastForwards", "true"]);
    let err = push(&url, &auth, &request(&work, &diverged, Lease::Force)).unwrap_err();
    let Error::PushRejected { reason, .. } = &err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert!(
        reason.starts_with("the remote refused the update: "),
        "{reason}"
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), second);

    // Without the server rule, --force replaces the branch.
    git(&bare, &["config", "receive.denyNonFastForwards", "false"]);
    let outcome = push(&url, &auth, &request(&work, &diverged, Lease::Force)).unwrap();
    assert_eq!(outcome.new, diverged);
    let (head, text) = clone_and_read(tmp.path(), &url, "README.md");
    assert_eq!((head, text.as_str()), (diverged, "other\n"));
}

#[test]
fn file_url_push() {
    let tmp = tempfile::tempdir().unwrap();
    if require("git", "file:// push test").is_none() {
        return;
    }
    let bare = empty_remote(tmp.path(), "fleet.git");
    let url = format!("file://{}", bare.display());
    let (work, first) = local_repo(tmp.path());
    push(
        &url,
        &GitAuth::default(),
        &request(&work, &first, Lease::FastForward),
    )
    .unwrap();
    assert_eq!(git(&bare, &["rev-parse", "main"]), first);
    assert_eq!(git(&bare, &["show", "main:README.md"]), "fleet");
}

#[test]
fn smart_http_push_with_basic_auth() {
    let tmp = tempfile::tempdir().unwrap();
    if require("git-http-backend", "smart HTTP push test").is_none() {
        return;
    }
    let git_root = tmp.path().join("gitroot");
    let bare = empty_remote(&git_root, "fleet.git");
    let docroot = tmp.path().join("www");
    std::fs::create_dir_all(&docroot).unwrap();
    let Some(server) = lighttpd(tmp.path(), &docroot, Some(&git_root), ("flux", "s3cret")) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/git/fleet.git", server.port);
    let (work, first) = local_repo(tmp.path());

    let wrong = GitAuth {
        basic: Some(("flux".into(), "wrong".into())),
        ..GitAuth::default()
    };
    let err = push(&url, &wrong, &request(&work, &first, Lease::FastForward)).unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    let anonymous = push(
        &url,
        &GitAuth::default(),
        &request(&work, &first, Lease::FastForward),
    )
    .unwrap_err();
    assert!(matches!(anonymous, Error::Auth { .. }), "{anonymous:?}");
    assert!(git_refs(&bare).is_empty(), "nothing was pushed");

    let good = GitAuth {
        basic: Some(("flux".into(), "s3cret".into())),
        ..GitAuth::default()
    };
    let outcome = push(&url, &good, &request(&work, &first, Lease::Expect(None))).unwrap();
    assert_eq!(outcome.new, first);
    let second = commit_file(&work, "clusters/dev/b.yaml", "b: 1\n", "second");
    push(&url, &good, &request(&work, &second, Lease::FastForward)).unwrap();
    let authed = format!("http://flux:s3cret@127.0.0.1:{}/git/fleet.git", server.port);
    let (head, text) = clone_and_read(tmp.path(), &authed, "clusters/dev/b.yaml");
    assert_eq!((head, text.as_str()), (second, "b: 1\n"));
}

fn git_refs(bare: &Path) -> String {
    git(bare, &["for-each-ref"])
}

#[test]
fn ssh_push_with_key_and_refused_key() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ssh) = sshd(tmp.path()) else {
        return;
    };
    let bare = empty_remote(tmp.path(), "fleet.git");
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        ssh.user,
        ssh.server.port,
        bare.display()
    );
    let (work, first) = local_repo(tmp.path());
    let good = GitAuth {
        ssh_identity: Some(std::fs::read(&ssh.client_key).unwrap()),
        ssh_known_hosts: Some(ssh.known_hosts.clone()),
        ..GitAuth::default()
    };
    let mut wrong = good.clone();
    wrong.ssh_identity = Some(std::fs::read(&ssh.other_key).unwrap());
    let err = push(&url, &wrong, &request(&work, &first, Lease::FastForward)).unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(git_refs(&bare).is_empty(), "nothing was pushed");

    let outcome = push(&url, &good, &request(&work, &first, Lease::FastForward))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(outcome.new, first);
    assert_eq!(git(&bare, &["rev-parse", "main"]), first);
    assert_eq!(git(&bare, &["show", "main:clusters/dev/a.yaml"]), "a: 1");
}
