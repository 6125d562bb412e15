//! Flux's post-build variable substitution grammar (`${var}` expressions), as
//! kustomize-controller and `flux envsubst` evaluate it.
//!
//! The grammar is the drone/envsubst dialect that Flux forked: only `${...}` is an
//! expression, `$var` stays literal, `$$` escapes a dollar. Supported forms: `${var}`,
//! `${#var}`, `${var^}`, `${var^^}`, `${var,}`, `${var,,}`, `${var:offset[:length]}`,
//! `${var#glob}`, `${var##glob}`, `${var%glob}`, `${var%%glob}`, `${var/pat/rep}`,
//! `${var//pat/rep}`, `${var/#pat/rep}`, `${var/%pat/rep}`, and the default operators
//! `${var=def}`, `${var:=def}`, `${var:-def}`, `${var:+def}`, `${var:?def}` — all of which
//! use the default when the value is empty or unset, as Flux does. Defaults may nest.
//!
//! In strict mode (Flux's default) a variable that is unset and referenced without a default
//! operator is an error.

use std::fmt;

/// Why an expression could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvsubstError {
    /// The text after `${` is not a valid expression.
    BadSubstitution,
    /// `${name` was not closed with `}`.
    MissingClosingBrace,
    /// `${` was followed by something that is not a variable name.
    InvalidVariableName,
    /// A default operator (`:=`, `:-`, ...) was malformed.
    BadDefault,
    /// A function argument could not be parsed.
    BadArgument,
    /// Strict mode: the variable is not set and the expression gives no default.
    VariableNotSet(String),
}

impl fmt::Display for EnvsubstError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSubstitution => f.write_str("bad substitution"),
            Self::MissingClosingBrace => f.write_str("missing closing brace"),
            Self::InvalidVariableName => f.write_str("unable to parse variable name"),
            Self::BadDefault => f.write_str("unable to parse default function"),
            Self::BadArgument => f.write_str("unable to parse substitution within function"),
            Self::VariableNotSet(name) => write!(f, "variable not set (strict mode): {name:?}"),
        }
    }
}

impl std::error::Error for EnvsubstError {}

/// One parsed piece of input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Expr(Expr),
}

/// `${param<op>args...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expr {
    param: String,
    op: String,
    args: Vec<Vec<Node>>,
}

/// Substitutes every `${...}` expression in `input`.
///
/// `lookup` returns a variable's value, or `None` when it is unset. With `strict` false an
/// unset variable evaluates to the empty string.
pub fn envsubst(
    input: &str,
    strict: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvsubstError> {
    let nodes = Parser::new(input).parse_text()?;
    let mut out = String::with_capacity(input.len());
    eval_nodes(&nodes, strict, lookup, &mut out)?;
    Ok(out)
}

/// True when `input` contains something that [`envsubst`] would treat as an expression or
/// an escape; callers use it to skip work on objects with no variables.
pub fn has_expressions(input: &str) -> bool {
    input.contains("${") || input.contains("$$")
}

fn eval_nodes(
    nodes: &[Node],
    strict: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), EnvsubstError> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Expr(expr) => {
                let mut args = Vec::with_capacity(expr.args.len());
                for arg in &expr.args {
                    let mut buf = String::new();
                    eval_nodes(arg, strict, lookup, &mut buf)?;
                    args.push(buf);
                }
                let value = match lookup(&expr.param) {
                    Some(value) => value,
                    None if strict && !is_default_op(&expr.op) => {
                        return Err(EnvsubstError::VariableNotSet(expr.param.clone()));
                    }
                    None => String::new(),
                };
                out.push_str(&apply(&expr.op, &value, &args));
            }
        }
    }
    Ok(())
}

/// Operators that supply their own value when the variable is unset.
fn is_default_op(op: &str) -> bool {
    matches!(op, "-" | "+" | "=" | "?" | ":-" | ":+" | ":=" | ":?")
}

