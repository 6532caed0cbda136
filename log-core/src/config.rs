//! Per-partition log configuration with Kafka's topic config names (`retention.ms`,
//! `segment.bytes`, ...). Broker-wide defaults use Kafka's broker names (`log.retention.ms`, ...);
//! a topic's overrides win over them.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// `cleanup.policy`: which of retention (delete) and compaction apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    /// Old segments are deleted by `retention.ms` / `retention.bytes`.
    pub delete: bool,
    /// Old segments are compacted to the latest record of every key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// `cleanup.policy=delete`, Kafka's default.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `cleanup.policy=compact`.
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };

    /// Parses Kafka's syntax: a comma-separated list of `delete` and `compact`.
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy::default();
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// The configuration of one partition's log. Field docs name the Kafka config.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll a new segment when the active one would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first record is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: maximum size of a segment's offset index; a full index rolls.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes of log between two offset index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms`: delete segments whose newest record is older than this; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the partition is larger; -1 is unlimited.
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: compact once this share of the log is uncompacted.
    pub min_cleanable_dirty_ratio: f64,
    /// `flush.messages`: fsync after this many records; 1 fsyncs every append.
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the oldest unflushed append is this old.
    pub flush_ms: i64,
    /// `max.message.bytes`: largest record batch accepted, including its 12-byte log overhead.
    pub max_message_bytes: usize,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1024 * 1024 + 12,
        }
    }
}

/// Every topic-level key this config understands, with the broker-level key that sets its default.
pub const TOPIC_CONFIG_KEYS: &[(&str, &str)] = &[
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("retention.bytes", "log.retention.bytes"),
    ("cleanup.policy", "log.cleanup.policy"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("max.message.bytes", "message.max.bytes"),
];

impl LogConfig {
    /// This config with topic-level overrides applied (`retention.ms=...`), validating each.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LogConfig> {
        let mut config = self.clone();
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// Broker defaults from broker-level keys (`log.retention.ms`, `log.segment.bytes`, ...).
    /// Keys that are not log keys are ignored: the broker owns them.
    pub fn from_broker_props(props: &BTreeMap<String, String>) -> Result<LogConfig> {
        let mut config = LogConfig::default();
        // Kafka's precedence: log.retention.ms over .minutes over .hours; likewise for roll.
        if let Some(hours) = props.get("log.retention.hours") {
            config.retention_ms =
                parse_long("log.retention.hours", hours)?.saturating_mul(3_600_000);
        }
        if let Some(minutes) = props.get("log.retention.minutes") {
            config.retention_ms =
                parse_long("log.retention.minutes", minutes)?.saturating_mul(60_000);
        }
        if let Some(hours) = props.get("log.roll.hours") {
            config.segment_ms = parse_long("log.roll.hours", hours)?.saturating_mul(3_600_000);
        }
        for (topic_key, broker_key) in TOPIC_CONFIG_KEYS {
            if let Some(value) = props.get(*broker_key) {
                config.set(topic_key, value).map_err(|err| match err {
                    Error::InvalidConfig { value, reason, .. } => Error::InvalidConfig {
                        key: broker_key.to_string(),
                        value,
                        reason,
                    },
                    other => other,
                })?;
            }
        }
        Ok(config)
    }

    /// Sets one topic-level key, validating the value as Kafka does.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            // Kafka's segment.bytes is an int: file positions in the index are 32-bit.
            "segment.bytes" => self.segment_bytes = parse_int_at_least(key, value, 14)? as u64,
            "segment.ms" => self.segment_ms = parse_at_least(key, value, 1)?,
            "segment.index.bytes" => {
                self.segment_index_bytes = parse_at_least(key, value, 8)? as u64
            }
            "index.interval.bytes" => {
                self.index_interval_bytes = parse_at_least(key, value, 0)? as u64
            }
            "retention.ms" => self.retention_ms = parse_at_least(key, value, -1)?,
            "retention.bytes" => self.retention_bytes = parse_long(key, value)?,
            "cleanup.policy" => {
                self.cleanup_policy =
                    CleanupPolicy::parse(value).ok_or_else(|| Error::InvalidConfig {
                        key: key.into(),
                        value: value.into(),
                        reason: "expected a list of \"delete\" and \"compact\"".into(),
                    })?
            }
            "delete.retention.ms" => self.delete_retention_ms = parse_at_least(key, value, 0)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_at_least(key, value, 0)?,
            "min.cleanable.dirty.ratio" => {
                let ratio: f64 = value.trim().parse().map_err(|_| Error::InvalidConfig {
                    key: key.into(),
                    value: value.into(),
                    reason: "expected a number between 0 and 1".into(),
                })?;
                if !(0.0..=1.0).contains(&ratio) {
                    return Err(Error::InvalidConfig {
                        key: key.into(),
                        value: value.into(),
                        reason: "must be between 0 and 1".into(),
                    });
                }
                self.min_cleanable_dirty_ratio = ratio;
            }
            "flush.messages" => self.flush_messages = parse_at_least(key, value, 1)?,
            "flush.ms" => self.flush_ms = parse_at_least(key, value, 0)?,
            "max.message.bytes" => {
                self.max_message_bytes = parse_int_at_least(key, value, 0)? as usize
            }
            _ => {
                return Err(Error::InvalidConfig {
                    key: key.into(),
                    value: value.into(),
                    reason: "unknown topic configuration".into(),
                })
            }
        }
        Ok(())
    }

    /// The value of a topic-level key, rendered as Kafka renders it.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "cleanup.policy" => self.cleanup_policy.to_string(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "min.cleanable.dirty.ratio" => self.min_cleanable_dirty_ratio.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            _ => return None,
        })
    }

    /// Number of entries the offset index of one segment may hold before the segment rolls.
    pub(crate) fn max_index_entries(&self) -> usize {
        (self.segment_index_bytes / 8).max(1) as usize
    }
}

