//! Broker configuration with Kafka's names (`listeners`, `num.partitions`, ...), from a map of
//! `key → value` strings (sluice.toml, `--override`, environment). Unknown keys and bad values are
//! errors naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::topic_configs::{topic_config_of_synonym, TOPIC_CONFIGS};

/// A `PLAINTEXT://host:port` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Host name or address as written.
    pub host: String,
    /// Port; 0 picks a free one when binding.
    pub port: u16,
}

impl Listener {
    /// Parses `PLAINTEXT://host:port` (the only security protocol so far).
    pub fn parse(key: &str, value: &str) -> Result<Listener> {
        let invalid = |reason: &str| Error::InvalidConfig {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        };
        let first = value.split(',').next().unwrap_or_default().trim();
        let rest = first.strip_prefix("PLAINTEXT://").ok_or_else(|| {
            invalid(
                "expected PLAINTEXT://host:port (other security protocols are not supported yet)",
            )
        })?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected host:port"))?;
        let port = port
            .parse()
            .map_err(|_| invalid("port is not a number from 0 to 65535"))?;
        Ok(Listener {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        })
    }

    /// The address to bind.
    pub fn socket_addr(&self) -> Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        (host, self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| Error::InvalidConfig {
                key: "listeners".into(),
                value: format!("{}:{}", self.host, self.port),
                reason: "host does not resolve".into(),
            })
    }
}

