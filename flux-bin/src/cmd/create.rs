//! `flux-rs create` and `flux-rs export`: generate Flux objects from flags (print them with
//! `--export`, or apply them server-side and wait for Ready), and print existing objects as
//! clean YAML.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use super::cluster::{
    block_on, format_duration, name_of, parse_duration, require_kind, Cluster, ClusterArgs,
    FluxKind, Log,
};
use super::reconcile::Select;

/// Arguments of `flux-rs create`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Print a GitRepository instead of applying it
  flux-rs create source git podinfo --url https://github.com/stefanprodan/podinfo \\
    --branch master --interval 1m --export > podinfo-source.yaml

  # Create a Kustomization from it and wait until it is Ready
  flux-rs create kustomization podinfo --source GitRepository/podinfo \\
    --path ./kustomize --prune --interval 10m

  # A HelmRelease from a HelmRepository in another namespace
  flux-rs create helmrelease podinfo -n apps --source HelmRepository/podinfo.flux-system \\
    --chart podinfo --chart-version '>=6.0.0' --values ./values.yaml

  # Notifications
  flux-rs create alert-provider slack --type slack --channel general --secret-ref slack-url
  flux-rs create alert podinfo --provider-ref slack --event-source 'Kustomization/*'")]
pub struct CreateArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print the generated object as YAML instead of applying it (needs no cluster).
    #[arg(long, global = true)]
    pub export: bool,
    /// Wait for the applied object to become Ready.
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// Labels of the object (key=value, repeatable or comma-separated).
    #[arg(long = "label", global = true, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// How often the object is reconciled.
    #[arg(long, global = true, default_value = "1m0s", value_parser = parse_duration)]
    pub interval: Duration,
    /// What to create.
    #[command(subcommand)]
    pub what: CreateWhat,
}

/// The kinds `create` generates.
#[derive(Debug, clap::Subcommand)]
pub enum CreateWhat {
    /// Sources: git, helm, oci, bucket.
    #[command(subcommand)]
    Source(CreateSource),
    /// A Kustomization.
    #[command(visible_alias = "ks")]
    Kustomization(KustomizationFlags),
    /// A HelmRelease.
    #[command(visible_alias = "hr")]
    Helmrelease(HelmReleaseFlags),
    /// An Alert.
    Alert(AlertFlags),
    /// An alert Provider.
    AlertProvider(ProviderFlags),
    /// A Receiver.
    Receiver(ReceiverFlags),
}

/// Source kinds.
#[derive(Debug, clap::Subcommand)]
pub enum CreateSource {
    /// A GitRepository.
    Git(GitFlags),
    /// A HelmRepository.
    Helm(HelmRepositoryFlags),
    /// An OCIRepository.
    Oci(OciFlags),
    /// A Bucket.
    Bucket(BucketFlags),
}

/// `create source git`.
#[derive(Debug, clap::Args)]
pub struct GitFlags {
    /// The object's name.
    pub name: String,
    /// Repository address (https://, ssh://, git://, file://).
    #[arg(long)]
    pub url: String,
    /// Branch to track.
    #[arg(long)]
    pub branch: Option<String>,
    /// Tag to check out.
    #[arg(long)]
    pub tag: Option<String>,
    /// Semver range of tags to pick the highest from.
    #[arg(long)]
    pub tag_semver: Option<String>,
    /// Commit SHA to check out.
    #[arg(long)]
    pub commit: Option<String>,
    /// Git reference name (refs/heads/main, refs/pull/1/head).
    #[arg(long)]
    pub ref_name: Option<String>,
    /// Secret with the credentials.
    #[arg(long)]
    pub secret_ref: Option<String>,
    /// Paths to ignore (.gitignore syntax, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub ignore_paths: Vec<String>,
    /// Check out submodules too.
    #[arg(long)]
    pub recurse_submodules: bool,
}

/// `create source helm`.
#[derive(Debug, clap::Args)]
pub struct HelmRepositoryFlags {
    /// The object's name.
    pub name: String,
    /// Repository address (https:// or oci://).
    #[arg(long)]
    pub url: String,
    /// Secret with the credentials.
    #[arg(long)]
    pub secret_ref: Option<String>,
    /// An OCI registry (type: oci).
    #[arg(long)]
    pub oci: bool,
    /// Pass credentials to every host the index points to.
    #[arg(long)]
    pub pass_credentials: bool,
}

