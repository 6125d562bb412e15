//! Bucket: S3-compatible object stores (path-style requests signed with AWS SigV4), the etag
//! index that gives the revision, and the reconcile step. The index and its digest are pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::artifact::{rfc3339, Artifact, Digest, FetchOutcome};
use crate::error::{Error, Result};
use crate::ignore::Rules;
use crate::storage::Storage;

/// The etag index: key → etag, sorted by key.
pub type EtagIndex = BTreeMap<String, String>;

/// Revision of an index: sha256 over `"<key> <etag>\n"` lines in key order.
pub fn index_revision(index: &EtagIndex) -> Digest {
    let mut text = String::new();
    for (k, v) in index {
        text.push_str(k);
        text.push(' ');
        text.push_str(v);
        text.push('\n');
    }
    Digest::sha256(text.as_bytes())
}

/// Builds the index from listed objects: directory markers, the `.sourceignore` object and
/// ignored keys are skipped.
pub fn build_index(
    objects: impl IntoIterator<Item = (String, String)>,
    rules: &Rules,
) -> EtagIndex {
    objects
        .into_iter()
        .filter(|(key, _)| !key.ends_with('/') && key != crate::ignore::SOURCEIGNORE)
        .filter(|(key, _)| !rules.is_excluded_path(key, false))
        .collect()
}

/// S3 connection settings (`spec.endpoint`, `region`, `insecure`, `accesskey`/`secretkey`).
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `host[:port]` (or a full URL).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub insecure: bool,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub timeout: Duration,
    pub ca_pem: Option<Vec<u8>>,
    /// `certSecretRef` `tls.crt`/`tls.key`.
    pub client_cert: Option<crate::tls::ClientCert>,
    /// `proxySecretRef`.
    pub proxy: Option<crate::tls::ProxyConfig>,
}

