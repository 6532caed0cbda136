//! Dynamic broker configs (KIP-226): the broker settings Kafka lets AlterConfigs and
//! IncrementalAlterConfigs change at run time, per broker (resource name = node id) or as the
//! cluster-wide default (resource name ""), kept in the topic registry so they survive a
//! restart. Precedence, as Kafka's: the broker's own dynamic value, then the cluster default,
//! then the static setting (`sluice.toml`, environment, `--override`), then Kafka's default.
//!
//! The log defaults among them (`log.retention.ms`, `log.segment.bytes`, `compression.type`,
//! `message.max.bytes`, ...: the broker synonyms of topic configs) take effect at once on every
//! topic without an override of its own. The others Kafka accepts (thread pools, quotas,
//! SASL/SSL settings, ...) are checked, kept and described, and take no effect on a Sluice
//! node; `listeners` is refused, as Sluice cannot rebind a running node.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::ApiError;
use crate::topic_configs::{topic_config_of_synonym, ConfigType};

/// Whether a dynamic config may be set for the whole cluster or only per broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Per broker only (listener and security settings).
    PerBroker,
    /// Per broker or as the cluster-wide default.
    ClusterWide,
}

use ConfigType as T;
use Scope::{ClusterWide, PerBroker};

/// Kafka 4.4's dynamic broker configs (`DynamicBrokerConfig.dynamicConfigUpdateModes`, read off
/// Apache Kafka), with their scope and type.
pub const DYNAMIC_BROKER_CONFIGS: &[(&str, Scope, ConfigType)] = &[
    ("background.threads", ClusterWide, T::Int),
    ("compression.gzip.level", ClusterWide, T::Int),
    ("compression.lz4.level", ClusterWide, T::Int),
    ("compression.type", ClusterWide, T::String),
    ("compression.zstd.level", ClusterWide, T::Int),
    ("config.providers", ClusterWide, T::List),
    ("cordoned.log.dirs", PerBroker, T::List),
    (
        "errors.deadletterqueue.auto.create.topics.enable",
        ClusterWide,
        T::Boolean,
    ),
    (
        "errors.deadletterqueue.topic.name.prefix",
        ClusterWide,
        T::String,
    ),
    (
        "follower.fetch.last.tiered.offset.enable",
        ClusterWide,
        T::Boolean,
    ),
    ("follower.replication.throttled.rate", ClusterWide, T::Long),
    ("group.consumer.assignment.interval.ms", ClusterWide, T::Int),
    (
        "group.consumer.assignor.offload.enable",
        ClusterWide,
        T::Boolean,
    ),
    (
        "group.coordinator.cached.buffer.max.bytes",
        ClusterWide,
        T::Int,
    ),
    ("group.share.assignment.interval.ms", ClusterWide, T::Int),
    (
        "group.share.assignor.offload.enable",
        ClusterWide,
        T::Boolean,
    ),
    ("group.streams.assignment.interval.ms", ClusterWide, T::Int),
    (
        "group.streams.assignor.offload.enable",
        ClusterWide,
        T::Boolean,
    ),
    ("leader.replication.throttled.rate", ClusterWide, T::Long),
    ("listener.security.protocol.map", PerBroker, T::String),
    ("listeners", PerBroker, T::List),
    ("log.cleaner.backoff.ms", ClusterWide, T::Long),
    ("log.cleaner.dedupe.buffer.size", ClusterWide, T::Long),
    ("log.cleaner.delete.retention.ms", ClusterWide, T::Long),
    ("log.cleaner.io.buffer.load.factor", ClusterWide, T::Double),
    ("log.cleaner.io.buffer.size", ClusterWide, T::Int),
    (
        "log.cleaner.io.max.bytes.per.second",
        ClusterWide,
        T::Double,
    ),
    ("log.cleaner.max.compaction.lag.ms", ClusterWide, T::Long),
    ("log.cleaner.min.cleanable.ratio", ClusterWide, T::Double),
    ("log.cleaner.min.compaction.lag.ms", ClusterWide, T::Long),
    ("log.cleaner.threads", ClusterWide, T::Int),
    ("log.cleanup.policy", ClusterWide, T::List),
    ("log.flush.interval.messages", ClusterWide, T::Long),
    ("log.flush.interval.ms", ClusterWide, T::Long),
    ("log.index.interval.bytes", ClusterWide, T::Int),
    ("log.index.size.max.bytes", ClusterWide, T::Int),
    ("log.local.retention.bytes", ClusterWide, T::Long),
    ("log.local.retention.ms", ClusterWide, T::Long),
    ("log.message.timestamp.after.max.ms", ClusterWide, T::Long),
    ("log.message.timestamp.before.max.ms", ClusterWide, T::Long),
    ("log.message.timestamp.type", ClusterWide, T::String),
    ("log.preallocate", ClusterWide, T::Boolean),
    ("log.remote.copy.lag.bytes", ClusterWide, T::Long),
    ("log.remote.copy.lag.ms", ClusterWide, T::Long),
    ("log.retention.bytes", ClusterWide, T::Long),
    ("log.retention.ms", ClusterWide, T::Long),
    ("log.roll.jitter.ms", ClusterWide, T::Long),
    ("log.roll.ms", ClusterWide, T::Long),
    ("log.segment.bytes", ClusterWide, T::Int),
    ("log.segment.delete.delay.ms", ClusterWide, T::Long),
    ("max.connection.creation.rate", ClusterWide, T::Int),
    ("max.connections", ClusterWide, T::Int),
    ("max.connections.per.ip", ClusterWide, T::Int),
    ("max.connections.per.ip.overrides", ClusterWide, T::String),
    ("max.decompressed.message.bytes", ClusterWide, T::Int),
    ("message.max.bytes", ClusterWide, T::Int),
    ("metric.reporters", ClusterWide, T::List),
    ("min.insync.replicas", ClusterWide, T::Int),
    ("num.io.threads", ClusterWide, T::Int),
    ("num.network.threads", ClusterWide, T::Int),
    ("num.recovery.threads.per.data.dir", ClusterWide, T::Int),
    ("num.replica.fetchers", ClusterWide, T::Int),
    ("principal.builder.class", PerBroker, T::Class),
    ("producer.id.expiration.ms", ClusterWide, T::Int),
    ("remote.fetch.max.wait.ms", ClusterWide, T::Int),
    (
        "remote.list.offsets.request.timeout.ms",
        ClusterWide,
        T::Long,
    ),
    (
        "remote.log.index.file.cache.total.size.bytes",
        ClusterWide,
        T::Long,
    ),
    (
        "remote.log.manager.copier.thread.pool.size",
        ClusterWide,
        T::Int,
    ),
    (
        "remote.log.manager.copy.max.bytes.per.second",
        ClusterWide,
        T::Long,
    ),
    (
        "remote.log.manager.expiration.thread.pool.size",
        ClusterWide,
        T::Int,
    ),
    (
        "remote.log.manager.fetch.max.bytes.per.second",
        ClusterWide,
        T::Long,
    ),
    (
        "remote.log.manager.follower.thread.pool.size",
        ClusterWide,
        T::Int,
    ),
    ("remote.log.reader.threads", ClusterWide, T::Int),
    (
        "replica.alter.log.dirs.io.max.bytes.per.second",
        ClusterWide,
        T::Long,
    ),
    ("sasl.enabled.mechanisms", PerBroker, T::List),
    ("sasl.jaas.config", PerBroker, T::Password),
    ("sasl.kerberos.kinit.cmd", PerBroker, T::String),
    ("sasl.kerberos.min.time.before.relogin", PerBroker, T::Long),
    ("sasl.kerberos.principal.to.local.rules", PerBroker, T::List),
    ("sasl.kerberos.service.name", PerBroker, T::String),
    ("sasl.kerberos.ticket.renew.jitter", PerBroker, T::Double),
    (
        "sasl.kerberos.ticket.renew.window.factor",
        PerBroker,
        T::Double,
    ),
    ("sasl.login.refresh.buffer.seconds", PerBroker, T::Short),
    ("sasl.login.refresh.min.period.seconds", PerBroker, T::Short),
    ("sasl.login.refresh.window.factor", PerBroker, T::Double),
    ("sasl.login.refresh.window.jitter", PerBroker, T::Double),
    ("sasl.mechanism.inter.broker.protocol", PerBroker, T::String),
    (
        "share.coordinator.cached.buffer.max.bytes",
        ClusterWide,
        T::Int,
    ),
    ("ssl.cipher.suites", PerBroker, T::List),
    ("ssl.client.auth", PerBroker, T::String),
    ("ssl.enabled.protocols", PerBroker, T::List),
    (
        "ssl.endpoint.identification.algorithm",
        PerBroker,
        T::String,
    ),
    ("ssl.engine.factory.class", PerBroker, T::Class),
    ("ssl.key.password", PerBroker, T::Password),
    ("ssl.keymanager.algorithm", PerBroker, T::String),
    ("ssl.keystore.certificate.chain", PerBroker, T::Password),
    ("ssl.keystore.key", PerBroker, T::Password),
    ("ssl.keystore.location", PerBroker, T::String),
    ("ssl.keystore.password", PerBroker, T::Password),
    ("ssl.keystore.type", PerBroker, T::String),
    ("ssl.protocol", PerBroker, T::String),
    ("ssl.provider", PerBroker, T::String),
    ("ssl.secure.random.implementation", PerBroker, T::String),
    ("ssl.trustmanager.algorithm", PerBroker, T::String),
    ("ssl.truststore.certificates", PerBroker, T::Password),
    ("ssl.truststore.location", PerBroker, T::String),
    ("ssl.truststore.password", PerBroker, T::Password),
    ("ssl.truststore.type", PerBroker, T::String),
    (
        "transaction.partition.verification.enable",
        ClusterWide,
        T::Boolean,
    ),
    ("unclean.leader.election.enable", ClusterWide, T::Boolean),
];

