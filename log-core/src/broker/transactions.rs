//! The transaction coordinator (KIP-98) and its APIs: InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, WriteTxnMarkers,
//! DescribeTransactions and ListTransactions.
//!
//! Each transactional id's state ([`TxnMetadata`]) is written to the compacted
//! `__transaction_state` topic at every change and replayed when the broker opens; a
//! transaction left in PrepareCommit or PrepareAbort by a crash has its markers written again
//! then. Ending a transaction writes a COMMIT or ABORT control batch to every partition it
//! touched (this node leads them all, so the markers are appended in-process, not sent).
//!
//! Locks: a transactional id's mutex is held for the whole of a request on it (state change,
//! its record, its markers), then partition locks inside. The produce path never takes an id's
//! mutex: it checks a transactional batch against `verified`, a map of each open
//! transaction's partitions under its own short lock, so the lock order has no cycle.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::{ApiError, Broker};
use crate::error::Error;
use crate::group::coordinator::MemberRef;
use crate::group::store::{self as group_store, StoredOffset, OFFSETS_TOPIC};
use crate::model::TopicPartition;
use crate::storage::now_ms;
use crate::storage::producer_state::TxnMarker;
use crate::txn::state::{EndPlan, InitPlan, MarkerPlan, TxnMetadata, TxnState};
use crate::txn::store::{self, TRANSACTION_STATE_TOPIC};

/// The coordinator epoch markers carry: one node leads `__transaction_state` for good.
const COORDINATOR_EPOCH: i32 = 0;

/// The transactional ids this node coordinates.
#[derive(Default)]
pub struct TransactionCoordinator {
    txns: Mutex<HashMap<String, Arc<Mutex<TxnMetadata>>>>,
    /// Producer id → (epoch, partitions) of each open transaction, for the produce path.
    verified: Mutex<HashMap<i64, (i16, HashSet<TopicPartition>)>>,
}

impl TransactionCoordinator {
    fn get(&self, id: &str) -> Option<Arc<Mutex<TxnMetadata>>> {
        self.txns.lock().get(id).cloned()
    }

    /// Whether a transactional batch of this producer may be written to `tp`: its transaction
    /// is open and added the partition (KIP-890's verification, done in-process).
    pub fn verify(&self, producer_id: i64, epoch: i16, tp: &TopicPartition) -> bool {
        self.verified
            .lock()
            .get(&producer_id)
            .is_some_and(|(e, partitions)| *e == epoch && partitions.contains(tp))
    }

    /// Keeps `verified` in step with a transaction's state.
    fn track(&self, meta: &TxnMetadata) {
        let mut verified = self.verified.lock();
        if meta.state == TxnState::Ongoing {
            verified.insert(
                meta.producer_id,
                (
                    meta.producer_epoch,
                    meta.partitions.iter().cloned().collect(),
                ),
            );
        } else {
            verified.remove(&meta.producer_id);
        }
    }

    /// Every id's metadata, for listing.
    fn snapshot(&self) -> Vec<TxnMetadata> {
        let entries: Vec<Arc<Mutex<TxnMetadata>>> = self.txns.lock().values().cloned().collect();
        entries.iter().map(|m| m.lock().clone()).collect()
    }
}

