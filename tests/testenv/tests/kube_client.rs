//! `kube` clients (Api<T>, watcher, Controller) against the test server.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app".to_string(), "demo".to_string())])),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn api_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(resp) => Some(resp.code),
        _ => None,
    }
}

async fn env_and_client() -> (flux_testenv::TestEnv, kube::Client) {
    let env = flux_testenv::TestEnv::start().await.expect("start");
    let client = env.client().expect("client");
    (env, client)
}

#[tokio::test]
async fn api_crud_conflicts_and_selectors() {
    let (_env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let created = api
        .create(&PostParams::default(), &cm("a", &[("k", "v")]))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let err = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .expect_err("duplicate");
    assert_eq!(api_code(&err), Some(409));

    let mut stale = created.clone();
    stale.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let updated = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .expect("replace");
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let err = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .expect_err("stale replace");
    assert_eq!(api_code(&err), Some(409));
    if let kube::Error::Api(resp) = &err {
        assert_eq!(resp.reason, "Conflict");
        assert!(
            resp.message.contains("the object has been modified"),
            "{}",
            resp.message
        );
    }

    let mut other = cm("b", &[]);
    other.metadata.labels = Some(BTreeMap::from([("app".to_string(), "other".to_string())]));
    api.create(&PostParams::default(), &other)
        .await
        .expect("create b");
    let demo = api
        .list(&ListParams::default().labels("app=demo"))
        .await
        .expect("list");
    assert_eq!(
        demo.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        vec!["a"]
    );
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("list");
    assert_eq!(by_name.items.len(), 1);
    let not_in = api
        .list(&ListParams::default().labels("app notin (demo)"))
        .await
        .expect("list");
    assert_eq!(not_in.items.len(), 1);

    let err = api.get("missing").await.expect_err("404");
    assert_eq!(api_code(&err), Some(404));
    if let kube::Error::Api(resp) = &err {
        assert_eq!(resp.message, "configmaps \"missing\" not found");
    }
    let bad = api
        .create(&PostParams::default(), &cm("Not_Valid", &[]))
        .await
        .expect_err("422");
    assert_eq!(api_code(&bad), Some(422));

    let deleted = api
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deleted.is_right(), "built-in deletes answer with a Status");
    assert_eq!(api_code(&api.get("a").await.expect_err("gone")), Some(404));
}

#[tokio::test]
async fn pagination_and_dry_run() {
    let (env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), &[]))
            .await
            .expect("create");
    }
    let mut params = ListParams::default().limit(3);
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.expect("page");
        pages += 1;
        names.extend(page.items.iter().map(ResourceExt::name_any));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 7);

    let rv = env.resource_version();
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&pp, &cm("dry", &[])).await.expect("dry create");
    assert_eq!(
        api_code(&api.get("dry").await.expect_err("not stored")),
        Some(404)
    );
    let dp = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    api.delete("c0", &dp).await.expect("dry delete");
    api.get("c0").await.expect("still there");
    let patch = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    api.patch("c1", &patch, &Patch::Merge(json!({"data": {"x": "y"}})))
        .await
        .expect("dry patch");
    assert!(api
        .get("c1")
        .await
        .expect("c1")
        .data
        .is_none_or(|d| d.is_empty()));
    assert_eq!(env.resource_version(), rv, "dry runs write nothing");
}

