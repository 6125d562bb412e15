//! Git network operations with gix (blocking): `ls-remote` and (shallow) clone + checkout.
//! HTTP goes through reqwest (rustls/ring), SSH through the system `ssh` program with the
//! given identity and `known_hosts` (host keys are always checked).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use gix::protocol::transport::client::blocking_io::http;
use gix::remote::Direction;

use super::select::{RemoteRef, Resolved};
use super::verify::{SignedObjects, TagObject};
use super::GitAuth;
use crate::error::{Error, Result};

pub(super) fn git_err<'a, E: std::fmt::Display + std::fmt::Debug>(
    op: &'static str,
    url: &'a str,
) -> impl FnOnce(E) -> Error + 'a {
    move |e| {
        let text = format!("{e:#}");
        classify(op, url, text)
    }
}

/// Maps gix error text to the crate's error kinds (authentication vs other failures).
pub(super) fn classify(op: &'static str, url: &str, text: String) -> Error {
    let lower = text.to_ascii_lowercase();
    let auth = [
        "authentication",
        "401",
        "403",
        "permission denied",
        "host key verification failed",
        "no matching host key",
        "credentials",
    ];
    if auth.iter().any(|k| lower.contains(k)) {
        return Error::Auth {
            url: url.to_string(),
            detail: text,
        };
    }
    Error::Git {
        op,
        url: url.to_string(),
        source: text.into(),
    }
}

/// Files backing SSH settings for the duration of one operation.
pub(super) struct SshFiles {
    _dir: tempfile::TempDir,
    pub(super) command: String,
    /// ssh's own log (`-E`), read back to explain failures (host key, refused key).
    log: PathBuf,
}

/// Adds what ssh logged to an error and re-classifies it (host key and key refusals are
/// authentication failures).
pub(super) fn enrich(err: Error, ssh: Option<&SshFiles>) -> Error {
    let Some(ssh) = ssh else { return err };
    let log = std::fs::read_to_string(&ssh.log).unwrap_or_default();
    let log = log.trim();
    if log.is_empty() {
        return err;
    }
    match err {
        Error::Git { op, url, source } => classify(op, &url, format!("{source}; ssh: {log}")),
        Error::Auth { url, detail } => Error::Auth {
            url,
            detail: format!("{detail}; ssh: {log}"),
        },
        other => other,
    }
}

fn is_ssh(url: &str) -> bool {
    url.starts_with("ssh://")
}

pub(super) fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

pub(super) fn validate_url(url: &str) -> Result<()> {
    let ok = ["http://", "https://", "ssh://", "git://", "file://"]
        .iter()
        .any(|s| url.starts_with(s));
    if !ok {
        return Err(Error::invalid(
            "git url",
            url,
            "scheme must be http, https, ssh, git or file (scp-like syntax is not accepted)",
        ));
    }
    Ok(())
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

pub(super) fn ssh_files(url: &str, auth: &GitAuth) -> Result<Option<SshFiles>> {
    if !is_ssh(url) {
        return Ok(None);
    }
    let known_hosts = auth.ssh_known_hosts.as_deref().ok_or_else(|| Error::Auth {
        url: url.to_string(),
        detail: "known_hosts is required for ssh".into(),
    })?;
    let dir = tempfile::Builder::new()
        .prefix("flux-ssh-")
        .tempdir()
        .map_err(Error::io("creating temp dir", std::env::temp_dir()))?;
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, known_hosts).map_err(Error::io("writing", &kh))?;
    let log = dir.path().join("ssh.log");
    let mut command = format!(
        "ssh -F /dev/null -E {} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes",
        quote(&log),
        quote(&kh)
    );
    if let Some(identity) = &auth.ssh_identity {
        let key = dir.path().join("identity");
        let mut bytes = identity.clone();
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        std::fs::write(&key, bytes).map_err(Error::io("writing", &key))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(Error::io("chmod", &key))?;
        command.push_str(" -o IdentitiesOnly=yes -i ");
        command.push_str(&quote(&key));
    }
    Ok(Some(SshFiles {
        _dir: dir,
        command,
        log,
    }))
}

