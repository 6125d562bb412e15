//! Chat providers: slack, discord, rocket (Slack attachment format), msteams, googlechat,
//! webex, telegram, lark, matrix. Metadata is iterated in key order (Go's map order is random;
//! sorted output keeps goldens stable).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::{HttpRequest, ProviderConfig};
use crate::error::Result;
use crate::event::{Event, Severity};
use crate::gojson;

#[derive(Serialize)]
struct SlackPayload {
    channel: String,
    username: String,
    icon_url: String,
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    attachments: Vec<SlackAttachment>,
}

#[derive(Serialize)]
struct SlackAttachment {
    fallback: String,
    color: String,
    author_name: String,
    text: String,
    mrkdwn_in: Vec<&'static str>,
    fields: Vec<SlackField>,
}

#[derive(Serialize)]
struct SlackField {
    title: String,
    value: String,
    short: bool,
}

fn slack_attachment(event: &Event, fallback: bool, colors: (&str, &str)) -> SlackAttachment {
    let author = event.object_title();
    let first_line = event.message.split('\n').next().unwrap_or_default();
    SlackAttachment {
        fallback: if fallback {
            format!("{author}: {first_line}")
        } else {
            String::new()
        },
        color: if event.severity == Severity::Error {
            colors.1
        } else {
            colors.0
        }
        .into(),
        author_name: author,
        text: event.message.clone(),
        mrkdwn_in: vec!["text"],
        fields: event
            .metadata
            .iter()
            .map(|(k, v)| SlackField {
                title: k.clone(),
                value: v.clone(),
                short: false,
            })
            .collect(),
    }
}

fn or_controller(name: &str, event: &Event) -> String {
    if name.is_empty() {
        event.reporting_controller.clone()
    } else {
        name.to_string()
    }
}

/// `slack`: one attachment; bot token as Bearer.
pub(super) fn slack(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let payload = SlackPayload {
        channel: cfg.channel.clone(),
        username: or_controller(&cfg.username, event),
        icon_url: String::new(),
        icon_emoji: String::new(),
        text: String::new(),
        attachments: vec![slack_attachment(event, true, ("good", "danger"))],
    };
    let mut req = HttpRequest::post_json(url.as_str(), gojson::to_vec(&payload));
    if !cfg.token.is_empty() {
        req = req.header("Authorization", format!("Bearer {}", cfg.token));
    }
    Ok(req)
}

/// `discord`: Slack-compatible payload posted to `<address>/slack`.
pub(super) fn discord(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let mut url = cfg.url()?;
    if !cfg.address.ends_with("/slack") {
        let path = format!("{}/slack", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    let payload = SlackPayload {
        channel: String::new(),
        username: or_controller(&cfg.username, event),
        icon_url: String::new(),
        icon_emoji: String::new(),
        text: String::new(),
        attachments: vec![slack_attachment(event, false, ("good", "danger"))],
    };
    Ok(HttpRequest::post_json(
        url.as_str(),
        gojson::to_vec(&payload),
    ))
}

/// `rocket`: Slack-compatible payload with Rocket.Chat colours.
pub(super) fn rocket(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let payload = SlackPayload {
        channel: cfg.channel.clone(),
        username: cfg.username.clone(),
        icon_url: String::new(),
        icon_emoji: String::new(),
        text: String::new(),
        attachments: vec![slack_attachment(event, false, ("#0076D7", "#FF0000"))],
    };
    Ok(HttpRequest::post_json(
        url.as_str(),
        gojson::to_vec(&payload),
    ))
}

/// `msteams`: Adaptive Card for Workflows; legacy MessageCard for `*.webhook.office.com`.
pub(super) fn msteams(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let title = event.object_title();
    let legacy = url
        .host_str()
        .is_some_and(|h| h.ends_with(".webhook.office.com"));
    let body = if legacy {
        let facts: Vec<Value> = event
            .metadata
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": if event.severity == Severity::Error { "FF0000" } else { "0076D7" },
            "summary": title,
            "sections": [{"activityTitle": event.message, "activitySubtitle": title, "facts": facts}],
        })
    } else {
        let mut facts: Vec<Value> = Vec::new();
        if let Some(summary) = event.metadata.get("summary") {
            facts.push(json!({"title": "summary", "value": summary}));
        }
        facts.extend(
            event
                .metadata
                .iter()
                .filter(|(k, _)| *k != "summary")
                .map(|(k, v)| json!({"title": k, "value": v})),
        );
        let mut message = serde_json::Map::new();
        message.insert("type".into(), "TextBlock".into());
        message.insert("text".into(), event.message.clone().into());
        if event.severity == Severity::Error {
            message.insert("color".into(), "attention".into());
        }
        message.insert("wrap".into(), true.into());
        let mut fact_set = json!({"type": "FactSet"});
        if !facts.is_empty() {
            fact_set["facts"] = Value::Array(facts);
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{
                        "type": "Container",
                        "items": [
                            {"type": "TextBlock", "text": title, "size": "large", "weight": "bolder", "wrap": true},
                            Value::Object(message),
                            fact_set,
                        ],
                    }],
                    "msteams": {"width": "Full"},
                },
            }],
        })
    };
    Ok(HttpRequest::post_json(url.as_str(), gojson::to_vec(&body)))
}

