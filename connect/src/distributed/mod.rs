//! Distributed workers: workers with the same `group.id` share connectors through Kafka's
//! group protocol (protocol type `connect`), and keep configs, source offsets and statuses in
//! compacted topics (`config.storage.topic`, `offset.storage.topic`, `status.storage.topic`),
//! so that the connectors of a worker that dies are restarted by the others, resuming from the
//! offsets it committed.
//!
//! How it works ([`DistributedWorker`]): every worker reads the three topics whole and tails
//! them. A REST request that changes a connector (create, config, pause, resume, stop,
//! restart, delete) is validated by the worker that receives it and written to the config
//! topic; it returns once read back. The group's leader assigns each connector (with all its
//! tasks) to one worker, round robin over the members; when the set of connectors changes it
//! asks for a rebalance. Rebalances are eager, as Kafka Connect's first protocol: every worker
//! stops what it runs (flushing and committing), rejoins, and starts what it is given. The
//! owner of a connector applies config changes, target states and restart requests from the
//! config topic, writes the connector's task configs there, and writes the statuses of the
//! connector and its tasks to the status topic, from which any worker answers.

pub mod config_log;
pub mod kafka_log;
pub mod status_log;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value as Json};
use sluice_log::client::membership::{GroupMemberMetadata, GroupMembership, MembershipConfig};
use sluice_log::client::Client;
use tokio::sync::watch;

use self::config_log::{ConfigLog, ConfigSnapshot};
use self::status_log::{StatusLog, StatusRecord};
use crate::connector::{BoxFuture, Props};
use crate::data::Value;
use crate::error::{ConnectError, Result};
use crate::herder::Herder;
use crate::worker::{
    must_be_stopped, not_found, ConfigInfos, ConnectorInfo, ConnectorStatus,
    ExactlyOnceSourceSupport, OffsetStore, Plugins, Share, ShareStatus, State, TargetState, Worker,
    WorkerConfig,
};

/// The group protocol's name: Sluice's assignment format, not Kafka's, so a Java worker that
/// joins the same group is refused (INCONSISTENT_GROUP_PROTOCOL) rather than misread.
const PROTOCOL: &str = "sluice-connect-1";

/// How often the owner compares what it runs with the statuses it wrote.
const STATUS_INTERVAL: Duration = Duration::from_millis(200);

/// A distributed worker's own settings (Kafka Connect's names and defaults, except the
/// replication factors: -1, the broker's default, so that one node works without setup).
#[derive(Debug, Clone)]
pub struct DistributedConfig {
    /// `group.id` (required).
    pub group_id: String,
    /// `config.storage.topic` (`connect-configs`).
    pub config_topic: String,
    /// `offset.storage.topic` (`connect-offsets`).
    pub offset_topic: String,
    /// `status.storage.topic` (`connect-status`).
    pub status_topic: String,
    /// `config.storage.replication.factor`.
    pub config_replication: i16,
    /// `offset.storage.replication.factor`.
    pub offset_replication: i16,
    /// `status.storage.replication.factor`.
    pub status_replication: i16,
    /// `offset.storage.partitions` (25).
    pub offset_partitions: i32,
    /// `status.storage.partitions` (5).
    pub status_partitions: i32,
    /// `session.timeout.ms` (10 s): how soon a dead worker's connectors move.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (3 s): how soon the others hear of a rebalance.
    pub heartbeat_interval: Duration,
    /// `rebalance.timeout.ms` (60 s).
    pub rebalance_timeout: Duration,
}