/// Settings of one broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    /// `listeners`.
    pub listener: Listener,
    /// `advertised.listeners`: what clients are told to connect to (default: `listeners`).
    pub advertised_listener: Option<Listener>,
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics asking for -1.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`: larger requests close the connection.
    pub socket_request_max_bytes: usize,
    /// Log defaults (`log.retention.ms`, `log.segment.bytes`, `message.max.bytes`, ...).
    pub log_defaults: LogConfig,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: u64,
    /// `log.cleaner.enable`.
    pub log_cleaner_enable: bool,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: u64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: u64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: u64,
    /// `producer.id.expiration.ms`: how long a partition remembers an idempotent producer that
    /// stopped writing.
    pub producer_id_expiration_ms: u64,
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask.
    pub transaction_max_timeout_ms: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often transactions
    /// open past their timeout are aborted.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `transactional.id.expiration.ms`: how long an idle transactional id is remembered.
    pub transactional_id_expiration_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub transaction_remove_expired_transaction_cleanup_interval_ms: u64,
    /// The properties that were set explicitly (DescribeConfigs reports them as static).
    pub explicit: BTreeMap<String, String>,
}

/// Broker keys besides the log defaults, with their Kafka defaults.
pub const BROKER_KEYS: &[(&str, &str)] = &[
    ("node.id", "1"),
    ("listeners", "PLAINTEXT://127.0.0.1:9092"),
    ("advertised.listeners", ""),
    ("log.dirs", "sluice-data"),
    ("log.dir", ""),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("auto.create.topics.enable", "true"),
    ("delete.topic.enable", "true"),
    ("socket.request.max.bytes", "104857600"),
    ("log.retention.check.interval.ms", "300000"),
    ("log.cleaner.enable", "true"),
    ("log.retention.hours", "168"),
    ("log.retention.minutes", ""),
    ("log.roll.hours", "168"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("offsets.topic.num.partitions", "50"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("producer.id.expiration.ms", "86400000"),
    ("transaction.state.log.num.partitions", "50"),
    ("transaction.state.log.replication.factor", "1"),
    ("transaction.state.log.min.isr", "1"),
    ("transaction.max.timeout.ms", "900000"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
    ),
    ("transactional.id.expiration.ms", "604800000"),
    (
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        "3600000",
    ),
];

impl Default for BrokerConfig {
    fn default() -> Self {
        match BrokerConfig::from_props(&BTreeMap::new()) {
            Ok(config) => config,
            Err(err) => unreachable!("the built-in defaults are valid: {err}"),
        }
    }
}

impl BrokerConfig {
    /// Every broker config with its current value, as DescribeConfigs reports them: the broker
    /// keys, then the log defaults under their broker names.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = BROKER_KEYS
            .iter()
            .map(|(key, default)| {
                let value = self
                    .explicit
                    .get(*key)
                    .cloned()
                    .unwrap_or_else(|| match *key {
                        "node.id" => self.node_id.to_string(),
                        "log.dirs" => self
                            .log_dirs
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                        _ => default.to_string(),
                    });
                (key.to_string(), value)
            })
            .collect();
        // Each topic config's broker synonyms: the one set explicitly as given, the first
        // (the one Kafka documents) with the effective default.
        for def in TOPIC_CONFIGS {
            for (i, synonym) in def.synonyms.iter().enumerate() {
                if out.iter().any(|(key, _)| key == synonym.name) {
                    continue;
                }
                if let Some(value) = self.explicit.get(synonym.name) {
                    out.push((synonym.name.to_string(), value.clone()));
                } else if i == 0 {
                    let value = self.log_defaults.get(def.name).unwrap_or_default();
                    out.push((synonym.name.to_string(), value));
                }
            }
        }
        out
    }

    /// Whether `key` is a broker config this node understands.
    pub fn is_known_key(key: &str) -> bool {
        BROKER_KEYS.iter().any(|(k, _)| *k == key) || topic_config_of_synonym(key).is_some()
    }

    /// Builds the config from Kafka-named properties over Kafka's defaults.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<BrokerConfig> {
        if let Some(unknown) = props.keys().find(|key| !BrokerConfig::is_known_key(key)) {
            return Err(Error::InvalidConfig {
                key: unknown.clone(),
                value: props[unknown].clone(),
                reason: "unknown broker configuration".into(),
            });
        }
        let get = |key: &str| -> String {
            props.get(key).cloned().unwrap_or_else(|| {
                BROKER_KEYS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            })
        };
        let invalid = |key: &str, reason: &str| Error::InvalidConfig {
            key: key.into(),
            value: get(key),
            reason: reason.into(),
        };
        let int = |key: &str| -> Result<i64> {
            get(key)
                .trim()
                .parse()
                .map_err(|_| invalid(key, "expected a whole number"))
        };
        let boolean = |key: &str| -> Result<bool> {
            match get(key).trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(key, "expected true or false")),
            }
        };
        let non_negative = |key: &str| -> Result<u64> {
            let n = int(key)?;
            if n < 0 {
                return Err(invalid(key, "must not be negative"));
            }
            Ok(n as u64)
        };
        let positive_int = |key: &str| -> Result<u64> {
            let n = int(key)?;
            if !(1..=i64::from(i32::MAX)).contains(&n) {
                return Err(invalid(key, "must be between 1 and 2147483647"));
            }
            Ok(n as u64)
        };
        let node_id = int("node.id")?;
        if !(0..=i64::from(i32::MAX)).contains(&node_id) {
            return Err(invalid("node.id", "must be between 0 and 2147483647"));
        }
        let num_partitions = int("num.partitions")?;
        if !(1..=i64::from(i32::MAX)).contains(&num_partitions) {
            return Err(invalid("num.partitions", "must be at least 1"));
        }
        let replication = int("default.replication.factor")?;
        if !(1..=i64::from(i16::MAX)).contains(&replication) {
            return Err(invalid("default.replication.factor", "must be at least 1"));
        }
        let request_max = int("socket.request.max.bytes")?;
        if !(1..=i64::from(i32::MAX)).contains(&request_max) {
            return Err(invalid(
                "socket.request.max.bytes",
                "must be between 1 and 2147483647",
            ));
        }
        let retention_check = int("log.retention.check.interval.ms")?;
        if retention_check < 1 {
            return Err(invalid(
                "log.retention.check.interval.ms",
                "must be at least 1",
            ));
        }
        let listener = Listener::parse("listeners", &get("listeners"))?;
        let advertised = get("advertised.listeners");
        let advertised_listener = if advertised.trim().is_empty() {
            None
        } else {
            Some(Listener::parse("advertised.listeners", &advertised)?)
        };
        let dirs = if props.contains_key("log.dirs") || !props.contains_key("log.dir") {
            get("log.dirs")
        } else {
            get("log.dir")
        };
        let log_dirs: Vec<PathBuf> = dirs
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(invalid("log.dirs", "needs at least one directory"));
        }
        Ok(BrokerConfig {
            node_id: node_id as i32,
            listener,
            advertised_listener,
            log_dirs,
            num_partitions: num_partitions as i32,
            default_replication_factor: replication as i16,
            auto_create_topics_enable: boolean("auto.create.topics.enable")?,
            delete_topic_enable: boolean("delete.topic.enable")?,
            socket_request_max_bytes: request_max as usize,
            log_defaults: LogConfig::from_broker_props(props)?,
            log_retention_check_interval_ms: retention_check as u64,
            log_cleaner_enable: boolean("log.cleaner.enable")?,
            group_initial_rebalance_delay_ms: non_negative("group.initial.rebalance.delay.ms")?,
            group_min_session_timeout_ms: non_negative("group.min.session.timeout.ms")?,
            group_max_session_timeout_ms: non_negative("group.max.session.timeout.ms")?,
            offsets_topic_num_partitions: {
                let n = int("offsets.topic.num.partitions")?;
                if !(1..=10_000).contains(&n) {
                    return Err(invalid(
                        "offsets.topic.num.partitions",
                        "must be between 1 and 10000",
                    ));
                }
                n as i32
            },
            offsets_retention_ms: non_negative("offsets.retention.minutes")?.saturating_mul(60_000),
            offsets_retention_check_interval_ms: non_negative(
                "offsets.retention.check.interval.ms",
            )?
            .max(1),
            producer_id_expiration_ms: {
                let n = int("producer.id.expiration.ms")?;
                if !(1..=i64::from(i32::MAX)).contains(&n) {
                    return Err(invalid(
                        "producer.id.expiration.ms",
                        "must be between 1 and 2147483647",
                    ));
                }
                n as u64
            },
            transaction_state_log_num_partitions: {
                let n = int("transaction.state.log.num.partitions")?;
                if !(1..=10_000).contains(&n) {
                    return Err(invalid(
                        "transaction.state.log.num.partitions",
                        "must be between 1 and 10000",
                    ));
                }
                n as i32
            },
            transaction_max_timeout_ms: positive_int("transaction.max.timeout.ms")?,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: positive_int(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            )?,
            transactional_id_expiration_ms: positive_int("transactional.id.expiration.ms")?,
            transaction_remove_expired_transaction_cleanup_interval_ms: positive_int(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
            )?,
            explicit: props.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_kafkas_and_keys_are_validated_by_name() {
        let config = BrokerConfig::default();
        assert_eq!(
            config.listener,
            Listener {
                host: "127.0.0.1".into(),
                port: 9092
            }
        );
        assert_eq!(config.num_partitions, 1);
        assert!(config.auto_create_topics_enable);
        assert_eq!(config.log_defaults.max_message_bytes, 1048588);

        let config = BrokerConfig::from_props(&props(&[
            ("listeners", "PLAINTEXT://0.0.0.0:0"),
            ("num.partitions", "3"),
            ("log.retention.ms", "1000"),
        ]))
        .unwrap();
        assert_eq!(config.listener.port, 0);
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.log_defaults.retention_ms, 1000);

        for (key, value, expect) in [
            ("num.partitions", "0", "num.partitions"),
            ("listeners", "SSL://x:1", "listeners"),
            (
                "auto.create.topics.enable",
                "yes",
                "auto.create.topics.enable",
            ),
            ("log.segment.bytes", "1", "log.segment.bytes"),
            ("no.such.key", "1", "no.such.key"),
        ] {
            let err = BrokerConfig::from_props(&props(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(expect), "{key}: {err}");
        }
    }
}
