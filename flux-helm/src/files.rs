//! `.Files`: the chart's non-template files and their accessors.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;

use crate::value::Value;

/// A chart's extra files, keyed by path relative to the chart root.
#[derive(Debug, Default, Clone)]
pub struct Files {
    pub files: BTreeMap<String, Rc<Vec<u8>>>,
}

impl Files {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `Get`, keeping binary content as bytes.
    pub fn get_value(&self, name: &str) -> Value {
        match self.files.get(name) {
            None => Value::str(""),
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => Value::str(s),
                Err(_) => Value::Bytes(Rc::from(b.as_slice())),
            },
        }
    }

    pub fn get(&self, name: &str) -> String {
        self.files
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// `Glob`: a gobwas-style glob with `/` as separator.
    pub fn glob(&self, pattern: &str) -> Files {
        let Some(re) = glob_regex(pattern) else {
            return Files::default();
        };
        Files {
            files: self
                .files
                .iter()
                .filter(|(k, _)| re.is_match(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn base_map(&self, encode: bool) -> Value {
        let mut m = BTreeMap::new();
        for (k, v) in &self.files {
            let base = k.rsplit('/').next().unwrap_or(k).to_string();
            let content = if encode {
                base64::engine::general_purpose::STANDARD.encode(v.as_slice())
            } else {
                String::from_utf8_lossy(v).into_owned()
            };
            m.insert(base, Value::string(content));
        }
        Value::from_map(m)
    }

    pub fn as_config(&self) -> String {
        if self.files.is_empty() {
            return String::new();
        }
        crate::yaml::to_yaml(&self.base_map(false))
    }

    pub fn as_secrets(&self) -> String {
        if self.files.is_empty() {
            return String::new();
        }
        crate::yaml::to_yaml(&self.base_map(true))
    }

    pub fn lines(&self, name: &str) -> Value {
        match self.files.get(name) {
            None => Value::list(Vec::new()),
            Some(b) => {
                let s = String::from_utf8_lossy(b);
                Value::list(s.split('\n').map(Value::str).collect())
            }
        }
    }
}

/// Translates a gobwas glob (separator `/`) to a regex.
pub fn glob_regex(pattern: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_alt = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    re.push_str(".*");
                    i += 1;
                } else {
                    re.push_str("[^/]*");
                }
            }
            '?' => re.push_str("[^/]"),
            '{' => {
                in_alt = true;
                re.push_str("(?:");
            }
            '}' if in_alt => {
                in_alt = false;
                re.push(')');
            }
            ',' if in_alt => re.push('|'),
            '[' => {
                let end = chars[i..].iter().position(|&x| x == ']')?;
                let class: String = chars[i + 1..i + end].iter().collect();
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |c| format!("^{c}"));
                re.push('[');
                re.push_str(&class);
                re.push(']');
                i += end;
            }
            '\\' => {
                i += 1;
                if let Some(n) = chars.get(i) {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let mut f = Files::default();
        f.files
            .insert("files/a.json".into(), Rc::new(b"{}".to_vec()));
        f.files
            .insert("files/sub/b.json".into(), Rc::new(b"x".to_vec()));
        assert_eq!(f.glob("files/*.json").files.len(), 1);
        assert_eq!(f.glob("files/**.json").files.len(), 2);
        assert_eq!(f.glob("files/{a,c}.json").files.len(), 1);
        assert_eq!(f.as_config(), "a.json: '{}'\nb.json: x");
    }
}
