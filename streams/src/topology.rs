//! The topology: what a streams application computes, built once with [`StreamsBuilder`] and
//! shared by every task that runs it.
//!
//! A topology is a graph of nodes. Each source node reads one topic and deserialises its records;
//! each processor node is a closure that receives a typed [`Record`] and forwards what it makes to
//! its children; each sink node serialises records to a topic. Nodes are immutable and shared
//! (`Send + Sync`) between the tasks of an application; everything a task changes lives in its
//! [`TaskContext`], which the runtime (or the test driver) passes down the graph with each record.
//!
//! Records travel typed and unboxed: a node's children are closures over the node's output type,
//! called directly. A node with several children clones the record for all but the last.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxHashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Result, StreamsError};
use crate::kstream::KStream;
use crate::ktable::Change;
use crate::serdes::{self, Serde};
use crate::store::{changelog_topic, SharedStore};

/// A record inside the topology: a typed key and value with the timestamp and headers it
/// carries (processors keep both unless they change them).
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// The record's timestamp in ms (from the input record or its timestamp extractor).
    pub timestamp: i64,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A record as a topic holds it: the input of a source node (the client's consumer record, so
/// the runtime hands fetched records on as they are).
pub type RawRecord = sluice_log::client::consumer::ConsumerRecord;

/// A record on its way out of the topology, serialised, to be produced by the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    /// Destination topic (shared: one allocation per sink, not per record).
    pub topic: Arc<str>,
    /// Partition chosen by the sink's partitioner; None for the producer's default
    /// (murmur2 of the key).
    pub partition: Option<i32>,
    /// Key bytes.
    pub key: Option<Bytes>,
    /// Value bytes.
    pub value: Option<Bytes>,
    /// Timestamp in ms.
    pub timestamp: i64,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What a task owns while it processes: the input record's position, the outputs it made, and
/// the errors its sinks met. Passed down the graph with each record.
#[derive(Debug, Default)]
pub struct TaskContext {
    application_id: Arc<str>,
    /// The task's partition: the partition of its input topics it processes, and of its
    /// stores' changelogs.
    task_partition: i32,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    stream_time: i64,
    /// Stream time of each input topic of the task.
    stream_times: FxHashMap<Arc<str>, i64>,
    partition_counts: HashMap<String, i32>,
    /// (Hashed with Fx: stateful operators look their store up several times per record.)
    stores: FxHashMap<String, StoreSlot>,
    /// Internal topics' full names, by suffix (made once per task, not per record).
    internal_topics: BTreeMap<String, Arc<str>>,
    pub(crate) outputs: Vec<OutputRecord>,
    pub(crate) errors: Vec<StreamsError>,
    /// Records dropped because their window had closed, not yet counted by the runtime.
    dropped_late: u64,
    /// Times that operators keep per task (a join's stream time over both its inputs), by
    /// operator name: not logged, as Kafka's are not; they start again after a restart.
    operator_times: FxHashMap<Arc<str>, i64>,
    /// How many bytes the task's record caches may hold before they are flushed (0: no
    /// caching, every update goes on at once).
    cache_max_bytes: usize,
    /// How many bytes they hold now.
    cached_bytes: usize,
    /// The largest timestamp the task has seen on any input (what stream-time punctuations
    /// follow).
    task_time: i64,
    /// The wall-clock time the runtime (or the test driver) last set, in ms.
    wall_clock_ms: i64,
    /// The task's instances of the topology's custom processors, by node.
    processors: Processors,
    /// Their punctuation schedules.
    schedules: Vec<Schedule>,
    /// The instance's global tables' stores, shared by all its tasks.
    globals: Option<crate::global::GlobalStores>,
}

/// A task's custom processors (any type: each node knows its own).
#[derive(Default)]
struct Processors(HashMap<usize, Box<dyn std::any::Any + Send>>);

impl std::fmt::Debug for Processors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A punctuation schedule of a processor node.
#[derive(Debug, Clone)]
struct Schedule {
    id: usize,
    node: usize,
    interval: i64,
    kind: crate::processor::PunctuationType,
    next: i64,
    cancelled: bool,
}

/// A task's store and the name of its changelog.
#[derive(Debug)]
struct StoreSlot {
    store: SharedStore,
    changelog: Arc<str>,
}

/// An update taken out of a record cache: written to the store and its changelog, to be
/// forwarded: key, new value, the value it replaced in the store, timestamp and headers.
pub(crate) struct FlushedUpdate {
    pub(crate) key: Bytes,
    pub(crate) new: Option<Bytes>,
    pub(crate) old: Option<Bytes>,
    pub(crate) timestamp: i64,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
}

impl TaskContext {
    /// The context of the task of `application_id` that processes partition `task_partition`.
    pub fn new(application_id: &str, task_partition: i32) -> TaskContext {
        TaskContext {
            application_id: application_id.into(),
            task_partition,
            ..TaskContext::default()
        }
    }

    /// The full name of internal topic `suffix`: `<application.id>-<suffix>`.
    pub(crate) fn internal_topic(&mut self, suffix: &str) -> Arc<str> {
        if let Some(name) = self.internal_topics.get(suffix) {
            return name.clone();
        }
        let name: Arc<str> = internal_topic(&self.application_id, suffix).into();
        self.internal_topics
            .insert(suffix.to_string(), name.clone());
        name
    }

    /// Counts a record dropped for a closed window.
    pub(crate) fn late_record_dropped(&mut self) {
        self.dropped_late += 1;
    }

    /// How many records were dropped for closed windows since the last call.
    pub fn take_dropped_records(&mut self) -> u64 {
        std::mem::take(&mut self.dropped_late)
    }

    /// The partition this task processes.
    pub fn task_partition(&self) -> i32 {
        self.task_partition
    }

    /// The task's store `name`, if it has written to it or restored it.
    pub fn store(&self, name: &str) -> Option<SharedStore> {
        self.stores.get(name).map(|slot| slot.store.clone())
    }

    /// The task's store `name`, created empty if the task has not used it yet (for queries).
    pub(crate) fn shared_store(&mut self, name: &str) -> Option<SharedStore> {
        self.slot(name).map(|slot| slot.store.clone())
    }

    /// The bytes a store keeps `key` under, serialised with `serde`; None when the key has no
    /// bytes (Kafka Streams skips such records in stateful operators) or does not serialise
    /// (then the error is the task's).
    pub(crate) fn store_key<K>(
        &mut self,
        serde: &dyn Serde<K>,
        store: &str,
        key: &K,
    ) -> Option<Bytes> {
        match serdes::serialize(serde, store, "key", key) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.errors.push(err);
                None
            }
        }
    }

    /// Lets the task's record caches hold up to `bytes` (0 turns caching off).
    pub fn set_cache_max_bytes(&mut self, bytes: usize) {
        self.cache_max_bytes = bytes;
    }

    /// Whether the task's record caches hold more than they may.
    pub(crate) fn cache_full(&self) -> bool {
        self.cache_max_bytes > 0 && self.cached_bytes > self.cache_max_bytes
    }

    /// Whether an operator whose `Materialized` allows caching caches its updates now.
    pub(crate) fn caching(&self, allowed: bool) -> bool {
        allowed && self.cache_max_bytes > 0
    }

    /// For a cached aggregation: replaces the value of each of `keys` in store `name` with
    /// `fold(its value)` (None deletes), into the record cache, under one lock of the store
    /// (the hot path of aggregations: no forward, no changelog write until the flush).
    pub(crate) fn fold_cached<V>(
        &mut self,
        name: &str,
        keys: impl IntoIterator<Item = Bytes>,
        serde: &dyn Serde<V>,
        (timestamp, headers): (i64, &[(String, Option<Bytes>)]),
        mut fold: impl FnMut(Option<V>) -> Option<V>,
    ) -> Result<()> {
        let Some(slot) = self.slot(name) else {
            return Ok(());
        };
        let mut store = slot.store.write();
        let mut grown = 0isize;
        let mut outcome = Ok(());
        for key in keys {
            let previous = store
                .get(&key)
                .map(|bytes| serdes::deserialize(serde, name, "value", Some(bytes)))
                .transpose();
            let update = previous.and_then(|previous| match fold(previous) {
                Some(value) => serdes::serialize(serde, name, "value", &value),
                None => Ok(None),
            });
            match update {
                Ok(bytes) => grown += store.cache(key, bytes, timestamp, headers),
                Err(err) => {
                    outcome = Err(err);
                    break;
                }
            }
        }
        drop(store);
        self.cached_bytes = self.cached_bytes.saturating_add_signed(grown);
        outcome
    }

    /// Empties store `name`'s record cache into the store and its changelog, oldest update
    /// first; returns the updates, to be forwarded.
    pub(crate) fn flush_cache(&mut self, name: &str) -> Vec<FlushedUpdate> {
        let partition = self.task_partition;
        let Some(slot) = self.stores.get_mut(name) else {
            return Vec::new();
        };
        let (drained, freed) = slot.store.write().drain_cache();
        self.cached_bytes = self.cached_bytes.saturating_sub(freed);
        let mut flushed = Vec::with_capacity(drained.len());
        for (key, update, old) in drained {
            self.outputs.push(OutputRecord {
                topic: slot.changelog.clone(),
                partition: Some(partition),
                key: Some(key.clone()),
                value: update.value.clone(),
                timestamp: update.timestamp,
                headers: Vec::new(),
            });
            flushed.push(FlushedUpdate {
                key,
                new: update.value,
                old,
                timestamp: update.timestamp,
                headers: update.headers,
            });
        }
        flushed
    }

    /// Gives the task the instance's global stores.
    pub fn set_global_stores(&mut self, globals: crate::global::GlobalStores) {
        self.globals = Some(globals);
    }

    /// The global store `name`.
    pub(crate) fn global_store(&self, name: &str) -> Option<SharedStore> {
        self.globals.as_ref().and_then(|g| g.get(name)).cloned()
    }

    /// The value under `key` in global store `name`, read with `serde`.
    pub(crate) fn get_global<V>(
        &self,
        name: &str,
        key: &[u8],
        serde: &dyn Serde<V>,
    ) -> Result<Option<V>> {
        let Some(store) = self.globals.as_ref().and_then(|g| g.get(name)) else {
            return Ok(None);
        };
        let store = store.read();
        store
            .get(key)
            .map(|bytes| serdes::deserialize(serde, name, "value", Some(bytes)))
            .transpose()
    }

    /// The time operator `name` keeps in this task (`i64::MIN` before its first record).
    pub(crate) fn operator_time(&mut self, name: &Arc<str>) -> &mut i64 {
        self.operator_times.entry(name.clone()).or_insert(i64::MIN)
    }

    /// The entries of store `name` from key `from` on, in key order, as long as `keep` holds
    /// for their keys (copied out, so the caller may write to the store while it goes
    /// through them).
    pub(crate) fn scan_while(
        &self,
        name: &str,
        from: &[u8],
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Vec<(Bytes, Bytes)> {
        let Some(slot) = self.stores.get(name) else {
            return Vec::new();
        };
        let store = slot.store.read();
        store
            .range_from(from)
            .take_while(|(key, _)| keep(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// The keys of store `name` for which `matches` holds (a whole scan, without copying the
    /// others or any value).
    pub(crate) fn keys_where(
        &self,
        name: &str,
        mut matches: impl FnMut(&[u8]) -> bool,
    ) -> Vec<Bytes> {
        let Some(slot) = self.stores.get(name) else {
            return Vec::new();
        };
        let store = slot.store.read();
        store
            .iter()
            .filter(|(key, _)| matches(key))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Whether store `name` holds `key`.
    pub(crate) fn contains(&self, name: &str, key: &[u8]) -> bool {
        self.stores
            .get(name)
            .is_some_and(|slot| slot.store.read().get(key).is_some())
    }

    /// The value stored under `key` in store `name`, read with `serde`.
    pub(crate) fn get_stored<V>(
        &self,
        name: &str,
        key: &[u8],
        serde: &dyn Serde<V>,
    ) -> Result<Option<V>> {
        let Some(slot) = self.stores.get(name) else {
            return Ok(None);
        };
        // A cached update is the latest value (a cached delete: none). Read in place: a
        // clone of the bytes could cost an allocation.
        let store = slot.store.read();
        store
            .get(key)
            .map(|bytes| serdes::deserialize(serde, name, "value", Some(bytes)))
            .transpose()
    }

    /// The task's store `name`, created empty on first use.
    fn slot(&mut self, name: &str) -> Option<&mut StoreSlot> {
        if !self.stores.contains_key(name) {
            let changelog = changelog_topic(&self.application_id, name).into();
            self.stores.insert(
                name.to_string(),
                StoreSlot {
                    store: SharedStore::default(),
                    changelog,
                },
            );
        }
        self.stores.get_mut(name)
    }

    /// Puts `store` in the task's slot `name` (a persistent store opened from disk), replacing
    /// what was there.
    pub fn install_store(&mut self, name: &str, store: crate::store::KeyValueStore) {
        if let Some(slot) = self.slot(name) {
            *slot.store.write() = store;
        }
    }

    /// Writes the persistent stores' changes since the last commit to disk, each with its
    /// checkpoint from `checkpoints` (store → next changelog offset) when it has one.
    pub(crate) fn persist_stores(&mut self, checkpoints: &HashMap<String, i64>) -> Result<()> {
        for (name, slot) in &self.stores {
            let mut store = slot.store.write();
            if store.is_persistent() {
                store.persist(checkpoints.get(name).copied())?;
            }
        }
        Ok(())
    }

    /// Writes persistent store `name`'s changes to disk with the checkpoint `next_offset`.
    pub(crate) fn persist_store(&mut self, name: &str, next_offset: i64) -> Result<()> {
        match self.stores.get(name) {
            Some(slot) => slot.store.write().persist(Some(next_offset)),
            None => Ok(()),
        }
    }

    /// Empties store `name` (in memory and on disk), before restoring it from the start.
    pub(crate) fn wipe_store(&mut self, name: &str) -> Result<()> {
        match self.stores.get(name) {
            Some(slot) => slot.store.write().wipe(),
            None => Ok(()),
        }
    }

    /// Writes `key` → `value` (None deletes) to the store `name` and to its changelog.
    pub(crate) fn put_logged(
        &mut self,
        name: &str,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
    ) {
        let partition = self.task_partition;
        let Some(slot) = self.slot(name) else {
            return;
        };
        slot.store.write().put(key.clone(), value.clone());
        let topic = slot.changelog.clone();
        self.outputs.push(OutputRecord {
            topic,
            partition: Some(partition),
            key: Some(key),
            value,
            timestamp,
            headers: Vec::new(),
        });
    }

    /// Applies one changelog record to the store `name` while restoring (not logged again).
    pub fn restore(&mut self, name: &str, key: Bytes, value: Option<Bytes>) {
        if let Some(slot) = self.slot(name) {
            slot.store.write().put(key, value);
        }
    }

    /// The topic of the input record being processed.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The stream time of the current record's input topic in this task: the largest timestamp
    /// seen on it so far (Kafka Streams' notion; it only moves forward).
    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }

    /// The number of partitions of `topic` as the runtime knows it (1 when unknown).
    pub fn partition_count(&self, topic: &str) -> i32 {
        self.partition_counts
            .get(topic)
            .copied()
            .unwrap_or(1)
            .max(1)
    }

    /// Tells the context how many partitions an output topic has (for sink partitioners).
    pub fn set_partition_count(&mut self, topic: &str, partitions: i32) {
        self.partition_counts.insert(topic.to_string(), partitions);
    }

    /// Takes the records the sinks produced so far.
    pub fn take_outputs(&mut self) -> Vec<OutputRecord> {
        std::mem::take(&mut self.outputs)
    }

    /// The largest timestamp the task has seen on any input (`i64::MIN` before its first).
    pub fn task_stream_time(&self) -> i64 {
        if self.stream_times.is_empty() {
            i64::MIN
        } else {
            self.task_time
        }
    }

    /// The wall-clock time punctuations see, in ms.
    pub fn wall_clock_ms(&self) -> i64 {
        self.wall_clock_ms
    }

    /// Sets the wall-clock time (the runtime's clock, or the test driver's).
    pub fn set_wall_clock_ms(&mut self, now_ms: i64) {
        self.wall_clock_ms = now_ms;
    }

    pub(crate) fn take_processor(&mut self, node: usize) -> Option<Box<dyn std::any::Any + Send>> {
        self.processors.0.remove(&node)
    }

    pub(crate) fn put_processor(&mut self, node: usize, processor: Box<dyn std::any::Any + Send>) {
        self.processors.0.insert(node, processor);
    }

    pub(crate) fn add_schedule(
        &mut self,
        node: usize,
        interval: i64,
        kind: crate::processor::PunctuationType,
        now: i64,
    ) -> crate::processor::ScheduleId {
        let id = self.schedules.len();
        self.schedules.push(Schedule {
            id,
            node,
            interval,
            kind,
            // Before any record, stream time has no value: the first punctuation waits for
            // one interval past the first record.
            next: if now == i64::MIN {
                i64::MIN
            } else {
                now.saturating_add(interval)
            },
            cancelled: false,
        });
        crate::processor::ScheduleId(id)
    }

    pub(crate) fn cancel_schedule(&mut self, schedule: crate::processor::ScheduleId) {
        if let Some(found) = self.schedules.get_mut(schedule.0) {
            found.cancelled = true;
        }
    }

    /// The schedules of `kind` due at `now`, each moved to its next time past `now` (a
    /// schedule fires once per advance, however many intervals the advance spans).
    fn due_schedules(
        &mut self,
        kind: crate::processor::PunctuationType,
        now: i64,
    ) -> Vec<(usize, crate::processor::ScheduleId)> {
        let mut due = Vec::new();
        for schedule in &mut self.schedules {
            if schedule.cancelled || schedule.kind != kind || now == i64::MIN {
                continue;
            }
            if schedule.next == i64::MIN {
                // A stream-time schedule made before the first record starts with it.
                schedule.next = now.saturating_add(schedule.interval);
                continue;
            }
            if now >= schedule.next {
                due.push((schedule.node, crate::processor::ScheduleId(schedule.id)));
                let behind = (now - schedule.next) / schedule.interval + 1;
                schedule.next = schedule
                    .next
                    .saturating_add(behind.saturating_mul(schedule.interval));
            }
        }
        due
    }

    fn enter(&mut self, record: &RawRecord, timestamp: i64) {
        self.task_time = if self.stream_times.is_empty() {
            timestamp
        } else {
            self.task_time.max(timestamp)
        };
        if !Arc::ptr_eq(&self.topic, &record.topic) && self.topic != record.topic {
            self.topic = record.topic.clone();
        }
        self.partition = record.partition;
        self.offset = record.offset;
        // Stream time is kept per input topic: a repartition topic's records (the input of a
        // later part of the topology) must not find their windows closed by the time the
        // earlier part has reached (Kafka runs those parts as separate tasks).
        let time = match self.stream_times.get_mut(&*record.topic) {
            Some(time) => time,
            None => self
                .stream_times
                .entry(record.topic.clone())
                .or_insert(i64::MIN),
        };
        *time = (*time).max(timestamp);
        self.stream_time = *time;
    }
}

/// A topic a stream comes from: a user's, or an internal one (named without the application's
/// prefix until the application runs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TopicRef {
    User(String),
    Internal(String),
}

impl TopicRef {
    fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicRef::User(topic) => topic.clone(),
            TopicRef::Internal(suffix) => internal_topic(application_id, suffix),
        }
    }
}