/// A minimal S3 client: HeadBucket, ListObjectsV2, GetObject.
pub struct S3Client {
    config: S3Config,
    base: String,
    http: reqwest::blocking::Client,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_continuation_token: Option<String>,
    #[serde(default)]
    contents: Vec<ListEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListEntry {
    key: String,
    #[serde(default, rename = "ETag")]
    etag: String,
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn trim_etag(e: &str) -> String {
    e.trim().trim_matches('"').to_string()
}

/// Computes the SigV4 `Authorization` header for a request without body.
#[allow(clippy::too_many_arguments)]
pub fn sigv4_authorization(
    method: &str,
    host: &str,
    path: &str,
    query: &[(String, String)],
    amz_date: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
) -> String {
    let payload_hash = hex::encode(Sha256::digest(b""));
    let mut sorted: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    sorted.sort();
    let canonical_query = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_headers =
        format!("host:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n");
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical_request =
        format!("{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret_key}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, "s3");
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex::encode(hmac(&k_signing, &to_sign));
    format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}")
}

impl S3Client {
    pub fn new(config: S3Config) -> Result<S3Client> {
        let auth = crate::helm::HttpAuth {
            basic: None,
            ca_pem: config.ca_pem.clone(),
            client_cert: config.client_cert.clone(),
            proxy: config.proxy.clone(),
        };
        let http = crate::helm::http_client(&auth, config.timeout)?;
        let base = if config.endpoint.contains("://") {
            config.endpoint.trim_end_matches('/').to_string()
        } else if config.insecure {
            format!("http://{}", config.endpoint)
        } else {
            format!("https://{}", config.endpoint)
        };
        Ok(S3Client { config, base, http })
    }

    fn err(&self, detail: impl Into<String>) -> Error {
        Error::Bucket {
            bucket: self.config.bucket.clone(),
            detail: detail.into(),
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(String, String)],
    ) -> Result<reqwest::blocking::Response> {
        let mut path = format!("/{}", uri_encode(&self.config.bucket, false));
        if let Some(key) = key {
            path.push('/');
            path.push_str(&uri_encode(key, true));
        }
        let host = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, h)| h);
        let host = host.split('/').next().unwrap_or(host).to_string();
        let query_string = query
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
            .collect::<Vec<_>>()
            .join("&");
        let url = if query_string.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query_string}", self.base)
        };
        let mut req = self.http.request(method.clone(), &url);
        if let (Some(ak), Some(sk)) = (&self.config.access_key, &self.config.secret_key) {
            let amz_date: String = rfc3339(SystemTime::now())
                .chars()
                .filter(|c| *c != '-' && *c != ':')
                .collect();
            let authorization = sigv4_authorization(
                method.as_str(),
                &host,
                &path,
                query,
                &amz_date,
                &self.config.region,
                ak,
                sk,
            );
            req = req
                .header("x-amz-date", amz_date)
                .header("x-amz-content-sha256", hex::encode(Sha256::digest(b"")))
                .header("authorization", authorization);
        }
        req.send()
            .map_err(|e| self.err(format!("{method} {url}: {e}")))
    }

    fn check(&self, resp: &reqwest::blocking::Response, what: &str) -> Result<()> {
        let status = resp.status();
        if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Error::Auth {
                url: format!("{}/{}", self.base, self.config.bucket),
                detail: format!("{what}: {status}"),
            });
        }
        if !status.is_success() {
            return Err(self.err(format!("{what}: status {status}")));
        }
        Ok(())
    }

    /// Fails unless the bucket exists.
    pub fn bucket_exists(&self) -> Result<()> {
        let resp = self.request(reqwest::Method::HEAD, None, &[])?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(self.err(format!("bucket '{}' not found", self.config.bucket)));
        }
        self.check(&resp, "head bucket")
    }

    /// Lists `(key, etag)` under `prefix`.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type".to_string(), "2".to_string())];
            if !prefix.is_empty() {
                query.push(("prefix".into(), prefix.into()));
            }
            if let Some(t) = &token {
                query.push(("continuation-token".into(), t.clone()));
            }
            let resp = self.request(reqwest::Method::GET, None, &query)?;
            self.check(&resp, "list objects")?;
            let body = resp
                .text()
                .map_err(|e| self.err(format!("list objects: {e}")))?;
            let parsed: ListResult = quick_xml::de::from_str(&body)
                .map_err(|e| self.err(format!("list objects: invalid XML: {e}")))?;
            out.extend(
                parsed
                    .contents
                    .into_iter()
                    .map(|c| (c.key, trim_etag(&c.etag))),
            );
            match parsed.next_continuation_token {
                Some(t) if parsed.is_truncated => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// Downloads an object; `None` when it does not exist. Returns bytes and etag.
    pub fn get(&self, key: &str, limit: u64) -> Result<Option<(Vec<u8>, String)>> {
        let resp = self.request(reqwest::Method::GET, Some(key), &[])?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.check(&resp, &format!("get {key}"))?;
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(trim_etag)
            .unwrap_or_default();
        let expected = resp.content_length();
        let mut body = Vec::new();
        resp.take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.err(format!("get {key}: {e}")))?;
        if body.len() as u64 > limit {
            return Err(self.err(format!("get {key}: object exceeds {limit} bytes")));
        }
        if expected.is_some_and(|n| n != body.len() as u64) {
            return Err(self.err(format!("get {key}: truncated download")));
        }
        Ok(Some((body, etag)))
    }
}

/// A Bucket spec.
#[derive(Debug, Clone)]
pub struct BucketSpec {
    pub s3: S3Config,
    pub prefix: String,
    pub ignore: Option<String>,
}

/// Lists the bucket and returns the filtered etag index (root `.sourceignore` + `spec.ignore`).
pub fn list_index(client: &S3Client, spec: &BucketSpec) -> Result<EtagIndex> {
    client.bucket_exists()?;
    let mut patterns = Vec::new();
    if let Some((bytes, _)) = client.get(crate::ignore::SOURCEIGNORE, 1 << 20)? {
        patterns.extend(Rules::parse(&String::from_utf8_lossy(&bytes), &[]));
    }
    if let Some(ignore) = &spec.ignore {
        patterns.extend(Rules::parse(ignore, &[]));
    }
    let rules = Rules::from_patterns(patterns);
    Ok(build_index(client.list(&spec.prefix)?, &rules))
}

