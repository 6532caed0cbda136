//! ksqlDB's scalar functions that DataFusion has no function with the same semantics for, as
//! DataFusion `ScalarUDF`s: ksqlDB's names, argument types (with its implicit widening, `INT`
//! to `BIGINT` to `DECIMAL` to `DOUBLE`), result types, null handling and errors.
//!
//! A row on which ksqlDB's function throws gets a null result and the error is logged (at
//! each power of two such rows): ksqlDB's `SelectValueMapper` catches the exception, writes
//! it to the processing log and carries on with a null column, so the row is still written.
//!
//! Each category is a file: `datetime.rs` (on `java_time.rs`, Java's `DateTimeFormatter`
//! patterns, and `simple_date.rs`, `SimpleDateFormat`'s for `PARSE_DATE`), `string.rs`,
//! `regexp.rs`, `json.rs`, `math.rs`, `collections.rs`. [`all`] lists them for
//! `functions.rs`, which makes them resolvable and lists them in `SHOW FUNCTIONS`.

mod collections;
mod datetime;
pub(crate) mod java_time;
mod json;
mod math;
mod regexp;
mod simple_date;
mod string;

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion_common::{plan_err, Result as DfResult};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// A ksqlDB type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Boolean,
    Int,
    Bigint,
    Double,
    /// Any `DECIMAL(p, s)`.
    Decimal,
    String,
    Bytes,
    Date,
    Time,
    Timestamp,
    /// Any `ARRAY<T>`.
    Array,
    /// Any `MAP<K, V>`.
    Map,
    /// Any type (a generic `T`).
    Any,
}

/// One of a function's signatures: its parameters, the last repeated (0 or more times) if
/// `variadic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overload {
    pub(crate) params: &'static [Param],
    pub(crate) variadic: bool,
}

/// A fixed-arity signature.
pub(crate) const fn sig(params: &'static [Param]) -> Overload {
    Overload {
        params,
        variadic: false,
    }
}

/// A signature whose last parameter repeats.
pub(crate) const fn var(params: &'static [Param]) -> Overload {
    Overload {
        params,
        variadic: true,
    }
}

/// One invocation on a batch: the arguments as arrays of `rows` values (constants expanded).
pub(crate) struct Call<'a> {
    pub(crate) args: Vec<ArrayRef>,
    pub(crate) rows: usize,
    pub(crate) return_type: &'a DataType,
    /// The function, to name it in the errors logged.
    pub(crate) name: &'static str,
}

impl Call<'_> {
    /// Logs a row's failure the way ksqlDB's processing log records it (the row's result is
    /// null).
    pub(crate) fn failed(&self, message: impl std::fmt::Display) {
        row_failed(self.name, &message);
    }
}

/// Rows on which a function failed, over all functions (the log's rate limit).
static ROWS_FAILED: AtomicU64 = AtomicU64::new(0);

fn row_failed(function: &str, message: &dyn std::fmt::Display) {
    let failed = ROWS_FAILED.fetch_add(1, Ordering::Relaxed) + 1;
    if failed.is_power_of_two() {
        tracing::warn!(
            function,
            failed,
            "{message} (the result is null; logged at each power of two failures)"
        );
    }
}

type ReturnTypeFn = fn(&[DataType]) -> DfResult<DataType>;
type InvokeFn = fn(&Call) -> DfResult<ArrayRef>;

/// One ksqlDB scalar function.
#[derive(Debug)]
pub(crate) struct KsqlUdf {
    /// ksqlDB's name as its UDF declares it (its error messages use it).
    declared: &'static str,
    /// The name in upper case (`SHOW FUNCTIONS`).
    pub(crate) name: &'static str,
    /// DataFusion's name: lower case.
    key: String,
    /// ksqlDB's category (`STRING`, `DATE / TIME`, ...).
    pub(crate) category: &'static str,
    /// What it does, in ksqlDB's words.
    pub(crate) description: &'static str,
    overloads: &'static [Overload],
    return_type: ReturnTypeFn,
    invoke: InvokeFn,
    signature: Signature,
}

