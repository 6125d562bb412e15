//! `helm template`: values, template execution, manifest sorting and output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use crate::chart::Chart;
use crate::error::{Error, Result};
use crate::funcs::FuncError;
use crate::template::exec::{
    Context, Exec, ExecError, Templates, TplTemplate, WARN_END, WARN_START,
};
use crate::template::parse;
use crate::value::{KubeVersion, Value};

/// Options of a render, mirroring `helm template` flags.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub release_name: String,
    pub namespace: String,
    pub include_crds: bool,
    pub skip_schema_validation: bool,
    pub is_upgrade: bool,
    /// `--kube-version`; Helm 4's default is v1.37.0.
    pub kube_version: Option<String>,
    /// Seed for `randAlphaNum` and friends (Helm's output there is random anyway).
    pub seed: u64,
    /// Helm 3.17 compatibility: its document splitting and trimming, kind order, value
    /// coalescing (chart-default nulls kept) and default Capabilities (kube v1.32.0).
    pub helm3: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            release_name: "release-name".into(),
            namespace: "default".into(),
            include_crds: false,
            skip_schema_validation: false,
            is_upgrade: false,
            kube_version: None,
            seed: 0x5eed,
            helm3: false,
        }
    }
}

/// Helm 4's default API versions (`helm template` without a cluster).
pub const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "lifecycle.k8s.io/v1alpha1",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1",
    "resource.k8s.io/v1beta2",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1",
    "storagemigration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// Helm 3.17's default API versions.
pub const HELM3_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1alpha1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha1",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1alpha1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// Helm's install order of kinds.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// Loads the chart at `chart_path`, merges values files and `--set` strings, and renders.
pub fn template(
    chart_path: &std::path::Path,
    values_files: &[PathBuf],
    sets: &[String],
    opts: &RenderOptions,
) -> Result<String> {
    let chart = crate::chart::load(chart_path)?;
    let mut user = Value::new_map();
    for f in values_files {
        let text = std::fs::read_to_string(f).map_err(|source| Error::Io {
            path: f.display().to_string(),
            source,
        })?;
        let v = crate::yaml::parse(&text).map_err(|message| Error::Yaml {
            path: f.display().to_string(),
            message,
        })?;
        if let Value::Map(_) = v {
            user = crate::values::merge_user_values(&user, &v);
        }
    }
    for s in sets {
        crate::values::parse_set(s, &user)?;
    }
    render(chart, &user, opts)
}

/// A rendered manifest.
struct Manifest {
    path: String,
    content: String,
    kind: String,
}

fn kind_rank(kind: &str, helm3: bool) -> Option<usize> {
    // Helm 3 does not know the webhook configuration kinds (the last two).
    let order = if helm3 {
        &INSTALL_ORDER[..INSTALL_ORDER.len() - 2]
    } else {
        INSTALL_ORDER
    };
    order.iter().position(|k| *k == kind)
}

