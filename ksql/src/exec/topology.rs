//! Compiled queries as Sluice Streams topologies: a batch source evaluating the query on
//! each run of records, then a sink topic (a persistent query) or a channel to the client
//! (a push query).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::ArrayRef;
use bytes::Bytes;
use sluice_streams::serdes::{BytesSerde, OptionSerde, Serde};
use sluice_streams::{
    BatchOutput, Change, EmitStrategy, Grouped, JoinWindows, KStream, KTable, Materialized,
    Produced, RawRecord, Record, Repartitioned, SessionWindows, StreamJoined, StreamsBuilder,
    TimeWindows, Topology, Window, Windowed,
};
use std::time::Duration;

use super::aggregate::WindowSpec;

use crate::aggregate::State;

use super::{CompiledQuery, Evaluated, JsonRows, SinkEncoders};
use crate::error::{KsqlError, Result};

/// Counts of a running query, for `DESCRIBE EXTENDED` and the tests.
#[derive(Debug, Default)]
pub struct QueryCounters {
    /// Records read.
    pub records_in: AtomicU64,
    /// Rows written (or sent).
    pub rows_out: AtomicU64,
    /// Records skipped: not deserialisable, or an expression failed on them.
    pub skipped: AtomicU64,
}

/// Evaluates `query` on `run`; if the batch fails as a whole (an expression that fails on
/// some row), row by row, skipping the rows that fail, as ksqlDB skips such records. The
/// index of each record skipped so (not those in an [`Evaluated::skipped`]) goes in `failed`.
fn evaluate_robustly(
    query: &CompiledQuery,
    run: &[RawRecord],
    counters: &QueryCounters,
    failed: &mut Vec<u32>,
) -> Vec<Evaluated> {
    counters
        .records_in
        .fetch_add(run.len() as u64, Ordering::Relaxed);
    match query.evaluate(run) {
        Ok(evaluated) => {
            for (at, why) in &evaluated.skipped {
                skip(&run[*at as usize], why, counters);
            }
            vec![evaluated]
        }
        Err(_) if run.len() > 1 => {
            let mut out = Vec::with_capacity(run.len());
            for (i, record) in run.iter().enumerate() {
                match query.evaluate(std::slice::from_ref(record)) {
                    Ok(mut evaluated) => {
                        for (at, why) in &mut evaluated.skipped {
                            skip(record, why, counters);
                            *at = i as u32;
                        }
                        for row in &mut evaluated.rows {
                            *row = i as u32;
                        }
                        out.push(evaluated);
                    }
                    Err(err) => {
                        skip(record, &err, counters);
                        failed.push(i as u32);
                    }
                }
            }
            out
        }
        Err(err) => {
            if let Some(record) = run.first() {
                skip(record, &err, counters);
                failed.push(0);
            }
            Vec::new()
        }
    }
}

/// Counts a record the query skips; logs it when the count reaches a power of two (the
/// 1st, 2nd, 4th, 8th... skipped record), so a topic full of bad records does not flood
/// the log.
fn skip(record: &RawRecord, why: &dyn std::fmt::Display, counters: &QueryCounters) {
    let skipped = counters.skipped.fetch_add(1, Ordering::Relaxed) + 1;
    if skipped.is_power_of_two() {
        tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, reason = %why, skipped, "skipping a record the query cannot process (logged at each power of two skipped)");
    }
}

/// Counts a result row the query could not make (a grouped query's row after the store);
/// logs it at powers of two, as [`skip`].
fn skip_row(why: &dyn std::fmt::Display, counters: &QueryCounters) {
    let skipped = counters.skipped.fetch_add(1, Ordering::Relaxed) + 1;
    if skipped.is_power_of_two() {
        tracing::warn!(reason = %why, skipped, "skipping a result row the query cannot make (logged at each power of two skipped)");
    }
}

/// The states of an aggregation's groups in its store and changelog.
pub(crate) struct StatesSerde;

/// The store of an aggregation's groups (ksqlDB's name; pull queries read it).
pub(crate) const AGGREGATE_STORE: &str = "Aggregate-Aggregate-Materialize";

/// The store of the rows of a table a query makes without aggregating (a table's filter
/// or projection, a join of tables): the sink's key and value, the value after its
/// timestamp (see [`stamped`]).
pub(crate) const TABLE_STORE: &str = "KsqlTopic-Materialize";

/// A row's value in [`TABLE_STORE`]: its timestamp (8 bytes, big-endian), then the value.
fn stamped(timestamp: i64, value: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(value);
    Bytes::from(out)
}

/// A value of [`TABLE_STORE`] as its timestamp and the row's value.
pub(crate) fn unstamped(stored: &Bytes) -> Option<(i64, Bytes)> {
    let timestamp = i64::from_be_bytes(stored.get(..8)?.try_into().ok()?);
    Some((timestamp, stored.slice(8..)))
}

impl Serde<Vec<State>> for StatesSerde {
    fn serialize(
        &self,
        _topic: &str,
        value: &Vec<State>,
    ) -> std::result::Result<Option<Bytes>, String> {
        crate::aggregate::encode_states(value)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| e.to_string())
    }
    fn deserialize(
        &self,
        _topic: &str,
        bytes: Option<&Bytes>,
    ) -> std::result::Result<Vec<State>, String> {
        let bytes = bytes.ok_or("an aggregation state without bytes")?;
        crate::aggregate::decode_states(bytes).map_err(|e| e.to_string())
    }
}

/// The window of a windowed aggregation's row.
#[derive(Debug, Clone, Copy)]
pub struct RowWindow {
    /// `[start, end)` of a time window, `[start, end]` of a session.
    pub window: Window,
    /// Whether it is a session.
    pub session: bool,
}

