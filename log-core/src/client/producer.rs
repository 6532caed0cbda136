//! A batching producer: records are grouped per partition into v2 batches of up to `batch.size`
//! bytes, sent when full or after `linger.ms`, with up to `max.in.flight.requests.per.connection`
//! requests in flight, compressed with `compression.type`, acknowledged per `acks`.
//!
//! A batch that fails with a retriable error (a retriable Kafka error code, a lost connection,
//! a timeout) is sent again after `retry.backoff.ms`, up to `retries` times and until
//! `delivery.timeout.ms` has passed since the batch was created. While a retry waits, its
//! partition is muted, so later batches of the partition do not overtake it: with
//! `max.in.flight.requests.per.connection=1` order is kept; with more in flight, batches already
//! sent may land first, as in Kafka without idempotence.
//!
//! Keyed records go to `murmur2(key) % partitions` (the Java client's default partitioner);
//! keyless records stick to one partition per topic until its batch is sent, then move on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify, Semaphore};

use super::partitioner::partition_for_key;
use super::Client;
use crate::error::{Error, Result};

/// Producer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`: 0, 1 or -1 (all).
    pub acks: i16,
    /// `compression.type`.
    pub compression: Compression,
    /// `batch.size`: bytes of records per partition batch.
    pub batch_size: usize,
    /// `linger.ms`: how long a batch waits for more records.
    pub linger: Duration,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `buffer.memory`: bytes of records waiting to be sent before `send` waits.
    pub buffer_memory: usize,
    /// `retries`: how many times a batch is sent again after a retriable error.
    pub retries: u32,
    /// `retry.backoff.ms`: the wait before a retry.
    pub retry_backoff: Duration,
    /// `delivery.timeout.ms`: the bound on a record's time from `send` to its outcome.
    pub delivery_timeout: Duration,
}

impl Default for ProducerConfig {
    /// The Java client's defaults (acks=all since Kafka 3.0).
    fn default() -> Self {
        ProducerConfig {
            acks: -1,
            compression: Compression::None,
            batch_size: 16384,
            linger: Duration::from_millis(5),
            max_in_flight: 5,
            buffer_memory: 32 * 1024 * 1024,
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_millis(120_000),
        }
    }
}

impl ProducerConfig {
    /// Applies one Kafka producer property (`acks`, `compression.type`, `batch.size`,
    /// `linger.ms`, `max.in.flight.requests.per.connection`, `buffer.memory`, `retries`,
    /// `retry.backoff.ms`, `delivery.timeout.ms`).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let invalid = |why: &str| Error::InvalidArgument(format!("{key}={value}: {why}"));
        let number = |value: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| invalid("expected a whole number"))
        };
        match key {
            "acks" => {
                self.acks = match value.trim() {
                    "all" | "-1" => -1,
                    "0" => 0,
                    "1" => 1,
                    _ => return Err(invalid("expected all, -1, 0 or 1")),
                }
            }
            "compression.type" => {
                self.compression = parse_compression(value)
                    .ok_or_else(|| invalid("expected none, gzip, snappy, lz4 or zstd"))?
            }
            "batch.size" => self.batch_size = number(value)?.max(1) as usize,
            "linger.ms" => self.linger = Duration::from_millis(number(value)?),
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight = number(value)?.max(1) as usize
            }
            "buffer.memory" => self.buffer_memory = number(value)?.max(1024) as usize,
            "retries" => self.retries = number(value)?.min(u64::from(u32::MAX)) as u32,
            "retry.backoff.ms" => self.retry_backoff = Duration::from_millis(number(value)?),
            "delivery.timeout.ms" => {
                self.delivery_timeout = Duration::from_millis(number(value)?.max(1))
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown producer property {key}"
                )))
            }
        }
        Ok(())
    }
}

