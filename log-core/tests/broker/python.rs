//! The Python clients (confluent-kafka, kafka-python, aiokafka from PyPI) against the broker.
//! Each script in `tests/clients/` checks admin, produce (every codec and acks setting), consume
//! (from the beginning and from a timestamp) and an over-sized message, and exits non-zero on
//! the first failure. `transactions.py` checks transactions with all three.

use super::fixtures::{run_bounded, TestBroker};

fn run_client_script(script: &str) {
    run_client_script_with(script, &[]);
}

fn run_client_script_with(script: &str, args: &[&str]) {
    run_client_script_on(script, args, &[]);
}

fn run_client_script_on(script: &str, args: &[&str], props: &[(&str, &str)]) {
    let mut all_props = vec![
        ("message.max.bytes", "100000"),
        ("group.initial.rebalance.delay.ms", "0"),
    ];
    all_props.extend_from_slice(props);
    let broker = TestBroker::start(&all_props);
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let bootstrap = broker.bootstrap();
    let mut all = vec![path.as_str(), bootstrap.as_str()];
    all.extend_from_slice(args);
    let out = run_bounded(180, "python3", &all, b"");
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}

#[test]
fn confluent_kafka() {
    run_client_script("confluent_kafka_client.py");
}

#[test]
fn kafka_python() {
    run_client_script("kafka_python_client.py");
}

#[test]
fn aiokafka() {
    run_client_script("aiokafka_client.py");
}

#[test]
fn confluent_kafka_group_of_three() {
    run_client_script("confluent_kafka_group.py");
}

#[test]
fn confluent_kafka_group_of_three_rebalancing_incrementally() {
    run_client_script_with("confluent_kafka_group.py", &["cooperative-sticky"]);
}

#[test]
fn confluent_kafka_static_members_are_fenced_and_expire_on_time() {
    run_client_script("confluent_kafka_static.py");
}

#[test]
fn kafka_python_and_aiokafka_groups() {
    run_client_script("python_groups.py");
}

#[test]
fn transactions_with_confluent_kafka_kafka_python_and_aiokafka() {
    run_client_script_on(
        "transactions.py",
        &[],
        &[(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "200",
        )],
    );
}
