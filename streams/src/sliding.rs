//! Sliding windows: aggregates over every span of a fixed time difference that the records of
//! a key define (Kafka's `SlidingWindows`, KIP-450).
//!
//! For a time difference `d`, a record at `t` ends a window `[t - d, t]`, and starts one,
//! `[t + 1, t + 1 + d]`, as soon as a later record falls in it; both ends are inclusive. Each
//! window's aggregate covers the records of its span. A record at `t` changes the windows that
//! contain it — the windows ending at the records from `t` to `t + d`, and those starting just
//! after the records from `t - d - 1` to `t - 1` — and creates its own two.
//!
//! The key's recent records are kept in a store of their own (`<store>-records`: key bytes,
//! then timestamp and a sequence number, 8 big-endian bytes each), and the windows a record
//! changes are folded again from them, so that an out-of-order record lands in exactly the
//! windows it belongs to. That costs a scan of the key's records within `2d` per record: fine
//! for the rates a key sees within one time difference, quadratic for a key with very many.
//! Aggregates are stored under the key's bytes and the window start (Kafka's time-windowed
//! key layout; a window's end is its start plus `d`). A window that ended more than the grace
//! period before stream time is closed: not updated any more; a record whose windows have all
//! closed is dropped and counted. Records older than any open window are purged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::kstream::{Data, KStream};
use crate::ktable::{Change, KTable, Materialized};
use crate::serdes::{self, Serde};
use crate::store::{be_i64, timed_key};
use crate::topology::Record;
use crate::window::{Window, Windowed, WindowedSerde};

/// Windows over every span of `time_difference` the records define (Kafka's `SlidingWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    difference_ms: i64,
    grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of `difference` that accept no late record
    /// (`SlidingWindows.ofTimeDifferenceWithNoGrace`).
    pub fn of_time_difference_with_no_grace(difference: Duration) -> SlidingWindows {
        SlidingWindows::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// Windows of `difference` that still take records `grace` after they end
    /// (`SlidingWindows.ofTimeDifferenceAndGrace`).
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> SlidingWindows {
        SlidingWindows {
            difference_ms: difference.as_millis() as i64,
            grace_ms: grace.as_millis() as i64,
        }
    }
}

/// A grouped stream cut into sliding windows, ready to aggregate (Kafka's
/// `TimeWindowedKStream` over `SlidingWindows`).
pub struct SlidingWindowedKStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
    pub(crate) windows: SlidingWindows,
}

