//! Grouping and aggregation: `KGroupedStream` (`count`, `reduce`, `aggregate`) and `KTable`, a
//! changelog stream read as a table — the latest value of each key, kept in a state store.
//!
//! An aggregation keeps its running value per key in a key-value store of the task (serialised
//! with the grouping's key serde and the aggregate's value serde). An update waits in the
//! store's record cache, where a later update of the key replaces it, until the task commits
//! or its caches are full; then it goes to the store, its changelog and downstream — Kafka
//! Streams' caching. With `statestore.cache.max.bytes=0` (or `Materialized::
//! with_caching_disabled`) every update goes on at once.
//!
//! A table's updates travel as [`Change`]s — the row's new value and the one it replaced, either
//! absent — so that operators downstream can take back what an old value contributed: a
//! filtered-out or deleted row becomes a delete downstream, a table aggregation subtracts the
//! old value before adding the new one. Tables derived without a store of their own (`filter`,
//! `map_values`, joins) answer lookups by asking the tables they come from (Kafka's value
//! getters), so a stream can join any table.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Result;
use crate::kstream::{Data, KStream};
use crate::serdes::{self, I64Serde, Serde};
use crate::topology::{
    BuilderState, Children, Consumed, OutputRecord, Record, TaskContext, TopicRef,
};

/// How a grouping (de)serialises keys and values (Kafka's `Grouped`): the key serde for the
/// aggregation's store, both for a repartition topic when the keys were changed upstream.
pub struct Grouped<K, V> {
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Option<Arc<dyn Serde<V>>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Grouped<K, V> {
    /// Keys with `key`, values with `value`.
    pub fn with(key: impl Serde<K> + 'static, value: impl Serde<V> + 'static) -> Grouped<K, V> {
        Grouped {
            key: Arc::new(key),
            value: Some(Arc::new(value)),
            name: None,
        }
    }

    /// Keys with `key` only: enough when the stream keeps the keys it was read with.
    pub fn with_key(key: impl Serde<K> + 'static) -> Grouped<K, V> {
        Grouped {
            key: Arc::new(key),
            value: None,
            name: None,
        }
    }

    /// The repartition topic's name (between the application id and `-repartition`).
    pub fn named(mut self, name: &str) -> Grouped<K, V> {
        self.name = Some(name.to_string());
        self
    }
}

/// How an aggregation's store is named and its values serialised (Kafka's `Materialized`).
pub struct Materialized<V> {
    pub(crate) name: Option<String>,
    pub(crate) value: Arc<dyn Serde<V>>,
    pub(crate) caching: bool,
    pub(crate) persistent: bool,
    pub(crate) retention: Option<std::time::Duration>,
}

impl<V> Materialized<V> {
    /// Values stored with `value`; the store gets a generated name; updates are cached
    /// (as the application's `statestore.cache.max.bytes` allows).
    pub fn with(value: impl Serde<V> + 'static) -> Materialized<V> {
        Materialized {
            name: None,
            value: Arc::new(value),
            caching: true,
            persistent: false,
            retention: None,
        }
    }

    /// How long a windowed aggregation keeps a window after it ends (Kafka's
    /// `withRetention`; at least, and by default, the window size plus its grace period),
    /// so that queries can still read closed windows for that long. Older windows are deleted
    /// from the store and its changelog.
    pub fn with_retention(mut self, retention: std::time::Duration) -> Materialized<V> {
        self.retention = Some(retention);
        self
    }

    /// Keeps the store on disk as well (Kafka's persistent key-value store), under the
    /// application's `state.dir`: a task that starts again where its store was kept restores
    /// only what the changelog gained since its last commit. Without it the store is in
    /// memory only and restored from the whole changelog.
    pub fn persistent(mut self) -> Materialized<V> {
        self.persistent = true;
        self
    }

    /// Every update goes to the store, its changelog and downstream at once
    /// (`withCachingDisabled`).
    pub fn with_caching_disabled(mut self) -> Materialized<V> {
        self.caching = false;
        self
    }

