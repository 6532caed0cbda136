//! The runtime on an embedded node: stream threads in a consumer group, at-least-once commits,
//! restarts that go on from the commits, bad records under each deserialisation handler.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;
use sluice_log::TopicPartition;
use sluice_streams::serdes::{I64Serde, StringSerde};
use sluice_streams::{
    BatchOutput, Consumed, KafkaStreams, Produced, Record, StreamsBuilder, StreamsConfig,
    StreamsError, Topology,
};

use crate::fixtures::{create, eventually, on_embedded_node, start_app, NO_CACHE};

pub async fn produce(client: &Arc<Client>, topic: &str, records: &[(Option<&str>, Bytes)]) {
    let records: Vec<_> = records
        .iter()
        .map(|(key, value)| (*key, value.clone(), None))
        .collect();
    produce_to(client, topic, &records).await;
}

/// Like [`produce`], each record to its partition if it names one (else the partitioner's).
pub async fn produce_to(
    client: &Arc<Client>,
    topic: &str,
    records: &[(Option<&str>, Bytes, Option<i32>)],
) {
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    let mut deliveries = Vec::new();
    for (key, value, partition) in records {
        let record = ProducerRecord {
            topic: topic.into(),
            partition: *partition,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(value.clone()),
            ..Default::default()
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.flush().await;
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    producer.close().await;
}

/// Reads `topic` from the beginning until `n` records came (or 30 s passed).
pub async fn read_all(client: &Arc<Client>, topic: &str, n: usize) -> Vec<(String, Bytes)> {
    let partitions = client.topic(topic, false).await.unwrap().leaders.len() as i32;
    let assignments = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), StartOffset::Beginning))
        .collect();
    let mut consumer = Consumer::assign(client.clone(), assignments, ConsumerConfig::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && tokio::time::Instant::now() < deadline {
        for record in consumer.poll().await.unwrap() {
            let key = String::from_utf8(record.key.unwrap_or_default().to_vec()).unwrap();
            out.push((key, record.value.unwrap_or_default()));
        }
    }
    out
}

