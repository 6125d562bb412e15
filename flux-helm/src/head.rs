//! A fast, conservative reader of the few fields Helm reads from each rendered document
//! (`kind`, `metadata.name` and the hook annotations).
//!
//! Helm parses every rendered document to sort it, which fails the render on invalid YAML. A
//! full parse of every document was a fifth of a render, so this scanner checks the block
//! structure line by line for the plain subset that rendered manifests nearly always use
//! (block mappings and sequences, one-line plain and quoted scalars, block scalars, `{}`/`[]`).
//! Whenever it meets anything outside that subset it answers `None`, and the caller does the
//! full parse, which also produces the error messages. So it never accepts a document the full
//! parse would reject.

/// The head fields of a document: raw scalar text as written (quotes included).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RawHead<'a> {
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
    pub hook: Option<&'a str>,
    pub weight: Option<&'a str>,
    pub delete_policy: Option<&'a str>,
    /// `metadata:`/`annotations:` seen: a second one replaces the first in the full parse.
    metadata_seen: bool,
    annotations_seen: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

/// An open block collection.
struct Level {
    indent: usize,
    kind: Kind,
    /// A sequence written at its parent key's indentation (`key:\n- a`).
    indentless: bool,
    /// Nesting depth of mappings from the top, for the head paths.
    path: Path,
}

/// Where a mapping sits, as far as the head fields care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Top,
    Metadata,
    Annotations,
    Other,
}

/// A line that opened a node whose value comes on the next lines.
enum Pending {
    /// `key:` at this indent, opening a node at this path.
    Key(usize, Path),
    /// `-` alone at this indent.
    Item(usize),
}

