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
mod offsets;
mod sink;
mod source;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sluice_log::client::Client;

pub use errors::{ErrorPolicy, Stage};
pub use offsets::OffsetStore;

use crate::connector::{
    Connector, ConnectorContext, ConnectorEvent, Props, SinkConnector, SourceConnector,
};
use crate::converter::{converter_for, Converter};
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
        }
    }
}

impl WorkerConfig {
    /// Reads worker properties: `key.converter`, `value.converter` (with their prefixed
    /// properties), `offset.storage.file.filename`, `offset.flush.interval.ms`;
    /// `bootstrap.servers`, `plugin.path`, `rest.port`, `rest.host.name`, `listeners` and
    /// `group.id` are accepted (the caller connects, there are no plugin jars, the REST API and
    /// distributed mode read theirs). Anything else is an error naming the key.
    pub fn from_props(props: &Props) -> Result<WorkerConfig> {
        let mut config = WorkerConfig::default();
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
                "bootstrap.servers" | "plugin.path" | "rest.port" | "rest.host.name"
                | "listeners" | "group.id" => {}
                other => {
                    if let Some(k) = other.strip_prefix("key.converter.") {
                        config.key_converter.1.insert(k.to_string(), value.clone());
                    } else if let Some(k) = other.strip_prefix("value.converter.") {
                        config
                            .value_converter
                            .1
                            .insert(k.to_string(), value.clone());
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
        // Refuse bad converters now, not when the first connector starts.
        converter_for(&config.key_converter.0, &config.key_converter.1)?;
        converter_for(&config.value_converter.0, &config.value_converter.1)?;
        Ok(config)
    }
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
    /// Failed, with the reason.
    Failed(String),
    /// Stopped or not started.
    Unassigned,
}

impl State {
    /// Kafka's name: `RUNNING`, `FAILED`, `UNASSIGNED`.
    pub fn name(&self) -> &'static str {
        match self {
            State::Running => "RUNNING",
            State::Failed(_) => "FAILED",
            State::Unassigned => "UNASSIGNED",
        }
    }
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
}

struct RunningTask {
    state: Arc<Mutex<State>>,
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

enum RunningConnector {
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

impl RunningConnector {
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

struct Running {
    connector: RunningConnector,
    state: Arc<Mutex<State>>,
    tasks: Vec<RunningTask>,
    config: Props,
}

/// A standalone worker.
pub struct Worker {
    client: Arc<Client>,
    config: WorkerConfig,
    plugins: Plugins,
    offsets: Arc<OffsetStore>,
    running: tokio::sync::Mutex<BTreeMap<String, Running>>,
}

impl Worker {
    /// A worker on `client`'s cluster that can run `plugins`.
    pub fn new(client: Arc<Client>, config: WorkerConfig, plugins: Plugins) -> Result<Worker> {
        let offsets = match &config.offset_file {
            Some(path) => OffsetStore::open(path)?,
            None => OffsetStore::in_memory(),
        };
        Ok(Worker {
            client,
            config,
            plugins,
            offsets: Arc::new(offsets),
            running: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// The connector classes this worker runs.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// The source offsets this worker keeps.
    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    /// Validates `props` as connector `name`'s config and starts it and its tasks. Nothing is
    /// started when anything is wrong: the error names every problem.
    pub async fn create_connector(&self, name: &str, props: Props) -> Result<()> {
        let mut running = self.running.lock().await;
        if running.contains_key(name) {
            return Err(ConnectError::Conflict(format!(
                "Connector {name} already exists"
            )));
        }
        let plugin = self.plugin_for(&props)?.clone();
        let setup = |props: &Props| self.task_setup(name, props);
        // Checked before anything starts: transforms and converters, then the connector's own.
        setup(&props)?;
        let max_tasks = tasks_max(&props)?;
        let state = Arc::new(Mutex::new(State::Running));
        let context = {
            let state = state.clone();
            let name = name.to_string();
            ConnectorContext::new(move |event| match event {
                ConnectorEvent::RaiseError(reason) => {
                    tracing::error!(connector = %name, %reason, "connector failed");
                    *state.lock() = State::Failed(reason);
                }
                ConnectorEvent::RequestTaskReconfiguration => {
                    tracing::info!(connector = %name, "the connector asked for new task configs; restart it to apply them");
                }
            })
        };
        let mut connector = match plugin.factory {
            ConnectorFactory::Source(make) => RunningConnector::Source(make()),
            ConnectorFactory::Sink(make) => {
                sink::topics_of(&props)?;
                RunningConnector::Sink(make())
            }
        };
        check(&connector.as_connector().validate(&props))?;
        connector.as_connector_mut().start(&props, context)?;
        let task_configs = connector.as_connector().task_configs(&props, max_tasks)?;
        let mut tasks = Vec::new();
        for (id, task_props) in task_configs.into_iter().take(max_tasks).enumerate() {
            let task_state = Arc::new(Mutex::new(State::Running));
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let mut setup = self.task_setup(name, &props)?;
            setup.task = id;
            let handle = match &connector {
                RunningConnector::Source(connector) => tokio::spawn(supervise(
                    task_state.clone(),
                    format!("{name}-{id}"),
                    source::run_until_stopped(
                        self.client.clone(),
                        setup,
                        connector.create_task(),
                        task_props,
                        self.offsets.clone(),
                        stopped,
                    ),
                )),
                RunningConnector::Sink(connector) => {
                    let topics = sink::topics_of(&props)?;
                    tokio::spawn(supervise(
                        task_state.clone(),
                        format!("{name}-{id}"),
                        sink::run_until_stopped(
                            self.client.clone(),
                            setup,
                            connector.create_task(),
                            task_props,
                            topics,
                            stopped,
                        ),
                    ))
                }
            };
            tracing::info!(connector = name, task = id, "task started");
            tasks.push(RunningTask {
                state: task_state,
                stop,
                handle,
            });
        }
        running.insert(
            name.to_string(),
            Running {
                connector,
                state,
                tasks,
                config: props,
            },
        );
        Ok(())
    }

    /// Stops connector `name` and its tasks (each flushes and commits what it has) and forgets
    /// it; its source offsets stay, so a connector of the same name resumes.
    pub async fn delete_connector(&self, name: &str) -> Result<()> {
        let removed = self.running.lock().await.remove(name);
        let Some(mut running) = removed else {
            return Err(ConnectError::NotFound(format!(
                "Connector {name} not found"
            )));
        };
        for task in running.tasks.drain(..) {
            let _ = task.stop.send(true);
            let _ = task.handle.await;
        }
        running.connector.as_connector_mut().stop()?;
        tracing::info!(connector = name, "connector stopped");
        Ok(())
    }

    /// The names of the running connectors.
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

    /// Connector `name`'s status and its tasks'.
    pub async fn status(&self, name: &str) -> Option<ConnectorStatus> {
        let running = self.running.lock().await;
        let r = running.get(name)?;
        let state = r.state.lock().clone();
        let status = ConnectorStatus {
            state,
            kind: match r.connector {
                RunningConnector::Source(_) => "source",
                RunningConnector::Sink(_) => "sink",
            },
            tasks: r.tasks.iter().map(|t| t.state.lock().clone()).collect(),
        };
        Some(status)
    }

    /// Stops every connector.
    pub async fn shutdown(&self) -> Result<()> {
        for name in self.connectors().await {
            self.delete_connector(&name).await?;
        }
        Ok(())
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
        })
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

fn check(validation: &crate::connector::Validation) -> Result<()> {
    if validation.error_count() == 0 {
        return Ok(());
    }
    Err(ConnectError::Invalid(validation.messages()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut bad = props.clone();
        bad.insert("offset.flush.interval".into(), "5".into());
        let err = WorkerConfig::from_props(&bad).unwrap_err();
        assert!(err.to_string().contains("offset.flush.interval"), "{err}");
        let mut bad = props;
        bad.insert("value.converter".into(), "com.example.Nope".into());
        assert!(WorkerConfig::from_props(&bad).is_err());
    }
}
