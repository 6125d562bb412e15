//! kstatus-style health of arbitrary objects (as JSON), as Flux's health checks compute it:
//! generic rules (deletion, observedGeneration, Reconciling/Stalled, Ready) plus the built-in
//! rules for Deployments, StatefulSets, DaemonSets, ReplicaSets, Pods, PVCs, Services, PDBs,
//! CRDs and Jobs (Flux's own Job reader by default).
//!
//! Pure: no cluster access; the caller passes the current time (Pod scheduling window).

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::Error;

/// The health of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Reconciled and healthy.
    Current,
    /// Still progressing.
    InProgress,
    /// Failed; waiting longer will not help.
    Failed,
    /// Being deleted.
    Terminating,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Current => "Current",
            HealthStatus::InProgress => "InProgress",
            HealthStatus::Failed => "Failed",
            HealthStatus::Terminating => "Terminating",
        })
    }
}

/// A computed health with kstatus's reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// CamelCase reason (empty when kstatus gives none).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Health {
    fn new(status: HealthStatus, reason: &str, message: impl Into<String>) -> Self {
        Health {
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
    fn current(message: impl Into<String>) -> Self {
        Health::new(HealthStatus::Current, "", message)
    }
    fn in_progress(reason: &str, message: impl Into<String>) -> Self {
        Health::new(HealthStatus::InProgress, reason, message)
    }
    fn failed(reason: &str, message: impl Into<String>) -> Self {
        Health::new(HealthStatus::Failed, reason, message)
    }
}

/// Which Job rule applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JobRule {
    /// Flux's Job reader: waits for completion (what kustomize/helm controllers use).
    #[default]
    Flux,
    /// kstatus's built-in rule: a started Job counts as current.
    Kstatus,
}

/// How long a Pod may stay unschedulable before it is reported Failed.
const SCHEDULE_WINDOW_SECONDS: i64 = 15;

/// Health of an object as Flux computes it (Flux's Job reader for `batch/Job`).
pub fn evaluate(object: &Value, now: Timestamp) -> Result<Health, Error> {
    evaluate_with(object, now, JobRule::Flux)
}

/// Health of an object with an explicit Job rule.
pub fn evaluate_with(object: &Value, now: Timestamp, job_rule: JobRule) -> Result<Health, Error> {
    let view = ObjectView::new(object)?;
    if view.group_kind() == ("batch", "Job") && job_rule == JobRule::Flux {
        return Ok(flux_job(&view));
    }
    compute(&view, now)
}

/// A checked view on an object: conditions and generations validated up front, so malformed
/// input is an error rather than a wrong answer.
struct ObjectView<'a> {
    object: &'a Value,
    kind: &'a str,
    group: &'a str,
    name: String,
    conditions: Vec<ConditionView<'a>>,
}

struct ConditionView<'a> {
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

impl<'a> ObjectView<'a> {
    fn new(object: &'a Value) -> Result<Self, Error> {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        let name = format!(
            "{kind}/{}{}",
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(|ns| format!("{ns}/"))
                .unwrap_or_default(),
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        let malformed = |field: &str, message: &str| Error::MalformedObject {
            object: name.clone(),
            field: field.to_string(),
            message: message.to_string(),
        };
        if !object.is_object() {
            return Err(malformed("", "not a JSON object"));
        }
        for field in ["/metadata/generation", "/status/observedGeneration"] {
            if let Some(value) = object.pointer(field) {
                if !value.is_i64() {
                    return Err(malformed(field, "not an integer"));
                }
            }
        }
        let mut conditions = Vec::new();
        match object.get("status") {
            None | Some(Value::Null) => {}
            Some(Value::Object(status)) => match status.get("conditions") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let field = |key: &str| -> Result<&'a str, Error> {
                            match item.get(key) {
                                None | Some(Value::Null) => Ok(""),
                                Some(Value::String(s)) => Ok(s.as_str()),
                                Some(_) => Err(malformed(
                                    &format!("status.conditions[{i}].{key}"),
                                    "not a string",
                                )),
                            }
                        };
                        if !item.is_object() {
                            return Err(malformed(
                                &format!("status.conditions[{i}]"),
                                "not an object",
                            ));
                        }
                        conditions.push(ConditionView {
                            type_: field("type")?,
                            status: field("status")?,
                            reason: field("reason")?,
                            message: field("message")?,
                        });
                    }
                }
                Some(_) => return Err(malformed("status.conditions", "not a list")),
            },
            Some(_) => return Err(malformed("status", "not an object")),
        }
        Ok(ObjectView {
            object,
            kind,
            group,
            name,
            conditions,
        })
    }

    fn group_kind(&self) -> (&str, &str) {
        (self.group, self.kind)
    }

    /// An integer field with kstatus's defaulting (absent or not an integer → default).
    fn int(&self, pointer: &str, default: i64) -> i64 {
        self.object
            .pointer(pointer)
            .and_then(Value::as_i64)
            .unwrap_or(default)
    }

    fn string(&self, pointer: &str) -> Option<&'a str> {
        self.object.pointer(pointer).and_then(Value::as_str)
    }

    fn has_condition(&self, type_: &str, status: &str) -> bool {
        self.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == status)
    }
}