fn config_overrides(ssh: Option<&SshFiles>) -> Vec<String> {
    let mut overrides = vec![
        // Never prompt, never read credentials from helpers of the machine.
        "credential.helper=".to_string(),
        "core.askPass=".to_string(),
        "protocol.file.allow=always".to_string(),
    ];
    if let Some(ssh) = ssh {
        overrides.push(format!("core.sshCommand={}", ssh.command));
        overrides.push("ssh.variant=ssh".to_string());
    }
    overrides
}

pub(super) fn http_options(auth: &GitAuth, url: &str) -> Result<http::Options> {
    let mut options = http::Options::default();
    if let Some(token) = &auth.bearer_token {
        options
            .extra_headers
            .push(format!("Authorization: Bearer {token}"));
    }
    if auth.ca_pem.is_some() || auth.client_cert.is_some() || auth.proxy.is_some() {
        // Fail early on bad PEM or proxy settings, with the field named.
        let _checked = crate::tls::configure_blocking(
            reqwest::blocking::Client::builder(),
            auth.ca_pem.as_deref(),
            auth.client_cert.as_ref(),
            auth.proxy.as_ref(),
        )
        .map_err(|e| match e {
            Error::Invalid { what, reason, .. } => Error::Invalid {
                what,
                value: url.to_string(),
                reason,
            },
            other => other,
        })?;
        let tls = auth.clone();
        let backend = http::reqwest::Options {
            configure_client: Some(Box::new(
                move |builder: reqwest::blocking::ClientBuilder| {
                    crate::tls::configure_blocking(
                        builder,
                        tls.ca_pem.as_deref(),
                        tls.client_cert.as_ref(),
                        tls.proxy.as_ref(),
                    )
                    .map_err(|e| gix::Error::from_error(std::io::Error::other(e.to_string())))
                },
            )),
            configure_request: None,
        };
        options.backend = Some(Arc::new(Mutex::new(backend)));
    }
    Ok(options)
}

type Connection<'a, 'b, 'c> = gix::remote::Connection<
    'a,
    'b,
    'c,
    Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>,
>;

fn configure_connection(
    conn: &mut Connection<'_, '_, '_>,
    url: &str,
    auth: &GitAuth,
) -> Result<()> {
    if is_http(url) {
        conn.set_transport_options(Box::new(http_options(auth, url)?));
    }
    let basic = auth.basic.clone();
    conn.set_credentials(move |action| match action {
        gix::credentials::helper::Action::Get(ctx) => match &basic {
            Some((username, password)) => Ok(Some(gix::credentials::protocol::Outcome {
                identity: gix::sec::identity::Account {
                    username: username.clone(),
                    password: password.clone(),
                    oauth_refresh_token: None,
                },
                next: ctx.into(),
            })),
            None => Ok(None),
        },
        _ => Ok(None),
    });
    Ok(())
}

/// Lists the remote's references (`git ls-remote`), annotated tags peeled to their commit.
pub fn ls_remote(url: &str, auth: &GitAuth) -> Result<Vec<RemoteRef>> {
    crate::tls::ensure_provider();
    validate_url(url)?;
    let ssh = ssh_files(url, auth)?;
    ls_remote_with(url, auth, ssh.as_ref()).map_err(|e| enrich(e, ssh.as_ref()))
}

fn ls_remote_with(url: &str, auth: &GitAuth, ssh: Option<&SshFiles>) -> Result<Vec<RemoteRef>> {
    let scratch = tempfile::Builder::new()
        .prefix("flux-ls-remote-")
        .tempdir()
        .map_err(Error::io("creating temp dir", std::env::temp_dir()))?;
    gix::init_bare(scratch.path()).map_err(git_err("init", url))?;
    let repo = gix::open_opts(
        scratch.path(),
        gix::open::Options::isolated().config_overrides(config_overrides(ssh)),
    )
    .map_err(git_err("open", url))?;
    let remote = repo
        .remote_at(url)
        .map_err(git_err("configure remote", url))?
        .with_refspecs(["+refs/*:refs/remotes/all/*"], Direction::Fetch)
        .map_err(git_err("configure remote", url))?;
    let mut conn = remote
        .connect(Direction::Fetch)
        .map_err(git_err("connect", url))?;
    configure_connection(&mut conn, url, auth)?;
    let options = gix::remote::ref_map::Options {
        prefix_from_spec_as_filter_on_remote: false,
        ..Default::default()
    };
    let (map, _) = conn
        .ref_map(gix::progress::Discard, options)
        .map_err(git_err("ls-remote", url))?;
    let mut refs = Vec::new();
    for r in &map.remote_refs {
        let (name, target, peeled) = r.unpack();
        let Some(commit) = peeled.or(target) else {
            continue;
        };
        refs.push(RemoteRef {
            name: name.to_string(),
            commit: commit.to_string(),
        });
    }
    Ok(refs)
}

