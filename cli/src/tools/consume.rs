//! `sluice consume`: records to stdout, as kafka-console-consumer prints them
//! (`--property print.key=true`, `print.timestamp`, `print.offset`, `print.partition`,
//! `print.headers`, `key.separator`, `line.separator`).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset};
use sluice_log::TopicPartition;

use super::{parse_key_value, runtime, unescape, Connect};

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    connect: Connect,
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Read only this partition (default: all).
    #[arg(long)]
    partition: Option<i32>,
    /// Start at the earliest offset (default: only new records).
    #[arg(long = "from-beginning")]
    from_beginning: bool,
    /// Start at `earliest`, `latest`, an offset, or a negative count back from the end.
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<String>,
    /// Start at the first record at or after this time (ms since the epoch).
    #[arg(long = "from-timestamp")]
    from_timestamp: Option<i64>,
    /// Exit after this many records.
    #[arg(long = "max-messages")]
    max_messages: Option<u64>,
    /// Exit when no record arrives for this long.
    #[arg(long = "timeout-ms")]
    timeout_ms: Option<u64>,
    /// Consume as a member of this consumer group: the group assigns partitions, reading starts
    /// at its committed offsets (else at the end, or the beginning with --from-beginning), and
    /// the positions reached are committed on exit.
    #[arg(long)]
    group: Option<String>,
    /// `read_committed`: only records of committed transactions, up to the last stable
    /// offset; `read_uncommitted` (the default): every record, aborted ones included.
    #[arg(long = "isolation-level", default_value = "read_uncommitted", value_parser = ["read_committed", "read_uncommitted"])]
    isolation_level: String,
    /// Output property: print.key, print.value, print.timestamp, print.offset, print.partition,
    /// print.headers, key.separator, line.separator, headers.separator, null.literal; repeatable.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
}

#[derive(Debug, Clone)]
struct OutputFormat {
    print_key: bool,
    print_value: bool,
    print_timestamp: bool,
    print_offset: bool,
    print_partition: bool,
    print_headers: bool,
    key_separator: String,
    line_separator: String,
    headers_separator: String,
    null_literal: String,
}

impl OutputFormat {
    fn from_properties(properties: &[String]) -> anyhow::Result<OutputFormat> {
        let mut format = OutputFormat {
            print_key: false,
            print_value: true,
            print_timestamp: false,
            print_offset: false,
            print_partition: false,
            print_headers: false,
            key_separator: "\t".into(),
            line_separator: "\n".into(),
            headers_separator: ",".into(),
            null_literal: "null".into(),
        };
        for property in properties {
            let (key, value) = parse_key_value(property)?;
            let flag = value == "true";
            match key.as_str() {
                "print.key" => format.print_key = flag,
                "print.value" => format.print_value = flag,
                "print.timestamp" => format.print_timestamp = flag,
                "print.offset" => format.print_offset = flag,
                "print.partition" => format.print_partition = flag,
                "print.headers" => format.print_headers = flag,
                "key.separator" => format.key_separator = unescape(&value),
                "line.separator" => format.line_separator = unescape(&value),
                "headers.separator" => format.headers_separator = unescape(&value),
                "null.literal" => format.null_literal = value,
                other => anyhow::bail!("unknown --property {other}"),
            }
        }
        Ok(format)
    }

    fn bytes<'a>(&'a self, value: &'a Option<bytes::Bytes>) -> std::borrow::Cow<'a, str> {
        match value {
            Some(bytes) => String::from_utf8_lossy(bytes),
            None => std::borrow::Cow::Borrowed(&self.null_literal),
        }
    }

