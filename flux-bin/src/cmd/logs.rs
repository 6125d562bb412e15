//! `flux-rs logs`: the controllers' logs, read from their pods through the API, filtered
//! and formatted like `flux logs`.

use std::io::Write;

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::Api;
use serde_json::Value;

use super::cluster::{block_on, Cluster, ClusterArgs};

/// Arguments of `flux-rs logs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Everything the controllers logged
  flux-rs logs

  # Errors about one Kustomization
  flux-rs logs --kind Kustomization --name apps --level error

  # The last 20 lines per controller, raw JSON
  flux-rs logs --tail 20 --raw")]
pub struct LogsArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only lines about objects of this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only lines about objects with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only lines of this level (debug, info, error).
    #[arg(long)]
    pub level: Option<String>,
    /// Lines per controller from the end of its log.
    #[arg(long)]
    pub tail: Option<i64>,
    /// Only lines about objects in all namespaces (else only the -n namespace's objects).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Namespace the controllers run in.
    #[arg(long, default_value = "flux-system")]
    pub flux_namespace: String,
    /// Print the JSON lines as they are.
    #[arg(long)]
    pub raw: bool,
}

/// Line filter.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// `--kind`.
    pub kind: Option<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--level`.
    pub level: Option<String>,
    /// The object namespace (None with -A).
    pub namespace: Option<String>,
}

/// Formats one controller log line, or None when the filter drops it. JSON lines as the
/// controllers write them (`level`, `ts`, `msg`, `<kind>: {name, namespace}` or
/// `controllerKind`/`name`/`namespace`); other lines pass through unless a filter is set.
pub fn format_line(line: &str, filter: &Filter, raw: bool) -> Option<String> {
    let Ok(entry) = serde_json::from_str::<Value>(line) else {
        let unfiltered = filter.kind.is_none() && filter.name.is_none() && filter.level.is_none();
        return unfiltered.then(|| line.to_string());
    };
    let level = entry["level"].as_str().unwrap_or_default();
    let kind = entry["controllerKind"].as_str().unwrap_or_default();
    let object = kind_object(&entry, kind);
    let name = object["name"]
        .as_str()
        .or_else(|| entry["name"].as_str())
        .unwrap_or_default();
    let namespace = object["namespace"]
        .as_str()
        .or_else(|| entry["namespace"].as_str())
        .unwrap_or_default();
    if filter
        .level
        .as_deref()
        .is_some_and(|l| !l.eq_ignore_ascii_case(level))
        || filter
            .kind
            .as_deref()
            .is_some_and(|k| !k.eq_ignore_ascii_case(kind))
        || filter.name.as_deref().is_some_and(|n| n != name)
        || filter
            .namespace
            .as_deref()
            .is_some_and(|ns| !namespace.is_empty() && ns != namespace)
    {
        return None;
    }
    if raw {
        return Some(line.to_string());
    }
    let ts = entry["ts"]
        .as_str()
        .map(str::to_string)
        .or_else(|| entry["ts"].as_f64().map(|t| t.to_string()))
        .unwrap_or_default();
    let msg = entry["msg"].as_str().unwrap_or_default();
    let error = entry["error"]
        .as_str()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    if kind.is_empty() {
        Some(format!("{ts} {level} {msg}{error}"))
    } else {
        Some(format!(
            "{ts} {level} {kind}/{name}.{namespace} - {msg}{error}"
        ))
    }
}

/// controller-runtime logs the object under its lower-case kind key.
fn kind_object<'a>(entry: &'a Value, kind: &str) -> &'a Value {
    let lower = kind.to_lowercase();
    entry
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.to_lowercase() == lower)
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Null)
}

/// Runs `flux-rs logs`.
pub fn run(args: &LogsArgs) -> anyhow::Result<()> {
    let filter = Filter {
        kind: args.kind.clone(),
        name: args.name.clone(),
        level: args.level.clone(),
        namespace: (!args.all_namespaces).then(|| args.cluster.namespace.clone()),
    };
    let lines = block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &args.flux_namespace);
        let list = pods
            .list(&ListParams::default().labels("app.kubernetes.io/part-of=flux"))
            .await
            .context("listing the controller pods")?;
        let mut list = list.items;
        if list.is_empty() {
            // Flux's own install labels the pods with `app` only.
            list = pods
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|p| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("app"))
                        .is_some_and(|a| a.ends_with("-controller"))
                })
                .collect();
        }
        if list.is_empty() {
            bail!(
                "no Flux controller pods found in {} namespace",
                args.flux_namespace
            );
        }
        let mut lines = Vec::new();
        for pod in list {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let params = LogParams {
                tail_lines: args.tail,
                ..LogParams::default()
            };
            let text = pods.logs(&name, &params).await.with_context(|| {
                format!("reading the logs of pod {}/{name}", args.flux_namespace)
            })?;
            lines.extend(text.lines().map(str::to_string));
        }
        Ok(lines)
    })?;
    let mut out = std::io::stdout().lock();
    for line in lines {
        if let Some(text) = format_line(&line, &filter, args.raw) {
            writeln!(out, "{text}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"level":"info","ts":"2026-01-01T00:00:00.000Z","msg":"server-side apply completed","controller":"kustomization","controllerKind":"Kustomization","Kustomization":{"name":"apps","namespace":"flux-system"},"name":"apps","namespace":"flux-system"}"#;

    #[test]
    fn formats_and_filters_controller_lines() {
        let all = Filter::default();
        assert_eq!(
            format_line(LINE, &all, false).unwrap(),
            "2026-01-01T00:00:00.000Z info Kustomization/apps.flux-system - server-side apply completed"
        );
        assert_eq!(format_line(LINE, &all, true).unwrap(), LINE);
        let errors = Filter {
            level: Some("error".into()),
            ..Filter::default()
        };
        assert_eq!(format_line(LINE, &errors, false), None);
        let other = Filter {
            name: Some("infra".into()),
            ..Filter::default()
        };
        assert_eq!(format_line(LINE, &other, false), None);
        let ns = Filter {
            namespace: Some("apps".into()),
            ..Filter::default()
        };
        assert_eq!(format_line(LINE, &ns, false), None);
        assert_eq!(
            format_line("plain text", &all, false).unwrap(),
            "plain text"
        );
        assert_eq!(format_line("plain text", &errors, false), None);
    }
}
