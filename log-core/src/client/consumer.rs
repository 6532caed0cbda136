//! An assignment-based consumer: it reads given partitions from given start points with Fetch
//! requests to their leaders (long polling with `fetch.max.wait.ms` / `fetch.min.bytes`), and
//! decodes the record batches it gets. `seek`, `position`, `pause`/`resume` and
//! `max.poll.records` behave as in the Java consumer; `GroupConsumer` builds on it.
//!
//! Fetches are pipelined as the Java consumer's are: when `poll` hands records out, the next
//! fetch is already sent, so the broker reads while the application works on the records it
//! has. Where its batches are decoded depends on who waits: if the application is still busy
//! when the answer comes, the fetch's task decodes them (as librdkafka's broker threads do),
//! so decoding overlaps the application's work; if the application is already waiting, it
//! decodes them itself, so that the records do not cross cores and no third thread competes
//! for them (BENCHMARKS.md has the figures that chose this). A fetch sent before the
//! positions changed (`seek`, `pause`, `resume`, assignment) is dropped unread.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::Client;
use crate::error::{Error, Result};
use crate::model::TopicPartition;
use crate::storage::batch::{BatchHeader, BATCH_HEADER_LEN};

/// Where a partition's reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start offset.
    Beginning,
    /// The end (only records produced from now on).
    End,
    /// An offset; negative counts back from the end (`-1` is the last record).
    Offset(i64),
    /// The first record at or after this timestamp (ms); the end if there is none.
    Timestamp(i64),
}

/// Consumer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`.
    pub max_wait: Duration,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// `isolation.level`: 0 read_uncommitted, 1 read_committed.
    pub isolation_level: i8,
    /// `max.poll.records`: the most records one `poll` returns (the rest stay buffered).
    pub max_poll_records: usize,
}

impl Default for ConsumerConfig {
    /// The Java client's defaults.
    fn default() -> Self {
        ConsumerConfig {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 52_428_800,
            partition_max_bytes: 1_048_576,
            isolation_level: 0,
            max_poll_records: 500,
        }
    }
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic (shared by the records of a partition: one allocation, not one per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl ConsumerRecord {
    /// The record's partition (sharing the topic name, not copying it).
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }
}

#[derive(Debug, Clone)]
struct Position {
    tp: TopicPartition,
    /// The next offset to fetch; records before it may still be buffered.
    offset: i64,
    high_watermark: i64,
    paused: bool,
}

/// Reads assigned partitions.
pub struct Consumer {
    client: Arc<Client>,
    config: ConsumerConfig,
    positions: Vec<Position>,
    buffered: VecDeque<ConsumerRecord>,
    /// Bumped by every change of the positions other than a fetch's own progress.
    epoch: u64,
    prefetch: Option<Prefetch>,
}

/// A fetch sent ahead of need, with the epoch of the positions it was sent from.
struct Prefetch {
    epoch: u64,
    task: tokio::task::JoinHandle<Result<Vec<Fetched>>>,
    /// Set once the consumer waits for this fetch: its batches are then left to the consumer
    /// to decode.
    awaited: Arc<AtomicBool>,
}

/// Where one partition's fetch starts.
struct Planned {
    tp: TopicPartition,
    offset: i64,
}

/// What one partition's fetch brought.
struct Fetched {
    tp: TopicPartition,
    /// The offset the fetch was sent from: the result applies only at that position.
    fetch_offset: i64,
    high_watermark: i64,
    batches: Batches,
}

/// A partition's batches as the fetch's task left them.
enum Batches {
    /// Not decoded: the consumer was waiting, so it decodes them (with the aborted
    /// transactions the broker listed for a read_committed fetch).
    Raw(Option<Bytes>, Vec<AbortedTxn>),
    /// Decoded by the fetch's task while the consumer was busy.
    Decoded {
        records: VecDeque<ConsumerRecord>,
        next_offset: i64,
    },
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(prefetch) = self.prefetch.take() {
            prefetch.task.abort();
        }
    }
}

impl Consumer {
    /// A consumer of `partitions`, each from its start point.
    pub async fn assign(
        client: Arc<Client>,
        partitions: Vec<(TopicPartition, StartOffset)>,
        config: ConsumerConfig,
    ) -> Result<Consumer> {
        let mut positions = Vec::with_capacity(partitions.len());
        for (tp, start) in partitions {
            let offset = resolve_start(&client, &tp, start).await?;
            positions.push(Position {
                tp,
                offset,
                high_watermark: -1,
                paused: false,
            });
        }
        Ok(Consumer {
            client,
            config,
            positions,
            buffered: VecDeque::new(),
            epoch: 0,
            prefetch: None,
        })
    }

