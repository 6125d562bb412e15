//! Our generated CRDs (`flux_api::crds()`) against Flux's generated CRDs in
//! `../shared/flux-api/crds`: group, names, scope, served/storage version, printer columns,
//! subresources, the CRD annotation, and a compatible schema (every property path of Flux's
//! schema exists in ours with the same type, enum values, default and required list, and we
//! have no property Flux lacks).
//!
//! Differences are printed; accepted ones are listed in `tests/known-failures/api.tsv`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn known_failures() -> BTreeMap<String, String> {
    flux_tests::read_known_failures(
        &flux_tests::workspace_root().join("tests/known-failures/api.tsv"),
    )
}

/// Walks Flux's schema `theirs` and ours side by side, recording differences as
/// `(id, description)` where `id` is `<crd file>:<path>:<aspect>`.
fn compare_schema(
    file: &str,
    path: &str,
    theirs: &Value,
    ours: &Value,
    out: &mut Vec<(String, String)>,
) {
    let diff = |out: &mut Vec<(String, String)>, aspect: &str, detail: String| {
        out.push((format!("{file}:{path}:{aspect}"), detail));
    };
    let their_type = theirs.get("type");
    if their_type != ours.get("type") {
        diff(
            out,
            "type",
            format!("Flux {their_type:?}, ours {:?}", ours.get("type")),
        );
    }
    for flag in [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
    ] {
        let (a, b) = (theirs.get(flag), ours.get(flag));
        if a.and_then(Value::as_bool).unwrap_or(false)
            != b.and_then(Value::as_bool).unwrap_or(false)
        {
            diff(out, flag, format!("Flux {a:?}, ours {b:?}"));
        }
    }
    let enum_set = |schema: &Value| -> BTreeSet<String> {
        schema
            .get("enum")
            .and_then(Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(Value::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (their_enum, our_enum) = (enum_set(theirs), enum_set(ours));
    if their_enum != our_enum {
        diff(
            out,
            "enum",
            format!("Flux {their_enum:?}, ours {our_enum:?}"),
        );
    }
    if theirs.get("default") != ours.get("default") {
        diff(
            out,
            "default",
            format!(
                "Flux {:?}, ours {:?}",
                theirs.get("default"),
                ours.get("default")
            ),
        );
    }
    let required = |schema: &Value| -> BTreeSet<String> {
        schema
            .get("required")
            .and_then(Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (their_required, our_required) = (required(theirs), required(ours));
    if their_required != our_required {
        diff(
            out,
            "required",
            format!("Flux {their_required:?}, ours {our_required:?}"),
        );
    }

    let empty = serde_json::Map::new();
    let props = |schema: &Value| {
        schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (their_props, our_props) = (props(theirs), props(ours));
    for (name, their_prop) in &their_props {
        let child = format!("{path}.{name}");
        // kube-derive leaves the root apiVersion/kind/metadata to the API server, which
        // validates them for every CRD anyway.
        if path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&name.as_str()) {
            continue;
        }
        match our_props.get(name) {
            Some(our_prop) => compare_schema(file, &child, their_prop, our_prop, out),
            None => out.push((
                format!("{file}:{child}:missing"),
                "property missing in ours".into(),
            )),
        }
    }
    // metadata is left open by Flux's schema; kube's is open as well, so only spec/status
    // and nested objects are checked for extra properties.
    for name in our_props.keys() {
        if !their_props.contains_key(name) && !path.is_empty() {
            out.push((
                format!("{file}:{path}.{name}:extra"),
                "property not in Flux's schema".into(),
            ));
        }
    }
    match (theirs.get("items"), ours.get("items")) {
        (Some(a), Some(b)) => compare_schema(file, &format!("{path}[]"), a, b, out),
        (Some(_), None) => diff(out, "items", "items missing in ours".into()),
        (None, Some(_)) => diff(out, "items", "items not in Flux's schema".into()),
        (None, None) => {}
    }
    match (
        theirs.get("additionalProperties"),
        ours.get("additionalProperties"),
    ) {
        (Some(a @ Value::Object(_)), Some(b @ Value::Object(_))) => {
            compare_schema(file, &format!("{path}{{}}"), a, b, out);
        }
        (a, b) if a.is_some() != b.is_some() => {
            diff(
                out,
                "additionalProperties",
                format!("Flux {a:?}, ours {b:?}"),
            );
        }
        _ => {}
    }
}

fn compare_crd(file: &str, theirs: &Value, ours: &Value, out: &mut Vec<(String, String)>) {
    let mut diff = |aspect: &str, a: Option<&Value>, b: Option<&Value>| {
        if a != b {
            out.push((
                format!("{file}:{aspect}"),
                format!("Flux {a:?}, ours {b:?}"),
            ));
        }
    };
    diff(
        "metadata.name",
        theirs.pointer("/metadata/name"),
        ours.pointer("/metadata/name"),
    );
    diff(
        "metadata.annotations.substitute",
        theirs.pointer("/metadata/annotations/kustomize.toolkit.fluxcd.io~1substitute"),
        ours.pointer("/metadata/annotations/kustomize.toolkit.fluxcd.io~1substitute"),
    );
    diff(
        "spec.group",
        theirs.pointer("/spec/group"),
        ours.pointer("/spec/group"),
    );
    diff(
        "spec.scope",
        theirs.pointer("/spec/scope"),
        ours.pointer("/spec/scope"),
    );
    for name in [
        "kind",
        "listKind",
        "plural",
        "singular",
        "shortNames",
        "categories",
    ] {
        let pointer = format!("/spec/names/{name}");
        // The API server defaults an absent listKind to `<kind>List` (kube-derive omits it).
        let list_kind = |crd: &Value| {
            crd.pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .map(|kind| Value::String(format!("{kind}List")))
        };
        let normalise = |crd: &Value, v: Option<&Value>| match v {
            Some(Value::Array(items)) if items.is_empty() => None,
            None if name == "listKind" => list_kind(crd),
            other => other.cloned(),
        };
        let (a, b) = (
            normalise(theirs, theirs.pointer(&pointer)),
            normalise(ours, ours.pointer(&pointer)),
        );
        diff(&format!("spec.names.{name}"), a.as_ref(), b.as_ref());
    }
    let versions = |crd: &Value| {
        crd.pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (their_versions, our_versions) = (versions(theirs), versions(ours));
    let Some(their_version) = their_versions
        .iter()
        .find(|v| v["storage"] == Value::Bool(true))
    else {
        out.push((
            format!("{file}:versions"),
            "Flux CRD has no storage version".into(),
        ));
        return;
    };
    let name = &their_version["name"];
    let Some(our_version) = our_versions.iter().find(|v| &v["name"] == name) else {
        out.push((
            format!("{file}:versions"),
            format!("we do not serve version {name}"),
        ));
        return;
    };
    // An empty `subresources: {}` is the same as none.
    let subresources = |version: &Value| {
        version
            .get("subresources")
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
            .cloned()
    };
    diff(
        "version.subresources",
        subresources(their_version).as_ref(),
        subresources(our_version).as_ref(),
    );
    for key in [
        "served",
        "storage",
        "additionalPrinterColumns",
        "deprecated",
    ] {
        diff(
            &format!("version.{key}"),
            their_version.get(key),
            our_version.get(key),
        );
    }
    compare_schema(
        file,
        "",
        &their_version["schema"]["openAPIV3Schema"],
        &our_version["schema"]["openAPIV3Schema"],
        out,
    );
}

#[test]
fn generated_crds_match_flux_crds() {
    let Some(shared) = flux_tests::shared_dir("flux-api CRDs") else {
        return;
    };
    let dir = shared.join("flux-api/crds");
    let ours: BTreeMap<String, Value> = flux_api::crds()
        .into_iter()
        .map(|crd| {
            let value = serde_json::to_value(&crd).expect("a CRD serialises to JSON");
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (name, value)
        })
        .collect();
    let known = known_failures();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("crds dir readable")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CRDs in {}", dir.display());

    let (mut unexpected, mut expected, mut matched) = (Vec::new(), 0usize, 0usize);
    let mut seen_known = BTreeSet::new();
    for path in &files {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let theirs = load_yaml(path);
        let name = theirs
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(our_crd) = ours.get(name) else {
            unexpected.push((
                format!("{file}:crd"),
                format!("no generated CRD named {name}"),
            ));
            continue;
        };
        let mut diffs = Vec::new();
        compare_crd(&file, &theirs, our_crd, &mut diffs);
        if diffs.is_empty() {
            matched += 1;
        }
        for (id, detail) in diffs {
            if let Some(reason) = known.get(&id) {
                println!("known difference {id}: {detail} ({reason})");
                seen_known.insert(id);
                expected += 1;
            } else {
                unexpected.push((id, detail));
            }
        }
    }
    for id in known
        .keys()
        .filter(|id| id.contains(".yaml:") && !seen_known.contains(*id))
    {
        println!("NOTICE: known difference {id} no longer occurs; remove it from api.tsv");
    }
    println!(
        "CRDs: {} compared, {matched} identical in every checked aspect, {expected} known differences, {} unexpected",
        files.len(),
        unexpected.len()
    );
    for (id, detail) in &unexpected {
        println!("DIFF {id}: {detail}");
    }
    assert!(
        unexpected.is_empty(),
        "{} unexpected CRD differences (see output)",
        unexpected.len()
    );
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
