//! A sink task's loop: consume in the connector's group, convert, transform, `put`; commit
//! only what the task's `pre_commit` says is flushed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_log::client::config::ClientConfig;
use sluice_log::client::consumer::ConsumerRecord;
use sluice_log::client::group_consumer::{GroupConfig, GroupConsumer, GroupEvent};
use sluice_log::client::Client;
use tokio::sync::watch;

use super::errors::{ErrorReporter, FailedRecord, Stage};
use super::{mark, Control, State, TaskSetup};
use crate::connector::{
    ErrantRecordReporter, OriginalRecord, Props, SinkRecord, SinkTask, SinkTaskContext,
    TopicPartition,
};
use crate::data::Value;
use crate::error::{ConnectError, Result};
use crate::record::{ConnectRecord, Headers};

/// What a sink connector reads: the topics `topics` lists, or every topic whose whole name
/// matches `topics.regex` (one of the two, as Kafka requires).
#[derive(Debug, Clone)]
pub(super) enum SinkTopics {
    Listed(Vec<String>),
    Matching(String),
}

pub(super) fn topics_of(props: &Props) -> Result<SinkTopics> {
    let topics = props
        .get("topics")
        .map(|t| crate::connector::parse_list(t))
        .unwrap_or_default();
    let regex = props
        .get("topics.regex")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty());
    match (topics.is_empty(), regex) {
        (false, Some(_)) => Err(ConnectError::config(
            "topics.regex",
            regex.unwrap_or_default(),
            "topics and topics.regex are mutually exclusive options, but both are set",
        )),
        (false, None) => Ok(SinkTopics::Listed(topics)),
        (true, Some(pattern)) => {
            // Checked now, so a bad pattern is a config error rather than a failed task.
            regex::Regex::new(pattern).map_err(|err| {
                ConnectError::config(
                    "topics.regex",
                    pattern,
                    format!("not a regular expression: {err}"),
                )
            })?;
            Ok(SinkTopics::Matching(pattern.to_string()))
        }
        (true, None) => Err(ConnectError::config(
            "topics",
            "",
            "Must configure one of topics or topics.regex",
        )),
    }
}

/// What a sink task reads, and as which group.
pub(super) struct Subscription {
    pub(super) topics: SinkTopics,
    pub(super) group: GroupConfig,
}

/// The consumer group of a sink connector's tasks (Kafka's `connect-<name>`).
pub(super) fn group_id(connector: &str) -> String {
    format!("connect-{connector}")
}

/// The group settings of a sink connector's tasks: group `connect-<name>`, from the earliest
/// offset, no auto-commit (the worker commits what the task flushed), then the connector's
/// `consumer.override.*` settings with Kafka's consumer names (Kafka's default override
/// policy, `All`, lets a connector set any of them).
pub(super) fn group_config_of(
    connector: &str,
    props: &Props,
    worker_consumer: &Props,
) -> Result<GroupConfig> {
    let mut config = ClientConfig::new()
        .set("group.id", &group_id(connector))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    // The worker's `consumer.*`, then the connector's `consumer.override.*` (as Kafka's
    // Worker.baseConsumerConfigs layers them).
    for (key, value) in worker_consumer {
        config = config.set(key, value);
    }
    for (key, value) in props {
        if let Some(setting) = key.strip_prefix("consumer.override.") {
            config = config.set(setting, value);
        }
    }
    config
        .group_config()
        .map_err(|err| ConnectError::config("consumer.override.*", "", err.to_string()))
}

