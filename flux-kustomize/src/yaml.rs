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
    let folded = go_yaml_folding(text);
    let text = folded.as_deref().unwrap_or(text);
    let numbers = go_yaml_numbers(text);
    let text = numbers.as_deref().unwrap_or(text);
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

/// The block scalar header ending a line (`key: >-`, `- |`), if any: (folded, has an
/// explicit indentation digit).
fn block_header(line: &str) -> Option<(bool, bool)> {
    let mut t = line.trim_end();
    if let Some(i) = t.find(" #") {
        t = t[..i].trim_end();
    }
    let token = t.rsplit(' ').next()?;
    let mut chars = token.chars();
    let kind = chars.next()?;
    if kind != '>' && kind != '|' {
        return None;
    }
    let rest = chars.as_str();
    if !rest
        .chars()
        .all(|c| c == '-' || c == '+' || c.is_ascii_digit())
        || rest.len() > 2
    {
        return None;
    }
    let before = t[..t.len() - token.len()].trim_end();
    if !(before.is_empty() || before.ends_with(':') || before.ends_with('-') || before == "---") {
        return None;
    }
    Some((kind == '>', rest.chars().any(|c| c.is_ascii_digit())))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// kustomize reads YAML with go-yaml, which keeps one more line break than the YAML
/// spec (and libyaml) where a folded block scalar goes from a normal line to a
/// more-indented one. An empty line at that spot gives the same value under the spec's
/// rules, so we add one before parsing. Literal blocks are skipped untouched.
fn go_yaml_folding(text: &str) -> Option<String> {
    if !text.contains('>') {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut inserts: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((folded, explicit)) = block_header(lines[i]) else {
            i += 1;
            continue;
        };
        let parent = indent_of(lines[i]);
        let mut j = i + 1;
        let mut block_indent = None;
        let mut previous_normal = false;
        while j < lines.len() {
            let line = lines[j].trim_end_matches('\r');
            if line.trim().is_empty() {
                previous_normal = false;
                j += 1;
                continue;
            }
            let ind = indent_of(line);
            if ind <= parent {
                break;
            }
            let base = *block_indent.get_or_insert(ind);
            if ind < base {
                break;
            }
            if folded && !explicit {
                if ind > base && previous_normal {
                    inserts.push(j);
                }
                previous_normal = ind == base && !line[ind..].starts_with('\t');
            }
            j += 1;
        }
        i = j.max(i + 1);
    }
    if inserts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + inserts.len());
    let mut next = inserts.iter().peekable();
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        if next.peek() == Some(&&n) {
            next.next();
            out.push('\n');
        }
        out.push_str(line);
    }
    Some(out)
}

