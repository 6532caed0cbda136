//! Kafka Connect's file connectors: `FileStreamSource` and `FileStreamSink`.
//!
//! [`FileStreamSourceConnector`] tails one text file into one topic: every complete line
//! becomes a record whose value is the line (an optional string) without its terminator
//! (`\n`, `\r\n`, or — as in Kafka — a lone `\r`). Its source partition is
//! `{"filename": <file as configured>}` and its source offset `{"position": <byte offset after
//! the line>}`, Kafka's keys, so a restarted task resumes right after the last committed line.
//!
//! [`FileStreamSinkConnector`] appends the value of every record it is handed to a file, one
//! line per record, and makes the lines durable (flushed and `fsync`ed) when the runtime
//! flushes before committing offsets.
//!
//! ```
//! use std::collections::BTreeMap;
//! use sluice_connect::connector::{SinkRecord, SinkTask, SourceTask, SourceTaskContext};
//! use sluice_connect::data::Value;
//! use sluice_connect::ConnectRecord;
//! use sluice_connectors::{FileStreamSinkTask, FileStreamSourceTask};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("lines.txt").to_str().unwrap().to_string();
//! let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
//!     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
//! };
//!
//! let mut sink = FileStreamSinkTask::new();
//! sink.start(&props(&[("file", &file)])).await?;
//! let record = |v: &str| SinkRecord::new(ConnectRecord::new("t", None, v.into()), 0);
//! sink.put(&[record("hello"), record("world")]).await?;
//! sink.flush(&BTreeMap::new()).await?;
//!
//! let mut source = FileStreamSourceTask::new();
//! source.start(&props(&[("file", &file), ("topic", "lines")]), SourceTaskContext::new(|_| None)).await?;
//! let records = source.poll().await?;
//! assert_eq!(records.len(), 2);
//! assert_eq!(records[1].record.value, Value::from("world"));
//! assert_eq!(records[1].source_offset, Value::string_map([("position", Value::Int64(12))]));
//! # Ok::<(), sluice_connect::ConnectError>(())
//! # }).unwrap();
//! ```
//!
//! Differences from Kafka's connectors:
//! - `file` is required by both: reading standard input (source) and writing standard output
//!   (sink) when it is unset are not supported.
//! - `batch.size` must be at least 1.
//! - Offsets are byte offsets (Kafka's count decoded characters but seek by bytes, which
//!   disagree for non-ASCII text); lines are decoded as UTF-8, invalid bytes replaced.
//! - A source file that shrank below the position being read (truncated) is read again from
//!   the start, with a warning. A file that is replaced by a new, longer one (rotated) is not
//!   noticed: the task keeps reading the file it opened, as Kafka's does.

mod sink;
mod source;

use sluice_connect::connector::{ConfigDef, Props};
use sluice_connect::{ConnectError, Result};

pub use sink::{FileStreamSinkConnector, FileStreamSinkTask};
pub use source::{FileStreamSourceConnector, FileStreamSourceTask, DEFAULT_POLL_TIMEOUT};

/// The names the runtime resolves to [`FileStreamSourceConnector`] (short, simple and Kafka's
/// full class name).
pub const SOURCE_CLASS_NAMES: &[&str] = &[
    "FileStreamSource",
    "FileStreamSourceConnector",
    "org.apache.kafka.connect.file.FileStreamSourceConnector",
];

/// The names the runtime resolves to [`FileStreamSinkConnector`] (short, simple and Kafka's
/// full class name).
pub const SINK_CLASS_NAMES: &[&str] = &[
    "FileStreamSink",
    "FileStreamSinkConnector",
    "org.apache.kafka.connect.file.FileStreamSinkConnector",
];

/// The file to read (source) or append to (sink).
pub const FILE_CONFIG: &str = "file";
/// The topic the source writes to (exactly one).
pub const TOPIC_CONFIG: &str = "topic";
/// The most lines the source returns from one poll.
pub const TASK_BATCH_SIZE_CONFIG: &str = "batch.size";
/// The default of [`TASK_BATCH_SIZE_CONFIG`] (Kafka's).
pub const DEFAULT_TASK_BATCH_SIZE: usize = 2000;

/// Checks every setting of `def` against `props`, failing with the first problem.
fn check_defined(def: &ConfigDef, props: &Props) -> Result<()> {
    for key in def.keys() {
        let given = props.get(&key.name).map(String::as_str);
        if let Some(reason) = key.check(given) {
            return Err(ConnectError::config(
                &key.name,
                given.unwrap_or_default(),
                reason,
            ));
        }
    }
    Ok(())
}

/// The value of a required string setting (already checked to be set and non-empty).
fn required_string(props: &Props, key: &str) -> Result<String> {
    match props.get(key) {
        Some(value) if !value.trim().is_empty() => Ok(value.clone()),
        other => Err(ConnectError::config(
            key,
            other.map(String::as_str).unwrap_or_default(),
            format!("Missing required configuration \"{key}\" which has no default value."),
        )),
    }
}

/// An I/O failure of `connector` while `what` (`reading`, `opening`, ...) `path`.
fn io_error(connector: &str, what: &str, path: &str, err: std::io::Error) -> ConnectError {
    ConnectError::Data(format!("{connector}: error {what} {path}: {err}"))
}
