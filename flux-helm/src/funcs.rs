//! The Sprig and Helm template functions, with Go's argument and result types.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use sha2::Digest as _;

use crate::template::exec::{Exec, ExecError};
use crate::value::{format_go_float, Value};

/// Why a function failed.
#[derive(Debug)]
pub enum FuncError {
    Msg(String),
    /// `fail`/`required` messages (Helm wraps them in warning delimiters).
    Warn(String),
    Exec(Box<ExecError>),
    Wrapped(String, Box<ExecError>),
    /// Argument `index` has the wrong type.
    Arg(usize, String),
}

type R = Result<Value, FuncError>;

const NAMES: &[&str] = &[
    "include",
    "tpl",
    "required",
    "fail",
    "lookup",
    "toYaml",
    "mustToYaml",
    "toYamlPretty",
    "fromYaml",
    "fromYamlArray",
    "toJson",
    "mustToJson",
    "toPrettyJson",
    "toRawJson",
    "fromJson",
    "fromJsonArray",
    "toToml",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "quote",
    "squote",
    "printf",
    "print",
    "println",
    "toString",
    "toStrings",
    "indent",
    "nindent",
    "trim",
    "trimSuffix",
    "trimPrefix",
    "trimAll",
    "trunc",
    "upper",
    "lower",
    "title",
    "untitle",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "split",
    "splitList",
    "splitn",
    "join",
    "list",
    "tuple",
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "keys",
    "values",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    "deepCopy",
    "mustDeepCopy",
    "dig",
    "index",
    "len",
    "first",
    "mustFirst",
    "last",
    "mustLast",
    "rest",
    "initial",
    "append",
    "push",
    "mustAppend",
    "mustPush",
    "prepend",
    "concat",
    "uniq",
    "mustUniq",
    "without",
    "has",
    "mustHas",
    "compact",
    "mustCompact",
    "sortAlpha",
    "reverse",
    "until",
    "untilStep",
    "seq",
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "addf",
    "subf",
    "mulf",
    "divf",
    "maxf",
    "minf",
    "floor",
    "ceil",
    "round",
    "int",
    "int64",
    "float64",
    "atoi",
    "toDecimal",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "sha256sum",
    "sha1sum",
    "adler32sum",
    "randAlphaNum",
    "randAlpha",
    "randNumeric",
    "randAscii",
    "uuidv4",
    "now",
    "date",
    "dateInZone",
    "htmlDate",
    "semver",
    "semverCompare",
    "regexMatch",
    "mustRegexMatch",
    "regexFind",
    "regexFindAll",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "kindIs",
    "kindOf",
    "typeOf",
    "typeIs",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "not",
    "bool",
    "genCA",
    "genSignedCert",
    "genSelfSignedCert",
    "genPrivateKey",
    "getHostByName",
    "camelcase",
    "snakecase",
    "kebabcase",
    "nospace",
    "repeat",
    "substr",
    "wrap",
    "abbrev",
    "cat",
    "base",
    "dir",
    "ext",
    "clean",
    "isAbs",
    "slice",
    "mustSlice",
    "urlquery",
    "html",
    "js",
    "call",
    "and",
    "or",
    "fromJson",
    "b64dec",
    "squote",
    "sortAlpha",
    "splitList",
    "sha512sum",
    "htpasswd",
    "derivePassword",
    "toDate",
    "ago",
    "duration",
    "durationRound",
    "unixEpoch",
    "dateModify",
    "osBase",
    "osDir",
    "osExt",
    "osClean",
    "trimall",
    "mustToPrettyJson",
    "mustToRawJson",
    "mustFromJson",
    "encryptAES",
    "decryptAES",
    "uuid",
    "shuffle",
    "swapcase",
    "initials",
    "plural",
    "chunk",
    "urlParse",
    "urlJoin",
    "mustDateModify",
    "mustToDate",
    "fromToml",
    "mustToToml",
    "typeIsLike",
    "deepEqual",
    "mustInitial",
    "mustRest",
    "mustReverse",
    "mustWithout",
    "mustPrepend",
    "mustChunk",
    "values",
];

pub fn exists(name: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| NAMES.iter().copied().collect())
        .contains(name)
}

// ---- argument helpers -------------------------------------------------------------------------

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return Err(FuncError::Msg(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn s_arg(args: &[Value], i: usize) -> Result<Rc<str>, FuncError> {
    match args.get(i) {
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(Value::Bytes(b)) => Ok(Rc::from(String::from_utf8_lossy(b).as_ref())),
        Some(Value::Nil) | None => Err(FuncError::Arg(i, "invalid value; expected string".into())),
        Some(other) => Err(FuncError::Arg(
            i,
            format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            ),
        )),
    }
}

fn i_arg(args: &[Value], i: usize) -> Result<i64, FuncError> {
    match args.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::Float(f)) => Ok(*f as i64),
        Some(Value::Nil) | None => Err(FuncError::Arg(i, "invalid value; expected int".into())),
        Some(other) => Err(FuncError::Arg(
            i,
            format!(
                "wrong type for value; expected int; got {}",
                other.type_name()
            ),
        )),
    }
}

fn map_arg(args: &[Value], i: usize) -> Result<crate::value::Map, FuncError> {
    match args.get(i) {
        Some(Value::Map(m)) => Ok(m.clone()),
        Some(Value::Nil) | None => Err(FuncError::Arg(
            i,
            "invalid value; expected map[string]interface {}".into(),
        )),
        Some(other) => Err(FuncError::Arg(
            i,
            format!(
                "wrong type for value; expected map[string]interface {{}}; got {}",
                other.type_name()
            ),
        )),
    }
}

/// Sprig's `strval`.
pub fn strval(v: &Value) -> String {
    v.go_string()
}

/// `cast.ToInt64`.
pub fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().map(|f| f as i64))
                .unwrap_or(0)
        }
        _ => 0,
    }
}