impl RowWindow {
    /// What a windowed key's bytes end with, as Kafka Streams writes them: the start (8
    /// big-endian bytes), or a session's end then start.
    pub fn key_suffix(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        if self.session {
            out.extend(self.window.end.to_be_bytes());
        }
        out.extend(self.window.start.to_be_bytes());
        out
    }
}

/// A grouped query's result rows: the source's records evaluated in batches into groups
/// and arguments, repartitioned by group if need be, folded into each group's states in
/// the store (per window, for a windowed aggregation), and each update of a group made
/// into its result row by `row` (`row(columns, passes HAVING, window)`, `None`: no output).
fn grouped<K: Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static>(
    builder: &StreamsBuilder,
    query: Arc<CompiledQuery>,
    counters: Arc<QueryCounters>,
    row: impl Fn(Vec<ArrayRef>, bool, Option<RowWindow>) -> Result<Option<(K, V)>>
        + Send
        + Sync
        + 'static,
) -> Result<KStream<K, V>> {
    let source_topic = query.source_topic().to_string();
    let stage = query
        .aggregate()
        .ok_or_else(|| KsqlError::statement("the query does not aggregate"))?;
    let (repartition, windowing) = (stage.repartitions(), stage.windowing().copied());
    let init_query = query.clone();
    let init = move || {
        init_query
            .aggregate()
            .map(|s| s.initial())
            .unwrap_or_default()
    };
    let fold_query = query.clone();
    let fold_counters = counters.clone();
    let fold = move |args: &Bytes, mut states: Vec<State>, undo: bool| {
        if let Some(stage) = fold_query.aggregate() {
            let folded = if undo {
                stage.undo(&mut states, args)
            } else {
                stage.fold(&mut states, args)
            };
            if let Err(err) = folded {
                skip_row(&err, &fold_counters);
            }
        }
        states
    };
    let mut materialized = Materialized::with(StatesSerde).named(AGGREGATE_STORE);
    if let Some(retention) = windowing.and_then(|w| w.retention_ms) {
        materialized = materialized.with_retention(Duration::from_millis(retention));
    }
    let results = Results {
        query: query.clone(),
        counters: counters.clone(),
        row: Arc::new(row),
    };
    let before = query.clone();
    let before_counters = counters.clone();
    if query.reads_table() {
        // Each source row's group and arguments, kept by the row's key (ksqlDB's source
        // table store), so that a row that changes or goes leaves its old group: each change
        // travels to the groups as the old row to take out and the new one to put in.
        let rows = builder
            .batch_stream(
                &source_topic,
                move |run, out: &mut BatchOutput<Bytes, Option<Bytes>>| {
                    let Some(stage) = before.aggregate() else {
                        return Ok(());
                    };
                    push_table_rows(
                        &before,
                        run,
                        &before_counters,
                        out,
                        |columns| stage.encode_inputs(columns),
                        |(group, args)| group_and_args(&group, &args),
                    );
                    Ok(())
                },
            )
            .to_table_with_tombstones(
                BytesSerde,
                Materialized::with(BytesSerde).named("KsqlTopic-Reduce"),
            );
        let undo_fold = fold.clone();
        return Ok(results.of(
            rows.group_by(
                |_, row: &Bytes| split_group_and_args(row),
                Grouped::with(BytesSerde, BytesSerde).named("Aggregate-GroupBy"),
            )
            .aggregate(
                init,
                move |_, args, states| fold(&args, states, false),
                move |_, args, states| undo_fold(&args, states, true),
                materialized,
            )
            .changes(),
            |key: &Bytes| (key.clone(), None),
        ));
    }
    let mut stream = builder.batch_stream(
        &source_topic,
        move |run, out: &mut BatchOutput<Bytes, Bytes>| {
            let Some(stage) = before.aggregate() else {
                return Ok(());
            };
            push_rows(
                &before,
                run,
                &before_counters,
                out,
                |columns| stage.encode_inputs(columns),
                |x, timestamp, _| keyed_record(x, timestamp),
            );
            Ok(())
        },
    );
    if repartition {
        stream = stream
            .repartition(Repartitioned::with(BytesSerde, BytesSerde).named("Aggregate-GroupBy"));
    }
    let grouped = stream.group_by_key(Grouped::with(BytesSerde, BytesSerde));
    let emit = match windowing {
        Some(w) if w.emit_final => EmitStrategy::on_window_close(),
        _ => EmitStrategy::on_window_update(),
    };
    Ok(match windowing.map(|w| (w.spec, w.grace_ms)) {
        None => results.of(
            grouped
                .aggregate(
                    init,
                    move |_, args, states| fold(&args, states, false),
                    materialized,
                )
                .changes(),
            |key: &Bytes| (key.clone(), None),
        ),
        Some((
            WindowSpec::Time {
                size_ms,
                advance_ms,
            },
            grace_ms,
        )) => {
            let windows = TimeWindows::of_size_and_grace(
                Duration::from_millis(size_ms),
                Duration::from_millis(grace_ms),
            )
            .advance_by(Duration::from_millis(advance_ms));
            results.of(
                grouped
                    .windowed_by(windows)
                    .emit_strategy(emit)
                    .aggregate(
                        init,
                        move |_, args, states| fold(args, states, false),
                        materialized,
                    )
                    .changes(),
                |key: &Windowed<Bytes>| {
                    let window = RowWindow {
                        window: key.window,
                        session: false,
                    };
                    (key.key.clone(), Some(window))
                },
            )
        }
        Some((WindowSpec::Session { gap_ms }, grace_ms)) => {
            let windows = SessionWindows::of_inactivity_gap_and_grace(
                Duration::from_millis(gap_ms),
                Duration::from_millis(grace_ms),
            );
            let merge_query = results.query.clone();
            results.of(
                grouped
                    .windowed_by_session(windows)
                    .emit_strategy(emit)
                    .aggregate(
                        init,
                        move |_, args, states| fold(&args, states, false),
                        move |_, a, b| match merge_query.aggregate() {
                            Some(stage) => stage.merge(a, b),
                            None => a,
                        },
                        materialized,
                    )
                    .changes(),
                |key: &Windowed<Bytes>| {
                    let window = RowWindow {
                        window: key.window,
                        session: true,
                    };
                    (key.key.clone(), Some(window))
                },
            )
        }
    })
}

