//! Duplicate-event rate limiting, with the semantics of the in-memory `sethvargo/go-limiter`
//! store notification-controller uses: one token per key per interval, in fixed windows that
//! start when a key is first seen; a duplicate inside the current window is refused.
//!
//! Pure: the caller passes `now`. Expired keys are swept so memory stays bounded by the number
//! of distinct events per interval.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Default `--rate-limit-interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Instant,
    last_tick: u128,
    available: bool,
}

/// Admits the first event per key per window.
#[derive(Debug)]
pub struct Deduper {
    interval: Duration,
    buckets: HashMap<String, Bucket>,
    last_sweep: Option<Instant>,
}

impl Deduper {
    /// A limiter with the given window (`Duration::ZERO` disables limiting).
    pub fn new(interval: Duration) -> Self {
        Deduper {
            interval,
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Number of keys currently remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no keys are remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Takes the key's token: `true` if the event may pass, `false` for a duplicate.
    pub fn admit(&mut self, key: &str, now: Instant) -> bool {
        if self.interval.is_zero() {
            return true;
        }
        self.sweep(now);
        let interval = self.interval.as_nanos();
        let bucket = self.buckets.entry(key.to_string()).or_insert(Bucket {
            start: now,
            last_tick: 0,
            available: true,
        });
        let tick = now.saturating_duration_since(bucket.start).as_nanos() / interval;
        if tick > bucket.last_tick {
            bucket.available = true;
            bucket.last_tick = tick;
        }
        std::mem::replace(&mut bucket.available, false)
    }

    /// Drops keys whose current window has ended (they would be refilled anyway).
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            return;
        }
        self.last_sweep = Some(now);
        let interval = self.interval;
        self.buckets.retain(|_, b| {
            let window_end = b.start + interval * (b.last_tick as u32 + 1);
            now < window_end
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_window() {
        let mut d = Deduper::new(Duration::from_secs(300));
        let t0 = Instant::now();
        assert!(d.admit("a", t0));
        assert!(!d.admit("a", t0 + Duration::from_secs(1)));
        assert!(!d.admit("a", t0 + Duration::from_secs(299)));
        assert!(d.admit("b", t0 + Duration::from_secs(2)));
        assert!(d.admit("a", t0 + Duration::from_secs(300)));
        assert!(!d.admit("a", t0 + Duration::from_secs(301)));
    }

    #[test]
    fn windows_are_fixed_from_first_sight() {
        let mut d = Deduper::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(d.admit("k", t0));
        // Second window starts at t0+10 regardless of the refused attempt at t0+9.
        assert!(!d.admit("k", t0 + Duration::from_secs(9)));
        assert!(d.admit("k", t0 + Duration::from_secs(10)));
    }

    #[test]
    fn sweeps_expired_keys() {
        let mut d = Deduper::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..100 {
            assert!(d.admit(&format!("k{i}"), t0));
        }
        assert_eq!(d.len(), 100);
        assert!(d.admit("late", t0 + Duration::from_secs(25)));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn zero_interval_disables() {
        let mut d = Deduper::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(d.admit("a", t0) && d.admit("a", t0));
    }
}
