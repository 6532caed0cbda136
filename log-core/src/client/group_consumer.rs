//! A consumer in a consumer group (the classic protocol): it joins the group through the
//! coordinator, assigns partitions with the chosen assignor when it leads (range, roundrobin,
//! sticky or cooperative-sticky, in `client::assignors`), heartbeats from a
//! background task, resumes from committed offsets (else `auto.offset.reset`), commits, and
//! rejoins when the coordinator announces a rebalance. Fetching is the assignment-based
//! [`Consumer`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::assignors::{
    decode_subscription, subscription_metadata, MemberSubscription, SHUTDOWN_REQUESTED,
};
pub use super::assignors::{range_assign, roundrobin_assign, Assignor};
use super::consumer::{
    records_stream, Consumer, ConsumerConfig, ConsumerRecord, RecordStream, StartOffset,
};
use super::groups::{assignment_user_data, decode_assignment};
use super::{Client, Connection};
use crate::error::{Error, Result};
use crate::model::TopicPartition;

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// `earliest`: from the log start.
    Earliest,
    /// `latest`: only records produced from now on (Kafka's default).
    Latest,
    /// `none`: an error (Java's NoOffsetForPartitionException) instead of a guess.
    None,
}

/// Group settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.id`.
    pub group_id: String,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (the rebalance timeout).
    pub max_poll_interval: Duration,
    /// `auto.offset.reset`: where to start a partition the group has no committed offset for.
    pub auto_offset_reset: AutoOffsetReset,
    /// `enable.auto.commit`: commit the positions reached every `auto.commit.interval.ms`,
    /// before a rebalance and on close.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
    /// `metadata.max.age.ms`: how often the subscribed topics are looked up again (new
    /// partitions, new topics matching a pattern).
    pub metadata_max_age: Duration,
    /// `partition.assignment.strategy`, in order of preference.
    pub assignment_strategy: Vec<Assignor>,
    /// `group.instance.id`: a static member. It keeps its assignment across a restart within
    /// `session.timeout.ms` (no rebalance), and `close` does not leave the group.
    pub group_instance_id: Option<String>,
    /// Fetch settings.
    pub fetch: ConsumerConfig,
}

impl GroupConfig {
    /// The Java client's defaults for `group_id`.
    pub fn new(group_id: &str) -> GroupConfig {
        GroupConfig {
            group_id: group_id.to_string(),
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            auto_offset_reset: AutoOffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            metadata_max_age: Duration::from_millis(300_000),
            group_instance_id: None,
            assignment_strategy: vec![Assignor::Range],
            fetch: ConsumerConfig::default(),
        }
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn encode_assignment(
    partitions: &BTreeMap<String, Vec<i32>>,
    user_data: Option<Bytes>,
) -> Result<Bytes> {
    let assignment = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            partitions
                .iter()
                .map(|(t, ps)| {
                    AssignedTopic::default()
                        .with_topic(TopicName(str_bytes(t)))
                        .with_partitions(ps.clone())
                })
                .collect(),
        )
        .with_user_data(user_data);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    assignment
        .encode(&mut buf, 0)
        .map_err(|e| Error::Protocol(format!("encode assignment: {e}")))?;
    Ok(buf.freeze())
}

/// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID: the coordinator no longer
/// knows this member's generation.
fn is_fencing(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::UnknownMemberId
                | ResponseError::IllegalGeneration
                | ResponseError::FencedInstanceId
        )
    )
}

/// The non-internal topics whose whole name matches, sorted.
async fn matching_topics(client: &Client, pattern: &regex::Regex) -> Result<Vec<String>> {
    let metadata = client.metadata(None, false).await?;
    let mut topics: Vec<String> = metadata
        .topics
        .iter()
        .filter(|t| t.error_code == 0 && !t.is_internal)
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .filter(|name| pattern.is_match(name))
        .collect();
    topics.sort();
    Ok(topics)
}

/// A commit on its way: `wait` for the coordinator's answer.
pub struct PendingCommit {
    response: Option<super::connection::PendingResponse<OffsetCommitRequest>>,
    fenced: Arc<AtomicBool>,
    rejoin: Arc<AtomicBool>,
}

