//! The JDBC connectors against real PostgreSQL and MariaDB servers and SQLite files: a
//! table goes through the source into a topic and through the sink into another table,
//! equal row for row (types, nulls, updates); a restarted source neither loses nor repeats
//! rows; tombstones delete rows; refused records go to the dead letter queue; wrong
//! passwords, missing tables and unreachable servers fail with messages that name them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::Client;

/// Runs statements (separated by `;`) on a test database.
async fn exec(db: &TestDb, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if db.url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else if db.url.starts_with("mysql") {
        let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// A query's rows, every column read as optional text.
async fn rows(db: &TestDb, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    macro_rules! read {
        ($pool:ty) => {{
            let pool = <$pool>::connect(&db.url).await.unwrap();
            let result = sqlx::query(sql).fetch_all(&pool).await;
            pool.close().await;
            match result {
                Ok(rows) => rows
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| row.try_get::<Option<String>, _>(i).unwrap())
                            .collect()
                    })
                    .collect(),
                // The table may not exist yet.
                Err(_) => Vec::new(),
            }
        }};
    }
    if db.url.starts_with("postgres") {
        read!(sqlx::PgPool)
    } else if db.url.starts_with("mysql") {
        read!(sqlx::MySqlPool)
    } else {
        read!(sqlx::SqlitePool)
    }
}

/// A database's flavour of the round trip: its DDL and the query that reads a table's rows
/// as comparable text.
struct Flavour {
    create: &'static str,
    /// `{t}` is the table.
    normalized: &'static str,
    /// Inserts row `i` (`{i}` is the id, `{s}` seconds since 2024-01-01 for timestamps).
    insert: fn(i: u32) -> String,
    /// Updates rows below `{n}`.
    update: &'static str,
}

