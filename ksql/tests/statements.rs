//! The statement suite: files of cases in the shape of ksqlDB's query translation tests
//! (`ksql/tests/statements/*.json`), each run through the REST API of a server on a fresh
//! embedded node: its statements, then its input records, then the records its queries
//! wrote, compared with the expected ones — or the error a statement must fail with.
//!
//! A case: `{"name", "statements": [...], "properties": {...}, "topics": [{"name",
//! "partitions"}], "inputs": [{"topic", "key", "value", "timestamp", "partition"}],
//! "outputs": [{"topic", "key", "value", "timestamp"}], "expectedException": {"message"},
//! ... (an input may be `{"await": {"topic", "records"}}`: see `run_case`),
//! "unordered": true}` (the last for the outputs of several queries, compared as sets).
//! Keys and values are written as JSON in the shape of the formats of the source that
//! reads the topic (`KAFKA` numbers by the column's type, `JSON` as they are, `DELIMITED`
//! as the string given; `rawValue` for bytes no format would write); expected ones are read
//! back the same way, a windowed key's window as `"window": {"start", "end", "type"}`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value as Json};
use sluice_log::client::Client;

use common::{consume, ksql_with, on_server, produce, record_count, Input};

/// The formats and column types of a source, as `DESCRIBE` tells them.
#[derive(Debug, Clone)]
struct Shape {
    key_format: String,
    value_format: String,
    key_types: Vec<String>,
    value_types: Vec<String>,
    /// `TUMBLING`, `HOPPING` or `SESSION` for a windowed source.
    window_type: Option<String>,
}

/// The shape of the source reading or writing `topic`.
async fn shape(addr: &str, topic: &str) -> Option<Shape> {
    let (_, listing) = ksql_with(
        addr,
        "SHOW STREAMS EXTENDED; SHOW TABLES EXTENDED;",
        json!({}),
    )
    .await;
    for entity in listing.as_array()? {
        for source in entity["sourceDescriptions"].as_array()? {
            if source["topic"] == topic {
                let types = |key: bool| {
                    source["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|f| (f["type"] == "KEY") == key && f["type"] != "HEADER")
                        .map(|f| f["schema"]["type"].as_str().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                };
                return Some(Shape {
                    key_format: source["keyFormat"].as_str()?.to_string(),
                    value_format: source["valueFormat"].as_str()?.to_string(),
                    key_types: types(true),
                    value_types: types(false),
                    window_type: source["windowType"].as_str().map(str::to_string),
                });
            }
        }
    }
    None
}

/// `value` in `format` (`types`: the key's column types, for KAFKA).
fn encode(format: &str, types: &[String], value: &Json) -> Option<Bytes> {
    if value.is_null() {
        return None;
    }
    Some(match format {
        "KAFKA" => match (types.first().map(String::as_str), value) {
            (Some("INTEGER"), Json::Number(n)) => {
                Bytes::copy_from_slice(&(n.as_i64().unwrap() as i32).to_be_bytes())
            }
            (Some("BIGINT"), Json::Number(n)) => {
                Bytes::copy_from_slice(&n.as_i64().unwrap().to_be_bytes())
            }
            (Some("DOUBLE"), Json::Number(n)) => {
                Bytes::copy_from_slice(&n.as_f64().unwrap().to_be_bytes())
            }
            (_, Json::String(s)) => Bytes::from(s.clone()),
            (ty, v) => panic!("cannot write {v} as KAFKA {ty:?}"),
        },
        "DELIMITED" => Bytes::from(value.as_str().expect("DELIMITED as a string").to_string()),
        _ => Bytes::from(value.to_string()),
    })
}

/// A windowed key's bytes: the key's, and its window as QTT writes it (`{"start", "end",
/// "type": "session"}`, or `{"start", "type": "time"}`: a time window's end is not in its
/// key).
fn split_windowed(kind: &str, bytes: &Option<Bytes>) -> (Option<Bytes>, Option<Json>) {
    let Some(bytes) = bytes else {
        return (None, None);
    };
    let be = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap());
    let n = bytes.len();
    if kind == "SESSION" {
        assert!(n >= 16, "a session key of {n} bytes");
        let (end, start) = (be(&bytes[n - 16..n - 8]), be(&bytes[n - 8..]));
        (
            Some(bytes.slice(..n - 16)),
            Some(json!({"start": start, "end": end, "type": "session"})),
        )
    } else {
        assert!(n >= 8, "a windowed key of {n} bytes");
        (
            Some(bytes.slice(..n - 8)),
            Some(json!({"start": be(&bytes[n - 8..]), "type": "time"})),
        )
    }
}

/// Bytes read back as JSON, in `format`.
fn decode(format: &str, types: &[String], bytes: &Option<Bytes>) -> Json {
    let Some(bytes) = bytes else {
        return Json::Null;
    };
    match format {
        "KAFKA" => match types.first().map(String::as_str) {
            Some("INTEGER") if bytes.len() == 4 => {
                json!(i32::from_be_bytes(bytes[..4].try_into().unwrap()))
            }
            Some("BIGINT") if bytes.len() == 8 => {
                json!(i64::from_be_bytes(bytes[..8].try_into().unwrap()))
            }
            Some("DOUBLE") if bytes.len() == 8 => {
                json!(f64::from_be_bytes(bytes[..8].try_into().unwrap()))
            }
            _ => json!(String::from_utf8_lossy(bytes)),
        },
        "JSON" => serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes))),
        _ => json!(String::from_utf8_lossy(bytes)),
    }
}

