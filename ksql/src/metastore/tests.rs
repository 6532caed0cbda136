use super::*;
use crate::parser::parse;

/// Runs the statements of `script` in order; the last one's outcome.
fn run(store: &mut MetaStore, script: &str) -> Result<DdlOutcome> {
    let mut last = None;
    for parsed in parse(script)? {
        last = Some(store.apply(&parsed.statement, &parsed.text));
        if let Some(Err(_)) = &last {
            break;
        }
    }
    last.unwrap_or_else(|| Err(KsqlError::statement("no statement")))
}

#[test]
fn ddl_outcomes_and_refusals_in_ksqldbs_words() {
    // (setup statements, the statement, Ok(message) or Err(part of the message))
    let cases: &[(&str, &str, std::result::Result<&str, &str>)] = &[
        ("", "CREATE STREAM s (id INT KEY, v STRING) WITH (kafka_topic='s', value_format='json')", Ok("Stream created")),
        ("", "CREATE TABLE t (id INT PRIMARY KEY, v STRING) WITH (kafka_topic='t', format='json')", Ok("Table created")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "CREATE OR REPLACE STREAM s (v STRING, w INT) WITH (kafka_topic='s', value_format='json')", Ok("Stream replaced")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json')", Err("Cannot add stream 'S': A stream with the same name already exists")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "CREATE TABLE IF NOT EXISTS s (k INT PRIMARY KEY, v STRING) WITH (kafka_topic='s', value_format='json')", Ok("A stream with the same name already exists")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "CREATE OR REPLACE TABLE s (k INT PRIMARY KEY, v STRING) WITH (kafka_topic='s', value_format='json')", Err("Cannot add table 'S': A stream with the same name already exists")),
        ("", "CREATE TABLE t (id INT, v STRING) WITH (kafka_topic='t', value_format='json')", Err("Tables require a PRIMARY KEY")),
        ("", "CREATE STREAM s (id INT PRIMARY KEY, v STRING) WITH (kafka_topic='s', value_format='json')", Err("please use 'KEY' for streams")),
        ("", "CREATE TABLE t (id INT KEY, v STRING) WITH (kafka_topic='t', value_format='json')", Err("please use 'PRIMARY KEY' for tables")),
        ("", "CREATE STREAM s (v STRING, V INT) WITH (kafka_topic='s', value_format='json')", Err("Duplicate column names: V")),
        ("", "CREATE STREAM s (`v` STRING, V INT) WITH (kafka_topic='s', value_format='json')", Ok("Stream created")),
        ("", "CREATE STREAM s (rowtime BIGINT) WITH (kafka_topic='s', value_format='json')", Err("'ROWTIME' is a reserved column name")),
        ("", "CREATE STREAM s (v STRING) WITH (value_format='json')", Err("Missing required property \"KAFKA_TOPIC\"")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s')", Err("Missing required property \"VALUE_FORMAT\"")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='avro')", Err("VALUE_FORMAT AVRO: this format needs a schema registry")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='xml')", Err("Unknown format: XML")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', format='json', key_format='kafka')", Err("Cannot supply both 'FORMAT' and 'KEY_FORMAT'")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json', colour='red')", Err("Invalid config variable(s) in the WITH clause: COLOUR")),
        ("", "CREATE STREAM s (k INT KEY, v STRING) WITH (kafka_topic='s', key_format='none', value_format='json')", Err("The 'NONE' format can only be used when no columns are defined")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='none')", Err("can only be used as the KEY_FORMAT")),
        ("", "CREATE STREAM s (a INT KEY, b INT KEY, v STRING) WITH (kafka_topic='s', value_format='json')", Err("The 'KAFKA' format only supports a single field")),
        ("", "CREATE STREAM s (a INT KEY, b INT KEY, v STRING) WITH (kafka_topic='s', format='json')", Ok("Stream created")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json', partitions=0)", Err("PARTITIONS must be at least 1")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json', timestamp='ts')", Err("The TIMESTAMP column set in the WITH clause does not exist in the schema: 'TS'")),
        ("", "CREATE TABLE w (k STRING PRIMARY KEY, n BIGINT) WITH (kafka_topic='w', value_format='json', window_type='tumbling')", Err("TUMBLING windows require 'WINDOW_SIZE'")),
        ("", "CREATE TABLE w (k STRING PRIMARY KEY, n BIGINT) WITH (kafka_topic='w', value_format='json', window_type='session', window_size='1 HOUR')", Err("'WINDOW_SIZE' should not be set for SESSION windows")),
        ("", "CREATE TABLE w (k STRING PRIMARY KEY, n BIGINT) WITH (kafka_topic='w', value_format='json', window_type='hopping', window_size='10 SECONDS')", Ok("Table created")),
        ("", "CREATE STREAM s (h ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, v STRING) WITH (kafka_topic='s', value_format='json')", Ok("Stream created")),
        ("", "CREATE STREAM s (h STRING HEADERS, v STRING) WITH (kafka_topic='s', value_format='json')", Err("Invalid type for HEADERS column `H`")),
        ("", "CREATE STREAM s (h STRING HEADER('x'), v STRING) WITH (kafka_topic='s', value_format='json')", Err("Invalid type for HEADER('x') column `H`: expected BYTES")),
        ("", "CREATE STREAM s (a address) WITH (kafka_topic='s', value_format='json')", Err("Unknown type: address")),
        ("CREATE TYPE address AS STRUCT<street STRING>;", "CREATE STREAM s (a ADDRESS) WITH (kafka_topic='s', value_format='json')", Ok("Stream created")),
        ("CREATE TYPE address AS STRUCT<street STRING>;", "CREATE TYPE address AS INT", Err("Cannot register custom type 'ADDRESS' since it is already registered with type: STRUCT<`STREET` STRING>")),
        ("", "DROP TYPE nothing", Err("Type NOTHING does not exist.")),
        ("", "DROP STREAM IF EXISTS nothing", Ok("Source `NOTHING` does not exist.")),
        ("", "DROP STREAM nothing", Err("Source NOTHING does not exist.")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='topic_s', value_format='json');", "DROP STREAM s", Ok("Source `S` (topic: topic_s) was dropped.")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "DROP TABLE s", Err("Incompatible data source type is STREAM, but statement was DROP TABLE")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "ALTER STREAM s ADD COLUMN w INT, ADD x STRING", Ok("Stream altered.")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "ALTER STREAM s ADD v INT", Err("Cannot add column `V` to schema. A column with the same name already exists.")),
        ("CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "ALTER STREAM s ADD w INT, ADD w STRING", Err("Cannot add column `W` to schema. A column with the same name already exists.")),
        ("CREATE SOURCE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');", "ALTER STREAM s ADD w INT", Err("ALTER command is not supported for read-only streams")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json', partitions=99999999999)", Err("PARTITIONS must be at most 2147483647")),
        ("", "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json', replicas=0)", Err("REPLICAS must be between 1 and 32767")),
    ];
    for (setup, statement, expected) in cases {
        let mut store = MetaStore::new();
        if !setup.is_empty() {
            if let Err(err) = run(&mut store, setup) {
                panic!("setup {setup}: {err}");
            }
        }
        let got = run(&mut store, statement);
        match (expected, &got) {
            (Ok(message), Ok(outcome)) if outcome.message == *message => {}
            (Err(part), Err(err)) if err.to_string().contains(part) => {}
            _ => panic!("{statement}\n  expected {expected:?}\n  got {got:?}"),
        }
    }
}

#[test]
fn sources_keep_key_columns_first_names_and_properties() {
    let mut store = MetaStore::new();
    run(
        &mut store,
        "CREATE TYPE addr AS STRUCT<street STRING>;
         CREATE TABLE users (name STRING, `Id` BIGINT PRIMARY KEY, home addr, ts BIGINT)
           WITH (kafka_topic='users', key_format='kafka', value_format='json', partitions=3,
                 replicas=1, timestamp='ts', wrap_single_value=false, retention='7 days');",
    )
    .unwrap();
    let users = store.source("USERS").unwrap();
    let names: Vec<&str> = users.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Id", "NAME", "HOME", "TS"]);
    assert!(users.columns[0].is_key());
    assert_eq!(
        users.column("HOME").unwrap().ty,
        SqlType::Struct(vec![("STREET".into(), SqlType::String)])
    );
    let p = &users.properties;
    assert_eq!(
        (p.topic.as_str(), p.key_format, p.value_format),
        ("users", Format::Kafka, Format::Json)
    );
    assert_eq!((p.partitions, p.replicas), (Some(3), Some(1)));
    assert_eq!(p.timestamp.as_deref(), Some("TS"));
    assert_eq!(p.wrap_single_value, Some(false));
    assert_eq!(p.retention_ms, Some(7 * 86_400_000));
    assert!(users.sql.starts_with("CREATE TABLE users"));
    assert_eq!(store.sources().count(), 1);
    assert_eq!(store.types().len(), 1);
}

#[test]
fn a_source_tables_own_query_goes_with_it_and_other_queries_still_block_a_drop() {
    let mut store = MetaStore::new();
    run(&mut store, "CREATE SOURCE TABLE t (id INT PRIMARY KEY, v STRING) WITH (kafka_topic='t', value_format='json');").unwrap();
    let own = QueryInfo {
        id: "CST_T_0".into(),
        sql: String::new(),
        sink: "T".into(),
        sources: vec!["T".into()],
    };
    store.add_query(own).unwrap();
    assert_eq!(store.materializing("T"), vec!["CST_T_0".to_string()]);
    // Another query reading the table blocks its drop, naming only itself.
    run(
        &mut store,
        "CREATE STREAM s (v STRING) WITH (kafka_topic='s', value_format='json');",
    )
    .unwrap();
    store
        .add_query(QueryInfo {
            id: "CSAS_X_1".into(),
            sql: String::new(),
            sink: "S".into(),
            sources: vec!["T".into()],
        })
        .unwrap();
    let refused = run(&mut store, "DROP TABLE t;").unwrap_err().to_string();
    assert!(
        refused.contains("[CSAS_X_1]") && !refused.contains("CST_T_0"),
        "{refused}"
    );
    store.terminate("CSAS_X_1").unwrap();
    run(&mut store, "DROP TABLE t;").unwrap();
    assert!(
        store.query("CST_T_0").is_none(),
        "the table's own query went with it"
    );
}
