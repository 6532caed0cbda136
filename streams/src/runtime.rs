//! `KafkaStreams`: runs a topology against a cluster (Sluice, embedded or over TCP, or any
//! Kafka-compatible one), as Kafka Streams' client of the same name does.
//!
//! Each of `num.stream.threads` stream threads is a member of the consumer group
//! `application.id` (`cooperative-sticky-copartitioned`: a rebalance leaves a thread the
//! partitions it keeps, and partition `p` of every input topic goes to one thread, so joined
//! and repartitioned records meet), with a producer of its own and a task (with its stores) per
//! partition, restored from the changelogs when it starts. It polls records, runs each through
//! the topology, sends what the sinks and stores wrote, and every `commit.interval.ms` (and
//! before it gives partitions up) flushes the tasks' record caches (their
//! `statestore.cache.max.bytes` share; also whenever a task's caches are full), then the
//! producer, and commits the positions it reached.
//! That order makes processing at-least-once: a committed offset is never ahead of an output or
//! a changelog write that was not acknowledged. Several instances of one application share the
//! partitions through the same group and take them over when one stops.
//!
//! `processing.guarantee=exactly_once_v2` (KIP-447): each thread's producer is transactional
//! (`<application.id>-<process>-<thread>`), its consumer and restore consumers read
//! `read_committed`, and a commit is one transaction: the outputs, repartition and changelog
//! writes since the last commit and the input positions (`send_offsets_to_transaction` with the
//! member's generation, so a zombie member's commit is refused). A crash leaves a transaction
//! open: an instance restarted on the same `state.dir` keeps its process id (see
//! [`crate::state_dir`]), so its producers fence the crashed ones and abort their transactions
//! at once; otherwise `transaction.timeout.ms` (10 s by default here, as in Kafka Streams) ends
//! them. A store's restoration first awaits the end of any transaction open on its changelog,
//! then reads the committed records only, and processing resumes from the committed
//! positions: every result once.
//! Persistent stores write their files and checkpoints only after a transaction commits, so
//! after an unclean stop a store's file never holds an uncommitted update.
//!
//! Custom processors' punctuations run after each record (stream time) and after each poll
//! (wall clock).
//!

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::group_consumer::{
    Assignor, AutoOffsetReset, GroupConfig, GroupConsumer, GroupEvent,
};
use sluice_log::client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::{Client, NewTopic};
use sluice_log::TopicPartition;

use crate::error::{Result, StreamsError};
use crate::processor::PunctuationType;
use crate::serdes::Serde;
use crate::state_dir::{new_process_id, AppStateDir};
use crate::store::{changelog_topic, ReadOnlyKeyValueStore, SharedStore};
use crate::topology::{internal_topic, TaskContext, Topology};

/// What happens to a record whose key or value does not deserialise
/// (`default.deserialization.exception.handler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeserializationHandler {
    /// `LogAndFailExceptionHandler` (Kafka's default): the stream thread stops with the error.
    LogAndFail,
    /// `LogAndContinueExceptionHandler`: the record is logged, counted and skipped.
    LogAndContinue,
}

/// A streams application's settings, with Kafka Streams' names.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// `application.id`: the consumer group, and the prefix of internal topics.
    pub application_id: String,
    /// `num.stream.threads`.
    pub num_stream_threads: usize,
    /// `commit.interval.ms` (Kafka Streams' default for at-least-once: 30 s).
    pub commit_interval: Duration,
    /// `poll.ms`: the longest a stream thread waits for input (100 ms) before it commits
    /// or punctuates on schedule; never past the next commit.
    pub poll: Duration,
    /// `default.deserialization.exception.handler`.
    pub deserialization_handler: DeserializationHandler,
    /// `state.dir`: where persistent stores keep their files, under `<application.id>/`
    /// (default: `sluice-streams` in the system's temporary directory).
    pub state_dir: std::path::PathBuf,
    /// `statestore.cache.max.bytes` (formerly `cache.max.bytes.buffering`): the record caches'
    /// size across the stream threads (10 MiB; 0 turns caching off and forwards every update).
    pub cache_max_bytes: usize,
    /// The stream threads' consumer settings (`consumer.`-prefixed properties).
    pub group: GroupConfig,
    /// The stream threads' producer settings (`producer.`-prefixed properties).
    pub producer: ProducerConfig,
    /// `processing.guarantee=exactly_once_v2` (false: `at_least_once`).
    pub exactly_once: bool,
}

impl StreamsConfig {
    /// Kafka Streams' defaults for `application_id`: one thread, commits every 30 s, fail on
    /// bad records; consumers start from the earliest offset and never auto-commit, producers
    /// wait for `acks=all`.
    pub fn new(application_id: &str) -> StreamsConfig {
        let mut group = GroupConfig::new(application_id);
        group.auto_offset_reset = AutoOffsetReset::Earliest;
        group.enable_auto_commit = false;
        // Kafka Streams' override of the consumer's 500.
        group.fetch.max_poll_records = 1000;
        group.assignment_strategy = vec![Assignor::CooperativeStickyCopartitioned];
        let producer = ProducerConfig {
            linger: Duration::from_millis(100),
            ..ProducerConfig::default()
        };
        StreamsConfig {
            exactly_once: false,
            application_id: application_id.to_string(),
            num_stream_threads: 1,
            commit_interval: Duration::from_millis(30_000),
            poll: Duration::from_millis(100),
            deserialization_handler: DeserializationHandler::LogAndFail,
            cache_max_bytes: 10 * 1024 * 1024,
            state_dir: std::env::temp_dir().join("sluice-streams"),
            group,
            producer,
        }
    }