/// Parses Kafka's `compression.type` names.
pub fn parse_compression(value: &str) -> Option<Compression> {
    Some(match value.trim() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic (shared: one `Arc<str>` serves every record of a topic).
    pub topic: Arc<str>,
    /// Explicit partition, or None for the partitioner.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (None is a tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Timestamp in ms; None for now.
    pub timestamp: Option<i64>,
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Partition.
    pub partition: i32,
    /// Offset, or -1 with `acks=0`.
    pub offset: i64,
    /// Timestamp the record carries.
    pub timestamp: i64,
    /// When the client received the broker's acknowledgement (for latency measurements).
    pub acknowledged_at: Instant,
}

/// Resolves to the record's metadata once the broker acknowledges it.
pub type DeliveryFuture = oneshot::Receiver<Result<RecordMetadata>>;

struct OpenBatch {
    records: Vec<Record>,
    bytes: usize,
    created: Instant,
    /// Creation order within the producer: retries go back in this order.
    seq: u64,
    waiters: Vec<oneshot::Sender<Result<RecordMetadata>>>,
}

struct ReadyBatch {
    topic: Arc<str>,
    partition: i32,
    batch: OpenBatch,
    /// Sends so far that failed with a retriable error.
    attempts: u32,
}

#[derive(Default)]
struct State {
    /// Open batches by topic, then partition (two levels, so that a lookup needs no allocation).
    open: HashMap<Arc<str>, HashMap<i32, OpenBatch>>,
    ready: VecDeque<ReadyBatch>,
    /// Partitions with batches waiting to be retried (how many): later batches wait behind.
    muted: HashMap<(Arc<str>, i32), usize>,
    next_batch_seq: u64,
    sticky: HashMap<Arc<str>, i32>,
    rotation: HashMap<Arc<str>, i32>,
    flush: bool,
    closed: bool,
}

struct Inner {
    client: Arc<Client>,
    config: ProducerConfig,
    state: Mutex<State>,
    wake: Notify,
    buffer: Arc<Semaphore>,
    in_flight: Arc<Semaphore>,
    outstanding: AtomicUsize,
    idle: Notify,
    /// Kafka's `record-retry-total` (counted per batch sent again).
    record_retries: AtomicU64,
}

/// The producer; cheap to share by reference, closed with [`Producer::close`].
pub struct Producer {
    inner: Arc<Inner>,
    sender: tokio::task::JoinHandle<()>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// A producer on `client`; its sender task runs on the current tokio runtime.
    pub fn new(client: Arc<Client>, config: ProducerConfig) -> Producer {
        let inner = Arc::new(Inner {
            client,
            buffer: Arc::new(Semaphore::new(config.buffer_memory)),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            config,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            record_retries: AtomicU64::new(0),
        });
        let sender = tokio::spawn(run_sender(inner.clone()));
        Producer { inner, sender }
    }

    /// Queues a record; the returned future resolves when the broker acknowledges it (or fails).
    /// Waits while `buffer.memory` is full.
    ///
    /// # Cancel safety
    /// Cancelling before it returns drops the record unsent.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let size = record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len())
            + record
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>()
            + 16;
        let permits = size.min(self.inner.config.buffer_memory) as u32;
        let permit = self
            .inner
            .buffer
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| Error::InvalidArgument("producer is closed".into()))?;
        permit.forget();
        let partition = match record.partition {
            Some(partition) => partition,
            None => {
                let n = match self.inner.client.cached_partition_count(&record.topic) {
                    Some(n) => n as i32,
                    None => self
                        .inner
                        .client
                        .topic(&record.topic, true)
                        .await?
                        .leaders
                        .len() as i32,
                };
                match &record.key {
                    Some(key) => partition_for_key(key, n),
                    None => {
                        let mut state = self.inner.state.lock();
                        match state.sticky.get(&record.topic) {
                            Some(partition) => *partition,
                            None => {
                                // Move on to the next partition each time a sticky batch closes.
                                let rotation =
                                    state.rotation.entry(record.topic.clone()).or_insert(-1);
                                *rotation = (*rotation + 1) % n.max(1);
                                let partition = *rotation;
                                state.sticky.insert(record.topic.clone(), partition);
                                partition
                            }
                        }
                    }
                }
            }
        };
        let (tx, rx) = oneshot::channel();
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let mut guard = self.inner.state.lock();
        if guard.closed {
            return Err(Error::InvalidArgument("producer is closed".into()));
        }
        let state = &mut *guard;
        if !state.open.contains_key(&record.topic) {
            state.open.insert(record.topic.clone(), HashMap::new());
        }
        let Some(partitions) = state.open.get_mut(&record.topic) else {
            return Err(Error::Protocol("producer state lost a topic".into()));
        };
        let next_seq = &mut state.next_batch_seq;
        let batch = partitions.entry(partition).or_insert_with(|| OpenBatch {
            records: Vec::new(),
            bytes: 0,
            created: Instant::now(),
            seq: {
                *next_seq += 1;
                *next_seq
            },
            waiters: Vec::new(),
        });
        let idx = batch.records.len() as i64;
        let headers: IndexMap<StrBytes, Option<Bytes>> = record
            .headers
            .into_iter()
            .map(|(k, v)| (StrBytes::from_string(k), v))
            .collect();
        batch.records.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: idx,
            // The encoder keeps one batch only while offset - sequence is constant; with base
            // sequence -1 this marks the batch as non-idempotent, as Kafka expects.
            sequence: idx as i32 - 1,
            timestamp,
            key: record.key,
            value: record.value,
            headers,
        });
        batch.bytes += size;
        batch.waiters.push(tx);
        self.inner.outstanding.fetch_add(1, Ordering::AcqRel);
        if batch.bytes >= self.inner.config.batch_size {
            if let Some(batch) = partitions.remove(&partition) {
                state.ready.push_back(ReadyBatch {
                    topic: record.topic.clone(),
                    partition,
                    batch,
                    attempts: 0,
                });
                if record.partition.is_none() && state.sticky.get(&record.topic) == Some(&partition)
                {
                    state.sticky.remove(&record.topic);
                }
            }
            drop(guard);
            self.inner.wake.notify_one();
        } else if batch.records.len() == 1 {
            drop(guard);
            // The sender must learn of the new batch to honour linger.ms.
            self.inner.wake.notify_one();
        }
        Ok(rx)
    }

    /// How many times a batch was sent again after a retriable error (`record-retry-total`).
    pub fn record_retry_total(&self) -> u64 {
        self.inner.record_retries.load(Ordering::Relaxed)
    }

    /// Sends everything queued now and waits until every record is acknowledged or failed.
    pub async fn flush(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.inner.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            self.inner.state.lock().flush = true;
            self.inner.wake.notify_one();
            idle.await;
        }
    }

    /// Flushes, then stops the sender.
    pub async fn close(self) {
        self.flush().await;
        self.inner.state.lock().closed = true;
        self.inner.wake.notify_one();
        let _ = self.sender.await;
    }
}

