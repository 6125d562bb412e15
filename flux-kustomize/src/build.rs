//! The build: accumulate a kustomization tree in kustomize's order.
//!
//! For each kustomization: resources (recursing into bases), configurations,
//! generators, components, then the built-in transformers in kustomize's fixed order
//! (strategic-merge patches, patches, namespace, prefix, suffix, labels, annotations,
//! JSON 6902 patches, replicas, images, replacements), then `transformers:`. At the top
//! only: content hashes on generated names, name references, vars, sorting.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldspec::TransformerConfig;
use crate::fs::{join_clean, FileSystem};
use crate::resource::{Resource, ResourceList};
use crate::types::{Kustomization, SortOptions, Var};
use crate::{filters, generators, patch, yaml};

/// Which files a kustomization may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadRestrictor {
    /// Files must sit in or below the directory of the kustomization naming them.
    #[default]
    RootOnly,
    /// Any file may be read.
    None,
}

/// Options of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The load restrictor (kustomize's `--load-restrictor`).
    pub load_restrictor: LoadRestrictor,
}

/// The names kustomize accepts for a kustomization file, in its order of preference.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Builds the kustomization in directory `path` with default options.
pub fn build(fs: &dyn FileSystem, path: impl AsRef<Path>) -> Result<ResourceList> {
    build_with(fs, path, &BuildOptions::default())
}

/// Builds the kustomization in directory `path`.
pub fn build_with(
    fs: &dyn FileSystem,
    path: impl AsRef<Path>,
    options: &BuildOptions,
) -> Result<ResourceList> {
    let dir = crate::fs::clean(path.as_ref());
    let mut builder = Builder {
        fs,
        options,
        stack: Vec::new(),
    };
    let mut acc = builder.accumulate(&dir, None)?;
    let top_file = acc.file.clone();
    generators::add_hash_suffixes(&mut acc.resources);
    filters::name_reference(&mut acc.resources, &acc.config)
        .map_err(|message| transform_err(&top_file, "nameReference", message))?;
    filters::resolve_vars(&mut acc.resources, &acc.vars, &acc.config)
        .map_err(|message| transform_err(&top_file, "vars", message))?;
    sort_resources(&mut acc.resources, acc.sort.as_ref())
        .map_err(|message| transform_err(&top_file, "sortOptions", message))?;
    for r in &mut acc.resources {
        strip_build_annotations(r);
    }
    Ok(ResourceList::new(acc.resources))
}

fn transform_err(path: &Path, field: &str, message: String) -> Error {
    Error::Transform {
        path: path.to_path_buf(),
        field: field.to_string(),
        message,
    }
}

/// What a kustomization directory contributes.
pub(crate) struct Accumulated {
    pub resources: Vec<Resource>,
    pub config: TransformerConfig,
    pub vars: Vec<Var>,
    pub sort: Option<SortOptions>,
    pub file: PathBuf,
}

struct Builder<'a> {
    fs: &'a dyn FileSystem,
    options: &'a BuildOptions,
    stack: Vec<PathBuf>,
}

/// Remote references that need a fetcher this library does not have.
fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("github.com/")
        || entry.starts_with("git@")
        || entry.starts_with("gitlab.com/")
        || entry.starts_with("bitbucket.org/")
}

