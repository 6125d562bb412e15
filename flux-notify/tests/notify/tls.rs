//! certSecretRef: a provider trusting a custom CA reaches an HTTPS endpoint whose certificate
//! that CA signed; without it the handshake fails with a clear error.

use std::sync::{Arc, Mutex};

use flux_notify::provider::{self, Provider, Secrets};
use flux_notify::sender::{RetryPolicy, Sender};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &str = include_str!("../data/tls/ca.crt");
const CERT: &[u8] = include_bytes!("../data/tls/server.crt");
const KEY: &[u8] = include_bytes!("../data/tls/server.key");

/// A one-request-per-connection HTTPS server recording request bodies.
async fn https_server() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CERT)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            seen.lock()
                                .unwrap()
                                .push(buf[end + 4..end + 4 + len].to_vec());
                            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                            let _ = tls.shutdown().await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, bodies)
}

#[tokio::test]
async fn custom_ca_from_cert_secret_ref() {
    let (url, bodies) = https_server().await;
    let event = crate::providers::notification("info");
    let sender = Sender::new(RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    });

    let yaml = format!("metadata: {{name: hook, namespace: apps}}\nspec: {{type: generic, address: '{url}', certSecretRef: {{name: ca}}}}");
    let mut secrets = Secrets::default();
    secrets.insert("apps", "ca", &[("ca.crt", CA)]);
    let cfg = Provider::from_yaml(&yaml)
        .unwrap()
        .resolve(&secrets)
        .unwrap();
    let out = provider::build(&event, &cfg).unwrap();
    sender.send(&cfg, &out[0]).await.unwrap();
    assert_eq!(bodies.lock().unwrap().as_slice(), [event.to_json()]);

    // Without the CA the server certificate is not trusted: a clear delivery error.
    let yaml = format!(
        "metadata: {{name: hook, namespace: apps}}\nspec: {{type: generic, address: '{url}'}}"
    );
    let cfg = Provider::from_yaml(&yaml)
        .unwrap()
        .resolve(&Secrets::default())
        .unwrap();
    let err = sender.send(&cfg, &out[0]).await.unwrap_err();
    assert_eq!(err.reason(), "NotificationDispatchFailed");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(bodies.lock().unwrap().len(), 1);

    // A certSecretRef without usable keys is a configuration error.
    let yaml = format!("metadata: {{name: hook, namespace: apps}}\nspec: {{type: generic, address: '{url}', certSecretRef: {{name: empty}}}}");
    let mut secrets = Secrets::default();
    secrets.insert("apps", "empty", &[("other", "x")]);
    let err = Provider::from_yaml(&yaml)
        .unwrap()
        .resolve(&secrets)
        .unwrap_err();
    assert_eq!(err.reason(), "ValidationFailed");
}
