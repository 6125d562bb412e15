//! source-controller's HelmRepository and HelmChart reconcilers end to end, with the
//! helm-controller consuming their artifacts, on flux-testenv:
//! 1. a real HTTP Helm repository (lighttpd on 127.0.0.1, basic auth) → HelmRepository index
//!    artifact → HelmRelease `spec.chart` → HelmChart packaged by source-controller → release
//!    installed; values change → upgrade; a new chart version in the index → HelmChart rebuilt
//!    → upgrade; a failing upgrade → rollback.
//! 2. a chart pushed to an OCI registry (Debian's `docker-registry`) and a chart in a Git
//!    repository (file://, `Revision` strategy, `valuesFiles` with `ignoreMissingValuesFiles`,
//!    new commit → rebuilt).
//! 3. faults: repository server down, index without `apiVersion`, chart version not found.
//!
//! Without lighttpd / docker-registry / git the affected test prints a NOTICE and passes.

// Test helpers panic on purpose: a panic is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flux_api::helm::HelmRelease;
use flux_api::meta::Condition;
use flux_api::source::{HelmChart, HelmRepository};
use flux_bin::controllers::helm::{self, HelmOptions};
use flux_bin::controllers::source::{self, SourceOptions};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve::Shutdown;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;
use sha2::Digest as _;

#[path = "common_source_helm/mod.rs"]
mod common;
use common::{commit_all, eventually, git, start_lighttpd, start_registry};

const NS: &str = "apps";

const CONFIGMAP: &str = r"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  message: {{ .Values.message | quote }}
  chart: {{ .Chart.Version | quote }}
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

/// Writes chart `demo` at `version` into `dir/demo`.
fn write_chart(dir: &Path, version: &str) -> std::path::PathBuf {
    let root = dir.join("demo");
    std::fs::create_dir_all(root.join("templates")).unwrap();
    std::fs::write(
        root.join("Chart.yaml"),
        format!("apiVersion: v2\nname: demo\nversion: {version}\nappVersion: \"1.0\"\n"),
    )
    .unwrap();
    std::fs::write(root.join("values.yaml"), "message: hello\nbroken: false\n").unwrap();
    std::fs::write(root.join("templates/configmap.yaml"), CONFIGMAP).unwrap();
    std::fs::write(root.join("templates/broken.yaml"), BROKEN).unwrap();
    root
}

