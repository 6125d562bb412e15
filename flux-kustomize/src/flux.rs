//! What Flux's kustomize-controller adds around a kustomize build: generating a
//! kustomization when the path has none, overlaying the Kustomization spec
//! (targetNamespace, namePrefix/nameSuffix, patches, images, components, buildMetadata),
//! and applying `commonMetadata` to the built objects.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::build::{build_with, BuildOptions, KUSTOMIZATION_FILE_NAMES};
use crate::error::{Error, Result};
use crate::fs::{clean, join_clean, FileSystem};
use crate::resource::ResourceList;
use crate::yaml;

/// A patch from a Flux Kustomization's `spec.patches`.
#[derive(Debug, Clone, Default)]
pub struct FluxPatch {
    /// Strategic-merge patch or JSON 6902 operations, as YAML text.
    pub patch: String,
    /// The target selector, as the map Flux stores (`kind`, `name`, `labelSelector`, ...).
    pub target: Option<Map<String, Value>>,
}

/// An entry of `spec.images`.
#[derive(Debug, Clone, Default)]
pub struct FluxImage {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

/// The parts of a Flux Kustomization spec that change the build.
#[derive(Debug, Clone, Default)]
pub struct FluxSpec {
    pub target_namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub patches: Vec<FluxPatch>,
    pub images: Vec<FluxImage>,
    pub components: Vec<String>,
    pub ignore_missing_components: bool,
    pub build_metadata: Vec<String>,
    /// `commonMetadata.labels`, applied after the build.
    pub common_labels: Vec<(String, String)>,
    /// `commonMetadata.annotations`, applied after the build.
    pub common_annotations: Vec<(String, String)>,
}

impl FluxSpec {
    /// Reads the spec fields of a Flux `Kustomization` (`kustomize.toolkit.fluxcd.io/v1`)
    /// from its JSON `spec`. `object` (`namespace/name`) names it in errors.
    pub fn from_spec(object: &str, spec: &Value) -> Result<Self> {
        let error = |field: &str, message: &str| Error::Kustomization {
            path: PathBuf::from(format!("Kustomization/{object}")),
            message: format!("spec.{field}: {message}"),
        };
        let string = |field: &str| -> Result<Option<String>> {
            match spec.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(error(field, "must be a string")),
            }
        };
        let list = |field: &str| -> Result<Vec<Value>> {
            match spec.get(field) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => Err(error(field, "must be a list")),
            }
        };
        let strings = |field: &str| -> Result<Vec<String>> {
            list(field)?
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(error(field, "must be a list of strings")),
                })
                .collect()
        };
        let mut patches = Vec::new();
        for (i, entry) in list("patches")?.into_iter().enumerate() {
            let Some(patch) = entry.get("patch").and_then(Value::as_str) else {
                return Err(error(&format!("patches[{i}].patch"), "must be a string"));
            };
            let target = match entry.get("target") {
                None | Some(Value::Null) => None,
                Some(Value::Object(map)) => Some(map.clone()),
                Some(_) => return Err(error(&format!("patches[{i}].target"), "must be a map")),
            };
            patches.push(FluxPatch {
                patch: patch.to_string(),
                target,
            });
        }
        let mut images = Vec::new();
        for (i, entry) in list("images")?.into_iter().enumerate() {
            let field = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
            let Some(name) = field("name") else {
                return Err(error(&format!("images[{i}].name"), "is required"));
            };
            images.push(FluxImage {
                name,
                new_name: field("newName"),
                new_tag: field("newTag"),
                digest: field("digest"),
            });
        }
        let metadata = |key: &str| -> Vec<(String, String)> {
            spec.pointer(&format!("/commonMetadata/{key}"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Self {
            target_namespace: string("targetNamespace")?,
            name_prefix: string("namePrefix")?,
            name_suffix: string("nameSuffix")?,
            patches,
            images,
            components: strings("components")?,
            ignore_missing_components: spec
                .get("ignoreMissingComponents")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            build_metadata: strings("buildMetadata")?,
            common_labels: metadata("labels"),
            common_annotations: metadata("annotations"),
        })
    }
}

/// Whether a kustomization file exists in `dir`.
pub fn find_kustomization(fs: &dyn FileSystem, dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| fs.is_file(p))
}

