//! Queries run: a planned query's DataFusion plan compiled into DataFusion physical
//! expressions, evaluated on Arrow record batches of a source's records — a poll's records
//! of one partition at a time — inside a Sluice Streams topology.
//!
//! A run of records becomes one batch: keys and values decoded by the source's formats into
//! columns, header columns and the pseudo columns (`ROWTIME`, `ROWPARTITION`, `ROWOFFSET`)
//! beside them. Filters and projections run on the batch; each row left is encoded in the
//! sink's formats (a persistent query) or as a JSON array (a push query) and goes on as a
//! record with its input record's timestamp.

pub mod aggregate;
pub mod join;
pub mod topology;

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int32Array, Int64Array, ListArray, StringBuilder,
    StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_common::DFSchema;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::LogicalPlan;
use datafusion_physical_expr::{create_physical_expr, PhysicalExpr};
use sluice_streams::RawRecord;

use crate::error::{KsqlError, Result};
use crate::format::{arrow_type, RowDecoder, RowEncoder, SerdeOptions};
use crate::metastore::{DataSource, Format};
use crate::parser::ast::{ColumnConstraint, SqlType};
use crate::plan::catalog::source_schema;
use crate::plan::{OutputColumn, PlannedQuery};

/// One step of a compiled plan, applied to a batch.
enum Step {
    /// Keeps the rows for which the predicate is true.
    Filter(Arc<dyn PhysicalExpr>),
    /// Computes new columns (a schema of their own).
    Project(Vec<Arc<dyn PhysicalExpr>>, SchemaRef),
    /// No rows (a plan DataFusion proved empty), of this schema.
    Empty(SchemaRef),
    /// ksqlDB's table functions (`EXPLODE`, DataFusion's `unnest`): each row becomes one
    /// row per element of its longest unnested array (none if all are null or empty), the
    /// shorter arrays padded with nulls, the other columns repeated.
    Unnest {
        /// For each output column, the input column it comes from and whether it is an
        /// array unnested.
        columns: Vec<(usize, bool)>,
        schema: SchemaRef,
    },
}

/// `batch`'s rows exploded by [`Step::Unnest`]'s `columns`, into `schema`; with, for each
/// new row, the input row it came from.
fn unnest(
    batch: &RecordBatch,
    columns: &[(usize, bool)],
    schema: &SchemaRef,
) -> Result<(RecordBatch, Vec<u32>)> {
    let lists: Vec<&arrow::array::ListArray> = columns
        .iter()
        .filter(|(_, unnested)| *unnested)
        .map(|(i, _)| {
            batch.column(*i).as_list_opt::<i32>().ok_or_else(|| {
                KsqlError::statement(
                    "EXPLODE takes an ARRAY (a MAP or STRUCT cannot be exploded yet)",
                )
            })
        })
        .collect::<Result<_>>()?;
    let length = |list: &arrow::array::ListArray, row: usize| {
        if list.is_null(row) {
            0
        } else {
            list.value_length(row) as usize
        }
    };
    let mut from = Vec::new();
    let mut element = Vec::new();
    for row in 0..batch.num_rows() {
        let n = lists.iter().map(|l| length(l, row)).max().unwrap_or(0);
        for k in 0..n {
            from.push(row as u32);
            element.push(k);
        }
    }
    let repeat = arrow::array::UInt32Array::from(from.clone());
    let mut lists_at = 0;
    let mut out = Vec::with_capacity(columns.len());
    for (i, unnested) in columns {
        if !unnested {
            out.push(arrow::compute::take(batch.column(*i), &repeat, None).map_err(arrow_error)?);
            continue;
        }
        let list = lists[lists_at];
        lists_at += 1;
        let offsets = list.value_offsets();
        let indices: arrow::array::UInt32Array = from
            .iter()
            .zip(&element)
            .map(|(&row, &k)| {
                let row = row as usize;
                (k < length(list, row)).then(|| offsets[row] as u32 + k as u32)
            })
            .collect();
        out.push(arrow::compute::take(list.values(), &indices, None).map_err(arrow_error)?);
    }
    let exploded = RecordBatch::try_new_with_options(
        schema.clone(),
        out,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(from.len())),
    )
    .map_err(arrow_error)?;
    Ok((exploded, from))
}

/// Where a source column's values come from.
#[derive(Debug, Clone)]
enum ColumnSource {
    Key,
    Value,
    Headers,
    Header(String),
}

/// A query compiled for one source: decoding, the plan's steps, the result's columns.
pub struct CompiledQuery {
    source: DataSource,
    input_schema: SchemaRef,
    column_sources: Vec<ColumnSource>,
    key_columns: Vec<(String, SqlType)>,
    value_columns: Vec<(String, SqlType)>,
    options: SerdeOptions,
    /// A windowed source's window: its keys end with it, and its bounds are the columns
    /// `WINDOWSTART` and `WINDOWEND`.
    key_window: Option<KeyWindow>,
    /// The column the source takes its records' timestamps from (`TIMESTAMP`).
    timestamp_column: Option<usize>,
    /// `TIMESTAMP_FORMAT`: the timestamp column is a string in this Java pattern.
    timestamp_format: Option<Arc<crate::plan::udf::java_time::Pattern>>,
    /// A persistent query's sink `WITH (TIMESTAMP=...)`: the result column its records'
    /// timestamps come from.
    sink_timestamp: Option<SinkTimestamp>,
    steps: Vec<Step>,
    /// A `GROUP BY` query's aggregation (`steps` being the plan below it).
    aggregate: Option<aggregate::AggregateStage>,
    /// The result's columns, and the Arrow type each is held in.
    output: Vec<(OutputColumn, DataType)>,
    /// For a query of a table neither grouped nor re-keyed: the index in `key_columns` of
    /// the source key column each result key column selects (its deletes' keys).
    key_sources: Vec<usize>,
    /// A join query's join (the query's own source being its left side).
    join: Option<join::JoinStage>,
}

/// What a run of records made: the result's columns, and for each row the index in the run
/// of its input record and its timestamp.
pub struct Evaluated {
    /// The result's columns (of their canonical Arrow types).
    pub columns: Vec<ArrayRef>,
    /// The input record of each row, by index in the run.
    pub rows: Vec<u32>,
    /// Each row's timestamp (its input's `ROWTIME`).
    pub timestamps: Vec<i64>,
    /// Records skipped because they did not deserialise (or had no timestamp): the index in
    /// the run of each, and why.
    pub skipped: Vec<(u32, String)>,
}

impl CompiledQuery {
    /// Compiles `planned`: its plan's filters and projections into physical expressions.
    pub fn compile(
        planned: &PlannedQuery,
        metastore: &crate::metastore::MetaStore,
    ) -> Result<CompiledQuery> {
        CompiledQuery::compile_any(planned, metastore)
    }