/// The name of internal topic `suffix` of application `application_id`.
pub fn internal_topic(application_id: &str, suffix: &str) -> String {
    format!("{application_id}-{suffix}")
}

/// A processor node over records of `K` and `V`.
pub(crate) type Node<K, V> = Arc<dyn Fn(&mut TaskContext, Record<K, V>) + Send + Sync>;

/// The children of a node: collected while the topology is built, then frozen (read without a
/// lock for every record).
pub(crate) struct Children<K, V> {
    building: Mutex<Vec<Node<K, V>>>,
    frozen: OnceLock<Vec<Node<K, V>>>,
}

impl<K: Clone, V: Clone> Children<K, V> {
    pub(crate) fn new() -> Children<K, V> {
        Children {
            building: Mutex::new(Vec::new()),
            frozen: OnceLock::new(),
        }
    }

    pub(crate) fn add(&self, node: Node<K, V>) {
        self.building.lock().push(node);
    }

    /// Hands the record to every child, in the order they were attached.
    pub(crate) fn forward(&self, ctx: &mut TaskContext, record: Record<K, V>) {
        let Some(nodes) = self.frozen.get() else {
            return;
        };
        if let Some((last, rest)) = nodes.split_last() {
            for node in rest {
                node(ctx, record.clone());
            }
            last(ctx, record);
        }
    }
}

