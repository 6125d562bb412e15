//! Patches: strategic merge (with kustomize's directives), JSON 6902, target
//! selectors, and the builtin transformer plugins configured from files.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fieldspec::{FieldSpec, TransformerConfig};
use crate::filters;
use crate::generators::Failure;
use crate::openapi::{ListRule, Node};
use crate::resource::{Gvk, Resource};
use crate::types::{scalar_string, Kustomization, Patch, Selector};
use crate::yaml;

type Reader<'a> = dyn FnMut(&str) -> Result<(PathBuf, String)> + 'a;

fn fail(kfile: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::Transform {
        path: kfile.to_path_buf(),
        field: field.to_string(),
        message: message.into(),
    }
}

/// A patch body: JSON 6902 operations or strategic-merge documents.
enum Body {
    Json6902(Value),
    Strategic(Vec<Value>),
}

fn parse_body(text: &str) -> std::result::Result<Body, String> {
    let docs = yaml::parse_documents(text)?;
    if let [Value::Array(_)] = docs.as_slice() {
        return Ok(Body::Json6902(
            docs.into_iter().next().unwrap_or(Value::Null),
        ));
    }
    Ok(Body::Strategic(docs))
}

/// The `patchesStrategicMerge` field.
pub(crate) fn strategic_merge_field(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    read: &mut Reader<'_>,
) -> Result<()> {
    for entry in &k.patches_strategic_merge {
        let text = scalar_string(entry);
        let docs = if text.contains('\n') || !looks_like_path(&text) {
            yaml::parse_documents(&text)
        } else {
            let (_, body) = read(&text)?;
            yaml::parse_documents(&body)
        }
        .map_err(|m| fail(Path::new(&text), "patchesStrategicMerge", m))?;
        for doc in docs {
            apply_by_own_id(resources, &doc)
                .map_err(|m| fail(Path::new(&text), "patchesStrategicMerge", m))?;
        }
    }
    Ok(())
}

fn looks_like_path(s: &str) -> bool {
    !s.trim_start().starts_with('{') && !s.contains(": ")
}

fn apply_by_own_id(
    resources: &mut Vec<Resource>,
    patch: &Value,
) -> std::result::Result<(), String> {
    let api = patch
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = patch.get("kind").and_then(Value::as_str).unwrap_or("");
    let gvk = Gvk::from_api_version(api, kind);
    let meta = patch.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let norm = |s: &str, cluster: bool| {
        if cluster {
            String::new()
        } else if s.is_empty() {
            "default".to_string()
        } else {
            s.to_string()
        }
    };
    let cluster = gvk.is_cluster_scoped();
    let matches: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            let rg = r.gvk();
            rg.kind == gvk.kind
                && (gvk.group.is_empty() || rg.group == gvk.group)
                && (gvk.version.is_empty() || rg.version == gvk.version)
                && r.all_names()
                    .any(|(rns, rn)| rn == name && norm(rns, cluster) == norm(ns, cluster))
        })
        .map(|(i, _)| i)
        .collect();
    if matches.len() != 1 {
        return Err(format!(
            "failed to find unique target for patch {kind} {name}{}: {} candidates",
            if ns.is_empty() {
                String::new()
            } else {
                format!(" in namespace {ns}")
            },
            matches.len()
        ));
    }
    let i = matches[0];
    if strategic_merge(resources[i].value_mut(), patch)? {
        resources.remove(i);
    }
    Ok(())
}

/// The `patches` field.
pub(crate) fn patches_field(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    read: &mut Reader<'_>,
) -> Result<()> {
    for p in &k.patches {
        apply_patch_entry(p, resources, read, "patches", false)?;
    }
    Ok(())
}

/// The `patchesJson6902` field.
pub(crate) fn json6902_field(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    read: &mut Reader<'_>,
) -> Result<()> {
    for p in &k.patches_json6902 {
        apply_patch_entry(p, resources, read, "patchesJson6902", true)?;
    }
    Ok(())
}

