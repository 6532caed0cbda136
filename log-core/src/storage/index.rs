//! The two sparse indexes of a segment, in Kafka's file formats:
//! `.index` holds 8-byte entries (relative offset u32, file position u32), one per
//! `index.interval.bytes` of log, keyed by the last offset of the indexed batch;
//! `.timeindex` holds 12-byte entries (max timestamp so far i64, relative offset u32).
//!
//! Indexes are loaded lazily (an idle partition costs no index memory) and checked on load;
//! a missing or inconsistent index is rebuilt from the log by the segment.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// One `.index` entry: the last offset of a batch and the file position where the batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One `.timeindex` entry: the largest timestamp seen so far in the segment and the offset
/// from which to scan for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

pub(crate) const OFFSET_ENTRY_LEN: usize = 8;
pub(crate) const TIME_ENTRY_LEN: usize = 12;

impl OffsetEntry {
    pub fn to_bytes(self) -> [u8; OFFSET_ENTRY_LEN] {
        let mut out = [0u8; OFFSET_ENTRY_LEN];
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..].copy_from_slice(&self.position.to_be_bytes());
        out
    }
}

impl TimeEntry {
    pub fn to_bytes(self) -> [u8; TIME_ENTRY_LEN] {
        let mut out = [0u8; TIME_ENTRY_LEN];
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        out
    }
}

/// Why an index file was not usable as is.
#[derive(Debug)]
pub(crate) enum IndexLoadError {
    Missing,
    Io(std::io::Error),
    Inconsistent(String),
}

fn read_whole(path: &Path) -> Result<Vec<u8>, IndexLoadError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(IndexLoadError::Missing)
        }
        Err(err) => return Err(IndexLoadError::Io(err)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(IndexLoadError::Io)?;
    Ok(bytes)
}

