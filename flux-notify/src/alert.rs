//! Alerts: which events reach which provider, and the metadata the provider sees.
//!
//! Pure port of notification-controller's `filterAlertsForEvent`, `eventMatchesAlertSource`,
//! `messageIsIncluded/Excluded` and `combineEventMetadata`. Problems that Flux reports as
//! Warning events on the Alert come back as [`Warning`] values.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::event::{Event, ObjectReference, Severity, EVENT_GROUP};

/// The object metadata fields this crate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// UID (commit-status context and Opsgenie alias derive from a Provider's UID).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A reference to an object in the same namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalObjectReference {
    /// Name.
    pub name: String,
}

/// `Alert.spec.eventSources[]` (a `CrossNamespaceObjectReference`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    /// API version (informational for matching).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Kind, compared exactly.
    pub kind: String,
    /// Name; `*` matches any, and `*` inside a name matches any run of characters.
    pub name: String,
    /// Namespace; defaults to the Alert's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Labels the involved object must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// `Alert.spec` (v1beta3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// The Provider to send to.
    pub provider_ref: LocalObjectReference,
    /// `info` (default, all events) or `error` (errors only).
    #[serde(default)]
    pub event_severity: Severity,
    /// Sources whose events this Alert takes.
    #[serde(default)]
    pub event_sources: Vec<EventSource>,
    /// Regexes; when non-empty the message must match one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inclusion_list: Vec<String>,
    /// Regexes; a message matching any is dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusion_list: Vec<String>,
    /// Extra metadata merged into every notification.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_metadata: BTreeMap<String, String>,
    /// Deprecated summary, merged as metadata key `summary`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Suspended Alerts take no events.
    #[serde(default)]
    pub suspend: bool,
}

/// An Alert object (`notification.toolkit.fluxcd.io/v1beta3`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Alert {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: AlertSpec,
    #[serde(skip)]
    compiled: OnceLock<CompiledLists>,
}

#[derive(Debug, Clone, Default)]
struct CompiledLists {
    inclusion: Vec<Result<Regex, String>>,
    exclusion: Vec<Result<Regex, String>>,
}

/// A Warning event Flux would record on an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `Kind/namespace/name` of the object the warning is about.
    pub object: String,
    /// CamelCase reason (`InvalidConfig`, `SourceFetchFailed`, `MetadataAppendFailed`, …).
    pub reason: String,
    /// Message.
    pub message: String,
}

/// Looks up an involved object's labels, for `matchLabels` (the controller GETs the object).
pub trait LabelSource {
    /// The object's labels, or `None` if it cannot be fetched.
    fn labels(&self, object: &ObjectReference) -> Option<BTreeMap<String, String>>;
}

impl<F> LabelSource for F
where
    F: Fn(&ObjectReference) -> Option<BTreeMap<String, String>>,
{
    fn labels(&self, object: &ObjectReference) -> Option<BTreeMap<String, String>> {
        self(object)
    }
}

/// A label source that knows no objects (every `matchLabels` source fails to match).
pub fn no_labels(_: &ObjectReference) -> Option<BTreeMap<String, String>> {
    None
}

