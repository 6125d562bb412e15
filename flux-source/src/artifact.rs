//! The Flux `Artifact` object (`.status.artifact`), digests and revision strings.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// `meta.Artifact`: a file in storage that describes one revision of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Relative path in storage: `<kind>/<namespace>/<name>/<file>`.
    pub path: String,
    /// `http://<advertised address>/<path>`.
    pub url: String,
    /// Human-readable source revision, e.g. `main@sha1:<40 hex>`.
    pub revision: String,
    /// `<algo>:<hex>` of the file bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// RFC 3339 time the file was written.
    pub last_update_time: String,
    /// Byte size of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// OCI manifest annotations (OCIRepository only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Artifact {
    /// Whether this artifact has `revision`, accepting legacy forms (`main/<sha>`, bare hex).
    pub fn has_revision(&self, revision: &str) -> bool {
        transform_revision(&self.revision) == transform_revision(revision)
    }
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Upstream revision and content config are unchanged: the current artifact was kept.
    Unchanged(Artifact),
    /// A new artifact was written.
    New(Artifact),
}

impl FetchOutcome {
    pub fn artifact(&self) -> &Artifact {
        match self {
            FetchOutcome::Unchanged(a) | FetchOutcome::New(a) => a,
        }
    }
}

/// A content digest, `<algo>:<hex>`. Only sha256 is produced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    pub algorithm: String,
    pub hex: String,
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: "sha256".into(),
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The sha256 digest of everything `reader` yields.
    pub fn sha256_reader(mut reader: impl Read) -> io::Result<Digest> {
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut hasher)?;
        Ok(hasher.finish().1)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (algorithm, hex) = s
            .split_once(':')
            .ok_or_else(|| Error::invalid("digest", s, "expected <algorithm>:<hex>"))?;
        let expected_len = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            "blake3" => 64,
            _ => {
                return Err(Error::invalid(
                    "digest",
                    s,
                    format!("unsupported algorithm {algorithm:?}"),
                ))
            }
        };
        if hex.len() != expected_len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "digest",
                s,
                format!("expected {expected_len} hex characters"),
            ));
        }
        Ok(Digest {
            algorithm: algorithm.into(),
            hex: hex.to_ascii_lowercase(),
        })
    }
}

/// A writer that hashes (sha256) and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let digest = Digest {
            algorithm: "sha256".into(),
            hex: hex::encode(self.hasher.finalize()),
        };
        (self.inner, digest, self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The Git revision string for a commit reached through `reference` (Flux `Commit.String()`):
/// `refs/heads/main` → `main@sha1:<hex>`; no reference → `sha1:<hex>`. With `keep_full_name`
/// (a `ref.name` request) the reference is kept verbatim.
pub fn git_revision(reference: Option<&str>, commit_hex: &str, keep_full_name: bool) -> String {
    match reference {
        None => format!("sha1:{commit_hex}"),
        Some(r) if keep_full_name => format!("{r}@sha1:{commit_hex}"),
        Some(r) => {
            let short = if r.starts_with("refs/") {
                r.splitn(3, '/').nth(2).unwrap_or(r)
            } else {
                r
            };
            format!("{short}@sha1:{commit_hex}")
        }
    }
}

/// Normalises legacy revisions (`main/<sha>`, bare 40-hex) to `<name>@sha1:<hex>` / `sha1:<hex>`
/// so they compare equal to current ones (Flux `TransformRevision`).
pub fn transform_revision(revision: &str) -> String {
    if revision.contains(':') || revision.is_empty() {
        return revision.to_string();
    }
    let is_hex = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex(revision) {
        return format!("sha1:{revision}");
    }
    if let Some((name, hash)) = revision.rsplit_once('/') {
        if is_hex(hash) {
            return format!("{name}@sha1:{hash}");
        }
    }
    revision.to_string()
}

/// The hash part of a revision: `main@sha1:abc` → `abc`, `sha256:abc` → `abc`, legacy too.
pub fn revision_hash(revision: &str) -> &str {
    let after_at = revision.rsplit_once('@').map_or(revision, |(_, h)| h);
    if let Some((_, hex)) = after_at.split_once(':') {
        return hex;
    }
    revision.rsplit_once('/').map_or(revision, |(_, h)| h)
}

/// Formats a time as RFC 3339 (UTC, second precision), the form Kubernetes uses.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn git_revisions_follow_flux() {
        assert_eq!(
            git_revision(Some("refs/heads/main"), SHA, false),
            format!("main@sha1:{SHA}")
        );
        assert_eq!(
            git_revision(Some("refs/heads/feature/x"), SHA, false),
            format!("feature/x@sha1:{SHA}")
        );
        assert_eq!(
            git_revision(Some("refs/tags/v1.0.0"), SHA, false),
            format!("v1.0.0@sha1:{SHA}")
        );
        assert_eq!(
            git_revision(Some("refs/pull/420/head"), SHA, true),
            format!("refs/pull/420/head@sha1:{SHA}")
        );
        assert_eq!(git_revision(None, SHA, false), format!("sha1:{SHA}"));
    }

    #[test]
    fn legacy_revisions_compare_equal() {
        assert_eq!(
            transform_revision(&format!("main/{SHA}")),
            format!("main@sha1:{SHA}")
        );
        assert_eq!(transform_revision(SHA), format!("sha1:{SHA}"));
        assert_eq!(revision_hash(&format!("main@sha1:{SHA}")), SHA);
        assert_eq!(revision_hash(&format!("main/{SHA}")), SHA);
        assert_eq!(revision_hash("sha256:abcd"), "abcd");
    }

    #[test]
    fn digests_parse_and_reject() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(d.algorithm, "sha256");
        assert!("sha256:xyz".parse::<Digest>().is_err());
        assert!("md5:abcd".parse::<Digest>().is_err());
        assert!("nocolon".parse::<Digest>().is_err());
        assert_eq!(
            Digest::sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
    }
}
