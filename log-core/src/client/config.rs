//! `ClientConfig`: client settings as a map of Kafka's property names, as Java and librdkafka
//! users write them (`bootstrap.servers`, `acks`, `group.id`, `enable.auto.commit`, ...), turned
//! into the typed configs (`ClientOptions`, `ProducerConfig`, `ConsumerConfig`, `GroupConfig`).
//!
//! One map may serve a producer and a consumer together: a property of the other role is left
//! alone, but a name no role knows, or a value that does not parse, is an error naming it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::consumer::ConsumerConfig;
use super::group_consumer::{Assignor, AutoOffsetReset, GroupConfig};
use super::producer::ProducerConfig;
use super::{Client, ClientOptions};
use crate::error::{Error, Result};

/// What `partition.assignment.strategy` accepts, for its error message.
const STRATEGIES: &str =
    "a comma-separated list of range, roundrobin, sticky, cooperative-sticky, cooperative-sticky-copartitioned";

/// Properties every client reads.
const COMMON: &[&str] = &["bootstrap.servers", "client.id", "request.timeout.ms"];
/// Producer properties.
const PRODUCER: &[&str] = &[
    "acks",
    "compression.type",
    "batch.size",
    "linger.ms",
    "max.in.flight.requests.per.connection",
    "buffer.memory",
    "retries",
    "retry.backoff.ms",
    "delivery.timeout.ms",
    "max.block.ms",
];
/// Fetch properties (assigned and group consumers).
const CONSUMER: &[&str] = &[
    "fetch.max.wait.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "isolation.level",
    "max.poll.records",
];
/// Group consumer properties.
const GROUP: &[&str] = &[
    "group.id",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "metadata.max.age.ms",
    "group.instance.id",
    "partition.assignment.strategy",
];

/// Client properties by Kafka's names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    properties: BTreeMap<String, String>,
}

impl ClientConfig {
    /// An empty map: every property at the Java client's default.
    pub fn new() -> ClientConfig {
        ClientConfig::default()
    }

    /// Sets a property (builder style); names are checked when a config is built.
    pub fn set(mut self, key: &str, value: &str) -> ClientConfig {
        self.properties
            .insert(key.trim().to_string(), value.trim().to_string());
        self
    }

    /// Reads a Java `.properties` text: `key=value` (or `key: value`) lines, `#`/`!` comments.
    pub fn from_properties(text: &str) -> Result<ClientConfig> {
        let mut config = ClientConfig::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                return Err(Error::InvalidArgument(format!(
                    "line {}: expected key=value, got {line:?}",
                    number + 1
                )));
            };
            config = config.set(key, value);
        }
        Ok(config)
    }

    /// A property's value, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Every name must be a property some client role knows.
    pub fn validate(&self) -> Result<()> {
        for key in self.properties.keys() {
            if !known(key) {
                return Err(unknown(key));
            }
        }
        Ok(())
    }

    /// `client.id`, `request.timeout.ms`.
    pub fn client_options(&self) -> Result<ClientOptions> {
        self.validate()?;
        let mut options = ClientOptions::default();
        if let Some(id) = self.get("client.id") {
            options.client_id = id.to_string();
        }
        if let Some(ms) = self.get("request.timeout.ms") {
            options.request_timeout = millis("request.timeout.ms", ms)?;
        }
        Ok(options)
    }

    /// Connects to `bootstrap.servers` with the client options.
    pub async fn connect(&self) -> Result<Arc<Client>> {
        let options = self.client_options()?;
        let servers = self
            .get("bootstrap.servers")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::InvalidArgument("bootstrap.servers is not set".into()))?;
        Client::connect(servers, options).await
    }

    /// The producer properties over the Java client's defaults.
    pub fn producer_config(&self) -> Result<ProducerConfig> {
        self.validate()?;
        let mut config = ProducerConfig::default();
        for (key, value) in self.role(PRODUCER) {
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// The fetch properties over the Java client's defaults.
    pub fn consumer_config(&self) -> Result<ConsumerConfig> {
        self.validate()?;
        let mut config = ConsumerConfig::default();
        for (key, value) in self.role(CONSUMER) {
            match key {
                "fetch.max.wait.ms" => config.max_wait = millis(key, value)?,
                "fetch.min.bytes" => config.min_bytes = int(key, value, 0)?,
                "fetch.max.bytes" => config.max_bytes = int(key, value, 1)?,
                "max.partition.fetch.bytes" => config.partition_max_bytes = int(key, value, 1)?,
                "max.poll.records" => config.max_poll_records = int(key, value, 1)? as usize,
                "isolation.level" => {
                    config.isolation_level = match value {
                        "read_uncommitted" => 0,
                        "read_committed" => 1,
                        _ => return Err(invalid(key, value, "read_uncommitted or read_committed")),
                    }
                }
                _ => return Err(unknown(key)),
            }
        }
        Ok(config)
    }

    /// The group consumer properties; `group.id` is required.
    pub fn group_config(&self) -> Result<GroupConfig> {
        let fetch = self.consumer_config()?;
        let group_id = self
            .get("group.id")
            .filter(|g| !g.is_empty())
            .ok_or_else(|| Error::InvalidArgument("group.id is not set".into()))?;
        let mut config = GroupConfig::new(group_id);
        config.fetch = fetch;
        for (key, value) in self.role(GROUP) {
            match key {
                "group.id" => {}
                "session.timeout.ms" => config.session_timeout = millis(key, value)?,
                "heartbeat.interval.ms" => config.heartbeat_interval = millis(key, value)?,
                "max.poll.interval.ms" => config.max_poll_interval = millis(key, value)?,
                "auto.commit.interval.ms" => config.auto_commit_interval = millis(key, value)?,
                "metadata.max.age.ms" => config.metadata_max_age = millis(key, value)?,
                "partition.assignment.strategy" => {
                    config.assignment_strategy = value
                        .split(',')
                        .map(|name| {
                            Assignor::from_name(name).ok_or_else(|| invalid(key, value, STRATEGIES))
                        })
                        .collect::<Result<_>>()?;
                    if config.assignment_strategy.is_empty() {
                        return Err(invalid(key, value, STRATEGIES));
                    }
                }
                "group.instance.id" => {
                    config.group_instance_id = Some(value.to_string()).filter(|v| !v.is_empty())
                }
                "enable.auto.commit" => {
                    config.enable_auto_commit = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(key, value, "true or false")),
                    }
                }
                "auto.offset.reset" => {
                    config.auto_offset_reset = match value {
                        "earliest" => AutoOffsetReset::Earliest,
                        "latest" => AutoOffsetReset::Latest,
                        "none" => AutoOffsetReset::None,
                        _ => return Err(invalid(key, value, "earliest, latest or none")),
                    }
                }
                _ => return Err(unknown(key)),
            }
        }
        if config.heartbeat_interval >= config.session_timeout {
            return Err(Error::InvalidArgument(format!(
                "heartbeat.interval.ms ({} ms) must be lower than session.timeout.ms ({} ms)",
                config.heartbeat_interval.as_millis(),
                config.session_timeout.as_millis()
            )));
        }
        Ok(config)
    }

    fn role<'a>(&'a self, names: &'a [&str]) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.properties
            .iter()
            .filter(move |(key, _)| names.contains(&key.as_str()))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

