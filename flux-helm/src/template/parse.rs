//! Lexer and parser for Go's text/template language, as Helm charts use it.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// A parse error: `name:line: message`, formatted like Go's.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: {}:{}: {}", self.name, self.line, self.message)
    }
}

/// A parsed template body plus the source it came from (for error positions).
#[derive(Debug)]
pub struct Tree {
    /// The template's own name (file name or `define` name).
    pub name: String,
    /// The file the text was parsed from (Go's `ParseName`).
    pub parse_name: Rc<str>,
    pub source: Rc<str>,
    pub root: Vec<Node>,
}

impl Tree {
    /// Go's `ErrorContext` location: `file:line:col` with a 0-based byte column.
    pub fn location(&self, pos: usize) -> String {
        let pos = pos.min(self.source.len());
        let text = &self.source[..pos];
        let line = 1 + text.matches('\n').count();
        let col = match text.rfind('\n') {
            Some(i) => pos - i - 1,
            None => pos,
        };
        format!("{}:{}:{}", self.parse_name, line, col)
    }

    /// Whether the body is empty (only whitespace text), as Go's `IsEmptyTree`.
    pub fn is_empty(&self) -> bool {
        self.root.iter().all(|n| match n {
            Node::Text(t) => self
                .source
                .get(t.clone())
                .is_none_or(|t| t.trim().is_empty()),
            _ => false,
        })
    }
}

/// A node of a template body. The large variants are boxed so that a node is three words:
/// templates are mostly text, and the node vectors were most of a render's memory.
#[derive(Debug, Clone)]
pub enum Node {
    /// Literal text: a byte range of the tree's `source` (no copy per text node).
    Text(std::ops::Range<usize>),
    Action(Box<Pipe>),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Template(Box<TemplateCall>),
    Break(usize),
    Continue(usize),
}

/// `{{template "name" pipeline}}` (and the call a `block` makes).
#[derive(Debug, Clone)]
pub struct TemplateCall {
    pub pos: usize,
    pub name: String,
    pub pipe: Option<Pipe>,
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub else_body: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: usize,
    pub decl: Vec<Rc<str>>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    /// `.`
    Dot(usize),
    /// `.a.b`
    Field(usize, Fields),
    /// `$x.a.b` (`$` alone is the root variable).
    Var(usize, Rc<str>, Fields),
    /// A function name.
    Ident(usize, Rc<str>),
    /// `(pipeline).a.b`
    Chain(usize, Box<Arg>, Fields),
    Pipe(usize, Box<Pipe>),
    Str(usize, Rc<str>, Rc<str>),
    Int(usize, i64, Rc<str>),
    Float(usize, f64, Rc<str>),
    Bool(usize, bool),
    Nil(usize),
}

/// A field chain (`.a.b.c`), kept as one dotted string to save allocations.
#[derive(Debug, Clone, Default)]
pub struct Fields(Option<Rc<str>>);