fn ts(seconds: u32) -> String {
    // Rows after the first 300 are newer than the updates (2025-06-01): a timestamp mode
    // reads rows by their timestamp.
    let base = if seconds > 300 {
        1_767_225_600
    } else {
        1_704_067_200
    };
    let at = chrono::DateTime::from_timestamp(base + i64::from(seconds), 123_000_000)
        .unwrap()
        .naive_utc();
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn value_list(i: u32, bool_true: &str, bool_false: &str, bytes: &str) -> String {
    let null_or = |cond: bool, v: String| if cond { "NULL".to_string() } else { v };
    format!(
        "({i}, 'customer {i} é''s', {}, {}, {}, {}, {}, '{}', '{}', {}, {})",
        null_or(i.is_multiple_of(7), format!("{}.{:02}", i * 3, i % 100)),
        null_or(i.is_multiple_of(11), (i * 2).to_string()),
        null_or(
            i.is_multiple_of(13),
            if i.is_multiple_of(2) {
                bool_true
            } else {
                bool_false
            }
            .to_string()
        ),
        null_or(i.is_multiple_of(5), format!("'note\t{i} \"quoted\"'")),
        null_or(
            i.is_multiple_of(17),
            format!("'2024-{:02}-{:02}'", 1 + i % 12, 1 + i % 28)
        ),
        ts(i),
        ts(i),
        null_or(
            i.is_multiple_of(3),
            bytes.replace("{i}", &format!("{:02x}{:02x}", i % 256, (i * 7) % 256))
        ),
        null_or(i.is_multiple_of(19), format!("{}.25", i)),
    )
}

fn postgres_flavour() -> Flavour {
    Flavour {
        create: "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount NUMERIC(10,2), quantity INT, paid BOOLEAN, note TEXT, day DATE, at TIMESTAMPTZ NOT NULL, updated TIMESTAMP NOT NULL, payload BYTEA, ratio DOUBLE PRECISION)",
        normalized: "SELECT id::text, customer, amount::text, quantity::text, paid::text, note, day::text, (extract(epoch from at) * 1000)::bigint::text, (extract(epoch from updated) * 1000)::bigint::text, encode(payload, 'hex'), ratio::text FROM {t} ORDER BY id",
        insert: |i| format!("INSERT INTO orders VALUES {}", value_list(i, "true", "false", "'\\x{i}'::bytea")),
        update: "UPDATE orders SET note = 'updated', amount = NULL, updated = '2025-06-01 00:00:00' WHERE id < {n}",
    }
}

fn mariadb_flavour() -> Flavour {
    Flavour {
        create: "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount DECIMAL(10,2), quantity INT, paid TINYINT(1), note TEXT, day DATE, at TIMESTAMP(3) NOT NULL, updated DATETIME(3) NOT NULL, payload BLOB, ratio DOUBLE)",
        normalized: "SELECT CAST(id AS CHAR), customer, CAST(amount AS CHAR), CAST(quantity AS CHAR), CAST(paid AS CHAR), note, CAST(day AS CHAR), CAST(ROUND(UNIX_TIMESTAMP(at) * 1000) AS CHAR), CAST(ROUND(UNIX_TIMESTAMP(updated) * 1000) AS CHAR), LOWER(HEX(payload)), CAST(ratio AS CHAR) FROM {t} ORDER BY id",
        insert: |i| format!("INSERT INTO orders VALUES {}", value_list(i, "1", "0", "X'{i}'")),
        update: "UPDATE orders SET note = 'updated', amount = NULL, updated = '2025-06-01 00:00:00' WHERE id < {n}",
    }
}

fn sqlite_flavour() -> Flavour {
    Flavour {
        create: "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount DECIMAL(10,2), quantity INT, paid BOOLEAN, note TEXT, day DATE, at TIMESTAMP NOT NULL, updated TIMESTAMP NOT NULL, payload BLOB, ratio REAL)",
        normalized: "SELECT CAST(id AS TEXT), customer, CAST(amount AS TEXT), CAST(quantity AS TEXT), CAST(paid AS TEXT), note, CAST(day AS TEXT), CAST(CAST(ROUND((julianday(at) - 2440587.5) * 86400000) AS INTEGER) AS TEXT), CAST(CAST(ROUND((julianday(updated) - 2440587.5) * 86400000) AS INTEGER) AS TEXT), lower(hex(payload)), CAST(ratio AS TEXT) FROM {t} ORDER BY id",
        insert: |i| format!("INSERT INTO orders VALUES {}", value_list(i, "1", "0", "X'{i}'")),
        update: "UPDATE orders SET note = 'updated', amount = NULL, updated = '2025-06-01 00:00:00.000' WHERE id < {n}",
    }
}

/// Waits until `copy` holds the same rows as `orders`.
async fn await_copied(
    worker: &sluice_connect::worker::Worker,
    db: &TestDb,
    flavour: &Flavour,
    rows_expected: usize,
) {
    let source = flavour.normalized.replace("{t}", "orders");
    let copy = flavour.normalized.replace("{t}", "orders_copy");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let (a, b) = (rows(db, &source).await, rows(db, &copy).await);
        assert_eq!(a.len(), rows_expected);
        if a == b {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let first = a.iter().zip(&b).find(|(x, y)| x != y);
            panic!(
                "orders_copy has {} of {} rows; first difference: {first:?}; source {:?}, sink {:?}",
                b.len(),
                a.len(),
                worker.status("jdbc-in").await,
                worker.status("jdbc-out").await,
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The round trip of one database: source → topic → sink, updates, a restart.
async fn round_trip(client: Arc<Client>, dir: std::path::PathBuf, db: TestDb, flavour: Flavour) {
    exec(&db, flavour.create).await;
    for i in 1..=300 {
        exec(&db, &(flavour.insert)(i)).await;
    }
    let worker = worker(&client, &dir);
    let source = connector(
        &[
            (
                "connector.class",
                "io.confluent.connect.jdbc.JdbcSourceConnector",
            ),
            ("mode", "timestamp+incrementing"),
            ("incrementing.column.name", "id"),
            ("timestamp.column.name", "updated"),
            ("table.whitelist", "orders"),
            ("topic.prefix", "src-"),
            ("poll.interval.ms", "100"),
            ("batch.max.rows", "64"),
        ],
        &db,
    );
    worker
        .create_connector("jdbc-in", source.clone())
        .await
        .unwrap();
    worker
        .create_connector(
            "jdbc-out",
            connector(
                &[
                    (
                        "connector.class",
                        "io.confluent.connect.jdbc.JdbcSinkConnector",
                    ),
                    ("topics", "src-orders"),
                    ("table.name.format", "orders_copy"),
                    ("insert.mode", "upsert"),
                    ("pk.mode", "record_value"),
                    ("pk.fields", "id"),
                    ("auto.create", "true"),
                    ("auto.evolve", "true"),
                ],
                &db,
            ),
        )
        .await
        .unwrap();
    await_copied(&worker, &db, &flavour, 300).await;

    // Updated rows come again (their timestamp moved) and are upserted.
    exec(&db, &flavour.update.replace("{n}", "11")).await;
    let updated = flavour.normalized.replace("{t}", "orders_copy");
    await_condition(
        Duration::from_secs(30),
        "the updates reach the copy",
        || async {
            rows(&db, &updated)
                .await
                .iter()
                .filter(|r| r[5].as_deref() == Some("updated"))
                .count()
                == 10
        },
    )
    .await;
    await_copied(&worker, &db, &flavour, 300).await;

    // The source stops (committing its offsets); rows are added; started again, it reads
    // only those.
    worker.delete_connector("jdbc-in").await.unwrap();
    for i in 301..=400 {
        exec(&db, &(flavour.insert)(i)).await;
    }
    worker.create_connector("jdbc-in", source).await.unwrap();
    await_copied(&worker, &db, &flavour, 400).await;
    assert_eq!(
        records_in(&client, "src-orders").await,
        400 + 10,
        "every row once, every update once"
    );
    worker.shutdown().await.unwrap();
}

#[test]
fn postgres_rows_round_trip_through_a_topic_with_updates_and_a_restart() {
    let server = postgres();
    on_node(Duration::from_secs(120), |client, dir| async move {
        let db = fresh_database(server, "round_trip").await;
        round_trip(client, dir, db, postgres_flavour()).await;
    });
}

#[test]
fn mariadb_rows_round_trip_through_a_topic_with_updates_and_a_restart() {
    let server = mariadb();
    on_node(Duration::from_secs(120), |client, dir| async move {
        let db = fresh_database(server, "round_trip").await;
        round_trip(client, dir, db, mariadb_flavour()).await;
    });
}

#[test]
fn sqlite_rows_round_trip_through_a_topic_with_updates_and_a_restart() {
    on_node(Duration::from_secs(120), |client, dir| async move {
        let db = sqlite_database(&dir, "round_trip");
        round_trip(client, dir, db, sqlite_flavour()).await;
    });
}

/// Produces JSON-envelope records (`key`, `value`; None: a tombstone) to `topic`.
async fn produce(client: &Arc<Client>, topic: &str, records: &[(String, Option<String>)]) {
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    for (key, value) in records {
        producer
            .send(ProducerRecord {
                topic: topic.into(),
                partition: Some(0),
                key: Some(Bytes::from(key.clone())),
                value: value.clone().map(Bytes::from),
                ..Default::default()
            })
            .await
            .unwrap()
            .await
            .unwrap();
    }
    producer.close().await;
}

fn key(id: i64) -> String {
    format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"field":"id","type":"int64","optional":false}}]}},"payload":{{"id":{id}}}}}"#
    )
}

