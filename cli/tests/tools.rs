//! The `sluice` command-line tools against an in-process broker.

use std::process::{Command, Stdio};

mod common;

use common::*;

#[test]
fn topics_lifecycle_like_kafka_topics() {
    let f = start();
    assert_eq!(
        ok(sluice(
            &f,
            &[
                "topics",
                "create",
                "--topic",
                "orders",
                "--partitions",
                "3",
                "--config",
                "retention.ms=60000"
            ],
            ""
        )),
        "Created topic orders.\n"
    );
    let err = fails(sluice(&f, &["topics", "create", "--topic", "orders"], ""));
    assert!(err.contains("TopicAlreadyExists"), "{err}");
    ok(sluice(
        &f,
        &["topics", "create", "--topic", "orders", "--if-not-exists"],
        "",
    ));
    let err = fails(sluice(&f, &["topics", "create", "--topic", "bad name"], ""));
    assert!(
        err.contains("InvalidTopicException")
            && err.contains("contains one or more characters other than ASCII alphanumerics"),
        "{err}"
    );
    let err = fails(sluice(
        &f,
        &[
            "topics",
            "create",
            "--topic",
            "x",
            "--replication-factor",
            "3",
        ],
        "",
    ));
    assert!(err.contains("InvalidReplicationFactor"), "{err}");
    // Kafka lists its internal topics too (`__consumer_offsets`, once a group was used).
    let listed = ok(sluice(&f, &["topics", "list"], ""));
    let user_topics: Vec<&str> = listed.lines().filter(|t| !t.starts_with("__")).collect();
    assert_eq!(user_topics, ["orders"], "{listed}");
    let described = ok(sluice(&f, &["topics", "describe", "--topic", "orders"], ""));
    assert!(
        described.contains("PartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=60000"),
        "{described}"
    );
    assert!(
        described.contains("\tTopic: orders\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1"),
        "{described}"
    );
    ok(sluice(
        &f,
        &[
            "topics",
            "alter",
            "--topic",
            "orders",
            "--partitions",
            "4",
            "--config",
            "cleanup.policy=compact",
            "--delete-config",
            "retention.ms",
        ],
        "",
    ));
    let described = ok(sluice(&f, &["topics", "describe", "--topic", "orders"], ""));
    assert!(
        described
            .contains("PartitionCount: 4\tReplicationFactor: 1\tConfigs: cleanup.policy=compact"),
        "{described}"
    );
    let err = fails(sluice(
        &f,
        &["topics", "alter", "--topic", "orders", "--partitions", "2"],
        "",
    ));
    assert!(err.contains("InvalidPartitions"), "{err}");
    assert_eq!(
        ok(sluice(&f, &["topics", "delete", "--topic", "orders"], "")),
        "Deleted topic orders.\n"
    );
    let err = fails(sluice(&f, &["topics", "delete", "--topic", "orders"], ""));
    assert!(err.contains("UnknownTopicOrPartition"), "{err}");
}

