//! `FileStreamSource`: one task tailing one file into one topic.

use std::io::{ErrorKind, SeekFrom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_connect::connector::{
    BoxFuture, ConfigDef, ConfigKey, Connector, ConnectorContext, ExactlyOnceSupport, Importance,
    Props, SourceConnector, SourceRecord, SourceTask, SourceTaskContext, Validation,
};
use sluice_connect::data::{Schema, SchemaRef, Type, Value};
use sluice_connect::{ConnectError, Result};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;

use super::{
    check_defined, required_string, DEFAULT_TASK_BATCH_SIZE, FILE_CONFIG, TASK_BATCH_SIZE_CONFIG,
    TOPIC_CONFIG,
};

/// How long a poll waits for new lines (or for the file to appear) before it returns no
/// records: Kafka's one second.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a waiting poll looks at the file again.
const RECHECK_INTERVAL: Duration = Duration::from_millis(20);

/// How much is read from the file at once.
const READ_CHUNK: usize = 64 * 1024;

/// The source partition key (Kafka's).
const FILENAME_FIELD: &str = "filename";

/// The source offset key (Kafka's).
const POSITION_FIELD: &str = "position";

const SINGLE_TOPIC: &str =
    "'topic' in FileStreamSourceConnector configuration requires definition of a single topic";

/// The source's settings, checked.
#[derive(Debug, Clone, PartialEq)]
struct SourceConfig {
    file: String,
    topic: String,
    batch_size: usize,
}

impl SourceConfig {
    fn parse(props: &Props) -> Result<SourceConfig> {
        check_defined(&source_config_def(), props)?;
        let file = required_string(props, FILE_CONFIG)?.trim().to_string();
        let topic = required_string(props, TOPIC_CONFIG)?.trim().to_string();
        if topic.contains(',') {
            return Err(ConnectError::config(TOPIC_CONFIG, &topic, SINGLE_TOPIC));
        }
        let batch_size = match props.get(TASK_BATCH_SIZE_CONFIG) {
            None => DEFAULT_TASK_BATCH_SIZE,
            Some(raw) => parse_batch_size(raw)
                .map_err(|reason| ConnectError::config(TASK_BATCH_SIZE_CONFIG, raw, reason))?,
        };
        Ok(SourceConfig {
            file,
            topic,
            batch_size,
        })
    }
}

/// `batch.size` as a count of lines, or why it is not one.
fn parse_batch_size(raw: &str) -> std::result::Result<usize, String> {
    match raw.trim().parse::<i32>() {
        Ok(n) if n >= 1 => Ok(n as usize),
        Ok(_) => Err("Value must be at least 1".to_string()),
        Err(_) => Err(format!(
            "Invalid value {raw} for configuration {TASK_BATCH_SIZE_CONFIG}: Not a number of type INT"
        )),
    }
}

fn source_config_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::string(
                FILE_CONFIG,
                "Source filename. (Kafka reads standard input when it is unset; Sluice requires a file.)",
            )
            .required(),
        )
        .define(ConfigKey::string(TOPIC_CONFIG, "The topic to publish data to").required())
        .define(
            ConfigKey::int(
                TASK_BATCH_SIZE_CONFIG,
                "The maximum number of records the source task can read from the file each time it is polled",
            )
            .default_value(&DEFAULT_TASK_BATCH_SIZE.to_string())
            .importance(Importance::Low),
        )
}

/// The source partition of `file`: `{"filename": file}`.
fn partition_of(file: &str) -> Value {
    Value::string_map([(FILENAME_FIELD, Value::from(file))])
}

fn io_error(what: &str, path: &str, err: std::io::Error) -> ConnectError {
    super::io_error("FileStreamSource", what, path, err)
}

/// Kafka's `FileStreamSourceConnector`: reads lines of a file into a topic.
///
/// Settings: `file` (required), `topic` (required, exactly one topic) and `batch.size` (the
/// most lines per poll, default 2000). It always has a single task.
#[derive(Debug, Default)]
pub struct FileStreamSourceConnector {
    config: Option<SourceConfig>,
}

impl FileStreamSourceConnector {
    /// An unstarted connector.
    pub fn new() -> FileStreamSourceConnector {
        FileStreamSourceConnector::default()
    }
}