fn apply_patch_entry(
    p: &Patch,
    resources: &mut Vec<Resource>,
    read: &mut Reader<'_>,
    field: &str,
    json_only: bool,
) -> Result<()> {
    let (origin, text) = match (&p.path, &p.patch) {
        (Some(path), None) => read(path)?,
        (None, Some(text)) => (PathBuf::from(field), text.clone()),
        _ => {
            return Err(fail(
                Path::new(field),
                field,
                "a patch needs exactly one of 'path' and 'patch'",
            ))
        }
    };
    let body = parse_body(&text).map_err(|m| fail(&origin, field, m))?;
    let options = p.options.clone().unwrap_or_default();
    match (body, &p.target) {
        (Body::Json6902(ops), Some(target)) => {
            let ops: json_patch::Patch = serde_json::from_value(ops)
                .map_err(|e| fail(&origin, field, format!("invalid JSON patch: {e}")))?;
            for i in select(resources, target).map_err(|m| fail(&origin, field, m))? {
                let r = &mut resources[i];
                let before = (r.name().to_string(), r.kind().to_string());
                json_patch::patch(r.value_mut(), &ops)
                    .map_err(|e| fail(&origin, field, format!("{}: {e}", before.0)))?;
                if !r.value().is_object() || r.kind().is_empty() {
                    return Err(fail(
                        &origin,
                        field,
                        format!(
                            "{}: the patch left something that is not a resource",
                            before.0
                        ),
                    ));
                }
                after_patch(r, &before, &options);
            }
        }
        (Body::Json6902(_), None) => {
            return Err(fail(&origin, field, "a JSON 6902 patch needs a target"));
        }
        (Body::Strategic(docs), _) if json_only && !docs.is_empty() => {
            return Err(fail(
                &origin,
                field,
                "expected a list of JSON 6902 operations",
            ));
        }
        (Body::Strategic(docs), Some(target)) => {
            let selected = select(resources, target).map_err(|m| fail(&origin, field, m))?;
            let mut deleted = Vec::new();
            for i in selected {
                for doc in &docs {
                    let r = &mut resources[i];
                    let before = (r.name().to_string(), r.kind().to_string());
                    // With a target, the patch's own name and kind do not matter.
                    let mut doc = doc.clone();
                    if let Some(obj) = doc.as_object_mut() {
                        if !options.allow_kind_change {
                            obj.remove("kind");
                            obj.remove("apiVersion");
                        }
                        if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
                            if !options.allow_name_change {
                                meta.remove("name");
                            }
                            meta.remove("namespace");
                        }
                    }
                    if strategic_merge(r.value_mut(), &doc).map_err(|m| fail(&origin, field, m))? {
                        deleted.push(i);
                        break;
                    }
                    after_patch(r, &before, &options);
                }
            }
            for i in deleted.into_iter().rev() {
                resources.remove(i);
            }
        }
        (Body::Strategic(docs), None) => {
            for doc in &docs {
                apply_by_own_id(resources, doc).map_err(|m| fail(&origin, field, m))?;
            }
        }
    }
    Ok(())
}

fn after_patch(r: &mut Resource, before: &(String, String), options: &crate::types::PatchOptions) {
    if r.name() != before.0 {
        let new = r.name().to_string();
        // Record the old name so references follow the rename.
        r.metadata_mut()
            .insert("name".into(), Value::String(before.0.clone()));
        let _ = options;
        r.set_name(&new);
    }
}

/// Indexes of resources a selector picks (kustomize matches original or current ids).
pub(crate) fn select(
    resources: &[Resource],
    s: &Selector,
) -> std::result::Result<Vec<usize>, String> {
    let anchored = |p: &Option<String>| -> std::result::Result<Option<Regex>, String> {
        match p.as_deref().filter(|x| !x.is_empty()) {
            Some(p) => Regex::new(&format!("^(?:{p})$"))
                .map(Some)
                .map_err(|e| format!("invalid target pattern '{p}': {e}")),
            None => Ok(None),
        }
    };
    let name = anchored(&s.name)?;
    let ns = anchored(&s.namespace)?;
    let kind = anchored(&s.kind)?;
    let group = anchored(&s.group)?;
    let version = anchored(&s.version)?;
    let labels = s
        .label_selector
        .as_deref()
        .map(LabelSelector::parse)
        .transpose()?;
    let annotations = s
        .annotation_selector
        .as_deref()
        .map(LabelSelector::parse)
        .transpose()?;
    let mut out = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let gvk = r.gvk();
        if let Some(k) = &kind {
            if !k.is_match(&gvk.kind) {
                continue;
            }
        }
        if let Some(g) = &group {
            if !g.is_match(&gvk.group) {
                continue;
            }
        }
        if let Some(v) = &version {
            if !v.is_match(&gvk.version) {
                continue;
            }
        }
        if let Some(n) = &name {
            let orig = r.original_id();
            if !n.is_match(&orig.name) && !n.is_match(r.name()) {
                continue;
            }
        }
        if let Some(n) = &ns {
            let eff = |s: &str| {
                if gvk.is_cluster_scoped() {
                    String::new()
                } else if s.is_empty() {
                    "default".to_string()
                } else {
                    s.to_string()
                }
            };
            let orig = r.original_id();
            if !n.is_match(&eff(&orig.namespace)) && !n.is_match(&eff(r.namespace())) {
                continue;
            }
        }
        if let Some(sel) = &labels {
            if !sel.matches(r.labels()) {
                continue;
            }
        }
        if let Some(sel) = &annotations {
            if !sel.matches(r.annotations()) {
                continue;
            }
        }
        out.push(i);
    }
    Ok(out)
}

