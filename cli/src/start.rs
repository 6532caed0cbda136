//! `sluice start`: open the data directory, recover, run the background tasks, shut down cleanly
//! on SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use sluice_log::{LogConfig, LogManager, LogManagerConfig};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Data directory (Kafka's `log.dirs`); created if missing.
    #[arg(long, default_value = "sluice-data", env = "SLUICE_LOG_DIRS")]
    log_dirs: PathBuf,
    /// Broker config overrides with Kafka's names, e.g. `--override log.retention.ms=60000`.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn run(args: StartArgs) -> anyhow::Result<()> {
    let mut props = BTreeMap::new();
    for item in &args.overrides {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("--override {item:?}: expected KEY=VALUE"))?;
        let key = key.trim();
        let known = sluice_log::config::TOPIC_CONFIG_KEYS
            .iter()
            .any(|(_, broker_key)| *broker_key == key)
            || matches!(
                key,
                "log.retention.hours" | "log.retention.minutes" | "log.roll.hours"
            );
        anyhow::ensure!(known, "unknown broker config {key:?} in --override");
        props.insert(key.to_string(), value.trim().to_string());
    }
    let mut config = LogManagerConfig::new(&args.log_dirs);
    config.defaults = LogConfig::from_broker_props(&props)?;
    let started = Instant::now();
    let (manager, stats) = LogManager::open(config, Default::default())
        .with_context(|| format!("open data directory {}", args.log_dirs.display()))?;
    tracing::info!(
        dir = %args.log_dirs.display(),
        partitions = stats.partitions,
        clean_shutdown = stats.clean_shutdown,
        recovered_segments = stats.recovery.segments_recovered,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "storage engine started; the Kafka listener arrives with the broker (issue 3)"
    );
    manager.start_background_tasks()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
        anyhow::Ok(())
    })?;
    tracing::info!("shutting down: flushing logs and writing checkpoints");
    manager.shutdown()?;
    tracing::info!("stopped cleanly");
    Ok(())
}
