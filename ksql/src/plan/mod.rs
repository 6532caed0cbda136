//! Queries planned by DataFusion: a ksqlDB `SELECT` becomes a DataFusion logical plan over
//! its source's columns (DataFusion's SQL planner resolving names, functions and types, its
//! analyzer coercing types, its optimiser simplifying), which [`crate::exec`] turns into a
//! Streams topology.
//!
//! ksqlDB's rules come first: unquoted names upper-cased, `SELECT *` as the key and value
//! columns (not the pseudo columns), unnamed expressions named `KSQL_COL_n`, `a->b` as a
//! struct field.

pub mod catalog;
pub mod functions;
pub mod join;
pub(crate) mod rewrite;
pub mod udf;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion_common::tree_node::TreeNode;
use datafusion_common::ScalarValue;
use datafusion_expr::LogicalPlan;
use datafusion_optimizer::{Analyzer, Optimizer, OptimizerContext};
use datafusion_sql::planner::{ParserOptions, SqlToRel};
use sqlparser::ast::{
    Expr, GroupByExpr, Ident, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement as SqlStatement,
};

use crate::error::{KsqlError, Result};
use crate::metastore::{name_of, DataSource, MetaStore};
use crate::parser::ast::{Query, SqlType};
use catalog::{planning_error, Catalog};

/// A column of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    /// Its name.
    pub name: String,
    /// Its ksqlDB type.
    pub ty: SqlType,
    /// Whether it goes in the key of the records written.
    pub key: bool,
}

/// A query planned: what it reads, DataFusion's optimised plan, and its result's columns.
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    /// The source read (`FROM`).
    pub source: DataSource,
    /// DataFusion's plan, optimised.
    pub plan: LogicalPlan,
    /// The result's columns, in order.
    pub columns: Vec<OutputColumn>,
    /// Key columns of the source the projection leaves out, or `GROUP BY` expressions
    /// it does not select (a persistent query must keep them, ksqlDB's rule).
    pub missing_keys: Vec<String>,
    /// Whether it aggregates (`GROUP BY`): its result is a table.
    pub grouped: bool,
    /// Whether it re-keys its rows (`PARTITION BY`): its key columns are the `PARTITION BY`
    /// expressions (none for `PARTITION BY NULL`).
    pub partitioned: bool,
    /// Its `WINDOW`, if it aggregates by window.
    pub window: Option<crate::parser::ast::Window>,
    /// `EMIT FINAL`: a window's row once the window closes, not each update.
    pub emit_final: bool,
    /// Neither grouped nor re-keyed: the source key column each of the result's key
    /// columns selects, in order (a table's deletes are written with these keys).
    pub key_sources: Vec<String>,
    /// A join's other sources and kinds (the plan has a `Join` node for each).
    pub join: Option<join::PlannedJoin>,
}

impl PlannedQuery {
    /// The names of the sources it reads: its source, and a join's others.
    pub fn source_names(&self) -> Vec<String> {
        let mut names = vec![self.source.name.clone()];
        if let Some(join) = &self.join {
            names.extend(join.rights().into_iter().map(|s| s.name.clone()));
        }
        names
    }
}

