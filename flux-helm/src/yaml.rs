//! YAML in and out, the way Helm does it.
//!
//! Parsing follows `sigs.k8s.io/yaml`: YAML is converted through JSON, so every number becomes a
//! float64. Emitting follows `sigs.k8s.io/yaml.Marshal` (JSON first, then go-yaml v2's emitter):
//! keys sorted with go-yaml's natural order, block style, sequences not indented under their key,
//! go-yaml's quoting rules and its folding of long lines at 80 columns.

use std::collections::BTreeMap;

use crate::value::{format_go_float, Value};

/// Parses YAML text into a value the way `sigs.k8s.io/yaml` does: go-yaml v2 resolution of
/// plain scalars (YAML 1.1 booleans such as `yes`/`on`, octal `0755`, `1_000`), every number a
/// float64, only the first document, duplicate keys allowed (the last wins), `<<` merge keys.
/// An empty document is `Nil`.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut docs = compose(text, true)?;
    Ok(if docs.is_empty() {
        Value::Nil
    } else {
        docs.swap_remove(0)
    })
}

/// Parses a stream of YAML documents.
pub fn parse_all(text: &str) -> Result<Vec<Value>, String> {
    compose(text, false)
}

enum Frame {
    Seq(Vec<Value>, usize),
    Map(BTreeMap<String, Value>, Option<String>, Vec<Value>, usize),
}

fn compose(text: &str, first_only: bool) -> Result<Vec<Value>, String> {
    use saphyr_parser::{Event, Parser, ScalarStyle};
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Value> = std::collections::HashMap::new();
    let mut current: Option<Value> = None;
    for ev in Parser::new_from_str(text) {
        let (ev, span) =
            ev.map_err(|e| format!("yaml: line {}: {}", e.marker().line(), e.info()))?;
        let _ = span;
        let (value, anchor) = match ev {
            Event::DocumentStart(_) => {
                current = None;
                continue;
            }
            Event::DocumentEnd => {
                docs.push(current.take().unwrap_or(Value::Nil));
                if first_only {
                    return Ok(docs);
                }
                continue;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
            Event::Alias(id) => (anchors.get(&id).map_or(Value::Nil, Value::deep_copy), 0),
            Event::Scalar(s, style, anchor, tag) => {
                let explicit_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let v = if style == ScalarStyle::Plain && !explicit_str {
                    resolve_plain(&s)
                } else {
                    Value::str(&s)
                };
                (v, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(Vec::new(), anchor));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(BTreeMap::new(), None, Vec::new(), anchor));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, anchor)) => (Value::list(items), anchor),
                _ => return Err("yaml: unbalanced sequence".into()),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(mut map, _, merges, anchor)) => {
                    for m in merges {
                        let sources = match m {
                            Value::List(l) => l.as_ref().clone(),
                            other => vec![other],
                        };
                        for src in sources {
                            if let Value::Map(sm) = src {
                                for (k, v) in sm.borrow().iter() {
                                    map.entry(k.clone()).or_insert_with(|| v.clone());
                                }
                            }
                        }
                    }
                    (Value::from_map(map), anchor)
                }
                _ => return Err("yaml: unbalanced mapping".into()),
            },
        };
        if anchor > 0 {
            anchors.insert(anchor, value.clone());
        }
        match stack.last_mut() {
            None => current = Some(value),
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map(map, key, merges, _)) => match key.take() {
                None => *key = Some(yaml_key(&value)),
                Some(k) if k == "<<" => merges.push(value),
                Some(k) => {
                    map.insert(k, value);
                }
            },
        }
    }
    if let Some(v) = current.take() {
        docs.push(v);
    }
    Ok(docs)
}

/// A mapping key as sigs.k8s.io/yaml turns it into a JSON object key.
fn yaml_key(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Nil => "null".into(),
        other => other.go_string(),
    }
}

/// go-yaml v2's `resolve` for a plain scalar, with numbers as float64.
pub(crate) fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Nil,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Value::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::str(s);
    }
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Value::Float(i);
    }
    if is_yaml_float(&plain) {
        if let Ok(f) = plain.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::str(s)
}

/// `strconv.ParseInt(s, 0, 64)` (falling back to unsigned), as a float64.
fn go_parse_int(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let parsed = if let Some(h) = lower.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if lower.len() > 1 && lower.starts_with('0') {
        u64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|b| b.is_ascii_digit()) {
        lower.parse::<u64>().ok()
    } else {
        None
    }?;
    // Integers have no negative zero: `-0` is 0.
    let v = i128::from(parsed);
    Some((if neg { -v } else { v }) as f64)
}

