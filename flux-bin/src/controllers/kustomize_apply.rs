//! Server-side apply as kustomize-controller does it: Flux's stages (cluster definitions,
//! class definitions, everything else) and kind order, field manager `kustomize-controller`
//! with forced ownership, the `kustomize.toolkit.fluxcd.io/*` exclusions, recreate on
//! immutable-field errors, the inventory in Flux's id format, and prune.
//!
//! Ordering, ids, exclusions and stale-object computation are pure; [`Applier`] does the API
//! calls with kube's dynamic API.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use flux_api::constants::{annotation, label};
use flux_api::meta::{ResourceInventory, ResourceRef};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PropagationPolicy,
};
use kube::discovery::{ApiCapabilities, Scope};
use kube::Api;
use serde_json::{Map, Value};

/// Field manager of every apply.
pub const FIELD_MANAGER: &str = "kustomize-controller";

/// Kind order inside one stage (then every other kind, then webhooks last).
const KIND_ORDER: [&str; 23] = [
    "CustomResourceDefinition",
    "Namespace",
    "ClusterRole",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ClusterRoleBinding",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const LAST_KINDS: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The identity of an object as Flux writes it in inventories and messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// API group (empty for core).
    pub group: String,
    /// API version (without group).
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectId {
    /// The id of a manifest.
    pub fn of(object: &Value) -> ObjectId {
        let api_version = str_at(object, &["apiVersion"]);
        let (group, version) = match api_version.rsplit_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        ObjectId {
            group,
            version,
            kind: str_at(object, &["kind"]).to_string(),
            namespace: str_at(object, &["metadata", "namespace"]).to_string(),
            name: str_at(object, &["metadata", "name"]).to_string(),
        }
    }

    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Inventory id `<namespace>_<name>_<group>_<kind>` (`:` in names encoded as `__`).
    pub fn inventory_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace,
            self.name.replace(':', "__"),
            self.group,
            self.kind
        )
    }

    /// Parses an inventory entry back.
    pub fn from_inventory(entry: &ResourceRef) -> Option<ObjectId> {
        let mut parts = entry.id.rsplitn(3, '_');
        let kind = parts.next()?.to_string();
        let group = parts.next()?.to_string();
        let rest = parts.next()?;
        let (namespace, name) = rest.split_once('_')?;
        Some(ObjectId {
            group,
            version: entry.v.clone(),
            kind,
            namespace: namespace.to_string(),
            name: name.replace("__", ":"),
        })
    }

    /// `Kind/namespace/name`, or `Kind/name` when cluster-scoped.
    pub fn display(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The apply stage of a kind: 0 cluster definitions, 1 classes, 2 everything else.
pub fn stage_of(id: &ObjectId) -> u8 {
    match (id.group.as_str(), id.kind.as_str()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition")
        | ("", "Namespace")
        | ("rbac.authorization.k8s.io", "ClusterRole") => 0,
        (_, kind) if kind.ends_with("Class") => 1,
        _ => 2,
    }
}

fn kind_rank(kind: &str) -> usize {
    if let Some(i) = KIND_ORDER.iter().position(|k| *k == kind) {
        i
    } else if let Some(i) = LAST_KINDS.iter().position(|k| *k == kind) {
        KIND_ORDER.len() + 1 + i
    } else {
        KIND_ORDER.len()
    }
}

/// Sorts manifests in Flux's apply order (stage, kind order, group, kind, namespace, name).
pub fn sort_for_apply(objects: &mut [Value]) {
    objects.sort_by_cached_key(|o| {
        let id = ObjectId::of(o);
        (
            stage_of(&id),
            kind_rank(&id.kind),
            id.group.clone(),
            id.kind.clone(),
            id.namespace.clone(),
            id.name.clone(),
        )
    });
}

fn metadata_value<'a>(object: &'a Value, field: &str, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.get(key)?.as_str()
}

fn has_meta(object: &Value, key: &str, value: &str) -> bool {
    ["annotations", "labels"]
        .iter()
        .any(|field| metadata_value(object, field, key) == Some(value))
}

