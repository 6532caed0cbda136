//! The client side of transactions: producer ids (InitProducerId), the transaction
//! coordinator's APIs (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn), TxnOffsetCommit to a
//! group's coordinator, and the admin calls `sluice transactions` makes (ListTransactions,
//! DescribeTransactions, DescribeProducers, WriteTxnMarkers).
//!
//! Each call retries what Kafka's clients retry while the coordinator settles
//! (COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR,
//! CONCURRENT_TRANSACTIONS), for up to `request.timeout.ms`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Client, Connection};
use crate::error::{Error, Result};
use crate::model::TopicPartition;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A consumer group member's identity, as a transactional offset commit carries it (Kafka's
/// `ConsumerGroupMetadata`, KIP-447): the coordinator checks it like a plain commit's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The member's generation (-1: none).
    pub generation_id: i32,
    /// The member id ("" for none).
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// A group without a member (offsets committed as a standalone consumer would).
    pub fn standalone(group_id: &str) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: group_id.to_string(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// A transaction as ListTransactions and DescribeTransactions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Kafka's state name (Empty, Ongoing, CompleteCommit, ...).
    pub state: String,
}

/// DescribeTransactions' answer for one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The id, its producer and state.
    pub listing: TransactionListing,
    /// The producer's epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// When the open transaction began (ms; -1 when none).
    pub start_time_ms: i64,
    /// Its partitions.
    pub partitions: Vec<TopicPartition>,
}

/// A producer as DescribeProducers shows it for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    /// Producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// The coordinator epoch of its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// Its last sequence number.
    pub last_sequence: i32,
    /// The timestamp of its last batch.
    pub last_timestamp: i64,
    /// The first offset of its open transaction, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

/// Errors worth another attempt while a coordinator settles.
fn coordinator_busy(err: &Error) -> bool {
    matches!(
        err,
        Error::Broker {
            code: ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
                | ResponseError::NotCoordinator
                | ResponseError::ConcurrentTransactions,
            ..
        }
    )
}

impl Client {
    /// Runs `attempt` until it succeeds or fails otherwise than with a busy coordinator,
    /// waiting 20 ms, then up to 100 ms, between attempts, for at most `request.timeout.ms`.
    async fn until_coordinator_ready<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.options.request_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            match attempt().await {
                Err(err) if coordinator_busy(&err) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// The coordinator of a transactional id (FindCoordinator with key type 1).
    pub async fn transaction_coordinator(&self, transactional_id: &str) -> Result<Arc<Connection>> {
        self.until_coordinator_ready(|| self.find_coordinator(1, transactional_id))
            .await
    }

    /// A producer id and epoch: a new one for an idempotent producer (`transactional_id`
    /// None), or the transactional id's, with its epoch bumped (fencing older instances).
    pub async fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
        transaction_timeout: Duration,
    ) -> Result<(i64, i16)> {
        self.until_coordinator_ready(|| async {
            let connection = match transactional_id {
                Some(id) => self.transaction_coordinator(id).await?,
                None => self.any_connection().await?,
            };
            let request = InitProducerIdRequest::default()
                .with_transactional_id(transactional_id.map(|id| TransactionalId(str_bytes(id))))
                .with_transaction_timeout_ms(
                    transaction_timeout.as_millis().min(i32::MAX as u128) as i32
                )
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let response = connection.send(&request).await?;
            match Error::from_code(response.error_code, None) {
                Some(err) => Err(err),
                None => Ok((response.producer_id.0, response.producer_epoch)),
            }
        })
        .await
    }

