//! The one error type of `sluice-connect`.

/// Result alias for `sluice-connect`.
pub type Result<T, E = ConnectError> = std::result::Result<T, E>;

/// Everything that can go wrong in Connect: bad configs, bad schemas, data that does not fit.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A configuration value is missing or invalid (Kafka Connect's `ConfigException`).
    #[error("invalid value {value:?} for configuration {key}: {reason}")]
    Config {
        /// The config name.
        key: String,
        /// The value given (empty when missing).
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A schema is not valid (a duplicate field, an array without items, ...).
    #[error("invalid schema: {0}")]
    Schema(String),
    /// A value does not fit its schema, or cannot be converted (Kafka Connect's `DataException`).
    #[error("{0}")]
    Data(String),
    /// A connector config has errors: every one, as `setting: reason` (REST: 400).
    #[error("Connector configuration is invalid and contains the following {} error(s):\n{}", .0.len(), .0.join("\n"))]
    Invalid(Vec<String>),
    /// The request is not valid in itself or in the connector's state (REST: 400).
    #[error("{0}")]
    BadRequest(String),
    /// The connector (or task) does not exist (REST: 404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what exists (REST: 409).
    #[error("{0}")]
    Conflict(String),
    /// The worker's config does not allow the request (REST: 403).
    #[error("{0}")]
    Forbidden(String),
    /// A failure that may pass if tried again (Kafka Connect's `RetriableException`): a
    /// transform or converter returning it is retried for `errors.retry.timeout`; a source
    /// task's `poll` returning it is polled again.
    #[error("{0}")]
    Retriable(String),
    /// A connector or task failed.
    #[error("{0}")]
    Task(String),
    /// A call to a worker's REST API failed (connecting, sending, or an answer that is not
    /// JSON).
    #[error("{0}")]
    Http(String),
    /// The cluster refused or failed a request.
    #[error(transparent)]
    Client(#[from] sluice_log::Error),
}

impl ConnectError {
    /// A config error for `key`.
    pub fn config(key: &str, value: &str, reason: impl Into<String>) -> ConnectError {
        ConnectError::Config {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