fn package(version: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    flux_helm::package(&write_chart(dir.path(), version)).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Publishes `versions` of chart `demo` with an `index.yaml` into `repo_dir`; returns the
/// index bytes.
fn publish(repo_dir: &Path, versions: &[&str]) -> Vec<u8> {
    std::fs::create_dir_all(repo_dir).unwrap();
    let mut index = String::from("apiVersion: v1\nentries:\n  demo:\n");
    for version in versions {
        let tgz = package(version);
        std::fs::write(repo_dir.join(format!("demo-{version}.tgz")), &tgz).unwrap();
        let _ = write!(
            index,
            "  - apiVersion: v2\n    name: demo\n    version: {version}\n    digest: {}\n    urls: [demo-{version}.tgz]\n    created: \"2026-11-23T06:00:00Z\"\n",
            sha256(&tgz).trim_start_matches("sha256:")
        );
    }
    index.push_str("generated: \"2026-11-23T06:00:00Z\"\n");
    std::fs::write(repo_dir.join("index.yaml"), &index).unwrap();
    index.into_bytes()
}

fn get_condition(list: Option<&Vec<Condition>>, type_: &str) -> Option<(String, String, String)> {
    list?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn ready_of_chart(chart: &HelmChart) -> Option<(String, String, String)> {
    get_condition(chart.status.as_ref()?.conditions.as_ref(), "Ready")
}

fn ready_of_repo(repo: &HelmRepository) -> Option<(String, String, String)> {
    get_condition(repo.status.as_ref()?.conditions.as_ref(), "Ready")
}

fn hr_condition(hr: &HelmRelease, type_: &str) -> Option<(String, String, String)> {
    get_condition(hr.status.as_ref()?.conditions.as_ref(), type_)
}

/// flux-testenv with our CRDs and the `apps` namespace; source- and helm-controller in-process.
struct Harness {
    env: flux_testenv::TestEnv,
    client: kube::Client,
    stop: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _storage: tempfile::TempDir,
}

impl Harness {
    async fn start(with_helm: bool) -> Harness {
        let env = flux_testenv::TestEnv::start().await.unwrap();
        for crd in flux_api::crds() {
            env.create_object(serde_json::to_value(&crd).unwrap())
                .unwrap();
        }
        env.create_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        )
        .unwrap();
        env.set_workloads_ready(true);
        let client = env.client().unwrap();
        let storage = tempfile::tempdir().unwrap();
        let mut options =
            SourceOptions::new(storage.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
        options.min_retry_delay = Duration::from_millis(200);
        options.max_retry_delay = Duration::from_secs(2);
        let (context, listener) =
            source::prepare(client.clone(), Arc::new(Metrics::default()), "", options)
                .await
                .unwrap();
        let stop = Shutdown::default();
        let mut tasks = vec![tokio::spawn(source::run(context, listener, stop.wait()))];
        if with_helm {
            let ctx = helm::context(
                client.clone(),
                HelmOptions {
                    retry_interval: Duration::from_millis(500),
                    ..HelmOptions::default()
                },
                Arc::default(),
            );
            tasks.push(tokio::spawn(async move {
                helm::run(ctx).await;
                Ok(())
            }));
        }
        Harness {
            env,
            client,
            stop,
            tasks,
            _storage: storage,
        }
    }

    fn apply(&self, yaml: &str) {
        self.env.create_yaml("objects", yaml).unwrap();
    }

    async fn request_reconcile<K>(&self, name: &str, token: &str)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.client.clone(), NS)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {
                    "reconcile.fluxcd.io/requestedAt": token}}})),
            )
            .await
            .unwrap();
    }

    async fn repo_when(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&HelmRepository) -> bool,
    ) -> HelmRepository {
        let api: Api<HelmRepository> = Api::namespaced(self.client.clone(), NS);
        eventually(what, 60, || {
            let api = api.clone();
            let found = async move { api.get_opt(name).await.unwrap() };
            let check = &check;
            async move { found.await.filter(|r| check(r)) }
        })
        .await
    }

    async fn chart_when(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&HelmChart) -> bool,
    ) -> HelmChart {
        let api: Api<HelmChart> = Api::namespaced(self.client.clone(), NS);
        eventually(what, 60, || {
            let api = api.clone();
            let found = async move { api.get_opt(name).await.unwrap() };
            let check = &check;
            async move { found.await.filter(|c| check(c)) }
        })
        .await
    }

    async fn release_when(&self, what: &str, check: impl Fn(&HelmRelease) -> bool) -> HelmRelease {
        let api: Api<HelmRelease> = Api::namespaced(self.client.clone(), NS);
        eventually(what, 90, || {
            let api = api.clone();
            let found = async move { api.get_opt("demo").await.unwrap() };
            let check = &check;
            async move { found.await.filter(|r| check(r)) }
        })
        .await
    }

    async fn stop(self) {
        self.stop.trigger();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// GETs `url` (the artifact server) and returns the body.
async fn download(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.unwrap();
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.bytes().await.unwrap().to_vec()
}

/// The `values.yaml` inside a packaged chart.
fn chart_values(tgz: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    flux_source::extract::unpack_gz(
        tgz,
        dir.path(),
        &flux_source::extract::Limits::default(),
        "chart",
    )
    .unwrap();
    std::fs::read_to_string(dir.path().join("demo/values.yaml")).unwrap()
}

async fn config_message(client: &kube::Client) -> Option<(String, String)> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get_opt("demo-config")
        .await
        .unwrap()?;
    let data = cm.data?;
    Some((data.get("message")?.clone(), data.get("chart")?.clone()))
}

