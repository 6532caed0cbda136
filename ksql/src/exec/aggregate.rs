//! `GROUP BY` queries: DataFusion's `Aggregate` node cut into the three stages of a Streams
//! aggregation, as ksqlDB builds it.
//!
//! 1. Before (on Arrow batches, with the query's `WHERE` and projections): each row's
//!    `GROUP BY` values become its key and its aggregates' arguments its value, both in
//!    [`codec`]'s encoding; rows whose group has a null are skipped, as ksqlDB skips them.
//! 2. The records go through a repartition topic (`Aggregate-GroupBy`) unless they are
//!    grouped by the source's key already, then each key's aggregate states are folded in
//!    the store `Aggregate-Aggregate-Materialize` (logged to its changelog, cached).
//! 3. After (per update of the table): the group's values and the aggregates' results as a
//!    one-row batch, through the plan above the aggregate (`HAVING`, the projection); a row
//!    that fails `HAVING` is a delete of its key.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use bytes::Bytes;
use datafusion_common::{DFSchema, ScalarValue};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::logical_plan::Aggregate;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_physical_expr::{create_physical_expr, PhysicalExpr};

use super::{arrow_error, compile_node, execution_error, Step};
use crate::aggregate::{codec, AggregateFn, Aggregator, State};
use crate::error::{KsqlError, Result};
use crate::metastore::DataSource;
use crate::plan::catalog::planning_error;
use crate::plan::OutputColumn;

/// A group's `ROWTIME` before its first record.
const NO_ROWTIME: i64 = i64::MIN;

/// The stages of a `GROUP BY` query around the store.
pub struct AggregateStage {
    /// The `GROUP BY` expressions, over the rows before the aggregate.
    group: Vec<Arc<dyn PhysicalExpr>>,
    /// Each aggregate's column argument (none for `COUNT(*)`).
    args: Vec<Option<Arc<dyn PhysicalExpr>>>,
    aggregators: Vec<Aggregator>,
    /// Whether the rows must be repartitioned by their group.
    repartition: bool,
    /// The aggregate's output: the group's columns, then the aggregates'.
    schema: SchemaRef,
    /// The plan above the aggregate (`HAVING`, the projection).
    after: Vec<Step>,
    /// The windows of a windowed aggregation.
    window: Option<Windowing>,
}

/// How a windowed aggregation cuts time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// `TUMBLING` (advance = size) or `HOPPING` windows.
    Time {
        /// Size, ms.
        size_ms: u64,
        /// How far apart windows start, ms.
        advance_ms: u64,
    },
    /// `SESSION` windows.
    Session {
        /// The inactivity gap, ms.
        gap_ms: u64,
    },
}

/// A windowed aggregation's windows, grace, retention and emission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windowing {
    /// The windows.
    pub spec: WindowSpec,
    /// `GRACE PERIOD` (ksqlDB's default: 24 hours, Kafka Streams' old default).
    pub grace_ms: u64,
    /// `RETENTION`, if given.
    pub retention_ms: Option<u64>,
    /// `EMIT FINAL`.
    pub emit_final: bool,
}

/// The grace period of a window without `GRACE PERIOD` (ksqlDB 0.29 keeps Kafka Streams'
/// deprecated 24 hours).
const DEFAULT_GRACE_MS: u64 = 24 * 3600 * 1000;

impl Windowing {
    /// The windowing of `window`.
    pub fn of(window: &crate::parser::ast::Window, emit_final: bool) -> Windowing {
        use crate::parser::ast::WindowKind;
        let ms = |d: &std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let spec = match &window.kind {
            WindowKind::Tumbling { size } => WindowSpec::Time {
                size_ms: ms(size),
                advance_ms: ms(size),
            },
            WindowKind::Hopping { size, advance } => WindowSpec::Time {
                size_ms: ms(size),
                advance_ms: ms(advance),
            },
            WindowKind::Session { gap } => WindowSpec::Session { gap_ms: ms(gap) },
        };
        Windowing {
            spec,
            grace_ms: window.grace.as_ref().map_or(DEFAULT_GRACE_MS, ms),
            retention_ms: window.retention.as_ref().map(ms),
            emit_final,
        }
    }

    /// The sink's `WINDOW_TYPE` and `WINDOW_SIZE`.
    pub fn info(&self) -> crate::metastore::WindowInfo {
        match self.spec {
            WindowSpec::Time {
                size_ms,
                advance_ms,
            } => crate::metastore::WindowInfo {
                kind: if size_ms == advance_ms {
                    "TUMBLING"
                } else {
                    "HOPPING"
                }
                .to_string(),
                size_ms: Some(size_ms),
            },
            WindowSpec::Session { .. } => crate::metastore::WindowInfo {
                kind: "SESSION".to_string(),
                size_ms: None,
            },
        }
    }
}

