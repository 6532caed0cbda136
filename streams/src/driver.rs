//! `TopologyTestDriver`: runs a topology in the calling thread, deterministically, with no
//! broker (Kafka Streams' test driver). Pipe records into its input topics, read what it wrote
//! to its output topics. Records written to a topic the topology also reads (a repartition or
//! through topic) are processed next, in order, as a broker would hand them back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Result, StreamsError};
use crate::serdes::{self, Serde};
use crate::store::ReadOnlyKeyValueStore;
use crate::topology::{OutputRecord, RawRecord, Record, TaskContext, Topology};

/// A topic of the test, with the serdes of its keys and values: piped into as a
/// [`TestInputTopic`], read from as a [`TestOutputTopic`].
pub struct TestTopic<K, V> {
    topic: String,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K, V> TestTopic<K, V> {
    /// Topic `topic`, keys (de)serialised with `key`, values with `value`.
    pub fn new(
        topic: &str,
        key: impl Serde<K> + 'static,
        value: impl Serde<V> + 'static,
    ) -> TestTopic<K, V> {
        TestTopic {
            topic: topic.to_string(),
            key: Arc::new(key),
            value: Arc::new(value),
        }
    }
}

/// A topic the test pipes records into (Kafka's `TestInputTopic`).
pub type TestInputTopic<K, V> = TestTopic<K, V>;

/// A topic the test reads the topology's output from (Kafka's `TestOutputTopic`).
pub type TestOutputTopic<K, V> = TestTopic<K, V>;

/// Runs a topology without a broker.
pub struct TopologyTestDriver {
    topology: Topology,
    /// Late records dropped so far.
    dropped: u64,
    application_id: String,
    ctx: TaskContext,
    /// Next offset of each topic the driver wrote a record to.
    offsets: BTreeMap<String, i64>,
    /// What the topology wrote, per topic, not read yet.
    outputs: BTreeMap<String, VecDeque<OutputRecord>>,
    /// Whether the task's processors were started (`init`) yet.
    started: bool,
}

impl TopologyTestDriver {
    /// A driver for `topology`, with one task (partition 0 of every topic), as application
    /// `topology-test-driver` (the prefix of its changelog topics).
    pub fn new(topology: Topology) -> TopologyTestDriver {
        TopologyTestDriver::with_application_id(topology, "topology-test-driver")
    }

    /// A driver for `topology` as application `application_id`.
    pub fn with_application_id(topology: Topology, application_id: &str) -> TopologyTestDriver {
        let globals = topology.new_global_stores();
        TopologyTestDriver {
            topology,
            dropped: 0,
            application_id: application_id.to_string(),
            ctx: {
                let mut ctx = TaskContext::new(application_id, 0);
                ctx.set_cache_max_bytes(10 * 1024 * 1024);
                ctx.set_global_stores(globals);
                ctx
            },
            offsets: BTreeMap::new(),
            outputs: BTreeMap::new(),
            started: false,
        }
    }

    /// Starts the task's custom processors before its first record or clock advance.
    fn start(&mut self) -> Result<()> {
        if !self.started {
            self.started = true;
            self.topology.init_task(&mut self.ctx)?;
            // What the processors' init wrote goes on like any record's outputs.
            let mut pending = VecDeque::new();
            self.route_outputs(&mut pending);
            self.run(pending)?;
        }
        Ok(())
    }

    /// Moves the driver's wall clock (which starts at 0) forward by `advance` and runs the
    /// wall-clock punctuations that became due (Kafka's `advanceWallClockTime`), and whatever
    /// they write to topics the topology reads.
    pub fn advance_wall_clock_time(&mut self, advance: std::time::Duration) -> Result<()> {
        self.start()?;
        let now = self
            .ctx
            .wall_clock_ms()
            .saturating_add(i64::try_from(advance.as_millis()).unwrap_or(i64::MAX / 4));
        self.ctx.set_wall_clock_ms(now);
        self.topology.punctuate(
            &mut self.ctx,
            crate::processor::PunctuationType::WallClockTime,
            now,
        )?;
        let mut pending = VecDeque::new();
        self.route_outputs(&mut pending);
        self.run(pending)
    }

    /// Files what the task wrote since the last call under its topics, and queues what went
    /// to topics the topology reads (a broker would hand those back).
    fn route_outputs(&mut self, pending: &mut VecDeque<RawRecord>) {
        for output in self.ctx.take_outputs() {
            if self.topology.reads(&self.application_id, &output.topic) {
                let raw = self.raw(
                    &output.topic,
                    output.key.clone(),
                    output.value.clone(),
                    output.headers.clone(),
                    output.timestamp,
                );
                pending.push_back(raw);
            }
            self.outputs
                .entry(output.topic.to_string())
                .or_default()
                .push_back(output);
        }
    }