impl<K: Data, V: Data> SlidingWindowedKStream<K, V> {
    /// How many records each key had in each window.
    pub fn count(&self, materialized: Materialized<i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0, |_, _, count| count + 1, materialized)
    }

    /// Folds the values of each window of each key into an aggregate.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<VA>,
    ) -> KTable<Windowed<K>, VA> {
        let state = self.stream.state.clone();
        let store = state.store_named(
            materialized.name.clone(),
            "KSTREAM-SLIDING-AGGREGATE-STATE-STORE",
        );
        let records_store = state.store_named(Some(format!("{store}-records")), "");
        let out = state.new_children::<Windowed<K>, Change<VA>>(format!(
            "sliding aggregate into store {store}"
        ));
        let downstream = out.clone();
        let (key_serde, value_serde, result_serde) = (
            self.key.clone(),
            self.value.clone(),
            materialized.value.clone(),
        );
        let (windows, store_name) = (self.windows, store.clone());
        let d = windows.difference_ms;
        self.stream
            .children
            .add(Arc::new(move |ctx, record: Record<K, V>| {
                // Kafka Streams skips records without key bytes in stateful operators.
                let Some(key_bytes) = ctx.store_key(&*key_serde, &store_name, &record.key) else {
                    return;
                };
                let t = record.timestamp.max(0);
                let close_time = ctx.stream_time().saturating_sub(windows.grace_ms);
                if t.saturating_add(1).saturating_add(d) < close_time {
                    ctx.late_record_dropped();
                    return;
                }
                let value_bytes = match serdes::serialize(
                    &*value_serde,
                    &records_store,
                    "value",
                    &record.value,
                ) {
                    Ok(bytes) => bytes.unwrap_or_default(),
                    Err(err) => return ctx.errors.push(err),
                };
                let mut seq = 0;
                while ctx.contains(&records_store, &timed_key(&key_bytes, t, seq)) {
                    seq += 1;
                }
                ctx.put_logged(
                    &records_store,
                    timed_key(&key_bytes, t, seq),
                    Some(value_bytes),
                    t,
                );

                // The key's records up to the last any changed window can hold (within 2d + 1
                // of t); those before the purge horizon go below.
                let from = timed_key(&key_bytes, 0, 0);
                let until = t.saturating_add(2 * d + 1);
                let stored = ctx.scan_while(&records_store, &from, |k| {
                    k.len() == key_bytes.len() + 16
                        && k.starts_with(&key_bytes)
                        && be_i64(&k[key_bytes.len()..]) <= until
                });
                let mut records: Vec<(i64, V)> = Vec::with_capacity(stored.len());
                for (stored_key, bytes) in &stored {
                    if stored_key.len() != key_bytes.len() + 16
                        || !stored_key.starts_with(&key_bytes)
                    {
                        continue;
                    }
                    match serdes::deserialize(&*value_serde, &records_store, "value", Some(bytes)) {
                        Ok(value) => records.push((be_i64(&stored_key[key_bytes.len()..]), value)),
                        Err(err) => return ctx.errors.push(err),
                    }
                }
                let times: BTreeSet<i64> = records.iter().map(|(time, _)| *time).collect();
                // The windows this record is in (or creates), by start.
                let mut starts = BTreeSet::new();
                starts.insert(t.saturating_sub(d).max(0));
                if times.range(t + 1..=t + d).next().is_some() {
                    starts.insert(t + 1);
                }
                for q in times.range(t..=t.saturating_add(d)) {
                    starts.insert((q - d).max(0));
                }
                for p in times.range(t.saturating_sub(d + 1)..t) {
                    starts.insert(p + 1);
                }
                let mut updated = false;
                for start in starts {
                    let window = Window {
                        start,
                        end: start + d,
                    };
                    if window.end < close_time {
                        continue;
                    }
                    let in_window = records
                        .iter()
                        .filter(|(time, _)| (window.start..=window.end).contains(time));
                    let mut aggregate = initializer();
                    let mut any = false;
                    for (_, value) in in_window {
                        aggregate = aggregator(&record.key, value, aggregate);
                        any = true;
                    }
                    if !any {
                        continue;
                    }
                    updated = true;
                    let stored_key = crate::window::windowed_bytes(&key_bytes, window.start);
                    let previous = match ctx.get_stored(&store_name, &stored_key, &*result_serde) {
                        Ok(previous) => previous,
                        Err(err) => return ctx.errors.push(err),
                    };
                    match serdes::serialize(&*result_serde, &store_name, "value", &aggregate) {
                        Ok(bytes) => ctx.put_logged(&store_name, stored_key, bytes, t),
                        Err(err) => return ctx.errors.push(err),
                    }
                    downstream.forward(
                        ctx,
                        Record {
                            key: Windowed {
                                key: record.key.clone(),
                                window,
                            },
                            value: Change {
                                new: Some(aggregate),
                                old: previous,
                            },
                            timestamp: t.max(window.start),
                            headers: record.headers.clone(),
                        },
                    );
                }
                if !updated {
                    ctx.late_record_dropped();
                }
                // Records no open window can reach any more go.
                let horizon = close_time.saturating_sub(2 * d + 1);
                let stale: Vec<Bytes> = stored
                    .iter()
                    .filter(|(k, _)| be_i64(&k[key_bytes.len()..]) < horizon)
                    .map(|(k, _)| k.clone())
                    .collect();
                for stale_key in stale {
                    ctx.put_logged(&records_store, stale_key, None, t);
                }
            }));
        let mut table = KTable::materialized(
            state,
            out,
            store,
            Arc::new(WindowedSerde::new_shared(
                self.key.clone(),
                Duration::from_millis(d as u64),
            )),
            materialized.value,
            self.stream.sources.clone(),
        );
        // A window's end is inclusive: it closes once stream time passes end + grace.
        table.window_close_ms = Some(windows.grace_ms + 1);
        table
    }
}