/// A Kubernetes label selector (`a=b,c!=d,e in (x,y),!f,g`).
pub(crate) struct LabelSelector {
    reqs: Vec<(String, Op, Vec<String>)>,
}

#[derive(Clone, Copy)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    NotExists,
}

impl LabelSelector {
    pub(crate) fn parse(s: &str) -> std::result::Result<Self, String> {
        let mut reqs = Vec::new();
        // Split on commas outside parentheses.
        let mut parts = Vec::new();
        let (mut depth, mut cur) = (0, String::new());
        for c in s.chars() {
            match c {
                '(' => {
                    depth += 1;
                    cur.push(c);
                }
                ')' => {
                    depth -= 1;
                    cur.push(c);
                }
                ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        parts.push(cur);
        for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let set = |rest: &str| -> Vec<String> {
                rest.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .collect()
            };
            if let Some((k, v)) = part.split_once("!=") {
                reqs.push((k.trim().into(), Op::NotEq, vec![v.trim().into()]));
            } else if let Some((k, v)) = part.split_once("==") {
                reqs.push((k.trim().into(), Op::Eq, vec![v.trim().into()]));
            } else if let Some((k, v)) = part.split_once('=') {
                reqs.push((k.trim().into(), Op::Eq, vec![v.trim().into()]));
            } else if let Some((k, v)) = part.split_once(" notin ") {
                reqs.push((k.trim().into(), Op::NotIn, set(v)));
            } else if let Some((k, v)) = part.split_once(" in ") {
                reqs.push((k.trim().into(), Op::In, set(v)));
            } else if let Some(k) = part.strip_prefix('!') {
                reqs.push((k.trim().into(), Op::NotExists, vec![]));
            } else if part
                .chars()
                .all(|c| c.is_alphanumeric() || "-_./".contains(c))
            {
                reqs.push((part.into(), Op::Exists, vec![]));
            } else {
                return Err(format!("invalid selector '{s}'"));
            }
        }
        Ok(Self { reqs })
    }

    pub(crate) fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.reqs.iter().all(|(k, op, vals)| {
            let v = labels.and_then(|l| l.get(k)).map(scalar_string);
            match op {
                Op::Eq | Op::In => v.is_some_and(|v| vals.contains(&v)),
                Op::NotEq | Op::NotIn => v.is_none_or(|v| !vals.contains(&v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
            }
        })
    }
}

/// Keys kustomize (kyaml) treats as merge keys of lists of maps when it has no schema.
const ASSOCIATIVE_KEYS: [&str; 7] = [
    "mountPath",
    "devicePath",
    "ip",
    "type",
    "topologyKey",
    "name",
    "containerPort",
];

fn merge_key_for(field: &str, target: &[Value], patch: &[Value]) -> Option<&'static str> {
    let all_maps = target.iter().chain(patch).all(Value::is_object);
    if !all_maps {
        return None;
    }
    let elements = || {
        target
            .iter()
            .chain(patch)
            .filter(|v| v.get("$patch").is_none() || v.as_object().is_some_and(|m| m.len() > 1))
    };
    if field == "ports" {
        if elements().all(|v| v.get("containerPort").is_some()) {
            return Some("containerPort");
        }
        if elements().all(|v| v.get("port").is_some()) {
            return Some("port");
        }
    }
    if field == "volumeMounts" {
        return Some("mountPath");
    }
    ASSOCIATIVE_KEYS
        .into_iter()
        .find(|key| elements().all(|v| v.get(*key).is_some()))
}

/// Applies a strategic-merge patch in place, with the merge keys of the build's schema
/// (see [`crate::openapi`]). Returns true when the patch deletes the whole object
/// (`$patch: delete`).
pub fn strategic_merge(target: &mut Value, patch: &Value) -> std::result::Result<bool, String> {
    let schema = crate::openapi::current();
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    // kyaml takes the type from the first source that has one: the target.
    let (api_version, kind) = if target.get("kind").is_some() {
        (text(target, "apiVersion"), text(target, "kind"))
    } else {
        (text(patch, "apiVersion"), text(patch, "kind"))
    };
    let node = Node::for_resource(schema.as_deref(), &api_version, &kind);
    let Some(pmap) = patch.as_object() else {
        return Err("a strategic merge patch must be a map".into());
    };
    match pmap.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(true),
        Some("replace") => {
            let mut replaced = patch.clone();
            strip_directives(&mut replaced);
            // Keep identity fields the patch did not give.
            if let (Some(t), Some(r)) = (target.as_object(), replaced.as_object_mut()) {
                for key in ["apiVersion", "kind", "metadata"] {
                    if !r.contains_key(key) {
                        if let Some(v) = t.get(key) {
                            r.insert(key.into(), v.clone());
                        }
                    }
                }
            }
            *target = replaced;
            return Ok(false);
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    merge_map(target, pmap, node);
    Ok(false)
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| k != "$patch");
            for child in m.values_mut() {
                strip_directives(child);
            }
        }
        Value::Array(items) => {
            items.retain(|i| i.get("$patch").is_none());
            for child in items {
                strip_directives(child);
            }
        }
        _ => {}
    }
}

