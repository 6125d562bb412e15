//! Field ownership: `managedFields` (FieldsV1) bookkeeping for updates and server-side apply.

use crate::error::{ApiError, Cause};
use crate::patch::{item_key, list_shape, schema_child, schema_items, ListShape};
use crate::util::now_rfc3339;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One path element, encoded as in FieldsV1 (`f:name`, `k:{"name":"a"}`, `v:"x"`).
pub type FieldPath = Vec<String>;
/// A set of owned field paths.
pub type FieldSet = BTreeSet<FieldPath>;

/// What part of an object an operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource: everything except `status` when a status subresource exists.
    Main {
        /// Whether `status` is a separate subresource (then excluded here).
        status_separate: bool,
    },
    /// The `status` subresource.
    Status,
}

/// Shape information for walking an object.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    /// CRD schema root, for custom resources.
    pub schema: Option<&'a Value>,
    /// Whether the object is a custom resource.
    pub custom: bool,
}

fn walk(
    value: &Value,
    shape: Shape,
    schema: Option<&Value>,
    field: &str,
    prefix: &mut FieldPath,
    out: &mut FieldSet,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(format!("f:{k}"));
                walk(v, shape, schema_child(schema, k), k, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            let refs: Vec<&Value> = items.iter().collect();
            match list_shape(field, schema, &refs, shape.custom) {
                ListShape::Map(keys) => {
                    for item in items {
                        let Some(key) = item_key(item, &keys) else {
                            out.insert(prefix.clone());
                            continue;
                        };
                        prefix.push(format!("k:{}", Value::Object(key)));
                        out.insert(prefix.clone());
                        walk(item, shape, schema_items(schema), "", prefix, out);
                        prefix.pop();
                    }
                }
                ListShape::Set => {
                    for item in items {
                        prefix.push(format!("v:{item}"));
                        out.insert(prefix.clone());
                        prefix.pop();
                    }
                }
                ListShape::Atomic => {
                    out.insert(prefix.clone());
                }
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The field paths an object sets, within `scope`.
pub fn collect(obj: &Value, shape: Shape, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let mut prefix = Vec::new();
    for (k, v) in map {
        let include = match (scope, k.as_str()) {
            (_, "apiVersion" | "kind") => false,
            (Scope::Status, key) => key == "status",
            (Scope::Main { status_separate }, "status") => !status_separate,
            _ => true,
        };
        if !include {
            continue;
        }
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(fv) = meta.get(field) {
                        prefix.clear();
                        prefix.push("f:metadata".into());
                        prefix.push(format!("f:{field}"));
                        walk(fv, shape, None, field, &mut prefix, &mut out);
                    }
                }
            }
            continue;
        }
        prefix.clear();
        prefix.push(format!("f:{k}"));
        walk(
            v,
            shape,
            schema_child(shape.schema, k),
            k,
            &mut prefix,
            &mut out,
        );
    }
    out
}

fn key_matches(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(k, v)| item.get(k) == Some(v))
}

/// The value at a field path.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        cur = step(cur, el)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, el: &str) -> Option<&'a Value> {
    if let Some(name) = el.strip_prefix("f:") {
        cur.get(name)
    } else if let Some(key) = el.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        cur.as_array()?.iter().find(|i| key_matches(i, &key))
    } else if let Some(v) = el.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        cur.as_array()?.iter().find(|i| **i == v)
    } else if let Some(i) = el.strip_prefix("i:") {
        cur.as_array()?.get(i.parse::<usize>().ok()?)
    } else {
        None
    }
}

