//! Joins run: DataFusion's plan cut at its `Join` node into the two sides below it, each
//! evaluated on Arrow batches of its own source's records, the Streams join between them,
//! and the plan above it (`WHERE`, the projection) evaluated on each joined row.
//!
//! A side's rows cross the join as envelopes: its columns (after the filters and
//! projections DataFusion pushed down to it) in JSON, which holds every ksqlDB type. A
//! stream–table join keeps the table's rows by the table's own key bytes; the stream's rows
//! are keyed by the join expression written in the table's key format (repartitioned,
//! `Join-left`, unless the stream's key is that already), so each finds its table row in the
//! same task, as ksqlDB does it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use bytes::Bytes;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::LogicalPlan;
use datafusion_physical_expr::{create_physical_expr, PhysicalExpr};

use super::{arrow_error, compile_node, execution_error, CompiledQuery, Step};
use crate::error::{KsqlError, Result};
use crate::format::{arrow_type, RowDecoder, RowEncoder, SerdeOptions};
use crate::metastore::{DataSource, Format, MetaStore};
use crate::parser::ast::{JoinKind, SqlType};
use crate::plan::catalog::planning_error;
use crate::plan::join::PlannedJoin;
use crate::plan::{sql_type, OutputColumn, PlannedQuery};

/// The stages of a join query around the Streams join.
pub struct JoinStage {
    /// Inner or left.
    pub kind: JoinKind,
    /// The left side: a source and the plan below the join, or the join before.
    pub left: JoinLeft,
    /// The right side: its source and the plan below the join.
    pub right: Arc<CompiledQuery>,
    /// `WITHIN` (a stream-stream join).
    pub within: Option<crate::parser::ast::Within>,
    /// The join expression over each side's rows (left, right).
    keys: [Arc<dyn PhysicalExpr>; 2],
    /// Each side's rows as the join node sees them.
    schemas: [SchemaRef; 2],
    /// The join key written as the table's keys are (or the left stream's, two streams
    /// joined).
    key_encoder: RowEncoder,
    /// The key's type.
    key_type: DataType,
    /// What the join's result rows are keyed by: the condition's operands (equal), or a
    /// foreign-key join's left table's key columns; in this format and type.
    keyed_by: Vec<datafusion_expr::Expr>,
    keyed_format: Format,
    keyed_type: SqlType,
    /// Whether each side's rows must be re-keyed through a repartition topic.
    repartition: [bool; 2],
    /// The join node's rows: the left side's columns, then the right's.
    joined_schema: SchemaRef,
    /// Each side's envelopes written and read (left, right).
    envelopes: [Envelope; 2],
    /// The plan above the join.
    after: Vec<Step>,
    /// A foreign-key join of tables: the left rows' envelopes start with the key of the
    /// right row they name.
    foreign_key: bool,
}

/// A join's left side.
pub enum JoinLeft {
    /// A source's rows through the plan below the join.
    Source(Arc<CompiledQuery>),
    /// An n-way join's: the rows of the join before (`a JOIN b` of `a JOIN b JOIN c`)
    /// through the plan between the two.
    Join {
        stage: Arc<JoinStage>,
        /// Its rows' columns, and the Arrow type each is held in.
        output: Vec<(OutputColumn, DataType)>,
    },
}

/// A side's rows in and out of their envelopes: JSON objects of its columns `C0`, `C1`, ...
struct Envelope {
    encoder: RowEncoder,
    /// One decoder, reused row after row (a joined row is read one at a time).
    decoder: parking_lot::Mutex<RowDecoder>,
}

