//! The YAML store: an event-level loader that keeps order and comments (as go-yaml v3 and
//! sops 3.11 do) and an emitter that writes the same bytes as sops' go-yaml v3 encoder.

use std::collections::HashMap;
use std::fmt::Write as _;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::tree::{format_float_yaml, MapItem, Value};
use crate::Error;

/// A comment found in the source.
struct SourceComment {
    /// Column of the `#` (chars from the line start).
    column: usize,
    text: String,
}

enum Token<'a> {
    Event(Event<'a>, Span),
    Comment(SourceComment),
}

/// Receives each document's root mapping items as soon as they are final, in document
/// order (used to decrypt while loading). Items may be changed in place.
pub trait RootVisitor {
    /// A new document begins.
    fn start_document(&mut self);
    /// Root items of the current document that were completed since the last call.
    fn visit(&mut self, items: &mut [MapItem]) -> Result<(), Error>;
}

/// Parses a YAML stream into its documents (each a mapping).
pub fn load(source: &str, file: &str) -> Result<Vec<Value>, Error> {
    load_visiting(source, file, None)
}

/// [`load`], handing every document's root items to `visitor` as soon as they are final.
pub fn load_visiting(
    source: &str,
    file: &str,
    visitor: Option<&mut dyn RootVisitor>,
) -> Result<Vec<Value>, Error> {
    // Parser positions count chars; ASCII input (the common case) is indexed as bytes
    // to avoid a 4-bytes-per-char copy of large files.
    if source.is_ascii() {
        load_with(source, source.as_bytes(), file, visitor)
    } else {
        let chars: Vec<char> = source.chars().collect();
        load_with(source, &chars, file, visitor)
    }
}

fn load_with<T: Copy + Into<char>>(
    source: &str,
    chars: &[T],
    file: &str,
    visitor: Option<&mut dyn RootVisitor>,
) -> Result<Vec<Value>, Error> {
    let error = std::rc::Rc::new(std::cell::RefCell::new(None));
    let stream = TokenStream {
        parser: Parser::new_from_str(source),
        chars,
        last_end: 0,
        ready: std::collections::VecDeque::new(),
        held: std::collections::VecDeque::new(),
        held_line: usize::MAX,
        done: false,
        error: std::rc::Rc::clone(&error),
    };
    let mut builder = Builder {
        tokens: stream.peekable(),
        anchors: HashMap::new(),
        file,
        visitor,
        root_visited: 0,
    };
    let result = builder.stream();
    if let Some(message) = error.borrow_mut().take() {
        return Err(Error::Parse {
            file: file.to_string(),
            format: "YAML",
            message,
        });
    }
    result
}

/// Streams parser events merged with the comments found between them (sops 3.11 keeps
/// comments; a comment after content on its line is placed before the first event of
/// that line, so it lands above its entry).
struct TokenStream<'a, 's, T> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    chars: &'s [T],
    /// Where the next comment scan starts (end of the previous event).
    last_end: usize,
    ready: std::collections::VecDeque<Token<'a>>,
    /// Tokens of the current line, held back so an inline comment can go before them.
    held: std::collections::VecDeque<Token<'a>>,
    held_line: usize,
    done: bool,
    error: std::rc::Rc<std::cell::RefCell<Option<String>>>,
}

impl<T: Copy + Into<char>> TokenStream<'_, '_, T> {
    fn at(&self, pos: usize) -> char {
        self.chars.get(pos).map_or('\0', |&c| c.into())
    }

    fn line_start(&self, pos: usize) -> usize {
        let mut i = pos.min(self.chars.len());
        while i > 0 && self.at(i - 1) != '\n' {
            i -= 1;
        }
        i
    }

    fn flush_held(&mut self) {
        self.ready.extend(self.held.drain(..));
    }