    /// The store's name (queryable, and part of its changelog topic's name).
    pub fn named(mut self, name: &str) -> Materialized<V> {
        self.name = Some(name.to_string());
        self
    }
}

impl Materialized<i64> {
    /// A `count`'s store: 8-byte big-endian counts, as Kafka's `Serdes.Long()`.
    pub fn counts() -> Materialized<i64> {
        Materialized::with(I64Serde)
    }
}

/// A stream grouped by key, ready to aggregate (Kafka's `KGroupedStream`).
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    key: Arc<dyn Serde<K>>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>, key: Arc<dyn Serde<K>>) -> KGroupedStream<K, V> {
        KGroupedStream { stream, key }
    }

    /// Cuts each key's records into time windows (Kafka's `windowedBy`).
    pub fn windowed_by(
        &self,
        windows: crate::window::TimeWindows,
    ) -> crate::window::TimeWindowedKStream<K, V> {
        crate::window::TimeWindowedKStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            windows,
            emit: Default::default(),
        }
    }

    /// Cuts each key's records into sliding windows (Kafka's `windowedBy(SlidingWindows)`);
    /// `values` serialises the key's recent records, which the windows are folded from.
    pub fn windowed_by_sliding(
        &self,
        windows: crate::sliding::SlidingWindows,
        values: impl Serde<V> + 'static,
    ) -> crate::sliding::SlidingWindowedKStream<K, V> {
        crate::sliding::SlidingWindowedKStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            value: Arc::new(values),
            windows,
        }
    }

    /// Cuts each key's records into sessions of activity (Kafka's `windowedBy(SessionWindows)`).
    pub fn windowed_by_session(
        &self,
        windows: crate::session::SessionWindows,
    ) -> crate::session::SessionWindowedKStream<K, V> {
        crate::session::SessionWindowedKStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            windows,
            emit: Default::default(),
        }
    }

    /// How many records each key had so far.
    pub fn count(&self, materialized: Materialized<i64>) -> KTable<K, i64> {
        self.aggregate(|| 0, |_, _, count| count + 1, materialized)
    }

    /// Combines each key's values with `reducer(aggregate, value)`; the first value of a key is
    /// its first aggregate.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<V>,
    ) -> KTable<K, V> {
        self.fold(
            move |_, value, aggregate: Option<V>| match aggregate {
                Some(aggregate) => reducer(aggregate, value),
                None => value,
            },
            materialized,
            "reduce",
        )
    }

    /// Folds each key's values into an aggregate: `initializer()` before the key's first
    /// record, then `aggregator(key, value, aggregate)` for each record.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<VA>,
    ) -> KTable<K, VA> {
        self.fold(
            move |key, value, aggregate: Option<VA>| {
                aggregator(key, value, aggregate.unwrap_or_else(&initializer))
            },
            materialized,
            "aggregate",
        )
    }

    fn fold<VA: Data>(
        &self,
        fold: impl Fn(&K, V, Option<VA>) -> VA + Send + Sync + 'static,
        materialized: Materialized<VA>,
        what: &str,
    ) -> KTable<K, VA> {
        fold_into_store(
            &self.stream.state,
            &self.stream.children,
            &self.key,
            &self.stream.sources,
            materialized,
            ("KSTREAM-AGGREGATE-STATE-STORE", what),
            move |key, value, aggregate| Some(fold(key, value, aggregate)),
        )
    }
}

