//! `flux-rs source pull git|oci|helm|bucket` and `flux-rs push|pull artifact`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use flux_source::artifact::{Artifact, FetchOutcome};
use flux_source::storage::Storage;

/// Top-level commands contributed by this module (flattened into the CLI).
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Fetch sources the way source-controller does and write their artifacts.
    #[command(subcommand)]
    Source(Box<SourceCommand>),
    /// Push artifacts to OCI registries.
    #[command(subcommand)]
    Push(Box<PushCommand>),
    /// Pull artifacts from OCI registries.
    #[command(subcommand)]
    Pull(Box<PullCommand>),
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Pull a source and write its artifact tarball.
    #[command(subcommand)]
    Pull(SourcePull),
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Where to write the artifact (default: the artifact's file name in the current directory).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// TLS client certificate and proxy (`certSecretRef` / `proxySecretRef`).
#[derive(Debug, Args)]
pub struct TransportArgs {
    /// PEM client certificate for mutual TLS (with --key-file).
    #[arg(long, requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of --cert-file.
    #[arg(long, requires = "cert_file")]
    pub key_file: Option<PathBuf>,
    /// Proxy URL (http://, https:// or socks5://).
    #[arg(long)]
    pub proxy_address: Option<String>,
    #[arg(long, requires = "proxy_address")]
    pub proxy_username: Option<String>,
    #[arg(long, env = "FLUX_PROXY_PASSWORD", requires = "proxy_address")]
    pub proxy_password: Option<String>,
}

impl TransportArgs {
    fn client_cert(&self) -> anyhow::Result<Option<flux_source::tls::ClientCert>> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some(flux_source::tls::ClientCert {
                cert_pem: read(cert)?,
                key_pem: read(key)?,
            })),
            _ => Ok(None),
        }
    }

    fn proxy(&self) -> Option<flux_source::tls::ProxyConfig> {
        self.proxy_address
            .as_ref()
            .map(|address| flux_source::tls::ProxyConfig {
                address: address.clone(),
                username: self.proxy_username.clone(),
                password: self.proxy_password.clone(),
            })
    }
}