impl PendingCommit {
    /// The outcome: the first partition's error, if any partition was refused.
    pub async fn wait(self) -> Result<()> {
        let Some(response) = self.response else {
            return Ok(());
        };
        let response = response.wait().await?;
        for topic in response.topics {
            for partition in topic.partitions {
                if let Some(err) = Error::from_code(partition.error_code, None) {
                    if is_fencing(partition.error_code) {
                        // As the Java client: a refused generation means rejoining.
                        self.fenced.store(true, Ordering::Release);
                        self.rejoin.store(true, Ordering::Release);
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }
}

/// LeaveGroup for one member: v3+ names it in a batch, earlier versions by member id.
async fn send_leave(
    coordinator: &Connection,
    group_id: &str,
    member_id: &str,
    instance_id: Option<StrBytes>,
) -> Result<()> {
    let version = coordinator.version_for(kafka_protocol::messages::ApiKey::LeaveGroup)?;
    let request = LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(group_id)));
    let request = if version >= 3 {
        request.with_members(vec![MemberIdentity::default()
            .with_member_id(str_bytes(member_id))
            .with_group_instance_id(instance_id)])
    } else {
        request.with_member_id(str_bytes(member_id))
    };
    let response = coordinator.send(&request).await?;
    // A member the coordinator no longer knows has left already: nothing to report.
    if response.error_code != 0 {
        tracing::debug!(
            group = group_id,
            code = response.error_code,
            "LeaveGroup refused"
        );
    }
    Ok(())
}

/// The partition count of each of `topics` now (0: it does not exist), asked of the cluster
/// rather than the client's cache.
async fn fresh_partition_counts(
    client: &Client,
    topics: &[String],
) -> Result<BTreeMap<String, i32>> {
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let response = client.metadata(Some(topics), false).await?;
    let mut counts: BTreeMap<String, i32> = topics.iter().map(|t| (t.clone(), 0)).collect();
    for topic in &response.topics {
        let Some(name) = &topic.name else { continue };
        if topic.error_code == 0 {
            if let Some(count) = counts.get_mut(name.0.as_str()) {
                *count = topic.partitions.len() as i32;
            }
        }
    }
    Ok(counts)
}

fn not_assigned(topic: &str, partition: i32) -> Error {
    Error::InvalidArgument(format!(
        "{topic}-{partition} is not assigned to this member"
    ))
}

/// What `GroupConsumer::next_event` reports: records, or a change of assignment (Kafka's
/// `ConsumerRebalanceListener` callbacks as values an async caller can act on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// Records of the assigned partitions.
    Records(Vec<ConsumerRecord>),
    /// The member's whole assignment in this generation (the first event after `subscribe`,
    /// then one after every rebalance, even when empty). With `cooperative-sticky`, the
    /// partitions it kept go on from their positions; new ones start from their commits.
    Assigned(Vec<TopicPartition>),
    /// A rebalance takes these partitions away; the member still owns them, so this is the
    /// moment to commit what was processed. With `enable.auto.commit` the positions reached
    /// were committed already. Eager assignors revoke the whole assignment before rejoining;
    /// `cooperative-sticky` revokes, after the rebalance, only the partitions that move (the
    /// next call takes the new assignment and rejoins once more to hand them over).
    Revoked(Vec<TopicPartition>),
    /// The member was fenced (its session expired or a newer generation replaced it): these
    /// partitions may already be someone else's and commits for them are refused. The next
    /// call rejoins.
    Lost(Vec<TopicPartition>),
}

struct Membership {
    member_id: String,
    generation: i32,
}

/// A consumer in a group.
pub struct GroupConsumer {
    client: Arc<Client>,
    coordinator: Arc<Connection>,
    config: GroupConfig,
    topics: Vec<String>,
    /// A pattern subscription: `topics` is what it matched at the last check.
    pattern: Option<regex::Regex>,
    last_pattern_check: std::time::Instant,
    membership: Arc<Mutex<Membership>>,
    /// The assignor the coordinator chose for the current generation.
    protocol: Option<Assignor>,
    /// A cooperative rebalance's assignment, waiting to be taken once the partitions it
    /// revokes have been reported (`Revoked`).
    incremental: Option<Vec<TopicPartition>>,
    rejoin: Arc<AtomicBool>,
    /// Set with `rejoin` when the coordinator no longer knows this member's generation.
    fenced: Arc<AtomicBool>,
    /// Revoked/Lost was reported; the next call rejoins.
    revocation_reported: bool,
    /// This member asks the group to shut down (`request_group_shutdown`).
    shutdown_requested: bool,
    events: std::collections::VecDeque<GroupEvent>,
    consumer: Option<Consumer>,
    assignment: Vec<TopicPartition>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    last_auto_commit: std::time::Instant,
    /// When the application last asked for records (`max.poll.interval.ms` is counted from it).
    last_poll: Arc<Mutex<std::time::Instant>>,
    /// The partition count of each subscribed topic at the last join (0: it did not exist),
    /// and when it was last compared with the cluster's.
    known_counts: BTreeMap<String, i32>,
    last_metadata_check: std::time::Instant,
}

/// How often a member whose subscription names a topic that does not exist yet looks for it
/// (as the Java client refreshes metadata for unknown topics well before
/// `metadata.max.age.ms`).
const MISSING_TOPIC_CHECK: Duration = Duration::from_millis(500);

impl GroupConsumer {
    /// Joins `config.group_id` subscribed to `topics`.
    pub async fn subscribe(
        client: Arc<Client>,
        topics: Vec<String>,
        config: GroupConfig,
    ) -> Result<GroupConsumer> {
        GroupConsumer::start(client, topics, None, config).await
    }

    /// Joins `config.group_id` subscribed to every topic whose whole name matches `pattern`
    /// (as Java's `subscribe(Pattern)`; internal topics excluded). Topics created or deleted
    /// later are picked up within `metadata.max.age.ms`, with a rebalance.
    pub async fn subscribe_pattern(
        client: Arc<Client>,
        pattern: &str,
        config: GroupConfig,
    ) -> Result<GroupConsumer> {
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|err| {
            Error::InvalidArgument(format!("subscription pattern {pattern:?}: {err}"))
        })?;
        let topics = matching_topics(&client, &regex).await?;
        GroupConsumer::start(client, topics, Some(regex), config).await
    }

