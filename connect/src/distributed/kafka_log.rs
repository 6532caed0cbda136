//! A compacted topic read from its beginning and tailed, with writes that return once they are
//! read back (Kafka Connect's `KafkaBasedLog`): what the configs, statuses and offsets of
//! distributed workers are kept in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::{Client, NewTopic};
use sluice_log::TopicPartition;
use tokio::sync::watch;

use crate::error::{ConnectError, Result};

/// How long a write or a read to the end may wait for the tail to catch up.
const CATCH_UP: Duration = Duration::from_secs(30);

/// A topic this worker reads whole and writes to.
pub struct KafkaLog {
    topic: Arc<str>,
    /// 1: read_committed (the end is the last stable offset), 0: read_uncommitted.
    isolation: i8,
    partitions: i32,
    client: Arc<Client>,
    producer: Producer,
    /// The next offset the tail will read, by partition.
    read: watch::Receiver<BTreeMap<i32, i64>>,
    tail: tokio::task::JoinHandle<()>,
}

impl KafkaLog {
    /// Creates `topic` if it is missing (compacted, `partitions`, `replication` or -1 for the
    /// broker's default), reads it from the beginning and keeps reading, handing every record
    /// to `apply` in log order.
    pub async fn start(
        client: &Arc<Client>,
        topic: &str,
        partitions: i32,
        replication: i16,
        apply: impl FnMut(&ConsumerRecord) + Send + 'static,
    ) -> Result<KafkaLog> {
        KafkaLog::start_isolated(client, topic, partitions, replication, false, apply).await
    }

    /// [`KafkaLog::start`], reading only committed transactions when `read_committed` (the
    /// offsets of exactly-once source tasks): reads to the end then stop at the last stable
    /// offset.
    pub async fn start_isolated(
        client: &Arc<Client>,
        topic: &str,
        partitions: i32,
        replication: i16,
        read_committed: bool,
        mut apply: impl FnMut(&ConsumerRecord) + Send + 'static,
    ) -> Result<KafkaLog> {
        let new = NewTopic {
            name: topic.to_string(),
            partitions,
            replication_factor: replication,
            configs: [("cleanup.policy".to_string(), "compact".to_string())].into(),
        };
        for (name, outcome) in client.create_topics(&[new], false).await? {
            match outcome {
                Ok(()) => tracing::info!(topic = %name, partitions, "created a Connect topic"),
                Err(err)
                    if err.response_error()
                        == kafka_protocol::ResponseError::TopicAlreadyExists => {}
                Err(err) => return Err(ConnectError::Client(err)),
            }
        }
        // The topic may have been made by someone else with another partition count.
        let partitions = i32::try_from(client.topic(topic, false).await?.leaders.len())
            .unwrap_or(i32::MAX)
            .max(1);
        let assignment = (0..partitions)
            .map(|p| (TopicPartition::new(topic, p), StartOffset::Beginning))
            .collect();
        let config = ConsumerConfig {
            // A short long-poll: readers wait for the tail after every write.
            max_wait: Duration::from_millis(100),
            isolation_level: i8::from(read_committed),
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::assign(client.sibling().await?, assignment, config).await?;
        let (progress, read) = watch::channel(positions(&consumer));
        let name = topic.to_string();
        let tail = tokio::spawn(async move {
            loop {
                match consumer.poll().await {
                    Ok(records) => {
                        for record in &records {
                            apply(record);
                        }
                        let _ = progress.send(positions(&consumer));
                    }
                    Err(err) => {
                        tracing::warn!(topic = %name, %err, "reading a Connect topic failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        let producer = Producer::new(
            client.sibling().await?,
            ProducerConfig {
                acks: -1,
                ..ProducerConfig::default()
            },
        );
        Ok(KafkaLog {
            topic: topic.into(),
            isolation: i8::from(read_committed),
            partitions,
            client: client.clone(),
            producer,
            read,
            tail,
        })
    }

    /// Writes `key` → `value` (none: a tombstone) and returns once the tail has read it, so
    /// a reader of this worker sees its own write.
    pub async fn send(&self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        let record = ProducerRecord {
            topic: self.topic.clone(),
            key: Some(key),
            value,
            ..Default::default()
        };
        let delivery = self.producer.send(record).await?;
        self.producer.flush().await;
        let written = delivery.await?;
        self.wait_for(written.partition, written.offset + 1).await
    }

    /// Returns once the tail has read everything written to the topic before the call.
    pub async fn read_to_end(&self) -> Result<()> {
        for partition in 0..self.partitions {
            let end = self
                .client
                .list_offset_isolated(&self.topic, partition, -1, self.isolation)
                .await?;
            self.wait_for(partition, end).await?;
        }
        Ok(())
    }

    /// The topic's name.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    async fn wait_for(&self, partition: i32, offset: i64) -> Result<()> {
        let mut read = self.read.clone();
        let reached = tokio::time::timeout(
            CATCH_UP,
            read.wait_for(|at| at.get(&partition).is_some_and(|&next| next >= offset)),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ConnectError::Task(format!(
                "{} partition {partition} was not read up to offset {offset} within {}s",
                self.topic,
                CATCH_UP.as_secs()
            ))),
        }
    }

    /// Stops reading, after flushing what was written.
    pub async fn close(&self) {
        self.producer.flush().await;
        self.tail.abort();
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.tail.abort();
    }
}

/// A record's key as text (the internal topics' keys are), if it is.
pub fn text_key(record: &ConsumerRecord) -> Option<&str> {
    record
        .key
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok())
}

/// A record's value as JSON; none for a tombstone, a JSON null, or bytes that are not JSON.
pub fn json_value(record: &ConsumerRecord) -> Option<serde_json::Value> {
    record
        .value
        .as_deref()
        .and_then(|v| serde_json::from_slice(v).ok())
        .filter(|v: &serde_json::Value| !v.is_null())
}

fn positions(consumer: &Consumer) -> BTreeMap<i32, i64> {
    consumer
        .positions()
        .into_iter()
        .map(|(tp, offset)| (tp.partition, offset))
        .collect()
}
