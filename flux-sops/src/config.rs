//! `.sops.yaml` creation rules: which keys and selection rule a new file is encrypted
//! with.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::metadata::Selection;
use crate::tree::Value;
use crate::Error;

/// A recipient named by a creation rule, before PGP fingerprints are resolved to keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleRecipient {
    Age(String),
    /// A PGP fingerprint (upper-case hex).
    Pgp(String),
}

/// The parts of a creation rule that encryption needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreationRule {
    pub path_regex: Option<String>,
    pub key_groups: Vec<Vec<RuleRecipient>>,
    pub shamir_threshold: usize,
    pub selection: Option<Selection>,
    pub mac_only_encrypted: bool,
}

/// A parsed `.sops.yaml`.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub path: PathBuf,
    pub creation_rules: Vec<CreationRule>,
}

fn text_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Str(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
            .filter(|p| !p.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// Cloud key types a rule may name; we cannot use them yet.
const UNSUPPORTED: [(&str, &str); 6] = [
    ("kms", "AWS KMS"),
    ("gcp_kms", "GCP KMS"),
    ("azure_keyvault", "Azure Key Vault"),
    ("hc_vault_transit_uri", "HashiCorp Vault"),
    ("hc_vault", "HashiCorp Vault"),
    ("hckms", "Huawei Cloud KMS"),
];

fn group_from(value: &Value, file: &str) -> Result<Vec<RuleRecipient>, Error> {
    for (field, label) in UNSUPPORTED {
        if let Some(first) = text_list(value.get(field)).first() {
            return Err(Error::Config {
                file: file.to_string(),
                message: format!("{label} master keys are not supported yet (recipient {first})"),
            });
        }
        if let Some(Value::Seq(items)) = value.get(field) {
            if let Some(item) = items.first() {
                let name = ["arn", "resource_id", "vaultUrl", "key"]
                    .iter()
                    .find_map(|k| item.get(k).and_then(Value::as_str))
                    .unwrap_or("?");
                return Err(Error::Config {
                    file: file.to_string(),
                    message: format!(
                        "{label} master keys are not supported yet (recipient {name})"
                    ),
                });
            }
        }
    }
    let mut group: Vec<RuleRecipient> = text_list(value.get("age"))
        .into_iter()
        .map(RuleRecipient::Age)
        .collect();
    group.extend(
        text_list(value.get("pgp"))
            .into_iter()
            .map(|fp| RuleRecipient::Pgp(fp.replace(' ', "").to_ascii_uppercase())),
    );
    Ok(group)
}

impl Config {
    /// Parses `.sops.yaml` text.
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let file = path.display().to_string();
        let docs = crate::stores::yaml::load(text, &file)?;
        let root = docs.into_iter().next().unwrap_or(Value::Map(Vec::new()));
        let mut creation_rules = Vec::new();
        if let Some(Value::Seq(rules)) = root.get("creation_rules") {
            for rule in rules {
                let mut parsed = CreationRule {
                    path_regex: rule
                        .get("path_regex")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    ..CreationRule::default()
                };
                if let Some(Value::Seq(groups)) = rule.get("key_groups") {
                    for group in groups {
                        parsed.key_groups.push(group_from(group, &file)?);
                    }
                } else {
                    parsed.key_groups.push(group_from(rule, &file)?);
                }
                parsed.shamir_threshold = match rule.get("shamir_threshold") {
                    Some(Value::Int(i)) => usize::try_from(*i).unwrap_or(0),
                    _ => 0,
                };
                for field in [
                    "unencrypted_suffix",
                    "encrypted_suffix",
                    "unencrypted_regex",
                    "encrypted_regex",
                    "unencrypted_comment_regex",
                    "encrypted_comment_regex",
                ] {
                    if let Some(v) = rule.get(field).and_then(Value::as_str) {
                        if parsed.selection.is_some() {
                            return Err(Error::Config {
                                file: file.clone(),
                                message:
                                    "a creation rule may set only one of the suffix/regex options"
                                        .to_string(),
                            });
                        }
                        let v = v.to_string();
                        parsed.selection = Some(match field {
                            "unencrypted_suffix" => Selection::UnencryptedSuffix(v),
                            "encrypted_suffix" => Selection::EncryptedSuffix(v),
                            "unencrypted_regex" => Selection::UnencryptedRegex(v),
                            "encrypted_regex" => Selection::EncryptedRegex(v),
                            "unencrypted_comment_regex" => Selection::UnencryptedCommentRegex(v),
                            _ => Selection::EncryptedCommentRegex(v),
                        });
                    }
                }
                parsed.mac_only_encrypted =
                    matches!(rule.get("mac_only_encrypted"), Some(Value::Bool(true)));
                creation_rules.push(parsed);
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            creation_rules,
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|err| Error::Config {
            file: path.display().to_string(),
            message: format!("cannot read config: {err}"),
        })?;
        Config::parse(&text, path)
    }

    /// Looks for `.sops.yaml` in `start` and its parents, as sops does.
    pub fn find(start: &Path) -> Option<PathBuf> {
        let mut dir = Some(start);
        while let Some(d) = dir {
            let candidate = d.join(".sops.yaml");
            if candidate.is_file() {
                return Some(candidate);
            }
            dir = d.parent();
        }
        None
    }

    /// The first creation rule whose `path_regex` matches `file` (given as passed, and
    /// relative to the config's folder); a rule without `path_regex` matches anything.
    pub fn rule_for(&self, file: &Path) -> Result<&CreationRule, Error> {
        let given = file.to_string_lossy().into_owned();
        let relative = self
            .path
            .parent()
            .and_then(|dir| {
                let absolute = std::fs::canonicalize(file).ok()?;
                let dir = std::fs::canonicalize(dir).ok()?;
                absolute
                    .strip_prefix(dir)
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| given.clone());
        for rule in &self.creation_rules {
            let Some(pattern) = &rule.path_regex else {
                return Ok(rule);
            };
            let regex = Regex::new(pattern).map_err(|err| Error::Config {
                file: self.path.display().to_string(),
                message: format!("invalid path_regex {pattern:?}: {err}"),
            })?;
            if regex.is_match(&given) || regex.is_match(&relative) {
                return Ok(rule);
            }
        }
        Err(Error::Config {
            file: self.path.display().to_string(),
            message: format!("error loading config: no matching creation rules found for {given}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_rejects_cloud_keys() {
        let text = "creation_rules:\n    - path_regex: secrets/.*\\.yaml$\n      encrypted_regex: ^(data|stringData)$\n      age: age1a,age1b\n    - key_groups:\n        - age:\n            - age1c\n          pgp:\n            - 'ab cd'\n      shamir_threshold: 1\n";
        let config = Config::parse(text, Path::new(".sops.yaml")).unwrap();
        assert_eq!(config.creation_rules.len(), 2);
        let first = config.rule_for(Path::new("secrets/a.yaml")).unwrap();
        assert_eq!(
            first.key_groups[0],
            vec![
                RuleRecipient::Age("age1a".into()),
                RuleRecipient::Age("age1b".into())
            ]
        );
        assert_eq!(
            first.selection,
            Some(Selection::EncryptedRegex("^(data|stringData)$".into()))
        );
        let second = config.rule_for(Path::new("other.yaml")).unwrap();
        assert_eq!(second.key_groups[0][1], RuleRecipient::Pgp("ABCD".into()));
        let err = Config::parse(
            "creation_rules:\n    - kms: arn:aws:kms:eu:1:key/x\n",
            Path::new("c.yaml"),
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("not supported yet (recipient arn:aws:kms:eu:1:key/x)"));
    }
}