/// Freezes a node's children when the topology is built.
pub(crate) trait Freeze: Send + Sync {
    fn freeze(&self);
}

impl<K: Send + Sync, V: Send + Sync> Freeze for Children<K, V> {
    fn freeze(&self) {
        let nodes = std::mem::take(&mut *self.building.lock());
        let _ = self.frozen.set(nodes);
    }
}

/// A custom processor node's entry for its task: make and initialise its instance, and with
/// a due schedule, punctuate.
pub(crate) type ProcessorHook =
    Arc<dyn Fn(&mut TaskContext, Option<(crate::processor::ScheduleId, i64)>) + Send + Sync>;

/// Forwards the updates an operator's record cache held.
pub(crate) type Flusher = Arc<dyn Fn(&mut TaskContext) + Send + Sync>;

/// A source node: deserialises a topic's record and forwards it.
type SourceNode = Arc<dyn Fn(&mut TaskContext, &RawRecord) -> Result<()> + Send + Sync>;

/// A source node that takes a run of consecutive records of one partition of its topic at
/// once (see [`StreamsBuilder::batch_stream`]).
type BatchSourceNode = Arc<dyn Fn(&mut TaskContext, &[RawRecord]) -> Result<()> + Send + Sync>;

/// What a batch source's function makes of a run: output records, each with the index in the
/// run of the input record it came from, in order of that index.
pub type BatchOutput<K, V> = Vec<(usize, Record<K, V>)>;