    /// The query writing into `sink`: its records' timestamps from the sink's `TIMESTAMP`
    /// column, if it names one.
    pub fn with_sink_timestamp(mut self, sink: &DataSource) -> Result<CompiledQuery> {
        self.sink_timestamp = SinkTimestamp::of(
            &self
                .output
                .iter()
                .map(|(c, _)| c.clone())
                .collect::<Vec<_>>(),
            sink.properties.timestamp.as_deref(),
            sink.properties.timestamp_format.as_deref(),
        )?;
        Ok(self)
    }

    /// Compiles pull query `planned`, whose rows come from a table's state rather than
    /// records of its topic (a windowed table's too, its window bounds as columns).
    pub fn compile_pull(
        planned: &PlannedQuery,
        metastore: &crate::metastore::MetaStore,
    ) -> Result<CompiledQuery> {
        CompiledQuery::compile_any(planned, metastore)
    }

    fn compile_any(
        planned: &PlannedQuery,
        metastore: &crate::metastore::MetaStore,
    ) -> Result<CompiledQuery> {
        let mut query = CompiledQuery::reading(&planned.source, metastore)?;
        let props = ExecutionProps::new();
        query.output = planned
            .columns
            .iter()
            .map(|c| Ok((c.clone(), arrow_type(&c.ty)?)))
            .collect::<Result<Vec<_>>>()?;
        if let Some(join) = &planned.join {
            query.join = Some(join::JoinStage::compile(planned, join, metastore, &props)?);
            return Ok(query);
        }
        let (steps, aggregate) = match aggregate::split(&planned.plan, &props)? {
            Some((after, node)) => (
                compile_steps(&node.input, &props)?,
                Some(aggregate::AggregateStage::compile(
                    &node,
                    after,
                    (
                        &planned.source,
                        planned
                            .window
                            .as_ref()
                            .map(|w| aggregate::Windowing::of(w, planned.emit_final)),
                    ),
                    &props,
                )?),
            ),
            None => (compile_steps(&planned.plan, &props)?, None),
        };
        query.steps = steps;
        query.aggregate = aggregate;
        query.key_sources = planned
            .key_sources
            .iter()
            .map(|name| {
                query
                    .key_columns
                    .iter()
                    .position(|(n, _)| n == name)
                    .ok_or_else(|| KsqlError::statement(format!("{name} is not a key column")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(query)
    }

    /// One side of a join: `source`'s records through `plan` (the plan below the join),
    /// its result the plan's columns.
    pub(crate) fn side(
        source: &DataSource,
        plan: &LogicalPlan,
        metastore: &crate::metastore::MetaStore,
    ) -> Result<CompiledQuery> {
        if source.properties.window.is_some() {
            return Err(KsqlError::statement(
                "queries of windowed sources are not supported by Sluice's ksql yet (issue 18 is under way)",
            ));
        }
        let mut query = CompiledQuery::reading(source, metastore)?;
        query.steps = compile_steps(plan, &ExecutionProps::new())?;
        query.output = join::side_columns(plan)?;
        Ok(query)
    }

    /// A query reading `source` (its formats checked), with no steps yet.
    fn reading(
        source: &DataSource,
        metastore: &crate::metastore::MetaStore,
    ) -> Result<CompiledQuery> {
        let source = source.clone();
        let input_schema = source_schema(&source, metastore)?;
        let mut column_sources = Vec::new();
        let mut key_columns = Vec::new();
        let mut value_columns = Vec::new();
        for column in &source.columns {
            let ty = metastore.resolve(&column.ty)?;
            column_sources.push(match &column.constraint {
                ColumnConstraint::Key | ColumnConstraint::PrimaryKey => {
                    key_columns.push((column.name.clone(), ty));
                    ColumnSource::Key
                }
                ColumnConstraint::None => {
                    value_columns.push((column.name.clone(), ty));
                    ColumnSource::Value
                }
                ColumnConstraint::Headers => ColumnSource::Headers,
                ColumnConstraint::Header(key) => ColumnSource::Header(key.clone()),
            });
        }
        let timestamp_format = match (
            &source.properties.timestamp,
            &source.properties.timestamp_format,
        ) {
            (_, None) => None,
            (None, Some(_)) => {
                return Err(KsqlError::statement(
                    "TIMESTAMP_FORMAT requires a TIMESTAMP column in the WITH clause",
                ))
            }
            (Some(_), Some(format)) => Some(Arc::new(
                crate::plan::udf::java_time::Pattern::compile(format).map_err(|err| {
                    KsqlError::statement(format!("Invalid TIMESTAMP_FORMAT '{format}': {err}"))
                })?,
            )),
        };
        let timestamp_column = match &source.properties.timestamp {
            None => None,
            Some(name) => {
                let at = source
                    .columns
                    .iter()
                    .position(|c| &c.name == name)
                    .ok_or_else(|| KsqlError::statement(format!("The TIMESTAMP column set in the WITH clause does not exist in the schema: '{name}'")))?;
                let ty = metastore.resolve(&source.columns[at].ty)?;
                let string = ty == SqlType::String && timestamp_format.is_some();
                if !string && !matches!(ty, SqlType::Bigint | SqlType::Timestamp) {
                    return Err(KsqlError::statement(format!(
                        "Timestamp column, `{name}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp.format specified."
                    )));
                }
                Some(at)
            }
        };
        let options = SerdeOptions {
            wrap_single_value: source.properties.wrap_single_value.unwrap_or(true),
            delimiter: delimiter(source.properties.value_delimiter.as_deref())?,
        };
        // Checks the formats can hold the columns now, not at the first record.
        RowDecoder::new(
            source.properties.key_format,
            &key_columns,
            options.clone(),
            true,
        )?;
        RowDecoder::new(
            source.properties.value_format,
            &value_columns,
            options.clone(),
            false,
        )?;
        let key_window = KeyWindow::of(&source)?;
        Ok(CompiledQuery {
            source,
            input_schema,
            column_sources,
            key_columns,
            value_columns,
            options,
            key_window,
            timestamp_column,
            timestamp_format,
            sink_timestamp: None,
            steps: Vec::new(),
            aggregate: None,
            output: Vec::new(),
            key_sources: Vec::new(),
            join: None,
        })
    }

    /// Whether the query reads a table (its rows are updates of keys; a delete or a row
    /// that stops passing `WHERE` deletes its key downstream).
    pub fn reads_table(&self) -> bool {
        self.source.kind == crate::parser::ast::SourceKind::Table
    }

    /// The result's key columns for records of `run` (those at `at`): their source key
    /// columns decoded and selected as the query selects them. For a table's deletes, which
    /// have no row to evaluate.
    pub fn result_keys(&self, run: &[RawRecord], at: &[u32]) -> Result<Vec<ArrayRef>> {
        let mut keys = RowDecoder::new(
            self.source.properties.key_format,
            &self.key_columns,
            self.options.clone(),
            true,
        )?;
        for &i in at {
            let key = run[i as usize].key.as_deref();
            match (&self.key_window, key) {
                (Some(window), Some(key)) => keys.append(Some(window.split(key)?.0))?,
                _ => keys.append(key)?,
            }
        }
        let decoded = keys.finish();
        self.key_sources
            .iter()
            .map(|&i| {
                decoded.get(i).cloned().ok_or_else(|| {
                    KsqlError::statement("the key format made fewer columns than the key has")
                })
            })
            .collect()
    }

    /// A run's left rows joined with the table at once (see [`join::JoinStage::joined_batch`])
    /// by the join at `depth` (see [`CompiledQuery::join_at`]): the result's columns and
    /// each result row's left row.
    pub fn joined_batch_result(
        &self,
        depth: usize,
        left: &[ArrayRef],
        rights: &[Option<bytes::Bytes>],
    ) -> Result<(Vec<ArrayRef>, Vec<u32>)> {
        let (stage, output) = self
            .join_at(depth)
            .ok_or_else(|| KsqlError::statement("the query does not join"))?;
        stage.joined_batch(left, rights, output)
    }

    /// A join query's join.
    pub fn join(&self) -> Option<&join::JoinStage> {
        self.join.as_ref()
    }

    /// The join `depth` joins below the query's own (an n-way join's: 0 its last, 1 the
    /// one before, ...), and the columns of its rows.
    pub fn join_at(&self, depth: usize) -> Option<(&join::JoinStage, &[(OutputColumn, DataType)])> {
        let mut stage = self.join.as_ref()?;
        let mut output: &[(OutputColumn, DataType)] = &self.output;
        for _ in 0..depth {
            match &stage.left {
                join::JoinLeft::Join {
                    stage: inner,
                    output: columns,
                } => {
                    stage = inner;
                    output = columns;
                }
                join::JoinLeft::Source(_) => return None,
            }
        }
        Some((stage, output))
    }

    /// The result row of the join at `depth` of a left row and a right row (none: an outer
    /// join's unmatched row): its columns, one row each, or none if it does not pass `WHERE`.
    pub fn joined_result(
        &self,
        depth: usize,
        left: Option<&[u8]>,
        right: Option<&[u8]>,
    ) -> Result<Option<Vec<ArrayRef>>> {
        let (stage, output) = self
            .join_at(depth)
            .ok_or_else(|| KsqlError::statement("the query does not join"))?;
        stage.joined(left, right, output)
    }

    /// A `GROUP BY` query's aggregation.
    pub fn aggregate(&self) -> Option<&aggregate::AggregateStage> {
        self.aggregate.as_ref()
    }

    /// A grouped query's result row for the group `key` with aggregate `states`: its
    /// columns (one row each, of their canonical types), and whether it passes `HAVING`.
    pub fn grouped_result(
        &self,
        key: &[u8],
        states: &[crate::aggregate::State],
        window: Option<(i64, i64)>,
    ) -> Result<(Vec<ArrayRef>, bool)> {
        let stage = self
            .aggregate
            .as_ref()
            .ok_or_else(|| KsqlError::statement("the query does not aggregate"))?;
        let (batch, kept) = stage.result(key, states, window)?;
        Ok((aggregate::canonical(&batch, &self.output)?, kept))
    }

    /// The schema of the batches of the source's rows it evaluates: the source's columns,
    /// then the pseudo columns.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    /// The key bytes of the source's record whose (single) key column is `value`, in the
    /// source's key format; none if `value` cannot be of the column's type.
    pub fn encode_key(&self, value: &datafusion_common::ScalarValue) -> Option<bytes::Bytes> {
        let [(_, ty)] = self.key_columns.as_slice() else {
            return None;
        };
        let value = value.cast_to(&arrow_type(ty).ok()?).ok()?;
        if value.is_null() {
            return None;
        }
        let encoder = RowEncoder::new(
            self.source.properties.key_format,
            &self.key_columns,
            self.options.clone(),
            true,
        )
        .ok()?;
        let mut out = Vec::new();
        let array = value.to_array().ok()?;
        match encoder.encode(&[array], 0, &mut out) {
            Ok(true) => Some(bytes::Bytes::from(out)),
            _ => None,
        }
    }

    /// Evaluates the query (neither grouped nor joined) over a batch of its source's rows
    /// of [`CompiledQuery::input_schema`] (a pull query over a table's materialised rows):
    /// the result's columns.
    pub fn evaluate_batch(&self, batch: RecordBatch) -> Result<Vec<ArrayRef>> {
        if self.aggregate.is_some() || self.join.is_some() {
            return Err(KsqlError::statement(
                "only a query without GROUP BY or JOIN evaluates rows of a table's state",
            ));
        }
        let rows = (0..batch.num_rows() as u32).collect();
        let (batch, _) = run_steps(&self.steps, batch, rows)?;
        aggregate::canonical(&batch, &self.output)
    }

    /// The source's topic.
    pub fn source_topic(&self) -> &str {
        &self.source.properties.topic
    }

    /// The result's columns.
    pub fn output_columns(&self) -> impl Iterator<Item = &OutputColumn> {
        self.output.iter().map(|(c, _)| c)
    }

    /// Evaluates the query over a run of records of its source.
    pub fn evaluate(&self, run: &[RawRecord]) -> Result<Evaluated> {
        let (batch, rows, rowtimes, skipped) = self.decode(run)?;
        let (batch, rows) = run_steps(&self.steps, batch, rows)?;
        let mut timestamps: Vec<i64> = rows.iter().map(|&i| rowtimes[i as usize]).collect();
        let mut columns = match &self.aggregate {
            // The group and arguments of each row, for the aggregation.
            Some(stage) => stage.inputs(&batch, timestamps.clone())?,
            None => aggregate::canonical(&batch, &self.output)?,
        };
        let mut skipped = skipped;
        let mut rows = rows;
        if let (Some(sink), None) = (&self.sink_timestamp, &self.aggregate) {
            let mut keep = Vec::with_capacity(rows.len());
            for (i, timestamp) in sink.timestamps(&columns)?.into_iter().enumerate() {
                match timestamp {
                    Ok(timestamp) => {
                        timestamps[i] = timestamp;
                        keep.push(true);
                    }
                    Err(why) => {
                        skipped.push((rows[i], why));
                        keep.push(false);
                    }
                }
            }
            if keep.iter().any(|k| !k) {
                let mask = arrow::array::BooleanArray::from(keep);
                columns = columns
                    .iter()
                    .map(|c| arrow::compute::filter(c, &mask).map_err(arrow_error))
                    .collect::<Result<_>>()?;
                rows = filter_rows(&rows, &mask);
                timestamps = timestamps
                    .iter()
                    .zip(mask.values().iter())
                    .filter_map(|(t, k)| k.then_some(*t))
                    .collect();
            }
        }
        Ok(Evaluated {
            columns,
            rows,
            timestamps,
            skipped,
        })
    }

    /// The run as one batch of the source's schema; the index of each of its rows in the
    /// run, and every record's timestamp. Records that do not deserialise (and a stream's
    /// records without a value) are left out.
    fn decode(&self, run: &[RawRecord]) -> Result<Decoded> {
        let props = &self.source.properties;
        let mut keys = RowDecoder::new(
            props.key_format,
            &self.key_columns,
            self.options.clone(),
            true,
        )?;
        let mut values = RowDecoder::new(
            props.value_format,
            &self.value_columns,
            self.options.clone(),
            false,
        )?;
        let mut keep = Vec::with_capacity(run.len());
        let mut skipped = Vec::new();
        let is_table = self.reads_table();
        // A windowed source's window bounds, from each key's end.
        let mut bounds: Vec<(i64, i64)> = Vec::new();
        for (index, raw) in run.iter().enumerate() {
            if self.key_window.is_some() {
                bounds.push((0, 0));
            }
            let key = if is_table && raw.key.is_none() {
                // A table's record without a key updates no row: skipped, as ksqlDB does.
                keys.append(None).and(Err(KsqlError::Serde(
                    "a table's record without a key".into(),
                )))
            } else if let Some(window) = &self.key_window {
                let split = raw
                    .key
                    .as_deref()
                    .ok_or_else(|| KsqlError::Serde("a windowed record without a key".into()))
                    .and_then(|key| window.split(key));
                // The decoder is left as it was on error: the row's null key comes below.
                split.and_then(|(key, window)| {
                    if let Some(last) = bounds.last_mut() {
                        *last = window;
                    }
                    keys.append(Some(key))
                })
            } else {
                keys.append(raw.key.as_deref())
            };
            let value: std::result::Result<(), Option<KsqlError>> = if raw.value.is_none() {
                // A stream's record without a value is skipped (ksqlDB's rule); a table's is
                // a delete, which has no row (the caller writes it).
                values.append(None).map_err(Some).and(Err(None))
            } else {
                values.append(raw.value.as_deref()).map_err(Some)
            };
            match (key, value) {
                (Ok(()), Ok(())) => keep.push(true),
                (key, value) => {
                    // The part that did not fail holds a row; the other gets a null one.
                    let key_failed = key.is_err();
                    let value_failed = value.is_err();
                    if key_failed && !(is_table && raw.key.is_none()) {
                        keys.append(None)?;
                    }
                    if value_failed {
                        // `append(None)` already ran for a skipped tombstone.
                        if let Err(Some(_)) = &value {
                            values.append(None)?;
                        }
                    }
                    let problem = match (key, value) {
                        (Err(e), _) => Some(e.to_string()),
                        (_, Err(Some(e))) => Some(e.to_string()),
                        _ => None,
                    };
                    if let Some(problem) = problem {
                        skipped.push((index as u32, problem));
                    }
                    keep.push(false);
                }
            }
        }
        let n = run.len();
        let key_arrays = keys.finish();
        let value_arrays = values.finish();
        let (mut key_arrays, mut value_arrays) = (key_arrays.into_iter(), value_arrays.into_iter());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.input_schema.fields().len());
        for (at, source) in self.column_sources.iter().enumerate() {
            let field = self.input_schema.field(at);
            let array = match source {
                ColumnSource::Key => key_arrays.next(),
                ColumnSource::Value => value_arrays.next(),
                ColumnSource::Header(key) => Some(header_column(run, key)),
                ColumnSource::Headers => Some(headers_column(run, field.data_type())?),
            }
            .ok_or_else(|| {
                KsqlError::statement("the formats made fewer columns than the source has")
            })?;
            columns.push(array);
        }
        let mut rowtimes: Vec<i64> = run.iter().map(|r| r.timestamp).collect();
        if let (Some(at), Some(pattern)) = (self.timestamp_column, &self.timestamp_format) {
            // A string in the `TIMESTAMP_FORMAT` pattern, in the system's zone unless it
            // names one (ksqlDB's `StringTimestampExtractor`); a record whose string does not
            // parse is skipped, as ksqlDB's extractor fails it.
            let zone = crate::plan::udf::java_time::Zone::system_default();
            let strings = columns[at].as_string_opt::<i32>().ok_or_else(|| {
                KsqlError::statement("a TIMESTAMP_FORMAT column that is not a STRING")
            })?;
            for (i, ts) in rowtimes.iter_mut().enumerate() {
                let parsed = match strings.is_null(i) {
                    true => Err("its timestamp column is null".to_string()),
                    false => crate::plan::udf::java_time::parse_timestamp(
                        pattern,
                        strings.value(i),
                        &zone,
                    )
                    .map_err(|err| {
                        format!(
                            "its timestamp '{}' does not parse with TIMESTAMP_FORMAT: {err}",
                            strings.value(i)
                        )
                    }),
                };
                match parsed.and_then(non_negative) {
                    Ok(parsed) => *ts = parsed,
                    Err(why) if keep[i] => {
                        keep[i] = false;
                        skipped.push((i as u32, why));
                    }
                    Err(_) => {}
                }
            }
        } else if let Some(at) = self.timestamp_column {
            let column =
                arrow::compute::cast(&columns[at], &DataType::Int64).map_err(arrow_error)?;
            let column = column.as_primitive::<arrow::datatypes::Int64Type>();
            for (i, ts) in rowtimes.iter_mut().enumerate() {
                if column.is_null(i) {
                    // ksqlDB skips a record whose timestamp column is null.
                    if keep[i] {
                        keep[i] = false;
                        skipped.push((i as u32, "its timestamp column is null".to_string()));
                    }
                } else if column.value(i) < 0 {
                    // Kafka's extractors skip a record with a negative timestamp.
                    if keep[i] {
                        keep[i] = false;
                        skipped.push((
                            i as u32,
                            format!("its timestamp {} is negative", column.value(i)),
                        ));
                    }
                } else {
                    *ts = column.value(i);
                }
            }
        }
        columns.push(Arc::new(Int64Array::from(rowtimes.clone())));
        columns.push(Arc::new(Int32Array::from_iter_values(
            run.iter().map(|r| r.partition),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            run.iter().map(|r| r.offset),
        )));
        if self.key_window.is_some() {
            columns.push(Arc::new(Int64Array::from_iter_values(
                bounds.iter().map(|(start, _)| *start),
            )));
            columns.push(Arc::new(Int64Array::from_iter_values(
                bounds.iter().map(|(_, end)| *end),
            )));
        }
        let batch = RecordBatch::try_new_with_options(
            self.input_schema.clone(),
            columns,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(arrow_error)?;
        let all_kept = keep.iter().all(|k| *k);
        let rows: Vec<u32> = (0..n as u32).collect();
        if all_kept {
            return Ok((batch, rows, rowtimes, skipped));
        }
        let mask = arrow::array::BooleanArray::from(keep);
        let batch = arrow::compute::filter_record_batch(&batch, &mask).map_err(arrow_error)?;
        Ok((batch, filter_rows(&rows, &mask), rowtimes, skipped))
    }
}

/// A windowed source's window, as its keys end with it (Kafka Streams' windowed serdes): a
/// time window's start (8 big-endian bytes; its end is the start plus the size), or a
/// session's end then start.
#[derive(Debug, Clone, Copy)]
struct KeyWindow {
    session: bool,
    size_ms: i64,
}

impl KeyWindow {
    fn of(source: &DataSource) -> Result<Option<KeyWindow>> {
        let Some(window) = &source.properties.window else {
            return Ok(None);
        };
        let session = window.kind.eq_ignore_ascii_case("SESSION");
        let size_ms = match (session, window.size_ms) {
            (true, _) => 0,
            (false, Some(size)) => i64::try_from(size).unwrap_or(i64::MAX),
            (false, None) => {
                return Err(KsqlError::statement(format!(
                    "{} windows require WINDOW_SIZE",
                    window.kind
                )))
            }
        };
        Ok(Some(KeyWindow { session, size_ms }))
    }

    /// A key's bytes cut into the key itself and its window's bounds (start, end).
    fn split<'a>(&self, key: &'a [u8]) -> Result<(&'a [u8], (i64, i64))> {
        let suffix = if self.session { 16 } else { 8 };
        let short = || {
            KsqlError::Serde(format!(
                "a windowed key of {} bytes is shorter than its window's {suffix}",
                key.len()
            ))
        };
        let at = key.len().checked_sub(suffix).ok_or_else(short)?;
        let read = |from: usize| -> Result<i64> {
            key.get(from..from + 8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_be_bytes)
                .ok_or_else(short)
        };
        let bounds = if self.session {
            (read(at + 8)?, read(at)?)
        } else {
            let start = read(at)?;
            (start, start.saturating_add(self.size_ms))
        };
        Ok((&key[..at], bounds))
    }
}

/// The result column a sink's records take their timestamps from (`WITH (TIMESTAMP=...)` of
/// `CREATE STREAM|TABLE ... AS SELECT`), and its `TIMESTAMP_FORMAT` for a string.
#[derive(Debug, Clone)]
pub struct SinkTimestamp {
    column: usize,
    format: Option<Arc<crate::plan::udf::java_time::Pattern>>,
}

impl SinkTimestamp {
    /// The sink's `timestamp` column among the result `columns`, checked as ksqlDB checks it.
    pub fn of(
        columns: &[OutputColumn],
        timestamp: Option<&str>,
        format: Option<&str>,
    ) -> Result<Option<SinkTimestamp>> {
        let Some(name) = timestamp else {
            return Ok(None);
        };
        let name = name.to_ascii_uppercase();
        let column = columns.iter().position(|c| c.name == name).ok_or_else(|| {
            KsqlError::statement(format!(
                "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{name}'"
            ))
        })?;
        let format = match format {
            Some(format) => Some(Arc::new(
                crate::plan::udf::java_time::Pattern::compile(format).map_err(|err| {
                    KsqlError::statement(format!("Invalid TIMESTAMP_FORMAT '{format}': {err}"))
                })?,
            )),
            None => None,
        };
        let ty = &columns[column].ty;
        let string = *ty == SqlType::String && format.is_some();
        if !string && !matches!(ty, SqlType::Bigint | SqlType::Timestamp) {
            return Err(KsqlError::statement(format!(
                "Timestamp column, `{name}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified"
            )));
        }
        Ok(Some(SinkTimestamp { column, format }))
    }

    /// Each result row's timestamp (`columns` of canonical types), or why it has none (the
    /// row is dropped, as ksqlDB's sink drops a record with a null or negative timestamp).
    fn timestamps(&self, columns: &[ArrayRef]) -> Result<Vec<std::result::Result<i64, String>>> {
        let column = &columns[self.column];
        if let Some(pattern) = &self.format {
            let zone = crate::plan::udf::java_time::Zone::system_default();
            let strings = column.as_string_opt::<i32>().ok_or_else(|| {
                KsqlError::statement("a TIMESTAMP_FORMAT column that is not a STRING")
            })?;
            return Ok((0..strings.len())
                .map(|i| match strings.is_null(i) {
                    true => Err("its sink timestamp is null".to_string()),
                    false => crate::plan::udf::java_time::parse_timestamp(
                        pattern,
                        strings.value(i),
                        &zone,
                    )
                    .map_err(|err| format!("its sink timestamp does not parse: {err}"))
                    .and_then(non_negative),
                })
                .collect());
        }
        let column = arrow::compute::cast(column, &DataType::Int64).map_err(arrow_error)?;
        let column = column.as_primitive::<arrow::datatypes::Int64Type>();
        Ok((0..column.len())
            .map(|i| match column.is_null(i) {
                true => Err("its sink timestamp is null".to_string()),
                false => non_negative(column.value(i)),
            })
            .collect())
    }
}

/// A record timestamp, refused when negative (Kafka's extractors skip those records).
fn non_negative(timestamp: i64) -> std::result::Result<i64, String> {
    if timestamp < 0 {
        Err(format!("its timestamp {timestamp} is negative"))
    } else {
        Ok(timestamp)
    }
}

/// A run decoded: the batch of the rows kept, the index in the run of each, every record's
/// timestamp, and the records skipped (index, why).
type Decoded = (RecordBatch, Vec<u32>, Vec<i64>, Vec<(u32, String)>);

/// The value separator of `VALUE_DELIMITER` (`TAB` and `SPACE` by name, else one character).
pub(crate) fn delimiter(value: Option<&str>) -> Result<char> {
    match value {
        None => Ok(','),
        Some(v) if v.eq_ignore_ascii_case("TAB") => Ok('\t'),
        Some(v) if v.eq_ignore_ascii_case("SPACE") => Ok(' '),
        Some(v) => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(c),
                _ => Err(KsqlError::statement(format!(
                    "Invalid delimiter value: '{v}'. Delimiter must be a single character or TAB or SPACE"
                ))),
            }
        }
    }
}

fn filter_rows(rows: &[u32], mask: &arrow::array::BooleanArray) -> Vec<u32> {
    rows.iter()
        .enumerate()
        .filter(|(i, _)| mask.is_valid(*i) && mask.value(*i))
        .map(|(_, r)| *r)
        .collect()
}

/// `HEADER('k')`: the last header named `k` of each record.
fn header_column(run: &[RawRecord], key: &str) -> ArrayRef {
    let mut builder = BinaryBuilder::with_capacity(run.len(), 0);
    for raw in run {
        match raw.headers.iter().rev().find(|(k, _)| k == key) {
            Some((_, Some(v))) => builder.append_value(v),
            _ => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

/// `HEADERS`: every header of each record, as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`.
fn headers_column(run: &[RawRecord], ty: &DataType) -> Result<ArrayRef> {
    let DataType::List(item) = ty else {
        return Err(KsqlError::statement("a HEADERS column must be an ARRAY"));
    };
    let DataType::Struct(fields) = item.data_type() else {
        return Err(KsqlError::statement(
            "a HEADERS column must be an ARRAY of STRUCT",
        ));
    };
    let mut keys = StringBuilder::new();
    let mut values = BinaryBuilder::new();
    let mut offsets = Vec::with_capacity(run.len() + 1);
    offsets.push(0i32);
    for raw in run {
        for (k, v) in &raw.headers {
            keys.append_value(k);
            match v {
                Some(v) => values.append_value(v),
                None => values.append_null(),
            }
        }
        let last = offsets.last().copied().unwrap_or(0);
        let count = i32::try_from(raw.headers.len()).unwrap_or(i32::MAX);
        offsets.push(last.saturating_add(count));
    }
    let entries = StructArray::try_new(
        Fields::from(fields.iter().cloned().collect::<Vec<Arc<Field>>>()),
        vec![Arc::new(keys.finish()), Arc::new(values.finish())],
        None,
    )
    .map_err(arrow_error)?;
    let list = ListArray::try_new(
        item.clone(),
        OffsetBuffer::new(offsets.into()),
        Arc::new(entries),
        None,
    )
    .map_err(arrow_error)?;
    Ok(Arc::new(list))
}

/// Runs `steps` on `batch`, whose rows are `rows` (their records' indices in a run): the
/// batch and the rows left.
fn run_steps(
    steps: &[Step],
    mut batch: RecordBatch,
    mut rows: Vec<u32>,
) -> Result<(RecordBatch, Vec<u32>)> {
    for step in steps {
        match step {
            Step::Filter(predicate) => {
                let mask = predicate
                    .evaluate(&batch)
                    .and_then(|v| v.into_array(batch.num_rows()))
                    .map_err(execution_error)?;
                let Some(mask) = mask.as_boolean_opt() else {
                    return Err(KsqlError::statement("a WHERE clause that is not a BOOLEAN"));
                };
                batch = arrow::compute::filter_record_batch(&batch, mask).map_err(arrow_error)?;
                rows = filter_rows(&rows, mask);
            }
            Step::Empty(schema) => {
                batch = RecordBatch::new_empty(schema.clone());
                rows.clear();
            }
            Step::Unnest { columns, schema } => {
                let (exploded, from) = unnest(&batch, columns, schema)?;
                batch = exploded;
                rows = from.iter().map(|&r| rows[r as usize]).collect();
            }
            Step::Project(exprs, schema) => {
                let n = batch.num_rows();
                let columns = exprs
                    .iter()
                    .map(|e| e.evaluate(&batch).and_then(|v| v.into_array(n)))
                    .collect::<datafusion_common::Result<Vec<_>>>()
                    .map_err(execution_error)?;
                batch = RecordBatch::try_new_with_options(
                    schema.clone(),
                    columns,
                    &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n)),
                )
                .map_err(arrow_error)?;
            }
        }
    }
    Ok((batch, rows))
}

/// Runs `steps` (the plan above an aggregate or a join) on a one-row `batch`: the row
/// made, and whether it passes the filters (`HAVING`, `WHERE`; a row that fails still has
/// its columns, for the delete of its key).
fn run_on_row(steps: &[Step], mut batch: RecordBatch) -> Result<(RecordBatch, bool)> {
    let mut kept = true;
    for step in steps {
        match step {
            Step::Filter(predicate) => {
                let mask = predicate
                    .evaluate(&batch)
                    .and_then(|v| v.into_array(1))
                    .map_err(execution_error)?;
                let passes = mask
                    .as_any()
                    .downcast_ref::<arrow::array::BooleanArray>()
                    .is_some_and(|m| m.is_valid(0) && m.value(0));
                kept &= passes;
            }
            Step::Project(exprs, schema) => {
                let columns = exprs
                    .iter()
                    .map(|e| e.evaluate(&batch).and_then(|v| v.into_array(1)))
                    .collect::<datafusion_common::Result<Vec<_>>>()
                    .map_err(execution_error)?;
                batch = RecordBatch::try_new_with_options(
                    schema.clone(),
                    columns,
                    &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(1)),
                )
                .map_err(arrow_error)?;
            }
            Step::Empty(_) => kept = false,
            Step::Unnest { .. } => {
                return Err(KsqlError::statement(
                    "EXPLODE after a GROUP BY or a join is not supported by Sluice's ksql yet",
                ))
            }
        }
    }
    Ok((batch, kept))
}

/// The plan's steps, source first.
fn compile_steps(plan: &LogicalPlan, props: &ExecutionProps) -> Result<Vec<Step>> {
    let mut steps = match plan {
        LogicalPlan::Filter(_)
        | LogicalPlan::Projection(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Unnest(_) => match plan.inputs().first() {
            Some(input) => compile_steps(input, props)?,
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    steps.extend(compile_node(plan, props)?);
    Ok(steps)
}

/// The steps of one node of the plan (not its inputs').
fn compile_node(plan: &LogicalPlan, props: &ExecutionProps) -> Result<Vec<Step>> {
    let physical = |expr: &datafusion_expr::Expr, schema: &DFSchema| {
        create_physical_expr(expr, schema, props, &PhysicalPlanningContext::default())
            .map_err(crate::plan::catalog::planning_error)
    };
    match plan {
        LogicalPlan::TableScan(scan) => {
            let mut steps = Vec::new();
            let full =
                DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())
                    .map_err(crate::plan::catalog::planning_error)?;
            for filter in &scan.filters {
                steps.push(Step::Filter(physical(filter, &full)?));
            }
            if let Some(projection) = &scan.projection {
                let source_schema = scan.source.schema();
                let exprs = projection
                    .iter()
                    .map(|&i| {
                        Arc::new(datafusion_physical_expr::expressions::Column::new(
                            source_schema.field(i).name(),
                            i,
                        )) as Arc<dyn PhysicalExpr>
                    })
                    .collect();
                steps.push(Step::Project(
                    exprs,
                    Arc::new(scan.projected_schema.as_arrow().clone()),
                ));
            }
            Ok(steps)
        }
        LogicalPlan::Filter(filter) => Ok(vec![Step::Filter(physical(
            &filter.predicate,
            filter.input.schema(),
        )?)]),
        LogicalPlan::Projection(projection) => {
            let mut steps = Vec::new();
            let exprs = projection
                .expr
                .iter()
                .map(|e| physical(e, projection.input.schema()))
                .collect::<Result<Vec<_>>>()?;
            steps.push(Step::Project(
                exprs,
                Arc::new(projection.schema.as_arrow().clone()),
            ));
            Ok(steps)
        }
        LogicalPlan::SubqueryAlias(_) => Ok(Vec::new()),
        LogicalPlan::Unnest(node) => {
            if !node.struct_type_columns.is_empty()
                || node.list_type_columns.iter().any(|(_, l)| l.depth != 1)
            {
                return Err(KsqlError::statement(
                    "EXPLODE takes an ARRAY, one level deep (a STRUCT cannot be exploded)",
                ));
            }
            let columns = node
                .dependency_indices
                .iter()
                .enumerate()
                .map(|(j, &i)| {
                    let name = node.schema.field(j).name();
                    let unnested = node
                        .list_type_columns
                        .iter()
                        .any(|(l, c)| *l == i && c.output_column.name == *name);
                    (i, unnested)
                })
                .collect();
            Ok(vec![Step::Unnest {
                columns,
                schema: Arc::new(node.schema.as_arrow().clone()),
            }])
        }
        // A query DataFusion proved empty (`WHERE FALSE`): no row passes.
        LogicalPlan::EmptyRelation(empty) if !empty.produce_one_row => {
            Ok(vec![Step::Empty(Arc::new(empty.schema.as_arrow().clone()))])
        }
        other => Err(KsqlError::statement(format!(
            "Sluice's ksql cannot run this plan yet (issue 18 is under way): {}",
            other.display()
        ))),
    }
}

fn execution_error(err: datafusion_common::DataFusionError) -> KsqlError {
    KsqlError::Serde(err.strip_backtrace().to_string())
}

pub(crate) fn arrow_error(err: arrow::error::ArrowError) -> KsqlError {
    KsqlError::Serde(err.to_string())
}

/// Where a row's key or value bytes are in a batch's buffer.
type Span = std::ops::Range<usize>;

/// A row written as a record: its key and value bytes (`None`: null).
pub type EncodedRecord = (Option<bytes::Bytes>, Option<bytes::Bytes>);

/// Encoders of a result's rows as records in a sink's formats.
pub struct SinkEncoders {
    key: RowEncoder,
    value: RowEncoder,
    key_indices: Vec<usize>,
    value_indices: Vec<usize>,
}

impl SinkEncoders {
    /// Encoders for `columns` in the formats given.
    pub fn new(
        columns: &[OutputColumn],
        key_format: Format,
        value_format: Format,
        options: SerdeOptions,
    ) -> Result<SinkEncoders> {
        let pick = |key: bool| -> (Vec<usize>, Vec<(String, SqlType)>) {
            columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.key == key)
                .map(|(i, c)| (i, (c.name.clone(), c.ty.clone())))
                .unzip()
        };
        let (key_indices, key_columns) = pick(true);
        let (value_indices, value_columns) = pick(false);
        Ok(SinkEncoders {
            key: RowEncoder::new(key_format, &key_columns, options.clone(), true)?,
            value: RowEncoder::new(value_format, &value_columns, options, false)?,
            key_indices,
            value_indices,
        })
    }

    /// The key bytes of each row of `key_columns` (the result's key columns, in order), for
    /// deletes (a row that cannot be written: its error).
    pub fn encode_keys(
        &self,
        key_columns: &[ArrayRef],
    ) -> Result<Vec<Result<Option<bytes::Bytes>>>> {
        let rows = key_columns.first().map_or(0, |c| c.len());
        let keys = self.key.bind(key_columns)?;
        let mut buf = Vec::with_capacity(rows * 16);
        let spans: Vec<Result<Option<Span>>> = (0..rows)
            .map(|row| {
                let start = buf.len();
                let written = keys.encode(row, &mut buf);
                if !matches!(written, Ok(true)) {
                    buf.truncate(start);
                }
                Ok(written?.then_some(start..buf.len()))
            })
            .collect();
        let buf = bytes::Bytes::from(buf);
        Ok(spans
            .into_iter()
            .map(|span| Ok(span?.map(|r| buf.slice(r))))
            .collect())
    }

    /// The key and value bytes of each row of `columns` (a row that cannot be written: its
    /// error).
    pub fn encode_all(&self, columns: &[ArrayRef]) -> Result<Vec<Result<EncodedRecord>>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let keys: Vec<ArrayRef> = self
            .key_indices
            .iter()
            .map(|&i| columns[i].clone())
            .collect();
        let values: Vec<ArrayRef> = self
            .value_indices
            .iter()
            .map(|&i| columns[i].clone())
            .collect();
        // Columns checked and downcast once per batch.
        let keys = self.key.bind(&keys)?;
        let values = self.value.bind(&values)?;
        // Every row's bytes in one buffer, each record's key and value slices of it: one
        // allocation per batch, not two per row.
        let mut buf = Vec::with_capacity(rows * 64);
        let one = |bound: &crate::format::BoundColumns<'_>, row: usize, buf: &mut Vec<u8>| {
            let start = buf.len();
            match bound.encode(row, buf) {
                Ok(true) => Ok(Some(start..buf.len())),
                Ok(false) => {
                    buf.truncate(start);
                    Ok(None)
                }
                Err(err) => {
                    buf.truncate(start);
                    Err(err)
                }
            }
        };
        let spans: Vec<Result<(Option<Span>, Option<Span>)>> = (0..rows)
            .map(|row| Ok((one(&keys, row, &mut buf)?, one(&values, row, &mut buf)?)))
            .collect();
        let buf = bytes::Bytes::from(buf);
        Ok(spans
            .into_iter()
            .map(|span| {
                let (key, value) = span?;
                Ok((key.map(|r| buf.slice(r)), value.map(|r| buf.slice(r))))
            })
            .collect())
    }
}

