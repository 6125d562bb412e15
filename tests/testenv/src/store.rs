//! The in-memory object store with Kubernetes semantics (sans-IO: no sockets here).
//!
//! Objects live in a `BTreeMap` keyed by (group, resource, namespace, name). Every write bumps
//! one global resourceVersion and appends to an event log that watches replay from.

use crate::error::{qualified, ApiError, Cause};
use crate::fields::{self, Scope, Shape};
use crate::kinds;
use crate::patch;
use crate::registry::{types_from_crd, Registry, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::util::{meta_str, metadata_mut, new_uid, now_rfc3339, random_suffix};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Storage key: (group, resource, namespace, name); namespace is empty for cluster scope.
pub type Key = (String, String, String, String);

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Event {
    /// resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Group of the object.
    pub group: String,
    /// Resource (plural) of the object.
    pub resource: String,
    /// Namespace (empty for cluster scope).
    pub namespace: String,
    /// The object after the change (the last state for deletions).
    pub object: Value,
    /// The object before the change, for selector transitions.
    pub previous: Option<Value>,
}

/// What a watch starts with: events to replay, the resourceVersion they reach, and a receiver.
pub type WatchStart = (Vec<Arc<Event>>, u64, broadcast::Receiver<Arc<Event>>);

/// Options for list and watch.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0 = no limit).
    pub limit: usize,
    /// `continue` token.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
}

/// Options for writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager`, already defaulted from the user agent.
    pub field_manager: String,
    /// `force` (apply only).
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields of custom resources are an error.
    pub strict_fields: bool,
}

/// Deletion propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete now, collect dependents afterwards.
    #[default]
    Background,
    /// Keep the owner until its dependents are gone.
    Foreground,
    /// Leave dependents, removing their owner references.
    Orphan,
}

/// Options for deletes (query parameters merged with a DeleteOptions body).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `propagationPolicy`.
    pub propagation: Option<Propagation>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// Patch body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// application/json-patch+json
    Json,
    /// application/merge-patch+json
    Merge,
    /// application/strategic-merge-patch+json
    Strategic,
    /// application/apply-patch+yaml
    Apply,
}

impl PatchType {
    /// From a Content-Type header.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Which endpoint a write came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// The object itself.
    Main,
    /// `/status`.
    Status,
}

/// The store.
pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    log: VecDeque<Arc<Event>>,
    log_capacity: usize,
    /// Oldest resourceVersion a watch may resume from.
    compacted_rv: u64,
    /// Served types.
    pub registry: Registry,
    /// Whether workloads report ready.
    pub workloads_ready: bool,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// `metav1.Status` for a successful delete.
