//! A transactional id's state, and every transition Kafka's `TransactionMetadata` allows, with
//! the errors it answers otherwise. Pure: the broker persists each new state to
//! `__transaction_state` and writes the markers a [`MarkerPlan`] asks for.
//!
//! ```text
//! Empty ──AddPartitions──▶ Ongoing ──EndTxn──▶ PrepareCommit ──markers──▶ CompleteCommit
//!   ▲                        │  │                                              │
//!   │                        │  └──EndTxn(abort), timeout, fence──▶ PrepareAbort ──▶ CompleteAbort
//!   └──InitProducerId (epoch + 1)◀────────────────────────────────────────────┘
//! ```

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use crate::model::TopicPartition;

/// Where a transaction is (Kafka's `TransactionState`, with its codes in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction open.
    Empty,
    /// Partitions were added; records may be written.
    Ongoing,
    /// EndTxn(commit) accepted; COMMIT markers being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence accepted; ABORT markers being written.
    PrepareAbort,
    /// Every COMMIT marker written.
    CompleteCommit,
    /// Every ABORT marker written.
    CompleteAbort,
    /// The id expired (`transactional.id.expiration.ms`).
    Dead,
    /// Kafka's state while fencing an epoch; never entered here (fences go through
    /// PrepareAbort), read for completeness.
    PrepareEpochFence,
}

impl TxnState {
    /// The code stored in `__transaction_state`.
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state of a stored code.
    pub fn from_code(code: i8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name, as ListTransactions and DescribeTransactions show it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// Markers to write: every partition of the transaction gets one, with this producer id and
/// epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerPlan {
    /// The producer.
    pub producer_id: i64,
    /// The epoch the markers carry.
    pub producer_epoch: i16,
    /// COMMIT or ABORT.
    pub commit: bool,
    /// The transaction's partitions.
    pub partitions: BTreeSet<TopicPartition>,
}

/// What EndTxn leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndPlan {
    /// The transaction already ended this way (a retried EndTxn): nothing to do.
    AlreadyDone,
    /// Persist the Prepare state, write these markers, then complete.
    Markers(MarkerPlan),
}

/// What InitProducerId leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitPlan {
    /// Persist the new epoch; answer with it.
    Ready,
    /// A transaction is open: it is aborted first (persist PrepareAbort, write these markers,
    /// complete), then InitProducerId is applied again.
    AbortFirst(MarkerPlan),
}

/// Everything the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// The epoch before the coordinator last bumped it on its own (timeout or fence), so that
    /// the producer may re-initialize with it (KIP-360); -1 if none. Not persisted.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// Its state.
    pub state: TxnState,
    /// Partitions of the open (or ending) transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// When the open transaction began (ms; -1 when none).
    pub start_ms: i64,
    /// When the state last changed (ms).
    pub last_update_ms: i64,
}

/// The largest epoch before a new producer id is needed (Kafka keeps `Short.MAX_VALUE` free).
const MAX_EPOCH: i16 = i16::MAX - 1;