/// Runs `task` until `control` says stop or it fails; while it says pause, the member keeps
/// its place in the group (heartbeats, rebalances) with every partition paused.
pub(super) async fn run_until_stopped(
    client: Arc<Client>,
    setup: TaskSetup,
    mut task: Box<dyn SinkTask>,
    props: Props,
    subscription: Subscription,
    mut control: watch::Receiver<Control>,
    state: Arc<parking_lot::Mutex<State>>,
) -> Result<()> {
    let reporter = Arc::new(
        ErrorReporter::new(
            &client,
            setup.errors.clone(),
            &setup.connector,
            setup.task,
            true,
        )
        .await?,
    );
    task.initialize(SinkTaskContext::new(Some(errant_reporter(
        reporter.clone(),
    ))));
    let Subscription { topics, group } = subscription;
    let joined = async {
        let sibling = client.sibling().await?;
        match topics {
            SinkTopics::Listed(topics) => GroupConsumer::subscribe(sibling, topics, group).await,
            SinkTopics::Matching(pattern) => {
                GroupConsumer::subscribe_pattern(sibling, &pattern, group).await
            }
        }
    }
    .await;
    let mut member = match joined {
        Ok(member) => member,
        Err(err) => {
            drop(task);
            close(reporter).await;
            return Err(err.into());
        }
    };
    if let Err(err) = task.start(&props).await {
        let _ = task.stop().await;
        let _ = member.close().await;
        drop(task);
        close(reporter).await;
        return Err(err);
    }
    // The next offset of each partition past what was `put`.
    let mut reached: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    // A batch whose `put` failed with a retriable error, to be put again (with the offsets
    // it reaches, which count once it is taken); the partitions stay paused meanwhile.
    let mut redelivery: Option<Pending> = None;
    let mut redeliver_at = Instant::now();
    let mut topics_seen = super::topics::TaskTopics::default();
    let mut last_commit = Instant::now();
    let outcome: Result<()> = async {
        let mut paused = false;
        loop {
            let now = *control.borrow_and_update();
            match (now, paused) {
                (Control::Stop, _) => return Ok(()),
                (Control::Pause, false) => {
                    let assigned = member.assignment().to_vec();
                    member.pause(&assigned)?;
                    paused = true;
                    mark(&state, State::Paused);
                }
                (Control::Pause, true) => {}
                (Control::Run, true) => {
                    if redelivery.is_none() {
                        let assigned = member.assignment().to_vec();
                        member.resume(&assigned)?;
                    }
                    paused = false;
                    mark(&state, State::Running);
                }
                (Control::Run, false) => {}
            }
            // A paused task puts nothing, not even again (as Kafka's paused tasks do not run).
            if !paused && redelivery.is_some() && Instant::now() >= redeliver_at {
                if let Some(pending) = redelivery.take() {
                    if let Some(pending) = put_or_keep(&mut task, pending, &mut reached).await? {
                        redelivery = Some(pending);
                        redeliver_at = Instant::now() + REDELIVERY_BACKOFF;
                    } else {
                        // Delivered: new records may come again.
                        let assigned = member.assignment().to_vec();
                        member.resume(&assigned)?;
                    }
                }
            }
            let wait = Duration::from_millis(100)
                .min(setup.flush_interval.saturating_sub(last_commit.elapsed()));
            // Not cut short by a control change: a wait that is cancelled inside a rebalance
            // could leave the member between generations. It is 100 ms at most.
            let event = member.next_event_timeout(wait).await?;
            if control.has_changed().is_err() {
                // The worker is gone: a stop.
                return Ok(());
            }
            match event {
                GroupEvent::Records(records) if !records.is_empty() => {
                    let mut batch = Vec::with_capacity(records.len());
                    let mut batch_reached: BTreeMap<TopicPartition, i64> = BTreeMap::new();
                    // Where each record came from (a transform may rename its topic).
                    let mut origins: Vec<TopicPartition> = Vec::with_capacity(records.len());
                    for record in records {
                        setup.note_topic(&mut topics_seen, &record.topic);
                        let converted = if setup.errors.retries() {
                            setup.errors.retry(|| to_sink_record(&setup, &record)).await
                        } else {
                            to_sink_record(&setup, &record)
                        };
                        match converted {
                            Ok(Some(sink_record)) => {
                                batch.push(sink_record);
                                origins.push(record.topic_partition());
                            }
                            Ok(None) => {}
                            Err((stage, error)) => {
                                reporter
                                    .failed(
                                        stage,
                                        error,
                                        FailedRecord {
                                            topic: &record.topic,
                                            partition: record.partition,
                                            offset: record.offset,
                                            key: record.key.clone(),
                                            value: record.value.clone(),
                                            headers: record.headers.clone(),
                                        },
                                    )
                                    .await?
                            }
                        }
                        batch_reached.insert(record.topic_partition(), record.offset + 1);
                    }
                    let pending = Pending {
                        records: batch,
                        origins,
                        reached: batch_reached,
                    };
                    if let Some(waiting) = redelivery.as_mut() {
                        // Paused partitions return nothing, but should records come anyway
                        // they go after the batch waiting, never before it.
                        waiting.append(pending);
                    } else if let Some(pending) =
                        put_or_keep(&mut task, pending, &mut reached).await?
                    {
                        // Kafka's WorkerSinkTask: pause everything, put the batch again.
                        let assigned = member.assignment().to_vec();
                        member.pause(&assigned)?;
                        redelivery = Some(pending);
                        redeliver_at = Instant::now() + REDELIVERY_BACKOFF;
                    }
                }
                // What a rebalance hands a paused task (or one redelivering) waits too.
                GroupEvent::Assigned(partitions) if paused || redelivery.is_some() => {
                    member.pause(&partitions)?
                }
                // Kafka's runtime puts after every poll, an empty batch too: a task that
                // writes on a schedule or in the background gets its turn when no records
                // come.
                GroupEvent::Records(_) if !paused && redelivery.is_none() => {
                    match task.put(&[]).await {
                        Ok(()) | Err(ConnectError::Retriable(_)) => {}
                        Err(err) => return Err(err),
                    }
                }
                GroupEvent::Records(_) | GroupEvent::Assigned(_) => {}
                // Still ours: what was put is committed before they go.
                GroupEvent::Revoked(partitions) => {
                    let leaving: BTreeMap<TopicPartition, i64> = reached
                        .iter()
                        .filter(|(tp, _)| partitions.contains(tp))
                        .map(|(tp, o)| (tp.clone(), *o))
                        .collect();
                    commit(&mut task, &member, &leaving).await?;
                    reached.retain(|tp, _| !partitions.contains(tp));
                    // Not taken yet: the next owner reads them from the committed offsets.
                    forget(&mut redelivery, &partitions, &mut member, paused)?;
                }
                GroupEvent::Lost(partitions) => {
                    reached.retain(|tp, _| !partitions.contains(tp));
                    forget(&mut redelivery, &partitions, &mut member, paused)?;
                }
            }
            if last_commit.elapsed() >= setup.flush_interval {
                commit(&mut task, &member, &reached).await?;
                last_commit = Instant::now();
            }
        }
    }
    .await;
    let outcome = match outcome {
        Ok(()) => commit(&mut task, &member, &reached).await,
        err => err,
    };
    let stopped = task.stop().await;
    let left = member.close().await.map_err(ConnectError::from);
    // The task holds the errant record reporter, which holds the error reporter.
    drop(task);
    close(reporter).await;
    outcome.and(stopped).and(left)
}

