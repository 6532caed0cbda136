//! Consumer group administration over the protocol: list, describe (members, assignments),
//! committed offsets, commits on behalf of an inactive group, delete. Works against any Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use super::{Client, Connection};
use crate::error::{Error, Result};
use crate::model::TopicPartition;

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// `client.id`.
    pub client_id: String,
    /// Client address.
    pub host: String,
    /// Partitions assigned to it (consumer protocol).
    pub assignment: Vec<TopicPartition>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State (`Stable`, `Empty`, `Dead`, ...).
    pub state: String,
    /// Assignor in use.
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
}

/// One partition of a group's offsets, as kafka-consumer-groups `--describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset (None: nothing committed).
    pub committed: Option<i64>,
    /// The partition's log end offset (None: it could not be read).
    pub log_end: Option<i64>,
    /// `log_end - committed` when both are known.
    pub lag: Option<i64>,
    /// The member that owns it now (member id, host, client id).
    pub owner: Option<(String, String, String)>,
}

/// Where `reset_group_offsets` moves a group's offsets (kafka-consumer-groups' options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// `--to-earliest`.
    Earliest,
    /// `--to-latest`.
    Latest,
    /// `--to-datetime`: the first offset at or after this timestamp (ms); the end if none.
    Timestamp(i64),
    /// `--shift-by`: from the committed offset (the earliest when none).
    ShiftBy(i64),
    /// `--to-offset`.
    Offset(i64),
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The user data of a consumer protocol assignment, if it has any.
pub fn assignment_user_data(bytes: &Bytes) -> Option<Bytes> {
    let mut bytes = bytes.clone();
    if bytes.remaining() < 2 {
        return None;
    }
    let version = bytes.get_i16().clamp(0, 3);
    ConsumerProtocolAssignment::decode(&mut bytes, version)
        .ok()
        .and_then(|assignment| assignment.user_data)
}