async fn run_sender(inner: Arc<Inner>) {
    loop {
        let woken = inner.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Move batches that lingered long enough (or all, on flush) to the ready queue.
        let (ready, next_deadline, closed) = {
            let mut state = inner.state.lock();
            let now = Instant::now();
            let flush = std::mem::take(&mut state.flush);
            let closed = state.closed;
            let expired: Vec<(Arc<str>, i32)> = state
                .open
                .iter()
                .flat_map(|(topic, partitions)| partitions.iter().map(move |(p, b)| (topic, *p, b)))
                .filter(|(_, _, b)| {
                    flush || closed || now.duration_since(b.created) >= inner.config.linger
                })
                .map(|(topic, partition, _)| (topic.clone(), partition))
                .collect();
            for (topic, partition) in expired {
                let batch = state
                    .open
                    .get_mut(&topic)
                    .and_then(|partitions| partitions.remove(&partition));
                if let Some(batch) = batch {
                    if state.sticky.get(&topic) == Some(&partition) {
                        state.sticky.remove(&topic);
                    }
                    state.ready.push_back(ReadyBatch {
                        topic,
                        partition,
                        batch,
                        attempts: 0,
                    });
                }
            }
            // A produce request carries one batch per partition (Kafka refuses more), so
            // further batches of a partition wait for the next request, in order; so do the
            // batches of muted partitions.
            let state = &mut *state;
            let mut taken: HashSet<(Arc<str>, i32)> = HashSet::new();
            let mut held = VecDeque::new();
            let mut ready = Vec::new();
            for batch in state.ready.drain(..) {
                let key = (batch.topic.clone(), batch.partition);
                if state.muted.contains_key(&key) || !taken.insert(key) {
                    held.push_back(batch);
                } else {
                    ready.push(batch);
                }
            }
            state.ready = held;
            let next_deadline = state
                .open
                .values()
                .flat_map(|p| p.values())
                .map(|b| b.created + inner.config.linger)
                .min();
            (ready, next_deadline, state.closed)
        };
        if !ready.is_empty() {
            send_batches(&inner, ready).await;
            continue;
        }
        if closed && inner.outstanding.load(Ordering::Acquire) == 0 {
            return;
        }
        match next_deadline {
            Some(deadline) => {
                let _ = tokio::time::timeout_at(deadline.into(), woken).await;
            }
            None => woken.await,
        }
    }
}

