//! The `sops` metadata block: parsing from any store and writing it back.

use regex::Regex;

use crate::tree::{MapItem, Value};
use crate::Error;

/// An age master key entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AgeEntry {
    pub recipient: String,
    pub enc: String,
}

/// A PGP master key entry.
#[derive(Clone, Debug, PartialEq)]
pub struct PgpEntry {
    pub fingerprint: String,
    pub created_at: String,
    pub enc: String,
}

/// A master key of a kind this crate cannot use yet (cloud KMS, Vault, ...), kept so it
/// can be named in errors and written back.
#[derive(Clone, Debug, PartialEq)]
pub struct OtherEntry {
    /// The metadata list it came from (`kms`, `gcp_kms`, `azure_kv`, `hc_vault`, `hckms`).
    pub kind: String,
    /// A readable name: ARN, resource id, vault URL + key, ...
    pub name: String,
    /// The whole entry, written back unchanged.
    pub raw: Value,
}

/// One key group: any of its keys recovers the group's data key (or Shamir share).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyGroup {
    pub age: Vec<AgeEntry>,
    pub pgp: Vec<PgpEntry>,
    pub other: Vec<OtherEntry>,
}

impl KeyGroup {
    fn is_empty(&self) -> bool {
        self.age.is_empty() && self.pgp.is_empty() && self.other.is_empty()
    }
}

/// Which values are encrypted (at most one rule is allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(String),
    EncryptedRegex(String),
    UnencryptedCommentRegex(String),
    EncryptedCommentRegex(String),
}

impl Selection {
    pub fn field(&self) -> &'static str {
        match self {
            Selection::UnencryptedSuffix(_) => "unencrypted_suffix",
            Selection::EncryptedSuffix(_) => "encrypted_suffix",
            Selection::UnencryptedRegex(_) => "unencrypted_regex",
            Selection::EncryptedRegex(_) => "encrypted_regex",
            Selection::UnencryptedCommentRegex(_) => "unencrypted_comment_regex",
            Selection::EncryptedCommentRegex(_) => "encrypted_comment_regex",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Selection::UnencryptedSuffix(v)
            | Selection::EncryptedSuffix(v)
            | Selection::UnencryptedRegex(v)
            | Selection::EncryptedRegex(v)
            | Selection::UnencryptedCommentRegex(v)
            | Selection::EncryptedCommentRegex(v) => v,
        }
    }

    fn from_field(field: &str, value: String) -> Option<Selection> {
        Some(match field {
            "unencrypted_suffix" => Selection::UnencryptedSuffix(value),
            "encrypted_suffix" => Selection::EncryptedSuffix(value),
            "unencrypted_regex" => Selection::UnencryptedRegex(value),
            "encrypted_regex" => Selection::EncryptedRegex(value),
            "unencrypted_comment_regex" => Selection::UnencryptedCommentRegex(value),
            "encrypted_comment_regex" => Selection::EncryptedCommentRegex(value),
            _ => return None,
        })
    }
}

/// The parsed `sops` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    pub key_groups: Vec<KeyGroup>,
    pub shamir_threshold: usize,
    pub lastmodified: String,
    pub mac: String,
    pub selection: Selection,
    pub mac_only_encrypted: bool,
    pub version: String,
}

const SELECTION_FIELDS: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

const OTHER_KINDS: [&str; 5] = ["kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"];

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Str(s) | Value::Time(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(crate::tree::format_float_plain(*f)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field_text(map: &Value, key: &str) -> String {
    map.get(key).and_then(scalar_text).unwrap_or_default()
}

fn list<'a>(map: &'a Value, key: &str) -> &'a [Value] {
    match map.get(key) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    }
}

fn other_name(kind: &str, entry: &Value) -> String {
    let fields: &[&str] = match kind {
        "kms" => &["arn"],
        "gcp_kms" => &["resource_id"],
        "azure_kv" => &["vault_url", "name", "version"],
        "hc_vault" => &["vault_address", "engine_path", "key_name"],
        _ => &["key_id", "resource_id", "arn"],
    };
    let parts: Vec<String> = fields
        .iter()
        .map(|f| field_text(entry, f))
        .filter(|s| !s.is_empty())
        .collect();
    parts.join("/")
}

