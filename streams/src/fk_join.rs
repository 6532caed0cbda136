//! Foreign-key KTable–KTable joins (Kafka's KIP-213 `KTable.join(other, foreignKeyExtractor,
//! joiner)`): each row of this table names a row of the other by a key extracted from its
//! value, and the joined table follows both.
//!
//! The two tables are partitioned by different keys, so the join goes through two internal
//! topics, as Kafka's does:
//! - `<application.id>-<name>-subscription-registration-topic`, keyed by the foreign key
//!   (partitioned like the other table): a row of this table subscribes to the row it names,
//!   with a hash of its value and its own partition, and unsubscribes from the one it named
//!   before. The other table's task keeps the subscriptions in a store (foreign key, then this
//!   table's key), and answers each subscription — and, when its row changes, every
//!   subscriber — with the row's current value;
//! - `<application.id>-<name>-subscription-response-topic`, keyed by this table's key
//!   (partitioned like this table): the answers, each sent to the partition its subscriber
//!   is in (KIP-775's `primaryPartition`: this table's topic may have been written by a
//!   producer partitioning otherwise than by murmur2). This table's task joins an answer with the
//!   row's current value, unless the row changed since it subscribed (the hash differs: a newer
//!   answer is on its way), and keeps the result in a store of its own, so that each update of
//!   the joined table carries the value it replaces.

use std::hash::Hasher;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::kstream::Data;
use crate::ktable::{Change, KTable, Materialized};
use crate::serdes::{self, BytesSerde, OptionSerde, Serde};
use crate::topology::{Consumed, OutputRecord, Record, TaskContext, TopicRef};

/// What a subscription message asks of the other table's task. `SUBSCRIBE` messages of
/// earlier versions carry no partition (their answers go by murmur2 of the key).
const SUBSCRIBE: u8 = 0;
const UNSUBSCRIBE: u8 = 1;
const SUBSCRIBE_FROM_PARTITION: u8 = 2;

/// A 64-bit hash of a row's bytes (to tell an answer to the current row from a stale one).
fn row_hash(bytes: &[u8]) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(bytes);
    hasher.write_usize(bytes.len());
    hasher.finish()
}

/// Instruction, hash (8 bytes), the subscriber's partition (4 bytes, with
/// `SUBSCRIBE_FROM_PARTITION`), then this table's key bytes.
fn subscription_message(instruction: u8, hash: u64, partition: i32, key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(13 + key.len());
    buf.put_u8(instruction);
    buf.put_u64(hash);
    if instruction == SUBSCRIBE_FROM_PARTITION {
        buf.put_i32(partition);
    }
    buf.put_slice(key);
    buf.freeze()
}

/// A subscription message read: instruction, hash, the subscriber's partition (if it says),
/// and this table's key bytes.
fn read_subscription(message: &Bytes) -> Option<(u8, u64, Option<i32>, Bytes)> {
    let instruction = *message.first()?;
    let hash = be_u64(message.get(1..)?)?;
    match instruction {
        SUBSCRIBE_FROM_PARTITION => {
            let partition = i32::from_be_bytes(message.get(9..13)?.try_into().ok()?);
            Some((instruction, hash, Some(partition), message.slice(13..)))
        }
        SUBSCRIBE | UNSUBSCRIBE => Some((instruction, hash, None, message.slice(9..))),
        _ => None,
    }
}

/// A subscription as the other table's task keeps it: the row's hash (8 bytes) and the
/// subscriber's partition (4, when known).
fn subscription_value(hash: u64, partition: Option<i32>) -> Bytes {
    let mut buf = BytesMut::with_capacity(12);
    buf.put_u64(hash);
    if let Some(partition) = partition {
        buf.put_i32(partition);
    }
    buf.freeze()
}

fn read_subscription_value(value: &[u8]) -> (u64, Option<i32>) {
    let hash = be_u64(value).unwrap_or_default();
    let partition = value
        .get(8..12)
        .and_then(|p| p.try_into().ok())
        .map(i32::from_be_bytes);
    (hash, partition)
}

/// Hash (8 bytes), whether the other row exists (1 byte), then its bytes.
fn response_message(hash: u64, row: Option<&Bytes>) -> Bytes {
    let mut buf = BytesMut::with_capacity(9 + row.map_or(0, Bytes::len));
    buf.put_u64(hash);
    buf.put_u8(u8::from(row.is_some()));
    if let Some(row) = row {
        buf.put_slice(row);
    }
    buf.freeze()
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// The subscription store's key: the foreign key's length (4 bytes) and bytes, then this
/// table's key, so that one foreign key's subscribers are a prefix.
fn subscriber_key(foreign: &[u8], key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + foreign.len() + key.len());
    buf.put_u32(foreign.len() as u32);
    buf.put_slice(foreign);
    buf.put_slice(key);
    buf.freeze()
}

