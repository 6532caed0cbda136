//! ksqlDB's aggregate functions (`COUNT`, `SUM`, `COLLECT_LIST`, `LATEST_BY_OFFSET`, ...):
//! their signatures for DataFusion's planner, and their states, folded one row at a time
//! in a Streams aggregation's store.
//!
//! They are ksqlDB's rather than DataFusion's: ksqlDB's types (`SUM` of `INT`s is an `INT`)
//! and null rules (`SUM` of nothing is 0) differ from DataFusion's, and a streaming
//! aggregation keeps one small state per key in a store, encoded by [`codec`], rather than
//! DataFusion's batch accumulators.

pub mod codec;

use std::hash::Hasher;

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion_common::{plan_err, ScalarValue};
use datafusion_expr::function::AccumulatorArgs;
use datafusion_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use crate::error::{KsqlError, Result};
use codec::Reader;

/// A ksqlDB aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateFn {
    /// `COUNT(*)`, `COUNT(col)`.
    Count,
    /// `COUNT_DISTINCT(col)`.
    CountDistinct,
    /// `SUM(col)`.
    Sum,
    /// `AVG(col)`.
    Avg,
    /// `MIN(col)`.
    Min,
    /// `MAX(col)`.
    Max,
    /// `COLLECT_LIST(col)`.
    CollectList,
    /// `COLLECT_SET(col)`.
    CollectSet,
    /// `TOPK(col, k)`.
    TopK,
    /// `TOPKDISTINCT(col, k)`.
    TopKDistinct,
    /// `EARLIEST_BY_OFFSET(col [, n] [, ignoreNulls])`.
    EarliestByOffset,
    /// `LATEST_BY_OFFSET(col [, n] [, ignoreNulls])`.
    LatestByOffset,
    /// `HISTOGRAM(col)`.
    Histogram,
    /// `WINDOWSTART` in a windowed aggregation's projection or `HAVING`: the window's start
    /// (the planner's rewrite, not callable by name).
    WindowStart,
    /// `WINDOWEND`, likewise.
    WindowEnd,
}

/// How many distinct values `HISTOGRAM` counts (ksqlDB's fixed limit; `COLLECT_LIST` and
/// `COLLECT_SET` have none unless configured, and Sluice does not configure them yet).
pub const HISTOGRAM_LIMIT: usize = 1000;

impl AggregateFn {
    /// Every aggregate function.
    pub const ALL: [AggregateFn; 13] = [
        AggregateFn::Count,
        AggregateFn::CountDistinct,
        AggregateFn::Sum,
        AggregateFn::Avg,
        AggregateFn::Min,
        AggregateFn::Max,
        AggregateFn::CollectList,
        AggregateFn::CollectSet,
        AggregateFn::TopK,
        AggregateFn::TopKDistinct,
        AggregateFn::EarliestByOffset,
        AggregateFn::LatestByOffset,
        AggregateFn::Histogram,
    ];

