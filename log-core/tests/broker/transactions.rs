//! Sluice's own client with transactions: idempotence on by default, commit and abort seen by
//! read_committed and read_uncommitted consumers, offsets committed in a transaction, zombie
//! fencing and the client-side state errors. Runs against Apache Kafka too
//! (`compat/kafka/run-layers.sh`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::group_consumer::{AutoOffsetReset, GroupConfig, GroupConsumer};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::transactions::ConsumerGroupMetadata;
use sluice_log::client::{Client, ClientOptions, NewTopic};
use sluice_log::{Error, TopicPartition};

use super::fixtures::{runtime, AnyBroker};

async fn create(client: &Client, name: &str) {
    let created = client
        .create_topics(
            &[NewTopic {
                name: name.into(),
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
            }],
            false,
        )
        .await
        .unwrap();
    created[0].1.as_ref().unwrap();
}

fn transactional(client: &Arc<Client>, id: &str) -> Producer {
    let mut config = ProducerConfig::default();
    config.set("transactional.id", id).unwrap();
    Producer::new(client.clone(), config)
}

fn record(topic: &str, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        partition: Some(0),
        value: Some(Bytes::from(value.to_string())),
        ..Default::default()
    }
}

/// The values of partition 0 read from the start under an isolation level, until `expected`
/// are read and a further poll brings nothing.
async fn values(client: &Arc<Client>, topic: &str, isolation: i8, expected: usize) -> Vec<String> {
    let config = ConsumerConfig {
        isolation_level: isolation,
        ..Default::default()
    };
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(TopicPartition::new(topic, 0), StartOffset::Beginning)],
        config,
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let batch = consumer
            .poll_timeout(1000, Duration::from_millis(300))
            .await
            .unwrap();
        let empty = batch.is_empty();
        got.extend(
            batch
                .into_iter()
                .map(|r| String::from_utf8_lossy(&r.value.unwrap()).to_string()),
        );
        if (empty && got.len() >= expected) || tokio::time::Instant::now() > deadline {
            return got;
        }
    }
}

#[test]
fn the_native_producer_is_idempotent_by_default_and_not_with_acks_1() {
    let broker = AnyBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        create(&client, "idem-default").await;
        let producer = Producer::new(client.clone(), ProducerConfig::default());
        for i in 0..10 {
            producer
                .send(record("idem-default", &format!("v{i}")))
                .await
                .unwrap();
        }
        producer.flush().await;
        let (producer_id, _) = producer.producer_id_and_epoch().expect("a producer id");
        let producers = client.describe_producers("idem-default", 0).await.unwrap();
        assert_eq!(producers.len(), 1, "{producers:?}");
        assert_eq!(producers[0].producer_id, producer_id);
        assert_eq!(producers[0].last_sequence, 9);
        producer.close().await;

        let mut config = ProducerConfig::default();
        config.set("acks", "1").unwrap();
        let plain = Producer::new(client.clone(), config);
        plain.send(record("idem-default", "plain")).await.unwrap();
        plain.flush().await;
        assert_eq!(plain.producer_id_and_epoch(), None);
        plain.close().await;
        // Idempotence asked for explicitly with acks=1 is refused, as Kafka refuses it.
        let mut config = ProducerConfig::default();
        config.set("enable.idempotence", "true").unwrap();
        config.set("acks", "1").unwrap();
        assert!(config.check().is_err());
    });
}

#[test]
fn committed_and_aborted_transactions_as_read_committed_and_uncommitted_consumers_see_them() {
    let broker = AnyBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        create(&client, "native-txn").await;
        let producer = transactional(&client, "native-txn-id");
        // Before init_transactions and begin_transaction, sends are refused.
        assert!(matches!(
            producer.send(record("native-txn", "x")).await,
            Err(Error::Transaction { fatal: false, .. })
        ));
        producer.init_transactions().await.unwrap();
        assert!(producer.send(record("native-txn", "x")).await.is_err());
        producer.begin_transaction().unwrap();
        for i in 0..3 {
            producer
                .send(record("native-txn", &format!("committed-{i}")))
                .await
                .unwrap();
        }
        producer.commit_transaction().await.unwrap();
        producer.begin_transaction().unwrap();
        for i in 0..2 {
            producer
                .send(record("native-txn", &format!("aborted-{i}")))
                .await
                .unwrap();
        }
        producer.flush().await;
        producer.abort_transaction().await.unwrap();
        producer.begin_transaction().unwrap();
        producer.send(record("native-txn", "open")).await.unwrap();
        producer.flush().await;
        let tp = TopicPartition::new("native-txn", 0);
        let lso = client
            .last_stable_offsets(std::slice::from_ref(&tp))
            .await
            .unwrap();
        assert_eq!(
            lso[&tp], 7,
            "3 records, a marker, 2 records, a marker: the open one is at 7"
        );
        assert_eq!(
            values(&client, "native-txn", 1, 3).await,
            ["committed-0", "committed-1", "committed-2"]
        );
        producer.commit_transaction().await.unwrap();
        assert_eq!(
            values(&client, "native-txn", 1, 4).await,
            ["committed-0", "committed-1", "committed-2", "open"]
        );
        assert_eq!(
            values(&client, "native-txn", 0, 6).await,
            [
                "committed-0",
                "committed-1",
                "committed-2",
                "aborted-0",
                "aborted-1",
                "open"
            ]
        );
        producer.close().await;
    });
}

