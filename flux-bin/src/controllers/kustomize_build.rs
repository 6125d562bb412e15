//! The manifests of one Kustomization: download the source artifact (digest verified),
//! extract it safely, then generate/overlay the kustomization, build, decrypt with SOPS,
//! substitute post-build variables and stamp owner labels and `commonMetadata` — all with
//! the flux-* libraries, no API calls (variables and keys are passed in).

use std::path::Path;
use std::time::Duration;

use flux_api::constants::label;
use flux_api::kustomize::{KustomizationSpec, SubstituteStrategy};
use flux_kustomize::flux::{build_flux, FluxSpec};
use flux_kustomize::postbuild::{self, Strategy, Variables};
use flux_kustomize::DiskFs;
use serde_json::Value;

use crate::manifest::{set_metadata, substitution_disabled};
use sha2::Digest as _;

/// Why fetching an artifact failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The artifact URL answered 404 (the source is being rebuilt).
    #[error("Source is not ready, artifact not found")]
    NotFound,
    /// Transport or server failure.
    #[error("failed to download artifact from {url}: {message}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// Wrong bytes.
    #[error("failed to verify artifact: computed digest doesn't match '{expected}'")]
    Digest {
        /// The expected digest.
        expected: String,
    },
    /// Bad tarball.
    #[error("failed to extract artifact: {0}")]
    Extract(String),
}

/// Downloads `url` (with `retries` retries on transport errors and 5xx), checks the
/// `sha256:` digest and extracts it into `dest`.
pub async fn fetch_artifact(
    http: &reqwest::Client,
    url: &str,
    digest: &str,
    dest: &Path,
    retries: u32,
) -> Result<(), FetchError> {
    let mut last = String::new();
    let mut bytes = None;
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10)))).await;
        }
        match http.get(url).send().await {
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                return Err(FetchError::NotFound)
            }
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(body) => {
                    bytes = Some(body);
                    break;
                }
                Err(error) => last = error.to_string(),
            },
            Ok(response) => last = format!("HTTP {}", response.status()),
            Err(error) => last = error.to_string(),
        }
    }
    let Some(bytes) = bytes else {
        return Err(FetchError::Download {
            url: url.to_string(),
            message: last,
        });
    };
    verify_digest(&bytes, digest)?;
    let dest = dest.to_path_buf();
    let name = url.rsplit('/').next().unwrap_or("artifact").to_string();
    tokio::task::spawn_blocking(move || {
        flux_source::extract::unpack_gz(
            std::io::Cursor::new(bytes),
            &dest,
            &flux_source::extract::Limits::default(),
            &name,
        )
    })
    .await
    .map_err(|e| FetchError::Extract(e.to_string()))?
    .map_err(|e| FetchError::Extract(e.to_string()))?;
    Ok(())
}

/// Checks `bytes` against a `sha256:<hex>` digest (other algorithms are refused).
pub fn verify_digest(bytes: &[u8], digest: &str) -> Result<(), FetchError> {
    let expected = digest.to_string();
    let Some(hex_digest) = digest.strip_prefix("sha256:") else {
        return Err(FetchError::Digest { expected });
    };
    if hex::encode(sha2::Sha256::digest(bytes)) == hex_digest {
        Ok(())
    } else {
        Err(FetchError::Digest { expected })
    }
}

/// Inputs of a build besides the tree: owner, spec, decryption keys and variables.
pub struct BuildInput<'a> {
    /// Kustomization name.
    pub name: &'a str,
    /// Kustomization namespace.
    pub namespace: &'a str,
    /// Its spec.
    pub spec: &'a KustomizationSpec,
    /// SOPS keys (`None` when `spec.decryption` is unset).
    pub keys: Option<&'a flux_sops::KeySet>,
    /// Post-build variables (`None` when `spec.postBuild` is unset).
    pub variables: Option<&'a Variables>,
}

