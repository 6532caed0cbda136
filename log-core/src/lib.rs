//! `sluice-log`: Sluice's commit log.
//!
//! A topic partition is a [`PartitionLog`]: a directory `<topic>-<partition>` of segment files
//! holding Kafka v2 record batches exactly as producers sent them (only the base offset and the
//! leader epoch are rewritten), with Kafka's sparse offset and time indexes, retention by time
//! and size, compaction, and recovery that keeps every flushed record. A [`LogManager`] owns the
//! data directories, opens thousands of partitions in parallel, and runs retention, flushing
//! and the cleaner in the background. A [`broker::Broker`] serves them to Kafka clients over the
//! Kafka protocol ([`protocol`] decodes and encodes frames; [`broker::server`] owns the sockets).
//!
//! ```
//! use std::sync::Arc;
//! use sluice_log::{FetchIsolation, LogConfig, PartitionLog, TopicPartition};
//! # use kafka_protocol::records::*;
//! # let dir = tempfile::tempdir().unwrap();
//! # let record = Record { transactional: false, control: false, delete_horizon: false,
//! #     partition_leader_epoch: -1, producer_id: -1, producer_epoch: -1,
//! #     timestamp_type: TimestampType::Creation, offset: 0, sequence: -1, timestamp: 1,
//! #     key: Some("k".into()), value: Some("v".into()), headers: Default::default() };
//! # let mut batch = bytes::BytesMut::new();
//! # RecordBatchEncoder::encode(&mut batch, [&record],
//! #     &RecordEncodeOptions { version: 2, compression: Compression::None }).unwrap();
//! let tp = TopicPartition::new("orders", 0);
//! let mut log = PartitionLog::create(dir.path(), tp, Arc::new(LogConfig::default()))?;
//! // `batch` holds a v2 record batch as a producer sends it.
//! let appended = log.append_as_leader(&batch, 0)?;
//! assert_eq!(appended.first_offset, 0);
//! log.set_high_watermark(log.log_end_offset());
//! let read = log.read(0, 1 << 20, FetchIsolation::HighWatermark, true)?;
//! assert_eq!(read.records.unwrap().len(), batch.len());
//! # Ok::<(), sluice_log::Error>(())
//! ```

pub mod broker;
pub mod client;
pub mod config;
pub mod embedded;
pub mod error;
pub mod group;
pub mod model;
pub mod protocol;
pub mod storage;
pub mod testing;
pub mod topic_configs;
pub mod txn;

pub use config::{CleanupPolicy, LogConfig, TimestampType, TopicCompression};
pub use embedded::{EmbeddedBroker, EmbeddedBuilder, Sluice};
pub use error::{Error, Result};
pub use model::TopicPartition;
pub use storage::log::{AppendInfo, FetchIsolation, LogCheckpoints, PartitionLog, ReadResult};
pub use storage::manager::{LogManager, LogManagerConfig, SharedLog};
pub use storage::segment::FileSlice;