/// Groups ready batches into one request per leader and sends them, keeping at most
/// `max.in.flight` requests outstanding.
async fn send_batches(inner: &Arc<Inner>, ready: Vec<ReadyBatch>) {
    let mut by_leader: HashMap<String, (Arc<super::Connection>, Vec<ReadyBatch>)> = HashMap::new();
    for batch in ready {
        match inner
            .client
            .leader_connection(&batch.topic, batch.partition)
            .await
        {
            Ok(connection) => by_leader
                .entry(connection.addr().to_string())
                .or_insert_with(|| (connection, Vec::new()))
                .1
                .push(batch),
            Err(err) => retry_or_fail(inner, batch, err),
        }
    }
    for (_, (connection, batches)) in by_leader {
        let Ok(permit) = inner.in_flight.clone().acquire_owned().await else {
            return;
        };
        // Requests are written here, in order; only the wait for each response runs apart, so
        // that batches of a partition reach the broker in the order they were sent.
        if let Some(in_flight) = start_request(inner, &connection, batches).await {
            let inner = inner.clone();
            tokio::spawn(async move {
                in_flight.complete(&inner).await;
                drop(permit);
            });
        }
    }
}

/// Errors worth sending a batch again for: the broker may answer differently later.
fn is_retriable(err: &Error) -> bool {
    match err {
        Error::Broker { code, .. } => code.is_retriable(),
        Error::Connection { .. } | Error::Timeout { .. } => true,
        _ => false,
    }
}

/// Schedules a retry after `retry.backoff.ms` (muting the partition meanwhile), or fails the
/// batch when the error is final, the retries are spent or `delivery.timeout.ms` would pass.
fn retry_or_fail(inner: &Arc<Inner>, mut batch: ReadyBatch, err: Error) {
    let config = &inner.config;
    let age = batch.batch.created.elapsed();
    if !is_retriable(&err) || batch.attempts >= config.retries {
        return fail_batch(inner, batch.batch, &err);
    }
    if age + config.retry_backoff >= config.delivery_timeout {
        let expired = Error::Timeout {
            what: format!(
                "delivery of {} record(s) to {}-{} (last error: {err})",
                batch.batch.waiters.len(),
                batch.topic,
                batch.partition
            ),
            after_ms: config.delivery_timeout.as_millis() as u64,
        };
        return fail_batch(inner, batch.batch, &expired);
    }
    tracing::debug!(topic = %batch.topic, partition = batch.partition, attempt = batch.attempts + 1, %err, "retrying a produce batch");
    if matches!(&err, Error::Broker { .. }) {
        // A moved leader or a new topic: ask for fresh metadata before the retry.
        inner.client.invalidate_topic(&batch.topic);
    }
    batch.attempts += 1;
    inner.record_retries.fetch_add(1, Ordering::Relaxed);
    *inner
        .state
        .lock()
        .muted
        .entry((batch.topic.clone(), batch.partition))
        .or_insert(0) += 1;
    let inner = inner.clone();
    tokio::spawn(async move {
        tokio::time::sleep(inner.config.retry_backoff).await;
        {
            let mut state = inner.state.lock();
            let key = (batch.topic.clone(), batch.partition);
            if let Some(pending) = state.muted.get_mut(&key) {
                *pending -= 1;
                if *pending == 0 {
                    state.muted.remove(&key);
                }
            }
            // Back in creation order: before every later batch of its partition.
            let at = state
                .ready
                .iter()
                .position(|b| {
                    b.partition == batch.partition
                        && b.topic == batch.topic
                        && b.batch.seq > batch.batch.seq
                })
                .unwrap_or(0);
            state.ready.insert(at, batch);
        }
        inner.wake.notify_one();
    });
}

fn fail_batch(inner: &Inner, batch: OpenBatch, err: &Error) {
    let n = batch.waiters.len();
    for waiter in batch.waiters {
        let _ = waiter.send(Err(clone_error(err)));
    }
    finish(inner, n, batch.bytes);
}

fn finish(inner: &Inner, n_records: usize, bytes: usize) {
    inner
        .buffer
        .add_permits(bytes.min(inner.config.buffer_memory));
    if inner.outstanding.fetch_sub(n_records, Ordering::AcqRel) == n_records {
        inner.idle.notify_waiters();
    }
}

