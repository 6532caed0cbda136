//! The records of `__transaction_state`, in Kafka's formats: key `TransactionLogKey` v0
//! (the transactional id) → value `TransactionLogValue` v0 (producer id and epoch, timeout,
//! state, partitions, timestamps). A null value is a tombstone (an expired transactional id).
//! Ids map to partitions as groups do: `abs(transactionalId.hashCode()) % partitions`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState};
use crate::group::store::{get_string, put_string};
use crate::model::TopicPartition;

/// Name of the internal topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The `__transaction_state` partition of a transactional id.
pub fn partition_for_transactional_id(id: &str, partitions: i32) -> i32 {
    crate::group::store::partition_for_group(id, partitions)
}

/// Key of a transactional id's record.
pub fn key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// Value of a transactional id's record: its metadata as of this state change.
pub fn value(meta: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i64(meta.producer_id);
    buf.put_i16(meta.producer_epoch);
    buf.put_i32(meta.timeout_ms);
    buf.put_i8(meta.state.code());
    if meta.partitions.is_empty() {
        buf.put_i32(-1);
    } else {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &meta.partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        buf.put_i32(by_topic.len() as i32);
        for (topic, partitions) in by_topic {
            put_string(&mut buf, topic);
            buf.put_i32(partitions.len() as i32);
            for p in partitions {
                buf.put_i32(p);
            }
        }
    }
    buf.put_i64(meta.last_update_ms);
    buf.put_i64(meta.start_ms);
    buf.freeze()
}

/// Decodes a key; None for other record types.
pub fn decode_key(mut key: Bytes) -> Option<String> {
    if key.remaining() < 2 || key.get_i16() != 0 {
        return None;
    }
    get_string(&mut key)
}

/// Decodes a value (version 0, and the fields version 1 shares with it).
pub fn decode_value(transactional_id: &str, mut value: Bytes) -> Option<TxnMetadata> {
    if value.remaining() < 2 + 8 + 2 + 4 + 1 + 4 {
        return None;
    }
    let version = value.get_i16();
    if version != 0 {
        return None;
    }
    let producer_id = value.get_i64();
    let producer_epoch = value.get_i16();
    let timeout_ms = value.get_i32();
    let state = TxnState::from_code(value.get_i8())?;
    let n_topics = value.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..n_topics.max(0) {
        let topic = get_string(&mut value)?;
        if value.remaining() < 4 {
            return None;
        }
        let n = value.get_i32();
        for _ in 0..n.max(0) {
            if value.remaining() < 4 {
                return None;
            }
            partitions.insert(TopicPartition::new(&topic, value.get_i32()));
        }
    }
    if value.remaining() < 16 {
        return None;
    }
    let last_update_ms = value.get_i64();
    let start_ms = value.get_i64();
    Some(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_metadata_round_trips(
            id in "[a-z0-9._-]{1,20}",
            pid in 0i64..i64::MAX,
            epoch in 0i16..i16::MAX,
            timeout in 1i32..i32::MAX,
            code in 0i8..8,
            parts in proptest::collection::btree_set(("[a-z]{1,5}", 0i32..100), 0..10),
            update in 0i64..i64::MAX,
            start in -1i64..i64::MAX,
        ) {
            let meta = TxnMetadata {
                transactional_id: id.clone(),
                producer_id: pid,
                producer_epoch: epoch,
                last_producer_epoch: -1,
                timeout_ms: timeout,
                state: TxnState::from_code(code).unwrap(),
                partitions: parts.iter().map(|(t, p)| TopicPartition::new(t, *p)).collect(),
                start_ms: start,
                last_update_ms: update,
            };
            prop_assert_eq!(decode_key(key(&id)), Some(id.clone()));
            prop_assert_eq!(decode_value(&id, value(&meta)), Some(meta));
        }
    }
}
