//! `sluice bench streams`: Nexmark queries written in Sluice Streams' DSL, end to end from topic
//! to topic on an embedded node with one stream thread, against the same computation as a
//! plain Rust loop over the same in-memory events (the limit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::NewTopic;
use sluice_streams::nexmark::{self, AuctionSerde, BidGenerator, BidSerde, CategorizedBidSerde};
use sluice_streams::serdes::Serde;
use sluice_streams::{KafkaStreams, StreamsBuilder, StreamsConfig};

use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct StreamsBenchArgs {
    /// The Nexmark query: q1 (currency conversion, a map over every bid), q5 (bids per auction
    /// over 10 s windows every 2 s, by bid time: the counts q5's hot items are picked from) or
    /// join (every bid with its auction's category, from a table of 10,000 auctions).
    #[arg(long, default_value = "q1")]
    query: String,
    /// Number of events (bids).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct StreamsReport {
    query: String,
    events: u64,
    events_per_sec: f64,
    loop_events_per_sec: f64,
    /// How many times faster the plain loop is.
    ratio: f64,
}

pub fn streams(args: StreamsBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        matches!(args.query.as_str(), "q1" | "q5" | "join"),
        "--query {}: expected q1, q5 or join",
        args.query
    );
    let join = args.query == "join";
    let q5 = args.query == "q5";
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let n = args.events as usize;
    let bids: Vec<(Bytes, Bytes)> = BidGenerator::new(42, 1_700_000_000_000)
        .take(n)
        .map(|bid| {
            let key = Bytes::copy_from_slice(&bid.auction.to_be_bytes());
            let value = BidSerde
                .serialize("bids", &bid)
                .map_err(|e| anyhow::anyhow!(e))?
                .context("a bid serialises to bytes")?;
            anyhow::Ok((key, value))
        })
        .collect::<anyhow::Result<_>>()?;

    let auctions: Vec<(Bytes, Bytes)> = if join {
        nexmark::auctions(7)
            .map(|auction| {
                let key = Bytes::copy_from_slice(&auction.id.to_be_bytes());
                let value = AuctionSerde
                    .serialize("auctions", &auction)
                    .map_err(|e| anyhow::anyhow!(e))?
                    .context("an auction serialises to bytes")?;
                anyhow::Ok((key, value))
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        Vec::new()
    };

    // The limit: the same computation over the same bytes, with no topics in between (for the
    // join, the auctions in a hash map first, as the table's store holds them).
    let started = Instant::now();
    let mut out_bytes = 0usize;
    let mut table = std::collections::HashMap::new();
    let mut window_counts: std::collections::HashMap<(i64, i64), i64> =
        std::collections::HashMap::new();
    let windows = nexmark::q5_windows();
    for (key, value) in &auctions {
        let auction = AuctionSerde
            .deserialize("auctions", Some(value))
            .map_err(|e| anyhow::anyhow!(e))?;
        table.insert(key.clone(), auction);
    }
    for (key, value) in &bids {
        let bid = BidSerde
            .deserialize("bids", Some(value))
            .map_err(|e| anyhow::anyhow!(e))?;
        if q5 {
            for window in windows.windows_for(bid.date_time) {
                let count = window_counts
                    .entry((bid.auction, window.start))
                    .or_insert(0);
                *count += 1;
                let mut key = Vec::with_capacity(16);
                key.extend_from_slice(&bid.auction.to_be_bytes());
                key.extend_from_slice(&window.start.to_be_bytes());
                out_bytes += key.len() + std::hint::black_box(count.to_be_bytes()).len();
            }
            continue;
        }
        let bytes = if join {
            let Some(auction) = table.get(key) else {
                continue;
            };
            CategorizedBidSerde.serialize("join", &nexmark::categorize(bid, auction.clone()))
        } else {
            BidSerde.serialize("q1", &nexmark::q1_convert(bid))
        };
        out_bytes += bytes
            .map_err(|e| anyhow::anyhow!(e))?
            .map_or(0, |b| b.len());
    }
    let loop_elapsed = started.elapsed();
    anyhow::ensure!(out_bytes > 0, "the loop produced nothing");

    let dir = tempfile::tempdir()?;
    let node = sluice_log::Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let elapsed = runtime()?.block_on(async {
        let client = node.client().await?;
        for name in ["bids", "auctions", "out"] {
            let topic = NewTopic {
                name: name.into(),
                partitions: 1,
                replication_factor: 1,
                configs: Default::default(),
            };
            if let Some((_, Err(err))) = client
                .create_topics(&[topic], false)
                .await?
                .into_iter()
                .next()
            {
                return Err(anyhow::Error::new(err).context(format!("create topic {name}")));
            }
        }
        // The input, produced before the clock starts.
        let config = ProducerConfig {
            acks: 1,
            batch_size: 65_536,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client.clone(), config);
        let mut last = None;
        for (name, records) in [("auctions", &auctions), ("bids", &bids)] {
            let topic: Arc<str> = name.into();
            for (key, value) in records {
                let record = ProducerRecord {
                    topic: topic.clone(),
                    key: Some(key.clone()),
                    value: Some(value.clone()),
                    ..Default::default()
                };
                last = Some(producer.send(record).await?);
            }
        }
        producer.flush().await;
        if let Some(last) = last {
            last.await.context("produce the bids")?;
        }
        producer.close().await;

        let builder = StreamsBuilder::new();
        if join {
            nexmark::join(&builder, "bids", "auctions", "out");
        } else if q5 {
            nexmark::q5(&builder, "bids", "out");
        } else {
            nexmark::q1(&builder, "bids", "out");
        }
        let topology = Arc::new(builder.build()?);
        let application_id = format!("nexmark-{}", args.query);
        let config = StreamsConfig::from_props([
            ("application.id", application_id.as_str()),
            ("num.stream.threads", "1"),
            ("commit.interval.ms", "1000"),
            ("producer.acks", "1"),
            ("producer.batch.size", "65536"),
            ("producer.linger.ms", "5"),
        ])?;
        let app = KafkaStreams::start(topology, config, client.clone()).await?;
        // From the moment the application starts until every event is processed and the
        // application has closed: its last commit flushed the record caches and the producer,
        // so every output is in the topic.
        let started = Instant::now();
        let deadline = started + Duration::from_secs(300);
        let inputs = (n + auctions.len()) as u64;
        while app.metrics().records_processed() < inputs {
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {} of {inputs} records processed within 300 s",
                app.metrics().records_processed()
            );
            anyhow::ensure!(!app.has_failed_thread(), "the stream thread stopped");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        app.close().await?;
        let elapsed = started.elapsed();
        let outputs = client.list_offset("out", 0, -1).await?;
        // q1 and the join write one output per bid (every bid's auction is in the table);
        // q5's record cache writes one per window and auction per commit at most.
        let expected = if q5 { 1 } else { n as i64 };
        anyhow::ensure!(
            outputs >= expected,
            "{outputs} outputs, expected at least {expected}"
        );
        anyhow::Ok(elapsed)
    })?;
    node.shutdown()?;
    let events_per_sec = n as f64 / elapsed.as_secs_f64();
    let loop_events_per_sec = n as f64 / loop_elapsed.as_secs_f64();
    let report = StreamsReport {
        query: args.query.clone(),
        events: args.events,
        events_per_sec,
        loop_events_per_sec,
        ratio: loop_events_per_sec / events_per_sec,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "nexmark {}: {} events, {:.0} events/sec on one stream thread (topic to topic, embedded node); the plain loop {:.0} events/sec: {:.1}x",
            report.query, report.events, report.events_per_sec, report.loop_events_per_sec, report.ratio
        );
    }
    Ok(())
}
