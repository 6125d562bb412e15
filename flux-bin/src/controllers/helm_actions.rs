//! helm-controller actions beyond install/upgrade: hooks with Helm's semantics (weights,
//! delete policies, Pod/Job waits, `last_run`), the test action, uninstall with its hooks
//! and options, Helm's ownership check, chart CRDs (root and enabled subcharts) and the live
//! `lookup` the renderer calls. Decisions live in [`super::helm_plan`].

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use kube::discovery::Scope;
use kube::Client;
use serde_json::Value;

use flux_api::helm::{DeletionPropagation, HelmRelease};
use flux_helm::release::{self as rel, status as rls, Release};

use super::common::split_api_version;
use super::helm::{is_not_found, now_string, object_api, set_status, Context, SecretStore};
use super::helm_plan::{self as plan, ActionOptions, HelmAction};

/// Helm's default hook delete policy when a hook sets none.
const BEFORE_HOOK_CREATION: &str = "before-hook-creation";

/// Runs the hooks of `event` selected by `include`, in Helm's order (weight, then name).
/// Each hook is (re)created (a previous instance is deleted first under
/// `before-hook-creation`), then waited on as Helm does: Jobs until complete, Pods until
/// they succeed, other kinds not at all. `last_run` is recorded in `release`. A failure stops
/// the run and applies `hook-failed`; once all succeeded, `hook-succeeded` is applied.
/// Returns how many hooks ran.
pub(super) async fn run_hooks(
    ctx: &Context,
    release: &mut Release,
    event: &str,
    timeout: Duration,
    include: &(dyn Fn(&rel::Hook) -> bool + Sync),
) -> Result<usize> {
    let hooks: Vec<rel::Hook> = rel::hooks_for(release, event)
        .into_iter()
        .filter(|h| include(h))
        .cloned()
        .collect();
    let mut done: Vec<(Api<DynamicObject>, String, Vec<String>)> = Vec::new();
    for hook in &hooks {
        let object: Value = serde_yaml::from_str(&hook.manifest)
            .map_err(|e| anyhow!("hook {}: invalid YAML: {e}", hook.path))?;
        let object = plan::with_ownership(object, &release.name, &release.namespace);
        let (api, name) = object_api(ctx, &object, &release.namespace).await?;
        let policies = if hook.delete_policies.is_empty() {
            vec![BEFORE_HOOK_CREATION.to_string()]
        } else {
            hook.delete_policies.clone()
        };
        if policies.iter().any(|p| p == BEFORE_HOOK_CREATION) {
            delete_and_wait(&api, &name, timeout)
                .await
                .map_err(|e| anyhow!("warning: Hook {event} {} failed: {e:#}", hook.path))?;
        }
        let started = now_string();
        let result = async {
            api.patch(
                &name,
                &kube::api::PatchParams::apply(super::helm::CONTROLLER).force(),
                &kube::api::Patch::Apply(&object),
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            wait_hook(&api, &name, &hook.kind, timeout).await
        }
        .await;
        if let Some(stored) = release
            .hooks
            .iter_mut()
            .find(|h| h.path == hook.path && h.name == hook.name && h.kind == hook.kind)
        {
            stored.last_run = rel::HookExecution {
                started_at: Some(started),
                completed_at: Some(now_string()),
                phase: if result.is_ok() {
                    "Succeeded"
                } else {
                    "Failed"
                }
                .to_string(),
            };
        }
        if let Err(e) = result {
            if policies.iter().any(|p| p == "hook-failed") {
                delete_quietly(&api, &name).await;
            }
            return Err(anyhow!("warning: Hook {event} {} failed: {e:#}", hook.path));
        }
        done.push((api, name, policies));
    }
    // Helm deletes succeeded hooks last to first.
    for (api, name, policies) in done.iter().rev() {
        if policies.iter().any(|p| p == "hook-succeeded") {
            delete_quietly(api, name).await;
        }
    }
    Ok(hooks.len())
}

async fn delete_quietly(api: &Api<DynamicObject>, name: &str) {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => tracing::warn!("deleting hook {name}: {e}"),
    }
}

