//! `helm-controller`: reconciles HelmReleases with flux-helm.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;

use flux_bin::controllers::common_helm_notify::{kube_client, serve_probes, shutdown_signal};
use flux_bin::controllers::helm::{self, HelmOptions};
use flux_bin::runtime::flags::RuntimeFlags;
use flux_bin::runtime::metrics::Metrics;

#[derive(Parser)]
#[command(name = "helm-controller", version)]
struct Flags {
    #[command(flatten)]
    runtime: RuntimeFlags,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let flags = Flags::parse();
    let runtime = &flags.runtime;
    let client = kube_client(runtime.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    serve_probes(
        &runtime.metrics_addr,
        &runtime.health_addr,
        Arc::clone(&metrics),
        Arc::clone(&ready),
    )
    .await?;
    let opts = HelmOptions {
        namespace: (!runtime.watch_all_namespaces)
            .then(|| std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".into())),
        concurrency: runtime.concurrency(4),
        requeue_dependency: runtime.requeue_dependency,
        events_addr: runtime.events_addr.clone(),
        no_cross_namespace_refs: runtime.no_cross_namespace_refs,
        ..HelmOptions::default()
    };
    let ctx = helm::context(client, opts, metrics);
    ready.store(true, Ordering::SeqCst);
    tokio::select! {
        () = helm::run(ctx) => anyhow::bail!("the HelmRelease watch ended"),
        () = shutdown_signal() => {}
    }
    Ok(())
}
