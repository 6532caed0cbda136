//! Kafka's topic configs through the wire: every one accepted with Kafka's checks and
//! described with its source and synonyms, and those that change what a single node does —
//! `compression.type`, `message.timestamp.type`, the timestamp bounds — seen in the log.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, TimestampType};
use kafka_protocol::ResponseError;
use sluice_log::client::admin::ConfigResource;
use sluice_log::client::{Client, ClientOptions, NewTopic};
use sluice_log::storage::batch::BatchHeader;
use sluice_log::storage::log::FetchIsolation;
use sluice_log::{Error, TopicPartition};

use super::fixtures::{batch_with, produce_request, read_values, runtime, TestBroker};

fn topic(name: &str, configs: &[(&str, &str)]) -> NewTopic {
    NewTopic {
        name: name.into(),
        partitions: 1,
        replication_factor: -1,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A keyed batch of `values` at `timestamp`, compressed with `codec`.
fn batch(values: &[&str], timestamp: i64, codec: Compression) -> Bytes {
    let values: Vec<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
    batch_with(Some(b"k"), &values, timestamp, codec).freeze()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The header of the first batch stored in a partition.
fn first_stored_header(broker: &TestBroker, topic: &str) -> BatchHeader {
    let log = broker
        .broker
        .logs()
        .get(&TopicPartition::new(topic, 0))
        .unwrap();
    let mut log = log.lock();
    let bytes = log.read_bytes(0, 1 << 20, FetchIsolation::LogEnd).unwrap();
    BatchHeader::parse(&bytes).unwrap()
}

#[test]
fn the_broker_recompresses_and_stamps_append_time_as_the_topic_says() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        // CreateTopics with compression.type=lz4 was refused before ("unknown topic
        // configuration"; librdkafka's 0081_admin).
        let created = client
            .create_topics(
                &[
                    topic(
                        "lz4",
                        &[("compression.type", "lz4"), ("compression.lz4.level", "12")],
                    ),
                    topic("as-sent", &[]),
                    topic("stamped", &[("message.timestamp.type", "LogAppendTime")]),
                ],
                false,
            )
            .await
            .unwrap();
        assert!(created.iter().all(|(_, r)| r.is_ok()), "{created:?}");
        let connection = client.leader_connection("lz4", 0).await.unwrap();
        for name in ["lz4", "as-sent", "stamped"] {
            let response = connection
                .send(&produce_request(
                    name,
                    batch(&["one", "two"], now_ms(), Compression::Gzip),
                ))
                .await
                .unwrap();
            let partition = &response.responses[0].partition_responses[0];
            assert_eq!(partition.error_code, 0, "{name}");
            if name == "stamped" {
                let stamped = partition.log_append_time_ms;
                assert!((now_ms() - stamped).abs() < 60_000, "append time {stamped}");
            } else {
                assert_eq!(partition.log_append_time_ms, -1, "{name}");
            }
        }
        let lz4 = first_stored_header(&broker, "lz4");
        assert_eq!(lz4.compression(), Some(Compression::Lz4), "recompressed");
        assert_eq!(
            first_stored_header(&broker, "as-sent").compression(),
            Some(Compression::Gzip),
            "compression.type=producer keeps the producer's codec"
        );
        let stamped = first_stored_header(&broker, "stamped");
        assert_eq!(stamped.timestamp_type(), TimestampType::LogAppend);
        for name in ["lz4", "as-sent", "stamped"] {
            let log = broker
                .broker
                .logs()
                .get(&TopicPartition::new(name, 0))
                .unwrap();
            let values: Vec<Bytes> = read_values(&mut log.lock())
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            assert_eq!(
                values,
                vec![Bytes::from("one"), Bytes::from("two")],
                "{name}"
            );
        }

        // Kafka 4's default: CreateTime timestamps at most an hour ahead.
        let future = connection
            .send(&produce_request(
                "as-sent",
                batch(&["late"], now_ms() + 2 * 3_600_000, Compression::None),
            ))
            .await
            .unwrap();
        let partition = &future.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, ResponseError::InvalidTimestamp.code());
        assert_eq!(partition.record_errors.len(), 1);
        assert_eq!(partition.record_errors[0].batch_index, 0);
        assert!(partition.record_errors[0]
            .batch_index_error_message
            .as_deref()
            .is_some_and(|m| m.contains("out of range")));
        // A LogAppendTime topic takes any producer timestamp.
        let stamped = connection
            .send(&produce_request(
                "stamped",
                batch(&["late"], now_ms() + 2 * 3_600_000, Compression::None),
            ))
            .await
            .unwrap();
        assert_eq!(stamped.responses[0].partition_responses[0].error_code, 0);
    });
}

