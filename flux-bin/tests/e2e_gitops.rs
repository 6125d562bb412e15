//! End to end: a real Git server (`git daemon` on 127.0.0.1, or file:// when git daemon is
//! missing), source-controller and kustomize-controller running in-process against
//! flux-testenv (or a real cluster with `FLUX_E2E_KUBECONFIG`, see flux-bin/NOTES.md).

#[path = "common_perf_e2e/mod.rs"]
mod common;

use std::time::Duration;

use common::{
    cluster, commit_all, config_map, git_available, start_git, wait_for, write, Controllers,
};
use flux_api::kustomize::Kustomization;
use flux_api::source::GitRepository;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

const NS: &str = "flux-system";

fn ready(conditions: Option<&Vec<flux_api::meta::Condition>>) -> Option<(String, String, String)> {
    conditions?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn request_reconcile<K>(api: &Api<K>, name: &str, token: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        ),
    )
    .await
    .expect("annotated");
}

async fn create_git_repository(client: &kube::Client, url: &str) {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    let object: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "repo", "namespace": NS},
        "spec": {"url": url, "interval": "1h", "ref": {"branch": "main"}}
    }))
    .expect("gitrepository");
    api.create(&PostParams::default(), &object)
        .await
        .expect("gitrepository created");
}

async fn create_kustomization(client: &kube::Client, name: &str, spec: Value) {
    let api: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let mut full = json!({
        "interval": "1h", "retryInterval": "1s", "prune": true, "timeout": "20s",
        "sourceRef": {"kind": "GitRepository", "name": "repo"}
    });
    if let (Some(full), Value::Object(extra)) = (full.as_object_mut(), spec) {
        full.extend(extra);
    }
    let object: Kustomization = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NS},
        "spec": full
    }))
    .expect("kustomization");
    api.create(&PostParams::default(), &object)
        .await
        .expect("kustomization created");
}

async fn kustomization_ready(client: &kube::Client, name: &str, revision: &str) -> Kustomization {
    let api: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let expected = format!("Applied revision: main@sha1:{revision}");
    wait_for(
        &format!("Kustomization {name} applying {revision}"),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            let expected = expected.clone();
            async move {
                let object = api.get(name).await.ok()?;
                let status = object.status.as_ref()?;
                let (ready_status, reason, message) = ready(status.conditions.as_ref())?;
                (ready_status == "True"
                    && reason == "ReconciliationSucceeded"
                    && message == expected)
                    .then_some(object)
            }
        },
    )
    .await
}

async fn config_value(client: &kube::Client, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.data)
        .and_then(|d| d.get("value").cloned())
}