impl Fields {
    fn from_parts(parts: &[Rc<str>], names: &Interner) -> Fields {
        match parts {
            [] => Fields(None),
            [one] => Fields(Some(one.clone())),
            _ => Fields(Some(
                names.get(&parts.iter().map(|p| &**p).collect::<Vec<_>>().join(".")),
            )),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.matches('.').count() + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.as_deref().into_iter().flat_map(|s| s.split('.'))
    }
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Dot(p)
            | Arg::Field(p, _)
            | Arg::Var(p, _, _)
            | Arg::Ident(p, _)
            | Arg::Chain(p, _, _)
            | Arg::Pipe(p, _)
            | Arg::Str(p, _, _)
            | Arg::Int(p, _, _)
            | Arg::Float(p, _, _)
            | Arg::Bool(p, _)
            | Arg::Nil(p) => *p,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Dot(_) => f.write_str("."),
            Arg::Field(_, fields) => {
                for field in fields.iter() {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Var(_, name, fields) => {
                f.write_str(name)?;
                for field in fields.iter() {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Ident(_, name) => f.write_str(name),
            Arg::Chain(_, inner, fields) => {
                match inner.as_ref() {
                    Arg::Pipe(_, p) => write!(f, "({p})")?,
                    other => write!(f, "{other}")?,
                }
                for field in fields.iter() {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Pipe(_, p) => write!(f, "({p})"),
            Arg::Str(_, _, quoted) | Arg::Int(_, _, quoted) | Arg::Float(_, _, quoted) => {
                f.write_str(quoted)
            }
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Nil(_) => f.write_str("nil"),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match arg {
                Arg::Pipe(_, p) => write!(f, "({p})")?,
                other => write!(f, "{other}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            let names: Vec<&str> = self.decl.iter().map(|d| &**d).collect();
            f.write_str(&names.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(Rc<str>),
    Field(Rc<str>),
    Var(Rc<str>),
    Str(Rc<str>, Rc<str>),
    Num(Rc<str>),
    Char(i64, Rc<str>),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Dot,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    /// Whether whitespace separates this token from the previous one.
    spaced: bool,
}

enum Item {
    Text(std::ops::Range<usize>),
    /// An action whose tokens were lexed into the caller's buffer.
    Action {
        pos: usize,
    },
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Shares one allocation per distinct identifier, field chain and literal across the templates
/// of a render: charts repeat the same names thousands of times, and building and freeing each
/// copy dominated parse time.
#[derive(Debug, Default)]
pub struct Interner(
    std::cell::RefCell<
        std::collections::HashSet<Rc<str>, std::hash::BuildHasherDefault<NameHasher>>,
    >,
);

impl Interner {
    pub fn get(&self, text: &str) -> Rc<str> {
        if let Some(found) = self.0.borrow().get(text) {
            return found.clone();
        }
        let shared: Rc<str> = Rc::from(text);
        self.0.borrow_mut().insert(shared.clone());
        shared
    }
}

/// A fast hash for short template names (the multiply-rotate scheme of rustc's FxHash); the
/// keys are chart text, and a slow path on a crafted collision only costs time.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    name: &'a str,
    names: &'a Interner,
    /// Where the next item starts.
    at: usize,
    /// Whether the previous action ended with `-}}`.
    trim_next: bool,
}

impl Lexer<'_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.to_string(),
            line: 1 + self.src[..pos.min(self.src.len())].matches('\n').count(),
            message: message.into(),
        }
    }

    /// The byte range of `part`, a subslice of the source.
    fn range_of(&self, part: &str) -> std::ops::Range<usize> {
        let start = part.as_ptr() as usize - self.src.as_ptr() as usize;
        start..start + part.len()
    }

    /// The next text or action, or `None` at the end. Items are produced one at a time (the
    /// parser consumes them in order) so that a file's tokens are never all alive at once.
    fn next_item(&mut self, toks: &mut Vec<Token>) -> Result<Option<Item>, ParseError> {
        let bytes = self.src.as_bytes();
        loop {
            if self.at >= bytes.len() {
                return Ok(None);
            }
            let start = self.at;
            let next = self.src[start..].find("{{").map(|o| start + o);
            let text_end = next.unwrap_or(bytes.len());
            let mut text = &self.src[start..text_end];
            if self.trim_next {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
                self.trim_next = false;
            }
            let Some(open) = next else {
                self.at = bytes.len();
                if text.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(Item::Text(self.range_of(text))));
            };
            let mut j = open + 2;
            if bytes.len() > j + 1 && bytes[j] == b'-' && is_space(bytes[j + 1]) {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
                j += 2;
            }
            if !text.is_empty() {
                // The action is lexed on the next call; remember where it starts.
                let range = self.range_of(text);
                // Lexed on the next call: the text before it is empty then.
                self.at = open;
                return Ok(Some(Item::Text(range)));
            }
            if let Some(item) = self.action_item(open, j, toks)? {
                return Ok(Some(item));
            }
        }
    }

    /// Lexes the comment or action opened at `open` (its body starting at `j`); `None` for a
    /// comment.
    fn action_item(
        &mut self,
        open: usize,
        j: usize,
        toks: &mut Vec<Token>,
    ) -> Result<Option<Item>, ParseError> {
        let bytes = self.src.as_bytes();
        // Comment?
        let mut k = j;
        while k < bytes.len() && is_space(bytes[k]) {
            k += 1;
        }
        if self.src[k..].starts_with("/*") {
            let Some(close) = self.src[k + 2..].find("*/") else {
                return Err(self.err(open, "unclosed comment"));
            };
            let mut m = k + 2 + close + 2;
            while m < bytes.len() && is_space(bytes[m]) {
                m += 1;
            }
            if self.src[m..].starts_with("-}}") && m > k + 2 + close + 2 {
                self.trim_next = true;
                self.at = m + 3;
            } else if self.src[m..].starts_with("}}") {
                self.at = m + 2;
            } else {
                return Err(self.err(open, "comment ends before closing delimiter"));
            }
            return Ok(None);
        }
        toks.clear();
        let (end, trim) = self.action(j, toks)?;
        self.trim_next = trim;
        self.at = end;
        Ok(Some(Item::Action { pos: j }))
    }

    /// Lexes one action starting after `{{` into `toks`; returns the index after `}}`, and
    /// whether the action ended with a right trim marker.
    fn action(&self, mut i: usize, toks: &mut Vec<Token>) -> Result<(usize, bool), ParseError> {
        let bytes = self.src.as_bytes();
        let mut spaced = true;
        let mut paren = 0i32;
        loop {
            if i >= bytes.len() {
                return Err(self.err(i, "unclosed action"));
            }
            let c = bytes[i];
            if is_space(c) {
                // Right trim marker " -}}".
                let mut k = i;
                while k < bytes.len() && is_space(bytes[k]) {
                    k += 1;
                }
                if self.src[k..].starts_with("-}}") {
                    return Ok((k + 3, true));
                }
                i = k;
                spaced = true;
                continue;
            }
            if self.src[i..].starts_with("}}") {
                if paren > 0 {
                    return Err(self.err(i, "unclosed left paren"));
                }
                return Ok((i + 2, false));
            }
            let pos = i;
            let tok = match c {
                b'(' => {
                    paren += 1;
                    i += 1;
                    Tok::LParen
                }
                b')' => {
                    paren -= 1;
                    if paren < 0 {
                        return Err(self.err(i, "unexpected right paren"));
                    }
                    i += 1;
                    Tok::RParen
                }
                b'|' => {
                    i += 1;
                    Tok::Pipe
                }
                b',' => {
                    i += 1;
                    Tok::Comma
                }
                b':' => {
                    if bytes.get(i + 1) == Some(&b'=') {
                        i += 2;
                        Tok::Declare
                    } else {
                        return Err(self.err(i, "expected :="));
                    }
                }
                b'=' => {
                    i += 1;
                    Tok::Assign
                }
                b'"' => {
                    let (s, end) = self.quoted(i)?;
                    let raw = self.src[i..end].to_string();
                    i = end;
                    Tok::Str(self.names.get(&s), self.names.get(&raw))
                }
                b'`' => {
                    let Some(close) = self.src[i + 1..].find('`') else {
                        return Err(self.err(i, "unterminated raw quoted string"));
                    };
                    let s = self.src[i + 1..i + 1 + close].to_string();
                    let raw = self.src[i..i + close + 2].to_string();
                    i += close + 2;
                    Tok::Str(self.names.get(&s), self.names.get(&raw))
                }
                b'\'' => {
                    let end = self.src[i + 1..]
                        .find('\'')
                        .map(|o| i + 1 + o)
                        .ok_or_else(|| self.err(i, "unterminated character constant"))?;
                    let inner = &self.src[i + 1..end];
                    let value = unescape(inner, '\'')
                        .and_then(|s| s.chars().next())
                        .ok_or_else(|| self.err(i, "malformed character constant"))?;
                    let raw = self.src[i..=end].to_string();
                    i = end + 1;
                    Tok::Char(i64::from(u32::from(value)), self.names.get(&raw))
                }
                b'$' => {
                    let mut k = i + 1;
                    while k < bytes.len() && (bytes[k].is_ascii_alphanumeric() || bytes[k] == b'_')
                    {
                        k += 1;
                    }
                    let name = self.names.get(&self.src[i..k]);
                    i = k;
                    Tok::Var(name)
                }
                b'.' => {
                    if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        let end = self.number_end(i);
                        let text = self.names.get(&self.src[i..end]);
                        i = end;
                        Tok::Num(text)
                    } else {
                        let mut k = i + 1;
                        while k < bytes.len()
                            && (bytes[k].is_ascii_alphanumeric()
                                || bytes[k] == b'_'
                                || bytes[k] >= 0x80)
                        {
                            k += 1;
                        }
                        if k == i + 1 {
                            i += 1;
                            Tok::Dot
                        } else {
                            let name = self.names.get(&self.src[i + 1..k]);
                            i = k;
                            Tok::Field(name)
                        }
                    }
                }
                b'0'..=b'9' | b'+' | b'-' => {
                    let end = self.number_end(i);
                    if end == i || (end == i + 1 && !c.is_ascii_digit()) {
                        return Err(self.err(i, format!("unexpected \"{}\" in command", c as char)));
                    }
                    let text = self.names.get(&self.src[i..end]);
                    i = end;
                    Tok::Num(text)
                }
                c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                    let mut k = i;
                    while k < bytes.len()
                        && (bytes[k].is_ascii_alphanumeric()
                            || bytes[k] == b'_'
                            || bytes[k] >= 0x80)
                    {
                        k += 1;
                    }
                    let name = self.names.get(&self.src[i..k]);
                    i = k;
                    Tok::Ident(name)
                }
                other => {
                    return Err(self.err(
                        i,
                        format!("unrecognized character in action: {:?}", other as char),
                    ))
                }
            };
            toks.push(Token { tok, pos, spaced });
            spaced = false;
        }
    }

    fn number_end(&self, start: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut k = start;
        if k < bytes.len() && (bytes[k] == b'+' || bytes[k] == b'-') {
            k += 1;
        }
        while k < bytes.len() {
            let c = bytes[k];
            let prev = if k > start { bytes[k - 1] } else { 0 };
            let exponent_sign =
                (c == b'+' || c == b'-') && matches!(prev, b'e' | b'E' | b'p' | b'P');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
                k += 1;
            } else {
                break;
            }
        }
        k
    }

    fn quoted(&self, start: usize) -> Result<(String, usize), ParseError> {
        let bytes = self.src.as_bytes();
        let mut k = start + 1;
        while k < bytes.len() {
            match bytes[k] {
                b'\\' => k += 2,
                b'"' => {
                    let inner = &self.src[start + 1..k];
                    let s =
                        unescape(inner, '"').ok_or_else(|| self.err(start, "invalid syntax"))?;
                    return Ok((s, k + 1));
                }
                b'\n' => break,
                _ => k += 1,
            }
        }
        Err(self.err(start, "unterminated quoted string"))
    }
}

/// Go string-literal unescaping.
fn unescape(s: &str, quote: char) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' if quote == '"' => out.push('"'),
            '\'' if quote == '\'' => out.push('\''),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            '0'..='7' => {
                let mut h = String::from(e);
                h.extend(chars.by_ref().take(2));
                out.push(char::from(u8::from_str_radix(&h, 8).ok()?));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Parses a Go number literal the way text/template does.
fn parse_number(text: &str) -> Option<Arg> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x").filter(|h| h.contains('p')) {
        // Hexadecimal float: mantissa in hex, binary exponent.
        let (mant, exp) = h.split_once('p')?;
        let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
        let mut value = 0f64;
        for c in int_part.chars() {
            value = value * 16.0 + f64::from(c.to_digit(16)?);
        }
        let mut scale = 1.0 / 16.0;
        for c in frac_part.chars() {
            value += f64::from(c.to_digit(16)?) * scale;
            scale /= 16.0;
        }
        let exp: i32 = exp.parse().ok()?;
        let f = value * 2f64.powi(exp);
        return Some(Arg::Float(0, if neg { -f } else { f }, Rc::from(text)));
    }
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Arg::Int(0, if neg { -i } else { i }, Rc::from(text)));
    }
    let f: f64 = lower.parse().ok()?;
    Some(Arg::Float(0, if neg { -f } else { f }, Rc::from(text)))
}