/// Removes the value at a field path; empty maps left behind are removed too.
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = &mut *obj;
    for el in parents {
        let next = step_mut(cur, el);
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(name);
        }
    } else if let Some(key) = last.strip_prefix("k:") {
        if let (Ok(key), Some(a)) = (
            serde_json::from_str::<Map<String, Value>>(key),
            cur.as_array_mut(),
        ) {
            a.retain(|i| !key_matches(i, &key));
        }
    } else if let Some(v) = last.strip_prefix("v:") {
        if let (Ok(v), Some(a)) = (serde_json::from_str::<Value>(v), cur.as_array_mut()) {
            a.retain(|i| *i != v);
        }
    }
    // Drop maps emptied by the removal (but never the metadata or spec stanzas).
    let top_stanza = parents.len() == 1 && matches!(parents[0].as_str(), "f:metadata" | "f:spec");
    if !parents.is_empty() && !top_stanza && cur.as_object().is_some_and(Map::is_empty) {
        remove_at(obj, parents);
    }
}

fn step_mut<'a>(cur: &'a mut Value, el: &str) -> Option<&'a mut Value> {
    if let Some(name) = el.strip_prefix("f:") {
        cur.get_mut(name)
    } else if let Some(key) = el.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        cur.as_array_mut()?
            .iter_mut()
            .find(|i| key_matches(i, &key))
    } else if let Some(v) = el.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        cur.as_array_mut()?.iter_mut().find(|i| **i == v)
    } else {
        None
    }
}

/// Renders a path the way apply conflicts name fields (`.spec.containers[name="a"].image`).
pub fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for el in path {
        if let Some(name) = el.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = el.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(out, "[{}]", parts.join(","));
        } else if let Some(v) = el.strip_prefix("v:") {
            let _ = write!(out, "[={v}]");
        }
    }
    out
}

/// FieldsV1 JSON for a set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for el in path {
            let entry = node.entry(el.clone()).or_insert_with(|| json!({}));
            node = entry.as_object_mut().expect("nodes are objects");
        }
        node.insert(".".into(), json!({}));
    }
    // A member with no children is written as `{}`, one with children keeps `.`.
    fn tidy(map: &mut Map<String, Value>) {
        for v in map.values_mut() {
            if let Value::Object(child) = v {
                if child.len() == 1 && child.contains_key(".") {
                    child.clear();
                } else {
                    tidy(child);
                }
            }
        }
    }
    tidy(&mut root);
    Value::Object(root)
}

/// Parses FieldsV1 JSON.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn go(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        let Some(map) = v.as_object() else { return };
        for (k, child) in map {
            if k == "." {
                out.insert(prefix.clone());
                continue;
            }
            prefix.push(k.clone());
            if child.as_object().is_some_and(Map::is_empty) {
                out.insert(prefix.clone());
            } else {
                go(child, prefix, out);
            }
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

/// One managedFields entry, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the fields were set through.
    pub api_version: String,
    /// `status` or empty.
    pub subresource: String,
    /// Last change time.
    pub time: String,
    /// Owned fields.
    pub fields: FieldSet,
}

/// Reads `metadata.managedFields`.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `metadata.managedFields` (dropping entries that own nothing).
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = e.subresource.clone().into();
            }
            v
        })
        .collect();
    let meta = crate::util::metadata_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Records an Update by `manager`: it takes ownership of what changed, others lose it.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    shape: Shape,
    scope: Scope,
) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let new_fields = collect(new, shape, scope);
    let old_fields = old.map(|o| collect(o, shape, scope)).unwrap_or_default();
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| {
            let before = old.and_then(|o| value_at(o, p));
            let is_item = p.last().is_some_and(|l| l.starts_with("k:"));
            if is_item {
                before.is_none()
            } else {
                before != value_at(new, p)
            }
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_fields.difference(&new_fields).cloned().collect();
    let subresource = if scope == Scope::Status { "status" } else { "" };
    for e in &mut entries {
        if e.manager == manager && e.operation == "Update" && e.subresource == subresource {
            continue;
        }
        e.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    let now = now_rfc3339();
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource)
    {
        Some(e) => {
            e.fields.retain(|p| !removed.contains(p));
            if !changed.is_empty() {
                e.fields.extend(changed);
                e.time = now;
                e.api_version = api_version.to_string();
            }
        }
        None if !changed.is_empty() => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
            time: now,
            fields: changed,
        }),
        None => {}
    }
    write_entries(new, &entries);
}

