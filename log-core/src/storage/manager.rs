//! The log manager: owns the data directories (`log.dirs`), opens every partition in them in
//! parallel, creates and deletes partitions, applies per-topic configs over broker defaults,
//! writes the checkpoint files, and runs retention, flushing and compaction on a schedule.
//!
//! Opening after a clean shutdown reads no segment data: a partition costs a directory listing
//! and a `stat` per segment, and its end offset comes from the recovery point checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::checkpoint::{
    self, read_offsets, write_offsets, CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
};
use super::cleaner::{self, CleanerOptions};
use super::log::{LogCheckpoints, OpenReport, PartitionLog};
use super::now_ms;
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::model::TopicPartition;

/// File name of the high watermark checkpoint in a data directory (Kafka's name).
pub const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Marker written by a clean shutdown and removed on open.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// A partition log shared between the broker, the cleaner and the scheduler.
pub type SharedLog = Arc<Mutex<PartitionLog>>;

/// Settings of the log manager, with the Kafka broker config each mirrors.
#[derive(Debug, Clone)]
pub struct LogManagerConfig {
    /// `log.dirs`: data directories; partitions are spread over them.
    pub log_dirs: Vec<PathBuf>,
    /// Broker-wide log defaults (`log.retention.ms`, ...), overridden per topic.
    pub defaults: LogConfig,
    /// `num.recovery.threads.per.data.dir`: threads opening and recovering partitions.
    pub recovery_threads: usize,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Duration,
    /// `log.flush.scheduler.interval.ms`: how often `flush.ms` is checked.
    pub flush_scheduler_interval: Duration,
    /// `log.flush.offset.checkpoint.interval.ms`: how often checkpoints are written.
    pub checkpoint_interval: Duration,
    /// `log.cleaner.enable`.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: pause between cleaning rounds that found nothing to do.
    pub cleaner_backoff: Duration,
    /// Cleaner memory and thresholds.
    pub cleaner: CleanerOptions,
    /// `producer.id.expiration.ms`: idempotent producers silent this long are forgotten at the
    /// next retention pass.
    pub producer_id_expiration: Duration,
}

impl LogManagerConfig {
    /// Kafka's defaults for one data directory.
    pub fn new(log_dir: impl Into<PathBuf>) -> LogManagerConfig {
        LogManagerConfig {
            log_dirs: vec![log_dir.into()],
            defaults: LogConfig::default(),
            recovery_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            retention_check_interval: Duration::from_millis(300_000),
            flush_scheduler_interval: Duration::from_millis(1_000),
            checkpoint_interval: Duration::from_millis(60_000),
            cleaner_enable: true,
            cleaner_backoff: Duration::from_millis(15_000),
            cleaner: CleanerOptions::default(),
            producer_id_expiration: Duration::from_millis(86_400_000),
        }
    }
}

/// What opening the data directories found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenStats {
    /// Partitions opened.
    pub partitions: usize,
    /// Whether the previous shutdown was clean (no recovery needed).
    pub clean_shutdown: bool,
    /// Totals of every partition's recovery.
    pub recovery: OpenReport,
}

struct ManagedLog {
    dir_idx: usize,
    log: SharedLog,
}