fn value(id: i64, name: &str, score: Option<i32>) -> String {
    let score = score.map_or("null".to_string(), |s| s.to_string());
    format!(
        r#"{{"schema":{{"type":"struct","name":"item","fields":[{{"field":"id","type":"int64","optional":false}},{{"field":"name","type":"string","optional":false}},{{"field":"score","type":"int32","optional":true}}]}},"payload":{{"id":{id},"name":"{name}","score":{score}}}}}"#
    )
}

#[test]
fn tombstones_delete_rows_and_refused_records_go_to_the_dead_letter_queue() {
    let server = postgres();
    on_node(Duration::from_secs(90), |client, dir| async move {
        let db = fresh_database(server, "deletes").await;
        // A check the records can break: the database refuses them, not the connector.
        exec(&db, "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score INT CHECK (score >= 0))").await;
        let mut records: Vec<(String, Option<String>)> = (1..=20)
            .map(|i| (key(i), Some(value(i, &format!("item {i}"), Some(i as i32)))))
            .collect();
        records.push((key(5), None));
        records.push((key(6), None));
        records.push((key(7), Some(value(7, "item 7 again", None))));
        records.push((key(21), Some(value(21, "refused", Some(-1)))));
        records.push((key(22), Some(value(22, "item 22", Some(22)))));
        produce(&client, "items", &records).await;
        let worker = worker(&client, &dir);
        worker
            .create_connector(
                "items-out",
                connector(
                    &[
                        ("connector.class", "JdbcSinkConnector"),
                        ("topics", "items"),
                        ("insert.mode", "upsert"),
                        ("pk.mode", "record_key"),
                        ("delete.enabled", "true"),
                        ("errors.tolerance", "all"),
                        ("errors.deadletterqueue.topic.name", "items-dlq"),
                        ("errors.deadletterqueue.topic.replication.factor", "1"),
                        ("errors.deadletterqueue.context.headers.enable", "true"),
                    ],
                    &db,
                ),
            )
            .await
            .unwrap();
        let query = "SELECT id::text, name, score::text FROM items ORDER BY id";
        await_condition(Duration::from_secs(30), "items written", || async {
            rows(&db, query).await.len() == 19
        })
        .await;
        let written = rows(&db, query).await;
        let ids: Vec<&str> = written.iter().map(|r| r[0].as_deref().unwrap()).collect();
        assert!(
            !ids.contains(&"5") && !ids.contains(&"6") && !ids.contains(&"21"),
            "{ids:?}"
        );
        assert!(ids.contains(&"22"));
        let seven = written
            .iter()
            .find(|r| r[0].as_deref() == Some("7"))
            .unwrap();
        assert_eq!(seven[1].as_deref(), Some("item 7 again"));
        assert_eq!(seven[2], None);
        await_condition(
            Duration::from_secs(10),
            "the refused record in the DLQ",
            || async { records_in(&client, "items-dlq").await == 1 },
        )
        .await;
        let status = worker.status("items-out").await.unwrap();
        assert_eq!(status.tasks, vec![sluice_connect::worker::State::Running]);
        worker.shutdown().await.unwrap();
    });
}

