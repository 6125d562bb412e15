//! Providers: where notifications go, and the exact request each provider type sends.
//!
//! [`build`] is pure: event + resolved [`ProviderConfig`] → the requests to make
//! ([`Outbound`]), never sent here. [`Provider::resolve`] turns a Provider object plus its
//! Secrets into a `ProviderConfig`, validating what each type needs. Sending lives in
//! [`crate::sender`].

mod chat;
mod git;
mod ops;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::{LocalObjectReference, ObjectMeta};
use crate::error::{Error, Result};
use crate::event::Event;

pub use git::{default_commit_status, parse_git_address, parse_revision, split_camel_case};

/// Every provider type this crate implements (Provider `spec.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderType {
    /// `generic`
    Generic,
    /// `generic-hmac`
    GenericHmac,
    /// `slack`
    Slack,
    /// `discord`
    Discord,
    /// `msteams`
    MsTeams,
    /// `googlechat`
    GoogleChat,
    /// `googlepubsub`
    GooglePubSub,
    /// `webex`
    Webex,
    /// `telegram`
    Telegram,
    /// `lark`
    Lark,
    /// `matrix`
    Matrix,
    /// `rocket`
    Rocket,
    /// `opsgenie`
    Opsgenie,
    /// `pagerduty`
    PagerDuty,
    /// `datadog`
    DataDog,
    /// `sentry`
    Sentry,
    /// `alertmanager`
    Alertmanager,
    /// `grafana`
    Grafana,
    /// `nats`
    Nats,
    /// `azureeventhub`
    AzureEventHub,
    /// `github`
    GitHub,
    /// `gitlab`
    GitLab,
    /// `gitea`
    Gitea,
    /// `bitbucket`
    Bitbucket,
    /// `bitbucketserver`
    BitbucketServer,
    /// `azuredevops`
    AzureDevOps,
}

const TYPE_NAMES: &[(&str, ProviderType)] = &[
    ("generic", ProviderType::Generic),
    ("generic-hmac", ProviderType::GenericHmac),
    ("slack", ProviderType::Slack),
    ("discord", ProviderType::Discord),
    ("msteams", ProviderType::MsTeams),
    ("googlechat", ProviderType::GoogleChat),
    ("googlepubsub", ProviderType::GooglePubSub),
    ("webex", ProviderType::Webex),
    ("telegram", ProviderType::Telegram),
    ("lark", ProviderType::Lark),
    ("matrix", ProviderType::Matrix),
    ("rocket", ProviderType::Rocket),
    ("opsgenie", ProviderType::Opsgenie),
    ("pagerduty", ProviderType::PagerDuty),
    ("datadog", ProviderType::DataDog),
    ("sentry", ProviderType::Sentry),
    ("alertmanager", ProviderType::Alertmanager),
    ("grafana", ProviderType::Grafana),
    ("nats", ProviderType::Nats),
    ("azureeventhub", ProviderType::AzureEventHub),
    ("github", ProviderType::GitHub),
    ("gitlab", ProviderType::GitLab),
    ("gitea", ProviderType::Gitea),
    ("bitbucket", ProviderType::Bitbucket),
    ("bitbucketserver", ProviderType::BitbucketServer),
    ("azuredevops", ProviderType::AzureDevOps),
];

impl FromStr for ProviderType {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        TYPE_NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
            .ok_or(())
    }
}

impl ProviderType {
    /// All implemented types.
    pub fn all() -> impl Iterator<Item = ProviderType> {
        TYPE_NAMES.iter().map(|(_, t)| *t)
    }

