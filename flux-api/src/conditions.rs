//! Pure status-condition helpers with Flux's semantics: get/set/mark, observedGeneration on
//! every condition, `lastTransitionTime` changing only when the status changes, Ready first,
//! kstatus-compatible Ready/Reconciling/Stalled summaries and `lastHandledReconcileAt`.
//!
//! Every function takes the current time as an argument, so callers (and tests) decide it.

use std::collections::BTreeMap;

use crate::constants::{annotation, condition, reason, status, MAX_CONDITION_MESSAGE_LENGTH};
use crate::meta::{Condition, Time};

/// Returns the condition of the given type.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition exists with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == status::TRUE)
}

/// Whether the condition exists with status `False`.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == status::FALSE)
}

/// Whether the condition is absent or has status `Unknown`.
pub fn is_unknown(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_none_or(|c| c.status == status::UNKNOWN)
}

/// Whether the Ready condition is `True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    is_true(conditions, condition::READY)
}

/// Removes the condition of the given type; returns whether it existed.
pub fn delete(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// Builds a condition (message trimmed like Flux's setter does).
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: trim_message(message),
        observed_generation: generation,
        last_transition_time: now,
    }
}

/// Cuts a message to the metav1 limit of 32768 bytes, the last 3 bytes becoming `...`
/// (never splitting a UTF-8 character).
pub fn trim_message(message: &str) -> String {
    if message.len() <= MAX_CONDITION_MESSAGE_LENGTH {
        return message.to_string();
    }
    let mut end = MAX_CONDITION_MESSAGE_LENGTH - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

/// Sets a condition. An existing condition of the same type keeps its `lastTransitionTime`
/// unless the status changes. Conditions stay sorted: Ready first, then by type.
pub fn set(conditions: &mut Vec<Condition>, mut new: Condition) {
    new.message = trim_message(&new.message);
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if existing.status == new.status {
            new.last_transition_time = existing.last_transition_time.clone();
        }
        *existing = new;
    } else {
        conditions.push(new);
    }
    conditions.sort_by(|a, b| order_key(&a.type_).cmp(&order_key(&b.type_)));
}

fn order_key(type_: &str) -> (bool, &str) {
    (type_ != condition::READY, type_)
}

/// Sets a `True` condition.
pub fn mark_true(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) {
    set(
        conditions,
        new_condition(type_, status::TRUE, reason, message, generation, now),
    );
}

/// Sets a `False` condition.
pub fn mark_false(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) {
    set(
        conditions,
        new_condition(type_, status::FALSE, reason, message, generation, now),
    );
}

/// Sets an `Unknown` condition.
pub fn mark_unknown(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) {
    set(
        conditions,
        new_condition(type_, status::UNKNOWN, reason, message, generation, now),
    );
}

/// Start of work: `Reconciling=True` (reason `Progressing`) and `Ready=Unknown` with the same
/// message; `Stalled` is removed since work is possible again.
pub fn mark_reconciling(
    conditions: &mut Vec<Condition>,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    delete(conditions, condition::STALLED);
    mark_true(
        conditions,
        condition::RECONCILING,
        reason::PROGRESSING,
        message,
        generation,
        now.clone(),
    );
    mark_unknown(
        conditions,
        condition::READY,
        reason::PROGRESSING,
        message,
        generation,
        now.clone(),
    );
}

/// Terminal failure: `Stalled=True` and `Ready=False` with the same reason; `Reconciling` is
/// removed (no retry happens until the spec changes).
pub fn mark_stalled(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    delete(conditions, condition::RECONCILING);
    mark_true(
        conditions,
        condition::STALLED,
        reason,
        message,
        generation,
        now.clone(),
    );
    mark_false(
        conditions,
        condition::READY,
        reason,
        message,
        generation,
        now.clone(),
    );
}

/// Success: `Ready=True`, `Reconciling` and `Stalled` removed.
pub fn mark_ready(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    delete(conditions, condition::RECONCILING);
    delete(conditions, condition::STALLED);
    mark_true(
        conditions,
        condition::READY,
        reason,
        message,
        generation,
        now.clone(),
    );
}