    /// Reads Kafka Streams' properties: `application.id` (required), `num.stream.threads`,
    /// `commit.interval.ms`, `poll.ms`, `statestore.cache.max.bytes` (or the older
    /// `cache.max.bytes.buffering`), `default.deserialization.exception.handler`,
    /// `processing.guarantee`, and `producer.`/`consumer.`-prefixed client properties.
    pub fn from_props<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<StreamsConfig> {
        let props: Vec<(&str, &str)> = props
            .into_iter()
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let application_id = props
            .iter()
            .find(|(k, _)| *k == "application.id")
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid("application.id", "", "is required"))?;
        let mut config = StreamsConfig::new(application_id);
        let mut consumer = sluice_log::client::config::ClientConfig::new()
            .set("group.id", application_id)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("max.poll.records", "1000")
            .set(
                "partition.assignment.strategy",
                "cooperative-sticky-copartitioned",
            );
        let mut consumer_set = false;
        let mut commit_interval_set = false;
        let mut transaction_timeout_set = false;
        for (key, value) in props {
            match key {
                "application.id" => {}
                "num.stream.threads" => {
                    config.num_stream_threads = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| {
                            invalid(key, value, "expected a whole number of at least 1")
                        })?
                }
                "state.dir" => {
                    if value.is_empty() {
                        return Err(invalid(key, value, "expected a directory"));
                    }
                    config.state_dir = value.into();
                }
                "statestore.cache.max.bytes" | "cache.max.bytes.buffering" => {
                    config.cache_max_bytes = value
                        .parse::<usize>()
                        .map_err(|_| invalid(key, value, "expected a number of bytes"))?;
                }
                "commit.interval.ms" => {
                    let ms = value
                        .parse::<u64>()
                        .map_err(|_| invalid(key, value, "expected milliseconds"))?;
                    config.commit_interval = Duration::from_millis(ms);
                    commit_interval_set = true;
                }
                "poll.ms" => {
                    let ms = value
                        .parse::<u64>()
                        .map_err(|_| invalid(key, value, "expected milliseconds"))?;
                    config.poll = Duration::from_millis(ms);
                }
                "default.deserialization.exception.handler" => {
                    config.deserialization_handler = match value.rsplit('.').next().unwrap_or(value)
                    {
                        "LogAndFailExceptionHandler" => DeserializationHandler::LogAndFail,
                        "LogAndContinueExceptionHandler" => DeserializationHandler::LogAndContinue,
                        _ => return Err(invalid(
                            key,
                            value,
                            "expected LogAndFailExceptionHandler or LogAndContinueExceptionHandler",
                        )),
                    }
                }
                "processing.guarantee" => match value {
                    "at_least_once" => config.exactly_once = false,
                    "exactly_once_v2" => config.exactly_once = true,
                    "exactly_once" | "exactly_once_beta" => {
                        return Err(invalid(
                            key,
                            value,
                            "removed in Kafka Streams 4.0 (KIP-732); use exactly_once_v2",
                        ))
                    }
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "expected at_least_once or exactly_once_v2",
                        ))
                    }
                },
                _ => {
                    if let Some(name) = key.strip_prefix("producer.") {
                        config.producer.set(name, value)?;
                        transaction_timeout_set |= name == "transaction.timeout.ms";
                    } else if let Some(name) = key.strip_prefix("consumer.") {
                        consumer = consumer.set(name, value);
                        consumer_set = true;
                    } else {
                        return Err(invalid(
                            key,
                            value,
                            "not a Kafka Streams property (client properties take a producer. or consumer. prefix)",
                        ));
                    }
                }
            }
        }
        if consumer_set {
            config.group = consumer.group_config()?;
        }
        // Kafka Streams' defaults under exactly-once: commits every 100 ms, transactions that
        // a crashed instance leaves open aborted after 10 s.
        if config.exactly_once {
            if !commit_interval_set {
                config.commit_interval = Duration::from_millis(100);
            }
            if !transaction_timeout_set {
                config.producer.transaction_timeout = Duration::from_millis(10_000);
            }
        }
        Ok(config)
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> StreamsError {
    StreamsError::Config {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Counters of a running application.
#[derive(Debug, Default)]
pub struct StreamsMetrics {
    records_processed: AtomicU64,
    records_restored: AtomicU64,
    records_dropped_late: AtomicU64,
    records_skipped: AtomicU64,
    commits: AtomicU64,
    threads_replaced: AtomicU64,
    /// Rebalances the stream threads have come out of with an assignment.
    assignments: AtomicU64,
    /// Woken at each of them.
    assigned: tokio::sync::Notify,
}

impl StreamsMetrics {
    /// Stream threads that failed and were replaced (`ReplaceThread`).
    pub fn threads_replaced(&self) -> u64 {
        self.threads_replaced.load(Ordering::Relaxed)
    }

    /// Input records run through the topology.
    pub fn records_processed(&self) -> u64 {
        self.records_processed.load(Ordering::Relaxed)
    }

    /// Records dropped because their window had closed (past the grace period; Kafka's
    /// `dropped-records-total` for late records).
    pub fn records_dropped_late(&self) -> u64 {
        self.records_dropped_late.load(Ordering::Relaxed)
    }

    /// Changelog records read back into stores when tasks started.
    pub fn records_restored(&self) -> u64 {
        self.records_restored.load(Ordering::Relaxed)
    }

    /// Input records skipped by `LogAndContinueExceptionHandler` (Kafka's
    /// `dropped-records-total`).
    pub fn records_skipped(&self) -> u64 {
        self.records_skipped.load(Ordering::Relaxed)
    }

    /// Commits of processed positions.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// A running streams application (Kafka's `KafkaStreams`).
pub struct KafkaStreams {
    /// Watches the stream threads, replaces failed ones, and ends with the first error.
    supervisor: tokio::task::JoinHandle<Result<()>>,
    /// Set when an error stopped the instance.
    failed: Arc<AtomicBool>,
    /// Keeps the global tables current (None without global tables).
    global_thread: Option<tokio::task::JoinHandle<Result<()>>>,
    stop: Arc<AtomicBool>,
    metrics: Arc<StreamsMetrics>,
    topology: Arc<Topology>,
    stores: LocalStores,
    globals: crate::global::GlobalStores,
    /// The locked state directory, while persistent stores use it.
    _state_dir: Option<AppStateDir>,
}

/// The stores of every local task, by store name and task partition, for interactive queries.
type LocalStores = Arc<parking_lot::Mutex<BTreeMap<(String, i32), SharedStore>>>;

impl KafkaStreams {
    /// Checks that the source topics exist, then starts the stream threads on the current
    /// tokio runtime. Returns once every thread has joined the group. A thread that fails
    /// shuts this instance down (Kafka's default `SHUTDOWN_CLIENT`).
    pub async fn start(
        topology: Arc<Topology>,
        config: StreamsConfig,
        client: Arc<Client>,
    ) -> Result<KafkaStreams> {
        let handler: UncaughtExceptionHandler =
            Arc::new(|_| StreamThreadExceptionResponse::ShutdownClient);
        KafkaStreams::start_with_handler(topology, config, client, handler).await
    }

    /// Like [`KafkaStreams::start`], with `handler` deciding what a thread's failure does
    /// (Kafka's `setUncaughtExceptionHandler`): replace the thread, shut this instance down, or
    /// shut every instance of the application down.
    pub async fn start_with_handler(
        topology: Arc<Topology>,
        config: StreamsConfig,
        client: Arc<Client>,
        handler: UncaughtExceptionHandler,
    ) -> Result<KafkaStreams> {
        let global_topics = topology.global_tables().into_iter().map(|(topic, _)| topic);
        for topic in topology.source_topics().into_iter().chain(global_topics) {
            if client.topic(&topic, false).await.is_err() {
                return Err(StreamsError::Topology(format!(
                    "source topic {topic} does not exist: create it before starting {} (Kafka's MissingSourceTopicException)",
                    config.application_id
                )));
            }
        }
        let mut partition_counts = Vec::new();
        for topic in topology.sink_topics() {
            let info = client.topic(&topic, true).await?;
            partition_counts.push((topic, info.leaders.len() as i32));
        }
        create_internal_topics(&topology, &config, &client).await?;
        check_copartitioning(&topology, &config, &client).await?;
        // Persistent stores need the application's state directory, for this instance alone;
        // it keeps the process id across restarts.
        let state_dir = if topology.has_persistent_stores() {
            Some(AppStateDir::lock(
                &config.state_dir,
                &config.application_id,
            )?)
        } else {
            None
        };
        let process_id = match &state_dir {
            Some(dir) => dir.process_id()?,
            None => new_process_id(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(StreamsMetrics::default());
        let stores = LocalStores::default();
        // The global tables are read whole before any stream thread starts.
        let globals = topology.new_global_stores();
        let global_thread = bootstrap_globals(&client, &topology, &globals, config.exactly_once)
            .await?
            .map(|consumer| {
                tokio::spawn(run_global_thread(
                    consumer,
                    topology.clone(),
                    globals.clone(),
                ))
            });
        let failed = Arc::new(AtomicBool::new(false));
        let factory = Arc::new(ThreadFactory {
            topology: topology.clone(),
            config: config.clone(),
            client: client.clone(),
            partition_counts,
            stores: stores.clone(),
            globals: globals.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
            failed: failed.clone(),
            handler,
            next_index: std::sync::atomic::AtomicUsize::new(1),
            process_id,
        });
        let mut threads = tokio::task::JoinSet::new();
        for _ in 0..config.num_stream_threads.max(1) {
            threads.spawn(factory.make().await?.run());
        }
        let supervisor = tokio::spawn(supervise(threads, factory));
        Ok(KafkaStreams {
            supervisor,
            global_thread,
            stop,
            failed,
            metrics,
            topology,
            stores,
            globals,
            _state_dir: state_dir,
        })
    }

    /// A read-only view of store `name` across this instance's tasks (Kafka's interactive
    /// queries of local state): a key is found if this instance owns its partition. Each query
    /// reads the tasks the instance has at that moment.
    pub fn store<K, V>(
        &self,
        name: &str,
        key: impl Serde<K> + 'static,
        value: impl Serde<V> + 'static,
    ) -> Result<ReadOnlyKeyValueStore<K, V>> {
        self.topology.check_store(name)?;
        if let Some(global) = self.globals.get(name).cloned() {
            return Ok(ReadOnlyKeyValueStore::new(
                name,
                Box::new(move || vec![global.clone()]),
                Arc::new(key),
                Arc::new(value),
            ));
        }
        let (stores, store_name) = (self.stores.clone(), name.to_string());
        let parts = move || {
            stores
                .lock()
                .iter()
                .filter(|((store, _), _)| *store == store_name)
                .map(|(_, part)| part.clone())
                .collect()
        };
        Ok(ReadOnlyKeyValueStore::new(
            name,
            Box::new(parts),
            Arc::new(key),
            Arc::new(value),
        ))
    }

    /// The application's counters.
    pub fn metrics(&self) -> &StreamsMetrics {
        &self.metrics
    }

    /// Waits (at most `timeout`) until a stream thread has had an assignment: from then on
    /// the application reads its partitions from fixed positions (a new group's first
    /// rebalance waits out the broker's `group.initial.rebalance.delay.ms`). False if none
    /// came in time.
    pub async fn wait_until_assigned(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.metrics.assigned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.metrics.assignments.load(Ordering::Acquire) > 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Whether a stream thread has stopped (with an error: see [`KafkaStreams::close`]).
    pub fn has_failed_thread(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Stops the stream threads: each processes what it polled, flushes, commits and leaves
    /// the group. The first thread error, if any thread failed.
    pub async fn close(self) -> Result<()> {
        self.stop.store(true, Ordering::Release);
        // The global thread keeps no state of its own to commit: its topic is its changelog.
        if let Some(global) = &self.global_thread {
            global.abort();
        }
        match self.supervisor.await {
            Ok(outcome) => outcome,
            Err(err) => Err(StreamsError::Stopped(format!(
                "the stream threads' supervisor panicked: {err}"
            ))),
        }
    }
}

/// Creates the internal topics that do not exist yet, with as many partitions as the widest
/// source topic (task `p` reads and logs partition `p`): each store's changelog (compacted) and
/// each repartition topic.
async fn create_internal_topics(
    topology: &Topology,
    config: &StreamsConfig,
    client: &Client,
) -> Result<()> {
    let mut partitions = 1;
    for topic in topology.source_topics() {
        partitions = partitions.max(client.topic(&topic, false).await?.leaders.len() as i32);
    }
    let changelogs = topology.stores().into_iter().map(|store| NewTopic {
        name: changelog_topic(&config.application_id, &store),
        partitions,
        replication_factor: -1,
        configs: [("cleanup.policy".to_string(), "compact".to_string())].into(),
    });
    // An internal topic that must be co-partitioned with user topics (a foreign-key join's
    // subscription and response topics) gets their partition count; the others the widest.
    let groups = topology.copartition_groups(&config.application_id);
    let internal: Vec<String> = topology
        .internal_topics()
        .into_iter()
        .map(|suffix| internal_topic(&config.application_id, &suffix))
        .collect();
    let mut repartitions = Vec::new();
    for name in internal.iter() {
        let mut count = None;
        for group in groups.iter().filter(|group| group.contains(name)) {
            for topic in group.iter().filter(|t| !internal.contains(t)) {
                let n = client.topic(topic, false).await?.leaders.len() as i32;
                count = Some(count.map_or(n, |c: i32| c.max(n)));
            }
        }
        repartitions.push(NewTopic {
            name: name.clone(),
            partitions: count.unwrap_or(partitions),
            replication_factor: -1,
            configs: Default::default(),
        });
    }
    let topics: Vec<NewTopic> = changelogs.chain(repartitions).collect();
    if topics.is_empty() {
        return Ok(());
    }
    for (name, created) in client.create_topics(&topics, false).await? {
        match created {
            Ok(()) => tracing::info!(topic = %name, "created an internal topic"),
            Err(sluice_log::Error::Broker {
                code: kafka_protocol::ResponseError::TopicAlreadyExists,
                ..
            }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Both sides of every join must have as many partitions, or a key's records and its table row
/// would land in different tasks (Kafka's TopologyException for co-partitioning).
async fn check_copartitioning(
    topology: &Topology,
    config: &StreamsConfig,
    client: &Client,
) -> Result<()> {
    for group in topology.copartition_groups(&config.application_id) {
        let mut counts = Vec::with_capacity(group.len());
        for topic in &group {
            counts.push((
                topic.clone(),
                client.topic(topic, false).await?.leaders.len(),
            ));
        }
        if let Some(((a, n), (b, m))) = counts
            .iter()
            .zip(counts.iter().skip(1))
            .find(|((_, n), (_, m))| n != m)
        {
            return Err(StreamsError::Topology(format!(
                "a join needs co-partitioned inputs, but {a} has {n} partitions and {b} has {m}: create them with the same number, or repartition() the stream to match the table"
            )));
        }
    }
    Ok(())
}

/// One stream thread: a group member, a producer, the topology, and a task per partition.
struct StreamThread {
    name: String,
    topology: Arc<Topology>,
    /// For restoring stores (the restore consumer's client).
    client: Arc<Client>,
    member: GroupConsumer,
    producer: Producer,
    /// Outputs sent since the last commit, to check before committing.
    deliveries: Vec<DeliveryFuture>,
    /// Changelog writes of persistent stores since the last commit: task, store, delivery.
    changelog_deliveries: Vec<(i32, String, DeliveryFuture)>,
    /// The changelog topics of the persistent stores, and their stores.
    persistent_changelogs: std::collections::HashMap<String, String>,
    /// The tasks of the partitions this thread owns, each with its own stores, and the
    /// topic-partitions it was built for.
    tasks: BTreeMap<i32, (std::collections::BTreeSet<String>, TaskContext)>,
    /// Output topics' partition counts, for sink partitioners.
    partition_counts: Vec<(String, i32)>,
    /// A vector for a task's outputs, reused from record to record.
    outputs: Vec<crate::topology::OutputRecord>,
    /// Where this thread's tasks' stores are published for queries.
    stores: LocalStores,
    /// The instance's global tables.
    globals: crate::global::GlobalStores,
    config: StreamsConfig,
    metrics: Arc<StreamsMetrics>,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    handler: UncaughtExceptionHandler,
    /// Whether a transaction is open (exactly-once): begun at the first send after a commit.
    in_transaction: bool,
    /// Records processed or outputs sent since the last commit (exactly-once commits only
    /// then: an idle thread runs no empty transactions).
    dirty: bool,
}

impl StreamThread {
    async fn run(mut self) -> ThreadExit {
        let outcome = self.process_until_stopped().await;
        // Whatever happened, what was processed and acknowledged is committed before leaving.
        let committed = match &outcome {
            Ok(()) => self.commit().await,
            Err(_) => Ok(()),
        };
        if outcome.is_err() && self.in_transaction {
            // What the failed thread wrote since its last commit is never seen.
            if let Err(err) = self.producer.abort_transaction().await {
                tracing::warn!(thread = %self.name, %err, "could not abort the open transaction");
            }
            self.in_transaction = false;
        }
        if outcome.is_err() {
            // The thread is going: its tasks no longer answer queries.
            for (_, task) in self.tasks.values() {
                unpublish(&self.stores, task);
            }
        }
        let response = match &outcome {
            Ok(()) => None,
            // Another member asked the application to shut down: this instance does.
            Err(StreamsError::Client(sluice_log::Error::ShutdownRequested { .. })) => {
                tracing::warn!(thread = %self.name, "the application was asked to shut down");
                Some(StreamThreadExceptionResponse::ShutdownClient)
            }
            Err(err) => {
                tracing::error!(thread = %self.name, %err, "stream thread failed");
                Some((self.handler)(err))
            }
        };
        match response {
            Some(StreamThreadExceptionResponse::ShutdownClient) => self.shut_down_instance(),
            Some(StreamThreadExceptionResponse::ShutdownApplication) => {
                self.shut_down_instance();
                if let Err(err) = self.member.request_group_shutdown().await {
                    tracing::error!(thread = %self.name, %err, "could not ask the application to shut down");
                }
            }
            Some(StreamThreadExceptionResponse::ReplaceThread) | None => {}
        }
        let left = self.member.close().await.map_err(StreamsError::from);
        self.producer.close().await;
        match (outcome, response) {
            (Err(err), Some(StreamThreadExceptionResponse::ReplaceThread)) => {
                ThreadExit::Replace(err)
            }
            (outcome, _) => ThreadExit::Stopped(outcome.and(committed).and(left)),
        }
    }

    /// Stops every thread of this instance, as failed.
    fn shut_down_instance(&self) {
        self.failed.store(true, Ordering::Release);
        self.stop.store(true, Ordering::Release);
    }

    async fn process_until_stopped(&mut self) -> Result<()> {
        let mut last_commit = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            // A thread with no input still commits (and punctuates) on time.
            let wait = self.config.poll.min(
                self.config
                    .commit_interval
                    .saturating_sub(last_commit.elapsed()),
            );
            match self.member.next_event_timeout(wait).await? {
                GroupEvent::Records(records) => {
                    let records = in_timestamp_order(records);
                    let mut at = 0;
                    while let Some(first) = records.get(at) {
                        if self
                            .topology
                            .reads_in_batches(&self.config.application_id, &first.topic)
                        {
                            // A batch source takes the run of this partition's records at once.
                            let len = records[at..]
                                .iter()
                                .take_while(|r| {
                                    r.partition == first.partition
                                        && (Arc::ptr_eq(&r.topic, &first.topic)
                                            || r.topic == first.topic)
                                })
                                .count();
                            self.process_run(&records[at..at + len])?;
                            at += len;
                        } else {
                            self.process(first)?;
                            at += 1;
                        }
                    }
                    // A poll's outputs go to the producer together, task by task.
                    let partitions: Vec<i32> = self.tasks.keys().copied().collect();
                    for partition in partitions {
                        self.send_outputs(partition).await?;
                    }
                    self.punctuate_wall_clock().await?;
                }
                // The partitions go to another member: what was processed is committed first.
                GroupEvent::Revoked(_) => {
                    self.commit().await?;
                    last_commit = Instant::now();
                }
                // Fenced: the group moved on; the outputs sent stay (at least once), and the
                // tasks' state is rebuilt from the changelogs when partitions come back.
                GroupEvent::Lost(partitions) => {
                    tracing::warn!(thread = %self.name, ?partitions, "partitions lost; they will be processed again from the last commit");
                    if self.in_transaction {
                        // Exactly-once: what was written since the last commit is aborted.
                        self.in_transaction = false;
                        if let Err(err) = self.producer.abort_transaction().await {
                            tracing::warn!(thread = %self.name, %err, "could not abort the open transaction");
                        }
                    }
                    self.deliveries.clear();
                    self.changelog_deliveries.clear();
                    for (_, task) in self.tasks.values() {
                        unpublish(&self.stores, task);
                    }
                    self.tasks.clear();
                }
                GroupEvent::Assigned(partitions) => {
                    tracing::info!(thread = %self.name, ?partitions, "assigned");
                    self.take_tasks(&partitions).await?;
                    self.metrics.assignments.fetch_add(1, Ordering::Release);
                    self.metrics.assigned.notify_waiters();
                }
            }
            if last_commit.elapsed() >= self.config.commit_interval {
                self.commit().await?;
                last_commit = Instant::now();
            }
        }
        Ok(())
    }

    /// Keeps a task for each partition number of `partitions` (co-partitioned topics share a
    /// task), restoring a task's stores from their changelogs before it processes. The group's
    /// assignor may give one partition number's topics to different members, so a task that
    /// gains a topic-partition is rebuilt from the changelogs: another member may have updated
    /// its stores meanwhile (and logged every update before it gave the partition up).
    async fn take_tasks(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let mut wanted: BTreeMap<i32, std::collections::BTreeSet<String>> = BTreeMap::new();
        for tp in partitions {
            wanted
                .entry(tp.partition)
                .or_default()
                .insert(tp.topic.to_string());
        }
        let stores = self.stores.clone();
        self.tasks.retain(|partition, (topics, task)| {
            let keep = wanted
                .get(partition)
                .is_some_and(|now| now.is_subset(topics) && !now.is_empty());
            if !keep {
                // A task given up no longer answers queries.
                unpublish(&stores, task);
            }
            keep
        });
        for (partition, topics) in wanted {
            if let Some((built_for, _)) = self.tasks.get_mut(&partition) {
                // Fewer topics than it was built for: the stores are still current.
                *built_for = topics;
                continue;
            }
            let mut task = TaskContext::new(&self.config.application_id, partition);
            for (topic, n) in &self.partition_counts {
                task.set_partition_count(topic, *n);
            }
            for store in self.topology.stores() {
                // A persistent store starts from its files: only what its changelog gained
                // since their checkpoint is read.
                let mut from = None;
                if self.topology.is_persistent(&store) {
                    let path = self
                        .config
                        .state_dir
                        .join(&self.config.application_id)
                        .join(format!("0_{partition}"))
                        .join(format!("{store}.sqlite"));
                    let (kept, checkpoint) = crate::store::KeyValueStore::open_persistent(&path)?;
                    tracing::info!(thread = %self.name, %store, partition, entries = kept.len(), ?checkpoint, "opened a persistent store");
                    task.install_store(&store, kept);
                    from = checkpoint;
                }
                let restored = restore(
                    &self.client,
                    &mut task,
                    &self.config,
                    &store,
                    (partition, from),
                )
                .await?;
                tracing::info!(thread = %self.name, %store, partition, records = restored, "restored a store from its changelog");
                self.metrics
                    .records_restored
                    .fetch_add(restored, Ordering::Relaxed);
            }
            for store in self.topology.stores() {
                if let Some(shared) = task.shared_store(&store) {
                    self.stores.lock().insert((store, partition), shared);
                }
            }
            task.set_wall_clock_ms(wall_clock_ms());
            task.set_global_stores(self.globals.clone());
            self.topology.init_task(&mut task)?;
            self.tasks.insert(partition, (topics, task));
            // What the processors' init wrote goes out like a record's outputs.
            self.send_outputs(partition).await?;
        }
        // The thread's share of the caches, split between its tasks.
        let per_thread = self.config.cache_max_bytes / self.config.num_stream_threads.max(1);
        let per_task = per_thread / self.tasks.len().max(1);
        for (_, task) in self.tasks.values_mut() {
            task.set_cache_max_bytes(if per_thread == 0 { 0 } else { per_task.max(1) });
        }
        Ok(())
    }

    /// Runs one record through its task; its outputs join the task's, to be sent after the
    /// poll.
    fn process(&mut self, record: &crate::topology::RawRecord) -> Result<()> {
        let Some((_, task)) = self.tasks.get_mut(&record.partition) else {
            return Err(StreamsError::Stopped(format!(
                "a record of {}-{} came before its task was created",
                record.topic, record.partition
            )));
        };
        let earlier_outputs = task.outputs.len();
        match self.topology.process(task, record) {
            Ok(()) => {}
            Err(
                err @ StreamsError::Serde {
                    action: "deserialize",
                    ..
                },
            ) if self.config.deserialization_handler == DeserializationHandler::LogAndContinue => {
                tracing::warn!(thread = %self.name, topic = %record.topic, partition = record.partition, offset = record.offset, %err, "skipping a record that does not deserialise");
                self.metrics.records_skipped.fetch_add(1, Ordering::Relaxed);
                task.outputs.truncate(earlier_outputs);
                return Ok(());
            }
            Err(err) => return Err(err),
        }
        self.dirty = true;
        after_records(&self.topology, &self.metrics, task, 1)
    }

    /// Runs a run of records of one topic-partition through its task (for batch sources).
    fn process_run(&mut self, run: &[crate::topology::RawRecord]) -> Result<()> {
        let Some(first) = run.first() else {
            return Ok(());
        };
        let Some((_, task)) = self.tasks.get_mut(&first.partition) else {
            return Err(StreamsError::Stopped(format!(
                "a record of {}-{} came before its task was created",
                first.topic, first.partition
            )));
        };
        self.topology.process_run(task, run)?;
        self.dirty = true;
        after_records(&self.topology, &self.metrics, task, run.len() as u64)
    }

    /// Runs every task's wall-clock punctuations that are due, and sends what they wrote.
    async fn punctuate_wall_clock(&mut self) -> Result<()> {
        let now = wall_clock_ms();
        let partitions: Vec<i32> = self.tasks.keys().copied().collect();
        for partition in partitions {
            if let Some((_, task)) = self.tasks.get_mut(&partition) {
                task.set_wall_clock_ms(now);
                self.topology
                    .punctuate(task, PunctuationType::WallClockTime, now)?;
            }
            self.send_outputs(partition).await?;
        }
        Ok(())
    }

    /// Sends what task `partition` wrote since the last call.
    async fn send_outputs(&mut self, partition: i32) -> Result<()> {
        let Some((_, task)) = self.tasks.get_mut(&partition) else {
            return Ok(());
        };
        // One vector for every record's outputs, so nothing is allocated for it per record.
        std::mem::swap(&mut self.outputs, &mut task.outputs);
        if self.config.exactly_once && !self.in_transaction && !self.outputs.is_empty() {
            self.producer.begin_transaction()?;
            self.in_transaction = true;
        }
        for output in self.outputs.drain(..) {
            // A persistent store's changelog writes are tracked: the offset they reach is the
            // store's checkpoint at the next commit.
            let persistent = if self.persistent_changelogs.is_empty() {
                None
            } else {
                self.persistent_changelogs.get(&*output.topic).cloned()
            };
            let delivery = self
                .producer
                .send(ProducerRecord {
                    topic: output.topic,
                    partition: output.partition,
                    key: output.key,
                    value: output.value,
                    headers: output.headers,
                    timestamp: Some(output.timestamp),
                })
                .await?;
            // One delivery per batch is enough to learn its outcome (the last: its offset is
            // the batch's highest).
            match persistent {
                Some(store) => match self.changelog_deliveries.last_mut() {
                    Some((p, s, last))
                        if *p == partition && *s == store && last.same_batch(&delivery) =>
                    {
                        *last = delivery
                    }
                    _ => self.changelog_deliveries.push((partition, store, delivery)),
                },
                None => match self.deliveries.last_mut() {
                    Some(last) if last.same_batch(&delivery) => *last = delivery,
                    _ => self.deliveries.push(delivery),
                },
            }
        }
        Ok(())
    }

    /// Flushes the producer, checks every output since the last commit was written, then
    /// commits the positions reached: a committed offset is never ahead of an output.
    async fn commit(&mut self) -> Result<()> {
        // What the record caches held goes out first: it is part of what is committed.
        let partitions: Vec<i32> = self.tasks.keys().copied().collect();
        for partition in partitions {
            if let Some((_, task)) = self.tasks.get_mut(&partition) {
                self.topology.flush_caches(task)?;
            }
            self.send_outputs(partition).await?;
        }
        self.producer.flush().await;
        let written = |delivery: DeliveryFuture| match delivery.try_result() {
            Some(Ok(metadata)) => Ok(metadata.offset),
            Some(Err(err)) => Err(StreamsError::from(err)),
            None => Err(StreamsError::Stopped(
                "an output was neither acknowledged nor failed after a flush".into(),
            )),
        };
        for delivery in self.deliveries.drain(..) {
            written(delivery)?;
        }
        // Each persistent store goes to disk with the changelog offset its writes reached.
        let mut checkpoints: BTreeMap<i32, std::collections::HashMap<String, i64>> =
            BTreeMap::new();
        for (partition, store, delivery) in self.changelog_deliveries.drain(..) {
            let next = written(delivery)? + 1;
            let checkpoint = checkpoints
                .entry(partition)
                .or_default()
                .entry(store)
                .or_insert(next);
            *checkpoint = (*checkpoint).max(next);
        }
        if self.config.exactly_once {
            // One transaction: the outputs and changelog writes since the last commit, and
            // the positions that produced them.
            if !self.dirty && !self.in_transaction {
                return Ok(());
            }
            if !self.in_transaction {
                self.producer.begin_transaction()?;
                self.in_transaction = true;
            }
            let mut positions = Vec::new();
            for tp in self.member.assignment() {
                positions.push((tp.clone(), self.member.position(&tp.topic, tp.partition)?));
            }
            let group = self.member.group_metadata();
            self.producer
                .send_offsets_to_transaction(&positions, &group)
                .await?;
            self.producer.commit_transaction().await?;
            self.in_transaction = false;
            self.dirty = false;
        }
        // Stores go to disk after what they hold is committed: under exactly-once a store's
        // file never holds an update whose transaction may still abort.
        for (partition, (_, task)) in self.tasks.iter_mut() {
            let none = std::collections::HashMap::new();
            task.persist_stores(checkpoints.get(partition).unwrap_or(&none))?;
        }
        if !self.config.exactly_once {
            self.member.commit().await?;
        }
        self.metrics.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// What to do when a stream thread fails (Kafka's `StreamThreadExceptionResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamThreadExceptionResponse {
    /// Start a new thread in its place: it joins the group, and the tasks it gets are
    /// restored from their changelogs and go on from the last commit.
    ReplaceThread,
    /// Stop every thread of this instance (the default).
    ShutdownClient,
    /// Stop every instance of the application: the request travels to the other members in
    /// the group's rebalance (KIP-671).
    ShutdownApplication,
}

/// Decides what a stream thread's error does (Kafka's `StreamsUncaughtExceptionHandler`).
pub type UncaughtExceptionHandler =
    Arc<dyn Fn(&StreamsError) -> StreamThreadExceptionResponse + Send + Sync>;

/// How a stream thread ended.
enum ThreadExit {
    /// It stopped (closed, or failed and shut the instance down).
    Stopped(Result<()>),
    /// It failed and the handler asked for a new thread in its place.
    Replace(StreamsError),
}

/// Makes the stream threads of an instance (the first ones, and replacements).
struct ThreadFactory {
    topology: Arc<Topology>,
    config: StreamsConfig,
    client: Arc<Client>,
    partition_counts: Vec<(String, i32)>,
    stores: LocalStores,
    globals: crate::global::GlobalStores,
    metrics: Arc<StreamsMetrics>,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    handler: UncaughtExceptionHandler,
    next_index: std::sync::atomic::AtomicUsize,
    /// This instance's id in transactional ids (Kafka Streams' process id).
    process_id: String,
}

impl ThreadFactory {
    /// A new stream thread, joined to the group.
    async fn make(&self) -> Result<StreamThread> {
        let idx = self.next_index.fetch_add(1, Ordering::Relaxed);
        let config = &self.config;
        // As Kafka Streams: each thread's consumer, restore consumer and producer have
        // connections of their own, so that none waits behind another's long poll.
        let mut group = config.group.clone();
        let mut producer_config = config.producer.clone();
        if config.exactly_once {
            group.fetch.isolation_level = 1;
            // Kafka Streams' `<application.id>-<processId>-<threadIdx>`: unique per thread of
            // each instance, the same again when the instance restarts on its state directory.
            producer_config.transactional_id = Some(format!(
                "{}-{}-{idx}",
                config.application_id, self.process_id
            ));
        }
        let member = GroupConsumer::subscribe(
            self.client.sibling().await?,
            self.topology.subscribed_topics(&config.application_id),
            group,
        )
        .await?;
        let producer = Producer::new(self.client.sibling().await?, producer_config);
        if config.exactly_once {
            producer.init_transactions().await?;
        }
        Ok(StreamThread {
            name: format!("{}-StreamThread-{idx}", config.application_id),
            topology: self.topology.clone(),
            client: self.client.sibling().await?,
            member,
            producer,
            in_transaction: false,
            dirty: false,
            deliveries: Vec::new(),
            changelog_deliveries: Vec::new(),
            persistent_changelogs: self
                .topology
                .stores()
                .into_iter()
                .filter(|store| self.topology.is_persistent(store))
                .map(|store| (changelog_topic(&config.application_id, &store), store))
                .collect(),
            tasks: BTreeMap::new(),
            partition_counts: self.partition_counts.clone(),
            outputs: Vec::new(),
            stores: self.stores.clone(),
            globals: self.globals.clone(),
            config: config.clone(),
            metrics: self.metrics.clone(),
            stop: self.stop.clone(),
            failed: self.failed.clone(),
            handler: self.handler.clone(),
        })
    }
}

/// Waits for the stream threads, starts a replacement for each that asks for one (unless
/// the instance is stopping), and ends with the first error once all have stopped.
async fn supervise(
    mut threads: tokio::task::JoinSet<ThreadExit>,
    factory: Arc<ThreadFactory>,
) -> Result<()> {
    let mut first_error = None;
    while let Some(exit) = threads.join_next().await {
        match exit {
            Ok(ThreadExit::Stopped(Ok(()))) => {}
            Ok(ThreadExit::Stopped(Err(err))) => {
                first_error.get_or_insert(err);
            }
            Ok(ThreadExit::Replace(err)) => {
                if factory.stop.load(Ordering::Acquire) {
                    first_error.get_or_insert(err);
                    continue;
                }
                factory
                    .metrics
                    .threads_replaced
                    .fetch_add(1, Ordering::Relaxed);
                match factory.make().await {
                    Ok(thread) => {
                        tracing::warn!(thread = %thread.name, %err, "replacing a failed stream thread");
                        threads.spawn(thread.run());
                    }
                    Err(start) => {
                        tracing::error!(%start, "could not start a replacement stream thread");
                        factory.failed.store(true, Ordering::Release);
                        factory.stop.store(true, Ordering::Release);
                        first_error.get_or_insert(err);
                    }
                }
            }
            Err(panic) => {
                factory.failed.store(true, Ordering::Release);
                factory.stop.store(true, Ordering::Release);
                first_error.get_or_insert(StreamsError::Stopped(format!(
                    "a stream thread panicked: {panic}"
                )));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Reads every partition of the global tables' topics to its current end into `globals`
/// (Kafka's global bootstrap); returns the consumer, to keep them current, or None without
/// global tables. Bounded: no progress for 30 s is an error. Under exactly-once the topics are
/// read `read_committed`, to their last stable offsets.
async fn bootstrap_globals(
    client: &Arc<Client>,
    topology: &Topology,
    globals: &crate::global::GlobalStores,
    exactly_once: bool,
) -> Result<Option<Consumer>> {
    let isolation = i8::from(exactly_once);
    let mut assignments = Vec::new();
    let mut ends = Vec::new();
    for (topic, _) in topology.global_tables() {
        let partitions = client.topic(&topic, false).await?.leaders.len() as i32;
        for partition in 0..partitions {
            let tp = TopicPartition::new(&topic, partition);
            let end = client
                .list_offset_isolated(&topic, partition, -1, isolation)
                .await?;
            ends.push((tp.clone(), end));
            assignments.push((tp, StartOffset::Beginning));
        }
    }
    if assignments.is_empty() {
        return Ok(None);
    }
    let mut consumer = Consumer::assign(
        client.sibling().await?,
        assignments,
        ConsumerConfig {
            isolation_level: isolation,
            ..ConsumerConfig::default()
        },
    )
    .await?;
    let behind = |consumer: &Consumer| -> Result<u64> {
        let mut behind = 0;
        for (tp, end) in &ends {
            behind += (end - consumer.position(&tp.topic, tp.partition)?).max(0) as u64;
        }
        Ok(behind)
    };
    let mut last_progress = (behind(&consumer)?, Instant::now());
    let mut loaded = 0u64;
    while last_progress.0 > 0 {
        for record in consumer.poll().await? {
            topology.apply_global(globals, &record);
            loaded += 1;
        }
        let now_behind = behind(&consumer)?;
        if now_behind < last_progress.0 {
            last_progress = (now_behind, Instant::now());
        } else if last_progress.1.elapsed() > Duration::from_secs(30) {
            return Err(StreamsError::Stopped(format!(
                "loading the global tables stopped {now_behind} records short of the end"
            )));
        }
    }
    tracing::info!(records = loaded, "global tables loaded");
    Ok(Some(consumer))
}

/// Keeps the global tables current: applies every new record of their topics.
async fn run_global_thread(
    mut consumer: Consumer,
    topology: Arc<Topology>,
    globals: crate::global::GlobalStores,
) -> Result<()> {
    loop {
        let records = match consumer.poll().await {
            Ok(records) => records,
            Err(err) => {
                tracing::error!(%err, "the global thread stopped: global tables stay as they are");
                return Err(err.into());
            }
        };
        for record in records {
            topology.apply_global(&globals, &record);
        }
    }
}

/// The wall clock, in ms since the epoch.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Reads partition `partition` of the changelog of `store` from the beginning into the task's
/// store; returns how many records it applied.
async fn restore(
    client: &Arc<Client>,
    task: &mut TaskContext,
    config: &StreamsConfig,
    store: &str,
    (partition, checkpoint): (i32, Option<i64>),
) -> Result<u64> {
    let topic = changelog_topic(&config.application_id, store);
    // Exactly-once: only committed changelog records, up to the last stable offset.
    let isolation = i8::from(config.exactly_once);
    let end = if config.exactly_once {
        committed_end(client, &topic, partition, config).await?
    } else {
        client.list_offset(&topic, partition, -1).await?
    };
    let start = client.list_offset(&topic, partition, -2).await?;
    // A checkpoint outside the changelog (the topic was recreated, or compacted past it)
    // makes the local copy unusable: it is wiped and rebuilt from the start.
    let from = match checkpoint {
        Some(next) if next >= start && next <= end => next,
        Some(next) => {
            tracing::warn!(%store, partition, checkpoint = next, start, end, "the store's checkpoint is outside its changelog: restoring it from the start");
            task.wipe_store(store)?;
            start
        }
        // No checkpoint: whatever the store holds is of unknown age.
        None => {
            task.wipe_store(store)?;
            start
        }
    };
    if end <= from {
        task.persist_store(store, end)?;
        return Ok(0);
    }
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(
            TopicPartition::new(&topic, partition),
            StartOffset::Offset(from),
        )],
        ConsumerConfig {
            isolation_level: isolation,
            ..ConsumerConfig::default()
        },
    )
    .await?;
    let mut restored = 0u64;
    // Bounded: a changelog that stops advancing (its partition gone, the broker away) is an
    // error after 30 s without progress, not a task that never starts.
    let mut last_progress = (consumer.position(&topic, partition)?, Instant::now());
    // A long restore says how far it is, every few seconds (Kafka's StateRestoreListener
    // `onBatchRestored`, as a log line).
    let mut last_report = Instant::now();
    tracing::info!(%store, partition, from, end, "restoring a store from its changelog");
    while consumer.position(&topic, partition)? < end {
        let position = consumer.position(&topic, partition)?;
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            tracing::info!(%store, partition, position, end, restored, "restoring");
        }
        if position > last_progress.0 {
            last_progress = (position, Instant::now());
        } else if last_progress.1.elapsed() > Duration::from_secs(30) {
            return Err(StreamsError::Stopped(format!(
                "restoring store {store} from {topic}-{partition} stopped at offset {position} of {end}"
            )));
        }
        let records = consumer.poll().await?;
        for record in records {
            if record.offset >= end {
                break;
            }
            let Some(key) = record.key else {
                continue;
            };
            task.restore(store, key, record.value);
            restored += 1;
        }
    }
    // The restored state is on disk (for a persistent store) with the offset it reached.
    task.persist_store(store, end)?;
    Ok(restored)
}

/// The end of a changelog partition's committed records, once no transaction is open on it.
///
/// A transaction open on a changelog this thread has just been given is another producer's: a
/// crashed or fenced owner's, which will be aborted, or the last owner's, committing. Records
/// committed after its first offset lie past the last stable offset until it ends, so reading
/// only up to the LSO could miss committed state; restoration waits for it (bounded by the
/// transaction timeout, which aborts it on the coordinator, plus a margin).
async fn committed_end(
    client: &Arc<Client>,
    topic: &str,
    partition: i32,
    config: &StreamsConfig,
) -> Result<i64> {
    let high_watermark = client.list_offset(topic, partition, -1).await?;
    let limit = config.producer.transaction_timeout + Duration::from_secs(30);
    let started = Instant::now();
    let mut reported = false;
    loop {
        let stable = client.list_offset_isolated(topic, partition, -1, 1).await?;
        if stable >= high_watermark {
            return Ok(stable);
        }
        if !reported {
            reported = true;
            tracing::info!(
                topic,
                partition,
                stable,
                high_watermark,
                "a transaction is open on the changelog: restoring after it ends"
            );
        }
        if started.elapsed() > limit {
            return Err(StreamsError::Stopped(format!(
                "a transaction open on {topic}-{partition} since offset {stable} did not end within {} ms",
                limit.as_millis()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Withdraws a task's stores from the queryable set (only those this task published: another
/// thread may own the partition by now).
fn unpublish(stores: &LocalStores, task: &TaskContext) {
    stores.lock().retain(|(name, partition), shared| {
        *partition != task.task_partition()
            || !task
                .store(name)
                .is_some_and(|own| Arc::ptr_eq(&own, shared))
    });
}

/// What follows `n` records run through `task`: its stream-time punctuations, the counts.
fn after_records(
    topology: &Topology,
    metrics: &StreamsMetrics,
    task: &mut TaskContext,
    n: u64,
) -> Result<()> {
    let stream_time = task.task_stream_time();
    topology.punctuate(task, PunctuationType::StreamTime, stream_time)?;
    metrics.records_processed.fetch_add(n, Ordering::Relaxed);
    let dropped = task.take_dropped_records();
    if dropped > 0 {
        metrics
            .records_dropped_late
            .fetch_add(dropped, Ordering::Relaxed);
    }
    Ok(())
}

/// The records of one poll in the order Kafka Streams processes a task's inputs, task by
/// task (partition number): each partition's records in offset order, and across a task's
/// partitions the one whose next record has the smallest timestamp first — so that a table's rows are in before the stream records that
/// come after them in time (Kafka's partition group; no waiting for partitions with nothing
/// fetched, which `max.task.idle.ms` would add).
fn in_timestamp_order(records: Vec<crate::topology::RawRecord>) -> Vec<crate::topology::RawRecord> {
    use std::collections::VecDeque;
    // One partition (the usual poll of a task): already in order.
    let single = records.first().is_some_and(|first| {
        records.iter().all(|r| {
            r.partition == first.partition
                && (Arc::ptr_eq(&r.topic, &first.topic) || r.topic == first.topic)
        })
    });
    if single {
        return records;
    }
    let n = records.len();
    // Each task (partition number) on its own: tasks are independent, and a task's records
    // stay together (runs for batch sources).
    let mut tasks: BTreeMap<i32, BTreeMap<Arc<str>, VecDeque<crate::topology::RawRecord>>> =
        BTreeMap::new();
    for record in records {
        tasks
            .entry(record.partition)
            .or_default()
            .entry(record.topic.clone())
            .or_default()
            .push_back(record);
    }
    let mut ordered = Vec::with_capacity(n);
    for (_, topics) in tasks {
        let mut queues: Vec<VecDeque<crate::topology::RawRecord>> = topics.into_values().collect();
        if queues.len() == 1 {
            ordered.extend(queues.pop().unwrap_or_default());
            continue;
        }
        loop {
            let next = queues
                .iter()
                .enumerate()
                .filter_map(|(idx, queue)| queue.front().map(|r| (r.timestamp, idx)))
                .min();
            let Some((_, idx)) = next else {
                break;
            };
            if let Some(record) = queues[idx].pop_front() {
                ordered.push(record);
            }
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp: i64,
    ) -> crate::topology::RawRecord {
        crate::topology::RawRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn polled_records_go_by_timestamp_across_partitions_and_by_offset_within_one() {
        let records = vec![
            record("views", 0, 0, 30),
            record("views", 0, 1, 10),
            record("profiles", 0, 0, 5),
            record("profiles", 0, 1, 20),
        ];
        let order: Vec<(String, i64)> = in_timestamp_order(records)
            .into_iter()
            .map(|r| (r.topic.to_string(), r.offset))
            .collect();
        // views-0's head (30) waits for profiles' 5 and 20; its offset 1 (timestamp 10) still
        // comes after offset 0.
        assert_eq!(
            order,
            vec![
                ("profiles".to_string(), 0),
                ("profiles".to_string(), 1),
                ("views".to_string(), 0),
                ("views".to_string(), 1),
            ]
        );
    }
}
