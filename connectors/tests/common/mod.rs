//! The connectors' shared test fixture: an embedded node with a standalone worker, and
//! private database servers (PostgreSQL, MariaDB) started once per test binary by
//! `servers.sh` on free loopback ports, in temporary directories, stopped when the binary
//! exits. `SLUICE_TEST_POSTGRES_URL` / `SLUICE_TEST_MYSQL_URL` (a server URL such as
//! `postgresql://user:pw@host:5432/db`) use a server already running instead.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sluice_connect::connector::Props;
use sluice_connect::worker::{State, Worker, WorkerConfig};
use sluice_log::client::Client;

/// Properties from pairs.
pub fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts server `kind` with servers.sh and returns its URL.
fn start_server(kind: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "sluice-{kind}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/servers.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(kind)
        .arg(&dir)
        .arg(free_port().to_string())
        .arg(std::process::id().to_string())
        .env("SLUICE_DB_FAST", "1")
        .output()
        .expect("servers.sh runs");
    assert!(
        output.status.success(),
        "{kind} did not start: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The private PostgreSQL server's URL (`postgresql://sluice:sluice@127.0.0.1:PORT/postgres`).
pub fn postgres() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        std::env::var("SLUICE_TEST_POSTGRES_URL").unwrap_or_else(|_| start_server("postgres"))
    })
}

/// The private MariaDB server's URL (`mysql://sluice:sluice@127.0.0.1:PORT/sluice`).
pub fn mariadb() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        std::env::var("SLUICE_TEST_MYSQL_URL").unwrap_or_else(|_| start_server("mariadb"))
    })
}

/// A database of one test: its sqlx URL and the JDBC URL, user and password of connector
/// configs.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// sqlx's URL of the database.
    pub url: String,
    /// `connection.url`.
    pub jdbc: String,
    /// `connection.user`.
    pub user: String,
    /// `connection.password`.
    pub password: String,
}

impl TestDb {
    /// `connection.*` settings for a connector config.
    pub fn connection(&self) -> Vec<(&'static str, String)> {
        vec![
            ("connection.url", self.jdbc.clone()),
            ("connection.user", self.user.clone()),
            ("connection.password", self.password.clone()),
        ]
    }
}

/// Splits `scheme://user:password@host:port/db`.
fn parts(url: &str) -> (String, String, String, String, String) {
    let (scheme, rest) = url.split_once("://").expect("a server URL");
    let (credentials, rest) = rest.split_once('@').expect("credentials in the URL");
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
    (
        scheme.to_string(),
        user.to_string(),
        password.to_string(),
        hostport.to_string(),
        db.to_string(),
    )
}

/// A fresh database named `name` on `server` (dropped first if a previous run left it).
pub async fn fresh_database(server: &str, name: &str) -> TestDb {
    let (scheme, user, password, hostport, _) = parts(server);
    if scheme.starts_with("postgres") {
        let admin = sqlx::PgPool::connect(server)
            .await
            .expect("PostgreSQL answers");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await
        .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        TestDb {
            url: format!("postgresql://{user}:{password}@{hostport}/{name}"),
            jdbc: format!("jdbc:postgresql://{hostport}/{name}"),
            user,
            password,
        }
    } else {
        let admin = sqlx::MySqlPool::connect(server)
            .await
            .expect("MariaDB answers");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"
        )))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
        TestDb {
            url: format!("mysql://{user}:{password}@{hostport}/{name}"),
            jdbc: format!("jdbc:mysql://{hostport}/{name}"),
            user,
            password,
        }
    }
}

/// A SQLite database file in `dir`.
pub fn sqlite_database(dir: &std::path::Path, name: &str) -> TestDb {
    let path = dir.join(format!("{name}.db"));
    TestDb {
        url: format!("sqlite://{}?mode=rwc", path.display()),
        jdbc: format!("jdbc:sqlite:{}", path.display()),
        user: String::new(),
        password: String::new(),
    }
}

