//! OCIRepository with oci-client: reference resolution (tag, semver, digest), pull with layer
//! selection (extract or copy), docker-config auth, plain-HTTP registries, and push of Flux
//! artifacts with Flux's media types and annotations. Async (tokio).

use std::collections::BTreeMap;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
pub use oci_client::Reference;

use crate::artifact::{Artifact, Digest, FetchOutcome};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// Config media type of artifacts pushed by `flux push artifact`.
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// Layer media type of artifacts pushed by `flux push artifact`.
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Helm chart layer media type (semver tags map `_` to `+`).
pub const HELM_CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";

/// `spec.ref` of an OCIRepository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciRef {
    pub tag: Option<String>,
    pub semver: Option<String>,
    pub semver_filter: Option<String>,
    pub digest: Option<String>,
}

/// `spec.layerSelector.operation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LayerOperation {
    #[default]
    Extract,
    Copy,
}

/// `spec.layerSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerSelector {
    pub media_type: Option<String>,
    pub operation: LayerOperation,
}

/// Registry connection settings.
#[derive(Debug, Clone, Default)]
pub struct OciOptions {
    /// Username/password for the registry.
    pub basic: Option<(String, String)>,
    /// Plain HTTP (`spec.insecure`).
    pub insecure: bool,
    /// PEM CA bundle.
    pub ca_pem: Option<Vec<u8>>,
    /// `proxySecretRef`. (Client certificates are not supported: oci-client has no setting
    /// for a client identity.)
    pub proxy: Option<crate::tls::ProxyConfig>,
}

impl OciOptions {
    /// Credentials for `registry` from a Docker config JSON (`.dockerconfigjson`).
    pub fn with_docker_config(mut self, json: &[u8], registry: &str) -> Result<Self> {
        self.basic = docker_config_auth(json, registry)?;
        Ok(self)
    }
}

/// Looks `registry` up in a Docker config JSON: `username`/`password` or base64 `auth`.
pub fn docker_config_auth(json: &[u8], registry: &str) -> Result<Option<(String, String)>> {
    let parse_err = |detail: String| Error::Parse {
        what: "docker config json".into(),
        detail,
    };
    let doc: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| parse_err(e.to_string()))?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = normalize_registry(registry);
    for (key, entry) in auths {
        if normalize_registry(key) != wanted {
            continue;
        }
        let user = entry.get("username").and_then(|v| v.as_str());
        let pass = entry.get("password").and_then(|v| v.as_str());
        if let (Some(u), Some(p)) = (user, pass) {
            return Ok(Some((u.to_string(), p.to_string())));
        }
        if let Some(auth) = entry.get("auth").and_then(|v| v.as_str()) {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .map_err(|e| parse_err(format!("auths.{key}.auth: {e}")))?;
            let text = String::from_utf8_lossy(&decoded).into_owned();
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| parse_err(format!("auths.{key}.auth: expected user:password")))?;
            return Ok(Some((u.to_string(), p.to_string())));
        }
    }
    Ok(None)
}

fn normalize_registry(r: &str) -> String {
    let r = r
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let r = r.split('/').next().unwrap_or(r);
    match r {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// Parses `oci://host/repo` (no tag allowed, as Flux requires) into a registry reference.
pub fn parse_url(url: &str) -> Result<Reference> {
    let rest = url
        .strip_prefix("oci://")
        .ok_or_else(|| Error::invalid("oci url", url, "must start with oci://"))?;
    let last = rest.rsplit('/').next().unwrap_or(rest);
    if last.contains(':') || last.contains('@') {
        return Err(Error::invalid("oci url", url, "URL must not contain a tag"));
    }
    rest.parse::<Reference>()
        .map_err(|e| Error::invalid("oci url", url, e.to_string()))
}

fn with_tag(base: &Reference, tag: &str) -> Reference {
    Reference::with_tag(
        base.registry().to_string(),
        base.repository().to_string(),
        tag.to_string(),
    )
}

fn with_digest(base: &Reference, digest: &str) -> Reference {
    Reference::with_digest(
        base.registry().to_string(),
        base.repository().to_string(),
        digest.to_string(),
    )
}

fn oci_err<'a>(
    op: &'static str,
    reference: &'a Reference,
) -> impl FnOnce(oci_client::errors::OciDistributionError) -> Error + 'a {
    move |e| {
        let detail = e.to_string();
        let lower = detail.to_ascii_lowercase();
        if lower.contains("401")
            || lower.contains("unauthorized")
            || lower.contains("authentication")
        {
            return Error::Auth {
                url: reference.whole(),
                detail,
            };
        }
        Error::Oci {
            op,
            reference: reference.whole(),
            detail,
        }
    }
}

