//! `flux-rs bootstrap git`: commit `flux-system/` (gotk-components.yaml, gotk-sync.yaml,
//! kustomization.yaml) to a branch of any Git remote (ssh://, https://, http://, git://,
//! file:// or a local path) and push it with our gix-based receive-pack client
//! (`flux_source::git::push`), then create the `flux-system` credentials Secret, install the
//! controllers, apply the sync objects and wait for them.
//!
//! The branch is cloned shallow into a temporary repository, the commit is built on top of
//! its tip with gix, and the push is a compare-and-swap on that tip (a concurrent push makes
//! it fail as "stale info" instead of overwriting). Unchanged manifests make no commit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use flux_source::git::push::{push, Lease, PushRequest};
use flux_source::git::{client, GitAuth, Resolved};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::cluster::{block_on, format_duration, parse_duration, require_kind, Cluster, Log};
use super::install::{apply_and_wait, objects, InstallArgs};

/// Arguments of `flux-rs bootstrap`.
#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    /// Where to bootstrap from.
    #[command(subcommand)]
    pub what: BootstrapWhat,
}

/// Bootstrap providers.
#[derive(Debug, clap::Subcommand)]
pub enum BootstrapWhat {
    /// A Git repository: ssh://, https://, http://, git://, file:// or a local path.
    Git(Box<GitArgs>),
}

/// `flux-rs bootstrap git`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Bootstrap over SSH with a deploy key (the host key is scanned and stored in known_hosts)
  flux-rs bootstrap git --url ssh://git@example.com/org/fleet.git --branch main \\
    --path clusters/staging --private-key-file ~/.ssh/flux

  # Bootstrap over HTTPS with a username and a token or password
  flux-rs bootstrap git --url https://example.com/org/fleet.git --username flux \\
    --password \"$TOKEN\" --path clusters/staging

  # A local bare repository (or file://)
  flux-rs bootstrap git --url /srv/git/fleet.git --path clusters/dev

Running it again is safe: unchanged manifests make no new commit, and the cluster objects are
applied server-side. The credentials end up in the Secret named by --secret-name, which the
GitRepository flux-system references.")]
pub struct GitArgs {
    /// Install flags (components, registry, network policies, connection flags).
    #[command(flatten)]
    pub install: InstallArgs,
    /// The repository: ssh://, https://, http:// (needs --allow-insecure-http), git://,
    /// file:// or a local path.
    #[arg(long)]
    pub url: String,
    /// The branch to commit to (created when missing).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The cluster's directory in the repository.
    #[arg(long)]
    pub path: String,
    /// How often the GitRepository is fetched.
    #[arg(long, default_value = "1m0s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Name of the Secret holding the Git credentials (created when credentials are given).
    #[arg(long, default_value = "flux-system")]
    pub secret_name: String,
    /// HTTP(S) basic-auth username.
    #[arg(short = 'u', long, default_value = "git")]
    pub username: String,
    /// HTTP(S) password or token (with --token-auth or --with-bearer-token: the token).
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Use --password as a token over HTTPS (basic auth with --username).
    #[arg(long)]
    pub token_auth: bool,
    /// Send --password as a bearer token (`Authorization: Bearer`), stored as `bearerToken`.
    #[arg(long)]
    pub with_bearer_token: bool,
    /// SSH private key (unencrypted) for ssh:// URLs; `<file>.pub` is stored as identity.pub.
    #[arg(long)]
    pub private_key_file: Option<PathBuf>,
    /// known_hosts for ssh:// URLs (default: the host's keys are scanned with ssh-keyscan).
    #[arg(long)]
    pub known_hosts_file: Option<PathBuf>,
    /// CA certificate (PEM) for https:// remotes, also stored as `ca.crt`.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Allow http:// URLs (credentials sent in clear text).
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Components in addition to --components (only the four flux-rs controllers exist).
    #[arg(long, value_delimiter = ',')]
    pub components_extra: Vec<String>,
    /// Do not ask for confirmation (flux-rs never prompts; accepted for compatibility).
    #[arg(short = 's', long)]
    pub silent: bool,
    /// Commit author name.
    #[arg(long, default_value = "Flux")]
    pub author_name: String,
    /// Commit author email.
    #[arg(long, default_value = "flux@users.noreply.github.com")]
    pub author_email: String,
    /// Text appended to the commit message, e.g. '[ci skip]'.
    #[arg(long)]
    pub commit_message_appendix: Option<String>,
    /// Wait for the sync objects to become Ready.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
}

