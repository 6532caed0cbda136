//! The command-line tools that speak the Kafka protocol (so they work against Apache Kafka too):
//! topics, configs, produce, consume, groups, transactions.

pub mod configs;
pub mod connect;
pub mod consume;
pub mod delete_records;
pub mod groups;
pub mod produce;
pub mod topics;
pub mod transactions;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_log::client::{Client, ClientOptions};

/// Where the cluster is.
#[derive(Debug, Clone, clap::Args)]
pub struct Connect {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    #[arg(
        long = "bootstrap-server",
        default_value = "127.0.0.1:9092",
        env = "SLUICE_BOOTSTRAP_SERVER",
        global = true
    )]
    pub bootstrap_server: String,
    /// Request timeout (Kafka's `request.timeout.ms`).
    #[arg(long = "request-timeout-ms", default_value_t = 30_000, global = true)]
    pub request_timeout_ms: u64,
}

impl Connect {
    /// Connects, with the bootstrap list in the error if it fails.
    pub async fn client(&self) -> anyhow::Result<Arc<Client>> {
        let options = ClientOptions {
            client_id: "sluice-cli".into(),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
        };
        Client::connect(&self.bootstrap_server, options)
            .await
            .with_context(|| format!("connect to {}", self.bootstrap_server))
    }
}

/// Parses `key=value`.
pub fn parse_key_value(item: &str) -> anyhow::Result<(String, String)> {
    let (key, value) = item
        .split_once('=')
        .with_context(|| format!("{item:?}: expected KEY=VALUE"))?;
    Ok((key.trim().to_string(), value.to_string()))
}

/// Waits for Ctrl-C or SIGTERM (how an operator stops a node or a worker).
pub async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// A current-thread tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Unescapes `\t`, `\n`, `\\` as Kafka's console tools do for separators.
pub fn unescape(value: &str) -> String {
    value
        .replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\\\", "\\")
}
