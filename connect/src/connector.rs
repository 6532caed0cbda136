//! What connector authors implement (Kafka Connect's `SourceConnector`, `SourceTask`,
//! `SinkConnector`, `SinkTask`) and the records, contexts and config definitions they use.
//!
//! The life cycle is Kafka's: a connector is validated against its [`ConfigDef`], started
//! with its properties, asked for `task_configs(max_tasks)`, and stopped; each task is started
//! with its own properties, then polled (source) or handed records (sink), told to flush or
//! commit, and stopped. Task methods are async (they return boxed futures, so tasks can be
//! trait objects) because most systems a task talks to — databases, object stores, files —
//! are reached asynchronously.
//!
//! ```
//! use std::collections::BTreeMap;
//! use sluice_connect::connector::{
//!     BoxFuture, ConfigDef, ConfigKey, Connector, ConnectorContext, Props, SourceConnector,
//!     SourceRecord, SourceTask, SourceTaskContext,
//! };
//! use sluice_connect::data::{Schema, Type, Value};
//!
//! /// Counts up from `start` into `topic`, resuming from its last offset.
//! struct Counter;
//! struct CounterTask { topic: String, next: i64 }
//!
//! impl Connector for Counter {
//!     fn config(&self) -> ConfigDef {
//!         ConfigDef::new()
//!             .define(ConfigKey::string("topic", "The topic to write to.").required())
//!             .define(ConfigKey::long("start", "The first number.").default_value("0"))
//!     }
//!     fn start(&mut self, _props: &Props, _ctx: ConnectorContext) -> sluice_connect::Result<()> {
//!         Ok(())
//!     }
//!     fn task_configs(&self, props: &Props, _max_tasks: usize) -> sluice_connect::Result<Vec<Props>> {
//!         Ok(vec![props.clone()])
//!     }
//! }
//!
//! impl SourceConnector for Counter {
//!     fn create_task(&self) -> Box<dyn SourceTask> {
//!         Box::new(CounterTask { topic: String::new(), next: 0 })
//!     }
//! }
//!
//! impl SourceTask for CounterTask {
//!     fn start<'a>(&'a mut self, props: &'a Props, ctx: SourceTaskContext) -> BoxFuture<'a, sluice_connect::Result<()>> {
//!         Box::pin(async move {
//!             self.topic = props.get("topic").cloned().unwrap_or_default();
//!             let partition = Value::string_map([("counter", Value::from("main"))]);
//!             self.next = match ctx.offset(&partition) {
//!                 Some(offset) => offset.map_get("next").and_then(Value::as_i64).unwrap_or(0),
//!                 None => props.get("start").and_then(|s| s.parse().ok()).unwrap_or(0),
//!             };
//!             Ok(())
//!         })
//!     }
//!     fn poll(&mut self) -> BoxFuture<'_, sluice_connect::Result<Vec<SourceRecord>>> {
//!         Box::pin(async move {
//!             let n = self.next;
//!             self.next += 1;
//!             Ok(vec![SourceRecord::new(
//!                 Value::string_map([("counter", Value::from("main"))]),
//!                 Value::string_map([("next", Value::Int64(n + 1))]),
//!                 &self.topic,
//!                 Some(Schema::primitive(Type::Int64)),
//!                 Value::Int64(n),
//!             )])
//!         })
//!     }
//! }
//!
//! let def = Counter.config();
//! let errors = def.validate(&BTreeMap::new());
//! assert_eq!(errors.error_count(), 1); // topic is required
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::data::{SchemaRef, Value};
use crate::error::Result;
use crate::record::ConnectRecord;

/// A boxed, sendable future: what task methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connector's or task's properties.
pub type Props = BTreeMap<String, String>;

/// A topic partition: the log's own type, re-exported for connector authors.
pub use sluice_log::TopicPartition;

/// A `LIST` config value's items: split at commas, trimmed, empty ones dropped (as Kafka's
/// `ConfigDef` parses lists).
pub fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The type of a config value (Kafka's `ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// Any text.
    String,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer.
    Long,
    /// `true` or `false`.
    Boolean,
    /// A comma-separated list.
    List,
    /// Text that is never shown back.
    Password,
    /// A class name.
    Class,
}

