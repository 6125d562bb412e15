//! Files flux-sops encrypts are decrypted by the real sops 3.11 to the same bytes flux-sops
//! decrypts them to. Runs only when the `sops` oracle is installed
//! (`shared/tools/install-oracles`); otherwise prints a notice and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use flux_sops::{DecryptOptions, EncryptOptions, Format, KeySet, Recipient};

fn find_sops() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/flux-oracles/bin/sops"))
        .into_iter()
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|p| p.join("sops")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

#[test]
fn real_sops_decrypts_what_we_encrypt() {
    let Some(sops) = find_sops() else {
        println!("NOTICE: sops oracle not found; skipping the real-sops round trip");
        return;
    };
    let goldens = flux_tests::workspace_root().join("flux-sops/tests/goldens");
    let key_file = goldens.join("test-only.agekey");
    let mut keys = KeySet::new();
    keys.add_age_key_file(&key_file).expect("test key");
    let options = EncryptOptions {
        key_groups: vec![vec![Recipient::Age(
            "age15luef60rw3qe932cx7guzmzahs384dwkej74f7e99q343d3884rq9d4ssa".to_string(),
        )]],
        shamir_threshold: 0,
        selection: None,
        mac_only_encrypted: false,
    };
    let work = tempfile::tempdir().expect("tempdir");
    let (mut passed, mut failed) = (0, 0);
    for name in [
        "app.yaml",
        "app.json",
        "app.env",
        "app.ini",
        "app.bin",
        "k8s-secret.yaml",
    ] {
        let input = std::fs::read(goldens.join(name)).expect("input");
        let format = Format::from_path(Path::new(name));
        let encrypted = flux_sops::encrypt(&input, format, &options, name).expect("encrypt");
        let path = work.path().join(name);
        std::fs::write(&path, &encrypted).expect("write");
        let output = Command::new(&sops)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .arg("decrypt")
            .arg(&path)
            .output()
            .expect("run sops");
        let ours = flux_sops::decrypt(
            &encrypted,
            format,
            format,
            &keys,
            DecryptOptions::default(),
            name,
        )
        .expect("decrypt");
        if output.status.success() && output.stdout == ours.to_vec() {
            passed += 1;
        } else {
            failed += 1;
            println!(
                "FAIL {name}: sops said {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    println!("sops round trip: {passed} passed, {failed} failed");
    assert_eq!(failed, 0);
}