/// kstatus `Compute`: the first decisive step wins.
fn compute(view: &ObjectView<'_>, now: Timestamp) -> Result<Health, Error> {
    let deleting = view
        .object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null() && v != "");
    if deleting {
        return Ok(Health::new(
            HealthStatus::Terminating,
            "",
            "Resource scheduled for deletion",
        ));
    }
    if let (Some(generation), Some(observed)) = (
        view.object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64),
        view.object
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64),
    ) {
        if generation != observed {
            return Ok(Health::in_progress(
                "LatestGenerationNotObserved",
                format!(
                    "{} generation is {generation}, but latest observed generation is {observed}",
                    view.kind
                ),
            ));
        }
    }
    for c in &view.conditions {
        if c.type_ == "Reconciling" && c.status == "True" {
            return Ok(Health::in_progress(c.reason, c.message));
        }
        if c.type_ == "Stalled" && c.status == "True" {
            return Ok(Health::failed(c.reason, c.message));
        }
    }
    if let Some(health) = built_in_rule(view, now)? {
        return Ok(health);
    }
    for c in view.conditions.iter().filter(|c| c.type_ == "Ready") {
        match c.status {
            "True" => return Ok(Health::current("Resource is Ready")),
            "False" | "Unknown" => return Ok(Health::in_progress(c.reason, c.message)),
            _ => {}
        }
    }
    Ok(Health::current("Resource is current"))
}

