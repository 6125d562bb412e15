//! The `openapi:` field: the schema kustomize's strategic merge patches follow, and the
//! scope (namespaced or cluster-wide) of kinds it declares.
//!
//! kustomize (kyaml) keeps one schema for the whole build. By default it is its built-in
//! Kubernetes v1.21.2 schema: lists of built-in kinds merge by their Kubernetes merge keys
//! (approximated here by kyaml's schema-less key list), and lists of any other kind are
//! replaced by the patch, since kyaml never infers merge keys in patches. `openapi: {path:
//! file}` replaces that schema by the file's definitions (the built-in one is then not
//! loaded at all): `x-kubernetes-patch-strategy` containing `merge` makes a list
//! associative, keyed by `x-kubernetes-list-map-keys` or else
//! `x-kubernetes-patch-merge-key` (none: a merged list of scalars); every other list is
//! replaced. `openapi: {version: v1.21.2}` names the built-in schema.
//!
//! The schema is build-wide state in kustomize (set by the top kustomization, or else by
//! the first kustomization below it that has the field); here it lives in a
//! thread-local for the duration of one build.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

/// The only built-in schema version kustomize v5.8 has.
pub(crate) const BUILTIN_VERSION: &str = "v1.21.2";

/// A custom schema from `openapi: {path: ...}`, indexed.
#[derive(Debug, Default)]
pub(crate) struct OpenApi {
    definitions: Map<String, Value>,
    /// Definition name for each (apiVersion, kind) of `x-kubernetes-group-version-kind`.
    by_type: HashMap<(String, String), String>,
    /// Whether each (apiVersion, kind) with a GET path is namespaced.
    namespaced: HashMap<(String, String), bool>,
}

impl OpenApi {
    /// Reads a swagger document (JSON or YAML) as kyaml indexes it.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let doc = crate::yaml::parse_documents(text)?
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        let mut api = Self::default();
        if let Some(Value::Object(definitions)) = doc.get("definitions") {
            for (name, definition) in definitions {
                let gvks = definition
                    .get("x-kubernetes-group-version-kind")
                    .and_then(Value::as_array);
                for gvk in gvks.into_iter().flatten() {
                    if let Some(type_meta) = type_meta(gvk) {
                        api.by_type.insert(type_meta, name.clone());
                    }
                }
            }
            api.definitions.clone_from(definitions);
        }
        if let Some(Value::Object(paths)) = doc.get("paths") {
            for (path, info) in paths {
                let Some(type_meta) = info
                    .get("get")
                    .and_then(|g| g.get("x-kubernetes-group-version-kind"))
                    .and_then(type_meta)
                else {
                    continue;
                };
                if path.contains("namespaces/{namespace}") {
                    api.namespaced.insert(type_meta, true);
                } else {
                    api.namespaced.entry(type_meta).or_insert(false);
                }
            }
        }
        Ok(api)
    }

    /// Follows `$ref`s (`#/definitions/<name>`) to the schema they name.
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> Option<&'a Value> {
        for _ in 0..64 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                return Some(schema);
            };
            let name = reference.strip_prefix("#/definitions/")?;
            schema = self.definitions.get(name)?;
        }
        None
    }

    /// Whether the schema declares the kind namespaced (None: it does not say).
    pub(crate) fn is_namespaced(&self, api_version: &str, kind: &str) -> Option<bool> {
        self.namespaced
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
    }
}

/// `{group, version, kind}` as an (apiVersion, kind) pair.
fn type_meta(gvk: &Value) -> Option<(String, String)> {
    let version = gvk.get("version").and_then(Value::as_str)?;
    let kind = gvk.get("kind").and_then(Value::as_str)?;
    let api_version = match gvk.get("group").and_then(Value::as_str) {
        Some(group) if !group.is_empty() => format!("{group}/{version}"),
        _ => version.to_string(),
    };
    Some((api_version, kind.to_string()))
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<OpenApi>>> = const { RefCell::new(None) };
}

/// The custom schema of the build running on this thread, if any.
pub(crate) fn current() -> Option<Arc<OpenApi>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether the build's custom schema declares this kind cluster-scoped.
pub(crate) fn declares_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    CURRENT.with(|c| {
        c.borrow().as_ref().is_some_and(|api| {
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            api.is_namespaced(&api_version, kind) == Some(false)
        })
    })
}

/// Sets the custom schema for the rest of the build (None: the built-in one).
pub(crate) fn set(schema: Option<Arc<OpenApi>>) {
    CURRENT.with(|c| *c.borrow_mut() = schema);
}

