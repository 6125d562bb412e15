//! Webhook and incident/observability providers: generic, generic-hmac, opsgenie, pagerduty,
//! datadog, sentry, alertmanager, grafana.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{git, HttpRequest, Outbound, ProviderConfig, ProviderType};
use crate::error::Result;
use crate::event::{Event, Severity};
use crate::gojson;

/// Hex HMAC-SHA256 of `body` keyed with `key`.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `generic` / `generic-hmac`: the event JSON, `gotk-component` header, secret headers, and
/// for HMAC `X-Signature: sha256=<hex>`.
pub(super) fn generic(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let body = event.to_json();
    let mut req = HttpRequest::post_json(url.as_str(), Vec::new())
        .header("gotk-component", event.reporting_controller.clone());
    for (k, v) in &cfg.headers {
        req = req.header(k, v.clone());
    }
    if cfg.provider_type == Some(ProviderType::GenericHmac) {
        let key = cfg.require_token()?;
        req = req.header(
            "X-Signature",
            format!("sha256={}", hmac_sha256_hex(key.as_bytes(), &body)),
        );
    }
    req.body = body;
    Ok(req)
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// `opsgenie`: alert with details = metadata + severity; alias = SHA-256 of
/// `providerUID/kind/namespace/name/reason`.
pub(super) fn opsgenie(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let key = cfg.require_token()?;
    let mut details = event.metadata.clone();
    details.insert("severity".into(), event.severity.as_str().into());
    let o = &event.involved_object;
    let alias_key = format!(
        "{}/{}/{}/{}/{}",
        cfg.uid, o.kind, o.namespace, o.name, event.reason
    );
    let body = json!({
        "message": format!("{}/{}", o.kind, o.name),
        "alias": hex::encode(Sha256::digest(alias_key.as_bytes())),
        "description": event.message,
        "details": details,
    });
    Ok(HttpRequest::post_json(url.as_str(), gojson::to_vec(&body))
        .header("Authorization", format!("GenieKey {key}")))
}

/// `pagerduty`: Events v2 `trigger` for errors / `resolve` otherwise (dedup key = object
/// UID), plus a change event for info; `Progressing` events are skipped.
pub(super) fn pagerduty(event: &Event, cfg: &ProviderConfig) -> Result<Vec<Outbound>> {
    let url = cfg.url()?;
    if event.reason == "Progressing" {
        return Ok(Vec::new());
    }
    let endpoint = format!("{}://{}", url.scheme(), authority(&url));
    let (name, desc) = git::name_and_description(event);
    let summary = format!("{desc}: {name}");
    let source = format!("Flux {}", event.reporting_controller);
    let details = json!({"message": event.message, "metadata": event.metadata});
    let mut v2 = serde_json::Map::new();
    v2.insert("routing_key".into(), cfg.channel.clone().into());
    v2.insert(
        "event_action".into(),
        if event.severity == Severity::Error {
            "trigger"
        } else {
            "resolve"
        }
        .into(),
    );
    if !event.involved_object.uid.is_empty() {
        v2.insert("dedup_key".into(), event.involved_object.uid.clone().into());
    }
    if event.severity == Severity::Error {
        let o = &event.involved_object;
        let mut payload = serde_json::Map::new();
        payload.insert("summary".into(), summary.clone().into());
        payload.insert("source".into(), source.clone().into());
        payload.insert("severity".into(), "error".into());
        payload.insert("timestamp".into(), event.timestamp.rfc3339().into());
        if !o.name.is_empty() {
            payload.insert("component".into(), o.name.clone().into());
        }
        if !o.kind.is_empty() {
            payload.insert("group".into(), o.kind.clone().into());
        }
        payload.insert("custom_details".into(), details.clone());
        v2.insert("payload".into(), Value::Object(payload));
    }
    let mut out = vec![Outbound::Http(HttpRequest::post_json(
        format!("{endpoint}/v2/enqueue"),
        gojson::to_vec(&v2),
    ))];
    if event.severity == Severity::Info {
        let change = json!({
            "routing_key": cfg.channel,
            "payload": {"source": source, "summary": summary, "timestamp": event.timestamp.rfc3339(), "custom_details": details},
            "links": null,
        });
        out.push(Outbound::Http(HttpRequest::post_json(
            format!("{endpoint}/v2/change/enqueue"),
            gojson::to_vec(&change),
        )));
    }
    Ok(out)
}

fn authority(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// `datadog`: `POST /api/v1/events` with `DD-API-KEY`; metadata as lower-cased tags.
pub(super) fn datadog(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let key = cfg.require_token()?;
    let o = &event.involved_object;
    let mut tags = vec![
        format!("flux_reporting_controller:{}", event.reporting_controller),
        format!("flux_reason:{}", event.reason),
        format!("kube_kind:{}", o.kind),
        format!("kube_name:{}", o.name),
        format!("kube_namespace:{}", o.namespace),
    ];
    tags.extend(event.metadata.iter().map(|(k, v)| format!("{k}:{v}")));
    let tags: Vec<String> = tags.into_iter().map(|t| t.to_lowercase()).collect();
    // The Datadog Go client marshals through a map, so keys come out sorted.
    let body = json!({
        "alert_type": if event.severity == Severity::Error { "error" } else { "info" },
        "date_happened": event.timestamp.unix(),
        "source_type_name": "fluxcd",
        "tags": tags,
        "text": event.message,
        "title": format!("Events from the {} {}/{}", o.kind, o.name, o.namespace),
    });
    Ok(HttpRequest::post_json(
        format!("{}://{}/api/v1/events", url.scheme(), authority(&url)),
        gojson::to_vec(&body),
    )
    .header("Accept", "application/json")
    .header("DD-API-KEY", key))
}

/// The parts of a Sentry DSN `scheme://public_key@host/project_id`.
pub(super) struct Dsn {
    base: String,
    key: String,
    project: String,
}

pub(super) fn parse_dsn(cfg: &ProviderConfig) -> Result<Dsn> {
    let url = cfg
        .url()
        .map_err(|_| cfg.invalid("address", "invalid Sentry DSN"))?;
    let key = url.username().to_string();
    let project = url
        .path()
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if key.is_empty() || project.is_empty() {
        return Err(cfg.invalid(
            "address",
            "invalid Sentry DSN: expected scheme://public_key@host/project_id",
        ));
    }
    let prefix = url
        .path()
        .trim_matches('/')
        .rsplit_once('/')
        .map(|(p, _)| format!("/{p}"))
        .unwrap_or_default();
    Ok(Dsn {
        base: format!("{}://{}{prefix}", url.scheme(), authority(&url)),
        key,
        project,
    })
}

/// `sentry`: an error event (metadata in `contexts.metadata`) for errors, a transaction with
/// tags for info, posted to the store endpoint. Event/trace ids are derived from the event
/// JSON so the payload is deterministic.
pub(super) fn sentry(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let dsn = parse_dsn(cfg)?;
    let o = &event.involved_object;
    let digest = hex::encode(Sha256::digest(event.to_json()));
    let transaction = format!("{}: {}/{}", o.kind, o.namespace, o.name);
    let ts = event.timestamp.rfc3339();
    let body = if event.severity == Severity::Error {
        json!({
            "event_id": &digest[..32],
            "timestamp": ts,
            "level": "error",
            "platform": "other",
            "server_name": event.reporting_controller,
            "environment": cfg.channel,
            "transaction": transaction,
            "message": event.message,
            "contexts": {"metadata": event.metadata},
        })
    } else {
        let mut tags: BTreeMap<String, String> = BTreeMap::from([
            ("flux_involved_object_kind".into(), o.kind.clone()),
            ("flux_involved_object_namespace".into(), o.namespace.clone()),
            ("flux_involved_object_name".into(), o.name.clone()),
            (
                "flux_reporting_controller".into(),
                event.reporting_controller.clone(),
            ),
            (
                "flux_reporting_instance".into(),
                event.reporting_instance.clone(),
            ),
            ("flux_reason".into(), event.reason.clone()),
        ]);
        tags.extend(event.metadata.clone());
        json!({
            "event_id": &digest[..32],
            "type": "transaction",
            "platform": "other",
            "environment": cfg.channel,
            "transaction": transaction,
            "message": event.message,
            "start_timestamp": ts,
            "timestamp": ts,
            "tags": tags,
            "contexts": {"trace": {"trace_id": &digest[32..64], "span_id": &digest[..16], "op": "event"}},
        })
    };
    let auth = format!(
        "Sentry sentry_version=7, sentry_client=flux-rs/{}, sentry_key={}",
        env!("CARGO_PKG_VERSION"),
        dsn.key
    );
    Ok(HttpRequest::post_json(
        format!("{}/api/{}/store/", dsn.base, dsn.project),
        gojson::to_vec(&body),
    )
    .header("X-Sentry-Auth", auth))
}

/// Go's `cases.Title(language.Und)`: first letter of each word upper-cased, the rest lower.
fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_start = true;
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if at_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            at_start = false;
        } else {
            out.push(c);
            at_start = true;
        }
    }
    out
}

