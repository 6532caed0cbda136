//! Session windows: a key's records with no gap of inactivity longer than the given one form
//! a session, which grows and merges as records arrive (Kafka's `SessionWindows`).
//!
//! A record of timestamp `t` starts the session `[t, t]`; every session of its key that ends
//! no earlier than `t - gap` and starts no later than `t + gap` merges with it into one, whose
//! aggregate is the merge of theirs with the record folded in. The sessions merged away are
//! deleted from the store, and downstream (a change to `None`), and the merged one is written.
//! Sessions live in a key-value store of the task under the key's bytes, then the session's end
//! and start (8 big-endian bytes each) — the layout of Kafka Streams' session key schema, which
//! is also how session-windowed keys are written to topics ([`SessionWindowedSerde`]). A session
//! closes once stream time passes its end by the gap plus the grace period; a record that
//! would only extend closed sessions is dropped and counted.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::kstream::{Data, KStream};
use crate::ktable::{Change, KTable, Materialized};
use crate::serdes::{self, Serde};
use crate::topology::Record;
use crate::window::{EmitStrategy, Window, Windowed};

/// Sessions of records no more than a gap apart (Kafka's `SessionWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that end after `gap` of inactivity, accepting no late record once stream time
    /// has passed their end by the gap (`SessionWindows.ofInactivityGapWithNoGrace`).
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> SessionWindows {
        SessionWindows::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// Sessions that end after `gap` of inactivity and still take late records for `grace`
    /// (`SessionWindows.ofInactivityGapAndGrace`).
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> SessionWindows {
        SessionWindows {
            gap_ms: gap.as_millis() as i64,
            grace_ms: grace.as_millis() as i64,
        }
    }
}

/// Session-windowed keys as Kafka Streams writes them: the key's bytes, then the session's end
/// and its start, 8 big-endian bytes each. A session's end is its last record's timestamp
/// (inclusive, unlike a time window's).
pub struct SessionWindowedSerde<K> {
    inner: Arc<dyn Serde<K>>,
}

impl<K> SessionWindowedSerde<K> {
    /// Session-windowed keys whose key part `inner` writes.
    pub fn new(inner: impl Serde<K> + 'static) -> SessionWindowedSerde<K> {
        SessionWindowedSerde {
            inner: Arc::new(inner),
        }
    }
}

impl<K> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Option<Bytes>, String> {
        let key = self.inner.serialize(topic, &value.key)?.unwrap_or_default();
        Ok(Some(session_key(&key, &value.window)))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&Bytes>) -> Result<Windowed<K>, String> {
        let bytes = bytes.ok_or("a session-windowed key without bytes")?;
        let (key_bytes, window) = split_session_key(bytes)?;
        let key = self.inner.deserialize(topic, Some(&key_bytes))?;
        Ok(Windowed { key, window })
    }
}

fn session_key(key: &[u8], window: &Window) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 16);
    buf.put_slice(key);
    buf.put_i64(window.end);
    buf.put_i64(window.start);
    buf.freeze()
}

fn split_session_key(bytes: &Bytes) -> Result<(Bytes, Window), String> {
    if bytes.len() < 16 {
        return Err(format!(
            "{} bytes are too few for a session-windowed key",
            bytes.len()
        ));
    }
    let split = bytes.len() - 16;
    let read = |at: usize| crate::store::be_i64(&bytes[at..]);
    let (end, start) = (read(split), read(split + 8));
    Ok((bytes.slice(..split), Window { start, end }))
}