fn clone_error(err: &Error) -> Error {
    match err {
        Error::Broker { code, message } => Error::Broker {
            code: *code,
            message: message.clone(),
        },
        Error::Connection { addr, reason } => Error::Connection {
            addr: addr.clone(),
            reason: reason.clone(),
        },
        Error::Timeout { what, after_ms } => Error::Timeout {
            what: what.clone(),
            after_ms: *after_ms,
        },
        other => Error::Protocol(other.to_string()),
    }
}

/// A produce request written to a broker, with the batches waiting for its response.
struct InFlight {
    response: Result<super::connection::PendingResponse<ProduceRequest>>,
    addr: String,
    batches: Vec<ReadyBatch>,
}

async fn start_request(
    inner: &Arc<Inner>,
    connection: &super::Connection,
    batches: Vec<ReadyBatch>,
) -> Option<InFlight> {
    let options = RecordEncodeOptions {
        version: 2,
        compression: inner.config.compression,
    };
    let mut topics: Vec<TopicProduceData> = Vec::new();
    let mut encoded = Vec::with_capacity(batches.len());
    for batch in batches {
        // Sized up front: growing the buffer would copy the batch again at each doubling.
        let mut buf =
            BytesMut::with_capacity(batch.batch.bytes + 61 + 24 * batch.batch.records.len());
        if let Err(err) = RecordBatchEncoder::encode(&mut buf, &batch.batch.records, &options) {
            fail_batch(
                inner,
                batch.batch,
                &Error::Protocol(format!("encode batch: {err}")),
            );
            continue;
        }
        let data = PartitionProduceData::default()
            .with_index(batch.partition)
            .with_records(Some(buf.freeze()));
        match topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == &*batch.topic)
        {
            Some(topic) => topic.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(batch.topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
        encoded.push(batch);
    }
    if encoded.is_empty() {
        return None;
    }
    let request = ProduceRequest::default()
        .with_acks(inner.config.acks)
        .with_timeout_ms(30_000)
        .with_topic_data(topics);
    if inner.config.acks == 0 {
        let result = connection.send_no_response(&request).await;
        for batch in encoded {
            let n = batch.batch.waiters.len();
            let acknowledged_at = Instant::now();
            for (idx, waiter) in batch.batch.waiters.into_iter().enumerate() {
                let _ = waiter.send(match &result {
                    Ok(()) => Ok(RecordMetadata {
                        partition: batch.partition,
                        offset: -1,
                        timestamp: batch.batch.records[idx].timestamp,
                        acknowledged_at,
                    }),
                    Err(err) => Err(clone_error(err)),
                });
            }
            finish(inner, n, batch.batch.bytes);
        }
        return None;
    }
    Some(InFlight {
        response: connection.start(&request).await,
        addr: connection.addr().to_string(),
        batches: encoded,
    })
}

impl InFlight {
    async fn complete(self, inner: &Arc<Inner>) {
        let response = match self.response {
            Ok(pending) => pending.wait().await,
            Err(err) => Err(err),
        };
        if response.is_err() {
            inner.client.drop_connection(&self.addr).await;
        }
        let acknowledged_at = Instant::now();
        for batch in self.batches {
            let result = match &response {
                Err(err) => Err(clone_error(err)),
                Ok(response) => response
                    .responses
                    .iter()
                    .find(|t| t.name.0.as_str() == &*batch.topic)
                    .and_then(|t| {
                        t.partition_responses
                            .iter()
                            .find(|p| p.index == batch.partition)
                    })
                    .map_or_else(
                        || {
                            Err(Error::Protocol(format!(
                                "no produce response for {}-{}",
                                batch.topic, batch.partition
                            )))
                        },
                        |p| match Error::from_code(p.error_code, p.error_message.as_deref()) {
                            Some(err) => Err(err),
                            None => Ok(p.base_offset),
                        },
                    ),
            };
            let base = match result {
                Ok(base) => base,
                Err(err) => {
                    retry_or_fail(inner, batch, err);
                    continue;
                }
            };
            let n = batch.batch.waiters.len();
            for (idx, waiter) in batch.batch.waiters.into_iter().enumerate() {
                let _ = waiter.send(Ok(RecordMetadata {
                    partition: batch.partition,
                    offset: base + idx as i64,
                    timestamp: batch.batch.records[idx].timestamp,
                    acknowledged_at,
                }));
            }
            finish(inner, n, batch.batch.bytes);
        }
    }
}