impl TxnMetadata {
    /// A transactional id seen for the first time: a new producer id at epoch 0, Empty.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// Checks that a request comes from the current producer of this id: another producer id
    /// is not this transaction's (INVALID_PRODUCER_ID_MAPPING), another epoch is a fenced
    /// instance (PRODUCER_FENCED).
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
        if producer_id != self.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch != self.producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(())
    }

    fn in_prepare(&self) -> bool {
        matches!(
            self.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }

    /// InitProducerId for an existing id. `expected`: the producer id and epoch a v3+ request
    /// carries (KIP-360), if any. `new_producer_id` is called when the epoch is exhausted.
    pub fn init(
        &mut self,
        expected: Option<(i64, i16)>,
        timeout_ms: i32,
        now_ms: i64,
        new_producer_id: impl FnOnce() -> Result<i64, ResponseError>,
    ) -> Result<InitPlan, ResponseError> {
        if self.in_prepare() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if let Some((pid, epoch)) = expected {
            let current = pid == self.producer_id
                && (epoch == self.producer_epoch
                    || (self.last_producer_epoch >= 0 && epoch == self.last_producer_epoch));
            if !current {
                return Err(ResponseError::ProducerFenced);
            }
        }
        if self.state == TxnState::Ongoing {
            // Fence the open transaction's producer: abort it under a newer epoch.
            return Ok(InitPlan::AbortFirst(self.prepare_abort_with_bump(now_ms)));
        }
        if self.producer_epoch >= MAX_EPOCH {
            self.producer_id = new_producer_id()?;
            self.producer_epoch = 0;
        } else {
            self.producer_epoch += 1;
        }
        self.last_producer_epoch = -1;
        self.timeout_ms = timeout_ms;
        self.state = TxnState::Empty;
        self.partitions.clear();
        self.start_ms = -1;
        self.last_update_ms = now_ms;
        Ok(InitPlan::Ready)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition). Returns
    /// whether the state changed (and must be persisted).
    pub fn add_partitions(
        &mut self,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<bool, ResponseError> {
        self.check_producer(producer_id, epoch)?;
        if self.in_prepare() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if self.state == TxnState::Dead {
            return Err(ResponseError::InvalidTxnState);
        }
        if self.state == TxnState::Ongoing && partitions.iter().all(|p| self.partitions.contains(p))
        {
            return Ok(false);
        }
        if self.state != TxnState::Ongoing {
            self.partitions.clear();
            self.start_ms = now_ms;
            self.state = TxnState::Ongoing;
        }
        self.partitions.extend(partitions.iter().cloned());
        self.last_update_ms = now_ms;
        Ok(true)
    }

    /// EndTxn: commit or abort the open transaction.
    pub fn end(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndPlan, ResponseError> {
        self.check_producer(producer_id, epoch)?;
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                self.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                self.last_update_ms = now_ms;
                Ok(EndPlan::Markers(self.marker_plan(commit)))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndPlan::AlreadyDone)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// The open transaction ran past its timeout: abort it under a newer epoch, so that the
    /// producer is fenced (as Kafka does). None if it is not open or not yet due.
    pub fn abort_if_timed_out(&mut self, now_ms: i64) -> Option<MarkerPlan> {
        let due = self.state == TxnState::Ongoing
            && now_ms.saturating_sub(self.start_ms) > i64::from(self.timeout_ms);
        due.then(|| self.prepare_abort_with_bump(now_ms))
    }

    fn prepare_abort_with_bump(&mut self, now_ms: i64) -> MarkerPlan {
        if self.producer_epoch < MAX_EPOCH {
            self.last_producer_epoch = self.producer_epoch;
            self.producer_epoch += 1;
        }
        self.state = TxnState::PrepareAbort;
        self.last_update_ms = now_ms;
        self.marker_plan(false)
    }

    fn marker_plan(&self, commit: bool) -> MarkerPlan {
        MarkerPlan {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            commit,
            partitions: self.partitions.clone(),
        }
    }

    /// Every marker is written: PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort.
    /// Other states are left as they are.
    pub fn complete(&mut self, now_ms: i64) {
        self.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort | TxnState::PrepareEpochFence => TxnState::CompleteAbort,
            _ => return,
        };
        self.partitions.clear();
        self.start_ms = -1;
        self.last_update_ms = now_ms;
    }

    /// The markers a Prepare state still owes (after a restart, or a failed write).
    pub fn pending_markers(&self) -> Option<MarkerPlan> {
        match self.state {
            TxnState::PrepareCommit => Some(self.marker_plan(true)),
            TxnState::PrepareAbort | TxnState::PrepareEpochFence => Some(self.marker_plan(false)),
            _ => None,
        }
    }

    /// Whether the id is idle past `transactional.id.expiration.ms` and may be forgotten.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && now_ms.saturating_sub(self.last_update_ms) >= expiration_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn fresh() -> TxnMetadata {
        TxnMetadata::new("app", 7, 60_000, 0)
    }

    fn no_id() -> Result<i64, ResponseError> {
        Err(ResponseError::UnknownServerError)
    }

    #[test]
    fn a_transaction_goes_through_every_state_to_commit() {
        let mut m = fresh();
        assert_eq!(m.init(None, 60_000, 1, no_id), Ok(InitPlan::Ready));
        assert_eq!((m.producer_epoch, m.state), (1, TxnState::Empty));
        assert_eq!(m.add_partitions(7, 1, &[tp(0)], 2), Ok(true));
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 2));
        assert_eq!(m.add_partitions(7, 1, &[tp(0)], 3), Ok(false));
        assert_eq!(m.add_partitions(7, 1, &[tp(1)], 4), Ok(true));
        assert_eq!(m.start_ms, 2);
        let EndPlan::Markers(plan) = m.end(7, 1, true, 5).unwrap() else {
            panic!("expected markers")
        };
        assert_eq!(
            (plan.commit, plan.producer_epoch, plan.partitions.len()),
            (true, 1, 2)
        );
        assert_eq!(m.state, TxnState::PrepareCommit);
        assert_eq!(m.pending_markers(), Some(plan));
        assert_eq!(
            m.end(7, 1, true, 5),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(
            m.add_partitions(7, 1, &[tp(0)], 5),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(
            m.init(None, 1, 5, no_id),
            Err(ResponseError::ConcurrentTransactions)
        );
        m.complete(6);
        assert_eq!(
            (m.state, m.partitions.len(), m.start_ms),
            (TxnState::CompleteCommit, 0, -1)
        );
        // A retried commit succeeds; an abort of a committed transaction does not.
        assert_eq!(m.end(7, 1, true, 7), Ok(EndPlan::AlreadyDone));
        assert_eq!(m.end(7, 1, false, 7), Err(ResponseError::InvalidTxnState));
        // The next transaction starts from CompleteCommit.
        assert_eq!(m.add_partitions(7, 1, &[tp(2)], 8), Ok(true));
        assert_eq!(m.partitions.iter().collect::<Vec<_>>(), vec![&tp(2)]);
    }

    #[test]
    fn abort_and_the_errors_of_a_wrong_producer() {
        let mut m = fresh();
        assert_eq!(m.end(7, 0, true, 1), Err(ResponseError::InvalidTxnState));
        assert_eq!(
            m.add_partitions(8, 0, &[tp(0)], 1),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.add_partitions(7, 3, &[tp(0)], 1),
            Err(ResponseError::ProducerFenced)
        );
        m.add_partitions(7, 0, &[tp(0)], 1).unwrap();
        assert_eq!(m.end(7, 1, false, 2), Err(ResponseError::ProducerFenced));
        assert_eq!(
            m.end(9, 0, false, 2),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        let EndPlan::Markers(plan) = m.end(7, 0, false, 2).unwrap() else {
            panic!("expected markers")
        };
        assert!(!plan.commit);
        assert_eq!(m.state, TxnState::PrepareAbort);
        m.complete(3);
        assert_eq!(m.state, TxnState::CompleteAbort);
        assert_eq!(m.end(7, 0, false, 4), Ok(EndPlan::AlreadyDone));
        assert_eq!(m.end(7, 0, true, 4), Err(ResponseError::InvalidTxnState));
    }

    #[test]
    fn init_fences_an_open_transaction_and_checks_the_callers_epoch() {
        let mut m = fresh();
        m.add_partitions(7, 0, &[tp(0)], 1).unwrap();
        let InitPlan::AbortFirst(plan) = m.init(None, 60_000, 2, no_id).unwrap() else {
            panic!("expected an abort first")
        };
        assert_eq!(
            (plan.commit, plan.producer_epoch, m.state),
            (false, 1, TxnState::PrepareAbort)
        );
        m.complete(3);
        assert_eq!(m.init(None, 60_000, 4, no_id), Ok(InitPlan::Ready));
        assert_eq!((m.producer_epoch, m.state), (2, TxnState::Empty));
        // KIP-360: a caller naming another epoch is a fenced instance.
        assert_eq!(
            m.init(Some((7, 1)), 60_000, 5, no_id),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(m.init(Some((7, 2)), 60_000, 5, no_id), Ok(InitPlan::Ready));
        assert_eq!(m.producer_epoch, 3);
    }

    #[test]
    fn an_exhausted_epoch_gets_a_new_producer_id() {
        let mut m = fresh();
        m.producer_epoch = MAX_EPOCH;
        assert_eq!(m.init(None, 1, 1, || Ok(99)), Ok(InitPlan::Ready));
        assert_eq!((m.producer_id, m.producer_epoch), (99, 0));
        m.producer_epoch = MAX_EPOCH;
        assert_eq!(
            m.init(None, 1, 1, no_id),
            Err(ResponseError::UnknownServerError)
        );
    }

    #[test]
    fn a_timed_out_transaction_is_aborted_under_a_new_epoch_and_the_old_one_may_reinit() {
        let mut m = fresh();
        m.add_partitions(7, 0, &[tp(0)], 1_000).unwrap();
        assert_eq!(m.abort_if_timed_out(61_000), None);
        let plan = m.abort_if_timed_out(61_001).unwrap();
        assert_eq!((plan.producer_epoch, plan.commit), (1, false));
        m.complete(61_002);
        // The old producer is fenced from its transaction...
        assert_eq!(
            m.add_partitions(7, 0, &[tp(0)], 61_003),
            Err(ResponseError::ProducerFenced)
        );
        // ...but may re-initialize with the epoch it had (KIP-360).
        assert_eq!(m.init(Some((7, 0)), 1, 61_004, no_id), Ok(InitPlan::Ready));
        assert_eq!(m.producer_epoch, 2);
    }

    #[test]
    fn only_idle_ids_expire() {
        let mut m = fresh();
        assert!(m.expired(100, 100));
        assert!(!m.expired(99, 100));
        m.add_partitions(7, 0, &[tp(0)], 0).unwrap();
        assert!(!m.expired(1_000, 100));
        for code in 0..8 {
            let state = TxnState::from_code(code).unwrap();
            assert_eq!(state.code(), code);
        }
        assert_eq!(TxnState::from_code(8), None);
    }

    /// Operations a client may send, in any order.
    #[derive(Debug, Clone)]
    enum Op {
        Init(bool),
        Add(i32, bool),
        End(bool, bool),
        Complete,
        Timeout,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<bool>().prop_map(Op::Init),
            (0i32..3, any::<bool>()).prop_map(|(p, e)| Op::Add(p, e)),
            (any::<bool>(), any::<bool>()).prop_map(|(c, e)| Op::End(c, e)),
            Just(Op::Complete),
            Just(Op::Timeout),
        ]
    }

    proptest! {
        /// Whatever clients send, epochs never go back, an Ongoing transaction always has
        /// partitions and a start time, and markers only come from Ongoing transactions.
        #[test]
        fn invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 0..60)) {
            let mut m = fresh();
            let mut now = 0;
            for op in ops {
                now += 1_000;
                let before = m.clone();
                match op {
                    Op::Init(stale) => {
                        let epoch = if stale { m.producer_epoch.wrapping_sub(1) } else { m.producer_epoch };
                        if let Ok(InitPlan::AbortFirst(plan)) = m.init(Some((7, epoch)), 60_000, now, no_id) {
                            prop_assert_eq!(before.state, TxnState::Ongoing);
                            prop_assert!(!plan.commit);
                        }
                    }
                    Op::Add(p, stale) => {
                        let epoch = if stale { m.producer_epoch.wrapping_sub(1) } else { m.producer_epoch };
                        if m.add_partitions(7, epoch, &[tp(p)], now).is_err() {
                            prop_assert_eq!(&m, &before);
                        }
                    }
                    Op::End(commit, stale) => {
                        let epoch = if stale { m.producer_epoch.wrapping_sub(1) } else { m.producer_epoch };
                        match m.end(7, epoch, commit, now) {
                            Ok(EndPlan::Markers(plan)) => {
                                prop_assert_eq!(before.state, TxnState::Ongoing);
                                prop_assert_eq!(plan.partitions, before.partitions.clone());
                            }
                            Ok(EndPlan::AlreadyDone) | Err(_) => prop_assert_eq!(&m, &before),
                        }
                    }
                    Op::Complete => m.complete(now),
                    Op::Timeout => { m.abort_if_timed_out(now + 120_000); }
                }
                prop_assert!(m.producer_epoch >= before.producer_epoch);
                if m.state == TxnState::Ongoing {
                    prop_assert!(!m.partitions.is_empty());
                    prop_assert!(m.start_ms >= 0);
                }
            }
        }
    }
}
