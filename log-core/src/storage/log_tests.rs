//! Tests of the partition log: appends, reads, rolling, indexes, timestamps, truncation,
//! retention, recovery from torn and corrupt tails, and compaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use parking_lot::Mutex;
use proptest::prelude::*;

use super::*;
use crate::storage::batch::test_support::{encode_batch, value_batch, TestRecord};
use crate::storage::cleaner::{clean, CleanerOptions};
use crate::storage::producer_state::TxnMarker;
use crate::storage::txn_index::AbortedTxn;

fn config(overrides: &[(&str, &str)]) -> Arc<LogConfig> {
    Arc::new(
        LogConfig::default()
            .with_overrides(overrides.iter().copied())
            .unwrap(),
    )
}

fn new_log(dir: &Path, overrides: &[(&str, &str)]) -> PartitionLog {
    PartitionLog::create(dir, TopicPartition::new("t", 0), config(overrides)).unwrap()
}

fn reopen(log: PartitionLog, clean: bool) -> PartitionLog {
    let dir = log.dir().to_owned();
    let config = log.config().clone();
    let checkpoints = LogCheckpoints {
        recovery_point: Some(log.recovery_point()),
        log_start_offset: Some(log.log_start_offset()),
        high_watermark: Some(log.high_watermark()),
        clean_shutdown: clean,
    };
    let mut log = log;
    if clean {
        log.close().unwrap();
    }
    drop(log);
    PartitionLog::open(&dir, TopicPartition::new("t", 0), config, checkpoints)
        .unwrap()
        .0
}

/// The latest record of a key: (offset, value, timestamp).
type Latest = (i64, Option<Vec<u8>>, i64);

/// Every record in the log: (offset, key, value, timestamp).
type Row = (i64, Option<Bytes>, Option<Bytes>, i64);

fn read_all(log: &mut PartitionLog) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log
            .read_bytes(offset, 1 << 20, FetchIsolation::LogEnd)
            .unwrap();
        if bytes.is_empty() {
            break;
        }
        let mut buf = bytes.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).unwrap() {
            for record in set.records {
                if record.offset >= offset {
                    rows.push((record.offset, record.key, record.value, record.timestamp));
                }
            }
        }
        let headers =
            crate::storage::batch::validate_batches(&bytes, usize::MAX, Origin::Replication)
                .unwrap();
        offset = headers.last().unwrap().next_offset();
    }
    rows
}

#[test]
fn appends_assign_offsets_and_reads_return_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[]);
    let first = value_batch(3, 100, 1000);
    let info = log.append_as_leader(&first, 5).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.records),
        (0, 2, 3)
    );
    let second = value_batch(2, 100, 2000);
    let info = log.append_as_leader(&second, 5).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);

    // Consumers see nothing past the high watermark.
    let read = log
        .read(0, 1 << 20, FetchIsolation::HighWatermark, true)
        .unwrap();
    assert!(read.records.is_none());
    log.set_high_watermark(5);

    // Reading from an offset inside the second batch returns that whole batch.
    let bytes = log
        .read_bytes(4, 1 << 20, FetchIsolation::HighWatermark)
        .unwrap();
    // The producer's bytes, but for the base offset (0..8) and leader epoch (12..16).
    assert_eq!(bytes.len(), second.len());
    assert_eq!(&bytes[8..12], &second[8..12]);
    assert_eq!(&bytes[16..], &second[16..]);
    // A byte limit smaller than two batches returns one; smaller than one batch returns it
    // whole only with min_one_batch.
    let read = log
        .read(0, first.len() + 10, FetchIsolation::HighWatermark, false)
        .unwrap();
    assert_eq!(read.records.unwrap().len(), first.len());
    assert!(log
        .read(0, 10, FetchIsolation::HighWatermark, false)
        .unwrap()
        .records
        .is_none());
    assert_eq!(
        log.read(0, 10, FetchIsolation::HighWatermark, true)
            .unwrap()
            .records
            .unwrap()
            .len(),
        first.len()
    );
    // The stored bytes are the producer's, with offset and epoch rewritten.
    let header = crate::storage::batch::BatchHeader::parse(&bytes).unwrap();
    assert_eq!((header.base_offset, header.partition_leader_epoch), (3, 5));

    // Reading at the end is empty; past it or before the start is out of range.
    assert!(log
        .read(5, 100, FetchIsolation::LogEnd, true)
        .unwrap()
        .records
        .is_none());
    let err = log.read(6, 100, FetchIsolation::LogEnd, true).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OffsetOutOfRange {
                offset: 6,
                log_end_offset: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(log.leader_epochs().end_offset_for(5, 5), (5, 5));
}

