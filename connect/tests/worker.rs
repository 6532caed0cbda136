//! The standalone worker on an embedded node: a source connector's records go through
//! transforms and the JSON converter into a topic, a sink connector reads them back, a
//! restarted source resumes from its committed offset, and bad configs start nothing.

use std::time::Duration;

use sluice_connect::connector::Props;
use sluice_connect::data::Value;
use sluice_connect::worker::{State, Worker, WorkerConfig};
use sluice_connect::ConnectError;

mod common;

use common::*;

fn number_structs(range: std::ops::Range<i64>) -> Vec<i64> {
    range.collect()
}

fn numbers_of(values: &[Value]) -> Vec<i64> {
    values
        .iter()
        .filter_map(|v| {
            v.as_struct()
                .and_then(|s| s.get("n"))
                .and_then(Value::as_i64)
        })
        .collect()
}

#[test]
fn records_flow_source_to_sink_and_a_restarted_source_resumes_from_its_offset() {
    on_embedded_node(|client, dir| async move {
        let config = WorkerConfig {
            offset_file: Some(dir.join("connect.offsets")),
            offset_flush_interval: Duration::from_millis(100),
            ..WorkerConfig::default()
        };
        let worker = Worker::new(client.clone(), config.clone(), plugins()).unwrap();
        let source = props(&[
            ("connector.class", "CountingSource"),
            ("topic", "numbers"),
            ("limit", "500"),
            ("transforms", "wrap"),
            (
                "transforms.wrap.type",
                "org.apache.kafka.connect.transforms.HoistField$Value",
            ),
            ("transforms.wrap.field", "n"),
        ]);
        worker
            .create_connector("count", source.clone())
            .await
            .unwrap();
        worker
            .create_connector(
                "collect",
                props(&[
                    ("connector.class", "com.example.CollectingSink"),
                    ("topics", "numbers"),
                    ("collector", "round-trip"),
                ]),
            )
            .await
            .unwrap();
        // The JSON converter's envelope carried the hoisted struct's schema through the topic.
        let values = wait_for("round-trip", 500).await;
        assert_eq!(numbers_of(&values), number_structs(0..500));
        let status = worker.status("count").await.unwrap();
        assert_eq!(status.state, State::Running);
        assert_eq!(status.tasks, vec![State::Running]);
        assert_eq!(status.kind, "source");

        // Stopping commits the offset reached; a new source of the same name and a higher
        // limit resumes after it, in a new worker reading the same offset file.
        worker.delete_connector("count").await.unwrap();
        assert_eq!(
            worker
                .offset_store()
                .get("count", &partition())
                .and_then(|o| o.map_get("next").cloned()),
            Some(Value::Int64(500))
        );
        let restarted = Worker::new(client.clone(), config, plugins()).unwrap();
        let mut more = source.clone();
        more.insert("limit".into(), "800".into());
        restarted.create_connector("count", more).await.unwrap();
        let values = wait_for("round-trip", 800).await;
        assert_eq!(
            numbers_of(&values),
            number_structs(0..800),
            "no loss, no repeats"
        );
        restarted.shutdown().await.unwrap();
        worker.shutdown().await.unwrap();
    });
}

