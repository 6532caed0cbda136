//! The processor API: custom processors with state store access and punctuation, inside a
//! DSL topology (Kafka's `KStream.process` with a `ProcessorSupplier`).
//!
//! A [`Processor`] is made once per task by the supplier given to [`KStream::process`], so it
//! may keep per-task state in its fields; state that must survive a task moving belongs in a
//! state store (registered with [`StreamsBuilder::add_state_store`], named in `process`), which
//! the processor reads and writes through its [`ProcessorContext`] — every write logged to the
//! store's changelog like the DSL's. `init` may schedule punctuations: by stream time (the
//! largest timestamp the task has seen, so driven by data) or by wall-clock time (driven by the
//! runtime's clock, or the test driver's). A schedule fires at most once per advance, however
//! many intervals the advance spans, as Kafka's do.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Result;
use crate::kstream::{Data, KStream};
use crate::serdes::{self, Serde};
use crate::topology::{Children, Record, StreamsBuilder, TaskContext};

/// What drives a punctuation (Kafka's `PunctuationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    /// The task's stream time: the largest record timestamp it has seen.
    StreamTime,
    /// The wall clock.
    WallClockTime,
}

/// A schedule made by [`ProcessorContext::schedule`], passed back to `punctuate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScheduleId(pub(crate) usize);

/// A custom processor: receives the records of its stream, may forward records downstream,
/// read and write its state stores, and be called back on a schedule (Kafka's `Processor`).
pub trait Processor<K, V, KO, VO>: Send + 'static {
    /// Called once when the task starts, before any record: schedule punctuations here.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, KO, VO>) {}

    /// Processes one record.
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KO, VO>, record: Record<K, V>);

    /// Called when schedule `schedule` is due, with the stream time or wall-clock time (ms)
    /// that made it due.
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<'_, KO, VO>,
        _schedule: ScheduleId,
        _timestamp: i64,
    ) {
    }
}

/// What a processor can do while it processes or punctuates (Kafka's `ProcessorContext`).
pub struct ProcessorContext<'a, KO, VO> {
    task: &'a mut TaskContext,
    downstream: &'a Children<KO, VO>,
    node: usize,
    stores: &'a [String],
}

impl<KO: Data, VO: Data> ProcessorContext<'_, KO, VO> {
    /// Sends `record` to the processor's children.
    pub fn forward(&mut self, record: Record<KO, VO>) {
        self.downstream.forward(self.task, record);
    }

    /// Calls `punctuate` every `interval` of `kind` time, from now on.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> ScheduleId {
        let interval = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX / 4)
            .max(1);
        let now = match kind {
            PunctuationType::StreamTime => self.task.task_stream_time(),
            PunctuationType::WallClockTime => self.task.wall_clock_ms(),
        };
        self.task.add_schedule(self.node, interval, kind, now)
    }

    /// Stops schedule `schedule` (Kafka's `Cancellable.cancel`).
    pub fn cancel(&mut self, schedule: ScheduleId) {
        self.task.cancel_schedule(schedule);
    }

    /// The task's stream time.
    pub fn stream_time(&self) -> i64 {
        self.task.task_stream_time()
    }

    /// The topic, partition and offset of the record being processed (the last one, while
    /// punctuating).
    pub fn record_position(&self) -> (&str, i32, i64) {
        (self.task.topic(), self.task.partition(), self.task.offset())
    }

    /// The partition of the task.
    pub fn task_partition(&self) -> i32 {
        self.task.task_partition()
    }

    /// The processor's store `name` (one it was given in [`KStream::process`]), typed with
    /// `key` and `value`.
    pub fn key_value_store<'s, K2, V2>(
        &'s mut self,
        name: &str,
        key: &'s dyn Serde<K2>,
        value: &'s dyn Serde<V2>,
    ) -> Result<KeyValueStoreHandle<'s, K2, V2>> {
        let Some(name) = self.stores.iter().find(|s| s.as_str() == name) else {
            return Err(crate::error::StreamsError::Topology(format!(
                "the processor was not given store {name}: name it in KStream::process"
            )));
        };
        Ok(KeyValueStoreHandle {
            task: self.task,
            name,
            key,
            value,
        })
    }
}

/// A processor's read-write view of one of its key-value stores; writes go to the changelog.
pub struct KeyValueStoreHandle<'s, K, V> {
    task: &'s mut TaskContext,
    name: &'s str,
    key: &'s dyn Serde<K>,
    value: &'s dyn Serde<V>,
}

