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
