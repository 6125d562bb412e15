//! HelmRepository and HelmChart: index download and storage, chart selection and download with
//! digest verification, and charts packaged from a directory (Git/Bucket artifacts).

pub mod chart;
pub mod deps;
pub mod index;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::artifact::{revision_hash, Artifact, Digest, FetchOutcome};
use crate::error::{Error, Result};
use crate::storage::Storage;

pub use index::{ChartVersion, IndexFile};

/// `--helm-index-max-size` default.
pub const INDEX_MAX_SIZE: u64 = 52_428_800;
/// `--helm-chart-max-size` default.
pub const CHART_MAX_SIZE: u64 = 10_485_760;

/// HTTP credentials and TLS for a repository.
#[derive(Debug, Clone, Default)]
pub struct HttpAuth {
    pub basic: Option<(String, String)>,
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate for mutual TLS (`certSecretRef` `tls.crt`/`tls.key`).
    pub client_cert: Option<crate::tls::ClientCert>,
    /// `proxySecretRef`.
    pub proxy: Option<crate::tls::ProxyConfig>,
}

/// A (non-OCI) HelmRepository.
#[derive(Debug, Clone)]
pub struct HelmRepoSpec {
    pub url: String,
    pub auth: HttpAuth,
    /// Send credentials to chart URLs on other hosts.
    pub pass_credentials: bool,
    pub timeout: Duration,
}

impl HelmRepoSpec {
    pub fn new(url: impl Into<String>) -> Self {
        HelmRepoSpec {
            url: url.into(),
            auth: HttpAuth::default(),
            pass_credentials: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Builds a blocking HTTP client with the crate's TLS setup. Must not be called on an async
/// runtime thread (use `spawn_blocking`).
pub fn http_client(auth: &HttpAuth, timeout: Duration) -> Result<reqwest::blocking::Client> {
    crate::tls::ensure_provider();
    let builder = crate::tls::configure_blocking(
        reqwest::blocking::Client::builder().timeout(timeout),
        auth.ca_pem.as_deref(),
        auth.client_cert.as_ref(),
        auth.proxy.as_ref(),
    )?;
    builder.build().map_err(|e| Error::Http {
        method: "BUILD",
        url: String::new(),
        detail: e.to_string(),
    })
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// GETs `url` with an optional basic auth, refusing bodies over `limit` bytes.
pub fn http_get(
    client: &reqwest::blocking::Client,
    url: &str,
    basic: Option<&(String, String)>,
    limit: u64,
) -> Result<Vec<u8>> {
    let http_err = |detail: String| Error::Http {
        method: "GET",
        url: url.to_string(),
        detail,
    };
    let mut req = client.get(url);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().map_err(|e| http_err(error_chain(&e)))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Auth {
            url: url.to_string(),
            detail: status.to_string(),
        });
    }
    if !status.is_success() {
        return Err(http_err(format!("status {status}")));
    }
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(http_err(format!(
            "response exceeds the limit of {limit} bytes"
        )));
    }
    let mut body = Vec::new();
    resp.take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| http_err(format!("reading body: {e}")))?;
    if body.len() as u64 > limit {
        return Err(http_err(format!(
            "response exceeds the limit of {limit} bytes"
        )));
    }
    Ok(body)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `<url>/index.yaml`, keeping a query string.
pub fn index_url(repo_url: &str) -> String {
    let (base, query) = repo_url
        .split_once('?')
        .map_or((repo_url, None), |(b, q)| (b, Some(q)));
    let mut url = format!("{}/index.yaml", base.trim_end_matches('/'));
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// An in-memory cache of parsed indexes keyed by artifact path (`--helm-cache-*`).
#[derive(Debug)]
pub struct IndexCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, IndexFile)>>,
}