/// Loads an offset index and checks it against the log it indexes: whole entries, offsets and
/// positions strictly increasing, positions inside the log.
pub(crate) fn load_offset_index(
    path: &Path,
    log_size: u64,
) -> Result<Vec<OffsetEntry>, IndexLoadError> {
    let bytes = read_whole(path)?;
    if bytes.len() % OFFSET_ENTRY_LEN != 0 {
        return Err(IndexLoadError::Inconsistent(format!(
            "size {} is not a multiple of 8",
            bytes.len()
        )));
    }
    let mut entries = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_LEN);
    for chunk in bytes.chunks_exact(OFFSET_ENTRY_LEN) {
        let entry = OffsetEntry {
            relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
        };
        if let Some(prev) = entries.last().copied() {
            let prev: OffsetEntry = prev;
            if entry.relative_offset <= prev.relative_offset || entry.position <= prev.position {
                return Err(IndexLoadError::Inconsistent(
                    "entries are not increasing".into(),
                ));
            }
        }
        if u64::from(entry.position) >= log_size {
            return Err(IndexLoadError::Inconsistent(format!(
                "position {} is past the end of the log ({log_size} bytes)",
                entry.position
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Loads a time index: whole entries, timestamps and offsets never decreasing.
pub(crate) fn load_time_index(
    path: &Path,
    max_relative_offset: u32,
) -> Result<Vec<TimeEntry>, IndexLoadError> {
    let bytes = read_whole(path)?;
    if bytes.len() % TIME_ENTRY_LEN != 0 {
        return Err(IndexLoadError::Inconsistent(format!(
            "size {} is not a multiple of 12",
            bytes.len()
        )));
    }
    let mut entries: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_ENTRY_LEN);
    for chunk in bytes.chunks_exact(TIME_ENTRY_LEN) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&chunk[..8]);
        let entry = TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
        };
        if let Some(prev) = entries.last() {
            if entry.timestamp < prev.timestamp || entry.relative_offset < prev.relative_offset {
                return Err(IndexLoadError::Inconsistent(
                    "entries are not increasing".into(),
                ));
            }
        }
        if entry.relative_offset > max_relative_offset {
            return Err(IndexLoadError::Inconsistent(
                "offset past the end of the segment".into(),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Reads only the last entry of a time index: the segment's largest timestamp, without loading
/// the index. Returns None for a missing, empty or torn file.
pub(crate) fn last_time_entry(path: &Path) -> Option<TimeEntry> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len < TIME_ENTRY_LEN as u64 || len % TIME_ENTRY_LEN as u64 != 0 {
        return None;
    }
    let mut chunk = [0u8; TIME_ENTRY_LEN];
    file.read_exact_at(&mut chunk, len - TIME_ENTRY_LEN as u64)
        .ok()?;
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&chunk[..8]);
    Some(TimeEntry {
        timestamp: i64::from_be_bytes(ts),
        relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
    })
}

/// The last entry whose offset is at most `relative_offset`.
pub(crate) fn lookup_offset(entries: &[OffsetEntry], relative_offset: u32) -> Option<OffsetEntry> {
    let idx = entries.partition_point(|entry| entry.relative_offset <= relative_offset);
    idx.checked_sub(1).map(|idx| entries[idx])
}

/// The last entry whose timestamp is below `timestamp`: every record at or after `timestamp` lies
/// at or after its offset.
pub(crate) fn lookup_time(entries: &[TimeEntry], timestamp: i64) -> Option<TimeEntry> {
    let idx = entries.partition_point(|entry| entry.timestamp < timestamp);
    idx.checked_sub(1).map(|idx| entries[idx])
}

/// Writes a whole index file (after a rebuild or truncation) and returns its handle for appends.
pub(crate) fn write_index_file(path: &Path, bytes: &[u8]) -> std::io::Result<File> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(file)
}

pub(crate) fn offset_index_bytes(entries: &[OffsetEntry]) -> Vec<u8> {
    entries.iter().flat_map(|entry| entry.to_bytes()).collect()
}

pub(crate) fn time_index_bytes(entries: &[TimeEntry]) -> Vec<u8> {
    entries.iter().flat_map(|entry| entry.to_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn offset_lookup_finds_the_floor_entry(
            mut offsets in proptest::collection::btree_set(0u32..10_000, 0..200),
            target in 0u32..11_000,
        ) {
            let entries: Vec<OffsetEntry> = std::mem::take(&mut offsets)
                .into_iter()
                .enumerate()
                .map(|(idx, relative_offset)| OffsetEntry { relative_offset, position: idx as u32 * 100 })
                .collect();
            let found = lookup_offset(&entries, target);
            let expected = entries.iter().rev().find(|e| e.relative_offset <= target).copied();
            prop_assert_eq!(found, expected);
        }

        #[test]
        fn offset_index_round_trips_through_its_file(
            offsets in proptest::collection::btree_set(0u32..100_000, 0..100),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("00000000000000000000.index");
            let entries: Vec<OffsetEntry> = offsets
                .into_iter()
                .enumerate()
                .map(|(idx, relative_offset)| OffsetEntry { relative_offset, position: idx as u32 * 10 })
                .collect();
            write_index_file(&path, &offset_index_bytes(&entries)).unwrap();
            let loaded = load_offset_index(&path, u64::MAX).unwrap();
            prop_assert_eq!(loaded, entries);
        }
    }

    #[test]
    fn inconsistent_or_missing_indexes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        assert!(matches!(
            load_offset_index(&path, 100),
            Err(IndexLoadError::Missing)
        ));
        std::fs::write(&path, [0u8; 7]).unwrap();
        assert!(matches!(
            load_offset_index(&path, 100),
            Err(IndexLoadError::Inconsistent(_))
        ));
        let entries = [
            OffsetEntry {
                relative_offset: 5,
                position: 50,
            },
            OffsetEntry {
                relative_offset: 4,
                position: 60,
            },
        ];
        std::fs::write(&path, offset_index_bytes(&entries)).unwrap();
        assert!(matches!(
            load_offset_index(&path, 100),
            Err(IndexLoadError::Inconsistent(_))
        ));
        let entries = [OffsetEntry {
            relative_offset: 5,
            position: 500,
        }];
        std::fs::write(&path, offset_index_bytes(&entries)).unwrap();
        assert!(matches!(
            load_offset_index(&path, 100),
            Err(IndexLoadError::Inconsistent(_))
        ));

        let time_path = dir.path().join("x.timeindex");
        let times = [
            TimeEntry {
                timestamp: 10,
                relative_offset: 1,
            },
            TimeEntry {
                timestamp: 20,
                relative_offset: 3,
            },
        ];
        std::fs::write(&time_path, time_index_bytes(&times)).unwrap();
        assert_eq!(load_time_index(&time_path, 10).unwrap(), times);
        assert_eq!(last_time_entry(&time_path), Some(times[1]));
        assert_eq!(lookup_time(&times, 15), Some(times[0]));
        assert_eq!(lookup_time(&times, 10), None);
        assert!(matches!(
            load_time_index(&time_path, 2),
            Err(IndexLoadError::Inconsistent(_))
        ));
    }
}
