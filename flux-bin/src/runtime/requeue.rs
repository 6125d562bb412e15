//! Requeue delays: `interval` with Flux's uniform ± jitter, and controller-runtime's
//! exponential per-object failure backoff between `--min-retry-delay` and `--max-retry-delay`.

use std::time::Duration;

/// `interval` moved uniformly within ± `percentage` %: `unit` in `[0, 1)` picks the point
/// (0 → −p %, 0.5 → exact, →1 → +p %). Pure, so callers choose the randomness.
pub fn jitter(interval: Duration, percentage: u8, unit: f64) -> Duration {
    let fraction = f64::from(percentage.min(99)) / 100.0;
    let factor = 1.0 + fraction * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    interval.mul_f64(factor.max(0.0))
}

/// [`jitter`] with a random point.
pub fn jitter_random(interval: Duration, percentage: u8) -> Duration {
    jitter(interval, percentage, random_unit())
}

/// A random number in `[0, 1)` from the standard library's randomly keyed hasher (good
/// enough to spread requeues; not for cryptography).
pub fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Exponential failure backoff: `min · 2^failures`, capped at `max` (`failures` counts the
/// failures before this one, so the first retry waits `min`).
pub fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let factor = 2f64.powi(failures.min(63) as i32);
    let delay = min.as_secs_f64() * factor;
    if delay >= max.as_secs_f64() {
        max
    } else {
        Duration::from_secs_f64(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let interval = Duration::from_secs(600);
        assert!((jitter(interval, 5, 0.0).as_secs_f64() - 570.0).abs() < 1e-6);
        assert_eq!(jitter(interval, 5, 0.5), interval);
        assert_eq!(jitter(interval, 0, 0.9), interval);
        for _ in 0..100 {
            let d = jitter_random(interval, 5);
            assert!(
                d >= Duration::from_secs(570) && d <= Duration::from_secs(630),
                "{d:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let (min, max) = (Duration::from_millis(750), Duration::from_secs(900));
        assert_eq!(backoff(0, min, max), min);
        assert_eq!(backoff(1, min, max), Duration::from_millis(1500));
        assert_eq!(backoff(3, min, max), Duration::from_secs(6));
        assert_eq!(backoff(20, min, max), max);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }
}
