//! Minimal Helm chart packaging for HelmChart sources built from a directory (Git/Bucket
//! artifact): read `Chart.yaml`, merge `valuesFiles`, set the version (with Flux's build
//! metadata) and write `<name>-<version>.tgz` with entries under `<name>/`.
//!
//! Dependency resolution (`Chart.lock`, repository dependencies) is not done here: charts with
//! vendored `charts/` sub-directories package as they are.

use std::io::Write;
use std::path::Path;

use crate::gzip::GzipWriter;
use serde_yaml::{Mapping, Value};

use crate::error::{Error, Result};
use crate::ignore::Rules;

/// The interesting parts of `Chart.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
}

/// Reads `Chart.yaml` from a chart directory.
pub fn load_meta(chart_dir: &Path) -> Result<(ChartMeta, Value)> {
    let path = chart_dir.join("Chart.yaml");
    let text = std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
    let doc: Value = serde_yaml::from_str(&text).map_err(|e| Error::Parse {
        what: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let field = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::Parse {
                what: path.display().to_string(),
                detail: format!("field {k:?} is required"),
            })
    };
    Ok((
        ChartMeta {
            name: field("name")?,
            version: field("version")?,
        },
        doc,
    ))
}

/// Deep-merges `overlay` into `base`: maps merge recursively, everything else is replaced.
pub fn merge_values(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_mapping() && v.is_mapping() => {
                        merge_values(existing, v);
                    }
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Merges `files` (paths relative to `source_root`) in order. Missing files are an error unless
/// `ignore_missing`; returns the merged values and the files actually used.
pub fn merge_values_files(
    source_root: &Path,
    files: &[String],
    ignore_missing: bool,
) -> Result<(Value, Vec<String>)> {
    let mut merged = Value::Mapping(Mapping::new());
    let mut used = Vec::new();
    for file in files {
        let rel = crate::extract::safe_relative(file)?;
        let path = source_root.join(rel);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && ignore_missing => continue,
            Err(e) => return Err(Error::io("reading values file", &path)(e)),
        };
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| Error::Parse {
            what: format!("values file {file}"),
            detail: e.to_string(),
        })?;
        if !doc.is_null() {
            merge_values(&mut merged, doc);
        }
        used.push(file.clone());
    }
    Ok((merged, used))
}

/// Appends build metadata to a version (`6.0.3` + `1` → `6.0.3+1`; existing metadata is
/// extended with `.`).
pub fn with_build_metadata(version: &str, metadata: &str) -> String {
    if metadata.is_empty() {
        version.to_string()
    } else if version.contains('+') {
        format!("{version}.{metadata}")
    } else {
        format!("{version}+{metadata}")
    }
}

/// A packaged chart.
#[derive(Debug, Clone)]
pub struct Packaged {
    pub name: String,
    pub version: String,
    pub bytes: Vec<u8>,
}

/// Packages `chart_dir`, optionally overriding the version and `values.yaml`.
pub fn package(
    chart_dir: &Path,
    version: Option<&str>,
    values: Option<&Value>,
) -> Result<Packaged> {
    let (meta, mut doc) = load_meta(chart_dir)?;
    let version = version.unwrap_or(&meta.version).to_string();
    if let Value::Mapping(m) = &mut doc {
        m.insert(Value::from("version"), Value::from(version.clone()));
    }
    let chart_yaml = serde_yaml::to_string(&doc).map_err(|e| Error::Parse {
        what: "Chart.yaml".into(),
        detail: e.to_string(),
    })?;
    let values_yaml = values
        .map(|v| {
            serde_yaml::to_string(v).map_err(|e| Error::Parse {
                what: "values".into(),
                detail: e.to_string(),
            })
        })
        .transpose()?;
    let helmignore = match std::fs::read_to_string(chart_dir.join(".helmignore")) {
        Ok(text) => Rules::parse(&text, &[]),
        Err(_) => Vec::new(),
    };
    let rules = Rules::from_patterns(helmignore);
    let gz = GzipWriter::new(Vec::new());
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    collect_files(chart_dir, chart_dir, &rules, &mut files)?;
    files.sort();
    let mut add = |rel: &str, data: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append_data(&mut header, format!("{}/{rel}", meta.name), data)
            .map_err(Error::io("packaging chart", chart_dir))
    };
    add("Chart.yaml", chart_yaml.as_bytes())?;
    if let Some(values) = &values_yaml {
        add("values.yaml", values.as_bytes())?;
    }
    for rel in files {
        if rel == "Chart.yaml" || (values_yaml.is_some() && rel == "values.yaml") {
            continue;
        }
        let path = chart_dir.join(&rel);
        let data = std::fs::read(&path).map_err(Error::io("reading", &path))?;
        add(&rel, &data)?;
    }
    let gz = tar
        .into_inner()
        .map_err(Error::io("packaging chart", chart_dir))?;
    let mut bytes = gz
        .finish()
        .map_err(Error::io("compressing chart", chart_dir))?;
    bytes
        .flush()
        .map_err(Error::io("packaging chart", chart_dir))?;
    Ok(Packaged {
        name: meta.name,
        version,
        bytes,
    })
}

