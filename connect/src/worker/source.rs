//! A source task's loop: poll, transform, convert, produce; commit offsets after a flush.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sluice_log::client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;

use super::{OffsetStore, TaskSetup};
use crate::connector::{Props, SourceRecord, SourceTask, SourceTaskContext};
use crate::converter::display;
use crate::data::Value;
use crate::error::{ConnectError, Result};

/// What has been sent since the last commit: the deliveries to wait for, and the latest offset
/// of each source partition they reach.
#[derive(Default)]
struct Uncommitted {
    deliveries: Vec<DeliveryFuture>,
    /// By the partition's JSON, so equal partitions meet.
    offsets: BTreeMap<String, (Value, Value)>,
}

/// Runs `task` until `stop` says so or it fails.
pub(super) async fn run_until_stopped(
    client: Arc<Client>,
    setup: TaskSetup,
    mut task: Box<dyn SourceTask>,
    props: Props,
    offsets: Arc<OffsetStore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let context = {
        let offsets = offsets.clone();
        let connector = setup.connector.clone();
        SourceTaskContext::new(move |partition| offsets.get(&connector, partition))
    };
    task.start(&props, context).await?;
    // Kafka Connect's source producers wait for every replica and keep order.
    let producer = Producer::new(
        client.sibling().await?,
        ProducerConfig {
            acks: -1,
            ..ProducerConfig::default()
        },
    );
    let mut uncommitted = Uncommitted::default();
    let mut last_commit = Instant::now();
    let outcome = loop {
        if *stop.borrow() {
            break Ok(());
        }
        let polled = tokio::select! {
            polled = task.poll() => polled,
            _ = stop.changed() => break Ok(()),
        };
        let records = match polled {
            Ok(records) => records,
            Err(err) => break Err(err),
        };
        for record in records {
            if let Err(err) = send(&setup, &producer, record, &mut uncommitted).await {
                return finish(task, producer, Err(err)).await;
            }
        }
        if last_commit.elapsed() >= setup.flush_interval {
            if let Err(err) = commit(&setup, &producer, &offsets, &mut uncommitted).await {
                break Err(err);
            }
            task.commit().await?;
            last_commit = Instant::now();
        }
    };
    // What was sent is committed on the way out, so a restart resumes after it.
    let outcome = match outcome {
        Ok(()) => commit(&setup, &producer, &offsets, &mut uncommitted).await,
        err => err,
    };
    finish(task, producer, outcome).await
}

async fn finish(
    mut task: Box<dyn SourceTask>,
    producer: Producer,
    outcome: Result<()>,
) -> Result<()> {
    let stopped = task.stop().await;
    producer.close().await;
    outcome.and(stopped)
}

/// Transforms, converts and sends one record, noting its offset.
async fn send(
    setup: &TaskSetup,
    producer: &Producer,
    record: SourceRecord,
    uncommitted: &mut Uncommitted,
) -> Result<()> {
    let SourceRecord {
        source_partition,
        source_offset,
        record,
    } = record;
    let partition_key = partition_key(&source_partition)?;
    // A record the transforms drop still moves the offset on: it was read.
    if let Some(record) = setup.transforms.apply(record)? {
        let key = setup.key_converter.from_connect_data(
            &record.topic,
            record.key_schema.as_ref(),
            &record.key,
        )?;
        let value = setup.value_converter.from_connect_data(
            &record.topic,
            record.value_schema.as_ref(),
            &record.value,
        )?;
        let headers = record
            .headers
            .iter()
            .map(|h| {
                let value = match &h.value {
                    Value::Null => None,
                    Value::Bytes(b) => Some(b.clone()),
                    other => Some(Bytes::from(display(other))),
                };
                (h.key.clone(), value)
            })
            .collect();
        let delivery = producer
            .send(ProducerRecord {
                topic: record.topic.as_str().into(),
                partition: record.kafka_partition,
                key,
                value,
                headers,
                timestamp: record.timestamp,
            })
            .await?;
        match uncommitted.deliveries.last_mut() {
            Some(last) if last.same_batch(&delivery) => *last = delivery,
            _ => uncommitted.deliveries.push(delivery),
        }
    }
    uncommitted
        .offsets
        .insert(partition_key, (source_partition, source_offset));
    Ok(())
}

/// Flushes the producer, checks that everything sent was written, then commits the offsets
/// those records reached.
async fn commit(
    setup: &TaskSetup,
    producer: &Producer,
    offsets: &OffsetStore,
    uncommitted: &mut Uncommitted,
) -> Result<()> {
    producer.flush().await;
    for delivery in uncommitted.deliveries.drain(..) {
        match delivery.try_result() {
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(ConnectError::Client(err)),
            None => {
                return Err(ConnectError::Task(
                    "a record was neither written nor failed after a flush".into(),
                ))
            }
        }
    }
    let reached: Vec<(Value, Value)> = std::mem::take(&mut uncommitted.offsets)
        .into_values()
        .collect();
    offsets.commit(&setup.connector, &reached)
}

fn partition_key(partition: &Value) -> Result<String> {
    use crate::converter::{Converter, JsonConverter};
    let bytes = JsonConverter::new(false)
        .from_connect_data("connect-offsets", None, partition)?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