/// Plans `query` against the sources of `metastore`.
/// Whether the query's select list calls a table function (`EXPLODE`).
fn uses_table_function(query: &Query) -> bool {
    let mut found = false;
    for item in &query.projection {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        let _ = sqlparser::ast::visit_expressions(expr, |e| {
            if matches!(e, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("EXPLODE"))
            {
                found = true;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        });
    }
    found
}

pub fn plan_query(query: &Query, metastore: &MetaStore) -> Result<PlannedQuery> {
    if !query.joins.is_empty() {
        return join::plan_join(query, metastore);
    }
    if query.window.is_some() && query.group_by.is_empty() {
        return Err(KsqlError::statement(
            "WINDOW clause requires a GROUP BY clause.",
        ));
    }
    let windowed = query.window.is_some();
    if query.having.is_some() && query.group_by.is_empty() {
        return Err(KsqlError::statement("HAVING requires GROUP BY clause."));
    }
    if !query.partition_by.is_empty() && !query.group_by.is_empty() {
        return Err(KsqlError::statement(
            "PARTITION BY and GROUP BY in the same query are not supported.",
        ));
    }
    let source_name = name_of(&query.from.name);
    let source = metastore
        .source(&source_name)
        .ok_or_else(|| KsqlError::statement(format!("{source_name} does not exist.")))?;
    // ksqlDB's table functions (`EXPLODE`): over streams only, without aggregation.
    if uses_table_function(query) {
        if !query.group_by.is_empty() {
            return Err(KsqlError::statement(
                "Table functions cannot be used with aggregations.",
            ));
        }
        if source.kind == crate::parser::ast::SourceKind::Table {
            return Err(KsqlError::statement(
                "Table source is not supported with table functions",
            ));
        }
    }
    if source.kind == crate::parser::ast::SourceKind::Table && windowed {
        return Err(KsqlError::statement(
            "Windowing not supported for table aggregations.",
        ));
    }
    let alias = query.from.alias.as_ref().map(name_of);
    // What qualifies the source's columns: its alias, or its name.
    let qualifier = Some(alias.clone().unwrap_or_else(|| source.name.clone()));
    // `PARTITION BY NULL`: no key at all.
    let unkeyed = matches!(
        query.partition_by.as_slice(),
        [Expr::Value(v)] if v.value == sqlparser::ast::Value::Null
    );
    let partition_by: &[Expr] = if unkeyed { &[] } else { &query.partition_by };
    let mut items = select_items(query, source, alias.as_deref(), partition_by)?;
    let mut partition = Vec::with_capacity(partition_by.len());
    for expr in partition_by {
        let mut expr = expr.clone();
        rewrite::for_datafusion(&mut expr)?;
        partition.push(expr);
    }
    if source.kind == crate::parser::ast::SourceKind::Table {
        // `PARTITION BY NULL` too.
        if let Some(expr) = partition.first().or(query.partition_by.first()) {
            // ksqlDB's words (a table's rows stay where their keys are).
            let keys = source.key_names();
            return Err(KsqlError::statement(match keys.as_slice() {
                [key] => format!(
                    "Cannot repartition a TABLE source. If this is a join, make sure that the criteria uses the TABLE's key column {key} instead of [{}]",
                    unquoted(expr)
                ),
                _ => "Cannot repartition a TABLE source. If this is a join, joins on tables with multiple columns is not yet supported.".to_string(),
            }));
        }
    }
    let mut group_by = Vec::with_capacity(query.group_by.len());
    for expr in &query.group_by {
        let mut expr = expr.clone();
        rewrite::for_datafusion(&mut expr)?;
        if let Some(bound) = rewrite::misplaced_window_bound(&expr, true) {
            return Err(window_bound_error(bound));
        }
        group_by.push(expr);
    }

    // The statement DataFusion plans: `SELECT items FROM source [AS alias] [WHERE ...]`,
    // its skeleton parsed from text so that every field of sqlparser's AST is as its
    // parser leaves it.
    let from = match &alias {
        Some(alias) => format!("{} AS {}", quoted(&source.name), quoted(alias)),
        None => quoted(&source.name),
    };
    let skeleton = format!("SELECT 1 FROM {from}");
    let mut statement =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, &skeleton)
            .ok()
            .and_then(|mut statements| statements.pop())
            .ok_or_else(|| KsqlError::statement(format!("cannot plan a query of {from}")))?;
    let SqlStatement::Query(sql_query) = &mut statement else {
        return Err(KsqlError::statement("cannot plan the query"));
    };
    let SetExpr::Select(select) = sql_query.body.as_mut() else {
        return Err(KsqlError::statement("cannot plan the query"));
    };
    let mut projection = Vec::with_capacity(items.len());
    for item in &mut items {
        let as_value = rewrite::is_as_value(&item.expr);
        let mut expr = item.expr.clone();
        rewrite::for_datafusion(&mut expr)?;
        if let Some(bound) = rewrite::misplaced_window_bound(&expr, false) {
            return Err(window_bound_error(bound));
        }
        if windowed {
            rewrite::window_bounds(&mut expr);
        }
        if !group_by.is_empty() {
            // Grouped, a key column is a `GROUP BY` expression selected as it is.
            item.key = !as_value
                && group_by
                    .iter()
                    .any(|g| same_expr(g, &expr, qualifier.as_deref()));
        } else if !partition.is_empty() || unkeyed {
            // Repartitioned, a `PARTITION BY` expression; the source's key is a value.
            item.key = !as_value
                && partition
                    .iter()
                    .any(|p| same_expr(p, &expr, qualifier.as_deref()));
        }
        projection.push(SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', &item.name),
        });
    }
    select.projection = projection;
    if !group_by.is_empty() {
        // ksqlDB's rule, in its words: a selected expression without an aggregate is a
        // GROUP BY expression, or uses only columns of GROUP BY expressions.
        let loose: Vec<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { expr, .. } => Some(expr),
                _ => None,
            })
            .filter(|expr| {
                aggregate_in(expr).is_none()
                    && !has_lambda(expr)
                    && !group_by
                        .iter()
                        .any(|g| same_expr(g, expr, qualifier.as_deref()))
                    && columns_of(expr).iter().any(|column| {
                        !group_by.iter().any(|g| {
                            columns_of(g)
                                .iter()
                                .any(|c| same_expr(c, column, qualifier.as_deref()))
                        })
                    })
            })
            .map(unquoted)
            .collect();
        if !loose.is_empty() {
            return Err(KsqlError::statement(format!(
                "Non-aggregate SELECT expression(s) not part of GROUP BY: {}\nEither add the column(s) to the GROUP BY or remove them from the SELECT.",
                loose.join(", ")
            )));
        }
    }
    if let Some(selection) = &query.selection {
        let mut selection = selection.clone();
        rewrite::for_datafusion(&mut selection)?;
        if let Some(name) = aggregate_in(&selection) {
            return Err(KsqlError::statement(format!(
                "Aggregate functions can not be used in WHERE clause: {name}"
            )));
        }
        select.selection = Some(selection);
    }
    select.group_by = GroupByExpr::Expressions(group_by.clone(), Vec::new());
    if let Some(having) = &query.having {
        let mut having = having.clone();
        rewrite::for_datafusion(&mut having)?;
        if windowed {
            rewrite::window_bounds(&mut having);
        }
        select.having = Some(having);
    }

    let plan = datafusion_plan(statement, metastore, query)?;
    let named: Vec<(&str, bool)> = items.iter().map(|i| (i.name.as_str(), i.key)).collect();
    let columns = output_columns(&plan, &named)?;
    let grouped = contains_aggregate(&plan);
    if grouped && !group_by.is_empty() && !has_aggregate_function(&plan) {
        return Err(KsqlError::statement(
            "GROUP BY requires aggregate functions in either the SELECT or HAVING clause.",
        ));
    }
    if grouped && group_by.is_empty() {
        return Err(KsqlError::statement(
            "Aggregate functions require a GROUP BY clause (Sluice's ksql, as ksqlDB, aggregates by key).",
        ));
    }
    // The names of the items (the key items, if `keys`) selecting `key_expr` as it is.
    let selecting = |key_expr: &Expr, keys: bool| -> Vec<&str> {
        items
            .iter()
            .filter(|i| {
                let mut e = i.expr.clone();
                (i.key || !keys)
                    && rewrite::for_datafusion(&mut e).is_ok()
                    && same_expr(key_expr, &e, qualifier.as_deref())
            })
            .map(|i| i.name.as_str())
            .collect()
    };
    for p in &partition {
        let names = selecting(p, true);
        if names.len() > 1 {
            return Err(KsqlError::statement(format!(
                "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                unquoted(p),
                and_names(&names)
            )));
        }
    }
    for g in &group_by {
        let names = selecting(g, true);
        if names.len() > 1 {
            return Err(KsqlError::statement(format!(
                "The projection contains a key column more than once: `{}`.\nEach key column must only be in the projection once. If you intended to copy the key into the value, then consider using the AS_VALUE function to indicate which key reference should be copied.",
                names.join("` and `")
            )));
        }
    }
    let missing_keys = if !partition.is_empty() || unkeyed {
        partition
            .iter()
            .zip(partition_by)
            .filter(|(p, _)| selecting(p, false).is_empty())
            .map(|(_, original)| qualified(original, alias.as_deref().unwrap_or(&source.name)))
            .collect()
    } else if group_by.is_empty() {
        source
            .columns
            .iter()
            .filter(|c| c.is_key() && !items.iter().any(|i| i.key && i.source_column == c.name))
            .map(|c| c.name.clone())
            .collect()
    } else {
        group_by
            .iter()
            .filter(|g| {
                !query.projection.iter().any(|item| match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        let mut e = e.clone();
                        rewrite::for_datafusion(&mut e).is_ok()
                            && same_expr(g, &e, qualifier.as_deref())
                    }
                    _ => false,
                })
            })
            .map(unquoted)
            .collect()
    };
    let key_sources = if grouped || !partition.is_empty() || unkeyed {
        Vec::new()
    } else {
        // A windowed source's window bounds are in its key but not key columns.
        items
            .iter()
            .filter(|i| i.key && source.column(&i.source_column).is_some())
            .map(|i| i.source_column.clone())
            .collect()
    };
    Ok(PlannedQuery {
        source: source.clone(),
        plan,
        columns,
        missing_keys,
        grouped,
        partitioned: !query.partition_by.is_empty(),
        window: query.window.clone(),
        emit_final: query.emit == Some(crate::parser::ast::Emit::Final),
        key_sources,
        join: None,
    })
}

