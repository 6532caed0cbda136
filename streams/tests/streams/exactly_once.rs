//! `processing.guarantee=exactly_once_v2`: a word count (a repartition topic, a persistent
//! store with its changelog) whose process is killed with SIGKILL again and again while lines
//! keep coming. Its output, read `read_committed`, holds every word's counts exactly once:
//! 1, 2, ..., n in order, with no count repeated or skipped.
//!
//! The application runs in a child process: this test binary run again on
//! `exactly_once_child_application`, which does nothing unless the parent started it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::{Client, ClientOptions};
use sluice_log::TopicPartition;
use sluice_streams::serdes::{I64Serde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, StreamsBuilder, StreamsConfig,
    Topology,
};

use super::fixtures::create;
use super::runtime::produce;

const CHILD_ENV: &str = "SLUICE_EOS_CHILD";

fn word_count() -> Arc<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream("eos-text", Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, word| word.clone(),
            Grouped::with(StringSerde, StringSerde).named("eos-words"),
        )
        .count(Materialized::counts().named("eos-counts").persistent())
        .to_stream()
        .to("eos-totals", Produced::with(StringSerde, I64Serde));
    Arc::new(builder.build().unwrap())
}

/// The application, until killed: a no-op unless `SLUICE_EOS_CHILD` is `bootstrap|state dir`.
#[test]
fn exactly_once_child_application() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (bootstrap, state_dir) = spec.split_once('|').expect("bootstrap|state dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::connect(bootstrap, ClientOptions::default())
            .await
            .unwrap();
        let config = StreamsConfig::from_props([
            ("application.id", "eos-words"),
            ("processing.guarantee", "exactly_once_v2"),
            ("state.dir", state_dir),
            ("statestore.cache.max.bytes", "0"),
            // Long enough that a kill most likely finds a transaction open.
            ("commit.interval.ms", "300"),
            ("consumer.heartbeat.interval.ms", "100"),
            // A restarted instance takes its place at once (static membership).
            ("consumer.group.instance.id", "eos-words-instance"),
            ("consumer.session.timeout.ms", "6000"),
            // The killed instance's open transaction is aborted soon.
            ("producer.transaction.timeout.ms", "1000"),
        ])
        .unwrap();
        let _app = KafkaStreams::start(word_count(), config, client)
            .await
            .unwrap();
        println!("RUNNING");
        // Until the parent kills it (bounded, should the parent be gone).
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

/// The counts of each word in `eos-totals`, in order, read `read_committed` until every
/// word's last count is what `expected` says (or 60 s passed).
async fn committed_counts(
    client: &Arc<Client>,
    expected: &BTreeMap<String, i64>,
) -> BTreeMap<String, Vec<i64>> {
    let config = ConsumerConfig {
        isolation_level: 1,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(TopicPartition::new("eos-totals", 0), StartOffset::Beginning)],
        config,
    )
    .await
    .unwrap();
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = |seen: &BTreeMap<String, Vec<i64>>| {
        expected
            .iter()
            .all(|(word, n)| seen.get(word).and_then(|c| c.last()) == Some(n))
    };
    while !done(&seen) && Instant::now() < deadline {
        for record in consumer
            .poll_timeout(1000, Duration::from_millis(200))
            .await
            .unwrap()
        {
            let word = String::from_utf8(record.key.unwrap_or_default().to_vec()).unwrap();
            let value: [u8; 8] = record
                .value
                .unwrap_or_default()
                .as_ref()
                .try_into()
                .unwrap();
            seen.entry(word)
                .or_default()
                .push(i64::from_be_bytes(value));
        }
    }
    seen
}

#[test]
fn a_word_count_killed_again_and_again_under_exactly_once_counts_every_word_once() {
    let dir = tempfile::tempdir().unwrap();
    // The instance restarts on its state directory, except in rounds 2 and 3, where it starts
    // on an empty one, as on another machine: a new process id, so the killed instance's open
    // transaction ends only by its timeout, and every store comes from its changelog. Round 3
    // so finds a transaction open on a changelog with records committed after its start:
    // restoring only up to the last stable offset would miss them.
    let states: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let node = sluice_log::Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .config(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "100",
        )
        .listen("127.0.0.1:0")
        .start()
        .unwrap();
    let bootstrap = node.bootstrap().expect("the node listens");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let client = Client::connect(&bootstrap, ClientOptions::default())
            .await
            .unwrap();
        create(&client, "eos-text", 2).await;
        create(&client, "eos-totals", 1).await;
        client
    });
    let spawn = |state: &tempfile::TempDir| {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "exactly_once::exactly_once_child_application",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_ENV, format!("{bootstrap}|{}", state.path().display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "RUNNING" {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the application did not start"
            );
        }
        (child, out)
    };
    let words = ["alpha", "beta", "gamma", "delta", "epsilon"];
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut line_no = 0usize;
    let mut send_lines = |n: usize| {
        let lines: Vec<(Option<&str>, Bytes)> = (0..n)
            .map(|_| {
                line_no += 1;
                let line: Vec<&str> = (0..3).map(|k| words[(line_no * 7 + k * 3) % 5]).collect();
                for w in &line {
                    *expected.entry(w.to_string()).or_default() += 1;
                }
                (
                    Some(["a", "b", "c"][line_no % 3]),
                    Bytes::from(line.join(" ")),
                )
            })
            .collect();
        runtime.block_on(produce(&client, "eos-text", &lines));
    };
    // Killed while it processes, at different moments, five times, each time after it
    // committed some of the round's work (its committed input positions advanced).
    let committed = || {
        runtime
            .block_on(client.committed_offsets("eos-words"))
            .unwrap()
            .values()
            .sum::<i64>()
    };
    let output_end = || {
        runtime
            .block_on(client.list_offset("eos-totals", 0, -1))
            .unwrap()
    };
    let open_transactions = || {
        runtime.block_on(async {
            let mut open = 0;
            for (_, listing) in client.list_transactions(&[]).await.unwrap() {
                let txn = client
                    .describe_transaction(&listing.transactional_id)
                    .await
                    .unwrap();
                open += usize::from(txn.listing.state == "Ongoing");
            }
            open
        })
    };
    let mut killed_open = 0;
    for round in 0..5u64 {
        let (mut child, _out) = spawn(&states[[0, 0, 1, 2, 2][round as usize]]);
        let before = committed();
        send_lines(40);
        let deadline = Instant::now() + Duration::from_secs(30);
        while committed() < before + 20 {
            assert!(Instant::now() < deadline, "round {round} committed nothing");
            std::thread::sleep(Duration::from_millis(5));
        }
        // More lines, and the kill once it has written results of them (in a transaction it
        // has not committed yet, most likely: it commits every 100 ms).
        let written = output_end();
        send_lines(20);
        while output_end() == written {
            assert!(Instant::now() < deadline, "round {round} wrote nothing");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(3 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        killed_open += usize::from(open_transactions() > 0);
    }
    assert!(
        killed_open > 0,
        "no instance was killed with a transaction open"
    );
    let (mut child, _out) = spawn(&states[2]);
    send_lines(20);
    let counts = runtime.block_on(committed_counts(&client, &expected));
    child.kill().unwrap();
    child.wait().unwrap();
    for (word, total) in &expected {
        let seen = counts.get(word).cloned().unwrap_or_default();
        let once: Vec<i64> = (1..=*total).collect();
        assert_eq!(
            seen, once,
            "the counts of {word:?}: every one once, in order"
        );
    }
    drop(runtime);
    node.shutdown().unwrap();
}
