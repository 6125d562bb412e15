//! Helm releases as Helm 3/4 store them, and pure install/upgrade/rollback planning.
//!
//! A release is kept in a Secret named `sh.helm.release.v1.<name>.v<version>` of type
//! `helm.sh/release.v1`, labelled `name`, `owner=helm`, `status` and `version`. Its
//! `data.release` holds base64(gzip(JSON of the release)); the Kubernetes API base64-encodes
//! that once more on the wire. Cluster I/O goes through [`ReleaseStore`]; everything else here is
//! pure.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Release statuses, as Helm spells them.
pub mod status {
    pub const UNKNOWN: &str = "unknown";
    pub const DEPLOYED: &str = "deployed";
    pub const UNINSTALLED: &str = "uninstalled";
    pub const SUPERSEDED: &str = "superseded";
    pub const FAILED: &str = "failed";
    pub const UNINSTALLING: &str = "uninstalling";
    pub const PENDING_INSTALL: &str = "pending-install";
    pub const PENDING_UPGRADE: &str = "pending-upgrade";
    pub const PENDING_ROLLBACK: &str = "pending-rollback";
}

/// `release.Info`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Info {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_deployed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deployed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rollback_revision: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `release.HookExecution`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HookExecution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default)]
    pub phase: String,
}

/// `release.Hook`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hook {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(default)]
    pub last_run: HookExecution,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete_policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_log_policies: Vec<String>,
}

/// `release.Release`. The chart is kept as JSON so releases written by Helm round-trip
/// untouched.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Release {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Info>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub apply_method: String,
}

impl Release {
    pub fn status(&self) -> &str {
        self.info
            .as_ref()
            .map_or(status::UNKNOWN, |i| i.status.as_str())
    }

