//! `sluice connect`: a standalone worker from Kafka-style properties files, driven through its
//! REST API by the `sluice connect` subcommands; and `sluice start` running a worker inside the
//! node.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Appends to a file as a program writing a log does. (Rewriting it would truncate it first,
/// which FileStreamSource takes for a new file and reads again from the start.)
fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// `sluice connect --url URL <args>`.
fn connect(url: &str, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg("connect")
        .arg("--url")
        .arg(url)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Polls until `check` holds (up to 30 s).
fn await_that(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_standalone_worker_runs_file_connectors_driven_by_sluice_connect() {
    let f = start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        format!(
            "# as connect-standalone.properties\nbootstrap.servers={}\nlisteners=http://127.0.0.1:0\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.storage.file.filename={}\noffset.flush.interval.ms=100\n",
            f.bootstrap(),
            dir.path().join("connect.offsets").display()
        ),
    )
    .unwrap();
    let source = dir.path().join("source.properties");
    std::fs::write(
        &source,
        format!(
            "name=local-file-source\nconnector.class=FileStreamSource\ntasks.max=1\nfile={}\ntopic=connect-test\n",
            input.display()
        ),
    )
    .unwrap();
    let sink = dir.path().join("sink.json");
    std::fs::write(
        &sink,
        serde_json::json!({"name": "local-file-sink", "config": {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "tasks.max": 1, "file": output.display().to_string(), "topics": "connect-test"}})
        .to_string(),
    )
    .unwrap();
    let path = |p: &std::path::Path| p.display().to_string();
    let mut running = Running::spawn(
        &[
            "connect",
            "standalone",
            &path(&worker),
            &path(&source),
            &path(&sink),
        ],
        None,
    );
    let line = running.line();
    let url = line
        .strip_prefix("Connect REST API on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let read_output = || std::fs::read_to_string(&output).unwrap_or_default();
    await_that("the sink's file", || read_output() == "one\ntwo\n");

    let list = ok(connect(&url, &["list"]));
    assert!(
        list.contains("local-file-source\tsource\tRUNNING\t1 task(s)"),
        "{list}"
    );
    assert!(
        list.contains("local-file-sink\tsink\tRUNNING\t1 task(s)"),
        "{list}"
    );
    let status = ok(connect(&url, &["status", "local-file-source"]));
    assert!(
        status.starts_with("connector local-file-source (source)\tRUNNING"),
        "{status}"
    );
    assert!(status.contains("task 0\tRUNNING"), "{status}");
    let plugins = ok(connect(&url, &["plugins"]));
    assert!(
        plugins.contains("org.apache.kafka.connect.file.FileStreamSourceConnector\tsource"),
        "{plugins}"
    );

    // Paused, the source leaves new lines in its file; resumed, it sends them.
    assert_eq!(
        ok(connect(&url, &["pause", "local-file-source"])),
        "Paused connector local-file-source.\n"
    );
    let paused = ok(connect(&url, &["status", "local-file-source"]));
    assert!(paused.contains("PAUSED"), "{paused}");
    ok(connect(&url, &["resume", "local-file-source"]));
    append(&input, "three\n");
    await_that("the third line", || read_output() == "one\ntwo\nthree\n");
    for name in ["local-file-source", "local-file-sink"] {
        assert_eq!(ok(connect(&url, &["topics", name])), "connect-test\n");
    }
    assert_eq!(
        ok(connect(&url, &["topics", "local-file-sink", "--reset"])),
        "Reset the topics of connector local-file-sink.\n"
    );
    assert_eq!(ok(connect(&url, &["topics", "local-file-sink"])), "");
    ok(connect(
        &url,
        &["restart", "local-file-source", "--include-tasks"],
    ));
    ok(connect(
        &url,
        &["restart", "local-file-sink", "--task", "0"],
    ));

    // Stopped, a source's offsets show and can be reset.
    ok(connect(&url, &["stop", "local-file-source"]));
    let offsets = ok(connect(&url, &["offsets", "local-file-source"]));
    let offsets: serde_json::Value = serde_json::from_str(&offsets).unwrap();
    assert_eq!(offsets["offsets"][0]["offset"]["position"], 14, "{offsets}");
    ok(connect(&url, &["offsets", "local-file-source", "--reset"]));
    let config = ok(connect(&url, &["config", "local-file-source"]));
    assert!(config.contains("\"topic\": \"connect-test\""), "{config}");

    // One more connector from flags, then validation and errors.
    ok(connect(
        &url,
        &[
            "create",
            "extra",
            "--config",
            "connector.class=FileStreamSink",
            "--config",
            &format!("file={}", dir.path().join("extra.txt").display()),
            "--config",
            "topics=connect-test",
        ],
    ));
    await_that("the extra sink", || {
        let text = std::fs::read_to_string(dir.path().join("extra.txt")).unwrap_or_default();
        text == "one\ntwo\nthree\n"
    });
    let err = fails(connect(
        &url,
        &[
            "create",
            "extra",
            "--config",
            "connector.class=FileStreamSink",
            "--config",
            "topics=t",
        ],
    ));
    assert!(
        err.contains("HTTP 409") && err.contains("already exists"),
        "{err}"
    );
    let err = fails(connect(&url, &["status", "nope"]));
    assert!(err.contains("HTTP 404: Connector nope not found"), "{err}");
    let validate = |more: &[&str]| {
        let mut args = vec![
            "validate",
            "FileStreamSink",
            "--config",
            "topics=t",
            "--config",
            "name=v",
        ];
        args.extend_from_slice(more);
        connect(&url, &args)
    };
    let invalid = validate(&[]);
    let problems = String::from_utf8_lossy(&invalid.stdout).to_string();
    assert!(problems.starts_with("file: "), "{problems}");
    let err = fails(invalid);
    assert!(err.contains("1 error(s)"), "{err}");
    let valid = validate(&["--config", "file=/tmp/x"]);
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stdout)
    );
    ok(connect(&url, &["delete", "extra"]));
    assert!(!ok(connect(&url, &["list"])).contains("extra"));
    let err = fails(connect("http://127.0.0.1:1", &["list"]));
    assert!(err.contains("connect"), "{err}");

    assert!(running.stop().success(), "a clean shutdown on SIGTERM");
}

