//! Transactions across a `sluice start` node killed with `kill -9` and restarted: the open
//! transaction, the producer's state and the last stable offset come back from disk, and the
//! producer's retries after the restart write nothing twice (confluent-kafka, in
//! `tests/clients/txn_broker_crash.py`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::Running;

/// A node on `dir`, listening on `port` (0: any); returns it and its `host:port`.
fn start_node(dir: &std::path::Path, port: u16) -> (Running, String) {
    let data = format!("log.dirs={}", dir.join("data").display());
    let listener = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    let mut node = Running::spawn(
        &[
            "start",
            "--config",
            &dir.join("none.toml").display().to_string(),
            "--override",
            &listener,
            "--override",
            "connect.enable=false",
            "--override",
            "ksql.enable=false",
            "--override",
            &data,
        ],
        None,
    );
    let line = node.line();
    let bootstrap = line
        .strip_prefix("Sluice listening on PLAINTEXT://")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (node, bootstrap)
}

#[test]
fn an_open_transaction_survives_kill_9_of_the_broker_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (node, bootstrap) = start_node(dir.path(), 0);
    let port: u16 = bootstrap.rsplit(':').next().unwrap().parse().unwrap();
    let script = format!(
        "{}/tests/clients/txn_broker_crash.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut client = Command::new("timeout")
        .args(["180", "python3", &script, &bootstrap])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(client.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("SENDING") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            let status = client.wait().unwrap();
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(client.stderr.as_mut().unwrap(), &mut err);
            panic!("the client ended early ({status}):\n{seen}\n{err}");
        }
        seen.push_str(&line);
    }
    // Records are in flight: kill the broker, then bring it back on the same port.
    node.kill_9();
    let (node, again) = start_node(dir.path(), port);
    assert_eq!(again, bootstrap);
    writeln!(client.stdin.as_mut().unwrap(), "restarted").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = client.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(client.stderr.as_mut().unwrap(), &mut err);
    assert!(
        status.success() && rest.contains("all checks passed"),
        "the client failed ({status}):\n{seen}{rest}\n{err}"
    );
    assert!(node.stop().success(), "a clean shutdown after the restart");
}