impl AggregateStage {
    /// The stage of `aggregate`, the plan's steps above it being `after`.
    pub(super) fn compile(
        aggregate: &Aggregate,
        after: Vec<Step>,
        (source, window): (&DataSource, Option<Windowing>),
        props: &ExecutionProps,
    ) -> Result<AggregateStage> {
        let input = aggregate.input.schema();
        let physical = |expr: &datafusion_expr::Expr, schema: &DFSchema| {
            create_physical_expr(expr, schema, props, &PhysicalPlanningContext::default())
                .map_err(planning_error)
        };
        let group = aggregate
            .group_expr
            .iter()
            .map(|e| physical(e, input))
            .collect::<Result<Vec<_>>>()?;
        for (expr, field) in aggregate.group_expr.iter().zip(aggregate.schema.fields()) {
            if !codec::supports(field.data_type()) {
                return Err(KsqlError::statement(format!(
                    "Sluice's ksql cannot GROUP BY {expr} yet: its type is not a primitive type"
                )));
            }
        }
        let mut args = Vec::new();
        let mut aggregators = Vec::new();
        for expr in &aggregate.aggr_expr {
            let datafusion_expr::Expr::AggregateFunction(call) = strip_alias(expr) else {
                return Err(KsqlError::statement(format!(
                    "not an aggregate function: {expr}"
                )));
            };
            let name = call.func.name();
            let function = AggregateFn::by_name(name).ok_or_else(|| {
                KsqlError::statement(format!("Can't find any functions with the name '{name}'"))
            })?;
            if call.params.distinct || call.params.filter.is_some() {
                return Err(KsqlError::statement(format!(
                    "{name}: DISTINCT and FILTER are not ksqlDB's syntax (use COUNT_DISTINCT)"
                )));
            }
            let types = call
                .params
                .args
                .iter()
                .map(|a| datafusion_expr::ExprSchemable::get_type(a, input))
                .collect::<datafusion_common::Result<Vec<_>>>()
                .map_err(planning_error)?;
            let literals: Vec<Option<ScalarValue>> = call
                .params
                .args
                .iter()
                .map(|a| match strip_alias(a) {
                    datafusion_expr::Expr::Literal(v, _) => Some(v.clone()),
                    _ => None,
                })
                .collect();
            if let Some((at, arg)) = call
                .params
                .args
                .iter()
                .enumerate()
                .skip(1)
                .find(|(at, _)| literals[*at].is_none())
            {
                return Err(KsqlError::statement(format!(
                    "Parameter {} passed to function {} must be a literal constant, but was expression: '{}'",
                    at + 1,
                    function.message_name(),
                    arg.to_string().replace(['"', '#'], "")
                )));
            }
            if let Some(t) = types.first() {
                if !codec::supports(t) {
                    return Err(KsqlError::statement(format!(
                        "Function '{name}' does not accept parameters of type {t} yet in Sluice's ksql"
                    )));
                }
            }
            let aggregator = Aggregator::new(function, &types, &literals)?;
            args.push(match call.params.args.first() {
                Some(first) if aggregator.column_count() == 1 => Some(physical(first, input)?),
                _ => None,
            });
            aggregators.push(aggregator);
        }
        if source.kind == crate::parser::ast::SourceKind::Table {
            // A table's row that changes leaves its group: only functions that can take a
            // value back out aggregate tables (ksqlDB's rule, in its words).
            let mut refused: Vec<&str> = Vec::new();
            for aggregator in &aggregators {
                let function = aggregator.function();
                let internal = AggregateFn::WINDOW_BOUNDS.contains(&function);
                if !function.undoable() && !internal && !refused.contains(&function.name()) {
                    refused.push(function.name());
                }
            }
            if !refused.is_empty() {
                let names = match refused.split_last() {
                    Some((last, [])) => last.to_string(),
                    Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                    None => String::new(),
                };
                return Err(KsqlError::statement(format!(
                    "The aggregation function{} {names} cannot be applied to a table source, only to a stream source.",
                    if refused.len() == 1 { "" } else { "s" }
                )));
            }
        }
        // Grouped by exactly the source's key columns, the records are where their groups
        // are already (ksqlDB skips the repartition too); a table's rows always move.
        let keys = source.key_names();
        let by_key = aggregate.group_expr.len() == keys.len()
            && aggregate.group_expr.iter().zip(&keys).all(
                |(e, k)| matches!(strip_alias(e), datafusion_expr::Expr::Column(c) if c.name == *k),
            );
        Ok(AggregateStage {
            group,
            args,
            aggregators,
            repartition: !by_key || source.kind == crate::parser::ast::SourceKind::Table,
            schema: Arc::new(aggregate.schema.as_arrow().clone()),
            after,
            window,
        })
    }

