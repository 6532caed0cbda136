//! A partition's log: an ordered list of segments, the last one active, with the positions a
//! Kafka partition tracks (log start offset, high watermark, log end offset, recovery point)
//! and its leader epoch cache.
//!
//! **Invariants** (checked by the tests in this module and `tests/`):
//! - offsets only grow: every append gets offsets at or after the log end offset;
//! - `log_start_offset <= high_watermark <= log_end_offset`;
//! - `recovery_point <= log_end_offset`, and every byte below the recovery point was fsynced;
//! - there is always an active segment, and segments are sorted by base offset.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::batch::{control_batch, control_marker, validate_batches, BatchHeader, Origin};
use super::epoch::LeaderEpochCache;
use super::producer_state::{BatchMetadata, CompletedTxn, ProducerStates, TxnMarker};
use super::segment::{FileSlice, Segment};
use super::txn_index::AbortedTxn;
use super::{now_ms, validator};
use crate::config::{LogConfig, TimestampType};
use crate::error::{Error, Result};
use crate::model::TopicPartition;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest timestamp among the appended batches.
    pub max_timestamp: i64,
    /// Last offset of the batch holding the largest timestamp.
    pub offset_of_max_timestamp: i64,
    /// Number of records appended.
    pub records: i64,
    /// Number of bytes appended.
    pub bytes: usize,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// The broker's append time, when the topic's `message.timestamp.type` is LogAppendTime
    /// (the produce response returns it).
    pub log_append_time: Option<i64>,
}

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchIsolation {
    /// Up to the log end offset: what followers read.
    LogEnd,
    /// Up to the high watermark: what consumers read.
    HighWatermark,
    /// Up to the last stable offset: what `read_committed` consumers read.
    Committed,
}

/// The result of a read: whole batches (if any) and the partition's positions at read time.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole batches starting with the one that holds the requested offset.
    pub records: Option<FileSlice>,
    /// The high watermark when the read was served.
    pub high_watermark: i64,
    /// The log start offset when the read was served.
    pub log_start_offset: i64,
    /// The log end offset when the read was served.
    pub log_end_offset: i64,
}

/// Where to start when opening a log: what the data directory's checkpoints say.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogCheckpoints {
    /// Offset below which everything was fsynced; None means recover the whole log.
    pub recovery_point: Option<i64>,
    /// The log start offset last checkpointed.
    pub log_start_offset: Option<i64>,
    /// The high watermark last checkpointed.
    pub high_watermark: Option<i64>,
    /// The previous process shut down cleanly: nothing needs recovery.
    pub clean_shutdown: bool,
}

/// What opening a log found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segments checked batch by batch.
    pub segments_recovered: usize,
    /// Bytes of torn or corrupt data cut off.
    pub bytes_truncated: u64,
    /// Segments deleted because they followed a corrupt one.
    pub segments_dropped: usize,
}

/// One partition's log.
#[derive(Debug)]
pub struct PartitionLog {
    topic_partition: TopicPartition,
    dir: PathBuf,
    config: Arc<LogConfig>,
    /// Sorted by base offset; never empty; the last is active.
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    recovery_point: i64,
    epochs: LeaderEpochCache,
    unflushed_records: i64,
    first_unflushed_at: Option<Instant>,
    /// Files of deleted segments, renamed `.deleted`, and when to remove them
    /// (`file.delete.delay.ms` after the deletion).
    retired: Vec<(Instant, Vec<PathBuf>)>,
    /// Idempotent producers' epochs and last sequences, for deduplication.
    producers: ProducerStates,
}