impl DistributedConfig {
    /// Splits distributed worker properties into the worker's own settings and these.
    pub fn from_props(props: &Props) -> Result<(WorkerConfig, DistributedConfig)> {
        let mut rest = props.clone();
        let mut take = |key: &str| rest.remove(key);
        let group_id = take("group.id")
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                ConnectError::config("group.id", "", "a distributed worker needs a group.id")
            })?;
        let text = |value: Option<String>, default: &str| {
            value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        fn number<T: std::str::FromStr>(key: &str, value: Option<String>, default: T) -> Result<T> {
            match value {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| ConnectError::config(key, &v, "expected a number")),
            }
        }
        let millis = |key: &str, value: Option<String>, default: u64| {
            number(key, value, default).map(Duration::from_millis)
        };
        let config = DistributedConfig {
            group_id,
            config_topic: text(take("config.storage.topic"), "connect-configs"),
            offset_topic: text(take("offset.storage.topic"), "connect-offsets"),
            status_topic: text(take("status.storage.topic"), "connect-status"),
            config_replication: number(
                "config.storage.replication.factor",
                take("config.storage.replication.factor"),
                -1,
            )?,
            offset_replication: number(
                "offset.storage.replication.factor",
                take("offset.storage.replication.factor"),
                -1,
            )?,
            status_replication: number(
                "status.storage.replication.factor",
                take("status.storage.replication.factor"),
                -1,
            )?,
            offset_partitions: number(
                "offset.storage.partitions",
                take("offset.storage.partitions"),
                25,
            )?,
            status_partitions: number(
                "status.storage.partitions",
                take("status.storage.partitions"),
                5,
            )?,
            session_timeout: millis("session.timeout.ms", take("session.timeout.ms"), 10_000)?,
            heartbeat_interval: millis(
                "heartbeat.interval.ms",
                take("heartbeat.interval.ms"),
                3_000,
            )?,
            rebalance_timeout: millis(
                "rebalance.timeout.ms",
                take("rebalance.timeout.ms"),
                60_000,
            )?,
        };
        if rest.contains_key("offset.storage.file.filename") {
            return Err(ConnectError::config(
                "offset.storage.file.filename",
                "",
                "is for standalone workers; distributed workers keep offsets in offset.storage.topic",
            ));
        }
        let mut worker = WorkerConfig::from_props(&rest)?;
        worker.group_id = Some(config.group_id.clone());
        Ok((worker, config))
    }
}

/// What this worker owns in the current generation.
struct Owned {
    config: Props,
    target: TargetState,
    /// What of the connector this worker runs.
    share: Share,
    /// Whether the local worker runs it (its config may fail to start here).
    created: bool,
    /// The offset of the last restart request acted on.
    restart_seen: i64,
    /// The statuses last written.
    published: Option<ShareStatus>,
}

/// What the group shares out: every connector, and every task of the connectors that are
/// not stopped, with the task configs they were assigned at.
fn work_of(snapshot: &ConfigSnapshot) -> (BTreeSet<String>, BTreeMap<String, Vec<Props>>) {
    let connectors = snapshot.connectors.keys().cloned().collect();
    let tasks = snapshot
        .tasks
        .iter()
        .filter(|(name, tasks)| {
            snapshot.connectors.contains_key(*name)
                && snapshot.target(name) != TargetState::Stopped
                && !tasks.is_empty()
        })
        .map(|(name, tasks)| (name.clone(), tasks.clone()))
        .collect();
    (connectors, tasks)
}

struct Inner {
    local: Arc<Worker>,
    configs: ConfigLog,
    statuses: StatusLog,
    config: DistributedConfig,
    worker_id: String,
    generation: AtomicI32,
    /// The leader's REST URL while another worker leads (config writes go there, as in
    /// Kafka Connect); none when this worker leads or has not joined yet.
    leader_url: parking_lot::Mutex<Option<String>>,
    /// Held from a config write's existence check to the write, so that the leader decides
    /// one create of a name at a time.
    config_writes: tokio::sync::Mutex<()>,
}

