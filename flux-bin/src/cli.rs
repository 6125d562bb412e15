//! Top-level argument parsing and dispatch for `flux-rs`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;

/// flux-rs: the Flux GitOps toolkit in Rust.
///
/// Renders whole Flux repositories offline (build cluster), and builds kustomizations, renders
/// Helm charts, decrypts and encrypts SOPS files, fetches sources and previews notifications
/// the way Flux's controllers do.
#[derive(Debug, Parser)]
#[command(name = "flux-rs", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups. Each lives in its own module under `cmd/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version of flux-rs.
    Version,
    /// Render Flux objects offline (build cluster).
    #[command(subcommand)]
    Build(cmd::build::BuildCommand),
    /// Compare a render with a previous one or another git revision (exit 1 on differences).
    #[command(subcommand)]
    Diff(cmd::diff::DiffCommand),
    /// Print the install manifests (CRDs, RBAC, controllers, NetworkPolicies) with --export.
    Install(cmd::install::InstallArgs),
    /// Substitute ${var} expressions in stdin from environment variables (Flux's grammar).
    Envsubst(cmd::envsubst::EnvsubstArgs),
    /// Generate shell completions (bash, zsh, fish, powershell, elvish).
    Completion {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
    /// Build kustomizations the way `kustomize build` does.
    Kustomize {
        #[command(subcommand)]
        command: cmd::kustomize::KustomizeCommand,
    },
    /// Helm chart operations (render charts like `helm template`).
    #[command(subcommand)]
    Helm(cmd::helm::HelmCommand),
    /// Decrypt or encrypt SOPS files (compatible with sops 3.11; age and PGP keys).
    Sops {
        #[command(subcommand)]
        command: cmd::sops::SopsCommand,
    },
    /// Notifications: receiver webhook paths, provider payload previews, event/receiver servers.
    #[command(subcommand)]
    Notify(cmd::notify::NotifyCommand),
    /// `source pull …`, `push artifact`, `pull artifact`.
    #[command(flatten)]
    Source(cmd::source::Commands),
    /// Print the status of Flux objects in a cluster (sources, kustomizations, helmreleases, ...).
    Get(cmd::get::GetArgs),
    /// Ask the controllers to reconcile an object now and wait for the result.
    Reconcile(cmd::reconcile::ReconcileArgs),
    /// Suspend the reconciliation of Flux objects.
    Suspend(cmd::reconcile::SuspendArgs),
    /// Resume suspended Flux objects and wait for them to become Ready.
    Resume(cmd::reconcile::SuspendArgs),
    /// Check the cluster: prerequisites, Flux CRDs, controllers.
    Check(cmd::check::CheckArgs),
    /// Create or update Flux objects from flags (print them with --export).
    Create(cmd::create::CreateArgs),
    /// Print Flux objects of a cluster as clean YAML.
    Export(cmd::create::ExportArgs),
    /// Show the Kubernetes Events of Flux objects.
    Events(cmd::events::EventsArgs),
    /// Show the Flux controllers' logs.
    Logs(cmd::logs::LogsArgs),
    /// Show the objects a Kustomization manages, as a tree.
    Tree(cmd::tree::TreeArgs),
    /// Commit flux-system/ to a Git repository and install Flux syncing from it.
    Bootstrap(cmd::bootstrap::BootstrapArgs),
}

/// Parses the process arguments, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("✗ {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Version => {
            println!("flux-rs {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(command) => cmd::build::run(command),
        Command::Diff(command) => Ok(cmd::diff::run(&command)),
        Command::Install(args) => {
            cmd::install::run(&args, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Envsubst(args) => {
            cmd::envsubst::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completion { shell } => {
            cmd::completion::write(shell, &mut Cli::command(), &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Kustomize { command } => {
            cmd::kustomize::run(&command, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Helm(helm) => {
            cmd::helm::run(&helm, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sops { command } => cmd::sops::run(command),
        Command::Notify(command) => {
            cmd::notify::run(command, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Source(command) => cmd::source::run(command, &mut std::io::stdout()),
        Command::Get(args) => cmd::get::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Reconcile(args) => cmd::reconcile::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Suspend(args) => cmd::reconcile::suspend(&args).map(|()| ExitCode::SUCCESS),
        Command::Resume(args) => cmd::reconcile::resume(&args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => cmd::check::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Create(args) => cmd::create::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => cmd::create::export(&args).map(|()| ExitCode::SUCCESS),
        Command::Events(args) => cmd::events::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Logs(args) => cmd::logs::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Tree(args) => cmd::tree::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bootstrap(args) => cmd::bootstrap::run(&args).map(|()| ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// clap checks every command's flags for clashes (ids, long/short names) only here.
    #[test]
    fn whole_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
