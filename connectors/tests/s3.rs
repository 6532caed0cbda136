//! The S3 connectors against a local S3 server (moto): topic → S3 sink → bucket → S3 source
//! → topic, equal record for record in JSON, Avro and Parquet; objects named as Confluent's
//! sink names them; a sink restarted from its committed offsets rewrites the same objects
//! with the same bytes; large files go up in parts; a missing bucket and an unreachable
//! endpoint fail the task with messages that name them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use sluice_connect::connector::Props;
use sluice_connect::converter::{Converter, JsonConverter};
use sluice_connect::data::{logical, SchemaBuilder, Struct, Value};
use sluice_connectors::s3::Store;
use sluice_log::client::Client;

fn s3_props(endpoint: &str, bucket: &str, pairs: &[(&str, &str)]) -> Props {
    let mut config = props(pairs);
    for (k, v) in [
        ("s3.bucket.name", bucket),
        ("store.url", endpoint),
        ("s3.region", "us-east-1"),
        ("aws.access.key.id", "test"),
        ("aws.secret.access.key", "test"),
        ("s3.part.retries", "1"),
    ] {
        config.insert(k.to_string(), v.to_string());
    }
    config
}

/// Records with a schema, as JsonConverter (schemas.enable=true) writes them.
fn envelopes(n: usize, partition: i32) -> Vec<Bytes> {
    let schema = SchemaBuilder::struct_()
        .name("com.example.Event")
        .field("id", SchemaBuilder::int64().build().unwrap())
        .field("kind", SchemaBuilder::string().optional().build().unwrap())
        .field("amount", logical::decimal(2).optional().build().unwrap())
        .field("at", logical::timestamp().build().unwrap())
        .field("ok", SchemaBuilder::boolean().build().unwrap())
        .build()
        .unwrap();
    let converter = JsonConverter::new(true);
    (0..n)
        .map(|i| {
            let id = i as i64 * 3 + i64::from(partition);
            let value = Value::Struct(
                Struct::from_values(
                    schema.clone(),
                    vec![
                        Value::Int64(id),
                        if id % 4 == 0 {
                            Value::Null
                        } else {
                            Value::String(format!("kind {} é", id % 7))
                        },
                        if id % 5 == 0 {
                            Value::Null
                        } else {
                            Value::Bytes(logical::decimal_bytes(i128::from(id) * 37 - 500))
                        },
                        Value::Int64(1_700_000_000_000 + id * 1000),
                        Value::Boolean(id % 2 == 0),
                    ],
                )
                .unwrap(),
            );
            converter
                .from_connect_data("t", Some(&schema), &value)
                .unwrap()
                .unwrap()
        })
        .collect()
}

/// Schemaless JSON objects (keys in order, as a schemaless converter writes them back).
fn plain_json(n: usize, partition: i32) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            Bytes::from(format!(
                r#"{{"id":{},"kind":"k{}","note":"é \"q\""}}"#,
                i * 3 + partition as usize,
                i % 5
            ))
        })
        .collect()
}

async fn keys(store: &Store, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys
}