/// The cluster path, normalised (`./clusters/x/` → `clusters/x`), rejecting escapes.
pub fn clean_path(path: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if path.starts_with('/') || parts.is_empty() || parts.contains(&"..") {
        bail!("--path {path:?}: expected a directory relative to the repository root");
    }
    Ok(parts.join("/"))
}

/// The sync objects: a GitRepository for the repository (with `secretRef` when there are
/// credentials) and a Kustomization for the path.
pub fn sync_objects(args: &GitArgs, path: &str, secret: Option<&str>) -> Vec<Value> {
    let ns = &args.install.cluster.namespace;
    let mut git = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": ns},
        "spec": {
            "interval": format_duration(args.interval),
            "ref": {"branch": args.branch},
            "url": remote_url(&args.url).unwrap_or_else(|_| args.url.clone()),
        },
    });
    if let Some(secret) = secret {
        git["spec"]["secretRef"] = json!({"name": secret});
    }
    let ks = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "flux-system", "namespace": ns},
        "spec": {
            "interval": "10m0s",
            "path": format!("./{path}"),
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        },
    });
    vec![git, ks]
}

/// The three files of `<path>/flux-system/`, as (relative path, content).
pub fn files(
    args: &GitArgs,
    path: &str,
    secret: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut components = Vec::new();
    let mut install = install_objects(args)?;
    let mut text =
        String::from("# This manifest was generated by flux-rs bootstrap. DO NOT EDIT.\n");
    for object in install.drain(..) {
        text.push_str("---\n");
        text.push_str(&flux_kustomize::yaml::to_yaml(&object));
    }
    components.push((format!("{path}/flux-system/gotk-components.yaml"), text));
    let mut sync =
        String::from("# This manifest was generated by flux-rs bootstrap. DO NOT EDIT.\n");
    for object in sync_objects(args, path, secret) {
        sync.push_str("---\n");
        sync.push_str(&flux_kustomize::yaml::to_yaml(&object));
    }
    components.push((format!("{path}/flux-system/gotk-sync.yaml"), sync));
    components.push((
        format!("{path}/flux-system/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n".into(),
    ));
    Ok(components)
}

/// The install objects: `--components` plus `--components-extra` (validated by the renderer).
fn install_objects(args: &GitArgs) -> anyhow::Result<Vec<Value>> {
    if args.components_extra.is_empty() {
        return objects(&args.install);
    }
    let mut install = InstallArgs {
        export: args.install.export,
        cluster: args.install.cluster.clone(),
        components: args.install.components.clone(),
        registry: args.install.registry.clone(),
        network_policy: args.install.network_policy,
        watch_all_namespaces: args.install.watch_all_namespaces,
        cluster_domain: args.install.cluster_domain.clone(),
        log_level: args.install.log_level.clone(),
    };
    for extra in &args.components_extra {
        if !install.components.contains(extra) {
            install.components.push(extra.clone());
        }
    }
    objects(&install).context("--components-extra")
}

/// The remote URL from `--url`: network and file:// URLs as given, local paths as absolute
/// file:// URLs; scp-like `user@host:path` is refused (Flux needs `ssh://`).
pub fn remote_url(url: &str) -> anyhow::Result<String> {
    let schemes = ["ssh://", "https://", "http://", "git://", "file://"];
    if schemes.iter().any(|s| url.starts_with(s)) {
        return Ok(url.to_string());
    }
    if url.contains("://") {
        bail!("--url {url:?}: unsupported scheme (use ssh, https, http, git or file)");
    }
    if url.contains('@') && url.contains(':') {
        bail!("--url {url:?}: scp-like addresses are not supported, use ssh://user@host/path");
    }
    let path = Path::new(url);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(path)
    };
    Ok(format!("file://{}", absolute.display()))
}

