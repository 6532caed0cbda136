//! `sluice produce`: records from lines of stdin or a file, as kafka-console-producer reads them
//! (`--property parse.key=true --property key.separator=:`, headers with `parse.headers=true`).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};

use super::{parse_key_value, runtime, unescape, Connect};

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    connect: Connect,
    /// Topic to write to (created if the broker auto-creates topics).
    #[arg(long)]
    topic: String,
    /// Read lines from this file instead of stdin (shows a progress bar).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Write to this partition instead of using the partitioner.
    #[arg(long)]
    partition: Option<i32>,
    /// `acks`: all, -1, 0 or 1.
    #[arg(long, default_value = "all")]
    acks: String,
    /// `compression.type`: none, gzip, snappy, lz4, zstd.
    #[arg(
        long = "compression",
        alias = "compression-codec",
        default_value = "none"
    )]
    compression: String,
    /// `batch.size` in bytes.
    #[arg(long = "batch-size", default_value_t = 16384)]
    batch_size: usize,
    /// `linger.ms`.
    #[arg(long = "linger-ms", default_value_t = 5)]
    linger_ms: u64,
    /// A line-reader property: parse.key, key.separator, parse.headers, headers.delimiter,
    /// headers.separator, headers.key.separator, null.marker; repeatable.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// Any other producer property, e.g. `max.in.flight.requests.per.connection=1`; repeatable.
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    producer_properties: Vec<String>,
}

/// A parsed line: headers, key, value.
type ParsedLine = (Vec<(String, Option<Bytes>)>, Option<Bytes>, Option<Bytes>);

/// How lines become records.
#[derive(Debug, Clone)]
struct LineFormat {
    parse_key: bool,
    key_separator: String,
    parse_headers: bool,
    headers_delimiter: String,
    headers_separator: String,
    headers_key_separator: String,
    null_marker: Option<String>,
}

impl LineFormat {
    fn from_properties(properties: &[String]) -> anyhow::Result<LineFormat> {
        let mut format = LineFormat {
            parse_key: false,
            key_separator: "\t".into(),
            parse_headers: false,
            headers_delimiter: "\t".into(),
            headers_separator: ",".into(),
            headers_key_separator: ":".into(),
            null_marker: None,
        };
        for property in properties {
            let (key, value) = parse_key_value(property)?;
            let value = unescape(&value);
            match key.as_str() {
                "parse.key" => format.parse_key = value == "true",
                "key.separator" => format.key_separator = value,
                "parse.headers" => format.parse_headers = value == "true",
                "headers.delimiter" => format.headers_delimiter = value,
                "headers.separator" => format.headers_separator = value,
                "headers.key.separator" => format.headers_key_separator = value,
                "null.marker" => format.null_marker = Some(value),
                other => anyhow::bail!("unknown --property {other} (known: parse.key, key.separator, parse.headers, headers.delimiter, headers.separator, headers.key.separator, null.marker)"),
            }
        }
        Ok(format)
    }

    fn field(&self, text: &str) -> Option<Bytes> {
        match &self.null_marker {
            Some(marker) if marker == text => None,
            _ => Some(Bytes::copy_from_slice(text.as_bytes())),
        }
    }