impl<K, V> KeyValueStoreHandle<'_, K, V> {
    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(serdes::serialize(self.key, self.name, "key", key)?.unwrap_or_default())
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let key = self.key_bytes(key)?;
        self.task.get_stored(self.name, &key, self.value)
    }

    /// Stores `value` for `key` (logged).
    pub fn put(&mut self, key: &K, value: &V, timestamp: i64) -> Result<()> {
        let key = self.key_bytes(key)?;
        let value = serdes::serialize(self.value, self.name, "value", value)?;
        self.task
            .put_logged(self.name, key, Some(value.unwrap_or_default()), timestamp);
        Ok(())
    }

    /// Deletes `key` (logged as a tombstone).
    pub fn delete(&mut self, key: &K, timestamp: i64) -> Result<()> {
        let key = self.key_bytes(key)?;
        self.task.put_logged(self.name, key, None, timestamp);
        Ok(())
    }

    /// Every entry, in the order of the keys' bytes.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.task
            .scan_while(self.name, &[], |_| true)
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    serdes::deserialize(self.key, self.name, "key", Some(&k))?,
                    serdes::deserialize(self.value, self.name, "value", Some(&v))?,
                ))
            })
            .collect()
    }
}

/// A task's instance of a processor node, kept in its `TaskContext`.
type Instance = Box<dyn Any + Send>;

/// Runs `call` with the task's instance of processor node `node` (made by `supplier` and
/// initialised on first use), then puts it back.
fn with_instance<K, V, KO, VO, P>(
    ctx: &mut TaskContext,
    node: usize,
    supplier: &(dyn Fn() -> P + Send + Sync),
    downstream: &Children<KO, VO>,
    stores: &[String],
    call: impl FnOnce(&mut P, &mut ProcessorContext<'_, KO, VO>),
) where
    P: Processor<K, V, KO, VO>,
    KO: Data,
    VO: Data,
{
    let (mut instance, fresh): (Instance, bool) = match ctx.take_processor(node) {
        Some(instance) => (instance, false),
        None => (Box::new(supplier()), true),
    };
    if let Some(processor) = instance.downcast_mut::<P>() {
        let mut pctx = ProcessorContext {
            task: ctx,
            downstream,
            node,
            stores,
        };
        if fresh {
            processor.init(&mut pctx);
        }
        call(processor, &mut pctx);
    }
    ctx.put_processor(node, instance);
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Runs each record through a processor of `supplier`'s making — one per task — with
    /// access to the state stores named in `stores` (Kafka's `process`). The processor's
    /// forwarded records are the returned stream.
    pub fn process<KO: Data, VO: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KO, VO>
    where
        P: Processor<K, V, KO, VO>,
    {
        let state = &self.state;
        let node = state.next_processor_node();
        let stores: Arc<Vec<String>> = Arc::new(stores.iter().map(|s| s.to_string()).collect());
        for store in stores.iter() {
            state.require_store(store);
        }
        let out = state.new_children::<KO, VO>(format!(
            "processor {node} with stores {}",
            stores.join(", ")
        ));
        let supplier: Arc<dyn Fn() -> P + Send + Sync> = Arc::new(supplier);
        {
            let (supplier, out, stores) = (supplier.clone(), out.clone(), stores.clone());
            state.add_processor_hook(
                node,
                Arc::new(move |ctx, due| {
                    with_instance(ctx, node, &*supplier, &out, &stores, |processor, pctx| {
                        if let Some((schedule, timestamp)) = due {
                            processor.punctuate(pctx, schedule, timestamp);
                        }
                    });
                }),
            );
        }
        let downstream = out.clone();
        self.children
            .add(Arc::new(move |ctx, record: Record<K, V>| {
                with_instance(
                    ctx,
                    node,
                    &*supplier,
                    &downstream,
                    &stores,
                    |processor, pctx| {
                        processor.process(pctx, record);
                    },
                );
            }));
        KStream::new(self.state.clone(), out).with_sources(self.sources.to_vec())
    }
}

impl StreamsBuilder {
    /// Registers a key-value state store named `name` for processors (Kafka's
    /// `addStateStore`), backed by the changelog `<application.id>-<name>-changelog`.
    pub fn add_state_store(&self, name: &str) {
        self.state().add_store(name);
        self.state().provide_store(name);
    }

    /// Like [`StreamsBuilder::add_state_store`], the store also kept on disk under
    /// `state.dir` (Kafka's `Stores.persistentKeyValueStore`), restored from its checkpoint.
    pub fn add_persistent_state_store(&self, name: &str) {
        self.add_state_store(name);
        self.state().mark_persistent(name);
    }
}