    /// Finds comments in `[self.last_end, until)`.
    fn scan_gap(&mut self, until: usize) {
        let mut pos = self.last_end;
        let until = until.min(self.chars.len());
        while pos < until {
            let c = self.at(pos);
            let prev_blank = pos == 0 || matches!(self.at(pos - 1), ' ' | '\t' | '\n');
            if c == '#' && prev_blank {
                let mut end = pos;
                while end < self.chars.len() && self.at(end) != '\n' {
                    end += 1;
                }
                let text: String = self.chars[pos + 1..end].iter().map(|&c| c.into()).collect();
                let text = text.strip_suffix('\r').map_or(text.clone(), str::to_string);
                let line_start = self.line_start(pos);
                let inline = (line_start..pos).any(|i| !matches!(self.at(i), ' ' | '\t'));
                let comment = Token::Comment(SourceComment {
                    column: pos - line_start,
                    text,
                });
                if inline && self.held_line == line_start && !self.held.is_empty() {
                    self.held.push_front(comment);
                } else {
                    self.flush_held();
                    self.ready.push_back(comment);
                }
                pos = end;
                continue;
            }
            pos += 1;
        }
        self.last_end = self.last_end.max(until);
    }

    fn pull(&mut self) {
        match self.parser.next_event() {
            None => {
                self.scan_gap(self.chars.len());
                self.flush_held();
                self.done = true;
            }
            Some(Err(err)) => {
                *self.error.borrow_mut() = Some(err.to_string());
                self.flush_held();
                self.done = true;
            }
            Some(Ok((event, span))) => {
                let start = span.start.index();
                self.scan_gap(start);
                let end = match &event {
                    Event::Scalar(
                        _,
                        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted,
                        _,
                        _,
                    ) => quoted_end(self.chars, start).unwrap_or(span.end.index()),
                    _ => span.end.index(),
                };
                let line = self.line_start(start);
                if line != self.held_line {
                    self.flush_held();
                    self.held_line = line;
                }
                self.held.push_back(Token::Event(event, span));
                self.last_end = self.last_end.max(end);
            }
        }
    }
}

impl<'a, T: Copy + Into<char>> Iterator for TokenStream<'a, '_, T> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            if let Some(token) = self.ready.pop_front() {
                return Some(token);
            }
            if self.done {
                return self.held.pop_front();
            }
            self.pull();
        }
    }
}