/// Versions 0 and 1 of AddPartitionsToTxn and EndTxn predate PRODUCER_FENCED (KIP-588): a
/// fenced producer gets INVALID_PRODUCER_EPOCH there, as Kafka answers.
fn fenced_for_version(code: ResponseError, version: i16) -> ResponseError {
    if code == ResponseError::ProducerFenced && version <= 1 {
        ResponseError::InvalidProducerEpoch
    } else {
        code
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl Broker {
    /// Creates `__transaction_state` (compacted, `transaction.state.log.num.partitions`
    /// partitions) if it does not exist yet.
    pub(crate) fn ensure_transaction_state_topic(&self) -> Result<(), ApiError> {
        if self.topic_meta(TRANSACTION_STATE_TOPIC).is_some() {
            return Ok(());
        }
        let configs: BTreeMap<String, String> = [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), "104857600".to_string()),
        ]
        .into();
        match self.create_topic(
            TRANSACTION_STATE_TOPIC,
            self.config.transaction_state_log_num_partitions,
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

    /// Writes a transactional id's state to its `__transaction_state` partition (None: a
    /// tombstone for an expired id).
    fn write_txn_state(&self, id: &str, meta: Option<&TxnMetadata>) -> Result<(), ApiError> {
        self.ensure_transaction_state_topic()?;
        let partitions = self
            .topic_meta(TRANSACTION_STATE_TOPIC)
            .map_or(1, |m| m.partitions);
        let partition = store::partition_for_transactional_id(id, partitions);
        self.append_internal(
            TRANSACTION_STATE_TOPIC,
            partition,
            vec![(store::key(id), meta.map(store::value))],
            None,
        )
    }

    /// Changes an id's state and writes it; on a failed write the old state is put back, so
    /// memory never runs ahead of the log.
    fn persist(&self, meta: &mut TxnMetadata, before: TxnMetadata) -> Result<(), ApiError> {
        if let Err(err) = self.write_txn_state(&meta.transactional_id, Some(meta)) {
            tracing::warn!(transactional_id = %meta.transactional_id, err = %err.message,
                "could not write the transaction state");
            *meta = before;
            return Err(ApiError::new(
                ResponseError::CoordinatorNotAvailable,
                err.message,
            ));
        }
        self.transactions.track(meta);
        Ok(())
    }

    /// Writes a transaction's markers to each of its partitions; a `__consumer_offsets`
    /// partition also makes the transaction's offset commits visible (or drops them).
    /// Partitions deleted since they were added are skipped, as Kafka skips them.
    fn write_markers(&self, plan: &MarkerPlan) -> Result<(), ApiError> {
        let marker = TxnMarker {
            producer_id: plan.producer_id,
            producer_epoch: plan.producer_epoch,
            commit: plan.commit,
            coordinator_epoch: COORDINATOR_EPOCH,
        };
        let mut failure = None;
        for tp in &plan.partitions {
            match self.write_marker(&marker, tp) {
                Ok(()) | Err(Error::UnknownPartition(_)) => {}
                Err(err) => {
                    tracing::warn!(partition = %tp, %err, "could not write a transaction marker");
                    failure.get_or_insert(err);
                }
            }
        }
        self.appended.notify_waiters();
        match failure {
            None => Ok(()),
            Some(err) => Err(err.into()),
        }
    }

    fn write_marker(&self, marker: &TxnMarker, tp: &TopicPartition) -> Result<(), Error> {
        let log = self
            .logs
            .get(tp)
            .ok_or_else(|| Error::UnknownPartition(tp.to_string()))?;
        {
            let mut log = log.lock();
            log.append_control_marker(marker, 0)?;
            let end = log.log_end_offset();
            log.set_high_watermark(end);
        }
        if &*tp.topic == OFFSETS_TOPIC {
            let partitions = self.topic_meta(OFFSETS_TOPIC).map_or(1, |m| m.partitions);
            self.groups.complete_txn_offsets(
                marker.producer_id,
                marker.commit,
                tp.partition,
                partitions,
            );
        }
        Ok(())
    }

    /// Persists a Prepare state, writes its markers and completes it.
    fn run_markers(
        &self,
        meta: &mut TxnMetadata,
        before: TxnMetadata,
        plan: &MarkerPlan,
    ) -> Result<(), ApiError> {
        self.persist(meta, before)?;
        // On a failed marker the id stays in its Prepare state (persisted), and the
        // maintenance task writes the markers again.
        self.write_markers(plan)?;
        let prepared = meta.clone();
        meta.complete(now_ms());
        self.persist(meta, prepared)
    }

    /// Reads `__transaction_state` into the coordinator (at startup), then finishes the
    /// transactions a crash left between prepare and complete.
    pub(crate) fn load_transactions(&self) -> crate::error::Result<usize> {
        let mut latest: HashMap<String, Option<TxnMetadata>> = HashMap::new();
        let n_records = self.replay_internal_topic(TRANSACTION_STATE_TOPIC, |_, record| {
            if let Some(id) = record.key.and_then(store::decode_key) {
                let value = record.value.and_then(|v| store::decode_value(&id, v));
                latest.insert(id, value);
            }
        })?;
        let mut txns = self.transactions.txns.lock();
        for (id, meta) in latest {
            if let Some(meta) = meta {
                self.transactions.track(&meta);
                txns.insert(id, Arc::new(Mutex::new(meta)));
            }
        }
        drop(txns);
        self.complete_pending_transactions();
        Ok(n_records)
    }

    /// Writes the markers of every transaction in PrepareCommit or PrepareAbort.
    fn complete_pending_transactions(&self) {
        let entries: Vec<Arc<Mutex<TxnMetadata>>> =
            self.transactions.txns.lock().values().cloned().collect();
        for entry in entries {
            let mut meta = entry.lock();
            let Some(plan) = meta.pending_markers() else {
                continue;
            };
            if self.write_markers(&plan).is_ok() {
                let before = meta.clone();
                meta.complete(now_ms());
                let _ = self.persist(&mut meta, before);
                tracing::info!(transactional_id = %meta.transactional_id, commit = plan.commit,
                    "completed a transaction left prepared");
            }
        }
    }

    /// Aborts transactions open past their `transaction.timeout.ms` (fencing their producers
    /// with a new epoch), finishes any left prepared, and forgets ids idle past
    /// `transactional.id.expiration.ms` when `expire` is set. Returns how many were aborted.
    pub fn abort_timed_out_transactions(&self, expire: bool) -> usize {
        let now = now_ms();
        let entries: Vec<Arc<Mutex<TxnMetadata>>> =
            self.transactions.txns.lock().values().cloned().collect();
        let mut aborted = 0;
        for entry in entries {
            let mut meta = entry.lock();
            let before = meta.clone();
            if let Some(plan) = meta.abort_if_timed_out(now) {
                tracing::info!(transactional_id = %meta.transactional_id,
                    producer_id = plan.producer_id, epoch = plan.producer_epoch,
                    "aborting a transaction open past its timeout");
                if self.run_markers(&mut meta, before, &plan).is_ok() {
                    aborted += 1;
                }
            } else if let Some(plan) = meta.pending_markers() {
                if self.write_markers(&plan).is_ok() {
                    meta.complete(now);
                    let _ = self.persist(&mut meta, before);
                }
            } else if expire && meta.expired(now, self.config.transactional_id_expiration_ms as i64)
            {
                let id = meta.transactional_id.clone();
                if self.write_txn_state(&id, None).is_ok() {
                    meta.state = TxnState::Dead;
                    self.transactions.track(&meta);
                    drop(meta);
                    self.transactions.txns.lock().remove(&id);
                    tracing::info!(transactional_id = %id, "expired an idle transactional id");
                }
            }
        }
        aborted
    }

    /// Runs [`Broker::abort_timed_out_transactions`] every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` on the current tokio
    /// runtime (expiring idle ids every
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`), until the broker is
    /// dropped.
    pub fn spawn_transaction_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let broker = Arc::downgrade(self);
        let every = std::time::Duration::from_millis(
            self.config
                .transaction_abort_timed_out_transaction_cleanup_interval_ms,
        );
        let expire_every = std::time::Duration::from_millis(
            self.config
                .transaction_remove_expired_transaction_cleanup_interval_ms,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            let mut next_expiry = tokio::time::Instant::now() + expire_every;
            loop {
                tick.tick().await;
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                let expire = tokio::time::Instant::now() >= next_expiry;
                if expire {
                    next_expiry = tokio::time::Instant::now() + expire_every;
                }
                // Marker writes touch files: off the async workers.
                let _ = tokio::task::spawn_blocking(move || {
                    broker.abort_timed_out_transactions(expire)
                })
                .await;
            }
        })
    }
}

/// InitProducerId with a transactional id: a new id gets a producer id at epoch 0; a known one
/// gets its epoch bumped (fencing older instances), after its open transaction, if any, is
/// aborted.
pub fn init_transactional_producer(
    broker: &Broker,
    request: &InitProducerIdRequest,
    version: i16,
    id: &str,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let timeout = request.transaction_timeout_ms;
    if timeout <= 0 || i64::from(timeout) > broker.config.transaction_max_timeout_ms as i64 {
        return response.with_error_code(ResponseError::InvalidTransactionTimeout.code());
    }
    if let Err(err) = broker.ensure_transaction_state_topic() {
        return response.with_error_code(err.code.code());
    }
    let entry = {
        let mut txns = broker.transactions.txns.lock();
        match txns.get(id) {
            Some(entry) => Some(entry.clone()),
            None => {
                let producer_id = match broker.producer_ids.next_id() {
                    Ok(pid) => pid,
                    Err(err) => {
                        tracing::error!(%err, "could not allocate a producer id");
                        return response.with_error_code(ResponseError::KafkaStorageError.code());
                    }
                };
                let meta = TxnMetadata::new(id, producer_id, timeout, now_ms());
                let entry = Arc::new(Mutex::new(meta));
                txns.insert(id.to_string(), entry.clone());
                drop(txns);
                let mut meta = entry.lock();
                let before = meta.clone();
                if let Err(err) = broker.persist(&mut meta, before) {
                    broker.transactions.txns.lock().remove(id);
                    return response.with_error_code(err.code.code());
                }
                tracing::debug!(
                    transactional_id = id,
                    producer_id,
                    "new transactional producer"
                );
                return response
                    .with_producer_id(ProducerId(meta.producer_id))
                    .with_producer_epoch(meta.producer_epoch);
            }
        }
    };
    let Some(entry) = entry else {
        return response.with_error_code(ResponseError::CoordinatorNotAvailable.code());
    };
    let mut meta = entry.lock();
    let expected = (version >= 3 && request.producer_id.0 >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    // At most twice: an open transaction is aborted first under a new epoch, then the epoch is
    // bumped (Kafka's +2, after its CONCURRENT_TRANSACTIONS and the client's retry). A caller
    // naming its current epoch (KIP-360) gets the abort's epoch, +1, as in Kafka.
    for _ in 0..2 {
        let before = meta.clone();
        let plan = meta.init(expected, timeout, now_ms(), || {
            broker
                .producer_ids
                .next_id()
                .map_err(|_| ResponseError::KafkaStorageError)
        });
        match plan {
            Ok(InitPlan::Ready) => {
                return match broker.persist(&mut meta, before) {
                    Ok(()) => response
                        .with_producer_id(ProducerId(meta.producer_id))
                        .with_producer_epoch(meta.producer_epoch),
                    Err(err) => response.with_error_code(err.code.code()),
                };
            }
            Ok(InitPlan::AbortFirst(plan)) => {
                if let Err(err) = broker.run_markers(&mut meta, before, &plan) {
                    return response.with_error_code(err.code.code());
                }
                if expected.is_some() {
                    return response
                        .with_producer_id(ProducerId(meta.producer_id))
                        .with_producer_epoch(meta.producer_epoch);
                }
            }
            Err(code) => return response.with_error_code(code.code()),
        }
    }
    response.with_error_code(ResponseError::ConcurrentTransactions.code())
}

/// Checks that the partitions exist; Kafka answers UNKNOWN_TOPIC_OR_PARTITION for those that
/// do not and OPERATION_NOT_ATTEMPTED for the rest.
fn unknown_partitions(broker: &Broker, partitions: &[TopicPartition]) -> bool {
    partitions.iter().any(|tp| broker.logs.get(tp).is_none())
}

fn add_partitions(
    broker: &Broker,
    id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[TopicPartition],
    verify_only: bool,
) -> Result<(), ResponseError> {
    let entry = broker
        .transactions
        .get(id)
        .ok_or(ResponseError::InvalidProducerIdMapping)?;
    let mut meta = entry.lock();
    if verify_only {
        meta.check_producer(producer_id, epoch)?;
        let added = meta.state == TxnState::Ongoing
            && partitions.iter().all(|p| meta.partitions.contains(p));
        return if added {
            Ok(())
        } else {
            Err(ResponseError::InvalidTxnState)
        };
    }
    let before = meta.clone();
    if meta.add_partitions(producer_id, epoch, partitions, now_ms())? {
        broker.persist(&mut meta, before).map_err(|err| err.code)?;
    }
    Ok(())
}

fn partition_results(
    topics: &[(TopicName, Vec<i32>)],
    code_of: impl Fn(&TopicName, i32) -> i16,
) -> Vec<add_partitions_to_txn_response::AddPartitionsToTxnTopicResult> {
    use add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };
    topics
        .iter()
        .map(|(name, partitions)| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(name.clone())
                .with_results_by_partition(
                    partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code_of(name, *p))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// The results of one transaction's AddPartitionsToTxn.
fn add_partitions_results(
    broker: &Broker,
    version: i16,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topics: Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic>,
    verify_only: bool,
) -> Vec<add_partitions_to_txn_response::AddPartitionsToTxnTopicResult> {
    let topics: Vec<(TopicName, Vec<i32>)> =
        topics.into_iter().map(|t| (t.name, t.partitions)).collect();
    let partitions: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|(name, ps)| ps.iter().map(|p| TopicPartition::new(name, *p)))
        .collect();
    if unknown_partitions(broker, &partitions) {
        return partition_results(&topics, |name, p| {
            if broker.logs.get(&TopicPartition::new(name, p)).is_none() {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::OperationNotAttempted.code()
            }
        });
    }
    let code = match add_partitions(broker, id, producer_id, epoch, &partitions, verify_only) {
        Ok(()) => 0,
        Err(code) => fenced_for_version(code, version).code(),
    };
    partition_results(&topics, |_, _| code)
}

/// AddPartitionsToTxn: v0–v3 from producers (one transaction), v4+ batched.
pub fn add_partitions_to_txn(
    broker: &Broker,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    use add_partitions_to_txn_response::AddPartitionsToTxnResult;
    if version <= 3 {
        let results = add_partitions_results(
            broker,
            version,
            &request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            request.v3_and_below_topics,
            false,
        );
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let results = request
        .transactions
        .into_iter()
        .map(|txn| {
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(add_partitions_results(
                    broker,
                    version,
                    &txn.transactional_id,
                    txn.producer_id.0,
                    txn.producer_epoch,
                    txn.topics,
                    txn.verify_only,
                ))
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
pub fn add_offsets_to_txn(
    broker: &Broker,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let result = broker
        .ensure_offsets_topic()
        .map_err(|e| e.code)
        .and_then(|()| {
            let partition = broker.offsets_partition(&request.group_id);
            add_partitions(
                broker,
                &request.transactional_id,
                request.producer_id.0,
                request.producer_epoch,
                &[TopicPartition::new(OFFSETS_TOPIC, partition)],
                false,
            )
        });
    AddOffsetsToTxnResponse::default().with_error_code(result.err().map_or(0, |c| c.code()))
}

/// EndTxn: commit or abort, markers written before the answer.
pub fn end_txn(broker: &Broker, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let result = (|| {
        let entry = broker
            .transactions
            .get(&request.transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let mut meta = entry.lock();
        let before = meta.clone();
        match meta.end(
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
            now_ms(),
        )? {
            EndPlan::AlreadyDone => Ok(()),
            EndPlan::Markers(plan) => broker
                .run_markers(&mut meta, before, &plan)
                .map_err(|e| e.code),
        }
    })();
    EndTxnResponse::default().with_error_code(
        result
            .err()
            .map_or(0, |c| fenced_for_version(c, version).code()),
    )
}

/// TxnOffsetCommit: offsets written to `__consumer_offsets` inside the producer's transaction,
/// visible to the group only once it commits.
pub fn txn_offset_commit(
    broker: &Broker,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    use txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    let group_id = request.group_id.to_string();
    let producer_id = request.producer_id.0;
    let epoch = request.producer_epoch;
    let check = (|| {
        broker.ensure_offsets_topic().map_err(|e| e.code)?;
        let entry = broker
            .transactions
            .get(&request.transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let meta = entry.lock();
        meta.check_producer(producer_id, epoch)?;
        let offsets_tp = TopicPartition::new(OFFSETS_TOPIC, broker.offsets_partition(&group_id));
        // Kafka's verification: v4 answers TRANSACTION_ABORTABLE, older ones INVALID_TXN_STATE.
        if meta.state != TxnState::Ongoing || !meta.partitions.contains(&offsets_tp) {
            return Err(if version >= 4 {
                ResponseError::TransactionAbortable
            } else {
                ResponseError::InvalidTxnState
            });
        }
        // KIP-447: a consumer group member's commit is checked like OffsetCommit's.
        if version >= 3 && request.generation_id >= 0 {
            if let Some(err) = broker.groups.check_commit(
                &group_id,
                request.generation_id,
                MemberRef {
                    id: &request.member_id,
                    instance_id: request.group_instance_id.as_deref(),
                },
            ) {
                return Err(err);
            }
        }
        Ok(())
    })();
    let timestamp = now_ms();
    let mut records: Vec<(Bytes, Option<Bytes>)> = Vec::new();
    let mut staged = Vec::new();
    let mut unknown: HashSet<(String, i32)> = HashSet::new();
    if check.is_ok() {
        for topic in &request.topics {
            let meta = broker.topic_meta(&topic.name);
            for p in &topic.partitions {
                if meta
                    .as_ref()
                    .is_none_or(|m| p.partition_index < 0 || p.partition_index >= m.partitions)
                {
                    unknown.insert((topic.name.to_string(), p.partition_index));
                    continue;
                }
                let offset = StoredOffset::new(
                    p.committed_offset,
                    if version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    p.committed_metadata.as_deref(),
                    timestamp,
                );
                records.push((
                    group_store::offset_key(&group_id, &topic.name, p.partition_index),
                    Some(group_store::offset_value(&offset)),
                ));
                staged.push((TopicPartition::new(&topic.name, p.partition_index), offset));
            }
        }
    }
    let written = check.and_then(|()| {
        if records.is_empty() {
            return Ok(());
        }
        let partition = broker.offsets_partition(&group_id);
        broker
            .append_internal(
                OFFSETS_TOPIC,
                partition,
                records,
                Some((producer_id, epoch)),
            )
            .map_err(|e| e.code)?;
        broker
            .groups
            .stage_txn_offsets(producer_id, &group_id, staged);
        Ok(())
    });
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let code =
                                if unknown.contains(&(topic.name.to_string(), p.partition_index)) {
                                    ResponseError::UnknownTopicOrPartition.code()
                                } else {
                                    written.err().map_or(0, |c| c.code())
                                };
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// WriteTxnMarkers: markers written on request (what `kafka-transactions abort` sends for a
/// hanging transaction), each checked against the partition's producer state.
pub fn write_txn_markers(
    broker: &Broker,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    use write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };
    let markers = request
        .markers
        .into_iter()
        .map(|m| {
            let marker = TxnMarker {
                producer_id: m.producer_id.0,
                producer_epoch: m.producer_epoch,
                commit: m.transaction_result,
                coordinator_epoch: m.coordinator_epoch,
            };
            let topics = m
                .topics
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let tp = TopicPartition::new(&t.name, *p);
                            let code = match broker.write_marker(&marker, &tp) {
                                Ok(()) => 0,
                                Err(err) => err.response_error().code(),
                            };
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(code)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    broker.appended.notify_waiters();
    WriteTxnMarkersResponse::default().with_markers(markers)
}

/// DescribeTransactions: each id's state, producer, timeout, start time and partitions.
pub fn describe_transactions(
    broker: &Broker,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    use describe_transactions_response::{TopicData, TransactionState};
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let base = TransactionState::default()
                .with_transactional_id(id.clone())
                .with_transaction_state(str_bytes(""))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            let Some(entry) = broker.transactions.get(&id) else {
                return base.with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let meta = entry.lock().clone();
            let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for tp in &meta.partitions {
                by_topic
                    .entry(tp.topic.to_string())
                    .or_default()
                    .push(tp.partition);
            }
            base.with_transaction_state(str_bytes(meta.state.name()))
                .with_transaction_timeout_ms(meta.timeout_ms)
                .with_transaction_start_time_ms(meta.start_ms)
                .with_producer_id(ProducerId(meta.producer_id))
                .with_producer_epoch(meta.producer_epoch)
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(topic, partitions)| {
                            TopicData::default()
                                .with_topic(TopicName(str_bytes(&topic)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// ListTransactions: every id, filtered by state, producer id, how long it has run (v1) and
/// an id pattern (v2, a regular expression).
pub fn list_transactions(
    broker: &Broker,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    use list_transactions_response::TransactionState;
    const STATES: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let pattern = match request.transactional_id_pattern.as_deref() {
        Some(p) if !p.is_empty() => match regex::Regex::new(p) {
            Ok(re) => Some(re),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
        _ => None,
    };
    let now = now_ms();
    let mut listed: Vec<TxnMetadata> = broker
        .transactions
        .snapshot()
        .into_iter()
        .filter(|m| {
            request.state_filters.is_empty()
                || request
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == m.state.name())
        })
        .filter(|m| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .iter()
                    .any(|p| p.0 == m.producer_id)
        })
        .filter(|m| {
            request.duration_filter < 0
                || (m.state == TxnState::Ongoing
                    && now.saturating_sub(m.start_ms) >= request.duration_filter)
        })
        .filter(|m| {
            pattern
                .as_ref()
                .is_none_or(|re| re.is_match(&m.transactional_id))
        })
        .collect();
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    let states = listed
        .into_iter()
        .map(|m| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&m.transactional_id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
