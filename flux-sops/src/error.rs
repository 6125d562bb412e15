//! The crate's error type. Messages follow sops' wording, name the file, and never quote
//! key material or plaintext.

use crate::cipher::ValueError;

/// Everything that can go wrong while reading, decrypting or encrypting a SOPS file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document has no `sops` metadata.
    #[error("{file}: sops metadata not found")]
    MetadataNotFound { file: String },
    /// The metadata is malformed.
    #[error("{file}: invalid sops metadata: {message}")]
    Metadata { file: String, message: String },
    /// `sops.version` is not a version the sops CLI accepts.
    #[error("{file}: {message}")]
    Version { file: String, message: String },
    /// The input does not parse in its format.
    #[error("{file}: Error unmarshalling input {format}: {message}")]
    Parse {
        file: String,
        format: &'static str,
        message: String,
    },
    /// No master key could recover the data key.
    #[error("{file}: {report}")]
    DataKey { file: String, report: String },
    /// A value failed to decrypt.
    #[error(
        "{file}: Error decrypting tree: Error walking tree: Could not decrypt value: {source}"
    )]
    Tree { file: String, source: ValueError },
    /// A value failed to encrypt.
    #[error("{file}: Error encrypting tree: {source}")]
    EncryptTree { file: String, source: ValueError },
    /// The stored MAC could not be decrypted.
    #[error("{file}: Cannot decrypt MAC: {source}")]
    MacDecrypt { file: String, source: ValueError },
    /// The MAC differs from the one computed over the plaintext.
    #[error("{file}: MAC mismatch. File has {stored}, computed {computed}")]
    MacMismatch {
        file: String,
        stored: String,
        computed: String,
    },
    /// A key or key file could not be used.
    #[error("{source_name}: {message}")]
    Key {
        source_name: String,
        message: String,
    },
    /// The result cannot be written in the requested format.
    #[error("{file}: Error dumping file: {message}")]
    Emit { file: String, message: String },
    /// A `.sops.yaml` problem.
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    /// Encryption was asked for something already encrypted, or without keys.
    #[error("{file}: {message}")]
    Encrypt { file: String, message: String },
    /// A Kubernetes resource that looks SOPS-encrypted could not be decrypted.
    #[error("{resource}: {source}")]
    Resource {
        resource: String,
        source: Box<Error>,
    },
}

impl Error {
    pub(crate) fn metadata(file: &str, message: impl Into<String>) -> Error {
        Error::Metadata {
            file: file.to_string(),
            message: message.into(),
        }
    }

    /// The exit status the sops CLI uses for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::DataKey { .. } => 128,
            Error::Tree { .. } => 25,
            Error::EncryptTree { .. } => 23,
            Error::MacDecrypt { .. } | Error::MacMismatch { .. } => 51,
            Error::Emit { .. } => 4,
            Error::Config { .. } => 5,
            Error::Resource { source, .. } => source.exit_code(),
            Error::Parse { .. } => 2,
            _ => 1,
        }
    }
}
