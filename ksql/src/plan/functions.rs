//! ksqlDB's built-in functions by ksqlDB's names, each mapped onto the DataFusion function
//! whose semantics match, or (`udf/`) a UDF of our own where none does.
//!
//! Only the names listed here resolve in a query: a ksqlDB user gets ksqlDB's functions, and
//! `SHOW FUNCTIONS` lists exactly what works.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, TimeUnit};
use datafusion_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, TypeSignature, TypeSignatureClass};

/// What kind of function a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// One value in, one out.
    Scalar,
    /// Many rows in, one value out (`GROUP BY`).
    Aggregate,
    /// One row in, many out (`EXPLODE`).
    Table,
}

impl FunctionKind {
    /// ksqlDB's name for the kind (`SHOW FUNCTIONS`' `type`).
    pub fn name(self) -> &'static str {
        match self {
            FunctionKind::Scalar => "SCALAR",
            FunctionKind::Aggregate => "AGGREGATE",
            FunctionKind::Table => "TABLE",
        }
    }
}

/// One function as `SHOW FUNCTIONS` and `DESCRIBE FUNCTION` show it.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    /// ksqlDB's name, upper case.
    pub name: &'static str,
    /// Scalar, aggregate or table.
    pub kind: FunctionKind,
    /// ksqlDB's category (`STRING`, `MATHEMATICAL`, ...).
    pub category: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// The function table: ksqlDB name, DataFusion name, kind, category, description.
