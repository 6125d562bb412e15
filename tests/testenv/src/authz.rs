//! Authorization for impersonated requests: RBAC (Role, ClusterRole, RoleBinding,
//! ClusterRoleBinding) evaluated over the store, with the API server's 403 wording.
//!
//! The server's own caller (no credentials) is cluster-admin, as a test harness needs. A
//! request carrying `Impersonate-User` (kubectl `--as`, a controller impersonating a service
//! account) is evaluated as that user: allowed only when a binding grants the verb. This is
//! what the real API server does for a caller that may impersonate.

use crate::error::{qualified, ApiError};
use crate::registry::ResourceType;
use crate::store::{ListOptions, Store};
use serde_json::Value;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `system:serviceaccount:<ns>:<name>` or any user name.
    pub name: String,
    /// Groups, including the implicit ones (`system:authenticated`, service-account groups).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The user an `Impersonate-User` / `Impersonate-Group` pair names, with the groups the
    /// API server adds (service accounts: `system:serviceaccounts`,
    /// `system:serviceaccounts:<ns>`; everyone: `system:authenticated`).
    pub fn impersonated(name: &str, groups: &[String]) -> Self {
        let mut all: Vec<String> = groups.to_vec();
        if let Some((namespace, _)) = service_account_of(name) {
            all.push("system:serviceaccounts".to_string());
            all.push(format!("system:serviceaccounts:{namespace}"));
        }
        all.push("system:authenticated".to_string());
        all.dedup();
        UserInfo {
            name: name.to_string(),
            groups: all,
        }
    }
}

/// `(namespace, name)` of a `system:serviceaccount:<ns>:<name>` user.
pub fn service_account_of(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty()).then_some((namespace, name))
}

/// What a resource request wants to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`status`, `scale`), empty for the object itself.
    pub subresource: String,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// Object name, empty for collections and creates.
    pub name: String,
}

impl Attributes {
    fn resource_with_sub(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The verb of an HTTP request on a resource path (Kubernetes' request-info rules).
pub fn verb_of(method: &str, has_name: bool, watch: bool) -> &'static str {
    match (method, has_name) {
        ("GET" | "HEAD", _) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
}

fn matches_any(list: &Value, wanted: &str) -> bool {
    strings(list).any(|item| item == "*" || item == wanted)
}

/// Whether one PolicyRule allows `attrs`.
pub fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    if !matches_any(&rule["verbs"], &attrs.verb) || !matches_any(&rule["apiGroups"], &attrs.group) {
        return false;
    }
    let wanted = attrs.resource_with_sub();
    let resource_ok = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == wanted
            || (attrs.subresource.is_empty() && r == attrs.resource)
            || r.strip_prefix("*/") == Some(attrs.subresource.as_str())
                && !attrs.subresource.is_empty()
            || r.strip_suffix("/*") == Some(attrs.resource.as_str())
                && !attrs.subresource.is_empty()
    });
    if !resource_ok {
        return false;
    }
    let names: Vec<&str> = strings(&rule["resourceNames"]).collect();
    names.is_empty() || (!attrs.name.is_empty() && names.contains(&attrs.name.as_str()))
}

fn subject_matches(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("ServiceAccount") => {
            let namespace = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            service_account_of(&user.name) == Some((namespace, name))
        }
        Some("User") => user.name == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        _ => false,
    }
}

fn objects(store: &Store, resource: &str, namespace: Option<&str>) -> Vec<Value> {
    let Some(rt) = store.registry.find(RBAC_GROUP, "v1", resource).cloned() else {
        return Vec::new();
    };
    store
        .list(&rt, namespace, &ListOptions::default())
        .ok()
        .and_then(|list| list["items"].as_array().cloned())
        .unwrap_or_default()
}

fn role_rules(store: &Store, role_ref: &Value, binding_namespace: Option<&str>) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    let (resource, namespace) = match role_ref["kind"].as_str() {
        Some("ClusterRole") => ("clusterroles", None),
        Some("Role") if binding_namespace.is_some() => ("roles", binding_namespace),
        _ => return Vec::new(),
    };
    let Some(rt) = store.registry.find(RBAC_GROUP, "v1", resource).cloned() else {
        return Vec::new();
    };
    store
        .get(&rt, namespace, name)
        .ok()
        .and_then(|role| role["rules"].as_array().cloned())
        .unwrap_or_default()
}

