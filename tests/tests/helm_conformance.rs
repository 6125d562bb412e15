//! Helm conformance: renders every case of `../shared/conformance/helm/cases.tsv` with flux-helm
//! and compares with Helm 4.3.1's output (`expected-helm4/`), skipping the lines the corpus
//! marks nondeterministic.

use std::path::{Path, PathBuf};

use flux_helm::RenderOptions;

struct Case {
    id: String,
    chart: String,
    values: Option<String>,
    flags: Vec<String>,
}

fn run_case(dir: &Path, case: &Case) -> Result<String, String> {
    let mut opts = RenderOptions {
        release_name: "rel".into(),
        namespace: "ns1".into(),
        ..RenderOptions::default()
    };
    for f in &case.flags {
        match f.as_str() {
            "--include-crds" => opts.include_crds = true,
            "--skip-schema-validation" => opts.skip_schema_validation = true,
            other => return Err(format!("unsupported flag {other}")),
        }
    }
    let values: Vec<PathBuf> = case.values.iter().map(|v| dir.join(v)).collect();
    // Helm runs from the corpus dir with relative chart paths; errors name them that way.
    let chart = dir.join("charts").join(&case.chart);
    flux_helm::template(&chart, &values, &[], &opts).map_err(|e| format!("Error: {e}\n"))
}

/// Compares line by line, ignoring masked (1-based) line numbers.
fn same(expected: &str, actual: &str, mask: &[usize]) -> Option<String> {
    let e: Vec<&str> = expected.split('\n').collect();
    let a: Vec<&str> = actual.split('\n').collect();
    if e.len() != a.len() {
        let first = e
            .iter()
            .zip(a.iter())
            .position(|(x, y)| x != y)
            .unwrap_or(e.len().min(a.len()));
        return Some(format!(
            "line count {} != {} (first difference at line {}: expected {:?}, got {:?})",
            e.len(),
            a.len(),
            first + 1,
            e.get(first).unwrap_or(&""),
            a.get(first).unwrap_or(&"")
        ));
    }
    for (i, (x, y)) in e.iter().zip(a.iter()).enumerate() {
        if x != y && !mask.contains(&(i + 1)) {
            return Some(format!("line {}: expected {x:?}, got {y:?}", i + 1));
        }
    }
    None
}

#[test]
fn helm_conformance() {
    let Some(shared) = flux_tests::shared_dir("helm") else {
        return;
    };
    let dir = shared.join("conformance/helm");
    let rows = flux_tests::read_tsv(&dir.join("cases.tsv")).expect("cases.tsv");
    let known = flux_tests::read_known_failures(
        &flux_tests::workspace_root().join("tests/known-failures/helm.tsv"),
    );
    let only = std::env::var("HELM_CASE").ok();
    let (mut passed, mut failed) = (0, 0);
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for row in rows {
        let case = Case {
            id: row[0].clone(),
            chart: row[1].clone(),
            values: Some(row[2].clone()).filter(|v| v != "-"),
            flags: if row[3] == "-" {
                Vec::new()
            } else {
                row[3].split_whitespace().map(str::to_string).collect()
            },
        };
        if only.as_ref().is_some_and(|o| !case.id.contains(o.as_str())) {
            continue;
        }
        let ok_case = row[4] == "ok";
        let base = dir.join("expected-helm4").join(&case.id);
        let result = std::panic::catch_unwind(|| run_case(&dir, &case));
        let diff = match result {
            Err(_) => Some("panic".to_string()),
            Ok(out) => {
                if ok_case {
                    let expected =
                        std::fs::read_to_string(base.with_extension("yaml")).expect("golden");
                    let mask: Vec<usize> = std::fs::read_to_string(base.with_extension("mask"))
                        .unwrap_or_default()
                        .lines()
                        .filter_map(|l| l.trim().parse().ok())
                        .collect();
                    match out {
                        Ok(text) => same(&expected, &text, &mask),
                        Err(e) => Some(format!("unexpected error: {e}")),
                    }
                } else {
                    let expected =
                        std::fs::read_to_string(base.with_extension("err")).expect("golden");
                    match out {
                        Ok(_) => Some("expected an error, rendered fine".to_string()),
                        Err(e) if e == expected => None,
                        Err(e) => Some(format!("error text differs:\n{e}\nexpected:\n{expected}")),
                    }
                }
            }
        };
        match diff {
            None => {
                passed += 1;
                if known.contains_key(&case.id) {
                    fixed.push(case.id.clone());
                }
            }
            Some(d) => {
                failed += 1;
                if std::env::var("HELM_VERBOSE").is_ok() || only.is_some() {
                    println!("FAIL {}: {d}", case.id);
                }
                if !known.contains_key(&case.id) {
                    unexpected.push(format!("{}: {d}", case.id));
                }
            }
        }
    }
    println!("helm conformance: {passed} passed, {failed} failed");
    if !fixed.is_empty() {
        println!("now passing but listed as known failures: {fixed:?}");
    }
    assert!(
        unexpected.is_empty(),
        "unexpected failures:\n{}",
        unexpected.join("\n")
    );
}
