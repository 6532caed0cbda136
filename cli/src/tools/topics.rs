//! `sluice topics create|list|describe|alter|delete`, as kafka-topics does them.

use std::collections::BTreeMap;

use anyhow::Context;
use sluice_log::client::admin::ConfigResource;
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
                    client
                        .create_partitions(&topic, count)
                        .await
                        .with_context(|| format!("add partitions to {topic}"))?;
                    println!("Topic {topic} now has {count} partitions.");
                }
                if !configs.is_empty() || !delete_configs.is_empty() {
                    alter_configs(
                        &client,
                        &ConfigResource::Topic(topic.clone()),
                        &configs,
                        &delete_configs,
                    )
                    .await?;
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
    resource: &ConfigResource,
    set: &[String],
    delete: &[String],
) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    for item in set {
        for part in item.split(',').filter(|p| !p.trim().is_empty()) {
            pairs.push(parse_key_value(part)?);
        }
    }
    client
        .alter_configs(resource, &pairs, delete)
        .await
        .with_context(|| format!("alter configs of {resource:?}"))
}

/// Config entries of a resource: (name, value, source).
pub async fn describe_configs(
    client: &Client,
    resource: &ConfigResource,
) -> anyhow::Result<Vec<(String, String, i8)>> {
    let entries = client
        .describe_configs(resource)
        .await
        .with_context(|| format!("describe configs of {resource:?}"))?;
    Ok(entries
        .into_iter()
        .map(|c| (c.name, c.value.unwrap_or_default(), c.source))
        .collect())
}

async fn describe(client: &Client, topic: Option<String>) -> anyhow::Result<()> {
    let wanted = topic.map(|t| vec![t]);
    let topics = client
        .describe_topics(wanted.as_deref())
        .await
        .context("describe topics")?;
    let ids = |nodes: &[i32]| {
        nodes
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    for topic in topics {
        let name = topic.name;
        let replication = topic.partitions.first().map_or(0, |p| p.replicas.len());
        let overrides: Vec<String> = describe_configs(client, &ConfigResource::Topic(name.clone()))
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
        for partition in topic.partitions {
            println!(
                "\tTopic: {name}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                partition.partition,
                partition.leader,
                ids(&partition.replicas),
                ids(&partition.isr)
            );
        }
    }
    Ok(())
}