/// kyaml resolves plain scalars as yaml.v3 does, which differs from serde's YAML 1.2
/// core schema for numbers: YAML 1.1 octals (`0644` is 420, `-012` is -10), leading
/// zeros that are not octal (`089` is the float 89), and `_` separators (`1_000`). This
/// finds such plain scalars anywhere (block or flow, after anchors and `!!int` tags) with
/// an event parser and rewrites each to its decimal value. Quoted scalars, block scalars
/// and `!!str` keep their text.
fn go_yaml_numbers(text: &str) -> Option<String> {
    if !might_hold_go_numbers(text.as_bytes()) {
        return None;
    }
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    // Event positions count characters; map them to byte offsets.
    let char_offsets: Option<Vec<usize>> =
        (!text.is_ascii()).then(|| text.char_indices().map(|(i, _)| i).collect());
    let byte_at = |index: usize| match &char_offsets {
        Some(offsets) => offsets.get(index).copied().unwrap_or(text.len()),
        None => index,
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    while let Some(event) = parser.next_event() {
        // A document serde cannot read either: leave it to serde's error.
        let Ok((event, span)) = event else {
            return None;
        };
        let saphyr_parser::Event::Scalar(value, saphyr_parser::ScalarStyle::Plain, _, tag) = event
        else {
            continue;
        };
        let core_tag = tag.map(|t| t.is_yaml_core_schema().then(|| t.suffix.clone()));
        let replacement = match core_tag.as_ref().map(|t| t.as_deref()) {
            None => go_number(&value).or_else(|| go_timestamp(&value)),
            Some(Some("int")) => go_number(&value),
            Some(Some("timestamp")) => go_timestamp(&value),
            Some(_) => None,
        };
        let Some(decimal) = replacement else {
            continue;
        };
        let (start, end) = (byte_at(span.start.index()), byte_at(span.end.index()));
        if text.get(start..end) == Some(value.as_ref()) {
            edits.push((start, end, decimal));
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, decimal) in edits {
        out.push_str(&text[at..start]);
        out.push_str(&decimal);
        at = end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// A cheap look for a digit run that starts with `0` followed by a digit or `_`, holds a
/// `_` between digits, or looks like a date (`2024-1`): only then is the event parser
/// worth running.
fn might_hold_go_numbers(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        let starts_run = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        (w[0] == b'0'
            && starts_run
            && (w[1].is_ascii_digit()
                || matches!(w[1], b'_' | b'x' | b'X' | b'o' | b'O' | b'b' | b'B')))
            || (w[0].is_ascii_digit() && w[1] == b'_')
            || (w[0] == b'-'
                && w[1].is_ascii_digit()
                && i >= 4
                && bytes[i - 4..i].iter().all(u8::is_ascii_digit))
    })
}

/// yaml.v3 reads a plain scalar in one of its timestamp layouts (`2006-1-2`,
/// `2006-1-2T15:4:5.999999999Z07:00` with `T` or `t`, `2006-1-2 15:4:5.999999999` in
/// UTC) as a time, which kustomize then writes as RFC 3339 with nanoseconds
/// (`2024-01-02T00:00:00Z`). Returns that text, double-quoted, or None.
fn go_timestamp(plain: &str) -> Option<String> {
    /// One or two digits, as Go's time parser reads `1`, `2`, `15`, `4`, `5`.
    fn number(s: &[u8], at: &mut usize) -> Option<u32> {
        let mut n = 0;
        let start = *at;
        while *at < s.len() && *at - start < 2 && s[*at].is_ascii_digit() {
            n = n * 10 + u32::from(s[*at] - b'0');
            *at += 1;
        }
        (*at > start).then_some(n)
    }
    fn expect(s: &[u8], at: &mut usize, c: u8) -> Option<()> {
        (s.get(*at) == Some(&c)).then(|| *at += 1)
    }
    let s = plain.as_bytes();
    if s.len() < 8 || !s[..4].iter().all(u8::is_ascii_digit) || s[4] != b'-' {
        return None;
    }
    let year: u32 = plain[..4].parse().ok()?;
    let mut at = 5;
    let month = number(s, &mut at)?;
    expect(s, &mut at, b'-')?;
    let day = number(s, &mut at)?;
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if at == s.len() {
        return Some(format!("\"{date}T00:00:00Z\""));
    }
    let zoned = match s[at] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return None,
    };
    at += 1;
    let hour = number(s, &mut at)?;
    expect(s, &mut at, b':')?;
    let minute = number(s, &mut at)?;
    expect(s, &mut at, b':')?;
    let second = number(s, &mut at)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut fraction = String::new();
    if s.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < s.len() && s[at].is_ascii_digit() {
            at += 1;
        }
        if at == start {
            return None;
        }
        fraction = plain[start..at.min(start + 9)]
            .trim_end_matches('0')
            .to_string();
    }
    let zone = if zoned {
        match s.get(at) {
            Some(b'Z') if at + 1 == s.len() => "Z".to_string(),
            Some(b'+' | b'-') if s.len() == at + 6 && s[at + 3] == b':' => {
                let digits = [1, 2, 4, 5].iter().all(|&i| s[at + i].is_ascii_digit());
                let hours: u32 = plain[at + 1..at + 3].parse().ok()?;
                let minutes: u32 = plain[at + 4..at + 6].parse().ok()?;
                if !digits || hours > 23 || minutes > 59 {
                    return None;
                }
                if hours == 0 && minutes == 0 {
                    "Z".to_string()
                } else {
                    plain[at..].to_string()
                }
            }
            _ => return None,
        }
    } else if at == s.len() {
        "Z".to_string()
    } else {
        return None;
    };
    let dot = if fraction.is_empty() { "" } else { "." };
    Some(format!(
        "\"{date}T{hour:02}:{minute:02}:{second:02}{dot}{fraction}{zone}\""
    ))
}

