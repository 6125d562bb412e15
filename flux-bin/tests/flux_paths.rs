//! The Flux Kustomizations of the real repositories (`../shared/conformance/kustomize`,
//! `flux-paths.tsv`): each one whose path is in the same repository is built the way
//! `flux-rs build kustomization NAME --path DIR --kustomization-file F --dry-run` does.
//! Prints rendered / skipped-with-reason / failed counts; a failure not listed in
//! `tests/known-failures/flux-paths.tsv` fails the test, as does a listed one that passes.

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use flux_bin::render::{self, KustomizationOptions, Outcome};
use serde_json::Value;

/// Finds `namespace/name` among the Flux Kustomizations of `file`.
fn read_object(file: &Path, name: &str, namespace: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let documents = flux_kustomize::yaml::parse_documents(&text)?;
    documents
        .into_iter()
        .find(|d| {
            d["kind"] == "Kustomization"
                && d["metadata"]["name"] == name
                // `-`: the object has no namespace (it gets one where it is applied).
                && (namespace == "-" || d["metadata"]["namespace"] == namespace)
        })
        .ok_or_else(|| format!("Kustomization {namespace}/{name} not found in the file"))
}

#[test]
fn real_repository_kustomizations_build() {
    let Some(shared) = flux_tests::shared_dir("flux-paths") else {
        return;
    };
    let corpus = shared.join("conformance/kustomize");
    let rows = flux_tests::read_tsv(&corpus.join("flux-paths.tsv")).unwrap();
    let known_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/known-failures/flux-paths.tsv");
    let known = flux_tests::read_known_failures(&known_file);
    // No keys: the corpus repositories' SOPS keys are not public.
    let decrypt = flux_bin::cmd::keys::decryptor(&[], &[]).unwrap();
    let charts = flux_bin::cmd::charts::renderer();

    let mut rendered = 0;
    let mut objects = 0;
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for row in &rows {
        let [repo, file, name, namespace, path, _, _, decryption, path_exists, source_ref, _] =
            &row[..]
        else {
            panic!("malformed row {row:?}");
        };
        let id = format!("{repo}/{file}#{namespace}/{name}");
        if path_exists != "yes" {
            let source_kind = source_ref.split('/').next().unwrap_or("-");
            *skipped
                .entry(format!(
                    "spec.path not in this repository (source kind {source_kind})"
                ))
                .or_default() += 1;
            continue;
        }
        if decryption == "yes" {
            *skipped
                .entry("needs the repository's SOPS keys".to_string())
                .or_default() += 1;
            continue;
        }
        let root = corpus.join("repos").join(repo);
        let outcome = read_object(&root.join(file), name, namespace).and_then(|object| {
            let options = KustomizationOptions {
                object,
                path: root.join(if path == "-" { "." } else { path.as_str() }),
                root: Some(root.clone()),
                recursive: false,
                dry_run: true,
                strict_substitute: false,
                local_sources: BTreeMap::new(),
                show_secrets: false,
                known_objects: Vec::new(),
            };
            let report = render::render_kustomization(&options, decrypt.as_ref(), charts.as_ref())
                .map_err(|e| e.to_string())?;
            match report.units.into_iter().next().map(|u| u.outcome) {
                Some(Outcome::Rendered(list)) => Ok(list.len()),
                Some(Outcome::Failed(message) | Outcome::Skipped(message)) => Err(message),
                None => Err("nothing rendered".to_string()),
            }
        });
        match outcome {
            Ok(count) => {
                rendered += 1;
                objects += count;
                if known.contains_key(&id) {
                    fixed.push(id);
                }
            }
            Err(message) => {
                if !known.contains_key(&id) {
                    unexpected.push(format!("{id}\t{message}"));
                }
                failed.push(id);
            }
        }
    }
    let skipped_total: usize = skipped.values().sum();
    println!(
        "flux-paths: {} Kustomizations: {rendered} rendered ({objects} objects), {skipped_total} skipped, {} failed ({} known)",
        rows.len(),
        failed.len(),
        failed.len() - unexpected.len()
    );
    for (reason, count) in &skipped {
        println!("  skipped {count}: {reason}");
    }
    assert!(
        unexpected.is_empty(),
        "unlisted failures:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "listed as known failures but they build now (remove them):\n{}",
        fixed.join("\n")
    );
}
