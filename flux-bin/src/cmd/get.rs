//! `flux-rs get`: status tables of Flux objects, like `flux get`.

use std::io::Write;

use anyhow::bail;
use serde_json::Value;

use super::cluster::{
    block_on, is_suspended, kind_named, name_of, namespace_of, ready_and_message, render_table,
    revision, Cluster, ClusterArgs, FluxKind, Log, MissingCrd, KINDS,
};

/// Arguments of `flux-rs get`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # List the Kustomizations in flux-system
  flux-rs get kustomizations

  # List every GitRepository in every namespace
  flux-rs get sources git -A

  # Only the HelmReleases that are not ready
  flux-rs get hr -A --status-selector ready=false

  # Everything Flux manages in a namespace
  flux-rs get all -n apps")]
pub struct GetArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// List the requested objects across all namespaces.
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// Keep only objects whose condition has this status, e.g. `ready=false`.
    #[arg(long, global = true)]
    pub status_selector: Option<String>,
    /// Skip the header row.
    #[arg(long, global = true)]
    pub no_header: bool,
    /// After listing, keep printing rows that change (until --timeout or Ctrl-C).
    #[arg(short = 'w', long, global = true)]
    pub watch: bool,
    /// What to list.
    #[command(subcommand)]
    pub what: GetWhat,
}

/// An optional object name.
#[derive(Debug, Clone, clap::Args)]
pub struct MaybeName {
    /// Show only this object.
    pub name: Option<String>,
}

/// The object kinds `get` lists.
#[derive(Debug, clap::Subcommand)]
pub enum GetWhat {
    /// Sources: git, oci, helm, chart, bucket, or all of them.
    #[command(subcommand, alias = "source")]
    Sources(GetSource),
    /// Kustomizations.
    #[command(visible_alias = "ks", alias = "kustomization")]
    Kustomizations(MaybeName),
    /// HelmReleases.
    #[command(visible_alias = "hr", alias = "helmrelease")]
    Helmreleases(MaybeName),
    /// Alerts.
    #[command(alias = "alert")]
    Alerts(MaybeName),
    /// Alert Providers.
    #[command(alias = "alert-provider")]
    AlertProviders(MaybeName),
    /// Receivers.
    #[command(alias = "receiver")]
    Receivers(MaybeName),
    /// Every source, Kustomization and HelmRelease (and notification objects).
    All,
}

/// The source kinds.
#[derive(Debug, clap::Subcommand)]
pub enum GetSource {
    /// GitRepositories.
    Git(MaybeName),
    /// OCIRepositories.
    Oci(MaybeName),
    /// HelmRepositories.
    Helm(MaybeName),
    /// HelmCharts.
    Chart(MaybeName),
    /// Buckets.
    Bucket(MaybeName),
    /// Every source kind.
    All,
}

