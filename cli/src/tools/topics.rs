//! `sluice topics create|list|describe|alter|delete`, as kafka-topics does them.

use std::collections::BTreeMap;

use anyhow::Context;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_log::client::{Client, NewTopic};
use sluice_log::Error;

use super::{parse_key_value, runtime, Connect};

#[derive(Debug, clap::Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    connect: Connect,
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicsCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long = "replication-factor")]
        replication_factor: Option<i16>,
        /// A topic config, e.g. `--config retention.ms=60000`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Do nothing if the topic already exists.
        #[arg(long = "if-not-exists")]
        if_not_exists: bool,
    },
    /// List topic names.
    List,
    /// Describe topics: partitions, leader, replicas, ISR and config overrides.
    Describe {
        /// Topic (default: all topics).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Add partitions and change configs.
    Alter {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// New (larger) partition count.
        #[arg(long)]
        partitions: Option<i32>,
        /// A config to set, `KEY=VALUE`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// A config override to remove (back to the default); repeatable.
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Do nothing if the topic does not exist.
        #[arg(long = "if-exists")]
        if_exists: bool,
    },
}

pub fn run(args: TopicsArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.client().await?;
        match args.command {
            TopicsCommand::Create {
                topic,
                partitions,
                replication_factor,
                configs,
                if_not_exists,
            } => {
                let configs = configs
                    .iter()
                    .map(|c| parse_key_value(c))
                    .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
                let new = NewTopic {
                    name: topic.clone(),
                    partitions: partitions.unwrap_or(-1),
                    replication_factor: replication_factor.unwrap_or(-1),
                    configs,
                };
                for (name, result) in client.create_topics(&[new], false).await? {
                    match result {
                        Ok(()) => println!("Created topic {name}."),
                        Err(Error::Broker {
                            code: kafka_protocol::ResponseError::TopicAlreadyExists,
                            ..
                        }) if if_not_exists => {}
                        Err(err) => {
                            return Err(
                                anyhow::Error::new(err).context(format!("create topic {name}"))
                            )
                        }
                    }
                }
            }
            TopicsCommand::List => {
                let metadata = client.metadata(None, false).await?;
                let mut names: Vec<String> = metadata
                    .topics
                    .iter()
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .collect();
                names.sort();
                for name in names {
                    println!("{name}");
                }
            }
            TopicsCommand::Describe { topic } => describe(&client, topic).await?,
            TopicsCommand::Alter {
                topic,
                partitions,
                configs,
                delete_configs,
            } => {
                anyhow::ensure!(
                    partitions.is_some() || !configs.is_empty() || !delete_configs.is_empty(),
                    "nothing to alter: give --partitions, --config or --delete-config"
                );
                if let Some(count) = partitions {
                    let request = CreatePartitionsRequest::default()
                        .with_topics(vec![CreatePartitionsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.clone())))
                            .with_count(count)])
                        .with_timeout_ms(30_000);
                    let response = client.controller_connection().await?.send(&request).await?;
                    for result in response.results {
                        if let Some(err) =
                            Error::from_code(result.error_code, result.error_message.as_deref())
                        {
                            return Err(anyhow::Error::new(err)
                                .context(format!("add partitions to {topic}")));
                        }
                    }
                    println!("Topic {topic} now has {count} partitions.");
                }
                if !configs.is_empty() || !delete_configs.is_empty() {
                    alter_configs(&client, 2, &topic, &configs, &delete_configs).await?;
                    println!("Updated configs of topic {topic}.");
                }
            }
            TopicsCommand::Delete { topic, if_exists } => {
                for (name, result) in client.delete_topics(std::slice::from_ref(&topic)).await? {
                    match result {
                        Ok(()) => println!("Deleted topic {name}."),
                        Err(Error::Broker {
                            code: kafka_protocol::ResponseError::UnknownTopicOrPartition,
                            ..
                        }) if if_exists => {}
                        Err(err) => {
                            return Err(
                                anyhow::Error::new(err).context(format!("delete topic {name}"))
                            )
                        }
                    }
                }
            }
        }
        Ok(())
    })
}

/// Sets and deletes configs of a resource (2 = topic, 4 = broker) with IncrementalAlterConfigs.
pub async fn alter_configs(
    client: &Client,
    resource_type: i8,
    name: &str,
    set: &[String],
    delete: &[String],
) -> anyhow::Result<()> {
    let mut configs = Vec::new();
    for item in set {
        for part in item.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = parse_key_value(part)?;
            configs.push(
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value))),
            );
        }
    }
    for key in delete {
        configs.push(
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.trim().to_string()))
                .with_config_operation(1)
                .with_value(None),
        );
    }
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs),
    ]);
    let response = client.controller_connection().await?.send(&request).await?;
    for result in response.responses {
        if let Some(err) = Error::from_code(result.error_code, result.error_message.as_deref()) {
            return Err(anyhow::Error::new(err).context(format!("alter configs of {name}")));
        }
    }
    Ok(())
}

/// Config entries of a resource: (name, value, source, is default).
pub async fn describe_configs(
    client: &Client,
    resource_type: i8,
    name: &str,
) -> anyhow::Result<Vec<(String, String, i8)>> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)]);
    let response = client.controller_connection().await?.send(&request).await?;
    let result = response
        .results
        .into_iter()
        .next()
        .context("empty DescribeConfigs response")?;
    if let Some(err) = Error::from_code(result.error_code, result.error_message.as_deref()) {
        return Err(anyhow::Error::new(err).context(format!("describe configs of {name}")));
    }
    Ok(result
        .configs
        .into_iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
            )
        })
        .collect())
}

async fn describe(client: &Client, topic: Option<String>) -> anyhow::Result<()> {
    let wanted = topic.map(|t| vec![t]);
    let metadata = client
        .metadata(wanted.as_deref(), false)
        .await
        .context("fetch metadata")?;
    let mut topics = metadata.topics;
    topics.sort_by(|a, b| {
        a.name
            .as_ref()
            .map(|n| n.0.to_string())
            .cmp(&b.name.as_ref().map(|n| n.0.to_string()))
    });
    for topic in topics {
        let name = topic
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .unwrap_or_default();
        if let Some(err) = Error::from_code(topic.error_code, None) {
            return Err(anyhow::Error::new(err).context(format!("describe topic {name}")));
        }
        let replication = topic
            .partitions
            .first()
            .map_or(0, |p| p.replica_nodes.len());
        let overrides: Vec<String> = describe_configs(client, 2, &name)
            .await?
            .into_iter()
            .filter(|(_, _, source)| *source == 1)
            .map(|(key, value, _)| format!("{key}={value}"))
            .collect();
        println!(
            "Topic: {name}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {replication}\tConfigs: {}",
            topic.topic_id,
            topic.partitions.len(),
            overrides.join(",")
        );
        let mut partitions = topic.partitions;
        partitions.sort_by_key(|p| p.partition_index);
        let ids = |nodes: &[kafka_protocol::messages::BrokerId]| {
            nodes
                .iter()
                .map(|n| n.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        for partition in partitions {
            println!(
                "\tTopic: {name}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                partition.partition_index,
                partition.leader_id.0,
                ids(&partition.replica_nodes),
                ids(&partition.isr_nodes)
            );
        }
    }
    Ok(())
}
