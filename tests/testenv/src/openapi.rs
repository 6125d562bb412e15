//! OpenAPI schemas for built-in kinds, generated from k8s-openapi's JSON schemas, with the
//! strategic-merge extensions (`x-kubernetes-patch-merge-key`) that kubectl reads.

use k8s_openapi::api::{
    apps, autoscaling, batch, coordination, core, events, networking, policy, rbac, scheduling,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

fn generate<T: JsonSchema>(schemas: &mut Map<String, Value>) -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let root = generator.root_schema_for::<T>();
    let mut value = root.to_value();
    if let Some(map) = value.as_object_mut() {
        map.remove("$schema");
        if let Some(Value::Object(components)) = map.remove("components") {
            if let Some(Value::Object(defs)) = components.get("schemas") {
                for (name, schema) in defs {
                    let mut schema = schema.clone();
                    add_patch_extensions(&mut schema);
                    schemas.entry(name.clone()).or_insert(schema);
                }
            }
        }
    }
    add_patch_extensions(&mut value);
    value
}

/// Adds patch merge keys/strategies to array properties that merge by key in the real API.
fn add_patch_extensions(schema: &mut Value) {
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, prop) in props.iter_mut() {
        let items_ref = prop["items"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = match name.as_str() {
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "imagePullSecrets"
            | "env"
            | "resourceClaims" => Some("name"),
            "volumeMounts" => Some("mountPath"),
            "volumeDevices" => Some("devicePath"),
            "hostAliases" => Some("ip"),
            "ownerReferences" => Some("uid"),
            "conditions" => Some("type"),
            "topologySpreadConstraints" => Some("topologyKey"),
            "ports" if items_ref.ends_with("ContainerPort") => Some("containerPort"),
            "ports" if items_ref.ends_with("ServicePort") => Some("port"),
            _ => None,
        };
        if let (Some(key), Some(p)) = (key, prop.as_object_mut()) {
            p.insert("x-kubernetes-patch-merge-key".into(), key.into());
            p.insert("x-kubernetes-patch-strategy".into(), "merge".into());
        } else if name == "finalizers" {
            if let Some(p) = prop.as_object_mut() {
                p.insert("x-kubernetes-patch-strategy".into(), "merge".into());
            }
        }
    }
}

/// The schema of a built-in kind; referenced definitions are added to `schemas`.
pub fn builtin_schema(
    group: &str,
    version: &str,
    kind: &str,
    schemas: &mut Map<String, Value>,
) -> Value {
    let s = schemas;
    match (group, version, kind) {
        ("", "v1", "Namespace") => generate::<core::v1::Namespace>(s),
        ("", "v1", "ConfigMap") => generate::<core::v1::ConfigMap>(s),
        ("", "v1", "Secret") => generate::<core::v1::Secret>(s),
        ("", "v1", "Service") => generate::<core::v1::Service>(s),
        ("", "v1", "ServiceAccount") => generate::<core::v1::ServiceAccount>(s),
        ("", "v1", "Event") => generate::<core::v1::Event>(s),
        ("", "v1", "PersistentVolumeClaim") => generate::<core::v1::PersistentVolumeClaim>(s),
        ("", "v1", "ResourceQuota") => generate::<core::v1::ResourceQuota>(s),
        ("", "v1", "Pod") => generate::<core::v1::Pod>(s),
        ("", "v1", "Endpoints") => generate::<core::v1::Endpoints>(s),
        ("", "v1", "LimitRange") => generate::<core::v1::LimitRange>(s),
        ("apps", "v1", "Deployment") => generate::<apps::v1::Deployment>(s),
        ("apps", "v1", "StatefulSet") => generate::<apps::v1::StatefulSet>(s),
        ("apps", "v1", "DaemonSet") => generate::<apps::v1::DaemonSet>(s),
        ("apps", "v1", "ReplicaSet") => generate::<apps::v1::ReplicaSet>(s),
        ("batch", "v1", "Job") => generate::<batch::v1::Job>(s),
        ("batch", "v1", "CronJob") => generate::<batch::v1::CronJob>(s),
        ("networking.k8s.io", "v1", "Ingress") => generate::<networking::v1::Ingress>(s),
        ("networking.k8s.io", "v1", "IngressClass") => generate::<networking::v1::IngressClass>(s),
        ("networking.k8s.io", "v1", "NetworkPolicy") => {
            generate::<networking::v1::NetworkPolicy>(s)
        }
        ("rbac.authorization.k8s.io", "v1", "Role") => generate::<rbac::v1::Role>(s),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => generate::<rbac::v1::RoleBinding>(s),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => generate::<rbac::v1::ClusterRole>(s),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            generate::<rbac::v1::ClusterRoleBinding>(s)
        }
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            generate::<apiext::CustomResourceDefinition>(s)
        }
        ("coordination.k8s.io", "v1", "Lease") => generate::<coordination::v1::Lease>(s),
        ("events.k8s.io", "v1", "Event") => generate::<events::v1::Event>(s),
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            generate::<scheduling::v1::PriorityClass>(s)
        }
        ("policy", "v1", "PodDisruptionBudget") => generate::<policy::v1::PodDisruptionBudget>(s),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            generate::<autoscaling::v2::HorizontalPodAutoscaler>(s)
        }
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    }
}
