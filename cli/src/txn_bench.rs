//! `sluice bench transactions`: a consume-transform-produce loop (read a topic in a group,
//! transform each record, write it to another topic, commit every `--commit-interval-ms`), run
//! at-least-once (flush, then commit the group's offsets) and exactly-once (a transaction per
//! commit interval: the outputs and `send_offsets_to_transaction`) over the same input, in the
//! same run, alternating; reports each mode's records/s and their ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::group_consumer::{AutoOffsetReset, GroupConfig, GroupConsumer};
use sluice_log::client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;
use sluice_log::TopicPartition;

use crate::perf::{create_topic, fill_topic};
use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct TxnBenchArgs {
    /// Records in the input topic, written before the clock starts.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Bytes per record value.
    #[arg(long = "record-size", default_value_t = 100)]
    record_size: usize,
    /// How often the loop commits (Kafka Streams' `commit.interval.ms` under exactly-once: 100).
    #[arg(long = "commit-interval-ms", default_value_t = 100)]
    commit_interval_ms: u64,
    /// Runs of each mode, alternating which goes first; the median is reported.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Run against this cluster (Sluice or Apache Kafka) instead of a broker started in this
    /// process (reached over loopback TCP).
    #[arg(long = "bootstrap-server")]
    bootstrap_server: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct TxnReport {
    records: u64,
    record_size: usize,
    commit_interval_ms: u64,
    at_least_once_records_per_sec: f64,
    exactly_once_records_per_sec: f64,
    /// exactly-once ÷ at-least-once.
    ratio: f64,
    at_least_once_runs: Vec<f64>,
    exactly_once_runs: Vec<f64>,
}

pub fn transactions(args: TxnBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.records > 0, "--records must be at least 1");
    anyhow::ensure!(args.reps > 0, "--reps must be at least 1");
    let runtime = runtime()?;
    let report = runtime.block_on(async {
        let (client, broker) = match &args.bootstrap_server {
            Some(bootstrap) => (Client::connect(bootstrap, Default::default()).await?, None),
            None => {
                let (dir, broker) = crate::perf::start_bench_broker()?;
                (
                    crate::perf::loopback_client(&broker).await?,
                    Some((dir, broker)),
                )
            }
        };
        let report = measure(&client, &args).await;
        if let Some((_dir, broker)) = broker {
            // The broker's runtime is its own: shut it down off this runtime's workers.
            tokio::task::block_in_place(|| broker.shutdown())?;
        }
        report
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "consume-transform-produce, {} records of {} B, a commit every {} ms: at-least-once {:.0} records/sec, exactly-once (transactions) {:.0} records/sec: {:.2}x",
            report.records,
            report.record_size,
            report.commit_interval_ms,
            report.at_least_once_records_per_sec,
            report.exactly_once_records_per_sec,
            report.ratio
        );
    }
    Ok(())
}

/// The runs of both loops, alternating, against `client`.
async fn measure(client: &Arc<Client>, args: &TxnBenchArgs) -> anyhow::Result<TxnReport> {
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 1_000_000_000)
    );
    let input = format!("ctp-in-{run_id}");
    create_topic(client, &input).await?;
    // The input: lowercase letters, acknowledged before the clock starts.
    let value: Bytes = (0..args.record_size)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let config = ProducerConfig {
        batch_size: 65_536,
        ..ProducerConfig::default()
    };
    fill_topic(client, config, &input, args.records, value).await?;
    let mut alos = Vec::new();
    let mut eos = Vec::new();
    for rep in 0..args.reps {
        let order = if rep % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for exactly_once in order {
            let tag = format!(
                "{run_id}-{rep}-{}",
                if exactly_once { "eos" } else { "alos" }
            );
            let rate = run_loop(client, args, &input, &tag, exactly_once).await?;
            tracing::info!(rep, exactly_once, records_per_sec = rate, "a loop finished");
            if exactly_once {
                eos.push(rate);
            } else {
                alos.push(rate);
            }
        }
    }
    let (a, e) = (crate::perf::median(&alos), crate::perf::median(&eos));
    Ok(TxnReport {
        records: args.records,
        record_size: args.record_size,
        commit_interval_ms: args.commit_interval_ms,
        at_least_once_records_per_sec: a,
        exactly_once_records_per_sec: e,
        ratio: e / a,
        at_least_once_runs: alos,
        exactly_once_runs: eos,
    })
}

