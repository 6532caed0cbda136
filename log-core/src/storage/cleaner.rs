//! Log compaction: keeps the latest record of every key in the segments before the active one.
//!
//! A pass works in three steps, holding the partition lock only for the first and the last:
//! 1. note the inactive segments and the first dirty offset (where the last pass stopped);
//! 2. scan the dirty part into an [`OffsetMap`] of key → latest offset, within a byte budget
//!    (stopping at a batch boundary when the budget is spent), then copy every inactive segment
//!    into `<base>.log.cleaned` files keeping a record only if no later offset holds its key
//!    (tombstones also go once older than `delete.retention.ms`). Batches whose records all
//!    stay are copied byte for byte; others are rebuilt from the kept records' raw bytes with
//!    the original base offset, so offsets never change (gaps appear instead);
//! 3. swap: `.cleaned` → `.log.swap`, delete the replaced segments, `.log.swap` → `.log`.
//!    [`complete_interrupted_swaps`] finishes a swap that a crash interrupted.
//!
//! **Invariant**: the latest record of every key survives (tested by property tests below).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};
use kafka_protocol::records::Compression;
use parking_lot::Mutex;

use super::batch::{check_stored_batch, refresh_crc, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};
use super::batch::{read_varint, read_varlong};
use super::checkpoint::sync_dir;
use super::log::PartitionLog;
use super::segment::{segment_path, Segment};
use super::txn_index::AbortedTxn;
use crate::error::{Error, Result};

/// Settings of the cleaner, with Kafka's broker config names.
#[derive(Debug, Clone)]
pub struct CleanerOptions {
    /// `log.cleaner.dedupe.buffer.size`: memory for the key → offset map of one pass.
    pub dedupe_buffer_bytes: usize,
    /// Clean even when the dirty ratio is below `min.cleanable.dirty.ratio`.
    pub ignore_dirty_ratio: bool,
}

impl Default for CleanerOptions {
    fn default() -> Self {
        CleanerOptions {
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            ignore_dirty_ratio: false,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Where the next pass starts: everything below was compacted.
    pub next_dirty_offset: i64,
    /// Bytes of the segments rewritten, before and after.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
    /// Records dropped.
    pub records_removed: u64,
    /// Distinct keys in the offset map.
    pub keys: usize,
}

/// Key → latest offset, with the memory it uses counted against a budget.
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    bytes_used: usize,
}

/// Estimated bytes per map entry besides the key: the offset, the box and hash table slack.
const ENTRY_OVERHEAD: usize = 48;

impl OffsetMap {
    /// Records that `key` appears at `offset`.
    pub fn put(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(latest) => *latest = (*latest).max(offset),
            None => {
                self.bytes_used += key.len() + ENTRY_OVERHEAD;
                self.latest.insert(key.into(), offset);
            }
        }
    }

    /// The latest offset of `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Estimated memory used.
    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether no key was recorded.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// What the cleaner must know of transactions and producers, read under the log's lock.
struct TxnView {
    /// Cleaning stops before it: the first record of the oldest open transaction.
    first_unstable_offset: i64,
    /// Every transaction aborted in the log: their records are dropped.
    aborted: Vec<AbortedTxn>,
    /// First offsets of each known producer's last batch, kept whole for deduplication.
    last_batches: std::collections::HashSet<i64>,
}

impl TxnView {
    /// Whether a data batch belongs to an aborted transaction.
    fn is_aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && self.aborted.iter().any(|t| {
                t.producer_id == header.producer_id
                    && (t.first_offset..t.last_offset).contains(&header.base_offset)
            })
    }
}

/// An inactive segment as the cleaner sees it.
struct SegmentView {
    base_offset: i64,
    path: PathBuf,
    size: u64,
    file: Arc<File>,
    largest_timestamp: i64,
    /// The first batch's timestamp (-1 if none): `max.compaction.lag.ms` counts from it.
    first_timestamp: i64,
}