/// A connected registry client.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
}

impl Registry {
    pub fn new(options: &OciOptions) -> Result<Registry> {
        crate::tls::ensure_provider();
        let mut config = ClientConfig {
            protocol: if options.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            ..ClientConfig::default()
        };
        if let Some(pem) = &options.ca_pem {
            config
                .extra_root_certificates
                .push(oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                });
        }
        if let Some(proxy) = &options.proxy {
            let url = proxy.url_with_credentials()?;
            config.https_proxy = Some(url.clone());
            config.http_proxy = Some(url);
        }
        let auth = match &options.basic {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Registry {
            client: Client::new(config),
            auth,
        })
    }

    /// All tags of the repository.
    pub async fn list_tags(&self, base: &Reference) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self
                .client
                .list_tags(base, &self.auth, Some(1000), last.as_deref())
                .await
                .map_err(oci_err("list tags", base))?;
            let n = page.tags.len();
            last = page.tags.last().cloned();
            tags.extend(page.tags);
            if n < 1000 || last.is_none() {
                return Ok(tags);
            }
        }
    }

    /// Resolves the reference to `(tag, manifest digest)` with Flux's precedence
    /// digest > semver > tag > `latest`.
    pub async fn resolve(&self, base: &Reference, r: &OciRef) -> Result<(Option<String>, String)> {
        if let Some(digest) = r.digest.as_deref().filter(|d| !d.is_empty()) {
            digest.parse::<Digest>()?;
            return Ok((None, digest.to_string()));
        }
        let tag = if let Some(range) = r.semver.as_deref().filter(|s| !s.is_empty()) {
            let constraint = crate::semver::Constraint::parse(range)?;
            let filter = r
                .semver_filter
                .as_deref()
                .filter(|f| !f.is_empty())
                .map(|f| {
                    regex::Regex::new(f)
                        .map_err(|e| Error::invalid("ref.semverFilter", f, e.to_string()))
                })
                .transpose()?;
            let tags = self.list_tags(base).await?;
            let mapped: Vec<(String, String)> = tags
                .into_iter()
                .filter(|t| filter.as_ref().is_none_or(|f| f.is_match(t)))
                .map(|t| (t.replace('_', "+"), t))
                .collect();
            let (_, tag) = crate::semver::select_highest(
                mapped.iter().map(|(v, t)| (v.as_str(), t.clone())),
                &constraint,
            )
            .ok_or_else(|| Error::NotFound(format!("no match found for semver: {range}")))?;
            tag
        } else {
            r.tag
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "latest".into())
        };
        let reference = with_tag(base, &tag);
        let digest = self
            .client
            .fetch_manifest_digest(&reference, &self.auth)
            .await
            .map_err(oci_err("resolve", &reference))?;
        Ok((Some(tag), digest))
    }

    /// Pulls the image manifest at `digest`.
    pub async fn manifest(&self, base: &Reference, digest: &str) -> Result<OciImageManifest> {
        let reference = with_digest(base, digest);
        let (manifest, _) = self
            .client
            .pull_manifest(&reference, &self.auth)
            .await
            .map_err(oci_err("pull manifest", &reference))?;
        match manifest {
            OciManifest::Image(m) => Ok(m),
            OciManifest::ImageIndex(_) => Err(Error::Oci {
                op: "pull manifest",
                reference: reference.whole(),
                detail: "expected an image manifest, got an index".into(),
            }),
        }
    }

    /// Downloads a blob and verifies its digest.
    pub async fn blob(&self, base: &Reference, layer: &OciDescriptor) -> Result<Vec<u8>> {
        let mut out: Vec<u8> = Vec::new();
        self.client
            .pull_blob(base, layer, &mut out)
            .await
            .map_err(oci_err("pull blob", base))?;
        let actual = Digest::sha256(&out).to_string();
        if actual != layer.digest {
            return Err(Error::DigestMismatch {
                what: format!("{}@{}", base.whole(), layer.digest),
                expected: layer.digest.clone(),
                actual,
            });
        }
        Ok(out)
    }

    /// Pushes `tar_gz` as a Flux artifact to `reference` (`host/repo:tag`), returning the
    /// manifest digest.
    pub async fn push_artifact(
        &self,
        reference: &Reference,
        tar_gz: Vec<u8>,
        annotations: BTreeMap<String, String>,
    ) -> Result<String> {
        self.push_single_layer(
            reference,
            (tar_gz, FLUX_CONTENT_MEDIA_TYPE),
            (b"{}".to_vec(), FLUX_CONFIG_MEDIA_TYPE),
            annotations,
        )
        .await
    }

    /// Pushes a one-layer image with the given layer and config media types (Flux artifacts,
    /// Helm charts), returning the manifest digest.
    pub async fn push_single_layer(
        &self,
        reference: &Reference,
        layer: (Vec<u8>, &str),
        config: (Vec<u8>, &str),
        annotations: BTreeMap<String, String>,
    ) -> Result<String> {
        let layer = ImageLayer::new(layer.0, layer.1.to_string(), None);
        let config = Config::new(config.0, config.1.to_string(), None);
        let manifest =
            OciImageManifest::build(std::slice::from_ref(&layer), &config, Some(annotations));
        self.client
            .push(
                reference,
                &[layer],
                config,
                &self.auth,
                Some(manifest.clone()),
            )
            .await
            .map_err(oci_err("push", reference))?;
        let digest = self
            .client
            .fetch_manifest_digest(reference, &self.auth)
            .await
            .map_err(oci_err("push", reference))?;
        Ok(digest)
    }
}