/// `statement` (the query as DataFusion's SQL) planned by DataFusion against the sources of
/// `metastore`: its planner, analyzer (type coercion) and optimiser.
pub(super) fn datafusion_plan(
    statement: SqlStatement,
    metastore: &MetaStore,
    query: &Query,
) -> Result<LogicalPlan> {
    let catalog = Catalog::new(metastore)?;
    let options = ParserOptions::new()
        .with_enable_ident_normalization(false)
        .with_map_string_types_to_utf8view(false);
    let planner = SqlToRel::new_with_options(&catalog, options);
    let plan = planner
        .sql_statement_to_plan(statement)
        .map_err(|e| plan_error(e, query))?;
    check_comparisons(&plan)?;
    let plan = Analyzer::new()
        .execute_and_check(
            plan,
            datafusion_expr::planner::ContextProvider::options(&catalog),
            |_, _| {},
        )
        .map_err(|e| plan_error(e, query))?;
    // No query start time: a streaming query's `now()` is each row's, not the plan's.
    let context = OptimizerContext::new().without_query_execution_start_time();
    Optimizer::new()
        .optimize(plan, &context, |_, _| {})
        .map_err(planning_error)
}

/// ksqlDB's type rules for comparisons in `WHERE`, which DataFusion's coercion would
/// otherwise bend (`ID = '10'` of an `INT` key compares a string with a number; with
/// `NULL`, `IS NULL` is meant), in ksqlDB's words.
fn check_comparisons(plan: &LogicalPlan) -> Result<()> {
    use datafusion_expr::{ExprSchemable, Operator};
    let mut problem = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::Filter(filter) = node {
            let schema = filter.input.schema();
            let _ = filter.predicate.apply(|e| {
                let datafusion_expr::Expr::BinaryExpr(b) = e else {
                    return Ok(datafusion_common::tree_node::TreeNodeRecursion::Continue);
                };
                let name = match b.op {
                    Operator::Eq => "EQUAL",
                    Operator::NotEq => "NOT_EQUAL",
                    Operator::Lt => "LESS_THAN",
                    Operator::LtEq => "LESS_THAN_OR_EQUAL",
                    Operator::Gt => "GREATER_THAN",
                    Operator::GtEq => "GREATER_THAN_OR_EQUAL",
                    _ => return Ok(datafusion_common::tree_node::TreeNodeRecursion::Continue),
                };
                let (Ok(left), Ok(right)) = (b.left.get_type(schema), b.right.get_type(schema))
                else {
                    return Ok(datafusion_common::tree_node::TreeNodeRecursion::Continue);
                };
                let statement = ksql_text(&filter.predicate);
                let type_name =
                    |t: &DataType| sql_type(t).map_or_else(|| t.to_string(), |t| t.to_string());
                if left == DataType::Null || right == DataType::Null {
                    let typed = if left == DataType::Null { &right } else { &left };
                    problem = Some(format!(
                        "Error in WHERE expression: Comparison with NULL not supported: {} {} NULL\nUse 'IS NULL' or 'IS NOT NULL' instead.\nStatement: {statement}",
                        type_name(typed),
                        b.op
                    ));
                } else if comparable_kind(&left) != comparable_kind(&right)
                    && comparable_kind(&left).is_some()
                    && comparable_kind(&right).is_some()
                {
                    problem = Some(format!(
                        "Error in WHERE expression: Cannot compare {} ({}) to {} ({}) with {name}.\nStatement: {statement}",
                        ksql_text(&b.left),
                        type_name(&left),
                        ksql_text(&b.right),
                        type_name(&right),
                    ));
                }
                Ok(if problem.is_some() {
                    datafusion_common::tree_node::TreeNodeRecursion::Stop
                } else {
                    datafusion_common::tree_node::TreeNodeRecursion::Continue
                })
            });
        }
        Ok(if problem.is_some() {
            datafusion_common::tree_node::TreeNodeRecursion::Stop
        } else {
            datafusion_common::tree_node::TreeNodeRecursion::Continue
        })
    });
    match problem {
        Some(message) => Err(KsqlError::statement(message)),
        None => Ok(()),
    }
}

