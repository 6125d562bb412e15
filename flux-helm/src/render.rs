//! `helm template`: values, template execution, manifest sorting and output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use crate::chart::Chart;
use crate::error::{Error, Result};
use crate::funcs::FuncError;
use crate::template::exec::{Context, Exec, ExecError, Templates, WARN_END, WARN_START};
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

fn kind_rank(kind: &str) -> Option<usize> {
    INSTALL_ORDER.iter().position(|k| *k == kind)
}

fn sort_by_kind(items: &mut [Manifest]) {
    items.sort_by(|a, b| match (kind_rank(&a.kind), kind_rank(&b.kind)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.kind.cmp(&b.kind),
    });
}

/// Renders a loaded chart with user values; returns `helm template`'s stdout.
pub fn render(mut chart: Chart, user: &Value, opts: &RenderOptions) -> Result<String> {
    if chart.is_library() {
        return Err(Error::Render("library charts are not installable".into()));
    }
    crate::values::process_dependencies(&mut chart, user)?;
    let values = crate::values::coalesce_values(&chart, user);
    if !opts.skip_schema_validation {
        crate::schema::validate_chart(&chart, &values)?;
    }
    let files = render_files(&chart, &values, opts)?;
    assemble(&chart, files, opts)
}

fn capabilities(opts: &RenderOptions) -> Value {
    let version = opts
        .kube_version
        .clone()
        .unwrap_or_else(|| "v1.37.0".into());
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
            DEFAULT_API_VERSIONS
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
        )),
    );
    let mut helm = BTreeMap::new();
    helm.insert("Version".to_string(), Value::str("v4.3.1"));
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
) -> Result<BTreeMap<String, String>> {
    let mut release = BTreeMap::new();
    release.insert("Name".to_string(), Value::str(&opts.release_name));
    release.insert("Namespace".to_string(), Value::str(&opts.namespace));
    release.insert("IsUpgrade".to_string(), Value::Bool(opts.is_upgrade));
    release.insert("IsInstall".to_string(), Value::Bool(!opts.is_upgrade));
    release.insert("Revision".to_string(), Value::Int(1));
    release.insert("Service".to_string(), Value::str("Helm"));
    let release = Value::from_map(release);
    let caps = capabilities(opts);
    let mut renderables = BTreeMap::new();
    collect_templates(
        chart,
        values,
        &chart.name,
        true,
        &release,
        &caps,
        &mut renderables,
    );
    let mut names: Vec<String> = renderables.keys().cloned().collect();
    sort_templates(&mut names);
    let mut templates = Templates::default();
    for name in &names {
        let r = &renderables[name];
        let parsed = parse::parse(name, &r.source)
            .map_err(|e| Error::Render(parse_error_message(name, &e)))?;
        templates.add(parsed);
    }
    let ctx = Context {
        rng: std::cell::Cell::new(opts.seed.max(1)),
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
            Error::Render(format!(
                "{}\n\nUse --debug flag to render out invalid YAML",
                helm4_error(&e)
            ))
        })?;
        rendered.insert(name.clone(), out.replace("<no value>", ""));
    }
    Ok(rendered)
}

fn parse_error_message(name: &str, e: &parse::ParseError) -> String {
    format!("parse error at ({name}:{}): {}", e.line, e.message)
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
    let parsed = parse::parse("gotpl", text).map_err(|e| {
        FuncError::Msg(format!(
            "cannot parse template {}: {e}",
            crate::funcs::go_quote(text)
        ))
    })?;
    let mut layer = std::collections::HashMap::new();
    for (name, tree) in parsed.defines {
        layer.insert(name, Rc::new(tree));
    }
    exec.overlay.push(layer);
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

struct Head {
    kind: String,
    hook: Option<String>,
}

fn parse_head(doc: &str, path: &str) -> Result<Head> {
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
    Ok(Head { kind, hook })
}

fn crd_objects(chart: &Chart, full_path: &str, out: &mut Vec<(String, String)>) {
    for (name, data) in chart.crd_files() {
        out.push((
            format!("{full_path}/{name}"),
            String::from_utf8_lossy(&data).into_owned(),
        ));
    }
    for sub in &chart.subcharts {
        crd_objects(sub, &format!("{full_path}/charts/{}", sub.name), out);
    }
}

fn assemble(
    chart: &Chart,
    files: BTreeMap<String, String>,
    opts: &RenderOptions,
) -> Result<String> {
    let mut manifests = Vec::new();
    let mut hooks = Vec::new();
    for (path, content) in files {
        if path.ends_with("NOTES.txt") {
            continue;
        }
        let base = path.rsplit('/').next().unwrap_or(&path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(&content) {
            let head = parse_head(&doc, &path)?;
            let m = Manifest {
                path: path.clone(),
                content: doc,
                kind: head.kind,
            };
            match head.hook {
                Some(h) => {
                    let known = h
                        .split(',')
                        .all(|e| HOOK_EVENTS.contains(&e.trim().to_lowercase().as_str()));
                    if known {
                        hooks.push(m);
                    }
                }
                None => manifests.push(m),
            }
        }
    }
    sort_by_kind(&mut manifests);
    sort_by_kind(&mut hooks);
    let mut b = String::new();
    if opts.include_crds {
        let mut crds = Vec::new();
        crd_objects(chart, &chart.name, &mut crds);
        for (name, data) in crds {
            b.push_str(&format!("---\n# Source: {name}\n{data}\n"));
        }
    }
    for m in &manifests {
        b.push_str(&format!("---\n# Source: {}\n{}\n", m.path, m.content));
    }
    let mut out = String::new();
    out.push_str(b.trim());
    out.push('\n');
    for h in &hooks {
        out.push_str(&format!("---\n# Source: {}\n{}\n", h.path, h.content));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_helm() {
        let docs = split_manifests("\n---\na: 1\n---  \nb: 2\n\n---\n\n");
        assert_eq!(docs, vec!["a: 1\n".to_string(), "b: 2\n\n".to_string()]);
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
