//! `sluice bench produce|consume`: kafka-producer-perf-test and kafka-consumer-perf-test, over
//! Sluice's client, against any Kafka-compatible cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use sluice_log::{LogConfig, PartitionLog, TopicPartition};

use crate::tools::{parse_key_value, runtime, Connect};

#[derive(Debug, clap::Args)]
pub struct ProducePerfArgs {
    #[command(flatten)]
    connect: Connect,
    /// Topic to produce to (auto-created if the broker allows).
    #[arg(long)]
    topic: String,
    /// Number of records.
    #[arg(long = "num-records")]
    num_records: u64,
    /// Bytes per record value.
    #[arg(long = "record-size")]
    record_size: usize,
    /// Records per second to aim at; -1 for as fast as possible.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    throughput: i64,
    /// Producer properties, e.g. `acks=1 linger.ms=5 batch.size=65536 compression.type=lz4`.
    #[arg(long = "producer-props", num_args = 1.., value_name = "KEY=VALUE")]
    producer_props: Vec<String>,
    /// Also append the same records to a fresh storage-engine partition in this process (before
    /// and after the produce run, each from a clean page cache) and report the produce rate as a
    /// share of the better one: the broker's own limit on this machine. Also measures, the same
    /// way, the same bytes sent over loopback TCP and written to a file by a hand-written loop:
    /// the floor under any network produce here.
    #[arg(long = "compare-log")]
    compare_log: bool,
    /// Send one batch of records, built once, over and over (as `sluice bench log` appends one
    /// prebuilt batch), in produce requests with `acks` and up to
    /// `max.in.flight.requests.per.connection` in flight, to partition 0: the network and the
    /// broker without the producer's per-record work.
    #[arg(long = "prebuilt-batches")]
    prebuilt_batches: bool,
    /// Start a broker in this process and measure the in-process path (embedded mode) against
    /// loopback TCP to the same broker, in the same run (--bootstrap-server is ignored).
    #[arg(long)]
    embedded: bool,
    /// Run the producer with `enable.idempotence=true` and `=false` (the other
    /// `--producer-props` as given), alternating, each `--reps` times into a fresh topic named
    /// after `--topic`, and report the medians and their ratio: what idempotence costs.
    #[arg(long = "compare-idempotence")]
    compare_idempotence: bool,
    /// Runs of each side with --compare-idempotence.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Print one JSON object instead of the summary line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct IdempotenceReport {
    records: u64,
    record_size: usize,
    idempotent_records_per_sec: f64,
    plain_records_per_sec: f64,
    /// idempotent ÷ plain.
    ratio: f64,
    idempotent_runs: Vec<f64>,
    plain_runs: Vec<f64>,
}

/// `--compare-idempotence`: the same run with and without idempotence, alternating.
async fn compare_idempotence(
    args: &ProducePerfArgs,
    config: ProducerConfig,
) -> anyhow::Result<IdempotenceReport> {
    let client = args.connect.client().await?;
    let (mut idempotent, mut plain) = (Vec::new(), Vec::new());
    for rep in 0..args.reps.max(1) {
        let order = if rep % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for idempotence in order {
            let mut config = config.clone();
            config.set(
                "enable.idempotence",
                if idempotence { "true" } else { "false" },
            )?;
            config.check()?;
            let topic = format!(
                "{}-{}-{rep}",
                args.topic,
                if idempotence { "idempotent" } else { "plain" }
            );
            write_back_everything()?;
            let report = run_produce(client.clone(), args, &topic, config).await?;
            tracing::info!(
                idempotence,
                rep,
                records_per_sec = report.records_per_sec,
                "a produce run finished"
            );
            if idempotence {
                idempotent.push(report.records_per_sec);
            } else {
                plain.push(report.records_per_sec);
            }
        }
    }
    let (i, p) = (median(&idempotent), median(&plain));
    Ok(IdempotenceReport {
        records: args.num_records,
        record_size: args.record_size,
        idempotent_records_per_sec: i,
        plain_records_per_sec: p,
        ratio: i / p,
        idempotent_runs: idempotent,
        plain_runs: plain,
    })
}

/// Writes `n` records of `value` to `topic` and waits for them to be acknowledged.
pub(crate) async fn fill_topic(
    client: &Arc<sluice_log::client::Client>,
    config: ProducerConfig,
    topic: &str,
    n: u64,
    value: Bytes,
) -> anyhow::Result<()> {
    let producer = Producer::new(client.clone(), config);
    let topic: Arc<str> = topic.into();
    let mut last = None;
    for _ in 0..n {
        let record = ProducerRecord {
            topic: topic.clone(),
            value: Some(value.clone()),
            ..Default::default()
        };
        last = Some(producer.send(record).await?);
    }
    producer.flush().await;
    if let Some(last) = last {
        last.await
            .with_context(|| format!("writing the records of {topic}"))?;
    }
    producer.close().await;
    Ok(())
}

