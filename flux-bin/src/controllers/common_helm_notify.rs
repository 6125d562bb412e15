//! Glue shared by helm-controller and notification-controller: dynamic API access by
//! apiVersion/kind, status patches, the probes/metrics server and shutdown on signals.
//! (The lead may fold this into `runtime` when merging.)

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::Client;

use crate::runtime::metrics::Metrics;
use crate::runtime::probes::{self, Endpoints};

/// Splits `group/version` (or `v1`) into its parts.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Resolves the API resource of `apiVersion`/`kind` through discovery.
pub async fn resource_for(client: &Client, api_version: &str, kind: &str) -> Result<ApiResource> {
    let (group, version) = split_api_version(api_version);
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("no API resource for {kind} in {api_version}"))?;
    Ok(resource)
}

/// A namespaced (or cluster-scoped, when `namespace` is empty) dynamic API.
pub fn dynamic_api(client: &Client, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
    if namespace.is_empty() {
        Api::all_with(client.clone(), resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, resource)
    }
}

/// Merge-patches the status subresource of an object.
pub async fn patch_status<K>(api: &Api<K>, name: &str, status: serde_json::Value) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .with_context(|| format!("patching the status of {name}"))?;
    Ok(())
}

/// Starts the `/metrics` and `/healthz`/`/readyz` servers (one server when both addresses
/// are the same). Empty or `0` addresses disable a server.
pub async fn serve_probes(
    metrics_addr: &str,
    health_addr: &str,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for (addr, with_metrics) in [(metrics_addr, true), (health_addr, false)] {
        if addr.is_empty() || addr == "0" {
            continue;
        }
        let socket = crate::runtime::flags::listen_addr(addr).map_err(anyhow::Error::msg)?;
        let endpoints = Endpoints {
            metrics: with_metrics.then(|| Arc::clone(&metrics)),
            ready: Arc::clone(&ready),
        };
        let (local, _task) = probes::serve(socket, endpoints)
            .await
            .with_context(|| format!("binding {addr}"))?;
        bound.push(local);
    }
    Ok(bound)
}

/// A client from `--kubeconfig`/`KUBECONFIG`, or the in-cluster configuration.
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<Client> {
    // kube's TLS stack needs a process-wide rustls provider; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::incluster().context("in-cluster configuration")?,
    };
    Client::try_from(config).context("building the Kubernetes client")
}

/// The controller's own namespace (`RUNTIME_NAMESPACE`, as Flux's deployments set it).
pub fn runtime_namespace() -> String {
    std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".into())
}

/// Holds leadership while `run` runs: waits for the Lease when election is enabled, stops
/// when leadership is lost or on SIGINT/SIGTERM, and releases the Lease on the way out.
/// Returns an error when `run` ends by itself or leadership is lost.
pub async fn run_as_leader<F>(
    client: &Client,
    controller: &str,
    flags: &crate::runtime::flags::RuntimeFlags,
    ready: &AtomicBool,
    run: F,
) -> Result<()>
where
    F: std::future::Future<Output = ()>,
{
    let leadership = flags
        .enable_leader_election
        .then(|| Leadership::new(client, &runtime_namespace(), controller, flags));
    if let Some(leadership) = &leadership {
        tokio::select! {
            () = leadership.acquire() => {}
            () = shutdown_signal() => return Ok(()),
        }
    }
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let kept = async {
        match &leadership {
            Some(leadership) => leadership.keep().await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        () = run => Err(anyhow::anyhow!("{controller}: the controller loop ended")),
        () = kept => Err(anyhow::anyhow!("{controller}: leader election lost")),
        () = shutdown_signal() => Ok(()),
    };
    if let Some(leadership) = &leadership {
        if flags.leader_election_release_on_cancel {
            leadership.release().await;
        }
    }
    result
}

/// Leader election on the coordination Lease `<controller>-leader-election` in `namespace`
/// (`--enable-leader-election`): [`Leadership::acquire`] waits until this process holds the
/// Lease; [`Leadership::keep`] renews it every retry period and returns when it is lost
/// (renew deadline passed), so the binary can exit as Flux's controllers do.
pub struct Leadership {
    elector: crate::runtime::leader::LeaderElector,
    renew_deadline: std::time::Duration,
    retry_period: std::time::Duration,
}

impl Leadership {
    /// An elector for `controller` with the runtime flags' timings.
    pub fn new(
        client: &Client,
        namespace: &str,
        controller: &str,
        flags: &crate::runtime::flags::RuntimeFlags,
    ) -> Self {
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("{controller}-{}", std::process::id()));
        let api: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(client.clone(), namespace);
        Leadership {
            elector: crate::runtime::leader::LeaderElector::new(
                api,
                &crate::runtime::flags::lease_name(controller),
                &identity,
                flags.leader_election_lease_duration,
            ),
            renew_deadline: flags.leader_election_renew_deadline,
            retry_period: flags.leader_election_retry_period,
        }
    }

    /// Waits until the Lease is ours.
    pub async fn acquire(&self) {
        loop {
            match self.elector.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!("leader election: {e}"),
            }
            tokio::time::sleep(self.retry_period).await;
        }
    }

    /// Renews until a renewal has failed for longer than the renew deadline.
    pub async fn keep(&self) {
        let mut last_renewed = std::time::Instant::now();
        loop {
            tokio::time::sleep(self.retry_period).await;
            match self.elector.try_acquire_or_renew().await {
                Ok(true) => last_renewed = std::time::Instant::now(),
                Ok(false) => return,
                Err(e) => tracing::warn!("leader election renew: {e}"),
            }
            if last_renewed.elapsed() > self.renew_deadline {
                return;
            }
        }
    }

    /// Gives the Lease up (on shutdown).
    pub async fn release(&self) {
        if let Err(e) = self.elector.release().await {
            tracing::warn!("releasing the leader Lease: {e}");
        }
    }
}