#[test]
fn every_kafka_topic_config_is_accepted_checked_and_described() {
    let broker = TestBroker::start(&[("log.retention.hours", "100")]);
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        let all: &[(&str, &str)] = &[
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "true"),
            ("leader.replication.throttled.replicas", "*"),
            ("follower.replication.throttled.replicas", "0:1"),
            ("remote.storage.enable", "false"),
            ("local.retention.ms", "1000"),
            ("max.compaction.lag.ms", "60000"),
            ("segment.jitter.ms", "100"),
            ("file.delete.delay.ms", "0"),
            ("preallocate", "true"),
            ("message.timestamp.before.max.ms", "1000"),
            ("compression.zstd.level", "5"),
            ("retention.ms", "1000"),
            // Kafka 3.x's, accepted for the clients written against it.
            ("message.format.version", "0.10.0"),
        ];
        let created = client
            .create_topics(&[topic("configured", all)], false)
            .await
            .unwrap();
        assert!(created[0].1.is_ok(), "{:?}", created[0].1);
        let described = client
            .describe_configs(&ConfigResource::Topic("configured".into()))
            .await
            .unwrap();
        let by_name: BTreeMap<&str, &sluice_log::client::admin::ConfigEntry> =
            described.iter().map(|c| (c.name.as_str(), c)).collect();
        // Kafka 4.4's 37, and the legacy one this topic sets.
        assert_eq!(described.len(), 38, "{:?}", by_name.keys());
        for (name, value) in all {
            let entry = by_name[name];
            assert_eq!(entry.value.as_deref(), Some(*value), "{name}");
            assert_eq!(entry.source, 1, "{name} is a topic override");
        }
        assert_eq!(by_name["compression.type"].value.as_deref(), Some("producer"));
        assert_eq!(by_name["compression.type"].source, 5);
        assert_eq!(
            by_name["message.timestamp.after.max.ms"].value.as_deref(),
            Some("3600000")
        );

        // Bad values are refused with Kafka's words; unknown names too.
        for (config, words) in [
            ("foo.bar=1", "Unknown topic config name: foo.bar"),
            ("compression.type=bogus", "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
            ("retention.ms=abc", "Not a number of type LONG"),
            ("min.insync.replicas=0", "Value must be at least 1"),
            ("compression.gzip.level=99", "Value must be between 1 and 9 or equal to -1"),
            ("segment.bytes=2000", "Value must be at least 1048576"),
        ] {
            let (key, value) = config.split_once('=').unwrap();
            let err = client
                .create_topics(&[topic("refused", &[(key, value)])], false)
                .await
                .unwrap()
                .remove(0)
                .1
                .unwrap_err();
            assert!(
                matches!(&err, Error::Broker { code: ResponseError::InvalidConfig, message } if message.contains(words)),
                "{config}: {err}"
            );
        }

        // Synonyms: the topic's override, then the broker's static setting, in Kafka's order;
        // documentation when asked for.
        let connection = client.controller_connection().await.unwrap();
        let response = connection
            .send(
                &DescribeConfigsRequest::default()
                    .with_include_synonyms(true)
                    .with_include_documentation(true)
                    .with_resources(vec![DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("configured"))
                        .with_configuration_keys(Some(vec![
                            StrBytes::from_static_str("retention.ms"),
                            StrBytes::from_static_str("segment.bytes"),
                        ]))]),
            )
            .await
            .unwrap();
        let configs = &response.results[0].configs;
        assert_eq!(configs.len(), 2);
        let retention = configs.iter().find(|c| c.name.as_str() == "retention.ms").unwrap();
        let synonyms: Vec<(&str, i8)> = retention
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(synonyms, vec![("retention.ms", 1), ("log.retention.hours", 4)]);
        assert_eq!(retention.config_type, 5, "LONG");
        assert!(retention.documentation.is_some());
        let segment = configs.iter().find(|c| c.name.as_str() == "segment.bytes").unwrap();
        let synonyms: Vec<(&str, &str, i8)> = segment
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_deref().unwrap_or(""), s.source))
            .collect();
        assert_eq!(synonyms, vec![("log.segment.bytes", "1073741824", 5)]);
        assert_eq!(segment.config_source, 5);
        assert_eq!(segment.config_type, 3, "INT");
    });
}