    /// The `spec.type` string.
    pub fn as_str(self) -> &'static str {
        TYPE_NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }

    /// Git commit-status providers.
    pub fn is_commit_status(self) -> bool {
        matches!(
            self,
            ProviderType::GitHub
                | ProviderType::GitLab
                | ProviderType::Gitea
                | ProviderType::Bitbucket
                | ProviderType::BitbucketServer
                | ProviderType::AzureDevOps
        )
    }

    /// `generic` and `generic-hmac`.
    pub fn is_generic(self) -> bool {
        matches!(self, ProviderType::Generic | ProviderType::GenericHmac)
    }

    /// Whether a provider of this type takes the event, per notification-controller's rules:
    /// commit-status update events go only to commit-status and generic providers;
    /// commit-status providers take an event only if it is such an update, carries
    /// `event.toolkit.fluxcd.io/commit`, or is an error.
    pub fn accepts(self, event: &Event) -> bool {
        if !self.is_commit_status() && !self.is_generic() && event.is_commit_status_update() {
            return false;
        }
        if self.is_commit_status()
            && !event.has_commit_key()
            && !event.is_commit_status_update()
            && event.severity != crate::event::Severity::Error
        {
            return false;
        }
        true
    }
}

/// `Provider.spec` (v1beta3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// Provider type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Channel / room / topic / subject.
    #[serde(default)]
    pub channel: String,
    /// Bot user name.
    #[serde(default)]
    pub username: String,
    /// Endpoint address.
    #[serde(default)]
    pub address: String,
    /// Request timeout (Go duration, default `15s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Deprecated proxy URL.
    #[serde(default)]
    pub proxy: String,
    /// Secret with `address`, `token`, `username`, `password`, `headers`.
    #[serde(default)]
    pub secret_ref: Option<LocalObjectReference>,
    /// Secret with `ca.crt` (and `tls.crt`/`tls.key`).
    #[serde(default)]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Secret with the proxy `address`, `username`, `password`.
    #[serde(default)]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Suspended providers get nothing.
    #[serde(default)]
    pub suspend: bool,
    /// CEL expression for the commit status context.
    #[serde(default)]
    pub commit_status_expr: String,
    /// Workload identity service account (not supported here).
    #[serde(default)]
    pub service_account_name: String,
}

/// A Provider object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Provider {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ProviderSpec,
}

/// Secret data by `(namespace, name)`.
pub trait SecretSource {
    /// The Secret's `.data`, or `None` if it does not exist.
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
}

/// An in-memory set of Secrets.
#[derive(Debug, Clone, Default)]
pub struct Secrets(pub BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>);

impl Secrets {
    /// Adds a Secret with string values.
    pub fn insert(&mut self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        self.0.insert(
            (namespace.into(), name.into()),
            data.iter()
                .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
                .collect(),
        );
    }
}

impl SecretSource for Secrets {
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.0
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// TLS material for the HTTP client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsMaterial {
    /// PEM CA bundle (`ca.crt`).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate + key (`tls.crt` + `tls.key`).
    pub client_pem: Option<Vec<u8>>,
}

/// A Provider with its Secrets resolved: everything [`build`] and the sender need.
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    /// `namespace/name`.
    pub id: String,
    /// Provider UID (commit-status default context, Opsgenie alias).
    pub uid: String,
    /// The type.
    pub provider_type: Option<ProviderType>,
    /// Address (secret `address` wins over `spec.address`).
    pub address: String,
    /// `spec.channel`.
    pub channel: String,
    /// `spec.username` or secret `username`.
    pub username: String,
    /// Secret `password`.
    pub password: String,
    /// Secret `token` (trimmed).
    pub token: String,
    /// Secret `headers` (YAML map).
    pub headers: BTreeMap<String, String>,
    /// Proxy URL (from `proxySecretRef`, secret `proxy`, or `spec.proxy`).
    pub proxy: Option<String>,
    /// TLS material.
    pub tls: TlsMaterial,
    /// Request timeout.
    pub timeout: Duration,
    /// Raw secret data (for keys only some types read).
    pub secret_data: BTreeMap<String, Vec<u8>>,
    /// Whether the provider is suspended.
    pub suspend: bool,
    /// `spec.commitStatusExpr` (CEL; not evaluated by this crate).
    pub commit_status_expr: String,
    /// Overrides fixed SaaS API bases (api.telegram.org, api.github.com, api.bitbucket.org)
    /// so tests can point them at a local server; `None` in production.
    pub api_base_override: Option<String>,
}

