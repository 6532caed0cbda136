//! State stores: what stateful operators remember, per task, backed by a changelog topic.
//!
//! A store holds serialised keys and values (as Kafka Streams' stores do), ordered by key bytes.
//! Every write is also sent to the store's changelog, the compacted topic
//! `<application.id>-<store>-changelog`, on the partition of the task that owns it; when a task
//! starts on a new instance (or its local state is gone), its store is rebuilt by reading that
//! partition from the beginning. Typed reads go through [`ReadOnlyKeyValueStore`].

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::serdes::{self, Serde};

/// Key bytes, then `timestamp` and `seq` (8 big-endian bytes each): the key of a record kept
/// by time in a store (stream-stream joins, sliding windows), so that one key's records sit
/// together in time order.
pub(crate) fn timed_key(key: &[u8], timestamp: i64, seq: u64) -> Bytes {
    let mut buf = bytes::BytesMut::with_capacity(key.len() + 16);
    bytes::BufMut::put_slice(&mut buf, key);
    bytes::BufMut::put_i64(&mut buf, timestamp.max(0));
    bytes::BufMut::put_u64(&mut buf, seq);
    buf.freeze()
}

/// The big-endian number in the first 8 bytes (0 if there are fewer).
pub(crate) fn be_i64(bytes: &[u8]) -> i64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i64::from_be_bytes)
}

/// The changelog topic of `store` in application `application_id`, as Kafka Streams names it.
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// An in-memory key-value store of one task, with its record cache: updates held back before
/// they reach the store proper, its changelog and the operators downstream (Kafka's record
/// cache). Reads see a cached update as the key's value, so queries and lookups are current
/// while the update is held.
///
/// A persistent store ([`KeyValueStore::open_persistent`]) also keeps its entries on disk, in
/// a SQLite database, written at each commit together with the changelog offset they reach
/// (its checkpoint), so that a task that starts again restores only what the changelog has
/// past the checkpoint. Reads are served from memory: the state must fit in it.
#[derive(Debug, Default)]
pub struct KeyValueStore {
    entries: BTreeMap<Bytes, Bytes>,
    cached: FxHashMap<Bytes, CachedUpdate>,
    /// Orders the cached updates by their latest write, the order they are flushed in.
    next_seq: u64,
    /// The disk copy of a persistent store, and the writes it has not had yet (behind a mutex
    /// only so that the store is `Sync`: every use has `&mut self`).
    disk: Option<parking_lot::Mutex<DiskStore>>,
}

/// A persistent store's database: the table `entries (key BLOB PRIMARY KEY, value BLOB)` and
/// the checkpoint, in `checkpoint (id, next_offset)`.
struct DiskStore {
    path: std::path::PathBuf,
    db: rusqlite::Connection,
    /// Writes since the last commit, in order (None deletes).
    pending: Vec<(Bytes, Option<Bytes>)>,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn disk_error(path: &std::path::Path, err: impl std::fmt::Display) -> crate::error::StreamsError {
    crate::error::StreamsError::StateStore(format!("{}: {err}", path.display()))
}

/// An update waiting in a record cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedUpdate {
    pub(crate) value: Option<Bytes>,
    pub(crate) timestamp: i64,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
    seq: u64,
}

/// What a record cache's size counts for an entry besides its bytes.
const CACHE_ENTRY_OVERHEAD: usize = 64;

fn cached_size(key: &[u8], value: &Option<Bytes>) -> usize {
    key.len() + value.as_ref().map_or(0, Bytes::len) + CACHE_ENTRY_OVERHEAD
}