/// Runs `flux-rs get`.
pub fn run(args: &GetArgs) -> anyhow::Result<()> {
    let selector = args
        .status_selector
        .as_deref()
        .map(StatusSelector::parse)
        .transpose()?;
    let (kinds, name, all): (Vec<FluxKind>, Option<&str>, bool) = match &args.what {
        GetWhat::Sources(source) => match source {
            GetSource::Git(n) => (kinds(&["GitRepository"]), n.name.as_deref(), false),
            GetSource::Oci(n) => (kinds(&["OCIRepository"]), n.name.as_deref(), false),
            GetSource::Helm(n) => (kinds(&["HelmRepository"]), n.name.as_deref(), false),
            GetSource::Chart(n) => (kinds(&["HelmChart"]), n.name.as_deref(), false),
            GetSource::Bucket(n) => (kinds(&["Bucket"]), n.name.as_deref(), false),
            GetSource::All => (KINDS[..5].to_vec(), None, true),
        },
        GetWhat::Kustomizations(n) => (kinds(&["Kustomization"]), n.name.as_deref(), false),
        GetWhat::Helmreleases(n) => (kinds(&["HelmRelease"]), n.name.as_deref(), false),
        GetWhat::Alerts(n) => (kinds(&["Alert"]), n.name.as_deref(), false),
        GetWhat::AlertProviders(n) => (kinds(&["Provider"]), n.name.as_deref(), false),
        GetWhat::Receivers(n) => (kinds(&["Receiver"]), n.name.as_deref(), false),
        GetWhat::All => (KINDS.to_vec(), None, true),
    };
    let namespace = (!args.all_namespaces).then_some(args.cluster.namespace.as_str());
    if args.watch {
        if all {
            bail!("--watch needs one kind, not `all`");
        }
        return watch(args, &kinds[0], name, namespace, selector.as_ref());
    }
    let tables = block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let mut tables = Vec::new();
        for kind in &kinds {
            let objects = match name {
                Some(name) => vec![cluster.get(kind, &args.cluster.namespace, name).await?],
                None => match cluster.list(kind, namespace).await {
                    Ok(objects) => objects,
                    // `get all` skips kinds whose CRD is not installed, as flux does.
                    Err(err) if all && err.downcast_ref::<MissingCrd>().is_some() => continue,
                    Err(err) => return Err(err),
                },
            };
            tables.push((*kind, objects));
        }
        Ok(tables)
    })?;
    let mut out = std::io::stdout().lock();
    let mut printed = 0;
    for (kind, objects) in tables {
        let objects: Vec<&Value> = objects
            .iter()
            .filter(|o| selector.as_ref().is_none_or(|s| s.matches(o)))
            .collect();
        if objects.is_empty() {
            continue;
        }
        if printed > 0 {
            writeln!(out)?;
        }
        printed += 1;
        let text = table(&kind, &objects, args.all_namespaces, all);
        let text = if args.no_header {
            text.split_once('\n')
                .map_or("", |(_, rest)| rest)
                .to_string()
        } else {
            text
        };
        out.write_all(text.as_bytes())?;
    }
    if printed == 0 && !all {
        let kind = kinds[0].kind;
        if args.all_namespaces {
            Log::new().failure(&format!("no {kind} objects found in any namespace"));
        } else {
            Log::new().failure(&format!(
                "no {kind} objects found in {} namespace",
                args.cluster.namespace
            ));
        }
    }
    Ok(())
}

/// `--watch`: the table once, then every row whose content changes, polled at the wait
/// interval until `--timeout` ends the watch (exit 0).
fn watch(
    args: &GetArgs,
    kind: &FluxKind,
    name: Option<&str>,
    namespace: Option<&str>,
    selector: Option<&StatusSelector>,
) -> anyhow::Result<()> {
    block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let started = std::time::Instant::now();
        let mut seen: std::collections::BTreeMap<(String, String), String> =
            std::collections::BTreeMap::new();
        let mut first = true;
        loop {
            let objects = match name {
                Some(name) => vec![cluster.get(kind, &args.cluster.namespace, name).await?],
                None => cluster.list(kind, namespace).await?,
            };
            let objects: Vec<&Value> = objects
                .iter()
                .filter(|o| selector.is_none_or(|s| s.matches(o)))
                .collect();
            let text = table(kind, &objects, args.all_namespaces, false);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default().to_string();
            let mut out = std::io::stdout().lock();
            if first && !args.no_header {
                writeln!(out, "{header}")?;
            }
            first = false;
            for (object, line) in objects.iter().zip(lines) {
                let key = (
                    namespace_of(object).to_string(),
                    name_of(object).to_string(),
                );
                // Compare the cells, not the padding (widths change with other rows).
                let cells: String = line
                    .split('\t')
                    .map(str::trim_end)
                    .collect::<Vec<_>>()
                    .join("\t");
                if seen.get(&key) != Some(&cells) {
                    writeln!(out, "{line}")?;
                    seen.insert(key, cells);
                }
            }
            out.flush()?;
            drop(out);
            if started.elapsed() >= cluster.timeout {
                return Ok(());
            }
            tokio::time::sleep(cluster.poll_interval).await;
        }
    })
}