/// Builds the manifests under `root`/`spec.path` (pure but for reading the tree).
pub fn build(root: &Path, input: &BuildInput<'_>) -> Result<Vec<Value>, String> {
    let relative = input.spec.path.as_deref().unwrap_or("./");
    let dir = flux_kustomize::fs::join_clean(root, relative);
    if !dir.starts_with(root) || !dir.is_dir() {
        return Err(format!("kustomization path not found: {}", dir.display()));
    }
    let spec_json = serde_json::to_value(input.spec).map_err(|e| e.to_string())?;
    let id = format!("{}/{}", input.namespace, input.name);
    let mut flux_spec = FluxSpec::from_spec(&id, &spec_json).map_err(|e| e.to_string())?;
    // commonMetadata is applied after substitution, as Flux does.
    let common_labels = std::mem::take(&mut flux_spec.common_labels);
    let common_annotations = std::mem::take(&mut flux_spec.common_annotations);
    let fs = DiskFs::confined(root).map_err(|e| e.to_string())?;
    let options = flux_kustomize::BuildOptions {
        load_restrictor: flux_kustomize::LoadRestrictor::None,
    };
    let built = build_flux(&fs, &dir, &flux_spec, &options).map_err(|e| e.to_string())?;
    let strategy = match input
        .spec
        .post_build
        .as_ref()
        .and_then(|p| p.substitute_strategy)
    {
        Some(SubstituteStrategy::Always) => Strategy::Always,
        _ => Strategy::WithVariables,
    };
    let mut objects = Vec::with_capacity(built.len());
    for resource in built.into_resources() {
        let mut object = resource.into_value();
        let object_id = super::kustomize_apply::ObjectId::of(&object).display();
        if let Some(keys) = input.keys {
            if let Some(decrypted) = flux_sops::flux::decrypt_resource(&object, keys)
                .map_err(|e| format!("decryption failed for '{object_id}': {e}"))?
            {
                object = decrypted;
            }
        }
        if let Some(variables) = input.variables {
            if !substitution_disabled(&object) {
                let text = flux_kustomize::yaml::to_yaml(&object);
                if let Some(substituted) =
                    postbuild::substitute_object(&object_id, &text, variables, strategy, true)
                        .map_err(|e| e.to_string())?
                {
                    object = serde_yaml::from_str(&substituted)
                        .map_err(|e| format!("post build failed for '{object_id}': {e}"))?;
                }
            }
        }
        set_metadata(&mut object, "labels", label::KUSTOMIZE_NAME, input.name);
        set_metadata(
            &mut object,
            "labels",
            label::KUSTOMIZE_NAMESPACE,
            input.namespace,
        );
        for (key, value) in &common_labels {
            set_metadata(&mut object, "labels", key, value);
        }
        for (key, value) in &common_annotations {
            set_metadata(&mut object, "annotations", key, value);
        }
        objects.push(object);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flux_api::kustomize::{CrossNamespaceSourceReference, PostBuild};
    use std::collections::BTreeMap;

    fn spec(path: &str) -> KustomizationSpec {
        KustomizationSpec {
            interval: "1m".into(),
            path: Some(path.into()),
            prune: true,
            source_ref: CrossNamespaceSourceReference {
                name: "repo".into(),
                ..Default::default()
            },
            ..KustomizationSpec::default()
        }
    }

    #[test]
    fn builds_generated_kustomization_with_labels_and_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("apps")).expect("mkdir");
        std::fs::write(
            dir.path().join("apps/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\ndata:\n  env: ${cluster_env}\n",
        )
        .expect("write");
        let mut apps_spec = spec("./apps");
        apps_spec.post_build = Some(PostBuild {
            substitute: Some(BTreeMap::from([("cluster_env".into(), "prod".into())])),
            ..PostBuild::default()
        });
        let mut variables = Variables::new();
        variables
            .add_inline(&BTreeMap::from([("cluster_env".into(), "prod".into())]))
            .expect("vars");
        let objects = build(
            dir.path(),
            &BuildInput {
                name: "apps",
                namespace: "flux-system",
                spec: &apps_spec,
                keys: None,
                variables: Some(&variables),
            },
        )
        .expect("builds");
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0]["data"]["env"], "prod");
        assert_eq!(
            objects[0]["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
            "apps"
        );
        let missing = build(
            dir.path(),
            &BuildInput {
                name: "apps",
                namespace: "flux-system",
                spec: &spec("./nope"),
                keys: None,
                variables: None,
            },
        )
        .expect_err("missing path");
        assert!(
            missing.starts_with("kustomization path not found"),
            "{missing}"
        );
    }

    #[test]
    fn digests_are_checked() {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"abc")));
        assert!(verify_digest(b"abc", &digest).is_ok());
        assert!(verify_digest(b"abd", &digest).is_err());
        assert!(verify_digest(b"abc", "md5:00").is_err());
    }
}
