//! The S3 source: the files the S3 sink wrote, read back into topics (each record to the
//! Kafka partition it came from), file after file in start-offset order for each topic
//! partition, resuming from the last file and record delivered.
//!
//! Source partition `{"topic": <topic>, "partition": <p>}`; offset `{"file.start": <the
//! file's start offset>, "records": <records of it delivered>}`.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read as _;
use std::time::Duration;

use sluice_connect::connector::{
    parse_list, BoxFuture, ConfigDef, ConfigKey, ConfigType, Connector, ConnectorContext,
    ExactlyOnceSupport, Props, SourceConnector, SourceRecord, SourceTask, SourceTaskContext,
    Validation,
};
use sluice_connect::data::Value;
use sluice_connect::{ConnectError, Result};
use tokio::time::Instant;

use super::format::read_file;
use super::store::{self, number, Store};
use super::{parse_file_name, CommonConfig, FILE_DELIM, FORMAT_CLASS, TOPICS_DIR};

const POLL_INTERVAL_MS: &str = "s3.poll.interval.ms";
const BATCH_MAX: &str = "record.batch.max.size";
const TOPIC_REGEX_LIST: &str = "topic.regex.list";
const TASK_INDEX: &str = "task.index";
const TASK_COUNT: &str = "task.count";

const TOPIC_KEY: &str = "topic";
const PARTITION_KEY: &str = "partition";
const FILE_START_KEY: &str = "file.start";
const RECORDS_KEY: &str = "records";

/// How long an idle poll waits before it returns no records.
const IDLE_POLL: Duration = Duration::from_secs(1);

fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::string(store::BUCKET, "The S3 bucket.").required())
        .define(ConfigKey::string(store::REGION, "The AWS region.").default_value("us-west-2"))
        .define(ConfigKey::string(store::STORE_URL, "The object store's URL, for S3-compatible stores."))
        .define(ConfigKey::string(store::ACCESS_KEY, "The AWS access key ID."))
        .define(ConfigKey::new(store::SECRET_KEY, ConfigType::Password, "The AWS secret access key."))
        .define(ConfigKey::boolean(store::PATH_STYLE, "Path-style requests.").default_value("true"))
        .define(ConfigKey::string(TOPICS_DIR, "The directory the S3 sink wrote to.").default_value("topics"))
        .define(ConfigKey::string(FILE_DELIM, "File delimiter pattern.").default_value("+"))
        .define(ConfigKey::new(FORMAT_CLASS, ConfigType::Class, "The format of the files.").required())
        .define(ConfigKey::long(POLL_INTERVAL_MS, "How often to look for new files.").default_value("60000"))
        .define(ConfigKey::int(BATCH_MAX, "The most records one poll returns.").default_value("200"))
        .define(ConfigKey::list(TOPIC_REGEX_LIST, "Pairs target:regex: the files of topics whose name matches regex go to topic target (by default, to the topic they came from).").default_value(""))
}

/// The source's settings.
#[derive(Debug, Clone)]
struct SourceConfig {
    common: CommonConfig,
    poll_interval: Duration,
    batch_max: usize,
    /// (target topic, regex on the original topic).
    routes: Vec<(String, regex::Regex)>,
}

impl SourceConfig {
    fn parse(props: &Props) -> Result<SourceConfig> {
        let common = CommonConfig::parse(props)?;
        let mut routes = Vec::new();
        for pair in parse_list(
            props
                .get(TOPIC_REGEX_LIST)
                .map(String::as_str)
                .unwrap_or(""),
        ) {
            let (target, pattern) = pair.split_once(':').ok_or_else(|| {
                ConnectError::config(TOPIC_REGEX_LIST, &pair, "expected target:regex pairs")
            })?;
            let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| ConnectError::config(TOPIC_REGEX_LIST, pattern, e.to_string()))?;
            routes.push((target.to_string(), regex));
        }
        let batch_max = number(props, BATCH_MAX, 200)?;
        if batch_max < 1 {
            return Err(ConnectError::config(
                BATCH_MAX,
                &batch_max.to_string(),
                "Value must be at least 1",
            ));
        }
        Ok(SourceConfig {
            common,
            poll_interval: Duration::from_millis(
                number(props, POLL_INTERVAL_MS, 60_000)?.max(10) as u64
            ),
            batch_max: batch_max as usize,
            routes,
        })
    }

    /// Where records of `topic` go (None: not restored).
    fn target(&self, topic: &str) -> Option<String> {
        if self.routes.is_empty() {
            return Some(topic.to_string());
        }
        self.routes
            .iter()
            .find(|(_, regex)| regex.is_match(topic))
            .map(|(target, _)| target.clone())
    }
}

