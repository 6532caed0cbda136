//! Windowed page views per region with a user-profile table join, in Sluice Streams: page views
//! keyed by user are joined with the users' profiles (a table read from a compacted topic), re-keyed
//! by region, and counted per region in one-minute tumbling windows (by the views' own time).
//!
//! Run it with `cargo run -p sluice-examples --bin page-views`. It runs on a Sluice node inside
//! this program and prints each region's count per window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::NewTopic;
use sluice_log::{Sluice, TopicPartition};
use sluice_streams::serdes::{I64Serde, JsonSerde, Serde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, StreamsBuilder, StreamsConfig,
    TimeWindows, WindowedSerde,
};

/// A page view, as JSON on the topic `page-views` (keyed by user).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PageView {
    page: String,
    /// When, in ms since the epoch.
    at: i64,
}

const MINUTE: i64 = 60_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let node = Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let client = node.client().await?;
    for (name, partitions, compacted) in [
        ("user-profiles", 2, true),
        ("page-views", 2, false),
        ("views-per-region", 1, false),
    ] {
        let mut configs = BTreeMap::new();
        if compacted {
            configs.insert("cleanup.policy".to_string(), "compact".to_string());
        }
        let topic = NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs,
        };
        for (_, created) in client.create_topics(&[topic], false).await? {
            created?;
        }
    }

    // Profiles first (user → region), then views spread over two minutes.
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    let send = |topic: &'static str, key: &str, value: Bytes| ProducerRecord {
        topic: topic.into(),
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(value),
        ..Default::default()
    };
    for (user, region) in [("ann", "eu"), ("bob", "us"), ("cid", "eu"), ("dan", "apac")] {
        producer
            .send(send("user-profiles", user, Bytes::from(region)))
            .await?
            .await?;
    }
    let views = [
        ("ann", 0),
        ("bob", 5_000),
        ("cid", 20_000),
        ("ann", 50_000),
        ("dan", 61_000),
        ("ann", 70_000),
        ("bob", 90_000),
        ("bob", 119_000),
    ];
    // The views happen after the profiles were written (the join reads the table as of each
    // view's time), in the minutes starting now.
    let json = JsonSerde::<PageView>::new();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        / MINUTE
        * MINUTE
        + MINUTE;
    for (user, offset) in views {
        let view = PageView {
            page: "/home".into(),
            at: start + offset,
        };
        let value = json.serialize("page-views", &view)?.unwrap_or_default();
        producer
            .send(send("page-views", user, value))
            .await?
            .await?;
    }
    producer.close().await;
    println!("produced 4 profiles and {} page views", views.len());

    // The topology.
    let builder = StreamsBuilder::new();
    let profiles = builder.table(
        "user-profiles",
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde).named("profiles"),
    );
    builder
        .stream(
            "page-views",
            Consumed::with(StringSerde, JsonSerde::<PageView>::new()).with_timestamp_extractor(
                |raw| {
                    serde_json::from_slice::<PageView>(raw.value.as_deref().unwrap_or_default())
                        .map_or(raw.timestamp, |view| view.at)
                },
            ),
        )
        .join(&profiles, |_, _view, region| region)
        .group_by(
            |_, region| region.clone(),
            Grouped::with(StringSerde, StringSerde).named("by-region"),
        )
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::counts().named("views-per-region-store"))
        .to_stream()
        .to(
            "views-per-region",
            Produced::with(
                WindowedSerde::new(StringSerde, Duration::from_secs(60)),
                I64Serde,
            ),
        );
    let config = StreamsConfig::from_props([
        ("application.id", "page-views"),
        ("commit.interval.ms", "100"),
        ("consumer.heartbeat.interval.ms", "100"),
    ])?;
    let app = KafkaStreams::start(Arc::new(builder.build()?), config, client.clone()).await?;

    // Read the counts: the last update of each region and window is its count.
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(
            TopicPartition::new("views-per-region", 0),
            StartOffset::Beginning,
        )],
        ConsumerConfig::default(),
    )
    .await?;
    let keys = WindowedSerde::new(StringSerde, Duration::from_secs(60));
    let mut counts: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while counts.values().sum::<i64>() < views.len() as i64 && Instant::now() < deadline {
        for record in consumer.poll().await? {
            let key = keys.deserialize("views-per-region", record.key.as_ref())?;
            let count = I64Serde.deserialize("views-per-region", record.value.as_ref())?;
            let minute = (key.window.start - start) / MINUTE;
            counts.insert((minute, key.key), count);
        }
    }
    for ((minute, region), count) in &counts {
        println!("minute {minute} {region}: {count}");
    }
    app.close().await?;
    node.shutdown()?;
    Ok(())
}
