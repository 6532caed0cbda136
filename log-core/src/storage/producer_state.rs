//! The idempotent producers a partition has seen, as Kafka's `ProducerStateManager` keeps them:
//! for each producer id, its epoch and the sequence numbers and offsets of its last five
//! batches. A retried batch that was already written is answered with the offsets it got the
//! first time instead of being written twice; a batch that skips sequence numbers is refused
//! (OUT_OF_ORDER_SEQUENCE_NUMBER), and one from an older epoch too (INVALID_PRODUCER_EPOCH).
//!
//! The state lives in memory. It is written to `<offset>.snapshot` (the state after every batch
//! below that offset) when a segment rolls and when the log closes, and rebuilt on open from the
//! newest snapshot at or below the log end offset plus the batches after it (without a
//! snapshot, from the last two segments, as Kafka does). A producer the partition does not know
//! (expired after `producer.id.expiration.ms`, or never snapshotted) may start at any sequence
//! number, as in Kafka: lost state weakens deduplication but never refuses a producer.
//!
//! Transactions: a producer's first transactional batch opens its transaction here (its offset
//! is the transaction's first offset, which holds the last stable offset back), and a COMMIT or
//! ABORT marker closes it, yielding a [`CompletedTxn`] (the log indexes aborted ones).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use super::batch::BatchHeader;
use super::checkpoint::write_atomically;
use crate::error::{Error, Result};
use crate::model::TopicPartition;

/// Batches remembered per producer: a producer has at most five requests in flight
/// (`max.in.flight.requests.per.connection` ≤ 5 with idempotence), so a retry is one of these.
pub const BATCHES_PER_PRODUCER: usize = 5;

/// Extension of producer state snapshot files.
pub const SNAPSHOT_EXTENSION: &str = "snapshot";

/// Snapshot files kept: the newest, and one before it in case the newest is torn.
const SNAPSHOTS_KEPT: usize = 2;

/// Version 2 adds each producer's coordinator epoch and open transaction; version 1 files
/// (without them) are still read.
const SNAPSHOT_VERSION: i16 = 2;

/// Where one of a producer's batches went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence number of the batch's first record.
    pub first_seq: i32,
    /// Sequence number of its last record.
    pub last_seq: i32,
    /// Offset of its first record.
    pub first_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its largest timestamp (the append time under `LogAppendTime`).
    pub timestamp: i64,
}

/// What a partition knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer's epoch; batches of older epochs are refused.
    pub epoch: i16,
    /// Its last batches of this epoch, oldest first, at most [`BATCHES_PER_PRODUCER`].
    pub batches: VecDeque<BatchMetadata>,
    /// When it last wrote (ms since the epoch), for `producer.id.expiration.ms`.
    pub last_timestamp: i64,
    /// Epoch of the transaction coordinator that wrote its last marker (-1 before any).
    pub coordinator_epoch: i32,
    /// Offset of the first batch of its open transaction in this partition, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

/// A transaction marker to write: which producer's transaction ends, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer.
    pub producer_id: i64,
    /// Its epoch (the coordinator's, which may be newer than the producer's batches).
    pub producer_epoch: i16,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
    /// The coordinator's epoch, which fences markers from an older coordinator.
    pub coordinator_epoch: i32,
}

/// A transaction a marker closed in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of its first batch here (the marker's own offset if it wrote nothing here).
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// ABORT rather than COMMIT.
    pub aborted: bool,
}

impl ProducerEntry {
    /// Closes the open transaction with a marker at `offset`.
    fn complete(&mut self, marker: &TxnMarker, offset: i64, now_ms: i64) -> CompletedTxn {
        self.update_epoch(marker.producer_epoch);
        self.coordinator_epoch = marker.coordinator_epoch;
        let first_offset = self.current_txn_first_offset.take().unwrap_or(offset);
        self.last_timestamp = self.last_timestamp.max(now_ms);
        CompletedTxn {
            producer_id: marker.producer_id,
            first_offset,
            last_offset: offset,
            aborted: !marker.commit,
        }
    }

    /// The last sequence number written in this epoch, if any.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }

    fn new(epoch: i16, now_ms: i64) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_timestamp: now_ms,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// A new epoch starts with no batches (its sequence numbers restart at 0).
    fn update_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }

    fn record(&mut self, epoch: i16, batch: BatchMetadata, now_ms: i64) {
        self.update_epoch(epoch);
        if self.batches.len() == BATCHES_PER_PRODUCER {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp = self.last_timestamp.max(now_ms);
    }
}

