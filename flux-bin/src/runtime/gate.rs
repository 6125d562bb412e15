//! Flux's watch predicate for kube-runtime controllers: an object is worked on when its
//! generation, its `reconcile.fluxcd.io/requestedAt` token, its deletion state or an input
//! the controller names (a source revision, say) changed, or when its scheduled requeue is
//! due. Watch events caused by the controller's own status writes change none of these, so
//! they are answered with "wait until the scheduled time" instead of a new reconcile.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What identifies "new work" for one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Trigger {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `reconcile.fluxcd.io/requestedAt`.
    pub requested_at: Option<String>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Anything else the controller reacts to (e.g. the source artifact revision).
    pub extra: String,
}

#[derive(Clone, Debug)]
struct Entry {
    trigger: Trigger,
    due: Instant,
}

/// Remembers, per object key, the trigger handled last and when the next run is due.
#[derive(Debug, Default)]
pub struct Gate {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Slack accepted when a requeue fires slightly early.
const EARLY_SLACK: Duration = Duration::from_millis(50);

impl Gate {
    /// `None`: work now. `Some(wait)`: nothing changed and the next run is `wait` away.
    pub fn check(&self, key: &str, trigger: &Trigger, now: Instant) -> Option<Duration> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = entries.get(key)?;
        if entry.trigger != *trigger {
            return None;
        }
        let remaining = entry.due.saturating_duration_since(now);
        (remaining > EARLY_SLACK).then_some(remaining)
    }

    /// Records a finished run of `key` that handled `trigger`; the next run is due after `wait`.
    pub fn done(&self, key: &str, trigger: Trigger, now: Instant, wait: Duration) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                key.to_string(),
                Entry {
                    trigger,
                    due: now + wait,
                },
            );
    }

    /// Forgets `key` (after deletion, or so the next event always reconciles).
    pub fn forget(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(generation: i64, requested: Option<&str>) -> Trigger {
        Trigger {
            generation: Some(generation),
            requested_at: requested.map(str::to_string),
            deleting: false,
            extra: String::new(),
        }
    }

    #[test]
    fn skips_unchanged_until_due() {
        let gate = Gate::default();
        let now = Instant::now();
        assert_eq!(gate.check("a", &trigger(1, None), now), None, "first sight");
        gate.done("a", trigger(1, None), now, Duration::from_secs(60));
        let wait = gate
            .check("a", &trigger(1, None), now + Duration::from_secs(10))
            .expect("not due");
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(
            gate.check("a", &trigger(1, None), now + Duration::from_secs(60)),
            None,
            "due"
        );
        assert_eq!(
            gate.check("a", &trigger(2, None), now),
            None,
            "new generation"
        );
        assert_eq!(
            gate.check("a", &trigger(1, Some("t1")), now),
            None,
            "new request"
        );
        let mut other = trigger(1, None);
        other.extra = "main@sha1:abc".into();
        assert_eq!(gate.check("a", &other, now), None, "new input");
        gate.forget("a");
        assert_eq!(gate.check("a", &trigger(1, None), now), None);
    }
}