/// Words of each line, upper-cased, keyed by the word; lines' lengths on a second topic.
fn words_topology() -> Arc<Topology> {
    let builder = StreamsBuilder::new();
    let lines = builder.stream("lines", Consumed::with(StringSerde, StringSerde));
    lines
        .flat_map(|_, line: String| {
            line.split_whitespace()
                .map(|w| (w.to_string(), w.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .to("words", Produced::with(StringSerde, StringSerde));
    lines
        .map_values(|line| line.len() as i64)
        .to("lengths", Produced::with(StringSerde, I64Serde));
    Arc::new(builder.build().unwrap())
}

fn lines(range: std::ops::Range<usize>) -> Vec<(Option<&'static str>, Bytes)> {
    const KEYS: [&str; 4] = ["a", "b", "c", "d"];
    range
        .map(|i| (Some(KEYS[i % 4]), Bytes::from(format!("w{i} x{i}"))))
        .collect()
}

#[test]
fn stream_threads_process_every_record_and_a_restart_goes_on_from_the_commits() {
    on_embedded_node(|client| async move {
        create(&client, "lines", 4).await;
        create(&client, "words", 2).await;
        create(&client, "lengths", 1).await;
        produce(&client, "lines", &lines(0..100)).await;
        let app = start_app(
            &client,
            words_topology(),
            "words-app",
            &[("num.stream.threads", "2")],
        )
        .await;
        let words = read_all(&client, "words", 200).await;
        assert_eq!(words.len(), 200);
        let mut keys: Vec<String> = words.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 200, "every word once");
        assert!(words
            .iter()
            .all(|(k, v)| v == &Bytes::from(k.to_uppercase())));
        let lengths = read_all(&client, "lengths", 100).await;
        assert_eq!(lengths.len(), 100);
        assert!(
            lengths.iter().all(|(_, v)| v.len() == 8),
            "i64 values as Kafka's LongSerializer writes them"
        );
        assert_eq!(app.metrics().records_processed(), 100);
        app.close().await.unwrap();

        // A second run of the application reads only what came after its commits.
        produce(&client, "lines", &lines(100..110)).await;
        let app = start_app(
            &client,
            words_topology(),
            "words-app",
            &[("num.stream.threads", "1")],
        )
        .await;
        let words = read_all(&client, "words", 220).await;
        assert_eq!(
            words.len(),
            220,
            "the first 100 lines were not processed again"
        );
        eventually("10 records processed", || {
            app.metrics().records_processed() >= 10
        })
        .await;
        assert_eq!(app.metrics().records_processed(), 10);
        app.close().await.unwrap();
    });
}

/// A batch source that keeps lines with an even number and records the size of each run.
fn even_lines_in_runs(runs: Arc<parking_lot::Mutex<Vec<usize>>>) -> Arc<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .batch_stream(
            "lines",
            move |run, out: &mut BatchOutput<String, String>| {
                runs.lock().push(run.len());
                for (index, raw) in run.iter().enumerate() {
                    let line = String::from_utf8_lossy(raw.value.as_deref().unwrap_or_default());
                    let n: usize = line[1..line.find(' ').unwrap_or(line.len())]
                        .parse()
                        .unwrap_or(1);
                    if n.is_multiple_of(2) {
                        let key = String::from_utf8_lossy(raw.key.as_deref().unwrap_or_default());
                        out.push((
                            index,
                            Record {
                                key: key.into_owned(),
                                value: line.into_owned(),
                                timestamp: raw.timestamp,
                                headers: Vec::new(),
                            },
                        ));
                    }
                }
                Ok(())
            },
        )
        .to("evens", Produced::with(StringSerde, StringSerde));
    Arc::new(builder.build().unwrap())
}

#[test]
fn a_batch_source_takes_a_polls_records_of_a_partition_at_once() {
    on_embedded_node(|client| async move {
        create(&client, "lines", 2).await;
        create(&client, "evens", 1).await;
        produce(&client, "lines", &lines(0..400)).await;
        let runs = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let app = start_app(&client, even_lines_in_runs(runs.clone()), "evens-app", &[]).await;
        let evens = read_all(&client, "evens", 200).await;
        assert_eq!(evens.len(), 200);
        let mut numbers: Vec<usize> = evens
            .iter()
            .map(|(_, v)| {
                let v = String::from_utf8_lossy(v);
                v[1..v.find(' ').unwrap()].parse().unwrap()
            })
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..400).step_by(2).collect::<Vec<_>>());
        // Every record came through once, in runs, not one by one.
        let runs = runs.lock().clone();
        assert_eq!(runs.iter().sum::<usize>(), 400);
        assert!(
            runs.iter().any(|n| *n > 1),
            "records came one at a time: {runs:?}"
        );
        assert_eq!(app.metrics().records_processed(), 400);
        app.close().await.unwrap();
    });
}

