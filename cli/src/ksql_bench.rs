//! `sluice bench ksql`: Nexmark-style queries written in ksqlDB's SQL and run by Sluice's ksql
//! engine (planned by DataFusion, evaluated on Arrow batches inside a Streams application),
//! against the same queries written in the Streams DSL over the same JSON records, in one
//! run on one embedded node, each with one stream thread. The target: ksql at least
//! 0.8× the DSL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;
use sluice_log::TopicPartition;
use sluice_streams::nexmark::{Event, Generator};
use sluice_streams::serdes::{I64Serde, JsonSerde};
use sluice_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, Repartitioned, StreamsBuilder,
    StreamsConfig, WindowedSerde,
};

use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct KsqlBenchArgs {
    /// The query: pull (key look-ups by pull queries over HTTP of a table counting each
    /// auction's bids: latency, against a trivial request on the same connection), q1
    /// (Nexmark's currency conversion: every bid with its price in euros, a projection),
    /// q5-counts (Nexmark q5's first step: each auction's bids counted in
    /// hopping windows of 10 s every 2 s, by bid time; q5's second step, the hottest auction
    /// of each window, is a persistent query of a windowed table, which ksqlDB refuses), join
    /// (every bid with its auction's category: a stream-table join of the bids with the table
    /// of the auctions, keyed alike) or join3 (every bid with its auction's category and its
    /// seller's name and state: an n-way join, the joined bids re-keyed by seller through a
    /// repartition topic to meet the table of the persons).
    #[arg(long, default_value = "q1")]
    query: String,
    /// Number of bids, written once as JSON (ksqlDB's `VALUE_FORMAT='JSON'`) with the auction
    /// as a `KAFKA` BIGINT key and the bid time as the record's timestamp.
    #[arg(long, default_value_t = 500_000)]
    events: u64,
    /// `commit.interval.ms` of both applications.
    #[arg(long, default_value_t = 100)]
    commit_interval_ms: u64,
    /// Run only one side (`ksql` or `dsl`), without the comparison of their outputs: to
    /// profile it alone.
    #[arg(long)]
    only: Option<String>,
    /// Pull query look-ups (`--query pull`).
    #[arg(long, default_value_t = 20_000)]
    lookups: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A bid as the JSON value of the `bids` topic (ksqlDB's upper-case field names).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct JsonBid {
    bidder: i64,
    price: i64,
    channel: String,
    url: String,
    date_time: i64,
}

/// An auction as the JSON value of the `auctions` topic (its id is the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct JsonAuction {
    seller: i64,
    category: i64,
    initial_bid: i64,
    reserve: i64,
    date_time: i64,
    expires: i64,
}

/// The join's result value, as ksql writes it (the auction is the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct JsonCategorizedBid {
    bidder: i64,
    price: i64,
    category: i64,
    date_time: i64,
}

/// A person as the JSON value of the `persons` topic (its id is the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct JsonPerson {
    name: String,
    email: String,
    credit_card: String,
    city: String,
    state: String,
    date_time: i64,
}

/// A bid with its auction, re-keyed by the seller (join3's DSL between its two joins).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BidWithAuction {
    auction: i64,
    price: i64,
    category: i64,
}

/// join3's result value, as ksql writes it (the seller is the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct JsonEnrichedBid {
    auction: i64,
    price: i64,
    category: i64,
    name: String,
    state: String,
}

/// q5-counts' result value, as ksql writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct BidCount {
    bids: i64,
}

#[derive(Debug, Serialize)]
struct KsqlReport {
    query: String,
    events: u64,
    ksql_events_per_sec: Option<f64>,
    dsl_events_per_sec: Option<f64>,
    /// ksql's rate over the DSL's (the target: at least 0.8).
    ratio: Option<f64>,
}

const SOURCE: &str = "CREATE STREAM bids (auction BIGINT KEY, bidder BIGINT, price BIGINT, \
    channel STRING, url STRING, date_time BIGINT) WITH (kafka_topic='bids', value_format='JSON');";

