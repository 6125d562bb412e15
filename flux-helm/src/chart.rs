//! Loading charts from directories and `.tgz` archives.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::files::Files;
use crate::value::Value;

/// A dependency entry from `Chart.yaml` (`requirements.yaml` for v1 charts).
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub alias: Option<String>,
    pub condition: Option<String>,
    pub tags: Vec<String>,
    /// `import-values`: which child values the parent imports.
    pub import_values: Vec<ImportValue>,
}

/// One `import-values` entry of a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportValue {
    /// The string form `- name`: the child's `exports.<name>` table, merged at the parent's
    /// top level.
    Exports(String),
    /// The map form `- child: a.b` / `parent: c.d` (`.` for the top level).
    ChildParent { child: String, parent: String },
}

/// A loaded chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml` as a map.
    pub metadata: Value,
    /// The name used for values scoping and template paths (an alias when aliased).
    pub name: String,
    pub chart_type: String,
    pub kube_version: String,
    pub dependencies: Vec<Dependency>,
    /// `values.yaml`.
    pub values: Value,
    pub schema: Option<String>,
    /// `templates/...` files, path relative to the chart root.
    pub templates: Vec<(String, String)>,
    /// Every other file.
    pub files: Files,
    pub subcharts: Vec<Chart>,
}

impl Chart {
    pub fn is_library(&self) -> bool {
        self.chart_type == "library"
    }

