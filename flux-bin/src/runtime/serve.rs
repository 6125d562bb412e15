//! The glue every controller binary shares: the Kubernetes client from `--kubeconfig` /
//! in-cluster config, the metrics and probe servers, leader election with a renew loop,
//! graceful shutdown on SIGINT/SIGTERM, JSON or console logs, and an [`EventSink`] that
//! records Kubernetes Events and posts Flux events to `--events-addr`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;

use super::events::{
    build_event, EventInput, EventPoster, EventType, InvolvedObject, KubeEventRecorder,
};
use super::flags::{listen_addr, shard_lease_name, LogEncoding, LogLevel, RuntimeFlags};
use super::leader::LeaderElector;
use super::metrics::Metrics;
use super::probes::{self, Endpoints};

/// Records events about Flux objects: a Kubernetes Event and, for Normal/Warning, a POST to
/// the notification-controller. Both are sent from background tasks so a slow or absent
/// receiver never delays a reconcile.
#[derive(Clone)]
pub struct EventSink {
    recorder: Option<Arc<KubeEventRecorder>>,
    poster: Option<EventPoster>,
    controller: String,
    instance: String,
}

impl EventSink {
    /// A sink for `controller`; `events_addr` empty disables posting, `client` `None`
    /// disables Kubernetes Events.
    pub fn new(client: Option<kube::Client>, controller: &str, events_addr: &str) -> Self {
        let instance = std::env::var("POD_NAME").unwrap_or_default();
        EventSink {
            recorder: client.map(|c| Arc::new(KubeEventRecorder::new(c, controller, &instance))),
            poster: EventPoster::new(events_addr),
            controller: controller.to_string(),
            instance,
        }
    }

    /// Records one event about `object`; `metadata` keys are suffixes (`revision`, ...).
    pub fn emit<K>(
        &self,
        object: &K,
        event_type: EventType,
        reason: &str,
        message: &str,
        metadata: BTreeMap<String, String>,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let involved = InvolvedObject {
            kind: K::kind(&()).to_string(),
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            uid: object.meta().uid.clone().unwrap_or_default(),
            api_version: K::api_version(&()).to_string(),
            resource_version: object.meta().resource_version.clone().unwrap_or_default(),
        };
        tracing::info!(
            kind = %involved.kind, namespace = %involved.namespace, name = %involved.name,
            reason, severity = event_type.severity(), "{message}"
        );
        if let Some(poster) = &self.poster {
            let input = EventInput {
                object: &involved,
                annotations: Some(object.annotations()),
                event_type,
                reason,
                message,
                metadata: &metadata,
                controller: &self.controller,
                instance: &self.instance,
            };
            if let Some(event) = build_event(&input, Timestamp::now()) {
                let poster = poster.clone();
                tokio::spawn(async move {
                    if let Err(error) = poster.post(&event).await {
                        tracing::debug!(%error, "event not delivered");
                    }
                });
            }
        }
        if let Some(recorder) = &self.recorder {
            let recorder = Arc::clone(recorder);
            let reference = object.object_ref(&());
            let (reason, message) = (reason.to_string(), message.to_string());
            tokio::spawn(async move {
                if let Err(error) = recorder
                    .record(&reference, event_type, &reason, &message)
                    .await
                {
                    tracing::debug!(%error, "kubernetes event not recorded");
                }
            });
        }
    }
}

/// Installs the process-wide tracing subscriber from `--log-level` / `--log-encoding`.
pub fn init_logging(level: LogLevel, encoding: LogEncoding) {
    let max = match level {
        LogLevel::Trace => tracing::Level::TRACE,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Error => tracing::Level::ERROR,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(max)
        .with_writer(std::io::stderr);
    let _ = match encoding {
        LogEncoding::Json => builder.json().flatten_event(true).try_init(),
        LogEncoding::Console => builder.try_init(),
    };
}

/// A Kubernetes client from `--kubeconfig` (or `KUBECONFIG`), else in-cluster config.
pub async fn client(flags: &RuntimeFlags) -> anyhow::Result<kube::Client> {
    // rustls needs a process-wide provider; ring is the only one compiled in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match &flags.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
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

/// A shutdown signal shared by every task of a process.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            sender: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Asks everything to stop.
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }

    /// Resolves once [`Shutdown::trigger`] was called.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }
}