/// Scans `doc`; `None` when the document is outside the subset (then parse it fully).
pub fn scan(doc: &str) -> Option<RawHead<'_>> {
    if !doc.bytes().all(|b| b == b'\n' || (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut head = RawHead::default();
    let mut stack: Vec<Level> = Vec::new();
    let mut pending: Option<Pending> = None;
    // Block scalar: lines indented more than this belong to it.
    let mut block: Option<(usize, Option<usize>, usize)> = None;
    // After a one-line scalar value at this indent, a deeper line would continue it.
    let mut scalar_at: Option<usize> = None;
    for line in doc.split('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        if let Some((parent, content_indent, blank_max)) = block {
            if content.is_empty() {
                block = Some((parent, content_indent, blank_max.max(indent)));
                continue;
            }
            match content_indent {
                None if indent > parent => {
                    if blank_max > indent {
                        return None;
                    }
                    block = Some((parent, Some(indent), 0));
                    continue;
                }
                Some(ci) if indent >= ci => continue,
                _ => block = None,
            }
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if indent == 0 && (content.starts_with("---") || content.starts_with("...")) {
            return None;
        }
        if scalar_at.is_some_and(|at| indent > at) {
            return None;
        }
        scalar_at = None;
        let kind = if content == "-" || content.starts_with("- ") {
            Kind::Seq
        } else {
            Kind::Map
        };
        // Attach to the node a previous `key:` or `-` opened, or close it (a null value).
        let mut opened = false;
        if let Some(p) = pending.take() {
            match p {
                Pending::Key(at, path) => {
                    if indent > at || (indent == at && kind == Kind::Seq) {
                        stack.push(Level {
                            indent,
                            kind,
                            indentless: indent == at,
                            path,
                        });
                        opened = true;
                    }
                }
                Pending::Item(at) => {
                    if indent > at {
                        stack.push(Level {
                            indent,
                            kind,
                            indentless: false,
                            path: Path::Other,
                        });
                        opened = true;
                    }
                }
            }
        }
        if !opened {
            while let Some(top) = stack.last() {
                if top.indent > indent
                    || (top.indent == indent && top.indentless && kind == Kind::Map)
                {
                    stack.pop();
                } else {
                    break;
                }
            }
            match stack.last() {
                Some(top) if top.indent == indent && top.kind == kind => {}
                None if indent == 0 => {
                    if kind != Kind::Map {
                        return None;
                    }
                    stack.push(Level {
                        indent,
                        kind,
                        indentless: false,
                        path: Path::Top,
                    });
                }
                _ => return None,
            }
        }
        match kind {
            Kind::Map => {
                let path = stack.last()?.path;
                let (key, value) = split_key(content)?;
                let outcome = entry(&mut head, path, key, value)?;
                match outcome {
                    Value::Nested => pending = Some(Pending::Key(indent, child(path, key))),
                    Value::Block => block = Some((indent, None, 0)),
                    Value::Scalar => scalar_at = Some(indent),
                }
            }
            Kind::Seq => {
                let rest = content[1..].trim_start_matches(' ');
                let inner = indent + (content.len() - rest.len());
                if rest.is_empty() || rest.starts_with('#') {
                    pending = Some(Pending::Item(indent));
                } else if rest == "-" || rest.starts_with("- ") {
                    return None;
                } else if let Some((key, value)) = compact_key(rest) {
                    // `- key: value`: a mapping whose entries sit at the key's column.
                    stack.push(Level {
                        indent: inner,
                        kind: Kind::Map,
                        indentless: false,
                        path: Path::Other,
                    });
                    match entry(&mut head, Path::Other, key, value)? {
                        Value::Nested => pending = Some(Pending::Key(inner, Path::Other)),
                        Value::Block => block = Some((inner, None, 0)),
                        Value::Scalar => scalar_at = Some(inner),
                    }
                } else {
                    match value_kind(rest)? {
                        Value::Nested => return None,
                        Value::Block => block = Some((indent, None, 0)),
                        Value::Scalar => scalar_at = Some(indent),
                    }
                }
            }
        }
    }
    if let Some((_, None, blank_max)) = block {
        // A block scalar with only blank lines: leave the chomping details to the parser.
        if blank_max > 0 {
            return None;
        }
    }
    Some(head)
}

fn child(path: Path, key: &str) -> Path {
    match (path, key) {
        (Path::Top, "metadata") => Path::Metadata,
        (Path::Metadata, "annotations") => Path::Annotations,
        _ => Path::Other,
    }
}

/// What a value starts.
enum Value {
    /// Nothing on this line: a nested node (or null) follows.
    Nested,
    /// A block scalar header (`|`, `>-`, ...).
    Block,
    /// A complete one-line scalar.
    Scalar,
}

/// Records a head field; `None` for a value outside the subset or a repeated head key.
fn entry<'a>(head: &mut RawHead<'a>, path: Path, key: &str, value: &'a str) -> Option<Value> {
    let kind = value_kind(value)?;
    let slot = match (path, key) {
        (Path::Top, "kind") => Some(&mut head.kind),
        (Path::Metadata, "name") => Some(&mut head.name),
        (Path::Annotations, "helm.sh/hook") => Some(&mut head.hook),
        (Path::Annotations, "helm.sh/hook-weight") => Some(&mut head.weight),
        (Path::Annotations, "helm.sh/hook-delete-policy") => Some(&mut head.delete_policy),
        // A repeated `metadata` or `annotations` could hide head fields in a second block.
        (Path::Top, "metadata") | (Path::Metadata, "annotations") => {
            let seen = if key == "metadata" {
                &mut head.metadata_seen
            } else {
                &mut head.annotations_seen
            };
            if *seen || !matches!(kind, Value::Nested) {
                return None;
            }
            *seen = true;
            None
        }
        _ => None,
    };
    if let Some(slot) = slot {
        if slot.is_some() || !matches!(kind, Value::Scalar) {
            return None;
        }
        *slot = Some(scalar_text(value));
    }
    Some(kind)
}

/// The scalar without a trailing comment.
fn scalar_text(value: &str) -> &str {
    let end = value.find(" #").unwrap_or(value.len());
    value[..end].trim_end_matches(' ')
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

/// `key: value` or `key:` with a plain key of safe characters.
fn split_key(content: &str) -> Option<(&str, &str)> {
    let bytes = content.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_alphanumeric() || first == b'_' || first == b'/' || first == b'.') {
        return None;
    }
    let end = bytes.iter().position(|b| !is_key_byte(*b))?;
    if bytes[end] != b':' {
        return None;
    }
    let key = &content[..end];
    let after = &content[end + 1..];
    if after.is_empty() {
        return Some((key, ""));
    }
    let value = after.strip_prefix(' ')?;
    Some((key, value.trim_start_matches(' ')))
}

/// The mapping entry of a `- key: value` line, if it is one.
fn compact_key(rest: &str) -> Option<(&str, &str)> {
    let end = rest.bytes().position(|b| !is_key_byte(b))?;
    if end == 0 || rest.as_bytes()[end] != b':' {
        return None;
    }
    split_key(rest)
}

