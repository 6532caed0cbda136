//! `sluice start`: a broker on defaults that need no setup. Configuration comes from Kafka's
//! broker config names, in increasing precedence: defaults, `sluice.toml` (if present),
//! `SLUICE_*` environment variables (`SLUICE_LOG_DIRS` sets `log.dirs`), `--override`. The node
//! also runs a Connect worker with its REST API on 127.0.0.1:8083 (`connect.*` settings) and a
//! ksql server with ksqlDB's REST API on 127.0.0.1:8088 (`ksql.*` settings).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use sluice_connect::distributed::DistributedConfig;
use sluice_connect::worker::WorkerConfig;
use sluice_log::broker::{server, Broker, BrokerConfig};
use sluice_log::client::{Client, ClientOptions};

use crate::tools::connect::{start_distributed_worker, stop_distributed_worker};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Config file with Kafka's broker names (`log.retention.ms = 604800000` or `[log]` tables).
    /// Read if it exists; the default needs no file.
    #[arg(long, default_value = "sluice.toml")]
    config: PathBuf,
    /// A broker config with Kafka's name, e.g. `--override log.retention.ms=60000`; repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Flattens TOML tables into Kafka's dotted names.
fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, out)?,
            toml::Value::String(s) => {
                out.insert(name, s.clone());
            }
            toml::Value::Integer(i) => {
                out.insert(name, i.to_string());
            }
            toml::Value::Float(f) => {
                out.insert(name, f.to_string());
            }
            toml::Value::Boolean(b) => {
                out.insert(name, b.to_string());
            }
            toml::Value::Array(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|item| match item {
                        toml::Value::String(s) => Ok(s.clone()),
                        other => Err(anyhow::anyhow!(
                            "{name}: list items must be strings, found {other:?}"
                        )),
                    })
                    .collect::<anyhow::Result<_>>()?;
                out.insert(name, items.join(","));
            }
            toml::Value::Datetime(_) => anyhow::bail!("{name}: dates are not a config value"),
        }
    }
    Ok(())
}

/// Collects the broker properties from file, environment and overrides.
pub fn broker_props(
    config_path: &Path,
    overrides: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut props = BTreeMap::new();
    match std::fs::read_to_string(config_path) {
        Ok(text) => {
            let table: toml::Table = text
                .parse()
                .with_context(|| format!("parse {}", config_path.display()))?;
            flatten("", &table, &mut props)
                .with_context(|| format!("read {}", config_path.display()))?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("read {}", config_path.display())),
    }
    for (name, value) in std::env::vars() {
        if let Some(key) = name.strip_prefix("SLUICE_") {
            let key = key.to_ascii_lowercase().replace('_', ".");
            if BrokerConfig::is_known_key(&key) || CONNECT_ENV_KEYS.contains(&key.as_str()) {
                props.insert(key, value);
            }
        }
    }
    for item in overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--override {item:?}: expected KEY=VALUE"))?;
        props.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(props)
}

/// The node's Connect worker settings the environment may set (`SLUICE_CONNECT_REST_PORT`).
const CONNECT_ENV_KEYS: &[&str] = &[
    "connect.enable",
    "connect.group.id",
    "connect.rest.port",
    "connect.rest.host.name",
    "connect.listeners",
    "ksql.enable",
    "ksql.listeners",
    "ksql.service.id",
    "ksql.queries.file",
];

/// The node's ksql server: where it listens and its service id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsqlSettings {
    /// `ksql.listeners` as `host:port`.
    pub listen: String,
    /// `ksql.service.id`.
    pub service_id: String,
    /// `ksql.queries.file`: run headless, this file's statements only.
    pub queries_file: Option<std::path::PathBuf>,
}

/// Takes the `ksql.*` settings out of the node's properties: `ksql.enable` (default true),
/// `ksql.listeners` (default `http://127.0.0.1:8088`, ksqlDB's port), `ksql.service.id`
/// (default `default_`, ksqlDB's). Other `ksql.*` keys are refused: the server reads no others
/// yet.
pub fn split_ksql(
    props: BTreeMap<String, String>,
) -> anyhow::Result<(BTreeMap<String, String>, Option<KsqlSettings>)> {
    let mut rest = BTreeMap::new();
    let mut ksql = BTreeMap::new();
    for (key, value) in props {
        match key.strip_prefix("ksql.") {
            Some(name) => {
                ksql.insert(name.to_string(), value.trim().to_string());
            }
            None => {
                rest.insert(key, value);
            }
        }
    }
    let enabled = match ksql.remove("enable").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => anyhow::bail!("ksql.enable: expected true or false, not {other:?}"),
    };
    let listeners = ksql
        .remove("listeners")
        .unwrap_or_else(|| "http://127.0.0.1:8088".to_string());
    let service_id = ksql
        .remove("service.id")
        .unwrap_or_else(|| "default_".to_string());
    let queries_file = ksql
        .remove("queries.file")
        .filter(|f| !f.is_empty())
        .map(std::path::PathBuf::from);
    if let Some(key) = ksql.keys().next() {
        anyhow::bail!(
            "ksql.{key}: not a setting the node's ksql server takes (ksql.enable, ksql.listeners, ksql.service.id, ksql.queries.file)"
        );
    }
    if !enabled {
        return Ok((rest, None));
    }
    let listen = listeners
        .strip_prefix("http://")
        .with_context(|| {
            format!("ksql.listeners {listeners:?}: expected http://host:port (one listener)")
        })?
        .trim_end_matches('/')
        .to_string();
    anyhow::ensure!(
        !listen.contains(',') && listen.contains(':'),
        "ksql.listeners {listeners:?}: expected http://host:port (one listener)"
    );
    anyhow::ensure!(!service_id.is_empty(), "ksql.service.id may not be empty");
    Ok((
        rest,
        Some(KsqlSettings {
            listen,
            service_id,
            queries_file,
        }),
    ))
}

