use std::time::Duration;

use super::ast::*;
use super::{parse, parse_one, split_statements};
use crate::KsqlError;

fn one(sql: &str) -> Statement {
    match parse_one(sql) {
        Ok(parsed) => parsed.statement,
        Err(err) => panic!("{sql}: {err}"),
    }
}

fn query(sql: &str) -> Query {
    match one(sql) {
        Statement::Query(q) => *q,
        other => panic!("not a query: {other:?}"),
    }
}

fn error(sql: &str) -> (u64, u64, String) {
    match parse(sql) {
        Err(KsqlError::Parse {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("{sql}: parsed: {other:?}"),
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

#[test]
fn create_stream_with_key_header_columns_and_properties() {
    let Statement::CreateSource(c) = one(
        "CREATE OR REPLACE STREAM IF NOT EXISTS pageviews (
            user_id VARCHAR KEY, page STRING, ts BIGINT, tags ARRAY<MAP<STRING, ARRAY<INT>>>,
            address STRUCT<street STRING, `zip code` INT>, price DECIMAL(10, 2),
            h ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, trace BYTES HEADER('trace-id')
        ) WITH (KAFKA_TOPIC='pageviews', value_format='JSON', partitions=3, WRAP_SINGLE_VALUE=false);",
    ) else {
        panic!("not a CREATE STREAM")
    };
    assert_eq!(c.kind, SourceKind::Stream);
    assert!(c.or_replace && c.if_not_exists && !c.source);
    assert_eq!(c.name.value, "pageviews");
    let columns: Vec<(String, String, ColumnConstraint)> = c
        .columns
        .iter()
        .map(|col| {
            (
                col.name.value.clone(),
                col.ty.to_string(),
                col.constraint.clone(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        vec![
            ("user_id".into(), "STRING".into(), ColumnConstraint::Key),
            ("page".into(), "STRING".into(), ColumnConstraint::None),
            ("ts".into(), "BIGINT".into(), ColumnConstraint::None),
            (
                "tags".into(),
                "ARRAY<MAP<STRING, ARRAY<INTEGER>>>".into(),
                ColumnConstraint::None
            ),
            (
                "address".into(),
                "STRUCT<`STREET` STRING, `zip code` INTEGER>".into(),
                ColumnConstraint::None
            ),
            (
                "price".into(),
                "DECIMAL(10, 2)".into(),
                ColumnConstraint::None
            ),
            (
                "h".into(),
                "ARRAY<STRUCT<`KEY` STRING, `VALUE` BYTES>>".into(),
                ColumnConstraint::Headers
            ),
            (
                "trace".into(),
                "BYTES".into(),
                ColumnConstraint::Header("trace-id".into())
            ),
        ]
    );
    assert_eq!(
        c.properties.get("kafka_topic"),
        Some(&PropertyValue::String("pageviews".into()))
    );
    assert_eq!(
        c.properties.get("VALUE_FORMAT"),
        Some(&PropertyValue::String("JSON".into()))
    );
    assert_eq!(
        c.properties.get("PARTITIONS"),
        Some(&PropertyValue::Number("3".into()))
    );
    assert_eq!(
        c.properties.get("WRAP_SINGLE_VALUE"),
        Some(&PropertyValue::Boolean(false))
    );
}

#[test]
fn create_source_table_and_types() {
    let Statement::CreateSource(c) = one(
        "CREATE SOURCE TABLE users (id BIGINT PRIMARY KEY, name STRING) WITH (kafka_topic='users', format='json')",
    ) else {
        panic!()
    };
    assert!(c.source);
    assert_eq!(c.kind, SourceKind::Table);
    assert_eq!(c.columns[0].constraint, ColumnConstraint::PrimaryKey);
    assert_eq!(
        one("CREATE TYPE IF NOT EXISTS address AS STRUCT<street STRING, city STRING>"),
        Statement::CreateType {
            name: Ident::new("address"),
            if_not_exists: true,
            ty: SqlType::Struct(vec![
                ("STREET".into(), SqlType::String),
                ("CITY".into(), SqlType::String)
            ]),
        }
    );
    let Statement::CreateSource(c) = one("CREATE STREAM s (a address) WITH (kafka_topic='s')")
    else {
        panic!()
    };
    assert_eq!(c.columns[0].ty, SqlType::Named("address".into()));
    assert_eq!(
        one("DROP TYPE IF EXISTS address"),
        Statement::DropType {
            name: Ident::new("address"),
            if_exists: true
        }
    );
}

#[test]
fn persistent_queries_with_windows_groups_and_emit() {
    let Statement::CreateAsSelect(c) = one(
        "CREATE TABLE clicks_per_user WITH (KAFKA_TOPIC='out', PARTITIONS=2) AS
           SELECT user_id, COUNT(*) AS clicks, LATEST_BY_OFFSET(page) page
           FROM pageviews pv
           WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 10 MINUTES, RETENTION 7 DAYS, GRACE PERIOD 30 SECONDS)
           WHERE page <> 'home' AND address->city = 'Paris'
           GROUP BY user_id
           HAVING COUNT(*) > 1
           EMIT FINAL;",
    ) else {
        panic!()
    };
    assert_eq!(c.kind, SourceKind::Table);
    assert_eq!(c.name.value, "clicks_per_user");
    let q = &c.query;
    assert_eq!(q.projection.len(), 3);
    assert_eq!(q.from.name.value, "pageviews");
    assert_eq!(q.from.alias.as_ref().map(|a| a.value.as_str()), Some("pv"));
    assert_eq!(
        q.window,
        Some(Window {
            kind: WindowKind::Hopping {
                size: minutes(60),
                advance: minutes(10),
            },
            retention: Some(minutes(7 * 24 * 60)),
            grace: Some(Duration::from_secs(30)),
        })
    );
    assert!(q.selection.is_some());
    assert_eq!(q.group_by.len(), 1);
    assert!(q.having.is_some());
    assert_eq!(q.emit, Some(Emit::Final));
    let q = query("SELECT * FROM s WINDOW TUMBLING (SIZE 5 SECONDS) EMIT CHANGES LIMIT 3");
    assert_eq!(
        q.window.map(|w| w.kind),
        Some(WindowKind::Tumbling {
            size: Duration::from_secs(5)
        })
    );
    assert_eq!((q.emit, q.limit), (Some(Emit::Changes), Some(3)));
    let q = query("SELECT * FROM s WINDOW SESSION (60 SECONDS) GROUP BY k, k2 EMIT CHANGES");
    assert_eq!(
        q.window.map(|w| w.kind),
        Some(WindowKind::Session {
            gap: Duration::from_secs(60)
        })
    );
    assert_eq!(q.group_by.len(), 2);
}

#[test]
fn joins_of_every_kind_with_within_and_grace() {
    let q = query(
        "SELECT * FROM orders o
           JOIN shipments s WITHIN 1 HOUR GRACE PERIOD 5 MINUTES ON o.id = s.order_id
           LEFT OUTER JOIN payments p WITHIN (10 MINUTES, 2 HOURS) ON o.id = p.order_id
           RIGHT JOIN customers ON o.customer = customers.id
           FULL OUTER JOIN t2 AS x ON x.id = o.id
           INNER JOIN t3 ON t3.id = o.id
         PARTITION BY o.id EMIT CHANGES",
    );
    let kinds: Vec<JoinKind> = q.joins.iter().map(|j| j.kind).collect();
    assert_eq!(
        kinds,
        [
            JoinKind::Inner,
            JoinKind::Left,
            JoinKind::Right,
            JoinKind::Full,
            JoinKind::Inner
        ]
    );
    assert_eq!(
        q.joins[0].within,
        Some(Within {
            before: minutes(60),
            after: minutes(60),
            grace: Some(minutes(5))
        })
    );
    assert_eq!(
        q.joins[1].within,
        Some(Within {
            before: minutes(10),
            after: minutes(120),
            grace: None
        })
    );
    assert_eq!(q.joins[2].within, None);
    assert_eq!(
        q.joins[3].relation.alias.as_ref().map(|a| a.value.as_str()),
        Some("x")
    );
    assert_eq!(q.partition_by.len(), 1);
}

#[test]
fn inserts_pull_queries_and_expressions_ksqldb_writes() {
    let Statement::InsertValues {
        target,
        columns,
        values,
    } = one("INSERT INTO s (id, name, tags) VALUES (1, 'a', ARRAY[1, 2])")
    else {
        panic!()
    };
    assert_eq!(target.value, "s");
    assert_eq!((columns.len(), values.len()), (3, 3));
    assert!(matches!(
        one("INSERT INTO s WITH (QUERY_ID='q1') SELECT * FROM t EMIT CHANGES"),
        Statement::InsertSelect { .. }
    ));
    let q = query(
        "SELECT id, CASE WHEN x IN (1, 2) THEN 'a' ELSE 'b' END, CAST(y AS STRING),
                TRANSFORM(arr, x => x + 1), s->street, WINDOWSTART, ROWTIME
         FROM tbl WHERE id = 'k' AND WINDOWSTART >= 1000 AND name LIKE 'a%' AND n BETWEEN 1 AND 2",
    );
    assert_eq!(q.projection.len(), 7);
    assert_eq!(q.emit, None, "a pull query");
}

#[test]
fn commands() {
    assert_eq!(
        one("SHOW STREAMS EXTENDED"),
        Statement::Show {
            what: Listing::Streams,
            extended: true
        }
    );
    assert_eq!(
        one("list all topics"),
        Statement::Show {
            what: Listing::Topics { all: true },
            extended: false
        }
    );
    for (sql, what) in [
        ("SHOW TABLES", Listing::Tables),
        ("SHOW QUERIES", Listing::Queries),
        ("SHOW PROPERTIES", Listing::Properties),
        ("SHOW FUNCTIONS", Listing::Functions),
        ("SHOW TYPES", Listing::Types),
        ("SHOW VARIABLES", Listing::Variables),
    ] {
        assert_eq!(
            one(sql),
            Statement::Show {
                what,
                extended: false
            },
            "{sql}"
        );
    }
    assert_eq!(
        one("DESCRIBE pageviews EXTENDED"),
        Statement::Describe {
            name: Some(Ident::new("pageviews")),
            all: None,
            extended: true
        }
    );
    assert_eq!(
        one("DESCRIBE STREAMS"),
        Statement::Describe {
            name: None,
            all: Some(SourceKind::Stream),
            extended: false
        }
    );
    assert_eq!(
        one("DESCRIBE FUNCTION substring"),
        Statement::DescribeFunction(Ident::new("substring"))
    );
    assert_eq!(
        one("EXPLAIN CSAS_OUT_1"),
        Statement::Explain(Explained::QueryId("CSAS_OUT_1".into()))
    );
    assert!(matches!(
        one("EXPLAIN SELECT * FROM s EMIT CHANGES"),
        Statement::Explain(Explained::Statement(_))
    ));
    assert_eq!(
        one("PRINT 'page-views' FROM BEGINNING INTERVAL 2 LIMIT 10"),
        Statement::Print {
            topic: "page-views".into(),
            from_beginning: true,
            interval: Some(2),
            limit: Some(10)
        }
    );
    assert_eq!(
        one("SET 'auto.offset.reset'='earliest'"),
        Statement::Set {
            name: "auto.offset.reset".into(),
            value: "earliest".into()
        }
    );
    assert_eq!(
        one("UNSET 'auto.offset.reset'"),
        Statement::Unset("auto.offset.reset".into())
    );
    assert_eq!(
        one("DEFINE topic = 'orders'"),
        Statement::Define {
            name: "topic".into(),
            value: "orders".into()
        }
    );
    assert_eq!(one("UNDEFINE topic"), Statement::Undefine("topic".into()));
    assert_eq!(
        one("RUN SCRIPT '/tmp/app.sql'"),
        Statement::RunScript("/tmp/app.sql".into())
    );
    assert_eq!(one("TERMINATE ALL"), Statement::Terminate(None));
    assert_eq!(
        one("TERMINATE CTAS_T_3"),
        Statement::Terminate(Some("CTAS_T_3".into()))
    );
    assert_eq!(
        one("DROP TABLE IF EXISTS t DELETE TOPIC"),
        Statement::Drop {
            kind: SourceKind::Table,
            name: Ident::new("t"),
            if_exists: true,
            delete_topic: true
        }
    );
    let Statement::Alter { columns, .. } = one("ALTER STREAM s ADD COLUMN c INT, ADD d STRING")
    else {
        panic!()
    };
    assert_eq!(columns.len(), 2);
}

#[test]
fn scripts_split_into_statements_with_their_text() {
    let parsed = parse(
        "-- a comment\nCREATE STREAM a (x INT) WITH (kafka_topic='a');\n\n  SHOW STREAMS ;;\nSELECT * FROM a EMIT CHANGES",
    )
    .unwrap();
    let texts: Vec<(&str, u64, u64)> = parsed
        .iter()
        .map(|p| (p.text.as_str(), p.line, p.column))
        .collect();
    assert_eq!(
        texts,
        [
            ("CREATE STREAM a (x INT) WITH (kafka_topic='a')", 2, 1),
            ("SHOW STREAMS", 4, 3),
            ("SELECT * FROM a EMIT CHANGES", 5, 1),
        ]
    );
    assert!(parse("  ;  ").unwrap().is_empty());
}

#[test]
fn errors_say_where_and_what_was_expected() {
    let cases: &[(&str, u64, u64, &str)] = &[
        (
            "CREATE STRAEM s (a INT)",
            1,
            8,
            "expected STREAM, TABLE or TYPE after CREATE, found 'STRAEM'",
        ),
        (
            "SELECT * FROM s\n  WINDOW TUMBLING (SIZE 5 YEARS)",
            2,
            27,
            "expected a time unit",
        ),
        (
            "SELECT * FROM s EMIT",
            1,
            21,
            "expected CHANGES or FINAL after EMIT, found the end of the statement",
        ),
        (
            "CREATE STREAM s (a ARRAY<INT) WITH (kafka_topic='s')",
            1,
            29,
            "expected '>', found ')'",
        ),
        (
            "CREATE STREAM s (a INT) WITH (kafka_topic=)",
            1,
            43,
            "expected a value for KAFKA_TOPIC",
        ),
        (
            "CREATE STREAM s (a INT) WITH (partitions=1, PARTITIONS=2)",
            1,
            56,
            "expected PARTITIONS once",
        ),
        ("SELECT a FROM s WHERE", 1, 22, "Expected: an expression"),
        (
            "SHOW STREAMS FOO",
            1,
            14,
            "expected ';' at the end of the statement",
        ),
        ("FROBNICATE", 1, 1, "expected a statement"),
        (
            "CREATE SOURCE STREAM s AS SELECT * FROM t",
            1,
            24,
            "cannot be created AS SELECT",
        ),
        (
            "CREATE STREAM s (a DECIMAL(2, 5)) WITH (kafka_topic='s')",
            1,
            33,
            "the scale at most the precision",
        ),
        (
            "SELECT 'unterminated FROM s",
            1,
            8,
            "Unterminated string literal",
        ),
    ];
    for (sql, line, column, message) in cases {
        let (l, c, m) = error(sql);
        assert!(
            (l, c) == (*line, *column) && m.contains(message),
            "{sql}: line {l}:{c}: {m}"
        );
    }
    // Types nest 64 deep at most: deeper is an error, not a stack overflow.
    let deep = format!(
        "CREATE TYPE t AS {}INT{}",
        "ARRAY<".repeat(63),
        ">".repeat(63)
    );
    assert!(parse(&deep).is_ok());
    let deeper = format!("CREATE TYPE t AS {}", "ARRAY<".repeat(100_000));
    let (_, _, message) = error(&deeper);
    assert!(
        message.contains("a type nested at most 64 deep"),
        "{message}"
    );
    let (line, column, message) =
        error("CREATE TYPE t AS ARRAY<INT>>; CREATE TYPE u AS ARRAY<INT;");
    assert_eq!((line, column), (1, 27), "{message}");
    assert!(
        message.contains("expected the end of the type"),
        "{message}"
    );
    assert_eq!(
        parse_one("SHOW STREAMS; SHOW TABLES")
            .unwrap_err()
            .to_string(),
        "line 1:15: expected one statement, found 2"
    );
}

proptest::proptest! {
    /// Any mix of ksqlDB's words, symbols and literals parses or fails with a position
    /// inside the input; it never panics.
    #[test]
    fn any_token_soup_parses_or_fails_in_place(parts in proptest::collection::vec(
        proptest::sample::select(vec![
            "CREATE", "STREAM", "TABLE", "SOURCE", "TYPE", "AS", "SELECT", "*", "FROM", "s",
            "WITH", "(", ")", "<", ">", ">>", ",", ";", "=", "'x'", "`q`", "1", "1.5", "KEY",
            "PRIMARY", "ARRAY", "MAP", "STRUCT", "INT", "DECIMAL", "WINDOW", "TUMBLING", "SIZE",
            "HOURS", "EMIT", "CHANGES", "JOIN", "WITHIN", "ON", "GROUP", "BY", "PARTITION",
            "LIMIT", "SHOW", "DESCRIBE", "PRINT", "INSERT", "INTO", "VALUES", "->", "=>", "\n",
            "é", "'", "DROP", "IF", "EXISTS", "HEADER", "GRACE", "PERIOD", "-- c\n",
        ]),
        0..40,
    )) {
        let sql = parts.join(" ");
        if let Err(KsqlError::Parse { line, column, .. }) = parse(&sql) {
            let lines = sql.split('\n').collect::<Vec<_>>();
            proptest::prop_assert!(line >= 1 && (line as usize) <= lines.len(), "{sql:?}: line {line}");
            let width = lines[line as usize - 1].chars().count() as u64;
            proptest::prop_assert!(column >= 1 && column <= width + 1, "{sql:?}: {line}:{column}");
        }
    }
}

#[test]
fn struct_fields_bind_tighter_than_comparisons() {
    let parsed =
        crate::parser::parse("SELECT b->c FROM s WHERE b->c = 'x' AND 'y' = b->d->e EMIT CHANGES;")
            .unwrap();
    let text = format!("{:?}", parsed[0].statement);
    // Each `->` is the left operand of its comparison, not the other way round.
    assert!(!text.contains("Expected"), "{text}");
    let mut e = {
        let dialect = crate::parser::dialect::KsqlDialect;
        sqlparser::parser::Parser::new(&dialect)
            .try_with_sql("b->c = 'x'")
            .and_then(|mut p| p.parse_expr())
            .unwrap()
    };
    crate::plan::rewrite::for_datafusion(&mut e).unwrap();
    assert_eq!(e.to_string(), "\"B\".\"C\" = 'x'");
}

#[test]
fn statements_split_outside_quotes_and_comments() {
    let sql = "SELECT ';' FROM `a;b`; -- c;d\nSELECT 1 /* ; */;  -- the end";
    let parts: Vec<(&str, bool)> = split_statements(sql)
        .into_iter()
        .map(|p| (p.text, p.terminated))
        .collect();
    assert_eq!(
        parts,
        vec![
            ("SELECT ';' FROM `a;b`;", true),
            (" -- c;d\nSELECT 1 /* ; */;", true)
        ]
    );
    assert_eq!(split_statements(sql)[1].start, 22);
}

#[test]
fn an_open_quote_or_comment_or_a_missing_semicolon_leaves_a_statement_unfinished() {
    for sql in [
        "SHOW STREAMS",
        "SELECT 'it;s",
        "SELECT 'it''s;",
        "SHOW /* ; ",
        "SHOW STREAMS; /* a comment\n",
    ] {
        let last = split_statements(sql).pop().expect(sql);
        assert!(!last.terminated, "{sql}");
    }
    for sql in ["", "  \n", "-- nothing", ";;", "/* x */ ;"] {
        assert!(split_statements(sql).is_empty(), "{sql:?}");
    }
}