/// A grouped stream cut into sessions, ready to aggregate (Kafka's `SessionWindowedKStream`).
pub struct SessionWindowedKStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) windows: SessionWindows,
    pub(crate) emit: EmitStrategy,
}

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    /// Forwards every update, or only each session's final aggregate once it has closed
    /// (Kafka's `emitStrategy`).
    pub fn emit_strategy(mut self, strategy: EmitStrategy) -> SessionWindowedKStream<K, V> {
        self.emit = strategy;
        self
    }

    /// How many records each session of each key has.
    pub fn count(&self, materialized: Materialized<i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0, |_, _, count| count + 1, |_, a, b| a + b, materialized)
    }

    /// Combines each session's values with `reducer`, which also merges two sessions'
    /// aggregates when a record bridges them.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<V>,
    ) -> KTable<Windowed<K>, V> {
        let reducer = Arc::new(reducer);
        let merger = reducer.clone();
        self.fold(
            move |_, value, aggregate| match aggregate {
                Some(aggregate) => reducer(aggregate, value),
                None => value,
            },
            move |_, a, b| merger(a, b),
            materialized,
        )
    }

    /// Folds each session's values into an aggregate: `initializer()` for a new session,
    /// `aggregator(key, value, aggregate)` per record, and `merger(key, a, b)` when a record
    /// bridges two sessions (Kafka's `SessionWindowedKStream.aggregate`).
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<VA>,
    ) -> KTable<Windowed<K>, VA> {
        self.fold(
            move |key, value, aggregate| {
                aggregator(key, value, aggregate.unwrap_or_else(&initializer))
            },
            merger,
            materialized,
        )
    }

    fn fold<VA: Data>(
        &self,
        aggregator: impl Fn(&K, V, Option<VA>) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<VA>,
    ) -> KTable<Windowed<K>, VA> {
        let state = self.stream.state.clone();
        let store = state.materialize(&materialized, "KSTREAM-SESSION-AGGREGATE-STATE-STORE");
        let out = state.new_children::<Windowed<K>, Change<VA>>(format!(
            "session aggregate into store {store}"
        ));
        let downstream = out.clone();
        let (key_serde, value_serde) = (self.key.clone(), materialized.value.clone());
        let windows = self.windows;
        let store_name = store.clone();
        let retention_ms =
            crate::window::retention_ms(&materialized, self.windows.gap_ms + self.windows.grace_ms);
        let expiry: Arc<str> = format!("{store}#expired").into();
        self.stream
            .children
            .add(Arc::new(move |ctx, record: Record<K, V>| {
                // Kafka Streams skips records without key bytes in stateful operators.
                let Some(key_bytes) = ctx.store_key(&*key_serde, &store_name, &record.key) else {
                    return;
                };
                let t = record.timestamp;
                let stream_time = ctx.stream_time();
                let names = (&store_name, &expiry);
                crate::window::expire_windows(ctx, names, retention_ms, stream_time, |key| {
                    let at = key.len().checked_sub(16)?;
                    Some(crate::store::be_i64(&key[at..]))
                });
                let close_time = ctx
                    .stream_time()
                    .saturating_sub(windows.grace_ms)
                    .saturating_sub(windows.gap_ms);
                // The sessions the record reaches: ending at t - gap or later (the scan starts
                // there) and starting at t + gap or earlier.
                let reach = Window {
                    start: t.saturating_sub(windows.gap_ms).max(0),
                    end: t.saturating_add(windows.gap_ms),
                };
                let from = session_key(
                    &key_bytes,
                    &Window {
                        start: 0,
                        end: reach.start,
                    },
                );
                let until = session_key(
                    &key_bytes,
                    &Window {
                        start: i64::MAX,
                        end: i64::MAX,
                    },
                );
                let found = ctx.scan_while(&store_name, &from, |k| k <= &until[..]);
                let mut merged = Window { start: t, end: t };
                let mut aggregate: Option<VA> = None;
                let mut replaced = Vec::new();
                for (stored_key, stored_value) in found {
                    let Ok((stored_key_bytes, window)) = split_session_key(&stored_key) else {
                        continue;
                    };
                    // Past the retention a session is gone, as from Kafka's segmented store
                    // (a late record cannot revive it).
                    if stored_key_bytes != key_bytes
                        || window.start > reach.end
                        || window.end < stream_time.saturating_sub(retention_ms) + 1
                    {
                        continue;
                    }
                    let value = match serdes::deserialize(
                        &*value_serde,
                        &store_name,
                        "value",
                        Some(&stored_value),
                    ) {
                        Ok(value) => value,
                        Err(err) => return ctx.errors.push(err),
                    };
                    merged.start = merged.start.min(window.start);
                    merged.end = merged.end.max(window.end);
                    aggregate = Some(match aggregate {
                        Some(so_far) => merger(&record.key, so_far, value.clone()),
                        None => value.clone(),
                    });
                    replaced.push((stored_key, window, value));
                }
                if merged.end < close_time {
                    ctx.late_record_dropped();
                    return;
                }
                let aggregate = aggregator(&record.key, record.value, aggregate);
                // As Kafka Streams: when the record changes the session, every session it
                // merged (the one it grew too) is deleted downstream first, at its own end;
                // the merged session is then a new row, at its end.
                if merged != (Window { start: t, end: t }) {
                    for (stored_key, window, value) in replaced {
                        ctx.put_logged(&store_name, stored_key, None, t);
                        downstream.forward(
                            ctx,
                            Record {
                                key: Windowed {
                                    key: record.key.clone(),
                                    window,
                                },
                                value: Change {
                                    new: None,
                                    old: Some(value),
                                },
                                timestamp: window.end,
                                headers: record.headers.clone(),
                            },
                        );
                    }
                }
                match serdes::serialize(&*value_serde, &store_name, "value", &aggregate) {
                    Ok(bytes) => {
                        ctx.put_logged(&store_name, session_key(&key_bytes, &merged), bytes, t)
                    }
                    Err(err) => return ctx.errors.push(err),
                }
                downstream.forward(
                    ctx,
                    Record {
                        key: Windowed {
                            key: record.key,
                            window: merged,
                        },
                        value: Change {
                            new: Some(aggregate),
                            old: None,
                        },
                        timestamp: merged.end,
                        headers: record.headers,
                    },
                );
            }));
        let mut table = KTable::materialized(
            state,
            out,
            store,
            Arc::new(SessionWindowedSerde {
                inner: self.key.clone(),
            }),
            materialized.value,
            self.stream.sources.clone(),
        );
        // A session (its end inclusive) closes when stream time passes end + gap + grace.
        table.window_close_ms = Some(self.windows.gap_ms + self.windows.grace_ms + 1);
        self.emit.apply(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::StringSerde;

    #[test]
    fn session_keys_are_the_key_then_end_then_start() {
        let serde = SessionWindowedSerde::new(StringSerde);
        let key = Windowed {
            key: "ann".to_string(),
            window: Window { start: 10, end: 25 },
        };
        let bytes = serde.serialize("t", &key).unwrap().unwrap();
        assert_eq!(&bytes[..3], b"ann");
        assert_eq!(&bytes[3..11], &25i64.to_be_bytes());
        assert_eq!(&bytes[11..], &10i64.to_be_bytes());
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), key);
        assert!(serde
            .deserialize("t", Some(&Bytes::from_static(b"short")))
            .is_err());
    }
}
