//! Receivers: the `/hook/<digest>` path and the per-type request validation.
//!
//! Pure: [`webhook_path`] and [`verify`] take the token, headers and body as values.
//! Reconciliation requests go through the [`crate::server::Reconciler`] trait.

use std::collections::BTreeMap;
use std::str::FromStr;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::alert::{LocalObjectReference, ObjectMeta};
use crate::error::{Error, Result};

/// The reconcile request annotation receivers set.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Receiver types (`spec.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiverType {
    /// `generic`: no validation.
    Generic,
    /// `generic-hmac`: `X-Signature: <algo>=<hex>`.
    GenericHmac,
    /// `github`: `X-Hub-Signature-256`/`X-Hub-Signature`, `X-GitHub-Event`.
    GitHub,
    /// `gitlab`: `X-Gitlab-Token`, `X-Gitlab-Event`.
    GitLab,
    /// `bitbucket` (Server): GitHub-style signature, `X-Event-Key`.
    Bitbucket,
    /// `harbor`: `Authorization` equals the token.
    Harbor,
    /// `dockerhub`: payload decoding only.
    DockerHub,
    /// `quay`: payload decoding only.
    Quay,
    /// `gcr`: Google-signed OIDC token + Pub/Sub push payload.
    Gcr,
    /// `nexus`: `X-Nexus-Webhook-Signature` = hex HMAC-SHA1.
    Nexus,
    /// `acr`: payload decoding only.
    Acr,
    /// `cdevents`: body must be a CDEvent; `Ce-Type` checked against `events`.
    CdEvents,
}

const TYPE_NAMES: &[(&str, ReceiverType)] = &[
    ("generic", ReceiverType::Generic),
    ("generic-hmac", ReceiverType::GenericHmac),
    ("github", ReceiverType::GitHub),
    ("gitlab", ReceiverType::GitLab),
    ("bitbucket", ReceiverType::Bitbucket),
    ("harbor", ReceiverType::Harbor),
    ("dockerhub", ReceiverType::DockerHub),
    ("quay", ReceiverType::Quay),
    ("gcr", ReceiverType::Gcr),
    ("nexus", ReceiverType::Nexus),
    ("acr", ReceiverType::Acr),
    ("cdevents", ReceiverType::CdEvents),
];

impl FromStr for ReceiverType {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        TYPE_NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
            .ok_or(())
    }
}

impl ReceiverType {
    /// All implemented types.
    pub fn all() -> impl Iterator<Item = ReceiverType> {
        TYPE_NAMES.iter().map(|(_, t)| *t)
    }

    /// The `spec.type` string.
    pub fn as_str(self) -> &'static str {
        TYPE_NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }
}

/// `Receiver.spec.resources[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// API version (defaults for Flux source kinds).
    #[serde(default)]
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Name, or `*` with `matchLabels`.
    pub name: String,
    /// Namespace (defaults to the Receiver's).
    #[serde(default)]
    pub namespace: String,
    /// Label selector for `name: "*"`.
    #[serde(default)]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// CEL filter (not evaluated by flux-rs).
    #[serde(default)]
    pub filter: String,
}

/// `Receiver.spec` (v1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverSpec {
    /// Receiver type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Allowed event types (case-insensitive); empty allows all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Objects to reconcile.
    #[serde(default)]
    pub resources: Vec<ResourceRef>,
    /// CEL filter over all resources (not evaluated by flux-rs).
    #[serde(default)]
    pub resource_filter: String,
    /// Secret holding `token`.
    #[serde(default)]
    pub secret_ref: Option<LocalObjectReference>,
    /// Suspended receivers answer 503.
    #[serde(default)]
    pub suspend: bool,
}

/// A Receiver object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Receiver {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ReceiverSpec,
}

