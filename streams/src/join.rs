//! KStream–KStream joins over time windows (Kafka's `KStream.join(KStream, ValueJoiner,
//! JoinWindows, StreamJoined)`), inner, left and outer.
//!
//! Each side keeps its recent records in a window store of the task — the key's bytes, then the
//! record's timestamp and a sequence number (8 big-endian bytes each), so that one key's
//! records sit together in time order — logged to a changelog like every store. A record of
//! this stream at `t` is stored, then meets the other stream's records of its key from
//! `t - before` to `t + after` (a record of the other stream looks the other way); each pair is
//! joined with the later of the two timestamps. Records older than the windows and the grace
//! period allow are purged from the stores.
//!
//! Left and outer joins follow Kafka 3.1's semantics (KIP-633): a record that found no partner
//! waits in a shared store, ordered by time, and is joined with `None` only once its window has
//! closed with no partner arriving — never early, and never besides a real join result. The
//! join's stream time is the largest timestamp either side has seen; a record whose window has
//! already closed by it is dropped and counted, as Kafka's `dropped-records`.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::kstream::{Data, KStream};
use crate::serdes::{self, Serde};
use crate::store::{be_i64, timed_key};
use crate::topology::{Children, Record, TaskContext};

/// How far apart in time two records of one key may be to join (Kafka's `JoinWindows`): a
/// record of this stream at `t` joins the other's records from `t - before` to `t + after`,
/// and late records are still accepted for `grace` after a window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
    /// Left and outer joins emit an unmatched record at once (and again when a partner
    /// comes), as Kafka's deprecated `JoinWindows.of` did, rather than once its window closes.
    eager: bool,
}

