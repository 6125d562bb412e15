//! helm-controller decisions without I/O: release names, values composition, post-rendering
//! of the release manifest, release state and next action, failure counters, snapshots and
//! the condition messages Flux writes.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::Digest as _;

use flux_api::helm::{HelmRelease, ReleaseSnapshot, RemediationStrategy};
use flux_helm::release::{status as rls, Release};

/// Label and annotation keys Helm and Flux put on release objects.
pub mod keys {
    /// Origin label (name).
    pub const ORIGIN_NAME: &str = "helm.toolkit.fluxcd.io/name";
    /// Origin label (namespace).
    pub const ORIGIN_NAMESPACE: &str = "helm.toolkit.fluxcd.io/namespace";
    /// Helm's ownership label.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// Helm's ownership annotation (release name).
    pub const RELEASE_NAME: &str = "meta.helm.sh/release-name";
    /// Helm's ownership annotation (release namespace).
    pub const RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
}

/// Helm's maximum release name length.
const MAX_RELEASE_NAME: usize = 53;

/// The release name: `spec.releaseName`, or `[targetNamespace-]name`, shortened like Flux
/// (`<first 40 chars>-<12 hex of sha256>`) when longer than Helm's 53 characters.
pub fn release_name(hr: &HelmRelease) -> String {
    let name = hr.metadata.name.clone().unwrap_or_default();
    let full = match (&hr.spec.release_name, &hr.spec.target_namespace) {
        (Some(r), _) if !r.is_empty() => r.clone(),
        (_, Some(t)) if !t.is_empty() => format!("{t}-{name}"),
        _ => name,
    };
    shorten_name(&full)
}

/// Flux's `release.ShortenName`.
pub fn shorten_name(name: &str) -> String {
    if name.len() <= MAX_RELEASE_NAME {
        return name.to_string();
    }
    let hash = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    format!("{}-{}", &name[..MAX_RELEASE_NAME - 13], &hash[..12])
}

/// Namespace of the release objects.
pub fn release_namespace(hr: &HelmRelease) -> String {
    hr.spec
        .target_namespace
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| hr.metadata.namespace.clone().unwrap_or_default())
}

/// Namespace of the release Secrets.
pub fn storage_namespace(hr: &HelmRelease) -> String {
    hr.spec
        .storage_namespace
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| hr.metadata.namespace.clone().unwrap_or_default())
}

