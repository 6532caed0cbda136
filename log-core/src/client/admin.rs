//! Admin calls beyond creating and deleting topics: describing topics and the cluster, adding
//! partitions, and reading and changing configs (Kafka's `Admin` interface, as typed values).

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, DeleteRecordsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Client;
use crate::error::{Error, Result};

/// What configs belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by node id (as a string, as Kafka names it).
    Broker(String),
}

impl ConfigResource {
    fn type_and_name(&self) -> (i8, &str) {
        match self {
            ConfigResource::Topic(name) => (2, name),
            ConfigResource::Broker(id) => (4, id),
        }
    }
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's name (`retention.ms`).
    pub name: String,
    /// Its value (None when sensitive or unset).
    pub value: Option<String>,
    /// Where the value comes from, Kafka's codes: 1 a topic override, 4 a static broker
    /// setting, 5 the default, ...
    pub source: i8,
    /// Whether it cannot be changed at runtime.
    pub read_only: bool,
}

/// A partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader node, -1 if none.
    pub leader: i32,
    /// Replica nodes.
    pub replicas: Vec<i32>,
    /// In-sync replica nodes.
    pub isr: Vec<i32>,
}

/// A described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Topic id.
    pub topic_id: String,
    /// Whether it is internal (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions, by index.
    pub partitions: Vec<PartitionDescription>,
}

/// The cluster as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id, if the cluster reports one.
    pub cluster_id: Option<String>,
    /// Controller node, -1 if unknown.
    pub controller: i32,
    /// Brokers: (node id, host, port), by node id.
    pub brokers: Vec<(i32, String, i32)>,
}

impl Client {
    /// Describes topics (all when `names` is None), sorted by name; a missing topic is an
    /// error naming it.
    pub async fn describe_topics(&self, names: Option<&[String]>) -> Result<Vec<TopicDescription>> {
        let metadata = self.metadata(names, false).await?;
        let mut topics = Vec::with_capacity(metadata.topics.len());
        for topic in metadata.topics {
            let name = topic.name.map(|n| n.0.to_string()).unwrap_or_default();
            if let Some(err) = Error::from_code(topic.error_code, None) {
                return Err(match err {
                    Error::Broker { code, .. } => Error::Broker {
                        code,
                        message: format!("describe topic {name}"),
                    },
                    other => other,
                });
            }
            let ids = |nodes: &[kafka_protocol::messages::BrokerId]| {
                nodes.iter().map(|n| n.0).collect::<Vec<i32>>()
            };
            let mut partitions: Vec<PartitionDescription> = topic
                .partitions
                .iter()
                .map(|p| PartitionDescription {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: ids(&p.replica_nodes),
                    isr: ids(&p.isr_nodes),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            topics.push(TopicDescription {
                name,
                topic_id: topic.topic_id.to_string(),
                internal: topic.is_internal,
                partitions,
            });
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// The cluster id, controller and brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let metadata = self.metadata(Some(&[]), false).await?;
        let mut brokers: Vec<(i32, String, i32)> = metadata
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect();
        brokers.sort();
        Ok(ClusterDescription {
            cluster_id: metadata.cluster_id.map(|id| id.to_string()),
            controller: metadata.controller_id.0,
            brokers,
        })
    }

    /// Grows a topic to `count` partitions (CreatePartitions; Kafka never shrinks one).
    pub async fn create_partitions(&self, topic: &str, count: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_count(count)
                // Null: the broker places the new partitions (an empty list is refused).
                .with_assignments(None)])
            .with_timeout_ms(self.options.request_timeout.as_millis() as i32);
        let response = self.controller_connection().await?.send(&request).await?;
        for result in response.results {
            if let Some(err) = Error::from_code(result.error_code, result.error_message.as_deref())
            {
                return Err(err);
            }
        }
        self.invalidate_topic(topic);
        Ok(())
    }

    /// Every config of a resource with its value and source (DescribeConfigs).
    pub async fn describe_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let (resource_type, name) = resource.type_and_name();
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configuration_keys(None),
        ]);
        let response = self.controller_connection().await?.send(&request).await?;
        let Some(result) = response.results.into_iter().next() else {
            return Err(Error::Protocol("empty DescribeConfigs response".into()));
        };
        if let Some(err) = Error::from_code(result.error_code, result.error_message.as_deref()) {
            return Err(err);
        }
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: c.config_source,
                read_only: c.read_only,
            })
            .collect())
    }

    /// Sets and removes configs of a resource (IncrementalAlterConfigs: the others stay).
    pub async fn alter_configs(
        &self,
        resource: &ConfigResource,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<()> {
        let (resource_type, name) = resource.type_and_name();
        let mut configs: Vec<AlterableConfig> = set
            .iter()
            .map(|(key, value)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.clone()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.clone())))
            })
            .collect();
        configs.extend(delete.iter().map(|key| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.trim().to_string()))
                .with_config_operation(1)
                .with_value(None)
        }));
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(configs),
        ]);
        let response = self.controller_connection().await?.send(&request).await?;
        for result in response.responses {
            if let Some(err) = Error::from_code(result.error_code, result.error_message.as_deref())
            {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Deletes the records of a partition below `offset` (-1: below the high watermark), as
    /// `Admin.deleteRecords` does; returns the partition's new low watermark (its log start
    /// offset).
    pub async fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> Result<i64> {
        let request = DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(offset)])])
            .with_timeout_ms(self.options.request_timeout.as_millis() as i32);
        let response = self
            .leader_connection(topic, partition)
            .await?
            .send(&request)
            .await?;
        let result = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| Error::Protocol("DeleteRecords answered no partition".into()))?;
        match Error::from_code(result.error_code, None) {
            Some(err) => Err(err),
            None => Ok(result.low_watermark),
        }
    }
}