/// The index just past the closing quote of a quoted scalar starting at `start` (the
/// parser's reported end can run past trailing comments).
fn quoted_end<T: Copy + Into<char>>(chars: &[T], start: usize) -> Option<usize> {
    let quote: char = (*chars.get(start)?).into();
    let mut i = start + 1;
    while i < chars.len() {
        let c: char = chars[i].into();
        if quote == '"' && c == '\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if quote == '\'' && chars.get(i + 1).map(|&n| n.into()) == Some('\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

struct Builder<'a, 'f, 'v, I: Iterator<Item = Token<'a>>> {
    tokens: std::iter::Peekable<I>,
    anchors: HashMap<usize, Value>,
    file: &'f str,
    visitor: Option<&'v mut dyn RootVisitor>,
    /// How many root items of the current document the visitor has seen.
    root_visited: usize,
}

impl<'a, I: Iterator<Item = Token<'a>>> Builder<'a, '_, '_, I> {
    /// Hands the root items completed since the last call to the visitor.
    fn visit_root(&mut self, items: &mut [MapItem]) -> Result<(), Error> {
        if let Some(visitor) = self.visitor.as_deref_mut() {
            if let Some(new_items) = items.get_mut(self.root_visited..) {
                if !new_items.is_empty() {
                    visitor.visit(new_items)?;
                }
            }
            self.root_visited = items.len();
        }
        Ok(())
    }

    fn visit_document(&mut self, document: &mut Value) -> Result<(), Error> {
        match document {
            Value::Map(items) => self.visit_root(items),
            _ => Ok(()),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Parse {
            file: self.file.to_string(),
            format: "YAML",
            message: message.into(),
        }
    }

    fn stream(&mut self) -> Result<Vec<Value>, Error> {
        let mut documents = Vec::new();
        let mut pending: Vec<SourceComment> = Vec::new();
        while let Some(token) = self.tokens.next() {
            match token {
                Token::Comment(comment) => pending.push(comment),
                Token::Event(Event::DocumentStart(_), _) => {
                    if let Some(visitor) = self.visitor.as_deref_mut() {
                        visitor.start_document();
                    }
                    self.root_visited = 0;
                    let mut doc = self.document(std::mem::take(&mut pending))?;
                    // Comments after the document's content belong to its root mapping.
                    while let Some(Token::Comment(_)) = self.tokens.peek() {
                        if let Some(Token::Comment(c)) = self.tokens.next() {
                            if let Value::Map(items) = &mut doc {
                                items.push(MapItem::Comment(c.text));
                            }
                        }
                    }
                    self.visit_document(&mut doc)?;
                    documents.push(doc);
                }
                Token::Event(_, _) => {}
            }
        }
        if let (Some(Value::Map(items)), false) = (documents.last_mut(), pending.is_empty()) {
            items.extend(pending.into_iter().map(|c| MapItem::Comment(c.text)));
        }
        if let Some(last) = documents.last_mut() {
            self.visit_document(last)?;
        }
        Ok(documents)
    }

    fn document(&mut self, leading: Vec<SourceComment>) -> Result<Value, Error> {
        let mut pending = leading;
        let mut root = None;
        loop {
            match self.tokens.next() {
                None => break,
                Some(Token::Comment(c)) => pending.push(c),
                Some(Token::Event(Event::DocumentEnd, _)) => break,
                Some(Token::Event(event, span)) => {
                    if root.is_some() {
                        return Err(self.error("unexpected content after the document root"));
                    }
                    let (value, trailing) =
                        self.node(event, span, std::mem::take(&mut pending), usize::MAX)?;
                    pending = trailing;
                    root = Some(value);
                }
            }
        }
        let mut root = match root {
            None | Some(Value::Null) => Value::Map(Vec::new()),
            Some(map @ Value::Map(_)) => map,
            Some(_) => {
                return Err(self
                    .error("the document root must be a mapping (sops cannot handle other roots)"))
            }
        };
        if let Value::Map(items) = &mut root {
            if items.is_empty() {
                items.extend(pending.into_iter().map(|c| MapItem::Comment(c.text)));
            } else {
                items.extend(pending.into_iter().map(|c| MapItem::Comment(c.text)));
            }
        }
        self.visit_document(&mut root)?;
        Ok(root)
    }

    /// Builds the node that starts with `event`. `leading` comments come first inside a
    /// collection. Returns the value and comments seen at its end that belong outside it.
    fn node(
        &mut self,
        event: Event<'a>,
        span: Span,
        leading: Vec<SourceComment>,
        parent_column: usize,
    ) -> Result<(Value, Vec<SourceComment>), Error> {
        match event {
            Event::Alias(id) => {
                let value = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| self.error("unknown alias"))?;
                Ok((value, leading))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(&text, style, tag.as_deref(), self.file)?;
                if anchor != 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                Ok((value, leading))
            }
            Event::MappingStart(anchor, _) => {
                let column = span.start.col();
                // Only document() asks for a node without a parent column: the root.
                let is_root = parent_column == usize::MAX;
                let (value, trailing) = self.mapping(leading, column, is_root)?;
                if anchor != 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                Ok((value, trailing))
            }
            Event::SequenceStart(anchor, _) => {
                let column = span.start.col();
                let (value, trailing) = self.sequence(leading, column)?;
                if anchor != 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                Ok((value, trailing))
            }
            _ => Err(self.error("unexpected YAML event")),
        }
    }

    fn next_token(&mut self) -> Result<Token<'a>, Error> {
        self.tokens
            .next()
            .ok_or_else(|| self.error("unexpected end of the YAML stream"))
    }

    fn mapping(
        &mut self,
        leading: Vec<SourceComment>,
        column: usize,
        is_root: bool,
    ) -> Result<(Value, Vec<SourceComment>), Error> {
        let mut items: Vec<MapItem> = leading
            .into_iter()
            .map(|c| MapItem::Comment(c.text))
            .collect();
        let mut pending: Vec<SourceComment> = Vec::new();
        loop {
            let key = match self.next_token()? {
                Token::Comment(c) => {
                    pending.push(c);
                    continue;
                }
                Token::Event(Event::MappingEnd, _) => {
                    // Trim the growth slack: large files hold many small mappings.
                    items.shrink_to_fit();
                    return Ok(split_trailing(Value::Map(items), pending, column));
                }
                Token::Event(event, span) => {
                    items.extend(pending.drain(..).map(|c| MapItem::Comment(c.text)));
                    let (key, after_key) = self.node(event, span, Vec::new(), column)?;
                    pending = after_key;
                    key_text(key, self.file)?
                }
            };
            // The value, with comments between key and value going inside a collection
            // value or above the entry for a scalar value.
            let mut between = Vec::new();
            let (value, trailing) = loop {
                match self.next_token()? {
                    Token::Comment(c) => between.push(c),
                    Token::Event(event, span) => {
                        let is_collection =
                            matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
                        if is_collection {
                            break self.node(event, span, std::mem::take(&mut between), column)?;
                        }
                        items.extend(pending.drain(..).map(|c| MapItem::Comment(c.text)));
                        items.extend(between.drain(..).map(|c| MapItem::Comment(c.text)));
                        break self.node(event, span, Vec::new(), column)?;
                    }
                }
            };
            items.extend(pending.drain(..).map(|c| MapItem::Comment(c.text)));
            items.push(MapItem::Entry(key, value));
            if is_root {
                self.visit_root(&mut items)?;
            }
            pending = trailing;
        }
    }

    fn sequence(
        &mut self,
        leading: Vec<SourceComment>,
        column: usize,
    ) -> Result<(Value, Vec<SourceComment>), Error> {
        let mut items: Vec<Value> = leading
            .into_iter()
            .map(|c| Value::Comment(c.text))
            .collect();
        let mut pending: Vec<SourceComment> = Vec::new();
        loop {
            match self.next_token()? {
                Token::Comment(c) => pending.push(c),
                Token::Event(Event::SequenceEnd, _) => {
                    items.shrink_to_fit();
                    return Ok(split_trailing(Value::Seq(items), pending, column));
                }
                Token::Event(event, span) => {
                    items.extend(pending.drain(..).map(|c| Value::Comment(c.text)));
                    let (value, trailing) = self.node(event, span, Vec::new(), column)?;
                    items.push(value);
                    pending = trailing;
                }
            }
        }
    }
}

/// Comments seen just before a collection ends stay in it when indented at least as deep
/// as its items; shallower ones belong to an enclosing collection.
fn split_trailing(
    mut value: Value,
    pending: Vec<SourceComment>,
    column: usize,
) -> (Value, Vec<SourceComment>) {
    let mut outside = Vec::new();
    let mut inside = true;
    for comment in pending {
        if inside && comment.column >= column {
            match &mut value {
                Value::Map(items) => items.push(MapItem::Comment(comment.text)),
                Value::Seq(items) => items.push(Value::Comment(comment.text)),
                _ => {}
            }
        } else {
            inside = false;
            outside.push(comment);
        }
    }
    (value, outside)
}

fn key_text(key: Value, file: &str) -> Result<String, Error> {
    Ok(match key {
        Value::Str(s) | Value::Time(s) => s,
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_float_yaml(f),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        _ => {
            return Err(Error::Parse {
                file: file.to_string(),
                format: "YAML",
                message: "Tree contains a non-string key".to_string(),
            })
        }
    })
}

fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&saphyr_parser::Tag>,
    file: &str,
) -> Result<Value, Error> {
    if let Some(tag) = tag {
        let name = if tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!" {
            tag.suffix.as_str()
        } else {
            ""
        };
        return Ok(match name {
            "str" => Value::Str(text.to_string()),
            "binary" => {
                use base64::Engine;
                let cleaned: String = text.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(cleaned)
                    .map_err(|err| Error::Parse {
                        file: file.to_string(),
                        format: "YAML",
                        message: format!("invalid !!binary value: {err}"),
                    })?;
                Value::Str(String::from_utf8_lossy(&bytes).into_owned())
            }
            "int" | "float" | "bool" | "null" | "timestamp" => {
                let resolved = resolve_plain(text);
                if matches!(resolved, Value::Str(_)) {
                    return Err(Error::Parse {
                        file: file.to_string(),
                        format: "YAML",
                        message: format!("cannot decode !!{name} value"),
                    });
                }
                resolved
            }
            "merge" => resolve_plain(text),
            _ => Value::Str(text.to_string()),
        });
    }
    Ok(match style {
        ScalarStyle::Plain => resolve_plain(text),
        _ => Value::Str(text.to_string()),
    })
}

