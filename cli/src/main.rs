//! `sluice`: one binary to run a Sluice node and drive it.

mod bench;
mod start;

use clap::{Parser, Subcommand};

/// Sluice: Kafka's log, Streams, Connect and ksqlDB in one Rust workspace.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node on a data directory that needs no setup. Today this runs the storage engine
    /// (recovery, retention, compaction, checkpoints) until SIGINT/SIGTERM, then shuts down
    /// cleanly; the Kafka-protocol listener comes with the broker.
    Start(start::StartArgs),
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
        Command::Bench(command) => bench::run(command),
    }
}
