//! Sluice's own client against the broker, and against librdkafka's partitioner.

use std::collections::BTreeMap;

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::partitioner::partition_for_key;
use sluice_log::client::producer::{parse_compression, Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::{Client, ClientOptions, NewTopic};
use sluice_log::{Error, TopicPartition};

use super::fixtures::{run_bounded, runtime, AnyBroker, TestBroker};

#[test]
fn produce_with_every_codec_then_consume_in_order() {
    let broker = AnyBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        let created = client
            .create_topics(
                &[NewTopic {
                    name: "rust".into(),
                    partitions: 1,
                    replication_factor: 1,
                    configs: BTreeMap::new(),
                }],
                false,
            )
            .await
            .unwrap();
        assert!(created[0].1.is_ok());
        let mut expected = Vec::new();
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            for acks in ["all", "1", "0"] {
                let mut config = ProducerConfig {
                    compression: parse_compression(codec).unwrap(),
                    ..Default::default()
                };
                config.set("acks", acks).unwrap();
                let producer = Producer::new(client.clone(), config);
                let mut deliveries = Vec::new();
                for i in 0..100 {
                    let value = Bytes::from(format!("{codec}-{acks}-{i}"));
                    expected.push(value.clone());
                    let record = ProducerRecord {
                        topic: "rust".into(),
                        value: Some(value),
                        headers: vec![("h".into(), Some(Bytes::from("x")))],
                        ..Default::default()
                    };
                    deliveries.push(producer.send(record).await.unwrap());
                }
                producer.flush().await;
                for delivery in deliveries {
                    let metadata = delivery.await.unwrap();
                    assert_eq!(metadata.partition, 0);
                    if acks != "0" {
                        assert!(metadata.offset >= 0);
                    }
                }
                producer.close().await;
            }
        }
        let mut consumer = Consumer::assign(
            client.clone(),
            vec![(TopicPartition::new("rust", 0), StartOffset::Beginning)],
            ConsumerConfig::default(),
        )
        .await
        .unwrap();
        let mut got = Vec::new();
        while got.len() < expected.len() {
            got.extend(consumer.poll().await.unwrap());
        }
        assert_eq!(
            got.iter()
                .map(|r| r.value.clone().unwrap())
                .collect::<Vec<_>>(),
            expected
        );
        assert!(got.iter().enumerate().all(|(i, r)| r.offset == i as i64
            && r.headers == vec![("h".to_string(), Some(Bytes::from("x")))]));
        assert!(consumer.at_end());

        let err = client.topic("missing", false).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Broker {
                    code: kafka_protocol::ResponseError::UnknownTopicOrPartition,
                    ..
                }
            ),
            "{err}"
        );
    });
}

