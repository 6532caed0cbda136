//! Exactly-once source connectors (KIP-618) on distributed workers with
//! `exactly.once.source.support=enabled`: records and source offsets in one transaction per
//! boundary, a worker killed mid-stream and its task resumed elsewhere with every record once,
//! connector-defined boundaries, Kafka's validation messages, and sinks that read
//! `read_committed`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use sluice_connect::rest::RestClient;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;
use sluice_log::embedded::EmbeddedBroker;
use sluice_log::TopicPartition;

use common::*;

const EOS: &[(&str, &str)] = &[("exactly.once.source.support", "enabled")];

fn node(dir: &std::path::Path) -> EmbeddedBroker {
    sluice_log::Sluice::embedded(dir.join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .config(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "100",
        )
        .start()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The numbers in partition 0 of `topic` (the counting sources' values, JSON with schema), read
/// with `isolation` until the end offset at the call.
async fn numbers_in(client: &Arc<Client>, topic: &str, isolation: i8) -> Vec<i64> {
    let end = client.list_offset(topic, 0, -1).await.unwrap();
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(TopicPartition::new(topic, 0), StartOffset::Beginning)],
        ConsumerConfig {
            isolation_level: isolation,
            ..ConsumerConfig::default()
        },
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while consumer.position(topic, 0).unwrap() < end {
        for record in consumer.poll().await.unwrap() {
            let value: serde_json::Value =
                serde_json::from_slice(&record.value.unwrap_or_default()).unwrap();
            seen.push(value["payload"].as_i64().unwrap());
        }
    }
    seen
}

async fn create(rest: &RestClient, name: &str, config: serde_json::Value) {
    let (status, body) = rest
        .request("PUT", &format!("/connectors/{name}/config"), Some(&config))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_killed_workers_source_task_resumes_elsewhere_with_every_record_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let a = WorkerProcess::start_with(&node, EOS);
    let runtime = runtime();
    let limit = 30_000;
    let client = runtime.block_on(async {
        let client = node.client().await.unwrap();
        let rest = RestClient::new(&a.url()).unwrap();
        // `required` with a connector that cannot say (CountingSource does not implement
        // exactly_once_support): refused, with Kafka's message.
        let (status, body) = rest
            .request(
                "PUT",
                "/connectors/count/config",
                Some(
                    &json!({"connector.class": "CountingSource", "topic": "eos-numbers",
                    "limit": limit.to_string(), "exactly.once.support": "required"}),
                ),
            )
            .await
            .unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("preflight validation of exactly-once")),
            "{body}"
        );
        client
    });
    let (a, client) = runtime.block_on(async move {
        let rest = RestClient::new(&a.url()).unwrap();
        // One transaction per poll (the default boundary), and one per 300 ms, which spans
        // many batches: the broker holds some of its records when the worker dies.
        create(
            &rest,
            "count",
            json!({"connector.class": "CountingSource", "topic": "eos-numbers",
                "limit": limit.to_string()}),
        )
        .await;
        create(
            &rest,
            "timed",
            json!({"connector.class": "CountingSource", "topic": "eos-timed",
                "limit": limit.to_string(), "transaction.boundary": "interval",
                "transaction.boundary.interval.ms": "300"}),
        )
        .await;
        // Killed mid-stream: once some records are out, committed or not.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for topic in ["eos-numbers", "eos-timed"] {
            while client.list_offset(topic, 0, -1).await.unwrap_or(0) < 3_000 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{topic}: nothing written"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        (a, client)
    });
    a.kill();
    let b = WorkerProcess::start_with(&node, EOS);
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(90), async {
            // The task's transactional id is Kafka Connect's.
            let listed = client.list_transactions(&[]).await.unwrap();
            assert!(
                listed
                    .iter()
                    .any(|(_, t)| t.transactional_id == "connect-cluster-count-0"),
                "{listed:?}"
            );
            for topic in ["eos-numbers", "eos-timed"] {
                loop {
                    let committed = numbers_in(&client, topic, 1).await;
                    if committed.len() >= limit as usize {
                        let expected: Vec<i64> = (0..limit).collect();
                        assert_eq!(committed, expected, "{topic}: every number once, in order");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            // The killed worker's open transaction was aborted: what it had written of it
            // is in the log, and read_committed consumers never saw it (a kill that falls
            // between two transactions leaves nothing to abort: it happened once in CI).
            let everything = numbers_in(&client, "eos-timed", 0).await;
            assert!(everything.len() >= limit as usize, "{}", everything.len());
            // The offsets were committed with the records: the last one says where it ends.
            let rest = RestClient::new(&b.url()).unwrap();
            await_get(&rest, "/connectors/count/offsets", |body| {
                body["offsets"][0]["offset"]["next"] == json!(limit)
            })
            .await;
        })
        .await
        .expect("the survivor finishes within 90 s");
    });
    b.shutdown();
    drop(runtime);
    node.shutdown().unwrap();
}