fn known(key: &str) -> bool {
    [COMMON, PRODUCER, CONSUMER, GROUP]
        .iter()
        .any(|names| names.contains(&key))
}

/// "unknown client property", with the nearest known name when one is close (a typo).
fn unknown(key: &str) -> Error {
    let nearest = [COMMON, PRODUCER, CONSUMER, GROUP]
        .iter()
        .flat_map(|names| names.iter())
        .map(|name| (edit_distance(key, name), *name))
        .min();
    match nearest {
        Some((distance, name)) if distance <= 3 => Error::InvalidArgument(format!(
            "unknown client property {key} (did you mean {name}?)"
        )),
        _ => Error::InvalidArgument(format!("unknown client property {key}")),
    }
}

fn invalid(key: &str, value: &str, expected: &str) -> Error {
    Error::InvalidArgument(format!("{key}={value}: expected {expected}"))
}

fn millis(key: &str, value: &str) -> Result<Duration> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(key, value, "milliseconds, a whole number"))
}

fn int(key: &str, value: &str, min: i32) -> Result<i32> {
    match value.parse::<i32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(invalid(key, value, &format!("a whole number >= {min}"))),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_map_builds_every_role() {
        let config = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9092")
            .set("client.id", "orders-app")
            .set("acks", "1")
            .set("linger.ms", "20")
            .set("group.id", "orders")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("max.poll.records", "10")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "roundrobin,range");
        assert_eq!(config.client_options().unwrap().client_id, "orders-app");
        let producer = config.producer_config().unwrap();
        assert_eq!(
            (producer.acks, producer.linger),
            (1, Duration::from_millis(20))
        );
        let group = config.group_config().unwrap();
        assert_eq!(group.group_id, "orders");
        assert!(!group.enable_auto_commit);
        assert_eq!(group.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(group.fetch.max_poll_records, 10);
        assert_eq!(
            group.assignment_strategy,
            vec![Assignor::RoundRobin, Assignor::Range]
        );
        assert_eq!(group.fetch.isolation_level, 1);
    }

    #[test]
    fn unknown_names_and_bad_values_are_named() {
        let typo = ClientConfig::new().set("enable.auto.comit", "true");
        let err = typo.group_config().unwrap_err().to_string();
        assert!(
            err.contains("unknown client property enable.auto.comit")
                && err.contains("did you mean enable.auto.commit?"),
            "{err}"
        );
        let err = ClientConfig::new()
            .set("ssl.keystore.location", "/k")
            .producer_config()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown client property ssl.keystore.location"),
            "{err}"
        );
        let err = ClientConfig::new()
            .set("group.id", "g")
            .set("auto.offset.reset", "smallest-ish")
            .group_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("auto.offset.reset=smallest-ish"), "{err}");
        let err = ClientConfig::new()
            .set("max.poll.records", "0")
            .consumer_config()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max.poll.records=0: expected a whole number >= 1"),
            "{err}"
        );
        let err = ClientConfig::new()
            .set("acks", "some")
            .producer_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("acks=some"), "{err}");
        let err = ClientConfig::new()
            .set("session.timeout.ms", "1000")
            .set("heartbeat.interval.ms", "3000")
            .set("group.id", "g")
            .group_config()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("must be lower than session.timeout.ms"),
            "{err}"
        );
        assert!(ClientConfig::new().group_config().is_err());
    }

    #[test]
    fn properties_text_is_read_with_line_numbers_in_errors() {
        let config = ClientConfig::from_properties(
            "# a comment\nbootstrap.servers=localhost:9092\n\ngroup.id: g1\n",
        )
        .unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("localhost:9092"));
        assert_eq!(config.get("group.id"), Some("g1"));
        let err = ClientConfig::from_properties("acks=1\nnonsense\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn edit_distance_counts_single_changes() {
        assert_eq!(edit_distance("acks", "acks"), 0);
        assert_eq!(edit_distance("akcs", "acks"), 2);
        assert_eq!(edit_distance("linger.m", "linger.ms"), 1);
    }
}