/// Clones `resolved` from `url` into `dir` (worktree checked out) and returns the commit (and
/// the tag it was reached through) with their raw object bytes, for `spec.verify`.
pub fn checkout(
    url: &str,
    auth: &GitAuth,
    resolved: &Resolved,
    dir: &Path,
    shallow: bool,
    recurse_submodules: bool,
) -> Result<SignedObjects> {
    crate::tls::ensure_provider();
    validate_url(url)?;
    let ssh = ssh_files(url, auth)?;
    let depth = if recurse_submodules {
        MAX_SUBMODULE_DEPTH
    } else {
        0
    };
    checkout_with(url, auth, resolved, dir, shallow, ssh.as_ref(), depth)
        .map_err(|e| enrich(e, ssh.as_ref()))
}

/// Nesting limit for `recurseSubmodules`.
const MAX_SUBMODULE_DEPTH: usize = 8;

/// Resolves a submodule URL from `.gitmodules` against the superproject URL (`./x`, `../x`).
pub fn resolve_submodule_url(parent: &str, url: &str) -> String {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return url.to_string();
    }
    let mut base = parent.trim_end_matches('/').to_string();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            if let Some(i) = base.rfind('/') {
                base.truncate(i);
            }
        } else {
            break;
        }
    }
    format!("{base}/{rest}")
}

/// Checks out the submodules recorded in the superproject's index at their recorded commits
/// (shallow, same credentials), recursing up to `depth` levels.
fn checkout_submodules(
    repo: &gix::Repository,
    url: &str,
    auth: &GitAuth,
    dir: &Path,
    depth: usize,
) -> Result<()> {
    let Some(modules) = repo
        .submodules()
        .map_err(git_err("read .gitmodules", url))?
    else {
        return Ok(());
    };
    let mut wanted = Vec::new();
    for module in modules {
        let path = module
            .path()
            .map_err(git_err("read .gitmodules", url))?
            .to_string();
        let sub_url = module
            .url()
            .map_err(git_err("read .gitmodules", url))?
            .to_bstring()
            .to_string();
        let Some(commit) = module
            .index_id()
            .map_err(git_err("read submodule commit", url))?
        else {
            continue;
        };
        wanted.push((
            path,
            resolve_submodule_url(url, &sub_url),
            commit.to_string(),
        ));
    }
    for (path, sub_url, commit) in wanted {
        let target = dir.join(crate::extract::safe_relative(&path)?);
        if target.is_dir() {
            std::fs::remove_dir_all(&target).map_err(Error::io("removing", &target))?;
        }
        let resolved = Resolved {
            reference: None,
            commit: Some(commit),
            exact_commit: true,
            keep_full_name: false,
        };
        validate_url(&sub_url)?;
        let ssh = ssh_files(&sub_url, auth)?;
        checkout_with(
            &sub_url,
            auth,
            &resolved,
            &target,
            true,
            ssh.as_ref(),
            depth - 1,
        )
        .map_err(|e| enrich(e, ssh.as_ref()))?;
    }
    Ok(())
}

