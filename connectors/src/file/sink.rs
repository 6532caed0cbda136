//! `FileStreamSink`: appends record values to a file, one line each.

use std::collections::BTreeMap;

use sluice_connect::connector::{
    BoxFuture, ConfigDef, ConfigKey, Connector, ConnectorContext, Props, SinkConnector, SinkRecord,
    SinkTask, TopicPartition,
};
use sluice_connect::converter::display;
use sluice_connect::data::Value;
use sluice_connect::{ConnectError, Result};
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

use super::{check_defined, required_string, FILE_CONFIG};

/// How many bytes of lines are gathered before they are written to the file: a large `put`
/// is written in chunks of about this size, and whatever is left at its end at once.
const WRITE_CHUNK: usize = 64 * 1024;

fn sink_config_def() -> ConfigDef {
    ConfigDef::new().define(
        ConfigKey::string(
            FILE_CONFIG,
            "Destination filename. (Kafka writes to standard output when it is unset; Sluice requires a file.)",
        )
        .required(),
    )
}

/// The sink's `file`, checked.
fn sink_file(props: &Props) -> Result<String> {
    check_defined(&sink_config_def(), props)?;
    Ok(required_string(props, FILE_CONFIG)?.trim().to_string())
}

fn io_error(what: &str, path: &str, err: std::io::Error) -> ConnectError {
    super::io_error("FileStreamSink", what, path, err)
}

/// Kafka's `FileStreamSinkConnector`: appends the values of the records of its topics to a
/// file.
///
/// Its one setting is `file` (required); the topics come from the runtime's `topics` or
/// `topics.regex`, which it leaves alone. `task_configs(max_tasks)` returns `max_tasks`
/// identical configs, as Kafka's does: every task appends to the same file.
#[derive(Debug, Default)]
pub struct FileStreamSinkConnector {
    file: Option<String>,
}

impl FileStreamSinkConnector {
    /// An unstarted connector.
    pub fn new() -> FileStreamSinkConnector {
        FileStreamSinkConnector::default()
    }
}

impl Connector for FileStreamSinkConnector {
    fn config(&self) -> ConfigDef {
        sink_config_def()
    }

    fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<()> {
        self.file = Some(sink_file(props)?);
        Ok(())
    }

    fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        let file = sink_file(props)?;
        let task: Props = [(FILE_CONFIG.to_string(), file)].into_iter().collect();
        Ok(vec![task; max_tasks])
    }

    fn stop(&mut self) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

impl SinkConnector for FileStreamSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(FileStreamSinkTask::new())
    }
}

/// Kafka's `FileStreamSinkTask`: writes each record's value as a line to its file.
///
/// The file is opened for appending (and created if missing) on start. A string value is
/// written as it is, any other value as Java's `toString` shows it (`null` for a null value,
/// as Kafka's `println(record.value())` prints), followed by `\n`. Each `put` writes its lines
/// to the file before it returns (in chunks that end at a line boundary, one write for a small
/// batch), so a reader sees them at once, as with Kafka's `PrintStream`; `flush` `fsync`s the
/// file (`sync_data`), so the lines of every offset the runtime then commits are on disk.
#[derive(Debug, Default)]
pub struct FileStreamSinkTask {
    path: String,
    file: Option<File>,
    buffer: Vec<u8>,
}

impl FileStreamSinkTask {
    /// An unstarted task.
    pub fn new() -> FileStreamSinkTask {
        FileStreamSinkTask::default()
    }

    async fn start_task(&mut self, props: &Props) -> Result<()> {
        let path = sink_file(props)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|err| io_error("opening", &path, err))?;
        tracing::debug!(file = %path, "FileStreamSink task started");
        self.path = path;
        self.file = Some(file);
        self.buffer.clear();
        Ok(())
    }

    async fn put_records(&mut self, records: &[SinkRecord]) -> Result<()> {
        if self.file.is_none() {
            return Err(ConnectError::Data(
                "FileStreamSink task handed records before it was started".to_string(),
            ));
        }
        for record in records {
            match &record.record.value {
                Value::String(s) => self.buffer.extend_from_slice(s.as_bytes()),
                other => self.buffer.extend_from_slice(display(other).as_bytes()),
            }
            self.buffer.push(b'\n');
            if self.buffer.len() >= WRITE_CHUNK {
                self.write_buffer().await?;
            }
        }
        // Written now, not at the next flush (up to `offset.flush.interval.ms` later): a user
        // tailing the file sees each record as soon as the task received it.
        self.write_buffer().await
    }

    /// Writes the buffered lines to the file.
    async fn write_buffer(&mut self) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if !self.buffer.is_empty() {
            file.write_all(&self.buffer)
                .await
                .map_err(|err| io_error("writing to", &self.path, err))?;
            // tokio's File finishes a write in the background; flushing waits for it, so the
            // lines are in the file (not yet fsynced) when this returns.
            file.flush()
                .await
                .map_err(|err| io_error("writing to", &self.path, err))?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Writes the buffered lines and makes them durable.
    async fn flush_file(&mut self) -> Result<()> {
        self.write_buffer().await?;
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.sync_data()
            .await
            .map_err(|err| io_error("syncing", &self.path, err))
    }
}

