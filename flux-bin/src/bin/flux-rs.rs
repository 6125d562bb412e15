//! `flux-rs`: the command-line interface, mirroring the `flux` CLI.

fn main() -> std::process::ExitCode {
    flux_bin::cli::main()
}