fn parse_group(group: &Value, file: &str) -> Result<KeyGroup, Error> {
    let mut out = KeyGroup::default();
    for entry in list(group, "age") {
        out.age.push(AgeEntry {
            recipient: field_text(entry, "recipient"),
            enc: field_text(entry, "enc"),
        });
    }
    for entry in list(group, "pgp") {
        let created_at = field_text(entry, "created_at");
        if !created_at.is_empty() && crate::time::rfc3339_nanos(&created_at).is_none() {
            return Err(Error::metadata(
                file,
                format!("invalid pgp created_at {created_at:?}"),
            ));
        }
        out.pgp.push(PgpEntry {
            fingerprint: field_text(entry, "fp"),
            created_at,
            enc: field_text(entry, "enc"),
        });
    }
    for kind in OTHER_KINDS {
        for entry in list(group, kind) {
            out.other.push(OtherEntry {
                kind: kind.to_string(),
                name: other_name(kind, entry),
                raw: entry.clone(),
            });
        }
    }
    Ok(out)
}

impl Metadata {
    /// Parses the metadata mapping (from YAML/JSON, or unflattened dotenv/INI fields).
    pub fn from_value(value: &Value, file: &str) -> Result<Metadata, Error> {
        if !matches!(value, Value::Map(_)) {
            return Err(Error::metadata(file, "the sops metadata is not a mapping"));
        }
        let top = parse_group(value, file)?;
        let key_groups = if top.is_empty() {
            list(value, "key_groups")
                .iter()
                .map(|g| parse_group(g, file))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            vec![top]
        };
        if key_groups.iter().all(KeyGroup::is_empty) {
            return Err(Error::metadata(file, "No keys found in file"));
        }
        let mut selection = None;
        for field in SELECTION_FIELDS {
            let text = field_text(value, field);
            if !text.is_empty() {
                if selection.is_some() {
                    return Err(Error::metadata(
                        file,
                        "Cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file",
                    ));
                }
                selection = Selection::from_field(field, text);
            }
        }
        let shamir_threshold = match value.get("shamir_threshold") {
            None | Some(Value::Null) => 0,
            Some(Value::Int(i)) => usize::try_from(*i).unwrap_or(0),
            Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 => *f as usize,
            Some(Value::Str(s)) => s
                .parse::<usize>()
                .ok()
                .or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0)
                        .map(|f| f as usize)
                })
                .ok_or_else(|| Error::metadata(file, "invalid shamir_threshold"))?,
            Some(_) => return Err(Error::metadata(file, "invalid shamir_threshold")),
        };
        let mac_only_encrypted = match value.get("mac_only_encrypted") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) => s == "true",
            _ => false,
        };
        Ok(Metadata {
            key_groups,
            shamir_threshold,
            lastmodified: field_text(value, "lastmodified"),
            mac: field_text(value, "mac"),
            selection: selection
                .unwrap_or_else(|| Selection::UnencryptedSuffix("_unencrypted".to_string())),
            mac_only_encrypted,
            version: field_text(value, "version"),
        })
    }

    /// The metadata as sops 3.11 writes it (field order of its YAML/JSON struct).
    pub fn to_value(&self) -> Value {
        let mut out = Value::Map(Vec::new());
        let single = self.key_groups.len() == 1;
        if !single {
            out.push_entry("shamir_threshold", Value::Int(self.shamir_threshold as i64));
            let groups = self
                .key_groups
                .iter()
                .map(|g| {
                    let mut gv = Value::Map(Vec::new());
                    write_others(&mut gv, g, &["kms", "gcp_kms", "azure_kv"], false);
                    write_others(&mut gv, g, &["hc_vault"], true);
                    gv.push_entry("age", age_list(g));
                    if !g.pgp.is_empty() {
                        gv.push_entry("pgp", pgp_list(g));
                    }
                    gv
                })
                .collect();
            out.push_entry("key_groups", Value::Seq(groups));
        } else if let Some(g) = self.key_groups.first() {
            write_others(
                &mut out,
                g,
                &["kms", "gcp_kms", "azure_kv", "hc_vault"],
                false,
            );
            if !g.age.is_empty() {
                out.push_entry("age", age_list(g));
            }
        }
        out.push_entry("lastmodified", Value::Str(self.lastmodified.clone()));
        out.push_entry("mac", Value::Str(self.mac.clone()));
        if single {
            if let Some(g) = self.key_groups.first() {
                if !g.pgp.is_empty() {
                    out.push_entry("pgp", pgp_list(g));
                }
            }
        }
        out.push_entry(
            self.selection.field(),
            Value::Str(self.selection.value().to_string()),
        );
        if self.mac_only_encrypted {
            out.push_entry("mac_only_encrypted", Value::Bool(true));
        }
        out.push_entry("version", Value::Str(self.version.clone()));
        out
    }

    /// Compiled selection rules for walking the tree.
    pub fn rules(&self) -> Rules {
        let compile = |pattern: &str| Regex::new(pattern).ok();
        let (suffix, regex, comment_regex) = match &self.selection {
            Selection::UnencryptedSuffix(s) => (Some((false, s.clone())), None, None),
            Selection::EncryptedSuffix(s) => (Some((true, s.clone())), None, None),
            Selection::UnencryptedRegex(r) => (None, Some((false, compile(r))), None),
            Selection::EncryptedRegex(r) => (None, Some((true, compile(r))), None),
            Selection::UnencryptedCommentRegex(r) => (None, None, Some((false, compile(r)))),
            Selection::EncryptedCommentRegex(r) => (None, None, Some((true, compile(r)))),
        };
        Rules {
            suffix,
            regex,
            comment_regex,
            mac_only_encrypted: self.mac_only_encrypted,
        }
    }
}

