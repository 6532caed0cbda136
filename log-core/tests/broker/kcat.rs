//! kcat (librdkafka 2.0, Debian's package) against the broker.

use std::time::{SystemTime, UNIX_EPOCH};

use super::fixtures::{run_bounded, TestBroker};

fn kcat(broker: &TestBroker, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["-b", bootstrap.as_str()];
    all.extend_from_slice(args);
    run_bounded(60, "kcat", &all, stdin)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn check(output: std::process::Output) -> std::process::Output {
    assert!(
        output.status.success(),
        "kcat failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn metadata_lists_the_broker_and_auto_created_topics() {
    let broker = TestBroker::start(&[("num.partitions", "3")]);
    check(kcat(&broker, &["-P", "-t", "auto-created"], b"hello\n"));
    let out = stdout(&check(kcat(&broker, &["-L"], b"")));
    assert!(
        out.contains(&format!("broker 1 at {}", broker.bootstrap())),
        "{out}"
    );
    assert!(
        out.contains("topic \"auto-created\" with 3 partitions"),
        "{out}"
    );
    assert!(
        out.contains("partition 2, leader 1, replicas: 1, isrs: 1"),
        "{out}"
    );
}

#[test]
fn every_codec_and_acks_setting_round_trips_in_order() {
    let broker = TestBroker::start(&[]);
    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        for acks in ["-1", "0", "1"] {
            let lines: Vec<String> = (0..20)
                .map(|i| format!("k{i}:{codec}-acks{acks}-{i}"))
                .collect();
            let input = lines.join("\n") + "\n";
            let acks_setting = format!("request.required.acks={acks}");
            check(kcat(
                &broker,
                &[
                    "-P",
                    "-t",
                    "codecs",
                    "-K:",
                    "-z",
                    codec,
                    "-X",
                    &acks_setting,
                ],
                input.as_bytes(),
            ));
            expected.extend(lines.iter().map(|line| line.replacen(':', "=", 1)));
        }
    }
    let count = expected.len().to_string();
    let out = stdout(&check(kcat(
        &broker,
        &[
            "-C",
            "-t",
            "codecs",
            "-o",
            "beginning",
            "-c",
            &count,
            "-f",
            "%k=%s\n",
        ],
        b"",
    )));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, expected.iter().map(String::as_str).collect::<Vec<_>>());
    // Offsets are dense from 0.
    let out = stdout(&check(kcat(
        &broker,
        &[
            "-C",
            "-t",
            "codecs",
            "-o",
            "beginning",
            "-c",
            &count,
            "-f",
            "%o\n",
        ],
        b"",
    )));
    let offsets: Vec<usize> = out.lines().map(|o| o.parse().unwrap()).collect();
    assert_eq!(offsets, (0..expected.len()).collect::<Vec<_>>());
}

#[test]
fn consumers_start_from_a_timestamp_or_an_offset() {
    let broker = TestBroker::start(&[]);
    check(kcat(&broker, &["-P", "-t", "times"], b"old-1\nold-2\n"));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1;
    // The producer stamps records with its clock: wait until it has passed `now_ms`.
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        <= now_ms
    {
        std::thread::yield_now();
    }
    check(kcat(&broker, &["-P", "-t", "times"], b"new-1\nnew-2\n"));
    let from = format!("s@{now_ms}");
    let out = stdout(&check(kcat(
        &broker,
        &["-C", "-t", "times", "-o", &from, "-c", "2", "-f", "%s\n"],
        b"",
    )));
    assert_eq!(out, "new-1\nnew-2\n");
    let out = stdout(&check(kcat(
        &broker,
        &["-C", "-t", "times", "-o", "1", "-c", "1", "-f", "%s\n"],
        b"",
    )));
    assert_eq!(out, "old-2\n");
    let out = stdout(&check(kcat(
        &broker,
        &["-C", "-t", "times", "-o", "-1", "-c", "1", "-f", "%s\n"],
        b"",
    )));
    assert_eq!(out, "new-2\n");
}

#[test]
fn a_message_over_message_max_bytes_is_refused_and_the_broker_stays_up() {
    let broker = TestBroker::start(&[("message.max.bytes", "100000")]);
    let near = "x".repeat(99_000) + "\n";
    check(kcat(
        &broker,
        &["-P", "-t", "big", "-X", "message.max.bytes=1000000"],
        near.as_bytes(),
    ));
    let over = "y".repeat(200_000) + "\n";
    let out = kcat(
        &broker,
        &["-P", "-t", "big", "-X", "message.max.bytes=1000000"],
        over.as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Message size too large") || stderr.contains("MSG_SIZE_TOO_LARGE"),
        "{stderr}"
    );
    // Still serving: the first message is there, the second is not.
    let out = stdout(&check(kcat(
        &broker,
        &["-C", "-t", "big", "-o", "beginning", "-e", "-f", "%S\n"],
        b"",
    )));
    assert_eq!(out, "99000\n");
}

#[test]
fn topics_and_records_survive_a_restart() {
    let broker = TestBroker::start(&[("num.partitions", "2")]);
    check(kcat(
        &broker,
        &["-P", "-t", "durable", "-p", "1"],
        b"one\ntwo\n",
    ));
    let dir = broker.stop();
    let broker = TestBroker::start_in(dir, &[]);
    assert!(
        broker.open_stats().clean_shutdown,
        "a clean stop needs no recovery at the next start"
    );
    assert_eq!(broker.open_stats().recovery.segments_recovered, 0);
    let out = stdout(&check(kcat(&broker, &["-L", "-t", "durable"], b"")));
    assert!(out.contains("topic \"durable\" with 2 partitions"), "{out}");
    let out = stdout(&check(kcat(
        &broker,
        &[
            "-C",
            "-t",
            "durable",
            "-p",
            "1",
            "-o",
            "beginning",
            "-c",
            "2",
            "-f",
            "%s\n",
        ],
        b"",
    )));
    assert_eq!(out, "one\ntwo\n");
}

#[test]
fn a_group_commits_offsets_that_survive_a_restart() {
    let broker = TestBroker::start(&[
        ("num.partitions", "3"),
        ("group.initial.rebalance.delay.ms", "0"),
    ]);
    let lines: String = (0..30).map(|i| format!("record-{i}\n")).collect();
    // Everything in partition 0: partitions without a committed offset start at the end
    // (kcat's auto.offset.reset), so the test must not depend on where records land.
    check(kcat(
        &broker,
        &["-P", "-t", "grouped", "-p", "0"],
        lines.as_bytes(),
    ));
    // A balanced consumer reads everything and commits (kcat commits on exit).
    let out = stdout(&check(kcat(
        &broker,
        &[
            "-G",
            "readers",
            "grouped",
            "-o",
            "beginning",
            "-c",
            "30",
            "-f",
            "%s\n",
        ],
        b"",
    )));
    assert_eq!(out.lines().count(), 30);
    let dir = broker.stop();
    let broker = TestBroker::start_in(dir, &[("group.initial.rebalance.delay.ms", "0")]);
    check(kcat(
        &broker,
        &["-P", "-t", "grouped", "-p", "0"],
        b"after-restart\n",
    ));
    // The group resumes where it committed: only the new record.
    let out = stdout(&check(kcat(
        &broker,
        &["-G", "readers", "grouped", "-c", "1", "-f", "%s\n"],
        b"",
    )));
    assert_eq!(out, "after-restart\n");
}