#[test]
fn dynamic_broker_configs_apply_to_topics_and_survive_a_restart() {
    let broker = TestBroker::start(&[("log.retention.hours", "100")]);
    let this_broker = ConfigResource::Broker("1".into());
    let cluster_default = ConfigResource::Broker(String::new());
    let set = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        client
            .create_topics(&[topic("plain", &[]), topic("own", &[("retention.ms", "5000")])], false)
            .await
            .unwrap();
        // librdkafka's 0081 changes this per-broker SASL setting; the log default applies at
        // once to topics without an override of their own.
        client
            .alter_configs(
                &this_broker,
                &set(&[
                    ("sasl.kerberos.min.time.before.relogin", "58000"),
                    ("log.retention.ms", "1000"),
                ]),
                &[],
            )
            .await
            .unwrap();
        client
            .alter_configs(&cluster_default, &set(&[("log.segment.bytes", "2097152")]), &[])
            .await
            .unwrap();
        let plain = broker
            .broker
            .logs()
            .get(&TopicPartition::new("plain", 0))
            .unwrap();
        assert_eq!(plain.lock().config().retention_ms, 1000, "applied live");
        assert_eq!(plain.lock().config().segment_bytes, 2_097_152);
        let described = client
            .describe_configs(&ConfigResource::Topic("plain".into()))
            .await
            .unwrap();
        let retention = described.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!((retention.value.as_deref(), retention.source), (Some("1000"), 2));
        let own = client
            .describe_configs(&ConfigResource::Topic("own".into()))
            .await
            .unwrap();
        let retention = own.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!((retention.value.as_deref(), retention.source), (Some("5000"), 1));

        // What Kafka refuses, Sluice refuses with Kafka's words.
        for (target, pairs, words) in [
            (&this_broker, &[("log.dirs", "/x")][..], "Cannot update these configs dynamically: [log.dirs]"),
            (&this_broker, &[("num.io.threads", "abc")][..], "Not a number of type INT"),
            (&this_broker, &[("log.retention.ms", "abc")][..], "Invalid value abc for configuration log.retention.ms"),
            (&cluster_default, &[("sasl.kerberos.min.time.before.relogin", "1")][..], "broker id must be specified"),
            (&ConfigResource::Broker("7".into()), &[("log.retention.ms", "1")][..], "Unexpected broker id"),
        ] {
            let err = client.alter_configs(target, &set(pairs), &[]).await.unwrap_err();
            assert!(
                matches!(&err, Error::Broker { code: ResponseError::InvalidRequest, message } if message.contains(words)),
                "{pairs:?}: {err}"
            );
        }
        let described = client.describe_configs(&this_broker).await.unwrap();
        let relogin = described
            .iter()
            .find(|c| c.name == "sasl.kerberos.min.time.before.relogin")
            .unwrap();
        assert_eq!((relogin.value.as_deref(), relogin.source, relogin.read_only), (Some("58000"), 2, false));
        let segment = described.iter().find(|c| c.name == "log.segment.bytes").unwrap();
        assert_eq!((segment.value.as_deref(), segment.source), (Some("2097152"), 3));
        let hours = described.iter().find(|c| c.name == "log.retention.hours").unwrap();
        assert_eq!(hours.source, 4, "static");
    });
    let broker = TestBroker::start_in(broker.stop(), &[("log.retention.hours", "100")]);
    runtime().block_on(async {
        let plain = broker
            .broker
            .logs()
            .get(&TopicPartition::new("plain", 0))
            .unwrap();
        assert_eq!(
            plain.lock().config().retention_ms,
            1000,
            "kept across a restart"
        );
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        // Deleting the dynamic value brings the static one back.
        client
            .alter_configs(&this_broker, &[], &["log.retention.ms".to_string()])
            .await
            .unwrap();
        assert_eq!(plain.lock().config().retention_ms, 100 * 3_600_000);
        // APPEND and SUBTRACT on a list start from the config's default, as Kafka's do
        // (librdkafka's 0081 does exactly this, and other tests run meanwhile).
        let list_op = |op: i8| {
            use kafka_protocol::messages::incremental_alter_configs_request::{
                AlterConfigsResource, AlterableConfig,
            };
            kafka_protocol::messages::IncrementalAlterConfigsRequest::default().with_resources(
                vec![AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(StrBytes::from_static_str("1"))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("log.cleanup.policy"))
                        .with_config_operation(op)
                        .with_value(Some(StrBytes::from_static_str("compact")))])],
            )
        };
        let connection = client.controller_connection().await.unwrap();
        let appended = connection.send(&list_op(2)).await.unwrap();
        assert_eq!(appended.responses[0].error_code, 0);
        let policy = plain.lock().config().cleanup_policy;
        assert!(policy.delete && policy.compact, "{policy}");
        let subtracted = connection.send(&list_op(3)).await.unwrap();
        assert_eq!(subtracted.responses[0].error_code, 0);
        assert_eq!(
            plain.lock().config().cleanup_policy,
            sluice_log::CleanupPolicy::DELETE
        );
    });
}