/// Creates a topic of one partition, replication factor 1.
pub(crate) async fn create_topic(
    client: &sluice_log::client::Client,
    name: &str,
) -> anyhow::Result<()> {
    let topic = sluice_log::client::NewTopic {
        name: name.to_string(),
        partitions: 1,
        replication_factor: 1,
        configs: Default::default(),
    };
    if let Some((_, Err(err))) = client
        .create_topics(&[topic], false)
        .await?
        .into_iter()
        .next()
    {
        return Err(anyhow::Error::new(err).context(format!("create topic {name}")));
    }
    Ok(())
}

/// The median of some runs (the mean of the middle two for an even count).
pub(crate) fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[derive(Debug, Serialize)]
struct ProduceReport {
    records: u64,
    record_size: usize,
    records_per_sec: f64,
    mb_per_sec: f64,
    avg_ms: f64,
    max_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_append_mb_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loopback_write_mb_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loopback_write_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_shaped_loop_mb_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_shaped_loop_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loopback_records_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded_ratio: Option<f64>,
}

/// One produce run against `client`: the records of `args` to `topic`.
async fn run_produce(
    client: Arc<sluice_log::client::Client>,
    args: &ProducePerfArgs,
    topic_name: &str,
    config: ProducerConfig,
) -> anyhow::Result<ProduceReport> {
    client
        .topic(topic_name, true)
        .await
        .with_context(|| format!("topic {topic_name}"))?;
    let producer = Producer::new(client, config);
    let value = Bytes::from(vec![b'x'; args.record_size]);
    // Each acknowledgement carries the instant it arrived, so latencies are read off the
    // completed deliveries without waking a task per record: every so often the finished
    // ones at the front of the queue are collected.
    let topic: Arc<str> = topic_name.into();
    let mut pending: std::collections::VecDeque<(Instant, DeliveryFuture)> =
        std::collections::VecDeque::new();
    let mut latencies_us = Vec::with_capacity(args.num_records.min(50_000_000) as usize);
    let started = Instant::now();
    for idx in 0..args.num_records {
        if args.throughput > 0 {
            // Pace the sends: record idx goes out no earlier than idx / throughput seconds.
            let due = started + Duration::from_secs_f64(idx as f64 / args.throughput as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let record = ProducerRecord {
            topic: topic.clone(),
            value: Some(value.clone()),
            ..Default::default()
        };
        let sent = Instant::now();
        pending.push_back((sent, producer.send(record).await?));
        if idx % 1024 == 0 {
            collect_finished(&mut pending, &mut latencies_us, false).await?;
        }
    }
    producer.flush().await;
    collect_finished(&mut pending, &mut latencies_us, true).await?;
    let elapsed = started.elapsed();
    producer.close().await;
    Ok(report_from(args, elapsed, latencies_us))
}

/// `--prebuilt-batches`: the same batch bytes in every produce request, so that the client's
/// work per byte is only the request's encoding and the socket write.
async fn run_prebuilt(
    client: Arc<sluice_log::client::Client>,
    args: &ProducePerfArgs,
    config: &ProducerConfig,
) -> anyhow::Result<ProduceReport> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    anyhow::ensure!(
        config.acks != 0,
        "--prebuilt-batches needs acks=1 or acks=all"
    );
    client
        .topic(&args.topic, true)
        .await
        .with_context(|| format!("topic {}", args.topic))?;
    let connection = client.leader_connection(&args.topic, 0).await?;
    // As many records per batch as `log_append_rate` puts in one, so both sides move the same.
    let per_batch = (config.batch_size / (args.record_size + 10)).max(1);
    let full = crate::bench::producer_batch(per_batch, args.record_size)?.freeze();
    let request_for = |records: Bytes| {
        ProduceRequest::default()
            .with_acks(config.acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])])
    };
    let mut in_flight = std::collections::VecDeque::new();
    let mut latencies_us = Vec::new();
    let started = Instant::now();
    let mut remaining = args.num_records;
    while remaining > 0 {
        let (records, n) = if remaining >= per_batch as u64 {
            (full.clone(), per_batch as u64)
        } else {
            (
                crate::bench::producer_batch(remaining as usize, args.record_size)?.freeze(),
                remaining,
            )
        };
        remaining -= n;
        let pending = connection.start(&request_for(records)).await?;
        in_flight.push_back((Instant::now(), n, pending));
        while in_flight.len() >= config.max_in_flight {
            finish_oldest(&mut in_flight, &mut latencies_us).await?;
        }
    }
    while !in_flight.is_empty() {
        finish_oldest(&mut in_flight, &mut latencies_us).await?;
    }
    let elapsed = started.elapsed();
    Ok(report_from(args, elapsed, latencies_us))
}

