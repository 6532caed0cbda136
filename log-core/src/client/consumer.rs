//! An assignment-based consumer: it reads given partitions from given start points with Fetch
//! requests to their leaders (long polling with `fetch.max.wait.ms` / `fetch.min.bytes`), and
//! decodes the record batches it gets. Consumer groups come later and build on it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::Client;
use crate::error::{Error, Result};
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
        }
    }
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
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

#[derive(Debug, Clone)]
struct Position {
    topic: String,
    partition: i32,
    offset: i64,
    high_watermark: i64,
}

/// Reads assigned partitions.
pub struct Consumer {
    client: Arc<Client>,
    config: ConsumerConfig,
    positions: Vec<Position>,
    buffered: VecDeque<ConsumerRecord>,
}

impl Consumer {
    /// A consumer of `partitions`, each from its start point.
    pub async fn assign(
        client: Arc<Client>,
        partitions: Vec<(String, i32, StartOffset)>,
        config: ConsumerConfig,
    ) -> Result<Consumer> {
        let mut positions = Vec::with_capacity(partitions.len());
        for (topic, partition, start) in partitions {
            let offset = match start {
                StartOffset::Beginning => client.list_offset(&topic, partition, -2).await?,
                StartOffset::End => client.list_offset(&topic, partition, -1).await?,
                StartOffset::Offset(offset) if offset >= 0 => offset,
                StartOffset::Offset(back) => {
                    let end = client.list_offset(&topic, partition, -1).await?;
                    let start = client.list_offset(&topic, partition, -2).await?;
                    (end + back).max(start)
                }
                StartOffset::Timestamp(ts) => {
                    match client.list_offset(&topic, partition, ts).await? {
                        -1 => client.list_offset(&topic, partition, -1).await?,
                        offset => offset,
                    }
                }
            };
            positions.push(Position {
                topic,
                partition,
                offset,
                high_watermark: -1,
            });
        }
        Ok(Consumer {
            client,
            config,
            positions,
            buffered: VecDeque::new(),
        })
    }

    /// The next offset to read of each assigned partition.
    pub fn positions(&self) -> Vec<(String, i32, i64)> {
        self.positions
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.offset))
            .collect()
    }

    /// Whether every partition has been read up to the high watermark of the last fetch.
    pub fn at_end(&self) -> bool {
        self.buffered.is_empty()
            && self
                .positions
                .iter()
                .all(|p| p.high_watermark >= 0 && p.offset >= p.high_watermark)
    }

    /// Returns buffered records, or fetches once (waiting up to `fetch.max.wait.ms` for data).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        if self.buffered.is_empty() {
            self.fetch_once().await?;
        }
        Ok(self.buffered.drain(..).collect())
    }

    async fn fetch_once(&mut self) -> Result<()> {
        // One request per leader.
        let mut by_leader: HashMap<String, (Arc<super::Connection>, Vec<usize>)> = HashMap::new();
        for (idx, position) in self.positions.iter().enumerate() {
            let connection = self
                .client
                .leader_connection(&position.topic, position.partition)
                .await?;
            by_leader
                .entry(connection.addr().to_string())
                .or_insert_with(|| (connection, Vec::new()))
                .1
                .push(idx);
        }
        for (_, (connection, indexes)) in by_leader {
            let mut topics: Vec<FetchTopic> = Vec::new();
            for &idx in &indexes {
                let position = &self.positions[idx];
                let partition = FetchPartition::default()
                    .with_partition(position.partition)
                    .with_fetch_offset(position.offset)
                    .with_partition_max_bytes(self.config.partition_max_bytes);
                match topics
                    .iter_mut()
                    .find(|t| t.topic.0.as_str() == position.topic)
                {
                    Some(topic) => topic.partitions.push(partition),
                    None => topics.push(
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(position.topic.clone())))
                            .with_partitions(vec![partition]),
                    ),
                }
            }
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(self.config.max_wait.as_millis() as i32)
                .with_min_bytes(self.config.min_bytes)
                .with_max_bytes(self.config.max_bytes)
                .with_isolation_level(self.config.isolation_level)
                .with_session_epoch(-1)
                .with_topics(topics);
            let response = match connection.send(&request).await {
                Ok(response) => response,
                Err(err) => {
                    self.client.drop_connection(connection.addr()).await;
                    return Err(err);
                }
            };
            if let Some(err) = Error::from_code(response.error_code, None) {
                return Err(err);
            }
            for topic in response.responses {
                for data in topic.partitions {
                    let Some(position) = self.positions.iter_mut().find(|p| {
                        p.topic == topic.topic.0.as_str() && p.partition == data.partition_index
                    }) else {
                        continue;
                    };
                    if let Some(err) = Error::from_code(data.error_code, None) {
                        if matches!(&err, Error::Broker { code, .. } if code.is_retriable()) {
                            self.client.invalidate_topic(&position.topic);
                        }
                        return Err(err);
                    }
                    position.high_watermark = data.high_watermark;
                    if let Some(records) = data.records {
                        decode_into(records, position, &mut self.buffered)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Decodes the whole batches in `records` (a trailing partial batch, which Kafka brokers may
/// send, is left for the next fetch), appending records at or after the position.
fn decode_into(
    records: Bytes,
    position: &mut Position,
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<()> {
    let mut at = 0;
    while at + BATCH_HEADER_LEN <= records.len() {
        let Some(header) = BatchHeader::parse(&records[at..]) else {
            break;
        };
        let size = header.size();
        if size < BATCH_HEADER_LEN || at + size > records.len() {
            break;
        }
        if !header.is_control() {
            let mut batch = records.slice(at..at + size);
            let decoded = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
                Error::Protocol(format!(
                    "{}-{}: batch at offset {} does not decode: {e}",
                    position.topic, position.partition, header.base_offset
                ))
            })?;
            for record in decoded.records {
                if record.offset < position.offset {
                    continue;
                }
                out.push_back(ConsumerRecord {
                    topic: position.topic.clone(),
                    partition: position.partition,
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
