//! Which cluster and identity a reconcile acts with: the controller's own client, the same
//! client impersonating the object's service account (`spec.serviceAccountName`, else
//! `--default-service-account`), or a client for a remote cluster built from the kubeconfig
//! in `spec.kubeConfig.secretRef` (impersonating there too when a service account is set), as
//! Flux's `runtime/client` Impersonator does. Used by kustomize- and helm-controller.

use std::task::{Context, Poll};

use flux_api::meta::KubeConfigReference;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::{Api, Client};

/// Settings of the controller that builds target clients.
#[derive(Clone, Debug, Default)]
pub struct AccessOptions {
    /// `--default-service-account`: impersonated when an object names none.
    pub default_service_account: String,
    /// `--insecure-kubeconfig-exec`: keep `user.exec` of remote kubeconfigs.
    pub insecure_kubeconfig_exec: bool,
    /// `--insecure-kubeconfig-tls`: keep `insecure-skip-tls-verify` of remote kubeconfigs.
    pub insecure_kubeconfig_tls: bool,
}

/// The remote-kubeconfig flags of kustomize- and helm-controller.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct KubeConfigFlags {
    /// Allow `user.exec` in kubeconfigs provided for remote apply.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub insecure_kubeconfig_exec: bool,
    /// Allow kubeconfigs provided for remote apply to disable TLS verification.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub insecure_kubeconfig_tls: bool,
}

impl AccessOptions {
    /// From `--default-service-account` and the kubeconfig flags.
    pub fn from_flags(default_service_account: &str, flags: &KubeConfigFlags) -> Self {
        AccessOptions {
            default_service_account: default_service_account.to_string(),
            insecure_kubeconfig_exec: flags.insecure_kubeconfig_exec,
            insecure_kubeconfig_tls: flags.insecure_kubeconfig_tls,
        }
    }
}

/// What an object asks for: its namespace, `spec.serviceAccountName`, `spec.kubeConfig`.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The object's namespace (service accounts and the kubeconfig Secret live there).
    pub namespace: &'a str,
    /// `spec.serviceAccountName`.
    pub service_account: Option<&'a str>,
    /// `spec.kubeConfig`.
    pub kube_config: Option<&'a KubeConfigReference>,
}

impl Target<'_> {
    /// The service account to impersonate: the object's, else the default; `None` for none.
    pub fn service_account_name(&self, options: &AccessOptions) -> Option<String> {
        self.service_account
            .filter(|name| !name.is_empty())
            .or_else(|| Some(options.default_service_account.as_str()).filter(|n| !n.is_empty()))
            .map(str::to_string)
    }

    /// Whether the target differs from the controller's own client.
    pub fn is_default(&self, options: &AccessOptions) -> bool {
        self.kube_config.is_none() && self.service_account_name(options).is_none()
    }
}

/// Why a target client could not be built (messages as Flux words them).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The kubeconfig Secret could not be read.
    #[error("unable to read KubeConfig secret '{namespace}/{name}' error: {message}")]
    ReadSecret {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The API's message.
        message: String,
    },
    /// The Secret has no kubeconfig under the expected key.
    #[error(
        "KubeConfig secret '{namespace}/{name}' does not contain a '{key}' key with a kubeconfig"
    )]
    MissingKey {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The key looked for.
        key: String,
    },
    /// The kubeconfig does not parse or names no usable cluster.
    #[error("invalid kubeconfig in secret '{namespace}/{name}': {message}")]
    InvalidKubeConfig {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// `kubeConfig` without a `secretRef` (the cloud-provider `configMapRef` is not built in).
    #[error("invalid .spec.kubeConfig, neither .spec.kubeConfig.provider nor .spec.kubeConfig.secretRef is set")]
    NoSecretRef,
    /// The service account name does not make a valid header value.
    #[error("invalid service account name {0:?}")]
    InvalidServiceAccount(String),
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The message of an API error without kube's wrapping (`secrets "x" not found`).
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The client a reconcile of `target` acts with (see the module docs). `base` is the
/// controller's own client; it also reads the kubeconfig Secret.
pub async fn target_client(
    base: &Client,
    target: Target<'_>,
    options: &AccessOptions,
) -> Result<Client, AccessError> {
    let cluster = match target.kube_config {
        None => base.clone(),
        Some(reference) => remote_client(base, target.namespace, reference, options).await?,
    };
    match target.service_account_name(options) {
        None => Ok(cluster),
        Some(name) => impersonate(cluster, &service_account_user(target.namespace, &name)),
    }
}

/// `client` acting as `user` (every request carries `Impersonate-User`).
pub fn impersonate(client: Client, user: &str) -> Result<Client, AccessError> {
    let header = HeaderValue::from_str(user)
        .map_err(|_| AccessError::InvalidServiceAccount(user.to_string()))?;
    let namespace = client.default_namespace().to_string();
    Ok(Client::new(
        Impersonating {
            inner: client,
            user: header,
        },
        namespace,
    ))
}

/// A tower service sending each request through `inner` with impersonation headers.
#[derive(Clone)]
struct Impersonating {
    inner: Client,
    user: HeaderValue,
}

impl tower_service::Service<Request<Body>> for Impersonating {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let headers = request.headers_mut();
        headers.remove("impersonate-group");
        headers.insert("impersonate-user", self.user.clone());
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(request).await })
    }
}

