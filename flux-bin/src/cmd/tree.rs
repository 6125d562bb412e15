//! `flux-rs tree kustomization NAME`: the objects a Kustomization manages (its
//! `status.inventory`), with nested Kustomizations and HelmReleases expanded, like `flux tree`.

use std::io::Write;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::Value;

use super::cluster::{block_on, require_kind, Cluster, ClusterArgs};

/// Arguments of `flux-rs tree`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # What flux-system applied, nested Kustomizations and HelmReleases included
  flux-rs tree kustomization flux-system

  # Only the Flux objects
  flux-rs tree ks flux-system --compact")]
pub struct TreeArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// What to show.
    #[command(subcommand)]
    pub what: TreeWhat,
}

/// Tree roots.
#[derive(Debug, clap::Subcommand)]
pub enum TreeWhat {
    /// A Kustomization's inventory.
    #[command(visible_alias = "ks")]
    Kustomization {
        /// The Kustomization's name.
        name: String,
        /// Show only Flux objects.
        #[arg(long)]
        compact: bool,
    },
}

/// One object of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// API group (empty for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// `Kind/namespace/name` or `Kind/name`.
    pub fn label(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Parses an inventory id `<namespace>_<name>_<group>_<kind>`.
pub fn parse_inventory_id(id: &str) -> Option<ObjectRef> {
    let (namespace, rest) = id.split_once('_')?;
    let (rest, kind) = rest.rsplit_once('_')?;
    let (name, group) = rest.rsplit_once('_')?;
    (!name.is_empty() && !kind.is_empty()).then(|| ObjectRef {
        group: group.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    })
}

/// A printed tree node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The line.
    pub label: String,
    /// Children, in inventory order.
    pub children: Vec<Node>,
}

/// Draws the tree with flux's box characters.
pub fn render(root: &Node) -> String {
    fn walk(node: &Node, prefix: &str, out: &mut String) {
        let count = node.children.len();
        for (i, child) in node.children.iter().enumerate() {
            let last = i + 1 == count;
            out.push_str(prefix);
            out.push_str(if last { "└── " } else { "├── " });
            out.push_str(&child.label);
            out.push('\n');
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            walk(child, &deeper, out);
        }
    }
    let mut out = format!("{}\n", root.label);
    walk(root, "", &mut out);
    out
}

/// Objects of a Helm release manifest (namespaced ones default to the release namespace).
pub fn manifest_objects(manifest: &str, release_namespace: &str) -> Vec<ObjectRef> {
    const CLUSTER_SCOPED: [&str; 8] = [
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
    ];
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(manifest) {
        let Ok(object) = <Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        let (Some(api_version), Some(kind), Some(name)) = (
            object["apiVersion"].as_str(),
            object["kind"].as_str(),
            object["metadata"]["name"].as_str(),
        ) else {
            continue;
        };
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let namespace = if CLUSTER_SCOPED.contains(&kind) {
            ""
        } else {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or(release_namespace)
        };
        out.push(ObjectRef {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        });
    }
    out
}

/// Runs `flux-rs tree`.
pub fn run(args: &TreeArgs) -> anyhow::Result<()> {
    let TreeWhat::Kustomization { name, compact } = &args.what;
    let text = block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let root = ObjectRef {
            group: "kustomize.toolkit.fluxcd.io".into(),
            kind: "Kustomization".into(),
            namespace: cluster.namespace.clone(),
            name: name.clone(),
        };
        let node = expand(&cluster, &root, *compact, 0, true).await?;
        Ok(render(&node))
    })?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// Builds the node of one object; Kustomizations and HelmReleases get children. Errors