/// One run of the loop over the whole input into a fresh output topic with a fresh group;
/// records/s from the first records polled to the commit that covers the last one. The
/// output is checked: one record per input record (read `read_committed` under exactly-once).
async fn run_loop(
    client: &Arc<Client>,
    args: &TxnBenchArgs,
    input: &str,
    tag: &str,
    exactly_once: bool,
) -> anyhow::Result<f64> {
    let output = format!("ctp-out-{tag}");
    create_topic(client, &output).await?;
    let mut group = GroupConfig::new(&format!("ctp-{tag}"));
    group.enable_auto_commit = false;
    group.auto_offset_reset = AutoOffsetReset::Earliest;
    if exactly_once {
        group.fetch.isolation_level = 1;
    }
    let mut member =
        GroupConsumer::subscribe(client.sibling().await?, vec![input.to_string()], group).await?;
    let mut config = ProducerConfig {
        batch_size: 65_536,
        linger: Duration::from_millis(5),
        ..ProducerConfig::default()
    };
    if exactly_once {
        config.transactional_id = Some(format!("ctp-{tag}"));
    }
    let producer = Producer::new(client.sibling().await?, config);
    if exactly_once {
        producer.init_transactions().await?;
    }
    let output_topic: Arc<str> = output.as_str().into();
    let commit_every = Duration::from_millis(args.commit_interval_ms);
    let n = args.records as i64;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut started = None;
    let mut last_commit = Instant::now();
    let mut deliveries: Vec<DeliveryFuture> = Vec::new();
    let mut in_transaction = false;
    let mut consumed = 0i64;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the loop did not finish within 600 s ({consumed} of {n} records)"
        );
        let records = member.poll().await?;
        if !records.is_empty() && started.is_none() {
            started = Some(Instant::now());
            last_commit = Instant::now();
        }
        if exactly_once && !in_transaction && !records.is_empty() {
            producer.begin_transaction()?;
            in_transaction = true;
        }
        for record in records {
            consumed += 1;
            let value = record.value.map(|v| Bytes::from(v.to_ascii_uppercase()));
            let out = ProducerRecord {
                topic: output_topic.clone(),
                key: record.key,
                value,
                ..Default::default()
            };
            let delivery = producer.send(out).await?;
            if !exactly_once {
                deliveries.push(delivery);
            }
        }
        let done = consumed >= n;
        if done || last_commit.elapsed() >= commit_every {
            if exactly_once {
                if in_transaction {
                    let positions: Vec<(TopicPartition, i64)> = member
                        .assignment()
                        .iter()
                        .map(|tp| Ok((tp.clone(), member.position(&tp.topic, tp.partition)?)))
                        .collect::<sluice_log::Result<_>>()?;
                    producer
                        .send_offsets_to_transaction(&positions, &member.group_metadata())
                        .await?;
                    producer.commit_transaction().await?;
                    in_transaction = false;
                }
            } else {
                producer.flush().await;
                for delivery in deliveries.drain(..) {
                    delivery.await.context("an output record")?;
                }
                member.commit().await?;
            }
            last_commit = Instant::now();
            if done {
                break;
            }
        }
    }
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    producer.close().await;
    member.close().await?;
    let written = count_output(client, &output, exactly_once).await?;
    anyhow::ensure!(
        written == n,
        "{written} output records for {n} input records"
    );
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// The output's records, read from the beginning to its end offset (markers take offsets too).
async fn count_output(
    client: &Arc<Client>,
    topic: &str,
    exactly_once: bool,
) -> anyhow::Result<i64> {
    let end = client.list_offset(topic, 0, -1).await?;
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(TopicPartition::new(topic, 0), StartOffset::Beginning)],
        ConsumerConfig {
            isolation_level: i8::from(exactly_once),
            ..ConsumerConfig::default()
        },
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut read = 0i64;
    while consumer.position(topic, 0)? < end {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reading the output took too long"
        );
        read += consumer.poll().await?.len() as i64;
    }
    Ok(read)
}
