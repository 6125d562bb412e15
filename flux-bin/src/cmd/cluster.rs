//! Shared plumbing of the commands that talk to a cluster (`get`, `reconcile`, `suspend`,
//! `resume`, `check`, `create`, `export`, `events`, `logs`, `tree`, `install`, `bootstrap`):
//! connection flags, the Flux kinds the CLI knows, reading status out of objects, flux's
//! progress lines and its table layout, and the wait-for-reconciliation loop.
//!
//! Everything that decides something (status summaries, tables, wait outcomes) is a pure
//! function over `serde_json::Value`; only [`Cluster`] does I/O.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::{json, Value};

/// The annotation that asks a Flux controller for an immediate reconciliation.
pub const REQUESTED_AT: &str = flux_api::constants::annotation::RECONCILE_REQUESTED_AT;
/// HelmRelease: force a one-off install/upgrade.
pub const FORCE_AT: &str = flux_api::constants::annotation::FORCE_REQUESTED_AT;
/// HelmRelease: reset the remediation retry counters.
pub const RESET_AT: &str = flux_api::constants::annotation::RESET_REQUESTED_AT;
/// The field manager flux uses for its server-side applies.
pub const FIELD_MANAGER: &str = "flux";

/// Connection flags shared by every cluster command (flux's global flags).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes context to use (default: the kubeconfig's current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace scope for this operation.
    #[arg(
        short,
        long,
        global = true,
        env = "FLUX_SYSTEM_NAMESPACE",
        default_value = "flux-system"
    )]
    pub namespace: String,
    /// Timeout for this operation (Go duration: 30s, 5m0s, 1h).
    #[arg(long, global = true, default_value = "5m0s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses a Go duration flag (`--timeout 2m`, `--interval 1m0s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    flux_api::duration::parse(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Formats a duration as Go does (`1m0s`), the form flux writes into specs.
pub fn format_duration(duration: Duration) -> String {
    flux_api::duration::format(duration)
}

/// Runs an async command body on a fresh single-threaded runtime.
pub fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

/// One Flux kind as the CLI addresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FluxKind {
    /// `GitRepository`.
    pub kind: &'static str,
    /// `source.toolkit.fluxcd.io`.
    pub group: &'static str,
    /// `v1`.
    pub version: &'static str,
    /// `gitrepositories`.
    pub plural: &'static str,
    /// How flux's messages name it (`source git`, `kustomization`).
    pub human: &'static str,
    /// Whether the kind has a status with conditions (v1beta3 Alert/Provider do not).
    pub has_status: bool,
}

impl FluxKind {
    /// The dynamic API resource for kube.
    pub fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_string(),
            version: self.version.to_string(),
            api_version: self.api_version(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }

    /// `source.toolkit.fluxcd.io/v1`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The message printed when a reconciliation succeeded (flux's `successMessage`).
    pub fn success_message(&self, object: &Value) -> String {
        let status = &object["status"];
        match self.kind {
            "Kustomization" => format!(
                "applied revision {}",
                status["lastAppliedRevision"].as_str().unwrap_or_default()
            ),
            "HelmRelease" => format!("applied revision {}", revision(self, object)),
            "Receiver" => format!(
                "webhook path {}",
                status["webhookPath"].as_str().unwrap_or_default()
            ),
            _ => format!("fetched revision {}", revision(self, object)),
        }
    }
}

const SOURCE: &str = "source.toolkit.fluxcd.io";
const NOTIFICATION: &str = "notification.toolkit.fluxcd.io";

/// Every kind the cluster commands handle, in `get all` order.
pub const KINDS: [FluxKind; 10] = [
    FluxKind {
        kind: "GitRepository",
        group: SOURCE,
        version: "v1",
        plural: "gitrepositories",
        human: "source git",
        has_status: true,
    },
    FluxKind {
        kind: "OCIRepository",
        group: SOURCE,
        version: "v1",
        plural: "ocirepositories",
        human: "source oci",
        has_status: true,
    },
    FluxKind {
        kind: "HelmRepository",
        group: SOURCE,
        version: "v1",
        plural: "helmrepositories",
        human: "source helm",
        has_status: true,
    },
    FluxKind {
        kind: "HelmChart",
        group: SOURCE,
        version: "v1",
        plural: "helmcharts",
        human: "source chart",
        has_status: true,
    },
    FluxKind {
        kind: "Bucket",
        group: SOURCE,
        version: "v1",
        plural: "buckets",
        human: "source bucket",
        has_status: true,
    },
    FluxKind {
        kind: "Kustomization",
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1",
        plural: "kustomizations",
        human: "kustomization",
        has_status: true,
    },
    FluxKind {
        kind: "HelmRelease",
        group: "helm.toolkit.fluxcd.io",
        version: "v2",
        plural: "helmreleases",
        human: "helmrelease",
        has_status: true,
    },
    FluxKind {
        kind: "Alert",
        group: NOTIFICATION,
        version: "v1beta3",
        plural: "alerts",
        human: "alert",
        has_status: false,
    },
    FluxKind {
        kind: "Provider",
        group: NOTIFICATION,
        version: "v1beta3",
        plural: "providers",
        human: "alert-provider",
        has_status: false,
    },
    FluxKind {
        kind: "Receiver",
        group: NOTIFICATION,
        version: "v1",
        plural: "receivers",
        human: "receiver",
        has_status: true,
    },
];