impl ProviderConfig {
    /// A config for `provider_type` with an address, for tests and simple setups.
    pub fn new(provider_type: ProviderType, address: &str) -> Self {
        ProviderConfig {
            id: "default/provider".into(),
            provider_type: Some(provider_type),
            address: address.into(),
            timeout: DEFAULT_TIMEOUT,
            ..ProviderConfig::default()
        }
    }

    fn kind(&self) -> Result<ProviderType> {
        self.provider_type
            .ok_or_else(|| Error::UnknownProviderType {
                provider: self.id.clone(),
                type_name: String::new(),
            })
    }

    pub(crate) fn invalid(&self, field: &str, message: impl Into<String>) -> Error {
        Error::InvalidProvider {
            provider: self.id.clone(),
            provider_type: self.provider_type.map_or("", ProviderType::as_str).into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The address, required to be an absolute http(s) URL.
    pub(crate) fn url(&self) -> Result<reqwest::Url> {
        if self.address.is_empty() {
            return Err(self.invalid("address", "address is required"));
        }
        let url = reqwest::Url::parse(&self.address)
            .map_err(|e| self.invalid("address", format!("invalid URL '{}': {e}", self.address)))?;
        if url.host_str().is_none() {
            return Err(self.invalid(
                "address",
                format!("invalid URL '{}': no host", self.address),
            ));
        }
        Ok(url)
    }

    pub(crate) fn require_token(&self) -> Result<&str> {
        if self.token.is_empty() {
            Err(self.invalid("secretRef.token", "token is required"))
        } else {
            Ok(&self.token)
        }
    }

    /// Replaces every occurrence of the token in `text` with `*****` (Flux's masktoken).
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in [&self.token, &self.password] {
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), "*****");
            }
        }
        out
    }
}

/// Default provider timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Parses the Provider timeout (`^([0-9]+(\.[0-9]+)?(ms|s|m))+$`).
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else {
            return None;
        };
        total += value * unit;
        rest = &rest[len..];
    }
    Some(Duration::from_secs_f64(total))
}

fn secret_str(data: &BTreeMap<String, Vec<u8>>, key: &str) -> Option<String> {
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
}

