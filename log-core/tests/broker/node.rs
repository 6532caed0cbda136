//! kafkajs (npm) against the broker: `tests/clients/kafkajs_transactions.js` checks an
//! idempotent producer, transactions and read_committed / read_uncommitted consumers.
//!
//! kafkajs is looked up in `$NODE_PATH`, else in `~/.cache/sluice-node/node_modules`, where
//! `.ci/run` installs it (outside the clone, so the repository keeps no `node_modules`).

use super::fixtures::{run_bounded, TestBroker};

fn node_path() -> String {
    std::env::var("NODE_PATH").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/sluice-node/node_modules")
    })
}

#[test]
fn kafkajs_transactions_and_read_committed_consumers() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let script = format!(
        "{}/tests/clients/kafkajs_transactions.js",
        env!("CARGO_MANIFEST_DIR")
    );
    let node_path = format!("NODE_PATH={}", node_path());
    let bootstrap = broker.bootstrap();
    let out = run_bounded(
        150,
        "env",
        &[
            node_path.as_str(),
            "node",
            script.as_str(),
            bootstrap.as_str(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "kafkajs_transactions.js failed ({}; kafkajs from {node_path}, installed by .ci/run):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}
