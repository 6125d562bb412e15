//! helm-controller end to end on flux-testenv. The test plays source-controller: it packages
//! a small chart with flux-helm, serves the `.tgz` from a local HTTP server and sets the
//! HelmChart's `status.artifact` (with the digest) itself.

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common_perf_e2e/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;
use sha2::Digest as _;

use flux_api::helm::HelmRelease;
use flux_bin::controllers::helm::{self, HelmOptions};

const CHART_YAML: &str = "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0\"\n";
const VALUES_YAML: &str = "message: hello\nbroken: false\n";
const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  message: {{ .Values.message | quote }}
  from: {{ .Values.fromConfigMap | default "none" | quote }}
"#;
const DEPLOYMENT: &str = r"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
";
// An object the API refuses (invalid name): the upgrade fails while applying.
const BROKEN: &str = r"{{- if .Values.broken }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: Invalid_Name
data: {}
{{- end }}
";

// Hooks: a post-install one that stays, a pre-upgrade one deleted once it succeeded.
const HOOKS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-installed
  annotations:
    "helm.sh/hook": post-install
data: {ran: "yes"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-pre-upgrade
  annotations:
    "helm.sh/hook": pre-upgrade
    "helm.sh/hook-delete-policy": hook-succeeded
data: {ran: "yes"}
"#;

const CRD: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.example.com
spec:
  group: demo.example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

fn package_chart() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    std::fs::create_dir_all(root.join("templates")).unwrap();
    std::fs::write(root.join("Chart.yaml"), CHART_YAML).unwrap();
    std::fs::write(root.join("values.yaml"), VALUES_YAML).unwrap();
    std::fs::write(root.join("templates/configmap.yaml"), CONFIGMAP).unwrap();
    std::fs::write(root.join("templates/deployment.yaml"), DEPLOYMENT).unwrap();
    std::fs::write(root.join("templates/broken.yaml"), BROKEN).unwrap();
    std::fs::write(root.join("templates/hooks.yaml"), HOOKS).unwrap();
    std::fs::create_dir_all(root.join("crds")).unwrap();
    std::fs::write(root.join("crds/widgets.yaml"), CRD).unwrap();
    flux_helm::package(&root).unwrap()
}

async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(hr: &HelmRelease, type_: &str) -> Option<(String, String, String)> {
    hr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn release_secrets(secrets: &Api<Secret>, name: &str) -> Vec<Secret> {
    let mut list = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={name}")))
        .await
        .unwrap()
        .items;
    list.sort_by_key(|s| s.metadata.name.clone());
    list
}

fn label<'s>(secret: &'s Secret, key: &str) -> &'s str {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

/// When a real Helm 4 is installed (`FLUX_HELM_BIN`, or the oracle from
/// `../shared/tools/install-oracles`), it must read the release we stored.
async fn real_helm_reads_the_release(env: &flux_testenv::TestEnv) {
    let helm = std::env::var_os("FLUX_HELM_BIN")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".cache/flux-oracles/bin/helm4"))
        })
        .filter(|p| p.exists());
    let Some(helm) = helm else {
        eprintln!("notice: no helm binary (FLUX_HELM_BIN); skipping the real-helm read check");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    // tokio's process API: the API server runs on this test's runtime and must keep serving.
    let run = async |args: &[&str]| {
        let out = tokio::process::Command::new(&helm)
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HELM_CACHE_HOME", dir.path().join("cache"))
            .env("HELM_CONFIG_HOME", dir.path().join("config"))
            .env("HELM_DATA_HOME", dir.path().join("data"))
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let status = run(&["status", "demo", "-n", "apps", "-o", "json"]).await;
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["version"], 1);
    let values = run(&["get", "values", "demo", "-n", "apps", "-o", "json"]).await;
    assert_eq!(values["message"], "hello");
}