pub fn ksql(args: KsqlBenchArgs) -> anyhow::Result<()> {
    let (q5, join, join3) = match args.query.as_str() {
        "q1" => (false, false, false),
        "q5-counts" => (true, false, false),
        "join" => (false, true, false),
        "join3" => (false, true, true),
        "pull" => return pull(args),
        other => anyhow::bail!("--query {other}: expected q1, q5-counts, join, join3 or pull"),
    };
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let (run_ksql, run_dsl) = match args.only.as_deref() {
        None => (true, true),
        Some("ksql") => (true, false),
        Some("dsl") => (false, true),
        Some(other) => anyhow::bail!("--only {other}: expected ksql or dsl"),
    };
    let n = args.events as usize;
    let (bids, auctions, persons) = events(n, join)?;

    let dir = tempfile::tempdir()?;
    let node = sluice_log::Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let (ksql_elapsed, dsl_elapsed) = runtime()?.block_on(async {
        let client = node.client().await?;
        for name in ["bids", "auctions", "persons", "ksql_out", "dsl_out"] {
            crate::perf::create_topic(&client, name).await?;
        }
        produce_bids(&client, "persons", &persons).await?;
        produce_bids(&client, "auctions", &auctions).await?;
        produce_bids(&client, "bids", &bids).await?;
        let deadline = Instant::now() + Duration::from_secs(600);

        let mut ksql_elapsed = Duration::ZERO;
        let mut dsl_elapsed = Duration::ZERO;
        if run_ksql {
        // ksql: the statements through the engine, as `POST /ksql` runs them.
        let engine = sluice_ksql::engine::Engine::start(client.clone(), "bench_").await?;
        let query = if join3 {
            "CREATE TABLE auctions (id BIGINT PRIMARY KEY, seller BIGINT, category BIGINT, \
             initial_bid BIGINT, reserve BIGINT, date_time BIGINT, expires BIGINT) \
             WITH (kafka_topic='auctions', value_format='JSON'); \
             CREATE TABLE persons (id BIGINT PRIMARY KEY, name STRING, email STRING, \
             credit_card STRING, city STRING, state STRING, date_time BIGINT) \
             WITH (kafka_topic='persons', value_format='JSON'); \
             CREATE STREAM enriched WITH (kafka_topic='ksql_out') AS SELECT p.id AS seller, \
             b.auction AS auction, b.price AS price, a.category AS category, p.name AS name, \
             p.state AS state FROM bids b JOIN auctions a ON b.auction = a.id \
             JOIN persons p ON a.seller = p.id;"
        } else if join {
            "CREATE TABLE auctions (id BIGINT PRIMARY KEY, seller BIGINT, category BIGINT, \
             initial_bid BIGINT, reserve BIGINT, date_time BIGINT, expires BIGINT) \
             WITH (kafka_topic='auctions', value_format='JSON'); \
             CREATE STREAM categorized WITH (kafka_topic='ksql_out') AS SELECT b.auction, \
             b.bidder, b.price, a.category, b.date_time AS date_time \
             FROM bids b JOIN auctions a ON b.auction = a.id;"
        } else if q5 {
            "CREATE TABLE counts WITH (kafka_topic='ksql_out') AS SELECT auction, COUNT(*) AS bids \
             FROM bids WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 0 SECONDS) \
             GROUP BY auction;"
        } else {
            "CREATE STREAM euros WITH (kafka_topic='ksql_out') AS SELECT auction, bidder, \
             price * 908 / 1000 AS price, channel, url, date_time FROM bids EMIT CHANGES;"
        };
        let mut properties = serde_json::Map::new();
        properties.insert("auto.offset.reset".into(), json!("earliest"));
        properties.insert("commit.interval.ms".into(), json!(args.commit_interval_ms));
        let started = Instant::now();
        let entities = engine
            .execute(&format!("{SOURCE} {query}"), &properties)
            .await
            .map_err(|failure| anyhow::anyhow!("{}", failure.body))?;
        let query_id = entities
            .last()
            .and_then(|e| e["commandStatus"]["queryId"].as_str())
            .context("the statement started no query")?
            .to_string();
        wait_committed(&client, &format!("_confluent-ksql-bench_query_{query_id}"), n, deadline)
            .await?;
        wait_repartitions_committed(&client, &format!("_confluent-ksql-bench_query_{query_id}"), deadline)
            .await?;
        ksql_elapsed = started.elapsed();
        engine.shutdown().await;
        }
        if run_dsl {

        // The DSL: the same query by hand, JSON in and out through serde.
        let builder = StreamsBuilder::new();
        let stream = builder.stream("bids", Consumed::with(I64Serde, JsonSerde::<JsonBid>::new()));
        if join3 {
            let auctions = builder.table(
                "auctions",
                Consumed::with(I64Serde, JsonSerde::<JsonAuction>::new()),
                Materialized::with(JsonSerde::<JsonAuction>::new()).named("auctions"),
            );
            let persons = builder.table(
                "persons",
                Consumed::with(I64Serde, JsonSerde::<JsonPerson>::new()),
                Materialized::with(JsonSerde::<JsonPerson>::new()).named("persons"),
            );
            stream
                .join(&auctions, |auction: &i64, bid: JsonBid, found: JsonAuction| {
                    (found.seller, BidWithAuction {
                        auction: *auction,
                        price: bid.price,
                        category: found.category,
                    })
                })
                .map(|_, (seller, bid)| (seller, bid))
                .repartition(
                    Repartitioned::with(I64Serde, JsonSerde::<BidWithAuction>::new())
                        .named("by-seller"),
                )
                .join(&persons, |_, bid: BidWithAuction, person: JsonPerson| {
                    JsonEnrichedBid {
                        auction: bid.auction,
                        price: bid.price,
                        category: bid.category,
                        name: person.name,
                        state: person.state,
                    }
                })
                .to(
                    "dsl_out",
                    Produced::with(I64Serde, JsonSerde::<JsonEnrichedBid>::new()),
                );
        } else if join {
            let auctions = builder.table(
                "auctions",
                Consumed::with(I64Serde, JsonSerde::<JsonAuction>::new()),
                Materialized::with(JsonSerde::<JsonAuction>::new()).named("auctions"),
            );
            stream
                .join(&auctions, |_, bid: JsonBid, auction: JsonAuction| {
                    JsonCategorizedBid {
                        bidder: bid.bidder,
                        price: bid.price,
                        category: auction.category,
                        date_time: bid.date_time,
                    }
                })
                .to(
                    "dsl_out",
                    Produced::with(I64Serde, JsonSerde::<JsonCategorizedBid>::new()),
                );
        } else if q5 {
            stream
                .group_by_key(Grouped::with_key(I64Serde))
                .windowed_by(sluice_streams::nexmark::q5_windows())
                .count(Materialized::counts().named("counts"))
                .to_stream()
                .map_values(|bids| BidCount { bids })
                .to(
                    "dsl_out",
                    Produced::with(
                        WindowedSerde::new(I64Serde, Duration::from_secs(10)),
                        JsonSerde::<BidCount>::new(),
                    ),
                );
        } else {
            stream
                .map_values(|mut bid: JsonBid| {
                    bid.price = bid.price * 908 / 1000;
                    bid
                })
                .to("dsl_out", Produced::with(I64Serde, JsonSerde::<JsonBid>::new()));
        }
        let commit_interval = args.commit_interval_ms.to_string();
        let state = tempfile::tempdir()?;
        let state_dir = state.path().to_string_lossy().into_owned();
        let config = StreamsConfig::from_props([
            ("application.id", "bench-dsl"),
            ("num.stream.threads", "1"),
            ("commit.interval.ms", commit_interval.as_str()),
            ("state.dir", state_dir.as_str()),
        ])?;
        let started = Instant::now();
        let app = KafkaStreams::start(Arc::new(builder.build()?), config, client.clone()).await?;
        wait_committed(&client, "bench-dsl", n, deadline).await?;
        wait_repartitions_committed(&client, "bench-dsl", deadline).await?;
        dsl_elapsed = started.elapsed();
        app.close().await?;
        }
        if !(run_ksql && run_dsl) {
            return anyhow::Ok((ksql_elapsed, dsl_elapsed));
        }

        // Both wrote the same results: every converted bid, or the same final count of
        // every auction and window.
        let ksql_out = read_all(&client, "ksql_out", deadline).await?;
        let dsl_out = read_all(&client, "dsl_out", deadline).await?;
        if q5 {
            let last = |records: Vec<(Option<Bytes>, Json)>| {
                records.into_iter().collect::<HashMap<_, _>>()
            };
            let (ksql_last, dsl_last) = (last(ksql_out), last(dsl_out));
            anyhow::ensure!(
                ksql_last == dsl_last,
                "ksql's final counts differ from the DSL's ({} windows against {})",
                ksql_last.len(),
                dsl_last.len()
            );
        } else if join3 {
            // The re-keyed bids meet the persons' table as it is when they come back from
            // the repartition topic, in both: the same rows, maybe not in the same order.
            let sorted = |mut records: Vec<(Option<Bytes>, Json)>| {
                records.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
                records
            };
            let (ksql_out, dsl_out) = (sorted(ksql_out), sorted(dsl_out));
            anyhow::ensure!(
                ksql_out == dsl_out,
                "ksql's enriched bids differ from the DSL's ({} against {})",
                ksql_out.len(),
                dsl_out.len()
            );
        } else if join {
            // Bids whose auction is not in the table yet join nothing, in both.
            anyhow::ensure!(
                ksql_out == dsl_out,
                "ksql's joined bids differ from the DSL's ({} against {})",
                ksql_out.len(),
                dsl_out.len()
            );
        } else {
            anyhow::ensure!(
                ksql_out.len() == n && dsl_out.len() == n,
                "{} and {} outputs of {n} bids",
                ksql_out.len(),
                dsl_out.len()
            );
            anyhow::ensure!(ksql_out == dsl_out, "ksql's converted bids differ from the DSL's");
        }
        anyhow::Ok((ksql_elapsed, dsl_elapsed))
    })?;
    node.shutdown()?;
    // A side not run (`--only`) has no rate.
    let rate = |elapsed: Duration| (!elapsed.is_zero()).then(|| n as f64 / elapsed.as_secs_f64());
    let (ksql_events_per_sec, dsl_events_per_sec) = (rate(ksql_elapsed), rate(dsl_elapsed));
    let report = KsqlReport {
        query: args.query.clone(),
        events: args.events,
        ksql_events_per_sec,
        dsl_events_per_sec,
        ratio: ksql_events_per_sec
            .zip(dsl_events_per_sec)
            .map(|(k, d)| k / d),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let shown = |rate: Option<f64>| rate.map_or("-".to_string(), |r| format!("{r:.0}"));
        println!(
            "ksql {}: {} bids, ksql {} events/sec, the Streams DSL {} events/sec over the same JSON (one stream thread each, embedded node): {}",
            report.query,
            report.events,
            shown(report.ksql_events_per_sec),
            shown(report.dsl_events_per_sec),
            report.ratio.map_or("-".to_string(), |r| format!("{r:.2}x"))
        );
    }
    Ok(())
}