/// When a real Helm 4 is installed (`FLUX_HELM_BIN`, or the oracle from
/// `../shared/tools/install-oracles`), it must read the release source-controller's chart
/// produced.
async fn real_helm_status(env: &flux_testenv::TestEnv) {
    let helm = std::env::var_os("FLUX_HELM_BIN")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".cache/flux-oracles/bin/helm4"))
        })
        .filter(|p| p.exists());
    let Some(helm) = helm else {
        eprintln!("NOTICE: no helm binary (FLUX_HELM_BIN); skipping the real-helm read check");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let out = tokio::process::Command::new(&helm)
        .args(["status", "demo", "-n", NS, "-o", "json"])
        .env("KUBECONFIG", &kubeconfig)
        .env("HELM_CACHE_HOME", dir.path().join("cache"))
        .env("HELM_CONFIG_HOME", dir.path().join("config"))
        .env("HELM_DATA_HOME", dir.path().join("data"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "helm status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["version"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(clippy::too_many_lines)]
async fn http_helm_repository_chart_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let repo_dir = www.join("private/charts");
    let index = publish(&repo_dir, &["0.1.0"]);
    let Some((server, port)) = start_lighttpd(dir.path(), &www, ("helm", "s3cret")) else {
        eprintln!(
            "NOTICE: skipping http_helm_repository_chart_and_release: lighttpd is not available"
        );
        return;
    };
    let h = Harness::start(true).await;
    let url = format!("http://127.0.0.1:{port}/private/charts");
    h.apply(&format!(
        r"
apiVersion: v1
kind: Secret
metadata: {{name: helm-auth, namespace: {NS}}}
stringData: {{username: helm, password: s3cret}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: charts, namespace: {NS}}}
spec:
  interval: 1h
  url: {url}
  secretRef: {{name: helm-auth}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: demo, namespace: {NS}}}
spec:
  interval: 1h
  timeout: 20s
  chart:
    spec:
      chart: demo
      version: '0.x'
      sourceRef: {{kind: HelmRepository, name: charts}}
  upgrade:
    remediation: {{retries: 1}}
  values:
    message: hello
"
    ));

    // The index artifact: revision = digest of the served bytes, `index.yaml` link URL.
    let repo = h
        .repo_when("charts", "the index artifact", |r| {
            ready_of_repo(r).is_some_and(|c| c.0 == "True")
        })
        .await;
    let revision = sha256(&index);
    assert_eq!(
        ready_of_repo(&repo).unwrap(),
        (
            "True".into(),
            "Succeeded".into(),
            format!("stored artifact: revision '{revision}'")
        )
    );
    let status = repo.status.clone().unwrap();
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(artifact.revision, revision);
    assert_eq!(
        artifact.path,
        format!(
            "helmrepository/{NS}/charts/index-{}.yaml",
            revision.trim_start_matches("sha256:")
        )
    );
    assert!(status
        .url
        .as_deref()
        .unwrap()
        .ends_with("/helmrepository/apps/charts/index.yaml"));
    assert_eq!(status.observed_generation, repo.metadata.generation);
    assert!(repo
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .contains(&"finalizers.fluxcd.io".to_string()));
    let stored_index: serde_json::Value =
        serde_json::from_slice(&download(status.url.as_deref().unwrap()).await).unwrap();
    assert_eq!(stored_index["entries"]["demo"][0]["version"], "0.1.0");
    assert_eq!(sha256(&download(&artifact.url).await), artifact.digest);

    // helm-controller created the HelmChart; source-controller pulled the chart as-is.
    let chart = h
        .chart_when("apps-demo", "the chart artifact", |c| {
            ready_of_chart(c).is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(
        ready_of_chart(&chart).unwrap(),
        (
            "True".into(),
            "ChartPullSucceeded".into(),
            "pulled 'demo' chart with version '0.1.0'".into()
        )
    );
    let status = chart.status.clone().unwrap();
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(artifact.revision, "0.1.0");
    assert_eq!(artifact.path, "helmchart/apps/apps-demo/demo-0.1.0.tgz");
    let served = std::fs::read(repo_dir.join("demo-0.1.0.tgz")).unwrap();
    assert_eq!(artifact.digest, sha256(&served), "stored as downloaded");
    assert_eq!(download(&artifact.url).await, served);
    assert_eq!(status.observed_chart_name.as_deref(), Some("demo"));
    assert_eq!(
        status.observed_source_artifact_revision.as_deref(),
        Some(revision.as_str())
    );
    assert!(status
        .url
        .as_deref()
        .unwrap()
        .ends_with("/helmchart/apps/apps-demo/latest.tar.gz"));

    // The release is installed from it.
    let installed = h
        .release_when("install", |hr| {
            hr_condition(hr, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    assert_eq!(
        hr_condition(&installed, "Ready").unwrap().2,
        "Helm install succeeded for release apps/demo.v1 with chart demo@0.1.0"
    );
    assert_eq!(
        config_message(&h.client).await,
        Some(("hello".into(), "0.1.0".into()))
    );
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), NS);
    assert!(secrets
        .get_opt("sh.helm.release.v1.demo.v1")
        .await
        .unwrap()
        .is_some());
    real_helm_status(&h.env).await;

    // Values change → upgrade (same chart artifact).
    let releases: Api<HelmRelease> = Api::namespaced(h.client.clone(), NS);
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"message": "changed"}}})),
        )
        .await
        .unwrap();
    h.release_when("upgrade on values", |hr| {
        hr_condition(hr, "Ready").is_some_and(|c| c.1 == "UpgradeSucceeded")
    })
    .await;
    assert_eq!(
        config_message(&h.client).await,
        Some(("changed".into(), "0.1.0".into()))
    );

    // A new chart version in the repository: new index revision → HelmChart rebuilt through
    // the watch on its HelmRepository → release upgraded to it.
    let index = publish(&repo_dir, &["0.1.0", "0.2.0"]);
    h.request_reconcile::<HelmRepository>("charts", "new-version")
        .await;
    let revision = sha256(&index);
    h.repo_when("charts", "the new index", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_some_and(|a| a.revision == revision)
    })
    .await;
    let chart = h
        .chart_when("apps-demo", "chart 0.2.0", |c| {
            c.status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.revision == "0.2.0")
        })
        .await;
    assert_eq!(
        chart.status.unwrap().observed_source_artifact_revision,
        Some(revision)
    );
    let upgraded = h
        .release_when("upgrade to 0.2.0", |hr| {
            hr_condition(hr, "Ready").is_some_and(|c| c.2.contains("demo@0.2.0"))
        })
        .await;
    assert_eq!(hr_condition(&upgraded, "Ready").unwrap().0, "True");
    assert_eq!(
        config_message(&h.client).await,
        Some(("changed".into(), "0.2.0".into()))
    );

    // A failing upgrade is rolled back to the last good release.
    releases
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"message": "broken", "broken": true}}})),
        )
        .await
        .unwrap();
    let rolled_back = h
        .release_when("rollback", |hr| {
            hr_condition(hr, "Remediated").is_some_and(|c| c.1 == "RollbackSucceeded")
        })
        .await;
    assert_eq!(hr_condition(&rolled_back, "Remediated").unwrap().0, "True");
    assert_eq!(
        config_message(&h.client).await,
        Some(("changed".into(), "0.2.0".into())),
        "objects back at the last good release"
    );

    // The repository server goes away: the fetch fails like Flux's, the artifact stays.
    drop(server);
    h.request_reconcile::<HelmRepository>("charts", "server-down")
        .await;
    let down = h
        .repo_when("charts", "the fetch failure", |r| {
            ready_of_repo(r).is_some_and(|c| c.0 == "False")
        })
        .await;
    let (_, reason, message) = ready_of_repo(&down).unwrap();
    assert_eq!(reason, "Failed");
    assert!(
        message.starts_with("failed to fetch Helm repository index: "),
        "{message}"
    );
    assert_eq!(
        get_condition(
            down.status.as_ref().unwrap().conditions.as_ref(),
            "FetchFailed"
        )
        .unwrap()
        .0,
        "True"
    );
    assert!(down.status.unwrap().artifact.is_some(), "artifact kept");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(clippy::too_many_lines)]