impl Envelope {
    fn of<'a>(side: impl Iterator<Item = &'a OutputColumn>) -> Result<Envelope> {
        let columns: Vec<(String, SqlType)> = side
            .enumerate()
            .map(|(i, c)| (format!("C{i}"), c.ty.clone()))
            .collect();
        Ok(Envelope {
            encoder: RowEncoder::new(Format::Json, &columns, SerdeOptions::default(), false)?,
            decoder: parking_lot::Mutex::new(RowDecoder::new(
                Format::Json,
                &columns,
                SerdeOptions::default(),
                false,
            )?),
        })
    }

    /// Each row of `columns` (the side's result) as its envelope.
    fn encode(&self, columns: &[ArrayRef]) -> Result<Vec<Result<Bytes>>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let bound = self.encoder.bind(columns)?;
        let mut buf = Vec::with_capacity(rows * 64);
        let mut spans = Vec::with_capacity(rows);
        for row in 0..rows {
            let start = buf.len();
            spans.push(match bound.encode(row, &mut buf) {
                Ok(_) => Ok(start..buf.len()),
                Err(err) => {
                    buf.truncate(start);
                    Err(err)
                }
            });
        }
        let buf = Bytes::from(buf);
        Ok(spans
            .into_iter()
            .map(|span| span.map(|r| buf.slice(r)))
            .collect())
    }

    /// Envelopes (none: a row of nulls) as the side's columns, a row each.
    fn decode_all<'a>(
        &self,
        rows: impl Iterator<Item = Option<&'a [u8]>>,
    ) -> Result<Vec<ArrayRef>> {
        let mut decoder = self.decoder.lock();
        let mut appended = Ok(());
        for row in rows {
            appended = decoder.append(row);
            if appended.is_err() {
                break;
            }
        }
        // Finished either way: a failed run leaves nothing behind in the decoder.
        let decoded = decoder.finish();
        appended?;
        Ok(decoded)
    }

    /// An envelope (none: a row of nulls) as the side's columns, one row each.
    fn decode(&self, bytes: Option<&[u8]>) -> Result<Vec<ArrayRef>> {
        let mut decoder = self.decoder.lock();
        let appended = decoder.append(bytes);
        // The decoder is left as it was on error: nothing to take back.
        appended?;
        Ok(decoder.finish())
    }
}

impl JoinStage {
    /// The stage of `planned`'s join.
    pub(super) fn compile(
        planned: &PlannedQuery,
        join: &PlannedJoin,
        metastore: &MetaStore,
        props: &ExecutionProps,
    ) -> Result<JoinStage> {
        JoinStage::compile_below(&planned.source, join, &planned.plan, metastore, props)
    }

