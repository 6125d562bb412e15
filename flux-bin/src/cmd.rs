//! One module per command group.

pub mod build;
pub mod charts;
pub mod cluster_read;
pub mod completion;
pub mod diff;
pub mod envsubst;
pub mod helm;
pub mod install;
pub mod keys;
pub mod kustomize;
pub mod notify;
pub mod sops;
pub mod source;
