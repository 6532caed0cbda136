//! `sluice configs describe|alter`, as kafka-configs does them.

use sluice_log::client::admin::ConfigResource;

use super::topics::{alter_configs, describe_configs};
use super::{runtime, Connect};

#[derive(Debug, clap::Args)]
pub struct ConfigsArgs {
    #[command(flatten)]
    connect: Connect,
    #[command(subcommand)]
    command: ConfigsCommand,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EntityType {
    Topics,
    Brokers,
}

impl EntityType {
    fn resource(self, name: &str) -> ConfigResource {
        match self {
            EntityType::Topics => ConfigResource::Topic(name.to_string()),
            EntityType::Brokers => ConfigResource::Broker(name.to_string()),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum ConfigsCommand {
    /// Show the configs of a topic or broker.
    Describe {
        /// `topics` or `brokers`.
        #[arg(long = "entity-type", value_enum)]
        entity_type: EntityType,
        /// Topic name or broker id.
        #[arg(long = "entity-name", required_unless_present = "entity_default")]
        entity_name: Option<String>,
        /// The cluster-wide default of brokers' dynamic configs (with `--entity-type brokers`).
        #[arg(long = "entity-default", conflicts_with = "entity_name")]
        entity_default: bool,
        /// Show every config, not only overrides.
        #[arg(long)]
        all: bool,
    },
    /// Set or remove configs.
    Alter {
        /// `topics` or `brokers`.
        #[arg(long = "entity-type", value_enum)]
        entity_type: EntityType,
        /// Topic name or broker id.
        #[arg(long = "entity-name", required_unless_present = "entity_default")]
        entity_name: Option<String>,
        /// The cluster-wide default of brokers' dynamic configs (with `--entity-type brokers`).
        #[arg(long = "entity-default", conflicts_with = "entity_name")]
        entity_default: bool,
        /// Configs to set: `k1=v1,k2=v2`; repeatable.
        #[arg(long = "add-config", value_name = "K=V[,K=V]")]
        add_config: Vec<String>,
        /// Configs to remove: `k1,k2`; repeatable.
        #[arg(long = "delete-config", value_name = "K[,K]")]
        delete_config: Vec<String>,
    },
}

const SOURCE_NAMES: [&str; 9] = [
    "UNKNOWN",
    "DYNAMIC_TOPIC_CONFIG",
    "DYNAMIC_BROKER_CONFIG",
    "DYNAMIC_DEFAULT_BROKER_CONFIG",
    "STATIC_BROKER_CONFIG",
    "DEFAULT_CONFIG",
    "DYNAMIC_BROKER_LOGGER_CONFIG",
    "CLIENT_METRICS_CONFIG",
    "GROUP_CONFIG",
];

/// The resource name: a topic or broker id, or "" for the brokers' cluster-wide default.
fn entity(entity_type: EntityType, name: Option<String>, default: bool) -> anyhow::Result<String> {
    match (name, default, entity_type) {
        (Some(name), _, _) => Ok(name),
        (None, true, EntityType::Brokers) => Ok(String::new()),
        (None, true, EntityType::Topics) => {
            anyhow::bail!("--entity-default is for brokers: topics have no default entity")
        }
        (None, false, _) => anyhow::bail!("give --entity-name or --entity-default"),
    }
}

pub fn run(args: ConfigsArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = args.connect.client().await?;
        match args.command {
            ConfigsCommand::Describe {
                entity_type,
                entity_name,
                entity_default,
                all,
            } => {
                let entity_name = entity(entity_type, entity_name, entity_default)?;
                let configs =
                    describe_configs(&client, &entity_type.resource(&entity_name)).await?;
                let kind = match entity_type {
                    EntityType::Topics => "topic",
                    EntityType::Brokers => "broker",
                };
                println!(
                    "{} configs for {kind} {entity_name} are:",
                    if all { "All" } else { "Dynamic" }
                );
                for (key, value, source) in configs {
                    let dynamic = (1..=3).contains(&source);
                    if all || dynamic {
                        let source_name = SOURCE_NAMES
                            .get(source.max(0) as usize)
                            .copied()
                            .unwrap_or("UNKNOWN");
                        println!("  {key}={value} ({source_name})");
                    }
                }
            }
            ConfigsCommand::Alter {
                entity_type,
                entity_name,
                entity_default,
                add_config,
                delete_config,
            } => {
                let entity_name = entity(entity_type, entity_name, entity_default)?;
                anyhow::ensure!(
                    !add_config.is_empty() || !delete_config.is_empty(),
                    "nothing to alter: give --add-config or --delete-config"
                );
                let deletes: Vec<String> = delete_config
                    .iter()
                    .flat_map(|d| d.split(','))
                    .filter(|d| !d.trim().is_empty())
                    .map(str::to_string)
                    .collect();
                alter_configs(
                    &client,
                    &entity_type.resource(&entity_name),
                    &add_config,
                    &deletes,
                )
                .await?;
                if entity_name.is_empty() {
                    println!("Completed updating default config for brokers in the cluster.");
                } else {
                    println!("Completed updating config for {entity_name}.");
                }
            }
        }
        Ok(())
    })
}