/// reading the root are returned; nested objects that cannot be read show up as leaves.
async fn expand(
    cluster: &Cluster,
    object: &ObjectRef,
    compact: bool,
    depth: usize,
    root: bool,
) -> anyhow::Result<Node> {
    let mut node = Node {
        label: object.label(),
        children: Vec::new(),
    };
    // A Kustomization may (wrongly) list itself or a parent; 32 levels stop any cycle.
    if depth > 32 {
        return Ok(node);
    }
    let children = match (object.group.as_str(), object.kind.as_str()) {
        ("kustomize.toolkit.fluxcd.io", "Kustomization") => {
            let kind = require_kind("Kustomization")?;
            let ks = match cluster.get(&kind, &object.namespace, &object.name).await {
                Ok(ks) => ks,
                Err(err) if root => return Err(err),
                Err(_) => return Ok(node),
            };
            ks["status"]["inventory"]["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["id"].as_str().and_then(parse_inventory_id))
                .collect()
        }
        ("helm.toolkit.fluxcd.io", "HelmRelease") => helm_objects(cluster, object).await,
        _ => Vec::new(),
    };
    for child in children {
        let is_flux = child.group.ends_with(".toolkit.fluxcd.io");
        if compact && !is_flux {
            continue;
        }
        node.children
            .push(Box::pin(expand(cluster, &child, compact, depth + 1, false)).await?);
    }
    Ok(node)
}

/// The objects of a HelmRelease's current release, read from Helm's storage Secret.
async fn helm_objects(cluster: &Cluster, object: &ObjectRef) -> Vec<ObjectRef> {
    let Ok(kind) = require_kind("HelmRelease") else {
        return Vec::new();
    };
    let Ok(hr) = cluster.get(&kind, &object.namespace, &object.name).await else {
        return Vec::new();
    };
    let latest = &hr["status"]["history"][0];
    let (Some(release), Some(version)) = (latest["name"].as_str(), latest["version"].as_i64())
    else {
        return Vec::new();
    };
    let release_ns = latest["namespace"].as_str().unwrap_or(&object.namespace);
    let storage_ns = hr["status"]["storageNamespace"]
        .as_str()
        .or_else(|| hr["spec"]["storageNamespace"].as_str())
        .unwrap_or(&object.namespace);
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), storage_ns);
    let key = flux_helm::release::storage_key(release, version);
    let Ok(Some(secret)) = secrets.get_opt(&key).await else {
        return Vec::new();
    };
    let Ok(secret) = serde_json::to_value(secret) else {
        return Vec::new();
    };
    match flux_helm::release::from_secret(&secret) {
        Ok(release) => manifest_objects(&release.manifest, release_ns),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_ids() {
        assert_eq!(
            parse_inventory_id("apps_web_apps_Deployment")
                .unwrap()
                .label(),
            "Deployment/apps/web"
        );
        let crd = parse_inventory_id(
            "_alerts.notification.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition",
        )
        .unwrap();
        assert_eq!(
            crd.label(),
            "CustomResourceDefinition/alerts.notification.toolkit.fluxcd.io"
        );
        let core = parse_inventory_id("flux-system_cfg__ConfigMap").unwrap();
        assert_eq!((core.group.as_str(), core.kind.as_str()), ("", "ConfigMap"));
        assert_eq!(parse_inventory_id("garbage"), None);
    }

    #[test]
    fn renders_nested_trees() {
        let leaf = |l: &str| Node {
            label: l.into(),
            children: vec![],
        };
        let root = Node {
            label: "Kustomization/flux-system/flux-system".into(),
            children: vec![
                leaf("Namespace/apps"),
                Node {
                    label: "Kustomization/flux-system/apps".into(),
                    children: vec![leaf("Deployment/apps/web"), leaf("Service/apps/web")],
                },
                leaf("GitRepository/flux-system/flux-system"),
            ],
        };
        assert_eq!(
            render(&root),
            "Kustomization/flux-system/flux-system\n\
             ├── Namespace/apps\n\
             ├── Kustomization/flux-system/apps\n\
             │   ├── Deployment/apps/web\n\
             │   └── Service/apps/web\n\
             └── GitRepository/flux-system/flux-system\n"
        );
    }

    #[test]
    fn helm_manifest_objects() {
        let manifest = "---\n# Source: x\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: web\n";
        let objects = manifest_objects(manifest, "apps");
        let labels: Vec<String> = objects.iter().map(ObjectRef::label).collect();
        assert_eq!(labels, ["Service/apps/web", "ClusterRole/web"]);
    }
}
