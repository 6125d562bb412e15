//! The Flux controllers as libraries: each module reconciles its kinds against the Kubernetes
//! API through kube-runtime, over the flux-* crates. The binaries in `src/bin/` only parse
//! flags and call these.

pub mod common;
pub mod helm;
pub mod helm_actions;
pub mod helm_plan;
pub mod kustomize;
pub mod kustomize_apply;
pub mod kustomize_build;
pub mod notification;
pub mod source;
pub mod source_bucket;
pub mod source_helm;
pub mod source_oci;
