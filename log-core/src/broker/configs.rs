//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and CreatePartitions.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResourceResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{dynamic, ApiError, Broker};
use crate::config::LogConfig;
use crate::topic_configs::{
    topic_config, topic_config_of_synonym, ConfigType, Effect, TopicConfigDef, TOPIC_CONFIGS,
};

/// Kafka's resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Kafka's config sources (DescribeConfigs v1+).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// Kafka's config types (DescribeConfigs v3+) of broker settings; topic configs and their
/// synonyms take theirs from the catalog.
fn config_type(key: &str) -> i8 {
    if let Some(def) = topic_config(key) {
        return def.config_type as i8;
    }
    if let Some((def, scale)) = topic_config_of_synonym(key) {
        // `log.retention.hours` counts hours in an int.
        return if scale == 1 {
            def.config_type as i8
        } else {
            ConfigType::Int as i8
        };
    }
    match key {
        "log.dirs" | "listeners" | "advertised.listeners" => ConfigType::List as i8,
        "auto.create.topics.enable" | "delete.topic.enable" | "log.cleaner.enable" => {
            ConfigType::Boolean as i8
        }
        "default.replication.factor" => 4,
        "node.id" | "num.partitions" | "socket.request.max.bytes" => ConfigType::Int as i8,
        "log.dir" => ConfigType::String as i8,
        _ => ConfigType::Long as i8,
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn entry(
    name: &str,
    value: &str,
    source: i8,
    read_only: bool,
    synonyms: Vec<DescribeConfigsSynonym>,
    documentation: Option<&str>,
    version: i16,
) -> DescribeConfigsResourceResult {
    let result = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_synonyms(synonyms);
    // Fields a version lacks must keep their defaults, or the encoder refuses them.
    if version >= 3 {
        result
            .with_config_type(config_type(name))
            .with_documentation(documentation.map(str_bytes))
    } else {
        result
    }
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_source(source)
}

/// DescribeConfigs for topics (effective values, with where each comes from) and this broker.
pub fn describe_configs(
    broker: &Broker,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let wanted = |key: &str| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
        };
        let base = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone())
            .with_error_message(None);
        let result = match resource.resource_type {
            RESOURCE_TOPIC => match broker.topic_meta(&name) {
                None => Err(ApiError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic {name} does not exist."),
                )),
                Some(meta) => {
                    let documented = version >= 3 && request.include_documentation;
                    let effective = broker.logs.config_for(&name);
                    let configs = described_topic_configs(broker, &meta.configs, &effective)
                        .into_iter()
                        .filter(|(def, _, _)| wanted(def.name))
                        .map(|(def, value, mut synonyms)| {
                            let source = synonyms.first().map_or(SOURCE_DEFAULT, |s| s.source);
                            if !request.include_synonyms {
                                synonyms.clear();
                            }
                            entry(
                                def.name,
                                &value,
                                source,
                                false,
                                synonyms,
                                documented.then_some(def.doc),
                                version,
                            )
                        })
                        .collect();
                    Ok(configs)
                }
            },
            RESOURCE_BROKER if name.is_empty() || name == broker.config.node_id.to_string() => Ok(
                describe_broker(broker, &name, request.include_synonyms, &wanted, version),
            ),
            RESOURCE_BROKER => Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!(
                    "Unexpected broker id, expected {} but received {name}",
                    broker.config.node_id
                ),
            )),
            other => Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )),
        };
        results.push(match result {
            Ok(configs) => base.with_configs(configs),
            Err(err) => base
                .with_error_code(err.code.code())
                .with_error_message(Some(str_bytes(&err.message))),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// A topic's configs as DescribeConfigs shows them, Kafka 4's list: each with its value in
/// force and its synonyms in order of precedence (the first is where the value comes from).
/// `own` are the topic's overrides and `effective` its config with them applied.
pub(super) fn described_topic_configs(
    broker: &Broker,
    own: &BTreeMap<String, String>,
    effective: &LogConfig,
) -> Vec<(&'static TopicConfigDef, String, Vec<DescribeConfigsSynonym>)> {
    let (own_broker, cluster) = broker.dynamic_broker_configs();
    TOPIC_CONFIGS
        .iter()
        // Kafka 3.x's legacy configs are shown only where a topic sets them, so that the list
        // is Kafka 4's.
        .filter(|def| def.effect != Effect::Legacy || own.contains_key(def.name))
        .map(|def| {
            // A topic's own value as it was set (Kafka keeps the string: a list keeps its
            // order), else the value in force.
            let value = own
                .get(def.name)
                .cloned()
                .unwrap_or_else(|| effective.get(def.name).unwrap_or_default());
            let mut synonyms = Vec::new();
            if let Some(topic_value) = own.get(def.name) {
                synonyms.push(synonym(def.name, topic_value, SOURCE_TOPIC));
            }
            // Grouped by source, as Kafka lists them: this broker's dynamic values, the
            // cluster's, then the static ones.
            for (source, values) in [
                (SOURCE_DYNAMIC_BROKER, &own_broker),
                (SOURCE_DYNAMIC_DEFAULT_BROKER, &cluster),
                (SOURCE_STATIC_BROKER, &broker.config.explicit),
            ] {
                for broker_synonym in def.synonyms {
                    if let Some(v) = values.get(broker_synonym.name) {
                        synonyms.push(synonym(broker_synonym.name, v, source));
                    }
                }
            }
            // Kafka lists the default under the broker's name when that one synonym has a
            // default of its own (`log.retention.ms` does not: it falls back to `.hours`).
            if let [only] = def.synonyms {
                synonyms.push(synonym(only.name, def.default, SOURCE_DEFAULT));
            }
            (def, value, synonyms)
        })
        .collect()
}

/// DescribeConfigs of this broker (`name` = its id) or of the cluster default (`name` = ""):
/// every setting with where its value comes from — this broker's dynamic value, the cluster's
/// dynamic default, the static setting, or Kafka's default — and, when asked, the synonyms in
/// that order. Secrets and configs Kafka does not know are sensitive: no value is shown.
fn describe_broker(
    broker: &Broker,
    name: &str,
    include_synonyms: bool,
    wanted: &dyn Fn(&str) -> bool,
    version: i16,
) -> Vec<DescribeConfigsResourceResult> {
    let (own, cluster) = broker.dynamic_broker_configs();
    // The cluster default's own description shows no broker's values.
    let own = if name.is_empty() {
        BTreeMap::new()
    } else {
        own
    };
    let mut settings = broker.config.describe();
    for key in cluster.keys().chain(own.keys()) {
        if !settings.iter().any(|(k, _)| k == key) {
            settings.push((key.clone(), String::new()));
        }
    }
    settings
        .into_iter()
        .filter(|(key, _)| wanted(key))
        .map(|(key, static_or_default)| {
            let mut synonyms = Vec::new();
            for (source, values) in [
                (SOURCE_DYNAMIC_BROKER, &own),
                (SOURCE_DYNAMIC_DEFAULT_BROKER, &cluster),
                (SOURCE_STATIC_BROKER, &broker.config.explicit),
            ] {
                if let Some(value) = values.get(&key) {
                    synonyms.push(synonym(&key, value, source));
                }
            }
            let source = synonyms.first().map_or(SOURCE_DEFAULT, |s| s.source);
            let value = synonyms
                .first()
                .and_then(|s| s.value.as_ref().map(|v| v.to_string()))
                .unwrap_or(static_or_default.clone());
            if source == SOURCE_DEFAULT || !static_or_default.is_empty() {
                synonyms.push(synonym(&key, &static_or_default, SOURCE_DEFAULT));
            }
            let sensitive = dynamic::is_sensitive(&key);
            if sensitive {
                for s in &mut synonyms {
                    s.value = None;
                }
            }
            if !include_synonyms {
                synonyms.clear();
            }
            // Only what Kafka can change at run time is writable.
            let read_only = dynamic::dynamic_config(&key).is_none()
                && topic_config_of_synonym(&key).is_none()
                && !sensitive;
            let described = entry(&key, &value, source, read_only, synonyms, None, version);
            if sensitive {
                described.with_value(None).with_is_sensitive(true)
            } else {
                described
            }
        })
        .collect()
}

/// The target of a change to a broker resource: this broker by its id, or the cluster default
/// by the empty name.
fn broker_target(broker: &Broker, name: &str) -> Result<dynamic::Target, ApiError> {
    if name.is_empty() {
        Ok(dynamic::Target::ClusterDefault)
    } else if name == broker.config.node_id.to_string() {
        Ok(dynamic::Target::Broker)
    } else {
        Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} but received {name}",
                broker.config.node_id
            ),
        ))
    }
}

