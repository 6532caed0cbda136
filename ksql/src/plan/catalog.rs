//! What DataFusion's planner sees of the server: each stream and table as a table of its
//! columns and pseudo columns, ksqlDB's functions, and ksqlDB's types in `CAST`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use datafusion_common::config::ConfigOptions;
use datafusion_common::TableReference;
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::planner::{ContextProvider, ExprPlanner, TypePlanner};
use datafusion_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};
use sqlparser::ast::{DataType as SqlDataType, ExactNumberInfo, TimezoneInfo};

use crate::error::{KsqlError, Result};
use crate::format::arrow_type;
use crate::metastore::{DataSource, MetaStore};
use crate::plan::functions::Functions;

/// `ROWTIME`: the record's timestamp (ms).
pub const ROWTIME: &str = "ROWTIME";
/// `ROWPARTITION`: the record's partition.
pub const ROWPARTITION: &str = "ROWPARTITION";
/// `ROWOFFSET`: the record's offset.
pub const ROWOFFSET: &str = "ROWOFFSET";
/// `WINDOWSTART` of a windowed source's key.
pub const WINDOWSTART: &str = "WINDOWSTART";
/// `WINDOWEND` of a windowed source's key.
pub const WINDOWEND: &str = "WINDOWEND";

/// The Arrow schema DataFusion plans a source with: its columns in order (key columns
/// first), then `ROWTIME`, `ROWPARTITION`, `ROWOFFSET` and, for a windowed source,
/// `WINDOWSTART` and `WINDOWEND`.
pub fn source_schema(source: &DataSource, metastore: &MetaStore) -> Result<SchemaRef> {
    let mut fields = Vec::with_capacity(source.columns.len() + 5);
    for column in &source.columns {
        let ty = metastore.resolve(&column.ty)?;
        fields.push(Field::new(&column.name, arrow_type(&ty)?, true));
    }
    fields.push(Field::new(ROWTIME, DataType::Int64, false));
    fields.push(Field::new(ROWPARTITION, DataType::Int32, false));
    fields.push(Field::new(ROWOFFSET, DataType::Int64, false));
    if source.properties.window.is_some() {
        fields.push(Field::new(WINDOWSTART, DataType::Int64, false));
        fields.push(Field::new(WINDOWEND, DataType::Int64, false));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// DataFusion's view of the metastore for one query.
pub(crate) struct Catalog {
    tables: HashMap<String, Arc<dyn TableSource>>,
    functions: &'static Functions,
    options: ConfigOptions,
    expr_planners: Vec<Arc<dyn ExprPlanner>>,
    type_planner: Arc<dyn TypePlanner>,
}

impl Catalog {
    /// A catalog of every source of `metastore`.
    pub(crate) fn new(metastore: &MetaStore) -> Result<Catalog> {
        let mut tables = HashMap::new();
        for source in metastore.sources() {
            let table: Arc<dyn TableSource> =
                Arc::new(LogicalTableSource::new(source_schema(source, metastore)?));
            tables.insert(source.name.clone(), table);
        }
        let mut options = ConfigOptions::new();
        // ksqlDB's identifiers are upper-cased before planning (unquoted ones), so the
        // planner takes them as they are.
        options.sql_parser.enable_ident_normalization = false;
        options.sql_parser.map_string_types_to_utf8view = false;
        Ok(Catalog {
            tables,
            functions: Functions::get(),
            options,
            expr_planners: vec![
                Arc::new(StringPlus),
                Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
                Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
                Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
                // ksqlDB's SUBSTRING (its positions), before DataFusion's `substr` takes it.
                Arc::new(crate::plan::udf::SubstringPlanner),
                Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
                Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
            ],
            type_planner: Arc::new(KsqlTypes),
        })
    }
}

impl ContextProvider for Catalog {
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion_common::Result<Arc<dyn TableSource>> {
        self.tables.get(name.table()).cloned().ok_or_else(|| {
            datafusion_common::DataFusionError::Plan(format!("{} does not exist.", name.table()))
        })
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.expr_planners
    }

    fn get_type_planner(&self) -> Option<Arc<dyn TypePlanner>> {
        Some(self.type_planner.clone())
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.scalar(name)
    }

    fn get_higher_order_meta(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.functions.higher_order(name)
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.functions.aggregate(name)
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions.scalar_names()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        self.functions.higher_order_names()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.functions.aggregate_names()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// ksqlDB's `+` of two strings: their concatenation (DataFusion's `+` is arithmetic only),
/// as the `||` operator, a null making a null. An `ExprPlanner`, so that the planner types
/// the expression as a string from the start.
#[derive(Debug)]
struct StringPlus;

impl datafusion_expr::planner::ExprPlanner for StringPlus {
    fn plan_binary_op(
        &self,
        expr: datafusion_expr::planner::RawBinaryExpr,
        schema: &datafusion_common::DFSchema,
    ) -> datafusion_common::Result<
        datafusion_expr::planner::PlannerResult<datafusion_expr::planner::RawBinaryExpr>,
    > {
        use datafusion_expr::planner::PlannerResult;
        use datafusion_expr::{BinaryExpr, ExprSchemable, Operator};
        let is_string = |e: &datafusion_expr::Expr| {
            e.get_type(schema).is_ok_and(|t| {
                matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            })
        };
        if expr.op == sqlparser::ast::BinaryOperator::Plus
            && is_string(&expr.left)
            && is_string(&expr.right)
        {
            return Ok(PlannerResult::Planned(datafusion_expr::Expr::BinaryExpr(
                BinaryExpr::new(
                    Box::new(expr.left),
                    Operator::StringConcat,
                    Box::new(expr.right),
                ),
            )));
        }
        Ok(PlannerResult::Original(expr))
    }
}

/// ksqlDB's meaning of the types in `CAST(x AS type)`: `TIMESTAMP` in milliseconds, `TIME`
/// in milliseconds of the day, `BYTES` as binary, `STRING` as UTF-8.
#[derive(Debug)]
struct KsqlTypes;

impl TypePlanner for KsqlTypes {
    fn plan_type_field(
        &self,
        sql_type: &SqlDataType,
    ) -> datafusion_common::Result<Option<FieldRef>> {
        let ty = match sql_type {
            SqlDataType::Timestamp(_, TimezoneInfo::None) => {
                DataType::Timestamp(TimeUnit::Millisecond, None)
            }
            SqlDataType::Time(_, TimezoneInfo::None) => DataType::Time32(TimeUnit::Millisecond),
            SqlDataType::Bytes(_) | SqlDataType::Bytea | SqlDataType::Binary(_) => DataType::Binary,
            SqlDataType::String(_) | SqlDataType::Varchar(_) | SqlDataType::Text => DataType::Utf8,
            SqlDataType::Int(_) | SqlDataType::Integer(_) => DataType::Int32,
            SqlDataType::BigInt(_) => DataType::Int64,
            SqlDataType::Double(_) | SqlDataType::DoublePrecision => DataType::Float64,
            SqlDataType::Decimal(ExactNumberInfo::PrecisionAndScale(p, s)) => {
                let (Ok(p), Ok(s)) = (u8::try_from(*p), i8::try_from(*s)) else {
                    return Ok(None);
                };
                DataType::Decimal128(p, s)
            }
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(Field::new("", ty, true))))
    }
}

/// A DataFusion error as ksqlDB's statement error.
pub(crate) fn planning_error(err: datafusion_common::DataFusionError) -> KsqlError {
    let text = err.strip_backtrace().to_string();
    // A function refusing its arguments: ksqlDB's message alone, without DataFusion's
    // wrapping around it.
    if let Some(at) = text.find("does not accept parameters") {
        if let Some(start) = text[..at].rfind("Function '") {
            let end = text[at..]
                .find(" No function matches")
                .map_or(text.len(), |end| at + end);
            return KsqlError::statement(text[start..end].trim_end().to_string());
        }
    }
    // ksqlDB's EXPLODE is DataFusion's unnest: its refusal in ksqlDB's terms.
    if text.contains("unnest() can only be applied to array") {
        return KsqlError::statement(
            "Function 'explode' does not accept parameters: it takes an ARRAY.\nValid alternatives are:\nexplode(ARRAY<DECIMAL> input)\nexplode(ARRAY<T> list)",
        );
    }
    KsqlError::statement(text)
}
