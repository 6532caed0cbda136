//! A source task's loop under exactly-once support (KIP-618, Kafka's
//! `ExactlyOnceWorkerSourceTask`): a transactional producer (`<group.id>-<connector>-<task>`)
//! writes the task's records and the source offsets they reach to the offsets topic in one
//! transaction, which ends where `transaction.boundary` says: after every poll, every interval,
//! or where the task asks through its `TransactionContext`.
//!
//! `init_transactions` at start fences any older instance of the task (a zombie on a worker
//! that lost it) and aborts its open transaction, before the offsets are read (committed ones
//! only), so the task resumes exactly after what was committed. A failed commit fails the task;
//! the transaction it leaves is aborted then, or by the broker at its timeout.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;
use tokio::sync::watch;

use super::source::{self, stop_said, Polled, Uncommitted};
use super::{mark, Control, ExactlyOnceTask, OffsetStore, State, TaskSetup, TransactionBoundary};
use crate::connector::{Props, SourceTask, SourceTaskContext, TransactionContext};
use crate::error::{ConnectError, Result};

/// The transaction the task has open, if any, and what it holds.
struct Transaction<'a> {
    setup: &'a TaskSetup,
    producer: &'a Producer,
    offsets: &'a OffsetStore,
    offsets_topic: Arc<str>,
    open: bool,
}

impl Transaction<'_> {
    /// Opens a transaction unless one is open.
    fn begin(&mut self) -> Result<()> {
        if !self.open {
            self.producer.begin_transaction()?;
            self.open = true;
        }
        Ok(())
    }

    /// Commits what was sent since the last commit, with the offsets it reached (Kafka's
    /// `commitTransaction`); nothing to commit is a no-op. Then the task hears of the commit.
    async fn commit(
        &mut self,
        task: &mut dyn SourceTask,
        uncommitted: &mut Uncommitted,
    ) -> Result<()> {
        if !self.open && uncommitted.offsets.is_empty() {
            return task.commit().await;
        }
        self.begin()?;
        let reached = uncommitted.take_offsets();
        for (key, value) in OffsetStore::records(&self.setup.connector, &reached)? {
            let record = ProducerRecord {
                topic: self.offsets_topic.clone(),
                key: Some(key),
                value,
                ..Default::default()
            };
            self.producer.send(record).await?;
        }
        let committed = self.producer.commit_transaction().await;
        self.open = false;
        uncommitted.deliveries.clear();
        if let Err(err) = committed {
            return Err(ConnectError::Task(commit_failure(self.setup, &err)));
        }
        self.offsets.remember(&self.setup.connector, &reached)?;
        task.commit().await
    }

    /// Aborts the open transaction (its records are never seen), then commits the offsets it
    /// reached alone, so that the task does not read those records again (Kafka's
    /// `abortTransaction` request).
    async fn abort_then_commit_offsets(
        &mut self,
        task: &mut dyn SourceTask,
        uncommitted: &mut Uncommitted,
    ) -> Result<()> {
        if self.open {
            self.producer.abort_transaction().await?;
            self.open = false;
            uncommitted.deliveries.clear();
        } else {
            tracing::info!(connector = %self.setup.connector, task = self.setup.task,
                "Ignoring request by task to abort transaction as the current transaction is empty");
        }
        self.commit(task, uncommitted).await
    }
}

/// Kafka's message for a commit that failed, naming the transaction timeout when that is why.
fn commit_failure(setup: &TaskSetup, err: &sluice_log::Error) -> String {
    let id = format!("{}-{}", setup.connector, setup.task);
    let expired = matches!(err, sluice_log::Error::Broker { code, .. }
        if *code == kafka_protocol::ResponseError::InvalidProducerEpoch
            || *code == kafka_protocol::ResponseError::ProducerFenced);
    if expired {
        format!("The task {id} was unable to finish writing records to Kafka before its producer transaction expired or it was fenced by a newer instance of the task ({err}). It may be necessary to reconfigure this connector in order for it to run healthily with exactly-once support. Options for this include: tune the connector's producer configuration for higher throughput, increase the transaction timeout for the connector's producers, decrease the offset commit interval (if using interval-based transaction boundaries), or use the 'poll' transaction boundary (if the connector is not already configured to use it).")
    } else {
        format!("Failed to flush offsets and/or records for task {id}: {err}")
    }
}