/// A produce request in flight: when it was sent, how many records it carries, its response.
type InFlightRequest = (
    Instant,
    u64,
    sluice_log::client::connection::PendingResponse<kafka_protocol::messages::ProduceRequest>,
);

/// Waits for the oldest request's response (failing on a refused partition) and counts its
/// latency once per record it carried.
async fn finish_oldest(
    in_flight: &mut std::collections::VecDeque<InFlightRequest>,
    latencies_us: &mut Vec<u32>,
) -> anyhow::Result<()> {
    let Some((sent, n, pending)) = in_flight.pop_front() else {
        return Ok(());
    };
    let response = pending.wait().await?;
    for topic in &response.responses {
        for partition in &topic.partition_responses {
            if let Some(err) = sluice_log::Error::from_code(
                partition.error_code,
                partition.error_message.as_deref(),
            ) {
                return Err(anyhow::Error::new(err).context("a produce request failed"));
            }
        }
    }
    let latency = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    latencies_us.extend(std::iter::repeat_n(latency, n as usize));
    Ok(())
}

/// The summary of a produce run of `args` that took `elapsed`, with one latency per record.
fn report_from(
    args: &ProducePerfArgs,
    elapsed: Duration,
    mut latencies_us: Vec<u32>,
) -> ProduceReport {
    latencies_us.sort_unstable();
    let total_bytes = args.num_records as f64 * args.record_size as f64;
    let avg = latencies_us.iter().map(|&l| f64::from(l)).sum::<f64>()
        / latencies_us.len().max(1) as f64
        / 1000.0;
    ProduceReport {
        records: args.num_records,
        record_size: args.record_size,
        records_per_sec: args.num_records as f64 / elapsed.as_secs_f64(),
        mb_per_sec: total_bytes / 1e6 / elapsed.as_secs_f64(),
        avg_ms: avg,
        max_ms: latencies_us.last().map_or(0.0, |&l| f64::from(l) / 1000.0),
        p50_ms: percentile(&latencies_us, 0.5),
        p95_ms: percentile(&latencies_us, 0.95),
        p99_ms: percentile(&latencies_us, 0.99),
        p999_ms: percentile(&latencies_us, 0.999),
        log_append_mb_per_sec: None,
        log_ratio: None,
        loopback_write_mb_per_sec: None,
        loopback_write_ratio: None,
        kafka_shaped_loop_mb_per_sec: None,
        kafka_shaped_loop_ratio: None,
        loopback_records_per_sec: None,
        embedded_ratio: None,
    }
}

/// A broker in this process for `--embedded`, its data in a temporary directory (removed when
/// the returned guard drops), also listening on an ephemeral loopback port.
pub(crate) fn start_bench_broker(
) -> anyhow::Result<(tempfile::TempDir, sluice_log::embedded::EmbeddedBroker)> {
    let dir = tempfile::tempdir()?;
    let props: std::collections::BTreeMap<String, String> = [
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        ("log.dirs".to_string(), dir.path().display().to_string()),
    ]
    .into();
    let broker =
        tokio::task::block_in_place(|| sluice_log::embedded::EmbeddedBroker::start(&props))?;
    Ok((dir, broker))
}

/// A client of `broker` over loopback TCP.
pub(crate) async fn loopback_client(
    broker: &sluice_log::embedded::EmbeddedBroker,
) -> anyhow::Result<Arc<sluice_log::client::Client>> {
    let bootstrap = broker
        .bootstrap()
        .context("the benchmark broker listens on loopback")?;
    Ok(sluice_log::client::Client::connect(&bootstrap, Default::default()).await?)
}

/// `--embedded`: a broker in this process; the same run over loopback TCP and over the
/// in-process path, reported side by side (the in-process report is the main one).
async fn produce_embedded(
    args: &ProducePerfArgs,
    config: ProducerConfig,
) -> anyhow::Result<ProduceReport> {
    let (_dir, broker) = start_bench_broker()?;
    write_back_everything()?;
    let tcp_client = loopback_client(&broker).await?;
    let over_tcp = run_produce(
        tcp_client,
        args,
        &format!("{}-tcp", args.topic),
        config.clone(),
    )
    .await?;
    // Each run starts from a clean page cache, or the second pays for the first's writeback.
    write_back_everything()?;
    let in_process_client = broker.client().await?;
    let mut in_process = run_produce(
        in_process_client,
        args,
        &format!("{}-in-process", args.topic),
        config,
    )
    .await?;
    in_process.loopback_records_per_sec = Some(over_tcp.records_per_sec);
    in_process.embedded_ratio = Some(in_process.records_per_sec / over_tcp.records_per_sec);
    tokio::task::block_in_place(|| broker.shutdown())?;
    Ok(in_process)
}