impl Provider {
    /// Parses a Provider manifest (YAML or JSON).
    pub fn from_yaml(text: &str) -> Result<Self> {
        serde_yaml::from_str(text).map_err(|e| Error::InvalidConfig {
            object: "Provider".into(),
            field: "manifest".into(),
            message: e.to_string(),
        })
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    /// Resolves the Provider's Secrets and validates what its type needs (an unknown type, a
    /// missing Secret or a bad address is an error whose [`Error::reason`] is the `Ready=False`
    /// reason).
    pub fn resolve(&self, secrets: &dyn SecretSource) -> Result<ProviderConfig> {
        let id = self.id();
        let spec = &self.spec;
        let provider_type =
            ProviderType::from_str(&spec.type_).map_err(|()| Error::UnknownProviderType {
                provider: id.clone(),
                type_name: spec.type_.clone(),
            })?;
        let object = format!("Provider/{id}");
        let get = |name: &str| {
            secrets
                .secret(&self.metadata.namespace, name)
                .ok_or_else(|| Error::Secret {
                    object: object.clone(),
                    secret: name.into(),
                    message: "not found".into(),
                })
        };
        let timeout = match &spec.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => parse_timeout(t).ok_or_else(|| Error::InvalidProvider {
                provider: id.clone(),
                provider_type: spec.type_.clone(),
                field: "spec.timeout".into(),
                message: format!("invalid duration '{t}'"),
            })?,
        };
        let mut cfg = ProviderConfig {
            id: id.clone(),
            uid: self.metadata.uid.clone(),
            provider_type: Some(provider_type),
            address: spec.address.clone(),
            channel: spec.channel.clone(),
            username: spec.username.clone(),
            proxy: (!spec.proxy.is_empty()).then(|| spec.proxy.clone()),
            timeout,
            suspend: spec.suspend,
            commit_status_expr: spec.commit_status_expr.clone(),
            ..ProviderConfig::default()
        };
        if let Some(r) = &spec.secret_ref {
            let data = get(&r.name)?;
            if let Some(address) = data.get("address") {
                if address.len() > 2048 {
                    return Err(cfg.invalid(
                        "secretRef.address",
                        "address exceeds maximum length of 2048 bytes",
                    ));
                }
                cfg.address = String::from_utf8_lossy(address).trim().to_string();
            }
            if let Some(proxy) = secret_str(&data, "proxy") {
                cfg.proxy = Some(proxy);
            }
            if let Some(headers) = data.get("headers") {
                cfg.headers = serde_yaml::from_slice(headers).map_err(|e| {
                    cfg.invalid(
                        "secretRef.headers",
                        format!("failed to read headers from secret: {e}"),
                    )
                })?;
            }
            if let Some(token) = secret_str(&data, "token") {
                cfg.token = token;
            }
            if let Some(user) = secret_str(&data, "username") {
                cfg.username = user;
            }
            if let Some(pass) = secret_str(&data, "password") {
                cfg.password = pass;
            }
            if provider_type.is_commit_status() && spec.cert_secret_ref.is_none() {
                cfg.tls = tls_from(&data);
            }
            cfg.secret_data = data;
        }
        if let Some(r) = &spec.proxy_secret_ref {
            let data = get(&r.name)?;
            let address = secret_str(&data, "address").ok_or_else(|| {
                cfg.invalid("proxySecretRef.address", "proxy secret has no 'address'")
            })?;
            let mut url = reqwest::Url::parse(&address).map_err(|e| {
                cfg.invalid("proxySecretRef.address", format!("invalid proxy URL: {e}"))
            })?;
            if let Some(user) = secret_str(&data, "username") {
                let _ = url.set_username(&user);
                let _ = url.set_password(secret_str(&data, "password").as_deref());
            }
            cfg.proxy = Some(url.to_string());
        }
        if let Some(r) = &spec.cert_secret_ref {
            cfg.tls = tls_from(&get(&r.name)?);
            if cfg.tls == TlsMaterial::default() {
                return Err(cfg.invalid(
                    "certSecretRef",
                    format!("secret '{}' has no 'ca.crt' or 'tls.crt'/'tls.key'", r.name),
                ));
            }
        }
        if !spec.service_account_name.is_empty() {
            return Err(cfg.invalid(
                "spec.serviceAccountName",
                "to use spec.serviceAccountName for provider authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller",
            ));
        }
        validate(&cfg)?;
        Ok(cfg)
    }
}

fn tls_from(data: &BTreeMap<String, Vec<u8>>) -> TlsMaterial {
    let pick = |a: &str, b: &str| data.get(a).or_else(|| data.get(b)).cloned();
    let client = match (pick("tls.crt", "certFile"), pick("tls.key", "keyFile")) {
        (Some(mut crt), Some(key)) => {
            crt.push(b'\n');
            crt.extend_from_slice(&key);
            Some(crt)
        }
        _ => None,
    };
    TlsMaterial {
        ca_pem: pick("ca.crt", "caFile"),
        client_pem: client,
    }
}

