//! Helm repository `index.yaml`: parsing, sorting and chart version selection as Helm does it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::semver::{Constraint, Version};

/// One chart version entry; fields Helm knows are typed, the rest is kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartVersion {
    pub name: String,
    pub version: String,
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A parsed repository index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexFile {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    #[serde(default)]
    pub entries: BTreeMap<String, Vec<ChartVersion>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    entries: BTreeMap<String, Option<Vec<Option<Value>>>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl IndexFile {
    /// Parses YAML or JSON index bytes the way Helm loads an index: `apiVersion` is required,
    /// nil entries are skipped, an empty chart `apiVersion` becomes `v1`, entries without a
    /// name or a valid version are dropped, and versions are sorted highest first.
    pub fn parse(bytes: &[u8], source: &str) -> Result<IndexFile> {
        let raw: RawIndex = serde_yaml::from_slice(bytes).map_err(|e| Error::Parse {
            what: format!("helm index {source}"),
            detail: e.to_string(),
        })?;
        let api_version =
            raw.api_version
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Parse {
                    what: format!("helm index {source}"),
                    detail: "no API version specified".into(),
                })?;
        let mut entries = BTreeMap::new();
        for (name, versions) in raw.entries {
            let mut kept = Vec::new();
            for v in versions.into_iter().flatten().flatten() {
                let Ok(mut cv) = serde_json::from_value::<ChartVersion>(v) else {
                    continue;
                };
                if cv.name.is_empty() {
                    cv.name.clone_from(&name);
                }
                if cv.api_version.is_empty() {
                    cv.api_version = "v1".into();
                }
                if Version::parse(&cv.version).is_err() && !is_loose_semver(&cv.version) {
                    continue;
                }
                kept.push(cv);
            }
            kept.sort_by(compare_desc);
            entries.insert(name, kept);
        }
        Ok(IndexFile {
            api_version,
            entries,
            extra: raw.extra,
        })
    }

    /// The JSON form Flux stores as the HelmRepository artifact.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Parse {
            what: "helm index".into(),
            detail: e.to_string(),
        })
    }

    /// Helm's `IndexFile.Get`: an exact version string match first, otherwise the highest
    /// version (entries are sorted) satisfying `version` as a constraint (`""` = `*`).
    pub fn get(&self, name: &str, version: &str) -> Result<&ChartVersion> {
        let versions = self
            .entries
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::NotFound(format!("no chart name found: {name}")))?;
        if !version.is_empty() {
            if let Some(exact) = versions.iter().find(|v| v.version == version) {
                return Ok(exact);
            }
        }
        let constraint = Constraint::parse(if version.is_empty() { "*" } else { version })?;
        versions
            .iter()
            .find(|v| Version::parse(&v.version).is_ok_and(|parsed| constraint.matches(&parsed)))
            .ok_or_else(|| Error::NotFound(format!("no chart version found for {name}-{version}")))
    }
}