/// Security settings Kafka takes dynamically only under a listener prefix
/// (`listener.name.<listener>.<config>`).
fn needs_listener_prefix(name: &str) -> bool {
    name.starts_with("ssl.") || name == "sasl.jaas.config"
}

/// Where a dynamic change applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This broker (resource name = its node id).
    Broker,
    /// The cluster-wide default (resource name "").
    ClusterDefault,
}

/// The dynamic definition of a broker config, if Kafka has one.
pub fn dynamic_config(name: &str) -> Option<(Scope, ConfigType)> {
    DYNAMIC_BROKER_CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, scope, config_type)| (*scope, *config_type))
}

/// Whether a config's value is never shown: passwords, and names Kafka does not know (which it
/// keeps as custom configs and treats as sensitive).
pub fn is_sensitive(name: &str) -> bool {
    match dynamic_config(name) {
        Some((_, config_type)) => config_type == T::Password,
        None => {
            !super::config::BrokerConfig::is_known_key(name) && !name.starts_with("listener.name.")
        }
    }
}

/// Checks a set of dynamic configs for `target` as Kafka does, naming every config refused.
pub fn check(configs: &BTreeMap<String, String>, target: Target) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::new(ResponseError::InvalidRequest, message));
    let list = |names: Vec<&str>| format!("[{}]", names.join(", "));
    // Known broker settings that are not dynamic, and what Sluice cannot change live.
    let fixed: Vec<&str> = configs
        .keys()
        .map(String::as_str)
        .filter(|name| {
            *name == "listeners"
                || (dynamic_config(name).is_none()
                    && topic_config_of_synonym(name).is_none()
                    && super::config::BrokerConfig::is_known_key(name))
        })
        .collect();
    if !fixed.is_empty() {
        return invalid(format!(
            "Cannot update these configs dynamically: {}",
            list(fixed)
        ));
    }
    let unprefixed: Vec<&str> = configs
        .keys()
        .map(String::as_str)
        .filter(|name| needs_listener_prefix(name))
        .collect();
    if !unprefixed.is_empty() {
        return invalid(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: {}",
            list(unprefixed)
        ));
    }
    if target == Target::ClusterDefault {
        let per_broker: Vec<&str> = configs
            .keys()
            .map(String::as_str)
            .filter(|name| matches!(dynamic_config(name), Some((PerBroker, _))))
            .collect();
        if !per_broker.is_empty() {
            return invalid(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                list(per_broker)
            ));
        }
    }
    for (name, value) in configs {
        if let Some((_, config_type)) = dynamic_config(name) {
            if let Err(reason) = config_type.check(value) {
                return invalid(format!(
                    "Invalid value {value} for configuration {name}: {reason}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn refusal(pairs: &[(&str, &str)], target: Target) -> String {
        check(&configs(pairs), target).unwrap_err().message
    }

    #[test]
    fn dynamic_configs_are_checked_with_kafkas_words() {
        assert!(check(
            &configs(&[("sasl.kerberos.min.time.before.relogin", "58000")]),
            Target::Broker
        )
        .is_ok());
        assert!(check(
            &configs(&[("log.retention.ms", "1000"), ("foo.bar", "1")]),
            Target::ClusterDefault
        )
        .is_ok());
        assert_eq!(
            refusal(&[("log.dirs", "/x")], Target::Broker),
            "Cannot update these configs dynamically: [log.dirs]"
        );
        assert!(refusal(&[("listeners", "PLAINTEXT://:1")], Target::Broker).contains("[listeners]"));
        assert_eq!(
            refusal(&[("ssl.keystore.password", "s")], Target::Broker),
            "These security configs can be dynamically updated only per-listener using the listener prefix: [ssl.keystore.password]"
        );
        assert_eq!(
            refusal(&[("sasl.kerberos.min.time.before.relogin", "58000")], Target::ClusterDefault),
            "Cannot update these configs at default cluster level, broker id must be specified: [sasl.kerberos.min.time.before.relogin]"
        );
        assert_eq!(
            refusal(&[("num.io.threads", "abc")], Target::Broker),
            "Invalid value abc for configuration num.io.threads: Not a number of type INT"
        );
        assert!(is_sensitive("foo.bar"));
        assert!(is_sensitive("sasl.jaas.config"));
        assert!(!is_sensitive("log.retention.ms"));
        assert!(!is_sensitive("num.io.threads"));
    }
}
