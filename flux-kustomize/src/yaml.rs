//! YAML in and out.
//!
//! kustomize prints each resource by encoding it as JSON and converting that JSON to YAML
//! with yaml.v2: keys come out sorted in yaml.v2's natural order, scalars lose their input
//! style, multi-line strings become literal blocks, long lines are never folded and
//! sequences are not indented under their key. [`to_yaml`] reproduces that printer.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

/// Parses every non-empty document of a multi-document YAML stream.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let mut value = Value::deserialize(doc).map_err(|e| e.to_string())?;
        apply_merge_keys(&mut value);
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// Resolves YAML merge keys (`<<: *anchor`): keys of the merged maps fill in what the
/// map does not set itself.
fn apply_merge_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(merged) = map.remove("<<") {
                let sources = match merged {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for source in sources {
                    if let Value::Object(src) = source {
                        for (k, val) in src {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            for child in map.values_mut() {
                apply_merge_keys(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(apply_merge_keys),
        _ => {}
    }
}

/// Prints one value as yaml.v2 does, with a trailing newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            write_inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| key_order(a, b));
    for key in keys {
        let value = &map[key.as_str()];
        push_indent(out, indent);
        write_string(out, key, indent, true);
        out.push(':');
        write_value_after_key(out, value, indent);
    }
}

fn write_value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        other => {
            out.push(' ');
            write_inline(out, other, indent + 2);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push('-');
        write_seq_item(out, item, indent + 2);
    }
}

/// Writes what follows a `- ` (the dash is already written).
fn write_seq_item(out: &mut String, item: &Value, indent: usize) {
    match item {
        Value::Object(map) if !map.is_empty() => {
            out.push(' ');
            let mut first = String::new();
            write_map(&mut first, map, indent);
            // The first line shares the dash's line.
            out.push_str(&first[indent..]);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push(' ');
            let mut nested = String::new();
            write_seq(&mut nested, items, indent);
            out.push_str(&nested[indent..]);
        }
        other => {
            out.push(' ');
            write_inline(out, other, indent);
            out.push('\n');
        }
    }
}

fn write_inline(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s, indent, false),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        // Go prints integral floats below 1e21 without a fraction, and yaml.v2 then reads
        // them back as integers.
        if f.fract() == 0.0 && f.abs() < 1e21 {
            let _ = write!(out, "{f:.0}");
        } else {
            let _ = write!(out, "{f}");
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

/// yaml.v2's key order: letters before other runes, digit runs compared as numbers.
pub fn key_order(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0_i64, 0_i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while let Some(d) = ar.get(ai).and_then(|c| c.to_digit(10)) {
            an = an.wrapping_mul(10).wrapping_add(i64::from(d));
            ai += 1;
        }
        let mut bi = i;
        while let Some(d) = br.get(bi).and_then(|c| c.to_digit(10)) {
            bn = bn.wrapping_mul(10).wrapping_add(i64::from(d));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// What libyaml's scalar analysis allows for a string.
struct Analysis {
    multiline: bool,
    block_plain: bool,
    single_quoted: bool,
    block: bool,
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single_quoted: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut block_indicators, mut flow_indicators) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_ws = true;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let mut line_breaks = false;
    let mut special = false;
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_ws = i + 1 >= n || matches!(chars[i + 1], ' ' | '\t' | '\r' | '\n');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                '?' | ':' => {
                    flow_indicators = true;
                    if followed_by_ws {
                        block_indicators = true;
                    }
                }
                '-' if followed_by_ws => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_indicators = true,
                ':' => {
                    flow_indicators = true;
                    if followed_by_ws {
                        block_indicators = true;
                    }
                }
                '#' if preceded_by_ws => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        let is_break = matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = matches!(c, ' ' | '\t' | '\r' | '\n') || is_break;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain: true,
        single_quoted: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single_quoted = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single_quoted = false;
        a.block = false;
    }
    if line_breaks {
        a.block_plain = false;
    }
    if block_indicators {
        a.block_plain = false;
    }
    let _ = flow_indicators;
    a
}

/// Whether yaml.v2 would read this plain scalar as something other than a string.
fn resolves_to_non_string(s: &str) -> bool {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return true,
        "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N" | "no" | "No" | "NO" | "true" | "True"
        | "TRUE" | "false" | "False" | "FALSE" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => {
            return true
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" | "<<" => return true,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return false;
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if parse_go_int(&plain) {
        return true;
    }
    if is_yaml_float(&plain) {
        return true;
    }
    // Base 60 floats (1:20) are quoted by yaml.v2 too.
    if is_base60(s) {
        return true;
    }
    is_timestamp(s)
}

fn parse_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(bin) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
    }
    if let Some(oct) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    if body.len() > 1 && body.starts_with('0') {
        return body.chars().all(|c| ('0'..='7').contains(&c));
    }
    body.chars().all(|c| c.is_ascii_digit())
}

fn is_yaml_float(s: &str) -> bool {
    // yaml.v2: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let fs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == fs {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return false;
        }
    }
    i == b.len()
}

fn is_base60(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if let Some(f) = frac {
        if !f.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return false;
        }
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if head.is_empty()
        || !head.as_bytes()[0].is_ascii_digit()
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut count = 0;
    for part in parts {
        count += 1;
        let ok = match part.len() {
            1 => part.as_bytes()[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&part.as_bytes()[0]) && part.as_bytes()[1].is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    count > 0
}

fn is_timestamp(s: &str) -> bool {
    // yaml.v2 resolves plain timestamps in a few layouts starting with YYYY-M-D.
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let date_end = s.find(['T', 't', ' ']).unwrap_or(s.len());
    let date: Vec<&str> = s[..date_end].split('-').collect();
    if date.len() != 3
        || date[1].is_empty()
        || date[1].len() > 2
        || date[2].is_empty()
        || date[2].len() > 2
        || !date[1..]
            .iter()
            .all(|p| p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    // yaml.v2 only accepts "2006-1-2" and the RFC3339-like layouts; be strict on the
    // date-only form and accept the rest when time parts are present.
    date_end == s.len() || s[date_end + 1..].contains(':')
}

/// Widest line yaml.v2 aims for: it breaks a flow scalar at the first space past it.
const BEST_WIDTH: usize = 80;

fn column(out: &str) -> usize {
    let line = out.rfind('\n').map_or(out, |i| &out[i + 1..]);
    line.chars().count()
}

fn write_string(out: &mut String, s: &str, indent: usize, is_key: bool) {
    let a = analyze(s);
    let plain_ok = !resolves_to_non_string(s);
    let breaks = !is_key;
    if a.multiline && !is_key && a.block {
        write_literal(out, s, indent);
    } else if a.multiline {
        write_double(out, s, indent, breaks);
    } else if plain_ok && !s.is_empty() && a.block_plain {
        write_plain(out, s, indent, breaks);
    } else if !plain_ok || s.is_empty() || !a.single_quoted {
        // yaml.v2 asks for double quotes when the plain form would change type.
        write_double(out, s, indent, breaks);
    } else {
        write_single(out, s, indent, breaks);
    }
}

fn break_line(out: &mut String, indent: usize) -> usize {
    out.push('\n');
    push_indent(out, indent);
    indent
}

fn write_plain(out: &mut String, s: &str, indent: usize, allow_breaks: bool) {
    if !allow_breaks || s.len() + column(out) <= BEST_WIDTH || !s.contains(' ') {
        out.push_str(s);
        return;
    }
    let mut col = column(out);
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if !spaces && col > BEST_WIDTH && chars.get(i + 1) != Some(&' ') {
                col = break_line(out, indent);
            } else {
                out.push(c);
                col += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            col += 1;
            spaces = false;
        }
    }
}

fn write_single(out: &mut String, s: &str, indent: usize, allow_breaks: bool) {
    out.push('\'');
    let mut col = column(out);
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if allow_breaks
                && !spaces
                && col > BEST_WIDTH
                && i != 0
                && i + 1 != chars.len()
                && chars.get(i + 1) != Some(&' ')
            {
                col = break_line(out, indent);
            } else {
                out.push(c);
                col += 1;
            }
            spaces = true;
        } else {
            if c == '\'' {
                out.push('\'');
                col += 1;
            }
            out.push(c);
            col += 1;
            spaces = false;
        }
    }
    out.push('\'');
}

fn write_double(out: &mut String, s: &str, indent: usize, allow_breaks: bool) {
    out.push('"');
    let mut col = column(out);
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let escaped = escape(c);
        if let Some(e) = escaped {
            out.push_str(&e);
            col += e.chars().count();
            spaces = false;
        } else if c == ' ' {
            if allow_breaks && !spaces && col > BEST_WIDTH && i != 0 && i + 1 != chars.len() {
                col = break_line(out, indent);
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                    col += 1;
                }
            } else {
                out.push(c);
                col += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            col += 1;
            spaces = false;
        }
        i += 1;
    }
    out.push('"');
}

