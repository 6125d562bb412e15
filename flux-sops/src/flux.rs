//! Flux kustomize-controller's decryption step, independent of any kustomize types:
//! decrypting SOPS-encrypted Kubernetes resources after a build, and SOPS-encrypted files
//! consumed by generators before it.

use base64::Engine;

use crate::stores::json::{from_json, to_json};
use crate::tree::{MapItem, Value};
use crate::{DecryptOptions, Error, Format, KeySet};

/// The annotation that turns decryption off for one resource.
pub const DECRYPT_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/decrypt";

/// Files larger than this are not decrypted (Flux's limit).
pub const MAX_FILE_SIZE: usize = 5 * 1024 * 1024;

/// The marker of an encrypted file in each store, as Flux detects them (byte-exact).
pub fn detect_format(data: &[u8]) -> Option<Format> {
    let contains = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
    if contains(b"mac: ENC[") {
        Some(Format::Yaml)
    } else if contains(b"\"mac\": \"ENC[") {
        Some(Format::Json)
    } else if contains(b"sops_mac=ENC[") {
        Some(Format::Dotenv)
    } else if contains(b"[sops]") {
        Some(Format::Ini)
    } else {
        None
    }
}

/// The output format Flux uses for a Secret data key or generator file name.
#[allow(clippy::case_sensitive_file_extension_comparisons)] // lower-cased first
pub fn format_for_name(name: &str) -> Format {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        Format::Yaml
    } else if lower.ends_with(".json") || lower.ends_with(".dockerconfigjson") {
        Format::Json
    } else if lower.ends_with(".env") {
        Format::Dotenv
    } else if lower.ends_with(".ini") {
        Format::Ini
    } else {
        Format::Binary
    }
}

fn resource_name(resource: &serde_json::Value) -> String {
    let kind = resource.get("kind").and_then(|v| v.as_str()).unwrap_or("?");
    let meta = resource.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(|v| v.as_str())
    {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// Whether the resource carries a top-level `sops` map with a non-empty `mac`.
pub fn is_sops_encrypted(resource: &serde_json::Value) -> bool {
    resource
        .get("sops")
        .and_then(|s| s.get("mac"))
        .and_then(|m| m.as_str())
        .is_some_and(|m| !m.is_empty())
}

fn decryption_disabled(resource: &serde_json::Value) -> bool {
    resource
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(DECRYPT_ANNOTATION))
        .and_then(|v| v.as_str())
        .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
}

/// Sorts every mapping by key, as Go's map marshalling does.
fn sorted(value: Value) -> Value {
    match value {
        Value::Map(items) => {
            let mut entries: Vec<(String, Value)> = items
                .into_iter()
                .filter_map(|i| match i {
                    MapItem::Entry(k, v) => Some((k, sorted(v))),
                    MapItem::Comment(_) => None,
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| MapItem::Entry(k, v))
                    .collect(),
            )
        }
        Value::Seq(items) => Value::Seq(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Decrypts one resource as kustomize-controller does. Returns `Ok(None)` when nothing
/// was encrypted (or decryption is disabled by annotation), the decrypted resource
/// otherwise. An encrypted resource that cannot be decrypted is an error naming it.
pub fn decrypt_resource(
    resource: &serde_json::Value,
    keys: &KeySet,
) -> Result<Option<serde_json::Value>, Error> {
    if decryption_disabled(resource) {
        return Ok(None);
    }
    let name = resource_name(resource);
    let wrap = |source: Error| Error::Resource {
        resource: name.clone(),
        source: Box::new(source),
    };
    let options = DecryptOptions {
        ignore_mac: true,
        check_version: false,
    };
    if is_sops_encrypted(resource) {
        // The whole resource went through JSON with sorted keys; the MAC is not checked.
        let tree = sorted(from_json(resource));
        let decrypted = crate::decrypt_tree(tree, keys, options, &name).map_err(wrap)?;
        return Ok(Some(to_json(&decrypted)));
    }
    if resource.get("kind").and_then(|k| k.as_str()) != Some("Secret") {
        return Ok(None);
    }
    let Some(data) = resource.get("data").and_then(|d| d.as_object()) else {
        return Ok(None);
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut changed = false;
    let mut new_data = data.clone();
    for (key, value) in data {
        let Some(encoded) = value.as_str() else {
            continue;
        };
        let Ok(bytes) = b64.decode(encoded) else {
            continue;
        };
        let Some(input_format) = detect_format(&bytes) else {
            continue;
        };
        let output_format = format_for_name(key);
        let file = format!("{name} data.{key}");
        let plain = crate::decrypt(&bytes, input_format, output_format, keys, options, &file)
            .map_err(wrap)?;
        new_data.insert(key.clone(), serde_json::Value::String(b64.encode(&*plain)));
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    let mut out = resource.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.insert("data".to_string(), serde_json::Value::Object(new_data));
    }
    Ok(Some(out))
}

/// Decrypts a file a kustomization consumes (generator `files`/`envs`, patches) in its
/// own format. `name` picks the format by extension (`.env`, `.json`, `.yaml`/`.yml`,
/// `.ini`, else binary). Returns `Ok(None)` when the file carries no SOPS marker or is
/// larger than [`MAX_FILE_SIZE`].
pub fn decrypt_file(name: &str, data: &[u8], keys: &KeySet) -> Result<Option<Vec<u8>>, Error> {
    if data.len() > MAX_FILE_SIZE {
        return Ok(None);
    }
    let format = format_for_name(name);
    let Some(detected) = detect_format(data) else {
        return Ok(None);
    };
    // A binary file's envelope is JSON.
    if format == Format::Binary && detected != Format::Json {
        return Ok(None);
    }
    let options = DecryptOptions {
        ignore_mac: true,
        check_version: false,
    };
    let plain = crate::decrypt(data, format, format, keys, options, name)?;
    Ok(Some(plain.to_vec()))
}