impl KeyValueStore {
    /// The value of `key`: a cached update's (none for a cached delete), else the store's.
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        match self.cached.get(key) {
            Some(update) => update.value.as_ref(),
            None => self.entries.get(key),
        }
    }

    /// A persistent store kept in the SQLite database at `path` (created if missing), with
    /// what it holds loaded, and its checkpoint: the changelog offset to restore from (None:
    /// the start, for a new or unfinished store).
    pub fn open_persistent(path: &std::path::Path) -> Result<(KeyValueStore, Option<i64>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| disk_error(path, err))?;
        }
        let db = rusqlite::Connection::open(path).map_err(|err| disk_error(path, err))?;
        // WAL and NORMAL sync: a crash may lose the last commit's writes, never corrupt the
        // file; the checkpoint is written with them, so a lost commit only means restoring
        // more of the changelog.
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS entries (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 0), next_offset INTEGER NOT NULL);",
        )
        .map_err(|err| disk_error(path, err))?;
        let mut entries = BTreeMap::new();
        {
            let mut rows = db
                .prepare("SELECT key, value FROM entries")
                .map_err(|err| disk_error(path, err))?;
            let found = rows
                .query_map([], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
                })
                .map_err(|err| disk_error(path, err))?;
            for row in found {
                let (key, value) = row.map_err(|err| disk_error(path, err))?;
                entries.insert(Bytes::from(key), Bytes::from(value));
            }
        }
        let checkpoint = db
            .query_row(
                "SELECT next_offset FROM checkpoint WHERE id = 0",
                [],
                |row| row.get::<_, i64>(0),
            )
            .ok();
        let store = KeyValueStore {
            entries,
            disk: Some(parking_lot::Mutex::new(DiskStore {
                path: path.to_path_buf(),
                db,
                pending: Vec::new(),
            })),
            ..KeyValueStore::default()
        };
        Ok((store, checkpoint))
    }

    /// Whether the store keeps its entries on disk.
    pub fn is_persistent(&self) -> bool {
        self.disk.is_some()
    }

    /// Writes what changed since the last call to disk, in one transaction with the checkpoint
    /// `next_offset` (the changelog offset the store now reflects, exclusive) when given.
    pub(crate) fn persist(&mut self, next_offset: Option<i64>) -> Result<()> {
        let Some(disk) = &mut self.disk else {
            return Ok(());
        };
        let disk = disk.get_mut();
        if disk.pending.is_empty() && next_offset.is_none() {
            return Ok(());
        }
        let path = disk.path.clone();
        let tx = disk
            .db
            .transaction()
            .map_err(|err| disk_error(&path, err))?;
        {
            let mut upsert = tx
                .prepare_cached("INSERT OR REPLACE INTO entries (key, value) VALUES (?1, ?2)")
                .map_err(|err| disk_error(&path, err))?;
            let mut delete = tx
                .prepare_cached("DELETE FROM entries WHERE key = ?1")
                .map_err(|err| disk_error(&path, err))?;
            for (key, value) in &disk.pending {
                let done = match value {
                    Some(value) => upsert.execute((key.as_ref(), value.as_ref())),
                    None => delete.execute([key.as_ref()]),
                };
                done.map_err(|err| disk_error(&path, err))?;
            }
            if let Some(next_offset) = next_offset {
                tx.execute(
                    "INSERT OR REPLACE INTO checkpoint (id, next_offset) VALUES (0, ?1)",
                    [next_offset],
                )
                .map_err(|err| disk_error(&path, err))?;
            }
        }
        tx.commit().map_err(|err| disk_error(&path, err))?;
        disk.pending.clear();
        Ok(())
    }

    /// Empties the store, on disk too (its copy is unusable: restore from the start).
    pub(crate) fn wipe(&mut self) -> Result<()> {
        self.entries.clear();
        self.cached.clear();
        if let Some(disk) = &mut self.disk {
            let disk = disk.get_mut();
            disk.pending.clear();
            disk.db
                .execute_batch("DELETE FROM entries; DELETE FROM checkpoint;")
                .map_err(|err| disk_error(&disk.path, err))?;
        }
        Ok(())
    }

    /// Holds an update of `key` in the record cache (replacing one held for it); returns how
    /// many bytes the cache grew by (negative: shrank).
    pub(crate) fn cache(
        &mut self,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
        headers: &[(String, Option<Bytes>)],
    ) -> isize {
        let seq = self.next_seq;
        self.next_seq += 1;
        let grown = cached_size(&key, &value) as isize;
        // A key held already is updated in place (the usual case: hot keys).
        if let Some(held) = self.cached.get_mut(&key[..]) {
            let shrunk = cached_size(&key, &held.value) as isize;
            held.value = value;
            held.timestamp = timestamp;
            held.headers.clear();
            held.headers.extend_from_slice(headers);
            held.seq = seq;
            return grown - shrunk;
        }
        let update = CachedUpdate {
            value,
            timestamp,
            headers: headers.to_vec(),
            seq,
        };
        let shrunk = self
            .cached
            .insert(key.clone(), update)
            .map_or(0, |old| cached_size(&key, &old.value) as isize);
        grown - shrunk
    }

    /// Takes the cached updates, oldest first, each with the value the store had for its key
    /// (which it now replaces), and how many bytes the cache held.
    pub(crate) fn drain_cache(&mut self) -> (Vec<(Bytes, CachedUpdate, Option<Bytes>)>, usize) {
        let mut updates: Vec<(Bytes, CachedUpdate)> = self.cached.drain().collect();
        updates.sort_by_key(|(_, update)| update.seq);
        let mut freed = 0;
        let drained = updates
            .into_iter()
            .map(|(key, update)| {
                freed += cached_size(&key, &update.value);
                if let Some(disk) = &mut self.disk {
                    disk.get_mut()
                        .pending
                        .push((key.clone(), update.value.clone()));
                }
                let old = match &update.value {
                    Some(value) => self.entries.insert(key.clone(), value.clone()),
                    None => self.entries.remove(&key),
                };
                (key, update, old)
            })
            .collect();
        (drained, freed)
    }

    /// The entries with keys from `from` (inclusive) up to `to` (inclusive; None: no end), in
    /// key-byte order, cached updates included.
    pub fn entries_between(&self, from: &[u8], to: Option<&[u8]>) -> Vec<(Bytes, Bytes)> {
        let in_range = |key: &[u8]| key >= from && to.is_none_or(|to| key <= to);
        let mut view: BTreeMap<Bytes, Bytes> = self
            .range_from(from)
            .take_while(|(key, _)| to.is_none_or(|to| key.as_ref() <= to))
            .filter(|(key, _)| !self.cached.contains_key(*key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        for (key, update) in &self.cached {
            if let (true, Some(value)) = (in_range(key), &update.value) {
                view.insert(key.clone(), value.clone());
            }
        }
        view.into_iter().collect()
    }

    /// Stores `value` for `key`, or deletes `key` when `value` is None.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        if let Some(disk) = &mut self.disk {
            disk.get_mut().pending.push((key.clone(), value.clone()));
        }
        match value {
            Some(value) => {
                self.entries.insert(key, value);
            }
            None => {
                self.entries.remove(&key);
            }
        }
    }

    /// Every entry the store proper holds (not its cached updates), in key-byte order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.entries.iter()
    }

    /// The entries whose key bytes are in `[from, to]`, in key-byte order.
    pub fn range(&self, from: &[u8], to: &[u8]) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        use std::ops::Bound;
        let bounds = (
            Bound::Included(Bytes::copy_from_slice(from)),
            Bound::Included(Bytes::copy_from_slice(to)),
        );
        // An empty range when `from` > `to`, instead of BTreeMap's panic.
        let valid = from <= to;
        valid
            .then(|| self.entries.range(bounds))
            .into_iter()
            .flatten()
    }

    /// The entries whose key bytes are `from` or after, in key-byte order.
    pub fn range_from(&self, from: &[u8]) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        use std::ops::Bound;
        self.entries.range::<Bytes, _>((
            Bound::Included(Bytes::copy_from_slice(from)),
            Bound::Unbounded,
        ))
    }

    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A task's store as the task and queries share it: the task writes under the lock, a query