impl Receiver {
    /// Parses a Receiver manifest.
    pub fn from_yaml(text: &str) -> Result<Self> {
        serde_yaml::from_str(text).map_err(|e| Error::InvalidConfig {
            object: "Receiver".into(),
            field: "manifest".into(),
            message: e.to_string(),
        })
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    /// The parsed type, or `UnknownReceiverType`.
    pub fn receiver_type(&self) -> Result<ReceiverType> {
        ReceiverType::from_str(&self.spec.type_).map_err(|()| Error::UnknownReceiverType {
            receiver: self.id(),
            type_name: self.spec.type_.clone(),
        })
    }

    /// The webhook path for this receiver given its Secret's raw `token`.
    pub fn webhook_path(&self, token: &str) -> String {
        webhook_path(token, &self.metadata.name, &self.metadata.namespace)
    }
}

/// `/hook/` + hex SHA-256 of `token + name + namespace` (token untrimmed).
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(name.as_bytes());
    h.update(namespace.as_bytes());
    format!("/hook/{}", hex::encode(h.finalize()))
}

/// Validates Google-signed OIDC tokens for `gcr` receivers (needs network access to Google's
/// keys, so it is injected).
pub trait GcrTokenValidator: Send + Sync {
    /// Checks `Authorization` (`Bearer <jwt>`) for the expected email and audience.
    fn validate(
        &self,
        authorization: &str,
        email: &str,
        audience: &str,
    ) -> std::result::Result<(), String>;
}

/// What a valid request carried.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verified {
    /// The event type header, when the type has one.
    pub event: Option<String>,
    /// The decoded JSON payload (`req` in Flux's CEL filters), when decoded.
    pub payload: Option<Value>,
}

/// Case-insensitive header lookup over `(name, value)` pairs.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Verifies a `<algo>=<hex>` HMAC signature (sha1, sha256, sha512) in constant time, the
/// format GitHub, Bitbucket Server and Flux's generic-hmac use.
pub fn verify_prefixed_signature(
    signature: &str,
    body: &[u8],
    key: &[u8],
) -> std::result::Result<(), String> {
    let (algo, hex_mac) = signature
        .split_once('=')
        .ok_or("missing or malformed signature")?;
    let mac = hex::decode(hex_mac).map_err(|_| "signature is not hex".to_string())?;
    let ok = match algo {
        "sha1" => hmac_check(Algo::Sha1, key, body, &mac),
        "sha256" => hmac_check(Algo::Sha256, key, body, &mac),
        "sha512" => hmac_check(Algo::Sha512, key, body, &mac),
        other => return Err(format!("unknown hash type prefix {other:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err("payload signature check failed".into())
    }
}

/// Hash functions webhook signatures use.
#[derive(Debug, Clone, Copy)]
enum Algo {
    Sha1,
    Sha256,
    Sha512,
}

fn hmac_check(algo: Algo, key: &[u8], body: &[u8], mac: &[u8]) -> bool {
    macro_rules! check {
        ($d:ty) => {
            match <Hmac<$d> as Mac>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(body);
                    m.verify_slice(mac).is_ok()
                }
                Err(_) => false,
            }
        };
    }
    match algo {
        Algo::Sha1 => check!(sha1::Sha1),
        Algo::Sha256 => check!(Sha256),
        Algo::Sha512 => check!(sha2::Sha512),
    }
}

fn check_event(receiver: &Receiver, service: &str, event: &str) -> Result<()> {
    let events = &receiver.spec.events;
    if events.is_empty() || events.iter().any(|e| e.eq_ignore_ascii_case(event)) {
        Ok(())
    } else {
        Err(Error::BadWebhook {
            receiver: receiver.id(),
            message: format!("the {service} event {event:?} is not authorised"),
        })
    }
}

fn decode_json(receiver: &Receiver, service: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| Error::BadWebhook {
        receiver: receiver.id(),
        message: format!("cannot decode {service} webhook payload: {e}"),
    })
}