/// Data keys and values of the credentials Secret.
pub type SecretData = Vec<(String, Vec<u8>)>;

/// Credentials for the push and the data of the credentials Secret (None: no Secret), from
/// the flags, the way `flux bootstrap git` stores them: SSH `identity`, `identity.pub`,
/// `known_hosts`; HTTPS `username`/`password` or `bearerToken`; `ca.crt`.
pub fn credentials(args: &GitArgs, url: &str) -> anyhow::Result<(GitAuth, Option<SecretData>)> {
    let mut auth = GitAuth::default();
    let mut data: SecretData = Vec::new();
    if url.starts_with("http://") && !args.allow_insecure_http {
        bail!(
            "--url {url:?}: scheme http is insecure, pass --allow-insecure-http=true to allow it"
        );
    }
    if let Some(ca) = &args.ca_file {
        let pem =
            std::fs::read(ca).with_context(|| format!("reading --ca-file {}", ca.display()))?;
        auth.ca_pem = Some(pem.clone());
        data.push(("ca.crt".into(), pem));
    }
    if url.starts_with("ssh://") {
        if args.token_auth || args.with_bearer_token {
            bail!("--token-auth and --with-bearer-token need an https:// URL, not {url:?}");
        }
        if args.password.is_some() {
            bail!("--password with an ssh:// URL would be a key passphrase: passphrase-protected keys are not supported, use an unencrypted deploy key");
        }
        let key_file = args.private_key_file.as_ref().ok_or_else(|| {
            anyhow!("--private-key-file is required for ssh:// URLs (flux-rs does not generate deploy keys)")
        })?;
        let identity = std::fs::read(key_file)
            .with_context(|| format!("reading --private-key-file {}", key_file.display()))?;
        let known_hosts = match &args.known_hosts_file {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("reading --known-hosts-file {}", file.display()))?,
            None => scan_host_keys(url)?,
        };
        data.push(("identity".into(), identity.clone()));
        let public = PathBuf::from(format!("{}.pub", key_file.display()));
        if let Ok(public) = std::fs::read(&public) {
            data.push(("identity.pub".into(), public));
        }
        data.push(("known_hosts".into(), known_hosts.clone().into_bytes()));
        auth.ssh_identity = Some(identity);
        auth.ssh_known_hosts = Some(known_hosts);
    } else if url.starts_with("http://") || url.starts_with("https://") {
        match (&args.password, args.with_bearer_token) {
            (Some(token), true) => {
                auth.bearer_token = Some(token.clone());
                data.push(("bearerToken".into(), token.clone().into_bytes()));
            }
            (Some(password), false) => {
                auth.basic = Some((args.username.clone(), password.clone()));
                data.push(("username".into(), args.username.clone().into_bytes()));
                data.push(("password".into(), password.clone().into_bytes()));
            }
            (None, _) if args.token_auth || args.with_bearer_token => {
                bail!("--token-auth and --with-bearer-token need the token in --password");
            }
            (None, _) => {}
        }
    } else if args.password.is_some() || args.private_key_file.is_some() {
        bail!("--url {url:?}: git:// and file:// remotes take no credentials");
    }
    Ok((auth, (!data.is_empty()).then_some(data)))
}

