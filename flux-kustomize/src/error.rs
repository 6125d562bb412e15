//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while building a kustomization.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A path resolved outside the filesystem root.
    #[error("{}: refused, it resolves outside the root {}", path.display(), root.display())]
    OutsideRoot { path: PathBuf, root: PathBuf },
    /// A file referenced by a kustomization is outside its directory (rootOnly restrictor).
    #[error("{}: security; file '{}' is not in or below '{}' (load restrictor LoadRestrictionsRootOnly)", kustomization.display(), path.display(), root.display())]
    LoadRestrictor {
        kustomization: PathBuf,
        path: PathBuf,
        root: PathBuf,
    },
    /// A file is not valid YAML.
    #[error("{}: invalid YAML: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    /// A kustomization file is malformed or uses a field wrongly.
    #[error("{}: {message}", path.display())]
    Kustomization { path: PathBuf, message: String },
    /// No kustomization file in a directory used as a kustomization.
    #[error("unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'", path.display())]
    MissingKustomization { path: PathBuf },
    /// A kustomization directory includes itself, directly or through others.
    #[error("cycle detected: {} is already being built ({chain})", path.display())]
    Cycle { path: PathBuf, chain: String },
    /// Two resources with the same id.
    #[error("{}: may not add resource with an already registered id: {id}", path.display())]
    DuplicateId { path: PathBuf, id: String },
    /// A resource is not a usable Kubernetes object.
    #[error("{}: invalid resource: {message}", path.display())]
    InvalidResource { path: PathBuf, message: String },
    /// A transformer, patch or generator failed.
    #[error("{}: {field}: {message}", path.display())]
    Transform {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// A feature that needs something this build cannot do (remote bases, helm, plugins).
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