impl Connector for FileStreamSourceConnector {
    fn config(&self) -> ConfigDef {
        source_config_def()
    }

    fn validate(&self, props: &Props) -> Validation {
        let mut validation = self.config().validate(props);
        if props.get(TOPIC_CONFIG).is_some_and(|t| t.contains(',')) {
            validation.add_error(TOPIC_CONFIG, SINGLE_TOPIC);
        }
        if let Some(raw) = props.get(TASK_BATCH_SIZE_CONFIG) {
            // A value that is not an int was already reported by the definition.
            if raw.trim().parse::<i32>().is_ok() {
                if let Err(reason) = parse_batch_size(raw) {
                    validation.add_error(TASK_BATCH_SIZE_CONFIG, reason);
                }
            }
        }
        validation
    }

    fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<()> {
        self.config = Some(SourceConfig::parse(props)?);
        Ok(())
    }

    /// One task config (`file`, `topic`, `batch.size`), whatever `max_tasks` is, as Kafka's.
    fn task_configs(&self, props: &Props, _max_tasks: usize) -> Result<Vec<Props>> {
        let config = SourceConfig::parse(props)?;
        let task: Props = [
            (FILE_CONFIG.to_string(), config.file),
            (TOPIC_CONFIG.to_string(), config.topic),
            (
                TASK_BATCH_SIZE_CONFIG.to_string(),
                config.batch_size.to_string(),
            ),
        ]
        .into_iter()
        .collect();
        Ok(vec![task])
    }

    fn stop(&mut self) -> Result<()> {
        self.config = None;
        Ok(())
    }
}

impl SourceConnector for FileStreamSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(FileStreamSourceTask::new())
    }

    /// As Kafka's: a file's lines are read again from a committed byte position, so its
    /// records and positions can be committed together (stdin could not be read again).
    fn exactly_once_support(&self, props: &Props) -> Option<ExactlyOnceSupport> {
        let file = props.get(FILE_CONFIG).map(|f| f.trim()).unwrap_or("");
        Some(if file.is_empty() {
            ExactlyOnceSupport::Unsupported
        } else {
            ExactlyOnceSupport::Supported
        })
    }
}

/// Kafka's `FileStreamSourceTask`: tails its file, returning each complete line as a record.
///
/// A poll returns up to `batch.size` lines. A last line without its terminator yet is held
/// back until the terminator is written, so no line is split; a `\r` at the very end of what
/// has been written is held back too, until the next byte says whether it is a `\r\n`. When
/// there is nothing new, a poll re-checks the file every 20 ms for up to its poll timeout
/// (one second) and then returns no records; a file that does not exist yet is waited for
/// the same way. On start the task resumes at the committed `position` of its partition.
/// If the file becomes shorter than the position being read (it was truncated), reading
/// starts again from the beginning of the file, with a warning.
#[derive(Debug)]
pub struct FileStreamSourceTask {
    config: Option<SourceConfig>,
    partition: Value,
    schema: SchemaRef,
    file: Option<File>,
    /// The byte offset in the file of `pending[0]`: just after the last line returned.
    position: u64,
    /// Bytes read but not returned yet (the start of a line whose end has not been read).
    pending: Vec<u8>,
    poll_timeout: Duration,
    warned_missing: bool,
}

impl Default for FileStreamSourceTask {
    fn default() -> FileStreamSourceTask {
        FileStreamSourceTask::new()
    }
}

impl FileStreamSourceTask {
    /// An unstarted task.
    pub fn new() -> FileStreamSourceTask {
        FileStreamSourceTask {
            config: None,
            partition: Value::Null,
            schema: Schema::optional_primitive(Type::String),
            file: None,
            position: 0,
            pending: Vec::new(),
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            warned_missing: false,
        }
    }

    /// The same task with polls that wait at most `timeout` for new lines (default
    /// [`DEFAULT_POLL_TIMEOUT`]).
    pub fn with_poll_timeout(mut self, timeout: Duration) -> FileStreamSourceTask {
        self.poll_timeout = timeout;
        self
    }

    /// The byte offset just after the last line returned.
    pub fn position(&self) -> u64 {
        self.position
    }

