//! Field specs: which fields of which kinds a transformer touches, and the walker that
//! visits them. kustomize's built-in tables live in `defaults/fieldspecs.tsv`.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::resource::Gvk;
use crate::types::scalar_string;

/// One field path, limited to some kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub path: Vec<String>,
    pub create: bool,
}

impl FieldSpec {
    /// Parses `spec/template/metadata/labels` (with `\/` as an escaped slash).
    pub fn new(group: &str, version: &str, kind: &str, path: &str, create: bool) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            path: split_path(path),
            create,
        }
    }

    /// Whether the spec applies to a resource of this gvk (empty parts match anything).
    pub fn selects(&self, gvk: &Gvk) -> bool {
        (self.group.is_empty() || self.group == gvk.group)
            && (self.version.is_empty() || self.version == gvk.version)
            && (self.kind.is_empty() || self.kind == gvk.kind)
    }

    /// Reads a field spec from a configuration file entry.
    pub fn from_value(v: &Value) -> Option<Self> {
        let get = |k: &str| v.get(k).map(scalar_string).unwrap_or_default();
        let path = v.get("path")?.as_str()?;
        Some(Self::new(
            &get("group"),
            &get("version"),
            &get("kind"),
            path,
            v.get("create").and_then(Value::as_bool).unwrap_or(false),
        ))
    }
}

/// Splits a field path on `/`, honouring `\/`, and drops `[]` markers.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                cur.push('/');
                chars.next();
            }
            '/' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.strip_suffix("[]").map(str::to_string).unwrap_or(s))
        .collect()
}

/// A nameReference rule: fields that refer to objects of `target`.
#[derive(Debug, Clone)]
pub struct NameRef {
    pub target: Gvk,
    pub specs: Vec<FieldSpec>,
}

/// The transformer configuration: built-in specs plus those of `configurations:` files.
#[derive(Debug, Clone, Default)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameRef>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

fn push_unique(list: &mut Vec<FieldSpec>, spec: FieldSpec) {
    if !list.contains(&spec) {
        list.push(spec);
    }
}

