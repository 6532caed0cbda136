//! Embedded mode: the whole client API over in-memory connections to an in-process broker.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::group_consumer::{GroupConfig, GroupConsumer, GroupEvent};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::NewTopic;
use sluice_log::TopicPartition;

use super::fixtures::TestBroker;

/// Runs a scenario on a fresh two-thread runtime and fails it after 60 s.
fn run_bounded_scenario<F: std::future::Future>(scenario: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), scenario).await })
        .expect("the scenario finishes within 60 s")
}

#[test]
fn the_client_api_works_in_process_without_tcp() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    run_bounded_scenario(async {
        let client = broker.embedded_client().await;
        let topic = NewTopic {
            name: "inproc".into(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        assert!(client.create_topics(&[topic], false).await.unwrap()[0]
            .1
            .is_ok());
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        let mut deliveries = Vec::new();
        for i in 0..100 {
            let record = ProducerRecord {
                topic: "inproc".into(),
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                ..Default::default()
            };
            deliveries.push(producer.send(record).await.unwrap());
        }
        producer.flush().await;
        for delivery in deliveries {
            delivery.await.unwrap();
        }
        producer.close().await;
        let assignments = (0..2)
            .map(|p| (TopicPartition::new("inproc", p), StartOffset::Beginning))
            .collect();
        let mut consumer = Consumer::assign(client.clone(), assignments, ConsumerConfig::default())
            .await
            .unwrap();
        let mut seen = 0;
        while seen < 100 {
            seen += consumer.poll().await.unwrap().len();
        }
        assert_eq!(seen, 100);

        // A group member over its own in-process connections, and the group's admin view.
        let group_client = broker.embedded_client().await;
        let mut config = GroupConfig::new("inproc-group");
        config.auto_offset_reset = sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
        config.session_timeout = Duration::from_secs(10);
        let mut member = GroupConsumer::subscribe(group_client, vec!["inproc".into()], config)
            .await
            .unwrap();
        assert_eq!(member.assignment().len(), 2);
        let mut read = 0;
        while read < 100 {
            read += member.poll().await.unwrap().len();
        }
        member.commit().await.unwrap();
        let described = client.describe_group("inproc-group").await.unwrap();
        assert_eq!(
            (described.state.as_str(), described.members.len()),
            ("Stable", 1)
        );
        assert_eq!(described.members[0].host, "/in-process");
        let committed = client.committed_offsets("inproc-group").await.unwrap();
        assert_eq!(committed.values().sum::<i64>(), 100);
        member.close().await.unwrap();
        assert_eq!(client.list_groups().await.unwrap().len(), 1);
    });
}

#[test]
fn a_group_member_auto_commits_what_it_polled() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "autocommit", 1, 20).await;

        let mut config = GroupConfig::new("auto");
        config.auto_offset_reset = sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
        config.auto_commit_interval = Duration::from_millis(20);
        config.fetch.max_wait = Duration::from_millis(20);
        let mut member = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["autocommit".into()],
            config,
        )
        .await
        .unwrap();
        let mut read = 0;
        while read < 20 {
            read += member.poll().await.unwrap().len();
        }
        // No explicit commit: later polls commit the position the earlier ones reached.
        loop {
            member.poll().await.unwrap();
            let committed = client.committed_offsets("auto").await.unwrap();
            if committed.values().sum::<i64>() == 20 {
                break;
            }
        }
        member.close().await.unwrap();

        // With auto-commit off, neither polls nor close commit anything.
        let mut config = GroupConfig::new("manual");
        config.auto_offset_reset = sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
        config.enable_auto_commit = false;
        config.auto_commit_interval = Duration::from_millis(1);
        let mut member = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["autocommit".into()],
            config,
        )
        .await
        .unwrap();
        let mut read = 0;
        while read < 20 {
            read += member.poll().await.unwrap().len();
        }
        member.poll().await.unwrap();
        assert_eq!(member.position("autocommit", 0).unwrap(), 20);
        member.close().await.unwrap();
        assert!(client.committed_offsets("manual").await.unwrap().is_empty());

        // A member's seek moves what it reads and what a commit stores.
        let mut config = GroupConfig::new("seeker");
        config.enable_auto_commit = false;
        let mut member = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["autocommit".into()],
            config,
        )
        .await
        .unwrap();
        member
            .seek("autocommit", 0, StartOffset::Offset(15))
            .await
            .unwrap();
        let mut offsets = Vec::new();
        while offsets.len() < 5 {
            offsets.extend(member.poll().await.unwrap().iter().map(|r| r.offset));
        }
        assert_eq!(offsets, (15..20).collect::<Vec<i64>>());
        {
            use futures_util::StreamExt;
            member
                .seek("autocommit", 0, StartOffset::Offset(18))
                .await
                .unwrap();
            let streamed: Vec<i64> = member
                .records()
                .take(2)
                .map(|r| r.unwrap().offset)
                .collect()
                .await;
            assert_eq!(streamed, vec![18, 19]);
        }
        // Two commits in flight at once: the later one is the one that stays.
        let earlier = member
            .commit_offsets_async(&[(TopicPartition::new("autocommit", 0), 17)])
            .await
            .unwrap();
        let later = member.commit_async().await.unwrap();
        later.wait().await.unwrap();
        earlier.wait().await.unwrap();
        let committed = client.committed_offsets("seeker").await.unwrap();
        assert_eq!(committed.values().copied().collect::<Vec<_>>(), vec![20]);
        member.close().await.unwrap();

        // auto.offset.reset=none: a group with commits resumes; one without is an error.
        let none = |group: &str| {
            let mut config = GroupConfig::new(group);
            config.auto_offset_reset = sluice_log::client::group_consumer::AutoOffsetReset::None;
            config
        };
        let member = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["autocommit".into()],
            none("seeker"),
        )
        .await
        .unwrap();
        assert_eq!(member.position("autocommit", 0).unwrap(), 20);
        member.close().await.unwrap();
        let err = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["autocommit".into()],
            none("fresh"),
        )
        .await
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("auto.offset.reset=none for partitions: autocommit-0"),
            "{err}"
        );
    };
    run_bounded_scenario(scenario);
}