#[test]
fn bad_records_are_skipped_or_stop_the_application_as_configured() {
    on_embedded_node(|client| async move {
        create(&client, "numbers", 1).await;
        create(&client, "doubled", 1).await;
        let eight = |n: i64| Bytes::copy_from_slice(&n.to_be_bytes());
        produce(
            &client,
            "numbers",
            &[
                (Some("k"), eight(1)),
                (Some("k"), Bytes::from_static(b"bad")),
                (Some("k"), eight(3)),
            ],
        )
        .await;
        let topology = || {
            let builder = StreamsBuilder::new();
            builder
                .stream("numbers", Consumed::with(StringSerde, I64Serde))
                .map_values(|n| n * 2)
                .to("doubled", Produced::with(StringSerde, I64Serde));
            Arc::new(builder.build().unwrap())
        };
        let handler = "default.deserialization.exception.handler";
        let continue_handler = "org.apache.kafka.streams.errors.LogAndContinueExceptionHandler";
        let app = start_app(&client, topology(), "skip", &[(handler, continue_handler)]).await;
        let doubled = read_all(&client, "doubled", 2).await;
        assert_eq!(
            doubled.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            vec![eight(2), eight(6)]
        );
        eventually("the bad record skipped", || {
            app.metrics().records_skipped() >= 1
        })
        .await;
        assert_eq!(app.metrics().records_skipped(), 1);
        app.close().await.unwrap();

        let app = start_app(
            &client,
            topology(),
            "fail",
            &[(handler, "LogAndFailExceptionHandler")],
        )
        .await;
        eventually("the stream thread failed", || app.has_failed_thread()).await;
        let err = app.close().await.unwrap_err();
        assert!(
            matches!(
                err,
                StreamsError::Serde {
                    action: "deserialize",
                    part: "value",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("3 bytes, not 8"), "{err}");

        // A topology over a topic that does not exist does not start.
        let builder = StreamsBuilder::new();
        builder
            .stream("missing", Consumed::with(StringSerde, StringSerde))
            .to("doubled", Produced::with(StringSerde, StringSerde));
        let err = KafkaStreams::start(
            Arc::new(builder.build().unwrap()),
            StreamsConfig::from_props([("application.id", "missing")]).unwrap(),
            client.clone(),
        )
        .await
        .err()
        .expect("refused");
        assert!(
            err.to_string()
                .contains("source topic missing does not exist"),
            "{err}"
        );
    });
}

#[test]
fn streams_properties_use_kafkas_names_and_refuse_what_is_not_there() {
    let config = StreamsConfig::from_props([
        ("application.id", "app"),
        ("num.stream.threads", "3"),
        ("commit.interval.ms", "250"),
        ("processing.guarantee", "at_least_once"),
        ("producer.linger.ms", "7"),
        ("consumer.max.poll.records", "11"),
        ("poll.ms", "40"),
    ])
    .unwrap();
    assert_eq!(config.poll, Duration::from_millis(40));
    assert_eq!(StreamsConfig::new("a").poll, Duration::from_millis(100));
    // Kafka Streams' consumer override, unless the application sets its own.
    assert_eq!(StreamsConfig::new("a").group.fetch.max_poll_records, 1000);
    let with_consumer_props =
        StreamsConfig::from_props([("application.id", "a"), ("consumer.fetch.min.bytes", "1")])
            .unwrap();
    assert_eq!(with_consumer_props.group.fetch.max_poll_records, 1000);
    assert_eq!(config.num_stream_threads, 3);
    assert_eq!(config.commit_interval, Duration::from_millis(250));
    assert_eq!(config.producer.linger, Duration::from_millis(7));
    assert_eq!(config.group.fetch.max_poll_records, 11);
    assert_eq!(config.group.group_id, "app");
    assert!(!config.group.enable_auto_commit);
    // Exactly-once brings Kafka Streams' defaults for it, unless they are set.
    let eos = StreamsConfig::from_props([
        ("application.id", "a"),
        ("processing.guarantee", "exactly_once_v2"),
    ])
    .unwrap();
    assert!(eos.exactly_once);
    assert_eq!(eos.commit_interval, Duration::from_millis(100));
    assert_eq!(
        eos.producer.transaction_timeout,
        Duration::from_millis(10_000)
    );
    for (props, needle) in [
        (vec![("num.stream.threads", "2")], "application.id"),
        (
            vec![("application.id", "a"), ("num.stream.threads", "0")],
            "num.stream.threads",
        ),
        (
            vec![
                ("application.id", "a"),
                ("processing.guarantee", "exactly_once"),
            ],
            "use exactly_once_v2",
        ),
        (
            vec![("application.id", "a"), ("linger.ms", "1")],
            "producer. or consumer. prefix",
        ),
        (
            vec![
                ("application.id", "a"),
                ("default.deserialization.exception.handler", "Ignore"),
            ],
            "LogAndContinue",
        ),
        (
            vec![("application.id", "a"), ("producer.acks", "7")],
            "acks",
        ),
    ] {
        let err = StreamsConfig::from_props(props).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
}

/// Counts of each key of `views` (4 partitions), as a table to `view-counts`.
fn counting_topology() -> Arc<Topology> {
    use sluice_streams::{Grouped, Materialized};
    let builder = StreamsBuilder::new();
    builder
        .stream("views", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with_key(StringSerde))
        .count(Materialized::counts().named("counts"))
        .to_stream()
        .to("view-counts", Produced::with(StringSerde, I64Serde));
    Arc::new(builder.build().unwrap())
}

/// The last count of each key in `view-counts`.
async fn latest_counts(client: &Arc<Client>, n_updates: usize) -> BTreeMap<String, i64> {
    read_all(client, "view-counts", n_updates)
        .await
        .into_iter()
        .map(|(key, value)| {
            let bytes: [u8; 8] = value.as_ref().try_into().unwrap();
            (key, i64::from_be_bytes(bytes))
        })
        .collect()
}

#[test]
fn counts_live_in_stores_that_a_restart_restores_from_their_changelogs() {
    on_embedded_node(|client| async move {
        create(&client, "views", 4).await;
        create(&client, "view-counts", 1).await;
        let views = |keys: &[&'static str]| -> Vec<(Option<&'static str>, Bytes)> {
            keys.iter()
                .map(|k| (Some(*k), Bytes::from_static(b"/page")))
                .collect()
        };
        produce(
            &client,
            "views",
            &views(&["ann", "bob", "ann", "cid", "ann", "bob"]),
        )
        .await;
        let app = start_app(&client, counting_topology(), "counter", NO_CACHE).await;
        let counts = latest_counts(&client, 6).await;
        assert_eq!(
            counts,
            [
                ("ann".to_string(), 3),
                ("bob".to_string(), 2),
                ("cid".to_string(), 1)
            ]
            .into()
        );
        // Interactive queries of the running application's local stores.
        let store = app.store("counts", StringSerde, I64Serde).unwrap();
        assert_eq!(store.get(&"ann".to_string()).unwrap(), Some(3));
        assert_eq!(store.get(&"nobody".to_string()).unwrap(), None);
        assert_eq!(store.all().unwrap().len(), 3);
        assert!(app.store("nothing", StringSerde, I64Serde).is_err());
        app.close().await.unwrap();
        // The changelog is compacted and holds every update, one partition per task.
        let changelog = client
            .topic("counter-counts-changelog", false)
            .await
            .unwrap();
        assert_eq!(changelog.leaders.len(), 4);

        // A new instance (nothing in memory) restores the stores and goes on counting.
        produce(&client, "views", &views(&["ann", "cid"])).await;
        let app = start_app(&client, counting_topology(), "counter", NO_CACHE).await;
        let counts = latest_counts(&client, 8).await;
        assert_eq!(counts["ann"], 4, "{counts:?}");
        assert_eq!(counts["cid"], 2, "{counts:?}");
        assert_eq!(counts["bob"], 2, "{counts:?}");
        assert_eq!(
            app.metrics().records_restored(),
            6,
            "every update of the first run, read back"
        );
        assert_eq!(app.metrics().records_processed(), 2);
        app.close().await.unwrap();
    });
}

#[test]
fn two_instances_join_a_stream_with_a_table_of_four_partitions() {
    use sluice_streams::Materialized;
    on_embedded_node(|client| async move {
        create(&client, "page-views", 4).await;
        create(&client, "user-regions", 4).await;
        create(&client, "views-by-region", 1).await;
        let users: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
        let regions: Vec<(Option<&str>, Bytes)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (Some(u.as_str()), Bytes::from(format!("region-{}", i % 3))))
            .collect();
        produce(&client, "user-regions", &regions).await;
        let topology = || {
            let builder = StreamsBuilder::new();
            let table = builder.table(
                "user-regions",
                Consumed::with(StringSerde, StringSerde),
                Materialized::with(StringSerde).named("regions"),
            );
            builder
                .stream("page-views", Consumed::with(StringSerde, StringSerde))
                .join(&table, |user, page, region| {
                    format!("{user} {page} {region}")
                })
                .to("views-by-region", Produced::with(StringSerde, StringSerde));
            Arc::new(builder.build().unwrap())
        };
        let first = start_app(&client, topology(), "enrich", &[]).await;
        let second = start_app(&client, topology(), "enrich", &[]).await;
        // Every table row is in before the views arrive: each view must find its user's region,
        // whichever instance owns the partition.
        eventually("the table loaded", || {
            first.metrics().records_processed() + second.metrics().records_processed() >= 40
        })
        .await;
        let views: Vec<(Option<&str>, Bytes)> = users
            .iter()
            .map(|u| (Some(u.as_str()), Bytes::from_static(b"/home")))
            .collect();
        produce(&client, "page-views", &views).await;
        let joined = read_all(&client, "views-by-region", 40).await;
        assert_eq!(joined.len(), 40, "every view joined");
        for (user, value) in &joined {
            let idx: usize = user.trim_start_matches("user-").parse().unwrap();
            assert_eq!(
                value,
                &Bytes::from(format!("{user} /home region-{}", idx % 3))
            );
        }
        // Each instance answers queries for the partitions it owns, and only those.
        let rows = |app: &KafkaStreams| {
            app.store("regions", StringSerde, StringSerde)
                .unwrap()
                .approximate_num_entries()
        };
        eventually("the two instances' stores to split the 40 rows", || {
            rows(&first) + rows(&second) == 40 && rows(&first) > 0 && rows(&second) > 0
        })
        .await;
        // Both instances did part of the work.
        assert!(
            first.metrics().records_processed() > 0 && second.metrics().records_processed() > 0
        );
        first.close().await.unwrap();
        second.close().await.unwrap();
    });
}

#[test]
fn two_instances_count_words_against_a_broker_over_tcp() {
    use sluice_streams::{Grouped, Materialized};
    let dir = tempfile::tempdir().unwrap();
    let node = sluice_log::Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .listen("127.0.0.1:0")
        .start()
        .unwrap();
    let bootstrap = node.bootstrap().expect("the node listens");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(60), async {
                // Every client here speaks the Kafka protocol over TCP, as against any cluster.
                let client = Client::connect(&bootstrap, Default::default())
                    .await
                    .unwrap();
                create(&client, "text", 3).await;
                create(&client, "word-totals", 1).await;
                let topology = || {
                    let builder = StreamsBuilder::new();
                    builder
                        .stream("text", Consumed::with(StringSerde, StringSerde))
                        .flat_map_values(|line: String| {
                            line.split_whitespace()
                                .map(str::to_string)
                                .collect::<Vec<_>>()
                        })
                        .group_by(
                            |_, word| word.clone(),
                            Grouped::with(StringSerde, StringSerde),
                        )
                        .count(Materialized::counts())
                        .to_stream()
                        .to("word-totals", Produced::with(StringSerde, I64Serde));
                    Arc::new(builder.build().unwrap())
                };
                let first = start_app(&client, topology(), "tcp-words", NO_CACHE).await;
                let second = start_app(&client, topology(), "tcp-words", NO_CACHE).await;
                let lines: Vec<(Option<&str>, Bytes)> = (0..30)
                    .map(|i| {
                        (
                            Some(["a", "b", "c"][i % 3]),
                            Bytes::from(format!("x y{} z", i % 5)),
                        )
                    })
                    .collect();
                produce(&client, "text", &lines).await;
                let totals = read_all(&client, "word-totals", 90).await;
                let mut last: BTreeMap<String, i64> = BTreeMap::new();
                for (word, count) in totals {
                    let bytes: [u8; 8] = count.as_ref().try_into().unwrap();
                    last.insert(word, i64::from_be_bytes(bytes));
                }
                assert_eq!(last["x"], 30, "{last:?}");
                assert_eq!(last["z"], 30, "{last:?}");
                for i in 0..5 {
                    assert_eq!(last[&format!("y{i}")], 6, "{last:?}");
                }
                first.close().await.unwrap();
                second.close().await.unwrap();
            })
            .await
        })
        .expect("the scenario finishes within 60 s");
    node.shutdown().unwrap();
}

