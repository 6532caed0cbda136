//! `kill -9` a writer at random moments, many times: under `flush.messages=1` every append that
//! returned must be found afterwards, at its offset, with the same bytes.
//!
//! The writer is this test binary re-run as a child on the `crash_child_writer` test, which
//! prints `ACK <offset> <length> <crc32c>` after each append returns.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sluice_log::{LogManager, LogManagerConfig, TopicPartition};

#[path = "../fixtures/mod.rs"]
mod fixtures;

use fixtures::{batch, read_values};

const CHILD_ENV: &str = "SLUICE_CRASH_CHILD_DIR";

fn manager_config(dir: &std::path::Path) -> LogManagerConfig {
    let mut config = LogManagerConfig::new(dir);
    config.defaults = config
        .defaults
        .with_overrides([
            ("flush.messages", "1"),
            ("internal.segment.bytes", "20000"),
            ("index.interval.bytes", "512"),
        ])
        .expect("config");
    config
}

fn value_for(seq: u64) -> Vec<u8> {
    let len = 20 + (seq % 200) as usize;
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

/// The writer: appends until killed. A no-op unless started by `kill_9_never_loses_an_acknowledged_record`.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (manager, _) = LogManager::open(
        manager_config(std::path::Path::new(&dir)),
        Default::default(),
    )
    .expect("open");
    let tp = TopicPartition::new("crash", 0);
    let log = match manager.get(&tp) {
        Some(log) => log,
        None => manager.create(tp).expect("create"),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut seq = log.lock().log_end_offset() as u64 * 7919;
    for _ in 0..1_000_000 {
        // 1 to 3 records per batch.
        let values: Vec<Vec<u8>> = (0..1 + seq % 3).map(|i| value_for(seq + i)).collect();
        seq += values.len() as u64;
        let records = batch(None, &values, seq as i64);
        let info = log.lock().append_as_leader(&records, 0).expect("append");
        for (idx, value) in values.iter().enumerate() {
            writeln!(
                out,
                "ACK {} {} {}",
                info.first_offset + idx as i64,
                value.len(),
                crc32c::crc32c(value)
            )
            .expect("print");
        }
        out.flush().expect("flush stdout");
    }
}

#[test]
fn kill_9_never_loses_an_acknowledged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked: BTreeMap<i64, (usize, u32)> = BTreeMap::new();
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    let mut next_random = move |bound: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % bound
    };
    for round in 0..30 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("child stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !line.starts_with("ACK ") {
                    eprintln!("writer: {line}");
                }
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let kill_after = 1 + next_random(400);
        let mut n_acks = 0;
        while n_acks < kill_after {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("writer stopped acknowledging");
            if let Some(rest) = line.strip_prefix("ACK ") {
                let fields: Vec<&str> = rest.split(' ').collect();
                let offset: i64 = fields[0].parse().expect("offset");
                acked.insert(
                    offset,
                    (
                        fields[1].parse().expect("len"),
                        fields[2].parse().expect("crc"),
                    ),
                );
                n_acks += 1;
            }
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap writer");
        // Acknowledgements already printed before the kill count too.
        reader.join().expect("reader");
        while let Ok(line) = lines_rx.try_recv() {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let fields: Vec<&str> = rest.split(' ').collect();
                acked.insert(
                    fields[0].parse().expect("offset"),
                    (
                        fields[1].parse().expect("len"),
                        fields[2].parse().expect("crc"),
                    ),
                );
            }
        }

        let (manager, stats) =
            LogManager::open(manager_config(dir.path()), Default::default()).expect("reopen");
        assert!(!stats.clean_shutdown);
        let log = manager
            .get(&TopicPartition::new("crash", 0))
            .expect("partition survives");
        let found: BTreeMap<i64, (usize, u32)> = read_values(&mut log.lock())
            .into_iter()
            .map(|(offset, value)| (offset, (value.len(), crc32c::crc32c(&value))))
            .collect();
        for (offset, expected) in &acked {
            assert_eq!(
                found.get(offset),
                Some(expected),
                "round {round}: acknowledged offset {offset} lost or changed"
            );
        }
        // Every other round, shut down cleanly so that both kinds of open are exercised.
        if round % 2 == 0 {
            manager.shutdown().expect("shutdown");
        }
    }
    assert!(
        acked.len() > 100,
        "only {} records acknowledged",
        acked.len()
    );
}
