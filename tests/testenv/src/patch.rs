//! Patches: JSON patch, JSON merge patch, strategic merge patch, and the list shapes
//! (associative by key, set, atomic) that strategic merge and server-side apply share.

use crate::error::ApiError;
use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListShape {
    /// Items are identified by these keys (`containers` by `name`).
    Map(Vec<String>),
    /// A set of scalars (`finalizers`).
    Set,
    /// Replaced as a whole.
    Atomic,
}

/// The list shape for a field of a built-in kind (the patchMergeKey / listMapKeys that matter).
pub fn builtin_list_shape(field: &str, items: &[&Value]) -> ListShape {
    let keyed = |k: &str| ListShape::Map(vec![k.to_string()]);
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "env"
        | "resourceClaims" => keyed("name"),
        "volumeMounts" => keyed("mountPath"),
        "volumeDevices" => keyed("devicePath"),
        "hostAliases" => keyed("ip"),
        "ownerReferences" => keyed("uid"),
        "conditions" => keyed("type"),
        "topologySpreadConstraints" => keyed("topologyKey"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                keyed("containerPort")
            } else {
                keyed("port")
            }
        }
        "finalizers" => ListShape::Set,
        _ => ListShape::Atomic,
    }
}

/// The list shape from a CRD schema node (`x-kubernetes-list-type`), falling back to
/// the metadata rules (`ownerReferences`, `finalizers`) when the schema is silent.
pub fn list_shape(
    field: &str,
    schema: Option<&Value>,
    items: &[&Value],
    custom: bool,
) -> ListShape {
    if let Some(node) = schema {
        match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys = node
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if !keys.is_empty() {
                    return ListShape::Map(keys);
                }
            }
            Some("set") => return ListShape::Set,
            Some(_) => return ListShape::Atomic,
            None => {}
        }
    }
    if custom && !matches!(field, "ownerReferences" | "finalizers") {
        return ListShape::Atomic;
    }
    builtin_list_shape(field, items)
}

/// The schema node for a child field of an object node.
pub fn schema_child<'a>(node: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let node = node?;
    node.get("properties")
        .and_then(|p| p.get(field))
        .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
}

/// The schema node for the items of an array node.
pub fn schema_items(node: Option<&Value>) -> Option<&Value> {
    node?.get("items")
}

/// The key values identifying a list item (None when a key is missing).
pub fn item_key(item: &Value, keys: &[String]) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for k in keys {
        out.insert(k.clone(), item.get(k)?.clone());
    }
    Some(out)
}

/// Applies an RFC 6902 JSON patch.
pub fn apply_json_patch(doc: &mut Value, patch: &[u8]) -> Result<(), ApiError> {
    let decode_err =
        |e: serde_json::Error| ApiError::bad_request(format!("error decoding patch: {e}"));
    let raw: Vec<Value> = serde_json::from_slice(patch).map_err(decode_err)?;
    // Apply op by op on a copy: the API's JSON patch treats a missing path as null in `test`
    // (kube's finalizer helper relies on that), and a failed operation changes nothing.
    let mut work = doc.clone();
    for op in raw {
        let is_null_test = op["op"] == "test" && op.get("value").is_some_and(Value::is_null);
        if is_null_test {
            let path = op["path"].as_str().unwrap_or_default();
            if work.pointer(path).is_some_and(|v| !v.is_null()) {
                return Err(ApiError::unprocessable(format!(
                    "testing value {path} failed: test failed"
                )));
            }
            continue;
        }
        let single: json_patch::Patch =
            serde_json::from_value(Value::Array(vec![op])).map_err(decode_err)?;
        // The API answers a failed operation (including a failed `test`) with 422.
        json_patch::patch(&mut work, &single)
            .map_err(|e| ApiError::unprocessable(format!("{e}")))?;
    }
    *doc = work;
    Ok(())
}

/// Applies an RFC 7386 JSON merge patch.
pub fn apply_merge_patch(doc: &mut Value, patch: &[u8]) -> Result<(), ApiError> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request("merge patch must be a JSON object"));
    }
    json_patch::merge(doc, &patch);
    Ok(())
}