/// `googlechat`: Cards v1 with a text paragraph and key/value widgets.
pub(super) fn googlechat(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let text = if event.severity == Severity::Error {
        format!("<font color=\"#ff0000\">{}</font>", event.message)
    } else {
        event.message.clone()
    };
    let mut sections = vec![json!({
        "header": "",
        "widgets": [{"textParagraph": {"text": text}, "keyValue": null}],
    })];
    if !event.metadata.is_empty() {
        let widgets: Vec<Value> = event
            .metadata
            .iter()
            .map(|(k, v)| {
                json!({"textParagraph": null, "keyValue": {
                    "topLabel": k, "content": v, "contentMultiline": false, "bottomLabel": null, "icon": null}})
            })
            .collect();
        sections.push(json!({"header": "", "widgets": widgets}));
    }
    let body = json!({"cards": [{
        "header": {"title": event.object_title(), "subtitle": event.reporting_controller, "imageUrl": null, "imageStyle": null},
        "sections": sections,
    }]});
    Ok(HttpRequest::post_json(url.as_str(), gojson::to_vec(&body)))
}

/// `webex`: markdown message to a room, bot token as Bearer.
pub(super) fn webex(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let emoji = if event.severity == Severity::Error {
        "💣"
    } else {
        "✅"
    };
    let mut md = format!("{emoji} **{}**\n{}\n", event.object_title(), event.message);
    for (k, v) in &event.metadata {
        let _ = writeln!(md, ">**{k}**: {v}");
    }
    let mut body = serde_json::Map::new();
    if !cfg.channel.is_empty() {
        body.insert("roomId".into(), cfg.channel.clone().into());
    }
    body.insert("markdown".into(), md.into());
    Ok(HttpRequest::post_json(url.as_str(), gojson::to_vec(&body))
        .header("Authorization", format!("Bearer {}", cfg.token)))
}

/// Telegram MarkdownV2 escaping of the characters Flux escapes.
fn telegram_escape(text: &str) -> String {
    const SPECIAL: &str = "\\.-_[]()~>`#+=|{}!*";
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `telegram`: `sendMessage` with MarkdownV2; `channel` is `chat` or `chat:thread`.
pub(super) fn telegram(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let token = cfg.require_token()?;
    let o = &event.involved_object;
    let emoji = if event.severity == Severity::Error {
        "🚨"
    } else {
        "💫"
    };
    let heading = format!(
        "{emoji} {}/{}/{}",
        o.kind.to_lowercase(),
        o.name,
        o.namespace
    );
    let mut metadata = String::new();
    for (k, v) in &event.metadata {
        let _ = writeln!(
            metadata,
            "\\- *{}*: {}",
            telegram_escape(k),
            telegram_escape(v)
        );
    }
    let text = format!(
        "*{}*\n{}\n{}",
        telegram_escape(&heading),
        telegram_escape(&event.message),
        metadata
    );
    let (chat, thread) = match cfg.channel.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (cfg.channel.as_str(), None),
    };
    let mut body = serde_json::Map::new();
    body.insert("chat_id".into(), chat.into());
    if let Some(t) = thread.filter(|t| !t.is_empty()) {
        body.insert("message_thread_id".into(), t.into());
    }
    body.insert("text".into(), text.into());
    body.insert("parse_mode".into(), "MarkdownV2".into());
    let base = cfg
        .api_base_override
        .as_deref()
        .unwrap_or("https://api.telegram.org")
        .trim_end_matches('/');
    Ok(HttpRequest::post_json(
        format!("{base}/bot{token}/sendMessage"),
        gojson::to_vec(&body),
    ))
}

/// `lark`: interactive message card.
pub(super) fn lark(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    let url = cfg.url()?;
    let (emoji, color) = if event.severity == Severity::Error {
        ("🚨", "red")
    } else {
        ("💫", "turquoise")
    };
    let mut message = format!("**{}**\n\n", event.message);
    for (k, v) in &event.metadata {
        let _ = writeln!(message, "{k}: {v}");
    }
    let body = json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {"title": {"tag": "plain_text", "content": format!("{emoji} {}", event.object_title())}, "template": color},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": message}}],
        },
    });
    Ok(HttpRequest::post_json(url.as_str(), gojson::to_vec(&body)))
}

/// `matrix`: PUT `m.room.message` with a transaction id = SHA-1 of the event JSON.
pub(super) fn matrix(event: &Event, cfg: &ProviderConfig) -> Result<HttpRequest> {
    cfg.url()?;
    let txn = hex::encode(Sha1::digest(event.to_json()));
    let url = format!(
        "{}/_matrix/client/r0/rooms/{}/send/m.room.message/{txn}",
        cfg.address, cfg.channel
    );
    let emoji = if event.severity == Severity::Error {
        "🚨"
    } else {
        "💫"
    };
    let mut metadata = String::new();
    for (k, v) in &event.metadata {
        let _ = writeln!(metadata, "- {k}: {v}");
    }
    let msg = format!(
        "{emoji} {}\n{}\n{metadata}",
        event.object_title(),
        event.message
    );
    let mut req = HttpRequest::post_json(
        url,
        gojson::to_vec(&json!({"body": msg, "msgtype": "m.text"})),
    );
    req.method = "PUT".into();
    Ok(req.header("Authorization", format!("Bearer {}", cfg.token)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn telegram_escaping() {
        assert_eq!(super::telegram_escape("a.b-c_d!"), "a\\.b\\-c\\_d\\!");
    }
}