/// Which of ksqlDB's families of comparable types `ty` is in (numbers, strings, booleans);
/// none for the others, which this check leaves to DataFusion.
fn comparable_kind(ty: &DataType) -> Option<u8> {
    if ty.is_numeric() {
        Some(0)
    } else if matches!(
        ty,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        Some(1)
    } else if *ty == DataType::Boolean {
        Some(2)
    } else {
        None
    }
}

/// An expression as ksqlDB prints it in messages: columns by name, strings in single
/// quotes, comparisons in parentheses.
fn ksql_text(expr: &datafusion_expr::Expr) -> String {
    use datafusion_expr::Expr;
    match expr {
        Expr::Column(c) => c.name.clone(),
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) => format!("'{s}'"),
        Expr::Literal(v, _) if v.is_null() => "null".to_string(),
        Expr::Literal(v, _) => v.to_string(),
        Expr::BinaryExpr(b) => format!("({} {} {})", ksql_text(&b.left), b.op, ksql_text(&b.right)),
        // ksqlDB's INT literals are planned as casts of DataFusion's BIGINT ones.
        Expr::Cast(c) if matches!(*c.expr, Expr::Literal(..)) => ksql_text(&c.expr),
        other => other.to_string(),
    }
}

/// The result's columns: each select item's name and whether it is a key (`items`, in
/// order), of the ksqlDB type of the plan's column.
pub(super) fn output_columns(
    plan: &LogicalPlan,
    items: &[(&str, bool)],
) -> Result<Vec<OutputColumn>> {
    let fields = plan.schema().fields();
    if fields.len() != items.len() {
        return Err(KsqlError::statement(format!(
            "the plan has {} columns where the query selects {}",
            fields.len(),
            items.len()
        )));
    }
    items
        .iter()
        .zip(fields.iter())
        .map(|((name, key), field)| {
            Ok(OutputColumn {
                name: name.to_string(),
                ty: sql_type(field.data_type()).ok_or_else(|| {
                    KsqlError::statement(format!(
                        "Column {name} has a type ksqlDB cannot hold: {}",
                        field.data_type()
                    ))
                })?,
                key: *key,
            })
        })
        .collect()
}