/// The broker's properties, and the Connect worker's settings unless `connect.enable=false`.
pub type NodeSettings = (
    BTreeMap<String, String>,
    Option<(WorkerConfig, DistributedConfig)>,
);

/// The node's Connect worker group when `connect.group.id` is unset (the name in Kafka's
/// `connect-distributed.properties`).
pub const NODE_CONNECT_GROUP: &str = "connect-cluster";

/// Splits the node's properties: `connect.*` configure its Connect worker with Kafka Connect's
/// worker names after the prefix (`connect.rest.port`, `connect.key.converter`,
/// `connect.config.storage.topic`, ...), the rest the broker. `connect.enable=false` runs no
/// worker. The worker is a one-worker distributed Connect cluster (group `connect-cluster`), so
/// that connector configs, source offsets and statuses live in the node's own
/// `connect-configs`, `connect-offsets` and `connect-status` topics and survive a restart.
pub fn split_connect(props: BTreeMap<String, String>) -> anyhow::Result<NodeSettings> {
    let mut broker = BTreeMap::new();
    let mut worker = BTreeMap::new();
    for (key, value) in props {
        match key.strip_prefix("connect.") {
            Some(rest) => {
                worker.insert(rest.to_string(), value);
            }
            None => {
                broker.insert(key, value);
            }
        }
    }
    let enabled = match worker.remove("enable").as_deref().map(str::trim) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => anyhow::bail!("connect.enable: expected true or false, not {other:?}"),
    };
    if !enabled {
        return Ok((broker, None));
    }
    worker
        .entry("group.id".to_string())
        .or_insert_with(|| NODE_CONNECT_GROUP.to_string());
    let config = DistributedConfig::from_props(&worker)
        .context("the node's Connect worker (connect.* settings)")?;
    Ok((broker, Some(config)))
}

/// What a newcomer can try next, printed once the node listens: commands that work as they
/// are against this node's addresses.
fn next_steps(bootstrap: &str, connect_url: Option<&str>, ksql_url: Option<&str>) -> String {
    let flag = if bootstrap == "127.0.0.1:9092" {
        String::new()
    } else {
        format!(" --bootstrap-server {bootstrap}")
    };
    let mut text = format!(
        "\nTry it (Ctrl-C stops the node):\n  \
         echo hello | sluice produce{flag} --topic greetings    # or: kcat -b {bootstrap} -P -t greetings\n  \
         sluice consume{flag} --topic greetings --from-beginning    # or: kcat -b {bootstrap} -C -t greetings -e\n"
    );
    if let Some(url) = connect_url {
        text.push_str(&format!(
            "  curl -s -X POST -H 'Content-Type: application/json' {url}/connectors \\\n    \
             -d '{{\"name\": \"greetings-file\", \"config\": {{\"connector.class\": \"FileStreamSink\", \"topics\": \"greetings\", \"file\": \"/tmp/greetings.txt\", \"value.converter\": \"org.apache.kafka.connect.storage.StringConverter\"}}}}'\n"
        ));
    }
    if let Some(url) = ksql_url {
        text.push_str(&format!(
            "  curl -s -X POST -H 'Content-Type: application/vnd.ksql.v1+json' {url}/ksql \\\n    \
             -d '{{\"ksql\": \"LIST TOPICS; SHOW STREAMS;\"}}'\n"
        ));
    }
    text
}

/// A client of the node's own broker, in process.
async fn embedded_client(broker: &Arc<Broker>) -> anyhow::Result<Arc<Client>> {
    Ok(Client::embedded(
        broker.clone(),
        tokio::runtime::Handle::current(),
        ClientOptions::default(),
    )
    .await?)
}

