//! Shared helpers: producer-like batches built with the kafka-protocol encoder, and readers.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_log::{FetchIsolation, PartitionLog};

/// One v2 batch holding `values` (keyed by `key` when given), as a producer sends it.
pub fn batch(key: Option<&[u8]>, values: &[Vec<u8>], timestamp: i64) -> BytesMut {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(idx, value)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: idx as i64,
            sequence: idx as i32 - 1,
            timestamp,
            key: key.map(Bytes::copy_from_slice),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    buf
}

/// Every record of the log: (offset, value).
pub fn read_values(log: &mut PartitionLog) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let mut bytes = log
            .read_bytes(offset, 1 << 20, FetchIsolation::LogEnd)
            .expect("read");
        if bytes.is_empty() {
            break;
        }
        for set in RecordBatchDecoder::decode_all(&mut bytes).expect("decode") {
            for record in set.records {
                offset = record.offset + 1;
                out.push((record.offset, record.value.unwrap_or_default()));
            }
        }
    }
    out
}

/// Polls `condition` until it holds or `limit` passes; the test fails on timeout.
pub fn await_condition(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(5));
    }
}