    /// Adds partitions, each from its start point (Java's incremental assign); partitions
    /// already assigned keep their positions.
    pub async fn add_partitions(
        &mut self,
        partitions: Vec<(TopicPartition, StartOffset)>,
    ) -> Result<()> {
        for (tp, start) in partitions {
            if self.index_of(&tp.topic, tp.partition).is_ok() {
                continue;
            }
            let offset = resolve_start(&self.client, &tp, start).await?;
            self.epoch += 1;
            self.positions.push(Position {
                tp,
                offset,
                high_watermark: -1,
                paused: false,
            });
        }
        Ok(())
    }

    /// Stops reading these partitions, dropping what is buffered of them.
    pub fn remove_partitions(&mut self, partitions: &[TopicPartition]) {
        let removed = |topic: &str, partition: i32| {
            partitions
                .iter()
                .any(|tp| tp.partition == partition && &*tp.topic == topic)
        };
        self.epoch += 1;
        self.positions
            .retain(|p| !removed(&p.tp.topic, p.tp.partition));
        self.buffered.retain(|r| !removed(&r.topic, r.partition));
    }

    /// The offset of the next record `poll` returns, for each assigned partition (what a
    /// commit stores: records fetched but not yet returned are not counted as consumed).
    pub fn positions(&self) -> Vec<(TopicPartition, i64)> {
        // One pass over the buffer: the first buffered record of a partition is its next.
        let mut first: HashMap<(&str, i32), i64> = HashMap::new();
        for record in &self.buffered {
            first
                .entry((&*record.topic, record.partition))
                .or_insert(record.offset);
        }
        self.positions
            .iter()
            .map(|p| {
                let next = first
                    .get(&(&*p.tp.topic, p.tp.partition))
                    .copied()
                    .unwrap_or(p.offset);
                (p.tp.clone(), next)
            })
            .collect()
    }

    /// The offset of the next record `poll` returns from one partition.
    pub fn position(&self, topic: &str, partition: i32) -> Result<i64> {
        let at = self.index_of(topic, partition)?;
        Ok(self.next_returned(&self.positions[at]))
    }

    /// Moves a partition's position: the next `poll` returns records from `offset` (records
    /// already buffered for it are dropped). A start point resolves as in `assign`.
    pub async fn seek(&mut self, topic: &str, partition: i32, to: StartOffset) -> Result<()> {
        let at = self.index_of(topic, partition)?;
        let offset = resolve_start(&self.client, &self.positions[at].tp, to).await?;
        self.buffered
            .retain(|r| !(r.partition == partition && &*r.topic == topic));
        self.epoch += 1;
        let position = &mut self.positions[at];
        position.offset = offset;
        position.high_watermark = -1;
        Ok(())
    }

