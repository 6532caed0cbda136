//! A source task's loop: poll, transform, convert, produce; commit offsets after a flush.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use sluice_log::client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;
use tokio::sync::watch;

use super::errors::{ErrorReporter, FailedRecord, Stage};
use super::{mark, Control, OffsetStore, State, TaskSetup};
use crate::connector::{Props, SourceRecord, SourceTask, SourceTaskContext};
use crate::converter::display;
use crate::data::Value;
use crate::error::{ConnectError, Result};

/// What has been sent since the last commit: the deliveries to wait for, and the latest offset
/// of each source partition they reach.
#[derive(Default)]
pub(super) struct Uncommitted {
    pub(super) deliveries: Vec<DeliveryFuture>,
    /// Each partition's latest offset, in the order first seen.
    pub(super) offsets: Vec<(Value, Value)>,
    /// Where each partition (by its JSON) is in `offsets`.
    index: BTreeMap<String, usize>,
    /// The index of the last record's partition: most records share their predecessor's,
    /// and encoding it for every record would cost more than the record.
    last: Option<usize>,
    /// The last topic's shared name, for the producer.
    topic: Option<std::sync::Arc<str>>,
    /// The topics this task has reported using (KIP-558).
    topics_seen: super::topics::TaskTopics,
}

impl Uncommitted {
    /// Notes that `partition` has reached `offset`.
    fn reach(&mut self, partition: Value, offset: Value) -> Result<()> {
        if let Some(i) = self.last {
            if let Some(entry) = self.offsets.get_mut(i) {
                if entry.0 == partition {
                    entry.1 = offset;
                    return Ok(());
                }
            }
        }
        let key = partition_key(&partition)?;
        let i = match self.index.get(&key) {
            Some(&i) => {
                if let Some(entry) = self.offsets.get_mut(i) {
                    entry.1 = offset;
                }
                i
            }
            None => {
                self.offsets.push((partition, offset));
                self.index.insert(key, self.offsets.len() - 1);
                self.offsets.len() - 1
            }
        };
        self.last = Some(i);
        Ok(())
    }

    /// The offsets reached since the last take, in the order first seen.
    pub(super) fn take_offsets(&mut self) -> Vec<(Value, Value)> {
        self.index.clear();
        self.last = None;
        std::mem::take(&mut self.offsets)
    }

    /// The topic's shared name, allocated once per run of records of one topic.
    fn topic(&mut self, topic: &str) -> std::sync::Arc<str> {
        match &self.topic {
            Some(shared) if &**shared == topic => shared.clone(),
            _ => {
                let shared: std::sync::Arc<str> = topic.into();
                self.topic = Some(shared.clone());
                shared
            }
        }
    }
}

/// Returns once `control` says stop (the guard it reads is not kept, so that a future
/// waiting on this stays `Send`).
pub(super) async fn stop_said(control: &mut watch::Receiver<Control>) {
    let _ = control.wait_for(|c| *c == Control::Stop).await;
}

/// How a poll ended.
pub(super) enum Polled {
    Returned(Result<Vec<SourceRecord>>),
    Stopped,
    /// A commit made while the poll waited failed.
    CommitFailed(ConnectError),
}

