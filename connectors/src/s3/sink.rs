//! The S3 sink: records into objects `<topics.dir>/<topic>/<encoded partition>/
//! <topic>+<kafka partition>+<start offset>.<ext>`, as Confluent's sink names them.
//!
//! Each Kafka partition has a set of open files (one per encoded partition). The set is
//! written out together — every file uploaded, then the offset after its last record
//! becomes committable — when it holds `flush.size` records, when a record's time is
//! `rotate.interval.ms` past the set's first record's, when the wall clock passes a
//! `rotate.schedule.interval.ms` boundary, or when a record's schema changes (Avro, Parquet).
//! Offsets are committed only after the upload: a task that crashes starts again from the
//! last committed offset and, files being cut by record counts and record times, writes the
//! same objects with the same content again (`rotate.schedule.interval.ms`, which follows the
//! wall clock, is the exception, as in Confluent's).

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;

use sluice_connect::connector::{
    BoxFuture, ConfigDef, ConfigKey, ConfigType, Connector, ConnectorContext, ErrantRecordReporter,
    Props, SinkConnector, SinkRecord, SinkTask, SinkTaskContext, TopicPartition, Validation,
};
use sluice_connect::{ConnectError, Result};

use super::format::{FileBuilder, Format, ParquetCodec};
use super::partitioner::{self, Partitioner};
use super::store::{self, number, Store};
use super::{
    check_ignored, file_name, Compression, BYTEARRAY_SEPARATOR, COMPRESSION, FILE_DELIM,
    FORMAT_CLASS, PAD_WIDTH, PARQUET_CODEC, STORAGE_CLASS, TOPICS_DIR,
};

const FLUSH_SIZE: &str = "flush.size";
const ROTATE_INTERVAL_MS: &str = "rotate.interval.ms";
const ROTATE_SCHEDULE_INTERVAL_MS: &str = "rotate.schedule.interval.ms";
const NULL_VALUES: &str = "behavior.on.null.values";

fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::string(store::BUCKET, "The S3 bucket.").required())
        .define(ConfigKey::string(store::REGION, "The AWS region to be used by the connector.").default_value("us-west-2"))
        .define(ConfigKey::string(store::STORE_URL, "The object store's URL, for S3-compatible stores (MinIO, Ceph, moto)."))
        .define(ConfigKey::string(store::ACCESS_KEY, "The AWS access key ID (else the environment's)."))
        .define(ConfigKey::new(store::SECRET_KEY, ConfigType::Password, "The AWS secret access key (else the environment's)."))
        .define(ConfigKey::boolean(store::PATH_STYLE, "Path-style requests (bucket in the path), as S3-compatible stores need.").default_value("true"))
        .define(ConfigKey::int(store::PART_SIZE, "The part size of S3 multipart uploads.").default_value("26214400"))
        .define(ConfigKey::int(store::RETRIES, "How many times a failed S3 request is retried.").default_value("3"))
        .define(ConfigKey::long(store::RETRY_BACKOFF_MS, "How long to wait before retrying an S3 request.").default_value("200"))
        .define(ConfigKey::string(TOPICS_DIR, "Top level directory to store the data ingested from Kafka.").default_value("topics"))
        .define(ConfigKey::string(super::DIRECTORY_DELIM, "Directory delimiter pattern (only / is supported).").default_value("/"))
        .define(ConfigKey::string(FILE_DELIM, "File delimiter pattern.").default_value("+"))
        .define(ConfigKey::int(PAD_WIDTH, "Width to zero-pad offsets in file names to.").default_value("10"))
        .define(ConfigKey::int(FLUSH_SIZE, "Number of records written to store before invoking file commits.").required())
        .define(ConfigKey::long(ROTATE_INTERVAL_MS, "The time interval in milliseconds to invoke file commits, by the records' time.").default_value("-1"))
        .define(ConfigKey::long(ROTATE_SCHEDULE_INTERVAL_MS, "The time interval in milliseconds to periodically invoke file commits, by the wall clock.").default_value("-1"))
        .define(ConfigKey::new(FORMAT_CLASS, ConfigType::Class, "The format class to use when writing data to the store.").required())
        .define(ConfigKey::new(STORAGE_CLASS, ConfigType::Class, "The underlying storage layer.").default_value("io.confluent.connect.s3.storage.S3Storage"))
        .define(ConfigKey::new(partitioner::PARTITIONER_CLASS, ConfigType::Class, "The partitioner to use when writing data to the store.").default_value("io.confluent.connect.storage.partitioner.DefaultPartitioner"))
        .define(ConfigKey::list(partitioner::FIELD_NAME, "The name of the partitioning field when FieldPartitioner is used.").default_value(""))
        .define(ConfigKey::string(partitioner::PATH_FORMAT, "The output directory pattern of a time-based partitioner (Joda-style)."))
        .define(ConfigKey::long(partitioner::DURATION_MS, "The duration of a partition in milliseconds, used by TimeBasedPartitioner.").default_value("-1"))
        .define(ConfigKey::string(partitioner::LOCALE, "The locale to use when partitioning with TimeBasedPartitioner."))
        .define(ConfigKey::string(partitioner::TIMEZONE, "The timezone to use when partitioning with TimeBasedPartitioner (UTC or a fixed offset)."))
        .define(ConfigKey::string(partitioner::EXTRACTOR, "The extractor that gets the timestamp for records: Wallclock, Record, RecordField.").default_value("Wallclock"))
        .define(ConfigKey::string(partitioner::TIMESTAMP_FIELD, "The record field to be used as timestamp by the timestamp extractor.").default_value("timestamp"))
        .define(ConfigKey::string(PARQUET_CODEC, "The Parquet compression codec: none, snappy, zstd.").default_value("snappy"))
        .define(ConfigKey::string(COMPRESSION, "Compression type for files written to S3 (JSON and bytes): none, gzip.").default_value("none"))
        .define(ConfigKey::string(BYTEARRAY_SEPARATOR, "String inserted between records with ByteArrayFormat.").default_value("\\n"))
        .define(ConfigKey::string(NULL_VALUES, "How to handle records with a null value: fail, ignore.").default_value("fail"))
}