/// Upserts are first tried as plain inserts (faster), which is only the same thing when the
/// key columns are a unique key of the table: without one, an upsert still fails as the
/// database says instead of inserting rows twice.
#[test]
fn upserts_into_a_table_without_a_unique_key_on_their_key_fail_instead_of_inserting() {
    let server = postgres();
    on_node(Duration::from_secs(90), |client, dir| async move {
        let pg = fresh_database(server, "loose").await;
        let lite = sqlite_database(&dir, "loose");
        let worker = worker(&client, &dir);
        let records: Vec<(String, Option<String>)> = (1..=3)
            .map(|i| (key(i), Some(value(i, &format!("item {i}"), Some(1)))))
            .collect();
        produce(&client, "loose", &records).await;
        for (name, db, message) in [
            ("pg", &pg, "no unique or exclusion constraint"),
            ("lite", &lite, "ON CONFLICT clause does not match"),
        ] {
            exec(
                db,
                "CREATE TABLE loose (id BIGINT NOT NULL, name TEXT NOT NULL, score INT)",
            )
            .await;
            let config = connector(
                &[
                    ("connector.class", "JdbcSinkConnector"),
                    ("topics", "loose"),
                    ("insert.mode", "upsert"),
                    ("pk.mode", "record_key"),
                ],
                db,
            );
            worker.create_connector(name, config.clone()).await.unwrap();
            let reason = await_failure(&worker, name).await;
            assert!(reason.contains(message), "{name}: {reason}");
            assert!(
                rows(db, "SELECT CAST(id AS TEXT) FROM loose")
                    .await
                    .is_empty(),
                "{name}"
            );
            // With the key a unique index, the same records are written.
            exec(db, "CREATE UNIQUE INDEX loose_id ON loose (id)").await;
            worker.delete_connector(name).await.unwrap();
            worker
                .create_connector(&format!("{name}-again"), config)
                .await
                .unwrap();
            await_condition(Duration::from_secs(30), "rows upserted", || async {
                rows(db, "SELECT CAST(id AS TEXT) FROM loose").await.len() == 3
            })
            .await;
        }
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn wrong_passwords_missing_tables_and_unreachable_servers_fail_with_their_reasons() {
    let server = postgres();
    on_node(Duration::from_secs(90), |client, dir| async move {
        let db = fresh_database(server, "failures").await;
        let worker = worker(&client, &dir);
        produce(&client, "things", &[(key(1), Some(value(1, "a", Some(1))))]).await;
        let sink = |db: &TestDb, extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("connector.class", "JdbcSinkConnector"),
                ("topics", "things"),
                ("connection.attempts", "1"),
            ];
            pairs.extend_from_slice(extra);
            connector(&pairs, db)
        };
        let wrong = TestDb {
            password: "not-the-password".into(),
            ..db.clone()
        };
        worker
            .create_connector("wrong-password", sink(&wrong, &[]))
            .await
            .unwrap();
        let reason = await_failure(&worker, "wrong-password").await;
        assert!(
            reason.contains("password authentication failed"),
            "{reason}"
        );

        worker
            .create_connector("missing-table", sink(&db, &[]))
            .await
            .unwrap();
        let reason = await_failure(&worker, "missing-table").await;
        assert!(
            reason.contains("Table \"things\" is missing and auto-creation is disabled"),
            "{reason}"
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let unreachable = TestDb {
            jdbc: format!("jdbc:postgresql://127.0.0.1:{closed}/x"),
            ..db.clone()
        };
        worker
            .create_connector("unreachable", sink(&unreachable, &[]))
            .await
            .unwrap();
        let reason = await_failure(&worker, "unreachable").await;
        assert!(
            reason.contains(&format!("127.0.0.1:{closed}"))
                && reason.to_lowercase().contains("refused"),
            "{reason}"
        );

        let source = connector(
            &[
                ("connector.class", "JdbcSourceConnector"),
                ("mode", "bulk"),
                ("table.whitelist", "nowhere"),
                ("topic.prefix", "x-"),
            ],
            &db,
        );
        worker
            .create_connector("missing-source-table", source)
            .await
            .unwrap();
        let reason = await_failure(&worker, "missing-source-table").await;
        assert!(
            reason.contains("table nowhere in table.whitelist does not exist"),
            "{reason}"
        );
        // The worker runs on: a good connector still works.
        exec(
            &db,
            "CREATE TABLE things (id BIGINT PRIMARY KEY, name TEXT, score INT)",
        )
        .await;
        worker
            .create_connector(
                "good",
                sink(&db, &[("pk.mode", "record_key"), ("insert.mode", "upsert")]),
            )
            .await
            .unwrap();
        await_condition(Duration::from_secs(20), "the good sink writes", || async {
            rows(&db, "SELECT name FROM things").await.len() == 1
        })
        .await;
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn new_tables_are_picked_up_and_custom_queries_read_incrementally() {
    on_node(Duration::from_secs(90), |client, dir| async move {
        let db = sqlite_database(&dir, "tables");
        exec(&db, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'x'), (2, 'y')").await;
        let worker = worker(&client, &dir);
        worker
            .create_connector(
                "all-tables",
                connector(
                    &[
                        ("connector.class", "JdbcSourceConnector"),
                        ("mode", "incrementing"),
                        ("incrementing.column.name", "id"),
                        ("topic.prefix", "t-"),
                        ("poll.interval.ms", "100"),
                        ("table.poll.interval.ms", "200"),
                        ("tasks.max", "2"),
                    ],
                    &db,
                ),
            )
            .await
            .unwrap();
        await_condition(Duration::from_secs(20), "table a read", || async {
            records_in(&client, "t-a").await == 2
        })
        .await;
        exec(
            &db,
            "CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO b VALUES (1, 'z')",
        )
        .await;
        await_condition(
            Duration::from_secs(20),
            "table b found and read",
            || async { records_in(&client, "t-b").await == 1 },
        )
        .await;
        let status = worker.status("all-tables").await.unwrap();
        assert_eq!(status.tasks.len(), 2, "{status:?}");

        worker
            .create_connector(
                "query",
                connector(
                    &[
                        ("connector.class", "JdbcSourceConnector"),
                        ("mode", "incrementing"),
                        ("incrementing.column.name", "id"),
                        (
                            "query",
                            "SELECT id, v || '!' AS shout FROM a WHERE v <> 'y'",
                        ),
                        ("topic.prefix", "shouts"),
                        ("poll.interval.ms", "100"),
                    ],
                    &db,
                ),
            )
            .await
            .unwrap();
        await_condition(Duration::from_secs(20), "the query's row", || async {
            records_in(&client, "shouts").await == 1
        })
        .await;
        exec(&db, "INSERT INTO a VALUES (3, 'w')").await;
        await_condition(Duration::from_secs(20), "the query's new row", || async {
            records_in(&client, "shouts").await == 2
        })
        .await;
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn the_example_configs_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/connect");
    let plugins = sluice_connectors::plugins();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let config: sluice_connect::connector::Props = json["config"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let class = &config["connector.class"];
        let plugin = plugins
            .find(class)
            .unwrap_or_else(|| panic!("{class} is a plugin"));
        let validation = match plugin.factory {
            sluice_connect::worker::ConnectorFactory::Source(make) => make().validate(&config),
            sluice_connect::worker::ConnectorFactory::Sink(make) => make().validate(&config),
        };
        assert_eq!(
            validation.error_count(),
            0,
            "{}: {:?}",
            path.display(),
            validation.messages()
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked} example configs");
}
