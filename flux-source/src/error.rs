//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while fetching a source or building, storing, serving or
/// extracting an artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed on `path`.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The directory to archive does not exist or is not a directory.
    #[error("invalid dir path: {0}")]
    InvalidDir(PathBuf),
    /// A path (from a tarball, an include or a storage request) leaves its root.
    #[error("illegal path {path:?}: {reason}")]
    IllegalPath { path: String, reason: &'static str },
    /// A tarball could not be read or exceeds the limits.
    #[error("invalid tarball {name}: {reason}")]
    Tarball { name: String, reason: String },
    /// A revision, digest or version string is malformed.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// No upstream reference matched the request.
    #[error("{0}")]
    NotFound(String),
    /// The stored or downloaded bytes do not have the expected digest.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Authentication was refused by the remote.
    #[error("authentication failed for {url}: {detail}")]
    Auth { url: String, detail: String },
    /// A Git operation failed.
    #[error("git {op} {url}")]
    Git {
        op: &'static str,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The remote (or the client-side fast-forward check) refused to update a reference.
    #[error("push to {url} rejected: {reference}: {reason}")]
    PushRejected {
        url: String,
        reference: String,
        reason: String,
    },
    /// An HTTP request failed.
    #[error("{method} {url}: {detail}")]
    Http {
        method: &'static str,
        url: String,
        detail: String,
    },
    /// An OCI registry operation failed.
    #[error("oci {op} {reference}: {detail}")]
    Oci {
        op: &'static str,
        reference: String,
        detail: String,
    },
    /// An S3 bucket operation failed.
    #[error("bucket {bucket}: {detail}")]
    Bucket { bucket: String, detail: String },
    /// Source verification (`spec.verify`) failed or cannot be done; no artifact is written.
    #[error("{0}")]
    Verification(String),
    /// A YAML or JSON document could not be parsed.
    #[error("parsing {what}: {detail}")]
    Parse { what: String, detail: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Invalid {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