/// The sink's settings.
#[derive(Debug, Clone)]
struct SinkConfig {
    topics_dir: String,
    file_delim: String,
    pad: usize,
    flush_size: usize,
    rotate_interval: Option<i64>,
    rotate_schedule: Option<i64>,
    format: Format,
    codec: ParquetCodec,
    compression: Compression,
    separator: Vec<u8>,
    partitioner: Partitioner,
    ignore_nulls: bool,
}

impl SinkConfig {
    fn parse(props: &Props) -> Result<SinkConfig> {
        let common = super::CommonConfig::parse(props)?;
        let flush_size = number(props, FLUSH_SIZE, 0)?;
        if flush_size < 1 {
            return Err(ConnectError::config(
                FLUSH_SIZE,
                &flush_size.to_string(),
                "Missing required configuration \"flush.size\", or below 1",
            ));
        }
        let positive = |key: &str| -> Result<Option<i64>> {
            Ok(Some(number(props, key, -1)?).filter(|n| *n > 0))
        };
        let ignore_nulls = match props
            .get(NULL_VALUES)
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("fail") => false,
            Some("ignore") => true,
            Some(other) => return Err(ConnectError::config(
                NULL_VALUES,
                other,
                "supported: fail, ignore (write, which keeps tombstones in separate files, is not)",
            )),
        };
        let rotate_schedule = positive(ROTATE_SCHEDULE_INTERVAL_MS)?;
        if rotate_schedule.is_some()
            && props
                .get(partitioner::TIMEZONE)
                .is_none_or(|s| s.trim().is_empty())
        {
            return Err(ConnectError::config(
                ROTATE_SCHEDULE_INTERVAL_MS,
                "",
                "rotate.schedule.interval.ms needs a timezone",
            ));
        }
        Ok(SinkConfig {
            topics_dir: common.topics_dir,
            file_delim: common.file_delim,
            pad: common.pad,
            flush_size: flush_size as usize,
            rotate_interval: positive(ROTATE_INTERVAL_MS)?,
            rotate_schedule,
            format: common.format,
            codec: common.codec,
            compression: common.compression,
            separator: common.separator,
            partitioner: Partitioner::from_props(props)?,
            ignore_nulls,
        })
    }
}

/// `io.confluent.connect.s3.S3SinkConnector`.
#[derive(Default)]
pub struct S3SinkConnector;