#[test]
fn keyed_records_land_where_librdkafkas_murmur2_partitioner_puts_them() {
    let broker = TestBroker::start(&[("num.partitions", "7")]);
    let keys: Vec<String> = (0..200).map(|i| format!("customer-{i}")).collect();
    let input: String = keys.iter().map(|k| format!("{k}:v\n")).collect();
    let bootstrap = broker.bootstrap();
    let out = run_bounded(
        60,
        "kcat",
        &[
            "-b",
            &bootstrap,
            "-P",
            "-t",
            "keyed",
            "-K:",
            "-X",
            "partitioner=murmur2_random",
        ],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    runtime().block_on(async {
        let client = Client::connect(&bootstrap, ClientOptions::default())
            .await
            .unwrap();
        let assignments = (0..7)
            .map(|p| (TopicPartition::new("keyed", p), StartOffset::Beginning))
            .collect();
        let mut consumer = Consumer::assign(client, assignments, ConsumerConfig::default())
            .await
            .unwrap();
        let mut seen = 0;
        while seen < keys.len() {
            for record in consumer.poll().await.unwrap() {
                let key = record.key.unwrap();
                assert_eq!(record.partition, partition_for_key(&key, 7), "key {key:?}");
                seen += 1;
            }
        }
    });
}

#[test]
fn a_fetch_waits_for_data_up_to_max_wait_and_wakes_when_it_arrives() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::time::{Duration, Instant};
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        client
            .create_topics(
                &[NewTopic {
                    name: "wait".into(),
                    partitions: 1,
                    replication_factor: 1,
                    configs: BTreeMap::new(),
                }],
                false,
            )
            .await
            .unwrap();
        let fetch = |max_wait_ms: i32| {
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("wait")))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20)])])
        };
        let connection = client.leader_connection("wait", 0).await.unwrap();
        // Nothing arrives: the fetch returns empty after max.wait.ms, not before.
        let started = Instant::now();
        let response = connection.send(&fetch(300)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(response.responses[0].partitions[0]
            .records
            .as_ref()
            .is_none_or(|r| r.is_empty()));
        // A record arrives while the fetch waits: it returns with it, long before max.wait.ms.
        let waiting = connection.start(&fetch(20_000)).await.unwrap();
        // Its own client: requests on one connection are answered in order, so a produce on the
        // fetch's connection would wait behind the fetch.
        let producer_client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        let producer = Producer::new(producer_client, ProducerConfig::default());
        let delivery = producer
            .send(ProducerRecord {
                topic: "wait".into(),
                value: Some(Bytes::from("now")),
                ..Default::default()
            })
            .await
            .unwrap();
        delivery.await.unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), waiting.wait())
            .await
            .expect("the fetch woke up")
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woken, not timed out"
        );
        assert!(!response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .is_empty());
        producer.close().await;
    });
}

#[test]
fn a_client_config_map_drives_producer_and_group_consumer() {
    use sluice_log::client::config::ClientConfig;
    use sluice_log::client::group_consumer::GroupConsumer;
    let broker = AnyBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let scenario = async {
        let config = ClientConfig::from_properties(&format!(
            "bootstrap.servers={}\nclient.id=config-test\nacks=all\nlinger.ms=0\n\
             group.id=from-properties\nauto.offset.reset=earliest\nenable.auto.commit=false\n\
             max.poll.records=2\nfetch.max.wait.ms=50\n",
            broker.bootstrap()
        ))
        .unwrap();
        let client = config.connect().await.unwrap();
        let topic = NewTopic {
            name: "configured".into(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        assert!(client.create_topics(&[topic], false).await.unwrap()[0]
            .1
            .is_ok());
        let producer = Producer::new(client.clone(), config.producer_config().unwrap());
        let mut deliveries = Vec::new();
        for i in 0..5 {
            let record = ProducerRecord {
                topic: "configured".into(),
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

        let mut member = GroupConsumer::subscribe(
            config.connect().await.unwrap(),
            vec!["configured".into()],
            config.group_config().unwrap(),
        )
        .await
        .unwrap();
        let mut offsets = Vec::new();
        while offsets.len() < 5 {
            let records = member.poll().await.unwrap();
            assert!(
                records.len() <= 2,
                "max.poll.records=2, got {}",
                records.len()
            );
            offsets.extend(records.iter().map(|r| r.offset));
        }
        assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
        member.close().await.unwrap();
        // enable.auto.commit=false: close committed nothing.
        assert!(client
            .committed_offsets("from-properties")
            .await
            .unwrap()
            .is_empty());
        let described = client.describe_group("from-properties").await.unwrap();
        assert_eq!(described.state, "Empty");

        let err = ClientConfig::new()
            .set("bootstrap.servers", &broker.bootstrap())
            .set("linger.msec", "5")
            .connect()
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("did you mean linger.ms?"), "{err}");
    };
    runtime()
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), scenario).await
        })
        .expect("the scenario finishes within 60 s");
}