/// Helm chart config media type.
pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";

/// Pulls chart `chart` from an OCI HelmRepository (`oci://host/path`): `version` is an exact
/// tag or a semver range over the tags (`_` in tags read as `+`). Returns
/// `(chart version, chart .tgz bytes)`.
pub async fn pull_helm_chart(
    repo_url: &str,
    chart: &str,
    version: &str,
    options: &OciOptions,
) -> Result<(String, Vec<u8>)> {
    let base = parse_url(&format!("{}/{chart}", repo_url.trim_end_matches('/')))?;
    let registry = Registry::new(options)?;
    let tags = registry.list_tags(&base).await?;
    let wanted = if version.is_empty() { "*" } else { version };
    let tag = if tags
        .iter()
        .any(|t| t == wanted || t.replace('_', "+") == wanted)
    {
        tags.iter()
            .find(|t| *t == wanted || t.replace('_', "+") == wanted)
            .cloned()
            .unwrap_or_default()
    } else {
        let constraint = crate::semver::Constraint::parse(wanted)?;
        let mapped: Vec<(String, String)> = tags
            .iter()
            .map(|t| (t.replace('_', "+"), t.clone()))
            .collect();
        crate::semver::select_highest(
            mapped.iter().map(|(v, t)| (v.as_str(), t.clone())),
            &constraint,
        )
        .map(|(_, t)| t)
        .ok_or_else(|| Error::NotFound(format!("no chart version found for {chart}-{wanted}")))?
    };
    let reference = with_tag(&base, &tag);
    let digest = registry
        .client
        .fetch_manifest_digest(&reference, &registry.auth)
        .await
        .map_err(oci_err("resolve", &reference))?;
    let manifest = registry.manifest(&base, &digest).await?;
    let selector = LayerSelector {
        media_type: Some(HELM_CHART_MEDIA_TYPE.into()),
        operation: LayerOperation::Copy,
    };
    let layer = select_layer(&manifest, &selector)?;
    let bytes = registry.blob(&base, layer).await?;
    Ok((tag.replace('_', "+"), bytes))
}