/// A join query's result rows: the right side's rows kept as a table by the table's keys,
/// the left side's rows keyed by the join expression (repartitioned if need be) and joined
/// with it — or, the left side a table too, both tables joined — each joined row made into
/// its result row by `row(columns, kept)` (`None`: no output). A table-table join's row
/// that goes, or stops passing `WHERE`, comes with `kept` false (a delete); one that never
/// passed does not come. The join is the query's at `depth` (see
/// [`CompiledQuery::join_at`]); an n-way join's left side is the join before's rows, made
/// by this function one level down. The rows come keyed as the joined records were (by
/// the join key), so that a join after this one on the same key needs no repartition.
fn joined<K: Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static>(
    builder: &StreamsBuilder,
    query: Arc<CompiledQuery>,
    depth: usize,
    counters: Arc<QueryCounters>,
    row: JoinedRows<K, V>,
) -> Result<KStream<Bytes, (K, V)>> {
    // One joined row's result.
    let one_row = {
        let row = row.clone();
        move |columns: Vec<ArrayRef>, kept: bool| -> Result<Option<(K, V)>> {
            Ok(row(columns, kept)?
                .into_iter()
                .next()
                .transpose()?
                .flatten())
        }
    };
    let (stage, _) = query
        .join_at(depth)
        .ok_or_else(|| KsqlError::statement("the query does not join"))?;
    let (right, kind) = (stage.right.clone(), stage.kind);
    let left = stage.left_source().cloned();
    let names = JoinNames::at(depth);
    // A side that is a table: its rows' envelopes kept by the table's key bytes.
    let side_table = |side: usize, topic: &str, store: &str| {
        let (query, counters) = (query.clone(), counters.clone());
        builder
            .batch_stream(
                topic,
                move |run, out: &mut BatchOutput<Bytes, Option<Bytes>>| {
                    let Some((stage, side_query)) = query
                        .join_at(depth)
                        .and_then(|(stage, _)| Some((stage, stage.side_source(side)?)))
                    else {
                        return Ok(());
                    };
                    push_table_rows(
                        side_query,
                        run,
                        &counters,
                        out,
                        |columns| stage.encode_side(side, columns),
                        |envelope| envelope,
                    );
                    Ok(())
                },
            )
            .to_table_with_tombstones(BytesSerde, Materialized::with(BytesSerde).named(store))
    };
    // An n-way join's left side: the join before's rows, each with this join's left key
    // and its envelope (none: a delete of a table's row).
    let inner_rows = || -> Result<KStream<Bytes, (Bytes, Option<Bytes>)>> {
        let keyed = query.clone();
        joined(
            builder,
            query.clone(),
            depth + 1,
            counters.clone(),
            Arc::new(move |columns, kept| -> MadeRows<Bytes, Option<Bytes>> {
                let Some((stage, _)) = keyed.join_at(depth) else {
                    return Ok(Vec::new());
                };
                let keys = stage.join_keys(0, &columns)?;
                let values: Vec<Result<Option<Bytes>>> = if kept {
                    stage
                        .encode_side(0, &columns)?
                        .into_iter()
                        .map(|v| v.map(Some))
                        .collect()
                } else {
                    keys.iter().map(|_| Ok(None)).collect()
                };
                Ok(keys
                    .into_iter()
                    .zip(values)
                    .map(|(key, value)| Ok(Some((key?, value?))))
                    .collect())
            }),
        )
    };
    // As a table, keyed as this join's left table is (the stage checked).
    let inner_table = || -> Result<KTable<Bytes, Bytes>> {
        Ok(inner_rows()?
            .map_values(|(_, value)| value)
            .to_table_with_tombstones(
                BytesSerde,
                Materialized::with(BytesSerde).named(&names.left_store),
            ))
    };
    // As a stream, re-keyed through a repartition topic unless keyed by this join's key
    // already (the stage checked).
    let inner_keyed = || -> Result<KStream<Bytes, Bytes>> {
        Ok(inner_rows()?.flat_map(|_, (key, value)| value.map(|value| (key, value))))
    };
    let inner_stream = || -> Result<KStream<Bytes, Bytes>> {
        Ok(if stage.repartitions(0) {
            inner_keyed()?
                .repartition(Repartitioned::with(BytesSerde, BytesSerde).named(&names.left_topic))
        } else {
            inner_rows()?.flat_map_values(|(_, value)| value)
        })
    };
    let table = if right.reads_table() {
        Some(side_table(1, right.source_topic(), &names.right_store))
    } else {
        None
    };
    if let (true, Some(table)) = (stage.left_reads_table(), &table) {
        let left_table = match &left {
            Some(left) => side_table(0, left.source_topic(), &names.left_store),
            None => inner_table()?,
        };
        use crate::parser::ast::JoinKind;
        let changes = if stage.foreign_key() {
            // Each left row joined with the right row its key names (Streams' foreign-key
            // join, through its subscription topics), kept as a pair of envelopes.
            let foreign_key = super::join::JoinStage::foreign_key_of;
            let stored = Materialized::with(BytesSerde).named(&names.foreign_key_store);
            let pairs = match kind {
                JoinKind::Inner => left_table.join_foreign_key(
                    table,
                    foreign_key,
                    |l: &Bytes, r: &Bytes| super::join::encode_pair(l, Some(r)),
                    stored,
                ),
                _ => left_table.left_join_foreign_key(
                    table,
                    foreign_key,
                    |l: &Bytes, r: Option<&Bytes>| super::join::encode_pair(l, r.map(|r| &r[..])),
                    stored,
                ),
            };
            let pair = |bytes: Option<Bytes>| {
                bytes
                    .and_then(|b| super::join::decode_pair(&b))
                    .map(|(l, r)| (Some(l), r))
            };
            pairs
                .changes()
                .map_values(move |change: Change<Bytes>| Change {
                    new: pair(change.new),
                    old: pair(change.old),
                })
        } else {
            table_join(&left_table, table, kind).changes()
        };
        // Each change of a joined row: its new row if it passes `WHERE`, else a delete of
        // the old one if that passed.
        return Ok(changes.flat_map_values(move |change: Change<JoinedPair>| {
            let result = |joined: &Option<JoinedPair>| match joined {
                Some((left, right)) => {
                    query.joined_result(depth, left.as_deref(), right.as_deref())
                }
                None => Ok(None),
            };
            let made = result(&change.new).and_then(|new| match new {
                Some(columns) => one_row(columns, true),
                None => match result(&change.old)? {
                    Some(columns) => one_row(columns, false),
                    None => Ok(None),
                },
            });
            made_or_skipped(made, &counters)
        }));
    }
    // A side that is a stream: its rows keyed by the join expression, repartitioned by it
    // unless keyed so already.
    let side_keyed = |side: usize, topic: &str| {
        let (query, counters) = (query.clone(), counters.clone());
        builder.batch_stream(topic, move |run, out: &mut BatchOutput<Bytes, Bytes>| {
            let Some((stage, side_query)) = query
                .join_at(depth)
                .and_then(|(stage, _)| Some((stage, stage.side_source(side)?)))
            else {
                return Ok(());
            };
            push_rows(
                side_query,
                run,
                &counters,
                out,
                |columns| stage.encode_keyed(side, columns),
                |x, timestamp, _| keyed_record(x, timestamp),
            );
            Ok(())
        })
    };
    let side_stream = |side: usize, topic: &str| {
        let stream = side_keyed(side, topic);
        if stage.repartitions(side) {
            let name = if side == 0 {
                &names.left_topic
            } else {
                &names.right_topic
            };
            stream.repartition(Repartitioned::with(BytesSerde, BytesSerde).named(name))
        } else {
            stream
        }
    };
    if let (Some(table), false, Some(left)) = (&table, stage.repartitions(0), &left) {
        // A stream keyed as the table is: each run of its records joined at once, its rows
        // looked up in the table and the plan above the join run on the run's joined rows.
        return Ok(builder.batch_stream_with_table(
            left.source_topic(),
            table,
            move |run, lookup, out: &mut BatchOutput<Bytes, (K, V)>| {
                let Some(left) = query.join_at(depth).and_then(|(s, _)| s.left_source()) else {
                    return Ok(());
                };
                let Some((stage, _)) = query.join_at(depth) else {
                    return Ok(());
                };
                for evaluated in evaluate_robustly(left, run, &counters, &mut Vec::new()) {
                    let keys = match stage.join_keys(0, &evaluated.columns) {
                        Ok(keys) => keys,
                        Err(err) => {
                            for &at in &evaluated.rows {
                                skip(&run[at as usize], &err, &counters);
                            }
                            continue;
                        }
                    };
                    // The rows whose join key could be written, and their table rows.
                    let mut usable = Vec::with_capacity(keys.len());
                    let mut usable_keys = Vec::with_capacity(keys.len());
                    let mut rights = Vec::with_capacity(keys.len());
                    for (i, key) in keys.into_iter().enumerate() {
                        match key {
                            Ok(key) => {
                                usable.push(i as u32);
                                rights.push(lookup(&key)?);
                                usable_keys.push(key);
                            }
                            Err(err) => skip(&run[evaluated.rows[i] as usize], &err, &counters),
                        }
                    }
                    let indices = arrow::array::UInt32Array::from(usable.clone());
                    let taken = evaluated
                        .columns
                        .iter()
                        .map(|c| arrow::compute::take(c, &indices, None))
                        .collect::<std::result::Result<Vec<_>, _>>();
                    let made = taken
                        .map_err(|e| KsqlError::Serde(e.to_string()))
                        .and_then(|columns| query.joined_batch_result(depth, &columns, &rights));
                    let (columns, rows) = match made {
                        Ok(made) => made,
                        Err(err) => {
                            for &i in &usable {
                                let at = evaluated.rows[i as usize];
                                skip(&run[at as usize], &err, &counters);
                            }
                            continue;
                        }
                    };
                    let made = match row(columns, true) {
                        Ok(made) => made,
                        Err(err) => {
                            for &joined in &rows {
                                let at = evaluated.rows[usable[joined as usize] as usize];
                                skip(&run[at as usize], &err, &counters);
                            }
                            continue;
                        }
                    };
                    for (&joined, made) in rows.iter().zip(made) {
                        let i = usable[joined as usize] as usize;
                        if let Some(kv) = made_or_skipped(made, &counters) {
                            let key = usable_keys[joined as usize].clone();
                            out.push((
                                evaluated.rows[i] as usize,
                                keyed_record((key, kv), evaluated.timestamps[i]),
                            ));
                        }
                    }
                }
                // Each evaluation's rows are in order; several evaluations (row by row) too.
                out.sort_by_key(|(at, _)| *at);
                Ok(())
            },
        ));
    }
    if let (Some(table), true, None) = (&table, stage.repartitions(0), &stage.within) {
        // A stream re-keyed to meet its table: read back from the repartition topic a run at
        // a time, its envelopes decoded, looked up and joined as one batch.
        let keyed = match &left {
            Some(left) => side_keyed(0, left.source_topic()),
            None => inner_keyed()?,
        };
        let repartitioned = Repartitioned::with(BytesSerde, BytesSerde).named(&names.left_topic);
        return Ok(keyed.repartition_in_runs(
            repartitioned,
            table,
            move |run, lookup, out: &mut BatchOutput<Bytes, (K, V)>| {
                join_run(&query, depth, run, lookup, &counters, &row, out)
            },
        ));
    }
    let stream = match &left {
        Some(left) => side_stream(0, left.source_topic()),
        None => inner_stream()?,
    };
    let rows = match (&stage.within, kind) {
        (Some(within), kind) => {
            let windows = match within.grace {
                Some(grace) => JoinWindows::of_time_difference_and_grace(within.before, grace),
                // ksqlDB's `WITHIN` without `GRACE PERIOD`: Kafka's old eager windows.
                None => JoinWindows::of(within.before),
            }
            .before(within.before)
            .after(within.after);
            let other = side_stream(1, right.source_topic());
            let joined = StreamJoined::with(BytesSerde, BytesSerde, BytesSerde)
                .with_store_name(&names.stream_store);
            use crate::parser::ast::JoinKind;
            match kind {
                JoinKind::Inner => stream.join_stream(
                    &other,
                    |_, l: &Bytes, r: &Bytes| (Some(l.clone()), Some(r.clone())),
                    windows,
                    joined,
                ),
                JoinKind::Left => stream.left_join_stream(
                    &other,
                    |_, l: &Bytes, r: Option<&Bytes>| (Some(l.clone()), r.cloned()),
                    windows,
                    joined,
                ),
                // The right stream's records, each with the left's within the window seen
                // from the right (the window's before and after swapped).
                JoinKind::Right => {
                    let windows = swapped(within, windows);
                    let joined = StreamJoined::with(BytesSerde, BytesSerde, BytesSerde)
                        .with_store_name(&names.stream_store);
                    other.left_join_stream(
                        &stream,
                        |_, r: &Bytes, l: Option<&Bytes>| (l.cloned(), Some(r.clone())),
                        windows,
                        joined,
                    )
                }
                JoinKind::Full => stream.outer_join_stream(
                    &other,
                    |_, l: Option<&Bytes>, r: Option<&Bytes>| (l.cloned(), r.cloned()),
                    windows,
                    joined,
                ),
            }
        }
        (None, kind) => {
            let table = table
                .as_ref()
                .ok_or_else(|| KsqlError::statement("a stream-stream join without WITHIN"))?;
            match kind {
                crate::parser::ast::JoinKind::Left => {
                    stream.left_join(table, |_, l: Bytes, r: Option<Bytes>| (Some(l), r))
                }
                _ => stream.join(table, |_, l: Bytes, r: Bytes| (Some(l), Some(r))),
            }
        }
    };
    Ok(rows.flat_map_values(move |(left, right): JoinedPair| {
        let made = query
            .joined_result(depth, left.as_deref(), right.as_deref())
            .and_then(|columns| match columns {
                Some(columns) => one_row(columns, true),
                None => Ok(None),
            });
        made_or_skipped(made, &counters)
    }))
}