impl IndexCache {
    pub fn new(ttl: Duration) -> Self {
        IndexCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<IndexFile> {
        let mut map = self.entries.lock().ok()?;
        match map.get(key) {
            Some((at, index)) if at.elapsed() < self.ttl => Some(index.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: &str, index: IndexFile) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(key.to_string(), (Instant::now(), index));
        }
    }
}

/// Reconciles a HelmRepository: downloads the index; revision = sha256 of the raw bytes; the
/// artifact `index-<hex>.yaml` holds the parsed, sorted index as JSON; `index.yaml` links to it.
pub fn fetch_repository(
    spec: &HelmRepoSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
    current: Option<&Artifact>,
) -> Result<(FetchOutcome, IndexFile)> {
    let client = http_client(&spec.auth, spec.timeout)?;
    let url = index_url(&spec.url);
    let raw = http_get(&client, &url, spec.auth.basic.as_ref(), INDEX_MAX_SIZE)?;
    let revision = Digest::sha256(&raw);
    let index = IndexFile::parse(&raw, &url)?;
    if let Some(current) = current {
        if current.revision == revision.to_string() && storage.exists(current) {
            return Ok((FetchOutcome::Unchanged(current.clone()), index));
        }
    }
    let json = index.to_json()?;
    let mut artifact = storage.new_artifact(
        "HelmRepository",
        namespace,
        name,
        &format!("index-{}.yaml", revision.hex),
        &revision.to_string(),
    );
    let _lock = storage.lock(&artifact)?;
    storage.write_bytes(&mut artifact, &json)?;
    storage.symlink(&artifact, "index.yaml")?;
    Ok((FetchOutcome::New(artifact), index))
}

/// Downloads the chart version selected by `version` (Helm's rules) and verifies the index
/// digest when the entry has one.
pub fn pull_chart(
    spec: &HelmRepoSpec,
    index: &IndexFile,
    chart: &str,
    version: &str,
) -> Result<(ChartVersion, Vec<u8>)> {
    let entry = index.get(chart, version)?.clone();
    let first = entry.urls.first().ok_or_else(|| {
        Error::NotFound(format!(
            "chart {chart}-{} has no download URL",
            entry.version
        ))
    })?;
    let url = index::resolve_chart_url(&spec.url, first);
    let same_host = host_of(&url) == host_of(&spec.url);
    let basic = if same_host || spec.pass_credentials {
        spec.auth.basic.as_ref()
    } else {
        None
    };
    let client = http_client(&spec.auth, spec.timeout)?;
    let bytes = http_get(&client, &url, basic, CHART_MAX_SIZE)?;
    if !entry.digest.is_empty() {
        let actual = Digest::sha256(&bytes);
        let expected = entry.digest.trim_start_matches("sha256:");
        if !actual.hex.eq_ignore_ascii_case(expected) {
            return Err(Error::DigestMismatch {
                what: url,
                expected: entry.digest.clone(),
                actual: actual.to_string(),
            });
        }
    }
    Ok((entry, bytes))
}

/// Values overrides of a HelmChart.
#[derive(Debug, Clone, Default)]
pub struct ValuesSpec {
    pub files: Vec<String>,
    pub ignore_missing: bool,
    /// `metadata.generation` of the HelmChart (used as build metadata).
    pub generation: i64,
}

impl ValuesSpec {
    /// Whether the files override the chart's values: a single `values.yaml` entry means
    /// "no override" (Flux).
    pub fn effective(&self) -> bool {
        !(self.files.is_empty() || self.files.len() == 1 && self.files[0] == "values.yaml")
    }
}

/// HelmChart from a HelmRepository: stores the downloaded chart as-is (revision = chart
/// version) or, with values files, re-packaged with version `+<generation>`.
#[allow(clippy::too_many_arguments)]
pub fn fetch_chart_from_repository(
    spec: &HelmRepoSpec,
    index: &IndexFile,
    chart: &str,
    version: &str,
    values: &ValuesSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
) -> Result<Artifact> {
    let (entry, bytes) = pull_chart(spec, index, chart, version)?;
    store_remote_chart(
        &bytes,
        &entry.name,
        &entry.version,
        values,
        storage,
        namespace,
        name,
    )
    .map(|build| build.artifact)
    .map_err(|staged| staged.error)
}

/// What a HelmChart build produced (Flux's `chart.Build`): the stored artifact, the chart's
/// name and (final) version, the values files merged and whether the chart was packaged here
/// rather than stored as downloaded.
#[derive(Debug, Clone)]
pub struct ChartBuild {
    pub artifact: Artifact,
    pub name: String,
    pub version: String,
    /// The values files actually merged (missing ones skipped with `ignore_missing`); empty
    /// when the chart's own `values.yaml` is used.
    pub values_files: Vec<String>,
    pub packaged: bool,
}

/// The step of a chart build that failed; Flux reports each with its own reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStage {
    /// Reading the chart (archive or `Chart.yaml`): Flux's `ChartPackageError`.
    Load,
    /// Merging `valuesFiles`: `ValuesFilesError`.
    ValuesMerge,
    /// Resolving dependencies: `DependencyBuildError`.
    Dependencies,
    /// Packaging: `ChartPackageError`.
    Package,
    /// Writing the artifact: a storage failure.
    Store,
}

/// An error of a chart build with the step it happened in.
#[derive(Debug)]
pub struct StagedError {
    pub stage: BuildStage,
    pub error: Error,
}

fn at(stage: BuildStage) -> impl Fn(Error) -> StagedError {
    move |error| StagedError { stage, error }
}

