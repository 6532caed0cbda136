//! ksqlDB's expressions in the form DataFusion's SQL planner reads: unquoted identifiers
//! upper-cased (ksqlDB's rule; the planner's own lower-casing is off), `a->b` as a field
//! access, and select items named as ksqlDB names them.

use std::ops::ControlFlow;

use sqlparser::ast::{AccessExpr, BinaryOperator, Expr, Ident};

use crate::error::{KsqlError, Result};

/// Rewrites `expr` in place for DataFusion's planner.
pub(crate) fn for_datafusion(expr: &mut Expr) -> Result<()> {
    let mut failure = None;
    let _ = sqlparser::ast::visit_expressions_mut(expr, |e| {
        match e {
            Expr::Identifier(ident) => upper(ident),
            // ksqlDB's integer literals are INT when they fit, BIGINT otherwise (DataFusion's
            // are all BIGINT).
            Expr::Value(value) if matches!(&value.value, sqlparser::ast::Value::Number(n, _) if n.parse::<i32>().is_ok()) =>
            {
                let literal = std::mem::replace(e, Expr::value(sqlparser::ast::Value::Null));
                *e = Expr::Cast {
                    kind: sqlparser::ast::CastKind::Cast,
                    expr: Box::new(literal),
                    data_type: sqlparser::ast::DataType::Int(None),
                    array: false,
                    format: None,
                };
            }
            Expr::CompoundIdentifier(idents) => idents.iter_mut().for_each(upper),
            Expr::BinaryOp {
                op: BinaryOperator::Arrow,
                ..
            } => {
                // `a->b->c`: the planner's field access on the struct `a`.
                let taken = std::mem::replace(e, Expr::value(sqlparser::ast::Value::Null));
                match field_access(taken) {
                    Ok(access) => *e = access,
                    Err(err) => {
                        failure = Some(err);
                        return ControlFlow::Break(());
                    }
                }
            }
            // ksqlDB's table function `EXPLODE` is DataFusion's `unnest`.
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("EXPLODE") => {
                f.name =
                    sqlparser::ast::ObjectName::from(vec![sqlparser::ast::Ident::new("unnest")]);
            }
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case(AS_VALUE) => {
                // `AS_VALUE(x)` is `x`, copied into the value (the planner only marks it).
                match as_value_argument(f) {
                    Some(argument) => *e = Expr::Nested(Box::new(argument)),
                    None => {
                        failure = Some(KsqlError::statement(
                            "AS_VALUE takes one argument: AS_VALUE(expression)",
                        ));
                        return ControlFlow::Break(());
                    }
                }
            }
            Expr::Function(f) => {
                let name = f.name.to_string();
                let known = crate::plan::functions::Functions::get();
                if known.info(&name).is_none() {
                    failure = Some(KsqlError::statement(format!(
                        "Can't find any functions with the name '{}'",
                        name.to_ascii_uppercase()
                    )));
                    return ControlFlow::Break(());
                }
                count_star(f);
                lambdas(f)
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// A windowed aggregation's `WINDOWSTART` and `WINDOWEND` (already rewritten) as calls of
/// the aggregates that give each row's window bounds: they are the window's, not a
/// source column's, so the planner sees them as aggregates of the group.
pub(crate) fn window_bounds(expr: &mut Expr) {
    let _ = sqlparser::ast::visit_expressions_mut(expr, |e| {
        // `WINDOWSTART`, or qualified by the source, `s.WINDOWSTART`.
        let name = match e {
            Expr::Identifier(ident) => Some(ident.value.as_str()),
            Expr::CompoundIdentifier(idents) if idents.len() == 2 => Some(idents[1].value.as_str()),
            _ => None,
        };
        if let Some(name) = name {
            let function = match name {
                crate::plan::catalog::WINDOWSTART => crate::aggregate::AggregateFn::WindowStart,
                crate::plan::catalog::WINDOWEND => crate::aggregate::AggregateFn::WindowEnd,
                _ => return ControlFlow::<()>::Continue(()),
            };
            *e = Expr::Function(sqlparser::ast::Function {
                name: sqlparser::ast::ObjectName::from(vec![Ident::new(function.name())]),
                uses_odbc_syntax: false,
                parameters: sqlparser::ast::FunctionArguments::None,
                args: sqlparser::ast::FunctionArguments::List(
                    sqlparser::ast::FunctionArgumentList {
                        duplicate_treatment: None,
                        args: Vec::new(),
                        clauses: Vec::new(),
                    },
                ),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: Vec::new(),
            });
        }
        ControlFlow::Continue(())
    });
}

/// The window bound (`WINDOWSTART` or `WINDOWEND`) `expr` names outside a select item's
/// top level: inside an aggregate's arguments, or anywhere in a `GROUP BY` expression
/// (`in_group_by`), where ksqlDB refuses them.
pub(crate) fn misplaced_window_bound(expr: &Expr, in_group_by: bool) -> Option<&'static str> {
    let mut found = None;
    let bound = |e: &Expr| -> Option<&'static str> {
        let name = match e {
            Expr::Identifier(ident) => ident.value.as_str(),
            Expr::CompoundIdentifier(idents) if idents.len() == 2 => idents[1].value.as_str(),
            _ => return None,
        };
        [
            crate::plan::catalog::WINDOWSTART,
            crate::plan::catalog::WINDOWEND,
        ]
        .into_iter()
        .find(|b| *b == name)
    };
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if in_group_by {
            found = bound(e);
        } else if let Expr::Function(f) = e {
            if crate::aggregate::AggregateFn::by_name(&f.name.to_string()).is_some() {
                let _ = sqlparser::ast::visit_expressions(&f.args, |inner| {
                    if found.is_none() {
                        found = bound(inner);
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
        if found.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found
}

/// ksqlDB's `AS_VALUE`.
pub(crate) const AS_VALUE: &str = "AS_VALUE";

/// The one argument of `AS_VALUE(x)`.
fn as_value_argument(f: &sqlparser::ast::Function) -> Option<Expr> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))] => Some(argument.clone()),
        _ => None,
    }
}

/// Whether a select item is `AS_VALUE(...)`: a copy of a key into the value, never a key.
pub(crate) fn is_as_value(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case(AS_VALUE))
}

/// `COUNT(*)` as `COUNT()`: ksqlDB's `COUNT` of no column counts rows.
fn count_star(f: &mut sqlparser::ast::Function) {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    if matches!(
        list.args.as_slice(),
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
    ) {
        list.args.clear();
    }
}

/// ksqlDB's lambda arguments, `x => body` (parsed as a named argument), as sqlparser's
/// lambda expressions, which DataFusion's higher-order functions take.
fn lambdas(f: &mut sqlparser::ast::Function) {
    use sqlparser::ast::{
        FunctionArg, FunctionArgExpr, FunctionArgOperator, FunctionArguments, LambdaFunction,
        LambdaFunctionParameter, LambdaSyntax, OneOrManyWithParens,
    };
    let FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    for arg in &mut list.args {
        if let FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(body),
            operator: FunctionArgOperator::RightArrow,
        } = arg
        {
            let mut name = name.clone();
            upper(&mut name);
            let body = std::mem::replace(body, Expr::value(sqlparser::ast::Value::Null));
            *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(LambdaFunction {
                params: OneOrManyWithParens::One(LambdaFunctionParameter {
                    name,
                    data_type: None,
                }),
                body: Box::new(body),
                syntax: LambdaSyntax::Arrow,
            })));
        }
    }
}

