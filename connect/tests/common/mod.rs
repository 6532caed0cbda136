//! Fixtures the Connect integration tests share: a counting source, a collecting sink, their
//! plugins, and an embedded node to run a scenario on.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sluice_connect::connector::{
    BoxFuture, ConfigDef, ConfigKey, Connector, ConnectorContext, Props, SinkConnector, SinkRecord,
    SinkTask, SourceConnector, SourceRecord, SourceTask, SourceTaskContext, TopicPartition,
};
use sluice_connect::data::{Schema, Type, Value};
use sluice_connect::distributed::{DistributedConfig, DistributedWorker};
use sluice_connect::rest::RestServer;
use sluice_connect::worker::{ConnectorFactory, Plugins};
use sluice_log::embedded::EmbeddedBroker;

/// Emits the numbers from its committed offset up to `limit` (exclusive) into `topic`; then
/// each poll waits `idle.ms` (20 by default) and returns nothing.
pub struct CountingSource;

pub struct CountingTask {
    topic: String,
    next: i64,
    limit: i64,
    idle: Duration,
}

pub fn partition() -> Value {
    Value::string_map([("counter", Value::from("main"))])
}

impl Connector for CountingSource {
    fn config(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::string("topic", "Where the numbers go.").required())
            .define(ConfigKey::long("limit", "Where they stop.").required())
            .define(
                ConfigKey::long("idle.ms", "How long a poll with nothing waits.")
                    .default_value("20"),
            )
    }

    fn start(&mut self, _props: &Props, _ctx: ConnectorContext) -> sluice_connect::Result<()> {
        Ok(())
    }

    fn task_configs(&self, props: &Props, _max: usize) -> sluice_connect::Result<Vec<Props>> {
        Ok(vec![props.clone()])
    }
}

impl SourceConnector for CountingSource {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(CountingTask {
            topic: String::new(),
            next: 0,
            limit: 0,
            idle: Duration::from_millis(20),
        })
    }
}

impl SourceTask for CountingTask {
    fn start<'a>(
        &'a mut self,
        props: &'a Props,
        ctx: SourceTaskContext,
    ) -> BoxFuture<'a, sluice_connect::Result<()>> {
        Box::pin(async move {
            self.topic = props.get("topic").cloned().unwrap_or_default();
            self.limit = props.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
            if let Some(ms) = props.get("idle.ms").and_then(|l| l.parse().ok()) {
                self.idle = Duration::from_millis(ms);
            }
            self.next = ctx
                .offset(&partition())
                .and_then(|o| o.map_get("next").and_then(Value::as_i64))
                .unwrap_or(0);
            Ok(())
        })
    }

    fn poll(&mut self) -> BoxFuture<'_, sluice_connect::Result<Vec<SourceRecord>>> {
        Box::pin(async move {
            if self.next >= self.limit {
                // Nothing more: wait, as a task with no data does.
                tokio::time::sleep(self.idle).await;
                return Ok(Vec::new());
            }
            let end = (self.next + 100).min(self.limit);
            let records = (self.next..end)
                .map(|n| {
                    SourceRecord::new(
                        partition(),
                        Value::string_map([("next", Value::Int64(n + 1))]),
                        &self.topic,
                        Some(Schema::primitive(Type::Int64)),
                        Value::Int64(n),
                    )
                })
                .collect();
            self.next = end;
            Ok(records)
        })
    }
}

/// Like the counting source, in batches of ten up to `limit`, defining its own transaction
/// boundaries: a commit after every batch whose index is 2 mod 3, an abort after batch 4, and
/// a commit after the record of 75. With exactly-once support its committed numbers are
/// 0..30 and 50..limit (30..50 aborted).
pub struct BoundarySource;

pub struct BoundaryTask {
    inner: CountingTask,
    transactions: Option<sluice_connect::connector::TransactionContext>,
}

impl Connector for BoundarySource {
    fn config(&self) -> ConfigDef {
        CountingSource.config()
    }

    fn start(&mut self, _props: &Props, _ctx: ConnectorContext) -> sluice_connect::Result<()> {
        Ok(())
    }

    fn task_configs(&self, props: &Props, _max: usize) -> sluice_connect::Result<Vec<Props>> {
        Ok(vec![props.clone()])
    }
}

