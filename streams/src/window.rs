//! Time windows: tumbling and hopping windows over record timestamps, with a grace period for
//! out-of-order records (Kafka's `TimeWindows`), windowed aggregations, and windowed keys.
//!
//! A record of timestamp `t` belongs to every window `[start, start + size)` with `start` a
//! multiple of the advance and `start <= t < start + size`. A window closes when the task's
//! stream time passes its end plus the grace period; a record for a closed window is dropped
//! and counted (Kafka's `dropped-records`). Aggregates are kept per key and window in the task's
//! store under the key's bytes followed by the window start (8 bytes, big-endian) — the layout
//! of Kafka Streams' time-windowed key serde, which is also how windowed keys are written to
//! output topics ([`WindowedSerde`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::kstream::{Data, KStream};
use crate::ktable::{Change, KTable, Materialized, Update};
use crate::serdes::{self, Serde};
use crate::topology::Record;

/// Tumbling or hopping windows of a fixed size (Kafka's `TimeWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size` that accept no out-of-order record once stream time has
    /// passed their end (`TimeWindows.ofSizeWithNoGrace`).
    pub fn of_size_with_no_grace(size: Duration) -> TimeWindows {
        TimeWindows::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that still take records up to `grace` after their end
    /// (`TimeWindows.ofSizeAndGrace`).
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> TimeWindows {
        let size_ms = (size.as_millis() as i64).max(1);
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: grace.as_millis() as i64,
        }
    }

    /// Hopping windows: a new window every `advance` (at most the size; `advanceBy`).
    pub fn advance_by(mut self, advance: Duration) -> TimeWindows {
        self.advance_ms = (advance.as_millis() as i64).clamp(1, self.size_ms);
        self
    }

    /// The windows a record of timestamp `t` belongs to, by start, oldest first.
    pub fn windows_for(&self, t: i64) -> impl Iterator<Item = Window> + '_ {
        let t = t.max(0);
        let first =
            ((t - self.size_ms + self.advance_ms).max(0) / self.advance_ms) * self.advance_ms;
        (0..)
            .map(move |n| first + n * self.advance_ms)
            .take_while(move |start| *start <= t)
            .map(move |start| Window {
                start,
                end: start + self.size_ms,
            })
    }

    /// Whether `window` no longer takes records at stream time `stream_time`.
    pub fn is_closed(&self, window: &Window, stream_time: i64) -> bool {
        stream_time >= window.end + self.grace_ms
    }
}

/// A window: `[start, end)` in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// A key and the window its aggregate covers (Kafka's `Windowed<K>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window.
    pub window: Window,
}

/// Windowed keys as Kafka Streams' `TimeWindowedSerde` writes them: the key's bytes, then the
/// window start as 8 big-endian bytes; the end is the start plus `window_size` when read.
pub struct WindowedSerde<K> {
    inner: Arc<dyn Serde<K>>,
    window_size_ms: i64,
}

impl<K> WindowedSerde<K> {
    /// Like [`WindowedSerde::new`], with a shared key serde.
    pub fn new_shared(inner: Arc<dyn Serde<K>>, window_size: Duration) -> WindowedSerde<K> {
        WindowedSerde {
            inner,
            window_size_ms: window_size.as_millis() as i64,
        }
    }

    /// Windowed keys whose key part `inner` writes, for windows of `window_size`.
    pub fn new(inner: impl Serde<K> + 'static, window_size: Duration) -> WindowedSerde<K> {
        WindowedSerde {
            inner: Arc::new(inner),
            window_size_ms: window_size.as_millis() as i64,
        }
    }
}

impl<K> Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Option<Bytes>, String> {
        let key = self.inner.serialize(topic, &value.key)?.unwrap_or_default();
        Ok(Some(windowed_bytes(&key, value.window.start)))
    }

    fn deserialize(&self, topic: &str, bytes: Option<&Bytes>) -> Result<Windowed<K>, String> {
        let bytes = bytes.ok_or("a windowed key without bytes")?;
        if bytes.len() < 8 {
            return Err(format!(
                "{} bytes are too few for a windowed key",
                bytes.len()
            ));
        }
        let split = bytes.len() - 8;
        let mut start = [0u8; 8];
        start.copy_from_slice(&bytes[split..]);
        let start = i64::from_be_bytes(start);
        let key_bytes = bytes.slice(..split);
        let key = self.inner.deserialize(topic, Some(&key_bytes))?;
        Ok(Windowed {
            key,
            window: Window {
                start,
                end: start + self.window_size_ms,
            },
        })
    }
}

/// Key bytes, then the window start (8 big-endian bytes): a time-windowed key.
pub(crate) fn windowed_bytes(key: &[u8], start: i64) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 8);
    buf.put_slice(key);
    buf.put_i64(start);
    buf.freeze()
}