fn inventory_ids(object: &Kustomization) -> Vec<String> {
    object
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gitops_loop_apply_update_prune_sops_depends_suspend() {
    if !git_available() {
        eprintln!("NOTICE: skipping e2e_gitops: git is not installed");
        return;
    }
    let cluster = cluster(&[NS, "apps"]).await;
    let client = cluster.client.clone();
    let repo = start_git();
    write(&repo.work, "apps/a.yaml", &config_map("alpha", "one"));
    write(&repo.work, "apps/b.yaml", &config_map("beta", "one"));
    // SOPS-encrypted Secret, decrypted with an age key generated here.
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let plain = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: apps\nstringData:\n  token: s3cr3t\n";
    let encrypted = flux_sops::encrypt(
        plain.as_bytes(),
        flux_sops::Format::Yaml,
        &flux_sops::EncryptOptions {
            key_groups: vec![vec![flux_sops::Recipient::Age(recipient)]],
            shamir_threshold: 0,
            selection: Some(flux_sops::Selection::EncryptedRegex(
                "^(data|stringData)$".into(),
            )),
            mac_only_encrypted: false,
        },
        "secret.yaml",
    )
    .expect("encrypted");
    let encrypted = String::from_utf8(encrypted).expect("utf8");
    assert!(!encrypted.contains("s3cr3t"));
    write(&repo.work, "secrets/secret.yaml", &encrypted);
    let first = commit_all(&repo.work, "first");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let key_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sops-age", "namespace": NS},
        "stringData": {"age.agekey": age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_string()}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &key_secret)
        .await
        .expect("key secret");

    let controllers = Controllers::start(client.clone()).await;
    create_git_repository(&client, &repo.url).await;
    // `secrets` waits for `apps` (dependsOn) and is created first.
    create_kustomization(
        &client,
        "secrets",
        json!({"path": "./secrets", "dependsOn": [{"name": "apps"}],
               "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}}),
    )
    .await;
    let ks: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let waiting = wait_for("secrets waiting on apps", Duration::from_secs(30), || {
        let ks = ks.clone();
        async move {
            let object = ks.get("secrets").await.ok()?;
            let (status, reason, message) = ready(object.status.as_ref()?.conditions.as_ref())?;
            (status == "False" && reason == "DependencyNotReady").then_some(message)
        }
    })
    .await;
    assert_eq!(waiting, "dependency 'flux-system/apps' not found");
    let creds: Api<Secret> = Api::namespaced(client.clone(), "apps");
    assert!(
        creds.get_opt("creds").await.expect("get").is_none(),
        "not applied before its dependency"
    );

    create_kustomization(&client, "apps", json!({"path": "./apps", "wait": true})).await;
    create_kustomization(
        &client,
        "paused",
        json!({"path": "./apps", "suspend": true, "targetNamespace": "paused"}),
    )
    .await;

    let apps = kustomization_ready(&client, "apps", &first).await;
    assert_eq!(config_value(&client, "alpha").await.as_deref(), Some("one"));
    assert_eq!(
        inventory_ids(&apps),
        vec![
            "apps_alpha__ConfigMap".to_string(),
            "apps_beta__ConfigMap".to_string()
        ]
    );
    let status = apps.status.clone().expect("status");
    assert_eq!(
        status.last_applied_revision,
        Some(format!("main@sha1:{first}"))
    );
    assert_eq!(status.observed_generation, apps.metadata.generation);
    let healthy = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "Healthy").cloned())
        .expect("Healthy condition (wait: true)");
    assert_eq!(healthy.status, "True");
    let live: ConfigMap = Api::namespaced(client.clone(), "apps")
        .get("alpha")
        .await
        .expect("alpha");
    let labels = live.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("apps")
    );
    assert!(live
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .any(|m| m.manager.as_deref() == Some("kustomize-controller")
            && m.operation.as_deref() == Some("Apply")));

    // Source status as Flux writes it.
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    let source = repos.get("repo").await.expect("repo");
    let source_status = source.status.expect("source status");
    let artifact = source_status.artifact.expect("artifact");
    assert_eq!(artifact.revision, format!("main@sha1:{first}"));
    assert!(artifact.digest.starts_with("sha256:"));
    assert_eq!(
        artifact.path,
        format!("gitrepository/{NS}/repo/{first}.tar.gz")
    );
    let (s, r, m) = ready(source_status.conditions.as_ref()).expect("ready");
    assert_eq!((s.as_str(), r.as_str()), ("True", "Succeeded"));
    assert_eq!(
        m,
        format!("stored artifact for revision 'main@sha1:{first}'")
    );

    // Decrypted on apply, after its dependency.
    kustomization_ready(&client, "secrets", &first).await;
    let secret = creds.get("creds").await.expect("creds");
    let token = secret
        .data
        .unwrap_or_default()
        .get("token")
        .map(|b| b.0.clone());
    assert_eq!(token.as_deref(), Some(&b"s3cr3t"[..]));

    // Change a file → updated.
    write(&repo.work, "apps/a.yaml", &config_map("alpha", "two"));
    let second = commit_all(&repo.work, "second");
    request_reconcile(&repos, "repo", "t1").await;
    kustomization_ready(&client, "apps", &second).await;
    assert_eq!(config_value(&client, "alpha").await.as_deref(), Some("two"));
    let source = repos.get("repo").await.expect("repo");
    assert_eq!(
        source
            .status
            .and_then(|s| s.last_handled_reconcile_at)
            .as_deref(),
        Some("t1")
    );

    // Delete a file → pruned.
    std::fs::remove_file(repo.work.join("apps/b.yaml")).expect("rm");
    let third = commit_all(&repo.work, "third");
    request_reconcile(&repos, "repo", "t2").await;
    let apps = kustomization_ready(&client, "apps", &third).await;
    assert_eq!(config_value(&client, "beta").await, None, "beta pruned");
    assert_eq!(
        inventory_ids(&apps),
        vec!["apps_alpha__ConfigMap".to_string()]
    );

    // Suspended: untouched.
    let paused = ks.get("paused").await.expect("paused");
    assert!(paused
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .is_empty());
    let in_paused: Api<ConfigMap> = Api::namespaced(client.clone(), "paused");
    assert!(in_paused
        .list(&ListParams::default())
        .await
        .map_or(true, |l| l.items.is_empty()));

    // Deletion with prune: the finalizer removes what was applied.
    ks.delete("apps", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("apps objects deleted", Duration::from_secs(30), || {
        let client = client.clone();
        async move { config_value(&client, "alpha").await.is_none().then_some(()) }
    })
    .await;
    drop(controllers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_api_errors_source_down_and_restart() {
    if !git_available() {
        eprintln!("NOTICE: skipping e2e_gitops faults: git is not installed");
        return;
    }
    let cluster = cluster(&[NS, "apps"]).await;
    let Some(env) = cluster.env() else {
        eprintln!("NOTICE: fault injection needs flux-testenv; skipped against a real cluster");
        return;
    };
    let client = cluster.client.clone();
    let repo = start_git();
    for i in 0..20 {
        write(
            &repo.work,
            &format!("apps/cm{i:02}.yaml"),
            &config_map(&format!("cm{i:02}"), "one"),
        );
    }
    let first = commit_all(&repo.work, "first");
    let mut controllers = Controllers::start(client.clone()).await;
    create_git_repository(&client, &repo.url).await;

    // API server errors mid-apply: the first attempt fails, the retry (1s) succeeds.
    env.fail_next_matching(1, 500, Some("/namespaces/apps/configmaps/cm05"));
    create_kustomization(&client, "apps", json!({"path": "./apps"})).await;
    let ks: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let failed = wait_for("apply failure recorded", Duration::from_secs(30), || {
        let ks = ks.clone();
        async move {
            let object = ks.get("apps").await.ok()?;
            let (status, reason, message) = ready(object.status.as_ref()?.conditions.as_ref())?;
            (status == "False" && reason == "ReconciliationFailed").then_some(message)
        }
    })
    .await;
    assert!(failed.contains("ConfigMap/apps/cm05"), "{failed}");
    let apps = kustomization_ready(&client, "apps", &first).await;
    assert_eq!(inventory_ids(&apps).len(), 20);

    // Source server down: the artifact cannot be fetched; back up → recovers.
    write(&repo.work, "apps/cm00.yaml", &config_map("cm00", "two"));
    let second = commit_all(&repo.work, "second");
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    request_reconcile(&repos, "repo", "t1").await;
    wait_for("new artifact", Duration::from_secs(30), || {
        let repos = repos.clone();
        let second = second.clone();
        async move {
            let object = repos.get("repo").await.ok()?;
            (object.status?.artifact?.revision == format!("main@sha1:{second}")).then_some(())
        }
    })
    .await;
    controllers.stop_source().await;
    // The kustomization may have applied already if it was fast; force one more attempt.
    request_reconcile(&ks, "apps", "k1").await;
    let down = wait_for(
        "artifact failure or applied",
        Duration::from_secs(30),
        || {
            let ks = ks.clone();
            async move {
                let object = ks.get("apps").await.ok()?;
                let status = object.status.as_ref()?;
                if status.last_handled_reconcile_at.as_deref() != Some("k1") {
                    return None;
                }
                let (s, reason, message) = ready(status.conditions.as_ref())?;
                (s != "Unknown").then_some((reason, message))
            }
        },
    )
    .await;
    assert_eq!(down.0, "ArtifactFailed", "{down:?}");
    assert!(down.1.contains("failed to download artifact"), "{down:?}");
    controllers.start_source().await;
    request_reconcile(&repos, "repo", "t2").await;
    kustomization_ready(&client, "apps", &second).await;
    assert_eq!(config_value(&client, "cm00").await.as_deref(), Some("two"));

    // Controller killed mid-reconcile and restarted: no duplicate or lost objects.
    for i in 0..20 {
        write(
            &repo.work,
            &format!("apps/cm{i:02}.yaml"),
            &config_map(&format!("cm{i:02}"), "three"),
        );
    }
    std::fs::remove_file(repo.work.join("apps/cm19.yaml")).expect("rm");
    let third = commit_all(&repo.work, "third");
    env.set_delay(Duration::from_millis(40));
    request_reconcile(&repos, "repo", "t3").await;
    wait_for("apply in progress", Duration::from_secs(30), || {
        let client = client.clone();
        async move { (config_value(&client, "cm02").await.as_deref() == Some("three")).then_some(()) }
    })
    .await;
    controllers.abort_kustomize();
    env.set_delay(Duration::ZERO);
    controllers.start_kustomize();
    let apps = kustomization_ready(&client, "apps", &third).await;
    let ids = inventory_ids(&apps);
    assert_eq!(ids.len(), 19, "{ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no duplicate inventory entries");
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    let live = configmaps.list(&ListParams::default()).await.expect("list");
    let names: Vec<String> = live
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .filter(|n| n.starts_with("cm"))
        .collect();
    assert_eq!(names.len(), 19, "{names:?}");
    assert!(live
        .items
        .iter()
        .filter(|c| c
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("cm")))
        .all(|c| c
            .data
            .as_ref()
            .and_then(|d| d.get("value"))
            .map(String::as_str)
            == Some("three")));
}