fn collect_files(root: &Path, dir: &Path, rules: &Rules, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::io("listing", dir))? {
        let entry = entry.map_err(Error::io("listing", dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(Error::io("stat", &path))?;
        let rel = path
            .strip_prefix(root)
            .map_err(|_| Error::IllegalPath {
                path: path.display().to_string(),
                reason: "outside the chart",
            })?
            .to_string_lossy()
            .into_owned();
        if rel == ".helmignore" || rules.is_excluded_path(&rel, ft.is_dir()) {
            continue;
        }
        if ft.is_dir() {
            collect_files(root, &path, rules, out)?;
        } else if ft.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        std::fs::create_dir_all(c.join("templates")).unwrap();
        std::fs::write(
            c.join("Chart.yaml"),
            "apiVersion: v2\nname: demo\nversion: 1.2.3\n",
        )
        .unwrap();
        std::fs::write(c.join("values.yaml"), "a: {b: 1, c: 2}\nlist: [1]\n").unwrap();
        std::fs::write(c.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
        std::fs::write(c.join(".helmignore"), "*.bak\n").unwrap();
        std::fs::write(c.join("junk.bak"), "x").unwrap();
        dir
    }

    #[test]
    fn merges_like_flux() {
        let dir = chart();
        std::fs::write(dir.path().join("prod.yaml"), "a: {c: 3}\nlist: [2]\n").unwrap();
        let (v, used) = merge_values_files(
            dir.path(),
            &["values.yaml".into(), "prod.yaml".into()],
            false,
        )
        .unwrap();
        assert_eq!(
            serde_yaml::to_string(&v).unwrap(),
            "a:\n  b: 1\n  c: 3\nlist:\n- 2\n"
        );
        assert_eq!(used.len(), 2);
        assert!(merge_values_files(dir.path(), &["missing.yaml".into()], false).is_err());
        let (_, used) = merge_values_files(dir.path(), &["missing.yaml".into()], true).unwrap();
        assert!(used.is_empty());
    }

    #[test]
    fn packages_with_version_and_values() {
        let dir = chart();
        let values: Value = serde_yaml::from_str("x: 1").unwrap();
        let p = package(dir.path(), Some("1.2.3+abc"), Some(&values)).unwrap();
        assert_eq!(p.name, "demo");
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&p.bytes[..]));
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            if name == "demo/Chart.yaml" {
                assert!(s.contains("version: 1.2.3+abc"), "{s}");
            }
            if name == "demo/values.yaml" {
                assert_eq!(s, "x: 1\n");
            }
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "demo/Chart.yaml",
                "demo/values.yaml",
                "demo/templates/cm.yaml"
            ]
        );
        assert_eq!(with_build_metadata("6.0.3", "1"), "6.0.3+1");
        assert_eq!(with_build_metadata("6.0.3+4e5c", "1"), "6.0.3+4e5c.1");
    }

    #[test]
    fn missing_chart_yaml_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(package(dir.path(), None, None).is_err());
    }
}