/// `toYaml`: sigs.k8s.io/yaml.Marshal without the final newline.
pub fn to_yaml(v: &Value) -> String {
    let mut e = Emitter { out: String::new() };
    let v = normalize(v);
    e.node(&v, -1, Ctx::Top);
    let s = e.out;
    s.strip_suffix('\n').unwrap_or(&s).to_string()
}

/// The value as it comes back from a JSON round trip: ints stay ints, integral floats become
/// ints, other kinds become their JSON forms.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e21 => Value::Int(*f as i64),
        Value::List(l) => Value::list(l.iter().map(normalize).collect()),
        Value::Map(m) => Value::from_map(
            m.borrow()
                .iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::ApiVersions(l) => Value::list(l.iter().map(|s| Value::str(s)).collect()),
        Value::KubeVersion(k) => {
            let mut m = BTreeMap::new();
            m.insert("Major".to_string(), Value::str(&k.major));
            m.insert("Minor".to_string(), Value::str(&k.minor));
            m.insert("Version".to_string(), Value::str(&k.version));
            Value::from_map(m)
        }
        Value::Files(_) => Value::new_map(),
        other => other.clone(),
    }
}

/// go-yaml v2's map key order: runs of digits compare numerically, letters after non-letters.
pub fn key_less(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
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
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
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
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
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

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Top,
    MapValue,
    SeqItem,
}

const BEST_WIDTH: usize = 80;

struct Emitter {
    out: String,
}

impl Emitter {
    fn column(&self) -> usize {
        match self.out.rfind('\n') {
            Some(i) => self.out[i + 1..].chars().count(),
            None => self.out.chars().count(),
        }
    }

    fn indent(&mut self, n: i32) {
        for _ in 0..n.max(0) {
            self.out.push(' ');
        }
    }

    /// Emits `v`; `indent` is the column of the enclosing block (key or dash), -1 at top.
    fn node(&mut self, v: &Value, indent: i32, ctx: Ctx) {
        match v {
            Value::Map(m) if !m.borrow().is_empty() => {
                let m = m.borrow();
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by(|a, b| key_less(a, b));
                let child = if ctx == Ctx::Top { 0 } else { indent + 2 };
                for (i, k) in keys.iter().enumerate() {
                    match ctx {
                        Ctx::SeqItem if i == 0 => {}
                        Ctx::Top if i == 0 => {}
                        _ => {
                            if ctx == Ctx::MapValue && i == 0 {
                                self.out.push('\n');
                            }
                            self.indent(child);
                        }
                    }
                    self.scalar_str(k, child, true);
                    self.out.push(':');
                    let val = &m[*k];
                    self.map_value(val, child);
                }
            }
            Value::List(l) if !l.is_empty() => {
                // Sequences under a mapping key are not indented.
                let col = match ctx {
                    Ctx::Top => 0,
                    Ctx::MapValue => indent,
                    Ctx::SeqItem => indent + 2,
                };
                for (i, item) in l.iter().enumerate() {
                    match ctx {
                        Ctx::SeqItem if i == 0 => {}
                        Ctx::Top if i == 0 => {}
                        _ => {
                            if ctx == Ctx::MapValue && i == 0 {
                                self.out.push('\n');
                            }
                            self.indent(col);
                        }
                    }
                    self.out.push_str("- ");
                    match item {
                        Value::Map(m) if !m.borrow().is_empty() => {
                            self.node(item, col, Ctx::SeqItem);
                        }
                        Value::List(l2) if !l2.is_empty() => {
                            self.node(item, col, Ctx::SeqItem);
                        }
                        _ => {
                            self.scalar(item, col);
                            self.out.push('\n');
                        }
                    }
                }
            }
            _ => {
                if ctx == Ctx::MapValue {
                    self.out.push(' ');
                }
                self.scalar(v, indent);
                self.out.push('\n');
            }
        }
    }

    fn map_value(&mut self, v: &Value, key_col: i32) {
        match v {
            Value::Map(m) if !m.borrow().is_empty() => self.node(v, key_col, Ctx::MapValue),
            Value::List(l) if !l.is_empty() => self.node(v, key_col, Ctx::MapValue),
            _ => {
                self.out.push(' ');
                self.scalar(v, key_col);
                self.out.push('\n');
            }
        }
    }