#[test]
fn seek_position_pause_resume_and_max_poll_records() {
    let broker = TestBroker::start(&[]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "moves", 2, 10).await;

        let config = ConsumerConfig {
            max_poll_records: 3,
            max_wait: Duration::from_millis(20),
            ..ConsumerConfig::default()
        };
        let assignments = (0..2)
            .map(|p| (TopicPartition::new("moves", p), StartOffset::Beginning))
            .collect();
        let mut consumer = Consumer::assign(client.clone(), assignments, config)
            .await
            .unwrap();
        let mut read: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        let first = consumer.poll().await.unwrap();
        assert!(!first.is_empty() && first.len() <= 3, "{}", first.len());
        for record in &first {
            read.entry(record.partition)
                .or_default()
                .push(record.offset);
        }
        // The position is the next record poll returns, not how far the fetch got.
        for partition in 0..2 {
            let next = read.get(&partition).map_or(0, |o| o.last().unwrap() + 1);
            assert_eq!(consumer.position("moves", partition).unwrap(), next);
        }

        // Paused: partition 0 neither advances nor shows up in polls.
        consumer.pause(&[TopicPartition::new("moves", 0)]).unwrap();
        let held = consumer.position("moves", 0).unwrap();
        while read.get(&1).map_or(0, Vec::len) < 10 {
            let records = consumer.poll().await.unwrap();
            assert!(records.len() <= 3);
            for record in records {
                assert_eq!(record.partition, 1, "a record of the paused partition");
                read.entry(1).or_default().push(record.offset);
            }
        }
        assert_eq!(consumer.position("moves", 0).unwrap(), held);
        assert_eq!(consumer.paused(), vec![TopicPartition::new("moves", 0)]);

        // Seek partition 1 back, resume partition 0: both continue from where they stand.
        consumer
            .seek("moves", 1, StartOffset::Offset(5))
            .await
            .unwrap();
        assert_eq!(consumer.position("moves", 1).unwrap(), 5);
        consumer.resume(&[TopicPartition::new("moves", 0)]).unwrap();
        let mut again = Vec::new();
        while read.get(&0).map_or(0, Vec::len) < 10 || again.len() < 5 {
            for record in consumer.poll().await.unwrap() {
                match record.partition {
                    0 => read.entry(0).or_default().push(record.offset),
                    _ => again.push(record.offset),
                }
            }
        }
        assert_eq!(read[&0], (0..10).collect::<Vec<i64>>());
        assert_eq!(read[&1], (0..10).collect::<Vec<i64>>());
        assert_eq!(again, (5..10).collect::<Vec<i64>>());

        // The same records as a Stream, one at a time.
        {
            use futures_util::StreamExt;
            consumer
                .seek("moves", 0, StartOffset::Offset(7))
                .await
                .unwrap();
            let streamed: Vec<i64> = consumer
                .records()
                .take(3)
                .map(|r| r.unwrap().offset)
                .collect()
                .await;
            assert_eq!(streamed, vec![7, 8, 9]);
            // A dropped stream holds nothing back: the next poll goes on from there.
            consumer
                .seek("moves", 0, StartOffset::Offset(5))
                .await
                .unwrap();
            let first = consumer.records().next().await.unwrap().unwrap();
            assert_eq!(first.offset, 5);
            assert_eq!(consumer.position("moves", 0).unwrap(), 6);
            let next = consumer.poll().await.unwrap();
            assert_eq!(next.first().map(|r| r.offset), Some(6));
        }
        consumer.seek("moves", 0, StartOffset::End).await.unwrap();
        assert_eq!(consumer.position("moves", 0).unwrap(), 10);
        let err = consumer.position("moves", 7).unwrap_err();
        assert!(err.to_string().contains("moves-7 is not assigned"), "{err}");
        assert!(consumer.pause(&[TopicPartition::new("other", 0)]).is_err());
    };
    run_bounded_scenario(scenario);
}

