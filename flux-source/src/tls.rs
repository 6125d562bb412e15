//! TLS and proxy setup shared by every HTTP client of the crate: the rustls provider, the
//! `certSecretRef` keys (`tls.crt`, `tls.key`, `ca.crt`) and `proxySecretRef` (`address`,
//! `username`, `password`).

use std::collections::BTreeMap;
use std::sync::Once;

use crate::error::{Error, Result};

/// Installs rustls's ring provider as the process default (once). reqwest is built without a
/// bundled provider so that no aws-lc build is needed.
pub fn ensure_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A TLS client certificate and its private key (PEM).
#[derive(Clone, Default)]
pub struct ClientCert {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("ClientCert")
            .field("cert_pem_len", &self.cert_pem.len())
            .finish_non_exhaustive()
    }
}

impl ClientCert {
    /// The reqwest identity (certificate chain + key in one PEM buffer).
    pub fn identity(&self) -> Result<reqwest::Identity> {
        let mut pem = self.cert_pem.clone();
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        pem.extend_from_slice(&self.key_pem);
        reqwest::Identity::from_pem(&pem).map_err(|e| {
            Error::invalid(
                "tls.crt/tls.key",
                "",
                format!("invalid client certificate or key: {e}"),
            )
        })
    }
}

/// TLS settings from a `certSecretRef` Secret.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// `ca.crt`: extra trusted CAs.
    pub ca_pem: Option<Vec<u8>>,
    /// `tls.crt` + `tls.key`: client certificate for mutual TLS.
    pub client_cert: Option<ClientCert>,
}

impl TlsConfig {
    /// Reads `tls.crt`, `tls.key` and `ca.crt` (also the legacy `certFile`, `keyFile`,
    /// `caFile`). A certificate without its key (or the reverse) is an error, as in Flux.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<TlsConfig> {
        let get = |new: &str, old: &str| data.get(new).or_else(|| data.get(old)).cloned();
        let cert = get("tls.crt", "certFile");
        let key = get("tls.key", "keyFile");
        let client_cert = match (cert, key) {
            (Some(cert_pem), Some(key_pem)) => Some(ClientCert { cert_pem, key_pem }),
            (None, None) => None,
            _ => {
                return Err(Error::invalid(
                    "cert secret",
                    "tls.crt/tls.key",
                    "'tls.crt' and 'tls.key' must be set together",
                ))
            }
        };
        let ca_pem = get("ca.crt", "caFile");
        if ca_pem.is_none() && client_cert.is_none() {
            return Err(Error::invalid(
                "cert secret",
                "",
                "no 'ca.crt', 'tls.crt' or 'tls.key' found",
            ));
        }
        Ok(TlsConfig {
            ca_pem,
            client_cert,
        })
    }
}

/// A proxy from a `proxySecretRef` Secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// `http://`, `https://` or `socks5://` URL.
    pub address: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("address", &self.address)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl ProxyConfig {
    /// Reads `address` (required), `username`, `password`.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<ProxyConfig> {
        let text = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let address = text("address").ok_or_else(|| {
            Error::invalid(
                "proxy secret",
                "address",
                "invalid proxy secret: key 'address' is missing",
            )
        })?;
        let proxy = ProxyConfig {
            address,
            username: text("username"),
            password: text("password"),
        };
        proxy.validate()?;
        Ok(proxy)
    }

    fn validate(&self) -> Result<()> {
        let ok = ["http://", "https://", "socks5://"]
            .iter()
            .any(|s| self.address.starts_with(s));
        if !ok {
            return Err(Error::invalid(
                "proxy address",
                self.address.clone(),
                "must start with http://, https:// or socks5://",
            ));
        }
        Ok(())
    }

    /// The reqwest proxy for every scheme, with basic credentials when given.
    pub fn to_reqwest(&self) -> Result<reqwest::Proxy> {
        self.validate()?;
        let mut proxy = reqwest::Proxy::all(&self.address)
            .map_err(|e| Error::invalid("proxy address", self.address.clone(), e.to_string()))?;
        if let Some(user) = &self.username {
            proxy = proxy.basic_auth(user, self.password.as_deref().unwrap_or(""));
        }
        Ok(proxy)
    }

    /// The address with credentials as URL user info (for clients that take a URL string).
    pub fn url_with_credentials(&self) -> Result<String> {
        self.validate()?;
        let Some(user) = &self.username else {
            return Ok(self.address.clone());
        };
        let (scheme, rest) = self
            .address
            .split_once("://")
            .ok_or_else(|| Error::invalid("proxy address", self.address.clone(), "no scheme"))?;
        let password = self.password.as_deref().unwrap_or("");
        Ok(format!(
            "{scheme}://{}:{}@{rest}",
            percent_encode(user),
            percent_encode(password)
        ))
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&hex::encode_upper([b]));
        }
    }
    out
}

/// Applies CA, client certificate and proxy to a blocking reqwest client builder.
pub fn configure_blocking(
    mut builder: reqwest::blocking::ClientBuilder,
    ca_pem: Option<&[u8]>,
    client_cert: Option<&ClientCert>,
    proxy: Option<&ProxyConfig>,
) -> Result<reqwest::blocking::ClientBuilder> {
    ensure_provider();
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::invalid("ca.crt", "", e.to_string()))?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some(cert) = client_cert {
        builder = builder.identity(cert.identity()?);
    }
    if let Some(proxy) = proxy {
        builder = builder.proxy(proxy.to_reqwest()?);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn proxy_secret_keys_and_url() {
        let p = ProxyConfig::from_secret_data(&data(&[
            ("address", "http://127.0.0.1:3128"),
            ("username", "u@x"),
            ("password", "p:w"),
        ]))
        .unwrap();
        assert_eq!(
            p.url_with_credentials().unwrap(),
            "http://u%40x:p%3Aw@127.0.0.1:3128"
        );
        assert!(!format!("{p:?}").contains("p:w"));
        let err = ProxyConfig::from_secret_data(&data(&[("username", "u")])).unwrap_err();
        assert!(err.to_string().contains("'address' is missing"), "{err}");
        assert!(ProxyConfig::from_secret_data(&data(&[("address", "ftp://x")])).is_err());
    }

    #[test]
    fn cert_secret_requires_cert_and_key_together() {
        let err = TlsConfig::from_secret_data(&data(&[("tls.crt", "x")])).unwrap_err();
        assert!(err.to_string().contains("must be set together"), "{err}");
        let ca = TlsConfig::from_secret_data(&data(&[("ca.crt", "pem")])).unwrap();
        assert_eq!(ca.ca_pem.as_deref(), Some(&b"pem"[..]));
        assert!(ca.client_cert.is_none());
        assert!(TlsConfig::from_secret_data(&BTreeMap::new()).is_err());
        let bad = ClientCert {
            cert_pem: b"junk".to_vec(),
            key_pem: b"junk".to_vec(),
        };
        assert!(bad.identity().is_err());
    }
}
