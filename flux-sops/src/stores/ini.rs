//! The INI store (go-ini rules): sections as top-level mappings, `DEFAULT` for keys before
//! the first section, comments attached to the following key or section.

use crate::cipher::plaintext_of;
use crate::tree::{MapItem, Value};
use crate::Error;

fn strip_comment_marker(line: &str) -> String {
    line.trim_start_matches([';', '#']).trim().to_string()
}

fn unquote(value: &str) -> String {
    for quote in ["\"\"\"", "`", "\"", "'"] {
        if value.len() >= 2 * quote.len() && value.starts_with(quote) && value.ends_with(quote) {
            return value[quote.len()..value.len() - quote.len()].to_string();
        }
    }
    value.to_string()
}

/// Parses an INI file into the document (one mapping per section) and the `[sops]`
/// section's fields.
pub fn load(text: &str, file: &str) -> Result<(Value, Vec<(String, String)>), Error> {
    let mut sections: Vec<MapItem> = Vec::new();
    let mut current: (String, Vec<MapItem>) = ("DEFAULT".to_string(), Vec::new());
    let mut pending: Vec<String> = Vec::new();
    let mut metadata = Vec::new();
    let mut in_sops = false;
    let flush = |sections: &mut Vec<MapItem>, current: (String, Vec<MapItem>)| {
        if current.0 != "DEFAULT" || !current.1.is_empty() {
            sections.push(MapItem::Entry(current.0, Value::Map(current.1)));
        }
    };
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with(';') || line.starts_with('#') {
            pending.push(strip_comment_marker(line));
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            let name = line[1..line.len() - 1].trim().to_string();
            let previous = std::mem::replace(&mut current, (name.clone(), Vec::new()));
            if !in_sops {
                flush(&mut sections, previous);
            }
            in_sops = name == "sops";
            // A section comment becomes the first item of the section.
            current.1.extend(pending.drain(..).map(MapItem::Comment));
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            return Err(Error::Parse {
                file: file.to_string(),
                format: "INI",
                message: format!("line {} has no key/value delimiter", number + 1),
            });
        };
        let key = line[..split].trim().to_string();
        let mut value = line[split + 1..].trim().to_string();
        let quoted = ["\"", "'", "`"].iter().any(|q| value.starts_with(q));
        if quoted {
            value = unquote(&value);
        } else if let Some(i) = value.find(['#', ';']) {
            pending.push(strip_comment_marker(&value[i..]));
            value = value[..i].trim().to_string();
        }
        if in_sops {
            metadata.push((key, value));
            pending.clear();
            continue;
        }
        current.1.extend(pending.drain(..).map(MapItem::Comment));
        current.1.push(MapItem::Entry(key, Value::Str(value)));
    }
    if !in_sops {
        flush(&mut sections, current);
    }
    Ok((Value::Map(sections), metadata))
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => plaintext_of(other)
            .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default(),
    }
}

fn write_section(
    out: &mut String,
    name: Option<&str>,
    items: &[MapItem],
    header_comments: &[&str],
) {
    for comment in header_comments {
        out.push_str("; ");
        out.push_str(comment);
        out.push('\n');
    }
    if let Some(name) = name {
        out.push('[');
        out.push_str(name);
        out.push_str("]\n");
    }
    let width = items
        .iter()
        .filter_map(|i| match i {
            MapItem::Entry(k, _) => Some(k.chars().count()),
            MapItem::Comment(_) => None,
        })
        .max()
        .unwrap_or(0);
    for item in items {
        match item {
            MapItem::Comment(text) => {
                out.push_str("; ");
                out.push_str(text);
                out.push('\n');
            }
            MapItem::Entry(key, value) => {
                out.push_str(key);
                for _ in key.chars().count()..width {
                    out.push(' ');
                }
                out.push_str(" = ");
                out.push_str(&scalar_text(value));
                out.push('\n');
            }
        }
    }
}

/// Writes the document, and the `[sops]` section when metadata is given.
pub fn emit(
    doc: &Value,
    metadata: Option<&[(String, String)]>,
    file: &str,
) -> Result<String, Error> {
    let Value::Map(sections) = doc else {
        return Err(Error::Emit {
            file: file.to_string(),
            message: "INI needs sections".into(),
        });
    };
    let mut blocks: Vec<String> = Vec::new();
    let mut top_comments: Vec<&str> = Vec::new();
    for item in sections {
        match item {
            MapItem::Comment(text) => top_comments.push(text),
            MapItem::Entry(name, Value::Map(items)) => {
                // Comments before the first key are the section's own comments.
                let lead = items
                    .iter()
                    .take_while(|i| matches!(i, MapItem::Comment(_)))
                    .count();
                let mut header: Vec<&str> = std::mem::take(&mut top_comments);
                let is_default = name == "DEFAULT";
                let (head, rest) = if is_default {
                    (&items[..0], &items[..])
                } else {
                    items.split_at(lead)
                };
                header.extend(head.iter().filter_map(|i| match i {
                    MapItem::Comment(t) => Some(t.as_str()),
                    MapItem::Entry(..) => None,
                }));
                let mut block = String::new();
                write_section(
                    &mut block,
                    (!is_default).then_some(name.as_str()),
                    rest,
                    &header,
                );
                blocks.push(block);
            }
            MapItem::Entry(name, _) => {
                return Err(Error::Emit {
                    file: file.to_string(),
                    message: format!("INI value {name:?} is not inside a section"),
                })
            }
        }
    }
    if let Some(pairs) = metadata {
        let items: Vec<MapItem> = pairs
            .iter()
            .map(|(k, v)| MapItem::Entry(k.clone(), Value::Str(v.clone())))
            .collect();
        let mut block = String::new();
        write_section(&mut block, Some("sops"), &items, &[]);
        blocks.push(block);
    }
    Ok(blocks.join("\n"))
}