/// `create source oci`.
#[derive(Debug, clap::Args)]
pub struct OciFlags {
    /// The object's name.
    pub name: String,
    /// Artifact address (oci://registry/repo, no tag).
    #[arg(long)]
    pub url: String,
    /// Tag to pull.
    #[arg(long)]
    pub tag: Option<String>,
    /// Semver range of tags.
    #[arg(long)]
    pub tag_semver: Option<String>,
    /// Digest to pull (sha256:…).
    #[arg(long)]
    pub digest: Option<String>,
    /// Secret with registry credentials.
    #[arg(long)]
    pub secret_ref: Option<String>,
    /// Paths to ignore (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub ignore_paths: Vec<String>,
}

/// `create source bucket`.
#[derive(Debug, clap::Args)]
pub struct BucketFlags {
    /// The object's name.
    pub name: String,
    /// Bucket name.
    #[arg(long)]
    pub bucket_name: String,
    /// S3-compatible endpoint (host[:port]).
    #[arg(long)]
    pub endpoint: String,
    /// generic, aws, gcp or azure.
    #[arg(long, default_value = "generic")]
    pub provider: String,
    /// Bucket region.
    #[arg(long)]
    pub region: Option<String>,
    /// Plain HTTP to the endpoint.
    #[arg(long)]
    pub insecure: bool,
    /// Secret with accesskey/secretkey.
    #[arg(long)]
    pub secret_ref: Option<String>,
}

/// `create kustomization`.
#[derive(Debug, clap::Args)]
pub struct KustomizationFlags {
    /// The object's name.
    pub name: String,
    /// Source: `[<kind>/]<name>[.<namespace>]`, kind GitRepository, OCIRepository or Bucket.
    #[arg(long)]
    pub source: String,
    /// Path to the directory with the manifests, relative to the source root.
    #[arg(long, default_value = "./")]
    pub path: String,
    /// Delete objects removed from the source.
    #[arg(long)]
    pub prune: bool,
    /// Kustomizations that must be ready first (`[<namespace>/]<name>`, repeatable).
    #[arg(long, value_delimiter = ',')]
    pub depends_on: Vec<String>,
    /// Namespace for every object of the build.
    #[arg(long)]
    pub target_namespace: Option<String>,
    /// Wait for every applied object to be ready (spec.wait).
    #[arg(long = "wait-resources")]
    pub wait_resources: bool,
    /// Health checks (`<kind>/<name>.<namespace>`, repeatable).
    #[arg(long, value_delimiter = ',')]
    pub health_check: Vec<String>,
    /// Decryption provider (sops).
    #[arg(long)]
    pub decryption_provider: Option<String>,
    /// Secret with the decryption keys.
    #[arg(long)]
    pub decryption_secret: Option<String>,
    /// Service account to impersonate.
    #[arg(long)]
    pub service_account: Option<String>,
    /// Retry interval after a failure.
    #[arg(long, value_parser = parse_duration)]
    pub retry_interval: Option<Duration>,
}

/// `create helmrelease`.
#[derive(Debug, clap::Args)]
pub struct HelmReleaseFlags {
    /// The object's name.
    pub name: String,
    /// Chart source: `<kind>/<name>[.<namespace>]`, kind HelmRepository, GitRepository or Bucket.
    #[arg(long, required_unless_present = "chart_ref")]
    pub source: Option<String>,
    /// Chart name (or path in a Git/Bucket source).
    #[arg(long, required_unless_present = "chart_ref")]
    pub chart: Option<String>,
    /// Chart version or semver range.
    #[arg(long)]
    pub chart_version: Option<String>,
    /// A chart reference instead: `<kind>/<name>[.<namespace>]` (OCIRepository, HelmChart).
    #[arg(long, conflicts_with_all = ["source", "chart", "chart_version"])]
    pub chart_ref: Option<String>,
    /// Namespace to install into.
    #[arg(long)]
    pub target_namespace: Option<String>,
    /// Create the target namespace.
    #[arg(long)]
    pub create_target_namespace: bool,
    /// Helm release name.
    #[arg(long)]
    pub release_name: Option<String>,
    /// HelmReleases that must be ready first (`[<namespace>/]<name>`, repeatable).
    #[arg(long, value_delimiter = ',')]
    pub depends_on: Vec<String>,
    /// Values file(s) merged into spec.values.
    #[arg(long)]
    pub values: Vec<PathBuf>,
    /// Service account to impersonate.
    #[arg(long)]
    pub service_account: Option<String>,
}