fn success_status(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource, "uid": uid});
    if !group.is_empty() {
        details["group"] = group.into();
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Compares two objects ignoring the fields that never count as a change.
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

/// Whether anything outside metadata (and status, when it is a subresource) differs.
fn spec_changed(old: &Value, new: &Value, has_status: bool) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("apiVersion");
            m.remove("kind");
            if has_status {
                m.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}

impl Store {
    /// An empty store with the default namespaces.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(8192);
        let mut store = Self {
            objects: BTreeMap::new(),
            rv: 1,
            log: VecDeque::new(),
            log_capacity: 20_000,
            compacted_rv: 1,
            registry: Registry::default(),
            workloads_ready: false,
            tx,
        };
        let ns_type = store
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .expect("namespaces is built in");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let _ = store.create(
                &ns_type,
                None,
                obj,
                &WriteOptions {
                    field_manager: "kube-apiserver".into(),
                    ..WriteOptions::default()
                },
            );
        }
        store
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Subscribes to committed events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Forgets the event history: watches from any earlier resourceVersion get 410 Gone.
    pub fn compact(&mut self) {
        self.log.clear();
        self.compacted_rv = self.rv;
    }

    /// Number of stored objects (all kinds).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Where a type's objects are stored: events.k8s.io Events share core Events' storage.
    pub fn storage_of(rt: &ResourceType) -> (String, String) {
        if rt.group == "events.k8s.io" && rt.plural == "events" {
            (String::new(), "events".into())
        } else {
            (rt.group.clone(), rt.plural.clone())
        }
    }

    /// Converts a request body of `rt` to the stored form.
    fn to_storage(rt: &ResourceType, obj: &mut Value) {
        if rt.group == "events.k8s.io" && rt.plural == "events" {
            kinds::event_to_core(obj);
        }
    }

    fn key(rt: &ResourceType, ns: Option<&str>, name: &str) -> Key {
        let (group, resource) = Self::storage_of(rt);
        (
            group,
            resource,
            if rt.namespaced {
                ns.unwrap_or_default().to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    /// Returns the object converted to the requested version.
    pub fn present(rt: &ResourceType, obj: &Value) -> Value {
        let mut out = obj.clone();
        if rt.group == "events.k8s.io" && rt.plural == "events" {
            kinds::event_from_core(&mut out);
        }
        if let Some(m) = out.as_object_mut() {
            m.insert("apiVersion".into(), rt.api_version().into());
            m.insert("kind".into(), rt.kind.clone().into());
        }
        out
    }

    fn shape(rt: &ResourceType) -> Shape<'_> {
        Shape {
            schema: rt.schema.as_ref(),
            custom: rt.custom,
        }
    }

    /// Writes (or removes) an object, bumping the resourceVersion and logging the event.
    fn commit(
        &mut self,
        key: &Key,
        kind: EventType,
        mut obj: Value,
        previous: Option<Value>,
    ) -> Value {
        self.rv += 1;
        metadata_mut(&mut obj).insert("resourceVersion".into(), self.rv.to_string().into());
        if kind == EventType::Deleted {
            self.objects.remove(key);
        } else {
            self.objects.insert(key.clone(), obj.clone());
        }
        let event = Arc::new(Event {
            rv: self.rv,
            kind,
            group: key.0.clone(),
            resource: key.1.clone(),
            namespace: key.2.clone(),
            object: obj.clone(),
            previous,
        });
        self.log.push_back(Arc::clone(&event));
        while self.log.len() > self.log_capacity {
            if let Some(old) = self.log.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        let _ = self.tx.send(event);
        obj
    }

    /// Gets one object.
    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(rt, ns, name))
            .map(|o| Self::present(rt, o))
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    fn matching<'a>(
        &'a self,
        rt: &'a ResourceType,
        ns: Option<&'a str>,
        opts: &'a ListOptions,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let storage = Self::storage_of(rt);
        self.objects
            .range(
                (
                    storage.0.clone(),
                    storage.1.clone(),
                    String::new(),
                    String::new(),
                )..,
            )
            .take_while(move |(k, _)| k.0 == storage.0 && k.1 == storage.1)
            .filter(move |(k, _)| ns.is_none_or(|ns| !rt.namespaced || k.2 == ns))
            .filter(move |(_, o)| opts.labels.matches(o) && opts.fields.matches(o))
    }

    /// Lists objects (one page when `limit` is set).
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, ApiError> {
        let start_after = match &opts.continue_token {
            Some(token) => Some(decode_continue(token, self.compacted_rv)?),
            None => None,
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0usize;
        for (key, obj) in self.matching(rt, ns, opts) {
            let pos = format!("{}/{}", key.2, key.3);
            if start_after.as_ref().is_some_and(|s| pos <= *s) {
                continue;
            }
            if opts.limit > 0 && items.len() == opts.limit {
                remaining += 1;
                if next.is_none() {
                    next = items.last().map(|o: &Value| {
                        format!(
                            "{}/{}",
                            meta_str(o, "namespace").unwrap_or_default(),
                            meta_str(o, "name").unwrap_or_default()
                        )
                    });
                }
                continue;
            }
            items.push(Self::present(rt, obj));
        }
        let mut meta = json!({"resourceVersion": self.rv.to_string()});
        if let Some(pos) = next {
            let token = json!({"rv": self.rv, "start": pos}).to_string();
            meta["continue"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(token)
                .into();
            meta["remainingItemCount"] = remaining.into();
        }
        Ok(json!({
            "apiVersion": rt.api_version(),
            "kind": format!("{}List", rt.kind),
            "metadata": meta,
            "items": items,
        }))
    }

    /// Prepares a watch: the events to replay now, and a receiver for later ones (rv > the returned rv).
    pub fn watch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<WatchStart, ApiError> {
        let rx = self.tx.subscribe();
        let rv_param = opts.resource_version.as_deref().unwrap_or_default();
        let replay: Vec<Arc<Event>> =
            if rv_param.is_empty() || rv_param == "0" || opts.send_initial_events {
                self.matching(rt, ns, opts)
                    .map(|(k, o)| {
                        Arc::new(Event {
                            rv: o["metadata"]["resourceVersion"]
                                .as_str()
                                .and_then(|r| r.parse().ok())
                                .unwrap_or(self.rv),
                            kind: EventType::Added,
                            group: k.0.clone(),
                            resource: k.1.clone(),
                            namespace: k.2.clone(),
                            object: o.clone(),
                            previous: None,
                        })
                    })
                    .collect()
            } else {
                let from: u64 = rv_param.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv_param:?}"))
                })?;
                if from < self.compacted_rv {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {from} ({})",
                        self.compacted_rv
                    )));
                }
                self.log.iter().filter(|e| e.rv > from).cloned().collect()
            };
        Ok((replay, self.rv, rx))
    }

    fn check_namespace(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        creating: bool,
    ) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let Some(ns) = ns.filter(|n| !n.is_empty()) else {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        };
        let key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            ns.to_string(),
        );
        match self.objects.get(&key) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if creating && n["metadata"].get("deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                qualified(&rt.group, &rt.plural),
                "",
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Checks apiVersion/kind/namespace/name of a request body and normalises metadata.
    fn validate_body(
        rt: &ResourceType,
        ns: Option<&str>,
        obj: &mut Value,
        url_name: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        };
        match map.get("kind").and_then(Value::as_str) {
            Some(kind) if kind != rt.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind of the object ({kind}) does not match the kind of the resource ({})",
                    rt.kind
                )))
            }
            Some(_) => {}
            None => {
                map.insert("kind".into(), rt.kind.clone().into());
            }
        }
        match map.get("apiVersion").and_then(Value::as_str) {
            Some(av) if av != rt.api_version() => {
                return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                rt.api_version()
            )))
            }
            Some(_) => {}
            None => {
                map.insert("apiVersion".into(), rt.api_version().into());
            }
        }
        let meta = metadata_mut(obj);
        if rt.namespaced {
            match (meta.get("namespace").and_then(Value::as_str), ns) {
                (Some(body_ns), Some(url_ns)) if !body_ns.is_empty() && body_ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                (_, Some(url_ns)) => {
                    meta.insert("namespace".into(), url_ns.into());
                }
                _ => {}
            }
        } else {
            meta.remove("namespace");
        }
        if let (Some(url_name), Some(body_name)) =
            (url_name, meta.get("name").and_then(Value::as_str))
        {
            if url_name != body_name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
                )));
            }
        }
        if let Some(url_name) = url_name {
            meta.entry("name").or_insert_with(|| url_name.into());
        }
        Ok(())
    }

    /// Name, label and schema validation; returns 422 with causes.
    fn validate_object(rt: &ResourceType, obj: &mut Value, strict: bool) -> Result<(), ApiError> {
        let name = meta_str(obj, "name").unwrap_or_default().to_string();
        let mut causes = Vec::new();
        if name.is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: name or generateName is required".into(),
                field: "metadata.name".into(),
            });
        } else if let Some(why) = kinds::validate_name(&rt.kind, &name) {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {name:?}: {why}"),
                field: "metadata.name".into(),
            });
        }
        if let Some(annotations) = obj["metadata"]["annotations"].as_object() {
            // The API limits the total size of annotation keys and values.
            let total: usize = annotations
                .iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum();
            if total > 262_144 {
                causes.push(Cause {
                    reason: "FieldValueTooLong".into(),
                    message: "Too long: must have at most 262144 bytes".into(),
                    field: "metadata.annotations".into(),
                });
            }
        }
        if let Some(labels) = obj["metadata"]["labels"].as_object() {
            for (k, v) in labels {
                let text = v.as_str().unwrap_or_default();
                if let Some(why) = kinds::validate_label_value(text) {
                    causes.push(Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!("Invalid value: {text:?}: {why}"),
                        field: format!("metadata.labels: {k}"),
                    });
                }
            }
        }
        if let Some(schema) = &rt.schema {
            let outcome = crate::schema::process(obj, schema);
            if strict && !outcome.pruned.is_empty() {
                let unknown: Vec<String> = outcome
                    .pruned
                    .iter()
                    .map(|p| format!("unknown field \"{p}\""))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                    unknown.join(", "),
                    kind = rt.kind,
                    version = rt.version
                )));
            }
            causes.extend(outcome.causes);
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes))
        }
    }

    /// Creates an object; returns the stored object (201).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        Self::validate_body(rt, ns, &mut obj, None)?;
        Self::to_storage(rt, &mut obj);
        self.check_namespace(rt, ns, true)?;
        let meta = metadata_mut(&mut obj);
        if meta
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            if let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                let name = format!("{prefix}{}", random_suffix());
                meta.insert("name".into(), name.into());
            }
        }
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(field);
        }
        if rt.has_status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        if !rt.custom {
            kinds::apply_defaults(&rt.group, &rt.kind, &mut obj);
        }
        Self::validate_object(rt, &mut obj, opts.strict_fields)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let key = Self::key(rt, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        let meta = metadata_mut(&mut obj);
        meta.insert("uid".into(), new_uid().into());
        meta.insert("creationTimestamp".into(), now_rfc3339().into());
        if rt.has_generation {
            meta.insert("generation".into(), 1.into());
        }
        if rt.group == "apiextensions.k8s.io" {
            crd_status(&mut obj);
        }
        obj = order_object(obj);
        let scope = Scope::Main {
            status_separate: rt.has_status,
        };
        fields::record_update(
            None,
            &mut obj,
            &opts.field_manager,
            &rt.api_version(),
            Self::shape(rt),
            scope,
        );
        if opts.dry_run {
            return Ok(Self::present(rt, &obj));
        }
        let stored = self.commit(&key, EventType::Added, obj, None);
        self.after_write(rt, &key);
        Ok(Self::present(rt, &stored))
    }

    /// Replaces an object (PUT), on the main resource or the status subresource.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        sub: Sub,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        Self::validate_body(rt, ns, &mut obj, Some(name))?;
        Self::to_storage(rt, &mut obj);
        let key = Self::key(rt, ns, name);
        let Some(existing) = self.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        match meta_str(&obj, "resourceVersion").filter(|r| !r.is_empty()) {
            Some(rv) if Some(rv) != meta_str(&existing, "resourceVersion") => {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
            Some(_) => {}
            None if rt.custom => {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                        field: "metadata.resourceVersion".into(),
                    }],
                ));
            }
            None => {}
        }
        self.finish_update(rt, &key, existing, obj, sub, opts, None)
    }

    /// Common tail of update and patch: carry system fields, generation, validation, commit.
    fn finish_update(
        &mut self,
        rt: &ResourceType,
        key: &Key,
        existing: Value,
        mut obj: Value,
        sub: Sub,
        opts: &WriteOptions,
        applied_managed_fields: Option<Value>,
    ) -> Result<Value, ApiError> {
        let name = key.3.clone();
        if sub == Sub::Status {
            // Only status changes through the status subresource.
            let status = obj.get("status").cloned();
            obj = existing.clone();
            match status {
                Some(s) => obj["status"] = s,
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        } else if rt.has_status {
            match existing.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        let explicit_managed = obj["metadata"].get("managedFields").cloned();
        {
            let old_meta = existing["metadata"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let meta = metadata_mut(&mut obj);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match old_meta.get(field) {
                    Some(v) => {
                        meta.insert(field.into(), v.clone());
                    }
                    None => {
                        meta.remove(field);
                    }
                }
            }
            meta.insert(
                "managedFields".into(),
                old_meta
                    .get("managedFields")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            if meta.get("managedFields").is_some_and(Value::is_null) {
                meta.remove("managedFields");
            }
            if let Some(rv) = old_meta.get("resourceVersion") {
                meta.insert("resourceVersion".into(), rv.clone());
            }
        }
        if existing["metadata"].get("deletionTimestamp").is_some() {
            let old_fin = existing["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let new_fin = obj["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if new_fin.iter().any(|f| !old_fin.contains(f)) {
                return Err(ApiError::invalid(&rt.group, &rt.kind, &name, vec![Cause {
                    reason: "FieldValueForbidden".into(),
                    message: "Forbidden: no new finalizers can be added if the object is being deleted".into(),
                    field: "metadata.finalizers".into(),
                }]));
            }
        }
        if !rt.custom && sub == Sub::Main {
            if rt.kind == "Service" && obj["spec"].get("clusterIP").is_none() {
                // clusterIP is immutable: carry the allocated one over.
                for field in ["clusterIP", "clusterIPs"] {
                    if let (Some(v), Some(spec)) = (
                        existing["spec"].get(field),
                        obj.get_mut("spec").and_then(Value::as_object_mut),
                    ) {
                        spec.insert(field.into(), v.clone());
                    }
                }
            }
            kinds::apply_defaults(&rt.group, &rt.kind, &mut obj);
            if rt.kind == "Namespace" {
                obj["status"] = existing["status"].clone();
            }
        }
        Self::validate_object(rt, &mut obj, opts.strict_fields)?;
        if rt.has_generation && sub == Sub::Main && spec_changed(&existing, &obj, rt.has_status) {
            let generation = existing["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            metadata_mut(&mut obj).insert("generation".into(), generation.into());
        }
        if rt.group == "apiextensions.k8s.io" {
            crd_status(&mut obj);
        }
        obj = order_object(obj);
        let scope = if sub == Sub::Status {
            Scope::Status
        } else {
            Scope::Main {
                status_separate: rt.has_status,
            }
        };
        if let Some(managed) = applied_managed_fields {
            metadata_mut(&mut obj).insert("managedFields".into(), managed);
        } else {
            match explicit_managed {
                // A client writing managedFields itself (kubectl's client-side-apply upgrade) sets them as given.
                Some(Value::Array(list))
                    if Some(&Value::Array(list.clone()))
                        != existing["metadata"].get("managedFields") =>
                {
                    if list.is_empty() {
                        metadata_mut(&mut obj).remove("managedFields");
                    } else {
                        metadata_mut(&mut obj).insert("managedFields".into(), Value::Array(list));
                    }
                }
                _ => {
                    if same_content(&existing, &obj) {
                        return Ok(Self::present(rt, &existing));
                    }
                    fields::record_update(
                        Some(&existing),
                        &mut obj,
                        &opts.field_manager,
                        &rt.api_version(),
                        Self::shape(rt),
                        scope,
                    );
                }
            }
        }
        if same_content(&existing, &obj)
            && without_times(&obj["metadata"]["managedFields"])
                == without_times(&existing["metadata"]["managedFields"])
        {
            return Ok(Self::present(rt, &existing));
        }
        let finalized = obj["metadata"].get("deletionTimestamp").is_some()
            && obj["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        if opts.dry_run {
            return Ok(Self::present(rt, &obj));
        }
        let stored = if finalized {
            let stored = self.commit(key, EventType::Deleted, obj, Some(existing));
            self.after_delete(rt, key, &stored);
            stored
        } else {
            let stored = self.commit(key, EventType::Modified, obj, Some(existing));
            self.after_write(rt, key);
            stored
        };
        Ok(Self::present(rt, &stored))
    }

    /// Patches an object; apply patches create it when absent (then `true` = created).
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        sub: Sub,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let key = Self::key(rt, ns, name);
        let existing = self.objects.get(&key).cloned();
        if patch_type == PatchType::Apply {
            return self.apply(rt, ns, name, existing, body, sub, opts);
        }
        let Some(existing) = existing else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        let mut doc = Self::present(rt, &existing);
        match patch_type {
            PatchType::Json => patch::apply_json_patch(&mut doc, body)?,
            PatchType::Merge => patch::apply_merge_patch(&mut doc, body)?,
            PatchType::Strategic => {
                if rt.custom {
                    return Err(ApiError::unsupported_media_type(
                        "application/strategic-merge-patch+json",
                    ));
                }
                patch::apply_strategic_merge_patch(&mut doc, body)?;
            }
            PatchType::Apply => unreachable!("handled above"),
        }
        if let Some(rv) = meta_str(&doc, "resourceVersion") {
            if Some(rv) != meta_str(&existing, "resourceVersion") {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
        }
        Self::validate_body(rt, ns, &mut doc, Some(name))?;
        Self::to_storage(rt, &mut doc);
        let out = self.finish_update(rt, &key, existing, doc, sub, opts, None)?;
        Ok((out, false))
    }

    fn apply(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        existing: Option<Value>,
        body: &[u8],
        sub: Sub,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        if opts.field_manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH, fieldManager is required for apply requests",
            ));
        }
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let mut applied: Value = serde_yaml::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        Self::validate_body(rt, ns, &mut applied, Some(name))?;
        if applied.get("apiVersion").is_none() || applied.get("kind").is_none() {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an apply configuration",
            ));
        }
        let scope = if sub == Sub::Status {
            Scope::Status
        } else {
            Scope::Main {
                status_separate: rt.has_status,
            }
        };
        let ctx = (rt.group.as_str(), rt.plural.as_str(), name);
        match existing {
            None => {
                if sub == Sub::Status {
                    return Err(ApiError::not_found(&rt.group, &rt.plural, name));
                }
                let merged = fields::apply(
                    None,
                    &applied,
                    &opts.field_manager,
                    opts.force,
                    Self::shape(rt),
                    scope,
                    ctx,
                )?;
                let managed = merged["metadata"]["managedFields"].clone();
                let mut created = self.create_with_managed(rt, ns, merged, opts, managed)?;
                created = Self::present(rt, &created);
                Ok((created, true))
            }
            Some(existing) => {
                let live = Self::present(rt, &existing);
                let mut merged = fields::apply(
                    Some(&live),
                    &applied,
                    &opts.field_manager,
                    opts.force,
                    Self::shape(rt),
                    scope,
                    ctx,
                )?;
                if let Some(rv) = meta_str(&applied, "resourceVersion") {
                    if Some(rv) != meta_str(&existing, "resourceVersion") {
                        return Err(ApiError::conflict(&rt.group, &rt.plural, name));
                    }
                }
                let managed = merged["metadata"]["managedFields"].clone();
                if let Some(m) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
                let key = Self::key(rt, ns, name);
                Self::to_storage(rt, &mut merged);
                let out =
                    self.finish_update(rt, &key, existing, merged, sub, opts, Some(managed))?;
                Ok((out, false))
            }
        }
    }

    fn create_with_managed(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
        managed: Value,
    ) -> Result<Value, ApiError> {
        // Create normally (records an Update entry), then replace managedFields with the Apply entry.
        let dry = WriteOptions {
            dry_run: true,
            ..opts.clone()
        };
        let mut preview = self.create(rt, ns, obj, &dry)?;
        metadata_mut(&mut preview).insert("managedFields".into(), managed);
        if opts.dry_run {
            return Ok(preview);
        }
        let name = meta_str(&preview, "name").unwrap_or_default().to_string();
        let key = Self::key(rt, ns, &name);
        if let Some(m) = preview.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let stored = self.commit(&key, EventType::Added, preview, None);
        self.after_write(rt, &key);
        Ok(stored)
    }

    /// Deletes an object. Returns the HTTP code and body (the object or a Status).
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let key = Self::key(rt, ns, name);
        let Some(existing) = self.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        if let Some(uid) = &opts.uid {
            if Some(uid.as_str()) != meta_str(&existing, "uid") {
                return Err(ApiError::conflict_with(&rt.group, &rt.plural, name, format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    qualified(&rt.group, &rt.plural), meta_str(&existing, "uid").unwrap_or_default()), Vec::new()));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if Some(rv.as_str()) != meta_str(&existing, "resourceVersion") {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
        }
        let propagation = opts.propagation.unwrap_or_default();
        let mut obj = existing.clone();
        let finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let namespace_pending = rt.kind == "Namespace" && !rt.custom;
        let graceful =
            !finalizers.is_empty() || propagation == Propagation::Foreground || namespace_pending;
        if opts.dry_run {
            if graceful {
                metadata_mut(&mut obj)
                    .entry("deletionTimestamp")
                    .or_insert_with(|| now_rfc3339().into());
                return Ok((200, Self::present(rt, &obj)));
            }
            return Ok((200, Self::deleted_body(rt, &obj)));
        }
        if propagation == Propagation::Orphan {
            self.orphan_dependents(meta_str(&existing, "uid").unwrap_or_default());
        }
        if graceful {
            let meta = metadata_mut(&mut obj);
            let already = meta.contains_key("deletionTimestamp");
            meta.entry("deletionTimestamp")
                .or_insert_with(|| now_rfc3339().into());
            meta.insert("deletionGracePeriodSeconds".into(), 0.into());
            if propagation == Propagation::Foreground {
                let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
                if let Value::Array(f) = fins {
                    if !f.iter().any(|x| x == "foregroundDeletion") {
                        f.push("foregroundDeletion".into());
                    }
                }
            }
            if namespace_pending {
                obj["status"] = json!({"phase": "Terminating"});
            }
            if already && obj == existing {
                return Ok((202, Self::present(rt, &existing)));
            }
            let stored = self.commit(&key, EventType::Modified, obj, Some(existing));
            self.collect_garbage();
            let current = self.objects.get(&key).map_or(stored, Clone::clone);
            return Ok((
                if self.objects.contains_key(&key) {
                    202
                } else {
                    200
                },
                Self::present(rt, &current),
            ));
        }
        let stored = self.commit(&key, EventType::Deleted, obj, Some(existing));
        self.after_delete(rt, &key, &stored);
        Ok((200, Self::deleted_body(rt, &stored)))
    }

    fn deleted_body(rt: &ResourceType, obj: &Value) -> Value {
        if rt.custom {
            Self::present(rt, obj)
        } else {
            success_status(
                &rt.group,
                &rt.plural,
                meta_str(obj, "name").unwrap_or_default(),
                meta_str(obj, "uid").unwrap_or_default(),
            )
        }
    }

    /// Deletes every object a list selects.
    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let names: Vec<String> = self
            .matching(rt, ns, list)
            .map(|(k, _)| k.3.clone())
            .collect();
        let mut items = Vec::new();
        for name in names {
            if let Ok((_, body)) = self.delete(rt, ns, &name, opts) {
                if body["kind"] != "Status" {
                    items.push(body);
                }
            }
        }
        Ok(
            json!({"apiVersion": rt.api_version(), "kind": format!("{}List", rt.kind),
            "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}),
        )
    }

    fn orphan_dependents(&mut self, owner_uid: &str) {
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| owner_refs(o).iter().any(|r| r["uid"] == owner_uid))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dependents {
            if let Some(old) = self.objects.get(&key).cloned() {
                let mut obj = old.clone();
                if let Some(Value::Array(refs)) = obj["metadata"].get_mut("ownerReferences") {
                    refs.retain(|r| r["uid"] != owner_uid);
                }
                if obj["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                {
                    metadata_mut(&mut obj).remove("ownerReferences");
                }
                self.commit(&key, EventType::Modified, obj, Some(old));
            }
        }
    }

    fn after_write(&mut self, rt: &ResourceType, key: &Key) {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.refresh_crds();
        }
        if self.workloads_ready && kinds::is_workload(&rt.group, &rt.kind) {
            self.mark_ready(key, &rt.group, &rt.kind);
        }
        self.collect_garbage();
    }

    fn after_delete(&mut self, rt: &ResourceType, _key: &Key, deleted: &Value) {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            let group = deleted["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let plural = deleted["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let keys: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.0 == group && k.1 == plural)
                .cloned()
                .collect();
            for k in keys {
                if let Some(o) = self.objects.get(&k).cloned() {
                    self.commit(&k, EventType::Deleted, o.clone(), Some(o));
                }
            }
            self.refresh_crds();
        }
        self.collect_garbage();
    }

    fn refresh_crds(&mut self) {
        let custom: Vec<ResourceType> = self
            .objects
            .iter()
            .filter(|(k, _)| k.0 == "apiextensions.k8s.io" && k.1 == "customresourcedefinitions")
            .flat_map(|(_, crd)| types_from_crd(crd))
            .collect();
        self.registry.set_custom(custom);
    }

    /// Writes a ready status for one workload object if it does not already report ready.
    fn mark_ready(&mut self, key: &Key, group: &str, kind: &str) {
        let Some(old) = self.objects.get(key).cloned() else {
            return;
        };
        if old["metadata"].get("deletionTimestamp").is_some()
            || kinds::status_is_ready(group, kind, &old)
        {
            return;
        }
        let Some(status) = kinds::ready_status(group, kind, &old) else {
            return;
        };
        let mut obj = old.clone();
        obj["status"] = status;
        self.commit(key, EventType::Modified, obj, Some(old));
    }

    /// Turns the readiness switch on or off; when on, existing workloads become ready now.
    pub fn set_workloads_ready(&mut self, ready: bool) {
        self.workloads_ready = ready;
        if ready {
            let keys: Vec<(Key, String, String)> = self
                .objects
                .iter()
                .filter_map(|(k, o)| {
                    let kind = o["kind"].as_str()?.to_string();
                    kinds::is_workload(&k.0, &kind).then(|| (k.clone(), k.0.clone(), kind))
                })
                .collect();
            for (k, g, kind) in keys {
                self.mark_ready(&k, &g, &kind);
            }
        }
    }

    /// Garbage collection: dependents of deleted owners, foreground deletion and namespace cleanup.
    /// Runs to a fixed point after every write (the real collector is asynchronous; tests see the end state).
    fn collect_garbage(&mut self) {
        for _ in 0..64 {
            let uids: HashMap<String, Key> = self
                .objects
                .iter()
                .filter_map(|(k, o)| Some((meta_str(o, "uid")?.to_string(), k.clone())))
                .collect();
            let mut to_delete: Vec<Key> = Vec::new();
            let mut to_finish: Vec<Key> = Vec::new();
            for (key, obj) in &self.objects {
                let refs = owner_refs(obj);
                if !refs.is_empty() {
                    let live_owner = refs.iter().any(|r| {
                        r["uid"]
                            .as_str()
                            .and_then(|u| uids.get(u))
                            .and_then(|k| self.objects.get(k))
                            .is_some_and(|owner| {
                                !(owner["metadata"].get("deletionTimestamp").is_some()
                                    && has_finalizer(owner, "foregroundDeletion"))
                            })
                    });
                    if !live_owner && obj["metadata"].get("deletionTimestamp").is_none() {
                        to_delete.push(key.clone());
                    }
                }
                let deleting = obj["metadata"].get("deletionTimestamp").is_some();
                if deleting && has_finalizer(obj, "foregroundDeletion") {
                    let uid = meta_str(obj, "uid").unwrap_or_default();
                    let has_dependents = self
                        .objects
                        .values()
                        .any(|o| owner_refs(o).iter().any(|r| r["uid"] == uid));
                    if !has_dependents {
                        to_finish.push(key.clone());
                    }
                }
                if deleting && key.0.is_empty() && key.1 == "namespaces" {
                    let ns = &key.3;
                    let content: Vec<Key> = self
                        .objects
                        .keys()
                        .filter(|k| k.2 == *ns && !(k.0.is_empty() && k.1 == "namespaces"))
                        .cloned()
                        .collect();
                    let pending: Vec<Key> = content
                        .iter()
                        .filter(|k| {
                            self.objects
                                .get(*k)
                                .is_some_and(|o| o["metadata"].get("deletionTimestamp").is_none())
                        })
                        .cloned()
                        .collect();
                    if content.is_empty() {
                        to_finish.push(key.clone());
                    } else {
                        to_delete.extend(pending);
                    }
                }
            }
            if to_delete.is_empty() && to_finish.is_empty() {
                return;
            }
            for key in to_delete {
                let Some(rt) = self.registry.find_any_version(&key.0, &key.1).cloned() else {
                    continue;
                };
                let ns = (!key.2.is_empty()).then(|| key.2.clone());
                let _ = self.delete_quiet(&rt, ns.as_deref(), &key.3);
            }
            for key in to_finish {
                let Some(old) = self.objects.get(&key).cloned() else {
                    continue;
                };
                let mut obj = old.clone();
                if let Some(Value::Array(f)) = obj["metadata"].get_mut("finalizers") {
                    f.retain(|x| x != "foregroundDeletion");
                }
                if key.1 == "namespaces" && key.0.is_empty() {
                    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.remove("finalizers");
                    }
                }
                if obj["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(Vec::is_empty)
                {
                    metadata_mut(&mut obj).remove("finalizers");
                    self.commit(&key, EventType::Deleted, obj, Some(old));
                } else {
                    self.commit(&key, EventType::Modified, obj, Some(old));
                }
            }
        }
    }

    /// A delete issued by the garbage collector (background propagation, no GC recursion).
    fn delete_quiet(&mut self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Option<()> {
        let key = Self::key(rt, ns, name);
        let existing = self.objects.get(&key).cloned()?;
        let has_finalizers = existing["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let is_namespace = key.0.is_empty() && key.1 == "namespaces";
        if has_finalizers || is_namespace {
            let mut obj = existing.clone();
            metadata_mut(&mut obj).insert("deletionTimestamp".into(), now_rfc3339().into());
            metadata_mut(&mut obj).insert("deletionGracePeriodSeconds".into(), 0.into());
            self.commit(&key, EventType::Modified, obj, Some(existing));
        } else {
            self.commit(&key, EventType::Deleted, existing.clone(), Some(existing));
        }
        Some(())
    }
}

/// managedFields with the timestamps removed (a no-op apply changes nothing else).
fn without_times(managed: &Value) -> Value {
    let mut m = managed.clone();
    if let Value::Array(entries) = &mut m {
        for e in entries.iter_mut().filter_map(Value::as_object_mut) {
            e.remove("time");
        }
    }
    m
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_finalizer(obj: &Value, name: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == name))
}

