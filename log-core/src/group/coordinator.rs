//! The classic consumer group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, with the
//! group states Kafka uses (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead),
//! `session.timeout.ms`, `rebalance.timeout.ms`, `group.initial.rebalance.delay.ms`, and the
//! committed offsets of each group. Assignment is done by the group leader (client-side
//! assignors: range, roundrobin, sticky, cooperative-sticky), the coordinator only relays it.
//!
//! State lives behind one mutex; a request that must wait (JoinGroup until the join phase ends,
//! SyncGroup until the leader's assignment arrives) registers a oneshot and awaits it outside
//! the lock. Timers end the join phase after the rebalance timeout and expire silent members.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::store::{StoredGroup, StoredOffset};
use crate::model::TopicPartition;

/// A group's state, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members have their assignments.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Why a group request failed, as a Kafka error code.
pub type GroupError = kafka_protocol::ResponseError;

/// A member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    /// Member id given by the coordinator.
    pub id: String,
    /// `group.instance.id` for static members.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    /// Supported protocols (assignors) with their metadata, in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// The member's assignment in the current generation.
    pub assignment: Bytes,
    last_heartbeat: Instant,
    /// When it joined, in the group's count of joins (kept across rejoins and by a static
    /// member's replacement).
    joined: u64,
}

/// What a member learns when the join phase ends.
#[derive(Debug, Clone)]
pub struct JoinOutcome {
    /// Error, or None.
    pub error: Option<GroupError>,
    /// The new generation.
    pub generation: i32,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The protocol type (`consumer`).
    pub protocol_type: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// For the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// For a static leader that rejoined a stable group: the assignment stands (KIP-814).
    pub skip_assignment: bool,
}

impl JoinOutcome {
    fn error(error: GroupError, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: Some(error),
            generation: -1,
            protocol: None,
            protocol_type: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// The member a request speaks for: its member id, and its `group.instance.id` if static.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    /// The member id.
    pub id: &'a str,
    /// `group.instance.id`, for static members.
    pub instance_id: Option<&'a str>,
}

impl<'a> MemberRef<'a> {
    /// A dynamic member.
    pub fn dynamic(id: &'a str) -> MemberRef<'a> {
        MemberRef {
            id,
            instance_id: None,
        }
    }
}

/// What a member gets from SyncGroup.
pub type SyncOutcome = Result<(Bytes, Option<String>, Option<String>), GroupError>;

/// What offsets retention removed from one group: the group id, the partitions whose
/// offsets went, and whether the group itself went.
pub type ExpiredOffsets = (String, Vec<TopicPartition>, bool);

#[derive(Debug)]
struct Group {
    state: GroupState,
    protocol_type: Option<String>,
    protocol: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Members whose JoinGroup waits for the join phase to end.
    pending_joins: HashMap<String, oneshot::Sender<JoinOutcome>>,
    /// Members whose SyncGroup waits for the leader's assignment.
    pending_syncs: HashMap<String, oneshot::Sender<SyncOutcome>>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until their owners join (or the session
    /// timeout passes).
    pending_members: HashMap<String, (Instant, Duration)>,
    /// Bumped at every state change, so that stale timers do nothing.
    epoch: u64,
    /// Committed offsets by partition.
    offsets: HashMap<TopicPartition, StoredOffset>,
    /// When the group last became Empty (or was loaded so): `offsets.retention.minutes`
    /// counts from here.
    empty_since: Instant,
    /// Counts joins, so that members are known in the order they joined (Kafka's leader is the
    /// first member to have joined).
    joins: u64,
}

impl Group {
    fn new() -> Group {
        Group {
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending_joins: HashMap::new(),
            pending_syncs: HashMap::new(),
            pending_members: HashMap::new(),
            epoch: 0,
            offsets: HashMap::new(),
            empty_since: Instant::now(),
            joins: 0,
        }
    }

    /// The member that joined first: the leader when the group needs a new one.
    fn first_joined(&self) -> Option<String> {
        self.members
            .values()
            .min_by_key(|m| m.joined)
            .map(|m| m.id.clone())
    }

    /// Kafka's `isStaticMemberFenced`: a request naming `group.instance.id` whose member id is
    /// not the one the instance holds now (another consumer with the same instance id took
    /// its place).
    fn static_member_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id.is_some_and(|instance| {
            self.members
                .values()
                .any(|m| m.instance_id.as_deref() == Some(instance) && m.id != member_id)
        })
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::from_secs(1))
    }

    /// A protocol every member supports, preferring the most-voted first choices (Kafka's rule).
    fn select_protocol(&self) -> Option<String> {
        let mut candidates: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .collect();
        candidates.retain(|name| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
        });
        let votes = |name: &String| {
            self.members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .find(|(n, _)| candidates.contains(&n))
                        .is_some_and(|(n, _)| n == name)
                })
                .count()
        };
        candidates
            .iter()
            .max_by_key(|name| votes(name))
            .map(|name| (*name).clone())
    }
}

/// Group settings (Kafka's broker names).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout: Duration::from_millis(6000),
            max_session_timeout: Duration::from_millis(1_800_000),
        }
    }
}