/// Decodes a consumer protocol assignment (version prefix, then the versioned body).
pub fn decode_assignment(mut bytes: Bytes) -> Vec<TopicPartition> {
    if bytes.remaining() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16().clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut bytes, version) {
        Ok(assignment) => assignment
            .assigned_partitions
            .into_iter()
            .flat_map(|assigned| {
                let topic: Arc<str> = assigned.topic.0.as_str().into();
                assigned
                    .partitions
                    .into_iter()
                    .map(move |partition| TopicPartition {
                        topic: topic.clone(),
                        partition,
                    })
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

impl Client {
    /// The coordinator of `group`, once it is ready (see [`Client::until_coordinators_load`]).
    pub async fn group_coordinator(&self, group: &str) -> Result<Arc<Connection>> {
        self.until_coordinators_load(|| self.find_group_coordinator(group))
            .await
    }

    /// Runs `attempt` again every 100 ms, for up to `request.timeout.ms`, while it fails because
    /// a group coordinator is not ready: a Kafka broker creating `__consumer_offsets` on first
    /// use answers COORDINATOR_NOT_AVAILABLE, then COORDINATOR_LOAD_IN_PROGRESS while it loads
    /// it. Kafka's clients retry these errors the same way.
    async fn until_coordinators_load<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.options.request_timeout;
        loop {
            match attempt().await {
                Err(Error::Broker {
                    code:
                        ResponseError::CoordinatorNotAvailable
                        | ResponseError::CoordinatorLoadInProgress,
                    ..
                }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn find_group_coordinator(&self, group: &str) -> Result<Arc<Connection>> {
        self.find_coordinator(0, group).await
    }

    /// FindCoordinator: the coordinator of a group (`key_type` 0) or of a transactional id (1).
    pub(crate) async fn find_coordinator(
        &self,
        key_type: i8,
        key: &str,
    ) -> Result<Arc<Connection>> {
        let node = self.find_coordinator_node(key_type, key).await?;
        self.connection_for_node(node).await
    }

    /// The node id of the coordinator of a group (`key_type` 0) or transactional id (1).
    pub(crate) async fn find_coordinator_node(&self, key_type: i8, key: &str) -> Result<i32> {
        let connection = self.any_connection().await?;
        let version = connection.version_for(kafka_protocol::messages::ApiKey::FindCoordinator)?;
        let request = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![str_bytes(key)])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_key(str_bytes(key))
        };
        let response = connection.send(&request).await?;
        let (code, message, node) = match response.coordinators.first() {
            Some(c) => (c.error_code, c.error_message.clone(), c.node_id.0),
            None => (
                response.error_code,
                response.error_message.clone(),
                response.node_id.0,
            ),
        };
        if let Some(err) = Error::from_code(code, message.as_deref()) {
            return Err(err);
        }
        Ok(node)
    }

    /// Every group of the cluster: (group id, protocol type, state).
    pub async fn list_groups(&self) -> Result<Vec<(String, String, String)>> {
        self.until_coordinators_load(|| self.list_groups_once())
            .await
    }

    async fn list_groups_once(&self) -> Result<Vec<(String, String, String)>> {
        let metadata = self.metadata(Some(&[]), false).await?;
        let mut groups = Vec::new();
        for broker in &metadata.brokers {
            let response = self
                .connection_for_node(broker.node_id.0)
                .await?
                .send(&ListGroupsRequest::default())
                .await?;
            if let Some(err) = Error::from_code(response.error_code, None) {
                return Err(err);
            }
            groups.extend(response.groups.into_iter().map(|g| {
                (
                    g.group_id.0.to_string(),
                    g.protocol_type.to_string(),
                    g.group_state.to_string(),
                )
            }));
        }
        groups.sort();
        Ok(groups)
    }

    /// Describes a group: state, assignor, members and their partitions.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
        let response = self.group_coordinator(group).await?.send(&request).await?;
        let described = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol("empty DescribeGroups response".into()))?;
        if let Some(err) =
            Error::from_code(described.error_code, described.error_message.as_deref())
        {
            return Err(err);
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: described.group_state.to_string(),
            protocol: described.protocol_data.to_string(),
            members: described
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: decode_assignment(m.member_assignment),
                })
                .collect(),
        })
    }

    /// Committed offsets of a group, by partition.
    pub async fn committed_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(None);
        let response = self.group_coordinator(group).await?.send(&request).await?;
        if let Some(err) = Error::from_code(response.error_code, None) {
            return Err(err);
        }
        let mut offsets = BTreeMap::new();
        for topic in response.topics {
            let name: Arc<str> = topic.name.0.as_str().into();
            for partition in topic.partitions {
                if let Some(err) = Error::from_code(partition.error_code, None) {
                    return Err(err);
                }
                if partition.committed_offset >= 0 {
                    let tp = TopicPartition {
                        topic: name.clone(),
                        partition: partition.partition_index,
                    };
                    offsets.insert(tp, partition.committed_offset);
                }
            }
        }
        Ok(offsets)
    }

    /// Commits offsets for a group that has no active members (as an admin tool does).
    pub async fn commit_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (tp, offset) in offsets {
            let entry = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset);
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(&tp.topic)))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(topics);
        let response = self.group_coordinator(group).await?.send(&request).await?;
        for topic in response.topics {
            for partition in topic.partitions {
                if let Some(err) = Error::from_code(partition.error_code, None) {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// A group's committed offsets, log end offsets, lag and owners, by partition (every
    /// partition with a commit or an owner). GROUP_ID_NOT_FOUND for a group that is unknown.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        let description = self.describe_group(group).await?;
        let committed = self.committed_offsets(group).await?;
        if description.state == "Dead" && committed.is_empty() {
            return Err(Error::Broker {
                code: kafka_protocol::ResponseError::GroupIdNotFound,
                message: format!("consumer group {group} does not exist"),
            });
        }
        let mut owners: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
        for member in &description.members {
            for tp in &member.assignment {
                owners.insert(
                    tp.clone(),
                    (
                        member.member_id.clone(),
                        member.host.clone(),
                        member.client_id.clone(),
                    ),
                );
            }
        }
        let mut partitions: Vec<TopicPartition> = committed.keys().cloned().collect();
        partitions.extend(owners.keys().cloned());
        partitions.sort();
        partitions.dedup();
        let mut lags = Vec::with_capacity(partitions.len());
        for tp in partitions {
            // A deleted topic has no end offset; the committed offset is still shown.
            let log_end = self.list_offset(&tp.topic, tp.partition, -1).await.ok();
            let current = committed.get(&tp).copied();
            lags.push(PartitionLag {
                lag: current.zip(log_end).map(|(c, e)| (e - c).max(0)),
                committed: current,
                log_end,
                owner: owners.remove(&tp),
                topic: tp.topic.to_string(),
                partition: tp.partition,
            });
        }
        Ok(lags)
    }

    /// The new offsets a reset would commit for these partitions of `topic`, clamped to each
    /// partition's range as Kafka does. Refused (NON_EMPTY_GROUP) while the group has members.
    pub async fn plan_offset_reset(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
        reset: OffsetReset,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let description = self.describe_group(group).await?;
        if !description.members.is_empty() {
            return Err(Error::Broker {
                code: kafka_protocol::ResponseError::NonEmptyGroup,
                message: format!(
                    "offsets can only be reset while group {group} is inactive; it is {}",
                    description.state
                ),
            });
        }
        let committed = self.committed_offsets(group).await?;
        let topic_name: Arc<str> = topic.into();
        let mut plan = BTreeMap::new();
        for &partition in partitions {
            let tp = TopicPartition {
                topic: topic_name.clone(),
                partition,
            };
            let earliest = self.list_offset(topic, partition, -2).await?;
            let latest = self.list_offset(topic, partition, -1).await?;
            let target = match reset {
                OffsetReset::Earliest => earliest,
                OffsetReset::Latest => latest,
                OffsetReset::Timestamp(ts) => match self.list_offset(topic, partition, ts).await? {
                    -1 => latest,
                    offset => offset,
                },
                OffsetReset::ShiftBy(by) => committed.get(&tp).copied().unwrap_or(earliest) + by,
                OffsetReset::Offset(offset) => offset,
            };
            plan.insert(tp, target.clamp(earliest, latest));
        }
        Ok(plan)
    }

    /// Plans a reset and commits it; returns the offsets committed.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
        reset: OffsetReset,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let plan = self
            .plan_offset_reset(group, topic, partitions, reset)
            .await?;
        self.commit_offsets(group, &plan).await?;
        Ok(plan)
    }

    /// Deletes a group's committed offsets of `partitions` (OffsetDelete; the group must not
    /// be consuming them). Partitions without a commit are not an error.
    pub async fn delete_committed_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
        for tp in partitions {
            let entry = OffsetDeleteRequestPartition::default().with_partition_index(tp.partition);
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(str_bytes(&tp.topic)))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(topics);
        let response = self.group_coordinator(group).await?.send(&request).await?;
        match Error::from_code(response.error_code, None) {
            // Nothing was ever committed: nothing to delete.
            Some(Error::Broker {
                code: ResponseError::GroupIdNotFound,
                ..
            }) => return Ok(()),
            Some(err) => return Err(err),
            None => {}
        }
        for topic in response.topics {
            for partition in topic.partitions {
                if let Some(err) = Error::from_code(partition.error_code, None) {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Deletes groups (they must be empty); the result of each.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut results = Vec::with_capacity(groups.len());
        for group in groups {
            let request =
                DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
            let response = self.group_coordinator(group).await?.send(&request).await?;
            for result in response.results {
                let outcome = match Error::from_code(result.error_code, None) {
                    Some(err) => Err(err),
                    None => Ok(()),
                };
                results.push((result.group_id.0.to_string(), outcome));
            }
        }
        Ok(results)
    }
}