/// A `sluice start` node on `data`, with its broker's and Connect worker's addresses.
fn start_node(dir: &std::path::Path) -> (Running, String, String) {
    start_node_with(dir, &[])
}

/// [`start_node`] with more `--override` settings.
fn start_node_with(dir: &std::path::Path, overrides: &[&str]) -> (Running, String, String) {
    let data = format!("log.dirs={}", dir.join("data").display());
    let config = dir.join("none.toml").display().to_string();
    let mut args = vec![
        "start",
        "--config",
        &config,
        "--override",
        "listeners=PLAINTEXT://127.0.0.1:0",
        "--override",
        "connect.rest.port=0",
        "--override",
        "ksql.listeners=http://127.0.0.1:0",
        "--override",
        &data,
    ];
    for setting in overrides {
        args.extend(["--override", setting]);
    }
    let mut node = Running::spawn(&args, None);
    let broker = node.line();
    let bootstrap = broker
        .strip_prefix("Sluice listening on PLAINTEXT://")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {broker:?}"))
        .to_string();
    let line = node.line();
    let url = line
        .strip_prefix("Connect REST API on ")
        .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
        .to_string();
    (node, bootstrap, url)
}

/// The file's text, or nothing while it does not exist.
fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Whether `sluice connect list` shows `name` running.
fn running(url: &str, name: &str) -> bool {
    let out = connect(url, &["status", name, "--json"]);
    out.status.success()
        && serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|status| {
            status["connector"]["state"] == "RUNNING"
                && status["tasks"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "RUNNING"))
        })
}

#[test]
fn sluice_start_runs_a_connect_worker_whose_connectors_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, bootstrap, url) = start_node(dir.path());
    // The newcomer is told what to try next, with this node's addresses.
    let mut hints = String::new();
    while !hints.contains("/connectors") {
        hints.push_str(&node.line());
        hints.push('\n');
    }
    assert!(hints.contains("Try it"), "{hints}");
    assert!(
        hints.contains(&format!("sluice produce --bootstrap-server {bootstrap}")),
        "{hints}"
    );
    assert!(hints.contains("curl -s -X POST"), "{hints}");

    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    let lines: String = (0..5000).map(|i| format!("line-{i}\n")).collect();
    std::fs::write(&input, &lines).unwrap();
    // Created through the REST API with the node's defaults: offset.flush.interval.ms is
    // Kafka's 60 s, so what the sink's file shows must not wait for it.
    ok(connect(
        &url,
        &[
            "create",
            "src",
            "--config",
            "connector.class=FileStreamSource",
            "--config",
            &format!("file={}", input.display()),
            "--config",
            "topic=lines",
        ],
    ));
    ok(connect(
        &url,
        &[
            "create",
            "sink",
            "--config",
            "connector.class=org.apache.kafka.connect.file.FileStreamSinkConnector",
            "--config",
            &format!("file={}", output.display()),
            "--config",
            "topics=lines",
        ],
    ));
    let within = |what: &str, limit: Duration, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + limit;
        while !check() {
            assert!(Instant::now() < deadline, "{what} took over {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    within("the sink's 5,000 lines", Duration::from_secs(20), &|| {
        read(&output).len() == lines.len()
    });
    // A line written after the sink started reaches its file as soon as it is read.
    append(&input, "late\n");
    within(
        "a new line in the sink's file",
        Duration::from_secs(5),
        &|| read(&output).ends_with("late\n"),
    );
    // The node's worker writes into the node's own topics, with Kafka's JSON converters
    // (schemas on).
    let consumed = Command::new("timeout")
        .args([
            "60",
            env!("CARGO_BIN_EXE_sluice"),
            "consume",
            "--bootstrap-server",
            &bootstrap,
        ])
        .args([
            "--topic",
            "lines",
            "--from-beginning",
            "--max-messages",
            "2",
        ])
        .output()
        .unwrap();
    let consumed = ok(consumed);
    assert!(
        consumed.contains("\"payload\":\"line-0\"") && consumed.contains("\"payload\":\"line-1\""),
        "{consumed}"
    );
    assert!(node.stop().success());

    // After a restart both connectors are back and running, from where they stopped.
    let (node, _, url) = start_node(dir.path());
    let listed = ok(connect(&url, &["list"]));
    assert!(
        listed.contains("src") && listed.contains("sink"),
        "{listed}"
    );
    await_that("both connectors running again", || {
        running(&url, "src") && running(&url, "sink")
    });
    append(&input, "after restart\n");
    within(
        "the line written after the restart",
        Duration::from_secs(10),
        &|| read(&output).ends_with("after restart\n"),
    );
    assert_eq!(
        read(&output),
        format!("{lines}late\nafter restart\n"),
        "every line once: nothing lost or repeated across the restart"
    );
    assert!(node.stop().success());
    // Connector configs, offsets and statuses are in the node's topics, not a file.
    assert!(!dir.path().join("data/connect.offsets").exists());
    assert!(dir.path().join("data/connect-configs-0").is_dir());
}