async fn oci_and_git_chart_sources() {
    let h = Harness::start(false).await;
    let dir = tempfile::tempdir().unwrap();

    // OCI: a chart pushed with Helm's media types; the HelmRepository stays static.
    if let Some((_registry, port)) = start_registry(&dir.path().join("registry")) {
        let host = format!("127.0.0.1:{port}");
        let registry = flux_source::oci::Registry::new(&flux_source::oci::OciOptions {
            insecure: true,
            ..Default::default()
        })
        .unwrap();
        let tgz = package("0.3.1");
        for (version, bytes) in [("0.3.0", package("0.3.0")), ("0.3.1", tgz.clone())] {
            registry
                .push_single_layer(
                    &flux_source::oci::Reference::with_tag(
                        host.clone(),
                        "charts/demo".into(),
                        version.into(),
                    ),
                    (bytes, flux_source::oci::HELM_CHART_MEDIA_TYPE),
                    (
                        br#"{"name":"demo"}"#.to_vec(),
                        flux_source::oci::HELM_CONFIG_MEDIA_TYPE,
                    ),
                    BTreeMap::new(),
                )
                .await
                .unwrap();
        }
        h.apply(&format!(
            r"
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: oci, namespace: {NS}}}
spec: {{type: oci, url: 'oci://{host}/charts', insecure: true, interval: 1h}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {{name: oci-demo, namespace: {NS}}}
spec:
  chart: demo
  version: '~0.3.0'
  interval: 1h
  sourceRef: {{kind: HelmRepository, name: oci}}
"
        ));
        let chart = h
            .chart_when("oci-demo", "the OCI chart", |c| {
                ready_of_chart(c).is_some_and(|c| c.0 == "True")
            })
            .await;
        assert_eq!(
            ready_of_chart(&chart).unwrap().2,
            "pulled 'demo' chart with version '0.3.1'"
        );
        let status = chart.status.unwrap();
        let artifact = status.artifact.unwrap();
        assert_eq!(artifact.digest, sha256(&tgz));
        assert_eq!(status.observed_source_artifact_revision, None);
        let repo: HelmRepository = Api::namespaced(h.client.clone(), NS)
            .get("oci")
            .await
            .unwrap();
        assert!(
            repo.status
                .as_ref()
                .is_none_or(|s| s.conditions.is_none() && s.artifact.is_none()),
            "static: {:?}",
            repo.status
        );
        assert!(repo.metadata.finalizers.unwrap_or_default().is_empty());
    } else {
        eprintln!("NOTICE: skipping the OCI part: docker-registry is not available");
    }

    // Git: chart directory packaged with the Revision strategy and merged values files.
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("NOTICE: skipping the Git part: git is not available");
        h.stop().await;
        return;
    }
    let work = dir.path().join("git");
    std::fs::create_dir_all(work.join("charts")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    write_chart(&work.join("charts"), "1.2.3");
    std::fs::write(
        work.join("prod.yaml"),
        "message: production\nextra: {a: 1}\n",
    )
    .unwrap();
    let first = commit_all(&work, "chart");
    h.apply(&format!(
        r"
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: repo, namespace: {NS}}}
spec:
  interval: 1h
  url: file://{work}
  ref: {{branch: main}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {{name: git-demo, namespace: {NS}}}
spec:
  chart: ./charts/demo
  interval: 1h
  reconcileStrategy: Revision
  valuesFiles: [charts/demo/values.yaml, prod.yaml, missing.yaml]
  ignoreMissingValuesFiles: true
  sourceRef: {{kind: GitRepository, name: repo}}
",
        work = work.display()
    ));
    let chart = h
        .chart_when("git-demo", "the Git chart", |c| {
            ready_of_chart(c).is_some_and(|c| c.0 == "True")
        })
        .await;
    let version = format!("1.2.3+{}.1", &first[..12]);
    assert_eq!(
        ready_of_chart(&chart).unwrap(),
        (
            "True".into(),
            "ChartPackageSucceeded".into(),
            format!(
                "packaged 'demo' chart with version '{version}' and merged values files [charts/demo/values.yaml prod.yaml]"
            )
        )
    );
    let status = chart.status.unwrap();
    assert_eq!(
        status.observed_values_files,
        Some(vec!["charts/demo/values.yaml".into(), "prod.yaml".into()])
    );
    assert_eq!(
        status.observed_source_artifact_revision,
        Some(format!("main@sha1:{first}"))
    );
    let artifact = status.artifact.unwrap();
    assert_eq!(artifact.revision, version);
    assert_eq!(
        artifact.path,
        format!("helmchart/apps/git-demo/demo-{version}.tgz")
    );
    let values: serde_yaml::Value =
        serde_yaml::from_str(&chart_values(&download(&artifact.url).await)).unwrap();
    assert_eq!(values["message"], "production", "later files win");
    assert_eq!(values["broken"], false, "earlier files kept");
    assert_eq!(values["extra"]["a"], 1);

    // A new commit: the GitRepository's new artifact rebuilds the chart (watch).
    std::fs::write(work.join("prod.yaml"), "message: second\n").unwrap();
    let second = commit_all(&work, "values");
    h.request_reconcile::<flux_api::source::GitRepository>("repo", "next")
        .await;
    let version = format!("1.2.3+{}.1", &second[..12]);
    let chart = h
        .chart_when("git-demo", "the rebuilt Git chart", |c| {
            c.status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.revision == version)
        })
        .await;
    let artifact = chart.status.unwrap().artifact.unwrap();
    let values: serde_yaml::Value =
        serde_yaml::from_str(&chart_values(&download(&artifact.url).await)).unwrap();
    assert_eq!(values["message"], "second");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_source_faults() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    publish(&www.join("good"), &["0.1.0"]);
    std::fs::create_dir_all(www.join("bad")).unwrap();
    std::fs::write(www.join("bad/index.yaml"), "entries: {}\n").unwrap();
    let Some((_server, port)) = start_lighttpd(dir.path(), &www, ("helm", "s3cret")) else {
        eprintln!("NOTICE: skipping helm_source_faults: lighttpd is not available");
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::start(false).await;
    h.apply(&format!(
        r"
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: down, namespace: {NS}}}
spec: {{interval: 1h, url: 'http://127.0.0.1:{closed}/charts'}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: bad, namespace: {NS}}}
spec: {{interval: 1h, url: 'http://127.0.0.1:{port}/bad'}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {{name: good, namespace: {NS}}}
spec: {{interval: 1h, url: 'http://127.0.0.1:{port}/good'}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {{name: missing-version, namespace: {NS}}}
spec:
  chart: demo
  version: '9.x'
  interval: 1h
  sourceRef: {{kind: HelmRepository, name: good}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {{name: no-source, namespace: {NS}}}
spec:
  chart: demo
  interval: 1h
  sourceRef: {{kind: HelmRepository, name: down}}
"
    ));
    let failed = |r: &HelmRepository| ready_of_repo(r).is_some_and(|c| c.0 == "False");
    let down = h.repo_when("down", "the server-down failure", failed).await;
    let (_, reason, message) = ready_of_repo(&down).unwrap();
    assert_eq!(reason, "Failed");
    assert!(
        message.starts_with(&format!(
            "failed to fetch Helm repository index: GET http://127.0.0.1:{closed}/charts/index.yaml"
        )),
        "{message}"
    );
    assert!(down.status.unwrap().artifact.is_none());

    let bad = h.repo_when("bad", "the bad index failure", failed).await;
    let (_, reason, message) = ready_of_repo(&bad).unwrap();
    assert_eq!(reason, "IndexationFailed");
    assert!(
        message.starts_with("failed to load Helm repository from index YAML: "),
        "{message}"
    );

    let chart = h
        .chart_when("missing-version", "the version failure", |c| {
            // NoSourceArtifact first, until the repository has its index.
            ready_of_chart(c).is_some_and(|c| c.1 == "InvalidChartReference")
        })
        .await;
    assert_eq!(
        ready_of_chart(&chart).unwrap(),
        (
            "False".into(),
            "InvalidChartReference".into(),
            "invalid chart reference: failed to get chart version for remote reference: no 'demo' chart with version matching '9.x' found".into()
        )
    );
    let conditions = chart.status.as_ref().unwrap().conditions.as_ref();
    assert_eq!(get_condition(conditions, "Stalled").unwrap().0, "True");
    assert_eq!(get_condition(conditions, "FetchFailed").unwrap().0, "True");
    assert_eq!(
        chart.status.as_ref().unwrap().observed_generation,
        chart.metadata.generation,
        "stalled: the generation was handled"
    );

    let chart = h
        .chart_when("no-source", "the missing source artifact", |c| {
            ready_of_chart(c).is_some_and(|c| c.0 == "False")
        })
        .await;
    assert_eq!(
        ready_of_chart(&chart).unwrap(),
        (
            "False".into(),
            "NoSourceArtifact".into(),
            "no artifact available for HelmRepository source 'down'".into()
        )
    );

    // Fixing the version recovers the chart.
    Api::<HelmChart>::namespaced(h.client.clone(), NS)
        .patch(
            "missing-version",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"version": "0.1.x"}})),
        )
        .await
        .unwrap();
    let chart = h
        .chart_when("missing-version", "the fixed chart", |c| {
            ready_of_chart(c).is_some_and(|c| c.0 == "True")
        })
        .await;
    let conditions = chart.status.as_ref().unwrap().conditions.as_ref();
    assert!(get_condition(conditions, "Stalled").is_none());
    assert!(get_condition(conditions, "FetchFailed").is_none());
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(h.client.clone(), NS);
    let recorded = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        recorded
            .iter()
            .any(|e| e.reason.as_deref() == Some("InvalidChartReference")),
        "{recorded:?}"
    );
    h.stop().await;
}
