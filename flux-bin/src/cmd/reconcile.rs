//! `flux-rs reconcile`, `suspend` and `resume`: ask the controllers for a reconciliation
//! (the `reconcile.fluxcd.io/requestedAt` annotation) and wait for it to be handled.

use anyhow::bail;
use serde_json::{json, Value};

use super::cluster::{
    annotate_patch, block_on, kind_named, name_of, request_token, Cluster, ClusterArgs, FluxKind,
    Log, FORCE_AT, REQUESTED_AT, RESET_AT,
};

/// Arguments of `flux-rs reconcile`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Fetch the latest commit of a GitRepository now
  flux-rs reconcile source git flux-system

  # Reconcile a Kustomization after fetching its source
  flux-rs reconcile kustomization apps --with-source

  # Force a one-off Helm upgrade and reset the retry counters
  flux-rs reconcile helmrelease podinfo -n apps --force --reset

The command sets the reconcile.fluxcd.io/requestedAt annotation and waits (up to --timeout)
until the controller reports it handled the request: status.lastHandledReconcileAt equals the
annotation and the Ready condition is True (success) or False (failure, exit code 1).")]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// What to reconcile.
    #[command(subcommand)]
    pub target: ReconcileTarget,
}

/// One object name.
#[derive(Debug, Clone, clap::Args)]
pub struct Name {
    /// The object's name.
    pub name: String,
}

/// `--with-source` objects.
#[derive(Debug, Clone, clap::Args)]
pub struct WithSource {
    /// The object's name.
    pub name: String,
    /// Reconcile the source first.
    #[arg(long)]
    pub with_source: bool,
}

/// HelmRelease flags.
#[derive(Debug, Clone, clap::Args)]
pub struct HelmReleaseFlags {
    /// The HelmRelease's name.
    pub name: String,
    /// Reconcile the chart source first.
    #[arg(long)]
    pub with_source: bool,
    /// Force a one-off install or upgrade (reconcile.fluxcd.io/forceAt).
    #[arg(long)]
    pub force: bool,
    /// Reset the install/upgrade failure counters (reconcile.fluxcd.io/resetAt).
    #[arg(long)]
    pub reset: bool,
}

/// The kinds `reconcile` handles.
#[derive(Debug, clap::Subcommand)]
pub enum ReconcileTarget {
    /// Sources: git, oci, helm, chart, bucket.
    #[command(subcommand)]
    Source(ReconcileSource),
    /// A Kustomization.
    #[command(visible_alias = "ks")]
    Kustomization(WithSource),
    /// A HelmRelease.
    #[command(visible_alias = "hr")]
    Helmrelease(HelmReleaseFlags),
    /// An Alert.
    Alert(Name),
    /// An alert Provider.
    AlertProvider(Name),
    /// A Receiver.
    Receiver(Name),
}

/// Source kinds.
#[derive(Debug, clap::Subcommand)]
pub enum ReconcileSource {
    /// A GitRepository.
    Git(Name),
    /// An OCIRepository.
    Oci(Name),
    /// A HelmRepository.
    Helm(Name),
    /// A HelmChart.
    Chart(WithSource),
    /// A Bucket.
    Bucket(Name),
}

