//! Delivery: sends [`Outbound`] values built by [`crate::provider::build`].
//!
//! HTTP goes through `reqwest` (rustls) with the provider timeout, proxy and custom CA /
//! client certificate, retried like Go's `retryablehttp` (4 retries, exponential backoff
//! 2s–30s, on connection errors, 429 and 5xx except 501). NATS is a minimal publish over
//! TCP. Error messages are masked with the provider's token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::error::{Error, Result};
use crate::provider::{HttpRequest, Outbound, ProviderConfig, ProviderType, TlsMaterial};

/// Retry policy.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff.
    pub wait_min: Duration,
    /// Backoff cap.
    pub wait_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            wait_min: Duration::from_secs(2),
            wait_max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): `min * 2^attempt`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.wait_min.saturating_mul(factor).min(self.wait_max)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    proxy: Option<String>,
    tls: (Option<Vec<u8>>, Option<Vec<u8>>),
    timeout: Duration,
}

/// Sends notifications, caching one HTTP client per (proxy, TLS, timeout) combination.
#[derive(Debug, Default)]
pub struct Sender {
    retry: RetryPolicy,
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

fn delivery(cfg: &ProviderConfig, target: &str, message: impl std::fmt::Display) -> Error {
    Error::Delivery {
        target: cfg.mask(target),
        message: cfg.mask(&message.to_string()),
    }
}

impl Sender {
    /// A sender with the given retry policy.
    pub fn new(retry: RetryPolicy) -> Self {
        Sender {
            retry,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, cfg: &ProviderConfig) -> Result<reqwest::Client> {
        let key = ClientKey {
            proxy: cfg.proxy.clone(),
            tls: (cfg.tls.ca_pem.clone(), cfg.tls.client_pem.clone()),
            timeout: cfg.timeout,
        };
        if let Some(c) = self.clients.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let client = build_client(cfg, &cfg.tls)?;
        if let Ok(mut m) = self.clients.lock() {
            m.insert(key, client.clone());
        }
        Ok(client)
    }

    /// Sends one outbound delivery.
    pub async fn send(&self, cfg: &ProviderConfig, outbound: &Outbound) -> Result<()> {
        match outbound {
            Outbound::Http(req) => self.send_http(cfg, req).await,
            Outbound::Nats { server, subject, payload, username, password } => {
                nats_publish(server, subject, payload, username, password, cfg.timeout)
                    .await
                    .map_err(|e| delivery(cfg, server, format!("error publishing event to subject {subject}: {e}")))
            }
            Outbound::PubSub { project, topic, .. } => Err(delivery(
                cfg,
                &format!("projects/{project}/topics/{topic}"),
                "publishing to Google Pub/Sub is not supported by flux-rs (payload building only)",
            )),
            Outbound::EventHub { .. } => Err(delivery(
                cfg,
                "azure event hub",
                "sending to Azure Event Hubs (AMQP) is not supported by flux-rs (payload building only)",
            )),
        }
    }

    async fn send_http(&self, cfg: &ProviderConfig, req: &HttpRequest) -> Result<()> {
        let client = self.client(cfg)?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| delivery(cfg, &req.url, e))?;
        let mut attempt = 0;
        loop {
            let mut builder = client
                .request(method.clone(), &req.url)
                .body(req.body.clone());
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            let (retryable, err) = match builder.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        return check_response(cfg, req, resp).await;
                    }
                    let body = resp.text().await.unwrap_or_default();
                    let retry = status.as_u16() == 429
                        || (status.is_server_error() && status.as_u16() != 501);
                    (
                        retry,
                        format!(
                            "request failed with status code {}: {}",
                            status.as_u16(),
                            body.trim()
                        ),
                    )
                }
                Err(e) => (
                    !e.is_builder(),
                    format!("failed to execute request: {}", error_chain(&e)),
                ),
            };
            if !retryable || attempt >= self.retry.max_retries {
                let suffix = if attempt > 0 {
                    format!(" (giving up after {} attempts)", attempt + 1)
                } else {
                    String::new()
                };
                return Err(delivery(cfg, &req.url, format!("{err}{suffix}")));
            }
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Slack's Web API answers 200 with `{"ok": false}` on errors.
async fn check_response(
    cfg: &ProviderConfig,
    req: &HttpRequest,
    resp: reqwest::Response,
) -> Result<()> {
    if cfg.provider_type == Some(ProviderType::Slack)
        && req.url == "https://slack.com/api/chat.postMessage"
    {
        let v: serde_json::Value = resp.json().await.map_err(|e| {
            delivery(
                cfg,
                &req.url,
                format!("unable to unmarshal response body: {e}"),
            )
        })?;
        if v.get("ok") != Some(&serde_json::Value::Bool(true)) {
            let why = v.get("error").and_then(|e| e.as_str()).unwrap_or_default();
            return Err(delivery(
                cfg,
                &req.url,
                format!("Slack responded with error: {why}"),
            ));
        }
    }
    Ok(())
}

fn build_client(cfg: &ProviderConfig, tls: &TlsMaterial) -> Result<reqwest::Client> {
    let invalid = |field: &str, e: &dyn std::fmt::Display| cfg.invalid(field, e.to_string());
    let mut b = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        .pool_max_idle_per_host(64);
    if let Some(proxy) = &cfg.proxy {
        let p = reqwest::Proxy::all(proxy.as_str())
            .map_err(|e| invalid("proxy", &format!("unable to parse proxy URL: {e}")))?;
        b = b.proxy(p);
    }
    if let Some(ca) = &tls.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(ca).map_err(|e| {
            invalid(
                "certSecretRef.ca.crt",
                &format!("invalid CA certificate: {e}"),
            )
        })?;
        if certs.is_empty() {
            return Err(invalid(
                "certSecretRef.ca.crt",
                &"no PEM certificates found",
            ));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let Some(pem) = &tls.client_pem {
        let id = reqwest::Identity::from_pem(pem).map_err(|e| {
            invalid(
                "certSecretRef.tls.crt",
                &format!("invalid client certificate/key: {e}"),
            )
        })?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| invalid("spec", &format!("failed to build HTTP client: {e}")))
}

/// Publishes one message to a NATS server (`nats://host:port`, default port 4222):
/// reads `INFO`, sends `CONNECT` (with user/pass if set), `PUB`, then `PING` and waits for
/// `PONG` so errors (`-ERR`) are reported.
pub async fn nats_publish(
    server: &str,
    subject: &str,
    payload: &[u8],
    username: &str,
    password: &str,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let work = async {
        let hostport = server
            .strip_prefix("nats://")
            .unwrap_or(server)
            .trim_end_matches('/');
        let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
        let addr = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:4222")
        };
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("error connecting to server: {e}"))?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let mut line = String::new();
        lines
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if !line.starts_with("INFO ") {
            return Err(format!("unexpected server greeting: {}", line.trim()));
        }
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "name": "NATS Provider Publisher",
            "lang": "rust", "version": env!("CARGO_PKG_VERSION"), "protocol": 1,
        });
        if !username.is_empty() && !password.is_empty() {
            connect["user"] = username.into();
            connect["pass"] = password.into();
        }
        let mut msg =
            format!("CONNECT {connect}\r\nPUB {subject} {}\r\n", payload.len()).into_bytes();
        msg.extend_from_slice(payload);
        msg.extend_from_slice(b"\r\nPING\r\n");
        write.write_all(&msg).await.map_err(|e| e.to_string())?;
        loop {
            line.clear();
            if lines
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("connection closed by server".into());
            }
            let l = line.trim();
            if l == "PONG" {
                return Ok(());
            }
            if let Some(err) = l.strip_prefix("-ERR") {
                return Err(format!("error publishing message to server:{err}"));
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_exponential_and_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_secs(2));
        assert_eq!(p.backoff(1), Duration::from_secs(4));
        assert_eq!(p.backoff(3), Duration::from_secs(16));
        assert_eq!(p.backoff(4), Duration::from_secs(30));
    }

    #[test]
    fn bad_ca_is_a_config_error() {
        let mut cfg = ProviderConfig::new(ProviderType::Generic, "https://x");
        cfg.tls.ca_pem = Some(b"not a pem".to_vec());
        let err = Sender::default().client(&cfg).unwrap_err();
        assert_eq!(err.reason(), "ValidationFailed");
        assert!(err.to_string().contains("ca.crt"), "{err}");
    }
}