    /// The `crds/` files with a manifest extension.
    pub fn crd_files(&self) -> Vec<(String, Rc<Vec<u8>>)> {
        self.files
            .files
            .iter()
            .filter(|(k, _)| {
                k.starts_with("crds/")
                    && (k.ends_with(".yaml") || k.ends_with(".yml") || k.ends_with(".json"))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Loads a chart from a directory or a `.tgz` file.
pub fn load(path: &Path) -> Result<Chart> {
    let files = if path.is_dir() {
        read_dir(path)?
    } else {
        let data = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        read_archive(&data, &path.display().to_string())?
    };
    from_files(files, &path.display().to_string())
}

/// Loads a chart from the bytes of a `.tgz` archive.
pub fn load_archive(data: &[u8], name: &str) -> Result<Chart> {
    let files = read_archive(data, name)?;
    from_files(files, name)
}

/// Packages the chart directory `dir` as `helm package` lays it out: a gzipped tar whose
/// entries sit under `<chart name>/`, `.helmignore` applied.
pub fn package(dir: &Path) -> Result<Vec<u8>> {
    let chart = load(dir)?;
    let files = read_dir(dir)?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    for (rel, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                format!("{}/{rel}", chart.name),
                data.as_slice(),
            )
            .map_err(io)?;
    }
    let gz = builder.into_inner().map_err(io)?;
    gz.finish().map_err(io)
}

fn read_dir(root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let ignore = match std::fs::read_to_string(root.join(".helmignore")) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(_) => IgnoreRules::default(),
    };
    let mut out = Vec::new();
    walk(root, root, &ignore, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &IgnoreRules,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    let io_err = |p: &Path, source| Error::Io {
        path: p.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(std::result::Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let meta = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?;
        if meta.is_dir() {
            if ignore.ignored(&rel, true) {
                continue;
            }
            walk(root, &path, ignore, out)?;
        } else {
            if ignore.ignored(&rel, false) {
                continue;
            }
            let data = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
            out.push((rel, data));
        }
    }
    Ok(())
}

fn read_archive(data: &[u8], name: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let gz = flate2::read::GzDecoder::new(data);
    let mut archive = tar::Archive::new(gz);
    let mut raw = Vec::new();
    let entries = archive.entries().map_err(|source| Error::Io {
        path: name.to_string(),
        source,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| Error::Io {
            path: name.to_string(),
            source,
        })?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|source| Error::Io {
                path: name.to_string(),
                source,
            })?
            .to_string_lossy()
            .replace('\\', "/");
        // Strip the top-level directory.
        let Some((_, rel)) = path.split_once('/') else {
            continue;
        };
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(|source| Error::Io {
            path: name.to_string(),
            source,
        })?;
        raw.push((rel.to_string(), buf));
    }
    let ignore = raw
        .iter()
        .find(|(p, _)| p == ".helmignore")
        .map(|(_, d)| IgnoreRules::parse(&String::from_utf8_lossy(d)))
        .unwrap_or_default();
    let mut out: Vec<(String, Vec<u8>)> = raw
        .into_iter()
        .filter(|(p, _)| {
            // A file is ignored when it or any parent directory is.
            let parts: Vec<&str> = p.split('/').collect();
            for i in 1..parts.len() {
                if ignore.ignored(&parts[..i].join("/"), true) {
                    return false;
                }
            }
            !ignore.ignored(p, false)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn str_field(m: &Value, key: &str) -> String {
    match m.get(key) {
        Some(Value::Str(s)) => s.to_string(),
        Some(Value::Float(f)) => crate::value::format_go_float(f),
        _ => String::new(),
    }
}

fn parse_deps(v: Option<Value>) -> Vec<Dependency> {
    let Some(Value::List(l)) = v else {
        return Vec::new();
    };
    l.iter()
        .map(|d| Dependency {
            name: str_field(d, "name"),
            alias: Some(str_field(d, "alias")).filter(|s| !s.is_empty()),
            condition: Some(str_field(d, "condition")).filter(|s| !s.is_empty()),
            tags: match d.get("tags") {
                Some(Value::List(t)) => t.iter().map(Value::go_string).collect(),
                _ => Vec::new(),
            },
            import_values: match d.get("import-values") {
                Some(Value::List(items)) => items.iter().filter_map(import_value).collect(),
                _ => Vec::new(),
            },
        })
        .collect()
}

/// Helm keeps string entries and `child`/`parent` maps (each side printed with Go's `%v`, so
/// a missing side reads `<nil>`); other entries are ignored.
fn import_value(item: &Value) -> Option<ImportValue> {
    match item {
        Value::Str(s) => Some(ImportValue::Exports(s.to_string())),
        Value::Map(_) => {
            let side = |k: &str| item.get(k).unwrap_or(Value::Nil).go_string();
            Some(ImportValue::ChildParent {
                child: side("child"),
                parent: side("parent"),
            })
        }
        _ => None,
    }
}

/// Builds a chart from its files (paths relative to the chart root).
pub fn from_files(files: Vec<(String, Vec<u8>)>, origin: &str) -> Result<Chart> {
    let mut metadata = None;
    let mut values = Value::new_map();
    let mut schema = None;
    let mut templates = Vec::new();
    let mut other = Files::default();
    let mut requirements = None;
    let mut sub_dirs: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let mut sub_archives = Vec::new();
    for (name, data) in files {
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "Chart.yaml" => {
                let m = crate::yaml::parse(&text()).map_err(|message| Error::Yaml {
                    path: format!("{origin}/Chart.yaml"),
                    message,
                })?;
                metadata = Some(m);
            }
            "values.yaml" => {
                values = match crate::yaml::parse(&text()) {
                    Ok(Value::Nil) => Value::new_map(),
                    Ok(v @ Value::Map(_)) => v,
                    Ok(_) => Value::new_map(),
                    Err(message) => {
                        return Err(Error::Yaml {
                            path: format!("{origin}/values.yaml"),
                            message,
                        })
                    }
                };
            }
            "values.schema.json" => schema = Some(text()),
            "requirements.yaml" => requirements = crate::yaml::parse(&text()).ok(),
            n if n.starts_with("templates/") => {
                // Take the bytes over when they are UTF-8 (nearly always) instead of copying.
                let text = String::from_utf8(data)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                templates.push((name.clone(), text));
            }
            n if n.starts_with("charts/") => {
                let rest = &n["charts/".len()..];
                match rest.split_once('/') {
                    Some((dir, inner)) => sub_dirs
                        .entry(dir.to_string())
                        .or_default()
                        .push((inner.to_string(), data)),
                    None => {
                        if rest.ends_with(".tgz") || rest.ends_with(".tar.gz") {
                            sub_archives.push((name.clone(), data));
                        }
                    }
                }
            }
            _ => {
                other.files.insert(name.clone(), Rc::new(data));
            }
        }
    }
    let Some(metadata) = metadata else {
        return Err(Error::Chart {
            path: origin.to_string(),
            message: "Chart.yaml file is missing".into(),
        });
    };
    if !matches!(metadata, Value::Map(_)) {
        return Err(Error::Chart {
            path: origin.to_string(),
            message: "Chart.yaml is not a map".into(),
        });
    }
    let name = str_field(&metadata, "name");
    if name.is_empty() {
        return Err(Error::Chart {
            path: origin.to_string(),
            message: "validation: chart.metadata.name is required".into(),
        });
    }
    let mut dependencies = parse_deps(metadata.get("dependencies"));
    if dependencies.is_empty() {
        if let Some(req) = &requirements {
            dependencies = parse_deps(req.get("dependencies"));
        }
    }
    let mut subcharts = Vec::new();
    for (dir, files) in sub_dirs {
        if files.iter().any(|(p, _)| p == "Chart.yaml") {
            subcharts.push(from_files(files, &format!("{origin}/charts/{dir}"))?);
        }
    }
    for (path, data) in sub_archives {
        let files = read_archive(&data, &path)?;
        subcharts.push(from_files(files, &format!("{origin}/{path}"))?);
    }
    Ok(Chart {
        chart_type: str_field(&metadata, "type"),
        kube_version: str_field(&metadata, "kubeVersion"),
        name,
        metadata,
        dependencies,
        values,
        schema,
        templates,
        files: other,
        subcharts,
    })
}

/// `.helmignore` rules (Helm's subset of gitignore).
#[derive(Debug, Default)]
pub struct IgnoreRules {
    rules: Vec<IgnoreRule>,
}

#[derive(Debug)]
struct IgnoreRule {
    pattern: String,
    negate: bool,
    dir_only: bool,
    anchored: bool,
}

impl IgnoreRules {
    pub fn parse(text: &str) -> IgnoreRules {
        let mut rules = vec![IgnoreRule {
            pattern: "templates/.?*".into(),
            negate: false,
            dir_only: false,
            anchored: true,
        }];
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, rest) = match line.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, line),
            };
            let dir_only = rest.ends_with('/');
            let rest = rest.trim_end_matches('/');
            let anchored = rest.starts_with('/') || rest.contains('/');
            rules.push(IgnoreRule {
                pattern: rest.trim_start_matches('/').to_string(),
                negate,
                dir_only,
                anchored,
            });
        }
        IgnoreRules { rules }
    }

    pub fn ignored(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." {
            return false;
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        let mut ignored = false;
        for r in &self.rules {
            if r.dir_only && !is_dir {
                continue;
            }
            let target = if r.anchored { path } else { base };
            if go_match(&r.pattern, target) {
                ignored = !r.negate;
            }
        }
        ignored
    }
}

/// Go's `filepath.Match`.
pub fn go_match(pattern: &str, name: &str) -> bool {
    // Works on the strings in place: this runs for every rule and every file of a chart.
    let mut pattern_chars = pattern.chars();
    let Some(c) = pattern_chars.next() else {
        return name.is_empty();
    };
    let rest = pattern_chars.as_str();
    let mut name_chars = name.chars();
    let first = name_chars.next();
    let name_rest = name_chars.as_str();
    match c {
        '*' => {
            if go_match(rest, name) {
                return true;
            }
            for (i, ch) in name.char_indices() {
                if ch == '/' {
                    break;
                }
                if go_match(rest, &name[i + ch.len_utf8()..]) {
                    return true;
                }
            }
            false
        }
        '?' => first.is_some_and(|f| f != '/') && go_match(rest, name_rest),
        '[' => {
            let Some(end) = rest.find(']') else {
                return false;
            };
            let Some(f) = first else {
                return false;
            };
            let class: Vec<char> = rest[..end].chars().collect();
            let (neg, class) = match class.first() {
                Some('^' | '!') => (true, &class[1..]),
                _ => (false, &class[..]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    if class[i] <= f && f <= class[i + 2] {
                        hit = true;
                    }
                    i += 3;
                } else {
                    if class[i] == f {
                        hit = true;
                    }
                    i += 1;
                }
            }
            hit != neg && go_match(&rest[end + 1..], name_rest)
        }
        '\\' if !rest.is_empty() => {
            let mut escaped = rest.chars();
            let e = escaped.next();
            first.is_some() && first == e && go_match(escaped.as_str(), name_rest)
        }
        c => first == Some(c) && go_match(rest, name_rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helmignore_rules() {
        let r = IgnoreRules::parse("# c\n*.tgz\nci/\n/README.md\n!keep.tgz\n");
        assert!(r.ignored("a.tgz", false));
        assert!(!r.ignored("keep.tgz", false));
        assert!(r.ignored("ci", true));
        assert!(!r.ignored("ci", false));
        assert!(r.ignored("README.md", false));
        assert!(r.ignored("templates/.hidden", false));
        assert!(!r.ignored("templates/x.yaml", false));
    }

    #[test]
    fn go_match_like_filepath_match() {
        assert!(go_match("*.tgz", "a.tgz"));
        assert!(!go_match("*.tgz", "d/a.tgz"));
        assert!(go_match("templates/.?*", "templates/.hidden"));
        assert!(!go_match("templates/.?*", "templates/."));
        assert!(go_match("[a-c]x", "bx"));
        assert!(!go_match("[!a-c]x", "bx"));
        assert!(go_match("[^a-c]x", "dx"));
        assert!(go_match("\\*", "*"));
        assert!(!go_match("\\*", "a"));
        assert!(go_match("é?", "éz"));
        assert!(!go_match("a", ""));
        assert!(go_match("", ""));
    }
}
