//! configMapGenerator and secretGenerator, and the content hash kustomize appends to
//! generated names.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::types::{GeneratorArgs, GeneratorOptions, Kustomization};

/// A generator failure, placed in its kustomization file by the caller.
#[derive(Debug)]
pub(crate) enum Failure {
    Message(String),
    Error(Error),
}

impl Failure {
    pub(crate) fn in_file(self, kfile: &Path) -> Error {
        match self {
            Failure::Message(message) => Error::Transform {
                path: kfile.to_path_buf(),
                field: "generators".into(),
                message,
            },
            Failure::Error(e) => e,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

type Reader<'a> = dyn FnMut(&str) -> Result<(PathBuf, Vec<u8>)> + 'a;

/// Runs the `configMapGenerator` and `secretGenerator` fields.
pub(crate) fn run(
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    read: &mut Reader<'_>,
) -> std::result::Result<(), Failure> {
    for args in &k.config_map_generator {
        generate(args, false, k.generator_options.as_ref(), resources, read)?;
    }
    for args in &k.secret_generator {
        generate(args, true, k.generator_options.as_ref(), resources, read)?;
    }
    Ok(())
}

/// Runs a `generators:` plugin configuration (builtin ConfigMapGenerator/SecretGenerator).
pub(crate) fn run_plugin(
    config: &Value,
    resources: &mut Vec<Resource>,
    read: &mut Reader<'_>,
) -> std::result::Result<(), Failure> {
    let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
    let secret = match kind {
        "ConfigMapGenerator" => false,
        "SecretGenerator" => true,
        other => {
            return Err(Failure::Message(format!(
                "generator kind '{other}' is not supported (only builtin ConfigMapGenerator and SecretGenerator)"
            )))
        }
    };
    // The plugin object also has apiVersion, kind, metadata and maybe other fields;
    // only the generator arguments are read (kustomize reads plugin configs leniently).
    let known = [
        "namespace",
        "behavior",
        "files",
        "literals",
        "envs",
        "env",
        "type",
        "options",
    ];
    let arguments: serde_json::Map<String, Value> = config
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| known.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut args: GeneratorArgs = serde_json::from_value(Value::Object(arguments))
        .map_err(|e| Failure::Message(format!("{kind}: {e}")))?;
    let meta = config.get("metadata");
    args.name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if args.namespace.is_none() {
        args.namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    generate(&args, secret, None, resources, read)
}

fn merged_options(
    local: Option<&GeneratorOptions>,
    global: Option<&GeneratorOptions>,
) -> GeneratorOptions {
    let mut out = global.cloned().unwrap_or_default();
    if let Some(local) = local {
        for (k, v) in &local.labels {
            out.labels.insert(k.clone(), v.clone());
        }
        for (k, v) in &local.annotations {
            out.annotations.insert(k.clone(), v.clone());
        }
        if local.disable_name_suffix_hash.is_some() {
            out.disable_name_suffix_hash = local.disable_name_suffix_hash;
        }
        if local.immutable.is_some() {
            out.immutable = local.immutable;
        }
    }
    out
}

fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

fn remove_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn parse_env(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("invalid env line {}: '{line}'", i + 1));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

fn generate(
    args: &GeneratorArgs,
    secret: bool,
    global: Option<&GeneratorOptions>,
    resources: &mut Vec<Resource>,
    read: &mut Reader<'_>,
) -> std::result::Result<(), Failure> {
    let what = if secret {
        "secretGenerator"
    } else {
        "configMapGenerator"
    };
    let name = args
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Failure::Message(format!("{what}: a generator needs a name")))?;
    let options = merged_options(args.options.as_ref(), global);
    // (key, bytes) pairs in input order.
    let mut pairs: IndexMap<String, Vec<u8>> = IndexMap::new();
    let mut add = |key: String, value: Vec<u8>| -> std::result::Result<(), Failure> {
        if pairs.contains_key(&key) {
            return Err(Failure::Message(format!(
                "{what} {name}: configmap/secret key '{key}' appears more than once"
            )));
        }
        pairs.insert(key, value);
        Ok(())
    };
    let env_files = args.envs.iter().chain(args.env.iter());
    for env in env_files {
        let (path, bytes) = read(env)?;
        let text = String::from_utf8_lossy(&bytes);
        for (k, v) in parse_env(&text)
            .map_err(|m| Failure::Message(format!("{what} {name}: {}: {m}", path.display())))?
        {
            add(k, v.into_bytes())?;
        }
    }
    for literal in &args.literals {
        let Some((k, v)) = literal.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(Failure::Message(format!(
                "{what} {name}: invalid literal source {literal}, expected key=value"
            )));
        };
        add(k.to_string(), remove_quotes(v).as_bytes().to_vec())?;
    }
    for file in &args.files {
        let (key, rel) = match file.split_once('=') {
            Some((k, p)) if !k.is_empty() => (k.to_string(), p),
            Some(_) => {
                return Err(Failure::Message(format!(
                    "{what} {name}: key names or file paths cannot be empty: {file}"
                )))
            }
            None => (base_name(file).to_string(), file.as_str()),
        };
        let (_, bytes) = read(rel)?;
        add(key, bytes)?;
    }
    let mut meta = Map::new();
    meta.insert("name".into(), Value::String(name.clone()));
    if let Some(ns) = args.namespace.as_deref().filter(|s| !s.is_empty()) {
        meta.insert("namespace".into(), Value::String(ns.to_string()));
    }
    if !options.labels.is_empty() {
        meta.insert("labels".into(), string_map(&options.labels));
    }
    if !options.annotations.is_empty() {
        meta.insert("annotations".into(), string_map(&options.annotations));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert(
        "kind".into(),
        json!(if secret { "Secret" } else { "ConfigMap" }),
    );
    obj.insert("metadata".into(), Value::Object(meta));
    let mut data = Map::new();
    let mut binary = Map::new();
    for (k, v) in pairs {
        if secret {
            data.insert(k, Value::String(secret_base64(&v)));
        } else {
            match String::from_utf8(v) {
                Ok(s) => {
                    data.insert(k, Value::String(s));
                }
                Err(e) => {
                    binary.insert(
                        k,
                        Value::String(
                            base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                        ),
                    );
                }
            }
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if secret {
        obj.insert(
            "type".into(),
            Value::String(args.kind.clone().unwrap_or_else(|| "Opaque".into())),
        );
    }
    if options.immutable == Some(true) {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut generated = Resource::new(Value::Object(obj));
    generated.needs_hash = options.disable_name_suffix_hash != Some(true);
    let behavior = args.behavior.as_deref().unwrap_or("create");
    generated.behavior = Some(behavior.to_string());
    let kind = generated.kind().to_string();
    let ns = args.namespace.clone().unwrap_or_default();
    let existing = resources.iter().position(|r| {
        r.kind() == kind
            && r.all_names().any(|(_, n)| n == name)
            && (ns_eq(r.namespace(), &ns) || r.all_names().any(|(rns, _)| ns_eq(rns, &ns)))
    });
    match (behavior, existing) {
        ("create", None) => resources.push(generated),
        ("create", Some(_)) => {
            return Err(Failure::Message(format!(
                "{what}: {kind} '{name}' already exists; use behavior merge or replace"
            )))
        }
        ("merge" | "replace", Some(i)) => {
            merge_generated(&mut resources[i], generated, behavior == "replace");
        }
        ("merge" | "replace", None) => {
            return Err(Failure::Message(format!(
                "{what}: id {kind} '{name}' does not exist; cannot merge or replace"
            )))
        }
        (other, _) => {
            return Err(Failure::Message(format!(
                "{what} {name}: unknown behavior '{other}'"
            )))
        }
    }
    Ok(())
}

/// Base64 as kustomize writes generated Secret data: lines of 70 characters, each
/// ended by a newline once the text needs more than one line.
fn secret_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn ns_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| if s.is_empty() { "default" } else { s }.to_string();
    norm(a) == norm(b)
}

fn string_map(m: &IndexMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn merge_generated(existing: &mut Resource, new: Resource, replace: bool) {
    existing.needs_hash = existing.needs_hash || new.needs_hash;
    let new_value = new.into_value();
    let target = existing.value_mut();
    for field in ["data", "binaryData"] {
        let incoming = new_value.get(field).and_then(Value::as_object).cloned();
        if replace {
            match incoming {
                Some(m) => {
                    target[field] = Value::Object(m);
                }
                None => {
                    if let Some(o) = target.as_object_mut() {
                        o.remove(field);
                    }
                }
            }
        } else if let Some(m) = incoming {
            if !target.get(field).is_some_and(Value::is_object) {
                target[field] = Value::Object(Map::new());
            }
            if let Some(t) = target[field].as_object_mut() {
                for (k, v) in m {
                    t.insert(k, v);
                }
            }
        }
    }
    for field in ["labels", "annotations"] {
        if let Some(m) = new_value
            .get("metadata")
            .and_then(|x| x.get(field))
            .and_then(Value::as_object)
        {
            let meta = &mut target["metadata"];
            if !meta.get(field).is_some_and(Value::is_object) {
                meta[field] = Value::Object(Map::new());
            }
            if let Some(t) = meta[field].as_object_mut() {
                for (k, v) in m {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if let Some(imm) = new_value.get("immutable") {
        target["immutable"] = imm.clone();
    }
}

/// Appends `-<hash>` to every generated object that wants it.
pub(crate) fn add_hash_suffixes(resources: &mut [Resource]) {
    for r in resources.iter_mut().filter(|r| r.needs_hash) {
        let hash = content_hash(r.value());
        let name = format!("{}-{hash}", r.name());
        r.set_name(&name);
        r.needs_hash = false;
    }
}

/// kustomize's content hash of a ConfigMap or Secret.
pub fn content_hash(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    // kustomize looks the name up as one field literally called "metadata/name", which
    // never exists: the name always hashes as an empty string.
    let name = Value::String(String::new());
    let field = |k: &str| v.get(k).cloned().unwrap_or(Value::String(String::new()));
    let mut m = Map::new();
    m.insert("kind".into(), Value::String(kind.to_string()));
    m.insert("name".into(), name);
    m.insert("data".into(), field("data"));
    if kind == "Secret" {
        m.insert("type".into(), field("type"));
        if v.get("stringData").is_some_and(Value::is_object) {
            m.insert("stringData".into(), field("stringData"));
        }
    } else if v.get("binaryData").is_some_and(Value::is_object) {
        m.insert("binaryData".into(), field("binaryData"));
    }
    let mut encoded = String::new();
    go_json(&Value::Object(m), &mut encoded);
    let digest = hex::encode(Sha256::digest(encoded.as_bytes()));
    digest[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// JSON as Go's encoding/json writes it: sorted keys, HTML-safe escapes.
fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(k, out);
                out.push(':');
                go_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::String(s) => go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn go_string(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_kustomize() {
        // kustomize's own example: a ConfigMap named "foo" with data a=x.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foo"}, "data": {"a": "x"}});
        let h = content_hash(&cm);
        assert_eq!(h.len(), 10);
        assert!(!h.contains(['0', '1', '3', 'a', 'e']));
    }

    #[test]
    fn env_lines() {
        let kv = parse_env("# c\nA=1\n\nB=x=y\nC\n").unwrap();
        assert_eq!(
            kv,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), String::new())
            ]
        );
    }
}