#[tokio::test]
async fn patches_and_server_side_apply() {
    let (_env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let ssa = |m: &str| PatchParams::apply(m);
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "1", "b": "2"}});
    api.patch("s", &ssa("one"), &Patch::Apply(&obj))
        .await
        .expect("apply creates");
    let clash = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "9"}});
    let err = api
        .patch("s", &ssa("two"), &Patch::Apply(&clash))
        .await
        .expect_err("conflict");
    assert_eq!(api_code(&err), Some(409));
    if let kube::Error::Api(resp) = &err {
        assert!(
            resp.message.contains("conflict with \"one\""),
            "{}",
            resp.message
        );
    }
    let forced = api
        .patch("s", &ssa("two").force(), &Patch::Apply(&clash))
        .await
        .expect("force");
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("9")
    );
    let fields = forced.metadata.managed_fields.clone().unwrap_or_default();
    assert!(fields
        .iter()
        .any(|f| f.manager.as_deref() == Some("two") && f.operation.as_deref() == Some("Apply")));

    let merged = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": null, "c": "3"}})),
        )
        .await
        .expect("merge");
    let data = merged.data.expect("data");
    assert!(!data.contains_key("b") && data["c"] == "3");
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/d", "value": "4"}]))
            .expect("ops");
    let patched = api
        .patch("s", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .expect("json patch");
    assert_eq!(patched.data.expect("data")["d"], "4");
    let smp = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("smp");
    assert_eq!(smp.labels()["x"], "y");
}