/// Starts a build with the built-in schema; the previous one comes back on drop (a
/// build may run inside another, e.g. for a directory of plugin configurations).
pub(crate) struct BuildScope {
    previous: Option<Arc<OpenApi>>,
}

impl BuildScope {
    pub(crate) fn enter() -> Self {
        let previous = CURRENT.with(|c| c.borrow_mut().take());
        Self { previous }
    }
}

impl Drop for BuildScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// What a strategic merge knows about the node it merges.
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    /// Inside a kind of the built-in schema: lists of maps merge by kyaml's
    /// schema-less merge keys (name, mountPath, containerPort, ...).
    Builtin,
    /// No schema: lists are replaced.
    Unknown,
    /// A node of the custom schema.
    Custom(&'a OpenApi, &'a Value),
}

/// How a list is merged.
pub(crate) enum ListRule {
    /// Replaced by the patch's list.
    Replace,
    /// kyaml's schema-less merge keys.
    Infer,
    /// Maps merged by these keys (several: `x-kubernetes-list-map-keys`).
    Keys(Vec<String>),
    /// Scalars merged as a set: the patch's first, then the others.
    Scalars,
}

impl<'a> Node<'a> {
    /// The node for a whole resource of this type under `schema` (the custom schema, or
    /// None for the built-in one).
    pub(crate) fn for_resource(schema: Option<&'a OpenApi>, api_version: &str, kind: &str) -> Self {
        match schema {
            Some(api) => api
                .by_type
                .get(&(api_version.to_string(), kind.to_string()))
                .and_then(|name| api.definitions.get(name))
                .and_then(|s| api.resolve(s))
                .map_or(Node::Unknown, |s| Node::Custom(api, s)),
            None if is_builtin_kind(api_version, kind) => Node::Builtin,
            None => Node::Unknown,
        }
    }

    /// The node of a map field (its property, or the map's value schema).
    pub(crate) fn field(self, key: &str) -> Self {
        match self {
            Node::Custom(api, schema) => schema
                .get("properties")
                .and_then(|p| p.get(key))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
                .and_then(|s| api.resolve(s))
                .map_or(Node::Unknown, |s| Node::Custom(api, s)),
            other => other,
        }
    }

    /// The node of a list's elements: kyaml only looks at `items` of a schema whose
    /// type is exactly `array`.
    pub(crate) fn elements(self) -> Self {
        match self {
            Node::Custom(api, schema) => {
                let is_array = match schema.get("type") {
                    Some(Value::String(t)) => t == "array",
                    Some(Value::Array(types)) => {
                        types.len() == 1 && types[0].as_str() == Some("array")
                    }
                    _ => false,
                };
                schema
                    .get("items")
                    .filter(|items| is_array && items.is_object())
                    .and_then(|s| api.resolve(s))
                    .map_or(Node::Unknown, |s| Node::Custom(api, s))
            }
            other => other,
        }
    }

    /// How the list at this node merges.
    pub(crate) fn list_rule(self) -> ListRule {
        match self {
            Node::Builtin => ListRule::Infer,
            Node::Unknown => ListRule::Replace,
            Node::Custom(_, schema) => {
                let Some(strategy) = schema
                    .get("x-kubernetes-patch-strategy")
                    .and_then(Value::as_str)
                else {
                    return ListRule::Replace;
                };
                if !strategy.split(',').any(|s| s == "merge") {
                    return ListRule::Replace;
                }
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                if let Some(keys) = schema.get("x-kubernetes-list-map-keys") {
                    return ListRule::Keys(strings(keys));
                }
                match schema
                    .get("x-kubernetes-patch-merge-key")
                    .and_then(Value::as_str)
                {
                    Some(key) => ListRule::Keys(vec![key.to_string()]),
                    None => ListRule::Scalars,
                }
            }
        }
    }
}

/// Kinds of kustomize's built-in schema (Kubernetes v1.21.2 plus the few it added), by
/// exact apiVersion.
fn is_builtin_kind(api_version: &str, kind: &str) -> bool {
    BUILTIN_KINDS
        .iter()
        .any(|(a, k)| *k == kind && *a == api_version)
}

