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
use crate::resource::{Origin, Resource, ResourceList};
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
        roots: std::cell::RefCell::default(),
        build_metadata: Vec::new(),
        openapi_chosen: false,
    };
    let _schema = crate::openapi::BuildScope::enter();
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
    filters::build_metadata(&mut acc.resources, &builder.build_metadata, &dir)
        .map_err(|message| transform_err(&top_file, "buildMetadata", message))?;
    Ok(ResourceList::new(acc.resources))
}

fn within(kfile: &Path, field: &'static str, entry: &str, source: Error) -> Error {
    Error::Within {
        path: kfile.to_path_buf(),
        field,
        entry: entry.to_string(),
        source: Box::new(source),
    }
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
    /// Canonical form of each kustomization directory seen, for the load restrictor.
    roots: std::cell::RefCell<HashMap<PathBuf, PathBuf>>,
    /// The top kustomization's `buildMetadata`: when not empty, origins and
    /// transformations are tracked through the whole tree (kustomize ignores the field
    /// below the top).
    build_metadata: Vec<String>,
    /// Whether a kustomization chose the build's schema (`openapi:`); later ones are
    /// ignored, as in kustomize.
    openapi_chosen: bool,
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
            let cached = self.roots.borrow().get(dir).cloned();
            let root = match cached {
                Some(root) => root,
                None => {
                    let root = self.fs.canonical(dir)?;
                    self.roots
                        .borrow_mut()
                        .insert(dir.to_path_buf(), root.clone());
                    root
                }
            };
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
        if self.stack.is_empty() {
            self.build_metadata.clone_from(&k.build_metadata);
        }
        if let Some(openapi) = &k.openapi {
            self.choose_openapi(&kfile, dir, openapi)?;
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
        // Resources, in order; bases behave as resources. One id set for the whole field
        // keeps duplicate detection linear.
        let mut seen: HashSet<_> = acc.resources.iter().map(|r| r.id().key()).collect();
        for entry in k.bases.iter().chain(&k.resources) {
            if is_remote(entry) {
                return Err(Error::Unsupported {
                    path: kfile.to_path_buf(),
                    message: format!("resources: remote resource '{entry}' is not supported"),
                });
            }
            let path = join_clean(dir, entry);
            if self.fs.is_dir(&path) {
                let sub = self
                    .accumulate(&path, None)
                    .map_err(|e| within(kfile, "resources", entry, e))?;
                acc.config.merge(&sub.config);
                acc.vars.extend(sub.vars);
                append_resources(&mut acc.resources, &mut seen, sub.resources, kfile)?;
            } else {
                let (path, text) = self.read_text(kfile, dir, entry).map_err(|e| match e {
                    Error::Io { path, source } => Error::Kustomization {
                        path: kfile.to_path_buf(),
                        message: format!("accumulating resources: '{}': {source}", path.display()),
                    },
                    other => other,
                })?;
                let mut loaded = Self::parse_resources(&path, &text)?;
                for r in &mut loaded {
                    r.origin = Some(Origin::file(&path));
                }
                append_resources(&mut acc.resources, &mut seen, loaded, kfile)?;
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
        let before = acc.resources.len();
        generators::run(k, &mut acc.resources, &mut read).map_err(|e| e.in_file(kfile))?;
        for r in &mut acc.resources[before..] {
            if r.origin.is_none() {
                let kind = if r.kind() == "Secret" {
                    "SecretGenerator"
                } else {
                    "ConfigMapGenerator"
                };
                r.origin = Some(Origin::builtin(kfile, kind));
            }
        }
        for (config, file) in self.plugin_configs(kfile, dir, &k.generators)? {
            let mut read = |rel: &str| self.read_restricted(kfile, dir, rel);
            let before = acc.resources.len();
            generators::run_plugin(&config, &mut acc.resources, &mut read)
                .map_err(|e| e.in_file(kfile))?;
            for r in &mut acc.resources[before..] {
                r.origin
                    .get_or_insert_with(|| Origin::plugin(&config, &file));
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
            acc = self
                .accumulate(&path, Some(taken))
                .map_err(|e| within(kfile, "components", entry, e))?;
            acc.file = file;
        }
        // Built-in transformers, in kustomize's order. While origins are tracked, each
        // transformer kustomize configures from a field is recorded on every resource
        // present when it ran (one per patch, label set, replica count or image).
        let track = !self.build_metadata.is_empty();
        let record = |resources: &mut [Resource], kind: &str, times: usize| {
            if track && times > 0 {
                let origin = std::sync::Arc::new(Origin::builtin(kfile, kind));
                for r in resources {
                    for _ in 0..times {
                        r.record_transformation(&origin);
                    }
                }
            }
        };
        let mut read = |rel: &str| self.read_text(kfile, dir, rel);
        patch::strategic_merge_field(k, &mut acc.resources, &mut read)?;
        record(
            &mut acc.resources,
            "PatchStrategicMergeTransformer",
            usize::from(!k.patches_strategic_merge.is_empty()),
        );
        patch::patches_field(k, &mut acc.resources, &mut read)?;
        record(&mut acc.resources, "PatchTransformer", k.patches.len());
        let tc = acc.config.clone();
        let t = |field: &str, r: std::result::Result<(), String>| {
            r.map_err(|message| transform_err(kfile, field, message))
        };
        if let Some(ns) = k.namespace.as_deref().filter(|s| !s.is_empty()) {
            t(
                "namespace",
                filters::namespace(&mut acc.resources, ns, &tc.namespace),
            )?;
            record(&mut acc.resources, "NamespaceTransformer", 1);
        }
        if let Some(prefix) = k.name_prefix.as_deref().filter(|s| !s.is_empty()) {
            t(
                "namePrefix",
                filters::prefix_suffix(&mut acc.resources, prefix, "", &tc.name_prefix),
            )?;
            record(&mut acc.resources, "PrefixTransformer", 1);
        }
        if let Some(suffix) = k.name_suffix.as_deref().filter(|s| !s.is_empty()) {
            t(
                "nameSuffix",
                filters::prefix_suffix(&mut acc.resources, "", suffix, &tc.name_suffix),
            )?;
            record(&mut acc.resources, "SuffixTransformer", 1);
        }
        for label in &k.labels {
            let specs = filters::label_specs(label, &tc);
            t(
                "labels",
                filters::set_map_fields(&mut acc.resources, &label.pairs, &specs),
            )?;
            record(&mut acc.resources, "LabelTransformer", 1);
        }
        if !k.common_labels.is_empty() {
            t(
                "commonLabels",
                filters::set_map_fields(&mut acc.resources, &k.common_labels, &tc.common_labels),
            )?;
        }
        // kustomize configures the commonLabels transformer whenever `labels` or
        // `commonLabels` is set, even with no labels of its own.
        record(
            &mut acc.resources,
            "LabelTransformer",
            usize::from(!k.labels.is_empty() || !k.common_labels.is_empty()),
        );
        if !k.common_annotations.is_empty() {
            t(
                "commonAnnotations",
                filters::set_map_fields(
                    &mut acc.resources,
                    &k.common_annotations,
                    &tc.common_annotations,
                ),
            )?;
            record(&mut acc.resources, "AnnotationsTransformer", 1);
        }
        patch::json6902_field(k, &mut acc.resources, &mut read)?;
        record(
            &mut acc.resources,
            "PatchJson6902Transformer",
            k.patches_json6902.len(),
        );
        t(
            "replicas",
            filters::replicas(&mut acc.resources, &k.replicas, &tc.replicas),
        )?;
        record(
            &mut acc.resources,
            "ReplicaCountTransformer",
            k.replicas.len(),
        );
        for image in k.images.iter().chain(&k.image_tags) {
            t(
                "images",
                filters::image(&mut acc.resources, image, &tc.images),
            )?;
            record(&mut acc.resources, "ImageTagTransformer", 1);
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
        record(
            &mut acc.resources,
            "ReplacementTransformer",
            usize::from(!k.replacements.is_empty()),
        );
        // Transformer plugins configured inline or from files.
        for (config, file) in self.plugin_configs(kfile, dir, &k.transformers)? {
            let mut read = |rel: &str| self.read_text(kfile, dir, rel);
            patch::run_transformer_plugin(&config, &mut acc.resources, &tc, &mut read)
                .map_err(|e| e.in_file(kfile))?;
            if track {
                let origin = std::sync::Arc::new(Origin::plugin(&config, &file));
                for r in &mut acc.resources {
                    r.record_transformation(&origin);
                }
            }
        }
        self.plugin_configs(kfile, dir, &k.validators)?;
        acc.vars.extend(k.vars.iter().cloned());
        // Only the top kustomization's sortOptions count (not its components').
        if k.sort_options.is_some() && self.stack.len() == 1 {
            acc.sort.clone_from(&k.sort_options);
        }
        Ok(acc)
    }

    /// The `openapi:` field: the first kustomization that names a schema (the top one
    /// first) sets it for the rest of the build.
    fn choose_openapi(
        &mut self,
        kfile: &Path,
        dir: &Path,
        openapi: &indexmap::IndexMap<String, String>,
    ) -> Result<()> {
        if self.openapi_chosen {
            return Ok(());
        }
        let fail = |message: String| transform_err(kfile, "openapi", message);
        let version = openapi.get("version").filter(|v| !v.is_empty());
        match (openapi.get("path"), version) {
            (Some(_), Some(_)) => Err(fail(
                "builtin version and custom schema provided, cannot use both".into(),
            )),
            (Some(rel), None) => {
                let (path, text) = self.read_text(kfile, dir, rel)?;
                let schema = crate::openapi::OpenApi::parse(&text)
                    .map_err(|message| Error::Yaml { path, message })?;
                crate::openapi::set(Some(std::sync::Arc::new(schema)));
                self.openapi_chosen = true;
                Ok(())
            }
            (None, Some(v)) if v == crate::openapi::BUILTIN_VERSION => {
                self.openapi_chosen = true;
                Ok(())
            }
            (None, Some(v)) => Err(fail(format!(
                "the specified OpenAPI version '{v}' is not built in (only {})",
                crate::openapi::BUILTIN_VERSION
            ))),
            (None, None) => Ok(()),
        }
    }

    /// Plugin configurations of a `generators:`/`transformers:`/`validators:` field, each
    /// with the file it came from, in kustomize's order: every inline configuration
    /// first, then those read from files or directories (kustomizations).
    fn plugin_configs(
        &mut self,
        kfile: &Path,
        dir: &Path,
        entries: &[String],
    ) -> Result<Vec<(Value, PathBuf)>> {
        let is_inline =
            |entry: &str| entry.contains('\n') || entry.trim_start().starts_with("apiVersion:");
        let mut out = Vec::new();
        for entry in entries.iter().filter(|e| is_inline(e)) {
            let docs = yaml::parse_documents(entry).map_err(|message| Error::Yaml {
                path: kfile.to_path_buf(),
                message,
            })?;
            out.extend(docs.into_iter().map(|d| (d, kfile.to_path_buf())));
        }
        for entry in entries.iter().filter(|e| !is_inline(e)) {
            let path = join_clean(dir, entry);
            if self.fs.is_dir(&path) {
                let sub = self.accumulate(&path, None)?;
                out.extend(sub.resources.into_iter().map(|r| {
                    let file = r
                        .origin
                        .as_ref()
                        .and_then(|o| o.path.clone())
                        .unwrap_or_else(|| path.clone());
                    (r.into_value(), file)
                }));
                continue;
            }
            let (file, text) = self.read_text(kfile, dir, entry)?;
            let docs = yaml::parse_documents(&text).map_err(|message| Error::Yaml {
                path: file.clone(),
                message,
            })?;
            out.extend(docs.into_iter().map(|d| (d, file.clone())));
        }
        Ok(out)
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
    seen: &mut HashSet<(crate::resource::Gvk, String, String)>,
    more: Vec<Resource>,
    kfile: &Path,
) -> Result<()> {
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
            let gvk_key = id.gvk.legacy_cmp_string();
            (rank, id, gvk_key)
        })
        .collect();
    let mut idx: Vec<usize> = (0..resources.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ra, ia, ga) = &keyed[a];
        let (rb, ib, gb) = &keyed[b];
        ra.cmp(rb)
            .then_with(|| {
                if ia.gvk == ib.gvk {
                    std::cmp::Ordering::Equal
                } else {
                    let ns_special = ia.gvk.kind == "Namespace"
                        && ib.gvk.kind == "Namespace"
                        && (ia.gvk.group.is_empty() || ib.gvk.group.is_empty());
                    let o = ga.cmp(gb);
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
    let mut taken: Vec<Option<Resource>> = resources
        .iter_mut()
        .map(|r| Some(std::mem::replace(r, Resource::new(Value::Null))))
        .collect();
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
                // Origins are kustomize's to write: any found in the input go (kustomize
                // removes them unless buildMetadata writes its own).
                || matches!(
                    k.as_str(),
                    "config.kubernetes.io/index"
                        | "config.kubernetes.io/path"
                        | "config.kubernetes.io/origin"
                        | "alpha.config.kubernetes.io/transformations"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{DiskFs, MemFs};

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n";

    #[test]
    fn builds_in_memory_with_namespace_and_prefix() {
        let mut fs = MemFs::new();
        fs.write(
            "app/kustomization.yaml",
            "resources: [cm.yaml]\nnamespace: prod\nnamePrefix: p-\n",
        )
        .write("app/cm.yaml", CM);
        let list = build(&fs, "/app").unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list.resources()[0].name(), "p-c");
        assert_eq!(list.resources()[0].namespace(), "prod");
    }

    #[test]
    fn cycle_is_an_error() {
        let mut fs = MemFs::new();
        fs.write("a/kustomization.yaml", "resources: [../b]\n")
            .write("b/kustomization.yaml", "resources: [../a]\n");
        let err = build(&fs, "/a").unwrap_err();
        // The chain names each kustomization on the way to the cycle.
        let Error::Within { source, .. } = &err else {
            panic!("{err}");
        };
        let Error::Within { source, .. } = source.as_ref() else {
            panic!("{source}");
        };
        assert!(matches!(source.as_ref(), Error::Cycle { .. }), "{source}");
    }

    #[test]
    fn file_outside_the_kustomization_is_refused_unless_unrestricted() {
        let mut fs = MemFs::new();
        fs.write("app/kustomization.yaml", "resources: [../cm.yaml]\n")
            .write("cm.yaml", CM);
        let err = build(&fs, "/app").unwrap_err();
        assert!(matches!(err, Error::LoadRestrictor { .. }), "{err}");
        let options = BuildOptions {
            load_restrictor: LoadRestrictor::None,
        };
        assert_eq!(build_with(&fs, "/app", &options).unwrap().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_to_a_file_outside_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.yaml"), CM).unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("kustomization.yaml"),
            "resources: [link.yaml]\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.yaml"),
            root.path().join("link.yaml"),
        )
        .unwrap();
        // Even with an unrestricted disk, the rootOnly restrictor resolves the link.
        let err = build(&DiskFs::unrestricted(), root.path()).unwrap_err();
        assert!(matches!(err, Error::LoadRestrictor { .. }), "{err}");
        // A disk confined to the root refuses to open the target at all.
        let options = BuildOptions {
            load_restrictor: LoadRestrictor::None,
        };
        let fs = DiskFs::confined(root.path()).unwrap();
        let err = build_with(&fs, root.path(), &options).unwrap_err();
        assert!(matches!(err, Error::OutsideRoot { .. }), "{err}");
    }

    #[test]
    fn json_patch_replacing_the_whole_object_is_an_error_not_a_panic() {
        let mut fs = MemFs::new();
        fs.write(
            "app/kustomization.yaml",
            "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap}\n  patch: '[{\"op\": \"replace\", \"path\": \"\", \"value\": 5}]'\nnamespace: x\n",
        )
        .write("app/cm.yaml", CM);
        let err = build(&fs, "/app").unwrap_err();
        assert!(matches!(err, Error::Transform { .. }), "{err}");
    }

    #[test]
    fn remote_resources_are_a_clear_error() {
        let mut fs = MemFs::new();
        fs.write(
            "app/kustomization.yaml",
            "resources: [github.com/org/repo//path?ref=v1]\n",
        );
        let err = build(&fs, "/app").unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    }
}