fn merge_applied(
    live: &mut Value,
    applied: &Value,
    shape: Shape,
    schema: Option<&Value>,
    field: &str,
) {
    match (live, applied) {
        (Value::Object(lm), Value::Object(am)) => {
            for (k, av) in am {
                let child_schema = schema_child(schema, k);
                match lm.get_mut(k) {
                    Some(lv) => merge_applied(lv, av, shape, child_schema, k),
                    None => {
                        lm.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(la), Value::Array(aa)) => {
            let refs: Vec<&Value> = aa.iter().chain(la.iter()).collect();
            match list_shape(field, schema, &refs, shape.custom) {
                ListShape::Map(keys) => {
                    let mut out = Vec::new();
                    // Applied items first (in applied order), then items owned by others.
                    for item in aa {
                        let key = item_key(item, &keys);
                        let existing = key.as_ref().and_then(|k| {
                            la.iter()
                                .position(|l| item_key(l, &keys).as_ref() == Some(k))
                        });
                        match existing {
                            Some(i) => {
                                let mut merged = la[i].clone();
                                merge_applied(&mut merged, item, shape, schema_items(schema), "");
                                out.push(merged);
                            }
                            None => out.push(item.clone()),
                        }
                    }
                    for l in la.iter() {
                        let key = item_key(l, &keys);
                        if !aa.iter().any(|a| item_key(a, &keys) == key) {
                            out.push(l.clone());
                        }
                    }
                    *la = out;
                }
                ListShape::Set => {
                    for item in aa {
                        if !la.contains(item) {
                            la.push(item.clone());
                        }
                    }
                }
                ListShape::Atomic => la.clone_from(aa),
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

/// Server-side apply of `applied` by `manager` onto `live` (None when creating).
///
/// Returns the merged object with updated managedFields, or a 409 listing conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    shape: Shape,
    scope: Scope,
    conflict_ctx: (&str, &str, &str),
) -> Result<Value, ApiError> {
    let applied_fields = collect(applied, shape, scope);
    let mut entries = live.map(read_entries).unwrap_or_default();
    let subresource = if scope == Scope::Status { "status" } else { "" };
    let is_mine =
        |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == subresource;
    if let Some(live) = live {
        let mut conflicts: Vec<(String, String, FieldPath)> = Vec::new();
        for e in entries.iter().filter(|e| !is_mine(e)) {
            for p in applied_fields.intersection(&e.fields) {
                if p.last().is_some_and(|l| l.starts_with("k:")) {
                    continue;
                }
                if value_at(live, p) != value_at(applied, p) {
                    conflicts.push((e.manager.clone(), e.api_version.clone(), p.clone()));
                }
            }
        }
        // kubectl's move from client-side to server-side apply: conflicts on fields recorded in
        // the last-applied annotation are allowed for the `kubectl` manager (as the API does).
        let mut force = force;
        if manager == "kubectl" && !conflicts.is_empty() {
            if let Some(last) = live["metadata"]["annotations"]
                ["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
            {
                let allowed = collect(&last, shape, scope);
                if conflicts.iter().all(|(_, _, p)| allowed.contains(p)) {
                    force = true;
                } else {
                    conflicts.retain(|(_, _, p)| !allowed.contains(p));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let causes: Vec<Cause> = conflicts
                .iter()
                .map(|(m, v, p)| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with \"{m}\" using {v}"),
                    field: render_path(p),
                })
                .collect();
            let message = if causes.len() == 1 {
                format!(
                    "Apply failed with 1 conflict: {}: {}",
                    causes[0].message, causes[0].field
                )
            } else {
                let lines: Vec<String> = causes
                    .iter()
                    .map(|c| format!("- {}: {}", c.message, c.field))
                    .collect();
                format!(
                    "Apply failed with {} conflicts: {}",
                    causes.len(),
                    lines.join("\n")
                )
            };
            let (group, resource, name) = conflict_ctx;
            return Err(ApiError::conflict_with(
                group, resource, name, message, causes,
            ));
        }
        if force {
            // Forcing takes only the conflicting fields; equal values stay shared.
            for e in entries.iter_mut().filter(|e| !is_mine(e)) {
                e.fields.retain(|p| {
                    !conflicts
                        .iter()
                        .any(|(m, _, cp)| *m == e.manager && cp == p)
                });
            }
        }
    }
    let mut merged = live.cloned().unwrap_or_else(|| json!({}));
    // Fields this manager applied before but not now are removed unless someone else owns them.
    let previously: FieldSet = entries
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut dropped: Vec<&FieldPath> = previously
        .iter()
        .filter(|p| !applied_fields.contains(*p))
        .filter(|p| {
            !entries
                .iter()
                .filter(|e| !is_mine(e))
                .any(|e| e.fields.contains(*p))
        })
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        remove_at(&mut merged, p);
    }
    let mut applied_scoped = applied.clone();
    if let Some(m) = applied_scoped.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "labels"
                        | "annotations"
                        | "finalizers"
                        | "ownerReferences"
                        | "name"
                        | "namespace"
                        | "generateName"
                )
            });
        }
        match scope {
            Scope::Status => m.retain(|k, _| k == "status"),
            Scope::Main {
                status_separate: true,
            } => {
                m.remove("status");
            }
            Scope::Main { .. } => {}
        }
    }
    merge_applied(&mut merged, &applied_scoped, shape, shape.schema, "");
    let now = now_rfc3339();
    let api_version = applied["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    entries.retain(|e| !is_mine(e));
    entries.insert(
        0,
        Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version,
            subresource: subresource.to_string(),
            time: now,
            fields: applied_fields,
        },
    );
    write_entries(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        schema: None,
        custom: false,
    };
    const MAIN: Scope = Scope::Main {
        status_separate: true,
    };

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let set = collect(&obj, SHAPE, MAIN);
        let v1 = to_fields_v1(&set);
        assert_eq!(v1["f:metadata"]["f:labels"]["f:a"], json!({}));
        assert_eq!(
            v1["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."],
            json!({})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_conflicts_then_force_takes_ownership() {
        let ctx = ("", "configmaps", "c");
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "a", "x": "1"}});
        let live = apply(None, &a, "alice", false, SHAPE, MAIN, ctx).unwrap();
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "b"}});
        let err = apply(Some(&live), &b, "bob", false, SHAPE, MAIN, ctx).unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(err.details.causes[0].field, ".data.k");
        assert!(err.message.contains("conflict with \"alice\""));
        let forced = apply(Some(&live), &b, "bob", true, SHAPE, MAIN, ctx).unwrap();
        assert_eq!(forced["data"], json!({"k": "b", "x": "1"}));
        let entries = read_entries(&forced);
        let alice = entries.iter().find(|e| e.manager == "alice").unwrap();
        assert!(!alice
            .fields
            .contains(&vec!["f:data".to_string(), "f:k".to_string()]));
        // Same value from another manager: shared ownership, no conflict.
        let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
        assert!(apply(Some(&forced), &same, "carol", false, SHAPE, MAIN, ctx).is_ok());
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let ctx = ("", "configmaps", "c");
        let a =
            json!({"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
        let live = apply(None, &a, "m", false, SHAPE, MAIN, ctx).unwrap();
        let a2 = json!({"metadata": {"name": "c", "labels": {"a": "1"}}});
        let out = apply(Some(&live), &a2, "m", false, SHAPE, MAIN, ctx).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "1"}));
        assert!(out.get("data").is_none());
    }

    #[test]
    fn update_transfers_ownership_of_changed_fields() {
        let ctx = ("", "configmaps", "c");
        let a = json!({"metadata": {"name": "c"}, "data": {"k": "v"}});
        let live = apply(None, &a, "applier", false, SHAPE, MAIN, ctx).unwrap();
        let mut new = live.clone();
        new["data"]["k"] = "w".into();
        record_update(Some(&live), &mut new, "editor", "v1", SHAPE, MAIN);
        let entries = read_entries(&new);
        assert_eq!(entries.len(), 1, "applier lost its only field: {entries:?}");
        assert_eq!(entries[0].manager, "editor");
    }
}