    /// Stops fetching from, and returning records of, these partitions until `resume`.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, true)
    }

    /// Fetches and returns records of paused partitions again.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, false)
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.positions
            .iter()
            .filter(|p| p.paused)
            .map(|p| p.tp.clone())
            .collect()
    }

    /// Whether a fetch sent ahead is still waiting for its answer (once it has one, its
    /// records are ready for the next poll).
    pub fn fetch_in_flight(&self) -> bool {
        self.prefetch
            .as_ref()
            .is_some_and(|prefetch| !prefetch.task.is_finished())
    }

    /// Whether every partition has been read up to the high watermark of the last fetch.
    pub fn at_end(&self) -> bool {
        self.buffered.is_empty()
            && self
                .positions
                .iter()
                .all(|p| p.high_watermark >= 0 && p.offset >= p.high_watermark)
    }

    /// Returns up to `max.poll.records` buffered records of partitions that are not paused,
    /// or fetches once (waiting up to `fetch.max.wait.ms` for data) and returns what came.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.poll_at_most(self.config.max_poll_records).await
    }

    /// `poll` returning at most `limit` records (the rest stay buffered, not consumed).
    pub(crate) async fn poll_at_most(&mut self, limit: usize) -> Result<Vec<ConsumerRecord>> {
        self.poll_within(limit, None).await
    }

    /// Java's `poll(timeout)`: returns up to `limit` records, waiting at most `timeout` for a
    /// fetch to bring some (none: until one fetch is answered). A fetch still on its way when
    /// the time is up stays on its way, and the next poll takes its records.
    pub async fn poll_timeout(
        &mut self,
        limit: usize,
        timeout: Duration,
    ) -> Result<Vec<ConsumerRecord>> {
        self.poll_within(limit, Some(timeout)).await
    }

    async fn poll_within(
        &mut self,
        limit: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<ConsumerRecord>> {
        if !self.has_returnable() {
            if self.positions.iter().all(|p| p.paused) {
                // Nothing may be fetched: wait as a fetch would, so callers do not spin.
                tokio::time::sleep(
                    timeout
                        .unwrap_or(self.config.max_wait)
                        .min(self.config.max_wait),
                )
                .await;
                return Ok(Vec::new());
            }
            if self
                .prefetch
                .as_ref()
                .is_some_and(|prefetch| prefetch.epoch != self.epoch)
            {
                // Sent from positions that have changed since: its records are not wanted.
                if let Some(stale) = self.prefetch.take() {
                    stale.task.abort();
                }
            }
            self.prefetch_next();
            let Some(prefetch) = self.prefetch.as_mut() else {
                return Ok(Vec::new());
            };
            prefetch.awaited.store(true, Ordering::Release);
            let answered = match timeout {
                None => (&mut prefetch.task).await,
                Some(timeout) => match tokio::time::timeout(timeout, &mut prefetch.task).await {
                    Ok(answered) => answered,
                    Err(_) => return Ok(Vec::new()),
                },
            };
            self.prefetch = None;
            let fetched = answered
                .map_err(|e| Error::Protocol(format!("a fetch ended without an answer: {e}")))?;
            self.apply(fetched?)?;
        }
        let limit = limit.max(1);
        if !self.positions.iter().any(|p| p.paused) {
            let n = limit.min(self.buffered.len());
            let records = self.buffered.drain(..n).collect();
            self.prefetch_next();
            return Ok(records);
        }
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.buffered.len());
        for record in self.buffered.drain(..) {
            if out.len() < limit && !is_paused(&self.positions, &record.topic, record.partition) {
                out.push(record);
            } else {
                kept.push_back(record);
            }
        }
        self.buffered = kept;
        self.prefetch_next();
        Ok(out)
    }

    /// Sends the next fetch now, unless one is on its way, so that it is answered (and
    /// decoded) while the caller works on the records it has.
    fn prefetch_next(&mut self) {
        if self.prefetch.is_some() || self.positions.iter().all(|p| p.paused) {
            return;
        }
        let awaited = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(fetch(
            self.client.clone(),
            self.config.clone(),
            self.fetch_plan(),
            awaited.clone(),
        ));
        self.prefetch = Some(Prefetch {
            epoch: self.epoch,
            task,
            awaited,
        });
    }

    /// The partitions a fetch now asks for, from their next offsets.
    fn fetch_plan(&self) -> Vec<Planned> {
        self.positions
            .iter()
            .filter(|p| !p.paused)
            .map(|p| Planned {
                tp: p.tp.clone(),
                offset: p.offset,
            })
            .collect()
    }

    /// Takes a fetch's records for the partitions still at the offsets it was sent from.
    fn apply(&mut self, fetched: Vec<Fetched>) -> Result<()> {
        for data in fetched {
            let Some(position) = self
                .positions
                .iter_mut()
                .find(|p| p.tp == data.tp && !p.paused)
            else {
                continue;
            };
            if position.offset != data.fetch_offset {
                continue;
            }
            position.high_watermark = data.high_watermark;
            match data.batches {
                Batches::Raw(None, _) => {}
                Batches::Raw(Some(bytes), aborted) => {
                    decode_into(bytes, &aborted, position, &mut self.buffered)?
                }
                Batches::Decoded {
                    mut records,
                    next_offset,
                } => {
                    position.offset = next_offset;
                    if self.buffered.is_empty() {
                        // The usual case: no records move.
                        std::mem::swap(&mut self.buffered, &mut records);
                    } else {
                        self.buffered.append(&mut records);
                    }
                }
            }
        }
        Ok(())
    }

    /// The records as an async `Stream`, one at a time, in order per partition; an error is
    /// yielded and ends the stream.
    pub fn records(&mut self) -> RecordStream<'_> {
        records_stream(self, |consumer| Box::pin(consumer.poll_at_most(1)))
    }

    fn has_returnable(&self) -> bool {
        self.buffered
            .iter()
            .any(|r| !is_paused(&self.positions, &r.topic, r.partition))
    }

    fn next_returned(&self, position: &Position) -> i64 {
        self.buffered
            .iter()
            .find(|r| r.partition == position.tp.partition && r.topic == position.tp.topic)
            .map_or(position.offset, |r| r.offset)
    }

    fn index_of(&self, topic: &str, partition: i32) -> Result<usize> {
        self.positions
            .iter()
            .position(|p| &*p.tp.topic == topic && p.tp.partition == partition)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{topic}-{partition} is not assigned to this consumer"
                ))
            })
    }

    fn set_paused(&mut self, partitions: &[TopicPartition], paused: bool) -> Result<()> {
        let indexes = partitions
            .iter()
            .map(|tp| self.index_of(&tp.topic, tp.partition))
            .collect::<Result<Vec<_>>>()?;
        self.epoch += 1;
        for at in indexes {
            self.positions[at].paused = paused;
        }
        Ok(())
    }
}