/// A patch subtree with nothing to merge into is copied as kustomize copies it: null
/// fields (deletions of nothing) and `$patch` markers dropped, other keys kept.
fn clean_new_subtree(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, val| !val.is_null() && k != "$patch");
            for child in m.values_mut() {
                clean_new_subtree(child);
            }
        }
        Value::Array(items) => {
            items.retain(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"));
            for child in items {
                clean_new_subtree(child);
            }
        }
        _ => {}
    }
}

fn merge_map(target: &mut Value, patch: &Map<String, Value>, node: Node<'_>) {
    let Some(t) = target.as_object_mut() else {
        return;
    };
    // kustomize (kyaml) acts on `$patch` only; `$retainKeys`, `$setElementOrder/..` and
    // `$deleteFromPrimitiveList/..` are merged as ordinary keys, as it does.
    for (key, pv) in patch {
        if key == "$patch" {
            continue;
        }
        match pv {
            Value::Null => {
                t.remove(key);
            }
            Value::Object(pm) => match pm.get("$patch").and_then(Value::as_str) {
                Some("delete") => {
                    t.remove(key);
                }
                Some("replace") => {
                    let mut v = pv.clone();
                    strip_directives(&mut v);
                    t.insert(key.clone(), v);
                }
                _ => {
                    if t.get(key).is_some_and(Value::is_object) {
                        if let Some(child) = t.get_mut(key) {
                            merge_map(child, pm, node.field(key));
                        }
                    } else {
                        let mut v = pv.clone();
                        clean_new_subtree(&mut v);
                        t.insert(key.clone(), v);
                    }
                }
            },
            Value::Array(pitems) => {
                let replace_all = pitems
                    .iter()
                    .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
                let existing = t.get(key).and_then(Value::as_array).cloned();
                match existing {
                    Some(titems) if !replace_all => {
                        let merged = merge_list(key, titems, pitems, node.field(key));
                        t.insert(key.clone(), Value::Array(merged));
                    }
                    _ => {
                        let mut v = pv.clone();
                        strip_directives(&mut v);
                        t.insert(key.clone(), v);
                    }
                }
            }
            scalar => {
                t.insert(key.clone(), scalar.clone());
            }
        }
    }
}

