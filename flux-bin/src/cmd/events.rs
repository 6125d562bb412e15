//! `flux-rs events`: the Kubernetes Events recorded for Flux objects, like `flux events`.

use std::io::Write;

use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::Api;
use serde_json::Value;

use super::cluster::{
    block_on, kind_named, parse_kind_name, render_table, Cluster, ClusterArgs, Log,
};

/// Arguments of `flux-rs events`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Events of every Flux object in flux-system, oldest first
  flux-rs events

  # Events of one Kustomization
  flux-rs events --for Kustomization/apps

  # Every namespace
  flux-rs events -A")]
pub struct EventsArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// List events across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only events of this object (`<Kind>/<name>`).
    #[arg(long = "for")]
    pub for_object: Option<String>,
    /// Only events of this type (Normal or Warning).
    #[arg(long = "types", value_delimiter = ',')]
    pub types: Vec<String>,
}

/// Runs `flux-rs events`.
pub fn run(args: &EventsArgs) -> anyhow::Result<()> {
    let filter = match &args.for_object {
        Some(text) => {
            let (kind, _, name) = parse_kind_name(text, None)?;
            let kind = super::cluster::require_kind(&kind)?;
            Some((kind.kind.to_string(), name))
        }
        None => None,
    };
    let events = block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let api: Api<Event> = if args.all_namespaces {
            Api::all(cluster.client.clone())
        } else {
            Api::namespaced(cluster.client.clone(), &cluster.namespace)
        };
        let list = api.list(&ListParams::default()).await?;
        list.items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::from)
    })?;
    let now = jiff::Timestamp::now().as_second();
    let mut rows = select(&events, filter.as_ref(), &args.types);
    rows.sort_by_key(|e| e.0);
    if rows.is_empty() {
        Log::new().failure("no events found");
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(time, event)| {
            let mut row = Vec::new();
            if args.all_namespaces {
                row.push(
                    event["involvedObject"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            row.push(time.map_or_else(|| "<unknown>".into(), |t| human_duration(now - t)));
            row.push(event["type"].as_str().unwrap_or_default().to_string());
            row.push(event["reason"].as_str().unwrap_or_default().to_string());
            row.push(format!(
                "{}/{}",
                event["involvedObject"]["kind"].as_str().unwrap_or_default(),
                event["involvedObject"]["name"].as_str().unwrap_or_default()
            ));
            row.push(
                event["message"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end()
                    .replace('\n', " "),
            );
            row
        })
        .collect();
    let mut headers = Vec::new();
    if args.all_namespaces {
        headers.push("namespace");
    }
    headers.extend(["last seen", "type", "reason", "object", "message"]);
    std::io::stdout()
        .lock()
        .write_all(render_table(&headers, &table).as_bytes())?;
    Ok(())
}

/// The events of Flux objects (or of the one object), with their time in Unix seconds.
pub fn select<'a>(
    events: &'a [Value],
    filter: Option<&(String, String)>,
    types: &[String],
) -> Vec<(Option<i64>, &'a Value)> {
    events
        .iter()
        .filter(|e| {
            let involved = &e["involvedObject"];
            let kind = involved["kind"].as_str().unwrap_or_default();
            let is_flux = involved["apiVersion"]
                .as_str()
                .is_some_and(|v| v.contains(".toolkit.fluxcd.io/"))
                && kind_named(kind).is_some();
            let wanted = match filter {
                Some((k, n)) => kind == k && involved["name"].as_str() == Some(n),
                None => is_flux,
            };
            let typed = types.is_empty()
                || types.iter().any(|t| {
                    e["type"]
                        .as_str()
                        .is_some_and(|et| et.eq_ignore_ascii_case(t))
                });
            wanted && typed
        })
        .map(|e| (event_time(e), e))
        .collect()
}

/// lastTimestamp, else eventTime, else firstTimestamp, else creationTimestamp.
fn event_time(event: &Value) -> Option<i64> {
    ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .filter_map(|k| event[*k].as_str())
        .chain(event["metadata"]["creationTimestamp"].as_str())
        .find_map(|t| t.parse::<jiff::Timestamp>().ok())
        .map(jiff::Timestamp::as_second)
}

/// kubectl's `HumanDuration`: `45s`, `3m10s`, `5h2m`, `3d4h`, `400d`, `2y30d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    let minutes = seconds / 60;
    let hours = seconds / 3600;
    if seconds < 120 {
        return format!("{seconds}s");
    }
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    if years < 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(190), "3m10s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(5 * 3600 + 120), "5h2m");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_duration(400 * 86400), "400d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn selects_flux_events_and_one_object() {
        let events = vec![
            json!({"involvedObject": {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "name": "apps"}, "type": "Normal", "lastTimestamp": "2026-01-01T00:00:00Z"}),
            json!({"involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web"}, "type": "Warning"}),
            json!({"involvedObject": {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "repo"}, "type": "Warning"}),
        ];
        assert_eq!(select(&events, None, &[]).len(), 2);
        assert_eq!(select(&events, None, &["warning".into()]).len(), 1);
        let one = select(&events, Some(&("Kustomization".into(), "apps".into())), &[]);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, Some(1_767_225_600));
    }
}