/// Runs a controller process: serves `/metrics` and the probes, waits for leadership when
/// `--enable-leader-election` (renewing in the background and stopping if it is lost),
/// then runs `controller` until it returns or a signal arrives.
pub async fn run<F, Fut>(
    name: &str,
    flags: &RuntimeFlags,
    client: kube::Client,
    metrics: Arc<Metrics>,
    controller: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let ready = Arc::new(AtomicBool::new(false));
    let metrics_addr = listen_addr(&flags.metrics_addr).map_err(anyhow::Error::msg)?;
    let health_addr = listen_addr(&flags.health_addr).map_err(anyhow::Error::msg)?;
    let (_, metrics_task) = probes::serve(
        metrics_addr,
        Endpoints {
            metrics: Some(Arc::clone(&metrics)),
            ready: Arc::new(AtomicBool::new(true)),
        },
    )
    .await?;
    let (_, health_task) = probes::serve(
        health_addr,
        Endpoints {
            metrics: None,
            ready: Arc::clone(&ready),
        },
    )
    .await?;
    let shutdown = Shutdown::default();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown signal received");
            shutdown.trigger();
        });
    }
    let elector = if flags.enable_leader_election {
        let namespace = std::env::var("RUNTIME_NAMESPACE")
            .unwrap_or_else(|_| client.default_namespace().to_string());
        let identity = format!(
            "{}_{}",
            std::env::var("POD_NAME").unwrap_or_else(|_| name.to_string()),
            std::process::id()
        );
        let elector = Arc::new(LeaderElector::new(
            Api::<Lease>::namespaced(client.clone(), &namespace),
            &shard_lease_name(name, &flags.watch_label_selector),
            &identity,
            flags.leader_election_lease_duration,
        ));
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            if elector.try_acquire_or_renew().await.unwrap_or(false) {
                break;
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(flags.leader_election_retry_period) => {}
            }
        }
        tracing::info!(lease = %shard_lease_name(name, &flags.watch_label_selector), "leadership acquired");
        spawn_renewal(
            Arc::clone(&elector),
            flags.leader_election_retry_period,
            flags.leader_election_renew_deadline,
            shutdown.clone(),
        );
        Some(elector)
    } else {
        None
    };
    ready.store(true, Ordering::SeqCst);
    let result = controller(shutdown.clone()).await;
    shutdown.trigger();
    if let Some(elector) = elector {
        if flags.leader_election_release_on_cancel {
            let _ = elector.release().await;
        }
    }
    metrics_task.abort();
    health_task.abort();
    result
}

/// Renews the Lease every `period`; when no renewal succeeded for `deadline`, leadership is
/// lost and the process stops (as controller-runtime does).
fn spawn_renewal(
    elector: Arc<LeaderElector>,
    period: Duration,
    deadline: Duration,
    shutdown: Shutdown,
) {
    tokio::spawn(async move {
        let mut last_renewed = tokio::time::Instant::now();
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(period) => {}
            }
            if elector.try_acquire_or_renew().await.unwrap_or(false) {
                last_renewed = tokio::time::Instant::now();
            } else if last_renewed.elapsed() > deadline {
                tracing::error!("leader election lost");
                shutdown.trigger();
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_reaches_every_waiter() {
        let shutdown = Shutdown::default();
        let first = tokio::spawn(shutdown.wait());
        let second = tokio::spawn(shutdown.wait());
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), async {
            first.await.expect("first");
            second.await.expect("second");
        })
        .await
        .expect("both waiters woke up");
        // A waiter created after the trigger resolves at once.
        tokio::time::timeout(Duration::from_secs(1), shutdown.wait())
            .await
            .expect("late waiter");
    }
}
