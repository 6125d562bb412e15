//! JSON encoding byte-compatible with Go's `encoding/json` `Marshal`.
//!
//! Go escapes `<`, `>` and `&` (and U+2028/U+2029) inside strings, and sorts map keys; the
//! payload types here use `BTreeMap` for maps and this encoder for the escaping, so bodies (and
//! the HMAC signatures computed over them) match what notification-controller sends.

use serde::Serialize;

/// Serialises `value` as compact JSON with Go's HTML-safe escaping.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serialising plain data structs (strings, maps, numbers) cannot fail.
    let plain = serde_json::to_string(value).unwrap_or_default();
    escape(&plain).into_bytes()
}

/// Applies Go's extra escapes to already-encoded JSON. The escaped characters can only occur
/// inside string literals of valid JSON, so a plain replacement is exact.
pub fn escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({"t": "<font color=\"#ff0000\">a & b</font>"});
        assert_eq!(
            String::from_utf8(super::to_vec(&v)).unwrap(),
            r##"{"t":"\u003cfont color=\"#ff0000\"\u003ea \u0026 b\u003c/font\u003e"}"##
        );
    }
}