/// The source node that reads records with `consumed` and hands them to `children`.
fn source_node<K, V>(children: Arc<Children<K, V>>, consumed: Arc<Consumed<K, V>>) -> SourceNode
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Arc::new(move |ctx, raw| {
        let key = serdes::deserialize(&*consumed.key, &raw.topic, "key", raw.key.as_ref())?;
        let value = serdes::deserialize(&*consumed.value, &raw.topic, "value", raw.value.as_ref())?;
        let timestamp = consumed
            .timestamp_extractor
            .as_ref()
            .map_or(raw.timestamp, |extract| extract(raw));
        ctx.enter(raw, timestamp);
        children.forward(
            ctx,
            Record {
                key,
                value,
                timestamp,
                headers: raw.headers.clone(),
            },
        );
        Ok(())
    })
}

/// Where the timestamp of an input record comes from (Kafka's `TimestampExtractor`).
pub type TimestampExtractor = Arc<dyn Fn(&RawRecord) -> i64 + Send + Sync>;

/// How a source reads a topic: the key and value serdes, and optionally a timestamp extractor
/// (Kafka's `Consumed`).
pub struct Consumed<K, V> {
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
    pub(crate) timestamp_extractor: Option<TimestampExtractor>,
}

impl<K, V> Consumed<K, V> {
    /// Reads keys with `key` and values with `value`; timestamps are the records' own.
    pub fn with(key: impl Serde<K> + 'static, value: impl Serde<V> + 'static) -> Consumed<K, V> {
        Consumed {
            key: Arc::new(key),
            value: Arc::new(value),
            timestamp_extractor: None,
        }
    }

    /// Takes each record's timestamp from `extractor` instead of the record's own.
    pub fn with_timestamp_extractor(
        mut self,
        extractor: impl Fn(&RawRecord) -> i64 + Send + Sync + 'static,
    ) -> Consumed<K, V> {
        self.timestamp_extractor = Some(Arc::new(extractor));
        self
    }
}

/// A sink's partitioner: `(key, value, partitions)` → partition (Kafka's `StreamPartitioner`).
pub type StreamPartitioner<K, V> = Arc<dyn Fn(&K, &V, i32) -> i32 + Send + Sync>;

/// How a sink writes a topic: serdes and optionally a partitioner (Kafka's `Produced`).
pub struct Produced<K, V> {
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
    pub(crate) partitioner: Option<StreamPartitioner<K, V>>,
}

impl<K, V> Produced<K, V> {
    /// Writes keys with `key` and values with `value`; partitions by the producer's default.
    pub fn with(key: impl Serde<K> + 'static, value: impl Serde<V> + 'static) -> Produced<K, V> {
        Produced {
            key: Arc::new(key),
            value: Arc::new(value),
            partitioner: None,
        }
    }