impl S3SinkConnector {
    /// A connector, not started.
    pub fn new() -> S3SinkConnector {
        S3SinkConnector
    }
}

impl Connector for S3SinkConnector {
    fn config(&self) -> ConfigDef {
        config_def()
    }

    fn validate(&self, props: &Props) -> Validation {
        let mut validation = config_def().validate(props);
        if validation.error_count() == 0 {
            if let Err(ConnectError::Config { key, reason, .. }) =
                SinkConfig::parse(props).and_then(|_| Store::from_props(props).map(drop))
            {
                validation.add_error(&key, reason);
            }
        }
        validation
    }

    fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<()> {
        SinkConfig::parse(props)?;
        Store::from_props(props)?;
        check_ignored(props, "S3 sink");
        Ok(())
    }

    fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![props.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for S3SinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(S3SinkTask::new())
    }
}

/// A Kafka partition's open files.
#[derive(Default)]
struct PartitionFiles {
    /// Encoded partition → (start offset, file).
    files: BTreeMap<String, (i64, FileBuilder)>,
    /// Records in the open files.
    count: usize,
    /// The offset the next record should have (a lower one is a redelivery).
    next_offset: Option<i64>,
    /// The time of the set's first record (`rotate.interval.ms`).
    first_time: Option<i64>,
    /// The wall clock boundary at which the set is written (`rotate.schedule.interval.ms`).
    schedule_deadline: Option<i64>,
    /// The offset after the last record written out: what may be committed.
    committed: Option<i64>,
}

/// `io.confluent.connect.s3.S3SinkTask`.
#[derive(Default)]
pub struct S3SinkTask {
    config: Option<SinkConfig>,
    store: Option<Store>,
    partitions: HashMap<(String, i32), PartitionFiles>,
    reporter: Option<ErrantRecordReporter>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl S3SinkTask {
    /// A task, not started.
    pub fn new() -> S3SinkTask {
        S3SinkTask::default()
    }

    fn parts(&self) -> Result<(&SinkConfig, &Store)> {
        match (&self.config, &self.store) {
            (Some(c), Some(s)) => Ok((c, s)),
            _ => Err(ConnectError::Task(
                "S3 sink task used before it started".into(),
            )),
        }
    }

    /// Uploads every open file of `tp`, then marks its offsets committable.
    async fn write_out(&mut self, tp: &(String, i32)) -> Result<()> {
        let (config, store) = self.parts()?;
        let (config, store) = (config.clone(), store.clone());
        let Some(files) = self.partitions.get_mut(tp) else {
            return Ok(());
        };
        let open = std::mem::take(&mut files.files);
        for (encoded, (start, builder)) in open {
            let key = format!(
                "{}/{}/{}/{}",
                config.topics_dir,
                tp.0,
                encoded,
                file_name(
                    &tp.0,
                    tp.1,
                    start,
                    &config.file_delim,
                    config.pad,
                    &(config.format.extension(config.codec)
                        + config.compression.extension(config.format))
                )
            );
            let bytes = builder.finish()?;
            let bytes = config.compression.compress(config.format, bytes)?;
            tracing::debug!(%key, bytes = bytes.len(), "S3 sink: writing a file");
            store.put(&key, bytes).await?;
        }
        files.count = 0;
        files.first_time = None;
        files.schedule_deadline = None;
        files.committed = files.next_offset;
        Ok(())
    }

    async fn put_records(&mut self, records: &[SinkRecord]) -> Result<()> {
        let config = self.parts()?.0.clone();
        for record in records {
            let tp = (
                record.record.topic.clone(),
                record.record.kafka_partition.unwrap_or(0),
            );
            let offset = record.kafka_offset;
            let files = self.partitions.entry(tp.clone()).or_default();
            if files.next_offset.is_some_and(|next| offset < next) {
                // Delivered again (a rebalance, a restart of the consumer): the open files
                // start over from here, as the offsets committed say.
                tracing::info!(topic = %tp.0, partition = tp.1, offset, "S3 sink: records delivered again; the open files start over");
                files.files.clear();
                files.count = 0;
                files.first_time = None;
                files.schedule_deadline = None;
            }
            if record.record.value.is_null() {
                if config.ignore_nulls {
                    files.next_offset = Some(offset + 1);
                    if files.count == 0 {
                        files.committed = Some(offset + 1);
                    }
                    continue;
                }
                let err = ConnectError::Data(format!(
                    "the record at (topic='{}',partition={},offset={offset}) has a null value; set behavior.on.null.values=ignore to skip such records",
                    tp.0, tp.1
                ));
                self.report(record, err).await?;
                continue;
            }
            let now = now_ms();
            let time = match config.partitioner.time_of(record, now) {
                Ok(t) => t.or(record.record.timestamp).unwrap_or(now),
                Err(err) => {
                    self.report(record, err).await?;
                    continue;
                }
            };
            let encoded = match config.partitioner.encode(record, now) {
                Ok(e) => e,
                Err(err) => {
                    self.report(record, err).await?;
                    continue;
                }
            };
            let files = self.partitions.entry(tp.clone()).or_default();
            let rotate_time = match (config.rotate_interval, files.first_time) {
                (Some(interval), Some(first)) => time - first >= interval,
                _ => false,
            };
            let rotate_schema = files
                .files
                .get(&encoded)
                .is_some_and(|(_, f)| !f.accepts(record.record.value_schema.as_ref()));
            if files.count > 0 && (rotate_time || rotate_schema) {
                self.write_out(&tp).await?;
            }
            let files = self.partitions.entry(tp.clone()).or_default();
            let (_, file) = files.files.entry(encoded).or_insert_with(|| {
                (
                    offset,
                    FileBuilder::new(config.format, config.codec, &config.separator),
                )
            });
            if let Err(err) = file.push(
                &tp.0,
                record.record.value_schema.as_ref(),
                &record.record.value,
            ) {
                files.next_offset = Some(offset + 1);
                self.report(record, err).await?;
                continue;
            }
            files.count += 1;
            files.next_offset = Some(offset + 1);
            if files.first_time.is_none() {
                files.first_time = Some(time);
                files.schedule_deadline = config
                    .rotate_schedule
                    .map(|every| (now.div_euclid(every) + 1) * every);
            }
            if files.count >= config.flush_size {
                self.write_out(&tp).await?;
            }
        }
        self.rotate_on_schedule().await
    }

    /// Writes out the sets whose wall clock boundary has passed.
    async fn rotate_on_schedule(&mut self) -> Result<()> {
        let now = now_ms();
        let due: Vec<(String, i32)> = self
            .partitions
            .iter()
            .filter(|(_, f)| f.count > 0 && f.schedule_deadline.is_some_and(|d| now >= d))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            self.write_out(&tp).await?;
        }
        Ok(())
    }