/// `alertmanager`: one firing alert (labels = metadata + event identity, `summary` moved to
/// annotations).
pub(super) fn alertmanager(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let mut labels = event.metadata.clone();
    let mut annotations = BTreeMap::from([("message".to_string(), event.message.clone())]);
    if let Some(summary) = labels.remove("summary") {
        annotations.insert("summary".into(), summary);
    }
    let o = &event.involved_object;
    labels.insert(
        "alertname".into(),
        format!("Flux{}{}", o.kind, title_case(&event.reason)),
    );
    labels.insert("severity".into(), event.severity.as_str().into());
    labels.insert("reason".into(), event.reason.clone());
    labels.insert("kind".into(), o.kind.clone());
    labels.insert("name".into(), o.name.clone());
    labels.insert("namespace".into(), o.namespace.clone());
    labels.insert(
        "reportingcontroller".into(),
        event.reporting_controller.clone(),
    );
    let body = json!([{
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": event.timestamp.rfc3339(),
        "endsAt": "0001-01-01T00:00:00Z",
    }]);
    let mut req = HttpRequest::post_json(url.as_str(), gojson::to_vec(&body));
    if !cfg.token.is_empty() {
        req = req.header("Authorization", format!("Bearer {}", cfg.token));
    }
    if !cfg.username.is_empty() && !cfg.password.is_empty() {
        req = req.header("Authorization", basic(&cfg.username, &cfg.password));
    }
    Ok(req)
}