/// reads under it.
pub type SharedStore = Arc<parking_lot::RwLock<KeyValueStore>>;

/// Finds the local tasks' parts of a store at the time of each query (tasks come and go with
/// rebalances).
pub(crate) type StoreParts = Box<dyn Fn() -> Vec<SharedStore> + Send + Sync>;

/// A typed, read-only view of a key-value store (Kafka's `ReadOnlyKeyValueStore`), for
/// interactive queries while the application runs, and for tests. It spans every local task's
/// part of the store: a key lives in the task of its partition.
pub struct ReadOnlyKeyValueStore<K, V> {
    name: String,
    parts: StoreParts,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(
        name: &str,
        parts: StoreParts,
        key: Arc<dyn Serde<K>>,
        value: Arc<dyn Serde<V>>,
    ) -> ReadOnlyKeyValueStore<K, V> {
        ReadOnlyKeyValueStore {
            name: name.to_string(),
            parts,
            key,
            value,
            _types: PhantomData,
        }
    }

    /// The value of `key`, if a local task's store has one.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let Some(bytes) = serdes::serialize(&*self.key, &self.name, "key", key)? else {
            return Ok(None);
        };
        for part in &(self.parts)() {
            let found = part.read().get(&bytes).cloned();
            if let Some(value) = found {
                return serdes::deserialize(&*self.value, &self.name, "value", Some(&value))
                    .map(Some);
            }
        }
        Ok(None)
    }

    /// Every entry of the local tasks, in the order of the keys' bytes.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        let mut entries: Vec<(Bytes, Bytes)> = Vec::new();
        for part in &(self.parts)() {
            entries.extend(part.read().entries_between(&[], None));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.decode(entries)
    }

    /// The entries with keys from `from` to `to` (inclusive, by their serialised bytes, which
    /// for big-endian integers and UTF-8 is their natural order), in that order.
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        let from = serdes::serialize(&*self.key, &self.name, "key", from)?.unwrap_or_default();
        let to = serdes::serialize(&*self.key, &self.name, "key", to)?.unwrap_or_default();
        let mut entries: Vec<(Bytes, Bytes)> = Vec::new();
        for part in &(self.parts)() {
            if from <= to {
                entries.extend(part.read().entries_between(&from, Some(&to)));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.decode(entries)
    }

    /// The aggregates of `key` in windows starting from `time_from` to `time_to` (inclusive),
    /// oldest first (Kafka's `ReadOnlyWindowStore.fetch`), for a store of a windowed
    /// aggregation. Each comes with its window start.
    pub fn fetch_windows<KW>(
        &self,
        key: &KW,
        key_serde: &dyn Serde<KW>,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, V)>> {
        let key_bytes = serdes::serialize(key_serde, &self.name, "key", key)?.unwrap_or_default();
        let bound = |time: i64| {
            let mut bytes = key_bytes.to_vec();
            bytes.extend_from_slice(&time.to_be_bytes());
            bytes
        };
        let (from, to) = (bound(time_from.max(0)), bound(time_to));
        let mut found: Vec<(i64, V)> = Vec::new();
        for part in &(self.parts)() {
            let entries = part.read().entries_between(&from, Some(&to));
            for (stored_key, value) in &entries {
                // Only this key's windows: the stored key is exactly its bytes and a start.
                if stored_key.len() != key_bytes.len() + 8 {
                    continue;
                }
                let mut start = [0u8; 8];
                start.copy_from_slice(&stored_key[key_bytes.len()..]);
                let value = serdes::deserialize(&*self.value, &self.name, "value", Some(value))?;
                found.push((i64::from_be_bytes(start), value));
            }
        }
        found.sort_by_key(|(start, _)| *start);
        Ok(found)
    }

    /// The sessions of `key` that end from `earliest_end` on and start by `latest_start`
    /// (Kafka's `ReadOnlySessionStore.findSessions`), ordered by end, for a store of a session
    /// aggregation; each with its window.
    pub fn fetch_sessions<KS>(
        &self,
        key: &KS,
        key_serde: &dyn Serde<KS>,
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<(crate::window::Window, V)>> {
        let key_bytes = serdes::serialize(key_serde, &self.name, "key", key)?.unwrap_or_default();
        let mut from = key_bytes.to_vec();
        from.extend_from_slice(&earliest_end.max(0).to_be_bytes());
        let mut to = key_bytes.to_vec();
        to.extend_from_slice(&[0xff; 16]);
        let mut found = Vec::new();
        for part in &(self.parts)() {
            let entries = part.read().entries_between(&from, Some(&to));
            for (stored_key, value) in &entries {
                // Only this key's sessions: its bytes, then end and start.
                if stored_key.len() != key_bytes.len() + 16 {
                    continue;
                }
                let end = be_i64(&stored_key[key_bytes.len()..]);
                let start = be_i64(&stored_key[key_bytes.len() + 8..]);
                if start > latest_start {
                    continue;
                }
                let value = serdes::deserialize(&*self.value, &self.name, "value", Some(value))?;
                found.push((crate::window::Window { start, end }, value));
            }
        }
        found.sort_by_key(|(window, _)| (window.end, window.start));
        Ok(found)
    }

    fn decode(&self, entries: Vec<(Bytes, Bytes)>) -> Result<Vec<(K, V)>> {
        entries
            .into_iter()
            .map(|(key, value)| {
                Ok((
                    serdes::deserialize(&*self.key, &self.name, "key", Some(&key))?,
                    serdes::deserialize(&*self.value, &self.name, "value", Some(&value))?,
                ))
            })
            .collect()
    }

    /// How many keys the local tasks' stores hold.
    pub fn approximate_num_entries(&self) -> usize {
        (self.parts)().iter().map(|part| part.read().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persistent_store_keeps_what_a_commit_wrote_and_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task").join("store.sqlite");
        let (mut store, checkpoint) = KeyValueStore::open_persistent(&path).unwrap();
        assert_eq!((store.len(), checkpoint), (0, None));
        store.put(Bytes::from_static(b"a"), Some(Bytes::from_static(b"1")));
        store.put(Bytes::from_static(b"b"), Some(Bytes::from_static(b"2")));
        store.put(Bytes::from_static(b"a"), None);
        store.cache(
            Bytes::from_static(b"c"),
            Some(Bytes::from_static(b"3")),
            0,
            &[],
        );
        store.drain_cache();
        store.persist(Some(7)).unwrap();
        // Written after the commit, not persisted: gone on reopening.
        store.put(Bytes::from_static(b"d"), Some(Bytes::from_static(b"4")));
        drop(store);
        let (mut store, checkpoint) = KeyValueStore::open_persistent(&path).unwrap();
        assert_eq!(checkpoint, Some(7));
        let keys: Vec<&[u8]> = store.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, [&b"b"[..], &b"c"[..]]);
        store.wipe().unwrap();
        drop(store);
        let (store, checkpoint) = KeyValueStore::open_persistent(&path).unwrap();
        assert_eq!((store.len(), checkpoint), (0, None));
        // A path that cannot be a database is an error naming it, not a panic.
        let err = KeyValueStore::open_persistent(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }
}