    /// AddPartitionsToTxn: the partitions join the producer's open transaction.
    pub async fn add_partitions_to_txn(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for tp in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(tp.partition),
                None => topics.push(
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(str_bytes(&tp.topic)))
                        .with_partitions(vec![tp.partition]),
                ),
            }
        }
        self.until_coordinator_ready(|| async {
            let connection = self.transaction_coordinator(transactional_id).await?;
            let request = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_v3_and_below_producer_id(ProducerId(producer.0))
                .with_v3_and_below_producer_epoch(producer.1)
                .with_v3_and_below_topics(topics.clone());
            let version = connection.version_for(ApiKey::AddPartitionsToTxn)?.min(3);
            let response = connection.send_versioned(&request, version).await?;
            if let Some(err) = Error::from_code(response.error_code, None) {
                return Err(err);
            }
            // The first real error names the failure; OPERATION_NOT_ATTEMPTED only follows one.
            let mut first = None;
            for topic in response.results_by_topic_v3_and_below {
                for p in topic.results_by_partition {
                    if let Some(err) = Error::from_code(p.partition_error_code, None) {
                        let not_attempted = matches!(
                            err,
                            Error::Broker {
                                code: ResponseError::OperationNotAttempted,
                                ..
                            }
                        );
                        if first.is_none() || !not_attempted {
                            first = Some(Error::Broker {
                                code: err.response_error(),
                                message: format!("{}-{}", topic.name.0, p.partition_index),
                            });
                        }
                        if !not_attempted {
                            break;
                        }
                    }
                }
            }
            first.map_or(Ok(()), Err)
        })
        .await
    }

    /// AddOffsetsToTxn, then TxnOffsetCommit to the group's coordinator: the offsets are
    /// committed with the transaction.
    pub async fn send_offsets_to_txn(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        offsets: &[(TopicPartition, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.until_coordinator_ready(|| async {
            let connection = self.transaction_coordinator(transactional_id).await?;
            let request = AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_group_id(GroupId(str_bytes(&group.group_id)));
            let response = connection.send(&request).await?;
            Error::from_code(response.error_code, None).map_or(Ok(()), Err)
        })
        .await?;
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (tp, offset) in offsets {
            let entry = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1);
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(&tp.topic)))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        self.until_coordinator_ready(|| async {
            let connection = self.group_coordinator(&group.group_id).await?;
            let request = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_group_id(GroupId(str_bytes(&group.group_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_generation_id(group.generation_id)
                .with_member_id(str_bytes(&group.member_id))
                .with_group_instance_id(group.group_instance_id.as_deref().map(str_bytes))
                .with_topics(topics.clone());
            let response = connection.send(&request).await?;
            for topic in response.topics {
                for p in topic.partitions {
                    if let Some(err) = Error::from_code(p.error_code, None) {
                        return Err(err);
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// EndTxn: commits or aborts the producer's open transaction.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<()> {
        self.until_coordinator_ready(|| async {
            let connection = self.transaction_coordinator(transactional_id).await?;
            let request = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(commit);
            let version = connection.version_for(ApiKey::EndTxn)?.min(4);
            let response = connection.send_versioned(&request, version).await?;
            Error::from_code(response.error_code, None).map_or(Ok(()), Err)
        })
        .await
    }

    /// Every transactional id the cluster knows, with the node that coordinates it, sorted by
    /// id: ListTransactions to every broker (each lists the ids it coordinates); `states`
    /// filters by state name when not empty.
    pub async fn list_transactions(
        &self,
        states: &[String],
    ) -> Result<Vec<(i32, TransactionListing)>> {
        let brokers: Vec<i32> = self
            .metadata(Some(&[]), false)
            .await?
            .brokers
            .iter()
            .map(|b| b.node_id.0)
            .collect();
        let mut listed = Vec::new();
        for node in brokers {
            let connection = self.connection_for_node(node).await?;
            let request = ListTransactionsRequest::default()
                .with_state_filters(states.iter().map(|s| str_bytes(s)).collect())
                .with_duration_filter(-1);
            let response = connection.send(&request).await?;
            if let Some(err) = Error::from_code(response.error_code, None) {
                return Err(err);
            }
            listed.extend(response.transaction_states.into_iter().map(|t| {
                (
                    node,
                    TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                    },
                )
            }));
        }
        listed.sort_by(|a, b| a.1.transactional_id.cmp(&b.1.transactional_id));
        Ok(listed)
    }

    /// The node id of a transactional id's coordinator.
    pub async fn transaction_coordinator_id(&self, transactional_id: &str) -> Result<i32> {
        self.until_coordinator_ready(|| self.find_coordinator_node(1, transactional_id))
            .await
    }

    /// DescribeTransactions for one id (TRANSACTIONAL_ID_NOT_FOUND if unknown).
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription> {
        let connection = self.transaction_coordinator(transactional_id).await?;
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(str_bytes(transactional_id))]);
        let response = connection.send(&request).await?;
        let state = response
            .transaction_states
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol("DescribeTransactions answered nothing".into()))?;
        if let Some(err) = Error::from_code(state.error_code, None) {
            return Err(err);
        }
        let partitions = state
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t.topic.0.as_str(), *p))
            })
            .collect();
        Ok(TransactionDescription {
            listing: TransactionListing {
                transactional_id: state.transactional_id.0.to_string(),
                producer_id: state.producer_id.0,
                state: state.transaction_state.to_string(),
            },
            producer_epoch: state.producer_epoch,
            timeout_ms: state.transaction_timeout_ms,
            start_time_ms: state.transaction_start_time_ms,
            partitions,
        })
    }

    /// DescribeProducers for one partition, sent to its leader.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>> {
        use describe_producers_request::TopicRequest;
        let connection = self.leader_connection(topic, partition).await?;
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partition_indexes(vec![partition])]);
        let response = connection.send(&request).await?;
        let data = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| Error::Protocol("DescribeProducers answered nothing".into()))?;
        if let Some(err) = Error::from_code(data.error_code, data.error_message.as_deref()) {
            return Err(err);
        }
        Ok(data
            .active_producers
            .into_iter()
            .map(|p| ProducerDescription {
                producer_id: p.producer_id.0,
                producer_epoch: p.producer_epoch,
                coordinator_epoch: p.coordinator_epoch,
                last_sequence: p.last_sequence,
                last_timestamp: p.last_timestamp,
                current_txn_start_offset: (p.current_txn_start_offset >= 0)
                    .then_some(p.current_txn_start_offset),
            })
            .collect())
    }

    /// WriteTxnMarkers: an ABORT (or COMMIT) marker for a producer's transaction in a
    /// partition, written by its leader (what `kafka-transactions abort` does for a hanging
    /// transaction).
    pub async fn write_txn_marker(
        &self,
        tp: &TopicPartition,
        producer: (i64, i16),
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<()> {
        use write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
        let connection = self.leader_connection(&tp.topic, tp.partition).await?;
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_transaction_result(commit)
                .with_coordinator_epoch(coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(str_bytes(&tp.topic)))
                    .with_partition_indexes(vec![tp.partition])])]);
        let response = connection.send(&request).await?;
        for marker in response.markers {
            for topic in marker.topics {
                for p in topic.partitions {
                    if let Some(err) = Error::from_code(p.error_code, None) {
                        return Err(err);
                    }
                }
            }
        }
        Ok(())
    }

    /// The last stable offset of each partition (ListOffsets latest under read_committed).
    pub async fn last_stable_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let mut out = BTreeMap::new();
        for tp in partitions {
            out.insert(
                tp.clone(),
                self.list_offset_isolated(&tp.topic, tp.partition, -1, 1)
                    .await?,
            );
        }
        Ok(out)
    }
}