impl PartitionLog {
    /// Creates the directory of a new, empty partition log.
    pub fn create(
        parent: &Path,
        topic_partition: TopicPartition,
        config: Arc<LogConfig>,
    ) -> Result<PartitionLog> {
        let dir = parent.join(topic_partition.dir_name());
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("create partition directory", &dir, e))?;
        let checkpoints = LogCheckpoints {
            recovery_point: Some(0),
            clean_shutdown: true,
            ..Default::default()
        };
        let (log, _) = PartitionLog::open(&dir, topic_partition, config, checkpoints)?;
        super::checkpoint::sync_dir(parent)?;
        Ok(log)
    }

    /// Opens the partition log in `dir`, recovering segments after the recovery point unless
    /// the last shutdown was clean. Leftovers of an interrupted compaction are finished or
    /// discarded first.
    pub fn open(
        dir: &Path,
        topic_partition: TopicPartition,
        config: Arc<LogConfig>,
        checkpoints: LogCheckpoints,
    ) -> Result<(PartitionLog, OpenReport)> {
        let mut report = OpenReport::default();
        super::cleaner::complete_interrupted_swaps(dir)?;
        let (mut segments, snapshots) = list_segments(dir, config.index_interval_bytes)?;
        let start = checkpoints.log_start_offset.unwrap_or(0);
        if segments.is_empty() {
            let mut first = Segment::create(dir, start.max(0), config.index_interval_bytes)?;
            first.draw_roll_jitter(config.segment_jitter_ms);
            if config.preallocate {
                first.preallocate(config.segment_bytes)?;
            }
            segments.push(first);
        }
        let active_base = segments.last().map_or(0, Segment::base_offset);
        let trusted_end = match checkpoints.recovery_point {
            Some(point) if checkpoints.clean_shutdown && point >= active_base => Some(point),
            _ => None,
        };
        let log_end_offset = match trusted_end {
            Some(end) => end,
            None => {
                let recovery_point = checkpoints.recovery_point.unwrap_or(0);
                recover_segments(&mut segments, recovery_point, &mut report)?
            }
        };
        let first_base = segments.first().map_or(0, Segment::base_offset);
        let log_start_offset = start.max(first_base).min(log_end_offset);
        let mut epochs = LeaderEpochCache::load(dir)?;
        epochs.truncate_from_end(log_end_offset)?;
        epochs.truncate_from_start(log_start_offset)?;
        let high_watermark = checkpoints
            .high_watermark
            .unwrap_or(log_start_offset)
            .clamp(log_start_offset, log_end_offset);
        let recovery_point = if trusted_end.is_some() {
            log_end_offset
        } else {
            checkpoints.recovery_point.unwrap_or(0).min(log_end_offset)
        };
        let mut log = PartitionLog {
            topic_partition,
            dir: dir.to_owned(),
            config,
            segments,
            log_start_offset,
            log_end_offset,
            high_watermark,
            recovery_point,
            epochs,
            unflushed_records: 0,
            first_unflushed_at: None,
            retired: Vec::new(),
            producers: ProducerStates::default(),
        };
        log.load_producer_state(Some(snapshots))?;
        Ok((log, report))
    }

    /// The partition this log stores.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's configuration.
    pub fn config(&self) -> &Arc<LogConfig> {
        &self.config
    }

    /// Replaces the configuration (topic config change); applies from the next append or task.
    pub fn set_config(&mut self, config: Arc<LogConfig>) {
        for segment in &mut self.segments {
            segment.set_index_interval_bytes(config.index_interval_bytes);
        }
        self.config = config;
    }

    /// First offset the log holds.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Offset up to which records are committed (readable by consumers).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Offset below which every byte is fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// The leader epoch cache.
    pub fn leader_epochs(&self) -> &LeaderEpochCache {
        &self.epochs
    }

    /// Total bytes in all segments.
    pub fn size_in_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.iter().map(Segment::base_offset).collect()
    }

    /// Moves the high watermark, clamped to `[log start, log end]`. Returns the new value.
    pub fn set_high_watermark(&mut self, offset: i64) -> i64 {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset);
        self.high_watermark
    }

    /// Appends batches from a producer: validates them, assigns offsets from the log end offset
    /// and stamps `leader_epoch`; only those header fields differ from `records` on disk.
    /// On error nothing is written.
    pub fn append_as_leader(&mut self, records: &[u8], leader_epoch: i32) -> Result<AppendInfo> {
        self.append_new(records, leader_epoch, true)
    }

    /// Appends batches a coordinator wrote (transactional offset commits): as from a producer,
    /// but without sequence numbers to check.
    pub fn append_as_coordinator(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        self.append_new(records, leader_epoch, false)
    }

    fn append_new(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        verify_sequence: bool,
    ) -> Result<AppendInfo> {
        let headers = validate_batches(records, self.config.max_message_bytes, Origin::Client)?;
        if headers.iter().any(BatchHeader::is_control) {
            return Err(Error::ControlRecordFromClient {
                offset: self.log_end_offset,
            });
        }
        if verify_sequence {
            if let Some(duplicate) = self.producers.find_duplicate(&headers) {
                return Ok(self.duplicate_append(duplicate));
            }
        }
        let config = self.config.clone();
        let now = now_ms();
        let prepared = validator::prepare(records, headers, &config, now)?;
        let mut headers = prepared.headers;
        let mut next_offset = self.log_end_offset;
        for header in &mut headers {
            header.base_offset = next_offset;
            header.partition_leader_epoch = leader_epoch;
            next_offset = header.next_offset();
        }
        let pending =
            self.producers
                .check(&headers, &self.topic_partition, now, verify_sequence)?;
        let mut info = self.append_validated(&prepared.bytes, &headers)?;
        self.producers.apply(pending);
        info.log_append_time = prepared.log_append_time;
        if leader_epoch >= 0 {
            self.epochs.assign(leader_epoch, info.first_offset)?;
        }
        Ok(info)
    }

    /// Appends batches copied from a leader, keeping their offsets and epochs. The first batch
    /// must start at or after the log end offset and offsets must increase.
    pub fn append_as_follower(&mut self, records: &[u8]) -> Result<AppendInfo> {
        let headers = validate_batches(
            records,
            self.config.max_message_bytes.max(records.len()),
            Origin::Replication,
        )?;
        let mut expected = self.log_end_offset;
        for header in &headers {
            if header.base_offset < expected {
                return Err(Error::OutOfOrderOffsets {
                    base_offset: header.base_offset,
                    log_end_offset: expected,
                });
            }
            expected = header.next_offset();
        }
        let info = self.append_validated(records, &headers)?;
        let now = now_ms();
        let mut position = 0usize;
        for header in &headers {
            self.epochs
                .assign(header.partition_leader_epoch, header.base_offset)?;
            let marker = if header.is_control() {
                records
                    .get(position + super::batch::BATCH_HEADER_LEN..position + header.size())
                    .and_then(control_marker)
            } else {
                None
            };
            position += header.size();
            if let Some(done) = self.producers.replay(header, marker, Some(now)) {
                self.index_completed(done)?;
            }
        }
        Ok(info)
    }

    /// Writes a transaction marker (COMMIT or ABORT) for a producer, as the transaction
    /// coordinator does when a transaction ends: checked against the producer's epoch and the
    /// coordinator epoch, and an ABORT is indexed in the active segment's `.txnindex`.
    pub fn append_control_marker(
        &mut self,
        marker: &TxnMarker,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let now = now_ms();
        let offset = self.log_end_offset;
        let (pending, done) =
            self.producers
                .check_marker(marker, offset, &self.topic_partition, now)?;
        let mut batch = control_batch(
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
            now,
        );
        super::batch::set_base_offset_and_epoch(&mut batch, offset, leader_epoch);
        let headers = validate_batches(&batch, usize::MAX, Origin::Replication)?;
        let info = self.append_validated(&batch, &headers)?;
        self.producers.apply(pending);
        if leader_epoch >= 0 {
            self.epochs.assign(leader_epoch, offset)?;
        }
        self.index_completed(done)?;
        Ok(info)
    }

    /// Records an aborted transaction in the index of the segment holding its marker.
    fn index_completed(&mut self, done: CompletedTxn) -> Result<()> {
        if !done.aborted {
            return Ok(());
        }
        let last_stable_offset = self
            .producers
            .first_unstable_offset_excluding(done.producer_id)
            .unwrap_or(done.last_offset + 1);
        let idx = self.segment_index_for(done.last_offset);
        self.segments[idx].txn_index().append(AbortedTxn {
            producer_id: done.producer_id,
            first_offset: done.first_offset,
            last_offset: done.last_offset,
            last_stable_offset,
        })
    }

    /// The last stable offset: no record at or after it belongs to a transaction still open,
    /// and none is past the high watermark. `read_committed` consumers read up to it.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .map_or(self.high_watermark, |first| first.min(self.high_watermark))
    }

    /// The aborted transactions a `read_committed` fetch of `[from, upper)` must list: those
    /// whose marker is at or after `from` and whose first record is before `upper`.
    pub fn aborted_transactions(&mut self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>> {
        let mut found = Vec::new();
        let first = self.segment_index_for(from);
        for segment in &mut self.segments[first..] {
            for entry in segment.txn_index().entries()? {
                if entry.last_offset >= from && entry.first_offset < upper {
                    found.push(*entry);
                }
            }
        }
        Ok(found)
    }

    /// What an append of a batch already written answers: the offsets it got the first time
    /// (Kafka answers a producer's retry so, with no error, and writes nothing).
    fn duplicate_append(&self, duplicate: BatchMetadata) -> AppendInfo {
        let log_append_time = (self.config.message_timestamp_type == TimestampType::LogAppendTime)
            .then_some(duplicate.timestamp);
        tracing::debug!(partition = %self.topic_partition, first_offset = duplicate.first_offset,
            "duplicate batch from an idempotent producer; not written again");
        AppendInfo {
            first_offset: duplicate.first_offset,
            last_offset: duplicate.last_offset,
            max_timestamp: duplicate.timestamp,
            offset_of_max_timestamp: duplicate.last_offset,
            records: 0,
            bytes: 0,
            log_start_offset: self.log_start_offset,
            log_append_time,
        }
    }

    /// The idempotent producers this partition knows.
    pub fn producer_states(&self) -> &ProducerStates {
        &self.producers
    }

    /// Forgets producers that have not written for `expiration_ms` (`producer.id.expiration.ms`);
    /// returns how many.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.remove_expired(now_ms, expiration_ms)
    }

    /// Rebuilds the producer state: the newest snapshot at or below the log end offset, then
    /// the batches after it; without a snapshot, the batches of the last two segments.
    /// `snapshots`: the snapshot files' offsets, when the directory was just listed.
    fn load_producer_state(&mut self, snapshots: Option<Vec<i64>>) -> Result<()> {
        let (mut states, from) =
            match ProducerStates::load_snapshot(&self.dir, self.log_end_offset, snapshots)? {
                Some((states, offset)) => (states, offset),
                None => {
                    let n = self.segments.len();
                    let base = self.segments[n.saturating_sub(2)].base_offset();
                    (ProducerStates::default(), base)
                }
            };
        let from = from.max(self.log_start_offset);
        // A snapshot at the log end (a clean shutdown's) leaves nothing to replay: the segments'
        // files and indexes stay unopened until first used.
        if from >= self.log_end_offset {
            self.producers = states;
            return Ok(());
        }
        let first = self.segment_index_for(from);
        let end = self.log_end_offset;
        for segment in &mut self.segments[first..] {
            for (header, marker) in segment.batches_for_replay(from)? {
                if header.base_offset >= end {
                    break;
                }
                // An abort whose index entry a crash lost is indexed again (entries for markers
                // already indexed are not added twice).
                if let Some(done) = states.replay(&header, marker, None) {
                    if done.aborted {
                        let last_stable_offset = states
                            .first_unstable_offset_excluding(done.producer_id)
                            .unwrap_or(done.last_offset + 1);
                        segment.txn_index().append(AbortedTxn {
                            producer_id: done.producer_id,
                            first_offset: done.first_offset,
                            last_offset: done.last_offset,
                            last_stable_offset,
                        })?;
                    }
                }
            }
        }
        self.producers = states;
        Ok(())
    }

    fn append_validated(&mut self, records: &[u8], headers: &[BatchHeader]) -> Result<AppendInfo> {
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(Error::corrupt(0, "no record batches"));
        };
        if records.len() as u64 > self.config.segment_bytes {
            return Err(Error::RecordSetTooLarge {
                size: records.len(),
                segment_bytes: self.config.segment_bytes,
            });
        }
        let (max_timestamp, offset_of_max_timestamp) =
            headers.iter().fold((-1, first.last_offset()), |acc, h| {
                if h.max_timestamp > acc.0 {
                    (h.max_timestamp, h.last_offset())
                } else {
                    acc
                }
            });
        self.maybe_roll(
            records.len() as u64,
            first.base_offset,
            last.last_offset(),
            max_timestamp,
        )?;
        self.active_mut().append(records, headers)?;
        self.log_end_offset = last.next_offset();
        let n_records: i64 = headers.iter().map(|h| i64::from(h.records_count)).sum();
        self.unflushed_records += n_records;
        self.first_unflushed_at.get_or_insert_with(Instant::now);
        if self.unflushed_records >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset(),
            max_timestamp,
            offset_of_max_timestamp,
            records: n_records,
            bytes: records.len(),
            log_start_offset: self.log_start_offset,
            log_append_time: None,
        })
    }

    fn active_mut(&mut self) -> &mut Segment {
        match self.segments.last_mut() {
            Some(segment) => segment,
            None => unreachable!("a partition log always has an active segment"),
        }
    }

    /// Rolls a new active segment if this append would not fit the current one (size, age,
    /// full index, or offsets too far from the base offset).
    fn maybe_roll(
        &mut self,
        size: u64,
        first_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
    ) -> Result<()> {
        let config = self.config.clone();
        let active = self.active_mut();
        if active.size() == 0 {
            return Ok(());
        }
        let reason = if active.size() + size > config.segment_bytes {
            Some("segment.bytes")
        } else if active.index_entries()? >= config.max_index_entries() {
            Some("full index")
        } else if last_offset - active.base_offset() > i64::from(i32::MAX) {
            Some("offset overflow")
        } else {
            // Kafka counts segment.ms from the first batch's timestamp to the new batch's.
            let waited = match active.first_batch_timestamp()? {
                Some(first) if first >= 0 && max_timestamp >= 0 => max_timestamp - first,
                _ => 0,
            };
            (waited > config.max_segment_ms() - active.roll_jitter_ms()).then_some("segment.ms")
        };
        if let Some(reason) = reason {
            self.roll(first_offset, reason)?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at `base_offset`.
    fn roll(&mut self, base_offset: i64, reason: &str) -> Result<()> {
        self.active_mut().close_active()?;
        // The state after every batch below the new segment, so that a restart replays at most
        // the active segment.
        self.producers.write_snapshot(&self.dir, base_offset)?;
        let segment = self.new_segment(base_offset)?;
        tracing::debug!(partition = %self.topic_partition, base_offset, reason, "rolled new segment");
        self.segments.push(segment);
        Ok(())
    }

    /// A new, empty active segment at `base_offset`, with its roll jitter drawn and its disk
    /// reserved if the topic says so.
    fn new_segment(&self, base_offset: i64) -> Result<Segment> {
        let mut segment =
            Segment::create(&self.dir, base_offset, self.config.index_interval_bytes)?;
        segment.draw_roll_jitter(self.config.segment_jitter_ms);
        if self.config.preallocate {
            segment.preallocate(self.config.segment_bytes)?;
        }
        Ok(segment)
    }

    /// Retires a deleted segment's files: gone at once if `file.delete.delay.ms` is 0, else
    /// renamed `.deleted` and removed by [`PartitionLog::remove_retired_files`] once the delay
    /// has passed.
    fn retire(&mut self, segment: &Segment) -> Result<()> {
        if self.config.file_delete_delay_ms <= 0 {
            return segment.delete_files();
        }
        let files = segment.retire_files()?;
        self.remove_after_delay(files)
    }

    /// Schedules the removal of files already renamed `.deleted`, `file.delete.delay.ms` from
    /// now (at once if that is 0).
    pub(crate) fn remove_after_delay(&mut self, files: Vec<PathBuf>) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let delay =
            std::time::Duration::from_millis(self.config.file_delete_delay_ms.max(0) as u64);
        self.retired.push((Instant::now() + delay, files));
        if delay.is_zero() {
            self.remove_retired_files(Instant::now())?;
        }
        Ok(())
    }

    /// Removes the files of deleted segments whose `file.delete.delay.ms` has passed; returns
    /// how many segments' files went.
    pub fn remove_retired_files(&mut self, now: Instant) -> Result<usize> {
        let mut removed = 0;
        while let Some(pos) = self.retired.iter().position(|(due, _)| *due <= now) {
            let (_, files) = self.retired.swap_remove(pos);
            for path in files {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(Error::io("delete segment file", path, err)),
                }
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Rolls a new segment now if the active one holds data (used by tests and admin tools).
    pub fn force_roll(&mut self) -> Result<()> {
        if self.active_mut().size() > 0 {
            self.roll(self.log_end_offset, "forced")?;
        }
        Ok(())
    }

    /// Reads whole batches from the one holding `offset`, up to `max_bytes` (or one whole batch
    /// if the first is larger and `min_one_batch`), as a Kafka Fetch does.
    pub fn read(
        &mut self,
        offset: i64,
        max_bytes: usize,
        isolation: FetchIsolation,
        min_one_batch: bool,
    ) -> Result<ReadResult> {
        let mut result = ReadResult {
            records: None,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        };
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(self.out_of_range(offset));
        }
        let max_offset = match isolation {
            FetchIsolation::LogEnd => self.log_end_offset,
            FetchIsolation::HighWatermark => self.high_watermark,
            FetchIsolation::Committed => self.last_stable_offset(),
        };
        if offset >= max_offset {
            return Ok(result);
        }
        let mut idx = self.segment_index_for(offset);
        while idx < self.segments.len() {
            if let Some(slice) =
                self.segments[idx].read(offset, max_bytes, max_offset, min_one_batch)?
            {
                result.records = Some(slice);
                break;
            }
            idx += 1;
        }
        Ok(result)
    }

    /// Reads like [`PartitionLog::read`] and copies the bytes out.
    pub fn read_bytes(
        &mut self,
        offset: i64,
        max_bytes: usize,
        isolation: FetchIsolation,
    ) -> Result<Bytes> {
        match self.read(offset, max_bytes, isolation, true)?.records {
            Some(slice) => slice
                .to_bytes()
                .map_err(|e| Error::io("read segment", &self.dir, e)),
            None => Ok(Bytes::new()),
        }
    }

    fn out_of_range(&self, offset: i64) -> Error {
        Error::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
    }

    /// Index of the last segment whose base offset is at most `offset` (0 if none).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// The first offset whose record timestamp is at least `timestamp`, and that timestamp, as
    /// ListOffsets answers, with Kafka's special timestamps: -2 earliest, -1 latest, -3 the
    /// record with the largest timestamp (KIP-734), -4 earliest local (KIP-405; the log start
    /// without tiered storage), -5 latest tiered (KIP-1005; none without tiered storage).
    /// None when every record is older, or there is no such record.
    pub fn offset_for_timestamp(&mut self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        match timestamp {
            -2 | -4 => return Ok(Some((self.log_start_offset, -1))),
            -1 => return Ok(Some((self.log_end_offset, -1))),
            -3 => return self.offset_of_max_timestamp(),
            -5 => return Ok(None),
            t if t < 0 => return Err(self.out_of_range(t)),
            _ => {}
        }
        let start = self.log_start_offset;
        for segment in &mut self.segments {
            if segment.size() == 0 || segment.largest_timestamp()? < timestamp {
                continue;
            }
            if let Some(found) = segment.find_offset_by_timestamp(timestamp, start)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The offset of the first record holding the log's largest timestamp, and that timestamp
    /// (Kafka's MAX_TIMESTAMP: the record itself, not its batch). The segment comes from its
    /// time index; only that segment's batch headers are read, and only one batch decoded.
    fn offset_of_max_timestamp(&mut self) -> Result<Option<(i64, i64)>> {
        let mut best: Option<(usize, i64)> = None;
        for (idx, segment) in self.segments.iter_mut().enumerate() {
            if segment.size() == 0 {
                continue;
            }
            let largest = segment.largest_timestamp()?;
            if best.is_none_or(|(_, b)| largest > b) {
                best = Some((idx, largest));
            }
        }
        let Some((idx, _)) = best else {
            return Ok(None);
        };
        let from = self.log_start_offset.max(self.segments[idx].base_offset());
        let mut batch: Option<BatchHeader> = None;
        for header in self.segments[idx].batch_headers_from(from)? {
            if !header.is_control()
                && header.last_offset() >= self.log_start_offset
                && batch.is_none_or(|b| header.max_timestamp > b.max_timestamp)
            {
                batch = Some(header);
            }
        }
        let Some(batch) = batch else {
            return Ok(None);
        };
        // Under LogAppendTime every record carries the batch's time: the first one wins.
        if batch.timestamp_type() == kafka_protocol::records::TimestampType::LogAppend {
            let first = batch.base_offset.max(self.log_start_offset);
            return Ok(Some((first, batch.max_timestamp)));
        }
        let bytes = self.read_bytes(batch.last_offset(), batch.size(), FetchIsolation::LogEnd)?;
        let record = validator::decode(&bytes[..batch.size().min(bytes.len())], 0)?
            .into_iter()
            .find(|r| r.timestamp == batch.max_timestamp && r.offset >= self.log_start_offset);
        Ok(Some(match record {
            Some(record) => (record.offset, record.timestamp),
            None => (batch.last_offset(), batch.max_timestamp),
        }))
    }

    /// Removes every record at or after `offset` (the whole batch holding it): a follower
    /// truncating to the leader's log. A no-op at or past the log end offset.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset <= self.log_start_offset {
            return self.truncate_fully_and_start_at(offset.max(self.log_start_offset));
        }
        while self.segments.len() > 1
            && self
                .segments
                .last()
                .is_some_and(|s| s.base_offset() >= offset)
        {
            if let Some(segment) = self.segments.pop() {
                segment.delete_files()?;
            }
        }
        let segment = self.active_mut();
        let base = segment.base_offset();
        let end = segment.truncate_to(offset)?.unwrap_or(base);
        self.log_end_offset = end;
        self.after_truncation()?;
        // Forget the producers' truncated batches: rebuild from a snapshot below the new end.
        self.load_producer_state(None)
    }

    /// Deletes every segment and starts an empty log at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        for segment in self.segments.drain(..) {
            segment.delete_files()?;
        }
        self.segments.push(Segment::create(
            &self.dir,
            offset,
            self.config.index_interval_bytes,
        )?);
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.epochs.clear()?;
        self.producers.clear();
        ProducerStates::delete_snapshots(&self.dir)?;
        self.after_truncation()
    }

    fn after_truncation(&mut self) -> Result<()> {
        self.high_watermark = self
            .high_watermark
            .clamp(self.log_start_offset, self.log_end_offset);
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        self.epochs.truncate_from_end(self.log_end_offset)
    }

    /// Advances the log start offset (DeleteRecords), up to the high watermark; segments wholly
    /// below it are deleted by the next retention pass.
    pub fn advance_log_start_offset(&mut self, offset: i64) -> Result<()> {
        if offset > self.high_watermark {
            return Err(self.out_of_range(offset));
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.epochs.truncate_from_start(offset)?;
        }
        Ok(())
    }

    /// Deletes old segments as `retention.ms` and `retention.bytes` say (when `cleanup.policy`
    /// includes delete) and segments wholly below the log start offset. Never the active
    /// segment. Returns the number of segments deleted.
    pub fn delete_old_segments(&mut self, now_ms: i64) -> Result<usize> {
        let config = self.config.clone();
        let mut total: i64 = self.size_in_bytes() as i64;
        let mut n_deleted = 0;
        while self.segments.len() > 1 {
            let next_base = self.segments[1].base_offset();
            let oldest = &mut self.segments[0];
            let below_start = next_base <= self.log_start_offset;
            let by_time = config.cleanup_policy.delete
                && config.retention_ms >= 0
                && now_ms - oldest.largest_timestamp()? > config.retention_ms;
            let by_size = config.cleanup_policy.delete
                && config.retention_bytes >= 0
                && total - oldest.size() as i64 >= config.retention_bytes;
            if !(below_start || by_time || by_size) {
                break;
            }
            let segment = self.segments.remove(0);
            total -= segment.size() as i64;
            self.retire(&segment)?;
            tracing::info!(partition = %self.topic_partition, base_offset = segment.base_offset(),
                reason = if below_start { "log start offset" } else if by_time { "retention.ms" } else { "retention.bytes" },
                "deleted segment");
            n_deleted += 1;
            self.log_start_offset = self.log_start_offset.max(next_base);
        }
        if n_deleted > 0 {
            self.high_watermark = self.high_watermark.max(self.log_start_offset);
            self.recovery_point = self
                .recovery_point
                .max(self.log_start_offset)
                .min(self.log_end_offset);
            self.epochs.truncate_from_start(self.log_start_offset)?;
        }
        Ok(n_deleted)
    }

    /// fsyncs every segment holding data past the recovery point and moves the recovery point to
    /// the log end offset.
    pub fn flush(&mut self) -> Result<()> {
        if self.recovery_point >= self.log_end_offset && self.unflushed_records == 0 {
            return Ok(());
        }
        let from = self.segment_index_for(self.recovery_point);
        let active_idx = self.segments.len() - 1;
        for (idx, segment) in self.segments.iter_mut().enumerate().skip(from) {
            segment.flush(idx == active_idx)?;
        }
        self.recovery_point = self.log_end_offset;
        self.unflushed_records = 0;
        self.first_unflushed_at = None;
        Ok(())
    }

    /// Flushes if the oldest unflushed append is older than `flush.ms`.
    pub fn flush_if_due(&mut self, now: Instant) -> Result<bool> {
        let due = self.first_unflushed_at.is_some_and(|at| {
            now.saturating_duration_since(at).as_millis() >= self.config.flush_ms.max(0) as u128
        });
        if due {
            self.flush()?;
        }
        Ok(due)
    }

    /// Flushes everything and writes the active segment's final time index entry: the log can
    /// be reopened without recovery.
    pub fn close(&mut self) -> Result<()> {
        self.flush()?;
        // A clean shutdown skips recovery, so the active segment's indexes must be durable too.
        let active = self.active_mut();
        active.close_active()?;
        active.flush(false)?;
        self.producers
            .write_snapshot(&self.dir, self.log_end_offset)
    }

    // ---- for the cleaner ----

    pub(crate) fn segments_mut(&mut self) -> &mut Vec<Segment> {
        &mut self.segments
    }
}

