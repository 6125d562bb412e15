//! The JSON store: ordered objects, numbers as floats (sops 3.11), Go's encoder spelling
//! and `json.Indent` with a tab.

use std::fmt::Write as _;

use crate::tree::{format_float_json, MapItem, Value};
use crate::Error;

/// Parses a JSON document whose root must be an object.
pub fn load(text: &str, file: &str) -> Result<Value, Error> {
    let parsed: serde_json::Value = serde_json::from_str(text).map_err(|err| Error::Parse {
        file: file.to_string(),
        format: "JSON",
        message: err.to_string(),
    })?;
    if !parsed.is_object() {
        return Err(Error::Parse {
            file: file.to_string(),
            format: "JSON",
            message: "the root must be an object".to_string(),
        });
    }
    Ok(from_json(&parsed))
}

/// Converts a serde_json value into the document model (numbers become floats).
pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.to_string().parse().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) => Value::Seq(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| MapItem::Entry(k.clone(), from_json(v)))
                .collect(),
        ),
    }
}

/// Converts the document model to serde_json (comments dropped).
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null | Value::Comment(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                serde_json::Value::from(*f as i64)
            } else {
                serde_json::Number::from_f64(*f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Value::Str(s) | Value::Time(s) => serde_json::Value::String(s.clone()),
        Value::Seq(items) => serde_json::Value::Array(
            items
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .map(to_json)
                .collect(),
        ),
        Value::Map(items) => serde_json::Value::Object(
            items
                .iter()
                .filter_map(|item| match item {
                    MapItem::Entry(k, v) => Some((k.clone(), to_json(v))),
                    MapItem::Comment(_) => None,
                })
                .collect(),
        ),
    }
}

/// Writes a JSON document as sops does (tab indentation, final newline).
pub fn emit(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out.push('\n');
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push('\t');
    }
}

fn write_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Null | Value::Comment(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            if f.is_finite() {
                out.push_str(&format_float_json(*f));
            } else {
                out.push_str("null");
            }
        }
        Value::Str(s) | Value::Time(s) => write_string(out, s),
        Value::Seq(items) => {
            let items: Vec<&Value> = items
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect();
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, level + 1);
                write_value(out, item, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push(']');
        }
        Value::Map(items) => {
            let entries: Vec<(&String, &Value)> = items
                .iter()
                .filter_map(|item| match item {
                    MapItem::Entry(k, v) => Some((k, v)),
                    MapItem::Comment(_) => None,
                })
                .collect();
            if entries.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, level + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push('}');
        }
    }
}

/// Go `encoding/json` string escaping (with HTML escaping).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{C}' => out.push_str("\\f"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