#[test]
fn records_for_closed_windows_are_dropped_and_counted() {
    use sluice_streams::{Grouped, Materialized, TimeWindows, WindowedSerde};
    on_embedded_node(|client| async move {
        create(&client, "clicks", 1).await;
        create(&client, "click-counts", 1).await;
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        // 1 s tumbling windows, no grace: after the record at 5 s, the one at 0.5 s is late.
        for timestamp in [100, 5_000, 500, 5_100] {
            let record = ProducerRecord {
                topic: "clicks".into(),
                key: Some(Bytes::from_static(b"ann")),
                value: Some(Bytes::from_static(b"/")),
                timestamp: Some(timestamp),
                ..Default::default()
            };
            producer.send(record).await.unwrap().await.unwrap();
        }
        producer.close().await;
        let builder = StreamsBuilder::new();
        let size = Duration::from_secs(1);
        builder
            .stream("clicks", Consumed::with(StringSerde, StringSerde))
            .group_by_key(Grouped::with_key(StringSerde))
            .windowed_by(TimeWindows::of_size_with_no_grace(size))
            .count(Materialized::counts())
            .to_stream()
            .to(
                "click-counts",
                Produced::with(WindowedSerde::new(StringSerde, size), I64Serde),
            );
        let app = start_app(
            &client,
            Arc::new(builder.build().unwrap()),
            "late",
            NO_CACHE,
        )
        .await;
        eventually("four records processed", || {
            app.metrics().records_processed() >= 4
        })
        .await;
        assert_eq!(app.metrics().records_dropped_late(), 1);
        // Three updates went out: 0.1 s in the first window, 5 s and 5.1 s in the sixth.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while client.list_offset("click-counts", 0, -1).await.unwrap() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the counts did not arrive"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(client.list_offset("click-counts", 0, -1).await.unwrap(), 3);
        app.close().await.unwrap();
    });
}