fn kind_order(a: &str, b: &str, helm3: bool) -> std::cmp::Ordering {
    match (kind_rank(a, helm3), kind_rank(b, helm3)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn sort_by_kind(items: &mut [Manifest], helm3: bool) {
    items.sort_by(|a, b| kind_order(&a.kind, &b.kind, helm3));
}

/// Renders a loaded chart with user values; returns `helm template`'s stdout.
pub fn render(mut chart: Chart, user: &Value, opts: &RenderOptions) -> Result<String> {
    if chart.is_library() {
        return Err(Error::Render("library charts are not installable".into()));
    }
    crate::values::process_dependencies(&mut chart, user, opts.helm3)?;
    let values = crate::values::coalesce_values(&chart, user, opts.helm3);
    if !opts.skip_schema_validation {
        crate::schema::validate_chart(&chart, &values, opts.helm3)?;
    }
    let files = render_files(&chart, &values, opts, &ReleaseEnv::default())?;
    Ok(assemble(&chart, files, opts)?.into_template_output())
}

fn capabilities(opts: &RenderOptions) -> Value {
    let version = opts.kube_version.clone().unwrap_or_else(|| {
        if opts.helm3 {
            "v1.32.0".into()
        } else {
            "v1.37.0".into()
        }
    });
    let version = if version.starts_with('v') {
        version
    } else {
        format!("v{version}")
    };
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or("1").to_string();
    let minor = parts.next().unwrap_or("0").to_string();
    let mut caps = BTreeMap::new();
    caps.insert(
        "KubeVersion".to_string(),
        Value::KubeVersion(Rc::new(KubeVersion {
            version,
            major,
            minor,
        })),
    );
    caps.insert(
        "APIVersions".to_string(),
        Value::ApiVersions(Rc::new(
            (if opts.helm3 {
                HELM3_API_VERSIONS
            } else {
                DEFAULT_API_VERSIONS
            })
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
        )),
    );
    let mut helm = BTreeMap::new();
    helm.insert(
        "Version".to_string(),
        Value::str(if opts.helm3 { "v3.17.2" } else { "v4.3.1" }),
    );
    helm.insert("GitCommit".to_string(), Value::str("c0d08d0"));
    helm.insert("GitTreeState".to_string(), Value::str("clean"));
    helm.insert("GoVersion".to_string(), Value::str("go1.25.0"));
    caps.insert("HelmVersion".to_string(), Value::from_map(helm));
    Value::from_map(caps)
}

fn chart_object(chart: &Chart, is_root: bool) -> Value {
    let mut m = BTreeMap::new();
    let md = &chart.metadata;
    let get = |k: &str| md.get(k).unwrap_or(Value::Nil);
    let s = |k: &str| match md.get(k) {
        Some(Value::Str(s)) => Value::Str(s),
        Some(Value::Float(f)) => Value::string(crate::value::format_go_float(f)),
        _ => Value::str(""),
    };
    m.insert("Name".into(), Value::str(&chart.name));
    m.insert("Home".into(), s("home"));
    m.insert("Sources".into(), get("sources"));
    m.insert("Version".into(), s("version"));
    m.insert("Description".into(), s("description"));
    m.insert("Keywords".into(), get("keywords"));
    m.insert("Maintainers".into(), get("maintainers"));
    m.insert("Icon".into(), s("icon"));
    m.insert("APIVersion".into(), s("apiVersion"));
    m.insert("Condition".into(), s("condition"));
    m.insert("Tags".into(), s("tags"));
    m.insert("AppVersion".into(), s("appVersion"));
    m.insert(
        "Deprecated".into(),
        Value::Bool(matches!(md.get("deprecated"), Some(Value::Bool(true)))),
    );
    m.insert("Annotations".into(), get("annotations"));
    m.insert("KubeVersion".into(), s("kubeVersion"));
    m.insert("Dependencies".into(), get("dependencies"));
    m.insert("Type".into(), s("type"));
    m.insert("IsRoot".into(), Value::Bool(is_root));
    Value::from_map(m)
}

struct Renderable {
    source: String,
    dot: Value,
    base_path: String,
}

#[allow(clippy::too_many_arguments)]
fn collect_templates(
    chart: &Chart,
    parent_values: &Value,
    full_path: &str,
    is_root: bool,
    release: &Value,
    caps: &Value,
    out: &mut BTreeMap<String, Renderable>,
) -> Value {
    let values = if is_root {
        parent_values.clone()
    } else {
        match parent_values.get(&chart.name) {
            Some(v @ Value::Map(_)) => v,
            _ => Value::new_map(),
        }
    };
    let subcharts = Value::new_map();
    let mut next = BTreeMap::new();
    next.insert("Chart".to_string(), chart_object(chart, is_root));
    next.insert(
        "Files".to_string(),
        Value::Files(Rc::new(chart.files.clone())),
    );
    next.insert("Release".to_string(), release.clone());
    next.insert("Capabilities".to_string(), caps.clone());
    next.insert("Values".to_string(), values.clone());
    next.insert("Subcharts".to_string(), subcharts.clone());
    let next = Value::from_map(next);
    for sub in &chart.subcharts {
        let sub_path = format!("{full_path}/charts/{}", sub.name);
        let sub_next = collect_templates(sub, &values, &sub_path, false, release, caps, out);
        if let Some(m) = subcharts.as_map() {
            m.borrow_mut().insert(sub.name.clone(), sub_next);
        }
    }
    for (name, source) in &chart.templates {
        if chart.is_library() {
            let base = name.rsplit('/').next().unwrap_or(name);
            if !base.starts_with('_') {
                continue;
            }
        }
        out.insert(
            format!("{full_path}/{name}"),
            Renderable {
                source: source.clone(),
                dot: next.clone(),
                base_path: format!("{full_path}/templates"),
            },
        );
    }
    next
}

/// Helm's parse order: deeper paths first, then reverse lexical order.
fn sort_templates(names: &mut [String]) {
    names.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
}

fn render_files(
    chart: &Chart,
    values: &Value,
    opts: &RenderOptions,
    release: &ReleaseEnv,
) -> Result<BTreeMap<String, String>> {
    let revision = release.revision;
    let mut release_object = BTreeMap::new();
    release_object.insert("Name".to_string(), Value::str(&opts.release_name));
    release_object.insert("Namespace".to_string(), Value::str(&opts.namespace));
    release_object.insert("IsUpgrade".to_string(), Value::Bool(opts.is_upgrade));
    release_object.insert("IsInstall".to_string(), Value::Bool(!opts.is_upgrade));
    release_object.insert("Revision".to_string(), Value::Int(revision));
    release_object.insert("Service".to_string(), Value::str("Helm"));
    let release_object = Value::from_map(release_object);
    let caps = capabilities(opts);
    let mut renderables = BTreeMap::new();
    collect_templates(
        chart,
        values,
        &chart.name,
        true,
        &release_object,
        &caps,
        &mut renderables,
    );
    let mut names: Vec<String> = renderables.keys().cloned().collect();
    sort_templates(&mut names);
    let mut templates = Templates::default();
    let interner = parse::Interner::default();
    for name in &names {
        let r = &renderables[name];
        let parsed = parse::parse_with(name, &r.source, &interner)
            .map_err(|e| Error::Render(parse_error_message(name, &e)))?;
        templates.add(parsed);
    }
    let ctx = Context {
        rng: std::cell::Cell::new(opts.seed.max(1)),
        lookup: release.lookup.clone(),
    };
    let mut exec = Exec::new(&templates, &ctx);
    let mut rendered = BTreeMap::new();
    for name in &names {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') {
            continue;
        }
        let r = &renderables[name];
        let mut tmpl = BTreeMap::new();
        tmpl.insert("Name".to_string(), Value::str(name));
        tmpl.insert("BasePath".to_string(), Value::str(&r.base_path));
        if let Some(m) = r.dot.as_map() {
            m.borrow_mut()
                .insert("Template".to_string(), Value::from_map(tmpl));
        }
        let out = exec.execute(name, &r.dot).map_err(|e| {
            let message = if opts.helm3 {
                helm3_error(&e)
            } else {
                helm4_error(&e)
            };
            Error::Render(format!(
                "{message}\n\nUse --debug flag to render out invalid YAML"
            ))
        })?;
        rendered.insert(name.clone(), out.replace("<no value>", ""));
    }
    Ok(rendered)
}

fn parse_error_message(name: &str, e: &parse::ParseError) -> String {
    format!("parse error at ({name}:{}): {}", e.line, e.message)
}

/// Helm 3.17's `cleanupExecError`: the warning form for `fail`/`required`, else Go's text.
pub fn helm3_error(e: &ExecError) -> String {
    let full = e.to_string();
    let tokens: Vec<&str> = full.splitn(3, ": ").collect();
    if tokens.len() == 3 {
        if let (Some(s), Some(end)) = (tokens[2].find(WARN_START), tokens[2].rfind(WARN_END)) {
            if s + WARN_START.len() <= end {
                return format!(
                    "execution error at ({}): {}",
                    tokens[1],
                    &tokens[2][s + WARN_START.len()..end]
                );
            }
        }
    }
    full
}

/// Helm 4's `reformatExecErrorMsg`.
pub fn helm4_error(e: &ExecError) -> String {
    let full = e.to_string();
    let tokens: Vec<&str> = full.splitn(3, ": ").collect();
    if tokens.len() == 3 {
        if let (Some(s), Some(end)) = (tokens[2].find(WARN_START), tokens[2].rfind(WARN_END)) {
            if s + WARN_START.len() <= end {
                return format!(
                    "execution error at ({}): {}",
                    tokens[1],
                    &tokens[2][s + WARN_START.len()..end]
                );
            }
        }
    }
    let mut traces: Vec<(String, String, String)> = Vec::new();
    for msg in e.chain() {
        let Some(rest) = msg.strip_prefix("template: ") else {
            return full;
        };
        let trace = if rest.starts_with("no template ") {
            (String::new(), String::new(), msg.clone())
        } else if let Some((tname, after)) = rest.split_once(": executing ") {
            let Some(after) = after.strip_prefix('"') else {
                return full;
            };
            let Some(q) = after.find('"') else {
                return full;
            };
            let func = &after[..q];
            let Some(after_at) = after[q + 1..].strip_prefix(" at <") else {
                return full;
            };
            let Some((loc, err)) = after_at.split_once(">: ") else {
                return full;
            };
            let err = match err.find(" template:") {
                Some(cut) => &err[..cut],
                None => err,
            };
            (
                tname.to_string(),
                format!("executing \"{func}\" at <{loc}>:"),
                err.to_string(),
            )
        } else if let Some(sep) = rest.rfind(": ") {
            let err = &rest[sep + 2..];
            let err = match err.find(" template:") {
                Some(cut) => &err[..cut],
                None => err,
            };
            (rest[..sep].to_string(), String::new(), err.to_string())
        } else {
            return full;
        };
        if traces.last() != Some(&trace) {
            traces.push(trace);
        }
    }
    let mut out = String::new();
    for (loc, func, msg) in traces {
        if !loc.is_empty() {
            out.push_str(&format!("{loc}\n  "));
        }
        if !func.is_empty() {
            out.push_str(&format!("{func}\n    "));
        }
        if !msg.is_empty() {
            out.push_str(&format!("{msg}\n"));
        }
    }
    out.trim().to_string()
}

/// The `tpl` function.
pub fn tpl(exec: &mut Exec<'_>, text: &str, dot: &Value) -> Result<String, FuncError> {
    let parsed = match exec.tpl_cache.get(text) {
        Some(parsed) => parsed.clone(),
        None => {
            let parsed = parse::parse_with("gotpl", text, &exec.names).map_err(|e| {
                FuncError::Msg(format!(
                    "cannot parse template {}: {e}",
                    crate::funcs::go_quote(text)
                ))
            })?;
            let parsed = Rc::new(TplTemplate {
                main: parsed.main,
                defines: parsed
                    .defines
                    .into_iter()
                    .map(|(name, tree)| (name, Rc::new(tree)))
                    .collect(),
            });
            exec.tpl_cache.insert(text.to_string(), parsed.clone());
            parsed
        }
    };
    exec.overlay.push(parsed.defines.clone());
    let mut out = String::new();
    let result = exec.execute_tree(&parsed.main, dot, &mut out);
    exec.overlay.pop();
    match result {
        Ok(()) => Ok(out.replace("<no value>", "")),
        Err(e) => Err(FuncError::Wrapped(
            format!(
                "error during tpl function execution for {}: ",
                crate::funcs::go_quote(text)
            ),
            Box::new(e),
        )),
    }
}

fn split_manifests(content: &str) -> Vec<String> {
    let trimmed = content.trim_start();
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut first = true;
    for line in trimmed.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim_start_matches([' ', '\t']);
            if !first || !cur.is_empty() {
                docs.push(std::mem::take(&mut cur));
            } else {
                docs.push(String::new());
            }
            first = false;
            cur.push_str(rest);
            continue;
        }
        first = false;
        cur.push_str(line);
    }
    docs.push(cur);
    docs.into_iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim_start().to_string())
        .collect()
}