/// Finds the segments of a partition directory (and the offsets of its producer state
/// snapshots, from the same listing) and removes stray files of interrupted work.
fn list_segments(dir: &Path, index_interval_bytes: u64) -> Result<(Vec<Segment>, Vec<i64>)> {
    let mut segments = Vec::new();
    let mut snapshots = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io("list partition directory", dir, e))?;
    let mut log_bases = std::collections::HashSet::new();
    let mut index_files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list partition directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.ends_with(".tmp") || name.ends_with(".deleted") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let Some((stem, extension)) = name.split_once('.') else {
            continue;
        };
        let Ok(base_offset) = stem.parse::<i64>() else {
            continue;
        };
        match extension {
            "log" => {
                let size = entry
                    .metadata()
                    .map_err(|e| Error::io("stat segment", &path, e))?
                    .len();
                log_bases.insert(base_offset);
                segments.push(Segment::open(dir, base_offset, size, index_interval_bytes));
            }
            "index" | "timeindex" | "txnindex" => index_files.push((base_offset, path)),
            super::producer_state::SNAPSHOT_EXTENSION => snapshots.push(base_offset),
            _ => {}
        }
    }
    // Index files whose log is gone are leftovers of a deletion.
    for (base_offset, path) in index_files {
        if !log_bases.contains(&base_offset) {
            let _ = std::fs::remove_file(path);
        }
    }
    segments.sort_by_key(Segment::base_offset);
    Ok((segments, snapshots))
}

