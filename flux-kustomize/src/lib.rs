//! A kustomize build engine compatible with kustomize v5.8, plus Flux's kustomization generation.

pub mod envsubst;
pub mod postbuild;
