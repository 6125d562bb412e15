//! `flux-rs build`: render Flux objects offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::render::{self, ChartRenderer, Decrypt, Outcome, RenderOptions, Report};

/// What to build.
#[derive(Debug, clap::Subcommand)]
pub enum BuildCommand {
    /// Render every Kustomization and HelmRelease a cluster directory syncs, offline.
    ///
    /// PATH is a cluster directory such as `clusters/staging`. The repository root is found
    /// from the Kustomization whose spec.path points at PATH (the bootstrap flux-system one),
    /// or given with --root. Kustomizations and HelmReleases whose source is this repository
    /// are followed, in dependsOn order; others are listed as skipped unless mapped with
    /// --local-source.
    Cluster(BuildClusterArgs),
    /// Build one Flux Kustomization from a local directory, as `flux build kustomization` does.
    ///
    /// The Kustomization object is read from --kustomization-file (offline; reading it from
    /// the cluster is not supported), DIR is built with its spec (generation, patches,
    /// images, components, targetNamespace), SOPS-decrypted with the given keys and
    /// post-build substituted. With --dry-run, postBuild.substituteFrom is skipped (there
    /// is no cluster to read the ConfigMaps and Secrets from), as in flux.
    Kustomization(BuildKustomizationArgs),
}

/// Arguments of `flux-rs build kustomization` (flux-compatible names).
#[derive(Debug, clap::Args)]
pub struct BuildKustomizationArgs {
    /// The name of the Flux Kustomization.
    pub name: String,
    /// The namespace of the Flux Kustomization (used to pick the object from the file).
    #[arg(short = 'n', long, default_value = "flux-system")]
    pub namespace: String,
    /// The local directory matching the Kustomization's spec.path.
    #[arg(long)]
    pub path: PathBuf,
    /// The file holding the Flux Kustomization object (offline); without it the object and its
    /// substituteFrom ConfigMaps/Secrets are read from the cluster (KUBECONFIG).
    #[arg(long, value_name = "FILE")]
    pub kustomization_file: Option<PathBuf>,
    /// Do not read anything from a cluster: postBuild.substituteFrom is skipped.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail on variables referenced without a value.
    #[arg(long)]
    pub strict_substitute: bool,
    /// Also build the Kustomizations and HelmReleases found in the output whose sources are local.
    #[arg(short, long)]
    pub recursive: bool,
    /// Local directories for sources: Kind/namespace/name=PATH, comma-separated or repeated.
    #[arg(
        long = "local-sources",
        value_name = "KIND/NS/NAME=PATH",
        value_delimiter = ','
    )]
    pub local_sources: Vec<String>,
    /// The source root the build is confined to (default: the enclosing git repository).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// An age identities file for SOPS decryption (repeatable).
    #[arg(long = "age-key-file", value_name = "FILE")]
    pub age_key_files: Vec<PathBuf>,
    /// An armored PGP secret key for SOPS decryption (repeatable).
    #[arg(long = "pgp-key-file", value_name = "FILE")]
    pub pgp_key_files: Vec<PathBuf>,
    /// Print decrypted Secret values instead of Flux's **SOPS** mask.
    #[arg(long)]
    pub show_secrets: bool,
}

/// Arguments of `flux-rs build cluster`.
#[derive(Debug, clap::Args)]
pub struct BuildClusterArgs {
    /// The cluster directory, e.g. clusters/staging.
    pub path: PathBuf,
    /// The repository root (default: found from the cluster's flux-system Kustomization).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Write one file per Kustomization/HelmRelease under DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output_format: OutputFormat,
    /// An age identities file for SOPS decryption (repeatable).
    #[arg(long = "age-key-file", value_name = "FILE")]
    pub age_key_files: Vec<PathBuf>,
    /// An armored PGP secret key for SOPS decryption (repeatable).
    #[arg(long = "pgp-key-file", value_name = "FILE")]
    pub pgp_key_files: Vec<PathBuf>,
    /// Use a local directory for an external source: Kind/namespace/name=PATH (repeatable).
    #[arg(long = "local-source", value_name = "KIND/NS/NAME=PATH")]
    pub local_sources: Vec<String>,
    /// Treat variables without a value as empty instead of failing (Flux's strict mode is on by default).
    #[arg(long)]
    pub no_strict_substitute: bool,
    /// Print decrypted Secret values instead of Flux's **SOPS** mask.
    #[arg(long)]
    pub show_secrets: bool,
    /// Do not print the summary table on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Multi-document YAML.
    Yaml,
    /// JSON.
    Json,
}

/// Runs a build command.
pub fn run(command: BuildCommand) -> anyhow::Result<ExitCode> {
    match command {
        BuildCommand::Cluster(args) => build_cluster(&args),
        BuildCommand::Kustomization(args) => build_kustomization(&args),
    }
}