/// Constant expressions (`INSERT INTO ... VALUES`' values) as DataFusion expressions:
/// ksqlDB's rules applied, their functions resolved, no columns.
pub fn constant_exprs(exprs: &[Expr], metastore: &MetaStore) -> Result<Vec<datafusion_expr::Expr>> {
    let catalog = Catalog::new(metastore)?;
    let options = ParserOptions::new()
        .with_enable_ident_normalization(false)
        .with_map_string_types_to_utf8view(false);
    let planner = SqlToRel::new_with_options(&catalog, options);
    exprs
        .iter()
        .map(|expr| {
            let mut expr = expr.clone();
            rewrite::for_datafusion(&mut expr)?;
            planner
                .sql_to_expr(
                    expr,
                    &datafusion_common::DFSchema::empty(),
                    &mut datafusion_sql::planner::PlannerContext::new(),
                )
                .map_err(planning_error)
        })
        .collect()
}

/// A planning error in ksqlDB's words where it has them: an unknown column is named, with
/// where it is in the statement.
pub(super) fn plan_error(err: datafusion_common::DataFusionError, query: &Query) -> KsqlError {
    if let datafusion_common::DataFusionError::SchemaError(e, _) = err.find_root() {
        if let datafusion_common::SchemaError::FieldNotFound { field, .. } = e.as_ref() {
            let exprs = query
                .projection
                .iter()
                .filter_map(|item| match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        Some(e)
                    }
                    _ => None,
                })
                .chain(query.selection.iter());
            let name = match &field.relation {
                Some(relation) => format!("{relation}.{}", field.name),
                None => field.name.clone(),
            };
            return KsqlError::statement(format!(
                "{}Column '{name}' cannot be resolved.",
                rewrite::place_of(exprs, &field.name),
            ));
        }
    }
    planning_error(err)
}