/// Name of the HelmChart created from `spec.chart`: `<namespace>-<name>`.
pub fn helm_chart_name(hr: &HelmRelease) -> String {
    format!(
        "{}-{}",
        hr.metadata.namespace.as_deref().unwrap_or_default(),
        hr.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Deep merge as Flux's `transform.MergeMaps`: maps merge recursively, anything else in
/// `overlay` replaces the base value.
pub fn merge_values(base: &mut Map<String, Value>, overlay: &Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_values(existing, incoming);
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Sets `path` (Helm `--set` syntax, typed as `--set` types it) to `raw` in `values`.
pub fn set_target_path(
    values: &Map<String, Value>,
    path: &str,
    raw: &str,
) -> Result<Map<String, Value>, String> {
    let helm_values = flux_helm::json::from_serde(Value::Object(values.clone()));
    flux_helm::values::parse_set(&format!("{path}={raw}"), &helm_values)
        .map_err(|e| format!("unable to merge value at key '{path}': {e}"))?;
    match flux_helm::json::to_serde(&helm_values) {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// Parses a values document (YAML or JSON) into a map; an empty document is an empty map.
pub fn parse_values_document(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map),
        other => Err(format!(
            "expected a map of values, got {}",
            json_type_name(&other)
        )),
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// `sha256:<hex>` of the values' Go JSON encoding (Flux's config digest of the values).
pub fn config_digest(values: &Map<String, Value>) -> String {
    flux_helm::release::values_digest(&flux_helm::json::from_serde(Value::Object(values.clone())))
}

/// Runs the `postRenderers[].kustomize` steps in order: the manifest becomes one resource
/// file of an in-memory kustomization with the renderer's `patches` and `images`, built with
/// flux-kustomize (what Flux's kustomize post-renderer does with krusty).
pub fn kustomize_post_render(
    manifest: &str,
    renderers: &[flux_api::helm::PostRenderer],
) -> Result<String, String> {
    let mut current = manifest.to_string();
    for (index, renderer) in renderers.iter().enumerate() {
        let Some(kustomize) = &renderer.kustomize else {
            continue;
        };
        let mut kustomization = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["helm-output.yaml"],
        });
        if let Some(patches) = &kustomize.patches {
            kustomization["patches"] = serde_json::to_value(patches).map_err(|e| e.to_string())?;
        }
        if let Some(images) = &kustomize.images {
            kustomization["images"] = serde_json::to_value(images).map_err(|e| e.to_string())?;
        }
        let mut fs = flux_kustomize::MemFs::new();
        fs.write("/helm-output.yaml", current.as_bytes());
        fs.write(
            "/kustomization.yaml",
            serde_yaml::to_string(&kustomization)
                .map_err(|e| e.to_string())?
                .into_bytes(),
        );
        let built = flux_kustomize::build(&fs, "/")
            .map_err(|e| format!("postRenderers[{index}]: kustomize build failed: {e}"))?;
        current = built.to_yaml();
    }
    Ok(current)
}

/// `sha256:<hex>` of the JSON encoding of `spec.postRenderers` (Flux's
/// `observedPostRenderersDigest`); `None` without post-renderers.
pub fn post_renderers_digest(
    renderers: Option<&Vec<flux_api::helm::PostRenderer>>,
) -> Option<String> {
    let renderers = renderers.filter(|r| !r.is_empty())?;
    let json = serde_json::to_vec(renderers).ok()?;
    Some(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(json))
    ))
}

/// Post-renders a release manifest as Flux does after Helm renders it: `commonMetadata`
/// labels/annotations, then the origin labels (which win on key collisions). Each document
/// keeps its `# Source:` line.
pub fn post_render(
    manifest: &str,
    hr_name: &str,
    hr_namespace: &str,
    common: Option<&flux_api::meta::CommonMetadata>,
) -> Result<String, String> {
    let mut out = String::new();
    for (source, doc) in split_manifest(manifest) {
        let mut object: Value = serde_yaml::from_str(&doc)
            .map_err(|e| format!("post-render: {source}: invalid YAML: {e}"))?;
        if object.is_null() {
            continue;
        }
        let Some(obj) = object.as_object_mut() else {
            return Err(format!("post-render: {source}: not an object"));
        };
        let metadata = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(metadata) = metadata.as_object_mut() else {
            return Err(format!("post-render: {source}: metadata is not a map"));
        };
        if let Some(common) = common {
            for (field, entries) in [
                ("labels", common.labels.as_ref()),
                ("annotations", common.annotations.as_ref()),
            ] {
                if let Some(entries) = entries {
                    let target = string_map(metadata, field);
                    for (k, v) in entries {
                        target.insert(k.clone(), Value::String(v.clone()));
                    }
                }
            }
        }
        let labels = string_map(metadata, "labels");
        labels.insert(keys::ORIGIN_NAME.into(), Value::String(hr_name.into()));
        labels.insert(
            keys::ORIGIN_NAMESPACE.into(),
            Value::String(hr_namespace.into()),
        );
        // kustomize's emitter quotes YAML 1.1 booleans (`yes`, `on`) as Go readers need.
        let yaml = flux_kustomize::yaml::to_yaml(&object);
        out.push_str("---\n");
        if !source.is_empty() {
            out.push_str("# Source: ");
            out.push_str(&source);
            out.push('\n');
        }
        out.push_str(&yaml);
    }
    Ok(out)
}

fn string_map<'m>(metadata: &'m mut Map<String, Value>, field: &str) -> &'m mut Map<String, Value> {
    let entry = metadata
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Splits a Helm manifest into `(source path, document)` pairs.
pub fn split_manifest(manifest: &str) -> Vec<(String, String)> {
    let mut docs = Vec::new();
    let mut source = String::new();
    let mut current = String::new();
    let mut flush = |source: &str, current: &mut String| {
        if !current.trim().is_empty() {
            docs.push((source.to_string(), std::mem::take(current)));
        }
        current.clear();
    };
    for line in manifest.lines() {
        if line.trim_end() == "---" {
            flush(&source, &mut current);
            source.clear();
            continue;
        }
        if current.trim().is_empty() {
            if let Some(path) = line.strip_prefix("# Source: ") {
                source = path.to_string();
                continue;
            }
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&source, &mut current);
    docs
}

/// The objects of a manifest as JSON (empty documents skipped).
pub fn manifest_objects(manifest: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for (source, doc) in split_manifest(manifest) {
        let value: Value =
            serde_yaml::from_str(&doc).map_err(|e| format!("{source}: invalid YAML: {e}"))?;
        if value.is_object() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// `(apiVersion, kind, namespace, name)` of an object; `namespace` empty when unset.
pub fn object_key(object: &Value) -> (String, String, String, String) {
    let s = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}

/// What the storage says about the release, as Flux's `DetermineReleaseState` decides it
/// (drift and test states are not evaluated here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseState {
    /// No release, or the latest one is uninstalled.
    Absent,
    /// The latest release is `pending-*`.
    Locked,
    /// The latest release failed.
    Failed,
    /// Deployed, but the chart or values differ from the desired ones.
    OutOfSync,
    /// Deployed and matching.
    InSync,
}

/// The release state given the stored history and the desired chart and values digest.
pub fn release_state(
    history: &[Release],
    chart_name: &str,
    chart_version: &str,
    values_digest: &str,
) -> ReleaseState {
    let Some(latest) = latest(history) else {
        return ReleaseState::Absent;
    };
    match latest.status() {
        rls::UNINSTALLED | rls::UNINSTALLING => ReleaseState::Absent,
        rls::PENDING_INSTALL | rls::PENDING_UPGRADE | rls::PENDING_ROLLBACK => ReleaseState::Locked,
        rls::FAILED => ReleaseState::Failed,
        _ => {
            let (name, version) = latest.chart_name_version();
            let config = Value::Object(latest.config.clone().unwrap_or_default());
            let digest = flux_helm::release::values_digest(&flux_helm::json::from_serde(config));
            if name != chart_name || version != chart_version || digest != values_digest {
                ReleaseState::OutOfSync
            } else {
                ReleaseState::InSync
            }
        }
    }
}

/// The highest revision.
pub fn latest(history: &[Release]) -> Option<&Release> {
    history.iter().max_by_key(|r| r.version)
}

/// The revision a rollback goes to: the newest deployed or superseded one below the latest.
pub fn rollback_target(history: &[Release]) -> Option<&Release> {
    let latest = latest(history)?;
    history
        .iter()
        .filter(|r| r.version < latest.version)
        .filter(|r| matches!(r.status(), rls::DEPLOYED | rls::SUPERSEDED))
        .max_by_key(|r| r.version)
}

/// The remediation settings of the action that failed last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remediation {
    /// Retries before giving up (negative: unlimited).
    pub retries: i64,
    /// Remediate the last failure when no retries remain.
    pub remediate_last_failure: bool,
    /// Rollback or uninstall.
    pub strategy: RemediationStrategy,
}

impl Remediation {
    /// `spec.install.remediation` (strategy is always uninstall for installs).
    pub fn install(hr: &HelmRelease) -> Self {
        let r = hr
            .spec
            .install
            .as_ref()
            .and_then(|i| i.remediation.as_ref());
        let retries = r.and_then(|r| r.retries).map_or(0, i64::from);
        Remediation {
            retries,
            remediate_last_failure: r
                .and_then(|r| r.remediate_last_failure)
                .unwrap_or(retries != 0),
            strategy: RemediationStrategy::Uninstall,
        }
    }

    /// `spec.upgrade.remediation`.
    pub fn upgrade(hr: &HelmRelease) -> Self {
        let r = hr
            .spec
            .upgrade
            .as_ref()
            .and_then(|u| u.remediation.as_ref());
        let retries = r.and_then(|r| r.retries).map_or(0, i64::from);
        Remediation {
            retries,
            remediate_last_failure: r
                .and_then(|r| r.remediate_last_failure)
                .unwrap_or(retries != 0),
            strategy: r.and_then(|r| r.strategy).unwrap_or_default(),
        }
    }

    /// Flux's `RetriesExhausted`: failures beyond the retries.
    pub fn exhausted(&self, failures: i64) -> bool {
        self.retries >= 0 && failures > self.retries
    }

    /// Whether a failed release is remediated after `failures` failures.
    pub fn should_remediate(&self, failures: i64) -> bool {
        !self.exhausted(failures) || self.remediate_last_failure
    }
}

/// `<chart>@<version>`.
pub fn chart_ref(release: &Release) -> String {
    let (name, version) = release.chart_name_version();
    format!("{name}@{version}")
}

/// `<ns>/<name>.v<N>`.
pub fn release_ref(release: &Release) -> String {
    format!(
        "{}/{}.v{}",
        release.namespace, release.name, release.version
    )
}

/// Flux's message for a successful install or upgrade.
pub fn succeeded_message(action: &str, release: &Release) -> String {
    format!(
        "Helm {action} succeeded for release {} with chart {}",
        release_ref(release),
        chart_ref(release)
    )
}

/// Flux's message for a failed install or upgrade.
pub fn failed_message(action: &str, namespace: &str, name: &str, chart: &str, err: &str) -> String {
    format!("Helm {action} failed for release {namespace}/{name} with chart {chart}: {err}")
}

/// The snapshot Flux records in `status.history` for a stored release.
pub fn snapshot(release: &Release) -> ReleaseSnapshot {
    let (chart_name, chart_version) = release.chart_name_version();
    let app_version = release
        .chart
        .as_ref()
        .and_then(|c| c.pointer("/metadata/appVersion"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let config = Value::Object(release.config.clone().unwrap_or_default());
    let info = release.info.clone().unwrap_or_default();
    let time = |t: Option<&String>| {
        t.and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map_or_else(
                || flux_api::meta::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                flux_api::meta::Time,
            )
    };
    let digest = serde_json::to_vec(release).map_or_else(
        |_| String::new(),
        |json| format!("sha256:{}", hex::encode(sha2::Sha256::digest(json))),
    );
    ReleaseSnapshot {
        action: None,
        api_version: None,
        app_version,
        chart_name,
        chart_version,
        config_digest: flux_helm::release::values_digest(&flux_helm::json::from_serde(config)),
        deleted: info.deleted.as_ref().map(|d| time(Some(d))),
        digest,
        first_deployed: time(info.first_deployed.as_ref()),
        last_deployed: time(info.last_deployed.as_ref()),
        name: release.name.clone(),
        namespace: release.namespace.clone(),
        oci_digest: None,
        status: release.status().to_string(),
        // Flux records test results once a test ran for this revision: a test hook that
        // started after the deploy (a rollback copies its target's hooks with their runs).
        test_hooks: Some(test_hooks(release)).filter(|hooks| {
            let deployed = info.last_deployed.as_ref().map(|d| time(Some(d)));
            hooks.values().any(|h| {
                h.phase.is_some()
                    && deployed
                        .as_ref()
                        .is_none_or(|d| h.last_started.as_ref().is_some_and(|s| s.0 >= d.0))
            })
        }),
        version: i32::try_from(release.version).unwrap_or(i32::MAX),
    }
}

/// `status.history`: newest first, at most 5 entries.
pub fn history_snapshots(history: &[Release]) -> Vec<ReleaseSnapshot> {
    let mut sorted: Vec<&Release> = history.iter().collect();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.version));
    sorted.into_iter().take(5).map(snapshot).collect()
}

/// Inventory ID `<namespace>_<name>_<group>_<kind>` and version of an object.
pub fn inventory_entry(object: &Value) -> flux_api::meta::ResourceRef {
    let (api_version, kind, namespace, name) = object_key(object);
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    flux_api::meta::ResourceRef {
        id: format!("{namespace}_{name}_{group}_{kind}"),
        v: version,
    }
}

/// Adds Helm's ownership metadata (`app.kubernetes.io/managed-by: Helm` and the
/// `meta.helm.sh/release-*` annotations) to an object about to be applied.
pub fn with_ownership(mut object: Value, release_name: &str, release_namespace: &str) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        string_map(meta, "labels").insert(keys::MANAGED_BY.into(), Value::String("Helm".into()));
        let annotations = string_map(meta, "annotations");
        annotations.insert(
            keys::RELEASE_NAME.into(),
            Value::String(release_name.into()),
        );
        annotations.insert(
            keys::RELEASE_NAMESPACE.into(),
            Value::String(release_namespace.into()),
        );
    }
    object
}

