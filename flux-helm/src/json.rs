//! JSON in and out with Go's `encoding/json` rules (sorted keys, HTML escaping, float64 numbers).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::value::Value;

/// `json.Marshal`.
pub fn to_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out, true);
    out
}

/// `json.Marshal` without HTML escaping (Sprig's `toRawJson`).
pub fn to_raw_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out, false);
    out
}

fn write_json(v: &Value, out: &mut String, html: bool) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::Str(s) => write_str(s, out, html),
        Value::Bytes(b) => write_str(&String::from_utf8_lossy(b), out, html),
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out, html);
            }
            out.push(']');
        }
        Value::ApiVersions(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(x, out, html);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out, html);
                out.push(':');
                write_json(x, out, html);
            }
            out.push('}');
        }
        Value::Files(_) => out.push_str("{}"),
        Value::KubeVersion(k) => {
            out.push_str("{\"Major\":");
            write_str(&k.major, out, html);
            out.push_str(",\"Minor\":");
            write_str(&k.minor, out, html);
            out.push_str(",\"Version\":");
            write_str(&k.version, out, html);
            out.push('}');
        }
    }
}

/// Go's float64 JSON encoding.
pub fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
            .replace("e-0", "e-")
            .replace("e+0", "e+");
    }
    if f.fract() == 0.0 {
        return format!("{f:.0}");
    }
    format!("{f}")
}

fn write_str(s: &str, out: &mut String, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.Unmarshal` into `interface{}`: numbers become float64.
pub fn parse(text: &str) -> Result<Value, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(from_serde(v))
}

pub fn from_serde(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::string(s),
        serde_json::Value::Array(a) => Value::list(a.into_iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => Value::from_map(
            o.into_iter()
                .map(|(k, v)| (k, from_serde(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// Converts to serde_json (for schema validation).
pub fn to_serde(v: &Value) -> serde_json::Value {
    serde_json::from_str(&to_raw_json(v)).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_rules() {
        let v = parse(r#"{"b":1,"a":"<x&y>","c":1.5,"d":1e21}"#).expect("parse");
        assert_eq!(
            to_json(&v),
            r#"{"a":"\u003cx\u0026y\u003e","b":1,"c":1.5,"d":1e+21}"#
        );
    }
}
