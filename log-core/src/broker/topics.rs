//! The topic registry of a single node: names, ids, partition counts and config overrides, and
//! the dynamic broker configs, persisted atomically as `topics.json` in the first data
//! directory so they survive restarts (what a Kafka cluster keeps in its metadata log).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::storage::checkpoint::write_atomically;

/// File name of the topic registry.
pub const TOPICS_FILE: &str = "topics.json";

/// What the node knows of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Topic id (KIP-516), fixed at creation.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// Topic-level config overrides, with Kafka's names.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicsFile {
    cluster_id: String,
    topics: BTreeMap<String, TopicMeta>,
    /// Dynamic configs of this broker (KIP-226), by Kafka's names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    broker_configs: BTreeMap<String, String>,
    /// Dynamic cluster-wide defaults for every broker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    default_broker_configs: BTreeMap<String, String>,
}

/// The registry, loaded at start and written on every change.
#[derive(Debug)]
pub struct TopicStore {
    path: PathBuf,
    file: TopicsFile,
}

impl TopicStore {
    /// Loads the registry from `dir`, creating an empty one (with a new cluster id) if missing.
    pub fn load(dir: &Path) -> Result<TopicStore> {
        let path = dir.join(TOPICS_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::CorruptFile {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // Kafka's cluster ids are 22-character base64 UUIDs; a simple hex id serves too.
                TopicsFile {
                    cluster_id: Uuid::new_v4().simple().to_string()[..22].to_string(),
                    ..TopicsFile::default()
                }
            }
            Err(err) => return Err(Error::io("read topic registry", &path, err)),
        };
        let store = TopicStore { path, file };
        store.persist()?;
        Ok(store)
    }

    /// The cluster id, fixed when the data directory was first used.
    pub fn cluster_id(&self) -> &str {
        &self.file.cluster_id
    }

    /// All topics by name.
    pub fn topics(&self) -> &BTreeMap<String, TopicMeta> {
        &self.file.topics
    }

    /// One topic.
    pub fn get(&self, name: &str) -> Option<&TopicMeta> {
        self.file.topics.get(name)
    }

    /// The name of the topic with `id`.
    pub fn name_of(&self, id: Uuid) -> Option<&str> {
        self.file
            .topics
            .iter()
            .find(|(_, meta)| meta.id == id)
            .map(|(name, _)| name.as_str())
    }

    /// Adds or replaces a topic and writes the registry.
    pub fn put(&mut self, name: &str, meta: TopicMeta) -> Result<()> {
        self.file.topics.insert(name.to_string(), meta);
        self.persist()
    }

    /// Removes a topic and writes the registry.
    pub fn remove(&mut self, name: &str) -> Result<Option<TopicMeta>> {
        let removed = self.file.topics.remove(name);
        if removed.is_some() {
            self.persist()?;
        }
        Ok(removed)
    }

    /// This broker's dynamic configs, and the cluster-wide dynamic defaults.
    pub fn dynamic_broker_configs(&self) -> (&BTreeMap<String, String>, &BTreeMap<String, String>) {
        (&self.file.broker_configs, &self.file.default_broker_configs)
    }

    /// Replaces this broker's dynamic configs (`cluster_default`: the cluster-wide defaults)
    /// and writes the registry.
    pub fn set_dynamic_broker_configs(
        &mut self,
        cluster_default: bool,
        configs: BTreeMap<String, String>,
    ) -> Result<()> {
        if cluster_default {
            self.file.default_broker_configs = configs;
        } else {
            self.file.broker_configs = configs;
        }
        self.persist()
    }

    fn persist(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(|e| Error::CorruptFile {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_cluster_id_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TopicStore::load(dir.path()).unwrap();
        let cluster_id = store.cluster_id().to_string();
        let meta = TopicMeta {
            id: Uuid::new_v4(),
            partitions: 3,
            configs: [("retention.ms".into(), "5".into())].into(),
        };
        store.put("orders", meta.clone()).unwrap();
        let store = TopicStore::load(dir.path()).unwrap();
        assert_eq!(store.cluster_id(), cluster_id);
        assert_eq!(store.get("orders"), Some(&meta));
        assert_eq!(store.name_of(meta.id), Some("orders"));
        let mut store = store;
        store
            .set_dynamic_broker_configs(true, [("log.retention.ms".into(), "9".into())].into())
            .unwrap();
        let store = TopicStore::load(dir.path()).unwrap();
        assert_eq!(store.dynamic_broker_configs().1["log.retention.ms"], "9");
        assert!(store.dynamic_broker_configs().0.is_empty());
        std::fs::write(dir.path().join(TOPICS_FILE), b"{not json").unwrap();
        assert!(TopicStore::load(dir.path()).is_err());
    }
}
