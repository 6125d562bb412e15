//! Offline rendering of a Flux repository: what `flux-rs build cluster` runs.
//!
//! Starting from a cluster directory (e.g. `clusters/staging`), the renderer finds the
//! Kustomization that syncs it (the bootstrap `flux-system` one), builds it the way
//! kustomize-controller would, and follows every Kustomization and HelmRelease that appears in
//! the output whose source is this same repository: generation of `kustomization.yaml`, spec
//! overrides, build, SOPS decryption, post-build substitution (with `substituteFrom` objects
//! found in earlier builds), owner labels, `commonMetadata`, and Helm rendering with values
//! from `valuesFrom` objects. `dependsOn` decides the order; cycles are reported.
//!
//! Decryption and chart rendering come in through the [`Decrypt`] and [`ChartRenderer`] seams.

pub mod diff;
pub mod generators;
pub mod order;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use flux_kustomize::flux::{build_flux, FluxSpec};
use flux_kustomize::postbuild::{self, Strategy, Variables};
use flux_kustomize::DiskFs;
use serde_json::{json, Map, Value};

use crate::manifest::{scalar_string, set_metadata, string_data, substitution_disabled};

/// Label Flux stamps with the owning Kustomization's name.
pub const OWNER_NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// Label Flux stamps with the owning Kustomization's namespace.
pub const OWNER_NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// What Flux puts in place of SOPS-decrypted Secret values in build output.
pub const SOPS_MASK: &str = "**SOPS**";

/// Decrypts SOPS-encrypted resources with the keys the user supplied.
pub trait Decrypt {
    /// Decrypts `object` in place when it is SOPS-encrypted and returns whether it was.
    /// An object that looks encrypted but cannot be decrypted is an error.
    fn decrypt(&self, object: &mut Value) -> Result<bool, String>;

    /// Decrypts a file a generator consumes (`name` picks the format by extension); `None`
    /// when it is not SOPS-encrypted.
    fn decrypt_file(&self, name: &str, data: &[u8]) -> Result<Option<Vec<u8>>, String>;
}

/// Renders a Helm chart from a local directory.
pub trait ChartRenderer {
    /// Renders `chart_dir` as release `release` in `namespace` with user `values`
    /// (merged over the chart's defaults by the renderer), CRDs included.
    fn render(
        &self,
        chart_dir: &Path,
        release: &str,
        namespace: &str,
        values: &Value,
    ) -> Result<Vec<Value>, String>;
}

/// How to render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// The cluster directory, e.g. `examples/fleet/clusters/staging`.
    pub cluster_path: PathBuf,
    /// The repository root; found from the cluster's own Kustomization when `None`.
    pub root: Option<PathBuf>,
    /// Fail on variables referenced without a value (Flux's default).
    pub strict_substitute: bool,
    /// Local directories standing in for external sources, keyed `Kind/namespace/name`.
    pub local_sources: BTreeMap<String, PathBuf>,
    /// Keep decrypted Secret values in the output instead of masking them.
    pub show_secrets: bool,
}

/// How to render one Flux Kustomization read from a file (`build kustomization`).
#[derive(Debug, Clone)]
pub struct KustomizationOptions {
    /// The Flux `Kustomization` object.
    pub object: Value,
    /// The local directory matching its `spec.path` (flux's `--path`).
    pub path: PathBuf,
    /// The source root the build is confined to; the enclosing git repository (or `path`)
    /// when `None`.
    pub root: Option<PathBuf>,
    /// Also render the Kustomizations and HelmReleases found in the output (`-r`).
    pub recursive: bool,
    /// Skip `postBuild.substituteFrom` (flux's `--dry-run`: no cluster to read them from).
    pub dry_run: bool,
    /// Fail on variables referenced without a value.
    pub strict_substitute: bool,
    /// Local directories standing in for external sources, keyed `Kind/namespace/name`.
    pub local_sources: BTreeMap<String, PathBuf>,
    /// Keep decrypted Secret values in the output instead of masking them.
    pub show_secrets: bool,
    /// Objects that already exist (ConfigMaps and Secrets read from a cluster), visible to
    /// `substituteFrom` and `valuesFrom` like rendered ones.
    pub known_objects: Vec<Value>,
}

/// The knobs the renderer itself uses, whichever entry point started it.
#[derive(Debug, Clone)]
struct Settings {
    strict_substitute: bool,
    local_sources: BTreeMap<String, PathBuf>,
    show_secrets: bool,
    recursive: bool,
    skip_substitute_from: bool,
}