/// Runs `flux-rs reconcile`.
pub fn run(args: &ReconcileArgs) -> anyhow::Result<()> {
    let log = Log::new();
    block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let ns = args.cluster.namespace.as_str();
        match &args.target {
            ReconcileTarget::Source(source) => {
                let (kind, name, with_source) = match source {
                    ReconcileSource::Git(n) => ("GitRepository", &n.name, false),
                    ReconcileSource::Oci(n) => ("OCIRepository", &n.name, false),
                    ReconcileSource::Helm(n) => ("HelmRepository", &n.name, false),
                    ReconcileSource::Chart(n) => ("HelmChart", &n.name, n.with_source),
                    ReconcileSource::Bucket(n) => ("Bucket", &n.name, false),
                };
                let kind = known(kind)?;
                if with_source {
                    let object = cluster.get(&kind, ns, name).await?;
                    if let Some((kind, ns, name)) = source_of(&kind, &object) {
                        reconcile(&cluster, log, &known(&kind)?, &ns, &name, &[]).await?;
                    }
                }
                reconcile(&cluster, log, &kind, ns, name, &[]).await
            }
            ReconcileTarget::Kustomization(ks) => {
                let kind = known("Kustomization")?;
                if ks.with_source {
                    let object = cluster.get(&kind, ns, &ks.name).await?;
                    if let Some((kind, ns, name)) = source_of(&kind, &object) {
                        reconcile(&cluster, log, &known(&kind)?, &ns, &name, &[]).await?;
                    }
                }
                reconcile(&cluster, log, &kind, ns, &ks.name, &[]).await
            }
            ReconcileTarget::Helmrelease(hr) => {
                let kind = known("HelmRelease")?;
                if hr.with_source {
                    let object = cluster.get(&kind, ns, &hr.name).await?;
                    if let Some((kind, ns, name)) = source_of(&kind, &object) {
                        reconcile(&cluster, log, &known(&kind)?, &ns, &name, &[]).await?;
                    }
                }
                let mut extra = Vec::new();
                if hr.force {
                    extra.push(FORCE_AT);
                }
                if hr.reset {
                    extra.push(RESET_AT);
                }
                reconcile(&cluster, log, &kind, ns, &hr.name, &extra).await
            }
            ReconcileTarget::Alert(n) => {
                reconcile(&cluster, log, &known("Alert")?, ns, &n.name, &[]).await
            }
            ReconcileTarget::AlertProvider(n) => {
                reconcile(&cluster, log, &known("Provider")?, ns, &n.name, &[]).await
            }
            ReconcileTarget::Receiver(n) => {
                reconcile(&cluster, log, &known("Receiver")?, ns, &n.name, &[]).await
            }
        }
    })
}

fn known(kind: &str) -> anyhow::Result<FluxKind> {
    super::cluster::require_kind(kind)
}

/// The source an object reconciles from, as (kind, namespace, name): a Kustomization's
/// `spec.sourceRef`, a HelmRelease's `spec.chartRef` or its generated HelmChart
/// (`status.helmChart`, else `<namespace>-<name>` in the chart source's namespace), a
/// HelmChart's `spec.sourceRef`.
pub fn source_of(kind: &FluxKind, object: &Value) -> Option<(String, String, String)> {
    let own_ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let reference = |r: &Value| -> Option<(String, String, String)> {
        Some((
            r["kind"].as_str()?.to_string(),
            r["namespace"].as_str().unwrap_or(own_ns).to_string(),
            r["name"].as_str()?.to_string(),
        ))
    };
    match kind.kind {
        "Kustomization" | "HelmChart" => reference(&object["spec"]["sourceRef"]),
        "HelmRelease" => {
            if object["spec"]["chartRef"].is_object() {
                return reference(&object["spec"]["chartRef"]);
            }
            if let Some((ns, name)) = object["status"]["helmChart"]
                .as_str()
                .and_then(|s| s.split_once('/'))
            {
                return Some(("HelmChart".into(), ns.into(), name.into()));
            }
            let source_ns = object["spec"]["chart"]["spec"]["sourceRef"]["namespace"]
                .as_str()
                .unwrap_or(own_ns);
            object["spec"]["chart"].is_object().then(|| {
                (
                    "HelmChart".to_string(),
                    source_ns.to_string(),
                    format!("{own_ns}-{}", name_of(object)),
                )
            })
        }
        _ => None,
    }
}

