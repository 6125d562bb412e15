//! What kustomize-controller does to a source directory before `kustomize build`: generate a
//! `kustomization.yaml` when the directory has none, and overlay the Flux Kustomization's spec
//! (`targetNamespace`, `namePrefix`/`nameSuffix`, `patches`, `components`, `images`,
//! `buildMetadata`, the legacy patch fields) onto it.
//!
//! Nothing is written to disk: [`prepare`] returns the kustomization to use, and
//! [`OverlayFs`] serves it in place of the file on disk, so the caller's tree stays untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::build::KUSTOMIZATION_FILE_NAMES;
use crate::error::{Error, Result};
use crate::fs::FileSystem;

/// The parts of a Flux `Kustomization` spec that change the kustomization file.
///
/// Field names and shapes follow `kustomize.toolkit.fluxcd.io/v1`; build it from the object's
/// `spec` with [`FluxOverrides::from_spec`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FluxOverrides {
    /// `spec.targetNamespace`.
    pub target_namespace: Option<String>,
    /// `spec.namePrefix`.
    pub name_prefix: Option<String>,
    /// `spec.nameSuffix`.
    pub name_suffix: Option<String>,
    /// `spec.patches`: `{patch, target}` entries, passed to kustomize unchanged.
    pub patches: Vec<Value>,
    /// Legacy `spec.patchesStrategicMerge` (objects).
    pub patches_strategic_merge: Vec<Value>,
    /// Legacy `spec.patchesJson6902` (`{patch: [ops], target}`).
    pub patches_json6902: Vec<Value>,
    /// `spec.images`.
    pub images: Vec<Value>,
    /// `spec.components`: local relative paths.
    pub components: Vec<String>,
    /// `spec.ignoreMissingComponents`.
    pub ignore_missing_components: bool,
    /// `spec.buildMetadata`.
    pub build_metadata: Vec<String>,
}

impl FluxOverrides {
    /// Reads the overrides from a Flux Kustomization's `spec` (a JSON object).
    ///
    /// `object` names the Kustomization (`namespace/name`) in errors.
    pub fn from_spec(object: &str, spec: &Value) -> Result<Self> {
        let string = |field: &str| -> Result<Option<String>> {
            match spec.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(spec_error(object, field, "must be a string")),
            }
        };
        let list = |field: &str| -> Result<Vec<Value>> {
            match spec.get(field) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => Err(spec_error(object, field, "must be a list")),
            }
        };
        let strings = |field: &str| -> Result<Vec<String>> {
            list(field)?
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(spec_error(object, field, "must be a list of strings")),
                })
                .collect()
        };
        Ok(Self {
            target_namespace: string("targetNamespace")?,
            name_prefix: string("namePrefix")?,
            name_suffix: string("nameSuffix")?,
            patches: list("patches")?,
            patches_strategic_merge: list("patchesStrategicMerge")?,
            patches_json6902: list("patchesJson6902")?,
            images: list("images")?,
            components: strings("components")?,
            ignore_missing_components: spec
                .get("ignoreMissingComponents")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            build_metadata: strings("buildMetadata")?,
        })
    }
}

fn spec_error(object: &str, field: &str, message: &str) -> Error {
    Error::Kustomization {
        path: PathBuf::from(format!("Kustomization/{object}")),
        message: format!("spec.{field}: {message}"),
    }
}

/// Whether the kustomization file existed or was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The directory had a kustomization file; it was used (with the overrides applied).
    Unchanged,
    /// The directory had none; one was generated from its YAML files.
    Created,
}

/// The kustomization file kustomize-controller would build in `dir`.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Where the file lives (the existing file's path, or `dir/kustomization.yaml`).
    pub path: PathBuf,
    /// The kustomization to build, as YAML.
    pub contents: String,
    /// Whether it was generated.
    pub action: Action,
}