/// Retryable failure: `Ready=False`; a present `Reconciling` gets reason `ProgressingWithRetry`.
pub fn mark_failed(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    if let Some(reconciling) = get(conditions, condition::RECONCILING).cloned() {
        if reconciling.status == status::TRUE {
            mark_true(
                conditions,
                condition::RECONCILING,
                reason::PROGRESSING_WITH_RETRY,
                &reconciling.message,
                generation,
                now.clone(),
            );
        }
    }
    mark_false(
        conditions,
        condition::READY,
        reason,
        message,
        generation,
        now.clone(),
    );
}

/// Computes Ready from owned conditions, as the source reconcilers' summary step does.
///
/// `negative` are negative-polarity types in priority order (e.g. `StorageOperationFailed`,
/// `FetchFailed`, ...); `Stalled` and `Reconciling` are considered after them. The first one
/// that is `True` decides Ready: `False` with its reason and message (`Unknown` for
/// `Reconciling`). When none is set, Ready copies the first present `positive` condition
/// (e.g. `ArtifactInStorage`). With nothing to summarise, Ready is left unchanged.
pub fn summarize(
    conditions: &mut Vec<Condition>,
    negative: &[&str],
    positive: &[&str],
    generation: Option<i64>,
    now: &Time,
) {
    let abnormal = negative
        .iter()
        .chain([condition::STALLED, condition::RECONCILING].iter())
        .find_map(|t| {
            get(conditions, t)
                .filter(|c| c.status == status::TRUE)
                .cloned()
        });
    if let Some(c) = abnormal {
        let ready_status = if c.type_ == condition::RECONCILING {
            status::UNKNOWN
        } else {
            status::FALSE
        };
        set(
            conditions,
            new_condition(
                condition::READY,
                ready_status,
                &c.reason,
                &c.message,
                generation,
                now.clone(),
            ),
        );
        return;
    }
    if let Some(c) = positive.iter().find_map(|t| get(conditions, t).cloned()) {
        set(
            conditions,
            new_condition(
                condition::READY,
                &c.status,
                &c.reason,
                &c.message,
                generation,
                now.clone(),
            ),
        );
    }
}

/// How a reconciliation ended, for [`finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No error.
    Success,
    /// A retryable error.
    Retry,
    /// A terminal error (the object is Stalled).
    Stalled,
}

/// End-of-reconcile bookkeeping shared by every reconciler. Returns the new
/// `status.observedGeneration`: advanced to `generation` on success and on terminal errors,
/// unchanged on retryable errors. On success `Reconciling` is removed; on retry it gets
/// reason `ProgressingWithRetry`.
pub fn finish(
    conditions: &mut Vec<Condition>,
    outcome: Outcome,
    observed_generation: Option<i64>,
    generation: Option<i64>,
    now: &Time,
) -> Option<i64> {
    match outcome {
        Outcome::Success => {
            delete(conditions, condition::RECONCILING);
            delete(conditions, condition::STALLED);
            generation.or(observed_generation)
        }
        Outcome::Stalled => {
            delete(conditions, condition::RECONCILING);
            generation.or(observed_generation)
        }
        Outcome::Retry => {
            if let Some(reconciling) = get(conditions, condition::RECONCILING).cloned() {
                let mut updated = reconciling;
                updated.reason = reason::PROGRESSING_WITH_RETRY.to_string();
                updated.observed_generation = generation;
                updated.last_transition_time = now.clone();
                set(conditions, updated);
            }
            observed_generation
        }
    }
}

/// The value of `reconcile.fluxcd.io/requestedAt`, if set.
pub fn reconcile_request(annotations: Option<&BTreeMap<String, String>>) -> Option<&str> {
    annotations?
        .get(annotation::RECONCILE_REQUESTED_AT)
        .map(String::as_str)
}

/// Whether the object carries a reconcile request not handled yet.
pub fn has_new_reconcile_request(
    annotations: Option<&BTreeMap<String, String>>,
    last_handled: Option<&str>,
) -> bool {
    reconcile_request(annotations).is_some_and(|requested| Some(requested) != last_handled)
}