impl JoinWindows {
    /// Records at most `difference` apart join; no late record is accepted
    /// (`JoinWindows.ofTimeDifferenceWithNoGrace`).
    pub fn of_time_difference_with_no_grace(difference: Duration) -> JoinWindows {
        JoinWindows::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// Records at most `difference` apart join; late ones are accepted for `grace`
    /// (`JoinWindows.ofTimeDifferenceAndGrace`).
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> JoinWindows {
        let difference = millis(difference);
        JoinWindows {
            before_ms: difference,
            after_ms: difference,
            grace_ms: millis(grace),
            eager: false,
        }
    }

    /// Records at most `difference` apart join, late ones accepted for a day; a left or outer
    /// join emits a record that has no partner yet at once, with `None`, and the joined
    /// record too if a partner comes later (Kafka's deprecated `JoinWindows.of`, whose
    /// eager results ksqlDB keeps for a `WITHIN` without `GRACE PERIOD`).
    pub fn of(difference: Duration) -> JoinWindows {
        JoinWindows {
            eager: true,
            ..JoinWindows::of_time_difference_and_grace(difference, Duration::from_secs(86_400))
        }
    }

    /// How much earlier than a record of this stream the other's records may be (`before`).
    pub fn before(mut self, before: Duration) -> JoinWindows {
        self.before_ms = millis(before);
        self
    }

    /// How much later than a record of this stream the other's records may be (`after`).
    pub fn after(mut self, after: Duration) -> JoinWindows {
        self.after_ms = millis(after);
        self
    }

    /// How long the stores keep a record: as long as a partner may still come.
    fn retention_ms(&self) -> i64 {
        self.before_ms + self.after_ms + self.grace_ms
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The serdes of a stream–stream join's stores and, optionally, their names (Kafka's
/// `StreamJoined`): the key, this stream's values and the other stream's values.
pub struct StreamJoined<K, V, VO> {
    key: Arc<dyn Serde<K>>,
    this_value: Arc<dyn Serde<V>>,
    other_value: Arc<dyn Serde<VO>>,
    store_name: Option<String>,
}

impl<K, V, VO> StreamJoined<K, V, VO> {
    /// Keys with `key`, this stream's values with `value`, the other's with `other_value`.
    pub fn with(
        key: impl Serde<K> + 'static,
        value: impl Serde<V> + 'static,
        other_value: impl Serde<VO> + 'static,
    ) -> StreamJoined<K, V, VO> {
        StreamJoined {
            key: Arc::new(key),
            this_value: Arc::new(value),
            other_value: Arc::new(other_value),
            store_name: None,
        }
    }

    /// Names the stores `<name>-this-join-store`, `<name>-other-join-store` and (left and outer
    /// joins) `<name>-outer-shared-join-store`, and so their changelogs.
    pub fn with_store_name(mut self, name: &str) -> StreamJoined<K, V, VO> {
        self.store_name = Some(name.to_string());
        self
    }
}

/// Which side of the join a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    This = 0,
    Other = 1,
}

/// A joiner over both sides, either of which may be missing (left and outer joins): `None`
/// where the join's kind joins nothing.
type Joiner<K, V, VO, VR> = Box<dyn Fn(&K, Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync>;

/// One stream–stream join: its windows, stores and joiner, shared by both sides' nodes.
struct StreamJoin<K, V, VO, VR> {
    name: Arc<str>,
    /// Names the time of the last purge among the task's operator times.
    purge_marker: Arc<str>,
    windows: JoinWindows,
    key: Arc<dyn Serde<K>>,
    this_value: Arc<dyn Serde<V>>,
    other_value: Arc<dyn Serde<VO>>,
    this_store: Arc<str>,
    other_store: Arc<str>,
    /// Where records wait for a partner (left and outer joins); `None` for inner joins.
    outer_store: Option<Arc<str>>,
    /// Whether a record of this side (or of the other) that never met a partner is joined
    /// with `None`.
    this_outer: bool,
    other_outer: bool,
    joiner: Joiner<K, V, VO, VR>,
    out: Arc<Children<K, VR>>,
}

/// `timestamp`, the side, `seq`, then the key bytes: the shared store's key, in time order.
fn waiting_key(timestamp: i64, side: Side, seq: u64, key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 17);
    buf.put_i64(timestamp.max(0));
    buf.put_u8(side as u8);
    buf.put_u64(seq);
    buf.put_slice(key);
    buf.freeze()
}

impl<K: Data, V: Data, VO: Data, VR: Data> StreamJoin<K, V, VO, VR> {
    /// How far before and after a record of `side` its partners may be.
    fn reach(&self, side: Side) -> (i64, i64) {
        match side {
            Side::This => (self.windows.before_ms, self.windows.after_ms),
            Side::Other => (self.windows.after_ms, self.windows.before_ms),
        }
    }

    fn stores(&self, side: Side) -> (&Arc<str>, &Arc<str>) {
        match side {
            Side::This => (&self.this_store, &self.other_store),
            Side::Other => (&self.other_store, &self.this_store),
        }
    }

    fn waits(&self, side: Side) -> bool {
        match side {
            Side::This => self.this_outer,
            Side::Other => self.other_outer,
        }
    }

    /// Processes a record of `side`: store it, join it with the other side's records of its
    /// window, let it wait if it met none (and its side waits), then emit what has waited
    /// past its window and purge what no partner can reach any more.
    fn process<A, B>(
        &self,
        ctx: &mut TaskContext,
        side: Side,
        record: Record<K, A>,
        (own_serde, other_serde): (&dyn Serde<A>, &dyn Serde<B>),
        join: impl Fn(&K, &A, &B) -> Option<VR>,
    ) {
        let (own_store, other_store) = self.stores(side);
        // Kafka Streams skips records without key bytes in stateful operators.
        let Some(key_bytes) = ctx.store_key(&*self.key, own_store, &record.key) else {
            return;
        };
        let value_bytes = match serdes::serialize(own_serde, own_store, "value", &record.value) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(err) => return ctx.errors.push(err),
        };
        let t = record.timestamp;
        let time = {
            let time = ctx.operator_time(&self.name);
            *time = (*time).max(t);
            *time
        };
        let (before, after) = self.reach(side);
        if t.saturating_add(after)
            .saturating_add(self.windows.grace_ms)
            < time
        {
            ctx.late_record_dropped();
            return;
        }
        // Records of one key and timestamp are told apart by a sequence number.
        let mut seq = 0;
        while ctx.contains(own_store, &timed_key(&key_bytes, t, seq)) {
            seq += 1;
        }
        let own_key = timed_key(&key_bytes, t, seq);
        ctx.put_logged(own_store, own_key, Some(value_bytes.clone()), t);

        let from = timed_key(&key_bytes, t.saturating_sub(before), 0);
        let until = t.saturating_add(after);
        let partners = ctx.scan_while(other_store, &from, |k| {
            k.len() == key_bytes.len() + 16
                && k.starts_with(&key_bytes)
                && be_i64(&k[key_bytes.len()..]) <= until
        });
        for (partner_key, partner_bytes) in &partners {
            let partner_time = be_i64(&partner_key[key_bytes.len()..]);
            let partner =
                match serdes::deserialize(other_serde, other_store, "value", Some(partner_bytes)) {
                    Ok(partner) => partner,
                    Err(err) => return ctx.errors.push(err),
                };
            let other_side = match side {
                Side::This => Side::Other,
                Side::Other => Side::This,
            };
            if let (Some(waiting), true) = (&self.outer_store, self.waits(other_side)) {
                let partner_seq = be_i64(&partner_key[key_bytes.len() + 8..]) as u64;
                let waited = waiting_key(partner_time, other_side, partner_seq, &key_bytes);
                if ctx.contains(waiting, &waited) {
                    ctx.put_logged(waiting, waited, None, t);
                }
            }
            let Some(value) = join(&record.key, &record.value, &partner) else {
                continue;
            };
            self.out.forward(
                ctx,
                Record {
                    key: record.key.clone(),
                    value,
                    timestamp: t.max(partner_time),
                    headers: record.headers.clone(),
                },
            );
        }
        if let (Some(waiting), true, true) =
            (&self.outer_store, partners.is_empty(), self.waits(side))
        {
            if self.windows.eager {
                self.emit_alone(ctx, side, record.key.clone(), &value_bytes, t);
            } else {
                ctx.put_logged(
                    waiting,
                    waiting_key(t, side, seq, &key_bytes),
                    Some(value_bytes),
                    t,
                );
            }
        }
        self.emit_unmatched(ctx, time);
        self.purge(ctx, time);
    }

    /// Joins with `None` every waiting record whose window has closed by `time`, oldest first.
    fn emit_unmatched(&self, ctx: &mut TaskContext, time: i64) {
        let Some(waiting) = &self.outer_store else {
            return;
        };
        let grace = self.windows.grace_ms;
        let closes = |timestamp: i64, side: Side| {
            let (_, after) = self.reach(side);
            timestamp.saturating_add(after).saturating_add(grace) < time
        };
        let earliest_close = self.windows.before_ms.min(self.windows.after_ms) + grace;
        let due = ctx.scan_while(waiting, &[], |k| {
            k.len() >= 17 && be_i64(k).saturating_add(earliest_close) < time
        });
        for (stored_key, value_bytes) in due {
            let timestamp = be_i64(&stored_key);
            let side = if stored_key[8] == Side::This as u8 {
                Side::This
            } else {
                Side::Other
            };
            if !closes(timestamp, side) {
                continue;
            }
            ctx.put_logged(waiting, stored_key.clone(), None, time);
            let key_bytes = stored_key.slice(17..);
            let key = match serdes::deserialize(&*self.key, waiting, "key", Some(&key_bytes)) {
                Ok(key) => key,
                Err(err) => return ctx.errors.push(err),
            };
            self.emit_alone(ctx, side, key, &value_bytes, timestamp);
        }
    }

    /// Joins a record of `side` (its value's bytes) that has no partner with `None`.
    fn emit_alone(&self, ctx: &mut TaskContext, side: Side, key: K, value: &Bytes, timestamp: i64) {
        let store = match side {
            Side::This => &self.this_store,
            Side::Other => &self.other_store,
        };
        let joined = match side {
            Side::This => serdes::deserialize(&*self.this_value, store, "value", Some(value))
                .map(|v| (self.joiner)(&key, Some(&v), None)),
            Side::Other => serdes::deserialize(&*self.other_value, store, "value", Some(value))
                .map(|v| (self.joiner)(&key, None, Some(&v))),
        };
        match joined {
            Ok(None) => {}
            Ok(Some(value)) => self.out.forward(
                ctx,
                Record {
                    key,
                    value,
                    timestamp,
                    headers: Vec::new(),
                },
            ),
            Err(err) => ctx.errors.push(err),
        }
    }

    /// Deletes the records no partner can reach any more, once per retention period of
    /// stream time (a scan of both window stores).
    fn purge(&self, ctx: &mut TaskContext, time: i64) {
        let retention = self.windows.retention_ms().max(1);
        let last = ctx.operator_time(&self.purge_marker);
        if *last != i64::MIN && time < last.saturating_add(retention) {
            return;
        }
        *last = time;
        let cutoff = time.saturating_sub(retention);
        for store in [&self.this_store, &self.other_store] {
            let expired = ctx.keys_where(store, |k| {
                k.len() >= 16 && be_i64(&k[k.len() - 16..]) < cutoff
            });
            for key in expired {
                ctx.put_logged(store, key, None, time);
            }
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Pairs of records of one key from this stream and `other` that are at most the windows
    /// apart, joined (Kafka's KStream–KStream inner `join`). The streams must be
    /// co-partitioned (checked when the application starts).
    pub fn join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&K, &V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        self.join_streams(
            other,
            windows,
            joined,
            (false, false),
            "join",
            move |key, this, other| match (this, other) {
                (Some(this), Some(other)) => Some(joiner(key, this, other)),
                _ => None,
            },
        )
    }

    /// Like [`KStream::join_stream`], and each record of this stream that met no partner
    /// within its window is joined with `None` once the window has closed (Kafka's
    /// `leftJoin`).
    pub fn left_join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&K, &V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        self.join_streams(
            other,
            windows,
            joined,
            (true, false),
            "left_join",
            move |key, this, other| this.map(|this| joiner(key, this, other)),
        )
    }

    /// Like [`KStream::join_stream`], and a record of either stream that met no partner is
    /// joined with `None` on the other side once its window has closed (Kafka's `outerJoin`).
    pub fn outer_join_stream<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&K, Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        self.join_streams(
            other,
            windows,
            joined,
            (true, true),
            "outer_join",
            move |key, this, other| Some(joiner(key, this, other)),
        )
    }

