//! Every Flux object in `../shared/flux-api/examples/**` and `../shared/flux-api/testdata/**`
//! (at the versions we serve) deserialises into our types and serialises back without losing
//! or changing any field (JSON values compared; fields we add, such as a defaulted
//! verification `provider`, are reported but allowed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use flux_api::{helm, kustomize, notification, source};

fn roundtrip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| format!("deserialise: {e}"))?;
    serde_json::to_value(&typed).map_err(|e| format!("serialise: {e}"))
}

/// Round-trips a document through our type for its apiVersion/kind; `None` when it is not a
/// Flux kind at a version we serve.
fn roundtrip_flux(doc: &Value) -> Option<Result<Value, String>> {
    let api_version = doc.get("apiVersion")?.as_str()?;
    let kind = doc.get("kind")?.as_str()?;
    let result = match (api_version, kind) {
        ("source.toolkit.fluxcd.io/v1", "GitRepository") => roundtrip::<source::GitRepository>(doc),
        ("source.toolkit.fluxcd.io/v1", "OCIRepository") => roundtrip::<source::OCIRepository>(doc),
        ("source.toolkit.fluxcd.io/v1", "HelmRepository") => {
            roundtrip::<source::HelmRepository>(doc)
        }
        ("source.toolkit.fluxcd.io/v1", "HelmChart") => roundtrip::<source::HelmChart>(doc),
        ("source.toolkit.fluxcd.io/v1", "Bucket") => roundtrip::<source::Bucket>(doc),
        ("source.toolkit.fluxcd.io/v1", "ExternalArtifact") => {
            roundtrip::<source::ExternalArtifact>(doc)
        }
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization") => {
            roundtrip::<kustomize::Kustomization>(doc)
        }
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease") => roundtrip::<helm::HelmRelease>(doc),
        ("notification.toolkit.fluxcd.io/v1beta3", "Provider") => {
            roundtrip::<notification::Provider>(doc)
        }
        ("notification.toolkit.fluxcd.io/v1beta3", "Alert") => {
            roundtrip::<notification::Alert>(doc)
        }
        ("notification.toolkit.fluxcd.io/v1", "Receiver") => {
            roundtrip::<notification::Receiver>(doc)
        }
        _ => return None,
    };
    Some(result)
}

/// Paths present in `input` that are missing or different in `output`, and paths only in
/// `output`.
fn compare(
    path: &str,
    input: &Value,
    output: &Value,
    lost: &mut Vec<String>,
    added: &mut Vec<String>,
) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => compare(&child, value, other, lost, added),
                    // An explicit null carries no information.
                    None if value.is_null() => {}
                    None => lost.push(format!("{child} (missing)")),
                }
            }
            added.extend(
                b.keys()
                    .filter(|key| !a.contains_key(*key))
                    .map(|key| format!("{path}.{key}")),
            );
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, lost, added);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        (a, b) => lost.push(format!("{path} ({a} became {b})")),
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            out.push(path);
        }
    }
}

/// Parses every YAML document of a file; files that are not valid YAML (templates, goldens
/// with placeholders) yield nothing.
fn documents(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        match Value::deserialize(document).ok() {
            // A broken document ends the stream (the parser cannot resynchronise).
            None => break,
            Some(Value::Null) => {}
            Some(Value::Array(items)) => docs.extend(items),
            Some(value) => {
                // `kind: List` wrappers hold the objects in `items`.
                if let Some(Value::Array(items)) = value.get("items") {
                    docs.extend(items.iter().cloned());
                }
                docs.push(value);
            }
        }
    }
    docs
}

#[test]
fn examples_and_testdata_roundtrip() {
    let Some(shared) = flux_tests::shared_dir("flux-api examples") else {
        return;
    };
    let known = flux_tests::read_known_failures(
        &flux_tests::workspace_root().join("tests/known-failures/api.tsv"),
    );
    let mut files = Vec::new();
    yaml_files(&shared.join("flux-api/examples"), &mut files);
    yaml_files(&shared.join("flux-api/testdata"), &mut files);
    files.sort();

    let (mut passed, mut known_failed, mut with_additions) = (0usize, 0usize, 0usize);
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&shared)
            .unwrap_or(file)
            .display()
            .to_string();
        for (index, doc) in documents(file).iter().enumerate() {
            let Some(result) = roundtrip_flux(doc) else {
                continue;
            };
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let id = format!("example:{relative}#{index}:{kind}/{name}");
            let problem = match result {
                Err(error) => Some(error),
                Ok(output) => {
                    let (mut lost, mut added) = (Vec::new(), Vec::new());
                    compare("", doc, &output, &mut lost, &mut added);
                    if !added.is_empty() {
                        with_additions += 1;
                        println!("{id}: added {added:?}");
                    }
                    (!lost.is_empty()).then(|| format!("lost or changed: {lost:?}"))
                }
            };
            match (problem, known.get(&id)) {
                (None, _) => {
                    passed += 1;
                    *per_kind.entry(kind).or_default() += 1;
                }
                (Some(problem), Some(reason)) => {
                    known_failed += 1;
                    println!("known failure {id}: {problem} ({reason})");
                }
                (Some(problem), None) => failures.push(format!("{id}: {problem}")),
            }
        }
    }
    println!(
        "Flux objects round-tripped: {passed} passed ({with_additions} with added defaults), {known_failed} known failures, {} failed; per kind {per_kind:?}",
        failures.len()
    );
    for failure in &failures {
        println!("FAIL {failure}");
    }
    assert!(
        passed > 30,
        "expected the examples to hold more than 30 Flux objects, found {passed}"
    );
    assert!(
        failures.is_empty(),
        "{} Flux objects did not round-trip (see output)",
        failures.len()
    );
}
