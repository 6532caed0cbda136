//! ApiVersions, Metadata, CreateTopics and DeleteTopics.

use std::collections::BTreeMap;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{ApiError, Broker};
use crate::protocol::supported_versions;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// Every API this broker serves with its versions; UNSUPPORTED_VERSION if the request's version
/// is above ours (the client then retries with version 0).
pub fn api_versions(_request: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let api_keys = ApiKey::iter()
        .filter_map(|key| supported_versions(key).map(|range| (key, range)))
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    let max = ApiKey::ApiVersions.valid_versions().max;
    let error_code = if version > max {
        ResponseError::UnsupportedVersion.code()
    } else {
        0
    };
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}

/// Metadata: brokers (this one), topics asked for (or all), auto-creating missing topics when
/// allowed by both the request and `auto.create.topics.enable`.
/// Kafka's ACL operation codes (`AclOperation`).
mod acl_operation {
    pub const READ: u8 = 3;
    pub const WRITE: u8 = 4;
    pub const CREATE: u8 = 5;
    pub const DELETE: u8 = 6;
    pub const ALTER: u8 = 7;
    pub const DESCRIBE: u8 = 8;
    pub const CLUSTER_ACTION: u8 = 9;
    pub const DESCRIBE_CONFIGS: u8 = 10;
    pub const ALTER_CONFIGS: u8 = 11;
    pub const IDEMPOTENT_WRITE: u8 = 12;
}

/// The operations a topic supports (Kafka's `AclEntry.supportedOperations(TOPIC)`).
const TOPIC_OPERATIONS: &[u8] = {
    use acl_operation::*;
    &[
        READ,
        WRITE,
        CREATE,
        DESCRIBE,
        DELETE,
        ALTER,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
    ]
};

/// The operations the cluster supports.
const CLUSTER_OPERATIONS: &[u8] = {
    use acl_operation::*;
    &[
        CREATE,
        CLUSTER_ACTION,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
        IDEMPOTENT_WRITE,
        ALTER,
        DESCRIBE,
    ]
};

/// The operations a group supports.
pub(crate) const GROUP_OPERATIONS: &[u8] = {
    use acl_operation::*;
    &[READ, DESCRIBE, DELETE]
};

/// KIP-430's bit field of authorized operations. With no authorizer (Sluice has none yet),
/// Kafka authorizes, and so lists, every operation the resource supports.
pub(crate) fn authorized_operations(operations: &[u8]) -> i32 {
    operations.iter().fold(0, |bits, op| bits | (1 << op))
}

pub fn metadata(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node_id = broker.config.node_id;
    let advertised = broker.advertised();
    let brokers = vec![MetadataResponseBroker::default()
        .with_node_id(BrokerId(node_id))
        .with_host(str_bytes(&advertised.host))
        .with_port(i32::from(advertised.port))];
    let wanted: Vec<(Option<String>, Uuid)> = match &request.topics {
        None => broker
            .topics
            .read()
            .topics()
            .keys()
            .map(|name| (Some(name.clone()), Uuid::nil()))
            .collect(),
        Some(topics) => topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect(),
    };
    let mut topics = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = match name {
            Some(name) => Some(name),
            None => broker.topic_name_by_id(id),
        };
        let Some(name) = name else {
            topics.push(
                MetadataResponseTopic::default()
                    .with_topic_id(id)
                    .with_error_code(ResponseError::UnknownTopicId.code()),
            );
            continue;
        };
        let mut meta = broker.topic_meta(&name);
        if meta.is_none()
            && request.allow_auto_topic_creation
            && broker.config.auto_create_topics_enable
        {
            match broker.create_topic(&name, -1, -1, BTreeMap::new(), false) {
                Ok(created) => meta = Some(created),
                Err(ApiError {
                    code: ResponseError::TopicAlreadyExists,
                    ..
                }) => meta = broker.topic_meta(&name),
                Err(err) => {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(topic_name(&name)))
                            .with_error_code(err.code.code()),
                    );
                    continue;
                }
            }
        }
        let Some(meta) = meta else {
            let code = if crate::model::validate_topic_name(&name).is_err() {
                ResponseError::InvalidTopicException
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            topics.push(
                MetadataResponseTopic::default()
                    .with_name(Some(topic_name(&name)))
                    .with_error_code(code.code()),
            );
            continue;
        };
        let partitions = (0..meta.partitions)
            .map(|partition| {
                let epoch = broker
                    .log(&name, partition)
                    .and_then(|log| log.lock().leader_epochs().latest_epoch())
                    .unwrap_or(0);
                MetadataResponsePartition::default()
                    .with_partition_index(partition)
                    .with_leader_id(BrokerId(node_id))
                    .with_leader_epoch(if version >= 7 { epoch } else { -1 })
                    .with_replica_nodes(vec![BrokerId(node_id)])
                    .with_isr_nodes(vec![BrokerId(node_id)])
            })
            .collect();
        let topic = MetadataResponseTopic::default()
            .with_name(Some(topic_name(&name)))
            .with_topic_id(if version >= 10 { meta.id } else { Uuid::nil() })
            .with_is_internal(name.starts_with("__"))
            .with_partitions(partitions);
        topics.push(
            if version >= 8 && request.include_topic_authorized_operations {
                topic.with_topic_authorized_operations(authorized_operations(TOPIC_OPERATIONS))
            } else {
                topic
            },
        );
    }
    let response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&broker.cluster_id())))
        .with_controller_id(BrokerId(node_id))
        .with_topics(topics);
    // Versions 8 to 10 only (later ones ask DescribeCluster).
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.with_cluster_authorized_operations(authorized_operations(CLUSTER_OPERATIONS))
    } else {
        response
    }
}

