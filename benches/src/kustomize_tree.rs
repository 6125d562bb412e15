//! Generated kustomize trees for the build benchmark: `apps` applications (each a
//! Deployment, a Service and a ConfigMap) in a base, and an overlay with namespace,
//! namePrefix, labels, images, strategic-merge and JSON 6902 patches with targets, a
//! configMapGenerator and a component.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

fn app(i: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i:04}
  labels:
    app: app-{i:04}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: app-{i:04}
  template:
    metadata:
      labels:
        app: app-{i:04}
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports:
        - containerPort: 8080
        envFrom:
        - configMapRef:
            name: app-{i:04}-config
        volumeMounts:
        - name: config
          mountPath: /etc/app
      volumes:
      - name: config
        configMap:
          name: app-{i:04}-config
---
apiVersion: v1
kind: Service
metadata:
  name: app-{i:04}
  labels:
    app: app-{i:04}
    expose: \"{expose}\"
spec:
  selector:
    app: app-{i:04}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{i:04}-config
data:
  LOG_LEVEL: info
  APP_ID: \"{i}\"
",
        expose = i.is_multiple_of(2)
    )
}

const COMPONENT: &str = "apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
- target:
    kind: Deployment
  patch: |-
    - op: add
      path: /spec/template/metadata/annotations
      value:
        prometheus.io/scrape: \"true\"
";

const OVERLAY: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../base
components:
- ../components/monitoring
namespace: prod
namePrefix: prod-
labels:
- pairs:
    env: prod
  includeTemplates: true
images:
- name: nginx
  newName: registry.example.com/nginx
  newTag: \"1.27\"
configMapGenerator:
- name: overlay-settings
  literals:
  - REGION=eu-west-1
  - TIER=gold
patches:
- target:
    kind: Deployment
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      template:
        spec:
          containers:
          - name: app
            resources:
              limits:
                memory: 256Mi
- target:
    kind: Service
    labelSelector: expose=true
  patch: |-
    - op: add
      path: /spec/type
      value: LoadBalancer
";

/// Writes the tree under `root` and returns the overlay directory to build.
pub fn write_tree(root: &Path, apps: usize) -> io::Result<PathBuf> {
    let base = root.join("base");
    let component = root.join("components/monitoring");
    let overlay = root.join("overlay");
    for dir in [&base, &component, &overlay] {
        std::fs::create_dir_all(dir)?;
    }
    let mut kustomization = String::from("resources:\n");
    for i in 0..apps {
        let file = format!("app-{i:04}.yaml");
        std::fs::write(base.join(&file), app(i))?;
        let _ = writeln!(kustomization, "- {file}");
    }
    std::fs::write(base.join("kustomization.yaml"), kustomization)?;
    std::fs::write(component.join("kustomization.yaml"), COMPONENT)?;
    std::fs::write(overlay.join("kustomization.yaml"), OVERLAY)?;
    Ok(overlay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_builds_with_every_app() {
        let dir = tempfile::tempdir().expect("tempdir");
        let overlay = write_tree(dir.path(), 10).expect("write");
        let fs = flux_kustomize::DiskFs::confined(dir.path()).expect("fs");
        let list = flux_kustomize::build(&fs, &overlay).expect("build");
        // 3 objects per app plus the generated ConfigMap.
        assert_eq!(list.len(), 31);
        assert!(list.iter().all(|r| r.namespace() == "prod"));
    }
}