/// Runs one case; a failure names the case and what differed.
async fn run_case(addr: &str, client: &Arc<Client>, case: &Json) {
    let name = case["name"].as_str().unwrap_or("?");
    // As ksqlDB's query translation tests: every update of a table written (no cache).
    let mut properties = json!({"auto.offset.reset": "earliest", "cache.max.bytes.buffering": 0});
    if let Some(extra) = case["properties"].as_object() {
        for (k, v) in extra {
            properties[k] = v.clone();
        }
    }
    // Topics the inputs name exist before the statements run (as the test driver has them).
    let mut partitions: BTreeMap<String, i32> = BTreeMap::new();
    for topic in case["topics"].as_array().into_iter().flatten() {
        partitions.insert(
            topic["name"].as_str().unwrap().to_string(),
            topic["partitions"].as_i64().unwrap_or(1) as i32,
        );
    }
    for input in case["inputs"].as_array().into_iter().flatten() {
        if let Some(topic) = input["topic"].as_str() {
            partitions.entry(topic.to_string()).or_insert(1);
        }
    }
    // And the topics that sources declared with columns read.
    for statement in case["statements"].as_array().into_iter().flatten() {
        let text = statement.as_str().unwrap_or("");
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("create") && !lower.contains(" as select ") {
            if let Some(at) = lower.find("kafka_topic='") {
                let rest = &text[at + "kafka_topic='".len()..];
                // With the statement's `PARTITIONS`, if it gives them.
                let count: Option<i32> = lower
                    .split("partitions=")
                    .nth(1)
                    .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse().ok());
                if let Some(end) = rest.find('\'') {
                    let topic = rest[..end].to_string();
                    match count {
                        Some(count) => {
                            partitions.insert(topic, count);
                        }
                        None => {
                            partitions.entry(topic).or_insert(1);
                        }
                    }
                }
            }
        }
    }
    for (topic, n) in &partitions {
        client
            .create_topics(
                &[sluice_log::client::NewTopic {
                    name: topic.clone(),
                    partitions: *n,
                    replication_factor: 1,
                    configs: BTreeMap::new(),
                }],
                false,
            )
            .await
            .unwrap();
    }
    let expected_error = case["expectedException"]["message"]
        .as_str()
        .or(case["expectedError"]["message"].as_str());
    // Pull queries run once the inputs are in (REST query translation tests).
    let (pulls, statements): (Vec<&Json>, Vec<&Json>) = case["statements"]
        .as_array()
        .unwrap()
        .iter()
        .partition(|s| is_pull(s.as_str().unwrap_or("")));
    for statement in statements {
        let statement = statement.as_str().unwrap();
        let (status, body) = ksql_with(addr, statement, properties.clone()).await;
        if status != 200 {
            match expected_error {
                Some(expected) => {
                    let message = body["message"].as_str().unwrap_or("");
                    assert!(
                        message.contains(expected),
                        "case {name:?}: {statement}\n  failed with {message:?}\n  expected an error containing {expected:?}"
                    );
                    return;
                }
                None => panic!("case {name:?}: {statement}\n  failed: {body}"),
            }
        }
    }
    if let Some(expected) = expected_error.filter(|_| pulls.is_empty()) {
        panic!("case {name:?}: every statement ran; expected an error containing {expected:?}");
    }
    // Inputs, in order, each encoded as the source reading its topic reads it; an
    // `{"await": {"topic", "records"}}` waits for a query's output to have that many records
    // before the inputs after it are written (for queries whose sides run in different tasks,
    // as a foreign-key join's: Kafka's test driver, which ksqlDB's cases assume, runs each
    // input through before the next).
    let mut by_topic: Vec<(String, Vec<Input>)> = Vec::new();
    for input in case["inputs"].as_array().into_iter().flatten() {
        if let Some(wait) = input.get("await") {
            for (topic, records) in std::mem::take(&mut by_topic) {
                produce(client, &topic, records).await;
            }
            let topic = wait["topic"].as_str().unwrap();
            let records = wait["records"].as_u64().unwrap() as usize;
            let got = consume(client, topic, records, Duration::from_secs(20)).await;
            assert!(
                got.len() >= records,
                "case {name:?}: {topic} has {} records, awaited {records}",
                got.len()
            );
            continue;
        }
        let topic = input["topic"].as_str().unwrap().to_string();
        let shape = shape(addr, &topic)
            .await
            .unwrap_or_else(|| panic!("case {name:?}: no source reads {topic}"));
        let record = Input {
            partition: input["partition"].as_i64().map(|p| p as i32),
            key: encode(&shape.key_format, &shape.key_types, &input["key"]),
            value: match input["rawValue"].as_str() {
                Some(raw) => Some(Bytes::from(raw.to_string())),
                None => encode(&shape.value_format, &shape.value_types, &input["value"]),
            },
            timestamp: input["timestamp"].as_i64(),
        };
        // Consecutive inputs of one topic go in one batch, keeping the order overall.
        match by_topic.last_mut() {
            Some((t, records)) if *t == topic => records.push(record),
            _ => by_topic.push((topic, vec![record])),
        }
    }
    for (topic, records) in by_topic {
        produce(client, &topic, records).await;
    }
    if !pulls.is_empty() {
        // The responses of the statements, in order: those of the pull queries last.
        let answers: Vec<&Json> = case["responses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r.get("query").is_some())
            .collect();
        for (at, pull) in pulls.iter().enumerate() {
            let sql = pull.as_str().unwrap();
            match (answers.get(at), expected_error) {
                (Some(answer), _) => await_pull(addr, name, sql, &properties, answer).await,
                (None, Some(expected)) => {
                    let (status, body) = pull_query(addr, sql, &properties).await;
                    let message = body["message"].as_str().unwrap_or("");
                    assert!(
                        status != 200 && message.contains(expected),
                        "case {name:?}: {sql}\n  answered {status} {body}\n  expected an error containing {expected:?}"
                    );
                    return;
                }
                (None, None) => panic!("case {name:?}: no response expected of {sql}"),
            }
        }
    }
    // Outputs, by topic, in order.
    let mut expected: BTreeMap<String, Vec<&Json>> = BTreeMap::new();
    for output in case["outputs"].as_array().into_iter().flatten() {
        expected
            .entry(output["topic"].as_str().unwrap().to_string())
            .or_default()
            .push(output);
    }
    for (topic, wanted) in expected {
        let got = consume(client, &topic, wanted.len(), Duration::from_secs(20)).await;
        let shape = shape(addr, &topic)
            .await
            .unwrap_or_else(|| panic!("case {name:?}: no source writes {topic}"));
        let got_json: Vec<Json> = got
            .iter()
            .map(|r| {
                let (key, window) = match &shape.window_type {
                    Some(kind) => split_windowed(kind, &r.key),
                    None => (r.key.clone(), None),
                };
                let mut got = json!({
                    "topic": topic,
                    "key": decode(&shape.key_format, &shape.key_types, &key),
                    "value": decode(&shape.value_format, &shape.value_types, &r.value),
                    "timestamp": r.timestamp,
                });
                if let Some(window) = window {
                    got["window"] = window;
                }
                got
            })
            .collect();
        let wanted_json: Vec<Json> = wanted
            .iter()
            .zip(got_json.iter().chain(std::iter::repeat(&Json::Null)))
            .map(|(w, g)| {
                let mut w = (*w).clone();
                // An output without a timestamp takes any.
                if w.get("timestamp").is_none() {
                    w["timestamp"] = g["timestamp"].clone();
                }
                if w.get("key").is_none() {
                    w["key"] = Json::Null;
                }
                // QTT's cases comment their records.
                if let Some(fields) = w.as_object_mut() {
                    fields.remove("comment");
                }
                // A time window's end is not in its key (the start and the size make it).
                if w["window"]["type"] == "time" {
                    if let Some(window) = w["window"].as_object_mut() {
                        window.remove("end");
                    }
                }
                w
            })
            .collect();
        // Several queries writing one topic interleave as they run: `"unordered": true`
        // compares the records as sets.
        let (mut got_json, mut wanted_json) = (got_json, wanted_json);
        if case["unordered"] == true {
            got_json.sort_by_key(|r| r.to_string());
            wanted_json.sort_by_key(|r| r.to_string());
        }
        assert_eq!(
            got_json, wanted_json,
            "case {name:?}: the records of {topic} (left: got, right: expected)"
        );
        let held = record_count(client, &topic).await;
        assert_eq!(
            held,
            wanted_json.len() as i64,
            "case {name:?}: {topic} holds more records than expected"
        );
    }
}

