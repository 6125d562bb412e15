//! `flux-rs kustomize build DIR`: print what `kustomize build` prints.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use flux_kustomize::{build_with, BuildOptions, DiskFs, LoadRestrictor};

/// `flux-rs kustomize` subcommands.
#[derive(Debug, Subcommand)]
pub enum KustomizeCommand {
    /// Build a kustomization directory and print the resources as multi-document YAML.
    Build {
        /// The directory holding kustomization.yaml.
        dir: PathBuf,
        /// Which files kustomizations may read.
        #[arg(long, value_enum, default_value = "LoadRestrictionsRootOnly")]
        load_restrictor: Restrictor,
    },
}

/// kustomize's `--load-restrictor` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Restrictor {
    /// Files must be in or below the kustomization's directory.
    #[value(name = "LoadRestrictionsRootOnly")]
    RootOnly,
    /// Any file may be read.
    #[value(name = "LoadRestrictionsNone")]
    None,
}

/// Runs a `kustomize` subcommand, writing the output to `out`.
pub fn run(command: &KustomizeCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        KustomizeCommand::Build {
            dir,
            load_restrictor,
        } => {
            let dir =
                std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
            let options = BuildOptions {
                load_restrictor: match load_restrictor {
                    Restrictor::RootOnly => LoadRestrictor::RootOnly,
                    Restrictor::None => LoadRestrictor::None,
                },
            };
            // Bases may live anywhere (as with kustomize); the load restrictor guards files.
            let fs = DiskFs::unrestricted();
            let list = build_with(&fs, &dir, &options)
                .with_context(|| format!("building {}", dir.display()))?;
            out.write_all(list.to_yaml().as_bytes())?;
            Ok(())
        }
    }
}