#[test]
fn distributed_workers_in_two_processes_hand_over_when_one_is_killed() {
    let f = start();
    let dir = tempfile::tempdir().unwrap();
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        format!(
            "group.id=cli-cluster\nbootstrap.servers={}\nlisteners=http://127.0.0.1:0\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.flush.interval.ms=100\nsession.timeout.ms=6000\nheartbeat.interval.ms=100\n\
             offset.storage.partitions=2\nstatus.storage.partitions=2\n",
            f.bootstrap()
        ),
    )
    .unwrap();
    let worker = worker.display().to_string();
    let mut workers: Vec<(Running, String)> = (0..2)
        .map(|_| {
            let mut running = Running::spawn(&["connect", "distributed", &worker], None);
            let line = running.line();
            let url = line
                .strip_prefix("Connect REST API on ")
                .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                .to_string();
            (running, url)
        })
        .collect();
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    let file = |path: &std::path::Path| format!("file={}", path.display());
    let (first, second) = (workers[0].1.clone(), workers[1].1.clone());
    ok(connect(
        &first,
        &[
            "create",
            "src",
            "--config",
            "connector.class=FileStreamSource",
            "--config",
            &file(&input),
            "--config",
            "topic=dist-lines",
        ],
    ));
    ok(connect(
        &second,
        &[
            "create",
            "sink",
            "--config",
            "connector.class=FileStreamSink",
            "--config",
            &file(&output),
            "--config",
            "topics=dist-lines",
            // Should a sink task die with its worker, its group moves on within 6 s.
            "--config",
            "consumer.override.session.timeout.ms=6000",
            "--config",
            "consumer.override.heartbeat.interval.ms=100",
        ],
    ));
    let read_output = || std::fs::read_to_string(&output).unwrap_or_default();
    await_that("the sink's file", || read_output() == "one\ntwo\n");
    let owner_of = |url: &str, name: &str| -> String {
        let status = ok(connect(url, &["status", name, "--json"]));
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        status["connector"]["worker_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // Once both workers are in the group, each runs one connector.
    await_that("the connectors to spread", || {
        owner_of(&second, "src") != owner_of(&second, "sink")
    });
    // What both connectors have reached is committed (the source's file position, the sink's
    // group offset) before the kill; records after a commit would rightly be sent again
    // (at least once).
    let offset_of = |name: &str, field: &str| -> i64 {
        let offsets = ok(connect(&second, &["offsets", name]));
        let offsets: serde_json::Value = serde_json::from_str(&offsets).unwrap();
        offsets["offsets"][0]["offset"][field]
            .as_i64()
            .unwrap_or(-1)
    };
    await_that("the source's committed position", || {
        offset_of("src", "position") == 8
    });
    await_that("the sink's committed offset", || {
        offset_of("sink", "kafka_offset") == 2
    });
    // Kill -9 the source's worker: no clean shutdown, no goodbye to the group.
    let owner = format!("http://{}", owner_of(&second, "src"));
    let dead = workers
        .iter()
        .position(|(_, url)| *url == owner)
        .expect("an owner");
    let (killed, _) = workers.remove(dead);
    killed.kill_9();
    let (survivor, survivor_url) = workers.remove(0);
    let survivor_id = survivor_url.trim_start_matches("http://").to_string();
    await_that("the survivor to run the source", || {
        owner_of(&survivor_url, "src") == survivor_id
    });
    append(&input, "three\n");
    await_that("the line written after the kill", || {
        read_output() == "one\ntwo\nthree\n"
    });
    let list = ok(connect(&survivor_url, &["list"]));
    assert!(
        list.contains("src\tsource\tRUNNING") && list.contains("sink\tsink\tRUNNING"),
        "{list}"
    );
    assert!(survivor.stop().success());
}

#[test]
fn a_connect_port_in_use_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = start_with_a_port_taken(
        dir.path(),
        &["connect.rest.port={port}", "ksql.enable=false"],
    );
    assert!(
        err.contains("connect.rest.port") && err.contains("cannot listen"),
        "{err}"
    );
}