    /// Splits a line into headers, key and value, with a clear error naming the line.
    fn parse(&self, line_number: usize, line: &str) -> anyhow::Result<ParsedLine> {
        let mut rest = line;
        let mut headers = Vec::new();
        if self.parse_headers {
            let (raw_headers, after) = rest
                .split_once(self.headers_delimiter.as_str())
                .with_context(|| {
                    format!(
                        "line {line_number}: no headers delimiter {:?}",
                        self.headers_delimiter
                    )
                })?;
            for header in raw_headers
                .split(self.headers_separator.as_str())
                .filter(|h| !h.is_empty())
            {
                let (key, value) = header
                    .split_once(self.headers_key_separator.as_str())
                    .with_context(|| {
                        format!(
                            "line {line_number}: header {header:?} has no {:?}",
                            self.headers_key_separator
                        )
                    })?;
                headers.push((key.to_string(), self.field(value)));
            }
            rest = after;
        }
        let (key, value) = if self.parse_key {
            let (key, value) = rest
                .split_once(self.key_separator.as_str())
                .with_context(|| {
                    format!(
                        "line {line_number}: no key separator {:?} (parse.key=true)",
                        self.key_separator
                    )
                })?;
            (self.field(key), value)
        } else {
            (None, rest)
        };
        Ok((headers, key, self.field(value)))
    }
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let format = LineFormat::from_properties(&args.properties)?;
    let mut config = ProducerConfig::default();
    config.set("acks", &args.acks)?;
    config.set("compression.type", &args.compression)?;
    config.set("batch.size", &args.batch_size.to_string())?;
    config.set("linger.ms", &args.linger_ms.to_string())?;
    for property in &args.producer_properties {
        let (key, value) = parse_key_value(property)?;
        config.set(&key, &value)?;
    }
    let (reader, total_bytes): (Box<dyn BufRead + Send>, Option<u64>) = match &args.file {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            let len = file.metadata().map(|m| m.len()).ok();
            (Box::new(std::io::BufReader::new(file)), len)
        }
        None => (Box::new(std::io::BufReader::new(std::io::stdin())), None),
    };
    let bar = match total_bytes {
        Some(total) => {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => indicatif::ProgressBar::hidden(),
    };
    runtime()?.block_on(async move {
        let client = args.connect.client().await?;
        let producer = Producer::new(client, config);
        // Deliveries are checked in order as they complete, so a failure stops the input early.
        let (results_tx, mut results_rx) = tokio::sync::mpsc::channel(100_000);
        let checker = tokio::spawn(async move {
            let mut n_ok = 0u64;
            while let Some((line_number, delivery)) = results_rx.recv().await {
                let delivery: sluice_log::client::producer::DeliveryFuture = delivery;
                match delivery.await {
                    Ok(_) => n_ok += 1,
                    Err(err) => {
                        return Err(anyhow::Error::new(err)
                            .context(format!("line {line_number} was not written")))
                    }
                }
            }
            Ok(n_ok)
        });
        let topic: std::sync::Arc<str> = args.topic.as_str().into();
        for (idx, line) in reader.lines().enumerate() {
            let line = line.context("read input")?;
            bar.inc(line.len() as u64 + 1);
            let (headers, key, value) = format.parse(idx + 1, &line)?;
            let record = ProducerRecord {
                topic: topic.clone(),
                partition: args.partition,
                key,
                value,
                headers,
                timestamp: None,
            };
            let delivery = producer
                .send(record)
                .await
                .with_context(|| format!("line {}", idx + 1))?;
            if results_tx.send((idx + 1, delivery)).await.is_err() {
                break;
            }
        }
        drop(results_tx);
        producer.flush().await;
        let n_ok = checker.await.context("delivery checker")??;
        producer.close().await;
        bar.finish_and_clear();
        if total_bytes.is_some() {
            eprintln!("Produced {n_ok} records to {}.", args.topic);
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_headers_keys_and_values_like_the_console_producer() {
        let props = [
            "parse.key=true",
            "key.separator=:",
            "parse.headers=true",
            "null.marker=NULL",
        ]
        .map(String::from);
        let format = LineFormat::from_properties(&props).unwrap();
        let (headers, key, value) = format.parse(1, "h1:v1,h2:NULL\tk:v:w").unwrap();
        assert_eq!(
            headers,
            vec![("h1".into(), Some(Bytes::from("v1"))), ("h2".into(), None)]
        );
        assert_eq!(key, Some(Bytes::from("k")));
        assert_eq!(value, Some(Bytes::from("v:w")));
        let err = format.parse(7, "no-delimiter").unwrap_err();
        assert!(err.to_string().contains("line 7"), "{err}");
        assert!(LineFormat::from_properties(&["parse.kee=true".into()]).is_err());
    }
}