fn write_others(out: &mut Value, group: &KeyGroup, kinds: &[&str], always: bool) {
    for kind in kinds {
        let entries: Vec<Value> = group
            .other
            .iter()
            .filter(|o| o.kind == *kind)
            .map(|o| o.raw.clone())
            .collect();
        if always || !entries.is_empty() {
            out.push_entry(*kind, Value::Seq(entries));
        }
    }
}

fn age_list(group: &KeyGroup) -> Value {
    Value::Seq(
        group
            .age
            .iter()
            .map(|a| {
                Value::Map(vec![
                    MapItem::Entry("recipient".into(), Value::Str(a.recipient.clone())),
                    MapItem::Entry("enc".into(), Value::Str(a.enc.clone())),
                ])
            })
            .collect(),
    )
}

fn pgp_list(group: &KeyGroup) -> Value {
    Value::Seq(
        group
            .pgp
            .iter()
            .map(|p| {
                Value::Map(vec![
                    MapItem::Entry("created_at".into(), Value::Str(p.created_at.clone())),
                    MapItem::Entry("enc".into(), Value::Str(p.enc.clone())),
                    MapItem::Entry("fp".into(), Value::Str(p.fingerprint.clone())),
                ])
            })
            .collect(),
    )
}

/// The compiled selection rules.
#[derive(Clone, Debug)]
pub struct Rules {
    /// (encrypt-if-match, suffix)
    pub suffix: Option<(bool, String)>,
    /// (encrypt-if-match, regex); an invalid regex never matches.
    pub regex: Option<(bool, Option<Regex>)>,
    pub comment_regex: Option<(bool, Option<Regex>)>,
    pub mac_only_encrypted: bool,
}

impl Rules {
    /// Decides whether the value at `path` is encrypted. `comments` is the active comment
    /// stack; `current_comment` is the comment being decided, if it is one.
    pub fn should_encrypt(
        &self,
        path: &[String],
        comments: &[Vec<String>],
        current_comment: Option<&str>,
    ) -> bool {
        if let Some((encrypt_if_match, suffix)) = &self.suffix {
            let matched = path.iter().any(|k| k.ends_with(suffix.as_str()));
            return if *encrypt_if_match { matched } else { !matched };
        }
        if let Some((encrypt_if_match, regex)) = &self.regex {
            let matched = regex
                .as_ref()
                .is_some_and(|re| path.iter().any(|k| re.is_match(k)));
            return if *encrypt_if_match { matched } else { !matched };
        }
        if let Some((encrypt_if_match, regex)) = &self.comment_regex {
            let Some(re) = regex else {
                return !encrypt_if_match;
            };
            let matched = comments.iter().flatten().any(|c| {
                if *encrypt_if_match && current_comment == Some(c.as_str()) {
                    return false;
                }
                re.is_match(c)
            });
            return if *encrypt_if_match { matched } else { !matched };
        }
        true
    }
}