/// A run of a repartitioned stream's rows (each keyed by its join key, its value its
/// envelope) joined with the table of its task as one batch: the rows made, each with its
/// record's key and timestamp. Rows that cannot be joined or made are skipped (and counted).
fn join_run<K: Clone, V: Clone>(
    query: &CompiledQuery,
    depth: usize,
    run: &[RawRecord],
    lookup: &dyn Fn(&Bytes) -> sluice_streams::Result<Option<Bytes>>,
    counters: &QueryCounters,
    row: &JoinedRows<K, V>,
    out: &mut BatchOutput<Bytes, (K, V)>,
) -> sluice_streams::Result<()> {
    let Some((stage, output)) = query.join_at(depth) else {
        return Ok(());
    };
    let mut at = Vec::with_capacity(run.len());
    let mut lefts = Vec::with_capacity(run.len());
    let mut rights = Vec::with_capacity(run.len());
    for (i, raw) in run.iter().enumerate() {
        if let (Some(key), Some(envelope)) = (&raw.key, &raw.value) {
            rights.push(lookup(key)?);
            lefts.push(envelope.clone());
            at.push(i);
        }
    }
    let made = stage
        .joined_envelopes(&lefts, &rights, output)
        .and_then(|(columns, rows)| Ok((row(columns, true)?, rows)));
    let (made, rows) = match made {
        Ok(made) => made,
        Err(err) => {
            for &i in &at {
                skip(&run[i], &err, counters);
            }
            return Ok(());
        }
    };
    for (&joined, made) in rows.iter().zip(made) {
        let raw = &run[at[joined as usize]];
        if let (Some(kv), Some(key)) = (made_or_skipped(made, counters), &raw.key) {
            out.push((
                at[joined as usize],
                keyed_record((key.clone(), kv), raw.timestamp),
            ));
        }
    }
    Ok(())
}