/// Helm 3's splitting: separator regex `(?:^|\s*\n)---\s*` over the trimmed file, each
/// document trimmed.
fn split_manifests_helm3(content: &str) -> Vec<String> {
    let text = content.trim();
    let bytes = text.as_bytes();
    let mut docs = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // A match starts at the beginning, or at whitespace that runs up to a newline.
        let mut sep_start = None;
        let mut j = i;
        if i == 0 && text[i..].starts_with("---") {
            sep_start = Some(i);
            j = i;
        } else if bytes[i].is_ascii_whitespace() {
            let mut k = i;
            let mut last_newline = None;
            while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                if bytes[k] == b'\n' {
                    last_newline = Some(k);
                }
                k += 1;
            }
            if let Some(nl) = last_newline {
                if text[nl + 1..].starts_with("---") {
                    sep_start = Some(i);
                    j = nl + 1;
                }
            }
        }
        if let Some(s) = sep_start {
            let mut end = j + 3;
            while end < bytes.len() && bytes[end].is_ascii_whitespace() {
                end += 1;
            }
            docs.push(&text[start..s]);
            start = end;
            i = end;
            continue;
        }
        i += 1;
    }
    docs.push(&text[start..]);
    docs.into_iter()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

struct Head {
    kind: String,
    name: String,
    hook: Option<String>,
    weight: i64,
    delete_policies: Vec<String>,
}

