//! `sluice start`'s ksql server: ksqlDB's REST API on the node, its definitions kept across
//! a restart.

mod common;

use std::io::{Read, Write};

use common::*;

/// A node on `dir` without a Connect worker; returns it and its ksql server's `host:port`.
fn start_node(dir: &std::path::Path) -> (Running, String) {
    let data = format!("log.dirs={}", dir.join("data").display());
    let config = dir.join("none.toml").display().to_string();
    let mut node = Running::spawn(
        &[
            "start",
            "--config",
            &config,
            "--override",
            "listeners=PLAINTEXT://127.0.0.1:0",
            "--override",
            "connect.enable=false",
            "--override",
            "ksql.listeners=http://127.0.0.1:0",
            "--override",
            &data,
        ],
        None,
    );
    let first = node.line();
    assert!(first.starts_with("Sluice listening on"), "{first}");
    let line = node.line();
    let addr = line
        .strip_prefix("ksql server (ksqlDB's REST API) on http://")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
        .to_string();
    assert!(line.ends_with("(service id default_)"), "{line}");
    (node, addr)
}

/// `POST /ksql` with `statements`: the status and the body.
fn ksql(addr: &str, statements: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({"ksql": statements}).to_string();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /ksql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.ksql.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap())
}

#[test]
fn sluice_start_runs_a_ksql_server_whose_streams_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start_node(dir.path());
    let (status, created) = ksql(
        &addr,
        "CREATE STREAM greetings (line STRING) WITH (KAFKA_TOPIC='greetings', VALUE_FORMAT='KAFKA', PARTITIONS=1);",
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(created[0]["commandStatus"]["message"], "Stream created");
    assert!(node.stop().success());

    let (node, addr) = start_node(dir.path());
    let (status, listed) = ksql(&addr, "SHOW STREAMS; LIST TOPICS;");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed[0]["streams"][0]["name"], "GREETINGS");
    assert_eq!(listed[1]["topics"][0]["name"], "greetings");
    assert!(node.stop().success());
}

#[test]
fn a_ksql_port_in_use_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = start_with_a_port_taken(
        dir.path(),
        &[
            "connect.enable=false",
            "ksql.listeners=http://127.0.0.1:{port}",
        ],
    );
    assert!(
        err.contains("ksql.listeners") && err.contains("cannot listen"),
        "{err}"
    );
    assert!(err.contains("ksql.enable=false"), "{err}");
    // Nothing stayed half-open: the data directory opens again at once.
    let (node, _) = start_node(dir.path());
    assert!(node.stop().success());
}

#[test]
fn a_headless_ksql_server_runs_its_file_and_a_bad_file_stops_it_with_the_line() {
    let fixture = start();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.sql");
    std::fs::write(
        &app,
        "CREATE STREAM clicks (user STRING KEY, ms INT) WITH (kafka_topic='clicks', partitions=1, value_format='JSON');\n\
         CREATE STREAM slow AS SELECT user, ms FROM clicks WHERE ms > 100;\n",
    )
    .unwrap();
    let app = app.display().to_string();
    let mut server = Running::spawn(
        &[
            "ksql-server",
            "--listeners",
            "http://127.0.0.1:0",
            "--service-id",
            "app_",
            "--queries-file",
            &app,
        ],
        Some(&fixture.bootstrap()),
    );
    let line = server.line();
    assert!(
        line.starts_with("ksql server in headless mode (service id app_):")
            && line.contains("1 persistent query (CSAS_SLOW_1)"),
        "{line}"
    );
    let addr = line
        .rsplit_once("http://")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap()
        .to_string();
    let (status, refused) = ksql(&addr, "SHOW STREAMS;");
    assert_eq!(status, 403, "{refused}");
    assert!(server.stop().success());

    // A statement that does not check stops start-up: the file's line and why.
    let bad = dir.path().join("bad.sql");
    std::fs::write(
        &bad,
        "CREATE STREAM views (page STRING) WITH (kafka_topic='views', partitions=1, value_format='JSON');\n\n\
         CREATE STREAM v2 AS SELECT nope FROM views;\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    let err = fails(sluice(
        &fixture,
        &[
            "ksql-server",
            "--listeners",
            "http://127.0.0.1:0",
            "--queries-file",
            &bad,
        ],
        "",
    ));
    assert!(err.contains("bad.sql, line 3: "), "{err}");
    assert!(err.contains("NOPE"), "{err}");
}
