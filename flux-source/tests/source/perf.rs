//! Speed check (issue 4): shallow clone of a 5,000-file repository over git:// on loopback plus
//! packaging, against `git clone --depth 1` + `tar czf`. Run with
//! `cargo test -p flux-source --release --test source -- --ignored --nocapture perf`.

use std::process::Command;
use std::time::Instant;

use flux_source::git::{self, GitRef, GitSpec};
use flux_source::storage::Storage;

use crate::support::*;

#[test]
#[ignore = "benchmark; run explicitly in release mode"]
fn perf_shallow_clone_and_package_5000_files() {
    let tmp = tempfile::tempdir().unwrap();
    if require("git", "perf").is_none() {
        return;
    }
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for d in 0..50 {
        let dir = work.join(format!("apps/app-{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(
                dir.join(format!("res-{f:03}.yaml")),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{d}-{f}\ndata:\n  key: value-{d}-{f}\n"),
            )
            .unwrap();
        }
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "5000 files"]);
    let bare = tmp.path().join("big.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let port = free_port();
    let base = tmp.path().to_str().unwrap().to_string();
    let _daemon = spawn(
        Command::new("git").args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={base}"),
            &base,
        ]),
        port,
        "git daemon",
    );
    let url = format!("git://127.0.0.1:{port}/big.git");
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let spec = GitSpec {
        url: url.clone(),
        reference: GitRef {
            branch: Some("main".into()),
            ..GitRef::default()
        },
        shallow: true,
        ..GitSpec::default()
    };
    let start = Instant::now();
    let outcome = git::fetch(&spec, &storage, "ns", "big", None, false).unwrap();
    let ours = start.elapsed();

    // Packaging alone, on the plain work tree (same 5,000 files).
    let mut a = storage.new_artifact("GitRepository", "ns", "pack", "x.tar.gz", "r");
    let rules = flux_source::ignore::Rules::load(&work, None).unwrap();
    let start = Instant::now();
    storage.archive(&mut a, &work, Some(&rules)).unwrap();
    let packaging = start.elapsed();

    let start = Instant::now();
    let clone_dir = tmp.path().join("git-clone");
    let st = Command::new("git")
        .args(["clone", "-q", "--depth", "1", "--branch", "main", &url])
        .arg(&clone_dir)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("tar")
        .arg("czf")
        .arg(tmp.path().join("git.tar.gz"))
        .arg("--exclude=.git")
        .arg("-C")
        .arg(&clone_dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let reference = start.elapsed();
    println!(
        "PERF flux-source fetch (ls-remote + shallow clone + checkout + archive): {ours:?}; \
         packaging 5000 files: {packaging:?}; git clone --depth 1 + tar czf: {reference:?}; ratio {:.2}; \
         artifact {} bytes",
        ours.as_secs_f64() / reference.as_secs_f64(),
        outcome.artifact().size.unwrap_or_default()
    );
    assert!(
        packaging.as_secs_f64() < 1.0,
        "packaging took {packaging:?}"
    );
}