fn is_kubernetes_yaml(text: &str) -> std::result::Result<bool, String> {
    let docs = yaml::parse_documents(text)?;
    Ok(!docs.is_empty()
        && docs
            .iter()
            .all(|d| d.get("apiVersion").is_some() && d.get("kind").is_some()))
}

fn collect(fs: &dyn FileSystem, root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs.read_dir(dir)? {
        let rel = entry.strip_prefix(root).map_or_else(
            |_| entry.display().to_string(),
            |p| format!("./{}", p.display()),
        );
        if fs.is_dir(&entry) {
            if find_kustomization(fs, &entry).is_some() {
                out.push(rel);
            } else {
                collect(fs, root, &entry, out)?;
            }
            continue;
        }
        let is_yaml = entry.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml {
            continue;
        }
        let bytes = fs.read(&entry)?;
        let text = String::from_utf8_lossy(&bytes);
        match is_kubernetes_yaml(&text) {
            Ok(true) => out.push(rel),
            Ok(false) => {}
            Err(message) => {
                return Err(Error::Yaml {
                    path: entry,
                    message,
                })
            }
        }
    }
    Ok(())
}

/// The kustomization Flux generates for a directory without one: every sub-directory
/// holding a kustomization and every Kubernetes YAML file, as `./`-relative resources.
pub fn generate_kustomization(fs: &dyn FileSystem, dir: &Path) -> Result<Value> {
    let dir = clean(dir);
    let mut resources = Vec::new();
    collect(fs, &dir, &dir, &mut resources)?;
    let mut k = Map::new();
    k.insert(
        "apiVersion".into(),
        json!("kustomize.config.k8s.io/v1beta1"),
    );
    k.insert("kind".into(), json!("Kustomization"));
    if resources.is_empty() {
        k.insert("namespace".into(), json!("_placeholder"));
    } else {
        k.insert("resources".into(), json!(resources));
    }
    Ok(Value::Object(k))
}

/// Overlays the Flux spec onto a kustomization (Flux's order and merge rules).
pub fn apply_spec(
    fs: &dyn FileSystem,
    dir: &Path,
    kustomization: &mut Value,
    spec: &FluxSpec,
) -> Result<()> {
    if !kustomization.is_object() {
        *kustomization = Value::Object(Map::new());
    }
    let k = kustomization
        .as_object_mut()
        .expect("made an object just above");
    if !k.contains_key("resources") {
        k.insert("buildMetadata".into(), json!(["originAnnotations"]));
    }
    if let Some(ns) = &spec.target_namespace {
        k.insert("namespace".into(), json!(ns));
    }
    if let Some(p) = &spec.name_prefix {
        k.insert("namePrefix".into(), json!(p));
    }
    if let Some(s) = &spec.name_suffix {
        k.insert("nameSuffix".into(), json!(s));
    }
    for patch in &spec.patches {
        let mut entry = Map::new();
        entry.insert("patch".into(), json!(patch.patch));
        if let Some(t) = &patch.target {
            entry.insert("target".into(), Value::Object(t.clone()));
        }
        push_array(k, "patches", Value::Object(entry));
    }
    for component in &spec.components {
        if component.contains("://") || Path::new(component).is_absolute() {
            return Err(Error::Unsupported {
                path: dir.to_path_buf(),
                message: format!("components: '{component}' must be a local relative path"),
            });
        }
        if spec.ignore_missing_components && !fs.is_dir(&join_clean(dir, component)) {
            continue;
        }
        push_array(k, "components", json!(component));
    }
    for image in &spec.images {
        merge_image(k, image);
    }
    if !spec.build_metadata.is_empty() {
        k.insert("buildMetadata".into(), json!(spec.build_metadata));
    }
    Ok(())
}

fn push_array(k: &mut Map<String, Value>, key: &str, value: Value) {
    let slot = k.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    if let Value::Array(items) = slot {
        items.push(value);
    }
}

