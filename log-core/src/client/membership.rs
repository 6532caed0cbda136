//! Membership of a Kafka group with a protocol of its own: what Kafka Connect's workers (protocol
//! type `connect`) and other group-coordinated services use where a consumer group's topic
//! partitions are not the thing shared. Join, let the leader assign whatever the members share,
//! heartbeat in the background, and learn when the group rebalances.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Client, Connection};
use crate::error::{Error, Result};

/// How a member joins its group.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// `group.id`.
    pub group_id: String,
    /// The protocol type every member shares (`connect` for Connect workers).
    pub protocol_type: String,
    /// `session.timeout.ms`: how long the coordinator waits for a heartbeat.
    pub session_timeout: Duration,
    /// `rebalance.timeout.ms`: how long a rebalance waits for every member to rejoin.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
}

/// A member as the leader sees it when it assigns.
#[derive(Debug, Clone)]
pub struct GroupMemberMetadata {
    /// The member id.
    pub member_id: String,
    /// What the member sent for the chosen protocol.
    pub metadata: Bytes,
}

/// The outcome of a join: this member's generation, id, leader, and assignment.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The group's generation.
    pub generation: i32,
    /// This member's id.
    pub member_id: String,
    /// The leader's member id.
    pub leader_id: String,
    /// The protocol the coordinator chose.
    pub protocol: String,
    /// What the leader assigned to this member.
    pub assignment: Bytes,
}

#[derive(Debug, Default)]
struct State {
    member_id: String,
    generation: i32,
}