/// Sequence number of a batch's last record: Kafka's sequences wrap from `i32::MAX` to 0.
pub fn last_sequence(header: &BatchHeader) -> i32 {
    let delta = header.last_offset_delta.max(0);
    if header.base_sequence > i32::MAX - delta {
        delta - (i32::MAX - header.base_sequence) - 1
    } else {
        header.base_sequence + delta
    }
}

/// Whether `next` follows `last`.
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// Whether a batch was written by an idempotent (or transactional) producer.
fn has_producer_id(header: &BatchHeader) -> bool {
    header.producer_id >= 0
}

fn metadata(header: &BatchHeader) -> BatchMetadata {
    BatchMetadata {
        first_seq: header.base_sequence,
        last_seq: last_sequence(header),
        first_offset: header.base_offset,
        last_offset: header.last_offset(),
        timestamp: header.max_timestamp,
    }
}

/// The producers of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

/// The checked changes of one append, applied once its bytes are written.
#[derive(Debug, Default)]
pub struct PendingUpdates {
    entries: Vec<(i64, ProducerEntry)>,
}

impl ProducerStates {
    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The entry of one producer.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer, by id.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    /// The first of a client's batches that was already written (same producer, epoch and
    /// sequence range as one of its last batches): a retry, answered with the first write's
    /// offsets. Kafka treats the whole request as that duplicate.
    pub fn find_duplicate(&self, headers: &[BatchHeader]) -> Option<BatchMetadata> {
        headers.iter().filter(|h| has_producer_id(h)).find_map(|h| {
            self.producers.get(&h.producer_id).and_then(|entry| {
                entry.find_duplicate(h.producer_epoch, h.base_sequence, last_sequence(h))
            })
        })
    }

    /// Checks a client's batches, whose offsets are assigned, against what the partition knows
    /// (each batch against the state the ones before it leave), as Kafka's
    /// `ProducerAppendInfo` does. Nothing changes until [`ProducerStates::apply`].
    /// `verify_sequence` is false for the coordinators' own transactional writes (offset
    /// commits), which carry no sequence numbers.
    pub fn check(
        &self,
        headers: &[BatchHeader],
        partition: &TopicPartition,
        now_ms: i64,
        verify_sequence: bool,
    ) -> Result<PendingUpdates> {
        let mut pending = PendingUpdates::default();
        for header in headers.iter().filter(|h| has_producer_id(h)) {
            let id = header.producer_id;
            let slot = pending.entries.iter().position(|(p, _)| *p == id);
            let current = match slot {
                Some(i) => Some(&pending.entries[i].1),
                None => self.producers.get(&id),
            };
            if let Some(entry) = current {
                if header.producer_epoch < entry.epoch {
                    return Err(Error::InvalidProducerEpoch {
                        producer_id: id,
                        offset: header.base_offset,
                        partition: partition.to_string(),
                        epoch: header.producer_epoch,
                        current_epoch: entry.epoch,
                    });
                }
                if !verify_sequence {
                } else if header.producer_epoch > entry.epoch {
                    if header.base_sequence != 0 {
                        return Err(Error::InvalidSequenceForNewEpoch {
                            producer_id: id,
                            partition: partition.to_string(),
                            epoch: header.producer_epoch,
                            found: header.base_sequence,
                            current_epoch: entry.epoch,
                        });
                    }
                } else if let Some(last) = entry.last_seq() {
                    if !in_sequence(last, header.base_sequence) {
                        return Err(Error::OutOfOrderSequence {
                            producer_id: id,
                            offset: header.base_offset,
                            partition: partition.to_string(),
                            found: header.base_sequence,
                            last,
                        });
                    }
                }
            }
            let mut entry = current
                .cloned()
                .unwrap_or_else(|| ProducerEntry::new(header.producer_epoch, now_ms));
            if header.is_transactional() {
                entry
                    .current_txn_first_offset
                    .get_or_insert(header.base_offset);
            } else if entry.current_txn_first_offset.is_some() {
                return Err(Error::InvalidTxnState {
                    producer_id: id,
                    partition: partition.to_string(),
                    reason: format!(
                        "Expected transactional write from producer {id} at offset {}",
                        header.base_offset
                    ),
                });
            }
            entry.record(header.producer_epoch, metadata(header), now_ms);
            match slot {
                Some(i) => pending.entries[i].1 = entry,
                None => pending.entries.push((id, entry)),
            }
        }
        Ok(pending)
    }