impl ConfigType {
    /// Kafka's upper-case name (`STRING`, `INT`, ...), as the REST API shows it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::List => "LIST",
            ConfigType::Password => "PASSWORD",
            ConfigType::Class => "CLASS",
        }
    }
}

/// How much a setting matters (Kafka's `ConfigDef.Importance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// Most users set it.
    High,
    /// Some users set it.
    Medium,
    /// Rarely set.
    Low,
}

/// One setting of a [`ConfigDef`].
#[derive(Debug, Clone)]
pub struct ConfigKey {
    /// The property name.
    pub name: String,
    /// Its type.
    pub ty: ConfigType,
    /// The value when unset (none and not required: no value).
    pub default: Option<String>,
    /// Whether it must be set.
    pub required: bool,
    /// How much it matters.
    pub importance: Importance,
    /// What it does.
    pub doc: String,
}

impl ConfigKey {
    /// A setting of type `ty`, optional without a default, of medium importance.
    pub fn new(name: &str, ty: ConfigType, doc: &str) -> ConfigKey {
        ConfigKey {
            name: name.to_string(),
            ty,
            default: None,
            required: false,
            importance: Importance::Medium,
            doc: doc.to_string(),
        }
    }

    /// A string setting.
    pub fn string(name: &str, doc: &str) -> ConfigKey {
        ConfigKey::new(name, ConfigType::String, doc)
    }

    /// An int setting.
    pub fn int(name: &str, doc: &str) -> ConfigKey {
        ConfigKey::new(name, ConfigType::Int, doc)
    }

    /// A long setting.
    pub fn long(name: &str, doc: &str) -> ConfigKey {
        ConfigKey::new(name, ConfigType::Long, doc)
    }

    /// A boolean setting.
    pub fn boolean(name: &str, doc: &str) -> ConfigKey {
        ConfigKey::new(name, ConfigType::Boolean, doc)
    }

    /// A list setting.
    pub fn list(name: &str, doc: &str) -> ConfigKey {
        ConfigKey::new(name, ConfigType::List, doc)
    }

    /// Must be set (and not empty), of high importance.
    pub fn required(mut self) -> ConfigKey {
        self.required = true;
        self.importance = Importance::High;
        self
    }

    /// The value when unset.
    pub fn default_value(mut self, value: &str) -> ConfigKey {
        self.default = Some(value.to_string());
        self
    }

    /// Sets the importance.
    pub fn importance(mut self, importance: Importance) -> ConfigKey {
        self.importance = importance;
        self
    }

    /// Why `value` is not a valid value of this setting, if it is not.
    pub fn check(&self, value: Option<&str>) -> Option<String> {
        let Some(value) = value.or(self.default.as_deref()) else {
            return self.required.then(|| {
                "Missing required configuration \"".to_string()
                    + &self.name
                    + "\" which has no default value."
            });
        };
        if self.required && value.trim().is_empty() {
            return Some(format!("\"{}\" must not be empty", self.name));
        }
        let ok = match self.ty {
            ConfigType::Int => value.trim().parse::<i32>().is_ok(),
            ConfigType::Long => value.trim().parse::<i64>().is_ok(),
            ConfigType::Boolean => {
                matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false")
            }
            ConfigType::String | ConfigType::List | ConfigType::Password | ConfigType::Class => {
                true
            }
        };
        (!ok).then(|| {
            format!(
                "Invalid value {value} for configuration {}: Not a {}",
                self.name,
                match self.ty {
                    ConfigType::Int => "number of type INT",
                    ConfigType::Long => "number of type LONG",
                    _ => "boolean",
                }
            )
        })
    }
}

/// The settings a connector accepts (Kafka's `ConfigDef`).
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
}

impl ConfigDef {
    /// No settings.
    pub fn new() -> ConfigDef {
        ConfigDef::default()
    }