/// `n` bids of Nexmark's generator as `bids` records (the auction as a `KAFKA` BIGINT key,
/// the bid as JSON, the bid time as the timestamp) and, with `with_tables`, the auctions
/// and persons among the events as `auctions` and `persons` records (keyed by id).
fn events(n: usize, with_tables: bool) -> anyhow::Result<(Records, Records, Records)> {
    let mut bids: Records = Vec::with_capacity(n);
    let mut auctions: Records = Vec::new();
    let mut persons: Records = Vec::new();
    for event in Generator::new(42, 1_700_000_000_000) {
        if bids.len() == n {
            break;
        }
        if let (Event::Person(person), true) = (&event, with_tables) {
            let value = serde_json::to_vec(&JsonPerson {
                name: person.name.clone(),
                email: person.email.clone(),
                credit_card: person.credit_card.clone(),
                city: person.city.clone(),
                state: person.state.clone(),
                date_time: person.date_time,
            })?;
            persons.push((
                Bytes::copy_from_slice(&person.id.to_be_bytes()),
                Bytes::from(value),
                person.date_time,
            ));
        }
        if let (Event::Auction(auction), true) = (&event, with_tables) {
            let value = serde_json::to_vec(&JsonAuction {
                seller: auction.seller,
                category: auction.category,
                initial_bid: auction.initial_bid,
                reserve: auction.reserve,
                date_time: auction.date_time,
                expires: auction.expires,
            })?;
            auctions.push((
                Bytes::copy_from_slice(&auction.id.to_be_bytes()),
                Bytes::from(value),
                auction.date_time,
            ));
        }
        if let Event::Bid(bid) = event {
            let value = serde_json::to_vec(&JsonBid {
                bidder: bid.bidder,
                price: bid.price,
                channel: bid.channel,
                url: bid.url,
                date_time: bid.date_time,
            })?;
            bids.push((
                Bytes::copy_from_slice(&bid.auction.to_be_bytes()),
                Bytes::from(value),
                bid.date_time,
            ));
        }
    }
    Ok((bids, auctions, persons))
}

