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

const SNAPSHOT_VERSION: i16 = 1;

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
}

impl ProducerEntry {
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

    fn record(&mut self, epoch: i16, batch: BatchMetadata, now_ms: i64) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
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
    pub fn check(
        &self,
        headers: &[BatchHeader],
        partition: &TopicPartition,
        now_ms: i64,
    ) -> Result<PendingUpdates> {
        let mut pending = PendingUpdates::default();
        for header in headers.iter().filter(|h| has_producer_id(h)) {
            let id = header.producer_id;
            if header.is_transactional() {
                return Err(Error::TransactionsUnsupported {
                    producer_id: id,
                    partition: partition.to_string(),
                });
            }
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
                if header.producer_epoch > entry.epoch {
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
            let mut entry = current.cloned().unwrap_or(ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: now_ms,
            });
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

    /// Records batches already in the log (a follower's copy, or a replay on open) without
    /// checking them; `now_ms` of None uses each batch's timestamp as its write time.
    pub fn replay(&mut self, header: &BatchHeader, now_ms: Option<i64>) {
        if !has_producer_id(header) || header.is_control() {
            return;
        }
        let at = now_ms.unwrap_or(header.max_timestamp);
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: at,
            });
        entry.record(header.producer_epoch, metadata(header), at);
    }

    /// Forgets producers that have not written for `expiration_ms`; returns how many.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| now_ms.saturating_sub(entry.last_timestamp) < expiration_ms);
        before - self.producers.len()
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
        if r.i16()? != SNAPSHOT_VERSION {
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
        let pending = states.check(&[h], &tp(), 5_000)?;
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
        assert!(s.check(&bad, &tp(), 0).is_err());
        assert_eq!(s, before);
        let pending = s.check(&ok[1..], &tp(), 0).unwrap();
        s.apply(pending);
        assert_eq!(s.get(1).and_then(ProducerEntry::last_seq), Some(3));
    }

    #[test]
    fn transactional_batches_are_refused() {
        let mut h = header(1, 0, 0, 1, 0);
        h.attributes |= 1 << 4;
        let err = ProducerStates::default().check(&[h], &tp(), 0).unwrap_err();
        assert_eq!(
            err.response_error(),
            kafka_protocol::ResponseError::InvalidTxnState
        );
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
                (0i64..1000, -1i16..5, 0i32..1000, 1i32..50, 0i64..1_000_000), 0..40)
        ) {
            let mut s = ProducerStates::default();
            for (pid, epoch, seq, count, offset) in entries {
                s.replay(&header(pid, epoch, seq, count, offset), None);
            }
            let decoded = ProducerStates::decode(&s.encode());
            prop_assert_eq!(decoded, Some(s));
        }
    }
}
