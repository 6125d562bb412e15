//! Chart dependencies for HelmCharts built from a directory, as Flux's dependency manager and
//! `helm dependency build` do: every `dependencies` entry of `Chart.yaml` (or
//! `requirements.yaml` for `apiVersion: v1`) not already vendored under `charts/` is resolved —
//! `file://` (or empty) repositories from the source tree, `http(s)://` repositories through
//! their `index.yaml` with Helm's version selection — and written into `charts/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::{index::IndexFile, index_url, HelmRepoSpec};
use crate::error::{Error, Result};

/// One `dependencies` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    /// Version constraint (`""` = any stable).
    pub version: String,
    /// `https://…`, `file://…`, empty (local) — aliases (`@name`, `alias:name`) and `oci://`
    /// are refused.
    pub repository: String,
}

/// Repository settings by URL (credentials and TLS of matching HelmRepositories). URLs without
/// an entry are used anonymously, as Flux does for repositories no HelmRepository declares.
#[derive(Debug, Clone, Default)]
pub struct Repositories {
    by_url: BTreeMap<String, HelmRepoSpec>,
}

fn normalize(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

impl Repositories {
    /// Registers the settings used for `spec.url`.
    pub fn insert(&mut self, spec: HelmRepoSpec) {
        self.by_url.insert(normalize(&spec.url), spec);
    }

    fn spec_for(&self, url: &str) -> HelmRepoSpec {
        self.by_url
            .get(&normalize(url))
            .cloned()
            .unwrap_or_else(|| HelmRepoSpec::new(url))
    }
}

fn yaml_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |detail| Error::Parse {
        what: path.display().to_string(),
        detail,
    }
}

/// Reads the declared dependencies of the chart at `chart_dir`.
pub fn declared(chart_dir: &Path) -> Result<Vec<Dependency>> {
    let (_, doc) = super::chart::load_meta(chart_dir)?;
    let v1 = doc.get("apiVersion").and_then(Value::as_str) == Some("v1");
    let (path, list) = if v1 {
        let path = chart_dir.join("requirements.yaml");
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
        let req: Value = serde_yaml::from_str(&text).map_err(|e| yaml_err(&path)(e.to_string()))?;
        (path, req.get("dependencies").cloned())
    } else {
        (
            chart_dir.join("Chart.yaml"),
            doc.get("dependencies").cloned(),
        )
    };
    let Some(list) = list.filter(|l| !l.is_null()) else {
        return Ok(Vec::new());
    };
    let items = list
        .as_sequence()
        .ok_or_else(|| yaml_err(&path)("dependencies must be a list".into()))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let name = text("name");
        if name.is_empty() {
            return Err(yaml_err(&path)(format!(
                "dependencies[{i}].name is required"
            )));
        }
        out.push(Dependency {
            name,
            version: text("version"),
            repository: text("repository"),
        });
    }
    Ok(out)
}

/// Names of the charts already under `charts/` (directories with a `Chart.yaml`, and
/// `<name>-<version>.tgz` archives).
fn vendored(chart_dir: &Path) -> Result<Vec<String>> {
    let dir = chart_dir.join("charts");
    let mut names = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(names);
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("listing", &dir))?;
        let path = entry.path();
        if path.join("Chart.yaml").is_file() {
            if let Ok((meta, _)) = super::chart::load_meta(&path) {
                names.push(meta.name);
            }
        } else if let Some(file) = path.file_name().and_then(|n| n.to_str()) {
            if let Some(stem) = file.strip_suffix(".tgz") {
                // `<name>-<version>`: the version starts after the last '-' followed by a digit.
                let cut = stem
                    .char_indices()
                    .filter(|(i, c)| {
                        *c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit())
                    })
                    .map(|(i, _)| i)
                    .next();
                names.push(cut.map_or(stem, |i| &stem[..i]).to_string());
            }
        }
    }
    Ok(names)
}