/// Classifies a value; `None` when it is outside the subset.
fn value_kind(value: &str) -> Option<Value> {
    let value = value.trim_end_matches(' ');
    let Some(&first) = value.as_bytes().first() else {
        return Some(Value::Nested);
    };
    match first {
        b'#' => Some(Value::Nested),
        b'{' | b'[' => {
            let rest = if value.starts_with("{}") || value.starts_with("[]") {
                &value[2..]
            } else {
                return None;
            };
            trailing_ok(rest).then_some(Value::Scalar)
        }
        b'|' | b'>' => {
            let rest = &value[1..];
            let rest = rest
                .strip_prefix('-')
                .or_else(|| rest.strip_prefix('+'))
                .unwrap_or(rest);
            trailing_ok(rest).then_some(Value::Block)
        }
        b'"' => {
            let bytes = value.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => return trailing_ok(&value[i + 1..]).then_some(Value::Scalar),
                    b'\\' => {
                        let hex = match bytes.get(i + 1)? {
                            b'\\' | b'"' | b'/' | b'n' | b't' | b'r' | b'b' | b'f' | b'0'
                            | b'a' | b'v' | b'e' => 0,
                            b'x' => 2,
                            b'u' => 4,
                            b'U' => 8,
                            _ => return None,
                        };
                        let digits = bytes.get(i + 2..i + 2 + hex)?;
                        if !digits.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        i += 2 + hex;
                    }
                    _ => i += 1,
                }
            }
            None
        }
        b'\'' => {
            let bytes = value.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return trailing_ok(&value[i + 1..]).then_some(Value::Scalar);
                }
                i += 1;
            }
            None
        }
        b']' | b'}' | b',' | b'&' | b'*' | b'!' | b'%' | b'@' | b'`' => None,
        b'?' | b':' => None,
        b'-' if value.len() == 1 || value.as_bytes()[1] == b' ' => None,
        _ => {
            // A plain scalar ends at ` #`; inside it `: ` or a final `:` would be a mapping.
            let text = scalar_text(value);
            if text.contains(": ") || text.ends_with(':') {
                return None;
            }
            Some(Value::Scalar)
        }
    }
}

/// What may follow a complete value on its line: spaces, then nothing or a comment.
fn trailing_ok(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_of_a_plain_manifest() {
        let doc = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: \"rel-hook\"\n  labels:\n    app: x\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-weight: \"-5\"\n    helm.sh/hook-delete-policy: before-hook-creation # why\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        args:\n          - --flag=1\n        command: []\n        script: |\n          echo hi: there\n\n          # not a comment\n      resources: {}\n";
        let head = scan(doc).expect("in the subset");
        assert_eq!(head.kind, Some("Job"));
        assert_eq!(head.name, Some("\"rel-hook\""));
        assert_eq!(head.hook, Some("pre-install,pre-upgrade"));
        assert_eq!(head.weight, Some("\"-5\""));
        assert_eq!(head.delete_policy, Some("before-hook-creation"));
    }

    #[test]
    fn nested_names_are_not_the_head() {
        let doc = "kind: ConfigMap\ndata:\n  name: x\nspec:\n  metadata:\n    name: y\n";
        let head = scan(doc).expect("in the subset");
        assert_eq!(head.name, None);
    }

    #[test]
    fn leaves_everything_else_to_the_full_parser() {
        for doc in [
            "kind: A\n  bad: indent\n",
            "kind: A\nkind: B\n",
            "a: b: c\n",
            "a: {x: 1}\n",
            "a: &anchor x\n",
            "a: plain\n  continued\n",
            "a: \"open\n",
            "- a\n",
            "a:\n\t- tab\n",
            "\"quoted\": key\n",
            "a: |2\n   x\n",
            "metadata:\n  name: a\nmetadata:\n  name: b\n",
            "metadata:\n  name: a\nmetadata:\n  labels: {}\n",
            "a: :x\n",
            "a:\n- x\n - y\n",
            "a: 'it''s\n",
            "a: \"\\q\"\n",
        ] {
            assert_eq!(scan(doc), None, "{doc:?}");
        }
    }

    #[test]
    fn agrees_with_the_full_parser_on_valid_documents() {
        for doc in [
            "a:\n- x\n- y: 1\n  z: 2\nb: c\n",
            "a:\n  - x\n  -\n    y: 1\n",
            "kind: 'Sec''ret'\nmetadata:\n  name: n # c\n",
            "a: |-\n  x\n   y\nb: >\n  folded\n\nc: d\n",
            "# only a comment\n",
            "kind: 5\n",
        ] {
            assert!(scan(doc).is_some(), "{doc:?}");
            crate::yaml::parse(doc).expect("valid");
        }
    }
}