/// `create alert`.
#[derive(Debug, clap::Args)]
pub struct AlertFlags {
    /// The object's name.
    pub name: String,
    /// The Provider to send to.
    #[arg(long)]
    pub provider_ref: String,
    /// Event sources (`<kind>/<name>[.<namespace>]`, name may be `*`, repeatable).
    #[arg(long, value_delimiter = ',', required = true)]
    pub event_source: Vec<String>,
    /// Minimum severity (info or error).
    #[arg(long, default_value = "info")]
    pub event_severity: String,
}

/// `create alert-provider`.
#[derive(Debug, clap::Args)]
pub struct ProviderFlags {
    /// The object's name.
    pub name: String,
    /// Provider type (slack, msteams, github, generic, ...).
    #[arg(long = "type")]
    pub type_: String,
    /// Channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Bot user name.
    #[arg(long)]
    pub username: Option<String>,
    /// Webhook or API address.
    #[arg(long)]
    pub address: Option<String>,
    /// Secret with the address or token.
    #[arg(long)]
    pub secret_ref: Option<String>,
}

/// `create receiver`.
#[derive(Debug, clap::Args)]
pub struct ReceiverFlags {
    /// The object's name.
    pub name: String,
    /// Receiver type (github, gitlab, generic, ...).
    #[arg(long = "type")]
    pub type_: String,
    /// Events to accept (repeatable).
    #[arg(long = "event", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Objects to reconcile (`<kind>/<name>`, repeatable).
    #[arg(long = "resource", value_delimiter = ',', required = true)]
    pub resources: Vec<String>,
    /// Secret with the webhook token.
    #[arg(long)]
    pub secret_ref: String,
}

/// Runs `flux-rs create`.
pub fn run(args: &CreateArgs) -> anyhow::Result<()> {
    let object = generate(args)?;
    if args.export {
        let mut out = std::io::stdout().lock();
        out.write_all(to_export_yaml(&object).as_bytes())?;
        return Ok(());
    }
    let kind = require_kind(object["kind"].as_str().unwrap_or_default())?;
    let log = Log::new();
    let noun = noun(&kind);
    log.generate(&format!("generating {noun}"));
    block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        log.action(&format!("applying {noun}"));
        let applied = cluster.apply(&kind, &object).await?;
        log.success(&format!("{noun} created"));
        if !args.wait || !kind.has_status {
            return Ok(());
        }
        log.waiting(&format!("waiting for {noun} reconciliation"));
        let name = name_of(&applied).to_string();
        let ready = cluster
            .wait_for(&kind, &cluster.namespace, &name, None)
            .await?;
        log.success(&format!("{noun} {name} is ready"));
        log.success(&kind.success_message(&ready));
        Ok(())
    })
}

fn noun(kind: &FluxKind) -> String {
    if kind.group.starts_with("source.") {
        format!("{} source", kind.kind)
    } else {
        kind.kind.to_string()
    }
}