/// Reconciles a Bucket into storage (`<hex>.tar.gz` + `latest.tar.gz`).
pub fn fetch(
    spec: &BucketSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
    current: Option<&Artifact>,
) -> Result<FetchOutcome> {
    let client = S3Client::new(spec.s3.clone())?;
    let mut index = list_index(&client, spec)?;
    let revision = index_revision(&index);
    if let Some(current) = current {
        if current.revision == revision.to_string() && storage.exists(current) {
            return Ok(FetchOutcome::Unchanged(current.clone()));
        }
    }
    let dir = tempfile::tempdir().map_err(Error::io("creating temp dir", std::env::temp_dir()))?;
    download_all(&client, &mut index, dir.path())?;
    let revision = index_revision(&index);
    let mut artifact = storage.new_artifact(
        "Bucket",
        namespace,
        name,
        &format!("{}.tar.gz", revision.hex),
        &revision.to_string(),
    );
    let _lock = storage.lock(&artifact)?;
    storage.archive(&mut artifact, dir.path(), None)?;
    storage.symlink(&artifact, "latest.tar.gz")?;
    Ok(FetchOutcome::New(artifact))
}

/// A downloaded key and its fresh etag (`None`: the object vanished).
type Downloaded = (String, Option<String>);

/// Downloads every indexed object into `dir` (a few in parallel), refreshing etags and dropping
/// keys that vanished.
fn download_all(client: &S3Client, index: &mut EtagIndex, dir: &Path) -> Result<()> {
    let keys: Vec<String> = index.keys().cloned().collect();
    let chunk = keys.len().div_ceil(8).max(1);
    let results: Vec<Result<Vec<Downloaded>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<Downloaded>> {
                    let mut done = Vec::new();
                    for key in part {
                        let rel = crate::extract::safe_relative(key)?;
                        match client.get(key, u64::MAX / 2)? {
                            Some((bytes, etag)) => {
                                let path = dir.join(rel);
                                if let Some(parent) = path.parent() {
                                    std::fs::create_dir_all(parent)
                                        .map_err(Error::io("creating", parent))?;
                                }
                                std::fs::write(&path, bytes)
                                    .map_err(Error::io("writing", &path))?;
                                done.push((key.clone(), Some(etag)));
                            }
                            None => done.push((key.clone(), None)),
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::NotFound("download thread panicked".into())))
            })
            .collect()
    });
    for part in results {
        for (key, etag) in part? {
            match etag {
                Some(e) if !e.is_empty() => {
                    index.insert(key, e);
                }
                Some(_) => {}
                None => {
                    index.remove(&key);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_revision() {
        let rules = Rules::from_patterns(Rules::parse("*.md\n", &[]));
        let index = build_index(
            vec![
                ("b.yaml".to_string(), "2".to_string()),
                ("a.yaml".into(), "1".into()),
                ("dir/".into(), "x".into()),
                (".sourceignore".into(), "y".into()),
                ("README.md".into(), "z".into()),
            ],
            &rules,
        );
        assert_eq!(index.keys().collect::<Vec<_>>(), ["a.yaml", "b.yaml"]);
        assert_eq!(
            index_revision(&index),
            Digest::sha256(b"a.yaml 1\nb.yaml 2\n")
        );
    }

    /// The "GET Bucket (List Objects)" example of the AWS SigV4 documentation.
    #[test]
    fn sigv4_matches_aws_documentation_example() {
        let auth = sigv4_authorization(
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/",
            &[
                ("max-keys".into(), "2".into()),
                ("prefix".into(), "J".into()),
            ],
            "20130524T000000Z",
            "us-east-1",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
        assert_eq!(uri_encode("a b/c", true), "a%20b/c");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }

    #[test]
    fn parses_list_xml() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken><Contents><Key>a &amp; b.yaml</Key><ETag>&quot;abc&quot;</ETag><Size>1</Size></Contents></ListBucketResult>"#;
        let parsed: ListResult = quick_xml::de::from_str(xml).unwrap();
        assert!(parsed.is_truncated);
        assert_eq!(parsed.contents[0].key, "a & b.yaml");
        assert_eq!(trim_etag(&parsed.contents[0].etag), "abc");
    }
}