/// `io.confluent.connect.s3.source.S3SourceConnector` (backup and restore): `tasks.max`
/// tasks share the topic partitions found in the bucket.
#[derive(Default)]
pub struct S3SourceConnector;

impl S3SourceConnector {
    /// A connector, not started.
    pub fn new() -> S3SourceConnector {
        S3SourceConnector
    }
}

impl Connector for S3SourceConnector {
    fn config(&self) -> ConfigDef {
        config_def()
    }

    fn validate(&self, props: &Props) -> Validation {
        let mut validation = config_def().validate(props);
        if validation.error_count() == 0 {
            if let Err(ConnectError::Config { key, reason, .. }) =
                SourceConfig::parse(props).and_then(|_| Store::from_props(props).map(drop))
            {
                validation.add_error(&key, reason);
            }
        }
        validation
    }

    fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<()> {
        SourceConfig::parse(props)?;
        Store::from_props(props)?;
        super::check_ignored(props, "S3 source");
        Ok(())
    }

    fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        let count = max_tasks.max(1);
        Ok((0..count)
            .map(|index| {
                let mut task = props.clone();
                task.insert(TASK_INDEX.into(), index.to_string());
                task.insert(TASK_COUNT.into(), count.to_string());
                task
            })
            .collect())
    }
}

impl SourceConnector for S3SourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(S3SourceTask::new())
    }

    /// Files and positions in them are re-read exactly.
    fn exactly_once_support(&self, _props: &Props) -> Option<ExactlyOnceSupport> {
        Some(ExactlyOnceSupport::Supported)
    }
}

/// Where a topic partition's restore stands.
#[derive(Debug, Clone, Default)]
struct Position {
    /// The start offset of the file being (or last) read.
    file_start: Option<i64>,
    /// Records of that file delivered.
    records: usize,
    /// Whether that file was delivered whole.
    done: bool,
}

/// `io.confluent.connect.s3.source.S3SourceTask`.
#[derive(Default)]
pub struct S3SourceTask {
    config: Option<SourceConfig>,
    store: Option<Store>,
    ctx: Option<SourceTaskContext>,
    index: usize,
    count: usize,
    positions: BTreeMap<(String, i32), Position>,
    pending: VecDeque<SourceRecord>,
    next_listing: Option<Instant>,
    /// The last listing.
    files: Files,
}

/// Files by topic partition, then start offset (several: a field or time partitioner's).
type Files = BTreeMap<(String, i32), BTreeMap<i64, Vec<String>>>;

impl S3SourceTask {
    /// A task, not started.
    pub fn new() -> S3SourceTask {
        S3SourceTask::default()
    }