async fn round_trip(
    client: Arc<Client>,
    dir: std::path::PathBuf,
    format: &str,
    class: &str,
    ext: &str,
) {
    let endpoint = moto();
    let bucket = format!("round-trip-{format}");
    create_bucket(endpoint, &bucket);
    let topic = format!("events-{format}");
    let restored = format!("restored-{format}");
    create_topic(&client, &topic, 3).await;
    create_topic(&client, &restored, 3).await;
    let schemaless = format == "json";
    let mut originals = Vec::new();
    for p in 0..3 {
        let values = if schemaless {
            plain_json(250, p)
        } else {
            envelopes(250, p)
        };
        produce_values(&client, &topic, p, &values).await;
        originals.push(values);
    }
    let converters: Vec<(&str, &str)> = if schemaless {
        vec![
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
        ]
    } else {
        vec![]
    };
    let worker = worker(&client, &dir);
    let mut sink = s3_props(
        endpoint,
        &bucket,
        &[
            ("connector.class", "io.confluent.connect.s3.S3SinkConnector"),
            ("topics", &topic),
            ("format.class", class),
            ("storage.class", "io.confluent.connect.s3.storage.S3Storage"),
            ("flush.size", "100"),
        ],
    );
    sink.extend(props(&converters));
    worker.create_connector("s3-out", sink).await.unwrap();
    let store = Store::from_props(&s3_props(endpoint, &bucket, &[])).unwrap();
    await_condition(
        Duration::from_secs(40),
        "six files in the bucket",
        || async { keys(&store, "topics").await.len() == 6 },
    )
    .await;
    let written = keys(&store, "topics").await;
    assert_eq!(
        written[0],
        format!("topics/{topic}/partition=0/{topic}+0+0000000000{ext}"),
        "{written:?}"
    );
    assert_eq!(
        written[1],
        format!("topics/{topic}/partition=0/{topic}+0+0000000100{ext}")
    );
    let mut source = s3_props(
        endpoint,
        &bucket,
        &[
            (
                "connector.class",
                "io.confluent.connect.s3.source.S3SourceConnector",
            ),
            ("format.class", class),
            ("topic.regex.list", &format!("{restored}:{topic}")),
            ("s3.poll.interval.ms", "200"),
            ("tasks.max", "2"),
        ],
    );
    source.extend(props(&converters));
    worker
        .create_connector("s3-in", source.clone())
        .await
        .unwrap();
    for p in 0..3 {
        await_condition(Duration::from_secs(40), "the restored records", || async {
            client.list_offset(&restored, p, -1).await.unwrap_or(0) == 200
        })
        .await;
        let back = values_in(&client, &restored, p).await;
        let expected: Vec<Option<Bytes>> = originals[p as usize][..200]
            .iter()
            .cloned()
            .map(Some)
            .collect();
        assert_eq!(back, expected, "partition {p} of {restored}");
    }
    // The source stops (committing where it is); more records reach the bucket; started
    // again, it restores only the new files.
    worker.delete_connector("s3-in").await.unwrap();
    for p in 0..3 {
        let more = if schemaless {
            plain_json(350, p)
        } else {
            envelopes(350, p)
        };
        produce_values(&client, &topic, p, &more[250..]).await;
        originals[p as usize] = more;
    }
    await_condition(
        Duration::from_secs(40),
        "nine files in the bucket",
        || async { keys(&store, "topics").await.len() == 9 },
    )
    .await;
    worker.create_connector("s3-in", source).await.unwrap();
    for p in 0..3 {
        await_condition(
            Duration::from_secs(40),
            "the new files restored",
            || async { client.list_offset(&restored, p, -1).await.unwrap_or(0) >= 300 },
        )
        .await;
        let back = values_in(&client, &restored, p).await;
        let expected: Vec<Option<Bytes>> = originals[p as usize][..300]
            .iter()
            .cloned()
            .map(Some)
            .collect();
        assert_eq!(
            back, expected,
            "partition {p} of {restored} after the restart"
        );
    }
    let status = worker.status("s3-out").await.unwrap();
    assert_eq!(status.tasks, vec![sluice_connect::worker::State::Running]);
    worker.shutdown().await.unwrap();
}

#[test]
fn parquet_files_round_trip_through_s3() {
    on_node(Duration::from_secs(120), |client, dir| async move {
        round_trip(
            client,
            dir,
            "parquet",
            "io.confluent.connect.s3.format.parquet.ParquetFormat",
            ".snappy.parquet",
        )
        .await;
    });
}

#[test]
fn avro_files_round_trip_through_s3() {
    on_node(Duration::from_secs(120), |client, dir| async move {
        round_trip(
            client,
            dir,
            "avro",
            "io.confluent.connect.s3.format.avro.AvroFormat",
            ".avro",
        )
        .await;
    });
}

#[test]
fn json_files_round_trip_through_s3() {
    on_node(Duration::from_secs(120), |client, dir| async move {
        round_trip(
            client,
            dir,
            "json",
            "io.confluent.connect.s3.format.json.JsonFormat",
            ".json",
        )
        .await;
    });
}

