//! `sluice ksql-server`: a ksql server against any Kafka cluster (Sluice's or Apache
//! Kafka's), with ksqlDB's REST API, or headless with `--queries-file` (ksqlDB's
//! `ksql.queries.file`); and the start of the node's own ksql server in `sluice start`.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use sluice_ksql::engine::Engine;
use sluice_ksql::rest::KsqlServer;
use sluice_log::client::Client;

use crate::start::KsqlSettings;

#[derive(Debug, clap::Args)]
pub struct KsqlServerArgs {
    #[command(flatten)]
    connect: crate::tools::Connect,
    /// Where the REST API listens (ksqlDB's `listeners`).
    #[arg(long, default_value = "http://127.0.0.1:8088")]
    listeners: String,
    /// `ksql.service.id`: servers with the same id share their queries' work (and, when
    /// interactive, one command topic).
    #[arg(long, default_value = "default_")]
    service_id: String,
    /// Run headless (ksqlDB's `ksql.queries.file`): the file's statements only, checked
    /// whole before any runs (a bad one stops start-up with its line and why); the REST API
    /// answers `/info` and `/healthcheck` and refuses everything else.
    #[arg(long)]
    queries_file: Option<std::path::PathBuf>,
}

/// Runs a ksql server against `--bootstrap-server` until Ctrl-C or SIGTERM.
pub fn ksql_server(args: KsqlServerArgs) -> anyhow::Result<()> {
    let mut props = BTreeMap::from([
        ("ksql.listeners".to_string(), args.listeners.clone()),
        ("ksql.service.id".to_string(), args.service_id.clone()),
    ]);
    if let Some(file) = &args.queries_file {
        props.insert(
            "ksql.queries.file".to_string(),
            file.to_string_lossy().into_owned(),
        );
    }
    let (_, settings) = crate::start::split_ksql(props)?;
    let settings = settings.context("the ksql server's settings")?;
    crate::tools::runtime()?.block_on(async {
        let client = args.connect.client().await?;
        let server = start_ksql(client, &settings).await?;
        if settings.queries_file.is_none() {
            let url = format!("http://{}", server.local_addr());
            println!(
                "Try it (Ctrl-C stops the server):\n  curl -s -X POST -H 'Content-Type: application/vnd.ksql.v1+json' {url}/ksql -d '{{\"ksql\": \"SHOW STREAMS;\"}}'"
            );
        }
        crate::tools::wait_for_shutdown_signal().await?;
        server.shutdown().await;
        anyhow::Ok(())
    })
}

/// Starts a ksql server on `client`'s cluster as `settings` say: interactive, or headless
/// running its queries file (whose first bad statement is the error).
pub async fn start_ksql(
    client: Arc<Client>,
    settings: &KsqlSettings,
) -> anyhow::Result<KsqlServer> {
    let Some(file) = &settings.queries_file else {
        let engine = Engine::start(client, &settings.service_id).await?;
        let server = KsqlServer::start(Arc::new(engine), &settings.listen).await?;
        let url = format!("http://{}", server.local_addr());
        println!(
            "ksql server (ksqlDB's REST API) on {url} (service id {}): open its CLI with `sluice ksql {url}`",
            settings.service_id
        );
        return Ok(server);
    };
    let sql = std::fs::read_to_string(file)
        .with_context(|| format!("ksql.queries.file: read {}", file.display()))?;
    let engine = Engine::start_headless(client, &settings.service_id).await?;
    let entities = engine
        .run_queries_file(&file.display().to_string(), &sql)
        .await?;
    let queries: Vec<&str> = entities
        .iter()
        .filter_map(|e| e["commandStatus"]["queryId"].as_str())
        .collect();
    let server = KsqlServer::start_headless(Arc::new(engine), &settings.listen).await?;
    println!(
        "ksql server in headless mode (service id {}): {} ran, {} persistent quer{} ({}); interactive use is disabled, http://{} answers /info and /healthcheck",
        settings.service_id,
        file.display(),
        queries.len(),
        if queries.len() == 1 { "y" } else { "ies" },
        queries.join(", "),
        server.local_addr()
    );
    Ok(server)
}