/// Makes a join's result rows of its joined rows' columns (and whether they are kept: a
/// delete if not); one type whatever makes them, for the n-way join's recursion.
type JoinedRows<K, V> = Arc<dyn Fn(Vec<ArrayRef>, bool) -> MadeRows<K, V> + Send + Sync>;

/// The rows made of a batch of joined rows: each a record, none, or why it could not be.
type MadeRows<K, V> = Result<Vec<Result<Option<(K, V)>>>>;

/// A joined row: each side's envelope, if it has one.
type JoinedPair = (Option<Bytes>, Option<Bytes>);

/// Two tables joined on their primary keys, each joined row a pair of envelopes.
fn table_join(
    left: &KTable<Bytes, Bytes>,
    right: &KTable<Bytes, Bytes>,
    kind: crate::parser::ast::JoinKind,
) -> KTable<Bytes, JoinedPair> {
    use crate::parser::ast::JoinKind;
    match kind {
        JoinKind::Inner => left.join(right, |l: &Bytes, r: &Bytes| {
            (Some(l.clone()), Some(r.clone()))
        }),
        JoinKind::Left => left.left_join(right, |l: &Bytes, r: Option<&Bytes>| {
            (Some(l.clone()), r.cloned())
        }),
        // The right table's rows, each with the left's of its key if there is one.
        JoinKind::Right => right.left_join(left, |r: &Bytes, l: Option<&Bytes>| {
            (l.cloned(), Some(r.clone()))
        }),
        JoinKind::Full => left.outer_join(right, |l: Option<&Bytes>, r: Option<&Bytes>| {
            (l.cloned(), r.cloned())
        }),
    }
}