impl Builder<'_> {
    fn find_kustomization(&self, dir: &Path) -> Result<PathBuf> {
        for name in KUSTOMIZATION_FILE_NAMES {
            let candidate = dir.join(name);
            if self.fs.is_file(&candidate) {
                return Ok(candidate);
            }
        }
        Err(Error::MissingKustomization {
            path: dir.to_path_buf(),
        })
    }

    /// Reads a file named by the kustomization `kfile`, enforcing the load restrictor.
    fn read_restricted(&self, kfile: &Path, dir: &Path, rel: &str) -> Result<(PathBuf, Vec<u8>)> {
        let path = join_clean(dir, rel);
        if self.options.load_restrictor == LoadRestrictor::RootOnly {
            let real = self.fs.canonical(&path).map_err(|e| match e {
                Error::Io { source, .. } => Error::Io {
                    path: path.clone(),
                    source,
                },
                other => other,
            })?;
            let root = self.fs.canonical(dir)?;
            if !real.starts_with(&root) {
                return Err(Error::LoadRestrictor {
                    kustomization: kfile.to_path_buf(),
                    path: real,
                    root,
                });
            }
        }
        let bytes = self.fs.read(&path)?;
        Ok((path, bytes))
    }

    fn read_text(&self, kfile: &Path, dir: &Path, rel: &str) -> Result<(PathBuf, String)> {
        let (path, bytes) = self.read_restricted(kfile, dir, rel)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Yaml {
            path: path.clone(),
            message: "not valid UTF-8".into(),
        })?;
        Ok((path, text))
    }

    fn parse_resources(path: &Path, text: &str) -> Result<Vec<Resource>> {
        let docs = yaml::parse_documents(text).map_err(|message| Error::Yaml {
            path: path.to_path_buf(),
            message,
        })?;
        let mut out = Vec::new();
        for doc in docs {
            push_resource(path, doc, &mut out)?;
        }
        Ok(out)
    }

    fn load_kustomization(&self, kfile: &Path) -> Result<Kustomization> {
        let bytes = self.fs.read(kfile)?;
        let text = String::from_utf8_lossy(&bytes);
        let docs = yaml::parse_documents(&text).map_err(|message| Error::Yaml {
            path: kfile.to_path_buf(),
            message,
        })?;
        let doc = docs
            .into_iter()
            .next()
            .unwrap_or(Value::Object(serde_json::Map::new()));
        serde_json::from_value(doc).map_err(|e| Error::Kustomization {
            path: kfile.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Accumulates one kustomization directory. A component (`into` given) is applied on
    /// top of its parent's resources.
    fn accumulate(&mut self, dir: &Path, into: Option<Accumulated>) -> Result<Accumulated> {
        let real_dir = self.fs.canonical(dir).map_err(|e| match e {
            Error::Io { source, .. } => Error::Io {
                path: dir.to_path_buf(),
                source,
            },
            other => other,
        })?;
        if self.stack.contains(&real_dir) {
            let chain = self
                .stack
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" -> ");
            return Err(Error::Cycle {
                path: dir.to_path_buf(),
                chain,
            });
        }
        let kfile = self.find_kustomization(dir)?;
        let k = self.load_kustomization(&kfile)?;
        let is_component = k.kind.as_deref() == Some("Component");
        if into.is_some() && !is_component {
            return Err(Error::Kustomization {
                path: kfile.clone(),
                message: format!(
                    "expected kind 'Component' for path '{}' but got '{}'",
                    dir.display(),
                    k.kind.as_deref().unwrap_or("Kustomization")
                ),
            });
        }
        if into.is_none() && is_component && !self.stack.is_empty() {
            return Err(Error::Kustomization {
                path: kfile.clone(),
                message: "a Component can only be used in the components field of a kustomization"
                    .into(),
            });
        }
        self.stack.push(real_dir);
        let result = self.accumulate_inner(dir, &kfile, &k, into);
        self.stack.pop();
        result
    }

    fn accumulate_inner(
        &mut self,
        dir: &Path,
        kfile: &Path,
        k: &Kustomization,
        into: Option<Accumulated>,
    ) -> Result<Accumulated> {
        let mut acc = into.unwrap_or_else(|| Accumulated {
            resources: Vec::new(),
            config: TransformerConfig::defaults().clone(),
            vars: Vec::new(),
            sort: None,
            file: kfile.to_path_buf(),
        });
        if !k.helm_charts.is_empty() || !k.helm_chart_inflation_generator.is_empty() {
            return Err(Error::Unsupported {
                path: kfile.to_path_buf(),
                message: "helmCharts: Helm is not enabled (kustomize's --enable-helm)".into(),
            });
        }
        // Resources, in order; bases behave as resources.
        for entry in k.bases.iter().chain(&k.resources) {
            if is_remote(entry) {
                return Err(Error::Unsupported {
                    path: kfile.to_path_buf(),
                    message: format!("resources: remote resource '{entry}' is not supported"),
                });
            }
            let path = join_clean(dir, entry);
            if self.fs.is_dir(&path) {
                let sub = self.accumulate(&path, None)?;
                acc.config.merge(&sub.config);
                acc.vars.extend(sub.vars);
                append_resources(&mut acc.resources, sub.resources, kfile)?;
            } else {
                let (path, text) = self.read_text(kfile, dir, entry).map_err(|e| match e {
                    Error::Io { path, source } => Error::Kustomization {
                        path: kfile.to_path_buf(),
                        message: format!("accumulating resources: '{}': {source}", path.display()),
                    },
                    other => other,
                })?;
                let loaded = Self::parse_resources(&path, &text)?;
                append_resources(&mut acc.resources, loaded, kfile)?;
            }
        }
        // Transformer configurations and CRDs.
        for entry in &k.configurations {
            let (path, text) = self.read_text(kfile, dir, entry)?;
            for doc in yaml::parse_documents(&text).map_err(|message| Error::Yaml {
                path: path.clone(),
                message,
            })? {
                acc.config
                    .merge_file(&doc)
                    .map_err(|message| transform_err(&path, "configurations", message))?;
            }
        }
        for entry in &k.crds {
            let (path, text) = self.read_text(kfile, dir, entry)?;
            let docs = yaml::parse_documents(&text).map_err(|message| Error::Yaml {
                path: path.clone(),
                message,
            })?;
            filters::merge_crd_config(&mut acc.config, &docs);
        }
        // Generators.
        let mut read = |rel: &str| self.read_restricted(kfile, dir, rel);
        generators::run(k, &mut acc.resources, &mut read).map_err(|e| e.in_file(kfile))?;
        for entry in &k.generators {
            let configs = self.plugin_configs(kfile, dir, entry)?;
            for config in configs {
                let mut read = |rel: &str| self.read_restricted(kfile, dir, rel);
                generators::run_plugin(&config, &mut acc.resources, &mut read)
                    .map_err(|e| e.in_file(kfile))?;
            }
        }
        // Components, on top of what we have so far.
        for entry in &k.components {
            if is_remote(entry) {
                return Err(Error::Unsupported {
                    path: kfile.to_path_buf(),
                    message: format!("components: remote component '{entry}' is not supported"),
                });
            }
            let path = join_clean(dir, entry);
            let taken = std::mem::replace(
                &mut acc,
                Accumulated {
                    resources: Vec::new(),
                    config: TransformerConfig::default(),
                    vars: Vec::new(),
                    sort: None,
                    file: kfile.to_path_buf(),
                },
            );
            let file = taken.file.clone();
            acc = self.accumulate(&path, Some(taken))?;
            acc.file = file;
        }
        // Built-in transformers, in kustomize's order.
        let mut read = |rel: &str| self.read_text(kfile, dir, rel);
        patch::strategic_merge_field(k, &mut acc.resources, &mut read)?;
        patch::patches_field(k, &mut acc.resources, &mut read)?;
        let tc = acc.config.clone();
        let t = |field: &str, r: std::result::Result<(), String>| {
            r.map_err(|message| transform_err(kfile, field, message))
        };
        if let Some(ns) = k.namespace.as_deref().filter(|s| !s.is_empty()) {
            t(
                "namespace",
                filters::namespace(&mut acc.resources, ns, &tc.namespace),
            )?;
        }
        if let Some(prefix) = k.name_prefix.as_deref().filter(|s| !s.is_empty()) {
            t(
                "namePrefix",
                filters::prefix_suffix(&mut acc.resources, prefix, "", &tc.name_prefix),
            )?;
        }
        if let Some(suffix) = k.name_suffix.as_deref().filter(|s| !s.is_empty()) {
            t(
                "nameSuffix",
                filters::prefix_suffix(&mut acc.resources, "", suffix, &tc.name_suffix),
            )?;
        }
        for label in &k.labels {
            let specs = filters::label_specs(label, &tc);
            t(
                "labels",
                filters::set_map_fields(&mut acc.resources, &label.pairs, &specs),
            )?;
        }
        if !k.common_labels.is_empty() {
            t(
                "commonLabels",
                filters::set_map_fields(&mut acc.resources, &k.common_labels, &tc.common_labels),
            )?;
        }
        if !k.common_annotations.is_empty() {
            t(
                "commonAnnotations",
                filters::set_map_fields(
                    &mut acc.resources,
                    &k.common_annotations,
                    &tc.common_annotations,
                ),
            )?;
        }
        patch::json6902_field(k, &mut acc.resources, &mut read)?;
        t(
            "replicas",
            filters::replicas(&mut acc.resources, &k.replicas, &tc.replicas),
        )?;
        for image in k.images.iter().chain(&k.image_tags) {
            t(
                "images",
                filters::image(&mut acc.resources, image, &tc.images),
            )?;
        }
        for entry in &k.replacements {
            let replacements = match entry.get("path").and_then(Value::as_str) {
                Some(rel) => {
                    let (path, text) = self.read_text(kfile, dir, rel)?;
                    yaml::parse_documents(&text)
                        .map_err(|message| Error::Yaml { path, message })?
                        .into_iter()
                        .flat_map(|d| match d {
                            Value::Array(items) => items,
                            other => vec![other],
                        })
                        .collect()
                }
                None => vec![entry.clone()],
            };
            for replacement in &replacements {
                t(
                    "replacements",
                    filters::replacement(&mut acc.resources, replacement),
                )?;
            }
        }
        // Transformer plugins configured from files or inline.
        for entry in &k.transformers {
            let configs = self.plugin_configs(kfile, dir, entry)?;
            for config in configs {
                let mut read = |rel: &str| self.read_text(kfile, dir, rel);
                patch::run_transformer_plugin(&config, &mut acc.resources, &tc, &mut read)
                    .map_err(|e| e.in_file(kfile))?;
            }
        }
        for entry in &k.validators {
            let _ = self.plugin_configs(kfile, dir, entry)?;
        }
        acc.vars.extend(k.vars.iter().cloned());
        if k.sort_options.is_some() {
            acc.sort.clone_from(&k.sort_options);
        }
        filters::build_metadata(&mut acc.resources, &k.build_metadata, kfile)
            .map_err(|message| transform_err(kfile, "buildMetadata", message))?;
        Ok(acc)
    }

    /// Plugin configurations named by a `generators:`/`transformers:` entry: a file, a
    /// directory of them (a kustomization), or inline YAML.
    fn plugin_configs(&mut self, kfile: &Path, dir: &Path, entry: &str) -> Result<Vec<Value>> {
        if entry.contains('\n') || entry.trim_start().starts_with("apiVersion:") {
            return yaml::parse_documents(entry).map_err(|message| Error::Yaml {
                path: kfile.to_path_buf(),
                message,
            });
        }
        let path = join_clean(dir, entry);
        if self.fs.is_dir(&path) {
            let sub = self.accumulate(&path, None)?;
            return Ok(sub
                .resources
                .into_iter()
                .map(Resource::into_value)
                .collect());
        }
        let (path, text) = self.read_text(kfile, dir, entry)?;
        yaml::parse_documents(&text).map_err(|message| Error::Yaml { path, message })
    }
}

/// Adds a parsed document as resources (expanding `List` kinds).
fn push_resource(path: &Path, doc: Value, out: &mut Vec<Resource>) -> Result<()> {
    let Value::Object(map) = doc else {
        return Err(Error::InvalidResource {
            path: path.to_path_buf(),
            message: "a resource must be a YAML map".into(),
        });
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if kind.ends_with("List") && map.get("items").is_some_and(Value::is_array) {
        if let Some(Value::Array(items)) = map.get("items").cloned() {
            for item in items {
                push_resource(path, item, out)?;
            }
        }
        return Ok(());
    }
    if kind.is_empty() {
        return Err(Error::InvalidResource {
            path: path.to_path_buf(),
            message: "missing kind".into(),
        });
    }
    let r = Resource::new(Value::Object(map));
    if r.name().is_empty()
        && r.value()
            .get("metadata")
            .and_then(|m| m.get("generateName"))
            .is_none()
    {
        return Err(Error::InvalidResource {
            path: path.to_path_buf(),
            message: format!("{kind}: missing metadata.name"),
        });
    }
    out.push(r);
    Ok(())
}

/// Appends resources, refusing duplicate ids.
pub(crate) fn append_resources(
    into: &mut Vec<Resource>,
    more: Vec<Resource>,
    kfile: &Path,
) -> Result<()> {
    let mut seen: HashSet<_> = into.iter().map(|r| r.id().key()).collect();
    for r in more {
        let id = r.id();
        if !seen.insert(id.key()) {
            return Err(Error::DuplicateId {
                path: kfile.to_path_buf(),
                id: id.to_string(),
            });
        }
        into.push(r);
    }
    Ok(())
}

fn sort_resources(
    resources: &mut [Resource],
    options: Option<&SortOptions>,
) -> std::result::Result<(), String> {
    let (first, last): (Vec<String>, Vec<String>) = match options {
        Some(o) => match o.order.as_deref() {
            Some("fifo") => {
                if o.legacy_sort_options.is_some() {
                    return Err("the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'".into());
                }
                return Ok(());
            }
            Some("legacy") => match &o.legacy_sort_options {
                Some(l) => (l.order_first.clone(), l.order_last.clone()),
                None => (Vec::new(), Vec::new()),
            },
            _ => return Err("the field 'sortOptions.order' must be one of [fifo, legacy]".into()),
        },
        None => (Vec::new(), Vec::new()),
    };
    let custom = options
        .and_then(|o| o.legacy_sort_options.as_ref())
        .is_some();
    let order: HashMap<&str, i64> = if custom {
        let mut m = HashMap::new();
        for (i, n) in first.iter().enumerate() {
            m.insert(n.as_str(), i as i64 - first.len() as i64);
        }
        for (i, n) in last.iter().enumerate() {
            m.insert(n.as_str(), 1 + i as i64);
        }
        m
    } else {
        HashMap::new()
    };
    let keyed: Vec<_> = resources
        .iter()
        .map(|r| {
            let id = r.id();
            let rank = if custom {
                order.get(id.gvk.kind.as_str()).copied().unwrap_or(0)
            } else {
                crate::resource::legacy_rank(&id.gvk.kind)
            };
            (rank, id)
        })
        .collect();
    let mut idx: Vec<usize> = (0..resources.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ra, ia) = &keyed[a];
        let (rb, ib) = &keyed[b];
        ra.cmp(rb)
            .then_with(|| {
                if ia.gvk == ib.gvk {
                    std::cmp::Ordering::Equal
                } else {
                    let ns_special = ia.gvk.kind == "Namespace"
                        && ib.gvk.kind == "Namespace"
                        && (ia.gvk.group.is_empty() || ib.gvk.group.is_empty());
                    let o = ia.gvk.legacy_cmp_string().cmp(&ib.gvk.legacy_cmp_string());
                    if ns_special {
                        o.reverse()
                    } else {
                        o
                    }
                }
            })
            .then_with(|| {
                let ns = |s: &str| {
                    if s.is_empty() {
                        "~X".to_string()
                    } else {
                        s.to_string()
                    }
                };
                let nm = |s: &str| {
                    if s.is_empty() {
                        "~N".to_string()
                    } else {
                        s.to_string()
                    }
                };
                (ns(&ia.namespace), nm(&ia.name)).cmp(&(ns(&ib.namespace), nm(&ib.name)))
            })
    });
    let mut taken: Vec<Option<Resource>> = resources.iter().cloned().map(Some).collect();
    for (slot, i) in idx.into_iter().enumerate() {
        if let Some(r) = taken[i].take() {
            resources[slot] = r;
        }
    }
    Ok(())
}

fn strip_build_annotations(r: &mut Resource) {
    let meta = r.metadata_mut();
    if meta
        .get("annotations")
        .is_some_and(|a| a.is_null() || a.as_object().is_some_and(serde_json::Map::is_empty))
    {
        meta.remove("annotations");
    }
    let mut empty = false;
    if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
        let before = ann.len();
        ann.retain(|k, _| {
            !(k.starts_with("internal.config.kubernetes.io/")
                || k.starts_with("config.kubernetes.io/")
                    && matches!(
                        k.as_str(),
                        "config.kubernetes.io/index" | "config.kubernetes.io/path"
                    )
                || k == "kustomize.config.k8s.io/id"
                || k == "kustomize.config.k8s.io/needs-hash"
                || k == "kustomize.config.k8s.io/behavior")
        });
        empty = ann.is_empty() && before > 0 && ann.len() != before;
    }
    if empty {
        meta.remove("annotations");
    }
}