impl KsqlUdf {
    /// A deterministic function.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: &'static str,
        declared: &'static str,
        category: &'static str,
        description: &'static str,
        overloads: &'static [Overload],
        return_type: ReturnTypeFn,
        invoke: InvokeFn,
    ) -> KsqlUdf {
        KsqlUdf {
            declared,
            name,
            key: name.to_ascii_lowercase(),
            category,
            description,
            overloads,
            return_type,
            invoke,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// The same function, evaluated per row (the clock, random values): never folded into
    /// a constant when the query is planned.
    pub(crate) fn volatile(mut self) -> KsqlUdf {
        self.signature = Signature::user_defined(Volatility::Volatile);
        self
    }

    /// Its signatures for `DESCRIBE FUNCTION`: each overload's parameters and result type
    /// (found by calling its result type function on sample arguments; a result that changes
    /// with a generic parameter's type is written with `T`).
    pub(crate) fn variations(&self) -> Vec<crate::plan::functions::Variation> {
        self.overloads
            .iter()
            .map(|overload| {
                let sample = |generic: &DataType| -> Vec<DataType> {
                    overload
                        .params
                        .iter()
                        .map(|p| sample_type(*p, generic))
                        .collect()
                };
                let returns = |generic: DataType| {
                    (self.return_type)(&sample(&generic))
                        .ok()
                        .map(|t| crate::plan::functions::describe_type(&t))
                };
                let returns = match (returns(DataType::Utf8), returns(DataType::Int64)) {
                    (Some(a), Some(b)) if a == b => a,
                    (_, Some(b)) => b.replace("BIGINT", "T"),
                    _ => "ANY".to_string(),
                };
                crate::plan::functions::Variation {
                    args: overload
                        .params
                        .iter()
                        .map(|p| param_name(*p).to_string())
                        .collect(),
                    variadic: overload.variadic,
                    returns,
                }
            })
            .collect()
    }

    /// As DataFusion's function.
    pub(crate) fn into_udf(self) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(self))
    }

    /// ksqlDB's error for arguments no signature takes.
    fn refusal(&self, args: &[DataType]) -> String {
        let mut message = format!(
            "Function '{}' does not accept parameters ({}).\nValid alternatives are:",
            self.declared,
            args.iter().map(type_name).collect::<Vec<_>>().join(", ")
        );
        for overload in self.overloads {
            let mut params: Vec<String> = overload
                .params
                .iter()
                .map(|p| param_name(*p).to_string())
                .collect();
            if overload.variadic {
                if let Some(last) = params.last_mut() {
                    last.push_str("...");
                }
            }
            let _ = write!(message, "\n{}({})", self.declared, params.join(", "));
        }
        message.push_str(
            "\nFor detailed information on a function run: DESCRIBE FUNCTION <Function-Name>;",
        );
        message
    }
}

impl PartialEq for KsqlUdf {
    fn eq(&self, other: &KsqlUdf) -> bool {
        self.key == other.key
    }
}

impl Eq for KsqlUdf {}

