//! The producer APIs: InitProducerId for idempotent producers (transactional ones are the
//! transaction coordinator's, in `transactions`) and DescribeProducers (what each partition
//! knows of its producers, for `kafka-transactions describe-producers`).
//!
//! Producer ids are unique for the life of the data directory, as Kafka's `ProducerIdManager`
//! hands them out.
//! Ids come in blocks of [`BLOCK_SIZE`]. The end of the current block is written (and fsynced)
//! to `producer_id_block` before any id in it is given, so after a crash the next block starts
//! past every id a producer may hold, and ids are never reused.

use std::path::{Path, PathBuf};

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::Broker;
use crate::error::{Error, Result};
use crate::storage::checkpoint::write_atomically;

/// Ids reserved per write of the block file (Kafka's controller grants blocks of 1000 too).
pub const BLOCK_SIZE: i64 = 1000;

/// File in the first data directory holding the first id of the next block.
pub const BLOCK_FILE: &str = "producer_id_block";

/// Hands out producer ids.
#[derive(Debug)]
pub struct ProducerIdManager {
    path: PathBuf,
    /// The next id to give and the end of the reserved block.
    next: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    /// Reads where the last block ended in `dir` (0 for a new directory).
    pub fn open(dir: &Path) -> Result<ProducerIdManager> {
        let path = dir.join(BLOCK_FILE);
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<i64>().map_err(|_| Error::CorruptFile {
                path: path.clone(),
                reason: format!("expected the next producer id block, found {text:?}"),
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => return Err(Error::io("read producer id block", &path, err)),
        };
        Ok(ProducerIdManager {
            path,
            next: Mutex::new((start, start)),
        })
    }

    /// A producer id never given before.
    pub fn next_id(&self) -> Result<i64> {
        let mut next = self.next.lock();
        if next.0 >= next.1 {
            let end = next.0 + BLOCK_SIZE;
            write_atomically(&self.path, format!("{end}\n").as_bytes())?;
            next.1 = end;
        }
        let id = next.0;
        next.0 += 1;
        Ok(id)
    }
}

/// InitProducerId without a transactional id: a new producer id at epoch 0 for an idempotent
/// producer (Kafka gives a fresh id whatever id and epoch a v3+ request carries then).
pub fn init_producer_id(
    ids: &ProducerIdManager,
    _request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match ids.next_id() {
        Ok(id) => {
            tracing::debug!(producer_id = id, "new idempotent producer");
            response
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0)
        }
        Err(err) => {
            tracing::error!(%err, "could not allocate a producer id");
            response.with_error_code(ResponseError::KafkaStorageError.code())
        }
    }
}

/// DescribeProducers: each partition's idempotent and transactional producers, as Kafka's
/// `kafka-transactions describe-producers` shows them (with the coordinator epoch of their
/// last marker and the first offset of their open transaction).
pub fn describe_producers(
    broker: &Broker,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partition_indexes
                .into_iter()
                .map(|index| {
                    let base = PartitionResponse::default().with_partition_index(index);
                    let Some(log) = broker.log(&name, index) else {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "This server does not host this topic-partition.",
                            )));
                    };
                    let log = log.lock();
                    let mut producers: Vec<ProducerState> = log
                        .producer_states()
                        .iter()
                        .map(|(id, entry)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(id))
                                .with_producer_epoch(i32::from(entry.epoch))
                                .with_last_sequence(entry.last_seq().unwrap_or(-1))
                                .with_last_timestamp(
                                    entry.batches.back().map_or(-1, |b| b.timestamp),
                                )
                                .with_coordinator_epoch(entry.coordinator_epoch)
                                .with_current_txn_start_offset(
                                    entry.current_txn_first_offset.unwrap_or(-1),
                                )
                        })
                        .collect();
                    producers.sort_by_key(|p| p.producer_id.0);
                    base.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopens_and_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProducerIdManager::open(dir.path()).unwrap();
        let a: Vec<i64> = (0..3).map(|_| first.next_id().unwrap()).collect();
        assert_eq!(a, vec![0, 1, 2]);
        // Reopened (as after a crash): the next block starts past the reserved one.
        let second = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(second.next_id().unwrap(), BLOCK_SIZE);
        for _ in 1..BLOCK_SIZE {
            second.next_id().unwrap();
        }
        assert_eq!(second.next_id().unwrap(), 2 * BLOCK_SIZE);
        let third = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(third.next_id().unwrap(), 3 * BLOCK_SIZE);
    }

    #[test]
    fn a_corrupt_block_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BLOCK_FILE), "x").unwrap();
        let err = ProducerIdManager::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains(BLOCK_FILE), "{err}");
    }

    #[test]
    fn idempotent_producers_get_fresh_ids() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIdManager::open(dir.path()).unwrap();
        let plain = InitProducerIdRequest::default()
            .with_producer_id(ProducerId(0))
            .with_producer_epoch(0);
        let a = init_producer_id(&ids, &plain);
        let b = init_producer_id(&ids, &plain);
        assert_eq!((a.error_code, a.producer_epoch), (0, 0));
        assert_ne!(a.producer_id, b.producer_id);
    }
}
