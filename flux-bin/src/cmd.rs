//! One module per command group.

pub mod bootstrap;
pub mod build;
pub mod charts;
pub mod check;
pub mod cluster;
pub mod cluster_read;
pub mod completion;
pub mod create;
pub mod diff;
pub mod envsubst;
pub mod events;
pub mod get;
pub mod helm;
pub mod install;
pub mod keys;
pub mod kustomize;
pub mod logs;
pub mod notify;
pub mod reconcile;
pub mod sops;
pub mod source;
pub mod tree;