/// Parses `Kind/namespace/name=PATH` mappings.
pub fn parse_local_sources(mappings: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut local_sources = BTreeMap::new();
    for mapping in mappings {
        let Some((key, path)) = mapping.split_once('=') else {
            bail!("local source {mapping:?}: expected Kind/namespace/name=PATH");
        };
        if key.split('/').count() != 3 {
            bail!("local source {mapping:?}: the source must be Kind/namespace/name");
        }
        local_sources.insert(key.to_string(), PathBuf::from(path));
    }
    Ok(local_sources)
}

/// Reads the Flux Kustomization `namespace/name` from a (multi-document) file. An object
/// without a namespace matches any namespace, as flux does for `--kustomization-file`.
pub fn read_kustomization_file(file: &Path, namespace: &str, name: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--kustomization-file {}", file.display()))?;
    let documents = flux_kustomize::yaml::parse_documents(&text)
        .map_err(|e| anyhow::anyhow!("--kustomization-file {}: {e}", file.display()))?;
    let mut names = Vec::new();
    for document in documents {
        let kind = document.get("kind").and_then(Value::as_str);
        let api = document
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind != Some("Kustomization") || !api.starts_with("kustomize.toolkit.fluxcd.io/") {
            continue;
        }
        let object_name = document
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let object_name = object_name.to_string();
        let object_ns = document
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        if object_name == name && object_ns.as_deref().is_none_or(|ns| ns == namespace) {
            let mut document = document;
            if object_ns.is_none() {
                if let Some(Value::Object(metadata)) = document.get_mut("metadata") {
                    metadata.insert("namespace".into(), json!(namespace));
                }
            }
            return Ok(document);
        }
        names.push(format!(
            "{}/{object_name}",
            object_ns.as_deref().unwrap_or("-")
        ));
    }
    if names.is_empty() {
        bail!(
            "--kustomization-file {}: no Flux Kustomization (kustomize.toolkit.fluxcd.io) in the file",
            file.display()
        );
    }
    bail!(
        "Kustomization {namespace}/{name} not found in {} (it has: {})",
        file.display(),
        names.join(", ")
    )
}

/// Renders what `build kustomization` (and `diff kustomization`) need.
pub fn render_kustomization_args(
    args: &BuildKustomizationArgs,
    path: &Path,
) -> anyhow::Result<Report> {
    Ok(render_kustomization_object(args, path)?.0)
}

/// Like [`render_kustomization_args`], also returning the Flux Kustomization object used.
pub fn render_kustomization_object(
    args: &BuildKustomizationArgs,
    path: &Path,
) -> anyhow::Result<(Report, Value)> {
    let (object, known_objects) = match &args.kustomization_file {
        Some(file) => (
            read_kustomization_file(file, &args.namespace, &args.name)?,
            Vec::new(),
        ),
        None if args.dry_run => bail!(
            "--dry-run needs --kustomization-file FILE: without it the Kustomization is read from the cluster"
        ),
        None => super::cluster_read::kustomization_and_inputs(&args.namespace, &args.name)?,
    };
    let options = render::KustomizationOptions {
        known_objects,
        object: object.clone(),
        path: path.to_path_buf(),
        root: args.root.clone(),
        recursive: args.recursive,
        dry_run: args.dry_run,
        strict_substitute: args.strict_substitute,
        local_sources: parse_local_sources(&args.local_sources)?,
        show_secrets: args.show_secrets,
    };
    let decrypt = super::keys::decryptor(&args.age_key_files, &args.pgp_key_files)?;
    let charts = super::charts::renderer();
    let report = render::render_kustomization(&options, decrypt.as_ref(), charts.as_ref())
        .with_context(|| format!("building Kustomization {}/{}", args.namespace, args.name))?;
    Ok((report, object))
}