/// Flattens metadata for dotenv/INI: `age__list_0__map_enc`, newlines as `\n`.
pub fn flatten(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Map(items) => {
                for item in items {
                    if let MapItem::Entry(k, v) = item {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}__map_{k}")
                        };
                        walk(&key, v, out);
                    }
                }
            }
            Value::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}__list_{i}"), v, out);
                }
            }
            Value::Null => {}
            other => {
                if let Some(text) = scalar_text(other) {
                    out.push((prefix.to_string(), text.replace('\n', "\\n")));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// Rebuilds the metadata mapping from flattened `key=value` pairs.
pub fn unflatten(pairs: &[(String, String)]) -> Value {
    enum Step {
        Map(String),
        List(usize),
    }
    fn insert(target: &mut Value, steps: &[Step], leaf: Value) {
        let Some((first, rest)) = steps.split_first() else {
            *target = leaf;
            return;
        };
        match first {
            Step::Map(name) => {
                if !matches!(target, Value::Map(_)) {
                    *target = Value::Map(Vec::new());
                }
                if let Value::Map(items) = target {
                    let pos = items
                        .iter()
                        .position(|i| matches!(i, MapItem::Entry(k, _) if k == name));
                    let idx = if let Some(p) = pos {
                        p
                    } else {
                        items.push(MapItem::Entry(name.clone(), Value::Null));
                        items.len() - 1
                    };
                    if let MapItem::Entry(_, v) = &mut items[idx] {
                        insert(v, rest, leaf);
                    }
                }
            }
            Step::List(index) => {
                if !matches!(target, Value::Seq(_)) {
                    *target = Value::Seq(Vec::new());
                }
                if let Value::Seq(items) = target {
                    while items.len() <= *index {
                        items.push(Value::Null);
                    }
                    insert(&mut items[*index], rest, leaf);
                }
            }
        }
    }
    let mut root = Value::Map(Vec::new());
    for (key, value) in pairs {
        let mut steps = Vec::new();
        let mut parts = key.split("__");
        if let Some(head) = parts.next() {
            steps.push(Step::Map(head.to_string()));
        }
        for part in parts {
            if let Some(name) = part.strip_prefix("map_") {
                steps.push(Step::Map(name.to_string()));
            } else if let Some(index) = part.strip_prefix("list_").and_then(|i| i.parse().ok()) {
                steps.push(Step::List(index));
            } else {
                steps.push(Step::Map(part.to_string()));
            }
        }
        insert(&mut root, &steps, Value::Str(value.replace("\\n", "\n")));
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_round_trips() {
        let pairs = vec![
            ("age__list_0__map_enc".to_string(), "a\\nb".to_string()),
            (
                "age__list_0__map_recipient".to_string(),
                "age1x".to_string(),
            ),
            ("version".to_string(), "3.11.0".to_string()),
        ];
        let value = unflatten(&pairs);
        assert_eq!(
            value.get("age"),
            Some(&Value::Seq(vec![Value::Map(vec![
                MapItem::Entry("enc".into(), Value::Str("a\nb".into())),
                MapItem::Entry("recipient".into(), Value::Str("age1x".into())),
            ])]))
        );
        assert_eq!(flatten(&value), pairs);
    }

    #[test]
    fn rules_follow_sops_order() {
        let rules = Rules {
            suffix: None,
            regex: Some((true, Regex::new("^(data|stringData)$").ok())),
            comment_regex: None,
            mac_only_encrypted: false,
        };
        assert!(rules.should_encrypt(&["data".into(), "x".into()], &[], None));
        assert!(!rules.should_encrypt(&["metadata".into()], &[], None));
    }
}