    async fn start(
        client: Arc<Client>,
        topics: Vec<String>,
        pattern: Option<regex::Regex>,
        config: GroupConfig,
    ) -> Result<GroupConsumer> {
        if config.group_id.is_empty() {
            return Err(Error::InvalidArgument("group.id is empty".into()));
        }
        // The coordinator gets its own connection: a JoinGroup that waits for a rebalance must
        // not hold back fetches, nor a long poll the heartbeats.
        let coordinator = client.dedicated_group_connection(&config.group_id).await?;
        let mut consumer = GroupConsumer {
            client,
            coordinator,
            config,
            topics,
            pattern,
            last_pattern_check: std::time::Instant::now(),
            membership: Arc::new(Mutex::new(Membership {
                member_id: String::new(),
                generation: -1,
            })),
            protocol: None,
            incremental: None,
            rejoin: Arc::new(AtomicBool::new(true)),
            consumer: None,
            assignment: Vec::new(),
            heartbeat: None,
            fenced: Arc::new(AtomicBool::new(false)),
            revocation_reported: false,
            shutdown_requested: false,
            events: std::collections::VecDeque::new(),
            last_auto_commit: std::time::Instant::now(),
            last_poll: Arc::new(Mutex::new(std::time::Instant::now())),
            known_counts: BTreeMap::new(),
            last_metadata_check: std::time::Instant::now(),
        };
        consumer.assignment = consumer.join().await?;
        consumer.start_fetching().await?;
        let assigned = GroupEvent::Assigned(consumer.assignment.clone());
        consumer.events.push_back(assigned);
        Ok(consumer)
    }

    /// The subscribed topics (for a pattern, those it matched at the last check).
    pub fn subscription(&self) -> &[String] {
        &self.topics
    }

    /// The partitions assigned in the current generation.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    /// The offset of the next record `poll` returns from an assigned partition.
    pub fn position(&self, topic: &str, partition: i32) -> Result<i64> {
        match &self.consumer {
            Some(consumer) => consumer.position(topic, partition),
            None => Err(not_assigned(topic, partition)),
        }
    }

    /// Moves an assigned partition's position (until the next rebalance, which starts from
    /// the committed offsets).
    pub async fn seek(&mut self, topic: &str, partition: i32, to: StartOffset) -> Result<()> {
        match self.consumer.as_mut() {
            Some(consumer) => consumer.seek(topic, partition, to).await,
            None => Err(not_assigned(topic, partition)),
        }
    }

