//! Fraud-style session windows in Sluice Streams: card payments are cut into sessions of
//! activity per card (a new session after five minutes without a payment), each session's
//! payments are counted and summed, and a session that closes with three payments or more, or
//! over $1,000, raises an alert. The alerts are final: a session's result goes out once, when
//! stream time has passed its end by the gap (`suppress(until_window_closes)`), not on every
//! payment.
//!
//! Run it with `cargo run -p sluice-examples --bin fraud-sessions`. It runs on a Sluice node
//! inside this program and prints the alerts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::NewTopic;
use sluice_log::{Sluice, TopicPartition};
use sluice_streams::serdes::{JsonSerde, Serde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, SessionWindowedSerde, SessionWindows,
    StreamsBuilder, StreamsConfig, Suppressed,
};

/// A card payment, as JSON on the topic `card-payments` (keyed by card).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Payment {
    merchant: String,
    amount_cents: i64,
    /// When, in ms since the epoch.
    at: i64,
}

/// A session's payments so far.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Session {
    payments: i64,
    total_cents: i64,
}

const MINUTE: i64 = 60_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let node = Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let client = node.client().await?;
    for name in ["card-payments", "fraud-alerts"] {
        let topic = NewTopic {
            name: name.into(),
            partitions: 1,
            replication_factor: 1,
            configs: Default::default(),
        };
        for (_, created) in client.create_topics(&[topic], false).await? {
            created?;
        }
    }

    // The topology.
    let builder = StreamsBuilder::new();
    builder
        .stream(
            "card-payments",
            Consumed::with(StringSerde, JsonSerde::<Payment>::new()).with_timestamp_extractor(
                |raw| {
                    serde_json::from_slice::<Payment>(raw.value.as_deref().unwrap_or_default())
                        .map_or(raw.timestamp, |payment| payment.at)
                },
            ),
        )
        .group_by_key(Grouped::with_key(StringSerde))
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(
            Duration::from_millis(5 * MINUTE as u64),
        ))
        .aggregate(
            Session::default,
            |_, payment: Payment, session| Session {
                payments: session.payments + 1,
                total_cents: session.total_cents + payment.amount_cents,
            },
            |_, a, b| Session {
                payments: a.payments + b.payments,
                total_cents: a.total_cents + b.total_cents,
            },
            Materialized::with(JsonSerde::<Session>::new()).named("card-sessions"),
        )
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .filter(|_, session| session.payments >= 3 || session.total_cents > 100_000)
        .map_values(|session| {
            let plural = if session.payments == 1 { "" } else { "s" };
            format!(
                "{} payment{plural}, ${}.{:02}",
                session.payments,
                session.total_cents / 100,
                session.total_cents % 100
            )
        })
        .to(
            "fraud-alerts",
            Produced::with(SessionWindowedSerde::new(StringSerde), StringSerde),
        );
    let config = StreamsConfig::from_props([
        ("application.id", "fraud-sessions"),
        ("commit.interval.ms", "100"),
        ("consumer.heartbeat.interval.ms", "100"),
    ])?;
    let app = KafkaStreams::start(Arc::new(builder.build()?), config, client.clone()).await?;

    // Payments of an afternoon that began three hours ago, by minutes from its start. (Past
    // times: a topic takes timestamps at most `message.timestamp.after.max.ms`, an hour by
    // default, ahead of its clock, and the alerts carry the payments' times.)
    let start = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 180 * MINUTE)
        / MINUTE
        * MINUTE;
    let payments = [
        // Four quick payments: one session, an alert.
        ("4111", "coffee", 450, 0),
        ("5500", "books", 2_500, 1),
        ("4111", "electronics", 39_900, 1),
        ("4111", "electronics", 42_000, 2),
        ("4111", "gift cards", 25_000, 3),
        // Ten minutes apart: two sessions of one payment each.
        ("5500", "lunch", 1_800, 11),
        // One large payment: an alert.
        ("3782", "jewellery", 250_000, 20),
        // Much later, a session of its own, not an alert.
        ("4111", "groceries", 6_000, 60),
        // Stream time goes on (this session stays open): the ones before it close.
        ("6011", "parking", 300, 120),
    ];
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    let json = JsonSerde::<Payment>::new();
    for (card, merchant, amount_cents, minute) in payments {
        let payment = Payment {
            merchant: merchant.into(),
            amount_cents,
            at: start + minute * MINUTE,
        };
        let record = ProducerRecord {
            topic: "card-payments".into(),
            key: Some(Bytes::copy_from_slice(card.as_bytes())),
            value: json.serialize("card-payments", &payment)?,
            ..Default::default()
        };
        producer.send(record).await?.await?;
    }
    producer.close().await;
    println!("produced {} payments of 4 cards", payments.len());

    // Read the alerts: one per closed suspicious session.
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(
            TopicPartition::new("fraud-alerts", 0),
            StartOffset::Beginning,
        )],
        ConsumerConfig::default(),
    )
    .await?;
    let keys = SessionWindowedSerde::new(StringSerde);
    let mut alerts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alerts.len() < 2 && Instant::now() < deadline {
        for record in consumer.poll().await? {
            let session = keys.deserialize("fraud-alerts", record.key.as_ref())?;
            let text = StringSerde.deserialize("fraud-alerts", record.value.as_ref())?;
            let minutes = (
                (session.window.start - start) / MINUTE,
                (session.window.end - start) / MINUTE,
            );
            alerts.push(format!(
                "alert: card {} from minute {} to {}: {text}",
                session.key, minutes.0, minutes.1
            ));
        }
    }
    alerts.sort();
    for alert in &alerts {
        println!("{alert}");
    }
    app.close().await?;
    node.shutdown()?;
    Ok(())
}