/// Checks segments from the one holding `recovery_point` on, batch by batch. A corrupt or torn
/// batch truncates its segment there and drops all later segments. Returns the log end offset.
fn recover_segments(
    segments: &mut Vec<Segment>,
    recovery_point: i64,
    report: &mut OpenReport,
) -> Result<i64> {
    let from = segments
        .partition_point(|s| s.base_offset() <= recovery_point)
        .saturating_sub(1);
    let mut log_end_offset = segments.get(from).map_or(0, Segment::base_offset);
    let mut idx = from;
    while idx < segments.len() {
        let segment = &mut segments[idx];
        // No size limit: max.message.bytes may have been lowered since the batch was accepted.
        let outcome = segment.recover(usize::MAX)?;
        report.segments_recovered += 1;
        report.bytes_truncated += outcome.truncated_bytes;
        log_end_offset = outcome
            .next_offset
            .unwrap_or(segment.base_offset())
            .max(log_end_offset);
        if outcome.truncated_bytes > 0 {
            tracing::warn!(segment = %segment.log_path().display(), bytes = outcome.truncated_bytes, "truncated torn or corrupt tail");
            for dropped in segments.drain(idx + 1..) {
                tracing::warn!(segment = %dropped.log_path().display(), "deleting segment after a corrupt one");
                dropped.delete_files()?;
                report.segments_dropped += 1;
            }
            break;
        }
        idx += 1;
    }
    Ok(log_end_offset)
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