/// Computes the kustomization to build in `dir`: the existing file, or one generated from the
/// YAML files below `dir` (Flux's rules), with `overrides` applied.
pub fn prepare(fs: &dyn FileSystem, dir: &Path, overrides: &FluxOverrides) -> Result<Prepared> {
    if !fs.is_dir(dir) {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "kustomization path not found",
            ),
        });
    }
    let existing = KUSTOMIZATION_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| fs.is_file(path));
    let (path, mut doc, action) = match existing {
        Some(path) => {
            let bytes = fs.read(&path)?;
            let text = String::from_utf8_lossy(&bytes);
            let doc: Value = serde_yaml::from_str(&text).map_err(|e| Error::Yaml {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let doc = match doc {
                Value::Object(map) => map,
                Value::Null => Map::new(),
                _ => {
                    return Err(Error::Kustomization {
                        path,
                        message: "a kustomization must be a YAML mapping".into(),
                    })
                }
            };
            (path, doc, Action::Unchanged)
        }
        None => (
            dir.join("kustomization.yaml"),
            generate(fs, dir)?,
            Action::Created,
        ),
    };
    apply_overrides(fs, dir, &mut doc, overrides)?;
    let contents =
        serde_yaml::to_string(&Value::Object(doc)).map_err(|e| Error::Kustomization {
            path: path.clone(),
            message: e.to_string(),
        })?;
    Ok(Prepared {
        path,
        contents,
        action,
    })
}

/// Flux's generated kustomization: every sub-directory holding a kustomization file (not
/// descended into) and every `.yaml`/`.yml` file that parses as YAML, in lexical walk order,
/// as `./relative` paths.
fn generate(fs: &dyn FileSystem, dir: &Path) -> Result<Map<String, Value>> {
    let mut resources = Vec::new();
    walk(fs, dir, dir, &mut resources)?;
    let mut doc = Map::new();
    doc.insert(
        "apiVersion".into(),
        json!("kustomize.config.k8s.io/v1beta1"),
    );
    doc.insert("kind".into(), json!("Kustomization"));
    if resources.is_empty() {
        // Keeps kustomize from failing on an empty kustomization, as Flux does.
        doc.insert("namespace".into(), json!("_placeholder"));
    } else {
        doc.insert("resources".into(), Value::Array(resources));
    }
    Ok(doc)
}

fn walk(fs: &dyn FileSystem, base: &Path, dir: &Path, out: &mut Vec<Value>) -> Result<()> {
    for entry in fs.read_dir(dir)? {
        let relative = |p: &Path| {
            let rel = p.strip_prefix(base).unwrap_or(p);
            format!("./{}", rel.to_string_lossy())
        };
        if fs.is_dir(&entry) {
            if entry.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if KUSTOMIZATION_FILE_NAMES
                .iter()
                .any(|name| fs.is_file(&entry.join(name)))
            {
                out.push(Value::String(relative(&entry)));
            } else {
                walk(fs, base, &entry, out)?;
            }
            continue;
        }
        let is_yaml = entry.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml {
            continue;
        }
        let bytes = fs.read(&entry)?;
        let text = String::from_utf8_lossy(&bytes);
        crate::yaml::parse_documents(&text).map_err(|message| Error::Yaml {
            path: entry.clone(),
            message: format!("failed to decode Kubernetes YAML: {message}"),
        })?;
        out.push(Value::String(relative(&entry)));
    }
    Ok(())
}

fn apply_overrides(
    fs: &dyn FileSystem,
    dir: &Path,
    doc: &mut Map<String, Value>,
    overrides: &FluxOverrides,
) -> Result<()> {
    if let Some(ns) = &overrides.target_namespace {
        doc.insert("namespace".into(), json!(ns));
    }
    if let Some(prefix) = &overrides.name_prefix {
        doc.insert("namePrefix".into(), json!(prefix));
    }
    if let Some(suffix) = &overrides.name_suffix {
        doc.insert("nameSuffix".into(), json!(suffix));
    }
    append(doc, "patches", overrides.patches.iter().cloned());
    append(
        doc,
        "patchesStrategicMerge",
        overrides.patches_strategic_merge.iter().cloned(),
    );
    // kustomize reads a JSON 6902 patch as a string; Flux's spec holds the ops as a list.
    let json6902 = overrides.patches_json6902.iter().map(|p| {
        let mut p = p.clone();
        if let Some(ops @ Value::Array(_)) = p.get("patch").cloned() {
            p["patch"] = Value::String(ops.to_string());
        }
        p
    });
    append(doc, "patchesJson6902", json6902);
    let mut components = Vec::new();
    for component in &overrides.components {
        let path = Path::new(component);
        if path.is_absolute() || component.contains("://") {
            return Err(Error::Kustomization {
                path: dir.to_path_buf(),
                message: format!("spec.components: '{component}' must be a local relative path"),
            });
        }
        if !fs.is_dir(&crate::fs::join_clean(dir, component)) {
            if overrides.ignore_missing_components {
                continue;
            }
            return Err(Error::Kustomization {
                path: dir.to_path_buf(),
                message: format!("spec.components: component '{component}' not found"),
            });
        }
        components.push(Value::String(component.clone()));
    }
    append(doc, "components", components);
    merge_images(doc, &overrides.images);
    if !overrides.build_metadata.is_empty() {
        doc.insert("buildMetadata".into(), json!(overrides.build_metadata));
    }
    Ok(())
}

fn append(doc: &mut Map<String, Value>, field: &str, items: impl IntoIterator<Item = Value>) {
    let items: Vec<Value> = items.into_iter().collect();
    if items.is_empty() {
        return;
    }
    match doc.get_mut(field) {
        Some(Value::Array(existing)) => existing.extend(items),
        _ => {
            doc.insert(field.into(), Value::Array(items));
        }
    }
}

/// An image already listed by name is updated (`newName` overrides; `newTag` and `digest`
/// replace each other), any other is appended.
fn merge_images(doc: &mut Map<String, Value>, images: &[Value]) {
    for image in images {
        let Some(name) = image.get("name").and_then(Value::as_str) else {
            continue;
        };
        let list = doc
            .entry("images")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        let Value::Array(list) = list else { continue };
        let existing = list
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name));
        match existing {
            Some(Value::Object(entry)) => {
                if let Some(new_name) = image.get("newName") {
                    entry.insert("newName".into(), new_name.clone());
                }
                let tag = image.get("newTag");
                let digest = image.get("digest");
                if tag.is_some() || digest.is_some() {
                    entry.remove("newTag");
                    entry.remove("digest");
                    if let Some(tag) = tag {
                        entry.insert("newTag".into(), tag.clone());
                    }
                    if let Some(digest) = digest {
                        entry.insert("digest".into(), digest.clone());
                    }
                }
            }
            _ => list.push(image.clone()),
        }
    }
}

