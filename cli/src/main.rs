//! `sluice`: one binary to run a Sluice node and drive it.

mod bench;
mod connect_bench;
mod connect_rest_bench;
mod jdbc_bench;
mod ksql_bench;
mod ksql_cli;
mod ksql_server;
mod perf;
mod s3_bench;
mod start;
mod streams_bench;
mod tools;
mod txn_bench;

use clap::{Parser, Subcommand};

/// mimalloc: the pipelines' many small allocations (records, strings, maps) cost a quarter of
/// their time in glibc's allocator (BENCHMARKS.md, "Connect").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sluice: Kafka's log, Streams, Connect and ksqlDB in one Rust workspace.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a Sluice node: a Kafka-protocol broker on PLAINTEXT://127.0.0.1:9092 with its data
    /// in ./sluice-data, until Ctrl-C or SIGTERM (then it flushes and shuts down cleanly).
    Start(start::StartArgs),
    /// Create, list, describe, alter and delete topics (like kafka-topics).
    Topics(tools::topics::TopicsArgs),
    /// Write lines of stdin or a file as records (like kafka-console-producer).
    Produce(tools::produce::ProduceArgs),
    /// Print records of a topic (like kafka-console-consumer).
    Consume(tools::consume::ConsumeArgs),
    /// Describe and alter topic and broker configs (like kafka-configs).
    Configs(tools::configs::ConfigsArgs),
    /// Delete the records of partitions below given offsets (like kafka-delete-records).
    DeleteRecords(tools::delete_records::DeleteRecordsArgs),
    /// List, describe, delete consumer groups and reset their offsets (like kafka-consumer-groups).
    Groups(tools::groups::GroupsArgs),
    /// List and describe transactions and the producers of a partition, and abort a hanging
    /// transaction (like kafka-transactions).
    Transactions(tools::transactions::TransactionsArgs),
    /// Run a standalone Connect worker, or drive a worker's REST API: list, create, status,
    /// pause, resume, stop, restart, delete connectors, their offsets and plugins.
    Connect(tools::connect::ConnectArgs),
    /// ksqlDB's interactive CLI: statements against a ksql server (the node's, on
    /// http://127.0.0.1:8088 by default), answers as tables, push query rows as they come.
    Ksql(ksql_cli::KsqlArgs),
    /// Run a ksql server (ksqlDB's REST API on :8088) against a Kafka cluster, or headless
    /// with --queries-file (ksqlDB's ksql.queries.file).
    KsqlServer(ksql_server::KsqlServerArgs),
    /// Measure Sluice against the limits of this machine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the error with its causes on one line, without a backtrace.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Start(args) => start::run(args),
        Command::Topics(args) => tools::topics::run(args),
        Command::Produce(args) => tools::produce::run(args),
        Command::Consume(args) => tools::consume::run(args),
        Command::Configs(args) => tools::configs::run(args),
        Command::Groups(args) => tools::groups::run(args),
        Command::Transactions(args) => tools::transactions::run(args),
        Command::DeleteRecords(args) => tools::delete_records::run(args),
        Command::Connect(args) => tools::connect::run(args),
        Command::Ksql(args) => ksql_cli::run(args),
        Command::KsqlServer(args) => ksql_server::ksql_server(args),
        Command::Bench(command) => bench::run(command),
    }
}
