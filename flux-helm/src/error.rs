//! The crate's error type.

/// Everything that can go wrong loading or rendering a chart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A YAML file of the chart or a values file is invalid.
    #[error("{path}: invalid YAML: {message}")]
    Yaml { path: String, message: String },
    /// The chart itself is invalid.
    #[error("{path}: {message}")]
    Chart { path: String, message: String },
    /// A `--set` string is invalid.
    #[error("failed parsing --set data: {0}")]
    Set(String),
    /// A rendering failure, already formatted like Helm's message.
    #[error("{0}")]
    Render(String),
}

/// `Result` with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