#[test]
fn bad_batches_are_rejected_and_leave_the_log_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[("max.message.bytes", "500")]);
    log.append_as_leader(&value_batch(1, 10, 1), 0).unwrap();
    let size_before = log.size_in_bytes();

    let mut corrupt = value_batch(2, 10, 1);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    // A good batch followed by a corrupt one: nothing of the append is written.
    let mut mixed = value_batch(1, 10, 1);
    mixed.extend_from_slice(&corrupt);
    let err = log.append_as_leader(&mixed, 0).unwrap_err();
    assert!(matches!(err, Error::CorruptBatch { .. }), "{err}");
    assert_eq!(
        err.response_error(),
        kafka_protocol::ResponseError::CorruptMessage
    );

    let err = log
        .append_as_leader(&value_batch(1, 1000, 1), 0)
        .unwrap_err();
    assert!(
        matches!(err, Error::BatchTooLarge { max: 500, .. }),
        "{err}"
    );
    assert_eq!(
        err.response_error(),
        kafka_protocol::ResponseError::MessageTooLarge
    );

    let err = log
        .append_as_leader(&BytesMut::from(&[0u8; 3][..]), 0)
        .unwrap_err();
    assert!(err.to_string().contains("header needs"), "{err}");

    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(log.size_in_bytes(), size_before);
}

#[test]
fn compacted_topics_reject_records_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[("cleanup.policy", "compact")]);
    let err = log.append_as_leader(&value_batch(1, 10, 1), 0).unwrap_err();
    assert!(
        matches!(err, Error::MissingKeyForCompactedTopic { .. }),
        "{err}"
    );
    let keyed = encode_batch(&[(Some(b"k"), Some(b"v"), 1)], Compression::Lz4);
    log.append_as_leader(&keyed, 0).unwrap();
    // Each keyless record is named by its index in the batch (KIP-467), and nothing is written.
    let mixed = encode_batch(
        &[
            (Some(b"a"), Some(b"v"), 1),
            (None, Some(b"v"), 1),
            (Some(b"c"), Some(b"v"), 1),
            (None, None, 1),
        ],
        Compression::None,
    );
    let err = log.append_as_leader(&mixed, 0).unwrap_err();
    assert!(
        matches!(&err, Error::MissingKeyForCompactedTopic { indexes } if indexes == &[1, 3]),
        "{err}"
    );
    assert_eq!(
        err.response_error(),
        kafka_protocol::ResponseError::InvalidRecord
    );
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn segments_roll_on_size_and_time_and_indexes_find_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(
        dir.path(),
        &[
            ("internal.segment.bytes", "2000"),
            ("index.interval.bytes", "100"),
            ("segment.ms", "60000"),
        ],
    );
    let mut sizes = Vec::new();
    for idx in 0..40 {
        let batch = value_batch(2, 50, 1_000 + idx);
        sizes.push(batch.len());
        log.append_as_leader(&batch, 0).unwrap();
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    for segment in dir.path().join("t-0").read_dir().unwrap() {
        let name = segment.unwrap().file_name().into_string().unwrap();
        if !name.starts_with('0') {
            continue;
        }
        let stem = name.split('.').next().unwrap();
        assert_eq!(stem.len(), 20, "{name}");
    }
    log.set_high_watermark(log.log_end_offset());
    for offset in 0..80 {
        let bytes = log
            .read_bytes(offset, 1, FetchIsolation::HighWatermark)
            .unwrap();
        let header = crate::storage::batch::BatchHeader::parse(&bytes).unwrap();
        assert!(
            header.base_offset <= offset && offset <= header.last_offset(),
            "offset {offset}"
        );
    }
    // A batch an hour newer than the active segment's first batch rolls a new segment.
    let before = log.segment_count();
    log.append_as_leader(&value_batch(1, 10, 3_700_000), 0)
        .unwrap();
    assert_eq!(log.segment_count(), before + 1);
    assert_eq!(*log.segment_base_offsets().last().unwrap(), 80);
}

#[test]
fn timestamps_find_the_first_offset_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(
        dir.path(),
        &[
            ("internal.segment.bytes", "1000"),
            ("index.interval.bytes", "64"),
        ],
    );
    // Records at timestamps 0, 10, 20, ...; batches of 3 records.
    for batch_idx in 0..30i64 {
        let records: Vec<TestRecord<'_>> = (0..3)
            .map(|i| (None, Some(&b"x"[..]), (batch_idx * 3 + i) * 10))
            .collect();
        log.append_as_leader(&encode_batch(&records, Compression::Gzip), 0)
            .unwrap();
    }
    assert!(log.segment_count() > 2);
    for target in [0, 5, 10, 15, 300, 455, 890] {
        let expected = (target + 9) / 10;
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            Some((expected, expected * 10)),
            "target {target}"
        );
    }
    assert_eq!(log.offset_for_timestamp(100_000).unwrap(), None);
    assert_eq!(log.offset_for_timestamp(-2).unwrap(), Some((0, -1)));
    assert_eq!(log.offset_for_timestamp(-1).unwrap(), Some((90, -1)));
    // Still right after a clean reopen, with indexes loaded lazily from their files.
    let mut log = reopen(log, true);
    assert_eq!(log.offset_for_timestamp(455).unwrap(), Some((46, 460)));
}

#[test]
fn truncation_removes_whole_batches_and_the_epochs_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[("internal.segment.bytes", "600")]);
    for epoch in 0..10 {
        log.append_as_leader(&value_batch(2, 50, 1), epoch).unwrap();
    }
    log.set_high_watermark(20);
    log.truncate_to(9).unwrap(); // inside the batch [8, 9]
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.high_watermark(), 8);
    assert_eq!(log.leader_epochs().latest_epoch(), Some(3));
    let info = log.append_as_leader(&value_batch(1, 50, 1), 11).unwrap();
    assert_eq!(info.first_offset, 8);
    assert_eq!(read_all(&mut log).len(), 9);
    let mut log = reopen(log, false);
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(read_all(&mut log).len(), 9);

    log.truncate_fully_and_start_at(100).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(
        log.append_as_leader(&value_batch(1, 5, 1), 12)
            .unwrap()
            .first_offset,
        100
    );
}