    /// ksqlDB's name.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFn::Count => "COUNT",
            AggregateFn::CountDistinct => "COUNT_DISTINCT",
            AggregateFn::Sum => "SUM",
            AggregateFn::Avg => "AVG",
            AggregateFn::Min => "MIN",
            AggregateFn::Max => "MAX",
            AggregateFn::CollectList => "COLLECT_LIST",
            AggregateFn::CollectSet => "COLLECT_SET",
            AggregateFn::TopK => "TOPK",
            AggregateFn::TopKDistinct => "TOPKDISTINCT",
            AggregateFn::EarliestByOffset => "EARLIEST_BY_OFFSET",
            AggregateFn::LatestByOffset => "LATEST_BY_OFFSET",
            AggregateFn::Histogram => "HISTOGRAM",
            AggregateFn::WindowStart => "KSQL_WINDOWSTART",
            AggregateFn::WindowEnd => "KSQL_WINDOWEND",
        }
    }

    /// What it computes (`SHOW FUNCTIONS`, `DESCRIBE FUNCTION`).
    pub fn description(self) -> &'static str {
        match self {
            AggregateFn::Count => "Counts records (COUNT(*)) or the non-null values of a column.",
            AggregateFn::CountDistinct => "Counts the distinct non-null values of a column.",
            AggregateFn::Sum => "Sums a column's non-null values (0 when there are none).",
            AggregateFn::Avg => "The average of a column's non-null values, as a DOUBLE (0.0 when there are none).",
            AggregateFn::Min => "The least non-null value of a column.",
            AggregateFn::Max => "The greatest non-null value of a column.",
            AggregateFn::CollectList => "The values of a column, nulls too, in order, as an ARRAY.",
            AggregateFn::CollectSet => "The distinct values of a column, in order of first sight, as an ARRAY.",
            AggregateFn::TopK => "The k greatest non-null values of a column, greatest first.",
            AggregateFn::TopKDistinct => "The k greatest distinct non-null values of a column, greatest first.",
            AggregateFn::EarliestByOffset => "The earliest value of a column (or the n earliest, as an ARRAY), nulls skipped unless asked.",
            AggregateFn::LatestByOffset => "The latest value of a column (or the n latest, as an ARRAY), nulls skipped unless asked.",
            AggregateFn::Histogram => "How many times each distinct STRING value occurs, as a MAP (at most 1000 entries).",
            AggregateFn::WindowStart => "The start of the row's window.",
            AggregateFn::WindowEnd => "The end of the row's window.",
        }
    }

    /// The window bounds, which a windowed aggregation's `WINDOWSTART` and `WINDOWEND`
    /// become.
    pub const WINDOW_BOUNDS: [AggregateFn; 2] = [AggregateFn::WindowStart, AggregateFn::WindowEnd];

    /// The function called `name` (any case), the window bounds' internal names too.
    pub fn by_name(name: &str) -> Option<AggregateFn> {
        AggregateFn::ALL
            .into_iter()
            .chain(AggregateFn::WINDOW_BOUNDS)
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// Whether it can aggregate a table (its values retracted when a row changes):
    /// ksqlDB's table UDAFs.
    pub fn undoable(self) -> bool {
        matches!(
            self,
            AggregateFn::Count
                | AggregateFn::Sum
                | AggregateFn::Avg
                | AggregateFn::CollectList
                | AggregateFn::Histogram
        )
    }

    /// The name ksqlDB's messages give it (some are lower case there).
    pub fn message_name(self) -> &'static str {
        match self {
            AggregateFn::Avg => "avg",
            AggregateFn::CollectList => "collect_list",
            AggregateFn::CollectSet => "collect_set",
            AggregateFn::Histogram => "histogram",
            other => other.name(),
        }
    }

    /// The DataFusion aggregate UDF planning calls to it.
    pub fn udf(self) -> AggregateUDF {
        AggregateUDF::new_from_impl(KsqlAggregate {
            function: self,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }

    /// The column arguments and literal parameters it takes, checked: the types the
    /// arguments are cast to. `args` are the argument types as planned.
    fn coerce(self, args: &[DataType]) -> std::result::Result<Vec<DataType>, String> {
        let refuse = || {
            Err(format!(
                "Function '{}' does not accept parameters ({}).",
                self.message_name(),
                args.iter().map(type_name).collect::<Vec<_>>().join(", ")
            ))
        };
        // Small integers (from functions) count as INT.
        let widen = |t: &DataType| match t {
            DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => {
                DataType::Int32
            }
            DataType::Float32 | DataType::Float16 => DataType::Float64,
            other => other.clone(),
        };
        let first = args.first().map(widen);
        let numeric = |t: &DataType| {
            matches!(
                t,
                DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(..)
            )
        };
        let comparable = |t: &DataType| {
            numeric(t)
                || matches!(
                    t,
                    DataType::Utf8
                        | DataType::Binary
                        | DataType::Date32
                        | DataType::Time32(TimeUnit::Millisecond)
                        | DataType::Timestamp(TimeUnit::Millisecond, None)
                )
        };
        let primitive = |t: &DataType| comparable(t) || *t == DataType::Boolean;
        let integer = |t: &DataType| matches!(t, DataType::Int32 | DataType::Int64);
        match (self, args.len()) {
            (AggregateFn::Count, 0) => Ok(Vec::new()),
            (AggregateFn::Count, 1) => Ok(args.to_vec()),
            (AggregateFn::CountDistinct, 1) if first.as_ref().is_some_and(primitive) => {
                Ok(vec![widen(&args[0])])
            }
            (AggregateFn::Sum, 1) if first.as_ref().is_some_and(numeric) => {
                Ok(vec![widen(&args[0])])
            }
            // ksqlDB's AVG has no DECIMAL overload.
            (AggregateFn::Avg, 1)
                if first
                    .as_ref()
                    .is_some_and(|t| numeric(t) && !matches!(t, DataType::Decimal128(..))) =>
            {
                Ok(vec![widen(&args[0])])
            }
            (AggregateFn::Min | AggregateFn::Max, 1) if first.as_ref().is_some_and(comparable) => {
                Ok(vec![widen(&args[0])])
            }
            (AggregateFn::CollectList | AggregateFn::CollectSet, 1)
                if first.as_ref().is_some_and(primitive) =>
            {
                Ok(vec![widen(&args[0])])
            }
            (AggregateFn::TopK, 2)
                if first.as_ref().is_some_and(|t| {
                    matches!(
                        t,
                        DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Utf8
                    )
                }) && integer(&args[1]) =>
            {
                Ok(vec![widen(&args[0]), DataType::Int32])
            }
            (AggregateFn::TopKDistinct, 2)
                if first.as_ref().is_some_and(comparable) && integer(&args[1]) =>
            {
                Ok(vec![widen(&args[0]), DataType::Int32])
            }
            (AggregateFn::EarliestByOffset | AggregateFn::LatestByOffset, 1..=3)
                if first.as_ref().is_some_and(primitive) =>
            {
                let mut out = vec![widen(&args[0])];
                match &args[1..] {
                    [] => {}
                    [DataType::Boolean] => out.push(DataType::Boolean),
                    [n] if integer(n) => out.push(DataType::Int32),
                    [n, DataType::Boolean] if integer(n) => {
                        out.extend([DataType::Int32, DataType::Boolean])
                    }
                    _ => return refuse(),
                }
                Ok(out)
            }
            (AggregateFn::Histogram, 1) if first == Some(DataType::Utf8) => Ok(args.to_vec()),
            (AggregateFn::WindowStart | AggregateFn::WindowEnd, 0) => Ok(Vec::new()),
            _ => refuse(),
        }
    }

    /// Its signatures for `DESCRIBE FUNCTION`: the argument lists it takes among ksqlDB's
    /// primitive types (and an `INT` or `BOOLEAN` parameter after), with their results.
    pub(crate) fn variations(self) -> Vec<crate::plan::functions::Variation> {
        let primitives = [
            DataType::Int32,
            DataType::Int64,
            DataType::Float64,
            DataType::Decimal128(10, 2),
            DataType::Utf8,
            DataType::Boolean,
            DataType::Binary,
            DataType::Date32,
            DataType::Time32(TimeUnit::Millisecond),
            DataType::Timestamp(TimeUnit::Millisecond, None),
        ];
        let mut candidates: Vec<Vec<DataType>> = vec![Vec::new()];
        for t in &primitives {
            candidates.push(vec![t.clone()]);
            candidates.push(vec![t.clone(), DataType::Int32]);
            candidates.push(vec![t.clone(), DataType::Boolean]);
            candidates.push(vec![t.clone(), DataType::Int32, DataType::Boolean]);
        }
        candidates
            .into_iter()
            .filter_map(|args| {
                let coerced = self.coerce(&args).ok()?;
                (coerced == args).then(|| crate::plan::functions::Variation {
                    args: args
                        .iter()
                        .map(crate::plan::functions::describe_type)
                        .collect(),
                    variadic: false,
                    returns: crate::plan::functions::describe_type(&self.result_type(&args)),
                })
            })
            .collect()
    }

    /// Its result's type, given its (coerced) argument types.
    fn result_type(self, args: &[DataType]) -> DataType {
        let first = args.first().cloned().unwrap_or(DataType::Null);
        let list = |t: DataType| DataType::List(std::sync::Arc::new(Field::new("item", t, true)));
        match self {
            AggregateFn::Count
            | AggregateFn::CountDistinct
            | AggregateFn::WindowStart
            | AggregateFn::WindowEnd => DataType::Int64,
            AggregateFn::Avg => DataType::Float64,
            AggregateFn::Sum | AggregateFn::Min | AggregateFn::Max => first,
            AggregateFn::CollectList
            | AggregateFn::CollectSet
            | AggregateFn::TopK
            | AggregateFn::TopKDistinct => list(first),
            AggregateFn::EarliestByOffset | AggregateFn::LatestByOffset => {
                if args.get(1) == Some(&DataType::Int32) {
                    list(first)
                } else {
                    first
                }
            }
            AggregateFn::Histogram => crate::format::arrow_type(&crate::parser::ast::SqlType::Map(
                Box::new(crate::parser::ast::SqlType::String),
                Box::new(crate::parser::ast::SqlType::Bigint),
            ))
            .unwrap_or(DataType::Null),
        }
    }
}

/// ksqlDB's name of an Arrow type, for messages.
fn type_name(ty: &DataType) -> String {
    match ty {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 | DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary => "BYTES".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(..) => "TIMESTAMP".into(),
        DataType::List(item) => format!("ARRAY<{}>", type_name(item.data_type())),
        DataType::Map(..) => "MAP".into(),
        DataType::Struct(_) => "STRUCT".into(),
        DataType::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// An aggregate function as DataFusion's planner sees it: its name, argument check and
/// result type. It is never run by DataFusion (the Streams aggregation folds its states).
#[derive(Debug, PartialEq, Eq, Hash)]
struct KsqlAggregate {
    function: AggregateFn,
    signature: Signature,
}

impl AggregateUDFImpl for KsqlAggregate {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> datafusion_common::Result<Vec<DataType>> {
        match self.function.coerce(args) {
            Ok(types) => Ok(types),
            Err(message) => plan_err!("{message}"),
        }
    }

    fn return_type(&self, args: &[DataType]) -> datafusion_common::Result<DataType> {
        Ok(self.function.result_type(args))
    }

    fn accumulator(&self, _: AccumulatorArgs) -> datafusion_common::Result<Box<dyn Accumulator>> {
        plan_err!(
            "{} runs in a streaming aggregation, not in DataFusion's executor",
            self.function.name()
        )
    }
}

/// One aggregate of a query, ready to fold: the function, its argument's type, and its
/// literal parameters.
#[derive(Debug, Clone)]
pub struct Aggregator {
    function: AggregateFn,
    /// The type of its column argument (`Null` for `COUNT(*)`).
    input: DataType,
    /// Its result's type.
    output: DataType,
    /// `TOPK`'s k; `EARLIEST_BY_OFFSET`'s n (None: one value, not a list).
    n: Option<usize>,
    /// `EARLIEST_BY_OFFSET`'s and `LATEST_BY_OFFSET`'s `ignoreNulls` (default true).
    ignore_nulls: bool,
    /// How many column arguments it takes (0 or 1).
    columns: usize,
}

/// The state of one aggregate of one key.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// `COUNT`.
    Count(i64),
    /// `SUM`, `MIN`, `MAX`: the value so far (typed null before any).
    Value(ScalarValue),
    /// `AVG`: the sum and count of the non-null values.
    Avg(ScalarValue, i64),
    /// The values kept, in order (`COLLECT_*`, `TOPK*` greatest first, `*_BY_OFFSET`).
    Values(Vec<ScalarValue>),
    /// `COUNT_DISTINCT`: the values seen, as hashes or a HyperLogLog sketch.
    Distinct(Distinct),
    /// `HISTOGRAM`: each value and its count, in order of first sight.
    Histogram(Vec<(String, i64)>),
}

impl Aggregator {
    /// An aggregator for `function` called with arguments of `types` (after coercion),
    /// `literals` holding the value of each argument that is a literal.
    pub fn new(
        function: AggregateFn,
        types: &[DataType],
        literals: &[Option<ScalarValue>],
    ) -> Result<Aggregator> {
        let output = function.result_type(types);
        let literal_int = |at: usize, what: &str| -> Result<usize> {
            match literals.get(at) {
                Some(Some(ScalarValue::Int32(Some(v)))) if *v > 0 => Ok(*v as usize),
                Some(Some(ScalarValue::Int64(Some(v)))) if *v > 0 => Ok(*v as usize),
                Some(Some(_)) => Err(KsqlError::statement(format!(
                    "Failed to create aggregate function: {what} must be 1 or greater"
                ))),
                _ => Err(not_literal(at, function)),
            }
        };
        let literal_bool = |at: usize| -> Result<bool> {
            match literals.get(at) {
                Some(Some(ScalarValue::Boolean(Some(v)))) => Ok(*v),
                _ => Err(not_literal(at, function)),
            }
        };
        let (mut n, mut ignore_nulls) = (None, true);
        match function {
            AggregateFn::TopK | AggregateFn::TopKDistinct => n = Some(literal_int(1, "k")?),
            AggregateFn::EarliestByOffset | AggregateFn::LatestByOffset => {
                let what = if function == AggregateFn::EarliestByOffset {
                    "earliestN"
                } else {
                    "latestN"
                };
                match types.get(1..).unwrap_or_default() {
                    [DataType::Boolean] => ignore_nulls = literal_bool(1)?,
                    [_] => n = Some(literal_int(1, what)?),
                    [_, _] => {
                        n = Some(literal_int(1, what)?);
                        ignore_nulls = literal_bool(2)?;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(Aggregator {
            function,
            input: types.first().cloned().unwrap_or(DataType::Null),
            output,
            n,
            ignore_nulls,
            columns: usize::from(!types.is_empty()),
        })
    }

    /// How many column arguments it reads from each row (its first argument, or none).
    pub fn column_count(&self) -> usize {
        self.columns
    }

    /// The function.
    pub fn function(&self) -> AggregateFn {
        self.function
    }

    /// Its result's type.
    pub fn output_type(&self) -> &DataType {
        &self.output
    }

    /// The state before any row.
    pub fn initial(&self) -> State {
        match self.function {
            AggregateFn::Count | AggregateFn::WindowStart | AggregateFn::WindowEnd => {
                State::Count(0)
            }
            AggregateFn::Sum => State::Value(zero(&self.input)),
            AggregateFn::Min | AggregateFn::Max => {
                State::Value(ScalarValue::try_from(&self.input).unwrap_or(ScalarValue::Null))
            }
            AggregateFn::Avg => State::Avg(zero(&self.input), 0),
            AggregateFn::CountDistinct => State::Distinct(Distinct::Exact(Vec::new())),
            AggregateFn::Histogram => State::Histogram(Vec::new()),
            AggregateFn::CollectList
            | AggregateFn::CollectSet
            | AggregateFn::TopK
            | AggregateFn::TopKDistinct
            | AggregateFn::EarliestByOffset
            | AggregateFn::LatestByOffset => State::Values(Vec::new()),
        }
    }

    /// Folds one row's value (`None` for `COUNT(*)`) into `state`.
    pub fn add(&self, state: &mut State, value: Option<&ScalarValue>) {
        let null = value.is_none_or(|v| v.is_null());
        match (self.function, state) {
            (AggregateFn::WindowStart | AggregateFn::WindowEnd, _) => {}
            (AggregateFn::Count, State::Count(n)) => {
                if value.is_none() || !null {
                    *n += 1;
                }
            }
            (_, _) if null && !self.keeps_nulls() => {}
            (AggregateFn::Sum, State::Value(sum)) => {
                if let Some(v) = value {
                    *sum = add(sum, v);
                }
            }
            (AggregateFn::Avg, State::Avg(sum, count)) => {
                if let Some(v) = value {
                    *sum = add(sum, v);
                    *count += 1;
                }
            }
            (AggregateFn::Min | AggregateFn::Max, State::Value(best)) => {
                if let Some(v) = value {
                    let better = best.is_null()
                        || match v.partial_cmp(best) {
                            Some(std::cmp::Ordering::Less) => self.function == AggregateFn::Min,
                            Some(std::cmp::Ordering::Greater) => self.function == AggregateFn::Max,
                            _ => false,
                        };
                    if better {
                        *best = v.clone();
                    }
                }
            }
            (AggregateFn::CountDistinct, State::Distinct(distinct)) => {
                if let Some(v) = value {
                    distinct.add(hash_of(v));
                }
            }
            (AggregateFn::Histogram, State::Histogram(counts)) => {
                if let Some(ScalarValue::Utf8(Some(s))) = value {
                    if let Some((_, n)) = counts.iter_mut().find(|(k, _)| k == s) {
                        *n += 1;
                    } else if counts.len() < HISTOGRAM_LIMIT {
                        counts.push((s.clone(), 1));
                    }
                }
            }
            (AggregateFn::CollectList, State::Values(values)) => values.push(self.typed(value)),
            (AggregateFn::CollectSet, State::Values(values)) => {
                let v = self.typed(value);
                if !values.contains(&v) {
                    values.push(v);
                }
            }
            (AggregateFn::TopK | AggregateFn::TopKDistinct, State::Values(values)) => {
                if let Some(v) = value {
                    if self.function == AggregateFn::TopKDistinct && values.contains(v) {
                        return;
                    }
                    let at = values
                        .iter()
                        .position(|x| v.partial_cmp(x) == Some(std::cmp::Ordering::Greater))
                        .unwrap_or(values.len());
                    values.insert(at, v.clone());
                    values.truncate(self.n.unwrap_or(1));
                }
            }
            (AggregateFn::EarliestByOffset, State::Values(values)) => {
                if values.len() < self.n.unwrap_or(1) {
                    values.push(self.typed(value));
                }
            }
            (AggregateFn::LatestByOffset, State::Values(values)) => {
                values.push(self.typed(value));
                let keep = self.n.unwrap_or(1);
                if values.len() > keep {
                    values.drain(..values.len() - keep);
                }
            }
            (_, state) => {
                // A state of another function (a store written by another query plan):
                // start again rather than fail every record of the key.
                *state = self.initial();
                self.add(state, value);
            }
        }
    }

    /// Takes one row's value back out of `state` (the row left its group: a table's row
    /// changed or was deleted), as ksqlDB's table UDAFs undo: `COUNT`, `SUM`, `AVG` count
    /// and sum down, `COLLECT_LIST` drops the value's last occurrence, `HISTOGRAM` counts it
    /// down and forgets it at zero. Other functions cannot undo ([`AggregateFn::undoable`]):
    /// their state stays.
    pub fn undo(&self, state: &mut State, value: Option<&ScalarValue>) {
        let null = value.is_none_or(|v| v.is_null());
        match (self.function, state) {
            (AggregateFn::Count, State::Count(n)) if value.is_none() || !null => *n -= 1,
            (_, _) if null && !self.keeps_nulls() => {}
            (AggregateFn::Sum, State::Value(sum)) => {
                if let Some(v) = value {
                    *sum = subtract(sum, v);
                }
            }
            (AggregateFn::Avg, State::Avg(sum, count)) => {
                if let Some(v) = value {
                    *sum = subtract(sum, v);
                    *count -= 1;
                }
            }
            (AggregateFn::CollectList, State::Values(values)) => {
                let v = self.typed(value);
                if let Some(at) = values.iter().rposition(|x| *x == v) {
                    values.remove(at);
                }
            }
            (AggregateFn::Histogram, State::Histogram(counts)) => {
                if let Some(ScalarValue::Utf8(Some(s))) = value {
                    if let Some(at) = counts.iter().position(|(k, _)| k == s) {
                        counts[at].1 -= 1;
                        if counts[at].1 < 1 {
                            counts.remove(at);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Session `a` and the later session `b` as one (a record bridged them): ksqlDB's
    /// merges, `b`'s values after `a`'s.
    pub fn merge(&self, a: State, b: State) -> State {
        match (a, b) {
            (State::Count(a), State::Count(b)) => State::Count(a.wrapping_add(b)),
            (State::Avg(sa, ca), State::Avg(sb, cb)) => State::Avg(add(&sa, &sb), ca + cb),
            (State::Value(a), State::Value(b)) => match self.function {
                AggregateFn::Sum => State::Value(add(&a, &b)),
                // MIN, MAX: `b`'s best folded into `a`'s.
                _ => {
                    let mut state = State::Value(a);
                    self.add(&mut state, Some(&b));
                    state
                }
            },
            (State::Distinct(mut a), State::Distinct(b)) => {
                match b {
                    Distinct::Exact(hashes) => hashes.into_iter().for_each(|h| a.add(h)),
                    Distinct::Sketch(registers) => {
                        let mut merged = match a {
                            Distinct::Exact(hashes) => {
                                let mut sketch = vec![0u8; SKETCH_REGISTERS];
                                hashes
                                    .iter()
                                    .for_each(|h| Distinct::register(&mut sketch, *h));
                                sketch
                            }
                            Distinct::Sketch(sketch) => sketch,
                        };
                        for (m, r) in merged.iter_mut().zip(registers) {
                            *m = (*m).max(r);
                        }
                        a = Distinct::Sketch(merged);
                    }
                }
                State::Distinct(a)
            }
            (State::Histogram(mut a), State::Histogram(b)) => {
                for (k, n) in b {
                    if let Some((_, m)) = a.iter_mut().find(|(x, _)| *x == k) {
                        *m += n;
                    } else if a.len() < HISTOGRAM_LIMIT {
                        a.push((k, n));
                    }
                }
                State::Histogram(a)
            }
            (State::Values(a), State::Values(b)) => {
                let mut state = State::Values(a);
                for v in &b {
                    match self.function {
                        // Every value of `b` again, as if its records came after `a`'s
                        // (nulls included where the function keeps them).
                        AggregateFn::CollectList
                        | AggregateFn::CollectSet
                        | AggregateFn::TopK
                        | AggregateFn::TopKDistinct
                        | AggregateFn::EarliestByOffset
                        | AggregateFn::LatestByOffset => self.add(&mut state, Some(v)),
                        _ => {}
                    }
                }
                state
            }
            (a, _) => a,
        }
    }

    /// Whether a null value is folded in rather than skipped.
    fn keeps_nulls(&self) -> bool {
        match self.function {
            AggregateFn::CollectList | AggregateFn::CollectSet => true,
            AggregateFn::EarliestByOffset | AggregateFn::LatestByOffset => !self.ignore_nulls,
            _ => false,
        }
    }

    /// `value`, or the null of the input type.
    fn typed(&self, value: Option<&ScalarValue>) -> ScalarValue {
        match value {
            Some(v) if !v.is_null() => v.clone(),
            _ => ScalarValue::try_from(&self.input).unwrap_or(ScalarValue::Null),
        }
    }

    /// The aggregate's value for `state`, of [`Aggregator::output_type`]; `window` is the
    /// window of a windowed aggregation's row (`[start, end]`).
    pub fn result(&self, state: &State, window: Option<(i64, i64)>) -> Result<ScalarValue> {
        let list = |values: &[ScalarValue]| {
            ScalarValue::List(ScalarValue::new_list_nullable(values, &self.input))
        };
        Ok(match (self.function, state) {
            (AggregateFn::WindowStart, _) => ScalarValue::Int64(window.map(|w| w.0)),
            (AggregateFn::WindowEnd, _) => ScalarValue::Int64(window.map(|w| w.1)),
            (AggregateFn::Count, State::Count(n)) => ScalarValue::Int64(Some(*n)),
            (AggregateFn::CountDistinct, State::Distinct(d)) => ScalarValue::Int64(Some(d.count())),
            (AggregateFn::Sum | AggregateFn::Min | AggregateFn::Max, State::Value(v)) => v.clone(),
            (AggregateFn::Avg, State::Avg(sum, count)) => {
                let sum = match sum {
                    ScalarValue::Int32(Some(v)) => f64::from(*v),
                    ScalarValue::Int64(Some(v)) => *v as f64,
                    ScalarValue::Float64(Some(v)) => *v,
                    ScalarValue::Decimal128(Some(v), _, s) => *v as f64 / 10f64.powi(i32::from(*s)),
                    _ => 0.0,
                };
                ScalarValue::Float64(Some(if *count == 0 {
                    0.0
                } else {
                    sum / *count as f64
                }))
            }
            (AggregateFn::EarliestByOffset | AggregateFn::LatestByOffset, State::Values(v))
                if self.n.is_none() =>
            {
                v.first().cloned().unwrap_or_else(|| self.typed(None))
            }
            (_, State::Values(values)) => list(values),
            (AggregateFn::Histogram, State::Histogram(counts)) => histogram(counts, &self.output)?,
            _ => ScalarValue::try_from(&self.output).unwrap_or(ScalarValue::Null),
        })
    }
}

/// ksqlDB's error for a parameter after the column that is not a literal.
fn not_literal(at: usize, function: AggregateFn) -> KsqlError {
    KsqlError::statement(format!(
        "Parameter {} passed to function {} must be a literal constant",
        at + 1,
        function.message_name()
    ))
}

/// The zero a sum starts from, of `ty`.
fn zero(ty: &DataType) -> ScalarValue {
    match ty {
        DataType::Int32 => ScalarValue::Int32(Some(0)),
        DataType::Int64 => ScalarValue::Int64(Some(0)),
        DataType::Float64 => ScalarValue::Float64(Some(0.0)),
        DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(0), *p, *s),
        other => ScalarValue::try_from(other).unwrap_or(ScalarValue::Null),
    }
}

/// `a + b` of one type, integers wrapping as Java's do.
fn add(a: &ScalarValue, b: &ScalarValue) -> ScalarValue {
    match (a, b) {
        (ScalarValue::Int32(Some(a)), ScalarValue::Int32(Some(b))) => {
            ScalarValue::Int32(Some(a.wrapping_add(*b)))
        }
        (ScalarValue::Int64(Some(a)), ScalarValue::Int64(Some(b))) => {
            ScalarValue::Int64(Some(a.wrapping_add(*b)))
        }
        (ScalarValue::Float64(Some(a)), ScalarValue::Float64(Some(b))) => {
            ScalarValue::Float64(Some(a + b))
        }
        (ScalarValue::Decimal128(Some(a), p, s), ScalarValue::Decimal128(Some(b), _, _)) => {
            ScalarValue::Decimal128(Some(a.wrapping_add(*b)), *p, *s)
        }
        (a, _) => a.clone(),
    }
}

/// `a - b` of one type, integers wrapping as Java's do.
fn subtract(a: &ScalarValue, b: &ScalarValue) -> ScalarValue {
    match (a, b) {
        (ScalarValue::Int32(Some(a)), ScalarValue::Int32(Some(b))) => {
            ScalarValue::Int32(Some(a.wrapping_sub(*b)))
        }
        (ScalarValue::Int64(Some(a)), ScalarValue::Int64(Some(b))) => {
            ScalarValue::Int64(Some(a.wrapping_sub(*b)))
        }
        (ScalarValue::Float64(Some(a)), ScalarValue::Float64(Some(b))) => {
            ScalarValue::Float64(Some(a - b))
        }
        (ScalarValue::Decimal128(Some(a), p, s), ScalarValue::Decimal128(Some(b), _, _)) => {
            ScalarValue::Decimal128(Some(a.wrapping_sub(*b)), *p, *s)
        }
        (a, _) => a.clone(),
    }
}

/// `COUNT_DISTINCT`'s values: their hashes while there are few (an exact count), then a
/// HyperLogLog sketch of 2^14 registers, as ksqlDB's (a standard error under 1%).
#[derive(Debug, Clone, PartialEq)]
pub enum Distinct {
    /// The 64-bit hashes of the values seen, sorted.
    Exact(Vec<u64>),
    /// One byte per register: the longest run of leading zeros seen, plus one.
    Sketch(Vec<u8>),
}

/// Registers of a sketch (2^14).
const SKETCH_BITS: u32 = 14;
const SKETCH_REGISTERS: usize = 1 << SKETCH_BITS;
/// Hashes kept before switching to a sketch (8 KiB of them; a sketch is 16 KiB).
const EXACT_MAX: usize = 1024;

impl Distinct {
    fn add(&mut self, hash: u64) {
        match self {
            Distinct::Exact(hashes) => {
                if let Err(at) = hashes.binary_search(&hash) {
                    hashes.insert(at, hash);
                }
                if hashes.len() > EXACT_MAX {
                    let mut registers = vec![0u8; SKETCH_REGISTERS];
                    for h in hashes.iter() {
                        Distinct::register(&mut registers, *h);
                    }
                    *self = Distinct::Sketch(registers);
                }
            }
            Distinct::Sketch(registers) => Distinct::register(registers, hash),
        }
    }

    fn register(registers: &mut [u8], hash: u64) {
        let index = (hash >> (64 - SKETCH_BITS)) as usize;
        // The rest of the hash, with a stop bit so the run is at most 64 - 14 + 1.
        let rest = (hash << SKETCH_BITS) | (1 << (SKETCH_BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(r) = registers.get_mut(index) {
            *r = (*r).max(rank);
        }
    }

    fn count(&self) -> i64 {
        match self {
            Distinct::Exact(hashes) => hashes.len() as i64,
            Distinct::Sketch(registers) => {
                let m = SKETCH_REGISTERS as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
                let estimate = alpha * m * m / sum;
                let zeros = registers.iter().filter(|&&r| r == 0).count();
                let count = if estimate <= 2.5 * m && zeros > 0 {
                    // Linear counting, for small cardinalities.
                    m * (m / zeros as f64).ln()
                } else {
                    estimate
                };
                count.round() as i64
            }
        }
    }
}

/// A 64-bit hash of a value, stable across runs and builds: FNV-1a over its encoding,
/// mixed (MurmurHash3's finaliser) so that its high bits, which pick a sketch's register,
/// are uniform.
fn hash_of(value: &ScalarValue) -> u64 {
    let mut bytes = Vec::new();
    let _ = codec::put_value(&mut bytes, value);
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    hasher.write(&bytes);
    let mut h = hasher.finish();
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// `HISTOGRAM`'s result: a `MAP<STRING, BIGINT>` of one entry per value.
fn histogram(counts: &[(String, i64)], ty: &DataType) -> Result<ScalarValue> {
    use arrow::array::{Int64Builder, MapBuilder, MapFieldNames, StringBuilder};
    let DataType::Map(entries, _) = ty else {
        return Err(KsqlError::statement("HISTOGRAM's type is not a MAP"));
    };
    let DataType::Struct(fields) = entries.data_type() else {
        return Err(KsqlError::statement("HISTOGRAM's type is not a MAP"));
    };
    let names = MapFieldNames {
        entry: entries.name().clone(),
        key: fields[0].name().clone(),
        value: fields[1].name().clone(),
    };
    let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), Int64Builder::new())
        .with_values_field(fields[1].clone());
    for (k, n) in counts {
        builder.keys().append_value(k);
        builder.values().append_value(*n);
    }
    builder
        .append(true)
        .map_err(|e| KsqlError::Serde(e.to_string()))?;
    Ok(ScalarValue::Map(std::sync::Arc::new(builder.finish())))
}

/// The states of a row's aggregates, encoded for the store.
pub fn encode_states(states: &[State]) -> Result<Vec<u8>> {
    // Enough for counts, sums and averages without growing.
    let mut out = Vec::with_capacity(2 + 24 * states.len());
    codec::put_len(&mut out, states.len());
    for state in states {
        match state {
            State::Count(n) => {
                out.push(0);
                codec::put_i64(&mut out, *n);
            }
            State::Value(v) => {
                out.push(1);
                codec::put_value(&mut out, v)?;
            }
            State::Avg(sum, count) => {
                out.push(2);
                codec::put_value(&mut out, sum)?;
                codec::put_i64(&mut out, *count);
            }
            State::Values(values) => {
                out.push(3);
                codec::put_len(&mut out, values.len());
                for v in values {
                    codec::put_value(&mut out, v)?;
                }
            }
            State::Distinct(Distinct::Exact(hashes)) => {
                out.push(4);
                codec::put_len(&mut out, hashes.len());
                for h in hashes {
                    out.extend(h.to_le_bytes());
                }
            }
            State::Distinct(Distinct::Sketch(registers)) => {
                out.push(6);
                codec::put_bytes(&mut out, registers);
            }
            State::Histogram(counts) => {
                out.push(5);
                codec::put_len(&mut out, counts.len());
                for (k, n) in counts {
                    codec::put_bytes(&mut out, k.as_bytes());
                    codec::put_i64(&mut out, *n);
                }
            }
        }
    }
    Ok(out)
}

/// States [`encode_states`] wrote.
pub fn decode_states(bytes: &[u8]) -> Result<Vec<State>> {
    let mut r = Reader::new(bytes);
    let n = r.length()?;
    let mut states = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        let state = match r.byte()? {
            0 => State::Count(r.i64()?),
            1 => State::Value(r.value()?),
            2 => State::Avg(r.value()?, r.i64()?),
            3 => {
                let n = r.length()?;
                let mut values = Vec::with_capacity(n.min(HISTOGRAM_LIMIT));
                for _ in 0..n {
                    values.push(r.value()?);
                }
                State::Values(values)
            }
            4 => {
                let n = r.length()?;
                let mut hashes = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let b = r.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    hashes.push(u64::from_le_bytes(a));
                }
                State::Distinct(Distinct::Exact(hashes))
            }
            6 => {
                let registers = r.bytes()?;
                if registers.len() != SKETCH_REGISTERS {
                    return Err(KsqlError::Serde(format!(
                        "a COUNT_DISTINCT sketch of {} registers",
                        registers.len()
                    )));
                }
                State::Distinct(Distinct::Sketch(registers.to_vec()))
            }
            5 => {
                let n = r.length()?;
                let mut counts = Vec::with_capacity(n.min(HISTOGRAM_LIMIT));
                for _ in 0..n {
                    let k = String::from_utf8(r.bytes()?.to_vec())
                        .map_err(|_| KsqlError::Serde("a histogram key is not UTF-8".into()))?;
                    counts.push((k, r.i64()?));
                }
                State::Histogram(counts)
            }
            other => {
                return Err(KsqlError::Serde(format!(
                    "an aggregation state of unknown kind {other}"
                )))
            }
        };
        states.push(state);
    }
    r.finish()?;
    Ok(states)
}

#[cfg(test)]
mod tests;
