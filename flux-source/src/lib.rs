//! Flux sources (Git, OCI, Helm repositories, buckets) turned into digest-addressed artifacts.
//!
//! The pure core ([`artifact`], [`archive`], [`ignore`], [`semver`], [`extract`], [`storage`],
//! the revision selection in [`git::select`] and the index handling in [`helm`]) needs no
//! network; clients for Git (gix), OCI registries (oci-client), Helm HTTP repositories and S3
//! buckets live in their own modules.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("app.yaml"), "kind: ConfigMap\n").unwrap();
//! let (bytes, packed) = flux_source::archive::pack_to_vec(dir.path(), None).unwrap();
//! assert_eq!(packed.size as usize, bytes.len());
//! assert!(packed.digest.to_string().starts_with("sha256:"));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod archive;
pub mod artifact;
pub mod bucket;
pub mod error;
pub mod extract;
pub mod git;
pub mod gzip;
pub mod helm;
pub mod ignore;
pub mod oci;
pub mod semver;
pub mod server;
pub mod storage;
pub mod tls;

pub use artifact::{Artifact, Digest};
pub use error::{Error, Result};
