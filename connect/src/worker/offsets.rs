//! Source offsets: the last position of each source partition of each connector. Standalone
//! workers keep them in a local file (`offset.storage.file.filename`).
//!
//! Keys and values are encoded as Kafka Connect encodes them in `connect-offsets` — the key is
//! the JSON array `["<connector>", {partition}]`, the value the JSON offset, both schemaless —
//! so that one format serves the file now and the topic of distributed workers later. The file
//! holds one `key<TAB>value` line per partition, rewritten whole and renamed into place, so a
//! crash leaves either the old offsets or the new ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use sluice_log::client::Client;

use crate::converter::{Converter, JsonConverter};
use crate::data::Value;
use crate::distributed::kafka_log::{text_key, KafkaLog};
use crate::error::{ConnectError, Result};

/// The offsets of every connector's source partitions, kept in memory and, when a path is
/// given, in a file, or in a topic shared by distributed workers (`offset.storage.topic`).
pub struct OffsetStore {
    path: Option<PathBuf>,
    offsets: Arc<Mutex<BTreeMap<String, String>>>,
    topic: Option<KafkaLog>,
    /// Held from a change to its file being renamed into place, so that concurrent commits
    /// (tasks pausing together) write one after the other, the newest last.
    file_writes: Mutex<()>,
}

impl OffsetStore {
    /// A store with nothing persisted.
    pub fn in_memory() -> OffsetStore {
        OffsetStore {
            path: None,
            offsets: Arc::new(Mutex::new(BTreeMap::new())),
            topic: None,
            file_writes: Mutex::new(()),
        }
    }

    /// The store in `topic` (created if missing, compacted), read whole, then kept up with
    /// what other workers write to it.
    ///
    /// With `read_committed` (exactly-once source tasks write their offsets in transactions),
    /// only the offsets of committed transactions are read.
    pub async fn on_topic(
        client: &Arc<Client>,
        topic: &str,
        partitions: i32,
        replication: i16,
        read_committed: bool,
    ) -> Result<OffsetStore> {
        let offsets = Arc::new(Mutex::new(BTreeMap::new()));
        let applied = offsets.clone();
        let log = KafkaLog::start_isolated(
            client,
            topic,
            partitions,
            replication,
            read_committed,
            move |record| {
                let Some(key) = text_key(record) else {
                    return;
                };
                let mut all = applied.lock();
                match record.value.as_deref().map(std::str::from_utf8) {
                    Some(Ok(value)) if value != "null" => {
                        all.insert(key.to_string(), value.to_string());
                    }
                    Some(Ok(_)) | None => {
                        all.remove(key);
                    }
                    Some(Err(_)) => {
                        tracing::warn!(%key, "an offset that is not UTF-8 JSON; ignored")
                    }
                }
            },
        )
        .await?;
        Ok(OffsetStore {
            path: None,
            offsets,
            topic: Some(log),
            file_writes: Mutex::new(()),
        })
    }

    /// Catches up with what other workers wrote (a topic store; others hold all they know).
    pub async fn refresh(&self) -> Result<()> {
        match &self.topic {
            Some(log) => log.read_to_end().await,
            None => Ok(()),
        }
    }