/// Reads `n` records through `member`, failing on any rebalance event meanwhile.
async fn read_records(member: &mut GroupConsumer, n: usize) {
    let mut read = 0;
    while read < n {
        match member.next_event().await.unwrap() {
            GroupEvent::Records(records) => read += records.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Produces `per_partition` records to each partition of a new topic.
/// `poll_timeout` gives up waiting on time while the fetch stays on its way (its records come
/// with a later poll, none lost or twice), and a fetch sent before a `seek` is not returned.
#[test]
fn poll_timeout_keeps_the_fetch_in_flight_and_seek_drops_a_stale_one() {
    let broker = TestBroker::start(&[]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "pipelined", 1, 3).await;
        let config = ConsumerConfig {
            // Long polls far longer than the timeouts below: a poll that waited for the
            // fetch instead of the timeout would take seconds.
            max_wait: Duration::from_secs(2),
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::assign(
            client.clone(),
            vec![(TopicPartition::new("pipelined", 0), StartOffset::Beginning)],
            config,
        )
        .await
        .unwrap();
        let mut offsets = Vec::new();
        while offsets.len() < 3 {
            for record in consumer.poll().await.unwrap() {
                offsets.push(record.offset);
            }
        }
        assert_eq!(offsets, vec![0, 1, 2]);

        // At the end of the log: the next fetch is a long poll, and the timeout ends the wait.
        let started = std::time::Instant::now();
        let none = consumer
            .poll_timeout(500, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(none.is_empty());
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "poll_timeout waited {:?}",
            started.elapsed()
        );

        // Records produced now reach the fetch on its way, and come out once. (The producer
        // has connections of its own: on the consumer's, its requests would wait behind the
        // long poll, as Kafka answers a connection's requests in order.)
        let producer = Producer::new(client.sibling().await.unwrap(), ProducerConfig::default());
        send_values(&producer, "pipelined", 3..5).await;
        let mut later = Vec::new();
        while later.len() < 2 {
            for record in consumer
                .poll_timeout(500, Duration::from_millis(50))
                .await
                .unwrap()
            {
                later.push(record.offset);
            }
        }
        assert_eq!(later, vec![3, 4]);
        assert_eq!(consumer.position("pipelined", 0).unwrap(), 5);

        // Records that reach the fetch on its way while nobody polls are decoded by its task,
        // and come once.
        send_values(&producer, "pipelined", 5..7).await;
        let answered = tokio::time::Instant::now() + Duration::from_secs(10);
        while consumer.fetch_in_flight() {
            assert!(
                tokio::time::Instant::now() < answered,
                "the fetch was not answered"
            );
            tokio::task::yield_now().await;
        }
        let mut busy = Vec::new();
        while busy.len() < 2 {
            for record in consumer.poll().await.unwrap() {
                busy.push(record.offset);
            }
        }
        assert_eq!(busy, vec![5, 6]);

        // A fetch is on its way from offset 7; after the seek the records start at 1.
        consumer
            .seek("pipelined", 0, StartOffset::Offset(1))
            .await
            .unwrap();
        let mut again = Vec::new();
        while again.len() < 6 {
            for record in consumer.poll().await.unwrap() {
                again.push(record.offset);
            }
        }
        assert_eq!(again, vec![1, 2, 3, 4, 5, 6]);
        producer.close().await;
    };
    run_bounded_scenario(scenario);
}

/// A record for an explicit partition waits for the topic's metadata as the Java producer does
/// (so a topic the broker auto-creates gets created), and a partition the topic does not have
/// is refused with Kafka's message.
#[test]
fn explicit_partitions_wait_for_metadata_and_are_checked() {
    let broker = TestBroker::start(&[]);
    run_bounded_scenario(async {
        let client = broker.embedded_client().await;
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        let record = |partition| ProducerRecord {
            topic: "fresh".into(),
            partition: Some(partition),
            value: Some(Bytes::from_static(b"v")),
            ..Default::default()
        };
        let delivered = producer.send(record(0)).await.unwrap().await.unwrap();
        assert_eq!(delivered.partition, 0);
        let err = producer.send(record(3)).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("Invalid partition given with record: 3 is not in the range [0...1)"),
            "{err}"
        );
        producer.close().await;
    });
}

/// Sends values `0-<i>` for `range` to partition 0 of `topic`, each acknowledged before the next.
async fn send_values(producer: &Producer, topic: &str, range: std::ops::Range<usize>) {
    for i in range {
        let record = ProducerRecord {
            topic: topic.into(),
            partition: Some(0),
            value: Some(Bytes::from(format!("0-{i}"))),
            ..Default::default()
        };
        producer.send(record).await.unwrap().await.unwrap();
    }
}

async fn fill_topic(
    client: &std::sync::Arc<sluice_log::client::Client>,
    name: &str,
    partitions: i32,
    per_partition: usize,
) {
    let topic = NewTopic {
        name: name.into(),
        partitions,
        replication_factor: 1,
        configs: BTreeMap::new(),
    };
    assert!(client.create_topics(&[topic], false).await.unwrap()[0]
        .1
        .is_ok());
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    let mut deliveries = Vec::new();
    for partition in 0..partitions {
        for i in 0..per_partition {
            let record = ProducerRecord {
                topic: name.into(),
                partition: Some(partition),
                value: Some(Bytes::from(format!("{partition}-{i}"))),
                ..Default::default()
            };
            deliveries.push(producer.send(record).await.unwrap());
        }
    }
    producer.flush().await;
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    producer.close().await;
}

#[test]
fn rebalance_events_let_a_member_commit_before_it_loses_partitions() {
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("group.min.session.timeout.ms", "100"),
    ]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "shared", 4, 10).await;
        let config = |group: &str| {
            let mut config = GroupConfig::new(group);
            config.auto_offset_reset =
                sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
            config.enable_auto_commit = false;
            config.heartbeat_interval = Duration::from_millis(100);
            config.fetch.max_wait = Duration::from_millis(50);
            config
        };

        let mut first = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["shared".into()],
            config("rb"),
        )
        .await
        .unwrap();
        match first.next_event().await.unwrap() {
            GroupEvent::Assigned(partitions) => assert_eq!(partitions.len(), 4),
            other => panic!("expected the first assignment, got {other:?}"),
        }
        read_records(&mut first, 40).await;

        // A second member joins: the first hears of it as a revocation, commits, rejoins.
        let second_client = broker.embedded_client().await;
        let second = tokio::spawn(async move {
            GroupConsumer::subscribe(second_client, vec!["shared".into()], config("rb")).await
        });
        let revoked = loop {
            match first.next_event().await.unwrap() {
                GroupEvent::Records(records) => assert!(records.is_empty()),
                GroupEvent::Revoked(partitions) => break partitions,
                other => panic!("expected a revocation, got {other:?}"),
            }
        };
        assert_eq!(revoked.len(), 4);
        first.commit().await.unwrap();
        let kept = match first.next_event().await.unwrap() {
            GroupEvent::Assigned(partitions) => partitions,
            other => panic!("expected the new assignment, got {other:?}"),
        };
        let mut second = second.await.unwrap().unwrap();
        let mut all: Vec<TopicPartition> = kept.clone();
        all.extend(second.assignment().iter().cloned());
        all.sort();
        assert_eq!(kept.len(), 2);
        assert_eq!(
            all,
            (0..4)
                .map(|p| TopicPartition::new("shared", p))
                .collect::<Vec<_>>()
        );
        // The second member starts where the first committed in its revocation: nothing twice.
        for tp in second.assignment().to_vec() {
            assert_eq!(second.position(&tp.topic, tp.partition).unwrap(), 10);
        }
        assert!(
            matches!(second.next_event().await.unwrap(), GroupEvent::Assigned(p) if p.len() == 2)
        );
        second.close().await.unwrap();
        first.close().await.unwrap();

        // A member whose session expires between heartbeats is fenced: its partitions are lost.
        let mut lost_config = config("fenced");
        lost_config.session_timeout = Duration::from_millis(300);
        lost_config.heartbeat_interval = Duration::from_millis(1_500);
        let mut fenced = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["shared".into()],
            lost_config,
        )
        .await
        .unwrap();
        let lost = loop {
            match fenced.next_event().await.unwrap() {
                GroupEvent::Lost(partitions) => break partitions,
                GroupEvent::Revoked(partitions) => panic!("revoked {partitions:?}, not lost"),
                _ => {}
            }
        };
        assert_eq!(lost.len(), 4);
        assert!(
            matches!(fenced.next_event().await.unwrap(), GroupEvent::Assigned(p) if p.len() == 4)
        );
        fenced.close().await.unwrap();
    };
    run_bounded_scenario(scenario);
}