    /// Adds a setting (a later one of the same name replaces it).
    pub fn define(mut self, key: ConfigKey) -> ConfigDef {
        self.keys.retain(|k| k.name != key.name);
        self.keys.push(key);
        self
    }

    /// The settings, in definition order.
    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }

    /// Every defined setting's value and errors for `props` (Kafka's `ConfigDef.validate`).
    pub fn validate(&self, props: &Props) -> Validation {
        Validation {
            values: self
                .keys
                .iter()
                .map(|key| {
                    let given = props.get(&key.name).map(String::as_str);
                    ConfigValue {
                        name: key.name.clone(),
                        value: given.or(key.default.as_deref()).map(str::to_string),
                        errors: key.check(given).into_iter().collect(),
                    }
                })
                .collect(),
        }
    }
}

/// A setting's value and what is wrong with it (Kafka's `ConfigValue`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue {
    /// The setting.
    pub name: String,
    /// Its value (given or default).
    pub value: Option<String>,
    /// Why the value is refused; empty when it is fine.
    pub errors: Vec<String>,
}

/// The outcome of validating a config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validation {
    /// Each setting's value and errors.
    pub values: Vec<ConfigValue>,
}

impl Validation {
    /// How many errors there are.
    pub fn error_count(&self) -> usize {
        self.values.iter().map(|v| v.errors.len()).sum()
    }

    /// The errors as `setting: reason` lines.
    pub fn messages(&self) -> Vec<String> {
        self.values
            .iter()
            .flat_map(|v| v.errors.iter().map(move |e| format!("{}: {e}", v.name)))
            .collect()
    }

    /// Adds an error for setting `name` (a connector's own cross-field checks).
    pub fn add_error(&mut self, name: &str, error: impl Into<String>) {
        match self.values.iter_mut().find(|v| v.name == name) {
            Some(value) => value.errors.push(error.into()),
            None => self.values.push(ConfigValue {
                name: name.to_string(),
                value: None,
                errors: vec![error.into()],
            }),
        }
    }
}

/// A record a source task produced: a Connect record plus where it came from in the source
/// system (its source partition and offset, both maps of strings to values, as in Kafka).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// The source partition (a file name, a table).
    pub source_partition: Value,
    /// The position within it after this record (what a restart resumes from).
    pub source_offset: Value,
    /// The record.
    pub record: ConnectRecord,
}

impl SourceRecord {
    /// A record for `topic` with a value.
    pub fn new(
        source_partition: Value,
        source_offset: Value,
        topic: &str,
        value_schema: Option<SchemaRef>,
        value: Value,
    ) -> SourceRecord {
        SourceRecord {
            source_partition,
            source_offset,
            record: ConnectRecord::new(topic, value_schema, value),
        }
    }
}

/// A record a sink task is handed: a Connect record plus its Kafka offset.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    /// The record (its topic, partition, key, value, timestamp, headers).
    pub record: ConnectRecord,
    /// Its offset in its partition.
    pub kafka_offset: i64,
    /// The bytes the runtime read it as (`None` for a record made elsewhere, as in tests).
    pub original: Option<std::sync::Arc<OriginalRecord>>,
}

impl SinkRecord {
    /// A record of `record` at `offset`, with no original bytes.
    pub fn new(record: ConnectRecord, kafka_offset: i64) -> SinkRecord {
        SinkRecord {
            record,
            kafka_offset,
            original: None,
        }
    }

    /// A copy without key, value and headers (their original bytes stay): enough for a task
    /// that writes asynchronously to report the record to the [`ErrantRecordReporter`] later.
    pub fn reference(&self) -> SinkRecord {
        let r = &self.record;
        SinkRecord {
            record: ConnectRecord {
                topic: r.topic.clone(),
                kafka_partition: r.kafka_partition,
                key_schema: None,
                key: crate::data::Value::Null,
                value_schema: None,
                value: crate::data::Value::Null,
                timestamp: r.timestamp,
                headers: Default::default(),
            },
            kafka_offset: self.kafka_offset,
            original: self.original.clone(),
        }
    }
}