/// Resolves a plain scalar the way go-yaml v3 does (YAML 1.2 core schema plus timestamps).
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Value::Str(text.to_string());
    }
    if let Some(time) = crate::time::parse_yaml_timestamp(text) {
        return Value::Time(time);
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(int) = parse_go_int(&plain) {
        return match int {
            GoInt::Signed(v) => Value::Int(v),
            GoInt::Unsigned => Value::Str(text.to_string()),
        };
    }
    if is_yaml_float(&plain) {
        if let Ok(v) = plain.parse::<f64>() {
            return Value::Float(v);
        }
    }
    for (prefix, neg) in [("0b", false), ("-0b", true), ("0o", false), ("-0o", true)] {
        if let Some(digits) = plain.strip_prefix(prefix) {
            let radix = if prefix.ends_with('b') { 2 } else { 8 };
            if let Ok(v) = i64::from_str_radix(digits, radix) {
                return Value::Int(if neg { -v } else { v });
            }
        }
    }
    Value::Str(text.to_string())
}

enum GoInt {
    Signed(i64),
    Unsigned,
}

/// Go's `strconv.ParseInt(s, 0, 64)` (base prefixes, leading-zero octal), falling back to
/// `ParseUint` for values above `i64::MAX`.
fn parse_go_int(s: &str) -> Option<GoInt> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u64 + 1 {
            return Some(GoInt::Signed((magnitude as i64).wrapping_neg()));
        }
        return None;
    }
    if let Ok(v) = i64::try_from(magnitude) {
        Some(GoInt::Signed(v))
    } else {
        Some(GoInt::Unsigned)
    }
}