/// A select item, named.
struct Item {
    expr: Expr,
    name: String,
    /// A source key column selected as it is (it stays in the key).
    key: bool,
    /// The source column it selects as it is, if it does.
    source_column: String,
}

/// The select items: `*` expanded to the source's columns, each item named as ksqlDB names
/// it, key columns marked.
fn select_items(
    query: &Query,
    source: &DataSource,
    alias: Option<&str>,
    partition_by: &[Expr],
) -> Result<Vec<Item>> {
    let qualifier_ok = |q: &str| q == source.name || alias == Some(q);
    // `*` of a repartitioned stream: the `PARTITION BY` expressions first (the key), then
    // the value columns they do not name, then the old key columns, as ksqlDB orders them.
    let star = || -> Vec<(Expr, Option<String>)> {
        let column_of = |e: &Expr| match e {
            Expr::Identifier(ident) => Some(name_of(ident)),
            Expr::CompoundIdentifier(idents)
                if idents.len() == 2 && qualifier_ok(&name_of(&idents[0])) =>
            {
                Some(name_of(&idents[1]))
            }
            _ => None,
        };
        let named = |name: &str| {
            (
                Expr::Identifier(Ident::with_quote('"', name)),
                Some(name.to_string()),
            )
        };
        if query.partition_by.is_empty() {
            // A windowed source's window bounds follow its key columns (ksqlDB's order).
            let bounds = source
                .properties
                .window
                .as_ref()
                .map(|_| [catalog::WINDOWSTART, catalog::WINDOWEND])
                .into_iter()
                .flatten();
            return source
                .columns
                .iter()
                .filter(|c| c.is_key())
                .map(|c| named(&c.name))
                .chain(bounds.map(named))
                .chain(
                    source
                        .columns
                        .iter()
                        .filter(|c| !c.is_key())
                        .map(|c| named(&c.name)),
                )
                .collect();
        }
        let partition_columns: Vec<String> = partition_by.iter().filter_map(column_of).collect();
        let mut out: Vec<(Expr, Option<String>)> = partition_by
            .iter()
            .map(|p| match column_of(p) {
                Some(column) => named(&column),
                None => (p.clone(), rewrite::implicit_name(p)),
            })
            .collect();
        for key in [false, true] {
            out.extend(
                source
                    .columns
                    .iter()
                    .filter(|c| c.is_key() == key && !partition_columns.contains(&c.name))
                    .map(|c| named(&c.name)),
            );
        }
        out
    };
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &query.projection {
        match item {
            SelectItem::Wildcard(_) => items.extend(star()),
            SelectItem::QualifiedWildcard(kind, _) => {
                let qualifier = wildcard_qualifier(kind);
                if !qualifier_ok(&qualifier) {
                    return Err(KsqlError::statement(format!(
                        "Source {qualifier} does not exist in the query"
                    )));
                }
                items.extend(star());
            }
            SelectItem::UnnamedExpr(expr) => {
                items.push((expr.clone(), rewrite::implicit_name(expr)));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push((expr.clone(), Some(name_of(alias))));
            }
            SelectItem::ExprWithAliases { expr, aliases } => {
                items.push((expr.clone(), aliases.last().map(name_of)));
            }
        }
    }
    let mut named = Vec::with_capacity(items.len());
    for (expr, name) in numbered(items)? {
        let source_column = match &expr {
            Expr::Identifier(ident) => Some(name_of(ident)),
            Expr::CompoundIdentifier(idents) if idents.len() == 2 => {
                if qualifier_ok(&name_of(&idents[0])) {
                    Some(name_of(&idents[1]))
                } else {
                    None
                }
            }
            _ => None,
        };
        // A windowed source's window bounds are part of its key.
        let key = source_column
            .as_deref()
            .and_then(|c| source.column(c))
            .is_some_and(|c| c.is_key())
            || (source.properties.window.is_some()
                && matches!(
                    source_column.as_deref(),
                    Some(catalog::WINDOWSTART | catalog::WINDOWEND)
                ));
        named.push(Item {
            expr,
            name,
            key,
            source_column: source_column.unwrap_or_default(),
        });
    }
    Ok(named)
}