fn parse_head(doc: &str, path: &str) -> Result<Head> {
    match crate::head::scan(doc) {
        Some(raw) => Ok(head_from_raw(&raw)),
        None => parse_head_fully(doc, path),
    }
}

/// The head from the scanner's raw scalars, resolved as the full parse resolves them.
fn head_from_raw(raw: &crate::head::RawHead<'_>) -> Head {
    let string = |text: Option<&str>| -> Option<String> {
        let text = text?;
        let value = if text.starts_with('"') || text.starts_with('\'') {
            crate::yaml::parse(text).ok()?
        } else {
            crate::yaml::resolve_plain(text)
        };
        value.as_str().map(str::to_string)
    };
    let list = |text: Option<&str>| -> Vec<String> {
        string(text)
            .map(|s| s.split(',').map(|p| p.trim().to_lowercase()).collect())
            .unwrap_or_default()
    };
    Head {
        kind: string(raw.kind).unwrap_or_default(),
        name: string(raw.name).unwrap_or_default(),
        hook: string(raw.hook),
        weight: list(raw.weight)
            .first()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0),
        delete_policies: list(raw.delete_policy),
    }
}

/// Parses the whole document (Helm's check that it is YAML) and reads the head from it.
fn parse_head_fully(doc: &str, path: &str) -> Result<Head> {
    let v = crate::yaml::parse(doc).map_err(|message| Error::Render(format!(
        "YAML parse error on {path}: error converting YAML to JSON: {message}\n\nUse --debug flag to render out invalid YAML"
    )))?;
    let kind = match v.get("kind") {
        Some(Value::Str(s)) => s.to_string(),
        _ => String::new(),
    };
    let hook = v
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("helm.sh/hook"))
        .and_then(|h| h.as_str().map(str::to_string));
    let name = match v.get("metadata").and_then(|m| m.get("name")) {
        Some(Value::Str(s)) => s.to_string(),
        _ => String::new(),
    };
    let weight = annotation_list(&v, "helm.sh/hook-weight")
        .first()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let delete_policies = annotation_list(&v, "helm.sh/hook-delete-policy");
    Ok(Head {
        kind,
        name,
        hook,
        weight,
        delete_policies,
    })
}