/// RBAC: allowed when a ClusterRoleBinding, or a RoleBinding in the request's namespace,
/// binds the user (or one of its groups) to a role with a matching rule.
pub fn allowed(store: &Store, user: &UserInfo, attrs: &Attributes) -> bool {
    let grants = |binding: &Value, binding_namespace: Option<&str>| {
        strings_objects(&binding["subjects"])
            .any(|s| subject_matches(s, user, binding_namespace.unwrap_or_default()))
            && role_rules(store, &binding["roleRef"], binding_namespace)
                .iter()
                .any(|rule| rule_allows(rule, attrs))
    };
    if objects(store, "clusterrolebindings", None)
        .iter()
        .any(|b| grants(b, None))
    {
        return true;
    }
    !attrs.namespace.is_empty()
        && objects(store, "rolebindings", Some(&attrs.namespace))
            .iter()
            .any(|b| grants(b, Some(&attrs.namespace)))
}

fn strings_objects(value: &Value) -> impl Iterator<Item = &Value> {
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
}

/// The API server's reason text: `User "u" cannot get resource "secrets" in API group ""
/// in the namespace "ns"` (or `at the cluster scope`).
pub fn denial_reason(user: &UserInfo, attrs: &Attributes) -> String {
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", attrs.namespace)
    };
    format!(
        "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        user.name,
        attrs.verb,
        attrs.resource_with_sub(),
        attrs.group
    )
}

/// The 403 the API server returns for a denied request.
pub fn forbidden(user: &UserInfo, attrs: &Attributes) -> ApiError {
    let resource = qualified(&attrs.group, &attrs.resource);
    let subject = if attrs.name.is_empty() {
        resource
    } else {
        format!("{resource} \"{}\"", attrs.name)
    };
    ApiError::forbidden_object(
        &attrs.group,
        &attrs.resource,
        &attrs.name,
        format!("{subject} is forbidden: {}", denial_reason(user, attrs)),
    )
}

/// The attributes of a resource request on `rt`.
pub fn attributes(
    rt: &ResourceType,
    verb: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    subresource: &str,
) -> Attributes {
    let mut namespace = namespace.unwrap_or_default().to_string();
    // A Namespace is authorized in its own namespace, as the API's request-info does.
    if rt.group.is_empty() && rt.plural == "namespaces" {
        if let Some(name) = name {
            namespace = name.to_string();
        }
    }
    Attributes {
        verb: verb.to_string(),
        group: rt.group.clone(),
        resource: rt.plural.clone(),
        subresource: subresource.to_string(),
        namespace,
        name: name.unwrap_or_default().to_string(),
    }
}

