//! Discovery documents (legacy and aggregated), OpenAPI v3 per group/version, and the
//! server-side `Table` rendering `kubectl get` asks for.

use crate::registry::{Registry, ResourceType};
use crate::util::{human_age, scalar_string};
use serde_json::{json, Map, Value};

/// The Kubernetes version the server claims to be.
pub const SERVER_MINOR: &str = "32";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": SERVER_MINOR, "gitVersion": format!("v1.{SERVER_MINOR}.0-flux-testenv"),
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"
    })
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn verbs() -> Value {
    json!(VERBS)
}

fn types_in<'a>(
    registry: &'a Registry,
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a ResourceType> + 'a {
    registry
        .all()
        .filter(move |t| t.group == group && t.version == version)
}

/// `/api` (legacy).
pub fn core_versions(addr: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]})
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": gvs, "preferredVersion": gvs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis` (legacy).
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .group_versions()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| api_group(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>` (legacy).
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    let gv = registry.group_versions();
    let (_, versions) = gv.iter().find(|(g, _)| g == group)?;
    let mut g = api_group(group, versions);
    g["kind"] = "APIGroup".into();
    g["apiVersion"] = "v1".into();
    Some(g)
}

/// `/api/v1` or `/apis/<group>/<version>` (legacy).
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in types_in(registry, group, version) {
        let mut r = json!({"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": verbs()});
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.has_status {
            resources.push(
                json!({"name": format!("{}/status", t.plural), "singularName": "",
                "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
        if crate::server::scalable(t) {
            resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "",
                "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"]}));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// The aggregated discovery content type (apidiscovery.k8s.io/v2).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Aggregated discovery for `/api` (core only) or `/apis` (all named groups).
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = registry
        .group_versions()
        .iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = types_in(registry, g, v)
                        .map(|t| {
                            let kind = json!({"group": t.group, "version": t.version, "kind": t.kind});
                            let mut r = json!({"resource": t.plural, "responseKind": kind,
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular, "verbs": verbs()});
                            if !t.short_names.is_empty() {
                                r["shortNames"] = json!(t.short_names);
                            }
                            if !t.categories.is_empty() {
                                r["categories"] = json!(t.categories);
                            }
                            let mut subs = Vec::new();
                            if t.has_status {
                                subs.push(json!({"subresource": "status", "responseKind": kind,
                                    "verbs": ["get", "patch", "update"]}));
                            }
                            if crate::server::scalable(t) {
                                subs.push(json!({"subresource": "scale",
                                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                                    "verbs": ["get", "patch", "update"]}));
                            }
                            if !subs.is_empty() {
                                r["subresources"] = Value::Array(subs);
                            }
                            r
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut item = json!({"metadata": {"creationTimestamp": null}, "versions": versions});
            if !g.is_empty() {
                item["metadata"]["name"] = g.clone().into();
            }
            item
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: the index of group/version documents.
pub fn openapi_index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, versions) in registry.group_versions() {
        for v in versions {
            let path = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            let doc = openapi_doc(registry, &g, &v);
            let hash = fnv(&doc.to_string());
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn reverse_group(group: &str) -> String {
    if group.is_empty() {
        return "io.k8s.api.core".into();
    }
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    parts.join(".")
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// One group/version's OpenAPI v3 document: paths with the GVK extension and the query
/// parameters kubectl probes (fieldValidation, dryRun), and schemas `kubectl explain` reads.
pub fn openapi_doc(registry: &Registry, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in types_in(registry, group, version) {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let item_path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let schema_name = format!("{}.{}.{}", reverse_group(&t.group), t.version, t.kind);
        let schema_ref = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let mut patch_types = vec![
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ];
        if !t.custom {
            patch_types.push("application/strategic-merge-patch+json");
        }
        let content: Map<String, Value> = patch_types
            .iter()
            .map(|ct| ((*ct).to_string(), json!({"schema": {"type": "object"}})))
            .collect();
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
        let op = |action: &str, extra: Value| {
            let mut o = json!({"operationId": format!("{action}{}", t.kind), "responses": ok.clone(),
                "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk.clone(),
                "parameters": [query_param("dryRun"), query_param("fieldManager"), query_param("fieldValidation")]});
            if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
                o.extend(extra);
            }
            o
        };
        let mut patch_op = op("patch", json!({"requestBody": {"content": content}}));
        if let Some(Value::Array(params)) = patch_op.get_mut("parameters") {
            params.push(query_param("force"));
        }
        paths.insert(item_path, json!({
            "get": op("get", json!({})),
            "put": op("put", json!({"requestBody": {"content": {"application/json": {"schema": schema_ref}}}})),
            "patch": patch_op,
            "delete": op("delete", json!({})),
        }));
        let mut schema = match &t.schema {
            Some(s) => s.clone(),
            None => crate::openapi::builtin_schema(&t.group, &t.version, &t.kind, &mut schemas),
        };
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(schema_name, schema);
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": format!("v1.{SERVER_MINOR}.0")},
        "paths": paths, "components": {"schemas": schemas}})
}

/// Evaluates the subset of JSONPath used by printer columns: `.a.b`, `[0]`, `[?(@.k=="v")]`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = obj;
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, value) = filter.split_once("==")?;
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|i| i.get(field.trim()).map(scalar_string).as_deref() == Some(value))?;
            } else {
                cur = cur.as_array()?.get(inner.trim().parse::<usize>().ok()?)?;
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

fn column(name: &str, type_: &str, format: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

type Cell = fn(&Value) -> Value;

fn count(v: &Value) -> Value {
    v.as_object().map_or(0, serde_json::Map::len).into()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The extra columns `kubectl get` shows for common built-in kinds (between Name and Age).
fn builtin_columns(rt: &ResourceType) -> Vec<(&'static str, Cell)> {
    if rt.custom {
        return Vec::new();
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => vec![("Status", |o| o["status"]["phase"].clone())],
        ("", "ConfigMap") => vec![("Data", |o| {
            (int(&count(&o["data"])) + int(&count(&o["binaryData"]))).into()
        })],
        ("", "Secret") => vec![
            ("Type", |o| o["type"].clone()),
            ("Data", |o| count(&o["data"])),
        ],
        ("", "Service") => vec![
            ("Type", |o| o["spec"]["type"].clone()),
            ("Cluster-IP", |o| o["spec"]["clusterIP"].clone()),
        ],
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet") => vec![
            ("Ready", |o| {
                format!(
                    "{}/{}",
                    int(&o["status"]["readyReplicas"]),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                )
                .into()
            }),
            ("Up-to-date", |o| {
                int(&o["status"]["updatedReplicas"]).into()
            }),
            ("Available", |o| {
                int(&o["status"]["availableReplicas"]).into()
            }),
        ],
        ("batch", "Job") => vec![("Completions", |o| {
            format!(
                "{}/{}",
                int(&o["status"]["succeeded"]),
                o["spec"]["completions"].as_i64().unwrap_or(1)
            )
            .into()
        })],
        _ => Vec::new(),
    }
}

/// Renders objects as a `meta.k8s.io/v1` Table.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: &str,
    include_object: &str,
) -> Value {
    let mut columns = vec![column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    )];
    let custom_columns: Vec<Value> = rt.printer_columns.clone();
    if custom_columns.is_empty() {
        for (name, _) in builtin_columns(rt) {
            columns.push(column(name, "string", "", 0, ""));
        }
        columns.push(column("Age", "string", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."));
    } else {
        for c in &custom_columns {
            columns.push(column(
                c["name"].as_str().unwrap_or_default(),
                c["type"].as_str().unwrap_or("string"),
                c["format"].as_str().unwrap_or_default(),
                c["priority"].as_i64().unwrap_or(0),
                c["description"].as_str().unwrap_or_default(),
            ));
        }
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![Value::from(o["metadata"]["name"].as_str().unwrap_or_default())];
            if custom_columns.is_empty() {
                for (_, cell) in builtin_columns(rt) {
                    cells.push(cell(o));
                }
                cells.push(human_age(o["metadata"]["creationTimestamp"].as_str()).into());
            } else {
                for c in &custom_columns {
                    let v = json_path(o, c["jsonPath"].as_str().unwrap_or_default());
                    let cell = match (c["type"].as_str(), v) {
                        (_, None) => Value::Null,
                        (Some("date"), Some(v)) => human_age(v.as_str()).into(),
                        (_, Some(v)) => v.clone(),
                    };
                    cells.push(cell);
                }
            }
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_filters_conditions() {
        let o = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&Value::from("True"))
        );
        assert_eq!(
            json_path(&o, ".status.conditions[0].type"),
            Some(&Value::from("A"))
        );
        assert_eq!(json_path(&o, ".status.missing"), None);
    }

    #[test]
    fn discovery_lists_core_and_groups() {
        let r = Registry::default();
        let core = resource_list(&r, "", "v1").unwrap();
        assert!(core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "configmaps"));
        let groups = group_list(&r);
        assert!(groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "apps"));
        let agg = aggregated(&r, false);
        assert!(agg["items"].as_array().unwrap().len() > 5);
    }
}