#[test]
fn a_member_subscribed_to_a_topic_that_does_not_exist_yet_reads_it_once_it_does() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    run_bounded_scenario(async {
        let client = broker.embedded_client().await;
        let mut config = GroupConfig::new("early");
        config.auto_offset_reset = sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
        config.fetch.max_wait = Duration::from_millis(20);
        let mut member =
            GroupConsumer::subscribe(broker.embedded_client().await, vec!["later".into()], config)
                .await
                .unwrap();
        assert!(member.assignment().is_empty());
        // The topic comes into being with its first record (auto-creation), after the join;
        // the member picks it up long before metadata.max.age.ms (5 min).
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        send_values(&producer, "later", 0..3).await;
        let mut values = Vec::new();
        while values.len() < 3 {
            if let GroupEvent::Records(records) = member.next_event().await.unwrap() {
                values.extend(records.into_iter().filter_map(|r| r.value));
            }
        }
        assert_eq!(values, ["0-0", "0-1", "0-2"]);
        assert_eq!(member.assignment(), [TopicPartition::new("later", 0)]);
        producer.close().await;
        member.close().await.unwrap();
    });
}

/// Polls `member` on its own task (members of one group must poll side by side: a rebalance
/// waits for all of them), sending the values it reads, until `stop`; then hands it back.
fn poll_apart(
    mut member: GroupConsumer,
    values: tokio::sync::mpsc::UnboundedSender<Bytes>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<GroupConsumer> {
    tokio::spawn(async move {
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            let event = member.next_event_timeout(Duration::from_millis(20));
            if let GroupEvent::Records(records) = event.await.unwrap() {
                for value in records.into_iter().filter_map(|r| r.value) {
                    let _ = values.send(value);
                }
            }
        }
        member
    })
}

#[test]
fn partitions_added_to_a_topic_are_assigned_when_another_member_notices_them() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    run_bounded_scenario(async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "grows", 1, 1).await;
        let config = |max_age: Duration| {
            let mut config = GroupConfig::new("growing");
            config.auto_offset_reset =
                sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
            config.fetch.max_wait = Duration::from_millis(20);
            config.heartbeat_interval = Duration::from_millis(50);
            config.metadata_max_age = max_age;
            config
        };
        let (sent, mut read) = tokio::sync::mpsc::unbounded_channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The first member leads the group, and looks at metadata only every 5 minutes (the
        // default); the second looks every 200 ms.
        let leader = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["grows".into()],
            config(Duration::from_secs(300)),
        )
        .await
        .unwrap();
        let leader = poll_apart(leader, sent.clone(), stop.clone());
        let watcher = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["grows".into()],
            config(Duration::from_millis(200)),
        )
        .await
        .unwrap();
        let watcher = poll_apart(watcher, sent, stop.clone());
        assert_eq!(read.recv().await.unwrap(), "0-0");
        client.create_partitions("grows", 2).await.unwrap();
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        let record = ProducerRecord {
            topic: "grows".into(),
            partition: Some(1),
            value: Some(Bytes::from("1-0")),
            ..Default::default()
        };
        producer.send(record).await.unwrap().await.unwrap();
        // The watcher sees two partitions and rejoins; the leader, whose cache still says one,
        // must assign from the cluster's metadata, or partition 1 stays unread. (Partition 0
        // may be read again by a new owner: nothing was committed.)
        while read.recv().await.unwrap() != "1-0" {}
        stop.store(true, std::sync::atomic::Ordering::Release);
        let (leader, watcher) = (leader.await.unwrap(), watcher.await.unwrap());
        producer.close().await;
        leader.close().await.unwrap();
        watcher.close().await.unwrap();
    });
}