#[test]
fn a_table_regrouped_on_a_node_moves_its_rows_between_partitions() {
    on_embedded_node(|client| async move {
        create(&client, "user-regions", 3).await;
        let builder = StreamsBuilder::new();
        builder
            .table(
                "user-regions",
                Consumed::with(StringSerde, StringSerde),
                sluice_streams::Materialized::with(StringSerde).named("regions"),
            )
            .group_by(
                |_, region| (region.clone(), region.clone()),
                sluice_streams::Grouped::with(StringSerde, StringSerde),
            )
            .count(sluice_streams::Materialized::counts().named("users-per-region"));
        let topology = Arc::new(builder.build().unwrap());
        let app = start_app(&client, topology, "regrouping", &[]).await;
        let users = ["ann", "bob", "cid", "dan", "eve", "fay"];
        let region = |r: &'static str| Bytes::from_static(r.as_bytes());
        let first: Vec<_> = users.iter().map(|u| (Some(*u), region("eu"))).collect();
        produce(&client, "user-regions", &first).await;
        // Half of them move: their rows leave `eu` (in its task) and join `us` (in another).
        let moved: Vec<_> = users[..3]
            .iter()
            .map(|u| (Some(*u), region("us")))
            .collect();
        produce(&client, "user-regions", &moved).await;
        let store = app
            .store("users-per-region", StringSerde, I64Serde)
            .unwrap();
        eventually("three users per region", || {
            store.get(&"eu".to_string()).ok().flatten() == Some(3)
                && store.get(&"us".to_string()).ok().flatten() == Some(3)
        })
        .await;
        app.close().await.unwrap();
    });
}

