//! Checkpoint files in Kafka's text format, written atomically (temp file, fsync, rename):
//!
//! ```text
//! 0                      <- version
//! 2                      <- number of entries
//! orders 0 1200          <- one entry per line
//! orders 1 1185
//! ```
//!
//! A data directory keeps `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
//! `cleaner-offset-checkpoint` (entries `topic partition offset`); a partition directory keeps
//! `leader-epoch-checkpoint` (entries `epoch start-offset`).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::TopicPartition;

/// File name of the recovery point checkpoint in a data directory.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// File name of the log start offset checkpoint in a data directory.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// File name of the cleaner's first-dirty-offset checkpoint in a data directory.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// Writes `lines` as a version-0 checkpoint, atomically.
pub fn write_checkpoint(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = format!("0\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| Error::io("create checkpoint", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write checkpoint", &tmp, e))?;
    file.sync_all()
        .map_err(|e| Error::io("fsync checkpoint", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename checkpoint", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Reads the entry lines of a checkpoint; a missing file reads as no entries.
pub fn read_checkpoint(path: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io("read checkpoint", path, err)),
    };
    let corrupt = |reason: &str| Error::CorruptFile {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err(corrupt("unknown checkpoint version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt("bad entry count"))?;
    let entries: Vec<String> = lines.map(str::to_owned).collect();
    if entries.len() != count {
        return Err(corrupt("entry count does not match the entries"));
    }
    Ok(entries)
}

/// Reads a data directory checkpoint of `topic partition offset` entries.
pub fn read_offsets(path: &Path) -> Result<HashMap<TopicPartition, i64>> {
    let mut offsets = HashMap::new();
    for line in read_checkpoint(path)? {
        let mut parts = line.split(' ');
        let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(topic), Some(partition), Some(offset), None) => partition
                .parse()
                .ok()
                .zip(offset.parse().ok())
                .map(|(p, o)| (TopicPartition::new(topic, p), o)),
            _ => None,
        };
        let (tp, offset) = parsed.ok_or_else(|| Error::CorruptFile {
            path: path.to_owned(),
            reason: format!("bad entry {line:?}"),
        })?;
        offsets.insert(tp, offset);
    }
    Ok(offsets)
}

/// Writes a data directory checkpoint of `topic partition offset` entries.
pub fn write_offsets<'a>(
    path: &Path,
    offsets: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
) -> Result<()> {
    let mut lines: Vec<String> = offsets
        .into_iter()
        .map(|(tp, offset)| format!("{} {} {offset}", tp.topic, tp.partition))
        .collect();
    lines.sort();
    write_checkpoint(path, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_missing_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        assert!(read_offsets(&path).unwrap().is_empty());
        let a = TopicPartition::new("orders", 0);
        let b = TopicPartition::new("my-topic", 12);
        write_offsets(&path, [(&a, 5), (&b, 7)]).unwrap();
        let read = read_offsets(&path).unwrap();
        assert_eq!(read.get(&a), Some(&5));
        assert_eq!(read.get(&b), Some(&7));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n2\nmy-topic 12 7\norders 0 5\n"
        );
        std::fs::write(&path, "0\n3\nx 0 1\n").unwrap();
        assert!(read_offsets(&path).is_err());
    }
}