/// What a sink record was read as (Kafka's `InternalSinkRecord` keeps its consumer record):
/// the dead letter queue gets these bytes, however long after `put` the record is reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OriginalRecord {
    /// The topic read (a transform may have renamed the record's).
    pub topic: String,
    /// The key's bytes.
    pub key: Option<bytes::Bytes>,
    /// The value's bytes.
    pub value: Option<bytes::Bytes>,
    /// The headers' bytes.
    pub headers: Vec<(String, Option<bytes::Bytes>)>,
}

/// What a connector may ask of the runtime (Kafka's `ConnectorContext`).
#[derive(Clone)]
pub struct ConnectorContext {
    events: Arc<dyn Fn(ConnectorEvent) + Send + Sync>,
}

/// A connector's request to its runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorEvent {
    /// The task configs should be asked for again (the source system changed).
    RequestTaskReconfiguration,
    /// The connector has failed; the message says why.
    RaiseError(String),
}

impl ConnectorContext {
    /// A context that hands requests to `events`.
    pub fn new(events: impl Fn(ConnectorEvent) + Send + Sync + 'static) -> ConnectorContext {
        ConnectorContext {
            events: Arc::new(events),
        }
    }

    /// Asks the runtime to call `task_configs` again and restart the tasks with the result.
    pub fn request_task_reconfiguration(&self) {
        (self.events)(ConnectorEvent::RequestTaskReconfiguration);
    }

    /// Tells the runtime the connector failed.
    pub fn raise_error(&self, message: impl Into<String>) {
        (self.events)(ConnectorEvent::RaiseError(message.into()));
    }
}

/// What a source task may read from the runtime: the last committed offset of each source
/// partition (Kafka's `OffsetStorageReader`).
#[derive(Clone)]
pub struct SourceTaskContext {
    offsets: Arc<OffsetLookup>,
    transactions: Option<TransactionContext>,
}

/// Finds the committed offset of a source partition.
type OffsetLookup = dyn Fn(&Value) -> Option<Value> + Send + Sync;

impl SourceTaskContext {
    /// A context whose offsets `offsets` looks up.
    pub fn new(
        offsets: impl Fn(&Value) -> Option<Value> + Send + Sync + 'static,
    ) -> SourceTaskContext {
        SourceTaskContext {
            offsets: Arc::new(offsets),
            transactions: None,
        }
    }

    /// The same context, with the transaction context of connector-defined boundaries.
    pub fn with_transactions(mut self, transactions: TransactionContext) -> SourceTaskContext {
        self.transactions = Some(transactions);
        self
    }

    /// The last committed offset of `partition`, if any.
    pub fn offset(&self, partition: &Value) -> Option<Value> {
        (self.offsets)(partition)
    }

    /// Where the task says where its transactions end: only with exactly-once source support
    /// enabled on the worker and `transaction.boundary=connector` (Kafka's
    /// `SourceTaskContext.transactionContext()`, null otherwise).
    pub fn transaction_context(&self) -> Option<&TransactionContext> {
        self.transactions.as_ref()
    }
}

/// A source task's requests to end its transaction (Kafka's `TransactionContext`), acted on
/// by the runtime after the batch of records (or the record) they name has been sent.
#[derive(Clone, Default)]
pub struct TransactionContext {
    requests: Arc<parking_lot::Mutex<TransactionRequests>>,
}

/// What a task has asked for and the runtime has not acted on yet.
#[derive(Default, Debug)]
pub struct TransactionRequests {
    /// Commit after the next batch from `poll`.
    pub commit_batch: bool,
    /// Abort after the next batch from `poll`.
    pub abort_batch: bool,
    /// Commit after the record with this source partition and offset.
    pub commit_after: Vec<(Value, Value)>,
    /// Abort after the record with this source partition and offset.
    pub abort_after: Vec<(Value, Value)>,
}

impl TransactionContext {
    /// Commits the transaction after the next batch of records from `poll` is sent.
    pub fn commit_transaction(&self) {
        self.requests.lock().commit_batch = true;
    }