fn escape(c: char) -> Option<String> {
    let simple = match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\0' => "\\0",
        '\u{7}' => "\\a",
        '\u{8}' => "\\b",
        '\t' => "\\t",
        '\n' => "\\n",
        '\u{b}' => "\\v",
        '\u{c}' => "\\f",
        '\r' => "\\r",
        '\u{1b}' => "\\e",
        '\u{85}' => "\\N",
        '\u{2028}' => "\\L",
        '\u{2029}' => "\\P",
        c if !is_printable(c) || c == '\u{feff}' => {
            let v = c as u32;
            return Some(if v <= 0xff {
                format!("\\x{v:02X}")
            } else if v <= 0xffff {
                format!("\\u{v:04X}")
            } else {
                format!("\\U{v:08X}")
            });
        }
        _ => return None,
    };
    Some(simple.to_string())
}

fn write_literal(out: &mut String, s: &str, indent: usize) {
    out.push('|');
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    let trailing_breaks = s.len() - s.trim_end_matches('\n').len();
    if trailing_breaks == 0 {
        out.push('-');
    } else if trailing_breaks > 1 || s.len() == 1 {
        out.push('+');
    }
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_sorted_and_unindented_sequences() {
        let v = json!({"b": [1, {"y": "a", "x": true}], "a": {"c": null}, "e": {}, "f": []});
        assert_eq!(
            to_yaml(&v),
            "a:\n  c: null\nb:\n- 1\n- x: true\n  \"y\": a\ne: {}\nf: []\n"
        );
    }

    #[test]
    fn quotes_like_yaml_v2() {
        let v = json!({"a": "true", "b": "123", "c": "", "d": "a: b", "e": "*x", "f": "it's: x", "g": "1:20", "h": "0x1F", "i": "tab\there"});
        assert_eq!(
            to_yaml(&v),
            "a: \"true\"\nb: \"123\"\nc: \"\"\nd: 'a: b'\ne: '*x'\nf: 'it''s: x'\ng: \"1:20\"\nh: \"0x1F\"\ni: \"tab\\there\"\n"
        );
    }

    #[test]
    fn literal_blocks_and_chomping() {
        let v = json!({"a": "x\ny", "b": "x\n", "c": "x\n\n", "d": " lead\n", "e": "trail \nx"});
        assert_eq!(
            to_yaml(&v),
            "a: |-\n  x\n  y\nb: |\n  x\nc: |+\n  x\n\nd: |2\n   lead\ne: \"trail \\nx\"\n"
        );
    }

    #[test]
    fn nested_sequences_and_natural_key_order() {
        let v = json!({"k10": 1, "k9": 2, "l": [[1, 2], "x"]});
        assert_eq!(to_yaml(&v), "k9: 2\nk10: 1\nl:\n- - 1\n  - 2\n- x\n");
    }

    #[test]
    fn parses_multiple_documents_skipping_empty_ones() {
        let docs = parse_documents("a: 1\n---\n# only a comment\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
    }
}
