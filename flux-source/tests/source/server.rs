//! The artifact HTTP server: content length, ETag, symlinks, no traversal.

use flux_source::storage::Storage;

#[tokio::test]
async fn serves_artifacts_with_length_and_etag() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = Storage::new(tmp.path(), "localhost").unwrap();
    let mut a = storage.new_artifact("OCIRepository", "ns", "app", "abc.tar.gz", "v1@sha256:abc");
    let body: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    storage.write_bytes(&mut a, &body).unwrap();
    storage.symlink(&a, "latest.tar.gz").unwrap();
    std::fs::write(tmp.path().join("../outside-secret"), "x").ok();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let root = tmp.path().to_path_buf();
    let server = tokio::spawn(flux_source::server::serve(listener, root, async {
        let _ = stop_rx.await;
    }));

    let fetch = |path: String, etag: Option<String>| {
        tokio::task::spawn_blocking(move || {
            flux_source::tls::ensure_provider();
            let client = reqwest::blocking::Client::new();
            let mut req = client.get(format!("http://127.0.0.1:{port}/{path}"));
            if let Some(e) = etag {
                req = req.header("If-None-Match", e);
            }
            let resp = req.send().unwrap();
            let status = resp.status().as_u16();
            let len = resp
                .headers()
                .get("content-length")
                .map(|v| v.to_str().unwrap().to_string());
            let etag = resp
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_string());
            let bytes = resp.bytes().unwrap().to_vec();
            (status, len, etag, bytes)
        })
    };
    let (status, len, etag, bytes) = fetch(a.path.clone(), None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(len.as_deref(), Some("70000"));
    assert_eq!(bytes, body);
    let etag = etag.expect("etag");
    let (status, ..) = fetch(a.path.clone(), Some(etag.clone())).await.unwrap();
    assert_eq!(status, 304);
    let (status, _, latest_etag, bytes) = fetch("ocirepository/ns/app/latest.tar.gz".into(), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(bytes, body);
    assert_eq!(latest_etag.as_deref(), Some(etag.as_str()));
    // A new artifact under the same name gets a new ETag.
    storage.write_bytes(&mut a, b"replaced").unwrap();
    let (_, len, new_etag, bytes) = fetch(a.path.clone(), Some(etag.clone())).await.unwrap();
    assert_eq!(bytes, b"replaced");
    assert_eq!(len.as_deref(), Some("8"));
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()));
    for bad in [
        "../outside-secret",
        "%2e%2e/outside-secret",
        "ocirepository/ns/app/missing",
        "ocirepository/ns/app",
    ] {
        let (status, ..) = fetch(bad.into(), None).await.unwrap();
        assert!(status == 400 || status == 404, "{bad}: {status}");
    }
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