/// The source a qualified wildcard (`x.*`) names.
pub(super) fn wildcard_qualifier(kind: &SelectItemQualifiedWildcardKind) -> String {
    match kind {
        SelectItemQualifiedWildcardKind::ObjectName(name) => name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(name_of)
            .unwrap_or_default(),
        SelectItemQualifiedWildcardKind::Expr(expr) => expr.to_string(),
    }
}

/// Select items with their names, the unnamed ones `KSQL_COL_0`, `KSQL_COL_1`, ... (names
/// taken skipped); a name twice is ksqlDB's error.
pub(super) fn numbered(items: Vec<(Expr, Option<String>)>) -> Result<Vec<(Expr, String)>> {
    let taken: Vec<String> = items.iter().filter_map(|(_, n)| n.clone()).collect();
    let mut next = 0;
    let mut named: Vec<(Expr, String)> = Vec::with_capacity(items.len());
    for (expr, name) in items {
        let name = match name {
            Some(name) => name,
            None => loop {
                let candidate = format!("KSQL_COL_{next}");
                next += 1;
                if !taken.contains(&candidate) {
                    break candidate;
                }
            },
        };
        if named.iter().any(|(_, n)| *n == name) {
            return Err(KsqlError::statement(format!(
                "Duplicate value columns found in schema: `{name}`"
            )));
        }
        named.push((expr, name));
    }
    Ok(named)
}