impl Hash for KsqlUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl ScalarUDFImpl for KsqlUdf {
    fn name(&self) -> &str {
        &self.key
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        match resolve(self.overloads, args) {
            Some(types) => Ok(types),
            None => plan_err!("{}", self.refusal(args)),
        }
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        (self.return_type)(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<Vec<_>>>()?;
        let call = Call {
            args: arrays,
            rows,
            return_type: args.return_field.data_type(),
            name: self.name,
        };
        Ok(ColumnarValue::Array((self.invoke)(&call)?))
    }
}

/// Every function of this module.
pub(crate) fn all() -> Vec<KsqlUdf> {
    let mut functions = Vec::new();
    functions.extend(datetime::functions());
    functions.extend(string::functions());
    functions.extend(regexp::functions());
    functions.extend(json::functions());
    functions.extend(math::functions());
    functions.extend(collections::functions());
    functions
}

/// Plans `SUBSTRING(...)` as ksqlDB's `SUBSTRING` (1-based positions, negative ones from
/// the end). sqlparser parses it as an expression of its own, not a call, and DataFusion's
/// `UnicodeFunctionPlanner` plans that as its `substr` (PostgreSQL's positions): this
/// planner takes effect once `catalog.rs` lists it before that one.
#[derive(Debug, Default)]
pub struct SubstringPlanner;

impl datafusion_expr::planner::ExprPlanner for SubstringPlanner {
    fn plan_substring(
        &self,
        args: Vec<datafusion_expr::Expr>,
    ) -> DfResult<datafusion_expr::planner::PlannerResult<Vec<datafusion_expr::Expr>>> {
        use datafusion_expr::planner::PlannerResult;
        Ok(
            match crate::plan::functions::Functions::get().scalar("substring") {
                Some(udf) => PlannerResult::Planned(datafusion_expr::Expr::ScalarFunction(
                    datafusion_expr::expr::ScalarFunction::new_udf(udf, args),
                )),
                None => PlannerResult::Original(args),
            },
        )
    }
}

/// The types the arguments are cast to for the first signature that takes them: one taking
/// them as they are first, then one taking them with ksqlDB's widening.
fn resolve(overloads: &[Overload], args: &[DataType]) -> Option<Vec<DataType>> {
    for widen in [false, true] {
        for overload in overloads {
            if let Some(types) = matches(overload, args, widen) {
                return Some(types);
            }
        }
    }
    None
}

fn matches(overload: &Overload, args: &[DataType], widen: bool) -> Option<Vec<DataType>> {
    let n = overload.params.len();
    if overload.variadic {
        if args.len() + 1 < n {
            return None;
        }
    } else if args.len() != n {
        return None;
    }
    args.iter()
        .enumerate()
        .map(|(at, arg)| {
            let param = overload.params[at.min(n.saturating_sub(1))];
            accept(param, arg, widen)
        })
        .collect()
}

/// The type `arg` is cast to for `param`, if it is taken.
fn accept(param: Param, arg: &DataType, widen: bool) -> Option<DataType> {
    use DataType as T;
    let canonical = |p: Param| -> Option<DataType> {
        Some(match p {
            Param::Boolean => T::Boolean,
            Param::Int => T::Int32,
            Param::Bigint => T::Int64,
            Param::Double => T::Float64,
            Param::String => T::Utf8,
            Param::Bytes => T::Binary,
            Param::Date => T::Date32,
            Param::Time => T::Time32(TimeUnit::Millisecond),
            Param::Timestamp => T::Timestamp(TimeUnit::Millisecond, None),
            Param::Decimal | Param::Array | Param::Map | Param::Any => return None,
        })
    };
    if *arg == T::Null {
        // A null literal takes any parameter (its type is the parameter's).
        return Some(canonical(param).unwrap_or(T::Null));
    }
    let exact = match (param, arg) {
        (Param::Boolean, T::Boolean) => true,
        (Param::Int, T::Int8 | T::Int16 | T::Int32) => true,
        (Param::Bigint, T::Int64) => true,
        (Param::Double, T::Float64 | T::Float32) => true,
        (Param::Decimal, T::Decimal128(..)) => return Some(arg.clone()),
        (Param::String, T::Utf8 | T::LargeUtf8 | T::Utf8View) => true,
        (Param::Bytes, T::Binary | T::LargeBinary | T::BinaryView) => true,
        (Param::Date, T::Date32) => true,
        (Param::Time, T::Time32(_) | T::Time64(_)) => true,
        (Param::Timestamp, T::Timestamp(..)) => true,
        (Param::Array, T::List(_)) => return Some(arg.clone()),
        (Param::Array, T::LargeList(item) | T::FixedSizeList(item, _)) => {
            return Some(T::List(item.clone()))
        }
        (Param::Map, T::Map(..)) => return Some(arg.clone()),
        (Param::Any, _) => return Some(arg.clone()),
        _ => false,
    };
    if exact {
        return canonical(param);
    }
    if !widen {
        return None;
    }
    // ksqlDB's implicit casts of numbers: INT to BIGINT to DECIMAL to DOUBLE.
    match (param, arg) {
        (Param::Bigint, T::Int8 | T::Int16 | T::Int32) => Some(T::Int64),
        (Param::Decimal, T::Int8 | T::Int16 | T::Int32) => Some(T::Decimal128(10, 0)),
        (Param::Decimal, T::Int64) => Some(T::Decimal128(19, 0)),
        (Param::Double, T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::Decimal128(..)) => {
            Some(T::Float64)
        }
        _ => None,
    }
}

/// ksqlDB's name of an argument's type.
fn type_name(ty: &DataType) -> String {
    match ty {
        DataType::Null => "null".to_string(),
        _ => crate::plan::sql_type(ty).map_or_else(|| ty.to_string(), |t| t.to_string()),
    }
}

fn param_name(param: Param) -> &'static str {
    match param {
        Param::Boolean => "BOOLEAN",
        Param::Int => "INT",
        Param::Bigint => "BIGINT",
        Param::Double => "DOUBLE",
        Param::Decimal => "DECIMAL",
        Param::String => "VARCHAR",
        Param::Bytes => "BYTES",
        Param::Date => "DATE",
        Param::Time => "TIME",
        Param::Timestamp => "TIMESTAMP",
        Param::Array => "ARRAY<T>",
        Param::Map => "MAP<K, V>",
        Param::Any => "T",
    }
}