#[test]
fn follower_appends_keep_offsets_and_reject_going_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = new_log(&dir.path().join("leader"), &[]);
    let mut follower = new_log(&dir.path().join("follower"), &[]);
    for epoch in [1, 1, 2] {
        leader
            .append_as_leader(&value_batch(3, 10, 5), epoch)
            .unwrap();
    }
    let bytes = leader
        .read_bytes(0, 1 << 20, FetchIsolation::LogEnd)
        .unwrap();
    follower.append_as_follower(&bytes).unwrap();
    assert_eq!(follower.log_end_offset(), 9);
    assert_eq!(
        follower.leader_epochs().entries(),
        leader.leader_epochs().entries()
    );
    let err = follower.append_as_follower(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfOrderOffsets {
                base_offset: 0,
                log_end_offset: 9
            }
        ),
        "{err}"
    );
}

#[test]
fn retention_by_time_and_size_keeps_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(
        dir.path(),
        &[("internal.segment.bytes", "500"), ("retention.ms", "1000")],
    );
    for ts in 0..20 {
        log.append_as_leader(&value_batch(1, 100, ts * 100), 0)
            .unwrap();
    }
    let n_segments = log.segment_count();
    assert!(n_segments >= 5);
    // At time 2000 every record older than 1000 goes: segments whose newest record < 1000.
    let deleted = log.delete_old_segments(2_000).unwrap();
    assert!(deleted > 0);
    let base_offsets = log.segment_base_offsets();
    assert_eq!(log.log_start_offset(), base_offsets[0]);
    assert!(log.log_start_offset() >= 6, "{}", log.log_start_offset());
    // Far in the future, everything but the active segment goes.
    log.delete_old_segments(1_000_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 20);
    assert!(log.read(0, 100, FetchIsolation::LogEnd, true).is_err());

    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(
        dir.path(),
        &[
            ("internal.segment.bytes", "500"),
            ("retention.bytes", "1000"),
        ],
    );
    for _ in 0..20 {
        log.append_as_leader(&value_batch(1, 100, 1), 0).unwrap();
    }
    log.delete_old_segments(0).unwrap();
    assert!(log.size_in_bytes() <= 1000 + 500, "{}", log.size_in_bytes());
    assert!(log.segment_count() >= 2);
    let rows = read_all(&mut log);
    assert_eq!(rows.last().unwrap().0, 19);
}

#[test]
fn clean_reopen_needs_no_recovery_and_missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(
        dir.path(),
        &[
            ("internal.segment.bytes", "2000"),
            ("index.interval.bytes", "100"),
        ],
    );
    for ts in 0..30 {
        log.append_as_leader(&value_batch(2, 60, ts), 0).unwrap();
    }
    let expected = read_all(&mut log);
    let mut log = reopen(log, true);
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(read_all(&mut log), expected);
    // Lose and damage index files: reads still find every offset.
    let part = log.dir().to_owned();
    let log = reopen(log, true);
    let bases = log.segment_base_offsets();
    std::fs::remove_file(part.join(format!("{:020}.index", bases[0]))).unwrap();
    std::fs::write(part.join(format!("{:020}.index", bases[1])), [1u8; 13]).unwrap();
    std::fs::write(part.join(format!("{:020}.timeindex", bases[1])), [9u8; 24]).unwrap();
    let mut log = reopen(log, true);
    assert_eq!(read_all(&mut log), expected);
    assert_eq!(
        log.offset_for_timestamp(15).unwrap().map(|(o, _)| o),
        Some(30)
    );
    let mut log = reopen(log, false);
    assert_eq!(read_all(&mut log), expected);
}