/// `*`-glob match over whole names.
fn glob_match(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if !pattern.contains('*') {
        return pattern == name;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Alert {
    /// Builds an Alert from its parts.
    pub fn new(name: &str, namespace: &str, spec: AlertSpec) -> Self {
        Alert {
            metadata: ObjectMeta {
                name: name.into(),
                namespace: namespace.into(),
                ..ObjectMeta::default()
            },
            spec,
            compiled: OnceLock::new(),
        }
    }

    /// Parses an Alert manifest (YAML or JSON).
    pub fn from_yaml(text: &str) -> crate::Result<Self> {
        serde_yaml::from_str(text).map_err(|e| crate::Error::InvalidConfig {
            object: "Alert".into(),
            field: "manifest".into(),
            message: e.to_string(),
        })
    }

    /// `Alert/namespace/name`.
    pub fn object_string(&self) -> String {
        format!("Alert/{}/{}", self.metadata.namespace, self.metadata.name)
    }

    fn lists(&self) -> &CompiledLists {
        self.compiled.get_or_init(|| {
            let compile = |list: &[String]| {
                list.iter()
                    .map(|exp| Regex::new(exp).map_err(|_| exp.clone()))
                    .collect()
            };
            CompiledLists {
                inclusion: compile(&self.spec.inclusion_list),
                exclusion: compile(&self.spec.exclusion_list),
            }
        })
    }

    fn source_matches(
        &self,
        event: &Event,
        source: &EventSource,
        labels: &dyn LabelSource,
        warnings: &mut Vec<Warning>,
    ) -> bool {
        let namespace = if source.namespace.is_empty() {
            &self.metadata.namespace
        } else {
            &source.namespace
        };
        let obj = &event.involved_object;
        if &obj.namespace != namespace || obj.kind != source.kind {
            return false;
        }
        if event.severity != self.spec.event_severity && self.spec.event_severity != Severity::Info
        {
            return false;
        }
        if !glob_match(&source.name, &obj.name) {
            return false;
        }
        let Some(wanted) = &source.match_labels else {
            return true;
        };
        let Some(actual) = labels.labels(obj) else {
            warnings.push(Warning {
                object: self.object_string(),
                reason: "SourceFetchFailed".into(),
                message: format!("error getting source object {}", event.object_string()),
            });
            return false;
        };
        wanted.iter().all(|(k, v)| actual.get(k) == Some(v))
    }

    /// Whether the Alert takes the event: not suspended, a source matches, the inclusion list
    /// (if any) matches and the exclusion list does not. Invalid regexes are skipped with an
    /// `InvalidConfig` warning, as Flux does.
    pub fn matches(
        &self,
        event: &Event,
        labels: &dyn LabelSource,
        warnings: &mut Vec<Warning>,
    ) -> bool {
        if self.spec.suspend {
            return false;
        }
        if !self
            .spec
            .event_sources
            .iter()
            .any(|s| self.source_matches(event, s, labels, warnings))
        {
            return false;
        }
        let lists = self.lists();
        let mut check = |list: &[Result<Regex, String>], what: &str| {
            let mut hit = false;
            for r in list {
                match r {
                    Ok(re) => hit |= re.is_match(&event.message),
                    Err(exp) => warnings.push(Warning {
                        object: self.object_string(),
                        reason: "InvalidConfig".into(),
                        message: format!("failed to compile {what} regex: {exp}"),
                    }),
                }
                if hit {
                    break;
                }
            }
            hit
        };
        if !lists.inclusion.is_empty() && !check(&lists.inclusion, "inclusion") {
            return false;
        }
        !check(&lists.exclusion, "exclusion")
    }

    /// The notification for this Alert: a copy of the event whose metadata is replaced by the
    /// merge (lowest → highest precedence) of `event.toolkit.fluxcd.io/*` keys (prefix
    /// stripped), `spec.eventMetadata`, `spec.summary` as `summary`, and `<object group>/*`
    /// keys (prefix stripped). Keys set by more than one source yield a
    /// `MetadataAppendFailed` warning.
    pub fn notification(&self, event: &Event, warnings: &mut Vec<Warning>) -> Event {
        const EVENT_SRC: &str = "involved object annotations";
        const ALERT_META: &str = "Alert object .spec.eventMetadata";
        const ALERT_SUMMARY: &str = "Alert object .spec.summary";
        const OBJECT_SRC: &str = "involved object controller metadata";
        let mut metadata = BTreeMap::new();
        let mut sources: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        let mut put = |k: &str, v: &str, src: &'static str| {
            metadata.insert(k.to_string(), v.to_string());
            sources.entry(k.to_string()).or_default().push(src);
        };
        let event_prefix = format!("{EVENT_GROUP}/");
        for (k, v) in &event.metadata {
            if let Some(key) = k.strip_prefix(&event_prefix) {
                put(key, v, EVENT_SRC);
            }
        }
        for (k, v) in &self.spec.event_metadata {
            put(k, v, ALERT_META);
        }
        if !self.spec.summary.is_empty() {
            put("summary", &self.spec.summary, ALERT_SUMMARY);
        }
        let object_prefix = format!("{}/", event.involved_object.group());
        for (k, v) in &event.metadata {
            if let Some(key) = k.strip_prefix(&object_prefix) {
                put(key, v, OBJECT_SRC);
            }
        }
        let conflicts: Vec<String> = sources
            .iter()
            .filter(|(_, s)| s.len() > 1)
            .map(|(k, s)| format!("{k} ({})", s.join(", ")))
            .collect();
        if !conflicts.is_empty() {
            warnings.push(Warning {
                object: self.object_string(),
                reason: "MetadataAppendFailed".into(),
                message: format!(
                    "metadata key conflicts detected (please refer to the Alert API docs and Flux RFC 0008 for more information): {}",
                    conflicts.join("; ")
                ),
            });
        }
        let mut out = event.clone();
        if !metadata.is_empty() {
            out.metadata = metadata;
        }
        out
    }
}

/// The Alerts (in order) that take `event`, plus the warnings raised while matching.
pub fn route<'a>(
    event: &Event,
    alerts: &'a [Alert],
    labels: &dyn LabelSource,
) -> (Vec<&'a Alert>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let hits = alerts
        .iter()
        .filter(|a| a.matches(event, labels, &mut warnings))
        .collect();
    (hits, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, ns: &str, name: &str, severity: Severity, message: &str) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: kind.into(),
                namespace: ns.into(),
                name: name.into(),
                api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
                ..ObjectReference::default()
            },
            severity,
            message: message.into(),
            reason: "ReconciliationSucceeded".into(),
            reporting_controller: "kustomize-controller".into(),
            ..Event::default()
        }
    }

    fn alert(yaml: &str) -> Alert {
        Alert::from_yaml(yaml).unwrap()
    }

    const ALL_ERRORS: &str = r#"