pub fn run(args: StartArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let props = broker_props(&args.config, &args.overrides)?;
    let (props, ksql) = split_ksql(props)?;
    let (props, connect) = split_connect(props)?;
    let config = BrokerConfig::from_props(&props)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (broker, stats) = Broker::open(config.clone())
            .with_context(|| format!("open data directory {}", config.log_dirs[0].display()))?;
        let server = server::start(broker.clone()).await?;
        broker.start_background_tasks()?;
        broker.spawn_group_maintenance();
        broker.spawn_transaction_maintenance();
        tracing::info!(
            listening = %server.local_addr(),
            data = %config.log_dirs[0].display(),
            partitions = stats.partitions,
            clean_shutdown = stats.clean_shutdown,
            recovered_segments = stats.recovery.segments_recovered,
            cluster_id = %broker.cluster_id(),
            started_ms = started.elapsed().as_millis() as u64,
            "Sluice is ready"
        );
        println!(
            "Sluice listening on PLAINTEXT://{} (data in {})",
            server.local_addr(),
            config.log_dirs[0].display()
        );
        let worker = match connect {
            Some((worker_config, distributed)) => {
                let started = async {
                    let client = embedded_client(&broker).await?;
                    start_distributed_worker(
                        client,
                        worker_config,
                        distributed,
                        &mut std::io::stdout(),
                    )
                    .await
                }
                .await;
                match started {
                    Ok(worker) => Some(worker),
                    Err(err) => {
                        // The broker still closes cleanly: the next start needs no recovery.
                        server.shutdown().await;
                        broker.shutdown()?;
                        return Err(err.context("set connect.rest.port (or connect.enable=false)"));
                    }
                }
            }
            None => None,
        };
        let ksql_server = match &ksql {
            Some(settings) => {
                let started = async {
                    let client = embedded_client(&broker).await?;
                    crate::ksql_server::start_ksql(client, settings).await
                }
                .await;
                match started {
                    Ok(server) => Some(server),
                    Err(err) => {
                        if let Some((worker, rest)) = worker {
                            stop_distributed_worker(worker, rest).await;
                        }
                        server.shutdown().await;
                        broker.shutdown()?;
                        return Err(err.context(
                            "the node's ksql server (ksql.listeners, ksql.service.id, ksql.queries.file; ksql.enable=false turns it off)",
                        ));
                    }
                }
            }
            None => None,
        };
        let connect_url = worker
            .as_ref()
            .map(|(_, rest)| format!("http://{}", rest.local_addr()));
        // A headless server takes no statements: no REST call to suggest.
        let headless = ksql.as_ref().is_some_and(|k| k.queries_file.is_some());
        let ksql_url = ksql_server
            .as_ref()
            .filter(|_| !headless)
            .map(|server| format!("http://{}", server.local_addr()));
        print!(
            "{}",
            next_steps(
                &server.local_addr().to_string(),
                connect_url.as_deref(),
                ksql_url.as_deref()
            )
        );
        std::io::Write::flush(&mut std::io::stdout())?;
        crate::tools::wait_for_shutdown_signal().await?;
        tracing::info!("shutting down: closing connections, flushing logs, writing checkpoints");
        if let Some(server) = ksql_server {
            server.shutdown().await;
        }
        if let Some((worker, rest)) = worker {
            stop_distributed_worker(worker, rest).await;
        }
        server.shutdown().await;
        broker.shutdown()?;
        tracing::info!("stopped cleanly");
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksql_settings_default_to_ksqldbs_port_and_refuse_what_the_server_does_not_read() {
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let (rest, ksql) = split_ksql(props(&[("log.dirs", "/d")])).unwrap();
        assert_eq!(rest, props(&[("log.dirs", "/d")]));
        assert_eq!(
            ksql,
            Some(KsqlSettings {
                listen: "127.0.0.1:8088".into(),
                service_id: "default_".into(),
                queries_file: None,
            })
        );
        let (_, ksql) = split_ksql(props(&[
            ("ksql.listeners", "http://0.0.0.0:9088/"),
            ("ksql.service.id", "app_"),
        ]))
        .unwrap();
        assert_eq!(
            ksql,
            Some(KsqlSettings {
                listen: "0.0.0.0:9088".into(),
                service_id: "app_".into(),
                queries_file: None,
            })
        );
        assert_eq!(
            split_ksql(props(&[("ksql.enable", "false")])).unwrap().1,
            None
        );
        let (_, ksql) = split_ksql(props(&[("ksql.queries.file", "/etc/app.sql")])).unwrap();
        assert_eq!(
            ksql.and_then(|k| k.queries_file),
            Some(std::path::PathBuf::from("/etc/app.sql")),
            "headless"
        );
        for (key, value, says) in [
            ("ksql.enable", "maybe", "expected true or false"),
            ("ksql.listeners", "https://h:1", "expected http://host:port"),
            ("ksql.listeners", "http://a:1,http://b:2", "one listener"),
            (
                "ksql.streams.num.threads",
                "2",
                "not a setting the node's ksql server takes",
            ),
        ] {
            let err = split_ksql(props(&[(key, value)])).unwrap_err().to_string();
            assert!(err.contains(says), "{key}={value}: {err}");
        }
    }

    #[test]
    fn next_steps_name_this_nodes_addresses() {
        let default = next_steps(
            "127.0.0.1:9092",
            Some("http://127.0.0.1:8083"),
            Some("http://127.0.0.1:8088"),
        );
        assert!(
            default.contains("echo hello | sluice produce --topic greetings"),
            "{default}"
        );
        assert!(
            default.contains("kcat -b 127.0.0.1:9092 -C -t greetings -e"),
            "{default}"
        );
        assert!(
            default.contains("http://127.0.0.1:8083/connectors"),
            "{default}"
        );
        assert!(
            default.contains("http://127.0.0.1:8088/ksql") && default.contains("SHOW STREAMS;"),
            "{default}"
        );
        let other = next_steps("127.0.0.1:19092", None, None);
        assert!(
            other.contains("sluice consume --bootstrap-server 127.0.0.1:19092 --topic greetings"),
            "{other}"
        );
        assert!(!other.contains("curl"), "no worker, no connector to create");
    }

    #[test]
    fn file_then_environment_then_overrides_with_kafka_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(
            &path,
            "node.id = 3\nlisteners = \"PLAINTEXT://127.0.0.1:0\"\n[log]\nretention.ms = 1000\ndirs = [\"/a\", \"/b\"]\n[num]\npartitions = 2\n",
        )
        .unwrap();
        // Only this test reads SLUICE_DEFAULT_REPLICATION_FACTOR.
        std::env::set_var("SLUICE_DEFAULT_REPLICATION_FACTOR", "1");
        let props = broker_props(&path, &["log.retention.ms=5".into()]).unwrap();
        assert_eq!(props["node.id"], "3");
        assert_eq!(props["log.dirs"], "/a,/b");
        assert_eq!(props["num.partitions"], "2");
        assert_eq!(
            props["log.retention.ms"], "5",
            "--override wins over the file"
        );
        assert_eq!(props["default.replication.factor"], "1");
        let config = BrokerConfig::from_props(&props).unwrap();
        assert_eq!(config.node_id, 3);
        assert_eq!(config.log_defaults.retention_ms, 5);

        std::fs::write(&path, "log.retention.ms = \"soon\"\n").unwrap();
        let err = BrokerConfig::from_props(&broker_props(&path, &[]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("log.retention.ms"), "{err}");
        std::fs::write(&path, "no.such.setting = 1\n").unwrap();
        let err = BrokerConfig::from_props(&broker_props(&path, &[]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("no.such.setting"), "{err}");
        std::fs::write(
            &path,
            "log.dirs = \"/data\"\n[connect]\nrest.port = 0\nvalue.converter = \"org.apache.kafka.connect.storage.StringConverter\"\n",
        )
        .unwrap();
        let (broker, worker) = split_connect(broker_props(&path, &[]).unwrap()).unwrap();
        BrokerConfig::from_props(&broker).unwrap();
        let (worker, distributed) = worker.expect("a worker by default");
        assert_eq!(worker.rest_listen, "127.0.0.1:0");
        assert_eq!(worker.offset_file, None, "offsets live in a topic");
        assert_eq!(distributed.group_id, NODE_CONNECT_GROUP);
        assert_eq!(distributed.config_topic, "connect-configs");
        assert_eq!(distributed.offset_topic, "connect-offsets");
        assert_eq!(distributed.status_topic, "connect-status");
        let named = broker_props(
            &path,
            &[
                "connect.group.id=node-a".into(),
                "connect.status.storage.topic=_status".into(),
            ],
        )
        .unwrap();
        let (_, distributed) = split_connect(named).unwrap().1.unwrap();
        assert_eq!(distributed.group_id, "node-a");
        assert_eq!(distributed.status_topic, "_status");
        let file =
            broker_props(&path, &["connect.offset.storage.file.filename=/x".into()]).unwrap();
        let err = split_connect(file).unwrap_err();
        assert!(
            format!("{err:#}").contains("offset.storage.file.filename"),
            "{err:#}"
        );
        let off = broker_props(&path, &["connect.enable=false".into()]).unwrap();
        assert!(split_connect(off).unwrap().1.is_none());
        let bad = broker_props(&path, &["connect.rest.prot=1".into()]).unwrap();
        let err = split_connect(bad).unwrap_err();
        assert!(format!("{err:#}").contains("rest.prot"), "{err:#}");
        std::fs::write(&path, "this is not toml").unwrap();
        let err = broker_props(&path, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("sluice.toml"), "{err:#}");
    }
}
