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
            // The process ends right after printing: freeing thousands of trees would only
            // cost time.
            std::mem::forget(list);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_prints_what_kustomize_prints() {
        let case = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../flux-kustomize/tests/features/generators");
        let command = KustomizeCommand::Build {
            dir: case.join("overlay"),
            load_restrictor: Restrictor::RootOnly,
        };
        let mut out = Vec::new();
        run(&command, &mut out).expect("build");
        let expected = std::fs::read(case.join("expected.yaml")).expect("golden");
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn load_restrictor_flag_allows_outside_files() {
        let case = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../flux-kustomize/tests/features/err-load-restrictor/app");
        let mut out = Vec::new();
        let strict = KustomizeCommand::Build {
            dir: case.clone(),
            load_restrictor: Restrictor::RootOnly,
        };
        assert!(run(&strict, &mut out).is_err());
        let relaxed = KustomizeCommand::Build {
            dir: case,
            load_restrictor: Restrictor::None,
        };
        run(&relaxed, &mut out).expect("build");
        assert!(String::from_utf8_lossy(&out).contains("kind: Deployment"));
    }
}
