//! Small helpers over Kubernetes objects as JSON values, shared by the offline renderer and
//! the controllers.

use std::collections::BTreeMap;

use base64::Engine as _;
use flux_kustomize::postbuild;
use serde_json::{Map, Value};

/// The string entries of `metadata.<field>` (labels or annotations).
pub fn metadata_entries<'a>(object: &'a Value, field: &str) -> Vec<(&'a str, &'a str)> {
    object
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object opts out of post-build substitution (Flux's label or annotation).
pub fn substitution_disabled(object: &Value) -> bool {
    postbuild::is_disabled(
        metadata_entries(object, "labels"),
        metadata_entries(object, "annotations"),
    )
}

/// Sets `metadata.<field>.<key>`, creating the maps on the way.
pub fn set_metadata(object: &mut Value, field: &str, key: &str, value: &str) {
    let Some(root) = object.as_object_mut() else {
        return;
    };
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let map = metadata
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    if let Some(map) = map.as_object_mut() {
        map.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// A ConfigMap's `data` (plus `binaryData` skipped), or a Secret's decoded `data` and
/// `stringData`, as strings.
pub fn string_data(object: &Value, is_secret: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(data)) = object.get("data") {
        for (k, v) in data {
            let text = scalar_string(v);
            let text = if is_secret {
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or(text)
            } else {
                text
            };
            out.insert(k.clone(), text);
        }
    }
    if is_secret {
        if let Some(Value::Object(data)) = object.get("stringData") {
            for (k, v) in data {
                out.insert(k.clone(), scalar_string(v));
            }
        }
    }
    out
}

/// A scalar as the string Flux's substitution sees.
pub fn scalar_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