#[test]
fn a_restarted_sink_rewrites_the_same_objects_and_large_files_go_up_in_parts() {
    on_node(Duration::from_secs(120), |client, dir| async move {
        let endpoint = moto();
        create_bucket(endpoint, "restarts");
        create_topic(&client, "lines", 1).await;
        produce_values(&client, "lines", 0, &plain_json(250, 0)).await;
        let worker = worker(&client, &dir);
        let config = s3_props(
            endpoint,
            "restarts",
            &[
                ("connector.class", "S3SinkConnector"),
                ("topics", "lines"),
                (
                    "format.class",
                    "io.confluent.connect.s3.format.json.JsonFormat",
                ),
                ("flush.size", "100"),
                (
                    "value.converter",
                    "org.apache.kafka.connect.json.JsonConverter",
                ),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        worker
            .create_connector("lines-out", config.clone())
            .await
            .unwrap();
        let store = Store::from_props(&s3_props(endpoint, "restarts", &[])).unwrap();
        await_condition(Duration::from_secs(30), "two files", || async {
            keys(&store, "topics/lines").await.len() == 2
        })
        .await;
        let first = store
            .get("topics/lines/partition=0/lines+0+0000000100.json")
            .await
            .unwrap();
        // The sink stops with offset 200 committed; its offsets are reset, so it reads
        // everything again and writes the same objects, byte for byte.
        worker.stop_connector("lines-out").await.unwrap();
        worker.reset_offsets("lines-out").await.unwrap();
        worker.resume_connector("lines-out").await.unwrap();
        produce_values(&client, "lines", 0, &plain_json(60, 1)).await;
        await_condition(Duration::from_secs(30), "three files", || async {
            keys(&store, "topics/lines").await.len() == 3
        })
        .await;
        assert_eq!(
            store
                .get("topics/lines/partition=0/lines+0+0000000100.json")
                .await
                .unwrap(),
            first
        );
        let third = store
            .get("topics/lines/partition=0/lines+0+0000000200.json")
            .await
            .unwrap();
        assert_eq!(
            third
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count(),
            100
        );

        // 60 records of 100 KiB: a 6 MiB file, above the 5 MiB part size.
        create_topic(&client, "big", 1).await;
        let big: Vec<Bytes> = (0..60)
            .map(|i| Bytes::from(format!("\"{}{}\"", i, "x".repeat(100 * 1024))))
            .collect();
        produce_values(&client, "big", 0, &big).await;
        let mut config = config;
        config.insert("topics".into(), "big".into());
        config.insert("flush.size".into(), "60".into());
        config.insert("s3.part.size".into(), "5242880".into());
        worker.create_connector("big-out", config).await.unwrap();
        await_condition(Duration::from_secs(40), "the large file", || async {
            keys(&store, "topics/big").await.len() == 1
        })
        .await;
        let object = store
            .get("topics/big/partition=0/big+0+0000000000.json")
            .await
            .unwrap();
        assert!(object.len() > 5 * 1024 * 1024, "{} bytes", object.len());
        // An object uploaded in parts has an ETag ending in -<parts>.
        let head = std::process::Command::new("curl")
            .args([
                "-sI",
                &format!("{endpoint}/restarts/topics/big/partition=0/big+0+0000000000.json"),
            ])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&head.stdout).to_lowercase();
        let etag = head
            .lines()
            .find(|l| l.starts_with("etag:"))
            .unwrap_or_default()
            .to_string();
        assert!(etag.trim_end().ends_with("-2\""), "{etag}");
        assert_eq!(
            object
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count(),
            60
        );
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn a_missing_bucket_and_an_unreachable_endpoint_fail_the_task_by_name() {
    on_node(Duration::from_secs(90), |client, dir| async move {
        let endpoint = moto();
        let worker = worker(&client, &dir);
        let base = [
            ("connector.class", "S3SinkConnector"),
            ("topics", "anything"),
            (
                "format.class",
                "io.confluent.connect.s3.format.json.JsonFormat",
            ),
            ("flush.size", "10"),
        ];
        worker
            .create_connector("no-bucket", s3_props(endpoint, "no-such-bucket", &base))
            .await
            .unwrap();
        let reason = await_failure(&worker, "no-bucket").await;
        assert!(
            reason.contains("no-such-bucket") && reason.contains("does it exist"),
            "{reason}"
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let nowhere = format!("http://127.0.0.1:{closed}");
        worker
            .create_connector("no-endpoint", s3_props(&nowhere, "b", &base))
            .await
            .unwrap();
        let reason = await_failure(&worker, "no-endpoint").await;
        assert!(reason.contains(&nowhere), "{reason}");
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn time_partitioned_gzipped_json_lands_in_hourly_directories() {
    on_node(Duration::from_secs(90), |client, dir| async move {
        use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
        let endpoint = moto();
        create_bucket(endpoint, "hourly");
        create_topic(&client, "clicks", 1).await;
        // 2023-11-14T22:00:00Z and an hour later: 10 records each.
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        for i in 0..20i64 {
            let at = 1_700_000_000_000 - 800_000 + (i / 10) * 3_600_000 + i;
            producer
                .send(ProducerRecord {
                    topic: "clicks".into(),
                    partition: Some(0),
                    value: Some(Bytes::from(format!(r#"{{"n":{i}}}"#))),
                    timestamp: Some(at),
                    ..Default::default()
                })
                .await
                .unwrap()
                .await
                .unwrap();
        }
        producer.close().await;
        let worker = worker(&client, &dir);
        let config = s3_props(
            endpoint,
            "hourly",
            &[
                ("connector.class", "S3SinkConnector"),
                ("topics", "clicks"),
                (
                    "format.class",
                    "io.confluent.connect.s3.format.json.JsonFormat",
                ),
                ("s3.compression.type", "gzip"),
                ("flush.size", "1000"),
                ("rotate.interval.ms", "3600000"),
                (
                    "partitioner.class",
                    "io.confluent.connect.storage.partitioner.HourlyPartitioner",
                ),
                ("locale", "en-US"),
                ("timezone", "UTC"),
                ("timestamp.extractor", "Record"),
                (
                    "value.converter",
                    "org.apache.kafka.connect.json.JsonConverter",
                ),
                ("value.converter.schemas.enable", "false"),
            ],
        );
        worker.create_connector("clicks-out", config).await.unwrap();
        let store = Store::from_props(&s3_props(endpoint, "hourly", &[])).unwrap();
        // The first hour's file is written when a record an hour later arrives.
        await_condition(Duration::from_secs(30), "the first hour's file", || async {
            !keys(&store, "topics").await.is_empty()
        })
        .await;
        let written = keys(&store, "topics").await;
        assert_eq!(
            written,
            vec![
                "topics/clicks/year=2023/month=11/day=14/hour=22/clicks+0+0000000000.json.gz"
                    .to_string()
            ]
        );
        let gz = store.get(&written[0]).await.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        assert_eq!(text.lines().count(), 10);
        assert_eq!(text.lines().next(), Some(r#"{"n":0}"#));
        worker.shutdown().await.unwrap();
    });
}
