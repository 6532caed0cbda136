//! `sluice bench jdbc`: the JDBC connectors against a running PostgreSQL (or MySQL/MariaDB)
//! server, each beside its limit in the same run.
//!
//! - sink: N records (JSON with schemas) already in a topic, upserted into a table by the JDBC
//!   sink (`insert.mode=upsert`, `pk.mode=record_value`), timed from the connector's creation
//!   until the table holds N rows; the limit is a plain program writing the same rows with
//!   batched multi-row `INSERT`s in transactions, run as plain inserts, with the sink's upsert
//!   clause (the database's own cost of an upsert) and that again over the rows it wrote
//!   (every upsert an update), and, for reference, `COPY` on PostgreSQL. Then the sink runs
//!   again over the same records into its table (every upsert an update), timed until the
//!   last row has its value back.
//! - source: a table of N rows read by the JDBC source (`mode=incrementing`) into a topic,
//!   timed until the topic holds N records; the limit is the same `SELECT` streamed and
//!   decoded by a plain loop.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use sluice_connect::connector::Props;
use sluice_connect::worker::{State, Worker, WorkerConfig};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct JdbcBenchArgs {
    /// The database, as sqlx takes it: postgresql://user:password@host:5432/db or
    /// mysql://user:password@host:3306/db. Tables bench_* are dropped and created in it.
    #[arg(long)]
    url: String,
    /// Rows to write and read.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// What to measure: sink, source or both.
    #[arg(long, default_value = "both")]
    only: String,
    /// The sink's `batch.size` and the limit's rows per INSERT statement.
    #[arg(long, default_value_t = 3000)]
    batch_size: usize,
    /// The source's `batch.max.rows`.
    #[arg(long, default_value_t = 10_000)]
    batch_max_rows: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default, Serialize)]
struct JdbcReport {
    rows: u64,
    database: String,
    sink_rows_per_sec: Option<f64>,
    batched_insert_rows_per_sec: Option<f64>,
    /// The same program with the sink's upsert clause (the database's own cost of an upsert).
    batched_upsert_rows_per_sec: Option<f64>,
    copy_rows_per_sec: Option<f64>,
    /// The sink's speed as a share of the batched insert program's.
    sink_share_of_batched_insert: Option<f64>,
    /// The sink's speed as a share of the batched upsert program's.
    sink_share_of_batched_upsert: Option<f64>,
    /// The sink over the same records again: every upsert an update.
    sink_update_rows_per_sec: Option<f64>,
    /// The batched upsert program over the rows already there.
    batched_update_rows_per_sec: Option<f64>,
    /// The sink's updates as a share of the program's.
    sink_update_share_of_batched_update: Option<f64>,
    source_rows_per_sec: Option<f64>,
    plain_select_rows_per_sec: Option<f64>,
    /// The source's speed as a share of the plain SELECT loop's.
    source_share_of_select: Option<f64>,
}

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The database's kind and the JDBC URL, user and password connectors take.
fn jdbc(url: &str) -> anyhow::Result<(bool, String, String, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .context("--url: scheme://user:password@host:port/db")?;
    let (credentials, location) = rest.split_once('@').context("--url needs user:password@")?;
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let postgres = scheme.starts_with("postgres");
    let jdbc = if postgres {
        format!("jdbc:postgresql://{location}")
    } else {
        format!("jdbc:mysql://{location}")
    };
    Ok((postgres, jdbc, user.to_string(), password.to_string()))
}

/// Runs statements on a fresh connection.
async fn exec(url: &str, postgres: bool, sql: &str) -> anyhow::Result<()> {
    let sql = AssertSqlSafe(sql.to_string());
    if postgres {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut c).await?;
    } else {
        let mut c = sqlx::MySqlConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut c).await?;
    }
    Ok(())
}

/// The one number `sql` answers (as BIGINT: MySQL's COUNT and MAX are wider).
async fn number(url: &str, postgres: bool, sql: &str) -> anyhow::Result<i64> {
    let sql = AssertSqlSafe(format!(
        "SELECT CAST(({sql}) AS {})",
        if postgres { "BIGINT" } else { "SIGNED" }
    ));
    Ok(if postgres {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await?
    } else {
        let mut c = sqlx::MySqlConnection::connect(url).await?;
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await?
    })
}

