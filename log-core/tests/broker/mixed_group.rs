//! Groups of Sluice's group consumer and a confluent-kafka (librdkafka) consumer: the six
//! partitions are split between them, each owned once; when Sluice's member leaves, the other
//! takes them all. With the range assignor (eager), and with cooperative-sticky (incremental:
//! librdkafka leading and Sluice joining, then Sluice leading and librdkafka joining).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_log::client::group_consumer::{Assignor, GroupConfig, GroupConsumer, GroupEvent};
use sluice_log::client::{Client, ClientOptions, NewTopic};

use super::fixtures::{runtime, TestBroker};

/// The confluent-kafka member of tests/clients/confluent_kafka_group.py (its topic and group
/// names for `strategy`), reporting each assignment it gets on stdout.
struct PythonMember {
    child: Child,
    assignments: mpsc::Receiver<BTreeSet<i32>>,
    current: BTreeSet<i32>,
    /// Every assignment reported so far, in order.
    history: Vec<BTreeSet<i32>>,
}

impl PythonMember {
    fn start(bootstrap: &str, strategy: &str) -> PythonMember {
        let script = format!(
            "{}/tests/clients/confluent_kafka_group.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = Command::new("python3")
            .args([script.as_str(), bootstrap, "member", "py", strategy])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with confluent-kafka (installed by .ci/run)");
        let (tx, assignments) = mpsc::channel::<BTreeSet<i32>>();
        let stdout = child.stdout.take().unwrap();
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
        PythonMember {
            child,
            assignments,
            current: BTreeSet::new(),
            history: Vec::new(),
        }
    }

    /// Waits (up to 60 s) until the member reports an assignment that `want` accepts.
    fn await_assignment(&mut self, want: &dyn Fn(&BTreeSet<i32>) -> bool) -> BTreeSet<i32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !want(&self.current) {
            let left = deadline.saturating_duration_since(Instant::now());
            let assignment = self
                .assignments
                .recv_timeout(left)
                .expect("the confluent-kafka member reports its assignment");
            self.seen(assignment);
        }
        self.current.clone()
    }

    fn seen(&mut self, assignment: BTreeSet<i32>) {
        self.history.push(assignment.clone());
        self.current = assignment;
    }

    /// Whether the member ever reported no partitions after it had all six (an eager
    /// rebalance revokes everything first; a cooperative one never does here).
    fn was_emptied(&self) -> bool {
        self.history
            .iter()
            .skip_while(|a| a.len() < 6)
            .any(BTreeSet::is_empty)
    }
}

impl Drop for PythonMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn create_topic(bootstrap: &str, name: &str) {
    let client = Client::connect(bootstrap, ClientOptions::default())
        .await
        .unwrap();
    let topic = NewTopic {
        name: name.into(),
        partitions: 6,
        replication_factor: 1,
        configs: Default::default(),
    };
    assert!(client.create_topics(&[topic], false).await.unwrap()[0]
        .1
        .is_ok());
}

fn group_config(strategy: &str) -> GroupConfig {
    let mut config = GroupConfig::new(&format!("group-of-three-{strategy}"));
    config.session_timeout = Duration::from_secs(10);
    config.heartbeat_interval = Duration::from_millis(300);
    config.max_poll_interval = Duration::from_secs(30);
    config.fetch.max_wait = Duration::from_millis(100);
    config.assignment_strategy =
        vec![Assignor::from_name(strategy).expect("an assignor Sluice has")];
    config
}

/// Polls `member` (taking part in rebalances) until `done` accepts its assignment and the
/// confluent member's; returns both and every partition Sluice's member gave up meanwhile.
async fn poll_until(
    member: &mut GroupConsumer,
    python: &mut PythonMember,
    done: impl Fn(&BTreeSet<i32>, &BTreeSet<i32>) -> bool,
) -> (BTreeSet<i32>, BTreeSet<i32>, Vec<i32>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut given_up = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "the group did not settle in 60 s"
        );
        if let GroupEvent::Revoked(p) | GroupEvent::Lost(p) = member.next_event().await.unwrap() {
            given_up.extend(p.iter().map(|tp| tp.partition));
        }
        while let Ok(assignment) = python.assignments.try_recv() {
            python.seen(assignment);
        }
        let mine: BTreeSet<i32> = member.assignment().iter().map(|tp| tp.partition).collect();
        if done(&mine, &python.current) {
            return (mine, python.current.clone(), given_up);
        }
    }
}

