//! End to end: what a Kustomization may touch and where. kustomize-controller runs in-process
//! against flux-testenv, whose RBAC evaluation of impersonated requests stands in for the API
//! server's; artifacts come from a loopback artifact server (see `common`).
//! - `spec.serviceAccountName`: applies, prunes and health checks as the service account; a
//!   service account without rights fails with the API's 403 in the Ready condition.
//! - `spec.kubeConfig.secretRef`: objects applied to and pruned from a second cluster; a
//!   missing Secret or key is reported with Flux's message.
//! - `--watch-label-selector`: two sharded controllers each reconcile only their objects.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config_map, kustomization, ready, wait_for, ArtifactServer};
use flux_api::kustomize::Kustomization;
use flux_bin::controllers::kustomize::{self, KustomizeContext, KustomizeOptions};
use flux_bin::runtime::metrics::Metrics;
use flux_bin::runtime::serve::Shutdown;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// A kustomize-controller task, stopped on drop.
struct Controller {
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Controller {
    fn start(client: kube::Client, options: KustomizeOptions) -> Controller {
        let options = KustomizeOptions {
            requeue_dependency: Duration::from_millis(500),
            health_poll: Duration::from_millis(200),
            http_retry: 1,
            ..options
        };
        let context = KustomizeContext::new(client, Arc::new(Metrics::default()), "", options)
            .expect("kustomize context");
        let shutdown = Shutdown::default();
        let wait = shutdown.wait();
        let task = tokio::spawn(async move {
            kustomize::run(context, wait).await.expect("kustomize runs");
        });
        Controller {
            shutdown,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Waits until the Kustomization's Ready condition is decided for its generation and
/// returns `(status, reason, message)`.
async fn settled(
    api: &Api<Kustomization>,
    name: &str,
    want_status: &str,
) -> (String, String, String) {
    wait_for(
        &format!("Kustomization {name} Ready={want_status}"),
        WAIT,
        || async {
            let object = api.get(name).await.ok()?;
            let condition = ready(object.status.as_ref()?.conditions.as_ref())?;
            (condition.0 == want_status).then_some(condition)
        },
    )
    .await
}

async fn config_map_value(client: &kube::Client, namespace: &str, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .expect("configmap read")
        .and_then(|c| c.data?.get("value").cloned())
}

fn rbac(namespace: &str, service_account: &str, resources: &[&str]) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": namespace}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": service_account, "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": resources, "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": service_account, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": service_account},
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_impersonation() {
    let env = common::testenv(&["tenant", "other"]).await;
    let client = env.client().expect("client");
    for object in rbac("tenant", "deployer", &["configmaps"]) {
        env.create_object(object).expect("rbac object");
    }
    let artifacts = ArtifactServer::start().await;
    let (a, b) = (
        config_map("tenant", "a", "1"),
        config_map("tenant", "b", "1"),
    );
    artifacts.publish(
        &env,
        "tenant",
        "apps",
        "main@sha1:1111",
        &[("a.yaml", &a), ("b.yaml", &b)],
    );
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: tenant\nstringData:\n  password: p\n";
    artifacts.publish(
        &env,
        "tenant",
        "secrets",
        "main@sha1:2222",
        &[("db.yaml", secret)],
    );
    let elsewhere = config_map("other", "x", "1");
    artifacts.publish(
        &env,
        "tenant",
        "elsewhere",
        "main@sha1:3333",
        &[("x.yaml", &elsewhere)],
    );

    let controller = Controller::start(client.clone(), KustomizeOptions::default());
    let sa = json!({"serviceAccountName": "deployer", "wait": true});
    for (name, source) in [
        ("apps", "apps"),
        ("secrets", "secrets"),
        ("elsewhere", "elsewhere"),
    ] {
        env.create_object(kustomization("tenant", name, source, &sa))
            .expect("kustomization");
    }
    let api: Api<Kustomization> = Api::namespaced(client.clone(), "tenant");

    // Rights to ConfigMaps in its namespace: applied and health-checked as the service account.
    let (_, reason, message) = settled(&api, "apps", "True").await;
    assert_eq!(
        (reason.as_str(), message.as_str()),
        (
            "ReconciliationSucceeded",
            "Applied revision: main@sha1:1111"
        )
    );
    assert_eq!(
        config_map_value(&client, "tenant", "a").await.as_deref(),
        Some("1")
    );
    assert!(env
        .requests()
        .iter()
        .any(|r| r.starts_with("PATCH /api/v1/namespaces/tenant/configmaps/a")));

    // No rights to Secrets, nor to another namespace: the API's 403 in the Ready condition.
    let (_, reason, message) = settled(&api, "secrets", "False").await;
    assert_eq!(reason, "ReconciliationFailed");
    assert!(
        message.contains("secrets \"db\" is forbidden: User \"system:serviceaccount:tenant:deployer\" cannot get resource \"secrets\" in API group \"\" in the namespace \"tenant\""),
        "{message}"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "tenant");
    assert!(secrets.get_opt("db").await.expect("read").is_none());
    let (_, _, message) = settled(&api, "elsewhere", "False").await;
    assert!(
        message.contains(
            "cannot get resource \"configmaps\" in API group \"\" in the namespace \"other\""
        ),
        "{message}"
    );
    assert!(config_map_value(&client, "other", "x").await.is_none());

    // Granting the right (a RoleBinding in `other`) lets the next attempt through.
    for object in rbac("other", "deployer-other", &["configmaps"]) {
        let mut object = object;
        if object["kind"] == "RoleBinding" {
            object["subjects"][0] =
                json!({"kind": "ServiceAccount", "name": "deployer", "namespace": "tenant"});
        }
        env.create_object(object).expect("rbac object");
    }
    settled(&api, "elsewhere", "True").await;
    assert_eq!(
        config_map_value(&client, "other", "x").await.as_deref(),
        Some("1")
    );

    // Prune acts as the service account too: `b` removed from the source is deleted.
    let second = config_map("tenant", "a", "2");
    artifacts.publish(
        &env,
        "tenant",
        "apps",
        "main@sha1:4444",
        &[("a.yaml", &second)],
    );
    wait_for("b pruned, a updated", WAIT, || async {
        let a = config_map_value(&client, "tenant", "a").await;
        let b = config_map_value(&client, "tenant", "b").await;
        (a.as_deref() == Some("2") && b.is_none()).then_some(())
    })
    .await;
    controller.stop().await;

    // --default-service-account: a Kustomization naming none impersonates the default, which
    // has no binding at all here.
    let options = KustomizeOptions {
        access: flux_bin::runtime::access::AccessOptions {
            default_service_account: "nobody".into(),
            ..Default::default()
        },
        ..KustomizeOptions::default()
    };
    let controller = Controller::start(client.clone(), options);
    let y = config_map("tenant", "y", "1");
    artifacts.publish(
        &env,
        "tenant",
        "defaulted",
        "main@sha1:5555",
        &[("y.yaml", &y)],
    );
    env.create_object(kustomization(
        "tenant",
        "defaulted",
        "defaulted",
        &json!({}),
    ))
    .expect("kustomization");
    let (_, _, message) = settled(&api, "defaulted", "False").await;
    assert!(
        message.contains(
            "User \"system:serviceaccount:tenant:nobody\" cannot get resource \"configmaps\""
        ),
        "{message}"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_cluster_through_kubeconfig_secret() {
    let home = common::testenv(&["flux-system"]).await;
    let remote = common::testenv(&["apps"]).await;
    let client = home.client().expect("client");
    let remote_client = remote.client().expect("remote client");
    let artifacts = ArtifactServer::start().await;
    let (a, b) = (config_map("apps", "a", "1"), config_map("apps", "b", "1"));
    artifacts.publish(
        &home,
        "flux-system",
        "fleet",
        "main@sha1:1111",
        &[("a.yaml", &a), ("b.yaml", &b)],
    );
    home.create_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "remote", "namespace": "flux-system"},
        "stringData": {"value": remote.kubeconfig_yaml()}}))
        .expect("kubeconfig secret");
    home.create_object(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "wrong-key", "namespace": "flux-system"},
        "stringData": {"config": remote.kubeconfig_yaml()}}))
        .expect("kubeconfig secret");
    let controller = Controller::start(client.clone(), KustomizeOptions::default());
    let api: Api<Kustomization> = Api::namespaced(client.clone(), "flux-system");
    let to_remote = |secret: &str| json!({"kubeConfig": {"secretRef": {"name": secret}}});
    home.create_object(kustomization(
        "flux-system",
        "remote",
        "fleet",
        &to_remote("remote"),
    ))
    .expect("kustomization");

    // Applied in the remote cluster only; the status lives in the home cluster.
    let (_, _, message) = settled(&api, "remote", "True").await;
    assert_eq!(message, "Applied revision: main@sha1:1111");
    assert_eq!(
        config_map_value(&remote_client, "apps", "a")
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        config_map_value(&remote_client, "apps", "b")
            .await
            .as_deref(),
        Some("1")
    );
    let home_namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    assert!(home_namespaces
        .get_opt("apps")
        .await
        .expect("read")
        .is_none());

    // Pruned in the remote cluster.
    artifacts.publish(
        &home,
        "flux-system",
        "fleet",
        "main@sha1:2222",
        &[("a.yaml", &a)],
    );
    wait_for("b pruned in the remote cluster", WAIT, || async {
        config_map_value(&remote_client, "apps", "b")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        config_map_value(&remote_client, "apps", "a")
            .await
            .as_deref(),
        Some("1")
    );

    // Missing Secret, or one without the `value` key: Flux's messages, nothing applied.
    for (name, secret, expected) in [
        ("missing", "absent", "unable to read KubeConfig secret 'flux-system/absent' error: secrets \"absent\" not found"),
        ("nokey", "wrong-key", "KubeConfig secret 'flux-system/wrong-key' does not contain a 'value' key with a kubeconfig"),
    ] {
        home.create_object(kustomization("flux-system", name, "fleet", &to_remote(secret)))
            .expect("kustomization");
        let (_, reason, message) = settled(&api, name, "False").await;
        assert_eq!((reason.as_str(), message.as_str()), ("ReconciliationFailed", expected));
    }

    // Deleting the Kustomization prunes through the remote client as well.
    api.delete("remote", &kube::api::DeleteParams::default())
        .await
        .expect("deleted");
    wait_for("a pruned on deletion", WAIT, || async {
        config_map_value(&remote_client, "apps", "a")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_controllers_reconcile_only_their_objects() {
    let env = common::testenv(&["flux-system", "apps"]).await;
    let client = env.client().expect("client");
    let artifacts = ArtifactServer::start().await;
    let (one, main) = (
        config_map("apps", "one", "1"),
        config_map("apps", "main", "1"),
    );
    artifacts.publish(
        &env,
        "flux-system",
        "one",
        "main@sha1:1111",
        &[("c.yaml", &one)],
    );
    artifacts.publish(
        &env,
        "flux-system",
        "main",
        "main@sha1:2222",
        &[("c.yaml", &main)],
    );
    let mut sharded = kustomization("flux-system", "sharded", "one", &json!({}));
    sharded["metadata"]["labels"] = json!({"sharding.fluxcd.io/key": "shard1"});
    env.create_object(sharded).expect("kustomization");
    env.create_object(kustomization(
        "flux-system",
        "unsharded",
        "main",
        &json!({}),
    ))
    .expect("kustomization");
    let api: Api<Kustomization> = Api::namespaced(client.clone(), "flux-system");
    let shard = |selector: &str| KustomizeOptions {
        label_selector: selector.to_string(),
        ..KustomizeOptions::default()
    };

    // The shard reconciles the labelled object; the unlabelled one stays untouched.
    let shard1 = Controller::start(client.clone(), shard("sharding.fluxcd.io/key in (shard1)"));
    settled(&api, "sharded", "True").await;
    assert_eq!(
        config_map_value(&client, "apps", "one").await.as_deref(),
        Some("1")
    );
    shard1.stop().await;
    // Untouched: no finalizer, no conditions (the status holds only the CRD's defaults).
    let unsharded = api.get("unsharded").await.expect("read");
    assert!(
        unsharded.metadata.finalizers.is_none(),
        "{:?}",
        unsharded.metadata
    );
    assert!(
        unsharded
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_none(),
        "{:?}",
        unsharded.status
    );
    assert!(config_map_value(&client, "apps", "main").await.is_none());

    // The main instance (`!sharding.fluxcd.io/key`) reconciles the other one and ignores the
    // labelled Kustomization's reconcile requests.
    let main_instance = Controller::start(client.clone(), shard("!sharding.fluxcd.io/key"));
    let request = |token: &'static str| {
        let api = api.clone();
        async move {
            for name in ["sharded", "unsharded"] {
                api.patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}})),
                )
                .await
                .expect("annotated");
            }
        }
    };
    request("first").await;
    wait_for("unsharded handled the request", WAIT, || async {
        let object = api.get("unsharded").await.ok()?;
        let status = object.status?;
        (status.last_handled_reconcile_at.as_deref() == Some("first")
            && ready(status.conditions.as_ref())?.0 == "True")
            .then_some(())
    })
    .await;
    assert_eq!(
        config_map_value(&client, "apps", "main").await.as_deref(),
        Some("1")
    );
    let sharded = api.get("sharded").await.expect("read");
    assert_eq!(
        sharded.status.and_then(|s| s.last_handled_reconcile_at),
        None,
        "the main instance reconciled a sharded object"
    );
    main_instance.stop().await;
}