/// The patch's list with its directives dropped, for lists that are replaced.
fn replaced_list(patch: &[Value]) -> Vec<Value> {
    let mut v = Value::Array(patch.to_vec());
    strip_directives(&mut v);
    match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

fn merge_list(field: &str, target: Vec<Value>, patch: &[Value], node: Node<'_>) -> Vec<Value> {
    let elements = node.elements();
    match node.list_rule() {
        ListRule::Replace => replaced_list(patch),
        ListRule::Infer => {
            let scalars = |v: &Value| !v.is_object() && !v.is_array();
            // Kubernetes merges finalizers as a set (patchStrategy merge, no key).
            if field == "finalizers" && target.iter().chain(patch).all(scalars) {
                return merge_scalars(target, patch);
            }
            match merge_key_for(field, &target, patch) {
                // Container and Service ports are keyed by port and protocol.
                Some(key @ ("containerPort" | "port")) if field == "ports" => merge_by_keys(
                    target,
                    patch,
                    &[key.to_string(), "protocol".into()],
                    elements,
                ),
                Some(key) => merge_by_key(target, patch, key, elements),
                None => replaced_list(patch),
            }
        }
        ListRule::Keys(keys) => match keys.as_slice() {
            [] => merge_scalars(target, patch),
            [key] => merge_by_key(target, patch, key, elements),
            _ => merge_by_keys(target, patch, &keys, elements),
        },
        ListRule::Scalars => merge_scalars(target, patch),
    }
}

/// A list of scalars merged as a set (kyaml): the patch's values, then the target's
/// values the patch did not have.
fn merge_scalars(target: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(target.len() + patch.len());
    for item in replaced_list(patch).into_iter().chain(target) {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Merges maps by one key. kustomize merges with the patch's elements first (kyaml's
/// list prepend), then the target's elements the patch did not mention.
fn merge_by_key(
    mut target: Vec<Value>,
    patch: &[Value],
    key: &str,
    elements: Node<'_>,
) -> Vec<Value> {
    let mut used = vec![false; target.len()];
    let mut out = Vec::with_capacity(target.len() + patch.len());
    for item in patch {
        let Some(im) = item.as_object() else {
            continue;
        };
        let Some(kv) = im.get(key) else {
            continue;
        };
        let pos = target
            .iter()
            .enumerate()
            .position(|(i, t)| !used[i] && t.get(key) == Some(kv));
        if let Some(p) = pos {
            used[p] = true;
        }
        match (im.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), _) => {}
            (Some("replace"), _) | (_, None) => {
                let mut v = item.clone();
                strip_directives(&mut v);
                out.push(v);
            }
            (_, Some(p)) => {
                let mut merged = std::mem::take(&mut target[p]);
                merge_map(&mut merged, im, elements);
                out.push(merged);
            }
        }
    }
    for (i, t) in target.into_iter().enumerate() {
        if !used[i] {
            out.push(t);
        }
    }
    out
}

/// Merges maps by several keys (`x-kubernetes-list-map-keys`). Two elements match when
/// their key values agree wherever both have one. kyaml then lists the patch's new
/// elements first and every target element after them, in the target's order.
fn merge_by_keys(
    mut target: Vec<Value>,
    patch: &[Value],
    keys: &[String],
    elements: Node<'_>,
) -> Vec<Value> {
    // kyaml keys only by the keys some element has a value for; with one left, the list
    // merges as a single-key list.
    let present: Vec<String> = keys
        .iter()
        .filter(|k| {
            target
                .iter()
                .chain(patch)
                .any(|v| v.get(k.as_str()).is_some())
        })
        .cloned()
        .collect();
    let keys = match present.as_slice() {
        [] => keys,
        [key] => return merge_by_key(target, patch, key, elements),
        _ => present.as_slice(),
    };
    let values =
        |v: &Value| -> Vec<Option<Value>> { keys.iter().map(|k| v.get(k).cloned()).collect() };
    let matches = |a: &[Option<Value>], b: &[Option<Value>]| {
        let mut common = false;
        for (x, y) in a.iter().zip(b) {
            match (x, y) {
                (Some(x), Some(y)) if x == y => common = true,
                (Some(_), Some(_)) => return false,
                _ => {}
            }
        }
        common
    };
    let target_values: Vec<_> = target.iter().map(values).collect();
    let mut deleted = vec![false; target.len()];
    let mut used = vec![false; target.len()];
    let mut new_items = Vec::new();
    for item in patch {
        let Some(im) = item.as_object() else {
            continue;
        };
        let mine = values(item);
        let pos = (0..target.len()).find(|&i| !used[i] && matches(&target_values[i], &mine));
        if let Some(p) = pos {
            used[p] = true;
        }
        match (im.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), Some(p)) => deleted[p] = true,
            (Some("delete"), None) => {}
            (Some("replace"), Some(p)) => {
                let mut v = item.clone();
                strip_directives(&mut v);
                target[p] = v;
            }
            (_, None) => {
                let mut v = item.clone();
                strip_directives(&mut v);
                new_items.push(v);
            }
            (_, Some(p)) => merge_map(&mut target[p], im, elements),
        }
    }
    new_items.extend(
        target
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !deleted[*i])
            .map(|(_, t)| t),
    );
    new_items
}

