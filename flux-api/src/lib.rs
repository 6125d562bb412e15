//! Flux's Kubernetes API types (source, kustomize, helm and notification toolkits) and status
//! helpers.
//!
//! Every kind is derived with `kube`'s `CustomResource` at the version Flux currently serves and
//! stores; `T::crd()` yields a CRD compatible with Flux's own (checked by the conformance tests
//! against Flux's generated CRDs).

pub mod conditions;
pub mod constants;
pub mod duration;
pub mod health;
pub mod helm;
pub mod kustomize;
pub mod meta;
pub mod notification;
pub mod object;
pub mod source;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The CRDs of every Flux kind, in Flux's install order (sources, kustomize, helm,
/// notification).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        source::GitRepository::crd(),
        source::OCIRepository::crd(),
        source::HelmRepository::crd(),
        source::HelmChart::crd(),
        source::Bucket::crd(),
        source::ExternalArtifact::crd(),
        kustomize::Kustomization::crd(),
        helm::HelmRelease::crd(),
        notification::Provider::crd(),
        notification::Alert::crd(),
        notification::Receiver::crd(),
    ]
}

/// Errors of the pure helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object handed to a helper has a field of the wrong shape.
    #[error("{object}: field {field}: {message}")]
    MalformedObject {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// The offending field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A Go duration string could not be parsed.
    #[error("invalid duration {value:?}: {message}")]
    InvalidDuration {
        /// The input.
        value: String,
        /// What is wrong.
        message: String,
    },
}
