//! Pull queries (`SELECT ... FROM table [WHERE ...] [LIMIT n]` without `EMIT`): the current
//! rows of a table, read from the state stores of the persistent query that materialises
//! it, as ksqlDB answers them.
//!
//! A table made by `CREATE TABLE ... AS SELECT ... GROUP BY` is materialised by its query's
//! aggregation store (`Aggregate-Aggregate-Materialize`): each group's states made into the
//! table's row by the query's own `HAVING` and projection, its `ROWTIME` the latest record
//! folded in and, windowed, its window. The pull query then runs over those rows like any
//! query of the table (DataFusion's plan, evaluated on one Arrow batch). A `WHERE` that
//! pins the key (`ID = x`, `ID IN (x, y)`) reads only those groups (each window of them,
//! windowed); any other is a scan of the store (ksqlDB's
//! `ksql.query.pull.table.scan.enabled`, on by default).
//!
//! The stores are this server's: with several servers sharing a query, each answers from
//! the partitions it owns (ksqlDB routes to the owner; Sluice does not yet).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int32Array, Int64Array};
use arrow::datatypes::DataType;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use bytes::Bytes;
use datafusion_common::ScalarValue;
use serde_json::{Map, Value as Json};
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::Client;
use sluice_log::model::TopicPartition;
use sluice_streams::serdes::BytesSerde;
use sluice_streams::{KafkaStreams, RawRecord};
use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};

use crate::aggregate::State;
use crate::error::{KsqlError, Result};
use crate::exec::aggregate::WindowSpec;
use crate::exec::topology::{unstamped, StatesSerde, AGGREGATE_STORE, TABLE_STORE};
use crate::exec::{CompiledQuery, JsonRows};
use crate::metastore::{name_of, DataSource, MetaStore};
use crate::parser::ast::{Query, SourceKind};
use crate::plan::catalog::{ROWOFFSET, ROWPARTITION, ROWTIME, WINDOWEND, WINDOWSTART};
use crate::plan::{plan_query, OutputColumn};
use crate::queries::QueryManager;

/// A pull query's answer: its columns and rows (JSON arrays), all at once.
pub struct PullResult {
    /// Its id (`query_<n>`, as ksqlDB numbers pull queries).
    pub id: String,
    /// Its columns.
    pub columns: Vec<OutputColumn>,
    /// Each row, as a JSON array.
    pub rows: Vec<Bytes>,
    /// What `/query` ends with (ksqlDB's `finalMessage`; a stream's scan has one).
    pub final_message: Option<&'static str>,
}

/// What the materialising query's state holds of the table.
enum Materialised {
    /// An aggregation's rows, with the names of their columns.
    Groups(Vec<GroupRow>, Vec<String>),
    /// The table's records, as the query wrote them.
    Records(Vec<RawRecord>),
}

/// One row of an aggregation's table: its columns in the materialising query's order, its
/// `ROWTIME` and its window (`WINDOWSTART`, `WINDOWEND`) if the table is windowed.
struct GroupRow {
    columns: Vec<ArrayRef>,
    rowtime: i64,
    window: Option<(i64, i64)>,
}

