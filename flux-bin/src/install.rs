//! The install manifests (`gotk-components.yaml`): namespace, our CRDs, RBAC, the four
//! controller Deployments with their Services, and NetworkPolicies — in the shape Flux's own
//! install uses (ports, probes, security contexts, flags, labels), pointing at flux-rs images.
//!
//! Pure: [`manifests`] returns the objects; the CLI prints or applies them.

use serde_json::{json, Value};

/// The controllers, in install order.
pub const COMPONENTS: [&str; 4] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Namespace of the controllers (`flux-system`).
    pub namespace: String,
    /// Image registry; images are `<registry>/<component>:v<version>`.
    pub registry: String,
    /// Version label and image tag (without the `v`).
    pub version: String,
    /// Which controllers to install.
    pub components: Vec<String>,
    /// Add NetworkPolicies that restrict ingress to the controllers.
    pub network_policy: bool,
    /// Reconcile objects in every namespace (else only in `namespace`).
    pub watch_all_namespaces: bool,
    /// The cluster's DNS domain, for the event and artifact addresses.
    pub cluster_domain: String,
    /// Controller log level.
    pub log_level: String,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            namespace: "flux-system".into(),
            registry: "ghcr.io/flux-rs".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            components: COMPONENTS.iter().map(|c| (*c).to_string()).collect(),
            network_policy: true,
            watch_all_namespaces: true,
            cluster_domain: "cluster.local".into(),
            log_level: "info".into(),
        }
    }
}

/// Every object of the install, in apply order.
pub fn manifests(options: &InstallOptions) -> Result<Vec<Value>, String> {
    for component in &options.components {
        if !COMPONENTS.contains(&component.as_str()) {
            return Err(format!(
                "--components: unknown component {component:?} (known: {})",
                COMPONENTS.join(", ")
            ));
        }
    }
    let ns = options.namespace.as_str();
    let mut out = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ns,
            "labels": merge_labels(options, None, json!({
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/warn-version": "latest",
            })),
        },
    })];
    for crd in flux_api::crds() {
        let mut crd = serde_json::to_value(crd).map_err(|e| e.to_string())?;
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("");
        let component = match group.split('.').next() {
            Some("source") => "source-controller",
            Some("kustomize") => "kustomize-controller",
            Some("helm") => "helm-controller",
            _ => "notification-controller",
        };
        crd["metadata"]["labels"] = merge_labels(options, Some(component), json!({}));
        out.push(crd);
    }
    for component in &options.components {
        out.push(json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": component, "namespace": ns, "labels": merge_labels(options, None, json!({}))},
        }));
    }
    out.extend(rbac(options));
    for component in &options.components {
        out.extend(services(options, component));
    }
    for component in &options.components {
        out.push(deployment(options, component));
    }
    if options.network_policy {
        out.extend(network_policies(options));
    }
    Ok(out)
}

fn merge_labels(options: &InstallOptions, component: Option<&str>, extra: Value) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/instance": options.namespace,
        "app.kubernetes.io/part-of": "flux",
        "app.kubernetes.io/version": format!("v{}", options.version),
    });
    if let Some(component) = component {
        labels["app.kubernetes.io/component"] = json!(component);
    }
    if let (Some(labels), Value::Object(extra)) = (labels.as_object_mut(), extra) {
        labels.extend(extra);
    }
    labels
}

fn rbac(options: &InstallOptions) -> Vec<Value> {
    let ns = &options.namespace;
    let labels = merge_labels(options, None, json!({}));
    let subjects: Vec<Value> = options
        .components
        .iter()
        .map(|c| json!({"kind": "ServiceAccount", "name": c, "namespace": ns}))
        .collect();
    let reconcilers: Vec<Value> = options
        .components
        .iter()
        .filter(|c| *c == "kustomize-controller" || *c == "helm-controller")
        .map(|c| json!({"kind": "ServiceAccount", "name": c, "namespace": ns}))
        .collect();
    let groups = [
        "source.toolkit.fluxcd.io",
        "kustomize.toolkit.fluxcd.io",
        "helm.toolkit.fluxcd.io",
        "notification.toolkit.fluxcd.io",
    ];
    let mut out = vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": format!("crd-controller-{ns}"), "labels": labels},
            "rules": [
                {"apiGroups": groups, "resources": ["*"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["namespaces", "secrets", "configmaps", "serviceaccounts"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("crd-controller-{ns}"), "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("crd-controller-{ns}")},
            "subjects": subjects,
        }),
    ];
    if !reconcilers.is_empty() {
        // kustomize-controller and helm-controller apply arbitrary objects: cluster-admin,
        // unless tenants are locked down with serviceAccountName impersonation.
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("cluster-reconciler-{ns}"), "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": reconcilers,
        }));
    }
    out
}

fn services(options: &InstallOptions, component: &str) -> Vec<Value> {
    let service = |name: &str, target: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": options.namespace,
                "labels": merge_labels(options, Some(component), json!({"control-plane": "controller"})),
            },
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": component},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": target}],
            },
        })
    };
    match component {
        "source-controller" => vec![service("source-controller", "http")],
        "notification-controller" => vec![
            service("notification-controller", "http"),
            service("webhook-receiver", "http-webhook"),
        ],
        _ => Vec::new(),
    }
}