/// Runs `task` until `control` says stop or it fails; while it says pause, the task is not
/// polled (what it sent is committed first).
pub(super) async fn run_until_stopped(
    client: Arc<Client>,
    setup: TaskSetup,
    mut task: Box<dyn SourceTask>,
    props: Props,
    offsets: Arc<OffsetStore>,
    mut control: watch::Receiver<Control>,
    state: Arc<Mutex<State>>,
) -> Result<()> {
    let context = {
        let offsets = offsets.clone();
        let connector = setup.connector.clone();
        SourceTaskContext::new(move |partition| offsets.get(&connector, partition))
    };
    // Kafka Connect's source producers wait for every replica and keep order.
    let producer = Producer::new(
        client.sibling().await?,
        ProducerConfig {
            acks: -1,
            ..ProducerConfig::default()
        },
    );
    let (producer, reporter) =
        start_task(&client, &setup, task.as_mut(), &props, context, producer).await?;
    let mut uncommitted = Uncommitted::default();
    let mut last_commit = Instant::now();
    let outcome = loop {
        let now = *control.borrow_and_update();
        match now {
            Control::Stop => break Ok(()),
            Control::Pause => {
                if let Err(err) = commit(&setup, &producer, &offsets, &mut uncommitted).await {
                    break Err(err);
                }
                mark(&state, State::Paused);
                // A dropped sender (the worker gone) is a stop.
                if control.changed().await.is_err() {
                    break Ok(());
                }
                continue;
            }
            Control::Run => {
                if *state.lock() == State::Paused {
                    mark(&state, State::Running);
                }
            }
        }
        // Only a stop cuts a poll short: a poll may have taken records from its source that
        // it has not returned yet, which a pause must not lose. (Stopping drops them, but
        // their offsets were never committed, so a restart reads them again.) Offsets are
        // committed on their own schedule meanwhile, as Kafka's offset committer does: a poll
        // that waits for data must not hold back the offsets of what was sent before it, or
        // a worker that dies then has them sent again.
        let mut committed_meanwhile = false;
        let polled = {
            let poll = task.poll();
            tokio::pin!(poll);
            loop {
                let due = last_commit + setup.flush_interval;
                let pending = !uncommitted.offsets.is_empty();
                tokio::select! {
                    polled = &mut poll => break Polled::Returned(polled),
                    () = stop_said(&mut control) => break Polled::Stopped,
                    _ = tokio::time::sleep_until(due.into()), if pending => {
                        if let Err(err) = commit(&setup, &producer, &offsets, &mut uncommitted).await {
                            break Polled::CommitFailed(err);
                        }
                        last_commit = Instant::now();
                        committed_meanwhile = true;
                    }
                }
            }
        };
        if committed_meanwhile {
            if let Err(err) = task.commit().await {
                break Err(err);
            }
        }
        let records = match polled {
            Polled::Stopped => break Ok(()),
            // Whatever its kind: the offsets it held are gone, so the task fails (a restart
            // reads from the last commit).
            Polled::CommitFailed(err) => break Err(err),
            Polled::Returned(Ok(records)) => records,
            // Kafka polls again after a RetriableException.
            Polled::Returned(Err(ConnectError::Retriable(reason))) => {
                tracing::warn!(connector = %setup.connector, task = setup.task, %reason, "poll failed; polling again");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Polled::Returned(Err(err)) => break Err(err),
        };
        let mut failed = None;
        for record in records {
            if let Err(err) = send(&setup, &producer, &reporter, record, &mut uncommitted).await {
                failed = Some(err);
                break;
            }
        }
        if let Some(err) = failed {
            break Err(err);
        }
        if last_commit.elapsed() >= setup.flush_interval {
            if let Err(err) = commit(&setup, &producer, &offsets, &mut uncommitted).await {
                break Err(err);
            }
            if let Err(err) = task.commit().await {
                break Err(err);
            }
            last_commit = Instant::now();
        }
    };
    // What was sent is committed on the way out, so a restart resumes after it.
    let outcome = match outcome {
        Ok(()) => commit(&setup, &producer, &offsets, &mut uncommitted).await,
        err => err,
    };
    finish(task, producer, reporter, outcome).await
}

/// Starts `task` with `context`, then its error reporter; if either fails, the task is
/// stopped and `producer` closed.
pub(super) async fn start_task(
    client: &Arc<Client>,
    setup: &TaskSetup,
    task: &mut dyn SourceTask,
    props: &Props,
    context: SourceTaskContext,
    producer: Producer,
) -> Result<(Producer, ErrorReporter)> {
    let started = match task.start(props, context).await {
        Ok(()) => {
            ErrorReporter::new(
                client,
                setup.errors.clone(),
                &setup.connector,
                setup.task,
                false,
            )
            .await
        }
        Err(err) => Err(err),
    };
    match started {
        Ok(reporter) => Ok((producer, reporter)),
        Err(err) => {
            let _ = task.stop().await;
            producer.close().await;
            Err(err)
        }
    }
}

pub(super) async fn finish(
    mut task: Box<dyn SourceTask>,
    producer: Producer,
    reporter: ErrorReporter,
    outcome: Result<()>,
) -> Result<()> {
    let stopped = task.stop().await;
    producer.close().await;
    reporter.close().await;
    outcome.and(stopped)
}

/// Transforms, converts and sends one record, noting its offset.
pub(super) async fn send(
    setup: &TaskSetup,
    producer: &Producer,
    reporter: &ErrorReporter,
    record: SourceRecord,
    uncommitted: &mut Uncommitted,
) -> Result<()> {
    let SourceRecord {
        source_partition,
        source_offset,
        record,
    } = record;
    // The record's topic before the transforms, shared (not allocated per record).
    let source_topic = uncommitted.topic(&record.topic);
    // Retries need the record again: it is copied only when they are on.
    let converted = if setup.errors.retries() {
        setup
            .errors
            .retry(|| convert(setup, uncommitted, record.clone()))
            .await
    } else {
        convert(setup, uncommitted, record)
    };
    // A record the transforms drop, or that fails within the tolerance, still moves the
    // offset on: it was read.
    match converted {
        Ok(Some(producer_record)) => {
            setup.note_topic(&mut uncommitted.topics_seen, &producer_record.topic);
            let delivery = producer.send(producer_record).await?;
            match uncommitted.deliveries.last_mut() {
                Some(last) if last.same_batch(&delivery) => *last = delivery,
                _ => uncommitted.deliveries.push(delivery),
            }
        }
        Ok(None) => {}
        Err((stage, error)) => {
            let failed = FailedRecord {
                topic: &source_topic,
                partition: -1,
                offset: -1,
                key: None,
                value: None,
                headers: Vec::new(),
            };
            reporter.failed(stage, error, failed).await?;
        }
    }
    uncommitted.reach(source_partition, source_offset)
}

/// A source record through the transforms and converters (`None`: a transform dropped it).
fn convert(
    setup: &TaskSetup,
    uncommitted: &mut Uncommitted,
    record: crate::record::ConnectRecord,
) -> std::result::Result<Option<ProducerRecord>, (Stage, ConnectError)> {
    let Some(record) = setup
        .transforms
        .apply(record)
        .map_err(|e| (Stage::Transformation, e))?
    else {
        return Ok(None);
    };
    let key = setup
        .key_converter
        .from_connect_data(&record.topic, record.key_schema.as_ref(), &record.key)
        .map_err(|e| (Stage::KeyConverter, e))?;
    let topic = uncommitted.topic(&record.topic);
    let value = setup
        .value_converter
        .from_connect_data_owned(&record.topic, record.value_schema.as_ref(), record.value)
        .map_err(|e| (Stage::ValueConverter, e))?;
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
    Ok(Some(ProducerRecord {
        topic,
        partition: record.kafka_partition,
        key,
        value,
        headers,
        timestamp: record.timestamp,
    }))
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
    let reached = uncommitted.take_offsets();
    offsets.commit(&setup.connector, &reached).await
}

fn partition_key(partition: &Value) -> Result<String> {
    super::offsets::json_text(partition)
}