fn kinds(names: &[&str]) -> Vec<FluxKind> {
    names.iter().filter_map(|n| kind_named(n)).collect()
}

/// `--status-selector type=status`, matched case-insensitively like flux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSelector {
    condition: String,
    status: String,
}

impl StatusSelector {
    /// Parses `ready=false`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.split_once('=') {
            Some((condition, status)) if !condition.is_empty() && !status.is_empty() => Ok(Self {
                condition: condition.to_lowercase(),
                status: status.to_lowercase(),
            }),
            _ => {
                bail!("--status-selector {text:?}: expected <condition>=<status>, e.g. ready=false")
            }
        }
    }

    /// Whether the object has the condition with the status.
    pub fn matches(&self, object: &Value) -> bool {
        object["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"].as_str().map(str::to_lowercase).as_deref() == Some(&self.condition)
                    && c["status"].as_str().map(str::to_lowercase).as_deref() == Some(&self.status)
            })
    }
}

/// The table for one kind: NAME, REVISION (kinds with one), SUSPENDED, READY, MESSAGE, with
/// NAMESPACE first under `-A`; `get all` prefixes names with the lower-case kind.
pub fn table(
    kind: &FluxKind,
    objects: &[&Value],
    all_namespaces: bool,
    kind_prefix: bool,
) -> String {
    let has_revision = kind.has_status && kind.kind != "Receiver";
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("namespace");
    }
    headers.push("name");
    if has_revision {
        headers.push("revision");
    }
    headers.push("suspended");
    if kind.has_status {
        headers.extend(["ready", "message"]);
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|object| {
            let mut row = Vec::new();
            if all_namespaces {
                row.push(namespace_of(object).to_string());
            }
            if kind_prefix {
                row.push(format!("{}/{}", kind.kind.to_lowercase(), name_of(object)));
            } else {
                row.push(name_of(object).to_string());
            }
            if has_revision {
                row.push(revision(kind, object));
            }
            row.push(
                if is_suspended(object) {
                    "True"
                } else {
                    "False"
                }
                .to_string(),
            );
            if kind.has_status {
                let (ready, message) = ready_and_message(object);
                row.push(ready);
                row.push(message);
            }
            row
        })
        .collect();
    render_table(&headers, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn git(name: &str, ns: &str, ready: &str, message: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"suspend": name == "b"},
            "status": {
                "artifact": {"revision": "main@sha1:abc"},
                "conditions": [{"type": "Ready", "status": ready, "message": message}]
            }
        })
    }

    #[test]
    fn source_table_like_flux() {
        let kind = kind_named("GitRepository").unwrap();
        let a = git("a", "flux-system", "True", "stored artifact");
        let b = git("b", "apps", "False", "auth failed");
        let text = table(&kind, &[&a, &b], false, false);
        assert_eq!(
            text,
            "NAME\tREVISION     \tSUSPENDED\tREADY\tMESSAGE\n\
             a   \tmain@sha1:abc\tFalse    \tTrue \tstored artifact\n\
             b   \tmain@sha1:abc\tTrue     \tFalse\tauth failed\n"
        );
        let text = table(&kind, &[&b], true, true);
        assert!(text.starts_with("NAMESPACE\tNAME"), "{text}");
        assert!(text.contains("apps     \tgitrepository/b"), "{text}");
    }

    #[test]
    fn kinds_without_status_have_no_ready_column() {
        let kind = kind_named("Alert").unwrap();
        let alert = json!({"metadata": {"name": "slack"}, "spec": {}});
        assert_eq!(
            table(&kind, &[&alert], false, false),
            "NAME \tSUSPENDED\nslack\tFalse\n"
        );
    }

    #[test]
    fn status_selector() {
        let selector = StatusSelector::parse("Ready=false").unwrap();
        assert!(selector.matches(&git("a", "x", "False", "")));
        assert!(!selector.matches(&git("a", "x", "True", "")));
        assert!(!selector.matches(&json!({})));
        assert!(StatusSelector::parse("ready").is_err());
        assert!(StatusSelector::parse("=x").is_err());
    }
}