    fn render(&self, record: &ConsumerRecord) -> String {
        let sep = &self.key_separator;
        let mut out = String::new();
        if self.print_timestamp {
            out.push_str(&format!("CreateTime:{}{sep}", record.timestamp));
        }
        if self.print_partition {
            out.push_str(&format!("Partition:{}{sep}", record.partition));
        }
        if self.print_offset {
            out.push_str(&format!("Offset:{}{sep}", record.offset));
        }
        if self.print_headers {
            let headers: Vec<String> = record
                .headers
                .iter()
                .map(|(k, v)| format!("{k}:{}", self.bytes(v)))
                .collect();
            out.push_str(if headers.is_empty() { "NO_HEADERS" } else { "" });
            out.push_str(&headers.join(&self.headers_separator));
            out.push_str(sep);
        }
        if self.print_key {
            out.push_str(&self.bytes(&record.key));
            out.push_str(sep);
        }
        if self.print_value {
            out.push_str(&self.bytes(&record.value));
        } else if out.ends_with(sep.as_str()) {
            out.truncate(out.len() - sep.len());
        }
        out.push_str(&self.line_separator);
        out
    }
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    if args.group.is_some() {
        anyhow::ensure!(
            args.partition.is_none() && args.offset.is_none() && args.from_timestamp.is_none(),
            "--group reads the partitions the group assigns, from its committed offsets: it cannot be combined with --partition, --offset or --from-timestamp"
        );
    }
    let format = OutputFormat::from_properties(&args.properties)?;
    let start = match (&args.offset, args.from_timestamp, args.from_beginning) {
        (Some(offset), None, false) => match offset.as_str() {
            "earliest" => StartOffset::Beginning,
            "latest" => StartOffset::End,
            n => StartOffset::Offset(n.parse().with_context(|| {
                format!("--offset {n:?}: expected earliest, latest or a number")
            })?),
        },
        (None, Some(ts), false) => StartOffset::Timestamp(ts),
        (None, None, true) => StartOffset::Beginning,
        (None, None, false) => StartOffset::End,
        _ => anyhow::bail!("give at most one of --from-beginning, --offset and --from-timestamp"),
    };
    runtime()?.block_on(async move {
        let client = args.connect.client().await?;
        if let Some(group) = &args.group {
            return consume_in_group(client, group, &args, &format).await;
        }
        let partitions: Vec<i32> = match args.partition {
            Some(partition) => vec![partition],
            None => (0..client
                .topic(&args.topic, false)
                .await
                .with_context(|| format!("topic {}", args.topic))?
                .leaders
                .len() as i32)
                .collect(),
        };
        let assignments = partitions
            .into_iter()
            .map(|p| (TopicPartition::new(&args.topic, p), start))
            .collect();
        let config = ConsumerConfig {
            isolation_level: isolation(&args.isolation_level),
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::assign(client, assignments, config).await?;
        let stdout = std::io::stdout();
        let mut n_printed = 0u64;
        let mut last_record = Instant::now();
        let idle_limit = args.timeout_ms.map(Duration::from_millis);
        loop {
            if args.max_messages.is_some_and(|max| n_printed >= max) {
                break;
            }
            if idle_limit.is_some_and(|limit| last_record.elapsed() >= limit) {
                break;
            }
            let records = consumer.poll().await?;
            if !records.is_empty() {
                last_record = Instant::now();
            }
            let mut out = stdout.lock();
            for record in records {
                if args.max_messages.is_some_and(|max| n_printed >= max) {
                    break;
                }
                out.write_all(format.render(&record).as_bytes())
                    .context("write to stdout")?;
                n_printed += 1;
            }
            out.flush().context("write to stdout")?;
        }
        eprintln!("Processed a total of {n_printed} messages");
        anyhow::Ok(())
    })
}

/// The wire's isolation level for `--isolation-level` (clap allows only the two names).
fn isolation(level: &str) -> i8 {
    i8::from(level == "read_committed")
}

/// `--group`: a group member that prints, then commits and leaves on exit.
async fn consume_in_group(
    client: std::sync::Arc<sluice_log::client::Client>,
    group: &str,
    args: &ConsumeArgs,
    format: &OutputFormat,
) -> anyhow::Result<()> {
    use sluice_log::client::group_consumer::{GroupConfig, GroupConsumer};
    let mut config = GroupConfig::new(group);
    config.auto_offset_reset = if args.from_beginning {
        sluice_log::client::group_consumer::AutoOffsetReset::Earliest
    } else {
        sluice_log::client::group_consumer::AutoOffsetReset::Latest
    };
    // The tool commits what it printed, itself.
    config.enable_auto_commit = false;
    config.fetch.isolation_level = isolation(&args.isolation_level);
    let mut consumer = GroupConsumer::subscribe(client, vec![args.topic.clone()], config)
        .await
        .with_context(|| format!("join group {group}"))?;
    let stdout = std::io::stdout();
    let mut n_printed = 0u64;
    let mut last_record = Instant::now();
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    // What was printed is what gets committed: records fetched but not printed (past
    // --max-messages) stay for the group's next reader.
    let mut printed: std::collections::BTreeMap<TopicPartition, i64> =
        std::collections::BTreeMap::new();
    while args.max_messages.is_none_or(|max| n_printed < max)
        && idle_limit.is_none_or(|limit| last_record.elapsed() < limit)
    {
        let records = consumer.poll().await?;
        if !records.is_empty() {
            last_record = Instant::now();
        }
        let mut out = stdout.lock();
        for record in records {
            if args.max_messages.is_some_and(|max| n_printed >= max) {
                break;
            }
            out.write_all(format.render(&record).as_bytes())
                .context("write to stdout")?;
            printed.insert(record.topic_partition(), record.offset + 1);
            n_printed += 1;
        }
        out.flush().context("write to stdout")?;
    }
    let offsets: Vec<(TopicPartition, i64)> = printed.into_iter().collect();
    consumer
        .commit_offsets(&offsets)
        .await
        .with_context(|| format!("commit offsets of group {group}"))?;
    consumer
        .leave()
        .await
        .with_context(|| format!("leave group {group}"))?;
    eprintln!("Processed a total of {n_printed} messages");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_like_the_console_consumer() {
        let props = [
            "print.key=true",
            "print.offset=true",
            "print.headers=true",
            "key.separator=|",
        ]
        .map(String::from);
        let format = OutputFormat::from_properties(&props).unwrap();
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            timestamp: 1,
            key: None,
            value: Some("v".into()),
            headers: vec![("h".into(), Some("x".into()))],
        };
        assert_eq!(format.render(&record), "Offset:7|h:x|null|v\n");
    }
}