struct Background {
    stop: mpsc::Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

/// Owns every partition log of a node.
pub struct LogManager {
    config: LogManagerConfig,
    /// The broker-wide defaults in force: `config.defaults` until dynamic broker configs
    /// change them ([`LogManager::set_defaults`]).
    defaults: RwLock<LogConfig>,
    logs: RwLock<HashMap<TopicPartition, ManagedLog>>,
    topic_overrides: RwLock<HashMap<Arc<str>, BTreeMap<String, String>>>,
    first_dirty: Mutex<HashMap<TopicPartition, i64>>,
    background: Mutex<Option<Background>>,
    /// Serialises checkpoint writers.
    checkpoint_lock: Mutex<()>,
    /// Held `.lock` files: one process per data directory, as Kafka enforces.
    _dir_locks: Mutex<Vec<std::fs::File>>,
}

/// File locked by the process that owns a data directory.
pub const LOCK_FILE: &str = ".lock";

impl LogManager {
    /// Opens (creating if needed) the data directories and every partition in them.
    /// `topic_overrides` are the per-topic configs kept by the caller (the broker's metadata).
    pub fn open(
        config: LogManagerConfig,
        topic_overrides: HashMap<String, BTreeMap<String, String>>,
    ) -> Result<(Arc<LogManager>, OpenStats)> {
        if config.log_dirs.is_empty() {
            return Err(Error::InvalidConfig {
                key: "log.dirs".into(),
                value: String::new(),
                reason: "no data directory".into(),
            });
        }
        let mut overrides = HashMap::new();
        for (topic, props) in topic_overrides {
            config
                .defaults
                .with_overrides(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            overrides.insert(Arc::<str>::from(topic), props);
        }
        let manager = LogManager {
            defaults: RwLock::new(config.defaults.clone()),
            config,
            logs: RwLock::new(HashMap::new()),
            topic_overrides: RwLock::new(overrides),
            first_dirty: Mutex::new(HashMap::new()),
            background: Mutex::new(None),
            checkpoint_lock: Mutex::new(()),
            _dir_locks: Mutex::new(Vec::new()),
        };
        let mut stats = OpenStats {
            clean_shutdown: true,
            ..Default::default()
        };
        for (dir_idx, dir) in manager.config.log_dirs.iter().enumerate() {
            let dir_stats = manager.open_dir(dir_idx, dir)?;
            stats.partitions += dir_stats.partitions;
            stats.clean_shutdown &= dir_stats.clean_shutdown;
            stats.recovery.segments_recovered += dir_stats.recovery.segments_recovered;
            stats.recovery.bytes_truncated += dir_stats.recovery.bytes_truncated;
            stats.recovery.segments_dropped += dir_stats.recovery.segments_dropped;
        }
        Ok((Arc::new(manager), stats))
    }

    fn open_dir(&self, dir_idx: usize, dir: &Path) -> Result<OpenStats> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create data directory", dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("open lock file", &lock_path, e))?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => Error::io(
                "lock data directory (is another Sluice process using it?)",
                &lock_path,
                std::io::Error::new(std::io::ErrorKind::WouldBlock, "already locked"),
            ),
            std::fs::TryLockError::Error(err) => Error::io("lock data directory", &lock_path, err),
        })?;
        self._dir_locks.lock().push(lock);
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean_shutdown = marker.exists();
        let recovery_points = read_offsets(&dir.join(RECOVERY_POINT_CHECKPOINT))?;
        let start_offsets = read_offsets(&dir.join(LOG_START_OFFSET_CHECKPOINT))?;
        let high_watermarks = read_offsets(&dir.join(HIGH_WATERMARK_CHECKPOINT))?;
        self.first_dirty
            .lock()
            .extend(read_offsets(&dir.join(CLEANER_OFFSET_CHECKPOINT))?);

        let mut partition_dirs = Vec::new();
        let entries =
            std::fs::read_dir(dir).map_err(|e| Error::io("list data directory", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list data directory", dir, e))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("-delete") {
                // A deletion that a crash interrupted.
                std::fs::remove_dir_all(&path)
                    .map_err(|e| Error::io("delete partition directory", &path, e))?;
                continue;
            }
            match TopicPartition::from_dir_name(&name) {
                Ok(tp) => partition_dirs.push((tp, path)),
                Err(err) => {
                    tracing::warn!(dir = %path.display(), %err, "ignoring directory that is not a partition")
                }
            }
        }

        // Open partitions on `recovery_threads` threads that take the next one from a counter.
        let next = AtomicUsize::new(0);
        let opened = Mutex::new(Vec::with_capacity(partition_dirs.len()));
        let first_error = Mutex::new(None);
        let n_threads = self
            .config
            .recovery_threads
            .clamp(1, partition_dirs.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..n_threads {
                scope.spawn(|| loop {
                    let idx = next.fetch_add(1, Ordering::Relaxed);
                    let Some((tp, path)) = partition_dirs.get(idx) else {
                        break;
                    };
                    if first_error.lock().is_some() {
                        break;
                    }
                    let checkpoints = LogCheckpoints {
                        recovery_point: recovery_points.get(tp).copied(),
                        log_start_offset: start_offsets.get(tp).copied(),
                        high_watermark: high_watermarks.get(tp).copied(),
                        clean_shutdown,
                    };
                    let config = self.config_for(&tp.topic);
                    match PartitionLog::open(path, tp.clone(), Arc::new(config), checkpoints) {
                        Ok((log, report)) => opened.lock().push((tp.clone(), log, report)),
                        Err(err) => {
                            first_error.lock().get_or_insert(err);
                        }
                    }
                });
            }
        });
        if let Some(err) = first_error.into_inner() {
            return Err(err);
        }
        let mut stats = OpenStats {
            clean_shutdown,
            ..Default::default()
        };
        let mut logs = self.logs.write();
        for (tp, log, report) in opened.into_inner() {
            stats.partitions += 1;
            stats.recovery.segments_recovered += report.segments_recovered;
            stats.recovery.bytes_truncated += report.bytes_truncated;
            stats.recovery.segments_dropped += report.segments_dropped;
            logs.insert(
                tp,
                ManagedLog {
                    dir_idx,
                    log: Arc::new(Mutex::new(log)),
                },
            );
        }
        drop(logs);
        // From now on a crash is an unclean shutdown.
        if clean_shutdown {
            std::fs::remove_file(&marker)
                .map_err(|e| Error::io("remove clean shutdown marker", &marker, e))?;
        }
        if !clean_shutdown && stats.partitions > 0 {
            tracing::info!(dir = %dir.display(), partitions = stats.partitions,
                segments = stats.recovery.segments_recovered, truncated_bytes = stats.recovery.bytes_truncated,
                "recovered logs after an unclean shutdown");
        }
        Ok(stats)
    }

    /// The effective config of `topic`: broker defaults with the topic's overrides.
    pub fn config_for(&self, topic: &str) -> LogConfig {
        let defaults = self.defaults.read().clone();
        let overrides = self.topic_overrides.read();
        match overrides.get(topic) {
            // Overrides were validated when they were set.
            Some(props) => defaults
                .with_overrides(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap_or(defaults),
            None => defaults,
        }
    }

    /// The broker-wide defaults in force.
    pub fn defaults(&self) -> LogConfig {
        self.defaults.read().clone()
    }

    /// Replaces the broker-wide defaults (dynamic broker configs) and applies them to every
    /// log, each with its topic's overrides on top.
    pub fn set_defaults(&self, defaults: LogConfig) {
        *self.defaults.write() = defaults;
        let logs = self.logs.read();
        let mut by_topic: HashMap<Arc<str>, Arc<LogConfig>> = HashMap::new();
        for (tp, managed) in logs.iter() {
            let config = by_topic
                .entry(tp.topic.clone())
                .or_insert_with(|| Arc::new(self.config_for(&tp.topic)))
                .clone();
            managed.log.lock().set_config(config);
        }
    }

    /// Replaces the overrides of `topic` after validating them, and applies them to its logs.
    pub fn set_topic_config(&self, topic: &str, props: BTreeMap<String, String>) -> Result<()> {
        let config = Arc::new(
            self.defaults
                .read()
                .with_overrides(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        );
        self.topic_overrides.write().insert(Arc::from(topic), props);
        for (tp, managed) in self.logs.read().iter() {
            if &*tp.topic == topic {
                managed.log.lock().set_config(config.clone());
            }
        }
        Ok(())
    }

    /// The log of a partition.
    pub fn get(&self, tp: &TopicPartition) -> Option<SharedLog> {
        self.logs.read().get(tp).map(|managed| managed.log.clone())
    }

    /// Every partition this manager holds.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.logs.read().keys().cloned().collect()
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.logs.read().len()
    }

    /// Whether there is no partition.
    pub fn is_empty(&self) -> bool {
        self.logs.read().is_empty()
    }

    /// Creates an empty partition log in the data directory holding the fewest partitions.
    pub fn create(&self, tp: TopicPartition) -> Result<SharedLog> {
        crate::model::validate_topic_name(&tp.topic)?;
        let mut logs = self.logs.write();
        if logs.contains_key(&tp) {
            return Err(Error::PartitionExists(tp.to_string()));
        }
        let mut counts = vec![0usize; self.config.log_dirs.len()];
        for managed in logs.values() {
            counts[managed.dir_idx] += 1;
        }
        let dir_idx = counts
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| **n)
            .map_or(0, |(idx, _)| idx);
        let config = Arc::new(self.config_for(&tp.topic));
        let log = PartitionLog::create(&self.config.log_dirs[dir_idx], tp.clone(), config)?;
        let log = Arc::new(Mutex::new(log));
        logs.insert(
            tp,
            ManagedLog {
                dir_idx,
                log: log.clone(),
            },
        );
        Ok(log)
    }

    /// Deletes a partition and its files: the directory is renamed `<name>.<millis>-delete`
    /// first so that a crash midway never leaves a half-deleted partition that looks live.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        let managed = self
            .logs
            .write()
            .remove(tp)
            .ok_or_else(|| Error::UnknownPartition(tp.to_string()))?;
        self.first_dirty.lock().remove(tp);
        let log = managed.log.lock();
        let dir = log.dir().to_owned();
        let doomed = dir.with_file_name(format!("{}.{}-delete", tp.dir_name(), now_ms()));
        std::fs::rename(&dir, &doomed)
            .map_err(|e| Error::io("rename partition for deletion", &dir, e))?;
        std::fs::remove_dir_all(&doomed)
            .map_err(|e| Error::io("delete partition directory", &doomed, e))?;
        Ok(())
    }

    /// Removes a topic's overrides (after its partitions were deleted).
    pub fn forget_topic(&self, topic: &str) {
        self.topic_overrides.write().remove(topic);
    }

    fn all_logs(&self) -> Vec<(TopicPartition, usize, SharedLog)> {
        self.logs
            .read()
            .iter()
            .map(|(tp, m)| (tp.clone(), m.dir_idx, m.log.clone()))
            .collect()
    }

    /// Applies retention to every partition and forgets idempotent producers silent for
    /// `producer.id.expiration.ms`. Returns the number of segments deleted.
    pub fn run_retention(&self, now_ms: i64) -> Result<usize> {
        let mut n_deleted = 0;
        let expiration = self.config.producer_id_expiration.as_millis() as i64;
        for (_, _, log) in self.all_logs() {
            let mut log = log.lock();
            n_deleted += log.delete_old_segments(now_ms)?;
            log.remove_expired_producers(now_ms, expiration);
        }
        Ok(n_deleted)
    }

    /// Flushes partitions whose `flush.ms` has passed.
    pub fn flush_due(&self) -> Result<usize> {
        let now = Instant::now();
        let mut n_flushed = 0;
        for (_, _, log) in self.all_logs() {
            n_flushed += usize::from(log.lock().flush_if_due(now)?);
        }
        Ok(n_flushed)
    }

    /// Removes the files of deleted segments whose `file.delete.delay.ms` has passed (run by the
    /// scheduler every tick, at most a second apart).
    pub fn remove_retired_files(&self) -> Result<usize> {
        let now = Instant::now();
        let mut removed = 0;
        for (_, _, log) in self.all_logs() {
            removed += log.lock().remove_retired_files(now)?;
        }
        Ok(removed)
    }

    /// Runs one compaction pass over every compacted partition. Returns how many were cleaned.
    pub fn clean_all(&self, now_ms: i64) -> Result<usize> {
        let mut n_cleaned = 0;
        for (tp, _, log) in self.all_logs() {
            let first_dirty = self.first_dirty.lock().get(&tp).copied().unwrap_or(0);
            if let Some(stats) = cleaner::clean(&log, first_dirty, now_ms, &self.config.cleaner)? {
                self.first_dirty.lock().insert(tp, stats.next_dirty_offset);
                n_cleaned += 1;
            }
        }
        Ok(n_cleaned)
    }

    /// Writes the recovery point, log start offset, high watermark and cleaner checkpoints of
    /// every data directory.
    pub fn write_checkpoints(&self) -> Result<()> {
        let _guard = self.checkpoint_lock.lock();
        let n_dirs = self.config.log_dirs.len();
        let mut recovery = vec![Vec::new(); n_dirs];
        let mut start = vec![Vec::new(); n_dirs];
        let mut hw = vec![Vec::new(); n_dirs];
        let mut dirty = vec![Vec::new(); n_dirs];
        let first_dirty = self.first_dirty.lock().clone();
        for (tp, dir_idx, log) in self.all_logs() {
            let log = log.lock();
            recovery[dir_idx].push((tp.clone(), log.recovery_point()));
            start[dir_idx].push((tp.clone(), log.log_start_offset()));
            hw[dir_idx].push((tp.clone(), log.high_watermark()));
            if let Some(offset) = first_dirty.get(&tp) {
                dirty[dir_idx].push((tp.clone(), *offset));
            }
        }
        for (dir_idx, dir) in self.config.log_dirs.iter().enumerate() {
            for (name, list) in [
                (RECOVERY_POINT_CHECKPOINT, &recovery[dir_idx]),
                (LOG_START_OFFSET_CHECKPOINT, &start[dir_idx]),
                (HIGH_WATERMARK_CHECKPOINT, &hw[dir_idx]),
                (CLEANER_OFFSET_CHECKPOINT, &dirty[dir_idx]),
            ] {
                write_offsets(
                    &dir.join(name),
                    list.iter().map(|(tp, offset)| (tp, *offset)),
                )?;
            }
        }
        Ok(())
    }

    /// Starts the background threads: a scheduler for retention, `flush.ms` and checkpoints,
    /// and the cleaner (when `log.cleaner.enable`).
    pub fn start_background_tasks(self: &Arc<Self>) -> Result<()> {
        let mut background = self.background.lock();
        if background.is_some() {
            return Ok(());
        }
        let (stop, stop_rx) = mpsc::channel::<()>();
        let stop_rx = Arc::new(Mutex::new(stop_rx));
        let mut threads = Vec::new();
        let manager = Arc::downgrade(self);
        let rx = stop_rx.clone();
        let config = self.config.clone();
        threads.push(spawn_named("sluice-log-scheduler", move || {
            let mut last_retention = Instant::now();
            let mut last_checkpoint = Instant::now();
            let tick = config
                .flush_scheduler_interval
                .min(config.retention_check_interval)
                .min(config.checkpoint_interval);
            while wait_or_stop(&rx, tick) {
                let Some(manager) = manager.upgrade() else {
                    break;
                };
                if let Err(err) = manager.flush_due() {
                    tracing::error!(%err, "scheduled flush failed");
                }
                if let Err(err) = manager.remove_retired_files() {
                    tracing::error!(%err, "removing deleted segment files failed");
                }
                if last_retention.elapsed() >= config.retention_check_interval {
                    last_retention = Instant::now();
                    if let Err(err) = manager.run_retention(now_ms()) {
                        tracing::error!(%err, "retention failed");
                    }
                }
                if last_checkpoint.elapsed() >= config.checkpoint_interval {
                    last_checkpoint = Instant::now();
                    if let Err(err) = manager.write_checkpoints() {
                        tracing::error!(%err, "writing checkpoints failed");
                    }
                }
            }
        })?);
        if self.config.cleaner_enable {
            let manager = Arc::downgrade(self);
            let rx = stop_rx;
            let backoff = self.config.cleaner_backoff;
            threads.push(spawn_named("sluice-log-cleaner", move || {
                let mut pause = Duration::ZERO;
                while wait_or_stop(&rx, pause) {
                    let Some(manager) = manager.upgrade() else {
                        break;
                    };
                    pause = match manager.clean_all(now_ms()) {
                        Ok(0) => backoff,
                        Ok(_) => Duration::ZERO,
                        Err(err) => {
                            tracing::error!(%err, "log cleaning failed");
                            backoff
                        }
                    };
                }
            })?);
        }
        *background = Some(Background { stop, threads });
        Ok(())
    }

    /// Stops the background threads, flushes and closes every log, writes the checkpoints and
    /// the clean shutdown marker: the next open needs no recovery.
    pub fn shutdown(&self) -> Result<()> {
        if let Some(background) = self.background.lock().take() {
            drop(background.stop);
            for thread in background.threads {
                let _ = thread.join();
            }
        }
        for (_, _, log) in self.all_logs() {
            log.lock().close()?;
        }
        self.write_checkpoints()?;
        for dir in &self.config.log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            checkpoint::write_atomically(&marker, b"")?;
        }
        Ok(())
    }
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| Error::io("spawn thread", name, e))
}

/// Waits `timeout` for a stop signal; returns false when stopped (or the sender is gone).
fn wait_or_stop(rx: &Mutex<mpsc::Receiver<()>>, timeout: Duration) -> bool {
    matches!(
        rx.lock().recv_timeout(timeout),
        Err(mpsc::RecvTimeoutError::Timeout)
    )
}
