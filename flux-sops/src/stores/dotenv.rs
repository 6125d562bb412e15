//! The dotenv store: `KEY=value` lines, `#` comments, metadata as `sops_` lines.

use crate::cipher::plaintext_of;
use crate::tree::{MapItem, Value};
use crate::Error;

/// Parses a dotenv file into the document and the flattened metadata pairs.
pub fn load(text: &str, file: &str) -> Result<(Value, Vec<(String, String)>), Error> {
    let mut items = Vec::new();
    let mut metadata = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            items.push(MapItem::Comment(comment.to_string()));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::Parse {
                file: file.to_string(),
                format: "dotenv",
                message: format!("invalid dotenv input line {}", number + 1),
            });
        };
        if let Some(field) = key.strip_prefix("sops_") {
            metadata.push((field.to_string(), value.to_string()));
        } else {
            items.push(MapItem::Entry(
                key.to_string(),
                Value::Str(value.replace("\\n", "\n")),
            ));
        }
    }
    Ok((Value::Map(items), metadata))
}

/// Writes the document (and, when given, the sorted metadata lines).
pub fn emit(
    doc: &Value,
    metadata: Option<&[(String, String)]>,
    file: &str,
) -> Result<String, Error> {
    let mut out = String::new();
    let Value::Map(items) = doc else {
        return Err(Error::Emit {
            file: file.to_string(),
            message: "dotenv needs a flat mapping".into(),
        });
    };
    for item in items {
        match item {
            MapItem::Comment(text) => {
                out.push('#');
                out.push_str(text);
                out.push('\n');
            }
            MapItem::Entry(key, value) => {
                let text = match value {
                    Value::Map(_) | Value::Seq(_) => {
                        return Err(Error::Emit {
                            file: file.to_string(),
                            message: format!("cannot write the nested value of {key:?} as dotenv"),
                        })
                    }
                    Value::Null => String::new(),
                    other => plaintext_of(other)
                        .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
                        .unwrap_or_default(),
                };
                out.push_str(key);
                out.push('=');
                out.push_str(&text.replace('\n', "\\n"));
                out.push('\n');
            }
        }
    }
    if let Some(pairs) = metadata {
        let mut pairs: Vec<&(String, String)> = pairs.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in pairs {
            out.push_str("sops_");
            out.push_str(key);
            out.push('=');
            out.push_str(value);
            out.push('\n');
        }
    }
    Ok(out)
}