    /// The stage of `join`, whose node is the first join of `plan` (its first source
    /// `first`, an n-way join's inner joins compiled too).
    fn compile_below(
        first: &DataSource,
        join: &PlannedJoin,
        plan: &LogicalPlan,
        metastore: &MetaStore,
        props: &ExecutionProps,
    ) -> Result<JoinStage> {
        let node = crate::plan::join::join_node(plan)?;
        let left = match &join.inner {
            None => JoinLeft::Source(Arc::new(CompiledQuery::side(first, &node.left, metastore)?)),
            Some(inner) => JoinLeft::Join {
                stage: Arc::new(JoinStage::compile_below(
                    first, inner, &node.left, metastore, props,
                )?),
                output: side_columns(&node.left)?,
            },
        };
        let right = Arc::new(CompiledQuery::side(&join.right, &node.right, metastore)?);
        let (left_on, right_on) = node
            .on
            .first()
            .ok_or_else(|| KsqlError::statement("a join without its condition"))?;
        let physical = |expr: &datafusion_expr::Expr, schema: &datafusion_common::DFSchema| {
            create_physical_expr(expr, schema, props, &PhysicalPlanningContext::default())
                .map_err(planning_error)
        };
        let keys = [
            physical(left_on, node.left.schema())?,
            physical(right_on, node.right.schema())?,
        ];
        // The join key's column and format: the table's key (a stream joins a table on
        // it), or for two streams the left one's expression in the first source's key
        // format (`KAFKA` if it has no key).
        let right_is_table = join.right.kind == crate::parser::ast::SourceKind::Table;
        let (key_source, key_ty) = if right_is_table {
            let key_column = join
                .right
                .columns
                .iter()
                .find(|c| c.is_key())
                .ok_or_else(|| KsqlError::statement("a table without a primary key"))?;
            (&join.right, metastore.resolve(&key_column.ty)?)
        } else {
            let ty = datafusion_expr::ExprSchemable::get_type(left_on, node.left.schema())
                .map_err(planning_error)?;
            let ty = sql_type(&ty)
                .ok_or_else(|| KsqlError::statement(format!("a join expression of type {ty}")))?;
            (first, ty)
        };
        let key_format = match key_source.properties.key_format {
            Format::None => Format::Kafka,
            format => format,
        };
        let options = SerdeOptions {
            wrap_single_value: key_source.properties.wrap_single_value.unwrap_or(true),
            delimiter: super::delimiter(key_source.properties.value_delimiter.as_deref())?,
        };
        let key_encoder = RowEncoder::new(
            key_format,
            &[("KEY".to_string(), key_ty.clone())],
            options,
            true,
        )?;
        // A side whose key is the join expression, written alike, is not repartitioned.
        let keyed_alike = |source: &DataSource, on: &datafusion_expr::Expr| {
            let source_keys = source.key_names();
            matches!(strip(on), datafusion_expr::Expr::Column(c) if source_keys == [c.name.as_str()])
                && source.properties.key_format == key_format
                && source
                    .columns
                    .iter()
                    .find(|c| c.is_key())
                    .is_some_and(|c| metastore.resolve(&c.ty).ok().as_ref() == Some(&key_ty))
        };
        let left_keyed_alike = match &left {
            JoinLeft::Source(_) => keyed_alike(first, left_on),
            // The join before's rows are keyed by its condition's operands (equal).
            JoinLeft::Join { stage, .. } => {
                stage.keyed_by.iter().any(|on| same_column(on, left_on))
                    && stage.keyed_format == key_format
                    && stage.keyed_type == key_ty
            }
        };
        // A foreign-key join needs no repartition: Streams' subscription topics carry the
        // left rows to the right rows they name and the answers back.
        let repartition = [
            !join.foreign_key && !left_keyed_alike,
            !right_is_table && !keyed_alike(&join.right, right_on),
        ];
        let left_reads_table = match &left {
            JoinLeft::Source(query) => query.reads_table(),
            JoinLeft::Join { stage, .. } => stage.reads_tables(),
        };
        if left_reads_table && repartition[0] {
            return Err(KsqlError::statement(
                "A table-table join of tables whose keys are of different types or formats is not supported by Sluice's ksql yet (issue 18 is under way)",
            ));
        }
        // A foreign-key join's rows are keyed by its left table's key; others by the join
        // key.
        let (keyed_by, keyed_format, keyed_type) = if join.foreign_key {
            let mut columns = Vec::new();
            let mut types = Vec::new();
            for column in first.columns.iter().filter(|c| c.is_key()) {
                let (qualifier, _) = node
                    .left
                    .schema()
                    .qualified_field_with_unqualified_name(&column.name)
                    .map_err(planning_error)?;
                columns.push(datafusion_expr::Expr::Column(
                    datafusion_common::Column::new(qualifier.cloned(), &column.name),
                ));
                types.push(metastore.resolve(&column.ty)?);
            }
            let format = match first.properties.key_format {
                Format::None => Format::Kafka,
                format => format,
            };
            match types.as_slice() {
                [ty] => (columns, format, ty.clone()),
                // Several key columns make one key that no single expression is.
                _ => (Vec::new(), format, key_ty.clone()),
            }
        } else {
            (
                vec![left_on.clone(), right_on.clone()],
                key_format,
                key_ty.clone(),
            )
        };
        // `WHERE` conditions the optimiser moved into the join run first after it.
        let mut after = Vec::new();
        let moved = node
            .on
            .iter()
            .skip(1)
            .map(|(l, r)| l.clone().eq(r.clone()))
            .chain(node.filter.clone())
            .reduce(|a, b| a.and(b));
        if let Some(moved) = moved {
            after.push(Step::Filter(physical(&moved, &node.schema)?));
        }
        after.extend(steps_above(plan, props)?);
        let envelopes = [
            match &left {
                JoinLeft::Source(query) => Envelope::of(query.output_columns())?,
                JoinLeft::Join { output, .. } => Envelope::of(output.iter().map(|(c, _)| c))?,
            },
            Envelope::of(right.output_columns())?,
        ];
        Ok(JoinStage {
            envelopes,
            kind: join.kind,
            within: join.within.clone(),
            left,
            right,
            keys,
            schemas: [
                Arc::new(node.left.schema().as_arrow().clone()),
                Arc::new(node.right.schema().as_arrow().clone()),
            ],
            key_type: arrow_type(&key_ty)?,
            keyed_by,
            keyed_format,
            keyed_type,
            key_encoder,
            repartition,
            joined_schema: Arc::new(node.schema.as_arrow().clone()),
            after,
            foreign_key: join.foreign_key,
        })
    }

