//! Embedded mode: a broker running inside the current process, on its own tokio runtime, for
//! tests, examples and programs that want a node without a server to install (it stops cleanly
//! when dropped), and clients that reach it without sockets.
//!
//! This module sits above both `broker` and `client`: the client's in-process transport hands
//! requests to a [`RequestHandler`], which the broker is here, so neither of them depends on
//! the other.
//!
//! ```
//! # fn main() -> sluice_log::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! // A node in this process; clients reach it without TCP. `.listen("127.0.0.1:9092")` would
//! // also open a port for kcat and other outside tools.
//! let node = sluice_log::Sluice::embedded(dir.path()).config("num.partitions", "3").start()?;
//! assert!(node.addr().is_none());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::broker::server::{self, ServerHandle};
use crate::broker::{Broker, BrokerConfig};
use crate::client::{Client, ClientOptions, InProcess, RequestHandler};
use crate::error::{Error, Result};
use crate::protocol::{Reply, Request};
use crate::storage::manager::OpenStats;

impl RequestHandler for Broker {
    fn handle(&self, request: Request) -> impl std::future::Future<Output = Reply> + Send {
        Broker::handle(self, request)
    }
}

impl Client {
    /// A client of a broker in this process: the same API, with requests handed to the
    /// broker's handlers as values (no TCP, no encoding). They run on `runtime` (the broker's),
    /// so that the broker works beside the client as it would in another process.
    pub async fn embedded(
        broker: Arc<Broker>,
        runtime: tokio::runtime::Handle,
        options: ClientOptions,
    ) -> Result<Arc<Client>> {
        Client::in_process(InProcess::new(broker, runtime), options).await
    }
}

/// Embedded mode's entry point.
pub struct Sluice;

impl Sluice {
    /// A node keeping its data in `dir` (created if missing; reopened, with recovery, if not),
    /// reachable only in-process unless `listen` is called.
    pub fn embedded(dir: impl AsRef<Path>) -> EmbeddedBuilder {
        let mut props = BTreeMap::new();
        props.insert("log.dirs".to_string(), dir.as_ref().display().to_string());
        EmbeddedBuilder {
            props,
            listen: false,
        }
    }
}

/// Settings of an embedded node before it starts.
#[derive(Debug, Clone)]
pub struct EmbeddedBuilder {
    props: BTreeMap<String, String>,
    listen: bool,
}

impl EmbeddedBuilder {
    /// Sets a broker property by Kafka's name (`num.partitions`, `log.retention.ms`, ...).
    pub fn config(mut self, key: &str, value: &str) -> EmbeddedBuilder {
        self.props.insert(key.to_string(), value.to_string());
        self
    }

    /// Also serves the Kafka protocol on `host:port` (port 0: an ephemeral one).
    pub fn listen(mut self, host_port: &str) -> EmbeddedBuilder {
        self.props
            .insert("listeners".to_string(), format!("PLAINTEXT://{host_port}"));
        self.listen = true;
        self
    }

    /// Opens the data directory and starts the node.
    pub fn start(self) -> Result<EmbeddedBroker> {
        EmbeddedBroker::launch(&self.props, self.listen)
    }
}

/// A running in-process broker.
pub struct EmbeddedBroker {
    broker: Arc<Broker>,
    addr: Option<SocketAddr>,
    server: Option<ServerHandle>,
    runtime: Option<tokio::runtime::Runtime>,
    stats: OpenStats,
}

impl EmbeddedBroker {
    /// Starts a broker from Kafka-named properties (`log.dirs`, `listeners`, ...). Use
    /// `listeners=PLAINTEXT://127.0.0.1:0` for an ephemeral port.
    pub fn start(props: &BTreeMap<String, String>) -> Result<EmbeddedBroker> {
        EmbeddedBroker::launch(props, true)
    }

    fn launch(props: &BTreeMap<String, String>, listen: bool) -> Result<EmbeddedBroker> {
        let config = BrokerConfig::from_props(props)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-embedded")
            .enable_all()
            .build()
            .map_err(|e| Error::io("start runtime", "embedded broker", e))?;
        let (broker, stats) = Broker::open(config)?;
        let server = if listen {
            Some(runtime.block_on(server::start(broker.clone()))?)
        } else {
            None
        };
        broker.start_background_tasks()?;
        {
            let _runtime = runtime.enter();
            broker.spawn_group_maintenance();
            broker.spawn_transaction_maintenance();
        }
        Ok(EmbeddedBroker {
            addr: server.as_ref().map(ServerHandle::local_addr),
            broker,
            server,
            runtime: Some(runtime),
            stats,
        })
    }

    /// The address outside clients connect to, when the node listens.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// `host:port`, for `bootstrap.servers`, when the node listens.
    pub fn bootstrap(&self) -> Option<String> {
        self.addr.map(|addr| addr.to_string())
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// A client of this broker over in-memory connections (no TCP), with the same API as a
    /// network client. Call from a tokio runtime.
    pub async fn client(&self) -> Result<Arc<Client>> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("the embedded broker is stopped".into()))?;
        Client::embedded(
            self.broker.clone(),
            runtime.handle().clone(),
            ClientOptions::default(),
        )
        .await
    }

    /// What opening the data directory found.
    pub fn open_stats(&self) -> OpenStats {
        self.stats
    }

    /// Stops serving, flushes and closes the logs; the next start needs no recovery.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(runtime) = self.runtime.take() {
            if let Some(server) = self.server.take() {
                runtime.block_on(server.shutdown());
            }
            runtime.shutdown_background();
            return self.broker.shutdown();
        }
        Ok(())
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::error!(%err, "embedded broker did not shut down cleanly");
        }
    }
}