/// Adds the node of an aggregation fed by `input`: for each record, `fold(key, input,
/// aggregate so far)` is the key's new aggregate (None deletes it), stored under the key's
/// bytes in the store `materialized` names (or one named after `prefix`), logged, and forwarded
/// as a change.
fn fold_into_store<K: Data, I: Data, VA: Data>(
    state: &Arc<BuilderState>,
    input: &Children<K, I>,
    key_serde: &Arc<dyn Serde<K>>,
    sources: &Arc<Vec<TopicRef>>,
    materialized: Materialized<VA>,
    (prefix, what): (&str, &str),
    fold: impl Fn(&K, I, Option<VA>) -> Option<VA> + Send + Sync + 'static,
) -> KTable<K, VA> {
    let store = state.materialize(&materialized, prefix);
    let out = state.new_children::<K, Change<VA>>(format!("{what} into store {store}"));
    let downstream = out.clone();
    let (keys, values, store_name) = (key_serde.clone(), materialized.value.clone(), store.clone());
    let caching = materialized.caching;
    input.add(Arc::new(move |ctx, record: Record<K, I>| {
        // Kafka Streams skips records without key bytes in stateful operators.
        let Some(key_bytes) = ctx.store_key(&*keys, &store_name, &record.key) else {
            return;
        };
        if ctx.caching(caching) {
            let (key, value) = (record.key, record.value);
            let mut input = Some(value);
            let folded = ctx.fold_cached(
                &store_name,
                [key_bytes],
                &*values,
                (record.timestamp, &record.headers),
                |previous| input.take().and_then(|value| fold(&key, value, previous)),
            );
            if let Err(err) = folded {
                ctx.errors.push(err);
            }
            return;
        }
        let previous = match ctx.get_stored(&store_name, &key_bytes, &*values) {
            Ok(previous) => previous,
            Err(err) => return ctx.errors.push(err),
        };
        let aggregate = fold(&record.key, record.value, previous.clone());
        let stored = match &aggregate {
            Some(aggregate) => serdes::serialize(&*values, &store_name, "value", aggregate),
            None => Ok(None),
        };
        let bytes = match stored {
            Ok(bytes) => bytes,
            Err(err) => return ctx.errors.push(err),
        };
        let update = Update {
            key: record.key,
            key_bytes,
            new: aggregate,
            new_bytes: bytes,
            old: previous,
            timestamp: record.timestamp,
            headers: record.headers,
        };
        update.store_and_forward(ctx, &store_name, &downstream);
    }));
    state.add_flusher(cache_flusher(
        store.clone(),
        key_serde.clone(),
        materialized.value.clone(),
        out.clone(),
    ));
    KTable::materialized(
        state.clone(),
        out,
        store,
        key_serde.clone(),
        materialized.value,
        sources.clone(),
    )
}

/// A new aggregate of a key, to store and forward.
pub(crate) struct Update<K, V> {
    pub(crate) key: K,
    pub(crate) key_bytes: Bytes,
    pub(crate) new: Option<V>,
    pub(crate) new_bytes: Option<Bytes>,
    pub(crate) old: Option<V>,
    pub(crate) timestamp: i64,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
}

impl<K: Data, V: Data> Update<K, V> {
    /// Writes the update to store `store` and its changelog and forwards it (the uncached
    /// path; cached aggregations go through `TaskContext::fold_cached`).
    pub(crate) fn store_and_forward(
        self,
        ctx: &mut TaskContext,
        store: &str,
        downstream: &Children<K, Change<V>>,
    ) {
        ctx.put_logged(store, self.key_bytes, self.new_bytes, self.timestamp);
        let change = Change {
            new: self.new,
            old: self.old,
        };
        forward_change(
            ctx,
            downstream,
            self.key,
            change,
            self.timestamp,
            self.headers,
        );
    }
}

/// The flush of store `store`'s record cache: each held update, decoded, forwarded as a
/// change from the value the store had.
pub(crate) fn cache_flusher<K: Data, V: Data>(
    store: Arc<str>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    downstream: Arc<Children<K, Change<V>>>,
) -> crate::topology::Flusher {
    Arc::new(move |ctx| {
        for update in ctx.flush_cache(&store) {
            let decoded = (|| {
                let key = serdes::deserialize(&*key, &store, "key", Some(&update.key))?;
                let value = |bytes: Option<Bytes>| {
                    bytes
                        .map(|b| serdes::deserialize(&*value, &store, "value", Some(&b)))
                        .transpose()
                };
                Ok::<_, crate::error::StreamsError>((key, value(update.new)?, value(update.old)?))
            })();
            match decoded {
                Ok((key, new, old)) => forward_change(
                    ctx,
                    &downstream,
                    key,
                    Change { new, old },
                    update.timestamp,
                    update.headers,
                ),
                Err(err) => ctx.errors.push(err),
            }
        }
    })
}

