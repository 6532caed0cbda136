//! The group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, ListGroups, DescribeGroups, DeleteGroups. Offsets and group metadata are written
//! to the compacted `__consumer_offsets` topic (created on first use, partitioned by group as
//! Kafka does) and read back when the broker starts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;

use super::{ApiError, Broker};
use crate::error::{Error, Result};
use crate::group::coordinator::{JoinRequest, MemberRef};
use crate::group::store::{self, StoredKey, StoredOffset, OFFSETS_TOPIC};
use crate::model::TopicPartition;
use crate::storage::log::FetchIsolation;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Broker {
    /// Group upkeep on the current tokio runtime, whether or not the broker listens: members
    /// are removed as their sessions end (the task wakes at the next session's end, and at
    /// least every 250 ms for members that joined since), and committed offsets past
    /// `offsets.retention.minutes` are expired every `offsets.retention.check.interval.ms`.
    /// The task ends once the broker is dropped.
    pub fn spawn_group_maintenance(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let broker = std::sync::Arc::downgrade(self);
        let check =
            std::time::Duration::from_millis(self.config.offsets_retention_check_interval_ms);
        tokio::spawn(async move {
            let tick = std::time::Duration::from_millis(250);
            let mut next_reap = tokio::time::Instant::now() + tick;
            let mut retention =
                tokio::time::interval_at(tokio::time::Instant::now() + check, check);
            loop {
                let expire_offsets = tokio::select! {
                    _ = tokio::time::sleep_until(next_reap) => false,
                    _ = retention.tick() => true,
                };
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                if expire_offsets {
                    broker.expire_offsets();
                } else {
                    let (_, next_end) = broker.groups.expire_members();
                    let now = tokio::time::Instant::now();
                    // Just past the next session's end (its check is "later than").
                    next_reap = next_end
                        .map(|end| {
                            tokio::time::Instant::from_std(end)
                                + std::time::Duration::from_millis(1)
                        })
                        .unwrap_or(now + tick)
                        .min(now + tick);
                }
            }
        })
    }

    /// Expires committed offsets past `offsets.retention.minutes` (tombstones in
    /// `__consumer_offsets`, so they stay gone after a restart). Returns how many.
    pub fn expire_offsets(&self) -> usize {
        let retention = std::time::Duration::from_millis(self.config.offsets_retention_ms);
        let mut n = 0;
        for (group, partitions, group_removed) in self.groups.expire_offsets(retention, now_ms()) {
            n += partitions.len();
            let mut records: Vec<(Bytes, Option<Bytes>)> = partitions
                .iter()
                .map(|tp| (store::offset_key(&group, &tp.topic, tp.partition), None))
                .collect();
            if group_removed {
                records.push((store::group_key(&group), None));
            }
            if let Err(err) = self.write_group_records(&group, records) {
                tracing::warn!(%group, code = ?err.code, "could not write offset expiry tombstones");
            }
        }
        n
    }

    /// Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions) if
    /// it does not exist yet.
    pub(crate) fn ensure_offsets_topic(&self) -> Result<(), ApiError> {
        if self.topic_meta(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let configs: BTreeMap<String, String> =
            [("cleanup.policy".to_string(), "compact".to_string())].into();
        match self.create_topic(
            OFFSETS_TOPIC,
            self.config.offsets_topic_num_partitions,
            1,
            configs,
            false,
        ) {
            Ok(_) => Ok(()),
            Err(ApiError {
                code: ResponseError::TopicAlreadyExists,
                ..
            }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Appends keyed records (None value: tombstone) for `group` to its `__consumer_offsets`
    /// partition.
    fn write_group_records(
        &self,
        group: &str,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), ApiError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_offsets_topic()?;
        let partition = self.offsets_partition(group);
        self.append_internal(OFFSETS_TOPIC, partition, records, None)
    }

    /// The `__consumer_offsets` partition of a group.
    pub(crate) fn offsets_partition(&self, group: &str) -> i32 {
        let partitions = self.topic_meta(OFFSETS_TOPIC).map_or(1, |m| m.partitions);
        store::partition_for_group(group, partitions)
    }

    /// Appends keyed records (None value: tombstone) to a partition of an internal topic, as
    /// one batch; with a producer id and epoch, as part of that producer's transaction.
    pub(crate) fn append_internal(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
        producer: Option<(i64, i16)>,
    ) -> Result<(), ApiError> {
        let log = self.log(topic, partition).ok_or_else(|| {
            ApiError::new(
                ResponseError::CoordinatorNotAvailable,
                format!("{topic} is not available"),
            )
        })?;
        let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
        let timestamp = now_ms();
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(idx, (key, value))| Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: idx as i64,
                sequence: if producer.is_some() {
                    -1
                } else {
                    idx as i32 - 1
                },
                timestamp,
                key: Some(key),
                value,
                headers: Default::default(),
            })
            .collect();
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| {
            ApiError::new(
                ResponseError::UnknownServerError,
                format!("encode group records: {e}"),
            )
        })?;
        let mut log = log.lock();
        if producer.is_some() {
            log.append_as_coordinator(&batch, 0)?;
        } else {
            log.append_as_leader(&batch, 0)?;
        }
        let end = log.log_end_offset();
        log.set_high_watermark(end);
        Ok(())
    }

    /// Calls `f` with each record of an internal topic, partition by partition, oldest first
    /// (replaying it at startup). Returns how many records there were.
    pub(crate) fn replay_internal_topic(
        &self,
        topic: &str,
        mut f: impl FnMut(i32, Record),
    ) -> Result<usize> {
        let Some(meta) = self.topic_meta(topic) else {
            return Ok(0);
        };
        let mut n_records = 0;
        for partition in 0..meta.partitions {
            let Some(log) = self.logs.get(&TopicPartition::new(topic, partition)) else {
                continue;
            };
            let mut log = log.lock();
            let mut offset = log.log_start_offset();
            while offset < log.log_end_offset() {
                let mut bytes = log.read_bytes(offset, 1 << 20, FetchIsolation::LogEnd)?;
                if bytes.is_empty() {
                    break;
                }
                while !bytes.is_empty() {
                    let set =
                        RecordBatchDecoder::decode(&mut bytes).map_err(|e| Error::CorruptFile {
                            path: log.dir().to_owned(),
                            reason: format!("{topic} batch: {e}"),
                        })?;
                    for record in set.records {
                        offset = record.offset + 1;
                        n_records += 1;
                        f(partition, record);
                    }
                }
            }
        }
        Ok(n_records)
    }

    /// Reads `__consumer_offsets` into the coordinator (at startup).
    pub(crate) fn load_groups(&self) -> Result<usize> {
        let partitions = self.topic_meta(OFFSETS_TOPIC).map_or(1, |m| m.partitions);
        self.replay_internal_topic(OFFSETS_TOPIC, |partition, record| {
            if record.control {
                // A transaction's marker: its offset commits take effect or vanish.
                let commit = record
                    .key
                    .as_ref()
                    .is_some_and(|k| k.len() >= 4 && k[2..4] == [0, 1]);
                self.groups
                    .complete_txn_offsets(record.producer_id, commit, partition, partitions);
                return;
            }
            let Some(key) = record.key.and_then(store::decode_key) else {
                return;
            };
            match key {
                StoredKey::Offset {
                    group,
                    topic,
                    partition,
                } if record.transactional => {
                    if let Some(value) = record.value.and_then(store::decode_offset) {
                        self.groups.stage_txn_offsets(
                            record.producer_id,
                            &group,
                            vec![(TopicPartition::new(&topic, partition), value)],
                        );
                    }
                }
                StoredKey::Offset {
                    group,
                    topic,
                    partition,
                } => {
                    let value = record.value.and_then(store::decode_offset);
                    self.groups.restore_offset(&group, &topic, partition, value);
                }
                StoredKey::Group(group) => {
                    let value = record.value.and_then(store::decode_group);
                    self.groups.restore_group(&group, value);
                }
            }
        })
    }
}