/// `windows` as the right stream sees them: its before the left's after.
fn swapped(within: &crate::parser::ast::Within, windows: JoinWindows) -> JoinWindows {
    windows.before(within.after).after(within.before)
}

/// Makes a grouped query's result rows of its table's changes.
struct Results<K, V> {
    query: Arc<CompiledQuery>,
    counters: Arc<QueryCounters>,
    #[allow(clippy::type_complexity)]
    row:
        Arc<dyn Fn(Vec<ArrayRef>, bool, Option<RowWindow>) -> Result<Option<(K, V)>> + Send + Sync>,
}

impl<K: Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static> Results<K, V> {
    /// Each change of a group (`split` tells its key and window) as its row: a row that
    /// stops passing `HAVING`, or a session merged into another, is deleted; one that
    /// never passed is not written.
    fn of<KT: Clone + Send + Sync + 'static>(
        self,
        changes: KStream<KT, Change<Vec<State>>>,
        split: impl Fn(&KT) -> (Bytes, Option<RowWindow>) + Send + Sync + 'static,
    ) -> KStream<K, V> {
        let Results {
            query,
            counters,
            row,
        } = self;
        changes.flat_map(move |key: KT, change: Change<Vec<State>>| {
            let (group, window) = split(&key);
            let bounds = window.map(|w| (w.window.start, w.window.end));
            let made = (|| {
                let was_kept = |old: &Option<Vec<State>>| -> Result<Option<Vec<ArrayRef>>> {
                    match old {
                        Some(old) => {
                            let (columns, kept) = query.grouped_result(&group, old, bounds)?;
                            Ok(kept.then_some(columns))
                        }
                        None => Ok(None),
                    }
                };
                match &change.new {
                    Some(new) => {
                        let (columns, kept) = query.grouped_result(&group, new, bounds)?;
                        if kept || was_kept(&change.old)?.is_some() {
                            row(columns, kept, window)
                        } else {
                            Ok(None)
                        }
                    }
                    None => match was_kept(&change.old)? {
                        Some(columns) => row(columns, false, window),
                        None => Ok(None),
                    },
                }
            })();
            made_or_skipped(made, &counters)
        })
    }
}

/// A table row's group and arguments as one value: the group's length (4 bytes,
/// big-endian), the group, the arguments.
fn group_and_args(group: &[u8], args: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(4 + group.len() + args.len());
    out.extend((group.len() as u32).to_be_bytes());
    out.extend_from_slice(group);
    out.extend_from_slice(args);
    Bytes::from(out)
}

/// The group and arguments of [`group_and_args`]'s value (a value too short for its
/// length: an empty group and its bytes as the arguments, which the fold reports).
fn split_group_and_args(row: &Bytes) -> (Bytes, Bytes) {
    let len = row
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    match len {
        Some(len) if row.len() >= 4 + len => (row.slice(4..4 + len), row.slice(4 + len..)),
        _ => (Bytes::new(), row.clone()),
    }
}

/// A result row made, or none if it could not be (counted and logged as skipped).
fn made_or_skipped<T>(made: Result<Option<T>>, counters: &QueryCounters) -> Option<T> {
    match made {
        Ok(made) => made,
        Err(err) => {
            skip_row(&err, counters);
            None
        }
    }
}

/// A row's key and value as a record at `timestamp`.
fn keyed_record<K, V>((key, value): (K, V), timestamp: i64) -> Record<K, V> {
    Record {
        key,
        value,
        timestamp,
        headers: Vec::new(),
    }
}

