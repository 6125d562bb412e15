//! Golden payloads per provider type: each provider's request is sent to a local capture
//! server and compared byte for byte (body) with `tests/data/golden/<type>.<severity>.json`.
//!
//! The goldens were written from notification-controller's notifier structs and request code
//! (field order, omitempty, Go's HTML-safe JSON escaping, header names) and checked by hand;
//! set `FLUX_NOTIFY_BLESS=1` to rewrite them after an intended change, then review the diff.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flux_notify::provider::{self, Outbound, ProviderConfig, ProviderType};
use flux_notify::sender::{RetryPolicy, Sender};
use flux_notify::Event;

use crate::capture::{CaptureServer, Captured};

pub const PROVIDER_UID: &str = "0c4a6a3e-6f2e-4c64-9d6b-2f7c9a1b5e10";
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// The notification as an Alert hands it to providers (metadata already merged).
pub fn notification(severity: &str) -> Event {
    let (reason, message) = if severity == "error" {
        ("HealthCheckFailed", "Health check failed after 5m0s: timeout waiting for: [Deployment/apps/webapp status: 'InProgress']")
    } else {
        ("ReconciliationSucceeded", "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567\ndeployment/webapp configured <ok> & done")
    };
    let json = serde_json::json!({
        "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "webapp",
            "uid": "9f1e3c2a-1111-2222-3333-444455556666", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": severity,
        "timestamp": "2026-01-02T15:04:05Z",
        "message": message,
        "reason": reason,
        "metadata": {"revision": format!("main@sha1:{SHA}"), "summary": "Production cluster", "env": "prod"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7f9c4d-abcde",
    });
    Event::from_json(&serde_json::to_vec(&json).unwrap()).unwrap()
}

fn config(t: ProviderType, server: &CaptureServer) -> ProviderConfig {
    let base = &server.base;
    let mut c = ProviderConfig::new(t, base);
    c.uid = PROVIDER_UID.into();
    c.id = "flux-system/test".into();
    match t {
        ProviderType::Generic => {
            c.address = format!("{base}/hook");
            c.headers = BTreeMap::from([("X-Custom".to_string(), "custom-value".to_string())]);
        }
        ProviderType::GenericHmac => {
            c.address = format!("{base}/hook");
            c.token = "hmac-key".into();
        }
        ProviderType::Slack => {
            c.address = format!("{base}/api/chat.postMessage");
            c.token = "xoxb-token".into();
            c.channel = "general".into();
        }
        ProviderType::Discord => c.address = format!("{base}/api/webhooks/1234/abcd"),
        ProviderType::Rocket => {
            c.address = format!("{base}/hooks/abcd");
            c.channel = "ops".into();
            c.username = "flux".into();
        }
        ProviderType::MsTeams => {
            c.address = format!("{base}/workflows/abcd/triggers/manual/paths/invoke");
        }
        ProviderType::GoogleChat => {
            c.address = format!("{base}/v1/spaces/AAAA/messages?key=k&token=t");
        }
        ProviderType::Webex => {
            c.address = format!("{base}/v1/messages");
            c.channel = "Y2lzY29zcGFyazovL3VzL1JPT00v".into();
            c.token = "webex-bot-token".into();
        }
        ProviderType::Telegram => {
            c.api_base_override = Some(base.clone());
            c.channel = "-1001234567890:42".into();
            c.token = "123456:ABC-DEF".into();
        }
        ProviderType::Lark => c.address = format!("{base}/open-apis/bot/v2/hook/abcd"),
        ProviderType::Matrix => {
            c.channel = "!room:example.org".into();
            c.token = "matrix-token".into();
        }
        ProviderType::Opsgenie => {
            c.address = format!("{base}/v2/alerts");
            c.token = "genie-key".into();
        }
        ProviderType::PagerDuty => c.channel = "routing-key-123".into(),
        ProviderType::DataDog => c.token = "dd-api-key".into(),
        ProviderType::Sentry => {
            c.address = format!("http://publickey@{}/42", server.addr);
            c.channel = "production".into();
        }
        ProviderType::Alertmanager => {
            c.address = format!("{base}/api/v2/alerts");
            c.username = "am-user".into();
            c.password = "am-pass".into();
        }
        ProviderType::Grafana => {
            c.address = format!("{base}/api/annotations");
            c.token = "grafana-token".into();
        }
        ProviderType::GitHub => {
            c.address = "https://github.com/example-org/fleet".into();
            c.api_base_override = Some(base.clone());
            c.token = "ghp_token".into();
        }
        ProviderType::GitLab => {
            c.address = format!("{base}/example-group/fleet.git");
            c.token = "glpat-token".into();
        }
        ProviderType::Gitea => {
            c.address = format!("{base}/example-org/fleet");
            c.token = "gitea-token".into();
        }
        ProviderType::Bitbucket => {
            c.address = "https://bitbucket.org/example-org/fleet".into();
            c.api_base_override = Some(base.clone());
            c.token = "bb-user:app-password".into();
        }
        ProviderType::BitbucketServer => {
            c.address = format!("{base}/scm/proj/fleet.git");
            c.token = "bbs-token".into();
        }
        ProviderType::AzureDevOps => {
            c.address = format!("{base}/example-org/example-project/_git/fleet");
            c.token = "azdo-pat".into();
        }
        _ => {}
    }
    c
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(format!("{name}.json"))
}

fn render(requests: &[Captured], server: &CaptureServer) -> String {
    let port = server.addr.to_string();
    let list: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            let headers: BTreeMap<String, String> = r
                .headers
                .iter()
                .filter(|(k, v)| {
                    !(matches!(k.as_str(), "host" | "content-length" | "accept-encoding")
                        || (k == "accept" && v == "*/*"))
                })
                .map(|(k, v)| (k.clone(), v.replace(&port, "127.0.0.1:PORT")))
                .collect();
            serde_json::json!({
                "method": r.method,
                "uri": r.uri.replace(&port, "127.0.0.1:PORT"),
                "headers": headers,
                "body": String::from_utf8_lossy(&r.body).replace(&port, "127.0.0.1:PORT"),
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&list).unwrap();
    text.push('\n');
    text
}

fn compare_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("FLUX_NOTIFY_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden {}", path.display()));
    assert_eq!(
        actual,
        expected,
        "golden mismatch for {name} ({})",
        path.display()
    );
}