/// The decimal text of a plain scalar that yaml.v3 reads as a number while the YAML 1.2
/// core schema would not read it the same (see [`go_yaml_numbers`]), else None.
fn go_number(plain: &str) -> Option<String> {
    let (negative, unsigned) = match plain.as_bytes().first()? {
        b'-' => (true, &plain[1..]),
        b'+' => (false, &plain[1..]),
        _ => (false, plain),
    };
    let leading_zero = unsigned.len() > 1
        && unsigned.starts_with('0')
        && unsigned[1..].starts_with(|c: char| c.is_ascii_digit() || c == '_');
    let underscores = unsigned.contains('_');
    if !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits = unsigned.replace('_', "");
    if digits.is_empty() || !digits.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = lower.strip_prefix("0o") {
        (8, oct)
    } else if let Some(bin) = lower.strip_prefix("0b") {
        (2, bin)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let sign = if negative { "-" } else { "" };
    // Go's integer syntax (base prefixes in either case, a leading `0` for octal); the
    // text is rewritten only when its decimal form differs (`0X1F`, `+5`, `1_0`).
    if let Ok(n) = u64::from_str_radix(body, radix) {
        // Beyond i64 a negative number is no integer for Go; keep the text.
        if negative && n > i64::MAX.unsigned_abs() + 1 {
            return None;
        }
        let decimal = if n == 0 {
            "0".to_string()
        } else {
            format!("{sign}{n}")
        };
        return (decimal != plain).then_some(decimal);
    }
    if !leading_zero && !underscores {
        // Other floats read the same under both schemas.
        return None;
    }
    // Not an integer (`089`, `0644.5`, `1_000.5`): yaml.v3 tries a float.
    let float_like = body
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'-' || b == b'+')
        && radix != 16
        && radix != 2;
    if !float_like || radix == 8 && lower.starts_with("0o") {
        return None;
    }
    let value: f64 = format!("{sign}{digits}").parse().ok()?;
    value.is_finite().then(|| {
        if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{value:.0}")
        } else {
            format!("{value:?}")
        }
    })
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
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| key_order(a.0, b.0));
    for (key, value) in entries {
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
        if f == 0.0 {
            // Go writes -0 as `-0`, which yaml.v2 reads back as the integer 0.
            out.push('0');
        } else if f.fract() == 0.0 && f.abs() < 1e21 {
            let _ = write!(out, "{f:.0}");
        } else {
            out.push_str(&go_float(f));
        }
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it (what yaml.v2 uses):
/// shortest digits, exponent form below 1e-4 and from 1e6 on.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+.inf" } else { "-.inf" }.into();
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

/// yaml.v2's key order: letters before other runes, digit runs compared as numbers.
pub fn key_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return natural_order(a.as_bytes(), b.as_bytes(), u8::is_ascii_alphabetic, |c| {
            c.is_ascii_digit().then(|| u32::from(c - b'0'))
        });
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    natural_order(&ar, &br, |c| c.is_alphabetic(), |c| c.to_digit(10))
}