/// An update of a table row: its value after the update and the one before (`None`: absent).
/// A delete has no `new`; a first insert no `old`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<V> {
    /// The row's value from now on.
    pub new: Option<V>,
    /// The row's value until now.
    pub old: Option<V>,
}

/// Looks up a table's current value of a key in a task (Kafka's `KTableValueGetter`).
pub(crate) type ValueGetter<K, V> =
    Arc<dyn Fn(&TaskContext, &K) -> Result<Option<V>> + Send + Sync>;

/// The getter of a table kept in store `store`.
fn store_getter<K: 'static, V: 'static>(
    store: Arc<str>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
) -> ValueGetter<K, V> {
    Arc::new(
        move |ctx, k| match serdes::serialize(&*key, &store, "key", k)? {
            Some(key_bytes) => ctx.get_stored(&store, &key_bytes, &*value),
            None => Ok(None),
        },
    )
}

/// The serdes of a table's keys and values.
pub(crate) type TableSerdes<K, V> = (Arc<dyn Serde<K>>, Arc<dyn Serde<V>>);

/// A table: the latest value of each key, updated by a changelog stream (Kafka's `KTable`).
pub struct KTable<K, V> {
    pub(crate) state: Arc<BuilderState>,
    pub(crate) children: Arc<Children<K, Change<V>>>,
    /// The store that holds the table, when it has one of its own.
    pub(crate) store: Option<Arc<str>>,
    /// How a lookup finds a key's current value.
    pub(crate) getter: ValueGetter<K, V>,
    /// The topics the table's updates come from (for co-partitioning checks).
    pub(crate) sources: Arc<Vec<TopicRef>>,
    /// For a windowed aggregation's table: how long after a window's end (as its key says)
    /// stream time closes it (the grace period; for sessions, whose end is their last record,
    /// also the gap), for `suppress`.
    pub(crate) window_close_ms: Option<i64>,
    /// The serdes of the table's keys and values, where known (tables kept in stores, and
    /// filters of them), for operators that buffer rows (`suppress`).
    pub(crate) serdes: Option<TableSerdes<K, V>>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            state: self.state.clone(),
            children: self.children.clone(),
            store: self.store.clone(),
            getter: self.getter.clone(),
            sources: self.sources.clone(),
            window_close_ms: self.window_close_ms,
            serdes: self.serdes.clone(),
        }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    /// A table kept in `store`, its keys and values serialised with `key` and `value`.
    pub(crate) fn materialized(
        state: Arc<BuilderState>,
        children: Arc<Children<K, Change<V>>>,
        store: Arc<str>,
        key: Arc<dyn Serde<K>>,
        value: Arc<dyn Serde<V>>,
        sources: Arc<Vec<TopicRef>>,
    ) -> KTable<K, V> {
        KTable {
            state,
            children,
            getter: store_getter(store.clone(), key.clone(), value.clone()),
            store: Some(store),
            sources,
            window_close_ms: None,
            serdes: Some((key, value)),
        }
    }

    /// The name of the store that holds the table (for interactive queries), when it has one:
    /// tables read from topics and aggregations do; tables derived from others (`filter`,
    /// `map_values`, joins) look their rows up in the tables they come from.
    pub fn store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The table's updates as a stream of their new values (Kafka's `toStream`). Deletes are
    /// not on it, as a typed stream has no null value: use
    /// [`KTable::to_stream_with_tombstones`] to pass them on.
    pub fn to_stream(&self) -> KStream<K, V> {
        self.changes_to_stream("to_stream", |change| change.new)
    }

    /// The table's updates as a stream, a delete as `None` (written as a tombstone with an
    /// [`OptionSerde`](crate::serdes::OptionSerde)).
    pub fn to_stream_with_tombstones(&self) -> KStream<K, Option<V>> {
        self.changes_to_stream("to_stream", |change| Some(change.new))
    }

    /// The table's updates as a stream of changes, each with the value it replaces (Kafka
    /// Streams keeps this internal, for its own operators; ksql's `HAVING` needs it to
    /// delete only rows that were there).
    pub fn changes(&self) -> KStream<K, Change<V>> {
        self.changes_to_stream("changes", Some)
    }

    fn changes_to_stream<V2: Data>(
        &self,
        what: &str,
        value: impl Fn(Change<V>) -> Option<V2> + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let out = self.state.new_children::<K, V2>(what.to_string());
        let downstream = out.clone();
        self.children
            .add(Arc::new(move |ctx, record: Record<K, Change<V>>| {
                if let Some(value) = value(record.value) {
                    downstream.forward(
                        ctx,
                        Record {
                            key: record.key,
                            value,
                            timestamp: record.timestamp,
                            headers: record.headers,
                        },
                    );
                }
            }));
        KStream::new(self.state.clone(), out).with_sources(self.sources.to_vec())
    }

    /// The rows for which `predicate` holds (Kafka's `KTable.filter`): a row that stops
    /// matching is deleted downstream.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        let mut filtered = self.derive("filter", move |key, value| {
            predicate(key, &value).then_some(value)
        });
        filtered.serdes = self.serdes.clone();
        filtered
    }

    /// The rows for which `predicate` does not hold.
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        let mut filtered = self.derive("filter_not", move |key, value| {
            (!predicate(key, &value)).then_some(value)
        });
        filtered.serdes = self.serdes.clone();
        filtered
    }

    /// Each row with a new value (Kafka's `KTable.mapValues`).
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        self.derive("map_values", move |key, value| Some(mapper(key, value)))
    }

    /// A table whose rows are `row(key, value)` of this one's (absent where it gives `None`),
    /// without a store: lookups apply `row` to this table's.
    fn derive<V2: Data>(
        &self,
        what: &str,
        row: impl Fn(&K, V) -> Option<V2> + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let row = Arc::new(row);
        let out = self.state.new_children::<K, Change<V2>>(what.to_string());
        let downstream = out.clone();
        let forward_row = row.clone();
        self.children
            .add(Arc::new(move |ctx, record: Record<K, Change<V>>| {
                let key = &record.key;
                let new = record.value.new.and_then(|v| forward_row(key, v));
                let old = record.value.old.and_then(|v| forward_row(key, v));
                if new.is_none() && old.is_none() {
                    return;
                }
                downstream.forward(
                    ctx,
                    Record {
                        key: record.key,
                        value: Change { new, old },
                        timestamp: record.timestamp,
                        headers: record.headers,
                    },
                );
            }));
        let parent = self.getter.clone();
        KTable {
            state: self.state.clone(),
            children: out,
            store: None,
            getter: Arc::new(move |ctx, key| Ok(parent(ctx, key)?.and_then(|v| row(key, v)))),
            sources: self.sources.clone(),
            window_close_ms: self.window_close_ms,
            serdes: None,
        }
    }

    /// The rows whose key both tables have, joined (Kafka's KTable–KTable `join`): updated
    /// whenever either side changes; a delete on either side deletes the joined row. The
    /// tables must be co-partitioned (checked when the application starts).
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_tables(other, "join", move |left, right| match (left, right) {
            (Some(left), Some(right)) => Some(joiner(left, right)),
            _ => None,
        })
    }

    /// Every row of this table, joined with the other's row of its key if there is one
    /// (Kafka's KTable–KTable `leftJoin`).
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_tables(other, "left_join", move |left, right| {
            left.map(|left| joiner(left, right))
        })
    }

    /// Every key of either table, joined with what the other has for it (Kafka's KTable–KTable
    /// `outerJoin`).
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.join_tables(other, "outer_join", move |left, right| {
            (left.is_some() || right.is_some()).then(|| joiner(left, right))
        })
    }

    fn join_tables<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        what: &str,
        joined: impl Fn(Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.state.copartition(
            self.sources
                .iter()
                .chain(other.sources.iter())
                .cloned()
                .collect(),
        );
        // `joined` is the joined row of a key from both sides' values, absent where the join
        // kind keeps none.
        let joined = Arc::new(joined);
        let out = self
            .state
            .new_children::<K, Change<VR>>(format!("table {what}"));
        {
            let (downstream, joined, other_getter) =
                (out.clone(), joined.clone(), other.getter.clone());
            self.children
                .add(Arc::new(move |ctx, record: Record<K, Change<V>>| {
                    let right = match other_getter(ctx, &record.key) {
                        Ok(right) => right,
                        Err(err) => return ctx.errors.push(err),
                    };
                    let change = Change {
                        new: joined(record.value.new.as_ref(), right.as_ref()),
                        old: joined(record.value.old.as_ref(), right.as_ref()),
                    };
                    forward_change(
                        ctx,
                        &downstream,
                        record.key,
                        change,
                        record.timestamp,
                        record.headers,
                    );
                }));
        }
        {
            let (downstream, joined, self_getter) =
                (out.clone(), joined.clone(), self.getter.clone());
            other
                .children
                .add(Arc::new(move |ctx, record: Record<K, Change<VO>>| {
                    let left = match self_getter(ctx, &record.key) {
                        Ok(left) => left,
                        Err(err) => return ctx.errors.push(err),
                    };
                    let change = Change {
                        new: joined(left.as_ref(), record.value.new.as_ref()),
                        old: joined(left.as_ref(), record.value.old.as_ref()),
                    };
                    forward_change(
                        ctx,
                        &downstream,
                        record.key,
                        change,
                        record.timestamp,
                        record.headers,
                    );
                }));
        }
        let (left_getter, right_getter) = (self.getter.clone(), other.getter.clone());
        KTable {
            state: self.state.clone(),
            children: out,
            store: None,
            getter: Arc::new(move |ctx, key| {
                let left = left_getter(ctx, key)?;
                let right = right_getter(ctx, key)?;
                Ok(joined(left.as_ref(), right.as_ref()))
            }),
            sources: Arc::new(
                self.sources
                    .iter()
                    .chain(other.sources.iter())
                    .cloned()
                    .collect(),
            ),
            window_close_ms: None,
            serdes: None,
        }
    }

    /// Re-keys the table's rows with `selector(key, value) -> (new key, new value)` to aggregate
    /// them (Kafka's `KTable.groupBy`), through a repartition topic written with `grouped`'s
    /// serdes (`Grouped::with`: a table's grouping always repartitions). Each update travels
    /// as the old row to take out and the new one to put in.
    pub fn group_by<K2: Data, V2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: Grouped<K2, V2>,
    ) -> KGroupedTable<K2, V2> {
        let name = grouped
            .name
            .clone()
            .unwrap_or_else(|| self.state.generated_name("KTABLE-REPARTITION"));
        let suffix: Arc<str> = format!("{name}-repartition").into();
        let children = self
            .state
            .new_children::<K2, Change<V2>>(format!("source {suffix}"));
        let grouped_table = KGroupedTable {
            state: self.state.clone(),
            children: children.clone(),
            key: grouped.key.clone(),
            sources: Arc::new(vec![TopicRef::Internal(suffix.to_string())]),
        };
        let Some(value_serde) = grouped.value.clone() else {
            self.state.error(
                "KTable::group_by repartitions the table, which needs a value serde: use Grouped::with(key_serde, value_serde)".to_string(),
            );
            return grouped_table;
        };
        let change_serde = Arc::new(ChangeSerde { inner: value_serde });
        let (key_serde, sink_serde, sink_suffix) =
            (grouped.key.clone(), change_serde.clone(), suffix.clone());
        self.children
            .add(Arc::new(move |ctx, record: Record<K, Change<V>>| {
                let topic = ctx.internal_topic(&sink_suffix);
                // Each side's new key, serialised once: it decides whether one record carries
                // both values (the key stays) and is the record's key.
                let keyed = |ctx: &mut TaskContext, value: Option<V>| {
                    let (key, value) = selector(&record.key, &value?);
                    match serdes::serialize(&*key_serde, &topic, "key", &key) {
                        Ok(bytes) => Some((bytes, value)),
                        Err(err) => {
                            ctx.errors.push(err);
                            None
                        }
                    }
                };
                let old = keyed(ctx, record.value.old);
                let new = keyed(ctx, record.value.new);
                let write = |ctx: &mut TaskContext, key: Option<Bytes>, change: Change<V2>| {
                    match serdes::serialize(&*sink_serde, &topic, "value", &change) {
                        Ok(value) => ctx.outputs.push(OutputRecord {
                            topic: topic.clone(),
                            partition: None,
                            key,
                            value,
                            timestamp: record.timestamp,
                            headers: record.headers.clone(),
                        }),
                        Err(err) => ctx.errors.push(err),
                    }
                };
                match (old, new) {
                    (Some((old_key, old)), Some((new_key, new))) if old_key == new_key => {
                        let change = Change {
                            new: Some(new),
                            old: Some(old),
                        };
                        write(ctx, new_key, change);
                    }
                    (old, new) => {
                        // The old row leaves its group before the new one joins its own.
                        if let Some((key, old)) = old {
                            let change = Change {
                                new: None,
                                old: Some(old),
                            };
                            write(ctx, key, change);
                        }
                        if let Some((key, new)) = new {
                            let change = Change {
                                new: Some(new),
                                old: None,
                            };
                            write(ctx, key, change);
                        }
                    }
                }
            }));
        self.state.add_internal_source(
            &suffix,
            children,
            Consumed {
                key: grouped.key,
                value: change_serde,
                timestamp_extractor: None,
            },
        );
        grouped_table
    }
}