/// A member of a group with a protocol of its own.
pub struct GroupMembership {
    client: Arc<Client>,
    coordinator: Arc<Connection>,
    config: MembershipConfig,
    state: Arc<Mutex<State>>,
    rebalance: Arc<AtomicBool>,
    rebalance_notify: Arc<Notify>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl GroupMembership {
    /// A member of `config.group_id`, not yet joined. The coordinator gets a connection of its
    /// own: a JoinGroup that waits for a rebalance holds back nothing else.
    pub async fn new(client: &Arc<Client>, config: MembershipConfig) -> Result<GroupMembership> {
        if config.group_id.is_empty() {
            return Err(Error::InvalidArgument("group.id is empty".into()));
        }
        let coordinator = client.dedicated_group_connection(&config.group_id).await?;
        Ok(GroupMembership {
            client: client.clone(),
            coordinator,
            config,
            state: Arc::new(Mutex::new(State {
                member_id: String::new(),
                generation: -1,
            })),
            rebalance: Arc::new(AtomicBool::new(true)),
            rebalance_notify: Arc::new(Notify::new()),
            heartbeat: None,
        })
    }

    /// Joins (or rejoins) with `protocols` (name, metadata) in order of preference; when this
    /// member is the leader, `assign` gets the chosen protocol and every member's metadata
    /// and returns each member's assignment. Retries the rebalance's own races (a member
    /// joining meanwhile, a new member id) until the group is stable.
    pub async fn join<F>(&mut self, protocols: &[(String, Bytes)], mut assign: F) -> Result<Joined>
    where
        F: FnMut(&str, &[GroupMemberMetadata]) -> Result<Vec<(String, Bytes)>>,
    {
        if let Some(old) = self.heartbeat.take() {
            old.abort();
        }
        let timeout = self.config.rebalance_timeout + Duration::from_secs(5);
        // A coordinator that moved or a connection that broke is found again, for as long
        // as a rebalance may take.
        let deadline = tokio::time::Instant::now() + timeout;
        let mut reconnect = false;
        loop {
            if reconnect {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::Broker {
                        code: ResponseError::CoordinatorNotAvailable,
                        message: format!(
                            "no coordinator for group {} within {} ms",
                            self.config.group_id,
                            timeout.as_millis()
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                match self
                    .client
                    .dedicated_group_connection(&self.config.group_id)
                    .await
                {
                    Ok(connection) => {
                        self.coordinator = connection;
                        reconnect = false;
                    }
                    Err(err) => {
                        tracing::debug!(group = %self.config.group_id, %err, "finding the coordinator failed");
                        continue;
                    }
                }
            }
            let member_id = self.state.lock().member_id.clone();
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.config.group_id)))
                .with_session_timeout_ms(millis(self.config.session_timeout))
                .with_rebalance_timeout_ms(millis(self.config.rebalance_timeout))
                .with_member_id(str_bytes(&member_id))
                .with_protocol_type(str_bytes(&self.config.protocol_type))
                .with_protocols(
                    protocols
                        .iter()
                        .map(|(name, metadata)| {
                            JoinGroupRequestProtocol::default()
                                .with_name(str_bytes(name))
                                .with_metadata(metadata.clone())
                        })
                        .collect(),
                );
            let response = match self.coordinator.send_with_timeout(&request, timeout).await {
                Ok(response) => response,
                Err(err) => {
                    tracing::debug!(group = %self.config.group_id, %err, "JoinGroup failed; finding the coordinator again");
                    reconnect = true;
                    continue;
                }
            };
            match ResponseError::try_from_code(response.error_code) {
                Some(
                    ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::CoordinatorLoadInProgress,
                ) => {
                    reconnect = true;
                    continue;
                }
                Some(ResponseError::MemberIdRequired) => {
                    self.state.lock().member_id = response.member_id.to_string();
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.state.lock().member_id = String::new();
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
                let mut state = self.state.lock();
                state.member_id = response.member_id.to_string();
                state.generation = response.generation_id;
            }
            let protocol = response
                .protocol_name
                .as_deref()
                .unwrap_or_default()
                .to_string();
            let assignments = if response.leader == response.member_id {
                let members: Vec<GroupMemberMetadata> = response
                    .members
                    .iter()
                    .map(|m| GroupMemberMetadata {
                        member_id: m.member_id.to_string(),
                        metadata: m.metadata.clone(),
                    })
                    .collect();
                assign(&protocol, &members)?
                    .into_iter()
                    .map(|(member, assignment)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(&member))
                            .with_assignment(assignment)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let request = SyncGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.config.group_id)))
                .with_generation_id(response.generation_id)
                .with_member_id(response.member_id.clone())
                .with_protocol_type(Some(str_bytes(&self.config.protocol_type)))
                .with_protocol_name(response.protocol_name.clone())
                .with_assignments(assignments);
            let sync = match self.coordinator.send_with_timeout(&request, timeout).await {
                Ok(sync) => sync,
                Err(err) => {
                    tracing::debug!(group = %self.config.group_id, %err, "SyncGroup failed; finding the coordinator again");
                    reconnect = true;
                    continue;
                }
            };
            match ResponseError::try_from_code(sync.error_code) {
                None => {}
                Some(
                    ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::CoordinatorLoadInProgress,
                ) => {
                    reconnect = true;
                    continue;
                }
                Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => {
                    continue
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.state.lock().member_id = String::new();
                    continue;
                }
                Some(code) => {
                    return Err(Error::Broker {
                        code,
                        message: format!("SyncGroup for group {}", self.config.group_id),
                    })
                }
            }
            self.rebalance.store(false, Ordering::Release);
            self.start_heartbeats();
            return Ok(Joined {
                generation: response.generation_id,
                member_id: response.member_id.to_string(),
                leader_id: response.leader.to_string(),
                protocol,
                assignment: sync.assignment,
            });
        }
    }

    /// Whether the group is rebalancing (a heartbeat said so, or `request_rebalance`): the
    /// member should give up what it was assigned and `join` again.
    pub fn rebalance_needed(&self) -> bool {
        self.rebalance.load(Ordering::Acquire)
    }

    /// Resolves when a rebalance is needed.
    pub async fn wait_for_rebalance(&self) {
        loop {
            let notified = self.rebalance_notify.notified();
            if self.rebalance_needed() {
                return;
            }
            notified.await;
        }
    }

    /// Asks for a rebalance: the next `join` makes every member rejoin (a leader that sees
    /// the shared work change does this).
    pub fn request_rebalance(&self) {
        self.rebalance.store(true, Ordering::Release);
        self.rebalance_notify.notify_waiters();
    }

    /// The member id and generation.
    pub fn member(&self) -> (String, i32) {
        let state = self.state.lock();
        (state.member_id.clone(), state.generation)
    }

    /// Leaves the group, so that the others rebalance at once rather than after the session
    /// timeout.
    pub async fn leave(mut self) -> Result<()> {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let member_id = self.state.lock().member_id.clone();
        if member_id.is_empty() {
            return Ok(());
        }
        let version = self
            .coordinator
            .version_for(kafka_protocol::messages::ApiKey::LeaveGroup)?;
        let request =
            LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(&self.config.group_id)));
        let request = if version >= 3 {
            request.with_members(vec![
                MemberIdentity::default().with_member_id(str_bytes(&member_id))
            ])
        } else {
            request.with_member_id(str_bytes(&member_id))
        };
        let response = self.coordinator.send(&request).await?;
        if response.error_code != 0 {
            tracing::debug!(group = %self.config.group_id, code = response.error_code, "LeaveGroup refused");
        }
        Ok(())
    }

    fn start_heartbeats(&mut self) {
        let coordinator = self.coordinator.clone();
        let state = self.state.clone();
        let rebalance = self.rebalance.clone();
        let notify = self.rebalance_notify.clone();
        let group_id = self.config.group_id.clone();
        let interval = self.config.heartbeat_interval;
        let session_timeout = self.config.session_timeout;
        self.heartbeat = Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_ok = tokio::time::Instant::now();
            loop {
                ticker.tick().await;
                let (member_id, generation) = {
                    let s = state.lock();
                    (s.member_id.clone(), s.generation)
                };
                let request = HeartbeatRequest::default()
                    .with_group_id(GroupId(str_bytes(&group_id)))
                    .with_generation_id(generation)
                    .with_member_id(str_bytes(&member_id));
                let outcome = coordinator.send(&request).await;
                match outcome {
                    Ok(response) if response.error_code == 0 => {
                        last_ok = tokio::time::Instant::now();
                        continue;
                    }
                    Ok(response) => {
                        tracing::debug!(group = %group_id, code = response.error_code, "heartbeat asks to rejoin");
                        if response.error_code == ResponseError::UnknownMemberId.code() {
                            state.lock().member_id = String::new();
                        }
                    }
                    // A hiccup is retried while the session may still be alive; past that the
                    // group has moved on without this member, and it rejoins.
                    Err(err) if last_ok.elapsed() < session_timeout => {
                        tracing::debug!(group = %group_id, %err, "heartbeat failed; retrying");
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(group = %group_id, %err, "heartbeats failed for a session timeout; rejoining")
                    }
                }
                rebalance.store(true, Ordering::Release);
                notify.notify_waiters();
                return;
            }
        }));
    }
}

impl Drop for GroupMembership {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