/// Writes the `crds/` files of the chart and its subcharts, as `--include-crds` prints them.
fn write_crds(chart: &Chart, full_path: &str, out: &mut String) {
    use std::fmt::Write as _;
    for (name, data) in chart.crd_files() {
        let _ = write!(out, "---\n# Source: {full_path}/{name}\n");
        // `from_utf8` checks ASCII a word at a time; the lossy path only for invalid bytes.
        match std::str::from_utf8(&data) {
            Ok(text) => out.push_str(text),
            Err(_) => out.push_str(&String::from_utf8_lossy(&data)),
        }
        out.push('\n');
    }
    for sub in &chart.subcharts {
        write_crds(sub, &format!("{full_path}/charts/{}", sub.name), out);
    }
}

/// The size `write_crds` writes for a chart whose path is `path_len` long, so the output is
/// allocated once.
fn crd_bytes(chart: &Chart, path_len: usize) -> usize {
    chart
        .crd_files()
        .iter()
        .map(|(name, data)| "---\n# Source: /\n\n".len() + path_len + name.len() + data.len())
        .sum::<usize>()
        + chart
            .subcharts
            .iter()
            .map(|sub| crd_bytes(sub, path_len + "/charts/".len() + sub.name.len()))
            .sum::<usize>()
}

/// A hook manifest with the data Helm records for it.
#[derive(Debug, Clone)]
pub struct RenderedHook {
    pub name: String,
    pub kind: String,
    pub path: String,
    pub manifest: String,
    pub events: Vec<String>,
    pub weight: i64,
    pub delete_policies: Vec<String>,
}

