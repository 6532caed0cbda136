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
    assert!(
        line.contains("(service id default_): open its CLI with `sluice ksql http://"),
        "{line}"
    );
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

/// `sluice ksql` in a pseudo-terminal (util-linux's `script` makes it), typed into as a user
/// types: keys in, the screen's text out.
struct Terminal {
    child: std::process::Child,
    keys: std::process::ChildStdin,
    screen: std::sync::Arc<std::sync::Mutex<String>>,
    /// How much of the screen the test has read.
    seen: usize,
    _home: tempfile::TempDir,
}

impl Terminal {
    fn open(url: &str) -> Terminal {
        let home = tempfile::tempdir().unwrap();
        let command = format!(
            "stty cols 100 rows 40; exec timeout --foreground 120 {} ksql {url}",
            env!("CARGO_BIN_EXE_sluice")
        );
        let mut child = std::process::Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .env("TERM", "xterm")
            .env("HOME", home.path())
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let keys = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let writer = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                writer
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            child,
            keys,
            screen,
            seen: 0,
            _home: home,
        }
    }

    /// Types `keys` (a line ends with "\r", as Enter sends).
    fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).unwrap();
        self.keys.flush().unwrap();
    }

    /// Waits (60 s at most) until `text` shows after what was read; returns the screen up to
    /// the end of it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            {
                let screen = self.screen.lock().unwrap();
                if let Some(at) = screen[self.seen..].find(text) {
                    let end = self.seen + at + text.len();
                    let shown = screen[self.seen..end].to_string();
                    self.seen = end;
                    return shown;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{text:?} did not show; the screen after what was read:\n{}",
                    &screen[self.seen..]
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_ksql_cli_in_a_terminal_edits_lines_prints_tables_streams_rows_until_ctrl_c_and_runs_scripts()
{
    let dir = tempfile::tempdir().unwrap();
    let (_node, addr) = start_node(dir.path());
    let mut cli = Terminal::open(&format!("http://{addr}"));
    cli.expect("Server Status: RUNNING");
    cli.expect("ksql> ");

    // A statement over two lines runs at its `;`. (Keys typed before the prompt shows would
    // be lost, as they are in any line editor that reads the terminal raw: wait for it.)
    cli.type_keys("CREATE STREAM clicks (id INT KEY, page STRING)\r");
    cli.expect(">");
    cli.type_keys("WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);\r");
    cli.expect(
        "\r\n Message        \r\n----------------\r\n Stream created \r\n----------------\r\n",
    );
    cli.expect("ksql> ");
    cli.type_keys("INSERT INTO clicks (id, page) VALUES (1, 'home'); INSERT INTO clicks (id, page) VALUES (2, 'about');\r");
    cli.expect("ksql> ");
    cli.type_keys("show streams;\r");
    let table = cli.expect("false    \r\n");
    assert!(
        table.contains(" Stream Name | Kafka Topic | Key Format | Value Format | Windowed \r\n")
            && table.contains(" CLICKS      | clicks      | KAFKA      | JSON         | false    "),
        "{table}"
    );
    // Up arrow brings the last statement back; Enter runs it again.
    cli.expect("ksql> ");
    cli.type_keys("\x1b[A\r");
    cli.expect(" CLICKS      | clicks ");

    // A push query's rows stream as records come, until Ctrl-C.
    cli.expect("ksql> ");
    cli.type_keys("SET 'auto.offset.reset'='earliest';\r");
    cli.expect("Successfully changed local property 'auto.offset.reset' to 'earliest'");
    cli.expect("ksql> ");
    cli.type_keys("SELECT id, page FROM clicks EMIT CHANGES;\r");
    let rows = cli.expect("|2 ");
    assert!(rows.contains("|ID  ") && rows.contains("|1  "), "{rows}");
    cli.expect("|about");
    let (status, inserted) = ksql(&addr, "INSERT INTO clicks (id, page) VALUES (3, 'late');");
    assert_eq!(status, 200, "{inserted}");
    cli.expect("|late");
    cli.type_keys("\x03");
    cli.expect("Query terminated");
    cli.expect("ksql> ");
    cli.type_keys("SELECT page FROM clicks EMIT CHANGES LIMIT 1;\r");
    cli.expect("|home");
    cli.expect("Limit Reached\r\nQuery terminated\r\n");

    // Errors say where: the parser's line and column (nothing is sent), the planner's.
    cli.expect("ksql> ");
    cli.type_keys("SHOW STREAMS; SELEC page\r");
    cli.expect(">");
    cli.type_keys("FROM clicks;\r");
    let error = cli.expect("^");
    assert!(
        error.contains("line 1:15: Syntax Error")
            && error.contains("Statement: SHOW STREAMS; SELEC page")
            && !error.contains("Stream Name"),
        "{error}"
    );
    cli.expect("ksql> ");
    cli.type_keys("SELECT nope FROM clicks EMIT CHANGES;\r");
    cli.expect("Column 'NOPE' cannot be resolved.");
    cli.expect("ksql> ");

    // Variables are the CLI's; RUN SCRIPT runs a file as if typed; a pull query answers.
    let script = dir.path().join("counts.sql");
    std::fs::write(
        &script,
        "CREATE TABLE counts AS\n  SELECT page, COUNT(*) AS n FROM ${source} GROUP BY page;\n",
    )
    .unwrap();
    cli.type_keys("DEFINE source = 'clicks'; SHOW VARIABLES;\r");
    cli.expect(" source        | clicks ");
    cli.expect("ksql> ");
    cli.type_keys(&format!("RUN SCRIPT '{}'\r", script.display()));
    cli.expect("Created query with ID CTAS_COUNTS_");
    cli.expect("ksql> ");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        cli.type_keys("SELECT page, n FROM counts WHERE page = 'late';\r");
        let answer = cli.expect("Query terminated");
        cli.expect("ksql> ");
        if answer.contains("|late") {
            assert!(answer.contains("|1 "), "{answer}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answer}");
    }

    cli.type_keys("output json\r");
    cli.expect("Output format set to JSON");
    cli.expect("ksql> ");
    cli.type_keys("SHOW TOPICS;\r");
    cli.expect("\"@type\" : \"kafka_topics\"");
    cli.expect("ksql> ");
    cli.type_keys("exit\r");
    cli.expect("Exiting ksql.");
    let status = cli.child.wait().unwrap();
    assert!(status.success(), "{status}");
}
