//! `sluice bench connect-rest`: the latency of Kafka Connect's status request on Sluice's REST
//! API at a steady request rate, against the same client calling a bare HTTP server (the same
//! axum and hyper, one fixed answer of the same size) in the same run: the limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sluice_connect::rest::{RestClient, RestServer};

use crate::connect_bench::{create_sink, create_source, file_worker, write_input};
use crate::perf::percentile;
use crate::tools::runtime;

#[derive(Debug, clap::Args)]
pub struct ConnectRestBenchArgs {
    /// Status requests to send.
    #[arg(long, default_value_t = 3000)]
    requests: usize,
    /// Requests per second (sent one after another on one kept-alive connection, as a
    /// monitoring script does).
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Lines of 100 bytes the file connectors copy while the requests run (0: idle
    /// connectors). The copy may end before the requests do.
    #[arg(long, default_value_t = 0)]
    busy_lines: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct RestReport {
    requests: usize,
    rate: u32,
    busy_lines: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    limit_p50_ms: f64,
    limit_p99_ms: f64,
    /// p99 of the status request over the bare server's p99.
    ratio_p99: f64,
}

/// Latencies (µs, sorted) of `requests` GETs of `path` on `rest` and, interleaved (so both
/// see the same load), of the bare server, at `rate` pairs per second.
async fn measure(
    rest: &RestClient,
    path: &str,
    bare: &RestClient,
    requests: usize,
    rate: u32,
) -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    // A late request is sent at once, but the schedule is not made up in a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut measured = Vec::with_capacity(requests);
    let mut limit = Vec::with_capacity(requests);
    for i in 0..requests {
        ticks.tick().await;
        // Alternate which goes first, so neither always follows the other.
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for real in order {
            let (client, into) = if real {
                (rest, &mut measured)
            } else {
                (bare, &mut limit)
            };
            let sent = Instant::now();
            let (status, _) = client.get(path).await?;
            let took = sent.elapsed();
            anyhow::ensure!(status == 200, "GET {path} answered {status}");
            into.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
    }
    measured.sort_unstable();
    limit.sort_unstable();
    Ok((measured, limit))
}

/// A bare axum server answering `body` on every path: the floor of an HTTP round trip here.
async fn bare_server(
    body: serde_json::Value,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let body = Arc::new(body);
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { axum::Json((*body).clone()) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, handle))
}

pub fn connect_rest(args: ConnectRestBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input.txt");
    write_input(&input, args.busy_lines, 100)?;
    let node = sluice_log::Sluice::embedded(dir.path().join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .start()?;
    let report = runtime()?.block_on(async {
        let worker = Arc::new(
            file_worker(
                &node,
                dir.path(),
                "org.apache.kafka.connect.storage.StringConverter",
                1000,
            )
            .await?,
        );
        let server = RestServer::start(worker.clone(), "127.0.0.1:0").await?;
        let rest = RestClient::new(&format!("http://{}", server.local_addr()))?;
        create_sink(&worker, &dir.path().join("output.txt")).await?;
        create_source(&worker, &input).await?;
        let path = "/connectors/bench-source/status";
        let (status, answer) = rest.get(path).await?;
        anyhow::ensure!(status == 200, "GET {path} answered {status}: {answer}");

        let (bare, bare_handle) = bare_server(answer).await?;
        let bare_rest = RestClient::new(&format!("http://{bare}"))?;
        let (measured, limit) = measure(&rest, path, &bare_rest, args.requests, args.rate)
            .await
            .context("status requests")?;
        bare_handle.abort();
        server.shutdown().await;
        worker.shutdown().await?;
        let p99 = percentile(&measured, 0.99);
        let limit_p99 = percentile(&limit, 0.99);
        anyhow::Ok(RestReport {
            requests: args.requests,
            rate: args.rate,
            busy_lines: args.busy_lines,
            p50_ms: percentile(&measured, 0.50),
            p99_ms: p99,
            p999_ms: percentile(&measured, 0.999),
            max_ms: percentile(&measured, 1.0),
            limit_p50_ms: percentile(&limit, 0.50),
            limit_p99_ms: limit_p99,
            ratio_p99: if limit_p99 > 0.0 {
                p99 / limit_p99
            } else {
                0.0
            },
        })
    })?;
    node.shutdown()?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "connect-rest: {} status requests at {}/s{}: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; a bare HTTP server: p50 {:.3} ms, p99 {:.3} ms ({:.1}x at p99)",
            report.requests,
            report.rate,
            if report.busy_lines > 0 {
                format!(" while the file connectors copy {} lines", report.busy_lines)
            } else {
                String::new()
            },
            report.p50_ms,
            report.p99_ms,
            report.p999_ms,
            report.max_ms,
            report.limit_p50_ms,
            report.limit_p99_ms,
            report.ratio_p99
        );
    }
    Ok(())
}
