//! The crate's error type, with the Flux condition reason each failure maps to.

/// Every failure the notification code reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request body is not a valid Flux event.
    #[error("invalid event JSON: {detail}")]
    InvalidEvent {
        /// What the decoder rejected.
        detail: String,
    },
    /// A Provider's `spec.type` is not one this crate knows.
    #[error("provider '{provider}': unsupported provider type '{type_name}' in spec.type")]
    UnknownProviderType {
        /// `namespace/name` of the Provider.
        provider: String,
        /// The offending type string.
        type_name: String,
    },
    /// A Receiver's `spec.type` is not one this crate knows.
    #[error("receiver '{receiver}': unsupported receiver type '{type_name}' in spec.type")]
    UnknownReceiverType {
        /// `namespace/name` of the Receiver.
        receiver: String,
        /// The offending type string.
        type_name: String,
    },
    /// A Provider's configuration is unusable for its type (missing address, token, channel…).
    #[error("provider '{provider}' ({provider_type}): {field}: {message}")]
    InvalidProvider {
        /// `namespace/name` of the Provider.
        provider: String,
        /// The provider type.
        provider_type: String,
        /// The field (spec or secret key) at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The event lacks something the provider needs (e.g. a revision for commit statuses).
    #[error("event for {object} cannot be sent to a {provider_type} provider: {message}")]
    UnsupportedEvent {
        /// `Kind/namespace/name` of the involved object.
        object: String,
        /// The provider type.
        provider_type: String,
        /// Why.
        message: String,
    },
    /// An Alert or Receiver field is invalid (regex, CEL, selector…).
    #[error("{object}: {field}: {message}")]
    InvalidConfig {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The provider endpoint could not be reached or answered with an error.
    #[error("failed to send notification to {target}: {message}")]
    Delivery {
        /// The address (tokens masked).
        target: String,
        /// The transport or HTTP error (tokens masked).
        message: String,
    },
    /// A webhook failed authentication (signature or token mismatch).
    #[error("receiver '{receiver}': {message}")]
    Unauthorized {
        /// `namespace/name` of the Receiver.
        receiver: String,
        /// What failed (never contains the secret).
        message: String,
    },
    /// A webhook payload could not be decoded or is not allowed.
    #[error("receiver '{receiver}': {message}")]
    BadWebhook {
        /// `namespace/name` of the Receiver.
        receiver: String,
        /// What failed.
        message: String,
    },
    /// A Secret or a key the object refers to is missing.
    #[error("{object}: secret '{secret}': {message}")]
    Secret {
        /// `Kind/namespace/name` of the referring object.
        object: String,
        /// The Secret name.
        secret: String,
        /// What is missing or malformed.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The reason a `Ready=False` condition (or a Warning event) carries for this failure,
    /// following notification-controller's reason strings.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidEvent { .. } => "InvalidEvent",
            Error::UnknownProviderType { .. }
            | Error::UnknownReceiverType { .. }
            | Error::InvalidProvider { .. } => "ValidationFailed",
            Error::InvalidConfig { .. } => "InvalidConfig",
            Error::UnsupportedEvent { .. } | Error::Delivery { .. } => "NotificationDispatchFailed",
            Error::Unauthorized { .. } | Error::BadWebhook { .. } => "ValidationFailed",
            Error::Secret { .. } => "TokenNotFound",
        }
    }
}

/// A kstatus-style condition, for reporting a failure as `Ready=False`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Condition {
    /// Always `Ready` here.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Condition {
    /// `Ready=False` with the error's reason and message.
    pub fn not_ready(err: &Error) -> Self {
        Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: err.reason().into(),
            message: err.to_string(),
        }
    }

    /// `Ready=True`, reason `Succeeded`.
    pub fn ready(message: impl Into<String>) -> Self {
        Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Succeeded".into(),
            message: message.into(),
        }
    }
}