fn parse_long(key: &str, value: &str) -> Result<i64> {
    value.trim().parse().map_err(|_| Error::InvalidConfig {
        key: key.into(),
        value: value.into(),
        reason: "expected a whole number".into(),
    })
}

/// A Kafka `int` config: at least `min`, at most 2^31 - 1.
fn parse_int_at_least(key: &str, value: &str, min: i64) -> Result<i64> {
    let parsed = parse_at_least(key, value, min)?;
    if parsed > i64::from(i32::MAX) {
        return Err(Error::InvalidConfig {
            key: key.into(),
            value: value.into(),
            reason: format!("must be at most {}", i32::MAX),
        });
    }
    Ok(parsed)
}

fn parse_at_least(key: &str, value: &str, min: i64) -> Result<i64> {
    let parsed = parse_long(key, value)?;
    if parsed < min {
        return Err(Error::InvalidConfig {
            key: key.into(),
            value: value.into(),
            reason: format!("must be at least {min}"),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_validate_with_the_key_named() {
        let config = LogConfig::default()
            .with_overrides([
                ("retention.ms", "1000"),
                ("cleanup.policy", "compact,delete"),
            ])
            .unwrap();
        assert_eq!(config.retention_ms, 1000);
        assert_eq!(
            config.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: true
            }
        );
        assert_eq!(config.get("cleanup.policy").unwrap(), "compact,delete");

        let err = LogConfig::default()
            .with_overrides([("segment.bytes", "ten")])
            .unwrap_err();
        assert!(err.to_string().contains("segment.bytes"), "{err}");
        let err = LogConfig::default()
            .with_overrides([("retention.ms", "-2")])
            .unwrap_err();
        assert!(err.to_string().contains("at least -1"), "{err}");
        let err = LogConfig::default()
            .with_overrides([("cleanup.policy", "forever")])
            .unwrap_err();
        assert!(err.to_string().contains("cleanup.policy"), "{err}");
        let err = LogConfig::default()
            .with_overrides([("retention.mss", "1")])
            .unwrap_err();
        assert!(err.to_string().contains("unknown"), "{err}");
    }

    #[test]
    fn broker_props_set_defaults_with_kafka_precedence() {
        let props: BTreeMap<String, String> = [
            ("log.retention.hours", "1"),
            ("log.segment.bytes", "1024"),
            ("broker.id", "7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = LogConfig::from_broker_props(&props).unwrap();
        assert_eq!(config.retention_ms, 3_600_000);
        assert_eq!(config.segment_bytes, 1024);

        let mut props = props;
        props.insert("log.retention.ms".into(), "5".into());
        assert_eq!(
            LogConfig::from_broker_props(&props).unwrap().retention_ms,
            5
        );
        props.insert("log.segment.bytes".into(), "1".into());
        let err = LogConfig::from_broker_props(&props).unwrap_err();
        assert!(err.to_string().contains("log.segment.bytes"), "{err}");
    }
}