fn apply(op: &str, value: &str, args: &[String]) -> String {
    match op {
        "," => map_first(value, char::to_lowercase),
        ",," => value.to_lowercase(),
        "^" => map_first(value, char::to_uppercase),
        "^^" => value.to_uppercase(),
        "#" if args.is_empty() => value.len().to_string(),
        "#" => trim_prefix_glob(value, &args[0], false),
        "##" => args
            .first()
            .map_or_else(|| value.to_string(), |p| trim_prefix_glob(value, p, true)),
        "%" => args
            .first()
            .map_or_else(|| value.to_string(), |p| trim_suffix_glob(value, p, false)),
        "%%" => args
            .first()
            .map_or_else(|| value.to_string(), |p| trim_suffix_glob(value, p, true)),
        ":" => substring(value, args),
        "/" => replace(value, args, Some(1)),
        "//" => replace(value, args, None),
        "/#" => match args {
            [pattern, replacement] if value.starts_with(pattern.as_str()) => {
                format!("{replacement}{}", &value[pattern.len()..])
            }
            _ => value.to_string(),
        },
        "/%" => match args {
            [pattern, replacement] if value.ends_with(pattern.as_str()) => {
                format!("{}{replacement}", &value[..value.len() - pattern.len()])
            }
            _ => value.to_string(),
        },
        // Every default operator (and anything unknown) means "value, or the default when empty".
        _ => {
            if value.is_empty() && !args.is_empty() {
                args.concat()
            } else {
                value.to_string()
            }
        }
    }
}

fn map_first<I: Iterator<Item = char>>(value: &str, map: impl Fn(char) -> I) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => map(first).chain(chars).collect(),
        None => String::new(),
    }
}

fn replace(value: &str, args: &[String], count: Option<usize>) -> String {
    let (pattern, replacement) = match args {
        [] => return value.to_string(),
        [pattern] => (pattern.as_str(), ""),
        [pattern, replacement, ..] => (pattern.as_str(), replacement.as_str()),
    };
    match count {
        Some(n) => value.replacen(pattern, replacement, n),
        None if pattern.is_empty() => value.to_string(),
        None => value.replace(pattern, replacement),
    }
}

/// `${var:offset[:length]}` on bytes, as Go slices strings; offsets that fall inside a
/// multi-byte character are repaired lossily rather than panicking.
fn substring(value: &str, args: &[String]) -> String {
    let bytes = value.as_bytes();
    let len = bytes.len() as i64;
    let Some(Ok(mut pos)) = args.first().map(|a| a.trim().parse::<i64>()) else {
        return value.to_string();
    };
    if pos < 0 {
        pos = (len + pos).max(0);
    }
    let slice = |from: i64, to: i64| {
        String::from_utf8_lossy(&bytes[from as usize..to as usize]).into_owned()
    };
    let Some(length) = args.get(1) else {
        return if pos < len {
            slice(pos, len)
        } else {
            String::new()
        };
    };
    let Ok(length) = length.trim().parse::<i64>() else {
        return value.to_string();
    };
    if length < 0 {
        let end = len + length;
        return if end < pos || pos > len {
            String::new()
        } else {
            slice(pos, end)
        };
    }
    if pos + length >= len {
        return if pos < len {
            slice(pos, len)
        } else {
            String::new()
        };
    }
    slice(pos, pos + length)
}

/// Removes the shortest (or longest) prefix of `value` matching the glob `pattern`.
fn trim_prefix_glob(value: &str, pattern: &str, longest: bool) -> String {
    // Candidate prefixes from the whole string down to one character, as Flux tries them.
    let mut ends: Vec<usize> = value
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .collect();
    ends.reverse();
    let mut found = None;
    for end in ends {
        match glob_match(pattern, &value[..end]) {
            Err(()) => return value.to_string(),
            Ok(true) => {
                found = Some(end);
                if longest {
                    break;
                }
            }
            Ok(false) => {}
        }
    }
    match found {
        Some(end) => value[end..].to_string(),
        None => value.to_string(),
    }
}

/// Suffix removal works on the reversed string and the reversed pattern, as Flux does.
fn trim_suffix_glob(value: &str, pattern: &str, longest: bool) -> String {
    let reversed: String = value.chars().rev().collect();
    let reversed_pattern: String = pattern.chars().rev().collect();
    trim_prefix_glob(&reversed, &reversed_pattern, longest)
        .chars()
        .rev()
        .collect()
}