fn natural_order<T: Copy + Ord>(
    ar: &[T],
    br: &[T],
    is_letter: impl Fn(&T) -> bool,
    digit: impl Fn(T) -> Option<u32>,
) -> Ordering {
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = is_letter(&ar[i]);
        let bl = is_letter(&br[i]);
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
        if digit(ar[i]) == Some(0) || digit(br[i]) == Some(0) {
            let mut j = i;
            while j > 0 && digit(ar[j - 1]).is_some() {
                j -= 1;
                if digit(ar[j]) != Some(0) {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while let Some(d) = ar.get(ai).and_then(|c| digit(*c)) {
            an = an.wrapping_mul(10).wrapping_add(i64::from(d));
            ai += 1;
        }
        let mut bi = i;
        while let Some(d) = br.get(bi).and_then(|c| digit(*c)) {
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
    // yaml.v2 resolves plain timestamps in the same layouts as yaml.v3, valid dates only.
    go_timestamp(s).is_some()
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
    fn parsed(text: &str) -> Value {
        parse_documents(text).unwrap().remove(0)
    }

    #[test]
    fn octal_looking_scalars_read_as_go_yaml_reads_them_in_block_and_flow() {
        let v = parsed(
            "flow: [0644, 089, \"0644\", -012, +012, 00, 0o17, 0x1F]\n\
             map: {mode: 0644, n: 1_000}\n\
             multi: [\n  0600,\n  0700\n]\n\
             anchored: &m 0640\nalias: *m\ntagged: !!int 0644\nstr: !!str 0644\n\
             block: |\n  mode: 0644\nquoted: '0644'\nfloat: 0644.5\ndate: 2024-01-02\n",
        );
        assert_eq!(
            v["flow"],
            serde_json::json!([420, 89, "0644", -10, 10, 0, 15, 31])
        );
        assert_eq!(v["map"], serde_json::json!({"mode": 420, "n": 1000}));
        assert_eq!(v["multi"], serde_json::json!([384, 448]));
        assert_eq!(v["anchored"], 416);
        assert_eq!(v["alias"], 416);
        assert_eq!(v["tagged"], 420);
        assert_eq!(v["str"], "0644");
        assert_eq!(v["block"], "mode: 0644\n");
        assert_eq!(v["quoted"], "0644");
        assert_eq!(v["float"], 644.5);
        let more = parsed(
            "a: [0X1F, 0O17, -0x1F, +0x1F, 0xff_ff, -0b11, 1__0, 1_, 1e1_0, +5, -0, 8080]\n",
        );
        assert_eq!(
            more["a"],
            serde_json::json!([
                31,
                15,
                -31,
                31,
                65535,
                -3,
                10,
                1,
                10_000_000_000_u64,
                5,
                0,
                8080
            ])
        );
        assert_eq!(v["date"], "2024-01-02T00:00:00Z");
    }

    #[test]
    fn plain_timestamps_become_rfc3339_as_kustomize_prints_them() {
        let v = parsed(
            "a: 2024-1-2\nb: 2024-01-02T03:04:05.120+01:00\nc: 2024-01-02 03:04:05\n\
             d: 2024-13-02\ne: 2024-01-02 03:04:05 Z\nf: \"2024-01-02\"\ng: [2024-02-29]\n\
             h: 2023-02-29\ni: 2024-01-02T3:4:5Z\n",
        );
        assert_eq!(v["a"], "2024-01-02T00:00:00Z");
        assert_eq!(v["b"], "2024-01-02T03:04:05.12+01:00");
        assert_eq!(v["c"], "2024-01-02T03:04:05Z");
        assert_eq!(v["d"], "2024-13-02");
        assert_eq!(v["e"], "2024-01-02 03:04:05 Z");
        assert_eq!(v["f"], "2024-01-02");
        assert_eq!(v["g"], serde_json::json!(["2024-02-29T00:00:00Z"]));
        assert_eq!(v["h"], "2023-02-29");
        assert_eq!(v["i"], "2024-01-02T03:04:05Z");
    }

    #[test]
    fn number_rewrite_counts_characters_after_non_ascii_text() {
        let v = parsed("note: caf\u{e9} \u{1f389}\nmode: 0644\n");
        assert_eq!(v["mode"], 420);
        assert_eq!(v["note"], "caf\u{e9} \u{1f389}");
    }

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
    fn folded_scalars_keep_go_yaml_breaks_before_more_indented_lines() {
        let docs = parse_documents("a: >\n  x(\n    y\n  )\nb: |\n  k: >\n  x\n    y\n").unwrap();
        assert_eq!(docs[0]["a"], "x(\n\n  y\n)\n");
        // Literal blocks are untouched, even when they contain a '>' header.
        assert_eq!(docs[0]["b"], "k: >\nx\n  y\n");
    }

    #[test]
    fn parses_multiple_documents_skipping_empty_ones() {
        let docs = parse_documents("a: 1\n---\n# only a comment\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
    }
}
