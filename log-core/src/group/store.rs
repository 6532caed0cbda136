//! The records of `__consumer_offsets`, in Kafka's formats: committed offsets
//! (`OffsetCommitKey` v1 → `OffsetCommitValue` v3) and group metadata (`GroupMetadataKey` v2 →
//! `GroupMetadataValue` v3, without members: they rejoin after a restart). A null value is a
//! tombstone. Groups map to partitions as Kafka maps them: `abs(groupId.hashCode()) % partitions`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode` over UTF-16 code units.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition of a group (Kafka's `Utils.abs(hashCode) % partitions`).
pub fn partition_for_group(group: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredKey {
    /// A committed offset of a group for a partition.
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A group's metadata.
    Group(String),
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffset {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// Leader epoch of the committed record, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
}

impl StoredOffset {
    /// A commit as OffsetCommit and TxnOffsetCommit carry it (no metadata: empty).
    pub fn new(
        offset: i64,
        leader_epoch: i32,
        metadata: Option<&str>,
        commit_timestamp: i64,
    ) -> StoredOffset {
        StoredOffset {
            offset,
            leader_epoch,
            metadata: metadata.unwrap_or_default().to_string(),
            commit_timestamp,
        }
    }
}

/// A group's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol (assignor), if any.
    pub protocol: Option<String>,
}

pub(crate) fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len().min(i16::MAX as usize) as i16);
    buf.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

pub(crate) fn get_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    if buf.remaining() < len as usize {
        return None;
    }
    String::from_utf8(buf.split_to(len as usize).to_vec()).ok()
}

fn get_nullable_string(buf: &mut Bytes) -> Option<Option<String>> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = i16::from_be_bytes([buf[0], buf[1]]);
    if len < 0 {
        buf.advance(2);
        return Some(None);
    }
    get_string(buf).map(Some)
}

/// Key of a committed offset.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// Value of a committed offset.
pub fn offset_value(offset: &StoredOffset) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    buf.put_i64(offset.offset);
    buf.put_i32(offset.leader_epoch);
    put_string(&mut buf, &offset.metadata);
    buf.put_i64(offset.commit_timestamp);
    buf.freeze()
}

/// Key of a group's metadata.
pub fn group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(2);
    put_string(&mut buf, group);
    buf.freeze()
}

/// Value of a group's metadata (no members).
pub fn group_value(group: &StoredGroup, now_ms: i64) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    put_string(&mut buf, &group.protocol_type);
    buf.put_i32(group.generation);
    put_nullable_string(&mut buf, group.protocol.as_deref());
    put_nullable_string(&mut buf, None);
    buf.put_i64(now_ms);
    buf.put_i32(0);
    buf.freeze()
}

/// Decodes a key; None for keys of other versions (skipped on load, as Kafka skips unknown ones).
pub fn decode_key(mut key: Bytes) -> Option<StoredKey> {
    if key.remaining() < 2 {
        return None;
    }
    match key.get_i16() {
        0 | 1 => {
            let group = get_string(&mut key)?;
            let topic = get_string(&mut key)?;
            (key.remaining() >= 4).then(|| StoredKey::Offset {
                group,
                topic,
                partition: key.get_i32(),
            })
        }
        2 => get_string(&mut key).map(StoredKey::Group),
        _ => None,
    }
}

/// Decodes an offset value (versions 1 and 3).
pub fn decode_offset(mut value: Bytes) -> Option<StoredOffset> {
    if value.remaining() < 2 {
        return None;
    }
    let version = value.get_i16();
    if value.remaining() < 8 {
        return None;
    }
    let offset = value.get_i64();
    let leader_epoch = if version >= 3 && value.remaining() >= 4 {
        value.get_i32()
    } else {
        -1
    };
    let metadata = get_string(&mut value)?;
    let commit_timestamp = if value.remaining() >= 8 {
        value.get_i64()
    } else {
        0
    };
    Some(StoredOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

/// Decodes a group metadata value (the fields Sluice uses).
pub fn decode_group(mut value: Bytes) -> Option<StoredGroup> {
    if value.remaining() < 2 {
        return None;
    }
    let _version = value.get_i16();
    let protocol_type = get_string(&mut value)?;
    if value.remaining() < 4 {
        return None;
    }
    let generation = value.get_i32();
    let protocol = get_nullable_string(&mut value)?;
    Some(StoredGroup {
        protocol_type,
        generation,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_groups_map_like_kafka() {
        let key = offset_key("g", "orders", 3);
        assert_eq!(
            decode_key(key),
            Some(StoredKey::Offset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 3
            })
        );
        let offset = StoredOffset {
            offset: 42,
            leader_epoch: 1,
            metadata: "m".into(),
            commit_timestamp: 7,
        };
        assert_eq!(decode_offset(offset_value(&offset)), Some(offset));
        assert_eq!(
            decode_key(group_key("g")),
            Some(StoredKey::Group("g".into()))
        );
        let group = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
        };
        assert_eq!(decode_group(group_value(&group, 1)), Some(group));
        assert_eq!(decode_key(Bytes::from_static(&[0, 9])), None);
        assert_eq!(decode_offset(Bytes::from_static(&[0, 3, 1])), None);
        // Java: "my-group".hashCode() == -1906497762; Utils.abs(...) % 50 == 12.
        assert_eq!(java_string_hash("my-group"), -1906497762);
        assert_eq!(partition_for_group("my-group", 50), 12);
    }
}