/// A type a parameter takes, `generic` standing for its `T` (map values too).
fn sample_type(param: Param, generic: &DataType) -> DataType {
    match param {
        Param::Boolean => DataType::Boolean,
        Param::Int => DataType::Int32,
        Param::Bigint => DataType::Int64,
        Param::Double => DataType::Float64,
        Param::Decimal => DataType::Decimal128(10, 2),
        Param::String => DataType::Utf8,
        Param::Bytes => DataType::Binary,
        Param::Date => DataType::Date32,
        Param::Time => DataType::Time32(TimeUnit::Millisecond),
        Param::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
        Param::Array => list_of(generic.clone()),
        Param::Map => {
            let value = if *generic == DataType::Utf8 {
                crate::parser::ast::SqlType::String
            } else {
                crate::parser::ast::SqlType::Bigint
            };
            crate::format::arrow_type(&crate::parser::ast::SqlType::Map(
                Box::new(crate::parser::ast::SqlType::String),
                Box::new(value),
            ))
            .unwrap_or(DataType::Null)
        }
        Param::Any => generic.clone(),
    }
}

/// The `ARRAY<item>` type as ksql holds it.
pub(crate) fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// The `MAP<STRING, value>` type as ksql holds it.
pub(crate) fn string_map_of(value: DataType) -> DataType {
    DataType::Map(map_entries(value), false)
}

pub(crate) fn map_entries(value: DataType) -> Arc<Field> {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", value, true),
            ]
            .into(),
        ),
        false,
    ))
}

/// Whether row `row` of `array` is null (a `NullArray`'s rows are all null).
pub(crate) fn is_null(array: &dyn Array, row: usize) -> bool {
    array.data_type() == &DataType::Null || array.is_null(row)
}

/// Argument `at` of `call` as the array its parameter's type is held in.
pub(crate) fn arg<'a, T: Array + 'static>(call: &'a Call, at: usize) -> DfResult<&'a T> {
    call.args
        .get(at)
        .and_then(|a| a.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            datafusion_common::DataFusionError::Internal(format!(
                "{}: argument {} is not a {}",
                call.name,
                at + 1,
                std::any::type_name::<T>()
            ))
        })
}

/// Argument `at` if the call has it (optional trailing parameters).
pub(crate) fn opt_arg<'a, T: Array + 'static>(
    call: &'a Call,
    at: usize,
) -> DfResult<Option<&'a T>> {
    if at < call.args.len() {
        arg(call, at).map(Some)
    } else {
        Ok(None)
    }
}

/// Runs `row` on each row and hands its result to `append`: a value, a null, or (`Err`) a
/// failure, logged and null.
pub(crate) fn each_row<T>(
    call: &Call,
    mut row: impl FnMut(usize) -> Result<Option<T>, String>,
    mut append: impl FnMut(Option<T>),
) {
    for at in 0..call.rows {
        match row(at) {
            Ok(value) => append(value),
            Err(message) => {
                call.failed(message);
                append(None);
            }
        }
    }
}

/// The last value made from a key (a pattern compiled, a zone looked up): most calls pass
/// the same one on every row.
pub(crate) struct Memo<T> {
    key: Option<String>,
    value: Option<T>,
}