/// Helm accepts `1.2` style versions in indexes; we keep them but cannot rank them.
fn is_loose_semver(v: &str) -> bool {
    let core = v.strip_prefix('v').unwrap_or(v);
    let core = core.split(['-', '+']).next().unwrap_or("");
    !core.is_empty()
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn compare_desc(a: &ChartVersion, b: &ChartVersion) -> std::cmp::Ordering {
    match (Version::parse(&a.version), Version::parse(&b.version)) {
        (Ok(x), Ok(y)) => y.cmp(&x).then_with(|| b.created.cmp(&a.created)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => b.version.cmp(&a.version),
    }
}

/// Resolves a chart URL from an index entry against the repository URL.
pub fn resolve_chart_url(repo_url: &str, chart_url: &str) -> String {
    if chart_url.contains("://") {
        return chart_url.to_string();
    }
    let base = repo_url.split('?').next().unwrap_or(repo_url);
    if let Some(rest) = chart_url.strip_prefix('/') {
        // Absolute path: keep scheme and host of the repository.
        let after_scheme = base.find("://").map_or(0, |i| i + 3);
        let host_end = base[after_scheme..]
            .find('/')
            .map_or(base.len(), |i| after_scheme + i);
        return format!("{}/{rest}", &base[..host_end]);
    }
    format!("{}/{chart_url}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r"
apiVersion: v1
entries:
  podinfo:
    - name: podinfo
      version: 6.0.0
      urls: [podinfo-6.0.0.tgz]
      created: 2021-01-01T00:00:00Z
    - name: podinfo
      version: 6.1.0
      urls: [charts/podinfo-6.1.0.tgz]
      digest: abc
      created: 2021-02-01T00:00:00Z
    - name: podinfo
      version: 6.2.0-rc.1
      urls: [podinfo-6.2.0-rc.1.tgz]
    - ~
  empty: ~
generated: 2021-03-01T00:00:00Z
";

    #[test]
    fn parses_sorts_and_selects_like_helm() {
        let index = IndexFile::parse(INDEX.as_bytes(), "test").unwrap();
        let versions: Vec<_> = index.entries["podinfo"]
            .iter()
            .map(|v| v.version.as_str())
            .collect();
        assert_eq!(versions, ["6.2.0-rc.1", "6.1.0", "6.0.0"]);
        assert_eq!(index.entries["podinfo"][0].api_version, "v1");
        assert_eq!(
            index.get("podinfo", "").unwrap().version,
            "6.1.0",
            "stable only"
        );
        assert_eq!(index.get("podinfo", "*").unwrap().version, "6.1.0");
        assert_eq!(index.get("podinfo", "6.0.x").unwrap().version, "6.0.0");
        assert_eq!(
            index.get("podinfo", "6.2.0-rc.1").unwrap().version,
            "6.2.0-rc.1"
        );
        assert_eq!(
            index.get("podinfo", ">=6.0.0-0").unwrap().version,
            "6.2.0-rc.1"
        );
        assert!(index.get("podinfo", ">7").is_err());
        assert!(index.get("missing", "*").is_err());
        assert!(index.extra.contains_key("generated"));
    }

    /// Expected picks recorded with Helm 3 (`helm pull demo --repo <url> --version <c>`) against
    /// an index holding exactly these versions.
    #[test]
    fn version_selection_matches_helm3() {
        let versions = [
            "0.9.0",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "1.2.0-rc.1",
            "2.0.0",
            "2.1.0-beta.2",
            "v3.0.0",
            "3.1.0+build.1",
        ];
        let mut yaml = String::from("apiVersion: v1\nentries:\n  demo:\n");
        for v in versions {
            yaml.push_str("    - name: demo\n      version: ");
            yaml.push_str(v);
            yaml.push('\n');
        }
        let index = IndexFile::parse(yaml.as_bytes(), "helm3-golden").unwrap();
        let golden = [
            ("", Some("3.1.0+build.1")),
            ("*", Some("3.1.0+build.1")),
            ("~1.0", Some("1.0.1")),
            ("^1", Some("1.1.0")),
            (">=1.1.0-0", Some("3.1.0+build.1")),
            ("1.x", Some("1.1.0")),
            ("<1.1", Some("1.0.1")),
            (">2", Some("3.1.0+build.1")),
            ("2.0.0", Some("2.0.0")),
            ("1.2.0-rc.1", Some("1.2.0-rc.1")),
            (">=1.0.0 <2.0.0", Some("1.1.0")),
            ("~1 || ~2", Some("2.0.0")),
            ("!=2.0.0", Some("3.1.0+build.1")),
            ("1.0 - 1.1", Some("1.1.0")),
            ("^0.9", Some("0.9.0")),
            (">=3", Some("3.1.0+build.1")),
            ("3.0.0", Some("v3.0.0")),
            ("v3.0.0", Some("v3.0.0")),
            ("3.1.0+build.1", Some("3.1.0+build.1")),
            (">=2.1.0-0 <3", None),
        ];
        for (constraint, expected) in golden {
            let got = index
                .get("demo", constraint)
                .ok()
                .map(|v| v.version.as_str());
            assert_eq!(got, expected, "constraint {constraint:?}");
        }
    }

    #[test]
    fn requires_api_version() {
        let err = IndexFile::parse(b"entries: {}\n", "x").unwrap_err();
        assert!(err.to_string().contains("no API version"), "{err}");
        assert!(IndexFile::parse(b"{not yaml", "x").is_err());
    }

    #[test]
    fn json_round_trip() {
        let index = IndexFile::parse(INDEX.as_bytes(), "test").unwrap();
        let json = index.to_json().unwrap();
        let again = IndexFile::parse(&json, "json").unwrap();
        assert_eq!(index, again);
    }

    #[test]
    fn chart_urls_resolve_against_repo() {
        assert_eq!(
            resolve_chart_url("http://h/r/", "c-1.tgz"),
            "http://h/r/c-1.tgz"
        );
        assert_eq!(
            resolve_chart_url("http://h/r", "/x/c.tgz"),
            "http://h/x/c.tgz"
        );
        assert_eq!(
            resolve_chart_url("http://h/r", "https://o/c.tgz"),
            "https://o/c.tgz"
        );
    }
}
