//! A broker running inside the current process, on its own tokio runtime: for tests, examples
//! and programs that want a node without a server to install. Stops cleanly when dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::server::{self, ServerHandle};
use super::{Broker, BrokerConfig};
use crate::error::{Error, Result};
use crate::storage::manager::OpenStats;

/// A running in-process broker.
pub struct EmbeddedBroker {
    broker: Arc<Broker>,
    addr: SocketAddr,
    server: Option<ServerHandle>,
    runtime: Option<tokio::runtime::Runtime>,
    stats: OpenStats,
}

impl EmbeddedBroker {
    /// Starts a broker from Kafka-named properties (`log.dirs`, `listeners`, ...). Use
    /// `listeners=PLAINTEXT://127.0.0.1:0` for an ephemeral port.
    pub fn start(props: &BTreeMap<String, String>) -> Result<EmbeddedBroker> {
        let config = BrokerConfig::from_props(props)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-embedded")
            .enable_all()
            .build()
            .map_err(|e| Error::io("start runtime", "embedded broker", e))?;
        let (broker, stats) = Broker::open(config)?;
        let server = runtime.block_on(server::start(broker.clone()))?;
        broker.start_background_tasks()?;
        Ok(EmbeddedBroker {
            addr: server.local_addr(),
            broker,
            server: Some(server),
            runtime: Some(runtime),
            stats,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// A client of this broker over in-memory connections (no TCP), with the same API as a
    /// network client. Call from a tokio runtime.
    pub async fn client(&self) -> Result<Arc<crate::client::Client>> {
        let runtime = self.runtime.as_ref().ok_or_else(|| {
            crate::error::Error::InvalidArgument("the embedded broker is stopped".into())
        })?;
        crate::client::Client::embedded(
            self.broker.clone(),
            runtime.handle().clone(),
            crate::client::ClientOptions::default(),
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
        if let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.take()) {
            runtime.block_on(server.shutdown());
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