    fn join_streams<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
        (this_outer, other_outer): (bool, bool),
        what: &str,
        joiner: impl Fn(&K, Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let state = &self.state;
        if self.key_changed || other.key_changed {
            state.error(format!(
                "{what} of two streams after an operator that changes keys (map, flat_map, select_key) needs the changed stream repartitioned first, so that each key's records meet in one task: call repartition() before the join"
            ));
        }
        state.copartition(
            self.sources
                .iter()
                .chain(other.sources.iter())
                .cloned()
                .collect(),
        );
        let (this_store, other_store, outer_store) = match &joined.store_name {
            Some(name) => (
                format!("{name}-this-join-store"),
                format!("{name}-other-join-store"),
                format!("{name}-outer-shared-join-store"),
            ),
            None => (
                format!("{}-store", state.generated_name("KSTREAM-JOINTHIS")),
                format!("{}-store", state.generated_name("KSTREAM-JOINOTHER")),
                format!("{}-store", state.generated_name("KSTREAM-OUTERSHARED")),
            ),
        };
        let this_store = state.store_named(Some(this_store), "");
        let other_store = state.store_named(Some(other_store), "");
        let outer_store =
            (this_outer || other_outer).then(|| state.store_named(Some(outer_store), ""));
        let out = state.new_children::<K, VR>(format!(
            "{what} of streams with stores {this_store} and {other_store}"
        ));
        let join = Arc::new(StreamJoin {
            purge_marker: format!("{this_store}#purged").into(),
            name: this_store.clone(),
            windows,
            key: joined.key,
            this_value: joined.this_value,
            other_value: joined.other_value,
            this_store,
            other_store,
            outer_store,
            this_outer,
            other_outer,
            joiner: Box::new(joiner),
            out: out.clone(),
        });
        let this_join = join.clone();
        self.children
            .add(Arc::new(move |ctx, record: Record<K, V>| {
                let serdes = (&*this_join.this_value, &*this_join.other_value);
                this_join.process(ctx, Side::This, record, serdes, |key, this, other| {
                    (this_join.joiner)(key, Some(this), Some(other))
                });
            }));
        other
            .children
            .add(Arc::new(move |ctx, record: Record<K, VO>| {
                let serdes = (&*join.other_value, &*join.this_value);
                join.process(ctx, Side::Other, record, serdes, |key, other, this| {
                    (join.joiner)(key, Some(this), Some(other))
                });
            }));
        KStream::new(self.state.clone(), out).with_sources(
            self.sources
                .iter()
                .chain(other.sources.iter())
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keys_keep_a_keys_records_in_time_order() {
        let a = timed_key(b"k", 5, 0);
        let b = timed_key(b"k", 5, 1);
        let c = timed_key(b"k", 300, 0);
        assert!(a < b && b < c);
        assert_eq!(be_i64(&c[1..]), 300);
        let w = waiting_key(7, Side::Other, 2, b"key");
        assert_eq!(be_i64(&w), 7);
        assert_eq!(w[8], 1);
        assert_eq!(&w[17..], b"key");
    }
}