/// Moves finished deliveries from the front of `pending` into `latencies_us` (all of them, waiting,
/// when `all`); fails on the first record that was not written.
async fn collect_finished(
    pending: &mut std::collections::VecDeque<(Instant, DeliveryFuture)>,
    latencies_us: &mut Vec<u32>,
    all: bool,
) -> anyhow::Result<()> {
    while let Some((sent, delivery)) = pending.front_mut() {
        let result = if all {
            delivery.await
        } else {
            match delivery.try_result() {
                Some(result) => result,
                None => return Ok(()),
            }
        };
        match result {
            Ok(metadata) => {
                let latency = metadata.acknowledged_at.saturating_duration_since(*sent);
                latencies_us.push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Err(err) => return Err(anyhow::Error::new(err).context("a record was not written")),
        }
        pending.pop_front();
    }
    Ok(())
}

pub(crate) fn percentile(sorted_us: &[u32], fraction: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_us.len() as f64 * fraction) as usize).min(sorted_us.len() - 1);
    f64::from(sorted_us[idx]) / 1000.0
}

pub fn produce(args: ProducePerfArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.num_records > 0 && args.record_size > 0,
        "--num-records and --record-size must be at least 1"
    );
    let mut config = ProducerConfig::default();
    for prop in &args.producer_props {
        let (key, value) = parse_key_value(prop)?;
        config
            .set(&key, &value)
            .with_context(|| format!("--producer-props {prop}"))?;
    }
    if args.compare_idempotence {
        let report = runtime()?.block_on(compare_idempotence(&args, config))?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{} records of {} B: idempotent {:.0} records/sec, not idempotent {:.0} records/sec (medians of {}): ratio {:.3}",
                report.records,
                report.record_size,
                report.idempotent_records_per_sec,
                report.plain_records_per_sec,
                args.reps.max(1),
                report.ratio
            );
        }
        return Ok(());
    }
    let batch_size = config.batch_size;
    // The limit, measured first from a clean page cache: the storage engine appending the same
    // records in this process.
    let payload_bytes = args.num_records * args.record_size as u64;
    let limits_before = if args.compare_log {
        write_back_everything()?;
        let append = log_append_rate(args.num_records, args.record_size, batch_size)?;
        write_back_everything()?;
        let loopback = loopback_write_rate(payload_bytes, batch_size, LoopbackWork::Bare)?;
        write_back_everything()?;
        let shaped = loopback_write_rate(payload_bytes, batch_size, LoopbackWork::KafkaShaped)?;
        write_back_everything()?;
        Some((append, loopback, shaped))
    } else {
        None
    };
    let report = runtime()?.block_on(async {
        if args.embedded {
            return produce_embedded(&args, config).await;
        }
        let client = args.connect.client().await?;
        if args.prebuilt_batches {
            return run_prebuilt(client, &args, &config).await;
        }
        run_produce(client, &args, &args.topic, config).await
    })?;
    let mut report = report;
    if let Some((append_before, loopback_before, shaped_before)) = limits_before {
        // And again after the produce run, from a clean page cache again; the better of the two.
        write_back_everything()?;
        let append_after = log_append_rate(args.num_records, args.record_size, batch_size)?;
        write_back_everything()?;
        let loopback_after = loopback_write_rate(payload_bytes, batch_size, LoopbackWork::Bare)?;
        write_back_everything()?;
        let shaped_after =
            loopback_write_rate(payload_bytes, batch_size, LoopbackWork::KafkaShaped)?;
        let shaped_mb = shaped_before.max(shaped_after);
        report.kafka_shaped_loop_mb_per_sec = Some(shaped_mb);
        report.kafka_shaped_loop_ratio = Some(report.mb_per_sec / shaped_mb);
        let log_mb = append_before.max(append_after);
        let loopback_mb = loopback_before.max(loopback_after);
        report.log_append_mb_per_sec = Some(log_mb);
        report.log_ratio = Some(report.mb_per_sec / log_mb);
        report.loopback_write_mb_per_sec = Some(loopback_mb);
        report.loopback_write_ratio = Some(report.mb_per_sec / loopback_mb);
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
            report.records, report.records_per_sec, report.mb_per_sec, report.avg_ms, report.max_ms, report.p50_ms, report.p95_ms, report.p99_ms, report.p999_ms
        );
        if let (Some(loopback), Some(ratio)) =
            (report.loopback_records_per_sec, report.embedded_ratio)
        {
            println!("embedded (in-process) {:.1} records/sec against loopback TCP {loopback:.1}: ratio {ratio:.2}", report.records_per_sec);
        }
        if let (Some(log_mb), Some(ratio)) = (report.log_append_mb_per_sec, report.log_ratio) {
            println!("storage engine append of the same records here: {log_mb:.2} MB/sec; produce / append = {ratio:.2}");
        }
        if let (Some(loopback_mb), Some(ratio)) = (
            report.loopback_write_mb_per_sec,
            report.loopback_write_ratio,
        ) {
            println!("the same bytes sent over loopback TCP and written to a file by hand: {loopback_mb:.2} MB/sec; produce / that = {ratio:.2}");
        }
        if let (Some(shaped_mb), Some(ratio)) = (
            report.kafka_shaped_loop_mb_per_sec,
            report.kafka_shaped_loop_ratio,
        ) {
            println!("the same by hand with a copy and CRC-32C per request each side and acknowledgements (5 in flight): {shaped_mb:.2} MB/sec; produce / that = {ratio:.2}");
        }
    }
    Ok(())
}

