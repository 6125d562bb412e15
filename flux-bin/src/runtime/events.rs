//! Event recording as Flux's controllers do it: a Kubernetes Event for every event, and a
//! POST of Flux's event JSON (`event.toolkit.fluxcd.io` v1beta1) to `--events-addr` for
//! `Normal`/`Warning` events. Building the payload is pure; sending is a thin adapter.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// Maximum message length posted to the notification-controller.
pub const MAX_MESSAGE_LENGTH: usize = 39_000;
/// Annotations with this prefix on the involved object are copied into event metadata.
pub const EVENT_ANNOTATION_PREFIX: &str = "event.toolkit.fluxcd.io/";

/// Event types: `Trace` is recorded as a Normal Kubernetes Event and never posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Severity `info`.
    Normal,
    /// Severity `error`.
    Warning,
    /// Severity `trace` (Kubernetes Event only).
    Trace,
}

impl EventType {
    /// Flux's severity string.
    pub fn severity(self) -> &'static str {
        match self {
            EventType::Normal => "info",
            EventType::Warning => "error",
            EventType::Trace => "trace",
        }
    }
}

/// The object an event is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `group/version`.
    pub api_version: String,
    /// Resource version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
}

/// Flux's event payload.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    /// The object.
    pub involved_object: InvolvedObject,
    /// `trace`, `info` or `error`.
    pub severity: String,
    /// RFC 3339, second precision.
    pub timestamp: String,
    /// The message (at most 39000 characters).
    pub message: String,
    /// CamelCase reason.
    pub reason: String,
    /// Group-prefixed metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Controller name.
    pub reporting_controller: String,
    /// Pod name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

/// Everything needed to build an event.
#[derive(Clone, Debug)]
pub struct EventInput<'a> {
    /// The object.
    pub object: &'a InvolvedObject,
    /// Annotations of the object (the `event.toolkit.fluxcd.io/` ones are copied).
    pub annotations: Option<&'a BTreeMap<String, String>>,
    /// Type.
    pub event_type: EventType,
    /// Reason.
    pub reason: &'a str,
    /// Message.
    pub message: &'a str,
    /// Metadata keyed by suffix (`revision`, `digest`, ...), prefixed with the object's group.
    pub metadata: &'a BTreeMap<String, String>,
    /// Controller name.
    pub controller: &'a str,
    /// Instance (pod) name.
    pub instance: &'a str,
}

/// Builds the payload to post, or `None` when Flux would not post it (trace events, objects
/// without kind/name/namespace).
pub fn build_event(input: &EventInput<'_>, now: Timestamp) -> Option<FluxEvent> {
    let object = input.object;
    if input.event_type == EventType::Trace
        || object.kind.is_empty()
        || object.name.is_empty()
        || object.namespace.is_empty()
    {
        return None;
    }
    let group = object
        .api_version
        .rsplit_once('/')
        .map_or("", |(group, _)| group);
    let mut metadata: BTreeMap<String, String> = input
        .metadata
        .iter()
        .map(|(key, value)| {
            (
                if group.is_empty() {
                    key.clone()
                } else {
                    format!("{group}/{key}")
                },
                value.clone(),
            )
        })
        .collect();
    if let Some(annotations) = input.annotations {
        for (key, value) in annotations
            .iter()
            .filter(|(key, _)| key.starts_with(EVENT_ANNOTATION_PREFIX))
        {
            metadata.insert(key.clone(), value.clone());
        }
    }
    let message: String = input.message.chars().take(MAX_MESSAGE_LENGTH).collect();
    Some(FluxEvent {
        involved_object: object.clone(),
        severity: input.event_type.severity().to_string(),
        timestamp: Timestamp::from_second(now.as_second())
            .unwrap_or(now)
            .to_string(),
        message,
        reason: input.reason.to_string(),
        metadata,
        reporting_controller: input.controller.to_string(),
        reporting_instance: input.instance.to_string(),
    })
}

/// Errors posting an event.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// Every attempt failed.
    #[error("posting event to {url} failed after {attempts} attempts: {last}")]
    Failed {
        /// Target URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        last: String,
    },
}

/// Posts events to the notification-controller (5 s timeout per attempt, retried).
#[derive(Clone, Debug)]
pub struct EventPoster {
    client: reqwest::Client,
    url: String,
    attempts: u32,
}

impl EventPoster {
    /// A poster for `--events-addr`; `None` when the address is empty.
    pub fn new(url: &str) -> Option<Self> {
        if url.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        Some(EventPoster {
            client,
            url: url.to_string(),
            attempts: 4,
        })
    }