/// Evaluates `query` on `run` and pushes each row written by `encode_all` as the record
/// `record` makes of it, its timestamp and its input record, with the index of its input
/// record, in order. Rows that cannot be written are skipped (and counted).
///
/// Returns the records of a table (in order) that make no row but update their key: deletes
/// (tombstones), rows that do not pass `WHERE`, and rows that cannot be written; the caller
/// deletes their keys downstream. Records skipped as unreadable update nothing.
fn push_rows<K, V, X>(
    query: &CompiledQuery,
    run: &[RawRecord],
    counters: &QueryCounters,
    out: &mut BatchOutput<K, V>,
    encode_all: impl Fn(&[arrow::array::ArrayRef]) -> Result<Vec<Result<X>>>,
    record: impl Fn(X, i64, &RawRecord) -> Record<K, V>,
) -> Vec<u32> {
    let table = query.reads_table();
    // Whether each record made a row or was skipped (for a table: whether it is not a delete).
    let mut accounted = vec![false; if table { run.len() } else { 0 }];
    let mut failed = Vec::new();
    let mut unwritable = Vec::new();
    for evaluated in evaluate_robustly(query, run, counters, &mut failed) {
        if table {
            for &at in evaluated
                .rows
                .iter()
                .chain(evaluated.skipped.iter().map(|(at, _)| at))
            {
                accounted[at as usize] = true;
            }
        }
        let encoded = match encode_all(&evaluated.columns) {
            Ok(encoded) => encoded,
            Err(err) => {
                for &row in &evaluated.rows {
                    skip(&run[row as usize], &err, counters);
                    unwritable.push(row);
                }
                continue;
            }
        };
        for ((at, &row), encoded) in evaluated.rows.iter().enumerate().zip(encoded) {
            let raw = &run[row as usize];
            match encoded {
                Ok(x) => out.push((row as usize, record(x, evaluated.timestamps[at], raw))),
                Err(err) => {
                    skip(raw, &err, counters);
                    unwritable.push(row);
                }
            }
        }
    }
    // Each evaluation's rows are in order; several evaluations (row by row) too.
    out.sort_by_key(|(at, _)| *at);
    if !table {
        return Vec::new();
    }
    for at in failed {
        accounted[at as usize] = true;
    }
    for at in unwritable {
        accounted[at as usize] = false;
    }
    (0..run.len() as u32)
        .filter(|&at| !accounted[at as usize])
        .collect()
}

/// Evaluates a query of a table on `run` and pushes each record's row keyed by the record's
/// own key, its value `value(encoded)` — or none, a delete, for a tombstone or a row that
/// does not pass `WHERE` or cannot be written — in order: a table of the rows by the
/// table's keys (`to_table_with_tombstones` reads it).
fn push_table_rows<X>(
    query: &CompiledQuery,
    run: &[RawRecord],
    counters: &QueryCounters,
    out: &mut BatchOutput<Bytes, Option<Bytes>>,
    encode_all: impl Fn(&[arrow::array::ArrayRef]) -> Result<Vec<Result<X>>>,
    value: impl Fn(X) -> Bytes,
) {
    let deletes = push_rows(
        query,
        run,
        counters,
        out,
        encode_all,
        |x, timestamp, raw| {
            let key = raw.key.clone().unwrap_or_default();
            keyed_record((key, Some(value(x))), timestamp)
        },
    );
    for at in deletes {
        let raw = &run[at as usize];
        if let Some(key) = &raw.key {
            out.push((
                at as usize,
                keyed_record((key.clone(), None), raw.timestamp),
            ));
        }
    }
    out.sort_by_key(|(at, _)| *at);
}

/// Pushes a delete of each record of `run` at `deletes` (a table's deletes and rows that
/// no longer pass `WHERE`): its key as the result's, written by `encoders`, and no value.
fn push_deletes(
    query: &CompiledQuery,
    run: &[RawRecord],
    deletes: &[u32],
    encoders: &SinkEncoders,
    counters: &QueryCounters,
    out: &mut BatchOutput<Option<Bytes>, Option<Bytes>>,
) {
    if deletes.is_empty() {
        return;
    }
    let keys = query
        .result_keys(run, deletes)
        .and_then(|keys| encoders.encode_keys(&keys));
    match keys {
        Ok(keys) => {
            for (&at, key) in deletes.iter().zip(keys) {
                let raw = &run[at as usize];
                match key {
                    Ok(key) => out.push((at as usize, keyed_record((key, None), raw.timestamp))),
                    Err(err) => skip(raw, &err, counters),
                }
            }
        }
        Err(err) => {
            for &at in deletes {
                skip(&run[at as usize], &err, counters);
            }
        }
    }
    out.sort_by_key(|(at, _)| *at);
}

/// A persistent query's topology: the query's rows written to `sink_topic` in the sink's
/// formats, each with its input record's timestamp. A table's rows not made by an
/// aggregation (whose store holds them already) are also kept by key in [`TABLE_STORE`]
/// (`materialize`), for pull queries.
pub fn persistent(
    query: Arc<CompiledQuery>,
    encoders: SinkEncoders,
    (sink_topic, materialize): (&str, bool),
    counters: Arc<QueryCounters>,
) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let source_topic = query.source_topic().to_string();
    let written = counters.clone();
    let materialize = materialize && query.aggregate().is_none();
    // The rows counted and written to the sink; the topology built.
    let write = |builder: StreamsBuilder, rows: KStream<Option<Bytes>, Option<Bytes>>| {
        if materialize {
            rows.filter(|key, _| key.is_some())
                .map(|key, value| (key.unwrap_or_default(), value))
                .map_values_with_timestamp(|timestamp, value: Option<Bytes>| {
                    value.map(|value| stamped(timestamp, &value))
                })
                .to_table_with_tombstones(
                    BytesSerde,
                    Materialized::with(BytesSerde).named(TABLE_STORE),
                );
        }
        rows.peek(move |_, _| {
            written.rows_out.fetch_add(1, Ordering::Relaxed);
        })
        .to(
            sink_topic,
            Produced::with(OptionSerde(BytesSerde), OptionSerde(BytesSerde)),
        );
        builder
            .build()
            .map_err(|e| KsqlError::statement(e.to_string()))
    };
    if query.join().is_some() {
        let encoders = Arc::new(encoders);
        let rows = joined(
            &builder,
            query,
            0,
            counters,
            Arc::new(move |columns, kept| {
                Ok(encoders
                    .encode_all(&columns)?
                    .into_iter()
                    .map(|encoded| {
                        let (key, value) = encoded?;
                        Ok(Some((key, if kept { value } else { None })))
                    })
                    .collect())
            }),
        )?
        .map(|_, row| row);
        return write(builder, rows);
    }
    if query.aggregate().is_some() {
        // A table's rows: each group's latest, a tombstone when it fails `HAVING`.
        let rows = grouped(&builder, query, counters, move |columns, kept, window| {
            let encoded = encoders.encode_all(&columns)?.into_iter().next();
            Ok(match encoded {
                Some(Ok((key, value))) => {
                    // A windowed row's key ends with its window.
                    let key = match window {
                        Some(window) => {
                            let mut bytes = key.map(|k| k.to_vec()).unwrap_or_default();
                            bytes.extend(window.key_suffix());
                            Some(Bytes::from(bytes))
                        }
                        None => key,
                    };
                    Some((key, if kept { value } else { None }))
                }
                Some(Err(err)) => return Err(err),
                None => None,
            })
        })?;
        return write(builder, rows);
    }
    let rows = builder.batch_stream(
        &source_topic,
        move |run, out: &mut BatchOutput<Option<Bytes>, Option<Bytes>>| {
            let deletes = push_rows(
                &query,
                run,
                &counters,
                out,
                |columns| encoders.encode_all(columns),
                |x, timestamp, _| keyed_record(x, timestamp),
            );
            // A table's deleted rows, and those that stop (or do not) pass `WHERE`, are
            // deletes of their keys, as Kafka Streams' table filter forwards them.
            push_deletes(&query, run, &deletes, &encoders, &counters, out);
            Ok(())
        },
    );
    write(builder, rows)
}