    /// The store in `path`, with what it holds already.
    pub fn open(path: &Path) -> Result<OffsetStore> {
        let mut offsets = BTreeMap::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let Some((key, value)) = line.split_once('\t') else {
                        return Err(ConnectError::Data(format!(
                            "offset file {}: line {} is not `key<TAB>value`",
                            path.display(),
                            n + 1
                        )));
                    };
                    offsets.insert(key.to_string(), value.to_string());
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(ConnectError::Data(format!(
                    "offset file {}: {err}",
                    path.display()
                )))
            }
        }
        Ok(OffsetStore {
            path: Some(path.to_path_buf()),
            offsets: Arc::new(Mutex::new(offsets)),
            topic: None,
            file_writes: Mutex::new(()),
        })
    }

    /// The last committed offset of `partition` of `connector`.
    pub fn get(&self, connector: &str, partition: &Value) -> Option<Value> {
        let key = encode_key(connector, partition).ok()?;
        let value = self.offsets.lock().get(&key).cloned()?;
        JsonConverter::new(false)
            .to_connect_data("connect-offsets", Some(value.as_bytes()))
            .ok()
            .map(|read| read.value)
    }

    /// Every committed offset of `connector`, by partition.
    pub fn all(&self, connector: &str) -> Vec<(Value, Value)> {
        let converter = JsonConverter::new(false);
        let read = |text: &str| {
            converter
                .to_connect_data("connect-offsets", Some(text.as_bytes()))
                .ok()
                .map(|r| r.value)
        };
        self.offsets
            .lock()
            .iter()
            .filter_map(|(key, value)| {
                let Some(Value::Array(parts)) = read(key) else {
                    return None;
                };
                match parts.as_slice() {
                    [Value::String(name), partition] if name == connector => {
                        Some((partition.clone(), read(value)?))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// Records `offsets` (partition → offset) of `connector` and writes them to the file or
    /// the topic (returning once they are there). A null offset forgets the partition (a
    /// tombstone in `connect-offsets`).
    pub async fn commit(&self, connector: &str, offsets: &[(Value, Value)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(offsets.len());
        for (partition, offset) in offsets {
            let value = match offset {
                Value::Null => None,
                offset => Some(json_text(offset)?),
            };
            encoded.push((encode_key(connector, partition)?, value));
        }
        if let Some(log) = &self.topic {
            for (key, value) in encoded {
                log.send(Bytes::from(key), value.map(Bytes::from)).await?;
            }
            return Ok(());
        }
        let _writing = self.file_writes.lock();
        let snapshot = {
            let mut all = self.offsets.lock();
            for (key, value) in encoded {
                match value {
                    Some(value) => all.insert(key, value),
                    None => all.remove(&key),
                };
            }
            all.clone()
        };
        self.persist(&snapshot)
    }

    /// The topic the offsets are kept in (distributed workers), if any.
    pub fn topic(&self) -> Option<&Arc<str>> {
        self.topic.as_ref().map(KafkaLog::topic)
    }

    /// `offsets` (partition → offset) of `connector` as records of the offsets topic: the
    /// key and the value (none: a tombstone), for a transaction to write.
    pub fn records(
        connector: &str,
        offsets: &[(Value, Value)],
    ) -> Result<Vec<(Bytes, Option<Bytes>)>> {
        offsets
            .iter()
            .map(|(partition, offset)| {
                let value = match offset {
                    Value::Null => None,
                    offset => Some(Bytes::from(json_text(offset)?)),
                };
                Ok((Bytes::from(encode_key(connector, partition)?), value))
            })
            .collect()
    }

    /// Takes `offsets` of `connector` as committed: a transaction wrote them to the topic
    /// and committed (the tail reads them too, later).
    pub fn remember(&self, connector: &str, offsets: &[(Value, Value)]) -> Result<()> {
        let mut all = self.offsets.lock();
        for (partition, offset) in offsets {
            let key = encode_key(connector, partition)?;
            match offset {
                Value::Null => all.remove(&key),
                offset => all.insert(key, json_text(offset)?),
            };
        }
        Ok(())
    }

    /// Forgets every offset of `connector` (its deletion).
    pub async fn remove(&self, connector: &str) -> Result<()> {
        let gone: Vec<Value> = self.all(connector).into_iter().map(|(p, _)| p).collect();
        if self.topic.is_some() {
            let tombstones: Vec<(Value, Value)> =
                gone.into_iter().map(|p| (p, Value::Null)).collect();
            return self.commit(connector, &tombstones).await;
        }
        let _writing = self.file_writes.lock();
        let snapshot = {
            let mut all = self.offsets.lock();
            for partition in &gone {
                if let Ok(key) = encode_key(connector, partition) {
                    all.remove(&key);
                }
            }
            all.clone()
        };
        self.persist(&snapshot)
    }

    fn persist(&self, snapshot: &BTreeMap<String, String>) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |err: std::io::Error| {
            ConnectError::Data(format!("offset file {}: {err}", path.display()))
        };
        let mut text = String::new();
        for (key, value) in snapshot {
            text.push_str(key);
            text.push('\t');
            text.push_str(value);
            text.push('\n');
        }
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&tmp).map_err(io)?;
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }
}

fn encode_key(connector: &str, partition: &Value) -> Result<String> {
    json_text(&Value::Array(vec![
        Value::String(connector.to_string()),
        partition.clone(),
    ]))
}

/// A schemaless value as the JSON text Kafka's `connect-offsets` entries hold.
pub(super) fn json_text(value: &Value) -> Result<String> {
    let bytes = JsonConverter::new(false)
        .from_connect_data("connect-offsets", None, value)?
        .unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offsets_survive_reopening_and_are_kept_per_connector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        let file_a = Value::string_map([("filename", Value::from("a.txt"))]);
        let file_b = Value::string_map([("filename", Value::from("b.txt"))]);
        let at = |n| Value::string_map([("position", Value::Int64(n))]);
        {
            let store = OffsetStore::open(&path).unwrap();
            store
                .commit("src", &[(file_a.clone(), at(10)), (file_b.clone(), at(3))])
                .await
                .unwrap();
            store
                .commit("src", &[(file_a.clone(), at(25))])
                .await
                .unwrap();
            store
                .commit("other", &[(file_a.clone(), at(1))])
                .await
                .unwrap();
            store
                .commit("other", &[(file_b.clone(), at(7))])
                .await
                .unwrap();
            // A null offset forgets the partition.
            store
                .commit("other", &[(file_b.clone(), Value::Null)])
                .await
                .unwrap();
        }
        let store = OffsetStore::open(&path).unwrap();
        assert_eq!(store.get("src", &file_a), Some(at(25)));
        assert_eq!(store.get("src", &file_b), Some(at(3)));
        assert_eq!(store.get("other", &file_a), Some(at(1)));
        assert_eq!(store.get("other", &file_b), None);
        assert_eq!(store.all("src").len(), 2);
        // Kafka's key format.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[\"src\",{\"filename\":\"a.txt\"}]\t{\"position\":25}"),
            "{text}"
        );
        store.remove("src").await.unwrap();
        let store = OffsetStore::open(&path).unwrap();
        assert_eq!(store.get("src", &file_a), None);
        assert_eq!(store.get("other", &file_a), Some(at(1)));
    }

    #[test]
    fn a_damaged_offset_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.offsets");
        std::fs::write(&path, "no tab here\n").unwrap();
        let err = OffsetStore::open(&path).err().unwrap();
        assert!(err.to_string().contains("bad.offsets: line 1"), "{err}");
    }
}
