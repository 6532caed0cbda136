//! One segment of a partition: `<base offset, 20 digits>.log` with its `.index` and `.timeindex`.
//!
//! A segment's file handle and indexes are loaded on first use, so that an idle partition costs a
//! few hundred bytes: opening thousands of partitions touches no segment file. Appends write at
//! the end of the `.log` with positional writes and add an index entry every
//! `index.interval.bytes`; reads return a [`FileSlice`] of whole batches.

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::batch::{
    check_stored_batch, control_marker, BatchHeader, ControlMarker, BATCH_HEADER_LEN, LOG_OVERHEAD,
};
use super::index::{
    self, load_offset_index, load_time_index, lookup_offset, lookup_time, IndexLoadError,
    OffsetEntry, TimeEntry,
};
use super::txn_index::TxnIndex;
use crate::error::{Error, Result};

/// A byte range of a segment file holding whole record batches, ready to be copied or sent to a
/// socket. It keeps the file open, so a segment deleted meanwhile stays readable.
#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<File>,
    position: u64,
    len: usize,
}

impl FileSlice {
    /// Number of bytes in the slice.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slice is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Byte position of the slice in its segment file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The file the slice points into (for `sendfile`-style transfers).
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Appends the slice's bytes to `out` with one positional read.
    pub fn read_into(&self, out: &mut BytesMut) -> std::io::Result<()> {
        let start = out.len();
        out.resize(start + self.len, 0);
        self.file.read_exact_at(&mut out[start..], self.position)
    }

    /// Fills `dst` (of exactly [`FileSlice::len`] bytes) with the slice, for callers that reuse
    /// a buffer.
    pub fn read_exact_into(&self, dst: &mut [u8]) -> std::io::Result<()> {
        if dst.len() != self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "buffer length differs from the slice length",
            ));
        }
        self.file.read_exact_at(dst, self.position)
    }

    /// The slice's bytes.
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        let mut out = BytesMut::with_capacity(self.len);
        self.read_into(&mut out)?;
        Ok(out.freeze())
    }
}

/// The path of a segment file: `<dir>/<base offset, 20 digits>.<extension>`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, extension: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{extension}"))
}

/// The indexes and running maxima of a segment, present once loaded.
#[derive(Debug)]
struct Indexes {
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    /// Append handles, opened for the active segment only.
    offset_writer: Option<File>,
    time_writer: Option<File>,
    /// Largest batch max timestamp in the segment, and the last offset of the batch that first
    /// reached it (Kafka's `shallowOffsetOfMaxTimestampSoFar`).
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    bytes_since_last_index_entry: u64,
    /// Entries already in the files; the rest are appended by `persist_new_entries`.
    offsets_on_disk: usize,
    times_on_disk: usize,
}

/// What recovery found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryOutcome {
    /// Offset after the last valid batch, or None if the segment holds no valid batch.
    pub next_offset: Option<i64>,
    /// Bytes cut from the end because they were torn or corrupt.
    pub truncated_bytes: u64,
}

/// A segment of a partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: Option<Arc<File>>,
    size: u64,
    indexes: Option<Box<Indexes>>,
    /// Max timestamp of the first batch: `segment.ms` counts from it. Outer None: not read yet.
    first_batch_timestamp: Option<Option<i64>>,
    index_interval_bytes: u64,
    /// Where the batch after the last read starts (its base offset, position and header): the
    /// next fetch of a sequential consumer starts there without an index look-up.
    read_cursor: Option<(i64, u64, BatchHeader)>,
    /// Whether disk past the data was reserved (`preallocate`) and is to be given back when
    /// the segment closes.
    preallocated: bool,
    /// What `segment.jitter.ms` took off `segment.ms` for this segment (drawn when created).
    roll_jitter_ms: i64,
    /// The transactions aborted by markers in this segment.
    txn_index: TxnIndex,
}

const SCAN_CHUNK: usize = 256 * 1024;