#[test]
fn a_pattern_subscription_follows_new_matching_topics() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "orders.eu", 2, 3).await;
        fill_topic(&client, "orders.us", 1, 3).await;
        fill_topic(&client, "payments", 1, 3).await;
        let mut config = GroupConfig::new("patterned");
        config.auto_offset_reset = sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
        config.metadata_max_age = Duration::from_millis(50);
        config.fetch.max_wait = Duration::from_millis(20);

        let err = GroupConsumer::subscribe_pattern(
            broker.embedded_client().await,
            "orders.(",
            config.clone(),
        )
        .await
        .err()
        .unwrap();
        assert!(err.to_string().contains("subscription pattern"), "{err}");

        let mut member =
            GroupConsumer::subscribe_pattern(broker.embedded_client().await, r"orders\..*", config)
                .await
                .unwrap();
        assert_eq!(member.subscription(), ["orders.eu", "orders.us"]);
        let mut topics = std::collections::BTreeSet::new();
        let mut read = 0;
        while read < 9 {
            if let GroupEvent::Records(records) = member.next_event().await.unwrap() {
                read += records.len();
                topics.extend(records.into_iter().map(|r| r.topic.to_string()));
            }
        }
        assert_eq!(
            topics.into_iter().collect::<Vec<_>>(),
            ["orders.eu", "orders.us"]
        );

        // A new matching topic joins the subscription with a rebalance; its records follow.
        fill_topic(&client, "orders.asia", 1, 4).await;
        let mut assigned = None;
        let mut from_asia = 0;
        while assigned.is_none() || from_asia < 4 {
            match member.next_event().await.unwrap() {
                GroupEvent::Assigned(partitions) => assigned = Some(partitions),
                GroupEvent::Records(records) => {
                    from_asia += records
                        .iter()
                        .filter(|r| &*r.topic == "orders.asia")
                        .count();
                    assert!(
                        records.iter().all(|r| &*r.topic == "orders.asia"),
                        "read twice"
                    );
                }
                GroupEvent::Revoked(_) => {}
                GroupEvent::Lost(partitions) => panic!("lost {partitions:?}"),
            }
        }
        let assigned = assigned.unwrap();
        assert_eq!(assigned.len(), 4);
        assert!(assigned.contains(&TopicPartition::new("orders.asia", 0)));
        assert_eq!(
            member.subscription(),
            ["orders.asia", "orders.eu", "orders.us"]
        );
        member.close().await.unwrap();
    };
    run_bounded_scenario(scenario);
}

#[test]
fn sluice_embedded_starts_a_node_that_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // In-process only: no port, the client API over in-memory connections.
    let node = sluice_log::Sluice::embedded(dir.path())
        .config("num.partitions", "3")
        .start()
        .unwrap();
    assert!(node.addr().is_none() && node.bootstrap().is_none());
    let scenario = async {
        let client = node.client().await.unwrap();
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        // Auto-created with the node's num.partitions.
        let delivery = producer
            .send(ProducerRecord {
                topic: "kept".into(),
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"survives a restart")),
                ..Default::default()
            })
            .await
            .unwrap();
        producer.flush().await;
        delivery.await.unwrap();
        producer.close().await;
        assert_eq!(client.topic("kept", false).await.unwrap().leaders.len(), 3);
    };
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), scenario).await })
        .expect("the scenario finishes within 60 s");
    node.shutdown().unwrap();

    // The same directory again, now also listening for outside clients.
    let node = sluice_log::Sluice::embedded(dir.path())
        .listen("127.0.0.1:0")
        .start()
        .unwrap();
    let bootstrap = node.bootstrap().unwrap();
    let scenario = async {
        let client = sluice_log::client::Client::connect(&bootstrap, Default::default())
            .await
            .unwrap();
        let assignments = (0..3)
            .map(|p| (TopicPartition::new("kept", p), StartOffset::Beginning))
            .collect();
        let mut consumer = Consumer::assign(client, assignments, ConsumerConfig::default())
            .await
            .unwrap();
        let mut values = Vec::new();
        while values.is_empty() {
            values.extend(consumer.poll().await.unwrap().into_iter().map(|r| r.value));
        }
        assert_eq!(
            values,
            vec![Some(Bytes::from_static(b"survives a restart"))]
        );
    };
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), scenario).await })
        .expect("the scenario finishes within 60 s");
    node.shutdown().unwrap();

    let err = sluice_log::Sluice::embedded(dir.path())
        .config("num.partitions", "many")
        .start()
        .err()
        .unwrap();
    assert!(err.to_string().contains("num.partitions"), "{err}");
}

#[test]
fn a_static_member_comes_back_to_its_partitions_without_a_rebalance() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "statics", 4, 1).await;
        let config = |instance: &str| {
            let mut config = GroupConfig::new("static-group");
            config.group_instance_id = Some(instance.to_string());
            config.heartbeat_interval = Duration::from_millis(100);
            config.session_timeout = Duration::from_secs(10);
            config.fetch.max_wait = Duration::from_millis(20);
            config
        };
        let mut first = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["statics".into()],
            config("a"),
        )
        .await
        .unwrap();
        let second_client = broker.embedded_client().await;
        let joining = tokio::spawn(async move {
            GroupConsumer::subscribe(second_client, vec!["statics".into()], config("b")).await
        });
        // The first member takes part in the rebalance the second one starts.
        while !joining.is_finished() {
            first.next_event().await.unwrap();
        }
        let second = joining.await.unwrap().unwrap();
        let (_, generation) = first.member();
        let assignment = second.assignment().to_vec();
        assert_eq!(assignment.len(), 2);
        assert_eq!(second.member().1, generation);

        // Closing a static member does not leave; the same instance id gets the same partitions
        // in the same generation, and the other member sees no rebalance.
        second.close().await.unwrap();
        let described = client.describe_group("static-group").await.unwrap();
        assert_eq!(described.members.len(), 2);
        let back = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["statics".into()],
            config("b"),
        )
        .await
        .unwrap();
        assert_eq!(back.assignment(), assignment.as_slice());
        assert_eq!(back.member().1, generation);
        for _ in 0..3 {
            match first.next_event().await.unwrap() {
                GroupEvent::Records(_) => {}
                other => panic!("the first member saw {other:?}"),
            }
        }
        assert_eq!(first.member().1, generation);
        back.leave().await.unwrap();
        first.leave().await.unwrap();
    };
    run_bounded_scenario(scenario);
}

