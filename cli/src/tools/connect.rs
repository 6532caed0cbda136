//! `sluice connect`: run a standalone Connect worker (like connect-standalone), or drive any
//! Connect worker's REST API (Sluice's or Kafka's) as Kafka Connect users do with curl.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value as Json};
use sluice_connect::connector::Props;
use sluice_connect::distributed::{DistributedConfig, DistributedWorker};
use sluice_connect::properties::{parse_properties, read_config_file, read_connector_config};
use sluice_connect::rest::{encode_segment, RestClient, RestServer};
use sluice_connect::worker::{Worker, WorkerConfig};
use sluice_log::client::{Client, ClientOptions};

use super::{parse_key_value, runtime};

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The worker's REST API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8083",
        env = "SLUICE_CONNECT_URL",
        global = true
    )]
    url: String,
    #[command(subcommand)]
    command: ConnectCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConnectCommand {
    /// Run a standalone worker until Ctrl-C or SIGTERM (like connect-standalone.sh): worker
    /// properties (`bootstrap.servers`, `offset.storage.file.filename`, `key.converter`,
    /// `value.converter`, `listeners`, ...), then connector configs to create, as
    /// `.properties` or `.json` files.
    Standalone {
        /// The worker's properties file.
        worker: PathBuf,
        /// Connector config files (`name`, `connector.class`, ... in properties or JSON).
        connectors: Vec<PathBuf>,
        /// Overrides `bootstrap.servers` of the worker file.
        #[arg(long = "bootstrap-server")]
        bootstrap_server: Option<String>,
    },
    /// Run a distributed worker until Ctrl-C or SIGTERM (like connect-distributed.sh):
    /// workers with the same `group.id` share connectors, kept in `config.storage.topic`,
    /// `offset.storage.topic` and `status.storage.topic`; create them through the REST API.
    Distributed {
        /// The worker's properties file (`group.id`, `bootstrap.servers`, `listeners`, ...).
        worker: PathBuf,
        /// Overrides `bootstrap.servers` of the worker file.
        #[arg(long = "bootstrap-server")]
        bootstrap_server: Option<String>,
    },
    #[command(flatten)]
    Rest(RestCommand),
}

