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
    /// Render like Helm 3.17 instead of Helm 4 (document trimming, kind order, nulls, defaults).
    #[arg(long = "helm3")]
    pub helm3: bool,
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
                helm3: args.helm3,
            };
            // Deeply recursive charts need a deep stack; render on a thread that has one.
            let (chart, values, sets) = (args.chart.clone(), args.values.clone(), args.set.clone());
            let rendered = std::thread::Builder::new()
                .name("helm-template".into())
                .stack_size(256 * 1024 * 1024)
                .spawn(move || flux_helm::template(&chart, &values, &sets, &opts))?
                .join()
                .map_err(|_| anyhow::anyhow!("rendering thread panicked"))??;
            out.write_all(rendered.as_bytes())?;
            Ok(())
        }
    }
}