/// True when drift detection is disabled for an object by label or annotation.
pub fn drift_disabled(object: &Value) -> bool {
    ["labels", "annotations"].iter().any(|field| {
        object
            .pointer(&format!("/metadata/{field}"))
            .and_then(|m| m.get(flux_api::constants::annotation::HELM_DRIFT_DETECTION))
            .and_then(Value::as_str)
            == Some(flux_api::constants::annotation::DISABLED_VALUE)
    })
}

/// Leaf differences between what the object would be after applying (`desired`, a
/// server-side dry run) and the live object, ignoring server-managed metadata, `status` and
/// the `ignore` JSON pointers: `(additions, changes, removals)`.
pub fn drift_counts(desired: &Value, live: &Value, ignore: &[String]) -> (usize, usize, usize) {
    let clean = |v: &Value| {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("status");
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                for noisy in [
                    "managedFields",
                    "resourceVersion",
                    "generation",
                    "creationTimestamp",
                    "uid",
                    "selfLink",
                ] {
                    meta.remove(noisy);
                }
            }
        }
        for pointer in ignore {
            remove_pointer(&mut v, pointer);
        }
        let mut leaves = BTreeMap::new();
        flatten("", &v, &mut leaves);
        leaves
    };
    let (want, have) = (clean(desired), clean(live));
    let additions = want.keys().filter(|k| !have.contains_key(*k)).count();
    let removals = have.keys().filter(|k| !want.contains_key(*k)).count();
    let changes = want
        .iter()
        .filter(|(k, v)| have.get(*k).is_some_and(|h| h != *v))
        .count();
    (additions, changes, removals)
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    if pointer.is_empty() {
        *value = Value::Null;
        return;
    }
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = last.parse::<usize>() {
                if index < items.len() {
                    items.remove(index);
                }
            }
        }
        _ => {}
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{prefix}/{k}"), v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}/{i}"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Annotations as a map (for reconcile requests).
pub fn annotations(hr: &HelmRelease) -> Option<&BTreeMap<String, String>> {
    hr.metadata.annotations.as_ref()
}