    /// Applies the changes [`ProducerStates::check`] computed.
    pub fn apply(&mut self, pending: PendingUpdates) {
        self.producers.extend(pending.entries);
    }

    /// Records a batch already in the log (a follower's copy, or a replay on open) without
    /// checking it; `now_ms` of None uses the batch's timestamp as its write time. `marker` is
    /// the control record of a control batch (COMMIT true, ABORT false); a marker returns the
    /// transaction it closed.
    pub fn replay(
        &mut self,
        header: &BatchHeader,
        marker: Option<super::batch::ControlMarker>,
        now_ms: Option<i64>,
    ) -> Option<CompletedTxn> {
        if !has_producer_id(header) {
            return None;
        }
        let at = now_ms.unwrap_or(header.max_timestamp);
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry::new(header.producer_epoch, at));
        if header.is_control() {
            let (commit, coordinator_epoch) = marker?;
            let marker = TxnMarker {
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
                commit,
                coordinator_epoch,
            };
            return Some(entry.complete(&marker, header.base_offset, at));
        }
        if header.is_transactional() {
            entry
                .current_txn_first_offset
                .get_or_insert(header.base_offset);
        }
        entry.record(header.producer_epoch, metadata(header), at);
        None
    }

    /// Forgets producers that have not written for `expiration_ms`; returns how many.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        // A producer with an open transaction stays: its transaction holds the LSO back.
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Whether a batch from this producer would open or continue a transaction here.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// The first offset of the oldest open transaction: the last stable offset cannot pass it.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|e| e.current_txn_first_offset)
            .min()
    }

    /// Checks a marker about to be written at `offset` (Kafka's `appendEndTxnMarker`): an
    /// older producer epoch is refused, and so is an older coordinator epoch. Returns the
    /// transaction it closes and the change to apply once it is written.
    pub fn check_marker(
        &self,
        marker: &TxnMarker,
        offset: i64,
        partition: &TopicPartition,
        now_ms: i64,
    ) -> Result<(PendingUpdates, CompletedTxn)> {
        let id = marker.producer_id;
        let mut entry = match self.producers.get(&id) {
            Some(entry) => {
                if marker.producer_epoch < entry.epoch {
                    return Err(Error::InvalidProducerEpoch {
                        producer_id: id,
                        offset,
                        partition: partition.to_string(),
                        epoch: marker.producer_epoch,
                        current_epoch: entry.epoch,
                    });
                }
                if marker.coordinator_epoch < entry.coordinator_epoch {
                    return Err(Error::TransactionCoordinatorFenced {
                        producer_id: id,
                        partition: partition.to_string(),
                        epoch: marker.coordinator_epoch,
                        current_epoch: entry.coordinator_epoch,
                    });
                }
                entry.clone()
            }
            None => ProducerEntry::new(marker.producer_epoch, now_ms),
        };
        let completed = entry.complete(marker, offset, now_ms);
        Ok((
            PendingUpdates {
                entries: vec![(id, entry)],
            },
            completed,
        ))
    }

    /// The first offset of the open transaction of every producer but `producer_id`: what an
    /// aborted transaction's index entry records as the last stable offset after it.
    pub fn first_unstable_offset_excluding(&self, producer_id: i64) -> Option<i64> {
        self.producers
            .iter()
            .filter(|(id, _)| **id != producer_id)
            .filter_map(|(_, e)| e.current_txn_first_offset)
            .min()
    }

    /// Forgets every producer.
    pub fn clear(&mut self) {
        self.producers.clear();
    }

    /// Writes the state as `dir/<offset>.snapshot` (fsynced, then renamed into place) and
    /// removes all but the newest snapshots.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<()> {
        write_atomically(&snapshot_path(dir, offset), &self.encode())?;
        let mut offsets = list_snapshots(dir)?;
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        for old in offsets.into_iter().skip(SNAPSHOTS_KEPT) {
            remove_file(&snapshot_path(dir, old))?;
        }
        Ok(())
    }

    /// The newest readable snapshot at or below `max_offset`, and its offset. Snapshots above
    /// it (of data since truncated) and unreadable ones are deleted.
    /// `listed` are the snapshots' offsets when the caller already listed the directory.
    pub fn load_snapshot(
        dir: &Path,
        max_offset: i64,
        listed: Option<Vec<i64>>,
    ) -> Result<Option<(ProducerStates, i64)>> {
        let mut offsets = match listed {
            Some(offsets) => offsets,
            None => list_snapshots(dir)?,
        };
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        for offset in offsets {
            let path = snapshot_path(dir, offset);
            if offset > max_offset {
                remove_file(&path)?;
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read snapshot", &path, e))?;
            match ProducerStates::decode(&bytes) {
                Some(states) => return Ok(Some((states, offset))),
                None => {
                    tracing::warn!(snapshot = %path.display(), "deleting unreadable producer state snapshot");
                    remove_file(&path)?;
                }
            }
        }
        Ok(None)
    }

    /// Deletes every snapshot in `dir`.
    pub fn delete_snapshots(dir: &Path) -> Result<()> {
        for offset in list_snapshots(dir)? {
            remove_file(&snapshot_path(dir, offset))?;
        }
        Ok(())
    }

    /// Version, CRC-32C of the rest, count, then each producer: id, epoch, last write time,
    /// batch count and batches. Big-endian, as Kafka's formats.
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(entry.batches.len() as u8);
            for b in &entry.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> Option<ProducerStates> {
        let mut r = Reader(bytes);
        let version = r.i16()?;
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return None;
        }
        let crc = r.i32()? as u32;
        if crc32c::crc32c(r.0) != crc {
            return None;
        }
        let count = r.i32()?;
        let mut producers = HashMap::with_capacity(count.clamp(0, 1 << 16) as usize);
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let (coordinator_epoch, current_txn_first_offset) = if version >= 2 {
                (r.i32()?, Some(r.i64()?).filter(|o| *o >= 0))
            } else {
                (-1, None)
            };
            let n = r.u8()?;
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                    coordinator_epoch,
                    current_txn_first_offset,
                },
            );
        }
        r.0.is_empty().then_some(ProducerStates { producers })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_EXTENSION}"))
}