/// One fetch of the planned partitions (a request per leader), decoded unless the consumer is
/// waiting for it by the time the answer comes (`awaited`).
async fn fetch(
    client: Arc<Client>,
    config: ConsumerConfig,
    plan: Vec<Planned>,
    awaited: Arc<AtomicBool>,
) -> Result<Vec<Fetched>> {
    let mut by_leader: HashMap<String, (Arc<super::Connection>, Vec<Planned>)> = HashMap::new();
    for planned in plan {
        let connection = client
            .leader_connection(&planned.tp.topic, planned.tp.partition)
            .await?;
        by_leader
            .entry(connection.addr().to_string())
            .or_insert_with(|| (connection, Vec::new()))
            .1
            .push(planned);
    }
    let mut fetched = Vec::new();
    for (_, (connection, planned)) in by_leader {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for position in &planned {
            let partition = FetchPartition::default()
                .with_partition(position.tp.partition)
                .with_fetch_offset(position.offset)
                .with_partition_max_bytes(config.partition_max_bytes);
            match topics
                .iter_mut()
                .find(|t| t.topic.0.as_str() == &*position.tp.topic)
            {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(
                            position.tp.topic.to_string(),
                        )))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(config.max_wait.as_millis() as i32)
            .with_min_bytes(config.min_bytes)
            .with_max_bytes(config.max_bytes)
            .with_isolation_level(config.isolation_level)
            .with_session_epoch(-1)
            .with_topics(topics);
        let response = match connection.send(&request).await {
            Ok(response) => response,
            Err(err) => {
                client.drop_connection(connection.addr()).await;
                return Err(err);
            }
        };
        if let Some(err) = Error::from_code(response.error_code, None) {
            return Err(err);
        }
        for topic in response.responses {
            for data in topic.partitions {
                let Some(planned) = planned.iter().find(|p| {
                    &*p.tp.topic == topic.topic.0.as_str() && p.tp.partition == data.partition_index
                }) else {
                    continue;
                };
                if let Some(err) = Error::from_code(data.error_code, None) {
                    if matches!(&err, Error::Broker { code, .. } if code.is_retriable()) {
                        client.invalidate_topic(&planned.tp.topic);
                    }
                    return Err(err);
                }
                let aborted: Vec<AbortedTxn> = data
                    .aborted_transactions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| AbortedTxn {
                        producer_id: t.producer_id.0,
                        first_offset: t.first_offset,
                    })
                    .collect();
                let batches = match data.records {
                    Some(bytes) if !awaited.load(Ordering::Acquire) => {
                        let mut position = Position {
                            tp: planned.tp.clone(),
                            offset: planned.offset,
                            high_watermark: data.high_watermark,
                            paused: false,
                        };
                        let mut records = VecDeque::new();
                        decode_into(bytes, &aborted, &mut position, &mut records)?;
                        Batches::Decoded {
                            records,
                            next_offset: position.offset,
                        }
                    }
                    raw => Batches::Raw(raw, aborted),
                };
                fetched.push(Fetched {
                    tp: planned.tp.clone(),
                    fetch_offset: planned.offset,
                    high_watermark: data.high_watermark,
                    batches,
                });
            }
        }
    }
    Ok(fetched)
}

