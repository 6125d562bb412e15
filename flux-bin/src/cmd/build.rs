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
    }
}

fn build_cluster(args: &BuildClusterArgs) -> anyhow::Result<ExitCode> {
    let mut local_sources = BTreeMap::new();
    for mapping in &args.local_sources {
        let Some((key, path)) = mapping.split_once('=') else {
            bail!("--local-source {mapping:?}: expected Kind/namespace/name=PATH");
        };
        if key.split('/').count() != 3 {
            bail!("--local-source {mapping:?}: the source must be Kind/namespace/name");
        }
        local_sources.insert(key.to_string(), PathBuf::from(path));
    }
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
