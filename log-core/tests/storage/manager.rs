//! The log manager: many partitions, clean and unclean reopen, per-topic configs, background
//! retention, deletion.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sluice_log::{FetchIsolation, LogManager, LogManagerConfig, TopicPartition};

use super::fixtures::{await_condition, batch, read_values};

fn values(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("value-{i}").into_bytes()).collect()
}

#[test]
fn thousands_of_partitions_reopen_clean_without_recovery_and_unclean_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogManagerConfig::new(dir.path());
    let (manager, stats) = LogManager::open(config.clone(), HashMap::new()).unwrap();
    assert_eq!(stats.partitions, 0);
    let n_partitions = 2000;
    for partition in 0..n_partitions {
        let log = manager
            .create(TopicPartition::new("many", partition))
            .unwrap();
        if partition % 10 == 0 {
            log.lock()
                .append_as_leader(&batch(None, &values(3), 1), 0)
                .unwrap();
        }
    }
    manager.shutdown().unwrap();
    drop(manager);

    let (manager, stats) = LogManager::open(config.clone(), HashMap::new()).unwrap();
    assert_eq!(stats.partitions, n_partitions as usize);
    assert!(stats.clean_shutdown);
    assert_eq!(stats.recovery.segments_recovered, 0);
    let log = manager.get(&TopicPartition::new("many", 10)).unwrap();
    assert_eq!(log.lock().log_end_offset(), 3);
    assert_eq!(
        log.lock().high_watermark(),
        0,
        "nobody advanced the high watermark"
    );
    log.lock().set_high_watermark(3);
    // Appends continue after the checkpointed end.
    let info = log
        .lock()
        .append_as_leader(&batch(None, &values(1), 2), 0)
        .unwrap();
    assert_eq!(info.first_offset, 3);
    drop(log);
    manager.write_checkpoints().unwrap();
    // No shutdown: the next open is unclean and recovers every partition, in parallel.
    drop(manager);
    let (manager, stats) = LogManager::open(config, HashMap::new()).unwrap();
    assert!(!stats.clean_shutdown);
    assert_eq!(stats.partitions, n_partitions as usize);
    assert!(stats.recovery.segments_recovered >= n_partitions as usize);
    let log = manager.get(&TopicPartition::new("many", 10)).unwrap();
    let mut log = log.lock();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(
        log.high_watermark(),
        3,
        "high watermark comes back from its checkpoint"
    );
    assert_eq!(read_values(&mut log).len(), 4);
}