const FUNCTIONS: &[(&str, &str, FunctionKind, &str, &str)] = {
    use FunctionKind::Scalar as S;
    &[
        // Mathematical.
        (
            "ABS",
            "abs",
            S,
            "MATHEMATICAL",
            "The absolute value of a number.",
        ),
        (
            "ACOS",
            "acos",
            S,
            "MATHEMATICAL",
            "The inverse cosine of a number.",
        ),
        (
            "ASIN",
            "asin",
            S,
            "MATHEMATICAL",
            "The inverse sine of a number.",
        ),
        (
            "ATAN",
            "atan",
            S,
            "MATHEMATICAL",
            "The inverse tangent of a number.",
        ),
        (
            "ATAN2",
            "atan2",
            S,
            "MATHEMATICAL",
            "The inverse tangent of y / x.",
        ),
        (
            "CEIL",
            "ceil",
            S,
            "MATHEMATICAL",
            "The smallest integer not below a number.",
        ),
        (
            "COS",
            "cos",
            S,
            "MATHEMATICAL",
            "The cosine of an angle in radians.",
        ),
        (
            "COSH",
            "cosh",
            S,
            "MATHEMATICAL",
            "The hyperbolic cosine of a number.",
        ),
        (
            "COT",
            "cot",
            S,
            "MATHEMATICAL",
            "The cotangent of an angle in radians.",
        ),
        (
            "DEGREES",
            "degrees",
            S,
            "MATHEMATICAL",
            "Radians converted to degrees.",
        ),
        ("EXP", "exp", S, "MATHEMATICAL", "e raised to a power."),
        (
            "FLOOR",
            "floor",
            S,
            "MATHEMATICAL",
            "The largest integer not above a number.",
        ),
        (
            "LN",
            "ln",
            S,
            "MATHEMATICAL",
            "The natural logarithm of a number.",
        ),
        ("PI", "pi", S, "MATHEMATICAL", "The constant pi."),
        (
            "POWER",
            "power",
            S,
            "MATHEMATICAL",
            "A number raised to a power.",
        ),
        (
            "RADIANS",
            "radians",
            S,
            "MATHEMATICAL",
            "Degrees converted to radians.",
        ),
        (
            "RANDOM",
            "random",
            S,
            "MATHEMATICAL",
            "A random DOUBLE in [0, 1).",
        ),
        (
            "SIGN",
            "signum",
            S,
            "MATHEMATICAL",
            "The sign of a number: -1, 0 or 1.",
        ),
        (
            "SIN",
            "sin",
            S,
            "MATHEMATICAL",
            "The sine of an angle in radians.",
        ),
        (
            "SINH",
            "sinh",
            S,
            "MATHEMATICAL",
            "The hyperbolic sine of a number.",
        ),
        (
            "SQRT",
            "sqrt",
            S,
            "MATHEMATICAL",
            "The square root of a number.",
        ),
        (
            "TAN",
            "tan",
            S,
            "MATHEMATICAL",
            "The tangent of an angle in radians.",
        ),
        (
            "TANH",
            "tanh",
            S,
            "MATHEMATICAL",
            "The hyperbolic tangent of a number.",
        ),
        // Strings.
        (
            "CHR",
            "chr",
            S,
            "STRING",
            "The character of a Unicode code point.",
        ),
        (
            "CONCAT",
            "concat",
            S,
            "STRING",
            "The strings given, one after the other (nulls skipped).",
        ),
        (
            "CONCAT_WS",
            "concat_ws",
            S,
            "STRING",
            "The strings given, joined by the first argument (nulls skipped).",
        ),
        (
            "INITCAP",
            "initcap",
            S,
            "STRING",
            "Each word with its first letter upper case, the rest lower case.",
        ),
        ("LCASE", "lower", S, "STRING", "The string in lower case."),
        (
            "LEN",
            "character_length",
            S,
            "STRING",
            "The number of characters of a string.",
        ),
        (
            "LPAD",
            "lpad",
            S,
            "STRING",
            "The string padded on the left to a length.",
        ),
        (
            "LTRIM",
            "ltrim",
            S,
            "STRING",
            "The string without leading whitespace.",
        ),
        (
            "REPLACE",
            "replace",
            S,
            "STRING",
            "The string with every occurrence of a substring replaced.",
        ),
        (
            "RPAD",
            "rpad",
            S,
            "STRING",
            "The string padded on the right to a length.",
        ),
        (
            "RTRIM",
            "rtrim",
            S,
            "STRING",
            "The string without trailing whitespace.",
        ),
        (
            "TRIM",
            "btrim",
            S,
            "STRING",
            "The string without leading and trailing whitespace.",
        ),
        ("UCASE", "upper", S, "STRING", "The string in upper case."),
        // Nulls and comparisons.
        (
            "COALESCE",
            "coalesce",
            S,
            "CONDITIONAL",
            "The first argument that is not null.",
        ),
        (
            "GREATEST",
            "greatest",
            S,
            "CONDITIONAL",
            "The largest of the arguments (nulls skipped).",
        ),
        (
            "IFNULL",
            "nvl",
            S,
            "CONDITIONAL",
            "The first argument, or the second if it is null.",
        ),
        (
            "LEAST",
            "least",
            S,
            "CONDITIONAL",
            "The smallest of the arguments (nulls skipped).",
        ),
        (
            "NULLIF",
            "nullif",
            S,
            "CONDITIONAL",
            "Null if both arguments are equal, else the first.",
        ),
        // Collections.
        (
            "ARRAY_CONCAT",
            "array_concat",
            S,
            "ARRAY",
            "The elements of both arrays.",
        ),
        (
            "ARRAY_CONTAINS",
            "array_has",
            S,
            "ARRAY",
            "Whether an array holds a value.",
        ),
        (
            "ARRAY_DISTINCT",
            "array_distinct",
            S,
            "ARRAY",
            "The array without repeated elements.",
        ),
        (
            "ARRAY_EXCEPT",
            "array_except",
            S,
            "ARRAY",
            "The elements of the first array not in the second.",
        ),
        (
            "ARRAY_INTERSECT",
            "array_intersect",
            S,
            "ARRAY",
            "The elements in both arrays.",
        ),
        (
            "ARRAY_MAX",
            "array_max",
            S,
            "ARRAY",
            "The largest element of an array.",
        ),
        (
            "ARRAY_MIN",
            "array_min",
            S,
            "ARRAY",
            "The smallest element of an array.",
        ),
        (
            "ARRAY_REMOVE",
            "array_remove_all",
            S,
            "ARRAY",
            "The array without the elements equal to a value.",
        ),
        (
            "ARRAY_SORT",
            "array_sort",
            S,
            "ARRAY",
            "The array sorted ('ASC' or 'DESC').",
        ),
        (
            "ARRAY_UNION",
            "array_union",
            S,
            "ARRAY",
            "The distinct elements of both arrays.",
        ),
        (
            "MAP_KEYS",
            "map_keys",
            S,
            "MAP",
            "The keys of a map, as an array.",
        ),
        (
            "MAP_VALUES",
            "map_values",
            S,
            "MAP",
            "The values of a map, as an array.",
        ),
        (
            "SLICE",
            "array_slice",
            S,
            "ARRAY",
            "The elements of an array from one 1-based position to another, inclusive.",
        ),
        // Lambdas.
        (
            "FILTER",
            "array_filter",
            S,
            "LAMBDA",
            "The elements of an array for which a lambda is true.",
        ),
        (
            "TRANSFORM",
            "array_transform",
            S,
            "LAMBDA",
            "Each element of an array passed through a lambda.",
        ),
    ]
};