/// A JoinGroup request, reduced to what the coordinator needs.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// Member id, empty for a new member.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `rebalance.timeout.ms` (`max.poll.interval.ms` for Java consumers).
    pub rebalance_timeout: Duration,
    /// `consumer`.
    pub protocol_type: String,
    /// Assignors with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Whether a new member must first ask for an id (JoinGroup v4+, KIP-394).
    pub require_known_member_id: bool,
}

/// The group coordinator of this node.
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: Mutex<HashMap<String, Group>>,
    /// Offsets committed inside open transactions (TxnOffsetCommit), by producer id then
    /// group: visible once the transaction commits, dropped if it aborts.
    pending_txn_offsets: Mutex<PendingTxnOffsets>,
}

/// Transactional offset commits not yet committed or aborted: producer id → group → offsets.
type PendingTxnOffsets = HashMap<i64, HashMap<String, Vec<(TopicPartition, StoredOffset)>>>;

impl GroupCoordinator {
    /// A coordinator with no groups.
    pub fn new(config: CoordinatorConfig) -> Arc<GroupCoordinator> {
        Arc::new(GroupCoordinator {
            config,
            groups: Mutex::new(HashMap::new()),
            pending_txn_offsets: Mutex::new(HashMap::new()),
        })
    }

    /// Restores a committed offset or group read from `__consumer_offsets` (None: tombstone).
    pub fn restore_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: Option<StoredOffset>,
    ) {
        let mut groups = self.groups.lock();
        let entry = groups.entry(group.to_string()).or_insert_with(Group::new);
        match offset {
            Some(offset) => {
                entry
                    .offsets
                    .insert(TopicPartition::new(topic, partition), offset);
            }
            None => {
                entry.offsets.remove(&TopicPartition::new(topic, partition));
            }
        }
    }

    /// Restores a group's metadata (None: the group was deleted).
    pub fn restore_group(&self, group: &str, stored: Option<StoredGroup>) {
        let mut groups = self.groups.lock();
        match stored {
            Some(stored) => {
                let entry = groups.entry(group.to_string()).or_insert_with(Group::new);
                entry.protocol_type = Some(stored.protocol_type);
                entry.generation = stored.generation;
            }
            None => {
                groups.remove(group);
            }
        }
    }

    /// JoinGroup: waits until the join phase ends (all members rejoined, or the rebalance
    /// timeout passed).
    pub async fn join(self: &Arc<Self>, request: JoinRequest) -> JoinOutcome {
        let receiver = {
            let mut groups = self.groups.lock();
            match self.join_locked(&mut groups, request) {
                Ok(receiver) => receiver,
                Err(outcome) => return *outcome,
            }
        };
        match receiver.await {
            Ok(outcome) => outcome,
            Err(_) => JoinOutcome::error(GroupError::UnknownMemberId, ""),
        }
    }

    fn join_locked(
        self: &Arc<Self>,
        groups: &mut HashMap<String, Group>,
        request: JoinRequest,
    ) -> Result<oneshot::Receiver<JoinOutcome>, Box<JoinOutcome>> {
        if request.group_id.is_empty() {
            return Err(Box::new(JoinOutcome::error(
                GroupError::InvalidGroupId,
                &request.member_id,
            )));
        }
        if request.session_timeout < self.config.min_session_timeout
            || request.session_timeout > self.config.max_session_timeout
        {
            return Err(Box::new(JoinOutcome::error(
                GroupError::InvalidSessionTimeout,
                &request.member_id,
            )));
        }
        let group = groups
            .entry(request.group_id.clone())
            .or_insert_with(Group::new);
        if !group.members.is_empty()
            && group
                .protocol_type
                .as_deref()
                .is_some_and(|t| t != request.protocol_type)
        {
            return Err(Box::new(JoinOutcome::error(
                GroupError::InconsistentGroupProtocol,
                &request.member_id,
            )));
        }
        if !group.members.is_empty()
            && !request.protocols.iter().any(|(name, _)| {
                group
                    .members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
        {
            return Err(Box::new(JoinOutcome::error(
                GroupError::InconsistentGroupProtocol,
                &request.member_id,
            )));
        }
        // A static member that rejoins takes its old member id's place.
        let known_static = request.instance_id.as_ref().and_then(|instance| {
            group
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance))
                .map(|m| m.id.clone())
        });
        let member_id = if request.member_id.is_empty() {
            let new_id = format!(
                "{}-{}",
                if request.client_id.is_empty() {
                    "member"
                } else {
                    &request.client_id
                },
                uuid::Uuid::new_v4()
            );
            if let Some(old) = &known_static {
                if let Some(mut member) = group.members.remove(old) {
                    member.id = new_id.clone();
                    group.members.insert(new_id.clone(), member);
                    if group.leader.as_deref() == Some(old.as_str()) {
                        group.leader = Some(new_id.clone());
                    }
                }
                // The instance it replaces is fenced at once if it waits on a join or sync
                // (Kafka's `replaceStaticMember`).
                if let Some(tx) = group.pending_joins.remove(old) {
                    let _ = tx.send(JoinOutcome::error(GroupError::FencedInstanceId, old));
                }
                if let Some(tx) = group.pending_syncs.remove(old) {
                    let _ = tx.send(Err(GroupError::FencedInstanceId));
                }
            } else if request.require_known_member_id && request.instance_id.is_none() {
                // (A static member is known by its instance id: Kafka admits it at once.)
                // KIP-394: the client rejoins with this id.
                group
                    .pending_members
                    .insert(new_id.clone(), (Instant::now(), request.session_timeout));
                return Err(Box::new(JoinOutcome::error(
                    GroupError::MemberIdRequired,
                    &new_id,
                )));
            }
            new_id
        } else {
            if group.static_member_fenced(request.instance_id.as_deref(), &request.member_id) {
                return Err(Box::new(JoinOutcome::error(
                    GroupError::FencedInstanceId,
                    &request.member_id,
                )));
            }
            let pending = group.pending_members.remove(&request.member_id).is_some();
            if !pending && !group.members.contains_key(&request.member_id) {
                return Err(Box::new(JoinOutcome::error(
                    GroupError::UnknownMemberId,
                    &request.member_id,
                )));
            }
            request.member_id.clone()
        };
        let changed = group
            .members
            .get(&member_id)
            .is_none_or(|m| m.protocols != request.protocols);
        let assignment = group
            .members
            .get(&member_id)
            .map(|m| m.assignment.clone())
            .unwrap_or_default();
        let joined = match group.members.get(&member_id) {
            Some(member) => member.joined,
            None => {
                group.joins += 1;
                group.joins
            }
        };
        group.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id: request.instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: request.protocols.clone(),
                assignment,
                last_heartbeat: Instant::now(),
                joined,
            },
        );
        group.protocol_type = Some(request.protocol_type.clone());
        let (tx, rx) = oneshot::channel();
        group.pending_joins.insert(member_id.clone(), tx);
        match group.state {
            GroupState::Stable
                if known_static.is_some()
                    && request.member_id.is_empty()
                    && (!changed || group.select_protocol() == group.protocol) =>
            {
                // A static member rejoining without its member id (a restarted instance) takes
                // its old place and assignment without a rebalance, as long as the group's
                // protocol stays (Kafka's `updateStaticMemberAndRebalance`). A leader is told to
                // skip the assignment (KIP-814): the others keep theirs. A static member that
                // rejoins with its member id (a leader that lost partitions, a changed
                // subscription) rebalances the group like any member.
                let mut outcome = self.outcome_for(group, &member_id);
                outcome.skip_assignment = group.leader.as_deref() == Some(member_id.as_str());
                if let Some(tx) = group.pending_joins.remove(&member_id) {
                    let _ = tx.send(outcome);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                let delay = self
                    .config
                    .initial_rebalance_delay
                    .min(group.rebalance_timeout());
                self.prepare_rebalance(&request.group_id, group, delay);
                self.maybe_complete_join(&request.group_id, group, false);
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                let timeout = group.rebalance_timeout();
                self.prepare_rebalance(&request.group_id, group, timeout);
                self.maybe_complete_join(&request.group_id, group, false);
            }
            GroupState::PreparingRebalance => {
                self.maybe_complete_join(&request.group_id, group, false)
            }
        }
        Ok(rx)
    }

    /// Moves to PreparingRebalance: pending syncs learn of the rebalance, and a timer ends the
    /// join phase after `wait`.
    fn prepare_rebalance(self: &Arc<Self>, group_id: &str, group: &mut Group, wait: Duration) {
        for (_, tx) in group.pending_syncs.drain() {
            let _ = tx.send(Err(GroupError::RebalanceInProgress));
        }
        group.state = GroupState::PreparingRebalance;
        group.epoch += 1;
        let epoch = group.epoch;
        let coordinator = Arc::clone(self);
        let group_id = group_id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let mut groups = coordinator.groups.lock();
            if let Some(group) = groups.get_mut(&group_id) {
                if group.epoch == epoch && group.state == GroupState::PreparingRebalance {
                    coordinator.maybe_complete_join(&group_id, group, true);
                }
            }
        });
    }

    /// Ends the join phase if every member has rejoined (and no initial delay is running), or
    /// when the timer fires (`forced`): members that did not rejoin are removed.
    fn maybe_complete_join(self: &Arc<Self>, group_id: &str, group: &mut Group, forced: bool) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = group
            .members
            .keys()
            .all(|id| group.pending_joins.contains_key(id));
        // A new group waits out group.initial.rebalance.delay.ms so that members starting
        // together join one generation.
        let initial_delay_running =
            group.generation == 0 && !forced && !self.config.initial_rebalance_delay.is_zero();
        if !forced && (!all_joined || initial_delay_running) {
            return;
        }
        let missing: Vec<String> = group
            .members
            .keys()
            .filter(|id| !group.pending_joins.contains_key(*id))
            .cloned()
            .collect();
        for id in missing {
            group.members.remove(&id);
        }
        group.generation += 1;
        group.epoch += 1;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.empty_since = Instant::now();
            group.leader = None;
            group.protocol = None;
            return;
        }
        group.protocol = group.select_protocol();
        if group
            .leader
            .as_ref()
            .is_none_or(|leader| !group.members.contains_key(leader))
        {
            group.leader = group.first_joined();
        }
        group.state = GroupState::CompletingRebalance;
        for member in group.members.values_mut() {
            member.last_heartbeat = Instant::now();
        }
        let joins: Vec<(String, oneshot::Sender<JoinOutcome>)> =
            group.pending_joins.drain().collect();
        for (member_id, tx) in joins {
            let _ = tx.send(self.outcome_for(group, &member_id));
        }
        // If the leader never syncs, rebalance again after the rebalance timeout.
        let epoch = group.epoch;
        let wait = group.rebalance_timeout();
        let coordinator = Arc::clone(self);
        let group_id = group_id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let mut groups = coordinator.groups.lock();
            if let Some(group) = groups.get_mut(&group_id) {
                if group.epoch == epoch && group.state == GroupState::CompletingRebalance {
                    let timeout = group.rebalance_timeout();
                    coordinator.prepare_rebalance(&group_id, group, timeout);
                }
            }
        });
    }

    fn outcome_for(&self, group: &Group, member_id: &str) -> JoinOutcome {
        let leader = group.leader.clone().unwrap_or_default();
        let protocol = group.protocol.clone();
        let members = if leader == member_id {
            group
                .members
                .values()
                .map(|m| {
                    let metadata = m
                        .protocols
                        .iter()
                        .find(|(n, _)| Some(n) == protocol.as_ref())
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default();
                    (m.id.clone(), m.instance_id.clone(), metadata)
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error: None,
            generation: group.generation,
            protocol,
            protocol_type: group.protocol_type.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// SyncGroup: the leader hands in the assignment; every member gets its own.
    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member: MemberRef<'_>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncOutcome {
        let member_id = member.id;
        let receiver = {
            let mut groups = self.groups.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return Err(GroupError::UnknownMemberId);
            };
            if group.static_member_fenced(member.instance_id, member_id) {
                return Err(GroupError::FencedInstanceId);
            }
            if !group.members.contains_key(member_id) {
                return Err(GroupError::UnknownMemberId);
            }
            if generation != group.generation {
                return Err(GroupError::IllegalGeneration);
            }
            match group.state {
                GroupState::PreparingRebalance => return Err(GroupError::RebalanceInProgress),
                GroupState::Stable => {
                    let assignment = group
                        .members
                        .get(member_id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    return Ok((
                        assignment,
                        group.protocol_type.clone(),
                        group.protocol.clone(),
                    ));
                }
                GroupState::Empty | GroupState::Dead => return Err(GroupError::UnknownMemberId),
                GroupState::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            group.pending_syncs.insert(member_id.to_string(), tx);
            if group.leader.as_deref() == Some(member_id) {
                let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
                for member in group.members.values_mut() {
                    member.assignment = assignments.remove(&member.id).unwrap_or_default();
                }
                group.state = GroupState::Stable;
                group.epoch += 1;
                let syncs: Vec<(String, oneshot::Sender<SyncOutcome>)> =
                    group.pending_syncs.drain().collect();
                for (id, tx) in syncs {
                    let assignment = group
                        .members
                        .get(&id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    let _ = tx.send(Ok((
                        assignment,
                        group.protocol_type.clone(),
                        group.protocol.clone(),
                    )));
                }
            }
            rx
        };
        receiver
            .await
            .unwrap_or(Err(GroupError::RebalanceInProgress))
    }

    /// Heartbeat: keeps a member alive; tells it when to rejoin.
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member: MemberRef<'_>,
    ) -> Option<GroupError> {
        let member_id = member.id;
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Some(GroupError::UnknownMemberId);
        };
        if group.static_member_fenced(member.instance_id, member_id) {
            return Some(GroupError::FencedInstanceId);
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return Some(GroupError::UnknownMemberId);
        };
        member.last_heartbeat = Instant::now();
        if generation != group.generation {
            return Some(GroupError::IllegalGeneration);
        }
        match group.state {
            GroupState::PreparingRebalance => Some(GroupError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Some(GroupError::UnknownMemberId),
            GroupState::Stable | GroupState::CompletingRebalance => None,
        }
    }

    /// LeaveGroup for each member (by member id, or by `group.instance.id`).
    pub fn leave(
        self: &Arc<Self>,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        let mut results = Vec::with_capacity(members.len());
        let mut removed = false;
        for (member_id, instance_id) in members {
            // KIP-345: a leave that names an instance with another member's id is fenced.
            if !member_id.is_empty()
                && group.static_member_fenced(instance_id.as_deref(), member_id)
            {
                results.push(Some(GroupError::FencedInstanceId));
                continue;
            }
            let id = match instance_id {
                Some(instance) => group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(instance))
                    .map(|m| m.id.clone()),
                None => group
                    .members
                    .contains_key(member_id)
                    .then(|| member_id.clone()),
            };
            match id {
                Some(id) => {
                    group.members.remove(&id);
                    group.pending_joins.remove(&id);
                    group.pending_syncs.remove(&id);
                    removed = true;
                    results.push(None);
                }
                None => results.push(Some(GroupError::UnknownMemberId)),
            }
        }
        if removed {
            self.after_member_removed(group_id, group);
        }
        Ok(results)
    }

    fn after_member_removed(self: &Arc<Self>, group_id: &str, group: &mut Group) {
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                let timeout = group.rebalance_timeout();
                self.prepare_rebalance(group_id, group, timeout);
                self.maybe_complete_join(group_id, group, false);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(group_id, group, false),
            GroupState::Empty | GroupState::Dead => {}
        }
        if group.members.is_empty() && group.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(group_id, group, true);
        }
    }

    /// Removes members whose session timed out (members waiting in a join or sync are not
    /// expected to heartbeat). Returns how many were removed, and when the next session ends
    /// if none heartbeats before (so that the caller wakes then, not a tick later).
    pub fn expire_members(self: &Arc<Self>) -> (usize, Option<Instant>) {
        let now = Instant::now();
        let mut groups = self.groups.lock();
        let mut n_expired = 0;
        let mut next: Option<Instant> = None;
        let ids: Vec<String> = groups.keys().cloned().collect();
        for group_id in ids {
            let Some(group) = groups.get_mut(&group_id) else {
                continue;
            };
            group
                .pending_members
                .retain(|_, (since, timeout)| now.duration_since(*since) <= *timeout);
            let mut expired = Vec::new();
            for member in group.members.values().filter(|m| {
                !group.pending_joins.contains_key(&m.id) && !group.pending_syncs.contains_key(&m.id)
            }) {
                let deadline = member.last_heartbeat + member.session_timeout;
                if now > deadline {
                    expired.push(member.id.clone());
                } else {
                    next = Some(next.map_or(deadline, |n| n.min(deadline)));
                }
            }
            if expired.is_empty() {
                continue;
            }
            for id in &expired {
                tracing::info!(group = %group_id, member = %id, "member session expired");
                group.members.remove(id);
            }
            n_expired += expired.len();
            self.after_member_removed(&group_id, group);
        }
        (n_expired, next)
    }

    /// Checks that a commit may be made by this member in this generation. `generation = -1` and
    /// an empty member id is a standalone consumer, allowed when the group has no members.
    pub fn check_commit(
        &self,
        group_id: &str,
        generation: i32,
        member: MemberRef<'_>,
    ) -> Option<GroupError> {
        let member_id = member.id;
        let groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            return (generation >= 0).then_some(GroupError::IllegalGeneration);
        };
        if group.static_member_fenced(member.instance_id, member_id) {
            return Some(GroupError::FencedInstanceId);
        }
        if generation < 0 && member_id.is_empty() {
            return (!group.members.is_empty()).then_some(GroupError::UnknownMemberId);
        }
        if !group.members.contains_key(member_id) {
            return Some(GroupError::UnknownMemberId);
        }
        if generation != group.generation {
            return Some(GroupError::IllegalGeneration);
        }
        (group.state == GroupState::CompletingRebalance).then_some(GroupError::RebalanceInProgress)
    }

    /// Records committed offsets (after they were written to `__consumer_offsets`).
    pub fn store_offsets(&self, group_id: &str, offsets: Vec<(TopicPartition, StoredOffset)>) {
        let mut groups = self.groups.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(Group::new);
        for (tp, offset) in offsets {
            group.offsets.insert(tp, offset);
        }
    }

    /// Holds offsets a transaction committed (after they were written to `__consumer_offsets`
    /// as part of it) until its marker.
    pub fn stage_txn_offsets(
        &self,
        producer_id: i64,
        group_id: &str,
        offsets: Vec<(TopicPartition, StoredOffset)>,
    ) {
        self.pending_txn_offsets
            .lock()
            .entry(producer_id)
            .or_default()
            .entry(group_id.to_string())
            .or_default()
            .extend(offsets);
    }

    /// A transaction's marker reached the `__consumer_offsets` partition `in_partition` (of
    /// `partitions`): its offsets for the groups of that partition become committed, or are
    /// dropped on abort.
    pub fn complete_txn_offsets(
        &self,
        producer_id: i64,
        commit: bool,
        in_partition: i32,
        partitions: i32,
    ) {
        let done: Vec<(String, Vec<(TopicPartition, StoredOffset)>)> = {
            let mut pending = self.pending_txn_offsets.lock();
            let Some(by_group) = pending.get_mut(&producer_id) else {
                return;
            };
            let groups: Vec<String> = by_group
                .keys()
                .filter(|g| super::store::partition_for_group(g, partitions) == in_partition)
                .cloned()
                .collect();
            let done = groups
                .into_iter()
                .filter_map(|g| by_group.remove_entry(&g))
                .collect();
            if by_group.is_empty() {
                pending.remove(&producer_id);
            }
            done
        };
        if commit {
            for (group, offsets) in done {
                self.store_offsets(&group, offsets);
            }
        }
    }

    /// Whether an open transaction holds an offset of this group for this partition (a
    /// `require_stable` OffsetFetch answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending_txn_offset(&self, group_id: &str, tp: &TopicPartition) -> bool {
        self.pending_txn_offsets.lock().values().any(|by_group| {
            by_group
                .get(group_id)
                .is_some_and(|offsets| offsets.iter().any(|(p, _)| p == tp))
        })
    }

    /// Committed offsets of a group (all, or those asked for).
    pub fn offsets(&self, group_id: &str) -> HashMap<TopicPartition, StoredOffset> {
        self.groups
            .lock()
            .get(group_id)
            .map(|g| g.offsets.clone())
            .unwrap_or_default()
    }

    /// Every group with its protocol type and state.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups = self.groups.lock();
        let mut list: Vec<(String, String, GroupState)> = groups
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// A group's state, protocol type, protocol and members.
    pub fn describe(&self, group_id: &str) -> Option<(GroupState, String, String, Vec<Member>)> {
        let groups = self.groups.lock();
        let group = groups.get(group_id)?;
        Some((
            group.state,
            group.protocol_type.clone().unwrap_or_default(),
            group.protocol.clone().unwrap_or_default(),
            group.members.values().cloned().collect(),
        ))
    }

    /// Offsets retention (KIP-211): a group that has been Empty for `retention` loses its
    /// committed offsets; a group that never had members (standalone consumers committing
    /// with generation -1) loses each offset `retention` after it was committed. A group left
    /// with nothing is forgotten. Returns the partitions forgotten per group, and whether the
    /// group went too (for tombstones).
    pub fn expire_offsets(&self, retention: Duration, now_ms: i64) -> Vec<ExpiredOffsets> {
        let retention_ms = retention.as_millis() as i64;
        let mut groups = self.groups.lock();
        let mut expired = Vec::new();
        groups.retain(|group_id, group| {
            if !group.members.is_empty() || group.state != GroupState::Empty {
                return true;
            }
            let forgotten: Vec<TopicPartition> = if group.protocol_type.is_some() {
                if group.empty_since.elapsed() < retention {
                    return true;
                }
                group.offsets.drain().map(|(k, _)| k).collect()
            } else {
                let old: Vec<TopicPartition> = group
                    .offsets
                    .iter()
                    .filter(|(_, o)| now_ms - o.commit_timestamp >= retention_ms)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in &old {
                    group.offsets.remove(key);
                }
                old
            };
            let gone = group.offsets.is_empty();
            if !forgotten.is_empty() || gone {
                tracing::info!(group = %group_id, partitions = forgotten.len(), group_removed = gone, "offsets expired (offsets.retention.minutes)");
                expired.push((group_id.clone(), forgotten, gone));
            }
            !gone
        });
        expired
    }

    /// Deletes an empty group; returns its committed offsets' keys (to write tombstones).
    pub fn delete(&self, group_id: &str) -> Result<Vec<TopicPartition>, GroupError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        if !group.members.is_empty() {
            return Err(GroupError::NonEmptyGroup);
        }
        let keys = group.offsets.keys().cloned().collect();
        groups.remove(group_id);
        Ok(keys)
    }

    /// Topics the group's members subscribe to (from their consumer-protocol metadata).
    fn subscribed_topics(group: &Group) -> std::collections::HashSet<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let mut topics = std::collections::HashSet::new();
        for member in group.members.values() {
            for (_, metadata) in &member.protocols {
                let mut buf = metadata.clone();
                if buf.len() < 2 {
                    continue;
                }
                let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
                bytes::Buf::advance(&mut buf, 2);
                if let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut buf, version) {
                    topics.extend(subscription.topics.iter().map(|t| t.to_string()));
                }
            }
        }
        topics
    }

    /// OffsetDelete: forgets committed offsets of partitions the group does not subscribe to.
    /// Returns, per partition, the error (or None when deleted).
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Option<GroupError>>, GroupError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        let subscribed = GroupCoordinator::subscribed_topics(group);
        Ok(partitions
            .iter()
            .map(|tp| {
                if subscribed.contains(&*tp.topic) {
                    Some(GroupError::GroupSubscribedToTopic)
                } else {
                    group.offsets.remove(tp);
                    None
                }
            })
            .collect())
    }

    /// The stored form of a group's metadata, for `__consumer_offsets`.
    pub fn stored_group(&self, group_id: &str) -> Option<StoredGroup> {
        let groups = self.groups.lock();
        let group = groups.get(group_id)?;
        Some(StoredGroup {
            protocol_type: group
                .protocol_type
                .clone()
                .unwrap_or_else(|| "consumer".into()),
            generation: group.generation,
            protocol: group.protocol.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> Arc<GroupCoordinator> {
        GroupCoordinator::new(CoordinatorConfig {
            initial_rebalance_delay: Duration::ZERO,
            ..Default::default()
        })
    }

    fn join_request(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(5),
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(p.to_string())))
                .collect(),
            require_known_member_id: true,
        }
    }

    /// Joins as a new member (getting an id first, as KIP-394 asks).
    async fn join_new(c: &Arc<GroupCoordinator>, protocols: &[&str]) -> JoinOutcome {
        let first = c.join(join_request("", protocols)).await;
        assert_eq!(first.error, Some(GroupError::MemberIdRequired));
        c.join(join_request(&first.member_id, protocols)).await
    }

    #[tokio::test]
    async fn members_join_one_generation_and_the_leader_assigns() {
        let c = coordinator();
        let a = join_new(&c, &["range", "roundrobin"]).await;
        assert_eq!(
            (a.error, a.generation, a.leader.as_str()),
            (None, 1, a.member_id.as_str())
        );
        // b joins: a learns of the rebalance by heartbeat, rejoins; both get generation 2.
        let c2 = c.clone();
        let b = tokio::spawn(async move { join_new(&c2, &["roundrobin"]).await });
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.heartbeat("g", 1, MemberRef::dynamic(&a.member_id))
            != Some(GroupError::RebalanceInProgress)
        {
            assert!(Instant::now() < deadline, "a never saw the rebalance");
            tokio::task::yield_now().await;
        }
        let a2 = c
            .join(join_request(&a.member_id, &["range", "roundrobin"]))
            .await;
        let b = b.await.unwrap();
        assert_eq!((a2.generation, b.generation), (2, 2));
        // The only protocol both support wins; the leader (a) sees both members.
        assert_eq!(a2.protocol.as_deref(), Some("roundrobin"));
        assert_eq!(a2.members.len(), 2);
        assert!(b.members.is_empty());
        // The leader's assignment reaches the follower.
        let assignments = vec![
            (a.member_id.clone(), Bytes::from("A")),
            (b.member_id.clone(), Bytes::from("B")),
        ];
        let follower = {
            let c = c.clone();
            let id = b.member_id.clone();
            tokio::spawn(async move { c.sync("g", 2, MemberRef::dynamic(&id), Vec::new()).await })
        };
        let leader = c
            .sync("g", 2, MemberRef::dynamic(&a.member_id), assignments)
            .await
            .unwrap();
        assert_eq!(leader.0, Bytes::from("A"));
        assert_eq!(follower.await.unwrap().unwrap().0, Bytes::from("B"));
        assert_eq!(c.heartbeat("g", 2, MemberRef::dynamic(&b.member_id)), None);
        assert_eq!(
            c.heartbeat("g", 1, MemberRef::dynamic(&b.member_id)),
            Some(GroupError::IllegalGeneration)
        );
        assert_eq!(
            c.heartbeat("g", 2, MemberRef::dynamic("nobody")),
            Some(GroupError::UnknownMemberId)
        );
        assert_eq!(
            c.check_commit("g", 2, MemberRef::dynamic(&a.member_id)),
            None
        );
        assert_eq!(
            c.check_commit("g", 1, MemberRef::dynamic(&a.member_id)),
            Some(GroupError::IllegalGeneration)
        );
        assert_eq!(
            c.check_commit("g", -1, MemberRef::dynamic("")),
            Some(GroupError::UnknownMemberId)
        );
        assert_eq!(c.delete("g"), Err(GroupError::NonEmptyGroup));

        // b leaves: a rejoins alone in generation 3; then a leaves and the group is empty.
        assert_eq!(
            c.leave("g", &[(b.member_id.clone(), None)]).unwrap(),
            vec![None]
        );
        assert_eq!(
            c.heartbeat("g", 2, MemberRef::dynamic(&a.member_id)),
            Some(GroupError::RebalanceInProgress)
        );
        let a3 = c
            .join(join_request(&a.member_id, &["range", "roundrobin"]))
            .await;
        assert_eq!((a3.generation, a3.members.len()), (3, 1));
        c.leave("g", &[(a.member_id.clone(), None)]).unwrap();
        assert_eq!(c.describe("g").unwrap().0, GroupState::Empty);
        assert_eq!(
            c.check_commit("g", -1, MemberRef::dynamic("")),
            None,
            "a standalone commit to an empty group"
        );
        assert!(c.delete("g").is_ok());
        assert_eq!(c.delete("g"), Err(GroupError::GroupIdNotFound));
    }

    #[tokio::test]
    async fn a_static_member_replaced_by_another_instance_is_fenced() {
        let c = coordinator();
        let static_join = |member_id: &str| JoinRequest {
            instance_id: Some("instance-1".into()),
            ..join_request(member_id, &["range"])
        };
        // Static members join with an empty id and get one at once (no MEMBER_ID_REQUIRED).
        let old = c.join(static_join("")).await;
        assert_eq!(old.error, None);
        let old_ref = MemberRef {
            id: &old.member_id,
            instance_id: Some("instance-1"),
        };
        let assignment = vec![(old.member_id.clone(), Bytes::from_static(b"a"))];
        c.sync("g", old.generation, old_ref, assignment)
            .await
            .unwrap();
        assert_eq!(c.heartbeat("g", old.generation, old_ref), None);

        // A second consumer with the same group.instance.id takes the instance over.
        let new = c.join(static_join("")).await;
        assert_eq!(new.error, None);
        assert_ne!(new.member_id, old.member_id);
        let new_ref = MemberRef {
            id: &new.member_id,
            instance_id: Some("instance-1"),
        };
        // The old one is fenced (fatal to it), not merely unknown.
        assert_eq!(
            c.heartbeat("g", old.generation, old_ref),
            Some(GroupError::FencedInstanceId)
        );
        assert_eq!(
            c.check_commit("g", old.generation, old_ref),
            Some(GroupError::FencedInstanceId)
        );
        assert_eq!(
            c.sync("g", old.generation, old_ref, Vec::new()).await,
            Err(GroupError::FencedInstanceId)
        );
        assert_eq!(
            c.join(static_join(&old.member_id)).await.error,
            Some(GroupError::FencedInstanceId)
        );
        assert_eq!(
            c.leave("g", &[(old.member_id.clone(), Some("instance-1".into()))])
                .unwrap(),
            vec![Some(GroupError::FencedInstanceId)]
        );
        // The new one is the member; a dynamic member id that is unknown stays UNKNOWN_MEMBER_ID.
        assert_eq!(c.heartbeat("g", new.generation, new_ref), None);
        assert_eq!(
            c.heartbeat("g", new.generation, MemberRef::dynamic(&old.member_id)),
            Some(GroupError::UnknownMemberId)
        );
    }

    fn static_join(member_id: &str, instance: &str) -> JoinRequest {
        JoinRequest {
            instance_id: Some(instance.into()),
            ..join_request(member_id, &["range"])
        }
    }

    /// A coordinator whose join phase is long enough for two members to join one generation,
    /// and static members "a" (the leader: it joins first) and "b" joined to it.
    async fn two_static_members() -> (Arc<GroupCoordinator>, JoinOutcome, JoinOutcome) {
        let c = GroupCoordinator::new(CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(300),
            ..Default::default()
        });
        let (a, b) = tokio::join!(c.join(static_join("", "a")), async {
            // b joins second, so a (first) leads whatever the member ids sort as.
            tokio::task::yield_now().await;
            c.join(static_join("", "b")).await
        });
        assert_eq!(a.leader, a.member_id);
        assert_eq!(b.leader, a.member_id);
        (c, a, b)
    }

    #[tokio::test]
    async fn a_restarted_static_member_rejoins_without_a_rebalance_even_as_leader() {
        let (c, a, b) = two_static_members().await;
        let a_ref = MemberRef {
            id: &a.member_id,
            instance_id: Some("a"),
        };
        let b_ref = MemberRef {
            id: &b.member_id,
            instance_id: Some("b"),
        };
        let assignments = vec![
            (a.member_id.clone(), Bytes::from_static(b"A")),
            (b.member_id.clone(), Bytes::from_static(b"B")),
        ];
        let (leader, follower) = tokio::join!(
            c.sync("g", a.generation, a_ref, assignments),
            c.sync("g", b.generation, b_ref, Vec::new())
        );
        assert_eq!(leader.unwrap().0, Bytes::from_static(b"A"));
        assert_eq!(follower.unwrap().0, Bytes::from_static(b"B"));

        // The leader restarts: a new member id for the same instance, the same generation, the
        // assignment skipped; the follower sees no rebalance.
        let again = c.join(static_join("", "a")).await;
        assert_eq!(again.error, None);
        assert_ne!(again.member_id, a.member_id);
        assert_eq!(again.generation, a.generation);
        assert!(again.skip_assignment);
        assert_eq!(again.leader, again.member_id);
        assert_eq!(c.heartbeat("g", b.generation, b_ref), None);
        let again_ref = MemberRef {
            id: &again.member_id,
            instance_id: Some("a"),
        };
        let kept = c.sync("g", again.generation, again_ref, Vec::new()).await;
        assert_eq!(kept.unwrap().0, Bytes::from_static(b"A"));
    }

    #[tokio::test]
    async fn a_static_leader_rejoining_with_its_member_id_rebalances_the_group() {
        // franz-go's cooperative-sticky static members: a leader that lost partitions rejoins
        // with its member id; Kafka rebalances, so the follower hears of it and gets them.
        let (c, a, b) = two_static_members().await;
        let a_ref = MemberRef {
            id: &a.member_id,
            instance_id: Some("a"),
        };
        let b_ref = MemberRef {
            id: &b.member_id,
            instance_id: Some("b"),
        };
        let (leader, follower) = tokio::join!(
            c.sync("g", a.generation, a_ref, Vec::new()),
            c.sync("g", b.generation, b_ref, Vec::new())
        );
        assert!(leader.is_ok() && follower.is_ok());

        let rejoin = tokio::spawn({
            let c = c.clone();
            let request = static_join(&a.member_id, "a");
            async move { c.join(request).await }
        });
        // The follower's next heartbeat is told to rejoin; it does, and a new generation forms.
        tokio::time::timeout(Duration::from_secs(5), async {
            while c.heartbeat("g", b.generation, b_ref) != Some(GroupError::RebalanceInProgress) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the follower hears of the rebalance");
        let b2 = c.join(static_join(&b.member_id, "b")).await;
        let a2 = rejoin.await.unwrap();
        assert_eq!(a2.error, None);
        assert_eq!(a2.member_id, a.member_id);
        assert!(!a2.skip_assignment);
        assert_eq!(b2.generation, a.generation + 1);
        assert_eq!(a2.generation, b2.generation);
    }

    #[tokio::test]
    async fn bad_joins_get_kafkas_errors() {
        let c = coordinator();
        let mut request = join_request("", &["range"]);
        request.session_timeout = Duration::from_millis(10);
        assert_eq!(
            c.join(request).await.error,
            Some(GroupError::InvalidSessionTimeout)
        );
        let mut request = join_request("", &["range"]);
        request.group_id = String::new();
        assert_eq!(
            c.join(request).await.error,
            Some(GroupError::InvalidGroupId)
        );
        assert_eq!(
            c.join(join_request("made-up", &["range"])).await.error,
            Some(GroupError::UnknownMemberId)
        );
        let a = join_new(&c, &["range"]).await;
        assert_eq!(a.error, None);
        // A member with no protocol in common with the group.
        let first = c.join(join_request("", &["sticky"])).await;
        assert_eq!(first.error, Some(GroupError::InconsistentGroupProtocol));
    }
}
