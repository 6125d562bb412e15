//! Per-kind behaviour of built-in resources: defaults the API server fills in, name rules,
//! and the status a "ready" workload controller would write.

use crate::util::{now_rfc3339, random_u64};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Fills in the defaults that matter for clients (Secret `stringData`, Service IPs, replicas).
pub fn apply_defaults(group: &str, kind: &str, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    match (group, kind) {
        ("", "Secret") => {
            if let Some(Value::Object(string_data)) = map.remove("stringData") {
                let data = map
                    .entry("data")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(data) = data {
                    for (k, v) in string_data {
                        let text = v.as_str().unwrap_or_default().to_string();
                        data.insert(
                            k,
                            base64::engine::general_purpose::STANDARD
                                .encode(text)
                                .into(),
                        );
                    }
                }
            }
            map.entry("type").or_insert_with(|| "Opaque".into());
        }
        ("", "Service") => {
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.entry("type").or_insert_with(|| "ClusterIP".into());
                spec.entry("sessionAffinity")
                    .or_insert_with(|| "None".into());
                if spec.get("clusterIP").is_none() && spec["type"] != "ExternalName" {
                    let n = random_u64();
                    let ip = format!("10.96.{}.{}", (n >> 8) % 256, n % 254 + 1);
                    spec.insert("clusterIP".into(), ip.clone().into());
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
                if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        port.entry("protocol").or_insert_with(|| "TCP".into());
                        if let Some(p) = port.get("port").cloned() {
                            port.entry("targetPort").or_insert(p);
                        }
                    }
                }
            }
        }
        ("", "Namespace") => {
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.entry("finalizers")
                    .or_insert_with(|| json!(["kubernetes"]));
            }
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet") => {
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.entry("replicas").or_insert_with(|| 1.into());
            }
        }
        _ => {}
    }
    if let Some(Value::Object(spec)) = map.get_mut("spec") {
        default_pod_template(spec);
    }
}

fn default_pod_template(spec: &mut Map<String, Value>) {
    let pod_spec = match spec.get_mut("template") {
        Some(Value::Object(t)) => t.get_mut("spec"),
        _ => None,
    };
    let Some(Value::Object(pod_spec)) = pod_spec else {
        return;
    };
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = pod_spec.get_mut(list) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert_with(|| "TCP".into());
                    }
                }
            }
        }
    }
}

/// events.k8s.io/v1 field names and their core/v1 Event counterparts (one storage, two views).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: &mut Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    if let Some(map) = obj.as_object_mut() {
        for (from, to) in pairs {
            if let Some(v) = map.remove(from) {
                map.insert(to.to_string(), v);
            }
        }
    }
}

/// An events.k8s.io/v1 Event in core/v1 form.
pub fn event_to_core(obj: &mut Value) {
    rename(obj, EVENT_FIELDS.iter().copied());
}

/// A core/v1 Event in events.k8s.io/v1 form.
pub fn event_from_core(obj: &mut Value) {
    rename(obj, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)));
}

/// Whether `name` is valid for `kind` (None) or why not.
pub fn validate_name(kind: &str, name: &str) -> Option<String> {
    match kind {
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            if name == "." || name == ".." || name.contains('/') || name.contains('%') {
                Some("may not contain '/' or '%' and may not be '.' or '..'".into())
            } else {
                None
            }
        }
        "Namespace" => dns_label(name),
        "Service" => dns_label(name).or_else(|| {
            (!name.starts_with(|c: char| c.is_ascii_lowercase())).then(|| {
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character".into()
            })
        }),
        _ => dns_subdomain(name),
    }
}

fn dns_label(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    (!ok).then(|| {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character".into()
    })
}

fn dns_subdomain(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into()
    })
}

/// Whether a label value is valid (None) or why not.
pub fn validate_label_value(value: &str) -> Option<String> {
    let ok = value.len() <= 63
        && (value.is_empty()
            || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric())
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))));
    (!ok).then(|| {
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into()
    })
}

/// Whether the kind is a workload the readiness switch reports on.
pub fn is_workload(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        (
            "apps",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        ) | ("batch", "Job")
    )
}

fn condition(type_: &str, reason: &str, message: &str) -> Value {
    let now = now_rfc3339();
    json!({"type": type_, "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
        "reason": reason, "message": message})
}

/// The status a healthy controller would report for a workload (None when not a workload).
pub fn ready_status(group: &str, kind: &str, obj: &Value) -> Option<Value> {
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let status = match (group, kind) {
        ("apps", "Deployment") => json!({
            "observedGeneration": generation,
            "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                condition("Progressing", "NewReplicaSetAvailable", &format!("ReplicaSet \"{name}\" has successfully progressed.")),
            ]
        }),
        ("apps", "ReplicaSet") => json!({
            "observedGeneration": generation, "replicas": replicas,
            "fullyLabeledReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
        }),
        ("apps", "StatefulSet") => {
            let revision = format!("{name}-{:x}", random_u64() % 0xfff_ffff);
            json!({
                "observedGeneration": generation, "replicas": replicas,
                "readyReplicas": replicas, "currentReplicas": replicas,
                "updatedReplicas": replicas, "availableReplicas": replicas,
                "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
            })
        }
        ("apps", "DaemonSet") => json!({
            "observedGeneration": generation,
            "currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberReady": 1,
            "numberAvailable": 1, "updatedNumberScheduled": 1, "numberMisscheduled": 0,
        }),
        ("batch", "Job") => {
            let completions = obj["spec"]["completions"].as_i64().unwrap_or(1);
            let now = now_rfc3339();
            let done = |t: &str, reason: &str| {
                json!({"type": t, "status": "True", "lastProbeTime": now,
                "lastTransitionTime": now, "reason": reason, "message": "Reached expected number of succeeded pods"})
            };
            json!({
                "startTime": now, "completionTime": now, "succeeded": completions,
                "ready": 0, "terminating": 0,
                "conditions": [done("SuccessCriteriaMet", "CompletionsReached"), done("Complete", "CompletionsReached")],
            })
        }
        _ => return None,
    };
    Some(status)
}

/// Whether a workload's current status already reports ready for its generation.
pub fn status_is_ready(group: &str, kind: &str, obj: &Value) -> bool {
    let status = &obj["status"];
    match (group, kind) {
        ("batch", "Job") => status["succeeded"].as_i64().unwrap_or(0) > 0,
        _ => {
            status["observedGeneration"] == obj["metadata"]["generation"]
                && status["readyReplicas"] == obj["spec"]["replicas"]
                && (kind != "DaemonSet" || status["numberReady"].as_i64().unwrap_or(0) > 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_is_encoded() {
        let mut s = json!({"stringData": {"a": "hi"}});
        apply_defaults("", "Secret", &mut s);
        assert_eq!(s["data"]["a"], "aGk=");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
    }

    #[test]
    fn names_are_checked_per_kind() {
        assert!(validate_name("ConfigMap", "a.b-c").is_none());
        assert!(validate_name("ConfigMap", "Bad").is_some());
        assert!(validate_name("Namespace", "a.b").is_some());
        assert!(validate_name("ClusterRole", "system:admin").is_none());
        assert!(validate_label_value("ok-1").is_none());
        assert!(validate_label_value("-bad").is_some());
    }

    #[test]
    fn deployment_ready_status_matches_generation() {
        let d = json!({"metadata": {"name": "w", "generation": 3}, "spec": {"replicas": 2}});
        let mut with = d.clone();
        with["status"] = ready_status("apps", "Deployment", &d).unwrap();
        assert!(status_is_ready("apps", "Deployment", &with));
        assert!(!status_is_ready("apps", "Deployment", &d));
    }
}
