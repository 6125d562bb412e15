//! The ordered document model shared by every store: mappings keep their order and their
//! comments, sequences may hold comments as items (as sops' own tree does).

/// One value of a document.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A timestamp, kept in its RFC 3339 text form (Go `time.Time.MarshalText`).
    Time(String),
    /// A comment inside a sequence (comments inside mappings are [`MapItem::Comment`]).
    Comment(String),
    Map(Vec<MapItem>),
    Seq(Vec<Value>),
}

/// One item of a mapping: a key with its value, or a comment line placed before the
/// following entry.
#[derive(Clone, Debug, PartialEq)]
pub enum MapItem {
    Entry(String, Value),
    Comment(String),
}

impl Value {
    /// Looks up a mapping entry by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(items) => items.iter().find_map(|item| match item {
                MapItem::Entry(k, v) if k == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The string content of a `Str` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Removes every top-level entry named `key` and returns the first one removed.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let Value::Map(items) = self else {
            return None;
        };
        let mut found = None;
        items.retain_mut(|item| match item {
            MapItem::Entry(k, v) if k == key => {
                if found.is_none() {
                    found = Some(std::mem::replace(v, Value::Null));
                }
                false
            }
            _ => true,
        });
        found
    }

    /// Appends an entry to a mapping (no-op on other kinds).
    pub fn push_entry(&mut self, key: impl Into<String>, value: Value) {
        if let Value::Map(items) = self {
            items.push(MapItem::Entry(key.into(), value));
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, no exponent.
pub fn format_float_plain(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

/// Splits a finite float into its shortest decimal digits and decimal exponent
/// (value = 0.d1d2d3… × 10^point), as Go's `strconv` does internally.
fn shortest_digits(v: f64) -> (bool, String, i32) {
    let formatted = format!("{:e}", v.abs());
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    (v.is_sign_negative() && v != 0.0, digits, exponent + 1)
}

fn format_exponent(neg: bool, digits: &str, point: i32, min_exp_digits: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let exp = point - 1;
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let magnitude = exp.unsigned_abs().to_string();
    for _ in magnitude.len()..min_exp_digits {
        out.push('0');
    }
    out.push_str(&magnitude);
    out
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` with go-yaml's spelling of the specials.
pub fn format_float_yaml(v: f64) -> String {
    if v.is_nan() {
        return ".nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (neg, digits, point) = shortest_digits(v);
    // %g with the shortest precision switches to an exponent outside [1e-4, 1e6).
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        return format_exponent(neg, &digits, point, 2);
    }
    format_float_plain(v)
}

/// Go's `encoding/json` float spelling.
pub fn format_float_json(v: f64) -> String {
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (neg, digits, point) = shortest_digits(v);
        return format_exponent(neg, &digits, point, 1);
    }
    format_float_plain(v)
}