/// The result of parsing one file: its own tree and the `define`d templates inside it.
pub struct Parsed {
    pub main: Tree,
    pub defines: BTreeMap<String, Tree>,
}

/// Parses `src` as the template `name`.
pub fn parse(name: &str, src: &str) -> Result<Parsed, ParseError> {
    parse_with(name, src, &Interner::default())
}

/// Parses `src` as the template `name`, sharing names through `names` (one per render).
pub fn parse_with(name: &str, src: &str, names: &Interner) -> Result<Parsed, ParseError> {
    let lexer = Lexer {
        src,
        name,
        names,
        at: 0,
        trim_next: false,
    };
    let source: Rc<str> = Rc::from(src);
    let parse_name: Rc<str> = Rc::from(name);
    let mut p = Parser {
        lexer,
        pending_else: None,
        buffers: Vec::new(),
        defines: BTreeMap::new(),
        source: source.clone(),
        parse_name: parse_name.clone(),
        range_depth: 0,
    };
    let (root, end) = p.list()?;
    if let Some((pos, word)) = end {
        return Err(p.lexer.err(pos, format!("unexpected {{{{{word}}}}}")));
    }
    Ok(Parsed {
        main: Tree {
            name: name.to_string(),
            parse_name,
            source,
            root,
        },
        defines: p.defines,
    })
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The tokens after `else` of the `{{else ...}}` that ended the last list, for the branch
    /// that owns it (`else if`/`else with`).
    pending_else: Option<Vec<Token>>,
    /// Token buffers reused across actions (one per nesting level in use).
    buffers: Vec<Vec<Token>>,
    defines: BTreeMap<String, Tree>,
    source: Rc<str>,
    parse_name: Rc<str>,
    range_depth: usize,
}