fn append_n(log: &mut PartitionLog, n: usize) -> Vec<Row> {
    for idx in 0..n {
        let key = format!("key-{idx}");
        let value = format!("value-{idx}");
        let batch = encode_batch(
            &[(Some(key.as_bytes()), Some(value.as_bytes()), idx as i64)],
            Compression::None,
        );
        log.append_as_leader(&batch, 0).unwrap();
    }
    read_all(log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Recovery after the tail of the last segment is cut anywhere keeps exactly the whole
    /// batches before the cut.
    #[test]
    fn recovery_after_random_truncation_keeps_every_whole_batch(n in 1usize..40, cut_fraction in 0.0f64..1.0) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = new_log(dir.path(), &[("internal.segment.bytes", "1500"), ("index.interval.bytes", "64")]);
        let rows = append_n(&mut log, n);
        let active = log.dir().join(format!("{:020}.log", log.segment_base_offsets().last().unwrap()));
        let len = std::fs::metadata(&active).unwrap().len();
        let cut = (len as f64 * cut_fraction) as u64;
        drop(log);
        std::fs::OpenOptions::new().write(true).open(&active).unwrap().set_len(cut).unwrap();
        let (mut log, _) = PartitionLog::open(&dir.path().join("t-0"), TopicPartition::new("t", 0), config(&[("internal.segment.bytes", "1500")]), LogCheckpoints::default()).unwrap();
        let recovered = read_all(&mut log);
        prop_assert!(recovered.len() <= rows.len());
        prop_assert_eq!(&recovered[..], &rows[..recovered.len()]);
        prop_assert_eq!(log.log_end_offset(), recovered.len() as i64);
        // The log takes appends again at the recovered end.
        let info = log.append_as_leader(&value_batch(1, 3, 1), 0).unwrap();
        prop_assert_eq!(info.first_offset, recovered.len() as i64);
    }

    /// A flipped byte anywhere in any segment loses the batch it hits and everything after it,
    /// never anything before.
    #[test]
    fn recovery_after_random_corruption_keeps_the_prefix(n in 2usize..40, segment_pick in any::<prop::sample::Index>(), byte_pick in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = new_log(dir.path(), &[("internal.segment.bytes", "1500")]);
        let rows = append_n(&mut log, n);
        let bases = log.segment_base_offsets();
        drop(log);
        let base = bases[segment_pick.index(bases.len())];
        let path = dir.path().join("t-0").join(format!("{base:020}.log"));
        let mut bytes = std::fs::read(&path).unwrap();
        prop_assume!(!bytes.is_empty());
        // The v2 format leaves the base offset (bytes 0..8) and leader epoch (12..16) outside
        // the CRC so that brokers can rewrite them; flip any other byte of a batch.
        let headers = crate::storage::batch::validate_batches(&bytes, usize::MAX, Origin::Replication).unwrap();
        let mut protected = Vec::new();
        let mut position = 0;
        for header in &headers {
            protected.extend((position + 8..position + 12).chain(position + 16..position + header.size()));
            position += header.size();
        }
        let at = protected[byte_pick.index(protected.len())];
        bytes[at] ^= 0x5a;
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, report) = PartitionLog::open(&dir.path().join("t-0"), TopicPartition::new("t", 0), config(&[("internal.segment.bytes", "1500")]), LogCheckpoints::default()).unwrap();
        prop_assert!(report.bytes_truncated > 0);
        let recovered = read_all(&mut log);
        prop_assert!(recovered.len() < rows.len());
        prop_assert!(recovered.len() as i64 >= base);
        prop_assert_eq!(&recovered[..], &rows[..recovered.len()]);
    }

    /// Compaction keeps the latest record of every key at its offset, drops only superseded
    /// records (and old tombstones), and keeps offsets increasing.
    #[test]
    fn compaction_never_loses_the_latest_value_of_a_key(
        ops in proptest::collection::vec((0u8..12, proptest::option::weighted(0.85, 0u16..1000)), 1..150),
        batch_len in 1usize..5,
        codec in prop_oneof![Just(Compression::None), Just(Compression::Gzip), Just(Compression::Lz4), Just(Compression::Zstd), Just(Compression::Snappy)],
        budget in prop_oneof![Just(200usize), Just(1 << 20)],
        passes in 1usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = new_log(dir.path(), &[("internal.segment.bytes", "700"), ("cleanup.policy", "compact"), ("delete.retention.ms", "1000")]);
        let log = Mutex::new(log);
        let mut latest: BTreeMap<Vec<u8>, Latest> = BTreeMap::new();
        let mut offset = 0i64;
        for chunk in ops.chunks(batch_len) {
            let owned: Vec<(Vec<u8>, Option<Vec<u8>>, i64)> = chunk.iter().enumerate()
                .map(|(i, (key, value))| (vec![b'k', *key], value.map(|v| v.to_string().into_bytes()), offset + i as i64))
                .collect();
            let records: Vec<TestRecord<'_>> = owned.iter().map(|(k, v, ts)| (Some(&k[..]), v.as_deref(), *ts)).collect();
            let batch = encode_batch(&records, codec);
            log.lock().append_as_leader(&batch, 0).unwrap();
            for (key, value, ts) in owned {
                latest.insert(key, (offset, value, ts));
                offset += 1;
            }
        }
        let before = read_all(&mut log.lock());
        let options = CleanerOptions { dedupe_buffer_bytes: budget, ignore_dirty_ratio: true };
        let mut first_dirty = 0;
        for _ in 0..passes {
            if let Some(stats) = clean(&log, first_dirty, offset, &options).unwrap() {
                first_dirty = stats.next_dirty_offset;
            }
        }
        let after = read_all(&mut log.lock());
        let active_base = *log.lock().segment_base_offsets().last().unwrap();
        // Offsets increase, every record is one of the originals.
        prop_assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
        let originals: HashMap<i64, &Row> = before.iter().map(|row| (row.0, row)).collect();
        for row in &after {
            prop_assert_eq!(Some(&row), originals.get(&row.0));
        }
        // The latest record of every key is there, unless it is a tombstone old enough to go.
        let kept: HashMap<i64, &Row> = after.iter().map(|row| (row.0, row)).collect();
        for (key, (at, value, ts)) in &latest {
            let expired_tombstone = value.is_none() && *ts < offset - 1000 && *at < active_base;
            if !expired_tombstone {
                let row = kept.get(at);
                prop_assert!(row.is_some(), "latest record of {:?} at {} was lost", key, at);
            }
        }
        // A record superseded by one below the cleaned point is gone.
        for row in &after {
            let next_of_key = before.iter().find(|later| later.0 > row.0 && later.1 == row.1).map(|later| later.0);
            if let Some(next) = next_of_key {
                prop_assert!(next >= first_dirty, "record {} kept though superseded at {}", row.0, next);
            }
        }
        // And the log still reopens cleanly.
        let reopened = reopen(log.into_inner(), false);
        let mut reopened = reopened;
        prop_assert_eq!(read_all(&mut reopened), after);
    }
}

