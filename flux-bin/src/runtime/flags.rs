//! Flux's common controller flags (`fluxcd/pkg/runtime`), spelled and defaulted as Flux does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

/// Log verbosity (`--log-level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debug and above.
    Debug,
    /// Info and above.
    #[default]
    Info,
    /// Errors only.
    Error,
}

/// Log format (`--log-encoding`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogEncoding {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable text.
    Console,
}

/// Flags every Flux controller accepts.
#[derive(Clone, Debug, Args)]
pub struct RuntimeFlags {
    /// Path to a kubeconfig; in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Address the Prometheus metrics endpoint binds to.
    #[arg(long, default_value = ":8080")]
    pub metrics_addr: String,
    /// Address the health (`/healthz`) and readiness (`/readyz`) probes bind to.
    #[arg(long, default_value = ":9440")]
    pub health_addr: String,
    /// URL events are posted to (the notification-controller); empty disables posting.
    #[arg(long, default_value = "")]
    pub events_addr: String,
    /// Number of concurrent reconciles per kind (controller-specific default when unset).
    #[arg(long)]
    pub concurrent: Option<usize>,
    /// Watch every namespace; `false` watches only `RUNTIME_NAMESPACE`.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub watch_all_namespaces: bool,
    /// Only reconcile objects matching this label selector (sharding).
    #[arg(long, default_value = "")]
    pub watch_label_selector: String,
    /// ConfigMaps/Secrets matching this selector trigger reconciles of their referrers.
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,
    /// Elect a leader on a coordination Lease before reconciling.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_leader_election: bool,
    /// How long a Lease is valid without renewal.
    #[arg(long, default_value = "35s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps trying to renew before giving up leadership.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub leader_election_renew_deadline: Duration,
    /// Interval between acquire/renew attempts.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub leader_election_retry_period: Duration,
    /// Release the Lease on shutdown.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_election_release_on_cancel: bool,
    /// Requeue delay while a dependency or artifact is not ready.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub requeue_dependency: Duration,
    /// Minimum failure backoff.
    #[arg(long, default_value = "750ms", value_parser = parse_duration)]
    pub min_retry_delay: Duration,
    /// Maximum failure backoff.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub max_retry_delay: Duration,
    /// Jitter applied to `interval` requeues, in percent (< 100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(0..100))]
    pub interval_jitter_percentage: u8,
    /// Refuse references to objects in other namespaces.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_cross_namespace_refs: bool,
    /// Service account impersonated when an object names none.
    #[arg(long, default_value = "")]
    pub default_service_account: String,
    /// Log verbosity.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogEncoding::Json)]
    pub log_encoding: LogEncoding,
}

impl RuntimeFlags {
    /// `--concurrent`, or the controller's default (source 2, others 4).
    pub fn concurrency(&self, controller_default: usize) -> usize {
        self.concurrent.unwrap_or(controller_default).max(1)
    }
}

/// Parses a Go duration flag value (`30s`, `1m30s`, `750ms`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    flux_api::duration::parse(value).map_err(|e| e.to_string())
}

/// Turns a Go listen address (`:8080`, `127.0.0.1:9440`) into a socket address; an empty host
/// means every interface.
pub fn listen_addr(value: &str) -> Result<SocketAddr, String> {
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else {
        value.to_string()
    };
    full.parse()
        .map_err(|e| format!("invalid listen address {value:?}: {e}"))
}

/// The watch configuration of a controller's primary kinds: only objects matching
/// `--watch-label-selector` (sharding) when it is set.
pub fn primary_watch_config(watch_label_selector: &str) -> kube::runtime::watcher::Config {
    let config = kube::runtime::watcher::Config::default();
    if watch_label_selector.is_empty() {
        config
    } else {
        config.labels(watch_label_selector)
    }
}

/// Name of the leader-election Lease of a controller.
pub fn lease_name(controller: &str) -> String {
    format!("{controller}-leader-election")
}

/// The Lease name of one shard: with `--watch-label-selector` set, Flux suffixes the name
/// with the first 8 hex digits of the selector's sha256 (`leaderelection.GenerateID`), so
/// shards elect leaders independently.
pub fn shard_lease_name(controller: &str, watch_label_selector: &str) -> String {
    use sha2::Digest as _;
    let base = lease_name(controller);
    if watch_label_selector.is_empty() {
        return base;
    }
    let digest = hex::encode(sha2::Sha256::digest(watch_label_selector.as_bytes()));
    format!("{base}-{}", &digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: RuntimeFlags,
    }

    fn parse(args: &[&str]) -> RuntimeFlags {
        let mut argv = vec!["controller"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("valid flags").flags
    }

    #[test]
    fn defaults_match_flux() {
        let flags = parse(&[]);
        assert_eq!(flags.metrics_addr, ":8080");
        assert_eq!(flags.health_addr, ":9440");
        assert!(flags.watch_all_namespaces && !flags.enable_leader_election);
        assert_eq!(
            flags.leader_election_lease_duration,
            Duration::from_secs(35)
        );
        assert_eq!(flags.min_retry_delay, Duration::from_millis(750));
        assert_eq!(flags.max_retry_delay, Duration::from_secs(900));
        assert_eq!(flags.interval_jitter_percentage, 5);
        assert_eq!(
            (flags.log_level, flags.log_encoding),
            (LogLevel::Info, LogEncoding::Json)
        );
        assert_eq!(flags.concurrency(2), 2);
    }

    #[test]
    fn go_style_flags_parse() {
        let flags = parse(&[
            "--watch-all-namespaces=false",
            "--enable-leader-election",
            "--concurrent=8",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--requeue-dependency=5s",
            "--log-level=debug",
        ]);
        assert!(!flags.watch_all_namespaces && flags.enable_leader_election);
        assert_eq!(flags.concurrency(4), 8);
        assert_eq!(flags.requeue_dependency, Duration::from_secs(5));
        assert_eq!(flags.log_level, LogLevel::Debug);
        assert!(Cli::try_parse_from(["c", "--interval-jitter-percentage=100"]).is_err());
        assert!(Cli::try_parse_from(["c", "--min-retry-delay=soon"]).is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            listen_addr(":8080").map(|a| a.to_string()),
            Ok("0.0.0.0:8080".to_string())
        );
        assert_eq!(listen_addr("127.0.0.1:9440").map(|a| a.port()), Ok(9440));
        assert!(listen_addr("nowhere").is_err());
        assert_eq!(
            lease_name("kustomize-controller"),
            "kustomize-controller-leader-election"
        );
        // fluxcd/pkg's GenerateID("foo", "bar") is "foo-fcde2b2e" (sha256("bar")).
        assert_eq!(
            shard_lease_name("kustomize-controller", ""),
            lease_name("kustomize-controller")
        );
        assert_eq!(
            shard_lease_name("kustomize-controller", "bar"),
            "kustomize-controller-leader-election-fcde2b2e"
        );
    }
}
