use super::*;
use crate::parser::ast::Statement;
use crate::parser::parse;

const SETUP: &str = "
    CREATE STREAM pageviews (id BIGINT KEY, page STRING, user_id INT, price DECIMAL(10, 2),
        address STRUCT<street STRING, `zip` INT>, tags ARRAY<STRING>)
        WITH (kafka_topic='pageviews', value_format='json');
    CREATE TABLE users (uid INT PRIMARY KEY, name STRING)
        WITH (kafka_topic='users', format='json');";

fn metastore() -> MetaStore {
    let mut store = MetaStore::new();
    for parsed in parse(SETUP).unwrap() {
        store.apply(&parsed.statement, &parsed.text).unwrap();
    }
    store
}

fn plan(sql: &str) -> Result<PlannedQuery> {
    let parsed = crate::parser::parse_one(sql)?;
    let Statement::Query(query) = parsed.statement else {
        panic!("not a query: {sql}");
    };
    plan_query(&query, &metastore())
}

fn columns(sql: &str) -> Vec<(String, String, bool)> {
    plan(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .columns
        .into_iter()
        .map(|c| (c.name, c.ty.to_string(), c.key))
        .collect()
}

fn col(name: &str, ty: &str, key: bool) -> (String, String, bool) {
    (name.to_string(), ty.to_string(), key)
}

#[test]
fn select_items_are_named_and_typed_as_ksqldb_does() {
    assert_eq!(
        columns("SELECT * FROM pageviews EMIT CHANGES;"),
        vec![
            col("ID", "BIGINT", true),
            col("PAGE", "STRING", false),
            col("USER_ID", "INTEGER", false),
            col("PRICE", "DECIMAL(10, 2)", false),
            col("ADDRESS", "STRUCT<`STREET` STRING, `zip` INTEGER>", false),
            col("TAGS", "ARRAY<STRING>", false),
        ]
    );
    assert_eq!(
        columns(
            "SELECT id AS pv, UCASE(page), user_id + 1, address->street, address->`zip`, \
             ROWTIME, p.page AS p2 FROM pageviews p WHERE LEN(page) > 3 EMIT CHANGES;"
        ),
        vec![
            col("PV", "BIGINT", true),
            col("KSQL_COL_0", "STRING", false),
            col("KSQL_COL_1", "INTEGER", false),
            col("STREET", "STRING", false),
            col("zip", "INTEGER", false),
            col("ROWTIME", "BIGINT", false),
            col("P2", "STRING", false),
        ]
    );
    // A name taken by an alias is skipped when numbering.
    assert_eq!(
        columns("SELECT page AS KSQL_COL_0, UCASE(page) FROM pageviews EMIT CHANGES;"),
        vec![
            col("KSQL_COL_0", "STRING", false),
            col("KSQL_COL_1", "STRING", false)
        ]
    );
}

#[test]
fn the_plan_is_datafusions_and_names_the_source() {
    let planned = plan("SELECT page FROM pageviews WHERE user_id = 7 EMIT CHANGES;").unwrap();
    let text = planned.plan.display_indent().to_string();
    assert!(text.contains("TableScan: PAGEVIEWS"), "{text}");
    // The filter is DataFusion's, pushed into the scan or above it.
    assert!(text.contains("USER_ID = Int32(7)"), "{text}");
    assert_eq!(planned.missing_keys, vec!["ID".to_string()]);
    assert_eq!(planned.source.name, "PAGEVIEWS");
}

#[test]
fn lambdas_and_casts_plan() {
    assert_eq!(
        columns(
            "SELECT TRANSFORM(tags, x => UCASE(x)) AS t, CAST(user_id AS STRING) AS s, \
             CAST(price AS DOUBLE) AS d FROM pageviews EMIT CHANGES;"
        ),
        vec![
            col("T", "ARRAY<STRING>", false),
            col("S", "STRING", false),
            col("D", "DOUBLE", false),
        ]
    );
}

#[test]
fn mistakes_are_statement_errors_naming_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("SELECT nope FROM pageviews EMIT CHANGES;", "NOPE"),
        (
            "SELECT page FROM missing EMIT CHANGES;",
            "MISSING does not exist",
        ),
        (
            "SELECT NO_SUCH_FN(page) FROM pageviews EMIT CHANGES;",
            "Can't find any functions with the name 'NO_SUCH_FN'",
        ),
        (
            "SELECT upper(page) FROM pageviews EMIT CHANGES;",
            "Can't find any functions with the name 'UPPER'",
        ),
        (
            "SELECT page, page FROM pageviews EMIT CHANGES;",
            "Duplicate value columns",
        ),
        (
            "SELECT page FROM pageviews WHERE page + 1 > 2 EMIT CHANGES;",
            "Utf8",
        ),
        ("SELECT x.page FROM pageviews p EMIT CHANGES;", "X"),
    ];
    for (sql, expected) in cases {
        match plan(sql) {
            Ok(p) => panic!("{sql} planned: {:?}", p.columns),
            Err(e) => assert!(
                e.to_string().contains(expected),
                "{sql}: {e} (expected {expected})"
            ),
        }
    }
}

#[test]
fn a_function_refusing_its_arguments_says_so_in_ksqldbs_words() {
    let err = plan("SELECT ROUND(page) FROM pageviews EMIT CHANGES;")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Function 'Round' does not accept parameters (STRING)."),
        "{err}"
    );
}