/// Partition indexes with the error each got.
type PartitionErrors = Vec<(i32, Option<ResponseError>)>;

fn error_code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// FindCoordinator: this node coordinates every group (and creates `__consumer_offsets`).
pub fn find_coordinator(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    let advertised = broker.advertised();
    let result = match request.key_type {
        0 => broker.ensure_offsets_topic(),
        1 => broker.ensure_transaction_state_topic(),
        other => Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("Unknown coordinator type {other}"),
        )),
    };
    let (code, message) = match &result {
        Ok(()) => (0, None),
        Err(err) => (err.code.code(), Some(str_bytes(&err.message))),
    };
    let node_id = BrokerId(if code == 0 { broker.config.node_id } else { -1 });
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node_id)
                    .with_host(str_bytes(if code == 0 { &advertised.host } else { "" }))
                    .with_port(if code == 0 {
                        i32::from(advertised.port)
                    } else {
                        -1
                    })
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(node_id)
        .with_host(str_bytes(if code == 0 { &advertised.host } else { "" }))
        .with_port(if code == 0 {
            i32::from(advertised.port)
        } else {
            -1
        });
    if version >= 1 {
        response.with_error_message(message)
    } else {
        response
    }
}

/// JoinGroup: waits for the join phase to end.
pub async fn join_group(
    broker: &Broker,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout: Duration::from_millis(request.session_timeout_ms.max(0) as u64),
        // v0 has no rebalance timeout: it equals the session timeout.
        rebalance_timeout: Duration::from_millis(
            if version >= 1 {
                request.rebalance_timeout_ms
            } else {
                request.session_timeout_ms
            }
            .max(0) as u64,
        ),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let outcome = broker.groups.join(join).await;
    let members = outcome
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let member = join_group_response::JoinGroupResponseMember::default()
                .with_member_id(str_bytes(&id))
                .with_metadata(metadata);
            if version >= 5 {
                member.with_group_instance_id(instance.map(|i| str_bytes(&i)))
            } else {
                member
            }
        })
        .collect();
    let skip_assignment = outcome.skip_assignment;
    let response = JoinGroupResponse::default()
        .with_error_code(error_code(outcome.error))
        .with_generation_id(outcome.generation)
        .with_protocol_name(Some(str_bytes(outcome.protocol.as_deref().unwrap_or(""))))
        .with_leader(str_bytes(&outcome.leader))
        .with_member_id(str_bytes(&outcome.member_id))
        .with_members(members);
    // Fields a version lacks must keep their defaults, or the encoder refuses them.
    let response = if version >= 7 {
        response.with_protocol_type(outcome.protocol_type.map(|t| str_bytes(&t)))
    } else {
        response
    };
    if version >= 9 {
        response.with_skip_assignment(skip_assignment)
    } else {
        response
    }
}

