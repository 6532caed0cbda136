//! The crate's errors.

/// What went wrong, by who is at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KsqlError {
    /// A statement that does not parse: where (1-based line and column) and why.
    #[error("line {line}:{column}: {message}")]
    Parse {
        /// The line of the offending token.
        line: u64,
        /// Its column.
        column: u64,
        /// What was wrong (what was expected and what was found).
        message: String,
    },
    /// A statement that parses but cannot be run as it is (ksqlDB's `statement_error`):
    /// an unknown source, a name taken, a property missing.
    #[error("{0}")]
    Statement(String),
    /// A record whose key or value does not deserialise into a source's columns, or a row
    /// that cannot be serialised in a format (ksqlDB logs these and skips the record).
    #[error("{0}")]
    Serde(String),
    /// A request to a ksql server that failed ([`crate::client`]): no connection, no
    /// answer in time, an answer that is not what the API promises.
    #[error("{0}")]
    Client(String),
    /// A ksql server that could not be connected to (refused, unreachable, unknown host).
    #[error("{0}")]
    Unreachable(String),
}

impl KsqlError {
    /// A parse error at `line`:`column`.
    pub fn parse(line: u64, column: u64, message: impl Into<String>) -> KsqlError {
        KsqlError::Parse {
            line,
            column,
            message: message.into(),
        }
    }
}

impl KsqlError {
    /// A statement error.
    pub fn statement(message: impl Into<String>) -> KsqlError {
        KsqlError::Statement(message.into())
    }
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, KsqlError>;