    /// A scalar whose block parent sits at column `parent` (continuations indent by 2).
    fn scalar(&mut self, v: &Value, parent: i32) {
        match v {
            Value::Nil => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) => {
                let s = format_go_float(*f);
                self.out.push_str(match s.as_str() {
                    "+Inf" => ".inf",
                    "-Inf" => "-.inf",
                    "NaN" => ".nan",
                    _ => &s,
                });
            }
            Value::Str(s) => self.scalar_str(s, parent, false),
            Value::Bytes(b) => self.scalar_str(&String::from_utf8_lossy(b), parent, false),
            Value::Map(_) => self.out.push_str("{}"),
            Value::List(_) => self.out.push_str("[]"),
            other => self.out.push_str(&other.go_string()),
        }
    }

    fn scalar_str(&mut self, s: &str, parent: i32, simple_key: bool) {
        let indent = (parent.max(-1) + 2).max(2) as usize;
        let indent = if parent < 0 { 2 } else { indent };
        let a = analyze(s);
        let plain_ok = resolves_to_str(s) && !is_base60_float(s);
        let multiline = s.contains('\n');
        if multiline {
            if !simple_key && a.block_allowed {
                self.literal(s, indent);
            } else {
                self.double(s, indent, !simple_key);
            }
        } else if !plain_ok {
            self.double(s, indent, !simple_key);
        } else if a.block_plain_allowed {
            self.plain(s, indent, !simple_key);
        } else if a.single_allowed {
            self.single(s, indent, !simple_key);
        } else {
            self.double(s, indent, !simple_key);
        }
    }

    fn write_indent(&mut self, indent: usize) {
        self.out.push('\n');
        for _ in 0..indent {
            self.out.push(' ');
        }
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut col = self.column();
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && col > BEST_WIDTH && !next_space {
                    self.write_indent(indent);
                    col = indent;
                } else {
                    self.out.push(c);
                    col += 1;
                }
                spaces = true;
            } else {
                self.out.push(c);
                col += 1;
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.out.push('\'');
        let mut col = self.column();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && col > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                    && !next_space
                {
                    self.write_indent(indent);
                    col = indent;
                } else {
                    self.out.push(c);
                    col += 1;
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.out.push('\'');
                    col += 1;
                }
                self.out.push(c);
                col += 1;
                spaces = false;
            }
        }
        self.out.push('\'');
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.out.push('"');
        let mut col = self.column();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            let printable = is_printable(c);
            if !printable || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let esc = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".to_string(),
                    '\u{8}' => "\\b".to_string(),
                    '\t' => "\\t".to_string(),
                    '\n' => "\\n".to_string(),
                    '\u{b}' => "\\v".to_string(),
                    '\u{c}' => "\\f".to_string(),
                    '\r' => "\\r".to_string(),
                    '\u{1b}' => "\\e".to_string(),
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\u{85}' => "\\N".to_string(),
                    '\u{a0}' => "\\_".to_string(),
                    '\u{2028}' => "\\L".to_string(),
                    '\u{2029}' => "\\P".to_string(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                col += esc.len();
                self.out.push_str(&esc);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && col > BEST_WIDTH && i != 0 && i != chars.len() - 1 {
                    self.write_indent(indent);
                    col = indent;
                    if chars.get(i + 1) == Some(&' ') {
                        self.out.push('\\');
                        col += 1;
                    }
                } else {
                    self.out.push(c);
                    col += 1;
                }
                spaces = true;
            } else {
                self.out.push(c);
                col += 1;
                spaces = false;
            }
        }
        self.out.push('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.out.push('|');
        let first = s.chars().next();
        if first == Some(' ') || first == Some('\n') {
            self.out.push('2');
        }
        let trailing = s.len() - s.trim_end_matches('\n').len();
        if trailing == 0 {
            self.out.push('-');
        } else if trailing >= 2 || s.trim_end_matches('\n').is_empty() {
            self.out.push('+');
        }
        self.out.push('\n');
        let body = if trailing > 0 { &s[..s.len() - 1] } else { s };
        for line in body.split('\n') {
            if !line.is_empty() {
                for _ in 0..indent {
                    self.out.push(' ');
                }
                self.out.push_str(line);
            }
            self.out.push('\n');
        }
        // The caller adds the final newline.
        self.out.pop();
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// go-yaml v2's `is_printable`: it stops at U+FFFD, so characters outside the BMP (emoji) are
/// escaped in double quotes.
fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || (0xE000..=0xFFFD).contains(&u)
}