    /// The left side's source query, unless it is a join.
    pub fn left_source(&self) -> Option<&Arc<CompiledQuery>> {
        match &self.left {
            JoinLeft::Source(query) => Some(query),
            JoinLeft::Join { .. } => None,
        }
    }

    /// A side's source query (0: left, 1: right), unless it is the join before.
    pub fn side_source(&self, side: usize) -> Option<&Arc<CompiledQuery>> {
        match side {
            0 => self.left_source(),
            _ => Some(&self.right),
        }
    }

    /// Whether every source it joins is a table (its result is a table).
    pub fn reads_tables(&self) -> bool {
        self.left_reads_table() && self.right.reads_table()
    }

    /// Whether its left side is a table (a source, or every source of the join before).
    pub fn left_reads_table(&self) -> bool {
        match &self.left {
            JoinLeft::Source(query) => query.reads_table(),
            JoinLeft::Join { stage, .. } => stage.reads_tables(),
        }
    }

    /// Whether this is a foreign-key join of tables.
    pub fn foreign_key(&self) -> bool {
        self.foreign_key
    }

    /// The key of the right row a foreign-key join's left row names (its envelope's
    /// prefix, in the right table's key format); none when its join expression is null.
    pub fn foreign_key_of(envelope: &Bytes) -> Option<Bytes> {
        let (key, _) = split_foreign_key(envelope)?;
        key.map(|range| envelope.slice(range))
    }

    /// Whether a side's rows (0: left, 1: right) go through a repartition topic.
    pub fn repartitions(&self, side: usize) -> bool {
        self.repartition[side.min(1)]
    }

    /// Each row of a side's `columns` (its query's result; 0: left, 1: right) as a record
    /// for the join: the join expression in the join key's format (a table's own), the
    /// row's envelope. A row whose join expression is null joins nothing (ksqlDB skips it).
    pub fn encode_keyed(
        &self,
        side: usize,
        columns: &[ArrayRef],
    ) -> Result<Vec<Result<(Bytes, Bytes)>>> {
        let side = side.min(1);
        let keys = self.join_keys(side, columns)?;
        let envelopes = self.envelopes[side].encode(columns)?;
        Ok(keys
            .into_iter()
            .zip(envelopes)
            .map(|(key, envelope)| Ok((key?, envelope?)))
            .collect())
    }

    /// Each row's join expression of a side's `columns`, written in the join key's format
    /// (a null one: an error, the row joins nothing).
    pub fn join_keys(&self, side: usize, columns: &[ArrayRef]) -> Result<Vec<Result<Bytes>>> {
        let side = side.min(1);
        let rows = columns.first().map_or(0, |c| c.len());
        let batch = as_batch(columns, &self.schemas[side], rows)?;
        let key = self.keys[side]
            .evaluate(&batch)
            .and_then(|v| v.into_array(rows))
            .map_err(execution_error)?;
        let key = if key.data_type() == &self.key_type {
            key
        } else {
            arrow::compute::cast(&key, &self.key_type).map_err(arrow_error)?
        };
        let keys = std::slice::from_ref(&key);
        let bound_keys = self.key_encoder.bind(keys)?;
        let mut buf = Vec::new();
        Ok((0..rows)
            .map(|row| {
                buf.clear();
                if !bound_keys.encode(row, &mut buf)? {
                    return Err(KsqlError::Serde(
                        "the join expression is null: the row joins nothing".into(),
                    ));
                }
                Ok(Bytes::copy_from_slice(&buf))
            })
            .collect())
    }

    /// Each row of a side's `columns` (0: left, 1: right) as its envelope; a foreign-key
    /// join's left rows with the key they name first (1 byte: whether there is one, 4: its
    /// length, then it).
    pub fn encode_side(&self, side: usize, columns: &[ArrayRef]) -> Result<Vec<Result<Bytes>>> {
        let envelopes = self.envelopes[side.min(1)].encode(columns)?;
        if side != 0 || !self.foreign_key {
            return Ok(envelopes);
        }
        let keys = self.join_keys(0, columns)?;
        Ok(keys
            .into_iter()
            .zip(envelopes)
            .map(|(key, envelope)| {
                let envelope = envelope?;
                // A null join expression names no row (`join_keys`' error): no key.
                let key = key.ok();
                let length = key.as_ref().map_or(0, Bytes::len);
                let mut out = Vec::with_capacity(5 + length + envelope.len());
                out.push(u8::from(key.is_some()));
                out.extend_from_slice(&(length as u32).to_be_bytes());
                out.extend_from_slice(key.as_deref().unwrap_or_default());
                out.extend_from_slice(&envelope);
                Ok(Bytes::from(out))
            })
            .collect())
    }