/// Shell globs as Flux's envsubst fork matches them: Go's `path.Match` syntax (`[...]` classes
/// with `^` negation and ranges, `\` escapes), except that `*` and `?` also match `/`, so
/// `${f##*/}` is a basename. A malformed pattern is an error.
fn glob_match(pattern: &str, name: &str) -> Result<bool, ()> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> Result<bool, ()> {
    let Some((&first, rest)) = pattern.split_first() else {
        return Ok(name.is_empty());
    };
    match first {
        '*' => {
            // Validate the rest of the pattern even if we stop early, as Go reports bad patterns.
            let mut result = false;
            for skip in 0..=name.len() {
                if match_from(rest, &name[skip..])? {
                    result = true;
                    break;
                }
            }
            Ok(result)
        }
        '?' => match name.split_first() {
            Some((_, tail)) => match_from(rest, tail),
            _ => {
                check_pattern(rest)?;
                Ok(false)
            }
        },
        '[' => {
            let (matched, after) = match_class(rest, name.first().copied())?;
            if matched {
                match_from(after, &name[1..])
            } else {
                check_pattern(after)?;
                Ok(false)
            }
        }
        '\\' => {
            let (&escaped, after) = rest.split_first().ok_or(())?;
            match name.split_first() {
                Some((&c, tail)) if c == escaped => match_from(after, tail),
                _ => Ok(false),
            }
        }
        literal => match name.split_first() {
            Some((&c, tail)) if c == literal => match_from(rest, tail),
            _ => {
                check_pattern(rest)?;
                Ok(false)
            }
        },
    }
}

/// Matches one character class (the text after `[`); returns whether `c` is in it and the
/// pattern after the closing `]`.
fn match_class(class: &[char], c: Option<char>) -> Result<(bool, &[char]), ()> {
    let mut i = 0;
    let negated = class.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &ch = class.get(i).ok_or(())?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (lo, next) = class_char(class, i)?;
        let (hi, next) = if class.get(next) == Some(&'-') && class.get(next + 1) != Some(&']') {
            class_char(class, next + 1)?
        } else {
            (lo, next)
        };
        if let Some(c) = c {
            if lo <= c && c <= hi {
                matched = true;
            }
        }
        i = next;
    }
    if c.is_none() {
        return Ok((false, &class[i..]));
    }
    Ok((matched != negated, &class[i..]))
}

fn class_char(class: &[char], i: usize) -> Result<(char, usize), ()> {
    match class.get(i) {
        Some('\\') => class.get(i + 1).map(|&c| (c, i + 2)).ok_or(()),
        Some('-' | ']') | None => Err(()),
        Some(&c) => Ok((c, i + 1)),
    }
}