/// The topology of a `CREATE SOURCE TABLE`'s query: the topic's records kept by key in
/// [`TABLE_STORE`] (a tombstone deletes its key; a record without a key is no row), as
/// they are, for pull queries to decode. Nothing is written but the store's changelog.
pub fn source_table(topic: &str) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .batch_stream(
            topic,
            move |run, out: &mut BatchOutput<Bytes, Option<Bytes>>| {
                for (at, raw) in run.iter().enumerate() {
                    if let Some(key) = &raw.key {
                        let value = raw.value.as_ref().map(|v| stamped(raw.timestamp, v));
                        out.push((at, keyed_record((key.clone(), value), raw.timestamp)));
                    }
                }
                Ok(())
            },
        )
        .to_table_with_tombstones(
            BytesSerde,
            Materialized::with(BytesSerde).named(TABLE_STORE),
        );
    builder
        .build()
        .map_err(|e| KsqlError::statement(e.to_string()))
}

/// A push query's topology: each row, as a JSON array, handed to `rows`. A closed channel
/// drops rows (the query is being stopped); a full one (the client reads more slowly than
/// rows come) sets `overflow`, which ends the query.
pub fn push(
    query: Arc<CompiledQuery>,
    rows: tokio::sync::mpsc::Sender<Bytes>,
    overflow: Arc<std::sync::atomic::AtomicBool>,
    counters: Arc<QueryCounters>,
) -> Result<Topology> {
    let json = JsonRows::new(&query.output_columns().cloned().collect::<Vec<_>>())?;
    let builder = StreamsBuilder::new();
    let source_topic = query.source_topic().to_string();
    let sent = counters.clone();
    let send = move |row: Bytes| {
        sent.rows_out.fetch_add(1, Ordering::Relaxed);
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = rows.try_send(row) {
            overflow.store(true, Ordering::Release);
        }
    };
    // A one-row result as its JSON array.
    let json = Arc::new(json);
    let row_json = json.clone();
    let row_of = move |columns: Vec<ArrayRef>| -> Result<Option<((), Bytes)>> {
        Ok(match row_json.encode_all(&columns)?.into_iter().next() {
            Some(row) => Some(((), row?)),
            None => None,
        })
    };
    if query.join().is_some() {
        // Rows that pass; a push query has no deletes.
        let rows = joined(
            &builder,
            query,
            0,
            counters,
            Arc::new(move |columns, kept| {
                Ok(json
                    .encode_all(&columns)?
                    .into_iter()
                    .map(|row| Ok(kept.then_some(((), row?))))
                    .collect())
            }),
        )?;
        rows.foreach(move |_, ((), row)| send(row));
        return builder
            .build()
            .map_err(|e| KsqlError::statement(e.to_string()));
    }
    if query.aggregate().is_some() {
        // Each update of a group that passes `HAVING`.
        grouped(&builder, query, counters, move |columns, kept, _| {
            if kept {
                row_of(columns)
            } else {
                Ok(None)
            }
        })?
        .foreach(move |(), row| send(row));
        return builder
            .build()
            .map_err(|e| KsqlError::statement(e.to_string()));
    }
    builder
        .batch_stream(
            &source_topic,
            move |run, out: &mut BatchOutput<(), Bytes>| {
                push_rows(
                    &query,
                    run,
                    &counters,
                    out,
                    |columns| json.encode_all(columns),
                    |value, timestamp, _| Record {
                        key: (),
                        value,
                        timestamp,
                        headers: Vec::new(),
                    },
                );
                Ok(())
            },
        )
        .foreach(move |(), row| send(row));
    builder
        .build()
        .map_err(|e| KsqlError::statement(e.to_string()))
}

/// The names of a join's stores and internal topics: the last join's as they always were,
/// an n-way join's earlier ones numbered by depth.
struct JoinNames {
    left_store: String,
    right_store: String,
    foreign_key_store: String,
    stream_store: String,
    left_topic: String,
    right_topic: String,
}

impl JoinNames {
    fn at(depth: usize) -> JoinNames {
        let name = |base: &str| match depth {
            0 => base.to_string(),
            depth => format!("{base}-{depth}"),
        };
        JoinNames {
            left_store: name("KafkaTopic_Left-Reduce"),
            right_store: name("KafkaTopic_Right-Reduce"),
            foreign_key_store: name("FkJoin-Materialize"),
            stream_store: name("Join"),
            left_topic: name("Join-left"),
            right_topic: name("Join-right"),
        }
    }
}