impl Segment {
    /// Creates a new, empty segment, replacing leftovers of the same name.
    pub fn create(dir: &Path, base_offset: i64, index_interval_bytes: u64) -> Result<Segment> {
        let log_path = segment_path(dir, base_offset, "log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(|e| Error::io("create segment", &log_path, e))?;
        let mut segment = Segment::open(dir, base_offset, 0, index_interval_bytes);
        segment.file = Some(Arc::new(file));
        for extension in ["index", "timeindex"] {
            let path = segment_path(dir, base_offset, extension);
            index::write_index_file(&path, &[]).map_err(|e| Error::io("create index", &path, e))?;
        }
        segment.indexes = Some(Box::new(Indexes {
            offsets: Vec::new(),
            times: Vec::new(),
            offset_writer: None,
            time_writer: None,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_last_index_entry: 0,
            offsets_on_disk: 0,
            times_on_disk: 0,
        }));
        segment.first_batch_timestamp = Some(None);
        segment.txn_index.replace(Vec::new())?;
        Ok(segment)
    }

    /// A segment known to exist with `size` bytes; nothing is read until it is used.
    pub fn open(dir: &Path, base_offset: i64, size: u64, index_interval_bytes: u64) -> Segment {
        Segment {
            base_offset,
            log_path: segment_path(dir, base_offset, "log"),
            file: None,
            size,
            indexes: None,
            first_batch_timestamp: None,
            index_interval_bytes,
            read_cursor: None,
            preallocated: false,
            roll_jitter_ms: 0,
            txn_index: TxnIndex::new(segment_path(dir, base_offset, "txnindex")),
        }
    }

    /// The segment's aborted-transaction index.
    pub fn txn_index(&mut self) -> &mut TxnIndex {
        &mut self.txn_index
    }

    /// What `segment.jitter.ms` takes off `segment.ms` for this segment.
    pub fn roll_jitter_ms(&self) -> i64 {
        self.roll_jitter_ms
    }

    /// Draws this segment's roll jitter: a random share of `jitter_ms` (Kafka's
    /// `rollJitterMs`), so that partitions created together do not all roll together.
    pub fn draw_roll_jitter(&mut self, jitter_ms: i64) {
        self.roll_jitter_ms = if jitter_ms > 0 {
            (uuid::Uuid::new_v4().as_u128() % jitter_ms as u128) as i64
        } else {
            0
        };
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn sibling(&self, extension: &str) -> PathBuf {
        self.log_path.with_extension(extension)
    }

    pub fn set_index_interval_bytes(&mut self, bytes: u64) {
        self.index_interval_bytes = bytes;
    }

    /// The segment's file, opened on first use.
    pub fn file(&mut self) -> Result<Arc<File>> {
        if let Some(file) = &self.file {
            return Ok(file.clone());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.log_path)
            .map_err(|e| Error::io("open segment", &self.log_path, e))?;
        let file = Arc::new(file);
        self.file = Some(file.clone());
        Ok(file)
    }

    /// Loads the indexes, rebuilding them from the log if they are missing or inconsistent.
    fn indexes(&mut self) -> Result<&mut Indexes> {
        let indexes = match self.indexes.take() {
            Some(indexes) => indexes,
            None => Box::new(self.load_indexes()?),
        };
        Ok(self.indexes.insert(indexes))
    }

    fn load_indexes(&mut self) -> Result<Indexes> {
        let offset_path = self.sibling("index");
        let time_path = self.sibling("timeindex");
        let offsets = load_offset_index(&offset_path, self.size);
        let times = load_time_index(&time_path, u32::MAX);
        match (offsets, times) {
            (Ok(offsets), Ok(times)) => {
                let (max_timestamp, offset_of_max_timestamp) = times
                    .last()
                    .map(|entry| {
                        (
                            entry.timestamp,
                            self.base_offset + i64::from(entry.relative_offset),
                        )
                    })
                    .unwrap_or((-1, self.base_offset));
                Ok(Indexes {
                    offsets_on_disk: offsets.len(),
                    times_on_disk: times.len(),
                    offsets,
                    times,
                    offset_writer: None,
                    time_writer: None,
                    max_timestamp,
                    offset_of_max_timestamp,
                    bytes_since_last_index_entry: 0,
                })
            }
            (offsets, times) => {
                let why = match (offsets, times) {
                    (Err(IndexLoadError::Missing), _) | (_, Err(IndexLoadError::Missing)) => {
                        "missing".to_string()
                    }
                    (Err(IndexLoadError::Inconsistent(why)), _)
                    | (_, Err(IndexLoadError::Inconsistent(why))) => why,
                    (Err(IndexLoadError::Io(err)), _) | (_, Err(IndexLoadError::Io(err))) => {
                        err.to_string()
                    }
                    (Ok(_), Ok(_)) => unreachable!("both indexes loaded"),
                };
                tracing::warn!(segment = %self.log_path.display(), reason = %why, "rebuilding segment indexes");
                let (indexes, _) = self.rebuild_indexes(u64::MAX, usize::MAX)?;
                Ok(indexes)
            }
        }
    }

    /// Scans the log, validating every batch, and builds fresh indexes. Stops at the first batch
    /// that is torn, corrupt or over `max_batch_bytes`, or at `limit` bytes; returns the indexes
    /// and the number of valid bytes and the offset after the last valid batch.
    fn rebuild_indexes(
        &mut self,
        limit: u64,
        max_batch_bytes: usize,
    ) -> Result<(Indexes, (u64, Option<i64>))> {
        let file = self.file()?;
        let end = self.size.min(limit);
        let mut indexes = Indexes {
            offsets: Vec::new(),
            times: Vec::new(),
            offset_writer: None,
            time_writer: None,
            max_timestamp: -1,
            offset_of_max_timestamp: self.base_offset,
            bytes_since_last_index_entry: 0,
            offsets_on_disk: 0,
            times_on_disk: 0,
        };
        let mut position = 0u64;
        let mut next_offset = None;
        let mut chunk = Vec::new();
        let mut chunk_start = 0u64;
        let mut first_batch_timestamp = None;
        'scan: while position < end {
            // Make sure the chunk holds the header of the batch at `position`.
            if position + LOG_OVERHEAD as u64 > chunk_start + chunk.len() as u64 {
                chunk_start = position;
                chunk = read_up_to(
                    &file,
                    position,
                    SCAN_CHUNK.min((end - position) as usize),
                    &self.log_path,
                )?;
            }
            let in_chunk = (position - chunk_start) as usize;
            if chunk.len() - in_chunk < BATCH_HEADER_LEN {
                if (end - position) < BATCH_HEADER_LEN as u64 {
                    tracing::warn!(segment = %self.log_path.display(), position, "torn batch header at end of segment");
                    break 'scan;
                }
                chunk_start = position;
                chunk = read_up_to(
                    &file,
                    position,
                    SCAN_CHUNK.min((end - position) as usize),
                    &self.log_path,
                )?;
                continue;
            }
            let header = match BatchHeader::parse(&chunk[in_chunk..]) {
                Some(header) => header,
                None => break 'scan,
            };
            let size = header.size() as u64;
            if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32
                || size > max_batch_bytes as u64
                || position + size > end
            {
                tracing::warn!(segment = %self.log_path.display(), position, size, "torn or oversized batch at end of segment");
                break 'scan;
            }
            let whole;
            let batch: &[u8] = if in_chunk as u64 + size <= chunk.len() as u64 {
                &chunk[in_chunk..in_chunk + size as usize]
            } else {
                whole = read_up_to(&file, position, size as usize, &self.log_path)?;
                &whole
            };
            let header = match check_stored_batch(batch) {
                Ok(header) => header,
                Err(reason) => {
                    tracing::warn!(segment = %self.log_path.display(), position, %reason, "corrupt batch");
                    break 'scan;
                }
            };
            if header.base_offset < self.base_offset
                || header.last_offset() - self.base_offset > i64::from(u32::MAX)
                || next_offset.is_some_and(|next| header.base_offset < next)
            {
                tracing::warn!(segment = %self.log_path.display(), position, offset = header.base_offset, "batch offset out of order");
                break 'scan;
            }
            if first_batch_timestamp.is_none() {
                first_batch_timestamp = Some(header.max_timestamp);
            }
            index_batch(
                &mut indexes,
                self.base_offset,
                self.index_interval_bytes,
                position,
                &header,
            );
            next_offset = Some(header.next_offset());
            position += size;
        }
        self.first_batch_timestamp = Some(first_batch_timestamp);
        // The final time entry records the segment's largest timestamp.
        push_time_entry(&mut indexes, self.base_offset);
        let offset_path = self.sibling("index");
        let time_path = self.sibling("timeindex");
        index::write_index_file(&offset_path, &index::offset_index_bytes(&indexes.offsets))
            .map_err(|e| Error::io("write index", &offset_path, e))?;
        index::write_index_file(&time_path, &index::time_index_bytes(&indexes.times))
            .map_err(|e| Error::io("write time index", &time_path, e))?;
        indexes.offsets_on_disk = indexes.offsets.len();
        indexes.times_on_disk = indexes.times.len();
        Ok((indexes, (position, next_offset)))
    }

    /// Validates every batch, truncating the log at the first torn or corrupt one, and rebuilds
    /// the indexes.
    pub fn recover(&mut self, max_batch_bytes: usize) -> Result<RecoveryOutcome> {
        self.read_cursor = None;
        let (indexes, (valid_bytes, next_offset)) =
            self.rebuild_indexes(u64::MAX, max_batch_bytes)?;
        let truncated_bytes = self.size - valid_bytes;
        if truncated_bytes > 0 {
            let file = self.file()?;
            file.set_len(valid_bytes)
                .map_err(|e| Error::io("truncate segment", &self.log_path, e))?;
            self.size = valid_bytes;
        }
        self.indexes = Some(Box::new(indexes));
        self.txn_index
            .truncate_to(next_offset.unwrap_or(self.base_offset))?;
        Ok(RecoveryOutcome {
            next_offset,
            truncated_bytes,
        })
    }

    /// Appends index entries not yet in the files, opening append handles on first use.
    fn persist_new_entries(&mut self) -> Result<()> {
        let offset_path = self.sibling("index");
        let time_path = self.sibling("timeindex");
        let Some(indexes) = self.indexes.as_deref_mut() else {
            return Ok(());
        };
        if indexes.offsets.len() == indexes.offsets_on_disk
            && indexes.times.len() == indexes.times_on_disk
        {
            return Ok(());
        }
        let open = |path: &Path| OpenOptions::new().append(true).create(true).open(path);
        if indexes.offset_writer.is_none() {
            indexes.offset_writer =
                Some(open(&offset_path).map_err(|e| Error::io("open index", &offset_path, e))?);
        }
        if indexes.time_writer.is_none() {
            indexes.time_writer =
                Some(open(&time_path).map_err(|e| Error::io("open time index", &time_path, e))?);
        }
        if let Some(writer) = indexes.offset_writer.as_mut() {
            let bytes = index::offset_index_bytes(&indexes.offsets[indexes.offsets_on_disk..]);
            writer
                .write_all(&bytes)
                .map_err(|e| Error::io("append to index", &offset_path, e))?;
            indexes.offsets_on_disk = indexes.offsets.len();
        }
        if let Some(writer) = indexes.time_writer.as_mut() {
            let bytes = index::time_index_bytes(&indexes.times[indexes.times_on_disk..]);
            writer
                .write_all(&bytes)
                .map_err(|e| Error::io("append to time index", &time_path, e))?;
            indexes.times_on_disk = indexes.times.len();
        }
        Ok(())
    }

    /// Appends validated batches (offsets already assigned) at the end of the segment.
    ///
    /// Each batch is written with its first 16 bytes (base offset, length, leader epoch) taken
    /// from `headers`, the rest straight from `bytes`: the log's offsets without copying the
    /// producer's bytes into a mutable buffer. One vectored write per append.
    pub fn append(&mut self, bytes: &[u8], headers: &[BatchHeader]) -> Result<()> {
        let file = self.file()?;
        let start = self.size;
        let prefixes: Vec<[u8; 16]> = headers
            .iter()
            .map(|h| {
                let mut prefix = [0u8; 16];
                prefix[..8].copy_from_slice(&h.base_offset.to_be_bytes());
                prefix[8..12].copy_from_slice(&h.batch_length.to_be_bytes());
                prefix[12..].copy_from_slice(&h.partition_leader_epoch.to_be_bytes());
                prefix
            })
            .collect();
        let mut slices = Vec::with_capacity(headers.len() * 2);
        let mut position = 0;
        for (header, prefix) in headers.iter().zip(&prefixes) {
            slices.push(IoSlice::new(prefix));
            slices.push(IoSlice::new(
                &bytes[position + 16..position + header.size()],
            ));
            position += header.size();
        }
        write_all_at_end(&file, start, &mut slices)
            .map_err(|e| Error::io("append to segment", &self.log_path, e))?;
        if start == 0 || self.first_batch_timestamp == Some(None) {
            self.first_batch_timestamp = Some(headers.first().map(|h| h.max_timestamp));
        }
        let base_offset = self.base_offset;
        let interval = self.index_interval_bytes;
        let indexes = self.indexes()?;
        let mut position = start;
        for header in headers {
            index_batch(indexes, base_offset, interval, position, header);
            position += header.size() as u64;
        }
        // Index entries reach their files at flush, roll or close, not on every append: they
        // cost two extra syscalls per batch otherwise, and recovery rebuilds the indexes of
        // every segment past the recovery point anyway.
        self.size = position;
        Ok(())
    }

    /// Number of offset index entries (loads the index).
    pub fn index_entries(&mut self) -> Result<usize> {
        Ok(self.indexes()?.offsets.len())
    }

    /// Largest timestamp in the segment, for retention. Reads only the last time index entry when
    /// the indexes are not loaded; falls back to the file's modification time as Kafka does.
    pub fn largest_timestamp(&mut self) -> Result<i64> {
        let from_index = match &self.indexes {
            Some(indexes) => Some(indexes.max_timestamp).filter(|ts| *ts >= 0),
            None => index::last_time_entry(&self.sibling("timeindex")).map(|entry| entry.timestamp),
        };
        if let Some(timestamp) = from_index {
            return Ok(timestamp);
        }
        let modified = std::fs::metadata(&self.log_path)
            .and_then(|meta| meta.modified())
            .map_err(|e| Error::io("stat segment", &self.log_path, e))?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0))
    }

    /// Max timestamp of the first batch (None for an empty segment), for `segment.ms`.
    pub fn first_batch_timestamp(&mut self) -> Result<Option<i64>> {
        if let Some(timestamp) = self.first_batch_timestamp {
            return Ok(timestamp);
        }
        let timestamp = if self.size >= BATCH_HEADER_LEN as u64 {
            let file = self.file()?;
            let mut buf = [0u8; BATCH_HEADER_LEN];
            file.read_exact_at(&mut buf, 0)
                .map_err(|e| Error::io("read segment", &self.log_path, e))?;
            BatchHeader::parse(&buf).map(|h| h.max_timestamp)
        } else {
            None
        };
        self.first_batch_timestamp = Some(timestamp);
        Ok(timestamp)
    }

    /// Reads the batch header at `position`, or None at or past the end.
    fn header_at(&self, file: &File, position: u64) -> Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_LEN];
        file.read_exact_at(&mut buf, position)
            .map_err(|e| Error::io("read segment", &self.log_path, e))?;
        Ok(BatchHeader::parse(&buf))
    }

    /// Position and header of the first batch whose last offset is at least `offset`.
    pub fn translate_offset(&mut self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        if let Some((cursor_offset, position, header)) = self.read_cursor {
            if cursor_offset == offset {
                return Ok(Some((position, header)));
            }
        }
        let relative = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let start =
            lookup_offset(&self.indexes()?.offsets, relative).map_or(0, |e| u64::from(e.position));
        let file = self.file()?;
        let mut position = start;
        while let Some(header) = self.header_at(&file, position)? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    /// The headers of the batches from the one holding `offset` to the end of the segment
    /// (headers only: 61 bytes read per batch).
    pub fn batch_headers_from(&mut self, offset: i64) -> Result<Vec<BatchHeader>> {
        let Some((mut position, _)) = self.translate_offset(offset)? else {
            return Ok(Vec::new());
        };
        let file = self.file()?;
        let mut headers = Vec::new();
        while let Some(header) = self.header_at(&file, position)? {
            if header.batch_length <= 0 {
                break;
            }
            position += header.size() as u64;
            headers.push(header);
        }
        Ok(headers)
    }

    /// Like [`Segment::batch_headers_from`], with the marker (COMMIT true or ABORT, and the
    /// coordinator epoch) of each control batch, read from its record.
    pub fn batches_for_replay(
        &mut self,
        offset: i64,
    ) -> Result<Vec<(BatchHeader, Option<ControlMarker>)>> {
        let headers = self.batch_headers_from(offset)?;
        if headers.iter().all(|h| !h.is_control()) {
            return Ok(headers.into_iter().map(|h| (h, None)).collect());
        }
        let Some((mut position, _)) = self.translate_offset(offset)? else {
            return Ok(Vec::new());
        };
        let file = self.file()?;
        let mut out = Vec::with_capacity(headers.len());
        for header in headers {
            let marker = if header.is_control() {
                let start = position + BATCH_HEADER_LEN as u64;
                let len = (header.size() - BATCH_HEADER_LEN).min(64);
                let body = read_up_to(&file, start, len, &self.log_path)?;
                control_marker(&body)
            } else {
                None
            };
            position += header.size() as u64;
            out.push((header, marker));
        }
        Ok(out)
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one batch when
    /// `min_one_batch`), excluding batches that start at or after `max_offset`.
    pub fn read(
        &mut self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<FileSlice>> {
        let Some((start, first)) = self.translate_offset(offset)? else {
            return Ok(None);
        };
        if first.base_offset >= max_offset {
            return Ok(None);
        }
        let file = self.file()?;
        let mut end = start;
        let mut header = first;
        let mut jumped = false;
        loop {
            let size = header.size() as u64;
            let fits = (end + size - start) as usize <= max_bytes;
            if !(fits || (end == start && min_one_batch)) {
                break;
            }
            end += size;
            if !jumped {
                // Skip the header-by-header walk over batches the index shows to fit.
                jumped = true;
                let limit = start.saturating_add(max_bytes as u64);
                end = end.max(self.index_jump(limit, max_offset)?);
            }
            match self.header_at(&file, end)? {
                Some(next) => {
                    // A sequential reader asks for this batch next: remember where it is.
                    self.read_cursor = Some((next.base_offset, end, next));
                    if next.base_offset >= max_offset {
                        break;
                    }
                    header = next;
                }
                None => break,
            }
        }
        if end == start {
            return Ok(None);
        }
        Ok(Some(FileSlice {
            file,
            position: start,
            len: (end - start) as usize,
        }))
    }

    /// The position of the last indexed batch that starts at or before `limit` and ends below
    /// `max_offset` (0 if none): every batch before it fits both bounds.
    fn index_jump(&mut self, limit: u64, max_offset: i64) -> Result<u64> {
        let base_offset = self.base_offset;
        let entries = &self.indexes()?.offsets;
        let by_position = entries.partition_point(|e| u64::from(e.position) <= limit);
        let by_offset =
            entries.partition_point(|e| base_offset + i64::from(e.relative_offset) < max_offset);
        Ok(by_position
            .min(by_offset)
            .checked_sub(1)
            .map_or(0, |idx| u64::from(entries[idx].position)))
    }

    /// First offset of a record whose timestamp is at least `timestamp`, and that record's
    /// timestamp, if the segment has one. Scans from the time index's hint; decodes the one batch
    /// that holds the answer.
    pub fn find_offset_by_timestamp(
        &mut self,
        timestamp: i64,
        from_offset: i64,
    ) -> Result<Option<(i64, i64)>> {
        let hint = {
            let indexes = self.indexes()?;
            if indexes.max_timestamp < timestamp {
                return Ok(None);
            }
            lookup_time(&indexes.times, timestamp).map_or(self.base_offset, |e| {
                self.base_offset + i64::from(e.relative_offset)
            })
        };
        let start_offset = hint.max(from_offset);
        let Some((mut position, _)) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        let file = self.file()?;
        while let Some(header) = self.header_at(&file, position)? {
            if header.max_timestamp >= timestamp && header.last_offset() >= from_offset {
                let mut batch = vec![0u8; header.size()];
                file.read_exact_at(&mut batch, position)
                    .map_err(|e| Error::io("read segment", &self.log_path, e))?;
                let mut buf = Bytes::from(batch);
                let decoded = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf)
                    .map_err(|e| Error::CorruptFile {
                        path: self.log_path.clone(),
                        reason: format!("batch at {position}: {e}"),
                    })?;
                let found = decoded
                    .records
                    .iter()
                    .find(|r| r.timestamp >= timestamp && r.offset >= from_offset)
                    .map(|r| (r.offset, r.timestamp));
                if found.is_some() {
                    return Ok(found);
                }
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    /// Removes every batch whose last offset is at least `offset`. Returns the offset after the
    /// last remaining batch (None if none remains).
    pub fn truncate_to(&mut self, offset: i64) -> Result<Option<i64>> {
        self.read_cursor = None;
        let cut = match self.translate_offset(offset)? {
            Some((position, _)) => position,
            None => self.size,
        };
        self.indexes = None;
        let file = self.file()?;
        file.set_len(cut)
            .map_err(|e| Error::io("truncate segment", &self.log_path, e))?;
        self.size = cut;
        let (indexes, (_, next_offset)) = self.rebuild_indexes(u64::MAX, usize::MAX)?;
        self.indexes = Some(Box::new(indexes));
        self.txn_index.truncate_to(offset)?;
        Ok(next_offset)
    }

    /// Writes the last time index entry and drops the append handles: the segment is no longer
    /// active. Kafka does the same on roll, so that the file's last entry is the largest timestamp.
    /// Reserves `bytes` of disk for the log file without changing its length (`preallocate`:
    /// the file's blocks are contiguous and appends do not allocate). The length stays the
    /// data's, so recovery reads nothing past it; closing the segment frees what was not used.
    pub fn preallocate(&mut self, bytes: u64) -> Result<()> {
        let file = self.file()?;
        rustix::fs::fallocate(&*file, rustix::fs::FallocateFlags::KEEP_SIZE, 0, bytes)
            .map_err(|e| Error::io("preallocate segment", &self.log_path, e.into()))?;
        self.preallocated = true;
        Ok(())
    }

    pub fn close_active(&mut self) -> Result<()> {
        if self.preallocated {
            // Blocks reserved past the data go back to the file system.
            self.file()?
                .set_len(self.size)
                .map_err(|e| Error::io("trim preallocated segment", &self.log_path, e))?;
            self.preallocated = false;
        }
        if let Some(indexes) = self.indexes.as_deref_mut() {
            push_time_entry(indexes, self.base_offset);
        } else {
            return Ok(());
        }
        self.persist_new_entries()?;
        if let Some(indexes) = self.indexes.as_deref_mut() {
            indexes.offset_writer = None;
            indexes.time_writer = None;
        }
        Ok(())
    }

    /// fsyncs the log and its indexes.
    ///
    /// The active segment's indexes are neither written nor synced here: recovery always
    /// rebuilds the segment holding the recovery point, so they need to be durable only once the
    /// segment is inactive (one fsync per roll, not per append).
    pub fn flush(&mut self, active: bool) -> Result<()> {
        self.txn_index.flush()?;
        if active {
            if let Some(file) = &self.file {
                file.sync_data()
                    .map_err(|e| Error::io("fsync segment", &self.log_path, e))?;
            }
            return Ok(());
        }
        self.persist_new_entries()?;
        if let Some(file) = &self.file {
            file.sync_data()
                .map_err(|e| Error::io("fsync segment", &self.log_path, e))?;
        }
        match self.indexes.as_deref() {
            Some(Indexes {
                offset_writer: Some(offsets),
                time_writer: Some(times),
                ..
            }) => {
                for writer in [offsets, times] {
                    writer
                        .sync_data()
                        .map_err(|e| Error::io("fsync index", &self.log_path, e))?;
                }
            }
            _ => {
                for extension in ["index", "timeindex"] {
                    let path = self.sibling(extension);
                    let synced = File::open(&path).and_then(|file| file.sync_all());
                    match synced {
                        Ok(()) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) => return Err(Error::io("fsync index", path, err)),
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes the segment's files.
    /// Renames the segment's files to `<name>.deleted`, as Kafka does before it deletes them
    /// `file.delete.delay.ms` later, and returns the new paths. To the log the segment is gone
    /// (an open removes `.deleted` files); readers holding the file still read it.
    pub fn retire_files(&self) -> Result<Vec<PathBuf>> {
        let mut retired = Vec::with_capacity(3);
        for extension in ["log", "index", "timeindex", "txnindex"] {
            let path = self.sibling(extension);
            let mut deleted = path.clone().into_os_string();
            deleted.push(".deleted");
            let deleted = PathBuf::from(deleted);
            match std::fs::rename(&path, &deleted) {
                Ok(()) => retired.push(deleted),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io("rename deleted segment file", path, err)),
            }
        }
        Ok(retired)
    }

    pub fn delete_files(&self) -> Result<()> {
        for extension in ["log", "index", "timeindex", "txnindex"] {
            let path = self.sibling(extension);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io("delete segment file", path, err)),
            }
        }
        Ok(())
    }
}

/// Adds index entries for one batch at `position`, as Kafka's `LogSegment.append` does.
fn index_batch(
    indexes: &mut Indexes,
    base_offset: i64,
    interval: u64,
    position: u64,
    header: &BatchHeader,
) {
    if header.max_timestamp > indexes.max_timestamp {
        indexes.max_timestamp = header.max_timestamp;
        indexes.offset_of_max_timestamp = header.last_offset();
    }
    if indexes.bytes_since_last_index_entry > interval {
        indexes.offsets.push(OffsetEntry {
            relative_offset: (header.last_offset() - base_offset) as u32,
            position: position as u32,
        });
        push_time_entry(indexes, base_offset);
        indexes.bytes_since_last_index_entry = 0;
    }
    indexes.bytes_since_last_index_entry += header.size() as u64;
}

/// Appends a time entry if the max timestamp grew since the last one.
fn push_time_entry(indexes: &mut Indexes, base_offset: i64) {
    if indexes.max_timestamp < 0 {
        return;
    }
    if indexes
        .times
        .last()
        .is_some_and(|last| last.timestamp >= indexes.max_timestamp)
    {
        return;
    }
    indexes.times.push(TimeEntry {
        timestamp: indexes.max_timestamp,
        relative_offset: (indexes.offset_of_max_timestamp - base_offset) as u32,
    });
}

/// Writes `slices` at `position` (the end of the file) with vectored writes. The file cursor is
/// only used here, by the partition's single writer; reads use positional reads.
fn write_all_at_end(
    file: &File,
    position: u64,
    mut slices: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    let mut writer: &File = file;
    writer.seek(SeekFrom::Start(position))?;
    while !slices.is_empty() {
        match writer.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn read_up_to(file: &File, position: u64, len: usize, path: &Path) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], position + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(Error::io("read segment", path, err)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