fn built_in_rule(view: &ObjectView<'_>, now: Timestamp) -> Result<Option<Health>, Error> {
    let health = match view.group_kind() {
        ("apps" | "extensions", "Deployment") => deployment(view),
        ("apps", "StatefulSet") => stateful_set(view),
        ("apps" | "extensions", "DaemonSet") => daemon_set(view),
        ("apps" | "extensions", "ReplicaSet") => replica_set(view),
        ("", "Pod") => pod(view, now)?,
        ("", "PersistentVolumeClaim") => {
            let phase = view.string("/status/phase").unwrap_or("unknown");
            if phase == "Bound" {
                Health::current("PVC is Bound")
            } else {
                Health::in_progress("NotBound", format!("PVC is not Bound. phase: {phase}"))
            }
        }
        ("", "Service") => {
            let service_type = view.string("/spec/type").unwrap_or("ClusterIP");
            if service_type == "LoadBalancer"
                && view
                    .string("/spec/clusterIP")
                    .unwrap_or_default()
                    .is_empty()
            {
                Health::in_progress(
                    "NoIPAssigned",
                    "ClusterIP not set. Service type: LoadBalancer",
                )
            } else {
                Health::current("Service is ready")
            }
        }
        ("policy", "PodDisruptionBudget") => {
            Health::current("AllowedDisruptions has been computed.")
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(view),
        ("batch", "Job") => kstatus_job(view),
        ("batch", "CronJob") | ("", "ConfigMap" | "Secret") => {
            Health::current("Resource is always ready")
        }
        _ => return Ok(None),
    };
    Ok(Some(health))
}

fn deployment(view: &ObjectView<'_>) -> Health {
    let mut progressing =
        view.int("/spec/progressDeadlineSeconds", i64::from(i32::MAX)) == i64::from(i32::MAX);
    let mut available = false;
    for c in &view.conditions {
        match c.type_ {
            "Progressing" => {
                if c.reason == "ProgressDeadlineExceeded" {
                    return Health::failed(
                        "ProgressDeadlineExceeded",
                        "Progress deadline exceeded",
                    );
                }
                if c.status == "True" && c.reason == "NewReplicaSetAvailable" {
                    progressing = true;
                }
            }
            "Available" if c.status == "True" => available = true,
            _ => {}
        }
    }
    let spec = view.int("/spec/replicas", 1);
    let replicas = view.int("/status/replicas", 0);
    let updated = view.int("/status/updatedReplicas", 0);
    let ready = view.int("/status/readyReplicas", 0);
    let available_replicas = view.int("/status/availableReplicas", 0);
    if spec > replicas {
        return Health::in_progress("LessReplicas", format!("replicas: {replicas}/{spec}"));
    }
    if spec > updated {
        return Health::in_progress("LessUpdated", format!("Updated: {updated}/{spec}"));
    }
    if replicas > spec {
        return Health::in_progress(
            "ExtraPods",
            format!("Pending termination: {}", replicas - spec),
        );
    }
    if updated > available_replicas {
        return Health::in_progress(
            "LessAvailable",
            format!("Available: {available_replicas}/{updated}"),
        );
    }
    if spec > ready {
        return Health::in_progress("LessReady", format!("Ready: {ready}/{spec}"));
    }
    if !progressing {
        return Health::in_progress("ReplicaSetNotAvailable", "ReplicaSet not Available");
    }
    if !available {
        return Health::in_progress("DeploymentNotAvailable", "Deployment not Available");
    }
    Health::current(format!("Deployment is available. Replicas: {replicas}"))
}

fn stateful_set(view: &ObjectView<'_>) -> Health {
    if view.string("/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::current("StatefulSet is using the ondelete update strategy");
    }
    let spec = view.int("/spec/replicas", 1);
    let replicas = view.int("/status/replicas", 0);
    let ready = view.int("/status/readyReplicas", 0);
    let current = view.int("/status/currentReplicas", 0);
    let updated = view.int("/status/updatedReplicas", 0);
    if spec > replicas {
        return Health::in_progress("LessReplicas", format!("Replicas: {replicas}/{spec}"));
    }
    if spec > ready {
        return Health::in_progress("LessReady", format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return Health::in_progress(
            "ExtraPods",
            format!("Pending termination: {}", replicas - spec),
        );
    }
    if let Some(partition) = view
        .object
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
    {
        if updated < spec - partition {
            return Health::in_progress(
                "PartitionRollout",
                format!("updated: {updated}/{}", spec - partition),
            );
        }
        return Health::current(format!("Partition rollout complete. updated: {updated}"));
    }
    if spec > current {
        return Health::in_progress("LessCurrent", format!("current: {current}/{spec}"));
    }
    if view.string("/status/currentRevision").unwrap_or_default()
        != view.string("/status/updateRevision").unwrap_or_default()
    {
        return Health::in_progress(
            "RevisionMismatch",
            "Waiting for updated revision to match current",
        );
    }
    Health::current(format!(
        "All replicas scheduled as expected. Replicas: {replicas}"
    ))
}

fn daemon_set(view: &ObjectView<'_>) -> Health {
    if view.object.pointer("/metadata/generation").is_none() {
        return Health::in_progress("NoGeneration", "Missing .metadata.generation");
    }
    if view.object.pointer("/status/observedGeneration").is_none() {
        return Health::in_progress("NoObservedGeneration", "Missing .status.observedGeneration");
    }
    let Some(desired) = view
        .object
        .pointer("/status/desiredNumberScheduled")
        .and_then(Value::as_i64)
    else {
        return Health::in_progress("NoDesiredNumber", "Missing .status.desiredNumberScheduled");
    };
    let current = view.int("/status/currentNumberScheduled", 0);
    let updated = view.int("/status/updatedNumberScheduled", 0);
    let available = view.int("/status/numberAvailable", 0);
    let ready = view.int("/status/numberReady", 0);
    if desired > current {
        return Health::in_progress("LessCurrent", format!("Current: {current}/{desired}"));
    }
    if desired > updated {
        return Health::in_progress("LessUpdated", format!("Updated: {updated}/{desired}"));
    }
    if desired > available {
        return Health::in_progress("LessAvailable", format!("Available: {available}/{desired}"));
    }
    if desired > ready {
        return Health::in_progress("LessReady", format!("Ready: {ready}/{desired}"));
    }
    Health::current(format!(
        "All replicas scheduled as expected. Replicas: {desired}"
    ))
}

fn replica_set(view: &ObjectView<'_>) -> Health {
    if view.has_condition("ReplicaFailure", "True") {
        return Health::in_progress("ReplicaFailure", "Replica Failure condition. Check Pods");
    }
    let spec = view.int("/spec/replicas", 1);
    let replicas = view.int("/status/replicas", 0);
    let ready = view.int("/status/readyReplicas", 0);
    let available = view.int("/status/availableReplicas", 0);
    let labelled = view.int("/status/fullyLabeledReplicas", 0);
    if spec > labelled {
        return Health::in_progress("LessLabelled", format!("Labelled: {labelled}/{spec}"));
    }
    if spec > available {
        return Health::in_progress("LessAvailable", format!("Available: {available}/{spec}"));
    }
    if spec > ready {
        return Health::in_progress("LessReady", format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return Health::in_progress(
            "ExtraPods",
            format!("Pending termination: {}", replicas - spec),
        );
    }
    Health::current(format!("ReplicaSet is available. Replicas: {replicas}"))
}

fn pod(view: &ObjectView<'_>, now: Timestamp) -> Result<Health, Error> {
    Ok(match view.string("/status/phase").unwrap_or_default() {
        "Succeeded" => Health::current("Pod has completed successfully"),
        "Failed" => Health::current("Pod has completed, but not successfully"),
        "Running" => {
            if view.has_condition("Ready", "True") {
                return Ok(Health::current("Pod is Ready"));
            }
            let crash_looping: Vec<&str> = view
                .object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|cs| {
                    cs.pointer("/state/waiting/reason").and_then(Value::as_str)
                        == Some("CrashLoopBackOff")
                })
                .filter_map(|cs| cs.get("name").and_then(Value::as_str))
                .collect();
            if crash_looping.is_empty() {
                Health::in_progress("PodRunningNotReady", "Pod is running but is not Ready")
            } else {
                Health::failed(
                    "ContainerCrashLooping",
                    format!("Containers in CrashLoop state: {}", crash_looping.join(",")),
                )
            }
        }
        "Pending" => {
            let unschedulable = view.conditions.iter().any(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason == "Unschedulable"
            });
            if !unschedulable {
                return Ok(Health::in_progress(
                    "PodPending",
                    "Pod is in the Pending phase",
                ));
            }
            let created = view
                .string("/metadata/creationTimestamp")
                .and_then(|t| t.parse::<Timestamp>().ok());
            let within_window = created.is_some_and(|created| {
                now.as_second() - SCHEDULE_WINDOW_SECONDS < created.as_second()
            });
            if within_window {
                Health::in_progress("PodNotScheduled", "Pod has not been scheduled")
            } else {
                Health::failed("PodUnschedulable", "Pod could not be scheduled")
            }
        }
        "" => Health::in_progress("PodNotObserved", "Pod phase not available"),
        other => {
            return Err(Error::MalformedObject {
                object: view.name.clone(),
                field: "status.phase".into(),
                message: format!("unknown phase {other}"),
            })
        }
    })
}

fn crd(view: &ObjectView<'_>) -> Health {
    for c in &view.conditions {
        if c.type_ == "NamesAccepted" && c.status == "False" {
            return Health::failed(c.reason, c.message);
        }
        if c.type_ == "Established" {
            if c.status == "False" && c.reason != "Installing" {
                return Health::failed(c.reason, c.message);
            }
            if c.status == "True" {
                return Health::current("CRD is established");
            }
        }
    }
    Health::in_progress("Installing", "Install in progress")
}

fn job_counts(view: &ObjectView<'_>) -> (i64, i64, i64, i64) {
    let parallelism = view.int("/spec/parallelism", 1);
    let completions = view.int("/spec/completions", parallelism);
    (
        completions,
        view.int("/status/succeeded", 0),
        view.int("/status/active", 0),
        view.int("/status/failed", 0),
    )
}

/// Complete/Failed conditions shared by both Job rules.
fn job_conditions(view: &ObjectView<'_>) -> Option<Health> {
    let (completions, succeeded, _, failed) = job_counts(view);
    for c in &view.conditions {
        if c.type_ == "Complete" && c.status == "True" {
            return Some(Health::current(format!(
                "Job Completed. succeeded: {succeeded}/{completions}"
            )));
        }
        if c.type_ == "Failed" && c.status == "True" {
            return Some(Health::failed(
                "JobFailed",
                format!("Job Failed. failed: {failed}/{completions}"),
            ));
        }
    }
    None
}

fn kstatus_job(view: &ObjectView<'_>) -> Health {
    if let Some(health) = job_conditions(view) {
        return health;
    }
    if view
        .string("/status/startTime")
        .unwrap_or_default()
        .is_empty()
    {
        return Health::in_progress("JobNotStarted", "Job not started");
    }
    let (_, succeeded, active, failed) = job_counts(view);
    Health::current(format!(
        "Job in progress. success:{succeeded}, active: {active}, failed: {failed}"
    ))
}

/// Flux's Job reader: replaces `Compute` entirely and waits for completion.
fn flux_job(view: &ObjectView<'_>) -> Health {
    if view
        .object
        .pointer("/spec/suspend")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Health::current("Job is suspended");
    }
    if let Some(health) = job_conditions(view) {
        return health;
    }
    if view
        .string("/status/startTime")
        .unwrap_or_default()
        .is_empty()
    {
        return Health::in_progress("JobNotStarted", "Job not started");
    }
    let (_, succeeded, active, failed) = job_counts(view);
    Health::in_progress(
        "JobInProgress",
        format!("Job in progress. success:{succeeded}, active: {active}, failed: {failed}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-01-01T00:00:30Z".parse().expect("valid timestamp")
    }

    fn status_of(object: &Value) -> HealthStatus {
        evaluate(object, now()).expect("well-formed object").status
    }

    fn deployment(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 2},
               "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn deployment_rules() {
        let ready = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
            "availableReplicas": 2, "conditions": [{"type": "Available", "status": "True"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]});
        let health = evaluate(&deployment(ready.clone()), now()).expect("ok");
        assert_eq!(
            (health.status, health.message.as_str()),
            (
                HealthStatus::Current,
                "Deployment is available. Replicas: 2"
            )
        );

        let mut old = ready.clone();
        old["observedGeneration"] = json!(1);
        let health = evaluate(&deployment(old), now()).expect("ok");
        assert_eq!(health.reason, "LatestGenerationNotObserved");

        let mut less_ready = ready.clone();
        less_ready["readyReplicas"] = json!(1);
        let health = evaluate(&deployment(less_ready), now()).expect("ok");
        assert_eq!(
            (
                health.status,
                health.reason.as_str(),
                health.message.as_str()
            ),
            (HealthStatus::InProgress, "LessReady", "Ready: 1/2")
        );

        let mut deadline = ready.clone();
        deadline["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        assert_eq!(status_of(&deployment(deadline)), HealthStatus::Failed);

        let mut unavailable = ready;
        unavailable["conditions"] =
            json!([{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]);
        let health = evaluate(&deployment(unavailable), now()).expect("ok");
        assert_eq!(health.reason, "DeploymentNotAvailable");
    }

    #[test]
    fn stateful_set_and_daemon_set() {
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}},
            "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 0}});
        assert_eq!(
            evaluate(&sts, now()).expect("ok").reason,
            "PartitionRollout"
        );
        let mut done = sts.clone();
        done["status"]["updatedReplicas"] = json!(1);
        assert_eq!(status_of(&done), HealthStatus::Current);
        let mut revision = sts;
        revision["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
        revision["status"] = json!({"replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "currentRevision": "a", "updateRevision": "b"});
        assert_eq!(
            evaluate(&revision, now()).expect("ok").reason,
            "RevisionMismatch"
        );

        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
                       "updatedNumberScheduled": 2, "numberAvailable": 1, "numberReady": 2}});
        assert_eq!(evaluate(&ds, now()).expect("ok").reason, "LessAvailable");
        let no_gen = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "status": {}});
        assert_eq!(evaluate(&no_gen, now()).expect("ok").reason, "NoGeneration");
    }

    #[test]
    fn jobs_pvcs_services_pods() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
            "status": {"startTime": "2026-01-01T00:00:00Z", "active": 1}});
        assert_eq!(evaluate(&job, now()).expect("ok").reason, "JobInProgress");
        assert_eq!(
            evaluate_with(&job, now(), JobRule::Kstatus)
                .expect("ok")
                .status,
            HealthStatus::Current
        );
        let mut failed = job.clone();
        failed["status"]["conditions"] = json!([{"type": "Failed", "status": "True"}]);
        assert_eq!(status_of(&failed), HealthStatus::Failed);

        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "status": {"phase": "Pending"}});
        assert_eq!(
            evaluate(&pvc, now()).expect("ok").message,
            "PVC is not Bound. phase: Pending"
        );

        let lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(status_of(&lb), HealthStatus::InProgress);
        let svc =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {}});
        assert_eq!(status_of(&svc), HealthStatus::Current);

        let pending = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:20Z"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}});
        assert_eq!(
            evaluate(&pending, now()).expect("ok").reason,
            "PodNotScheduled"
        );
        let mut old = pending;
        old["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(
            evaluate(&old, now()).expect("ok").reason,
            "PodUnschedulable"
        );
        let crash = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running",
            "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(
            evaluate(&crash, now()).expect("ok").message,
            "Containers in CrashLoop state: app"
        );
    }

    #[test]
    fn custom_resources_use_conditions() {
        let mut ks = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "generation": 3}, "status": {"observedGeneration": -1}});
        assert_eq!(
            status_of(&ks),
            HealthStatus::InProgress,
            "CRD default -1 means never observed"
        );
        ks["status"] = json!({"observedGeneration": 3, "conditions": [
            {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "kustomize build failed"},
            {"type": "Stalled", "status": "True", "reason": "BuildFailed", "message": "kustomize build failed"}]});
        let health = evaluate(&ks, now()).expect("ok");
        assert_eq!(
            (health.status, health.reason.as_str()),
            (HealthStatus::Failed, "BuildFailed")
        );
        ks["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "x"}]);
        assert_eq!(status_of(&ks), HealthStatus::InProgress);
        ks["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "ok"}]);
        assert_eq!(status_of(&ks), HealthStatus::Current);
        let plain = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}});
        assert_eq!(status_of(&plain), HealthStatus::Current);
        let deleting = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(status_of(&deleting), HealthStatus::Terminating);
    }

    #[test]
    fn malformed_objects_are_errors() {
        let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "generation": "2"}});
        let error = evaluate(&bad, now()).expect_err("string generation rejected");
        assert!(error.to_string().contains("ConfigMap/x"), "{error}");
        let bad_conditions = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "status": {"conditions": {}}});
        assert!(evaluate(&bad_conditions, now()).is_err());
        let unknown_phase = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Weird"}});
        assert!(evaluate(&unknown_phase, now()).is_err());
    }
}