/// The dynamic configs currently set for a broker target.
fn current_dynamic(broker: &Broker, target: dynamic::Target) -> BTreeMap<String, String> {
    let (own, cluster) = broker.dynamic_broker_configs();
    match target {
        dynamic::Target::Broker => own,
        dynamic::Target::ClusterDefault => cluster,
    }
}

/// Why a config change to a resource that is neither a topic nor a broker is refused.
fn unsupported_resource(resource_type: i8) -> ApiError {
    ApiError::new(
        ResponseError::InvalidRequest,
        format!("Unsupported resource type {resource_type}"),
    )
}

/// AlterConfigs: the given topic configs replace all of the topic's overrides.
pub fn alter_configs(
    broker: &Broker,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let result = match resource.resource_type {
            RESOURCE_TOPIC => {
                let mut configs = BTreeMap::new();
                let mut null = None;
                for config in &resource.configs {
                    match &config.value {
                        Some(value) => {
                            configs.insert(config.name.to_string(), value.to_string());
                        }
                        None => null = Some(config.name.to_string()),
                    }
                }
                match null {
                    Some(key) => Err(ApiError::new(
                        ResponseError::InvalidConfig,
                        format!("Null value not supported for topic config {key}"),
                    )),
                    None => broker.set_topic_configs(&name, configs, request.validate_only),
                }
            }
            // The legacy API replaces the whole set of dynamic configs of its target.
            RESOURCE_BROKER => broker_target(broker, &name).and_then(|target| {
                let configs = resource
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                broker.set_dynamic_broker_configs(target, configs, request.validate_only)
            }),
            other => Err(unsupported_resource(other)),
        };
        let base = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match result {
            Ok(()) => base.with_error_message(None),
            Err(err) => base
                .with_error_code(err.code.code())
                .with_error_message(Some(str_bytes(&err.message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs' APPEND (2: each item not there yet goes at the end, in order) or
/// SUBTRACT (3: each item goes) on a comma-separated list value.
fn apply_list_op(current: &str, op: i8, value: &str) -> String {
    let mut items: Vec<&str> = current
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .collect();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if op == 2 && !items.contains(&item) {
            items.push(item);
        } else if op == 3 {
            items.retain(|i| *i != item);
        }
    }
    items.join(",")
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT (for list configs) on topic configs.
pub fn incremental_alter_configs(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let result = match resource.resource_type {
            RESOURCE_TOPIC => match broker.topic_meta(&name) {
                None => Err(ApiError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic {name} does not exist."),
                )),
                Some(meta) => {
                    let effective = broker.logs.config_for(&name);
                    let mut configs = meta.configs.clone();
                    let mut failure = None;
                    for config in &resource.configs {
                        let key = config.name.to_string();
                        let value = config.value.as_ref().map(|v| v.to_string());
                        match (config.config_operation, value) {
                            (0, Some(value)) => {
                                configs.insert(key, value);
                            }
                            (1, _) => {
                                configs.remove(&key);
                            }
                            (op @ (2 | 3), Some(value))
                                if topic_config(&key)
                                    .is_some_and(|def| def.config_type == ConfigType::List) =>
                            {
                                // From the topic's own value, else the one in force.
                                let current = configs
                                    .get(&key)
                                    .cloned()
                                    .unwrap_or_else(|| effective.get(&key).unwrap_or_default());
                                configs.insert(key, apply_list_op(&current, op, &value));
                            }
                            (2 | 3, _) => failure = Some(ApiError::new(ResponseError::InvalidConfig, format!("Config value append/subtract is not allowed for config key {key} (not a list)"))),
                            (0, None) => failure = Some(ApiError::new(ResponseError::InvalidConfig, format!("Null value not supported for {key}"))),
                            (op, _) => failure = Some(ApiError::new(ResponseError::InvalidRequest, format!("Unknown config operation {op}"))),
                        }
                    }
                    match failure {
                        Some(err) => Err(err),
                        None => broker.set_topic_configs(&name, configs, request.validate_only),
                    }
                }
            },
            RESOURCE_BROKER => broker_target(broker, &name).and_then(|target| {
                let mut configs = current_dynamic(broker, target);
                for config in &resource.configs {
                    let key = config.name.to_string();
                    let value = config.value.as_ref().map(|v| v.to_string());
                    let is_list = matches!(dynamic::dynamic_config(&key), Some((_, ConfigType::List)));
                    match (config.config_operation, value) {
                        (0, Some(value)) => {
                            configs.insert(key, value);
                        }
                        (1, _) => {
                            configs.remove(&key);
                        }
                        (op @ (2 | 3), Some(value)) if is_list => {
                            // As Kafka: from the dynamic value, else the config's default
                            // (`log.cleanup.policy` APPEND compact gives "delete,compact").
                            let current = configs.get(&key).cloned().unwrap_or_else(|| {
                                topic_config_of_synonym(&key)
                                    .map(|(def, _)| def.default.to_string())
                                    .unwrap_or_default()
                            });
                            let items = apply_list_op(&current, op, &value);
                            // Nothing left: the static or default value applies again.
                            if items.is_empty() {
                                configs.remove(&key);
                            } else {
                                configs.insert(key, items);
                            }
                        }
                        (2 | 3, _) => {
                            return Err(ApiError::new(
                                ResponseError::InvalidConfig,
                                format!("Config value append/subtract is not allowed for config key {key} (not a list)"),
                            ))
                        }
                        (0, None) => {
                            return Err(ApiError::new(
                                ResponseError::InvalidConfig,
                                format!("Null value not supported for {key}"),
                            ))
                        }
                        (op, _) => {
                            return Err(ApiError::new(
                                ResponseError::InvalidRequest,
                                format!("Unknown config operation {op}"),
                            ))
                        }
                    }
                }
                broker.set_dynamic_broker_configs(target, configs, request.validate_only)
            }),
            other => Err(unsupported_resource(other)),
        };
        let base = IncrementalResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match result {
            Ok(()) => base.with_error_message(None),
            Err(err) => base
                .with_error_code(err.code.code())
                .with_error_message(Some(str_bytes(&err.message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// CreatePartitions: grows a topic to `count` partitions.
pub fn create_partitions(
    broker: &Broker,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let valid_assignment = topic.assignments.as_ref().is_none_or(|assignments| {
            assignments
                .iter()
                .all(|a| a.broker_ids.iter().all(|id| id.0 == broker.config.node_id))
        });
        // An assignment, when given, names the replicas of each new partition (Kafka refuses
        // an empty list for a topic that grows: it means "no assignment" only when null).
        let current = broker.topic_meta(&name).map_or(0, |meta| meta.partitions);
        let added = topic.count - current;
        let assignment_count = topic.assignments.as_ref().map(Vec::len);
        let result = if let Some(given) =
            assignment_count.filter(|n| added > 0 && *n as i32 != added)
        {
            Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Attempted to add {added} additional partition(s), but only {given} assignment(s) were specified."
                ),
            ))
        } else if valid_assignment {
            broker.create_partitions(&name, topic.count, request.validate_only)
        } else {
            Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                "Replica assignment names a broker that does not exist.",
            ))
        };
        let base = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match result {
            Ok(()) => base.with_error_message(None),
            Err(err) => base
                .with_error_code(err.code.code())
                .with_error_message(Some(str_bytes(&err.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use super::apply_list_op;

    #[test]
    fn append_keeps_order_and_skips_what_is_there_and_subtract_removes() {
        assert_eq!(apply_list_op("delete", 2, "compact"), "delete,compact");
        assert_eq!(
            apply_list_op("delete,compact", 2, "compact, delete"),
            "delete,compact"
        );
        assert_eq!(apply_list_op("", 2, "a,b"), "a,b");
        assert_eq!(apply_list_op("delete, compact", 3, "delete"), "compact");
        assert_eq!(apply_list_op("compact", 3, "compact"), "");
    }
}
