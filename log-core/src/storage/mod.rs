//! The storage layer: partition logs of segment files, their indexes and checkpoints, the
//! cleaner, and the log manager that owns a data directory.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod epoch;
pub(crate) mod index;
pub mod log;
pub mod manager;
pub mod segment;