#[test]
fn a_member_that_stops_polling_leaves_and_loses_its_partitions() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "slow", 2, 1).await;
        let mut config = GroupConfig::new("slow-readers");
        config.max_poll_interval = Duration::from_millis(300);
        config.heartbeat_interval = Duration::from_millis(50);
        config.fetch.max_wait = Duration::from_millis(20);
        let mut member =
            GroupConsumer::subscribe(broker.embedded_client().await, vec!["slow".into()], config)
                .await
                .unwrap();
        assert!(
            matches!(member.next_event().await.unwrap(), GroupEvent::Assigned(p) if p.len() == 2)
        );
        // No poll for longer than max.poll.interval.ms: the heartbeat task leaves the group.
        loop {
            let described = client.describe_group("slow-readers").await.unwrap();
            if described.members.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match member.next_event().await.unwrap() {
            GroupEvent::Lost(partitions) => assert_eq!(partitions.len(), 2),
            other => panic!("expected the partitions lost, got {other:?}"),
        }
        assert!(
            matches!(member.next_event().await.unwrap(), GroupEvent::Assigned(p) if p.len() == 2)
        );
        let described = client.describe_group("slow-readers").await.unwrap();
        assert_eq!(described.members.len(), 1);
        member.close().await.unwrap();
    };
    run_bounded_scenario(scenario);
}

#[test]
fn group_lag_and_offset_resets_through_the_admin_api() {
    use sluice_log::client::groups::OffsetReset;
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "lagging", 2, 10).await;
        let offsets: BTreeMap<TopicPartition, i64> = [
            (TopicPartition::new("lagging", 0), 4),
            (TopicPartition::new("lagging", 1), 10),
        ]
        .into();
        client.commit_offsets("readers", &offsets).await.unwrap();
        let lags = client.group_lag("readers").await.unwrap();
        let view: Vec<_> = lags
            .iter()
            .map(|l| {
                (
                    l.partition,
                    l.committed,
                    l.log_end,
                    l.lag,
                    l.owner.is_some(),
                )
            })
            .collect();
        assert_eq!(
            view,
            vec![
                (0, Some(4), Some(10), Some(6), false),
                (1, Some(10), Some(10), Some(0), false)
            ]
        );

        let shifted = client
            .reset_group_offsets("readers", "lagging", &[0, 1], OffsetReset::ShiftBy(-7))
            .await
            .unwrap();
        // Clamped to the partition's range, as Kafka does.
        assert_eq!(shifted.values().copied().collect::<Vec<_>>(), vec![0, 3]);
        let planned = client
            .plan_offset_reset("readers", "lagging", &[0], OffsetReset::Offset(99))
            .await
            .unwrap();
        assert_eq!(planned.values().copied().collect::<Vec<_>>(), vec![10]);
        // A plan commits nothing.
        assert_eq!(
            client.committed_offsets("readers").await.unwrap()[&TopicPartition::new("lagging", 0)],
            0
        );
        let latest = client
            .reset_group_offsets("readers", "lagging", &[0], OffsetReset::Latest)
            .await
            .unwrap();
        assert_eq!(latest.values().copied().collect::<Vec<_>>(), vec![10]);

        // With an active member the reset is refused, and lag shows the owner.
        let mut config = GroupConfig::new("readers");
        config.enable_auto_commit = false;
        let member = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["lagging".into()],
            config,
        )
        .await
        .unwrap();
        let err = client
            .reset_group_offsets("readers", "lagging", &[0], OffsetReset::Earliest)
            .await
            .unwrap_err();
        assert!(
            matches!(err, sluice_log::Error::Broker { code, .. } if code == kafka_protocol::ResponseError::NonEmptyGroup),
            "{err}"
        );
        let lags = client.group_lag("readers").await.unwrap();
        assert!(lags.iter().all(|l| l.owner.is_some()));
        member.close().await.unwrap();

        let err = client.group_lag("nobody").await.unwrap_err();
        assert!(
            matches!(err, sluice_log::Error::Broker { code, .. } if code == kafka_protocol::ResponseError::GroupIdNotFound),
            "{err}"
        );
    };
    run_bounded_scenario(scenario);
}