impl SourceConnector for BoundarySource {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(BoundaryTask {
            inner: CountingTask {
                topic: String::new(),
                next: 0,
                limit: 0,
                idle: Duration::from_millis(20),
            },
            transactions: None,
        })
    }

    fn exactly_once_support(
        &self,
        _props: &Props,
    ) -> Option<sluice_connect::connector::ExactlyOnceSupport> {
        Some(sluice_connect::connector::ExactlyOnceSupport::Supported)
    }

    fn can_define_transaction_boundaries(
        &self,
        _props: &Props,
    ) -> Option<sluice_connect::connector::ConnectorTransactionBoundaries> {
        Some(sluice_connect::connector::ConnectorTransactionBoundaries::Supported)
    }
}

impl SourceTask for BoundaryTask {
    fn start<'a>(
        &'a mut self,
        props: &'a Props,
        ctx: SourceTaskContext,
    ) -> BoxFuture<'a, sluice_connect::Result<()>> {
        self.transactions = ctx.transaction_context().cloned();
        self.inner.start(props, ctx)
    }

    fn poll(&mut self) -> BoxFuture<'_, sluice_connect::Result<Vec<SourceRecord>>> {
        Box::pin(async move {
            let batch = self.inner.next / 10;
            let end = (self.inner.next + 10).min(self.inner.limit);
            if self.inner.next >= self.inner.limit {
                tokio::time::sleep(self.inner.idle).await;
                return Ok(Vec::new());
            }
            let records: Vec<SourceRecord> = (self.inner.next..end)
                .map(|n| {
                    SourceRecord::new(
                        partition(),
                        Value::string_map([("next", Value::Int64(n + 1))]),
                        &self.inner.topic,
                        Some(Schema::primitive(Type::Int64)),
                        Value::Int64(n),
                    )
                })
                .collect();
            self.inner.next = end;
            if let Some(transactions) = &self.transactions {
                if batch % 3 == 2 {
                    transactions.commit_transaction();
                }
                if batch == 4 {
                    transactions.abort_transaction();
                }
                if let Some(record) = records.iter().find(|r| r.record.value.as_i64() == Some(75)) {
                    transactions.commit_transaction_after(record);
                }
            }
            Ok(records)
        })
    }
}

/// What the collecting sinks were handed, by their `collector` property.
pub fn collected() -> &'static Mutex<BTreeMap<String, Vec<SinkRecord>>> {
    static COLLECTED: OnceLock<Mutex<BTreeMap<String, Vec<SinkRecord>>>> = OnceLock::new();
    COLLECTED.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// How many times the collecting sinks of each `collector` flushed.
pub fn flushes(collector: &str) -> usize {
    flush_counts()
        .lock()
        .map_or(0, |counts| counts.get(collector).copied().unwrap_or(0))
}

fn flush_counts() -> &'static Mutex<BTreeMap<String, usize>> {
    static FLUSHES: OnceLock<Mutex<BTreeMap<String, usize>>> = OnceLock::new();
    FLUSHES.get_or_init(|| Mutex::new(BTreeMap::new()))
}

pub struct CollectingSink;

pub struct CollectingTask {
    collector: String,
    pending: Vec<SinkRecord>,
    /// How many more `put`s fail with a retriable error (`retriable.failures`, 0 by default),
    /// as a sink whose database is briefly away.
    failures_left: u32,
}

impl Connector for CollectingSink {
    fn config(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::string("collector", "Where records go.").required())
            .define(
                ConfigKey::int("retriable.failures", "Puts that fail first, retriably.")
                    .default_value("0"),
            )
    }

    fn start(&mut self, _props: &Props, _ctx: ConnectorContext) -> sluice_connect::Result<()> {
        Ok(())
    }

    // As many tasks as allowed, sharing the group's partitions.
    fn task_configs(&self, props: &Props, max: usize) -> sluice_connect::Result<Vec<Props>> {
        Ok(vec![props.clone(); max])
    }
}

impl SinkConnector for CollectingSink {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(CollectingTask {
            collector: String::new(),
            pending: Vec::new(),
            failures_left: 0,
        })
    }
}

impl SinkTask for CollectingTask {
    fn start<'a>(&'a mut self, props: &'a Props) -> BoxFuture<'a, sluice_connect::Result<()>> {
        Box::pin(async move {
            self.collector = props.get("collector").cloned().unwrap_or_default();
            self.failures_left = props
                .get("retriable.failures")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Ok(())
        })
    }

