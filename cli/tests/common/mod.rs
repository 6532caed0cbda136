//! Fixtures the CLI tests share: an in-process broker, and `sluice` run against it with a
//! bound on its time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use sluice_log::embedded::EmbeddedBroker;

pub struct Fixture {
    /// The in-process broker; None when the tests run against an external one.
    pub broker: Option<EmbeddedBroker>,
    bootstrap: String,
    pub _dir: tempfile::TempDir,
}

impl Fixture {
    /// Where the broker listens.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }
}

/// An in-process broker, or with `SLUICE_TEST_BOOTSTRAP` set the external broker it names
/// (Apache Kafka, from `compat/kafka/run-layers.sh`), emptied first.
pub fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    if let Some(bootstrap) = sluice_log::testing::external_bootstrap() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(sluice_log::testing::reset_external_broker(&bootstrap))
            .unwrap();
        return Fixture {
            broker: None,
            bootstrap,
            _dir: dir,
        };
    }
    let props: BTreeMap<String, String> = [
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        ("log.dirs".to_string(), dir.path().display().to_string()),
        ("message.max.bytes".to_string(), "100000".to_string()),
        (
            "group.initial.rebalance.delay.ms".to_string(),
            "0".to_string(),
        ),
    ]
    .into();
    let broker = EmbeddedBroker::start(&props).unwrap();
    Fixture {
        bootstrap: broker.bootstrap().unwrap(),
        broker: Some(broker),
        _dir: dir,
    }
}

/// Runs `sluice <args>` against the fixture with `stdin`, bounded by coreutils' `timeout`.
pub fn sluice(fixture: &Fixture, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_BOOTSTRAP_SERVER", fixture.bootstrap())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub fn fails(output: Output) -> String {
    assert!(
        !output.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

/// `sluice start` on `dir` with `overrides` (a `{port}` in them becomes a port held open
/// meanwhile), expected to fail: its standard error.
pub fn start_with_a_port_taken(dir: &std::path::Path, overrides: &[&str]) -> String {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut command = std::process::Command::new("timeout");
    command
        .args(["60", env!("CARGO_BIN_EXE_sluice"), "start", "--config"])
        .arg(dir.join("none.toml"))
        .args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
        .args([
            "--override",
            &format!("log.dirs={}", dir.join("data").display()),
        ]);
    for setting in overrides {
        command.args(["--override", &setting.replace("{port}", &port)]);
    }
    fails(command.env("RUST_LOG", "warn").output().unwrap())
}

/// Runs `sluice bench <args> --json` (bounded by 120 s) and returns its report, checking that
/// each of `figures` is a positive number.
pub fn bench_report(args: &[&str], figures: &[&str]) -> serde_json::Value {
    let output = Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let out = ok(output);
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in figures {
        assert!(
            report[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {out}"
        );
    }
    report
}

/// Runs `sluice bench <args>` expecting it to fail, and returns its error output.
pub fn bench_fails(args: &[&str]) -> String {
    let output = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    fails(output)
}

/// A long-running `sluice` process, killed (SIGTERM) when dropped; at most 120 s.
pub struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Running {
    pub fn spawn(args: &[&str], bootstrap: Option<&str>) -> Running {
        let mut command = Command::new("timeout");
        command
            .arg("120")
            .arg(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(bootstrap) = bootstrap {
            command.env("SLUICE_BOOTSTRAP_SERVER", bootstrap);
        }
        let mut child = command.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Running { child, stdout }
    }

    /// The next line of output (bounded by the process's own timeout).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the process ended without printing");
        line.trim_end().to_string()
    }

    /// SIGTERM, then its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        // `timeout` passes the signal on to sluice.
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    /// A test that failed half-way leaves no `sluice` behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &self.child.id().to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// SIGKILL to sluice (not to the `timeout` wrapping it), then waits for it to end.
    pub fn kill_9(mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