/// A filesystem that serves some files from memory in front of another one: how the
/// prepared kustomization reaches `kustomize build` without touching the source tree.
pub struct OverlayFs<'a> {
    base: &'a dyn FileSystem,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl<'a> OverlayFs<'a> {
    /// An overlay with no files of its own.
    pub fn new(base: &'a dyn FileSystem) -> Self {
        Self {
            base,
            files: BTreeMap::new(),
        }
    }

    /// Serves `contents` at `path` (absolute), hiding whatever the base has there.
    pub fn insert(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), contents.into());
    }
}

impl FileSystem for OverlayFs<'_> {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        match self.files.get(path) {
            Some(bytes) => Ok(bytes.clone()),
            None => self.base.read(path),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.base.is_dir(path) || self.files.keys().any(|f| f.parent() == Some(path))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path) || self.base.is_file(path)
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<PathBuf>> {
        let mut entries = if self.base.is_dir(path) {
            self.base.read_dir(path)?
        } else {
            Vec::new()
        };
        for file in self.files.keys() {
            if file.parent() == Some(path) && !entries.contains(file) {
                entries.push(file.clone());
            }
        }
        entries.sort();
        Ok(entries)
    }

    fn canonical(&self, path: &Path) -> Result<PathBuf> {
        if self.files.contains_key(path) {
            return Ok(path.to_path_buf());
        }
        self.base.canonical(path)
    }
}

