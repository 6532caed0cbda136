//! The examples run and do what they print.

use std::process::Command;

/// Runs example `program` with `args` (bounded by `timeout`; each needs a second or two) and
/// returns what it printed, failing if it failed.
fn run_example(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn embedded_quickstart_produces_consumes_and_reports_no_lag() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_example(
        env!("CARGO_BIN_EXE_embedded-quickstart"),
        &[dir.path().as_os_str()],
    );
    for line in [
        "created topic orders",
        "produced 100 records",
        "consumed 100 records",
        "group order-processors lag 0",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn word_count_counts_every_word_across_two_instances() {
    let stdout = run_example(env!("CARGO_BIN_EXE_word-count"), &[]);
    for line in [
        "produced 4 lines, 16 words",
        "the: 3",
        "dog: 3",
        "fox: 2",
        "a: 2",
        "lazy: 1",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
}

#[test]
fn page_views_counts_views_per_region_and_minute() {
    let stdout = run_example(env!("CARGO_BIN_EXE_page-views"), &[]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "produced 4 profiles and 8 page views",
            "minute 0 eu: 3",
            "minute 0 us: 1",
            "minute 1 apac: 1",
            "minute 1 eu: 1",
            "minute 1 us: 2",
        ],
        "{stdout}"
    );
}

#[test]
fn fraud_sessions_alerts_once_per_suspicious_session() {
    let stdout = run_example(env!("CARGO_BIN_EXE_fraud-sessions"), &[]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "produced 9 payments of 4 cards",
            "alert: card 3782 from minute 20 to 20: 1 payment, $2500.00",
            "alert: card 4111 from minute 0 to 3: 4 payments, $1073.50",
        ],
        "{stdout}"
    );
}
