//! ksqlDB's built-in functions by ksqlDB's names, each mapped onto the DataFusion function
//! whose semantics match, or (`udf/`) a UDF of our own where none does.
//!
//! Only the names listed here resolve in a query: a ksqlDB user gets ksqlDB's functions, and
//! `SHOW FUNCTIONS` lists exactly what works.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use datafusion_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF};

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