/// Validates a webhook request for `receiver` against its Secret data (`token`, and for
/// `gcr` also `email` and `audience`). Authentication failures are [`Error::Unauthorized`]
/// (HTTP 401); malformed or disallowed payloads are [`Error::BadWebhook`] (HTTP 400). Error
/// messages never contain the token.
pub fn verify(
    receiver: &Receiver,
    secret: &BTreeMap<String, Vec<u8>>,
    headers: &[(String, String)],
    body: &[u8],
    gcr: Option<&dyn GcrTokenValidator>,
) -> Result<Verified> {
    let id = receiver.id();
    let token_bytes = secret.get("token").ok_or_else(|| Error::Secret {
        object: format!("Receiver/{id}"),
        secret: receiver
            .spec
            .secret_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        message: "invalid secret data: required field 'token'".into(),
    })?;
    let token = String::from_utf8_lossy(token_bytes).to_string();
    let unauthorized = |message: String| Error::Unauthorized {
        receiver: id.clone(),
        message,
    };
    let get = |name: &str| header(headers, name).unwrap_or_default().to_string();
    match receiver.receiver_type()? {
        ReceiverType::Generic => Ok(Verified::default()),
        ReceiverType::GenericHmac => {
            verify_prefixed_signature(&get("X-Signature"), body, token.as_bytes())
                .map_err(|e| unauthorized(format!("unable to validate HMAC signature: {e}")))?;
            Ok(Verified::default())
        }
        ReceiverType::GitHub | ReceiverType::Bitbucket => {
            let is_github = receiver.receiver_type()? == ReceiverType::GitHub;
            let service = if is_github {
                "GitHub"
            } else {
                "Bitbucket server"
            };
            if !token.is_empty() {
                let sig256 = get("X-Hub-Signature-256");
                let signature = if sig256.is_empty() {
                    get("X-Hub-Signature")
                } else {
                    sig256
                };
                if signature.is_empty() {
                    return Err(unauthorized(format!(
                        "the {service} signature header is invalid, err: missing signature"
                    )));
                }
                verify_prefixed_signature(&signature, body, token.as_bytes()).map_err(|e| {
                    unauthorized(format!(
                        "the {service} signature header is invalid, err: {e}"
                    ))
                })?;
            }
            let event = get(if is_github {
                "X-GitHub-Event"
            } else {
                "X-Event-Key"
            });
            check_event(receiver, service, &event)?;
            Ok(Verified {
                event: Some(event),
                payload: serde_json::from_slice(body).ok(),
            })
        }
        ReceiverType::GitLab => {
            if get("X-Gitlab-Token") != token {
                return Err(unauthorized(
                    "the X-Gitlab-Token header value does not match the receiver token".into(),
                ));
            }
            let event = get("X-Gitlab-Event");
            check_event(receiver, "GitLab", &event)?;
            Ok(Verified {
                event: Some(event),
                payload: serde_json::from_slice(body).ok(),
            })
        }
        ReceiverType::Harbor => {
            if get("Authorization") != token {
                return Err(unauthorized(
                    "the Harbor Authorization header value does not match the receiver token"
                        .into(),
                ));
            }
            Ok(Verified {
                event: None,
                payload: serde_json::from_slice(body).ok(),
            })
        }
        ReceiverType::Nexus => {
            let signature = get("X-Nexus-Webhook-Signature");
            if signature.is_empty() {
                return Err(unauthorized(
                    "the Nexus signature is missing from header".into(),
                ));
            }
            let ok = hex::decode(&signature)
                .is_ok_and(|mac| hmac_check(Algo::Sha1, token.as_bytes(), body, &mac));
            if !ok {
                return Err(unauthorized("invalid Nexus signature".into()));
            }
            Ok(Verified {
                event: None,
                payload: Some(decode_json(receiver, "Nexus", body)?),
            })
        }
        ReceiverType::DockerHub => Ok(Verified {
            event: None,
            payload: Some(decode_json(receiver, "DockerHub", body)?),
        }),
        ReceiverType::Quay => Ok(Verified {
            event: None,
            payload: Some(decode_json(receiver, "Quay", body)?),
        }),
        ReceiverType::Acr => Ok(Verified {
            event: None,
            payload: Some(decode_json(receiver, "ACR", body)?),
        }),
        ReceiverType::Gcr => {
            let field = |k: &str| {
                secret
                    .get(k)
                    .map(|v| String::from_utf8_lossy(v).to_string())
                    .filter(|v| !v.is_empty())
            };
            let email = field("email").ok_or_else(|| Error::Secret {
                object: format!("Receiver/{id}"),
                secret: String::new(),
                message: "invalid secret data: required field 'email' for GCR receiver".into(),
            })?;
            let audience = field("audience").ok_or_else(|| Error::Secret {
                object: format!("Receiver/{id}"),
                secret: String::new(),
                message: "invalid secret data: required field 'audience' for GCR receiver".into(),
            })?;
            let validator = gcr.ok_or_else(|| {
                unauthorized(
                    "cannot authenticate GCR request: no Google token validator configured".into(),
                )
            })?;
            validator
                .validate(&get("Authorization"), &email, &audience)
                .map_err(|e| unauthorized(format!("cannot authenticate GCR request: {e}")))?;
            let push = decode_json(receiver, "GCR", body)?;
            let data = push
                .pointer("/message/data")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default();
            let decoded: Value = serde_json::from_slice(&raw).map_err(|e| Error::BadWebhook {
                receiver: id.clone(),
                message: format!("cannot decode GCR webhook body: {e}"),
            })?;
            let pick = |k: &str| {
                decoded
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let payload = serde_json::json!({"action": pick("action"), "digest": pick("digest"), "tag": pick("tag")});
            Ok(Verified {
                event: None,
                payload: Some(payload),
            })
        }
        ReceiverType::CdEvents => {
            let event = get("Ce-Type");
            let payload = decode_json(receiver, "CDEvent", body)?;
            validate_cdevent(&payload).map_err(|m| Error::BadWebhook {
                receiver: id.clone(),
                message: format!("unable to validate CDEvent event: {m}"),
            })?;
            check_event(receiver, "CDEvent", &event)?;
            Ok(Verified {
                event: Some(event),
                payload: Some(payload),
            })
        }
    }
}

/// Structural CDEvents (v0.4) check: a context with version, id, source, a `dev.cdevents.*`
/// type and timestamp, and a subject with content.
fn validate_cdevent(v: &Value) -> std::result::Result<(), String> {
    let ctx = v.get("context").ok_or("missing context")?;
    for k in ["version", "id", "source", "type", "timestamp"] {
        if ctx.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(format!("context.{k} is required"));
        }
    }
    let ty = ctx.get("type").and_then(Value::as_str).unwrap_or_default();
    let parts: Vec<&str> = ty.split('.').collect();
    if parts.len() < 7 || parts[0] != "dev" || parts[1] != "cdevents" {
        return Err(format!("context.type {ty:?} is not a CDEvents type"));
    }
    if crate::time::parse_rfc3339(
        ctx.get("timestamp")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
    .is_none()
    {
        return Err("context.timestamp is not RFC3339".into());
    }
    let subject = v.get("subject").ok_or("missing subject")?;
    if !subject.get("content").is_some_and(Value::is_object) {
        return Err("subject.content is required".into());
    }
    Ok(())
}

/// A resolved reconcile target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `group/version`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name, or `*` for a label selection.
    pub name: String,
    /// Labels for `*`.
    pub match_labels: BTreeMap<String, String>,
}

