//! State stores: what stateful operators remember, per task, backed by a changelog topic.
//!
//! A store holds serialised keys and values (as Kafka Streams' stores do), ordered by key bytes.
//! Every write is also sent to the store's changelog, the compacted topic
//! `<application.id>-<store>-changelog`, on the partition of the task that owns it; when a task
//! starts on a new instance (or its local state is gone), its store is rebuilt by reading that
//! partition from the beginning. Typed reads go through [`ReadOnlyKeyValueStore`].

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::serdes::{self, Serde};

/// The changelog topic of `store` in application `application_id`, as Kafka Streams names it.
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// An in-memory key-value store of one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValueStore {
    entries: BTreeMap<Bytes, Bytes>,
}

impl KeyValueStore {
    /// The value stored for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.entries.get(key)
    }

    /// Stores `value` for `key`, or deletes `key` when `value` is None.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        match value {
            Some(value) => {
                self.entries.insert(key, value);
            }
            None => {
                self.entries.remove(&key);
            }
        }
    }

    /// Every entry, in key-byte order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.entries.iter()
    }

    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A typed, read-only view of a key-value store (Kafka's `ReadOnlyKeyValueStore`), for
/// interactive queries and tests.
pub struct ReadOnlyKeyValueStore<'a, K, V> {
    name: String,
    store: Option<&'a KeyValueStore>,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<'a, K, V> ReadOnlyKeyValueStore<'a, K, V> {
    pub(crate) fn new(
        name: &str,
        store: Option<&'a KeyValueStore>,
        key: Arc<dyn Serde<K>>,
        value: Arc<dyn Serde<V>>,
    ) -> ReadOnlyKeyValueStore<'a, K, V> {
        ReadOnlyKeyValueStore {
            name: name.to_string(),
            store,
            key,
            value,
            _types: PhantomData,
        }
    }

    /// The value of `key`, if the store has one.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let Some(store) = self.store else {
            return Ok(None);
        };
        let Some(bytes) = serdes::serialize(&*self.key, &self.name, "key", key)? else {
            return Ok(None);
        };
        store
            .get(&bytes)
            .map(|value| serdes::deserialize(&*self.value, &self.name, "value", Some(value)))
            .transpose()
    }

    /// Every entry, in the order of the keys' bytes.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        let Some(store) = self.store else {
            return Ok(Vec::new());
        };
        store
            .iter()
            .map(|(key, value)| {
                Ok((
                    serdes::deserialize(&*self.key, &self.name, "key", Some(key))?,
                    serdes::deserialize(&*self.value, &self.name, "value", Some(value))?,
                ))
            })
            .collect()
    }

    /// How many keys the store holds.
    pub fn approximate_num_entries(&self) -> usize {
        self.store.map_or(0, KeyValueStore::len)
    }
}
