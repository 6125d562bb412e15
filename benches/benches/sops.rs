//! SOPS benchmarks: decrypting the 1 MB and 10 MB corpus fixtures (read from ../shared at
//! run time; skipped with a notice when absent) and encrypting a generated file.

use std::fmt::Write as _;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use flux_sops::{DecryptOptions, EncryptOptions, Format, KeySet, Recipient};

fn shared_sops() -> Option<PathBuf> {
    let dir = std::env::var_os("FLUX_SHARED_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        PathBuf::from,
    );
    let corpus = dir.join("conformance/sops");
    if corpus.is_dir() {
        Some(corpus)
    } else {
        println!(
            "NOTICE: {} not found; skipping the SOPS decryption benches",
            corpus.display()
        );
        None
    }
}

fn bench_decrypt(c: &mut Criterion) {
    let Some(corpus) = shared_sops() else { return };
    let mut keys = KeySet::new();
    if keys
        .add_age_key_file(&corpus.join("keys/age1.agekey"))
        .is_err()
    {
        println!("NOTICE: age1.agekey missing; skipping");
        return;
    }
    let mut group = c.benchmark_group("sops_decrypt");
    group.sample_size(10);
    for case in ["large-1mb", "large-10mb"] {
        let Ok(input) = std::fs::read(corpus.join(case).join("encrypted.yaml")) else {
            println!("NOTICE: {case} missing; skipping");
            continue;
        };
        group.bench_function(case, |b| {
            b.iter(|| {
                flux_sops::decrypt(
                    &input,
                    Format::Yaml,
                    Format::Yaml,
                    &keys,
                    DecryptOptions::default(),
                    case,
                )
                .map_or(0, |out| out.len())
            });
        });
    }
    group.finish();
}

fn bench_encrypt(c: &mut Criterion) {
    let mut input = String::new();
    for i in 0..6500 {
        let _ = write!(
            input,
            "key{i}:\n    value: secret-value-number-{i}\n    port: {i}\n"
        );
    }
    let options = EncryptOptions {
        key_groups: vec![vec![Recipient::Age(
            "age15luef60rw3qe932cx7guzmzahs384dwkej74f7e99q343d3884rq9d4ssa".to_string(),
        )]],
        shamir_threshold: 0,
        selection: None,
        mac_only_encrypted: false,
    };
    let mut group = c.benchmark_group("sops_encrypt");
    group.sample_size(10);
    group.bench_function("yaml-13000-values", |b| {
        b.iter(|| {
            flux_sops::encrypt(input.as_bytes(), Format::Yaml, &options, "bench.yaml")
                .map_or(0, |o| o.len())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_decrypt, bench_encrypt);
criterion_main!(benches);