/// The artifact revision of a chart from a repository: its version, plus `+<generation>`
/// when values files are merged into it.
pub fn remote_chart_version(version: &str, values: &ValuesSpec) -> String {
    if values.effective() {
        chart::with_build_metadata(version, &values.generation.to_string())
    } else {
        version.to_string()
    }
}

/// The artifact revision of a chart packaged from a directory: `Chart.yaml`'s version, plus the
/// first 12 hex characters of the source revision with the `Revision` strategy, plus
/// `<generation>` when values files are merged.
pub fn dir_chart_version(
    chart_version: &str,
    strategy: ReconcileStrategy,
    source_revision: &str,
    values: &ValuesSpec,
) -> String {
    let mut version = chart_version.to_string();
    if strategy == ReconcileStrategy::Revision {
        let hash = revision_hash(source_revision);
        version = chart::with_build_metadata(&version, &hash[..hash.len().min(12)]);
    }
    if values.effective() {
        version = chart::with_build_metadata(&version, &values.generation.to_string());
    }
    version
}

/// Stores a chart `.tgz` downloaded from a repository (HTTP or OCI): as-is, or with
/// `valuesFiles` (paths inside the chart) merged into its `values.yaml` and re-packaged with
/// [`remote_chart_version`].
pub fn store_remote_chart(
    bytes: &[u8],
    chart_name: &str,
    version: &str,
    values: &ValuesSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
) -> std::result::Result<ChartBuild, StagedError> {
    let final_version = remote_chart_version(version, values);
    let (bytes, values_files, packaged) = if values.effective() {
        let dir = tempfile::tempdir()
            .map_err(Error::io("creating temp dir", std::env::temp_dir()))
            .map_err(at(BuildStage::Load))?;
        crate::extract::unpack_gz(
            bytes,
            dir.path(),
            &crate::extract::Limits::default(),
            chart_name,
        )
        .map_err(at(BuildStage::Load))?;
        let chart_dir = dir.path().join(chart_name);
        let (merged, used) =
            chart::merge_values_files(&chart_dir, &values.files, values.ignore_missing)
                .map_err(at(BuildStage::ValuesMerge))?;
        let packaged = chart::package(&chart_dir, Some(&final_version), Some(&merged))
            .map_err(at(BuildStage::Package))?;
        (packaged.bytes, used, true)
    } else {
        (bytes.to_vec(), Vec::new(), false)
    };
    let artifact = store_chart(storage, namespace, name, chart_name, &final_version, &bytes)
        .map_err(at(BuildStage::Store))?;
    Ok(ChartBuild {
        artifact,
        name: chart_name.to_string(),
        version: final_version,
        values_files,
        packaged,
    })
}

/// How a HelmChart built from a directory gets its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReconcileStrategy {
    #[default]
    ChartVersion,
    Revision,
}

/// HelmChart from a GitRepository/Bucket artifact extracted at `source_root`: packages
/// `chart_path` with Flux's version rules. Missing dependencies are resolved anonymously by
/// URL (see [`build_chart_from_dir_with`] for repository credentials).
#[allow(clippy::too_many_arguments)]
pub fn build_chart_from_dir(
    source_root: &Path,
    chart_path: &str,
    strategy: ReconcileStrategy,
    source_revision: &str,
    values: &ValuesSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
) -> Result<Artifact> {
    build_chart_from_dir_with(
        source_root,
        chart_path,
        strategy,
        source_revision,
        values,
        &deps::Repositories::default(),
        storage,
        namespace,
        name,
    )
}

/// [`build_chart_from_dir`] with settings for the dependency repositories: dependencies
/// declared in `Chart.yaml` (or `requirements.yaml`) and missing from `charts/` are resolved
/// into a staging copy of the chart (`helm dependency build`), which is then packaged.
#[allow(clippy::too_many_arguments)]
pub fn build_chart_from_dir_with(
    source_root: &Path,
    chart_path: &str,
    strategy: ReconcileStrategy,
    source_revision: &str,
    values: &ValuesSpec,
    repositories: &deps::Repositories,
    storage: &Storage,
    namespace: &str,
    name: &str,
) -> Result<Artifact> {
    build_chart_from_dir_detailed(
        source_root,
        chart_path,
        strategy,
        source_revision,
        values,
        repositories,
        storage,
        namespace,
        name,
    )
    .map(|build| build.artifact)
    .map_err(|staged| staged.error)
}

