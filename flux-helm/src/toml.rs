//! `toToml`: BurntSushi/toml's encoder for the plain maps charts pass to it.

use std::fmt::Write as _;

use crate::value::{format_go_float, Value};

pub fn to_toml(v: &Value) -> String {
    let mut out = String::new();
    if let Value::Map(_) = v {
        write_table(v, &mut Vec::new(), &mut out);
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            let s = format_go_float(*f);
            if s.contains('.') || s.contains('e') {
                s
            } else {
                format!("{s}.0")
            }
        }
        Value::Str(s) => crate::funcs::go_quote(s),
        Value::List(l) => {
            let items: Option<Vec<String>> = l.iter().map(scalar).collect();
            format!("[{}]", items?.join(", "))
        }
        _ => return None,
    })
}

fn write_table(v: &Value, path: &mut Vec<String>, out: &mut String) {
    let Value::Map(m) = v else { return };
    let m = m.borrow();
    for (k, x) in m.iter() {
        if let Some(s) = scalar(x) {
            let indent = "  ".repeat(path.len().saturating_sub(1));
            let _ = writeln!(out, "{indent}{k} = {s}");
        }
    }
    for (k, x) in m.iter() {
        if let Value::Map(_) = x {
            path.push(k.clone());
            let indent = "  ".repeat(path.len() - 1);
            let _ = writeln!(out, "\n{indent}[{}]", path.join("."));
            write_table(x, path, out);
            path.pop();
        }
    }
}