    /// The result row of a left row joined with a right row (none: a left join's unmatched
    /// row): its columns (one row each, of the result's canonical types), or none if it does
    /// not pass `WHERE`.
    pub fn joined(
        &self,
        left: Option<&[u8]>,
        right: Option<&[u8]>,
        output: &[(OutputColumn, DataType)],
    ) -> Result<Option<Vec<ArrayRef>>> {
        let left = match (left, self.foreign_key) {
            (Some(bytes), true) => Some(
                split_foreign_key(bytes)
                    .map(|(_, envelope)| &bytes[envelope])
                    .ok_or_else(|| KsqlError::Serde("a foreign-key join row cut short".into()))?,
            ),
            (left, _) => left,
        };
        let mut columns = self.envelopes[0].decode(left)?;
        columns.extend(self.envelopes[1].decode(right)?);
        let batch = as_batch(&columns, &self.joined_schema, 1)?;
        let (batch, kept) = super::run_on_row(&self.after, batch)?;
        if !kept {
            return Ok(None);
        }
        super::aggregate::canonical(&batch, output).map(Some)
    }

    /// Left rows that crossed a repartition topic as envelopes joined with the table's at
    /// once (see [`JoinStage::joined_batch`]): the result's columns and each result row's
    /// left row.
    pub fn joined_envelopes(
        &self,
        lefts: &[Bytes],
        rights: &[Option<Bytes>],
        output: &[(OutputColumn, DataType)],
    ) -> Result<(Vec<ArrayRef>, Vec<u32>)> {
        let left = self.envelopes[0].decode_all(lefts.iter().map(|l| Some(&l[..])))?;
        self.joined_batch(&left, rights, output)
    }

    /// A run's left rows joined with the table at once: `left` (the left side's result
    /// columns), for each of its rows the table's row (envelope) of its join key (none:
    /// none found). The result's columns (canonical types) and, for each result row, the
    /// index of its left row.
    pub fn joined_batch(
        &self,
        left: &[ArrayRef],
        rights: &[Option<Bytes>],
        output: &[(OutputColumn, DataType)],
    ) -> Result<(Vec<ArrayRef>, Vec<u32>)> {
        // An inner join keeps the rows that found theirs; a left join every row.
        let rows: Vec<u32> = (0..rights.len() as u32)
            .filter(|&i| self.kind != JoinKind::Inner || rights[i as usize].is_some())
            .collect();
        let indices = arrow::array::UInt32Array::from(rows.clone());
        let mut columns = left
            .iter()
            .map(|c| arrow::compute::take(c, &indices, None).map_err(arrow_error))
            .collect::<Result<Vec<_>>>()?;
        columns.extend(
            self.envelopes[1].decode_all(rows.iter().map(|&i| rights[i as usize].as_deref()))?,
        );
        let batch = as_batch(&columns, &self.joined_schema, rows.len())?;
        let (batch, rows) = super::run_steps(&self.after, batch, rows)?;
        Ok((super::aggregate::canonical(&batch, output)?, rows))
    }
}

/// A foreign-key join's left envelope cut: where its key is (none: null) and where the
/// envelope itself is; none if it is cut short.
fn split_foreign_key(
    bytes: &[u8],
) -> Option<(Option<std::ops::Range<usize>>, std::ops::RangeFrom<usize>)> {
    let (&present, rest) = bytes.split_first()?;
    let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let end = 5usize.checked_add(length)?;
    if end > bytes.len() {
        return None;
    }
    Some(((present == 1).then_some(5..end), end..))
}

/// A joined pair of envelopes in one value (a foreign-key join's table holds them so): the
/// left's length (4 bytes), the left, whether there is a right (1 byte), the right.
pub fn encode_pair(left: &[u8], right: Option<&[u8]>) -> Bytes {
    let mut out = Vec::with_capacity(5 + left.len() + right.map_or(0, <[u8]>::len));
    out.extend_from_slice(&(left.len() as u32).to_be_bytes());
    out.extend_from_slice(left);
    out.push(u8::from(right.is_some()));
    out.extend_from_slice(right.unwrap_or_default());
    Bytes::from(out)
}

