//! kustomize-controller: builds and applies Kustomizations.

use std::sync::Arc;

use clap::Parser;
use flux_bin::controllers::kustomize::{self, KustomizeContext, KustomizeOptions};
use flux_bin::runtime::access::{AccessOptions, KubeConfigFlags};
use flux_bin::runtime::flags::RuntimeFlags;
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve;

#[derive(Parser)]
#[command(
    name = "kustomize-controller",
    version,
    about = "Flux kustomize-controller (flux-rs)"
)]
struct Cli {
    #[command(flatten)]
    flags: RuntimeFlags,
    /// Retries of artifact downloads.
    #[arg(long, default_value_t = 9)]
    http_retry: u32,
    #[command(flatten)]
    kubeconfig_flags: KubeConfigFlags,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    serve::init_logging(cli.flags.log_level, cli.flags.log_encoding);
    let client = serve::client(&cli.flags).await?;
    let options = KustomizeOptions {
        namespace: if cli.flags.watch_all_namespaces {
            None
        } else {
            std::env::var("RUNTIME_NAMESPACE").ok()
        },
        concurrency: u16::try_from(cli.flags.concurrency(4)).unwrap_or(u16::MAX),
        jitter_percentage: cli.flags.interval_jitter_percentage,
        requeue_dependency: cli.flags.requeue_dependency,
        no_cross_namespace_refs: cli.flags.no_cross_namespace_refs,
        http_retry: cli.http_retry,
        label_selector: cli.flags.watch_label_selector.clone(),
        access: AccessOptions::from_flags(
            &cli.flags.default_service_account,
            &cli.kubeconfig_flags,
        ),
        ..KustomizeOptions::default()
    };
    let metrics = Arc::new(Metrics::default());
    let context = KustomizeContext::new(
        client.clone(),
        Arc::clone(&metrics),
        &cli.flags.events_addr,
        options,
    )?;
    serve::run(
        kustomize::CONTROLLER,
        &cli.flags,
        client,
        metrics,
        |shutdown| kustomize::run(context, shutdown.wait()),
    )
    .await
}
