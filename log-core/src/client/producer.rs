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
//!
//! Idempotence (`enable.idempotence`, on by default with `acks=all`, as in Kafka's clients
//! since 3.0): the producer gets a producer id (InitProducerId) before its first send, and each
//! batch carries it with the partition's next sequence numbers, fixed when the batch is sealed,
//! so that a retry is recognised by the broker and written once, and batches of a partition
//! keep their order with up to five requests in flight (a batch refused with
//! OUT_OF_ORDER_SEQUENCE_NUMBER because an earlier one is being retried is retried after it).
//!
//! Transactions (`transactional.id`): `init_transactions`, then `begin_transaction`, sends,
//! `send_offsets_to_transaction`, and `commit_transaction` or `abort_transaction`. Each
//! partition joins the transaction (AddPartitionsToTxn) before its first batch is sent.
//! Errors follow Kafka's semantics: a fenced producer (another instance with the same
//! transactional id) gets fatal errors and can only be closed; other failures make the
//! transaction abortable: `abort_transaction`, and the producer goes on.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};

use super::partitioner::partition_for_key;
use super::Client;
use crate::error::{Error, Result};
use crate::model::TopicPartition;

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
    /// `max.block.ms`: how long `send` waits for a topic's metadata (a topic just created on
    /// a Kafka cluster takes a moment to reach every broker's metadata).
    pub max_block: Duration,
    /// `enable.idempotence`: on by default; in force with `acks=all` and at most five
    /// requests in flight (see [`ProducerConfig::idempotent`]).
    pub enable_idempotence: bool,
    /// Whether `enable.idempotence` was set explicitly (then `acks` other than all is an
    /// error, as in Kafka, rather than turning idempotence off).
    pub idempotence_explicit: bool,
    /// `transactional.id`: makes the producer transactional.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a transaction stay open.
    pub transaction_timeout: Duration,
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
            max_block: Duration::from_millis(60_000),
            enable_idempotence: true,
            idempotence_explicit: false,
            transactional_id: None,
            transaction_timeout: Duration::from_millis(60_000),
        }
    }
}

impl ProducerConfig {
    /// Whether batches carry a producer id and sequence numbers: `enable.idempotence` with
    /// `acks=all` and at most five requests in flight (Kafka turns a default idempotence off
    /// for other settings; [`ProducerConfig::check`] refuses them when it was asked for).
    pub fn idempotent(&self) -> bool {
        self.enable_idempotence && self.acks == -1 && self.max_in_flight <= 5
    }

    /// Kafka's refusals of settings that contradict each other.
    pub fn check(&self) -> Result<()> {
        let explicit = self.idempotence_explicit || self.transactional_id.is_some();
        if explicit && self.enable_idempotence && self.acks != -1 {
            return Err(Error::InvalidArgument(
                "Must set acks to all in order to use the idempotent producer. Otherwise we cannot guarantee idempotence.".into(),
            ));
        }
        if explicit && self.enable_idempotence && self.max_in_flight > 5 {
            return Err(Error::InvalidArgument(
                "Must set max.in.flight.requests.per.connection to at most 5 when using the idempotent producer.".into(),
            ));
        }
        if self.transactional_id.is_some() && !self.enable_idempotence {
            return Err(Error::InvalidArgument(
                "Cannot set a transactional.id without also enabling idempotence.".into(),
            ));
        }
        Ok(())
    }

