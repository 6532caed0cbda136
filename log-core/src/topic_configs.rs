//! The catalog of topic configs: every config Kafka 4.x documents for topics, with its type,
//! default, validator and broker-level synonyms (Kafka's `LogConfig` and
//! `ServerTopicConfigSynonyms`, read off Apache Kafka 4.4 — `compat/kafka/`), plus the three
//! that Kafka 3.x still accepted and 4.0 dropped, which Sluice keeps accepting for clients and
//! tools written against 3.x.
//!
//! [`LogConfig`](crate::config::LogConfig) validates with it, DescribeConfigs describes from
//! it, and the broker accepts the synonyms it names as broker settings.

use crate::error::{Error, Result};

/// Kafka's config types, with DescribeConfigs' codes (v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean = 1,
    /// A string.
    String = 2,
    /// A 32-bit integer.
    Int = 3,
    /// A 16-bit integer.
    Short = 4,
    /// A 64-bit integer.
    Long = 5,
    /// A double.
    Double = 6,
    /// A comma-separated list.
    List = 7,
    /// A Java class name.
    Class = 8,
    /// A secret: never shown.
    Password = 9,
}

impl ConfigType {
    /// Kafka's name for the type, as its errors write it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }

    /// Checks that `value` parses as this type (Kafka's `ConfigDef.parseType`), with Kafka's
    /// words when it does not.
    pub fn check(self, value: &str) -> std::result::Result<(), String> {
        let trimmed = value.trim();
        let ok = match self {
            ConfigType::Boolean => {
                trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false")
            }
            ConfigType::Int => trimmed.parse::<i32>().is_ok(),
            ConfigType::Short => trimmed.parse::<i16>().is_ok(),
            ConfigType::Long => trimmed.parse::<i64>().is_ok(),
            ConfigType::Double => trimmed.parse::<f64>().is_ok(),
            ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => {
                true
            }
        };
        match (ok, self) {
            (true, _) => Ok(()),
            (false, ConfigType::Boolean) => Err("Expected value to be either true or false".into()),
            (false, other) => Err(format!("Not a number of type {}", other.name())),
        }
    }
}

/// How a value is checked (Kafka's validators), after it parses as its type.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// Any value of the type.
    Any,
    /// At least this.
    AtLeast(i64),
    /// Between these, inclusive.
    Between(i64, i64),
    /// `compression.gzip.level`: 1 to 9, or -1.
    GzipLevel,
    /// A number from 0 to 1.
    Ratio,
    /// One of these (case-sensitive, as Kafka's `ValidString`).
    OneOf(&'static [&'static str]),
    /// A non-empty list of these (Kafka's `ValidList`).
    ListOf(&'static [&'static str]),
    /// Replication throttles: `*`, or `partition:broker` pairs.
    ThrottledReplicas,
}

/// What Sluice does with a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It changes what the log does.
    InForce,
    /// Validated, stored and described; it takes effect with replication or tiered storage,
    /// which a single Sluice node does not have yet.
    NotYetInForce,
    /// Accepted for clients written against Kafka 3.x; no effect (Kafka 4.0 refuses it).
    Legacy,
}

/// A broker setting that gives a topic config its default, scaled to the topic's unit
/// (`log.retention.hours` counts hours of `retention.ms`).
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    /// The broker config's name.
    pub name: &'static str,
    /// What one unit of it is worth in the topic config's unit.
    pub scale: i64,
}

const fn same(name: &'static str) -> Synonym {
    Synonym { name, scale: 1 }
}