/// A small `tracing` subscriber for the controller binaries: one line per event on stderr,
/// JSON (`--log-encoding json`, Flux's default: `level`, `ts`, `msg` plus the event's fields)
/// or console text, filtered by `--log-level`. Spans are not tracked.
pub struct LineLogger {
    max: tracing::Level,
    json: bool,
}

impl LineLogger {
    /// Installs the logger as the global subscriber (once; later calls do nothing).
    pub fn install(flags: &crate::runtime::flags::RuntimeFlags) {
        use crate::runtime::flags::{LogEncoding, LogLevel};
        let max = match flags.log_level {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Error => tracing::Level::ERROR,
        };
        let logger = LineLogger {
            max,
            json: flags.log_encoding == LogEncoding::Json,
        };
        let _ = tracing::subscriber::set_global_default(logger);
    }

    /// Formats one event line (pure, for tests).
    pub fn format(
        &self,
        level: &tracing::Level,
        target: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
        ts: &str,
    ) -> String {
        let message = fields
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        if self.json {
            let mut line = serde_json::Map::new();
            line.insert("level".into(), level.as_str().to_lowercase().into());
            line.insert("ts".into(), ts.into());
            line.insert("logger".into(), target.into());
            line.insert("msg".into(), message.into());
            for (k, v) in fields {
                if k != "message" {
                    line.insert(k.clone(), v.clone());
                }
            }
            serde_json::Value::Object(line).to_string()
        } else {
            let rest: Vec<String> = fields
                .iter()
                .filter(|(k, _)| *k != "message")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{ts} {level} {target} {message} {}", rest.join(" "))
                .trim_end()
                .to_string()
        }
    }
}

struct FieldVisitor(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for FieldVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

impl tracing::Subscriber for LineLogger {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut visitor = FieldVisitor(serde_json::Map::new());
        event.record(&mut visitor);
        let ts = k8s_openapi::jiff::Timestamp::now().to_string();
        let line = self.format(
            event.metadata().level(),
            event.metadata().target(),
            &visitor.0,
            &ts,
        );
        eprintln!("{line}");
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

/// The current time as a metav1 `Time`.
pub fn now_time() -> flux_api::meta::Time {
    flux_api::meta::Time(k8s_openapi::jiff::Timestamp::now())
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leadership_is_exclusive_until_released() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            runtime: crate::runtime::flags::RuntimeFlags,
        }
        let env = flux_testenv::TestEnv::start().await.unwrap();
        env.create_yaml(
            "ns",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: flux-system}\n",
        )
        .unwrap();
        let client = env.client().unwrap();
        let flags = Flags::parse_from(["x", "--leader-election-retry-period=50ms"]).runtime;
        let first = Leadership::new(&client, "flux-system", "helm-controller", &flags);
        first.acquire().await;
        let mut second = Leadership::new(&client, "flux-system", "helm-controller", &flags);
        second.elector = crate::runtime::leader::LeaderElector::new(
            Api::namespaced(client.clone(), "flux-system"),
            "helm-controller-leader-election",
            "someone-else",
            flags.leader_election_lease_duration,
        );
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(300), second.acquire()).await;
        assert!(blocked.is_err(), "the Lease is held by the first process");
        first.release().await;
        tokio::time::timeout(std::time::Duration::from_secs(5), second.acquire())
            .await
            .expect("acquired after release");
    }

    #[test]
    fn log_lines() {
        let mut fields = serde_json::Map::new();
        fields.insert("message".into(), "installed".into());
        fields.insert("name".into(), "demo".into());
        let json = LineLogger {
            max: tracing::Level::INFO,
            json: true,
        };
        let line: serde_json::Value = serde_json::from_str(&json.format(
            &tracing::Level::INFO,
            "helm",
            &fields,
            "2026-11-23T07:00:00Z",
        ))
        .unwrap();
        assert_eq!(line["level"], "info");
        assert_eq!(line["msg"], "installed");
        assert_eq!(line["name"], "demo");
        assert_eq!(line["ts"], "2026-11-23T07:00:00Z");
        let text = LineLogger {
            max: tracing::Level::INFO,
            json: false,
        };
        assert_eq!(
            text.format(&tracing::Level::WARN, "helm", &fields, "t"),
            "t WARN helm installed name=\"demo\""
        );
    }

    #[test]
    fn api_versions_split() {
        assert_eq!(
            split_api_version("source.toolkit.fluxcd.io/v1"),
            ("source.toolkit.fluxcd.io", "v1")
        );
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
