//! `GlobalKTable`: a table every instance of an application holds whole, from every partition
//! of its topic, so that a stream joins it by any key it derives from its records, with no
//! co-partitioning (Kafka's `GlobalKTable` and `KStream.join(GlobalKTable, KeyValueMapper,
//! ValueJoiner)`).
//!
//! The table's store keeps the topic's key and value bytes as they are; its topic is its
//! changelog (nothing else is logged). An instance reads every partition of the topic to its end
//! before its stream threads start (Kafka's global bootstrap), then keeps reading it in a
//! global thread of its own; every task of the instance looks keys up in that one store.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Result;
use crate::kstream::{Data, KStream};
use crate::ktable::Materialized;
use crate::serdes::{self, Serde};
use crate::store::SharedStore;
use crate::topology::{Consumed, RawRecord, Record, StreamsBuilder, TaskContext};

/// The global stores of an instance, by store name (shared by all its tasks).
pub type GlobalStores = Arc<BTreeMap<String, SharedStore>>;

/// A table replicated whole to every instance (Kafka's `GlobalKTable`).
pub struct GlobalKTable<K, V> {
    store: Arc<str>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K, V> GlobalKTable<K, V> {
    /// The name of the table's store (for interactive queries).
    pub fn store_name(&self) -> &str {
        &self.store
    }

    /// The current value of `key`, serialised as the topic's keys are.
    fn lookup(&self, ctx: &TaskContext, key: &K) -> Result<Option<V>> {
        let Some(key_bytes) = serdes::serialize(&*self.key, &self.store, "key", key)? else {
            return Ok(None);
        };
        ctx.get_global(&self.store, &key_bytes, &*self.value)
    }
}

impl StreamsBuilder {
    /// A global table of `topic` (Kafka's `builder.globalTable`): every instance holds all of
    /// it. Records without a key are skipped; a tombstone deletes its key.
    pub fn global_table<K, V>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<V>,
    ) -> GlobalKTable<K, V> {
        let store: Arc<str> = materialized
            .name
            .clone()
            .unwrap_or_else(|| self.state().generated_name(&format!("{topic}-STATE-STORE")))
            .into();
        self.state().add_global(topic, &store);
        GlobalKTable {
            store,
            key: consumed.key,
            value: materialized.value,
        }
    }
}

/// Applies one record of a global table's topic to its store in `globals`.
pub(crate) fn apply(globals: &GlobalStores, store: &str, record: &RawRecord) {
    let (Some(target), Some(key)) = (globals.get(store), &record.key) else {
        return;
    };
    target.write().put(key.clone(), record.value.clone());
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Each record joined with the global table's value for the key `key_selector` derives
    /// from it, when the table has one (Kafka's KStream–GlobalKTable inner `join`). No
    /// co-partitioning is needed: every instance holds the whole table.
    pub fn join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&K, V, VG) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.global_join(table, key_selector, "join", move |key, value, found| {
            found.map(|found| joiner(key, value, found))
        })
    }

    /// Each record joined with the global table's value for its derived key, or `None` when
    /// there is none (Kafka's KStream–GlobalKTable `leftJoin`).
    pub fn left_join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&K, V, Option<VG>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.global_join(
            table,
            key_selector,
            "left_join",
            move |key, value, found| Some(joiner(key, value, found)),
        )
    }

    fn global_join<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        what: &str,
        join: impl Fn(&K, V, Option<VG>) -> Option<VR> + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let table = GlobalKTable {
            store: table.store.clone(),
            key: table.key.clone(),
            value: table.value.clone(),
        };
        let out = self
            .state
            .new_children::<K, VR>(format!("{what} with global table {}", table.store));
        let downstream = out.clone();
        self.children
            .add(Arc::new(move |ctx, record: Record<K, V>| {
                let table_key = key_selector(&record.key, &record.value);
                let found = match table.lookup(ctx, &table_key) {
                    Ok(found) => found,
                    Err(err) => return ctx.errors.push(err),
                };
                if let Some(value) = join(&record.key, record.value, found) {
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
        KStream::new(self.state.clone(), out)
            .with_sources(self.sources.to_vec())
            .with_key_changed(self.key_changed)
    }
}
