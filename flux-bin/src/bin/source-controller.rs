//! source-controller: GitRepository artifacts, stored and served over HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use flux_bin::controllers::source::{self, SourceOptions};
use flux_bin::runtime::flags::{listen_addr, RuntimeFlags};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve;

#[derive(Parser)]
#[command(
    name = "source-controller",
    version,
    about = "Flux source-controller (flux-rs)"
)]
struct Cli {
    #[command(flatten)]
    flags: RuntimeFlags,
    /// Local directory the artifacts are stored in.
    #[arg(long, default_value = "/data")]
    storage_path: PathBuf,
    /// Address the artifact HTTP server binds.
    #[arg(long, default_value = ":9090")]
    storage_addr: String,
    /// Address advertised in artifact URLs (default: the bound address).
    #[arg(long, default_value = "")]
    storage_adv_addr: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    serve::init_logging(cli.flags.log_level, cli.flags.log_encoding);
    let client = serve::client(&cli.flags).await?;
    let mut options = SourceOptions::new(
        cli.storage_path,
        listen_addr(&cli.storage_addr).map_err(anyhow::Error::msg)?,
    );
    options.storage_adv_addr = cli.storage_adv_addr;
    options.concurrency = u16::try_from(cli.flags.concurrency(2)).unwrap_or(u16::MAX);
    options.jitter_percentage = cli.flags.interval_jitter_percentage;
    options.min_retry_delay = cli.flags.min_retry_delay;
    options.max_retry_delay = cli.flags.max_retry_delay;
    options
        .label_selector
        .clone_from(&cli.flags.watch_label_selector);
    if !cli.flags.watch_all_namespaces {
        options.namespace = std::env::var("RUNTIME_NAMESPACE").ok();
    }
    let metrics = Arc::new(Metrics::default());
    let flags = cli.flags.clone();
    serve::run(
        source::CONTROLLER,
        &flags,
        client.clone(),
        Arc::clone(&metrics),
        |shutdown| async move {
            let (context, listener) =
                source::prepare(client, metrics, &cli.flags.events_addr, options).await?;
            source::run(context, listener, shutdown.wait()).await
        },
    )
    .await
}