metadata: {name: on-call, namespace: flux-system}
spec:
  providerRef: {name: slack}
  eventSeverity: error
  eventSources:
    - {kind: Kustomization, name: "*"}
    - {kind: HelmRelease, name: "web-*", namespace: apps}
"#;

    #[test]
    fn severity_namespace_kind_and_wildcards() {
        let a = alert(ALL_ERRORS);
        let mut w = Vec::new();
        assert!(a.matches(
            &event("Kustomization", "flux-system", "x", Severity::Error, "m"),
            &no_labels,
            &mut w
        ));
        assert!(!a.matches(
            &event("Kustomization", "flux-system", "x", Severity::Info, "m"),
            &no_labels,
            &mut w
        ));
        assert!(!a.matches(
            &event("Kustomization", "apps", "x", Severity::Error, "m"),
            &no_labels,
            &mut w
        ));
        assert!(a.matches(
            &event("HelmRelease", "apps", "web-frontend", Severity::Error, "m"),
            &no_labels,
            &mut w
        ));
        assert!(!a.matches(
            &event("HelmRelease", "apps", "api", Severity::Error, "m"),
            &no_labels,
            &mut w
        ));
        assert!(!a.matches(
            &event("kustomization", "flux-system", "x", Severity::Error, "m"),
            &no_labels,
            &mut w
        ));
        assert!(w.is_empty());
    }

    #[test]
    fn info_alert_takes_errors_too() {
        let mut a = alert(ALL_ERRORS);
        a.spec.event_severity = Severity::Info;
        let mut w = Vec::new();
        assert!(a.matches(
            &event("Kustomization", "flux-system", "x", Severity::Error, "m"),
            &no_labels,
            &mut w
        ));
        assert!(a.matches(
            &event("Kustomization", "flux-system", "x", Severity::Info, "m"),
            &no_labels,
            &mut w
        ));
    }

    #[test]
    fn inclusion_exclusion_and_bad_regex() {
        let mut a = alert(ALL_ERRORS);
        a.spec.event_severity = Severity::Info;
        a.spec.inclusion_list = vec![".*succeeded.*".into(), "([".into()];
        a.spec.exclusion_list = vec!["^Dependencies do not meet.*".into()];
        let mut w = Vec::new();
        let e = |m: &str| event("Kustomization", "flux-system", "x", Severity::Info, m);
        assert!(a.matches(&e("reconciliation succeeded"), &no_labels, &mut w));
        assert!(
            w.is_empty(),
            "first inclusion regex matched, the bad one is never reached"
        );
        assert!(!a.matches(
            &e("Dependencies do not meet ready condition, succeeded"),
            &no_labels,
            &mut w
        ));
        assert!(!a.matches(&e("failed"), &no_labels, &mut w));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].reason, "InvalidConfig");
        assert_eq!(w[0].message, "failed to compile inclusion regex: ([");
    }

    #[test]
    fn suspend_and_match_labels() {
        let mut a = alert(ALL_ERRORS);
        a.spec.event_sources[0].match_labels =
            Some(BTreeMap::from([("team".into(), "shop".into())]));
        let e = event("Kustomization", "flux-system", "x", Severity::Error, "m");
        let mut w = Vec::new();
        let shop =
            |_: &ObjectReference| Some(BTreeMap::from([("team".to_string(), "shop".to_string())]));
        let other =
            |_: &ObjectReference| Some(BTreeMap::from([("team".to_string(), "ops".to_string())]));
        assert!(a.matches(&e, &shop, &mut w));
        assert!(!a.matches(&e, &other, &mut w));
        assert!(w.is_empty());
        assert!(!a.matches(&e, &no_labels, &mut w));
        assert_eq!(w[0].reason, "SourceFetchFailed");
        a.spec.suspend = true;
        assert!(!a.matches(&e, &shop, &mut w));
    }

    #[test]
    fn metadata_merge_precedence() {
        let mut a = alert(ALL_ERRORS);
        a.spec.event_metadata = BTreeMap::from([
            ("env".into(), "prod".into()),
            ("revision".into(), "alert".into()),
        ]);
        a.spec.summary = "sum".into();
        let mut e = event("Kustomization", "flux-system", "x", Severity::Error, "m");
        e.metadata.insert(
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:1".into(),
        );
        e.metadata
            .insert("event.toolkit.fluxcd.io/env".into(), "annotation".into());
        e.metadata
            .insert("event.toolkit.fluxcd.io/commit".into(), "c".into());
        let mut w = Vec::new();
        let n = a.notification(&e, &mut w);
        let expected: BTreeMap<String, String> = [
            ("commit", "c"),
            ("env", "prod"),
            ("revision", "main@sha1:1"),
            ("summary", "sum"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(n.metadata, expected);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].reason, "MetadataAppendFailed");
        assert!(w[0]
            .message
            .contains("env (involved object annotations, Alert object .spec.eventMetadata)"));
    }

    #[test]
    fn glob() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*c", "abc") && glob_match("a*c", "ac") && !glob_match("a*c", "ab"));
        assert!(glob_match("*-prod-*", "web-prod-1") && !glob_match("*-prod-*", "web-dev-1"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn parses_shared_examples() {
        let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(|d| std::path::PathBuf::from(d).join("../../shared/flux-api/examples/alert"))
        else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for doc in text.split("\n---\n") {
                let a = alert(doc);
                assert!(
                    !a.spec.event_sources.is_empty(),
                    "{}",
                    entry.path().display()
                );
            }
        }
    }
}