#[derive(Debug, Subcommand)]
pub enum SourcePull {
    /// A Git repository (http, https, ssh, git, file URLs).
    Git {
        url: String,
        #[arg(long)]
        branch: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        semver: Option<String>,
        #[arg(long)]
        commit: Option<String>,
        /// Full reference name, e.g. refs/pull/1/head.
        #[arg(long = "ref-name")]
        ref_name: Option<String>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long, env = "FLUX_GIT_PASSWORD")]
        password: Option<String>,
        #[arg(long, env = "FLUX_GIT_BEARER_TOKEN")]
        bearer_token: Option<String>,
        /// PEM CA bundle file.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// SSH private key file.
        #[arg(long)]
        private_key_file: Option<PathBuf>,
        /// known_hosts file (required for ssh).
        #[arg(long)]
        known_hosts_file: Option<PathBuf>,
        /// `.sourceignore`-style patterns.
        #[arg(long)]
        ignore_paths: Option<String>,
        /// Only these directories end up in the artifact (spec.sparseCheckout).
        #[arg(long, value_delimiter = ',')]
        sparse_checkout: Vec<String>,
        /// Verify OpenPGP signatures: HEAD, Tag or TagAndHEAD (needs --verify-key-file).
        #[arg(long, requires = "verify_key_file")]
        verify_mode: Option<String>,
        /// Armored OpenPGP public key file(s) trusted for --verify-mode.
        #[arg(long)]
        verify_key_file: Vec<PathBuf>,
        #[command(flatten)]
        transport: TransportArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// An OCI artifact (oci://host/repo).
    Oci {
        url: String,
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        semver: Option<String>,
        #[arg(long)]
        digest: Option<String>,
        /// Layer media type to select.
        #[arg(long)]
        media_type: Option<String>,
        /// Store the layer as-is instead of extracting and re-archiving it.
        #[arg(long)]
        copy: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        ignore_paths: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// A chart from a Helm repository (HTTP index or oci://).
    // `--version` selects the chart version here, so the propagated `--version` flag is off.
    #[command(disable_version_flag = true)]
    Helm {
        /// Repository URL (the directory holding index.yaml, or oci://host/path).
        url: String,
        #[arg(long)]
        chart: String,
        /// Version or semver range (default: latest stable).
        #[arg(long, default_value = "*")]
        version: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long, env = "FLUX_HELM_PASSWORD")]
        password: Option<String>,
        #[arg(long)]
        ca_file: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        transport: TransportArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// An S3-compatible bucket.
    Bucket {
        #[arg(long)]
        bucket_name: String,
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long)]
        insecure: bool,
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        access_key: Option<String>,
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
        secret_key: Option<String>,
        #[arg(long)]
        ignore_paths: Option<String>,
        #[command(flatten)]
        transport: TransportArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// `user:password` for the registry.
    #[arg(long)]
    pub creds: Option<String>,
    /// Docker config JSON to read credentials from.
    #[arg(long)]
    pub docker_config: Option<PathBuf>,
    /// Use plain HTTP.
    #[arg(long = "insecure-registry")]
    pub insecure_registry: bool,
}

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Package a directory and push it as a Flux OCI artifact.
    Artifact {
        /// oci://host/repo:tag
        url: String,
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        source: String,
        #[arg(long)]
        revision: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PullCommand {
    /// Pull a Flux OCI artifact and extract it into a directory.
    Artifact {
        /// oci://host/repo:tag or oci://host/repo@sha256:…
        url: String,
        #[arg(long, short = 'o')]
        output: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn split_creds(creds: &str) -> anyhow::Result<(String, String)> {
    let (u, p) = creds
        .split_once(':')
        .context("--creds must be user:password")?;
    Ok((u.to_string(), p.to_string()))
}

fn registry_options(
    args: &RegistryArgs,
    url: &str,
) -> anyhow::Result<flux_source::oci::OciOptions> {
    let mut options = flux_source::oci::OciOptions {
        insecure: args.insecure_registry,
        ..Default::default()
    };
    if let Some(creds) = &args.creds {
        options.basic = Some(split_creds(creds)?);
    } else if let Some(cfg) = &args.docker_config {
        let host = url
            .trim_start_matches("oci://")
            .split('/')
            .next()
            .unwrap_or_default();
        options = options.with_docker_config(&read(cfg)?, host)?;
    }
    Ok(options)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Copies the stored artifact to the requested output and prints revision and digest.
fn finish(
    storage: &Storage,
    artifact: &Artifact,
    output: &OutputArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let src = storage.local_path(artifact)?;
    let file_name = artifact
        .path
        .rsplit('/')
        .next()
        .unwrap_or("artifact.tar.gz");
    let dest = output
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(file_name));
    std::fs::copy(&src, &dest).with_context(|| format!("writing {}", dest.display()))?;
    writeln!(out, "revision: {}", artifact.revision)?;
    writeln!(
        out,
        "digest: {}",
        artifact.digest.as_deref().unwrap_or_default()
    )?;
    writeln!(out, "artifact: {}", dest.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Runs one of this module's commands.
pub fn run(command: Commands, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match command {
        Commands::Source(source) => {
            let SourceCommand::Pull(pull) = *source;
            source_pull(pull, out)
        }
        Commands::Push(push) => {
            let PushCommand::Artifact {
                url,
                path,
                source,
                revision,
                registry,
            } = *push;
            let options = registry_options(&registry, &url)?;
            let (base, r) = flux_source::oci::split_ref(&url)?;
            let tag = r.tag.context("push needs a tag: oci://host/repo:tag")?;
            let base_ref = flux_source::oci::parse_url(&base)?;
            let reference = flux_source::oci::Reference::with_tag(
                base_ref.registry().to_string(),
                base_ref.repository().to_string(),
                tag,
            );
            let (bytes, _) = flux_source::archive::pack_to_vec(&path, None)?;
            let mut annotations = BTreeMap::new();
            annotations.insert(
                flux_source::oci::ANNOTATION_CREATED.to_string(),
                flux_source::artifact::rfc3339(std::time::SystemTime::now()),
            );
            annotations.insert(flux_source::oci::ANNOTATION_SOURCE.to_string(), source);
            annotations.insert(flux_source::oci::ANNOTATION_REVISION.to_string(), revision);
            let digest = runtime()?.block_on(async {
                let registry = flux_source::oci::Registry::new(&options)?;
                registry.push_artifact(&reference, bytes, annotations).await
            })?;
            writeln!(out, "pushed: {url}")?;
            writeln!(out, "digest: {digest}")?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Pull(pull) => {
            let PullCommand::Artifact {
                url,
                output,
                registry,
            } = *pull;
            let options = registry_options(&registry, &url)?;
            let selector = flux_source::oci::LayerSelector::default();
            let (revision, annotations, blob) =
                runtime()?.block_on(flux_source::oci::pull_artifact(&url, &options, &selector))?;
            let extracted = flux_source::extract::unpack_gz(
                &blob[..],
                &output,
                &flux_source::extract::Limits::default(),
                &url,
            )?;
            writeln!(out, "revision: {revision}")?;
            if let Some(origin) = annotations.get(flux_source::oci::ANNOTATION_REVISION) {
                writeln!(out, "origin revision: {origin}")?;
            }
            writeln!(
                out,
                "extracted: {} files to {}",
                extracted.files,
                output.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn source_pull(pull: SourcePull, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir().context("creating a scratch storage directory")?;
    let storage = Storage::new(scratch.path(), "localhost")?;
    match pull {
        SourcePull::Git {
            url,
            branch,
            tag,
            semver,
            commit,
            ref_name,
            username,
            password,
            bearer_token,
            ca_file,
            private_key_file,
            known_hosts_file,
            ignore_paths,
            sparse_checkout,
            verify_mode,
            verify_key_file,
            transport,
            output,
        } => {
            let mut auth = flux_source::git::GitAuth {
                bearer_token,
                ..Default::default()
            };
            if let Some(u) = username {
                auth.basic = Some((u, password.unwrap_or_default()));
            }
            if auth.basic.is_some() && auth.bearer_token.is_some() {
                bail!("--bearer-token cannot be combined with --username/--password");
            }
            auth.ca_pem = ca_file.as_deref().map(read).transpose()?;
            auth.ssh_identity = private_key_file.as_deref().map(read).transpose()?;
            auth.ssh_known_hosts = known_hosts_file
                .as_deref()
                .map(|p| read(p).map(|b| String::from_utf8_lossy(&b).into_owned()))
                .transpose()?;
            auth.client_cert = transport.client_cert()?;
            auth.proxy = transport.proxy();
            let verify = match verify_mode {
                Some(mode) => {
                    let mut keys = BTreeMap::new();
                    for (i, file) in verify_key_file.iter().enumerate() {
                        keys.insert(format!("key{i}.asc"), read(file)?);
                    }
                    Some(flux_source::git::GitVerify {
                        mode: flux_source::git::VerifyMode::parse(&mode)?,
                        keyring: flux_source::git::Keyring::from_secret_data(&keys)?,
                    })
                }
                None => None,
            };
            let spec = flux_source::git::GitSpec {
                url,
                reference: flux_source::git::GitRef {
                    branch,
                    tag,
                    semver,
                    name: ref_name,
                    commit,
                },
                auth,
                ignore: ignore_paths,
                shallow: true,
                timeout: Some(std::time::Duration::from_secs(60)),
                sparse_checkout,
                verify,
                ..Default::default()
            };
            let fetched = flux_source::git::fetch_detailed(
                &spec,
                &storage,
                "flux-system",
                "cli",
                None,
                false,
            )?;
            if let Some(message) = &fetched.verified {
                eprintln!("{message}");
            }
            finish(&storage, fetched.outcome.artifact(), &output, out)
        }
        SourcePull::Oci {
            url,
            tag,
            semver,
            digest,
            media_type,
            copy,
            registry,
            ignore_paths,
            output,
        } => {
            let spec = flux_source::oci::OciSpec {
                options: registry_options(&registry, &url)?,
                url,
                reference: flux_source::oci::OciRef {
                    tag,
                    semver,
                    semver_filter: None,
                    digest,
                },
                layer_selector: flux_source::oci::LayerSelector {
                    media_type,
                    operation: if copy {
                        flux_source::oci::LayerOperation::Copy
                    } else {
                        flux_source::oci::LayerOperation::Extract
                    },
                },
                ignore: ignore_paths,
            };
            let outcome: FetchOutcome = runtime()?.block_on(flux_source::oci::fetch(
                &spec,
                &storage,
                "flux-system",
                "cli",
                None,
                false,
            ))?;
            finish(&storage, outcome.artifact(), &output, out)
        }
        SourcePull::Helm {
            url,
            chart,
            version,
            username,
            password,
            ca_file,
            registry,
            transport,
            output,
        } => {
            if url.starts_with("oci://") {
                let options = registry_options(&registry, &url)?;
                let (version, bytes) = runtime()?.block_on(flux_source::oci::pull_helm_chart(
                    &url, &chart, &version, &options,
                ))?;
                let mut artifact = storage.new_artifact(
                    "HelmChart",
                    "flux-system",
                    "cli",
                    &format!("{chart}-{version}.tgz"),
                    &version,
                );
                storage.write_bytes(&mut artifact, &bytes)?;
                return finish(&storage, &artifact, &output, out);
            }
            let mut spec = flux_source::helm::HelmRepoSpec::new(url);
            if let Some(u) = username {
                spec.auth.basic = Some((u, password.unwrap_or_default()));
            }
            spec.auth.ca_pem = ca_file.as_deref().map(read).transpose()?;
            spec.auth.client_cert = transport.client_cert()?;
            spec.auth.proxy = transport.proxy();
            let (_, index) =
                flux_source::helm::fetch_repository(&spec, &storage, "flux-system", "cli", None)?;
            let artifact = flux_source::helm::fetch_chart_from_repository(
                &spec,
                &index,
                &chart,
                &version,
                &flux_source::helm::ValuesSpec::default(),
                &storage,
                "flux-system",
                "cli",
            )?;
            finish(&storage, &artifact, &output, out)
        }
        SourcePull::Bucket {
            bucket_name,
            endpoint,
            region,
            prefix,
            insecure,
            access_key,
            secret_key,
            ignore_paths,
            transport,
            output,
        } => {
            let spec = flux_source::bucket::BucketSpec {
                s3: flux_source::bucket::S3Config {
                    endpoint,
                    bucket: bucket_name,
                    region,
                    insecure,
                    access_key,
                    secret_key,
                    timeout: std::time::Duration::from_secs(60),
                    ca_pem: None,
                    client_cert: transport.client_cert()?,
                    proxy: transport.proxy(),
                },
                prefix,
                ignore: ignore_paths,
            };
            let outcome = flux_source::bucket::fetch(&spec, &storage, "flux-system", "cli", None)?;
            finish(&storage, outcome.artifact(), &output, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn source_pull_git_writes_artifact_and_prints_revision_and_digest() {
        if std::process::Command::new("git")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("NOTICE: skipping: git is not installed");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("app.yaml"), "kind: ConfigMap\n").expect("write");
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "init"]);
        let head = git(&repo, &["rev-parse", "HEAD"]);
        let output = tmp.path().join("out.tar.gz");
        let url = format!("file://{}", repo.display());
        let cli = Cli::try_parse_from([
            "flux-rs",
            "source",
            "pull",
            "git",
            url.as_str(),
            "--branch",
            "main",
            "--output",
            output.to_str().expect("utf-8 path"),
        ])
        .expect("parses");
        let Command::Source(command) = cli.command else {
            panic!("expected the source command")
        };
        let mut out = Vec::new();
        run(command, &mut out).expect("runs");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains(&format!("revision: main@sha1:{head}")),
            "{text}"
        );
        let bytes = std::fs::read(&output).expect("artifact written");
        let digest = flux_source::Digest::sha256(&bytes);
        assert!(text.contains(&format!("digest: {digest}")), "{text}");
    }

    #[test]
    fn missing_ref_fails_without_output() {
        if std::process::Command::new("git")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("a"), "a").expect("write");
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "init"]);
        let output = tmp.path().join("out.tar.gz");
        let url = format!("file://{}", repo.display());
        let cli = Cli::try_parse_from([
            "flux-rs",
            "source",
            "pull",
            "git",
            url.as_str(),
            "--tag",
            "v9",
            "-o",
            output.to_str().expect("utf-8 path"),
        ])
        .expect("parses");
        let Command::Source(command) = cli.command else {
            panic!("expected the source command")
        };
        let err = run(command, &mut Vec::new()).expect_err("missing tag");
        assert_eq!(err.to_string(), "unable to resolve tag 'v9'");
        assert!(!output.exists());
    }

    #[test]
    fn sparse_checkout_and_verify_flags() {
        if std::process::Command::new("git")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("deploy")).expect("mkdir");
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("deploy/app.yaml"), "kind: ConfigMap\n").expect("write");
        std::fs::write(repo.join("README.md"), "x\n").expect("write");
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "init"]);
        let output = tmp.path().join("out.tar.gz");
        let url = format!("file://{}", repo.display());
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "flux-rs",
                "source",
                "pull",
                "git",
                url.as_str(),
                "--branch",
                "main",
                "-o",
                output.to_str().expect("utf-8 path"),
            ];
            args.extend_from_slice(extra);
            let cli = Cli::try_parse_from(args).expect("parses");
            let Command::Source(command) = cli.command else {
                panic!("expected the source command")
            };
            command
        };
        run(parse(&["--sparse-checkout", "deploy"]), &mut Vec::new()).expect("runs");
        let file = std::fs::File::open(&output).expect("artifact written");
        let unpacked = tmp.path().join("unpacked");
        flux_source::extract::unpack_gz(
            std::io::BufReader::new(file),
            &unpacked,
            &flux_source::extract::Limits::default(),
            "out.tar.gz",
        )
        .expect("valid artifact");
        assert!(unpacked.join("deploy/app.yaml").is_file());
        assert!(!unpacked.join("README.md").exists());
        std::fs::remove_file(&output).expect("rm");

        // An unsigned commit with verification on: an error and no artifact.
        let key = tmp.path().join("key.asc");
        std::fs::write(&key, "not a key").expect("write");
        let key_arg = key.to_str().expect("utf-8 path");
        let err = run(
            parse(&["--verify-mode", "HEAD", "--verify-key-file", key_arg]),
            &mut Vec::new(),
        )
        .expect_err("bad key");
        assert!(err.to_string().contains("key0.asc"), "{err}");
        assert!(!output.exists());
    }
}