const BUILTIN_KINDS: &[(&str, &str)] = &[
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
    ("apps/v1", "ControllerRevision"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("autoscaling/v1", "HorizontalPodAutoscaler"),
    ("autoscaling/v1", "Scale"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
    ("batch/v1beta1", "CronJob"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
    ("coordination.k8s.io/v1", "Lease"),
    ("coordination.k8s.io/v1beta1", "Lease"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"),
    ("events.k8s.io/v1", "Event"),
    ("events.k8s.io/v1beta1", "Event"),
    ("extensions/v1beta1", "Ingress"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
    ),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1beta1", "Ingress"),
    ("networking.k8s.io/v1beta1", "IngressClass"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("node.k8s.io/v1beta1", "RuntimeClass"),
    ("policy/v1", "PodDisruptionBudget"),
    ("policy/v1beta1", "PodDisruptionBudget"),
    ("policy/v1beta1", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "Role"),
    ("rbac.authorization.k8s.io/v1beta1", "RoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
    ("storage.k8s.io/v1", "CSINode"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "VolumeAttachment"),
    ("storage.k8s.io/v1beta1", "CSIDriver"),
    ("storage.k8s.io/v1beta1", "CSINode"),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity"),
    ("storage.k8s.io/v1beta1", "StorageClass"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment"),
    ("v1", "ComponentStatus"),
    ("v1", "ConfigMap"),
    ("v1", "Endpoints"),
    ("v1", "Event"),
    ("v1", "LimitRange"),
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "NodeProxyOptions"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    ("v1", "PodAttachOptions"),
    ("v1", "PodExecOptions"),
    ("v1", "PodPortForwardOptions"),
    ("v1", "PodProxyOptions"),
    ("v1", "PodTemplate"),
    ("v1", "ReplicationController"),
    ("v1", "ResourceQuota"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "ServiceProxyOptions"),
];

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r##"{
      "definitions": {
        "w.Widget": {
          "properties": {"spec": {"$ref": "#/definitions/w.Spec"}},
          "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Widget", "version": "v1"}]
        },
        "w.Spec": {"properties": {
          "items": {"type": "array", "items": {"$ref": "#/definitions/w.Item"},
                    "x-kubernetes-patch-merge-key": "id", "x-kubernetes-patch-strategy": "merge"},
          "ports": {"type": "array", "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "x-kubernetes-patch-merge-key": "port", "x-kubernetes-patch-strategy": "merge"},
          "mapOnly": {"type": "array", "x-kubernetes-list-map-keys": ["k"]},
          "tags": {"type": "array", "x-kubernetes-patch-strategy": "merge"}
        }},
        "w.Item": {"properties": {"id": {"type": "string"}}}
      },
      "paths": {
        "/apis/example.com/v1/gadgets/{name}": {"get": {"x-kubernetes-group-version-kind":
          {"group": "example.com", "kind": "Gadget", "version": "v1"}}},
        "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}": {"get": {"x-kubernetes-group-version-kind":
          {"group": "example.com", "kind": "Widget", "version": "v1"}}}
      }
    }"##;

    fn keys(rule: &ListRule) -> Option<Vec<String>> {
        match rule {
            ListRule::Keys(k) => Some(k.clone()),
            _ => None,
        }
    }

    #[test]
    fn reads_merge_keys_list_map_keys_and_strategies() {
        let api = OpenApi::parse(SCHEMA).unwrap();
        let spec = Node::for_resource(Some(&api), "example.com/v1", "Widget").field("spec");
        assert_eq!(
            keys(&spec.field("items").list_rule()),
            Some(vec!["id".to_string()])
        );
        assert_eq!(
            keys(&spec.field("ports").list_rule()),
            Some(vec!["port".to_string(), "protocol".to_string()])
        );
        assert!(matches!(
            spec.field("mapOnly").list_rule(),
            ListRule::Replace
        ));
        assert!(matches!(spec.field("tags").list_rule(), ListRule::Scalars));
        assert!(matches!(spec.field("other").list_rule(), ListRule::Replace));
        assert!(matches!(
            spec.field("items").elements().field("id"),
            Node::Custom(..)
        ));
        // Kinds the custom schema lacks have no schema at all, built-in ones included.
        assert!(matches!(
            Node::for_resource(Some(&api), "apps/v1", "Deployment").list_rule(),
            ListRule::Replace
        ));
    }

    #[test]
    fn default_schema_knows_builtin_kinds_only() {
        assert!(matches!(
            Node::for_resource(None, "apps/v1", "Deployment"),
            Node::Builtin
        ));
        assert!(matches!(
            Node::for_resource(None, "example.com/v1", "Widget"),
            Node::Unknown
        ));
    }

    #[test]
    fn scope_comes_from_get_paths() {
        let api = OpenApi::parse(SCHEMA).unwrap();
        assert_eq!(api.is_namespaced("example.com/v1", "Gadget"), Some(false));
        assert_eq!(api.is_namespaced("example.com/v1", "Widget"), Some(true));
        assert_eq!(api.is_namespaced("example.com/v1", "Other"), None);
    }
}
