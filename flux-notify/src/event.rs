//! The event the Flux controllers POST (`event.toolkit.fluxcd.io/v1beta1` `Event`) and the
//! metadata rules the event server applies before routing.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The event API group; metadata keys under it come from object annotations.
pub const EVENT_GROUP: &str = "event.toolkit.fluxcd.io";

/// Maximum accepted event body (3 MiB), as notification-controller enforces.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Event severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Internal trace event (never POSTed by controllers).
    Trace,
    /// Normal event.
    #[default]
    Info,
    /// Warning event.
    Error,
}

impl Severity {
    /// The lowercase wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "trace",
            Severity::Info => "info",
            Severity::Error => "error",
        }
    }
}

/// A Kubernetes `ObjectReference` with Go's field order and `omitempty` behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Kind, e.g. `Kustomization`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// UID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `group/version` or `version`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Resource version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Field path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

impl ObjectReference {
    /// The API group of `apiVersion` (empty for the core group).
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }
}

/// An event timestamp: Unix seconds, serialised as RFC3339 UTC (`metav1.Time`); `null` when
/// absent, as Go encodes the zero time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp(pub Option<i64>);

impl Timestamp {
    /// Unix seconds (0 for the zero time, as Go's `Unix()` of the zero `metav1.Time` would not
    /// be meaningful either).
    pub fn unix(self) -> i64 {
        self.0.unwrap_or(0)
    }

    /// RFC3339 UTC text, or Go's zero time text when absent.
    pub fn rfc3339(self) -> String {
        self.0.map_or_else(
            || "0001-01-01T00:00:00Z".to_string(),
            crate::time::format_rfc3339,
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Some(secs) => s.serialize_str(&crate::time::format_rfc3339(secs)),
            None => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text.as_deref() {
            None | Some("") => Ok(Timestamp(None)),
            Some(t) => crate::time::parse_rfc3339(t)
                .map(|secs| Timestamp(Some(secs)))
                .ok_or_else(|| serde::de::Error::custom(format!("timestamp '{t}' is not RFC3339"))),
        }
    }
}

/// The event JSON, field for field as `fluxcd/pkg/apis/event/v1beta1.Event` encodes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The object the event is about.
    pub involved_object: ObjectReference,
    /// `trace`, `info` or `error`.
    pub severity: Severity,
    /// When the event happened.
    #[serde(default)]
    pub timestamp: Timestamp,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// CamelCase reason.
    #[serde(default)]
    pub reason: String,
    /// Metadata (sorted, as Go encodes maps).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Controller that emitted the event.
    #[serde(default)]
    pub reporting_controller: String,
    /// Pod that emitted the event.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

impl Event {
    /// Decodes an event body, with a clear error for malformed JSON.
    pub fn from_json(body: &[u8]) -> Result<Event> {
        serde_json::from_slice(body).map_err(|e| Error::InvalidEvent {
            detail: e.to_string(),
        })
    }

    /// The event encoded exactly as Go's `json.Marshal` would.
    pub fn to_json(&self) -> Vec<u8> {
        crate::gojson::to_vec(self)
    }

    /// `Kind/namespace/name` of the involved object.
    pub fn object_string(&self) -> String {
        let o = &self.involved_object;
        format!("{}/{}/{}", o.kind, o.namespace, o.name)
    }

    /// `<involvedObject group>/<suffix>`.
    fn object_key(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.involved_object.group())
    }

    /// The object-group metadata value for `suffix` (`revision`, `token`, …).
    pub fn object_metadata(&self, suffix: &str) -> Option<&str> {
        self.metadata
            .get(&self.object_key(suffix))
            .map(String::as_str)
    }

    /// The revision after metadata merging (`revision` key) or before it (`<group>/revision`).
    pub fn revision(&self) -> Option<&str> {
        self.metadata
            .get("revision")
            .or_else(|| self.metadata.get(&self.object_key("revision")))
            .map(String::as_str)
    }

    /// Event server step 2: keep only `event.toolkit.fluxcd.io/` and `<object group>/` keys,
    /// dropping `<group>/checksum` and `<group>/digest` (compared case-insensitively).
    pub fn cleanup_metadata(&mut self) {
        let event_prefix = format!("{EVENT_GROUP}/");
        let object_prefix = format!("{}/", self.involved_object.group());
        let excluded = [self.object_key("checksum"), self.object_key("digest")];
        self.metadata.retain(|key, _| {
            !excluded.iter().any(|x| x.eq_ignore_ascii_case(key))
                && (key.starts_with(&event_prefix) || key.starts_with(&object_prefix))
        });
    }