/// Records to write: key, value, timestamp.
type Records = Vec<(Bytes, Bytes, i64)>;

/// Writes `records` (the bids, or the auctions) to `topic`, each with its time as the
/// record's timestamp.
async fn produce_bids(
    client: &Arc<Client>,
    topic: &str,
    records: &[(Bytes, Bytes, i64)],
) -> anyhow::Result<()> {
    let config = ProducerConfig {
        acks: 1,
        batch_size: 65_536,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client.clone(), config);
    let topic: Arc<str> = topic.into();
    let mut last = None;
    for (key, value, timestamp) in records {
        let record = ProducerRecord {
            topic: topic.clone(),
            key: Some(key.clone()),
            value: Some(value.clone()),
            timestamp: Some(*timestamp),
            ..Default::default()
        };
        last = Some(producer.send(record).await?);
    }
    producer.flush().await;
    if let Some(last) = last {
        last.await.context("produce the input records")?;
    }
    producer.close().await;
    Ok(())
}

/// Waits until group `group` has committed all `n` bids (a commit follows the flush of the
/// caches and of the producer: every output is in its topic by then).
async fn wait_committed(
    client: &Arc<Client>,
    group: &str,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let committed = client.committed_offsets(group).await?;
        if committed.get(&TopicPartition::new("bids", 0)).copied() >= Some(n as i64) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{group} did not process the bids in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until group `group` has committed every record of its repartition topics (written
/// before its commit of the bids).
async fn wait_repartitions_committed(
    client: &Arc<Client>,
    group: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let committed = client.committed_offsets(group).await?;
        let mut behind = false;
        for (tp, offset) in &committed {
            if tp.topic.ends_with("-repartition") {
                let end = client.list_offset(&tp.topic, tp.partition, -1).await?;
                behind |= *offset < end;
            }
        }
        if !behind {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{group} did not process its repartition topics in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Every record of `topic`: its key and its value as JSON.
async fn read_all(
    client: &Arc<Client>,
    topic: &str,
    deadline: Instant,
) -> anyhow::Result<Vec<(Option<Bytes>, Json)>> {
    let end = client.list_offset(topic, 0, -1).await?;
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(TopicPartition::new(topic, 0), StartOffset::Beginning)],
        ConsumerConfig::default(),
    )
    .await?;
    let mut out = Vec::new();
    while consumer.position(topic, 0)? < end {
        for record in consumer.poll().await? {
            let value = match &record.value {
                Some(v) => serde_json::from_slice(v)?,
                None => Json::Null,
            };
            out.push((record.key.clone(), value));
        }
        anyhow::ensure!(Instant::now() < deadline, "reading {topic} took too long");
    }
    Ok(out)
}

/// `--query pull`'s figures: the latency of pull queries over HTTP on loopback.
#[derive(Debug, Serialize)]
struct PullReport {
    query: &'static str,
    events: u64,
    keys: usize,
    lookups: usize,
    pull_p50_ms: f64,
    pull_p99_ms: f64,
    pull_max_ms: f64,
    /// `GET /status` on the same connection: the HTTP round trip with no query.
    status_p50_ms: f64,
    status_p99_ms: f64,
}

/// Pull queries of a materialised table: the bids counted by auction (`CREATE TABLE ... AS
/// SELECT ... GROUP BY`), then `--lookups` key look-ups (`SELECT * FROM bid_counts WHERE
/// auction = <id>`) through the REST API on loopback, one after another on one keep-alive
/// connection, each answer checked against the counts of the bids written; and as many
/// `GET /status` on the same connection, the round trip with no query in it (the limit).
fn pull(args: KsqlBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    anyhow::ensure!(args.lookups > 0, "--lookups must be at least 1");
    let n = args.events as usize;
    let (bids, _, _) = events(n, false)?;
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for (key, _, _) in &bids {
        let auction = i64::from_be_bytes(key[..].try_into().context("an auction key")?);
        *counts.entry(auction).or_default() += 1;
    }
    let mut keys: Vec<i64> = counts.keys().copied().collect();
    keys.sort_unstable();
    let dir = tempfile::tempdir()?;
    let node = sluice_log::Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let report = runtime()?.block_on(async {
        let client = node.client().await?;
        crate::perf::create_topic(&client, "bids").await?;
        produce_bids(&client, "bids", &bids).await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let engine = Arc::new(sluice_ksql::engine::Engine::start(client.clone(), "bench_").await?);
        let mut properties = serde_json::Map::new();
        properties.insert("auto.offset.reset".into(), json!("earliest"));
        properties.insert("commit.interval.ms".into(), json!(args.commit_interval_ms));
        let entities = engine
            .execute(
                &format!(
                    "{SOURCE} CREATE TABLE bid_counts AS SELECT auction, COUNT(*) AS bids \
                     FROM bids GROUP BY auction;"
                ),
                &properties,
            )
            .await
            .map_err(|failure| anyhow::anyhow!("{}", failure.body))?;
        let query_id = entities
            .last()
            .and_then(|e| e["commandStatus"]["queryId"].as_str())
            .context("the statement started no query")?
            .to_string();
        wait_committed(
            &client,
            &format!("_confluent-ksql-bench_query_{query_id}"),
            n,
            deadline,
        )
        .await?;
        let server = sluice_ksql::rest::KsqlServer::start(engine, "127.0.0.1:0").await?;
        // One keep-alive HTTP/1.1 connection, as a client looking keys up would hold.
        let http = sluice_connect::rest::RestClient::new(&server.local_addr().to_string())?;
        let micros = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let mut pulls = Vec::with_capacity(args.lookups);
        for i in 0..args.lookups {
            let key = keys[i % keys.len()];
            let body = json!({"ksql": format!("SELECT * FROM bid_counts WHERE auction = {key};")});
            let started = Instant::now();
            let (status, answer) = http.request("POST", "/query", Some(&body)).await?;
            pulls.push(micros(started.elapsed()));
            let row = &answer[1]["row"]["columns"];
            anyhow::ensure!(
                status == 200 && row[0] == json!(key) && row[1] == json!(counts[&key]),
                "the look-up of auction {key} answered {status} {answer}, not its {} bids",
                counts[&key]
            );
        }
        let mut statuses = Vec::with_capacity(args.lookups);
        for _ in 0..args.lookups {
            let started = Instant::now();
            let (status, _) = http.get("/status").await?;
            statuses.push(micros(started.elapsed()));
            anyhow::ensure!(status == 200, "GET /status answered {status}");
        }
        server.shutdown().await;
        pulls.sort_unstable();
        statuses.sort_unstable();
        use crate::perf::percentile;
        anyhow::Ok(PullReport {
            query: "pull",
            events: args.events,
            keys: keys.len(),
            lookups: args.lookups,
            pull_p50_ms: percentile(&pulls, 0.5),
            pull_p99_ms: percentile(&pulls, 0.99),
            pull_max_ms: percentile(&pulls, 1.0),
            status_p50_ms: percentile(&statuses, 0.5),
            status_p99_ms: percentile(&statuses, 0.99),
        })
    })?;
    node.shutdown()?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "ksql pull: {} look-ups of {} keys (a table of {} bids counted by auction) over HTTP on loopback: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (target: p99 < 2 ms); GET /status on the same connection: p50 {:.3} ms, p99 {:.3} ms",
            report.lookups,
            report.keys,
            report.events,
            report.pull_p50_ms,
            report.pull_p99_ms,
            report.pull_max_ms,
            report.status_p50_ms,
            report.status_p99_ms
        );
    }
    Ok(())
}
