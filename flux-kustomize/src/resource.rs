//! Resources, their ids, and the ordered list a build returns.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use crate::yaml;

/// Group, version and kind of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    /// Splits an `apiVersion` into group and version.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Self {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// Whether kustomize's built-in schema (Kubernetes 1.21 plus a few later kinds), or
    /// else the build's `openapi:` schema, knows this apiVersion and kind as
    /// cluster-scoped. Unknown kinds are namespaced.
    pub fn is_cluster_scoped(&self) -> bool {
        let matches_api_version = |a: &str| {
            if self.group.is_empty() {
                a == self.version
            } else {
                a.strip_prefix(self.group.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    == Some(self.version.as_str())
            }
        };
        if CLUSTER_SCOPED
            .iter()
            .any(|(a, k)| *k == self.kind && matches_api_version(a))
        {
            return true;
        }
        // Kinds kustomize does not know take their scope from an `openapi:` schema.
        crate::openapi::declares_cluster_scoped(&self.group, &self.version, &self.kind)
    }

    /// kustomize's legacy order: selected kinds first and last, the rest by
    /// `group_version_kind`.
    pub fn legacy_cmp(&self, other: &Self) -> Ordering {
        let a = type_order(&self.kind);
        let b = type_order(&other.kind);
        if a != b {
            return a.cmp(&b);
        }
        self.stable_sort_string().cmp(&other.stable_sort_string())
    }

    /// `group_version_kind` with kustomize's placeholders for empty parts.
    pub(crate) fn legacy_cmp_string(&self) -> String {
        self.stable_sort_string()
    }

    fn stable_sort_string(&self) -> String {
        let or = |s: &str, d: &str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        format!(
            "{}_{}_{}",
            or(&self.group, "~G"),
            or(&self.version, "~V"),
            or(&self.kind, "~K")
        )
    }
}

/// The cluster-scoped (apiVersion, kind) pairs of kustomize's built-in schema.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("apiregistration.k8s.io/v1beta1", "APIService"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
    ),
    ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1beta1", "IngressClass"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("node.k8s.io/v1beta1", "RuntimeClass"),
    ("policy/v1beta1", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
    ("storage.k8s.io/v1", "CSINode"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "VolumeAttachment"),
    ("storage.k8s.io/v1beta1", "CSIDriver"),
    ("storage.k8s.io/v1beta1", "CSINode"),
    ("storage.k8s.io/v1beta1", "StorageClass"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment"),
    ("v1", "ComponentStatus"),
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "NodeProxyOptions"),
    ("v1", "PersistentVolume"),
];

const ORDER_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The legacy sort rank of a kind.
pub(crate) fn legacy_rank(kind: &str) -> i64 {
    type_order(kind)
}

fn type_order(kind: &str) -> i64 {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i as i64 - ORDER_FIRST.len() as i64;
    }
    if let Some(i) = ORDER_LAST.iter().position(|k| *k == kind) {
        return 1 + i as i64;
    }
    0
}

/// A resource id: gvk, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResId {
    pub gvk: Gvk,
    pub namespace: String,
    pub name: String,
}

impl ResId {
    /// The namespace used for equality: empty means `default` for namespaced kinds.
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            ""
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// The key two resources collide on.
    pub fn key(&self) -> (Gvk, String, String) {
        (
            self.gvk.clone(),
            self.effective_namespace().to_string(),
            self.name.clone(),
        )
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}.{}.{}/{}.{}",
            or(&self.gvk.kind, "[noKind]"),
            or(&self.gvk.version, "[noVer]"),
            or(&self.gvk.group, "[noGrp]"),
            self.name,
            or(&self.namespace, "[noNs]")
        )
    }
}

/// One Kubernetes object of a build, with the history kustomize tracks for it.
#[derive(Debug, Clone)]
pub struct Resource {
    value: Value,
    /// Earlier (namespace, name) pairs, oldest first, for name references.
    pub(crate) previous: Vec<(String, String)>,
    /// Generated ConfigMap/Secret that gets a content hash suffix at the end of the build.
    pub(crate) needs_hash: bool,
    /// Generator behavior (create, merge, replace) for generated objects.
    pub(crate) behavior: Option<String>,
    /// Where the resource came from, for `buildMetadata: [originAnnotations]`.
    pub(crate) origin: Option<Origin>,
    /// Transformers run over the resource while origins were tracked, in order.
    pub(crate) transformations: Vec<std::sync::Arc<Origin>>,
}

/// Where a resource, or a transformation applied to it, came from (kustomize's
/// `Origin`), for `buildMetadata`: the file a resource was read from, or the file
/// configuring the generator or transformer (`configuredIn`) and that plugin's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub path: Option<std::path::PathBuf>,
    pub configured_in: Option<std::path::PathBuf>,
    pub configured_by: Option<PluginId>,
}

