//! `notification-controller`: Flux's event endpoint, Alert dispatch and webhook receivers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;

use flux_bin::controllers::common::runtime_namespace;
use flux_bin::controllers::notification::{self, NotificationOptions, CONTROLLER};
use flux_bin::runtime::flags::{listen_addr, parse_duration, RuntimeFlags};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve;

#[derive(Parser)]
#[command(name = "notification-controller", version)]
struct Flags {
    #[command(flatten)]
    runtime: RuntimeFlags,
    /// Address of the webhook receiver server.
    #[arg(long = "receiverAddr", default_value = ":9292")]
    receiver_addr: String,
    /// Interval within which duplicate events are discarded.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    rate_limit_interval: Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let flags = Flags::parse();
    let runtime = &flags.runtime;
    serve::init_logging(runtime.log_level, runtime.log_encoding);
    // Here `--events-addr` is where events are received (Flux's default `:9090`).
    let events = if runtime.events_addr.is_empty() {
        ":9090"
    } else {
        runtime.events_addr.as_str()
    };
    let client = serve::client(runtime).await?;
    let opts = NotificationOptions {
        events_addr: listen_addr(events).map_err(anyhow::Error::msg)?,
        receiver_addr: listen_addr(&flags.receiver_addr).map_err(anyhow::Error::msg)?,
        namespace: (!runtime.watch_all_namespaces).then(runtime_namespace),
        rate_limit_interval: flags.rate_limit_interval,
        no_cross_namespace_refs: runtime.no_cross_namespace_refs,
        resync: Duration::from_secs(60),
    };
    serve::run(
        CONTROLLER,
        runtime,
        client.clone(),
        Arc::new(Metrics::default()),
        |shutdown| async move {
            let mut controller = notification::start(client, opts)
                .await
                .context("starting notification-controller")?;
            tokio::select! {
                () = controller.wait() => {
                    Err(anyhow::anyhow!("{CONTROLLER}: the controller loop ended"))
                }
                () = shutdown.wait() => Ok(()),
            }
        },
    )
    .await
}
