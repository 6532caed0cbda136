//! The one error type of `sluice-streams`, sorted by who is at fault: the topology's author (a
//! bad topology or config), the data (a record that does not deserialise), or the cluster.

/// Result alias for `sluice-streams`.
pub type Result<T, E = StreamsError> = std::result::Result<T, E>;

/// Everything that can go wrong building or running a topology.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// The topology is not valid: a name used twice, a stream without a source, and the like.
    #[error("invalid topology: {0}")]
    Topology(String),
    /// A configuration key or value is invalid (Kafka Streams' names: `application.id`, ...).
    #[error("invalid value {value:?} for configuration {key}: {reason}")]
    Config {
        /// The config name.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A record's key or value could not be (de)serialised.
    #[error("cannot {action} the {part} of a record of topic {topic}: {reason}")]
    Serde {
        /// "serialize" or "deserialize".
        action: &'static str,
        /// "key" or "value".
        part: &'static str,
        /// The topic of the record.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// A record was piped to a topic the topology does not read, or an output topic was read
    /// that the topology does not write.
    #[error("unknown topic {0}: the topology neither reads nor writes it")]
    UnknownTopic(String),
    /// The cluster refused or failed a request (the client's error, with its Kafka code).
    #[error(transparent)]
    Client(#[from] sluice_log::Error),
    /// A persistent state store's files could not be read or written.
    #[error("state store: {0}")]
    StateStore(String),
    /// The application was stopped, or a stream thread died.
    #[error("the streams application stopped: {0}")]
    Stopped(String),
}
