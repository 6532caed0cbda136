//! `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`: a topic's records as ksqlDB's
//! `/query` prints them, one line each —
//! `rowtime: 2026/12/05 10:00:00.000 Z, key: k, value: {"a":1}, partition: 0` — each key and
//! value shown in the first format, of those every record so far could be read in, that
//! reads it. The formats still possible are printed (`Key format: KAFKA_STRING or JSON`)
//! whenever they change. The formats tried are ksqlDB's that need no schema registry, in
//! its order: `JSON`, `KAFKA_INT`, `KAFKA_BIGINT`, `KAFKA_DOUBLE`, `KAFKA_STRING`, and for
//! keys also their `SESSION(...)`, `HOPPING(...)` and `TUMBLING(...)` windowed forms; bytes
//! none reads are shown escaped (`UNRECOGNISED_BYTES`).

use std::sync::Arc;
use std::time::Duration;

use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::Client;
use sluice_log::model::TopicPartition;

use crate::error::{KsqlError, Result};

/// A running `PRINT`: its lines as they come, until `LIMIT` (then the channel closes) or it
/// is dropped (the client went away).
pub struct Printing {
    /// Each line to print; an empty line when no record came for a while (it keeps the
    /// connection alive, as ksqlDB's does).
    pub lines: tokio::sync::mpsc::Receiver<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Printing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long `PRINT` waits for records before it writes an empty line.
const IDLE_LINE: Duration = Duration::from_secs(1);

/// Starts printing `topic` from its start (`from_beginning`) or its end, every
/// `interval`-th record, `limit` of them at most.
pub async fn start(
    client: Arc<Client>,
    topic: &str,
    from_beginning: bool,
    interval: Option<u64>,
    limit: Option<u64>,
) -> Result<Printing> {
    let interval = interval.unwrap_or(1);
    if interval < 1 {
        return Err(KsqlError::statement(format!(
            "INTERVAL must be greater than one, but was: {interval}"
        )));
    }
    let info = client.topic(topic, false).await.map_err(|_| {
        KsqlError::statement(format!(
            "Could not find topic '{topic}', or the KSQL user does not have permissions to list the topic. Topic names are case-sensitive."
        ))
    })?;
    let name: Arc<str> = Arc::from(topic);
    let start = if from_beginning {
        StartOffset::Beginning
    } else {
        StartOffset::End
    };
    let partitions = (0..info.leaders.len() as i32)
        .map(|partition| {
            (
                TopicPartition {
                    topic: name.clone(),
                    partition,
                },
                start,
            )
        })
        .collect();
    let mut consumer = Consumer::assign(client, partitions, ConsumerConfig::default())
        .await
        .map_err(|e| KsqlError::statement(e.to_string()))?;
    let (tx, lines) = tokio::sync::mpsc::channel(1024);
    let task = tokio::spawn(async move {
        let mut formatter = RecordFormatter::new();
        let (mut polled, mut written) = (0u64, 0u64);
        let limit = limit.unwrap_or(u64::MAX);
        while written < limit {
            let records = match consumer.poll_timeout(500, IDLE_LINE).await {
                Ok(records) => records,
                Err(err) => {
                    let _ = tx.send(err.to_string()).await;
                    return;
                }
            };
            if records.is_empty() {
                if tx.send(String::new()).await.is_err() {
                    return;
                }
                continue;
            }
            let formatted = formatter.format(&records);
            let mut out = Vec::new();
            for line in formatted {
                if polled % interval == 0 {
                    written += 1;
                    out.push(line);
                }
                polled += 1;
                if written >= limit {
                    break;
                }
            }
            out.splice(0..0, formatter.format_changes());
            for line in out {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Printing { lines, task })
}

/// Reads bytes as one format (`None`: it cannot).
type Reader = fn(&[u8]) -> Option<String>;

/// A format a key or value may be in: its name and how it reads bytes.
#[derive(Clone)]
struct NamedFormat {
    name: String,
    read: ReadFn,
}

/// Reads bytes as one format, maybe through a window's layout.
type ReadFn = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// The formats each of a topic's keys and values may still be in, narrowed by every record
/// seen (ksqlDB's `RecordFormatter`).
struct RecordFormatter {
    keys: Candidates,
    values: Candidates,
    /// What `Key format:` / `Value format:` said last.
    shown: (Vec<String>, Vec<String>),
}

struct Candidates {
    formats: Vec<NamedFormat>,
    seen: bool,
}

impl Candidates {
    fn new(windowed: bool) -> Candidates {
        let plain: [(&str, Reader); 5] = [
            ("JSON", read_json),
            ("KAFKA_INT", read_int),
            ("KAFKA_BIGINT", read_bigint),
            ("KAFKA_DOUBLE", read_double),
            ("KAFKA_STRING", read_string),
        ];
        let mut formats = Vec::new();
        for (name, read) in plain {
            if windowed {
                formats.push(NamedFormat {
                    name: format!("SESSION({name})"),
                    read: Arc::new(move |bytes: &[u8]| {
                        let at = bytes.len().checked_sub(16)?;
                        let end = be_i64(&bytes[at..at + 8])?;
                        let start = be_i64(&bytes[at + 8..])?;
                        Some(format!("[{}@{start}/{end}]", read(&bytes[..at])?))
                    }),
                });
                for kind in ["HOPPING", "TUMBLING"] {
                    formats.push(NamedFormat {
                        name: format!("{kind}({name})"),
                        read: Arc::new(move |bytes: &[u8]| {
                            let at = bytes.len().checked_sub(8)?;
                            let start = be_i64(&bytes[at..])?;
                            Some(format!("[{}@{start}/-]", read(&bytes[..at])?))
                        }),
                    });
                }
            }
            formats.push(NamedFormat {
                name: name.to_string(),
                read: Arc::new(read),
            });
        }
        Candidates {
            formats,
            seen: false,
        }
    }

    /// `bytes` in the first format still possible that reads them; the formats that
    /// cannot are dropped.
    fn format(&mut self, bytes: Option<&[u8]>) -> String {
        let Some(bytes) = bytes else {
            return "<null>".to_string();
        };
        self.seen = true;
        let mut first = None;
        self.formats.retain(|format| match (format.read)(bytes) {
            Some(text) => {
                first.get_or_insert(text);
                true
            }
            None => false,
        });
        first.unwrap_or_else(|| escaped(bytes))
    }

    /// The names of the formats still possible, as ksqlDB lists them.
    fn possible(&self) -> Vec<String> {
        if !self.seen {
            return vec!["¯\\_(ツ)_/¯ - no data processed".to_string()];
        }
        self.formats.iter().map(|f| f.name.clone()).collect()
    }
}

impl RecordFormatter {
    fn new() -> RecordFormatter {
        RecordFormatter {
            keys: Candidates::new(true),
            values: Candidates::new(false),
            shown: (Vec::new(), Vec::new()),
        }
    }

    /// Each record's line. A batch whose records drop the format the first of them was
    /// shown in is shown again in the format left (as ksqlDB's formatter does).
    fn format(&mut self, records: &[sluice_log::client::consumer::ConsumerRecord]) -> Vec<String> {
        let before = (
            self.keys.formats.first().map(|f| f.name.clone()),
            self.values.formats.first().map(|f| f.name.clone()),
        );
        let lines = self.lines(records);
        let keeps = |candidates: &Candidates, name: &Option<String>| {
            name.as_ref()
                .is_none_or(|n| candidates.formats.iter().any(|f| &f.name == n))
        };
        if keeps(&self.keys, &before.0) && keeps(&self.values, &before.1) {
            return lines;
        }
        self.lines(records)
    }

    fn lines(&mut self, records: &[sluice_log::client::consumer::ConsumerRecord]) -> Vec<String> {
        records
            .iter()
            .map(|record| {
                format!(
                    "rowtime: {}, key: {}, value: {}, partition: {}",
                    rowtime(record.timestamp),
                    self.keys.format(record.key.as_deref()),
                    self.values.format(record.value.as_deref()),
                    record.partition
                )
            })
            .collect()
    }

    /// `Key format: ...` and `Value format: ...` lines for what changed since last shown.
    fn format_changes(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (prefix, possible, shown) in [
            ("Key format: ", self.keys.possible(), &mut self.shown.0),
            ("Value format: ", self.values.possible(), &mut self.shown.1),
        ] {
            if *shown == possible && !shown.is_empty() {
                continue;
            }
            out.push(if possible.is_empty() {
                format!("{prefix} does not match any supported format. It may be a STRING with encoding other than UTF8, or some other format.")
            } else {
                format!("{prefix}{}", possible.join(" or "))
            });
            *shown = possible;
        }
        out
    }
}

/// A record's timestamp as ksqlDB prints it (`yyyy/MM/dd HH:mm:ss.SSS Z`, UTC).
fn rowtime(timestamp: i64) -> String {
    match arrow::temporal_conversions::timestamp_ms_to_datetime(timestamp) {
        Some(time) if timestamp >= 0 => time.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string(),
        _ => "N/A".to_string(),
    }
}

fn be_i64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

/// UTF-8 text with something in it (ksqlDB's string and JSON readers refuse empty data).
fn text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_empty() {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

fn read_json(bytes: &[u8]) -> Option<String> {
    let text = text(bytes)?;
    serde_json::from_str::<serde_json::Value>(text).ok()?;
    Some(text.to_string())
}

fn read_string(bytes: &[u8]) -> Option<String> {
    text(bytes).map(str::to_string)
}

fn read_int(bytes: &[u8]) -> Option<String> {
    Some(i32::from_be_bytes(bytes.try_into().ok()?).to_string())
}

fn read_bigint(bytes: &[u8]) -> Option<String> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?).to_string())
}

fn read_double(bytes: &[u8]) -> Option<String> {
    Some(java_double(f64::from_be_bytes(bytes.try_into().ok()?)))
}

/// A double as Java's `Double.toString` writes it: `1.0`, `0.001`, `1.0E7`, `1.5E-4`,
/// `NaN`, `Infinity`.
fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = v.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let shortest = format!("{v}");
        return if shortest.contains('.') {
            shortest
        } else {
            format!("{shortest}.0")
        };
    }
    // Scientific: the shortest digits that read back, as `d.dddE±n`.
    let scientific = format!("{v:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

/// Bytes no format reads, as Kafka's `Bytes.toString` shows them: printable ASCII as it
/// is, the rest as `\xHH`.
fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> sluice_log::client::consumer::ConsumerRecord {
        sluice_log::client::consumer::ConsumerRecord {
            topic: Arc::from("t"),
            partition: 0,
            offset: 0,
            timestamp: 1_700_000_000_123,
            key: key.map(bytes::Bytes::copy_from_slice),
            value: value.map(bytes::Bytes::copy_from_slice),
            headers: Vec::new(),
        }
    }

    #[test]
    fn formats_narrow_as_records_come_and_each_line_is_ksqldbs() {
        let mut formatter = RecordFormatter::new();
        let lines = formatter.format(&[record(Some(b"k1"), Some(br#"{"a":1}"#))]);
        assert_eq!(
            lines,
            vec![r#"rowtime: 2023/11/14 22:13:20.123 Z, key: k1, value: {"a":1}, partition: 0"#]
        );
        // "k1" is not JSON, nor 4 or 8 bytes: only strings are left for keys.
        assert_eq!(
            formatter.format_changes(),
            vec![
                "Key format: KAFKA_STRING",
                "Value format: JSON or KAFKA_STRING"
            ]
        );
        assert!(
            formatter.format_changes().is_empty(),
            "unchanged: not shown again"
        );
        // A value that is not JSON drops JSON: the line shows it as a string.
        let lines = formatter.format(&[record(None, Some(b"plain"))]);
        assert_eq!(
            lines,
            vec!["rowtime: 2023/11/14 22:13:20.123 Z, key: <null>, value: plain, partition: 0"]
        );
        assert_eq!(
            formatter.format_changes(),
            vec!["Value format: KAFKA_STRING"]
        );
    }

    #[test]
    fn numbers_windowed_keys_and_unreadable_bytes() {
        let mut formatter = RecordFormatter::new();
        let mut windowed = 7i32.to_be_bytes().to_vec();
        windowed.extend(1000i64.to_be_bytes());
        let lines = formatter.format(&[record(Some(&windowed), Some(&2.5f64.to_be_bytes()))]);
        // The first format that reads 12 bytes: a 4-byte INT key in a time window; 8 bytes
        // read as a BIGINT before a DOUBLE (ksqlDB's order, so its answer too).
        assert_eq!(
            lines,
            vec!["rowtime: 2023/11/14 22:13:20.123 Z, key: [7@1000/-], value: 4612811918334230528, partition: 0"]
        );
        assert_eq!(
            formatter.format_changes(),
            vec![
                "Key format: HOPPING(KAFKA_INT) or TUMBLING(KAFKA_INT) or HOPPING(KAFKA_STRING) or TUMBLING(KAFKA_STRING)",
                "Value format: KAFKA_BIGINT or KAFKA_DOUBLE or KAFKA_STRING",
            ]
        );
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(escaped(&[0, b'a', 0xff]), "\\x00a\\xFF");
        assert_eq!(rowtime(0), "1970/01/01 00:00:00.000 Z");
    }
}
