//! Go duration strings (`metav1.Duration`, e.g. `1m30s`, `1.5h`, `500ms`) as used by every
//! Flux `interval`, `timeout` and `retryInterval` field.

use std::time::Duration;

use crate::Error;

/// Parses a Go duration string. Negative durations are rejected (Flux never accepts them).
pub fn parse(input: &str) -> Result<Duration, Error> {
    let invalid = |message: &str| Error::InvalidDuration {
        value: input.to_string(),
        message: message.to_string(),
    };
    let text = input.strip_prefix('+').unwrap_or(input);
    if text.starts_with('-') {
        return Err(invalid("negative durations are not allowed"));
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid("empty duration"));
    }
    let mut total_nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid("expected a number"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(invalid("missing unit")),
            _ => return Err(invalid(&format!("unknown unit {unit:?}"))),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid("number too large"))?
        };
        let mut nanos = whole
            .checked_mul(unit_nanos)
            .ok_or_else(|| invalid("duration too large"))?;
        // Fractions are exact to the nanosecond (digits past 18 cannot matter).
        let mut scale = unit_nanos;
        for digit in fraction.chars().take(18) {
            scale /= 10;
            nanos += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| invalid("duration too large"))?;
    }
    let max = u128::from(u64::MAX) * 1_000_000_000;
    if total_nanos > max {
        return Err(invalid("duration too large"));
    }
    Ok(Duration::new(
        (total_nanos / 1_000_000_000) as u64,
        (total_nanos % 1_000_000_000) as u32,
    ))
}

/// Formats a duration the way Go's `time.Duration.String()` does (`1h0m0s`, `1.5s`, `300ms`).
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (value, unit) = if nanos < 1_000 {
            return format!("{nanos}ns");
        } else if nanos < 1_000_000 {
            (nanos as f64 / 1e3, "µs")
        } else {
            (nanos as f64 / 1e6, "ms")
        };
        return format!("{}{unit}", trim_float(value));
    }
    let total_seconds = duration.as_secs();
    let hours = total_seconds / 3600;
    let minutes = (total_seconds % 3600) / 60;
    let seconds = (total_seconds % 60) as f64 + f64::from(duration.subsec_nanos()) / 1e9;
    let seconds = trim_float(seconds);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("1m30s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse("1.5h").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(parse("500ms").ok(), Some(Duration::from_millis(500)));
        assert_eq!(parse("0").ok(), Some(Duration::ZERO));
        assert_eq!(parse("10m").ok(), Some(Duration::from_secs(600)));
        assert_eq!(
            parse("1h2m3.5s").ok(),
            Some(Duration::from_millis(3_723_500))
        );
        for bad in ["", "5", "m", "1x", "-1s", "1..5s", "."] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_millis(300)), "300ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