/// Whether `statement` is a pull query (a `SELECT` without `EMIT`).
fn is_pull(statement: &str) -> bool {
    let upper = statement.trim_start().to_ascii_uppercase();
    upper.starts_with("SELECT") && !upper.contains(" EMIT ")
}

/// `POST /query` of pull query `sql`: the status and the body.
async fn pull_query(addr: &str, sql: &str, properties: &Json) -> (u16, Json) {
    let body = json!({"ksql": sql, "streamsProperties": properties}).to_string();
    common::http(addr, "POST", "/query", Some(&body)).await
}

/// Runs pull query `sql` until it answers `expected` (ksqlDB's `{"query": [{"header"},
/// {"row"}...]}`; rows in any order, as a scan's are) or 10 s pass: the persistent queries
/// materialising the table catch up with the inputs meanwhile.
async fn await_pull(addr: &str, name: &str, sql: &str, properties: &Json, expected: &Json) {
    let shape = |answer: &Json| -> (Json, Vec<String>) {
        let items = answer.as_array().cloned().unwrap_or_default();
        let header = items
            .iter()
            .find_map(|i| i.get("header"))
            .map(|h| h["schema"].clone())
            .unwrap_or(Json::Null);
        let mut rows: Vec<String> = items
            .iter()
            .filter_map(|i| i.get("row"))
            .map(|r| r["columns"].to_string())
            .collect();
        rows.sort();
        (header, rows)
    };
    let wanted = shape(&expected["query"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = pull_query(addr, sql, properties).await;
        assert_eq!(status, 200, "case {name:?}: {sql}\n  failed: {body}");
        let got = shape(&body);
        if got == wanted {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            assert_eq!(
                got, wanted,
                "case {name:?}: {sql} (left: got, right: expected)"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs every case of `file` (under `tests/statements/`), each on a fresh node.
fn run_file(file: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/statements")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let suite: Json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = suite["tests"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "{file} has no cases");
    for case in cases {
        on_server(|addr, client| async move {
            run_case(&addr, &client, &case).await;
        });
    }
}

#[test]
fn projections_and_filters() {
    run_file("project_filter.json");
}

#[test]
fn formats() {
    run_file("formats.json");
}

#[test]
fn aggregations() {
    run_file("aggregate.json");
}

#[test]
fn windowed_aggregations() {
    run_file("windows.json");
}

#[test]
fn insert_select() {
    run_file("insert_select.json");
}

#[test]
fn partition_by() {
    run_file("partition_by.json");
}

#[test]
fn insert_values() {
    run_file("insert_values.json");
}

#[test]
fn table_sources() {
    run_file("tables.json");
}

#[test]
fn joins() {
    run_file("joins.json");
}

#[test]
fn n_way_joins() {
    run_file("n_way_joins.json");
}

#[test]
fn pull_queries() {
    run_file("pull.json");
}

#[test]
fn scalar_functions() {
    run_file("functions.json");
}

#[test]
fn table_functions() {
    run_file("table_functions.json");
}

#[test]
fn timestamps() {
    run_file("timestamps.json");
}