    /// Chooses each record's partition with `partitioner(key, value, partition_count)`.
    pub fn with_partitioner(
        mut self,
        partitioner: impl Fn(&K, &V, i32) -> i32 + Send + Sync + 'static,
    ) -> Produced<K, V> {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }
}

/// A batch source's node: `process` makes a run's outputs, each forwarded to `downstream`
/// with the task positioned at its input record.
pub(crate) fn batch_node<K, V>(
    downstream: Arc<Children<K, V>>,
    process: impl Fn(&TaskContext, &[RawRecord], &mut BatchOutput<K, V>) -> Result<()>
        + Send
        + Sync
        + 'static,
) -> BatchSourceNode
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Arc::new(move |ctx, run| {
        let mut outputs = Vec::new();
        process(ctx, run, &mut outputs)?;
        let mut outputs = outputs.into_iter().peekable();
        for (index, raw) in run.iter().enumerate() {
            ctx.enter(raw, raw.timestamp);
            while let Some((_, record)) = outputs.next_if(|(at, _)| *at <= index) {
                ctx.enter(raw, record.timestamp);
                downstream.forward(ctx, record);
            }
        }
        Ok(())
    })
}

/// What the builder has collected so far; shared by the builder and the streams it made.
#[derive(Default)]
pub(crate) struct BuilderState {
    sources: Mutex<Vec<(String, SourceNode)>>,
    batch_sources: Mutex<Vec<(String, BatchSourceNode)>>,
    sinks: Mutex<BTreeSet<String>>,
    /// The state stores the topology's operators keep, by name.
    stores: Mutex<BTreeSet<String>>,
    /// Sources of internal (repartition) topics, by the topic's name without the
    /// `<application.id>-` prefix that the runtime puts before it.
    internal_sources: Mutex<Vec<(String, SourceNode)>>,
    /// Batch sources of internal topics, likewise.
    internal_batch_sources: Mutex<Vec<(String, BatchSourceNode)>>,
    /// Mistakes found while building, reported by `build`.
    errors: Mutex<Vec<String>>,
    /// Groups of topics that must have as many partitions as each other (both sides of a
    /// join): checked when the application starts.
    copartitioned: Mutex<Vec<Vec<TopicRef>>>,
    /// For generated names (Kafka's `KSTREAM-AGGREGATE-STATE-STORE-0000000001`).
    next_index: std::sync::atomic::AtomicUsize,
    freezers: Mutex<Vec<Arc<dyn Freeze>>>,
    /// The operators with record caches, in the order they were added (upstream first, so
    /// that what one flush forwards into a later cache is flushed in the same round).
    flushers: Mutex<Vec<Flusher>>,
    /// Global tables: their topics' stores, by topic.
    globals: Mutex<BTreeMap<String, String>>,
    /// The stores kept on disk too.
    persistent_stores: Mutex<BTreeSet<String>>,
    /// Custom processor nodes, by node number.
    processor_hooks: Mutex<BTreeMap<usize, ProcessorHook>>,
    /// Stores added for processors (`add_state_store`), and the ones processors name.
    provided_stores: Mutex<BTreeSet<String>>,
    required_stores: Mutex<BTreeSet<String>>,
    /// One line per node, for [`Topology::describe`].
    description: Mutex<Vec<String>>,
}

impl BuilderState {
    /// Creates the children list of a new node, to be frozen at build time.
    pub(crate) fn new_children<K, V>(&self, what: String) -> Arc<Children<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let children = Arc::new(Children::new());
        self.freezers.lock().push(children.clone());
        self.description.lock().push(what);
        children
    }

    /// Registers the flush of a cached operator: it takes its store's cached updates and
    /// forwards them.
    pub(crate) fn add_flusher(&self, flusher: Flusher) {
        self.flushers.lock().push(flusher);
    }

    /// Registers the global table of `topic`, kept in store `store`.
    pub(crate) fn add_global(&self, topic: &str, store: &str) {
        if self.stores.lock().contains(store) {
            self.error(format!("the store name {store} is used twice"));
        }
        let mut globals = self.globals.lock();
        if globals.values().any(|s| s == store) {
            self.error(format!("the store name {store} is used twice"));
        }
        if globals
            .insert(topic.to_string(), store.to_string())
            .is_some()
        {
            self.error(format!("topic {topic} is read as two global tables"));
        }
    }

    /// A number for a new custom processor node.
    pub(crate) fn next_processor_node(&self) -> usize {
        self.next_index
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn add_processor_hook(&self, node: usize, hook: ProcessorHook) {
        self.processor_hooks.lock().insert(node, hook);
    }

    /// A store `add_state_store` registered for processors.
    pub(crate) fn provide_store(&self, name: &str) {
        self.provided_stores.lock().insert(name.to_string());
    }

    /// A store a processor names (it must be provided by `build` time).
    pub(crate) fn require_store(&self, name: &str) {
        self.required_stores.lock().insert(name.to_string());
    }

    pub(crate) fn add_sink(&self, topic: &str) {
        self.sinks.lock().insert(topic.to_string());
    }

    /// The name of an operator's store: the one given, or a generated one; registered.
    pub(crate) fn store_named(&self, name: Option<String>, prefix: &str) -> Arc<str> {
        let name: Arc<str> = name.unwrap_or_else(|| self.generated_name(prefix)).into();
        self.add_store(&name);
        name
    }

    /// The store an operator's `materialized` describes: named, registered, and marked
    /// persistent if asked.
    pub(crate) fn materialize<V>(
        &self,
        materialized: &crate::ktable::Materialized<V>,
        prefix: &str,
    ) -> Arc<str> {
        let store = self.store_named(materialized.name.clone(), prefix);
        if materialized.persistent {
            self.mark_persistent(&store);
        }
        store
    }

    /// Keeps store `name` on disk too.
    pub(crate) fn mark_persistent(&self, name: &str) {
        self.persistent_stores.lock().insert(name.to_string());
    }

    /// Registers a store; a name used twice is a build error.
    pub(crate) fn add_store(&self, name: &str) {
        if !self.stores.lock().insert(name.to_string()) {
            self.error(format!("the store name {name} is used twice"));
        }
    }

    /// Adds a source reading the internal topic `suffix` (named `<application.id>-<suffix>`
    /// when the application runs).
    pub(crate) fn add_internal_source<K, V>(
        &self,
        suffix: &str,
        children: Arc<Children<K, V>>,
        consumed: Consumed<K, V>,
    ) where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let source = source_node(children, Arc::new(consumed));
        self.internal_sources
            .lock()
            .push((suffix.to_string(), source));
    }

    /// A batch source of internal topic `suffix` (the topic is read, with or without
    /// record-at-a-time sources).
    pub(crate) fn add_internal_batch_source(&self, suffix: &str, source: BatchSourceNode) {
        self.internal_batch_sources
            .lock()
            .push((suffix.to_string(), source));
    }

    /// Requires `topics` to be co-partitioned.
    pub(crate) fn copartition(&self, topics: Vec<TopicRef>) {
        self.copartitioned.lock().push(topics);
    }

    pub(crate) fn error(&self, message: String) {
        self.errors.lock().push(message);
    }

    /// A name for an unnamed operator's store, numbered in creation order as Kafka does.
    pub(crate) fn generated_name(&self, prefix: &str) -> String {
        let index = self
            .next_index
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}-{index:010}")
    }
}

