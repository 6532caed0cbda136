//! Suppression: holding a table's updates back and forwarding only the latest per key when it
//! is due (Kafka's `KTable.suppress`) — once its window has closed (emit-final results of a
//! windowed aggregation), or once a time limit has passed since the key's first held update
//! (rate limiting).
//!
//! Held updates wait in a buffer store of the task, logged to its changelog like every store,
//! so a task that moves keeps what it held. Its entries are ordered by when they are due: the
//! due time (8 big-endian bytes) then the key's bytes, behind a `0` byte; an index behind a `1`
//! byte maps a key to its due time, so a second update of a held key replaces the first and
//! keeps its due time. Due means the suppression's stream time — the largest timestamp it has
//! seen — has reached the due time. What downstream receives is the latest value with the old
//! value it last saw, and lookups through the suppressed table answer that old value while an
//! update is held (what downstream knows), as Kafka's do.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::kstream::Data;
use crate::ktable::{Change, ChangeSerde, KTable};
use crate::serdes::{self, Serde};
use crate::store::be_i64;
use crate::topology::{Record, TaskContext};
use crate::window::Windowed;

/// When a key's held update is due: from the key, the update's timestamp, and how long after
/// a window's end it closes.
type DueTime<K> = Arc<dyn Fn(&K, i64, i64) -> i64 + Send + Sync>;

/// What a suppression holds back and until when (Kafka's `Suppressed`).
pub struct Suppressed<K> {
    due: DueTime<K>,
    needs_windows: bool,
    max_records: Option<usize>,
    name: Option<String>,
}

impl<K> Suppressed<Windowed<K>> {
    /// Only a window's final result, once stream time has passed the window's end and grace
    /// period (`Suppressed.untilWindowCloses(BufferConfig.unbounded())`); for the table of a
    /// windowed aggregation.
    pub fn until_window_closes() -> Suppressed<Windowed<K>> {
        Suppressed {
            due: Arc::new(|key: &Windowed<K>, _, close_after_end| {
                key.window.end.saturating_add(close_after_end)
            }),
            needs_windows: true,
            max_records: None,
            name: None,
        }
    }
}

impl<K> Suppressed<K> {
    /// A key's latest update once `limit` of stream time has passed since its first held one
    /// (`Suppressed.untilTimeLimit`).
    pub fn until_time_limit(limit: Duration) -> Suppressed<K> {
        let limit = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX / 4);
        Suppressed {
            due: Arc::new(move |_: &K, timestamp, _| timestamp.saturating_add(limit)),
            needs_windows: false,
            max_records: None,
            name: None,
        }
    }

    /// Holds at most `records` keys; when more arrive, the ones due soonest go early
    /// (`BufferConfig.maxRecords(n).emitEarlyWhenFull()`).
    pub fn with_max_records(mut self, records: usize) -> Suppressed<K> {
        self.max_records = Some(records.max(1));
        self
    }

    /// Names the buffer store (and its changelog).
    pub fn with_name(mut self, name: &str) -> Suppressed<K> {
        self.name = Some(name.to_string());
        self
    }
}

const HELD: u8 = 0;
const INDEX: u8 = 1;

fn held_key(due: i64, key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 9);
    buf.put_u8(HELD);
    buf.put_i64(due);
    buf.put_slice(key);
    buf.freeze()
}

fn index_key(key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 1);
    buf.put_u8(INDEX);
    buf.put_slice(key);
    buf.freeze()
}

impl<K: Data, V: Data> KTable<K, V> {
    /// The table with its updates held back as `suppressed` says (Kafka's `suppress`).
    pub fn suppress(&self, suppressed: Suppressed<K>) -> KTable<K, V> {
        let state = self.state.clone();
        let store = state.store_named(suppressed.name.clone(), "KTABLE-SUPPRESS-STATE-STORE");
        let out = state.new_children::<K, Change<V>>(format!("suppress into store {store}"));
        let mut suppressed_table = KTable {
            state: state.clone(),
            children: out.clone(),
            store: None,
            getter: self.getter.clone(),
            sources: self.sources.clone(),
            window_close_ms: self.window_close_ms,
            serdes: self.serdes.clone(),
        };
        let close_after_end = match (suppressed.needs_windows, self.window_close_ms) {
            (true, None) => {
                state.error(
                    "suppress(until_window_closes) needs the table of a windowed aggregation (windowed_by, windowed_by_session)".to_string(),
                );
                return suppressed_table;
            }
            (_, close) => close.unwrap_or(0),
        };
        let Some((key_serde, value_serde)) = self.serdes.clone() else {
            state.error(
                "suppress holds rows in a store, which needs the table's serdes: suppress a table kept in a store (an aggregation, builder.table, to_table) or a filter of one".to_string(),
            );
            return suppressed_table;
        };
        let buffer = Arc::new(Buffer {
            store: store.clone(),
            key: key_serde.clone(),
            change: ChangeSerde {
                inner: value_serde.clone(),
            },
            out,
        });
        let (due, max_records) = (suppressed.due, suppressed.max_records);
        let node_buffer = buffer.clone();
        self.children
            .add(Arc::new(move |ctx, record: Record<K, Change<V>>| {
                let buffer = &node_buffer;
                let Some(key_bytes) = ctx.store_key(&*buffer.key, &buffer.store, &record.key)
                else {
                    return;
                };
                let time = {
                    let time = ctx.operator_time(&buffer.store);
                    *time = (*time).max(record.timestamp);
                    *time
                };
                let held = match buffer.held(ctx, &key_bytes) {
                    Ok(held) => held,
                    Err(err) => return ctx.errors.push(err),
                };
                let (due_time, old) = match held {
                    // A held key keeps its due time and the old value downstream last saw.
                    Some((due_time, _, held)) => (due_time, held.old),
                    None => (
                        due(&record.key, record.timestamp, close_after_end),
                        record.value.old,
                    ),
                };
                let change = Change {
                    new: record.value.new,
                    old,
                };
                buffer.hold(ctx, &key_bytes, due_time, record.timestamp, &change);
                buffer.emit(ctx, time, max_records);
            }));
        // While an update is held, lookups see what downstream has seen: the old value.
        let (parent, getter_buffer) = (self.getter.clone(), buffer);
        suppressed_table.getter = Arc::new(move |ctx, key| {
            let Some(key_bytes) =
                serdes::serialize(&*getter_buffer.key, &getter_buffer.store, "key", key)?
            else {
                return Ok(None);
            };
            match getter_buffer.held(ctx, &key_bytes)? {
                Some((_, _, held)) => Ok(held.old),
                None => parent(ctx, key),
            }
        });
        suppressed_table
    }
}