/// Deletes an object and waits until it is gone (a re-created hook must not meet its
/// predecessor).
async fn delete_and_wait(api: &Api<DynamicObject>, name: &str, timeout: Duration) -> Result<()> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(anyhow!("{e}")),
    }
    let deadline = Instant::now() + timeout;
    while api
        .get_opt(name)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .is_some()
    {
        if Instant::now() >= deadline {
            return Err(anyhow!("timed out waiting for {name} to be deleted"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Helm's `WatchUntilReady` for hooks: a Job until `Complete` (or `Failed`), a Pod until
/// `Succeeded` (or `Failed`); other kinds are ready once created.
async fn wait_hook(
    api: &Api<DynamicObject>,
    name: &str,
    kind: &str,
    timeout: Duration,
) -> Result<()> {
    if kind != "Job" && kind != "Pod" {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    loop {
        let object = api.get(name).await.map_err(|e| anyhow!("{e}"))?;
        let status = object.data.get("status").cloned().unwrap_or(Value::Null);
        if let Some(done) = hook_outcome(kind, name, &status) {
            return done.map_err(|e| anyhow!(e));
        }
        if Instant::now() >= deadline {
            return Err(anyhow!("timed out waiting for the condition"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `Some(Ok)` when a hook Job/Pod finished well, `Some(Err(helm's message))` when it
/// failed, `None` while it runs.
fn hook_outcome(kind: &str, name: &str, status: &Value) -> Option<Result<(), String>> {
    if kind == "Pod" {
        return match status.get("phase").and_then(Value::as_str) {
            Some("Succeeded") => Some(Ok(())),
            Some("Failed") => Some(Err(format!("pod {name} failed"))),
            _ => None,
        };
    }
    let conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &conditions {
        let is_true = c.get("status").and_then(Value::as_str) == Some("True");
        match c.get("type").and_then(Value::as_str) {
            Some("Complete") if is_true => return Some(Ok(())),
            Some("Failed") if is_true => {
                let reason = c.get("reason").and_then(Value::as_str).unwrap_or_default();
                return Some(Err(format!("job {name} failed: {reason}")));
            }
            _ => {}
        }
    }
    None
}

/// `helm test` on the latest release: runs the selected `test` hooks, stores the release
/// with their `last_run` (the other test hooks keep theirs), and returns the tested release
/// with the number of test hooks it has, or the test failure. `Err` is a storage failure.
pub(super) async fn test_release(
    ctx: &Context,
    hr: &HelmRelease,
    store: &SecretStore,
    mut release: Release,
) -> Result<(Release, Result<usize>)> {
    let opts = plan::action_options(hr, HelmAction::Test);
    let include = |h: &rel::Hook| plan::test_selected(hr, &h.name);
    let ran = run_hooks(ctx, &mut release, "test", opts.timeout, &include).await;
    store.update(&release).await?;
    let count = plan::test_hooks(&release).len();
    Ok((release, ran.map(|_| count)))
}

/// Helm's uninstall of the latest release: marks it `uninstalling`, runs `pre-delete`
/// hooks, deletes the release objects (except `helm.sh/resource-policy: keep`) with the
/// `deletionPropagation` policy, waits for them to go unless `disableWait`, runs
/// `post-delete` hooks, then records `uninstalled` (`keepHistory`) or purges every revision.
pub(super) async fn uninstall_release(
    ctx: &Context,
    hr: &HelmRelease,
    store: &SecretStore,
    history: &[Release],
) -> Result<()> {
    let opts = plan::action_options(hr, HelmAction::Uninstall);
    let keep_history = hr
        .spec
        .uninstall
        .as_ref()
        .and_then(|u| u.keep_history)
        .unwrap_or(false);
    let propagation = match hr
        .spec
        .uninstall
        .as_ref()
        .and_then(|u| u.deletion_propagation)
        .unwrap_or_default()
    {
        DeletionPropagation::Foreground => PropagationPolicy::Foreground,
        DeletionPropagation::Orphan => PropagationPolicy::Orphan,
        DeletionPropagation::Background => PropagationPolicy::Background,
    };
    let Some(mut latest) = plan::latest(history).cloned() else {
        return Ok(());
    };
    if latest.status() != rls::UNINSTALLED {
        set_status(
            &mut latest,
            rls::UNINSTALLING,
            "Deletion in progress (or silently failed)",
        );
        if let Some(info) = latest.info.as_mut() {
            info.deleted = Some(now_string());
        }
        store.update(&latest).await?;
        if !opts.disable_hooks {
            run_hooks(ctx, &mut latest, "pre-delete", opts.timeout, &|_| true).await?;
        }
        let mut deleted = Vec::new();
        for object in plan::manifest_objects(&latest.manifest).map_err(|e| anyhow!(e))? {
            if object
                .pointer("/metadata/annotations/helm.sh~1resource-policy")
                .and_then(Value::as_str)
                == Some("keep")
            {
                continue;
            }
            let (api, name) = object_api(ctx, &object, &latest.namespace).await?;
            let params = DeleteParams {
                propagation_policy: Some(propagation.clone()),
                ..DeleteParams::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => deleted.push((api, name)),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(anyhow!("failed to delete release: {name}: {e}")),
            }
        }
        if opts.wait {
            let deadline = Instant::now() + opts.timeout;
            for (api, name) in &deleted {
                while api.get_opt(name).await?.is_some() {
                    if Instant::now() >= deadline {
                        return Err(anyhow!("timed out waiting for {name} to be deleted"));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if !opts.disable_hooks {
            run_hooks(ctx, &mut latest, "post-delete", opts.timeout, &|_| true).await?;
        }
        set_status(&mut latest, rls::UNINSTALLED, "Uninstallation complete");
    }
    if keep_history {
        store.update(&latest).await?;
    } else {
        for release in history {
            store
                .delete(&rel::storage_key(&release.name, release.version))
                .await?;
        }
    }
    Ok(())
}

/// Refuses to adopt an existing object the release does not own when take-ownership is
/// off (Helm's `existingResourceConflict`, "Unable to continue with install/update").
pub(super) async fn check_adoption(
    api: &Api<DynamicObject>,
    name: &str,
    kind: &str,
    release: &Release,
    opts: &ActionOptions,
    upgrade: bool,
) -> Result<bool> {
    let Some(live) = api.get_opt(name).await.map_err(|e| anyhow!("{e}"))? else {
        return Ok(false);
    };
    if opts.take_ownership {
        return Ok(true);
    }
    let live = serde_json::to_value(&live).context("encoding object")?;
    if let Some(err) = plan::ownership_error(&live, &release.name, &release.namespace) {
        let place = match live.pointer("/metadata/namespace").and_then(Value::as_str) {
            Some(ns) => format!("{kind} \"{name}\" in namespace \"{ns}\""),
            None => format!("{kind} \"{name}\""),
        };
        let action = if upgrade { "update" } else { "install" };
        return Err(anyhow!(
            "Unable to continue with {action}: {place} exists and cannot be imported into the current release: {err}"
        ));
    }
    Ok(true)
}

/// The `crds/` files of the chart and of every subchart enabled for `values` (Helm installs
/// all of them), as one manifest.
pub(super) fn chart_crds(
    archive: &[u8],
    values: &serde_json::Map<String, Value>,
) -> Result<String> {
    let mut chart = flux_helm::load_archive(archive, "chart.tgz")
        .map_err(|e| anyhow!("failed to load chart: {e}"))?;
    let user = flux_helm::json::from_serde(Value::Object(values.clone()));
    flux_helm::values::process_dependencies(&mut chart, &user, false)
        .map_err(|e| anyhow!("failed to load chart: {e}"))?;
    let mut manifest = String::new();
    collect_crds(&chart, &chart.name.clone(), &mut manifest);
    Ok(manifest)
}

fn collect_crds(chart: &flux_helm::Chart, path: &str, out: &mut String) {
    use std::fmt::Write as _;
    for (file, data) in chart.crd_files() {
        for doc in String::from_utf8_lossy(&data).split("\n---") {
            let doc = doc.trim_start_matches("---").trim_start_matches('\n');
            if doc.trim().is_empty() {
                continue;
            }
            let _ = write!(out, "---\n# Source: {path}/{file}\n{doc}\n");
        }
    }
    for sub in &chart.subcharts {
        collect_crds(sub, &format!("{path}/charts/{}", sub.name), out);
    }
}

/// Helm's `lookup` against the cluster: the object, a `*List` for an empty name, an empty
/// map when nothing is found. It runs on a blocking thread (the renderer is synchronous)
/// and drives the async client through the runtime handle.
pub(super) struct ClusterLookup {
    pub(super) client: Client,
    pub(super) handle: tokio::runtime::Handle,
}

impl flux_helm::Lookup for ClusterLookup {
    fn lookup(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> std::result::Result<flux_helm::Value, String> {
        let found = self
            .handle
            .block_on(lookup_object(
                &self.client,
                api_version,
                kind,
                namespace,
                name,
            ))
            .map_err(|e| format!("{e:#}"))?;
        Ok(flux_helm::json::from_serde(found))
    }
}

async fn lookup_object(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Value> {
    let (group, version) = split_api_version(api_version);
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| {
            anyhow!("unable to get apiresource from unstructured: {api_version}, Kind={kind}: {e}")
        })?;
    let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced && !namespace.is_empty() {
        Api::namespaced_with(client.clone(), namespace, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    if name.is_empty() {
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) if is_not_found(&e) => return Ok(Value::Object(serde_json::Map::new())),
            Err(e) => return Err(anyhow!("{e}")),
        };
        // List items come without their type; the dynamic client Helm uses sets it.
        let items: Vec<Value> = list
            .items
            .iter()
            .map(|o| {
                let mut item = serde_json::to_value(o).unwrap_or_default();
                if let Some(map) = item.as_object_mut() {
                    map.entry("apiVersion")
                        .or_insert_with(|| Value::String(api_version.to_string()));
                    map.entry("kind")
                        .or_insert_with(|| Value::String(kind.to_string()));
                }
                item
            })
            .collect();
        return Ok(serde_json::json!({
            "apiVersion": api_version,
            "kind": format!("{kind}List"),
            "metadata": {"resourceVersion": list.metadata.resource_version.unwrap_or_default()},
            "items": items,
        }));
    }
    match api.get_opt(name).await {
        Ok(Some(object)) => serde_json::to_value(&object).context("encoding object"),
        Ok(None) => Ok(Value::Object(serde_json::Map::new())),
        Err(e) if is_not_found(&e) => Ok(Value::Object(serde_json::Map::new())),
        Err(e) => Err(anyhow!("{e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hook_outcomes_follow_helm() {
        assert_eq!(hook_outcome("Pod", "p", &json!({"phase": "Running"})), None);
        assert_eq!(
            hook_outcome("Pod", "p", &json!({"phase": "Succeeded"})),
            Some(Ok(()))
        );
        assert_eq!(
            hook_outcome("Pod", "p", &json!({"phase": "Failed"})),
            Some(Err("pod p failed".into()))
        );
        assert_eq!(hook_outcome("Job", "j", &json!({})), None);
        assert_eq!(
            hook_outcome(
                "Job",
                "j",
                &json!({"conditions": [{"type": "Complete", "status": "True"}]})
            ),
            Some(Ok(()))
        );
        assert_eq!(
            hook_outcome(
                "Job",
                "j",
                &json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
            ),
            Some(Err("job j failed: BackoffLimitExceeded".into()))
        );
    }

    #[test]
    fn crds_of_enabled_subcharts_are_included() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        let crd = |kind: &str| {
            format!("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {kind}.example.com\n")
        };
        for (sub, dir_name) in [
            ("", ""),
            ("alpha", "charts/alpha/"),
            ("beta", "charts/beta/"),
        ] {
            let base = root.join(dir_name);
            std::fs::create_dir_all(base.join("crds")).unwrap();
            std::fs::create_dir_all(base.join("templates")).unwrap();
            let name = if sub.is_empty() { "app" } else { sub };
            std::fs::write(
                base.join("Chart.yaml"),
                format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
            )
            .unwrap();
            std::fs::write(base.join(format!("crds/{name}.yaml")), crd(name)).unwrap();
        }
        std::fs::write(
            root.join("Chart.yaml"),
            "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - {name: alpha, version: 0.1.0}\n  - {name: beta, version: 0.1.0, condition: beta.enabled}\n",
        )
        .unwrap();
        std::fs::write(root.join("values.yaml"), "beta: {enabled: false}\n").unwrap();
        let archive = flux_helm::package(&root).unwrap();
        let manifest = chart_crds(&archive, &serde_json::Map::new()).unwrap();
        assert!(manifest.contains("name: app.example.com"), "{manifest}");
        assert!(manifest.contains("name: alpha.example.com"), "{manifest}");
        assert!(!manifest.contains("beta.example.com"), "{manifest}");
        let values = json!({"beta": {"enabled": true}});
        let manifest = chart_crds(&archive, values.as_object().unwrap()).unwrap();
        assert!(manifest.contains("name: beta.example.com"), "{manifest}");
    }
}