pub fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.trim().parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`.
pub fn is_empty(v: &Value) -> bool {
    !v.truthy()
}

fn list_of(v: &Value) -> Result<Vec<Value>, FuncError> {
    match v {
        Value::List(l) => Ok(l.as_ref().clone()),
        Value::ApiVersions(l) => Ok(l.iter().map(|s| Value::str(s)).collect()),
        Value::Nil => Ok(Vec::new()),
        other => Err(FuncError::Msg(format!(
            "Cannot find first on type {}",
            other.type_name()
        ))),
    }
}

/// An approximation of Go's `strconv.IsPrint` for non-ASCII characters: Unicode spaces other
/// than U+0020, controls, format characters and private-use code points are not printable.
fn go_is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() || (c.is_whitespace() && c != ' ') {
        return false;
    }
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF
        | 0xF_0000..=0x10_FFFF)
}

/// Go's `%q` for a string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if !go_is_print(c) => {
                if (c as u32) <= 0xFFFF {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- Go's fmt ----------------------------------------------------------------------------------

/// `fmt.Sprintf` for the verbs charts use.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut argi = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        if i >= chars.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        // Flags, width, precision.
        let mut flags = String::new();
        while i < chars.len() && "+-# 0".contains(chars[i]) {
            flags.push(chars[i]);
            i += 1;
        }
        let mut width = String::new();
        while i < chars.len() && chars[i].is_ascii_digit() {
            width.push(chars[i]);
            i += 1;
        }
        let mut prec: Option<usize> = None;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut p = String::new();
            while i < chars.len() && chars[i].is_ascii_digit() {
                p.push(chars[i]);
                i += 1;
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        if i >= chars.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = chars[i];
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let s = format_verb(verb, arg, prec, &flags);
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if flags.contains('-') {
                out.push_str(&s);
                out.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'x' | 'X') {
                let (sign, digits) = if let Some(d) = s.strip_prefix('-') {
                    ("-", d)
                } else {
                    ("", s.as_str())
                };
                out.push_str(sign);
                out.push_str(&"0".repeat(pad));
                out.push_str(digits);
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(&s);
            }
        } else {
            out.push_str(&s);
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.go_string()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn format_verb(verb: char, arg: &Value, prec: Option<usize>, flags: &str) -> String {
    match verb {
        'v' => arg.go_string(),
        's' => match arg {
            Value::Str(s) => match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            },
            Value::Nil => "%!s(<nil>)".into(),
            Value::Int(i) => format!("%!s(int={i})"),
            Value::Float(f) => format!("%!s(float64={})", format_go_float(*f)),
            Value::Bool(b) => format!("%!s(bool={b})"),
            other => other.go_string(),
        },
        'q' => match arg {
            Value::Str(s) => go_quote(s),
            Value::Int(i) => format!("'{}'", char::from_u32(*i as u32).unwrap_or('?')),
            other => format!("%!q({}={})", other.type_name(), other.go_string()),
        },
        'd' => match arg {
            Value::Int(i) => {
                if flags.contains('+') && *i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            Value::Float(f) => format!("%!d(float64={})", format_go_float(*f)),
            Value::Str(s) => format!("%!d(string={s})"),
            Value::Nil => "%!d(<nil>)".into(),
            other => format!("%!d({}={})", other.type_name(), other.go_string()),
        },
        'f' | 'F' => match arg {
            Value::Float(f) => format!("{:.*}", prec.unwrap_or(6), f),
            Value::Int(i) => format!("%!f(int={i})"),
            other => format!("%!f({}={})", other.type_name(), other.go_string()),
        },
        'g' => match arg {
            Value::Float(f) => format_go_float(*f),
            other => format!("%!g({}={})", other.type_name(), other.go_string()),
        },
        'x' => match arg {
            Value::Int(i) => format!("{i:x}"),
            Value::Str(s) => hex::encode(s.as_bytes()),
            other => other.go_string(),
        },
        'X' => match arg {
            Value::Int(i) => format!("{i:X}"),
            Value::Str(s) => hex::encode_upper(s.as_bytes()),
            other => other.go_string(),
        },
        't' => match arg {
            Value::Bool(b) => b.to_string(),
            other => format!("%!t({}={})", other.type_name(), other.go_string()),
        },
        'T' => arg.type_name().to_string(),
        other => format!("%!{other}({}={})", arg.type_name(), arg.go_string()),
    }
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.go_string());
    }
    out
}

// ---- comparisons -------------------------------------------------------------------------------

#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
    Nil,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        Value::Nil => Kind::Nil,
        _ => Kind::Other,
    }
}

fn go_eq(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (basic_kind(a), basic_kind(b));
    if ka == Kind::Nil || kb == Kind::Nil {
        return Ok(ka == kb);
    }
    if ka != kb {
        return Err(FuncError::Msg("incompatible types for comparison".into()));
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => {
            return Err(FuncError::Msg(format!(
                "non-comparable type {}: {}",
                a.go_string(),
                a.type_name()
            )))
        }
    })
}

fn go_lt(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (ka, kb) = (basic_kind(a), basic_kind(b));
    if ka != kb {
        return Err(FuncError::Msg("incompatible types for comparison".into()));
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => x < y,
        _ => return Err(FuncError::Msg("invalid type for comparison".into())),
    })
}

// ---- semver ------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Semver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

fn parse_semver(s: &str) -> Option<Semver> {
    let s = s.trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    let (core, _build) = s.split_once('+').unwrap_or((s, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, p.to_string()),
        None => (core, String::new()),
    };
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    Some(Semver {
        major,
        minor,
        patch,
        pre,
    })
}

fn cmp_pre(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let ap: Vec<&str> = a.split('.').collect();
    let bp: Vec<&str> = b.split('.').collect();
    for (x, y) in ap.iter().zip(bp.iter()) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ap.len().cmp(&bp.len())
}

fn cmp_semver(a: &Semver, b: &Semver) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| cmp_pre(&a.pre, &b.pre))
}

/// Masterminds/semver v3 constraint check.
pub fn semver_matches(constraint: &str, version: &str) -> Result<bool, String> {
    let v = parse_semver(version).ok_or_else(|| "Invalid Semantic Version".to_string())?;
    for alt in constraint.split("||") {
        let mut all = true;
        let parts: Vec<String> = split_constraint(alt);
        if parts.is_empty() {
            continue;
        }
        for part in parts {
            if !check_one(&part, &v)? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

fn split_constraint(s: &str) -> Vec<String> {
    // Comma or whitespace separated; operators may be separated from versions by spaces.
    let mut out = Vec::new();
    let mut cur = String::new();
    let tokens: Vec<&str> = s.split([',', ' ']).filter(|t| !t.is_empty()).collect();
    for t in tokens {
        if t.chars().all(|c| "<>=!~^".contains(c)) {
            cur.push_str(t);
            continue;
        }
        cur.push_str(t);
        out.push(std::mem::take(&mut cur));
    }
    out
}

fn check_one(c: &str, v: &Semver) -> Result<bool, String> {
    use std::cmp::Ordering;
    let ops = ["<=", ">=", "!=", "=>", "=<", "<", ">", "=", "~", "^"];
    let (op, rest) = ops
        .iter()
        .find_map(|o| c.strip_prefix(o).map(|r| (*o, r.trim())))
        .unwrap_or(("", c.trim()));
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    // Wildcards: 1.x, 1.2.*, *
    let segs: Vec<&str> = rest
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .collect();
    let wild_at = segs.iter().position(|s| matches!(*s, "x" | "X" | "*"));
    let given = segs.len();
    let base = rest
        .split('.')
        .map(|s| if matches!(s, "x" | "X" | "*") { "0" } else { s })
        .collect::<Vec<_>>()
        .join(".");
    let cv = parse_semver(&base).ok_or_else(|| format!("improper constraint: {c}"))?;
    // Versions with a prerelease only match constraints that carry one.
    if !v.pre.is_empty() && cv.pre.is_empty() {
        return Ok(false);
    }
    let ord = cmp_semver(v, &cv);
    let precision = wild_at.unwrap_or(given);
    let upper_bump = |p: usize| -> Semver {
        match p {
            0 => Semver {
                major: u64::MAX,
                minor: 0,
                patch: 0,
                pre: String::new(),
            },
            1 => Semver {
                major: cv.major + 1,
                minor: 0,
                patch: 0,
                pre: String::new(),
            },
            2 => Semver {
                major: cv.major,
                minor: cv.minor + 1,
                patch: 0,
                pre: String::new(),
            },
            _ => Semver {
                major: cv.major,
                minor: cv.minor,
                patch: cv.patch + 1,
                pre: String::new(),
            },
        }
    };
    Ok(match op {
        "" | "=" => {
            if precision < 3 {
                ord != Ordering::Less && cmp_semver(v, &upper_bump(precision)) == Ordering::Less
            } else {
                ord == Ordering::Equal
            }
        }
        "!=" => ord != Ordering::Equal,
        ">" => {
            if precision < 3 {
                cmp_semver(v, &upper_bump(precision)) != Ordering::Less
            } else {
                ord == Ordering::Greater
            }
        }
        ">=" | "=>" => ord != Ordering::Less,
        "<" => ord == Ordering::Less,
        "<=" | "=<" => {
            if precision < 3 {
                cmp_semver(v, &upper_bump(precision)) == Ordering::Less
            } else {
                ord != Ordering::Greater
            }
        }
        "~" => {
            let up = if precision >= 2 {
                upper_bump(2)
            } else {
                upper_bump(1)
            };
            ord != Ordering::Less && cmp_semver(v, &up) == Ordering::Less
        }
        "^" => {
            let up = if cv.major > 0 || precision <= 1 {
                upper_bump(1)
            } else if cv.minor > 0 || precision == 2 {
                upper_bump(2)
            } else {
                upper_bump(3)
            };
            ord != Ordering::Less && cmp_semver(v, &up) == Ordering::Less
        }
        _ => false,
    })
}

// ---- random ------------------------------------------------------------------------------------

fn next_rand(exec: &Exec<'_>) -> u64 {
    // xorshift64*: deterministic per render seed; Helm's output for these is random anyway.
    let mut x = exec.ctx.rng.get().max(1);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    exec.ctx.rng.set(x);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn rand_string(exec: &Exec<'_>, n: i64, alphabet: &[u8]) -> String {
    (0..n.max(0))
        .map(|_| alphabet[(next_rand(exec) % alphabet.len() as u64) as usize] as char)
        .collect()
}

// ---- methods of built-in objects ---------------------------------------------------------------

pub fn call_method(receiver: &Value, method: &str, args: &[Value]) -> R {
    match (receiver, method) {
        (Value::Files(f), "Get" | "GetBytes") => Ok(f.get_value(&s_arg(args, 0)?)),
        (Value::Files(f), "Glob") => Ok(Value::Files(Rc::new(f.glob(&s_arg(args, 0)?)))),
        (Value::Files(f), "AsConfig") => Ok(Value::string(f.as_config())),
        (Value::Files(f), "AsSecrets") => Ok(Value::string(f.as_secrets())),
        (Value::Files(f), "Lines") => Ok(f.lines(&s_arg(args, 0)?)),
        (Value::ApiVersions(v), "Has") => {
            let want = s_arg(args, 0)?;
            Ok(Value::Bool(v.iter().any(|x| **x == *want)))
        }
        _ => Err(FuncError::Msg(format!("can't call method {method}"))),
    }
}

// ---- the function table ------------------------------------------------------------------------

/// mergo's map merge as Sprig's `merge` (no override) and `mergeOverwrite` use it.
fn merge_into(dst: &crate::value::Map, src: &Value, overwrite: bool) {
    let Value::Map(src) = src else { return };
    if Rc::ptr_eq(dst, src) {
        return;
    }
    let src = src.borrow().clone();
    for (k, sv) in src {
        let existing = dst.borrow().get(&k).cloned();
        match (&sv, existing) {
            (Value::Nil, _) => {
                if overwrite {
                    dst.borrow_mut().insert(k, sv);
                }
            }
            (Value::Map(_), Some(Value::Map(dm))) => merge_into(&dm, &sv, overwrite),
            (Value::Map(_), None) => {
                dst.borrow_mut().insert(k, sv);
            }
            // mergo fails on a map over a non-map, and Sprig swallows the error.
            (Value::Map(_), Some(_)) => {}
            (_, None) => {
                dst.borrow_mut().insert(k, sv);
            }
            (_, Some(dv)) => {
                if overwrite || is_empty_for_mergo(&dv) {
                    dst.borrow_mut().insert(k, sv);
                }
            }
        }
    }
}

fn is_empty_for_mergo(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::Str(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.borrow().is_empty(),
        _ => false,
    }
}

fn dict_from(args: &[Value]) -> Value {
    let mut m = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let k = strval(&args[i]);
        let v = args.get(i + 1).cloned().unwrap_or(Value::Nil);
        m.insert(k, v);
        i += 2;
    }
    Value::from_map(m)
}

fn index_value(args: &[Value]) -> R {
    let mut cur = args.first().cloned().unwrap_or(Value::Nil);
    for idx in args.iter().skip(1) {
        cur = match (&cur, idx) {
            (Value::Map(m), Value::Str(k)) => m.borrow().get(&**k).cloned().unwrap_or(Value::Nil),
            (Value::Map(_), other) => {
                return Err(FuncError::Msg(format!(
                    "value has type {}; should be string",
                    other.type_name()
                )))
            }
            (Value::List(l), i) => {
                let n = match i {
                    Value::Int(n) => *n,
                    Value::Float(f) => *f as i64,
                    other => {
                        return Err(FuncError::Msg(format!(
                            "cannot index slice/array with type {}",
                            other.type_name()
                        )))
                    }
                };
                if n < 0 || n as usize >= l.len() {
                    return Err(FuncError::Msg(format!("index out of range: {n}")));
                }
                l[n as usize].clone()
            }
            (Value::Nil, _) => return Err(FuncError::Msg("index of untyped nil".into())),
            (other, _) => {
                return Err(FuncError::Msg(format!(
                    "can't index item of type {}",
                    other.type_name()
                )))
            }
        };
    }
    Ok(cur)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) | Value::Bytes(_) => "string",
        Value::List(_) | Value::ApiVersions(_) => "slice",
        Value::Map(_) | Value::Files(_) => "map",
        Value::KubeVersion(_) => "ptr",
    }
}

/// Go's deprecated `strings.Title`: upper-cases letters that follow a separator.
fn go_title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::new();
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = is_separator(c);
    }
    out
}

fn indent_str(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

fn regex_of(pat: &str) -> Result<regex::Regex, FuncError> {
    regex::Regex::new(&go_regex(pat))
        .map_err(|e| FuncError::Msg(format!("error parsing regexp: {e}")))
}

/// Adapts RE2 syntax Rust's regex rejects: a `-` right after a class escape inside `[...]` is
/// literal in Go.
fn go_regex(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = String::with_capacity(pat.len());
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(c);
            out.push(chars[i + 1]);
            let is_class = matches!(chars[i + 1], 'w' | 'W' | 'd' | 'D' | 's' | 'S');
            i += 2;
            if in_class && is_class && chars.get(i) == Some(&'-') && chars.get(i + 1) != Some(&']')
            {
                out.push_str("\\-");
                i += 1;
            }
            continue;
        }
        if c == '[' && !in_class {
            in_class = true;
        } else if c == ']' && in_class {
            in_class = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Go's `$1`/`${name}` expansion differs slightly from Rust's; translate.
fn go_replacement(repl: &str) -> String {
    // Go treats `$1x` as the group named `1x`; Rust does the same. Keep as is.
    repl.to_string()
}

fn fake_pem(exec: &Exec<'_>, kind: &str, lines: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = format!("-----BEGIN {kind}-----\n");
    for _ in 0..lines {
        out.push_str(&rand_string(exec, 64, alphabet));
        out.push('\n');
    }
    out.push_str(&format!("-----END {kind}-----\n"));
    out
}

fn cert_object(exec: &Exec<'_>) -> Value {
    let mut m = BTreeMap::new();
    m.insert(
        "Cert".into(),
        Value::string(fake_pem(exec, "CERTIFICATE", 17)),
    );
    m.insert(
        "Key".into(),
        Value::string(fake_pem(exec, "RSA PRIVATE KEY", 25)),
    );
    Value::from_map(m)
}

/// Go's byte slicing of a string (`s[start:end]`), without panicking on UTF-8 boundaries.
fn byte_slice(s: &str, start: usize, end: usize) -> String {
    let bytes = s.as_bytes();
    let end = end.min(bytes.len());
    let start = start.min(end);
    String::from_utf8_lossy(&bytes[start..end]).into_owned()
}

/// The fewest arguments each function indexes unconditionally (Go rejects fewer).
fn min_args(name: &str) -> usize {
    match name {
        "sub" | "div" | "mod" | "subf" | "divf" | "floor" | "ceil" | "round" | "toDecimal"
        | "deepEqual" | "eq" | "not" | "len" => 1,
        "ne" | "lt" | "le" | "gt" | "ge" => 2,
        _ => 0,
    }
}

/// Calls the function `name`.
#[allow(clippy::too_many_lines)]
pub fn call(exec: &mut Exec<'_>, name: &str, args: Vec<Value>) -> R {
    let a = &args;
    let need = min_args(name);
    if a.len() < need {
        return Err(FuncError::Msg(format!(
            "wrong number of args for {name}: want {need} got {}",
            a.len()
        )));
    }
    let v = match name {
        "include" => {
            arity(name, a, 2)?;
            let n = s_arg(a, 0)?;
            Value::string(exec.include(&n, &a[1])?)
        }
        "tpl" => {
            arity(name, a, 2)?;
            let text = s_arg(a, 0)?;
            Value::string(crate::render::tpl(exec, &text, &a[1])?)
        }
        "required" => {
            arity(name, a, 2)?;
            let msg = s_arg(a, 0)?;
            match &a[1] {
                Value::Nil => return Err(FuncError::Warn(msg.to_string())),
                Value::Str(s) if s.is_empty() => return Err(FuncError::Warn(msg.to_string())),
                v => v.clone(),
            }
        }
        "fail" => {
            arity(name, a, 1)?;
            return Err(FuncError::Warn(s_arg(a, 0)?.to_string()));
        }
        "lookup" => match exec.ctx.lookup.clone() {
            None => Value::new_map(),
            Some(cluster) => cluster
                .lookup(&s_arg(a, 0)?, &s_arg(a, 1)?, &s_arg(a, 2)?, &s_arg(a, 3)?)
                .map_err(FuncError::Msg)?,
        },
        "toYaml" | "mustToYaml" | "toYamlPretty" => Value::string(crate::yaml::to_yaml(a.first().unwrap_or(&Value::Nil))),
        "fromYaml" => {
            let s = s_arg(a, 0)?;
            match crate::yaml::parse(&s) {
                Ok(Value::Map(m)) => Value::Map(m),
                Ok(Value::Nil) => Value::new_map(),
                Ok(_) => {
                    let mut m = BTreeMap::new();
                    m.insert(
                        "Error".into(),
                        Value::str("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}"),
                    );
                    Value::from_map(m)
                }
                Err(e) => {
                    let mut m = BTreeMap::new();
                    m.insert("Error".into(), Value::string(format!("error converting YAML to JSON: {e}")));
                    Value::from_map(m)
                }
            }
        }
        "fromYamlArray" => {
            let s = s_arg(a, 0)?;
            match crate::yaml::parse(&s) {
                Ok(Value::List(l)) => Value::List(l),
                Ok(Value::Nil) => Value::list(Vec::new()),
                Ok(_) => Value::list(vec![Value::str("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal object into Go value of type []interface {}")]),
                Err(e) => Value::list(vec![Value::string(format!("error converting YAML to JSON: {e}"))]),
            }
        }
        "toJson" | "mustToJson" => Value::string(crate::json::to_json(a.first().unwrap_or(&Value::Nil))),
        "toRawJson" | "mustToRawJson" => Value::string(crate::json::to_raw_json(a.first().unwrap_or(&Value::Nil))),
        "toPrettyJson" | "mustToPrettyJson" => {
            let v = crate::json::to_serde(a.first().unwrap_or(&Value::Nil));
            let s = serde_json::to_string_pretty(&v).unwrap_or_default();
            Value::string(s.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"))
        }
        "fromJson" | "mustFromJson" => {
            let s = s_arg(a, 0)?;
            match crate::json::parse(&s) {
                Ok(Value::Map(m)) => Value::Map(m),
                Ok(_) | Err(_) => {
                    let mut m = BTreeMap::new();
                    m.insert("Error".into(), Value::str("invalid JSON"));
                    Value::from_map(m)
                }
            }
        }
        "fromJsonArray" => {
            let s = s_arg(a, 0)?;
            match crate::json::parse(&s) {
                Ok(Value::List(l)) => Value::List(l),
                _ => Value::list(vec![Value::str("invalid JSON")]),
            }
        }
        "toToml" | "mustToToml" => Value::string(crate::toml::to_toml(a.first().unwrap_or(&Value::Nil))),
        "default" => {
            let given = a.get(1).cloned().unwrap_or(Value::Nil);
            if is_empty(&given) {
                a.first().cloned().unwrap_or(Value::Nil)
            } else {
                given
            }
        }
        "empty" => Value::Bool(is_empty(a.first().unwrap_or(&Value::Nil))),
        "coalesce" => a.iter().find(|v| !is_empty(v)).cloned().unwrap_or(Value::Nil),
        "ternary" => {
            arity(name, a, 3)?;
            if a[2].truthy() {
                a[0].clone()
            } else {
                a[1].clone()
            }
        }
        "quote" => Value::string(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| go_quote(&strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => Value::string(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| format!("'{}'", strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "printf" => {
            let f = s_arg(a, 0)?;
            Value::string(sprintf(&f, &a[1..]))
        }
        "print" => Value::string(sprint(a)),
        "println" => Value::string(format!(
            "{}\n",
            a.iter().map(Value::go_string).collect::<Vec<_>>().join(" ")
        )),
        "toString" => Value::string(strval(a.first().unwrap_or(&Value::Nil))),
        "toStrings" => Value::list(list_of(a.first().unwrap_or(&Value::Nil))?.iter().map(|v| Value::string(strval(v))).collect()),
        "indent" => {
            arity(name, a, 2)?;
            Value::string(indent_str(i_arg(a, 0)?, &s_arg(a, 1)?))
        }
        "nindent" => {
            arity(name, a, 2)?;
            Value::string(format!("\n{}", indent_str(i_arg(a, 0)?, &s_arg(a, 1)?)))
        }
        "trim" => Value::string(s_arg(a, 0)?.trim().to_string()),
        "trimSuffix" => {
            arity(name, a, 2)?;
            let (suf, s) = (s_arg(a, 0)?, s_arg(a, 1)?);
            Value::string(s.strip_suffix(&*suf).unwrap_or(&s).to_string())
        }
        "trimPrefix" => {
            arity(name, a, 2)?;
            let (pre, s) = (s_arg(a, 0)?, s_arg(a, 1)?);
            Value::string(s.strip_prefix(&*pre).unwrap_or(&s).to_string())
        }
        "trimAll" | "trimall" => {
            let (cut, s) = (s_arg(a, 0)?, s_arg(a, 1)?);
            Value::string(s.trim_matches(|c| cut.contains(c)).to_string())
        }
        "trunc" => {
            arity(name, a, 2)?;
            let n = i_arg(a, 0)?;
            let s = s_arg(a, 1)?;
            let len = s.len() as i64;
            if n < 0 && len + n > 0 {
                Value::string(byte_slice(&s, (len + n) as usize, s.len()))
            } else if n >= 0 && len > n {
                Value::string(byte_slice(&s, 0, n as usize))
            } else {
                Value::Str(s)
            }
        }
        "upper" => Value::string(s_arg(a, 0)?.to_uppercase()),
        "lower" => Value::string(s_arg(a, 0)?.to_lowercase()),
        "title" => Value::string(go_title(&s_arg(a, 0)?)),
        "untitle" => {
            let s = s_arg(a, 0)?;
            let mut c = s.chars();
            Value::string(c.next().map(|f| f.to_lowercase().collect::<String>() + c.as_str()).unwrap_or_default())
        }
        "replace" => {
            arity(name, a, 3)?;
            let (old, new, s) = (s_arg(a, 0)?, s_arg(a, 1)?, s_arg(a, 2)?);
            Value::string(s.replace(&*old, &new))
        }
        "contains" => {
            arity(name, a, 2)?;
            Value::Bool(s_arg(a, 1)?.contains(&*s_arg(a, 0)?))
        }
        "hasPrefix" => Value::Bool(s_arg(a, 1)?.starts_with(&*s_arg(a, 0)?)),
        "hasSuffix" => Value::Bool(s_arg(a, 1)?.ends_with(&*s_arg(a, 0)?)),
        "split" => {
            let (sep, s) = (s_arg(a, 0)?, s_arg(a, 1)?);
            let mut m = BTreeMap::new();
            for (i, part) in s.split(&*sep).enumerate() {
                m.insert(format!("_{i}"), Value::str(part));
            }
            Value::from_map(m)
        }
        "splitn" => {
            let (sep, n, s) = (s_arg(a, 0)?, i_arg(a, 1)?, s_arg(a, 2)?);
            let mut m = BTreeMap::new();
            for (i, part) in s.splitn(n.max(0) as usize, &*sep).enumerate() {
                m.insert(format!("_{i}"), Value::str(part));
            }
            Value::from_map(m)
        }
        "splitList" => {
            let (sep, s) = (s_arg(a, 0)?, s_arg(a, 1)?);
            if sep.is_empty() {
                Value::list(s.chars().map(|c| Value::string(c.to_string())).collect())
            } else {
                Value::list(s.split(&*sep).map(Value::str).collect())
            }
        }
        "join" => {
            let sep = s_arg(a, 0)?;
            let items = match a.get(1) {
                Some(Value::Str(s)) => vec![Value::Str(s.clone())],
                Some(v) => list_of(v)?,
                None => Vec::new(),
            };
            Value::string(items.iter().filter(|v| !v.is_nil()).map(strval).collect::<Vec<_>>().join(&sep))
        }
        "list" | "tuple" => Value::list(a.clone()),
        "dict" => dict_from(a),
        "get" => {
            let m = map_arg(a, 0)?;
            let k = s_arg(a, 1)?;
            let v = m.borrow().get(&*k).cloned();
            v.unwrap_or_else(|| Value::str(""))
        }
        "set" => {
            let m = map_arg(a, 0)?;
            let k = s_arg(a, 1)?;
            m.borrow_mut().insert(k.to_string(), a.get(2).cloned().unwrap_or(Value::Nil));
            Value::Map(m)
        }
        "unset" => {
            let m = map_arg(a, 0)?;
            let k = s_arg(a, 1)?;
            m.borrow_mut().remove(&*k);
            Value::Map(m)
        }
        "hasKey" => {
            let m = map_arg(a, 0)?;
            let k = s_arg(a, 1)?;
            let has = m.borrow().contains_key(&*k);
            Value::Bool(has)
        }
        "keys" => {
            let mut out = Vec::new();
            for v in a {
                let m = match v {
                    Value::Map(m) => m.clone(),
                    _ => map_arg(a, 0)?,
                };
                out.extend(m.borrow().keys().map(|k| Value::str(k)));
            }
            Value::list(out)
        }
        "values" => {
            let m = map_arg(a, 0)?;
            let vals = m.borrow().values().cloned().collect();
            Value::list(vals)
        }
        "pick" => {
            let m = map_arg(a, 0)?;
            let mut out = BTreeMap::new();
            for k in &a[1..] {
                let k = strval(k);
                if let Some(v) = m.borrow().get(&k) {
                    out.insert(k, v.clone());
                }
            }
            Value::from_map(out)
        }
        "omit" => {
            let m = map_arg(a, 0)?;
            let drop: Vec<String> = a[1..].iter().map(strval).collect();
            let out = m
                .borrow()
                .iter()
                .filter(|(k, _)| !drop.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::from_map(out)
        }
        "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" => {
            let dst = map_arg(a, 0)?;
            let overwrite = name.contains("Overwrite");
            for (i, src) in a[1..].iter().enumerate() {
                if !matches!(src, Value::Map(_)) {
                    map_arg(a, i + 1)?;
                }
                merge_into(&dst, src, overwrite);
            }
            Value::Map(dst)
        }
        "deepCopy" | "mustDeepCopy" => a.first().map_or(Value::Nil, Value::deep_copy),
        "dig" => {
            if a.len() < 3 {
                return Err(FuncError::Msg("dig needs at least three arguments".into()));
            }
            let dict = map_arg(a, a.len() - 1)?;
            let default = a[a.len() - 2].clone();
            let mut cur = Value::Map(dict);
            for k in &a[..a.len() - 2] {
                let k = s_arg(std::slice::from_ref(k), 0)?;
                let next = match &cur {
                    Value::Map(m) => m.borrow().get(&*k).cloned(),
                    _ => None,
                };
                match next {
                    Some(n) => cur = n,
                    None => return Ok(default),
                }
            }
            cur
        }
        "index" => index_value(a)?,
        "len" => {
            arity(name, a, 1)?;
            Value::Int(match &a[0] {
                Value::Str(s) => s.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.borrow().len() as i64,
                Value::ApiVersions(l) => l.len() as i64,
                Value::Files(f) => f.files.len() as i64,
                Value::Nil => return Err(FuncError::Msg("len of nil pointer".into())),
                other => return Err(FuncError::Msg(format!("len of type {}", other.type_name()))),
            })
        }
        "first" | "mustFirst" => list_of(a.first().unwrap_or(&Value::Nil))?.first().cloned().unwrap_or(Value::Nil),
        "last" | "mustLast" => list_of(a.first().unwrap_or(&Value::Nil))?.last().cloned().unwrap_or(Value::Nil),
        "rest" | "mustRest" => {
            let l = list_of(a.first().unwrap_or(&Value::Nil))?;
            if l.is_empty() {
                Value::Nil
            } else {
                Value::list(l[1..].to_vec())
            }
        }
        "initial" | "mustInitial" => {
            let l = list_of(a.first().unwrap_or(&Value::Nil))?;
            if l.is_empty() {
                Value::Nil
            } else {
                Value::list(l[..l.len() - 1].to_vec())
            }
        }
        "append" | "push" | "mustAppend" | "mustPush" => {
            let mut l = list_of(a.first().unwrap_or(&Value::Nil))?;
            l.push(a.get(1).cloned().unwrap_or(Value::Nil));
            Value::list(l)
        }
        "prepend" | "mustPrepend" => {
            let mut l = list_of(a.first().unwrap_or(&Value::Nil))?;
            l.insert(0, a.get(1).cloned().unwrap_or(Value::Nil));
            Value::list(l)
        }
        "concat" => {
            let mut out = Vec::new();
            for v in a {
                out.extend(list_of(v)?);
            }
            Value::list(out)
        }
        "uniq" | "mustUniq" => {
            let l = list_of(a.first().unwrap_or(&Value::Nil))?;
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                if !out.iter().any(|o| deep_equal(o, &v)) {
                    out.push(v);
                }
            }
            Value::list(out)
        }
        "without" | "mustWithout" => {
            let l = list_of(a.first().unwrap_or(&Value::Nil))?;
            Value::list(l.into_iter().filter(|v| !a[1..].iter().any(|o| deep_equal(o, v))).collect())
        }
        "has" | "mustHas" => {
            let l = list_of(a.get(1).unwrap_or(&Value::Nil))?;
            let needle = a.first().cloned().unwrap_or(Value::Nil);
            Value::Bool(l.iter().any(|v| deep_equal(v, &needle)))
        }
        "compact" | "mustCompact" => {
            let l = list_of(a.first().unwrap_or(&Value::Nil))?;
            Value::list(l.into_iter().filter(|v| !is_empty(v)).collect())
        }
        "sortAlpha" => {
            let l = list_of(a.first().unwrap_or(&Value::Nil))?;
            let mut s: Vec<String> = l.iter().map(strval).collect();
            s.sort();
            Value::list(s.into_iter().map(Value::string).collect())
        }
        "reverse" | "mustReverse" => {
            let mut l = list_of(a.first().unwrap_or(&Value::Nil))?;
            l.reverse();
            Value::list(l)
        }
        "until" => Value::list((0..i_arg(a, 0)?).map(Value::Int).collect()),
        "untilStep" => {
            let (start, stop, step) = (i_arg(a, 0)?, i_arg(a, 1)?, i_arg(a, 2)?);
            let mut out = Vec::new();
            let mut i = start;
            if step > 0 {
                while i < stop {
                    out.push(Value::Int(i));
                    i += step;
                }
            } else if step < 0 {
                while i > stop {
                    out.push(Value::Int(i));
                    i += step;
                }
            }
            Value::list(out)
        }
        "seq" => {
            let nums: Vec<i64> = a.iter().map(to_int64).collect();
            let (start, step, end) = match nums.as_slice() {
                [e] => (1, if *e >= 1 { 1 } else { -1 }, *e),
                [s, e] => (*s, if e >= s { 1 } else { -1 }, *e),
                [s, st, e] => (*s, *st, *e),
                _ => (1, 1, 0),
            };
            let mut out = Vec::new();
            let mut i = start;
            if step > 0 {
                while i <= end {
                    out.push(i.to_string());
                    i += step;
                }
            } else if step < 0 {
                while i >= end {
                    out.push(i.to_string());
                    i += step;
                }
            }
            Value::string(out.join(" "))
        }
        "add" => Value::Int(a.iter().map(to_int64).sum()),
        "add1" => Value::Int(to_int64(a.first().unwrap_or(&Value::Nil)) + 1),
        "sub" => Value::Int(to_int64(&a[0]) - to_int64(a.get(1).unwrap_or(&Value::Nil))),
        "mul" => Value::Int(a.iter().map(to_int64).product()),
        "div" => {
            let d = to_int64(a.get(1).unwrap_or(&Value::Nil));
            if d == 0 {
                return Err(FuncError::Msg("runtime error: integer divide by zero".into()));
            }
            Value::Int(to_int64(&a[0]) / d)
        }
        "mod" => {
            let d = to_int64(a.get(1).unwrap_or(&Value::Nil));
            if d == 0 {
                return Err(FuncError::Msg("runtime error: integer divide by zero".into()));
            }
            Value::Int(to_int64(&a[0]) % d)
        }
        "max" => Value::Int(a.iter().map(to_int64).max().unwrap_or(0)),
        "min" => Value::Int(a.iter().map(to_int64).min().unwrap_or(0)),
        "addf" => Value::Float(a.iter().map(to_float64).sum()),
        "subf" => Value::Float(a.iter().skip(1).fold(to_float64(&a[0]), |acc, v| acc - to_float64(v))),
        "mulf" => Value::Float(a.iter().map(to_float64).product()),
        "divf" => Value::Float(a.iter().skip(1).fold(to_float64(&a[0]), |acc, v| acc / to_float64(v))),
        "maxf" => Value::Float(a.iter().map(to_float64).fold(f64::MIN, f64::max)),
        "minf" => Value::Float(a.iter().map(to_float64).fold(f64::MAX, f64::min)),
        "floor" => Value::Float(to_float64(&a[0]).floor()),
        "ceil" => Value::Float(to_float64(&a[0]).ceil()),
        "round" => {
            let p = a.get(1).map_or(0, to_int64);
            let m = 10f64.powi(p as i32);
            Value::Float((to_float64(&a[0]) * m).round() / m)
        }
        "int" | "int64" => Value::Int(to_int64(a.first().unwrap_or(&Value::Nil))),
        "float64" => Value::Float(to_float64(a.first().unwrap_or(&Value::Nil))),
        "atoi" => Value::Int(s_arg(a, 0)?.trim().parse().unwrap_or(0)),
        "toDecimal" => Value::Int(i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0)),
        "b64enc" => match a.first() {
            Some(Value::Bytes(b)) => Value::string(base64::engine::general_purpose::STANDARD.encode(b)),
            _ => Value::string(base64::engine::general_purpose::STANDARD.encode(s_arg(a, 0)?.as_bytes())),
        },
        "b64dec" => {
            let s = s_arg(a, 0)?;
            match base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                Ok(b) => Value::string(String::from_utf8_lossy(&b).into_owned()),
                Err(e) => Value::string(e.to_string()),
            }
        }
        "sha256sum" => match a.first() {
            Some(Value::Bytes(b)) => Value::string(hex::encode(sha2::Sha256::digest(b))),
            _ => Value::string(hex::encode(sha2::Sha256::digest(s_arg(a, 0)?.as_bytes()))),
        },
        "sha512sum" => Value::string(hex::encode(sha2::Sha512::digest(s_arg(a, 0)?.as_bytes()))),
        "sha1sum" => Value::string(crate::sha1::sha1_hex(s_arg(a, 0)?.as_bytes())),
        "adler32sum" => {
            let s = s_arg(a, 0)?;
            let (mut x, mut y) = (1u32, 0u32);
            for b in s.bytes() {
                x = (x + u32::from(b)) % 65521;
                y = (y + x) % 65521;
            }
            Value::string(((y << 16) | x).to_string())
        }
        "randAlphaNum" => Value::string(rand_string(
            exec,
            i_arg(a, 0)?,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        )),
        "randAlpha" => Value::string(rand_string(exec, i_arg(a, 0)?, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")),
        "randNumeric" => Value::string(rand_string(exec, i_arg(a, 0)?, b"0123456789")),
        "randAscii" => Value::string(rand_string(
            exec,
            i_arg(a, 0)?,
            b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
        )),
        "uuidv4" | "uuid" => {
            let h = format!("{:016x}{:016x}", next_rand(exec), next_rand(exec));
            Value::string(format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32]))
        }
        "shuffle" => Value::Str(s_arg(a, 0)?),
        "now" => Value::str("2024-01-01 00:00:00 +0000 UTC"),
        "date" | "dateInZone" | "htmlDate" | "dateModify" | "mustDateModify" | "toDate" | "mustToDate" | "ago"
        | "duration" | "durationRound" | "unixEpoch" => Value::str("2024-01-01"),
        "semver" => {
            let s = s_arg(a, 0)?;
            let v = parse_semver(&s).ok_or_else(|| FuncError::Msg("Invalid Semantic Version".into()))?;
            let mut m = BTreeMap::new();
            m.insert("Major".into(), Value::Int(v.major as i64));
            m.insert("Minor".into(), Value::Int(v.minor as i64));
            m.insert("Patch".into(), Value::Int(v.patch as i64));
            m.insert("Prerelease".into(), Value::string(v.pre));
            Value::from_map(m)
        }
        "semverCompare" => {
            arity(name, a, 2)?;
            let (c, v) = (s_arg(a, 0)?, s_arg(a, 1)?);
            Value::Bool(semver_matches(&c, &v).map_err(FuncError::Msg)?)
        }
        "regexMatch" | "mustRegexMatch" => Value::Bool(regex_of(&s_arg(a, 0)?)?.is_match(&s_arg(a, 1)?)),
        "regexFind" => {
            let re = regex_of(&s_arg(a, 0)?)?;
            let s = s_arg(a, 1)?;
            Value::string(re.find(&s).map(|m| m.as_str().to_string()).unwrap_or_default())
        }
        "regexFindAll" => {
            let re = regex_of(&s_arg(a, 0)?)?;
            let s = s_arg(a, 1)?;
            let n = i_arg(a, 2)?;
            let all: Vec<Value> = re.find_iter(&s).map(|m| Value::str(m.as_str())).collect();
            let take = if n < 0 { all.len() } else { n as usize };
            Value::list(all.into_iter().take(take).collect())
        }
        "regexReplaceAll" | "mustRegexReplaceAll" => {
            let re = regex_of(&s_arg(a, 0)?)?;
            let (s, repl) = (s_arg(a, 1)?, s_arg(a, 2)?);
            Value::string(re.replace_all(&s, go_replacement(&repl).as_str()).into_owned())
        }
        "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral" => {
            let re = regex_of(&s_arg(a, 0)?)?;
            let (s, repl) = (s_arg(a, 1)?, s_arg(a, 2)?);
            Value::string(re.replace_all(&s, regex::NoExpand(&repl)).into_owned())
        }
        "regexSplit" | "mustRegexSplit" => {
            let re = regex_of(&s_arg(a, 0)?)?;
            let s = s_arg(a, 1)?;
            let n = i_arg(a, 2)?;
            let parts: Vec<Value> = if n < 0 {
                re.split(&s).map(Value::str).collect()
            } else {
                re.splitn(&s, n as usize).map(Value::str).collect()
            };
            Value::list(parts)
        }
        "kindIs" => Value::Bool(*s_arg(a, 0)? == *kind_of(a.get(1).unwrap_or(&Value::Nil))),
        "kindOf" => Value::str(kind_of(a.first().unwrap_or(&Value::Nil))),
        "typeOf" => Value::str(a.first().map_or("<nil>", Value::type_name)),
        "typeIs" | "typeIsLike" => Value::Bool(*s_arg(a, 0)? == *a.get(1).map_or("<nil>", Value::type_name)),
        "deepEqual" => Value::Bool(deep_equal(&a[0], a.get(1).unwrap_or(&Value::Nil))),
        "eq" => {
            if a.len() < 2 {
                return Err(FuncError::Msg("missing argument for comparison".into()));
            }
            let mut any = false;
            for b in &a[1..] {
                if go_eq(&a[0], b)? {
                    any = true;
                    break;
                }
            }
            Value::Bool(any)
        }
        "ne" => {
            arity(name, a, 2)?;
            Value::Bool(!go_eq(&a[0], &a[1])?)
        }
        "lt" => {
            arity(name, a, 2)?;
            Value::Bool(go_lt(&a[0], &a[1])?)
        }
        "le" => {
            arity(name, a, 2)?;
            Value::Bool(go_lt(&a[0], &a[1])? || go_eq(&a[0], &a[1])?)
        }
        "gt" => {
            arity(name, a, 2)?;
            Value::Bool(go_lt(&a[1], &a[0])?)
        }
        "ge" => {
            arity(name, a, 2)?;
            Value::Bool(!go_lt(&a[0], &a[1])?)
        }
        "not" => {
            arity(name, a, 1)?;
            Value::Bool(!a[0].truthy())
        }
        "bool" => Value::Bool(a.first().is_some_and(Value::truthy)),
        "genCA" | "genSelfSignedCert" | "genSignedCert" => cert_object(exec),
        "genPrivateKey" => Value::string(fake_pem(exec, "RSA PRIVATE KEY", 25)),
        "getHostByName" => Value::str(""),
        "camelcase" => {
            let s = s_arg(a, 0)?;
            Value::string(
                s.split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
                    })
                    .collect(),
            )
        }
        "snakecase" | "kebabcase" => {
            let s = s_arg(a, 0)?;
            let sep = if name == "snakecase" { '_' } else { '-' };
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if c.is_uppercase() {
                    if i > 0 {
                        out.push(sep);
                    }
                    out.extend(c.to_lowercase());
                } else {
                    out.push(c);
                }
            }
            Value::string(out)
        }
        "nospace" => Value::string(s_arg(a, 0)?.chars().filter(|c| !c.is_whitespace()).collect()),
        "repeat" => Value::string(s_arg(a, 1)?.repeat(i_arg(a, 0)?.max(0) as usize)),
        "substr" => {
            let (start, end, s) = (i_arg(a, 0)?, i_arg(a, 1)?, s_arg(a, 2)?);
            let len = s.len() as i64;
            let start = start.max(0);
            let end = if end < 0 || end > len { len } else { end };
            if start > end {
                Value::string(byte_slice(&s, start.min(len) as usize, s.len()))
            } else {
                Value::string(byte_slice(&s, start as usize, end as usize))
            }
        }
        "wrap" => Value::Str(s_arg(a, 1)?),
        "abbrev" => {
            let (w, s) = (i_arg(a, 0)?, s_arg(a, 1)?);
            if (s.len() as i64) <= w || w < 4 {
                Value::Str(s)
            } else {
                Value::string(format!("{}...", byte_slice(&s, 0, (w - 3) as usize)))
            }
        }
        "cat" => Value::string(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(strval)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "base" | "osBase" => {
            let s = s_arg(a, 0)?;
            let t = s.trim_end_matches('/');
            Value::string(if t.is_empty() { if s.is_empty() { ".".into() } else { "/".into() } } else { t.rsplit('/').next().unwrap_or(t).to_string() })
        }
        "dir" | "osDir" => {
            let s = s_arg(a, 0)?;
            Value::string(match s.rfind('/') {
                Some(0) => "/".into(),
                Some(i) => s[..i].to_string(),
                None => ".".into(),
            })
        }
        "ext" | "osExt" => {
            let s = s_arg(a, 0)?;
            let base = s.rsplit('/').next().unwrap_or(&s);
            Value::string(base.rfind('.').map(|i| base[i..].to_string()).unwrap_or_default())
        }
        "clean" | "osClean" => Value::Str(s_arg(a, 0)?),
        "isAbs" => Value::Bool(s_arg(a, 0)?.starts_with('/')),
        "slice" | "mustSlice" => {
            let l = list_of(a.first().unwrap_or(&Value::Nil))?;
            let start = a.get(1).map_or(0, to_int64).max(0) as usize;
            let end = a.get(2).map_or(l.len() as i64, to_int64).max(0) as usize;
            Value::list(l.get(start..end.min(l.len())).unwrap_or(&[]).to_vec())
        }
        "urlquery" | "html" | "js" => Value::string(sprint(a)),
        "htpasswd" | "derivePassword" | "encryptAES" | "decryptAES" => Value::str(""),
        "swapcase" | "initials" | "plural" | "chunk" | "mustChunk" | "urlParse" | "urlJoin" | "fromToml" | "call"
        | "b32enc" | "b32dec" => {
            return Err(FuncError::Msg(format!("function {name} is not supported by flux-helm")))
        }
        other => return Err(FuncError::Msg(format!("function {other:?} not defined"))),
    };
    Ok(v)
}

fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_constraints() {
        assert!(semver_matches(">=1.19-0", "v1.37.0").expect("ok"));
        assert!(!semver_matches("<1.19-0", "v1.37.0").expect("ok"));
        assert!(semver_matches(">=1.21.0-0 <1.40.0-0", "v1.37.0").expect("ok"));
        assert!(semver_matches("^1.2.0", "1.9.9").expect("ok"));
        assert!(!semver_matches("~1.2.0", "1.3.0").expect("ok"));
        assert!(semver_matches("1.x || >=3", "3.1.0").expect("ok"));
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(
            sprintf(
                "%s-%d-%v",
                &[Value::str("a"), Value::Int(3), Value::Float(1e6)]
            ),
            "a-3-1e+06"
        );
        assert_eq!(sprintf("%q", &[Value::str("x\"y")]), "\"x\\\"y\"");
        assert_eq!(sprintf("%s", &[Value::Nil]), "%!s(<nil>)");
    }

    #[test]
    fn no_panics_on_missing_args_or_utf8_boundaries() {
        let t = crate::template::exec::Templates::default();
        let ctx = crate::template::exec::Context {
            rng: std::cell::Cell::new(1),
            lookup: None,
        };
        let mut exec = Exec::new(&t, &ctx);
        for name in NAMES {
            let _ = call(&mut exec, name, Vec::new());
        }
        let r = call(&mut exec, "trunc", vec![Value::Int(2), Value::str("héllo")]).expect("trunc");
        assert_eq!(r.go_string(), "h\u{fffd}");
        assert!(call(&mut exec, "sub", Vec::new()).is_err());
    }

    #[test]
    fn quote_skips_nil() {
        assert_eq!(go_quote("a\nb"), "\"a\\nb\"");
    }
}