/// Runs one compaction pass over `log` if its `cleanup.policy` includes compact and enough of
/// it is dirty. Returns None when there was nothing to do.
pub fn clean(
    log: &Mutex<PartitionLog>,
    first_dirty_offset: i64,
    now_ms: i64,
    options: &CleanerOptions,
) -> Result<Option<CleanStats>> {
    // Step 1, under the lock: what to clean.
    let (config, dir, views, first_dirty, active_base, txns) = {
        let mut log = log.lock();
        let config = log.config().clone();
        if !config.cleanup_policy.compact {
            return Ok(None);
        }
        let dir = log.dir().to_owned();
        let first_dirty = first_dirty_offset.max(log.log_start_offset());
        let mut txns = TxnView {
            first_unstable_offset: log
                .producer_states()
                .first_unstable_offset()
                .unwrap_or(i64::MAX),
            aborted: Vec::new(),
            last_batches: log
                .producer_states()
                .iter()
                .filter_map(|(_, entry)| entry.batches.back().map(|b| b.first_offset))
                .collect(),
        };
        let segments = log.segments_mut();
        for segment in segments.iter_mut() {
            txns.aborted
                .extend_from_slice(segment.txn_index().entries()?);
        }
        let n_inactive = segments.len().saturating_sub(1);
        let mut views = Vec::with_capacity(n_inactive);
        for segment in &mut segments[..n_inactive] {
            views.push(SegmentView {
                base_offset: segment.base_offset(),
                path: segment.log_path().to_owned(),
                size: segment.size(),
                file: segment.file()?,
                largest_timestamp: segment.largest_timestamp()?,
                first_timestamp: segment.first_batch_timestamp()?.unwrap_or(-1),
            });
        }
        let active_base = segments.last().map_or(0, |s| s.base_offset());
        (config, dir, views, first_dirty, active_base, txns)
    };
    if views.is_empty() {
        return Ok(None);
    }

    // Step 2, unlocked: the dirty range, the offset map, the cleaned files.
    let compaction_horizon = now_ms.saturating_sub(config.min_compaction_lag_ms);
    let first_dirty_idx = views
        .partition_point(|v| v.base_offset <= first_dirty)
        .saturating_sub(1);
    let mut n_cleanable = first_dirty_idx;
    while n_cleanable < views.len() && views[n_cleanable].largest_timestamp <= compaction_horizon {
        n_cleanable += 1;
    }
    if n_cleanable <= first_dirty_idx {
        return Ok(None);
    }
    let clean_bytes: u64 = views[..first_dirty_idx].iter().map(|v| v.size).sum();
    let dirty_bytes: u64 = views[first_dirty_idx..n_cleanable]
        .iter()
        .map(|v| v.size)
        .sum();
    let ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes).max(1) as f64;
    // Records past max.compaction.lag.ms are compacted whatever the ratio (KIP-354).
    let overdue = config.max_compaction_lag_ms < i64::MAX
        && views[first_dirty_idx].first_timestamp >= 0
        && views[first_dirty_idx].first_timestamp
            <= now_ms.saturating_sub(config.max_compaction_lag_ms);
    if dirty_bytes == 0
        || (!options.ignore_dirty_ratio && !overdue && ratio < config.min_cleanable_dirty_ratio)
    {
        return Ok(None);
    }
    let mut map = OffsetMap::default();
    let mut end_offset = first_dirty;
    'build: for view_idx in first_dirty_idx..n_cleanable {
        let view = &views[view_idx];
        let mut stop = false;
        for_each_batch(view, |header, batch| {
            if header.last_offset() < first_dirty {
                return Ok(true);
            }
            if map.bytes_used() >= options.dedupe_buffer_bytes && end_offset > first_dirty {
                stop = true;
                return Ok(false);
            }
            // Nothing from an open transaction on is cleaned: the transaction may abort.
            if header.last_offset() >= txns.first_unstable_offset {
                stop = true;
                return Ok(false);
            }
            // An aborted transaction's records never shadow older values.
            if !header.is_control() && !txns.is_aborted(header) {
                for record in parse_records(header, batch)?.iter() {
                    if let Some(key) = record.key {
                        map.put(key, header.base_offset + i64::from(record.offset_delta));
                    }
                }
            }
            end_offset = header.next_offset();
            Ok(true)
        })?;
        if stop {
            break 'build;
        }
        // The whole segment is covered: the next pass starts at the next segment.
        if let Some(next) = views.get(view_idx + 1) {
            end_offset = end_offset.max(next.base_offset);
        }
    }
    if end_offset <= first_dirty {
        return Ok(None);
    }

    let to_clean = views.partition_point(|v| v.base_offset < end_offset);
    let upper_bound = views.get(to_clean).map_or(active_base, |v| v.base_offset);
    let groups = group_segments(&views[..to_clean], upper_bound, config.segment_bytes);
    let delete_horizon = now_ms.saturating_sub(config.delete_retention_ms);
    let mut stats = CleanStats {
        next_dirty_offset: end_offset,
        keys: map.len(),
        ..Default::default()
    };
    let mut cleaned_files = Vec::new();
    let result = (|| {
        for group in &groups {
            let path = cleaned_path(&dir, group[0].base_offset);
            let written = write_cleaned(
                &path,
                group,
                &map,
                &txns,
                end_offset,
                delete_horizon,
                &mut stats,
            )?;
            cleaned_files.push((path, written));
        }
        Ok::<(), Error>(())
    })();
    if let Err(err) = result {
        for (path, _) in &cleaned_files {
            let _ = std::fs::remove_file(path);
        }
        return Err(err);
    }

    // Step 3, under the lock: swap, unless retention or truncation changed the segments.
    let mut log = log.lock();
    let mut retiring = Vec::new();
    let segments = log.segments_mut();
    let unchanged = views[..to_clean].iter().all(|view| {
        segments
            .iter()
            .position(|s| s.base_offset() == view.base_offset)
            .is_some_and(|idx| idx + 1 < segments.len() && segments[idx].size() == view.size)
    });
    if !unchanged {
        for (path, _) in &cleaned_files {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!(dir = %dir.display(), "segments changed during cleaning; will retry");
        return Ok(None);
    }
    for (group, (cleaned, size)) in groups.iter().zip(&cleaned_files) {
        let base_offset = group[0].base_offset;
        let swap = segment_path(&dir, base_offset, "log.swap");
        std::fs::rename(cleaned, &swap)
            .map_err(|e| Error::io("rename cleaned segment", &swap, e))?;
        sync_dir(&dir)?;
        let first_idx = segments
            .iter()
            .position(|s| s.base_offset() == base_offset)
            .unwrap_or(0);
        let removed: Vec<Segment> = segments.drain(first_idx..first_idx + group.len()).collect();
        // Renamed away before the swap takes their place; deleted after file.delete.delay.ms.
        for old in &removed {
            retiring.extend(old.retire_files()?);
        }
        let log_path = segment_path(&dir, base_offset, "log");
        std::fs::rename(&swap, &log_path)
            .map_err(|e| Error::io("rename swapped segment", &log_path, e))?;
        let mut segment = Segment::open(&dir, base_offset, *size, config.index_interval_bytes);
        segment.recover(usize::MAX)?;
        segment.close_active()?;
        segment.flush(false)?;
        segments.insert(first_idx, segment);
    }
    sync_dir(&dir)?;
    log.remove_after_delay(retiring)?;
    tracing::info!(dir = %dir.display(), before = stats.bytes_before, after = stats.bytes_after,
        removed = stats.records_removed, next_dirty_offset = end_offset, "compacted");
    Ok(Some(stats))
}

