//! `sluice bench s3`: the S3 sink writing Parquet (or another format) from a topic to an
//! S3-compatible server, beside the raw put speed of the same server in the same run: the
//! same number of objects of the same sizes, put one after another as the sink puts them.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use sluice_connect::connector::Props;
use sluice_connect::worker::{State, Worker, WorkerConfig};
use sluice_connectors::s3::Store;
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};

use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct S3BenchArgs {
    /// The S3 server's URL (`store.url`), such as http://127.0.0.1:5000 for moto or MinIO.
    #[arg(long)]
    endpoint: String,
    /// The bucket (created if missing, with an unsigned PUT as local servers take).
    #[arg(long, default_value = "sluice-bench")]
    bucket: String,
    /// Records to write (a multiple of --flush-size, so every one lands in a file).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// The sink's flush.size: records per file.
    #[arg(long, default_value_t = 100_000)]
    flush_size: u64,
    /// parquet, avro or json.
    #[arg(long, default_value = "parquet")]
    format: String,
    /// `aws.access.key.id` and `aws.secret.access.key` (any for moto).
    #[arg(long, default_value = "test")]
    key: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct S3Report {
    records: u64,
    format: String,
    files: usize,
    /// The records' bytes in the topic (JSON with schemas: what the sink consumes).
    record_bytes: u64,
    /// The values' bytes without the schema part of the envelope.
    payload_bytes: u64,
    object_bytes: u64,
    sink_records_per_sec: f64,
    sink_record_mb_per_sec: f64,
    sink_payload_mb_per_sec: f64,
    raw_put_mb_per_sec: f64,
    /// The sink's MB/s of records against the server's raw put MB/s.
    sink_share_of_raw_put: f64,
}

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn s3_bench(args: S3BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.records > 0 && args.flush_size > 0,
        "--records and --flush-size must be at least 1"
    );
    anyhow::ensure!(
        args.records.is_multiple_of(args.flush_size),
        "--records must be a multiple of --flush-size"
    );
    let class = match args.format.as_str() {
        "parquet" => "io.confluent.connect.s3.format.parquet.ParquetFormat",
        "avro" => "io.confluent.connect.s3.format.avro.AvroFormat",
        "json" => "io.confluent.connect.s3.format.json.JsonFormat",
        other => anyhow::bail!("--format {other}: expected parquet, avro or json"),
    };
    let status = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-X",
            "PUT",
            &format!("{}/{}", args.endpoint.trim_end_matches('/'), args.bucket),
        ])
        .status()
        .context("curl creates the bucket")?;
    anyhow::ensure!(status.success(), "creating bucket {} failed", args.bucket);
    let s3 = |pairs: &[(&str, &str)]| {
        let mut p = props(pairs);
        for (k, v) in [
            ("s3.bucket.name", args.bucket.as_str()),
            ("store.url", args.endpoint.as_str()),
            ("s3.region", "us-east-1"),
            ("aws.access.key.id", args.key.as_str()),
            ("aws.secret.access.key", args.key.as_str()),
        ] {
            p.insert(k.into(), v.into());
        }
        p
    };
    let store = Store::from_props(&s3(&[]))?;
    let dir = tempfile::tempdir()?;
    let node = sluice_log::Sluice::embedded(dir.path().join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let run = format!("{}", std::process::id());
    let topic = format!("bench-s3-{run}");
    let records = args.records;
    let report = runtime()?.block_on(async {
        let client = node.client().await?;
        let (record_bytes, payload_bytes) = fill(&client, &topic, records).await?;
        let config = WorkerConfig::from_props(&props(&[
            (
                "offset.storage.file.filename",
                dir.path()
                    .join("connect.offsets")
                    .to_str()
                    .unwrap_or_default(),
            ),
            ("offset.flush.interval.ms", "1000"),
        ]))?;
        let worker = Worker::new(client.clone(), config, sluice_connectors::plugins())?.shared();
        let flush = args.flush_size.to_string();
        let topics_dir = format!("bench-{run}");
        let sink = s3(&[
            ("connector.class", "io.confluent.connect.s3.S3SinkConnector"),
            ("topics", &topic),
            ("topics.dir", &topics_dir),
            ("format.class", class),
            ("flush.size", &flush),
            ("consumer.override.max.poll.records", "10000"),
        ]);
        let expected = (records / args.flush_size) as usize;
        let started = Instant::now();
        worker.create_connector("bench-s3", sink).await?;
        let deadline = started + Duration::from_secs(900);
        let objects = loop {
            let objects = store.list(&topics_dir).await?;
            if objects.len() >= expected {
                break objects;
            }
            if let Some(status) = worker.status("bench-s3").await {
                if let Some(State::Failed(reason)) =
                    status.tasks.iter().find(|t| matches!(t, State::Failed(_)))
                {
                    anyhow::bail!("the S3 sink failed: {reason}");
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the sink wrote {} of {expected} files in 900 s",
                objects.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let elapsed = started.elapsed();
        worker.shutdown().await?;
        // The limit: the same objects' sizes, put one after another.
        let sizes: Vec<u64> = objects.iter().map(|(_, size)| *size).collect();
        let object_bytes: u64 = sizes.iter().sum();
        let raw_started = Instant::now();
        for (i, size) in sizes.iter().enumerate() {
            let body: Vec<u8> = (0..*size).map(|b| (b % 251) as u8).collect();
            store.put(&format!("raw-{run}/{i}"), body).await?;
        }
        let raw = raw_started.elapsed();
        let mb = |bytes: u64, t: Duration| bytes as f64 / 1e6 / t.as_secs_f64();
        anyhow::Ok(S3Report {
            records,
            format: args.format.clone(),
            files: objects.len(),
            record_bytes,
            payload_bytes,
            object_bytes,
            sink_records_per_sec: records as f64 / elapsed.as_secs_f64(),
            sink_record_mb_per_sec: mb(record_bytes, elapsed),
            sink_payload_mb_per_sec: mb(payload_bytes, elapsed),
            raw_put_mb_per_sec: mb(object_bytes, raw),
            sink_share_of_raw_put: mb(record_bytes, elapsed) / mb(object_bytes, raw),
        })
    })?;
    node.shutdown()?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "s3 sink ({}): {} records ({:.1} MB in the topic, {:.1} MB of values without the schema envelope) into {} files of {:.1} MB: {:.0} records/sec, {:.1} MB/s of records ({:.1} MB/s of values); raw puts of the same objects {:.1} MB/s: the sink takes in records at {:.0}% of the server's put speed",
            report.format,
            report.records,
            report.record_bytes as f64 / 1e6,
            report.payload_bytes as f64 / 1e6,
            report.files,
            report.object_bytes as f64 / 1e6 / report.files.max(1) as f64,
            report.sink_records_per_sec,
            report.sink_record_mb_per_sec,
            report.sink_payload_mb_per_sec,
            report.raw_put_mb_per_sec,
            100.0 * report.sink_share_of_raw_put
        );
    }
    Ok(())
}

/// Puts `records` records (JSON with schemas: an order of eight fields) into `topic`; their
/// bytes, and the bytes of their payloads alone.
async fn fill(
    client: &std::sync::Arc<sluice_log::client::Client>,
    topic: &str,
    records: u64,
) -> anyhow::Result<(u64, u64)> {
    use sluice_connect::converter::{Converter, JsonConverter};
    use sluice_connect::data::{logical, SchemaBuilder, Struct, Value};
    let schema = SchemaBuilder::struct_()
        .name("bench.Order")
        .field("id", SchemaBuilder::int64().build()?)
        .field("customer", SchemaBuilder::string().build()?)
        .field("country", SchemaBuilder::string().build()?)
        .field("quantity", SchemaBuilder::int32().build()?)
        .field("price", SchemaBuilder::float64().build()?)
        .field("amount", logical::decimal(2).build()?)
        .field("paid", SchemaBuilder::boolean().build()?)
        .field("at", logical::timestamp().build()?)
        .build()?;
    let with_schema = JsonConverter::new(true);
    let without = JsonConverter::new(false);
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            linger: Duration::from_millis(5),
            ..ProducerConfig::default()
        },
    );
    let (mut bytes, mut payload) = (0u64, 0u64);
    let mut deliveries = Vec::new();
    for i in 0..records {
        let value = Value::Struct(Struct::from_values(
            schema.clone(),
            vec![
                Value::Int64(i as i64),
                Value::String(format!("customer-{:07}", i % 1_000_000)),
                Value::String(["FR", "DE", "US", "JP", "BR"][(i % 5) as usize].into()),
                Value::Int32((i % 17) as i32),
                Value::Float64((i % 1000) as f64 * 0.37),
                Value::Bytes(logical::decimal_bytes(i128::from(i % 100_000) * 13)),
                Value::Boolean(i.is_multiple_of(3)),
                Value::Int64(1_700_000_000_000 + i as i64),
            ],
        )?);
        let encoded: Option<Bytes> = with_schema.from_connect_data(topic, Some(&schema), &value)?;
        payload += without
            .from_connect_data(topic, Some(&schema), &value)?
            .map_or(0, |b| b.len() as u64);
        bytes += encoded.as_ref().map_or(0, |b| b.len() as u64);
        deliveries.push(
            producer
                .send(ProducerRecord {
                    topic: topic.into(),
                    partition: Some(0),
                    value: encoded,
                    ..Default::default()
                })
                .await?,
        );
        if deliveries.len() >= 100_000 {
            for d in deliveries.drain(..) {
                d.await?;
            }
        }
    }
    producer.flush().await;
    for d in deliveries {
        d.await?;
    }
    producer.close().await;
    Ok((bytes, payload))
}