/// Calls of a worker's REST API.
#[derive(Debug, clap::Subcommand)]
enum RestCommand {
    /// List connectors, with their type and state.
    List {
        /// Print the REST API's answer (`?expand=status&expand=info`) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a connector from `--config key=value` settings or a file (properties or JSON).
    Create {
        /// The connector's name (default: the `name` in the file).
        name: Option<String>,
        /// A setting, e.g. `--config connector.class=FileStreamSource`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// A connector config file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Replace a connector's config (or create it): `PUT /connectors/{name}/config`.
    Update {
        /// The connector.
        name: String,
        /// A setting; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// A connector config file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Show a connector's config.
    Config {
        /// The connector.
        name: String,
    },
    /// Show a connector's state and its tasks' (with the failure trace of those that failed).
    Status {
        /// The connector.
        name: String,
        /// Print the REST API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a connector (its source offsets stay).
    Delete {
        /// The connector.
        name: String,
    },
    /// Pause a connector's tasks.
    Pause {
        /// The connector.
        name: String,
    },
    /// Resume a paused or stopped connector.
    Resume {
        /// The connector.
        name: String,
    },
    /// Stop a connector and shut its tasks down, keeping its config (its offsets can then be
    /// reset).
    Stop {
        /// The connector.
        name: String,
    },
    /// Restart a connector, optionally with its tasks, or one task.
    Restart {
        /// The connector.
        name: String,
        /// Restart its tasks too.
        #[arg(long)]
        include_tasks: bool,
        /// Only what has failed.
        #[arg(long)]
        only_failed: bool,
        /// Restart only this task.
        #[arg(long, conflicts_with_all = ["include_tasks", "only_failed"])]
        task: Option<usize>,
    },
    /// Show a connector's offsets; `--reset` forgets them (the connector must be stopped).
    Offsets {
        /// The connector.
        name: String,
        /// Forget every offset of the connector.
        #[arg(long)]
        reset: bool,
    },
    /// Show the topics a connector has used (KIP-558), one per line; `--reset` forgets them.
    Topics {
        /// The connector.
        name: String,
        /// Forget them (the connector's tasks record them again as they use them).
        #[arg(long)]
        reset: bool,
    },
    /// List the connector classes the worker runs.
    Plugins,
    /// Check a config against a connector class without creating anything.
    Validate {
        /// The connector class (or alias).
        plugin: String,
        /// A setting; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// A connector config file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

pub fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let runtime = runtime()?;
    match args.command {
        ConnectCommand::Standalone {
            worker,
            connectors,
            bootstrap_server,
        } => runtime.block_on(standalone(worker, connectors, bootstrap_server)),
        ConnectCommand::Distributed {
            worker,
            bootstrap_server,
        } => runtime.block_on(distributed(worker, bootstrap_server)),
        ConnectCommand::Rest(command) => {
            let rest = RestClient::new(&args.url)?;
            runtime.block_on(drive(&rest, command))
        }
    }
}

/// Settings from `--config` pairs over a file's.
fn settings(pairs: &[String], file: Option<&PathBuf>) -> anyhow::Result<Props> {
    let mut props = match file {
        Some(path) => read_config_file(path)?,
        None => Props::new(),
    };
    for pair in pairs {
        let (key, value) = parse_key_value(pair)?;
        props.insert(key, value);
    }
    Ok(props)
}

/// The answer's body when the status is a success, else the worker's message as the error.
fn expect(answer: (u16, Json), what: &str) -> anyhow::Result<Json> {
    let (status, body) = answer;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message = body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    anyhow::bail!("{what}: HTTP {status}: {message}")
}

fn print_json(body: &Json) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(body)?);
    Ok(())
}

async fn drive(rest: &RestClient, command: RestCommand) -> anyhow::Result<()> {
    let path = |name: &str, rest: &str| format!("/connectors/{}{rest}", encode_segment(name));
    match command {
        RestCommand::List { json } => {
            let all = expect(
                rest.get("/connectors?expand=status&expand=info").await?,
                "list connectors",
            )?;
            if json {
                return print_json(&all);
            }
            if let Json::Object(connectors) = &all {
                for (name, entry) in connectors {
                    let status = &entry["status"];
                    let tasks = status["tasks"].as_array().map_or(0, Vec::len);
                    println!(
                        "{name}\t{}\t{}\t{tasks} task(s)",
                        status["type"].as_str().unwrap_or("?"),
                        status["connector"]["state"].as_str().unwrap_or("?"),
                    );
                }
            }
            Ok(())
        }
        RestCommand::Create { name, config, file } => {
            let props = settings(&config, file.as_ref())?;
            let name = name.or_else(|| props.get("name").cloned()).context(
                "the connector needs a name: give NAME, --config name=..., or a file with `name`",
            )?;
            let body = json!({"name": name, "config": props});
            let created = expect(
                rest.request("POST", "/connectors", Some(&body)).await?,
                &format!("create connector {name}"),
            )?;
            println!(
                "Created connector {name} ({}).",
                created["type"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        RestCommand::Update { name, config, file } => {
            let props = settings(&config, file.as_ref())?;
            let answer = rest
                .request("PUT", &path(&name, "/config"), Some(&json!(props)))
                .await?;
            let created = answer.0 == 201;
            expect(answer, &format!("update connector {name}"))?;
            println!(
                "{} connector {name}.",
                if created { "Created" } else { "Updated" }
            );
            Ok(())
        }
        RestCommand::Config { name } => print_json(&expect(
            rest.get(&path(&name, "/config")).await?,
            &format!("config of {name}"),
        )?),
        RestCommand::Status { name, json } => {
            let status = expect(
                rest.get(&path(&name, "/status")).await?,
                &format!("status of {name}"),
            )?;
            if json {
                return print_json(&status);
            }
            let line = |what: String, s: &Json| {
                println!(
                    "{what}\t{}\t{}",
                    s["state"].as_str().unwrap_or("?"),
                    s["worker_id"].as_str().unwrap_or("?")
                );
                if let Some(trace) = s["trace"].as_str() {
                    println!("  {}", trace.replace('\n', "\n  "));
                }
            };
            line(
                format!(
                    "connector {name} ({})",
                    status["type"].as_str().unwrap_or("?")
                ),
                &status["connector"],
            );
            for task in status["tasks"].as_array().into_iter().flatten() {
                line(format!("task {}", task["id"]), task);
            }
            Ok(())
        }
        RestCommand::Delete { name } => {
            act(rest, "DELETE", &path(&name, ""), "Deleted", &name).await
        }
        RestCommand::Pause { name } => {
            act(rest, "PUT", &path(&name, "/pause"), "Paused", &name).await
        }
        RestCommand::Resume { name } => {
            act(rest, "PUT", &path(&name, "/resume"), "Resumed", &name).await
        }
        RestCommand::Stop { name } => {
            act(rest, "PUT", &path(&name, "/stop"), "Stopped", &name).await
        }
        RestCommand::Restart {
            name,
            include_tasks,
            only_failed,
            task,
        } => {
            match task {
                Some(id) => {
                    expect(
                        rest.request("POST", &path(&name, &format!("/tasks/{id}/restart")), None)
                            .await?,
                        &format!("restart task {name}-{id}"),
                    )?;
                    println!("Restarted task {name}-{id}.");
                }
                None => {
                    let query =
                        format!("/restart?includeTasks={include_tasks}&onlyFailed={only_failed}");
                    expect(
                        rest.request("POST", &path(&name, &query), None).await?,
                        &format!("restart connector {name}"),
                    )?;
                    println!("Restarted connector {name}.");
                }
            }
            Ok(())
        }
        RestCommand::Offsets { name, reset } => {
            if reset {
                let answer = expect(
                    rest.request("DELETE", &path(&name, "/offsets"), None)
                        .await?,
                    &format!("reset offsets of {name}"),
                )?;
                println!("{}", answer["message"].as_str().unwrap_or("Reset."));
                return Ok(());
            }
            print_json(&expect(
                rest.get(&path(&name, "/offsets")).await?,
                &format!("offsets of {name}"),
            )?)
        }
        RestCommand::Topics { name, reset } => {
            if reset {
                expect(
                    rest.request("PUT", &path(&name, "/topics/reset"), None)
                        .await?,
                    &format!("reset the topics of {name}"),
                )?;
                println!("Reset the topics of connector {name}.");
                return Ok(());
            }
            let answer = expect(
                rest.get(&path(&name, "/topics")).await?,
                &format!("topics of {name}"),
            )?;
            for topic in answer[name.as_str()]["topics"]
                .as_array()
                .into_iter()
                .flatten()
            {
                println!("{}", topic.as_str().unwrap_or("?"));
            }
            Ok(())
        }
        RestCommand::Plugins => {
            let plugins = expect(rest.get("/connector-plugins").await?, "list plugins")?;
            for plugin in plugins.as_array().into_iter().flatten() {
                println!(
                    "{}\t{}",
                    plugin["class"].as_str().unwrap_or("?"),
                    plugin["type"].as_str().unwrap_or("?")
                );
            }
            Ok(())
        }
        RestCommand::Validate {
            plugin,
            config,
            file,
        } => {
            let props = settings(&config, file.as_ref())?;
            let infos = expect(
                rest.request(
                    "PUT",
                    &format!(
                        "/connector-plugins/{}/config/validate",
                        encode_segment(&plugin)
                    ),
                    Some(&json!(props)),
                )
                .await?,
                &format!("validate a {plugin} config"),
            )?;
            let errors = infos["error_count"].as_u64().unwrap_or(0);
            for config in infos["configs"].as_array().into_iter().flatten() {
                for error in config["value"]["errors"].as_array().into_iter().flatten() {
                    println!(
                        "{}: {}",
                        config["value"]["name"].as_str().unwrap_or("?"),
                        error.as_str().unwrap_or("?")
                    );
                }
            }
            anyhow::ensure!(errors == 0, "the config has {errors} error(s)");
            println!("The config is valid.");
            Ok(())
        }
    }
}

/// A call that changes connector `name` and answers with no body worth showing.
async fn act(
    rest: &RestClient,
    method: &str,
    path: &str,
    done: &str,
    name: &str,
) -> anyhow::Result<()> {
    expect(
        rest.request(method, path, None).await?,
        &format!("{method} {path}"),
    )?;
    println!("{done} connector {name}.");
    Ok(())
}

/// A worker properties file.
fn worker_props(path: &PathBuf) -> anyhow::Result<Props> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse_properties(&text).with_context(|| format!("{}", path.display()))
}

/// A client of the worker's cluster: `--bootstrap-server`, else `bootstrap.servers`.
async fn worker_client(flag: Option<String>, config: &WorkerConfig) -> anyhow::Result<Arc<Client>> {
    let bootstrap = flag
        .or_else(|| config.bootstrap_servers.clone())
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    Client::connect(
        &bootstrap,
        ClientOptions {
            client_id: "sluice-connect".into(),
            request_timeout: Duration::from_secs(30),
        },
    )
    .await
    .with_context(|| format!("connect to {bootstrap}"))
}

/// Runs a distributed worker with its REST API until a signal.
async fn distributed(worker_file: PathBuf, bootstrap_server: Option<String>) -> anyhow::Result<()> {
    let props = worker_props(&worker_file)?;
    let (config, distributed) = DistributedConfig::from_props(&props)
        .with_context(|| format!("worker config {}", worker_file.display()))?;
    let client = worker_client(bootstrap_server, &config).await?;
    let (worker, server) =
        start_distributed_worker(client, config, distributed, &mut std::io::stdout()).await?;
    super::wait_for_shutdown_signal().await?;
    stop_distributed_worker(worker, server).await;
    Ok(())
}

/// Starts a distributed worker (named by its REST `host:port`) with the file connectors and
/// its REST API; prints where it listens.
pub async fn start_distributed_worker(
    client: Arc<Client>,
    config: WorkerConfig,
    distributed: DistributedConfig,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<(Arc<DistributedWorker>, RestServer)> {
    let listen = config.rest_listen.clone();
    let listener = RestServer::bind(&listen)
        .await
        .with_context(|| format!("start the Connect REST API on {listen}"))?;
    let id = listener.local_addr()?.to_string();
    let worker = Arc::new(
        DistributedWorker::start(
            client,
            config,
            distributed,
            sluice_connectors::plugins(),
            &id,
        )
        .await?,
    );
    let server = RestServer::serve(listener, worker.clone())?;
    writeln!(out, "Connect REST API on http://{id}")?;
    out.flush()?;
    Ok((worker, server))
}

/// Stops the REST API, then what the worker runs (each task flushes and commits), and leaves
/// its group.
pub async fn stop_distributed_worker(worker: Arc<DistributedWorker>, server: RestServer) {
    server.shutdown().await;
    worker.shutdown().await;
}

/// Runs a standalone worker with its REST API until a signal, creating the given connectors.
async fn standalone(
    worker_file: PathBuf,
    connector_files: Vec<PathBuf>,
    bootstrap_server: Option<String>,
) -> anyhow::Result<()> {
    let props = worker_props(&worker_file)?;
    let config = WorkerConfig::from_props(&props)
        .with_context(|| format!("worker config {}", worker_file.display()))?;
    if config.exactly_once_source != sluice_connect::worker::ExactlyOnceSourceSupport::Disabled {
        // As in Kafka Connect: a distributed worker's setting.
        tracing::warn!("exactly.once.source.support has no effect on a standalone worker: exactly-once source connectors run on distributed workers");
    }
    // Every connector file is read before anything starts: a typo fails fast.
    let mut connectors = Vec::new();
    for path in &connector_files {
        connectors.push(read_connector_config(path)?);
    }
    let client = worker_client(bootstrap_server, &config).await?;
    let (worker, server) = start_worker(client, config, &mut std::io::stdout()).await?;
    for (name, props) in connectors {
        worker
            .create_connector(&name, props)
            .await
            .with_context(|| format!("create connector {name}"))?;
        tracing::info!(connector = %name, "connector created");
    }
    super::wait_for_shutdown_signal().await?;
    stop_worker(worker, server).await;
    Ok(())
}

/// Starts a worker with the file connectors and its REST API; prints where it listens.
pub async fn start_worker(
    client: Arc<Client>,
    config: WorkerConfig,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<(Arc<Worker>, RestServer)> {
    let listen = config.rest_listen.clone();
    let worker = Worker::new(client, config, sluice_connectors::plugins())?.shared();
    let server = RestServer::start(worker.clone(), &listen)
        .await
        .with_context(|| format!("start the Connect REST API on {listen}"))?;
    writeln!(out, "Connect REST API on http://{}", server.local_addr())?;
    out.flush()?;
    Ok((worker, server))
}

/// Stops the REST API, then every connector (each flushes and commits).
pub async fn stop_worker(worker: Arc<Worker>, server: RestServer) {
    server.shutdown().await;
    if let Err(err) = worker.shutdown().await {
        tracing::error!(%err, "a connector did not stop cleanly");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_paths() {
        assert_eq!(encode_segment("file-source_1.a~"), "file-source_1.a~");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }
}