fn cleaned_path(dir: &Path, base_offset: i64) -> PathBuf {
    segment_path(dir, base_offset, "log.cleaned")
}

/// Groups consecutive segments so that each group fits one segment: total size within
/// `segment.bytes` and offsets within 2^31 of the group's base. `upper_bound` is the base
/// offset of the segment after the last view.
fn group_segments(
    views: &[SegmentView],
    upper_bound: i64,
    segment_bytes: u64,
) -> Vec<&[SegmentView]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < views.len() {
        let mut end = start + 1;
        let mut size = views[start].size;
        while end < views.len()
            && size + views[end].size <= segment_bytes
            && views
                .get(end + 1)
                .map_or(upper_bound, |next| next.base_offset)
                - views[start].base_offset
                <= i64::from(i32::MAX)
        {
            size += views[end].size;
            end += 1;
        }
        groups.push(&views[start..end]);
        start = end;
    }
    groups
}

/// Calls `f` with every batch of a segment view; `f` returns false to stop.
fn for_each_batch(
    view: &SegmentView,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<bool>,
) -> Result<()> {
    let mut position = 0u64;
    let mut header_buf = [0u8; BATCH_HEADER_LEN];
    while position + BATCH_HEADER_LEN as u64 <= view.size {
        view.file
            .read_exact_at(&mut header_buf, position)
            .map_err(|e| Error::io("read segment for cleaning", &view.path, e))?;
        let size = BatchHeader::parse(&header_buf).map_or(0, |h| h.size()) as u64;
        if size < BATCH_HEADER_LEN as u64 || position + size > view.size {
            return Err(Error::CorruptFile {
                path: view.path.clone(),
                reason: format!("bad batch at {position}"),
            });
        }
        let mut batch = vec![0u8; size as usize];
        view.file
            .read_exact_at(&mut batch, position)
            .map_err(|e| Error::io("read segment for cleaning", &view.path, e))?;
        let header = check_stored_batch(&batch).map_err(|reason| Error::CorruptFile {
            path: view.path.clone(),
            reason: format!("batch at {position}: {reason}"),
        })?;
        if !f(&header, &batch)? {
            break;
        }
        position += size;
    }
    Ok(())
}