async fn count(url: &str, postgres: bool, table: &str) -> anyhow::Result<i64> {
    number(url, postgres, &format!("SELECT COUNT(*) FROM {table}")).await
}

/// Row `i`: id, name, score, amount (cents), updated (ms).
fn row(i: u64) -> (i64, String, i32, i64, i64) {
    (
        i as i64,
        format!("customer-{:08}", i % 100_000),
        (i % 1000) as i32,
        (i * 37 % 100_000) as i64,
        1_700_000_000_000 + i as i64,
    )
}

const CREATE: &str = "(id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INT NOT NULL, amount DECIMAL(12,2) NOT NULL, updated TIMESTAMP NOT NULL)";
/// MySQL's TIMESTAMP is in the session's time zone; DATETIME is what the sink creates.
const CREATE_MYSQL: &str = "(id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INT NOT NULL, amount DECIMAL(12,2) NOT NULL, updated DATETIME(3) NOT NULL)";

/// What the limit program writes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pass {
    /// Plain inserts into a new table.
    Insert,
    /// The sink's upserts into a new table.
    Upsert,
    /// The sink's upserts over the rows already there (their scores changed first).
    Update,
}

/// The limit: multi-row INSERTs of `batch` rows, a transaction each (but for
/// [`Pass::Insert`], with the upsert clause the sink writes).
async fn batched_insert(
    url: &str,
    postgres: bool,
    rows: u64,
    batch: usize,
    pass: Pass,
) -> anyhow::Result<Duration> {
    let upsert = pass != Pass::Insert;
    let prepare = if pass == Pass::Update {
        "UPDATE bench_limit SET score = -1".to_string()
    } else {
        format!(
            "DROP TABLE IF EXISTS bench_limit; CREATE TABLE bench_limit {}",
            if postgres { CREATE } else { CREATE_MYSQL }
        )
    };
    exec(url, postgres, &prepare).await?;
    let started = Instant::now();
    let mut i = 0;
    macro_rules! run {
        ($conn:expr, $ph:expr) => {{
            let mut conn = $conn;
            while i < rows {
                let n = batch.min((rows - i) as usize);
                let mut sql = String::from(
                    "INSERT INTO bench_limit (id, name, score, amount, updated) VALUES ",
                );
                for k in 0..n {
                    if k > 0 {
                        sql.push(',');
                    }
                    let b = k * 5;
                    sql.push_str(&format!(
                        "({},{},{},{},{})",
                        $ph(b + 1, ""),
                        $ph(b + 2, ""),
                        $ph(b + 3, ""),
                        $ph(b + 4, "NUMERIC"),
                        $ph(b + 5, "")
                    ));
                }
                if upsert && postgres {
                    sql.push_str(" ON CONFLICT (id) DO UPDATE SET name=EXCLUDED.name,score=EXCLUDED.score,amount=EXCLUDED.amount,updated=EXCLUDED.updated");
                } else if upsert {
                    sql.push_str(" ON DUPLICATE KEY UPDATE name=VALUES(name),score=VALUES(score),amount=VALUES(amount),updated=VALUES(updated)");
                }
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for j in i..i + n as u64 {
                    let (id, name, score, cents, ms) = row(j);
                    query = query
                        .bind(id)
                        .bind(name)
                        .bind(score)
                        .bind(format!("{}.{:02}", cents / 100, cents % 100))
                        .bind(
                            chrono::DateTime::from_timestamp_millis(ms)
                                .unwrap_or_default()
                                .naive_utc(),
                        );
                }
                let mut tx = conn.begin().await?;
                query.execute(&mut *tx).await?;
                tx.commit().await?;
                i += n as u64;
            }
        }};
    }
    if postgres {
        run!(
            sqlx::PgConnection::connect(url).await?,
            |n: usize, cast: &str| if cast.is_empty() {
                format!("${n}")
            } else {
                format!("CAST(${n} AS {cast})")
            }
        );
    } else {
        run!(
            sqlx::MySqlConnection::connect(url).await?,
            |_n: usize, _cast: &str| "?".to_string()
        );
    }
    Ok(started.elapsed())
}

