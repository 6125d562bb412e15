//! The field transformers: namespace, prefix/suffix, labels and annotations, images,
//! replicas, replacements, name references and vars.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::fieldspec::{split_path, walk, FieldSpec, TransformerConfig};
use crate::resource::{Gvk, Resource};
use crate::types::{scalar_string, Image, Label, Replica, Var};

type Res = Result<(), String>;
type Lookup<'a> = dyn Fn(&str, Option<&str>) -> Result<Option<(String, String)>, String> + 'a;

fn is_meta(spec: &FieldSpec, field: &str) -> bool {
    spec.path.len() == 2 && spec.path[0] == "metadata" && spec.path[1] == field
}

/// The namespace transformer.
pub(crate) fn namespace(resources: &mut [Resource], ns: &str, specs: &[FieldSpec]) -> Res {
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        if !gvk.is_cluster_scoped() && r.namespace() != ns {
            r.store_previous();
            r.metadata_mut()
                .insert("namespace".into(), Value::String(ns.to_string()));
        }
        let role_binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
        if role_binding {
            if let Some(Value::Array(subjects)) = r.value_mut().get_mut("subjects") {
                for s in subjects.iter_mut() {
                    if s.get("name").and_then(Value::as_str) == Some("default") {
                        if let Some(o) = s.as_object_mut() {
                            o.insert("namespace".into(), Value::String(ns.to_string()));
                        }
                    }
                }
            }
        }
        let api_version = r.api_version().to_string();
        for spec in specs {
            if is_meta(spec, "namespace") || !spec.selects(&gvk) {
                continue;
            }
            if is_meta(spec, "name") && api_version != "v1" {
                continue;
            }
            if role_binding && spec.path == ["subjects", "namespace"] {
                continue;
            }
            if is_meta(spec, "name") {
                if r.name() != ns {
                    r.set_name(ns);
                }
                continue;
            }
            walk(r.value_mut(), &spec.path, spec.create, &mut |v| {
                if v.is_null() || v.is_string() {
                    *v = Value::String(ns.to_string());
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// namePrefix / nameSuffix.
pub(crate) fn prefix_suffix(
    resources: &mut [Resource],
    prefix: &str,
    suffix: &str,
    specs: &[FieldSpec],
) -> Res {
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        let skip = gvk.kind == "CustomResourceDefinition"
            || gvk.kind == "Namespace"
            || (gvk.kind == "APIService" && gvk.group == "apiregistration.k8s.io");
        if skip {
            continue;
        }
        for spec in specs.iter().filter(|s| s.selects(&gvk)) {
            if is_meta(spec, "name") {
                let name = format!("{prefix}{}{suffix}", r.name());
                r.set_name(&name);
                continue;
            }
            walk(r.value_mut(), &spec.path, spec.create, &mut |v| {
                if let Some(s) = v.as_str() {
                    *v = Value::String(format!("{prefix}{s}{suffix}"));
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// The field specs a `labels:` entry writes to.
pub(crate) fn label_specs(label: &Label, tc: &TransformerConfig) -> Vec<FieldSpec> {
    let mut specs: Vec<FieldSpec> = label
        .fields
        .iter()
        .map(|f| {
            FieldSpec::new(
                f.group.as_deref().unwrap_or(""),
                f.version.as_deref().unwrap_or(""),
                f.kind.as_deref().unwrap_or(""),
                &f.path,
                f.create,
            )
        })
        .collect();
    let mut add = |s: &FieldSpec| {
        if !specs.contains(s) {
            specs.push(s.clone());
        }
    };
    for s in &tc.labels {
        add(s);
    }
    if label.include_selectors {
        for s in &tc.common_labels {
            add(s);
        }
    } else {
        if label.include_templates {
            for s in &tc.template_labels {
                add(s);
            }
        }
        add(&FieldSpec::new("", "", "", "metadata/labels", true));
    }
    specs
}

/// Sets string pairs into the map fields the specs name (labels, annotations).
pub(crate) fn set_map_fields(
    resources: &mut [Resource],
    pairs: &IndexMap<String, String>,
    specs: &[FieldSpec],
) -> Res {
    if pairs.is_empty() {
        return Ok(());
    }
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        for spec in specs.iter().filter(|s| s.selects(&gvk)) {
            walk(r.value_mut(), &spec.path, spec.create, &mut |v| {
                if v.is_null() {
                    *v = Value::Object(Map::new());
                }
                match v {
                    Value::Object(m) => {
                        for (k, val) in pairs {
                            m.insert(k.clone(), Value::String(val.clone()));
                        }
                        Ok(())
                    }
                    _ => Err(format!(
                        "{}: field '{}' is not a map",
                        gvk.kind,
                        spec.path.join("/")
                    )),
                }
            })?;
        }
    }
    Ok(())
}

/// The `replicas:` field.
pub(crate) fn replicas(resources: &mut [Resource], list: &[Replica], specs: &[FieldSpec]) -> Res {
    for rep in list {
        let mut found = false;
        for r in resources.iter_mut() {
            if !r.all_names().any(|(_, n)| n == rep.name) {
                continue;
            }
            let gvk = r.gvk();
            for spec in specs.iter().filter(|s| s.selects(&gvk)) {
                found = true;
                walk(r.value_mut(), &spec.path, spec.create, &mut |v| {
                    *v = Value::from(rep.count);
                    Ok(())
                })?;
            }
        }
        let _ = found;
    }
    Ok(())
}

fn split_image(image: &str) -> (&str, &str, &str) {
    // name[:tag][@digest]
    let (rest, digest) = match image.find('@') {
        Some(i) => (&image[..i], &image[i..]),
        None => (image, ""),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].find(':') {
        Some(i) => (&rest[..slash + i], &rest[slash + i..], digest),
        None => (rest, "", digest),
    }
}

/// One `images:` entry.
pub(crate) fn image(resources: &mut [Resource], img: &Image, specs: &[FieldSpec]) -> Res {
    let Some(name) = img.name.as_deref() else {
        return Ok(());
    };
    let update = |v: &mut Value| {
        let Some(current) = v.as_str() else {
            return;
        };
        let (cur_name, tag, digest) = split_image(current);
        if cur_name != name {
            return;
        }
        let new_name = img.new_name.as_deref().unwrap_or(cur_name);
        let suffix = if let Some(d) = img.digest.as_deref() {
            format!("@{d}")
        } else if let Some(t) = img.new_tag.as_deref() {
            format!(":{t}")
        } else {
            format!("{tag}{digest}")
        };
        *v = Value::String(format!("{new_name}{suffix}"));
    };
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        for spec in specs.iter().filter(|s| s.selects(&gvk)) {
            walk(r.value_mut(), &spec.path, false, &mut |v| {
                update(v);
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Name references: point every referring field at the current name of what it names.
pub(crate) fn name_reference(resources: &mut [Resource], tc: &TransformerConfig) -> Res {
    // Index: kind -> old or current name -> resource indexes.
    let mut index: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        let by_name = index.entry(r.kind().to_string()).or_default();
        let mut names: Vec<&str> = r.all_names().map(|(_, n)| n).collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            by_name.entry(n.to_string()).or_default().push(i);
        }
    }
    let info: Vec<(Gvk, String, String, bool)> = resources
        .iter()
        .map(|r| {
            let gvk = r.gvk();
            let cluster = gvk.is_cluster_scoped();
            (
                gvk,
                r.name().to_string(),
                r.namespace().to_string(),
                cluster,
            )
        })
        .collect();
    let ns_history: Vec<Vec<String>> = resources
        .iter()
        .map(|r| r.all_names().map(|(ns, _)| ns.to_string()).collect())
        .collect();
    for i in 0..resources.len() {
        let referrer_gvk = info[i].0.clone();
        let referrer_ns = info[i].2.clone();
        for rule in &tc.name_reference {
            for spec in rule.specs.iter().filter(|s| s.selects(&referrer_gvk)) {
                let lookup = |old: &str,
                              ns_hint: Option<&str>|
                 -> Result<Option<(String, String)>, String> {
                    let Some(cands) = index
                        .get(rule.target.kind.as_str())
                        .and_then(|by_name| by_name.get(old))
                    else {
                        return Ok(None);
                    };
                    let cands: Vec<usize> = cands
                        .iter()
                        .copied()
                        .filter(|&c| {
                            let g = &info[c].0;
                            (rule.target.group.is_empty() || rule.target.group == g.group)
                                && (rule.target.version.is_empty()
                                    || rule.target.version == g.version)
                        })
                        .collect();
                    let want_ns = ns_hint.unwrap_or(&referrer_ns);
                    let norm = |s: &str| if s.is_empty() { "default" } else { s }.to_string();
                    let same_ns: Vec<usize> = cands
                        .iter()
                        .copied()
                        .filter(|&c| {
                            info[c].3
                                || info[i].3 && ns_hint.is_none()
                                || norm(&info[c].2) == norm(want_ns)
                                || ns_history[c].iter().any(|ns| norm(ns) == norm(want_ns))
                        })
                        .collect();
                    let pick = if same_ns.is_empty() {
                        return Ok(None);
                    } else {
                        same_ns
                    };
                    let first = &info[pick[0]];
                    if pick.iter().all(|&c| info[c].1 == first.1) {
                        Ok(Some((first.1.clone(), first.2.clone())))
                    } else {
                        Err(format!(
                            "found multiple possible referrals for {} '{old}'",
                            rule.target.kind
                        ))
                    }
                };
                let target_kind = rule.target.kind.clone();
                walk(resources[i].value_mut(), &spec.path, false, &mut |v| {
                    match v {
                        Value::String(s) => {
                            if let Some((name, _)) = lookup(s, None)? {
                                *s = name;
                            }
                        }
                        Value::Array(items) => {
                            for item in items.iter_mut() {
                                update_ref_item(item, &target_kind, &lookup)?;
                            }
                        }
                        Value::Object(_) => update_ref_item(v, &target_kind, &lookup)?,
                        _ => {}
                    }
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}

fn update_ref_item(item: &mut Value, target_kind: &str, lookup: &Lookup<'_>) -> Res {
    match item {
        Value::String(s) => {
            if let Some((name, _)) = lookup(s, None)? {
                *s = name;
            }
        }
        Value::Object(m) => {
            if let Some(kind) = m.get("kind").and_then(Value::as_str) {
                if kind != target_kind {
                    return Ok(());
                }
            }
            let Some(old) = m.get("name").and_then(Value::as_str).map(str::to_string) else {
                return Ok(());
            };
            let ns = m
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some((name, new_ns)) = lookup(&old, ns.as_deref())? {
                m.insert("name".into(), Value::String(name));
                // kustomize points the reference at the object's namespace too.
                if !new_ns.is_empty() {
                    m.insert("namespace".into(), Value::String(new_ns));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Configuration from `crds:` files (OpenAPI definitions keyed by type name): fields
/// marked with kustomize's `x-kubernetes-*` extensions become name references, label
/// selectors, annotations or identity (prefix) fields of that kind.
pub(crate) fn merge_crd_config(tc: &mut TransformerConfig, docs: &[Value]) {
    for doc in docs {
        let Some(types) = doc.as_object() else {
            continue;
        };
        for (type_name, api) in types {
            let props = api.get("Schema").and_then(|s| s.get("properties"));
            let looks_like_kind = ["kind", "apiVersion", "metadata"]
                .iter()
                .all(|k| props.and_then(|p| p.get(*k)).is_some());
            if !looks_like_kind {
                continue;
            }
            let kind = type_name.rsplit('.').next().unwrap_or(type_name);
            load_crd_type(tc, kind, types, type_name, &[], 0);
        }
    }
}

fn load_crd_type(
    tc: &mut TransformerConfig,
    kind: &str,
    types: &Map<String, Value>,
    type_name: &str,
    path: &[String],
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let Some(props) = types
        .get(type_name)
        .and_then(|t| t.get("Schema"))
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    for (prop, schema) in props {
        let mut here = path.to_vec();
        here.push(prop.clone());
        let spec = |p: &[String]| FieldSpec::new("", "", kind, &p.join("/"), false);
        let ext = |k: &str| schema.get(k).and_then(Value::as_str);
        if ext("x-kubernetes-annotation").is_some() {
            tc.common_annotations.push(spec(&here));
        }
        if ext("x-kubernetes-label-selector").is_some() {
            tc.common_labels.push(spec(&here));
        }
        if ext("x-kubernetes-identity").is_some() {
            tc.name_prefix.push(spec(&here));
        }
        if let (Some(version), Some(ref_kind)) = (
            ext("x-kubernetes-object-ref-api-version"),
            ext("x-kubernetes-object-ref-kind"),
        ) {
            let mut name_path = here.clone();
            name_path.push(
                ext("x-kubernetes-object-ref-name-key")
                    .unwrap_or("name")
                    .to_string(),
            );
            let target = Gvk {
                group: String::new(),
                version: version.to_string(),
                kind: ref_kind.to_string(),
            };
            let referrer = spec(&name_path);
            if let Some(rule) = tc.name_reference.iter_mut().find(|r| r.target == target) {
                rule.specs.push(referrer);
            } else {
                tc.name_reference.push(crate::fieldspec::NameRef {
                    target,
                    specs: vec![referrer],
                });
            }
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            load_crd_type(tc, kind, types, reference, &here, depth + 1);
        }
    }
}

/// What `buildMetadata` asks of the top kustomization, done after the build as
/// kustomize does: the managed-by label, `config.kubernetes.io/origin` and
/// `alpha.config.kubernetes.io/transformations` (paths relative to `top`). Options of
/// kustomizations below the top are ignored, as kustomize ignores them.
pub(crate) fn build_metadata(resources: &mut [Resource], options: &[String], top: &Path) -> Res {
    let mut label = false;
    let mut origins = false;
    let mut transformations = false;
    for option in options {
        match option.as_str() {
            "managedByLabel" => label = true,
            "originAnnotations" => origins = true,
            "transformerAnnotations" => transformations = true,
            other => return Err(format!("unknown buildMetadata option '{other}'")),
        }
    }
    for r in resources.iter_mut() {
        if label {
            let meta = r.metadata_mut();
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            if let Some(l) = labels.as_object_mut() {
                l.insert(
                    "app.kubernetes.io/managed-by".into(),
                    Value::String("kustomize-v5.8.1".into()),
                );
            }
        }
        let origin = r
            .origin
            .as_ref()
            .filter(|_| origins)
            .map(|o| o.to_yaml(top, ""));
        let applied = (transformations && !r.transformations.is_empty()).then(|| {
            let mut text = String::new();
            for t in &r.transformations {
                text.push_str("- ");
                text.push_str(&t.to_yaml(top, "  "));
            }
            text
        });
        for (key, text) in [
            ("config.kubernetes.io/origin", origin),
            ("alpha.config.kubernetes.io/transformations", applied),
        ] {
            let Some(text) = text else { continue };
            let meta = r.metadata_mut();
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if !annotations.is_object() {
                *annotations = Value::Object(Map::new());
            }
            if let Some(a) = annotations.as_object_mut() {
                a.insert(key.into(), Value::String(text));
            }
        }
    }
    Ok(())
}

/// Splits a replacement/var field path (`a.b[name=x].c`, with `\.` escapes).
fn split_field_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                cur.push('.');
                chars.next();
            }
            '[' => {
                if depth == 0 && !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn get_path<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(v);
    };
    if let Some(sel) = head.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let items = v.as_array()?;
        if let Some((k, val)) = sel.split_once('=') {
            let item = items
                .iter()
                .find(|i| i.get(k).map(scalar_string).as_deref() == Some(val))?;
            return get_path(item, rest);
        }
        let idx: usize = sel.parse().ok()?;
        return get_path(items.get(idx)?, rest);
    }
    match v {
        Value::Object(m) => get_path(m.get(head.as_str())?, rest),
        Value::Array(items) => {
            let idx: usize = head.parse().ok()?;
            get_path(items.get(idx)?, rest)
        }
        _ => None,
    }
}

fn set_path(v: &mut Value, path: &[String], new: &Value, create: bool) -> Result<bool, String> {
    let Some((head, rest)) = path.split_first() else {
        *v = new.clone();
        return Ok(true);
    };
    if let Some(sel) = head.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let Some(items) = v.as_array_mut() else {
            return Ok(false);
        };
        if let Some((k, val)) = sel.split_once('=') {
            let mut any = false;
            for item in items.iter_mut() {
                if item.get(k).map(scalar_string).as_deref() == Some(val) {
                    any |= set_path(item, rest, new, create)?;
                }
            }
            return Ok(any);
        }
        if sel == "*" {
            let mut any = false;
            for item in items.iter_mut() {
                any |= set_path(item, rest, new, create)?;
            }
            return Ok(any);
        }
        let idx: usize = sel.parse().map_err(|_| format!("invalid index '{sel}'"))?;
        return match items.get_mut(idx) {
            Some(item) => set_path(item, rest, new, create),
            None => Ok(false),
        };
    }
    if head == "*" {
        if let Value::Array(items) = v {
            let mut any = false;
            for item in items.iter_mut() {
                any |= set_path(item, rest, new, create)?;
            }
            return Ok(any);
        }
    }
    match v {
        Value::Object(m) => {
            if !m.contains_key(head.as_str()) {
                if !create {
                    return Ok(false);
                }
                m.insert(head.clone(), Value::Object(Map::new()));
            }
            let child = m.get_mut(head.as_str()).ok_or("missing")?;
            set_path(child, rest, new, create)
        }
        Value::Array(items) => {
            let idx: usize = head
                .parse()
                .map_err(|_| format!("invalid index '{head}'"))?;
            match items.get_mut(idx) {
                Some(item) => set_path(item, rest, new, create),
                None => Ok(false),
            }
        }
        Value::Null if create => {
            *v = Value::Object(Map::new());
            set_path(v, path, new, create)
        }
        _ => Ok(false),
    }
}

fn selector_matches(r: &Resource, sel: &Value) -> bool {
    let s = |k: &str| sel.get(k).and_then(Value::as_str);
    let gvk = r.gvk();
    if let Some(k) = s("kind") {
        if k != gvk.kind {
            return false;
        }
    }
    if let Some(g) = s("group") {
        if g != gvk.group {
            return false;
        }
    }
    if let Some(v) = s("version") {
        if v != gvk.version {
            return false;
        }
    }
    if let Some(n) = s("name") {
        if n != r.name() && r.original_id().name != n {
            return false;
        }
    }
    if let Some(ns) = s("namespace") {
        if ns != r.namespace() && r.original_id().namespace != ns {
            return false;
        }
    }
    if let Some(l) = s("labelSelector") {
        match crate::patch::LabelSelector::parse(l) {
            Ok(sel) if sel.matches(r.labels()) => {}
            _ => return false,
        }
    }
    if let Some(l) = s("annotationSelector") {
        match crate::patch::LabelSelector::parse(l) {
            Ok(sel) if sel.matches(r.annotations()) => {}
            _ => return false,
        }
    }
    true
}

fn delimited(current: Option<&Value>, value: &Value, options: Option<&Value>) -> Value {
    let Some(opts) = options else {
        return value.clone();
    };
    let Some(delim) = opts.get("delimiter").and_then(Value::as_str) else {
        return value.clone();
    };
    let index = opts.get("index").and_then(Value::as_i64).unwrap_or(0);
    let cur = current.map(scalar_string).unwrap_or_default();
    let mut parts: Vec<String> = cur.split(delim).map(str::to_string).collect();
    let v = scalar_string(value);
    if index < 0 {
        parts.insert(0, v);
    } else if (index as usize) >= parts.len() {
        parts.push(v);
    } else {
        parts[index as usize] = v;
    }
    Value::String(parts.join(delim))
}

/// One `replacements:` entry.
pub(crate) fn replacement(resources: &mut [Resource], rep: &Value) -> Res {
    let source = rep.get("source").ok_or("replacement has no source")?;
    let sources: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| selector_matches(r, source))
        .map(|(i, _)| i)
        .collect();
    if sources.len() != 1 {
        return Err(format!(
            "replacements: expected exactly one source object, found {}",
            sources.len()
        ));
    }
    let field = source
        .get("fieldPath")
        .and_then(Value::as_str)
        .unwrap_or("metadata.name");
    let mut value = get_path(resources[sources[0]].value(), &split_field_path(field))
        .cloned()
        .ok_or_else(|| format!("replacements: source field '{field}' not found"))?;
    if let Some(opts) = source.get("options") {
        if let Some(delim) = opts.get("delimiter").and_then(Value::as_str) {
            let idx = opts.get("index").and_then(Value::as_i64).unwrap_or(0);
            let s = scalar_string(&value);
            let parts: Vec<&str> = s.split(delim).collect();
            value = Value::String(
                parts
                    .get(idx.max(0) as usize)
                    .map(|p| (*p).to_string())
                    .unwrap_or_default(),
            );
        }
    }
    for target in rep
        .get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let select = target.get("select").cloned().unwrap_or(Value::Null);
        let rejects: Vec<Value> = target
            .get("reject")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let paths: Vec<String> = target
            .get("fieldPaths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(scalar_string)
            .collect();
        let options = target.get("options");
        let create = options
            .and_then(|o| o.get("create"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for r in resources.iter_mut() {
            if !selector_matches(r, &select) || rejects.iter().any(|rj| selector_matches(r, rj)) {
                continue;
            }
            for p in &paths {
                let parts = split_field_path(p);
                let current = get_path(r.value(), &parts).cloned();
                let new = delimited(current.as_ref(), &value, options);
                let applied = set_path(r.value_mut(), &parts, &new, create)?;
                if !applied && !create {
                    return Err(format!(
                        "replacements: unable to find field '{p}' in replacement target {}/{}",
                        r.kind(),
                        r.name()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Resolves `$(VAR)` references (deprecated `vars:`).
pub(crate) fn resolve_vars(
    resources: &mut [Resource],
    vars: &[Var],
    tc: &TransformerConfig,
) -> Res {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values: HashMap<String, String> = HashMap::new();
    for var in vars {
        let found: Vec<&Resource> = resources
            .iter()
            .filter(|r| {
                var.obj_ref.kind.as_deref().is_none_or(|k| k == r.kind())
                    && r.all_names().any(|(_, n)| n == var.obj_ref.name)
            })
            .collect();
        let Some(r) = found.first() else {
            return Err(format!(
                "var '{}' cannot be mapped to a field in the set of known resources",
                var.name
            ));
        };
        let path = var
            .field_ref
            .as_ref()
            .map_or("metadata.name", |f| f.field_path.as_str());
        let v = get_path(r.value(), &split_field_path(path))
            .map(scalar_string)
            .ok_or_else(|| format!("var '{}': field '{path}' not found", var.name))?;
        values.insert(var.name.clone(), v);
    }
    let replace = |s: &str| -> String {
        let mut out = s.to_string();
        for (k, v) in &values {
            out = out.replace(&format!("$({k})"), v);
        }
        out
    };
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        for spec in tc.var_reference.iter().filter(|s| s.selects(&gvk)) {
            walk(r.value_mut(), &spec.path, false, &mut |v| {
                match v {
                    Value::String(s) => *s = replace(s),
                    Value::Array(items) => {
                        for i in items {
                            if let Value::String(s) = i {
                                *s = replace(s);
                            }
                        }
                    }
                    Value::Object(m) => {
                        for val in m.values_mut() {
                            if let Value::String(s) = val {
                                *s = replace(s);
                            }
                        }
                    }
                    _ => {}
                }
                Ok(())
            })?;
        }
    }
    let _ = split_path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_parts() {
        assert_eq!(split_image("nginx:1.2"), ("nginx", ":1.2", ""));
        assert_eq!(
            split_image("reg:5000/a/b@sha256:x"),
            ("reg:5000/a/b", "", "@sha256:x")
        );
        assert_eq!(
            split_field_path("spec.a\\.b[name=x].c"),
            ["spec", "a.b", "[name=x]", "c"]
        );
    }
}