fn list_snapshots(dir: &Path) -> Result<Vec<i64>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list snapshots", dir, e))?;
    let mut offsets = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list snapshots", dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name
            .to_str()
            .and_then(|n| n.strip_suffix(&format!(".{SNAPSHOT_EXTENSION}")))
        else {
            continue;
        };
        if let Ok(offset) = stem.parse::<i64>() {
            offsets.push(offset);
        }
    }
    Ok(offsets)
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io("delete snapshot", path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn append(states: &mut ProducerStates, h: BatchHeader) -> Result<()> {
        let pending = states.check(&[h], &tp(), 5_000, true)?;
        states.apply(pending);
        Ok(())
    }

    #[test]
    fn sequences_must_follow_within_an_epoch() {
        let mut s = ProducerStates::default();
        append(&mut s, header(7, 0, 0, 3, 0)).unwrap();
        append(&mut s, header(7, 0, 3, 2, 3)).unwrap();
        let err = append(&mut s, header(7, 0, 6, 1, 5)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutOfOrderSequence {
                    found: 6,
                    last: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.response_error(),
            kafka_protocol::ResponseError::OutOfOrderSequenceNumber
        );
        assert_eq!(s.get(7).and_then(ProducerEntry::last_seq), Some(4));
    }

    #[test]
    fn a_retried_batch_is_found_with_its_first_offsets() {
        let mut s = ProducerStates::default();
        append(&mut s, header(7, 0, 0, 3, 10)).unwrap();
        append(&mut s, header(7, 0, 3, 2, 13)).unwrap();
        let dup = s.find_duplicate(&[header(7, 0, 0, 3, -1)]).unwrap();
        assert_eq!((dup.first_offset, dup.last_offset), (10, 12));
        // Another epoch, another range or another producer is not a duplicate.
        assert!(s.find_duplicate(&[header(7, 1, 0, 3, -1)]).is_none());
        assert!(s.find_duplicate(&[header(7, 0, 0, 2, -1)]).is_none());
        assert!(s.find_duplicate(&[header(8, 0, 0, 3, -1)]).is_none());
        // Only the last five batches are remembered.
        for i in 0..5 {
            append(&mut s, header(7, 0, 5 + i, 1, 15 + i64::from(i))).unwrap();
        }
        assert!(s.find_duplicate(&[header(7, 0, 0, 3, -1)]).is_none());
        assert!(s.find_duplicate(&[header(7, 0, 5, 1, -1)]).is_some());
    }

    #[test]
    fn epochs_fence_older_instances_and_restart_sequences() {
        let mut s = ProducerStates::default();
        append(&mut s, header(7, 3, 0, 1, 0)).unwrap();
        let err = append(&mut s, header(7, 2, 1, 1, 1)).unwrap_err();
        assert_eq!(
            err.response_error(),
            kafka_protocol::ResponseError::InvalidProducerEpoch
        );
        let err = append(&mut s, header(7, 4, 5, 1, 1)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidSequenceForNewEpoch { .. }),
            "{err}"
        );
        append(&mut s, header(7, 4, 0, 1, 1)).unwrap();
        assert_eq!(s.get(7).map(|e| e.epoch), Some(4));
    }

    #[test]
    fn an_unknown_producer_may_start_anywhere_and_sequences_wrap() {
        let mut s = ProducerStates::default();
        append(&mut s, header(9, 0, i32::MAX - 1, 2, 0)).unwrap();
        append(&mut s, header(9, 0, 0, 1, 2)).unwrap();
        assert_eq!(last_sequence(&header(9, 0, i32::MAX, 3, 0)), 1);
    }

    #[test]
    fn batches_of_one_request_are_checked_in_order_and_nothing_changes_on_error() {
        let mut s = ProducerStates::default();
        let ok = [header(1, 0, 0, 2, 0), header(1, 0, 2, 2, 2)];
        append(&mut s, ok[0]).unwrap();
        let before = s.clone();
        let bad = [header(1, 0, 2, 2, 2), header(1, 0, 9, 1, 4)];
        assert!(s.check(&bad, &tp(), 0, true).is_err());
        assert_eq!(s, before);
        let pending = s.check(&ok[1..], &tp(), 0, true).unwrap();
        s.apply(pending);
        assert_eq!(s.get(1).and_then(ProducerEntry::last_seq), Some(3));
    }

    fn txn(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        let mut h = header(pid, epoch, seq, count, offset);
        h.attributes |= 1 << 4;
        h
    }

    fn marker(pid: i64, epoch: i16, commit: bool, coordinator_epoch: i32) -> TxnMarker {
        TxnMarker {
            producer_id: pid,
            producer_epoch: epoch,
            commit,
            coordinator_epoch,
        }
    }

    fn end(s: &mut ProducerStates, m: TxnMarker, offset: i64) -> Result<CompletedTxn> {
        let (pending, done) = s.check_marker(&m, offset, &tp(), 5_000)?;
        s.apply(pending);
        Ok(done)
    }

    #[test]
    fn a_transaction_opens_at_its_first_batch_and_a_marker_closes_it() {
        let mut s = ProducerStates::default();
        append(&mut s, header(2, 0, 0, 1, 0)).unwrap();
        append(&mut s, txn(1, 0, 0, 2, 1)).unwrap();
        append(&mut s, txn(3, 0, 0, 1, 3)).unwrap();
        append(&mut s, txn(1, 0, 2, 1, 4)).unwrap();
        assert_eq!(s.first_unstable_offset(), Some(1));
        assert_eq!(s.first_unstable_offset_excluding(1), Some(3));
        // A plain batch from a producer inside a transaction is refused.
        let err = append(&mut s, header(1, 0, 3, 1, 5)).unwrap_err();
        assert_eq!(
            err.response_error(),
            kafka_protocol::ResponseError::InvalidTxnState
        );
        let done = end(&mut s, marker(1, 0, false, 0), 5).unwrap();
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 1,
                first_offset: 1,
                last_offset: 5,
                aborted: true
            }
        );
        assert_eq!(s.first_unstable_offset(), Some(3));
        let done = end(&mut s, marker(3, 0, true, 0), 6).unwrap();
        assert!(!done.aborted);
        assert_eq!(s.first_unstable_offset(), None);
        // The producer's sequence continues in the next transaction.
        append(&mut s, txn(1, 0, 3, 1, 7)).unwrap();
        assert_eq!(s.first_unstable_offset(), Some(7));
    }

    #[test]
    fn markers_fence_older_epochs_and_coordinators_and_bump_the_epoch() {
        let mut s = ProducerStates::default();
        append(&mut s, txn(1, 2, 0, 1, 0)).unwrap();
        let err = end(&mut s, marker(1, 1, true, 0), 1).unwrap_err();
        assert_eq!(
            err.response_error(),
            kafka_protocol::ResponseError::InvalidProducerEpoch
        );
        // A coordinator fencing the producer aborts with a newer epoch.
        end(&mut s, marker(1, 3, false, 5), 1).unwrap();
        assert_eq!(
            s.get(1).map(|e| (e.epoch, e.coordinator_epoch)),
            Some((3, 5))
        );
        let err = end(&mut s, marker(1, 3, false, 4), 2).unwrap_err();
        assert_eq!(
            err.response_error(),
            kafka_protocol::ResponseError::TransactionCoordinatorFenced
        );
        // The old instance's batches are refused; the new one starts at sequence 0.
        assert!(append(&mut s, txn(1, 2, 1, 1, 2)).is_err());
        append(&mut s, txn(1, 3, 0, 1, 2)).unwrap();
        // A marker for a producer with nothing here closes an empty transaction.
        let done = end(&mut s, marker(9, 0, false, 0), 3).unwrap();
        assert_eq!((done.first_offset, done.last_offset), (3, 3));
    }

    #[test]
    fn replay_rebuilds_open_and_closed_transactions() {
        let mut live = ProducerStates::default();
        append(&mut live, txn(1, 0, 0, 2, 0)).unwrap();
        append(&mut live, txn(2, 0, 0, 1, 2)).unwrap();
        end(&mut live, marker(1, 0, false, 0), 3).unwrap();
        let mut replayed = ProducerStates::default();
        replayed.replay(&txn(1, 0, 0, 2, 0), None, Some(5_000));
        replayed.replay(&txn(2, 0, 0, 1, 2), None, Some(5_000));
        let mut control = txn(1, 0, -1, 1, 3);
        control.attributes |= 1 << 5;
        let done = replayed.replay(&control, Some((false, 0)), Some(5_000));
        assert_eq!(done.map(|d| (d.first_offset, d.aborted)), Some((0, true)));
        assert_eq!(replayed.first_unstable_offset(), Some(2));
        assert_eq!(replayed, live);
        // An open transaction keeps its producer past the expiration.
        assert_eq!(replayed.remove_expired(i64::MAX / 2, 1), 1);
        assert!(replayed.in_transaction(2));
    }

    #[test]
    fn expired_producers_are_forgotten() {
        let mut s = ProducerStates::default();
        append(&mut s, header(1, 0, 0, 1, 0)).unwrap();
        assert_eq!(s.remove_expired(5_000 + 999, 1_000), 0);
        assert_eq!(s.remove_expired(5_000 + 1_000, 1_000), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn snapshots_round_trip_and_the_newest_below_the_end_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerStates::default();
        append(&mut s, header(1, 0, 0, 2, 0)).unwrap();
        s.write_snapshot(dir.path(), 2).unwrap();
        append(&mut s, header(2, 1, 0, 1, 2)).unwrap();
        s.write_snapshot(dir.path(), 3).unwrap();
        let (loaded, at) = ProducerStates::load_snapshot(dir.path(), 10, None)
            .unwrap()
            .unwrap();
        assert_eq!((loaded, at), (s.clone(), 3));
        // A snapshot past the log end (truncated data) is skipped and deleted.
        let (older, at) = ProducerStates::load_snapshot(dir.path(), 2, None)
            .unwrap()
            .unwrap();
        assert_eq!((older.len(), at), (1, 2));
        assert!(!snapshot_path(dir.path(), 3).exists());
        // A torn snapshot is not trusted.
        let path = snapshot_path(dir.path(), 2);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(ProducerStates::load_snapshot(dir.path(), 10, None)
            .unwrap()
            .is_none());
        // Only the newest two are kept.
        for offset in [5, 6, 7] {
            s.write_snapshot(dir.path(), offset).unwrap();
        }
        let mut left = list_snapshots(dir.path()).unwrap();
        left.sort_unstable();
        assert_eq!(left, vec![6, 7]);
    }

    proptest! {
        #[test]
        fn any_state_survives_a_snapshot(
            entries in proptest::collection::vec(
                (0i64..1000, -1i16..5, 0i32..1000, 1i32..50, 0i64..1_000_000, 0u8..4), 0..40)
        ) {
            let mut s = ProducerStates::default();
            for (pid, epoch, seq, count, offset, kind) in entries {
                let mut h = header(pid, epoch, seq, count, offset);
                match kind {
                    1 => h.attributes |= 1 << 4,
                    2 => h.attributes |= (1 << 4) | (1 << 5),
                    _ => {}
                }
                s.replay(&h, (kind == 2).then_some((offset % 2 == 0, 3)), None);
            }
            let decoded = ProducerStates::decode(&s.encode());
            prop_assert_eq!(decoded, Some(s));
        }
    }
}