/// Builds a topology with the DSL (Kafka's `StreamsBuilder`): start from
/// [`StreamsBuilder::stream`], chain operators, end in sinks, then [`StreamsBuilder::build`].
#[derive(Default)]
pub struct StreamsBuilder {
    state: Arc<BuilderState>,
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> StreamsBuilder {
        StreamsBuilder::default()
    }

    /// A stream of the records of `topic`.
    pub fn stream<K, V>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.stream_of(&[topic], consumed)
    }

    /// One stream of the records of several topics.
    pub fn stream_of<K, V>(&self, topics: &[&str], consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let children = self
            .state
            .new_children::<K, V>(format!("source {}", topics.join(", ")));
        let consumed = Arc::new(consumed);
        for topic in topics {
            let source = source_node(children.clone(), consumed.clone());
            self.state.sources.lock().push((topic.to_string(), source));
        }
        KStream::new(self.state.clone(), children).with_sources(
            topics
                .iter()
                .map(|t| TopicRef::User(t.to_string()))
                .collect(),
        )
    }

    /// A stream of the records of `topic` made by `process` from a run of input records at a
    /// time: the records of one partition that one poll brought, in offset order (one record
    /// at a time under the test driver). `process` pushes its output records with the index
    /// of the input record each comes from, in order; downstream operators see each output
    /// with the task positioned at its input record, as a record-at-a-time source would
    /// leave it, and stream time advances over every input record, kept or not.
    ///
    /// For operators that are cheaper over many records than one by one (ksql evaluates its
    /// expressions over Arrow batches). `process` deserialises the records itself; an error
    /// it returns stops the stream thread (skip what should be skipped instead).
    pub fn batch_stream<K, V, F>(&self, topic: &str, process: F) -> KStream<K, V>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: Fn(&[RawRecord], &mut BatchOutput<K, V>) -> Result<()> + Send + Sync + 'static,
    {
        self.batch_source(topic, move |_, run, out| process(run, out))
    }

    /// Like [`StreamsBuilder::batch_stream`], and `process` may look keys up in `table` (as
    /// the task of the run holds it): a stream–table join of a run of records at a time.
    /// The topic and the table's sources must be co-partitioned (checked when the
    /// application starts), the records keyed as the table is.
    pub fn batch_stream_with_table<K, V, KT, VT, F>(
        &self,
        topic: &str,
        table: &crate::ktable::KTable<KT, VT>,
        process: F,
    ) -> KStream<K, V>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        KT: Clone + Send + Sync + 'static,
        VT: Clone + Send + Sync + 'static,
        F: Fn(
                &[RawRecord],
                &dyn Fn(&KT) -> Result<Option<VT>>,
                &mut BatchOutput<K, V>,
            ) -> Result<()>
            + Send
            + Sync
            + 'static,
    {
        self.state.copartition(
            std::iter::once(TopicRef::User(topic.to_string()))
                .chain(table.sources.iter().cloned())
                .collect(),
        );
        let getter = table.getter.clone();
        self.batch_source(topic, move |ctx, run, out| {
            let lookup = |key: &KT| getter(ctx, key);
            process(run, &lookup, out)
        })
    }

    fn batch_source<K, V>(
        &self,
        topic: &str,
        process: impl Fn(&TaskContext, &[RawRecord], &mut BatchOutput<K, V>) -> Result<()>
            + Send
            + Sync
            + 'static,
    ) -> KStream<K, V>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let children = self
            .state
            .new_children::<K, V>(format!("batch source {topic}"));
        let source = batch_node(children.clone(), process);
        self.state
            .batch_sources
            .lock()
            .push((topic.to_string(), source));
        KStream::new(self.state.clone(), children)
            .with_sources(vec![TopicRef::User(topic.to_string())])
    }

    /// A table of the latest value of each key of `topic` (Kafka's `builder.table`): every
    /// record upserts its key in the table's store (a tombstone deletes it) and goes on to the
    /// table's readers. Records without a key are skipped, as Kafka Streams does.
    pub fn table<K, V>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: crate::ktable::Materialized<V>,
    ) -> crate::ktable::KTable<K, V>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let store = self
            .state
            .materialize(&materialized, &format!("{topic}-STATE-STORE"));
        let children = self
            .state
            .new_children::<K, Change<V>>(format!("table {topic} into store {store}"));
        let consumed = Arc::new(consumed);
        let value_serde = materialized.value.clone();
        let (downstream, store_name, source_consumed) =
            (children.clone(), store.clone(), consumed.clone());
        let source: SourceNode = Arc::new(move |ctx, raw| {
            let Some(key_bytes) = raw.key.clone() else {
                return Ok(());
            };
            let consumed = &source_consumed;
            let key = serdes::deserialize(&*consumed.key, &raw.topic, "key", Some(&key_bytes))?;
            let value = match &raw.value {
                Some(_) => Some(serdes::deserialize(
                    &*consumed.value,
                    &raw.topic,
                    "value",
                    raw.value.as_ref(),
                )?),
                None => None,
            };
            let timestamp = consumed
                .timestamp_extractor
                .as_ref()
                .map_or(raw.timestamp, |extract| extract(raw));
            ctx.enter(raw, timestamp);
            let old = ctx.get_stored(&store_name, &key_bytes, &*value_serde)?;
            let stored = match &value {
                Some(value) => serdes::serialize(&*value_serde, &store_name, "value", value)?,
                None => None,
            };
            ctx.put_logged(&store_name, key_bytes, stored, timestamp);
            if value.is_some() || old.is_some() {
                downstream.forward(
                    ctx,
                    Record {
                        key,
                        value: Change { new: value, old },
                        timestamp,
                        headers: raw.headers.clone(),
                    },
                );
            }
            Ok(())
        });
        self.state.sources.lock().push((topic.to_string(), source));
        crate::ktable::KTable::materialized(
            self.state.clone(),
            children,
            store,
            consumed.key.clone(),
            materialized.value,
            Arc::new(vec![TopicRef::User(topic.to_string())]),
        )
    }

    pub(crate) fn state(&self) -> &BuilderState {
        &self.state
    }

    /// The topology: every node's children are fixed from now on.
    pub fn build(self) -> Result<Topology> {
        let missing: Vec<String> = self
            .state
            .required_stores
            .lock()
            .difference(&self.state.provided_stores.lock())
            .cloned()
            .collect();
        for store in missing {
            self.state.error(format!(
                "a processor names store {store}, which no add_state_store added"
            ));
        }
        let errors = std::mem::take(&mut *self.state.errors.lock());
        if !errors.is_empty() {
            return Err(StreamsError::Topology(errors.join("; ")));
        }
        let sources = std::mem::take(&mut *self.state.sources.lock());
        let batch_sources = std::mem::take(&mut *self.state.batch_sources.lock());
        let global_tables = std::mem::take(&mut *self.state.globals.lock());
        if let Some(topic) = global_tables.keys().find(|t| {
            sources.iter().any(|(source, _)| source == *t)
                || batch_sources.iter().any(|(source, _)| source == *t)
        }) {
            return Err(StreamsError::Topology(format!(
                "topic {topic} is read both as a global table and as a stream or table"
            )));
        }
        if sources.is_empty() && batch_sources.is_empty() {
            return Err(StreamsError::Topology(
                "the topology reads no topic: start it with StreamsBuilder::stream".into(),
            ));
        }
        for freezer in self.state.freezers.lock().iter() {
            freezer.freeze();
        }
        let mut by_topic: BTreeMap<String, Vec<SourceNode>> = BTreeMap::new();
        for (topic, source) in sources {
            by_topic.entry(topic).or_default().push(source);
        }
        let mut batches: BTreeMap<String, Vec<BatchSourceNode>> = BTreeMap::new();
        for (topic, source) in batch_sources {
            // Listed with the record-at-a-time sources too (maybe none): what the topology
            // reads is the keys of `sources`.
            by_topic.entry(topic.clone()).or_default();
            batches.entry(topic).or_default().push(source);
        }
        let mut internal: BTreeMap<String, Vec<SourceNode>> = BTreeMap::new();
        for (suffix, source) in std::mem::take(&mut *self.state.internal_sources.lock()) {
            internal.entry(suffix).or_default().push(source);
        }
        let mut internal_batches: BTreeMap<String, Vec<BatchSourceNode>> = BTreeMap::new();
        for (suffix, source) in std::mem::take(&mut *self.state.internal_batch_sources.lock()) {
            // Listed with the record-at-a-time ones too: what the application reads.
            internal.entry(suffix.clone()).or_default();
            internal_batches.entry(suffix).or_default().push(source);
        }
        Ok(Topology {
            sources: by_topic,
            batch_sources: batches,
            internal_sources: internal,
            internal_batch_sources: internal_batches,
            copartitioned: std::mem::take(&mut *self.state.copartitioned.lock()),
            sinks: self.state.sinks.lock().clone(),
            stores: self.state.stores.lock().clone(),
            flushers: std::mem::take(&mut *self.state.flushers.lock()),
            processor_hooks: std::mem::take(&mut *self.state.processor_hooks.lock()),
            persistent_stores: std::mem::take(&mut *self.state.persistent_stores.lock()),
            global_tables,
            description: self.state.description.lock().clone(),
        })
    }
}

