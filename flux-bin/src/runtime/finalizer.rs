//! Finalizer bookkeeping with kube-runtime's safety rule: every patch starts with a `test`
//! op on the finalizer list, so two writers cannot clobber each other.

use serde_json::{json, Value};

/// What to do about the finalizer of an object.
#[derive(Clone, Debug, PartialEq)]
pub enum FinalizerStep {
    /// Not deleting and the finalizer is missing: apply this JSON patch and requeue.
    Add(Value),
    /// Not deleting and the finalizer is present: reconcile normally.
    Reconcile,
    /// Deleting and the finalizer is present: clean up, then apply [`remove_patch`].
    Cleanup,
    /// Deleting and the finalizer is already gone: nothing to do.
    Done,
}

/// Decides the finalizer step from `metadata.finalizers` and `metadata.deletionTimestamp`.
pub fn plan(finalizers: &[String], deleting: bool, finalizer: &str) -> FinalizerStep {
    let present = finalizers.iter().any(|f| f == finalizer);
    match (deleting, present) {
        (false, true) => FinalizerStep::Reconcile,
        (false, false) => FinalizerStep::Add(add_patch(finalizers, finalizer)),
        (true, true) => FinalizerStep::Cleanup,
        (true, false) => FinalizerStep::Done,
    }
}

/// JSON patch adding `finalizer`, guarded by the current list.
pub fn add_patch(finalizers: &[String], finalizer: &str) -> Value {
    if finalizers.is_empty() {
        // `test` against a missing path fails, so guard on absence by adding the whole list.
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]}
        ])
    } else {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}
        ])
    }
}

/// JSON patch removing `finalizer` (`None` when absent), guarded by the current list.
pub fn remove_patch(finalizers: &[String], finalizer: &str) -> Option<Value> {
    let index = finalizers.iter().position(|f| f == finalizer)?;
    Some(json!([
        {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": finalizer},
        {"op": "remove", "path": format!("/metadata/finalizers/{index}")}
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "finalizers.fluxcd.io";

    #[test]
    fn plans_each_state() {
        let with = vec!["other".to_string(), F.to_string()];
        assert_eq!(plan(&with, false, F), FinalizerStep::Reconcile);
        assert_eq!(plan(&with, true, F), FinalizerStep::Cleanup);
        assert_eq!(plan(&["other".to_string()], true, F), FinalizerStep::Done);
        let FinalizerStep::Add(patch) = plan(&["other".to_string()], false, F) else {
            panic!("expected an add patch");
        };
        assert_eq!(patch[1]["path"], "/metadata/finalizers/-");
        assert_eq!(patch[0]["value"], json!(["other"]));
        let FinalizerStep::Add(patch) = plan(&[], false, F) else {
            panic!("expected an add patch");
        };
        assert_eq!(patch[1]["value"], json!([F]));
    }

    #[test]
    fn remove_targets_the_right_index() {
        let with = vec!["other".to_string(), F.to_string()];
        let patch = remove_patch(&with, F).expect("present");
        assert_eq!(
            patch[0],
            json!({"op": "test", "path": "/metadata/finalizers/1", "value": F})
        );
        assert_eq!(patch[1]["op"], "remove");
        assert!(remove_patch(&["other".to_string()], F).is_none());
    }
}