/// A suppression's buffer store, and where its updates go when due.
struct Buffer<K, V> {
    store: Arc<str>,
    key: Arc<dyn Serde<K>>,
    change: ChangeSerde<V>,
    out: Arc<crate::topology::Children<K, Change<V>>>,
}

impl<K: Data, V: Data> Buffer<K, V> {
    /// The held update of `key`: its due time, timestamp and change.
    fn held(
        &self,
        ctx: &TaskContext,
        key: &[u8],
    ) -> crate::error::Result<Option<(i64, i64, Change<V>)>> {
        let Some(due) = ctx
            .get_stored(&self.store, &index_key(key), &serdes::BytesSerde)?
            .filter(|bytes| bytes.len() == 8)
            .map(|bytes| be_i64(&bytes))
        else {
            return Ok(None);
        };
        let Some(entry) = ctx.get_stored(&self.store, &held_key(due, key), &serdes::BytesSerde)?
        else {
            return Ok(None);
        };
        let (timestamp, change) = self.decode(&entry)?;
        Ok(Some((due, timestamp, change)))
    }

    fn decode(&self, entry: &Bytes) -> crate::error::Result<(i64, Change<V>)> {
        let timestamp = be_i64(entry);
        let change = serdes::deserialize(
            &self.change,
            &self.store,
            "value",
            Some(&entry.slice(8.min(entry.len())..)),
        )?;
        Ok((timestamp, change))
    }

    fn hold(
        &self,
        ctx: &mut TaskContext,
        key: &[u8],
        due: i64,
        timestamp: i64,
        change: &Change<V>,
    ) {
        let bytes = match serdes::serialize(&self.change, &self.store, "value", change) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(err) => return ctx.errors.push(err),
        };
        let mut entry = BytesMut::with_capacity(8 + bytes.len());
        entry.put_i64(timestamp);
        entry.put_slice(&bytes);
        ctx.put_logged(
            &self.store,
            held_key(due, key),
            Some(entry.freeze()),
            timestamp,
        );
        let due_bytes = Bytes::copy_from_slice(&due.to_be_bytes());
        ctx.put_logged(&self.store, index_key(key), Some(due_bytes), timestamp);
    }

    /// Forwards, soonest due first, every held update due at `time`, and more while the
    /// buffer holds over `max_records` keys.
    fn emit(&self, ctx: &mut TaskContext, time: i64, max_records: Option<usize>) {
        let held_count = ctx
            .store(&self.store)
            .map_or(0, |store| store.read().len() / 2);
        let mut over = max_records.map_or(0, |max| held_count.saturating_sub(max));
        let due = ctx.scan_while(&self.store, &[HELD], |k| {
            let due = k.len() >= 9 && k[0] == HELD && be_i64(&k[1..]) <= time;
            let keep = due || over > 0;
            over = over.saturating_sub(1);
            keep && k.first() == Some(&HELD)
        });
        for (stored_key, entry) in due {
            let key_bytes = stored_key.slice(9..);
            ctx.put_logged(&self.store, stored_key, None, time);
            ctx.put_logged(&self.store, index_key(&key_bytes), None, time);
            let key = serdes::deserialize(&*self.key, &self.store, "key", Some(&key_bytes));
            match (key, self.decode(&entry)) {
                (Ok(key), Ok((timestamp, change))) => {
                    if change.new.is_none() && change.old.is_none() {
                        continue;
                    }
                    self.out.forward(
                        ctx,
                        Record {
                            key,
                            value: change,
                            timestamp,
                            headers: Vec::new(),
                        },
                    );
                }
                (Err(err), _) | (_, Err(err)) => return ctx.errors.push(err),
            }
        }
    }
}