/// The result of rendering a release: what `helm install` stores and applies.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The release manifest (`rel.Manifest`): non-hook documents, sorted, with `# Source:` lines.
    pub manifest: String,
    /// Hooks in Helm's order (kind order, then file order).
    pub hooks: Vec<RenderedHook>,
    /// The root chart's rendered `NOTES.txt`.
    pub notes: String,
}

impl Rendered {
    /// `helm template`'s stdout.
    pub fn template_output(&self) -> String {
        let mut out = String::with_capacity(self.template_output_len());
        out.push_str(self.manifest.trim());
        out.push('\n');
        self.push_hooks(&mut out);
        out
    }

    /// `helm template`'s stdout, built in the manifest's own buffer (no copy of the
    /// megabytes of manifest).
    pub fn into_template_output(self) -> String {
        let extra = self.template_output_len();
        let mut out = self.manifest;
        let end = out.trim_end().len();
        out.truncate(end);
        let start = out.len() - out.trim_start().len();
        if start > 0 {
            out.drain(..start);
        }
        out.reserve(extra.saturating_sub(out.len()));
        out.push('\n');
        // `push_hooks` only reads the hooks.
        let hooks = Rendered {
            manifest: String::new(),
            hooks: self.hooks,
            notes: String::new(),
        };
        hooks.push_hooks(&mut out);
        out
    }

    fn template_output_len(&self) -> usize {
        self.manifest.len()
            + 1
            + self
                .hooks
                .iter()
                .map(|h| h.path.len() + h.manifest.len() + 16)
                .sum::<usize>()
    }

    fn push_hooks(&self, out: &mut String) {
        for h in &self.hooks {
            out.push_str("---\n# Source: ");
            out.push_str(&h.path);
            out.push('\n');
            out.push_str(&h.manifest);
            out.push('\n');
        }
    }
}

/// Renders a loaded chart for a release (manifest, hooks and notes separately), as revision 1
/// of an offline render.
pub fn render_release(chart: Chart, user: &Value, opts: &RenderOptions) -> Result<Rendered> {
    render_in(chart, user, opts, &ReleaseEnv::default())
}