/// Annotates one object and waits for the controller to handle the request.
pub async fn reconcile(
    cluster: &Cluster,
    log: Log,
    kind: &FluxKind,
    namespace: &str,
    name: &str,
    extra_annotations: &[&str],
) -> anyhow::Result<()> {
    let object = cluster.get(kind, namespace, name).await?;
    if super::cluster::is_suspended(&object) {
        bail!(
            "{} {namespace}/{name} is suspended; resume it first with `flux-rs resume {} {name}`",
            kind.kind,
            kind.human
        );
    }
    log.action(&format!(
        "annotating {} {name} in {namespace} namespace",
        kind.kind
    ));
    let token = request_token();
    let mut annotations = vec![(REQUESTED_AT, token.as_str())];
    annotations.extend(extra_annotations.iter().map(|a| (*a, token.as_str())));
    cluster
        .merge_patch(kind, namespace, name, &annotate_patch(&annotations))
        .await?;
    log.success(&format!("{} annotated", kind.kind));
    if !kind.has_status {
        return Ok(());
    }
    log.waiting(&format!("waiting for {} reconciliation", kind.kind));
    let object = cluster
        .wait_for(kind, namespace, name, Some(&token))
        .await?;
    log.success(&format!("{} reconciliation completed", kind.kind));
    log.success(&kind.success_message(&object));
    Ok(())
}

/// Arguments of `flux-rs suspend` and `flux-rs resume`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Stop reconciling a Kustomization
  flux-rs suspend kustomization apps

  # Suspend every HelmRelease in a namespace
  flux-rs suspend helmrelease --all -n apps

  # Resume and wait until the controller reports Ready
  flux-rs resume kustomization apps

  # Resume several sources without waiting
  flux-rs resume source git app-a app-b --wait=false")]
pub struct SuspendArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Resume only: wait for the objects to become Ready.
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// What to suspend or resume.
    #[command(subcommand)]
    pub target: Select,
}

/// Names or `--all`.
#[derive(Debug, Clone, clap::Args)]
pub struct Names {
    /// Object names.
    pub names: Vec<String>,
    /// Every object of the kind in the namespace.
    #[arg(long)]
    pub all: bool,
}

/// A kind plus names, shared by `suspend`, `resume` and `export`.
#[derive(Debug, clap::Subcommand)]
pub enum Select {
    /// Sources: git, oci, helm, chart, bucket.
    #[command(subcommand)]
    Source(SelectSource),
    /// Kustomizations.
    #[command(visible_alias = "ks")]
    Kustomization(Names),
    /// HelmReleases.
    #[command(visible_alias = "hr")]
    Helmrelease(Names),
    /// Alerts.
    Alert(Names),
    /// Alert Providers.
    AlertProvider(Names),
    /// Receivers.
    Receiver(Names),
}

/// Source kinds with names.
#[derive(Debug, clap::Subcommand)]
pub enum SelectSource {
    /// GitRepositories.
    Git(Names),
    /// OCIRepositories.
    Oci(Names),
    /// HelmRepositories.
    Helm(Names),
    /// HelmCharts.
    Chart(Names),
    /// Buckets.
    Bucket(Names),
}

impl Select {
    /// The kind and the names.
    pub fn resolve(&self) -> (FluxKind, &Names) {
        let (kind, names) = match self {
            Select::Source(SelectSource::Git(n)) => ("GitRepository", n),
            Select::Source(SelectSource::Oci(n)) => ("OCIRepository", n),
            Select::Source(SelectSource::Helm(n)) => ("HelmRepository", n),
            Select::Source(SelectSource::Chart(n)) => ("HelmChart", n),
            Select::Source(SelectSource::Bucket(n)) => ("Bucket", n),
            Select::Kustomization(n) => ("Kustomization", n),
            Select::Helmrelease(n) => ("HelmRelease", n),
            Select::Alert(n) => ("Alert", n),
            Select::AlertProvider(n) => ("Provider", n),
            Select::Receiver(n) => ("Receiver", n),
        };
        // Every name above is in KINDS (a unit test checks it).
        (kind_named(kind).unwrap_or(super::cluster::KINDS[0]), names)
    }