/// The Helm actions whose options the HelmRelease spec sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmAction {
    Install,
    Upgrade,
    Rollback,
    Uninstall,
    Test,
}

/// Options of one Helm action, resolved from the spec with Flux's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOptions {
    /// The action's `timeout`, else `spec.timeout`, else 5m.
    pub timeout: std::time::Duration,
    /// `disableHooks`.
    pub disable_hooks: bool,
    /// Wait for the release objects to be ready (`!disableWait`).
    pub wait: bool,
    /// Wait for Jobs to complete as part of the wait (`!disableWaitForJobs`).
    pub wait_for_jobs: bool,
    /// `force`: replace objects the API refuses to patch.
    pub force: bool,
    /// Adopt existing objects (`!disableTakeOwnership`).
    pub take_ownership: bool,
    /// `cleanupOnFail`: delete the objects a failed action created.
    pub cleanup_on_fail: bool,
}

/// Resolves the options of `action` (`persistentClient` needs none: one client serves
/// every action of a reconcile).
pub fn action_options(hr: &HelmRelease, action: HelmAction) -> ActionOptions {
    let spec = &hr.spec;
    let (timeout, disable_hooks, disable_wait, disable_jobs, force, disable_take, cleanup) =
        match action {
            HelmAction::Install => {
                let install = spec.install.clone().unwrap_or_default();
                (
                    install.timeout,
                    install.disable_hooks,
                    install.disable_wait,
                    install.disable_wait_for_jobs,
                    None,
                    install.disable_take_ownership,
                    None,
                )
            }
            HelmAction::Upgrade => {
                let u = spec.upgrade.clone().unwrap_or_default();
                (
                    u.timeout,
                    u.disable_hooks,
                    u.disable_wait,
                    u.disable_wait_for_jobs,
                    u.force,
                    u.disable_take_ownership,
                    u.cleanup_on_fail,
                )
            }
            HelmAction::Rollback => {
                let r = spec.rollback.clone().unwrap_or_default();
                (
                    r.timeout,
                    r.disable_hooks,
                    r.disable_wait,
                    r.disable_wait_for_jobs,
                    r.force,
                    None,
                    r.cleanup_on_fail,
                )
            }
            HelmAction::Uninstall => {
                let u = spec.uninstall.clone().unwrap_or_default();
                (
                    u.timeout,
                    u.disable_hooks,
                    u.disable_wait,
                    None,
                    None,
                    None,
                    None,
                )
            }
            HelmAction::Test => {
                let t = spec.test.clone().unwrap_or_default();
                (t.timeout, None, None, None, None, None, None)
            }
        };
    let timeout = timeout
        .as_ref()
        .or(spec.timeout.as_ref())
        .and_then(|t| flux_api::duration::parse(t).ok())
        .unwrap_or(std::time::Duration::from_secs(300));
    ActionOptions {
        timeout,
        disable_hooks: disable_hooks.unwrap_or(false),
        wait: !disable_wait.unwrap_or(false),
        wait_for_jobs: !disable_jobs.unwrap_or(false),
        force: force.unwrap_or(false),
        take_ownership: !disable_take.unwrap_or(false),
        cleanup_on_fail: cleanup.unwrap_or(false),
    }
}

/// `spec.test.enable`.
pub fn tests_enabled(hr: &HelmRelease) -> bool {
    hr.spec
        .test
        .as_ref()
        .and_then(|t| t.enable)
        .unwrap_or(false)
}

/// Whether a test hook runs under `spec.test.filters` (Helm's `--filter name=`/`!name=`):
/// excluded names never run; when any name is included, only included names run.
pub fn test_selected(hr: &HelmRelease, hook_name: &str) -> bool {
    let filters = hr
        .spec
        .test
        .as_ref()
        .and_then(|t| t.filters.as_deref())
        .unwrap_or_default();
    let included: Vec<&str> = filters
        .iter()
        .filter(|f| !f.exclude.unwrap_or(false))
        .map(|f| f.name.as_str())
        .collect();
    if !included.is_empty() {
        return included.contains(&hook_name);
    }
    !filters
        .iter()
        .any(|f| f.exclude.unwrap_or(false) && f.name == hook_name)
}