/// Applies a strategic merge patch to an object of a built-in kind.
pub fn apply_strategic_merge_patch(doc: &mut Value, patch: &[u8]) -> Result<(), ApiError> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(
            "strategic merge patch must be a JSON object",
        ));
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Value::Object(target) = doc {
        merge_map(target, &patch)?;
    }
    Ok(())
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), ApiError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = match strip_directives(&Value::Object(patch.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some(other) if other != "merge" => {
            return Err(ApiError::bad_request(format!(
                "unknown patch type: {other}"
            )));
        }
        _ => {}
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (target.get_mut(field), value)
            {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(pm) => match target.get_mut(key) {
                Some(Value::Object(tm)) => merge_map(tm, pm)?,
                _ => {
                    if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                        target.remove(key);
                    } else {
                        target.insert(key.clone(), strip_directives(value));
                    }
                }
            },
            Value::Array(items) => {
                let current = target.remove(key);
                let merged = merge_list(key, current, items)?;
                target.insert(key.clone(), merged);
            }
            scalar => {
                target.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (key, value) in patch {
        if let (Some(field), Value::Array(order)) = (key.strip_prefix("$setElementOrder/"), value) {
            if let Some(Value::Array(list)) = target.get_mut(field) {
                reorder(field, list, order);
            }
        }
    }
    Ok(())
}

fn merge_list(field: &str, current: Option<Value>, patch: &[Value]) -> Result<Value, ApiError> {
    let mut current = match current {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    // A lone {"$patch": "replace"} item replaces the list with the remaining items.
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(Value::Array(
            patch
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        ));
    }
    let sample: Vec<&Value> = patch.iter().chain(current.iter()).collect();
    match builtin_list_shape(field, &sample) {
        ListShape::Map(keys) => {
            for item in patch {
                let Some(key) = item_key(item, &keys) else {
                    return Err(ApiError::bad_request(format!(
                        "map: {item} does not contain declared merge key: {}",
                        keys.join(",")
                    )));
                };
                let pos = current
                    .iter()
                    .position(|c| item_key(c, &keys).as_ref() == Some(&key));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        current.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        if let (Value::Object(tm), Value::Object(pm)) = (&mut current[i], item) {
                            merge_map(tm, pm)?;
                        }
                    }
                    (None, false) => current.push(strip_directives(item)),
                }
            }
            Ok(Value::Array(current))
        }
        ListShape::Set => {
            for item in patch {
                if !current.contains(item) {
                    current.push(item.clone());
                }
            }
            Ok(Value::Array(current))
        }
        ListShape::Atomic => Ok(Value::Array(patch.iter().map(strip_directives).collect())),
    }
}

/// Orders `list` by `order` (items named in `order` first, in that order; others keep their place after).
fn reorder(field: &str, list: &mut Vec<Value>, order: &[Value]) {
    let shape = {
        let sample: Vec<&Value> = order.iter().chain(list.iter()).collect();
        builtin_list_shape(field, &sample)
    };
    let position = |item: &Value| -> Option<usize> {
        match &shape {
            ListShape::Map(keys) => {
                let key = item_key(item, keys)?;
                order
                    .iter()
                    .position(|o| item_key(o, keys).as_ref() == Some(&key))
            }
            _ => order.iter().position(|o| o == item),
        }
    };
    let mut indexed: Vec<(usize, usize, Value)> = list
        .drain(..)
        .enumerate()
        .map(|(i, v)| (position(&v).unwrap_or(usize::MAX), i, v))
        .collect();
    indexed.sort_by_key(|(p, i, _)| (*p, *i));
    list.extend(indexed.into_iter().map(|(_, _, v)| v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(doc: Value, patch: Value) -> Value {
        let mut doc = doc;
        apply_strategic_merge_patch(&mut doc, patch.to_string().as_bytes()).unwrap();
        doc
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let doc = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "a", "image": "a:2",
                "env": [{"name": "Y", "value": "2"}]}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(
            out["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(out["spec"]["containers"][1]["image"], "b:1");
    }

    #[test]
    fn delete_directive_and_null_and_set_order() {
        let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"ports": [{"port": 80}, {"port": 443}]}});
        let out = smp(
            doc,
            json!({"metadata": {"labels": {"a": null}},
                "spec": {"$setElementOrder/ports": [{"port": 8080}, {"port": 443}],
                    "ports": [{"port": 80, "$patch": "delete"}, {"port": 8080}]}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["spec"]["ports"], json!([{"port": 8080}, {"port": 443}]));
    }

    #[test]
    fn atomic_lists_replace_and_finalizers_union() {
        let doc = json!({"metadata": {"finalizers": ["a"]}, "spec": {"args": ["x", "y"]}});
        let out = smp(
            doc,
            json!({"metadata": {"finalizers": ["b"]}, "spec": {"args": ["z"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(out["spec"]["args"], json!(["z"]));
    }

    #[test]
    fn failed_json_patch_test_is_422() {
        let mut doc = json!({"a": 1});
        let err =
            apply_json_patch(&mut doc, br#"[{"op":"test","path":"/a","value":2}]"#).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(doc, json!({"a": 1}));
        // A null test on a missing path passes (as in the API), then the add applies.
        let ok =
            br#"[{"op":"test","path":"/b","value":null},{"op":"add","path":"/b","value":[1]}]"#;
        apply_json_patch(&mut doc, ok).unwrap();
        assert_eq!(doc, json!({"a": 1, "b": [1]}));
        let bad = br#"[{"op":"test","path":"/b","value":null}]"#;
        assert_eq!(apply_json_patch(&mut doc, bad).unwrap_err().code, 422);
    }

    #[test]
    fn schema_list_types_win() {
        let node = json!({"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["id"]});
        assert_eq!(
            list_shape("things", Some(&node), &[], true),
            ListShape::Map(vec!["id".into()])
        );
        assert_eq!(list_shape("conditions", None, &[], true), ListShape::Atomic);
        assert_eq!(list_shape("finalizers", None, &[], true), ListShape::Set);
    }
}
