//! Renders the probe chart (Go template, Sprig and toYaml corner cases, subchart values, aliases,
//! hooks, kind ordering, CRDs) and compares with the output of Helm 4.3.1, recorded in
//! `tests/data/probe-expected.yaml` with:
//! `helm4 template rel probe --namespace ns1 -f probe-values.yaml --include-crds`.

use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn options() -> flux_helm::RenderOptions {
    flux_helm::RenderOptions {
        release_name: "rel".into(),
        namespace: "ns1".into(),
        include_crds: true,
        ..flux_helm::RenderOptions::default()
    }
}

fn assert_same(expected: &str, actual: &str) {
    if expected != actual {
        for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
            assert_eq!(e, a, "first difference at line {}", i + 1);
        }
        assert_eq!(
            expected.lines().count(),
            actual.lines().count(),
            "line counts differ"
        );
        assert_eq!(expected, actual);
    }
}

#[test]
fn probe_chart_matches_helm4() {
    let dir = data();
    let expected = std::fs::read_to_string(dir.join("probe-expected.yaml")).expect("golden");
    let out = flux_helm::template(
        &dir.join("probe"),
        &[dir.join("probe-values.yaml")],
        &[],
        &options(),
    )
    .expect("render");
    assert_same(&expected, &out);
}

#[test]
fn packaged_probe_chart_renders_the_same() {
    let dir = data();
    let expected = std::fs::read_to_string(dir.join("probe-expected.yaml")).expect("golden");
    let tgz = flux_helm::package(&dir.join("probe")).expect("package");
    let chart = flux_helm::load_archive(&tgz, "probe-1.2.3.tgz").expect("load archive");
    assert!(
        !chart.files.files.contains_key("files/c.bak"),
        ".helmignore applied"
    );
    let text = std::fs::read_to_string(dir.join("probe-values.yaml")).expect("values");
    let values = flux_helm::yaml::parse(&text).expect("values yaml");
    let out = flux_helm::render(chart, &values, &options()).expect("render");
    assert_same(&expected, &out);
}

#[test]
fn set_values_override_files() {
    let dir = data();
    let out = flux_helm::template(
        &dir.join("probe"),
        &[dir.join("probe-values.yaml")],
        &["sub.local=from-set".to_string()],
        &options(),
    )
    .expect("render");
    assert!(out.contains("local: \"from-set\""));
}

/// toYaml/toJson/quote corner cases (quoting styles, folding, escapes, YAML 1.1 scalars), with
/// the golden recorded from `helm4 template rel yamlprobe --namespace ns1`.
#[test]
fn yaml_probe_matches_helm4() {
    let dir = data();
    let expected = std::fs::read_to_string(dir.join("yamlprobe-expected.yaml")).expect("golden");
    let opts = flux_helm::RenderOptions {
        include_crds: false,
        ..options()
    };
    let out = flux_helm::template(&dir.join("yamlprobe"), &[], &[], &opts).expect("render");
    assert_same(&expected, &out);
}