    async fn start_task(&mut self, props: &Props, ctx: SourceTaskContext) -> Result<()> {
        let config = SourceConfig::parse(props)?;
        let partition = partition_of(&config.file);
        self.position = match ctx.offset(&partition) {
            None | Some(Value::Null) => 0,
            Some(offset) => match offset.map_get(POSITION_FIELD) {
                Some(Value::Int64(n)) if *n >= 0 => *n as u64,
                Some(Value::Int32(n)) if *n >= 0 => *n as u64,
                other => {
                    return Err(ConnectError::Data(format!(
                        "FileStreamSource: the committed offset of {} has an invalid position {other:?}",
                        config.file
                    )))
                }
            },
        };
        tracing::debug!(file = %config.file, position = self.position, "FileStreamSource task starting");
        self.partition = partition;
        self.config = Some(config);
        self.file = None;
        self.pending.clear();
        self.warned_missing = false;
        Ok(())
    }

    async fn poll_lines(&mut self) -> Result<Vec<SourceRecord>> {
        let Some(batch_size) = self.config.as_ref().map(|c| c.batch_size) else {
            return Err(ConnectError::Data(
                "FileStreamSource task polled before it was started".to_string(),
            ));
        };
        let deadline = Instant::now() + self.poll_timeout;
        let mut records = Vec::new();
        loop {
            if self.file.is_some() || self.open().await? {
                self.take_lines(&mut records, batch_size);
                if records.len() >= batch_size {
                    break;
                }
                if self.read_more().await? > 0 {
                    continue;
                }
                // Everything written so far has been read.
                if !records.is_empty() {
                    break;
                }
                self.check_truncated().await?;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(RECHECK_INTERVAL.min(deadline - now)).await;
        }
        Ok(records)
    }

    /// Opens the file at `position`; false when it does not exist (yet).
    async fn open(&mut self) -> Result<bool> {
        let Some(path) = self.config.as_ref().map(|c| c.file.clone()) else {
            return Ok(false);
        };
        let mut file = match File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                if !self.warned_missing {
                    tracing::warn!(file = %path, "Couldn't find file for FileStreamSourceTask, waiting for it to be created");
                    self.warned_missing = true;
                }
                return Ok(false);
            }
            Err(err) => return Err(io_error("opening", &path, err)),
        };
        self.warned_missing = false;
        let len = file
            .metadata()
            .await
            .map_err(|err| io_error("reading the metadata of", &path, err))?
            .len();
        if self.position > len {
            tracing::warn!(
                file = %path,
                position = self.position,
                len,
                "file is shorter than the committed position (truncated?); reading it from the start"
            );
            self.position = 0;
        }
        if self.position > 0 {
            file.seek(SeekFrom::Start(self.position))
                .await
                .map_err(|err| io_error("seeking in", &path, err))?;
        }
        tracing::debug!(file = %path, position = self.position, "opened file for FileStreamSourceTask");
        self.pending.clear();
        self.file = Some(file);
        Ok(true)
    }

    /// Reads the next chunk of the file into `pending`; 0 at the end of the file.
    async fn read_more(&mut self) -> Result<usize> {
        let (Some(file), Some(config)) = (self.file.as_mut(), self.config.as_ref()) else {
            return Ok(0);
        };
        self.pending.reserve(READ_CHUNK);
        file.read_buf(&mut self.pending)
            .await
            .map_err(|err| io_error("reading", &config.file, err))
    }

    /// Starts again from the beginning if the file is now shorter than what was read of it.
    async fn check_truncated(&mut self) -> Result<()> {
        let (Some(file), Some(config)) = (self.file.as_mut(), self.config.as_ref()) else {
            return Ok(());
        };
        let len = file
            .metadata()
            .await
            .map_err(|err| io_error("reading the metadata of", &config.file, err))?
            .len();
        let read_to = self.position + self.pending.len() as u64;
        if len < read_to {
            tracing::warn!(
                file = %config.file,
                position = read_to,
                len,
                "file was truncated; reading it again from the start"
            );
            file.seek(SeekFrom::Start(0))
                .await
                .map_err(|err| io_error("seeking in", &config.file, err))?;
            self.position = 0;
            self.pending.clear();
        }
        Ok(())
    }

    /// Moves the complete lines of `pending` into `records`, up to `batch_size` in all.
    fn take_lines(&mut self, records: &mut Vec<SourceRecord>, batch_size: usize) {
        let Some(config) = self.config.as_ref() else {
            return;
        };
        let timestamp = now_millis();
        let mut consumed = 0;
        while records.len() < batch_size {
            let Some((end, next)) = line_end(&self.pending[consumed..]) else {
                break;
            };
            let line =
                String::from_utf8_lossy(&self.pending[consumed..consumed + end]).into_owned();
            consumed += next;
            let offset = Value::string_map([(
                POSITION_FIELD,
                Value::Int64((self.position + consumed as u64) as i64),
            )]);
            let mut record = SourceRecord::new(
                self.partition.clone(),
                offset,
                &config.topic,
                Some(self.schema.clone()),
                Value::String(line),
            );
            record.record.timestamp = Some(timestamp);
            records.push(record);
        }
        if consumed > 0 {
            self.pending.drain(..consumed);
            self.position += consumed as u64;
        }
    }
}

