//! Joins planned: a `SELECT` over `FROM a JOIN b ON a.x = b.y` as one DataFusion plan over
//! both sources, named and keyed as ksqlDB names and keys a join's result.
//!
//! ksqlDB's rules, in its words where it has them: a stream joins a table on the table's
//! primary key (`INNER` or `LEFT`; not a table with a stream, not `FULL`); the condition is
//! one equality; a `SELECT *` of a join prefixes every column with its source's alias
//! (`L_A`), and a column selected by name keeps its name unless both sources have one of
//! that name; the result's key is the join expression, as the first item that selects one
//! of the condition's columns as it is.

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, JoinConstraint, JoinOperator, SelectItem, SetExpr,
    Statement as SqlStatement,
};

use datafusion_expr::LogicalPlan;

use super::{quoted, rewrite, unquoted, PlannedQuery};
use crate::error::{KsqlError, Result};
use crate::metastore::{name_of, DataSource, MetaStore};
use crate::parser::ast::{JoinKind, Query, SourceKind, Within};

/// What a join query joins, beside its plan.
#[derive(Debug, Clone)]
pub struct PlannedJoin {
    /// Inner, left, right or full outer.
    pub kind: JoinKind,
    /// The source joined (`JOIN`'s).
    pub right: DataSource,
    /// `WITHIN` (stream–stream joins).
    pub within: Option<Within>,
    /// A foreign-key table–table join: the left table's rows name the right's by an
    /// expression of their columns; the result is keyed by the left table's key.
    pub foreign_key: bool,
    /// An n-way join: the join whose result is this one's left side (`a JOIN b` of
    /// `a JOIN b JOIN c`).
    pub inner: Option<Box<PlannedJoin>>,
}

impl PlannedJoin {
    /// The sources it joins on its right, the innermost join's first.
    pub fn rights(&self) -> Vec<&DataSource> {
        let mut rights = self.inner.as_ref().map_or_else(Vec::new, |i| i.rights());
        rights.push(&self.right);
        rights
    }
}

/// One side of a join: its source and the name that qualifies its columns.
struct Side<'a> {
    source: &'a DataSource,
    /// Its alias, or its name.
    qualifier: String,
}

impl Side<'_> {
    /// Whether it has `column` (a pseudo column too: `ROWTIME`, ...).
    fn has(&self, column: &str) -> bool {
        self.source.column(column).is_some()
            || [
                super::catalog::ROWTIME,
                super::catalog::ROWPARTITION,
                super::catalog::ROWOFFSET,
            ]
            .contains(&column)
    }
}

