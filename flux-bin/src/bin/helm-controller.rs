//! `helm-controller`: reconciles HelmReleases with flux-helm.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;

use flux_bin::controllers::common_helm_notify::{
    kube_client, run_as_leader, runtime_namespace, serve_probes, LineLogger,
};
use flux_bin::controllers::helm::{self, HelmOptions, CONTROLLER};
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
    LineLogger::install(runtime);
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
        namespace: (!runtime.watch_all_namespaces).then(runtime_namespace),
        concurrency: runtime.concurrency(4),
        requeue_dependency: runtime.requeue_dependency,
        events_addr: runtime.events_addr.clone(),
        no_cross_namespace_refs: runtime.no_cross_namespace_refs,
        label_selector: runtime.watch_label_selector.clone(),
        ..HelmOptions::default()
    };
    let ctx = helm::context(client.clone(), opts, metrics);
    run_as_leader(&client, CONTROLLER, runtime, &ready, helm::run(ctx)).await
}