/// Checks the configuration each type needs, the way the Go notifier constructors do.
pub fn validate(cfg: &ProviderConfig) -> Result<()> {
    use ProviderType as T;
    match cfg.kind()? {
        T::Telegram => {
            if cfg.channel.is_empty() {
                return Err(cfg.invalid("spec.channel", "empty Telegram channel"));
            }
            cfg.require_token()?;
        }
        T::GenericHmac
        | T::Opsgenie
        | T::DataDog
        | T::GitLab
        | T::Bitbucket
        | T::Gitea
        | T::GitHub
        | T::AzureDevOps => {
            cfg.url()?;
            cfg.require_token()?;
        }
        T::Nats => {
            if cfg.address.is_empty() {
                return Err(cfg.invalid("address", "NATS server (address) cannot be empty"));
            }
            if cfg.channel.is_empty() {
                return Err(cfg.invalid("spec.channel", "NATS subject (channel) cannot be empty"));
            }
        }
        T::GooglePubSub => {
            if cfg.address.is_empty() {
                return Err(cfg.invalid("address", "GCP project ID cannot be empty"));
            }
            if cfg.channel.is_empty() {
                return Err(cfg.invalid("spec.channel", "GCP Pub/Sub topic ID cannot be empty"));
            }
        }
        T::AzureEventHub => {
            if cfg.address.is_empty() {
                return Err(cfg.invalid("address", "endpoint URL cannot be empty"));
            }
        }
        T::Sentry => {
            ops::parse_dsn(cfg)?;
        }
        T::BitbucketServer => {
            cfg.url()?;
            if cfg.token.is_empty() && (cfg.username.is_empty() || cfg.password.is_empty()) {
                return Err(cfg.invalid(
                    "secretRef",
                    "invalid credentials, expected to be one of username/password or API Token",
                ));
            }
        }
        _ => {
            cfg.url()?;
        }
    }
    Ok(())
}

/// A request description: what to send, not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `POST` or `PUT`.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Headers in the order they are set.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub(crate) fn post_json(url: impl Into<String>, body: Vec<u8>) -> Self {
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if let Some(slot) = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value;
        } else {
            self.headers.push((name.into(), value));
        }
        self
    }

    /// The value of a header (case-insensitive).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One delivery a provider makes for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outbound {
    /// An HTTP request.
    Http(HttpRequest),
    /// A NATS publish.
    Nats {
        /// Server URL (`nats://host:port`).
        server: String,
        /// Subject.
        subject: String,
        /// Message payload (the event JSON).
        payload: Vec<u8>,
        /// User name (with `password`), if any.
        username: String,
        /// Password.
        password: String,
    },
    /// A Google Pub/Sub publish (payload only: sending needs GCP credentials).
    PubSub {
        /// GCP project.
        project: String,
        /// Topic.
        topic: String,
        /// Message data (the event JSON).
        data: Vec<u8>,
        /// Message attributes (secret `headers`).
        attributes: BTreeMap<String, String>,
    },
    /// An Azure Event Hub event (payload only: sending needs AMQP).
    EventHub {
        /// Connection string or hub address.
        address: String,
        /// Event body (the event JSON).
        body: Vec<u8>,
    },
}