/// A built topology (Kafka's `Topology`): immutable, shared by every task that runs it.
pub struct Topology {
    copartitioned: Vec<Vec<TopicRef>>,
    sources: BTreeMap<String, Vec<SourceNode>>,
    /// Sources that take runs of records, by topic (their topics are keys of `sources` too).
    batch_sources: BTreeMap<String, Vec<BatchSourceNode>>,
    /// Sources of internal topics, by name without the application's prefix.
    internal_sources: BTreeMap<String, Vec<SourceNode>>,
    /// Batch sources of internal topics, likewise (their topics are keys of
    /// `internal_sources` too).
    internal_batch_sources: BTreeMap<String, Vec<BatchSourceNode>>,
    sinks: BTreeSet<String>,
    stores: BTreeSet<String>,
    flushers: Vec<Flusher>,
    processor_hooks: BTreeMap<usize, ProcessorHook>,
    /// The stores kept on disk too.
    persistent_stores: BTreeSet<String>,
    /// Global tables: the store of each topic.
    global_tables: BTreeMap<String, String>,
    description: Vec<String>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("source_topics", &self.sources.keys().collect::<Vec<_>>())
            .field("sink_topics", &self.sinks)
            .finish()
    }
}

impl Topology {
    /// The topics the topology reads.
    pub fn source_topics(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// The topics the topology writes.
    pub fn sink_topics(&self) -> Vec<String> {
        self.sinks.iter().cloned().collect()
    }

    /// An error naming `name` unless the topology keeps a store of that name.
    pub(crate) fn check_store(&self, name: &str) -> Result<()> {
        if self.stores.contains(name) || self.is_global_store(name) {
            Ok(())
        } else {
            Err(StreamsError::Topology(format!(
                "the topology has no store {name}"
            )))
        }
    }

    /// Whether store `name` is kept on disk too (`Materialized::persistent`).
    pub fn is_persistent(&self, name: &str) -> bool {
        self.persistent_stores.contains(name)
    }

    /// Whether any store is kept on disk (the application then needs its state directory).
    pub fn has_persistent_stores(&self) -> bool {
        !self.persistent_stores.is_empty()
    }

    /// Whether `name` is a global table's store.
    pub(crate) fn is_global_store(&self, name: &str) -> bool {
        self.global_tables.values().any(|store| store == name)
    }

    /// The state stores the topology keeps (each with a changelog topic).
    pub fn stores(&self) -> Vec<String> {
        self.stores.iter().cloned().collect()
    }

    /// The nodes, one per line, in the order they were added.
    pub fn describe(&self) -> String {
        self.description.join("\n")
    }

    /// The groups of topics (as application `application_id` names them) that joins need
    /// co-partitioned: as many partitions each, keys placed alike.
    pub fn copartition_groups(&self, application_id: &str) -> Vec<Vec<String>> {
        self.copartitioned
            .iter()
            .map(|group| group.iter().map(|t| t.resolve(application_id)).collect())
            .collect()
    }

    /// The internal (repartition) topics, without the `<application.id>-` prefix.
    pub fn internal_topics(&self) -> Vec<String> {
        self.internal_sources.keys().cloned().collect()
    }

    /// Every topic application `application_id` reads: its sources and its internal topics.
    pub fn subscribed_topics(&self, application_id: &str) -> Vec<String> {
        self.sources
            .keys()
            .cloned()
            .chain(
                self.internal_sources
                    .keys()
                    .map(|suffix| internal_topic(application_id, suffix)),
            )
            .collect()
    }

    /// Whether application `application_id` reads `topic`.
    pub fn reads(&self, application_id: &str, topic: &str) -> bool {
        self.sources_of(application_id, topic).is_some() || self.global_tables.contains_key(topic)
    }

    /// The global tables: (topic, store) pairs.
    pub fn global_tables(&self) -> Vec<(String, String)> {
        self.global_tables
            .iter()
            .map(|(topic, store)| (topic.clone(), store.clone()))
            .collect()
    }

    /// Empty global stores for this topology's global tables, for an instance to share.
    pub fn new_global_stores(&self) -> crate::global::GlobalStores {
        Arc::new(
            self.global_tables
                .values()
                .map(|store| (store.clone(), SharedStore::default()))
                .collect(),
        )
    }

    /// Applies a record of a global table's topic to its store in `globals`; false if `topic`
    /// is not a global table's.
    pub fn apply_global(&self, globals: &crate::global::GlobalStores, record: &RawRecord) -> bool {
        match self.global_tables.get(&*record.topic) {
            Some(store) => {
                crate::global::apply(globals, store, record);
                true
            }
            None => false,
        }
    }

    fn sources_of(&self, application_id: &str, topic: &str) -> Option<&Vec<SourceNode>> {
        self.sources.get(topic).or_else(|| {
            topic
                .strip_prefix(application_id)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|suffix| self.internal_sources.get(suffix))
        })
    }

