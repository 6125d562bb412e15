//! Feature cases: small kustomizations under `tests/features/<case>/`, each with the
//! output kustomize v5.8.1 (`kubectl kustomize`) gave for it: `expected.yaml` (compared
//! byte for byte) or `expected.err` (the build must fail). A `BUILD` file names the
//! sub-directory to build when it is not the case directory itself.

use std::path::Path;

use flux_kustomize::{build, DiskFs};

fn run_case(features: &Path, case: &Path) -> Result<(), String> {
    let sub = std::fs::read_to_string(case.join("BUILD")).unwrap_or_else(|_| ".".into());
    let dir = case.join(sub.trim());
    let fs = DiskFs::confined(features).map_err(|e| e.to_string())?;
    let result = build(&fs, &dir);
    if case.join("expected.err").exists() {
        return match result {
            Ok(_) => Err("expected an error, the build succeeded".into()),
            Err(_) => Ok(()),
        };
    }
    let expected = std::fs::read_to_string(case.join("expected.yaml"))
        .map_err(|e| format!("no expected.yaml: {e}"))?;
    let ours = result.map_err(|e| format!("build failed: {e}"))?.to_yaml();
    if ours == expected {
        Ok(())
    } else {
        let line = ours
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(ours.lines().count().min(expected.lines().count()));
        Err(format!(
            "output differs from kustomize at line {}:\n  ours:     {:?}\n  expected: {:?}",
            line + 1,
            ours.lines().nth(line).unwrap_or(""),
            expected.lines().nth(line).unwrap_or("")
        ))
    }
}

#[test]
fn feature_cases_match_kustomize() {
    let features = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/features");
    let mut cases: Vec<_> = std::fs::read_dir(&features)
        .expect("features dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "feature cases missing");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        match run_case(&features, case) {
            Ok(()) => println!("ok   {name}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failures.push(name);
            }
        }
    }
    println!(
        "{} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "feature cases failed: {failures:?}");
}