fn merge_image(k: &mut Map<String, Value>, image: &FluxImage) {
    let existing = k
        .get_mut("images")
        .and_then(Value::as_array_mut)
        .and_then(|items| {
            items
                .iter_mut()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(image.name.as_str()))
        });
    if let Some(Value::Object(entry)) = existing {
        if let Some(n) = &image.new_name {
            entry.insert("newName".into(), json!(n));
        }
        if image.new_tag.is_some() || image.digest.is_some() {
            entry.remove("newTag");
            entry.remove("digest");
            if let Some(t) = &image.new_tag {
                entry.insert("newTag".into(), json!(t));
            }
            if let Some(d) = &image.digest {
                entry.insert("digest".into(), json!(d));
            }
        }
        return;
    }
    let mut entry = Map::new();
    entry.insert("name".into(), json!(image.name));
    if let Some(n) = &image.new_name {
        entry.insert("newName".into(), json!(n));
    }
    if let Some(t) = &image.new_tag {
        entry.insert("newTag".into(), json!(t));
    }
    if let Some(d) = &image.digest {
        entry.insert("digest".into(), json!(d));
    }
    push_array(k, "images", Value::Object(entry));
}

/// Sets `commonMetadata` labels and annotations on every object (overriding).
pub fn apply_common_metadata(list: &mut ResourceList, spec: &FluxSpec) {
    if spec.common_labels.is_empty() && spec.common_annotations.is_empty() {
        return;
    }
    for r in list.resources_mut() {
        let meta = r.metadata_mut();
        for (field, pairs) in [
            ("labels", &spec.common_labels),
            ("annotations", &spec.common_annotations),
        ] {
            if pairs.is_empty() {
                continue;
            }
            let slot = meta
                .entry(field)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(m) = slot {
                for (k, v) in pairs {
                    m.insert(k.clone(), json!(v));
                }
            }
        }
    }
}

/// A filesystem that shows one replaced file over another filesystem.
struct WithFile<'a> {
    inner: &'a dyn FileSystem,
    path: PathBuf,
    contents: Vec<u8>,
}

impl FileSystem for WithFile<'_> {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        if clean(path) == self.path {
            Ok(self.contents.clone())
        } else {
            self.inner.read(path)
        }
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn is_file(&self, path: &Path) -> bool {
        clean(path) == self.path || self.inner.is_file(path)
    }
    fn read_dir(&self, path: &Path) -> Result<Vec<PathBuf>> {
        self.inner.read_dir(path)
    }
    fn canonical(&self, path: &Path) -> Result<PathBuf> {
        if clean(path) == self.path {
            Ok(self.path.clone())
        } else {
            self.inner.canonical(path)
        }
    }
}