impl<T> Default for Memo<T> {
    fn default() -> Memo<T> {
        Memo {
            key: None,
            value: None,
        }
    }
}

impl<T> Memo<T> {
    pub(crate) fn get(&mut self, key: &str, make: impl FnOnce(&str) -> T) -> &T {
        if self.key.as_deref() != Some(key) {
            self.value = None;
            self.key = Some(key.to_string());
        }
        self.value.get_or_insert_with(|| make(key))
    }
}

/// A `&'static [Overload]` of signatures (a constant, so the slice lives on).
macro_rules! overloads {
    ($($overload:expr),* $(,)?) => {{
        const OVERLOADS: &[$crate::plan::udf::Overload] = &[$($overload),*];
        OVERLOADS
    }};
}
pub(crate) use overloads;

/// A fixed return type.
macro_rules! returns {
    ($ty:expr) => {
        |_: &[arrow::datatypes::DataType]| Ok($ty)
    };
}
pub(crate) use returns;

#[cfg(test)]
mod tests {
    use super::*;

    const OVERLOADS: &[Overload] = &[
        sig(&[Param::String, Param::Int]),
        sig(&[Param::Double, Param::Bigint]),
        var(&[Param::Int, Param::String]),
    ];

    #[test]
    fn overloads_take_exact_types_first_then_widen_numbers() {
        use DataType as T;
        assert_eq!(
            resolve(OVERLOADS, &[T::Utf8, T::Int32]),
            Some(vec![T::Utf8, T::Int32])
        );
        assert_eq!(
            resolve(OVERLOADS, &[T::Int32, T::Int32]),
            Some(vec![T::Float64, T::Int64])
        );
        assert_eq!(
            resolve(OVERLOADS, &[T::Null, T::Null]),
            Some(vec![T::Utf8, T::Int32])
        );
        // Variadic: the last parameter 0 or more times.
        assert_eq!(resolve(OVERLOADS, &[T::Int32]), Some(vec![T::Int32]));
        assert_eq!(
            resolve(OVERLOADS, &[T::Int32, T::Utf8, T::Utf8View]),
            Some(vec![T::Int32, T::Utf8, T::Utf8])
        );
        // No narrowing, no numbers from strings.
        assert_eq!(resolve(OVERLOADS, &[T::Utf8, T::Int64]), None);
        assert_eq!(resolve(OVERLOADS, &[T::Utf8, T::Utf8]), None);
    }

    proptest::proptest! {
        /// No pattern or text, however broken, panics a parser (input reaches them all).
        #[test]
        fn parsers_never_panic(
            pattern in "[yMdHhmsSaEGuQDkKVzOXxZn'\\[\\] .:/+-]{0,16}",
            text in "[0-9A-Za-z '+:./-]{0,24}",
            json in "[\\[\\]{}\",:0-9a-z.eE+ -]{0,24}",
            regex in "[\\\\QEpPdDwsbe{}a-zA-Z.\\[\\]^$()*+?|:]{0,16}",
        ) {
            if let Ok(r) = regexp::compile(&regex) {
                let _ = regexp::java_matches(&r, &text);
                let _ = regexp::replace_all(&r, &text, &json);
            }
            if let Ok(p) = java_time::Pattern::compile(&pattern) {
                let zone = java_time::Zone::of("America/New_York").unwrap_or_else(|_| java_time::Zone::utc());
                let _ = java_time::parse_timestamp(&p, &text, &zone);
                let _ = java_time::parse_local_date(&p, &text);
                let _ = java_time::parse_local_time(&p, &text);
                if let Ok(t) = java_time::Temporal::instant(1_526_075_913_123, &zone) {
                    let _ = p.format(&t);
                }
            }
            if let Ok(p) = simple_date::SimplePattern::compile(&pattern) {
                let _ = simple_date::parse_date(&p, &text, 2026);
            }
            let _ = json::parse(&json);
            let _ = java_time::Zone::of(&text);
        }
    }