fn decode_continue(token: &str, compacted: u64) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    if rv < compacted {
        return Err(ApiError::gone(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        ));
    }
    v["start"].as_str().map(str::to_string).ok_or_else(bad)
}

/// Orders top-level keys as the API server does (apiVersion, kind, metadata, then the rest).
fn order_object(obj: Value) -> Value {
    let Value::Object(map) = obj else { return obj };
    let mut out = Map::new();
    for k in ["apiVersion", "kind", "metadata"] {
        if let Some(v) = map.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    for (k, v) in map {
        if !out.contains_key(&k) {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

/// The status the CRD controller writes: names accepted, established, stored versions.
fn crd_status(crd: &mut Value) {
    let now = now_rfc3339();
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|x| x["storage"].as_bool() == Some(true))
                .map(|x| x["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let mut names = crd["spec"]["names"].clone();
    if names.get("singular").is_none() {
        names["singular"] = names["kind"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .into();
    }
    if names.get("listKind").is_none() {
        names["listKind"] = format!("{}List", names["kind"].as_str().unwrap_or_default()).into();
    }
    crd["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "storedVersions": storage,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(store: &Store, group: &str, plural: &str) -> ResourceType {
        store
            .registry
            .find_any_version(group, plural)
            .cloned()
            .unwrap()
    }

    fn opts() -> WriteOptions {
        WriteOptions {
            field_manager: "test".into(),
            ..WriteOptions::default()
        }
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
    }

    #[test]
    fn create_get_conflict_and_noop_update() {
        let mut s = Store::new();
        let t = rt(&s, "", "configmaps");
        let created = s.create(&t, Some("default"), cm("x"), &opts()).unwrap();
        assert!(created["metadata"]["uid"].is_string());
        assert!(created["metadata"].get("generation").is_none());
        assert_eq!(
            s.create(&t, Some("default"), cm("x"), &opts())
                .unwrap_err()
                .code,
            409
        );
        assert_eq!(
            s.create(&t, Some("nope"), cm("y"), &opts())
                .unwrap_err()
                .code,
            404
        );
        let mut stale = created.clone();
        stale["metadata"]["resourceVersion"] = "1".into();
        assert_eq!(
            s.update(&t, Some("default"), "x", stale, Sub::Main, &opts())
                .unwrap_err()
                .code,
            409
        );
        let same = s
            .update(
                &t,
                Some("default"),
                "x",
                created.clone(),
                Sub::Main,
                &opts(),
            )
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            created["metadata"]["resourceVersion"]
        );
    }

    #[test]
    fn generation_follows_spec_only() {
        let mut s = Store::new();
        let t = rt(&s, "apps", "deployments");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        s.create(&t, Some("default"), d, &opts()).unwrap();
        let (o, _) = s
            .patch(
                &t,
                Some("default"),
                "d",
                PatchType::Merge,
                br#"{"metadata":{"labels":{"a":"b"}}}"#,
                Sub::Main,
                &opts(),
            )
            .unwrap();
        assert_eq!(o["metadata"]["generation"], 1);
        let (o, _) = s
            .patch(
                &t,
                Some("default"),
                "d",
                PatchType::Merge,
                br#"{"status":{"replicas":3}}"#,
                Sub::Status,
                &opts(),
            )
            .unwrap();
        assert_eq!(o["metadata"]["generation"], 1);
        assert_eq!(o["status"]["replicas"], 3);
        let (o, _) = s
            .patch(
                &t,
                Some("default"),
                "d",
                PatchType::Merge,
                br#"{"spec":{"replicas":2}}"#,
                Sub::Main,
                &opts(),
            )
            .unwrap();
        assert_eq!(o["metadata"]["generation"], 2);
    }

    #[test]
    fn finalizers_delay_deletion_and_gc_collects_dependents() {
        let mut s = Store::new();
        let t = rt(&s, "", "configmaps");
        let owner = s.create(&t, Some("default"), cm("owner"), &opts()).unwrap();
        let mut dep = cm("dep");
        dep["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]);
        s.create(&t, Some("default"), dep, &opts()).unwrap();
        let mut fin = cm("fin");
        fin["metadata"]["finalizers"] = json!(["example.com/keep"]);
        s.create(&t, Some("default"), fin, &opts()).unwrap();
        let (code, body) = s
            .delete(&t, Some("default"), "fin", &DeleteOptions::default())
            .unwrap();
        assert_eq!(code, 202);
        assert!(body["metadata"]["deletionTimestamp"].is_string());
        s.patch(
            &t,
            Some("default"),
            "fin",
            PatchType::Merge,
            br#"{"metadata":{"finalizers":null}}"#,
            Sub::Main,
            &opts(),
        )
        .unwrap();
        assert_eq!(s.get(&t, Some("default"), "fin").unwrap_err().code, 404);
        s.delete(&t, Some("default"), "owner", &DeleteOptions::default())
            .unwrap();
        assert_eq!(s.get(&t, Some("default"), "dep").unwrap_err().code, 404);
    }

    #[test]
    fn foreground_waits_for_dependents_and_namespaces_empty_first() {
        let mut s = Store::new();
        let t = rt(&s, "", "configmaps");
        let owner = s.create(&t, Some("default"), cm("owner"), &opts()).unwrap();
        let mut dep = cm("dep");
        dep["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
            "name": "owner", "uid": owner["metadata"]["uid"]}]);
        dep["metadata"]["finalizers"] = json!(["example.com/hold"]);
        s.create(&t, Some("default"), dep, &opts()).unwrap();
        let fg = DeleteOptions {
            propagation: Some(Propagation::Foreground),
            ..DeleteOptions::default()
        };
        let (code, _) = s.delete(&t, Some("default"), "owner", &fg).unwrap();
        assert_eq!(code, 202);
        let o = s.get(&t, Some("default"), "owner").unwrap();
        assert!(o["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(o["metadata"]["finalizers"], json!(["foregroundDeletion"]));
        let d = s.get(&t, Some("default"), "dep").unwrap();
        assert!(
            d["metadata"]["deletionTimestamp"].is_string(),
            "dependent is being deleted"
        );
        s.patch(
            &t,
            Some("default"),
            "dep",
            PatchType::Merge,
            br#"{"metadata":{"finalizers":null}}"#,
            Sub::Main,
            &opts(),
        )
        .unwrap();
        assert_eq!(s.get(&t, Some("default"), "dep").unwrap_err().code, 404);
        assert_eq!(s.get(&t, Some("default"), "owner").unwrap_err().code, 404);

        let ns = rt(&s, "", "namespaces");
        s.create(&ns, None, json!({"metadata": {"name": "gone"}}), &opts())
            .unwrap();
        s.create(&t, Some("gone"), cm("inside"), &opts()).unwrap();
        s.delete(&ns, None, "gone", &DeleteOptions::default())
            .unwrap();
        assert_eq!(s.get(&t, Some("gone"), "inside").unwrap_err().code, 404);
        assert_eq!(s.get(&ns, None, "gone").unwrap_err().code, 404);
        assert_eq!(
            s.create(&t, Some("gone"), cm("late"), &opts())
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn watch_replays_from_resource_version_and_expires() {
        let mut s = Store::new();
        let t = rt(&s, "", "configmaps");
        let rv = s.resource_version();
        s.create(&t, Some("default"), cm("a"), &opts()).unwrap();
        let lo = ListOptions {
            resource_version: Some(rv.to_string()),
            ..ListOptions::default()
        };
        let (replay, _, _) = s.watch(&t, Some("default"), &lo).unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].kind, EventType::Added);
        s.compact();
        assert_eq!(s.watch(&t, Some("default"), &lo).unwrap_err().code, 410);
    }

    #[test]
    fn pagination_walks_all_items() {
        let mut s = Store::new();
        let t = rt(&s, "", "configmaps");
        for i in 0..5 {
            s.create(&t, Some("default"), cm(&format!("c{i}")), &opts())
                .unwrap();
        }
        let mut lo = ListOptions {
            limit: 2,
            ..ListOptions::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = s.list(&t, Some("default"), &lo).unwrap();
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["metadata"]["name"].clone()),
            );
            match page["metadata"]["continue"].as_str() {
                Some(c) => lo.continue_token = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5);
    }
}