/// `a->b`, its left side rewritten already (the visitor goes bottom-up), into DataFusion's
/// compound field access.
fn field_access(expr: Expr) -> Result<Expr> {
    let Expr::BinaryOp { left, right, .. } = expr else {
        return Err(KsqlError::statement("expected a field access"));
    };
    let field = match *right {
        Expr::Identifier(mut ident) => {
            upper(&mut ident);
            ident
        }
        other => {
            return Err(KsqlError::statement(format!(
                "Expected a field name after '->', found {other}"
            )))
        }
    };
    Ok(match *left {
        // `s.b->c`: a qualified column's field, as DataFusion reads `s.b.c`.
        Expr::CompoundIdentifier(mut idents) => {
            idents.push(field);
            Expr::CompoundIdentifier(idents)
        }
        Expr::CompoundFieldAccess {
            root,
            mut access_chain,
        } => {
            access_chain.push(AccessExpr::Dot(Expr::Identifier(field)));
            Expr::CompoundFieldAccess { root, access_chain }
        }
        root => Expr::CompoundFieldAccess {
            root: Box::new(root),
            access_chain: vec![AccessExpr::Dot(Expr::Identifier(field))],
        },
    })
}

/// ksqlDB's rule: an unquoted identifier is upper case.
fn upper(ident: &mut Ident) {
    if ident.quote_style.is_none() {
        ident.value = ident.value.to_ascii_uppercase();
        // Quoted from now on, so that nothing lower-cases it again.
        ident.quote_style = Some('"');
    }
}

/// Where the first identifier named `name` is in `exprs` ("Line: L, Col: C: "), if any.
pub(crate) fn place_of<'a>(exprs: impl IntoIterator<Item = &'a Expr>, name: &str) -> String {
    for expr in exprs {
        let mut found = None;
        let _ = sqlparser::ast::visit_expressions(expr, |e| {
            let ident = match e {
                Expr::Identifier(ident) => Some(ident),
                Expr::CompoundIdentifier(idents) => idents.last(),
                _ => None,
            };
            match ident {
                Some(ident) if crate::metastore::name_of(ident) == name => {
                    found = Some(ident.span.start);
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        });
        if let Some(at) = found {
            return format!("Line: {}, Col: {}: ", at.line, at.column);
        }
    }
    String::new()
}

/// The name ksqlDB gives a select item written without `AS`: a column's own name, a
/// struct field's name for `a->b`, else none (the caller numbers it `KSQL_COL_n`).
pub(crate) fn implicit_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(crate::metastore::name_of(ident)),
        Expr::CompoundIdentifier(idents) => idents.last().map(crate::metastore::name_of),
        Expr::BinaryOp {
            op: BinaryOperator::Arrow,
            right,
            ..
        } => match right.as_ref() {
            Expr::Identifier(ident) => Some(crate::metastore::name_of(ident)),
            _ => None,
        },
        Expr::Nested(inner) => implicit_name(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Expr {
        let dialect = crate::parser::dialect::KsqlDialect;
        sqlparser::parser::Parser::new(&dialect)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_expr())
            .unwrap()
    }

    #[test]
    fn identifiers_are_upper_cased_unless_quoted_and_arrows_become_field_access() {
        let mut e = parse("a + `b` + s->street->no");
        for_datafusion(&mut e).unwrap();
        assert_eq!(e.to_string(), "\"A\" + `b` + \"S\".\"STREET\".\"NO\"");
        assert_eq!(implicit_name(&parse("s->street")), Some("STREET".into()));
        assert_eq!(implicit_name(&parse("t.`id`")), Some("id".into()));
        assert_eq!(implicit_name(&parse("a + 1")), None);
    }
}