#[test]
fn connector_defined_boundaries_commit_and_abort_where_the_task_says() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let worker = WorkerProcess::start_with(&node, EOS);
    let runtime = runtime();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let client = node.client().await.unwrap();
            let rest = RestClient::new(&worker.url()).unwrap();
            create(
                &rest,
                "bounded",
                json!({"connector.class": "BoundarySource", "topic": "bounded",
                    "limit": "120", "transaction.boundary": "connector",
                    "exactly.once.support": "required"}),
            )
            .await;
            let expected: Vec<i64> = (0..30).chain(50..120).collect();
            loop {
                let committed = numbers_in(&client, "bounded", 1).await;
                if committed.len() >= expected.len() {
                    assert_eq!(committed, expected);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // The aborted numbers were written, never committed, and are not sent again.
            let everything = numbers_in(&client, "bounded", 0).await;
            assert_eq!(everything, (0..120).collect::<Vec<i64>>());
        })
        .await
        .expect("within 60 s");
    });
    worker.shutdown();
    drop(runtime);
    node.shutdown().unwrap();
}

#[test]
fn exactly_once_settings_are_checked_with_kafkas_messages() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    // A worker without exactly-once support.
    let worker = WorkerProcess::start(&node);
    let runtime = runtime();
    runtime.block_on(async {
        let rest = RestClient::new(&worker.url()).unwrap();
        let refused = |config: serde_json::Value| {
            let rest = &rest;
            async move {
                let (status, body) = rest
                    .request("PUT", "/connectors/checked/config", Some(&config))
                    .await
                    .unwrap();
                assert_eq!(status, 400, "{body}");
                body["message"].as_str().unwrap_or_default().to_string()
            }
        };
        let message = refused(json!({"connector.class": "BoundarySource", "topic": "t",
            "limit": "1", "exactly.once.support": "required"}))
        .await;
        assert!(
            message.contains("This worker does not have exactly-once source support enabled."),
            "{message}"
        );
        let message = refused(json!({"connector.class": "CountingSource", "topic": "t",
            "limit": "1", "exactly.once.support": "required"}))
        .await;
        assert!(
            message.contains("The connector does not implement the API required for preflight validation of exactly-once source support"),
            "{message}"
        );
        let message = refused(json!({"connector.class": "CountingSource", "topic": "t",
            "limit": "1", "transaction.boundary": "connector"}))
        .await;
        assert!(
            message.contains("The connector does not support connector-defined transaction boundaries"),
            "{message}"
        );
        let message = refused(json!({"connector.class": "CountingSource", "topic": "t",
            "limit": "1", "transaction.boundary": "sometimes"}))
        .await;
        assert!(
            message.contains("String must be one of (case insensitive): poll, interval, connector"),
            "{message}"
        );
        let message = refused(json!({"connector.class": "CountingSource", "topic": "t",
            "limit": "1", "transaction.boundary.interval.ms": "-1"}))
        .await;
        assert!(message.contains("Value must be at least 0"), "{message}");
        let message = refused(json!({"connector.class": "CountingSource", "topic": "t",
            "limit": "1", "offsets.storage.topic": "my-offsets"}))
        .await;
        assert!(
            message.contains("offsets.storage.topic") && message.contains("not supported"),
            "{message}"
        );
        // The connector can: accepted (and runs at least once on this worker).
        let (status, body) = rest
            .request(
                "PUT",
                "/connectors/checked/config",
                Some(&json!({"connector.class": "BoundarySource", "topic": "t",
                    "limit": "1", "transaction.boundary": "connector"})),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    });
    worker.shutdown();
    drop(runtime);
    node.shutdown().unwrap();
}

#[test]
fn a_sink_reading_committed_never_sees_aborted_records() {
    on_embedded_node(|client, _dir| async move {
        // Committed "a", aborted "b", committed "c", by a transactional producer.
        let mut config = ProducerConfig::default();
        config.set("transactional.id", "sink-input").unwrap();
        let producer = Producer::new(client.clone(), config);
        producer.init_transactions().await.unwrap();
        for (value, commit) in [("a", true), ("b", false), ("c", true)] {
            producer.begin_transaction().unwrap();
            producer
                .send(ProducerRecord {
                    topic: "txn-input".into(),
                    value: Some(Bytes::from(value)),
                    ..Default::default()
                })
                .await
                .unwrap();
            if commit {
                producer.commit_transaction().await.unwrap();
            } else {
                producer.abort_transaction().await.unwrap();
            }
        }
        let worker = sluice_connect::worker::Worker::new(
            client.clone(),
            sluice_connect::worker::WorkerConfig {
                value_converter: (
                    "org.apache.kafka.connect.storage.StringConverter".into(),
                    Default::default(),
                ),
                // The collecting sink shows what it was handed at each commit.
                offset_flush_interval: Duration::from_millis(100),
                ..Default::default()
            },
            plugins(),
        )
        .unwrap();
        for (name, isolation) in [
            ("committed", "read_committed"),
            ("everything", "read_uncommitted"),
        ] {
            worker
                .create_connector(
                    name,
                    props(&[
                        ("connector.class", "CollectingSink"),
                        ("topics", "txn-input"),
                        ("collector", name),
                        ("consumer.override.isolation.level", isolation),
                    ]),
                )
                .await
                .unwrap();
        }
        let strings = |values: Vec<sluice_connect::data::Value>| -> Vec<String> {
            values
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(strings(wait_for("everything", 3).await), ["a", "b", "c"]);
        assert_eq!(strings(wait_for("committed", 2).await), ["a", "c"]);
        worker.shutdown().await.unwrap();
    });
}
