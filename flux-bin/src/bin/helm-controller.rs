//! `helm-controller`: reconciles HelmReleases with flux-helm.

use std::sync::Arc;

use anyhow::Result;
use clap::Parser;

use flux_bin::controllers::common::runtime_namespace;
use flux_bin::controllers::helm::{self, HelmOptions, CONTROLLER};
use flux_bin::runtime::access::{AccessOptions, KubeConfigFlags};
use flux_bin::runtime::flags::RuntimeFlags;
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve;

#[derive(Parser)]
#[command(name = "helm-controller", version)]
struct Flags {
    #[command(flatten)]
    runtime: RuntimeFlags,
    #[command(flatten)]
    kubeconfig: KubeConfigFlags,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let flags = Flags::parse();
    let runtime = &flags.runtime;
    serve::init_logging(runtime.log_level, runtime.log_encoding);
    let client = serve::client(runtime).await?;
    let metrics = Arc::new(Metrics::default());
    let opts = HelmOptions {
        namespace: (!runtime.watch_all_namespaces).then(runtime_namespace),
        concurrency: runtime.concurrency(4),
        requeue_dependency: runtime.requeue_dependency,
        events_addr: runtime.events_addr.clone(),
        no_cross_namespace_refs: runtime.no_cross_namespace_refs,
        label_selector: runtime.watch_label_selector.clone(),
        access: AccessOptions::from_flags(&runtime.default_service_account, &flags.kubeconfig),
        ..HelmOptions::default()
    };
    let ctx = helm::context(client.clone(), opts, Arc::clone(&metrics));
    serve::run(CONTROLLER, runtime, client, metrics, |shutdown| async move {
        tokio::select! {
            () = helm::run(ctx) => Err(anyhow::anyhow!("{CONTROLLER}: the controller loop ended")),
            () = shutdown.wait() => Ok(()),
        }
    })
    .await
}
