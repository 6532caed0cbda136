//! Embedded quickstart: a Sluice node inside this program, a topic, a producer, a consumer
//! group reading the records as a stream, and the group's lag. No server to install, no TCP.
//!
//! Run it with `cargo run -p sluice-examples --bin embedded-quickstart [DATA_DIR]`; without a
//! directory it uses a temporary one. Swap `Sluice::embedded(..).start()?.client()` for
//! `Client::connect("127.0.0.1:9092", ..)` and the same code runs against `sluice start` or any
//! Kafka cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sluice_log::client::group_consumer::{AutoOffsetReset, GroupConfig, GroupConsumer};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::NewTopic;
use sluice_log::Sluice;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temporary = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| temporary.path().to_path_buf(), Into::into);

    // The node: Kafka's broker settings by their names.
    let node = Sluice::embedded(&dir)
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let admin = node.client().await?;
    let topic = NewTopic {
        name: "orders".into(),
        partitions: 3,
        replication_factor: 1,
        configs: BTreeMap::from([("retention.ms".to_string(), "86400000".to_string())]),
    };
    for (name, result) in admin.create_topics(&[topic], false).await? {
        match result {
            Ok(()) => println!("created topic {name}"),
            // Running again on the same directory: the topic is there already.
            Err(err) => println!("topic {name}: {err}"),
        }
    }

    // A producer: keyed records go to murmur2(key) % partitions, as with Java's client.
    let producer = Producer::new(node.client().await?, ProducerConfig::default());
    let mut deliveries = Vec::new();
    for i in 0..100 {
        let record = ProducerRecord {
            topic: "orders".into(),
            key: Some(Bytes::from(format!("customer-{}", i % 7))),
            value: Some(Bytes::from(format!("order {i}"))),
            ..Default::default()
        };
        deliveries.push(producer.send(record).await?);
    }
    producer.flush().await;
    for delivery in deliveries {
        delivery.await?;
    }
    producer.close().await;
    println!("produced 100 records");

    // A group member reading the records as a stream; commits happen by hand here.
    let mut config = GroupConfig::new("order-processors");
    config.auto_offset_reset = AutoOffsetReset::Earliest;
    config.enable_auto_commit = false;
    config.fetch.max_wait = Duration::from_millis(100);
    let mut member =
        GroupConsumer::subscribe(node.client().await?, vec!["orders".into()], config).await?;
    let mut consumed = 0;
    {
        let mut records = member.records().take(100);
        while let Some(record) = records.next().await {
            let record = record?;
            if consumed < 3 {
                println!(
                    "partition {} offset {}: {}",
                    record.partition,
                    record.offset,
                    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
                );
            }
            consumed += 1;
        }
    }
    member.commit().await?;
    println!("consumed {consumed} records");

    let lag: i64 = admin
        .group_lag("order-processors")
        .await?
        .iter()
        .filter_map(|partition| partition.lag)
        .sum();
    println!("group order-processors lag {lag}");
    member.close().await?;
    node.shutdown()?;
    Ok(())
}