#[test]
fn two_streams_join_on_a_node_across_partitions() {
    on_embedded_node(|client| async move {
        create(&client, "impressions", 2).await;
        create(&client, "clicks", 2).await;
        create(&client, "clicked", 1).await;
        let builder = StreamsBuilder::new();
        let impressions = builder.stream("impressions", Consumed::with(StringSerde, StringSerde));
        let clicks = builder.stream("clicks", Consumed::with(StringSerde, StringSerde));
        impressions
            .join_stream(
                &clicks,
                |ad, shown, clicked| format!("{ad}:{shown}->{clicked}"),
                sluice_streams::JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(
                    600,
                )),
                sluice_streams::StreamJoined::with(StringSerde, StringSerde, StringSerde),
            )
            .to("clicked", Produced::with(StringSerde, StringSerde));
        let app = start_app(&client, Arc::new(builder.build().unwrap()), "ad-joins", &[]).await;
        let shown: Vec<_> = ["ad1", "ad2", "ad3", "ad4"]
            .iter()
            .map(|ad| (Some(*ad), Bytes::from_static(b"shown")))
            .collect();
        produce(&client, "impressions", &shown).await;
        let clicked: Vec<_> = ["ad1", "ad3"]
            .iter()
            .map(|ad| (Some(*ad), Bytes::from_static(b"click")))
            .collect();
        produce(&client, "clicks", &clicked).await;
        let mut joined: Vec<String> = read_all(&client, "clicked", 2)
            .await
            .into_iter()
            .map(|(_, value)| String::from_utf8_lossy(&value).into_owned())
            .collect();
        joined.sort();
        assert_eq!(joined, ["ad1:shown->click", "ad3:shown->click"]);
        app.close().await.unwrap();
    });
}

/// The counting application started as `application_id` (with `extra` properties), then `n`
/// views, alternately of ann and bob, produced to its input.
async fn count_views(
    client: &Arc<Client>,
    application_id: &str,
    extra: &[(&str, &str)],
    n: usize,
) -> sluice_streams::KafkaStreams {
    create(client, "views", 4).await;
    create(client, "view-counts", 1).await;
    let app = start_app(client, counting_topology(), application_id, extra).await;
    let views: Vec<(Option<&str>, Bytes)> = (0..n)
        .map(|i| (Some(["ann", "bob"][i % 2]), Bytes::from_static(b"/page")))
        .collect();
    produce(client, "views", &views).await;
    app
}