#[test]
fn committed_offsets_expire_after_offsets_retention() {
    let props = [
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.retention.minutes", "0"),
        ("offsets.retention.check.interval.ms", "100"),
    ];
    let broker = TestBroker::start(&props);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "kept-while-active", 1, 2).await;
        let mut config = GroupConfig::new("active");
        config.enable_auto_commit = false;
        let member = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["kept-while-active".into()],
            config,
        )
        .await
        .unwrap();
        member
            .commit_offsets(&[(TopicPartition::new("kept-while-active", 0), 2)])
            .await
            .unwrap();
        // A standalone commit (no members ever) expires with its commit time.
        let standalone: BTreeMap<TopicPartition, i64> =
            [(TopicPartition::new("kept-while-active", 0), 1)].into();
        client
            .commit_offsets("standalone", &standalone)
            .await
            .unwrap();
        while !client
            .committed_offsets("standalone")
            .await
            .unwrap()
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Expiry has run, yet the group with a member keeps its offsets.
        assert_eq!(client.committed_offsets("active").await.unwrap().len(), 1);

        // Once the group is empty, retention counts from then: offsets and group go.
        member.close().await.unwrap();
        loop {
            let groups = client.list_groups().await.unwrap();
            if !groups.iter().any(|(g, _, _)| g == "active") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(client.committed_offsets("active").await.unwrap().is_empty());
    };
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), scenario).await })
        .expect("the scenario finishes within 60 s");

    // Tombstones: after a restart the expired offsets stay gone.
    let dir = broker.stop();
    let broker = TestBroker::start_in(dir, &props);
    runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(60), async {
                let client = broker.embedded_client().await;
                assert!(client.committed_offsets("active").await.unwrap().is_empty());
                assert!(client
                    .committed_offsets("standalone")
                    .await
                    .unwrap()
                    .is_empty());
                assert!(client.list_groups().await.unwrap().is_empty());
            })
            .await
        })
        .expect("the restart check finishes within 60 s");
}

#[test]
fn members_agree_on_the_roundrobin_assignor() {
    use sluice_log::client::group_consumer::Assignor;
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "rr0", 3, 1).await;
        fill_topic(&client, "rr1", 3, 1).await;
        let config = |strategy: Vec<Assignor>| {
            let mut config = GroupConfig::new("rr");
            config.assignment_strategy = strategy;
            config.heartbeat_interval = Duration::from_millis(100);
            config.fetch.max_wait = Duration::from_millis(20);
            config
        };
        let topics = vec!["rr0".to_string(), "rr1".to_string()];
        let mut first = GroupConsumer::subscribe(
            broker.embedded_client().await,
            topics.clone(),
            config(vec![Assignor::Range, Assignor::RoundRobin]),
        )
        .await
        .unwrap();
        let second_client = broker.embedded_client().await;
        let joining = tokio::spawn(async move {
            GroupConsumer::subscribe(second_client, topics, config(vec![Assignor::RoundRobin]))
                .await
        });
        while !joining.is_finished() {
            first.next_event().await.unwrap();
        }
        let second = joining.await.unwrap().unwrap();
        // Bring the first member to the new generation too.
        while first.member().1 != second.member().1 {
            first.next_event().await.unwrap();
        }
        let described = client.describe_group("rr").await.unwrap();
        assert_eq!(described.protocol, "roundrobin");
        // Round robin over rr0-0..2, rr1-0..2: the members alternate.
        let (low, high) = if first.member().0 < second.member().0 {
            (first.assignment().to_vec(), second.assignment().to_vec())
        } else {
            (second.assignment().to_vec(), first.assignment().to_vec())
        };
        let tp = TopicPartition::new;
        let mut low = low;
        let mut high = high;
        low.sort();
        high.sort();
        assert_eq!(low, vec![tp("rr0", 0), tp("rr0", 2), tp("rr1", 1)]);
        assert_eq!(high, vec![tp("rr0", 1), tp("rr1", 0), tp("rr1", 2)]);
        second.close().await.unwrap();
        first.close().await.unwrap();
    };
    run_bounded_scenario(scenario);
}

#[test]
fn the_admin_api_describes_and_changes_topics_configs_and_the_cluster() {
    use sluice_log::client::admin::ConfigResource;
    let broker = TestBroker::start(&[]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "managed", 2, 1).await;
        let cluster = client.describe_cluster().await.unwrap();
        assert_eq!(cluster.controller, 1);
        assert_eq!(cluster.brokers.len(), 1);
        assert_eq!(cluster.brokers[0].0, 1);

        client.create_partitions("managed", 4).await.unwrap();
        let topics = client
            .describe_topics(Some(&["managed".to_string()]))
            .await
            .unwrap();
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].partitions.len(), 4);
        assert!(topics[0]
            .partitions
            .iter()
            .all(|p| p.leader == 1 && p.replicas == [1] && p.isr == [1]));
        // Kafka never shrinks a topic.
        let err = client.create_partitions("managed", 2).await.unwrap_err();
        assert!(
            matches!(err, sluice_log::Error::Broker { code, .. } if code == kafka_protocol::ResponseError::InvalidPartitions),
            "{err}"
        );
        let err = client
            .describe_topics(Some(&["absent".to_string()]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");

        let resource = ConfigResource::Topic("managed".into());
        client
            .alter_configs(&resource, &[("retention.ms".into(), "60000".into())], &[])
            .await
            .unwrap();
        let entries = client.describe_configs(&resource).await.unwrap();
        let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_deref(), retention.source),
            (Some("60000"), 1)
        );
        client
            .alter_configs(&resource, &[], &["retention.ms".to_string()])
            .await
            .unwrap();
        let entries = client.describe_configs(&resource).await.unwrap();
        let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_ne!(retention.source, 1);
        let err = client
            .alter_configs(&resource, &[("retention.ms".into(), "soon".into())], &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("retention.ms"), "{err}");
    };
    run_bounded_scenario(scenario);
}

