//! The Connect worker: it runs connectors and their tasks on a Kafka-compatible cluster, with
//! Kafka Connect's worker settings and connector configs.
//!
//! This is the standalone worker: connector configs are given to it (from files or calls),
//! source offsets live in a local file, and everything runs in this process. A source task's
//! records go through the connector's transforms and converters into a producer; every
//! `offset.flush.interval.ms` the producer is flushed and only then are the offsets of what
//! it wrote committed, so a restart resumes after the last record that is surely in Kafka. A
//! sink task reads its topics in the consumer group `connect-<connector>` and commits only
//! what the task has flushed (`pre_commit`).

mod errors;
mod exactly_once;
mod offsets;
mod sink;
mod source;
mod topics;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sluice_log::client::Client;

pub use errors::{ErrorPolicy, Stage};
pub use offsets::OffsetStore;
pub(crate) use topics::{parse_status_key, status_key};
pub use topics::{ActiveTopics, TopicUse};

use tokio::sync::watch;

use crate::connector::{
    ConfigDef, ConfigKey, ConfigType, ConfigValue, Connector, ConnectorContext, ConnectorEvent,
    ConnectorTransactionBoundaries, ExactlyOnceSupport, Importance, Props, SinkConnector,
    SourceConnector, TopicPartition,
};
use crate::converter::{bool_config, converter_for, display, Converter};
use crate::data::Value;
use crate::error::{ConnectError, Result};
use crate::transforms::TransformChain;

/// A worker's settings (Kafka Connect's worker properties).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `key.converter` and its `key.converter.*` properties.
    pub key_converter: (String, Props),
    /// `value.converter` and its `value.converter.*` properties.
    pub value_converter: (String, Props),
    /// `offset.storage.file.filename`: where a standalone worker keeps source offsets (none:
    /// in memory only).
    pub offset_file: Option<PathBuf>,
    /// `offset.flush.interval.ms` (Kafka's default: 60 s).
    pub offset_flush_interval: Duration,
    /// `bootstrap.servers`, for whoever connects the worker (none: the caller's default).
    pub bootstrap_servers: Option<String>,
    /// Where the REST API listens, `host:port`, from `listeners` (`http://host:port`) or the
    /// older `rest.host.name` and `rest.port`. Default `127.0.0.1:8083`: Kafka's port, on
    /// loopback only, because the API can make a worker read and write files.
    pub rest_listen: String,
    /// `topic.tracking.enable`: record the topics each connector uses (KIP-558; default on).
    pub topic_tracking: bool,
    /// `topic.tracking.allow.reset`: let `PUT /connectors/{name}/topics/reset` clear them
    /// (default on).
    pub topic_tracking_reset: bool,
    /// `exactly.once.source.support` (KIP-618; distributed workers only).
    pub exactly_once_source: ExactlyOnceSourceSupport,
    /// The distributed group (`group.id`), which names source tasks' transactional ids; none
    /// for a standalone worker.
    pub group_id: Option<String>,
    /// `consumer.*` worker properties: the base of every sink task's consumer (a connector's
    /// `consumer.override.*` win), e.g. `consumer.isolation.level=read_committed`.
    pub consumer: Props,
}

/// `exactly.once.source.support`: whether source tasks run in transactions (KIP-618).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExactlyOnceSourceSupport {
    /// Source tasks commit offsets after their records, at least once (Kafka's default).
    #[default]
    Disabled,
    /// A step of a rolling upgrade towards `enabled`: nothing changes for tasks yet.
    Preparing,
    /// Each source task writes its records and their offsets in one transaction per
    /// `transaction.boundary`, with a transactional id of its own that fences its zombies.
    Enabled,
}

impl ExactlyOnceSourceSupport {
    /// Kafka's values, in any case.
    pub fn parse(value: &str) -> Result<ExactlyOnceSourceSupport> {
        match value.trim().to_ascii_lowercase().as_str() {
            "disabled" => Ok(ExactlyOnceSourceSupport::Disabled),
            "preparing" => Ok(ExactlyOnceSourceSupport::Preparing),
            "enabled" => Ok(ExactlyOnceSourceSupport::Enabled),
            _ => Err(ConnectError::config(
                "exactly.once.source.support",
                value,
                "String must be one of (case insensitive): disabled, preparing, enabled",
            )),
        }
    }
}

impl Default for WorkerConfig {
    /// Kafka's defaults: JSON converters with schemas, offsets flushed every minute.
    fn default() -> WorkerConfig {
        WorkerConfig {
            key_converter: (
                "org.apache.kafka.connect.json.JsonConverter".into(),
                Props::new(),
            ),
            value_converter: (
                "org.apache.kafka.connect.json.JsonConverter".into(),
                Props::new(),
            ),
            offset_file: None,
            offset_flush_interval: Duration::from_secs(60),
            bootstrap_servers: None,
            rest_listen: "127.0.0.1:8083".into(),
            topic_tracking: true,
            topic_tracking_reset: true,
            exactly_once_source: ExactlyOnceSourceSupport::Disabled,
            group_id: None,
            consumer: Props::new(),
        }
    }
}

impl WorkerConfig {
    /// Reads worker properties: `key.converter`, `value.converter` (with their prefixed
    /// properties), `offset.storage.file.filename`, `offset.flush.interval.ms`,
    /// `bootstrap.servers`, `listeners`, `rest.host.name`, `rest.port`; `plugin.path` is
    /// accepted (there are no plugin jars to load). Anything else is an error naming the key.
    pub fn from_props(props: &Props) -> Result<WorkerConfig> {
        let mut config = WorkerConfig {
            rest_listen: rest_listen(props)?,
            ..WorkerConfig::default()
        };
        for (key, value) in props {
            match key.as_str() {
                "key.converter" => config.key_converter.0 = value.clone(),
                "value.converter" => config.value_converter.0 = value.clone(),
                "offset.storage.file.filename" => config.offset_file = Some(value.into()),
                "offset.flush.interval.ms" => {
                    let ms = value
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| ConnectError::config(key, value, "expected milliseconds"))?;
                    config.offset_flush_interval = Duration::from_millis(ms);
                }
                "bootstrap.servers" => config.bootstrap_servers = Some(value.trim().to_string()),
                "topic.tracking.enable" => config.topic_tracking = bool_config(key, value)?,
                "topic.tracking.allow.reset" => {
                    config.topic_tracking_reset = bool_config(key, value)?
                }
                "exactly.once.source.support" => {
                    config.exactly_once_source = ExactlyOnceSourceSupport::parse(value)?
                }
                // No plugin jars to load; the REST keys are read above; `group.id` is for
                // distributed workers.
                "plugin.path" | "rest.port" | "rest.host.name" | "listeners" | "group.id" => {}
                other => {
                    if let Some(k) = other.strip_prefix("key.converter.") {
                        config.key_converter.1.insert(k.to_string(), value.clone());
                    } else if let Some(k) = other.strip_prefix("value.converter.") {
                        config
                            .value_converter
                            .1
                            .insert(k.to_string(), value.clone());
                    } else if let Some(k) = other.strip_prefix("consumer.") {
                        config.consumer.insert(k.to_string(), value.clone());
                    } else {
                        return Err(ConnectError::config(
                            other,
                            value,
                            "not a worker property this worker knows",
                        ));
                    }
                }
            }
        }
        // Refuse bad converters and consumer settings now, not when the first connector
        // starts.
        converter_for(&config.key_converter.0, &config.key_converter.1)?;
        converter_for(&config.value_converter.0, &config.value_converter.1)?;
        sink::group_config_of("", &Props::new(), &config.consumer).map_err(|err| match err {
            ConnectError::Config { value, reason, .. } => {
                ConnectError::config("consumer.*", &value, reason)
            }
            other => other,
        })?;
        Ok(config)
    }
}