#[test]
fn the_record_cache_holds_updates_until_a_commit_and_queries_see_them() {
    on_embedded_node(|client| async move {
        // No commit comes while the test runs: what is cached stays cached until close.
        let app = count_views(&client, "cached", &[("commit.interval.ms", "600000")], 100).await;
        let store = app.store("counts", StringSerde, I64Serde).unwrap();
        eventually("the counts, read through the cache", || {
            store.get(&"ann".to_string()).ok().flatten() == Some(50)
                && store.get(&"bob".to_string()).ok().flatten() == Some(50)
        })
        .await;
        assert_eq!(store.all().unwrap().len(), 2);
        assert_eq!(client.list_offset("view-counts", 0, -1).await.unwrap(), 0);
        // Closing commits, and so flushes: one update per key, the latest.
        app.close().await.unwrap();
        let counts = latest_counts(&client, 2).await;
        assert_eq!(
            counts,
            [("ann".to_string(), 50), ("bob".to_string(), 50)].into()
        );
        assert_eq!(client.list_offset("view-counts", 0, -1).await.unwrap(), 2);
    });
}

/// A thread that has caught up commits on schedule (and so flushes its caches) while its
/// fetch long-polls: it waits for input `poll.ms` at most, never `fetch.max.wait.ms`.
#[test]
fn a_caught_up_thread_commits_on_time_while_its_fetch_waits() {
    on_embedded_node(|client| async move {
        let app = count_views(
            &client,
            "idle-commits",
            &[
                ("commit.interval.ms", "200"),
                // A fetch at the end of the log waits this long for data.
                ("consumer.fetch.max.wait.ms", "20000"),
            ],
            10,
        )
        .await;
        let produced = std::time::Instant::now();
        // The counts go out with the first commit after they were counted.
        let expected: BTreeMap<String, i64> =
            [("ann".to_string(), 5), ("bob".to_string(), 5)].into();
        loop {
            let counts = latest_counts(&client, 2).await;
            assert!(
                produced.elapsed() < Duration::from_secs(10),
                "the commit waited for the fetch: {:?}",
                produced.elapsed()
            );
            if counts == expected {
                break;
            }
        }
        app.close().await.unwrap();
    });
}

/// Values as UTF-8, refusing to serialise `boom` while `fail` holds (then letting it through
/// once `fail_once`).
struct FlakySerde {
    fail: Arc<std::sync::atomic::AtomicBool>,
    fail_once: bool,
}

impl sluice_streams::serdes::Serde<String> for FlakySerde {
    fn serialize(&self, topic: &str, value: &String) -> Result<Option<Bytes>, String> {
        use std::sync::atomic::Ordering;
        if value == "boom" && self.fail.load(Ordering::SeqCst) {
            if self.fail_once {
                self.fail.store(false, Ordering::SeqCst);
            }
            return Err("boom does not serialise".into());
        }
        StringSerde.serialize(topic, value)
    }
    fn deserialize(&self, topic: &str, bytes: Option<&Bytes>) -> Result<String, String> {
        StringSerde.deserialize(topic, bytes)
    }
}

fn flaky_copy(fail_once: bool) -> Arc<Topology> {
    let builder = StreamsBuilder::new();
    let serde = FlakySerde {
        fail: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        fail_once,
    };
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .to("out", Produced::with(StringSerde, serde));
    Arc::new(builder.build().unwrap())
}

async fn start_with(
    client: &Arc<Client>,
    topology: Arc<Topology>,
    response: sluice_streams::StreamThreadExceptionResponse,
) -> KafkaStreams {
    let config = StreamsConfig::from_props([
        ("application.id", "handled"),
        ("commit.interval.ms", "100"),
        ("consumer.heartbeat.interval.ms", "100"),
    ])
    .unwrap();
    KafkaStreams::start_with_handler(
        topology,
        config,
        client.clone(),
        Arc::new(move |_| response),
    )
    .await
    .unwrap()
}

fn inputs() -> Vec<(Option<&'static str>, Bytes)> {
    ["a", "b", "boom", "c", "d"]
        .iter()
        .enumerate()
        .map(|(i, v)| (Some(["k1", "k2"][i % 2]), Bytes::from_static(v.as_bytes())))
        .collect()
}

#[test]
fn a_failed_thread_is_replaced_and_the_new_one_goes_on_from_the_commit() {
    use sluice_streams::StreamThreadExceptionResponse::ReplaceThread;
    on_embedded_node(|client| async move {
        create(&client, "in", 1).await;
        create(&client, "out", 1).await;
        let app = start_with(&client, flaky_copy(true), ReplaceThread).await;
        produce(&client, "in", &inputs()).await;
        // At least once: what the failed thread wrote since its last commit may come twice.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 5 {
            assert!(tokio::time::Instant::now() < deadline, "only {seen:?}");
            let written = client.list_offset("out", 0, -1).await.unwrap() as usize;
            seen = read_all(&client, "out", written)
                .await
                .into_iter()
                .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                .collect();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(app.metrics().threads_replaced(), 1);
        assert!(!app.has_failed_thread());
        app.close().await.unwrap();
    });
}