impl SinkTask for FileStreamSinkTask {
    fn start<'a>(&'a mut self, props: &'a Props) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.start_task(props))
    }

    fn put<'a>(&'a mut self, records: &'a [SinkRecord]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_records(records))
    }

    fn flush<'a>(
        &'a mut self,
        _offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.flush_file())
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let flushed = self.flush_file().await;
            self.file = None;
            self.buffer.clear();
            flushed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_connect::ConnectRecord;
    use std::time::Duration;

    const LIMIT: Duration = Duration::from_secs(10);

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn record(offset: i64, value: Value) -> SinkRecord {
        SinkRecord::new(ConnectRecord::new("t", None, value), offset)
    }

    async fn started(path: &std::path::Path) -> FileStreamSinkTask {
        let mut task = FileStreamSinkTask::new();
        let p = props(&[("file", path.to_str().unwrap()), ("topics", "t")]);
        tokio::time::timeout(LIMIT, task.start(&p))
            .await
            .unwrap()
            .unwrap();
        task
    }

    async fn flush(task: &mut FileStreamSinkTask) {
        let offsets = BTreeMap::new();
        tokio::time::timeout(LIMIT, task.flush(&offsets))
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn appends_values_in_order_and_flush_makes_them_visible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut task = started(&path).await;
        tokio::time::timeout(
            LIMIT,
            task.put(&[record(0, "one".into()), record(1, Value::Int32(2))]),
        )
        .await
        .unwrap()
        .unwrap();
        tokio::time::timeout(
            LIMIT,
            task.put(&[record(2, Value::Null), record(3, "four".into())]),
        )
        .await
        .unwrap()
        .unwrap();
        flush(&mut task).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "one\n2\nnull\nfour\n"
        );
        tokio::time::timeout(LIMIT, task.put(&[record(4, "five".into())]))
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(LIMIT, task.stop())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "one\n2\nnull\nfour\nfive\n"
        );
    }

    #[tokio::test]
    async fn each_put_reaches_the_file_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut task = started(&path).await;
        tokio::time::timeout(LIMIT, task.put(&[record(0, "one".into())]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        tokio::time::timeout(
            LIMIT,
            task.put(&[record(1, "two".into()), record(2, "three".into())]),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "one\ntwo\nthree\n",
            "no flush in between"
        );
    }

    #[tokio::test]
    async fn keeps_existing_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old\n").unwrap();
        let mut task = started(&path).await;
        tokio::time::timeout(LIMIT, task.put(&[record(0, "new".into())]))
            .await
            .unwrap()
            .unwrap();
        flush(&mut task).await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
    }

    #[tokio::test]
    async fn large_puts_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut task = started(&path).await;
        let line = "x".repeat(1000);
        let records: Vec<SinkRecord> = (0..200).map(|i| record(i, line.as_str().into())).collect();
        tokio::time::timeout(LIMIT, task.put(&records))
            .await
            .unwrap()
            .unwrap();
        flush(&mut task).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 200);
        assert!(text.lines().all(|l| l == line));
    }

    #[tokio::test]
    async fn put_before_start_is_an_error_and_open_errors_name_the_file() {
        let mut task = FileStreamSinkTask::new();
        assert!(
            tokio::time::timeout(LIMIT, task.put(&[record(0, "x".into())]))
                .await
                .unwrap()
                .is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("out.txt");
        let p = props(&[("file", path.to_str().unwrap())]);
        let err = tokio::time::timeout(LIMIT, task.start(&p))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    }

    #[tokio::test]
    async fn validates_configs_and_makes_max_tasks_configs() {
        let mut connector = FileStreamSinkConnector::new();
        let ok = props(&[
            ("file", "/tmp/out"),
            ("topics", "a,b"),
            ("topics.regex", ""),
        ]);
        assert_eq!(connector.validate(&ok).error_count(), 0);
        let missing = connector.validate(&props(&[("topics", "a")]));
        assert_eq!(missing.error_count(), 1);
        assert!(missing.messages()[0].starts_with("file: Missing required"));

        let err = connector
            .start(&props(&[("topics", "a")]), ConnectorContext::new(|_| {}))
            .unwrap_err();
        assert!(
            matches!(&err, ConnectError::Config { key, .. } if key == "file"),
            "{err}"
        );
        let mut task = FileStreamSinkTask::new();
        let err = tokio::time::timeout(LIMIT, task.start(&props(&[("file", "")])))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, ConnectError::Config { key, .. } if key == "file"),
            "{err}"
        );

        connector.start(&ok, ConnectorContext::new(|_| {})).unwrap();
        let configs = connector.task_configs(&ok, 3).unwrap();
        assert_eq!(configs, vec![props(&[("file", "/tmp/out")]); 3]);
        assert!(connector.task_configs(&ok, 0).unwrap().is_empty());
        connector.stop().unwrap();
    }
}