/// A distributed worker (Kafka Connect's `DistributedHerder`).
pub struct DistributedWorker {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    herder: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Writes the topics tasks here see first to the status topic.
    topic_writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl DistributedWorker {
    /// Starts a worker of group `config.group_id` on `client`'s cluster, named `worker_id`
    /// (its REST `host:port`, as the others reach it): reads the config, offset and status
    /// topics (creating them if missing), joins the group and runs what it is assigned.
    pub async fn start(
        client: Arc<Client>,
        worker: WorkerConfig,
        config: DistributedConfig,
        plugins: Plugins,
        worker_id: &str,
    ) -> Result<DistributedWorker> {
        let offsets = OffsetStore::on_topic(
            &client,
            &config.offset_topic,
            config.offset_partitions,
            config.offset_replication,
            // Exactly-once source tasks write offsets in transactions: only committed ones
            // are read (Kafka forces read_committed on this consumer then).
            worker.exactly_once_source == ExactlyOnceSourceSupport::Enabled,
        )
        .await?;
        let configs =
            ConfigLog::start(&client, &config.config_topic, config.config_replication).await?;
        let local =
            Worker::with_offset_store(client.clone(), worker, plugins, Arc::new(offsets)).shared();
        local.set_worker_id(worker_id);
        let statuses = StatusLog::start(
            &client,
            &config.status_topic,
            config.status_partitions,
            config.status_replication,
            local.active_topics().clone(),
        )
        .await?;
        let inner = Arc::new(Inner {
            local,
            configs,
            statuses,
            config,
            worker_id: worker_id.to_string(),
            generation: AtomicI32::new(-1),
            leader_url: parking_lot::Mutex::new(None),
            config_writes: tokio::sync::Mutex::new(()),
        });
        let membership = GroupMembership::new(
            &client,
            MembershipConfig {
                group_id: inner.config.group_id.clone(),
                protocol_type: "connect".into(),
                session_timeout: inner.config.session_timeout,
                rebalance_timeout: inner.config.rebalance_timeout,
                heartbeat_interval: inner.config.heartbeat_interval,
            },
        )
        .await?;
        // Topics the tasks here see first go to the status topic, for every worker to read.
        let (used, mut to_write) = tokio::sync::mpsc::unbounded_channel();
        inner.local.active_topics().share_with(used);
        let writer = Arc::downgrade(&inner);
        let topic_writer = tokio::spawn(async move {
            while let Some(topic) = to_write.recv().await {
                let Some(inner) = writer.upgrade() else { break };
                // A task still running after its connector's deletion records nothing.
                if !inner
                    .configs
                    .snapshot()
                    .connectors
                    .contains_key(&topic.connector)
                {
                    continue;
                }
                if let Err(err) = inner.statuses.put_topic(&topic).await {
                    tracing::warn!(%err, connector = %topic.connector, topic = %topic.topic, "recording a connector's topic failed");
                }
            }
        });
        let (stop, stopped) = watch::channel(false);
        let herder = tokio::spawn(inner.clone().run(membership, stopped));
        Ok(DistributedWorker {
            inner,
            stop,
            herder: tokio::sync::Mutex::new(Some(herder)),
            topic_writer: tokio::sync::Mutex::new(Some(topic_writer)),
        })
    }

    /// The local worker that runs this worker's share.
    pub fn local(&self) -> &Arc<Worker> {
        &self.inner.local
    }

    /// Stops what this worker runs (each task flushes and commits) and leaves the group, so
    /// that the others take its connectors over at once.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(herder) = self.herder.lock().await.take() {
            let _ = herder.await;
        }
        // The tasks are stopped: what they saw last is written before the status log closes.
        self.inner.local.active_topics().stop_sharing();
        if let Some(writer) = self.topic_writer.lock().await.take() {
            let _ = writer.await;
        }
        self.inner.configs.close().await;
        self.inner.statuses.close().await;
    }

    fn kind_of(&self, props: &Props) -> &'static str {
        props
            .get("connector.class")
            .and_then(|class| self.inner.local.plugins().find(class))
            .map_or("unknown", |p| p.kind())
    }

    /// The current configs, after reading what was written before the call.
    async fn fresh(&self) -> Result<ConfigSnapshot> {
        self.inner.configs.read_to_end().await?;
        Ok(self.inner.configs.snapshot())
    }

    async fn existing(&self, name: &str) -> Result<ConfigSnapshot> {
        let snapshot = self.fresh().await?;
        if !snapshot.connectors.contains_key(name) {
            return Err(not_found(name));
        }
        Ok(snapshot)
    }

    /// The configs, when connector `name` is stopped with its tasks gone (its owner writes
    /// an empty task list once they have stopped and committed), as offsets changes need.
    async fn stopped(&self, name: &str) -> Result<ConfigSnapshot> {
        let snapshot = self.existing(name).await?;
        must_be_stopped(name, snapshot.target(name))?;
        if snapshot
            .tasks
            .get(name)
            .is_some_and(|tasks| !tasks.is_empty())
        {
            return Err(ConnectError::BadRequest(format!(
                "Connector {name} is stopping: its tasks have not all stopped yet; try again shortly"
            )));
        }
        Ok(snapshot)
    }

    fn status_now(&self, snapshot: &ConfigSnapshot, name: &str) -> Option<ConnectorStatus> {
        let config = snapshot.connectors.get(name)?;
        let connector = self.inner.statuses.connector(name);
        let count = snapshot.tasks.get(name).map_or(0, Vec::len);
        let tasks: Vec<Option<StatusRecord>> = (0..count)
            .map(|id| self.inner.statuses.task(name, id))
            .collect();
        Some(ConnectorStatus {
            state: connector
                .as_ref()
                .map_or(State::Unassigned, |c| c.state.clone()),
            kind: self.kind_of(config),
            tasks: tasks
                .iter()
                .map(|t| t.as_ref().map_or(State::Unassigned, |t| t.state.clone()))
                .collect(),
            task_worker_ids: tasks
                .iter()
                .map(|t| t.as_ref().map(|t| t.worker_id.clone()).unwrap_or_default())
                .collect(),
            worker_id: connector.map(|c| c.worker_id).unwrap_or_default(),
        })
    }

    fn info(&self, snapshot: &ConfigSnapshot, name: &str) -> Option<ConnectorInfo> {
        let config = snapshot.connectors.get(name)?;
        Some(ConnectorInfo {
            name: name.to_string(),
            config: config.clone(),
            tasks: snapshot.tasks.get(name).map_or(0, Vec::len),
            kind: self.kind_of(config),
        })
    }
}