#[test]
fn an_interrupted_compaction_swap_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = new_log(dir.path(), &[("cleanup.policy", "compact")]);
    let log = Mutex::new(log);
    for idx in 0..30 {
        let key = [b'k', (idx % 3) as u8];
        let batch = encode_batch(&[(Some(&key[..]), Some(b"value"), idx)], Compression::None);
        log.lock().append_as_leader(&batch, 0).unwrap();
        if idx % 5 == 4 {
            log.lock().force_roll().unwrap();
        }
    }
    let expected_after = {
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir.path().join("t-0")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
        let options = CleanerOptions {
            dedupe_buffer_bytes: 1 << 20,
            ignore_dirty_ratio: true,
        };
        clean(&log, 0, 100, &options).unwrap().unwrap();
        let after = read_all(&mut log.lock());
        // Simulate a crash after `.cleaned` became `.swap` but before the old segments went:
        // put the old segments back next to the new first segment renamed to `.log.swap`.
        let part = dir.path().join("t-0");
        let first = log.lock().segment_base_offsets()[0];
        std::fs::rename(
            part.join(format!("{first:020}.log")),
            part.join(format!("{first:020}.log.swap")),
        )
        .unwrap();
        for entry in std::fs::read_dir(copy.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), part.join(entry.file_name())).unwrap();
        }
        std::fs::write(part.join("00000000000000000099.log.cleaned"), b"partial").unwrap();
        after
    };
    let log = reopen(log.into_inner(), false);
    let mut log = log;
    assert_eq!(read_all(&mut log), expected_after);
    assert!(!log.dir().join("00000000000000000099.log.cleaned").exists());
}

/// A log of small segments that retention has just cut down to 500 bytes, with
/// `file.delete.delay.ms` as given; and how many segments went.
fn log_after_retention(dir: &Path, delay_ms: &str) -> (PartitionLog, usize) {
    let mut log = new_log(
        dir,
        &[
            ("internal.segment.bytes", "500"),
            ("retention.bytes", "500"),
            ("file.delete.delay.ms", delay_ms),
        ],
    );
    for _ in 0..10 {
        log.append_as_leader(&value_batch(1, 100, 1), 0).unwrap();
    }
    let deleted = log.delete_old_segments(0).unwrap();
    assert!(deleted > 0);
    (log, deleted)
}

/// How many files of the directory end with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

#[test]
fn deleted_segments_wait_file_delete_delay_ms_renamed_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, deleted) = log_after_retention(dir.path(), "60000");
    let log_dir = log.dir().to_owned();
    // Gone from the log, still on disk under .deleted until the delay passes.
    assert_eq!(files_ending(&log_dir, ".log.deleted"), deleted);
    assert_eq!(log.remove_retired_files(Instant::now()).unwrap(), 0);
    let later = Instant::now() + std::time::Duration::from_secs(61);
    assert_eq!(log.remove_retired_files(later).unwrap(), deleted);
    assert_eq!(files_ending(&log_dir, ".deleted"), 0);

    // With no delay the files go at once.
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = log_after_retention(dir.path(), "0");
    assert_eq!(files_ending(log.dir(), ".deleted"), 0);
}

#[test]
fn preallocated_segments_reserve_disk_and_give_back_what_they_did_not_use() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(
        dir.path(),
        &[
            ("preallocate", "true"),
            ("internal.segment.bytes", "4194304"),
        ],
    );
    log.append_as_leader(&value_batch(1, 100, 1), 0).unwrap();
    // Rolled segments are preallocated as the first one was.
    log.force_roll().unwrap();
    log.append_as_leader(&value_batch(1, 100, 1), 0).unwrap();
    let active = log.dir().join(format!("{:020}.log", 1));
    let meta = std::fs::metadata(&active).unwrap();
    assert_eq!(
        meta.len(),
        log.segments.last().unwrap().size(),
        "length is the data's"
    );
    assert!(
        meta.blocks() * 512 >= 4_194_304,
        "{} bytes allocated",
        meta.blocks() * 512
    );
    log.force_roll().unwrap();
    let meta = std::fs::metadata(&active).unwrap();
    assert!(
        meta.blocks() * 512 < 1_048_576,
        "closing gives the reserve back: {}",
        meta.blocks() * 512
    );
    // Recovery reads exactly the data.
    let mut log = reopen(log, false);
    assert_eq!(read_all(&mut log).len(), 2);
}