/// How a list ended: `{{end}}` or `{{else ...}}`.
type ListEnd = Option<(usize, &'static str)>;

impl Parser<'_> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        self.lexer.err(pos, msg)
    }

    /// Parses nodes until `end`/`else` (returned) or EOF (None).
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let mut toks = self.buffers.pop().unwrap_or_default();
            let item = self.lexer.next_item(&mut toks);
            let pos = match item {
                Ok(Some(Item::Action { pos })) => pos,
                Ok(Some(Item::Text(t))) => {
                    nodes.push(Node::Text(t));
                    self.buffers.push(toks);
                    continue;
                }
                Ok(None) => {
                    self.buffers.push(toks);
                    return Ok((nodes, None));
                }
                Err(e) => return Err(e),
            };
            let end = self.action(pos, &toks, &mut nodes);
            self.buffers.push(toks);
            if let Some(end) = end? {
                return Ok((nodes, Some(end)));
            }
        }
    }

    /// Parses one action into `nodes`; returns how the list ends when it is `end`/`else`.
    fn action(
        &mut self,
        pos: usize,
        toks: &[Token],
        nodes: &mut Vec<Node>,
    ) -> Result<Option<(usize, &'static str)>, ParseError> {
        let Some(first) = toks.first() else {
            return Err(self.err(pos, "missing value for command"));
        };
        let keyword = match &first.tok {
            Tok::Ident(w) => &**w,
            _ => "",
        };
        match keyword {
            "end" => {
                if toks.len() > 1 {
                    return Err(self.err(pos, "unexpected token in end"));
                }
                return Ok(Some((pos, "end")));
            }
            "else" => {
                // Keep the rest of the tokens so the caller can handle `else if`.
                self.pending_else = Some(toks[1..].to_vec());
                return Ok(Some((pos, "else")));
            }
            "if" | "range" | "with" => {
                let node = self.branch(keyword, first.pos, &toks[1..])?;
                nodes.push(node);
            }
            "define" | "block" => {
                let (name, rest) = match toks.get(1).map(|t| &t.tok) {
                    Some(Tok::Str(s, _)) => (s.to_string(), &toks[2..]),
                    _ => return Err(self.err(pos, format!("unexpected name in {keyword} clause"))),
                };
                let pipe = if keyword == "block" {
                    Some(self.pipeline(rest, pos, false)?)
                } else {
                    if !rest.is_empty() {
                        return Err(self.err(pos, "unexpected token in define clause"));
                    }
                    None
                };
                let saved_range = std::mem::replace(&mut self.range_depth, 0);
                let (body, end) = self.list()?;
                self.range_depth = saved_range;
                match end {
                    Some((_, "end")) => {}
                    _ => return Err(self.err(pos, format!("unexpected EOF in {keyword}"))),
                }
                let tree = Tree {
                    name: name.clone(),
                    parse_name: self.parse_name.clone(),
                    source: self.source.clone(),
                    root: body,
                };
                let replace = match self.defines.get(&name) {
                    Some(_) => !tree.is_empty(),
                    None => true,
                };
                if replace {
                    self.defines.insert(name.clone(), tree);
                }
                if keyword == "block" {
                    nodes.push(Node::Template(Box::new(TemplateCall {
                        pos: first.pos,
                        name,
                        pipe,
                    })));
                }
            }
            "template" => {
                let (name, rest) = match toks.get(1).map(|t| &t.tok) {
                    Some(Tok::Str(s, _)) => (s.to_string(), &toks[2..]),
                    _ => return Err(self.err(pos, "unexpected token in template clause")),
                };
                let pipe = if rest.is_empty() {
                    None
                } else {
                    Some(self.pipeline(rest, pos, false)?)
                };
                nodes.push(Node::Template(Box::new(TemplateCall {
                    pos: first.pos,
                    name,
                    pipe,
                })));
            }
            "break" | "continue" => {
                if self.range_depth == 0 {
                    return Err(self.err(pos, format!("{{{{{keyword}}}}} outside {{{{range}}}}")));
                }
                nodes.push(if keyword == "break" {
                    Node::Break(first.pos)
                } else {
                    Node::Continue(first.pos)
                });
            }
            _ => {
                let pipe = self.pipeline(toks, pos, false)?;
                nodes.push(Node::Action(Box::new(pipe)));
            }
        }
        Ok(None)
    }

    fn branch(&mut self, keyword: &str, pos: usize, toks: &[Token]) -> Result<Node, ParseError> {
        let pipe = self.pipeline(toks, pos, keyword == "range")?;
        if keyword == "range" {
            self.range_depth += 1;
        }
        let (body, end) = self.list()?;
        if keyword == "range" {
            self.range_depth -= 1;
        }
        let else_body = match end {
            Some((_, "end")) => None,
            Some((epos, _)) => {
                let Some(rest) = self.pending_else.take() else {
                    return Err(self.err(epos, "internal parser state"));
                };
                if rest.is_empty() {
                    let (else_nodes, end2) = self.list()?;
                    match end2 {
                        Some((_, "end")) => Some(else_nodes),
                        _ => return Err(self.err(epos, "expected end; found else")),
                    }
                } else {
                    // `else if` / `else with`: a nested branch sharing our `end`.
                    let kw = match &rest[0].tok {
                        Tok::Ident(w) if &**w == "if" || &**w == "with" => w.to_string(),
                        _ => return Err(self.err(epos, "unexpected token in else")),
                    };
                    let nested = self.branch(&kw, rest[0].pos, &rest[1..])?;
                    Some(vec![nested])
                }
            }
            None => return Err(self.err(pos, format!("unexpected EOF in {keyword}"))),
        };
        let branch = Box::new(Branch {
            pos,
            pipe,
            body,
            else_body,
        });
        Ok(match keyword {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    fn pipeline(&self, toks: &[Token], pos: usize, allow_two: bool) -> Result<Pipe, ParseError> {
        let mut i = 0;
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: $x := / $x = / $i, $v :=
        if let Some(Tok::Var(v)) = toks.first().map(|t| &t.tok) {
            match toks.get(1).map(|t| &t.tok) {
                Some(Tok::Declare) => {
                    decl.push(v.clone());
                    i = 2;
                }
                Some(Tok::Assign) => {
                    decl.push(v.clone());
                    is_assign = true;
                    i = 2;
                }
                Some(Tok::Comma) if allow_two => {
                    if let (Some(Tok::Var(v2)), Some(t)) =
                        (toks.get(2).map(|t| &t.tok), toks.get(3).map(|t| &t.tok))
                    {
                        if *t == Tok::Declare || *t == Tok::Assign {
                            decl.push(v.clone());
                            decl.push(v2.clone());
                            is_assign = *t == Tok::Assign;
                            i = 4;
                        }
                    }
                    if i == 0 {
                        return Err(self.err(pos, "too many declarations"));
                    }
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        let mut rest = &toks[i..];
        if rest.is_empty() {
            return Err(self.err(pos, "missing value for command"));
        }
        loop {
            let (cmd, used) = self.command(rest, pos)?;
            cmds.push(cmd);
            rest = &rest[used..];
            match rest.first().map(|t| &t.tok) {
                None => break,
                Some(Tok::Pipe) => {
                    rest = &rest[1..];
                    if rest.is_empty() {
                        return Err(self.err(pos, "missing command"));
                    }
                }
                Some(_) => return Err(self.err(pos, "unexpected token in pipeline")),
            }
        }
        Ok(Pipe {
            pos: toks.first().map_or(pos, |t| t.pos),
            decl,
            is_assign,
            cmds,
        })
    }

    /// Parses operands up to `|`, `)` or the end.
    fn command(&self, toks: &[Token], pos: usize) -> Result<(Cmd, usize), ParseError> {
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            match toks[i].tok {
                Tok::Pipe | Tok::RParen => break,
                _ => {}
            }
            if i > 0 && !toks[i].spaced && !matches!(toks[i].tok, Tok::LParen) {
                return Err(self.err(toks[i].pos, "missing space?"));
            }
            let (arg, used) = self.operand(&toks[i..])?;
            args.push(arg);
            i += used;
        }
        if args.is_empty() {
            return Err(self.err(pos, "empty command"));
        }
        Ok((
            Cmd {
                pos: args[0].pos(),
                args,
            },
            i,
        ))
    }

    fn operand(&self, toks: &[Token]) -> Result<(Arg, usize), ParseError> {
        let t = &toks[0];
        let mut used = 1;
        let mut arg = match &t.tok {
            Tok::Dot => Arg::Dot(t.pos),
            Tok::Field(f) => {
                let mut fields = vec![f.clone()];
                while let Some(Token {
                    tok: Tok::Field(f2),
                    spaced: false,
                    ..
                }) = toks.get(used)
                {
                    fields.push(f2.clone());
                    used += 1;
                }
                return Ok((
                    Arg::Field(t.pos, Fields::from_parts(&fields, self.lexer.names)),
                    used,
                ));
            }
            Tok::Var(v) => {
                let mut fields = Vec::new();
                while let Some(Token {
                    tok: Tok::Field(f2),
                    spaced: false,
                    ..
                }) = toks.get(used)
                {
                    fields.push(f2.clone());
                    used += 1;
                }
                return Ok((
                    Arg::Var(
                        t.pos,
                        v.clone(),
                        Fields::from_parts(&fields, self.lexer.names),
                    ),
                    used,
                ));
            }
            Tok::Ident(name) => match &**name {
                "true" => Arg::Bool(t.pos, true),
                "false" => Arg::Bool(t.pos, false),
                "nil" => Arg::Nil(t.pos),
                _ => Arg::Ident(t.pos, name.clone()),
            },
            Tok::Str(s, raw) => Arg::Str(t.pos, s.clone(), raw.clone()),
            Tok::Char(c, raw) => Arg::Int(t.pos, *c, raw.clone()),
            Tok::Num(text) => match parse_number(text) {
                Some(Arg::Int(_, v, raw)) => Arg::Int(t.pos, v, raw),
                Some(Arg::Float(_, v, raw)) => Arg::Float(t.pos, v, raw),
                _ => return Err(self.err(t.pos, format!("bad number syntax: {text:?}"))),
            },
            Tok::LParen => {
                // Find the matching paren.
                let mut depth = 0;
                let mut end = None;
                for (k, tk) in toks.iter().enumerate() {
                    match tk.tok {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(k);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let Some(end) = end else {
                    return Err(self.err(t.pos, "unclosed left paren"));
                };
                let inner = &toks[1..end];
                let mut inner_toks = inner.to_vec();
                if let Some(first) = inner_toks.first_mut() {
                    first.spaced = true;
                }
                let pipe = self.pipeline(&inner_toks, t.pos, false)?;
                used = end + 1;
                Arg::Pipe(t.pos, Box::new(pipe))
            }
            Tok::Declare | Tok::Assign => {
                return Err(self.err(t.pos, "unexpected \":=\" in operand"));
            }
            _ => return Err(self.err(t.pos, "unexpected token in operand")),
        };
        // Field chains on a term: (x).a, or literal.a (an error at run time in Go).
        let mut fields = Vec::new();
        while let Some(Token {
            tok: Tok::Field(f2),
            spaced: false,
            ..
        }) = toks.get(used)
        {
            fields.push(f2.clone());
            used += 1;
        }
        if !fields.is_empty() {
            arg = Arg::Chain(
                t.pos,
                Box::new(arg),
                Fields::from_parts(&fields, self.lexer.names),
            );
        }
        Ok((arg, used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pipelines_and_trims() {
        let p = parse("t", "a  {{- if .X }}b{{ else if .Y }}c{{ end -}}  \n d").expect("parse");
        assert_eq!(p.main.root.len(), 3);
        assert!(matches!(&p.main.root[0], Node::Text(t) if &p.main.source[t.clone()] == "a"));
        assert!(matches!(&p.main.root[2], Node::Text(t) if &p.main.source[t.clone()] == "d"));
    }

    #[test]
    fn collects_defines() {
        let p = parse("t", r#"{{ define "x" }}hi{{ end }}{{ template "x" . }}"#).expect("parse");
        assert!(p.defines.contains_key("x"));
    }

    #[test]
    fn prints_nodes_like_go() {
        let p = parse("t", r#"{{ include "a" (dict "k" $.x) | nindent 4 }}"#).expect("parse");
        let Node::Action(pipe) = &p.main.root[0] else {
            panic!("not an action")
        };
        assert_eq!(
            pipe.to_string(),
            r#"include "a" (dict "k" $.x) | nindent 4"#
        );
    }

    #[test]
    fn reports_unclosed_action() {
        let e = parse("t", "{{ if .X }}").err().expect("error");
        assert!(e.to_string().contains("unexpected EOF"));
    }
}
