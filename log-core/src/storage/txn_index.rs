//! A segment's aborted-transaction index, `<base>.txnindex`, in Kafka's format: one 34-byte
//! entry per ABORT marker written in the segment (version 0, producer id, first offset, last
//! offset, last stable offset), in the order the markers were written.
//!
//! A `read_committed` fetch lists the aborted transactions that overlap what it returns, so
//! that the consumer drops their records; it finds them here, from the segment holding the
//! fetch offset onward (a marker is never before its transaction's records).
//!
//! Entries are loaded on first use (most segments have no file: a missing file is an empty
//! index) and fsynced with the segment.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes per entry.
pub const ENTRY_SIZE: usize = 34;

const ENTRY_VERSION: i16 = 0;

/// An aborted transaction as the index holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of its first batch in the partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset once the marker was written.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        if bytes.len() < ENTRY_SIZE || i16::from_be_bytes([bytes[0], bytes[1]]) != ENTRY_VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The aborted-transaction index of one segment.
#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    /// None until first read.
    entries: Option<Vec<AbortedTxn>>,
    /// Written since the last fsync.
    unsynced: bool,
}

impl TxnIndex {
    /// The index at `path` (nothing is read yet).
    pub fn new(path: PathBuf) -> TxnIndex {
        TxnIndex {
            path,
            entries: None,
            unsynced: false,
        }
    }

    /// An index known to be empty (a new segment).
    pub fn empty(path: PathBuf) -> TxnIndex {
        TxnIndex {
            path,
            entries: Some(Vec::new()),
            unsynced: false,
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&mut self) -> Result<&mut Vec<AbortedTxn>> {
        if self.entries.is_none() {
            let bytes = match std::fs::read(&self.path) {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(err) => return Err(Error::io("read transaction index", &self.path, err)),
            };
            // A torn last entry (a crash mid-write) is ignored; recovery writes it again.
            let entries = bytes
                .chunks_exact(ENTRY_SIZE)
                .map_while(AbortedTxn::decode)
                .collect();
            self.entries = Some(entries);
        }
        Ok(self.entries.get_or_insert_with(Vec::new))
    }

    /// Every entry, oldest first.
    pub fn entries(&mut self) -> Result<&[AbortedTxn]> {
        Ok(self.load()?.as_slice())
    }

    /// Appends an entry (not fsynced until [`TxnIndex::flush`]). An entry for a marker already
    /// indexed (a replay after a crash) is not added twice.
    pub fn append(&mut self, entry: AbortedTxn) -> Result<()> {
        let entries = self.load()?;
        if entries.iter().any(|e| e.last_offset == entry.last_offset) {
            return Ok(());
        }
        entries.push(entry);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io("open transaction index", &self.path, e))?;
        file.write_all(&entry.encode())
            .map_err(|e| Error::io("append to transaction index", &self.path, e))?;
        self.unsynced = true;
        Ok(())
    }

    /// Replaces every entry (rewrites the file, or removes it when there is none).
    pub fn replace(&mut self, entries: Vec<AbortedTxn>) -> Result<()> {
        if entries.is_empty() {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io("delete transaction index", &self.path, err)),
            }
            self.unsynced = false;
        } else {
            let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
            std::fs::write(&self.path, bytes)
                .map_err(|e| Error::io("write transaction index", &self.path, e))?;
            self.unsynced = true;
        }
        self.entries = Some(entries);
        Ok(())
    }

    /// Drops the entries of markers at or after `offset` (the log was cut there).
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let entries = self.load()?;
        if entries.iter().all(|e| e.last_offset < offset) {
            return Ok(());
        }
        let kept = entries
            .iter()
            .copied()
            .filter(|e| e.last_offset < offset)
            .collect();
        self.replace(kept)
    }

    /// fsyncs what was written since the last flush.
    pub fn flush(&mut self) -> Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        match File::open(&self.path).and_then(|f| f.sync_all()) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::io("fsync transaction index", &self.path, err)),
        }
        self.unsynced = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_truncation_drops_later_markers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.txnindex");
        let mut index = TxnIndex::empty(path.clone());
        index.append(entry(1, 0, 5)).unwrap();
        index.append(entry(2, 3, 9)).unwrap();
        index.append(entry(2, 3, 9)).unwrap();
        index.flush().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            2 * ENTRY_SIZE as u64
        );
        let mut reopened = TxnIndex::new(path.clone());
        assert_eq!(
            reopened.entries().unwrap(),
            &[entry(1, 0, 5), entry(2, 3, 9)]
        );
        reopened.truncate_to(9).unwrap();
        assert_eq!(
            TxnIndex::new(path.clone()).entries().unwrap(),
            &[entry(1, 0, 5)]
        );
        reopened.truncate_to(0).unwrap();
        assert!(!path.exists());
        // A torn entry at the end is ignored.
        let mut bytes = entry(7, 1, 2).encode().to_vec();
        bytes.extend_from_slice(&[0, 0, 1]);
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(TxnIndex::new(path).entries().unwrap(), &[entry(7, 1, 2)]);
    }

    proptest! {
        #[test]
        fn any_entry_round_trips(pid in any::<i64>(), first in any::<i64>(), last in any::<i64>(), lso in any::<i64>()) {
            let e = AbortedTxn { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: lso };
            prop_assert_eq!(AbortedTxn::decode(&e.encode()), Some(e));
        }
    }
}