/// Builds the object the flags describe (pure; validation errors name the flag).
pub fn generate(args: &CreateArgs) -> anyhow::Result<Value> {
    let ns = args.cluster.namespace.as_str();
    let interval = format_duration(args.interval);
    let labels = parse_labels(&args.labels)?;
    let (api_version, kind, name, spec) = match &args.what {
        CreateWhat::Source(CreateSource::Git(f)) => {
            let mut reference = Map::new();
            for (key, value) in [
                ("branch", &f.branch),
                ("tag", &f.tag),
                ("semver", &f.tag_semver),
                ("commit", &f.commit),
                ("name", &f.ref_name),
            ] {
                if let Some(value) = value {
                    reference.insert(key.into(), json!(value));
                }
            }
            if reference.is_empty() {
                bail!(
                    "a Git ref is required, use one of: --branch, --tag, --commit, --tag-semver or --ref-name"
                );
            }
            check_url(
                &f.url,
                &["https://", "http://", "ssh://", "git://", "file://"],
            )?;
            let mut spec = json!({"interval": interval, "url": f.url, "ref": reference});
            if let Some(secret) = &f.secret_ref {
                spec["secretRef"] = json!({"name": secret});
            }
            if !f.ignore_paths.is_empty() {
                spec["ignore"] = json!(f.ignore_paths.join("\n"));
            }
            if f.recurse_submodules {
                spec["recurseSubmodules"] = json!(true);
            }
            (
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                &f.name,
                spec,
            )
        }
        CreateWhat::Source(CreateSource::Helm(f)) => {
            let mut spec = json!({"interval": interval, "url": f.url});
            if f.oci || f.url.starts_with("oci://") {
                check_url(&f.url, &["oci://"])?;
                spec["type"] = json!("oci");
            } else {
                check_url(&f.url, &["https://", "http://"])?;
            }
            if let Some(secret) = &f.secret_ref {
                spec["secretRef"] = json!({"name": secret});
            }
            if f.pass_credentials {
                spec["passCredentials"] = json!(true);
            }
            (
                "source.toolkit.fluxcd.io/v1",
                "HelmRepository",
                &f.name,
                spec,
            )
        }
        CreateWhat::Source(CreateSource::Oci(f)) => {
            check_url(&f.url, &["oci://"])?;
            let mut reference = Map::new();
            for (key, value) in [
                ("tag", &f.tag),
                ("semver", &f.tag_semver),
                ("digest", &f.digest),
            ] {
                if let Some(value) = value {
                    reference.insert(key.into(), json!(value));
                }
            }
            if reference.is_empty() {
                bail!("an OCI reference is required, use one of: --tag, --tag-semver or --digest");
            }
            let mut spec = json!({"interval": interval, "url": f.url, "ref": reference});
            if let Some(secret) = &f.secret_ref {
                spec["secretRef"] = json!({"name": secret});
            }
            if !f.ignore_paths.is_empty() {
                spec["ignore"] = json!(f.ignore_paths.join("\n"));
            }
            (
                "source.toolkit.fluxcd.io/v1",
                "OCIRepository",
                &f.name,
                spec,
            )
        }
        CreateWhat::Source(CreateSource::Bucket(f)) => {
            if !["generic", "aws", "gcp", "azure"].contains(&f.provider.as_str()) {
                bail!(
                    "--provider {:?}: expected generic, aws, gcp or azure",
                    f.provider
                );
            }
            let mut spec = json!({
                "interval": interval, "bucketName": f.bucket_name,
                "endpoint": f.endpoint, "provider": f.provider,
            });
            if let Some(region) = &f.region {
                spec["region"] = json!(region);
            }
            if f.insecure {
                spec["insecure"] = json!(true);
            }
            if let Some(secret) = &f.secret_ref {
                spec["secretRef"] = json!({"name": secret});
            }
            ("source.toolkit.fluxcd.io/v1", "Bucket", &f.name, spec)
        }
        CreateWhat::Kustomization(f) => {
            let source = object_ref(&f.source, Some("GitRepository"), "--source")?;
            if !["GitRepository", "OCIRepository", "Bucket"]
                .contains(&source["kind"].as_str().unwrap_or_default())
            {
                bail!(
                    "--source {:?}: the kind must be GitRepository, OCIRepository or Bucket",
                    f.source
                );
            }
            if f.path.starts_with('/') || f.path.split('/').any(|p| p == "..") {
                bail!(
                    "--path {:?}: must be relative to the source root, without ..",
                    f.path
                );
            }
            let mut spec = json!({
                "interval": interval, "path": f.path, "prune": f.prune, "sourceRef": source,
            });
            if !f.depends_on.is_empty() {
                spec["dependsOn"] = depends_on(&f.depends_on);
            }
            if let Some(ns) = &f.target_namespace {
                spec["targetNamespace"] = json!(ns);
            }
            if f.wait_resources {
                spec["wait"] = json!(true);
            }
            if !f.health_check.is_empty() {
                let checks = f
                    .health_check
                    .iter()
                    .map(|h| health_check(h))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                spec["healthChecks"] = json!(checks);
            }
            if let Some(provider) = &f.decryption_provider {
                if provider != "sops" {
                    bail!("--decryption-provider {provider:?}: only sops is supported");
                }
                let mut decryption = json!({"provider": provider});
                if let Some(secret) = &f.decryption_secret {
                    decryption["secretRef"] = json!({"name": secret});
                }
                spec["decryption"] = decryption;
            } else if f.decryption_secret.is_some() {
                bail!("--decryption-secret needs --decryption-provider sops");
            }
            if let Some(sa) = &f.service_account {
                spec["serviceAccountName"] = json!(sa);
            }
            if let Some(retry) = f.retry_interval {
                spec["retryInterval"] = json!(format_duration(retry));
            }
            (
                "kustomize.toolkit.fluxcd.io/v1",
                "Kustomization",
                &f.name,
                spec,
            )
        }
        CreateWhat::Helmrelease(f) => {
            let mut spec = json!({"interval": interval});
            if let Some(chart_ref) = &f.chart_ref {
                let reference = object_ref(chart_ref, None, "--chart-ref")?;
                if !["OCIRepository", "HelmChart"]
                    .contains(&reference["kind"].as_str().unwrap_or_default())
                {
                    bail!("--chart-ref {chart_ref:?}: the kind must be OCIRepository or HelmChart");
                }
                spec["chartRef"] = reference;
            } else {
                let (Some(source), Some(chart)) = (&f.source, &f.chart) else {
                    bail!("--source and --chart are required (or --chart-ref)");
                };
                let reference = object_ref(source, None, "--source")?;
                if !["HelmRepository", "GitRepository", "Bucket"]
                    .contains(&reference["kind"].as_str().unwrap_or_default())
                {
                    bail!("--source {source:?}: the kind must be HelmRepository, GitRepository or Bucket");
                }
                let mut chart_spec = json!({
                    "chart": chart, "reconcileStrategy": "ChartVersion", "sourceRef": reference,
                });
                if let Some(version) = &f.chart_version {
                    chart_spec["version"] = json!(version);
                }
                spec["chart"] = json!({"spec": chart_spec});
            }
            if let Some(ns) = &f.target_namespace {
                spec["targetNamespace"] = json!(ns);
            }
            if f.create_target_namespace {
                spec["install"] = json!({"createNamespace": true});
            }
            if let Some(release) = &f.release_name {
                spec["releaseName"] = json!(release);
            }
            if !f.depends_on.is_empty() {
                spec["dependsOn"] = depends_on(&f.depends_on);
            }
            if let Some(sa) = &f.service_account {
                spec["serviceAccountName"] = json!(sa);
            }
            if !f.values.is_empty() {
                spec["values"] = read_values(&f.values)?;
            }
            ("helm.toolkit.fluxcd.io/v2", "HelmRelease", &f.name, spec)
        }
        CreateWhat::Alert(f) => {
            if !["info", "error"].contains(&f.event_severity.as_str()) {
                bail!(
                    "--event-severity {:?}: expected info or error",
                    f.event_severity
                );
            }
            let sources = f
                .event_source
                .iter()
                .map(|s| object_ref(s, None, "--event-source"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let spec = json!({
                "eventSeverity": f.event_severity,
                "eventSources": sources,
                "providerRef": {"name": f.provider_ref},
            });
            (
                "notification.toolkit.fluxcd.io/v1beta3",
                "Alert",
                &f.name,
                spec,
            )
        }
        CreateWhat::AlertProvider(f) => {
            let mut spec = json!({"type": f.type_});
            for (key, value) in [
                ("channel", &f.channel),
                ("username", &f.username),
                ("address", &f.address),
            ] {
                if let Some(value) = value {
                    spec[key] = json!(value);
                }
            }
            if let Some(secret) = &f.secret_ref {
                spec["secretRef"] = json!({"name": secret});
            }
            (
                "notification.toolkit.fluxcd.io/v1beta3",
                "Provider",
                &f.name,
                spec,
            )
        }
        CreateWhat::Receiver(f) => {
            let resources = f
                .resources
                .iter()
                .map(|s| object_ref(s, None, "--resource"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut spec = json!({
                "interval": interval, "type": f.type_, "resources": resources,
                "secretRef": {"name": f.secret_ref},
            });
            if !f.events.is_empty() {
                spec["events"] = json!(f.events);
            }
            (
                "notification.toolkit.fluxcd.io/v1",
                "Receiver",
                &f.name,
                spec,
            )
        }
    };
    let mut metadata = json!({"name": name, "namespace": ns});
    if !labels.is_empty() {
        metadata["labels"] = Value::Object(labels);
    }
    Ok(json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}))
}

fn check_url(url: &str, schemes: &[&str]) -> anyhow::Result<()> {
    if schemes.iter().any(|s| url.starts_with(s)) && url.len() > url.find("://").unwrap_or(0) + 3 {
        Ok(())
    } else {
        bail!(
            "--url {url:?}: expected a URL starting with {}",
            schemes.join(", ")
        )
    }
}

fn parse_labels(labels: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for label in labels {
        match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                map.insert(key.to_string(), json!(value));
            }
            _ => bail!("--label {label:?}: expected key=value"),
        }
    }
    Ok(map)
}