/// The reporter a task's `put` (or, writing asynchronously, a later call) hands the records
/// it cannot write: the task's error policy decides (skip and dead-letter their original
/// bytes, or fail the task).
fn errant_reporter(reporter: Arc<ErrorReporter>) -> ErrantRecordReporter {
    ErrantRecordReporter::new(move |record, error| {
        let reporter = reporter.clone();
        Box::pin(async move {
            let partition = record.record.kafka_partition.unwrap_or(0);
            let original = record.original.as_deref();
            reporter
                .failed(
                    Stage::TaskPut,
                    error,
                    FailedRecord {
                        topic: original.map_or(&record.record.topic, |o| &o.topic),
                        partition,
                        offset: record.kafka_offset,
                        key: original.and_then(|o| o.key.clone()),
                        value: original.and_then(|o| o.value.clone()),
                        headers: original.map(|o| o.headers.clone()).unwrap_or_default(),
                    },
                )
                .await
        })
    })
}

/// Closes the error reporter once nothing else holds it.
async fn close(reporter: Arc<ErrorReporter>) {
    match Arc::try_unwrap(reporter) {
        Ok(reporter) => reporter.close().await,
        Err(_) => tracing::debug!("the error reporter is still held; its producer is dropped"),
    }
}

/// How long a batch whose `put` failed retriably waits before it is put again (Kafka's
/// runtime tries again on its next pass; a task may not set `SinkTaskContext.timeout` here).
const REDELIVERY_BACKOFF: Duration = Duration::from_millis(100);

