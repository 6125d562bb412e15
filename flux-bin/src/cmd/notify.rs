//! `flux-rs notify`: receiver webhook paths, offline previews of what providers would send,
//! and the notification event/receiver servers run from manifests.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use flux_notify::provider::Outbound;
use flux_notify::server::{self, MemoryReconciler, Notifier, Options, Registry};
use flux_notify::Event;

/// The `notify` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Print a Receiver's webhook path: `/hook/` + sha256(token + name + namespace).
    WebhookPath {
        /// The raw `token` value of the Receiver's Secret.
        #[arg(long)]
        token: String,
        /// Receiver name.
        #[arg(long)]
        name: String,
        /// Receiver namespace.
        #[arg(long)]
        namespace: String,
    },
    /// Show the requests the matching Alerts' Providers would send for an event (offline;
    /// nothing is sent).
    Preview {
        /// YAML files with Alerts, Providers and Secrets.
        #[arg(long = "manifests", short = 'f', required = true)]
        manifests: Vec<PathBuf>,
        /// The event JSON (as a controller POSTs it).
        #[arg(long)]
        event: PathBuf,
    },
    /// Serve the event endpoint (`POST /`) and the receiver endpoint (`/hook/<digest>`) for
    /// the objects in the manifests. Receiver reconcile requests are recorded in memory (no
    /// cluster client yet).
    Serve {
        /// YAML files with Alerts, Providers, Receivers and Secrets.
        #[arg(long = "manifests", short = 'f', required = true)]
        manifests: Vec<PathBuf>,
        /// Event server listen address.
        #[arg(long, default_value = "127.0.0.1:9090")]
        events_addr: SocketAddr,
        /// Receiver server listen address.
        #[arg(long, default_value = "127.0.0.1:9292")]
        receiver_addr: SocketAddr,
        /// Refuse cross-namespace references.
        #[arg(long)]
        no_cross_namespace_refs: bool,
    },
}

fn load(manifests: &[PathBuf]) -> anyhow::Result<Registry> {
    let mut registry = Registry::default();
    for path in manifests {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        flux_notify::manifests::load_into(&mut registry, &path.display().to_string(), &text)?;
    }
    Ok(registry)
}

/// Runs a `notify` subcommand, writing its output to `out`.
pub fn run(command: NotifyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        NotifyCommand::WebhookPath {
            token,
            name,
            namespace,
        } => {
            writeln!(
                out,
                "{}",
                flux_notify::receiver::webhook_path(&token, &name, &namespace)
            )?;
        }
        NotifyCommand::Preview { manifests, event } => {
            let registry = load(&manifests)?;
            let body =
                std::fs::read(&event).with_context(|| format!("reading {}", event.display()))?;
            let mut event =
                Event::from_json(&body).with_context(|| format!("decoding {}", event.display()))?;
            event.cleanup_metadata();
            event.exclude_internal_metadata();
            let notifier = Notifier::new(
                registry,
                Options::default(),
                Arc::new(MemoryReconciler::default()),
            );
            let (planned, warnings) = notifier.plan(&event);
            for w in &warnings {
                writeln!(out, "# warning {} {}: {}", w.object, w.reason, w.message)?;
            }
            if planned.is_empty() {
                writeln!(out, "# no alerts matched; nothing would be sent")?;
            }
            for (alert, cfg, deliveries) in planned {
                writeln!(out, "# {alert} -> Provider/{}", cfg.id)?;
                for d in deliveries {
                    write_outbound(out, &d)?;
                }
            }
        }
        NotifyCommand::Serve {
            manifests,
            events_addr,
            receiver_addr,
            no_cross_namespace_refs,
        } => {
            let registry = load(&manifests)?;
            let options = Options {
                no_cross_namespace_refs,
                ..Options::default()
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let notifier = Notifier::new(registry, options, Arc::new(MemoryReconciler::default()));
                let events = tokio::net::TcpListener::bind(events_addr).await?;
                let hooks = tokio::net::TcpListener::bind(receiver_addr).await?;
                writeln!(out, "event server on http://{events_addr}/, receivers on http://{receiver_addr}/hook/")?;
                out.flush()?;
                tokio::try_join!(
                    server::serve(events, server::event_router(Arc::clone(&notifier))),
                    server::serve(hooks, server::receiver_router(notifier)),
                )?;
                anyhow::Ok(())
            })?;
        }
    }
    Ok(())
}

fn write_outbound(out: &mut dyn Write, d: &Outbound) -> std::io::Result<()> {
    let http = |out: &mut dyn Write, r: &flux_notify::HttpRequest| -> std::io::Result<()> {
        writeln!(out, "{} {}", r.method, r.url)?;
        for (k, v) in &r.headers {
            writeln!(out, "{k}: {v}")?;
        }
        writeln!(out)?;
        writeln!(out, "{}", String::from_utf8_lossy(&r.body).trim_end())?;
        writeln!(out)
    };
    match d {
        Outbound::Http(r) => http(out, r),
        Outbound::CommitStatus { list, create, .. } => {
            writeln!(
                out,
                "# skipped if identical to the latest status listed by:"
            )?;
            http(out, list)?;
            http(out, create)
        }
        Outbound::Nats {
            server,
            subject,
            payload,
            ..
        } => {
            writeln!(
                out,
                "NATS PUB {subject} on {server}\n\n{}\n",
                String::from_utf8_lossy(payload)
            )
        }
        Outbound::PubSub {
            project,
            topic,
            data,
            ..
        } => {
            writeln!(
                out,
                "PUBSUB projects/{project}/topics/{topic}\n\n{}\n",
                String::from_utf8_lossy(data)
            )
        }
        Outbound::EventHub { body, .. } => {
            writeln!(out, "EVENTHUB\n\n{}\n", String::from_utf8_lossy(body))
        }
        _ => writeln!(out, "{d:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_path_command() {
        let mut out = Vec::new();
        let cmd = NotifyCommand::WebhookPath {
            token: "t".into(),
            name: "n".into(),
            namespace: "ns".into(),
        };
        run(cmd, &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            flux_notify::receiver::webhook_path("t", "n", "ns")
        );
    }

    #[test]
    fn preview_command() {
        let dir =
            std::env::temp_dir().join(format!("flux-rs-notify-preview-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let manifests = dir.join("m.yaml");
        std::fs::write(
            &manifests,
            "kind: Provider\nmetadata: {name: p, namespace: apps}\nspec: {type: slack, address: 'https://hooks.slack.com/services/x', channel: general}\n---\nkind: Alert\nmetadata: {name: a, namespace: apps}\nspec: {providerRef: {name: p}, eventSources: [{kind: Kustomization, name: '*'}]}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let event = dir.join("e.json");
        std::fs::write(
            &event,
            r#"{"involvedObject":{"kind":"Kustomization","namespace":"apps","name":"web","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},"severity":"info","timestamp":"2026-01-02T15:04:05Z","message":"ok","reason":"ReconciliationSucceeded","reportingController":"kustomize-controller"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        run(
            NotifyCommand::Preview {
                manifests: vec![manifests],
                event,
            },
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("# Alert/apps/a -> Provider/apps/p"), "{text}");
        assert!(
            text.contains("POST https://hooks.slack.com/services/x"),
            "{text}"
        );
        assert!(
            text.contains(r#""author_name":"kustomization/web.apps""#),
            "{text}"
        );
    }
}
