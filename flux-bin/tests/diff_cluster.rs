//! `flux-rs diff cluster|kustomization`: against a previous render and against a git revision,
//! with flux's exit codes (0 equal, 1 differences, 2 errors) and Secret values never shown.

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn flux_rs(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flux-rs"))
        .args(args)
        .current_dir(dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("HOME", "/nonexistent")
        .output()
        .expect("run flux-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A private copy of the example fleet (tests edit it).
fn fleet_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &workspace().join("examples/fleet"),
        &dir.path().join("fleet"),
    );
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// A diff line: `sign`, then indentation, then `text`.
fn has_line(stdout: &str, sign: &str, text: &str) -> bool {
    stdout.lines().any(|l| {
        l.trim_start().starts_with(sign)
            && l[1..].trim_end().ends_with(text)
            && l.contains(&format!(" {text}"))
    })
}

const KEY: &str = "--age-key-file=demo.agekey";

#[test]
fn against_a_previous_render_equal_then_changed() {
    let tmp = fleet_copy();
    let fleet = tmp.path().join("fleet");
    let out = tmp.path().join("render");
    let out = out.to_str().unwrap();
    let (code, _, stderr) = flux_rs(
        &fleet,
        &[
            "build",
            "cluster",
            "clusters/staging",
            KEY,
            "-q",
            "--output-dir",
            out,
        ],
    );
    assert_eq!(code, 0, "{stderr}");

    let diff = [
        "diff",
        "cluster",
        "clusters/staging",
        KEY,
        "--against-dir",
        out,
    ];
    let (code, stdout, stderr) = flux_rs(&fleet, &diff);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");

    edit(
        &fleet.join("apps/staging/kustomization.yaml"),
        "newTag: 6.14.1",
        "newTag: 6.15.0",
    );
    edit(
        &fleet.join("infrastructure/controllers/redis-values.yaml"),
        "50m",
        "75m",
    );
    std::fs::remove_file(fleet.join("infrastructure/configs/readonly-role.yaml")).unwrap();
    edit(
        &fleet.join("infrastructure/configs/kustomization.yaml"),
        "  - readonly-role.yaml\n",
        "",
    );
    let (code, stdout, stderr) = flux_rs(&fleet, &diff);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("► Kustomization/flux-system/apps\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ~ Deployment/podinfo/podinfo drifted\n"),
        "{stdout}"
    );
    assert!(
        has_line(&stdout, "-", "image: ghcr.io/stefanprodan/podinfo:6.14.1"),
        "{stdout}"
    );
    assert!(
        has_line(&stdout, "+", "image: ghcr.io/stefanprodan/podinfo:6.15.0"),
        "{stdout}"
    );
    // The values change reaches the HelmRelease through valuesFrom.
    assert!(stdout.contains("► HelmRelease/redis/redis\n"), "{stdout}");
    assert!(
        stdout.contains("  ~ StatefulSet/redis/redis drifted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("► Kustomization/flux-system/infra-configs\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - ClusterRole/fleet-readonly deleted"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("► Kustomization/flux-system/monitoring"),
        "{stdout}"
    );
    assert!(!stdout.contains("podinfo-demo-password"), "{stdout}");
}

#[test]
fn diff_errors_exit_2() {
    let ws = workspace();
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = bad_dir.path().to_str().unwrap();
    let cases: [&[&str]; 4] = [
        &[
            "diff",
            "cluster",
            "examples/fleet/clusters/staging",
            "--age-key-file=examples/fleet/demo.agekey",
            "--against-dir",
            bad,
        ],
        &[
            "diff",
            "cluster",
            "examples/fleet/clusters/staging",
            "--age-key-file=examples/fleet/demo.agekey",
            "--against-ref",
            "no-such-ref-xyz",
        ],
        &[
            "diff",
            "cluster",
            "examples/fleet/README.md",
            "--against-dir",
            bad,
        ],
        // No key: the render fails, so nothing can be compared.
        &[
            "diff",
            "cluster",
            "examples/fleet/clusters/staging",
            "--against-ref",
            "HEAD",
        ],
    ];
    for args in cases {
        let (code, stdout, stderr) = flux_rs(&ws, args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.starts_with("✗ "), "{args:?}: {stderr}");
        assert!(!stdout.contains("not-a-real-password") && !stderr.contains("not-a-real-password"));
    }
    let (_, _, stderr) = flux_rs(&ws, cases[0]);
    assert!(
        stderr.contains("not a directory written by `flux-rs build cluster --output-dir`"),
        "{stderr}"
    );
    let (_, _, stderr) = flux_rs(&ws, cases[1]);
    assert!(
        stderr.contains("--against-ref no-such-ref-xyz: no such revision"),
        "{stderr}"
    );
}

fn git(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A git repository holding a copy of the fleet, one commit; `None` without a git binary.
fn fleet_repo() -> Option<tempfile::TempDir> {
    let tmp = fleet_copy();
    let fleet = tmp.path().join("fleet");
    if !git(&fleet, &["init", "-q"]) {
        println!("NOTICE: git not found; skipping the --against-ref test");
        return None;
    }
    assert!(git(&fleet, &["add", "-A"]));
    assert!(git(&fleet, &["commit", "-q", "-m", "fleet"]));
    Some(tmp)
}

#[test]
fn against_a_git_revision() {
    let Some(tmp) = fleet_repo() else { return };
    let fleet = tmp.path().join("fleet");
    let diff = [
        "diff",
        "cluster",
        "clusters/staging",
        KEY,
        "--against-ref",
        "HEAD",
    ];
    let (code, stdout, stderr) = flux_rs(&fleet, &diff);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // Uncommitted work compared with HEAD: a new object and a changed HelmRelease value.
    edit(
        &fleet.join("apps/staging/guestbook-values.yaml"),
        "cpu: 10m",
        "cpu: 20m",
    );
    std::fs::write(
        fleet.join("monitoring/staging/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: monitoring\ndata:\n  a: b\n",
    )
    .unwrap();
    edit(
        &fleet.join("monitoring/staging/kustomization.yaml"),
        "resources:\n",
        "resources:\n  - extra.yaml\n",
    );
    let (code, stdout, stderr) = flux_rs(&fleet, &diff);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("► HelmRelease/guestbook/guestbook\n"),
        "{stdout}"
    );
    // Helm-rendered objects carry no namespace unless the chart sets one.
    assert!(
        stdout.contains("  ~ Deployment/guestbook-hello drifted"),
        "{stdout}"
    );
    assert!(has_line(&stdout, "+", "cpu: 20m"), "{stdout}");
    assert!(has_line(&stdout, "-", "cpu: 10m"), "{stdout}");
    assert!(
        stdout.contains("  + ConfigMap/monitoring/extra created"),
        "{stdout}"
    );

    // Committed: HEAD~1 shows the same changes, HEAD none.
    assert!(git(&fleet, &["add", "-A"]));
    assert!(git(&fleet, &["commit", "-q", "-m", "change"]));
    let (code, _, stderr) = flux_rs(&fleet, &diff);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = flux_rs(
        &fleet,
        &[
            "diff",
            "cluster",
            "clusters/staging",
            KEY,
            "--against-ref",
            "HEAD~1",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("  + ConfigMap/monitoring/extra created"),
        "{stdout}"
    );
}

#[test]
fn one_kustomization_against_a_git_revision() {
    let Some(tmp) = fleet_repo() else { return };
    let fleet = tmp.path().join("fleet");
    let diff = [
        "diff",
        "kustomization",
        "apps",
        "--path",
        "apps/staging",
        "--kustomization-file",
        "clusters/staging/apps.yaml",
        "--dry-run",
        KEY,
        "--against-ref",
        "HEAD",
    ];
    let (code, stdout, stderr) = flux_rs(&fleet, &diff);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The Kustomization object itself changes: a new inline variable value.
    edit(
        &fleet.join("clusters/staging/apps.yaml"),
        "cluster_env: staging",
        "cluster_env: staging-2",
    );
    let (code, stdout, stderr) = flux_rs(&fleet, &diff);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("► Kustomization/flux-system/apps\n"),
        "{stdout}"
    );
    // Substitution runs after the build, so the generated name (content hash) stays.
    assert!(
        stdout.contains("  ~ ConfigMap/podinfo/podinfo-config-"),
        "{stdout}"
    );
    assert!(has_line(&stdout, "+", "ENVIRONMENT: staging-2"), "{stdout}");
    assert!(has_line(&stdout, "-", "ENVIRONMENT: staging"), "{stdout}");
}