/// Copies the kept records of `group` into a new segment file at `path`, fsynced. Returns its size.
fn write_cleaned(
    path: &Path,
    group: &[SegmentView],
    map: &OffsetMap,
    txns: &TxnView,
    end_offset: i64,
    delete_horizon: i64,
    stats: &mut CleanStats,
) -> Result<u64> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io("create cleaned segment", path, e))?;
    let mut written = 0u64;
    let mut out = Vec::new();
    for view in group {
        stats.bytes_before += view.size;
        for_each_batch(view, |header, batch| {
            out.clear();
            filter_batch(
                header,
                batch,
                map,
                txns,
                end_offset,
                delete_horizon,
                &mut out,
                stats,
            )?;
            if !out.is_empty() {
                file.write_all_at(&out, written)
                    .map_err(|e| Error::io("write cleaned segment", path, e))?;
                written += out.len() as u64;
            }
            Ok(true)
        })?;
    }
    file.sync_all()
        .map_err(|e| Error::io("fsync cleaned segment", path, e))?;
    stats.bytes_after += written;
    Ok(written)
}

/// Writes into `out` the batch with only its kept records (nothing if none is kept).
#[allow(clippy::too_many_arguments)]
fn filter_batch(
    header: &BatchHeader,
    batch: &[u8],
    map: &OffsetMap,
    txns: &TxnView,
    end_offset: i64,
    delete_horizon: i64,
    out: &mut Vec<u8>,
    stats: &mut CleanStats,
) -> Result<()> {
    // Markers stay (Kafka removes them after delete.retention.ms; Sluice keeps them: a few
    // bytes each, and a marker never dropped cannot leave a transaction looking open).
    if header.is_control() {
        out.extend_from_slice(batch);
        return Ok(());
    }
    if header.base_offset < end_offset && txns.is_aborted(header) {
        stats.records_removed += header.records_count.max(0) as u64;
        return Ok(());
    }
    // A live producer's last batch stays whole, so that its retries are still recognised.
    if txns.last_batches.contains(&header.base_offset) {
        out.extend_from_slice(batch);
        return Ok(());
    }
    let records = parse_records(header, batch)?;
    let keep = |record: &RawRecord<'_>| {
        let offset = header.base_offset + i64::from(record.offset_delta);
        let Some(key) = record.key else { return true };
        if offset >= end_offset {
            return true;
        }
        let latest = map.get(key).is_none_or(|latest| latest <= offset);
        let expired_tombstone = !record.has_value && header.max_timestamp < delete_horizon;
        latest && !expired_tombstone
    };
    let kept: Vec<RawRecord<'_>> = records.iter().filter(|r| keep(r)).collect();
    stats.records_removed += (records.len() - kept.len()) as u64;
    if kept.len() == records.len() {
        out.extend_from_slice(batch);
        return Ok(());
    }
    if kept.is_empty() {
        return Ok(());
    }
    let mut raw = BytesMut::new();
    for record in &kept {
        raw.put_slice(record.bytes);
    }
    let compression = header.compression().unwrap_or(Compression::None);
    let mut body = BytesMut::new();
    compress(compression, &raw, &mut body).map_err(|e| Error::CorruptFile {
        path: PathBuf::new(),
        reason: format!("recompress batch: {e}"),
    })?;
    out.extend_from_slice(&batch[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&body);
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    refresh_crc(out);
    Ok(())
}