    /// The types of a query's columns as the planner gives them.
    fn planned_types(select: &str) -> crate::error::Result<Vec<String>> {
        let mut store = crate::metastore::MetaStore::new();
        let setup = "CREATE STREAM s (id BIGINT KEY, name STRING, n INT, d DOUBLE, \
            price DECIMAL(10, 2), ts TIMESTAMP, day DATE, tags ARRAY<STRING>, \
            m MAP<STRING, INT>) WITH (kafka_topic='s', value_format='json');";
        for parsed in crate::parser::parse(setup)? {
            store.apply(&parsed.statement, &parsed.text)?;
        }
        let parsed = crate::parser::parse_one(select)?;
        let crate::parser::ast::Statement::Query(query) = parsed.statement else {
            return Err(crate::error::KsqlError::statement("not a query"));
        };
        let planned = crate::plan::plan_query(&query, &store)?;
        Ok(planned
            .columns
            .iter()
            .skip(1)
            .map(|c| c.ty.to_string())
            .collect())
    }

    #[test]
    fn the_planner_types_calls_as_ksqldb() {
        let types = planned_types(
            "SELECT id, TIMESTAMPTOSTRING(ROWTIME, 'yyyy'), STRINGTOTIMESTAMP(name, 'yyyy'), \
             PARSE_TIMESTAMP(name, 'yyyy', 'UTC'), FORMAT_DATE(day, 'yyyy'), UNIX_DATE(), \
             ROUND(d), ROUND(d, 2), ROUND(n), ROUND(price), ROUND(price, 1), LOG(n), \
             INSTR(name, 'a'), SPLIT(name, ','), SPLIT_TO_MAP(name, ',', ':'), \
             EXTRACTJSONFIELD(name, '$.a'), JSON_KEYS(name), TO_JSON_STRING(m), \
             ARRAY_LENGTH(tags), AS_MAP(tags, tags), MAP_UNION(m, m), ENTRIES(m, true), \
             MASK_LEFT(name, 2), ELT(n, name, name), FIELD(name, 'a', 'b') FROM s EMIT CHANGES;",
        )
        .unwrap();
        assert_eq!(
            types,
            [
                "STRING",
                "BIGINT",
                "TIMESTAMP",
                "STRING",
                "INTEGER",
                "BIGINT",
                "DOUBLE",
                "BIGINT",
                "DECIMAL(8, 0)",
                "DECIMAL(10, 2)",
                "DOUBLE",
                "INTEGER",
                "ARRAY<STRING>",
                "MAP<STRING, STRING>",
                "STRING",
                "ARRAY<STRING>",
                "STRING",
                "INTEGER",
                "MAP<STRING, STRING>",
                "MAP<STRING, INTEGER>",
                "ARRAY<STRUCT<`K` STRING, `V` INTEGER>>",
                "STRING",
                "STRING",
                "INTEGER",
            ]
        );
        let refused = planned_types("SELECT id, INSTR(n, n) FROM s EMIT CHANGES;").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("Function 'instr' does not accept parameters (INTEGER, INTEGER)."),
            "{refused}"
        );
    }

    #[test]
    fn the_substring_planner_plans_ksqldbs_substring() {
        use datafusion_expr::planner::{ExprPlanner, PlannerResult};
        let args = vec![datafusion_expr::col("S"), datafusion_expr::lit(0i32)];
        let Ok(PlannerResult::Planned(datafusion_expr::Expr::ScalarFunction(f))) =
            SubstringPlanner.plan_substring(args)
        else {
            panic!("SUBSTRING not planned");
        };
        assert_eq!(f.func.name(), "substring");
        assert_eq!(f.args.len(), 2);
    }

    #[test]
    fn a_refusal_names_the_arguments_and_the_alternatives_as_ksqldb_does() {
        let udf = KsqlUdf::new(
            "F",
            "f",
            "OTHER",
            "",
            OVERLOADS,
            returns!(DataType::Utf8),
            |_| unreachable!(),
        );
        let message = udf.refusal(&[DataType::Utf8, DataType::Utf8]);
        assert!(message.starts_with(
            "Function 'f' does not accept parameters (STRING, STRING).\nValid alternatives are:\nf(VARCHAR, INT)"
        ));
        assert!(message.contains("\nf(INT, VARCHAR...)"));
    }
}
