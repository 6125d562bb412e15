//! HelmChart from a source directory whose `Chart.yaml` declares dependencies: one from a
//! Helm repository served by lighttpd (with basic auth, credentials from the matching
//! HelmRepository settings), one local (`file://`).

use std::path::Path;

use flux_source::artifact::Digest;
use flux_source::helm::{self, deps::Repositories, HelmRepoSpec, ReconcileStrategy, ValuesSpec};
use flux_source::storage::Storage;

use crate::support::*;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `redis` 1.2.0, 1.2.5 and 1.3.0 packaged into `dir` with an index.
fn dependency_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut entries = String::new();
    for version in ["1.2.0", "1.2.5", "1.3.0"] {
        let src = tempfile::tempdir().unwrap();
        write(
            &src.path().join("Chart.yaml"),
            &format!("apiVersion: v2\nname: redis\nversion: {version}\n"),
        );
        write(&src.path().join("templates/svc.yaml"), "kind: Service\n");
        let packaged = helm::chart::package(src.path(), None, None).unwrap();
        let file = format!("redis-{version}.tgz");
        std::fs::write(dir.join(&file), &packaged.bytes).unwrap();
        let digest = Digest::sha256(&packaged.bytes).hex;
        entries.push_str(&format!(
            "    - apiVersion: v2\n      name: redis\n      version: {version}\n      digest: {digest}\n      urls: [{file}]\n"
        ));
    }
    write(
        &dir.join("index.yaml"),
        &format!("apiVersion: v1\nentries:\n  redis:\n{entries}"),
    );
}

fn tgz_names(bytes: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn chart_dependencies_from_repository_and_local_path() {
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    dependency_repo(&www.join("private/charts"));
    let Some(server) = lighttpd(tmp.path(), &www, None, ("helm", "pw")) else {
        return;
    };
    let repo_url = format!("http://127.0.0.1:{}/private/charts", server.port);
    let source = tmp.path().join("source");
    write(
        &source.join("charts/app/Chart.yaml"),
        &format!(
            "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: redis\n    version: ~1.2.0\n    repository: {repo_url}/\n  - name: common\n    version: 0.x\n    repository: file://../common\n"
        ),
    );
    write(&source.join("charts/app/Chart.lock"), "dependencies: []\n");
    write(
        &source.join("charts/app/templates/app.yaml"),
        "kind: Deployment\n",
    );
    write(
        &source.join("charts/common/Chart.yaml"),
        "apiVersion: v2\nname: common\nversion: 0.3.0\ntype: library\n",
    );
    write(
        &source.join("charts/common/templates/_h.tpl"),
        "{{/* */}}\n",
    );
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();

    let mut repos = Repositories::default();
    let mut spec = HelmRepoSpec::new(&repo_url);
    spec.auth.basic = Some(("helm".into(), "pw".into()));
    repos.insert(spec);
    let artifact = helm::build_chart_from_dir_with(
        &source,
        "charts/app",
        ReconcileStrategy::ChartVersion,
        "main@sha1:0000000000000000000000000000000000000000",
        &ValuesSpec::default(),
        &repos,
        &storage,
        "ns",
        "app",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(artifact.revision, "0.1.0");
    let names = tgz_names(&std::fs::read(storage.local_path(&artifact).unwrap()).unwrap());
    assert!(
        names.contains(&"app/charts/redis-1.2.5.tgz".to_string()),
        "highest match of ~1.2.0: {names:?}"
    );
    assert!(
        names.contains(&"app/charts/common/Chart.yaml".to_string()),
        "{names:?}"
    );
    assert!(
        !source.join("charts/app/charts").exists(),
        "source untouched"
    );

    // Without the repository's credentials the dependency cannot be fetched: no artifact.
    let err = helm::build_chart_from_dir(
        &source,
        "charts/app",
        ReconcileStrategy::ChartVersion,
        "main@sha1:0000000000000000000000000000000000000000",
        &ValuesSpec::default(),
        &storage,
        "ns",
        "anon",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("401") || err.to_string().contains("auth"),
        "{err}"
    );
    assert!(!storage.root().join("helmchart/ns/anon").exists());
}