/// Flux's `MustIgnoreTestFailures`: the active remediation's `ignoreTestFailures`, else
/// `spec.test.ignoreFailures`.
pub fn ignore_test_failures(hr: &HelmRelease, active: flux_api::helm::ReleaseAction) -> bool {
    let from_remediation = match active {
        flux_api::helm::ReleaseAction::Install => hr
            .spec
            .install
            .as_ref()
            .and_then(|i| i.remediation.as_ref())
            .and_then(|r| r.ignore_test_failures),
        flux_api::helm::ReleaseAction::Upgrade => hr
            .spec
            .upgrade
            .as_ref()
            .and_then(|u| u.remediation.as_ref())
            .and_then(|r| r.ignore_test_failures),
    };
    from_remediation.unwrap_or_else(|| {
        hr.spec
            .test
            .as_ref()
            .and_then(|t| t.ignore_failures)
            .unwrap_or(false)
    })
}

/// The release's test hooks by name, as Flux records them in a snapshot's `testHooks`.
pub fn test_hooks(release: &Release) -> BTreeMap<String, flux_api::helm::TestHookStatus> {
    let time = |t: &Option<String>| {
        t.as_deref()
            .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(flux_api::meta::Time)
    };
    release
        .hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e == "test"))
        .map(|h| {
            (
                h.name.clone(),
                flux_api::helm::TestHookStatus {
                    last_started: time(&h.last_run.started_at),
                    last_completed: time(&h.last_run.completed_at),
                    phase: Some(h.last_run.phase.clone()).filter(|p| !p.is_empty()),
                },
            )
        })
        .collect()
}

/// Where the latest release stands with `spec.test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestState {
    /// Tests are not enabled.
    Disabled,
    /// Enabled, not run for this release yet.
    Untested,
    /// Run, no test hook failed.
    Passed,
    /// Run, a test hook failed.
    Failed,
}

/// Flux's `HasBeenTested`/`HasTestInPhase(Failed)` on the latest snapshot (`testHooks` set).
pub fn test_state(hr: &HelmRelease, latest: Option<&ReleaseSnapshot>) -> TestState {
    if !tests_enabled(hr) {
        return TestState::Disabled;
    }
    match latest.and_then(|s| s.test_hooks.as_ref()) {
        None => TestState::Untested,
        Some(hooks) if hooks.values().any(|h| h.phase.as_deref() == Some("Failed")) => {
            TestState::Failed
        }
        Some(_) => TestState::Passed,
    }
}

/// Flux's TestSucceeded message.
pub fn test_succeeded_message(release: &Release, hooks: usize) -> String {
    let detail = match hooks {
        0 => "no test hooks".to_string(),
        1 => "1 test hook completed successfully".to_string(),
        n => format!("{n} test hooks completed successfully"),
    };
    format!(
        "Helm test succeeded for release {} with chart {}: {detail}",
        release_ref(release),
        chart_ref(release)
    )
}

/// Flux's TestFailed message.
pub fn test_failed_message(release: &Release, err: &str) -> String {
    format!(
        "Helm test failed for release {} with chart {}: {}",
        release_ref(release),
        chart_ref(release),
        err.trim()
    )
}

/// `status.history` rebuilt from storage, keeping what only the status knows: test results
/// of a release whose hooks recorded none (no test hooks) and the OCI digest. A release made
/// in this reconcile (no earlier snapshot) gets `new_oci_digest`.
pub fn merge_history(
    history: &[Release],
    previous: Option<&[ReleaseSnapshot]>,
    new_oci_digest: Option<&str>,
) -> Vec<ReleaseSnapshot> {
    let mut snapshots = history_snapshots(history);
    for snap in &mut snapshots {
        let old = previous.unwrap_or_default().iter().find(|o| {
            o.name == snap.name && o.namespace == snap.namespace && o.version == snap.version
        });
        match old {
            Some(old) => {
                snap.oci_digest.clone_from(&old.oci_digest);
                if snap.test_hooks.is_none() {
                    snap.test_hooks.clone_from(&old.test_hooks);
                }
            }
            None => snap.oci_digest = new_oci_digest.map(str::to_string),
        }
    }
    snapshots
}