/// Compresses `raw` records with kafka-protocol's codecs (errors are only displayed).
fn compress(
    compression: Compression,
    raw: &[u8],
    out: &mut BytesMut,
) -> std::result::Result<(), String> {
    let fill = |buf: &mut BytesMut| {
        buf.put_slice(raw);
        Ok(())
    };
    let result = match compression {
        Compression::None => {
            out.put_slice(raw);
            Ok(())
        }
        Compression::Gzip => <codec::Gzip as Compressor<BytesMut>>::compress(out, fill),
        Compression::Snappy => <codec::Snappy as Compressor<BytesMut>>::compress(out, fill),
        Compression::Lz4 => <codec::Lz4 as Compressor<BytesMut>>::compress(out, fill),
        Compression::Zstd => <codec::Zstd as Compressor<BytesMut>>::compress(out, fill),
    };
    result.map_err(|e| e.to_string())
}

fn decompress(compression: Compression, body: &[u8]) -> std::result::Result<Bytes, String> {
    let mut input = Bytes::copy_from_slice(body);
    let take = |buf: &mut Bytes| Ok(std::mem::take(buf));
    let result = match compression {
        Compression::None => return Ok(input),
        Compression::Gzip => <codec::Gzip as Decompressor<Bytes>>::decompress(&mut input, take),
        Compression::Snappy => <codec::Snappy as Decompressor<Bytes>>::decompress(&mut input, take),
        Compression::Lz4 => <codec::Lz4 as Decompressor<Bytes>>::decompress(&mut input, take),
        Compression::Zstd => <codec::Zstd as Decompressor<Bytes>>::decompress(&mut input, take),
    };
    result.map_err(|e| e.to_string())
}

/// A record inside a batch, as raw bytes, with the fields compaction needs.
struct RawRecord<'a> {
    bytes: &'a [u8],
    offset_delta: i32,
    key: Option<&'a [u8]>,
    has_value: bool,
}

/// Where one record lies in a batch's decompressed body.
struct RecordSpan {
    start: usize,
    end: usize,
    offset_delta: i32,
    key: Option<(usize, usize)>,
    has_value: bool,
}

/// Owns the (decompressed) records of a batch and the parsed views into them.
struct ParsedRecords {
    body: Bytes,
    spans: Vec<RecordSpan>,
}

impl ParsedRecords {
    fn iter(&self) -> impl Iterator<Item = RawRecord<'_>> {
        self.spans.iter().map(|span| RawRecord {
            bytes: &self.body[span.start..span.end],
            offset_delta: span.offset_delta,
            key: span.key.map(|(s, e)| &self.body[s..e]),
            has_value: span.has_value,
        })
    }
    fn len(&self) -> usize {
        self.spans.len()
    }
}

