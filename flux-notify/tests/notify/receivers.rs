//! Receivers over HTTP: `/hook/<digest>`, each type's validation with signatures computed
//! by the real algorithms, and the `reconcile.fluxcd.io/requestedAt` annotation.

use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Digest;

use flux_notify::provider::Secrets;
use flux_notify::receiver::{GcrTokenValidator, Receiver, RECONCILE_REQUEST_ANNOTATION};
use flux_notify::server::{self, MemoryReconciler, Notifier, Options, Registry};

const TOKEN: &str = "receiver-token";

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(body: &[u8]) -> String {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(TOKEN.as_bytes()).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn sha256_sig(body: &[u8]) -> String {
    format!("sha256={}", hmac_hex::<Hmac<sha2::Sha256>>(body))
}

fn sha1_sig(body: &[u8]) -> String {
    format!("sha1={}", hmac_hex::<Hmac<sha1::Sha1>>(body))
}

struct FakeGoogle;

impl GcrTokenValidator for FakeGoogle {
    fn validate(&self, authorization: &str, email: &str, audience: &str) -> Result<(), String> {
        if authorization == "Bearer good-id-token"
            && email == "push@proj.iam.gserviceaccount.com"
            && audience == "https://hook"
        {
            Ok(())
        } else {
            Err("invalid ID token".into())
        }
    }
}

struct Harness {
    url: String,
    store: Arc<MemoryReconciler>,
    receiver: Receiver,
}

impl Harness {
    async fn new(yaml_type: &str, events: &[&str]) -> Self {
        let yaml = format!(
            "metadata: {{name: hook-{yaml_type}, namespace: flux-system}}\nspec:\n  type: {yaml_type}\n  events: {events:?}\n  secretRef: {{name: receiver-token}}\n  resources:\n    - {{kind: GitRepository, name: fleet}}\n    - {{kind: OCIRepository, name: '*', matchLabels: {{team: shop}}}}\n"
        );
        let receiver = Receiver::from_yaml(&yaml).unwrap();
        let mut secrets = Secrets::default();
        secrets.insert(
            "flux-system",
            "receiver-token",
            &[
                ("token", TOKEN),
                ("email", "push@proj.iam.gserviceaccount.com"),
                ("audience", "https://hook"),
            ],
        );
        let store = Arc::new(MemoryReconciler::default());
        store.add(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "flux-system",
            "fleet",
            &[],
        );
        store.add(
            "source.toolkit.fluxcd.io/v1",
            "OCIRepository",
            "flux-system",
            "shop-a",
            &[("team", "shop")],
        );
        store.add(
            "source.toolkit.fluxcd.io/v1",
            "OCIRepository",
            "flux-system",
            "ops-b",
            &[("team", "ops")],
        );
        let registry = Registry {
            receivers: vec![receiver.clone()],
            secrets,
            ..Registry::default()
        };
        let reconciler: Arc<dyn server::Reconciler> = store.clone();
        let notifier = Notifier::with_gcr(
            registry,
            Options::default(),
            reconciler,
            Arc::new(FakeGoogle),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::serve(listener, server::receiver_router(notifier)));
        Harness {
            url,
            store,
            receiver,
        }
    }

    fn path(&self) -> String {
        self.receiver.webhook_path(TOKEN)
    }

    async fn post(&self, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
        let mut req = reqwest::Client::new()
            .post(format!("{}{}", self.url, self.path()))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    fn annotated(&self, kind: &str, name: &str) -> bool {
        self.store
            .annotation(kind, "flux-system", name, RECONCILE_REQUEST_ANNOTATION)
            .is_some()
    }

    fn assert_reconciled(&self) {
        assert!(self.annotated("GitRepository", "fleet"));
        assert!(
            self.annotated("OCIRepository", "shop-a"),
            "matchLabels selection"
        );
        assert!(
            !self.annotated("OCIRepository", "ops-b"),
            "other labels untouched"
        );
        let v = self
            .store
            .annotation(
                "GitRepository",
                "flux-system",
                "fleet",
                RECONCILE_REQUEST_ANNOTATION,
            )
            .unwrap();
        assert!(v.ends_with(" +0000 UTC"), "Go time.String() form: {v}");
    }

    fn assert_untouched(&self) {
        assert!(!self.annotated("GitRepository", "fleet"));
    }
}

#[test]
fn digest_is_sha256_of_token_name_namespace() {
    let r = Receiver::from_yaml(
        "metadata: {name: github-receiver, namespace: flux-system}\nspec: {type: github}",
    )
    .unwrap();
    let digest = hex::encode(sha2::Sha256::digest(
        b"receiver-tokengithub-receiverflux-system",
    ));
    assert_eq!(r.webhook_path(TOKEN), format!("/hook/{digest}"));
}

#[tokio::test]
async fn generic() {
    let h = Harness::new("generic", &[]).await;
    assert_eq!(h.post(&[], b"{}").await.0, 200);
    h.assert_reconciled();
}

#[tokio::test]
async fn unknown_path_is_404() {
    let h = Harness::new("generic", &[]).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/hook/{}", h.url, "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    h.assert_untouched();
}

#[tokio::test]
async fn generic_hmac() {
    let h = Harness::new("generic-hmac", &[]).await;
    let body = br#"{"tag":"v1.2.3"}"#;
    let (status, msg) = h
        .post(&[("X-Signature", sha256_sig(b"tampered"))], body)
        .await;
    assert_eq!(status, 401, "{msg}");
    assert!(!msg.contains(TOKEN));
    assert_eq!(h.post(&[], body).await.0, 401, "missing signature");
    h.assert_untouched();
    assert_eq!(
        h.post(&[("X-Signature", sha1_sig(body))], body).await.0,
        200,
        "sha1 accepted"
    );
    assert_eq!(
        h.post(&[("X-Signature", sha256_sig(body))], body).await.0,
        200
    );
    let sha512 = format!("sha512={}", hmac_hex::<Hmac<sha2::Sha512>>(body));
    assert_eq!(h.post(&[("X-Signature", sha512)], body).await.0, 200);
    h.assert_reconciled();
}

#[tokio::test]
async fn github() {
    let h = Harness::new("github", &["push", "ping"]).await;
    let body = br#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}"#;
    let (status, _) = h
        .post(
            &[
                ("X-GitHub-Event", "push".into()),
                ("X-Hub-Signature-256", sha256_sig(b"{}")),
            ],
            body,
        )
        .await;
    assert_eq!(status, 401);
    let (status, msg) = h
        .post(
            &[
                ("X-GitHub-Event", "issues".into()),
                ("X-Hub-Signature-256", sha256_sig(body)),
            ],
            body,
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        msg.contains(r#"the GitHub event "issues" is not authorised"#),
        "{msg}"
    );
    h.assert_untouched();
    // Legacy X-Hub-Signature (sha1) is accepted when the sha256 header is absent.
    assert_eq!(
        h.post(
            &[
                ("X-GitHub-Event", "Ping".into()),
                ("X-Hub-Signature", sha1_sig(body))
            ],
            body
        )
        .await
        .0,
        200
    );
    assert_eq!(
        h.post(
            &[
                ("X-GitHub-Event", "push".into()),
                ("X-Hub-Signature-256", sha256_sig(body))
            ],
            body
        )
        .await
        .0,
        200
    );
    h.assert_reconciled();
}

#[tokio::test]
async fn gitlab() {
    let h = Harness::new("gitlab", &["Push Hook"]).await;
    assert_eq!(
        h.post(
            &[
                ("X-Gitlab-Token", "wrong".into()),
                ("X-Gitlab-Event", "Push Hook".into())
            ],
            b"{}"
        )
        .await
        .0,
        401
    );
    assert_eq!(
        h.post(
            &[
                ("X-Gitlab-Token", TOKEN.into()),
                ("X-Gitlab-Event", "Tag Push Hook".into())
            ],
            b"{}"
        )
        .await
        .0,
        400
    );
    h.assert_untouched();
    assert_eq!(
        h.post(
            &[
                ("X-Gitlab-Token", TOKEN.into()),
                ("X-Gitlab-Event", "push hook".into())
            ],
            b"{}"
        )
        .await
        .0,
        200
    );
    h.assert_reconciled();
}

#[tokio::test]
async fn bitbucket_server() {
    let h = Harness::new("bitbucket", &["repo:refs_changed"]).await;
    let body = br#"{"eventKey":"repo:refs_changed"}"#;
    assert_eq!(
        h.post(
            &[
                ("X-Event-Key", "repo:refs_changed".into()),
                ("X-Hub-Signature", sha256_sig(b"x"))
            ],
            body
        )
        .await
        .0,
        401
    );
    h.assert_untouched();
    assert_eq!(
        h.post(
            &[
                ("X-Event-Key", "repo:refs_changed".into()),
                ("X-Hub-Signature", sha256_sig(body))
            ],
            body
        )
        .await
        .0,
        200
    );
    h.assert_reconciled();
}

#[tokio::test]
async fn harbor() {
    let h = Harness::new("harbor", &[]).await;
    assert_eq!(
        h.post(&[("Authorization", format!("Bearer {TOKEN}"))], b"{}")
            .await
            .0,
        401
    );
    h.assert_untouched();
    assert_eq!(
        h.post(
            &[("Authorization", TOKEN.into())],
            br#"{"type":"PUSH_ARTIFACT"}"#
        )
        .await
        .0,
        200
    );
    h.assert_reconciled();
}

#[tokio::test]
async fn nexus() {
    let h = Harness::new("nexus", &[]).await;
    let body = br#"{"action":"CREATED","repositoryName":"docker-hosted"}"#;
    assert_eq!(h.post(&[], body).await.0, 401, "missing signature");
    assert_eq!(
        h.post(
            &[(
                "X-Nexus-Webhook-Signature",
                hmac_hex::<Hmac<sha2::Sha256>>(body)
            )],
            body
        )
        .await
        .0,
        401,
        "sha256 is not Nexus' algorithm"
    );
    h.assert_untouched();
    assert_eq!(
        h.post(
            &[(
                "X-Nexus-Webhook-Signature",
                hmac_hex::<Hmac<sha1::Sha1>>(body)
            )],
            body
        )
        .await
        .0,
        200
    );
    h.assert_reconciled();
}

#[tokio::test]
async fn dockerhub_quay_acr_decode_payloads() {
    for (ty, good) in [
        (
            "dockerhub",
            r#"{"push_data":{"tag":"v1"},"repository":{"repo_url":"https://hub.docker.com/r/org/app"}}"#,
        ),
        (
            "quay",
            r#"{"docker_url":"quay.io/org/app","updated_tags":["v1"]}"#,
        ),
        (
            "acr",
            r#"{"action":"push","target":{"repository":"app","tag":"v1"}}"#,
        ),
    ] {
        let h = Harness::new(ty, &[]).await;
        let (status, msg) = h.post(&[], b"not json").await;
        assert_eq!(status, 400, "{ty}");
        assert!(msg.contains("cannot decode"), "{ty}: {msg}");
        h.assert_untouched();
        assert_eq!(h.post(&[], good.as_bytes()).await.0, 200, "{ty}");
        h.assert_reconciled();
    }
}

#[tokio::test]
async fn gcr() {
    let h = Harness::new("gcr", &[]).await;
    let data = base64::engine::general_purpose::STANDARD.encode(
        r#"{"action":"INSERT","digest":"gcr.io/p/app@sha256:abc","tag":"gcr.io/p/app:v1"}"#,
    );
    let body = serde_json::to_vec(&serde_json::json!({"message": {"data": data, "messageId": "1", "publishTime": "2026-01-02T15:04:05Z"}, "subscription": "s"})).unwrap();
    assert_eq!(
        h.post(&[("Authorization", "Bearer forged".into())], &body)
            .await
            .0,
        401
    );
    h.assert_untouched();
    assert_eq!(
        h.post(&[("Authorization", "Bearer good-id-token".into())], &body)
            .await
            .0,
        200
    );
    h.assert_reconciled();
}

#[tokio::test]
async fn cdevents() {
    let h = Harness::new("cdevents", &["dev.cdevents.artifact.published.0.1.1"]).await;
    let event = serde_json::json!({
        "context": {"version": "0.4.1", "id": "271069a8", "source": "/ci/pipeline", "type": "dev.cdevents.artifact.published.0.1.1", "timestamp": "2026-01-02T15:04:05Z"},
        "subject": {"id": "pkg:oci/app@sha256:abc", "content": {}},
    });
    let body = serde_json::to_vec(&event).unwrap();
    let (status, msg) = h
        .post(
            &[("Ce-Type", "dev.cdevents.artifact.published.0.1.1".into())],
            br#"{"context":{}}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert!(msg.contains("unable to validate CDEvent"), "{msg}");
    assert_eq!(
        h.post(
            &[("Ce-Type", "dev.cdevents.build.started.0.1.1".into())],
            &body
        )
        .await
        .0,
        400
    );
    h.assert_untouched();
    assert_eq!(
        h.post(
            &[("Ce-Type", "dev.cdevents.artifact.published.0.1.1".into())],
            &body
        )
        .await
        .0,
        200
    );
    h.assert_reconciled();
}

#[tokio::test]
async fn body_limit_is_413() {
    let h = Harness::new("generic", &[]).await;
    assert_eq!(h.post(&[], &vec![b'a'; 3 * 1024 * 1024 + 1]).await.0, 413);
    h.assert_untouched();
}

#[tokio::test]
async fn missing_object_is_500() {
    let h = Harness::new("generic", &[]).await;
    h.store
        .objects
        .lock()
        .unwrap()
        .retain(|o| o.name != "fleet");
    let (status, msg) = h.post(&[], b"{}").await;
    assert_eq!(status, 500);
    assert!(msg.contains("not found"), "{msg}");
}