    /// Pauses assigned partitions; a rebalance that takes them away forgets the pause, as in
    /// Kafka. Heartbeats go on, so a paused member stays in the group.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        match self.consumer.as_mut() {
            Some(consumer) => consumer.pause(partitions),
            None => match partitions.first() {
                Some(tp) => Err(not_assigned(&tp.topic, tp.partition)),
                None => Ok(()),
            },
        }
    }

    /// Resumes paused partitions.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        match self.consumer.as_mut() {
            Some(consumer) => consumer.resume(partitions),
            None => match partitions.first() {
                Some(tp) => Err(not_assigned(&tp.topic, tp.partition)),
                None => Ok(()),
            },
        }
    }

    /// The member's identity for a transactional offset commit
    /// ([`super::producer::Producer::send_offsets_to_transaction`]).
    pub fn group_metadata(&self) -> super::transactions::ConsumerGroupMetadata {
        let (member_id, generation_id) = self.member();
        super::transactions::ConsumerGroupMetadata {
            group_id: self.config.group_id.clone(),
            generation_id,
            member_id,
            group_instance_id: self.config.group_instance_id.clone(),
        }
    }

    /// The member id and generation.
    pub fn member(&self) -> (String, i32) {
        let membership = self.membership.lock();
        (membership.member_id.clone(), membership.generation)
    }

    /// Joins (or rejoins) the group and returns the assignment of the new generation; the
    /// caller applies it. Members tell the leader what they own (the sticky assignors keep it).
    async fn join(&mut self) -> Result<Vec<TopicPartition>> {
        let generation = self.membership.lock().generation;
        // Counted before joining: a topic that appears or grows while the leader assigns is
        // then a change the next check sees, and rejoins for.
        let counts_before = self.partition_counts().await;
        let metadata: Vec<(Assignor, Bytes)> = self
            .config
            .assignment_strategy
            .iter()
            .map(|&assignor| {
                let user_data = self
                    .shutdown_requested
                    .then(|| Bytes::from_static(SHUTDOWN_REQUESTED));
                subscription_metadata(
                    assignor,
                    &self.topics,
                    &self.assignment,
                    generation,
                    user_data,
                )
                .map(|m| (assignor, m))
            })
            .collect::<Result<_>>()?;
        let loading_deadline = std::time::Instant::now() + self.config.max_poll_interval;
        loop {
            let member_id = self.membership.lock().member_id.clone();
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.config.group_id)))
                .with_group_instance_id(self.instance_id())
                .with_session_timeout_ms(self.config.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(self.config.max_poll_interval.as_millis() as i32)
                .with_member_id(str_bytes(&member_id))
                .with_protocol_type(str_bytes("consumer"))
                .with_protocols(
                    metadata
                        .iter()
                        .map(|(assignor, metadata)| {
                            JoinGroupRequestProtocol::default()
                                .with_name(str_bytes(assignor.name()))
                                .with_metadata(metadata.clone())
                        })
                        .collect(),
                );
            // JoinGroup waits up to the rebalance timeout (the Java client allows 5 s more).
            let timeout = self.config.max_poll_interval + Duration::from_secs(5);
            let response = self
                .coordinator
                .send_with_timeout(&request, timeout)
                .await?;
            match ResponseError::try_from_code(response.error_code) {
                // A coordinator still loading the group, or one that is not (yet) the
                // coordinator (Kafka, just after creating `__consumer_offsets`): find it again
                // and rejoin shortly, as Kafka's consumer does.
                Some(
                    code @ (ResponseError::CoordinatorLoadInProgress
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::NotCoordinator),
                ) if std::time::Instant::now() < loading_deadline => {
                    tracing::debug!(group = %self.config.group_id, ?code, "coordinator not ready; joining again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    self.coordinator = self
                        .client
                        .dedicated_group_connection(&self.config.group_id)
                        .await?;
                    continue;
                }
                Some(ResponseError::MemberIdRequired) => {
                    self.membership.lock().member_id = response.member_id.to_string();
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.membership.lock().member_id = String::new();
                    continue;
                }
                Some(ResponseError::RebalanceInProgress) => continue,
                Some(code) => {
                    return Err(Error::Broker {
                        code,
                        message: format!("JoinGroup for group {}", self.config.group_id),
                    })
                }
                None => {}
            }
            {
                let mut membership = self.membership.lock();
                membership.member_id = response.member_id.to_string();
                membership.generation = response.generation_id;
            }
            self.protocol = response
                .protocol_name
                .as_deref()
                .and_then(Assignor::from_name);
            let (assignments, assigned_from) = if response.leader == response.member_id {
                let (assignments, counts) = self
                    .assign(response.protocol_name.as_deref(), &response.members)
                    .await?;
                (assignments, Some(counts))
            } else {
                (Vec::new(), None)
            };
            // From v5 Kafka refuses a SyncGroup without the protocol type and name
            // (INCONSISTENT_GROUP_PROTOCOL).
            let request = SyncGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.config.group_id)))
                .with_group_instance_id(self.instance_id())
                .with_generation_id(response.generation_id)
                .with_member_id(response.member_id.clone())
                .with_protocol_type(Some(str_bytes("consumer")))
                .with_protocol_name(response.protocol_name.clone())
                .with_assignments(assignments);
            let sync = self
                .coordinator
                .send_with_timeout(
                    &request,
                    self.config.max_poll_interval + Duration::from_secs(5),
                )
                .await?;
            match ResponseError::try_from_code(sync.error_code) {
                None => {}
                Some(
                    ResponseError::RebalanceInProgress
                    | ResponseError::IllegalGeneration
                    | ResponseError::CoordinatorLoadInProgress
                    | ResponseError::CoordinatorNotAvailable,
                ) => continue,
                Some(ResponseError::UnknownMemberId) => {
                    self.membership.lock().member_id = String::new();
                    continue;
                }
                Some(code) => {
                    return Err(Error::Broker {
                        code,
                        message: format!("SyncGroup for group {}", self.config.group_id),
                    })
                }
            }
            if assignment_user_data(&sync.assignment).as_deref() == Some(SHUTDOWN_REQUESTED) {
                return Err(Error::ShutdownRequested {
                    group: self.config.group_id.clone(),
                });
            }
            let assignment = decode_assignment(sync.assignment);
            // The leader compares later counts with those it assigned from: had a topic read
            // as missing (a passing metadata error), the next check sees it and rejoins.
            self.known_counts = match assigned_from {
                Some(used) => self
                    .topics
                    .iter()
                    .map(|t| (t.clone(), used.get(t).copied().unwrap_or(0)))
                    .collect(),
                None => counts_before.clone(),
            };
            self.learn_assigned_partitions(&assignment).await;
            self.last_metadata_check = std::time::Instant::now();
            self.rejoin.store(false, Ordering::Release);
            self.fenced.store(false, Ordering::Release);
            self.start_heartbeats();
            return Ok(assignment);
        }
    }

    /// The partition count of each subscribed topic now (0: it does not exist), asked of the
    /// cluster rather than the cache. A failed request keeps what was known.
    async fn partition_counts(&self) -> BTreeMap<String, i32> {
        match fresh_partition_counts(&self.client, &self.topics).await {
            Ok(counts) => counts,
            Err(_) => self.known_counts.clone(),
        }
    }

    /// Whether this generation rebalances cooperatively (members keep their partitions).
    fn is_cooperative(&self) -> bool {
        self.protocol.is_some_and(Assignor::is_cooperative)
    }

    /// Refreshes the metadata of assigned topics whose cached partition count is too small
    /// for the assignment: the leader assigned from newer metadata than this member's cache.
    async fn learn_assigned_partitions(&self, assignment: &[TopicPartition]) {
        let mut stale: Vec<String> = Vec::new();
        for tp in assignment {
            let known = self.client.cached_partition_count(&tp.topic).unwrap_or(0);
            if tp.partition as usize >= known && !stale.iter().any(|t| **t == *tp.topic) {
                stale.push(tp.topic.to_string());
            }
        }
        if !stale.is_empty() {
            if let Err(err) = self.client.metadata(Some(&stale), false).await {
                tracing::debug!(%err, "refreshing the metadata of assigned topics failed");
            }
        }
    }

    /// The leader's job: assign every member's subscription with the chosen assignor; also
    /// the partition counts it assigned from.
    async fn assign(
        &self,
        protocol: Option<&str>,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<(Vec<SyncGroupRequestAssignment>, BTreeMap<String, i32>)> {
        let subscriptions: Vec<MemberSubscription> = members
            .iter()
            .map(|m| decode_subscription(&m.member_id, &m.metadata))
            .collect();
        let topics: BTreeSet<String> = subscriptions
            .iter()
            .flat_map(|m| m.topics.iter().cloned())
            .collect();
        // Asked of the cluster, not the cache: a topic that grew since it was cached would
        // otherwise keep its new partitions unassigned.
        let topics: Vec<String> = topics.into_iter().collect();
        let mut counts = match fresh_partition_counts(&self.client, &topics).await {
            Ok(counts) => counts,
            Err(err) => {
                tracing::debug!(%err, "metadata for the assignment failed; using the cache");
                let mut cached = BTreeMap::new();
                for topic in topics {
                    if let Ok(info) = self.client.topic(&topic, false).await {
                        cached.insert(topic, info.leaders.len() as i32);
                    }
                }
                cached
            }
        };
        counts.retain(|_, count| *count > 0);
        let assignor = protocol.and_then(Assignor::from_name).ok_or_else(|| {
            Error::Protocol(format!(
                "the coordinator chose assignor {protocol:?}, which this member did not offer"
            ))
        })?;
        // A member asking the group to shut down: every member is told to, and gets nothing.
        let shutdown = subscriptions
            .iter()
            .any(|m| m.user_data.as_deref() == Some(SHUTDOWN_REQUESTED));
        if shutdown {
            tracing::warn!(group = %self.config.group_id, "a member asked the group to shut down");
            let assignments = subscriptions
                .iter()
                .map(|m| {
                    Ok(SyncGroupRequestAssignment::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_assignment(encode_assignment(
                            &BTreeMap::new(),
                            Some(Bytes::from_static(SHUTDOWN_REQUESTED)),
                        )?))
                })
                .collect::<Result<_>>()?;
            return Ok((assignments, counts));
        }
        let assigned = assignor.assign(&subscriptions, &counts);
        let assignments = assigned
            .into_iter()
            .map(|(member, partitions)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(str_bytes(&member))
                    .with_assignment(encode_assignment(&partitions, None)?))
            })
            .collect::<Result<_>>()?;
        Ok((assignments, counts))
    }

    /// Starts fetching the assignment from the committed offsets (else `auto.offset.reset`).
    async fn start_fetching(&mut self) -> Result<()> {
        let partitions = self.start_offsets(&self.assignment).await?;
        self.consumer = Some(
            Consumer::assign(self.client.clone(), partitions, self.config.fetch.clone()).await?,
        );
        Ok(())
    }

    /// Where each partition starts: its committed offset, else `auto.offset.reset`.
    async fn start_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, StartOffset)>> {
        let committed = self.committed().await?;
        let reset = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => StartOffset::Beginning,
            AutoOffsetReset::Latest => StartOffset::End,
            AutoOffsetReset::None => {
                let missing: Vec<String> = partitions
                    .iter()
                    .filter(|tp| !committed.contains_key(tp))
                    .map(|tp| tp.to_string())
                    .collect();
                if !missing.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "no committed offset and auto.offset.reset=none for partitions: {}",
                        missing.join(", ")
                    )));
                }
                StartOffset::End
            }
        };
        Ok(partitions
            .iter()
            .map(|tp| {
                let start = committed.get(tp).map_or(reset, |o| StartOffset::Offset(*o));
                (tp.clone(), start)
            })
            .collect())
    }

    /// Applies a generation's assignment after a cooperative rebalance: partitions kept go on
    /// from where they are, new ones start from their committed offsets.
    async fn take_incremental(&mut self, assignment: Vec<TopicPartition>) -> Result<()> {
        let added: Vec<TopicPartition> = assignment
            .iter()
            .filter(|tp| !self.assignment.contains(tp))
            .cloned()
            .collect();
        let removed: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|tp| !assignment.contains(tp))
            .cloned()
            .collect();
        let starts = self.start_offsets(&added).await?;
        match self.consumer.as_mut() {
            Some(consumer) => {
                consumer.remove_partitions(&removed);
                consumer.add_partitions(starts).await?;
            }
            None => {
                self.consumer = Some(
                    Consumer::assign(self.client.clone(), starts, self.config.fetch.clone())
                        .await?,
                );
            }
        }
        self.assignment = assignment;
        Ok(())
    }

    async fn committed(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(str_bytes(&self.config.group_id)))
            .with_topics(None);
        let response = self.coordinator.send(&request).await?;
        let mut offsets = BTreeMap::new();
        for topic in response.topics {
            let name: Arc<str> = topic.name.0.as_str().into();
            for partition in topic.partitions {
                if partition.error_code == 0 && partition.committed_offset >= 0 {
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

    fn start_heartbeats(&mut self) {
        if let Some(old) = self.heartbeat.take() {
            old.abort();
        }
        let coordinator = self.coordinator.clone();
        let membership = self.membership.clone();
        let rejoin = self.rejoin.clone();
        let fenced = self.fenced.clone();
        let group_id = self.config.group_id.clone();
        let instance_id = self.instance_id();
        let interval = self.config.heartbeat_interval;
        let last_poll = self.last_poll.clone();
        let max_poll_interval = self.config.max_poll_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                let (member_id, generation) = {
                    let m = membership.lock();
                    (m.member_id.clone(), m.generation)
                };
                if last_poll.lock().elapsed() > max_poll_interval {
                    // As the Java client: an application that stopped polling gives its
                    // partitions up (a static member just lets its session run out).
                    tracing::warn!(group = %group_id, max_poll_interval_ms = max_poll_interval.as_millis() as u64,
                        "poll was not called within max.poll.interval.ms; leaving the group");
                    // Flagged before leaving, so that whoever sees the member gone also finds
                    // it fenced; a concurrent rejoin starts from a fresh member id.
                    if instance_id.is_none() {
                        membership.lock().member_id = String::new();
                    }
                    fenced.store(true, Ordering::Release);
                    rejoin.store(true, Ordering::Release);
                    if instance_id.is_none() {
                        if let Err(err) =
                            send_leave(&coordinator, &group_id, &member_id, None).await
                        {
                            tracing::debug!(%err, "LeaveGroup after the poll timeout failed");
                        }
                    }
                    return;
                }
                let request = HeartbeatRequest::default()
                    .with_group_id(GroupId(str_bytes(&group_id)))
                    .with_group_instance_id(instance_id.clone())
                    .with_generation_id(generation)
                    .with_member_id(str_bytes(&member_id));
                match coordinator.send(&request).await {
                    Ok(response) if response.error_code == 0 => {}
                    Ok(response) => {
                        tracing::debug!(group = %group_id, code = response.error_code, "heartbeat asks to rejoin");
                        if is_fencing(response.error_code) {
                            fenced.store(true, Ordering::Release);
                        }
                        rejoin.store(true, Ordering::Release);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(group = %group_id, %err, "heartbeat failed");
                        rejoin.store(true, Ordering::Release);
                        return;
                    }
                }
            }
        }));
    }

    /// Records of the assigned partitions, rejoining when a rebalance was announced (with
    /// `enable.auto.commit`, the positions reached are committed first, so that nothing is
    /// read twice). Assignment changes are handled silently: `next_event` reports them.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        loop {
            if let GroupEvent::Records(records) = self.next_event().await? {
                return Ok(records);
            }
        }
    }

    /// The records as an async `Stream` (Kafka's poll loop as the ecosystem's iterator): in
    /// order per partition, rebalances handled as in `poll`. An error is yielded and ends the
    /// stream. The member stays borrowed while the stream lives: drop it (say after
    /// `take(n)`) to commit by hand, or let `enable.auto.commit` commit as it goes.
    pub fn records(&mut self) -> RecordStream<'_> {
        records_stream(self, |member| {
            Box::pin(async move {
                loop {
                    if let GroupEvent::Records(records) = member.next_event_at_most(1).await? {
                        return Ok(records);
                    }
                }
            })
        })
    }

    /// Asks every member of the group to shut down (Kafka Streams' `SHUTDOWN_APPLICATION`): this
    /// member rejoins with the request in its subscription's user data, the leader's
    /// assignment tells every member, and their next call fails with
    /// [`Error::ShutdownRequested`]. Returns once this member got the answer (an error only if
    /// the rebalance itself failed).
    pub async fn request_group_shutdown(&mut self) -> Result<()> {
        self.shutdown_requested = true;
        self.rejoin.store(true, Ordering::Release);
        match self.join().await {
            Err(Error::ShutdownRequested { .. }) => Ok(()),
            Err(err) => Err(err),
            Ok(_) => Err(Error::Protocol(format!(
                "the leader of group {} did not pass the shutdown request on (an assignor that ignores it?)",
                self.config.group_id
            ))),
        }
    }

    /// The next record batch or assignment change. A rebalance is reported as `Revoked` (or
    /// `Lost` when fenced) before rejoining, then `Assigned` after it.
    pub async fn next_event(&mut self) -> Result<GroupEvent> {
        let limit = self.config.fetch.max_poll_records;
        self.next_event_at_most(limit).await
    }

    /// `next_event` waiting at most `timeout` for records (Java's `poll(timeout)`): an empty
    /// `Records` when none came in time. Rebalances are handled as in `next_event`.
    pub async fn next_event_timeout(&mut self, timeout: std::time::Duration) -> Result<GroupEvent> {
        let limit = self.config.fetch.max_poll_records;
        self.next_event_within(limit, Some(timeout)).await
    }

    /// `next_event` with at most `limit` records.
    async fn next_event_at_most(&mut self, limit: usize) -> Result<GroupEvent> {
        self.next_event_within(limit, None).await
    }

    async fn next_event_within(
        &mut self,
        limit: usize,
        timeout: Option<std::time::Duration>,
    ) -> Result<GroupEvent> {
        *self.last_poll.lock() = std::time::Instant::now();
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        if let Some(pattern) = &self.pattern {
            if self.last_pattern_check.elapsed() >= self.config.metadata_max_age {
                self.last_pattern_check = std::time::Instant::now();
                let topics = matching_topics(&self.client, pattern).await?;
                if topics != self.topics {
                    tracing::info!(group = %self.config.group_id, ?topics, "the subscription pattern matches other topics now");
                    self.topics = topics;
                    self.rejoin.store(true, Ordering::Release);
                }
            }
        }
        let missing = self.known_counts.values().any(|&count| count == 0);
        let every = if missing {
            MISSING_TOPIC_CHECK
        } else {
            self.config.metadata_max_age
        };
        if self.last_metadata_check.elapsed() >= every {
            self.last_metadata_check = std::time::Instant::now();
            let counts = self.partition_counts().await;
            if counts != self.known_counts {
                // A topic that appeared or grew: the leader assigns its partitions only in a
                // rebalance, as in Kafka.
                tracing::info!(group = %self.config.group_id, ?counts, "the subscribed topics' partitions changed");
                self.known_counts = counts;
                self.rejoin.store(true, Ordering::Release);
            }
        }
        if let Some(assignment) = self.incremental.take() {
            // `Revoked` was reported for what this assignment takes away: give it up now,
            // take the rest, and rejoin for the follow-up rebalance that hands the revoked
            // partitions to their new owners (KIP-429).
            self.take_incremental(assignment).await?;
            self.rejoin.store(true, Ordering::Release);
            return Ok(GroupEvent::Assigned(self.assignment.clone()));
        }
        if self.rejoin.load(Ordering::Acquire) {
            let fenced = self.fenced.load(Ordering::Acquire);
            // Eager protocols give every partition up before rejoining; cooperative members
            // keep theirs and give up, after the rebalance, only those that move. Either way a
            // fenced member has lost its partitions.
            if !self.revocation_reported && (fenced || !self.is_cooperative()) {
                self.revocation_reported = true;
                let partitions = self.assignment.clone();
                if fenced {
                    return Ok(GroupEvent::Lost(partitions));
                }
                if self.config.enable_auto_commit {
                    // The group may have moved on already; that is the rebalance Kafka
                    // describes, not an error of this call.
                    if let Err(err) = self.commit().await {
                        tracing::debug!(%err, "commit before rejoining failed");
                    }
                }
                return Ok(GroupEvent::Revoked(partitions));
            }
            let cooperative = self.is_cooperative() && !fenced && self.consumer.is_some();
            if fenced {
                // Lost partitions are not owned any more (KIP-429): the rejoin claims none.
                self.assignment.clear();
            }
            let assignment = self.join().await?;
            self.revocation_reported = false;
            self.last_auto_commit = std::time::Instant::now();
            if !(cooperative && self.is_cooperative()) {
                self.assignment = assignment;
                self.start_fetching().await?;
                return Ok(GroupEvent::Assigned(self.assignment.clone()));
            }
            let revoked: Vec<TopicPartition> = self
                .assignment
                .iter()
                .filter(|tp| !assignment.contains(tp))
                .cloned()
                .collect();
            if revoked.is_empty() {
                self.take_incremental(assignment).await?;
                return Ok(GroupEvent::Assigned(self.assignment.clone()));
            }
            if self.config.enable_auto_commit {
                if let Err(err) = self.commit().await {
                    tracing::debug!(%err, "commit of revoked partitions failed");
                }
            }
            self.incremental = Some(assignment);
            return Ok(GroupEvent::Revoked(revoked));
        }
        if self.config.enable_auto_commit
            && self.last_auto_commit.elapsed() >= self.config.auto_commit_interval
        {
            // What earlier polls returned: at least once, as Kafka's auto-commit.
            if let Err(err) = self.commit().await {
                tracing::warn!(%err, group = %self.config.group_id, "auto-commit failed");
            }
            self.last_auto_commit = std::time::Instant::now();
        }
        let records = match (self.consumer.as_mut(), timeout) {
            (Some(consumer), None) => consumer.poll_at_most(limit).await?,
            (Some(consumer), Some(timeout)) => consumer.poll_timeout(limit, timeout).await?,
            (None, _) => Vec::new(),
        };
        Ok(GroupEvent::Records(records))
    }

    /// Commits the positions reached (the next offset of every assigned partition).
    pub async fn commit(&self) -> Result<()> {
        self.commit_async().await?.wait().await
    }

    /// Commits the given next offsets (a partition and its next offset) in this generation.
    pub async fn commit_offsets(&self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        self.commit_offsets_async(offsets).await?.wait().await
    }

    /// Java's `commitAsync`: sends the commit of the positions reached and returns without
    /// waiting for the answer. Commits leave in call order on the coordinator's connection, so
    /// a later one is never overtaken; `PendingCommit::wait` gives the outcome.
    pub async fn commit_async(&self) -> Result<PendingCommit> {
        let positions = match &self.consumer {
            Some(consumer) => consumer.positions(),
            None => Vec::new(),
        };
        self.commit_offsets_async(&positions).await
    }

    /// Sends a commit of the given next offsets without waiting for the answer.
    pub async fn commit_offsets_async(
        &self,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<PendingCommit> {
        let (member_id, generation) = self.member();
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
        if topics.is_empty() {
            return Ok(PendingCommit {
                response: None,
                fenced: self.fenced.clone(),
                rejoin: self.rejoin.clone(),
            });
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(&self.config.group_id)))
            .with_group_instance_id(self.instance_id())
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(str_bytes(&member_id))
            .with_topics(topics);
        Ok(PendingCommit {
            response: Some(self.coordinator.start(&request).await?),
            fenced: self.fenced.clone(),
            rejoin: self.rejoin.clone(),
        })
    }

    /// Commits (with `enable.auto.commit`), leaves the group and stops heartbeating. A static
    /// member (`group.instance.id`) does not leave: its partitions wait for it to come back
    /// until `session.timeout.ms`, as in Kafka.
    pub async fn close(mut self) -> Result<()> {
        let committed = if self.config.enable_auto_commit {
            self.commit().await
        } else {
            Ok(())
        };
        if self.config.group_instance_id.is_some() {
            if let Some(heartbeat) = self.heartbeat.take() {
                heartbeat.abort();
            }
        } else {
            self.leave().await?;
        }
        committed
    }

    fn instance_id(&self) -> Option<StrBytes> {
        self.config.group_instance_id.as_deref().map(str_bytes)
    }

    /// Leaves the group (without committing) and stops heartbeating.
    pub async fn leave(mut self) -> Result<()> {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let (member_id, _) = self.member();
        send_leave(
            &self.coordinator,
            &self.config.group_id,
            &member_id,
            self.instance_id(),
        )
        .await
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundrobin_assignment_matches_kafkas_roundrobin_assignor() {
        // The example in RoundRobinAssignor's documentation.
        let both = vec!["t0".to_string(), "t1".to_string()];
        let members = vec![("C1".to_string(), both.clone()), ("C0".to_string(), both)];
        let counts: BTreeMap<String, i32> = [("t0".to_string(), 3), ("t1".to_string(), 3)].into();
        let assigned = roundrobin_assign(&members, &counts);
        assert_eq!(assigned["C0"]["t0"], vec![0, 2]);
        assert_eq!(assigned["C0"]["t1"], vec![1]);
        assert_eq!(assigned["C1"]["t0"], vec![1]);
        assert_eq!(assigned["C1"]["t1"], vec![0, 2]);
        // Unequal subscriptions: C0 t0; C1 t0, t1; C2 t0, t1, t2 (t0: 1, t1: 2, t2: 3 partitions).
        let members = vec![
            ("C0".to_string(), vec!["t0".to_string()]),
            ("C1".to_string(), vec!["t0".to_string(), "t1".to_string()]),
            (
                "C2".to_string(),
                vec!["t0".to_string(), "t1".to_string(), "t2".to_string()],
            ),
        ];
        let counts: BTreeMap<String, i32> = [
            ("t0".to_string(), 1),
            ("t1".to_string(), 2),
            ("t2".to_string(), 3),
        ]
        .into();
        let assigned = roundrobin_assign(&members, &counts);
        assert_eq!(assigned["C0"].get("t0"), Some(&vec![0]));
        assert_eq!(assigned["C1"].get("t1"), Some(&vec![0]));
        assert_eq!(assigned["C2"].get("t1"), Some(&vec![1]));
        assert_eq!(assigned["C2"].get("t2"), Some(&vec![0, 1, 2]));
        assert!(roundrobin_assign(&[], &counts).is_empty());
    }

    #[test]
    fn range_assignment_matches_kafkas_range_assignor() {
        let members = vec![
            ("b".to_string(), vec!["t".to_string()]),
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
        ];
        let counts: BTreeMap<String, i32> = [("t".to_string(), 5), ("u".to_string(), 2)].into();
        let assigned = range_assign(&members, &counts);
        assert_eq!(assigned["a"]["t"], vec![0, 1, 2]);
        assert_eq!(assigned["b"]["t"], vec![3, 4]);
        assert_eq!(assigned["a"]["u"], vec![0, 1]);
        assert!(!assigned["b"].contains_key("u"));
        let encoded = encode_assignment(&assigned["a"], None).unwrap();
        assert_eq!(
            decode_assignment(encoded),
            [("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1)]
                .map(|(t, p)| TopicPartition::new(t, p))
        );
        let metadata =
            subscription_metadata(Assignor::Range, &["t".into(), "u".into()], &[], -1, None)
                .unwrap();
        assert_eq!(
            decode_subscription("a", &metadata).topics,
            vec!["t".to_string(), "u".to_string()]
        );
    }
}