#[test]
fn the_producer_retries_until_the_topic_exists_and_keeps_order() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]);
    let scenario = async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        // One record per batch, one request at a time: retries must not reorder them.
        let config = ProducerConfig {
            batch_size: 1,
            linger: std::time::Duration::ZERO,
            max_in_flight: 1,
            retry_backoff: std::time::Duration::from_millis(20),
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client.clone(), config);
        let mut deliveries = Vec::new();
        for i in 0..10 {
            let record = ProducerRecord {
                topic: "late".into(),
                partition: Some(0),
                value: Some(Bytes::from(format!("v{i}"))),
                ..Default::default()
            };
            deliveries.push(producer.send(record).await.unwrap());
        }
        // UNKNOWN_TOPIC_OR_PARTITION is retriable: the batches wait for the topic.
        while producer.record_retry_total() < 10 {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let topic = NewTopic {
            name: "late".into(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        assert!(client.create_topics(&[topic], false).await.unwrap()[0]
            .1
            .is_ok());
        let mut offsets = Vec::new();
        for delivery in deliveries {
            offsets.push(delivery.await.unwrap().offset);
        }
        assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
        producer.close().await;
        let mut consumer = Consumer::assign(
            client.clone(),
            vec![(TopicPartition::new("late", 0), StartOffset::Beginning)],
            ConsumerConfig::default(),
        )
        .await
        .unwrap();
        let mut values = Vec::new();
        while values.len() < 10 {
            values.extend(consumer.poll().await.unwrap().into_iter().map(|r| r.value));
        }
        let expected: Vec<_> = (0..10)
            .map(|i| Some(Bytes::from(format!("v{i}"))))
            .collect();
        assert_eq!(values, expected);

        // A burst of one-record batches of a partition: one batch per partition per request,
        // each acknowledged with its own offset.
        let config = ProducerConfig {
            batch_size: 1,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client.clone(), config);
        let mut deliveries = Vec::new();
        for i in 0..50 {
            let record = ProducerRecord {
                topic: "late".into(),
                partition: Some(0),
                value: Some(Bytes::from(format!("burst{i}"))),
                ..Default::default()
            };
            deliveries.push(producer.send(record).await.unwrap());
        }
        let mut offsets = Vec::new();
        for delivery in deliveries {
            offsets.push(delivery.await.unwrap().offset);
        }
        assert_eq!(offsets, (10..60).collect::<Vec<i64>>());
        producer.close().await;

        // A topic that never comes: the record fails once delivery.timeout.ms has passed.
        let config = ProducerConfig {
            retry_backoff: std::time::Duration::from_millis(20),
            delivery_timeout: std::time::Duration::from_millis(300),
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client.clone(), config);
        let record = ProducerRecord {
            topic: "never".into(),
            partition: Some(0),
            value: Some(Bytes::from_static(b"lost cause")),
            ..Default::default()
        };
        let err = producer.send(record).await.unwrap().await.unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::Timeout { .. }) && message.contains("never-0"),
            "{message}"
        );
        assert!(producer.record_retry_total() >= 2);
        producer.close().await;

        // retries=0: the first retriable error is final.
        let config = ProducerConfig {
            retries: 0,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client.clone(), config);
        let record = ProducerRecord {
            topic: "never".into(),
            partition: Some(0),
            value: Some(Bytes::from_static(b"once")),
            ..Default::default()
        };
        let err = producer.send(record).await.unwrap().await.unwrap_err();
        assert!(
            matches!(err, Error::Broker { code, .. } if code == kafka_protocol::ResponseError::UnknownTopicOrPartition),
            "{err}"
        );
        assert_eq!(producer.record_retry_total(), 0);
        producer.close().await;
    };
    runtime()
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), scenario).await
        })
        .expect("the scenario finishes within 60 s");
}

#[test]
fn a_request_cancelled_while_it_is_written_leaves_the_connection_usable() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let broker = TestBroker::start(&[]);
    let scenario = async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        let connection = client.any_connection().await.unwrap();
        // 32 MB: more than the socket buffers hold, so the write is still going when the
        // caller gives up.
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("nowhere")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(vec![0u8; 32 << 20])))])]);
        for _ in 0..3 {
            let _ = tokio::time::timeout(
                std::time::Duration::from_micros(50),
                connection.send(&request),
            )
            .await;
        }
        // The frames went out whole: the same connection still answers in step.
        for _ in 0..3 {
            let metadata = client.metadata(None, false).await.unwrap();
            assert_eq!(metadata.brokers.len(), 1);
        }
    };
    runtime()
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), scenario).await
        })
        .expect("the scenario finishes within 60 s");
}