/// `[<kind>/]<name>[.<namespace>]` as flux's `--source`, `--event-source` and `--resource`
/// take it.
pub fn object_ref(text: &str, default_kind: Option<&str>, flag: &str) -> anyhow::Result<Value> {
    let (kind, rest) = match text.split_once('/') {
        Some((kind, rest)) => (kind, rest),
        None => match default_kind {
            Some(kind) => (kind, text),
            None => bail!("{flag} {text:?}: expected <kind>/<name>[.<namespace>]"),
        },
    };
    let (name, namespace) = match rest.split_once('.') {
        Some((name, ns)) => (name, Some(ns)),
        None => (rest, None),
    };
    if kind.is_empty() || name.is_empty() || namespace == Some("") {
        bail!("{flag} {text:?}: expected <kind>/<name>[.<namespace>]");
    }
    let mut reference = json!({"kind": kind, "name": name});
    if let Some(ns) = namespace {
        reference["namespace"] = json!(ns);
    }
    Ok(reference)
}

fn depends_on(items: &[String]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|d| match d.split_once('/') {
                Some((ns, name)) => json!({"name": name, "namespace": ns}),
                None => json!({"name": d}),
            })
            .collect(),
    )
}

fn health_check(text: &str) -> anyhow::Result<Value> {
    let reference = object_ref(text, None, "--health-check")?;
    let kind = reference["kind"].as_str().unwrap_or_default();
    let api_version = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "HelmRelease" => "helm.toolkit.fluxcd.io/v2",
        "Kustomization" => "kustomize.toolkit.fluxcd.io/v1",
        _ => bail!("--health-check {text:?}: unsupported kind {kind:?} (Deployment, StatefulSet, DaemonSet, ReplicaSet, HelmRelease, Kustomization)"),
    };
    if reference["namespace"].is_null() {
        bail!("--health-check {text:?}: expected <kind>/<name>.<namespace>");
    }
    let mut check = reference;
    check["apiVersion"] = json!(api_version);
    Ok(check)
}