    /// Posts one event, retrying on connection errors and 5xx answers.
    pub async fn post(&self, event: &FluxEvent) -> Result<(), PostError> {
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
            }
            match self.client.post(&self.url).json(event).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_client_error() => {
                    last = format!("HTTP {}", response.status());
                    break;
                }
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(error) => last = error.to_string(),
            }
        }
        Err(PostError::Failed {
            url: self.url.clone(),
            attempts: self.attempts,
            last,
        })
    }
}

/// Records Kubernetes Events through kube's recorder (Trace → Normal).
pub struct KubeEventRecorder {
    recorder: kube::runtime::events::Recorder,
}

impl KubeEventRecorder {
    /// A recorder reporting as `controller`/`instance`.
    pub fn new(client: kube::Client, controller: &str, instance: &str) -> Self {
        let reporter = kube::runtime::events::Reporter {
            controller: controller.to_string(),
            instance: (!instance.is_empty()).then(|| instance.to_string()),
        };
        KubeEventRecorder {
            recorder: kube::runtime::events::Recorder::new(client, reporter),
        }
    }

    /// Records one event about `reference`.
    pub async fn record(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let type_ = match event_type {
            EventType::Warning => kube::runtime::events::EventType::Warning,
            EventType::Normal | EventType::Trace => kube::runtime::events::EventType::Normal,
        };
        let event = kube::runtime::events::Event {
            type_,
            reason: reason.to_string(),
            note: Some(message.chars().take(1024).collect()),
            action: reason.to_string(),
            secondary: None,
        };
        self.recorder.publish(&event, reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn object() -> InvolvedObject {
        InvolvedObject {
            kind: "Kustomization".into(),
            namespace: "apps".into(),
            name: "webapp".into(),
            uid: "u1".into(),
            api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
            resource_version: String::new(),
        }
    }

    fn input<'a>(
        object: &'a InvolvedObject,
        metadata: &'a BTreeMap<String, String>,
        annotations: &'a BTreeMap<String, String>,
        event_type: EventType,
    ) -> EventInput<'a> {
        EventInput {
            object,
            annotations: Some(annotations),
            event_type,
            reason: "ReconciliationSucceeded",
            message: "Applied revision: main@sha1:abc",
            metadata,
            controller: "kustomize-controller",
            instance: "pod-1",
        }
    }

    #[test]
    fn builds_flux_event_json() {
        let object = object();
        let metadata = BTreeMap::from([("revision".to_string(), "main@sha1:abc".to_string())]);
        let annotations = BTreeMap::from([
            (
                "event.toolkit.fluxcd.io/change_request".to_string(),
                "42".to_string(),
            ),
            ("other/annotation".to_string(), "x".to_string()),
        ]);
        let now: Timestamp = "2026-01-02T15:04:05.123Z".parse().expect("time");
        let event = build_event(
            &input(&object, &metadata, &annotations, EventType::Normal),
            now,
        )
        .expect("posted");
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(json["severity"], "info");
        assert_eq!(json["timestamp"], "2026-01-02T15:04:05Z");
        assert_eq!(
            json["metadata"]["kustomize.toolkit.fluxcd.io/revision"],
            "main@sha1:abc"
        );
        assert_eq!(
            json["metadata"]["event.toolkit.fluxcd.io/change_request"],
            "42"
        );
        assert!(json["metadata"].get("other/annotation").is_none());
        assert_eq!(
            json["involvedObject"]["apiVersion"],
            "kustomize.toolkit.fluxcd.io/v1"
        );
        assert_eq!(json["reportingController"], "kustomize-controller");
        assert!(json["involvedObject"].get("resourceVersion").is_none());

        assert!(build_event(
            &input(&object, &metadata, &annotations, EventType::Trace),
            now
        )
        .is_none());
        let mut anonymous = object.clone();
        anonymous.namespace.clear();
        assert!(build_event(
            &input(&anonymous, &metadata, &annotations, EventType::Warning),
            now
        )
        .is_none());
        let warning = build_event(
            &input(&object, &metadata, &annotations, EventType::Warning),
            now,
        )
        .expect("posted");
        assert_eq!(warning.severity, "error");
    }

    #[tokio::test]
    async fn posts_to_a_local_endpoint() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.expect("read");
                received.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&received);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            socket
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("write");
            String::from_utf8_lossy(&received).to_string()
        });
        let object = object();
        let metadata = BTreeMap::new();
        let annotations = BTreeMap::new();
        let event = build_event(
            &input(&object, &metadata, &annotations, EventType::Normal),
            Timestamp::UNIX_EPOCH,
        )
        .expect("event");
        let poster = EventPoster::new(&url).expect("poster");
        poster.post(&event).await.expect("posted");
        let request = server.await.expect("server");
        assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
        assert!(request
            .to_ascii_lowercase()
            .contains("content-type: application/json"));
        assert!(request.contains("\"reason\":\"ReconciliationSucceeded\""));
        assert!(EventPoster::new("").is_none());
    }
}
