//! A group of Sluice's group consumer and a confluent-kafka consumer (range assignor): the six
//! partitions are split between them, each owned once; when Sluice's member leaves, the other
//! takes them all.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_log::client::group_consumer::{GroupConfig, GroupConsumer};
use sluice_log::client::{Client, ClientOptions, NewTopic};

use super::fixtures::TestBroker;

#[test]
fn sluice_and_confluent_kafka_members_share_a_group() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let bootstrap = broker.bootstrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The confluent-kafka member of tests/clients/confluent_kafka_group.py (its topic and group
    // names for the range strategy), reporting its assignment on stdout.
    runtime.block_on(async {
        let client = Client::connect(&bootstrap, ClientOptions::default())
            .await
            .unwrap();
        let topic = NewTopic {
            name: "group-six-range".into(),
            partitions: 6,
            replication_factor: 1,
            configs: Default::default(),
        };
        assert!(client.create_topics(&[topic], false).await.unwrap()[0]
            .1
            .is_ok());
    });
    let script = format!(
        "{}/tests/clients/confluent_kafka_group.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut python = Command::new("python3")
        .args([script.as_str(), bootstrap.as_str(), "member", "py", "range"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with confluent-kafka (installed by .ci/run)");
    let (tx, rx) = mpsc::channel::<BTreeSet<i32>>();
    let stdout = python.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("ASSIGN ") {
                let partitions = rest
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse().unwrap())
                    .collect();
                if tx.send(partitions).is_err() {
                    break;
                }
            }
        }
    });
    let mut python_assignment = BTreeSet::new();
    let mut await_python = |want: &dyn Fn(&BTreeSet<i32>) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !want(&python_assignment) {
            let left = deadline.saturating_duration_since(Instant::now());
            python_assignment = rx
                .recv_timeout(left)
                .expect("the confluent-kafka member reports its assignment");
        }
        python_assignment.clone()
    };
    await_python(&|a| a.len() == 6);
    runtime.block_on(async {
        let client = Client::connect(&bootstrap, ClientOptions::default())
            .await
            .unwrap();
        let mut config = GroupConfig::new("group-of-three-range");
        config.session_timeout = Duration::from_secs(10);
        config.heartbeat_interval = Duration::from_millis(300);
        config.max_poll_interval = Duration::from_secs(30);
        let joining = tokio::spawn(async move {
            GroupConsumer::subscribe(client, vec!["group-six-range".into()], config).await
        });
        // The confluent member keeps polling, sees the rebalance, rejoins; the join completes.
        let ours = tokio::time::timeout(Duration::from_secs(60), joining)
            .await
            .expect("joined")
            .unwrap()
            .unwrap();
        let mine: BTreeSet<i32> = ours.assignment().iter().map(|(_, p)| *p).collect();
        let theirs = await_python(&|a| a.len() == 3);
        assert_eq!(mine.len(), 3, "{mine:?}");
        assert!(mine.is_disjoint(&theirs), "{mine:?} {theirs:?}");
        assert_eq!(mine.union(&theirs).count(), 6);
        ours.close().await.unwrap();
        await_python(&|a| a.len() == 6);
    });
    python.kill().unwrap();
    python.wait().unwrap();
}
