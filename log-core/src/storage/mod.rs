//! The storage layer: partition logs of segment files, their indexes and checkpoints, the
//! cleaner, and the log manager that owns a data directory.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod epoch;
pub(crate) mod index;
pub mod log;
pub mod manager;
pub mod producer_state;
pub mod segment;
pub mod txn_index;
pub(crate) mod validator;

/// Wall-clock milliseconds since the epoch: Kafka's timestamps (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