/// Looks a kind up by its Kubernetes kind name (`GitRepository`, case-insensitive).
pub fn kind_named(kind: &str) -> Option<FluxKind> {
    KINDS
        .iter()
        .find(|k| k.kind.eq_ignore_ascii_case(kind))
        .copied()
}

/// Looks a kind up and fails with the list of known kinds.
pub fn require_kind(kind: &str) -> anyhow::Result<FluxKind> {
    kind_named(kind).ok_or_else(|| {
        anyhow!(
            "unknown kind {kind:?}; known kinds: {}",
            KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Splits `Kind/name` (or `Kind/namespace/name`); `default_kind` applies to a bare name.
pub fn parse_kind_name(
    text: &str,
    default_kind: Option<&str>,
) -> anyhow::Result<(String, Option<String>, String)> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [name] if !name.is_empty() => match default_kind {
            Some(kind) => Ok((kind.to_string(), None, (*name).to_string())),
            None => bail!("{text:?}: expected <Kind>/<name>"),
        },
        [kind, name] if !kind.is_empty() && !name.is_empty() => {
            Ok(((*kind).to_string(), None, (*name).to_string()))
        }
        [kind, namespace, name]
            if !kind.is_empty() && !namespace.is_empty() && !name.is_empty() =>
        {
            Ok((
                (*kind).to_string(),
                Some((*namespace).to_string()),
                (*name).to_string(),
            ))
        }
        _ => bail!("{text:?}: expected <Kind>/<name> or <Kind>/<namespace>/<name>"),
    }
}

// ---------------------------------------------------------------------------------------
// Reading objects (pure)
// ---------------------------------------------------------------------------------------

/// `metadata.name`.
pub fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// `metadata.namespace`.
pub fn namespace_of(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// `spec.suspend`.
pub fn is_suspended(object: &Value) -> bool {
    object["spec"]["suspend"].as_bool().unwrap_or(false)
}

/// The condition of `type_` in `status.conditions`.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(type_))
}

/// READY and MESSAGE as flux prints them: the Ready condition, or `False` and
/// "waiting to be reconciled" when there is none yet.
pub fn ready_and_message(object: &Value) -> (String, String) {
    match condition(object, "Ready") {
        Some(ready) => (
            ready["status"].as_str().unwrap_or("Unknown").to_string(),
            ready["message"].as_str().unwrap_or_default().to_string(),
        ),
        None => ("False".into(), "waiting to be reconciled".into()),
    }
}

/// The REVISION column: the artifact revision of sources, `lastAppliedRevision` of
/// Kustomizations, the chart version of the latest HelmRelease snapshot.
pub fn revision(kind: &FluxKind, object: &Value) -> String {
    let status = &object["status"];
    let text = match kind.kind {
        "Kustomization" => status["lastAppliedRevision"].as_str(),
        "HelmRelease" => status["history"][0]["chartVersion"]
            .as_str()
            .or_else(|| status["lastAttemptedRevision"].as_str()),
        _ => status["artifact"]["revision"].as_str(),
    };
    text.unwrap_or_default().to_string()
}

/// What one look at an object says about a reconciliation requested at `requested_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitState {
    /// The controller has not handled the request yet, or Ready is still Unknown.
    Pending(String),
    /// Handled and Ready=True.
    Ready,
    /// Handled and Ready=False (with the condition's message).
    Failed(String),
}

/// Decides whether a reconciliation finished: `status.lastHandledReconcileAt` must equal the
/// request token (when one is given), the Ready condition must belong to the current
/// generation, and be True or False.
pub fn wait_state(object: &Value, requested_at: Option<&str>) -> WaitState {
    if let Some(token) = requested_at {
        let handled = object["status"]["lastHandledReconcileAt"].as_str();
        if handled != Some(token) {
            return WaitState::Pending(format!(
                "lastHandledReconcileAt is {}, waiting for {token}",
                handled.unwrap_or("unset")
            ));
        }
    }
    let generation = object["metadata"]["generation"].as_i64();
    let observed = object["status"]["observedGeneration"].as_i64();
    if let (Some(generation), Some(observed)) = (generation, observed) {
        if observed < generation {
            return WaitState::Pending(format!(
                "observedGeneration {observed} is behind generation {generation}"
            ));
        }
    }
    let Some(ready) = condition(object, "Ready") else {
        return WaitState::Pending("no Ready condition yet".into());
    };
    let message = ready["message"].as_str().unwrap_or_default().to_string();
    match ready["status"].as_str() {
        Some("True") => WaitState::Ready,
        Some("False") => WaitState::Failed(message),
        _ => WaitState::Pending(format!("Ready is Unknown: {message}")),
    }
}

/// A fresh reconcile request token: RFC 3339 with nanoseconds, as flux writes it.
pub fn request_token() -> String {
    jiff::Timestamp::now().to_string()
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// flux's logger: progress lines on stderr with ►, ✔, ◎, ✚, ✗ and colours on a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    colour: bool,
}

impl Default for Log {
    fn default() -> Self {
        Self::new()
    }
}

impl Log {
    /// Colours when stderr is a terminal and NO_COLOR is unset.
    pub fn new() -> Self {
        Self {
            colour: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn line(self, symbol: &str, colour: &str, message: &str) {
        if self.colour {
            eprintln!("\x1b[{colour}m{symbol}\x1b[0m {message}");
        } else {
            eprintln!("{symbol} {message}");
        }
    }

    /// `► message` (an action starts).
    pub fn action(self, message: &str) {
        self.line("►", "36", message);
    }
    /// `✚ message` (something is generated).
    pub fn generate(self, message: &str) {
        self.line("✚", "32", message);
    }
    /// `◎ message` (waiting).
    pub fn waiting(self, message: &str) {
        self.line("◎", "33", message);
    }
    /// `✔ message`.
    pub fn success(self, message: &str) {
        self.line("✔", "32", message);
    }
    /// `✗ message`.
    pub fn failure(self, message: &str) {
        self.line("✗", "31", message);
    }
    /// `⚠️ message`.
    pub fn warning(self, message: &str) {
        self.line("⚠️", "33", message);
    }
}

/// Lays rows out as flux's table printer does: upper-case headers, each column padded to its
/// widest cell, columns separated by a tab, no borders.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count();
                line.push_str(&" ".repeat(pad));
                line.push('\t');
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        push_row(row.clone());
    }
    out
}

// ---------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------

/// A connection to the cluster plus the flags that scope it.
pub struct Cluster {
    /// The kube client.
    pub client: Client,
    /// `-n`.
    pub namespace: String,
    /// `--timeout`.
    pub timeout: Duration,
    /// How often waits look at the object again.
    pub poll_interval: Duration,
}

impl Cluster {
    /// Connects with `--kubeconfig`/`--context` (or KUBECONFIG, ~/.kube/config).
    pub async fn connect(args: &ClusterArgs) -> anyhow::Result<Self> {
        // kube's rustls connector needs a process-wide crypto provider; ring is the one the
        // workspace builds (no C toolchain).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &args.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("loading kubeconfig {}", path.display()))?
            }
            None => Config::from_kubeconfig(&options)
                .await
                .context("loading the kubeconfig (set KUBECONFIG or --kubeconfig)")?,
        };
        let client = Client::try_from(config).context("creating the Kubernetes client")?;
        Ok(Self {
            client,
            namespace: args.namespace.clone(),
            timeout: args.timeout,
            poll_interval: poll_interval(),
        })
    }

    /// The API of `kind` in `namespace` (all namespaces with None).
    pub fn api(&self, kind: &FluxKind, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = kind.resource();
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Reads one object as JSON; a missing object is an error naming it.
    pub async fn get(&self, kind: &FluxKind, namespace: &str, name: &str) -> anyhow::Result<Value> {
        let api = self.api(kind, Some(namespace));
        match api.get_opt(name).await {
            Ok(Some(object)) => Ok(serde_json::to_value(object)?),
            Ok(None) => bail!("{} {name:?} not found in {namespace} namespace", kind.kind),
            Err(err) => Err(api_error(err, kind)),
        }
    }

    /// Lists objects of `kind` (in `namespace`, or everywhere with None), sorted by
    /// namespace and name.
    pub async fn list(
        &self,
        kind: &FluxKind,
        namespace: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        let list = self
            .api(kind, namespace)
            .list(&ListParams::default())
            .await
            .map_err(|err| api_error(err, kind))?;
        let mut items = list
            .items
            .into_iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by(|a, b| (namespace_of(a), name_of(a)).cmp(&(namespace_of(b), name_of(b))));
        Ok(items)
    }

    /// Merge-patches an object (annotations, `spec.suspend`).
    pub async fn merge_patch(
        &self,
        kind: &FluxKind,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> anyhow::Result<Value> {
        let object = self
            .api(kind, Some(namespace))
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|err| api_error(err, kind))?;
        Ok(serde_json::to_value(object)?)
    }

    /// Server-side applies a whole object with field manager `flux` (forcing conflicts, as
    /// flux does for objects it generates).
    pub async fn apply(&self, kind: &FluxKind, object: &Value) -> anyhow::Result<Value> {
        let namespace = namespace_of(object).to_string();
        let name = name_of(object).to_string();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = self
            .api(kind, Some(&namespace))
            .patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|err| api_error(err, kind))?;
        Ok(serde_json::to_value(applied)?)
    }

    /// Polls the object until `wait_state` says Ready (Ok) or Failed (Err), or the timeout.
    pub async fn wait_for(
        &self,
        kind: &FluxKind,
        namespace: &str,
        name: &str,
        requested_at: Option<&str>,
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let object = self.get(kind, namespace, name).await?;
            match wait_state(&object, requested_at) {
                WaitState::Ready => return Ok(object),
                WaitState::Failed(message) => {
                    bail!("{} reconciliation failed: {message}", kind.kind)
                }
                WaitState::Pending(why) => {
                    if started.elapsed() >= self.timeout {
                        bail!(
                            "timed out after {} waiting for {} {namespace}/{name} reconciliation ({why})",
                            format_duration(self.timeout),
                            kind.kind
                        );
                    }
                }
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

/// How often waits poll: flux uses 2s; tests shorten it with FLUX_RS_POLL_INTERVAL.
fn poll_interval() -> Duration {
    std::env::var("FLUX_RS_POLL_INTERVAL")
        .ok()
        .and_then(|v| parse_duration(&v).ok())
        .unwrap_or(Duration::from_secs(2))
}

/// The kind's CRD is not served by the cluster (a 404 on the resource path).
#[derive(Debug, thiserror::Error)]
#[error("{kind}: the {plural} CRD is not installed ({message}); run `flux-rs install` first")]
pub struct MissingCrd {
    /// The kind.
    pub kind: String,
    /// Its plural resource name.
    pub plural: String,
    /// The API's message.
    pub message: String,
}

/// Turns kube errors into messages that say which kind failed and, for a missing CRD, why.
pub fn api_error(err: kube::Error, kind: &FluxKind) -> anyhow::Error {
    match &err {
        kube::Error::Api(status)
            if status.code == 404 && status.reason == "NotFound" && status.details.is_none() =>
        {
            anyhow::Error::new(MissingCrd {
                kind: kind.kind.to_string(),
                plural: kind.plural.to_string(),
                message: status.message.clone(),
            })
        }
        kube::Error::Api(status) => anyhow!("{}: {}", kind.kind, status.message),
        _ => anyhow!("{}: {err}", kind.kind),
    }
}

/// The merge patch that sets the reconcile annotations.
pub fn annotate_patch(annotations: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    json!({ "metadata": { "annotations": map } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(status: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "generation": 2}, "status": status})
    }

    #[test]
    fn kinds_resolve_case_insensitively_and_unknown_lists_known() {
        assert_eq!(
            kind_named("gitrepository").unwrap().plural,
            "gitrepositories"
        );
        let err = require_kind("Deployment").unwrap_err().to_string();
        assert!(err.contains("unknown kind \"Deployment\""), "{err}");
        assert!(err.contains("HelmRelease"), "{err}");
    }

    #[test]
    fn kind_name_parsing() {
        assert_eq!(
            parse_kind_name("GitRepository/podinfo", None).unwrap(),
            ("GitRepository".into(), None, "podinfo".into())
        );
        assert_eq!(
            parse_kind_name("podinfo", Some("GitRepository")).unwrap().0,
            "GitRepository"
        );
        assert_eq!(
            parse_kind_name("Kustomization/apps/web", None).unwrap().1,
            Some("apps".into())
        );
        assert!(parse_kind_name("podinfo", None).is_err());
        assert!(parse_kind_name("a/b/c/d", None).is_err());
        assert!(parse_kind_name("/x", None).is_err());
    }

    #[test]
    fn ready_column_defaults_like_flux() {
        assert_eq!(
            ready_and_message(&object(json!({}))),
            ("False".into(), "waiting to be reconciled".into())
        );
        let ready =
            object(json!({"conditions": [{"type": "Ready", "status": "True", "message": "ok"}]}));
        assert_eq!(ready_and_message(&ready), ("True".into(), "ok".into()));
    }

    #[test]
    fn revisions_per_kind() {
        let ks = kind_named("Kustomization").unwrap();
        let hr = kind_named("HelmRelease").unwrap();
        let git = kind_named("GitRepository").unwrap();
        let o = object(json!({
            "lastAppliedRevision": "main@sha1:1",
            "artifact": {"revision": "main@sha1:2"},
            "history": [{"chartVersion": "6.0.0"}],
            "lastAttemptedRevision": "5.0.0"
        }));
        assert_eq!(revision(&ks, &o), "main@sha1:1");
        assert_eq!(revision(&git, &o), "main@sha1:2");
        assert_eq!(revision(&hr, &o), "6.0.0");
        assert_eq!(
            revision(&hr, &object(json!({"lastAttemptedRevision": "5.0.0"}))),
            "5.0.0"
        );
        assert_eq!(ks.success_message(&o), "applied revision main@sha1:1");
        assert_eq!(git.success_message(&o), "fetched revision main@sha1:2");
    }

    #[test]
    fn wait_state_needs_the_token_the_generation_and_a_decided_ready() {
        let token = "2026-01-01T00:00:00.1Z";
        let ready = json!([{"type": "Ready", "status": "True", "message": "ok"}]);
        assert!(matches!(
            wait_state(&object(json!({"conditions": ready})), Some(token)),
            WaitState::Pending(_)
        ));
        assert!(matches!(
            wait_state(
                &object(
                    json!({"lastHandledReconcileAt": token, "observedGeneration": 1, "conditions": ready})
                ),
                Some(token)
            ),
            WaitState::Pending(_)
        ));
        assert_eq!(
            wait_state(
                &object(
                    json!({"lastHandledReconcileAt": token, "observedGeneration": 2, "conditions": ready})
                ),
                Some(token)
            ),
            WaitState::Ready
        );
        let failed = json!([{"type": "Ready", "status": "False", "message": "boom"}]);
        assert_eq!(
            wait_state(
                &object(json!({"lastHandledReconcileAt": token, "conditions": failed})),
                Some(token)
            ),
            WaitState::Failed("boom".into())
        );
        let unknown = json!([{"type": "Ready", "status": "Unknown", "message": "working"}]);
        assert!(matches!(
            wait_state(&object(json!({"conditions": unknown})), None),
            WaitState::Pending(_)
        ));
    }

    #[test]
    fn tables_pad_columns_and_separate_with_tabs() {
        let table = render_table(
            &["name", "ready"],
            &[
                vec!["podinfo".into(), "True".into()],
                vec!["a".into(), "False".into()],
            ],
        );
        assert_eq!(table, "NAME   \tREADY\npodinfo\tTrue\na      \tFalse\n");
    }

    #[test]
    fn the_cluster_commands_are_consistent() {
        // Each cluster command on its own (with the root's propagated --version): clap's
        // debug checks of names, globals, conflicts and defaults.
        use clap::{Args, Command};
        let cmd = Command::new("flux-rs")
            .version("0")
            .propagate_version(true)
            .subcommand(super::super::get::GetArgs::augment_args(Command::new(
                "get",
            )))
            .subcommand(super::super::reconcile::ReconcileArgs::augment_args(
                Command::new("reconcile"),
            ))
            .subcommand(super::super::reconcile::SuspendArgs::augment_args(
                Command::new("suspend"),
            ))
            .subcommand(super::super::check::CheckArgs::augment_args(Command::new(
                "check",
            )))
            .subcommand(super::super::create::CreateArgs::augment_args(
                Command::new("create"),
            ))
            .subcommand(super::super::create::ExportArgs::augment_args(
                Command::new("export"),
            ))
            .subcommand(super::super::events::EventsArgs::augment_args(
                Command::new("events"),
            ))
            .subcommand(super::super::logs::LogsArgs::augment_args(Command::new(
                "logs",
            )))
            .subcommand(super::super::tree::TreeArgs::augment_args(Command::new(
                "tree",
            )))
            .subcommand(super::super::install::InstallArgs::augment_args(
                Command::new("install"),
            ))
            .subcommand(super::super::bootstrap::BootstrapArgs::augment_args(
                Command::new("bootstrap"),
            ));
        cmd.debug_assert();
    }

    #[test]
    fn request_tokens_are_rfc3339_utc() {
        let token = request_token();
        assert!(token.ends_with('Z') && token.contains('T'), "{token}");
    }
}