/// Records converted for `put`, and the next offset of each partition they reach.
struct Pending {
    records: Vec<SinkRecord>,
    /// The partition each of `records` was read from.
    origins: Vec<TopicPartition>,
    reached: BTreeMap<TopicPartition, i64>,
}

impl Pending {
    /// `later`'s records after these.
    fn append(&mut self, later: Pending) {
        self.records.extend(later.records);
        self.origins.extend(later.origins);
        for (tp, offset) in later.reached {
            let at = self.reached.entry(tp).or_insert(offset);
            *at = (*at).max(offset);
        }
    }
}

/// Puts `pending`; once taken, its offsets count as reached. A retriable failure hands the
/// batch back to be put again; any other fails the task.
async fn put_or_keep(
    task: &mut Box<dyn SinkTask>,
    pending: Pending,
    reached: &mut BTreeMap<TopicPartition, i64>,
) -> Result<Option<Pending>> {
    match task.put(&pending.records).await {
        Ok(()) => {
            reached.extend(pending.reached);
            Ok(None)
        }
        Err(ConnectError::Retriable(reason)) => {
            tracing::warn!(%reason, records = pending.records.len(), "put failed with a retriable error; the records will be put again");
            Ok(Some(pending))
        }
        Err(err) => Err(err),
    }
}

/// Drops what a batch awaiting redelivery holds of `partitions` (revoked or lost); when
/// nothing is left to put again, the partitions kept are resumed (unless the task is paused).
fn forget(
    redelivery: &mut Option<Pending>,
    partitions: &[TopicPartition],
    member: &mut GroupConsumer,
    paused: bool,
) -> Result<()> {
    if let Some(pending) = redelivery {
        let mut kept = Vec::with_capacity(pending.records.len());
        let mut kept_origins = Vec::with_capacity(pending.origins.len());
        for (record, origin) in pending.records.drain(..).zip(pending.origins.drain(..)) {
            if !partitions.contains(&origin) {
                kept.push(record);
                kept_origins.push(origin);
            }
        }
        pending.records = kept;
        pending.origins = kept_origins;
        pending.reached.retain(|tp, _| !partitions.contains(tp));
        if pending.records.is_empty() && pending.reached.is_empty() {
            *redelivery = None;
            if !paused {
                let assigned = member.assignment().to_vec();
                member.resume(&assigned)?;
            }
        }
    }
    Ok(())
}

/// Commits what the task says it has flushed of `offsets`.
async fn commit(
    task: &mut Box<dyn SinkTask>,
    member: &GroupConsumer,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let committable: Vec<(TopicPartition, i64)> =
        task.pre_commit(offsets).await?.into_iter().collect();
    member.commit_offsets(&committable).await?;
    Ok(())
}

/// The record as the task sees it: key and value through the converters, then the transforms
/// (`None`: a transform dropped it; an error names the stage that failed).
fn to_sink_record(
    setup: &TaskSetup,
    record: &ConsumerRecord,
) -> std::result::Result<Option<SinkRecord>, (Stage, ConnectError)> {
    let topic = record.topic.to_string();
    let key = setup
        .key_converter
        .to_connect_data(&topic, record.key.as_deref())
        .map_err(|e| (Stage::KeyConverter, e))?;
    let value = setup
        .value_converter
        .to_connect_data(&topic, record.value.as_deref())
        .map_err(|e| (Stage::ValueConverter, e))?;
    let mut headers = Headers::new();
    for (name, value) in &record.headers {
        let value = match value {
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => Value::String(text.to_string()),
                Err(_) => Value::Bytes(bytes.clone()),
            },
            None => Value::Null,
        };
        headers.add(name.clone(), None, value);
    }
    let connect = ConnectRecord {
        topic,
        kafka_partition: Some(record.partition),
        key_schema: key.schema,
        key: key.value,
        value_schema: value.schema,
        value: value.value,
        timestamp: Some(record.timestamp),
        headers,
    };
    let transformed = setup
        .transforms
        .apply(connect)
        .map_err(|e| (Stage::Transformation, e))?;
    Ok(transformed.map(|connect| SinkRecord {
        record: connect,
        kafka_offset: record.offset,
        original: Some(Arc::new(OriginalRecord {
            topic: record.topic.to_string(),
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record.headers.clone(),
        })),
    }))
}