fn parse_records(header: &BatchHeader, batch: &[u8]) -> Result<ParsedRecords> {
    let compression = header.compression().unwrap_or(Compression::None);
    let corrupt = |reason: String| Error::CorruptFile {
        path: PathBuf::from(format!("batch at offset {}", header.base_offset)),
        reason,
    };
    let body = decompress(compression, &batch[BATCH_HEADER_LEN..]).map_err(corrupt)?;
    let mut spans = Vec::with_capacity(header.records_count.max(0) as usize);
    let mut pos = 0usize;
    for _ in 0..header.records_count {
        let start = pos;
        let len =
            read_varint(&body, &mut pos).ok_or_else(|| corrupt("bad record length".into()))?;
        let body_start = pos;
        let end = body_start
            .checked_add(
                usize::try_from(len).map_err(|_| corrupt("negative record length".into()))?,
            )
            .filter(|end| *end <= body.len())
            .ok_or_else(|| corrupt("record overruns its batch".into()))?;
        pos += 1; // attributes
        read_varlong(&body, &mut pos).ok_or_else(|| corrupt("bad timestamp delta".into()))?;
        let offset_delta =
            read_varint(&body, &mut pos).ok_or_else(|| corrupt("bad offset delta".into()))? as i32;
        let key_len =
            read_varint(&body, &mut pos).ok_or_else(|| corrupt("bad key length".into()))?;
        let key = if key_len < 0 {
            None
        } else {
            let key_end = pos + key_len as usize;
            if key_end > end {
                return Err(corrupt("key overruns its record".into()));
            }
            let span = (pos, key_end);
            pos = key_end;
            Some(span)
        };
        let value_len =
            read_varint(&body, &mut pos).ok_or_else(|| corrupt("bad value length".into()))?;
        if pos > end {
            return Err(corrupt("record fields overrun the record".into()));
        }
        spans.push(RecordSpan {
            start,
            end,
            offset_delta,
            key,
            has_value: value_len >= 0,
        });
        pos = end;
    }
    Ok(ParsedRecords { body, spans })
}

/// Finishes or discards compaction work a crash interrupted in partition directory `dir`:
/// `.log.cleaned` files are incomplete and deleted; a `.log.swap` file is complete, so the
/// segments it replaces are deleted and it becomes a `.log`.
pub fn complete_interrupted_swaps(dir: &Path) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io("list partition directory", dir, e))?;
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list partition directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((stem, extension)) = name.split_once('.') else {
            continue;
        };
        let Ok(base_offset) = stem.parse::<i64>() else {
            continue;
        };
        match extension {
            "log.cleaned" => std::fs::remove_file(entry.path())
                .map_err(|e| Error::io("delete cleaned segment", entry.path(), e))?,
            "log.swap" => swaps.push((base_offset, entry.path())),
            "log" => logs.push(base_offset),
            _ => {}
        }
    }
    for (base_offset, swap_path) in swaps {
        let last_offset = last_offset_in(&swap_path)?.unwrap_or(base_offset);
        for &old in logs
            .iter()
            .filter(|&&old| old >= base_offset && old <= last_offset)
        {
            let old_segment = Segment::open(dir, old, 0, 4096);
            old_segment.delete_files()?;
        }
        let log_path = segment_path(dir, base_offset, "log");
        std::fs::rename(&swap_path, &log_path)
            .map_err(|e| Error::io("rename swapped segment", &log_path, e))?;
        for extension in ["index", "timeindex"] {
            let _ = std::fs::remove_file(segment_path(dir, base_offset, extension));
        }
        tracing::warn!(segment = %log_path.display(), "completed an interrupted compaction swap");
    }
    Ok(())
}

/// Last offset of the last whole batch of a file.
fn last_offset_in(path: &Path) -> Result<Option<i64>> {
    let file = File::open(path).map_err(|e| Error::io("open swap segment", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat swap segment", path, e))?
        .len();
    let mut position = 0;
    let mut last = None;
    let mut buf = [0u8; BATCH_HEADER_LEN];
    while position + BATCH_HEADER_LEN as u64 <= len {
        file.read_exact_at(&mut buf, position)
            .map_err(|e| Error::io("read swap segment", path, e))?;
        let Some(header) = BatchHeader::parse(&buf) else {
            break;
        };
        if header.size() < BATCH_HEADER_LEN || position + header.size() as u64 > len {
            break;
        }
        last = Some(header.last_offset());
        position += header.size() as u64;
    }
    Ok(last)
}