#[test]
fn topic_overrides_win_over_broker_defaults_and_bad_ones_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogManagerConfig::new(dir.path());
    config.defaults = config
        .defaults
        .with_overrides([("internal.segment.bytes", "100000")])
        .unwrap();
    let overrides: HashMap<String, BTreeMap<String, String>> = [(
        "small".to_string(),
        [("internal.segment.bytes".to_string(), "300".to_string())].into(),
    )]
    .into();
    let (manager, _) = LogManager::open(config.clone(), overrides).unwrap();
    let small = manager.create(TopicPartition::new("small", 0)).unwrap();
    let big = manager.create(TopicPartition::new("big", 0)).unwrap();
    for _ in 0..10 {
        small
            .lock()
            .append_as_leader(&batch(None, &values(2), 1), 0)
            .unwrap();
        big.lock()
            .append_as_leader(&batch(None, &values(2), 1), 0)
            .unwrap();
    }
    assert!(small.lock().segment_count() > 1);
    assert_eq!(big.lock().segment_count(), 1);

    let err = manager
        .set_topic_config(
            "big",
            [("retention.ms".to_string(), "soon".to_string())].into(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("retention.ms"), "{err}");
    manager
        .set_topic_config(
            "big",
            [("internal.segment.bytes".to_string(), "300".to_string())].into(),
        )
        .unwrap();
    big.lock()
        .append_as_leader(&batch(None, &values(2), 1), 0)
        .unwrap();
    assert_eq!(big.lock().segment_count(), 2);

    let bad: HashMap<String, BTreeMap<String, String>> = [(
        "x".to_string(),
        [("cleanup.policy".to_string(), "sometimes".to_string())].into(),
    )]
    .into();
    let err = LogManager::open(config, bad).err().unwrap();
    assert!(err.to_string().contains("cleanup.policy"), "{err}");

    let err = manager
        .create(TopicPartition::new("bad topic", 0))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("characters other than ASCII alphanumerics"),
        "{err}"
    );
    let err = manager
        .create(TopicPartition::new("small", 0))
        .err()
        .unwrap();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn background_tasks_apply_retention_and_compaction_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogManagerConfig::new(dir.path());
    config.retention_check_interval = Duration::from_millis(20);
    config.flush_scheduler_interval = Duration::from_millis(20);
    config.checkpoint_interval = Duration::from_millis(20);
    config.cleaner_backoff = Duration::from_millis(20);
    let overrides: HashMap<String, BTreeMap<String, String>> = [
        (
            "old".to_string(),
            [("internal.segment.bytes", "300"), ("retention.ms", "60000")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        (
            "keys".to_string(),
            [
                ("internal.segment.bytes", "300"),
                ("cleanup.policy", "compact"),
                ("min.cleanable.dirty.ratio", "0.01"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
    ]
    .into();
    let (manager, _) = LogManager::open(config, overrides).unwrap();
    let old = manager.create(TopicPartition::new("old", 0)).unwrap();
    let keys = manager.create(TopicPartition::new("keys", 0)).unwrap();
    for idx in 0..20 {
        // Timestamps from 1970: everything but the active segment is past retention.
        old.lock()
            .append_as_leader(&batch(None, &values(2), idx), 0)
            .unwrap();
        let key = format!("k{}", idx % 2);
        keys.lock()
            .append_as_leader(&batch(Some(key.as_bytes()), &values(1), idx), 0)
            .unwrap();
    }
    let old_segments = old.lock().segment_count();
    let keys_size = keys.lock().size_in_bytes();
    manager.start_background_tasks().unwrap();
    await_condition("retention", Duration::from_secs(20), || {
        old.lock().segment_count() == 1
    });
    await_condition("compaction", Duration::from_secs(20), || {
        keys.lock().size_in_bytes() < keys_size / 2
    });
    assert!(old_segments > 1);
    assert!(old.lock().log_start_offset() > 0);
    let mut keys = keys.lock();
    let rows = read_values(&mut keys);
    assert!(rows.len() < 20);
    assert_eq!(rows.last().unwrap().0, 19, "the latest record survives");
    drop(keys);
    manager.shutdown().unwrap();
}

#[test]
fn deleted_partitions_leave_no_files_and_reads_after_delete_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, _) = LogManager::open(LogManagerConfig::new(dir.path()), HashMap::new()).unwrap();
    let tp = TopicPartition::new("gone", 3);
    let log = manager.create(tp.clone()).unwrap();
    log.lock()
        .append_as_leader(&batch(None, &values(5), 1), 0)
        .unwrap();
    // A reader holding a slice keeps its bytes readable after deletion.
    let slice = log
        .lock()
        .read(0, 1 << 20, FetchIsolation::LogEnd, true)
        .unwrap()
        .records
        .unwrap();
    manager.delete(&tp).unwrap();
    assert!(!dir.path().join("gone-3").exists());
    assert_eq!(slice.to_bytes().unwrap().len(), slice.len());
    assert!(manager.get(&tp).is_none());
    assert!(manager.delete(&tp).is_err());
    // A half-finished deletion is completed on open.
    std::fs::create_dir(dir.path().join("gone-4.123-delete")).unwrap();
    manager.shutdown().unwrap();
    drop(manager);
    let (manager, stats) =
        LogManager::open(LogManagerConfig::new(dir.path()), HashMap::new()).unwrap();
    assert_eq!(stats.partitions, 0);
    assert!(manager.is_empty());
    assert!(!dir.path().join("gone-4.123-delete").exists());
}