/// Picks the layer: first with the requested media type, else the first layer.
pub fn select_layer<'a>(
    manifest: &'a OciImageManifest,
    selector: &LayerSelector,
) -> Result<&'a OciDescriptor> {
    match selector.media_type.as_deref().filter(|m| !m.is_empty()) {
        Some(media_type) => manifest
            .layers
            .iter()
            .find(|l| l.media_type == media_type)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "failed to find layer with media type '{media_type}' in artifact"
                ))
            }),
        None => manifest
            .layers
            .first()
            .ok_or_else(|| Error::NotFound("no layers found in artifact".into())),
    }
}

/// The revision for a resolved reference: `<tag>@sha256:<hex>` or the digest alone.
pub fn revision(tag: Option<&str>, digest: &str) -> String {
    match tag {
        Some(t) => format!("{t}@{digest}"),
        None => digest.to_string(),
    }
}

/// An OCIRepository spec.
#[derive(Debug, Clone, Default)]
pub struct OciSpec {
    pub url: String,
    pub reference: OciRef,
    pub layer_selector: LayerSelector,
    pub ignore: Option<String>,
    pub options: OciOptions,
}

/// Reconciles an OCIRepository into storage (`<digest>.tar.gz` + `latest.tar.gz`).
pub async fn fetch(
    spec: &OciSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
    current: Option<&Artifact>,
    content_unchanged: bool,
) -> Result<FetchOutcome> {
    let base = parse_url(&spec.url)?;
    let registry = Registry::new(&spec.options)?;
    let (tag, digest) = registry.resolve(&base, &spec.reference).await?;
    let rev = revision(tag.as_deref(), &digest);
    if let Some(current) = current {
        if content_unchanged && current.revision == rev && storage.exists(current) {
            return Ok(FetchOutcome::Unchanged(current.clone()));
        }
    }
    let manifest = registry.manifest(&base, &digest).await?;
    let layer = select_layer(&manifest, &spec.layer_selector)?;
    let blob = registry.blob(&base, layer).await?;
    let mut artifact = storage.new_artifact(
        "OCIRepository",
        namespace,
        name,
        &format!("{digest}.tar.gz"),
        &rev,
    );
    artifact.metadata = manifest.annotations.clone().filter(|a| !a.is_empty());
    let storage = storage.clone();
    let operation = spec.layer_selector.operation;
    let ignore = spec.ignore.clone();
    let label = format!("{}@{}", base.whole(), layer.digest);
    tokio::task::spawn_blocking(move || -> Result<Artifact> {
        let _lock = storage.lock(&artifact)?;
        match operation {
            LayerOperation::Copy => storage.write_bytes(&mut artifact, &blob)?,
            LayerOperation::Extract => {
                let dir = tempfile::tempdir()
                    .map_err(Error::io("creating temp dir", std::env::temp_dir()))?;
                let limits = crate::extract::Limits {
                    max_total_bytes: u64::MAX,
                    max_file_bytes: u64::MAX,
                    ..crate::extract::Limits::default()
                };
                crate::extract::unpack_gz(&blob[..], dir.path(), &limits, &label)?;
                let rules = crate::ignore::Rules::load(dir.path(), ignore.as_deref())?;
                storage.archive(&mut artifact, dir.path(), Some(&rules))?;
            }
        }
        storage.symlink(&artifact, "latest.tar.gz")?;
        Ok(artifact)
    })
    .await
    .map_err(|e| Error::Oci {
        op: "store",
        reference: spec.url.clone(),
        detail: e.to_string(),
    })?
    .map(FetchOutcome::New)
}

