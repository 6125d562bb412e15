//! Flux's post-build variable substitution (`spec.postBuild`), as kustomize-controller runs it
//! on each built resource after decryption.
//!
//! Variables come from `substituteFrom` ConfigMaps and Secrets in order (later ones override
//! earlier ones), then from the inline `substitute` map, which overrides all. Every value loses
//! its `\n` characters and every name must be a shell-style identifier. A resource labelled or
//! annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` is left alone.

use std::collections::BTreeMap;

use crate::envsubst::{self, EnvsubstError};

/// The label/annotation that turns substitution off for one object.
pub const SUBSTITUTE_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";
/// The value of [`SUBSTITUTE_KEY`] that disables substitution (exact, lowercase).
pub const DISABLED_VALUE: &str = "disabled";
/// The pattern variable names must match, spelled as Flux reports it.
pub const VAR_NAME_PATTERN: &str = "^[_[:alpha:]][_[:alpha:][:digit:]]*$";

/// Why substitution failed.
#[derive(Debug, thiserror::Error)]
pub enum PostBuildError {
    /// A `substituteFrom` object that is not optional was not found.
    #[error("substitute from '{kind}/{name}' error: {reason}")]
    SourceNotFound {
        /// `ConfigMap` or `Secret`.
        kind: String,
        /// The object's name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A variable name is not an identifier.
    #[error("'{0}' var name is invalid, must match '{VAR_NAME_PATTERN}'")]
    InvalidName(String),
    /// The object's YAML could not be substituted.
    #[error("{object}: {source}")]
    Substitute {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// The parse or strict-mode error.
        #[source]
        source: EnvsubstError,
    },
}

/// How substitution decides to run (`spec.postBuild.substituteStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Substitute only when at least one variable is defined (Flux's default).
    #[default]
    WithVariables,
    /// Always evaluate the expressions, even with no variables (defaults then apply).
    Always,
}

/// The final variable set of one Kustomization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or overrides) the entries of one `substituteFrom` source, in `spec` order.
    ///
    /// `data` is `None` when the object does not exist: an error unless `optional`.
    /// Secret values must already be decoded from base64.
    pub fn add_source(
        &mut self,
        kind: &str,
        name: &str,
        optional: bool,
        data: Option<&BTreeMap<String, String>>,
    ) -> Result<(), PostBuildError> {
        match data {
            Some(data) => {
                for (key, value) in data {
                    self.insert(key, value)?;
                }
                Ok(())
            }
            None if optional => Ok(()),
            None => Err(PostBuildError::SourceNotFound {
                kind: kind.to_string(),
                name: name.to_string(),
                // The wording of the API server's NotFound error, which Flux wraps.
                reason: format!("{}s \"{name}\" not found", kind.to_ascii_lowercase()),
            }),
        }
    }

    /// Adds the inline `substitute` map, which overrides every source.
    pub fn add_inline(&mut self, inline: &BTreeMap<String, String>) -> Result<(), PostBuildError> {
        for (key, value) in inline {
            self.insert(key, value)?;
        }
        Ok(())
    }

    fn insert(&mut self, key: &str, value: &str) -> Result<(), PostBuildError> {
        if !is_valid_name(key) {
            return Err(PostBuildError::InvalidName(key.to_string()));
        }
        self.values.insert(key.to_string(), value.replace('\n', ""));
        Ok(())
    }

    /// The value of one variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// True when no variable is defined.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// All variables, sorted by name (for `flux debug --show-vars`-style output).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// `^[_[:alpha:]][_[:alpha:][:digit:]]*$` with ASCII classes, as Go's regexp reads it.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// True when the object's labels or annotations disable substitution.
pub fn is_disabled<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> bool {
    labels
        .into_iter()
        .chain(annotations)
        .any(|(k, v)| k == SUBSTITUTE_KEY && v == DISABLED_VALUE)
}

/// Substitutes one object's YAML text.
///
/// Returns `Ok(None)` when nothing is to be done (no variables and the `WithVariables`
/// strategy), so the caller keeps the object untouched.
pub fn substitute_object(
    object: &str,
    yaml: &str,
    vars: &Variables,
    strategy: Strategy,
    strict: bool,
) -> Result<Option<String>, PostBuildError> {
    if vars.is_empty() && strategy == Strategy::WithVariables {
        return Ok(None);
    }
    envsubst::envsubst(yaml, strict, &|name| vars.get(name).map(str::to_string))
        .map(Some)
        .map_err(|source| PostBuildError::Substitute {
            object: object.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn later_sources_override_and_inline_wins() {
        let mut vars = Variables::new();
        vars.add_source(
            "ConfigMap",
            "a",
            false,
            Some(&map(&[("x", "1"), ("y", "a")])),
        )
        .unwrap();
        vars.add_source("Secret", "b", false, Some(&map(&[("y", "b\nb")])))
            .unwrap();
        vars.add_inline(&map(&[("x", "inline")])).unwrap();
        assert_eq!(vars.get("x"), Some("inline"));
        assert_eq!(vars.get("y"), Some("bb"), "newlines are removed");
    }

    #[test]
    fn missing_sources_fail_unless_optional() {
        let mut vars = Variables::new();
        assert!(vars.add_source("ConfigMap", "opt", true, None).is_ok());
        let err = vars.add_source("Secret", "vars", false, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "substitute from 'Secret/vars' error: secrets \"vars\" not found"
        );
    }

    #[test]
    fn invalid_names_are_rejected_with_flux_wording() {
        let mut vars = Variables::new();
        let err = vars.add_inline(&map(&[("my-var", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'my-var' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
        );
        assert!(is_valid_name("_a1"));
        assert!(!is_valid_name("1a"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn strategy_and_strict_mode() {
        let empty = Variables::new();
        let yaml = "replicas: ${n:=2}\n";
        assert_eq!(
            substitute_object(
                "Deployment/ns/a",
                yaml,
                &empty,
                Strategy::WithVariables,
                true
            )
            .unwrap(),
            None
        );
        assert_eq!(
            substitute_object("Deployment/ns/a", yaml, &empty, Strategy::Always, true)
                .unwrap()
                .as_deref(),
            Some("replicas: 2\n")
        );
        let mut vars = Variables::new();
        vars.add_inline(&map(&[("other", "x")])).unwrap();
        let err = substitute_object(
            "ConfigMap/ns/c",
            "a: ${missing}",
            &vars,
            Strategy::WithVariables,
            true,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConfigMap/ns/c: variable not set (strict mode): \"missing\""
        );
        assert_eq!(
            substitute_object(
                "ConfigMap/ns/c",
                "a: ${missing}",
                &vars,
                Strategy::WithVariables,
                false
            )
            .unwrap()
            .as_deref(),
            Some("a: ")
        );
    }

    #[test]
    fn disable_marker_on_labels_or_annotations() {
        assert!(is_disabled([(SUBSTITUTE_KEY, "disabled")], []));
        assert!(is_disabled([], [(SUBSTITUTE_KEY, "disabled")]));
        assert!(!is_disabled([(SUBSTITUTE_KEY, "Disabled")], []));
    }
}