/// Prepares `dir` and builds it, as kustomize-controller does (load restrictions off, so
/// files anywhere under the filesystem's root may be referenced).
pub fn build_flux(
    fs: &dyn FileSystem,
    dir: &Path,
    overrides: &FluxOverrides,
) -> Result<crate::ResourceList> {
    let prepared = prepare(fs, dir, overrides)?;
    let mut overlay = OverlayFs::new(fs);
    overlay.insert(prepared.path.clone(), prepared.contents.into_bytes());
    let options = crate::BuildOptions {
        load_restrictor: crate::LoadRestrictor::None,
    };
    crate::build_with(&overlay, dir, &options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemFs;

    fn fleet() -> MemFs {
        let mut fs = MemFs::new();
        fs.write(
            "/repo/apps/app.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
        );
        fs.write("/repo/apps/README.md", "not yaml at all: [");
        fs.write(
            "/repo/apps/nested/more.yml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: more\n",
        );
        fs.write(
            "/repo/apps/base/kustomization.yaml",
            "resources: [cm.yaml]\n",
        );
        fs.write(
            "/repo/apps/base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n",
        );
        fs
    }

    #[test]
    fn generates_a_kustomization_like_flux() {
        let fs = fleet();
        let prepared = prepare(&fs, Path::new("/repo/apps"), &FluxOverrides::default()).unwrap();
        assert_eq!(prepared.action, Action::Created);
        let doc: Value = serde_yaml::from_str(&prepared.contents).unwrap();
        assert_eq!(
            doc["resources"],
            json!(["./app.yaml", "./base", "./nested/more.yml"])
        );
    }

    #[test]
    fn empty_directories_get_a_placeholder_namespace() {
        let mut fs = MemFs::new();
        fs.write("/repo/empty/notes.txt", "hi");
        let prepared = prepare(&fs, Path::new("/repo/empty"), &FluxOverrides::default()).unwrap();
        let doc: Value = serde_yaml::from_str(&prepared.contents).unwrap();
        assert_eq!(doc["namespace"], json!("_placeholder"));
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let mut fs = MemFs::new();
        fs.write("/repo/bad/x.yaml", "a: [unclosed");
        let err = prepare(&fs, Path::new("/repo/bad"), &FluxOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("/repo/bad/x.yaml"), "{err}");
    }

    #[test]
    fn overrides_are_applied_and_images_merged() {
        let mut fs = MemFs::new();
        fs.write(
            "/repo/app/kustomization.yaml",
            "resources: [d.yaml]\nimages:\n- name: nginx\n  newTag: \"1.0\"\n",
        );
        fs.write(
            "/repo/app/d.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n",
        );
        fs.write("/repo/app/comp/kustomization.yaml", "kind: Component\n");
        let spec = json!({
            "targetNamespace": "prod",
            "namePrefix": "p-",
            "images": [{"name": "nginx", "digest": "sha256:abc"}, {"name": "redis", "newTag": "7"}],
            "components": ["comp", "missing"],
            "ignoreMissingComponents": true,
            "patches": [{"patch": "- op: add\n  path: /data\n  value: {}", "target": {"kind": "ConfigMap"}}]
        });
        let overrides = FluxOverrides::from_spec("flux-system/app", &spec).unwrap();
        let prepared = prepare(&fs, Path::new("/repo/app"), &overrides).unwrap();
        assert_eq!(prepared.action, Action::Unchanged);
        let doc: Value = serde_yaml::from_str(&prepared.contents).unwrap();
        assert_eq!(doc["namespace"], json!("prod"));
        assert_eq!(doc["namePrefix"], json!("p-"));
        assert_eq!(
            doc["images"],
            json!([{"name": "nginx", "digest": "sha256:abc"}, {"name": "redis", "newTag": "7"}])
        );
        assert_eq!(doc["components"], json!(["comp"]));
        assert_eq!(doc["patches"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn missing_components_fail_unless_ignored() {
        let mut fs = MemFs::new();
        fs.write("/repo/app/kustomization.yaml", "resources: []\n");
        let spec = json!({"components": ["nope"]});
        let overrides = FluxOverrides::from_spec("ns/app", &spec).unwrap();
        let err = prepare(&fs, Path::new("/repo/app"), &overrides).unwrap_err();
        assert!(
            err.to_string().contains("component 'nope' not found"),
            "{err}"
        );
        let bad = FluxOverrides::from_spec("ns/app", &json!({"namePrefix": 3})).unwrap_err();
        assert!(bad.to_string().contains("spec.namePrefix"), "{bad}");
    }

    #[test]
    fn builds_through_the_overlay_without_touching_the_tree() {
        let fs = fleet();
        let overrides = FluxOverrides {
            target_namespace: Some("team".into()),
            ..FluxOverrides::default()
        };
        let list = build_flux(&fs, Path::new("/repo/apps"), &overrides).unwrap();
        let names: Vec<&str> = list.resources().iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(list.resources().iter().all(|r| r.namespace() == "team"));
        assert!(!fs.is_file(Path::new("/repo/apps/kustomization.yaml")));
    }
}