/// The REST API's `host:port` from `listeners` (the first `http://host:port`; an empty host
/// is every interface, as in Kafka) or `rest.host.name` and `rest.port`.
fn rest_listen(props: &Props) -> Result<String> {
    if let Some(listeners) = props.get("listeners") {
        let first = crate::connector::parse_list(listeners)
            .into_iter()
            .next()
            .unwrap_or_default();
        let lower = first.to_ascii_lowercase();
        let Some(authority) = lower.strip_prefix("http://").map(|_| &first[7..]) else {
            return Err(ConnectError::config(
                "listeners",
                listeners,
                "expected http://host:port (HTTPS is not supported)",
            ));
        };
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| {
            ConnectError::config("listeners", listeners, "expected http://host:port")
        })?;
        port.parse::<u16>().map_err(|_| {
            ConnectError::config("listeners", listeners, "the port is not a number")
        })?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        return Ok(format!("{host}:{port}"));
    }
    let host = props
        .get("rest.host.name")
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let port = match props.get("rest.port") {
        Some(port) => port
            .trim()
            .parse::<u16>()
            .map_err(|_| ConnectError::config("rest.port", port, "expected a port number"))?,
        None => 8083,
    };
    Ok(format!("{host}:{port}"))
}

/// Makes a connector of one class.
#[derive(Clone, Copy)]
pub enum ConnectorFactory {
    /// A source connector.
    Source(fn() -> Box<dyn SourceConnector>),
    /// A sink connector.
    Sink(fn() -> Box<dyn SinkConnector>),
}

/// A connector class the worker can run.
#[derive(Clone)]
pub struct Plugin {
    /// The class name (Kafka's fully qualified one where there is one).
    pub class: String,
    /// Other names `connector.class` may use for it.
    pub aliases: Vec<String>,
    /// Makes one.
    pub factory: ConnectorFactory,
}

impl Plugin {
    /// `source` or `sink`, as the REST API shows it.
    pub fn kind(&self) -> &'static str {
        match self.factory {
            ConnectorFactory::Source(_) => "source",
            ConnectorFactory::Sink(_) => "sink",
        }
    }
}

/// The connector classes a worker can run, by class name and aliases.
#[derive(Clone, Default)]
pub struct Plugins {
    plugins: Vec<Plugin>,
}

impl Plugins {
    /// No plugins.
    pub fn new() -> Plugins {
        Plugins::default()
    }

    /// Adds a connector class with its aliases.
    pub fn register(&mut self, class: &str, aliases: &[&str], factory: ConnectorFactory) {
        self.plugins.push(Plugin {
            class: class.to_string(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            factory,
        });
    }

    /// The plugin `connector.class` names (its class name or an alias).
    pub fn find(&self, class: &str) -> Option<&Plugin> {
        let class = class.trim();
        self.plugins
            .iter()
            .find(|p| p.class == class || p.aliases.iter().any(|a| a == class))
    }

    /// Every plugin.
    pub fn all(&self) -> &[Plugin] {
        &self.plugins
    }
}

/// The state of a connector or task (Kafka Connect's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Running.
    Running,
    /// Paused by request: tasks are not polled, sink tasks' partitions are paused.
    Paused,
    /// Stopped by request (a connector; its tasks are shut down and its offsets may be
    /// altered).
    Stopped,
    /// Failed, with the reason.
    Failed(String),
    /// Not started.
    Unassigned,
    /// Being restarted.
    Restarting,
}

impl State {
    /// Kafka's name: `RUNNING`, `PAUSED`, `STOPPED`, `FAILED`, `UNASSIGNED`, `RESTARTING`.
    pub fn name(&self) -> &'static str {
        match self {
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Stopped => "STOPPED",
            State::Failed(_) => "FAILED",
            State::Unassigned => "UNASSIGNED",
            State::Restarting => "RESTARTING",
        }
    }

    fn is_failed(&self) -> bool {
        matches!(self, State::Failed(_))
    }
}

/// What a connector was asked to be (Kafka Connect's target state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Running its tasks.
    Started,
    /// Tasks kept but not working.
    Paused,
    /// Connector and tasks shut down.
    Stopped,
}

/// What a task loop is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Run,
    Pause,
    Stop,
}

/// A connector's status and its tasks'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorStatus {
    /// The connector's state.
    pub state: State,
    /// `source` or `sink`.
    pub kind: &'static str,
    /// Each task's state, by task id.
    pub tasks: Vec<State>,
    /// The worker that runs the connector (its REST `host:port`).
    pub worker_id: String,
    /// The worker that runs each task (distributed workers spread them).
    pub task_worker_ids: Vec<String>,
}

/// A connector as the REST API describes it: name, config, task count and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// The connector's name.
    pub name: String,
    /// Its config (with `name`).
    pub config: Props,
    /// How many tasks it has now.
    pub tasks: usize,
    /// `source` or `sink`.
    pub kind: &'static str,
}

/// A config checked against a connector class: every setting's definition, value and
/// errors (Kafka Connect's `ConfigInfos`, what `config/validate` answers).
#[derive(Debug, Clone)]
pub struct ConfigInfos {
    /// The connector class.
    pub class: String,
    /// Each setting: its definition and its value with errors.
    pub configs: Vec<(ConfigKey, ConfigValue)>,
}

impl ConfigInfos {
    /// How many errors there are.
    pub fn error_count(&self) -> usize {
        self.configs.iter().map(|(_, v)| v.errors.len()).sum()
    }

    /// The errors as `setting: reason` lines.
    pub fn messages(&self) -> Vec<String> {
        self.configs
            .iter()
            .flat_map(|(_, v)| v.errors.iter().map(move |e| format!("{}: {e}", v.name)))
            .collect()
    }
}

/// What a task loop needs from its connector's config, resolved once.
pub(crate) struct TaskSetup {
    pub(crate) connector: String,
    pub(crate) key_converter: Arc<dyn Converter>,
    pub(crate) value_converter: Arc<dyn Converter>,
    pub(crate) transforms: TransformChain,
    pub(crate) flush_interval: Duration,
    pub(crate) errors: ErrorPolicy,
    pub(crate) task: usize,
    /// Where the task records the topics it uses (none: `topic.tracking.enable=false`).
    pub(crate) topics: Option<Arc<ActiveTopics>>,
    /// How a source task's transactions run, when the worker has exactly-once source support
    /// enabled (none: offsets are committed after the records, at least once).
    pub(crate) exactly_once: Option<ExactlyOnceTask>,
}

/// A source task's transactions (KIP-618).
#[derive(Debug, Clone)]
pub(crate) struct ExactlyOnceTask {
    /// `<group.id>-<connector>-<task>` (Kafka's `Worker.taskTransactionalId`).
    pub(crate) transactional_id: String,
    pub(crate) boundary: TransactionBoundary,
    /// `transaction.boundary.interval.ms`, else `offset.flush.interval.ms`.
    pub(crate) interval: Duration,
}

/// `transaction.boundary`: where a source task's transactions end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransactionBoundary {
    /// After every batch `poll` returns (Kafka's default).
    Poll,
    /// Every `transaction.boundary.interval.ms`.
    Interval,
    /// Where the task says, through its `TransactionContext`.
    Connector,
}

/// The exactly-once settings of a source connector's config: `exactly.once.support`
/// (`required`: true), `transaction.boundary` and `transaction.boundary.interval.ms`, with
/// Kafka's messages for bad values (each error names its key).
pub(crate) struct SourceTransactionConfig {
    pub(crate) required: bool,
    pub(crate) boundary: TransactionBoundary,
    pub(crate) interval: Option<Duration>,
}