    /// Event server step 4: remove `<group>/token` (it only feeds the rate-limit key).
    pub fn exclude_internal_metadata(&mut self) {
        let key = self.object_key("token");
        self.metadata.remove(&key);
    }

    /// The duplicate-detection key: hex SHA-256 of the `/`-joined components Flux uses.
    pub fn dedup_key(&self) -> String {
        let o = &self.involved_object;
        let mut comps = vec![
            "event".to_string(),
            format!("name={}", o.name),
            format!("namespace={}", o.namespace),
            format!("kind={}", o.kind),
            format!("message={}", self.message),
        ];
        for suffix in ["originRevision", "revision", "token"] {
            if let Some(v) = self.object_metadata(suffix) {
                comps.push(format!("{suffix}={v}"));
            }
        }
        hex::encode(Sha256::digest(comps.join("/").as_bytes()))
    }

    /// Whether this is a commit-status update event (`<group>/commit_status: update`).
    pub fn is_commit_status_update(&self) -> bool {
        self.object_metadata("commit_status") == Some("update")
    }

    /// Whether `event.toolkit.fluxcd.io/commit` is set and non-empty.
    pub fn has_commit_key(&self) -> bool {
        self.metadata
            .get(&format!("{EVENT_GROUP}/commit"))
            .is_some_and(|v| !v.is_empty())
    }

    /// Whether `event.toolkit.fluxcd.io/change_request` is set and non-empty.
    pub fn has_change_request_key(&self) -> bool {
        self.metadata
            .get(&format!("{EVENT_GROUP}/change_request"))
            .is_some_and(|v| !v.is_empty())
    }

    /// `<kind lowercased>/<name>.<namespace>`, the title most chat providers use.
    pub fn object_title(&self) -> String {
        let o = &self.involved_object;
        format!("{}/{}.{}", o.kind.to_lowercase(), o.name, o.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event::from_json(
            br#"{"involvedObject":{"kind":"Kustomization","namespace":"apps","name":"webapp","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},
                "severity":"info","timestamp":"2026-01-02T15:04:05Z","message":"Applied <ok>","reason":"ReconciliationSucceeded",
                "metadata":{"kustomize.toolkit.fluxcd.io/revision":"main@sha1:abc","kustomize.toolkit.fluxcd.io/checksum":"x",
                "kustomize.toolkit.fluxcd.io/token":"t1","event.toolkit.fluxcd.io/commit":"c","other.io/key":"drop"},
                "reportingController":"kustomize-controller"}"#,
        )
        .unwrap()
    }

    #[test]
    fn encodes_like_go() {
        let mut e = sample();
        e.metadata.clear();
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"involvedObject":{"kind":"Kustomization","namespace":"apps","name":"webapp","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},"severity":"info","timestamp":"2026-01-02T15:04:05Z","message":"Applied \u003cok\u003e","reason":"ReconciliationSucceeded","reportingController":"kustomize-controller"}"#
        );
    }

    #[test]
    fn cleans_metadata() {
        let mut e = sample();
        e.cleanup_metadata();
        let keys: Vec<_> = e.metadata.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "event.toolkit.fluxcd.io/commit",
                "kustomize.toolkit.fluxcd.io/revision",
                "kustomize.toolkit.fluxcd.io/token"
            ]
        );
        e.exclude_internal_metadata();
        assert!(!e.metadata.contains_key("kustomize.toolkit.fluxcd.io/token"));
    }

    #[test]
    fn dedup_key_covers_revision_and_token() {
        let e = sample();
        let expected = "event/name=webapp/namespace=apps/kind=Kustomization/message=Applied <ok>/revision=main@sha1:abc/token=t1";
        assert_eq!(
            e.dedup_key(),
            hex::encode(Sha256::digest(expected.as_bytes()))
        );
        let mut other = e.clone();
        other
            .metadata
            .insert("kustomize.toolkit.fluxcd.io/token".into(), "t2".into());
        assert_ne!(e.dedup_key(), other.dedup_key());
    }

    #[test]
    fn malformed_json_is_a_clear_error() {
        let err = Event::from_json(b"{not json").unwrap_err();
        assert_eq!(err.reason(), "InvalidEvent");
        assert!(err.to_string().starts_with("invalid event JSON"));
        let err = Event::from_json(br#"{"involvedObject":{},"severity":"loud"}"#).unwrap_err();
        assert!(err.to_string().contains("loud"), "{err}");
    }
}
