//! The configs distributed workers share, in `config.storage.topic` (one partition, compacted),
//! with Kafka Connect's record keys and JSON values:
//!
//! - `connector-<name>` → `{"properties": {...}}` (a tombstone deletes the connector);
//! - `task-<name>-<id>` → `{"properties": {...}}`, then `commit-<name>` → `{"tasks": n}`
//!   makes tasks `0..n` the connector's task configs;
//! - `target-state-<name>` → `{"state": "STARTED" | "PAUSED", "state.v2": "STOPPED"}`;
//! - `restart-connector-<name>` → `{"include-tasks": bool, "only-failed": bool}` (and, for one
//!   task, `"task": id`: Kafka forwards those to the leader instead).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use serde_json::{json, Value as Json};
use sluice_log::client::consumer::ConsumerRecord;
use sluice_log::client::Client;
use tokio::sync::watch;

use super::kafka_log::{json_value, text_key, KafkaLog};
use crate::connector::Props;
use crate::error::Result;
use crate::worker::TargetState;

/// A restart asked of a connector's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartRequest {
    /// Where in the config topic it was asked (each is acted on once).
    pub offset: i64,
    /// Restart the tasks too.
    pub include_tasks: bool,
    /// Only what has failed.
    pub only_failed: bool,
    /// Only this task.
    pub task: Option<usize>,
}

/// Every connector's config, task configs, target state and latest restart request.
#[derive(Debug, Clone, Default)]
pub struct ConfigSnapshot {
    /// Connector configs by name.
    pub connectors: BTreeMap<String, Props>,
    /// Committed task configs by connector.
    pub tasks: BTreeMap<String, Vec<Props>>,
    /// Target states by connector (absent: started).
    pub targets: BTreeMap<String, TargetState>,
    /// The latest restart request of each connector.
    pub restarts: BTreeMap<String, RestartRequest>,
    /// Task configs read but not committed yet.
    pending: BTreeMap<(String, usize), Props>,
    /// The next offset to read.
    pub offset: i64,
}

impl ConfigSnapshot {
    /// A connector's target state.
    pub fn target(&self, name: &str) -> TargetState {
        self.targets
            .get(name)
            .copied()
            .unwrap_or(TargetState::Started)
    }

