//! Idempotent producers through the wire: InitProducerId hands out ids that are never reused,
//! a retried batch is answered with the offsets it first got and is not stored twice (also
//! after a restart), and batches out of sequence are refused with Kafka's error.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, ProduceResponse};
use kafka_protocol::ResponseError;
use sluice_log::client::{Client, ClientOptions, Connection, NewTopic};
use sluice_log::TopicPartition;

use super::fixtures::{
    idempotent_batch, produce_request, read_values, runtime, transactional_batch, TestBroker,
};

/// (error code, base offset) of the only partition of a produce response.
fn outcome(response: &ProduceResponse) -> (i16, i64) {
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

async fn produce(connection: &Connection, topic: &str, batch: Bytes) -> (i16, i64) {
    let response = connection
        .send_versioned(&produce_request(topic, batch), 9)
        .await
        .unwrap();
    outcome(&response)
}

async fn new_producer_id(connection: &Connection) -> (i64, i16) {
    let response = connection
        .send_versioned(
            &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            4,
        )
        .await
        .unwrap();
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

fn values(broker: &TestBroker, topic: &str) -> Vec<String> {
    let log = broker
        .broker
        .logs()
        .get(&TopicPartition::new(topic, 0))
        .unwrap();
    let mut log = log.lock();
    read_values(&mut log)
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect()
}

#[test]
fn retries_are_deduplicated_across_a_restart_and_gaps_refused() {
    let broker = TestBroker::start(&[]);
    let topic = "idem";
    let (first_id, batch_a) = runtime().block_on(async {
        let client = Client::connect(&broker.bootstrap(), ClientOptions::default())
            .await
            .unwrap();
        let created = client
            .create_topics(
                &[NewTopic {
                    name: topic.into(),
                    partitions: 1,
                    replication_factor: -1,
                    configs: Default::default(),
                }],
                false,
            )
            .await
            .unwrap();
        assert!(created.iter().all(|(_, r)| r.is_ok()), "{created:?}");
        let connection = Connection::connect(
            &broker.bootstrap(),
            "test",
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(connection.version_for(ApiKey::InitProducerId).is_ok());
        let (pid, epoch) = new_producer_id(&connection).await;
        assert_eq!(epoch, 0);
        let (other, _) = new_producer_id(&connection).await;
        assert_ne!(pid, other, "each InitProducerId gets its own id");

        let a = idempotent_batch(pid, 0, 0, &["a", "b"]).freeze();
        assert_eq!(produce(&connection, topic, a.clone()).await, (0, 0));
        // The retry of a lost response: the same offsets, no error.
        assert_eq!(produce(&connection, topic, a.clone()).await, (0, 0));
        let b = idempotent_batch(pid, 0, 2, &["c"]).freeze();
        assert_eq!(produce(&connection, topic, b).await, (0, 2));
        // Sequence 4 skips 3.
        let gap = idempotent_batch(pid, 0, 4, &["x"]).freeze();
        assert_eq!(
            produce(&connection, topic, gap).await,
            (ResponseError::OutOfOrderSequenceNumber.code(), -1)
        );
        // Another producer's sequences are its own.
        let c = idempotent_batch(other, 0, 0, &["d"]).freeze();
        assert_eq!(produce(&connection, topic, c).await, (0, 3));
        (pid, a)
    });
    assert_eq!(values(&broker, topic), ["a", "b", "c", "d"]);

    // After a restart the partition still knows the producer, and ids are not reused.
    let broker = TestBroker::start_in(broker.stop(), &[]);
    runtime().block_on(async {
        let connection = Connection::connect(
            &broker.bootstrap(),
            "test",
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(produce(&connection, topic, batch_a).await, (0, 0));
        let (pid, _) = new_producer_id(&connection).await;
        assert!(pid > first_id + 1, "{pid} was given before the restart");
    });
    assert_eq!(values(&broker, topic), ["a", "b", "c", "d"]);
}

#[test]
fn transactional_records_without_a_transactional_id_fail_the_request_as_in_kafka() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        let connection = Connection::connect(
            &broker.bootstrap(),
            "test",
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
        let (id, epoch) = new_producer_id(&connection).await;
        let batch = transactional_batch(id, epoch, 0, &["a"]).freeze();
        // (Auto-created by the produce: the refusal comes before the partition is looked at.)
        let (code, _) = produce(&connection, "txn-without-id", batch).await;
        assert_eq!(
            code,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
            "Kafka refuses transactional records from a request with no transactional id"
        );
    });
}