#[test]
fn segment_jitter_is_drawn_below_segment_jitter_ms() {
    let dir = tempfile::tempdir().unwrap();
    let mut segment = Segment::create(dir.path(), 0, 4096).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        segment.draw_roll_jitter(10);
        assert!((0..10).contains(&segment.roll_jitter_ms()));
        seen.insert(segment.roll_jitter_ms());
    }
    assert!(seen.len() > 1, "jitter is random");
    segment.draw_roll_jitter(0);
    assert_eq!(segment.roll_jitter_ms(), 0);
}

#[test]
fn max_compaction_lag_compacts_whatever_the_dirty_ratio_and_rolls_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = [
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0.99"),
        ("max.compaction.lag.ms", "1000"),
        ("segment.ms", "1000000"),
    ];
    let log = Mutex::new(new_log(dir.path(), &overrides));
    {
        let mut log = log.lock();
        // Keys a, a, a at times 0..: the active segment rolls once it spans more than
        // max.compaction.lag.ms, though segment.ms is far longer.
        for ts in [0, 500, 1_500] {
            log.append_as_leader(
                &encode_batch(&[(Some(b"a"), Some(b"v"), ts)], Compression::None),
                0,
            )
            .unwrap();
        }
        assert_eq!(log.segment_count(), 2, "rolled for max.compaction.lag.ms");
    }
    // A compacted part (offsets 0-9) and a small dirty one (offset 10): a dirty ratio far
    // below 0.99.
    let layout = |overrides: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        let mut log = new_log(dir.path(), overrides);
        for i in 0..10u8 {
            let key = [b'k', b'0' + i];
            log.append_as_leader(
                &encode_batch(&[(Some(&key), Some(b"v"), 0)], Compression::None),
                0,
            )
            .unwrap();
        }
        log.force_roll().unwrap();
        log.append_as_leader(
            &encode_batch(&[(Some(b"a"), Some(b"v"), 0)], Compression::None),
            0,
        )
        .unwrap();
        log.force_roll().unwrap();
        log.append_as_leader(
            &encode_batch(&[(Some(b"a"), Some(b"v"), 1_100)], Compression::None),
            0,
        )
        .unwrap();
        (dir, Mutex::new(log))
    };
    let options = CleanerOptions::default();
    // At time 1_200 the dirty segment's first record (time 0) is past the lag: compacted.
    let (_dir, log) = layout(&overrides);
    assert!(
        clean(&log, 10, 1_200, &options).unwrap().is_some(),
        "overdue records are compacted"
    );
    // Without the lag setting the ratio holds it back.
    let (_dir, log) = layout(&overrides[..2]);
    assert!(clean(&log, 10, 1_200, &options).unwrap().is_none());
}

#[test]
fn an_idempotent_producers_retry_gets_its_first_offsets_and_is_not_written_twice() {
    use crate::storage::batch::test_support::idempotent_batch;
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[]);
    log.append_as_leader(&value_batch(2, 10, 1_000), 0).unwrap();
    let first = idempotent_batch(7, 0, 0, &[b"a", b"b", b"c"], Compression::None);
    let info = log.append_as_leader(&first, 0).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (2, 4));
    // The same batch again (the producer's retry after a lost response).
    let retry = log.append_as_leader(&first, 0).unwrap();
    assert_eq!((retry.first_offset, retry.last_offset), (2, 4));
    assert_eq!(log.log_end_offset(), 5);
    // A batch that skips sequence 3..: OUT_OF_ORDER_SEQUENCE_NUMBER, nothing written.
    let gap = idempotent_batch(7, 0, 5, &[b"x"], Compression::None);
    let err = log.append_as_leader(&gap, 0).unwrap_err();
    assert_eq!(
        err.response_error(),
        kafka_protocol::ResponseError::OutOfOrderSequenceNumber
    );
    assert_eq!(log.log_end_offset(), 5);
    let next = idempotent_batch(7, 0, 3, &[b"d"], Compression::None);
    assert_eq!(log.append_as_leader(&next, 0).unwrap().first_offset, 5);
    let values: Vec<_> = read_all(&mut log)
        .into_iter()
        .map(|(_, _, v, _)| v.unwrap())
        .collect();
    assert_eq!(values.len(), 6);
    assert_eq!(&values[2..], &[&b"a"[..], b"b", b"c", b"d"]);
}

#[test]
fn producer_state_survives_a_clean_restart_a_crash_and_a_roll() {
    use crate::storage::batch::test_support::idempotent_batch;
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[("internal.segment.bytes", "250")]);
    let mut seq = 0;
    let mut batches = Vec::new();
    for i in 0..8 {
        let values: [&[u8]; 2] = [b"0123456789", b"abcdefghij"];
        let batch = idempotent_batch(11, 0, seq, &values, Compression::None);
        let info = log.append_as_leader(&batch, 0).unwrap();
        assert_eq!(info.first_offset, 2 * i);
        batches.push(batch);
        seq += 2;
    }
    assert!(log.segment_count() > 2, "the test needs rolls");
    let last = batches.last().unwrap().clone();
    let check = |log: &mut PartitionLog| {
        let end = log.log_end_offset();
        let retry = log.append_as_leader(&last, 0).unwrap();
        assert_eq!(retry.first_offset, 14, "the retry is known");
        assert_eq!(log.log_end_offset(), end);
        let gap = idempotent_batch(11, 0, seq + 1, &[b"x"], Compression::None);
        assert!(
            log.append_as_leader(&gap, 0).is_err(),
            "the sequence is known"
        );
    };
    check(&mut log);
    // Clean: from the snapshot written at close.
    let mut log = reopen(log, true);
    check(&mut log);
    // A crash: from the snapshot of the last roll plus the batches after it.
    let mut log = reopen(log, false);
    check(&mut log);
    // Without any snapshot: the last two segments are replayed.
    for entry in std::fs::read_dir(log.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let mut log = reopen(log, false);
    check(&mut log);
    // Truncation forgets the truncated batches: the producer may resend them.
    log.truncate_to(10).unwrap();
    let resend = log.append_as_leader(&batches[5], 0).unwrap();
    assert_eq!(resend.first_offset, 10);
}