impl SourceTransactionConfig {
    pub(crate) fn from_props(props: &Props) -> std::result::Result<Self, Vec<ConnectError>> {
        let mut errors = Vec::new();
        let lower = |key: &str, default: &str| {
            props
                .get(key)
                .map_or(default.to_string(), |v| v.trim().to_ascii_lowercase())
        };
        let required = match lower("exactly.once.support", "requested").as_str() {
            "requested" => false,
            "required" => true,
            _ => {
                errors.push(ConnectError::config(
                    "exactly.once.support",
                    props.get("exactly.once.support").map_or("", |v| v),
                    "String must be one of (case insensitive): requested, required",
                ));
                false
            }
        };
        let boundary = match lower("transaction.boundary", "poll").as_str() {
            "poll" => TransactionBoundary::Poll,
            "interval" => TransactionBoundary::Interval,
            "connector" => TransactionBoundary::Connector,
            _ => {
                errors.push(ConnectError::config(
                    "transaction.boundary",
                    props.get("transaction.boundary").map_or("", |v| v),
                    "String must be one of (case insensitive): poll, interval, connector",
                ));
                TransactionBoundary::Poll
            }
        };
        let interval = match props.get("transaction.boundary.interval.ms") {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(ms) if ms >= 0 => Some(Duration::from_millis(ms as u64)),
                Ok(_) => {
                    errors.push(ConnectError::config(
                        "transaction.boundary.interval.ms",
                        v,
                        "Value must be at least 0",
                    ));
                    None
                }
                Err(_) => {
                    errors.push(ConnectError::config(
                        "transaction.boundary.interval.ms",
                        v,
                        "Expected value to be a 64-bit integer",
                    ));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(SourceTransactionConfig {
                required,
                boundary,
                interval,
            })
        } else {
            Err(errors)
        }
    }
}

impl TaskSetup {
    /// Notes, through `seen`, that this task uses `topic`.
    pub(crate) fn note_topic(&self, seen: &mut topics::TaskTopics, topic: &str) {
        if let Some(active) = &self.topics {
            seen.note(active, &self.connector, self.task, topic);
        }
    }
}

struct RunningTask {
    id: usize,
    state: Arc<Mutex<State>>,
    control: watch::Sender<Control>,
    handle: tokio::task::JoinHandle<()>,
    props: Props,
}

enum RunningConnector {
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

impl RunningConnector {
    fn make(factory: ConnectorFactory) -> RunningConnector {
        match factory {
            ConnectorFactory::Source(make) => RunningConnector::Source(make()),
            ConnectorFactory::Sink(make) => RunningConnector::Sink(make()),
        }
    }

    fn as_connector(&self) -> &dyn Connector {
        match self {
            RunningConnector::Source(c) => c.as_ref(),
            RunningConnector::Sink(c) => c.as_ref(),
        }
    }

    fn as_connector_mut(&mut self) -> &mut dyn Connector {
        match self {
            RunningConnector::Source(c) => c.as_mut(),
            RunningConnector::Sink(c) => c.as_mut(),
        }
    }
}

/// The state of what a worker runs of a connector: the connector's (when it runs it) and
/// each of its tasks' by id.
pub type ShareStatus = (Option<State>, Vec<(usize, State)>);

/// Which part of a connector a worker runs: a standalone worker runs all of it; a
/// distributed worker may run the connector without its tasks, or tasks without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Runs the connector itself (which computes the task configs).
    pub connector: bool,
    /// The tasks it runs, by id, with their configs; none: every task the connector
    /// computes.
    pub tasks: Option<Vec<(usize, Props)>>,
}

impl Share {
    /// All of a connector: itself and every task it computes.
    pub fn whole() -> Share {
        Share {
            connector: true,
            tasks: None,
        }
    }
}

/// A connector the worker knows: its config, what it was asked to be, and what runs.
struct Entry {
    plugin: Plugin,
    config: Props,
    target: TargetState,
    share: Share,
    /// The started connector (none when stopped, not this worker's, or its start failed).
    connector: Option<RunningConnector>,
    /// The task configs the connector computed when it last started.
    computed: Vec<Props>,
    state: Arc<Mutex<State>>,
    tasks: Vec<RunningTask>,
}

impl Entry {
    fn info(&self, name: &str) -> ConnectorInfo {
        ConnectorInfo {
            name: name.to_string(),
            config: self.config.clone(),
            tasks: self.tasks.len(),
            kind: self.plugin.kind(),
        }
    }

    fn status(&self, worker_id: &str) -> ConnectorStatus {
        ConnectorStatus {
            state: self.state.lock().clone(),
            kind: self.plugin.kind(),
            tasks: self.tasks.iter().map(|t| t.state.lock().clone()).collect(),
            worker_id: worker_id.to_string(),
            task_worker_ids: vec![worker_id.to_string(); self.tasks.len()],
        }
    }

    /// Tells every task (each reports its own state once it has paused or resumed, as
    /// Kafka's tasks do) and marks the connector (a failed one stays failed).
    fn tell(&self, control: Control, state: State) {
        for task in &self.tasks {
            let _ = task.control.send(control);
        }
        mark(&self.state, state);
    }

    /// Stops every task (each flushes and commits what it has) and waits for them.
    async fn stop_tasks(&mut self) {
        // Every task is told first, so they flush and commit side by side.
        for task in &self.tasks {
            let _ = task.control.send(Control::Stop);
        }
        for task in self.tasks.drain(..) {
            let _ = task.handle.await;
        }
    }

    fn stop_connector(&mut self, name: &str) {
        if let Some(mut connector) = self.connector.take() {
            if let Err(err) = connector.as_connector_mut().stop() {
                tracing::warn!(connector = name, %err, "connector failed to stop cleanly");
            }
        }
    }
}

/// A standalone worker.
pub struct Worker {
    client: Arc<Client>,
    config: WorkerConfig,
    plugins: Plugins,
    offsets: Arc<OffsetStore>,
    worker_id: Mutex<String>,
    running: tokio::sync::Mutex<BTreeMap<String, Entry>>,
    topics: Arc<ActiveTopics>,
    /// The worker itself, once shared ([`Worker::shared`]): a connector's request for new
    /// task configs is acted on from a task of its own.
    me: std::sync::OnceLock<std::sync::Weak<Worker>>,
    /// Told when a connector's task configs changed on its own request (a distributed
    /// worker's herder then writes them).
    reconfigured: Arc<tokio::sync::Notify>,
}

impl Worker {
    /// A worker on `client`'s cluster that can run `plugins`, keeping source offsets in
    /// `offset.storage.file.filename` (or in memory).
    pub fn new(client: Arc<Client>, config: WorkerConfig, plugins: Plugins) -> Result<Worker> {
        let offsets = match &config.offset_file {
            Some(path) => OffsetStore::open(path)?,
            None => OffsetStore::in_memory(),
        };
        Ok(Worker::with_offset_store(
            client,
            config,
            plugins,
            Arc::new(offsets),
        ))
    }

