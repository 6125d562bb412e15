//! Release storage interop between flux-helm and the real Helm 4.3.1, through committed
//! fixtures in `tests/data/interop/`:
//!
//! - `helm4-v1.json`, `helm4-v2.json`: the release Secrets the real `helm4` wrote into
//!   flux-testenv for `helm4 install rel chart -n ns1` and then
//!   `helm4 upgrade rel chart -n ns1 --set greeting=hi` (server-side metadata stripped).
//!   flux-helm must decode them, and its own encoding of the same releases must match them
//!   field by field.
//! - `flux-v1.json`, `flux-v2.json`: the same two revisions encoded by flux-helm
//!   (`FLUX_HELM_WRITE_FIXTURES=1` rewrites them). With the oracle installed
//!   (`~/.cache/flux-oracles/bin/helm4`, or `FLUX_HELM4=/path/to/helm`), the last test loads
//!   them into flux-testenv and runs `helm4 list`, `get manifest`, `get values`, `history` and
//!   `rollback` against them; without it, that test prints a notice and passes.

use std::path::{Path, PathBuf};

use flux_helm::release::{self, Release};
use serde_json::Value as Json;

const INSTALL_TIME: &str = "2026-01-01T10:00:00.000000001Z";
const UPGRADE_TIME: &str = "2026-01-01T11:00:00.000000002Z";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop")
}