/// Default API versions for Flux kinds a receiver may omit `apiVersion` for.
pub fn default_api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "Bucket" | "HelmChart" | "HelmRepository" | "GitRepository" | "OCIRepository" => {
            Some("source.toolkit.fluxcd.io/v1")
        }
        "ImageRepository" => Some("image.toolkit.fluxcd.io/v1"),
        "ArtifactGenerator" => Some("source.extensions.fluxcd.io/v1beta1"),
        _ => None,
    }
}

/// Resolves `spec.resources` into targets (namespace and apiVersion defaults, the
/// cross-namespace rule, `*` requiring `matchLabels`). CEL filters are not evaluated by
/// flux-rs: a resource or receiver that sets one is an `InvalidConfig` error, never silently
/// ignored.
pub fn targets(receiver: &Receiver, no_cross_namespace_refs: bool) -> Vec<Result<Target>> {
    let object = format!("Receiver/{}", receiver.id());
    let err = |field: &str, message: String| Error::InvalidConfig {
        object: object.clone(),
        field: field.into(),
        message,
    };
    receiver
        .spec
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = format!("spec.resources[{i}]");
            if !r.filter.is_empty() || !receiver.spec.resource_filter.is_empty() {
                return Err(err(
                    &field,
                    "CEL resource filters are not supported by flux-rs yet".into(),
                ));
            }
            let namespace = if r.namespace.is_empty() {
                receiver.metadata.namespace.clone()
            } else {
                r.namespace.clone()
            };
            if no_cross_namespace_refs && namespace != receiver.metadata.namespace {
                return Err(err(
                    &field,
                    "cross-namespace references are not allowed".into(),
                ));
            }
            let api_version = if r.api_version.is_empty() {
                default_api_version(&r.kind)
                    .ok_or_else(|| {
                        err(
                            &field,
                            format!("apiVersion must be specified for kind {:?}", r.kind),
                        )
                    })?
                    .to_string()
            } else {
                r.api_version.clone()
            };
            let match_labels = r.match_labels.clone().unwrap_or_default();
            if r.name == "*" && match_labels.is_empty() {
                return Err(err(
                    &field,
                    "matchLabels must be specified when name is '*'".into(),
                ));
            }
            Ok(Target {
                api_version,
                kind: r.kind.clone(),
                namespace,
                name: r.name.clone(),
                match_labels,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_flux() {
        // sha256("tokengithub-receiverflux-system")
        let expected = hex::encode(Sha256::digest(b"tokengithub-receiverflux-system"));
        assert_eq!(
            webhook_path("token", "github-receiver", "flux-system"),
            format!("/hook/{expected}")
        );
        assert_ne!(
            webhook_path("token ", "a", "b"),
            webhook_path("token", "a", "b"),
            "token is not trimmed"
        );
    }

    #[test]
    fn defaults_and_refusals() {
        let r = Receiver::from_yaml(
            "metadata: {name: r, namespace: apps}\nspec:\n  type: generic\n  resources:\n  - {kind: GitRepository, name: app}\n  - {kind: Kustomization, name: app}\n  - {kind: OCIRepository, name: '*'}\n  - {kind: HelmRepository, name: x, namespace: other}\n",
        )
        .unwrap();
        let t = targets(&r, true);
        assert_eq!(
            t[0].as_ref().unwrap().api_version,
            "source.toolkit.fluxcd.io/v1"
        );
        assert_eq!(t[0].as_ref().unwrap().namespace, "apps");
        assert!(t[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("apiVersion must be specified"));
        assert!(t[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("matchLabels"));
        assert!(t[3]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("cross-namespace"));
        assert!(targets(&r, false)[3].is_ok());
    }

    #[test]
    fn unknown_type() {
        let r =
            Receiver::from_yaml("metadata: {name: r, namespace: apps}\nspec: {type: smoke-signal}")
                .unwrap();
        let secret = BTreeMap::from([("token".to_string(), b"t".to_vec())]);
        let err = verify(&r, &secret, &[], b"", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "receiver 'apps/r': unsupported receiver type 'smoke-signal' in spec.type"
        );
    }
}