#[test]
fn keyed_records_follow_murmur2_and_keyless_records_stick_to_a_partition_per_batch() {
    use sluice_log::client::partitioner::partition_for_key;
    let broker = TestBroker::start(&[]);
    run_bounded_scenario(async {
        let client = broker.embedded_client().await;
        let topic = NewTopic {
            name: "spread".into(),
            partitions: 4,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        assert!(client.create_topics(&[topic], false).await.unwrap()[0]
            .1
            .is_ok());
        // Small batches (200 bytes) close after a few records, so keyless records move on.
        let config = ProducerConfig {
            batch_size: 200,
            linger: Duration::from_secs(10),
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client.clone(), config);
        let mut keyed = Vec::new();
        for i in 0..40 {
            let key = Bytes::from(format!("customer-{i}"));
            let record = ProducerRecord {
                topic: "spread".into(),
                key: Some(key.clone()),
                value: Some(Bytes::from_static(b"keyed")),
                ..Default::default()
            };
            keyed.push((key, producer.send(record).await.unwrap()));
        }
        // Keyless records would share the partitions' open batches with keyed ones: flush first
        // so that the count below starts from empty batches.
        producer.flush().await;
        let mut keyless = Vec::new();
        for _ in 0..40 {
            let record = ProducerRecord {
                topic: "spread".into(),
                value: Some(Bytes::from(vec![b'x'; 34])),
                ..Default::default()
            };
            keyless.push(producer.send(record).await.unwrap());
        }
        producer.flush().await;
        for (key, delivery) in keyed {
            let metadata = delivery.await.unwrap();
            assert_eq!(metadata.partition, partition_for_key(&key, 4), "{key:?}");
        }
        let mut partitions = Vec::new();
        for delivery in keyless {
            partitions.push(delivery.await.unwrap().partition);
        }
        // 50 bytes a record against 200-byte batches: four records per partition, then the
        // next partition, round the topic.
        let expected: Vec<i32> = (0..40).map(|i| (i / 4) % 4).collect();
        assert_eq!(partitions, expected);
        producer.close().await;
    });
}

#[test]
fn cooperative_sticky_members_keep_their_partitions_through_a_rebalance() {
    use sluice_log::client::group_consumer::Assignor;
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("group.min.session.timeout.ms", "100"),
    ]);
    let scenario = async {
        let client = broker.embedded_client().await;
        fill_topic(&client, "coop", 6, 10).await;
        let config = || {
            let mut config = GroupConfig::new("coop-group");
            config.assignment_strategy = vec![Assignor::CooperativeSticky];
            config.auto_offset_reset =
                sluice_log::client::group_consumer::AutoOffsetReset::Earliest;
            config.enable_auto_commit = false;
            config.heartbeat_interval = Duration::from_millis(100);
            config.fetch.max_wait = Duration::from_millis(50);
            config
        };
        let mut first = GroupConsumer::subscribe(
            broker.embedded_client().await,
            vec!["coop".into()],
            config(),
        )
        .await
        .unwrap();
        assert!(
            matches!(first.next_event().await.unwrap(), GroupEvent::Assigned(p) if p.len() == 6)
        );
        // Everything read and nothing committed: an eager rebalance would start every
        // partition again from the beginning.
        read_records(&mut first, 60).await;

        // A second member joins. It keeps polling (it takes part in the follow-up rebalance)
        // until it owns three partitions, and reports where each started.
        let second_client = broker.embedded_client().await;
        let second = tokio::spawn(async move {
            let mut second = GroupConsumer::subscribe(second_client, vec!["coop".into()], config())
                .await
                .unwrap();
            let mut starts = Vec::new();
            loop {
                match second.next_event().await.unwrap() {
                    GroupEvent::Assigned(partitions) if partitions.len() == 3 => {
                        for tp in &partitions {
                            starts.push((
                                tp.partition,
                                second.position(&tp.topic, tp.partition).unwrap(),
                            ));
                        }
                        break;
                    }
                    GroupEvent::Revoked(p) | GroupEvent::Lost(p) if !p.is_empty() => {
                        panic!("the new member owned nothing to give up: {p:?}")
                    }
                    _ => {}
                }
            }
            (second, starts)
        });

        // The first member gives up only the partitions that move, commits them, keeps the rest.
        let revoked = loop {
            match first.next_event().await.unwrap() {
                GroupEvent::Records(records) => assert!(records.is_empty()),
                GroupEvent::Revoked(partitions) => break partitions,
                other => panic!("expected a revocation, got {other:?}"),
            }
        };
        assert_eq!(revoked.len(), 3, "{revoked:?}");
        let offsets: Vec<(TopicPartition, i64)> = revoked
            .iter()
            .map(|tp| (tp.clone(), first.position(&tp.topic, tp.partition).unwrap()))
            .collect();
        first.commit_offsets(&offsets).await.unwrap();
        let kept = match first.next_event().await.unwrap() {
            GroupEvent::Assigned(partitions) => partitions,
            other => panic!("expected the kept partitions, got {other:?}"),
        };
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|tp| !revoked.contains(tp)));
        for tp in &kept {
            assert_eq!(
                first.position(&tp.topic, tp.partition).unwrap(),
                10,
                "kept {tp} goes on"
            );
        }
        // The follow-up rebalance hands the revoked partitions over; the first member goes on
        // polling (and keeps its three) meanwhile.
        let (second, starts) = loop {
            if second.is_finished() {
                break second.await.unwrap();
            }
            match first.next_event().await.unwrap() {
                GroupEvent::Assigned(partitions) => assert_eq!(partitions, kept),
                GroupEvent::Records(records) => assert!(records.is_empty()),
                other => panic!("the first member lost partitions again: {other:?}"),
            }
        };
        let mut theirs: Vec<i32> = starts.iter().map(|(p, _)| *p).collect();
        theirs.sort_unstable();
        let mut expected: Vec<i32> = revoked.iter().map(|tp| tp.partition).collect();
        expected.sort_unstable();
        assert_eq!(theirs, expected);
        // Nothing read twice: the new owner starts where the first member committed.
        assert!(starts.iter().all(|(_, start)| *start == 10), "{starts:?}");
        assert_eq!(first.assignment(), kept.as_slice());
        second.close().await.unwrap();
        first.close().await.unwrap();
    };
    run_bounded_scenario(scenario);
}