#[test]
fn produce_and_consume_like_the_console_tools() {
    let f = start();
    ok(sluice(
        &f,
        &["topics", "create", "--topic", "lines", "--partitions", "1"],
        "",
    ));
    let input = "h1:a,h2:b\tk1:first\nNO\tk2:second:with:colons\n";
    let err = fails(sluice(
        &f,
        &[
            "produce",
            "--topic",
            "lines",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--property",
            "parse.headers=true",
        ],
        input,
    ));
    assert!(err.contains("line 2"), "{err}");
    let input = "h1:a,h2:b\tk1:first\n\tk2:second:with:colons\n";
    ok(sluice(
        &f,
        &[
            "produce",
            "--topic",
            "lines",
            "--compression",
            "zstd",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--property",
            "parse.headers=true",
        ],
        input,
    ));
    let out = ok(sluice(
        &f,
        &[
            "consume",
            "--topic",
            "lines",
            "--from-beginning",
            "--max-messages",
            "3",
            "--timeout-ms",
            "3000",
            "--property",
            "print.key=true",
            "--property",
            "print.offset=true",
            "--property",
            "print.headers=true",
            "--property",
            "key.separator=|",
        ],
        "",
    ));
    assert_eq!(
        out,
        "Offset:0|h1:a,h2:b|k1|first\nOffset:1|NO_HEADERS|k2|second:with:colons\n"
    );
    let out = ok(sluice(
        &f,
        &[
            "consume",
            "--topic",
            "lines",
            "--offset",
            "-1",
            "--max-messages",
            "1",
        ],
        "",
    ));
    assert_eq!(out, "second:with:colons\n");

    // A file, with acks=1 and lz4; over-sized lines fail with the broker's error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    let lines: String = (0..5000).map(|i| format!("line-{i}\n")).collect();
    std::fs::write(&path, &lines).unwrap();
    ok(sluice(
        &f,
        &[
            "produce",
            "--topic",
            "file",
            "--file",
            path.to_str().unwrap(),
            "--acks",
            "1",
            "--compression",
            "lz4",
        ],
        "",
    ));
    let out = ok(sluice(
        &f,
        &[
            "consume",
            "--topic",
            "file",
            "--from-beginning",
            "--max-messages",
            "5000",
        ],
        "",
    ));
    assert_eq!(out, lines);
    let big = "x".repeat(200_000) + "\n";
    let err = fails(sluice(&f, &["produce", "--topic", "file"], &big));
    assert!(err.contains("MessageTooLarge"), "{err}");
    let err = fails(sluice(
        &f,
        &[
            "consume",
            "--topic",
            "file",
            "--group",
            "g",
            "--partition",
            "0",
        ],
        "",
    ));
    assert!(err.contains("cannot be combined"), "{err}");
}

#[test]
fn configs_describe_and_alter_like_kafka_configs() {
    let f = start();
    ok(sluice(&f, &["topics", "create", "--topic", "c"], ""));
    ok(sluice(
        &f,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "c",
            "--add-config",
            "retention.ms=1000,segment.bytes=1048576",
        ],
        "",
    ));
    let out = ok(sluice(
        &f,
        &[
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "c",
        ],
        "",
    ));
    assert!(
        out.contains("retention.ms=1000 (DYNAMIC_TOPIC_CONFIG)")
            && out.contains("segment.bytes=1048576"),
        "{out}"
    );
    ok(sluice(
        &f,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "c",
            "--delete-config",
            "retention.ms",
        ],
        "",
    ));
    let out = ok(sluice(
        &f,
        &[
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "c",
            "--all",
        ],
        "",
    ));
    assert!(
        out.contains("retention.ms=604800000 (DEFAULT_CONFIG)"),
        "{out}"
    );
    let err = fails(sluice(
        &f,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "c",
            "--add-config",
            "retention.ms=soon",
        ],
        "",
    ));
    assert!(
        err.contains("InvalidConfig") && err.contains("retention.ms"),
        "{err}"
    );
    let out = ok(sluice(
        &f,
        &[
            "configs",
            "describe",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--all",
        ],
        "",
    ));
    assert!(
        out.contains("message.max.bytes=100000 (STATIC_BROKER_CONFIG)"),
        "{out}"
    );
    let err = fails(sluice(
        &f,
        &[
            "configs",
            "alter",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--add-config",
            "num.partitions=3",
        ],
        "",
    ));
    assert!(
        err.contains("Cannot update these configs dynamically: [num.partitions]"),
        "{err}"
    );
    // Dynamic broker configs, per broker and for the cluster, as kafka-configs does them.
    let done = ok(sluice(
        &f,
        &[
            "configs",
            "alter",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--add-config",
            "log.retention.ms=3600000",
        ],
        "",
    ));
    assert!(done.contains("Completed updating config for 1."), "{done}");
    let done = ok(sluice(
        &f,
        &[
            "configs",
            "alter",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--add-config",
            "log.segment.bytes=2097152",
        ],
        "",
    ));
    assert!(done.contains("default config for brokers"), "{done}");
    let out = ok(sluice(
        &f,
        &[
            "configs",
            "describe",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
        ],
        "",
    ));
    assert!(
        out.contains("log.retention.ms=3600000 (DYNAMIC_BROKER_CONFIG)")
            && out.contains("log.segment.bytes=2097152 (DYNAMIC_DEFAULT_BROKER_CONFIG)"),
        "{out}"
    );
}