/// `configuredBy`: the apiVersion, kind, name and namespace of a plugin configuration
/// (`builtin` and the plugin kind for kustomization fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PluginId {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl Origin {
    /// A resource read from `path`.
    pub fn file(path: &std::path::Path) -> Self {
        Self {
            path: Some(path.to_path_buf()),
            configured_in: None,
            configured_by: None,
        }
    }

    /// A builtin generator or transformer configured by a field of `kustomization`.
    pub fn builtin(kustomization: &std::path::Path, kind: &str) -> Self {
        Self {
            path: None,
            configured_in: Some(kustomization.to_path_buf()),
            configured_by: Some(PluginId {
                api_version: "builtin".into(),
                kind: kind.into(),
                name: String::new(),
                namespace: String::new(),
            }),
        }
    }

    /// A plugin configured by the object `config`, read from `file`.
    pub fn plugin(config: &Value, file: &std::path::Path) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let meta = config.get("metadata");
        Self {
            path: None,
            configured_in: Some(file.to_path_buf()),
            configured_by: Some(PluginId {
                api_version: text(config.get("apiVersion")),
                kind: text(config.get("kind")),
                name: text(meta.and_then(|m| m.get("name"))),
                namespace: text(meta.and_then(|m| m.get("namespace"))),
            }),
        }
    }

    /// The YAML kustomize writes for it (kyaml, fields in the struct's order), paths
    /// relative to the build's top directory `top`. Every line after the first is
    /// indented by `indent`.
    pub fn to_yaml(&self, top: &std::path::Path, indent: &str) -> String {
        let mut lines: Vec<String> = Vec::new();
        let scalar = |s: &str| {
            yaml::to_yaml(&Value::String(s.to_string()))
                .trim_end()
                .to_string()
        };
        if let Some(path) = &self.path {
            lines.push(format!("path: {}", scalar(&relative_path(top, path))));
        }
        if let Some(file) = &self.configured_in {
            lines.push(format!(
                "configuredIn: {}",
                scalar(&relative_path(top, file))
            ));
        }
        if let Some(by) = &self.configured_by {
            lines.push("configuredBy:".into());
            for (key, value) in [
                ("apiVersion", &by.api_version),
                ("kind", &by.kind),
                ("name", &by.name),
                ("namespace", &by.namespace),
            ] {
                if !value.is_empty() {
                    lines.push(format!("  {key}: {}", scalar(value)));
                }
            }
        }
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                out.push_str(indent);
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// `to` relative to the directory `from` (both absolute and clean), with `..` steps.
fn relative_path(from: &std::path::Path, to: &std::path::Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> =
        std::iter::repeat_n("..".to_string(), from.len() - common).collect();
    parts.extend(
        to_parts[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    parts.join("/")
}

impl Resource {
    /// Wraps a parsed object.
    pub fn new(value: Value) -> Self {
        Self {
            value,
            previous: Vec::new(),
            needs_hash: false,
            behavior: None,
            origin: None,
            transformations: Vec::new(),
        }
    }

    /// Records a transformer run over this resource; a resource with no origin yet takes
    /// the transformer's as its origin, as kustomize does.
    pub(crate) fn record_transformation(&mut self, origin: &std::sync::Arc<Origin>) {
        if self.origin.is_none() {
            self.origin = Some(Origin::clone(origin));
        } else {
            self.transformations.push(std::sync::Arc::clone(origin));
        }
    }

    fn meta_str(&self, key: &str) -> &str {
        self.value
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.meta_str("name")
    }

    /// `metadata.namespace` (empty when unset).
    pub fn namespace(&self) -> &str {
        self.meta_str("namespace")
    }

    /// Group, version and kind.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.api_version(), self.kind())
    }

    /// The current id.
    pub fn id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            namespace: self.namespace().to_string(),
            name: self.name().to_string(),
        }
    }

    /// The id the resource had when it was first loaded or generated.
    pub fn original_id(&self) -> ResId {
        let mut id = self.id();
        if let Some((ns, name)) = self.previous.first() {
            id.namespace.clone_from(ns);
            id.name.clone_from(name);
        }
        id
    }

    /// The object tree.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Mutable access to the object tree.
    pub fn value_mut(&mut self) -> &mut Value {
        &mut self.value
    }

    /// Consumes the resource, returning its tree.
    pub fn into_value(self) -> Value {
        self.value
    }

    /// `metadata` as a map, created when missing.
    pub(crate) fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let obj = self.value.as_object_mut().expect("resources are objects");
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        meta.as_object_mut().expect("just made an object")
    }

    /// Remembers the current id before a rename.
    pub(crate) fn store_previous(&mut self) {
        let pair = (self.namespace().to_string(), self.name().to_string());
        if self.previous.last() != Some(&pair) {
            self.previous.push(pair);
        }
    }

    /// Sets `metadata.name`, remembering the old one.
    pub(crate) fn set_name(&mut self, name: &str) {
        self.store_previous();
        self.metadata_mut()
            .insert("name".into(), Value::String(name.to_string()));
    }

    /// Every name this resource has had, current included.
    pub(crate) fn all_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.previous
            .iter()
            .map(|(ns, n)| (ns.as_str(), n.as_str()))
            .chain(std::iter::once((self.namespace(), self.name())))
    }

    /// Labels as string pairs.
    pub fn labels(&self) -> Option<&Map<String, Value>> {
        self.value
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
    }

    /// Annotations as string pairs.
    pub fn annotations(&self) -> Option<&Map<String, Value>> {
        self.value
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
    }
}

/// The ordered result of a build.
#[derive(Debug, Clone, Default)]
pub struct ResourceList {
    resources: Vec<Resource>,
}

impl ResourceList {
    /// Wraps resources in their output order.
    pub fn new(resources: Vec<Resource>) -> Self {
        Self { resources }
    }

    /// The resources, in output order.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// Mutable access to the resources.
    pub fn resources_mut(&mut self) -> &mut Vec<Resource> {
        &mut self.resources
    }

    /// Consumes the list.
    pub fn into_resources(self) -> Vec<Resource> {
        self.resources
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// Whether there are no resources.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Iterates over the resources.
    pub fn iter(&self) -> std::slice::Iter<'_, Resource> {
        self.resources.iter()
    }

    /// Multi-document YAML, byte for byte as `kustomize build` prints it.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.resources.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&yaml::to_yaml(&r.value));
        }
        out
    }
}

impl<'a> IntoIterator for &'a ResourceList {
    type Item = &'a Resource;
    type IntoIter = std::slice::Iter<'a, Resource>;
    fn into_iter(self) -> Self::IntoIter {
        self.resources.iter()
    }
}
