//! Grouping and aggregation: `KGroupedStream` (`count`, `reduce`, `aggregate`) and `KTable`, a
//! changelog stream read as a table — the latest value of each key, kept in a state store.
//!
//! An aggregation keeps its running value per key in a key-value store of the task (serialised
//! with the grouping's key serde and the aggregate's value serde), logs every update to the
//! store's changelog, and forwards the new value downstream: Kafka Streams' emit-on-update with
//! record caches off (`cache.max.bytes.buffering=0`).

use std::sync::Arc;

use crate::kstream::{Data, KStream};
use crate::serdes::{self, I64Serde, Serde};
use crate::topology::{BuilderState, Children, Record, TopicRef};

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
}

impl<V> Materialized<V> {
    /// Values stored with `value`; the store gets a generated name.
    pub fn with(value: impl Serde<V> + 'static) -> Materialized<V> {
        Materialized {
            name: None,
            value: Arc::new(value),
        }
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
        let state = self.stream.state.clone();
        let store = state.store_named(materialized.name.clone(), "KSTREAM-AGGREGATE-STATE-STORE");
        let out = state.new_children::<K, VA>(format!("{what} into store {store}"));
        let downstream = out.clone();
        let key_serde = self.key.clone();
        let value_serde = materialized.value;
        let value_serde_for_table = value_serde.clone();
        let store_name = store.clone();
        self.stream
            .children
            .add(Arc::new(move |ctx, record: Record<K, V>| {
                // Kafka Streams skips records without key bytes in stateful operators.
                let Some(key_bytes) = ctx.store_key(&*key_serde, &store_name, &record.key) else {
                    return;
                };
                let previous = match ctx.get_stored(&store_name, &key_bytes, &*value_serde) {
                    Ok(previous) => previous,
                    Err(err) => return ctx.errors.push(err),
                };
                let aggregate = fold(&record.key, record.value, previous);
                match serdes::serialize(&*value_serde, &store_name, "value", &aggregate) {
                    Ok(bytes) => ctx.put_logged(&store_name, key_bytes, bytes, record.timestamp),
                    Err(err) => return ctx.errors.push(err),
                }
                downstream.forward(
                    ctx,
                    Record {
                        key: record.key,
                        value: aggregate,
                        timestamp: record.timestamp,
                        headers: record.headers,
                    },
                );
            }));
        KTable {
            state,
            children: out,
            store,
            key: self.key.clone(),
            value: value_serde_for_table,
            sources: self.stream.sources.clone(),
        }
    }
}

/// A table: the latest value of each key, updated by a changelog stream (Kafka's `KTable`).
pub struct KTable<K, V> {
    pub(crate) state: Arc<BuilderState>,
    pub(crate) children: Arc<Children<K, V>>,
    pub(crate) store: Arc<str>,
    /// How the store's keys and values are serialised (for lookups by joins).
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
    /// The topics the table's updates come from (for co-partitioning checks).
    pub(crate) sources: Arc<Vec<TopicRef>>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// The name of the store that holds the table (for interactive queries).
    pub fn store_name(&self) -> &str {
        &self.store
    }

    /// The table's updates as a stream: one record per update, with the new value.
    pub fn to_stream(&self) -> KStream<K, V> {
        let out = self.state.new_children::<K, V>("to_stream".to_string());
        let downstream = out.clone();
        self.children
            .add(Arc::new(move |ctx, record| downstream.forward(ctx, record)));
        KStream::new(self.state.clone(), out)
    }
}
