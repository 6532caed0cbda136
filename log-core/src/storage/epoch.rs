//! The leader epoch cache: for each leader epoch, the first offset its leader appended. A
//! follower uses it (through OffsetForLeaderEpoch) to find where its log diverges from the
//! leader's. Kept in `leader-epoch-checkpoint` in the partition directory.

use std::path::{Path, PathBuf};

use super::checkpoint::{read_checkpoint, write_checkpoint};
use crate::error::{Error, Result};

/// File name of the leader epoch checkpoint in a partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One entry: `epoch` began at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset appended in that epoch.
    pub start_offset: i64,
}

/// Epoch → start offset, epochs and offsets strictly increasing.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the cache of the partition in `dir`; a missing file is an empty cache.
    pub fn load(dir: &Path) -> Result<LeaderEpochCache> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries: Vec<EpochEntry> = Vec::new();
        for line in read_checkpoint(&path)? {
            let mut parts = line.split(' ');
            let entry = match (parts.next(), parts.next(), parts.next()) {
                (Some(epoch), Some(offset), None) => epoch
                    .parse()
                    .ok()
                    .zip(offset.parse().ok())
                    .map(|(epoch, start_offset)| EpochEntry {
                        epoch,
                        start_offset,
                    }),
                _ => None,
            }
            .ok_or_else(|| Error::CorruptFile {
                path: path.clone(),
                reason: format!("bad entry {line:?}"),
            })?;
            if entries.last().is_some_and(|last| {
                last.epoch >= entry.epoch || last.start_offset > entry.start_offset
            }) {
                return Err(Error::CorruptFile {
                    path,
                    reason: "entries are not increasing".into(),
                });
            }
            entries.push(entry);
        }
        Ok(LeaderEpochCache { path, entries })
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest epoch.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        // An epoch that starts at or before an older one's start replaces it (nothing was
        // appended in the older epoch after that point).
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.persist()
    }

    /// The epoch asked for (or the largest epoch below it) and the offset where it ends: the
    /// start of the next epoch, or `log_end_offset` for the latest. `(-1, -1)` if unknown, as
    /// Kafka answers OffsetForLeaderEpoch.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> (i32, i64) {
        let idx = self.entries.partition_point(|e| e.epoch <= epoch);
        match idx.checked_sub(1) {
            None => (-1, -1),
            Some(found) => {
                let end = self
                    .entries
                    .get(idx)
                    .map_or(log_end_offset, |next| next.start_offset);
                (self.entries[found].epoch, end)
            }
        }
    }

    /// Drops entries that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Moves the log start: entries wholly before `start_offset` go; the one covering it now
    /// starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let covering = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if covering <= 1
            && self
                .entries
                .first()
                .is_none_or(|e| e.start_offset >= start_offset)
        {
            return Ok(());
        }
        let keep_from = covering.saturating_sub(1);
        self.entries.drain(..keep_from);
        if let Some(first) = self.entries.first_mut() {
            first.start_offset = first.start_offset.max(start_offset);
        }
        self.persist()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.persist()
    }

    fn persist(&self) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        write_checkpoint(&self.path, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigns_looks_up_truncates_and_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(cache.end_offset_for(0, 10), (-1, -1));
        cache.assign(0, 0).unwrap();
        cache.assign(0, 5).unwrap(); // same epoch: no new entry
        cache.assign(2, 10).unwrap();
        cache.assign(5, 20).unwrap();
        assert_eq!(cache.end_offset_for(0, 30), (0, 10));
        assert_eq!(cache.end_offset_for(1, 30), (0, 10));
        assert_eq!(cache.end_offset_for(2, 30), (2, 20));
        assert_eq!(cache.end_offset_for(9, 30), (5, 30));

        let reloaded = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(reloaded.entries(), cache.entries());

        cache.truncate_from_end(15).unwrap();
        assert_eq!(cache.latest_epoch(), Some(2));
        cache.truncate_from_start(12).unwrap();
        assert_eq!(
            cache.entries(),
            &[EpochEntry {
                epoch: 2,
                start_offset: 12
            }]
        );
        assert_eq!(
            LeaderEpochCache::load(dir.path()).unwrap().entries(),
            cache.entries()
        );
    }
}