/// Where the first line of `buf` ends: the length of the line and of the line with its
/// terminator (`\n`, `\r\n` or a lone `\r`, as Kafka's task reads lines). None when there is
/// no complete line yet — including a `\r` at the very end, which may be the start of `\r\n`.
fn line_end(buf: &[u8]) -> Option<(usize, usize)> {
    let i = buf.iter().position(|&b| b == b'\n' || b == b'\r')?;
    if buf[i] == b'\n' {
        return Some((i, i + 1));
    }
    match buf.get(i + 1) {
        Some(b'\n') => Some((i, i + 2)),
        Some(_) => Some((i, i + 1)),
        None => None,
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl SourceTask for FileStreamSourceTask {
    fn start<'a>(
        &'a mut self,
        props: &'a Props,
        ctx: SourceTaskContext,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.start_task(props, ctx))
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>> {
        Box::pin(self.poll_lines())
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.file = None;
            self.pending.clear();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

    /// Every test wait is bounded by this.
    const LIMIT: Duration = Duration::from_secs(10);

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn no_offsets() -> SourceTaskContext {
        SourceTaskContext::new(|_| None)
    }

    fn append(path: &Path, data: &[u8]) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(data).unwrap();
    }

    async fn started(
        path: &Path,
        batch: Option<&str>,
        ctx: SourceTaskContext,
    ) -> FileStreamSourceTask {
        let file = path.to_str().unwrap();
        let mut p = props(&[("file", file), ("topic", "lines")]);
        if let Some(batch) = batch {
            p.insert("batch.size".into(), batch.into());
        }
        let mut task = FileStreamSourceTask::new().with_poll_timeout(Duration::from_millis(100));
        tokio::time::timeout(LIMIT, task.start(&p, ctx))
            .await
            .unwrap()
            .unwrap();
        task
    }

    async fn poll(task: &mut FileStreamSourceTask) -> Vec<(String, i64)> {
        let records = tokio::time::timeout(LIMIT, task.poll())
            .await
            .unwrap()
            .unwrap();
        records
            .into_iter()
            .map(|r| {
                assert_eq!(r.record.topic, "lines");
                assert_eq!(r.record.key, Value::Null);
                assert!(r.record.timestamp.is_some());
                assert_eq!(
                    r.record.value_schema,
                    Some(Schema::optional_primitive(Type::String))
                );
                let position = r.source_offset.map_get("position").and_then(Value::as_i64);
                (
                    r.record.value.as_str().unwrap().to_string(),
                    position.unwrap(),
                )
            })
            .collect()
    }

    fn lines(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
        expected.iter().map(|(l, p)| (l.to_string(), *p)).collect()
    }

    #[tokio::test]
    async fn reads_lines_in_batches_of_batch_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        append(&path, b"a\nbb\nccc\nd\ne\n");
        let mut task = started(&path, Some("2"), no_offsets()).await;
        assert_eq!(poll(&mut task).await, lines(&[("a", 2), ("bb", 5)]));
        assert_eq!(poll(&mut task).await, lines(&[("ccc", 9), ("d", 11)]));
        assert_eq!(poll(&mut task).await, lines(&[("e", 13)]));
        assert_eq!(poll(&mut task).await, lines(&[]));
        assert_eq!(task.position(), 13);
    }

    #[tokio::test]
    async fn records_carry_kafkas_partition_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        append(&path, b"x\n");
        let mut task = started(&path, None, no_offsets()).await;
        let records = tokio::time::timeout(LIMIT, task.poll())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].source_partition,
            Value::string_map([("filename", Value::from(path.to_str().unwrap()))])
        );
        assert_eq!(
            records[0].source_offset,
            Value::string_map([("position", Value::Int64(2))])
        );
        assert_eq!(records[0].record.value, Value::from("x"));
    }

    #[tokio::test]
    async fn holds_back_a_partial_last_line_until_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        append(&path, b"first\nsec");
        let mut task = started(&path, None, no_offsets()).await;
        assert_eq!(poll(&mut task).await, lines(&[("first", 6)]));
        assert_eq!(poll(&mut task).await, lines(&[]));
        append(&path, b"ond");
        assert_eq!(poll(&mut task).await, lines(&[]));
        append(&path, b"\nthird\n");
        assert_eq!(
            poll(&mut task).await,
            lines(&[("second", 13), ("third", 19)])
        );
    }

    #[tokio::test]
    async fn a_waiting_poll_returns_lines_written_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        append(&path, b"");
        let mut task = started(&path, None, no_offsets())
            .await
            .with_poll_timeout(LIMIT);
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                append(&path, b"late\n");
            })
        };
        assert_eq!(poll(&mut task).await, lines(&[("late", 5)]));
        tokio::time::timeout(LIMIT, writer).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn handles_crlf_and_a_trailing_cr() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        append(&path, b"x\r\ny\r\nz\r");
        let mut task = started(&path, None, no_offsets()).await;
        assert_eq!(poll(&mut task).await, lines(&[("x", 3), ("y", 6)]));
        // "z\r" may be the start of "z\r\n": held back.
        assert_eq!(poll(&mut task).await, lines(&[]));
        append(&path, b"\nlone\rcr\n");
        assert_eq!(
            poll(&mut task).await,
            lines(&[("z", 9), ("lone", 14), ("cr", 17)])
        );
    }

    #[tokio::test]
    async fn resumes_from_the_committed_position_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        append(&path, b"l1\nl2\nl3\n");
        let file = path.to_str().unwrap().to_string();
        let ctx = SourceTaskContext::new(move |partition| {
            (partition == &Value::string_map([("filename", Value::from(file.as_str()))]))
                .then(|| Value::string_map([("position", Value::Int64(3))]))
        });
        let mut task = started(&path, None, ctx).await;
        assert_eq!(poll(&mut task).await, lines(&[("l2", 6), ("l3", 9)]));

        // A restart from the last record's offset reads only what came after it.
        append(&path, b"l4\n");
        let ctx =
            SourceTaskContext::new(|_| Some(Value::string_map([("position", Value::Int64(9))])));
        let mut restarted = started(&path, None, ctx).await;
        assert_eq!(poll(&mut restarted).await, lines(&[("l4", 12)]));
    }

    #[tokio::test]
    async fn a_bad_committed_position_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let p = props(&[("file", path.to_str().unwrap()), ("topic", "lines")]);
        let ctx =
            SourceTaskContext::new(|_| Some(Value::string_map([("position", Value::from("x"))])));
        let mut task = FileStreamSourceTask::new();
        let err = tokio::time::timeout(LIMIT, task.start(&p, ctx))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("invalid position"), "{err}");
    }

    #[tokio::test]
    async fn a_truncated_file_is_read_again_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        append(&path, b"aaaa\nbbbb\n");
        let mut task = started(&path, None, no_offsets()).await;
        assert_eq!(poll(&mut task).await, lines(&[("aaaa", 5), ("bbbb", 10)]));
        std::fs::write(&path, b"c\n").unwrap();
        assert_eq!(poll(&mut task).await, lines(&[("c", 2)]));

        // A committed position beyond the end: from the start too.
        let ctx =
            SourceTaskContext::new(|_| Some(Value::string_map([("position", Value::Int64(100))])));
        let mut restarted = started(&path, None, ctx).await;
        assert_eq!(poll(&mut restarted).await, lines(&[("c", 2)]));
    }

    #[tokio::test]
    async fn waits_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.txt");
        let mut task = started(&path, None, no_offsets()).await;
        assert_eq!(poll(&mut task).await, lines(&[]));
        append(&path, b"here\n");
        assert_eq!(poll(&mut task).await, lines(&[("here", 5)]));
    }

    #[tokio::test]
    async fn other_io_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory opens but cannot be read.
        let mut task = started(dir.path(), None, no_offsets()).await;
        let err = tokio::time::timeout(LIMIT, task.poll())
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            err.to_string().contains(dir.path().to_str().unwrap()),
            "{err}"
        );
    }

    #[tokio::test]
    async fn polling_before_start_is_an_error() {
        let mut task = FileStreamSourceTask::new();
        assert!(tokio::time::timeout(LIMIT, task.poll())
            .await
            .unwrap()
            .is_err());
    }

    #[test]
    fn validates_configs() {
        let connector = FileStreamSourceConnector::new();
        let ok = connector.validate(&props(&[("file", "/tmp/x"), ("topic", "t")]));
        assert_eq!(ok.error_count(), 0, "{:?}", ok.messages());
        assert_eq!(ok.values[2].value.as_deref(), Some("2000"));

        let missing = connector.validate(&props(&[]));
        assert_eq!(missing.error_count(), 2, "{:?}", missing.messages());
        let messages = missing.messages().join("\n");
        assert!(messages.contains("file: Missing required"), "{messages}");
        assert!(messages.contains("topic: Missing required"), "{messages}");

        let two_topics = connector.validate(&props(&[("file", "/tmp/x"), ("topic", "a,b")]));
        assert_eq!(two_topics.error_count(), 1);
        assert!(two_topics.messages()[0].contains("single topic"));

        for bad in ["many", "0", "-1"] {
            let v = connector.validate(&props(&[
                ("file", "/tmp/x"),
                ("topic", "t"),
                ("batch.size", bad),
            ]));
            assert_eq!(v.error_count(), 1, "{bad}: {:?}", v.messages());
            assert!(
                v.messages()[0].starts_with("batch.size: "),
                "{:?}",
                v.messages()
            );
        }
    }

    #[tokio::test]
    async fn start_refuses_bad_configs() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("topic", "t")], "file"),
            (&[("file", "/tmp/x")], "topic"),
            (&[("file", "/tmp/x"), ("topic", "a,b")], "topic"),
            (
                &[("file", "/tmp/x"), ("topic", "t"), ("batch.size", "x")],
                "batch.size",
            ),
            (
                &[("file", "/tmp/x"), ("topic", "t"), ("batch.size", "0")],
                "batch.size",
            ),
        ];
        for (pairs, key) in cases {
            let p = props(pairs);
            let mut connector = FileStreamSourceConnector::new();
            let err = connector
                .start(&p, ConnectorContext::new(|_| {}))
                .unwrap_err();
            assert!(
                matches!(&err, ConnectError::Config { key: k, .. } if k == key),
                "{pairs:?}: {err}"
            );
            let mut task = FileStreamSourceTask::new();
            let err = tokio::time::timeout(LIMIT, task.start(&p, no_offsets()))
                .await
                .unwrap()
                .unwrap_err();
            assert!(
                matches!(&err, ConnectError::Config { key: k, .. } if k == key),
                "{pairs:?}: {err}"
            );
        }
    }

    #[test]
    fn has_one_task_config() {
        let mut connector = FileStreamSourceConnector::new();
        let p = props(&[("file", " /tmp/x "), ("topic", "t"), ("name", "src")]);
        connector.start(&p, ConnectorContext::new(|_| {})).unwrap();
        let configs = connector.task_configs(&p, 4).unwrap();
        assert_eq!(
            configs,
            vec![props(&[
                ("file", "/tmp/x"),
                ("topic", "t"),
                ("batch.size", "2000")
            ])]
        );
        connector.stop().unwrap();
    }

    #[test]
    fn finds_line_ends() {
        assert_eq!(line_end(b"ab\ncd"), Some((2, 3)));
        assert_eq!(line_end(b"ab\r\ncd"), Some((2, 4)));
        assert_eq!(line_end(b"ab\rcd"), Some((2, 3)));
        assert_eq!(line_end(b"ab\r"), None);
        assert_eq!(line_end(b"ab"), None);
        assert_eq!(line_end(b"\n"), Some((0, 1)));
    }
}