    fn mine(&self, topic: &str, partition: i32) -> bool {
        let hash = topic.bytes().fold(partition as u64, |h, b| {
            h.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        (hash % self.count.max(1) as u64) as usize == self.index
    }

    fn position(&mut self, topic: &str, partition: i32) -> &mut Position {
        let ctx = self.ctx.clone();
        self.positions
            .entry((topic.to_string(), partition))
            .or_insert_with(|| {
                let committed = ctx.and_then(|ctx| {
                    ctx.offset(&Value::string_map([
                        (TOPIC_KEY, Value::from(topic)),
                        (PARTITION_KEY, Value::Int32(partition)),
                    ]))
                });
                Position {
                    file_start: committed
                        .as_ref()
                        .and_then(|o| o.map_get(FILE_START_KEY))
                        .and_then(Value::as_i64),
                    records: committed
                        .as_ref()
                        .and_then(|o| o.map_get(RECORDS_KEY))
                        .and_then(Value::as_i64)
                        .unwrap_or(0) as usize,
                    done: false,
                }
            })
    }

    /// Lists the bucket: the files of this task's topic partitions, by start offset.
    async fn refresh(&mut self) -> Result<()> {
        let (Some(config), Some(store)) = (self.config.clone(), self.store.clone()) else {
            return Err(ConnectError::Task(
                "S3 source task polled before it started".into(),
            ));
        };
        let prefix = format!("{}/", config.common.topics_dir);
        let objects = store.list(&prefix).await?;
        let mut files: Files = BTreeMap::new();
        for (key, _) in objects {
            let name = key.rsplit('/').next().unwrap_or(&key);
            let Some((topic, partition, start)) = parse_file_name(name, &config.common.file_delim)
            else {
                continue;
            };
            if !self.mine(&topic, partition) || config.target(&topic).is_none() {
                continue;
            }
            files
                .entry((topic, partition))
                .or_default()
                .entry(start)
                .or_default()
                .push(key);
        }
        for keys in files
            .values_mut()
            .flat_map(|by_start| by_start.values_mut())
        {
            keys.sort();
        }
        self.files = files;
        Ok(())
    }

    /// Reads the next listed file of some topic partition into `pending`; false when there
    /// is none.
    async fn read_next_file(&mut self) -> Result<bool> {
        let (Some(config), Some(store)) = (self.config.clone(), self.store.clone()) else {
            return Err(ConnectError::Task(
                "S3 source task polled before it started".into(),
            ));
        };
        let files = self.files.clone();
        for ((topic, partition), by_start) in files {
            let position = self.position(&topic, partition).clone();
            // The file being read, if not done, else the first after it.
            let next = by_start
                .iter()
                .find(|(start, _)| match position.file_start {
                    None => true,
                    Some(at) => **start > at || (**start == at && !position.done),
                });
            let Some((start, keys)) = next else {
                continue;
            };
            let (start, keys) = (*start, keys.clone());
            let skip = if Some(start) == position.file_start {
                position.records
            } else {
                0
            };
            let mut records = Vec::new();
            // Files of one start offset (a field or time partitioner) are read in key order.
            for key in &keys {
                let bytes = store.get(key).await?;
                // Gzipped files (s3.compression.type=gzip) end in .gz.
                let bytes = if key.ends_with(".gz") {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut out)
                        .map_err(|e| ConnectError::Data(format!("{key}: not gzip: {e}")))?;
                    bytes::Bytes::from(out)
                } else {
                    bytes
                };
                records.extend(
                    read_file(config.common.format, bytes, &config.common.separator)
                        .map_err(|e| ConnectError::Data(format!("{key}: {e}")))?,
                );
            }
            let total = records.len();
            let target = config.target(&topic).unwrap_or_else(|| topic.clone());
            let partition_value = Value::string_map([
                (TOPIC_KEY, Value::from(topic.as_str())),
                (PARTITION_KEY, Value::Int32(partition)),
            ]);
            for (i, (schema, value)) in records.into_iter().enumerate().skip(skip) {
                let mut record = SourceRecord::new(
                    partition_value.clone(),
                    Value::string_map([
                        (FILE_START_KEY, Value::Int64(start)),
                        (RECORDS_KEY, Value::Int64(i as i64 + 1)),
                    ]),
                    &target,
                    schema,
                    value,
                );
                record.record.kafka_partition = Some(partition);
                self.pending.push_back(record);
            }
            let position = self.position(&topic, partition);
            position.file_start = Some(start);
            position.records = total;
            position.done = true;
            if total > skip {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn poll_files(&mut self) -> Result<Vec<SourceRecord>> {
        let Some(config) = self.config.clone() else {
            return Err(ConnectError::Task(
                "S3 source task polled before it started".into(),
            ));
        };
        let deadline = Instant::now() + IDLE_POLL;
        loop {
            if !self.pending.is_empty() {
                let n = config.batch_max.min(self.pending.len());
                return Ok(self.pending.drain(..n).collect());
            }
            if self.read_next_file().await? {
                continue;
            }
            let due = self.next_listing.is_none_or(|at| Instant::now() >= at);
            if due {
                self.refresh().await?;
                self.next_listing = Some(Instant::now() + config.poll_interval);
                if self.read_next_file().await? {
                    continue;
                }
            }
            let wake = self.next_listing.map_or(deadline, |at| at.min(deadline));
            if wake >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Ok(Vec::new());
            }
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl SourceTask for S3SourceTask {
    fn start<'a>(
        &'a mut self,
        props: &'a Props,
        ctx: SourceTaskContext,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let config = SourceConfig::parse(props)?;
            let store = Store::from_props(props)?;
            store.check().await?;
            self.index = number(props, TASK_INDEX, 0)?.max(0) as usize;
            self.count = number(props, TASK_COUNT, 1)?.max(1) as usize;
            self.config = Some(config);
            self.store = Some(store);
            self.ctx = Some(ctx);
            Ok(())
        })
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>> {
        Box::pin(self.poll_files())
    }
}