/// Records a handled reconcile request: returns the new `lastHandledReconcileAt` (the
/// annotation value when present, else the previous value).
pub fn handle_reconcile_request(
    annotations: Option<&BTreeMap<String, String>>,
    last_handled: Option<&str>,
) -> Option<String> {
    reconcile_request(annotations)
        .or(last_handled)
        .map(str::to_string)
}

/// HelmRelease force/reset requests (`reconcile.fluxcd.io/forceAt`, `.../resetAt`): returns
/// `(new lastHandled<X>, act)`. The value is recorded whenever the annotation exists; the
/// controller acts only if `requestedAt` equals it, differs from `lastHandledReconcileAt`
/// and differs from the previous `lastHandled<X>`.
pub fn handle_paired_request(
    annotations: Option<&BTreeMap<String, String>>,
    key: &str,
    last_handled_reconcile_at: Option<&str>,
    last_handled: Option<&str>,
) -> (Option<String>, bool) {
    let Some(value) = annotations.and_then(|a| a.get(key)) else {
        return (last_handled.map(str::to_string), false);
    };
    let requested = reconcile_request(annotations);
    let act = requested == Some(value.as_str())
        && Some(value.as_str()) != last_handled_reconcile_at
        && Some(value.as_str()) != last_handled;
    (Some(value.clone()), act)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    #[test]
    fn transition_time_changes_only_with_status() {
        let mut conditions = Vec::new();
        mark_true(
            &mut conditions,
            "Ready",
            "Succeeded",
            "one",
            Some(1),
            at(10),
        );
        mark_true(&mut conditions, "Ready", "Other", "two", Some(2), at(20));
        let ready = get(&conditions, "Ready").expect("ready set");
        assert_eq!(ready.last_transition_time, at(10));
        assert_eq!(
            (
                ready.reason.as_str(),
                ready.message.as_str(),
                ready.observed_generation
            ),
            ("Other", "two", Some(2))
        );
        mark_false(&mut conditions, "Ready", "Failed", "three", Some(3), at(30));
        assert_eq!(
            get(&conditions, "Ready").map(|c| c.last_transition_time.clone()),
            Some(at(30))
        );
        assert!(is_false(&conditions, "Ready"));
    }

    #[test]
    fn ready_sorts_first_then_by_type() {
        let mut conditions = Vec::new();
        mark_true(
            &mut conditions,
            "Reconciling",
            "Progressing",
            "",
            None,
            at(1),
        );
        mark_true(
            &mut conditions,
            "ArtifactInStorage",
            "Succeeded",
            "",
            None,
            at(1),
        );
        mark_unknown(&mut conditions, "Ready", "Progressing", "", None, at(1));
        let types: Vec<_> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "ArtifactInStorage", "Reconciling"]);
    }

    #[test]
    fn long_messages_are_trimmed_on_char_boundaries() {
        let message = "é".repeat(MAX_CONDITION_MESSAGE_LENGTH);
        let trimmed = trim_message(&message);
        assert!(trimmed.len() <= MAX_CONDITION_MESSAGE_LENGTH);
        assert!(trimmed.ends_with("..."));
        assert_eq!(trim_message("short"), "short");
    }

    #[test]
    fn reconcile_failure_and_success_cycle() {
        let mut conditions = Vec::new();
        mark_reconciling(&mut conditions, "building artifact", Some(2), &at(1));
        assert!(is_true(&conditions, "Reconciling") && is_unknown(&conditions, "Ready"));
        mark_failed(
            &mut conditions,
            "GitOperationFailed",
            "boom",
            Some(2),
            &at(2),
        );
        assert_eq!(
            get(&conditions, "Reconciling").map(|c| c.reason.as_str()),
            Some("ProgressingWithRetry")
        );
        assert_eq!(
            finish(&mut conditions, Outcome::Retry, Some(1), Some(2), &at(2)),
            Some(1)
        );
        mark_ready(
            &mut conditions,
            "Succeeded",
            "stored artifact",
            Some(2),
            &at(3),
        );
        assert_eq!(
            finish(&mut conditions, Outcome::Success, Some(1), Some(2), &at(3)),
            Some(2)
        );
        assert!(get(&conditions, "Reconciling").is_none() && is_ready(&conditions));
    }

    #[test]
    fn stalled_advances_observed_generation() {
        let mut conditions = Vec::new();
        mark_reconciling(&mut conditions, "x", Some(5), &at(1));
        mark_stalled(
            &mut conditions,
            "InvalidCELExpression",
            "bad expr",
            Some(5),
            &at(2),
        );
        assert_eq!(
            finish(&mut conditions, Outcome::Stalled, Some(4), Some(5), &at(2)),
            Some(5)
        );
        assert!(is_true(&conditions, "Stalled") && is_false(&conditions, "Ready"));
        assert!(get(&conditions, "Reconciling").is_none());
    }

    #[test]
    fn summarize_prefers_first_negative_then_positive() {
        let mut conditions = Vec::new();
        mark_true(
            &mut conditions,
            "ArtifactInStorage",
            "Succeeded",
            "stored artifact for revision 'x'",
            Some(1),
            at(1),
        );
        summarize(
            &mut conditions,
            &["StorageOperationFailed", "FetchFailed"],
            &["ArtifactInStorage"],
            Some(1),
            &at(1),
        );
        assert_eq!(
            get(&conditions, "Ready").map(|c| (c.status.as_str(), c.reason.as_str())),
            Some(("True", "Succeeded"))
        );
        mark_true(
            &mut conditions,
            "FetchFailed",
            "AuthenticationFailed",
            "denied",
            Some(1),
            at(2),
        );
        mark_true(
            &mut conditions,
            "Reconciling",
            "ProgressingWithRetry",
            "retrying",
            Some(1),
            at(2),
        );
        summarize(
            &mut conditions,
            &["StorageOperationFailed", "FetchFailed"],
            &["ArtifactInStorage"],
            Some(1),
            &at(2),
        );
        let ready = get(&conditions, "Ready").expect("ready");
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            ("False", "AuthenticationFailed", "denied")
        );
        delete(&mut conditions, "FetchFailed");
        summarize(
            &mut conditions,
            &["FetchFailed"],
            &["ArtifactInStorage"],
            Some(1),
            &at(3),
        );
        assert_eq!(
            get(&conditions, "Ready").map(|c| c.status.as_str()),
            Some("Unknown")
        );
    }

    #[test]
    fn reconcile_request_handling() {
        let mut annotations = BTreeMap::new();
        assert!(!has_new_reconcile_request(Some(&annotations), None));
        assert_eq!(
            handle_reconcile_request(Some(&annotations), Some("old")),
            Some("old".into())
        );
        annotations.insert(
            annotation::RECONCILE_REQUESTED_AT.to_string(),
            "t1".to_string(),
        );
        assert!(has_new_reconcile_request(Some(&annotations), Some("t0")));
        assert!(!has_new_reconcile_request(Some(&annotations), Some("t1")));
        assert_eq!(
            handle_reconcile_request(Some(&annotations), Some("t0")),
            Some("t1".into())
        );
    }

    #[test]
    fn force_request_needs_equal_requested_at() {
        let mut annotations = BTreeMap::new();
        annotations.insert(annotation::FORCE_REQUESTED_AT.to_string(), "t2".to_string());
        annotations.insert(
            annotation::RECONCILE_REQUESTED_AT.to_string(),
            "t1".to_string(),
        );
        let key = annotation::FORCE_REQUESTED_AT;
        assert_eq!(
            handle_paired_request(Some(&annotations), key, None, None),
            (Some("t2".into()), false)
        );
        annotations.insert(
            annotation::RECONCILE_REQUESTED_AT.to_string(),
            "t2".to_string(),
        );
        assert_eq!(
            handle_paired_request(Some(&annotations), key, None, None),
            (Some("t2".into()), true)
        );
        assert!(!handle_paired_request(Some(&annotations), key, Some("t2"), None).1);
        assert!(!handle_paired_request(Some(&annotations), key, None, Some("t2")).1);
        assert_eq!(
            handle_paired_request(None, key, None, Some("t0")),
            (Some("t0".into()), false)
        );
    }
}