/// Writes every dirty page back (coreutils `sync`), so that the next phase does not pay for the
/// writeback of the previous one.
fn write_back_everything() -> anyhow::Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .context("run sync")?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

/// Payload MB/s of appending `n` records of `size` bytes, in batches of about `batch_size`
/// bytes, to a fresh partition (fsync never, as the broker's default).
fn log_append_rate(n: u64, size: usize, batch_size: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let per_batch = (batch_size / (size + 10)).max(1);
    let full = crate::bench::producer_batch(per_batch, size)?;
    let mut log = PartitionLog::create(
        dir.path(),
        TopicPartition::new("compare", 0),
        Arc::new(LogConfig::default()),
    )?;
    let started = Instant::now();
    let mut remaining = n;
    while remaining > 0 {
        if remaining < per_batch as u64 {
            let last = crate::bench::producer_batch(remaining as usize, size)?;
            log.append_as_leader(&last, 0)?;
            break;
        }
        log.append_as_leader(&full, 0)?;
        remaining -= per_batch as u64;
    }
    let elapsed = started.elapsed();
    Ok(n as f64 * size as f64 / 1e6 / elapsed.as_secs_f64())
}

/// What a hand-written loopback loop does besides moving the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopbackWork {
    /// Nothing: the bytes go over loopback TCP and into a file.
    Bare,
    /// The least any Kafka produce does: the sender copies each request's bytes into a buffer
    /// of its own and computes their CRC-32C (as a producer builds and seals a batch), the
    /// receiver checks the CRC before writing (as a broker validates a batch) and acknowledges
    /// each request, with at most five unacknowledged (`max.in.flight.requests.per.connection`).
    KafkaShaped,
}

/// MB/s of a floor under any network produce on this machine: `total` bytes sent over
/// loopback TCP in `chunk`-byte requests by one thread and written to a file by another, by a
/// hand-written loop doing `work` and nothing else (no records, no framing, no protocol).
fn loopback_write_rate(total: u64, chunk: usize, work: LoopbackWork) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    const IN_FLIGHT: u64 = 5;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("loopback.raw");
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let chunk = chunk.max(1);
    let receiver = std::thread::spawn(move || -> anyhow::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut file = std::fs::File::create(&path)?;
        let mut buf = vec![0u8; chunk + 4];
        let mut received = 0u64;
        while received < total {
            let want = (chunk as u64).min(total - received) as usize;
            match work {
                LoopbackWork::Bare => stream.read_exact(&mut buf[..want])?,
                LoopbackWork::KafkaShaped => {
                    stream.read_exact(&mut buf[..want + 4])?;
                    let crc = u32::from_be_bytes([
                        buf[want],
                        buf[want + 1],
                        buf[want + 2],
                        buf[want + 3],
                    ]);
                    anyhow::ensure!(crc32c::crc32c(&buf[..want]) == crc, "loopback CRC mismatch");
                }
            }
            file.write_all(&buf[..want])?;
            received += want as u64;
            if work == LoopbackWork::KafkaShaped {
                stream.write_all(&[1])?;
            }
        }
        // One byte back once everything is in the page cache: the sender's clock stops there.
        stream.write_all(&[1])?;
        Ok(())
    });
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let data = vec![b'x'; chunk];
    let mut request = Vec::with_capacity(chunk + 4);
    let started = Instant::now();
    let (mut sent, mut n_sent, mut n_acked) = (0u64, 0u64, 0u64);
    let mut ack = [0u8; 1];
    while sent < total {
        let n = (chunk as u64).min(total - sent) as usize;
        match work {
            LoopbackWork::Bare => stream.write_all(&data[..n])?,
            LoopbackWork::KafkaShaped => {
                request.clear();
                request.extend_from_slice(&data[..n]);
                let crc = crc32c::crc32c(&request);
                request.extend_from_slice(&crc.to_be_bytes());
                stream.write_all(&request)?;
                n_sent += 1;
                while n_sent - n_acked > IN_FLIGHT {
                    stream.read_exact(&mut ack)?;
                    n_acked += 1;
                }
            }
        }
        sent += n as u64;
    }
    while n_acked < n_sent {
        stream.read_exact(&mut ack)?;
        n_acked += 1;
    }
    stream.read_exact(&mut ack)?;
    let elapsed = started.elapsed();
    receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the loopback receiver panicked"))??;
    Ok(total as f64 / 1e6 / elapsed.as_secs_f64())
}

