//! Bucket against moto's S3 server (from PyPI), set up with boto3.

use std::process::Command;

use flux_source::artifact::FetchOutcome;
use flux_source::bucket::{self, BucketSpec, S3Config};
use flux_source::storage::Storage;

use crate::support::*;

fn moto_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: skipping bucket test: python3 with moto[server] is not installed (CI installs it via .ci/setup.d/source.sh)");
    }
    ok
}

fn boto(port: u16, script: &str) {
    let program = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', aws_access_key_id='AKID', \
         aws_secret_access_key='SECRET', region_name='us-east-1')\n{script}\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn s3_bucket_prefix_ignore_and_etag_changes() {
    if !moto_available() {
        return;
    }
    let port = free_port();
    let _server = spawn(
        Command::new("python3").args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]),
        port,
        "moto server",
    );
    boto(
        port,
        "s3.create_bucket(Bucket='flux')\n\
         for k, v in [('apps/a.yaml', 'a: 1'), ('apps/sub/b.yaml', 'b: 2'), ('apps/readme.md', 'x'), \
         ('other/c.yaml', 'c'), ('.sourceignore', '*.md\\n'), ('apps/dir/', '')]:\n    s3.put_object(Bucket='flux', Key=k, Body=v)",
    );
    let tmp = tempfile::tempdir().unwrap();
    let storage = Storage::new(tmp.path(), "localhost").unwrap();
    let config = |secret: &str| S3Config {
        endpoint: format!("127.0.0.1:{port}"),
        bucket: "flux".into(),
        region: "us-east-1".into(),
        insecure: true,
        access_key: Some("AKID".into()),
        secret_key: Some(secret.into()),
        timeout: std::time::Duration::from_secs(30),
        ca_pem: None,
        client_cert: None,
        proxy: None,
    };
    let spec = BucketSpec {
        s3: config("SECRET"),
        prefix: "apps/".into(),
        ignore: None,
    };
    let first = bucket::fetch(&spec, &storage, "ns", "b", None).unwrap();
    let FetchOutcome::New(first) = first else {
        panic!("new artifact expected")
    };
    let names = tar_names(&storage.local_path(&first).unwrap());
    assert_eq!(
        names,
        [".", "apps", "apps/a.yaml", "apps/sub", "apps/sub/b.yaml"]
    );
    assert!(first.revision.starts_with("sha256:"));
    assert_eq!(
        first.path,
        format!(
            "bucket/ns/b/{}.tar.gz",
            first.revision.trim_start_matches("sha256:")
        )
    );

    let again = bucket::fetch(&spec, &storage, "ns", "b", Some(&first)).unwrap();
    assert_eq!(again, FetchOutcome::Unchanged(first.clone()));

    boto(
        port,
        "s3.put_object(Bucket='flux', Key='apps/a.yaml', Body='a: 2')",
    );
    let changed = bucket::fetch(&spec, &storage, "ns", "b", Some(&first)).unwrap();
    assert!(matches!(changed, FetchOutcome::New(ref a) if a.revision != first.revision));

    let mut ignored = spec.clone();
    ignored.ignore = Some("sub/\n".into());
    let names = tar_names(
        &storage
            .local_path(
                bucket::fetch(&ignored, &storage, "ns", "i", None)
                    .unwrap()
                    .artifact(),
            )
            .unwrap(),
    );
    assert_eq!(names, [".", "apps", "apps/a.yaml"]);

    let mut missing = spec.clone();
    missing.s3.bucket = "nope".into();
    let err = bucket::fetch(&missing, &storage, "ns", "m", None).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}