/// Runs `scenario` on a fresh embedded node with a client and a temporary directory,
/// bounded by `limit`.
pub fn on_node<F, Fut>(limit: Duration, scenario: F)
where
    F: FnOnce(Arc<Client>, PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let node = sluice_log::Sluice::embedded(dir.path().join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .start()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async {
            let client = node.client().await.unwrap();
            tokio::time::timeout(limit, scenario(client, dir.path().to_path_buf())).await
        })
        .unwrap_or_else(|_| panic!("the scenario finishes within {limit:?}"));
    node.shutdown().unwrap();
}

/// A standalone worker (shared, so connectors may ask for new task configs) keeping source
/// offsets in `dir/connect.offsets`, committing every 100 ms.
pub fn worker(client: &Arc<Client>, dir: &std::path::Path) -> Arc<Worker> {
    let config = WorkerConfig::from_props(&props(&[
        ("bootstrap.servers", "in-process"),
        (
            "offset.storage.file.filename",
            dir.join("connect.offsets").to_str().unwrap(),
        ),
        ("offset.flush.interval.ms", "100"),
    ]))
    .unwrap();
    Worker::new(client.clone(), config, sluice_connectors::plugins())
        .unwrap()
        .shared()
}

/// Waits (up to `limit`) until `check` holds, polling every 50 ms; panics with `what`.
pub async fn await_condition<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 30 s) until connector `name` or one of its tasks has failed, and returns
/// the reason.
pub async fn await_failure(worker: &Worker, name: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = worker.status(name).await.expect("the connector exists");
        for state in std::iter::once(&status.state).chain(&status.tasks) {
            if let State::Failed(reason) = state {
                return reason.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not fail: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The number of records in partition 0 of `topic` (its end offset; 0 when missing).
pub async fn records_in(client: &Client, topic: &str) -> i64 {
    client.list_offset(topic, 0, -1).await.unwrap_or(0)
}

/// Connector config from pairs and a database's connection settings.
pub fn connector(pairs: &[(&str, &str)], db: &TestDb) -> Props {
    let mut config: BTreeMap<String, String> = props(pairs);
    for (k, v) in db.connection() {
        config.insert(k.to_string(), v);
    }
    config
}

/// The private S3 server's (moto's) endpoint, `http://127.0.0.1:PORT`.
pub fn moto() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| std::env::var("SLUICE_TEST_S3_URL").unwrap_or_else(|_| start_server("moto")))
}

/// Creates bucket `name` on the S3 server (moto takes unsigned requests).
pub fn create_bucket(endpoint: &str, name: &str) {
    let status = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/{name}")])
        .status()
        .expect("curl runs");
    assert!(status.success(), "creating bucket {name} at {endpoint}");
}

/// Creates `topic` with `partitions` partitions.
pub async fn create_topic(client: &Client, topic: &str, partitions: i32) {
    let created = client
        .create_topics(
            &[sluice_log::client::NewTopic {
                name: topic.to_string(),
                partitions,
                replication_factor: 1,
                configs: Default::default(),
            }],
            false,
        )
        .await
        .unwrap();
    for (_, outcome) in created {
        outcome.unwrap();
    }
}

/// The values of partition `partition` of `topic`, from the start to its end offset now.
pub async fn values_in(
    client: &Arc<Client>,
    topic: &str,
    partition: i32,
) -> Vec<Option<bytes::Bytes>> {
    use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
    let end = client.list_offset(topic, partition, -1).await.unwrap();
    let mut consumer = Consumer::assign(
        client.clone(),
        vec![(
            sluice_log::TopicPartition::new(topic, partition),
            StartOffset::Beginning,
        )],
        ConsumerConfig::default(),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while consumer.position(topic, partition).unwrap() < end {
        for record in consumer.poll().await.unwrap() {
            seen.push(record.value);
        }
    }
    seen
}

/// Produces `values` to partition `partition` of `topic`.
pub async fn produce_values(
    client: &Arc<Client>,
    topic: &str,
    partition: i32,
    values: &[bytes::Bytes],
) {
    use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    let mut deliveries = Vec::new();
    for value in values {
        deliveries.push(
            producer
                .send(ProducerRecord {
                    topic: topic.into(),
                    partition: Some(partition),
                    value: Some(value.clone()),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
    }
    producer.flush().await;
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    producer.close().await;
}