    fn apply(&mut self, record: &ConsumerRecord) {
        self.offset = record.offset + 1;
        let Some(key) = text_key(record) else {
            return;
        };
        let value = json_value(record);
        if let Some(name) = key.strip_prefix("connector-") {
            match value
                .as_ref()
                .and_then(|v| properties(v.get("properties")?))
            {
                Some(props) => {
                    self.connectors.insert(name.to_string(), props);
                }
                None => {
                    self.connectors.remove(name);
                    self.tasks.remove(name);
                    self.targets.remove(name);
                    self.restarts.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            let Some((name, id)) = rest.rsplit_once('-') else {
                return;
            };
            let (Ok(id), Some(props)) = (
                id.parse::<usize>(),
                value
                    .as_ref()
                    .and_then(|v| properties(v.get("properties")?)),
            ) else {
                return;
            };
            self.pending.insert((name.to_string(), id), props);
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = value
                .as_ref()
                .and_then(|v| v.get("tasks")?.as_u64())
                .unwrap_or(0) as usize;
            let tasks: Option<Vec<Props>> = (0..count)
                .map(|id| self.pending.get(&(name.to_string(), id)).cloned())
                .collect();
            match tasks {
                Some(tasks) => {
                    self.tasks.insert(name.to_string(), tasks);
                }
                None => tracing::warn!(
                    connector = name,
                    count,
                    "a task commit without its task configs; ignored"
                ),
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            let state = value.as_ref().and_then(|v| {
                v.get("state.v2")
                    .or_else(|| v.get("state"))
                    .and_then(Json::as_str)
                    .map(str::to_string)
            });
            let target = match state.as_deref() {
                None => {
                    // A tombstone: no state of its own (a deletion's).
                    self.targets.remove(name);
                    return;
                }
                Some("PAUSED") => TargetState::Paused,
                Some("STOPPED") => TargetState::Stopped,
                Some(_) => TargetState::Started,
            };
            self.targets.insert(name.to_string(), target);
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            let Some(v) = value else {
                return;
            };
            let flag = |k: &str| v.get(k).and_then(Json::as_bool).unwrap_or(false);
            self.restarts.insert(
                name.to_string(),
                RestartRequest {
                    offset: record.offset,
                    include_tasks: flag("include-tasks"),
                    only_failed: flag("only-failed"),
                    task: v.get("task").and_then(Json::as_u64).map(|t| t as usize),
                },
            );
        }
    }
}

fn properties(value: &Json) -> Option<Props> {
    let Json::Object(map) = value else {
        return None;
    };
    Some(
        map.iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect(),
    )
}

/// The config topic, read whole and tailed; writes return once read back.
pub struct ConfigLog {
    log: KafkaLog,
    snapshot: Arc<RwLock<ConfigSnapshot>>,
    changes: watch::Receiver<i64>,
}

impl ConfigLog {
    /// Reads `topic` (created with one partition if missing) and keeps up with it.
    pub async fn start(client: &Arc<Client>, topic: &str, replication: i16) -> Result<ConfigLog> {
        let snapshot = Arc::new(RwLock::new(ConfigSnapshot::default()));
        let (changed, changes) = watch::channel(0i64);
        let applied = snapshot.clone();
        let log = KafkaLog::start(client, topic, 1, replication, move |record| {
            let offset = {
                let mut snapshot = applied.write();
                snapshot.apply(record);
                snapshot.offset
            };
            let _ = changed.send(offset);
        })
        .await?;
        log.read_to_end().await?;
        Ok(ConfigLog {
            log,
            snapshot,
            changes,
        })
    }

    /// What is known now.
    pub fn snapshot(&self) -> ConfigSnapshot {
        self.snapshot.read().clone()
    }

    /// The next offset to read.
    pub fn offset(&self) -> i64 {
        self.snapshot.read().offset
    }

    /// Changes when a record has been read.
    pub fn changes(&self) -> watch::Receiver<i64> {
        self.changes.clone()
    }

    /// Reads what was written before the call.
    pub async fn read_to_end(&self) -> Result<()> {
        self.log.read_to_end().await
    }

    async fn put(&self, key: String, value: Option<Json>) -> Result<()> {
        let value = value.map(|v| Bytes::from(v.to_string()));
        self.log.send(Bytes::from(key), value).await
    }

    /// Writes a connector's config.
    pub async fn put_connector(&self, name: &str, props: &Props) -> Result<()> {
        self.put(
            format!("connector-{name}"),
            Some(json!({ "properties": props })),
        )
        .await
    }

    /// Deletes a connector: its config first (readers forget the rest with it, so a
    /// stopped connector is never seen started on the way out), then its target state and
    /// task commit, which compaction may then drop.
    pub async fn delete_connector(&self, name: &str) -> Result<()> {
        self.put(format!("connector-{name}"), None).await?;
        self.put(format!("target-state-{name}"), None).await?;
        self.put(format!("commit-{name}"), None).await
    }

    /// Writes a connector's target state.
    pub async fn put_target(&self, name: &str, target: TargetState) -> Result<()> {
        let value = match target {
            TargetState::Started => json!({"state": "STARTED"}),
            TargetState::Paused => json!({"state": "PAUSED"}),
            // Older readers see PAUSED, as Kafka writes it.
            TargetState::Stopped => json!({"state": "PAUSED", "state.v2": "STOPPED"}),
        };
        self.put(format!("target-state-{name}"), Some(value)).await
    }

    /// Writes a connector's task configs and commits them.
    pub async fn put_tasks(&self, name: &str, tasks: &[Props]) -> Result<()> {
        for (id, props) in tasks.iter().enumerate() {
            self.put(
                format!("task-{name}-{id}"),
                Some(json!({ "properties": props })),
            )
            .await?;
        }
        self.put(
            format!("commit-{name}"),
            Some(json!({"tasks": tasks.len()})),
        )
        .await
    }

    /// Asks the owner of a connector to restart it (or one task).
    pub async fn request_restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
        task: Option<usize>,
    ) -> Result<()> {
        let mut value = json!({"include-tasks": include_tasks, "only-failed": only_failed});
        if let Some(task) = task {
            value["task"] = json!(task);
        }
        self.put(format!("restart-connector-{name}"), Some(value))
            .await
    }

    /// Stops reading.
    pub async fn close(&self) {
        self.log.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: &str, value: Option<Json>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "connect-configs".into(),
            partition: 0,
            offset,
            timestamp: 0,
            key: Some(Bytes::from(key.to_string())),
            value: value.map(|v| Bytes::from(v.to_string())),
            headers: Vec::new(),
        }
    }

    #[test]
    fn records_in_kafka_connects_format_build_the_snapshot() {
        let mut s = ConfigSnapshot::default();
        let props = json!({"properties": {"connector.class": "FileStreamSource", "file": "a"}});
        s.apply(&record(0, "connector-src", Some(props)));
        s.apply(&record(
            1,
            "task-src-0",
            Some(json!({"properties": {"file": "a"}})),
        ));
        assert!(s.tasks.is_empty(), "tasks count only once committed");
        s.apply(&record(2, "commit-src", Some(json!({"tasks": 1}))));
        assert_eq!(s.tasks["src"][0]["file"], "a");
        s.apply(&record(
            3,
            "target-state-src",
            Some(json!({"state": "PAUSED", "state.v2": "STOPPED"})),
        ));
        assert_eq!(s.target("src"), TargetState::Stopped);
        s.apply(&record(
            4,
            "target-state-src",
            Some(json!({"state": "PAUSED"})),
        ));
        assert_eq!(s.target("src"), TargetState::Paused);
        s.apply(&record(
            5,
            "restart-connector-src",
            Some(json!({"include-tasks": true, "only-failed": false})),
        ));
        assert_eq!(s.restarts["src"].offset, 5);
        assert!(s.restarts["src"].include_tasks);
        // A commit whose task configs are missing changes nothing.
        s.apply(&record(6, "commit-src", Some(json!({"tasks": 3}))));
        assert_eq!(s.tasks["src"].len(), 1);
        s.apply(&record(7, "connector-src", None));
        assert!(s.connectors.is_empty() && s.tasks.is_empty() && s.targets.is_empty());
        assert_eq!(s.offset, 8);
        assert_eq!(s.target("src"), TargetState::Started);
    }
}