/// A worker with its offsets in memory, committing every 100 ms.
fn committing_often(client: &std::sync::Arc<sluice_log::client::Client>) -> Worker {
    let config = WorkerConfig {
        offset_flush_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    Worker::new(client.clone(), config, plugins()).unwrap()
}

#[test]
fn source_offsets_are_committed_while_a_poll_waits_for_data() {
    on_embedded_node(|client, _dir| async move {
        let worker = committing_often(&client);
        // After its 5 numbers the task's polls wait a minute each, as a source with no new
        // data does (FileStreamSource waits 1 s).
        worker
            .create_connector(
                "slow",
                props(&[
                    ("connector.class", "CountingSource"),
                    ("topic", "slow-numbers"),
                    ("limit", "5"),
                    ("idle.ms", "60000"),
                ]),
            )
            .await
            .unwrap();
        // Committed within the flush interval (bounded here at 10 s), not when the poll ends:
        // a worker killed meanwhile would otherwise send them again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let committed = worker
                .offset_store()
                .get("slow", &partition())
                .and_then(|o| o.map_get("next").cloned());
            if committed == Some(Value::Int64(5)) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the offset was not committed while the poll waited: {committed:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A stop still cuts the waiting poll short.
        worker.delete_connector("slow").await.unwrap();
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn a_sinks_retriable_put_failure_redelivers_the_same_records() {
    on_embedded_node(|client, _dir| async move {
        let worker = committing_often(&client);
        worker
            .create_connector(
                "count-again",
                props(&[
                    ("connector.class", "CountingSource"),
                    ("topic", "again"),
                    ("limit", "300"),
                ]),
            )
            .await
            .unwrap();
        // The first three puts fail with a retriable error: Kafka's runtime pauses, then
        // hands the task the same records again, and the task keeps running.
        worker
            .create_connector(
                "flaky",
                props(&[
                    ("connector.class", "CollectingSink"),
                    ("topics", "again"),
                    ("collector", "flaky"),
                    ("retriable.failures", "3"),
                ]),
            )
            .await
            .unwrap();
        // Paused while it waits to put again, it puts nothing; resumed, it goes on.
        worker.pause_connector("flaky").await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while worker.status("flaky").await.unwrap().tasks != vec![State::Paused] {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the task never paused"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worker.resume_connector("flaky").await.unwrap();
        let values = wait_for("flaky", 300).await;
        let mut numbers: Vec<i64> = values.iter().filter_map(Value::as_i64).collect();
        assert_eq!(numbers.len(), 300, "no record twice");
        numbers.sort_unstable();
        assert_eq!(numbers, (0..300).collect::<Vec<i64>>(), "none lost");
        let status = worker.status("flaky").await.unwrap();
        assert_eq!(status.tasks, vec![State::Running]);
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn bad_connector_configs_start_nothing_and_say_why() {
    on_embedded_node(|client, _dir| async move {
        let worker = Worker::new(client, WorkerConfig::default(), plugins()).unwrap();
        let cases: Vec<(Props, &str)> = vec![
            (props(&[("topic", "t")]), "connector.class"),
            (
                props(&[("connector.class", "com.example.Missing")]),
                "Failed to find any class",
            ),
            (
                props(&[("connector.class", "CountingSource"), ("topic", "t")]),
                "limit: Missing required configuration",
            ),
            (
                props(&[
                    ("connector.class", "CountingSource"),
                    ("topic", "t"),
                    ("limit", "5"),
                    ("transforms", "x"),
                    ("transforms.x.type", "Nope"),
                ]),
                "transforms.x.type",
            ),
            (
                props(&[("connector.class", "CollectingSink"), ("collector", "c")]),
                "topics",
            ),
            (
                props(&[
                    ("connector.class", "CountingSource"),
                    ("topic", "t"),
                    ("limit", "5"),
                    ("tasks.max", "0"),
                ]),
                "tasks.max",
            ),
        ];
        for (config, needle) in cases {
            let err = worker.create_connector("bad", config).await.unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
        assert!(worker.connectors().await.is_empty());
        let ok = props(&[
            ("connector.class", "CountingSource"),
            ("topic", "t"),
            ("limit", "0"),
        ]);
        worker.create_connector("one", ok.clone()).await.unwrap();
        let err = worker.create_connector("one", ok).await.unwrap_err();
        assert!(matches!(err, ConnectError::Conflict(_)), "{err}");
        let err = worker.delete_connector("two").await.unwrap_err();
        assert!(matches!(err, ConnectError::NotFound(_)), "{err}");
        worker.shutdown().await.unwrap();
    });
}

/// Waits (up to 20 s) until a task of connector `name` has failed, and returns why.
async fn wait_for_failure(worker: &Worker, name: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = worker.status(name).await {
            if let Some(State::Failed(reason)) = status.tasks.first() {
                return reason.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not fail"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn failing_records_stop_a_task_or_go_to_the_dead_letter_queue_as_configured() {
    use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
    use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
    use sluice_log::TopicPartition;
    on_embedded_node(|client, _dir| async move {
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        let envelope =
            |n: i64| format!(r#"{{"schema":{{"type":"int64","optional":false}},"payload":{n}}}"#);
        for value in [envelope(1), "not json".to_string(), envelope(3)] {
            let record = ProducerRecord {
                topic: "mixed".into(),
                partition: Some(0),
                value: Some(value.into()),
                ..Default::default()
            };
            producer.send(record).await.unwrap().await.unwrap();
        }
        producer.close().await;
        // Sinks' records show when flushed: flush often.
        let quick_flushes = WorkerConfig {
            offset_flush_interval: Duration::from_millis(50),
            ..WorkerConfig::default()
        };
        let worker = Worker::new(client.clone(), quick_flushes.clone(), plugins()).unwrap();
        let sink = |collector: &str, extra: &[(&str, &str)]| {
            let mut config = props(&[
                ("connector.class", "CollectingSink"),
                ("topics", "mixed"),
                ("collector", collector),
            ]);
            config.extend(props(extra));
            config
        };
        // errors.tolerance=none (the default): the bad record stops the task.
        worker
            .create_connector("strict", sink("strict", &[]))
            .await
            .unwrap();
        let reason = wait_for_failure(&worker, "strict").await;
        assert!(reason.contains("Tolerance exceeded"), "{reason}");
        assert!(reason.contains("VALUE_CONVERTER"), "{reason}");

        // errors.tolerance=all: the good records go on, the bad one to the dead letter queue
        // with its context.
        worker
            .create_connector(
                "tolerant",
                sink(
                    "tolerant",
                    &[
                        ("errors.tolerance", "all"),
                        ("errors.log.enable", "true"),
                        ("errors.deadletterqueue.topic.name", "mixed-dlq"),
                        ("errors.deadletterqueue.topic.replication.factor", "1"),
                        ("errors.deadletterqueue.context.headers.enable", "true"),
                    ],
                ),
            )
            .await
            .unwrap();
        let values = wait_for("tolerant", 2).await;
        assert_eq!(values, vec![Value::Int64(1), Value::Int64(3)]);
        let mut dlq = Consumer::assign(
            client.clone(),
            vec![(TopicPartition::new("mixed-dlq", 0), StartOffset::Beginning)],
            ConsumerConfig::default(),
        )
        .await
        .unwrap();
        let dead = dlq.poll().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].value.as_deref(), Some(&b"not json"[..]));
        let header = |name: &str| {
            dead[0]
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_ref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("__connect.errors.topic").as_deref(), Some("mixed"));
        assert_eq!(header("__connect.errors.offset").as_deref(), Some("1"));
        assert_eq!(
            header("__connect.errors.stage").as_deref(),
            Some("VALUE_CONVERTER")
        );
        assert_eq!(
            header("__connect.errors.connector.name").as_deref(),
            Some("tolerant")
        );
        assert!(header("__connect.errors.exception.message")
            .is_some_and(|m| m.contains("serialization error")));

        // Sources: a transform that fails every record stops the task, or, tolerated, skips
        // the records while the offset still moves on.
        let counting = |extra: &[(&str, &str)]| {
            let mut config = props(&[
                ("connector.class", "CountingSource"),
                ("topic", "never"),
                ("limit", "50"),
                ("transforms", "pick"),
                ("transforms.pick.type", "ExtractField$Value"),
                ("transforms.pick.field", "n"),
            ]);
            config.extend(props(extra));
            config
        };
        worker
            .create_connector("picky", counting(&[]))
            .await
            .unwrap();
        let reason = wait_for_failure(&worker, "picky").await;
        assert!(reason.contains("TRANSFORMATION"), "{reason}");
        let quick = Worker::new(client.clone(), quick_flushes, plugins()).unwrap();
        quick
            .create_connector("skipping", counting(&[("errors.tolerance", "all")]))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while quick
            .offset_store()
            .get("skipping", &partition())
            .and_then(|o| o.map_get("next").cloned())
            != Some(Value::Int64(50))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the skipped records' offsets were not committed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            quick.status("skipping").await.unwrap().tasks,
            vec![State::Running]
        );
        assert_eq!(client.list_offset("never", 0, -1).await.unwrap_or(0), 0);
        quick.shutdown().await.unwrap();
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn a_connectors_own_converters_override_the_workers() {
    use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
    on_embedded_node(|client, _dir| async move {
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        for value in ["plain text", "not an envelope"] {
            let record = ProducerRecord {
                topic: "texts".into(),
                key: Some("k".into()),
                value: Some(value.into()),
                ..Default::default()
            };
            producer.send(record).await.unwrap().await.unwrap();
        }
        producer.close().await;
        // The worker's converters are JSON with schemas (Kafka's defaults); this connector
        // reads its keys and values as strings instead.
        let worker = Worker::new(
            client,
            WorkerConfig {
                offset_flush_interval: Duration::from_millis(50),
                ..WorkerConfig::default()
            },
            plugins(),
        )
        .unwrap();
        worker
            .create_connector(
                "texts",
                props(&[
                    ("connector.class", "CollectingSink"),
                    ("topics", "texts"),
                    ("collector", "texts"),
                    (
                        "key.converter",
                        "org.apache.kafka.connect.storage.StringConverter",
                    ),
                    ("value.converter", "StringConverter"),
                ]),
            )
            .await
            .unwrap();
        let values = wait_for("texts", 2).await;
        assert_eq!(
            values,
            vec![Value::from("plain text"), Value::from("not an envelope")]
        );
        let keys: Vec<Value> = collected().lock().unwrap()["texts"]
            .iter()
            .map(|r| r.record.key.clone())
            .collect();
        assert_eq!(keys, vec![Value::from("k"), Value::from("k")]);
        // A converter property for the connector's own converter is refused when bad.
        let err = worker
            .create_connector(
                "bad-converter",
                props(&[
                    ("connector.class", "CollectingSink"),
                    ("topics", "texts"),
                    ("collector", "never"),
                    (
                        "value.converter",
                        "org.apache.kafka.connect.json.JsonConverter",
                    ),
                    ("value.converter.schemas.enable", "sometimes"),
                ]),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("schemas.enable"), "{err}");
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn a_sink_with_topics_regex_reads_every_matching_topic() {
    on_embedded_node(|client, _dir| async move {
        let config = WorkerConfig {
            offset_flush_interval: Duration::from_millis(100),
            ..WorkerConfig::default()
        };
        let worker = Worker::new(client, config, plugins()).unwrap();
        for (name, topic) in [("a", "logs-a"), ("b", "logs-b"), ("c", "other-logs")] {
            let source = props(&[
                ("connector.class", "CountingSource"),
                ("topic", topic),
                ("limit", "50"),
            ]);
            worker.create_connector(name, source).await.unwrap();
        }
        // The topics exist once their sources committed: a pattern finds them at once.
        let done = Value::string_map([("next", Value::Int64(50))]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        for name in ["a", "b", "c"] {
            while worker.offset_store().get(name, &partition()) != Some(done.clone()) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "source {name} did not finish"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let sink = |extra: &[(&str, &str)]| {
            let mut p = props(&[
                ("connector.class", "CollectingSink"),
                ("collector", "regex"),
            ]);
            p.extend(props(extra));
            p
        };
        let both = sink(&[("topics", "logs-a"), ("topics.regex", "logs-.*")]);
        let err = worker.create_connector("both", both).await.unwrap_err();
        assert!(err.to_string().contains("mutually exclusive"), "{err}");
        let bad = sink(&[("topics.regex", "logs-(")]);
        let err = worker.create_connector("bad", bad).await.unwrap_err();
        assert!(err.to_string().contains("topics.regex"), "{err}");
        worker
            .create_connector("matching", sink(&[("topics.regex", "logs-.*")]))
            .await
            .unwrap();
        let values = wait_for("regex", 100).await;
        // Each number once from each of the two matching topics; `other-logs` does not match
        // as a whole name.
        let mut numbers: Vec<i64> = values.iter().filter_map(Value::as_i64).collect();
        numbers.sort_unstable();
        let expected: Vec<i64> = (0..50).flat_map(|n| [n, n]).collect();
        assert_eq!(numbers, expected);
        worker.shutdown().await.unwrap();
    });
}