/// [`encode_pair`]'s pair back (none if cut short).
pub fn decode_pair(bytes: &Bytes) -> Option<(Bytes, Option<Bytes>)> {
    let length = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(length)?;
    let left = bytes.get(4..end).map(|_| bytes.slice(4..end))?;
    let right = match bytes.get(end)? {
        1 => Some(bytes.slice(end + 1..)),
        _ => None,
    };
    Some((left, right))
}

/// `columns` (canonical types) as a batch of `schema` (DataFusion's types for them).
fn as_batch(columns: &[ArrayRef], schema: &SchemaRef, rows: usize) -> Result<RecordBatch> {
    if columns.len() != schema.fields().len() {
        return Err(KsqlError::statement(format!(
            "a join side made {} columns where its plan has {}",
            columns.len(),
            schema.fields().len()
        )));
    }
    let columns = columns
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type()).map_err(arrow_error)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(arrow_error)
}

/// Whether two expressions are the same column (its source's qualifier and name).
fn same_column(a: &datafusion_expr::Expr, b: &datafusion_expr::Expr) -> bool {
    match (strip(a), strip(b)) {
        (datafusion_expr::Expr::Column(a), datafusion_expr::Expr::Column(b)) => a == b,
        _ => false,
    }
}

fn strip(expr: &datafusion_expr::Expr) -> &datafusion_expr::Expr {
    match expr {
        datafusion_expr::Expr::Alias(alias) => strip(&alias.expr),
        other => other,
    }
}

/// The steps of the plan above its join node, bottom first.
fn steps_above(plan: &LogicalPlan, props: &ExecutionProps) -> Result<Vec<Step>> {
    if let LogicalPlan::Join(_) = plan {
        return Ok(Vec::new());
    }
    let mut steps = match plan.inputs().first() {
        Some(input) => steps_above(input, props)?,
        None => return Err(KsqlError::statement("a join's plan without its join")),
    };
    steps.extend(compile_node(plan, props)?);
    Ok(steps)
}

/// The output columns of a side: its plan's fields, in ksqlDB types.
pub(super) fn side_columns(plan: &LogicalPlan) -> Result<Vec<(OutputColumn, DataType)>> {
    plan.schema()
        .fields()
        .iter()
        .map(|f| {
            let ty = sql_type(f.data_type()).ok_or_else(|| {
                KsqlError::statement(format!(
                    "Column {} has a type ksqlDB cannot hold: {}",
                    f.name(),
                    f.data_type()
                ))
            })?;
            let arrow = arrow_type(&ty)?;
            Ok((
                OutputColumn {
                    name: f.name().clone(),
                    ty,
                    key: false,
                },
                arrow,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_key_envelopes_and_pairs_come_apart_as_they_were_put_together() {
        let pair = encode_pair(b"{\"C0\":1}", Some(b"{}"));
        assert_eq!(
            decode_pair(&pair),
            Some((
                Bytes::from_static(b"{\"C0\":1}"),
                Some(Bytes::from_static(b"{}"))
            ))
        );
        let alone = encode_pair(b"x", None);
        assert_eq!(decode_pair(&alone), Some((Bytes::from_static(b"x"), None)));
        assert_eq!(decode_pair(&Bytes::from_static(&[0, 0, 0, 9, 1])), None);

        let mut envelope = vec![1, 0, 0, 0, 2, b'k', b'1'];
        envelope.extend_from_slice(b"{}");
        let envelope = Bytes::from(envelope);
        assert_eq!(
            JoinStage::foreign_key_of(&envelope),
            Some(Bytes::from_static(b"k1"))
        );
        assert_eq!(
            split_foreign_key(&envelope).map(|(_, e)| &envelope[e]),
            Some(&b"{}"[..])
        );
        let null = Bytes::from_static(&[0, 0, 0, 0, 0, b'{', b'}']);
        assert_eq!(JoinStage::foreign_key_of(&null), None);
        assert_eq!(split_foreign_key(&[1, 0, 0, 0, 9]), None);
    }
}