#[test]
fn a_broker_that_is_not_there_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["topics", "list", "--bootstrap-server", "127.0.0.1:1"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("connect to 127.0.0.1:1"), "{err}");
}

#[test]
fn perf_tools_report_throughput_and_latency_as_json() {
    let f = start();
    let out = ok(sluice(
        &f,
        &[
            "bench",
            "produce",
            "--topic",
            "perf",
            "--num-records",
            "3000",
            "--record-size",
            "50",
            "--producer-props",
            "acks=1",
            "linger.ms=1",
            "--json",
        ],
        "",
    ));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in [
        "records_per_sec",
        "mb_per_sec",
        "p50_ms",
        "p99_ms",
        "p999_ms",
    ] {
        assert!(
            report[key].as_f64().is_some_and(|v| v >= 0.0),
            "{key} in {out}"
        );
    }
    assert_eq!(report["records"], 3000);
    let out = ok(sluice(
        &f,
        &[
            "bench",
            "consume",
            "--topic",
            "perf",
            "--messages",
            "3000",
            "--json",
        ],
        "",
    ));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["records"], 3000);
    assert_eq!(report["bytes"], 150_000);
    let err = fails(sluice(
        &f,
        &[
            "bench",
            "produce",
            "--topic",
            "perf",
            "--num-records",
            "1",
            "--record-size",
            "1",
            "--producer-props",
            "acks=2",
        ],
        "",
    ));
    assert!(err.contains("acks=2"), "{err}");

    // Prebuilt batches: 2,500 records in batches of 10 (batch.size 600 over 50-byte records),
    // all of them in the log afterwards; the limits of --compare-log come with the report.
    let out = ok(sluice(
        &f,
        &[
            "bench",
            "produce",
            "--topic",
            "prebuilt",
            "--num-records",
            "2500",
            "--record-size",
            "50",
            "--producer-props",
            "acks=1",
            "batch.size=600",
            "--prebuilt-batches",
            "--compare-log",
            "--json",
        ],
        "",
    ));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["records"], 2500);
    for key in [
        "log_ratio",
        "loopback_write_mb_per_sec",
        "kafka_shaped_loop_mb_per_sec",
    ] {
        assert!(
            report[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {out}"
        );
    }
    let out = ok(sluice(
        &f,
        &[
            "bench",
            "consume",
            "--topic",
            "prebuilt",
            "--messages",
            "2500",
            "--json",
        ],
        "",
    ));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["bytes"], 125_000);
    let err = fails(sluice(
        &f,
        &[
            "bench",
            "produce",
            "--topic",
            "prebuilt",
            "--num-records",
            "1",
            "--record-size",
            "1",
            "--producer-props",
            "acks=0",
            "--prebuilt-batches",
        ],
        "",
    ));
    assert!(err.contains("acks"), "{err}");
}

#[test]
fn embedded_benches_compare_the_in_process_path_with_loopback() {
    // --embedded starts its own broker; the fixture's is not used.
    let f = start();
    for (tool, count) in [("produce", "--num-records"), ("consume", "--messages")] {
        let out = ok(sluice(
            &f,
            &[
                "bench",
                tool,
                "--embedded",
                "--topic",
                "emb",
                count,
                "2000",
                "--record-size",
                "40",
                "--json",
            ],
            "",
        ));
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(report["records"], 2000, "{tool}: {out}");
        if tool == "consume" {
            // Every record read back whole (the better run of each path is reported).
            assert_eq!(report["bytes"], 80_000, "{out}");
        }
        for key in ["loopback_records_per_sec", "embedded_ratio"] {
            assert!(
                report[key].as_f64().is_some_and(|v| v > 0.0),
                "{tool}: {key} in {out}"
            );
        }
    }
    let err = fails(sluice(
        &f,
        &[
            "bench",
            "consume",
            "--embedded",
            "--topic",
            "emb",
            "--messages",
            "0",
        ],
        "",
    ));
    assert!(err.contains("--messages"), "{err}");
}