    /// Processes `pending` records in order, and those they write to topics the topology reads.
    fn run(&mut self, mut pending: VecDeque<RawRecord>) -> Result<()> {
        while let Some(record) = pending.pop_front() {
            self.topology.process(&mut self.ctx, &record)?;
            // Kafka's test driver commits after every record: the record caches go on.
            self.topology.flush_caches(&mut self.ctx)?;
            let stream_time = self.ctx.task_stream_time();
            self.topology.punctuate(
                &mut self.ctx,
                crate::processor::PunctuationType::StreamTime,
                stream_time,
            )?;
            self.route_outputs(&mut pending);
        }
        Ok(())
    }

    /// Tells sink partitioners how many partitions `topic` has (1 unless set).
    pub fn set_partition_count(&mut self, topic: &str, partitions: i32) {
        self.ctx.set_partition_count(topic, partitions);
    }

    /// Pipes one record into `input` at `timestamp` (ms) and processes it, and whatever it
    /// writes to topics the topology reads, before returning.
    pub fn pipe_input<K, V>(
        &mut self,
        input: &TestInputTopic<K, V>,
        key: &K,
        value: &V,
        timestamp: i64,
    ) -> Result<()> {
        let key = serdes::serialize(&*input.key, &input.topic, "key", key)?;
        let value = serdes::serialize(&*input.value, &input.topic, "value", value)?;
        self.pipe_raw(&input.topic, key, value, Vec::new(), timestamp)
    }

    /// Pipes one record of raw bytes into `topic`.
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
        timestamp: i64,
    ) -> Result<()> {
        if !self.topology.reads(&self.application_id, topic) {
            return Err(StreamsError::UnknownTopic(topic.to_string()));
        }
        self.start()?;
        let mut pending = VecDeque::new();
        pending.push_back(self.raw(topic, key, value, headers, timestamp));
        self.run(pending)
    }

    fn raw(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
        timestamp: i64,
    ) -> RawRecord {
        let offset = self.offsets.entry(topic.to_string()).or_insert(0);
        let record = RawRecord {
            topic: topic.into(),
            partition: 0,
            offset: *offset,
            timestamp,
            key,
            value,
            headers,
        };
        *offset += 1;
        record
    }

    /// Takes every record written to `output` since the last read, decoded, in order.
    pub fn read_output<K, V>(
        &mut self,
        output: &TestOutputTopic<K, V>,
    ) -> Result<Vec<Record<K, V>>> {
        if !self.topology.sink_topics().contains(&output.topic) {
            return Err(StreamsError::UnknownTopic(output.topic.clone()));
        }
        let records = self.outputs.remove(&output.topic).unwrap_or_default();
        records
            .into_iter()
            .map(|record| {
                Ok(Record {
                    key: serdes::deserialize(
                        &*output.key,
                        &output.topic,
                        "key",
                        record.key.as_ref(),
                    )?,
                    value: serdes::deserialize(
                        &*output.value,
                        &output.topic,
                        "value",
                        record.value.as_ref(),
                    )?,
                    timestamp: record.timestamp,
                    headers: record.headers,
                })
            })
            .collect()
    }

    /// Takes every record written to `output` as key-value pairs.
    pub fn read_key_values<K, V>(&mut self, output: &TestOutputTopic<K, V>) -> Result<Vec<(K, V)>> {
        Ok(self
            .read_output(output)?
            .into_iter()
            .map(|record| (record.key, record.value))
            .collect())
    }

    /// Takes the raw records written to `topic` (with their partitions), in order.
    pub fn read_raw(&mut self, topic: &str) -> Vec<OutputRecord> {
        self.outputs
            .remove(topic)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// A typed, read-only view of the task's store `name` (empty if nothing was written yet).
    pub fn key_value_store<K, V>(
        &self,
        name: &str,
        key: impl Serde<K> + 'static,
        value: impl Serde<V> + 'static,
    ) -> Result<ReadOnlyKeyValueStore<K, V>> {
        self.topology.check_store(name)?;
        let part = self.ctx.store(name).or_else(|| self.ctx.global_store(name));
        Ok(ReadOnlyKeyValueStore::new(
            name,
            Box::new(move || part.clone().into_iter().collect()),
            Arc::new(key),
            Arc::new(value),
        ))
    }

    /// Records dropped so far because their window had closed.
    pub fn dropped_records(&mut self) -> u64 {
        self.dropped += self.ctx.take_dropped_records();
        self.dropped
    }

    /// The task's stream time (the largest input timestamp so far).
    pub fn stream_time(&self) -> i64 {
        self.ctx.stream_time()
    }
}