struct Analysis {
    block_plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

/// go-yaml's `yaml_emitter_analyze_scalar`, block context.
fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Analysis {
            block_plain_allowed: false,
            single_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let mut special = false;
    let mut line_breaks = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;
    let mut preceded_by_ws = true;
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        let followed_by_ws =
            i + 1 >= n || matches!(chars[i + 1], ' ' | '\t') || is_break(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' => {
                    if followed_by_ws {
                        block_indicators = true;
                    }
                }
                _ => {}
            }
        } else {
            match c {
                ':' => {
                    if followed_by_ws {
                        block_indicators = true;
                    }
                }
                '#' => {
                    if preceded_by_ws {
                        block_indicators = true;
                    }
                }
                _ => {}
            }
        }
        if !is_printable(c) || c == '\u{feff}' {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
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
        preceded_by_ws = c == ' ' || c == '\t' || is_break(c);
    }
    let mut a = Analysis {
        block_plain_allowed: true,
        single_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks {
        a.block_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// Whether go-yaml v2 resolves the plain scalar `s` to a string (else it must be quoted).
pub fn resolves_to_str(s: &str) -> bool {
    match s {
        "" | "~" | "null" | "Null" | "NULL" | "y" | "Y" | "yes" | "Yes" | "YES" | "n" | "N"
        | "no" | "No" | "NO" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "on"
        | "On" | "ON" | "off" | "Off" | "OFF" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf"
        | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN" | "<<" => return false,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return true;
    }
    let plain = s.replace('_', "");
    if parse_go_int(&plain) {
        return false;
    }
    if is_yaml_float(&plain) {
        return false;
    }
    if is_timestamp(s) {
        return false;
    }
    true
}

fn parse_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    let lower = body.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        return !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if let Some(b) = lower.strip_prefix("0b") {
        return !b.is_empty() && b.bytes().all(|c| c == b'0' || c == b'1');
    }
    if let Some(o) = lower.strip_prefix("0o") {
        return !o.is_empty() && o.bytes().all(|c| (b'0'..=b'7').contains(&c));
    }
    if lower.len() > 1 && lower.starts_with('0') {
        return lower.bytes().all(|c| (b'0'..=b'7').contains(&c));
    }
    lower.bytes().all(|b| b.is_ascii_digit())
}

fn is_yaml_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let start = i;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let d = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == d {
            return false;
        }
    } else {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let d = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == d {
            return false;
        }
    }
    i == b.len()
}

fn is_timestamp(s: &str) -> bool {
    // YYYY-MM-DD, optionally followed by a time part.
    let b = s.as_bytes();
    if b.len() < 10 {
        return false;
    }
    let date_ok = b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    if !date_ok {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    matches!(b[10], b'T' | b't' | b' ') && b.len() > 11
}

/// go-yaml v2's `isBase60Float`.
fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let d = i;
        while i < b.len() && b[i].is_ascii_digit() && i - d < 2 {
            i += 1;
        }
        let len = i - d;
        if len == 0 {
            return false;
        }
        if len == 2 && b[d] > b'5' {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(src: &str) -> String {
        to_yaml(&parse(src).expect("parse"))
    }

    #[test]
    fn emits_like_go_yaml_v2() {
        assert_eq!(
            y("b: 1\na: [x, {c: d, a: 2}]\n"),
            "a:\n- x\n- a: 2\n  c: d\nb: 1"
        );
        assert_eq!(
            y("a: 'true'\nb: ''\nc: '8080'\nd: '*x'\ne: 'a: b'"),
            "a: \"true\"\nb: \"\"\nc: \"8080\"\nd: '*x'\ne: 'a: b'"
        );
        assert_eq!(y("a: \"x\\ny\\n\""), "a: |\n  x\n  y");
        assert_eq!(y("a: {}\nb: []\nc: null"), "a: {}\nb: []\nc: null");
    }

    #[test]
    fn natural_key_order() {
        let mut keys = vec!["a10", "a9", "b", "A", "_x"];
        keys.sort_by(|a, b| key_less(a, b));
        assert_eq!(keys, vec!["_x", "A", "a9", "a10", "b"]);
    }

    #[test]
    fn folds_long_plain_lines() {
        let long = "word ".repeat(30);
        let out = y(&format!("k: {}", long.trim()));
        assert!(out.lines().count() > 1, "{out}");
    }
}