    /// Applies one Kafka producer property (`acks`, `compression.type`, `batch.size`,
    /// `linger.ms`, `max.in.flight.requests.per.connection`, `buffer.memory`, `retries`,
    /// `retry.backoff.ms`, `delivery.timeout.ms`, `max.block.ms`, `enable.idempotence`,
    /// `transactional.id`, `transaction.timeout.ms`).
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
            "max.block.ms" => self.max_block = Duration::from_millis(number(value)?),
            "enable.idempotence" => {
                self.enable_idempotence = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("expected true or false")),
                };
                self.idempotence_explicit = true;
            }
            "transactional.id" => {
                self.transactional_id = Some(value.trim().to_string()).filter(|v| !v.is_empty())
            }
            "transaction.timeout.ms" => {
                self.transaction_timeout = Duration::from_millis(number(value)?.max(1))
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

/// The outcome of one batch, shared by the deliveries of all its records: one completion per
/// batch instead of a channel per record keeps `send` cheap.
struct BatchOutcome {
    /// The batch's base offset (-1 with `acks=0`) and when it was acknowledged, or why not.
    result: OnceLock<std::result::Result<(i64, Instant), Error>>,
    /// Tasks waiting for `result`.
    wakers: Mutex<Vec<Waker>>,
}

/// Completes a [`BatchOutcome`] exactly once; if dropped first (the producer went away), its
/// deliveries fail instead of waiting forever.
struct Completion(Arc<BatchOutcome>);

impl Completion {
    fn new() -> Completion {
        Completion(Arc::new(BatchOutcome {
            result: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        }))
    }

    fn complete(&self, result: std::result::Result<(i64, Instant), Error>) {
        // The result is set before the wakers are taken, and `poll` checks it again after
        // registering under the same lock: no wake-up is lost.
        if self.0.result.set(result).is_ok() {
            let wakers = std::mem::take(&mut *self.0.wakers.lock());
            for waker in wakers {
                waker.wake();
            }
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.0.result.get().is_none() {
            self.complete(Err(Error::Protocol(
                "the producer stopped before the record was acknowledged".into(),
            )));
        }
    }
}

/// Resolves to the record's metadata once the broker acknowledges it, or to the error that
/// ended its delivery (after retries, `delivery.timeout.ms`, or the producer stopping).
pub struct DeliveryFuture {
    outcome: Arc<BatchOutcome>,
    /// The record's position in its batch.
    idx: u32,
    partition: i32,
    timestamp: i64,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("partition", &self.partition)
            .field("idx", &self.idx)
            .field("done", &self.outcome.result.get().is_some())
            .finish()
    }
}

impl DeliveryFuture {
    /// Whether both records went in the same batch, and so share one outcome: a caller that
    /// only needs to know that everything was written keeps one delivery per batch.
    pub fn same_batch(&self, other: &DeliveryFuture) -> bool {
        Arc::ptr_eq(&self.outcome, &other.outcome)
    }

    /// The outcome if the record's delivery has ended, without waiting.
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        self.outcome
            .result
            .get()
            .map(|result| self.metadata(result))
    }

    fn metadata(
        &self,
        result: &std::result::Result<(i64, Instant), Error>,
    ) -> Result<RecordMetadata> {
        match result {
            Ok((base_offset, acknowledged_at)) => Ok(RecordMetadata {
                partition: self.partition,
                offset: if *base_offset < 0 {
                    -1
                } else {
                    base_offset + i64::from(self.idx)
                },
                timestamp: self.timestamp,
                acknowledged_at: *acknowledged_at,
            }),
            Err(err) => Err(clone_error(err)),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.outcome.result.get() {
            return Poll::Ready(self.metadata(result));
        }
        let mut wakers = self.outcome.wakers.lock();
        if let Some(result) = self.outcome.result.get() {
            drop(wakers);
            return Poll::Ready(self.metadata(result));
        }
        // One task usually awaits many deliveries of a batch: keep one waker per task.
        if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

struct OpenBatch {
    records: Vec<Record>,
    bytes: usize,
    created: Instant,
    /// Creation order within the producer: retries go back in this order.
    seq: u64,
    completion: Completion,
}

struct ReadyBatch {
    topic: Arc<str>,
    partition: i32,
    batch: OpenBatch,
    /// Sends so far that failed with a retriable error.
    attempts: u32,
    /// The sequence number of its first record (idempotent producers), -1 otherwise.
    base_sequence: i32,
}

/// Sequence numbers wrap from `i32::MAX` to 0, as Kafka's do.
fn sequence_after(sequence: i32, n: usize) -> i32 {
    ((i64::from(sequence) + n as i64) % (i64::from(i32::MAX) + 1)) as i32
}

/// The base sequence of a batch of `n` records sealed now for `tp` (-1 when not idempotent),
/// moving the partition's next sequence past it.
fn next_sequence(
    sequences: &mut FastMap<TopicPartition, i32>,
    idempotent: bool,
    tp: &TopicPartition,
    n: usize,
) -> i32 {
    if !idempotent {
        return -1;
    }
    let next = match sequences.get_mut(tp) {
        Some(next) => next,
        None => sequences.entry(tp.clone()).or_insert(0),
    };
    let base = *next;
    *next = sequence_after(base, n);
    base
}

/// One partition's batches: the one filling up, and those waiting to be sent, in order.
#[derive(Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    ready: VecDeque<ReadyBatch>,
    /// Retries waiting for `retry.backoff.ms`: while any waits, later batches wait too.
    muted: usize,
}

/// Fast hash maps for the per-record look-ups (SipHash's DoS resistance buys nothing for a
/// producer's own topic names).
type FastMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

#[derive(Default)]
struct State {
    /// Every partition the producer has batches for, by topic and partition.
    partitions: FastMap<TopicPartition, PartitionQueue>,
    next_batch_seq: u64,
    /// Per topic: the partition keyless records stick to now, and the last one used.
    sticky: FastMap<Arc<str>, (Option<i32>, i32)>,
    /// Per topic: its partition count from the client's metadata, and how many records have
    /// used it since it was read (it is read again every `PARTITION_COUNT_REUSE` records, so a
    /// topic that grows is seen soon, without a metadata look-up per record).
    partition_counts: FastMap<Arc<str>, (i32, u32)>,
    flush: bool,
    closed: bool,
    /// What the sender task is doing, as of its last look at this state.
    sender: SenderState,
    /// Whether batches get sequence numbers.
    idempotent: bool,
    /// Per partition, the sequence number of the next batch's first record (kept when the
    /// partition goes idle: the broker expects the sequence to continue).
    sequences: FastMap<TopicPartition, i32>,
}

/// The sender's state, so that `send` wakes it only when it would otherwise miss a batch: a
/// cross-thread wake-up per batch costs more than building the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum SenderState {
    /// Sending: it looks at the state again when done.
    #[default]
    Busy,
    /// Asleep until the oldest open batch's `linger.ms` is up.
    SleepingUntilLinger,
    /// Asleep with no open batch: a new batch must wake it.
    SleepingIdle,
}

/// How many records use a topic's cached partition count before it is read again.
const PARTITION_COUNT_REUSE: u32 = 1024;

impl State {
    fn partition_count(&mut self, client: &Client, topic: &Arc<str>) -> Option<i32> {
        if let Some((n, uses)) = self.partition_counts.get_mut(topic) {
            if *uses < PARTITION_COUNT_REUSE {
                *uses += 1;
                return Some(*n);
            }
        }
        let n = client.cached_partition_count(topic)? as i32;
        self.partition_counts.insert(topic.clone(), (n, 0));
        Some(n)
    }

    /// Moves a partition's open batch to its ready queue; keyless records then move on to the
    /// next partition of the topic.
    fn close_open_batch(&mut self, topic: &Arc<str>, partition: i32) {
        let tp = TopicPartition {
            topic: topic.clone(),
            partition,
        };
        let Some(queue) = self.partitions.get_mut(&tp) else {
            return;
        };
        let Some(batch) = queue.open.take() else {
            return;
        };
        let base_sequence = next_sequence(
            &mut self.sequences,
            self.idempotent,
            &tp,
            batch.records.len(),
        );
        queue.ready.push_back(ReadyBatch {
            topic: topic.clone(),
            partition,
            batch,
            attempts: 0,
            base_sequence,
        });
        if let Some((sticky, _)) = self.sticky.get_mut(topic) {
            if *sticky == Some(partition) {
                *sticky = None;
            }
        }
    }
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
    /// Whether batches carry a producer id and sequence numbers.
    idempotent: bool,
    /// The producer id and epoch, once InitProducerId answered.
    identity: Mutex<Option<(i64, i16)>>,
    /// The transaction's state, for a transactional producer.
    txn: Option<Mutex<Txn>>,
}

/// Where a transactional producer is (Kafka's `TransactionManager` states).
#[derive(Debug, Clone, PartialEq, Eq)]
enum TxnPhase {
    /// `init_transactions` not called yet.
    Uninitialized,
    /// No transaction open.
    Ready,
    /// Between `begin_transaction` and its end.
    InTransaction,
    /// A failure ended the transaction's hope: only `abort_transaction` goes on.
    Abortable(String),
    /// Fenced or otherwise done for: only closing the producer is left.
    Fatal(String),
}

/// A transactional producer's state.
struct Txn {
    id: String,
    phase: TxnPhase,
    /// Partitions added to the open transaction (AddPartitionsToTxn), and whether offsets were.
    added: std::collections::HashSet<TopicPartition>,
    offsets_added: bool,
}

/// Errors after which a transactional producer can only be closed (Kafka's fatal ones).
fn is_fatal_for_transactions(err: &Error) -> bool {
    matches!(
        err,
        Error::Broker {
            code: kafka_protocol::ResponseError::ProducerFenced
                | kafka_protocol::ResponseError::InvalidProducerEpoch
                | kafka_protocol::ResponseError::TransactionalIdAuthorizationFailed
                | kafka_protocol::ResponseError::InvalidProducerIdMapping
                | kafka_protocol::ResponseError::UnsupportedVersion
                | kafka_protocol::ResponseError::UnsupportedForMessageFormat,
            ..
        } | Error::Transaction { fatal: true, .. }
    )
}

/// What [`Producer::try_enqueue`] did with a record.
enum Enqueued {
    Queued(DeliveryFuture),
    Closed,
    NeedsPartitionCount(ProducerRecord),
    /// An explicit partition the topic does not have (as far as the cached count knows).
    InvalidPartition(ProducerRecord, i32),
}

/// The most records a new batch makes room for up front (tiny records grow the vector past it).
const MAX_PRESIZED_RECORDS: usize = 4096;

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
        let idempotent = config.idempotent();
        let txn = config.transactional_id.clone().map(|id| {
            Mutex::new(Txn {
                id,
                phase: TxnPhase::Uninitialized,
                added: Default::default(),
                offsets_added: false,
            })
        });
        let inner = Arc::new(Inner {
            client,
            buffer: Arc::new(Semaphore::new(config.buffer_memory)),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            config,
            state: Mutex::new(State {
                idempotent,
                ..State::default()
            }),
            idempotent,
            identity: Mutex::new(None),
            txn,
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
        if let Some(txn) = &self.inner.txn {
            let txn = txn.lock();
            match &txn.phase {
                TxnPhase::InTransaction => {}
                TxnPhase::Abortable(why) | TxnPhase::Fatal(why) => {
                    return Err(Error::Transaction {
                        fatal: matches!(txn.phase, TxnPhase::Fatal(_)),
                        message: format!("Cannot send: the transaction failed ({why})"),
                    })
                }
                other => {
                    return Err(Error::Transaction {
                        fatal: false,
                        message: format!(
                            "Cannot send in state {other:?}: call begin_transaction first"
                        ),
                    })
                }
            }
        }
        let size = record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len())
            + record
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>()
            + 16;
        let permits = size.min(self.inner.config.buffer_memory) as u32;
        // Without waiting when there is room (the common case), so no future is built per record.
        // The permit is held until the record is queued (then the batch gives it back when it
        // is done), so an error or a cancelled send returns it.
        let permit = match self.inner.buffer.try_acquire_many(permits) {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(Error::InvalidArgument("producer is closed".into()))
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => self
                .inner
                .buffer
                .acquire_many(permits)
                .await
                .map_err(|_| Error::InvalidArgument("producer is closed".into()))?,
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let mut record = record;
        let mut partition_count = None;
        // Whether an explicit partition is checked against the topic's count: not when the
        // topic is not known yet (its batch then waits for it in the sender, retrying).
        let mut check_partition = true;
        loop {
            match self.try_enqueue(record, size, timestamp, partition_count, check_partition) {
                Enqueued::Queued(delivery) => {
                    permit.forget();
                    return Ok(delivery);
                }
                Enqueued::Closed => {
                    return Err(Error::InvalidArgument("producer is closed".into()))
                }
                // Metadata first, as the Java producer waits for it (creating the topic where
                // the broker auto-creates), explicit partition or not.
                Enqueued::NeedsPartitionCount(back) => {
                    record = back;
                    // A record for an explicit partition does not wait: its batch waits for
                    // the topic in the sender, retrying.
                    let found = if record.partition.is_none() {
                        self.topic_metadata(&record.topic).await
                    } else {
                        self.inner.client.topic(&record.topic, true).await
                    };
                    match found {
                        Ok(info) => partition_count = Some(info.leaders.len() as i32),
                        Err(err) if record.partition.is_none() => return Err(err),
                        Err(_) => check_partition = false,
                    }
                }
                Enqueued::InvalidPartition(back, n) => {
                    if partition_count.is_some() {
                        return Err(Error::InvalidArgument(format!(
                            "Invalid partition given with record: {} is not in the range [0...{n})",
                            back.partition.unwrap_or(-1)
                        )));
                    }
                    // The cached count may be older than new partitions: look again once.
                    record = back;
                    let info = self.inner.client.topic(&record.topic, true).await?;
                    partition_count = Some(info.leaders.len() as i32);
                }
            }
        }
    }

    /// The topic's metadata, waiting up to `max.block.ms` while the answer is a retriable
    /// error (UNKNOWN_TOPIC_OR_PARTITION on a Kafka broker whose metadata has not caught up
    /// with a new topic yet), as the Java producer waits for metadata.
    async fn topic_metadata(&self, topic: &str) -> Result<super::TopicInfo> {
        let deadline = tokio::time::Instant::now() + self.inner.config.max_block;
        loop {
            match self.inner.client.topic(topic, true).await {
                Err(Error::Broker { code, .. })
                    if code.is_retriable() && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(self.inner.config.retry_backoff).await;
                }
                other => return other,
            }
        }
    }

    /// Adds the record to its partition's open batch, under the state lock and without
    /// waiting; hands the record back when its partition needs a partition count that is not
    /// cached (keyed records, and keyless ones when their topic has no sticky partition yet).
    fn try_enqueue(
        &self,
        record: ProducerRecord,
        size: usize,
        timestamp: i64,
        partition_count: Option<i32>,
        check_partition: bool,
    ) -> Enqueued {
        let mut guard = self.inner.state.lock();
        let state = &mut *guard;
        if state.closed {
            return Enqueued::Closed;
        }
        let sticky = match (record.partition, &record.key) {
            (None, None) => state
                .sticky
                .get(&record.topic)
                .and_then(|(sticky, _)| *sticky),
            _ => None,
        };
        let partition = match (record.partition, sticky) {
            (Some(partition), _) if !check_partition => partition,
            (Some(partition), _) => {
                let n = match partition_count
                    .or_else(|| state.partition_count(&self.inner.client, &record.topic))
                {
                    Some(n) => n,
                    None => return Enqueued::NeedsPartitionCount(record),
                };
                if !(0..n).contains(&partition) {
                    return Enqueued::InvalidPartition(record, n);
                }
                partition
            }
            (None, Some(partition)) => partition,
            (None, None) => {
                let n = match partition_count
                    .or_else(|| state.partition_count(&self.inner.client, &record.topic))
                {
                    Some(n) => n.max(1),
                    None => return Enqueued::NeedsPartitionCount(record),
                };
                match &record.key {
                    Some(key) => partition_for_key(key, n),
                    None => {
                        // Move on to the next partition each time a sticky batch closes.
                        let (sticky, last) = state
                            .sticky
                            .entry(record.topic.clone())
                            .or_insert((None, -1));
                        *last = (*last + 1) % n;
                        *sticky = Some(*last);
                        *last
                    }
                }
            }
        };
        let topic = record.topic.clone();
        let queue = state
            .partitions
            .entry(TopicPartition {
                topic: record.topic,
                partition,
            })
            .or_default();
        let next_seq = &mut state.next_batch_seq;
        let batch_size = self.inner.config.batch_size;
        let batch = queue.open.get_or_insert_with(|| {
            *next_seq += 1;
            OpenBatch {
                // Room for a batch of records like this one: growing the vector by doubling
                // would copy every record several times over.
                records: Vec::with_capacity(
                    (batch_size / size.max(1) + 1).min(MAX_PRESIZED_RECORDS),
                ),
                bytes: 0,
                created: Instant::now(),
                seq: *next_seq,
                completion: Completion::new(),
            }
        });
        let idx = batch.records.len();
        let headers: IndexMap<StrBytes, Option<Bytes>> = if record.headers.is_empty() {
            IndexMap::default()
        } else {
            record
                .headers
                .into_iter()
                .map(|(k, v)| (StrBytes::from_string(k), v))
                .collect()
        };
        batch.records.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: idx as i64,
            // The encoder keeps one batch only while offset - sequence is constant; with base
            // sequence -1 this marks the batch as non-idempotent, as Kafka expects.
            sequence: idx as i32 - 1,
            timestamp,
            key: record.key,
            value: record.value,
            headers,
        });
        batch.bytes += size;
        let delivery = DeliveryFuture {
            outcome: batch.completion.0.clone(),
            idx: idx as u32,
            partition,
            timestamp,
        };
        self.inner.outstanding.fetch_add(1, Ordering::AcqRel);
        let wake = if batch.bytes >= self.inner.config.batch_size {
            state.close_open_batch(&topic, partition);
            // A busy sender looks again when it is done; a sleeping one must be told.
            state.sender != SenderState::Busy
        } else {
            // The sender must learn of a new batch to honour linger.ms, unless it will wake
            // for an older batch first (whose linger ends earlier).
            idx == 0 && state.sender == SenderState::SleepingIdle
        };
        drop(guard);
        if wake {
            self.inner.wake.notify_one();
        }
        Enqueued::Queued(delivery)
    }

    fn txn(&self) -> Result<&Mutex<Txn>> {
        self.inner.txn.as_ref().ok_or_else(|| {
            Error::InvalidArgument("not a transactional producer: set transactional.id".into())
        })
    }

    /// The producer id and epoch of a transactional producer that called init_transactions.
    fn initialized_identity(&self) -> Result<(i64, i16)> {
        self.producer_id_and_epoch()
            .ok_or_else(|| Error::Transaction {
                fatal: false,
                message: "init_transactions was not called".into(),
            })
    }

    /// The producer id and epoch, once known (idempotent and transactional producers).
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        *self.inner.identity.lock()
    }

    /// Registers the transactional id with its coordinator: a producer id, and an epoch that
    /// fences every older instance with the same id (their open transaction is aborted).
    pub async fn init_transactions(&self) -> Result<()> {
        self.inner.config.check()?;
        let txn = self.txn()?;
        let id = {
            let txn = txn.lock();
            if txn.phase != TxnPhase::Uninitialized {
                return Err(Error::Transaction {
                    fatal: false,
                    message: format!("init_transactions called twice (state {:?})", txn.phase),
                });
            }
            txn.id.clone()
        };
        let identity = self
            .inner
            .client
            .init_producer_id(Some(&id), self.inner.config.transaction_timeout)
            .await?;
        tracing::debug!(transactional_id = %id, producer_id = identity.0, epoch = identity.1,
            "transactional producer initialized");
        *self.inner.identity.lock() = Some(identity);
        self.inner.state.lock().sequences.clear();
        txn.lock().phase = TxnPhase::Ready;
        Ok(())
    }

    fn check_phase(txn: &Txn, wanted: &[TxnPhase], call: &str) -> Result<()> {
        match &txn.phase {
            phase if wanted.contains(phase) => Ok(()),
            TxnPhase::Fatal(why) => Err(Error::Transaction {
                fatal: true,
                message: format!("Cannot {call}: the producer is fenced or failed ({why})"),
            }),
            TxnPhase::Abortable(why) => Err(Error::Transaction {
                fatal: false,
                message: format!("Cannot {call}: the transaction must be aborted ({why})"),
            }),
            other => Err(Error::Transaction {
                fatal: false,
                message: format!("Cannot {call} in state {other:?}"),
            }),
        }
    }

    /// Opens a transaction: what is sent until it ends is committed or aborted together.
    pub fn begin_transaction(&self) -> Result<()> {
        let mut txn = self.txn()?.lock();
        Producer::check_phase(&txn, &[TxnPhase::Ready], "begin_transaction")?;
        txn.phase = TxnPhase::InTransaction;
        txn.added.clear();
        txn.offsets_added = false;
        Ok(())
    }

    /// Commits a consumer group's offsets with the transaction (consume-transform-produce):
    /// the group sees them only if the transaction commits.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &super::transactions::ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.txn()?;
        let id = {
            let txn = txn.lock();
            Producer::check_phase(
                &txn,
                &[TxnPhase::InTransaction],
                "send_offsets_to_transaction",
            )?;
            txn.id.clone()
        };
        let identity = self.initialized_identity()?;
        match self
            .inner
            .client
            .send_offsets_to_txn(&id, identity, offsets, group)
            .await
        {
            Ok(()) => {
                txn.lock().offsets_added = true;
                Ok(())
            }
            Err(err) => {
                mark_transaction_failed(&self.inner, &err);
                Err(err)
            }
        }
    }

    /// Sends what is queued, then commits the transaction (EndTxn). Fails, leaving the
    /// transaction to abort, if any of its records failed.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true).await
    }

    /// Aborts the transaction: its records are never seen by read_committed consumers, and
    /// its offsets are not committed.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false).await
    }

    async fn end_transaction(&self, commit: bool) -> Result<()> {
        let call = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        let txn = self.txn()?;
        let was_abortable = {
            let txn = txn.lock();
            match &txn.phase {
                TxnPhase::Abortable(_) if !commit => true,
                _ => {
                    Producer::check_phase(&txn, &[TxnPhase::InTransaction], call)?;
                    false
                }
            }
        };
        // Every record of the transaction is written (or failed) before it ends.
        self.flush().await;
        let (id, anything) = {
            let txn = txn.lock();
            if commit {
                Producer::check_phase(&txn, &[TxnPhase::InTransaction], call)?;
            } else if let TxnPhase::Fatal(_) = txn.phase {
                Producer::check_phase(&txn, &[], call)?;
            }
            (txn.id.clone(), !txn.added.is_empty() || txn.offsets_added)
        };
        let identity = self.initialized_identity()?;
        // A transaction that added nothing has nothing for the coordinator to end.
        if anything {
            if let Err(err) = self.inner.client.end_txn(&id, identity, commit).await {
                mark_transaction_failed(&self.inner, &err);
                return Err(err);
            }
        }
        if was_abortable {
            // Failed batches left gaps in the sequences: a new epoch starts them over.
            let identity = self
                .inner
                .client
                .init_producer_id(Some(&id), self.inner.config.transaction_timeout)
                .await;
            match identity {
                Ok(identity) => {
                    *self.inner.identity.lock() = Some(identity);
                    self.inner.state.lock().sequences.clear();
                }
                Err(err) => {
                    mark_transaction_failed(&self.inner, &err);
                    return Err(err);
                }
            }
        }
        let mut txn = txn.lock();
        txn.phase = TxnPhase::Ready;
        txn.added.clear();
        txn.offsets_added = false;
        Ok(())
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
        // Move batches that lingered long enough (or all, on flush) to the ready queues, then
        // take the first ready batch of every partition that is not muted: a produce request
        // carries one batch per partition (Kafka refuses more), so the rest wait, in order.
        let (ready, next_deadline, closed) = {
            let mut state = inner.state.lock();
            let state = &mut *state;
            let now = Instant::now();
            let flush = std::mem::take(&mut state.flush);
            let closed = state.closed;
            let linger = inner.config.linger;
            let mut next_deadline: Option<Instant> = None;
            let mut ready = Vec::new();
            for (TopicPartition { topic, partition }, queue) in state.partitions.iter_mut() {
                if let Some(open) = &queue.open {
                    let due = open.created + linger;
                    if flush || closed || now >= due {
                        if let Some(batch) = queue.open.take() {
                            let tp = TopicPartition {
                                topic: topic.clone(),
                                partition: *partition,
                            };
                            let base_sequence = next_sequence(
                                &mut state.sequences,
                                state.idempotent,
                                &tp,
                                batch.records.len(),
                            );
                            queue.ready.push_back(ReadyBatch {
                                topic: topic.clone(),
                                partition: *partition,
                                batch,
                                attempts: 0,
                                base_sequence,
                            });
                            // Keyless records of the topic stick to another partition now.
                            if let Some((sticky, _)) = state.sticky.get_mut(topic) {
                                if *sticky == Some(*partition) {
                                    *sticky = None;
                                }
                            }
                        }
                    } else {
                        next_deadline = Some(next_deadline.map_or(due, |d| d.min(due)));
                    }
                }
                if queue.muted == 0 {
                    if let Some(batch) = queue.ready.pop_front() {
                        ready.push(batch);
                    }
                }
            }
            // Forget idle partitions so that the map stays as small as the active set.
            if state.partitions.len() > 64 {
                state
                    .partitions
                    .retain(|_, q| q.open.is_some() || !q.ready.is_empty() || q.muted > 0);
            }
            // Said under the same lock as the look above: a `send` after it sees this and wakes
            // the sender if needed (the wake-up is registered already, so it is not lost).
            state.sender = match (ready.is_empty(), next_deadline) {
                (false, _) => SenderState::Busy,
                (true, Some(_)) => SenderState::SleepingUntilLinger,
                (true, None) => SenderState::SleepingIdle,
            };
            (ready, next_deadline, closed)
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

/// The producer id and epoch batches carry: InitProducerId on first use for an idempotent
/// producer; `init_transactions`' for a transactional one. None when not idempotent.
async fn producer_identity(inner: &Arc<Inner>) -> Result<Option<(i64, i16)>> {
    if !inner.idempotent {
        return Ok(None);
    }
    if let Some(identity) = *inner.identity.lock() {
        return Ok(Some(identity));
    }
    if inner.txn.is_some() {
        return Err(Error::Transaction {
            fatal: false,
            message: "init_transactions was not called".into(),
        });
    }
    let identity = inner
        .client
        .init_producer_id(None, inner.config.transaction_timeout)
        .await?;
    tracing::debug!(
        producer_id = identity.0,
        epoch = identity.1,
        "idempotent producer id"
    );
    *inner.identity.lock() = Some(identity);
    Ok(Some(identity))
}

/// Adds the partitions of these batches that the open transaction lacks (AddPartitionsToTxn)
/// before they are sent; on failure, the transaction becomes abortable (or fatal).
async fn add_partitions_to_transaction(
    inner: &Arc<Inner>,
    identity: (i64, i16),
    ready: &[ReadyBatch],
) -> Result<()> {
    let Some(txn) = &inner.txn else {
        return Ok(());
    };
    let (id, missing) = {
        let txn = txn.lock();
        let mut missing: Vec<TopicPartition> = Vec::new();
        for batch in ready {
            let tp = TopicPartition {
                topic: batch.topic.clone(),
                partition: batch.partition,
            };
            if !txn.added.contains(&tp) && !missing.contains(&tp) {
                missing.push(tp);
            }
        }
        (txn.id.clone(), missing)
    };
    if missing.is_empty() {
        return Ok(());
    }
    match inner
        .client
        .add_partitions_to_txn(&id, identity, &missing)
        .await
    {
        Ok(()) => {
            txn.lock().added.extend(missing);
            Ok(())
        }
        Err(err) => {
            mark_transaction_failed(inner, &err);
            Err(err)
        }
    }
}

/// A failure inside a transaction: it can only be aborted now (or, if fenced, nothing more).
fn mark_transaction_failed(inner: &Inner, err: &Error) {
    if let Some(txn) = &inner.txn {
        let mut txn = txn.lock();
        if matches!(txn.phase, TxnPhase::Fatal(_)) {
            return;
        }
        txn.phase = if is_fatal_for_transactions(err) {
            TxnPhase::Fatal(err.to_string())
        } else {
            TxnPhase::Abortable(err.to_string())
        };
    }
}

/// Groups ready batches into one request per leader and sends them, keeping at most
/// `max.in.flight` requests outstanding.
async fn send_batches(inner: &Arc<Inner>, ready: Vec<ReadyBatch>) {
    let identity = match producer_identity(inner).await {
        Ok(identity) => identity,
        Err(err) => {
            for batch in ready {
                retry_or_fail(inner, batch, clone_error(&err));
            }
            return;
        }
    };
    if let Some(identity) = identity {
        if let Err(err) = add_partitions_to_transaction(inner, identity, &ready).await {
            for batch in ready {
                fail_batch(inner, batch.batch, clone_error(&err));
            }
            return;
        }
    }
    let mut by_leader: Vec<(Arc<super::Connection>, Vec<ReadyBatch>)> = Vec::new();
    for batch in ready {
        match inner
            .client
            .leader_connection(&batch.topic, batch.partition)
            .await
        {
            Ok(connection) => match by_leader
                .iter_mut()
                .find(|(c, _)| Arc::ptr_eq(c, &connection))
            {
                Some((_, batches)) => batches.push(batch),
                None => by_leader.push((connection, vec![batch])),
            },
            Err(err) => retry_or_fail(inner, batch, err),
        }
    }
    for (connection, batches) in by_leader {
        let Ok(permit) = inner.in_flight.clone().acquire_owned().await else {
            return;
        };
        // Requests are written here, in order; only the wait for each response runs apart, so
        // that batches of a partition reach the broker in the order they were sent.
        if let Some(in_flight) = start_request(inner, &connection, batches, identity).await {
            let inner = inner.clone();
            tokio::spawn(async move {
                in_flight.complete(&inner).await;
                drop(permit);
            });
        }
    }
}

/// Errors worth sending a batch again for: the broker may answer differently later. For an
/// idempotent producer OUT_OF_ORDER_SEQUENCE_NUMBER too: a batch sent while an earlier one of
/// its partition failed is refused until that one is written again (retries go in order).
fn is_retriable(err: &Error, idempotent: bool) -> bool {
    match err {
        Error::Broker {
            code: kafka_protocol::ResponseError::OutOfOrderSequenceNumber,
            ..
        } => idempotent,
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
    if !is_retriable(&err, inner.idempotent) || batch.attempts >= config.retries {
        return fail_batch(inner, batch.batch, err);
    }
    if age + config.retry_backoff >= config.delivery_timeout {
        let expired = Error::Timeout {
            what: format!(
                "delivery of {} record(s) to {}-{} (last error: {err})",
                batch.batch.records.len(),
                batch.topic,
                batch.partition
            ),
            after_ms: config.delivery_timeout.as_millis() as u64,
        };
        return fail_batch(inner, batch.batch, expired);
    }
    tracing::debug!(topic = %batch.topic, partition = batch.partition, attempt = batch.attempts + 1, %err, "retrying a produce batch");
    if matches!(&err, Error::Broker { .. }) {
        // A moved leader or a new topic: ask for fresh metadata before the retry.
        inner.client.invalidate_topic(&batch.topic);
    }
    batch.attempts += 1;
    inner.record_retries.fetch_add(1, Ordering::Relaxed);
    let key = TopicPartition {
        topic: batch.topic.clone(),
        partition: batch.partition,
    };
    inner
        .state
        .lock()
        .partitions
        .entry(key.clone())
        .or_default()
        .muted += 1;
    let inner = inner.clone();
    tokio::spawn(async move {
        tokio::time::sleep(inner.config.retry_backoff).await;
        {
            let mut state = inner.state.lock();
            let queue = state.partitions.entry(key).or_default();
            queue.muted = queue.muted.saturating_sub(1);
            // Back in creation order: before every later batch of its partition.
            let at = queue
                .ready
                .iter()
                .position(|b| b.batch.seq > batch.batch.seq)
                .unwrap_or(queue.ready.len());
            queue.ready.insert(at, batch);
        }
        inner.wake.notify_one();
    });
}

fn fail_batch(inner: &Inner, batch: OpenBatch, err: Error) {
    mark_transaction_failed(inner, &err);
    if inner.idempotent && inner.txn.is_none() {
        // The batch's sequence numbers are lost to the broker: a new producer id (which may
        // start at any sequence) keeps the next batches from waiting for them (KIP-360).
        *inner.identity.lock() = None;
    }
    batch.completion.complete(Err(err));
    finish(inner, batch.records.len(), batch.bytes);
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
    identity: Option<(i64, i16)>,
) -> Option<InFlight> {
    let options = RecordEncodeOptions {
        version: 2,
        compression: inner.config.compression,
    };
    let mut topics: Vec<TopicProduceData> = Vec::new();
    let mut encoded = Vec::with_capacity(batches.len());
    let transactional = inner.txn.is_some();
    for mut batch in batches {
        // An idempotent batch: the producer id, epoch and sequence numbers fixed at sealing,
        // the same on every retry.
        if let Some((producer_id, epoch)) = identity {
            let base = batch.base_sequence;
            for (idx, record) in batch.batch.records.iter_mut().enumerate() {
                record.producer_id = producer_id;
                record.producer_epoch = epoch;
                record.sequence = sequence_after(base, idx);
                record.transactional = transactional;
            }
        }
        // Sized up front: growing the buffer would copy the batch again at each doubling.
        let mut buf =
            BytesMut::with_capacity(batch.batch.bytes + 61 + 24 * batch.batch.records.len());
        if let Err(err) = RecordBatchEncoder::encode(&mut buf, &batch.batch.records, &options) {
            fail_batch(
                inner,
                batch.batch,
                Error::Protocol(format!("encode batch: {err}")),
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
    // A transactional batch names its transactional id (Kafka refuses one that does not:
    // TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    let transactional_id = inner
        .config
        .transactional_id
        .as_deref()
        .filter(|_| transactional)
        .map(|id| TransactionalId(StrBytes::from_string(id.to_string())));
    let request = ProduceRequest::default()
        .with_transactional_id(transactional_id)
        .with_acks(inner.config.acks)
        .with_timeout_ms(30_000)
        .with_topic_data(topics);
    if inner.config.acks == 0 {
        let result = connection.send_no_response(&request).await;
        let acknowledged_at = Instant::now();
        for batch in encoded {
            let batch = batch.batch;
            batch.completion.complete(match &result {
                Ok(()) => Ok((-1, acknowledged_at)),
                Err(err) => Err(clone_error(err)),
            });
            finish(inner, batch.records.len(), batch.bytes);
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
            match result {
                Ok(base) => {
                    let batch = batch.batch;
                    batch.completion.complete(Ok((base, acknowledged_at)));
                    finish(inner, batch.records.len(), batch.bytes);
                }
                Err(err) => retry_or_fail(inner, batch, err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(completion: &Completion, idx: u32) -> DeliveryFuture {
        DeliveryFuture {
            outcome: completion.0.clone(),
            idx,
            partition: 3,
            timestamp: 1_000 + i64::from(idx),
        }
    }

    #[tokio::test]
    async fn every_delivery_of_a_batch_wakes_with_its_own_offset() {
        let completion = Completion::new();
        let waiting: Vec<_> = (0..3)
            .map(|idx| tokio::spawn(delivery(&completion, idx)))
            .collect();
        let early = delivery(&completion, 7);
        assert!(early.try_result().is_none());
        tokio::task::yield_now().await;
        let acknowledged_at = Instant::now();
        completion.complete(Ok((40, acknowledged_at)));
        for (idx, task) in waiting.into_iter().enumerate() {
            let metadata = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("woken")
                .expect("task")
                .expect("delivered");
            assert_eq!(metadata.offset, 40 + idx as i64);
            assert_eq!(metadata.partition, 3);
            assert_eq!(metadata.timestamp, 1_000 + idx as i64);
            assert_eq!(metadata.acknowledged_at, acknowledged_at);
        }
        assert_eq!(
            early
                .try_result()
                .map(|r| r.map(|m| m.offset))
                .transpose()
                .ok(),
            Some(Some(47))
        );
    }

    #[tokio::test]
    async fn acks_0_deliveries_have_no_offset() {
        let completion = Completion::new();
        completion.complete(Ok((-1, Instant::now())));
        assert_eq!(
            delivery(&completion, 5).await.expect("delivered").offset,
            -1
        );
    }

    #[tokio::test]
    async fn a_batch_dropped_unfinished_fails_its_deliveries() {
        let completion = Completion::new();
        let waiting = tokio::spawn(delivery(&completion, 0));
        tokio::task::yield_now().await;
        drop(completion);
        let err = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("task")
            .expect_err("no delivery");
        assert!(err.to_string().contains("stopped"), "{err}");
    }

    #[tokio::test]
    async fn the_first_outcome_stands() {
        let completion = Completion::new();
        let pending = delivery(&completion, 1);
        completion.complete(Err(Error::Protocol("first".into())));
        completion.complete(Ok((10, Instant::now())));
        let err = pending.await.expect_err("the error stands");
        assert!(err.to_string().contains("first"), "{err}");
    }
}