    /// A worker keeping source offsets in `offsets` (a distributed worker's topic).
    pub fn with_offset_store(
        client: Arc<Client>,
        config: WorkerConfig,
        plugins: Plugins,
        offsets: Arc<OffsetStore>,
    ) -> Worker {
        Worker {
            client,
            config,
            plugins,
            offsets,
            worker_id: Mutex::new("localhost:8083".into()),
            running: tokio::sync::Mutex::new(BTreeMap::new()),
            topics: Arc::new(ActiveTopics::default()),
            me: std::sync::OnceLock::new(),
            reconfigured: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified when a connector's own request changed its task configs.
    pub fn reconfigured(&self) -> &tokio::sync::Notify {
        &self.reconfigured
    }

    /// The worker behind an `Arc`, able to act on a connector's requests for new task configs
    /// (Kafka's `requestTaskReconfiguration`: a JDBC source that found a new table). A worker
    /// not shared this way logs such requests and applies them at the connector's next
    /// restart.
    pub fn shared(self) -> Arc<Worker> {
        let worker = Arc::new(self);
        let _ = worker.me.set(Arc::downgrade(&worker));
        worker
    }

    /// Asks connector `name` for its task configs again; when they changed, a standalone
    /// worker restarts the tasks with them (a distributed one's leader writes them to the
    /// config topic, and the tasks move with the rebalance that follows).
    pub async fn reconfigure_tasks(&self, name: &str) -> Result<()> {
        let mut running = self.running.lock().await;
        let Some(entry) = running.get_mut(name) else {
            return Ok(());
        };
        let Some(connector) = entry.connector.as_ref() else {
            return Ok(());
        };
        let max_tasks = tasks_max(&entry.config)?;
        let mut configs = match connector
            .as_connector()
            .task_configs(&entry.config, max_tasks)
        {
            Ok(configs) => configs,
            Err(err) => {
                tracing::error!(connector = name, %err, "the connector failed to give task configs");
                *entry.state.lock() = State::Failed(err.to_string());
                return Ok(());
            }
        };
        configs.truncate(max_tasks);
        if configs == entry.computed {
            return Ok(());
        }
        entry.computed = configs.clone();
        self.reconfigured.notify_one();
        if entry.share.tasks.is_none() && entry.target != TargetState::Stopped {
            entry.stop_tasks().await;
            self.spawn_tasks(name, entry, configs.into_iter().enumerate())?;
            tracing::info!(connector = name, "task configs changed: tasks restarted");
        }
        Ok(())
    }

    /// The connector classes this worker runs.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// The source offsets this worker keeps.
    pub fn offset_store(&self) -> &OffsetStore {
        &self.offsets
    }

    /// The topics the connectors here (and, distributed, everywhere) have used.
    pub fn active_topics(&self) -> &Arc<ActiveTopics> {
        &self.topics
    }

    /// Refuses topic requests when `topic.tracking.enable` is off (Kafka: 403).
    pub(crate) fn must_track_topics(&self) -> Result<()> {
        if self.config.topic_tracking {
            Ok(())
        } else {
            Err(ConnectError::Forbidden(
                "Topic tracking is disabled.".into(),
            ))
        }
    }

    /// Refuses resets when `topic.tracking.allow.reset` is off (Kafka: 403).
    pub(crate) fn must_allow_topic_reset(&self) -> Result<()> {
        self.must_track_topics()?;
        if self.config.topic_tracking_reset {
            Ok(())
        } else {
            Err(ConnectError::Forbidden(
                "Topic tracking reset is disabled.".into(),
            ))
        }
    }

    /// The topics connector `name` has used since it was created or its topics were reset
    /// (`GET /connectors/{name}/topics`).
    pub async fn connector_topics(&self, name: &str) -> Result<Vec<String>> {
        self.must_track_topics()?;
        if !self.running.lock().await.contains_key(name) {
            return Err(not_found(name));
        }
        Ok(self.topics.topics(name))
    }

    /// Forgets the topics connector `name` has used (`PUT /connectors/{name}/topics/reset`);
    /// its tasks record them again as they use them.
    pub async fn reset_connector_topics(&self, name: &str) -> Result<()> {
        self.must_allow_topic_reset()?;
        if !self.running.lock().await.contains_key(name) {
            return Err(not_found(name));
        }
        self.topics.reset(name);
        Ok(())
    }

    /// The cluster the worker works on.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// `exactly.once.source.support` of this worker.
    pub fn exactly_once_source(&self) -> ExactlyOnceSourceSupport {
        self.config.exactly_once_source
    }

    /// How statuses name this worker (Kafka: its REST `host:port`).
    pub fn worker_id(&self) -> String {
        self.worker_id.lock().clone()
    }

    /// Sets how statuses name this worker, once its REST listener is bound.
    pub fn set_worker_id(&self, id: &str) {
        *self.worker_id.lock() = id.to_string();
    }

    /// Validates `props` as connector `name`'s config and starts it and its tasks. Nothing is
    /// created when the config is wrong: the error names every problem. A connector whose
    /// own `start` fails is created and FAILED, as in Kafka Connect, so it can be restarted.
    pub async fn create_connector(&self, name: &str, props: Props) -> Result<ConnectorInfo> {
        self.create_connector_in(name, props, TargetState::Started)
            .await
    }

    /// Creates connector `name` in `target` state: paused, its tasks start paused; stopped,
    /// nothing runs (a distributed worker taking over a connector in that state).
    pub async fn create_connector_in(
        &self,
        name: &str,
        props: Props,
        target: TargetState,
    ) -> Result<ConnectorInfo> {
        self.create_share(name, props, target, Share::whole()).await
    }

    /// Creates the `share` of connector `name` this worker runs (a distributed worker's).
    pub async fn create_share(
        &self,
        name: &str,
        props: Props,
        target: TargetState,
        share: Share,
    ) -> Result<ConnectorInfo> {
        let mut running = self.running.lock().await;
        self.create_locked(&mut running, name, props, target, share)
    }

    fn create_locked(
        &self,
        running: &mut BTreeMap<String, Entry>,
        name: &str,
        props: Props,
        target: TargetState,
        share: Share,
    ) -> Result<ConnectorInfo> {
        if running.contains_key(name) {
            return Err(ConnectError::Conflict(format!(
                "Connector {name} already exists"
            )));
        }
        let (plugin, props) = self.checked(name, props)?;
        let mut entry = Entry {
            plugin,
            config: props,
            target,
            share,
            connector: None,
            computed: Vec::new(),
            state: Arc::new(Mutex::new(State::Unassigned)),
            tasks: Vec::new(),
        };
        match target {
            TargetState::Stopped => *entry.state.lock() = State::Stopped,
            _ => self.start(name, &mut entry)?,
        }
        let info = entry.info(name);
        running.insert(name.to_string(), entry);
        Ok(info)
    }

    /// Creates connector `name` or replaces its config (`PUT /connectors/{name}/config`); a
    /// changed connector restarts with its tasks and keeps its target state. True when it
    /// was created.
    pub async fn put_connector_config(
        &self,
        name: &str,
        props: Props,
    ) -> Result<(bool, ConnectorInfo)> {
        let mut running = self.running.lock().await;
        let Some(entry) = running.get_mut(name) else {
            let info = self.create_locked(
                &mut running,
                name,
                props,
                TargetState::Started,
                Share::whole(),
            )?;
            return Ok((true, info));
        };
        let (plugin, props) = self.checked(name, props)?;
        entry.stop_tasks().await;
        entry.stop_connector(name);
        entry.plugin = plugin;
        entry.config = props;
        match entry.target {
            TargetState::Stopped => {}
            _ => self.start(name, entry)?,
        }
        tracing::info!(connector = name, "connector reconfigured");
        Ok((false, entry.info(name)))
    }

    /// Stops connector `name` and its tasks (each flushes and commits what it has) and forgets
    /// it; its source offsets stay, so a connector of the same name resumes.
    pub async fn delete_connector(&self, name: &str) -> Result<()> {
        // The lock is held until the tasks are gone: a connector of the same name created
        // meanwhile would run beside them and read offsets they have yet to commit.
        let mut running = self.running.lock().await;
        let Some(mut entry) = running.remove(name) else {
            return Err(not_found(name));
        };
        entry.stop_tasks().await;
        entry.stop_connector(name);
        // A distributed worker also comes here when its share moves or it shuts down, so the
        // log says what happened here, not that the connector is gone from the cluster.
        tracing::info!(connector = name, "connector stopped on this worker");
        Ok(())
    }

    /// Pauses connector `name`: its tasks stop working but keep their place (a source task is
    /// not polled, a sink task's partitions are paused). A stopped connector stays stopped.
    pub async fn pause_connector(&self, name: &str) -> Result<()> {
        let mut running = self.running.lock().await;
        let entry = running.get_mut(name).ok_or_else(|| not_found(name))?;
        if entry.target == TargetState::Stopped {
            return Ok(());
        }
        entry.target = TargetState::Paused;
        entry.tell(Control::Pause, State::Paused);
        tracing::info!(connector = name, "connector paused");
        Ok(())
    }

    /// Resumes a paused connector, or starts a stopped one again.
    pub async fn resume_connector(&self, name: &str) -> Result<()> {
        let mut running = self.running.lock().await;
        let entry = running.get_mut(name).ok_or_else(|| not_found(name))?;
        match entry.target {
            TargetState::Started => return Ok(()),
            TargetState::Stopped => {
                entry.target = TargetState::Started;
                self.start(name, entry)?;
            }
            TargetState::Paused => {
                entry.target = TargetState::Started;
                entry.tell(Control::Run, State::Running);
            }
        }
        tracing::info!(connector = name, "connector resumed");
        Ok(())
    }

    /// Stops connector `name` and shuts its tasks down, keeping its config (KIP-875's
    /// STOPPED: its offsets may then be altered or reset).
    pub async fn stop_connector(&self, name: &str) -> Result<()> {
        let mut running = self.running.lock().await;
        let entry = running.get_mut(name).ok_or_else(|| not_found(name))?;
        entry.target = TargetState::Stopped;
        entry.stop_tasks().await;
        entry.stop_connector(name);
        *entry.state.lock() = State::Stopped;
        tracing::info!(connector = name, "connector stopped");
        Ok(())
    }

    /// Restarts connector `name` and, with `include_tasks`, its tasks; with `only_failed`
    /// only what has failed (Kafka's `POST /connectors/{name}/restart`). New task configs
    /// from the restarted connector restart every task. The status after the restart.
    pub async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<ConnectorStatus> {
        let mut running = self.running.lock().await;
        let entry = running.get_mut(name).ok_or_else(|| not_found(name))?;
        if entry.target == TargetState::Stopped {
            return Ok(entry.status(&self.worker_id()));
        }
        let connector_failed = entry.state.lock().is_failed();
        if !only_failed || connector_failed {
            *entry.state.lock() = State::Restarting;
            entry.stop_connector(name);
            if entry.share.connector {
                if let Some(task_configs) = self.start_connector(name, entry) {
                    entry.computed = task_configs.clone();
                    let current: Vec<&Props> = entry.tasks.iter().map(|t| &t.props).collect();
                    // A distributed worker's tasks change with a rebalance instead.
                    if entry.share.tasks.is_none()
                        && task_configs.iter().collect::<Vec<_>>() != current
                    {
                        entry.stop_tasks().await;
                        self.spawn_tasks(name, entry, task_configs.into_iter().enumerate())?;
                        tracing::info!(connector = name, "task configs changed: tasks restarted");
                    }
                }
            }
        }
        if include_tasks {
            let ids: Vec<usize> = entry.tasks.iter().map(|t| t.id).collect();
            for id in ids {
                let failed = entry
                    .tasks
                    .iter()
                    .find(|t| t.id == id)
                    .is_some_and(|t| t.state.lock().is_failed());
                if !only_failed || failed {
                    self.restart_task_in(name, entry, id).await?;
                }
            }
        }
        tracing::info!(
            connector = name,
            include_tasks,
            only_failed,
            "connector restarted"
        );
        Ok(entry.status(&self.worker_id()))
    }

    /// Restarts task `task` of connector `name` with its config.
    pub async fn restart_task(&self, name: &str, task: usize) -> Result<()> {
        let mut running = self.running.lock().await;
        let entry = running.get_mut(name).ok_or_else(|| not_found(name))?;
        if !entry.tasks.iter().any(|t| t.id == task) {
            return Err(ConnectError::NotFound(format!(
                "Task {name}-{task} not found"
            )));
        }
        self.restart_task_in(name, entry, task).await
    }

    /// The names of the connectors (running, paused, stopped or failed).
    pub async fn connectors(&self) -> Vec<String> {
        self.running.lock().await.keys().cloned().collect()
    }

    /// Connector `name`'s config.
    pub async fn connector_config(&self, name: &str) -> Option<Props> {
        self.running
            .lock()
            .await
            .get(name)
            .map(|r| r.config.clone())
    }

    /// Connector `name`: config, tasks and type.
    pub async fn connector_info(&self, name: &str) -> Option<ConnectorInfo> {
        self.running.lock().await.get(name).map(|e| e.info(name))
    }

    /// The task configs connector `name` computed when it last started here (none when this
    /// worker does not run the connector itself).
    pub async fn computed_task_configs(&self, name: &str) -> Option<Vec<Props>> {
        let running = self.running.lock().await;
        let entry = running.get(name)?;
        match (&entry.share.connector, &entry.connector, entry.target) {
            (true, _, TargetState::Stopped) => Some(Vec::new()),
            (true, Some(_), _) => Some(entry.computed.clone()),
            _ => None,
        }
    }

    /// What this worker runs of connector `name`: the connector's state when it runs the
    /// connector, and each task's by id.
    pub async fn share_status(&self, name: &str) -> Option<ShareStatus> {
        let running = self.running.lock().await;
        let entry = running.get(name)?;
        let connector = entry.share.connector.then(|| entry.state.lock().clone());
        let tasks = entry
            .tasks
            .iter()
            .map(|t| (t.id, t.state.lock().clone()))
            .collect();
        Some((connector, tasks))
    }

    /// The config of each of connector `name`'s tasks, by task id.
    pub async fn task_configs(&self, name: &str) -> Option<Vec<Props>> {
        self.running
            .lock()
            .await
            .get(name)
            .map(|e| e.tasks.iter().map(|t| t.props.clone()).collect())
    }

    /// Connector `name`'s status and its tasks'.
    pub async fn status(&self, name: &str) -> Option<ConnectorStatus> {
        let id = self.worker_id();
        self.running.lock().await.get(name).map(|e| e.status(&id))
    }

    /// What connector `name` has reached: a source's source offsets by source partition; a
    /// sink's committed offsets as Kafka Connect shows them (`{"kafka_topic",
    /// "kafka_partition"}` → `{"kafka_offset"}`).
    pub async fn connector_offsets(&self, name: &str) -> Result<Vec<(Value, Value)>> {
        let kind = {
            let running = self.running.lock().await;
            running
                .get(name)
                .ok_or_else(|| not_found(name))?
                .plugin
                .kind()
        };
        self.offsets_of(kind, name).await
    }

    /// The offsets of connector `name` of `kind` (`source` or `sink`), wherever it runs.
    pub(crate) async fn offsets_of(&self, kind: &str, name: &str) -> Result<Vec<(Value, Value)>> {
        if kind == "source" {
            self.offsets.refresh().await?;
            return Ok(self.offsets.all(name));
        }
        let committed = self.client.committed_offsets(&sink::group_id(name)).await?;
        Ok(committed
            .into_iter()
            .map(|(tp, offset)| {
                (
                    Value::string_map([
                        ("kafka_topic", Value::String(tp.topic.to_string())),
                        ("kafka_partition", Value::Int32(tp.partition)),
                    ]),
                    Value::string_map([("kafka_offset", Value::Int64(offset))]),
                )
            })
            .collect())
    }

    /// Sets (or, with a null offset, forgets) offsets of stopped connector `name`
    /// (`PATCH /connectors/{name}/offsets`).
    pub async fn alter_offsets(&self, name: &str, offsets: Vec<(Value, Value)>) -> Result<()> {
        let running = self.running.lock().await;
        let kind = stopped_entry(&running, name)?.plugin.kind();
        self.alter_offsets_of(kind, name, offsets).await
    }

    /// Alters the offsets of connector `name` of `kind`, which the caller knows is stopped.
    pub(crate) async fn alter_offsets_of(
        &self,
        kind: &str,
        name: &str,
        offsets: Vec<(Value, Value)>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Err(ConnectError::BadRequest(
                "The offsets to alter must not be empty".into(),
            ));
        }
        if kind == "source" {
            for (partition, _) in &offsets {
                if !matches!(partition, Value::Map(_)) {
                    return Err(ConnectError::BadRequest(format!(
                        "Source partitions are JSON objects; got {}",
                        display(partition)
                    )));
                }
            }
            return self.offsets.commit(name, &offsets).await;
        }
        let mut commit = BTreeMap::new();
        let mut forget = Vec::new();
        for (partition, offset) in &offsets {
            let tp = sink_partition(partition)?;
            match offset {
                Value::Null => forget.push(tp),
                offset => {
                    commit.insert(tp, sink_offset(offset)?);
                }
            }
        }
        let group = sink::group_id(name);
        if !commit.is_empty() {
            self.client.commit_offsets(&group, &commit).await?;
        }
        if !forget.is_empty() {
            self.client
                .delete_committed_offsets(&group, &forget)
                .await?;
        }
        Ok(())
    }

    /// Forgets every offset of stopped connector `name` (`DELETE
    /// /connectors/{name}/offsets`): a source starts over, a sink follows
    /// `auto.offset.reset` (earliest).
    pub async fn reset_offsets(&self, name: &str) -> Result<()> {
        let running = self.running.lock().await;
        let kind = stopped_entry(&running, name)?.plugin.kind();
        self.reset_offsets_of(kind, name).await
    }

    /// Resets the offsets of connector `name` of `kind`, which the caller knows is stopped.
    pub(crate) async fn reset_offsets_of(&self, kind: &str, name: &str) -> Result<()> {
        if kind == "source" {
            self.offsets.refresh().await?;
            return self.offsets.remove(name).await;
        }
        let group = sink::group_id(name);
        let committed: Vec<TopicPartition> = self
            .client
            .committed_offsets(&group)
            .await?
            .into_keys()
            .collect();
        if !committed.is_empty() {
            self.client
                .delete_committed_offsets(&group, &committed)
                .await?;
        }
        Ok(())
    }

    /// Checks `props` against connector class `plugin` (its name or an alias) without
    /// creating anything: every setting of the worker's and the connector's with its value
    /// and errors (`PUT /connector-plugins/{plugin}/config/validate`).
    pub fn validate(&self, plugin: &str, props: &Props) -> Result<ConfigInfos> {
        let found = self.plugins.find(plugin).ok_or_else(|| {
            ConnectError::NotFound(format!(
                "Failed to find any class that implements Connector and which name matches {plugin}"
            ))
        })?;
        Ok(self.infos(found, props))
    }

    /// Stops every connector.
    pub async fn shutdown(&self) -> Result<()> {
        for name in self.connectors().await {
            match self.delete_connector(&name).await {
                // Deleted meanwhile by a request: nothing left to stop.
                Ok(()) | Err(ConnectError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// The plugin and config (with `name`) of a config that is valid, or every problem.
    pub(crate) fn checked(&self, name: &str, mut props: Props) -> Result<(Plugin, Props)> {
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(ConnectError::BadRequest(format!(
                "Connector name {name:?} is not valid: it must be non-empty, without control characters"
            )));
        }
        match props.get("name") {
            Some(given) if given != name => {
                return Err(ConnectError::BadRequest(format!(
                    "Connector name configuration ({given}) doesn't match connector name in the URL ({name})"
                )))
            }
            Some(_) => {}
            None => {
                props.insert("name".into(), name.to_string());
            }
        }
        let plugin = self.plugin_for(&props)?.clone();
        let infos = self.infos(&plugin, &props);
        if infos.error_count() > 0 {
            return Err(ConnectError::Invalid(infos.messages()));
        }
        Ok((plugin, props))
    }

    /// The worker's and the connector's settings for `props`, with their errors.
    fn infos(&self, plugin: &Plugin, props: &Props) -> ConfigInfos {
        let connector = RunningConnector::make(plugin.factory);
        let common = common_config(plugin.kind());
        let mut validation = common.validate(props);
        // Its type is checked above; its range (at least 1) here, once.
        let tasks_max_typed = validation
            .values
            .iter()
            .all(|v| v.name != "tasks.max" || v.errors.is_empty());
        let mut fail = |err: ConnectError, fallback: &str| match err {
            ConnectError::Config { key, reason, .. } => {
                // A transform's or converter's own setting is shown on the setting itself.
                validation.add_error(&key, reason)
            }
            other => validation.add_error(fallback, other.to_string()),
        };
        if let (true, Err(err)) = (tasks_max_typed, tasks_max(props)) {
            fail(err, "tasks.max");
        }
        if let Err(err) = self.task_setup("", props) {
            fail(err, "transforms");
        }
        if let RunningConnector::Source(source) = &connector {
            for err in self.source_transaction_errors(source.as_ref(), props) {
                fail(err, "exactly.once.support");
            }
        }
        if plugin.kind() == "sink" {
            if let Err(err) = sink::topics_of(props) {
                fail(err, "topics");
            }
            if let Err(err) = sink::group_config_of("", props, &self.config.consumer) {
                fail(err, "consumer.override.*");
            }
        }
        let own = connector.as_connector().validate(props);
        let mut configs: Vec<(ConfigKey, ConfigValue)> = Vec::new();
        let own_keys = connector.as_connector().config();
        let definition = |name: &str| -> ConfigKey {
            common
                .keys()
                .iter()
                .chain(own_keys.keys())
                .find(|k| k.name == name)
                .cloned()
                .unwrap_or_else(|| ConfigKey::string(name, ""))
        };
        for value in validation.values.into_iter().chain(own.values) {
            match configs.iter_mut().find(|(k, _)| k.name == value.name) {
                Some((_, seen)) => seen.errors.extend(value.errors),
                None => configs.push((definition(&value.name), value)),
            }
        }
        ConfigInfos {
            class: plugin.class.clone(),
            configs,
        }
    }

    /// A source connector's exactly-once settings against this worker and the connector
    /// (Kafka's `DistributedHerder.validateSourceConnectorConfig`, with its messages); a
    /// standalone worker checks only their values, as Kafka's does.
    fn source_transaction_errors(
        &self,
        connector: &dyn SourceConnector,
        props: &Props,
    ) -> Vec<ConnectError> {
        let mut errors = Vec::new();
        // KIP-618's per-connector offsets topic is not served: refused, not silently ignored.
        if let Some(topic) = props.get("offsets.storage.topic") {
            errors.push(ConnectError::config(
                "offsets.storage.topic",
                topic,
                "a connector-specific offsets topic is not supported by this worker: source offsets go to the worker's offset.storage.topic",
            ));
        }
        let config = match SourceTransactionConfig::from_props(props) {
            Ok(config) => config,
            Err(more) => {
                errors.extend(more);
                return errors;
            }
        };
        if self.config.group_id.is_none() {
            return errors;
        }
        let support = |reason: &str| {
            ConnectError::config(
                "exactly.once.support",
                props.get("exactly.once.support").map_or("", |v| v),
                reason,
            )
        };
        if config.required {
            if self.config.exactly_once_source != ExactlyOnceSourceSupport::Enabled {
                errors.push(support(
                    "This worker does not have exactly-once source support enabled.",
                ));
            }
            match connector.exactly_once_support(props) {
                Some(ExactlyOnceSupport::Supported) => {}
                Some(ExactlyOnceSupport::Unsupported) => errors.push(support(
                    "The connector does not support exactly-once semantics with the provided configuration.",
                )),
                None => errors.push(support(
                    "The connector does not implement the API required for preflight validation of exactly-once source support. Please consult the documentation for the connector to determine whether it supports exactly-once semantics, and then consider reconfiguring the connector to use the value \"requested\" for this property (which will disable this preflight check and allow the connector to be created).",
                )),
            }
        }
        if config.boundary == TransactionBoundary::Connector {
            let boundary = |reason: &str| {
                ConnectError::config(
                    "transaction.boundary",
                    props.get("transaction.boundary").map_or("", |v| v),
                    reason,
                )
            };
            match connector.can_define_transaction_boundaries(props) {
                Some(ConnectorTransactionBoundaries::Supported) => {}
                Some(ConnectorTransactionBoundaries::Unsupported) => errors.push(boundary(
                    "The connector does not support connector-defined transaction boundaries with the given configuration. Please reconfigure it to use a different transaction boundary definition.",
                )),
                None => errors.push(boundary(
                    "This connector has returned a null value from its canDefineTransactionBoundaries method, which is not permitted. The connector will be treated as if it cannot define its own transaction boundaries, and cannot be configured with 'transaction.boundary' set to 'connector'.",
                )),
            }
        }
        errors
    }

    /// Starts the connector of `entry` and its tasks, in the entry's target state.
    fn start(&self, name: &str, entry: &mut Entry) -> Result<()> {
        let computed = if entry.share.connector {
            self.start_connector(name, entry)
        } else {
            None
        };
        if let Some(computed) = &computed {
            entry.computed = computed.clone();
        }
        match entry.share.tasks.clone() {
            None => {
                if let Some(configs) = computed {
                    self.spawn_tasks(name, entry, configs.into_iter().enumerate())?;
                }
            }
            // Tasks given their configs run whether or not the connector runs here.
            Some(tasks) => self.spawn_tasks(name, entry, tasks)?,
        }
        Ok(())
    }

    /// Starts a new instance of `entry`'s connector; its task configs, or none when it failed
    /// (the entry's state says why).
    fn start_connector(&self, name: &str, entry: &mut Entry) -> Option<Vec<Props>> {
        let state = entry.state.clone();
        let context = {
            let state = state.clone();
            let name = name.to_string();
            let me = self.me.get().cloned().unwrap_or_default();
            ConnectorContext::new(move |event| match event {
                ConnectorEvent::RaiseError(reason) => {
                    tracing::error!(connector = %name, %reason, "connector failed");
                    *state.lock() = State::Failed(reason);
                }
                ConnectorEvent::RequestTaskReconfiguration => match me.upgrade() {
                    Some(worker) => {
                        let name = name.clone();
                        tokio::spawn(async move {
                            if let Err(err) = worker.reconfigure_tasks(&name).await {
                                tracing::warn!(connector = %name, %err, "reconfiguring the tasks failed");
                            }
                        });
                    }
                    None => {
                        tracing::info!(connector = %name, "the connector asked for new task configs; restart it to apply them");
                    }
                },
            })
        };
        let mut connector = RunningConnector::make(entry.plugin.factory);
        let started = connector
            .as_connector_mut()
            .start(&entry.config, context)
            .and_then(|()| {
                let max_tasks = tasks_max(&entry.config)?;
                let mut configs = connector
                    .as_connector()
                    .task_configs(&entry.config, max_tasks)?;
                configs.truncate(max_tasks);
                Ok(configs)
            });
        match started {
            Ok(configs) => {
                *state.lock() = match entry.target {
                    TargetState::Paused => State::Paused,
                    _ => State::Running,
                };
                entry.connector = Some(connector);
                tracing::info!(connector = name, "connector started");
                Some(configs)
            }
            Err(err) => {
                tracing::error!(connector = name, %err, "connector failed to start");
                let _ = connector.as_connector_mut().stop();
                *state.lock() = State::Failed(err.to_string());
                None
            }
        }
    }

    fn spawn_tasks(
        &self,
        name: &str,
        entry: &mut Entry,
        configs: impl IntoIterator<Item = (usize, Props)>,
    ) -> Result<()> {
        for (id, props) in configs {
            let task = self.spawn_task(name, entry, id, props)?;
            entry.tasks.push(task);
        }
        Ok(())
    }

    async fn restart_task_in(&self, name: &str, entry: &mut Entry, id: usize) -> Result<()> {
        // The old task is gone (flushed, committed) before the new one starts: two copies
        // of a source task would send the same records.
        let Some(position) = entry.tasks.iter().position(|t| t.id == id) else {
            return Err(ConnectError::NotFound(format!(
                "Task {name}-{id} not found"
            )));
        };
        let old = &mut entry.tasks[position];
        *old.state.lock() = State::Restarting;
        let _ = old.control.send(Control::Stop);
        let _ = (&mut old.handle).await;
        let props = old.props.clone();
        entry.tasks[position] = self.spawn_task(name, entry, id, props)?;
        tracing::info!(connector = name, task = id, "task restarted");
        Ok(())
    }

    /// Starts task `id` of `entry`'s connector with `props`, in the entry's target state.
    fn spawn_task(
        &self,
        name: &str,
        entry: &Entry,
        id: usize,
        props: Props,
    ) -> Result<RunningTask> {
        let paused = entry.target == TargetState::Paused;
        let state = Arc::new(Mutex::new(if paused {
            State::Paused
        } else {
            State::Running
        }));
        let (control, controlled) =
            watch::channel(if paused { Control::Pause } else { Control::Run });
        let mut setup = self.task_setup(name, &entry.config)?;
        setup.task = id;
        if let (ExactlyOnceSourceSupport::Enabled, Some(group), "source") = (
            self.config.exactly_once_source,
            &self.config.group_id,
            entry.plugin.kind(),
        ) {
            let config = SourceTransactionConfig::from_props(&entry.config).map_err(|errors| {
                ConnectError::Invalid(errors.iter().map(ToString::to_string).collect())
            })?;
            setup.exactly_once = Some(ExactlyOnceTask {
                transactional_id: format!("{group}-{name}-{id}"),
                boundary: config.boundary,
                interval: config.interval.unwrap_or(self.config.offset_flush_interval),
            });
        }
        let label = format!("{name}-{id}");
        let eos = setup.exactly_once.clone();
        let handle = match (RunningConnector::make(entry.plugin.factory), eos) {
            (RunningConnector::Source(connector), Some(eos)) => tokio::spawn(supervise(
                state.clone(),
                label,
                exactly_once::run_until_stopped(
                    self.client.clone(),
                    setup,
                    eos,
                    connector.create_task(),
                    props.clone(),
                    self.offsets.clone(),
                    controlled,
                    state.clone(),
                ),
            )),
            (RunningConnector::Source(connector), None) => tokio::spawn(supervise(
                state.clone(),
                label,
                source::run_until_stopped(
                    self.client.clone(),
                    setup,
                    connector.create_task(),
                    props.clone(),
                    self.offsets.clone(),
                    controlled,
                    state.clone(),
                ),
            )),
            (RunningConnector::Sink(connector), _) => tokio::spawn(supervise(
                state.clone(),
                label,
                sink::run_until_stopped(
                    self.client.clone(),
                    setup,
                    connector.create_task(),
                    props.clone(),
                    sink::Subscription {
                        topics: sink::topics_of(&entry.config)?,
                        group: sink::group_config_of(name, &entry.config, &self.config.consumer)?,
                    },
                    controlled,
                    state.clone(),
                ),
            )),
        };
        tracing::info!(connector = name, task = id, "task started");
        Ok(RunningTask {
            id,
            state,
            control,
            handle,
            props,
        })
    }

    fn plugin_for(&self, props: &Props) -> Result<&Plugin> {
        let class = props
            .get("connector.class")
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ConnectError::config("connector.class", "", "is required"))?;
        self.plugins.find(class).ok_or_else(|| {
            ConnectError::config(
                "connector.class",
                class,
                format!(
                    "Failed to find any class that implements Connector and which name matches {class}; available: {}",
                    self.plugins
                        .all()
                        .iter()
                        .map(|p| p.class.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    fn task_setup(&self, name: &str, props: &Props) -> Result<TaskSetup> {
        let converter = |part: &str, worker: &(String, Props)| -> Result<Arc<dyn Converter>> {
            let key = format!("{part}.converter");
            match props.get(&key) {
                Some(class) => {
                    let prefix = format!("{key}.");
                    let own: Props = props
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone()))
                        })
                        .collect();
                    converter_for(class, &own)
                }
                None => converter_for(&worker.0, &worker.1),
            }
        };
        Ok(TaskSetup {
            connector: name.to_string(),
            key_converter: converter("key", &self.config.key_converter)?,
            value_converter: converter("value", &self.config.value_converter)?,
            transforms: TransformChain::from_config(props)?,
            flush_interval: self.config.offset_flush_interval,
            errors: ErrorPolicy::from_props(props)?,
            task: 0,
            topics: self.config.topic_tracking.then(|| self.topics.clone()),
            exactly_once: None,
        })
    }
}

/// Sets a connector's or task's state, unless it has failed (only a restart clears that).
pub(crate) fn mark(state: &Mutex<State>, to: State) {
    let mut now = state.lock();
    if !now.is_failed() {
        *now = to;
    }
}

/// Runs a task's loop and keeps how it ended in its state.
async fn supervise(
    state: Arc<Mutex<State>>,
    task: String,
    run: impl std::future::Future<Output = Result<()>>,
) {
    match run.await {
        Ok(()) => *state.lock() = State::Unassigned,
        Err(err) => {
            tracing::error!(%task, %err, "task failed");
            *state.lock() = State::Failed(err.to_string());
        }
    }
}

fn tasks_max(props: &Props) -> Result<usize> {
    match props.get("tasks.max") {
        None => Ok(1),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                ConnectError::config("tasks.max", v, "expected a whole number of at least 1")
            }),
    }
}

pub(crate) fn not_found(name: &str) -> ConnectError {
    ConnectError::NotFound(format!("Connector {name} not found"))
}

/// Connector `name`, which must be stopped for its offsets to change (KIP-875).
fn stopped_entry<'a>(running: &'a BTreeMap<String, Entry>, name: &str) -> Result<&'a Entry> {
    let entry = running.get(name).ok_or_else(|| not_found(name))?;
    must_be_stopped(name, entry.target)?;
    Ok(entry)
}

/// Offsets change only while a connector is stopped (KIP-875).
pub(crate) fn must_be_stopped(name: &str, target: TargetState) -> Result<()> {
    if target != TargetState::Stopped {
        return Err(ConnectError::BadRequest(format!(
            "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
        )));
    }
    Ok(())
}

/// A sink partition as Kafka Connect writes it: `{"kafka_topic": t, "kafka_partition": p}`.
fn sink_partition(partition: &Value) -> Result<TopicPartition> {
    let field = |name: &str| match partition {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| matches!(k, Value::String(s) if s == name))
            .map(|(_, v)| v),
        _ => None,
    };
    let topic = match field("kafka_topic") {
        Some(Value::String(topic)) if !topic.is_empty() => topic,
        _ => {
            return Err(ConnectError::BadRequest(format!(
                "Sink partitions need a \"kafka_topic\" string and a \"kafka_partition\" number; got {}",
                display(partition)
            )))
        }
    };
    let number = field("kafka_partition").and_then(integer);
    match number
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 0)
    {
        Some(p) => Ok(TopicPartition::new(topic, p)),
        None => Err(ConnectError::BadRequest(format!(
            "Sink partitions need a \"kafka_partition\" number of at least 0; got {}",
            display(partition)
        ))),
    }
}