fn split_evenly(mine: &BTreeSet<i32>, theirs: &BTreeSet<i32>) -> bool {
    mine.len() == 3 && theirs.len() == 3 && mine.is_disjoint(theirs)
}

#[test]
fn sluice_and_confluent_kafka_members_share_a_group() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let bootstrap = broker.bootstrap();
    let runtime = runtime();
    runtime.block_on(create_topic(&bootstrap, "group-six-range"));
    let mut python = PythonMember::start(&bootstrap, "range");
    python.await_assignment(&|a| a.len() == 6);
    runtime.block_on(async {
        let client = Client::connect(&bootstrap, ClientOptions::default())
            .await
            .unwrap();
        let config = group_config("range");
        let joining = tokio::spawn(async move {
            GroupConsumer::subscribe(client, vec!["group-six-range".into()], config).await
        });
        // The confluent member keeps polling, sees the rebalance, rejoins; the join completes.
        let ours = tokio::time::timeout(Duration::from_secs(60), joining)
            .await
            .expect("joined")
            .unwrap()
            .unwrap();
        let mine: BTreeSet<i32> = ours.assignment().iter().map(|tp| tp.partition).collect();
        let theirs = python.await_assignment(&|a| a.len() == 3);
        assert!(split_evenly(&mine, &theirs), "{mine:?} {theirs:?}");
        ours.close().await.unwrap();
        python.await_assignment(&|a| a.len() == 6);
    });
}

#[test]
fn cooperative_sticky_groups_of_sluice_and_librdkafka_rebalance_incrementally() {
    let strategy = "cooperative-sticky";
    let topic = format!("group-six-{strategy}");
    let runtime = runtime();

    // librdkafka leads; Sluice's member joins and gets half, librdkafka keeps the other half
    // without giving up the partitions it keeps.
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let bootstrap = broker.bootstrap();
    runtime.block_on(create_topic(&bootstrap, &topic));
    let mut python = PythonMember::start(&bootstrap, strategy);
    python.await_assignment(&|a| a.len() == 6);
    runtime.block_on(async {
        let client = Client::connect(&bootstrap, ClientOptions::default())
            .await
            .unwrap();
        let mut ours =
            GroupConsumer::subscribe(client, vec![topic.clone()], group_config(strategy))
                .await
                .unwrap();
        let (mine, theirs, given_up) = poll_until(&mut ours, &mut python, split_evenly).await;
        assert_eq!(mine.union(&theirs).count(), 6, "{mine:?} {theirs:?}");
        assert!(
            given_up.is_empty(),
            "Sluice's new member owned nothing: {given_up:?}"
        );
        assert!(!python.was_emptied(), "{:?}", python.history);
        ours.close().await.unwrap();
        python.await_assignment(&|a| a.len() == 6);
    });
    drop(python);

    // Sluice's member leads (alone first, on a fresh broker); librdkafka joins and gets half
    // through Sluice's assignor, while Sluice's member gives up exactly that half.
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let bootstrap = broker.bootstrap();
    runtime.block_on(create_topic(&bootstrap, &topic));
    runtime.block_on(async {
        let client = Client::connect(&bootstrap, ClientOptions::default())
            .await
            .unwrap();
        let mut ours =
            GroupConsumer::subscribe(client, vec![topic.clone()], group_config(strategy))
                .await
                .unwrap();
        assert_eq!(ours.assignment().len(), 6);
        let mut python = PythonMember::start(&bootstrap, strategy);
        let (mine, theirs, given_up) = poll_until(&mut ours, &mut python, split_evenly).await;
        assert_eq!(mine.union(&theirs).count(), 6, "{mine:?} {theirs:?}");
        let given_up: BTreeSet<i32> = given_up.into_iter().collect();
        assert_eq!(
            given_up, theirs,
            "only the partitions that moved were revoked"
        );
        ours.close().await.unwrap();
        python.await_assignment(&|a| a.len() == 6);
    });
}
