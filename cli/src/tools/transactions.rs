//! `sluice transactions list|describe|describe-producers|abort`, as kafka-transactions does
//! them (tab-separated columns with Kafka's headers).

use kafka_protocol::ResponseError;
use sluice_log::TopicPartition;

use super::{runtime, Connect};

#[derive(Debug, clap::Args)]
pub struct TransactionsArgs {
    #[command(flatten)]
    connect: Connect,
    #[command(subcommand)]
    command: TransactionsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TransactionsCommand {
    /// List transactional ids, their producer ids and states (ListTransactions on every broker).
    List,
    /// A transactional id's state: producer, epoch, timeout, start time and partitions.
    Describe {
        /// The transactional id.
        #[arg(long = "transactional-id")]
        transactional_id: String,
    },
    /// The producers a partition knows: epoch, last sequence and timestamp, and the start
    /// offset of their open transaction.
    DescribeProducers {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
    },
    /// Abort a hanging transaction in a partition by writing an ABORT marker there: name it by
    /// the first offset of the open transaction (--start-offset), or by its producer.
    Abort {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
        /// The first offset of the open transaction to abort (as `describe-producers` shows).
        #[arg(long = "start-offset", group = "which")]
        start_offset: Option<i64>,
        /// The producer id of the transaction to abort (with --producer-epoch and
        /// --coordinator-epoch).
        #[arg(long = "producer-id", group = "which")]
        producer_id: Option<i64>,
        /// Its producer epoch.
        #[arg(long = "producer-epoch", requires = "producer_id")]
        producer_epoch: Option<i16>,
        /// The epoch of the coordinator of its last marker.
        #[arg(long = "coordinator-epoch", requires = "producer_id")]
        coordinator_epoch: Option<i32>,
    },
}

/// Kafka's tool pads each cell and ends it with a tab.
fn row(cells: &[String], widths: &[usize]) -> String {
    cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}\t"))
        .collect()
}

fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    println!("{}", row(&header, &widths));
    for r in rows {
        println!("{}", row(&r, &widths));
    }
}

pub fn run(args: TransactionsArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.client().await?;
        match args.command {
            TransactionsCommand::List => {
                let rows = client
                    .list_transactions(&[])
                    .await?
                    .into_iter()
                    .map(|(node, t)| {
                        vec![t.transactional_id, node.to_string(), t.producer_id.to_string(), t.state]
                    })
                    .collect();
                print_table(
                    &["TransactionalId", "Coordinator", "ProducerId", "TransactionState"],
                    rows,
                );
            }
            TransactionsCommand::Describe { transactional_id } => {
                let described = match client.describe_transaction(&transactional_id).await {
                    Err(sluice_log::Error::Broker {
                        code: ResponseError::TransactionalIdNotFound,
                        ..
                    }) => anyhow::bail!(
                        "Failed to describe transaction state of transactional-id `{transactional_id}`: the ID could not be found."
                    ),
                    other => other?,
                };
                let coordinator = client.transaction_coordinator_id(&transactional_id).await?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let (start, duration) = if described.start_time_ms >= 0 {
                    (
                        described.start_time_ms.to_string(),
                        (now - described.start_time_ms).max(0).to_string(),
                    )
                } else {
                    ("None".to_string(), "None".to_string())
                };
                let partitions: Vec<String> =
                    described.partitions.iter().map(|tp| tp.to_string()).collect();
                print_table(
                    &[
                        "CoordinatorId",
                        "TransactionalId",
                        "ProducerId",
                        "ProducerEpoch",
                        "TransactionState",
                        "TransactionTimeoutMs",
                        "CurrentTransactionStartTimeMs",
                        "TransactionDurationMs",
                        "TopicPartitions",
                    ],
                    vec![vec![
                        coordinator.to_string(),
                        described.listing.transactional_id,
                        described.listing.producer_id.to_string(),
                        described.producer_epoch.to_string(),
                        described.listing.state,
                        described.timeout_ms.to_string(),
                        start,
                        duration,
                        partitions.join(","),
                    ]],
                );
            }
            TransactionsCommand::DescribeProducers { topic, partition } => {
                let producers = client.describe_producers(&topic, partition).await?;
                let rows = producers
                    .into_iter()
                    .map(|p| {
                        vec![
                            p.producer_id.to_string(),
                            p.producer_epoch.to_string(),
                            p.coordinator_epoch.to_string(),
                            p.last_sequence.to_string(),
                            p.last_timestamp.to_string(),
                            p.current_txn_start_offset
                                .map_or("None".to_string(), |o| o.to_string()),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ProducerId",
                        "ProducerEpoch",
                        "LatestCoordinatorEpoch",
                        "LastSequence",
                        "LastTimestamp",
                        "CurrentTransactionStartOffset",
                    ],
                    rows,
                );
            }
            TransactionsCommand::Abort {
                topic,
                partition,
                start_offset,
                producer_id,
                producer_epoch,
                coordinator_epoch,
            } => {
                let tp = TopicPartition::new(&topic, partition);
                let (producer, coordinator_epoch) = match (start_offset, producer_id) {
                    (Some(offset), _) => {
                        let producers = client.describe_producers(&topic, partition).await?;
                        let found = producers
                            .iter()
                            .find(|p| p.current_txn_start_offset == Some(offset))
                            .ok_or_else(|| {
                                anyhow::anyhow!(
                                    "Could not find any open transactions starting at offset {offset} on partition {tp}"
                                )
                            })?;
                        let epoch = i16::try_from(found.producer_epoch).unwrap_or(i16::MAX);
                        ((found.producer_id, epoch), found.coordinator_epoch)
                    }
                    (None, Some(id)) => {
                        let epoch = producer_epoch
                            .ok_or_else(|| anyhow::anyhow!("--producer-epoch is required with --producer-id"))?;
                        let coordinator_epoch = coordinator_epoch.ok_or_else(|| {
                            anyhow::anyhow!("--coordinator-epoch is required with --producer-id")
                        })?;
                        ((id, epoch), coordinator_epoch)
                    }
                    (None, None) => anyhow::bail!("give --start-offset, or --producer-id with --producer-epoch and --coordinator-epoch"),
                };
                client
                    .write_txn_marker(&tp, producer, coordinator_epoch.max(0), false)
                    .await?;
                println!(
                    "Aborted the transaction of producer {} (epoch {}) on partition {tp}",
                    producer.0, producer.1
                );
            }
        }
        Ok(())
    })
}