/// One topic config.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Its type.
    pub config_type: ConfigType,
    /// Kafka's default, as DescribeConfigs shows it.
    pub default: &'static str,
    /// Broker settings that set its default, highest precedence first.
    pub synonyms: &'static [Synonym],
    /// How values are checked.
    pub check: Check,
    /// What Sluice does with it.
    pub effect: Effect,
    /// A line on what it does.
    pub doc: &'static str,
}

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Kafka's topic configs, in Kafka's order.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "segment.bytes",
        ConfigType::Int,
        "1073741824",
        &[same("log.segment.bytes")],
        Check::AtLeast(1_048_576),
        Effect::InForce,
        "The largest a segment file grows before a new one is rolled.",
    ),
    def(
        "segment.ms",
        ConfigType::Long,
        "604800000",
        &[
            same("log.roll.ms"),
            Synonym {
                name: "log.roll.hours",
                scale: HOUR_MS,
            },
        ],
        Check::AtLeast(1),
        Effect::InForce,
        "Roll a new segment once the active one's first record is this old, so that retention and compaction can act on it.",
    ),
    def(
        "segment.jitter.ms",
        ConfigType::Long,
        "0",
        &[
            same("log.roll.jitter.ms"),
            Synonym {
                name: "log.roll.jitter.hours",
                scale: HOUR_MS,
            },
        ],
        Check::AtLeast(0),
        Effect::InForce,
        "Up to this much is taken at random off segment.ms for each segment, so that partitions do not all roll at once.",
    ),
    def(
        "segment.index.bytes",
        ConfigType::Int,
        "10485760",
        &[same("log.index.size.max.bytes")],
        Check::AtLeast(4),
        Effect::InForce,
        "The size of a segment's offset index; a full index rolls the segment.",
    ),
    def(
        "flush.messages",
        ConfigType::Long,
        "9223372036854775807",
        &[same("log.flush.interval.messages")],
        Check::AtLeast(1),
        Effect::InForce,
        "fsync the log after this many records (1: every append).",
    ),
    def(
        "flush.ms",
        ConfigType::Long,
        "9223372036854775807",
        &[
            same("log.flush.interval.ms"),
            same("log.flush.scheduler.interval.ms"),
        ],
        Check::AtLeast(0),
        Effect::InForce,
        "fsync the log when its oldest unflushed record is this old.",
    ),
    def(
        "retention.bytes",
        ConfigType::Long,
        "-1",
        &[same("log.retention.bytes")],
        Check::Any,
        Effect::InForce,
        "Delete the oldest segments while a partition is larger than this (-1: no limit).",
    ),
    def(
        "retention.ms",
        ConfigType::Long,
        "604800000",
        &[
            same("log.retention.ms"),
            Synonym {
                name: "log.retention.minutes",
                scale: MINUTE_MS,
            },
            Synonym {
                name: "log.retention.hours",
                scale: HOUR_MS,
            },
        ],
        Check::AtLeast(-1),
        Effect::InForce,
        "Delete segments whose newest record is older than this (-1: keep forever).",
    ),
    def(
        "max.message.bytes",
        ConfigType::Int,
        "1048588",
        &[same("message.max.bytes")],
        Check::AtLeast(0),
        Effect::InForce,
        "The largest record batch accepted, after compression.",
    ),
    def(
        "max.decompressed.message.bytes",
        ConfigType::Int,
        "2147483639",
        &[same("max.decompressed.message.bytes")],
        Check::Between(1, 2_147_483_639),
        Effect::NotYetInForce,
        "The largest a record batch may be once decompressed.",
    ),
    def(
        "index.interval.bytes",
        ConfigType::Int,
        "4096",
        &[same("log.index.interval.bytes")],
        Check::AtLeast(0),
        Effect::InForce,
        "Bytes of log between two offset index entries.",
    ),
    def(
        "delete.retention.ms",
        ConfigType::Long,
        "86400000",
        &[same("log.cleaner.delete.retention.ms")],
        Check::AtLeast(0),
        Effect::InForce,
        "How long tombstones stay after compaction reached them.",
    ),
    def(
        "min.compaction.lag.ms",
        ConfigType::Long,
        "0",
        &[same("log.cleaner.min.compaction.lag.ms")],
        Check::AtLeast(0),
        Effect::InForce,
        "Records younger than this are not compacted.",
    ),
    def(
        "max.compaction.lag.ms",
        ConfigType::Long,
        "9223372036854775807",
        &[same("log.cleaner.max.compaction.lag.ms")],
        Check::AtLeast(1),
        Effect::InForce,
        "Records older than this are compacted whatever the dirty ratio (the active segment rolls for it).",
    ),
    def(
        "file.delete.delay.ms",
        ConfigType::Long,
        "60000",
        &[same("log.segment.delete.delay.ms")],
        Check::AtLeast(0),
        Effect::InForce,
        "How long a deleted segment's files wait, renamed .deleted, before they are removed.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        ConfigType::Double,
        "0.5",
        &[same("log.cleaner.min.cleanable.ratio")],
        Check::Ratio,
        Effect::InForce,
        "Compact once this share of the log has not been compacted.",
    ),
    def(
        "cleanup.policy",
        ConfigType::List,
        "delete",
        &[same("log.cleanup.policy")],
        Check::ListOf(&["compact", "delete"]),
        Effect::InForce,
        "delete (retention), compact (the latest record of each key), or both.",
    ),
    def(
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
        &[same("unclean.leader.election.enable")],
        Check::Any,
        Effect::NotYetInForce,
        "Whether a replica out of sync may become leader, losing data.",
    ),
    def(
        "min.insync.replicas",
        ConfigType::Int,
        "1",
        &[same("min.insync.replicas")],
        Check::AtLeast(1),
        Effect::NotYetInForce,
        "Replicas that must have a write for acks=all to succeed.",
    ),
    def(
        "compression.type",
        ConfigType::String,
        "producer",
        &[same("compression.type")],
        Check::OneOf(COMPRESSION_TYPES),
        Effect::InForce,
        "The codec batches are stored with; producer keeps the producer's.",
    ),
    def(
        "compression.gzip.level",
        ConfigType::Int,
        "-1",
        &[same("compression.gzip.level")],
        Check::GzipLevel,
        Effect::InForce,
        "The gzip level when the broker compresses (-1: the codec's default).",
    ),
    def(
        "compression.lz4.level",
        ConfigType::Int,
        "9",
        &[same("compression.lz4.level")],
        Check::Between(1, 17),
        Effect::InForce,
        "The lz4 level when the broker compresses.",
    ),
    def(
        "compression.zstd.level",
        ConfigType::Int,
        "3",
        &[same("compression.zstd.level")],
        Check::Between(-131_072, 22),
        Effect::InForce,
        "The zstd level when the broker compresses.",
    ),
    def(
        "preallocate",
        ConfigType::Boolean,
        "false",
        &[same("log.preallocate")],
        Check::Any,
        Effect::InForce,
        "Reserve a new segment's segment.bytes on disk when it is created.",
    ),
    def(
        "message.timestamp.type",
        ConfigType::String,
        "CreateTime",
        &[same("log.message.timestamp.type")],
        Check::OneOf(TIMESTAMP_TYPES),
        Effect::InForce,
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's.",
    ),
    def(
        "message.timestamp.before.max.ms",
        ConfigType::Long,
        "9223372036854775807",
        &[same("log.message.timestamp.before.max.ms")],
        Check::AtLeast(0),
        Effect::InForce,
        "How far in the past a CreateTime timestamp may be.",
    ),
    def(
        "message.timestamp.after.max.ms",
        ConfigType::Long,
        "3600000",
        &[same("log.message.timestamp.after.max.ms")],
        Check::AtLeast(0),
        Effect::InForce,
        "How far in the future a CreateTime timestamp may be.",
    ),
    def(
        "leader.replication.throttled.replicas",
        ConfigType::List,
        "",
        &[],
        Check::ThrottledReplicas,
        Effect::NotYetInForce,
        "Replicas whose leader-side replication is throttled.",
    ),
    def(
        "follower.replication.throttled.replicas",
        ConfigType::List,
        "",
        &[],
        Check::ThrottledReplicas,
        Effect::NotYetInForce,
        "Replicas whose follower-side replication is throttled.",
    ),
    def(
        "remote.storage.enable",
        ConfigType::Boolean,
        "false",
        &[],
        Check::Any,
        Effect::NotYetInForce,
        "Tiered storage for this topic.",
    ),
    def(
        "local.retention.ms",
        ConfigType::Long,
        "-2",
        &[same("log.local.retention.ms")],
        Check::AtLeast(-2),
        Effect::NotYetInForce,
        "With tiered storage, how long segments stay on local disk (-2: retention.ms).",
    ),
    def(
        "local.retention.bytes",
        ConfigType::Long,
        "-2",
        &[same("log.local.retention.bytes")],
        Check::AtLeast(-2),
        Effect::NotYetInForce,
        "With tiered storage, how much stays on local disk (-2: retention.bytes).",
    ),
    def(
        "remote.log.copy.disable",
        ConfigType::Boolean,
        "false",
        &[],
        Check::Any,
        Effect::NotYetInForce,
        "With tiered storage, stop copying segments to remote storage.",
    ),
    def(
        "remote.copy.lag.ms",
        ConfigType::Long,
        "0",
        &[same("log.remote.copy.lag.ms")],
        Check::AtLeast(-1),
        Effect::NotYetInForce,
        "With tiered storage, how long a segment waits before it is copied.",
    ),
    def(
        "remote.copy.lag.bytes",
        ConfigType::Long,
        "-1",
        &[same("log.remote.copy.lag.bytes")],
        Check::AtLeast(-1),
        Effect::NotYetInForce,
        "With tiered storage, how much data waits before it is copied.",
    ),
    def(
        "remote.log.delete.on.disable",
        ConfigType::Boolean,
        "false",
        &[],
        Check::Any,
        Effect::NotYetInForce,
        "With tiered storage, delete remote data when it is turned off.",
    ),
    def(
        "errors.deadletterqueue.group.enable",
        ConfigType::Boolean,
        "false",
        &[],
        Check::Any,
        Effect::NotYetInForce,
        "Whether groups may write dead letters to this topic.",
    ),
    // Kafka 3.x's, refused by 4.0: accepted so that 3.x-era clients and tools work.
    def(
        "message.format.version",
        ConfigType::String,
        "3.0-IV1",
        &[same("log.message.format.version")],
        Check::Any,
        Effect::Legacy,
        "Deprecated (removed in Kafka 4.0): batches are always stored in format v2.",
    ),
    def(
        "message.downconversion.enable",
        ConfigType::Boolean,
        "true",
        &[same("log.message.downconversion.enable")],
        Check::Any,
        Effect::Legacy,
        "Deprecated (removed in Kafka 4.0): Sluice serves only format v2, to clients that read it.",
    ),
    def(
        "message.timestamp.difference.max.ms",
        ConfigType::Long,
        "9223372036854775807",
        &[same("log.message.timestamp.difference.max.ms")],
        Check::AtLeast(0),
        Effect::Legacy,
        "Deprecated (removed in Kafka 4.0): before.max.ms and after.max.ms, where those are not set.",
    ),
];

