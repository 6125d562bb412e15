//! The few timestamp operations sops needs: go-yaml timestamps, RFC 3339 for
//! `lastmodified`, and "now" in UTC.

use std::fmt::Write as _;

struct Parts {
    date: (i64, u32, u32),
    time: (u32, u32, u32),
    nanos: Option<String>,
    /// Offset in minutes, `None` for UTC written as `Z` or absent.
    offset: Option<i32>,
}

fn parse_parts(text: &str, strict: bool) -> Option<Parts> {
    let bytes = text.as_bytes();
    let num = |s: &str, min: usize, max: usize| -> Option<u32> {
        if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date_part, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut date_fields = date_part.split('-');
    let year = date_fields.next()?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let dmax = 2;
    let dmin = if strict { 2 } else { 1 };
    let month = num(date_fields.next()?, dmin, dmax)?;
    let day = num(date_fields.next()?, dmin, dmax)?;
    if date_fields.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let date = (year.parse().ok()?, month, day);
    let Some(rest) = rest else {
        if strict {
            return None;
        }
        return Some(Parts {
            date,
            time: (0, 0, 0),
            nanos: None,
            offset: None,
        });
    };
    let _ = bytes;
    let rest = rest.trim_start_matches(' ');
    // Split off the zone.
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let clock = clock.trim_end();
    let (hms, frac) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let mut clock_fields = hms.split(':');
    let hour = num(clock_fields.next()?, dmin, 2)?;
    let minute = num(clock_fields.next()?, 2, 2)?;
    let second = num(clock_fields.next()?, 2, 2)?;
    if clock_fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            Some(f.to_string())
        }
        Some(_) => return None,
        None => None,
    };
    let offset = match zone {
        None => {
            if strict {
                return None;
            }
            None
        }
        Some("Z" | "z") => None,
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (h, m) = z[1..].split_once(':')?;
            let h = num(h, 1, 2)? as i32;
            let m = num(m, 2, 2)? as i32;
            Some(sign * (h * 60 + m))
        }
    };
    Some(Parts {
        date,
        time: (hour, minute, second),
        nanos,
        offset,
    })
}

fn format_parts(parts: &Parts, with_nanos: bool) -> String {
    let (y, mo, d) = parts.date;
    let (h, mi, s) = parts.time;
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if with_nanos {
        if let Some(frac) = &parts.nanos {
            let trimmed = frac.trim_end_matches('0');
            if !trimmed.is_empty() {
                out.push('.');
                out.push_str(trimmed);
            }
        }
    }
    match parts.offset {
        None | Some(0) => out.push('Z'),
        Some(minutes) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let minutes = minutes.abs();
            let _ = write!(out, "{sign}{:02}:{:02}", minutes / 60, minutes % 60);
        }
    }
    out
}

/// A go-yaml v3 timestamp, returned in Go's `MarshalText` (RFC 3339 with nanoseconds) form.
pub fn parse_yaml_timestamp(text: &str) -> Option<String> {
    if text.len() < 8
        || !text.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        || text.as_bytes()[4] != b'-'
    {
        return None;
    }
    parse_parts(text, false).map(|p| format_parts(&p, true))
}

/// Parses RFC 3339 and re-formats it with seconds precision (`lastmodified` as MAC AAD).
pub fn rfc3339_seconds(text: &str) -> Option<String> {
    parse_parts(text, true).map(|p| format_parts(&p, false))
}

/// Parses RFC 3339 (nanoseconds allowed) and returns Go's `MarshalText` form.
pub fn rfc3339_nanos(text: &str) -> Option<String> {
    parse_parts(text, true).map(|p| format_parts(&p, true))
}

/// The current time in UTC, RFC 3339 with seconds precision.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_timestamps_normalise() {
        assert_eq!(
            parse_yaml_timestamp("2024-02-29").as_deref(),
            Some("2024-02-29T00:00:00Z")
        );
        assert_eq!(
            parse_yaml_timestamp("2024-02-29T13:45:00+01:00").as_deref(),
            Some("2024-02-29T13:45:00+01:00")
        );
        assert_eq!(
            parse_yaml_timestamp("2024-02-29T13:45:00.123456789Z").as_deref(),
            Some("2024-02-29T13:45:00.123456789Z")
        );
        assert_eq!(parse_yaml_timestamp("2024-13-01"), None);
        assert_eq!(parse_yaml_timestamp("1.10"), None);
    }

    #[test]
    fn lastmodified_is_reformatted_to_seconds() {
        assert_eq!(
            rfc3339_seconds("2026-11-23T02:07:47.5Z").as_deref(),
            Some("2026-11-23T02:07:47Z")
        );
        assert_eq!(rfc3339_seconds("2026-11-23"), None);
        assert!(now_utc().ends_with('Z'));
    }
}