/// CreateTopics, topic by topic; errors carry Kafka's codes and messages.
pub fn create_topics(
    broker: &Broker,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut configs = BTreeMap::new();
        let mut bad_config = None;
        for config in &topic.configs {
            match &config.value {
                Some(value) => {
                    configs.insert(config.name.to_string(), value.to_string());
                }
                None => {
                    bad_config = Some(format!(
                        "Null value not supported for topic configs: {}",
                        config.name
                    ))
                }
            }
        }
        let result = match bad_config {
            Some(message) => Err(ApiError::new(ResponseError::InvalidConfig, message)),
            None if !topic.assignments.is_empty() => {
                // Manual assignments must name this node only.
                let valid = topic
                    .assignments
                    .iter()
                    .all(|a| a.broker_ids.iter().all(|id| id.0 == broker.config.node_id));
                if valid {
                    broker.create_topic(
                        &name,
                        topic.assignments.len() as i32,
                        1,
                        configs,
                        request.validate_only,
                    )
                } else {
                    Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        "Replica assignment names a broker that does not exist.",
                    ))
                }
            }
            None => broker.create_topic(
                &name,
                topic.num_partitions,
                topic.replication_factor,
                configs,
                request.validate_only,
            ),
        };
        let base = CreatableTopicResult::default().with_name(topic.name.clone());
        // Fields a version lacks must keep their defaults, or the encoder refuses them.
        results.push(match result {
            Ok(meta) => {
                let ok = if version >= 7 {
                    base.with_topic_id(meta.id)
                } else {
                    base
                };
                if version >= 5 {
                    // Every config of the new topic, as Kafka lists them (KIP-525).
                    let effective = broker
                        .logs()
                        .defaults()
                        .with_overrides(meta.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .unwrap_or_else(|_| broker.logs().defaults());
                    let configs =
                        super::configs::described_topic_configs(broker, &meta.configs, &effective)
                            .into_iter()
                            .map(|(def, value, synonyms)| {
                                CreatableTopicConfigs::default()
                                    .with_name(str_bytes(def.name))
                                    .with_value(Some(str_bytes(&value)))
                                    .with_read_only(false)
                                    .with_config_source(synonyms.first().map_or(5, |s| s.source))
                                    .with_is_sensitive(false)
                            })
                            .collect();
                    ok.with_num_partitions(meta.partitions)
                        .with_replication_factor(1)
                        .with_configs(Some(configs))
                } else {
                    ok
                }
            }
            Err(err) => {
                let failed = base.with_error_code(err.code.code());
                if version >= 1 {
                    failed.with_error_message(Some(str_bytes(&err.message)))
                } else {
                    failed
                }
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// DeleteTopics by name (all versions) or id (v6+).
pub fn delete_topics(
    broker: &Broker,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut wanted: Vec<(Option<String>, Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), Uuid::nil()))
        .collect();
    wanted.extend(
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let resolved = name.clone().or_else(|| broker.topic_name_by_id(id));
        let result = match &resolved {
            Some(name) => broker.delete_topic(name),
            None => Err(ApiError::new(
                ResponseError::UnknownTopicId,
                "This server does not host this topic ID.",
            )),
        };
        let base = DeletableTopicResult::default().with_name(resolved.as_deref().map(topic_name));
        // Fields a version lacks must keep their defaults, or the encoder refuses them.
        responses.push(match result {
            Ok(meta) if version >= 6 => base.with_topic_id(meta.id),
            Ok(_) => base,
            Err(err) => {
                let failed = if version >= 6 {
                    base.with_topic_id(id)
                } else {
                    base
                };
                let failed = failed.with_error_code(err.code.code());
                if version >= 5 {
                    failed.with_error_message(Some(str_bytes(&err.message)))
                } else {
                    failed
                }
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// DescribeCluster: this node, the cluster id and the controller (this node).
pub fn describe_cluster(
    broker: &Broker,
    request: kafka_protocol::messages::DescribeClusterRequest,
    _version: i16,
) -> kafka_protocol::messages::DescribeClusterResponse {
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    let advertised = broker.advertised();
    let operations = if request.include_cluster_authorized_operations {
        authorized_operations(CLUSTER_OPERATIONS)
    } else {
        i32::MIN
    };
    kafka_protocol::messages::DescribeClusterResponse::default()
        .with_cluster_authorized_operations(operations)
        .with_error_message(None)
        .with_cluster_id(str_bytes(&broker.cluster_id()))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(broker.config.node_id))
            .with_host(str_bytes(&advertised.host))
            .with_port(i32::from(advertised.port))])
}

/// ElectLeaders: each partition's one replica is its leader and its preferred replica, so no
/// election is ever needed (ELECTION_NOT_NEEDED, Kafka's answer when the preferred replica
/// leads). Asked for every partition (null), Kafka lists only the partitions it elected: none.
pub fn elect_leaders(
    broker: &Broker,
    request: kafka_protocol::messages::ElectLeadersRequest,
    version: i16,
) -> kafka_protocol::messages::ElectLeadersResponse {
    use kafka_protocol::messages::elect_leaders_response::{
        PartitionResult, ReplicaElectionResult,
    };
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|partition| {
                    let (code, message) = if broker.log(&name, partition).is_some() {
                        (
                            ResponseError::ElectionNotNeeded,
                            "Leader election not needed for topic partition.",
                        )
                    } else {
                        (
                            ResponseError::UnknownTopicOrPartition,
                            "This server does not host this topic-partition.",
                        )
                    };
                    PartitionResult::default()
                        .with_partition_id(partition)
                        .with_error_code(code.code())
                        .with_error_message(Some(str_bytes(message)))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(topic.topic)
                .with_partition_result(partitions)
        })
        .collect();
    let _ = version;
    kafka_protocol::messages::ElectLeadersResponse::default().with_replica_election_results(results)
}

/// Error answers for the APIs this broker does not serve yet but whose responses carry an error
/// code (SASL gets UNSUPPORTED_SASL_MECHANISM); None for others.
pub fn unsupported(
    request: kafka_protocol::messages::RequestKind,
    _version: i16,
) -> Option<kafka_protocol::messages::ResponseKind> {
    use kafka_protocol::messages::*;
    Some(match request {
        RequestKind::SaslHandshake(_) => ResponseKind::SaslHandshake(
            SaslHandshakeResponse::default()
                .with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
        ),
        _ => return None,
    })
}

/// DeleteRecords: moves each partition's log start offset up to the offset asked (-1: the
/// high watermark), as `kafka-delete-records` does. Records below it are no longer served
/// (OFFSET_OUT_OF_RANGE), ListOffsets earliest follows, and the segments wholly below it go at
/// the next retention pass. The new start offsets are checkpointed before the answer, so a
/// restart keeps them.
pub fn delete_records(
    broker: &Broker,
    request: kafka_protocol::messages::DeleteRecordsRequest,
) -> kafka_protocol::messages::DeleteRecordsResponse {
    use kafka_protocol::messages::delete_records_response::{
        DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
    };
    let mut moved = false;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|wanted| {
                    let base = DeleteRecordsPartitionResult::default()
                        .with_partition_index(wanted.partition_index)
                        .with_low_watermark(-1);
                    if name.starts_with("__") {
                        // Kafka refuses to delete records of its internal topics.
                        return base.with_error_code(ResponseError::InvalidTopicException.code());
                    }
                    let Some(log) = broker.log(&name, wanted.partition_index) else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let mut log = log.lock();
                    let offset = if wanted.offset == -1 {
                        log.high_watermark()
                    } else {
                        wanted.offset
                    };
                    if offset < 0 {
                        return base.with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match log.advance_log_start_offset(offset) {
                        Ok(()) => {
                            moved = true;
                            tracing::info!(topic = %name, partition = wanted.partition_index,
                                log_start_offset = log.log_start_offset(), "records deleted");
                            base.with_low_watermark(log.log_start_offset())
                        }
                        Err(err) => base.with_error_code(err.response_error().code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    if moved {
        if let Err(err) = broker.logs.write_checkpoints() {
            tracing::warn!(%err, "writing checkpoints after DeleteRecords failed; the next scheduled write retries");
        }
    }
    kafka_protocol::messages::DeleteRecordsResponse::default().with_topics(topics)
}