#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn helm_release_install_upgrade_rollback_and_suspend() {
    let env = flux_testenv::TestEnv::start().await.unwrap();
    for crd in flux_api::crds() {
        env.create_yaml("crds", &serde_yaml::to_string(&crd).unwrap())
            .unwrap();
    }
    env.set_workloads_ready(true);
    let archive = package_chart();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&archive)));
    let url = common::serve_bytes(archive, "/helmchart/apps/apps-demo/demo-0.1.0.tgz").await;
    env.create_yaml(
        "objects",
        r"
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: extra-values, namespace: apps}
data:
  values.yaml: |
    fromConfigMap: cm
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: demo, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chart:
    spec:
      chart: demo
      version: '0.1.x'
      sourceRef: {kind: HelmRepository, name: charts}
  upgrade:
    remediation: {retries: 1}
  driftDetection: {mode: warn}
  postRenderers:
    - kustomize:
        patches:
          - target: {kind: ConfigMap, name: demo-config}
            patch: |
              apiVersion: v1
              kind: ConfigMap
              metadata:
                name: demo-config
                annotations: {post-rendered: 'yes'}
  valuesFrom:
    - {kind: ConfigMap, name: extra-values}
    - {kind: Secret, name: missing-but-optional, optional: true}
  values:
    message: hello
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: sleeping, namespace: apps}
spec:
  interval: 10m
  suspend: true
  chart:
    spec:
      chart: demo
      sourceRef: {kind: HelmRepository, name: charts}
