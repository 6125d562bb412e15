//! OCIRepository against Debian's docker-registry (distribution) on plain HTTP.

use std::collections::BTreeMap;
use std::process::Command;

use flux_source::artifact::FetchOutcome;
use flux_source::oci::{
    self, LayerOperation, LayerSelector, OciOptions, OciRef, OciSpec, Reference, Registry,
};
use flux_source::storage::Storage;

use crate::support::*;

pub(crate) fn registry(dir: &std::path::Path) -> Option<Server> {
    let bin = require("docker-registry", "OCI test")?;
    let port = free_port();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("registry-data").display()
        ),
    )
    .unwrap();
    Some(spawn(
        Command::new(bin).arg("serve").arg(&config),
        port,
        "docker-registry",
    ))
}

fn annotations(revision: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            oci::ANNOTATION_CREATED.to_string(),
            "2024-01-01T00:00:00Z".to_string(),
        ),
        (
            oci::ANNOTATION_SOURCE.to_string(),
            "https://github.com/example/app".to_string(),
        ),
        (oci::ANNOTATION_REVISION.to_string(), revision.to_string()),
    ])
}

fn raw_tar_gz_with(name: &str) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(b"00000000001\0");
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.push(b'x');
    tar.resize(1024, 0);
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_tag_semver_digest_copy_and_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(server) = registry(tmp.path()) else {
        return;
    };
    let host = format!("127.0.0.1:{}", server.port);
    let options = OciOptions {
        insecure: true,
        ..OciOptions::default()
    };
    let reg = Registry::new(&options).unwrap();

    let content = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(content.path().join("apps")).unwrap();
    std::fs::write(content.path().join("apps/app.yaml"), "kind: Namespace\n").unwrap();
    std::fs::write(content.path().join("apps/skip.md"), "docs\n").unwrap();
    let (tgz, _) = flux_source::archive::pack_to_vec(content.path(), None).unwrap();
    let mut digests = BTreeMap::new();
    for tag in ["v1.0.0", "v1.2.0", "v2.0.0", "latest"] {
        let reference = Reference::with_tag(host.clone(), "flux/manifests".into(), tag.into());
        let digest = reg
            .push_artifact(
                &reference,
                tgz.clone(),
                annotations(&format!("main@sha1:{}", "a".repeat(40))),
            )
            .await
            .unwrap();
        digests.insert(tag, digest);
    }
    let storage = Storage::new(tmp.path().join("storage"), "localhost").unwrap();
    let url = format!("oci://{host}/flux/manifests");
    let spec = |reference: OciRef| OciSpec {
        url: url.clone(),
        reference,
        layer_selector: LayerSelector::default(),
        ignore: Some("*.md\n".into()),
        options: options.clone(),
    };

    let outcome = oci::fetch(
        &spec(OciRef {
            semver: Some("1.x".into()),
            ..OciRef::default()
        }),
        &storage,
        "ns",
        "app",
        None,
        true,
    )
    .await
    .unwrap();
    let FetchOutcome::New(artifact) = outcome else {
        panic!("new artifact expected")
    };
    assert_eq!(artifact.revision, format!("v1.2.0@{}", digests["v1.2.0"]));
    assert_eq!(
        artifact.metadata.as_ref().unwrap()[oci::ANNOTATION_SOURCE],
        "https://github.com/example/app"
    );
    let names = tar_names(&storage.local_path(&artifact).unwrap());
    assert_eq!(
        names,
        [".", "apps", "apps/app.yaml"],
        "ignore applied on extract"
    );
    storage.verify(&artifact).unwrap();

    // Unchanged revision → no new artifact.
    let again = oci::fetch(
        &spec(OciRef {
            semver: Some("1.x".into()),
            ..OciRef::default()
        }),
        &storage,
        "ns",
        "app",
        Some(&artifact),
        true,
    )
    .await
    .unwrap();
    assert_eq!(again, FetchOutcome::Unchanged(artifact.clone()));

    let latest = oci::fetch(
        &spec(OciRef::default()),
        &storage,
        "ns",
        "latest",
        None,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        latest.artifact().revision,
        format!("latest@{}", digests["latest"])
    );
    let by_digest = oci::fetch(
        &spec(OciRef {
            digest: Some(digests["v2.0.0"].clone()),
            tag: Some("v1.0.0".into()),
            ..OciRef::default()
        }),
        &storage,
        "ns",
        "digest",
        None,
        true,
    )
    .await
    .unwrap();
    assert_eq!(by_digest.artifact().revision, digests["v2.0.0"]);

    // Copy: the layer blob is stored as-is.
    let mut copy_spec = spec(OciRef {
        tag: Some("v1.0.0".into()),
        ..OciRef::default()
    });
    copy_spec.layer_selector = LayerSelector {
        media_type: Some(oci::FLUX_CONTENT_MEDIA_TYPE.into()),
        operation: LayerOperation::Copy,
    };
    let copied = oci::fetch(&copy_spec, &storage, "ns", "copy", None, true)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(storage.local_path(copied.artifact()).unwrap()).unwrap(),
        tgz
    );

    // pull_artifact (what `flux-rs pull artifact` uses).
    let (rev, ann, blob) = oci::pull_artifact(
        &format!("{url}:v2.0.0"),
        &options,
        &LayerSelector::default(),
    )
    .await
    .unwrap();
    assert_eq!(rev, format!("v2.0.0@{}", digests["v2.0.0"]));
    assert_eq!(
        ann[oci::ANNOTATION_REVISION],
        format!("main@sha1:{}", "a".repeat(40))
    );
    assert_eq!(blob, tgz);

    // Missing tag, missing semver match, wrong media type.
    let missing = oci::fetch(
        &spec(OciRef {
            tag: Some("nope".into()),
            ..OciRef::default()
        }),
        &storage,
        "ns",
        "missing",
        None,
        true,
    )
    .await;
    assert!(missing.is_err());
    let no_semver = oci::fetch(
        &spec(OciRef {
            semver: Some(">=5".into()),
            ..OciRef::default()
        }),
        &storage,
        "ns",
        "missing",
        None,
        true,
    )
    .await
    .unwrap_err();
    assert!(
        no_semver.to_string().contains("no match found"),
        "{no_semver}"
    );

    // Corrupt and hostile layers: clear errors, previous artifact kept, nothing new written.
    let bad_ref = Reference::with_tag(host.clone(), "flux/manifests".into(), "latest".into());
    reg.push_artifact(&bad_ref, b"this is not gzip".to_vec(), annotations("x"))
        .await
        .unwrap();
    let err = oci::fetch(
        &spec(OciRef::default()),
        &storage,
        "ns",
        "latest",
        Some(latest.artifact()),
        true,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, flux_source::Error::Tarball { .. }), "{err}");
    storage.verify(latest.artifact()).unwrap();
    reg.push_artifact(&bad_ref, raw_tar_gz_with("../evil.yaml"), annotations("y"))
        .await
        .unwrap();
    let err = oci::fetch(
        &spec(OciRef::default()),
        &storage,
        "ns",
        "latest",
        Some(latest.artifact()),
        true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, flux_source::Error::IllegalPath { .. }),
        "{err}"
    );
    storage.verify(latest.artifact()).unwrap();
    let dir = storage
        .local_path(latest.artifact())
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let tarballs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz") && n != "latest.tar.gz")
        .collect();
    assert_eq!(tarballs.len(), 1, "{tarballs:?}");
    assert!(!tmp
        .path()
        .join("storage/ocirepository/ns/evil.yaml")
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_registry_is_an_error() {
    let port = free_port();
    let options = OciOptions {
        insecure: true,
        ..OciOptions::default()
    };
    let err = oci::pull_artifact(
        &format!("oci://127.0.0.1:{port}/x:v1"),
        &options,
        &LayerSelector::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, flux_source::Error::Oci { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_helm_repository_chart_pull() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(server) = registry(tmp.path()) else {
        return;
    };
    let host = format!("127.0.0.1:{}", server.port);
    let options = OciOptions {
        insecure: true,
        ..OciOptions::default()
    };
    let reg = Registry::new(&options).unwrap();
    let mut charts = BTreeMap::new();
    for version in ["1.0.0", "1.1.0", "1.1.0+build.2", "2.0.0-rc.1"] {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(
            src.path().join("Chart.yaml"),
            format!("apiVersion: v2\nname: demo\nversion: {version}\n"),
        )
        .unwrap();
        let packaged = flux_source::helm::chart::package(src.path(), None, None).unwrap();
        let reference = Reference::with_tag(
            host.clone(),
            "charts/demo".into(),
            version.replace('+', "_"),
        );
        reg.push_single_layer(
            &reference,
            (packaged.bytes.clone(), oci::HELM_CHART_MEDIA_TYPE),
            (br#"{"name":"demo"}"#.to_vec(), oci::HELM_CONFIG_MEDIA_TYPE),
            BTreeMap::new(),
        )
        .await
        .unwrap();
        charts.insert(version, packaged.bytes);
    }
    let url = format!("oci://{host}/charts");
    let (version, bytes) = oci::pull_helm_chart(&url, "demo", "1.0.0", &options)
        .await
        .unwrap();
    assert_eq!(version, "1.0.0");
    assert_eq!(bytes, charts["1.0.0"]);
    let (version, _) = oci::pull_helm_chart(&url, "demo", "~1", &options)
        .await
        .unwrap();
    assert!(version.starts_with("1.1.0"), "{version}");
    let (version, bytes) = oci::pull_helm_chart(&url, "demo", "1.1.0+build.2", &options)
        .await
        .unwrap();
    assert_eq!(version, "1.1.0+build.2");
    assert_eq!(bytes, charts["1.1.0+build.2"]);
    let (version, _) = oci::pull_helm_chart(&url, "demo", ">=2.0.0-0", &options)
        .await
        .unwrap();
    assert_eq!(version, "2.0.0-rc.1");
    assert!(oci::pull_helm_chart(&url, "demo", ">3", &options)
        .await
        .is_err());
    assert!(oci::pull_helm_chart(&url, "missing", "*", &options)
        .await
        .is_err());
}