fn build_kustomization(args: &BuildKustomizationArgs) -> anyhow::Result<ExitCode> {
    if !args.dry_run && args.kustomization_file.is_some() {
        eprintln!("► --kustomization-file without --dry-run: postBuild.substituteFrom objects are looked up among the objects of this render only (use --dry-run to skip them as flux does)");
    }
    let report = render_kustomization_args(args, &args.path)?;
    let failures: Vec<String> = report
        .failures()
        .map(|u| match &u.outcome {
            Outcome::Failed(message) => format!("{}: {message}", u.id()),
            _ => String::new(),
        })
        .collect();
    if let Some(entry) = report.units.first() {
        if let Outcome::Failed(message) = &entry.outcome {
            bail!("{}: {message}", entry.id());
        }
        if let Outcome::Skipped(reason) = &entry.outcome {
            bail!("{}: {reason}", entry.id());
        }
    }
    let mut out = std::io::stdout().lock();
    for unit in &report.units {
        match &unit.outcome {
            Outcome::Rendered(objects) => {
                for object in objects {
                    writeln!(out, "---")?;
                    out.write_all(flux_kustomize::yaml::to_yaml(object).as_bytes())?;
                }
            }
            Outcome::Skipped(reason) => eprintln!("► {} skipped: {reason}", unit.id()),
            Outcome::Failed(_) => {}
        }
    }
    for failure in &failures {
        eprintln!("✗ {failure}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn build_cluster(args: &BuildClusterArgs) -> anyhow::Result<ExitCode> {
    let local_sources = parse_local_sources(&args.local_sources)?;
    let options = RenderOptions {
        cluster_path: args.path.clone(),
        root: args.root.clone(),
        strict_substitute: !args.no_strict_substitute,
        local_sources,
        show_secrets: args.show_secrets,
    };
    let decrypt = super::keys::decryptor(&args.age_key_files, &args.pgp_key_files)?;
    let charts = super::charts::renderer();
    let report = render_with(&options, decrypt.as_ref(), charts.as_ref())?;
    match &args.output_dir {
        Some(dir) => write_dir(&report, dir, args.output_format)?,
        None => {
            let mut out = std::io::stdout().lock();
            write_stream(&report, &mut out, args.output_format)?;
        }
    }
    if !args.quiet {
        eprint!("{}", summary(&report));
    }
    Ok(if report.failures().next().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn render_with(
    options: &RenderOptions,
    decrypt: &dyn Decrypt,
    charts: &dyn ChartRenderer,
) -> anyhow::Result<Report> {
    render::render_cluster(options, decrypt, charts)
        .with_context(|| format!("rendering {}", options.cluster_path.display()))
}

/// Prints every rendered unit as YAML documents (with a `# Source:` comment each) or JSON.
pub fn write_stream(
    report: &Report,
    out: &mut dyn Write,
    format: OutputFormat,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => {
            let units: Vec<Value> = report.units.iter().map(unit_json).collect();
            serde_json::to_writer_pretty(&mut *out, &units)?;
            writeln!(out)?;
        }
        OutputFormat::Yaml => {
            for unit in &report.units {
                if let Outcome::Rendered(objects) = &unit.outcome {
                    for (i, object) in objects.iter().enumerate() {
                        writeln!(out, "---")?;
                        if i == 0 {
                            writeln!(out, "# Source: {} ({})", unit.id(), unit.path)?;
                        }
                        out.write_all(flux_kustomize::yaml::to_yaml(object).as_bytes())?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn unit_json(unit: &render::Unit) -> Value {
    let (status, detail, objects) = match &unit.outcome {
        Outcome::Rendered(objects) => ("rendered", Value::Null, objects.clone()),
        Outcome::Skipped(reason) => ("skipped", json!(reason), Vec::new()),
        Outcome::Failed(message) => ("failed", json!(message), Vec::new()),
    };
    json!({
        "kind": unit.kind,
        "namespace": unit.namespace,
        "name": unit.name,
        "path": unit.path,
        "status": status,
        "message": detail,
        "objects": objects,
    })
}

/// Writes `DIR/<kind>/<namespace>/<name>.yaml|json` per rendered unit, each atomically.
fn write_dir(report: &Report, dir: &Path, format: OutputFormat) -> anyhow::Result<()> {
    for unit in &report.units {
        let Outcome::Rendered(objects) = &unit.outcome else {
            continue;
        };
        let folder = dir
            .join(unit.kind.to_ascii_lowercase())
            .join(&unit.namespace);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let (ext, bytes) = match format {
            OutputFormat::Yaml => {
                let mut text = String::new();
                for object in objects {
                    text.push_str("---\n");
                    text.push_str(&flux_kustomize::yaml::to_yaml(object));
                }
                ("yaml", text.into_bytes())
            }
            OutputFormat::Json => ("json", serde_json::to_vec_pretty(objects)?),
        };
        let target = folder.join(format!("{}.{ext}", unit.name));
        let mut temp = tempfile::NamedTempFile::new_in(&folder)?;
        temp.write_all(&bytes)?;
        temp.persist(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// The summary table: one row per unit, aligned like flux's tables.
pub fn summary(report: &Report) -> String {
    let mut rows = vec![[
        "KIND".to_string(),
        "NAMESPACE".to_string(),
        "NAME".to_string(),
        "PATH".to_string(),
        "OBJECTS".to_string(),
        "TIME".to_string(),
        "STATUS".to_string(),
    ]];
    for unit in &report.units {
        let (objects, status) = match &unit.outcome {
            Outcome::Rendered(objects) => (objects.len().to_string(), "rendered".to_string()),
            Outcome::Skipped(reason) => ("-".to_string(), format!("skipped: {reason}")),
            Outcome::Failed(message) => ("-".to_string(), format!("failed: {message}")),
        };
        rows.push([
            unit.kind.to_string(),
            unit.namespace.clone(),
            unit.name.clone(),
            unit.path.clone(),
            objects,
            format!("{:.1}ms", unit.elapsed.as_secs_f64() * 1000.0),
            status,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c < 6 {
                let _ = write!(out, "{cell:<width$}  ", width = widths[c]);
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}