/// Objects (desired or live) Flux never touches: `reconcile: disabled` or `ssa: Ignore`.
pub fn is_excluded(object: &Value) -> bool {
    has_meta(object, annotation::KUSTOMIZE_RECONCILE, "disabled")
        || has_meta(object, annotation::KUSTOMIZE_SSA, "Ignore")
}

/// Objects kept on prune: excluded ones and `prune: disabled`.
pub fn is_prune_protected(object: &Value) -> bool {
    is_excluded(object) || has_meta(object, annotation::KUSTOMIZE_PRUNE, "disabled")
}

/// Whether the live object carries this Kustomization's owner labels.
pub fn is_owned_by(object: &Value, name: &str, namespace: &str) -> bool {
    metadata_value(object, "labels", label::KUSTOMIZE_NAME) == Some(name)
        && metadata_value(object, "labels", label::KUSTOMIZE_NAMESPACE) == Some(namespace)
}

/// Whether an apply error is Flux's "immutable field" case.
pub fn is_immutable_error(code: u16, reason: &str, message: &str) -> bool {
    (code == 422 || code == 409 || reason == "Invalid" || reason == "Conflict")
        && (message.contains("immutable") || message.contains("Forbidden: updates to"))
}

/// Folds Secret `stringData` into `data` and drops `status` / `creationTimestamp`, as
/// Flux's normalisation does before apply.
pub fn normalize(object: &mut Value) {
    let is_crd = str_at(object, &["kind"]) == "CustomResourceDefinition";
    let Some(map) = object.as_object_mut() else {
        return;
    };
    if !is_crd {
        map.remove("status");
    }
    if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
        metadata.remove("creationTimestamp");
    }
    if map.get("kind").and_then(Value::as_str) == Some("Secret")
        && map.get("apiVersion").and_then(Value::as_str) == Some("v1")
    {
        if let Some(Value::Object(string_data)) = map.remove("stringData") {
            let data = map
                .entry("data")
                .or_insert_with(|| Value::Object(Map::new()));
            if !data.is_object() {
                *data = Value::Object(Map::new());
            }
            if let Value::Object(data) = data {
                for (key, value) in string_data {
                    let text = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    data.insert(
                        key,
                        Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
            }
        }
    }
}

/// One change-set entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The object.
    pub id: ObjectId,
    /// `created`, `configured`, `unchanged`, `deleted`, `skipped`.
    pub action: &'static str,
}

impl Change {
    /// `Kind/ns/name action`.
    pub fn line(&self) -> String {
        format!("{} {}", self.id.display(), self.action)
    }
}

/// The inventory of a change set (change-set order, skipped objects included).
pub fn inventory_of(changes: &[Change]) -> ResourceInventory {
    ResourceInventory {
        entries: changes
            .iter()
            .map(|c| ResourceRef {
                id: c.id.inventory_id(),
                v: c.id.version.clone(),
            })
            .collect(),
    }
}

/// Entries of `old` missing from `new` (by id, ignoring the version), in reverse apply order.
pub fn stale_entries(old: &ResourceInventory, new: &ResourceInventory) -> Vec<ObjectId> {
    let keep: BTreeSet<&str> = new.entries.iter().map(|e| e.id.as_str()).collect();
    old.entries
        .iter()
        .rev()
        .filter(|e| !keep.contains(e.id.as_str()))
        .filter_map(ObjectId::from_inventory)
        .collect()
}

/// An apply failure with Flux's wording.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The API does not serve this kind.
    #[error("{id} {message}")]
    Unknown {
        /// `Kind/ns/name`.
        id: String,
        /// Why.
        message: String,
    },
    /// Dry-run/apply rejected.
    #[error("{id} dry-run failed ({reason}): {message}")]
    Rejected {
        /// `Kind/ns/name`.
        id: String,
        /// API reason.
        reason: String,
        /// API message.
        message: String,
    },
    /// Another API failure.
    #[error("{id} {action} failed: {source}")]
    Api {
        /// `Kind/ns/name`.
        id: String,
        /// What was done.
        action: &'static str,
        /// The error.
        source: kube::Error,
    },
}