    fn put<'a>(
        &'a mut self,
        records: &'a [SinkRecord],
    ) -> BoxFuture<'a, sluice_connect::Result<()>> {
        Box::pin(async move {
            if self.failures_left > 0 && !records.is_empty() {
                self.failures_left -= 1;
                return Err(sluice_connect::ConnectError::Retriable(
                    "the collector is away".into(),
                ));
            }
            self.pending.extend_from_slice(records);
            Ok(())
        })
    }

    // Records become visible only when flushed, as a file sink's do.
    fn flush<'a>(
        &'a mut self,
        _offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, sluice_connect::Result<()>> {
        Box::pin(async move {
            if let Ok(mut all) = collected().lock() {
                all.entry(self.collector.clone())
                    .or_default()
                    .append(&mut self.pending);
            }
            if let Ok(mut counts) = flush_counts().lock() {
                *counts.entry(self.collector.clone()).or_default() += 1;
            }
            Ok(())
        })
    }
}

pub fn plugins() -> Plugins {
    let mut plugins = Plugins::new();
    plugins.register(
        "com.example.CountingSource",
        &["CountingSource"],
        ConnectorFactory::Source(|| Box::new(CountingSource)),
    );
    plugins.register(
        "com.example.BoundarySource",
        &["BoundarySource"],
        ConnectorFactory::Source(|| Box::new(BoundarySource)),
    );
    plugins.register(
        "com.example.CollectingSink",
        &["CollectingSink"],
        ConnectorFactory::Sink(|| Box::new(CollectingSink)),
    );
    plugins
}

pub fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `scenario` with a client of a fresh embedded node, bounded by 60 s.
pub fn on_embedded_node<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<sluice_log::client::Client>, std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let node = sluice_log::Sluice::embedded(dir.path().join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .start()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async {
            let client = node.client().await.unwrap();
            tokio::time::timeout(
                Duration::from_secs(60),
                scenario(client, dir.path().to_path_buf()),
            )
            .await
        })
        .expect("the scenario finishes within 60 s");
    node.shutdown().unwrap();
}

/// Waits (up to 20 s) until collector `name` holds `n` records, and returns their values.
pub async fn wait_for(name: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let values: Vec<Value> = collected()
            .lock()
            .unwrap()
            .get(name)
            .map(|records| records.iter().map(|r| r.record.value.clone()).collect())
            .unwrap_or_default();
        if values.len() >= n {
            return values;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} has {} of {n} records",
            values.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `GET path` on `rest` until `check` accepts the answer (up to 40 s); the last answer.
pub async fn await_get(
    rest: &sluice_connect::rest::RestClient,
    path: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let (status, body) = rest.get(path).await.unwrap();
        if status == 200 && check(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path} never matched; last {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A worker on a runtime of its own, so that it can die as a process does.
pub struct WorkerProcess {
    runtime: Option<tokio::runtime::Runtime>,
    worker: Option<Arc<DistributedWorker>>,
    server: Option<RestServer>,
    pub id: String,
}

impl WorkerProcess {
    pub fn start(node: &EmbeddedBroker) -> WorkerProcess {
        WorkerProcess::start_with(node, &[])
    }

    /// A worker with `extra` worker properties besides the tests' usual ones.
    pub fn start_with(node: &EmbeddedBroker, extra: &[(&str, &str)]) -> WorkerProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (worker, server, id) = runtime.block_on(async {
            let client = node.client().await.unwrap();
            let listener = RestServer::bind("127.0.0.1:0").await.unwrap();
            let id = listener.local_addr().unwrap().to_string();
            let mut worker_props = props(&[
                ("group.id", "connect-cluster"),
                ("offset.flush.interval.ms", "100"),
                ("offset.storage.partitions", "3"),
                ("status.storage.partitions", "2"),
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "100"),
            ]);
            worker_props.extend(props(extra));
            let (worker_config, config) = DistributedConfig::from_props(&worker_props).unwrap();
            let worker = Arc::new(
                DistributedWorker::start(client, worker_config, config, plugins(), &id)
                    .await
                    .unwrap(),
            );
            let server = RestServer::serve(listener, worker.clone()).unwrap();
            (worker, server, id)
        });
        WorkerProcess {
            runtime: Some(runtime),
            worker: Some(worker),
            server: Some(server),
            id,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.id)
    }

    /// Gone at once: its runtime and every task on it stop, it never leaves the group.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        std::mem::forget(self.server.take());
        std::mem::forget(self.worker.take());
    }

    pub fn shutdown(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.block_on(async {
                if let Some(server) = self.server.take() {
                    server.shutdown().await;
                }
                if let Some(worker) = self.worker.take() {
                    worker.shutdown().await;
                }
            });
        }
    }
}