/// The functions a query may call, resolved once.
pub struct Functions {
    scalars: HashMap<String, Arc<ScalarUDF>>,
    higher_order: HashMap<String, Arc<HigherOrderUDF>>,
    aggregates: HashMap<String, Arc<AggregateUDF>>,
    infos: BTreeMap<&'static str, FunctionInfo>,
    /// The signatures of ksqlDB's own UDFs and aggregates, as they declare them.
    declared: HashMap<&'static str, Vec<Variation>>,
}

/// One signature of a function, as `DESCRIBE FUNCTION` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variation {
    /// Its parameters' types in ksqlDB's words (`INT`, `VARCHAR`, `ARRAY<T>`).
    pub args: Vec<String>,
    /// Whether the last parameter repeats.
    pub variadic: bool,
    /// Its result's type (`T` and its kin where it follows a generic parameter).
    pub returns: String,
}

impl Functions {
    /// The shared table (built on first use).
    pub fn get() -> &'static Functions {
        static FUNCTIONS_TABLE: OnceLock<Functions> = OnceLock::new();
        FUNCTIONS_TABLE.get_or_init(Functions::build)
    }

    fn build() -> Functions {
        let mut df_scalars: HashMap<String, Arc<ScalarUDF>> = HashMap::new();
        for udf in datafusion_functions::all_default_functions()
            .into_iter()
            .chain(datafusion_functions_nested::all_default_nested_functions())
        {
            df_scalars.insert(udf.name().to_string(), udf.clone());
            for alias in udf.aliases() {
                df_scalars.insert(alias.clone(), udf.clone());
            }
        }
        let df_higher_order: HashMap<String, Arc<HigherOrderUDF>> =
            datafusion_functions_nested::all_default_higher_order_functions()
                .into_iter()
                .map(|f| (f.name().to_string(), f))
                .collect();
        let mut functions = Functions {
            scalars: HashMap::new(),
            higher_order: HashMap::new(),
            aggregates: HashMap::new(),
            infos: BTreeMap::new(),
            declared: HashMap::new(),
        };
        for &(name, df_name, kind, category, description) in FUNCTIONS {
            let key = name.to_ascii_lowercase();
            let found = match kind {
                FunctionKind::Scalar => {
                    if let Some(f) = df_scalars.get(df_name) {
                        functions.scalars.insert(key, f.clone());
                        true
                    } else if let Some(f) = df_higher_order.get(df_name) {
                        functions.higher_order.insert(key, f.clone());
                        true
                    } else {
                        false
                    }
                }
                FunctionKind::Aggregate | FunctionKind::Table => false,
            };
            // A name of the table DataFusion does not have is a mistake of the table, caught
            // by the unit test below; it is left out rather than failing every query.
            if found {
                functions.infos.insert(
                    name,
                    FunctionInfo {
                        name,
                        kind,
                        category,
                        description,
                    },
                );
            }
        }
        // ksqlDB's aggregates are UDAFs of their own: their types and semantics are not
        // DataFusion's (ksqlDB's SUM of INTs is an INT, its SUM of nothing 0).
        for function in crate::aggregate::AggregateFn::ALL {
            let name = function.name();
            functions
                .aggregates
                .insert(name.to_ascii_lowercase(), Arc::new(function.udf()));
            functions.declared.insert(name, function.variations());
            functions.infos.insert(
                name,
                FunctionInfo {
                    name,
                    kind: FunctionKind::Aggregate,
                    category: "AGGREGATE",
                    description: function.description(),
                },
            );
        }
        // ksqlDB's functions DataFusion has none with the same semantics for: UDFs of our
        // own (`udf/`).
        for udf in crate::plan::udf::all() {
            let info = FunctionInfo {
                name: udf.name,
                kind: FunctionKind::Scalar,
                category: udf.category,
                description: udf.description,
            };
            functions.declared.insert(udf.name, udf.variations());
            functions
                .scalars
                .insert(udf.name.to_ascii_lowercase(), udf.into_udf());
            functions.infos.insert(info.name, info);
        }
        // `AS_VALUE(x)`: `x`, copied into the value (the planner's rewrite; no DataFusion
        // function).
        functions.infos.insert(
            "AS_VALUE",
            FunctionInfo {
                name: "AS_VALUE",
                kind: FunctionKind::Scalar,
                category: "OTHER",
                description: "A copy of a key column (or expression) in the value.",
            },
        );
        // `EXPLODE(array)`: ksqlDB's table function, DataFusion's `unnest` (the planner's
        // rewrite; the plan's `Unnest` node runs as `exec::Step::Unnest`).
        functions.infos.insert(
            "EXPLODE",
            FunctionInfo {
                name: "EXPLODE",
                kind: FunctionKind::Table,
                category: "TABLE",
                description: "Explodes an array. This function outputs one value for each element of the array.",
            },
        );
        functions.declared.insert(
            "EXPLODE",
            vec![Variation {
                args: vec!["ARRAY<T>".to_string()],
                variadic: false,
                returns: "T".to_string(),
            }],
        );
        // `WINDOWSTART` and `WINDOWEND` of windowed aggregations, planned as aggregates of
        // their rows: resolvable, not listed.
        for function in crate::aggregate::AggregateFn::WINDOW_BOUNDS {
            functions.aggregates.insert(
                function.name().to_ascii_lowercase(),
                Arc::new(function.udf()),
            );
        }
        functions
    }

    /// The scalar function called `name` (any case).
    pub fn scalar(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalars.get(&name.to_ascii_lowercase()).cloned()
    }

    /// The lambda-taking function called `name` (any case).
    pub fn higher_order(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.higher_order.get(&name.to_ascii_lowercase()).cloned()
    }

    /// The aggregate function called `name` (any case).
    pub fn aggregate(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.aggregates.get(&name.to_ascii_lowercase()).cloned()
    }

    /// Every function, by name.
    pub fn infos(&self) -> impl Iterator<Item = &FunctionInfo> {
        self.infos.values()
    }

    /// The function called `name` (any case).
    pub fn info(&self, name: &str) -> Option<&FunctionInfo> {
        self.infos.get(name.to_ascii_uppercase().as_str())
    }

    /// The signatures of the function called `name` (any case): as ksqlDB's own functions
    /// declare them, else as DataFusion's function's signature says (its generic
    /// parameters as `ANY`); none known for a lambda-taking function.
    pub fn variations(&self, name: &str) -> Vec<Variation> {
        let upper = name.to_ascii_uppercase();
        if let Some(declared) = self.declared.get(upper.as_str()) {
            return declared.clone();
        }
        match self.scalar(name) {
            Some(udf) => signature_variations(&udf.signature().type_signature)
                .into_iter()
                .map(|(args, variadic)| {
                    let returns = args
                        .iter()
                        .cloned()
                        .collect::<Option<Vec<DataType>>>()
                        .and_then(|types| udf.return_type(&types).ok())
                        .map_or_else(|| "ANY".to_string(), |t| describe_type(&t));
                    Variation {
                        args: args
                            .iter()
                            .map(|a| a.as_ref().map_or_else(|| "ANY".to_string(), describe_type))
                            .collect(),
                        variadic,
                        returns,
                    }
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// The names of the scalar functions (lower case, as DataFusion's planner asks).
    pub(crate) fn scalar_names(&self) -> Vec<String> {
        self.scalars.keys().cloned().collect()
    }

    /// The names of the lambda-taking functions.
    pub(crate) fn higher_order_names(&self) -> Vec<String> {
        self.higher_order.keys().cloned().collect()
    }

    /// The names of the aggregate functions.
    pub(crate) fn aggregate_names(&self) -> Vec<String> {
        self.aggregates.keys().cloned().collect()
    }
}

/// The argument lists a DataFusion signature takes (a `None`: any type), each with
/// whether its last argument repeats.
fn signature_variations(signature: &TypeSignature) -> Vec<(Vec<Option<DataType>>, bool)> {
    let numeric = [DataType::Int32, DataType::Int64, DataType::Float64];
    match signature {
        TypeSignature::Nullary => vec![(Vec::new(), false)],
        TypeSignature::Exact(types) => vec![(types.iter().cloned().map(Some).collect(), false)],
        TypeSignature::Uniform(n, types) => types
            .iter()
            .map(|t| (vec![Some(t.clone()); *n], false))
            .collect(),
        TypeSignature::Variadic(types) => types
            .iter()
            .map(|t| (vec![Some(t.clone())], true))
            .collect(),
        TypeSignature::String(n) => vec![(vec![Some(DataType::Utf8); *n], false)],
        TypeSignature::Numeric(n) => numeric
            .iter()
            .map(|t| (vec![Some(t.clone()); *n], false))
            .collect(),
        TypeSignature::Any(n) | TypeSignature::Comparable(n) => vec![(vec![None; *n], false)],
        TypeSignature::Coercible(coercions) => vec![(
            coercions
                .iter()
                .map(|c| class_type(c.desired_type()))
                .collect(),
            false,
        )],
        TypeSignature::OneOf(signatures) => {
            let mut out: Vec<(Vec<Option<DataType>>, bool)> = Vec::new();
            for variation in signatures.iter().flat_map(signature_variations) {
                if !out.contains(&variation) {
                    out.push(variation);
                }
            }
            out
        }
        TypeSignature::VariadicAny | TypeSignature::UserDefined => vec![(vec![None], true)],
        TypeSignature::ArraySignature(_) => vec![(vec![None], true)],
    }
}

/// The type a class of DataFusion's coercions stands for (none: any).
fn class_type(class: &TypeSignatureClass) -> Option<DataType> {
    use datafusion_common::types::NativeType;
    match class {
        TypeSignatureClass::Timestamp => Some(DataType::Timestamp(TimeUnit::Millisecond, None)),
        TypeSignatureClass::Time => Some(DataType::Time32(TimeUnit::Millisecond)),
        TypeSignatureClass::Integer => Some(DataType::Int64),
        TypeSignatureClass::Float | TypeSignatureClass::Numeric => Some(DataType::Float64),
        TypeSignatureClass::Decimal => Some(DataType::Decimal128(38, 18)),
        TypeSignatureClass::Binary => Some(DataType::Binary),
        TypeSignatureClass::Native(native) => match native.native() {
            NativeType::String => Some(DataType::Utf8),
            NativeType::Boolean => Some(DataType::Boolean),
            NativeType::Int32 => Some(DataType::Int32),
            NativeType::Int64 => Some(DataType::Int64),
            NativeType::Float64 => Some(DataType::Float64),
            NativeType::Binary => Some(DataType::Binary),
            NativeType::Date => Some(DataType::Date32),
            _ => None,
        },
        _ => None,
    }
}

/// An Arrow type in the words of ksqlDB's `DESCRIBE FUNCTION`.
pub fn describe_type(ty: &DataType) -> String {
    match ty {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "INT".into(),
        DataType::Int64 | DataType::UInt64 | DataType::UInt32 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(..) | DataType::Decimal256(..) => "DECIMAL".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(..) => "TIMESTAMP".into(),
        DataType::List(item) | DataType::LargeList(item) => {
            format!("ARRAY<{}>", describe_type(item.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => format!(
                "MAP<{}, {}>",
                describe_type(fields[0].data_type()),
                describe_type(fields[1].data_type())
            ),
            _ => "MAP<K, V>".into(),
        },
        DataType::Struct(fields) => format!(
            "STRUCT<{}>",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), describe_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "ANY".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_function_resolves_to_a_datafusion_function() {
        let functions = Functions::get();
        let missing: Vec<&str> = FUNCTIONS
            .iter()
            .filter(|(name, ..)| functions.info(name).is_none())
            .map(|(name, ..)| *name)
            .collect();
        assert!(missing.is_empty(), "not found in DataFusion: {missing:?}");
        assert!(functions.scalar("ucase").is_some());
        assert!(functions.scalar("UCase").is_some());
        assert!(functions.higher_order("transform").is_some());
        assert!(
            functions.scalar("upper").is_none(),
            "DataFusion's own names stay hidden"
        );
    }

    #[test]
    fn every_function_but_the_lambda_takers_describes_its_signatures() {
        let functions = Functions::get();
        let show = |name: &str| -> Vec<String> {
            functions
                .variations(name)
                .iter()
                .map(|v| {
                    format!(
                        "({}{}) -> {}",
                        v.args.join(", "),
                        if v.variadic { "..." } else { "" },
                        v.returns
                    )
                })
                .collect()
        };
        assert!(
            show("SUM").contains(&"(INT) -> INT".to_string()),
            "{:?}",
            show("SUM")
        );
        assert!(
            show("topk").contains(&"(VARCHAR, INT) -> ARRAY<VARCHAR>".to_string()),
            "{:?}",
            show("TOPK")
        );
        assert!(
            show("SUBSTRING").contains(&"(VARCHAR, INT) -> VARCHAR".to_string()),
            "{:?}",
            show("SUBSTRING")
        );
        assert!(
            show("ARRAY_LENGTH").contains(&"(ARRAY<T>) -> INT".to_string()),
            "{:?}",
            show("ARRAY_LENGTH")
        );
        assert!(
            show("COUNT").contains(&"() -> BIGINT".to_string()),
            "{:?}",
            show("COUNT")
        );
        let mut empty = Vec::new();
        for info in functions.infos() {
            if functions.variations(info.name).is_empty()
                && functions.higher_order(info.name).is_none()
                && info.name != "AS_VALUE"
            {
                empty.push(info.name);
            }
        }
        assert!(empty.is_empty(), "no signature for {empty:?}");
        // DataFusion's signatures: a numeric one by type, a generic one as ANY.
        assert_eq!(
            show("ABS"),
            vec!["(INT) -> INT", "(BIGINT) -> BIGINT", "(DOUBLE) -> DOUBLE"]
        );
        assert_eq!(show("COALESCE"), vec!["(ANY...) -> ANY"]);
    }

    #[test]
    fn ksqldb_udfs_resolve_and_are_listed() {
        let functions = Functions::get();
        for name in [
            "TIMESTAMPTOSTRING",
            "PARSE_DATE",
            "INSTR",
            "EXTRACTJSONFIELD",
            "ROUND",
        ] {
            assert!(functions.scalar(name).is_some(), "{name} resolves");
            let info = functions.info(name).expect("listed");
            assert_eq!(info.kind, FunctionKind::Scalar);
        }
        // The table and the UDFs do not name a function twice.
        for udf in crate::plan::udf::all() {
            assert!(
                !FUNCTIONS.iter().any(|(name, ..)| *name == udf.name),
                "{} is in the table and a UDF",
                udf.name
            );
        }
    }
}
