//! HelmRepository/HelmChart against a static HTTP repository (lighttpd, with and without basic
//! auth), plus a server that drops the connection mid-transfer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use flux_source::artifact::{Digest, FetchOutcome};
use flux_source::helm::{self, HelmRepoSpec, ValuesSpec};
use flux_source::storage::Storage;

use crate::support::*;

/// Writes two chart versions (packaged by our packager) and an index into `dir`.
fn build_repo(dir: &Path, tamper_digest: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut entries = String::new();
    for version in ["1.0.0", "1.1.0", "2.0.0-beta.1"] {
        let src = tempfile::tempdir().unwrap();
        let c = src.path();
        std::fs::create_dir_all(c.join("templates")).unwrap();
        std::fs::write(
            c.join("Chart.yaml"),
            format!("apiVersion: v2\nname: demo\nversion: {version}\n"),
        )
        .unwrap();
        std::fs::write(c.join("values.yaml"), "replicas: 1\nimage: {tag: v1}\n").unwrap();
        std::fs::write(c.join("prod.yaml"), "replicas: 3\n").unwrap();
        std::fs::write(c.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
        let packaged = helm::chart::package(c, None, None).unwrap();
        let file = format!("demo-{version}.tgz");
        std::fs::write(dir.join(&file), &packaged.bytes).unwrap();
        let mut digest = Digest::sha256(&packaged.bytes).hex;
        if tamper_digest {
            digest = "0".repeat(64);
        }
        entries.push_str(&format!(
            "    - apiVersion: v2\n      name: demo\n      version: {version}\n      digest: {digest}\n      urls: [{file}]\n"
        ));
    }
    std::fs::write(
        dir.join("index.yaml"),
        format!(
            "apiVersion: v1\nentries:\n  demo:\n{entries}generated: \"2024-01-01T00:00:00Z\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn http_repository_index_and_charts() {
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    build_repo(&www.join("public"), false);
    build_repo(&www.join("private"), false);
    build_repo(&www.join("tampered"), true);
    let Some(server) = lighttpd(tmp.path(), &www, None, ("helm", "pw")) else {
        return;
    };
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);

    let spec = HelmRepoSpec::new(format!("{base}/public"));
    let (outcome, index) = helm::fetch_repository(&spec, &storage, "ns", "repo", None).unwrap();
    let FetchOutcome::New(repo_artifact) = outcome else {
        panic!("new index expected")
    };
    let raw = std::fs::read(www.join("public/index.yaml")).unwrap();
    assert_eq!(repo_artifact.revision, Digest::sha256(&raw).to_string());
    assert!(repo_artifact
        .path
        .ends_with(&format!("index-{}.yaml", Digest::sha256(&raw).hex)));
    assert_ne!(
        repo_artifact.digest.as_deref(),
        Some(repo_artifact.revision.as_str()),
        "digest is of the JSON"
    );
    let stored: serde_json::Value = serde_json::from_slice(
        &std::fs::read(storage.local_path(&repo_artifact).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["entries"]["demo"][0]["version"], "2.0.0-beta.1");
    let link = storage
        .local_path(&repo_artifact)
        .unwrap()
        .parent()
        .unwrap()
        .join("index.yaml");
    assert!(link.exists());
    // Same index again: unchanged.
    let (again, _) =
        helm::fetch_repository(&spec, &storage, "ns", "repo", Some(&repo_artifact)).unwrap();
    assert_eq!(again, FetchOutcome::Unchanged(repo_artifact.clone()));

    let chart = helm::fetch_chart_from_repository(
        &spec,
        &index,
        "demo",
        "",
        &ValuesSpec::default(),
        &storage,
        "ns",
        "demo",
    )
    .unwrap();
    assert_eq!(chart.revision, "1.1.0");
    assert_eq!(
        std::fs::read(storage.local_path(&chart).unwrap()).unwrap(),
        std::fs::read(www.join("public/demo-1.1.0.tgz")).unwrap(),
        "stored as downloaded"
    );
    let pinned = helm::fetch_chart_from_repository(
        &spec,
        &index,
        "demo",
        "~1.0",
        &ValuesSpec::default(),
        &storage,
        "ns",
        "demo",
    )
    .unwrap();
    assert_eq!(pinned.revision, "1.0.0");
    let values = ValuesSpec {
        files: vec!["values.yaml".into(), "prod.yaml".into()],
        ignore_missing: false,
        generation: 4,
    };
    let merged = helm::fetch_chart_from_repository(
        &spec, &index, "demo", "1.1.0", &values, &storage, "ns", "demo",
    )
    .unwrap();
    assert_eq!(merged.revision, "1.1.0+4");
    let out = tempfile::tempdir().unwrap();
    flux_source::extract::unpack_gz(
        std::fs::File::open(storage.local_path(&merged).unwrap()).unwrap(),
        out.path(),
        &flux_source::extract::Limits::default(),
        "chart",
    )
    .unwrap();
    let values = std::fs::read_to_string(out.path().join("demo/values.yaml")).unwrap();
    assert!(
        values.contains("replicas: 3") && values.contains("tag: v1"),
        "{values}"
    );
    assert!(helm::fetch_chart_from_repository(
        &spec,
        &index,
        "demo",
        ">5",
        &ValuesSpec::default(),
        &storage,
        "ns",
        "x"
    )
    .is_err());

    // Basic auth.
    let mut private = HelmRepoSpec::new(format!("{base}/private"));
    let err = helm::fetch_repository(&private, &storage, "ns", "private", None).unwrap_err();
    assert!(matches!(err, flux_source::Error::Auth { .. }), "{err}");
    private.auth.basic = Some(("helm".into(), "wrong".into()));
    assert!(matches!(
        helm::fetch_repository(&private, &storage, "ns", "private", None),
        Err(flux_source::Error::Auth { .. })
    ));
    private.auth.basic = Some(("helm".into(), "pw".into()));
    let (_, private_index) =
        helm::fetch_repository(&private, &storage, "ns", "private", None).unwrap();
    let c = helm::fetch_chart_from_repository(
        &private,
        &private_index,
        "demo",
        "1.0.0",
        &ValuesSpec::default(),
        &storage,
        "ns",
        "p",
    )
    .unwrap();
    assert_eq!(c.revision, "1.0.0");

    // Digest verification.
    let tampered = HelmRepoSpec::new(format!("{base}/tampered"));
    let (_, t_index) = helm::fetch_repository(&tampered, &storage, "ns", "t", None).unwrap();
    let err = helm::fetch_chart_from_repository(
        &tampered,
        &t_index,
        "demo",
        "",
        &ValuesSpec::default(),
        &storage,
        "ns",
        "t",
    )
    .unwrap_err();
    assert!(
        matches!(err, flux_source::Error::DigestMismatch { .. }),
        "{err}"
    );
    assert!(!storage
        .root()
        .join("helmchart/ns/t")
        .join("demo-1.1.0.tgz")
        .exists());
}

/// A server that promises 100000 bytes and hangs up after a few.
fn truncating_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\napiVersion: v1\nentries:\n",
            );
        }
    });
    (port, handle)
}

#[test]
fn server_down_mid_transfer_keeps_previous_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let mut previous =
        storage.new_artifact("HelmRepository", "ns", "r", "index-old.yaml", "sha256:old");
    storage
        .write_bytes(&mut previous, b"{\"apiVersion\":\"v1\"}")
        .unwrap();
    let (port, handle) = truncating_server();
    let spec = HelmRepoSpec::new(format!("http://127.0.0.1:{port}/repo"));
    let err = helm::fetch_repository(&spec, &storage, "ns", "r", Some(&previous)).unwrap_err();
    assert!(matches!(err, flux_source::Error::Http { .. }), "{err}");
    storage.verify(&previous).unwrap();
    let files: Vec<_> = std::fs::read_dir(storage.local_path(&previous).unwrap().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["index-old.yaml"]);
    drop(handle);
}