#[test]
fn offsets_sent_to_a_transaction_are_committed_with_it_and_zombies_are_fenced() {
    let broker = AnyBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        create(&client, "ctp-in").await;
        create(&client, "ctp-out").await;
        let seed = Producer::new(client.clone(), ProducerConfig::default());
        for i in 0..10 {
            seed.send(record("ctp-in", &format!("v{i}"))).await.unwrap();
        }
        seed.close().await;
        let mut config = GroupConfig::new("ctp-group");
        config.fetch.isolation_level = 1;
        config.auto_offset_reset = AutoOffsetReset::Earliest;
        config.enable_auto_commit = false;
        let mut member = GroupConsumer::subscribe(client.clone(), vec!["ctp-in".into()], config)
            .await
            .unwrap();
        let producer = transactional(&client, "ctp-id");
        producer.init_transactions().await.unwrap();
        let mut copied = 0;
        let mut aborted_once = false;
        let in_tp = TopicPartition::new("ctp-in", 0);
        while copied < 10 {
            let records = member.poll().await.unwrap();
            if records.is_empty() {
                continue;
            }
            producer.begin_transaction().unwrap();
            let mut last = 0;
            for r in &records {
                let value = String::from_utf8_lossy(r.value.as_ref().unwrap()).to_uppercase();
                producer.send(record("ctp-out", &value)).await.unwrap();
                last = r.offset;
            }
            producer
                .send_offsets_to_transaction(&[(in_tp.clone(), last + 1)], &member.group_metadata())
                .await
                .unwrap();
            if !aborted_once {
                // Aborted: its outputs vanish and its offsets are not committed.
                aborted_once = true;
                producer.abort_transaction().await.unwrap();
                member
                    .seek("ctp-in", 0, StartOffset::Offset(records[0].offset))
                    .await
                    .unwrap();
                let committed = client.committed_offsets("ctp-group").await.unwrap();
                assert_eq!(committed.get(&in_tp), None, "{committed:?}");
                continue;
            }
            producer.commit_transaction().await.unwrap();
            copied += records.len();
        }
        let expected: Vec<String> = (0..10).map(|i| format!("V{i}")).collect();
        assert_eq!(values(&client, "ctp-out", 1, 10).await, expected);
        let committed = client.committed_offsets("ctp-group").await.unwrap();
        assert_eq!(committed.get(&in_tp), Some(&10));
        member.close().await.unwrap();

        // A second instance with the same transactional id fences the first.
        producer.begin_transaction().unwrap();
        producer.send(record("ctp-out", "zombie")).await.unwrap();
        producer.flush().await;
        let successor = transactional(&client, "ctp-id");
        successor.init_transactions().await.unwrap();
        let err = producer.commit_transaction().await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Broker { code, .. } if *code == kafka_protocol::ResponseError::ProducerFenced
                    || *code == kafka_protocol::ResponseError::InvalidProducerEpoch
            ),
            "{err:?}"
        );
        assert!(matches!(
            producer.begin_transaction(),
            Err(Error::Transaction { fatal: true, .. })
        ));
        successor.begin_transaction().unwrap();
        successor
            .send(record("ctp-out", "successor"))
            .await
            .unwrap();
        successor
            .send_offsets_to_transaction(
                &[(in_tp.clone(), 10)],
                &ConsumerGroupMetadata::standalone("ctp-group"),
            )
            .await
            .unwrap();
        successor.commit_transaction().await.unwrap();
        let mut expected = expected;
        expected.push("successor".into());
        assert_eq!(values(&client, "ctp-out", 1, 11).await, expected);
    });
}

#[test]
fn a_transaction_left_open_is_aborted_after_its_timeout_and_its_producer_fenced() {
    let broker = AnyBroker::start(&[(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "100",
    )]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        create(&client, "txn-timeout").await;
        let mut config = ProducerConfig::default();
        config.set("transactional.id", "txn-timeout-id").unwrap();
        config.set("transaction.timeout.ms", "1000").unwrap();
        let producer = Producer::new(client.clone(), config);
        producer.init_transactions().await.unwrap();
        producer.begin_transaction().unwrap();
        producer.send(record("txn-timeout", "left open")).await.unwrap();
        producer.flush().await;
        let tp = TopicPartition::new("txn-timeout", 0);
        let lso = |client: Arc<Client>, tp: TopicPartition| async move {
            client.last_stable_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp]
        };
        assert_eq!(lso(client.clone(), tp.clone()).await, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while lso(client.clone(), tp.clone()).await != 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the transaction was not aborted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let err = producer.commit_transaction().await.unwrap_err();
        assert!(
            matches!(&err, Error::Broker { code, .. } if *code == kafka_protocol::ResponseError::ProducerFenced
                || *code == kafka_protocol::ResponseError::InvalidProducerEpoch),
            "{err:?}"
        );
        assert!(values(&client, "txn-timeout", 1, 0).await.is_empty());
    });
}