/// Helm's ownership check of an existing object before adopting it (`checkOwnership`):
/// `None` when it belongs to the release, else Helm's "invalid ownership metadata" text.
pub fn ownership_error(
    live: &Value,
    release_name: &str,
    release_namespace: &str,
) -> Option<String> {
    let get = |field: &str, key: &str| {
        live.pointer(&format!("/metadata/{field}"))
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
    };
    let require = |field: &str, key: &str, want: &str| match get(field, key) {
        None => Some(format!("missing key \"{key}\": must be set to \"{want}\"")),
        Some(v) if v != want => Some(format!(
            "key \"{key}\" must equal \"{want}\": current value is \"{v}\""
        )),
        Some(_) => None,
    };
    let errors: Vec<String> = [
        require("labels", keys::MANAGED_BY, "Helm").map(|e| format!("label validation error: {e}")),
        require("annotations", keys::RELEASE_NAME, release_name)
            .map(|e| format!("annotation validation error: {e}")),
        require("annotations", keys::RELEASE_NAMESPACE, release_namespace)
            .map(|e| format!("annotation validation error: {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!errors.is_empty()).then(|| format!("invalid ownership metadata; {}", errors.join("; ")))
}

/// Flux's chart version mutation for an OCIRepository artifact revision (`<tag>@<digest>`
/// or `<digest>`): `<version>+<first 12 hex of the digest>` and the OCI digest. The tag must
/// equal the chart version.
pub fn oci_chart_version(version: &str, revision: &str) -> Result<(String, String), String> {
    let core = |v: &str| v.split('+').next().unwrap_or_default().to_string();
    let digest = match revision.split_once('@') {
        Some((tag, digest)) => {
            if core(&tag.replace('_', "+")) != core(version) {
                return Err(format!(
                    "artifact revision {tag} does not match chart version {version}"
                ));
            }
            digest
        }
        None => revision,
    };
    let hex = match digest.split_once(':') {
        Some((_, hex)) if hex.len() >= 12 && !hex.contains(':') => hex,
        _ => return Err(format!("invalid artifact revision {revision}")),
    };
    Ok((
        format!("{}+{}", core(version), &hex[..12]),
        digest.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hr(yaml: &str) -> HelmRelease {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BASE: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: web, namespace: apps}\nspec:\n  interval: 5m\n";

    #[test]
    fn release_names_as_flux_builds_them() {
        assert_eq!(release_name(&hr(BASE)), "web");
        let targeted = hr(&format!("{BASE}  targetNamespace: prod\n"));
        assert_eq!(release_name(&targeted), "prod-web");
        assert_eq!(release_namespace(&targeted), "prod");
        assert_eq!(storage_namespace(&targeted), "apps");
        let named = hr(&format!(
            "{BASE}  releaseName: custom\n  targetNamespace: prod\n"
        ));
        assert_eq!(release_name(&named), "custom");
        let long = "a".repeat(60);
        let short = shorten_name(&long);
        assert_eq!(short.len(), 53);
        assert!(short.starts_with(&"a".repeat(40)));
        assert_eq!(helm_chart_name(&hr(BASE)), "apps-web");
    }

    #[test]
    fn values_merge_deeply_and_target_paths_are_typed() {
        let mut base = parse_values_document("a: {b: 1, c: [1]}\nd: x\n").unwrap();
        let overlay = parse_values_document("a: {b: 2, c: [3]}\ne: y\n").unwrap();
        merge_values(&mut base, &overlay);
        assert_eq!(
            Value::Object(base.clone()),
            serde_json::json!({"a": {"b": 2, "c": [3]}, "d": "x", "e": "y"})
        );
        let set = set_target_path(&base, "a.f", "true").unwrap();
        assert_eq!(set["a"]["f"], Value::Bool(true));
        assert!(parse_values_document("- 1\n").is_err());
        assert!(parse_values_document("").unwrap().is_empty());
    }

    #[test]
    fn drift_counts_ignore_noise_and_ignored_paths() {
        let desired = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "9"}, "data": {"k": "v", "n": "1"}});
        let same = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "3", "managedFields": [{}]},
            "data": {"k": "v", "n": "1"}, "status": {"x": 1}});
        assert_eq!(drift_counts(&desired, &same, &[]), (0, 0, 0));
        let edited = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a"}, "data": {"k": "changed", "extra": "x"}});
        assert_eq!(drift_counts(&desired, &edited, &[]), (1, 1, 1));
        assert_eq!(
            drift_counts(&desired, &edited, &["/data".to_string()]),
            (0, 0, 0)
        );
        let owned = with_ownership(desired, "rel", "ns");
        assert_eq!(owned["metadata"]["labels"][keys::MANAGED_BY], "Helm");
        assert_eq!(owned["metadata"]["annotations"][keys::RELEASE_NAME], "rel");
        let disabled = serde_json::json!({"metadata": {"annotations": {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}}});
        assert!(drift_disabled(&disabled));
        assert!(!drift_disabled(&owned));
    }

    #[test]
    fn kustomize_post_renderer_patches_and_images() {
        let manifest = "---\n# Source: c/templates/d.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.0\n";
        let renderers: Vec<flux_api::helm::PostRenderer> = serde_yaml::from_str(
            r"
- kustomize:
    patches:
      - target: {kind: Deployment, name: web}
        patch: |
          - op: add
            path: /metadata/annotations
            value: {patched: 'yes'}
    images:
      - {name: nginx, newTag: '2.0'}
",
        )
        .unwrap();
        let out = kustomize_post_render(manifest, &renderers).unwrap();
        let objects = manifest_objects(&out).unwrap();
        assert_eq!(objects[0]["metadata"]["annotations"]["patched"], "yes");
        assert_eq!(
            objects[0]["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2.0"
        );
        assert!(post_renderers_digest(Some(&renderers))
            .unwrap()
            .starts_with("sha256:"));
        assert_eq!(post_renderers_digest(None), None);
        let bad: Vec<flux_api::helm::PostRenderer> =
            serde_yaml::from_str("- kustomize:\n    patches:\n      - patch: 'not a patch'\n")
                .unwrap();
        assert!(kustomize_post_render(manifest, &bad).is_err());
    }

    #[test]
    fn post_render_adds_origin_labels_over_common_metadata() {
        let manifest = "---\n# Source: c/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {keep: me}\n";
        let common = flux_api::meta::CommonMetadata {
            labels: Some(
                [
                    ("team".to_string(), "x".to_string()),
                    (keys::ORIGIN_NAME.to_string(), "spoofed".to_string()),
                ]
                .into(),
            ),
            annotations: None,
        };
        let out = post_render(manifest, "web", "apps", Some(&common)).unwrap();
        let objects = manifest_objects(&out).unwrap();
        assert_eq!(objects.len(), 1);
        let labels = &objects[0]["metadata"]["labels"];
        assert_eq!(labels["keep"], "me");
        assert_eq!(labels["team"], "x");
        assert_eq!(labels[keys::ORIGIN_NAME], "web");
        assert_eq!(labels[keys::ORIGIN_NAMESPACE], "apps");
        assert_eq!(split_manifest(&out)[0].0, "c/templates/cm.yaml");
    }

    fn release(version: i64, status: &str, chart_version: &str, values: Value) -> Release {
        Release {
            name: "web".into(),
            namespace: "apps".into(),
            version,
            info: Some(flux_helm::release::Info {
                status: status.into(),
                ..Default::default()
            }),
            chart: Some(serde_json::json!({"metadata": {"name": "c", "version": chart_version}})),
            config: values.as_object().cloned(),
            ..Default::default()
        }
    }

    #[test]
    fn release_states() {
        let values = serde_json::json!({"a": 1});
        let digest = config_digest(values.as_object().unwrap());
        assert_eq!(
            release_state(&[], "c", "1.0.0", &digest),
            ReleaseState::Absent
        );
        let deployed = release(1, rls::DEPLOYED, "1.0.0", values.clone());
        assert_eq!(
            release_state(std::slice::from_ref(&deployed), "c", "1.0.0", &digest),
            ReleaseState::InSync
        );
        assert_eq!(
            release_state(std::slice::from_ref(&deployed), "c", "1.0.1", &digest),
            ReleaseState::OutOfSync
        );
        let other = config_digest(serde_json::json!({"a": 2}).as_object().unwrap());
        assert_eq!(
            release_state(std::slice::from_ref(&deployed), "c", "1.0.0", &other),
            ReleaseState::OutOfSync
        );
        let failed = release(2, rls::FAILED, "1.0.0", values.clone());
        let history = vec![deployed.clone(), failed];
        assert_eq!(
            release_state(&history, "c", "1.0.0", &digest),
            ReleaseState::Failed
        );
        assert_eq!(rollback_target(&history).map(|r| r.version), Some(1));
        let pending = release(3, rls::PENDING_UPGRADE, "1.0.0", values);
        assert_eq!(
            release_state(&[deployed, pending], "c", "1.0.0", &digest),
            ReleaseState::Locked
        );
    }

    #[test]
    fn remediation_retries() {
        let none = hr(BASE);
        let upgrade = Remediation::upgrade(&none);
        assert!(upgrade.exhausted(1));
        assert!(!upgrade.should_remediate(1));
        let one = hr(&format!(
            "{BASE}  upgrade:\n    remediation: {{retries: 1}}\n"
        ));
        let upgrade = Remediation::upgrade(&one);
        assert!(!upgrade.exhausted(1));
        assert!(upgrade.exhausted(2));
        // remediateLastFailure defaults to true when retries > 0.
        assert!(upgrade.should_remediate(2));
        assert_eq!(upgrade.strategy, RemediationStrategy::Rollback);
        let unlimited = hr(&format!(
            "{BASE}  install:\n    remediation: {{retries: -1}}\n"
        ));
        assert!(!Remediation::install(&unlimited).exhausted(100));
    }

    #[test]
    fn messages_and_snapshots() {
        let r = release(2, rls::DEPLOYED, "1.2.3", serde_json::json!({}));
        assert_eq!(
            succeeded_message("upgrade", &r),
            "Helm upgrade succeeded for release apps/web.v2 with chart c@1.2.3"
        );
        let s = snapshot(&r);
        assert_eq!((s.version, s.status.as_str()), (2, "deployed"));
        assert!(s.digest.starts_with("sha256:"));
        let history: Vec<Release> = (1..=7)
            .map(|v| release(v, rls::SUPERSEDED, "1", serde_json::json!({})))
            .collect();
        let snaps = history_snapshots(&history);
        assert_eq!(snaps.len(), 5);
        assert_eq!(snaps[0].version, 7);
        let entry = inventory_entry(
            &serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "namespace": "apps"}}),
        );
        assert_eq!(entry.id, "apps_w_apps_Deployment");
        assert_eq!(entry.v, "v1");
    }
}