/// [`build_chart_from_dir_with`] reporting what was built and, on failure, which step failed.
#[allow(clippy::too_many_arguments)]
pub fn build_chart_from_dir_detailed(
    source_root: &Path,
    chart_path: &str,
    strategy: ReconcileStrategy,
    source_revision: &str,
    values: &ValuesSpec,
    repositories: &deps::Repositories,
    storage: &Storage,
    namespace: &str,
    name: &str,
) -> std::result::Result<ChartBuild, StagedError> {
    let source_dir =
        source_root.join(crate::extract::safe_relative(chart_path).map_err(at(BuildStage::Load))?);
    let (meta, _) = chart::load_meta(&source_dir).map_err(at(BuildStage::Load))?;
    let declared = deps::declared(&source_dir).map_err(at(BuildStage::Dependencies))?;
    let (_staging, chart_dir) = if declared.is_empty() {
        (None, source_dir)
    } else {
        let (tmp, copy) = deps::staging_copy(&source_dir).map_err(at(BuildStage::Dependencies))?;
        deps::build(&copy, &source_dir, source_root, repositories)
            .map_err(at(BuildStage::Dependencies))?;
        (Some(tmp), copy)
    };
    let version = dir_chart_version(&meta.version, strategy, source_revision, values);
    let (merged, values_files) = if values.effective() {
        let (merged, used) =
            chart::merge_values_files(source_root, &values.files, values.ignore_missing)
                .map_err(at(BuildStage::ValuesMerge))?;
        (Some(merged), used)
    } else {
        (None, Vec::new())
    };
    let packaged = chart::package(&chart_dir, Some(&version), merged.as_ref())
        .map_err(at(BuildStage::Package))?;
    let artifact = store_chart(
        storage,
        namespace,
        name,
        &packaged.name,
        &version,
        &packaged.bytes,
    )
    .map_err(at(BuildStage::Store))?;
    Ok(ChartBuild {
        artifact,
        name: packaged.name,
        version,
        values_files,
        packaged: true,
    })
}

fn store_chart(
    storage: &Storage,
    namespace: &str,
    name: &str,
    chart: &str,
    version: &str,
    bytes: &[u8],
) -> Result<Artifact> {
    let mut artifact = storage.new_artifact(
        "HelmChart",
        namespace,
        name,
        &format!("{chart}-{version}.tgz"),
        version,
    );
    let _lock = storage.lock(&artifact)?;
    storage.write_bytes(&mut artifact, bytes)?;
    storage.symlink(&artifact, "latest.tar.gz")?;
    Ok(artifact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_url_keeps_query() {
        assert_eq!(index_url("http://h/charts/"), "http://h/charts/index.yaml");
        assert_eq!(
            index_url("http://h/c?token=1"),
            "http://h/c/index.yaml?token=1"
        );
        assert_eq!(host_of("https://h:8080/x"), "h:8080");
    }

    #[test]
    fn cache_expires() {
        let cache = IndexCache::new(Duration::from_millis(0));
        let index = IndexFile::parse(b"apiVersion: v1\n", "x").unwrap();
        cache.put("k", index);
        assert!(cache.get("k").is_none());
        let cache = IndexCache::new(Duration::from_secs(60));
        cache.put("k", IndexFile::parse(b"apiVersion: v1\n", "x").unwrap());
        assert!(cache.get("k").is_some());
    }

    #[test]
    fn builds_chart_from_dir_with_revision_strategy() {
        let src = tempfile::tempdir().unwrap();
        let c = src.path().join("charts/demo");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(
            c.join("Chart.yaml"),
            "apiVersion: v2\nname: demo\nversion: 6.0.3\n",
        )
        .unwrap();
        std::fs::write(c.join("values.yaml"), "a: 1\n").unwrap();
        std::fs::write(src.path().join("prod.yaml"), "a: 2\n").unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(store_dir.path(), "localhost").unwrap();
        let rev = "main@sha1:4e5cbb7b97d00a8f0e9c8a2e8c3b1c0e8f4d2a11";
        let a = build_chart_from_dir(
            src.path(),
            "./charts/demo",
            ReconcileStrategy::Revision,
            rev,
            &ValuesSpec::default(),
            &storage,
            "ns",
            "demo",
        )
        .unwrap();
        assert_eq!(a.revision, "6.0.3+4e5cbb7b97d0");
        assert!(a.path.ends_with("demo-6.0.3+4e5cbb7b97d0.tgz"));
        let values = ValuesSpec {
            files: vec!["prod.yaml".into()],
            ignore_missing: false,
            generation: 2,
        };
        let a = build_chart_from_dir(
            src.path(),
            "charts/demo",
            ReconcileStrategy::Revision,
            rev,
            &values,
            &storage,
            "ns",
            "demo",
        )
        .unwrap();
        assert_eq!(a.revision, "6.0.3+4e5cbb7b97d0.2");
        storage.verify(&a).unwrap();
    }
}
