//! Statuses distributed workers share, in `status.storage.topic` (compacted), with Kafka
//! Connect's keys and values: `status-connector-<name>` and `status-task-<name>-<id>` →
//! `{"state", "trace", "worker_id", "generation"}`. Each worker writes the statuses of what it
//! runs; any worker answers a status request from what all have written.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use serde_json::{json, Value as Json};
use sluice_log::client::Client;

use super::kafka_log::{json_value, text_key, KafkaLog};
use crate::error::Result;
use crate::worker::{parse_status_key, status_key, ActiveTopics, State, TopicUse};

/// One status as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRecord {
    /// The state.
    pub state: State,
    /// The worker that runs it.
    pub worker_id: String,
    /// The group generation it was written in.
    pub generation: i32,
}

fn state_of(value: &Json) -> Option<State> {
    let trace = value
        .get("trace")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    Some(match value.get("state")?.as_str()? {
        "RUNNING" => State::Running,
        "PAUSED" => State::Paused,
        "STOPPED" => State::Stopped,
        "FAILED" => State::Failed(trace),
        "RESTARTING" => State::Restarting,
        _ => State::Unassigned,
    })
}

/// The status topic, read whole and tailed.
pub struct StatusLog {
    log: KafkaLog,
    statuses: Arc<RwLock<BTreeMap<String, StatusRecord>>>,
}

impl StatusLog {
    /// Reads `topic` (created if missing) and keeps up with it.
    /// The connectors' topics (`status-topic-<topic>:connector-<name>` records) go to `topics`.
    pub async fn start(
        client: &Arc<Client>,
        topic: &str,
        partitions: i32,
        replication: i16,
        topics: Arc<ActiveTopics>,
    ) -> Result<StatusLog> {
        let statuses = Arc::new(RwLock::new(BTreeMap::new()));
        let applied = statuses.clone();
        let log = KafkaLog::start(client, topic, partitions, replication, move |record| {
            let Some(key) = text_key(record) else {
                return;
            };
            let value = json_value(record);
            if let Some((topic, connector)) = parse_status_key(key) {
                match value {
                    Some(_) => {
                        topics.learn(connector, topic);
                    }
                    None => topics.unlearn(connector, topic),
                }
                return;
            }
            let parsed = value.as_ref().and_then(|v| {
                Some(StatusRecord {
                    state: state_of(v)?,
                    worker_id: v.get("worker_id")?.as_str()?.to_string(),
                    generation: v.get("generation").and_then(Json::as_i64).unwrap_or(0) as i32,
                })
            });
            let mut all = applied.write();
            match parsed {
                Some(status) => {
                    all.insert(key.to_string(), status);
                }
                None => {
                    all.remove(key);
                }
            }
        })
        .await?;
        log.read_to_end().await?;
        Ok(StatusLog { log, statuses })
    }

    /// Connector `name`'s status as last written.
    pub fn connector(&self, name: &str) -> Option<StatusRecord> {
        self.statuses
            .read()
            .get(&format!("status-connector-{name}"))
            .cloned()
    }

    /// Task `id` of connector `name`, as last written.
    pub fn task(&self, name: &str, id: usize) -> Option<StatusRecord> {
        self.statuses
            .read()
            .get(&format!("status-task-{name}-{id}"))
            .cloned()
    }

    async fn put(&self, key: String, status: Option<&StatusRecord>) -> Result<()> {
        let value = status.map(|s| {
            let trace = match &s.state {
                State::Failed(trace) => Json::String(trace.clone()),
                _ => Json::Null,
            };
            Bytes::from(
                json!({"state": s.state.name(), "trace": trace, "worker_id": s.worker_id, "generation": s.generation})
                    .to_string(),
            )
        });
        self.log.send(Bytes::from(key), value).await
    }

    /// Writes connector `name`'s status (none: forget it).
    pub async fn put_connector(&self, name: &str, status: Option<&StatusRecord>) -> Result<()> {
        self.put(format!("status-connector-{name}"), status).await
    }

    /// Writes task `id` of connector `name`'s status (none: forget it).
    pub async fn put_task(
        &self,
        name: &str,
        id: usize,
        status: Option<&StatusRecord>,
    ) -> Result<()> {
        self.put(format!("status-task-{name}-{id}"), status).await
    }

    /// Writes that task `used.task` of `used.connector` uses `used.topic` (Kafka's record).
    pub async fn put_topic(&self, used: &TopicUse) -> Result<()> {
        let discovered = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let value = json!({"topic": {
            "name": used.topic,
            "connector": used.connector,
            "task": used.task,
            "discoverTimestamp": discovered,
        }});
        self.log
            .send(
                Bytes::from(status_key(&used.topic, &used.connector)),
                Some(Bytes::from(value.to_string())),
            )
            .await
    }

    /// Forgets that `connector` uses `topic` (a tombstone).
    pub async fn delete_topic(&self, topic: &str, connector: &str) -> Result<()> {
        self.log
            .send(Bytes::from(status_key(topic, connector)), None)
            .await
    }

    /// Stops reading.
    pub async fn close(&self) {
        self.log.close().await;
    }
}
