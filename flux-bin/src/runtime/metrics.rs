//! Flux's controller metrics in the Prometheus text format: `gotk_reconcile_duration_seconds`
//! (histogram), `gotk_reconcile_condition` (one series per status value) and
//! `gotk_suspend_status`, all labelled `kind`, `name`, `namespace`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Object identity used as metric labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

impl ObjectKey {
    /// Builds a key.
    pub fn new(kind: &str, name: &str, namespace: &str) -> Self {
        ObjectKey {
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }
}

/// Condition types recorded by `gotk_reconcile_condition`.
pub const RECORDED_CONDITIONS: [&str; 3] = ["Ready", "Reconciling", "Stalled"];
const STATUSES: [&str; 3] = ["True", "False", "Unknown"];

/// Bucket upper bounds of `gotk_reconcile_duration_seconds`: Prometheus
/// `ExponentialBucketsRange(0.01, 1800, 10)`.
pub fn duration_buckets() -> Vec<f64> {
    let (min, max, count) = (0.01f64, 1800f64, 10);
    let factor = (max / min).powf(1.0 / f64::from(count - 1));
    (0..count).map(|i| min * factor.powi(i)).collect()
}

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct State {
    durations: BTreeMap<ObjectKey, Histogram>,
    conditions: BTreeMap<(ObjectKey, String), String>,
    suspended: BTreeMap<ObjectKey, bool>,
}

/// The metric registry of one controller process.
#[derive(Debug)]
pub struct Metrics {
    buckets: Vec<f64>,
    state: Mutex<State>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            buckets: duration_buckets(),
            state: Mutex::new(State::default()),
        }
    }
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records how long one reconciliation took.
    pub fn observe_duration(&self, key: &ObjectKey, seconds: f64) {
        let mut state = self.state();
        let histogram = state
            .durations
            .entry(key.clone())
            .or_insert_with(|| Histogram {
                counts: vec![0; self.buckets.len()],
                ..Histogram::default()
            });
        for (bound, count) in self.buckets.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Records the Ready/Reconciling/Stalled conditions of an object; a type absent from
    /// `conditions` has its series removed.
    pub fn record_conditions(&self, key: &ObjectKey, conditions: &[Condition]) {
        let mut state = self.state();
        for type_ in RECORDED_CONDITIONS {
            let slot = (key.clone(), type_.to_string());
            match conditions.iter().find(|c| c.type_ == type_) {
                Some(c) => {
                    state.conditions.insert(slot, c.status.clone());
                }
                None => {
                    state.conditions.remove(&slot);
                }
            }
        }
    }

    /// Records whether an object is suspended.
    pub fn record_suspend(&self, key: &ObjectKey, suspended: bool) {
        self.state().suspended.insert(key.clone(), suspended);
    }

    /// Forgets every series of a deleted object.
    pub fn delete_object(&self, key: &ObjectKey) {
        let mut state = self.state();
        state.durations.remove(key);
        state.suspended.remove(key);
        state.conditions.retain(|(k, _), _| k != key);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        let labels = |key: &ObjectKey| {
            format!(
                "kind=\"{}\",name=\"{}\",namespace=\"{}\"",
                escape(&key.kind),
                escape(&key.name),
                escape(&key.namespace)
            )
        };
        out.push_str("# HELP gotk_reconcile_condition The current condition status of a GitOps Toolkit resource reconciliation.\n");
        out.push_str("# TYPE gotk_reconcile_condition gauge\n");
        for ((key, type_), current) in &state.conditions {
            for status in STATUSES {
                let value = u8::from(status == current.as_str());
                let _ = writeln!(
                    out,
                    "gotk_reconcile_condition{{{},status=\"{status}\",type=\"{}\"}} {value}",
                    labels(key),
                    escape(type_)
                );
            }
        }
        out.push_str("# HELP gotk_reconcile_duration_seconds The duration in seconds of a GitOps Toolkit resource reconciliation.\n");
        out.push_str("# TYPE gotk_reconcile_duration_seconds histogram\n");
        for (key, histogram) in &state.durations {
            let labels = labels(key);
            for (bound, count) in self.buckets.iter().zip(&histogram.counts) {
                let _ = writeln!(
                    out,
                    "gotk_reconcile_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "gotk_reconcile_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "gotk_reconcile_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "gotk_reconcile_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        out.push_str(
            "# HELP gotk_suspend_status The current suspend status of a GitOps Toolkit resource.\n",
        );
        out.push_str("# TYPE gotk_suspend_status gauge\n");
        for (key, suspended) in &state.suspended {
            let _ = writeln!(
                out,
                "gotk_suspend_status{{{}}} {}",
                labels(key),
                u8::from(*suspended)
            );
        }
        out
    }
}

/// Escapes a label value for the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn buckets_follow_exponential_range() {
        let buckets = duration_buckets();
        assert_eq!(buckets.len(), 10);
        assert!((buckets[0] - 0.01).abs() < 1e-12);
        assert!((buckets[9] - 1800.0).abs() < 1e-6);
        assert!(buckets.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn renders_histogram_conditions_and_suspend() {
        let metrics = Metrics::default();
        let key = ObjectKey::new("Kustomization", "apps", "flux-system");
        metrics.observe_duration(&key, 0.5);
        metrics.observe_duration(&key, 2000.0);
        metrics.record_conditions(
            &key,
            &[condition("Ready", "True"), condition("Other", "True")],
        );
        metrics.record_suspend(&key, false);
        let text = metrics.render();
        let labels = "kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\"";
        assert!(
            text.contains(&format!(
                "gotk_reconcile_duration_seconds_count{{{labels}}} 2"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "gotk_reconcile_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2"
        )));
        assert!(text.contains(&format!(
            "gotk_reconcile_duration_seconds_bucket{{{labels},le=\"0.01\"}} 0"
        )));
        assert!(text.contains(&format!(
            "gotk_reconcile_condition{{{labels},status=\"True\",type=\"Ready\"}} 1"
        )));
        assert!(text.contains(&format!(
            "gotk_reconcile_condition{{{labels},status=\"False\",type=\"Ready\"}} 0"
        )));
        assert!(!text.contains("type=\"Other\""));
        assert!(text.contains(&format!("gotk_suspend_status{{{labels}}} 0")));

        metrics.delete_object(&key);
        assert!(!metrics.render().contains("name=\"apps\""));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
