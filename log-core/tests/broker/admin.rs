//! Broker settings and errors through Sluice's client: deletion and auto-creation switches,
//! topic name validation, fetch size limits, OffsetForLeaderEpoch.

use std::collections::BTreeMap;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_log::client::{Client, ClientOptions, NewTopic};
use sluice_log::{Error, TopicPartition};

use super::fixtures::{batch, TestBroker};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn topic(name: &str, partitions: i32) -> NewTopic {
    NewTopic {
        name: name.into(),
        partitions,
        replication_factor: -1,
        configs: BTreeMap::new(),
    }
}

/// Appends one `value` batch per leader epoch in `epochs` straight to a partition's log, and
/// makes it all visible (the high watermark at the end).
fn append_straight(broker: &TestBroker, topic: &str, partition: i32, value: &[u8], epochs: &[i32]) {
    let log = broker
        .broker
        .logs()
        .get(&TopicPartition::new(topic, partition))
        .unwrap();
    let mut log = log.lock();
    for epoch in epochs {
        log.append_as_leader(&batch(None, &[value.to_vec()], 1), *epoch)
            .unwrap();
    }
    let end = log.log_end_offset();
    log.set_high_watermark(end);
}

fn code_of(result: &Result<(), Error>) -> Option<ResponseError> {
    match result {
        Err(Error::Broker { code, .. }) => Some(*code),
        _ => None,
    }
}

#[test]
fn deletion_and_auto_creation_follow_the_broker_switches() {
    let broker = TestBroker::start(&[
        ("delete.topic.enable", "false"),
        ("auto.create.topics.enable", "false"),
    ]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        assert!(client
            .create_topics(&[topic("kept", 2)], false)
            .await
            .unwrap()[0]
            .1
            .is_ok());
        let deleted = client.delete_topics(&["kept".to_string()]).await.unwrap();
        assert_eq!(
            code_of(&deleted[0].1),
            Some(ResponseError::TopicDeletionDisabled)
        );
        // No auto-creation: asking for a missing topic is an error, and creates nothing.
        let err = client.topic("missing", true).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Broker {
                    code: ResponseError::UnknownTopicOrPartition,
                    ..
                }
            ),
            "{err}"
        );
        let all = client.metadata(None, false).await.unwrap();
        assert_eq!(all.topics.len(), 1);
        // Names as Kafka validates them.
        let results = client
            .create_topics(
                &[topic("a/b", 1), topic(&"x".repeat(250), 1), topic("..", 1)],
                false,
            )
            .await
            .unwrap();
        assert!(
            results
                .iter()
                .all(|(_, r)| code_of(r) == Some(ResponseError::InvalidTopicException)),
            "{results:?}"
        );
        // validate_only creates nothing.
        assert!(client
            .create_topics(&[topic("dry", 1)], true)
            .await
            .unwrap()[0]
            .1
            .is_ok());
        assert_eq!(client.metadata(None, false).await.unwrap().topics.len(), 1);
    });
}

#[test]
fn fetch_limits_return_whole_batches_and_at_least_one() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        client
            .create_topics(&[topic("sizes", 2)], false)
            .await
            .unwrap();
        // Three batches of ~1 KB in each partition, appended straight to the logs.
        for partition in 0..2 {
            append_straight(&broker, "sizes", partition, &[b'v'; 1000], &[0; 3]);
        }
        let fetch = |max_bytes: i32, partition_max_bytes: i32| {
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_max_bytes(max_bytes)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("sizes")))
                    .with_partitions(
                        (0..2)
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_fetch_offset(0)
                                    .with_partition_max_bytes(partition_max_bytes)
                            })
                            .collect(),
                    )])
        };
        let connection = client.leader_connection("sizes", 0).await.unwrap();
        let sizes = |response: &kafka_protocol::messages::FetchResponse| -> Vec<usize> {
            response.responses[0]
                .partitions
                .iter()
                .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
                .collect()
        };
        let one_batch = 1000 + 61 + 10;
        // Per-partition limit of 2.5 batches: two whole batches from each.
        let response = connection
            .send(&fetch(1 << 20, (one_batch * 5 / 2) as i32))
            .await
            .unwrap();
        let got = sizes(&response);
        assert!(
            got.iter().all(|&n| n > one_batch && n < 3 * one_batch),
            "{got:?}"
        );
        // A total limit of 1.5 batches: one batch, from the first partition only.
        let response = connection
            .send(&fetch((one_batch * 3 / 2) as i32, 1 << 20))
            .await
            .unwrap();
        let got = sizes(&response);
        assert!(
            got[0] > 0 && got[0] < 2 * one_batch && got[1] == 0,
            "{got:?}"
        );
        // Limits below one batch still return one whole batch (KIP-74), for the first partition.
        let response = connection.send(&fetch(10, 10)).await.unwrap();
        let got = sizes(&response);
        assert!(got[0] > 1000 && got[1] == 0, "{got:?}");
    });
}

#[test]
fn offset_for_leader_epoch_answers_where_each_epoch_ends() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        client
            .create_topics(&[topic("epochs", 1)], false)
            .await
            .unwrap();
        append_straight(&broker, "epochs", 0, b"x", &[0, 0, 3, 3, 5]);
        let request = |leader_epoch: i32| {
            OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("epochs")))
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(leader_epoch)])])
        };
        let connection = client.leader_connection("epochs", 0).await.unwrap();
        for (asked, epoch, end) in [(0, 0, 2), (1, 0, 2), (3, 3, 4), (5, 5, 5), (9, 5, 5)] {
            let response = connection.send(&request(asked)).await.unwrap();
            let answer = &response.topics[0].partitions[0];
            assert_eq!(
                (answer.error_code, answer.leader_epoch, answer.end_offset),
                (0, epoch, end),
                "epoch {asked}"
            );
        }
    });
}