/// Reports a malformed remainder of a pattern (unclosed class, trailing backslash).
fn check_pattern(pattern: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '\\' => {
                if i + 1 >= pattern.len() {
                    return Err(());
                }
                i += 2;
            }
            '[' => {
                let (_, rest) = match_class(&pattern[i + 1..], None)?;
                i = pattern.len() - rest.len();
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// A recursive-descent parser over the input's characters.
struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(input: &str) -> Self {
        Self {
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn starts_expr(&self) -> bool {
        self.peek() == Some('$') && self.peek_at(1) == Some('{')
    }

    /// Top level: text with `$$` escapes, and expressions.
    fn parse_text(&mut self) -> Result<Vec<Node>, EnvsubstError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if self.starts_expr() {
                self.pos += 2;
                if !text.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut text)));
                }
                nodes.push(Node::Expr(self.parse_expr()?));
            } else if c == '$' && self.peek_at(1) == Some('$') {
                // `$$` is a literal `$`; scanning resumes after it, so `$${v}` stays `${v}`.
                text.push('$');
                self.pos += 2;
            } else {
                text.push(c);
                self.pos += 1;
            }
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        Ok(nodes)
    }

    fn parse_name(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn expect_close(&mut self, err: EnvsubstError) -> Result<(), EnvsubstError> {
        if self.peek() == Some('}') {
            self.pos += 1;
            Ok(())
        } else {
            Err(err)
        }
    }

    /// After `${`.
    fn parse_expr(&mut self) -> Result<Expr, EnvsubstError> {
        if self.peek() == Some('#') {
            self.pos += 1;
            let param = self.parse_name();
            if param.is_empty() {
                return Err(EnvsubstError::BadSubstitution);
            }
            self.expect_close(EnvsubstError::BadSubstitution)?;
            return Ok(Expr {
                param,
                op: "#".into(),
                args: Vec::new(),
            });
        }
        let param = self.parse_name();
        if param.is_empty() {
            return Err(EnvsubstError::InvalidVariableName);
        }
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                Ok(Expr {
                    param,
                    op: String::new(),
                    args: Vec::new(),
                })
            }
            Some(':') if matches!(self.peek_at(1), Some('=' | '-' | '?' | '+')) => {
                let op = format!(":{}", self.chars[self.pos + 1]);
                self.pos += 2;
                self.parse_default(param, op)
            }
            Some(':') => self.parse_substring(param),
            Some('=') => {
                self.pos += 1;
                self.parse_default(param, "=".into())
            }
            Some(',' | '^') => {
                let start = self.pos;
                while self.pos - start < 2 && matches!(self.peek(), Some(',' | '^')) {
                    self.pos += 1;
                }
                let op = self.chars[start..self.pos].iter().collect();
                self.expect_close(EnvsubstError::BadSubstitution)?;
                Ok(Expr {
                    param,
                    op,
                    args: Vec::new(),
                })
            }
            Some('/') => self.parse_replace(param),
            Some(c @ ('#' | '%')) => {
                let start = self.pos;
                while self.pos - start < 2 && self.peek() == Some(c) {
                    self.pos += 1;
                }
                let op = self.chars[start..self.pos].iter().collect();
                let arg = self.parse_param(&|c| c != '}', false)?;
                self.expect_close(EnvsubstError::BadSubstitution)?;
                Ok(Expr {
                    param,
                    op,
                    args: vec![arg],
                })
            }
            _ => Err(EnvsubstError::MissingClosingBrace),
        }
    }

    /// One argument: a nested expression, or a non-empty run of accepted text.
    fn parse_param(
        &mut self,
        accept: &dyn Fn(char) -> bool,
        escapes: bool,
    ) -> Result<Vec<Node>, EnvsubstError> {
        if self.starts_expr() {
            self.pos += 2;
            return Ok(vec![Node::Expr(self.parse_expr()?)]);
        }
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if self.starts_expr() {
                break;
            }
            if escapes {
                let next = self.peek_at(1);
                if (c == '\\' && matches!(next, Some('/' | '\\')))
                    || (c == '$' && next == Some('$'))
                {
                    text.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                    continue;
                }
            }
            if !accept(c) {
                break;
            }
            text.push(c);
            self.pos += 1;
        }
        if text.is_empty() {
            return Err(EnvsubstError::BadArgument);
        }
        Ok(vec![Node::Text(text)])
    }

    fn parse_default(&mut self, param: String, op: String) -> Result<Expr, EnvsubstError> {
        let mut args = Vec::new();
        loop {
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    return Ok(Expr { param, op, args });
                }
                None => return Err(EnvsubstError::BadSubstitution),
                Some(_) => args.push(self.parse_param(&|c| c != '}', false)?),
            }
        }
    }

    fn parse_substring(&mut self, param: String) -> Result<Expr, EnvsubstError> {
        self.pos += 1; // ':'
        let mut args = vec![self.parse_param(&|c| c != ':' && c != '}', false)?];
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                return Ok(Expr {
                    param,
                    op: ":".into(),
                    args,
                });
            }
            Some(':') => self.pos += 1,
            _ => return Err(EnvsubstError::BadSubstitution),
        }
        args.push(self.parse_param(&|c| c != '}', false)?);
        self.expect_close(EnvsubstError::BadSubstitution)?;
        Ok(Expr {
            param,
            op: ":".into(),
            args,
        })
    }

    fn parse_replace(&mut self, param: String) -> Result<Expr, EnvsubstError> {
        self.pos += 1; // '/'
        let op = match self.peek() {
            Some(c @ ('/' | '#' | '%')) => {
                self.pos += 1;
                format!("/{c}")
            }
            _ => "/".to_string(),
        };
        let pattern = if self.peek() == Some('/') {
            vec![Node::Text(String::new())]
        } else {
            self.parse_param(&|c| c != '/', true)?
        };
        if self.peek() != Some('/') {
            return Err(EnvsubstError::BadSubstitution);
        }
        self.pos += 1;
        let mut args = vec![pattern];
        if self.peek() != Some('}') {
            args.push(self.parse_param(&|c| c != '}', true)?);
        }
        self.expect_close(EnvsubstError::BadSubstitution)?;
        Ok(Expr { param, op, args })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(input: &str, vars: &[(&str, &str)], strict: bool) -> Result<String, EnvsubstError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        envsubst(input, strict, &|name| map.get(name).cloned())
    }

    fn ok(input: &str, vars: &[(&str, &str)]) -> String {
        run(input, vars, false).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    #[test]
    fn plain_text_and_variables() {
        assert_eq!(ok("abcdEFGH28ij", &[]), "abcdEFGH28ij");
        assert_eq!(ok("x ${a} y", &[("a", "1")]), "x 1 y");
        assert_eq!(
            ok("$a ${a}", &[("a", "1")]),
            "$a 1",
            "$var without braces is literal"
        );
        assert_eq!(ok("cost: 5$", &[]), "cost: 5$");
    }

    #[test]
    fn casing_length_and_substrings() {
        let v = [("v", "abcdEFGH28ij")];
        assert_eq!(ok("${#v}", &v), "12");
        assert_eq!(ok("${v^}", &v), "AbcdEFGH28ij");
        assert_eq!(ok("${v^^}", &v), "ABCDEFGH28IJ");
        assert_eq!(ok("${v,}", &[("v", "ABC")]), "aBC");
        assert_eq!(ok("${v,,}", &[("v", "ABC")]), "abc");
        let p = [("p", "/home/bozo/ideas/thoughts.for.today")];
        assert_eq!(ok("${p:11}", &p), "ideas/thoughts.for.today");
        assert_eq!(ok("${p:11:5}", &p), "ideas");
        assert_eq!(
            ok("${p:-5}", &p),
            "/home/bozo/ideas/thoughts.for.today",
            ":- is a default op"
        );
        assert_eq!(ok("${v:1:-1}", &[("v", "abcd")]), "bc");
        assert_eq!(ok("${v:10}", &[("v", "abcd")]), "");
    }

    #[test]
    fn defaults_including_nested() {
        assert_eq!(ok("${var=xyz}", &[("var", "abc")]), "abc");
        assert_eq!(ok("${var=xyz}", &[]), "xyz");
        assert_eq!(ok("${var:=xyz}", &[]), "xyz");
        assert_eq!(
            ok("${var:-xyz}", &[("var", "")]),
            "xyz",
            "empty counts as unset"
        );
        assert_eq!(
            ok("something ${var=${d}}", &[("d", "foo")]),
            "something foo"
        );
        assert_eq!(
            ok("foo: ${var=${d}-suffix}", &[("d", "foo1")]),
            "foo: foo1-suffix"
        );
        assert_eq!(
            ok("foo: ${var=prefix${d}-suffix}", &[("d", "foo1")]),
            "foo: prefixfoo1-suffix"
        );
        assert_eq!(ok("${var=${v^^}}", &[("v", "ab")]), "AB");
    }

    #[test]
    fn replacement_and_trimming() {
        let z = [("z", "abcABC123ABCabc")];
        assert_eq!(ok("${z/%abc/XYZ}", &z), "abcABC123ABCXYZ");
        assert_eq!(ok("${z/#abc/XYZ}", &z), "XYZABC123ABCabc");
        assert_eq!(ok("${z//abc/xyz}", &z), "xyzABC123ABCxyz");
        assert_eq!(ok("${z/abc/xyz}", &z), "xyzABC123ABCabc");
        assert_eq!(ok("${z/#/prefix-}", &[("z", "v")]), "prefix-v");
        assert_eq!(ok("${z/%/-suffix}", &[("z", "v")]), "v-suffix");
        assert_eq!(ok(r"${z/\//-}", &[("z", "foo/bar")]), "foo-bar");
        assert_eq!(ok(r"${z//\//-}", &[("z", "foo/bar/baz")]), "foo-bar-baz");
        assert_eq!(ok("${z/./}", &[("z", "foo.bar")]), "foobar");
        let f = [("f", "bash.string.txt")];
        assert_eq!(ok("${f#*.}", &f), "string.txt");
        assert_eq!(ok("${f##*.}", &f), "txt");
        assert_eq!(ok("${f%.*}", &f), "bash.string");
        assert_eq!(ok("${f%%.*}", &f), "bash");
        assert_eq!(ok("${f#*/}", &[("f", "path/to/file")]), "to/file");
        assert_eq!(ok("${f##*/}", &[("f", "/path/to/file")]), "file");
    }

    #[test]
    fn escapes() {
        let v = [("v", "abc")];
        assert_eq!(ok("$${v}", &v), "${v}");
        assert_eq!(
            ok("some ${v}$${var$${v}$v${v}", &v),
            "some abc${var${v}$vabc"
        );
        assert_eq!(ok("x $${var=${d}}", &[("d", "foo")]), "x ${var=foo}");
        assert_eq!(ok("$$${v}", &v), "$abc");
        assert_eq!(ok("$$HOME a$$", &v), "$HOME a$");
        assert_eq!(
            ok(r"\\x ${v}", &v),
            r"\\x abc",
            "backslashes outside expressions stay"
        );
    }

    #[test]
    fn strict_mode() {
        assert_eq!(
            run("${missing}", &[], true),
            Err(EnvsubstError::VariableNotSet("missing".into()))
        );
        assert_eq!(
            run("${missing}", &[], true).map_err(|e| e.to_string()),
            Err("variable not set (strict mode): \"missing\"".to_string())
        );
        for expr in [
            "${#m}", "${m^}", "${m,,}", "${m:0}", "${m/a/b}", "${m#a}", "${m%%a}",
        ] {
            assert!(
                run(expr, &[], true).is_err(),
                "{expr} must fail in strict mode"
            );
        }
        assert_eq!(run("${m:-fb}", &[], true).as_deref(), Ok("fb"));
        assert_eq!(run("${m=as}", &[], true).as_deref(), Ok("as"));
        assert_eq!(run("${foo}", &[("foo", "")], true).as_deref(), Ok(""));
        assert_eq!(run("${missing}", &[], false).as_deref(), Ok(""));
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for bad in [
            "${", "${a", "${}", "${a-b}", "${a:}", "${a/b}", "${#}", "${a^x}",
        ] {
            assert!(run(bad, &[("a", "1")], false).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn glob_rules() {
        assert_eq!(glob_match("*.txt", "a.txt"), Ok(true));
        assert_eq!(glob_match("*", "a/b"), Ok(true));
        assert_eq!(glob_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(glob_match("[^a-c]x", "bx"), Ok(false));
        assert_eq!(glob_match("a?c", "abc"), Ok(true));
        assert_eq!(glob_match("[", "a"), Err(()));
        // A bad pattern leaves the value unchanged.
        assert_eq!(ok("${v#[}", &[("v", "abc")]), "abc");
    }

    #[test]
    fn multibyte_values_never_panic() {
        let v = [("v", "héllo wörld")];
        assert_eq!(ok("${v^^}", &v), "HÉLLO WÖRLD");
        assert_eq!(
            ok("${v:1:1}", &v).len(),
            3,
            "lossy repair of a split character"
        );
        assert_eq!(ok("${v#h?}", &v), "llo wörld");
        assert_eq!(ok("${v%w*}", &v), "héllo ");
    }
}