const HTTP_TYPES: &[ProviderType] = &[
    ProviderType::Generic,
    ProviderType::GenericHmac,
    ProviderType::Slack,
    ProviderType::Discord,
    ProviderType::Rocket,
    ProviderType::MsTeams,
    ProviderType::GoogleChat,
    ProviderType::Webex,
    ProviderType::Telegram,
    ProviderType::Lark,
    ProviderType::Matrix,
    ProviderType::Opsgenie,
    ProviderType::PagerDuty,
    ProviderType::DataDog,
    ProviderType::Sentry,
    ProviderType::Alertmanager,
    ProviderType::Grafana,
    ProviderType::GitHub,
    ProviderType::GitLab,
    ProviderType::Gitea,
    ProviderType::Bitbucket,
    ProviderType::BitbucketServer,
    ProviderType::AzureDevOps,
];

async fn send_all(cfg: &ProviderConfig, event: &Event) -> usize {
    provider::validate(cfg).unwrap();
    let out = provider::build(event, cfg).unwrap();
    let sender = Sender::new(RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    });
    for o in &out {
        sender.send(cfg, o).await.unwrap();
    }
    // A commit status is a listing GET plus the POST.
    out.iter()
        .map(|o| {
            if matches!(o, Outbound::CommitStatus { .. }) {
                2
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn http_provider_goldens() {
    for &t in HTTP_TYPES {
        for severity in ["info", "error"] {
            let server = CaptureServer::start().await;
            let cfg = config(t, &server);
            let sent = send_all(&cfg, &notification(severity)).await;
            let requests = server.wait_for(sent).await;
            assert_eq!(requests.len(), sent, "{t:?}");
            compare_golden(
                &format!("{}.{severity}", t.as_str()),
                &render(&requests, &server),
            );
        }
    }
}

#[tokio::test]
async fn msteams_legacy_connector_through_proxy() {
    // The legacy MessageCard format is chosen by host (*.webhook.office.com); the capture
    // server acts as the HTTP proxy, which also proves proxy support end to end.
    let proxy = CaptureServer::start().await;
    let mut cfg = config(ProviderType::MsTeams, &proxy);
    cfg.address = "http://example.webhook.office.com/webhookb2/abcd".into();
    cfg.proxy = Some(proxy.base.clone());
    let sent = send_all(&cfg, &notification("error")).await;
    let requests = proxy.wait_for(sent).await;
    assert_eq!(
        requests[0].header("host"),
        Some("example.webhook.office.com")
    );
    compare_golden("msteams-legacy.error", &render(&requests, &proxy));
}

#[tokio::test]
async fn generic_hmac_signature_is_real_hmac_sha256() {
    use hmac::{Hmac, Mac};
    let server = CaptureServer::start().await;
    let cfg = config(ProviderType::GenericHmac, &server);
    send_all(&cfg, &notification("info")).await;
    let req = &server.wait_for(1).await[0];
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hmac-key").unwrap();
    mac.update(&req.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(req.header("x-signature"), Some(expected.as_str()));
}

#[test]
fn payload_only_providers() {
    let event = notification("info");
    let mut cfg = ProviderConfig::new(ProviderType::GooglePubSub, "my-gcp-project");
    cfg.channel = "flux-events".into();
    cfg.headers = BTreeMap::from([("team".to_string(), "platform".to_string())]);
    let out = provider::build(&event, &cfg).unwrap();
    let Outbound::PubSub {
        project,
        topic,
        data,
        attributes,
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (project.as_str(), topic.as_str()),
        ("my-gcp-project", "flux-events")
    );
    assert_eq!(attributes.get("team").map(String::as_str), Some("platform"));
    compare_golden(
        "googlepubsub.info",
        &format!("{}\n", String::from_utf8_lossy(data)),
    );

    let cfg = ProviderConfig::new(ProviderType::AzureEventHub, "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v;EntityPath=hub");
    let out = provider::build(&event, &cfg).unwrap();
    let Outbound::EventHub { body, .. } = &out[0] else {
        panic!("{out:?}")
    };
    compare_golden(
        "azureeventhub.info",
        &format!("{}\n", String::from_utf8_lossy(body)),
    );
}

#[test]
fn commit_status_skips_progressing_and_needs_revision() {
    let server_base = "http://127.0.0.1:9";
    let mut event = notification("info");
    event.reason = "Progressing".into();
    let mut cfg = ProviderConfig::new(ProviderType::GitHub, "https://github.com/o/r");
    cfg.token = "t".into();
    assert!(provider::build(&event, &cfg).unwrap().is_empty());
    // Gitea reports progressing as pending instead.
    let mut gitea = ProviderConfig::new(ProviderType::Gitea, &format!("{server_base}/o/r"));
    gitea.token = "t".into();
    let Outbound::CommitStatus { create, .. } = &provider::build(&event, &gitea).unwrap()[0] else {
        panic!()
    };
    assert!(String::from_utf8_lossy(&create.body).contains(r#""state":"pending""#));
    event.reason = "ReconciliationSucceeded".into();
    event.metadata.remove("revision");
    let err = provider::build(&event, &cfg).unwrap_err();
    assert_eq!(err.to_string(), "event for Kustomization/apps/webapp cannot be sent to a github provider: missing revision metadata");
}

#[tokio::test]
async fn nats_publishes_to_a_real_server() {
    let Ok(port) = free_port() else { return };
    let child = tokio::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(_child) = child else {
        println!("NOTICE: nats-server not installed; skipping the NATS provider test (.ci/setup.d/notify.sh installs it)");
        return;
    };
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Subscribe with a raw client first, then publish through the provider.
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let sub = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (r, mut w) = sub.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    w.write_all(b"CONNECT {\"verbose\":false}\r\nSUB flux.events 1\r\nPING\r\n")
        .await
        .unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        if line.trim() == "PONG" {
            break;
        }
    }
    let mut cfg = ProviderConfig::new(ProviderType::Nats, &format!("nats://{addr}"));
    cfg.channel = "flux.events".into();
    let event = notification("info");
    send_all(&cfg, &event).await;
    let msg = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            if let Some(rest) = line.trim().strip_prefix("MSG flux.events 1 ") {
                let len: usize = rest.parse().unwrap();
                let mut buf = vec![0; len + 2];
                r.read_exact(&mut buf).await.unwrap();
                buf.truncate(len);
                return buf;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(msg, event.to_json());

    // Unreachable server → clear delivery error.
    let mut bad = ProviderConfig::new(ProviderType::Nats, "nats://127.0.0.1:1");
    bad.channel = "x".into();
    let out = provider::build(&event, &bad).unwrap();
    let err = Sender::default().send(&bad, &out[0]).await.unwrap_err();
    assert!(
        err.to_string().contains("error connecting to server"),
        "{err}"
    );
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test]
async fn identical_commit_status_is_not_reposted() {
    let event = notification("info");
    for (t, existing) in [
        (
            ProviderType::GitHub,
            r#"[{"state":"success","description":"reconciliation succeeded","context":"kustomization/webapp/0c4a6a3e"}]"#,
        ),
        (
            ProviderType::GitLab,
            r#"[{"status":"success","description":"reconciliation succeeded","name":"kustomization/webapp/0c4a6a3e"}]"#,
        ),
        (
            ProviderType::Gitea,
            r#"[{"status":"success","description":"reconciliation succeeded","context":"kustomization/webapp/0c4a6a3e"}]"#,
        ),
        (
            ProviderType::Bitbucket,
            r#"{"state":"SUCCESSFUL","description":"reconciliation succeeded"}"#,
        ),
        (
            ProviderType::BitbucketServer,
            r#"{"key":"e440b41f774c340e615ea17673b85677308c5917","state":"SUCCESSFUL","description":"reconciliation succeeded","name":"kustomization/webapp [reconciliation succeeded]"}"#,
        ),
        (
            ProviderType::AzureDevOps,
            r#"{"count":1,"value":[{"state":"succeeded","description":"reconciliation succeeded","context":{"name":"kustomization/webapp/0c4a6a3e","genre":"fluxcd:Production cluster"}}]}"#,
        ),
    ] {
        let server = CaptureServer::start().await;
        server.set_get_body(existing);
        let cfg = config(t, &server);
        let out = provider::build(&event, &cfg).unwrap();
        Sender::default().send(&cfg, &out[0]).await.unwrap();
        let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
        assert_eq!(methods, ["GET"], "{t:?}: duplicate must not be posted");
        // A different latest state is posted.
        let server = CaptureServer::start().await;
        server.set_get_body(&existing.replace("ucce", "XXXX"));
        let cfg = config(t, &server);
        let out = provider::build(&event, &cfg).unwrap();
        Sender::default().send(&cfg, &out[0]).await.unwrap();
        let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
        assert_eq!(methods, ["GET", "POST"], "{t:?}");
    }
}