    /// Runs one input record through the graph; its outputs and sink errors collect in `ctx`.
    /// A record that does not deserialise is an error (the caller's handler decides).
    pub fn process(&self, ctx: &mut TaskContext, record: &RawRecord) -> Result<()> {
        if !self.global_tables.is_empty() {
            if let (Some(store), Some(globals)) =
                (self.global_tables.get(&*record.topic), &ctx.globals)
            {
                crate::global::apply(globals, store, record);
                return Ok(());
            }
        }
        let sources = self
            .sources_of(&ctx.application_id, &record.topic)
            .ok_or_else(|| StreamsError::UnknownTopic(record.topic.to_string()))?;
        for source in sources {
            source(ctx, record)?;
        }
        if let Some(batch_sources) = self.batch_sources_of(&ctx.application_id, &record.topic) {
            for source in batch_sources {
                source(ctx, std::slice::from_ref(record))?;
            }
        }
        if ctx.cache_full() {
            self.flush_caches(ctx)?;
        }
        match ctx.errors.drain(..).next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Whether application `application_id` reads `topic` with a batch source
    /// ([`StreamsBuilder::batch_stream`], [`crate::KStream::repartition_in_runs`]): the
    /// runtime then hands its records over in runs, through [`Topology::process_run`].
    pub fn reads_in_batches(&self, application_id: &str, topic: &str) -> bool {
        self.batch_sources_of(application_id, topic).is_some()
    }

    fn batch_sources_of(&self, application_id: &str, topic: &str) -> Option<&Vec<BatchSourceNode>> {
        self.batch_sources.get(topic).or_else(|| {
            if self.internal_batch_sources.is_empty() {
                return None;
            }
            topic
                .strip_prefix(application_id)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|suffix| self.internal_batch_sources.get(suffix))
        })
    }

    /// Runs a run of records of one partition of one topic (in offset order) through the
    /// graph: the batch sources take the run at once, the other sources of the topic take its
    /// records one by one after them.
    pub fn process_run(&self, ctx: &mut TaskContext, run: &[RawRecord]) -> Result<()> {
        let Some(first) = run.first() else {
            return Ok(());
        };
        if let Some(batch_sources) = self.batch_sources_of(&ctx.application_id, &first.topic) {
            for source in batch_sources {
                source(ctx, run)?;
            }
        }
        if let Some(sources) = self.sources_of(&ctx.application_id, &first.topic) {
            for record in run {
                for source in sources {
                    source(ctx, record)?;
                }
            }
        }
        if ctx.cache_full() {
            self.flush_caches(ctx)?;
        }
        match ctx.errors.drain(..).next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Starts a task's custom processors (their `init`, where they schedule punctuations):
    /// before its first record.
    pub fn init_task(&self, ctx: &mut TaskContext) -> Result<()> {
        for hook in self.processor_hooks.values() {
            hook(ctx, None);
        }
        match ctx.errors.drain(..).next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Calls the task's punctuations of `kind` that are due at `now` (stream time, or the
    /// wall clock in ms); what they forward collects in `ctx` like a record's outputs.
    pub fn punctuate(
        &self,
        ctx: &mut TaskContext,
        kind: crate::processor::PunctuationType,
        now: i64,
    ) -> Result<()> {
        if ctx.schedules.is_empty() {
            return Ok(());
        }
        for (node, schedule) in ctx.due_schedules(kind, now) {
            if let Some(hook) = self.processor_hooks.get(&node) {
                hook(ctx, Some((schedule, now)));
            }
        }
        match ctx.errors.drain(..).next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Empties the task's record caches: every held update goes to its store, its changelog
    /// and downstream (before a commit, and when the caches are full).
    pub fn flush_caches(&self, ctx: &mut TaskContext) -> Result<()> {
        for flush in &self.flushers {
            flush(ctx);
        }
        match ctx.errors.drain(..).next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}