/// A column reference (`a.x` or `x`) resolved to its side (0: left, 1: right) and column.
fn resolve(expr: &Expr, sides: &[Side<'_>]) -> Option<(usize, String)> {
    match expr {
        Expr::Identifier(ident) => {
            let column = name_of(ident);
            let found: Vec<usize> = (0..sides.len())
                .filter(|&i| sides[i].has(&column))
                .collect();
            match found.as_slice() {
                [one] => Some((*one, column)),
                _ => None,
            }
        }
        Expr::CompoundIdentifier(idents) if idents.len() == 2 => {
            let qualifier = name_of(&idents[0]);
            let column = name_of(&idents[1]);
            (0..sides.len())
                .find(|&i| sides[i].qualifier == qualifier && sides[i].has(&column))
                .map(|i| (i, column))
        }
        Expr::Nested(inner) => resolve(inner, sides),
        _ => None,
    }
}

/// The side every column of `expr` belongs to, if one.
fn side_of(expr: &Expr, sides: &[Side<'_>]) -> Option<usize> {
    let mut found: Option<usize> = None;
    for column in column_refs(expr) {
        match root_column(column, sides) {
            Some((side, _)) if found.is_none_or(|f| f == side) => found = Some(side),
            _ => return None,
        }
    }
    found
}

/// The source column a column reference names: `resolve`'s, and for a struct field
/// written with dots (`s.b.c`, `b.c`), the column it is a field of.
fn root_column(expr: &Expr, sides: &[Side<'_>]) -> Option<(usize, String)> {
    match expr {
        Expr::CompoundIdentifier(idents) if idents.len() > 2 => {
            resolve(&Expr::CompoundIdentifier(idents[..2].to_vec()), sides)
                .or_else(|| resolve(&Expr::Identifier(idents[0].clone()), sides))
        }
        other => resolve(other, sides),
    }
}

/// The column references of `expr`: not a struct's field names (`s->f`, `s.f` once
/// rewritten), which are not columns.
fn column_refs(expr: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    collect_columns(expr, &mut out);
    out
}

fn collect_columns<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    match expr {
        Expr::Identifier(_) => out.push(expr),
        // `a.b` is a column of a source (`a.b.c` a field of one: its column is resolved by
        // `root_column`).
        Expr::CompoundIdentifier(_) => out.push(expr),
        Expr::CompoundFieldAccess { root, .. } => collect_columns(root, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Arrow,
            ..
        } => collect_columns(left, out),
        Expr::BinaryOp { left, right, .. } => {
            collect_columns(left, out);
            collect_columns(right, out);
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::Cast { expr, .. }
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr) => collect_columns(expr, out),
        Expr::Function(f) => {
            if let FunctionArguments::List(list) = &f.args {
                for arg in &list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                    | FunctionArg::Named {
                        arg: FunctionArgExpr::Expr(e),
                        ..
                    } = arg
                    {
                        collect_columns(e, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A join's condition checked: rewritten, its operands (left side's first) and how
/// ksqlDB prints it.
struct Condition {
    on: Expr,
    operands: [Expr; 2],
    printed: String,
    /// The source the left operand refers to.
    left_side: usize,
}

/// Checks `on` as ksqlDB does, in its words: every column resolves (to one source), it is
/// one equality, and each side refers to one source, a different one: one the source
/// joined (the last of `sides`), the other one before it.
fn check_condition(on: &Expr, sides: &[Side<'_>]) -> Result<Condition> {
    let mut rewritten = on.clone();
    rewrite::for_datafusion(&mut rewritten)?;
    // Every column of the condition resolves to one source.
    let mut problem = None;
    for e in column_refs(&rewritten) {
        let found = match e {
            Expr::Identifier(ident) => {
                let column = name_of(ident);
                let owners: Vec<&Side<'_>> = sides.iter().filter(|s| s.has(&column)).collect();
                match owners.as_slice() {
                    [_] => None,
                    [] => Some(format!("JOIN ON column '{column}' cannot be resolved.")),
                    [a, b, ..] => Some(format!(
                        "Column '{column}' is ambiguous. Could be {}.{column} or {}.{column}.",
                        a.qualifier, b.qualifier
                    )),
                }
            }
            Expr::CompoundIdentifier(idents) if idents.len() > 2 => root_column(e, sides)
                .is_none()
                .then(|| format!("JOIN ON column '{}' cannot be resolved.", unquoted(e))),
            Expr::CompoundIdentifier(idents) if idents.len() == 2 => {
                let qualifier = name_of(&idents[0]);
                let column = name_of(&idents[1]);
                match sides.iter().find(|s| s.qualifier == qualifier) {
                    None => Some(format!(
                        "'{qualifier}' is not a valid stream/table name or alias."
                    )),
                    Some(side) if !side.has(&column) => Some(format!(
                        "JOIN ON column '{qualifier}.{column}' cannot be resolved."
                    )),
                    Some(_) => None,
                }
            }
            _ => None,
        };
        if found.is_some() {
            problem = found;
            break;
        }
    }
    if let Some(message) = problem {
        return Err(KsqlError::statement(message));
    }
    let (mut operands, original) = match (&rewritten, on) {
        (
            Expr::BinaryOp {
                left: a,
                op: BinaryOperator::Eq,
                right: b,
            },
            Expr::BinaryOp {
                left: oa, right: ob, ..
            },
        ) => ([a.as_ref().clone(), b.as_ref().clone()], [oa.as_ref(), ob.as_ref()]),
        (Expr::BinaryOp { op: BinaryOperator::And, .. }, _) => {
            return Err(KsqlError::statement(format!(
                "Invalid join condition: joins on multiple conditions are not yet supported. Got {}.",
                parenthesized(&rewritten)
            )))
        }
        _ => {
            return Err(KsqlError::statement(format!(
                "Unsupported join expression: {}. Only equality between the two sources is supported (a.x = b.y).",
                unquoted(&rewritten)
            )))
        }
    };
    // The condition as ksqlDB prints it: its operands in the order written, a column
    // qualified, anything else as written (upper-cased).
    let printed = {
        let operand = |e: &Expr, written: &Expr| -> String {
            match resolve(e, sides) {
                Some((side, column)) => format!("{}.{column}", sides[side].qualifier),
                None => written.to_string().to_ascii_uppercase(),
            }
        };
        format!(
            "{} = {}",
            operand(&operands[0], original[0]),
            operand(&operands[1], original[1])
        )
    };
    // The source joined is the last of `sides`; the other operand refers to one before it.
    let right = sides.len() - 1;
    let mut sides_of = [side_of(&operands[0], sides), side_of(&operands[1], sides)];
    if let [Some(_), None] | [None, Some(_)] = sides_of {
        // ksqlDB names the operand at fault when one refers to no source.
        let bad = if sides_of[0].is_none() {
            original[0]
        } else {
            original[1]
        };
        return Err(KsqlError::statement(format!(
            "Invalid comparison expression '{bad}' in join '({printed})'. Each side of the join comparision must contain references from exactly one source."
        )));
    }
    let (Some(a), Some(b)) = (sides_of[0], sides_of[1]) else {
        return Err(KsqlError::statement(format!(
            "Invalid comparison expression '{} = {}' in join '({printed})'. Each side of the join comparision must contain references from exactly one source.",
            original[0], original[1]
        )));
    };
    let name = |side: usize| format!("`{}`", sides[side].qualifier);
    if a == b {
        return Err(KsqlError::statement(format!(
            "Each side of the join must reference exactly one source and not the same source. Left side references {} and right references {}",
            name(a),
            name(b)
        )));
    }
    if a != right && b != right {
        return Err(KsqlError::statement(format!(
            "A join criteria is expected to reference the source ({}) in the FROM clause, instead the right source references {} and the left source references {}",
            name(right),
            name(b),
            name(a)
        )));
    }
    if a == right {
        operands.swap(0, 1);
        sides_of = [Some(b), Some(a)];
    }
    let left_side = sides_of[0].unwrap_or_default();
    Ok(Condition {
        on: rewritten,
        operands,
        printed,
        left_side,
    })
}

/// `a = b AND c = d` as ksqlDB prints a condition: each comparison in parentheses.
fn parenthesized(expr: &Expr) -> String {
    match expr {
        Expr::BinaryOp { left, op, right } => {
            format!("({} {op} {})", parenthesized(left), parenthesized(right))
        }
        Expr::CompoundIdentifier(_) | Expr::Identifier(_) => unquoted(expr),
        other => unquoted(other),
    }
}

/// How ksqlDB writes a join in its messages: `L [INNER] JOIN R`.
fn join_text(kind: JoinKind, left: &str, right: &str) -> String {
    let kind = match kind {
        JoinKind::Inner => "[INNER] JOIN",
        JoinKind::Left => "LEFT [OUTER] JOIN",
        JoinKind::Right => "RIGHT [OUTER] JOIN",
        JoinKind::Full => "[FULL] OUTER JOIN",
    };
    format!("{left} {kind} {right}")
}

/// A join's key expression: a column (its side and name) or an expression's text, to tell
/// whether a later join's condition names the same key.
#[derive(Debug, Clone)]
struct KeyExpr {
    column: Option<(usize, String)>,
    text: String,
}

impl KeyExpr {
    fn of(expr: &Expr, sides: &[Side<'_>]) -> KeyExpr {
        KeyExpr {
            column: resolve(expr, sides),
            text: expr.to_string().to_ascii_uppercase(),
        }
    }

    fn same(&self, other: &KeyExpr) -> bool {
        match (&self.column, &other.column) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.text == other.text,
            _ => false,
        }
    }
}

/// One join of a query checked: its condition, whether it is a foreign-key join, and the
/// expressions its result is keyed by (equal to each other: its condition's operands, and
/// the inner join's when its left operand is one of those).
struct Level {
    condition: Condition,
    foreign_key: bool,
    keys: Vec<KeyExpr>,
}

/// Plans a query with one `JOIN` or several (an n-way join: each joins the result of the
/// ones before it, left-deep, as ksqlDB does).
pub(super) fn plan_join(query: &Query, metastore: &MetaStore) -> Result<PlannedQuery> {
    if !query.group_by.is_empty() || query.window.is_some() {
        return Err(super::not_yet("GROUP BY of a join"));
    }
    if !query.partition_by.is_empty() {
        return Err(super::not_yet("PARTITION BY of a join"));
    }
    let relations: Vec<&crate::parser::ast::Relation> = std::iter::once(&query.from)
        .chain(query.joins.iter().map(|j| &j.relation))
        .collect();
    let mut sources: Vec<&DataSource> = Vec::with_capacity(relations.len());
    for relation in &relations {
        let name = name_of(&relation.name);
        let source = metastore
            .source(&name)
            .ok_or_else(|| KsqlError::statement(format!("{name} does not exist.")))?;
        if let Some(earlier) = sources.iter().find(|s| s.name == source.name) {
            return Err(KsqlError::statement(if relations.len() > 2 {
                format!(
                    "N-way joins do not support multiple occurrences of the same source. Source: '{name}'."
                )
            } else {
                format!(
                    "Can not join '{name}' to '{}': self joins are not yet supported.",
                    earlier.name
                )
            }));
        }
        sources.push(source);
    }
    if sources.iter().any(|s| s.properties.window.is_some()) {
        return Err(super::not_yet("A join of a windowed source"));
    }
    let sides: Vec<Side<'_>> = relations
        .iter()
        .zip(&sources)
        .map(|(relation, source)| Side {
            source,
            qualifier: relation
                .alias
                .as_ref()
                .map(name_of)
                .unwrap_or_else(|| source.name.clone()),
        })
        .collect();
    let kafka: Vec<&str> = sources
        .iter()
        .filter(|s| s.properties.value_format == crate::metastore::Format::Kafka)
        .map(|s| s.name.as_str())
        .collect();
    if !kafka.is_empty() {
        return Err(KsqlError::statement(format!(
            "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
            kafka.join(", ")
        )));
    }

    // The conditions first: their columns resolved, one equality each, each side's
    // expression of its own source (ksqlDB checks them before the joins' kinds).
    let conditions = query
        .joins
        .iter()
        .enumerate()
        .map(|(i, join)| check_condition(&join.on, &sides[..=i + 1]))
        .collect::<Result<Vec<_>>>()?;
    // Each join in turn, its left side the result of the ones before it.
    let mut levels: Vec<Level> = Vec::with_capacity(query.joins.len());
    for ((i, join), condition) in query.joins.iter().enumerate().zip(conditions) {
        let at = i + 1;
        let (right, prefix) = (sources[at], &sides[..=at]);
        let left_is_table = sources[..at].iter().all(|s| s.kind == SourceKind::Table);
        let text = join_text(
            join.kind,
            &sides[condition.left_side].source.name,
            &right.name,
        );
        match (left_is_table, right.kind) {
            (false, SourceKind::Table) => match join.kind {
                JoinKind::Inner | JoinKind::Left => {}
                JoinKind::Full => {
                    return Err(KsqlError::statement(format!(
                        "Invalid join type: full-outer join not supported for stream-table join. Got {text}."
                    )))
                }
                JoinKind::Right => {
                    return Err(KsqlError::statement(format!(
                        "Invalid join type: right join not supported for stream-table join. Got {text}."
                    )))
                }
            },
            (true, SourceKind::Stream) => {
                return Err(KsqlError::statement(format!(
                    "Invalid join order: table-stream joins are not supported; only stream-table joins. Got {text}."
                )))
            }
            (false, SourceKind::Stream) => {
                if join.within.is_none() {
                    return Err(KsqlError::statement(
                        "Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how to specify a WITHIN clause with a stream-stream join, please visit: https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select",
                    ));
                }
            }
            (true, SourceKind::Table) => {}
        }
        if join.within.is_some() && right.kind == SourceKind::Table {
            return Err(KsqlError::statement(
                "A join with a table has no WITHIN clause (only stream-stream joins do).",
            ));
        }
        // A table is joined on its primary key.
        let on_key = |side: usize, operand: &Expr| {
            let keys = sides[side].source.key_names();
            matches!(resolve(operand, prefix), Some((s, c)) if s == side && keys == [c.as_str()])
        };
        if right.kind == SourceKind::Table && !on_key(at, &condition.operands[1]) {
            let printed = &condition.printed;
            return Err(KsqlError::statement(if left_is_table {
                format!(
                    "Invalid join condition: table-table joins require to join on the primary key of the right input table. Got {printed}."
                )
            } else {
                format!(
                    "Invalid join condition: stream-table joins require to join on the table's primary key. Got {printed}."
                )
            }));
        }
        // The left side's key: the first source's, or the expressions the join before
        // keyed its result by.
        let left_key = KeyExpr::of(&condition.operands[0], prefix);
        let left_keyed = match levels.last() {
            None => on_key(0, &condition.operands[0]),
            Some(inner) => inner.keys.iter().any(|k| k.same(&left_key)),
        };
        // Two tables not joined on the left's key: a foreign-key join (inner or left), and
        // only as an n-way join's first.
        let foreign_key = left_is_table && !left_keyed;
        if foreign_key {
            if i > 0 {
                return Err(KsqlError::statement(format!(
                    "Invalid join condition: foreign-key table-table joins are not supported as part of n-way joins. Got {}.",
                    condition.printed
                )));
            }
            match join.kind {
                JoinKind::Inner | JoinKind::Left => {}
                JoinKind::Right => {
                    return Err(KsqlError::statement(
                        "RIGHT OUTER JOIN on a foreign key is not supported",
                    ))
                }
                JoinKind::Full => {
                    return Err(KsqlError::statement(format!(
                        "Invalid join type: full-outer join not supported for foreign-key table-table join. Got {text}."
                    )))
                }
            }
        }
        let keys = if foreign_key {
            // A foreign-key join's result is keyed by its left table's key.
            sources[0]
                .key_names()
                .into_iter()
                .map(|k| KeyExpr {
                    column: Some((0, k.to_string())),
                    text: k.to_string(),
                })
                .collect()
        } else {
            let mut keys = vec![left_key, KeyExpr::of(&condition.operands[1], prefix)];
            if let (true, Some(inner)) = (left_keyed, levels.last()) {
                keys.extend(inner.keys.iter().cloned());
            }
            keys
        };
        levels.push(Level {
            condition,
            foreign_key,
            keys,
        });
    }
    let (Some(last), Some(last_join)) = (levels.last(), query.joins.last()) else {
        return Err(KsqlError::statement("a join without its JOIN"));
    };

    // The select items, named as ksqlDB names a join's.
    let mut items = join_items(query, &sides)?;
    // The key is the last join's expression: an item selecting a column equal to it as it
    // is (the first source's first), or, for a full outer join or a condition of
    // expressions only, the synthetic `ROWKEY`. Its value is the join's key whichever side
    // a row has, so the item is planned as `COALESCE(left, right)`.
    let foreign_key = last.foreign_key;
    let mut key_columns: Vec<(usize, String)> = Vec::new();
    for key in &last.keys {
        if let Some(column) = &key.column {
            if !key_columns.contains(column) {
                key_columns.push(column.clone());
            }
        }
    }
    key_columns.sort_by_key(|(side, _)| *side);
    let synthetic = !foreign_key && (last_join.kind == JoinKind::Full || key_columns.is_empty());
    let operands = &last.condition.operands;
    // The call parsed from text, its arguments the operands themselves (their rewritten
    // field accesses do not survive printing and parsing again).
    let join_key = {
        let mut call = sqlparser::parser::Parser::new(&sqlparser::dialect::GenericDialect {})
            .try_with_sql("COALESCE(a, b)")
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| KsqlError::statement(format!("cannot plan the join key: {e}")))?;
        if let Expr::Function(f) = &mut call {
            if let sqlparser::ast::FunctionArguments::List(list) = &mut f.args {
                for (arg, operand) in list.args.iter_mut().zip(operands) {
                    *arg = sqlparser::ast::FunctionArg::Unnamed(
                        sqlparser::ast::FunctionArgExpr::Expr(operand.clone()),
                    );
                }
            }
        }
        call
    };
    // `SELECT *` of a join with a synthetic key has it, first.
    let star = query
        .projection
        .iter()
        .any(|i| matches!(i, SelectItem::Wildcard(_)));
    if synthetic && star {
        items.insert(
            0,
            (Expr::Identifier(Ident::new("ROWKEY")), "ROWKEY".to_string()),
        );
    }
    let selects = |expr: &Expr| -> Result<Option<(usize, String)>> {
        if rewrite::is_as_value(expr) {
            return Ok(None);
        }
        let mut e = expr.clone();
        rewrite::for_datafusion(&mut e)?;
        Ok(resolve(&e, &sides))
    };
    let is_rowkey = |expr: &Expr| {
        matches!(expr, Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case("ROWKEY"))
            && resolve(expr, &sides).is_none()
    };
    // The items selecting `wanted` as it is (more than one: ksqlDB's error).
    let selecting = |wanted: &(usize, String)| -> Result<Option<usize>> {
        let mut found = Vec::new();
        for (i, (expr, name)) in items.iter().enumerate() {
            if selects(expr)?.as_ref() == Some(wanted) {
                found.push((i, name.clone()));
            }
        }
        if found.len() > 1 {
            let mut names: Vec<String> = found.iter().map(|(_, n)| n.clone()).collect();
            names.sort();
            let column = format!("{}_{}", sides[wanted.0].qualifier, wanted.1);
            return Err(KsqlError::statement(format!(
                "The projection contains a key column (`{column}`) more than once, aliased as: {}.",
                super::and_names(&names.iter().map(String::as_str).collect::<Vec<_>>())
            )));
        }
        Ok(found.first().map(|(i, _)| *i))
    };
    let mut key_at = None;
    // A foreign-key join's key is the left table's: each of its key columns, as it is.
    let mut foreign_keys = Vec::new();
    let mut missing_foreign_keys = Vec::new();
    if foreign_key {
        for key in sources[0].key_names() {
            match selecting(&(0, key.to_string()))? {
                Some(at) => foreign_keys.push(at),
                None => missing_foreign_keys.push(key.to_string()),
            }
        }
    } else if synthetic {
        key_at = items.iter().position(|(expr, _)| is_rowkey(expr));
    } else {
        for wanted in &key_columns {
            if let Some(at) = selecting(wanted)? {
                key_at = Some(at);
                break;
            }
        }
    }
    let mut keyed = vec![false; items.len()];
    for &at in &foreign_keys {
        keyed[at] = true;
    }
    if let Some(at) = key_at {
        keyed[at] = true;
        items[at].0 = join_key.clone();
    }
    let missing_keys = match (key_at.is_some(), synthetic) {
        _ if foreign_key => missing_foreign_keys,
        (true, _) => Vec::new(),
        (false, true) => vec!["ROWKEY".to_string()],
        (false, false) => {
            let names: Vec<String> = key_columns
                .iter()
                .map(|(side, c)| format!("{}.{c}", sides[*side].qualifier))
                .collect();
            vec![or_list(&names)]
        }
    };

    // The statement DataFusion plans.
    let from = |s: &Side<'_>| format!("{} AS {}", quoted(&s.source.name), quoted(&s.qualifier));
    let mut skeleton = format!("SELECT 1 FROM {}", from(&sides[0]));
    for (join, side) in query.joins.iter().zip(&sides[1..]) {
        let kind = match join.kind {
            JoinKind::Inner => "JOIN",
            JoinKind::Left => "LEFT JOIN",
            JoinKind::Right => "RIGHT JOIN",
            JoinKind::Full => "FULL JOIN",
        };
        skeleton.push_str(&format!(" {kind} {} ON 1 = 1", from(side)));
    }
    let mut statement =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, &skeleton)
            .ok()
            .and_then(|mut statements| statements.pop())
            .ok_or_else(|| KsqlError::statement("cannot plan the join"))?;
    let SqlStatement::Query(sql_query) = &mut statement else {
        return Err(KsqlError::statement("cannot plan the join"));
    };
    let SetExpr::Select(select) = sql_query.body.as_mut() else {
        return Err(KsqlError::statement("cannot plan the join"));
    };
    let joins = select
        .from
        .first_mut()
        .map(|t| &mut t.joins)
        .ok_or_else(|| KsqlError::statement("cannot plan the join"))?;
    for (join, level) in joins.iter_mut().zip(&levels) {
        let constraint = match &mut join.join_operator {
            JoinOperator::Join(JoinConstraint::On(e))
            | JoinOperator::Inner(JoinConstraint::On(e))
            | JoinOperator::Left(JoinConstraint::On(e))
            | JoinOperator::LeftOuter(JoinConstraint::On(e))
            | JoinOperator::Right(JoinConstraint::On(e))
            | JoinOperator::RightOuter(JoinConstraint::On(e))
            | JoinOperator::FullOuter(JoinConstraint::On(e)) => e,
            _ => return Err(KsqlError::statement("cannot plan the join")),
        };
        *constraint = level.condition.on.clone();
    }
    let mut projection = Vec::with_capacity(items.len());
    for (expr, name) in &items {
        let mut expr = expr.clone();
        rewrite::for_datafusion(&mut expr)?;
        projection.push(SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name),
        });
    }
    select.projection = projection;
    if let Some(selection) = &query.selection {
        let mut selection = selection.clone();
        rewrite::for_datafusion(&mut selection)?;
        select.selection = Some(selection);
    }
    let plan = super::datafusion_plan(statement, metastore, query)?;
    if super::contains_aggregate(&plan) {
        return Err(super::not_yet("An aggregate of a join"));
    }
    let named: Vec<(&str, bool)> = items
        .iter()
        .zip(&keyed)
        .map(|((_, name), key)| (name.as_str(), *key))
        .collect();
    let columns = super::output_columns(&plan, &named)?;
    // The joins nested, the first innermost; each plan node found below the one after it.
    let mut planned_join: Option<PlannedJoin> = None;
    for ((join, level), right) in query.joins.iter().zip(&levels).zip(&sources[1..]) {
        planned_join = Some(PlannedJoin {
            kind: join.kind,
            right: (*right).clone(),
            within: join.within.clone(),
            foreign_key: level.foreign_key,
            inner: planned_join.map(Box::new),
        });
    }
    let mut node_plan = &plan;
    for _ in 0..query.joins.len() {
        node_plan = join_node(node_plan)?.left.as_ref();
    }
    Ok(PlannedQuery {
        source: sources[0].clone(),
        plan,
        columns,
        missing_keys,
        grouped: false,
        partitioned: false,
        window: None,
        emit_final: false,
        key_sources: Vec::new(),
        join: planned_join,
    })
}

/// `a, b or c`.
fn or_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The plan's join node, below its filters and projections (what runs after the join).
pub(crate) fn join_node(plan: &LogicalPlan) -> Result<&datafusion_expr::logical_plan::Join> {
    match plan {
        // More than one equality, or a filter, are `WHERE` conditions the optimiser moved
        // into an inner join: the first equality is the join's own (the others run after it).
        LogicalPlan::Join(join) if !join.on.is_empty() => Ok(join),
        LogicalPlan::Join(_) => Err(KsqlError::statement(
            "A join's condition must be one equality between the two sources (a.x = b.y).",
        )),
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
            match plan.inputs().first() {
                Some(input) => join_node(input),
                None => Err(KsqlError::statement("a join's plan without its join")),
            }
        }
        other => Err(KsqlError::statement(format!(
            "Sluice's ksql cannot run this join plan yet (issue 18 is under way): {}",
            other.display()
        ))),
    }
}

/// The select items of a join and their names: `*` and `x.*` as every column of the
/// sources prefixed by the alias (`L_A`), a column by its name unless both sources have
/// it (then `L_A` too), other expressions `KSQL_COL_n`.
fn join_items(query: &Query, sides: &[Side<'_>]) -> Result<Vec<(Expr, String)>> {
    let all = |side: &Side<'_>| -> Vec<(Expr, Option<String>)> {
        side.source
            .columns
            .iter()
            .filter(|c| {
                !matches!(
                    c.constraint,
                    crate::parser::ast::ColumnConstraint::Headers
                        | crate::parser::ast::ColumnConstraint::Header(_)
                )
            })
            .map(|c| {
                (
                    Expr::CompoundIdentifier(vec![
                        Ident::with_quote('"', &side.qualifier),
                        Ident::with_quote('"', &c.name),
                    ]),
                    Some(format!("{}_{}", side.qualifier, c.name)),
                )
            })
            .collect()
    };
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &query.projection {
        match item {
            SelectItem::Wildcard(_) => {
                for side in sides {
                    items.extend(all(side));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let qualifier = super::wildcard_qualifier(kind);
                let side = sides
                    .iter()
                    .find(|s| s.qualifier == qualifier)
                    .ok_or_else(|| {
                        KsqlError::statement(format!(
                            "Source {qualifier} does not exist in the query"
                        ))
                    })?;
                items.extend(all(side));
            }
            SelectItem::UnnamedExpr(expr) => {
                let name = match expr {
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                        resolve(expr, sides).map(|(side, column)| {
                            if sides.iter().filter(|s| s.has(&column)).count() > 1 {
                                format!("{}_{column}", sides[side].qualifier)
                            } else {
                                column
                            }
                        })
                    }
                    other => rewrite::implicit_name(other),
                };
                if let (Expr::Identifier(ident), None) = (expr, &name) {
                    let column = name_of(ident);
                    let owners: Vec<&Side<'_>> = sides.iter().filter(|s| s.has(&column)).collect();
                    if let [a, b, ..] = owners.as_slice() {
                        return Err(KsqlError::statement(format!(
                            "Column '{column}' is ambiguous. Could be {}.{column} or {}.{column}.",
                            a.qualifier, b.qualifier
                        )));
                    }
                }
                items.push((expr.clone(), name));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push((expr.clone(), Some(name_of(alias))));
            }
            SelectItem::ExprWithAliases { expr, aliases } => {
                items.push((expr.clone(), aliases.last().map(name_of)));
            }
        }
    }
    super::numbered(items)
}