fn subscribers_prefix(foreign: &[u8]) -> Bytes {
    subscriber_key(foreign, &[])
}

/// Sends `value` keyed by `key` to internal topic `suffix`: to `partition`, or by the
/// producer's murmur2 of the key, like the table it must meet.
fn send(
    ctx: &mut TaskContext,
    suffix: &str,
    partition: Option<i32>,
    (key, value): (Bytes, Bytes),
    timestamp: i64,
) {
    let topic = ctx.internal_topic(suffix);
    ctx.outputs.push(OutputRecord {
        topic,
        partition,
        key: Some(key),
        value: Some(value),
        timestamp,
        headers: Vec::new(),
    });
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Each row of this table joined with the row of `other` whose key `foreign_key` extracts
    /// from it, when there is one (Kafka's foreign-key `join`); kept in the store
    /// `materialized` names. A row whose foreign key is `None` (Kafka's null) joins nothing,
    /// and its joined row, if it had one, is deleted. Both tables need their serdes (tables
    /// read from topics, aggregations, or filters of them).
    pub fn join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        materialized: Materialized<VR>,
    ) -> KTable<K, VR> {
        self.foreign_key_join(other, foreign_key, materialized, move |value, found| {
            found.map(|found| joiner(value, found))
        })
    }

    /// Like [`KTable::join_foreign_key`], keeping every row of this table: joined with `None`
    /// when the row it names does not exist (Kafka's foreign-key `leftJoin`).
    pub fn left_join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<VR>,
    ) -> KTable<K, VR> {
        self.foreign_key_join(other, foreign_key, materialized, move |value, found| {
            Some(joiner(value, found))
        })
    }

    fn foreign_key_join<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> Option<KO> + Send + Sync + 'static,
        materialized: Materialized<VR>,
        join: impl Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let state = self.state.clone();
        let name = materialized
            .name
            .clone()
            .unwrap_or_else(|| state.generated_name("KTABLE-FK-JOIN"));
        // The joined table's store is the one `materialized` names (queryable).
        let result_store = state.store_named(Some(name.clone()), "");
        let subscriptions_store = state.store_named(Some(format!("{name}-subscriptions")), "");
        let registration = format!("{name}-subscription-registration-topic");
        let response = format!("{name}-subscription-response-topic");
        let out = state
            .new_children::<K, Change<VR>>(format!("foreign-key join into store {result_store}"));
        let result_value = materialized.value.clone();
        let (Some((key_serde, value_serde)), Some((other_key_serde, other_value_serde))) =
            (self.serdes.clone(), other.serdes.clone())
        else {
            state.error(
                "a foreign-key join needs both tables' serdes: join tables read from topics or aggregations (or filters of them)".to_string(),
            );
            return KTable {
                state: state.clone(),
                children: out,
                store: None,
                getter: Arc::new(|_, _| Ok(None)),
                sources: self.sources.clone(),
                window_close_ms: None,
                serdes: None,
            };
        };
        state.copartition(
            std::iter::once(TopicRef::Internal(registration.clone()))
                .chain(other.sources.iter().cloned())
                .collect(),
        );
        state.copartition(
            std::iter::once(TopicRef::Internal(response.clone()))
                .chain(self.sources.iter().cloned())
                .collect(),
        );
        let foreign_key = Arc::new(foreign_key);

        // 1. This table's rows subscribe to the rows they name (and leave the ones they named).
        {
            let (key_serde, value_serde, other_key_serde) = (
                key_serde.clone(),
                value_serde.clone(),
                other_key_serde.clone(),
            );
            let (foreign_key, registration) = (foreign_key.clone(), registration.clone());
            let (result_store, result_value, downstream) =
                (result_store.clone(), result_value.clone(), out.clone());
            self.children
                .add(Arc::new(move |ctx, record: Record<K, Change<V>>| {
                    let Some(key_bytes) = ctx.store_key(&*key_serde, &registration, &record.key)
                    else {
                        return;
                    };
                    let foreign = |ctx: &mut TaskContext, value: &Option<V>| {
                        value
                            .as_ref()
                            .and_then(|v| foreign_key(v))
                            .and_then(|foreign| {
                                ctx.store_key(&*other_key_serde, &registration, &foreign)
                            })
                    };
                    let (new_fk, old_fk) = (
                        foreign(ctx, &record.value.new),
                        foreign(ctx, &record.value.old),
                    );
                    let ts = record.timestamp;
                    if let Some(old_fk) = old_fk.filter(|old| Some(old) != new_fk.as_ref()) {
                        let message = subscription_message(UNSUBSCRIBE, 0, 0, &key_bytes);
                        send(ctx, &registration, None, (old_fk, message), ts);
                    }
                    match (&record.value.new, new_fk) {
                        (Some(new), Some(new_fk)) => {
                            let bytes =
                                match serdes::serialize(&*value_serde, &registration, "value", new)
                                {
                                    Ok(bytes) => bytes.unwrap_or_default(),
                                    Err(err) => return ctx.errors.push(err),
                                };
                            let message = subscription_message(
                                SUBSCRIBE_FROM_PARTITION,
                                row_hash(&bytes),
                                ctx.task_partition(),
                                &key_bytes,
                            );
                            send(ctx, &registration, None, (new_fk, message), ts);
                        }
                        // The row is gone (or names nothing): so is its joined row, now.
                        _ => {
                            let previous =
                                match ctx.get_stored(&result_store, &key_bytes, &*result_value) {
                                    Ok(previous) => previous,
                                    Err(err) => return ctx.errors.push(err),
                                };
                            if previous.is_some() {
                                ctx.put_logged(&result_store, key_bytes, None, ts);
                                downstream.forward(
                                    ctx,
                                    Record {
                                        key: record.key,
                                        value: Change {
                                            new: None,
                                            old: previous,
                                        },
                                        timestamp: ts,
                                        headers: record.headers,
                                    },
                                );
                            }
                        }
                    }
                }));
        }

        // 2. The other table's task keeps the subscriptions and answers them.
        let raw = || Consumed {
            key: Arc::new(OptionSerde(BytesSerde)) as Arc<dyn Serde<Option<Bytes>>>,
            value: Arc::new(OptionSerde(BytesSerde)) as Arc<dyn Serde<Option<Bytes>>>,
            timestamp_extractor: None,
        };
        let registrations = state.new_children::<Option<Bytes>, Option<Bytes>>(format!(
            "subscriptions of {name} into store {subscriptions_store}"
        ));
        {
            let (other_key_serde, other_getter) = (other_key_serde.clone(), other.getter.clone());
            let (other_value_serde, subscriptions_store, response) = (
                other_value_serde.clone(),
                subscriptions_store.clone(),
                response.clone(),
            );
            registrations.add(Arc::new(
                move |ctx, record: Record<Option<Bytes>, Option<Bytes>>| {
                    let (Some(foreign), Some(message)) = (record.key, record.value) else {
                        return;
                    };
                    let Some((instruction, hash, partition, key_bytes)) =
                        read_subscription(&message)
                    else {
                        return;
                    };
                    let subscriber = subscriber_key(&foreign, &key_bytes);
                    let ts = record.timestamp;
                    if instruction == UNSUBSCRIBE {
                        ctx.put_logged(&subscriptions_store, subscriber, None, ts);
                        return;
                    }
                    // The subscription remembers the row's hash and partition, for the answers
                    // its changes send.
                    let kept = subscription_value(hash, partition);
                    ctx.put_logged(&subscriptions_store, subscriber, Some(kept), ts);
                    let found =
                        serdes::deserialize(&*other_key_serde, &response, "key", Some(&foreign))
                            .and_then(|foreign_key| other_getter(ctx, &foreign_key))
                            .and_then(|found| {
                                found
                                    .map(|row| {
                                        serdes::serialize(
                                            &*other_value_serde,
                                            &response,
                                            "value",
                                            &row,
                                        )
                                    })
                                    .transpose()
                            });
                    match found {
                        Ok(row) => {
                            let row = row.map(Option::unwrap_or_default);
                            let answer = response_message(hash, row.as_ref());
                            send(ctx, &response, partition, (key_bytes, answer), ts);
                        }
                        Err(err) => ctx.errors.push(err),
                    }
                },
            ));
        }
        state.add_internal_source(&registration, registrations, raw());
        // The other table's rows answer every subscriber when they change.
        {
            let (other_key_serde, other_value_serde) =
                (other_key_serde.clone(), other_value_serde.clone());
            let (subscriptions_store, response) = (subscriptions_store.clone(), response.clone());
            other
                .children
                .add(Arc::new(move |ctx, record: Record<KO, Change<VO>>| {
                    let Some(foreign) =
                        ctx.store_key(&*other_key_serde, &subscriptions_store, &record.key)
                    else {
                        return;
                    };
                    let row =
                        match record.value.new.as_ref().map(|row| {
                            serdes::serialize(&*other_value_serde, &response, "value", row)
                        }) {
                            Some(Ok(bytes)) => Some(bytes.unwrap_or_default()),
                            Some(Err(err)) => return ctx.errors.push(err),
                            None => None,
                        };
                    let prefix = subscribers_prefix(&foreign);
                    let subscribers =
                        ctx.scan_while(&subscriptions_store, &prefix, |k| k.starts_with(&prefix));
                    for (subscriber, kept) in subscribers {
                        let key_bytes = subscriber.slice(prefix.len()..);
                        let (hash, partition) = read_subscription_value(&kept);
                        let answer = response_message(hash, row.as_ref());
                        send(
                            ctx,
                            &response,
                            partition,
                            (key_bytes, answer),
                            record.timestamp,
                        );
                    }
                }));
        }

        // 3. This table's task joins the answers with its rows.
        let responses =
            state.new_children::<Option<Bytes>, Option<Bytes>>(format!("answers of {name}"));
        {
            let (key_serde, value_serde, self_getter) =
                (key_serde.clone(), value_serde.clone(), self.getter.clone());
            let (other_value_serde, result_store, result_value) = (
                other_value_serde.clone(),
                result_store.clone(),
                result_value.clone(),
            );
            let downstream = out.clone();
            let response_topic = response.clone();
            responses.add(Arc::new(
                move |ctx, record: Record<Option<Bytes>, Option<Bytes>>| {
                    let (Some(key_bytes), Some(message)) = (record.key, record.value) else {
                        return;
                    };
                    let (Some(hash), Some(&has_row)) = (be_u64(&message), message.get(8)) else {
                        return;
                    };
                    let decoded =
                        serdes::deserialize(&*key_serde, &response_topic, "key", Some(&key_bytes))
                            .and_then(|key| Ok((self_getter(ctx, &key)?, key)));
                    let (current, key) = match decoded {
                        Ok(found) => found,
                        Err(err) => return ctx.errors.push(err),
                    };
                    // The row is gone: its deletion went downstream when it happened.
                    let Some(current) = current else {
                        return;
                    };
                    match serdes::serialize(&*value_serde, &response_topic, "value", &current) {
                        Ok(bytes) if row_hash(bytes.as_deref().unwrap_or_default()) == hash => {}
                        // The row changed since it subscribed (maybe to another row): the answer
                        // to its newer subscription is coming.
                        Ok(_) => return,
                        Err(err) => return ctx.errors.push(err),
                    }
                    let other_row = if has_row == 1 {
                        match serdes::deserialize(
                            &*other_value_serde,
                            &response_topic,
                            "value",
                            Some(&message.slice(9..)),
                        ) {
                            Ok(row) => Some(row),
                            Err(err) => return ctx.errors.push(err),
                        }
                    } else {
                        None
                    };
                    let joined = join(&current, other_row.as_ref());
                    let stored = match joined
                        .as_ref()
                        .map(|v| serdes::serialize(&*result_value, &result_store, "value", v))
                    {
                        Some(Ok(bytes)) => Some(bytes.unwrap_or_default()),
                        Some(Err(err)) => return ctx.errors.push(err),
                        None => None,
                    };
                    let previous = match ctx.get_stored(&result_store, &key_bytes, &*result_value) {
                        Ok(previous) => previous,
                        Err(err) => return ctx.errors.push(err),
                    };
                    if joined.is_none() && previous.is_none() {
                        return;
                    }
                    ctx.put_logged(&result_store, key_bytes, stored, record.timestamp);
                    downstream.forward(
                        ctx,
                        Record {
                            key,
                            value: Change {
                                new: joined,
                                old: previous,
                            },
                            timestamp: record.timestamp,
                            headers: record.headers,
                        },
                    );
                },
            ));
        }
        state.add_internal_source(&response, responses, raw());
        KTable::materialized(
            state.clone(),
            out,
            result_store,
            key_serde,
            materialized.value,
            self.sources.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_carry_the_subscriber_partition_and_older_ones_read_without_it() {
        let message = subscription_message(SUBSCRIBE_FROM_PARTITION, 7, 3, b"key");
        assert_eq!(
            read_subscription(&message),
            Some((
                SUBSCRIBE_FROM_PARTITION,
                7,
                Some(3),
                Bytes::from_static(b"key")
            ))
        );
        // Written before partitions were carried: the answer goes by the key's murmur2.
        let older = subscription_message(SUBSCRIBE, 7, 3, b"key");
        assert_eq!(
            read_subscription(&older),
            Some((SUBSCRIBE, 7, None, Bytes::from_static(b"key")))
        );
        assert_eq!(read_subscription(&Bytes::from_static(&[2, 0, 0])), None);
        assert_eq!(
            read_subscription_value(&subscription_value(9, Some(1))),
            (9, Some(1))
        );
        assert_eq!(
            read_subscription_value(&subscription_value(9, None)),
            (9, None)
        );
    }
}