/// SyncGroup: the leader's assignment to every member; the group's generation is recorded.
pub async fn sync_group(
    broker: &Broker,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    // From v5 the protocol type and name are mandatory; Kafka refuses a SyncGroup without them
    // before looking at the group.
    if version >= 5 && (request.protocol_type.is_none() || request.protocol_name.is_none()) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::InconsistentGroupProtocol.code());
    }
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let outcome = broker
        .groups
        .sync(
            &group_id,
            request.generation_id,
            MemberRef {
                id: &request.member_id,
                instance_id: request.group_instance_id.as_deref(),
            },
            assignments,
        )
        .await;
    match outcome {
        Ok((assignment, protocol_type, protocol)) => {
            if let Some(stored) = broker.groups.stored_group(&group_id) {
                let value = store::group_value(&stored, now_ms());
                if let Err(err) = broker.write_group_records(
                    &group_id,
                    vec![(store::group_key(&group_id), Some(value))],
                ) {
                    tracing::warn!(group = %group_id, err = %err.message, "could not record the group's generation");
                }
            }
            let response = SyncGroupResponse::default().with_assignment(assignment);
            if version >= 5 {
                response
                    .with_protocol_type(protocol_type.map(|t| str_bytes(&t)))
                    .with_protocol_name(protocol.map(|p| str_bytes(&p)))
            } else {
                response
            }
        }
        Err(code) => SyncGroupResponse::default().with_error_code(code.code()),
    }
}

/// Heartbeat.
pub fn heartbeat(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let error = broker.groups.heartbeat(
        &request.group_id.0,
        request.generation_id,
        MemberRef {
            id: &request.member_id,
            instance_id: request.group_instance_id.as_deref(),
        },
    );
    HeartbeatResponse::default().with_error_code(error_code(error))
}