    /// Commits the transaction after `record` is sent: it is the transaction's last record.
    pub fn commit_transaction_after(&self, record: &SourceRecord) {
        self.requests.lock().commit_after.push((
            record.source_partition.clone(),
            record.source_offset.clone(),
        ));
    }

    /// Aborts the transaction after the next batch from `poll`: its records are never seen,
    /// but its offsets are committed, so they are not read again.
    pub fn abort_transaction(&self) {
        self.requests.lock().abort_batch = true;
    }

    /// Aborts the transaction after `record` is sent (the record included).
    pub fn abort_transaction_after(&self, record: &SourceRecord) {
        self.requests.lock().abort_after.push((
            record.source_partition.clone(),
            record.source_offset.clone(),
        ));
    }

    /// Takes the requests so far (the runtime's side).
    pub fn take(&self) -> TransactionRequests {
        std::mem::take(&mut *self.requests.lock())
    }

    /// Takes a request naming this record, if there is one: Some(true) to commit after it,
    /// Some(false) to abort; asking for both is the task's error.
    pub fn take_for_record(
        &self,
        partition: &Value,
        offset: &Value,
    ) -> std::result::Result<Option<bool>, String> {
        let mut requests = self.requests.lock();
        let matches = |(p, o): &(Value, Value)| p == partition && o == offset;
        let commit = requests.commit_after.iter().position(matches);
        let abort = requests.abort_after.iter().position(matches);
        match (commit, abort) {
            (Some(_), Some(_)) => Err(
                "Connector requested both commit and abort of same transaction for the same record"
                    .to_string(),
            ),
            (Some(i), None) => {
                requests.commit_after.swap_remove(i);
                Ok(Some(true))
            }
            (None, Some(i)) => {
                requests.abort_after.swap_remove(i);
                Ok(Some(false))
            }
            (None, None) => Ok(None),
        }
    }

    /// Whether any record-level request is waiting (most batches have none: no lookups).
    pub fn has_record_requests(&self) -> bool {
        let requests = self.requests.lock();
        !requests.commit_after.is_empty() || !requests.abort_after.is_empty()
    }
}

/// Whether a source connector can give exactly-once delivery with a config (Kafka's
/// `ExactlyOnceSupport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactlyOnceSupport {
    /// Its records and offsets can be written in one transaction and resumed exactly.
    Supported,
    /// Not with this config.
    Unsupported,
}

/// Whether a source connector can say where its transactions end (Kafka's
/// `ConnectorTransactionBoundaries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorTransactionBoundaries {
    /// Its tasks use the `TransactionContext`.
    Supported,
    /// They do not.
    Unsupported,
}

/// What every connector does (Kafka's `Connector`): describe and check its config, start,
/// split its work into task configs, stop.
pub trait Connector: Send + Sync {
    /// The connector's version.
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// The settings it accepts (a sink's `topics` / `topics.regex` are the runtime's).
    fn config(&self) -> ConfigDef;

    /// Checks `props`: by default against [`config`](Self::config).
    fn validate(&self, props: &Props) -> Validation {
        self.config().validate(props)
    }

    /// Starts with validated properties.
    fn start(&mut self, props: &Props, ctx: ConnectorContext) -> Result<()>;

    /// The properties of each task, at most `max_tasks` of them.
    fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>>;