#[test]
fn a_recompressing_topic_keeps_the_producer_fields() {
    use crate::storage::batch::test_support::idempotent_batch;
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[("compression.type", "zstd")]);
    let batch = idempotent_batch(3, 2, 40, &[b"a", b"b"], Compression::None);
    log.append_as_leader(&batch, 0).unwrap();
    let entry = log.producer_states().get(3).unwrap();
    assert_eq!((entry.epoch, entry.last_seq()), (2, Some(41)));
    let bytes = log.read_bytes(0, 1 << 20, FetchIsolation::LogEnd).unwrap();
    let header = crate::storage::batch::BatchHeader::parse(&bytes).unwrap();
    assert_eq!(header.compression(), Some(Compression::Zstd));
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (3, 2, 40)
    );
    // And the retry is still recognised.
    assert_eq!(log.append_as_leader(&batch, 0).unwrap().first_offset, 0);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn max_timestamp_finds_the_record_not_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[]);
    assert_eq!(log.offset_for_timestamp(-3).unwrap(), None);
    log.append_as_leader(&value_batch(2, 10, 500), 0).unwrap();
    // Kafka's AdminTest case: timestamps 1000, 3000, 2000 in one batch → offset of 3000.
    let batch = encode_batch(
        &[
            (None, Some(b"a"), 1_000),
            (None, Some(b"b"), 3_000),
            (None, Some(b"c"), 2_000),
        ],
        Compression::Lz4,
    );
    log.append_as_leader(&batch, 0).unwrap();
    log.force_roll().unwrap();
    log.append_as_leader(&value_batch(2, 10, 2_500), 0).unwrap();
    assert_eq!(log.offset_for_timestamp(-3).unwrap(), Some((3, 3_000)));
    // Earliest local is the log start offset; latest tiered is none without tiered storage.
    assert_eq!(log.offset_for_timestamp(-4).unwrap(), Some((0, -1)));
    assert_eq!(log.offset_for_timestamp(-5).unwrap(), None);
}

fn marker(producer_id: i64, epoch: i16, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id,
        producer_epoch: epoch,
        commit,
        coordinator_epoch: 0,
    }
}

/// Offsets of the data records a read up to `isolation` returns from `offset` (control
/// records excluded).
fn offsets_read(log: &mut PartitionLog, offset: i64, isolation: FetchIsolation) -> Vec<i64> {
    let mut bytes = log.read_bytes(offset, 1 << 20, isolation).unwrap();
    let mut offsets = Vec::new();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        offsets.extend(set.records.iter().filter(|r| !r.control).map(|r| r.offset));
    }
    offsets
}

