//! A Kafka-protocol client: it works against Sluice and any Kafka-compatible cluster. This is the
//! base the `sluice` command-line tools stand on: a [`Client`] (bootstrap, metadata, one
//! connection per broker, admin requests), a batching [`producer::Producer`] and an
//! assignment-based [`consumer::Consumer`], with consumer groups on top
//! ([`group_consumer::GroupConsumer`], [`membership::GroupMembership`], the admin calls of
//! [`groups`]). Over TCP, or in-process to a broker in this process ([`direct`]).

pub mod admin;
pub mod assignors;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod direct;
pub mod group_consumer;
pub mod groups;
pub mod membership;
pub mod partitioner;
pub mod producer;
pub mod transactions;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::RwLock;

pub use connection::Connection;
pub use direct::{InProcess, RequestHandler};

use crate::error::{Error, Result};

/// Client settings (Kafka's names in the docs).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `client.id`.
    pub client_id: String,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: "sluice".into(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What the client knows of a topic.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    /// Leader node of each partition, by partition index.
    pub leaders: Vec<i32>,
}

/// A connection pool over a cluster, with its metadata.
///
/// Kafka answers the requests of one connection in order, so a consumer's long-polling fetch
/// holds back every other request on that connection: give a producer and a consumer each their
/// own `Client`, as the Java clients do.
pub struct Client {
    options: ClientOptions,
    bootstrap: Vec<String>,
    brokers: RwLock<HashMap<i32, String>>,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    topics: RwLock<HashMap<String, TopicInfo>>,
    /// Set for a client of an in-process broker: connections are in-memory pipes, not TCP.
    in_process: Option<InProcess>,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A topic to create: name, partitions and replication factor (-1 for the broker's defaults),
/// and config overrides.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partitions, or -1 for `num.partitions`.
    pub partitions: i32,
    /// Replication factor, or -1 for `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs with Kafka's names.
    pub configs: BTreeMap<String, String>,
}

impl Client {
    /// Connects to the first reachable server of a comma-separated bootstrap list.
    pub async fn connect(bootstrap_servers: &str, options: ClientOptions) -> Result<Arc<Client>> {
        let bootstrap: Vec<String> = bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if bootstrap.is_empty() {
            return Err(Error::InvalidArgument("bootstrap.servers is empty".into()));
        }
        let client = Arc::new(Client {
            options,
            bootstrap,
            brokers: RwLock::new(HashMap::new()),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            topics: RwLock::new(HashMap::new()),
            in_process: None,
        });
        client.bootstrap_connection().await?;
        Ok(client)
    }

    /// A client of a broker in this process: the same API, with requests handed to the
    /// broker's handlers as values (no TCP, no encoding). `Client::embedded` makes one for
    /// Sluice's broker.
    pub async fn in_process(broker: InProcess, options: ClientOptions) -> Result<Arc<Client>> {
        let client = Arc::new(Client {
            options,
            bootstrap: vec!["in-process".to_string()],
            brokers: RwLock::new(HashMap::new()),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            topics: RwLock::new(HashMap::new()),
            in_process: Some(broker),
        });
        client.bootstrap_connection().await?;
        Ok(client)
    }

    /// Another client of the same cluster (the same bootstrap servers, or the same in-process
    /// broker) with the same options, but connections and metadata of its own: for a role whose
    /// requests must not queue behind another role's long polls (a consumer's fetches and a
    /// producer's sends, as the Java clients keep them apart).
    pub async fn sibling(&self) -> Result<Arc<Client>> {
        match &self.in_process {
            Some(broker) => Client::in_process(broker.clone(), self.options.clone()).await,
            None => Client::connect(&self.bootstrap.join(","), self.options.clone()).await,
        }
    }

    /// Opens a new (unpooled) connection to `addr`: over TCP or, for an embedded client,
    /// straight to the in-process broker's handlers.
    async fn open_connection(&self, addr: &str) -> Result<Connection> {
        match &self.in_process {
            Some(broker) => {
                Connection::direct(
                    broker,
                    addr,
                    &self.options.client_id,
                    self.options.request_timeout,
                )
                .await
            }
            None => {
                Connection::connect(addr, &self.options.client_id, self.options.request_timeout)
                    .await
            }
        }
    }

