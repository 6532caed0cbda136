//! Word count with Sluice Streams: lines in, a running count per word out, on a Sluice node
//! inside this program. Two instances of the application share the work through their consumer
//! group, and the counts live in state stores backed by changelog topics.
//!
//! Run it with `cargo run -p sluice-examples --bin word-count`. Swap the embedded node's client
//! for `Client::connect("127.0.0.1:9092", ..)` and the same topology runs against `sluice start`
//! or any Kafka cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::NewTopic;
use sluice_log::{Sluice, TopicPartition};
use sluice_streams::serdes::{I64Serde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, StreamsBuilder, StreamsConfig,
};

const LINES: [&str; 4] = [
    "the quick brown fox",
    "jumps over the lazy dog",
    "the dog sleeps",
    "a fox a dog",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let node = Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let client = node.client().await?;
    for (name, partitions) in [("lines", 2), ("word-counts", 1)] {
        let topic = NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        for (_, created) in client.create_topics(&[topic], false).await? {
            created?;
        }
    }

    // The topology: split lines into words, count each word, write every new count.
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, word| word.clone(),
            Grouped::with(StringSerde, StringSerde).named("words"),
        )
        .count(Materialized::counts().named("counts"))
        .to_stream()
        .to("word-counts", Produced::with(StringSerde, I64Serde));
    let topology = Arc::new(builder.build()?);

    // Two instances of the application: they split the partitions between them.
    let config = StreamsConfig::from_props([
        ("application.id", "word-count"),
        ("commit.interval.ms", "100"),
        ("consumer.heartbeat.interval.ms", "100"),
    ])?;
    let first = KafkaStreams::start(topology.clone(), config.clone(), client.clone()).await?;
    let second = KafkaStreams::start(topology, config, client.clone()).await?;

    let producer = Producer::new(client.clone(), ProducerConfig::default());
    for (idx, line) in LINES.iter().enumerate() {
        let record = ProducerRecord {
            topic: "lines".into(),
            key: Some(Bytes::from(format!("line-{idx}"))),
            value: Some(Bytes::from_static(line.as_bytes())),
            ..Default::default()
        };
        producer.send(record).await?.await?;
    }
    producer.close().await;
    let n_words: usize = LINES.iter().map(|l| l.split_whitespace().count()).sum();
    println!("produced {} lines, {n_words} words", LINES.len());

    // Read the counts back: the last count of each word is its total (the record caches
    // send one update per word and commit, not one per word seen).
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(
            TopicPartition::new("word-counts", 0),
            StartOffset::Beginning,
        )],
        ConsumerConfig::default(),
    )
    .await?;
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while totals.values().sum::<i64>() < n_words as i64 && Instant::now() < deadline {
        for record in consumer.poll().await? {
            let word = String::from_utf8(record.key.unwrap_or_default().to_vec())?;
            let count: [u8; 8] = record.value.unwrap_or_default().as_ref().try_into()?;
            totals.insert(word, i64::from_be_bytes(count));
        }
    }
    for (word, count) in &totals {
        println!("{word}: {count}");
    }
    first.close().await?;
    second.close().await?;
    node.shutdown()?;
    Ok(())
}