/// A windowed store's retention in ms: what `materialized` asks for, at least `minimum`
/// (the window size, or session gap, plus grace: a window must outlive its closing), which
/// is also the default, as Kafka Streams'.
pub(crate) fn retention_ms<V>(materialized: &Materialized<V>, minimum: i64) -> i64 {
    materialized
        .retention
        .map_or(minimum, |r| r.as_millis() as i64)
        .max(minimum)
}

/// Deletes (from the store and its changelog) the windows of store `name` that ended more than
/// `retention_ms` before `stream_time` — `end_of(stored key)` (None: not a window's key)
/// — scanning the store at most once per tenth of the retention of stream time.
pub(crate) fn expire_windows(
    ctx: &mut crate::topology::TaskContext,
    (name, marker): (&Arc<str>, &Arc<str>),
    retention_ms: i64,
    stream_time: i64,
    end_of: impl Fn(&[u8]) -> Option<i64>,
) {
    // `marker` names the time of the last scan among the task's operator times.
    let last_run = ctx.operator_time(marker);
    if *last_run == i64::MIN {
        *last_run = stream_time;
        return;
    }
    if stream_time < last_run.saturating_add((retention_ms / 10).max(1)) {
        return;
    }
    *last_run = stream_time;
    let cutoff = stream_time.saturating_sub(retention_ms);
    let expired = ctx.keys_where(name, |key| end_of(key).is_some_and(|end| end < cutoff));
    for key in expired {
        ctx.put_logged(name, key, None, stream_time);
    }
}

/// When a windowed aggregation forwards its results (Kafka's `EmitStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// Every update of a window's aggregate (the default).
    #[default]
    OnWindowUpdate,
    /// Only a window's final aggregate, once it has closed (its end and grace have passed).
    OnWindowClose,
}

impl EmitStrategy {
    /// Every update (`EmitStrategy.onWindowUpdate()`).
    pub fn on_window_update() -> EmitStrategy {
        EmitStrategy::OnWindowUpdate
    }

    /// Final results only (`EmitStrategy.onWindowClose()`).
    pub fn on_window_close() -> EmitStrategy {
        EmitStrategy::OnWindowClose
    }

    /// The aggregation's `table` as this strategy forwards it: as it is, or suppressed until
    /// each window closes (its store still the aggregation's, for queries).
    pub(crate) fn apply<K: Data, V: Data>(
        self,
        table: KTable<Windowed<K>, V>,
    ) -> KTable<Windowed<K>, V> {
        match self {
            EmitStrategy::OnWindowUpdate => table,
            EmitStrategy::OnWindowClose => {
                let mut suppressed =
                    table.suppress(crate::suppress::Suppressed::until_window_closes());
                suppressed.store = table.store.clone();
                suppressed
            }
        }
    }
}

