//! Where in the bucket a record goes (Confluent's `partitioner.class`): its Kafka
//! partition (`partition=<p>`), fields of its value (`<field>=<value>`), or its time
//! (`path.format`, a Joda-style pattern such as `'year'=YYYY/'month'=MM`, in buckets of
//! `partition.duration.ms`).

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use sluice_connect::connector::{parse_list, Props, SinkRecord};
use sluice_connect::data::Value;
use sluice_connect::{ConnectError, Result};

/// `partitioner.class`.
pub const PARTITIONER_CLASS: &str = "partitioner.class";
/// `partition.field.name`.
pub const FIELD_NAME: &str = "partition.field.name";
/// `path.format`.
pub const PATH_FORMAT: &str = "path.format";
/// `partition.duration.ms`.
pub const DURATION_MS: &str = "partition.duration.ms";
/// `locale`.
pub const LOCALE: &str = "locale";
/// `timezone`.
pub const TIMEZONE: &str = "timezone";
/// `timestamp.extractor`.
pub const EXTRACTOR: &str = "timestamp.extractor";
/// `timestamp.field`.
pub const TIMESTAMP_FIELD: &str = "timestamp.field";

/// Where a record's time comes from (`timestamp.extractor`).
#[derive(Debug, Clone, PartialEq)]
pub enum Extractor {
    /// The time it is written.
    Wallclock,
    /// The record's timestamp.
    Record,
    /// A field of its value (milliseconds, a Timestamp, or RFC 3339 text).
    RecordField(String),
}

/// A partitioner.
#[derive(Debug, Clone, PartialEq)]
pub enum Partitioner {
    /// `partition=<kafka partition>`.
    Default,
    /// `<field>=<value>` for each field.
    Field(Vec<String>),
    /// The record's time, floored to `duration_ms`, formatted by `format`.
    Time {
        /// The path pattern's parts.
        format: Vec<Token>,
        /// The bucket width.
        duration_ms: i64,
        /// Where the time comes from.
        extractor: Extractor,
        /// The time zone's offset.
        zone: FixedOffset,
    },
}

/// A piece of a `path.format`.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// Text as it is.
    Literal(String),
    /// A date or time field: its letter (`Y`, `M`, `d`, `H`, `m`, `s`) and width.
    Field(char, usize),
}

fn get<'a>(props: &'a Props, key: &str) -> Option<&'a str> {
    props.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Parses a Joda-style pattern: letters are fields, `'...'` is literal text.