/// Answers Helm's `lookup apiVersion kind namespace name` from a live cluster: the object as a
/// map, for an empty `name` a list object with `items`, and an empty map when nothing is found
/// (as Helm does). An `Err` fails the render with that message.
pub trait Lookup {
    fn lookup(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> std::result::Result<Value, String>;
}

/// What a release render knows beyond `helm template`.
#[derive(Clone)]
pub struct ReleaseEnv {
    /// `.Release.Revision` (set `RenderOptions::is_upgrade` for upgrades).
    pub revision: i64,
    /// The cluster behind `lookup`; `None` renders offline, where `lookup` returns an empty map.
    pub lookup: Option<Rc<dyn Lookup>>,
}

impl Default for ReleaseEnv {
    fn default() -> Self {
        ReleaseEnv {
            revision: 1,
            lookup: None,
        }
    }
}

/// Renders a loaded chart for one revision of a release, with `lookup` answered by
/// `release.lookup`.
pub fn render_in(
    mut chart: Chart,
    user: &Value,
    opts: &RenderOptions,
    release: &ReleaseEnv,
) -> Result<Rendered> {
    if chart.is_library() {
        return Err(Error::Render("library charts are not installable".into()));
    }
    crate::values::process_dependencies(&mut chart, user, opts.helm3)?;
    let values = crate::values::coalesce_values(&chart, user, opts.helm3);
    if !opts.skip_schema_validation {
        crate::schema::validate_chart(&chart, &values, opts.helm3)?;
    }
    let files = render_files(&chart, &values, opts, release)?;
    assemble(&chart, files, opts)
}

fn annotation_list(v: &Value, key: &str) -> Vec<String> {
    v.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .and_then(|h| h.as_str().map(str::to_string))
        .map(|s| s.split(',').map(|p| p.trim().to_lowercase()).collect())
        .unwrap_or_default()
}

fn assemble(
    chart: &Chart,
    files: BTreeMap<String, String>,
    opts: &RenderOptions,
) -> Result<Rendered> {
    let mut manifests = Vec::new();
    let mut hooks: Vec<(Manifest, RenderedHook)> = Vec::new();
    let notes_name = format!("{}/templates/NOTES.txt", chart.name);
    let mut notes = String::new();
    for (path, content) in files {
        if path.ends_with("NOTES.txt") {
            if path == notes_name {
                notes = content;
            }
            continue;
        }
        let base = path.rsplit('/').next().unwrap_or(&path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        let docs = if opts.helm3 {
            split_manifests_helm3(&content)
        } else {
            split_manifests(&content)
        };
        for doc in docs {
            let head = parse_head(&doc, &path)?;
            let m = Manifest {
                path: path.clone(),
                content: doc,
                kind: head.kind.clone(),
            };
            match head.hook {
                Some(h) => {
                    let events: Vec<String> =
                        h.split(',').map(|e| e.trim().to_lowercase()).collect();
                    if events.iter().all(|e| HOOK_EVENTS.contains(&e.as_str())) {
                        let hook = RenderedHook {
                            name: head.name,
                            kind: head.kind,
                            path: path.clone(),
                            manifest: m.content.clone(),
                            events: events
                                .into_iter()
                                .map(|e| {
                                    if e == "test-success" {
                                        "test".to_string()
                                    } else {
                                        e
                                    }
                                })
                                .collect(),
                            weight: head.weight,
                            delete_policies: head.delete_policies,
                        };
                        hooks.push((m, hook));
                    }
                }
                None => manifests.push(m),
            }
        }
    }
    sort_by_kind(&mut manifests, opts.helm3);
    hooks.sort_by(|(a, _), (b, _)| kind_order(&a.kind, &b.kind, opts.helm3));
    let crd_len = if opts.include_crds {
        crd_bytes(chart, chart.name.len())
    } else {
        0
    };
    let manifest_len: usize = manifests
        .iter()
        .map(|m| m.path.len() + m.content.len() + 16)
        .sum();
    let mut b = String::with_capacity(crd_len + manifest_len);
    if opts.include_crds {
        write_crds(chart, &chart.name, &mut b);
    }
    for m in &manifests {
        b.push_str("---\n# Source: ");
        b.push_str(&m.path);
        b.push('\n');
        b.push_str(&m.content);
        b.push('\n');
    }
    Ok(Rendered {
        manifest: b,
        hooks: hooks.into_iter().map(|(_, h)| h).collect(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_helm() {
        let docs = split_manifests("\n---\na: 1\n---  \nb: 2\n\n---\n\n");
        assert_eq!(docs, vec!["a: 1\n".to_string(), "b: 2\n\n".to_string()]);
    }

    struct FakeCluster;

    impl Lookup for FakeCluster {
        fn lookup(
            &self,
            api_version: &str,
            kind: &str,
            namespace: &str,
            name: &str,
        ) -> std::result::Result<Value, String> {
            match (api_version, kind, namespace, name) {
                ("v1", "Secret", "ns1", "existing") => {
                    crate::yaml::parse("data:\n  password: c2VjcmV0\n")
                }
                ("v1", "Secret", "ns1", "broken") => Err("the server is unavailable".into()),
                _ => Ok(Value::new_map()),
            }
        }
    }

    fn lookup_chart() -> Chart {
        let file = |name: &str, text: &str| (name.to_string(), text.as_bytes().to_vec());
        crate::chart::from_files(
            vec![
                file("Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n"),
                file(
                    "templates/cm.yaml",
                    "kind: ConfigMap\ndata:\n  found: {{ dig \"data\" \"password\" \"none\" (lookup \"v1\" \"Secret\" .Release.Namespace \"existing\") | quote }}\n  missing: {{ lookup \"v1\" \"Secret\" \"ns1\" \"other\" | len | quote }}\n  revision: {{ .Release.Revision | quote }}\n",
                ),
            ],
            "c",
        )
        .expect("chart")
    }

    #[test]
    fn lookup_goes_through_the_cluster_seam() {
        let opts = RenderOptions {
            namespace: "ns1".into(),
            ..RenderOptions::default()
        };
        let offline = render_release(lookup_chart(), &Value::new_map(), &opts).expect("offline");
        assert!(
            offline.manifest.contains("found: \"none\""),
            "{}",
            offline.manifest
        );
        assert!(offline.manifest.contains("revision: \"1\""));
        let env = ReleaseEnv {
            revision: 4,
            lookup: Some(Rc::new(FakeCluster)),
        };
        let live = render_in(lookup_chart(), &Value::new_map(), &opts, &env).expect("live");
        assert!(
            live.manifest.contains("found: \"c2VjcmV0\""),
            "{}",
            live.manifest
        );
        assert!(live.manifest.contains("missing: \"0\""));
        assert!(live.manifest.contains("revision: \"4\""));
    }

    #[test]
    fn lookup_errors_fail_the_render() {
        let chart = crate::chart::from_files(
            vec![
                (
                    "Chart.yaml".into(),
                    b"apiVersion: v2\nname: c\nversion: 0.1.0\n".to_vec(),
                ),
                (
                    "templates/cm.yaml".into(),
                    b"{{ lookup \"v1\" \"Secret\" \"ns1\" \"broken\" }}".to_vec(),
                ),
            ],
            "c",
        )
        .expect("chart");
        let env = ReleaseEnv {
            revision: 1,
            lookup: Some(Rc::new(FakeCluster)),
        };
        let err = render_in(chart, &Value::new_map(), &RenderOptions::default(), &env)
            .expect_err("lookup error");
        assert!(
            err.to_string()
                .contains("error calling lookup: the server is unavailable"),
            "{err}"
        );
    }

    #[test]
    fn scanned_heads_match_parsed_heads() {
        for doc in [
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: \"s\"\n  annotations:\n    helm.sh/hook: \"pre-install, Post-Upgrade\"\n    helm.sh/hook-weight: \"-3\"\n    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded\n",
            "kind: 'List'\nmetadata:\n  name: yes\n",
            "kind: true\nmetadata:\n  name: 0755\n  annotations:\n    helm.sh/hook-weight: 5\n",
            "kind: \"Conf\\u0069gMap\"\nmetadata:\n  name: a # comment\n",
        ] {
            let raw = crate::head::scan(doc).expect("in the subset");
            let fast = head_from_raw(&raw);
            let full = parse_head_fully(doc, "t").expect("valid");
            assert_eq!(
                (fast.kind, fast.name, fast.hook, fast.weight, fast.delete_policies),
                (full.kind, full.name, full.hook, full.weight, full.delete_policies),
                "{doc}"
            );
        }
    }

    #[test]
    fn template_order() {
        let mut n = vec![
            "a/templates/x".to_string(),
            "a/charts/b/templates/y".to_string(),
            "a/templates/b".to_string(),
        ];
        sort_templates(&mut n);
        assert_eq!(
            n,
            vec!["a/charts/b/templates/y", "a/templates/x", "a/templates/b"]
        );
    }
}