/// Forwards `change` of `key` unless it changes nothing.
pub(crate) fn forward_change<K: Data, V: Data>(
    ctx: &mut TaskContext,
    downstream: &Children<K, Change<V>>,
    key: K,
    change: Change<V>,
    timestamp: i64,
    headers: Vec<(String, Option<Bytes>)>,
) {
    if change.new.is_none() && change.old.is_none() {
        return;
    }
    downstream.forward(
        ctx,
        Record {
            key,
            value: change,
            timestamp,
            headers,
        },
    );
}

/// A table's update on a repartition topic: a flags byte (1: has old, 2: has new), the old
/// value's length (4 bytes, big-endian) and bytes, then the new value's bytes.
pub(crate) struct ChangeSerde<V> {
    pub(crate) inner: Arc<dyn Serde<V>>,
}

impl<V> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(
        &self,
        topic: &str,
        change: &Change<V>,
    ) -> std::result::Result<Option<Bytes>, String> {
        let bytes = |value: &Option<V>| -> std::result::Result<Option<Bytes>, String> {
            match value {
                Some(value) => Ok(Some(
                    self.inner.serialize(topic, value)?.unwrap_or_default(),
                )),
                None => Ok(None),
            }
        };
        let (old, new) = (bytes(&change.old)?, bytes(&change.new)?);
        let old_len = old.as_ref().map_or(0, Bytes::len);
        let mut buf = BytesMut::with_capacity(5 + old_len + new.as_ref().map_or(0, Bytes::len));
        buf.put_u8(u8::from(old.is_some()) | (u8::from(new.is_some()) << 1));
        buf.put_u32(old_len as u32);
        if let Some(old) = &old {
            buf.put_slice(old);
        }
        if let Some(new) = &new {
            buf.put_slice(new);
        }
        Ok(Some(buf.freeze()))
    }

    fn deserialize(
        &self,
        topic: &str,
        bytes: Option<&Bytes>,
    ) -> std::result::Result<Change<V>, String> {
        let bytes = bytes.ok_or("a table update without bytes")?;
        if bytes.len() < 5 || bytes[0] > 3 {
            return Err("not a table update (too short or unknown flags)".to_string());
        }
        let old_len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if bytes.len() < 5 + old_len {
            return Err(format!(
                "a table update says its old value has {old_len} bytes, but has {}",
                bytes.len() - 5
            ));
        }
        let value = |present: bool, part: Bytes| -> std::result::Result<Option<V>, String> {
            present
                .then(|| self.inner.deserialize(topic, Some(&part)))
                .transpose()
        };
        Ok(Change {
            old: value(bytes[0] & 1 != 0, bytes.slice(5..5 + old_len))?,
            new: value(bytes[0] & 2 != 0, bytes.slice(5 + old_len..))?,
        })
    }
}

