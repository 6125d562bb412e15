//! GitRepository: reference selection (pure, [`select`]), the gix client ([`client`]) and the
//! reconcile step that turns a checkout into an artifact ([`fetch`]).

pub mod client;
pub mod push;
pub mod select;
pub mod verify;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::artifact::{Artifact, FetchOutcome};
use crate::error::{Error, Result};
use crate::ignore::Rules;
use crate::storage::Storage;

pub use select::{GitRef, RemoteRef, Resolved};
pub use verify::{GitVerify, Keyring, VerifyMode};

/// Credentials and transport settings for a Git remote (from the `secretRef` keys of §2.4).
#[derive(Debug, Clone, Default)]
pub struct GitAuth {
    /// HTTPS basic auth (`username`, `password`).
    pub basic: Option<(String, String)>,
    /// HTTPS bearer token (`bearerToken`).
    pub bearer_token: Option<String>,
    /// PEM CA bundle (`ca.crt`).
    pub ca_pem: Option<Vec<u8>>,
    /// SSH private key (`identity`).
    pub ssh_identity: Option<Vec<u8>>,
    /// SSH `known_hosts` content (required for ssh).
    pub ssh_known_hosts: Option<String>,
    /// HTTPS client certificate (`tls.crt`/`tls.key` of the secret).
    pub client_cert: Option<crate::tls::ClientCert>,
    /// HTTP(S) proxy (`proxySecretRef`).
    pub proxy: Option<crate::tls::ProxyConfig>,
}

impl GitAuth {
    /// Builds auth from Secret data keys, rejecting the combinations Flux rejects.
    pub fn from_secret_data(data: &std::collections::BTreeMap<String, Vec<u8>>) -> Result<GitAuth> {
        let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        let basic = match (text("username"), text("password")) {
            (Some(u), Some(p)) => Some((u, p)),
            (Some(u), None) => Some((u, String::new())),
            _ => None,
        };
        let bearer_token = text("bearerToken");
        if basic.is_some() && bearer_token.is_some() {
            return Err(Error::invalid(
                "git secret",
                "bearerToken",
                "bearerToken is mutually exclusive with username/password",
            ));
        }
        let client_cert = match (data.get("tls.crt"), data.get("tls.key")) {
            (Some(cert), Some(key)) => Some(crate::tls::ClientCert {
                cert_pem: cert.clone(),
                key_pem: key.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(Error::invalid(
                    "git secret",
                    "tls.crt/tls.key",
                    "'tls.crt' and 'tls.key' must be set together",
                ))
            }
        };
        Ok(GitAuth {
            basic,
            bearer_token,
            ca_pem: data.get("ca.crt").or_else(|| data.get("caFile")).cloned(),
            ssh_identity: data.get("identity").cloned(),
            ssh_known_hosts: text("known_hosts"),
            client_cert,
            proxy: None,
        })
    }
}

/// An `include` entry: another artifact's tarball copied into a sub-path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Include {
    /// The included artifact (revision is part of the content identity).
    pub artifact: Artifact,
    /// Local path of the included tarball.
    pub tarball: PathBuf,
    /// Path inside the included artifact (default: root).
    pub from_path: String,
    /// Destination inside this checkout.
    pub to_path: String,
}

/// Everything that determines a GitRepository's artifact.
#[derive(Debug, Clone, Default)]
pub struct GitSpec {
    pub url: String,
    pub reference: GitRef,
    pub auth: GitAuth,
    pub ignore: Option<String>,
    pub recurse_submodules: bool,
    pub include: Vec<Include>,
    /// Shallow clone (depth 1) where the reference allows it. Flux always does.
    pub shallow: bool,
    /// Bound on each Git network operation (`spec.timeout`, Flux default 60s).
    pub timeout: Option<std::time::Duration>,
    /// `spec.sparseCheckout`: only these directories end up in the artifact.
    pub sparse_checkout: Vec<String>,
    /// `spec.verify`: signatures checked before any artifact is written.
    pub verify: Option<GitVerify>,
}

/// What [`fetch_detailed`] did besides producing the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitFetched {
    pub outcome: FetchOutcome,
    /// `SourceVerified` message when `spec.verify` was checked for a new artifact.
    pub verified: Option<String>,
}

/// Runs `op` on its own thread and gives up after `timeout`. gix's blocking transports have no
/// deadline of their own; on timeout the worker is left to finish or fail on its own (its
/// output goes to a temp dir that is discarded), and the caller gets an error right away.
fn with_timeout<T: Send + 'static>(
    timeout: Option<std::time::Duration>,
    op: &'static str,
    url: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let Some(timeout) = timeout else {
        return work();
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("git-{op}"))
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(Error::io("spawning git worker for", url.to_string()))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => Err(Error::Git {
            op,
            url: url.to_string(),
            source: format!("timed out after {timeout:?}").into(),
        }),
    }
}

/// Reconciles one GitRepository `namespace/name` into `storage`. `current` is the stored
/// artifact, `content_unchanged` tells whether ignore/include/submodule settings are the same as
/// when it was built (the status `observed*` fields).
pub fn fetch(
    spec: &GitSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
    current: Option<&Artifact>,
    content_unchanged: bool,
) -> Result<FetchOutcome> {
    fetch_detailed(spec, storage, namespace, name, current, content_unchanged).map(|f| f.outcome)
}