/// `grafana`: an annotation with `key: value` tags (`:` in keys/values becomes `|`).
pub(super) fn grafana(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let o = &event.involved_object;
    let mut tags = vec!["flux".to_string(), event.reporting_controller.clone()];
    tags.extend(
        event
            .metadata
            .iter()
            .map(|(k, v)| format!("{}: {}", k.replace(':', "|"), v.replace(':', "|"))),
    );
    tags.push(format!("kind: {}", o.kind));
    tags.push(format!("name: {}", o.name));
    tags.push(format!("namespace: {}", o.namespace));
    let body = json!({"when": event.timestamp.unix(), "text": event.object_title(), "tags": tags});
    let mut req = HttpRequest::post_json(url.as_str(), gojson::to_vec(&body));
    if !cfg.token.is_empty() {
        req = req.header("Authorization", format!("Bearer {}", cfg.token));
    } else if !cfg.username.is_empty() && !cfg.password.is_empty() {
        req = req.header("Authorization", basic(&cfg.username, &cfg.password));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    #[test]
    fn title_case_like_go_cases() {
        assert_eq!(
            super::title_case("ReconciliationSucceeded"),
            "Reconciliationsucceeded"
        );
        assert_eq!(
            super::title_case("health check failed"),
            "Health Check Failed"
        );
    }

    #[test]
    fn hmac_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