/// Builds what a provider sends for `event` (already merged by the Alert). An empty list
/// means the provider skips this event (e.g. `Progressing` for commit statuses).
pub fn build(event: &Event, cfg: &ProviderConfig) -> Result<Vec<Outbound>> {
    use ProviderType as T;
    let http = |r: Result<HttpRequest>| r.map(|r| vec![Outbound::Http(r)]);
    match cfg.kind()? {
        T::Generic | T::GenericHmac => http(ops::generic(event, cfg)),
        T::Slack => http(chat::slack(event, cfg)),
        T::Discord => http(chat::discord(event, cfg)),
        T::Rocket => http(chat::rocket(event, cfg)),
        T::MsTeams => http(chat::msteams(event, cfg)),
        T::GoogleChat => http(chat::googlechat(event, cfg)),
        T::Webex => http(chat::webex(event, cfg)),
        T::Telegram => http(chat::telegram(event, cfg)),
        T::Lark => http(chat::lark(event, cfg)),
        T::Matrix => http(chat::matrix(event, cfg)),
        T::Opsgenie => http(ops::opsgenie(event, cfg)),
        T::PagerDuty => ops::pagerduty(event, cfg),
        T::DataDog => http(ops::datadog(event, cfg)),
        T::Sentry => http(ops::sentry(event, cfg)),
        T::Alertmanager => http(ops::alertmanager(event, cfg)),
        T::Grafana => http(ops::grafana(event, cfg)),
        T::Nats => Ok(vec![Outbound::Nats {
            server: cfg.address.clone(),
            subject: cfg.channel.clone(),
            payload: event.to_json(),
            username: cfg.username.clone(),
            password: cfg.password.clone(),
        }]),
        T::GooglePubSub => Ok(vec![Outbound::PubSub {
            project: cfg.address.clone(),
            topic: cfg.channel.clone(),
            data: event.to_json(),
            attributes: cfg.headers.clone(),
        }]),
        T::AzureEventHub => Ok(vec![Outbound::EventHub {
            address: cfg.address.clone(),
            body: event.to_json(),
        }]),
        T::GitHub | T::GitLab | T::Gitea | T::Bitbucket | T::BitbucketServer | T::AzureDevOps => {
            git::commit_status(event, cfg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for t in ProviderType::all() {
            assert_eq!(ProviderType::from_str(t.as_str()), Ok(t));
        }
        assert!(ProviderType::from_str("carrier-pigeon").is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_timeout("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_timeout("1h"), None);
        assert_eq!(parse_timeout(""), None);
    }

    #[test]
    fn unknown_type_is_validation_failed() {
        let p = Provider::from_yaml(
            "metadata: {name: p, namespace: ns}\nspec: {type: carrier-pigeon, address: http://x}",
        )
        .unwrap();
        let err = p.resolve(&Secrets::default()).unwrap_err();
        assert_eq!(err.reason(), "ValidationFailed");
        assert_eq!(
            err.to_string(),
            "provider 'ns/p': unsupported provider type 'carrier-pigeon' in spec.type"
        );
    }

    #[test]
    fn resolves_secrets() {
        let p = Provider::from_yaml(
            "metadata: {name: hook, namespace: ns}\nspec: {type: generic-hmac, address: http://spec, secretRef: {name: s}, proxySecretRef: {name: px}, timeout: 5s}",
        )
        .unwrap();
        let mut secrets = Secrets::default();
        assert_eq!(p.resolve(&secrets).unwrap_err().reason(), "TokenNotFound");
        secrets.insert(
            "ns",
            "s",
            &[
                ("address", " http://secret/hook \n"),
                ("token", "s3cr3t\n"),
                ("headers", "X-A: one\nX-B: two"),
            ],
        );
        secrets.insert(
            "ns",
            "px",
            &[
                ("address", "http://proxy:3128"),
                ("username", "u"),
                ("password", "p"),
            ],
        );
        let cfg = p.resolve(&secrets).unwrap();
        assert_eq!(cfg.address, "http://secret/hook");
        assert_eq!(cfg.token, "s3cr3t");
        assert_eq!(cfg.headers.get("X-B").map(String::as_str), Some("two"));
        assert_eq!(cfg.proxy.as_deref(), Some("http://u:p@proxy:3128/"));
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        assert_eq!(cfg.mask("401 for token s3cr3t"), "401 for token *****");
    }

    #[test]
    fn missing_address_and_token() {
        let cfg = ProviderConfig::new(ProviderType::Slack, "");
        assert!(validate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("address is required"));
        let cfg = ProviderConfig::new(ProviderType::GenericHmac, "http://x");
        assert!(validate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("token is required"));
        let cfg = ProviderConfig::new(ProviderType::Generic, "not a url");
        assert_eq!(validate(&cfg).unwrap_err().reason(), "ValidationFailed");
    }
}