/// What happened to one Kustomization or HelmRelease.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Rendered into these objects.
    Rendered(Vec<Value>),
    /// Not rendered, for this reason (an external source, say).
    Skipped(String),
    /// Rendering failed.
    Failed(String),
}

/// One rendered (or skipped, or failed) Flux object.
#[derive(Debug, Clone)]
pub struct Unit {
    /// `Kustomization` or `HelmRelease`.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.path` for a Kustomization, the chart for a HelmRelease.
    pub path: String,
    /// The result.
    pub outcome: Outcome,
    /// Time spent rendering it.
    pub elapsed: Duration,
}

impl Unit {
    /// `Kind/namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The whole render of one cluster.
#[derive(Debug, Clone)]
pub struct Report {
    /// The repository root used.
    pub root: PathBuf,
    /// Every unit, in the order rendered.
    pub units: Vec<Unit>,
}

impl Report {
    /// Units that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Unit> {
        self.units
            .iter()
            .filter(|u| matches!(u.outcome, Outcome::Failed(_)))
    }
}

/// Errors that stop the whole render (per-unit failures are reported in [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The cluster path is not a directory.
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The Kustomization given to `build kustomization` is unusable.
    #[error("{0}")]
    Object(String),
    /// The cluster path could not be built at all.
    #[error("{}: {message}", path.display())]
    Entry {
        /// The cluster path.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A discovered Flux object waiting to be rendered.
#[derive(Debug, Clone)]
struct Pending {
    kind: &'static str,
    namespace: String,
    name: String,
    object: Value,
    depends_on: Vec<String>,
    /// A local directory to build instead of `spec.path` under the source (`--path`).
    dir_override: Option<PathBuf>,
}

impl Pending {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    fn from_object(kind: &'static str, object: &Value, default_ns: &str) -> Self {
        let namespace = str_at(object, &["metadata", "namespace"])
            .unwrap_or(default_ns)
            .to_string();
        let name = str_at(object, &["metadata", "name"])
            .unwrap_or("")
            .to_string();
        let depends_on = object
            .pointer("/spec/dependsOn")
            .and_then(Value::as_array)
            .map(|deps| {
                deps.iter()
                    .filter_map(|d| {
                        let name = d.get("name")?.as_str()?;
                        let ns = d
                            .get("namespace")
                            .and_then(Value::as_str)
                            .unwrap_or(&namespace);
                        Some(format!("{kind}/{ns}/{name}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            kind,
            namespace,
            name,
            object: object.clone(),
            depends_on,
            dir_override: None,
        }
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// Renders the cluster at `options.cluster_path`.
pub fn render_cluster(
    options: &RenderOptions,
    decrypt: &dyn Decrypt,
    charts: &dyn ChartRenderer,
) -> Result<Report, RenderError> {
    let cluster = std::fs::canonicalize(&options.cluster_path)
        .map_err(|_| RenderError::NotADirectory(options.cluster_path.clone()))?;
    if !cluster.is_dir() {
        return Err(RenderError::NotADirectory(options.cluster_path.clone()));
    }
    let root_hint = options
        .root
        .as_ref()
        .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()));
    let (root, entry) = find_entry(&cluster, root_hint.as_deref())?;
    let settings = Settings {
        strict_substitute: options.strict_substitute,
        local_sources: options.local_sources.clone(),
        show_secrets: options.show_secrets,
        recursive: true,
        skip_substitute_from: false,
    };
    Ok(run_from(
        root,
        entry,
        settings,
        BTreeMap::new(),
        decrypt,
        charts,
    ))
}

/// Renders one Flux Kustomization object against a local directory, as
/// `flux build kustomization NAME --path DIR --kustomization-file F` does: the directory is
/// built with the object's spec, decrypted and substituted. With `recursive`, the
/// Kustomizations and HelmReleases found in the output whose sources are local follow.
pub fn render_kustomization(
    options: &KustomizationOptions,
    decrypt: &dyn Decrypt,
    charts: &dyn ChartRenderer,
) -> Result<Report, RenderError> {
    if !is_flux_kind(
        &options.object,
        "kustomize.toolkit.fluxcd.io/",
        "Kustomization",
    ) {
        return Err(RenderError::Object(format!(
            "{} is not a Flux Kustomization (kustomize.toolkit.fluxcd.io)",
            object_id(&options.object)
        )));
    }
    let dir = std::fs::canonicalize(&options.path)
        .map_err(|_| RenderError::NotADirectory(options.path.clone()))?;
    if !dir.is_dir() {
        return Err(RenderError::NotADirectory(options.path.clone()));
    }
    let root = match &options.root {
        Some(root) => {
            std::fs::canonicalize(root).map_err(|_| RenderError::NotADirectory(root.clone()))?
        }
        None => dir
            .ancestors()
            .find(|a| a.join(".git").exists())
            .unwrap_or(&dir)
            .to_path_buf(),
    };
    if !dir.starts_with(&root) {
        return Err(RenderError::Object(format!(
            "--path {} is outside the source root {}",
            options.path.display(),
            root.display()
        )));
    }
    let mut entry = Pending::from_object("Kustomization", &options.object, "default");
    if entry.name.is_empty() {
        return Err(RenderError::Object(
            "the Kustomization has no metadata.name".to_string(),
        ));
    }
    entry.dir_override = Some(dir);
    // The entry's dependencies are not part of this render.
    entry.depends_on.clear();
    let settings = Settings {
        strict_substitute: options.strict_substitute,
        local_sources: options.local_sources.clone(),
        show_secrets: options.show_secrets,
        recursive: options.recursive,
        skip_substitute_from: options.dry_run,
    };
    let known = options
        .known_objects
        .iter()
        .map(|o| (object_key(o), o.clone()))
        .collect();
    Ok(run_from(root, entry, settings, known, decrypt, charts))
}

fn run_from(
    root: PathBuf,
    entry: Pending,
    settings: Settings,
    known: BTreeMap<String, Value>,
    decrypt: &dyn Decrypt,
    charts: &dyn ChartRenderer,
) -> Report {
    let mut renderer = Renderer {
        settings,
        decrypt,
        charts,
        root: root.clone(),
        local_source: entry
            .object
            .pointer("/spec/sourceRef")
            .map(|r| source_key(r, &entry.namespace)),
        local_urls: BTreeSet::new(),
        index: known,
        units: Vec::new(),
        seen: BTreeSet::new(),
        kustomizations: Vec::new(),
        releases: Vec::new(),
    };
    renderer.seen.insert(entry.key());
    renderer.kustomizations.push(entry);
    renderer.run();
    Report {
        root,
        units: renderer.units,
    }
}

/// Finds the repository root and the Kustomization that syncs `cluster`.
///
/// The cluster directory is built once (raw) and every Kustomization in it whose `spec.path`,
/// joined to an ancestor of the cluster directory, names the cluster directory itself decides
/// the root. Without one, a synthetic entry named after the directory is used, rooted at
/// `root_hint`, the enclosing git repository, or the cluster's parent.
fn find_entry(cluster: &Path, root_hint: Option<&Path>) -> Result<(PathBuf, Pending), RenderError> {
    let fs = DiskFs::unrestricted();
    let raw =
        build_flux(&fs, cluster, &FluxSpec::default(), &flux_build_options()).map_err(|e| {
            RenderError::Entry {
                path: cluster.to_path_buf(),
                message: e.to_string(),
            }
        })?;
    let candidates: Vec<&Path> = match root_hint {
        Some(root) => vec![root],
        None => cluster.ancestors().skip(1).collect(),
    };
    for resource in raw.resources() {
        let object = resource.value();
        if !is_flux_kind(object, "kustomize.toolkit.fluxcd.io/", "Kustomization") {
            continue;
        }
        let path = str_at(object, &["spec", "path"]).unwrap_or("");
        for root in &candidates {
            if flux_kustomize::fs::join_clean(root, path) == cluster {
                let entry = Pending::from_object("Kustomization", object, "flux-system");
                return Ok((root.to_path_buf(), entry));
            }
        }
    }
    let root = root_hint.map_or_else(
        || {
            cluster
                .ancestors()
                .find(|a| a.join(".git").exists())
                .or_else(|| cluster.parent())
                .unwrap_or(cluster)
                .to_path_buf()
        },
        Path::to_path_buf,
    );
    let relative = cluster.strip_prefix(&root).unwrap_or(cluster);
    let name = cluster.file_name().map_or_else(
        || "cluster".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let object = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"path": format!("./{}", relative.display()), "prune": true},
    });
    Ok((
        root,
        Pending::from_object("Kustomization", &object, "flux-system"),
    ))
}

/// kustomize-controller builds with load restrictions off (the filesystem is still confined
/// to the source root).
fn flux_build_options() -> flux_kustomize::BuildOptions {
    flux_kustomize::BuildOptions {
        load_restrictor: flux_kustomize::LoadRestrictor::None,
    }
}

fn is_flux_kind(object: &Value, group_prefix: &str, kind: &str) -> bool {
    object.get("kind").and_then(Value::as_str) == Some(kind)
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with(group_prefix))
}

/// `Kind/namespace/name` of a `sourceRef`.
fn source_key(reference: &Value, default_ns: &str) -> String {
    let kind = reference
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("GitRepository");
    let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
    let ns = reference
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(default_ns);
    format!("{kind}/{ns}/{name}")
}

struct Renderer<'a> {
    settings: Settings,
    decrypt: &'a dyn Decrypt,
    charts: &'a dyn ChartRenderer,
    root: PathBuf,
    /// The source the cluster's own Kustomization uses: this repository.
    local_source: Option<String>,
    /// URLs of GitRepositories known to point at this repository.
    local_urls: BTreeSet<String>,
    /// Every rendered object (decrypted, unmasked), by `Kind/namespace/name`.
    index: BTreeMap<String, Value>,
    units: Vec<Unit>,
    seen: BTreeSet<String>,
    kustomizations: Vec<Pending>,
    releases: Vec<Pending>,
}

impl Renderer<'_> {
    fn run(&mut self) {
        while let Some(next) = self.next_ready(true) {
            let pending = self.kustomizations.remove(next);
            self.render_kustomization(pending);
        }
        self.fail_cycles(true);
        while let Some(next) = self.next_ready(false) {
            let pending = self.releases.remove(next);
            self.render_release(pending);
        }
        self.fail_cycles(false);
    }

    /// The first waiting unit whose known dependencies are all done.
    fn next_ready(&self, kustomizations: bool) -> Option<usize> {
        let queue = if kustomizations {
            &self.kustomizations
        } else {
            &self.releases
        };
        let waiting: BTreeSet<String> = queue.iter().map(Pending::key).collect();
        queue
            .iter()
            .position(|p| p.depends_on.iter().all(|d| !waiting.contains(d)))
    }

    /// Whatever is left waiting is part of (or behind) a dependency cycle.
    fn fail_cycles(&mut self, kustomizations: bool) {
        let queue = std::mem::take(if kustomizations {
            &mut self.kustomizations
        } else {
            &mut self.releases
        });
        if queue.is_empty() {
            return;
        }
        let nodes: Vec<(String, Vec<String>)> = queue
            .iter()
            .map(|p| (p.key(), p.depends_on.clone()))
            .collect();
        let message = order::topological(&nodes)
            .err()
            .unwrap_or_else(|| "dependency cycle".to_string());
        for pending in queue {
            let path = Self::display_path(&pending);
            self.units.push(Unit {
                kind: pending.kind,
                namespace: pending.namespace,
                name: pending.name,
                path,
                outcome: Outcome::Failed(message.clone()),
                elapsed: Duration::ZERO,
            });
        }
    }

    fn display_path(pending: &Pending) -> String {
        if pending.kind == "Kustomization" {
            str_at(&pending.object, &["spec", "path"])
                .unwrap_or("./")
                .to_string()
        } else {
            str_at(&pending.object, &["spec", "chart", "spec", "chart"])
                .or_else(|| str_at(&pending.object, &["spec", "chartRef", "name"]))
                .unwrap_or("")
                .to_string()
        }
    }

    /// Where a source's files are, or why they are not available offline.
    fn source_dir(&self, reference: Option<&Value>, namespace: &str) -> Result<PathBuf, String> {
        let Some(reference) = reference else {
            return Err("spec.sourceRef is missing".to_string());
        };
        let key = source_key(reference, namespace);
        if let Some(dir) = self.settings.local_sources.get(&key) {
            return Ok(dir.clone());
        }
        if self.local_source.as_deref() == Some(key.as_str()) {
            return Ok(self.root.clone());
        }
        if let Some(source) = self.index.get(&key) {
            if let Some(url) = str_at(source, &["spec", "url"]) {
                if self.local_urls.contains(url) {
                    return Ok(self.root.clone());
                }
                return Err(format!(
                    "external source {key} ({url}); map it to a local directory with --local-source {key}=PATH"
                ));
            }
        }
        Err(format!(
            "external source {key}; map it to a local directory with --local-source {key}=PATH"
        ))
    }

    fn render_kustomization(&mut self, pending: Pending) {
        let started = Instant::now();
        let result = self.build_kustomization(&pending);
        if let Ok(objects) = &result {
            if self.settings.recursive {
                self.discover(objects, &pending.namespace);
            }
        }
        self.record(pending, result, started);
    }

    /// Adds the finished unit to the report.
    fn record(&mut self, pending: Pending, result: Result<Vec<Value>, Stop>, started: Instant) {
        let path = Self::display_path(&pending);
        let outcome = match result {
            Ok(objects) => Outcome::Rendered(objects),
            Err(Skip(reason)) => Outcome::Skipped(reason),
            Err(Fail(message)) => Outcome::Failed(message),
        };
        self.units.push(Unit {
            kind: pending.kind,
            namespace: pending.namespace,
            name: pending.name,
            path,
            outcome,
            elapsed: started.elapsed(),
        });
    }

    fn build_kustomization(&mut self, pending: &Pending) -> Result<Vec<Value>, Stop> {
        let spec = pending.object.get("spec").cloned().unwrap_or(Value::Null);
        let relative = str_at(&spec, &["path"]).unwrap_or("./");
        let (base, dir) = if let Some(dir) = &pending.dir_override {
            (self.root.clone(), dir.clone())
        } else {
            let base = self
                .source_dir(spec.get("sourceRef"), &pending.namespace)
                .map_err(Skip)?;
            let dir = flux_kustomize::fs::join_clean(&base, relative);
            (base, dir)
        };
        if !dir.starts_with(&base) {
            return Err(Fail(format!(
                "spec.path {relative:?} leaves the source root"
            )));
        }
        if !dir.is_dir() {
            return Err(Fail(format!(
                "kustomization path not found: {}",
                dir.display()
            )));
        }
        let id = format!("{}/{}", pending.namespace, pending.name);
        let mut flux_spec = FluxSpec::from_spec(&id, &spec).map_err(|e| Fail(e.to_string()))?;
        // commonMetadata is applied after substitution, at apply time, as Flux does.
        flux_spec.common_labels.clear();
        flux_spec.common_annotations.clear();
        let disk = DiskFs::confined(&base).map_err(|e| Fail(e.to_string()))?;
        let decryption = spec.get("decryption").is_some();
        // Generator inputs are decrypted before the build, as kustomize-controller does.
        let mut plaintext = BTreeMap::new();
        if decryption {
            for file in generators::generator_inputs(&disk, &dir, &flux_spec.components) {
                let Ok(bytes) = flux_kustomize::FileSystem::read(&disk, &file) else {
                    continue;
                };
                let name = file.to_string_lossy();
                if let Some(plain) = self
                    .decrypt
                    .decrypt_file(&name, &bytes)
                    .map_err(|e| Fail(format!("decryption of {name} failed: {e}")))?
                {
                    plaintext.insert(file, plain);
                }
            }
        }
        let generated_from_secrets = !plaintext.is_empty();
        let fs = generators::DecryptedFs::new(&disk, plaintext);
        let built = build_flux(&fs, &dir, &flux_spec, &flux_build_options())
            .map_err(|e| Fail(e.to_string()))?;

        let post_build = spec.get("postBuild");
        let vars = match post_build {
            Some(pb) => self.variables(pb, &pending.namespace).map_err(Fail)?,
            None => Variables::new(),
        };
        let strategy = match post_build.and_then(|pb| str_at(pb, &["substituteStrategy"])) {
            Some("Always") => Strategy::Always,
            _ => Strategy::WithVariables,
        };
        let common = spec.get("commonMetadata");

        let mut objects = Vec::with_capacity(built.len());
        for resource in built.into_resources() {
            let mut object = resource.into_value();
            let object_id = object_id(&object);
            let mut decrypted = false;
            if decryption {
                decrypted = self
                    .decrypt
                    .decrypt(&mut object)
                    .map_err(|e| Fail(format!("decryption of {object_id} failed: {e}")))?;
            } else if object.get("sops").is_some() && object.get("kind") == Some(&json!("Secret")) {
                return Err(Fail(format!(
                    "{object_id} is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
                )));
            }
            if post_build.is_some() && !substitution_disabled(&object) {
                let text = flux_kustomize::yaml::to_yaml(&object);
                if let Some(substituted) = postbuild::substitute_object(
                    &object_id,
                    &text,
                    &vars,
                    strategy,
                    self.settings.strict_substitute,
                )
                .map_err(|e| Fail(e.to_string()))?
                {
                    object = serde_yaml::from_str(&substituted).map_err(|e| {
                        Fail(format!("{object_id}: substituted YAML does not parse: {e}"))
                    })?;
                }
            }
            set_metadata(&mut object, "labels", OWNER_NAME_LABEL, &pending.name);
            set_metadata(
                &mut object,
                "labels",
                OWNER_NAMESPACE_LABEL,
                &pending.namespace,
            );
            if let Some(common) = common {
                for field in ["labels", "annotations"] {
                    if let Some(Value::Object(map)) = common.get(field) {
                        for (k, v) in map {
                            if let Some(v) = v.as_str() {
                                set_metadata(&mut object, field, k, v);
                            }
                        }
                    }
                }
            }
            let key = object_key(&object);
            // Secrets generated from decrypted files are masked too: which generated Secret
            // holds which file is not tracked, so every Secret of this build is.
            let generated_secret =
                generated_from_secrets && object.get("kind") == Some(&json!("Secret"));
            if (decrypted || generated_secret) && !self.settings.show_secrets {
                self.index.insert(key, object.clone());
                mask_secret(&mut object);
            } else {
                self.index.insert(key, object.clone());
            }
            objects.push(object);
        }
        Ok(objects)
    }

    /// Collects `postBuild` variables from `substituteFrom` objects rendered so far and the
    /// inline `substitute` map.
    fn variables(&self, post_build: &Value, namespace: &str) -> Result<Variables, String> {
        let mut vars = Variables::new();
        let sources = if self.settings.skip_substitute_from {
            None
        } else {
            post_build.get("substituteFrom")
        };
        if let Some(Value::Array(sources)) = sources {
            for source in sources {
                let kind = source
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("ConfigMap");
                let name = source.get("name").and_then(Value::as_str).unwrap_or("");
                let optional = source
                    .get("optional")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let data = self
                    .index
                    .get(&format!("{kind}/{namespace}/{name}"))
                    .map(|object| string_data(object, kind == "Secret"));
                vars.add_source(kind, name, optional, data.as_ref())
                    .map_err(|e| e.to_string())?;
            }
        }
        if let Some(Value::Object(inline)) = post_build.get("substitute") {
            let inline: BTreeMap<String, String> = inline
                .iter()
                .map(|(k, v)| (k.clone(), scalar_string(v)))
                .collect();
            vars.add_inline(&inline).map_err(|e| e.to_string())?;
        }
        Ok(vars)
    }

    /// Queues the Flux objects that a render produced.
    fn discover(&mut self, objects: &[Value], default_ns: &str) {
        for object in objects {
            if is_flux_kind(object, "source.toolkit.fluxcd.io/", "GitRepository") {
                let key = source_key(
                    &json!({"kind": "GitRepository",
                            "name": str_at(object, &["metadata", "name"]),
                            "namespace": str_at(object, &["metadata", "namespace"])}),
                    default_ns,
                );
                if self.local_source.as_deref() == Some(key.as_str()) {
                    if let Some(url) = str_at(object, &["spec", "url"]) {
                        self.local_urls.insert(url.to_string());
                    }
                }
            }
            let (kind, queue_kustomization) =
                if is_flux_kind(object, "kustomize.toolkit.fluxcd.io/", "Kustomization") {
                    ("Kustomization", true)
                } else if is_flux_kind(object, "helm.toolkit.fluxcd.io/", "HelmRelease") {
                    ("HelmRelease", false)
                } else {
                    continue;
                };
            let pending = Pending::from_object(kind, object, default_ns);
            if self.seen.insert(pending.key()) {
                if queue_kustomization {
                    self.kustomizations.push(pending);
                } else {
                    self.releases.push(pending);
                }
            }
        }
    }

    fn render_release(&mut self, pending: Pending) {
        let started = Instant::now();
        let result = self.build_release(&pending);
        self.record(pending, result, started);
    }

    fn build_release(&mut self, pending: &Pending) -> Result<Vec<Value>, Stop> {
        let spec = pending.object.get("spec").cloned().unwrap_or(Value::Null);
        if spec.get("chartRef").is_some() {
            return Err(Skip(
                "spec.chartRef (OCIRepository/HelmChart) charts are not rendered offline yet"
                    .into(),
            ));
        }
        let chart_spec = spec
            .pointer("/chart/spec")
            .ok_or_else(|| Fail("spec.chart.spec is missing".into()))?;
        let source_ref = chart_spec.get("sourceRef");
        let source_kind = source_ref
            .and_then(|r| r.get("kind"))
            .and_then(Value::as_str);
        if source_kind == Some("HelmRepository") {
            let key = source_ref
                .map(|r| source_key(r, &pending.namespace))
                .unwrap_or_default();
            return Err(Skip(format!(
                "chart {} comes from {key}, which needs the network",
                str_at(chart_spec, &["chart"]).unwrap_or("?")
            )));
        }
        let base = self
            .source_dir(source_ref, &pending.namespace)
            .map_err(Skip)?;
        let chart = str_at(chart_spec, &["chart"]).unwrap_or("");
        let chart_dir = flux_kustomize::fs::join_clean(&base, chart);
        if !chart_dir.starts_with(&base) || !chart_dir.is_dir() {
            return Err(Fail(format!(
                "spec.chart.spec.chart: chart directory {chart:?} not found in the source"
            )));
        }
        let values = self
            .release_values(&spec, &pending.namespace)
            .map_err(Fail)?;
        let target_ns = str_at(&spec, &["targetNamespace"]);
        let release = str_at(&spec, &["releaseName"]).map_or_else(
            || match target_ns {
                Some(ns) => format!("{ns}-{}", pending.name),
                None => pending.name.clone(),
            },
            str::to_string,
        );
        let namespace = target_ns.unwrap_or(&pending.namespace);
        let objects = self
            .charts
            .render(&chart_dir, &release, namespace, &values)
            .map_err(|e| Fail(format!("chart {chart}: {e}")))?;
        let id = format!("{}/{}", pending.namespace, pending.name);
        let mut objects = post_render(objects, &spec, &id).map_err(Fail)?;
        for object in &mut objects {
            self.index.insert(object_key(object), object.clone());
        }
        Ok(objects)
    }

    /// `valuesFrom` in order, then `spec.values` on top, as helm-controller merges them.
    fn release_values(&self, spec: &Value, namespace: &str) -> Result<Value, String> {
        let mut values = Value::Object(Map::new());
        if let Some(Value::Array(refs)) = spec.get("valuesFrom") {
            for reference in refs {
                let kind = reference
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("ConfigMap");
                let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
                let key = reference
                    .get("valuesKey")
                    .and_then(Value::as_str)
                    .unwrap_or("values.yaml");
                let optional = reference
                    .get("optional")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let data = self
                    .index
                    .get(&format!("{kind}/{namespace}/{name}"))
                    .map(|o| string_data(o, kind == "Secret"));
                let Some(text) = data.as_ref().and_then(|d| d.get(key)) else {
                    if optional {
                        continue;
                    }
                    return Err(format!(
                        "valuesFrom: could not find key '{key}' in {kind} '{namespace}/{name}'"
                    ));
                };
                match reference.get("targetPath").and_then(Value::as_str) {
                    Some(path) => set_path(&mut values, path, Value::String(text.clone())),
                    None => {
                        let parsed: Value = serde_yaml::from_str(text).map_err(|e| {
                            format!("valuesFrom {kind} '{namespace}/{name}' key '{key}': {e}")
                        })?;
                        merge(&mut values, parsed);
                    }
                }
            }
        }
        if let Some(inline) = spec.get("values") {
            merge(&mut values, inline.clone());
        }
        Ok(values)
    }
}

/// helm-controller's post-rendering pipeline: each `spec.postRenderers[].kustomize`
/// (patches and images, through a kustomize build over the rendered objects), then
/// `spec.commonMetadata`, then the origin labels, which win on collision.
fn post_render(objects: Vec<Value>, spec: &Value, release: &str) -> Result<Vec<Value>, String> {
    let mut objects = objects;
    if let Some(Value::Array(renderers)) = spec.get("postRenderers") {
        for (i, renderer) in renderers.iter().enumerate() {
            let Some(kustomize) = renderer.get("kustomize") else {
                continue;
            };
            if objects.is_empty() {
                break;
            }
            let field = format!("spec.postRenderers[{i}].kustomize");
            let flux_spec =
                FluxSpec::from_spec(release, kustomize).map_err(|e| format!("{field}: {e}"))?;
            let mut manifest = String::new();
            for object in &objects {
                manifest.push_str("---\n");
                manifest.push_str(&flux_kustomize::yaml::to_yaml(object));
            }
            let mut fs = flux_kustomize::MemFs::new();
            fs.write("/post-render/resources.yaml", manifest).write(
                "/post-render/kustomization.yaml",
                "resources:\n- resources.yaml\n",
            );
            let built = build_flux(
                &fs,
                Path::new("/post-render"),
                &flux_spec,
                &flux_build_options(),
            )
            .map_err(|e| format!("{field}: {e}"))?;
            objects = built
                .into_resources()
                .into_iter()
                .map(flux_kustomize::Resource::into_value)
                .collect();
        }
    }
    let (name, namespace) = release
        .split_once('/')
        .map_or(("", release), |(ns, n)| (n, ns));
    for object in &mut objects {
        for field in ["labels", "annotations"] {
            if let Some(Value::Object(map)) = spec.pointer(&format!("/commonMetadata/{field}")) {
                for (k, v) in map {
                    if let Some(v) = v.as_str() {
                        set_metadata(object, field, k, v);
                    }
                }
            }
        }
        set_metadata(object, "labels", "helm.toolkit.fluxcd.io/name", name);
        set_metadata(
            object,
            "labels",
            "helm.toolkit.fluxcd.io/namespace",
            namespace,
        );
    }
    Ok(objects)
}

/// Why a unit stopped.
enum Stop {
    /// Not renderable offline; not an error.
    Skip(String),
    /// Rendering failed.
    Fail(String),
}
use Stop::{Fail, Skip};

/// `Kind/namespace/name` of a rendered object (namespace empty for cluster-scoped ones).
fn object_key(object: &Value) -> String {
    format!(
        "{}/{}/{}",
        str_at(object, &["kind"]).unwrap_or(""),
        str_at(object, &["metadata", "namespace"]).unwrap_or(""),
        str_at(object, &["metadata", "name"]).unwrap_or("")
    )
}

/// How Flux names an object in messages: `Kind/namespace/name` or `Kind/name`.
fn object_id(object: &Value) -> String {
    let kind = str_at(object, &["kind"]).unwrap_or("");
    let name = str_at(object, &["metadata", "name"]).unwrap_or("");
    match str_at(object, &["metadata", "namespace"]) {
        Some(ns) if !ns.is_empty() => format!("{kind}/{ns}/{name}"),
        _ => format!("{kind}/{name}"),
    }
}

/// Replaces a decrypted Secret's values with Flux's `**SOPS**` marker.
fn mask_secret(object: &mut Value) {
    let masked = base64::engine::general_purpose::STANDARD.encode(SOPS_MASK);
    if let Some(Value::Object(data)) = object.get_mut("data") {
        for value in data.values_mut() {
            *value = Value::String(masked.clone());
        }
    }
    if let Some(Value::Object(data)) = object.get_mut("stringData") {
        for value in data.values_mut() {
            *value = Value::String(SOPS_MASK.to_string());
        }
    }
}

/// Sets `a.b.c` in `values`, creating maps on the way (Helm's `targetPath`, without its
/// list-index syntax).
fn set_path(values: &mut Value, path: &str, leaf: Value) {
    let mut current = values;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Some(map) = current.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), leaf);
            return;
        }
        current = map
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Deep-merges `overlay` into `base`: maps merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (k, v) in overlay {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_set_path() {
        let mut v = json!({"a": {"b": 1, "c": [1]}, "d": 1});
        merge(&mut v, json!({"a": {"b": 2, "c": [2, 3]}, "e": "x"}));
        assert_eq!(v, json!({"a": {"b": 2, "c": [2, 3]}, "d": 1, "e": "x"}));
        set_path(&mut v, "x.y.z", json!("s"));
        assert_eq!(v["x"]["y"]["z"], json!("s"));
    }

    #[test]
    fn secret_data_is_decoded_and_masked() {
        let mut secret =
            json!({"kind": "Secret", "data": {"a": "aGk="}, "stringData": {"b": "yo"}});
        let data = string_data(&secret, true);
        assert_eq!(data["a"], "hi");
        assert_eq!(data["b"], "yo");
        mask_secret(&mut secret);
        assert_eq!(secret["data"]["a"], json!("KipTT1BTKio="));
        assert_eq!(secret["stringData"]["b"], json!("**SOPS**"));
    }
}