#[cfg(test)]
mod action_tests {
    use super::*;
    use flux_api::helm::ReleaseAction;
    use std::time::Duration;

    fn hr(spec: &str) -> HelmRelease {
        serde_yaml::from_str(&format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {{name: web, namespace: apps}}\nspec:\n  interval: 5m\n{spec}"
        ))
        .unwrap()
    }

    fn with_test_hooks(phases: &[(&str, &str)]) -> Release {
        Release {
            name: "web".into(),
            namespace: "apps".into(),
            version: 2,
            info: Some(flux_helm::release::Info {
                status: rls::DEPLOYED.into(),
                ..Default::default()
            }),
            chart: Some(serde_json::json!({"metadata": {"name": "c", "version": "1.0.0"}})),
            hooks: phases
                .iter()
                .map(|(name, phase)| flux_helm::release::Hook {
                    name: (*name).into(),
                    kind: "Pod".into(),
                    events: vec!["test".into()],
                    last_run: flux_helm::release::HookExecution {
                        started_at: (!phase.is_empty()).then(|| "2026-11-23T08:00:00Z".into()),
                        completed_at: None,
                        phase: (*phase).into(),
                    },
                    ..Default::default()
                })
                .chain(std::iter::once(flux_helm::release::Hook {
                    name: "setup".into(),
                    events: vec!["pre-install".into()],
                    ..Default::default()
                }))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn action_options_take_the_action_then_the_spec_defaults() {
        let plain = hr("");
        let install = action_options(&plain, HelmAction::Install);
        assert_eq!(install.timeout, Duration::from_secs(300));
        assert!(install.wait && install.wait_for_jobs && install.take_ownership);
        assert!(!install.force && !install.cleanup_on_fail && !install.disable_hooks);
        let tuned = hr("  timeout: 1m\n  install: {disableTakeOwnership: true, disableWaitForJobs: true}\n  upgrade: {timeout: 20s, force: true, cleanupOnFail: true, disableWait: true}\n  rollback: {disableHooks: true}\n  uninstall: {timeout: 7s}\n  test: {timeout: 3s}\n");
        let install = action_options(&tuned, HelmAction::Install);
        assert_eq!(install.timeout, Duration::from_secs(60));
        assert!(!install.take_ownership && !install.wait_for_jobs);
        let upgrade = action_options(&tuned, HelmAction::Upgrade);
        assert_eq!(upgrade.timeout, Duration::from_secs(20));
        assert!(upgrade.force && upgrade.cleanup_on_fail && !upgrade.wait);
        assert!(upgrade.take_ownership);
        assert!(action_options(&tuned, HelmAction::Rollback).disable_hooks);
        assert_eq!(
            action_options(&tuned, HelmAction::Uninstall).timeout,
            Duration::from_secs(7)
        );
        assert_eq!(
            action_options(&tuned, HelmAction::Test).timeout,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn test_filters_and_ignore_rules() {
        let excluded = hr("  test: {enable: true, filters: [{name: slow, exclude: true}]}\n");
        assert!(tests_enabled(&excluded));
        assert!(!test_selected(&excluded, "slow"));
        assert!(test_selected(&excluded, "fast"));
        let included =
            hr("  test: {enable: true, filters: [{name: fast}, {name: slow, exclude: true}]}\n");
        assert!(test_selected(&included, "fast"));
        assert!(!test_selected(&included, "other"));
        assert!(!tests_enabled(&hr("")));
        let ignoring = hr("  test: {enable: true, ignoreFailures: true}\n  upgrade: {remediation: {ignoreTestFailures: false}}\n");
        assert!(ignore_test_failures(&ignoring, ReleaseAction::Install));
        assert!(!ignore_test_failures(&ignoring, ReleaseAction::Upgrade));
    }

    #[test]
    fn test_state_comes_from_the_latest_snapshot() {
        let enabled = hr("  test: {enable: true}\n");
        let untested = snapshot(&with_test_hooks(&[("a", ""), ("b", "")]));
        assert_eq!(untested.test_hooks, None);
        assert_eq!(test_state(&enabled, Some(&untested)), TestState::Untested);
        let passed = snapshot(&with_test_hooks(&[("a", "Succeeded"), ("b", "")]));
        let hooks = passed.test_hooks.clone().unwrap();
        assert_eq!(hooks.len(), 2, "skipped test hooks are listed too");
        assert_eq!(hooks["a"].phase.as_deref(), Some("Succeeded"));
        assert!(hooks["a"].last_started.is_some());
        assert_eq!(test_state(&enabled, Some(&passed)), TestState::Passed);
        let mut rolled_back = with_test_hooks(&[("a", "Succeeded")]);
        rolled_back.info.as_mut().unwrap().last_deployed = Some("2026-11-23T09:00:00Z".into());
        assert_eq!(
            snapshot(&rolled_back).test_hooks,
            None,
            "runs from before the deploy do not count"
        );
        let failed = snapshot(&with_test_hooks(&[("a", "Succeeded"), ("b", "Failed")]));
        assert_eq!(test_state(&enabled, Some(&failed)), TestState::Failed);
        assert_eq!(test_state(&hr(""), Some(&failed)), TestState::Disabled);
        let release = with_test_hooks(&[("a", "Succeeded")]);
        assert_eq!(
            test_succeeded_message(&release, 1),
            "Helm test succeeded for release apps/web.v2 with chart c@1.0.0: 1 test hook completed successfully"
        );
        assert_eq!(
            test_succeeded_message(&release, 0),
            "Helm test succeeded for release apps/web.v2 with chart c@1.0.0: no test hooks"
        );
        assert_eq!(
            test_failed_message(&release, "pod a failed\n"),
            "Helm test failed for release apps/web.v2 with chart c@1.0.0: pod a failed"
        );
    }

    #[test]
    fn history_merge_keeps_status_only_data() {
        let release = with_test_hooks(&[]);
        let mut previous = snapshot(&release);
        previous.test_hooks = Some(BTreeMap::new());
        previous.oci_digest = Some("sha256:old".into());
        let merged = merge_history(
            std::slice::from_ref(&release),
            Some(&[previous]),
            Some("sha256:new"),
        );
        assert_eq!(merged[0].test_hooks, Some(BTreeMap::new()));
        assert_eq!(merged[0].oci_digest.as_deref(), Some("sha256:old"));
        let fresh = merge_history(std::slice::from_ref(&release), None, Some("sha256:new"));
        assert_eq!(fresh[0].oci_digest.as_deref(), Some("sha256:new"));
        assert_eq!(fresh[0].test_hooks, None);
    }

    #[test]
    fn ownership_errors_use_helms_wording() {
        let owned = serde_json::json!({"metadata": {
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "apps"}}});
        assert_eq!(ownership_error(&owned, "web", "apps"), None);
        assert_eq!(
            ownership_error(&owned, "other", "apps").as_deref(),
            Some("invalid ownership metadata; annotation validation error: key \"meta.helm.sh/release-name\" must equal \"other\": current value is \"web\"")
        );
        assert_eq!(
            ownership_error(&serde_json::json!({"metadata": {}}), "web", "apps").as_deref(),
            Some("invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"web\"; annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"apps\"")
        );
    }

    #[test]
    fn oci_digest_is_appended_to_the_chart_version() {
        let digest = format!("sha256:{}", "ab12".repeat(16));
        assert_eq!(
            oci_chart_version("0.1.0", &format!("0.1.0@{digest}")),
            Ok(("0.1.0+ab12ab12ab12".to_string(), digest.clone()))
        );
        assert_eq!(
            oci_chart_version("0.1.0+old", &digest),
            Ok(("0.1.0+ab12ab12ab12".to_string(), digest.clone()))
        );
        assert_eq!(
            oci_chart_version("0.1.0", &format!("0.2.0@{digest}")),
            Err("artifact revision 0.2.0 does not match chart version 0.1.0".to_string())
        );
        assert!(oci_chart_version("0.1.0", "sha256:short").is_err());
    }
}
