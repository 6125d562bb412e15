//! helm-controller actions end to end on flux-testenv: the test action (Jobs and Pods,
//! filters, ignored failures, remediation of a failed test), rollback and uninstall hooks,
//! `uninstall.keepHistory`, `disableTakeOwnership`, subchart CRDs, live `lookup` and the OCI
//! digest in the chart version. The test plays source-controller (HelmChart/OCIRepository
//! status) and the kubelet (it sets each test Pod's phase from its `result` label).

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common_helm_ctl/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use sha2::Digest as _;

use common::{condition, eventually, helm_binary, helm_json, label, release_secrets};
use flux_api::helm::HelmRelease;
use flux_bin::controllers::helm;

const CHART_YAML: &str = "apiVersion: v2\nname: suite\nversion: 0.1.0\nappVersion: \"2.0\"\ndependencies:\n  - {name: sub, version: 0.1.0}\n";
const VALUES_YAML: &str = "podResult: Succeeded\nclaim: false\n";
// Live lookups: an existing ConfigMap, a missing one, and a list.
const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  color: {{ dig "data" "color" "none" (lookup "v1" "ConfigMap" .Release.Namespace "seed") | quote }}
  missing: {{ dig "data" "color" "none" (lookup "v1" "ConfigMap" .Release.Namespace "absent") | quote }}
  listed: {{ gt (len (lookup "v1" "ConfigMap" .Release.Namespace "").items) 0 | quote }}
  listedKind: {{ (first (lookup "v1" "ConfigMap" .Release.Namespace "").items).kind | quote }}
  version: {{ .Chart.Version | quote }}
{{- if .Values.claim }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: preexisting
data: {claimed: "yes"}
{{- end }}
"#;
const TESTS: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-job-test
  annotations:
    "helm.sh/hook": test
    "helm.sh/hook-weight": "-1"
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: check, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-pod-test
  labels: {result: {{ .Values.podResult }}}
  annotations:
    "helm.sh/hook": test
    "helm.sh/hook-delete-policy": hook-succeeded
spec:
  restartPolicy: Never
  containers: [{name: check, image: busybox}]
"#;
const LIFECYCLE_HOOKS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-pre-rollback
  annotations: {"helm.sh/hook": pre-rollback}
data: {ran: "yes"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-pre-delete
  annotations: {"helm.sh/hook": pre-delete, "helm.sh/hook-delete-policy": hook-succeeded}
data: {ran: "yes"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-post-delete
  annotations: {"helm.sh/hook": post-delete}
data: {ran: "yes"}
"#;
// Applied first (file order): an extra object, then one the API refuses.
const EXTRA: &str = r"{{- if .Values.extra }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-extra
data: {}
{{- end }}
";
const BROKEN: &str = r"{{- if .Values.broken }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: Invalid_Name
data: {}
{{- end }}
";
const SUB_CRD: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.sub.example.com
spec:
  group: sub.example.com
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
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
    let root = dir.path().join("suite");
    for sub in ["templates/tests", "charts/sub/crds", "charts/sub/templates"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("Chart.yaml"), CHART_YAML).unwrap();
    std::fs::write(root.join("values.yaml"), VALUES_YAML).unwrap();
    std::fs::write(root.join("templates/configmap.yaml"), CONFIGMAP).unwrap();
    std::fs::write(root.join("templates/tests/tests.yaml"), TESTS).unwrap();
    std::fs::write(root.join("templates/hooks.yaml"), LIFECYCLE_HOOKS).unwrap();
    std::fs::write(root.join("templates/a-extra.yaml"), EXTRA).unwrap();
    std::fs::write(root.join("templates/z-broken.yaml"), BROKEN).unwrap();
    std::fs::write(
        root.join("charts/sub/Chart.yaml"),
        "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(root.join("charts/sub/crds/gadgets.yaml"), SUB_CRD).unwrap();
    flux_helm::package(&root).unwrap()
}

/// Plays the kubelet for test Pods: a Pod without a phase gets the one its `result` label
/// names.
fn run_test_pods(env: Arc<flux_testenv::TestEnv>, pods: Api<Pod>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            for pod in pods.list(&ListParams::default()).await.unwrap().items {
                let has_phase = pod.status.as_ref().and_then(|s| s.phase.as_ref()).is_some();
                let result = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("result"))
                    .cloned();
                if let (false, Some(result)) = (has_phase, result) {
                    let name = pod.metadata.name.clone().unwrap();
                    let _ = env.patch_status(
                        "v1",
                        "Pod",
                        Some("apps"),
                        &name,
                        json!({"phase": result}),
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn artifact_status(url: &str, digest: &str, revision: &str) -> serde_json::Value {
    json!({
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                        "message": "stored artifact", "lastTransitionTime": "2026-11-23T06:00:00Z"}],
        "artifact": {"path": "suite.tgz", "url": url, "revision": revision, "digest": digest,
                     "lastUpdateTime": "2026-11-23T06:00:00Z"}
    })
}

async fn wait_for(
    releases: &Api<HelmRelease>,
    name: &'static str,
    what: &str,
    accept: impl Fn(&HelmRelease) -> bool,
) -> HelmRelease {
    let accept = &accept;
    eventually(what, 60, || {
        let releases = releases.clone();
        async move {
            let hr = releases.get(name).await.unwrap();
            accept(&hr).then_some(hr)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)]
async fn helm_test_hooks_uninstall_ownership_lookup_and_oci() {
    let env = Arc::new(common::env_with_flux_crds().await);
    env.set_workloads_ready(true);
    let archive = package_chart();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&archive)));
    let url = common::serve_bytes(archive, "/helmchart/apps/suite/suite-0.1.0.tgz").await;
    let oci_digest = format!("sha256:{}", "5eed".repeat(16));
    env.create_yaml(
        "objects",
        r"
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: seed, namespace: apps}
data: {color: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: preexisting, namespace: apps}
data: {owner: someone-else}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {name: suite, namespace: apps}
spec: {chart: suite, interval: 10m, sourceRef: {kind: HelmRepository, name: charts}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: suite-oci, namespace: apps}
spec: {url: 'oci://127.0.0.1:5000/charts/suite', interval: 10m, ref: {tag: 0.1.0}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: tested, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  test: {enable: true}
  upgrade:
    remediation: {retries: 0, remediateLastFailure: true}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: tolerant, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  test: {enable: true, ignoreFailures: true}
  values: {podResult: Failed}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: filtered, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  test:
    enable: true
    filters: [{name: filtered-pod-test, exclude: true}]
  values: {podResult: Failed}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: keeper, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  uninstall: {keepHistory: true, deletionPropagation: foreground}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: owned, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  install: {disableTakeOwnership: true}
  values: {claim: true}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: fragile, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  test: {enable: true}
  install:
    remediation: {retries: 1}
  values: {podResult: Failed}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: slow, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  test: {enable: true, timeout: 1s, ignoreFailures: true}
  values: {podResult: Pending}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: quiet, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  uninstall: {disableHooks: true}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: tidy, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
  upgrade: {cleanupOnFail: true}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: messy, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: HelmChart, name: suite}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: oci, namespace: apps}
spec:
  interval: 10m
  timeout: 20s
  chartRef: {kind: OCIRepository, name: suite-oci}
",
    )
    .unwrap();
    env.patch_status(
        "source.toolkit.fluxcd.io/v1",
        "HelmChart",
        Some("apps"),
        "suite",
        artifact_status(&url, &digest, "0.1.0"),
    )
    .unwrap();
    env.patch_status(
        "source.toolkit.fluxcd.io/v1",
        "OCIRepository",
        Some("apps"),
        "suite-oci",
        artifact_status(&url, &digest, &format!("0.1.0@{oci_digest}")),
    )
    .unwrap();

    let client = env.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "apps");
    let kubelet = run_test_pods(Arc::clone(&env), pods.clone());
    let controller = common::spawn_helm_controller(client.clone(), Duration::from_millis(500));
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "apps");
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "apps");

    // --- Tests pass: a Job (weight -1, kept) and a Pod (deleted by hook-succeeded).
    let tested = wait_for(&releases, "tested", "tests to pass", |hr| {
        condition(hr, "Ready").map(|c| c.1) == Some("TestSucceeded".into())
    })
    .await;
    let message = "Helm test succeeded for release apps/tested.v1 with chart suite@0.1.0: 2 test hooks completed successfully";
    assert_eq!(
        condition(&tested, "Ready").unwrap(),
        ("True".into(), "TestSucceeded".into(), message.into())
    );
    assert_eq!(
        condition(&tested, "TestSuccess").unwrap(),
        ("True".into(), "TestSucceeded".into(), message.into())
    );
    let snapshot = tested.status.as_ref().unwrap().history.as_ref().unwrap()[0].clone();
    let test_hooks = snapshot.test_hooks.clone().unwrap();
    let phases: Vec<(&str, Option<&str>)> = test_hooks
        .iter()
        .map(|(k, v)| (k.as_str(), v.phase.as_deref()))
        .collect();
    assert_eq!(
        phases,
        vec![
            ("tested-job-test", Some("Succeeded")),
            ("tested-pod-test", Some("Succeeded"))
        ]
    );
    assert!(test_hooks["tested-job-test"].last_started.is_some());
    assert!(test_hooks["tested-job-test"].last_completed.is_some());
    let stored = release_secrets(&secrets, "tested").await;
    let v1 = helm::decode_release_secret(&stored[0]).unwrap();
    let job_run = &v1
        .hooks
        .iter()
        .find(|h| h.name == "tested-job-test")
        .unwrap()
        .last_run;
    let pod_run = &v1
        .hooks
        .iter()
        .find(|h| h.name == "tested-pod-test")
        .unwrap()
        .last_run;
    assert_eq!(
        (job_run.phase.as_str(), pod_run.phase.as_str()),
        ("Succeeded", "Succeeded")
    );
    assert!(
        job_run.started_at <= pod_run.started_at,
        "weight -1 runs first: {job_run:?} {pod_run:?}"
    );
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "apps");
    assert!(jobs.get_opt("tested-job-test").await.unwrap().is_some());
    assert!(
        pods.get_opt("tested-pod-test").await.unwrap().is_none(),
        "hook-succeeded deletes the Pod"
    );
    // Live lookup: the seed ConfigMap, an empty map for a missing one, a list.
    let data = configmaps.get("tested-config").await.unwrap().data.unwrap();
    assert_eq!(data["color"], "blue");
    assert_eq!(data["missing"], "none");
    assert_eq!(data["listed"], "true");
    assert_eq!(data["listedKind"], "ConfigMap");
    // The subchart's CRD was installed with the release.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    assert!(crds
        .get_opt("gadgets.sub.example.com")
        .await
        .unwrap()
        .is_some());

    // The real Helm reads the test results we recorded.
    match helm_binary() {
        Some(bin) => {
            let status = helm_json(
                &bin,
                &env,
                &["status", "tested", "-n", "apps", "-o", "json"],
            )
            .await;
            assert_eq!(status["info"]["status"], "deployed");
            let hooks = status["hooks"].as_array().cloned().unwrap_or_default();
            let job = hooks
                .iter()
                .find(|h| h["name"] == "tested-job-test")
                .unwrap_or_else(|| panic!("helm status hooks: {status}"));
            assert_eq!(job["last_run"]["phase"], "Succeeded");
        }
        None => {
            eprintln!("notice: no helm binary (FLUX_HELM_BIN); skipping the real-helm read check");
        }
    }

    // --- A failing test after an upgrade: TestFailed, then rollback remediation (with the
    // pre-rollback hook), then retries are exhausted.
    releases
        .patch(
            "tested",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"podResult": "Failed"}}})),
        )
        .await
        .unwrap();
    let stalled = wait_for(&releases, "tested", "test failure remediated", |hr| {
        condition(hr, "Stalled").map(|c| c.0) == Some("True".into())
    })
    .await;
    let (status, reason, message) = condition(&stalled, "TestSuccess").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TestFailed"));
    assert_eq!(
        message,
        "Helm test failed for release apps/tested.v2 with chart suite@0.1.0: warning: Hook test suite/templates/tests/tests.yaml failed: pod tested-pod-test failed"
    );
    let remediated = condition(&stalled, "Remediated").unwrap();
    assert_eq!(
        (
            remediated.0.as_str(),
            remediated.1.as_str(),
            remediated.2.as_str()
        ),
        (
            "True",
            "RollbackSucceeded",
            "Helm rollback to previous release apps/tested.v1 with chart suite@0.1.0 succeeded"
        )
    );
    assert_eq!(
        condition(&stalled, "Stalled").unwrap().2,
        "Failed to upgrade after 1 attempt(s)"
    );
    assert_eq!(condition(&stalled, "Ready").unwrap().1, "RollbackSucceeded");
    let status = stalled.status.clone().unwrap();
    assert_eq!(
        (status.failures, status.upgrade_failures),
        (Some(1), Some(1))
    );
    let statuses: Vec<(String, String)> = release_secrets(&secrets, "tested")
        .await
        .iter()
        .map(|s| {
            (
                label(s, "version").to_string(),
                label(s, "status").to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("1".into(), "superseded".into()),
            ("2".into(), "superseded".into()),
            ("3".into(), "deployed".into())
        ]
    );
    assert!(configmaps
        .get_opt("tested-pre-rollback")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        pods.get("tested-pod-test")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Failed"),
        "a failed test Pod stays (no hook-failed policy)"
    );

    // --- ignoreFailures: TestSuccess False, but Ready follows Released; no remediation.
    let tolerant = wait_for(&releases, "tolerant", "ignored test failure", |hr| {
        condition(hr, "TestSuccess").map(|c| c.0) == Some("False".into())
            && condition(hr, "Ready").map(|c| c.0) == Some("True".into())
    })
    .await;
    assert_eq!(condition(&tolerant, "Ready").unwrap().1, "InstallSucceeded");
    let status = tolerant.status.clone().unwrap();
    assert_eq!(
        (status.failures, status.install_failures),
        (Some(1), Some(0))
    );
    assert_eq!(release_secrets(&secrets, "tolerant").await.len(), 1);

    // --- filters: the excluded Pod test never runs; the Job test passes.
    let filtered = wait_for(&releases, "filtered", "filtered tests", |hr| {
        condition(hr, "TestSuccess").map(|c| c.0) == Some("True".into())
    })
    .await;
    let hooks = filtered.status.unwrap().history.unwrap()[0]
        .test_hooks
        .clone()
        .unwrap();
    assert_eq!(
        hooks["filtered-job-test"].phase.as_deref(),
        Some("Succeeded")
    );
    assert_eq!(hooks["filtered-pod-test"].phase, None);
    assert!(pods.get_opt("filtered-pod-test").await.unwrap().is_none());

    // --- disableTakeOwnership: an existing object Helm does not own stops the install.
    let owned = wait_for(&releases, "owned", "ownership refusal", |hr| {
        condition(hr, "Released").map(|c| c.0) == Some("False".into())
    })
    .await;
    let (_, reason, message) = condition(&owned, "Released").unwrap();
    assert_eq!(reason, "InstallFailed");
    assert!(
        message.ends_with("Unable to continue with install: ConfigMap \"preexisting\" in namespace \"apps\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"owned\"; annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"apps\""),
        "{message}"
    );
    assert_eq!(
        configmaps.get("preexisting").await.unwrap().data.unwrap()["owner"],
        "someone-else"
    );

    // --- OCIRepository: the chart version carries the first 12 hex of the OCI digest.
    let oci = wait_for(&releases, "oci", "OCI install", |hr| {
        condition(hr, "Ready").map(|c| c.0) == Some("True".into())
    })
    .await;
    let version = "0.1.0+5eed5eed5eed";
    let status = oci.status.clone().unwrap();
    assert_eq!(status.last_attempted_revision.as_deref(), Some(version));
    assert_eq!(
        status.last_attempted_revision_digest.as_deref(),
        Some(oci_digest.as_str())
    );
    let snapshot = &status.history.unwrap()[0];
    assert_eq!(snapshot.chart_version, version);
    assert_eq!(snapshot.oci_digest.as_deref(), Some(oci_digest.as_str()));
    assert_eq!(
        condition(&oci, "Ready").unwrap().2,
        format!("Helm install succeeded for release apps/oci.v1 with chart suite@{version}")
    );
    assert_eq!(
        configmaps.get("oci-config").await.unwrap().data.unwrap()["version"],
        version
    );

    // --- Uninstall with keepHistory: pre/post-delete hooks run, objects go, the release
    // stays in storage as uninstalled.
    wait_for(&releases, "keeper", "keeper install", |hr| {
        condition(hr, "Ready").map(|c| c.0) == Some("True".into())
    })
    .await;
    releases
        .delete("keeper", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually("keeper uninstalled", 30, || {
        let releases = releases.clone();
        async move {
            releases
                .get_opt("keeper")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(configmaps.get_opt("keeper-config").await.unwrap().is_none());
    assert!(configmaps
        .get_opt("keeper-post-delete")
        .await
        .unwrap()
        .is_some());
    assert!(
        configmaps
            .get_opt("keeper-pre-delete")
            .await
            .unwrap()
            .is_none(),
        "hook-succeeded"
    );
    let kept = release_secrets(&secrets, "keeper").await;
    assert_eq!(kept.len(), 1);
    assert_eq!(label(&kept[0], "status"), "uninstalled");
    let record = helm::decode_release_secret(&kept[0]).unwrap();
    assert_eq!(
        record.info.as_ref().unwrap().description,
        "Uninstallation complete"
    );
    assert!(record.info.as_ref().unwrap().deleted.is_some());
    let post_delete = record
        .hooks
        .iter()
        .find(|h| h.name == "keeper-post-delete")
        .unwrap();
    assert_eq!(post_delete.last_run.phase, "Succeeded");
    if let Some(bin) = helm_binary() {
        let history = helm_json(
            &bin,
            &env,
            &["history", "keeper", "-n", "apps", "-o", "json"],
        )
        .await;
        assert_eq!(history[0]["status"], "uninstalled", "{history}");
    }

    // --- Install remediation of a failed test: uninstall, install again, fail again, then
    // the install retries are exhausted.
    let fragile = wait_for(&releases, "fragile", "install retries exhausted", |hr| {
        condition(hr, "Stalled").map(|c| c.0) == Some("True".into())
    })
    .await;
    assert_eq!(
        condition(&fragile, "Stalled").unwrap().2,
        "Failed to install after 2 attempt(s)"
    );
    let remediated = condition(&fragile, "Remediated").unwrap();
    assert_eq!(
        (
            remediated.0.as_str(),
            remediated.1.as_str(),
            remediated.2.as_str()
        ),
        (
            "True",
            "UninstallSucceeded",
            "Helm uninstall remediation for release apps/fragile.v1 succeeded"
        )
    );
    assert_eq!(condition(&fragile, "TestSuccess").unwrap().1, "TestFailed");
    assert_eq!(fragile.status.unwrap().install_failures, Some(2));
    assert!(release_secrets(&secrets, "fragile").await.is_empty());
    assert!(configmaps
        .get_opt("fragile-config")
        .await
        .unwrap()
        .is_none());

    // --- test.timeout: a test Pod that never finishes fails the test after 1s.
    let slow = wait_for(&releases, "slow", "test timeout", |hr| {
        condition(hr, "TestSuccess").map(|c| c.1) == Some("TestFailed".into())
    })
    .await;
    assert_eq!(
        condition(&slow, "TestSuccess").unwrap().2,
        "Helm test failed for release apps/slow.v1 with chart suite@0.1.0: warning: Hook test suite/templates/tests/tests.yaml failed: timed out waiting for the condition"
    );

    // --- cleanupOnFail: the object a failed upgrade created is deleted; without it, kept.
    for name in ["tidy", "messy"] {
        eventually("installed", 30, || {
            let releases = releases.clone();
            async move {
                let hr = releases.get(name).await.unwrap();
                (condition(&hr, "Ready").map(|c| c.0) == Some("True".into())).then_some(())
            }
        })
        .await;
        releases
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"values": {"extra": true, "broken": true}}})),
            )
            .await
            .unwrap();
    }
    for name in ["tidy", "messy"] {
        eventually("failed upgrade", 30, || {
            let releases = releases.clone();
            async move {
                let hr = releases.get(name).await.unwrap();
                (condition(&hr, "Released").map(|c| c.1) == Some("UpgradeFailed".into()))
                    .then_some(())
            }
        })
        .await;
    }
    assert!(configmaps.get_opt("tidy-extra").await.unwrap().is_none());
    assert!(configmaps.get_opt("messy-extra").await.unwrap().is_some());

    // --- uninstall.disableHooks: no delete hooks run.
    releases
        .delete("quiet", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually("quiet uninstalled", 30, || {
        let releases = releases.clone();
        async move {
            releases
                .get_opt("quiet")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert!(configmaps.get_opt("quiet-config").await.unwrap().is_none());
    assert!(configmaps
        .get_opt("quiet-post-delete")
        .await
        .unwrap()
        .is_none());
    assert!(release_secrets(&secrets, "quiet").await.is_empty());

    kubelet.abort();
    controller.abort();
}
