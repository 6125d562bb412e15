//! `flux-rs helm template`: renders a chart like `helm template`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Helm commands.
#[derive(Debug, Subcommand)]
pub enum HelmCommand {
    /// Render a chart's templates locally, like `helm template`.
    Template(TemplateArgs),
}

/// Flags of `helm template`.
#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// The release name.
    pub release: String,
    /// The chart directory or `.tgz` archive.
    pub chart: PathBuf,
    /// Values files (later files win).
    #[arg(short = 'f', long = "values")]
    pub values: Vec<PathBuf>,
    /// Values on the command line (`a.b=c,d=e`).
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// The release namespace.
    #[arg(short = 'n', long = "namespace", default_value = "default")]
    pub namespace: String,
    /// Include the chart's `crds/` in the output.
    #[arg(long = "include-crds")]
    pub include_crds: bool,
    /// Skip `values.schema.json` validation.
    #[arg(long = "skip-schema-validation")]
    pub skip_schema_validation: bool,
    /// Kubernetes version for `.Capabilities.KubeVersion`.
    #[arg(long = "kube-version")]
    pub kube_version: Option<String>,
    /// Set `.Release.IsUpgrade` instead of `.Release.IsInstall`.
    #[arg(long = "is-upgrade")]
    pub is_upgrade: bool,
}

/// Runs a helm command, writing the rendered manifests to `out`.
pub fn run(cmd: &HelmCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        HelmCommand::Template(args) => {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            let opts = flux_helm::RenderOptions {
                release_name: args.release.clone(),
                namespace: args.namespace.clone(),
                include_crds: args.include_crds,
                skip_schema_validation: args.skip_schema_validation,
                is_upgrade: args.is_upgrade,
                kube_version: args.kube_version.clone(),
                seed,
            };
            let rendered = flux_helm::template(&args.chart, &args.values, &args.set, &opts)?;
            out.write_all(rendered.as_bytes())?;
            Ok(())
        }
    }
}