/// The host keys of an ssh:// URL's server in known_hosts form, scanned with `ssh-keyscan`
/// (trust on first use, as `flux bootstrap` does; the same OpenSSH suite the ssh transport
/// runs).
fn scan_host_keys(url: &str) -> anyhow::Result<String> {
    let parsed =
        gix::url::parse(gix::bstr::BStr::new(url)).with_context(|| format!("--url {url:?}"))?;
    let host = parsed
        .host()
        .ok_or_else(|| anyhow!("--url {url:?}: no host"))?
        .to_string();
    let port = parsed.port.unwrap_or(22);
    let out = std::process::Command::new("ssh-keyscan")
        .args(["-p", &port.to_string(), "-T", "10", &host])
        .output()
        .context(
            "running ssh-keyscan to read the server's host keys (or pass --known-hosts-file)",
        )?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.trim().is_empty() {
        bail!(
            "ssh-keyscan found no host key for {host}:{port}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

/// Builds a commit with the files on top of `parent` (or as a root commit) in `repository`
/// without moving any reference. Returns None when the files are already there.
pub fn commit_files(
    repository: &Path,
    parent: Option<gix::ObjectId>,
    files: &[(String, String)],
    author: (&str, &str),
    message: &str,
) -> anyhow::Result<Option<gix::ObjectId>> {
    let repo = gix::open(repository)
        .with_context(|| format!("opening Git repository {}", repository.display()))?;
    let base_tree = match parent {
        Some(id) => repo.find_commit(id)?.tree_id()?.detach(),
        None => gix::ObjectId::empty_tree(repo.object_hash()),
    };
    // Unchanged files make no commit.
    if parent.is_some() {
        let tree = repo.find_tree(base_tree)?;
        let mut same = true;
        for (path, content) in files {
            let existing = tree
                .lookup_entry_by_path(path)?
                .map(|e| e.object().map(|o| o.data.clone()))
                .transpose()?;
            if existing.as_deref() != Some(content.as_bytes()) {
                same = false;
                break;
            }
        }
        if same {
            return Ok(None);
        }
    }
    let mut editor = repo.edit_tree(base_tree)?;
    for (path, content) in files {
        let blob = repo.write_blob(content.as_bytes())?;
        editor.upsert(path.as_str(), gix::object::tree::EntryKind::Blob, blob)?;
    }
    let tree = editor.write()?;
    let signature = gix::actor::Signature {
        name: author.0.into(),
        email: author.1.into(),
        time: gix::date::Time::now_utc(),
    };
    let mut time = gix::date::parse::TimeBuf::default();
    let signature = signature.to_ref(&mut time);
    let commit = repo
        .new_commit_as(signature, signature, message, tree, parent)
        .map_err(|e| anyhow!("creating the commit: {e}"))?;
    Ok(Some(commit.id))
}

/// What [`sync_repository`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// A new commit was pushed.
    Pushed(String),
    /// The branch already had these files.
    UpToDate(String),
}

/// Clones `branch` of `url` (shallow; an empty repository when the branch is missing),
/// commits the files on top and pushes the commit with a lease on the cloned tip.
pub fn sync_repository(
    url: &str,
    auth: &GitAuth,
    branch: &str,
    files: &[(String, String)],
    author: (&str, &str),
    message: &str,
) -> anyhow::Result<Synced> {
    let reference = format!("refs/heads/{branch}");
    let refs = client::ls_remote(url, auth).with_context(|| format!("listing {url}"))?;
    let tip = refs
        .iter()
        .find(|r| r.name == reference)
        .map(|r| r.commit.clone());
    let work = tempfile::Builder::new()
        .prefix("flux-bootstrap-")
        .tempdir()
        .context("creating a temporary directory")?;
    let parent = match &tip {
        Some(commit) => {
            let resolved = Resolved {
                reference: Some(reference.clone()),
                commit: Some(commit.clone()),
                exact_commit: false,
                keep_full_name: false,
            };
            client::checkout(url, auth, &resolved, work.path(), true, false)
                .with_context(|| format!("cloning branch {branch:?} of {url}"))?;
            Some(gix::ObjectId::from_hex(commit.as_bytes())?)
        }
        None => {
            gix::init_bare(work.path()).context("creating a temporary repository")?;
            None
        }
    };
    let Some(commit) = commit_files(work.path(), parent, files, author, message)? else {
        return Ok(Synced::UpToDate(tip.unwrap_or_default()));
    };
    let commit = commit.to_string();
    push(
        url,
        auth,
        &PushRequest {
            repository: work.path(),
            commit: &commit,
            remote_ref: &reference,
            lease: Lease::Expect(tip),
        },
    )
    .with_context(|| format!("pushing to branch {branch:?} of {url}"))?;
    Ok(Synced::Pushed(commit))
}

/// The credentials Secret, `data` base64-encoded.
fn secret_object(name: &str, namespace: &str, data: &[(String, Vec<u8>)]) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(engine.encode(v))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": data,
    })
}

