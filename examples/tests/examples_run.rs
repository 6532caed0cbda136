//! The examples run and do what they print.

use std::process::Command;

#[test]
fn embedded_quickstart_produces_consumes_and_reports_no_lag() {
    let dir = tempfile::tempdir().unwrap();
    // `timeout` bounds the run; the example itself needs about a second.
    let out = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_embedded-quickstart"))
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
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