/// A table re-keyed by `KTable::group_by`, ready to aggregate (Kafka's `KGroupedTable`).
pub struct KGroupedTable<K, V> {
    state: Arc<BuilderState>,
    children: Arc<Children<K, Change<V>>>,
    key: Arc<dyn Serde<K>>,
    sources: Arc<Vec<TopicRef>>,
}

impl<K: Data, V: Data> KGroupedTable<K, V> {
    /// How many rows each group has now: a row that leaves a group (changed or deleted)
    /// counts down.
    pub fn count(&self, materialized: Materialized<i64>) -> KTable<K, i64> {
        self.aggregate(
            || 0,
            |_, _, count| count + 1,
            |_, _, count| count - 1,
            materialized,
        )
    }

    /// Combines each group's rows with `adder(aggregate, value)`, taking a row that leaves
    /// the group back out with `subtractor(aggregate, value)`; a group's first row is its first
    /// aggregate (Kafka's `KGroupedTable.reduce`).
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<V>,
    ) -> KTable<K, V> {
        self.fold(
            move |_, change, aggregate| {
                let aggregate = match (aggregate, change.old) {
                    (Some(aggregate), Some(old)) => Some(subtractor(aggregate, old)),
                    (aggregate, _) => aggregate,
                };
                match (aggregate, change.new) {
                    (Some(aggregate), Some(new)) => Some(adder(aggregate, new)),
                    (None, new) => new,
                    (aggregate, None) => aggregate,
                }
            },
            materialized,
            "reduce",
        )
    }

    /// Folds each group's rows into an aggregate: `initializer()` for a new group, then
    /// `adder(key, value, aggregate)` for a row that joins it and `subtractor(key, value,
    /// aggregate)` for one that leaves it (Kafka's `KGroupedTable.aggregate`).
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<VA>,
    ) -> KTable<K, VA> {
        self.fold(
            move |key, change, aggregate| {
                let mut aggregate = aggregate;
                if let Some(old) = change.old {
                    let current = aggregate.unwrap_or_else(&initializer);
                    aggregate = Some(subtractor(key, old, current));
                }
                if let Some(new) = change.new {
                    let current = aggregate.unwrap_or_else(&initializer);
                    aggregate = Some(adder(key, new, current));
                }
                aggregate
            },
            materialized,
            "aggregate",
        )
    }

    fn fold<VA: Data>(
        &self,
        fold: impl Fn(&K, Change<V>, Option<VA>) -> Option<VA> + Send + Sync + 'static,
        materialized: Materialized<VA>,
        what: &str,
    ) -> KTable<K, VA> {
        fold_into_store(
            &self.state,
            &self.children,
            &self.key,
            &self.sources,
            materialized,
            ("KTABLE-AGGREGATE-STATE-STORE", &format!("table {what}")),
            fold,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::StringSerde;

    #[test]
    fn table_updates_round_trip_through_their_repartition_format() {
        let serde = ChangeSerde {
            inner: Arc::new(StringSerde),
        };
        for change in [
            Change {
                new: Some("b".to_string()),
                old: Some("a".to_string()),
            },
            Change {
                new: None,
                old: Some("gone".to_string()),
            },
            Change {
                new: Some(String::new()),
                old: None,
            },
        ] {
            let bytes = serde.serialize("t", &change).unwrap();
            assert_eq!(serde.deserialize("t", bytes.as_ref()).unwrap(), change);
        }
        for bad in [&b""[..], &[7, 0, 0, 0, 0][..], &[1, 0, 0, 0, 9, b'x'][..]] {
            let bytes = Bytes::copy_from_slice(bad);
            assert!(serde.deserialize("t", Some(&bytes)).is_err(), "{bad:?}");
        }
    }
}
