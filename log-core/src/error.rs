//! The one error type of `sluice-log`, sorted by who is at fault: the caller's input (a bad batch,
//! an offset out of range, a bad config) or the machine (I/O).

use std::path::PathBuf;

use kafka_protocol::ResponseError;

/// Result alias for `sluice-log`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record batch failed validation: wrong magic, CRC, lengths or fields.
    /// Nothing was written.
    #[error("corrupt record batch at byte {position} of the input: {reason}")]
    CorruptBatch {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// What is wrong, in words.
        reason: String,
    },
    /// A batch is larger than `max.message.bytes`. Nothing was written.
    #[error("record batch of {size} bytes is larger than max.message.bytes ({max})")]
    BatchTooLarge {
        /// Size of the offending batch, including its 12-byte log overhead.
        size: usize,
        /// The configured `max.message.bytes`.
        max: usize,
    },
    /// An append of more bytes than fit in one segment (`segment.bytes`).
    #[error("append of {size} bytes does not fit in a segment (segment.bytes = {segment_bytes})")]
    RecordSetTooLarge {
        /// Size of the append.
        size: usize,
        /// The configured `segment.bytes`.
        segment_bytes: u64,
    },
    /// Records without a key were appended to a compacted topic. Nothing was written.
    #[error(
        "compacted topic cannot accept a record without a key ({} record(s), the first at index {})",
        indexes.len(),
        indexes.first().copied().unwrap_or_default()
    )]
    MissingKeyForCompactedTopic {
        /// The index of each keyless record among the records appended (within its batch, as
        /// Kafka's `record_errors` count them, for the usual one batch per partition).
        indexes: Vec<i32>,
    },
    /// Records whose timestamps lie outside the topic's `message.timestamp.before.max.ms` /
    /// `message.timestamp.after.max.ms` bounds. Nothing was written.
    #[error("{} record(s) have timestamps out of range: {}", errors.len(), errors.first().map_or("", |e| e.1.as_str()))]
    InvalidTimestamp {
        /// Each offending record's index in its batch, and why.
        errors: Vec<(i32, String)>,
    },
    /// A read or truncation asked for an offset the log does not hold.
    #[error(
        "offset {offset} is out of range: the log holds [{log_start_offset}, {log_end_offset})"
    )]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// First offset the log holds.
        log_start_offset: i64,
        /// Offset the next append will get.
        log_end_offset: i64,
    },
    /// A follower append whose offsets do not follow the log end offset.
    #[error(
        "out of order offsets: batch starts at {base_offset}, log end offset is {log_end_offset}"
    )]
    OutOfOrderOffsets {
        /// First offset of the batch.
        base_offset: i64,
        /// The log end offset before the append.
        log_end_offset: i64,
    },
    /// An idempotent producer's batch whose sequence number does not follow the last one this
    /// partition stored for the producer (Kafka's `OutOfOrderSequenceException`). Nothing was
    /// written.
    #[error("Out of order sequence number for producer {producer_id} at offset {offset} in partition {partition}: {found} (incoming seq. number), {last} (current end sequence number)")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The offset the batch would have taken.
        offset: i64,
        /// The partition.
        partition: String,
        /// The batch's first sequence number.
        found: i32,
        /// The last sequence number stored for the producer.
        last: i32,
    },
    /// A batch of an idempotent producer with a sequence other than 0 for a new epoch.
    #[error("Invalid sequence number for new epoch of producer {producer_id} in partition {partition}: {epoch} (request epoch), {found} (seq. number), {current_epoch} (current producer epoch)")]
    InvalidSequenceForNewEpoch {
        /// The producer.
        producer_id: i64,
        /// The partition.
        partition: String,
        /// The batch's epoch.
        epoch: i16,
        /// The batch's first sequence number.
        found: i32,
        /// The epoch stored for the producer.
        current_epoch: i16,
    },
    /// A batch from an older epoch of a producer than the one this partition stored (a zombie
    /// instance, or one fenced by a newer `InitProducerId`).
    #[error("Epoch of producer {producer_id} at offset {offset} in {partition} is {epoch}, which is smaller than the last seen epoch {current_epoch}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The offset the batch would have taken.
        offset: i64,
        /// The partition.
        partition: String,
        /// The batch's epoch.
        epoch: i16,
        /// The epoch stored for the producer.
        current_epoch: i16,
    },
    /// A write that the producer's transaction state forbids: a plain batch from a producer
    /// whose transaction is open here (Kafka's `InvalidTxnStateException`).
    #[error("{reason} (producer {producer_id}, partition {partition})")]
    InvalidTxnState {
        /// The producer.
        producer_id: i64,
        /// The partition.
        partition: String,
        /// What was wrong.
        reason: String,
    },
    /// A transactional batch for a partition its transaction did not add (KIP-890's
    /// verification).
    #[error("Partition was not added to the transaction (producer {producer_id}, partition {partition})")]
    TransactionVerification {
        /// The producer.
        producer_id: i64,
        /// The partition.
        partition: String,
        /// Answered TRANSACTION_ABORTABLE (Produce v11+) rather than INVALID_TXN_STATE.
        abortable: bool,
    },
    /// A transaction marker from a coordinator older than the last one this partition saw.
    #[error("Invalid coordinator epoch for producer {producer_id} in {partition}: {epoch} (zombie), {current_epoch} (current)")]
    TransactionCoordinatorFenced {
        /// The producer.
        producer_id: i64,
        /// The partition.
        partition: String,
        /// The marker's coordinator epoch.
        epoch: i32,
        /// The one stored.
        current_epoch: i32,
    },
    /// A producer sent a control batch: only transaction coordinators write markers.
    #[error("Clients are not allowed to write control records (batch at offset {offset})")]
    ControlRecordFromClient {
        /// The offset the batch would have taken.
        offset: i64,
    },
    /// A transactional producer's call its state forbids, or a failure that ended its
    /// transaction. `fatal` ones (the producer was fenced by a newer instance) leave only
    /// closing it; the others are cleared by `abort_transaction` (Kafka's abortable errors).
    #[error("{message}")]
    Transaction {
        /// Whether the producer can only be closed.
        fatal: bool,
        /// What happened.
        message: String,
    },
    /// A configuration key or value is invalid.
    #[error("invalid value {value:?} for configuration {key}: {reason}")]
    InvalidConfig {
        /// The Kafka config name, e.g. `retention.ms`.
        key: String,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A topic name or partition directory name that Kafka would not accept.
    #[error("invalid topic partition {name:?}: {reason}")]
    InvalidTopicPartition {
        /// The name as given.
        name: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The partition already exists (on create).
    #[error("partition {0} already exists")]
    PartitionExists(String),
    /// The partition is not in this log manager.
    #[error("unknown partition {0}")]
    UnknownPartition(String),
    /// An operating system I/O error, with what we were doing and where.
    #[error("failed to {context} {path}: {source}")]
    Io {
        /// What we were doing, a verb phrase ("read segment index").
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A broker answered with a Kafka error.
    #[error("{}", broker_error_text(*.code, .message))]
    Broker {
        /// The Kafka error.
        code: ResponseError,
        /// The broker's message, or Kafka's description of the code.
        message: String,
    },
    /// A connection to a broker failed or broke.
    #[error("connection to {addr} failed: {reason}")]
    Connection {
        /// The broker address.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// The peer sent bytes that are not the Kafka protocol, or asked for something we do not
    /// speak.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A client operation did not complete in time.
    #[error("timed out after {after_ms} ms waiting for {what}")]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        after_ms: u64,
    },
    /// A client configuration or argument is invalid.
    #[error("invalid client argument: {0}")]
    InvalidArgument(String),
    /// A member of the consumer group asked the whole group to shut down (Kafka Streams'
    /// `SHUTDOWN_APPLICATION`, KIP-671, carried in the rebalance protocol's user data).
    #[error("a member of group {group} asked every member to shut down")]
    ShutdownRequested {
        /// The group.
        group: String,
    },
    /// Data on disk that does not parse, found outside of recovery (which repairs it).
    #[error("corrupt file {path}: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// An error for a non-zero Kafka error code, with the broker's message if it sent one.
    pub fn from_code(code: i16, message: Option<&str>) -> Option<Self> {
        let code = ResponseError::try_from_code(code)?;
        let message = message.unwrap_or_default().to_string();
        Some(Error::Broker { code, message })
    }

    pub(crate) fn corrupt(position: usize, reason: impl Into<String>) -> Self {
        Error::CorruptBatch {
            position,
            reason: reason.into(),
        }
    }

    /// The Kafka error code a broker answers with for this error.
    pub fn response_error(&self) -> ResponseError {
        match self {
            Error::CorruptBatch { .. } => ResponseError::CorruptMessage,
            // KIP-467: the client fails just those records instead of retrying the batch.
            Error::MissingKeyForCompactedTopic { .. } | Error::ControlRecordFromClient { .. } => {
                ResponseError::InvalidRecord
            }
            Error::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
            Error::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
            Error::RecordSetTooLarge { .. } => ResponseError::RecordListTooLarge,
            Error::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            Error::OutOfOrderOffsets { .. } => ResponseError::UnknownServerError,
            Error::OutOfOrderSequence { .. } | Error::InvalidSequenceForNewEpoch { .. } => {
                ResponseError::OutOfOrderSequenceNumber
            }
            Error::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            Error::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
            Error::Transaction { fatal: true, .. } => ResponseError::ProducerFenced,
            Error::Transaction { .. } => ResponseError::InvalidTxnState,
            Error::TransactionVerification {
                abortable: true, ..
            } => ResponseError::TransactionAbortable,
            Error::TransactionVerification { .. } => ResponseError::InvalidTxnState,
            Error::TransactionCoordinatorFenced { .. } => {
                ResponseError::TransactionCoordinatorFenced
            }
            Error::InvalidConfig { .. } => ResponseError::InvalidConfig,
            Error::InvalidTopicPartition { .. } => ResponseError::InvalidTopicException,
            Error::PartitionExists(_) => ResponseError::TopicAlreadyExists,
            Error::UnknownPartition(_) => ResponseError::UnknownTopicOrPartition,
            Error::Io { .. } | Error::CorruptFile { .. } => ResponseError::KafkaStorageError,
            Error::Broker { code, .. } => *code,
            Error::Connection { .. } => ResponseError::NetworkException,
            Error::Protocol(_) => ResponseError::InvalidRequest,
            Error::Timeout { .. } => ResponseError::RequestTimedOut,
            Error::InvalidArgument(_) => ResponseError::InvalidRequest,
            Error::ShutdownRequested { .. } => ResponseError::UnknownServerError,
        }
    }
}

/// `UnknownTopicOrPartition (Kafka error 3): message`, without the message when there is none.
fn broker_error_text(code: ResponseError, message: &str) -> String {
    if message.is_empty() {
        format!("{code:?} (Kafka error {})", code.code())
    } else {
        format!("{code:?} (Kafka error {}): {message}", code.code())
    }
}