impl Inner {
    /// Joins, runs its share until a rebalance, gives it up, rejoins; until told to stop.
    async fn run(
        self: Arc<Self>,
        mut membership: GroupMembership,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut changes = self.configs.changes();
        let mut ticks = tokio::time::interval(STATUS_INTERVAL);
        loop {
            if *stop.borrow() {
                break;
            }
            let snapshot = self.configs.snapshot();
            let metadata = Bytes::from(json!({"url": self.worker_id}).to_string());
            let protocols = [(PROTOCOL.to_string(), metadata)];
            let joined = tokio::select! {
                joined = membership.join(&protocols, |_, members| {
                    Ok(assign(&snapshot, &self.worker_id, members))
                }) => joined,
                _ = stop.changed() => break,
            };
            let joined = match joined {
                Ok(joined) => joined,
                Err(err) => {
                    tracing::warn!(group = %self.config.group_id, %err, "joining the Connect group failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let leader = joined.leader_id == joined.member_id;
            self.generation.store(joined.generation, Ordering::Release);
            let assignment: Json = serde_json::from_slice(&joined.assignment).unwrap_or(Json::Null);
            let mine: BTreeSet<String> = assignment["connectors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            let mut my_tasks: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for task in assignment["tasks"].as_array().into_iter().flatten() {
                if let (Some(name), Some(id)) = (task[0].as_str(), task[1].as_u64()) {
                    my_tasks
                        .entry(name.to_string())
                        .or_default()
                        .push(id as usize);
                }
            }
            let config_offset = assignment["config_offset"].as_i64().unwrap_or(0);
            *self.leader_url.lock() = match assignment["leader_url"].as_str() {
                Some(url) if !leader => Some(format!("http://{url}")),
                _ => None,
            };
            if self.configs.offset() < config_offset {
                if let Err(err) = self.configs.read_to_end().await {
                    tracing::warn!(%err, "reading the config topic failed");
                }
            }
            // The previous owners' last offsets, before their connectors start here.
            if let Err(err) = self.local.offset_store().refresh().await {
                tracing::warn!(%err, "reading the offset topic failed");
            }
            tracing::info!(group = %self.config.group_id, generation = joined.generation, leader, connectors = ?mine, tasks = ?my_tasks, "joined the Connect group");
            let assigned_all = work_of(&snapshot);
            let mut owned: BTreeMap<String, Owned> = BTreeMap::new();
            let now = self.configs.snapshot();
            let names: BTreeSet<&String> = mine.iter().chain(my_tasks.keys()).collect();
            for name in names {
                let Some(config) = now.connectors.get(name) else {
                    continue;
                };
                // Tasks run with the configs the assignment was made for.
                let configs = snapshot.tasks.get(name);
                let tasks = my_tasks
                    .get(name)
                    .into_iter()
                    .flatten()
                    .filter_map(|&id| Some((id, configs?.get(id)?.clone())))
                    .collect();
                owned.insert(
                    name.clone(),
                    Owned {
                        config: config.clone(),
                        target: now.target(name),
                        share: Share {
                            connector: mine.contains(name),
                            tasks: Some(tasks),
                        },
                        created: false,
                        restart_seen: now.restarts.get(name).map_or(-1, |r| r.offset),
                        published: None,
                    },
                );
            }
            // Creates what was assigned, then follows the config topic until a rebalance.
            let mut stopping = false;
            let mut first = true;
            loop {
                if first || changes.has_changed().unwrap_or(false) {
                    first = false;
                    changes.borrow_and_update();
                    let snapshot = self.configs.snapshot();
                    // The leader rebalances when the work changed: a connector or its task
                    // configs came, went, or changed.
                    if leader && work_of(&snapshot) != assigned_all {
                        membership.request_rebalance();
                        break;
                    }
                    self.reconcile(&mut owned, &snapshot).await;
                }
                tokio::select! {
                    _ = membership.wait_for_rebalance() => break,
                    changed = changes.changed() => {
                        if changed.is_err() {
                            stopping = true;
                            break;
                        }
                        first = true;
                    }
                    _ = ticks.tick() => self.publish_statuses(&mut owned).await,
                    // A connector asked for new task configs and got them: written (and the
                    // group rebalanced) on this pass.
                    _ = self.local.reconfigured().notified() => first = true,
                    _ = stop.changed() => {
                        stopping = true;
                        break;
                    }
                }
            }
            // Eager: everything stops (flushing, committing) before the group moves it.
            if let Err(err) = self.local.shutdown().await {
                tracing::warn!(%err, "a connector did not stop cleanly");
            }
            if stopping {
                break;
            }
        }
        if let Err(err) = self.local.shutdown().await {
            tracing::warn!(%err, "a connector did not stop cleanly");
        }
        if let Err(err) = membership.leave().await {
            tracing::debug!(%err, "leaving the Connect group failed");
        }
    }

    /// Writes a tombstone for each topic connector `name` has used. Each is read back (as
    /// every worker reads it) before the next is written, and only then forgotten here, so a
    /// task that still uses a topic records it again after its tombstone, never before; a
    /// failed write leaves the rest known.
    async fn forget_topics(&self, name: &str) -> Result<()> {
        for topic in self.local.active_topics().topics(name) {
            self.statuses.delete_topic(&topic, name).await?;
        }
        Ok(())
    }

    /// Brings what this worker owns in line with the configs: creates, reconfigures, pauses,
    /// resumes, stops, restarts, deletes; then writes task configs that changed.
    async fn reconcile(&self, owned: &mut BTreeMap<String, Owned>, snapshot: &ConfigSnapshot) {
        // Offsets altered through another worker are read before a task here starts from
        // them (the config and offset topics are read by separate tails).
        if let Err(err) = self.local.offset_store().refresh().await {
            tracing::warn!(%err, "reading the offset topic failed");
        }
        let mut gone = Vec::new();
        for (name, own) in owned.iter_mut() {
            let Some(config) = snapshot.connectors.get(name) else {
                let _ = self.local.delete_connector(name).await;
                self.forget_statuses(name, own).await;
                // Its tasks here are gone: what they recorded since the delete goes too.
                if let Err(err) = self.forget_topics(name).await {
                    tracing::warn!(connector = %name, %err, "forgetting a deleted connector's topics failed");
                }
                gone.push(name.clone());
                continue;
            };
            let target = snapshot.target(name);
            if !own.created || *config != own.config {
                let was_created = own.created;
                let outcome = if was_created {
                    self.local
                        .put_connector_config(name, config.clone())
                        .await
                        .map(|_| ())
                } else {
                    self.local
                        .create_share(name, config.clone(), target, own.share.clone())
                        .await
                        .map(|_| ())
                };
                own.config = config.clone();
                match outcome {
                    Ok(()) => {
                        // A new one starts in the target state; a reconfigured one keeps its.
                        if !was_created {
                            own.target = target;
                        }
                        own.created = true;
                    }
                    Err(err) => {
                        tracing::error!(connector = %name, %err, "connector failed to start");
                        self.write_failure(name, &err.to_string()).await;
                        own.published = None;
                        continue;
                    }
                }
            }
            if target != own.target {
                let outcome = match target {
                    TargetState::Paused => self.local.pause_connector(name).await,
                    TargetState::Started => self.local.resume_connector(name).await,
                    TargetState::Stopped => self.local.stop_connector(name).await,
                };
                if let Err(err) = outcome {
                    tracing::warn!(connector = %name, %err, "target state not applied");
                }
                own.target = target;
            }
            if let Some(restart) = snapshot.restarts.get(name) {
                if restart.offset > own.restart_seen {
                    own.restart_seen = restart.offset;
                    let runs_task = |task: usize| {
                        own.share
                            .tasks
                            .as_ref()
                            .is_some_and(|tasks| tasks.iter().any(|(id, _)| *id == task))
                    };
                    let outcome = match restart.task {
                        // Each worker restarts what it runs; another runs this task.
                        Some(task) if !runs_task(task) => Ok(()),
                        Some(task) => self.local.restart_task(name, task).await,
                        None => self
                            .local
                            .restart_connector(name, restart.include_tasks, restart.only_failed)
                            .await
                            .map(|_| ()),
                    };
                    if let Err(err) = outcome {
                        tracing::warn!(connector = %name, %err, "restart failed");
                    }
                }
            }
            // The connector's owner writes the task configs it computed.
            if let Some(tasks) = self.local.computed_task_configs(name).await {
                if snapshot
                    .tasks
                    .get(name)
                    .map_or(!tasks.is_empty(), |t| *t != tasks)
                {
                    let previous = snapshot.tasks.get(name).map_or(0, Vec::len);
                    if let Err(err) = self.fence_source_tasks(name, previous).await {
                        tracing::warn!(connector = %name, %err, "fencing the previous tasks failed; the new task configs wait");
                        continue;
                    }
                    if let Err(err) = self.configs.put_tasks(name, &tasks).await {
                        tracing::warn!(connector = %name, %err, "writing task configs failed");
                    }
                }
            }
        }
        for name in gone {
            owned.remove(&name);
        }
        self.publish_statuses(owned).await;
    }

    /// Under exactly-once source support, fences the transactional ids of a source
    /// connector's `previous` tasks before a new generation of task configs is written
    /// (Kafka's zombie fencing, `Admin.fenceProducers`): a task of the old generation still
    /// running somewhere can then commit nothing, so no two generations write the same
    /// source partitions. Its open transaction is aborted; the new tasks resume from the
    /// offsets committed before it.
    async fn fence_source_tasks(&self, name: &str, previous: usize) -> Result<()> {
        if self.local.exactly_once_source() != ExactlyOnceSourceSupport::Enabled || previous == 0 {
            return Ok(());
        }
        if self.local.connector_info(name).await.map(|i| i.kind) != Some("source") {
            return Ok(());
        }
        let timeout = std::time::Duration::from_secs(60);
        for task in 0..previous {
            let id = format!("{}-{name}-{task}", self.config.group_id);
            self.local
                .client()
                .init_producer_id(Some(&id), timeout)
                .await?;
        }
        tracing::info!(connector = %name, tasks = previous, "fenced the previous generation's source tasks");
        Ok(())
    }

    fn record(&self, state: State) -> StatusRecord {
        StatusRecord {
            state,
            worker_id: self.worker_id.clone(),
            generation: self.generation.load(Ordering::Acquire),
        }
    }

    /// Writes the statuses of what this worker runs that changed since they were written.
    async fn publish_statuses(&self, owned: &mut BTreeMap<String, Owned>) {
        for (name, own) in owned.iter_mut() {
            if !own.created {
                continue;
            }
            let Some(now) = self.local.share_status(name).await else {
                continue;
            };
            if own.published.as_ref() == Some(&now) {
                continue;
            }
            let (connector, tasks) = &now;
            let mut written = Ok(());
            if let Some(state) = connector {
                written = self
                    .statuses
                    .put_connector(name, Some(&self.record(state.clone())))
                    .await;
            }
            for (id, task) in tasks {
                written = written.and(
                    self.statuses
                        .put_task(name, *id, Some(&self.record(task.clone())))
                        .await,
                );
            }
            match written {
                Ok(()) => own.published = Some(now),
                Err(err) => tracing::warn!(connector = %name, %err, "writing statuses failed"),
            }
        }
    }

    async fn write_failure(&self, name: &str, reason: &str) {
        let failed = self.record(State::Failed(reason.to_string()));
        if let Err(err) = self.statuses.put_connector(name, Some(&failed)).await {
            tracing::warn!(connector = %name, %err, "writing a status failed");
        }
    }

    async fn forget_statuses(&self, name: &str, own: &Owned) {
        if own.share.connector {
            let _ = self.statuses.put_connector(name, None).await;
        }
        for (id, _) in own.published.iter().flat_map(|(_, tasks)| tasks) {
            let _ = self.statuses.put_task(name, *id, None).await;
        }
    }
}

/// The leader's assignment (Kafka's eager one): connectors by name, round robin over the
/// members by member id, then the tasks, continuing the round; each member is told the config
/// offset the assignment was made at.
fn assign(
    snapshot: &ConfigSnapshot,
    leader_url: &str,
    members: &[GroupMemberMetadata],
) -> Vec<(String, Bytes)> {
    let mut ids: Vec<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Vec::new();
    }
    let (connectors, tasks) = work_of(snapshot);
    let mut shares: BTreeMap<&str, (Vec<String>, Vec<Json>)> = ids
        .iter()
        .map(|id| (*id, (Vec::new(), Vec::new())))
        .collect();
    let mut next = 0usize;
    for name in connectors {
        if let Some(share) = shares.get_mut(ids[next % ids.len()]) {
            share.0.push(name);
        }
        next += 1;
    }
    for (name, configs) in tasks {
        for id in 0..configs.len() {
            if let Some(share) = shares.get_mut(ids[next % ids.len()]) {
                share.1.push(json!([name, id]));
            }
            next += 1;
        }
    }
    shares
        .into_iter()
        .map(|(id, (connectors, tasks))| {
            let assignment = json!({
                "version": 1,
                "leader_url": leader_url,
                "config_offset": snapshot.offset,
                "connectors": connectors,
                "tasks": tasks,
            });
            (id.to_string(), Bytes::from(assignment.to_string()))
        })
        .collect()
}

impl Herder for DistributedWorker {
    fn worker_id(&self) -> String {
        self.inner.worker_id.clone()
    }
    fn leader_url(&self) -> Option<String> {
        self.inner.leader_url.lock().clone()
    }
    fn client(&self) -> &Arc<Client> {
        self.inner.local.client()
    }
    fn plugins(&self) -> &Plugins {
        self.inner.local.plugins()
    }
    fn validate(&self, plugin: &str, props: &Props) -> Result<ConfigInfos> {
        self.inner.local.validate(plugin, props)
    }
    fn connectors(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let snapshot = self
                .fresh()
                .await
                .unwrap_or_else(|_| self.inner.configs.snapshot());
            snapshot.connectors.keys().cloned().collect()
        })
    }
    fn connector_info<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ConnectorInfo>> {
        Box::pin(async move { self.info(&self.inner.configs.snapshot(), name) })
    }
    fn connector_config<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<Props>> {
        Box::pin(async move { self.inner.configs.snapshot().connectors.get(name).cloned() })
    }
    fn task_configs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<Vec<Props>>> {
        Box::pin(async move {
            let snapshot = self.inner.configs.snapshot();
            snapshot.connectors.get(name)?;
            Some(snapshot.tasks.get(name).cloned().unwrap_or_default())
        })
    }
    fn status<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ConnectorStatus>> {
        Box::pin(async move { self.status_now(&self.inner.configs.snapshot(), name) })
    }
    fn create_connector<'a>(
        &'a self,
        name: &'a str,
        props: Props,
    ) -> BoxFuture<'a, Result<ConnectorInfo>> {
        Box::pin(async move {
            let (_, props) = self.inner.local.checked(name, props)?;
            let _writing = self.inner.config_writes.lock().await;
            let snapshot = self.fresh().await?;
            if snapshot.connectors.contains_key(name) {
                return Err(ConnectError::Conflict(format!(
                    "Connector {name} already exists"
                )));
            }
            self.inner.configs.put_connector(name, &props).await?;
            let kind = self.kind_of(&props);
            Ok(ConnectorInfo {
                name: name.to_string(),
                config: props,
                tasks: 0,
                kind,
            })
        })
    }
    fn put_connector_config<'a>(
        &'a self,
        name: &'a str,
        props: Props,
    ) -> BoxFuture<'a, Result<(bool, ConnectorInfo)>> {
        Box::pin(async move {
            let (_, props) = self.inner.local.checked(name, props)?;
            let _writing = self.inner.config_writes.lock().await;
            let snapshot = self.fresh().await?;
            let created = !snapshot.connectors.contains_key(name);
            self.inner.configs.put_connector(name, &props).await?;
            let info = ConnectorInfo {
                name: name.to_string(),
                tasks: snapshot.tasks.get(name).map_or(0, Vec::len),
                kind: self.kind_of(&props),
                config: props,
            };
            Ok((created, info))
        })
    }
    fn delete_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let _writing = self.inner.config_writes.lock().await;
            self.existing(name).await?;
            self.inner.configs.delete_connector(name).await?;
            self.inner.forget_topics(name).await
        })
    }
    fn connector_topics<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            self.inner.local.must_track_topics()?;
            self.existing(name).await?;
            Ok(self.inner.local.active_topics().topics(name))
        })
    }
    fn reset_connector_topics<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.inner.local.must_allow_topic_reset()?;
            self.existing(name).await?;
            self.inner.forget_topics(name).await
        })
    }
    fn pause_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let snapshot = self.existing(name).await?;
            if snapshot.target(name) == TargetState::Stopped {
                return Ok(());
            }
            self.inner
                .configs
                .put_target(name, TargetState::Paused)
                .await
        })
    }
    fn resume_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.existing(name).await?;
            self.inner
                .configs
                .put_target(name, TargetState::Started)
                .await
        })
    }
    fn stop_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.existing(name).await?;
            self.inner
                .configs
                .put_target(name, TargetState::Stopped)
                .await
        })
    }
    fn restart_connector<'a>(
        &'a self,
        name: &'a str,
        include_tasks: bool,
        only_failed: bool,
    ) -> BoxFuture<'a, Result<ConnectorStatus>> {
        Box::pin(async move {
            self.existing(name).await?;
            self.inner
                .configs
                .request_restart(name, include_tasks, only_failed, None)
                .await?;
            self.status_now(&self.inner.configs.snapshot(), name)
                .ok_or_else(|| not_found(name))
        })
    }
    fn restart_task<'a>(&'a self, name: &'a str, task: usize) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let snapshot = self.existing(name).await?;
            if task >= snapshot.tasks.get(name).map_or(0, Vec::len) {
                return Err(ConnectError::NotFound(format!(
                    "Task {name}-{task} not found"
                )));
            }
            self.inner
                .configs
                .request_restart(name, true, false, Some(task))
                .await
        })
    }
    fn connector_offsets<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(Value, Value)>>> {
        Box::pin(async move {
            let snapshot = self.existing(name).await?;
            let kind = self.kind_of(&snapshot.connectors[name]);
            self.inner.local.offsets_of(kind, name).await
        })
    }
    fn alter_offsets<'a>(
        &'a self,
        name: &'a str,
        offsets: Vec<(Value, Value)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let snapshot = self.stopped(name).await?;
            let kind = self.kind_of(&snapshot.connectors[name]);
            self.inner.local.alter_offsets_of(kind, name, offsets).await
        })
    }
    fn reset_offsets<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let snapshot = self.stopped(name).await?;
            let kind = self.kind_of(&snapshot.connectors[name]);
            self.inner.local.reset_offsets_of(kind, name).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributed_properties_with_kafkas_names() {
        let props: Props = [
            ("group.id", "connect-cluster"),
            ("bootstrap.servers", "localhost:9092"),
            ("config.storage.topic", "cfg"),
            ("offset.storage.partitions", "3"),
            ("session.timeout.ms", "6000"),
            ("listeners", "http://127.0.0.1:0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (worker, config) = DistributedConfig::from_props(&props).unwrap();
        assert_eq!(config.group_id, "connect-cluster");
        assert_eq!(config.config_topic, "cfg");
        assert_eq!(config.offset_topic, "connect-offsets");
        assert_eq!(config.offset_partitions, 3);
        assert_eq!(config.session_timeout, Duration::from_secs(6));
        assert_eq!(worker.rest_listen, "127.0.0.1:0");
        let mut bad = props.clone();
        bad.remove("group.id");
        let err = DistributedConfig::from_props(&bad).unwrap_err();
        assert!(err.to_string().contains("group.id"), "{err}");
        let mut bad = props.clone();
        bad.insert("status.storage.partitions".into(), "five".into());
        let err = DistributedConfig::from_props(&bad).unwrap_err();
        assert!(
            err.to_string().contains("status.storage.partitions"),
            "{err}"
        );
        let mut bad = props;
        bad.insert("offset.storage.file.filename".into(), "/tmp/x".into());
        assert!(DistributedConfig::from_props(&bad).is_err());
    }

    #[test]
    fn the_leader_deals_connectors_round_robin_by_member_id() {
        let mut snapshot = ConfigSnapshot::default();
        for name in ["a", "b", "c"] {
            snapshot.connectors.insert(name.into(), Props::new());
        }
        let members: Vec<GroupMemberMetadata> = ["m2", "m1"]
            .iter()
            .map(|id| GroupMemberMetadata {
                member_id: id.to_string(),
                metadata: Bytes::new(),
            })
            .collect();
        let shares: BTreeMap<String, Json> = assign(&snapshot, "h:1", &members)
            .into_iter()
            .map(|(id, a)| (id, serde_json::from_slice(&a).unwrap()))
            .collect();
        assert_eq!(shares["m1"]["connectors"], json!(["a", "c"]));
        assert_eq!(shares["m2"]["connectors"], json!(["b"]));
        assert_eq!(shares["m1"]["leader_url"], "h:1");
        // Tasks continue the round after the connectors; a stopped connector's do not count.
        snapshot
            .tasks
            .insert("a".into(), vec![Props::new(), Props::new()]);
        snapshot.tasks.insert("b".into(), vec![Props::new()]);
        snapshot.targets.insert("b".into(), TargetState::Stopped);
        let shares: BTreeMap<String, Json> = assign(&snapshot, "h:1", &members)
            .into_iter()
            .map(|(id, a)| (id, serde_json::from_slice(&a).unwrap()))
            .collect();
        assert_eq!(shares["m2"]["tasks"], json!([["a", 0]]));
        assert_eq!(shares["m1"]["tasks"], json!([["a", 1]]));
    }
}