/// A sink offset as Kafka Connect writes it: `{"kafka_offset": n}`.
fn sink_offset(offset: &Value) -> Result<i64> {
    let found = match offset {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| matches!(k, Value::String(s) if s == "kafka_offset"))
            .and_then(|(_, v)| integer(v)),
        _ => None,
    };
    found.filter(|n| *n >= 0).ok_or_else(|| {
        ConnectError::BadRequest(format!(
            "Sink offsets are {{\"kafka_offset\": n}} with n at least 0, or null; got {}",
            display(offset)
        ))
    })
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int8(n) => Some(i64::from(*n)),
        Value::Int16(n) => Some(i64::from(*n)),
        Value::Int32(n) => Some(i64::from(*n)),
        Value::Int64(n) => Some(*n),
        _ => None,
    }
}

/// The settings every connector has (Kafka's `ConnectorConfig`, and `SinkConnectorConfig`'s
/// for sinks), as `config/validate` shows them.
fn common_config(kind: &str) -> ConfigDef {
    let class = |name: &str, doc: &str| ConfigKey::new(name, ConfigType::Class, doc);
    let mut def = ConfigDef::new()
        .define(ConfigKey::string("name", "Globally unique name to use for this connector.").required())
        .define(
            class("connector.class", "Name or alias of the class for this connector.").required(),
        )
        .define(
            ConfigKey::int("tasks.max", "Maximum number of tasks to use for this connector.")
                .default_value("1")
                .importance(Importance::High),
        )
        .define(class("key.converter", "Converter class for record keys (overrides the worker's)."))
        .define(class("value.converter", "Converter class for record values (overrides the worker's)."))
        .define(ConfigKey::list("transforms", "Aliases for the transformations to apply to records.").default_value(""))
        .define(ConfigKey::list("predicates", "Aliases for the predicates used by transformations.").default_value(""))
        .define(
            ConfigKey::string("errors.tolerance", "Behavior for tolerating errors: 'none' fails the task, 'all' skips problematic records.")
                .default_value("none"),
        )
        .define(ConfigKey::long("errors.retry.timeout", "How long to retry a failed operation, in ms (0: no retries).").default_value("0"))
        .define(ConfigKey::boolean("errors.log.enable", "Log each error and the failed operation.").default_value("false"))
        .define(ConfigKey::boolean("errors.log.include.messages", "Include the failed record in the error log.").default_value("false"));
    if kind == "source" {
        def = def
            .define(
                ConfigKey::string(
                    "exactly.once.support",
                    "Whether exactly-once delivery is required for this connector (required) or only used when the worker and connector support it (requested); distributed workers only.",
                )
                .default_value("requested"),
            )
            .define(
                ConfigKey::string(
                    "transaction.boundary",
                    "Where the source task's transactions end under exactly-once support: poll (after each batch), interval (every transaction.boundary.interval.ms) or connector (where the task says).",
                )
                .default_value("poll"),
            )
            .define(ConfigKey::long(
                "transaction.boundary.interval.ms",
                "With transaction.boundary=interval, how often transactions commit (default: the worker's offset.flush.interval.ms).",
            ));
    }
    if kind == "sink" {
        def = def
            .define(ConfigKey::list("topics", "The topics to consume from.").default_value(""))
            .define(ConfigKey::string(
                "topics.regex",
                "A regular expression of the topics to consume from.",
            ))
            .define(
                ConfigKey::string(
                    "errors.deadletterqueue.topic.name",
                    "Topic for records that failed (none: no dead letter queue).",
                )
                .default_value(""),
            )
            .define(
                ConfigKey::int(
                    "errors.deadletterqueue.topic.replication.factor",
                    "Replication factor of the dead letter queue topic when it is created.",
                )
                .default_value("3"),
            )
            .define(
                ConfigKey::boolean(
                    "errors.deadletterqueue.context.headers.enable",
                    "Add headers with the error context to records in the dead letter queue.",
                )
                .default_value("false"),
            );
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_once_settings_parse_with_kafkas_values_and_messages() {
        let props = |pairs: &[(&str, &str)]| -> Props {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        for (value, parsed) in [
            ("disabled", ExactlyOnceSourceSupport::Disabled),
            ("PREPARING", ExactlyOnceSourceSupport::Preparing),
            (" Enabled ", ExactlyOnceSourceSupport::Enabled),
        ] {
            let config =
                WorkerConfig::from_props(&props(&[("exactly.once.source.support", value)]))
                    .unwrap();
            assert_eq!(config.exactly_once_source, parsed);
        }
        let err = WorkerConfig::from_props(&props(&[("exactly.once.source.support", "on")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exactly.once.source.support")
                && err.contains("disabled, preparing, enabled"),
            "{err}"
        );
        // The worker's consumer settings, checked at start.
        let config =
            WorkerConfig::from_props(&props(&[("consumer.isolation.level", "read_committed")]))
                .unwrap();
        assert_eq!(
            config.consumer.get("isolation.level").map(String::as_str),
            Some("read_committed")
        );
        assert!(
            WorkerConfig::from_props(&props(&[("consumer.isolation.level", "sometimes")])).is_err()
        );

        let defaults = SourceTransactionConfig::from_props(&Props::new())
            .ok()
            .unwrap();
        assert!(!defaults.required);
        assert_eq!(defaults.boundary, TransactionBoundary::Poll);
        assert_eq!(defaults.interval, None);
        let set = SourceTransactionConfig::from_props(&props(&[
            ("exactly.once.support", "REQUIRED"),
            ("transaction.boundary", "Interval"),
            ("transaction.boundary.interval.ms", "250"),
        ]))
        .ok()
        .unwrap();
        assert!(set.required);
        assert_eq!(set.boundary, TransactionBoundary::Interval);
        assert_eq!(set.interval, Some(Duration::from_millis(250)));
        let errors = SourceTransactionConfig::from_props(&props(&[
            ("exactly.once.support", "maybe"),
            ("transaction.boundary", "sometimes"),
            ("transaction.boundary.interval.ms", "soon"),
        ]))
        .err()
        .unwrap();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("requested, required"), "{text:?}");
        assert!(text[1].contains("poll, interval, connector"), "{text:?}");
        assert!(
            text[2].contains("transaction.boundary.interval.ms"),
            "{text:?}"
        );
    }

    #[test]
    fn worker_properties_use_kafkas_names() {
        let props: Props = [
            ("bootstrap.servers", "localhost:9092"),
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("offset.storage.file.filename", "/tmp/connect.offsets"),
            ("offset.flush.interval.ms", "500"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = WorkerConfig::from_props(&props).unwrap();
        assert_eq!(config.offset_flush_interval, Duration::from_millis(500));
        assert_eq!(
            config
                .value_converter
                .1
                .get("schemas.enable")
                .map(String::as_str),
            Some("false")
        );
        assert_eq!(config.rest_listen, "127.0.0.1:8083");
        assert_eq!(config.bootstrap_servers.as_deref(), Some("localhost:9092"));
        let with = |key: &str, value: &str| {
            let mut p = props.clone();
            p.insert(key.into(), value.into());
            WorkerConfig::from_props(&p)
        };
        assert_eq!(
            with("listeners", "HTTP://:8084").unwrap().rest_listen,
            "0.0.0.0:8084"
        );
        assert_eq!(
            with("listeners", "http://localhost:0").unwrap().rest_listen,
            "localhost:0"
        );
        assert_eq!(
            with("rest.port", "9000").unwrap().rest_listen,
            "127.0.0.1:9000"
        );
        assert!(with("listeners", "https://x:1")
            .unwrap_err()
            .to_string()
            .contains("listeners"));
        assert!(with("rest.port", "http")
            .unwrap_err()
            .to_string()
            .contains("rest.port"));
        let mut bad = props.clone();
        bad.insert("offset.flush.interval".into(), "5".into());
        let err = WorkerConfig::from_props(&bad).unwrap_err();
        assert!(err.to_string().contains("offset.flush.interval"), "{err}");
        let mut bad = props;
        bad.insert("value.converter".into(), "com.example.Nope".into());
        assert!(WorkerConfig::from_props(&bad).is_err());
    }
}