/// The payloads of the JSON-converted lines in `topic`, read from the beginning with
/// `sluice consume --isolation-level <isolation>` until a second passes without a record.
fn lines_in(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    first_lines_in(bootstrap, topic, isolation, usize::MAX)
}

/// [`lines_in`], stopping after `max` lines (a topic still growing has no idle second).
fn first_lines_in(bootstrap: &str, topic: &str, isolation: &str, max: usize) -> Vec<String> {
    let max = max.to_string();
    let mut command = Command::new("timeout");
    command
        .args(["120", env!("CARGO_BIN_EXE_sluice"), "consume"])
        .args(["--bootstrap-server", bootstrap, "--topic", topic])
        .args(["--from-beginning", "--timeout-ms", "1000"])
        .args(["--isolation-level", isolation]);
    if max != usize::MAX.to_string() {
        command.args(["--max-messages", &max]);
    }
    let out = command.env("RUST_LOG", "warn").output().unwrap();
    // The source creates its topic with its first record.
    if String::from_utf8_lossy(&out.stderr).contains("UnknownTopicOrPartition") {
        return Vec::new();
    }
    ok(out)
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            json["payload"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

#[test]
fn an_exactly_once_file_source_on_a_node_killed_with_kill_9_writes_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let eos = ["connect.exactly.once.source.support=enabled"];
    let (node, bootstrap, url) = start_node_with(dir.path(), &eos);
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "").unwrap();
    ok(connect(
        &url,
        &[
            "create",
            "src",
            "--config",
            "connector.class=FileStreamSource",
            "--config",
            &format!("file={}", input.display()),
            "--config",
            "topic=eos-lines",
            "--config",
            "exactly.once.support=required",
            // Transactions of a few polls each: the kill lands inside one.
            "--config",
            "transaction.boundary=interval",
            "--config",
            "transaction.boundary.interval.ms=200",
        ],
    ));
    // The file grows while the source tails it, across the kill and the restart: 500 lines
    // every 20 ms until told to stop, `written` counting them.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let written = std::sync::Arc::new(AtomicUsize::new(0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let writer = {
        let (input, written, stop) = (input.clone(), written.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut chunk = 0;
            while !stop.load(Ordering::Acquire) {
                let text: String = (chunk * 500..(chunk + 1) * 500)
                    .map(|i| format!("line-{i}\n"))
                    .collect();
                append(&input, &text);
                chunk += 1;
                written.store(chunk * 500, Ordering::Release);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Killed (node and worker in one process) while lines keep coming and some are out.
    let started = Instant::now();
    while first_lines_in(&bootstrap, "eos-lines", "read_uncommitted", 2_000).len() < 2_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no lines written"
        );
    }
    node.kill_9();
    let (node, bootstrap, url) = start_node_with(dir.path(), &eos);
    await_that("the source running again", || running(&url, "src"));
    // More lines after the restart, then the file stops growing.
    let at_restart = written.load(Ordering::Acquire);
    await_that("more lines after the restart", || {
        written.load(Ordering::Acquire) >= at_restart + 5_000
    });
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    let n = written.load(Ordering::Acquire);
    let deadline = Instant::now() + Duration::from_secs(120);
    let committed = loop {
        let committed = lines_in(&bootstrap, "eos-lines", "read_committed");
        if committed.len() >= n {
            break committed;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} lines committed",
            committed.len()
        );
    };
    let expected: Vec<String> = (0..n).map(|i| format!("line-{i}")).collect();
    assert!(committed == expected, "every line once, in order");
    // A transaction open when the node was killed wrote lines it never committed: they
    // stay in the log, aborted, and read_committed consumers never see them. (A kill that
    // falls between two transactions leaves none, so the log holds at least every line.)
    let everything = lines_in(&bootstrap, "eos-lines", "read_uncommitted");
    assert!(everything.len() >= n, "{} lines in all", everything.len());
    assert!(node.stop().success());
}