    /// The object names: the given ones, or every object in the namespace with `--all`.
    pub async fn names(&self, cluster: &Cluster) -> anyhow::Result<Vec<String>> {
        let (kind, names) = self.resolve();
        match (names.all, names.names.is_empty()) {
            (true, true) => {
                let objects = cluster.list(&kind, Some(&cluster.namespace)).await?;
                if objects.is_empty() {
                    bail!(
                        "no {} objects found in {} namespace",
                        kind.kind,
                        cluster.namespace
                    );
                }
                Ok(objects.iter().map(|o| name_of(o).to_string()).collect())
            }
            (true, false) => bail!("give object names or --all, not both"),
            (false, true) => bail!("{} name is required (or --all)", kind.kind),
            (false, false) => Ok(names.names.clone()),
        }
    }
}

/// Runs `flux-rs suspend`.
pub fn suspend(args: &SuspendArgs) -> anyhow::Result<()> {
    let log = Log::new();
    block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let (kind, _) = args.target.resolve();
        let ns = cluster.namespace.clone();
        for name in args.target.names(&cluster).await? {
            cluster.get(&kind, &ns, &name).await?;
            log.action(&format!(
                "suspending {} {name} in {ns} namespace",
                kind.human
            ));
            cluster
                .merge_patch(&kind, &ns, &name, &json!({"spec": {"suspend": true}}))
                .await?;
            log.success(&format!("{} suspended", kind.human));
        }
        Ok(())
    })
}

/// Runs `flux-rs resume`: clears `spec.suspend`, requests a reconciliation and (with
/// `--wait`) waits for Ready.
pub fn resume(args: &SuspendArgs) -> anyhow::Result<()> {
    let log = Log::new();
    block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let (kind, _) = args.target.resolve();
        let ns = cluster.namespace.clone();
        let mut resumed = Vec::new();
        for name in args.target.names(&cluster).await? {
            cluster.get(&kind, &ns, &name).await?;
            log.action(&format!("resuming {} {name} in {ns} namespace", kind.human));
            let token = request_token();
            let mut patch = annotate_patch(&[(REQUESTED_AT, token.as_str())]);
            patch["spec"] = json!({"suspend": false});
            cluster.merge_patch(&kind, &ns, &name, &patch).await?;
            log.success(&format!("{} resumed", kind.human));
            resumed.push((name, token));
        }
        if !args.wait || !kind.has_status {
            return Ok(());
        }
        for (name, token) in resumed {
            log.waiting(&format!("waiting for {} reconciliation", kind.kind));
            let object = cluster.wait_for(&kind, &ns, &name, Some(&token)).await?;
            log.success(&format!("{} reconciliation completed", kind.kind));
            log.success(&kind.success_message(&object));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_selectable_kind_is_known() {
        for kind in [
            "GitRepository",
            "OCIRepository",
            "HelmRepository",
            "HelmChart",
            "Bucket",
            "Kustomization",
            "HelmRelease",
            "Alert",
            "Provider",
            "Receiver",
        ] {
            assert!(kind_named(kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn sources_of_kustomizations_and_helmreleases() {
        let ks = kind_named("Kustomization").unwrap();
        let hr = kind_named("HelmRelease").unwrap();
        let object = json!({
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}}
        });
        assert_eq!(
            source_of(&ks, &object),
            Some(("GitRepository".into(), "flux-system".into(), "repo".into()))
        );
        let release = json!({
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"chart": {"spec": {"chart": "web", "sourceRef": {"kind": "HelmRepository", "name": "r", "namespace": "flux-system"}}}}
        });
        assert_eq!(
            source_of(&hr, &release),
            Some(("HelmChart".into(), "flux-system".into(), "apps-web".into()))
        );
        let by_ref = json!({
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"chartRef": {"kind": "OCIRepository", "name": "chart"}}
        });
        assert_eq!(
            source_of(&hr, &by_ref),
            Some(("OCIRepository".into(), "apps".into(), "chart".into()))
        );
        assert_eq!(source_of(&hr, &json!({"metadata": {}, "spec": {}})), None);
    }
}