/// LeaveGroup (one member before v3, a batch from v3).
pub fn leave_group(
    broker: &Broker,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    use kafka_protocol::messages::leave_group_response::MemberResponse;
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    match broker.groups.leave(&request.group_id.0, &members) {
        Err(code) => LeaveGroupResponse::default().with_error_code(code.code()),
        Ok(results) if version >= 3 => LeaveGroupResponse::default().with_members(
            members
                .iter()
                .zip(results)
                .map(|((id, instance), error)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.as_ref().map(|i| str_bytes(i)))
                        .with_error_code(error_code(error))
                })
                .collect(),
        ),
        Ok(results) => LeaveGroupResponse::default()
            .with_error_code(error_code(results.into_iter().next().flatten())),
    }
}

/// OffsetCommit: checks the member and generation, writes to `__consumer_offsets`, then
/// remembers the offsets.
pub fn offset_commit(
    broker: &Broker,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    let group_id = request.group_id.0.to_string();
    let group_error = broker.groups.check_commit(
        &group_id,
        request.generation_id_or_member_epoch,
        MemberRef {
            id: &request.member_id,
            instance_id: request.group_instance_id.as_deref(),
        },
    );
    let timestamp = now_ms();
    let mut records = Vec::new();
    let mut stored = Vec::new();
    let mut results: Vec<(TopicName, PartitionErrors)> = Vec::new();
    for topic in &request.topics {
        let name: Arc<str> = topic.name.0.as_str().into();
        let meta = broker.topic_meta(&name);
        let mut partitions = Vec::new();
        for partition in &topic.partitions {
            let error = group_error.or_else(|| {
                meta.as_ref()
                    .is_none_or(|m| {
                        partition.partition_index < 0 || partition.partition_index >= m.partitions
                    })
                    .then_some(ResponseError::UnknownTopicOrPartition)
            });
            if error.is_none() {
                let offset = StoredOffset::new(
                    partition.committed_offset,
                    if version >= 6 {
                        partition.committed_leader_epoch
                    } else {
                        -1
                    },
                    partition.committed_metadata.as_deref(),
                    timestamp,
                );
                records.push((
                    store::offset_key(&group_id, &name, partition.partition_index),
                    Some(store::offset_value(&offset)),
                ));
                stored.push((
                    TopicPartition {
                        topic: name.clone(),
                        partition: partition.partition_index,
                    },
                    offset,
                ));
            }
            partitions.push((partition.partition_index, error));
        }
        results.push((topic.name.clone(), partitions));
    }
    let write_error = broker
        .write_group_records(&group_id, records)
        .err()
        .map(|e| {
            tracing::warn!(group = %group_id, err = %e.message, "offset commit failed");
            e.code
        });
    if write_error.is_none() {
        broker.groups.store_offsets(&group_id, stored);
    }
    let topics = results
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, error)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(error_code(error.or(write_error)))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// OffsetFetch (one group, v1–v7): committed offsets, -1 where none.
pub fn offset_fetch(
    broker: &Broker,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };
    let offsets = broker.groups.offsets(&request.group_id.0);
    let wanted: Vec<(Arc<str>, Vec<i32>)> = match &request.topics {
        Some(topics) => topics
            .iter()
            .map(|t| (t.name.0.as_str().into(), t.partition_indexes.clone()))
            .collect(),
        None => {
            let mut by_topic: BTreeMap<Arc<str>, Vec<i32>> = BTreeMap::new();
            for tp in offsets.keys() {
                by_topic
                    .entry(tp.topic.clone())
                    .or_default()
                    .push(tp.partition);
            }
            by_topic
                .into_iter()
                .map(|(t, mut p)| {
                    p.sort_unstable();
                    (t, p)
                })
                .collect()
        }
    };
    let topics = wanted
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|partition| {
                    let base =
                        OffsetFetchResponsePartition::default().with_partition_index(partition);
                    let tp = TopicPartition {
                        topic: topic.clone(),
                        partition,
                    };
                    // KIP-447: a read_committed consumer waits for transactional commits.
                    if version >= 7
                        && request.require_stable
                        && broker.groups.has_pending_txn_offset(&request.group_id, &tp)
                    {
                        return base
                            .with_committed_offset(-1)
                            .with_metadata(Some(str_bytes("")))
                            .with_error_code(ResponseError::UnstableOffsetCommit.code());
                    }
                    match offsets.get(&tp) {
                        Some(stored) => {
                            let found = base
                                .with_committed_offset(stored.offset)
                                .with_metadata(Some(str_bytes(&stored.metadata)));
                            if version >= 5 {
                                found.with_committed_leader_epoch(stored.leader_epoch)
                            } else {
                                found
                            }
                        }
                        None => base
                            .with_committed_offset(-1)
                            .with_metadata(Some(str_bytes(""))),
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// ListGroups (with the v4 state filter).
pub fn list_groups(
    broker: &Broker,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    use kafka_protocol::messages::list_groups_response::ListedGroup;
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.as_str() == state.name())
        })
        .map(|(id, protocol_type, state)| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&id)))
                .with_protocol_type(str_bytes(&protocol_type));
            let listed = if version >= 4 {
                listed.with_group_state(str_bytes(state.name()))
            } else {
                listed
            };
            if version >= 5 {
                listed.with_group_type(str_bytes("classic"))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// DescribeGroups: state, protocol and members with their assignments; an unknown group is
/// `Dead`, as Kafka answers.
pub fn describe_groups(
    broker: &Broker,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let base = DescribedGroup::default().with_group_id(group_id.clone());
            match broker.groups.describe(&group_id.0) {
                None => base.with_group_state(str_bytes("Dead")),
                Some((state, protocol_type, protocol, members)) => {
                    let members = members
                        .into_iter()
                        .map(|m| {
                            let metadata = m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, md)| md.clone())
                                .unwrap_or_default();
                            let member = DescribedGroupMember::default()
                                .with_member_id(str_bytes(&m.id))
                                .with_client_id(str_bytes(&m.client_id))
                                .with_client_host(str_bytes(&m.client_host))
                                .with_member_metadata(metadata)
                                .with_member_assignment(m.assignment.clone());
                            if version >= 4 {
                                member.with_group_instance_id(
                                    m.instance_id.as_ref().map(|i| str_bytes(i)),
                                )
                            } else {
                                member
                            }
                        })
                        .collect();
                    let described = base
                        .with_group_state(str_bytes(state.name()))
                        .with_protocol_type(str_bytes(&protocol_type))
                        .with_protocol_data(str_bytes(&protocol))
                        .with_members(members);
                    if version >= 3 && request.include_authorized_operations {
                        described.with_authorized_operations(super::admin::authorized_operations(
                            super::admin::GROUP_OPERATIONS,
                        ))
                    } else {
                        described
                    }
                }
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// DeleteGroups: empty groups only; their offsets and metadata get tombstones.
pub fn delete_groups(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
    let results = request
        .groups_names
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let result = broker.groups.delete(&id).and_then(|keys| {
                let mut records: Vec<(Bytes, Option<Bytes>)> = keys
                    .iter()
                    .map(|tp| (store::offset_key(&id, &tp.topic, tp.partition), None))
                    .collect();
                records.push((store::group_key(&id), None));
                broker.write_group_records(&id, records).map_err(|e| e.code)
            });
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error_code(result.err()))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

/// OffsetDelete: removes committed offsets of topics the group does not subscribe to (with
/// tombstones in `__consumer_offsets`).
pub fn offset_delete(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    use kafka_protocol::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    let group_id = request.group_id.0.to_string();
    let wanted: Vec<TopicPartition> = request
        .topics
        .iter()
        .flat_map(|t| {
            let topic: Arc<str> = t.name.0.as_str().into();
            t.partitions.iter().map(move |p| TopicPartition {
                topic: topic.clone(),
                partition: p.partition_index,
            })
        })
        .collect();
    let results = match broker.groups.delete_offsets(&group_id, &wanted) {
        Ok(results) => results,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code.code()),
    };
    let tombstones: Vec<(Bytes, Option<Bytes>)> = wanted
        .iter()
        .zip(&results)
        .filter(|(_, error)| error.is_none())
        .map(|(tp, _)| (store::offset_key(&group_id, &tp.topic, tp.partition), None))
        .collect();
    if let Err(err) = broker.write_group_records(&group_id, tombstones) {
        return OffsetDeleteResponse::default().with_error_code(err.code.code());
    }
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for (TopicPartition { topic, partition }, error) in wanted.into_iter().zip(results) {
        let entry = OffsetDeleteResponsePartition::default()
            .with_partition_index(partition)
            .with_error_code(error_code(error));
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(str_bytes(&topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