/// Resolves the missing dependencies of the chart at `chart_dir` (a writable copy of `origin`)
/// into its `charts/`. Local (`file://`) paths are relative to `origin` and must stay inside
/// `source_root`. Returns the names added.
pub fn build(
    chart_dir: &Path,
    origin: &Path,
    source_root: &Path,
    repos: &Repositories,
) -> Result<Vec<String>> {
    let declared = declared(chart_dir)?;
    let present = vendored(chart_dir)?;
    let missing: Vec<Dependency> = declared
        .into_iter()
        .filter(|d| !present.contains(&d.name))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let charts = chart_dir.join("charts");
    std::fs::create_dir_all(&charts).map_err(Error::io("creating", &charts))?;
    let mut indexes: BTreeMap<String, IndexFile> = BTreeMap::new();
    let mut added = Vec::new();
    for dep in missing {
        let repo = dep.repository.as_str();
        if repo.is_empty() || repo.starts_with("file://") {
            add_local(&dep, origin, source_root, &charts)?;
        } else if repo.starts_with("http://") || repo.starts_with("https://") {
            let spec = repos.spec_for(repo);
            if !indexes.contains_key(repo) {
                let client = super::http_client(&spec.auth, spec.timeout)?;
                let url = index_url(&spec.url);
                let raw = super::http_get(
                    &client,
                    &url,
                    spec.auth.basic.as_ref(),
                    super::INDEX_MAX_SIZE,
                )?;
                indexes.insert(repo.to_string(), IndexFile::parse(&raw, &url)?);
            }
            let index = &indexes[repo];
            let (entry, bytes) = super::pull_chart(&spec, index, &dep.name, &dep.version)
                .map_err(|e| dependency_error(&dep, &e.to_string()))?;
            let file = charts.join(format!("{}-{}.tgz", entry.name, entry.version));
            std::fs::write(&file, bytes).map_err(Error::io("writing", &file))?;
        } else {
            return Err(dependency_error(
                &dep,
                "only http(s):// and file:// repositories are supported (no aliases, no oci://)",
            ));
        }
        added.push(dep.name);
    }
    Ok(added)
}

fn dependency_error(dep: &Dependency, detail: &str) -> Error {
    Error::NotFound(format!(
        "failed to add remote dependency '{}' (repository {:?}, version {:?}): {detail}",
        dep.name, dep.repository, dep.version
    ))
}

fn add_local(dep: &Dependency, origin: &Path, source_root: &Path, charts: &Path) -> Result<()> {
    let rel = dep.repository.trim_start_matches("file://");
    let src = if rel.is_empty() {
        // Empty repository: the dependency must be vendored already (Helm's rule).
        return Err(dependency_error(
            dep,
            "not found in charts/ and no repository given",
        ));
    } else {
        lexical_join(origin, rel)
    };
    let root = lexical_join(source_root, ".");
    if !src.starts_with(&root) {
        return Err(Error::IllegalPath {
            path: dep.repository.clone(),
            reason: "local dependency leaves the source artifact",
        });
    }
    let (meta, _) = super::chart::load_meta(&src)
        .map_err(|e| dependency_error(dep, &format!("no chart at {rel}: {e}")))?;
    if meta.name != dep.name {
        return Err(dependency_error(
            dep,
            &format!("chart at {rel} is named {:?}", meta.name),
        ));
    }
    if !dep.version.is_empty() {
        let constraint = crate::semver::Constraint::parse(&dep.version)?;
        let version = crate::semver::Version::parse(&meta.version)?;
        if !constraint.matches(&version) {
            return Err(dependency_error(
                dep,
                &format!("local chart version {} does not match", meta.version),
            ));
        }
    }
    copy_dir(&src, &charts.join(&dep.name))
}