#[test]
fn offset_delete_removes_offsets_unless_the_group_subscribes_to_the_topic() {
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetDeleteRequest};
    use sluice_log::client::group_consumer::{GroupConfig, GroupConsumer};
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        client
            .create_topics(&[topic("od", 2)], false)
            .await
            .unwrap();
        let offsets: BTreeMap<TopicPartition, i64> = [
            (TopicPartition::new("od", 0), 0),
            (TopicPartition::new("od", 1), 0),
        ]
        .into();
        client.commit_offsets("odg", &offsets).await.unwrap();
        let request = |partition: i32| {
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("odg")))
                .with_topics(vec![OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("od")))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(partition)
                    ])])
        };
        let coordinator = client.group_coordinator("odg").await.unwrap();
        let response = coordinator.send(&request(0)).await.unwrap();
        assert_eq!(
            (
                response.error_code,
                response.topics[0].partitions[0].error_code
            ),
            (0, 0)
        );
        assert_eq!(
            client
                .committed_offsets("odg")
                .await
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            vec![TopicPartition::new("od", 1)]
        );
        // With a member subscribed to the topic, its offsets stay.
        let member_client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        let member =
            GroupConsumer::subscribe(member_client, vec!["od".into()], GroupConfig::new("odg"))
                .await
                .unwrap();
        let response = coordinator.send(&request(1)).await.unwrap();
        assert_eq!(
            response.topics[0].partitions[0].error_code,
            ResponseError::GroupSubscribedToTopic.code()
        );
        member.leave().await.unwrap();
        let missing = OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("nobody")));
        let response = coordinator.send(&missing).await.unwrap();
        assert_eq!(response.error_code, ResponseError::GroupIdNotFound.code());
    });
}

#[test]
fn delete_records_moves_the_log_start_offset_and_survives_a_restart() {
    let broker = TestBroker::start(&[]);
    let fetch_at = |offset: i64| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("trim")))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])])
    };
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        client
            .create_topics(&[topic("trim", 1)], false)
            .await
            .unwrap();
        append_straight(&broker, "trim", 0, b"v", &[0; 10]);
        assert_eq!(client.delete_records("trim", 0, 4).await.unwrap(), 4);
        assert_eq!(
            client.list_offset("trim", 0, -2).await.unwrap(),
            4,
            "earliest follows"
        );
        let connection = client.leader_connection("trim", 0).await.unwrap();
        let below = connection.send(&fetch_at(3)).await.unwrap();
        let partition = &below.responses[0].partitions[0];
        assert_eq!(partition.error_code, ResponseError::OffsetOutOfRange.code());
        let at = connection.send(&fetch_at(4)).await.unwrap();
        let partition = &at.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.log_start_offset, 4);
        // Moving back is a no-op; past the high watermark is out of range; -1 is the high
        // watermark; internal and unknown topics are refused.
        assert_eq!(client.delete_records("trim", 0, 2).await.unwrap(), 4);
        let past = client.delete_records("trim", 0, 11).await.unwrap_err();
        assert!(
            matches!(
                past,
                Error::Broker {
                    code: ResponseError::OffsetOutOfRange,
                    ..
                }
            ),
            "{past}"
        );
        assert_eq!(client.delete_records("trim", 0, -1).await.unwrap(), 10);
        let missing = client.delete_records("nowhere", 0, 1).await.unwrap_err();
        assert!(
            matches!(
                missing,
                Error::Broker {
                    code: ResponseError::UnknownTopicOrPartition,
                    ..
                }
            ),
            "{missing}"
        );
    });
    let broker = TestBroker::start_in(broker.stop(), &[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        assert_eq!(
            client.list_offset("trim", 0, -2).await.unwrap(),
            10,
            "the log start offset was checkpointed"
        );
    });
}

#[test]
fn with_no_authorizer_every_operation_is_authorized() {
    use kafka_protocol::messages::{DescribeClusterRequest, MetadataRequest};
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        client
            .create_topics(&[topic("ops", 1)], false)
            .await
            .unwrap();
        let connection = client.controller_connection().await.unwrap();
        let metadata = connection
            .send(
                &MetadataRequest::default()
                    .with_topics(None)
                    .with_include_topic_authorized_operations(true),
            )
            .await
            .unwrap();
        // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS
        // (Kafka's AclOperation codes 3-8, 10, 11).
        let topic_ops =
            (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
        assert!(metadata
            .topics
            .iter()
            .all(|t| t.topic_authorized_operations == topic_ops));
        let plain = connection
            .send(&MetadataRequest::default().with_topics(None))
            .await
            .unwrap();
        assert!(plain
            .topics
            .iter()
            .all(|t| t.topic_authorized_operations == i32::MIN));
        let cluster = connection
            .send(
                &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            )
            .await
            .unwrap();
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
        // IDEMPOTENT_WRITE.
        let cluster_ops =
            (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
        assert_eq!(cluster.cluster_authorized_operations, cluster_ops);
    });
}