fn read_json(name: &str) -> Json {
    let text = std::fs::read_to_string(data().join(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn user_values(revision: i64) -> flux_helm::Value {
    let values = flux_helm::Value::new_map();
    if revision > 1 {
        flux_helm::values::parse_set("greeting=hi", &values).expect("--set");
    }
    values
}

/// The release flux-helm records for revision 1 (install) or 2 (upgrade with
/// `greeting=hi`) of the interop chart.
fn our_release(revision: i64, status: &str) -> Release {
    let chart = flux_helm::load(&data().join("chart")).expect("chart");
    let opts = flux_helm::RenderOptions {
        release_name: "rel".into(),
        namespace: "ns1".into(),
        is_upgrade: revision > 1,
        ..flux_helm::RenderOptions::default()
    };
    let values = user_values(revision);
    let env = flux_helm::ReleaseEnv {
        revision,
        ..flux_helm::ReleaseEnv::default()
    };
    let rendered = flux_helm::render_in(chart.clone(), &values, &opts, &env).expect("render");
    let (now, description) = if revision == 1 {
        (INSTALL_TIME, "Install complete")
    } else {
        (UPGRADE_TIME, "Upgrade complete")
    };
    let mut rel = release::new_release(
        "rel",
        "ns1",
        revision,
        &chart,
        &values,
        &rendered,
        status,
        now,
        description,
    );
    if let Some(info) = rel.info.as_mut() {
        info.first_deployed = Some(INSTALL_TIME.into());
    }
    rel
}

#[test]
fn releases_written_by_helm4_decode() {
    let v1 = release::from_secret(&read_json("helm4-v1.json")).expect("decode v1");
    let v2 = release::from_secret(&read_json("helm4-v2.json")).expect("decode v2");
    for (rel, version, status, greeting) in [
        (&v1, 1, release::status::SUPERSEDED, "hello"),
        (&v2, 2, release::status::DEPLOYED, "hi"),
    ] {
        assert_eq!(rel.name, "rel");
        assert_eq!(rel.namespace, "ns1");
        assert_eq!(rel.version, version);
        assert_eq!(rel.status(), status);
        assert_eq!(
            rel.chart_name_version(),
            ("interop".to_string(), "0.1.0".to_string())
        );
        let ours = our_release(version, status);
        assert_eq!(rel.manifest, ours.manifest, "manifest of v{version}");
        assert!(rel.manifest.contains(&format!("greeting: \"{greeting}\"")));
        let info = rel.info.as_ref().expect("info");
        assert_eq!(info.notes, format!("rel says {greeting}.\n"));
        assert_eq!(rel.hooks.len(), 1);
        let hook = &rel.hooks[0];
        assert_eq!(hook.name, "rel-hook");
        assert_eq!(hook.kind, "ConfigMap");
        assert_eq!(hook.path, "interop/templates/hook.yaml");
        assert_eq!(hook.events, ["pre-install", "pre-upgrade"]);
        assert_eq!(hook.weight, -5);
        assert_eq!(hook.delete_policies, ["before-hook-creation"]);
        assert!(hook.manifest.contains(&format!("revision: \"{version}\"")));
        assert_eq!(hook.manifest, ours.hooks[0].manifest);
    }
    // Helm omits an empty `config`.
    assert_eq!(v1.config, None);
    assert_eq!(
        v2.config.as_ref().and_then(|c| c.get("greeting")),
        Some(&Json::from("hi"))
    );
    let chart = v2.chart.as_ref().expect("chart");
    assert_eq!(chart["metadata"]["appVersion"], "1.2.3");
    assert_eq!(chart["values"]["labels"]["tier"], "backend");
    // The Secret around it.
    let secret = read_json("helm4-v2.json");
    assert_eq!(secret["type"], "helm.sh/release.v1");
    assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.rel.v2");
    assert_eq!(secret["metadata"]["labels"]["owner"], "helm");
    assert_eq!(secret["metadata"]["labels"]["status"], "deployed");
}

/// Compares two JSON values and names the first differing path.
fn first_difference(path: &str, ours: &Json, theirs: &Json) -> Option<String> {
    match (ours, theirs) {
        (Json::Object(a), Json::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (x, y) = (
                    a.get(k).unwrap_or(&Json::Null),
                    b.get(k).unwrap_or(&Json::Null),
                );
                first_difference(&format!("{path}.{k}"), x, y)
            })
        }
        (Json::Array(a), Json::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        _ if ours == theirs => None,
        _ => Some(format!("{path}: ours {ours}, helm's {theirs}")),
    }
}

#[test]
fn our_encoding_matches_helms_field_by_field() {
    for (name, version, status) in [
        ("helm4-v1.json", 1, release::status::SUPERSEDED),
        ("helm4-v2.json", 2, release::status::DEPLOYED),
    ] {
        let theirs = release::from_secret(&read_json(name)).expect("decode");
        let mut ours = our_release(version, status);
        // What only a live install records: the clock, and the hooks' run results.
        let their_info = theirs.info.clone().expect("info");
        if let Some(info) = ours.info.as_mut() {
            info.first_deployed.clone_from(&their_info.first_deployed);
            info.last_deployed.clone_from(&their_info.last_deployed);
        }
        for (hook, their_hook) in ours.hooks.iter_mut().zip(&theirs.hooks) {
            hook.last_run = their_hook.last_run.clone();
        }
        let mut ours_json = serde_json::to_value(&ours).expect("ours");
        let theirs_json = serde_json::to_value(&theirs).expect("theirs");
        // Helm 4 records the chart files' modification times; our loader does not keep them.
        copy_modtimes(&mut ours_json, &theirs_json);
        if let Some(diff) = first_difference("release", &ours_json, &theirs_json) {
            panic!("{name}: {diff}");
        }
        // Helm's own JSON, as stored, holds exactly the fields we model.
        let raw = raw_release_json(&read_json(name));
        if let Some(diff) = first_difference("stored", &ours_json, &raw) {
            panic!("{name}: {diff}");
        }
        // And our Secret carries the same labels and type as Helm's.
        let secret = release::to_secret(&ours).expect("secret");
        let helm_secret = read_json(name);
        assert_eq!(secret["type"], helm_secret["type"]);
        assert_eq!(secret["metadata"]["name"], helm_secret["metadata"]["name"]);
        let (mut labels, mut helm_labels) = (
            secret["metadata"]["labels"].clone(),
            helm_secret["metadata"]["labels"].clone(),
        );
        // `modifiedAt` is the write time in seconds: Helm's clock, our deploy time.
        let ours_at = labels["modifiedAt"]
            .as_str()
            .expect("modifiedAt")
            .to_string();
        let expected_at = release::unix_seconds(
            ours.info
                .as_ref()
                .and_then(|i| i.last_deployed.as_deref())
                .expect("last_deployed"),
        );
        assert_eq!(ours_at.parse::<i64>().ok(), expected_at);
        assert!(helm_labels["modifiedAt"]
            .as_str()
            .is_some_and(|s| s.parse::<i64>().is_ok()));
        labels["modifiedAt"] = Json::Null;
        helm_labels["modifiedAt"] = Json::Null;
        assert_eq!(labels, helm_labels);
    }
}

fn copy_modtimes(ours: &mut Json, theirs: &Json) {
    for key in ["modtime", "schemamodtime"] {
        ours["chart"][key] = theirs["chart"][key].clone();
    }
    if let (Some(mine), Some(helms)) = (
        ours["chart"]["templates"].as_array_mut(),
        theirs["chart"]["templates"].as_array(),
    ) {
        for (t, h) in mine.iter_mut().zip(helms) {
            t["modtime"] = h["modtime"].clone();
        }
    }
}

/// The release JSON inside a Secret, without going through our types.
fn raw_release_json(secret: &Json) -> Json {
    use base64::Engine as _;
    let outer = secret["data"]["release"].as_str().expect("data.release");
    let inner = base64::engine::general_purpose::STANDARD
        .decode(outer)
        .expect("api base64");
    release::decode_json(&String::from_utf8(inner).expect("base64 text")).expect("release JSON")
}

#[test]
fn flux_fixtures_are_what_flux_helm_encodes() {
    let write = std::env::var_os("FLUX_HELM_WRITE_FIXTURES").is_some();
    for (name, version, status) in [
        ("flux-v1.json", 1, release::status::SUPERSEDED),
        ("flux-v2.json", 2, release::status::DEPLOYED),
    ] {
        let secret = release::to_secret(&our_release(version, status)).expect("secret");
        if write {
            let text = serde_json::to_string_pretty(&secret).expect("json") + "\n";
            std::fs::write(data().join(name), text).expect("write fixture");
        }
        let committed = read_json(name);
        assert_eq!(committed["metadata"], secret["metadata"], "{name}");
        assert_eq!(committed["type"], secret["type"], "{name}");
        assert_eq!(
            release::from_secret(&committed).expect("committed"),
            release::from_secret(&secret).expect("ours"),
            "{name}: the committed fixture is not what flux-helm encodes now"
        );
    }
}

fn helm4() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLUX_HELM4") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".cache/flux-oracles/bin/helm4");
    p.is_file().then_some(p)
}

struct Helm {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    async fn run(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(&self.bin)
            .args(args)
            .args(["--namespace", "ns1", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", self.home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.home.path().join("config"))
            .env("HELM_DATA_HOME", self.home.path().join("data"))
            .output()
            .await
            .expect("run helm4");
        assert!(
            out.status.success(),
            "helm4 {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    async fn json(&self, args: &[&str]) -> Json {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.run(&all).await).expect("helm JSON output")
    }
}

fn stored_release(env: &flux_testenv::TestEnv, version: i64) -> Release {
    let store = env.store();
    let rt = store
        .registry
        .find_kind("v1", "Secret")
        .cloned()
        .expect("secrets");
    let secret = store
        .get(&rt, Some("ns1"), &release::storage_key("rel", version))
        .expect("release secret");
    release::from_secret(&secret).expect("decode stored release")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_reads_and_rolls_back_releases_we_stored() {
    let Some(bin) = helm4() else {
        println!("NOTICE: helm4 oracle not installed; skipping the helm4 interop test");
        return;
    };
    let env = flux_testenv::TestEnv::start().await.expect("testenv");
    let home = tempfile::tempdir().expect("tempdir");
    let kubeconfig = home.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    env.create_yaml(
        "ns",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns1\n",
    )
    .expect("namespace");
    for name in ["flux-v1.json", "flux-v2.json"] {
        env.create_object(read_json(name)).expect("seed release");
    }
    let helm = Helm {
        bin,
        kubeconfig,
        home,
    };

    let list = helm.json(&["list"]).await;
    assert_eq!(list[0]["name"], "rel");
    assert_eq!(list[0]["namespace"], "ns1");
    assert_eq!(list[0]["revision"], "2");
    assert_eq!(list[0]["status"], "deployed");
    assert_eq!(list[0]["chart"], "interop-0.1.0");
    assert_eq!(list[0]["app_version"], "1.2.3");

    let v1 = our_release(1, release::status::SUPERSEDED);
    let v2 = our_release(2, release::status::DEPLOYED);
    // `helm get manifest` prints the stored manifest and a newline.
    assert_eq!(
        helm.run(&["get", "manifest", "rel"]).await,
        format!("{}\n", v2.manifest)
    );
    assert_eq!(
        helm.json(&["get", "values", "rel"]).await,
        serde_json::json!({"greeting": "hi"})
    );
    let notes = helm.run(&["get", "notes", "rel"]).await;
    assert!(notes.contains("rel says hi."), "{notes}");

    let history = helm.json(&["history", "rel"]).await;
    let rows: Vec<(i64, String, String)> = history
        .as_array()
        .expect("history rows")
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["description"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (1, "superseded".to_string(), "Install complete".to_string()),
            (2, "deployed".to_string(), "Upgrade complete".to_string()),
        ]
    );

    let out = helm.run(&["rollback", "rel", "1"]).await;
    assert!(out.contains("Rollback was a success"), "{out}");
    // Helm recorded revision 3 in the Secret format we read, and superseded ours.
    let v3 = stored_release(&env, 3);
    assert_eq!(v3.status(), release::status::DEPLOYED);
    assert_eq!(v3.info.as_ref().expect("info").description, "Rollback to 1");
    assert_eq!(v3.manifest, v1.manifest);
    assert_eq!(v3.config, v1.config);
    assert_eq!(
        stored_release(&env, 2).status(),
        release::status::SUPERSEDED
    );
    let history = helm.json(&["history", "rel"]).await;
    assert_eq!(history.as_array().map(Vec::len), Some(3));
    // The rollback applied revision 1's objects.
    let store = env.store();
    let rt = store
        .registry
        .find_kind("v1", "ConfigMap")
        .cloned()
        .expect("configmaps");
    let cm = store
        .get(&rt, Some("ns1"), "rel-config")
        .expect("rel-config applied by the rollback");
    assert_eq!(cm["data"]["greeting"], "hello");
}