/// Answers a SelfSubjectAccessReview body (`spec.resourceAttributes`) for `user` (`None`:
/// the harness's own admin identity).
pub fn self_subject_access_review(store: &Store, user: Option<&UserInfo>, review: &Value) -> Value {
    let spec = &review["spec"]["resourceAttributes"];
    let text = |key: &str| spec[key].as_str().unwrap_or_default().to_string();
    let attrs = Attributes {
        verb: text("verb"),
        group: text("group"),
        resource: text("resource"),
        subresource: text("subresource"),
        namespace: text("namespace"),
        name: text("name"),
    };
    // The harness's own identity may do anything; an impersonated user only what RBAC grants
    // (non-resource URLs are not modelled, so they are denied to it).
    let allowed = match user {
        None => true,
        Some(user) => spec.is_object() && allowed(store, user, &attrs),
    };
    let mut out = review.clone();
    out["apiVersion"] = "authorization.k8s.io/v1".into();
    out["kind"] = "SelfSubjectAccessReview".into();
    // RBAC gives no reason for a denial (no rule matched), so kubectl prints a bare "no".
    out["status"] = serde_json::json!({ "allowed": allowed });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteOptions;
    use serde_json::json;

    fn seed(store: &mut Store, objects: &[Value]) {
        for obj in objects {
            let api_version = obj["apiVersion"].as_str().unwrap();
            let kind = obj["kind"].as_str().unwrap();
            let rt = store
                .registry
                .find_kind(api_version, kind)
                .cloned()
                .unwrap();
            let ns = obj["metadata"]["namespace"].as_str();
            store
                .create(&rt, ns, obj.clone(), &WriteOptions::default())
                .unwrap();
        }
    }

    fn attrs(verb: &str, group: &str, resource: &str, namespace: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn role_binding_grants_only_its_namespace_and_verbs() {
        let mut store = Store::new();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
        seed(
            &mut store,
            &[
                ns,
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "cm", "namespace": "team"},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "patch"]}]}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "cm", "namespace": "team"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"},
                    "subjects": [{"kind": "ServiceAccount", "name": "deployer"}]}),
            ],
        );
        let sa = UserInfo::impersonated("system:serviceaccount:team:deployer", &[]);
        assert!(sa
            .groups
            .contains(&"system:serviceaccounts:team".to_string()));
        assert!(allowed(
            &store,
            &sa,
            &attrs("get", "", "configmaps", "team")
        ));
        assert!(allowed(
            &store,
            &sa,
            &attrs("patch", "", "configmaps", "team")
        ));
        assert!(!allowed(
            &store,
            &sa,
            &attrs("delete", "", "configmaps", "team")
        ));
        assert!(!allowed(&store, &sa, &attrs("get", "", "secrets", "team")));
        assert!(!allowed(
            &store,
            &sa,
            &attrs("get", "", "configmaps", "default")
        ));
        let other = UserInfo::impersonated("system:serviceaccount:default:deployer", &[]);
        assert!(!allowed(
            &store,
            &other,
            &attrs("get", "", "configmaps", "team")
        ));
        let denied = forbidden(
            &sa,
            &Attributes {
                name: "db".into(),
                ..attrs("get", "", "secrets", "team")
            },
        );
        assert_eq!(denied.code, 403);
        assert_eq!(
            denied.message,
            "secrets \"db\" is forbidden: User \"system:serviceaccount:team:deployer\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team\""
        );
    }

    #[test]
    fn cluster_role_bindings_groups_and_resource_names() {
        let mut store = Store::new();
        seed(
            &mut store,
            &[
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "apps"},
                    "rules": [{"apiGroups": ["apps"], "resources": ["deployments", "deployments/status"], "verbs": ["*"]},
                              {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"], "resourceNames": ["prod"]}]}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "apps"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "apps"},
                    "subjects": [{"kind": "Group", "name": "deployers"}]}),
            ],
        );
        let user = UserInfo::impersonated("jane", &["deployers".to_string()]);
        assert!(allowed(
            &store,
            &user,
            &attrs("create", "apps", "deployments", "x")
        ));
        let status = Attributes {
            subresource: "status".into(),
            ..attrs("patch", "apps", "deployments", "x")
        };
        assert!(allowed(&store, &user, &status));
        let scale = Attributes {
            subresource: "scale".into(),
            ..attrs("patch", "apps", "deployments", "x")
        };
        assert!(!allowed(&store, &user, &scale));
        let get_ns = |name: &str| Attributes {
            name: name.into(),
            ..attrs("get", "", "namespaces", name)
        };
        assert!(allowed(&store, &user, &get_ns("prod")));
        assert!(!allowed(&store, &user, &get_ns("dev")));
        assert!(!allowed(
            &store,
            &UserInfo::impersonated("bob", &[]),
            &attrs("get", "apps", "deployments", "x")
        ));
        assert_eq!(
            denial_reason(&user, &attrs("list", "", "namespaces", "")),
            "User \"jane\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn verbs_follow_request_info() {
        assert_eq!(verb_of("GET", true, false), "get");
        assert_eq!(verb_of("GET", false, false), "list");
        assert_eq!(verb_of("GET", false, true), "watch");
        assert_eq!(verb_of("DELETE", false, false), "deletecollection");
        assert_eq!(verb_of("PATCH", true, false), "patch");
    }
}