/// PostgreSQL's COPY of the same rows into `table` (also how the source's table is filled).
async fn copy(url: &str, table: &str, rows: u64) -> anyhow::Result<Duration> {
    exec(
        url,
        true,
        &format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} {CREATE}"),
    )
    .await?;
    let started = Instant::now();
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table} (id, name, score, amount, updated) FROM STDIN"
        ))
        .await?;
    let mut chunk = String::with_capacity(1 << 20);
    for i in 0..rows {
        let (id, name, score, cents, ms) = row(i);
        let at = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .naive_utc();
        chunk.push_str(&format!(
            "{id}\t{name}\t{score}\t{}.{:02}\t{at}\n",
            cents / 100,
            cents % 100
        ));
        if chunk.len() > 1 << 20 {
            copy.send(std::mem::take(&mut chunk).into_bytes()).await?;
        }
    }
    copy.send(chunk.into_bytes()).await?;
    copy.finish().await?;
    Ok(started.elapsed())
}

/// The limit of the source: the rows streamed and decoded.
async fn plain_select(
    url: &str,
    postgres: bool,
    table: &str,
    rows: u64,
) -> anyhow::Result<Duration> {
    use futures_util::TryStreamExt;
    let started = Instant::now();
    let text = if postgres { "TEXT" } else { "CHAR" };
    let sql =
        format!("SELECT id, name, score, CAST(amount AS {text}), updated FROM {table} ORDER BY id");
    let mut n = 0u64;
    let mut check = 0i64;
    macro_rules! read {
        ($conn:expr) => {{
            let mut conn = $conn;
            let mut stream = sqlx::query(AssertSqlSafe(sql)).fetch(&mut conn);
            while let Some(r) = stream.try_next().await? {
                let id: i64 = r.try_get(0)?;
                let name: String = r.try_get(1)?;
                let score: i32 = r.try_get(2)?;
                let amount: String = r.try_get(3)?;
                let at: chrono::NaiveDateTime = r.try_get(4)?;
                check = check.wrapping_add(
                    id + name.len() as i64
                        + i64::from(score)
                        + amount.len() as i64
                        + at.and_utc().timestamp_millis(),
                );
                n += 1;
            }
        }};
    }
    if postgres {
        read!(sqlx::PgConnection::connect(url).await?);
    } else {
        read!(sqlx::MySqlConnection::connect(url).await?);
    }
    anyhow::ensure!(n == rows, "the plain SELECT read {n} rows, not {rows}");
    std::hint::black_box(check);
    Ok(started.elapsed())
}

/// The records of the sink's topic: the rows as JsonConverter (schemas enabled) writes them.
async fn fill_topic(
    client: &std::sync::Arc<sluice_log::client::Client>,
    rows: u64,
) -> anyhow::Result<()> {
    use sluice_connect::converter::{Converter, JsonConverter};
    use sluice_connect::data::{logical, SchemaBuilder, Struct, Value};
    let schema = SchemaBuilder::struct_()
        .name("bench.Row")
        .field("id", SchemaBuilder::int64().build()?)
        .field("name", SchemaBuilder::string().build()?)
        .field("score", SchemaBuilder::int32().build()?)
        .field("amount", logical::decimal(2).build()?)
        .field("updated", logical::timestamp().build()?)
        .build()?;
    let converter = JsonConverter::new(true);
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            linger: Duration::from_millis(5),
            ..ProducerConfig::default()
        },
    );
    let mut deliveries = Vec::new();
    for i in 0..rows {
        let (id, name, score, cents, ms) = row(i);
        let value = Value::Struct(Struct::from_values(
            schema.clone(),
            vec![
                Value::Int64(id),
                Value::String(name),
                Value::Int32(score),
                Value::Bytes(logical::decimal_bytes(i128::from(cents))),
                Value::Int64(ms),
            ],
        )?);
        let bytes: Option<Bytes> =
            converter.from_connect_data("bench-rows", Some(&schema), &value)?;
        deliveries.push(
            producer
                .send(ProducerRecord {
                    topic: "bench-rows".into(),
                    partition: Some(0),
                    value: bytes,
                    ..Default::default()
                })
                .await?,
        );
        if deliveries.len() >= 100_000 {
            for d in deliveries.drain(..) {
                d.await?;
            }
        }
    }
    producer.flush().await;
    for d in deliveries {
        d.await?;
    }
    producer.close().await;
    Ok(())
}