/// A grouped stream cut into time windows, ready to aggregate (Kafka's `TimeWindowedKStream`).
pub struct TimeWindowedKStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) windows: TimeWindows,
    pub(crate) emit: EmitStrategy,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    /// Forwards every update, or only final results (Kafka's `emitStrategy`).
    pub fn emit_strategy(mut self, strategy: EmitStrategy) -> TimeWindowedKStream<K, V> {
        self.emit = strategy;
        self
    }

    /// How many records each key had in each window.
    pub fn count(&self, materialized: Materialized<i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0, |_, _, count| count + 1, materialized)
    }

    /// Folds each key's values in each window into an aggregate. The aggregator sees the
    /// value by reference: a record of hopping windows counts in several.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<VA>,
    ) -> KTable<Windowed<K>, VA> {
        let state = self.stream.state.clone();
        let store = state.materialize(&materialized, "KSTREAM-AGGREGATE-STATE-STORE");
        let out = state.new_children::<Windowed<K>, Change<VA>>(format!(
            "windowed aggregate into store {store}"
        ));
        let downstream = out.clone();
        let (key_serde, value_serde) = (self.key.clone(), materialized.value.clone());
        let windows = self.windows;
        let store_name = store.clone();
        let caching = materialized.caching;
        let retention_ms =
            retention_ms(&materialized, self.windows.size_ms + self.windows.grace_ms);
        let expiry: Arc<str> = format!("{store}#expired").into();
        self.stream
            .children
            .add(Arc::new(move |ctx, record: Record<K, V>| {
                // Kafka Streams skips records without key bytes in stateful operators.
                let Some(key_bytes) = ctx.store_key(&*key_serde, &store_name, &record.key) else {
                    return;
                };
                let stream_time = ctx.stream_time();
                expire_windows(
                    ctx,
                    (&store_name, &expiry),
                    retention_ms,
                    stream_time,
                    |key| {
                        let at = key.len().checked_sub(8)?;
                        Some(crate::store::be_i64(&key[at..]).saturating_add(windows.size_ms))
                    },
                );
                if ctx.caching(caching) {
                    // The windows' keys share one buffer: one allocation per record, not one
                    // per window.
                    let per_record = (windows.size_ms / windows.advance_ms + 1) as usize;
                    let mut open = Vec::with_capacity(per_record);
                    let mut buf = BytesMut::with_capacity(per_record * (key_bytes.len() + 8));
                    for window in windows.windows_for(record.timestamp) {
                        if windows.is_closed(&window, stream_time) {
                            ctx.late_record_dropped();
                            continue;
                        }
                        buf.put_slice(&key_bytes);
                        buf.put_i64(window.start);
                        open.push(buf.split().freeze());
                    }
                    let folded = ctx.fold_cached(
                        &store_name,
                        open,
                        &*value_serde,
                        (record.timestamp, &record.headers),
                        |previous| {
                            let current = previous.unwrap_or_else(&initializer);
                            Some(aggregator(&record.key, &record.value, current))
                        },
                    );
                    if let Err(err) = folded {
                        ctx.errors.push(err);
                    }
                    return;
                }
                for window in windows.windows_for(record.timestamp) {
                    if windows.is_closed(&window, stream_time) {
                        ctx.late_record_dropped();
                        continue;
                    }
                    let stored_key = windowed_bytes(&key_bytes, window.start);
                    let previous = match ctx.get_stored(&store_name, &stored_key, &*value_serde) {
                        Ok(previous) => previous,
                        Err(err) => return ctx.errors.push(err),
                    };
                    let current = previous.clone().unwrap_or_else(&initializer);
                    let aggregate = aggregator(&record.key, &record.value, current);
                    let bytes =
                        match serdes::serialize(&*value_serde, &store_name, "value", &aggregate) {
                            Ok(bytes) => bytes,
                            Err(err) => return ctx.errors.push(err),
                        };
                    let update = Update {
                        key: Windowed {
                            key: record.key.clone(),
                            window,
                        },
                        key_bytes: stored_key,
                        new: Some(aggregate),
                        new_bytes: bytes,
                        old: previous,
                        timestamp: record.timestamp,
                        headers: record.headers.clone(),
                    };
                    update.store_and_forward(ctx, &store_name, &downstream);
                }
            }));
        let windowed_key: Arc<dyn Serde<Windowed<K>>> = Arc::new(WindowedSerde {
            inner: self.key.clone(),
            window_size_ms: self.windows.size_ms,
        });
        state.add_flusher(crate::ktable::cache_flusher(
            store.clone(),
            windowed_key.clone(),
            materialized.value.clone(),
            out.clone(),
        ));
        let mut table = KTable::materialized(
            state,
            out,
            store,
            windowed_key,
            materialized.value,
            self.stream.sources.clone(),
        );
        table.window_close_ms = Some(self.windows.grace_ms);
        self.emit.apply(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(windows: &TimeWindows, t: i64) -> Vec<i64> {
        windows.windows_for(t).map(|w| w.start).collect()
    }

    #[test]
    fn records_fall_in_kafkas_windows() {
        let tumbling = TimeWindows::of_size_with_no_grace(Duration::from_millis(10));
        assert_eq!(starts(&tumbling, 0), vec![0]);
        assert_eq!(starts(&tumbling, 9), vec![0]);
        assert_eq!(starts(&tumbling, 10), vec![10]);
        let hopping =
            TimeWindows::of_size_and_grace(Duration::from_millis(10), Duration::from_millis(5))
                .advance_by(Duration::from_millis(5));
        assert_eq!(starts(&hopping, 12), vec![5, 10]);
        assert_eq!(starts(&hopping, 3), vec![0]);
        assert_eq!(starts(&hopping, 20), vec![15, 20]);
        let window = Window { start: 5, end: 15 };
        assert!(!hopping.is_closed(&window, 19));
        assert!(hopping.is_closed(&window, 20));
    }

    #[test]
    fn windowed_keys_are_the_key_then_the_start() {
        let serde = WindowedSerde::new(crate::serdes::StringSerde, Duration::from_millis(10));
        let key = Windowed {
            key: "ann".to_string(),
            window: Window { start: 20, end: 30 },
        };
        let bytes = serde.serialize("t", &key).unwrap().unwrap();
        assert_eq!(&bytes[..3], b"ann");
        assert_eq!(&bytes[3..], &20i64.to_be_bytes());
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), key);
        assert!(serde
            .deserialize("t", Some(&Bytes::from_static(b"x")))
            .is_err());
    }
}