fn checkout_with(
    url: &str,
    auth: &GitAuth,
    resolved: &Resolved,
    dir: &Path,
    shallow: bool,
    ssh: Option<&SshFiles>,
    submodule_depth: usize,
) -> Result<SignedObjects> {
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let mut prepare = gix::prepare_clone(url, dir)
        .map_err(git_err("clone", url))?
        .with_in_memory_config_overrides(config_overrides(ssh));
    if shallow {
        prepare = prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(
            std::num::NonZeroU32::MIN,
        ));
    }
    if resolved.exact_commit {
        let commit = resolved.commit.clone().ok_or_else(|| {
            Error::invalid("ref.commit", "", "a full 40-hex commit id is required")
        })?;
        prepare = prepare
            .with_revision(Some(commit))
            .map_err(git_err("clone", url))?;
    } else if let Some(reference) = &resolved.reference {
        prepare = prepare
            .with_ref_name(Some(reference.as_str()))
            .map_err(git_err("clone", url))?;
    }
    let auth_for_conn = auth.clone();
    let url_owned = url.to_string();
    let conn_error: Arc<Mutex<Option<Error>>> = Arc::default();
    let conn_error_slot = Arc::clone(&conn_error);
    prepare = prepare.configure_connection(move |conn| {
        if let Err(e) = configure_connection(conn, &url_owned, &auth_for_conn) {
            let text = e.to_string();
            if let Ok(mut slot) = conn_error_slot.lock() {
                *slot = Some(e);
            }
            return Err(gix::Error::from_error(std::io::Error::other(text)));
        }
        Ok(())
    });
    let interrupt = AtomicBool::new(false);
    let fetched = prepare.fetch_then_checkout(gix::progress::Discard, &interrupt);
    let (mut checkout, _) = match fetched {
        Ok(x) => x,
        Err(e) => {
            if let Some(err) = conn_error.lock().ok().and_then(|mut s| s.take()) {
                return Err(err);
            }
            return Err(git_err("fetch", url)(e));
        }
    };
    let (repo, _) = checkout
        .main_worktree(gix::progress::Discard, &interrupt)
        .map_err(git_err("checkout", url))?;
    let head = repo.head_id().map_err(git_err("resolve HEAD", url))?;
    let objects = signed_objects(&repo, head.detach(), resolved, url)?;
    if submodule_depth > 0 {
        checkout_submodules(&repo, url, auth, dir, submodule_depth)?;
    }
    Ok(objects)
}

/// Reads the raw commit and, for tag references, the tag object from the fresh clone.
fn signed_objects(
    repo: &gix::Repository,
    head: gix::ObjectId,
    resolved: &Resolved,
    url: &str,
) -> Result<SignedObjects> {
    let commit_data = repo
        .find_object(head)
        .map_err(git_err("read commit", url))?
        .data
        .clone();
    let tag_name = resolved
        .reference
        .as_deref()
        .filter(|_| !resolved.exact_commit)
        .and_then(|r| r.strip_prefix("refs/tags/"));
    let tag = match tag_name {
        None => None,
        Some(name) => {
            let full = format!("refs/tags/{name}");
            let reference = repo
                .try_find_reference(full.as_str())
                .map_err(git_err("read tag", url))?
                .ok_or_else(|| Error::Git {
                    op: "read tag",
                    url: url.to_string(),
                    source: format!("tag reference {full} missing after clone").into(),
                })?;
            let id = reference
                .target()
                .try_id()
                .map(ToOwned::to_owned)
                .ok_or_else(|| Error::Git {
                    op: "read tag",
                    url: url.to_string(),
                    source: format!("tag reference {full} is symbolic").into(),
                })?;
            let object = repo.find_object(id).map_err(git_err("read tag", url))?;
            let data = (object.kind == gix::object::Kind::Tag).then(|| object.data.clone());
            Some(TagObject {
                name: name.to_string(),
                id: id.to_string(),
                data,
            })
        }
    };
    Ok(SignedObjects {
        commit: head.to_string(),
        commit_data,
        tag,
    })
}

/// Where a clone of `url` would be stored under `base` (one directory per URL).
pub fn cache_dir(base: &Path, url: &str) -> PathBuf {
    base.join(crate::artifact::Digest::sha256(url.as_bytes()).hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submodule_urls_resolve_like_git() {
        assert_eq!(
            resolve_submodule_url("https://h/org/app.git", "../lib.git"),
            "https://h/org/lib.git"
        );
        assert_eq!(
            resolve_submodule_url("https://h/org/app", "./sub"),
            "https://h/org/app/sub"
        );
        assert_eq!(
            resolve_submodule_url("https://h/org/app", "ssh://x/y"),
            "ssh://x/y"
        );
    }
}