/// Whether two rewritten expressions are the same, a column qualified by the source's
/// alias or not.
fn same_expr(a: &Expr, b: &Expr, alias: Option<&str>) -> bool {
    // Parentheses and the source's qualifier do not make expressions different.
    let normal = |e: &Expr| -> String {
        let mut e = e.clone();
        let _ = sqlparser::ast::visit_expressions_mut(&mut e, |inner| {
            match inner {
                Expr::Nested(nested) => {
                    let unwrapped = std::mem::replace(
                        nested.as_mut(),
                        Expr::value(sqlparser::ast::Value::Null),
                    );
                    *inner = unwrapped;
                }
                Expr::CompoundIdentifier(idents)
                    if idents.len() == 2 && alias.is_some_and(|a| idents[0].value == a) =>
                {
                    *inner = Expr::Identifier(idents[1].clone());
                }
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        e.to_string()
    };
    normal(a) == normal(b)
}

/// `expr` as ksqlDB prints it in messages: its columns qualified by `source`.
fn qualified(expr: &Expr, source: &str) -> String {
    let mut expr = expr.clone();
    let _ = sqlparser::ast::visit_expressions_mut(&mut expr, |e| {
        if let Expr::Identifier(ident) = e {
            let column = crate::metastore::name_of(ident);
            *e = Expr::CompoundIdentifier(vec![Ident::new(source), Ident::new(column)]);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    let mut text = expr.to_string();
    text.make_ascii_uppercase();
    text
}

/// `A and B`, `A, B and C`.
pub(super) fn and_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A rewritten expression as ksqlDB prints it: names without the quotes the rewrite put on.
pub(super) fn unquoted(expr: &Expr) -> String {
    expr.to_string().replace('"', "")
}

/// Whether `expr` has a lambda (whose parameters look like columns).
fn has_lambda(expr: &Expr) -> bool {
    sqlparser::ast::visit_expressions(expr, |e| {
        if matches!(e, Expr::Lambda(_)) {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// The column references in `expr`.
fn columns_of(expr: &Expr) -> Vec<Expr> {
    let mut columns = Vec::new();
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            columns.push(e.clone());
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    columns
}

/// The first aggregate function `expr` calls, if any.
fn aggregate_in(expr: &Expr) -> Option<String> {
    let mut found = None;
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string();
            if crate::aggregate::AggregateFn::by_name(&name).is_some() {
                found = Some(name.to_ascii_uppercase());
                return std::ops::ControlFlow::Break(());
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// Whether the plan's aggregate computes any aggregate function.
fn has_aggregate_function(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => !a.aggr_expr.is_empty(),
        other => other.inputs().iter().any(|p| has_aggregate_function(p)),
    }
}

/// Whether the plan aggregates.
pub(super) fn contains_aggregate(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Aggregate(_)) || plan.inputs().iter().any(|p| contains_aggregate(p))
}

/// A name in double quotes, as DataFusion's planner reads it.
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// ksqlDB's error for `WINDOWSTART`/`WINDOWEND` where they cannot be.
fn window_bound_error(bound: &str) -> KsqlError {
    KsqlError::statement(format!(
        "Window bounds column {bound} can only be used in the SELECT clause of windowed aggregations"
    ))
}

pub(crate) fn not_yet(what: &str) -> KsqlError {
    KsqlError::statement(format!(
        "{what} is not supported by Sluice's ksql yet (issue 18 is under way)"
    ))
}

/// The ksqlDB type of an Arrow type, for the types DataFusion's functions return: wider or
/// narrower integers and floats as the ksqlDB type that holds them (the query's output is
/// cast to it).
pub fn sql_type(ty: &DataType) -> Option<SqlType> {
    Some(match ty {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            SqlType::Int
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Bigint,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
        DataType::Decimal128(p, s) => SqlType::Decimal {
            precision: u32::from(*p),
            scale: u32::try_from(*s).ok()?,
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytes,
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
        DataType::Timestamp(_, _) => SqlType::Timestamp,
        DataType::Null => SqlType::String,
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            SqlType::Array(Box::new(sql_type(item.data_type())?))
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return None;
            };
            if kv.len() != 2 {
                return None;
            }
            SqlType::Map(
                Box::new(sql_type(kv[0].data_type())?),
                Box::new(sql_type(kv[1].data_type())?),
            )
        }
        DataType::Struct(fields) => SqlType::Struct(
            fields
                .iter()
                .map(|f: &Arc<Field>| Some((f.name().clone(), sql_type(f.data_type())?)))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// Whether `ty` is the Arrow type ksqlDB's type `sql` is held in (else the value is cast).
pub fn is_canonical(ty: &DataType, sql: &SqlType) -> bool {
    crate::format::arrow_type(sql).is_ok_and(|canonical| &canonical == ty)
}

#[cfg(test)]
mod tests;