async fn await_done(
    worker: &Worker,
    name: &str,
    deadline: Instant,
    mut done: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    loop {
        if done().await? {
            return Ok(());
        }
        if let Some(status) = worker.status(name).await {
            for state in std::iter::once(&status.state).chain(&status.tasks) {
                if let State::Failed(reason) = state {
                    anyhow::bail!("{name} failed: {reason}");
                }
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} did not finish within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn jdbc_bench(args: JdbcBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rows > 0, "--rows must be at least 1");
    let (postgres, jdbc_url, user, password) = jdbc(&args.url)?;
    let (sink, source) = match args.only.as_str() {
        "both" => (true, true),
        "sink" => (true, false),
        "source" => (false, true),
        other => anyhow::bail!("--only {other}: expected sink, source or both"),
    };
    let dir = tempfile::tempdir()?;
    let node = sluice_log::Sluice::embedded(dir.path().join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let mut report = JdbcReport {
        rows: args.rows,
        database: if postgres {
            "postgresql".into()
        } else {
            "mysql".into()
        },
        ..JdbcReport::default()
    };
    let rows = args.rows;
    runtime()?.block_on(async {
        let client = node.client().await?;
        let offsets = dir.path().join("connect.offsets");
        let config = WorkerConfig::from_props(&props(&[("offset.storage.file.filename", offsets.to_str().unwrap_or_default()), ("offset.flush.interval.ms", "1000")]))?;
        let worker = Worker::new(client.clone(), config, sluice_connectors::plugins())?.shared();
        let batch = args.batch_size.to_string();
        let connection = [("connection.url", jdbc_url.as_str()), ("connection.user", user.as_str()), ("connection.password", password.as_str())];
        if sink {
            fill_topic(&client, rows).await?;
            let rate = |d: Duration| Some(rows as f64 / d.as_secs_f64());
            let limit = batched_insert(&args.url, postgres, rows, args.batch_size, Pass::Upsert).await?;
            report.batched_upsert_rows_per_sec = rate(limit);
            let limit = batched_insert(&args.url, postgres, rows, args.batch_size, Pass::Update).await?;
            report.batched_update_rows_per_sec = rate(limit);
            let limit = batched_insert(&args.url, postgres, rows, args.batch_size, Pass::Insert).await?;
            report.batched_insert_rows_per_sec = rate(limit);
            if postgres {
                let copied = copy(&args.url, "bench_copy", rows).await?;
                report.copy_rows_per_sec = Some(rows as f64 / copied.as_secs_f64());
            }
            exec(&args.url, postgres, "DROP TABLE IF EXISTS bench_sink").await?;
            let mut config = props(&[
                ("connector.class", "io.confluent.connect.jdbc.JdbcSinkConnector"),
                ("topics", "bench-rows"),
                ("table.name.format", "bench_sink"),
                ("insert.mode", "upsert"),
                ("pk.mode", "record_value"),
                ("pk.fields", "id"),
                ("auto.create", "true"),
                ("batch.size", batch.as_str()),
                ("consumer.override.max.poll.records", batch.as_str()),
            ]);
            config.extend(props(&connection));
            let started = Instant::now();
            worker.create_connector("bench-jdbc-sink", config.clone()).await?;
            let url = args.url.clone();
            // Rows come in id order and one transaction at a time: the last id is the end
            // (MAX on the key is an index look-up; COUNT would load the server meanwhile).
            await_done(&worker, "bench-jdbc-sink", started + Duration::from_secs(600), async || Ok(number(&url, postgres, "SELECT COALESCE(MAX(id), -1) FROM bench_sink").await.unwrap_or(-1) >= rows as i64 - 1)).await?;
            let elapsed = started.elapsed();
            let written = count(&url, postgres, "bench_sink").await?;
            anyhow::ensure!(written == rows as i64, "the sink wrote {written} rows, not {rows}");
            report.sink_rows_per_sec = Some(rows as f64 / elapsed.as_secs_f64());
            worker.delete_connector("bench-jdbc-sink").await?;
            // Again over the rows now there (another group reads the topic from its start):
            // every upsert an update. The last row's score coming back is the end.
            exec(&args.url, postgres, "UPDATE bench_sink SET score = -1").await?;
            let last_score = row(rows - 1).2;
            let started = Instant::now();
            worker.create_connector("bench-jdbc-sink-again", config).await?;
            await_done(&worker, "bench-jdbc-sink-again", started + Duration::from_secs(600), async || Ok(number(&url, postgres, &format!("SELECT score FROM bench_sink WHERE id = {}", rows - 1)).await.unwrap_or(-1) == i64::from(last_score))).await?;
            let elapsed = started.elapsed();
            let left = count(&url, postgres, "bench_sink WHERE score = -1").await?;
            anyhow::ensure!(left == 0, "the sink's second pass left {left} rows unchanged");
            report.sink_update_rows_per_sec = Some(rows as f64 / elapsed.as_secs_f64());
            worker.delete_connector("bench-jdbc-sink-again").await?;
        }
        if source {
            if postgres {
                copy(&args.url, "bench_source", rows).await?;
            } else {
                if !sink {
                    batched_insert(&args.url, false, rows, args.batch_size, Pass::Insert).await?;
                }
                exec(&args.url, false, &format!("DROP TABLE IF EXISTS bench_source; CREATE TABLE bench_source {CREATE_MYSQL}; INSERT INTO bench_source SELECT * FROM bench_limit")).await?;
            }
            let limit = plain_select(&args.url, postgres, "bench_source", rows).await?;
            report.plain_select_rows_per_sec = Some(rows as f64 / limit.as_secs_f64());
            let max_rows = args.batch_max_rows.to_string();
            let mut config = props(&[
                ("connector.class", "io.confluent.connect.jdbc.JdbcSourceConnector"),
                ("mode", "incrementing"),
                ("incrementing.column.name", "id"),
                ("table.whitelist", "bench_source"),
                ("topic.prefix", "bench-"),
                ("batch.max.rows", max_rows.as_str()),
                ("poll.interval.ms", "1000"),
            ]);
            config.extend(props(&connection));
            let started = Instant::now();
            worker.create_connector("bench-jdbc-source", config).await?;
            let client = client.clone();
            await_done(&worker, "bench-jdbc-source", started + Duration::from_secs(600), async || Ok(client.list_offset("bench-bench_source", 0, -1).await.unwrap_or(0) >= rows as i64)).await?;
            let elapsed = started.elapsed();
            report.source_rows_per_sec = Some(rows as f64 / elapsed.as_secs_f64());
            worker.delete_connector("bench-jdbc-source").await?;
        }
        worker.shutdown().await?;
        anyhow::Ok(())
    })?;
    node.shutdown()?;
    report.sink_share_of_batched_insert = report
        .sink_rows_per_sec
        .zip(report.batched_insert_rows_per_sec)
        .map(|(a, b)| a / b);
    report.sink_share_of_batched_upsert = report
        .sink_rows_per_sec
        .zip(report.batched_upsert_rows_per_sec)
        .map(|(a, b)| a / b);
    report.sink_update_share_of_batched_update = report
        .sink_update_rows_per_sec
        .zip(report.batched_update_rows_per_sec)
        .map(|(a, b)| a / b);
    report.source_share_of_select = report
        .source_rows_per_sec
        .zip(report.plain_select_rows_per_sec)
        .map(|(a, b)| a / b);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        if let (Some(sink), Some(limit)) =
            (report.sink_rows_per_sec, report.batched_insert_rows_per_sec)
        {
            println!(
                "jdbc sink ({}): {} rows upserted from a topic: {sink:.0} rows/sec; a batched INSERT program {limit:.0} rows/sec ({:.0}% of it){}{}",
                report.database,
                rows,
                100.0 * sink / limit,
                report.batched_upsert_rows_per_sec.map(|u| format!("; the same program upserting {u:.0} rows/sec ({:.0}% of it)", 100.0 * sink / u)).unwrap_or_default(),
                report.copy_rows_per_sec.map(|c| format!("; COPY {c:.0} rows/sec")).unwrap_or_default()
            );
        }
        if let (Some(sink), Some(limit)) = (
            report.sink_update_rows_per_sec,
            report.batched_update_rows_per_sec,
        ) {
            println!(
                "jdbc sink ({}): the same {} records again, every upsert an update: {sink:.0} rows/sec; the batched upsert program over its rows {limit:.0} rows/sec ({:.0}% of it)",
                report.database,
                rows,
                100.0 * sink / limit
            );
        }
        if let (Some(source), Some(limit)) =
            (report.source_rows_per_sec, report.plain_select_rows_per_sec)
        {
            println!(
                "jdbc source ({}): a table of {} rows into a topic: {source:.0} rows/sec; a plain SELECT loop {limit:.0} rows/sec ({:.0}% of it)",
                report.database,
                rows,
                100.0 * source / limit
            );
        }
    }
    Ok(())
}
