//! `sluice start`: a broker on defaults that need no setup. Configuration comes from Kafka's
//! broker config names, in increasing precedence: defaults, `sluice.toml` (if present),
//! `SLUICE_*` environment variables (`SLUICE_LOG_DIRS` sets `log.dirs`), `--override`. The node
//! also runs a Connect worker with its REST API on 127.0.0.1:8083 (`connect.*` settings).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use sluice_connect::worker::WorkerConfig;
use sluice_log::broker::{server, Broker, BrokerConfig};
use sluice_log::client::{Client, ClientOptions};

use crate::tools::connect::{start_worker, stop_worker};

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
    "connect.rest.port",
    "connect.rest.host.name",
    "connect.listeners",
];

/// Splits the node's properties: `connect.*` configure its Connect worker with Kafka Connect's
/// worker names after the prefix (`connect.rest.port`, `connect.key.converter`, ...), the rest
/// the broker. `connect.enable=false` runs no worker. Source offsets default to
/// `<log.dirs>/connect.offsets`.
pub fn split_connect(
    props: BTreeMap<String, String>,
) -> anyhow::Result<(BTreeMap<String, String>, Option<WorkerConfig>)> {
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
    let mut config = WorkerConfig::from_props(&worker)
        .context("the node's Connect worker (connect.* settings)")?;
    if config.offset_file.is_none() {
        let dirs = broker.get("log.dirs").map_or("sluice-data", String::as_str);
        let first = dirs.split(',').next().unwrap_or("sluice-data").trim();
        config.offset_file = Some(Path::new(first).join("connect.offsets"));
    }
    Ok((broker, Some(config)))
}

pub fn run(args: StartArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let props = broker_props(&args.config, &args.overrides)?;
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
            Some(worker_config) => {
                let started = async {
                    let client = Client::embedded(
                        broker.clone(),
                        tokio::runtime::Handle::current(),
                        ClientOptions::default(),
                    )
                    .await?;
                    start_worker(client, worker_config, &mut std::io::stdout()).await
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
        crate::tools::wait_for_shutdown_signal().await?;
        tracing::info!("shutting down: closing connections, flushing logs, writing checkpoints");
        if let Some((worker, rest)) = worker {
            stop_worker(worker, rest).await;
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
        let worker = worker.expect("a worker by default");
        assert_eq!(worker.rest_listen, "127.0.0.1:0");
        assert_eq!(
            worker.offset_file.as_deref(),
            Some(Path::new("/data/connect.offsets"))
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