    /// The chart's `metadata.name`/`metadata.version`, when recorded.
    pub fn chart_name_version(&self) -> (String, String) {
        let md = self.chart.as_ref().and_then(|c| c.get("metadata"));
        let get = |k: &str| {
            md.and_then(|m| m.get(k))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        (get("name"), get("version"))
    }
}

/// The Secret name Helm uses for a release revision.
pub fn storage_key(name: &str, version: i64) -> String {
    format!("sh.helm.release.v1.{name}.v{version}")
}

/// `encodeRelease`: JSON, gzip (best compression), standard base64.
pub fn encode(release: &Release) -> Result<String> {
    let json = serde_json::to_vec(release)
        .map_err(|e| Error::Release(format!("encoding release: {e}")))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let io = |e: std::io::Error| Error::Release(format!("compressing release: {e}"));
    gz.write_all(&json).map_err(io)?;
    let bytes = gz.finish().map_err(io)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `decodeRelease`: base64, then gunzip when the gzip magic is present, then JSON.
pub fn decode(data: &str) -> Result<Release> {
    serde_json::from_slice(&decode_bytes(data)?)
        .map_err(|e| Error::Release(format!("parsing release JSON: {e}")))
}

/// The stored release JSON as it is, including fields [`Release`] does not model.
pub fn decode_json(data: &str) -> Result<serde_json::Value> {
    serde_json::from_slice(&decode_bytes(data)?)
        .map_err(|e| Error::Release(format!("parsing release JSON: {e}")))
}

fn decode_bytes(data: &str) -> Result<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| Error::Release(format!("decoding release: {e}")))?;
    if bytes.len() > 3 && bytes[..3] == [0x1f, 0x8b, 0x08] {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::Release(format!("decompressing release: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// The Kubernetes Secret (as JSON) that stores `release` in `namespace`.
pub fn to_secret(release: &Release) -> Result<serde_json::Value> {
    let encoded = encode(release)?;
    let mut labels = BTreeMap::new();
    labels.insert("name", release.name.clone());
    labels.insert("owner", "helm".to_string());
    labels.insert("status", release.status().to_string());
    labels.insert("version", release.version.to_string());
    // Helm 4 labels the time the Secret was written; ours is the revision's deploy time, so
    // encoding stays a pure function of the release.
    if let Some(seconds) = release
        .info
        .as_ref()
        .and_then(|i| i.last_deployed.as_deref())
        .and_then(unix_seconds)
    {
        labels.insert("modifiedAt", seconds.to_string());
    }
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": storage_key(&release.name, release.version),
            "namespace": release.namespace,
            "labels": labels,
        },
        "type": "helm.sh/release.v1",
        // The API's base64 of the bytes Helm stores (which are themselves base64 text).
        "data": { "release": base64::engine::general_purpose::STANDARD.encode(encoded.as_bytes()) },
    }))
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-01-02T03:04:05.6Z`,
/// `...+01:00`), or `None` when it is not one.
pub fn unix_seconds(timestamp: &str) -> Option<i64> {
    let b = timestamp.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = timestamp.get(from..from + len)?;
        if digits.bytes().all(|c| c.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &timestamp[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let minutes = rest[1..3].parse::<i64>().ok()? * 60 + rest[4..6].parse::<i64>().ok()?;
            if rest.starts_with('-') {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Reads a release from a Secret as the API returns it (`data.release` base64-encoded).
pub fn from_secret(secret: &serde_json::Value) -> Result<Release> {
    let data = secret
        .pointer("/data/release")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::Release("secret has no data.release".into()))?;
    let inner = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| Error::Release(format!("decoding secret data: {e}")))?;
    decode(&String::from_utf8_lossy(&inner))
}

/// Go's zero `time.Time`, which Helm 4 writes for file modification times it does not know.
/// The chart loader does not keep modification times, so every `modtime` is this.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `apply_method` of a release applied with server-side apply, Helm 4's default.
pub const APPLY_SERVER_SIDE: &str = "ssa";

/// Builds the release record for a rendered chart (`apply_method` is server-side apply, as
/// Helm 4 installs by default; set it to `"csa"` for client-side apply).
#[allow(clippy::too_many_arguments)]
pub fn new_release(
    name: &str,
    namespace: &str,
    version: i64,
    chart: &crate::Chart,
    config: &crate::Value,
    rendered: &crate::render::Rendered,
    status: &str,
    now: &str,
    description: &str,
) -> Release {
    let metadata = crate::json::to_serde(&chart.metadata);
    let templates: Vec<serde_json::Value> = chart
        .templates
        .iter()
        .map(|(n, d)| {
            serde_json::json!({
                "name": n,
                "data": base64::engine::general_purpose::STANDARD.encode(d.as_bytes()),
                "modtime": ZERO_TIME,
            })
        })
        .collect();
    let files: Vec<serde_json::Value> = chart
        .files
        .files
        .iter()
        .map(|(n, d)| {
            serde_json::json!({
                "name": n,
                "data": base64::engine::general_purpose::STANDARD.encode(d.as_slice()),
                "modtime": ZERO_TIME,
            })
        })
        .collect();
    let chart_json = serde_json::json!({
        "metadata": metadata,
        "lock": null,
        "templates": templates,
        "values": crate::json::to_serde(&chart.values),
        "schema": chart.schema.as_ref().map(|s| base64::engine::general_purpose::STANDARD.encode(s.as_bytes())),
        "schemamodtime": ZERO_TIME,
        // Go's nil slice.
        "files": if files.is_empty() { serde_json::Value::Null } else { serde_json::Value::Array(files) },
        "modtime": ZERO_TIME,
    });
    // `config` is `omitempty` in Helm: no user values, no key.
    let config = match crate::json::to_serde(config) {
        serde_json::Value::Object(m) if !m.is_empty() => Some(m),
        _ => None,
    };
    Release {
        name: name.to_string(),
        info: Some(Info {
            first_deployed: Some(now.to_string()),
            last_deployed: Some(now.to_string()),
            deleted: None,
            description: description.to_string(),
            status: status.to_string(),
            rollback_revision: 0,
            notes: rendered.notes.clone(),
        }),
        chart: Some(chart_json),
        config,
        manifest: rendered.manifest.clone(),
        hooks: rendered
            .hooks
            .iter()
            .map(|h| Hook {
                name: h.name.clone(),
                kind: h.kind.clone(),
                path: h.path.clone(),
                manifest: h.manifest.clone(),
                events: h.events.clone(),
                last_run: HookExecution::default(),
                weight: h.weight,
                delete_policies: h.delete_policies.clone(),
                output_log_policies: Vec::new(),
            })
            .collect(),
        version,
        namespace: namespace.to_string(),
        apply_method: APPLY_SERVER_SIDE.to_string(),
    }
}

/// Hooks to run for `event`, in Helm's order: weight, then name.
pub fn hooks_for<'r>(release: &'r Release, event: &str) -> Vec<&'r Hook> {
    let mut hooks: Vec<&Hook> = release
        .hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e == event))
        .collect();
    hooks.sort_by(|a, b| a.weight.cmp(&b.weight).then_with(|| a.name.cmp(&b.name)));
    hooks
}

/// What the reconciler wants installed.
#[derive(Debug, Clone)]
pub struct Desired {
    pub chart_name: String,
    pub chart_version: String,
    /// `sha256:<hex>` of the release values ([`values_digest`]).
    pub values_digest: String,
    /// Roll back to the last deployed revision when the latest one failed.
    pub rollback_on_failure: bool,
}

/// The next step for a release, decided from the stored history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No release exists (or only uninstalled ones): install revision `version`.
    Install { version: i64 },
    /// Upgrade to revision `version`.
    Upgrade { version: i64 },
    /// Roll back to revision `to`, recorded as revision `version`.
    Rollback { to: i64, version: i64 },
    /// The latest revision is stuck in a pending state: mark it failed first.
    Unlock { version: i64 },
    /// Everything matches.
    InSync,
}

/// `sha256:<hex>` of the values' Go JSON encoding (sorted keys).
pub fn values_digest(values: &crate::Value) -> String {
    use sha2::Digest as _;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(
            crate::json::to_json(values).as_bytes()
        ))
    )
}

/// Decides what to do; `history` holds every stored revision of the release,
/// `current_digest` the values digest recorded for the latest revision.
pub fn plan(desired: &Desired, history: &[Release], latest_values_digest: Option<&str>) -> Action {
    let Some(latest) = history.iter().max_by_key(|r| r.version) else {
        return Action::Install { version: 1 };
    };
    let next = latest.version + 1;
    match latest.status() {
        status::PENDING_INSTALL | status::PENDING_UPGRADE | status::PENDING_ROLLBACK => {
            return Action::Unlock {
                version: latest.version,
            }
        }
        status::UNINSTALLED | status::UNINSTALLING => return Action::Install { version: next },
        status::FAILED => {
            if desired.rollback_on_failure {
                if let Some(good) = history
                    .iter()
                    .filter(|r| r.version < latest.version)
                    .filter(|r| matches!(r.status(), status::DEPLOYED | status::SUPERSEDED))
                    .max_by_key(|r| r.version)
                {
                    return Action::Rollback {
                        to: good.version,
                        version: next,
                    };
                }
            }
            return Action::Upgrade { version: next };
        }
        _ => {}
    }
    let (name, version) = latest.chart_name_version();
    if name != desired.chart_name
        || version != desired.chart_version
        || latest_values_digest != Some(desired.values_digest.as_str())
    {
        return Action::Upgrade { version: next };
    }
    Action::InSync
}

/// Revisions to delete so that at most `max_history` remain (0 keeps all): the oldest
/// non-deployed ones go first, as Helm's history pruning does.
pub fn prune(history: &[Release], max_history: usize) -> Vec<String> {
    if max_history == 0 || history.len() <= max_history {
        return Vec::new();
    }
    let mut sorted: Vec<&Release> = history.iter().collect();
    sorted.sort_by_key(|r| r.version);
    let excess = history.len() - max_history;
    sorted
        .into_iter()
        .filter(|r| r.status() != status::DEPLOYED)
        .take(excess)
        .map(|r| storage_key(&r.name, r.version))
        .collect()
}

/// Release storage in a cluster: the controller implements it with a Kubernetes client.
pub trait ReleaseStore {
    /// Every stored revision of `name` in `namespace` (Secrets labelled `owner=helm,name=...`).
    fn history(&self, namespace: &str, name: &str) -> Result<Vec<Release>>;
    /// Creates the Secret for a new revision.
    fn create(&mut self, release: &Release) -> Result<()>;
    /// Replaces the Secret of an existing revision (status changes).
    fn update(&mut self, release: &Release) -> Result<()>;
    /// Deletes a revision's Secret.
    fn delete(&mut self, namespace: &str, key: &str) -> Result<()>;
}

/// An in-memory [`ReleaseStore`] that keeps Secrets exactly as they would be stored.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// `(namespace, secret name)` to the Secret JSON.
    pub secrets: BTreeMap<(String, String), serde_json::Value>,
}

impl ReleaseStore for MemoryStore {
    fn history(&self, namespace: &str, name: &str) -> Result<Vec<Release>> {
        self.secrets
            .iter()
            .filter(|((ns, _), s)| {
                ns == namespace
                    && s.pointer("/metadata/labels/name").and_then(|v| v.as_str()) == Some(name)
                    && s.pointer("/metadata/labels/owner").and_then(|v| v.as_str()) == Some("helm")
            })
            .map(|(_, s)| from_secret(s))
            .collect()
    }

    fn create(&mut self, release: &Release) -> Result<()> {
        let key = (
            release.namespace.clone(),
            storage_key(&release.name, release.version),
        );
        if self.secrets.contains_key(&key) {
            return Err(Error::Release(format!(
                "create: failed to create: secrets \"{}\" already exists",
                key.1
            )));
        }
        self.secrets.insert(key, to_secret(release)?);
        Ok(())
    }

    fn update(&mut self, release: &Release) -> Result<()> {
        let key = (
            release.namespace.clone(),
            storage_key(&release.name, release.version),
        );
        self.secrets.insert(key, to_secret(release)?);
        Ok(())
    }

    fn delete(&mut self, namespace: &str, key: &str) -> Result<()> {
        self.secrets
            .remove(&(namespace.to_string(), key.to_string()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_of_rfc3339() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        // The modifiedAt label Helm 4 wrote at 2026-11-23T06:43:48Z.
        assert_eq!(
            unix_seconds("2026-11-23T06:43:48.328141226Z"),
            Some(1_795_416_228)
        );
        assert_eq!(unix_seconds("2000-03-01T01:00:00+01:00"), Some(951_868_800));
        assert_eq!(unix_seconds("not a time"), None);
        assert_eq!(unix_seconds("2026-13-01T00:00:00Z"), None);
    }

    fn release(version: i64, status: &str) -> Release {
        Release {
            name: "rel".into(),
            namespace: "ns1".into(),
            version,
            info: Some(Info {
                status: status.into(),
                ..Info::default()
            }),
            chart: Some(serde_json::json!({"metadata": {"name": "podinfo", "version": "6.14.1"}})),
            manifest: "---\n# Source: x\nkind: A\n".into(),
            ..Release::default()
        }
    }

    #[test]
    fn encode_decode_round_trip_through_a_secret() {
        let r = release(3, status::DEPLOYED);
        let secret = to_secret(&r).expect("secret");
        assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.rel.v3");
        assert_eq!(secret["metadata"]["labels"]["status"], "deployed");
        assert_eq!(secret["type"], "helm.sh/release.v1");
        assert_eq!(from_secret(&secret).expect("decode"), r);
    }

    #[test]
    fn decodes_uncompressed_legacy_releases() {
        let json = r#"{"name":"old","version":1,"info":{"status":"deployed"}}"#;
        let data = base64::engine::general_purpose::STANDARD.encode(json);
        let r = decode(&data).expect("decode");
        assert_eq!(r.name, "old");
        assert_eq!(r.status(), "deployed");
    }

    #[test]
    fn planning() {
        let desired = Desired {
            chart_name: "podinfo".into(),
            chart_version: "6.14.1".into(),
            values_digest: "sha256:x".into(),
            rollback_on_failure: true,
        };
        assert_eq!(plan(&desired, &[], None), Action::Install { version: 1 });
        let h = vec![release(1, status::DEPLOYED)];
        assert_eq!(plan(&desired, &h, Some("sha256:x")), Action::InSync);
        assert_eq!(
            plan(&desired, &h, Some("sha256:y")),
            Action::Upgrade { version: 2 }
        );
        let h = vec![release(1, status::SUPERSEDED), release(2, status::FAILED)];
        assert_eq!(
            plan(&desired, &h, Some("sha256:x")),
            Action::Rollback { to: 1, version: 3 }
        );
        let h = vec![release(1, status::PENDING_INSTALL)];
        assert_eq!(plan(&desired, &h, None), Action::Unlock { version: 1 });
    }

    #[test]
    fn pruning_keeps_the_deployed_revision() {
        let h = vec![
            release(1, status::SUPERSEDED),
            release(2, status::SUPERSEDED),
            release(3, status::DEPLOYED),
        ];
        assert_eq!(prune(&h, 2), vec!["sh.helm.release.v1.rel.v1".to_string()]);
        assert!(prune(&h, 0).is_empty());
    }

    #[test]
    fn memory_store_history() {
        let mut store = MemoryStore::default();
        store.create(&release(1, status::DEPLOYED)).expect("create");
        assert!(store.create(&release(1, status::DEPLOYED)).is_err());
        store.create(&release(2, status::FAILED)).expect("create");
        let h = store.history("ns1", "rel").expect("history");
        assert_eq!(h.len(), 2);
        store.delete("ns1", &storage_key("rel", 1)).expect("delete");
        assert_eq!(store.history("ns1", "rel").expect("history").len(), 1);
    }

    #[test]
    fn hooks_sorted_by_weight_then_name() {
        let mut r = release(1, status::DEPLOYED);
        for (name, weight) in [("b", 1), ("a", 1), ("c", -5)] {
            r.hooks.push(Hook {
                name: name.into(),
                events: vec!["pre-install".into()],
                weight,
                ..Hook::default()
            });
        }
        let names: Vec<&str> = hooks_for(&r, "pre-install")
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(names, vec!["c", "a", "b"]);
    }
}