/// Runs `task` in transactions until `control` says stop or it fails; while it says pause,
/// the task is not polled (with `poll` and `interval` boundaries, what it sent is committed
/// first).
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_until_stopped(
    client: Arc<Client>,
    setup: TaskSetup,
    eos: ExactlyOnceTask,
    mut task: Box<dyn SourceTask>,
    props: Props,
    offsets: Arc<OffsetStore>,
    mut control: watch::Receiver<Control>,
    state: Arc<Mutex<State>>,
) -> Result<()> {
    let offsets_topic = offsets.topic().cloned().ok_or_else(|| {
        ConnectError::Task(
            "exactly-once source tasks need a distributed worker's offsets topic".into(),
        )
    })?;
    // Kafka Connect's source producer, made transactional: idempotent, acks=all.
    let producer = Producer::new(
        client.sibling().await?,
        ProducerConfig {
            acks: -1,
            transactional_id: Some(eos.transactional_id.clone()),
            ..ProducerConfig::default()
        },
    );
    // Fences older instances of this task and ends their open transaction, before the
    // offsets are read: they are then the last committed ones.
    producer.init_transactions().await?;
    offsets.refresh().await?;
    let transactions =
        (eos.boundary == TransactionBoundary::Connector).then(TransactionContext::default);
    let context = {
        let offsets = offsets.clone();
        let connector = setup.connector.clone();
        let context = SourceTaskContext::new(move |partition| offsets.get(&connector, partition));
        match &transactions {
            Some(transactions) => context.with_transactions(transactions.clone()),
            None => context,
        }
    };
    let (producer, reporter) =
        source::start_task(&client, &setup, task.as_mut(), &props, context, producer).await?;
    let mut txn = Transaction {
        setup: &setup,
        producer: &producer,
        offsets: &offsets,
        offsets_topic,
        open: false,
    };
    let mut uncommitted = Uncommitted::default();
    let mut last_commit = Instant::now();
    // Whether the task asked for a commit that has not happened yet (connector boundaries).
    let mut commit_requested = false;
    let outcome: Result<()> = async {
        loop {
            let now = *control.borrow_and_update();
            match now {
                Control::Stop => return Ok(()),
                Control::Pause => {
                    if eos.boundary != TransactionBoundary::Connector {
                        txn.commit(task.as_mut(), &mut uncommitted).await?;
                        last_commit = Instant::now();
                    }
                    mark(&state, State::Paused);
                    if control.changed().await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                Control::Run => {
                    if *state.lock() == State::Paused {
                        mark(&state, State::Running);
                    }
                }
            }
            let polled = tokio::select! {
                polled = task.poll() => Polled::Returned(polled),
                () = stop_said(&mut control) => Polled::Stopped,
            };
            let records = match polled {
                Polled::Stopped => return Ok(()),
                Polled::Returned(Ok(records)) => records,
                Polled::Returned(Err(ConnectError::Retriable(reason))) => {
                    tracing::warn!(connector = %setup.connector, task = setup.task, %reason, "poll failed; polling again");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
                Polled::Returned(Err(err)) => return Err(err),
                Polled::CommitFailed(err) => return Err(err),
            };
            for record in records {
                if *record.record.topic == *txn.offsets_topic {
                    return Err(ConnectError::Task(
                        "Source tasks may not produce to their own offsets topics when exactly-once support is enabled".into(),
                    ));
                }
                txn.begin()?;
                // What a per-record request names, before the record moves into `send`.
                let request = match &transactions {
                    Some(t) if t.has_record_requests() => t
                        .take_for_record(&record.source_partition, &record.source_offset)
                        .map_err(ConnectError::Task)?,
                    _ => None,
                };
                source::send(&setup, &producer, &reporter, record, &mut uncommitted).await?;
                match request {
                    Some(true) => {
                        txn.commit(task.as_mut(), &mut uncommitted).await?;
                        commit_requested = false;
                    }
                    Some(false) => {
                        txn.abort_then_commit_offsets(task.as_mut(), &mut uncommitted)
                            .await?
                    }
                    None => {}
                }
            }
            match eos.boundary {
                TransactionBoundary::Poll => txn.commit(task.as_mut(), &mut uncommitted).await?,
                TransactionBoundary::Interval => {
                    if last_commit.elapsed() >= eos.interval {
                        txn.commit(task.as_mut(), &mut uncommitted).await?;
                        last_commit = Instant::now();
                    }
                }
                TransactionBoundary::Connector => {
                    let Some(transactions) = &transactions else {
                        continue;
                    };
                    let requests = transactions.take();
                    commit_requested |= requests.commit_batch;
                    match (requests.commit_batch, requests.abort_batch) {
                        (true, true) => {
                            return Err(ConnectError::Task(
                                "Connector requested both commit and abort of same transaction"
                                    .into(),
                            ))
                        }
                        (false, true) => {
                            txn.abort_then_commit_offsets(task.as_mut(), &mut uncommitted)
                                .await?
                        }
                        (true, false) => {
                            txn.commit(task.as_mut(), &mut uncommitted).await?;
                            commit_requested = false;
                        }
                        (false, false) => {}
                    }
                }
            }
        }
    }
    .await;
    // On the way out, poll and interval boundaries commit what was sent; a connector's
    // boundaries commit only if it asked. A failed task's transaction is aborted.
    let outcome = match outcome {
        Ok(()) if eos.boundary != TransactionBoundary::Connector || commit_requested => {
            txn.commit(task.as_mut(), &mut uncommitted).await
        }
        Ok(()) => Ok(()),
        Err(err) => Err(err),
    };
    if txn.open {
        if let Err(err) = producer.abort_transaction().await {
            tracing::warn!(connector = %setup.connector, task = setup.task, %err, "could not abort the open transaction; the broker aborts it at its timeout");
        }
    }
    source::finish(task, producer, reporter, outcome).await
}
