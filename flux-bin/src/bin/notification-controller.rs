//! `notification-controller`: Flux's event endpoint, Alert dispatch and webhook receivers.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;

use flux_bin::controllers::common_helm_notify::{
    kube_client, run_as_leader, runtime_namespace, serve_probes, LineLogger,
};
use flux_bin::controllers::notification::{self, NotificationOptions, CONTROLLER};
use flux_bin::runtime::flags::{listen_addr, parse_duration, RuntimeFlags};
use flux_bin::runtime::metrics::Metrics;

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
    LineLogger::install(runtime);
    // Here `--events-addr` is where events are received (Flux's default `:9090`).
    let events = if runtime.events_addr.is_empty() {
        ":9090"
    } else {
        runtime.events_addr.as_str()
    };
    let client = kube_client(runtime.kubeconfig.as_deref()).await?;
    let opts = NotificationOptions {
        events_addr: listen_addr(events).map_err(anyhow::Error::msg)?,
        receiver_addr: listen_addr(&flags.receiver_addr).map_err(anyhow::Error::msg)?,
        namespace: (!runtime.watch_all_namespaces).then(runtime_namespace),
        rate_limit_interval: flags.rate_limit_interval,
        no_cross_namespace_refs: runtime.no_cross_namespace_refs,
        resync: Duration::from_secs(60),
    };
    let ready = Arc::new(AtomicBool::new(false));
    serve_probes(
        &runtime.metrics_addr,
        &runtime.health_addr,
        Arc::new(Metrics::default()),
        Arc::clone(&ready),
    )
    .await?;
    let serve = async {
        match notification::start(client.clone(), opts)
            .await
            .context("starting notification-controller")
        {
            Ok(mut controller) => controller.wait().await,
            Err(e) => eprintln!("{e:#}"),
        }
    };
    run_as_leader(&client, CONTROLLER, runtime, &ready, serve).await
}