    /// The key of the group whose `GROUP BY` values are `values` (of a pull query's key
    /// look-up), as the store holds it; none if a value cannot be of its group's type.
    pub fn group_key(&self, values: &[ScalarValue]) -> Option<Bytes> {
        if values.len() != self.group.len() {
            return None;
        }
        let mut key = Vec::new();
        codec::put_len(&mut key, values.len());
        for (value, field) in values.iter().zip(self.schema.fields()) {
            let value = value.cast_to(field.data_type()).ok()?;
            if value.is_null() {
                return None;
            }
            codec::put_value(&mut key, &value).ok()?;
        }
        Some(Bytes::from(key))
    }

    /// How many `GROUP BY` expressions it has.
    pub fn group_count(&self) -> usize {
        self.group.len()
    }

    /// The windows of a windowed aggregation.
    pub fn windowing(&self) -> Option<&Windowing> {
        self.window.as_ref()
    }

    /// Merges session `b` (later) into session `a`, for a record bridging them.
    pub fn merge(&self, a: Vec<State>, b: Vec<State>) -> Vec<State> {
        let rowtime = self.rowtime(&a).max(self.rowtime(&b));
        let mut merged: Vec<State> = self
            .aggregators
            .iter()
            .zip(a.into_iter().zip(b))
            .map(|(aggregator, (a, b))| aggregator.merge(a, b))
            .collect();
        merged.push(State::Count(rowtime.unwrap_or(NO_ROWTIME)));
        merged
    }

    /// Whether the rows go through a repartition topic.
    pub fn repartitions(&self) -> bool {
        self.repartition
    }