fn read_values(files: &[PathBuf]) -> anyhow::Result<Value> {
    let mut merged = Value::Object(Map::new());
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--values {}: reading", file.display()))?;
        let values: Value = serde_yaml::from_str(&text)
            .with_context(|| format!("--values {}: not YAML", file.display()))?;
        if !values.is_object() {
            bail!(
                "--values {}: expected a YAML map at the top",
                file.display()
            );
        }
        merge(&mut merged, values);
    }
    Ok(merged)
}

/// Helm's values merge: maps merge recursively, everything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value);
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Sorts map keys recursively (flux marshals through JSON, so its YAML keys are sorted).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `---` plus the object as flux's export writes it: apiVersion, kind, metadata (name,
/// namespace, labels, annotations only), spec; no status; keys sorted.
pub fn to_export_yaml(object: &Value) -> String {
    let metadata = &object["metadata"];
    let mut clean_metadata = Map::new();
    for key in ["name", "namespace", "labels", "annotations"] {
        if let Some(value) = metadata.get(key) {
            if !value.is_null() && value.as_object().is_none_or(|m| !m.is_empty()) {
                clean_metadata.insert(key.into(), value.clone());
            }
        }
    }
    let mut clean = json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": clean_metadata,
    });
    if let Some(spec) = object.get("spec") {
        clean["spec"] = spec.clone();
    }
    format!("---\n{}", flux_kustomize::yaml::to_yaml(&sorted(&clean)))
}

/// Arguments of `flux-rs export`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Export one Kustomization
  flux-rs export kustomization apps > apps.yaml

  # Export every GitRepository of a namespace
  flux-rs export source git --all -n flux-system

The output is clean YAML that `kubectl apply -f` or `flux-rs build` takes: apiVersion, kind,
metadata (name, namespace, labels, annotations) and spec; no status or server-managed fields.")]
pub struct ExportArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// What to export.
    #[command(subcommand)]
    pub target: Select,
}