",
    )
    .unwrap();

    let client = env.client().unwrap();
    let ctx = helm::context(
        client.clone(),
        HelmOptions {
            retry_interval: Duration::from_millis(500),
            ..HelmOptions::default()
        },
        Arc::default(),
    );
    let controller = tokio::spawn(helm::run(ctx));

    // The HelmChart is created from the template, in the source namespace, named <ns>-<name>.
    let charts: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "apps",
        &ApiResource::erase::<flux_api::source::HelmChart>(&()),
    );
    let chart = eventually("the HelmChart", 20, || {
        let charts = charts.clone();
        async move { charts.get_opt("apps-demo").await.unwrap() }
    })
    .await;
    assert_eq!(chart.data["spec"]["chart"], "demo");
    assert_eq!(chart.data["spec"]["version"], "0.1.x");
    assert_eq!(chart.data["spec"]["sourceRef"]["kind"], "HelmRepository");
    assert_eq!(chart.data["spec"]["interval"], "10m");

    // Play source-controller: the artifact is ready.
    env.patch_status(
        "source.toolkit.fluxcd.io/v1",
        "HelmChart",
        Some("apps"),
        "apps-demo",
        json!({
            "observedGeneration": chart.metadata.generation,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ChartPullSucceeded",
                            "message": "pulled 'demo' chart with version '0.1.0'",
                            "lastTransitionTime": "2026-11-23T06:00:00Z"}],
            "artifact": {"path": "helmchart/apps/apps-demo/demo-0.1.0.tgz", "url": url,
                         "revision": "0.1.0", "digest": digest,
                         "lastUpdateTime": "2026-11-23T06:00:00Z"}
        }),
    )
    .unwrap();

    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "apps");
    let installed = eventually("install", 30, || {
        let releases = releases.clone();
        async move {
            let hr = releases.get("demo").await.unwrap();
            (condition(&hr, "Ready").map(|c| c.0) == Some("True".into())).then_some(hr)
        }
    })
    .await;
    assert_eq!(
        condition(&installed, "Ready").unwrap(),
        (
            "True".into(),
            "InstallSucceeded".into(),
            "Helm install succeeded for release apps/demo.v1 with chart demo@0.1.0".into()
        )
    );
    assert_eq!(
        condition(&installed, "Released").unwrap().1,
        "InstallSucceeded"
    );
    let status = installed.status.clone().unwrap();
    assert_eq!(status.helm_chart.as_deref(), Some("apps/apps-demo"));
    assert_eq!(status.storage_namespace.as_deref(), Some("apps"));
    assert_eq!(status.last_attempted_revision.as_deref(), Some("0.1.0"));
    assert_eq!(status.observed_generation, installed.metadata.generation);
    let history = status.history.clone().unwrap();
    assert_eq!(
        (history[0].version, history[0].status.as_str()),
        (1, "deployed")
    );
    assert!(installed
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"finalizers.fluxcd.io".to_string()));

    // A Kubernetes Event was recorded with Flux's reason and message.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "apps");
    let recorded = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        recorded
            .iter()
            .any(|e| e.reason.as_deref() == Some("InstallSucceeded")
                && e.involved_object.name.as_deref() == Some("demo")
                && e.message.as_deref()
                    == Some(
                        "Helm install succeeded for release apps/demo.v1 with chart demo@0.1.0"
                    )),
        "{recorded:?}"
    );

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    let cm = configmaps.get("demo-config").await.unwrap();
    let data = cm.data.clone().unwrap();
    assert_eq!(data["message"], "hello");
    assert_eq!(data["from"], "cm", "valuesFrom ConfigMap merged");
    let labels = cm.metadata.labels.clone().unwrap();
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "demo");
    assert_eq!(labels["helm.toolkit.fluxcd.io/namespace"], "apps");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
    let annotations = cm.metadata.annotations.unwrap();
    assert_eq!(annotations["meta.helm.sh/release-name"], "demo");
    assert_eq!(
        annotations["post-rendered"], "yes",
        "kustomize post-renderer"
    );
    assert!(status.observed_post_renderers_digest.is_some());
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "apps",
        &ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    assert!(deployments.get_opt("demo-web").await.unwrap().is_some());

    // Release Secret v1, Helm's name, type and labels; decodable by flux-helm.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "apps");
    let stored = release_secrets(&secrets, "demo").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].metadata.name.as_deref(),
        Some("sh.helm.release.v1.demo.v1")
    );
    assert_eq!(stored[0].type_.as_deref(), Some("helm.sh/release.v1"));
    assert_eq!(label(&stored[0], "owner"), "helm");
    assert_eq!(label(&stored[0], "status"), "deployed");
    assert_eq!(label(&stored[0], "version"), "1");
    let v1 = helm::decode_release_secret(&stored[0]).unwrap();
    assert_eq!(v1.chart_name_version(), ("demo".into(), "0.1.0".into()));
    assert_eq!(v1.config.as_ref().unwrap()["message"], "hello");
    assert!(v1.manifest.contains("demo-config"));
    // The chart's CRD was created (install.crds defaults to Create), with origin labels.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = crds.get("widgets.demo.example.com").await.unwrap();
    assert_eq!(
        crd.metadata.labels.unwrap()["helm.toolkit.fluxcd.io/name"],
        "demo"
    );
    assert!(
        !v1.manifest.contains("CustomResourceDefinition"),
        "CRDs are not part of the manifest"
    );
    // The post-install hook ran (phase recorded) and stays; the pre-upgrade one did not run.
    assert!(configmaps
        .get_opt("demo-installed")
        .await
        .unwrap()
        .is_some());
    let phases: Vec<(&str, &str)> = v1
        .hooks
        .iter()
        .map(|h| (h.name.as_str(), h.last_run.phase.as_str()))
        .collect();
    assert!(
        phases.contains(&("demo-installed", "Succeeded")),
        "{phases:?}"
    );
    assert!(phases.contains(&("demo-pre-upgrade", "")), "{phases:?}");

    // Drift: an edit behind Helm's back is reported in warn mode, corrected in enabled mode.
    configmaps
        .patch(
            "demo-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"message": "tampered"}})),
        )
        .await
        .unwrap();
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "drift-1"}}})),
        )
        .await
        .unwrap();
    let drifted = eventually("drift detected", 30, || {
        let releases = releases.clone();
        async move {
            let hr = releases.get("demo").await.unwrap();
            (condition(&hr, "Drifted").map(|c| c.0) == Some("True".into())).then_some(hr)
        }
    })
    .await;
    assert_eq!(
        condition(&drifted, "Drifted").unwrap(),
        (
            "True".into(),
            "DriftDetected".into(),
            "Cluster state of release apps/demo.v1 has drifted from the desired state:\nConfigMap/apps/demo-config changed (0 additions, 1 changes, 0 removals)".into()
        )
    );
    assert_eq!(
        configmaps.get("demo-config").await.unwrap().data.unwrap()["message"],
        "tampered",
        "warn mode does not correct"
    );
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"driftDetection": {"mode": "enabled"}}})),
        )
        .await
        .unwrap();
    eventually("drift corrected", 30, || {
        let releases = releases.clone();
        let configmaps = configmaps.clone();
        async move {
            let hr = releases.get("demo").await.unwrap();
            let message =
                configmaps.get("demo-config").await.unwrap().data.unwrap()["message"].clone();
            (message == "hello"
                && condition(&hr, "Drifted").map(|c| (c.0, c.1))
                    == Some(("False".into(), "NoDriftDetected".into())))
            .then_some(())
        }
    })
    .await;
    assert_eq!(
        release_secrets(&secrets, "demo").await.len(),
        1,
        "no Helm upgrade for drift"
    );

    real_helm_reads_the_release(&env).await;

    // A values change upgrades to v2.
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"message": "bye"}}})),
        )
        .await
        .unwrap();
    eventually("upgrade", 30, || {
        let releases = releases.clone();
        async move {
            let hr = releases.get("demo").await.unwrap();
            (condition(&hr, "Ready").map(|c| (c.0, c.1))
                == Some(("True".into(), "UpgradeSucceeded".into())))
            .then_some(())
        }
    })
    .await;
    assert_eq!(
        configmaps.get("demo-config").await.unwrap().data.unwrap()["message"],
        "bye"
    );
    let stored = release_secrets(&secrets, "demo").await;
    let statuses: Vec<(&str, &str)> = stored
        .iter()
        .map(|s| (label(s, "version"), label(s, "status")))
        .collect();
    assert_eq!(statuses, vec![("1", "superseded"), ("2", "deployed")]);
    // The pre-upgrade hook ran and was deleted by its hook-succeeded policy.
    let v2 = helm::decode_release_secret(&stored[1]).unwrap();
    assert!(v2
        .hooks
        .iter()
        .any(|h| h.name == "demo-pre-upgrade" && h.last_run.phase == "Succeeded"));
    assert!(configmaps
        .get_opt("demo-pre-upgrade")
        .await
        .unwrap()
        .is_none());

    // A failing upgrade (the API refuses an object) is rolled back per remediation.
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"message": "broken", "broken": true}}})),
        )
        .await
        .unwrap();
    // retries: 1 → upgrade fails, rollback; upgrade again, fails, rollback (remediateLastFailure
    // defaults to true with retries); then retries are exhausted and the release stalls.
    let stalled = eventually("retries exhausted", 60, || {
        let releases = releases.clone();
        async move {
            let hr = releases.get("demo").await.unwrap();
            (condition(&hr, "Stalled").map(|c| c.0) == Some("True".into())).then_some(hr)
        }
    })
    .await;
    assert_eq!(
        condition(&stalled, "Stalled").unwrap(),
        (
            "True".into(),
            "RetriesExceeded".into(),
            "Failed to upgrade after 2 attempt(s)".into()
        )
    );
    let (_, reason, message) = condition(&stalled, "Released").unwrap();
    assert_eq!(reason, "UpgradeFailed");
    assert!(
        message.starts_with("Helm upgrade failed for release apps/demo with chart demo@0.1.0: "),
        "{message}"
    );
    assert!(message.contains("Invalid_Name"), "{message}");
    let remediated = condition(&stalled, "Remediated").unwrap();
    assert_eq!(
        (remediated.0.as_str(), remediated.1.as_str()),
        ("True", "RollbackSucceeded")
    );
    assert_eq!(
        remediated.2,
        "Helm rollback to previous release apps/demo.v4 with chart demo@0.1.0 succeeded"
    );
    let ready = condition(&stalled, "Ready").unwrap();
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("False", "RollbackSucceeded")
    );
    let status = stalled.status.clone().unwrap();
    assert_eq!(status.upgrade_failures, Some(2));
    assert_eq!(status.failures, Some(2));

    // Revisions: install, upgrade, failed upgrade, rollback to 2, failed upgrade, rollback
    // to 4; only the last one is deployed, with v2's values; objects are back to v2.
    let stored = release_secrets(&secrets, "demo").await;
    let releases_by_version: std::collections::BTreeMap<i64, flux_helm::release::Release> = stored
        .iter()
        .map(|s| {
            let r = helm::decode_release_secret(s).unwrap();
            assert_eq!(label(s, "status"), r.status(), "label matches the record");
            (r.version, r)
        })
        .collect();
    let statuses: Vec<(i64, &str)> = releases_by_version
        .values()
        .map(|r| (r.version, r.status()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, "superseded"),
            (2, "superseded"),
            (3, "superseded"),
            (4, "superseded"),
            (5, "superseded"),
            (6, "deployed")
        ]
    );
    let current = &releases_by_version[&6];
    assert_eq!(current.info.as_ref().unwrap().description, "Rollback to 4");
    assert_eq!(current.config.as_ref().unwrap()["message"], "bye");
    assert!(releases_by_version[&3]
        .info
        .as_ref()
        .unwrap()
        .description
        .starts_with("upgrade failed"));
    assert_eq!(
        configmaps.get("demo-config").await.unwrap().data.unwrap()["message"],
        "bye"
    );
    assert_eq!(status.history.as_ref().unwrap()[0].version, 6);

    // forceAt (paired with requestedAt) forces one more upgrade past the exhausted retries.
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "reconcile.fluxcd.io/requestedAt": "force-1",
                "reconcile.fluxcd.io/forceAt": "force-1"}}})),
        )
        .await
        .unwrap();
    let forced = eventually("forced upgrade", 60, || {
        let releases = releases.clone();
        async move {
            let hr = releases.get("demo").await.unwrap();
            let stalled = condition(&hr, "Stalled").map(|c| c.2);
            (stalled.as_deref() == Some("Failed to upgrade after 3 attempt(s)")).then_some(hr)
        }
    })
    .await;
    let forced_status = forced.status.unwrap();
    assert_eq!(
        forced_status.last_handled_force_at.as_deref(),
        Some("force-1")
    );
    assert_eq!(forced_status.history.unwrap()[0].version, 8);

    // Deleting the HelmRelease uninstalls: objects, release Secrets and the HelmChart go,
    // then the finalizer is removed.
    releases
        .delete("demo", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually("uninstall", 30, || {
        let releases = releases.clone();
        async move {
            releases
                .get_opt("demo")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(configmaps.get_opt("demo-config").await.unwrap().is_none());
    assert!(deployments.get_opt("demo-web").await.unwrap().is_none());
    assert!(release_secrets(&secrets, "demo").await.is_empty());
    assert!(charts.get_opt("apps-demo").await.unwrap().is_none());

    // The suspended HelmRelease was never touched: no chart, no finalizer, no status.
    let sleeping = releases.get("sleeping").await.unwrap();
    // (The CRD defaults status to `observedGeneration: -1`; nothing else is written.)
    let untouched = sleeping.status.unwrap_or_default();
    assert!(untouched.conditions.is_none(), "{untouched:?}");
    assert!(untouched.helm_chart.is_none());
    assert!(sleeping.metadata.finalizers.unwrap_or_default().is_empty());
    assert!(charts.get_opt("apps-sleeping").await.unwrap().is_none());
    assert!(release_secrets(&secrets, "sleeping").await.is_empty());

    controller.abort();
}

#[tokio::test]
async fn not_ready_reasons_dependency_digest_and_values() {
    let env = flux_testenv::TestEnv::start().await.unwrap();
    for crd in flux_api::crds() {
        env.create_yaml("crds", &serde_yaml::to_string(&crd).unwrap())
            .unwrap();
    }
    let archive = package_chart();
    let url = common::serve_bytes(archive, "/helmchart/apps/apps-demo/demo-0.1.0.tgz").await;
    let wrong = format!("sha256:{}", "0".repeat(64));
    env.create_yaml(
        "objects",
        r"
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {name: shared, namespace: apps}
spec: {chart: demo, interval: 10m, sourceRef: {kind: HelmRepository, name: charts}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: waits, namespace: apps}
spec:
  interval: 10m
  dependsOn: [{name: base}]
  chartRef: {kind: HelmChart, name: shared}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: tampered, namespace: apps}
spec:
  interval: 10m
  chartRef: {kind: HelmChart, name: shared}
",
    )
    .unwrap();
    env.patch_status(
        "source.toolkit.fluxcd.io/v1",
        "HelmChart",
        Some("apps"),
        "shared",
        json!({
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ChartPullSucceeded",
                            "message": "pulled", "lastTransitionTime": "2026-11-23T06:00:00Z"}],
            "artifact": {"path": "x.tgz", "url": url, "revision": "0.1.0", "digest": wrong,
                         "lastUpdateTime": "2026-11-23T06:00:00Z"}
        }),
    )
    .unwrap();
    let client = env.client().unwrap();
    let ctx = helm::context(client.clone(), HelmOptions::default(), Arc::default());
    let controller = tokio::spawn(helm::run(ctx));
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "apps");
    let ready_of = |name: &'static str| {
        let releases = releases.clone();
        move || {
            let releases = releases.clone();
            async move {
                let hr = releases.get(name).await.unwrap();
                condition(&hr, "Ready").filter(|c| c.0 == "False")
            }
        }
    };
    let waits = eventually("DependencyNotReady", 20, ready_of("waits")).await;
    assert_eq!(
        (waits.1.as_str(), waits.2.as_str()),
        (
            "DependencyNotReady",
            "dependency 'apps/base' is not ready: not found"
        )
    );
    let tampered = eventually("ArtifactFailed", 20, ready_of("tampered")).await;
    assert_eq!(tampered.1, "ArtifactFailed");
    assert!(
        tampered
            .2
            .starts_with("failed to verify artifact: computed digest doesn't match"),
        "{}",
        tampered.2
    );
    // Nothing was installed for either.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "apps");
    assert!(secrets
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .unwrap()
        .items
        .is_empty());

    // A missing, non-optional valuesFrom ConfigMap is a ValuesError (digest fixed first).
    let digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(package_chart()))
    );
    env.patch_status(
        "source.toolkit.fluxcd.io/v1",
        "HelmChart",
        Some("apps"),
        "shared",
        json!({"artifact": {"path": "x.tgz", "url": url, "revision": "0.1.0", "digest": digest,
                            "lastUpdateTime": "2026-11-23T06:00:00Z"}}),
    )
    .unwrap();
    releases
        .patch(
            "tampered",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"valuesFrom": [{"kind": "ConfigMap", "name": "absent"}]}}),
            ),
        )
        .await
        .unwrap();
    let values = eventually("ValuesError", 20, || {
        let releases = releases.clone();
        async move {
            let hr = releases.get("tampered").await.unwrap();
            condition(&hr, "Ready").filter(|c| c.1 == "ValuesError")
        }
    })
    .await;
    assert_eq!(values.2, "could not find ConfigMap 'apps/absent'");
    controller.abort();
}