fn is_yaml_float(s: &str) -> bool {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

// ---------------------------------------------------------------------------------------
// Emitter

/// Writes documents as sops 3.11 does (go-yaml v3, 4-space indentation).
pub fn emit(documents: &[Value]) -> String {
    let mut out = String::new();
    for (i, doc) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        emit_document(&mut out, doc, documents.len());
    }
    out
}

/// [`emit`], consuming the documents: each root entry is freed once written, so the
/// tree and the whole output text do not coexist (peak memory of large files).
pub fn emit_owned(documents: Vec<Value>) -> String {
    let mut out = String::new();
    let count = documents.len();
    for (i, doc) in documents.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        match doc {
            Value::Map(items) if has_entries_map(&items) => {
                // At indent 0 without an inline start, items are written independently.
                for item in items {
                    emit_map_items(&mut out, std::slice::from_ref(&item), 0, false);
                }
            }
            other => emit_document(&mut out, &other, count),
        }
    }
    out
}

/// Writes one document of a stream of `count`.
fn emit_document(out: &mut String, doc: &Value, count: usize) {
    match doc {
        Value::Map(items) if has_entries_map(items) => {
            emit_map_items(out, items, 0, false);
        }
        Value::Map(items) => {
            for item in items {
                if let MapItem::Comment(text) = item {
                    out.push('#');
                    out.push_str(text);
                    out.push('\n');
                }
            }
            if items.is_empty() || count == 1 {
                out.push_str("{}\n");
            }
        }
        other => {
            emit_inline(out, other, 0);
        }
    }
}

fn has_entries_map(items: &[MapItem]) -> bool {
    items.iter().any(|i| matches!(i, MapItem::Entry(..)))
}

