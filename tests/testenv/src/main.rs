//! `flux-testenv --kubeconfig FILE [--port N]`: runs the test API server until killed.

use clap::Parser;
use std::path::PathBuf;

/// A Kubernetes-API-compatible in-memory test server.
#[derive(Parser)]
#[command(name = "flux-testenv", version)]
struct Args {
    /// Where to write a kubeconfig pointing at the server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Port on 127.0.0.1 (0 = random).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Make Deployments/StatefulSets/DaemonSets/Jobs report ready.
    #[arg(long)]
    workloads_ready: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let env = match flux_testenv::TestEnv::start_on(args.port).await {
        Ok(env) => env,
        Err(e) => {
            eprintln!("flux-testenv: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Err(e) = env.write_kubeconfig(&args.kubeconfig) {
        eprintln!("flux-testenv: {e}");
        return std::process::ExitCode::FAILURE;
    }
    env.set_workloads_ready(args.workloads_ready);
    println!("{}", env.url());
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