#[derive(Debug, clap::Args)]
pub struct ConsumePerfArgs {
    #[command(flatten)]
    connect: Connect,
    /// Topic to consume, every partition from the beginning.
    #[arg(long)]
    topic: String,
    /// Stop after this many records.
    #[arg(long)]
    messages: u64,
    /// Fail if the records do not arrive within this long.
    #[arg(long = "timeout-ms", default_value_t = 60_000)]
    timeout_ms: u64,
    /// Start a broker in this process, fill `--topic` with `--messages` records of
    /// `--record-size` bytes, and read them all over loopback TCP and over the in-process path
    /// (embedded mode), twice each in the order TCP, in-process, in-process, TCP; the better run
    /// of each is reported, with their ratio (--bootstrap-server is ignored).
    #[arg(long)]
    embedded: bool,
    /// Bytes per record value, for the records `--embedded` writes first.
    #[arg(long = "record-size", default_value_t = 100)]
    record_size: usize,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ConsumeReport {
    records: u64,
    bytes: u64,
    records_per_sec: f64,
    mb_per_sec: f64,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    loopback_records_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded_ratio: Option<f64>,
}

/// Reads `messages` records of every partition of `topic` from the beginning, with an assigned
/// consumer on `client`.
async fn run_consume(
    client: Arc<sluice_log::client::Client>,
    topic: &str,
    messages: u64,
    timeout_ms: u64,
) -> anyhow::Result<ConsumeReport> {
    let partitions = client
        .topic(topic, false)
        .await
        .with_context(|| format!("topic {topic}"))?
        .leaders
        .len() as i32;
    let assignments = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), StartOffset::Beginning))
        .collect();
    let mut consumer = Consumer::assign(client, assignments, ConsumerConfig::default()).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_millis(timeout_ms);
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < messages {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {records} of {messages} records arrived within {timeout_ms} ms"
        );
        for record in consumer.poll().await? {
            records += 1;
            bytes += record.value.as_ref().map_or(0, |v| v.len() as u64)
                + record.key.as_ref().map_or(0, |k| k.len() as u64);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ConsumeReport {
        records,
        bytes,
        records_per_sec: records as f64 / seconds,
        mb_per_sec: bytes as f64 / 1e6 / seconds,
        seconds,
        loopback_records_per_sec: None,
        embedded_ratio: None,
    })
}

/// `--embedded`: a broker in this process, filled through the in-process path, then read over
/// loopback TCP and in process (ABBA, the better of each).
async fn consume_embedded(args: &ConsumePerfArgs) -> anyhow::Result<ConsumeReport> {
    anyhow::ensure!(
        args.messages > 0 && args.record_size > 0,
        "--messages and --record-size must be at least 1"
    );
    let (_dir, broker) = start_bench_broker()?;
    let in_process_client = broker.client().await?;
    in_process_client
        .topic(&args.topic, true)
        .await
        .with_context(|| format!("topic {}", args.topic))?;
    let value = Bytes::from(vec![b'x'; args.record_size]);
    fill_topic(
        &in_process_client,
        ProducerConfig::default(),
        &args.topic,
        args.messages,
        value,
    )
    .await?;
    let tcp_client = loopback_client(&broker).await?;
    let consume = |client: Arc<sluice_log::client::Client>| {
        run_consume(client, &args.topic, args.messages, args.timeout_ms)
    };
    let tcp_first = consume(tcp_client.clone()).await?;
    let in_first = consume(in_process_client.clone()).await?;
    let in_second = consume(in_process_client).await?;
    let tcp_second = consume(tcp_client).await?;
    let better = |a: ConsumeReport, b: ConsumeReport| {
        if a.records_per_sec >= b.records_per_sec {
            a
        } else {
            b
        }
    };
    let over_tcp = better(tcp_first, tcp_second);
    let mut in_process = better(in_first, in_second);
    in_process.loopback_records_per_sec = Some(over_tcp.records_per_sec);
    in_process.embedded_ratio = Some(in_process.records_per_sec / over_tcp.records_per_sec);
    tokio::task::block_in_place(|| broker.shutdown())?;
    Ok(in_process)
}