fn has_entries_seq(items: &[Value]) -> bool {
    items.iter().any(|i| !matches!(i, Value::Comment(_)))
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

/// Writes mapping items at `indent`; when `first_inline` the cursor already stands at the
/// right column for the first line.
fn emit_map_items(out: &mut String, items: &[MapItem], indent: usize, first_inline: bool) {
    let mut first = first_inline;
    for item in items {
        if !first {
            push_indent(out, indent);
        }
        first = false;
        match item {
            MapItem::Comment(text) => {
                out.push('#');
                out.push_str(text);
                out.push('\n');
            }
            MapItem::Entry(key, value) => {
                if key == "<<" {
                    out.push_str("!!merge <<");
                } else {
                    write_string(out, key, indent, true);
                }
                out.push(':');
                emit_after_key(out, value, indent);
            }
        }
    }
}

/// go-yaml v3 indents a nested collection to the next multiple of the indentation width,
/// except inside a sequence item, where it just skips the "- " indicator.
fn nested_indent(indent: usize) -> usize {
    4 * ((indent + 4) / 4)
}

fn emit_after_key(out: &mut String, value: &Value, indent: usize) {
    let child = nested_indent(indent);
    match value {
        Value::Map(items) if has_entries_map(items) => {
            out.push('\n');
            emit_map_items(out, items, child, false);
        }
        Value::Seq(items) if has_entries_seq(items) => {
            out.push('\n');
            emit_seq_items(out, items, child, false);
        }
        other => {
            out.push(' ');
            emit_inline(out, other, child);
        }
    }
}

fn emit_seq_items(out: &mut String, items: &[Value], indent: usize, first_inline: bool) {
    let mut first = first_inline;
    for item in items {
        if !first {
            push_indent(out, indent);
        }
        first = false;
        if let Value::Comment(text) = item {
            out.push('#');
            out.push_str(text);
            out.push('\n');
            continue;
        }
        out.push_str("- ");
        match item {
            Value::Map(entries) if has_entries_map(entries) => {
                emit_map_items(out, entries, indent + 2, true);
            }
            Value::Seq(values) if has_entries_seq(values) => {
                emit_seq_items(out, values, indent + 2, true);
            }
            other => emit_inline(out, other, indent + 2),
        }
    }
}

/// Writes a scalar (or an empty collection) followed by a newline; `block_indent` is the
/// indentation of a literal block's content.
fn emit_inline(out: &mut String, value: &Value, block_indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float_yaml(*f)),
        Value::Time(t) => out.push_str(t),
        Value::Str(s) => write_string(out, s, block_indent, false),
        Value::Comment(text) => {
            out.push('#');
            out.push_str(text);
        }
        Value::Map(_) => out.push_str("{}"),
        Value::Seq(_) => out.push_str("[]"),
    }
    out.push('\n');
}

#[derive(Default)]
struct ScalarAnalysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let c = c as u32;
    c == 0x0A
        || (0x20..=0x7E).contains(&c)
        || (0xA0..=0xD7FF).contains(&c)
        || ((0xE000..=0xFFFD).contains(&c) && c != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    c.is_none_or(|c| c == ' ' || c == '\t' || is_break(c) || c == '\0')
}

/// libyaml's `yaml_emitter_analyze_scalar`, block context only.
fn analyze(value: &str) -> ScalarAnalysis {
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = false;
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let mut line_breaks = false;
    if value.starts_with("---") || value.starts_with("...") {
        block_indicators = true;
    }
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = is_blank_or_end(chars.get(i + 1).copied());
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_break = true;
            previous_space = false;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c);
    }
    let mut analysis = ScalarAnalysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        analysis.block_plain_allowed = false;
    }
    if trailing_space {
        analysis.block_allowed = false;
    }
    if break_space {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
    }
    if space_break || special {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
        analysis.block_allowed = false;
    }
    if line_breaks || block_indicators {
        analysis.block_plain_allowed = false;
    }
    analysis
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, _frac) = match body.split_once('.') {
        Some((m, f)) if f.chars().all(|c| c.is_ascii_digit() || c == '_') => (m, Some(f)),
        Some(_) => return false,
        None => (body, None),
    };
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut count = 0;
    for part in parts {
        count += 1;
        let ok = match part.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    count > 0
}