/// Runs pull query `query` (already known to have no `EMIT`) against `metastore`'s tables,
/// reading the stores of the queries `queries` runs, with the request's `properties`.
pub async fn run(
    query: &Query,
    metastore: &MetaStore,
    (client, queries): (&Arc<Client>, &QueryManager),
    properties: &Map<String, Json>,
) -> Result<PullResult> {
    refuse_clauses(query)?;
    let name = name_of(&query.from.name);
    let source = metastore
        .source(&name)
        .ok_or_else(|| KsqlError::statement(format!("{name} does not exist.")))?;
    refuse_pseudo_columns(query)?;
    if source.kind == SourceKind::Stream {
        return scan_stream(query, metastore, client).await;
    }
    let materialising = metastore
        .queries()
        .find(|q| q.sink == source.name)
        .map(|q| q.id.clone())
        .ok_or_else(|| not_queryable(&source.name))?;
    let mut query = query.clone();
    if source.properties.window.is_some() {
        window_bounds_as_times(&mut query);
    }
    let query = &query;
    let planned = plan_query(query, metastore)?;
    let pull = CompiledQuery::compile_pull(&planned, metastore)?;
    let keys = key_lookup(query, source)?;
    // A range of the key is read by a scan of the store too (the rows it reads are the
    // same), allowed when ksqlDB would read it as a range.
    let key_range =
        enabled(properties, "ksql.query.pull.range.scan.enabled") && bounds_key(query, source);
    if keys.is_none() && !key_range && !enabled(properties, "ksql.query.pull.table.scan.enabled") {
        return Err(missing_key(query));
    }
    let state = queries
        .read_state(&materialising, |streams, table_query| {
            if table_query.aggregate().is_none() {
                return Ok(Materialised::Records(table_records(
                    streams,
                    &pull,
                    keys.as_deref(),
                )?));
            }
            let names = table_query
                .output_columns()
                .map(|c| c.name.clone())
                .collect();
            Ok(Materialised::Groups(
                group_rows(streams, table_query, keys.as_deref())?,
                names,
            ))
        })
        .await?;
    let columns = match state {
        Materialised::Groups(rows, names) => {
            pull.evaluate_batch(input_batch(&pull, source, rows, &names)?)?
        }
        // The rows as the table's records: the pull query reads them as it would its topic.
        Materialised::Records(run) => pull.evaluate(&run)?.columns,
    };
    let encoder = JsonRows::new(&planned.columns)?;
    let mut rows: Vec<Bytes> = encoder
        .encode_all(&columns)?
        .into_iter()
        .collect::<Result<_>>()?;
    if let Some(limit) = query.limit {
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(PullResult {
        id: query_id(),
        columns: planned.columns,
        rows,
        final_message: None,
    })
}

/// A windowed table's `WINDOWSTART`/`WINDOWEND` compared with a string in the `WHERE`: the
/// string read as a date and time (`2020-02-23T23:45:12.000`, parts left out from the end,
/// an offset such as `-0100` or `Z` after it, UTC otherwise), as ksqlDB's pull queries take
/// it. A string that does not read so stays, for the planner's type error.
fn window_bounds_as_times(query: &mut Query) {
    let is_bound = |e: &Expr| {
        let name = match e {
            Expr::Identifier(ident) => name_of(ident),
            Expr::CompoundIdentifier(idents) => idents.last().map(name_of).unwrap_or_default(),
            _ => return false,
        };
        name == WINDOWSTART || name == WINDOWEND
    };
    let as_time = |e: &mut Expr| {
        if let Expr::Value(v) = e {
            if let Value::SingleQuotedString(text) = &v.value {
                if let Some(ms) = partial_timestamp(text) {
                    *e = Expr::Value(Value::Number(ms.to_string(), false).into());
                }
            }
        }
    };
    let _ = sqlparser::ast::visit_expressions_mut(&mut query.selection, |e| {
        match e {
            Expr::BinaryOp {
                left,
                op:
                    BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq,
                right,
            } => {
                if is_bound(left) {
                    as_time(right);
                } else if is_bound(right) {
                    as_time(left);
                }
            }
            Expr::Between {
                expr, low, high, ..
            } if is_bound(expr) => {
                as_time(low);
                as_time(high);
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Milliseconds since the epoch of `yyyy[-MM[-dd[THH[:mm[:ss[.SSS]]]]]]` with an optional
/// offset (`Z`, `+hh`, `-hhmm`, `+hh:mm`) after it; missing parts are their least (hour 24
/// is the next day's midnight, as Java's lenient parsing takes it).
fn partial_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, time),
        None => (text, ""),
    };
    // The offset: `Z`, or a sign after the time (or after the date's day).
    let (time, offset_secs) = if let Some(time) = time.strip_suffix('Z') {
        (time, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (time, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 2 && digits.len() != 4 {
            return None;
        }
        let hours: i64 = digits.get(..2)?.parse().ok()?;
        let minutes: i64 = if digits.len() == 4 {
            digits[2..].parse().ok()?
        } else {
            0
        };
        (time, sign * (hours * 3600 + minutes * 60))
    } else {
        (time, 0)
    };
    let mut date_parts = date.split('-');
    let year: i32 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next().map_or(Ok(1), str::parse).ok()?;
    let day: u32 = date_parts.next().map_or(Ok(1), str::parse).ok()?;
    if date_parts.next().is_some() || date.len() < 4 {
        return None;
    }
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, fraction),
        None => (time, ""),
    };
    let mut clock_parts = clock.split(':').filter(|p| !p.is_empty());
    let hour: i64 = clock_parts.next().map_or(Ok(0), str::parse).ok()?;
    let minute: i64 = clock_parts.next().map_or(Ok(0), str::parse).ok()?;
    let second: i64 = clock_parts.next().map_or(Ok(0), str::parse).ok()?;
    if clock_parts.next().is_some() || hour > 24 || minute > 59 || second > 59 {
        return None;
    }
    let millis: i64 = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
        digits.parse().ok()?
    };
    let day = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    let midnight = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    Some(midnight + ((hour * 60 + minute) * 60 + second - offset_secs) * 1000 + millis)
}

/// Whether the boolean property `name` (on unless set false) is on.
fn enabled(properties: &Map<String, Json>, name: &str) -> bool {
    match properties.get(name) {
        Some(Json::Bool(on)) => *on,
        Some(Json::String(on)) => !on.eq_ignore_ascii_case("false"),
        _ => true,
    }
}

/// ksqlDB's refusal of a scan when scans are off: the condition as it prints it
/// (identifiers resolved, upper-cased).
fn missing_key(query: &Query) -> KsqlError {
    let mut condition = query.selection.clone();
    let _ = sqlparser::ast::visit_expressions_mut(&mut condition, |e| {
        match e {
            Expr::Identifier(ident) => *ident = sqlparser::ast::Ident::new(name_of(ident)),
            Expr::CompoundIdentifier(idents) => {
                for ident in idents {
                    *ident = sqlparser::ast::Ident::new(name_of(ident));
                }
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    KsqlError::statement(format!(
        "WHERE clause missing key column for disjunct: {}",
        condition.map(|s| format!("({s})")).unwrap_or_default()
    ))
}

/// A new pull query's id (`query_<ms><n>`).
fn query_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("query_{millis}{n}")
}

/// How long a pull query of a stream may read its topic.
const STREAM_SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// A pull query of a stream: its topic read from the start of each partition up to the
/// end it had when the query came (ksqlDB's stream pull query), through the query's
/// `WHERE` and projection, up to `LIMIT` rows.
async fn scan_stream(
    query: &Query,
    metastore: &MetaStore,
    client: &Arc<Client>,
) -> Result<PullResult> {
    let planned = plan_query(query, metastore)?;
    let pull = CompiledQuery::compile(&planned, metastore)?;
    let topic = pull.source_topic().to_string();
    let kafka = |e: sluice_log::Error| KsqlError::statement(e.to_string());
    let partitions = client
        .topic(&topic, false)
        .await
        .map_err(kafka)?
        .leaders
        .len() as i32;
    let topic_name: Arc<str> = Arc::from(topic.as_str());
    let mut ends = std::collections::HashMap::new();
    let mut assigned = Vec::new();
    for partition in 0..partitions {
        let end = client
            .list_offset(&topic, partition, -1)
            .await
            .map_err(kafka)?;
        let start = client
            .list_offset(&topic, partition, -2)
            .await
            .map_err(kafka)?;
        if end > start {
            ends.insert(partition, end);
            let tp = TopicPartition {
                topic: topic_name.clone(),
                partition,
            };
            assigned.push((tp, StartOffset::Beginning));
        }
    }
    let limit = query
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let encoder = JsonRows::new(&planned.columns)?;
    let mut rows: Vec<Bytes> = Vec::new();
    if !assigned.is_empty() {
        let mut consumer = Consumer::assign(client.clone(), assigned, ConsumerConfig::default())
            .await
            .map_err(kafka)?;
        let deadline = tokio::time::Instant::now() + STREAM_SCAN_TIMEOUT;
        while !ends.is_empty() && rows.len() < limit {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(KsqlError::statement(format!(
                    "The pull query of {} did not read {topic} to its end within {} s",
                    planned.source.name,
                    STREAM_SCAN_TIMEOUT.as_secs()
                )));
            }
            let mut run = consumer
                .poll_timeout(ConsumerConfig::default().max_poll_records, left)
                .await
                .map_err(kafka)?;
            // Only what the partitions held when the query came.
            run.retain(|r| ends.get(&r.partition).is_some_and(|end| r.offset < *end));
            for (partition, end) in consumer
                .positions()
                .into_iter()
                .map(|(tp, at)| (tp.partition, at))
            {
                if ends.get(&partition).is_some_and(|e| end >= *e) {
                    ends.remove(&partition);
                }
            }
            if run.is_empty() {
                continue;
            }
            let evaluated = pull.evaluate(&run)?;
            for row in encoder.encode_all(&evaluated.columns)? {
                rows.push(row?);
            }
        }
    }
    rows.truncate(limit);
    // A stream's columns are not marked KEY in the header (ksqlDB's).
    let columns = planned
        .columns
        .into_iter()
        .map(|c| OutputColumn { key: false, ..c })
        .collect();
    Ok(PullResult {
        id: query_id(),
        columns,
        rows,
        final_message: Some("Query Completed"),
    })
}

/// ksqlDB's refusals of clauses a pull query cannot have, in its words.
fn refuse_clauses(query: &Query) -> Result<()> {
    let refused = if !query.joins.is_empty() {
        Some("Pull queries don't support JOIN clauses")
    } else if query.window.is_some() {
        Some("Pull queries don't support WINDOW clauses")
    } else if !query.group_by.is_empty() {
        Some("Pull queries don't support GROUP BY clauses")
    } else if !query.partition_by.is_empty() {
        Some("Pull queries don't support PARTITION BY clauses")
    } else if query.having.is_some() {
        Some("Pull queries don't support HAVING clauses")
    } else {
        None
    };
    match refused {
        Some(message) => Err(KsqlError::statement(format!(
            "{message}. See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query."
        ))),
        None => Ok(()),
    }
}

/// `ROWPARTITION` and `ROWOFFSET`, which pull queries do not have (ksqlDB 0.29's rule; a
/// table's state has no record to take them from).
fn refuse_pseudo_columns(query: &Query) -> Result<()> {
    let named = |exprs: &mut dyn Iterator<Item = &Expr>| -> Vec<&'static str> {
        let mut found = Vec::new();
        for expr in exprs {
            let _ = sqlparser::ast::visit_expressions(expr, |e| {
                let name = match e {
                    Expr::Identifier(ident) => Some(name_of(ident)),
                    Expr::CompoundIdentifier(idents) => idents.last().map(name_of),
                    _ => None,
                };
                for pseudo in [ROWPARTITION, ROWOFFSET] {
                    if name.as_deref() == Some(pseudo) && !found.contains(&pseudo) {
                        found.push(pseudo);
                    }
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
        found
    };
    let listed = |names: Vec<&str>| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let selected = named(&mut query.projection.iter().filter_map(|item| match item {
        sqlparser::ast::SelectItem::UnnamedExpr(e)
        | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }));
    if !selected.is_empty() {
        return Err(KsqlError::statement(format!(
            "Pull queries don't support the following columns in SELECT clauses: {}",
            listed(selected)
        )));
    }
    let filtered = named(&mut query.selection.iter());
    if !filtered.is_empty() {
        return Err(KsqlError::statement(format!(
            "Pull queries don't support the following columns in WHERE clauses: {}",
            listed(filtered)
        )));
    }
    Ok(())
}

/// ksqlDB's answer for a table no query materialises.
fn not_queryable(name: &str) -> KsqlError {
    KsqlError::statement(format!(
        "The `{name}` table isn't queryable. To derive a queryable table, you can do 'CREATE TABLE QUERYABLE_{name} AS SELECT * FROM {name}'. See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query."
    ))
}

/// Whether `e` is the key column `key` of the query's source (by its name, or qualified by
/// the source's name or alias).
fn names_key(e: &Expr, key: &str, query: &Query, source: &DataSource) -> bool {
    match e {
        Expr::Identifier(ident) => name_of(ident) == key,
        Expr::CompoundIdentifier(idents) if idents.len() == 2 => {
            let qualifier = name_of(&idents[0]);
            (qualifier == source.name || query.from.alias.as_ref().map(name_of) == Some(qualifier))
                && name_of(&idents[1]) == key
        }
        _ => false,
    }
}

/// The key values a `WHERE` pins the table's (single) key column to: `KEY = literal` or
/// `KEY IN (literals)` as one of its top-level conjuncts. None if it pins none (a scan).
fn key_lookup(query: &Query, source: &DataSource) -> Result<Option<Vec<ScalarValue>>> {
    let keys = source.key_names();
    let [key] = keys.as_slice() else {
        return Ok(None);
    };
    let Some(selection) = &query.selection else {
        return Ok(None);
    };
    let is_key = |e: &Expr| names_key(e, key, query, source);
    let mut conjuncts = Vec::new();
    conjuncts_of(selection, &mut conjuncts);
    for conjunct in conjuncts {
        match conjunct {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                let literal = if is_key(left) {
                    literal(right)
                } else if is_key(right) {
                    literal(left)
                } else {
                    None
                };
                if let Some(value) = literal {
                    return Ok(Some(vec![value]));
                }
            }
            Expr::InList {
                expr,
                list,
                negated: false,
            } if is_key(expr) => {
                // ksqlDB's checks of the values, in its words.
                let column = source.column(key);
                for item in list {
                    if matches!(item, Expr::Value(v) if v.value == Value::Null) {
                        return Err(KsqlError::statement(format!(
                            "Primary key columns can not be NULL: ({key} = null)"
                        )));
                    }
                    let (Some(value), Some(column)) = (literal(item), column) else {
                        continue;
                    };
                    let key_type = crate::format::arrow_type(&column.ty)?;
                    if value.cast_to(&key_type).is_err()
                        || (matches!(value, ScalarValue::Utf8(_))
                            != matches!(key_type, DataType::Utf8))
                    {
                        return Err(KsqlError::statement(format!(
                            "{item} can not be converted to the type of the key column: {key} {} KEY",
                            column.ty
                        )));
                    }
                }
                let values: Option<Vec<ScalarValue>> = list.iter().map(literal).collect();
                if let Some(values) = values {
                    return Ok(Some(values));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Whether a top-level conjunct of the `WHERE` bounds the table's (single) key column by a
/// literal (`<`, `<=`, `>`, `>=`, `BETWEEN`).
fn bounds_key(query: &Query, source: &DataSource) -> bool {
    let keys = source.key_names();
    let ([key], Some(selection)) = (keys.as_slice(), &query.selection) else {
        return false;
    };
    let is_key = |e: &Expr| names_key(e, key, query, source);
    let mut conjuncts = Vec::new();
    conjuncts_of(selection, &mut conjuncts);
    conjuncts.into_iter().any(|conjunct| match conjunct {
        Expr::BinaryOp { left, op, right } => {
            matches!(
                op,
                BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
            ) && ((is_key(left) && literal(right).is_some())
                || (is_key(right) && literal(left).is_some()))
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => is_key(expr) && literal(low).is_some() && literal(high).is_some(),
        _ => false,
    })
}

/// The top-level conjuncts of `expr` (`a AND (b AND c)`: a, b, c).
fn conjuncts_of<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts_of(left, out);
            conjuncts_of(right, out);
        }
        Expr::Nested(inner) => conjuncts_of(inner, out),
        other => out.push(other),
    }
}

/// A literal's value (numbers, strings, booleans; a negated number).
fn literal(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .parse::<i64>()
                .map(|i| ScalarValue::Int64(Some(i)))
                .or_else(|_| n.parse::<f64>().map(|f| ScalarValue::Float64(Some(f))))
                .ok(),
            Value::SingleQuotedString(s) => Some(ScalarValue::Utf8(Some(s.clone()))),
            Value::Boolean(b) => Some(ScalarValue::Boolean(Some(*b))),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            ScalarValue::Int64(Some(i)) => Some(ScalarValue::Int64(Some(-i))),
            ScalarValue::Float64(Some(f)) => Some(ScalarValue::Float64(Some(-f))),
            _ => None,
        },
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

/// The records of the table a query makes without aggregating, from its store
/// [`TABLE_STORE`] in `streams`: those of `keys` (every key if none), encoded by the table's
/// key format as `pull`, which reads the table, reads them.
fn table_records(
    streams: &KafkaStreams,
    pull: &CompiledQuery,
    keys: Option<&[ScalarValue]>,
) -> Result<Vec<RawRecord>> {
    let store = streams
        .store(TABLE_STORE, BytesSerde, BytesSerde)
        .map_err(|e| KsqlError::statement(e.to_string()))?;
    let store_error = |e: sluice_streams::StreamsError| KsqlError::statement(e.to_string());
    let entries: Vec<(Bytes, Bytes)> = match keys {
        Some(values) => {
            let mut found = Vec::new();
            for key in values.iter().filter_map(|v| pull.encode_key(v)) {
                if let Some(value) = store.get(&key).map_err(store_error)? {
                    found.push((key, value));
                }
            }
            found
        }
        None => store.all().map_err(store_error)?,
    };
    let topic: Arc<str> = Arc::from(pull.source_topic());
    Ok(entries
        .into_iter()
        .filter_map(|(key, stored)| {
            let (timestamp, value) = unstamped(&stored)?;
            Some(RawRecord {
                topic: topic.clone(),
                partition: 0,
                offset: 0,
                timestamp,
                key: Some(key),
                value: Some(value),
                headers: Vec::new(),
            })
        })
        .collect())
}

/// A group's key, states and window, as its store holds them.
type GroupEntry = (Bytes, Vec<State>, Option<(i64, i64)>);

/// The rows of the table `table_query` materialises by aggregating, from its store in
/// `streams`: those of the groups `keys` (every group if none).
fn group_rows(
    streams: &KafkaStreams,
    table_query: &CompiledQuery,
    keys: Option<&[ScalarValue]>,
) -> Result<Vec<GroupRow>> {
    let Some(stage) = table_query.aggregate() else {
        return Err(KsqlError::statement("the query does not aggregate"));
    };
    let store = streams
        .store(AGGREGATE_STORE, BytesSerde, StatesSerde)
        .map_err(|e| KsqlError::statement(e.to_string()))?;
    let store_error = |e: sluice_streams::StreamsError| KsqlError::statement(e.to_string());
    // The groups looked up (a key that cannot be of the key's type finds none).
    let groups: Option<Vec<Bytes>> = match keys {
        Some(values) if stage.group_count() == 1 => Some(
            values
                .iter()
                .filter_map(|v| stage.group_key(std::slice::from_ref(v)))
                .collect(),
        ),
        _ => None,
    };
    // Each group's key, states and window.
    let mut entries: Vec<GroupEntry> = Vec::new();
    match stage.windowing().map(|w| w.spec) {
        None => match &groups {
            Some(groups) => {
                for group in groups {
                    if let Some(states) = store.get(group).map_err(store_error)? {
                        entries.push((group.clone(), states, None));
                    }
                }
            }
            None => {
                for (group, states) in store.all().map_err(store_error)? {
                    entries.push((group, states, None));
                }
            }
        },
        Some(WindowSpec::Time { size_ms, .. }) => {
            let size = size_ms as i64;
            match &groups {
                Some(groups) => {
                    for group in groups {
                        for (start, states) in store
                            .fetch_windows(group, &BytesSerde, 0, i64::MAX)
                            .map_err(store_error)?
                        {
                            entries.push((group.clone(), states, Some((start, start + size))));
                        }
                    }
                }
                None => {
                    // A window store's key: the group's, then the window's start.
                    for (key, states) in store.all().map_err(store_error)? {
                        if key.len() >= 8 {
                            let (group, start) = key.split_at(key.len() - 8);
                            let start = i64::from_be_bytes(start.try_into().unwrap_or([0; 8]));
                            entries.push((
                                Bytes::copy_from_slice(group),
                                states,
                                Some((start, start + size)),
                            ));
                        }
                    }
                }
            }
        }
        Some(WindowSpec::Session { .. }) => match &groups {
            Some(groups) => {
                for group in groups {
                    for (window, states) in store
                        .fetch_sessions(group, &BytesSerde, 0, i64::MAX)
                        .map_err(store_error)?
                    {
                        entries.push((group.clone(), states, Some((window.start, window.end))));
                    }
                }
            }
            None => {
                // A session store's key: the group's, then the session's end and start.
                for (key, states) in store.all().map_err(store_error)? {
                    if key.len() >= 16 {
                        let (group, bounds) = key.split_at(key.len() - 16);
                        let end = i64::from_be_bytes(bounds[..8].try_into().unwrap_or([0; 8]));
                        let start = i64::from_be_bytes(bounds[8..].try_into().unwrap_or([0; 8]));
                        entries.push((Bytes::copy_from_slice(group), states, Some((start, end))));
                    }
                }
            }
        },
    }
    let mut rows = Vec::with_capacity(entries.len());
    for (group, states, window) in entries {
        let (columns, kept) = table_query.grouped_result(&group, &states, window)?;
        // A group whose row fails `HAVING` has no row in the table.
        if kept {
            rows.push(GroupRow {
                columns,
                rowtime: stage.rowtime(&states).unwrap_or(0),
                window,
            });
        }
    }
    Ok(rows)
}

/// The table's rows as one batch of the pull query's input: the table's columns (by name
/// from the materialising query's result, whose columns are `names`), then the pseudo
/// columns.
fn input_batch(
    pull: &CompiledQuery,
    table: &DataSource,
    rows: Vec<GroupRow>,
    names: &[String],
) -> Result<RecordBatch> {
    let schema = pull.input_schema().clone();
    let n = rows.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (at, field) in schema.fields().iter().enumerate() {
        let name = field.name().as_str();
        let column: ArrayRef = match name {
            ROWTIME => Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.rowtime))),
            ROWPARTITION => Arc::new(Int32Array::from(vec![0; n])),
            ROWOFFSET => Arc::new(Int64Array::from(vec![0i64; n])),
            WINDOWSTART | WINDOWEND if at >= table.columns.len() => {
                let end = name == WINDOWEND;
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| {
                    r.window
                        .map_or(0, |(start, stop)| if end { stop } else { start })
                })))
            }
            _ => {
                let missing =
                    || KsqlError::statement(format!("the table's state has no column {name}"));
                let from = names.iter().position(|n| n == name).ok_or_else(missing)?;
                let parts: Vec<&dyn arrow::array::Array> = rows
                    .iter()
                    .map(|r| r.columns.get(from).map(|c| c.as_ref()))
                    .collect::<Option<_>>()
                    .ok_or_else(missing)?;
                if parts.is_empty() {
                    arrow::array::new_empty_array(field.data_type())
                } else {
                    let array = arrow::compute::concat(&parts).map_err(crate::exec::arrow_error)?;
                    cast_to(array, field.data_type())?
                }
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(crate::exec::arrow_error)
}

fn cast_to(array: ArrayRef, ty: &DataType) -> Result<ArrayRef> {
    if array.data_type() == ty {
        Ok(array)
    } else {
        arrow::compute::cast(&array, ty).map_err(crate::exec::arrow_error)
    }
}

#[cfg(test)]
mod tests {
    use super::partial_timestamp;

    #[test]
    fn window_bounds_read_as_partial_dates_and_times() {
        // 2020-02-23T23:45:12.000Z
        assert_eq!(
            partial_timestamp("2020-02-23T23:45:12.000"),
            Some(1_582_501_512_000)
        );
        assert_eq!(
            partial_timestamp("2020-02-23T22:45:12.000-0100"),
            Some(1_582_501_512_000)
        );
        assert_eq!(
            partial_timestamp("2020-02-24T00:45:12+01:00"),
            Some(1_582_501_512_000)
        );
        assert_eq!(
            partial_timestamp("2020-02-23T23:45:12Z"),
            Some(1_582_501_512_000)
        );
        assert_eq!(
            partial_timestamp("2020-02-22T23:45"),
            Some(1_582_415_100_000)
        );
        assert_eq!(partial_timestamp("2020-02-24T24"), Some(1_582_588_800_000));
        assert_eq!(partial_timestamp("2020"), Some(1_577_836_800_000));
        assert_eq!(partial_timestamp("yesterday"), None);
        assert_eq!(partial_timestamp("2020-13-01"), None);
    }
}
