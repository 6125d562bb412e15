//! A minimal HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz` (Flux's
//! `--metrics-addr` and `--health-addr` endpoints), one request per connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::metrics::Metrics;

/// What the server answers.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Metrics served at `/metrics` (absent: 404).
    pub metrics: Option<Arc<Metrics>>,
    /// Readiness for `/readyz` (e.g. caches synced, leadership held or not required).
    pub ready: Arc<AtomicBool>,
}

/// Status line, content type and body for a request path.
pub fn respond(
    endpoints: &Endpoints,
    method: &str,
    path: &str,
) -> (&'static str, &'static str, String) {
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".into(),
        );
    }
    match path.split('?').next().unwrap_or_default() {
        "/healthz" => ("200 OK", "text/plain", "ok".into()),
        "/readyz" if endpoints.ready.load(Ordering::SeqCst) => {
            ("200 OK", "text/plain", "ok".into())
        }
        "/readyz" => ("503 Service Unavailable", "text/plain", "not ready".into()),
        "/metrics" => match &endpoints.metrics {
            Some(metrics) => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                metrics.render(),
            ),
            None => ("404 Not Found", "text/plain", "not found\n".into()),
        },
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

/// Binds `addr` and returns the bound address and the serving task.
pub async fn serve(
    addr: SocketAddr,
    endpoints: Endpoints,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let mut read = 0;
                while read < buffer.len() {
                    match socket.read(&mut buffer[read..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                    if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buffer[..read]);
                let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                let (status, content_type, body) = respond(&endpoints, method, path);
                let body = if method == "HEAD" {
                    String::new()
                } else {
                    body
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    #[tokio::test]
    async fn serves_probes_and_metrics() {
        let metrics = Arc::new(Metrics::default());
        metrics.record_suspend(
            &super::super::metrics::ObjectKey::new("GitRepository", "repo", "default"),
            true,
        );
        let ready = Arc::new(AtomicBool::new(false));
        let endpoints = Endpoints {
            metrics: Some(metrics),
            ready: ready.clone(),
        };
        let (addr, task) = serve("127.0.0.1:0".parse().expect("addr"), endpoints)
            .await
            .expect("bind");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        ready.store(true, Ordering::SeqCst);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        let metrics = get(addr, "/metrics").await;
        assert!(
            metrics.contains(
                "gotk_suspend_status{kind=\"GitRepository\",name=\"repo\",namespace=\"default\"} 1"
            ),
            "{metrics}"
        );
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        task.abort();
    }
}