pub fn parse_path_format(format: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = format.chars().peekable();
    let mut literal = String::new();
    while let Some(c) = chars.next() {
        if c == '\'' {
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        text.push('\'');
                    }
                    Some('\'') => break,
                    Some(ch) => text.push(ch),
                    None => {
                        return Err(ConnectError::config(
                            PATH_FORMAT,
                            format,
                            "an unterminated quote",
                        ))
                    }
                }
            }
            literal.push_str(&text);
        } else if c.is_ascii_alphabetic() {
            let mut width = 1;
            while chars.peek() == Some(&c) {
                chars.next();
                width += 1;
            }
            let letter = match c {
                'Y' | 'y' => 'Y',
                'M' | 'd' | 'H' | 'm' | 's' => c,
                other => {
                    return Err(ConnectError::config(
                        PATH_FORMAT,
                        format,
                        format!("the pattern letter {other:?} is not supported (Y, y, M, d, H, m, s; quote literal text)"),
                    ))
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(Token::Field(letter, width));
        } else {
            literal.push(c);
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

/// A time zone: UTC or a fixed offset (`+02:00`, `UTC+2`).
fn parse_zone(zone: &str) -> Result<FixedOffset> {
    let bad = || {
        ConnectError::config(
            TIMEZONE,
            zone,
            "supported: UTC (GMT, Etc/UTC, Z) and fixed offsets such as +02:00; named zones with daylight saving are not",
        )
    };
    let rest = match zone {
        "UTC" | "GMT" | "Z" | "Etc/UTC" | "Etc/GMT" | "UCT" => {
            return FixedOffset::east_opt(0).ok_or_else(bad)
        }
        z => z
            .strip_prefix("UTC")
            .or_else(|| z.strip_prefix("GMT"))
            .unwrap_or(z),
    };
    let (sign, digits) = match rest.chars().next() {
        Some('+') => (1, &rest[1..]),
        Some('-') => (-1, &rest[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

impl Partitioner {
    /// The partitioner `partitioner.class` names, with its settings.
    pub fn from_props(props: &Props) -> Result<Partitioner> {
        let class = get(props, PARTITIONER_CLASS)
            .unwrap_or("io.confluent.connect.storage.partitioner.DefaultPartitioner");
        let simple = class.rsplit('.').next().unwrap_or(class);
        let time = |format: String, duration_ms: i64| -> Result<Partitioner> {
            if get(props, LOCALE).is_none() {
                return Err(ConnectError::config(
                    LOCALE,
                    "",
                    "a time-based partitioner needs a locale (such as en-US)",
                ));
            }
            let zone = get(props, TIMEZONE).ok_or_else(|| {
                ConnectError::config(
                    TIMEZONE,
                    "",
                    "a time-based partitioner needs a timezone (such as UTC)",
                )
            })?;
            let extractor = match get(props, EXTRACTOR).unwrap_or("Wallclock") {
                "Wallclock" => Extractor::Wallclock,
                "Record" => Extractor::Record,
                "RecordField" => Extractor::RecordField(
                    get(props, TIMESTAMP_FIELD)
                        .ok_or_else(|| {
                            ConnectError::config(
                                TIMESTAMP_FIELD,
                                "",
                                "timestamp.extractor=RecordField needs timestamp.field",
                            )
                        })?
                        .to_string(),
                ),
                other => {
                    return Err(ConnectError::config(
                        EXTRACTOR,
                        other,
                        "supported: Wallclock, Record, RecordField",
                    ))
                }
            };
            if duration_ms <= 0 {
                return Err(ConnectError::config(
                    DURATION_MS,
                    &duration_ms.to_string(),
                    "a time-based partitioner needs partition.duration.ms above 0",
                ));
            }
            Ok(Partitioner::Time {
                format: parse_path_format(&format)?,
                duration_ms,
                extractor,
                zone: parse_zone(zone)?,
            })
        };
        match simple {
            "DefaultPartitioner" => Ok(Partitioner::Default),
            "FieldPartitioner" => {
                let fields = parse_list(get(props, FIELD_NAME).unwrap_or(""));
                if fields.is_empty() {
                    return Err(ConnectError::config(FIELD_NAME, "", "FieldPartitioner needs partition.field.name"));
                }
                Ok(Partitioner::Field(fields))
            }
            "TimeBasedPartitioner" => {
                let format = get(props, PATH_FORMAT)
                    .ok_or_else(|| ConnectError::config(PATH_FORMAT, "", "TimeBasedPartitioner needs path.format"))?;
                let duration = get(props, DURATION_MS)
                    .ok_or_else(|| ConnectError::config(DURATION_MS, "", "TimeBasedPartitioner needs partition.duration.ms"))?
                    .parse::<i64>()
                    .map_err(|_| ConnectError::config(DURATION_MS, "", "Not a number"))?;
                time(format.to_string(), duration)
            }
            "HourlyPartitioner" => time("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH".into(), 3_600_000),
            "DailyPartitioner" => time("'year'=YYYY/'month'=MM/'day'=dd".into(), 86_400_000),
            _ => Err(ConnectError::config(
                PARTITIONER_CLASS,
                class,
                "supported: io.confluent.connect.storage.partitioner.DefaultPartitioner, FieldPartitioner, TimeBasedPartitioner, HourlyPartitioner, DailyPartitioner",
            )),
        }
    }

    /// The time of `record` by this partitioner's extractor (ms), if it is time-based.
    pub fn time_of(&self, record: &SinkRecord, now_ms: i64) -> Result<Option<i64>> {
        let Partitioner::Time { extractor, .. } = self else {
            return Ok(None);
        };
        Ok(Some(match extractor {
            Extractor::Wallclock => now_ms,
            Extractor::Record => record.record.timestamp.ok_or_else(|| {
                ConnectError::Data(format!(
                    "the record at offset {} has no timestamp (timestamp.extractor=Record)",
                    record.kafka_offset
                ))
            })?,
            Extractor::RecordField(field) => {
                let value = match &record.record.value {
                    Value::Struct(s) => s.get(field).cloned(),
                    Value::Map(_) => record.record.value.map_get(field).cloned(),
                    _ => None,
                };
                match value {
                    Some(Value::Int64(ms)) => ms,
                    Some(Value::Int32(n)) => i64::from(n),
                    Some(Value::String(text)) => DateTime::parse_from_rfc3339(&text)
                        .map(|t| t.timestamp_millis())
                        .map_err(|e| ConnectError::Data(format!("timestamp.field {field}: {text:?} is not an RFC 3339 time: {e}")))?,
                    other => {
                        return Err(ConnectError::Data(format!(
                            "timestamp.field {field} of the record at offset {} is {other:?}, not a timestamp",
                            record.kafka_offset
                        )))
                    }
                }
            }
        }))
    }

    /// The record's encoded partition: the directory between the topic and the file.
    pub fn encode(&self, record: &SinkRecord, now_ms: i64) -> Result<String> {
        match self {
            Partitioner::Default => Ok(format!(
                "partition={}",
                record.record.kafka_partition.unwrap_or(0)
            )),
            Partitioner::Field(fields) => {
                let mut parts = Vec::with_capacity(fields.len());
                for field in fields {
                    let value = match &record.record.value {
                        Value::Struct(s) => s.get(field).cloned(),
                        Value::Map(_) => record.record.value.map_get(field).cloned(),
                        _ => None,
                    };
                    let text = match value {
                        Some(Value::String(s)) => s,
                        Some(Value::Boolean(b)) => b.to_string(),
                        Some(v) if v.as_i64().is_some() => v.as_i64().unwrap_or_default().to_string(),
                        other => {
                            return Err(ConnectError::Data(format!(
                                "partition.field.name {field}: the record at offset {} has {other:?}, not a string, integer or boolean",
                                record.kafka_offset
                            )))
                        }
                    };
                    parts.push(format!("{field}={text}"));
                }
                Ok(parts.join("/"))
            }
            Partitioner::Time {
                format,
                duration_ms,
                zone,
                ..
            } => {
                let ms = self.time_of(record, now_ms)?.unwrap_or(now_ms);
                // Buckets start at the zone's midnight-aligned multiples, as Confluent's do.
                let offset_ms = i64::from(zone.local_minus_utc()) * 1000;
                let bucket = (ms + offset_ms).div_euclid(*duration_ms) * duration_ms - offset_ms;
                let at = DateTime::<Utc>::from_timestamp_millis(bucket)
                    .ok_or_else(|| ConnectError::Data(format!("time {ms} is out of range")))?
                    .with_timezone(zone);
                Ok(format
                    .iter()
                    .map(|token| match token {
                        Token::Literal(text) => text.clone(),
                        Token::Field(letter, width) => {
                            let n = match letter {
                                'Y' => i64::from(at.year()),
                                'M' => i64::from(at.month()),
                                'd' => i64::from(at.day()),
                                'H' => i64::from(at.hour()),
                                'm' => i64::from(at.minute()),
                                _ => i64::from(at.second()),
                            };
                            if *letter == 'Y' && *width == 2 {
                                format!("{:02}", n % 100)
                            } else {
                                format!("{n:0width$}")
                            }
                        }
                    })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_connect::ConnectRecord;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn record(ts: i64, value: Value) -> SinkRecord {
        let mut r = ConnectRecord::new("t", None, value).with_timestamp(ts);
        r.kafka_partition = Some(3);
        SinkRecord::new(r, 42)
    }

    #[test]
    fn partitioners_encode_as_confluents_do() {
        let r = record(
            1_700_000_000_000,
            Value::string_map([("country", Value::from("fr")), ("n", Value::Int64(7))]),
        );
        assert_eq!(Partitioner::Default.encode(&r, 0).unwrap(), "partition=3");
        let field = Partitioner::from_props(&props(&[
            (
                "partitioner.class",
                "io.confluent.connect.storage.partitioner.FieldPartitioner",
            ),
            ("partition.field.name", "country,n"),
        ]))
        .unwrap();
        assert_eq!(field.encode(&r, 0).unwrap(), "country=fr/n=7");
        let hourly = Partitioner::from_props(&props(&[
            (
                "partitioner.class",
                "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
            ),
            ("path.format", "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"),
            ("partition.duration.ms", "3600000"),
            ("locale", "en-US"),
            ("timezone", "UTC"),
            ("timestamp.extractor", "Record"),
        ]))
        .unwrap();
        // 2023-11-14T22:13:20Z
        assert_eq!(
            hourly.encode(&r, 0).unwrap(),
            "year=2023/month=11/day=14/hour=22"
        );
        let daily_paris = Partitioner::from_props(&props(&[
            (
                "partitioner.class",
                "io.confluent.connect.storage.partitioner.DailyPartitioner",
            ),
            ("locale", "fr-FR"),
            ("timezone", "+02:00"),
            ("timestamp.extractor", "Record"),
        ]))
        .unwrap();
        assert_eq!(
            daily_paris.encode(&r, 0).unwrap(),
            "year=2023/month=11/day=15"
        );
        assert!(Partitioner::from_props(&props(&[
            ("partitioner.class", "DailyPartitioner"),
            ("locale", "en"),
            ("timezone", "America/New_York")
        ]))
        .is_err());
        assert!(
            Partitioner::from_props(&props(&[("partitioner.class", "FieldPartitioner")])).is_err()
        );
    }
}
