//! `import-values` in both forms (an `exports.<name>` string and `child`/`parent` maps), with
//! an alias, a missing child table, a scalar child and a disabled dependency, compared with
//! the output of the real Helm 4.3.1 recorded in `tests/data/imports/expected-helm4.yaml`:
//! `helm4 template rel chart --namespace ns1` (run in `tests/data/imports`).

use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/imports")
}

fn render(helm3: bool) -> String {
    let opts = flux_helm::RenderOptions {
        release_name: "rel".into(),
        namespace: "ns1".into(),
        helm3,
        ..flux_helm::RenderOptions::default()
    };
    flux_helm::template(&data().join("chart"), &[], &[], &opts).expect("render")
}

fn assert_same(expected: &str, actual: &str) {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        assert_eq!(e, a, "first difference at line {}", i + 1);
    }
    assert_eq!(expected, actual);
}

#[test]
fn import_values_match_helm4() {
    let expected = std::fs::read_to_string(data().join("expected-helm4.yaml")).expect("golden");
    assert_same(&expected, &render(false));
}

#[test]
fn import_values_match_helm3() {
    // `helm3 template rel chart --namespace ns1` (Helm 3.17.2).
    let expected = std::fs::read_to_string(data().join("expected-helm3.yaml")).expect("golden");
    assert_same(&expected, &render(true));
}
