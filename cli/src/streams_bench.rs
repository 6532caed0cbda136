//! `sluice bench streams`: Nexmark queries written in Sluice Streams' DSL, end to end from topic
//! to topic on an embedded node with one stream thread, against the same computation as a
//! plain Rust loop over the same in-memory events (the limit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::TopicPartition;
use sluice_streams::nexmark::{
    self, AuctionCount, AuctionCountSerde, AuctionSerde, BidSerde, CategorizedBidSerde, Event,
    Generator,
};
use sluice_streams::serdes::{I64Serde, Serde};
use sluice_streams::{KafkaStreams, StreamsBuilder, StreamsConfig};

use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct StreamsBenchArgs {
    /// The Nexmark query: q1 (currency conversion, a map over every bid), q5 (hot items: the
    /// auction with the most bids in each 10 s window, a new window every 2 s, by bid time) or
    /// join (every bid with its auction's category, from the table of the auctions).
    #[arg(long, default_value = "q1")]
    query: String,
    /// Number of bids (the queries' input events) in Nexmark's event stream; the join also
    /// reads the auctions among them first.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// `commit.interval.ms` of the application: how often results (and the record caches'
    /// flushes) go out.
    #[arg(long, default_value_t = 100)]
    commit_interval_ms: u64,
    /// `processing.guarantee`: at_least_once, or exactly_once_v2 (a transaction per commit,
    /// producer acks=all, outputs checked `read_committed`).
    #[arg(long, default_value = "at_least_once")]
    processing_guarantee: String,
    /// Keep q5's stores on disk too (`Materialized::persistent`, under a temporary
    /// `state.dir`).
    #[arg(long)]
    persistent: bool,
    /// Run against this Kafka cluster (Sluice or Apache Kafka) instead of an embedded node:
    /// topics and the application id get a unique suffix. bench/peers.sh uses it to time
    /// Sluice Streams and Kafka Streams on the same broker.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// Only write the input (the bids, and the auctions for the join) and print where, as JSON:
    /// the input of another Streams implementation (bench/NexmarkKafkaStreams.java).
    #[arg(long, requires = "bootstrap_server")]
    produce_only: bool,
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
    anyhow::ensure!(
        matches!(
            args.processing_guarantee.as_str(),
            "at_least_once" | "exactly_once_v2"
        ),
        "--processing-guarantee {}: expected at_least_once or exactly_once_v2",
        args.processing_guarantee
    );
    let exactly_once = args.processing_guarantee == "exactly_once_v2";
    let join = args.query == "join";
    let q5 = args.query == "q5";
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let n = args.events as usize;
    // Nexmark's events until there are `n` bids: the bids are the queries' input, the
    // auctions among them the join's table.
    let mut bid_events = Vec::with_capacity(n);
    let mut auction_events = Vec::new();
    for event in Generator::new(42, 1_700_000_000_000) {
        if bid_events.len() == n {
            break;
        }
        match event {
            Event::Bid(bid) => bid_events.push(bid),
            Event::Auction(auction) if join => auction_events.push(auction),
            _ => {}
        }
    }
    let bids: Vec<(Bytes, Bytes)> = bid_events
        .iter()
        .map(|bid| {
            let key = Bytes::copy_from_slice(&bid.auction.to_be_bytes());
            let value = BidSerde
                .serialize("bids", bid)
                .map_err(|e| anyhow::anyhow!(e))?
                .context("a bid serialises to bytes")?;
            anyhow::Ok((key, value))
        })
        .collect::<anyhow::Result<_>>()?;
    let auctions: Vec<(Bytes, Bytes)> = auction_events
        .iter()
        .map(|auction| {
            let key = Bytes::copy_from_slice(&auction.id.to_be_bytes());
            let value = AuctionSerde
                .serialize("auctions", auction)
                .map_err(|e| anyhow::anyhow!(e))?
                .context("an auction serialises to bytes")?;
            anyhow::Ok((key, value))
        })
        .collect::<anyhow::Result<_>>()?;

    // The limit: the same computation over the same bytes, with no topics in between (for the
    // join, the auctions in a hash map first, as the table's store holds them; for q5, counts
    // per auction and window, and each window's hottest auction, in hash maps).
    let started = Instant::now();
    let mut out_bytes = 0usize;
    let mut outputs = 0i64;
    let mut table = std::collections::HashMap::new();
    let mut window_counts: std::collections::HashMap<(i64, i64), i64> =
        std::collections::HashMap::new();
    let mut hottest: std::collections::HashMap<i64, AuctionCount> =
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
                let counted = AuctionCount {
                    auction: bid.auction,
                    count: *count,
                };
                hottest
                    .entry(window.start)
                    .and_modify(|hot| *hot = nexmark::hotter(*hot, counted))
                    .or_insert(counted);
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
        outputs += 1;
        out_bytes += bytes
            .map_err(|e| anyhow::anyhow!(e))?
            .map_or(0, |b| b.len());
    }
    for (start, hot) in &hottest {
        let bytes = AuctionCountSerde
            .serialize("q5", hot)
            .map_err(|e| anyhow::anyhow!(e))?;
        out_bytes += std::hint::black_box(start.to_be_bytes()).len() + bytes.map_or(0, |b| b.len());
    }
    let loop_elapsed = started.elapsed();
    anyhow::ensure!(out_bytes > 0, "the loop produced nothing");

    let dir = tempfile::tempdir()?;
    let node = match &args.bootstrap_server {
        Some(_) => None,
        None => Some(
            sluice_log::Sluice::embedded(dir.path())
                .config("group.initial.rebalance.delay.ms", "0")
                .start()?,
        ),
    };
    // On a shared cluster every run gets its own topics and application.
    let suffix = match &args.bootstrap_server {
        Some(_) => format!(
            "-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() % 1_000_000_000)
        ),
        None => String::new(),
    };
    let (bids_topic, auctions_topic, out_topic) = (
        format!("bids{suffix}"),
        format!("auctions{suffix}"),
        format!("out{suffix}"),
    );
    let elapsed = runtime()?.block_on(async {
        let client = match (&node, &args.bootstrap_server) {
            (Some(node), _) => node.client().await?,
            (None, Some(bootstrap)) => {
                sluice_log::client::Client::connect(bootstrap, Default::default()).await?
            }
            (None, None) => anyhow::bail!("no broker"),
        };
        for name in [&bids_topic, &auctions_topic, &out_topic] {
            crate::perf::create_topic(&client, name).await?;
        }
        // The input, produced before the clock starts.
        let config = ProducerConfig {
            acks: 1,
            batch_size: 65_536,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client.clone(), config);
        let mut last = None;
        for (name, records) in [(&auctions_topic, &auctions), (&bids_topic, &bids)] {
            let topic: Arc<str> = name.as_str().into();
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
        if args.produce_only {
            return Ok(None);
        }

        let builder = StreamsBuilder::new();
        if join {
            nexmark::join(&builder, &bids_topic, &auctions_topic, &out_topic);
        } else if q5 {
            nexmark::q5(&builder, &bids_topic, &out_topic, args.persistent);
        } else {
            nexmark::q1(&builder, &bids_topic, &out_topic);
        }
        let topology = Arc::new(builder.build()?);
        let application_id = format!("nexmark-{}{suffix}", args.query);
        let commit_interval = args.commit_interval_ms.to_string();
        let state = tempfile::tempdir()?;
        let state_dir = state.path().to_string_lossy().into_owned();
        let mut props = vec![
            ("application.id", application_id.as_str()),
            ("num.stream.threads", "1"),
            ("commit.interval.ms", commit_interval.as_str()),
            ("state.dir", state_dir.as_str()),
            ("processing.guarantee", args.processing_guarantee.as_str()),
            ("producer.batch.size", "65536"),
            ("producer.linger.ms", "5"),
        ];
        // Under exactly-once the producer is transactional, so acks=all (Kafka Streams' too).
        if !exactly_once {
            props.push(("producer.acks", "1"));
        }
        let config = StreamsConfig::from_props(props)?;
        let app = KafkaStreams::start(topology, config, client.clone()).await?;
        // From the moment the application starts until it has committed every bid and, for
        // q5, every record of its repartition topic: a commit follows the flush of the record
        // caches and of the producer, so every output is in the topic by then.
        let started = Instant::now();
        let deadline = started + Duration::from_secs(300);
        let repartition = format!("{application_id}-bids-per-window-repartition");
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the bids were not all processed within 300 s ({} records)",
                app.metrics().records_processed()
            );
            anyhow::ensure!(!app.has_failed_thread(), "the stream thread stopped");
            let committed = client.committed_offsets(&application_id).await?;
            let position = |topic: &str| committed.get(&TopicPartition::new(topic, 0)).copied();
            if position(&bids_topic) >= Some(n as i64) {
                if !q5 {
                    break;
                }
                let end = client.list_offset(&repartition, 0, -1).await?;
                if position(&repartition) >= Some(end) {
                    break;
                }
                // Under exactly-once the topic ends with the last transaction's marker, which
                // the committed position may stop short of: done once that transaction is
                // complete (no transaction open: the last stable offset is the end) and
                // every record before its marker is committed.
                if exactly_once
                    && position(&repartition) >= Some(end - 1)
                    && client.list_offset_isolated(&repartition, 0, -1, 1).await? == end
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elapsed = started.elapsed();
        app.close().await?;
        let end = client.list_offset(&out_topic, 0, -1).await?;
        // Under exactly-once the output holds transaction markers too: records are counted
        // by reading them (`read_committed`), not from the end offset.
        let mut written = if exactly_once { 0 } else { end };
        if q5 || exactly_once {
            // Each window's last update names the loop's hottest auction.
            let mut consumer = Consumer::assign(
                client.clone(),
                vec![(TopicPartition::new(&out_topic, 0), StartOffset::Beginning)],
                ConsumerConfig {
                    isolation_level: i8::from(exactly_once),
                    ..ConsumerConfig::default()
                },
            )
            .await?;
            let mut last: std::collections::HashMap<i64, AuctionCount> =
                std::collections::HashMap::new();
            while consumer.position(&out_topic, 0)? < end {
                for record in consumer.poll().await? {
                    if exactly_once {
                        written += 1;
                    }
                    if !q5 {
                        continue;
                    }
                    let start = I64Serde
                        .deserialize("out", record.key.as_ref())
                        .map_err(|e| anyhow::anyhow!(e))?;
                    let hot = AuctionCountSerde
                        .deserialize("out", record.value.as_ref())
                        .map_err(|e| anyhow::anyhow!(e))?;
                    last.insert(start, hot);
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "reading the output took too long"
                );
            }
            anyhow::ensure!(
                !q5 || last == hottest,
                "the hot items differ from the loop's ({} windows against {})",
                last.len(),
                hottest.len()
            );
        }
        if !q5 {
            anyhow::ensure!(
                written == outputs,
                "{written} outputs, where the loop made {outputs}"
            );
        }
        anyhow::Ok(Some(elapsed))
    })?;
    if let Some(node) = node {
        node.shutdown()?;
    }
    let Some(elapsed) = elapsed else {
        // --produce-only: where the input is, for another implementation to read.
        println!(
            "{}",
            serde_json::json!({"bids_topic": bids_topic, "auctions_topic": auctions_topic, "events": args.events})
        );
        return Ok(());
    };
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
