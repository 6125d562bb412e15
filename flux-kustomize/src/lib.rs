//! A kustomize build engine compatible with kustomize v5.8, plus Flux's kustomization
//! generation.
//!
//! ```
//! use flux_kustomize::{build, MemFs};
//! let mut fs = MemFs::new();
//! fs.write("app/kustomization.yaml", "resources: [cm.yaml]\nnamespace: prod\n");
//! fs.write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
//! let list = build(&fs, "/app").unwrap();
//! assert_eq!(list.resources()[0].namespace(), "prod");
//! print!("{}", list.to_yaml());
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod build;
pub mod envsubst;
mod error;
mod fieldspec;
mod filters;
pub mod flux;
pub mod fs;
mod generators;
mod openapi;
mod patch;
pub mod postbuild;
mod resource;
mod types;
pub mod yaml;

pub use build::{build, build_with, BuildOptions, LoadRestrictor, KUSTOMIZATION_FILE_NAMES};
pub use error::{Error, Result};
pub use fs::{DiskFs, FileSystem, MemFs};
pub use generators::content_hash;
pub use patch::strategic_merge;
pub use resource::{Gvk, ResId, Resource, ResourceList};
pub use types::Kustomization;