/// Runs `flux-rs bootstrap`.
pub fn run(args: &BootstrapArgs) -> anyhow::Result<()> {
    let BootstrapWhat::Git(args) = &args.what;
    let log = Log::new();
    let path = clean_path(&args.path)?;
    let url = remote_url(&args.url)?;
    let (auth, secret_data) = credentials(args, &url)?;
    let secret = secret_data.as_ref().map(|_| args.secret_name.as_str());
    log.action("generating component manifests");
    let files = files(args, &path, secret)?;
    log.success("generated component manifests");
    log.action(&format!(
        "cloning branch {:?} from Git repository {:?}",
        args.branch, url
    ));
    let mut message = String::from("Add Flux sync manifests");
    if let Some(appendix) = &args.commit_message_appendix {
        message.push_str("\n\n");
        message.push_str(appendix);
    }
    match sync_repository(
        &url,
        &auth,
        &args.branch,
        &files,
        (&args.author_name, &args.author_email),
        &message,
    )? {
        Synced::Pushed(id) => {
            log.success(&format!(
                "committed component manifests to {:?} ({id})",
                args.branch
            ));
            log.success(&format!("pushed component manifests to {url:?}"));
        }
        Synced::UpToDate(_) => log.success("component manifests are up to date"),
    }
    block_on(async {
        let cluster = Cluster::connect(&args.install.cluster).await?;
        log.action(&format!(
            "installing components in {:?} namespace",
            cluster.namespace
        ));
        let mut install = install_objects(args)?;
        if let Some(data) = &secret_data {
            install.push(secret_object(&args.secret_name, &cluster.namespace, data));
        }
        let mut sink = std::io::sink();
        apply_and_wait(&cluster, &install, log, &mut sink).await?;
        log.success("installed components");
        if secret_data.is_some() {
            log.success(&format!(
                "configured deploy credentials in Secret {:?}",
                args.secret_name
            ));
        }
        log.action("applying sync manifests");
        let mut applied = Vec::new();
        for object in sync_objects(args, &path, secret) {
            let kind = require_kind(object["kind"].as_str().unwrap_or_default())?;
            cluster.apply(&kind, &object).await?;
            applied.push(kind);
        }
        log.success("reconciled sync configuration");
        if !args.wait {
            return Ok(());
        }
        for kind in applied {
            log.waiting(&format!(
                "waiting for {} \"{}/flux-system\" to be reconciled",
                kind.kind, cluster.namespace
            ));
            cluster
                .wait_for(&kind, &cluster.namespace, "flux-system", None)
                .await?;
            log.success(&format!("{} reconciled successfully", kind.kind));
        }
        Ok(())
    })?;
    let _ = std::io::stderr().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            clean_path("./clusters/staging/").unwrap(),
            "clusters/staging"
        );
        assert!(clean_path("/abs").is_err());
        assert!(clean_path("clusters/../..").is_err());
        assert!(clean_path("./").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            remote_url("file:///srv/x.git").unwrap(),
            "file:///srv/x.git"
        );
        assert_eq!(remote_url("/srv/x.git").unwrap(), "file:///srv/x.git");
        assert_eq!(
            remote_url("ssh://git@h/x.git").unwrap(),
            "ssh://git@h/x.git"
        );
        assert!(remote_url("git@github.com:x/y").is_err());
        assert!(remote_url("ftp://h/x").is_err());
    }

    fn args(flags: &[&str]) -> GitArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            git: GitArgs,
        }
        let mut argv = vec!["flux-rs", "--path", "clusters/dev"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().git
    }

    #[test]
    fn credentials_like_flux() {
        let a = args(&["--url", "https://h/r.git", "-u", "bot", "-p", "pw"]);
        let (auth, data) = credentials(&a, &a.url).unwrap();
        assert_eq!(auth.basic, Some(("bot".into(), "pw".into())));
        let data = data.unwrap();
        assert_eq!(data[0], ("username".into(), b"bot".to_vec()));
        assert_eq!(data[1], ("password".into(), b"pw".to_vec()));
        let object = secret_object("flux-system", "flux-system", &data);
        assert_eq!(object["data"]["password"], "cHc=");

        let a = args(&[
            "--url",
            "https://h/r.git",
            "-p",
            "tok",
            "--with-bearer-token",
        ]);
        let (auth, data) = credentials(&a, &a.url).unwrap();
        assert_eq!(auth.bearer_token.as_deref(), Some("tok"));
        assert_eq!(data.unwrap()[0].0, "bearerToken");

        // No credentials: no Secret, no secretRef.
        let a = args(&["--url", "https://h/r.git"]);
        assert!(credentials(&a, &a.url).unwrap().1.is_none());
        assert!(sync_objects(&a, "clusters/dev", None)[0]["spec"]
            .get("secretRef")
            .is_none());

        let a = args(&["--url", "http://h/r.git", "-p", "x"]);
        let err = credentials(&a, &a.url).unwrap_err().to_string();
        assert!(err.contains("--allow-insecure-http"), "{err}");
        let a = args(&["--url", "ssh://git@h/r.git"]);
        let err = credentials(&a, &a.url).unwrap_err().to_string();
        assert!(err.contains("--private-key-file is required"), "{err}");
        let a = args(&["--url", "git://h/r.git", "-p", "x"]);
        assert!(credentials(&a, &a.url).is_err());

        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, "PRIVATE\n").unwrap();
        std::fs::write(dir.path().join("id.pub"), "ssh-ed25519 AAAA\n").unwrap();
        let hosts = dir.path().join("known_hosts");
        std::fs::write(&hosts, "h ssh-ed25519 BBBB\n").unwrap();
        let a = args(&[
            "--url",
            "ssh://git@h/r.git",
            "--private-key-file",
            key.to_str().unwrap(),
            "--known-hosts-file",
            hosts.to_str().unwrap(),
        ]);
        let (auth, data) = credentials(&a, &a.url).unwrap();
        assert_eq!(
            auth.ssh_known_hosts.as_deref(),
            Some("h ssh-ed25519 BBBB\n")
        );
        let keys: Vec<&str> = data
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["identity", "identity.pub", "known_hosts"]);
        let sync = sync_objects(&a, "clusters/dev", Some("flux-system"));
        assert_eq!(sync[0]["spec"]["secretRef"]["name"], "flux-system");
    }

    #[test]
    fn commits_once_and_then_is_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path()).unwrap();
        let files = vec![("c/flux-system/a.yaml".to_string(), "a: 1\n".to_string())];
        let first = commit_files(dir.path(), None, &files, ("T", "t@x"), "m")
            .unwrap()
            .unwrap();
        assert_eq!(
            commit_files(dir.path(), Some(first), &files, ("T", "t@x"), "m").unwrap(),
            None
        );
        let changed = vec![("c/flux-system/a.yaml".to_string(), "a: 2\n".to_string())];
        let second = commit_files(dir.path(), Some(first), &changed, ("T", "t@x"), "m")
            .unwrap()
            .unwrap();
        assert_ne!(second, first);
        let repo = gix::open(dir.path()).unwrap();
        let parents: Vec<_> = repo
            .find_commit(second)
            .unwrap()
            .parent_ids()
            .map(gix::Id::detach)
            .collect();
        assert_eq!(parents, [first]);
    }
}