/// Pulls a Flux artifact (`oci://host/repo:tag` or `@sha256:…`) and returns
/// `(revision, annotations, layer bytes)`.
pub async fn pull_artifact(
    url_with_ref: &str,
    options: &OciOptions,
    selector: &LayerSelector,
) -> Result<(String, BTreeMap<String, String>, Vec<u8>)> {
    let (base_url, r) = split_ref(url_with_ref)?;
    let base = parse_url(&base_url)?;
    let registry = Registry::new(options)?;
    let (tag, digest) = registry.resolve(&base, &r).await?;
    let manifest = registry.manifest(&base, &digest).await?;
    let layer = select_layer(&manifest, selector)?;
    let blob = registry.blob(&base, layer).await?;
    Ok((
        revision(tag.as_deref(), &digest),
        manifest.annotations.unwrap_or_default(),
        blob,
    ))
}

/// Splits `oci://host/repo:tag` / `oci://host/repo@sha256:…` into the base URL and a ref.
pub fn split_ref(url: &str) -> Result<(String, OciRef)> {
    if let Some((base, digest)) = url.rsplit_once('@') {
        return Ok((
            base.to_string(),
            OciRef {
                digest: Some(digest.to_string()),
                ..OciRef::default()
            },
        ));
    }
    let (head, last) = url
        .rsplit_once('/')
        .ok_or_else(|| Error::invalid("oci url", url, "missing repository"))?;
    match last.split_once(':') {
        Some((repo, tag)) => Ok((
            format!("{head}/{repo}"),
            OciRef {
                tag: Some(tag.to_string()),
                ..OciRef::default()
            },
        )),
        None => Ok((url.to_string(), OciRef::default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_refs() {
        assert!(parse_url("oci://ghcr.io/fluxcd/flux-manifests").is_ok());
        let err = parse_url("oci://ghcr.io/fluxcd/flux-manifests:v1").unwrap_err();
        assert!(err.to_string().contains("must not contain a tag"), "{err}");
        assert!(parse_url("https://ghcr.io/x").is_err());
        let (base, r) = split_ref("oci://localhost:5000/app:v1.0.0").unwrap();
        assert_eq!(base, "oci://localhost:5000/app");
        assert_eq!(r.tag.as_deref(), Some("v1.0.0"));
        let (base, r) = split_ref("oci://localhost:5000/app@sha256:abc").unwrap();
        assert_eq!(base, "oci://localhost:5000/app");
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        let (base, r) = split_ref("oci://localhost:5000/app").unwrap();
        assert_eq!(base, "oci://localhost:5000/app");
        assert_eq!(r, OciRef::default());
        assert_eq!(revision(Some("v1"), "sha256:ab"), "v1@sha256:ab");
        assert_eq!(revision(None, "sha256:ab"), "sha256:ab");
    }

    #[test]
    fn docker_config_json() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"localhost:5000":{"username":"u","password":"p"}}}"#;
        assert_eq!(
            docker_config_auth(json, "docker.io").unwrap(),
            Some(("user".into(), "pass".into()))
        );
        assert_eq!(
            docker_config_auth(json, "localhost:5000").unwrap(),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(docker_config_auth(json, "ghcr.io").unwrap(), None);
        assert!(docker_config_auth(b"{", "x").is_err());
    }

    #[test]
    fn layer_selection() {
        let layer = |mt: &str| OciDescriptor {
            media_type: mt.into(),
            digest: "sha256:00".into(),
            ..OciDescriptor::default()
        };
        let manifest = OciImageManifest {
            layers: vec![layer("a"), layer(FLUX_CONTENT_MEDIA_TYPE)],
            ..OciImageManifest::default()
        };
        let sel = LayerSelector {
            media_type: Some(FLUX_CONTENT_MEDIA_TYPE.into()),
            operation: LayerOperation::Copy,
        };
        assert_eq!(
            select_layer(&manifest, &sel).unwrap().media_type,
            FLUX_CONTENT_MEDIA_TYPE
        );
        assert_eq!(
            select_layer(&manifest, &LayerSelector::default())
                .unwrap()
                .media_type,
            "a"
        );
        let missing = LayerSelector {
            media_type: Some("x".into()),
            operation: LayerOperation::Extract,
        };
        assert!(select_layer(&manifest, &missing).is_err());
    }
}