    /// Each row's group and arguments, as columns: the `GROUP BY` values, then each
    /// aggregate's argument (for those that take one), then the row's `timestamps` (the
    /// group's `ROWTIME` is the latest).
    pub(super) fn inputs(
        &self,
        batch: &RecordBatch,
        timestamps: Vec<i64>,
    ) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        let mut columns = self
            .group
            .iter()
            .chain(self.args.iter().flatten())
            .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<datafusion_common::Result<Vec<_>>>()
            .map_err(execution_error)?;
        columns.push(Arc::new(arrow::array::Int64Array::from(timestamps)));
        Ok(columns)
    }

    /// Each row of `columns` (what [`AggregateStage::inputs`] made) as the key (its group)
    /// and value (its arguments) of a record; a row whose group has a null cannot be.
    pub fn encode_inputs(&self, columns: &[ArrayRef]) -> Result<Vec<Result<(Bytes, Bytes)>>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let groups = self.group.len();
        let mut out = Vec::with_capacity(rows);
        let mut key = Vec::new();
        let mut value = Vec::new();
        for row in 0..rows {
            let encoded = (|| {
                key.clear();
                value.clear();
                codec::put_len(&mut key, groups);
                for (at, column) in columns[..groups].iter().enumerate() {
                    if column.is_null(row) {
                        return Err(KsqlError::Serde(format!(
                            "Group-by column with index {at} resolved to null. The source row will be excluded from the table."
                        )));
                    }
                    let v = ScalarValue::try_from_array(column, row).map_err(execution_error)?;
                    codec::put_value(&mut key, &v)?;
                }
                codec::put_len(&mut value, columns.len() - groups);
                for column in &columns[groups..] {
                    let v = ScalarValue::try_from_array(column, row).map_err(execution_error)?;
                    codec::put_value(&mut value, &v)?;
                }
                Ok((Bytes::copy_from_slice(&key), Bytes::copy_from_slice(&value)))
            })();
            out.push(encoded);
        }
        Ok(out)
    }

    /// The states before a group's first row: each aggregator's, then the group's
    /// `ROWTIME` (none yet).
    pub fn initial(&self) -> Vec<State> {
        let mut states: Vec<State> = self.aggregators.iter().map(|a| a.initial()).collect();
        states.push(State::Count(NO_ROWTIME));
        states
    }

    /// The `ROWTIME` of a group's row, kept after its aggregators' states: the latest
    /// timestamp of the records folded in (Kafka Streams' aggregation timestamp).
    pub fn rowtime(&self, states: &[State]) -> Option<i64> {
        match states.get(self.aggregators.len()) {
            Some(State::Count(t)) if *t != NO_ROWTIME => Some(*t),
            _ => None,
        }
    }

    /// Folds a record's arguments (encoded by [`AggregateStage::encode_inputs`]) into its
    /// group's states.
    pub fn fold(&self, states: &mut [State], args: &[u8]) -> Result<()> {
        self.apply(states, args, Aggregator::add, true)
    }

    /// Takes a table row's arguments (as [`AggregateStage::fold`] took them) back out of its
    /// group's states: the row changed or was deleted.
    pub fn undo(&self, states: &mut [State], args: &[u8]) -> Result<()> {
        self.apply(states, args, Aggregator::undo, false)
    }

    fn apply(
        &self,
        states: &mut [State],
        args: &[u8],
        step: impl Fn(&Aggregator, &mut State, Option<&ScalarValue>),
        adding: bool,
    ) -> Result<()> {
        if states.len() != self.aggregators.len() + 1 {
            return Err(KsqlError::Serde(
                "an aggregation's state does not match its query".into(),
            ));
        }
        let values = codec::decode_row(args)?;
        let mut values = values.iter();
        for (aggregator, state) in self.aggregators.iter().zip(states.iter_mut()) {
            let value = if aggregator.column_count() == 1 {
                Some(values.next().ok_or_else(|| {
                    KsqlError::Serde("an aggregation record has too few arguments".into())
                })?)
            } else {
                None
            };
            step(aggregator, state, value);
        }
        // The record's timestamp comes last (see `CompiledQuery::evaluate`); a row taken
        // back out leaves the group's time as it is, as in Kafka Streams.
        if adding {
            if let (Some(ScalarValue::Int64(Some(t))), Some(State::Count(rowtime))) =
                (values.next(), states.last_mut())
            {
                *rowtime = (*rowtime).max(*t);
            }
        }
        Ok(())
    }

    /// The result row of a group (`key`, as encoded) with `states` (in `window`, for a
    /// windowed aggregation): the columns of the plan above the aggregate, one row each,
    /// and whether the row passes `HAVING` (if not, the group's row is deleted).
    pub fn result(
        &self,
        key: &[u8],
        states: &[State],
        window: Option<(i64, i64)>,
    ) -> Result<(RecordBatch, bool)> {
        let group = codec::decode_row(key)?;
        if group.len() != self.group.len() || states.len() != self.aggregators.len() + 1 {
            return Err(KsqlError::Serde(
                "an aggregation's key or state does not match its query".into(),
            ));
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let results = self
            .aggregators
            .iter()
            .zip(states)
            .map(|(a, s)| a.result(s, window))
            .collect::<Result<Vec<_>>>()?;
        for (value, field) in group.iter().chain(&results).zip(self.schema.fields()) {
            let array = value.to_array_of_size(1).map_err(execution_error)?;
            columns.push(if array.data_type() == field.data_type() {
                array
            } else {
                arrow::compute::cast(&array, field.data_type()).map_err(arrow_error)?
            });
        }
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .map_err(arrow_error)?;
        let (batch, kept) = super::run_on_row(&self.after, batch)?;
        Ok((batch, kept))
    }
}

/// The plan above the aggregate, compiled, and the aggregate; none if the plan does not
/// aggregate.
pub(super) fn split(
    plan: &datafusion_expr::LogicalPlan,
    props: &ExecutionProps,
) -> Result<Option<(Vec<Step>, Aggregate)>> {
    use datafusion_expr::LogicalPlan;
    match plan {
        LogicalPlan::Aggregate(aggregate) => Ok(Some((Vec::new(), aggregate.clone()))),
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
            let Some(input) = plan.inputs().first().copied() else {
                return Ok(None);
            };
            let Some((mut steps, aggregate)) = split(input, props)? else {
                return Ok(None);
            };
            steps.extend(compile_node(plan, props)?);
            Ok(Some((steps, aggregate)))
        }
        _ => Ok(None),
    }
}

fn strip_alias(expr: &datafusion_expr::Expr) -> &datafusion_expr::Expr {
    match expr {
        datafusion_expr::Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

/// The output columns of a grouped query, cast to their canonical types.
pub(super) fn canonical(
    batch: &RecordBatch,
    output: &[(OutputColumn, DataType)],
) -> Result<Vec<ArrayRef>> {
    if batch.num_columns() != output.len() {
        return Err(KsqlError::statement(format!(
            "the query made {} columns where {} were planned",
            batch.num_columns(),
            output.len()
        )));
    }
    batch
        .columns()
        .iter()
        .zip(output)
        .map(|(array, (_, ty))| {
            if array.data_type() == ty {
                Ok(array.clone())
            } else {
                arrow::compute::cast(array, ty).map_err(arrow_error)
            }
        })
        .collect()
}