/// Runs a builtin transformer plugin configuration from `transformers:`.
pub(crate) fn run_transformer_plugin(
    config: &Value,
    resources: &mut Vec<Resource>,
    tc: &TransformerConfig,
    read: &mut Reader<'_>,
) -> std::result::Result<(), Failure> {
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let specs = |default: &[FieldSpec]| -> Vec<FieldSpec> {
        match config.get("fieldSpecs").and_then(Value::as_array) {
            Some(list) => list.iter().filter_map(FieldSpec::from_value).collect(),
            None => default.to_vec(),
        }
    };
    let string_map = |key: &str| -> indexmap::IndexMap<String, String> {
        config
            .get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), scalar_string(v)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let msg = Failure::Message;
    match kind {
        "LabelTransformer" => {
            filters::set_map_fields(resources, &string_map("labels"), &specs(&tc.common_labels))
                .map_err(msg)
        }
        "AnnotationsTransformer" => filters::set_map_fields(
            resources,
            &string_map("annotations"),
            &specs(&tc.common_annotations),
        )
        .map_err(msg),
        "NamespaceTransformer" => {
            let ns = config
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .map(scalar_string)
                .unwrap_or_default();
            filters::namespace(resources, &ns, &specs(&tc.namespace)).map_err(msg)
        }
        "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
            let get = |k: &str| config.get(k).map(scalar_string).unwrap_or_default();
            filters::prefix_suffix(
                resources,
                &get("prefix"),
                &get("suffix"),
                &specs(&tc.name_prefix),
            )
            .map_err(msg)
        }
        "ImageTagTransformer" => {
            let image: crate::types::Image =
                serde_json::from_value(config.get("imageTag").cloned().unwrap_or(Value::Null))
                    .map_err(|e| msg(format!("ImageTagTransformer: {e}")))?;
            filters::image(resources, &image, &specs(&tc.images)).map_err(msg)
        }
        "PatchTransformer" | "PatchJson6902Transformer" => {
            let p = Patch {
                path: config.get("path").map(scalar_string),
                patch: config
                    .get("patch")
                    .or_else(|| config.get("jsonOp"))
                    .map(scalar_string),
                target: config
                    .get("target")
                    .map(|t| serde_json::from_value(t.clone()))
                    .transpose()
                    .map_err(|e| msg(format!("{kind}: {e}")))?,
                options: config
                    .get("options")
                    .map(|t| serde_json::from_value(t.clone()))
                    .transpose()
                    .map_err(|e| msg(format!("{kind}: {e}")))?,
            };
            apply_patch_entry(&p, resources, read, kind, false).map_err(Failure::Error)
        }
        "PatchStrategicMergeTransformer" => {
            let mut k = Kustomization::default();
            if let Some(paths) = config.get("paths").and_then(Value::as_array) {
                k.patches_strategic_merge.extend(paths.iter().cloned());
            }
            if let Some(p) = config.get("patches") {
                k.patches_strategic_merge.push(p.clone());
            }
            strategic_merge_field(&k, resources, read).map_err(Failure::Error)
        }
        "ReplacementTransformer" => {
            for r in config
                .get("replacements")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                filters::replacement(resources, r).map_err(msg)?;
            }
            Ok(())
        }
        other => Err(msg(format!(
            "transformer kind '{other}' is not supported (only kustomize's builtin transformers)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_containers_by_name_and_deletes() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let p = json!({"spec": {"containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}, {"name": "c", "image": "w"}]}});
        assert!(!strategic_merge(&mut t, &p).unwrap());
        assert_eq!(
            t,
            json!({"spec": {"containers": [{"name": "a", "image": "z"}, {"name": "c", "image": "w"}]}})
        );
    }

    #[test]
    fn null_removes_and_replace_directive() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": 1});
        let p = json!({"a": {"$patch": "replace", "x": 1}, "d": null});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(t, json!({"a": {"x": 1}}));
    }

    #[test]
    fn label_selector() {
        let sel = LabelSelector::parse("app=web,tier in (a, b),!legacy").unwrap();
        let labels = json!({"app": "web", "tier": "b"});
        assert!(sel.matches(labels.as_object()));
        let labels = json!({"app": "web", "tier": "c"});
        assert!(!sel.matches(labels.as_object()));
    }
}
