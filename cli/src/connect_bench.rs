//! `sluice bench connect`: Kafka's file connectors on a standalone worker and an embedded node —
//! a file of N lines through FileStreamSource, a topic and FileStreamSink into another file —
//! against a plain line-by-line copy of the same file (the limit).

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sluice_connect::connector::Props;
use sluice_connect::worker::{State, Worker, WorkerConfig};

use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct ConnectBenchArgs {
    /// Number of lines in the file to copy.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Bytes per line, newline included.
    #[arg(long, default_value_t = 100)]
    line_bytes: usize,
    /// The converter both connectors use: string (`StringConverter`) or json
    /// (`JsonConverter`, schemas enabled: every value goes in Kafka's envelope).
    #[arg(long, default_value = "string")]
    converter: String,
    /// `offset.flush.interval.ms` of the worker: how often the sink flushes (and both commit).
    #[arg(long, default_value_t = 1000)]
    flush_interval_ms: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ConnectReport {
    lines: u64,
    line_bytes: usize,
    converter: String,
    lines_per_sec: f64,
    copy_lines_per_sec: f64,
    /// How many times faster the plain copy is.
    ratio: f64,
}

/// Writes `lines` lines of `line_bytes` bytes each (newline included), all different.
pub(crate) fn write_input(path: &Path, lines: u64, line_bytes: usize) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let filler: String = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(line_bytes / 36 + 2);
    for i in 0..lines {
        let head = format!("{i:012} ");
        let rest = line_bytes.saturating_sub(head.len() + 1);
        out.write_all(head.as_bytes())?;
        out.write_all(&filler.as_bytes()[(i as usize % 36)..(i as usize % 36) + rest])?;
        out.write_all(b"\n")?;
    }
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?
        .sync_all()?;
    Ok(())
}

/// The limit: a line-by-line copy (read a line, write it), synced at the end as the sink's
/// flush syncs.
fn plain_copy(from: &Path, to: &Path) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let reader = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(from)?);
    let mut out = BufWriter::with_capacity(64 * 1024, std::fs::File::create(to)?);
    let mut n = 0u64;
    for line in reader.lines() {
        let line = line?;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("write {}: {e}", to.display()))?
        .sync_data()?;
    Ok((started.elapsed(), n))
}

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A standalone worker with the file connectors on `node`, offsets in `dir`.
pub(crate) async fn file_worker(
    node: &sluice_log::embedded::EmbeddedBroker,
    dir: &Path,
    converter: &str,
    flush_interval_ms: u64,
) -> anyhow::Result<Worker> {
    let client = node.client().await?;
    let flush = flush_interval_ms.to_string();
    let offsets = dir.join("connect.offsets");
    let worker_props = props(&[
        ("key.converter", converter),
        ("value.converter", converter),
        (
            "offset.storage.file.filename",
            offsets.to_str().unwrap_or_default(),
        ),
        ("offset.flush.interval.ms", flush.as_str()),
    ]);
    let config = WorkerConfig::from_props(&worker_props)?;
    Ok(Worker::new(client, config, sluice_connectors::plugins())?)
}

/// `bench-sink`: topic `bench-lines` into `output`.
pub(crate) async fn create_sink(worker: &Worker, output: &Path) -> anyhow::Result<()> {
    let config = props(&[
        ("connector.class", "FileStreamSink"),
        ("file", output.to_str().unwrap_or_default()),
        ("topics", "bench-lines"),
    ]);
    worker.create_connector("bench-sink", config).await?;
    Ok(())
}

/// `bench-source`: `input` into topic `bench-lines`.
pub(crate) async fn create_source(worker: &Worker, input: &Path) -> anyhow::Result<()> {
    let config = props(&[
        ("connector.class", "FileStreamSource"),
        ("file", input.to_str().unwrap_or_default()),
        ("topic", "bench-lines"),
    ]);
    worker.create_connector("bench-source", config).await?;
    Ok(())
}

pub fn connect(args: ConnectBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.lines > 0, "--lines must be at least 1");
    anyhow::ensure!(
        args.line_bytes >= 14,
        "--line-bytes must be at least 14 (a line number and a newline)"
    );
    let converter = match args.converter.as_str() {
        "string" => "org.apache.kafka.connect.storage.StringConverter",
        "json" => "org.apache.kafka.connect.json.JsonConverter",
        other => anyhow::bail!("--converter {other}: expected string or json"),
    };
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input.txt");
    let output = dir.path().join("output.txt");
    write_input(&input, args.lines, args.line_bytes)?;
    let expected_len = std::fs::metadata(&input)?.len();

    let (copy_elapsed, copied) = plain_copy(&input, &dir.path().join("copy.txt"))?;
    anyhow::ensure!(copied == args.lines, "the plain copy copied {copied} lines");

    let node = sluice_log::Sluice::embedded(dir.path().join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let elapsed = runtime()?.block_on(async {
        let worker = file_worker(&node, dir.path(), converter, args.flush_interval_ms).await?;
        create_sink(&worker, &output).await?;
        // The clock runs from the source's start until the sink has flushed every line.
        let started = Instant::now();
        create_source(&worker, &input).await?;
        let deadline = started + Duration::from_secs(600);
        loop {
            let written = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            if written >= expected_len {
                break;
            }
            for name in ["bench-source", "bench-sink"] {
                if let Some(status) = worker.status(name).await {
                    if let Some(State::Failed(reason)) =
                        status.tasks.iter().find(|t| matches!(t, State::Failed(_)))
                    {
                        anyhow::bail!("{name} failed: {reason}");
                    }
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the copy did not finish within 600 s ({written} of {expected_len} bytes)"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed();
        worker.shutdown().await?;
        anyhow::Ok(elapsed)
    })?;
    node.shutdown()?;
    let same = files_equal(&input, &output).context("compare the output with the input")?;
    anyhow::ensure!(same, "the output file differs from the input");

    let lines_per_sec = args.lines as f64 / elapsed.as_secs_f64();
    let copy_lines_per_sec = args.lines as f64 / copy_elapsed.as_secs_f64();
    let report = ConnectReport {
        lines: args.lines,
        line_bytes: args.line_bytes,
        converter: args.converter.clone(),
        lines_per_sec,
        copy_lines_per_sec,
        ratio: copy_lines_per_sec / lines_per_sec,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "connect: {} lines of {} bytes, file -> FileStreamSource -> topic -> FileStreamSink -> file ({} converter): {:.0} lines/sec; a plain line-by-line copy {:.0} lines/sec: {:.1}x; the output equals the input",
            report.lines, report.line_bytes, report.converter, report.lines_per_sec, report.copy_lines_per_sec, report.ratio
        );
    }
    Ok(())
}

fn files_equal(a: &Path, b: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let (mut a, mut b) = (
        std::io::BufReader::new(std::fs::File::open(a)?),
        std::io::BufReader::new(std::fs::File::open(b)?),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y)? == 0);
        }
        let mut filled = 0;
        while filled < n {
            let m = b.read(&mut y[filled..n])?;
            if m == 0 {
                return Ok(false);
            }
            filled += m;
        }
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}