/// Server-side applies in flight at once within a run of one kind.
pub const APPLY_CONCURRENCY: usize = 8;

/// Dynamic API access with a discovery cache shared by reconciles.
pub struct Applier {
    client: kube::Client,
    cache: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl Applier {
    /// An applier over `client`.
    pub fn new(client: kube::Client) -> Self {
        Applier {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The resource serving `id`'s kind (cached; misses are looked up again next time).
    pub async fn resource(&self, id: &ObjectId) -> Result<(ApiResource, bool), ApplyError> {
        let key = (id.api_version(), id.kind.clone());
        if let Some((resource, caps)) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned()
        {
            return Ok((resource, caps.scope == Scope::Namespaced));
        }
        let gvk = GroupVersionKind::gvk(&id.group, &id.version, &id.kind);
        let (resource, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| ApplyError::Unknown {
                id: id.display(),
                message: format!(
                    "no matches for kind \"{}\" in version \"{}\": {e}",
                    id.kind,
                    id.api_version()
                ),
            })?;
        let namespaced = caps.scope == Scope::Namespaced;
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (resource.clone(), caps));
        Ok((resource, namespaced))
    }

    /// The dynamic API for `id` (namespaced or cluster-wide).
    pub async fn api(&self, id: &ObjectId) -> Result<Api<DynamicObject>, ApplyError> {
        let (resource, namespaced) = self.resource(id).await?;
        if namespaced {
            if id.namespace.is_empty() {
                return Err(ApplyError::Unknown {
                    id: id.display(),
                    message:
                        "namespace not specified: the server could not find the requested resource"
                            .into(),
                });
            }
            Ok(Api::namespaced_with(
                self.client.clone(),
                &id.namespace,
                &resource,
            ))
        } else {
            Ok(Api::all_with(self.client.clone(), &resource))
        }
    }

    /// Reads the live object (`None` when absent).
    pub async fn get(&self, id: &ObjectId) -> Result<Option<Value>, ApplyError> {
        let api = self.api(id).await?;
        let live = api
            .get_opt(&id.name)
            .await
            .map_err(|source| ApplyError::Api {
                id: id.display(),
                action: "get",
                source,
            })?;
        Ok(live.and_then(|o| serde_json::to_value(o).ok()))
    }

    /// Applies one manifest; `force` allows recreating it on immutable-field errors.
    pub async fn apply_one(&self, desired: &Value, force: bool) -> Result<Change, ApplyError> {
        let id = ObjectId::of(desired);
        let api = self.api(&id).await?;
        let live = self.get(&id).await?;
        if is_excluded(desired) || live.as_ref().is_some_and(is_excluded) {
            return Ok(Change {
                id,
                action: "skipped",
            });
        }
        if live.is_some() && has_meta(desired, annotation::KUSTOMIZE_SSA, "IfNotPresent") {
            return Ok(Change {
                id,
                action: "skipped",
            });
        }
        let before = live
            .as_ref()
            .map(|l| str_at(l, &["metadata", "resourceVersion"]).to_string());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = match api.patch(&id.name, &params, &Patch::Apply(desired)).await {
            Ok(applied) => applied,
            Err(kube::Error::Api(status))
                if is_immutable_error(status.code, &status.reason, &status.message)
                    && (force
                        || has_meta(desired, annotation::KUSTOMIZE_FORCE, "enabled")
                        || live.as_ref().is_some_and(|l| {
                            has_meta(l, annotation::KUSTOMIZE_FORCE, "enabled")
                        })) =>
            {
                self.delete_and_wait(&api, &id).await?;
                api.patch(&id.name, &params, &Patch::Apply(desired))
                    .await
                    .map_err(|e| rejected(&id, e))?
            }
            Err(error) => return Err(rejected(&id, error)),
        };
        let after = applied
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let action = match before {
            None => "created",
            Some(before) if before == after => "unchanged",
            Some(_) => "configured",
        };
        Ok(Change { id, action })
    }

    /// Applies manifests sorted by [`sort_for_apply`]: runs of the same kind go out up to
    /// [`APPLY_CONCURRENCY`] at a time (they cannot depend on each other; a run only starts when
    /// the kinds before it are done). Returns the changes in manifest order up to the first
    /// failure, and that failure.
    pub async fn apply_all(
        &self,
        manifests: &[Value],
        force: bool,
    ) -> (Vec<Change>, Option<ApplyError>) {
        use futures::StreamExt as _;
        let mut changes = Vec::with_capacity(manifests.len());
        let mut rest = manifests;
        while let Some(first) = rest.first() {
            let kind = ObjectId::of(first);
            let run = rest
                .iter()
                .take_while(|m| {
                    let id = ObjectId::of(m);
                    id.group == kind.group && id.kind == kind.kind
                })
                .count();
            let (batch, next) = rest.split_at(run);
            rest = next;
            // A sliding window kept in order (a `Stream::map` closure over borrowed manifests
            // would not be `Send` for every lifetime, which kube-runtime needs).
            let mut pending = batch.iter();
            let mut in_flight = futures::stream::FuturesOrdered::new();
            for manifest in pending.by_ref().take(APPLY_CONCURRENCY) {
                in_flight.push_back(self.apply_one(manifest, force));
            }
            while let Some(result) = in_flight.next().await {
                match result {
                    Ok(change) => changes.push(change),
                    Err(error) => return (changes, Some(error)),
                }
                if let Some(manifest) = pending.next() {
                    in_flight.push_back(self.apply_one(manifest, force));
                }
            }
        }
        (changes, None)
    }

    async fn delete_and_wait(
        &self,
        api: &Api<DynamicObject>,
        id: &ObjectId,
    ) -> Result<(), ApplyError> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(&id.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(source) => {
                return Err(ApplyError::Api {
                    id: id.display(),
                    action: "delete",
                    source,
                })
            }
        }
        for _ in 0..30 {
            match api.get_opt(&id.name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(500)).await,
                Err(source) => {
                    return Err(ApplyError::Api {
                        id: id.display(),
                        action: "get",
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Deletes one stale object following Flux's prune rules; returns the change.
    pub async fn prune_one(
        &self,
        id: &ObjectId,
        owner_name: &str,
        owner_namespace: &str,
    ) -> Result<Change, ApplyError> {
        let api = self.api(id).await?;
        let Some(live) = self.get(id).await? else {
            return Ok(Change {
                id: id.clone(),
                action: "deleted",
            });
        };
        if !is_owned_by(&live, owner_name, owner_namespace) || is_prune_protected(&live) {
            return Ok(Change {
                id: id.clone(),
                action: "skipped",
            });
        }
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(&id.name, &params).await {
            Ok(_) => Ok(Change {
                id: id.clone(),
                action: "deleted",
            }),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Change {
                id: id.clone(),
                action: "deleted",
            }),
            Err(source) => Err(ApplyError::Api {
                id: id.display(),
                action: "delete",
                source,
            }),
        }
    }
}

fn rejected(id: &ObjectId, error: kube::Error) -> ApplyError {
    match error {
        kube::Error::Api(status) => ApplyError::Rejected {
            id: id.display(),
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        source => ApplyError::Api {
            id: id.display(),
            action: "apply",
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Value {
        let mut metadata = json!({"name": name});
        if let Some(ns) = namespace {
            metadata["namespace"] = json!(ns);
        }
        json!({"apiVersion": api_version, "kind": kind, "metadata": metadata})
    }

    #[test]
    fn inventory_ids_follow_flux() {
        let service = ObjectId::of(&manifest("v1", "Service", Some("default"), "podinfo"));
        assert_eq!(service.inventory_id(), "default_podinfo__Service");
        let ns = ObjectId::of(&manifest("v1", "Namespace", None, "my-ns"));
        assert_eq!(ns.inventory_id(), "_my-ns__Namespace");
        let role = ObjectId::of(&manifest(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "system:foo",
        ));
        assert_eq!(
            role.inventory_id(),
            "_system__foo_rbac.authorization.k8s.io_ClusterRole"
        );
        let back = ObjectId::from_inventory(&ResourceRef {
            id: role.inventory_id(),
            v: "v1".into(),
        })
        .expect("parses");
        assert_eq!(back, role);
        let deploy = ObjectId::of(&manifest("apps/v1", "Deployment", Some("apps"), "web"));
        let back = ObjectId::from_inventory(&ResourceRef {
            id: deploy.inventory_id(),
            v: "v1".into(),
        })
        .expect("parses");
        assert_eq!(back, deploy);
        assert_eq!(back.display(), "Deployment/apps/web");
        assert_eq!(role.display(), "ClusterRole/system:foo");
    }

    #[test]
    fn apply_order_is_staged() {
        let mut objects = vec![
            manifest("apps/v1", "Deployment", Some("a"), "web"),
            manifest("v1", "ConfigMap", Some("a"), "cfg"),
            manifest(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                None,
                "hook",
            ),
            manifest("example.com/v1", "Widget", Some("a"), "w"),
            manifest("networking.k8s.io/v1", "IngressClass", None, "nginx"),
            manifest("v1", "Namespace", None, "a"),
            manifest(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.com",
            ),
        ];
        sort_for_apply(&mut objects);
        let kinds: Vec<&str> = objects.iter().map(|o| str_at(o, &["kind"])).collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition",
                "Namespace",
                "IngressClass",
                "ConfigMap",
                "Deployment",
                "Widget",
                "ValidatingWebhookConfiguration"
            ]
        );
    }

    #[test]
    fn stale_entries_in_reverse_order() {
        let ids: Vec<ObjectId> = ["a", "b", "c"]
            .iter()
            .map(|n| ObjectId::of(&manifest("v1", "ConfigMap", Some("ns"), n)))
            .collect();
        let changes = |names: &[usize]| -> Vec<Change> {
            names
                .iter()
                .map(|i| Change {
                    id: ids[*i].clone(),
                    action: "created",
                })
                .collect()
        };
        let old = inventory_of(&changes(&[0, 1, 2]));
        let new = inventory_of(&changes(&[1]));
        let stale = stale_entries(&old, &new);
        assert_eq!(stale, vec![ids[2].clone(), ids[0].clone()]);
        assert_eq!(old.entries[0].v, "v1");
    }

    #[test]
    fn exclusions_and_ownership() {
        let mut object = manifest("v1", "ConfigMap", Some("ns"), "c");
        assert!(!is_excluded(&object));
        object["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/ssa": "Ignore"});
        assert!(is_excluded(&object));
        object["metadata"]["annotations"] =
            json!({"kustomize.toolkit.fluxcd.io/prune": "disabled"});
        assert!(!is_excluded(&object) && is_prune_protected(&object));
        object["metadata"]["labels"] = json!({
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"
        });
        assert!(is_owned_by(&object, "apps", "flux-system"));
        assert!(!is_owned_by(&object, "apps", "other"));
        assert!(is_immutable_error(
            422,
            "Invalid",
            "spec.selector: Invalid value: field is immutable"
        ));
        assert!(!is_immutable_error(500, "InternalError", "boom"));
    }

    #[test]
    fn normalize_folds_string_data() {
        let mut secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "creationTimestamp": null},
            "stringData": {"token": "abc"},
            "data": {"other": "eA=="},
            "status": {}
        });
        normalize(&mut secret);
        assert_eq!(secret["data"]["token"], "YWJj");
        assert_eq!(secret["data"]["other"], "eA==");
        assert!(secret.get("stringData").is_none() && secret.get("status").is_none());
        assert!(secret["metadata"].get("creationTimestamp").is_none());
    }
}
