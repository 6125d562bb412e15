//! Runs every case of the shared kustomize corpus (`conformance/kustomize/cases.tsv`)
//! through flux-kustomize and compares with kustomize's own output: structurally (the
//! hard target) and byte for byte (reported).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flux_kustomize::{build_with, BuildOptions, DiskFs, LoadRestrictor};

struct Case {
    id: String,
    dir: PathBuf,
    ok: bool,
    expected: PathBuf,
    flags: String,
}

enum Outcome {
    Pass { bytes_equal: bool },
    Fail(String),
}

fn parse_all(text: &str) -> Result<Vec<serde_json::Value>, String> {
    flux_kustomize::yaml::parse_documents(text)
}

fn run_case(root: &Path, case: &Case) -> Outcome {
    let options = BuildOptions {
        load_restrictor: if case.flags.contains("LoadRestrictionsNone") {
            LoadRestrictor::None
        } else {
            LoadRestrictor::RootOnly
        },
    };
    let fs = match DiskFs::confined(root) {
        Ok(fs) => fs,
        Err(e) => return Outcome::Fail(format!("cannot open corpus: {e}")),
    };
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_with(&fs, &case.dir, &options)
    }));
    let built = match built {
        Ok(b) => b,
        Err(_) => return Outcome::Fail("PANIC".into()),
    };
    if !case.ok {
        return match built {
            Ok(_) => Outcome::Fail("expected an error, build succeeded".into()),
            Err(_) => Outcome::Pass { bytes_equal: true },
        };
    }
    let list = match built {
        Ok(list) => list,
        Err(e) => return Outcome::Fail(format!("build failed: {e}")),
    };
    let ours = list.to_yaml();
    let expected = match std::fs::read_to_string(&case.expected) {
        Ok(t) => t,
        Err(e) => return Outcome::Fail(format!("cannot read golden: {e}")),
    };
    let bytes_equal = ours == expected;
    if bytes_equal {
        return Outcome::Pass { bytes_equal };
    }
    let (a, b) = match (parse_all(&ours), parse_all(&expected)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => return Outcome::Fail(format!("our output does not parse: {e}")),
        (_, Err(e)) => return Outcome::Fail(format!("golden does not parse: {e}")),
    };
    if a == b {
        return Outcome::Pass { bytes_equal };
    }
    if a.len() != b.len() {
        return Outcome::Fail(format!("{} documents, expected {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(&b) {
        if x != y {
            let id = |v: &serde_json::Value| {
                format!(
                    "{}/{}",
                    v["kind"].as_str().unwrap_or("?"),
                    v["metadata"]["name"].as_str().unwrap_or("?")
                )
            };
            return Outcome::Fail(format!("document differs: ours {} vs {}", id(x), id(y)));
        }
    }
    Outcome::Fail("differs".into())
}

#[test]
fn kustomize_corpus() {
    let Some(shared) = flux_tests::shared_dir("kustomize") else {
        return;
    };
    let corpus = shared.join("conformance/kustomize");
    let rows = flux_tests::read_tsv(&corpus.join("cases.tsv")).expect("cases.tsv");
    let known = flux_tests::read_known_failures(
        &flux_tests::workspace_root().join("tests/known-failures/kustomize.tsv"),
    );
    let cases: Vec<Case> = rows
        .iter()
        .filter(|r| r.len() >= 4)
        .map(|r| Case {
            id: r[0].clone(),
            dir: corpus.join(&r[1]),
            ok: r[2] == "ok",
            expected: corpus.join(&r[3]),
            flags: r.get(4).cloned().unwrap_or_default(),
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let chunk = cases.len().div_ceil(threads).max(1);
    let results: BTreeMap<String, Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|part| {
                let corpus = &corpus;
                s.spawn(move || {
                    part.iter()
                        .map(|c| (c.id.clone(), run_case(corpus, c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let (mut passed, mut failed, mut bytes, mut ok_cases) = (0, 0, 0, 0);
    let mut unexpected = Vec::new();
    for case in &cases {
        let outcome = &results[&case.id];
        if case.ok {
            ok_cases += 1;
        }
        match outcome {
            Outcome::Pass { bytes_equal } => {
                passed += 1;
                if case.ok && *bytes_equal {
                    bytes += 1;
                } else if case.ok {
                    println!("structurally equal, bytes differ: {}", case.id);
                }
                if known.contains_key(&case.id) {
                    println!("now passing, remove from known failures: {}", case.id);
                }
            }
            Outcome::Fail(reason) => {
                failed += 1;
                println!("FAIL {}: {reason}", case.id);
                if !known.contains_key(&case.id) {
                    unexpected.push(format!("{}: {reason}", case.id));
                }
            }
        }
    }
    println!(
        "{passed} passed, {failed} failed ({} cases); byte-identical: {bytes} of {ok_cases} ok cases",
        cases.len()
    );
    assert!(
        unexpected.is_empty(),
        "{} cases failed that are not in tests/known-failures/kustomize.tsv:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