/// [`fetch`], also reporting the verification result. With `spec.verify`, a signature that does
/// not verify fails the fetch before any artifact is written (the previous one is kept).
pub fn fetch_detailed(
    spec: &GitSpec,
    storage: &Storage,
    namespace: &str,
    name: &str,
    current: Option<&Artifact>,
    content_unchanged: bool,
) -> Result<GitFetched> {
    let (url, auth) = (spec.url.clone(), spec.auth.clone());
    let remote_refs = with_timeout(spec.timeout, "ls-remote", &spec.url, move || {
        client::ls_remote(&url, &auth)
    })?;
    let resolved = select::resolve(&spec.reference, &remote_refs)?;
    if let (Some(current), Some(revision)) = (current, resolved.revision()) {
        if content_unchanged && current.has_revision(&revision) && storage.exists(current) {
            return Ok(GitFetched {
                outcome: FetchOutcome::Unchanged(current.clone()),
                verified: None,
            });
        }
    }
    let work = tempfile::Builder::new()
        .prefix("flux-git-")
        .tempdir()
        .map_err(Error::io("creating temp dir", std::env::temp_dir()))?;
    let checkout = work.path().join("checkout");
    let objects = {
        let (url, auth, resolved, checkout, shallow, recurse) = (
            spec.url.clone(),
            spec.auth.clone(),
            resolved.clone(),
            checkout.clone(),
            spec.shallow,
            spec.recurse_submodules,
        );
        with_timeout(spec.timeout, "clone", &spec.url, move || {
            client::checkout(&url, &auth, &resolved, &checkout, shallow, recurse)
        })?
    };
    let verified = match &spec.verify {
        Some(verify) => Some(verify::verify(verify, &objects)?),
        None => None,
    };
    let commit = objects.commit;
    let revision = resolved.revision_for(&commit);
    if !spec.sparse_checkout.is_empty() {
        sparse_prune(&checkout, &spec.sparse_checkout)?;
    }
    apply_includes(&checkout, &spec.include)?;
    let rules = Rules::load(&checkout, spec.ignore.as_deref())?;
    let mut artifact = storage.new_artifact(
        "GitRepository",
        namespace,
        name,
        &format!("{commit}.tar.gz"),
        &revision,
    );
    let _lock = storage.lock(&artifact)?;
    storage.archive(&mut artifact, &checkout, Some(&rules))?;
    Ok(GitFetched {
        outcome: FetchOutcome::New(artifact),
        verified,
    })
}

/// Keeps only the files under the `spec.sparseCheckout` directories, as go-git's sparse
/// checkout does for Flux (an index entry stays when its path starts with one of the given
/// strings; other files are not checked out and their directories not created), then checks
/// that each listed directory exists, with Flux's error text.
pub fn sparse_prune(checkout: &Path, dirs: &[String]) -> Result<()> {
    for dir in dirs {
        crate::extract::safe_relative(dir)?;
    }
    prune_dir(checkout, "", dirs)?;
    for dir in dirs {
        let path = checkout.join(crate::extract::safe_relative(dir)?);
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(Error::NotFound(format!(
                "sparse checkout dir '{dir}' does not exist in repository"
            )));
        }
    }
    Ok(())
}

/// Removes files of `dir` (relative path `rel`) not matched by `keep`; returns whether
/// anything is left in it.
fn prune_dir(dir: &Path, rel: &str, keep: &[String]) -> Result<bool> {
    let mut left = false;
    for entry in std::fs::read_dir(dir).map_err(Error::io("listing", dir))? {
        let entry = entry.map_err(Error::io("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if rel.is_empty() && name == ".git" {
            left = true;
            continue;
        }
        let path = entry.path();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type().map_err(Error::io("stat", &path))?;
        if kind.is_dir() {
            if prune_dir(&path, &child, keep)? {
                left = true;
            } else {
                std::fs::remove_dir(&path).map_err(Error::io("removing", &path))?;
            }
        } else if keep.iter().any(|k| child.starts_with(k.as_str())) {
            left = true;
        } else {
            std::fs::remove_file(&path).map_err(Error::io("removing", &path))?;
        }
    }
    Ok(left)
}

/// Extracts each include's tarball and moves `from_path` to `to_path` inside `checkout`.
pub fn apply_includes(checkout: &Path, includes: &[Include]) -> Result<()> {
    for include in includes {
        let staging =
            tempfile::tempdir().map_err(Error::io("creating temp dir", std::env::temp_dir()))?;
        let file = std::fs::File::open(&include.tarball)
            .map_err(Error::io("opening", &include.tarball))?;
        crate::extract::unpack_gz(
            std::io::BufReader::new(file),
            staging.path(),
            &crate::extract::Limits::default(),
            &include.artifact.path,
        )?;
        let from = staging
            .path()
            .join(crate::extract::safe_relative(&include.from_path)?);
        let to = checkout.join(crate::extract::safe_relative(&include.to_path)?);
        if to == checkout {
            return Err(Error::IllegalPath {
                path: include.to_path.clone(),
                reason: "include toPath must not be the repository root",
            });
        }
        if !from.exists() {
            return Err(Error::NotFound(format!(
                "include fromPath {:?} not found in artifact {}",
                include.from_path, include.artifact.path
            )));
        }
        if to.exists() {
            std::fs::remove_dir_all(&to).map_err(Error::io("removing", &to))?;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
        }
        copy_tree(&from, &to)?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from).map_err(Error::io("stat", from))?;
    if meta.is_dir() {
        std::fs::create_dir_all(to).map_err(Error::io("creating", to))?;
        for entry in std::fs::read_dir(from).map_err(Error::io("listing", from))? {
            let entry = entry.map_err(Error::io("listing", from))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if meta.is_file() {
        std::fs::copy(from, to).map_err(Error::io("copying", from))?;
    }
    Ok(())
}