/// Kafka's hidden test setting: a segment size below `segment.bytes`' 1 MiB minimum.
pub const INTERNAL_SEGMENT_BYTES: &str = "internal.segment.bytes";

#[allow(clippy::too_many_arguments)]
const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    synonyms: &'static [Synonym],
    check: Check,
    effect: Effect,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        config_type,
        default,
        synonyms,
        check,
        effect,
        doc,
    }
}

/// The definition of a topic config, by name.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// The topic config a broker setting gives defaults to, with its scale.
pub fn topic_config_of_synonym(broker_key: &str) -> Option<(&'static TopicConfigDef, i64)> {
    TOPIC_CONFIGS.iter().find_map(|def| {
        def.synonyms
            .iter()
            .find(|s| s.name == broker_key)
            .map(|s| (def, s.scale))
    })
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        key: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

impl TopicConfigDef {
    /// Checks `value` as Kafka does and returns it as Kafka shows it (trimmed; a list without
    /// blanks). Errors use Kafka's wording.
    pub fn validate(&self, value: &str) -> Result<String> {
        let trimmed = value.trim();
        let err = |reason: String| invalid(self.name, value, reason);
        match self.config_type {
            ConfigType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" => Ok("true".into()),
                "false" => Ok("false".into()),
                _ => Err(err("Expected value to be either true or false".into())),
            },
            ConfigType::Int | ConfigType::Short | ConfigType::Long => {
                self.config_type.check(trimmed).map_err(err)?;
                let n: i64 = trimmed.parse().map_err(|_| {
                    err(format!("Not a number of type {}", self.config_type.name()))
                })?;
                self.check_number(n).map_err(err)?;
                Ok(n.to_string())
            }
            ConfigType::Double => {
                let d: f64 = trimmed
                    .parse()
                    .map_err(|_| err("Not a number of type DOUBLE".into()))?;
                if matches!(self.check, Check::Ratio) && !(0.0..=1.0).contains(&d) {
                    return Err(err(if d < 0.0 {
                        "Value must be at least 0".into()
                    } else {
                        "Value must be no more than 1".into()
                    }));
                }
                Ok(trimmed.to_string())
            }
            ConfigType::String | ConfigType::Class | ConfigType::Password => match self.check {
                Check::OneOf(valid) if !valid.contains(&trimmed) => {
                    Err(err(format!("String must be one of: {}", valid.join(", "))))
                }
                _ => Ok(trimmed.to_string()),
            },
            ConfigType::List => {
                let items: Vec<&str> = trimmed
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                match self.check {
                    Check::ListOf(valid) => {
                        if items.is_empty() {
                            return Err(err("Empty list is not allowed".into()));
                        }
                        if let Some(bad) = items.iter().find(|i| !valid.contains(i)) {
                            return Err(invalid(
                                self.name,
                                bad,
                                format!("String must be one of: {}", valid.join(", ")),
                            ));
                        }
                    }
                    Check::ThrottledReplicas => {
                        let pair = |item: &&str| {
                            item.split_once(':').is_some_and(|(p, b)| {
                                p.trim().parse::<i32>().is_ok() && b.trim().parse::<i32>().is_ok()
                            })
                        };
                        if !(items == ["*"] || items.iter().all(pair)) {
                            return Err(err(
                                "Must be the wildcard (*) or of the form [partitionId]:[brokerId],[partitionId]:[brokerId],...".into(),
                            ));
                        }
                    }
                    _ => {}
                }
                Ok(items.join(","))
            }
        }
    }

    fn check_number(&self, n: i64) -> std::result::Result<(), String> {
        match self.check {
            Check::AtLeast(min) if n < min => Err(format!("Value must be at least {min}")),
            Check::Between(min, _) if n < min => Err(format!("Value must be no less than {min}")),
            Check::Between(_, max) if n > max => Err(format!("Value must be no more than {max}")),
            Check::GzipLevel if n != -1 && !(1..=9).contains(&n) => {
                Err("Value must be between 1 and 9 or equal to -1".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str, value: &str) -> String {
        match topic_config(name).unwrap().validate(value).unwrap_err() {
            Error::InvalidConfig { reason, .. } => reason,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn values_are_checked_with_kafkas_words() {
        assert_eq!(
            reason("segment.bytes", "2000"),
            "Value must be at least 1048576"
        );
        assert_eq!(reason("retention.ms", "abc"), "Not a number of type LONG");
        assert_eq!(
            reason("segment.bytes", "4294967296"),
            "Not a number of type INT"
        );
        assert_eq!(
            reason("compression.type", "bogus"),
            "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"
        );
        assert_eq!(
            reason("compression.gzip.level", "99"),
            "Value must be between 1 and 9 or equal to -1"
        );
        assert_eq!(
            reason("compression.lz4.level", "18"),
            "Value must be no more than 17"
        );
        assert_eq!(
            reason("min.insync.replicas", "0"),
            "Value must be at least 1"
        );
        assert_eq!(
            reason("message.timestamp.type", "Bogus"),
            "String must be one of: CreateTime, LogAppendTime"
        );
        assert_eq!(
            reason("preallocate", "yes"),
            "Expected value to be either true or false"
        );
        assert_eq!(
            reason("min.cleanable.dirty.ratio", "1.5"),
            "Value must be no more than 1"
        );
        assert!(reason("leader.replication.throttled.replicas", "0-1").contains("[partitionId]"));
        let def = topic_config("cleanup.policy").unwrap();
        assert_eq!(
            def.validate(" compact , delete ").unwrap(),
            "compact,delete"
        );
        assert_eq!(
            topic_config("follower.replication.throttled.replicas")
                .unwrap()
                .validate("0:1, 1:2")
                .unwrap(),
            "0:1,1:2"
        );
        assert_eq!(
            topic_config("preallocate")
                .unwrap()
                .validate("TRUE")
                .unwrap(),
            "true"
        );
    }

    #[test]
    fn every_default_passes_its_own_check_and_synonyms_are_unique() {
        for def in TOPIC_CONFIGS {
            if def.default.is_empty() && def.config_type == ConfigType::List {
                continue;
            }
            def.validate(def.default)
                .unwrap_or_else(|err| panic!("{}: {err}", def.name));
        }
        let mut seen = std::collections::BTreeSet::new();
        for synonym in TOPIC_CONFIGS.iter().flat_map(|d| d.synonyms) {
            assert!(seen.insert(synonym.name), "{} twice", synonym.name);
        }
        assert_eq!(
            topic_config_of_synonym("log.retention.hours").map(|(d, s)| (d.name, s)),
            Some(("retention.ms", HOUR_MS))
        );
    }
}