    /// A connection to any broker: a known one, else a bootstrap server.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        if let Some(connection) = self.connections.lock().await.values().next().cloned() {
            return Ok(connection);
        }
        self.bootstrap_connection().await
    }

    async fn bootstrap_connection(&self) -> Result<Arc<Connection>> {
        let mut last_error = None;
        for addr in &self.bootstrap {
            match self.connection_to(addr).await {
                Ok(connection) => return Ok(connection),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::InvalidArgument("no bootstrap server".into())))
    }

    async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(addr) {
            return Ok(connection.clone());
        }
        let connection = Arc::new(self.open_connection(addr).await?);
        connections.insert(addr.to_string(), connection.clone());
        Ok(connection)
    }

    /// Forgets a broken connection so that the next request reconnects.
    pub async fn drop_connection(&self, addr: &str) {
        self.connections.lock().await.remove(addr);
    }

    /// A connection of its own (not pooled) to the coordinator of `group`.
    pub async fn dedicated_group_connection(&self, group: &str) -> Result<Arc<Connection>> {
        let pooled = self.group_coordinator(group).await?;
        let connection = self.open_connection(pooled.addr()).await?;
        Ok(Arc::new(connection))
    }

    /// A connection to broker `node_id` (from metadata).
    pub async fn connection_for_node(&self, node_id: i32) -> Result<Arc<Connection>> {
        let addr = self.brokers.read().get(&node_id).cloned();
        match addr {
            Some(addr) => self.connection_to(&addr).await,
            None => {
                self.metadata(None, false).await?;
                let addr = self.brokers.read().get(&node_id).cloned().ok_or_else(|| {
                    Error::Protocol(format!("broker {node_id} is not in the cluster metadata"))
                })?;
                self.connection_to(&addr).await
            }
        }
    }

    /// Fetches metadata for `topics` (all topics if None), creating missing topics if
    /// `allow_auto_create` and the broker allows it; caches brokers and partition leaders.
    pub async fn metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_create: bool,
    ) -> Result<MetadataResponse> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default().with_name(Some(TopicName(str_bytes(name))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_auto_create);
        let connection = self.any_connection().await?;
        let response = connection.send(&request).await?;
        {
            let mut brokers = self.brokers.write();
            for broker in &response.brokers {
                brokers.insert(broker.node_id.0, format!("{}:{}", broker.host, broker.port));
            }
        }
        let mut cache = self.topics.write();
        for topic in &response.topics {
            let Some(name) = &topic.name else { continue };
            if topic.error_code != 0 {
                cache.remove(name.0.as_str());
                continue;
            }
            let mut leaders = vec![-1; topic.partitions.len()];
            for partition in &topic.partitions {
                if let Some(slot) = leaders.get_mut(partition.partition_index as usize) {
                    *slot = partition.leader_id.0;
                }
            }
            cache.insert(name.0.to_string(), TopicInfo { leaders });
        }
        Ok(response)
    }

    /// Partition leaders of `topic`, from the cache or a metadata request (which may auto-create
    /// the topic when `allow_auto_create`).
    pub async fn topic(&self, topic: &str, allow_auto_create: bool) -> Result<TopicInfo> {
        if let Some(info) = self.topics.read().get(topic).cloned() {
            return Ok(info);
        }
        let response = self
            .metadata(Some(&[topic.to_string()]), allow_auto_create)
            .await?;
        if let Some(found) = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        {
            if let Some(err) = Error::from_code(found.error_code, None) {
                return Err(err);
            }
        }
        self.topics
            .read()
            .get(topic)
            .cloned()
            .ok_or_else(|| Error::Broker {
                code: kafka_protocol::ResponseError::UnknownTopicOrPartition,
                message: format!("topic {topic} does not exist"),
            })
    }

    /// The cached partition count of `topic`, without a request.
    pub fn cached_partition_count(&self, topic: &str) -> Option<usize> {
        self.topics.read().get(topic).map(|info| info.leaders.len())
    }

    /// Forgets cached metadata of `topic` (after an error that suggests it changed).
    pub fn invalidate_topic(&self, topic: &str) {
        self.topics.write().remove(topic);
    }

    /// A connection to the leader of a partition.
    pub async fn leader_connection(&self, topic: &str, partition: i32) -> Result<Arc<Connection>> {
        let info = self.topic(topic, false).await?;
        let leader = *info
            .leaders
            .get(partition as usize)
            .ok_or_else(|| Error::Broker {
                code: kafka_protocol::ResponseError::UnknownTopicOrPartition,
                message: format!("topic {topic} has no partition {partition}"),
            })?;
        if leader < 0 {
            return Err(Error::Broker {
                code: kafka_protocol::ResponseError::LeaderNotAvailable,
                message: format!("{topic}-{partition} has no leader"),
            });
        }
        self.connection_for_node(leader).await
    }

    /// The controller, where admin requests go.
    pub async fn controller_connection(&self) -> Result<Arc<Connection>> {
        let metadata = self.metadata(Some(&[]), false).await?;
        if metadata.controller_id.0 >= 0 {
            self.connection_for_node(metadata.controller_id.0).await
        } else {
            self.any_connection().await
        }
    }

    /// Creates topics; the result of each, in order.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let request = CreateTopicsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|topic| {
                        CreatableTopic::default()
                            .with_name(TopicName(str_bytes(&topic.name)))
                            .with_num_partitions(topic.partitions)
                            .with_replication_factor(topic.replication_factor)
                            .with_configs(
                                topic
                                    .configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(str_bytes(k))
                                            .with_value(Some(str_bytes(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_timeout_ms(self.options.request_timeout.as_millis() as i32)
            .with_validate_only(validate_only);
        let response = self.controller_connection().await?.send(&request).await?;
        let results: Vec<(String, Result<()>)> = response
            .topics
            .into_iter()
            .map(|t| {
                let result = match Error::from_code(t.error_code, t.error_message.as_deref()) {
                    Some(err) => Err(err),
                    None => Ok(()),
                };
                (t.name.0.to_string(), result)
            })
            .collect();
        if !validate_only {
            let created: Vec<String> = results
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(name, _)| name.clone())
                .collect();
            self.await_topics_ready(&created).await?;
        }
        Ok(results)
    }

    /// Waits (up to `request.timeout.ms`) until the metadata shows every topic of `names` with
    /// a leader for each partition. On a Kafka cluster a topic reaches the brokers' metadata a
    /// moment after CreateTopics answers, and a client that uses it at once gets
    /// UNKNOWN_TOPIC_OR_PARTITION; Sluice's node answers after that point already.
    async fn await_topics_ready(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.options.request_timeout;
        loop {
            let metadata = self.metadata(Some(names), false).await?;
            let ready = names.iter().all(|name| {
                metadata.topics.iter().any(|t| {
                    t.name.as_ref().is_some_and(|n| n.0.as_str() == name)
                        && t.error_code == 0
                        && !t.partitions.is_empty()
                        && t.partitions.iter().all(|p| p.leader_id.0 >= 0)
                })
            });
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the metadata of the new topics {names:?}"),
                    after_ms: self.options.request_timeout.as_millis() as u64,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes topics by name; the result of each.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let connection = self.controller_connection().await?;
        let version = connection.version_for(kafka_protocol::messages::ApiKey::DeleteTopics)?;
        let request = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(
                names
                    .iter()
                    .map(|n| {
                        kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                            .with_name(Some(TopicName(str_bytes(n))))
                    })
                    .collect(),
            )
        } else {
            DeleteTopicsRequest::default()
                .with_topic_names(names.iter().map(|n| TopicName(str_bytes(n))).collect())
        }
        .with_timeout_ms(self.options.request_timeout.as_millis() as i32);
        let response = connection.send(&request).await?;
        for name in names {
            self.invalidate_topic(name);
        }
        Ok(response
            .responses
            .into_iter()
            .map(|r| {
                let result = match Error::from_code(r.error_code, r.error_message.as_deref()) {
                    Some(err) => Err(err),
                    None => Ok(()),
                };
                (r.name.map(|n| n.0.to_string()).unwrap_or_default(), result)
            })
            .collect())
    }

    /// The earliest (-2), latest (-1) or first-at-timestamp offset of a partition. Retriable
    /// errors (a leader not known yet, as on a Kafka cluster just after the topic was created)
    /// are retried with fresh metadata every 100 ms for up to `request.timeout.ms`, as Kafka's
    /// clients do.
    pub async fn list_offset(&self, topic: &str, partition: i32, timestamp: i64) -> Result<i64> {
        self.list_offset_isolated(topic, partition, timestamp, 0)
            .await
    }

    /// [`Client::list_offset`] under an isolation level: 1 (read_committed) answers the last
    /// stable offset for latest (-1).
    pub async fn list_offset_isolated(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<i64> {
        let deadline = tokio::time::Instant::now() + self.options.request_timeout;
        loop {
            match self
                .list_offset_once(topic, partition, timestamp, isolation_level)
                .await
            {
                Err(Error::Broker { code, .. })
                    if code.is_retriable() && tokio::time::Instant::now() < deadline =>
                {
                    self.invalidate_topic(topic);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn list_offset_once(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<i64> {
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        let request = kafka_protocol::messages::ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation_level)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let response = self
            .leader_connection(topic, partition)
            .await?
            .send(&request)
            .await?;
        let found = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| Error::Protocol("empty ListOffsets response".into()))?;
        if let Some(err) = Error::from_code(found.error_code, None) {
            return Err(err);
        }
        Ok(found.offset)
    }
}