/// Runs `flux-rs export`.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let text = block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let (kind, _) = args.target.resolve();
        let mut text = String::new();
        for name in args.target.names(&cluster).await? {
            let object = cluster.get(&kind, &cluster.namespace, &name).await?;
            text.push_str(&to_export_yaml(&object));
        }
        Ok(text)
    })?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn create(args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec!["create"];
        argv.extend_from_slice(args);
        argv.push("--export");
        let cli = Cli::try_parse_from(argv)?;
        Ok(to_export_yaml(&generate(&cli.create)?))
    }

    #[test]
    fn git_source_export_like_flux() {
        let yaml = create(&[
            "source",
            "git",
            "podinfo",
            "--url",
            "https://github.com/stefanprodan/podinfo",
            "--branch",
            "master",
            "--interval",
            "1m",
        ])
        .unwrap();
        assert_eq!(
            yaml,
            "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: master\n  url: https://github.com/stefanprodan/podinfo\n"
        );
        let err = create(&["source", "git", "x", "--url", "https://h/r"]).unwrap_err();
        assert!(err.to_string().contains("a Git ref is required"), "{err}");
        let err =
            create(&["source", "git", "x", "--url", "ftp://h/r", "--branch", "m"]).unwrap_err();
        assert!(err.to_string().contains("--url \"ftp://h/r\""), "{err}");
    }

    #[test]
    fn kustomization_and_helmrelease_exports() {
        let yaml = create(&[
            "kustomization",
            "podinfo",
            "--source",
            "GitRepository/podinfo.flux-system",
            "--path",
            "./kustomize",
            "--prune",
            "--interval",
            "10m",
            "--depends-on",
            "infra",
            "--label",
            "team=a",
            "-n",
            "apps",
        ])
        .unwrap();
        assert_eq!(
            yaml,
            "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  labels:\n    team: a\n  name: podinfo\n  namespace: apps\nspec:\n  dependsOn:\n  - name: infra\n  interval: 10m0s\n  path: ./kustomize\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: podinfo\n    namespace: flux-system\n"
        );
        let yaml = create(&[
            "hr",
            "podinfo",
            "--source",
            "HelmRepository/podinfo",
            "--chart",
            "podinfo",
            "--chart-version",
            ">=6.0.0",
        ])
        .unwrap();
        assert!(yaml.contains("spec:\n  chart:\n    spec:\n      chart: podinfo\n      reconcileStrategy: ChartVersion\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n      version: '>=6.0.0'\n  interval: 1m0s\n"), "{yaml}");
        let err = create(&["ks", "x", "--source", "HelmRepository/x"]).unwrap_err();
        assert!(err.to_string().contains("must be GitRepository"), "{err}");
        let err = create(&["ks", "x", "--source", "x", "--path", "../up"]).unwrap_err();
        assert!(err.to_string().contains("--path"), "{err}");
    }

    #[test]
    fn notification_exports() {
        let yaml = create(&[
            "alert",
            "a",
            "--provider-ref",
            "slack",
            "--event-source",
            "Kustomization/*",
            "--event-source",
            "GitRepository/flux-system.flux-system",
        ])
        .unwrap();
        assert!(
            yaml.contains("apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\n"),
            "{yaml}"
        );
        assert!(yaml.contains("  eventSources:\n  - kind: Kustomization\n    name: '*'\n  - kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n"), "{yaml}");
        let yaml = create(&[
            "receiver",
            "gh",
            "--type",
            "github",
            "--event",
            "ping,push",
            "--resource",
            "GitRepository/flux-system",
            "--secret-ref",
            "token",
        ])
        .unwrap();
        assert!(yaml.contains("  events:\n  - ping\n  - push\n"), "{yaml}");
        assert!(create(&[
            "alert",
            "a",
            "--provider-ref",
            "s",
            "--event-source",
            "nokind"
        ])
        .is_err());
        assert!(create(&[
            "alert-provider",
            "s",
            "--type",
            "slack",
            "--label",
            "novalue"
        ])
        .is_err());
    }

    #[test]
    fn export_drops_status_and_managed_metadata() {
        let object = json!({
            "apiVersion": "v1x", "kind": "K",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "3",
                         "generation": 2, "managedFields": [{}], "annotations": {}},
            "spec": {"b": 1, "a": 2},
            "status": {"x": 1}
        });
        assert_eq!(
            to_export_yaml(&object),
            "---\napiVersion: v1x\nkind: K\nmetadata:\n  name: web\n  namespace: ns\nspec:\n  a: 2\n  b: 1\n"
        );
    }
}