pub fn consume(args: ConsumePerfArgs) -> anyhow::Result<()> {
    let report = runtime()?.block_on(async {
        if args.embedded {
            return consume_embedded(&args).await;
        }
        let client = args.connect.client().await?;
        run_consume(client, &args.topic, args.messages, args.timeout_ms).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, seconds");
        println!(
            "{:.4}, {:.4}, {}, {:.1}, {:.3}",
            report.bytes as f64 / 1e6,
            report.mb_per_sec,
            report.records,
            report.records_per_sec,
            report.seconds
        );
        if let (Some(loopback), Some(ratio)) =
            (report.loopback_records_per_sec, report.embedded_ratio)
        {
            println!(
                "embedded (in-process) {:.1} records/sec against loopback TCP {loopback:.1}: ratio {ratio:.2}",
                report.records_per_sec
            );
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct StartPerfArgs {
    /// Start and stop the node this many times and report the fastest start.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct StartReport {
    start_ms: f64,
    spawn_true_ms: f64,
    idle_rss_mb: f64,
}

fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("read /proc/<pid>/status")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok(kb / 1024.0)
}

/// Times `sluice start` from spawn until it prints where it listens (against spawning `true`,
/// the floor for starting any process here), and its idle resident memory.
pub fn start(args: StartPerfArgs) -> anyhow::Result<()> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe()?;
    let mut best_start = f64::MAX;
    let mut best_true = f64::MAX;
    let mut idle_rss = 0.0;
    for _ in 0..args.rounds.max(1) {
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let mut child = Command::new(&exe)
            .args([
                "start",
                "--override",
                "listeners=PLAINTEXT://127.0.0.1:0",
                "--override",
                "connect.rest.port=0",
            ])
            .env("SLUICE_LOG_DIRS", dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(
            line.starts_with("Sluice listening"),
            "unexpected first line from sluice start: {line:?}"
        );
        best_start = best_start.min(elapsed);
        idle_rss = rss_mb(child.id())?;
        // SIGTERM through the kill command: a clean shutdown, as an operator would stop it.
        Command::new("kill").arg(child.id().to_string()).status()?;
        child.wait()?;
        let started = Instant::now();
        Command::new("true").status()?;
        best_true = best_true.min(started.elapsed().as_secs_f64() * 1e3);
    }
    let report = StartReport {
        start_ms: best_start,
        spawn_true_ms: best_true,
        idle_rss_mb: idle_rss,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "sluice start: listening after {:.1} ms (spawning `true`: {:.1} ms); idle RSS {:.1} MB",
            report.start_ms, report.spawn_true_ms, report.idle_rss_mb
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct GroupPerfArgs {
    /// Members already in the group before one more joins.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Partitions of the topic the group consumes.
    #[arg(long, default_value_t = 100)]
    partitions: i32,
    /// `heartbeat.interval.ms` of the members: how soon they hear of a rebalance.
    #[arg(long = "heartbeat-interval-ms", default_value_t = 100)]
    heartbeat_interval_ms: u64,
    /// `partition.assignment.strategy` of the members: range, roundrobin, sticky or
    /// cooperative-sticky (incremental: a join takes two rebalances, and members keep reading
    /// the partitions they keep).
    #[arg(long, default_value = "range")]
    strategy: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct GroupReport {
    strategy: String,
    members: usize,
    partitions: i32,
    heartbeat_interval_ms: u64,
    first_settle_ms: f64,
    join_settle_ms: f64,
}

/// One member's view, shared with the bench: generation and partitions.
type MemberView = Arc<std::sync::Mutex<(i32, Vec<TopicPartition>)>>;

/// Time for a group to settle: `--members` members joining a new group, then one more member
/// joining the stable group (every member polling, as consumers do), against an in-process
/// broker over loopback TCP with `group.initial.rebalance.delay.ms=0`.
pub fn group(args: GroupPerfArgs) -> anyhow::Result<()> {
    use sluice_log::client::group_consumer::{GroupConfig, GroupConsumer};
    anyhow::ensure!(
        args.members > 0 && args.partitions > 0,
        "--members and --partitions must be at least 1"
    );
    let assignor = sluice_log::client::group_consumer::Assignor::from_name(&args.strategy)
        .with_context(|| {
            format!(
                "--strategy {}: expected range, roundrobin, sticky or cooperative-sticky",
                args.strategy
            )
        })?;
    let dir = tempfile::tempdir()?;
    let props: std::collections::BTreeMap<String, String> = [
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        ("log.dirs".to_string(), dir.path().display().to_string()),
        (
            "group.initial.rebalance.delay.ms".to_string(),
            "0".to_string(),
        ),
    ]
    .into();
    let broker = sluice_log::embedded::EmbeddedBroker::start(&props)?;
    let bootstrap = broker
        .bootstrap()
        .context("the benchmark broker listens on loopback")?;
    let report = runtime()?.block_on(async {
        let admin = sluice_log::client::Client::connect(&bootstrap, Default::default()).await?;
        let topic = sluice_log::client::NewTopic {
            name: "settle".into(),
            partitions: args.partitions,
            replication_factor: 1,
            configs: Default::default(),
        };
        if let Some((_, Err(err))) = admin
            .create_topics(&[topic], false)
            .await?
            .into_iter()
            .next()
        {
            return Err(anyhow::Error::new(err).context("create topic settle"));
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut views: Vec<MemberView> = Vec::new();
        let mut tasks = Vec::new();
        let spawn_member =
            |views: &mut Vec<MemberView>,
             tasks: &mut Vec<tokio::task::JoinHandle<anyhow::Result<()>>>| {
                let view: MemberView = Arc::new(std::sync::Mutex::new((-1, Vec::new())));
                views.push(view.clone());
                let bootstrap = bootstrap.clone();
                let stop = stop.clone();
                let heartbeat = Duration::from_millis(args.heartbeat_interval_ms);
                tasks.push(tokio::spawn(async move {
                    let client =
                        sluice_log::client::Client::connect(&bootstrap, Default::default()).await?;
                    let mut config = GroupConfig::new("settling");
                    config.heartbeat_interval = heartbeat;
                    config.session_timeout = Duration::from_secs(10);
                    config.fetch.max_wait = Duration::from_millis(50);
                    config.assignment_strategy = vec![assignor];
                    let mut member =
                        GroupConsumer::subscribe(client, vec!["settle".into()], config).await?;
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        member.poll().await?;
                        let (_, generation) = member.member();
                        if let Ok(mut v) = view.lock() {
                            *v = (generation, member.assignment().to_vec());
                        }
                    }
                    member.leave().await?;
                    anyhow::Ok(())
                }));
            };
        // Settled: every member in the same (highest) generation, every partition owned once.
        let settled = |views: &[MemberView], n: usize| -> bool {
            let snapshot: Vec<(i32, Vec<TopicPartition>)> = views
                .iter()
                .filter_map(|v| v.lock().ok().map(|v| v.clone()))
                .collect();
            let generation = snapshot.iter().map(|(g, _)| *g).max().unwrap_or(-1);
            let mut owned: Vec<i32> = snapshot
                .iter()
                .flat_map(|(_, a)| a.iter().map(|tp| tp.partition))
                .collect();
            owned.sort_unstable();
            snapshot.len() == n
                && generation >= 0
                && snapshot.iter().all(|(g, _)| *g == generation)
                && owned == (0..args.partitions).collect::<Vec<_>>()
        };
        let started = Instant::now();
        for _ in 0..args.members {
            spawn_member(&mut views, &mut tasks);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !settled(&views, args.members) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the first {} members did not settle within 60 s",
                args.members
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let first_settle = started.elapsed();
        let joined = Instant::now();
        spawn_member(&mut views, &mut tasks);
        while !settled(&views, args.members + 1) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the group did not settle after a join within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let join_settle = joined.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Release);
        for task in tasks {
            task.await.context("member task")??;
        }
        anyhow::Ok(GroupReport {
            strategy: args.strategy.clone(),
            members: args.members,
            partitions: args.partitions,
            heartbeat_interval_ms: args.heartbeat_interval_ms,
            first_settle_ms: first_settle.as_secs_f64() * 1e3,
            join_settle_ms: join_settle.as_secs_f64() * 1e3,
        })
    })?;
    broker.shutdown()?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} members over {} partitions settled in {:.1} ms; after one more joined, in {:.1} ms (heartbeat.interval.ms={}, {})",
            report.members, report.partitions, report.first_settle_ms, report.join_settle_ms, report.heartbeat_interval_ms, report.strategy
        );
    }
    Ok(())
}