/// Joins and normalises `.`/`..` without touching the filesystem.
fn lexical_join(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in base.join(rel).components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(Error::io("creating", to))?;
    for entry in std::fs::read_dir(from).map_err(Error::io("listing", from))? {
        let entry = entry.map_err(Error::io("listing", from))?;
        let kind = entry.file_type().map_err(Error::io("stat", entry.path()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(Error::io("copying", entry.path()))?;
        }
    }
    Ok(())
}

/// Copies `chart_dir` into a fresh temp dir (dependencies are written into the copy, never into
/// the extracted source).
pub fn staging_copy(chart_dir: &Path) -> Result<(tempfile::TempDir, PathBuf)> {
    let tmp = tempfile::Builder::new()
        .prefix("flux-chart-")
        .tempdir()
        .map_err(Error::io("creating temp dir", std::env::temp_dir()))?;
    let name = chart_dir
        .file_name()
        .map_or_else(|| "chart".into(), |n| n.to_string_lossy().into_owned());
    let copy = tmp.path().join(name);
    copy_dir(chart_dir, &copy)?;
    Ok((tmp, copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn local_dependencies_are_copied_and_vendored_ones_kept() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        write(
            &root.join("charts/app/Chart.yaml"),
            "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: lib\n    version: ~0.1\n    repository: file://../lib\n  - name: vendored\n    version: 1.x\n    repository: https://unused.invalid\n",
        );
        write(
            &root.join("charts/app/charts/vendored/Chart.yaml"),
            "apiVersion: v2\nname: vendored\nversion: 1.2.0\n",
        );
        write(
            &root.join("charts/lib/Chart.yaml"),
            "apiVersion: v2\nname: lib\nversion: 0.1.4\n",
        );
        write(
            &root.join("charts/lib/templates/cm.yaml"),
            "kind: ConfigMap\n",
        );
        let (_tmp, copy) = staging_copy(&root.join("charts/app")).unwrap();
        let origin = root.join("charts/app");
        let added = build(&copy, &origin, root, &Repositories::default()).unwrap();
        assert_eq!(added, ["lib"]);
        assert!(copy.join("charts/lib/templates/cm.yaml").is_file());
        assert!(
            !root.join("charts/app/charts/lib").exists(),
            "source untouched"
        );
        // Second run: nothing missing.
        assert!(build(&copy, &origin, root, &Repositories::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn escaping_and_unsupported_repositories_are_errors() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path().join("repo");
        write(
            &root.join("app/Chart.yaml"),
            "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: x\n    repository: file://../../outside\n",
        );
        write(
            &src.path().join("outside/Chart.yaml"),
            "apiVersion: v2\nname: x\nversion: 1.0.0\n",
        );
        let err = build(
            &root.join("app"),
            &root.join("app"),
            &root,
            &Repositories::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::IllegalPath { .. }), "{err}");
        write(
            &root.join("alias/Chart.yaml"),
            "apiVersion: v2\nname: alias\nversion: 1.0.0\ndependencies:\n  - name: y\n    repository: '@stable'\n",
        );
        let err = build(
            &root.join("alias"),
            &root.join("alias"),
            &root,
            &Repositories::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("'y'"), "{err}");
        write(
            &root.join("ver/Chart.yaml"),
            "apiVersion: v2\nname: ver\nversion: 1.0.0\ndependencies:\n  - name: lib\n    version: '>=2'\n    repository: file://../lib\n",
        );
        write(
            &root.join("lib/Chart.yaml"),
            "apiVersion: v2\nname: lib\nversion: 1.0.0\n",
        );
        let err = build(
            &root.join("ver"),
            &root.join("ver"),
            &root,
            &Repositories::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn v1_charts_read_requirements_yaml() {
        let src = tempfile::tempdir().unwrap();
        write(
            &src.path().join("Chart.yaml"),
            "apiVersion: v1\nname: old\nversion: 1.0.0\n",
        );
        write(
            &src.path().join("requirements.yaml"),
            "dependencies:\n  - name: redis\n    version: 10.x\n    repository: https://charts.example\n",
        );
        let deps = declared(src.path()).unwrap();
        assert_eq!(
            deps,
            [Dependency {
                name: "redis".into(),
                version: "10.x".into(),
                repository: "https://charts.example".into()
            }]
        );
    }
}