/// Encodes result rows as JSON arrays (the push query's `row.columns`).
pub struct JsonRows {
    encoders: Vec<RowEncoder>,
}

impl JsonRows {
    /// Encoders for `columns`.
    pub fn new(columns: &[OutputColumn]) -> Result<JsonRows> {
        let options = SerdeOptions {
            wrap_single_value: false,
            ..SerdeOptions::default()
        };
        Ok(JsonRows {
            encoders: columns
                .iter()
                .map(|c| {
                    RowEncoder::new(
                        Format::Json,
                        &[(c.name.clone(), c.ty.clone())],
                        options.clone(),
                        false,
                    )
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Each row of `columns` as a JSON array, `[1,"a",null]` (a row that cannot be
    /// written: its error).
    pub fn encode_all(&self, columns: &[ArrayRef]) -> Result<Vec<Result<bytes::Bytes>>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let bound = self
            .encoders
            .iter()
            .zip(columns)
            .map(|(encoder, column)| encoder.bind(std::slice::from_ref(column)))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::new();
        Ok((0..rows)
            .map(|row| {
                out.clear();
                out.push(b'[');
                for (i, column) in bound.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if !column.encode(row, &mut out)? {
                        out.extend_from_slice(b"null");
                    }
                }
                out.push(b']');
                Ok(bytes::Bytes::copy_from_slice(&out))
            })
            .collect())
    }
}

/// The record `INSERT INTO source [(columns)] VALUES (values)` writes: its key and value in
/// the source's formats, and its timestamp if `ROWTIME` is given. Values are constant
/// expressions (DataFusion's, through the planner), each cast to its column's type where
/// ksqlDB would (numbers to numbers, strings to dates and times); missing columns are null.
pub fn insert_record(
    source: &DataSource,
    columns: &[crate::parser::ast::Ident],
    values: &[crate::parser::ast::Expr],
    metastore: &crate::metastore::MetaStore,
) -> Result<(EncodedRecord, Option<i64>)> {
    use crate::metastore::name_of;
    let insertable: Vec<&crate::metastore::Column> =
        source.columns.iter().filter(|c| !c.is_header()).collect();
    let names: Vec<String> = if columns.is_empty() {
        insertable.iter().map(|c| c.name.clone()).collect()
    } else {
        columns.iter().map(name_of).collect()
    };
    if names.len() != values.len() {
        return Err(KsqlError::statement(format!(
            "Expected number columns and values to match: [{}], [{}]",
            names.join(", "),
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut typed: Vec<(String, SqlType)> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(KsqlError::statement(format!(
                "Duplicate column name: `{name}`"
            )));
        }
        let ty = if name == crate::plan::catalog::ROWTIME {
            SqlType::Bigint
        } else {
            match source.column(name) {
                Some(c) if insertable.iter().any(|i| i.name == c.name) => {
                    metastore.resolve(&c.ty)?
                }
                Some(_) => {
                    return Err(KsqlError::statement(format!(
                        "Cannot insert into HEADER columns: `{name}`"
                    )))
                }
                None => {
                    return Err(KsqlError::statement(format!(
                        "Column name `{name}` does not exist."
                    )))
                }
            }
        };
        typed.push((name.clone(), ty));
    }
    let arrays = constants(values, &typed, metastore)?;
    let given = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .map(|i| arrays[i].clone())
    };
    let record = encode_insert(source, &insertable, &given, metastore)?;
    let timestamp = match given(crate::plan::catalog::ROWTIME) {
        Some(array) if !array.is_null(0) => Some(
            array
                .as_primitive_opt::<arrow::datatypes::Int64Type>()
                .map(|a| a.value(0))
                .ok_or_else(|| KsqlError::statement("ROWTIME must be a BIGINT"))?,
        ),
        _ => None,
    };
    Ok((record, timestamp))
}

/// The record a row of `/inserts-stream` (a JSON object of column values, read as ksqlDB
/// reads a JSON value: field names in any case, numbers and strings to the columns' types)
/// writes into `source`, in its formats.
pub fn json_insert(
    source: &DataSource,
    row: &[u8],
    metastore: &crate::metastore::MetaStore,
) -> Result<EncodedRecord> {
    let insertable: Vec<&crate::metastore::Column> =
        source.columns.iter().filter(|c| !c.is_header()).collect();
    let columns = insertable
        .iter()
        .map(|c| Ok((c.name.clone(), metastore.resolve(&c.ty)?)))
        .collect::<Result<Vec<_>>>()?;
    let options = SerdeOptions {
        wrap_single_value: true,
        ..SerdeOptions::default()
    };
    let mut decoder = RowDecoder::new(Format::Json, &columns, options, false)?;
    decoder.append(Some(row))?;
    let arrays = decoder.finish();
    let given = |name: &str| {
        insertable
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| arrays.get(i).cloned())
    };
    encode_insert(source, &insertable, &given, metastore)
}

/// A row to insert into `source` (`given`: each column's one-row array, if given; the others
/// are null) in the source's formats; a table's row must have its keys.
fn encode_insert(
    source: &DataSource,
    insertable: &[&crate::metastore::Column],
    given: &dyn Fn(&str) -> Option<ArrayRef>,
    metastore: &crate::metastore::MetaStore,
) -> Result<EncodedRecord> {
    let missing_keys: Vec<&str> = insertable
        .iter()
        .filter(|c| c.is_key() && given(&c.name).is_none_or(|a| a.is_null(0)))
        .map(|c| c.name.as_str())
        .collect();
    if source.kind == crate::parser::ast::SourceKind::Table && !missing_keys.is_empty() {
        return Err(KsqlError::statement(format!(
            "Value for primary key column(s) {} is required for tables",
            missing_keys.join(", ")
        )));
    }
    let mut output = Vec::with_capacity(insertable.len());
    let mut row: Vec<ArrayRef> = Vec::with_capacity(insertable.len());
    for column in insertable {
        let ty = metastore.resolve(&column.ty)?;
        row.push(match given(&column.name) {
            Some(array) => array,
            None => arrow::array::new_null_array(&arrow_type(&ty)?, 1),
        });
        output.push(OutputColumn {
            name: column.name.clone(),
            ty,
            key: column.is_key(),
        });
    }
    let options = SerdeOptions {
        wrap_single_value: source.properties.wrap_single_value.unwrap_or(true),
        delimiter: delimiter(source.properties.value_delimiter.as_deref())?,
    };
    let encoders = SinkEncoders::new(
        &output,
        source.properties.key_format,
        source.properties.value_format,
        options,
    )?;
    encoders
        .encode_all(&row)?
        .into_iter()
        .next()
        .ok_or_else(|| KsqlError::statement("no record to insert"))?
}

/// Constant expressions evaluated (one-row arrays), each cast to the type of its column:
/// numbers to numbers, strings to `DATE`, `TIME` and `TIMESTAMP`, `NULL` to anything; any
/// other difference is ksqlDB's error.
fn constants(
    values: &[crate::parser::ast::Expr],
    columns: &[(String, SqlType)],
    metastore: &crate::metastore::MetaStore,
) -> Result<Vec<ArrayRef>> {
    let schema = DFSchema::empty();
    let props = ExecutionProps::new();
    let batch = RecordBatch::try_new_with_options(
        Arc::new(arrow::datatypes::Schema::empty()),
        Vec::new(),
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .map_err(arrow_error)?;
    let logicals = crate::plan::constant_exprs(values, metastore)?;
    let mut out = Vec::with_capacity(values.len());
    for ((logical, value), (name, ty)) in logicals.into_iter().zip(values).zip(columns) {
        let target = arrow_type(ty)?;
        let from = datafusion_expr::ExprSchemable::get_type(&logical, &schema)
            .map_err(crate::plan::catalog::planning_error)?;
        let from_sql = crate::plan::sql_type(&from);
        let allowed = from == DataType::Null
            || from_sql.as_ref() == Some(ty)
            || (is_number(from_sql.as_ref()) && is_number(Some(ty)))
            || (from_sql == Some(SqlType::String)
                && matches!(ty, SqlType::Date | SqlType::Time | SqlType::Timestamp))
            || (matches!(
                from_sql,
                Some(SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_))
            ) && std::mem::discriminant(from_sql.as_ref().unwrap_or(ty))
                == std::mem::discriminant(ty));
        if !allowed {
            return Err(KsqlError::statement(format!(
                "Expected type {ty} for field `{name}` but got {}({value})",
                from_sql.map_or_else(|| from.to_string(), |t| t.to_string())
            )));
        }
        let cast = datafusion_expr::ExprSchemable::cast_to(logical, &target, &schema)
            .map_err(crate::plan::catalog::planning_error)?;
        let physical =
            create_physical_expr(&cast, &schema, &props, &PhysicalPlanningContext::default())
                .map_err(crate::plan::catalog::planning_error)?;
        let array = physical
            .evaluate(&batch)
            .and_then(|v| v.into_array(1))
            .map_err(|e| {
                KsqlError::statement(format!(
                    "Failed to insert values into `{name}`: {}",
                    e.strip_backtrace()
                ))
            })?;
        out.push(array);
    }
    Ok(out)
}

fn is_number(ty: Option<&SqlType>) -> bool {
    matches!(
        ty,
        Some(SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::Decimal { .. })
    )
}