fn deployment(options: &InstallOptions, component: &str) -> Value {
    let ns = &options.namespace;
    let domain = &options.cluster_domain;
    let mut args = vec![
        format!("--events-addr=http://notification-controller.{ns}.svc.{domain}./"),
        format!("--watch-all-namespaces={}", options.watch_all_namespaces),
        format!("--log-level={}", options.log_level),
        "--log-encoding=json".to_string(),
        "--enable-leader-election".to_string(),
    ];
    let mut ports = vec![
        json!({"containerPort": 8080, "name": "http-prom", "protocol": "TCP"}),
        json!({"containerPort": 9440, "name": "healthz", "protocol": "TCP"}),
    ];
    let mut volumes = vec![json!({"name": "temp", "emptyDir": {}})];
    let mut mounts = vec![json!({"name": "temp", "mountPath": "/tmp"})];
    let mut cpu_request = "100m";
    match component {
        "source-controller" => {
            args.push("--storage-path=/data".into());
            args.push(format!(
                "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.{domain}."
            ));
            ports.insert(
                0,
                json!({"containerPort": 9090, "name": "http", "protocol": "TCP"}),
            );
            volumes.push(json!({"name": "data", "emptyDir": {}}));
            mounts.push(json!({"name": "data", "mountPath": "/data"}));
            cpu_request = "50m";
        }
        "notification-controller" => {
            // It receives events rather than sending them.
            args.retain(|a| !a.starts_with("--events-addr"));
            ports.insert(
                0,
                json!({"containerPort": 9292, "name": "http-webhook", "protocol": "TCP"}),
            );
            ports.insert(
                0,
                json!({"containerPort": 9090, "name": "http", "protocol": "TCP"}),
            );
        }
        _ => {}
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": component,
            "namespace": ns,
            "labels": merge_labels(options, Some(component), json!({"control-plane": "controller"})),
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": component}},
            "template": {
                "metadata": {
                    "labels": {"app": component},
                    "annotations": {"prometheus.io/port": "8080", "prometheus.io/scrape": "true"},
                },
                "spec": {
                    "serviceAccountName": component,
                    "priorityClassName": "system-cluster-critical",
                    "terminationGracePeriodSeconds": 10,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "securityContext": {"fsGroup": 1337},
                    "containers": [{
                        "name": "manager",
                        "image": format!("{}/{component}:v{}", options.registry, options.version),
                        "imagePullPolicy": "IfNotPresent",
                        "args": args,
                        "env": [{"name": "RUNTIME_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                        "ports": ports,
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "healthz"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "healthz"}},
                        "resources": {
                            "limits": {"cpu": "1000m", "memory": "1Gi"},
                            "requests": {"cpu": cpu_request, "memory": "64Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    })
}

fn network_policies(options: &InstallOptions) -> Vec<Value> {
    let policy = |name: &str, spec: Value| {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": options.namespace, "labels": merge_labels(options, None, json!({}))},
            "spec": spec,
        })
    };
    vec![
        // Egress anywhere; ingress only from pods of this namespace.
        policy(
            "allow-egress",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                   "egress": [{}], "ingress": [{"from": [{"podSelector": {}}]}]}),
        ),
        // Prometheus may scrape metrics from any namespace.
        policy(
            "allow-scraping",
            json!({"podSelector": {}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080, "protocol": "TCP"}]}]}),
        ),
        // Webhooks reach the notification-controller's receiver from anywhere.
        policy(
            "allow-webhooks",
            json!({"podSelector": {"matchLabels": {"app": "notification-controller"}}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    #[test]
    fn the_default_install_has_every_piece() {
        let objects = manifests(&InstallOptions::default()).unwrap();
        let kinds = kinds(&objects);
        assert_eq!(kinds[0], "Namespace/flux-system");
        assert_eq!(
            kinds
                .iter()
                .filter(|k| k.starts_with("CustomResourceDefinition/"))
                .count(),
            11
        );
        for component in COMPONENTS {
            assert!(
                kinds.contains(&format!("Deployment/{component}")),
                "{component}"
            );
            assert!(
                kinds.contains(&format!("ServiceAccount/{component}")),
                "{component}"
            );
        }
        for name in [
            "Service/source-controller",
            "Service/notification-controller",
            "Service/webhook-receiver",
            "NetworkPolicy/allow-egress",
            "ClusterRoleBinding/cluster-reconciler-flux-system",
        ] {
            assert!(kinds.contains(&name.to_string()), "{name}");
        }
        let source = objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "source-controller")
            .unwrap();
        let container = &source["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["image"],
            format!(
                "ghcr.io/flux-rs/source-controller:v{}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(container["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--storage-path=/data")));
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    }

    #[test]
    fn options_shape_the_install() {
        let options = InstallOptions {
            namespace: "gitops".into(),
            components: vec!["source-controller".into(), "kustomize-controller".into()],
            network_policy: false,
            ..InstallOptions::default()
        };
        let objects = manifests(&options).unwrap();
        let kinds = kinds(&objects);
        assert!(!kinds.iter().any(|k| k.starts_with("NetworkPolicy/")));
        assert!(!kinds.contains(&"Deployment/helm-controller".to_string()));
        assert!(objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .all(|o| o["metadata"]["namespace"] == "gitops"));
        let err = manifests(&InstallOptions {
            components: vec!["image-automation".into()],
            ..InstallOptions::default()
        })
        .unwrap_err();
        assert!(
            err.contains("unknown component \"image-automation\""),
            "{err}"
        );
    }
}