impl TransformerConfig {
    /// kustomize's built-in configuration.
    pub fn defaults() -> &'static TransformerConfig {
        static DEFAULTS: OnceLock<TransformerConfig> = OnceLock::new();
        DEFAULTS.get_or_init(|| {
            let mut tc = TransformerConfig::default();
            for line in include_str!("defaults/fieldspecs.tsv").lines() {
                let cols: Vec<&str> = line.split('\t').collect();
                if cols.len() != 7 {
                    continue;
                }
                let spec = FieldSpec::new(cols[2], cols[3], cols[4], cols[5], cols[6] == "c");
                if cols[0] == "nameReference" {
                    let mut parts = cols[1].splitn(3, '/');
                    let target = Gvk {
                        group: parts.next().unwrap_or("").to_string(),
                        version: parts.next().unwrap_or("").to_string(),
                        kind: parts.next().unwrap_or("").to_string(),
                    };
                    tc.add_name_ref(target, spec);
                } else {
                    tc.add(cols[0], spec);
                }
            }
            tc
        })
    }

    fn add_name_ref(&mut self, target: Gvk, spec: FieldSpec) {
        if let Some(rule) = self.name_reference.iter_mut().find(|r| r.target == target) {
            push_unique(&mut rule.specs, spec);
        } else {
            self.name_reference.push(NameRef {
                target,
                specs: vec![spec],
            });
        }
    }

    fn add(&mut self, section: &str, spec: FieldSpec) {
        let list = match section {
            "namePrefix" => &mut self.name_prefix,
            "nameSuffix" => &mut self.name_suffix,
            "namespace" => &mut self.namespace,
            "commonLabels" => &mut self.common_labels,
            "templateLabels" => &mut self.template_labels,
            "labels" => &mut self.labels,
            "commonAnnotations" => &mut self.common_annotations,
            "varReference" => &mut self.var_reference,
            "images" => &mut self.images,
            "replicas" => &mut self.replicas,
            _ => return,
        };
        push_unique(list, spec);
    }

    /// Adds the sections of a `configurations:` file.
    pub fn merge_file(&mut self, doc: &Value) -> Result<(), String> {
        let Some(map) = doc.as_object() else {
            return Err("a transformer configuration must be a map".into());
        };
        for (section, entries) in map {
            let Some(entries) = entries.as_array() else {
                continue;
            };
            for entry in entries {
                if section == "nameReference" {
                    let target = Gvk {
                        group: entry.get("group").map(scalar_string).unwrap_or_default(),
                        version: entry.get("version").map(scalar_string).unwrap_or_default(),
                        kind: entry.get("kind").map(scalar_string).unwrap_or_default(),
                    };
                    for spec in entry
                        .get("fieldSpecs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(spec) = FieldSpec::from_value(spec) {
                            self.add_name_ref(target.clone(), spec);
                        }
                    }
                } else if let Some(spec) = FieldSpec::from_value(entry) {
                    self.add(section, spec);
                }
            }
        }
        Ok(())
    }

    /// Adds everything of another configuration.
    pub fn merge(&mut self, other: &TransformerConfig) {
        for (mine, theirs) in [
            (&mut self.name_prefix, &other.name_prefix),
            (&mut self.name_suffix, &other.name_suffix),
            (&mut self.namespace, &other.namespace),
            (&mut self.common_labels, &other.common_labels),
            (&mut self.template_labels, &other.template_labels),
            (&mut self.labels, &other.labels),
            (&mut self.common_annotations, &other.common_annotations),
            (&mut self.var_reference, &other.var_reference),
            (&mut self.images, &other.images),
            (&mut self.replicas, &other.replicas),
        ] {
            for spec in theirs {
                push_unique(mine, spec.clone());
            }
        }
        for rule in &other.name_reference {
            for spec in &rule.specs {
                self.add_name_ref(rule.target.clone(), spec.clone());
            }
        }
    }
}

/// Calls `f` on every field `path` reaches in `node`, walking into every element of
/// sequences on the way. With `create`, missing maps and the final field are created
/// (the final one as `null`, for `f` to fill).
pub fn walk(
    node: &mut Value,
    path: &[String],
    create: bool,
    f: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((head, rest)) = path.split_first() else {
        return f(node);
    };
    match node {
        Value::Array(items) => {
            for item in items {
                walk(item, path, create, f)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            if !map.contains_key(head.as_str()) {
                if !create {
                    return Ok(());
                }
                let fresh = if rest.is_empty() {
                    Value::Null
                } else {
                    Value::Object(Map::new())
                };
                map.insert(head.clone(), fresh);
            }
            let child = map
                .get_mut(head.as_str())
                .expect("present or just inserted");
            if child.is_null() && !rest.is_empty() {
                if !create {
                    return Ok(());
                }
                *child = Value::Object(Map::new());
            }
            walk(child, rest, create, f)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_load() {
        let tc = TransformerConfig::defaults();
        assert!(tc.common_labels.len() > 20);
        assert!(tc
            .name_reference
            .iter()
            .any(|r| r.target.kind == "ConfigMap" && r.specs.len() > 40));
    }

    #[test]
    fn walk_creates_and_visits_sequences() {
        let mut v = json!({"spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        let mut seen = Vec::new();
        walk(
            &mut v,
            &split_path("spec/containers[]/image"),
            false,
            &mut |x| {
                seen.push(x.as_str().unwrap_or("").to_string());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, ["a", "b"]);
        walk(&mut v, &split_path("metadata/labels"), true, &mut |x| {
            *x = json!({"a": "b"});
            Ok(())
        })
        .unwrap();
        assert_eq!(v["metadata"]["labels"]["a"], "b");
    }

    #[test]
    fn escaped_slash_is_kept() {
        assert_eq!(
            split_path("metadata/annotations/a.io\\/b"),
            ["metadata", "annotations", "a.io/b"]
        );
    }
}