    /// Stops.
    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A connector that reads from another system (Kafka's `SourceConnector`).
pub trait SourceConnector: Connector {
    /// A new, unstarted task (Kafka's `taskClass`).
    fn create_task(&self) -> Box<dyn SourceTask>;

    /// Whether it gives exactly-once delivery with `props`; None (the default) when it
    /// cannot tell, so `exactly.once.support=required` is refused (Kafka's
    /// `exactlyOnceSupport`).
    fn exactly_once_support(&self, _props: &Props) -> Option<ExactlyOnceSupport> {
        None
    }

    /// Whether its tasks can define transaction boundaries with `props`
    /// (`transaction.boundary=connector`); unsupported by default (Kafka's
    /// `canDefineTransactionBoundaries`).
    fn can_define_transaction_boundaries(
        &self,
        _props: &Props,
    ) -> Option<ConnectorTransactionBoundaries> {
        Some(ConnectorTransactionBoundaries::Unsupported)
    }
}

/// A task that reads records from another system (Kafka's `SourceTask`).
pub trait SourceTask: Send {
    /// Starts with the task's properties; `ctx` gives the committed offsets to resume from.
    fn start<'a>(
        &'a mut self,
        props: &'a Props,
        ctx: SourceTaskContext,
    ) -> BoxFuture<'a, Result<()>>;

    /// The next records (empty when there are none yet; the task should wait a little
    /// rather than return at once, as Kafka's tasks do).
    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>>;

    /// Called after the offsets of what it produced were committed.
    fn commit(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Stops.
    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A connector that writes topics into another system (Kafka's `SinkConnector`).
pub trait SinkConnector: Connector {
    /// A new, unstarted task (Kafka's `taskClass`).
    fn create_task(&self) -> Box<dyn SinkTask>;
}

/// Hands the runtime a record a sink task could not write (KIP-610's
/// `ErrantRecordReporter`): under `errors.tolerance=all` it is logged and sent to the dead
/// letter queue (its original bytes, with `__connect.errors.*` context headers when enabled)
/// and the task goes on; otherwise the future fails with "Tolerance exceeded", and the task
/// should fail with that error.
#[derive(Clone)]
pub struct ErrantRecordReporter {
    report: Arc<ReportFn>,
}

/// What reporting a record does.
type ReportFn =
    dyn Fn(SinkRecord, crate::ConnectError) -> BoxFuture<'static, Result<()>> + Send + Sync;

impl ErrantRecordReporter {
    /// A reporter that hands records to `report`.
    pub fn new(
        report: impl Fn(SinkRecord, crate::ConnectError) -> BoxFuture<'static, Result<()>>
            + Send
            + Sync
            + 'static,
    ) -> ErrantRecordReporter {
        ErrantRecordReporter {
            report: Arc::new(report),
        }
    }

    /// Reports `record`, which failed with `error`; done once the future is (the dead letter
    /// queue has it).
    pub fn report(
        &self,
        record: &SinkRecord,
        error: crate::ConnectError,
    ) -> BoxFuture<'static, Result<()>> {
        (self.report)(record.clone(), error)
    }
}

/// What a sink task may ask of the runtime (Kafka's `SinkTaskContext`).
#[derive(Clone, Default)]
pub struct SinkTaskContext {
    errant: Option<ErrantRecordReporter>,
}

impl SinkTaskContext {
    /// A context with an errant record reporter.
    pub fn new(errant: Option<ErrantRecordReporter>) -> SinkTaskContext {
        SinkTaskContext { errant }
    }

    /// The reporter of records that cannot be written, when the runtime gives one.
    pub fn errant_record_reporter(&self) -> Option<&ErrantRecordReporter> {
        self.errant.as_ref()
    }
}

/// A task that writes records into another system (Kafka's `SinkTask`).
pub trait SinkTask: Send {
    /// Called once before `start` with what the task may ask of the runtime (Kafka's
    /// `initialize`).
    fn initialize(&mut self, _context: SinkTaskContext) {}

    /// Starts with the task's properties.
    fn start<'a>(&'a mut self, props: &'a Props) -> BoxFuture<'a, Result<()>>;

    /// Takes records to write (they may be buffered until `flush`). A
    /// `ConnectError::Retriable` (Kafka's `RetriableException`) asks for the same records
    /// again: the worker pauses the task's partitions and calls `put` with them once more
    /// until it succeeds, so a task that fails part-way must not keep what it took of them.
    fn put<'a>(&'a mut self, records: &'a [SinkRecord]) -> BoxFuture<'a, Result<()>>;

    /// Makes everything `put` so far durable; `offsets` are the next offsets to be committed.
    fn flush<'a>(
        &'a mut self,
        offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<()>>;

    /// The offsets that may be committed now: by default it flushes and returns `offsets`
    /// (Kafka's `preCommit`). A task that writes asynchronously returns less.
    fn pre_commit<'a>(
        &'a mut self,
        offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>>> {
        Box::pin(async move {
            self.flush(offsets).await?;
            Ok(offsets.clone())
        })
    }

    /// Stops.
    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Properties from pairs, for tests.
#[cfg(test)]
pub(crate) fn test_props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn transaction_requests_name_records_and_refuse_both_ends_at_once() {
        let record = |n: i64| {
            SourceRecord::new(
                Value::string_map([("file", Value::from("a"))]),
                Value::string_map([("position", Value::Int64(n))]),
                "t",
                None,
                Value::Int64(n),
            )
        };
        let context = TransactionContext::default();
        assert!(!context.has_record_requests());
        context.commit_transaction_after(&record(3));
        context.abort_transaction_after(&record(5));
        context.commit_transaction();
        let at = |n: i64| {
            let r = record(n);
            context.take_for_record(&r.source_partition, &r.source_offset)
        };
        assert_eq!(at(1), Ok(None));
        assert_eq!(at(3), Ok(Some(true)));
        assert_eq!(at(3), Ok(None), "a request is acted on once");
        assert_eq!(at(5), Ok(Some(false)));
        let batch = context.take();
        assert!(batch.commit_batch && !batch.abort_batch);
        assert!(!context.take().commit_batch, "taken");
        context.commit_transaction_after(&record(7));
        context.abort_transaction_after(&record(7));
        assert!(at(7).is_err());
    }

    use super::test_props as props;
    use super::*;

    #[test]
    fn config_defs_report_each_settings_errors() {
        let def = ConfigDef::new()
            .define(ConfigKey::string("file", "The file.").required())
            .define(ConfigKey::int("batch.size", "Lines per poll.").default_value("2000"))
            .define(ConfigKey::boolean("verbose", "Say more."));
        let ok = def.validate(&props(&[("file", "/tmp/x")]));
        assert_eq!(ok.error_count(), 0);
        assert_eq!(ok.values[1].value.as_deref(), Some("2000"));
        let bad = def.validate(&props(&[("batch.size", "many"), ("verbose", "yes")]));
        assert_eq!(bad.error_count(), 3);
        let messages = bad.messages().join("\n");
        assert!(
            messages.contains("file: Missing required configuration \"file\""),
            "{messages}"
        );
        assert!(
            messages.contains("batch.size: Invalid value many"),
            "{messages}"
        );
        assert!(
            messages.contains("verbose: Invalid value yes"),
            "{messages}"
        );
        let empty = def.validate(&props(&[("file", " ")]));
        assert_eq!(empty.error_count(), 1);
    }

    #[test]
    fn contexts_pass_requests_and_offsets() {
        let seen = Arc::new(parking_lot_free::Seen::default());
        let sink = seen.clone();
        let ctx = ConnectorContext::new(move |e| sink.push(e));
        ctx.request_task_reconfiguration();
        ctx.raise_error("broken");
        assert_eq!(
            seen.take(),
            vec![
                ConnectorEvent::RequestTaskReconfiguration,
                ConnectorEvent::RaiseError("broken".into())
            ]
        );
        let partition = Value::string_map([("filename", Value::from("a.txt"))]);
        let known = partition.clone();
        let task = SourceTaskContext::new(move |p| {
            (p == &known).then(|| Value::string_map([("position", Value::Int64(7))]))
        });
        assert_eq!(
            task.offset(&partition)
                .and_then(|o| o.map_get("position").cloned()),
            Some(Value::Int64(7))
        );
        assert_eq!(task.offset(&Value::Null), None);
    }

    mod parking_lot_free {
        use super::super::ConnectorEvent;
        use std::sync::Mutex;

        #[derive(Default)]
        pub struct Seen(Mutex<Vec<ConnectorEvent>>);

        impl Seen {
            pub fn push(&self, event: ConnectorEvent) {
                if let Ok(mut events) = self.0.lock() {
                    events.push(event);
                }
            }
            pub fn take(&self) -> Vec<ConnectorEvent> {
                self.0
                    .lock()
                    .map(|mut e| std::mem::take(&mut *e))
                    .unwrap_or_default()
            }
        }
    }
}
