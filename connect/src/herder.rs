//! What the REST API asks of a worker, standalone or distributed (Kafka Connect's `Herder`):
//! the standalone [`Worker`] answers from what it runs; a distributed worker from the
//! configs and statuses its group shares.

use std::sync::Arc;

use sluice_log::client::Client;

use crate::connector::{BoxFuture, Props};
use crate::data::Value;
use crate::error::Result;
use crate::worker::{ConfigInfos, ConnectorInfo, ConnectorStatus, Plugins, Worker};

/// The operations of Kafka Connect's REST API.
pub trait Herder: Send + Sync {
    /// How statuses name this worker (its REST `host:port`).
    fn worker_id(&self) -> String;
    /// Where config writes go when this worker is not the one to make them: the group
    /// leader's REST URL (a standalone worker writes its own).
    fn leader_url(&self) -> Option<String> {
        None
    }
    /// The cluster the worker works on.
    fn client(&self) -> &Arc<Client>;
    /// The connector classes it runs.
    fn plugins(&self) -> &Plugins;
    /// Checks a config against a connector class.
    fn validate(&self, plugin: &str, props: &Props) -> Result<ConfigInfos>;
    /// The connectors' names.
    fn connectors(&self) -> BoxFuture<'_, Vec<String>>;
    /// A connector's config, task count and type.
    fn connector_info<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ConnectorInfo>>;
    /// A connector's config.
    fn connector_config<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<Props>>;
    /// Its tasks' configs.
    fn task_configs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<Vec<Props>>>;
    /// Its status and its tasks'.
    fn status<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ConnectorStatus>>;
    /// Creates a connector (409 if it exists).
    fn create_connector<'a>(
        &'a self,
        name: &'a str,
        props: Props,
    ) -> BoxFuture<'a, Result<ConnectorInfo>>;
    /// Creates or reconfigures a connector; true when created.
    fn put_connector_config<'a>(
        &'a self,
        name: &'a str,
        props: Props,
    ) -> BoxFuture<'a, Result<(bool, ConnectorInfo)>>;
    /// Deletes a connector.
    fn delete_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The topics a connector has used (KIP-558).
    fn connector_topics<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>>>;
    /// Forgets the topics a connector has used.
    fn reset_connector_topics<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Pauses a connector.
    fn pause_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Resumes a paused or stopped connector.
    fn resume_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Stops a connector (KIP-875).
    fn stop_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Restarts a connector and, as asked, its tasks.
    fn restart_connector<'a>(
        &'a self,
        name: &'a str,
        include_tasks: bool,
        only_failed: bool,
    ) -> BoxFuture<'a, Result<ConnectorStatus>>;
    /// Restarts one task.
    fn restart_task<'a>(&'a self, name: &'a str, task: usize) -> BoxFuture<'a, Result<()>>;
    /// A connector's offsets.
    fn connector_offsets<'a>(&'a self, name: &'a str)
        -> BoxFuture<'a, Result<Vec<(Value, Value)>>>;
    /// Alters a stopped connector's offsets.
    fn alter_offsets<'a>(
        &'a self,
        name: &'a str,
        offsets: Vec<(Value, Value)>,
    ) -> BoxFuture<'a, Result<()>>;
    /// Forgets a stopped connector's offsets.
    fn reset_offsets<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;
}

impl Herder for Worker {
    fn worker_id(&self) -> String {
        Worker::worker_id(self)
    }
    fn client(&self) -> &Arc<Client> {
        Worker::client(self)
    }
    fn plugins(&self) -> &Plugins {
        Worker::plugins(self)
    }
    fn validate(&self, plugin: &str, props: &Props) -> Result<ConfigInfos> {
        Worker::validate(self, plugin, props)
    }
    fn connectors(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(Worker::connectors(self))
    }
    fn connector_info<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ConnectorInfo>> {
        Box::pin(Worker::connector_info(self, name))
    }
    fn connector_config<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<Props>> {
        Box::pin(Worker::connector_config(self, name))
    }
    fn task_configs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<Vec<Props>>> {
        Box::pin(Worker::task_configs(self, name))
    }
    fn status<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ConnectorStatus>> {
        Box::pin(Worker::status(self, name))
    }
    fn create_connector<'a>(
        &'a self,
        name: &'a str,
        props: Props,
    ) -> BoxFuture<'a, Result<ConnectorInfo>> {
        Box::pin(Worker::create_connector(self, name, props))
    }
    fn put_connector_config<'a>(
        &'a self,
        name: &'a str,
        props: Props,
    ) -> BoxFuture<'a, Result<(bool, ConnectorInfo)>> {
        Box::pin(Worker::put_connector_config(self, name, props))
    }
    fn delete_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            Worker::delete_connector(self, name).await?;
            // Deleted for good (a standalone worker's connectors move nowhere): its topics go.
            self.active_topics().reset(name);
            Ok(())
        })
    }
    fn connector_topics<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(Worker::connector_topics(self, name))
    }
    fn reset_connector_topics<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(Worker::reset_connector_topics(self, name))
    }
    fn pause_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(Worker::pause_connector(self, name))
    }
    fn resume_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(Worker::resume_connector(self, name))
    }
    fn stop_connector<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(Worker::stop_connector(self, name))
    }
    fn restart_connector<'a>(
        &'a self,
        name: &'a str,
        include_tasks: bool,
        only_failed: bool,
    ) -> BoxFuture<'a, Result<ConnectorStatus>> {
        Box::pin(Worker::restart_connector(
            self,
            name,
            include_tasks,
            only_failed,
        ))
    }
    fn restart_task<'a>(&'a self, name: &'a str, task: usize) -> BoxFuture<'a, Result<()>> {
        Box::pin(Worker::restart_task(self, name, task))
    }
    fn connector_offsets<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(Value, Value)>>> {
        Box::pin(Worker::connector_offsets(self, name))
    }
    fn alter_offsets<'a>(
        &'a self,
        name: &'a str,
        offsets: Vec<(Value, Value)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(Worker::alter_offsets(self, name, offsets))
    }
    fn reset_offsets<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(Worker::reset_offsets(self, name))
    }
}