#[test]
fn groups_like_kafka_consumer_groups() {
    let f = start();
    ok(sluice(
        &f,
        &["topics", "create", "--topic", "g2", "--partitions", "2"],
        "",
    ));
    for partition in ["0", "1"] {
        let lines: String = (0..10).map(|i| format!("p{partition}-{i}\n")).collect();
        ok(sluice(
            &f,
            &["produce", "--topic", "g2", "--partition", partition],
            &lines,
        ));
    }
    let err = fails(sluice(&f, &["groups", "describe", "--group", "nobody"], ""));
    assert!(err.contains("does not exist"), "{err}");
    // A plan without --execute changes nothing.
    let out = ok(sluice(
        &f,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "g2",
            "--to-latest",
        ],
        "",
    ));
    assert!(
        out.contains("g                    g2                           1           10"),
        "{out}"
    );
    assert_eq!(ok(sluice(&f, &["groups", "list"], "")), "");
    ok(sluice(
        &f,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "g2",
            "--to-latest",
            "--execute",
        ],
        "",
    ));
    assert_eq!(ok(sluice(&f, &["groups", "list"], "")), "g\n");
    ok(sluice(
        &f,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "g2:1",
            "--shift-by",
            "-3",
            "--execute",
        ],
        "",
    ));
    let out = ok(sluice(&f, &["groups", "describe", "--group", "g"], ""));
    assert!(out.contains("has no active members"), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with("g "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(&rows[0][1..6], &["g2", "0", "10", "10", "0"]);
    assert_eq!(&rows[1][1..6], &["g2", "1", "7", "10", "3"]);
    ok(sluice(
        &f,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "g2",
            "--to-datetime",
            "1970-01-01T00:00:00.000",
            "--execute",
        ],
        "",
    ));
    let out = ok(sluice(&f, &["groups", "describe", "--group", "g"], ""));
    assert!(
        out.lines()
            .filter(|l| l.starts_with("g "))
            .all(|l| l.split_whitespace().nth(3) == Some("0")),
        "{out}"
    );
    let err = fails(sluice(
        &f,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "g2",
            "--to-datetime",
            "soon",
        ],
        "",
    ));
    assert!(err.contains("--to-datetime"), "{err}");

    // With a live member (kcat's balanced consumer), offsets cannot be reset.
    let bootstrap = f.bootstrap();
    let mut member = Command::new("kcat")
        .args(["-b", &bootstrap, "-G", "g", "g2", "-q", "-f", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kcat (installed by .ci/run)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = ok(sluice(&f, &["groups", "describe", "--group", "g"], ""));
        if out.contains("rdkafka") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kcat never joined: {out}"
        );
    }
    let err = fails(sluice(
        &f,
        &[
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--topic",
            "g2",
            "--to-earliest",
            "--execute",
        ],
        "",
    ));
    assert!(err.contains("inactive"), "{err}");
    let err = fails(sluice(&f, &["groups", "delete", "--group", "g"], ""));
    assert!(err.contains("NonEmptyGroup"), "{err}");
    member.kill().unwrap();
    member.wait().unwrap();
}

