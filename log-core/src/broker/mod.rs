//! A single Kafka-compatible broker: the topic registry and the log manager behind the request
//! handlers, and the TCP server that feeds them.
//!
//! Handlers take decoded requests and return responses (no sockets here); `server` is the only
//! part that touches the network.

mod admin;
pub mod config;
mod configs;
pub mod dynamic;
mod fetch;
mod groups;
mod produce;
pub mod producers;
pub mod server;
pub mod topics;
pub mod transactions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::ResponseError;
use parking_lot::RwLock;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::group::coordinator::{CoordinatorConfig, GroupCoordinator};
use crate::model::{validate_topic_name, TopicPartition};
use crate::protocol::{Reply, Request};
use crate::storage::manager::{LogManager, LogManagerConfig, OpenStats, SharedLog};
pub use config::{BrokerConfig, Listener};
use topics::{TopicMeta, TopicStore};

/// A broker-level failure with the Kafka error code clients get, and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The Kafka error.
    pub code: ResponseError,
    /// Why, for versions that carry a message.
    pub message: String,
}

impl ApiError {
    fn new(code: ResponseError, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// Kafka's words for a refused config: `Unknown topic config name: x`, or
/// `Invalid value v for configuration k: why`.
fn kafka_config_message(err: &Error) -> String {
    match err {
        Error::InvalidConfig { reason, .. } if reason.starts_with("Unknown ") => reason.clone(),
        Error::InvalidConfig { key, value, reason } => {
            format!("Invalid value {value} for configuration {key}: {reason}")
        }
        other => other.to_string(),
    }
}

/// The broker settings in force, by precedence: static ones, then the cluster-wide dynamic
/// defaults, then this broker's own dynamic values.
fn merge_dynamic(
    explicit: &BTreeMap<String, String>,
    cluster: &BTreeMap<String, String>,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = explicit.clone();
    merged.extend(cluster.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

impl From<Error> for ApiError {
    fn from(err: Error) -> ApiError {
        ApiError {
            code: err.response_error(),
            message: err.to_string(),
        }
    }
}

/// One node: its configuration, topics and logs.
pub struct Broker {
    config: BrokerConfig,
    logs: Arc<LogManager>,
    topics: RwLock<TopicStore>,
    /// Woken after every append, so that waiting fetches re-check.
    appended: Notify,
    /// Where clients are told to connect, fixed once the listener is bound.
    advertised: RwLock<Listener>,
    /// Consumer groups and their committed offsets.
    groups: Arc<GroupCoordinator>,
    /// Ids for idempotent producers.
    producer_ids: producers::ProducerIdManager,
    /// Transactional ids and their transactions.
    transactions: transactions::TransactionCoordinator,
}

impl Broker {
    /// Opens the data directories (recovering if needed) and the topic registry.
    pub fn open(config: BrokerConfig) -> Result<(Arc<Broker>, OpenStats)> {
        let first_dir = config.log_dirs[0].clone();
        std::fs::create_dir_all(&first_dir)
            .map_err(|e| Error::io("create data directory", &first_dir, e))?;
        let store = TopicStore::load(&first_dir)?;
        let overrides = store
            .topics()
            .iter()
            .map(|(name, meta)| (name.clone(), meta.configs.clone()))
            .collect();
        let mut log_config = LogManagerConfig::new(&first_dir);
        log_config.log_dirs = config.log_dirs.clone();
        log_config.defaults = {
            let (own, cluster) = store.dynamic_broker_configs();
            let merged = merge_dynamic(&config.explicit, cluster, own);
            LogConfig::from_broker_props(&merged).unwrap_or_else(|err| {
                // A dynamic value this version refuses is not worth refusing to start over.
                tracing::warn!(%err, "ignoring the dynamic log configs; using the static ones");
                config.log_defaults.clone()
            })
        };
        log_config.retention_check_interval =
            Duration::from_millis(config.log_retention_check_interval_ms);
        log_config.cleaner_enable = config.log_cleaner_enable;
        log_config.producer_id_expiration = Duration::from_millis(config.producer_id_expiration_ms);
        let (logs, stats) = LogManager::open(log_config, overrides)?;
        // Partitions the registry lists but the disk lacks (a crash between the two) are created.
        for (name, meta) in store.topics() {
            for partition in 0..meta.partitions {
                let tp = TopicPartition::new(name, partition);
                if logs.get(&tp).is_none() {
                    logs.create(tp)?;
                }
            }
        }
        // One replica: everything in the log is committed.
        for tp in logs.partitions() {
            if let Some(log) = logs.get(&tp) {
                let mut log = log.lock();
                let end = log.log_end_offset();
                log.set_high_watermark(end);
            }
        }
        let advertised = config
            .advertised_listener
            .clone()
            .unwrap_or_else(|| config.listener.clone());
        let groups = GroupCoordinator::new(CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
        });
        let broker = Broker {
            config,
            logs,
            topics: RwLock::new(store),
            appended: Notify::new(),
            advertised: RwLock::new(advertised),
            groups,
            producer_ids: producers::ProducerIdManager::open(&first_dir)?,
            transactions: transactions::TransactionCoordinator::default(),
        };
        let n_records = broker.load_groups()?;
        if n_records > 0 {
            tracing::info!(
                records = n_records,
                "loaded consumer groups from __consumer_offsets"
            );
        }
        let n_records = broker.load_transactions()?;
        if n_records > 0 {
            tracing::info!(
                records = n_records,
                "loaded transactional ids from __transaction_state"
            );
        }
        Ok((Arc::new(broker), stats))
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The log manager.
    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> String {
        self.topics.read().cluster_id().to_string()
    }

    /// Starts retention, flushing and cleaning in the background.
    pub fn start_background_tasks(&self) -> Result<()> {
        self.logs.start_background_tasks()
    }

    /// Flushes and closes every log; the next open needs no recovery.
    pub fn shutdown(&self) -> Result<()> {
        self.logs.shutdown()
    }

    pub(crate) fn set_bound_port(&self, port: u16) {
        let mut advertised = self.advertised.write();
        if self.config.advertised_listener.is_none() || advertised.port == 0 {
            advertised.port = port;
        }
    }

    fn advertised(&self) -> Listener {
        self.advertised.read().clone()
    }

    /// The log of a partition, if the topic and partition exist.
    fn log(&self, topic: &str, partition: i32) -> Option<SharedLog> {
        self.logs.get(&TopicPartition::new(topic, partition))
    }

    fn topic_meta(&self, name: &str) -> Option<TopicMeta> {
        self.topics.read().get(name).cloned()
    }

    fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
        self.topics.read().name_of(id).map(str::to_string)
    }

    /// Creates a topic: validates name, partitions, replication factor and configs as Kafka does,
    /// then creates its partition logs and records it in the registry.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, ApiError> {
        validate_topic_name(name)
            .map_err(|e| ApiError::new(ResponseError::InvalidTopicException, e.to_string()))?;
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions must be larger than 0, got {partitions}."),
            ));
        }
        let replication_factor = if replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        if replication_factor <= 0 {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        if replication_factor > 1 {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only 1 broker(s) are registered."),
            ));
        }
        self.logs
            .defaults()
            .with_overrides(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| ApiError::new(ResponseError::InvalidConfig, kafka_config_message(&e)))?;
        let mut topics = self.topics.write();
        if topics.get(name).is_some() {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        // Kafka forbids topics whose names collide once '.' and '_' are treated alike (metrics).
        let normalized = name.replace('.', "_");
        if let Some(other) = topics
            .topics()
            .keys()
            .find(|other| other.replace('.', "_") == normalized)
        {
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ));
        }
        let meta = TopicMeta {
            id: Uuid::new_v4(),
            partitions,
            configs: configs.clone(),
        };
        if validate_only {
            return Ok(meta);
        }
        self.logs.set_topic_config(name, configs)?;
        for partition in 0..partitions {
            self.logs.create(TopicPartition::new(name, partition))?;
        }
        topics.put(name, meta.clone())?;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(meta)
    }

    /// This broker's dynamic configs and the cluster-wide dynamic defaults (KIP-226).
    pub fn dynamic_broker_configs(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let topics = self.topics.read();
        let (own, cluster) = topics.dynamic_broker_configs();
        (own.clone(), cluster.clone())
    }

    /// Replaces the dynamic configs of this broker (`target` Broker) or of the cluster default,
    /// after checking them as Kafka does; the log defaults among them apply at once to every
    /// topic without an override of its own.
    pub fn set_dynamic_broker_configs(
        &self,
        target: dynamic::Target,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        dynamic::check(&configs, target)?;
        let mut topics = self.topics.write();
        let (own, cluster) = topics.dynamic_broker_configs();
        let cluster_default = target == dynamic::Target::ClusterDefault;
        let merged = if cluster_default {
            merge_dynamic(&self.config.explicit, &configs, own)
        } else {
            merge_dynamic(&self.config.explicit, cluster, &configs)
        };
        let defaults = LogConfig::from_broker_props(&merged).map_err(|err| {
            ApiError::new(ResponseError::InvalidRequest, kafka_config_message(&err))
        })?;
        if validate_only {
            return Ok(());
        }
        topics.set_dynamic_broker_configs(cluster_default, configs)?;
        self.logs.set_defaults(defaults);
        tracing::info!(cluster_default, "changed dynamic broker configs");
        Ok(())
    }

    /// Replaces a topic's config overrides after validating them.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        self.logs
            .defaults()
            .with_overrides(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| ApiError::new(ResponseError::InvalidConfig, kafka_config_message(&e)))?;
        let mut topics = self.topics.write();
        let mut meta = topics.get(name).cloned().ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic {name} does not exist."),
            )
        })?;
        if validate_only {
            return Ok(());
        }
        self.logs.set_topic_config(name, configs.clone())?;
        meta.configs = configs;
        topics.put(name, meta)?;
        tracing::info!(topic = name, "changed topic configs");
        Ok(())
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let mut topics = self.topics.write();
        let mut meta = topics.get(name).cloned().ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic {name} does not exist."),
            )
        })?;
        if count < meta.partitions {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Topic currently has {} partitions, which is higher than the requested {count}.", meta.partitions),
            ));
        }
        if count == meta.partitions {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {count} partitions."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        for partition in meta.partitions..count {
            self.logs.create(TopicPartition::new(name, partition))?;
        }
        meta.partitions = count;
        topics.put(name, meta)?;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Deletes a topic and its logs (when `delete.topic.enable`).
    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, ApiError> {
        if !self.config.delete_topic_enable {
            return Err(ApiError::new(
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled.",
            ));
        }
        let mut topics = self.topics.write();
        let meta = topics.remove(name)?.ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            )
        })?;
        for partition in 0..meta.partitions {
            match self.logs.delete(&TopicPartition::new(name, partition)) {
                Ok(()) | Err(Error::UnknownPartition(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.logs.forget_topic(name);
        tracing::info!(topic = name, "deleted topic");
        Ok(meta)
    }

    /// Handles one request.
    pub async fn handle(&self, request: Request) -> Reply {
        let version = request.header.request_api_version;
        Reply::Respond(Box::new(match request.body {
            RequestKind::ApiVersions(req) => {
                ResponseKind::ApiVersions(admin::api_versions(&req, version))
            }
            RequestKind::Metadata(req) => {
                ResponseKind::Metadata(admin::metadata(self, req, version))
            }
            RequestKind::CreateTopics(req) => {
                ResponseKind::CreateTopics(admin::create_topics(self, req, version))
            }
            RequestKind::DeleteTopics(req) => {
                ResponseKind::DeleteTopics(admin::delete_topics(self, req, version))
            }
            RequestKind::Produce(req) => match produce::produce(self, req, version) {
                Some(response) => ResponseKind::Produce(response),
                None => return Reply::Nothing,
            },
            RequestKind::Fetch(req) => ResponseKind::Fetch(fetch::fetch(self, req, version).await),
            RequestKind::OffsetForLeaderEpoch(req) => ResponseKind::OffsetForLeaderEpoch(
                fetch::offset_for_leader_epoch(self, req, version),
            ),
            RequestKind::DescribeConfigs(req) => {
                ResponseKind::DescribeConfigs(configs::describe_configs(self, req, version))
            }
            RequestKind::AlterConfigs(req) => {
                ResponseKind::AlterConfigs(configs::alter_configs(self, req, version))
            }
            RequestKind::IncrementalAlterConfigs(req) => ResponseKind::IncrementalAlterConfigs(
                configs::incremental_alter_configs(self, req, version),
            ),
            RequestKind::CreatePartitions(req) => {
                ResponseKind::CreatePartitions(configs::create_partitions(self, req, version))
            }
            RequestKind::DescribeCluster(req) => {
                ResponseKind::DescribeCluster(admin::describe_cluster(self, req, version))
            }
            RequestKind::FindCoordinator(req) => ResponseKind::FindCoordinator(groups::find_coordinator(self, req, version)),
            RequestKind::JoinGroup(req) => {
                let client_id = request.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
                ResponseKind::JoinGroup(groups::join_group(self, req, version, &client_id, &request.client_host).await)
            }
            RequestKind::SyncGroup(req) => ResponseKind::SyncGroup(groups::sync_group(self, req, version).await),
            RequestKind::Heartbeat(req) => ResponseKind::Heartbeat(groups::heartbeat(self, req)),
            RequestKind::LeaveGroup(req) => ResponseKind::LeaveGroup(groups::leave_group(self, req, version)),
            RequestKind::OffsetCommit(req) => ResponseKind::OffsetCommit(groups::offset_commit(self, req, version)),
            RequestKind::OffsetFetch(req) => ResponseKind::OffsetFetch(groups::offset_fetch(self, req, version)),
            RequestKind::ListGroups(req) => ResponseKind::ListGroups(groups::list_groups(self, req, version)),
            RequestKind::DescribeGroups(req) => ResponseKind::DescribeGroups(groups::describe_groups(self, req, version)),
            RequestKind::OffsetDelete(req) => ResponseKind::OffsetDelete(groups::offset_delete(self, req)),
            RequestKind::DeleteGroups(req) => ResponseKind::DeleteGroups(groups::delete_groups(self, req)),
            RequestKind::DeleteRecords(req) => {
                ResponseKind::DeleteRecords(admin::delete_records(self, req))
            }
            RequestKind::InitProducerId(req) => ResponseKind::InitProducerId(
                match req.transactional_id.as_deref().filter(|id| !id.is_empty()) {
                    Some(id) => transactions::init_transactional_producer(self, &req, version, id),
                    None => producers::init_producer_id(&self.producer_ids, &req),
                },
            ),
            RequestKind::AddPartitionsToTxn(req) => ResponseKind::AddPartitionsToTxn(
                transactions::add_partitions_to_txn(self, req, version),
            ),
            RequestKind::AddOffsetsToTxn(req) => {
                ResponseKind::AddOffsetsToTxn(transactions::add_offsets_to_txn(self, req))
            }
            RequestKind::EndTxn(req) => ResponseKind::EndTxn(transactions::end_txn(self, req, version)),
            RequestKind::TxnOffsetCommit(req) => ResponseKind::TxnOffsetCommit(
                transactions::txn_offset_commit(self, req, version),
            ),
            RequestKind::WriteTxnMarkers(req) => {
                ResponseKind::WriteTxnMarkers(transactions::write_txn_markers(self, req))
            }
            RequestKind::DescribeTransactions(req) => ResponseKind::DescribeTransactions(
                transactions::describe_transactions(self, req),
            ),
            RequestKind::DescribeProducers(req) => {
                ResponseKind::DescribeProducers(producers::describe_producers(self, req))
            }
            RequestKind::ListTransactions(req) => {
                ResponseKind::ListTransactions(transactions::list_transactions(self, req))
            }
            RequestKind::ElectLeaders(req) => {
                ResponseKind::ElectLeaders(admin::elect_leaders(self, req, version))
            }
            RequestKind::ListOffsets(req) => {
                ResponseKind::ListOffsets(fetch::list_offsets(self, req, version))
            }
            other => match admin::unsupported(other, version) {
                Some(response) => response,
                None => {
                    return Reply::Close(format!(
                        "{:?} is not served by this broker and its response has no error code to say so",
                        request.api_key
                    ))
                }
            },
        }))
    }
}