#[test]
fn shutting_down_the_application_stops_every_instance() {
    use sluice_streams::StreamThreadExceptionResponse::ShutdownApplication;
    on_embedded_node(|client| async move {
        create(&client, "in", 2).await;
        create(&client, "out", 1).await;
        let first = start_with(&client, flaky_copy(false), ShutdownApplication).await;
        let second = start_with(&client, flaky_copy(false), ShutdownApplication).await;
        produce(&client, "in", &inputs()).await;
        // Whichever instance meets `boom` asks the group; both stop.
        eventually("both instances stopped", || {
            first.has_failed_thread() && second.has_failed_thread()
        })
        .await;
        let errors = [first.close().await, second.close().await];
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, Err(StreamsError::Serde { .. }))),
            "{errors:?}"
        );
        assert!(errors.iter().all(Result::is_err), "{errors:?}");
    });
}

#[test]
fn persistent_stores_start_again_from_their_files() {
    use sluice_streams::{Grouped, Materialized};
    on_embedded_node(|client| async move {
        create(&client, "views", 2).await;
        create(&client, "view-counts", 1).await;
        let topology = || {
            let builder = StreamsBuilder::new();
            builder
                .stream("views", Consumed::with(StringSerde, StringSerde))
                .group_by_key(Grouped::with_key(StringSerde))
                .count(Materialized::counts().named("counts").persistent())
                .to_stream()
                .to("view-counts", Produced::with(StringSerde, I64Serde));
            Arc::new(builder.build().unwrap())
        };
        let state = tempfile::tempdir().unwrap();
        let state_dir = state.path().to_string_lossy().into_owned();
        let props = [("state.dir", state_dir.as_str())];
        let views = |keys: &[&'static str]| -> Vec<(Option<&'static str>, Bytes)> {
            keys.iter()
                .map(|k| (Some(*k), Bytes::from_static(b"/")))
                .collect()
        };
        produce(&client, "views", &views(&["ann", "bob", "ann", "cid"])).await;
        let app = start_app(&client, topology(), "kept", &props).await;
        let store = app.store("counts", StringSerde, I64Serde).unwrap();
        eventually("the first counts", || {
            store.get(&"ann".to_string()).ok().flatten() == Some(2)
                && store.get(&"cid".to_string()).ok().flatten() == Some(1)
        })
        .await;
        app.close().await.unwrap();
        let files: Vec<_> = (0..2)
            .map(|p| {
                state
                    .path()
                    .join("kept")
                    .join(format!("0_{p}"))
                    .join("counts.sqlite")
            })
            .filter(|path| path.exists())
            .collect();
        assert_eq!(files.len(), 2, "one database per task");

        // Started again on the same state: nothing to restore, the counts are there.
        let app = start_app(&client, topology(), "kept", &props).await;
        let store = app.store("counts", StringSerde, I64Serde).unwrap();
        eventually("the kept counts", || {
            store.get(&"ann".to_string()).ok().flatten() == Some(2)
        })
        .await;
        assert_eq!(app.metrics().records_restored(), 0);
        produce(&client, "views", &views(&["ann", "bob"])).await;
        eventually("counting on", || {
            store.get(&"ann".to_string()).ok().flatten() == Some(3)
                && store.get(&"bob".to_string()).ok().flatten() == Some(2)
        })
        .await;
        app.close().await.unwrap();

        // Without the files, the stores come back from their changelogs.
        let fresh = tempfile::tempdir().unwrap();
        let fresh_dir = fresh.path().to_string_lossy().into_owned();
        let app = start_app(
            &client,
            topology(),
            "kept",
            &[("state.dir", fresh_dir.as_str())],
        )
        .await;
        let store = app.store("counts", StringSerde, I64Serde).unwrap();
        eventually("the restored counts", || {
            store.get(&"ann".to_string()).ok().flatten() == Some(3)
        })
        .await;
        assert!(
            app.metrics().records_restored() >= 3,
            "{}",
            app.metrics().records_restored()
        );
        app.close().await.unwrap();
    });
}