/// Writes a string scalar choosing the style go-yaml v3 would.
fn write_string(out: &mut String, s: &str, block_indent: usize, is_key: bool) {
    let analysis = analyze(s);
    let wants_literal = s.contains('\n');
    let forced_quotes =
        !matches!(resolve_plain(s), Value::Str(_)) || is_base60_float(s) || is_old_bool(s);
    if wants_literal && !is_key {
        if analysis.block_allowed {
            write_literal(out, s, block_indent);
            return;
        }
        write_double_quoted(out, s);
        return;
    }
    if forced_quotes || (is_key && analysis.multiline) {
        write_double_quoted(out, s);
        return;
    }
    if analysis.block_plain_allowed && !s.is_empty() {
        out.push_str(s);
    } else if analysis.single_quoted_allowed {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        write_double_quoted(out, s);
    }
}

fn write_literal(out: &mut String, s: &str, indent: usize) {
    out.push('|');
    let first = s.chars().next();
    if first.is_some_and(|c| c == ' ' || is_break(c)) {
        out.push('4');
    }
    let body = if let Some(stripped) = s.strip_suffix('\n') {
        if stripped.is_empty() || stripped.ends_with('\n') {
            out.push('+');
        }
        stripped
    } else {
        out.push('-');
        s
    };
    out.push('\n');
    let mut lines = body.split('\n').peekable();
    while let Some(line) = lines.next() {
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
        if lines.peek().is_some() {
            out.push('\n');
        }
    }
    // The caller adds the final newline.
    if out.ends_with('\n') && body.ends_with('\n') {
        // an empty last line is already terminated
    }
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        let code = c as u32;
        if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
            out.push('\\');
            match c {
                '\0' => out.push('0'),
                '\u{7}' => out.push('a'),
                '\u{8}' => out.push('b'),
                '\t' => out.push('t'),
                '\n' => out.push('n'),
                '\u{B}' => out.push('v'),
                '\u{C}' => out.push('f'),
                '\r' => out.push('r'),
                '\u{1B}' => out.push('e'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '\u{85}' => out.push('N'),
                '\u{A0}' => out.push('_'),
                '\u{2028}' => out.push('L'),
                '\u{2029}' => out.push('P'),
                _ if code <= 0xFF => {
                    let _ = write!(out, "x{code:02X}");
                }
                _ if code <= 0xFFFF => {
                    let _ = write!(out, "u{code:04X}");
                }
                _ => {
                    let _ = write!(out, "U{code:08X}");
                }
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_like_go_yaml() {
        assert_eq!(resolve_plain("42"), Value::Int(42));
        assert_eq!(resolve_plain("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain("0o17"), Value::Int(15));
        assert_eq!(resolve_plain("1.5e3"), Value::Float(1500.0));
        assert_eq!(resolve_plain("yes"), Value::Str("yes".into()));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert!(matches!(
            resolve_plain("99999999999999999999"),
            Value::Float(_)
        ));
    }

    #[test]
    fn strings_pick_go_yaml_styles() {
        let cases = [
            ("plain", "plain"),
            ("yes", "\"yes\""),
            ("0123", "\"0123\""),
            (": starts with colon", "': starts with colon'"),
            ("p@ss: w0rd # x", "'p@ss: w0rd # x'"),
            ("a\tb", "\"a\\tb\""),
            ("🔐 s", "\"\\U0001F510 s\""),
            ("", "\"\""),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            write_string(&mut out, input, 0, false);
            assert_eq!(out, expected, "for {input:?}");
        }
    }

    #[test]
    fn inline_comment_after_quoted_value_moves_above() {
        let docs = load("a: \"1.10\"   # note\nb: 'x' # two\n", "t.yaml").unwrap();
        assert_eq!(emit(&docs), "# note\na: \"1.10\"\n# two\nb: x\n");
    }

    #[test]
    fn round_trips_comments_and_nesting() {
        let src = "# head\na: 1\nb:\n    # inner\n    c: x\nl:\n    - 1\n    # mid\n    - - 2\n      - 3\n";
        let docs = load(src, "t.yaml").unwrap();
        assert_eq!(emit(&docs), src);
    }
}