/// The whole Flux build of `dir`: find or generate the kustomization, overlay the spec,
/// build, then apply `commonMetadata`.
pub fn build_flux(
    fs: &dyn FileSystem,
    dir: &Path,
    spec: &FluxSpec,
    options: &BuildOptions,
) -> Result<ResourceList> {
    let dir = clean(dir);
    let (path, mut kustomization) = match find_kustomization(fs, &dir) {
        Some(path) => {
            let bytes = fs.read(&path)?;
            let docs =
                yaml::parse_documents(&String::from_utf8_lossy(&bytes)).map_err(|message| {
                    Error::Yaml {
                        path: path.clone(),
                        message,
                    }
                })?;
            (path, docs.into_iter().next().unwrap_or(Value::Null))
        }
        None => (
            dir.join("kustomization.yaml"),
            generate_kustomization(fs, &dir)?,
        ),
    };
    apply_spec(fs, &dir, &mut kustomization, spec)?;
    let contents = serde_json::to_vec(&kustomization).map_err(|e| Error::Kustomization {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let overlay = WithFile {
        inner: fs,
        path: clean(&path),
        contents,
    };
    let mut list = build_with(&overlay, &dir, options)?;
    apply_common_metadata(&mut list, spec);
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

    #[test]
    fn generates_resources_for_a_plain_directory() {
        let mut fs = MemFs::new();
        fs.write("repo/apps/cm.yaml", CM)
            .write("repo/apps/values.yaml", "replicas: 2\n")
            .write("repo/apps/notes.txt", "x")
            .write(
                "repo/apps/base/kustomization.yaml",
                "resources: [cm.yaml]\n",
            )
            .write("repo/apps/base/cm.yaml", CM)
            .write("repo/apps/nested/deep/svc.yml", CM);
        let k = generate_kustomization(&fs, Path::new("/repo/apps")).unwrap();
        assert_eq!(
            k["resources"],
            json!(["./base", "./cm.yaml", "./nested/deep/svc.yml"])
        );
    }

    #[test]
    fn empty_directory_gets_a_placeholder_namespace() {
        let mut fs = MemFs::new();
        fs.write("repo/empty/readme.txt", "x");
        let k = generate_kustomization(&fs, Path::new("/repo/empty")).unwrap();
        assert_eq!(k["namespace"], "_placeholder");
        assert!(k.get("resources").is_none());
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let mut fs = MemFs::new();
        fs.write("repo/bad.yaml", "a: [unclosed\n");
        let err = generate_kustomization(&fs, Path::new("/repo")).unwrap_err();
        assert!(err.to_string().contains("bad.yaml"), "{err}");
    }

    #[test]
    fn images_merge_and_tag_digest_replace_each_other() {
        let mut k = json!({"resources": ["a.yaml"], "images": [{"name": "nginx", "newTag": "1"}]});
        let spec = FluxSpec {
            images: vec![
                FluxImage {
                    name: "nginx".into(),
                    digest: Some("sha256:abc".into()),
                    ..FluxImage::default()
                },
                FluxImage {
                    name: "redis".into(),
                    new_tag: Some("7".into()),
                    ..FluxImage::default()
                },
            ],
            ..FluxSpec::default()
        };
        apply_spec(&MemFs::new(), Path::new("/"), &mut k, &spec).unwrap();
        assert_eq!(
            k["images"],
            json!([{"name": "nginx", "digest": "sha256:abc"}, {"name": "redis", "newTag": "7"}])
        );
    }

    #[test]
    fn flux_build_applies_spec_and_common_metadata() {
        let mut fs = MemFs::new();
        fs.write("repo/app/cm.yaml", CM);
        let spec = FluxSpec {
            target_namespace: Some("prod".into()),
            name_prefix: Some("p-".into()),
            patches: vec![FluxPatch {
                patch: "- op: add\n  path: /data\n  value: {k: v}\n".into(),
                target: Some(json!({"kind": "ConfigMap"}).as_object().unwrap().clone()),
            }],
            common_labels: vec![("owner".into(), "team".into())],
            ..FluxSpec::default()
        };
        let list =
            build_flux(&fs, Path::new("/repo/app"), &spec, &BuildOptions::default()).unwrap();
        let r = &list.resources()[0];
        assert_eq!(r.name(), "p-c");
        assert_eq!(r.namespace(), "prod");
        assert_eq!(r.value()["data"]["k"], "v");
        assert_eq!(r.value()["metadata"]["labels"]["owner"], "team");
    }

    #[test]
    fn missing_components_are_skipped_only_when_asked() {
        let mut k = json!({"resources": []});
        let mut spec = FluxSpec {
            components: vec!["../missing".into()],
            ..FluxSpec::default()
        };
        apply_spec(&MemFs::new(), Path::new("/app"), &mut k, &spec).unwrap();
        assert_eq!(k["components"], json!(["../missing"]));
        let mut k = json!({"resources": []});
        spec.ignore_missing_components = true;
        apply_spec(&MemFs::new(), Path::new("/app"), &mut k, &spec).unwrap();
        assert!(k.get("components").is_none());
    }

    #[test]
    fn spec_is_read_from_a_flux_kustomization() {
        let spec = json!({
            "targetNamespace": "prod",
            "patches": [{"patch": "- op: remove\n  path: /x", "target": {"kind": "ConfigMap"}}],
            "images": [{"name": "nginx", "newTag": "1.2"}],
            "components": ["c"],
            "commonMetadata": {"labels": {"team": "a"}}
        });
        let parsed = FluxSpec::from_spec("flux-system/apps", &spec).unwrap();
        assert_eq!(parsed.target_namespace.as_deref(), Some("prod"));
        assert_eq!(parsed.patches.len(), 1);
        assert_eq!(parsed.images[0].new_tag.as_deref(), Some("1.2"));
        assert_eq!(
            parsed.common_labels,
            vec![("team".to_string(), "a".to_string())]
        );
        let err = FluxSpec::from_spec("ns/app", &json!({"namePrefix": 3})).unwrap_err();
        assert!(err.to_string().contains("spec.namePrefix"), "{err}");
        let err = FluxSpec::from_spec("ns/app", &json!({"images": [{"newTag": "1"}]})).unwrap_err();
        assert!(err.to_string().contains("images[0].name"), "{err}");
    }
}