#[tokio::test]
async fn raw_watch_resume_bookmarks_and_gone() {
    let (env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let start = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    api.create(&PostParams::default(), &cm("w1", &[]))
        .await
        .expect("create");
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .expect("patch");
    api.delete("w1", &DeleteParams::default())
        .await
        .expect("delete");
    let wp = WatchParams::default().timeout(5);
    let events: Vec<_> = api
        .watch(&wp, &start)
        .await
        .expect("watch")
        .take(4)
        .try_collect()
        .await
        .expect("events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        })
        .collect();
    assert_eq!(kinds, vec!["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);

    env.compact();
    let mut stream = api
        .watch(&WatchParams::default(), &start)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_recovers_from_dropped_watches_and_compaction() {
    let (env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("before", &[]))
        .await
        .expect("create");
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = kube::runtime::reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .applied_objects()
        .boxed();
    let handle = tokio::spawn(async move {
        let mut stream = stream;
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.expect("ready");
    let has = |name: &str| reader.state().iter().any(|o| o.name_any() == name);
    assert!(has("before"));
    env.compact();
    env.drop_watches();
    api.create(&PostParams::default(), &cm("after", &[]))
        .await
        .expect("create");
    tokio::time::timeout(Duration::from_secs(20), async {
        while !has("after") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("watcher saw the object created after the watch was dropped");
    api.delete("before", &DeleteParams::default())
        .await
        .expect("delete");
    tokio::time::timeout(Duration::from_secs(20), async {
        while has("before") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("deletion reached the store");
    handle.abort();
}

#[tokio::test]
async fn streaming_list_watcher() {
    let (_env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("s{i}"), &[]))
            .await
            .expect("create");
    }
    let config = watcher::Config::default().streaming_lists();
    let mut stream = watcher(api.clone(), config).boxed();
    let mut names = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Some(ev) = tokio::time::timeout_at(deadline, stream.try_next())
        .await
        .expect("in time")
        .expect("ok")
    {
        match ev {
            watcher::Event::InitApply(o) => names.push(o.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    names.sort();
    assert_eq!(names, vec!["s0", "s1", "s2"]);
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "testenv.flux-rs.io",
    version = "v1",
    kind = "Gadget",
    namespaced,
    status = "GadgetStatus"
)]
pub struct GadgetSpec {
    size: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
pub struct GadgetStatus {
    seen: i64,
}

#[tokio::test]
async fn controller_reconciles_custom_resources() {
    let (_env, client) = env_and_client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Gadget::crd())
        .await
        .expect("crd");
    let gadgets: Api<Gadget> = Api::default_namespaced(client.clone());
    let g = gadgets
        .create(
            &PostParams::default(),
            &Gadget::new("g1", GadgetSpec { size: 3 }),
        )
        .await
        .expect("create");
    assert_eq!(g.metadata.generation, Some(1));

    struct Ctx {
        client: kube::Client,
    }
    async fn reconcile(g: Arc<Gadget>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
        let ns = g.namespace().unwrap_or_default();
        let api: Api<Gadget> = Api::namespaced(ctx.client.clone(), &ns);
        // Status through server-side apply on the status subresource, as controllers do.
        let status = json!({"apiVersion": "testenv.flux-rs.io/v1", "kind": "Gadget",
            "status": {"seen": g.spec.size}});
        api.patch_status(
            &g.name_any(),
            &PatchParams::apply("gadget-controller").force(),
            &Patch::Apply(status),
        )
        .await?;
        let owner = g.controller_owner_ref(&()).expect("owner ref");
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{}-out", g.name_any()), "ownerReferences": [owner]},
            "stringData": {"size": g.spec.size.to_string()}});
        secrets
            .patch(
                &format!("{}-out", g.name_any()),
                &PatchParams::apply("gadget-controller").force(),
                &Patch::Apply(&secret),
            )
            .await?;
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<Gadget>, _: &kube::Error, _: Arc<Ctx>) -> Action {
        Action::requeue(Duration::from_millis(200))
    }
    let controller = Controller::new(gadgets.clone(), watcher::Config::default())
        .owns(
            Api::<Secret>::default_namespaced(client.clone()),
            watcher::Config::default(),
        )
        .run(
            reconcile,
            error_policy,
            Arc::new(Ctx {
                client: client.clone(),
            }),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let wait = |name: &'static str, want: i64| {
        let gadgets = gadgets.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    if let Ok(g) = gadgets.get(name).await {
                        if g.status.as_ref().map(|s| s.seen) == Some(want) {
                            return g;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .expect("reconciled in time")
        }
    };
    let g = wait("g1", 3).await;
    assert_eq!(
        g.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
    let s = secrets.get("g1-out").await.expect("owned secret");
    assert_eq!(s.data.expect("data")["size"].0, b"3");

    gadgets
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}})),
        )
        .await
        .expect("patch");
    let g = wait("g1", 5).await;
    assert_eq!(g.metadata.generation, Some(2));

    gadgets
        .delete("g1", &DeleteParams::foreground())
        .await
        .expect("delete");
    tokio::time::timeout(Duration::from_secs(20), async {
        while secrets.get_opt("g1-out").await.expect("get").is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("garbage collected");
    handle.abort();
}

#[tokio::test]
async fn fault_injection_and_workload_readiness() {
    let (env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    env.fail_next(2, 503);
    assert_eq!(
        api_code(&api.list(&ListParams::default()).await.expect_err("fail 1")),
        Some(503)
    );
    assert_eq!(
        api_code(&api.list(&ListParams::default()).await.expect_err("fail 2")),
        Some(503)
    );
    api.list(&ListParams::default())
        .await
        .expect("third succeeds");
    env.fail_next_matching(1, 500, Some("/secrets"));
    api.list(&ListParams::default())
        .await
        .expect("configmaps unaffected");
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    assert_eq!(
        api_code(
            &secrets
                .list(&ListParams::default())
                .await
                .expect_err("secrets fail")
        ),
        Some(500)
    );

    env.set_delay(Duration::from_millis(300));
    let t = std::time::Instant::now();
    api.list(&ListParams::default()).await.expect("slow list");
    assert!(t.elapsed() >= Duration::from_millis(300));
    env.set_delay(Duration::ZERO);

    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let d: Deployment = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    assert!(
        deployments.get("web").await.expect("get").status.is_none(),
        "no controller until the switch is on"
    );
    env.set_workloads_ready(true);
    let status = deployments
        .get("web")
        .await
        .expect("get")
        .status
        .expect("status");
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.observed_generation, Some(1));
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("scale");
    let d = deployments.get("web").await.expect("get");
    assert_eq!(d.status.expect("status").available_replicas, Some(4));

    // A failed rollout, written directly for a health-check test.
    let failed = json!({"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
    env.patch_status("apps/v1", "Deployment", Some("default"), "web", failed)
        .expect("patch status");
    let d = deployments.get("web").await.expect("get");
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    assert_eq!(
        conditions[0].reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );
    assert_eq!(d.metadata.generation, Some(2));

    // Annotations are limited to 256 KiB in total.
    let huge = "x".repeat(300_000);
    let err = api
        .patch(
            "c-missing",
            &PatchParams::apply("big"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c-missing", "annotations": {"big": huge}}})),
        )
        .await
        .expect_err("too long");
    assert_eq!(api_code(&err), Some(422));
}

#[tokio::test]
async fn events_share_storage_between_api_groups() {
    let (_env, client) = env_and_client().await;
    let new_api: Api<k8s_openapi::api::events::v1::Event> = Api::default_namespaced(client.clone());
    let ev: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e1"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "flux-rs", "reportingInstance": "flux-rs-0",
        "action": "Reconcile", "reason": "Succeeded", "type": "Normal",
        "note": "applied revision main@sha1:abc",
        "regarding": {"kind": "GitRepository", "name": "podinfo", "namespace": "default"}
    }))
    .expect("event");
    new_api
        .create(&PostParams::default(), &ev)
        .await
        .expect("create");
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::default_namespaced(client);
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=podinfo"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let e = &listed.items[0];
    assert_eq!(e.message.as_deref(), Some("applied revision main@sha1:abc"));
    assert_eq!(e.reporting_component.as_deref(), Some("flux-rs"));
    let back = new_api.get("e1").await.expect("get");
    assert_eq!(back.note.as_deref(), Some("applied revision main@sha1:abc"));
    assert_eq!(
        back.regarding.and_then(|r| r.name).as_deref(),
        Some("podinfo")
    );
}

#[tokio::test]
async fn kube_runtime_finalizer_flow() {
    use kube::runtime::finalizer::{finalizer, Event as Finalizer};
    use std::sync::atomic::{AtomicUsize, Ordering};
    const NAME: &str = "testenv.flux-rs.io/cleanup";

    let (_env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let cleanups = Arc::new(AtomicUsize::new(0));

    struct Ctx {
        api: Api<ConfigMap>,
        cleanups: Arc<AtomicUsize>,
    }
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct ReconcileError(String);
    async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
        let cleanups = Arc::clone(&ctx.cleanups);
        finalizer(&ctx.api, NAME, cm, |event| async move {
            match event {
                Finalizer::Apply(_) => Ok::<_, ReconcileError>(Action::await_change()),
                Finalizer::Cleanup(_) => {
                    cleanups.fetch_add(1, Ordering::SeqCst);
                    Ok(Action::await_change())
                }
            }
        })
        .await
        .map_err(|e| ReconcileError(e.to_string()))
    }
    fn error_policy(_: Arc<ConfigMap>, _: &ReconcileError, _: Arc<Ctx>) -> Action {
        Action::requeue(Duration::from_millis(100))
    }
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        cleanups: Arc::clone(&cleanups),
    });
    let handle = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );
    api.create(&PostParams::default(), &cm("guarded", &[]))
        .await
        .expect("create");
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let c = api.get("guarded").await.expect("get");
            if c.finalizers().iter().any(|f| f == NAME) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("finalizer added");
    api.delete("guarded", &DeleteParams::default())
        .await
        .expect("delete");
    tokio::time::timeout(Duration::from_secs(20), async {
        while api.get_opt("guarded").await.expect("get").is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("object removed once the finalizer ran");
    assert_eq!(cleanups.load(Ordering::SeqCst), 1);
    handle.abort();
}

#[tokio::test]
async fn selector_watch_sees_objects_leave_and_enter() {
    let (_env, client) = env_and_client().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let start = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    api.create(&PostParams::default(), &cm("sel", &[]))
        .await
        .expect("create");
    let relabel = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"app": v}}}));
    api.patch("sel", &PatchParams::default(), &relabel("other"))
        .await
        .expect("leave");
    api.patch("sel", &PatchParams::default(), &relabel("demo"))
        .await
        .expect("enter");
    let wp = WatchParams::default().labels("app=demo").timeout(5);
    let events: Vec<_> = api
        .watch(&wp, &start)
        .await
        .expect("watch")
        .take(3)
        .try_collect()
        .await
        .expect("events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        })
        .collect();
    assert_eq!(kinds, vec!["ADDED", "DELETED", "ADDED"]);
}