    async fn report(&self, record: &SinkRecord, err: ConnectError) -> Result<()> {
        match &self.reporter {
            Some(reporter) => reporter.report(record, err).await,
            None => Err(err),
        }
    }
}

impl SinkTask for S3SinkTask {
    fn initialize(&mut self, context: SinkTaskContext) {
        self.reporter = context.errant_record_reporter().cloned();
    }

    fn start<'a>(&'a mut self, props: &'a Props) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let config = SinkConfig::parse(props)?;
            let store = Store::from_props(props)?;
            // A missing bucket, a wrong endpoint or credentials fail the task now, by name.
            store.check().await?;
            self.config = Some(config);
            self.store = Some(store);
            Ok(())
        })
    }

    fn put<'a>(&'a mut self, records: &'a [SinkRecord]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_records(records))
    }

    /// Files are written when they rotate, not on flush: nothing to do.
    fn flush<'a>(
        &'a mut self,
        _offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Only what is in written files may be committed.
    fn pre_commit<'a>(
        &'a mut self,
        offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>>> {
        Box::pin(async move {
            self.rotate_on_schedule().await?;
            Ok(offsets
                .keys()
                .filter_map(|tp| {
                    let files = self.partitions.get(&(tp.topic.to_string(), tp.partition))?;
                    files.committed.map(|offset| (tp.clone(), offset))
                })
                .collect())
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // Open files are dropped: their records are read again from the committed offsets.
            self.partitions.clear();
            Ok(())
        })
    }
}

/// Gzip (`s3.compression.type=gzip`).
pub(super) fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| ConnectError::Data(format!("gzip: {e}")))
}