#[test]
fn open_transactions_hold_back_the_lso_and_aborts_are_indexed_for_read_committed() {
    use crate::storage::batch::test_support::transactional_batch;
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), &[]);
    let settle = |log: &mut PartitionLog| {
        let end = log.log_end_offset();
        log.set_high_watermark(end);
    };
    log.append_as_leader(&value_batch(2, 10, 1_000), 0).unwrap(); // 0, 1
    log.append_as_leader(
        &transactional_batch(1, 0, 0, &[(b"k", b"a"), (b"k", b"b")]),
        0,
    )
    .unwrap(); // 2, 3
    settle(&mut log);
    assert_eq!((log.last_stable_offset(), log.high_watermark()), (2, 4));
    log.append_as_leader(&value_batch(1, 10, 1_000), 0).unwrap(); // 4
    log.append_as_leader(&transactional_batch(2, 0, 0, &[(b"x", b"y")]), 0)
        .unwrap(); // 5
    settle(&mut log);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(
        offsets_read(&mut log, 0, FetchIsolation::Committed),
        vec![0, 1]
    );
    assert_eq!(
        offsets_read(&mut log, 0, FetchIsolation::HighWatermark),
        vec![0, 1, 2, 3, 4, 5]
    );
    // A plain batch from a producer inside a transaction is refused.
    let plain =
        crate::storage::batch::test_support::idempotent_batch(1, 0, 2, &[b"z"], Compression::None);
    assert_eq!(
        log.append_as_leader(&plain, 0)
            .unwrap_err()
            .response_error(),
        kafka_protocol::ResponseError::InvalidTxnState
    );
    // Producer 1 aborts at 6: the LSO moves to producer 2's first offset.
    let info = log.append_control_marker(&marker(1, 0, false), 0).unwrap();
    assert_eq!(info.first_offset, 6);
    settle(&mut log);
    assert_eq!(log.last_stable_offset(), 5);
    let aborted = AbortedTxn {
        producer_id: 1,
        first_offset: 2,
        last_offset: 6,
        last_stable_offset: 5,
    };
    assert_eq!(log.aborted_transactions(0, 5).unwrap(), vec![aborted]);
    assert_eq!(log.aborted_transactions(0, 2).unwrap(), vec![]);
    // Producer 2 commits at 7: everything is stable.
    log.append_control_marker(&marker(2, 0, true), 0).unwrap();
    settle(&mut log);
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.aborted_transactions(7, 8).unwrap(), vec![]);
    assert_eq!(log.aborted_transactions(3, 8).unwrap(), vec![aborted]);
    // A marker from an older epoch is refused; a client's control batch too.
    assert!(log.append_control_marker(&marker(1, -1, true), 0).is_err());
    let forged = crate::storage::batch::control_batch(5, 0, true, 0, 1_000);
    assert_eq!(
        log.append_as_leader(&forged, 0)
            .unwrap_err()
            .response_error(),
        kafka_protocol::ResponseError::InvalidRecord
    );
    // Producer 3 opens a transaction and the process dies.
    log.append_as_leader(&transactional_batch(3, 0, 0, &[(b"q", b"r")]), 0)
        .unwrap(); // 8
    settle(&mut log);
    let check = |log: &mut PartitionLog| {
        assert_eq!(
            log.last_stable_offset(),
            8,
            "the open transaction is restored"
        );
        assert_eq!(log.aborted_transactions(0, 9).unwrap(), vec![aborted]);
        assert_eq!(
            offsets_read(log, 0, FetchIsolation::Committed),
            vec![0, 1, 2, 3, 4, 5]
        );
    };
    check(&mut log);
    let mut log = reopen(log, true);
    check(&mut log);
    // A crash that lost the transaction index and the snapshots: both are rebuilt from the log.
    for entry in std::fs::read_dir(log.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "snapshot" || e == "txnindex")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let mut log = reopen(log, false);
    check(&mut log);
    // Truncating below the abort marker drops its index entry.
    log.truncate_to(6).unwrap();
    settle(&mut log);
    assert_eq!(log.aborted_transactions(0, 10).unwrap(), vec![]);
    assert_eq!(
        log.last_stable_offset(),
        2,
        "producer 1's transaction is open again"
    );
}

#[test]
fn compaction_drops_aborted_records_and_stops_at_open_transactions() {
    use crate::storage::batch::test_support::transactional_batch;
    let dir = tempfile::tempdir().unwrap();
    let log = new_log(dir.path(), &[("cleanup.policy", "compact")]);
    let log = Mutex::new(log);
    let append = |batch: BytesMut| {
        log.lock().append_as_leader(&batch, 0).unwrap();
    };
    append(encode_batch(
        &[(Some(b"k"), Some(b"good"), 1)],
        Compression::None,
    ));
    // An aborted transaction overwrites k: its record must not shadow "good".
    append(transactional_batch(1, 0, 0, &[(b"k", b"aborted")]));
    log.lock()
        .append_control_marker(&marker(1, 0, false), 0)
        .unwrap();
    append(encode_batch(
        &[(Some(b"j"), Some(b"old"), 1)],
        Compression::None,
    ));
    append(encode_batch(
        &[(Some(b"j"), Some(b"new"), 1)],
        Compression::None,
    ));
    log.lock().force_roll().unwrap();
    // An open transaction: nothing from it on is cleaned.
    append(transactional_batch(2, 0, 0, &[(b"m", b"open")]));
    append(encode_batch(
        &[(Some(b"j"), Some(b"newest"), 1)],
        Compression::None,
    ));
    log.lock().force_roll().unwrap();
    let options = CleanerOptions {
        dedupe_buffer_bytes: 1 << 20,
        ignore_dirty_ratio: true,
    };
    let stats = clean(&log, 0, 10_000_000_000_000, &options)
        .unwrap()
        .unwrap();
    assert_eq!(
        stats.next_dirty_offset, 5,
        "cleaning stops at the open transaction"
    );
    let rows = read_all(&mut log.lock());
    let values: Vec<(i64, Option<Bytes>)> = rows
        .iter()
        .filter(|(_, key, _, _)| key.as_ref().is_some_and(|k| k.len() == 1))
        .map(|(offset, _, value, _)| (*offset, value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![
            (0, Some(Bytes::from_static(b"good"))),
            (4, Some(Bytes::from_static(b"new"))),
            (5, Some(Bytes::from_static(b"open"))),
            (6, Some(Bytes::from_static(b"newest"))),
        ]
    );
    // The marker stays, so the log still shows the transaction ended.
    let mut guard = log.lock();
    assert_eq!(
        guard.last_stable_offset().min(5),
        5.min(guard.high_watermark())
    );
    let bytes = guard
        .read_bytes(0, 1 << 20, FetchIsolation::LogEnd)
        .unwrap();
    drop(guard);
    let mut bytes = bytes;
    let mut controls = 0;
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        controls += set.records.iter().filter(|r| r.control).count();
    }
    assert_eq!(controls, 1);
}