#[test]
fn consume_with_a_group_resumes_where_the_group_committed() {
    let f = start();
    ok(sluice(
        &f,
        &["topics", "create", "--topic", "cg", "--partitions", "3"],
        "",
    ));
    for partition in ["0", "1", "2"] {
        let lines: String = (0..4).map(|i| format!("p{partition}-{i}\n")).collect();
        ok(sluice(
            &f,
            &["produce", "--topic", "cg", "--partition", partition],
            &lines,
        ));
    }
    // The first reader prints 5 of the 12 records; only those are committed.
    let first = ok(sluice(
        &f,
        &[
            "consume",
            "--topic",
            "cg",
            "--group",
            "readers",
            "--from-beginning",
            "--max-messages",
            "5",
        ],
        "",
    ));
    assert_eq!(first.lines().count(), 5);
    // The next reader of the group gets exactly the other 7.
    let second = ok(sluice(
        &f,
        &[
            "consume",
            "--topic",
            "cg",
            "--group",
            "readers",
            "--from-beginning",
            "--max-messages",
            "7",
            "--timeout-ms",
            "20000",
        ],
        "",
    ));
    let mut all: Vec<&str> = first.lines().chain(second.lines()).collect();
    all.sort_unstable();
    let mut expected: Vec<String> = (0..3)
        .flat_map(|p| (0..4).map(move |i| format!("p{p}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(all, expected);
    let described = ok(sluice(
        &f,
        &["groups", "describe", "--group", "readers"],
        "",
    ));
    assert!(
        described
            .lines()
            .filter(|l| l.starts_with("readers "))
            .all(|l| l.split_whitespace().nth(5) == Some("0")),
        "{described}"
    );
}

#[test]
fn bench_group_reports_settle_times() {
    for strategy in ["range", "cooperative-sticky"] {
        let output = Command::new("timeout")
            .args([
                "120",
                env!("CARGO_BIN_EXE_sluice"),
                "bench",
                "group",
                "--members",
                "3",
                "--partitions",
                "6",
                "--strategy",
                strategy,
                "--json",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let out = ok(output);
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(report["members"], 3);
        assert_eq!(report["strategy"], strategy);
        assert!(
            report["join_settle_ms"].as_f64().is_some_and(|ms| ms > 0.0),
            "{out}"
        );
    }
    let output = Command::new("timeout")
        .args([
            "60",
            env!("CARGO_BIN_EXE_sluice"),
            "bench",
            "group",
            "--strategy",
            "fair",
        ])
        .output()
        .unwrap();
    let err = fails(output);
    assert!(err.contains("--strategy fair"), "{err}");
}

#[test]
fn bench_streams_runs_nexmark_queries_topic_to_topic() {
    for query in ["q1", "q5", "join"] {
        let report = bench_report(
            &["streams", "--query", query, "--events", "5000"],
            &["events_per_sec", "loop_events_per_sec", "ratio"],
        );
        assert_eq!(report["events"], 5000);
        assert_eq!(report["query"], query);
    }
    let err = bench_fails(&["streams", "--query", "q9"]);
    assert!(err.contains("expected q1, q5 or join"), "{err}");
}

#[test]
fn bench_streams_runs_against_a_cluster_and_writes_input_for_another_implementation() {
    let f = start();
    let bootstrap = f.bootstrap();
    let report = bench_report(
        &[
            "streams",
            "--bootstrap-server",
            &bootstrap,
            "--query",
            "q5",
            "--events",
            "3000",
        ],
        &["events_per_sec"],
    );
    assert_eq!(report["events"], 3000);
    // The input alone, for bench/NexmarkKafkaStreams.java: its topic holds every bid.
    let made = bench_report(
        &[
            "streams",
            "--bootstrap-server",
            &bootstrap,
            "--produce-only",
            "--events",
            "2000",
        ],
        &["events"],
    );
    let topic = made["bids_topic"].as_str().unwrap().to_string();
    let offsets = ok(sluice(&f, &["topics", "describe", "--topic", &topic], ""));
    assert!(offsets.contains("PartitionCount: 1"), "{offsets}");
    // The 2000th record is at offset 1999 (values are binary: only the offsets are printed).
    let read = ok(sluice(
        &f,
        &[
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "2000",
            "--property",
            "print.offset=true",
            "--property",
            "print.value=false",
        ],
        "",
    ));
    assert_eq!(read.lines().last(), Some("Offset:1999"), "{read}");
}

#[test]
fn bench_connect_copies_a_file_through_the_file_connectors() {
    for converter in ["string", "json"] {
        let report = bench_report(
            &[
                "connect",
                "--lines",
                "3000",
                "--converter",
                converter,
                "--flush-interval-ms",
                "50",
            ],
            &["lines_per_sec", "copy_lines_per_sec", "ratio"],
        );
        assert_eq!(report["lines"], 3000);
        assert_eq!(report["converter"], converter);
    }
    let err = bench_fails(&["connect", "--converter", "avro"]);
    assert!(err.contains("expected string or json"), "{err}");
}

#[test]
fn bench_connect_rest_times_status_requests_against_a_bare_server() {
    let report = bench_report(
        &[
            "connect-rest",
            "--requests",
            "40",
            "--rate",
            "200",
            "--busy-lines",
            "2000",
        ],
        &["p50_ms", "p99_ms", "limit_p99_ms", "ratio_p99"],
    );
    assert_eq!(report["requests"], 40);
    assert!(report["max_ms"].as_f64() >= report["p99_ms"].as_f64());
    let err = bench_fails(&["connect-rest", "--rate", "0"]);
    assert!(err.contains("--rate must be at least 1"), "{err}");
}

#[test]
fn transactions_like_kafka_transactions() {
    use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
    use sluice_log::client::{Client, ClientOptions};
    let f = start();
    ok(sluice(&f, &["topics", "create", "--topic", "tx"], ""));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A transaction left open: a producer that began, wrote and went away.
    let producer_id = runtime.block_on(async {
        let client = Client::connect(&f.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        let mut config = ProducerConfig::default();
        config.set("transactional.id", "cli-tx").unwrap();
        let producer = Producer::new(client, config);
        producer.init_transactions().await.unwrap();
        producer.begin_transaction().unwrap();
        producer
            .send(ProducerRecord {
                topic: "tx".into(),
                partition: Some(0),
                value: Some(bytes::Bytes::from_static(b"hanging")),
                ..Default::default()
            })
            .await
            .unwrap();
        producer.flush().await;
        producer.producer_id_and_epoch().unwrap().0
    });
    let out = ok(sluice(&f, &["transactions", "list"], ""));
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("TransactionalId") && header.contains("TransactionState"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("cli-tx") && l.contains("Ongoing")),
        "{out}"
    );
    let out = ok(sluice(
        &f,
        &["transactions", "describe", "--transactional-id", "cli-tx"],
        "",
    ));
    assert!(out.contains("Ongoing") && out.contains("tx-0"), "{out}");
    let err = fails(sluice(
        &f,
        &["transactions", "describe", "--transactional-id", "nobody"],
        "",
    ));
    assert!(err.contains("could not be found"), "{err}");
    let out = ok(sluice(
        &f,
        &[
            "transactions",
            "describe-producers",
            "--topic",
            "tx",
            "--partition",
            "0",
        ],
        "",
    ));
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with(&producer_id.to_string()), "{out}");
    assert_eq!(row.split('\t').nth(5).map(str::trim), Some("0"), "{out}");
    // Nothing reads past the open transaction under read_committed, until it is aborted.
    let err = fails(sluice(
        &f,
        &[
            "transactions",
            "abort",
            "--topic",
            "tx",
            "--partition",
            "0",
            "--start-offset",
            "5",
        ],
        "",
    ));
    assert!(
        err.contains("Could not find any open transactions"),
        "{err}"
    );
    ok(sluice(
        &f,
        &[
            "transactions",
            "abort",
            "--topic",
            "tx",
            "--partition",
            "0",
            "--start-offset",
            "0",
        ],
        "",
    ));
    let out = ok(sluice(
        &f,
        &[
            "transactions",
            "describe-producers",
            "--topic",
            "tx",
            "--partition",
            "0",
        ],
        "",
    ));
    let row = out.lines().nth(1).unwrap_or_default();
    assert_eq!(row.split('\t').nth(5).map(str::trim), Some("None"), "{out}");
}
