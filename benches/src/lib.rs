//! Input generators shared by the criterion benchmarks.

pub mod kustomize_tree;