/// A consumer's records as a `Stream` (Unpin, so `next().await` needs no pinning).
pub type RecordStream<'a> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<ConsumerRecord>> + Send + 'a>>;

type PollFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<ConsumerRecord>>> + Send + 'a>>;

/// Records one at a time from a `poll` that returns at most one (so that nothing is held
/// outside the consumer when the stream is dropped), ending after the first error.
pub(crate) fn records_stream<'a, S: Send + 'a>(
    source: &'a mut S,
    poll_one: for<'b> fn(&'b mut S) -> PollFuture<'b>,
) -> RecordStream<'a> {
    // Boxed so that the stream is Unpin: `stream.next().await` works without pinning.
    Box::pin(futures_util::stream::unfold(
        Some(source),
        move |state| async move {
            let source = state?;
            loop {
                match poll_one(source).await {
                    Ok(records) => {
                        if let Some(record) = records.into_iter().next() {
                            return Some((Ok(record), Some(source)));
                        }
                    }
                    Err(err) => return Some((Err(err), None)),
                }
            }
        },
    ))
}

fn is_paused(positions: &[Position], topic: &str, partition: i32) -> bool {
    positions
        .iter()
        .any(|p| p.paused && p.tp.partition == partition && &*p.tp.topic == topic)
}

/// The offset a start point names now.
async fn resolve_start(client: &Client, tp: &TopicPartition, start: StartOffset) -> Result<i64> {
    let (topic, partition) = (&*tp.topic, tp.partition);
    Ok(match start {
        StartOffset::Beginning => client.list_offset(topic, partition, -2).await?,
        StartOffset::End => client.list_offset(topic, partition, -1).await?,
        StartOffset::Offset(offset) if offset >= 0 => offset,
        StartOffset::Offset(back) => {
            let end = client.list_offset(topic, partition, -1).await?;
            let start = client.list_offset(topic, partition, -2).await?;
            (end + back).max(start)
        }
        StartOffset::Timestamp(ts) => match client.list_offset(topic, partition, ts).await? {
            -1 => client.list_offset(topic, partition, -1).await?,
            offset => offset,
        },
    })
}

/// A transaction the broker says was aborted: its producer's transactional batches from
/// `first_offset` up to its ABORT marker are skipped (read_committed).
#[derive(Debug, Clone, Copy)]
struct AbortedTxn {
    producer_id: i64,
    first_offset: i64,
}

/// Decodes the whole batches in `records` (a trailing partial batch, which Kafka brokers may
/// send, is left for the next fetch), appending records at or after the position. Batches of
/// the `aborted` transactions are skipped, as Kafka's consumer does under read_committed: a
/// producer's batches are skipped from its aborted transaction's first offset until its ABORT
/// marker.
fn decode_into(
    records: Bytes,
    aborted: &[AbortedTxn],
    position: &mut Position,
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<()> {
    let mut pending: Vec<AbortedTxn> = aborted.to_vec();
    pending.sort_by_key(|t| std::cmp::Reverse(t.first_offset));
    let mut aborting: Vec<i64> = Vec::new();
    let mut at = 0;
    while at + BATCH_HEADER_LEN <= records.len() {
        let Some(header) = BatchHeader::parse(&records[at..]) else {
            break;
        };
        let size = header.size();
        if size < BATCH_HEADER_LEN || at + size > records.len() {
            break;
        }
        while pending
            .last()
            .is_some_and(|t| t.first_offset <= header.last_offset())
        {
            if let Some(t) = pending.pop() {
                aborting.push(t.producer_id);
            }
        }
        let skip = header.is_transactional() && aborting.contains(&header.producer_id);
        if header.is_control() {
            // The ABORT (or COMMIT) marker ends the producer's transaction.
            if header.is_transactional() {
                aborting.retain(|p| *p != header.producer_id);
            }
        } else if !skip {
            let mut batch = records.slice(at..at + size);
            let decoded = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
                Error::Protocol(format!(
                    "{}: batch at offset {} does not decode: {e}",
                    position.tp, header.base_offset
                ))
            })?;
            for record in decoded.records {
                if record.offset < position.offset {
                    continue;
                }
                out.push_back(ConsumerRecord {
                    topic: position.tp.topic.clone(),
                    partition: position.tp.partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key,
                    value: record.value,
                    headers: record
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                });
            }
        }
        position.offset = position.offset.max(header.next_offset());
        at += size;
    }
    Ok(())
}