/// The kubeconfig text of the Secret `reference` names (key `key`, else `value`, else
/// `value.yaml`).
pub async fn read_kubeconfig(
    base: &Client,
    namespace: &str,
    reference: &KubeConfigReference,
) -> Result<String, AccessError> {
    let secret_ref = reference
        .secret_ref
        .as_ref()
        .ok_or(AccessError::NoSecretRef)?;
    let name = secret_ref.name.clone();
    let api: Api<Secret> = Api::namespaced(base.clone(), namespace);
    let secret = api.get(&name).await.map_err(|e| AccessError::ReadSecret {
        namespace: namespace.to_string(),
        name: name.clone(),
        message: api_message(&e),
    })?;
    let data = secret.data.unwrap_or_default();
    let key = secret_ref.key.clone().filter(|k| !k.is_empty());
    let found = match &key {
        Some(key) => data.get(key),
        None => data.get("value").or_else(|| data.get("value.yaml")),
    };
    let bytes = found.ok_or_else(|| AccessError::MissingKey {
        namespace: namespace.to_string(),
        name: name.clone(),
        key: key.unwrap_or_else(|| "value".to_string()),
    })?;
    Ok(String::from_utf8_lossy(&bytes.0).into_owned())
}

/// Drops what Flux does not trust in a tenant's kubeconfig unless the controller allows it:
/// exec credential plugins and disabled TLS verification.
pub fn sanitize(kubeconfig: &mut kube::config::Kubeconfig, options: &AccessOptions) {
    for named in &mut kubeconfig.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            if !options.insecure_kubeconfig_exec {
                auth.exec = None;
            }
            // Token files and auth providers read the controller's own disk/credentials.
            auth.token_file = None;
            auth.auth_provider = None;
        }
    }
    if !options.insecure_kubeconfig_tls {
        for named in &mut kubeconfig.clusters {
            if let Some(cluster) = named.cluster.as_mut() {
                cluster.insecure_skip_tls_verify = None;
            }
        }
    }
}

async fn remote_client(
    base: &Client,
    namespace: &str,
    reference: &KubeConfigReference,
    options: &AccessOptions,
) -> Result<Client, AccessError> {
    let text = read_kubeconfig(base, namespace, reference).await?;
    let name = reference
        .secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let invalid = |message: String| AccessError::InvalidKubeConfig {
        namespace: namespace.to_string(),
        name: name.clone(),
        message,
    };
    let mut kubeconfig =
        kube::config::Kubeconfig::from_yaml(&text).map_err(|e| invalid(e.to_string()))?;
    sanitize(&mut kubeconfig, options);
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| invalid(e.to_string()))?;
    // kube's connector is rustls; it needs the process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(config).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_falls_back_to_the_default() {
        let options = AccessOptions {
            default_service_account: "tenant".into(),
            ..AccessOptions::default()
        };
        let own = Target {
            namespace: "apps",
            service_account: Some("deployer"),
            kube_config: None,
        };
        assert_eq!(
            own.service_account_name(&options).as_deref(),
            Some("deployer")
        );
        let unset = Target {
            service_account: None,
            ..own
        };
        assert_eq!(
            unset.service_account_name(&options).as_deref(),
            Some("tenant")
        );
        assert!(!unset.is_default(&options));
        assert!(unset.is_default(&AccessOptions::default()));
        let empty = Target {
            service_account: Some(""),
            ..own
        };
        assert_eq!(empty.service_account_name(&AccessOptions::default()), None);
        assert_eq!(
            service_account_user("apps", "deployer"),
            "system:serviceaccount:apps:deployer"
        );
    }

    #[test]
    fn sanitize_drops_exec_and_insecure_tls_unless_allowed() {
        let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://remote:6443\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: abc\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: steal-creds\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n";
        let parsed = kube::config::Kubeconfig::from_yaml(text).expect("valid kubeconfig");
        let mut strict = parsed.clone();
        sanitize(&mut strict, &AccessOptions::default());
        let user = strict.auth_infos[0].auth_info.as_ref().expect("user");
        assert!(user.exec.is_none() && user.token.is_some());
        let cluster = strict.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.insecure_skip_tls_verify, None);
        let mut lax = parsed;
        sanitize(
            &mut lax,
            &AccessOptions {
                insecure_kubeconfig_exec: true,
                insecure_kubeconfig_tls: true,
                ..AccessOptions::default()
            },
        );
        assert!(lax.auth_infos[0]
            .auth_info
            .as_ref()
            .expect("user")
            .exec
            .is_some());
        assert_eq!(
            lax.clusters[0]
                .cluster
                .as_ref()
                .expect("cluster")
                .insecure_skip_tls_verify,
            Some(true)
        );
    }
}
