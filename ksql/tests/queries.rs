//! Push queries over `/query` and `/query-stream`, and persistent queries across a restart
//! of the server, `SHOW QUERIES`, `TERMINATE` and `DROP`, over HTTP.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value as Json};

use common::{consume, ksql, ksql_with, on_server, produce, serve, Input, Streamed};

fn json_value(v: Json) -> Input {
    Input {
        partition: None,
        key: None,
        value: Some(Bytes::from(v.to_string())),
        timestamp: None,
    }
}

const SETUP: &str = "CREATE STREAM views (page STRING, ms INT) \
                     WITH (kafka_topic='views', partitions=1, value_format='JSON');";

/// A push query over `/query-stream` from the earliest records, answered with 200.
async fn push_from_earliest(addr: &str, sql: &str) -> Streamed {
    let request = json!({"sql": sql, "properties": {"auto.offset.reset": "earliest"}}).to_string();
    let response = Streamed::post(addr, "/query-stream", &request, "*/*").await;
    assert_eq!(response.status, 200, "{}", response.head);
    response
}

#[test]
fn a_push_query_streams_rows_in_the_delimited_form_until_its_limit() {
    on_server(|addr, client| async move {
        let (status, body) = ksql(&addr, SETUP).await;
        assert_eq!(status, 200, "{body}");
        let mut response = push_from_earliest(&addr, "SELECT UCASE(page) AS p, ms * 2 AS twice FROM views WHERE ms > 0 EMIT CHANGES LIMIT 2;").await;
        let metadata: Json = serde_json::from_str(&response.next_line().await.unwrap()).unwrap();
        assert_eq!(metadata["columnNames"], json!(["P", "TWICE"]));
        assert_eq!(metadata["columnTypes"], json!(["STRING", "INTEGER"]));
        assert!(metadata["queryId"]
            .as_str()
            .unwrap()
            .starts_with("transient_VIEWS_"));
        produce(
            &client,
            "views",
            vec![
                json_value(json!({"PAGE": "a", "MS": 1})),
                json_value(json!({"PAGE": "skip", "MS": 0})),
                json_value(json!({"PAGE": "b", "MS": 5})),
                json_value(json!({"PAGE": "c", "MS": 7})),
            ],
        )
        .await;
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["A",2]"#));
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["B",10]"#));
        // LIMIT 2: the response ends.
        assert_eq!(response.next_line().await, None);
    });
}

#[test]
fn a_push_query_of_a_join_and_of_a_table_stream_their_rows() {
    on_server(|addr, client| async move {
        let setup = "CREATE STREAM clicks (user STRING KEY, page STRING) \
                     WITH (kafka_topic='clicks', partitions=1, value_format='JSON'); \
                     CREATE TABLE users (id STRING PRIMARY KEY, name STRING, age INT) \
                     WITH (kafka_topic='users', partitions=1, value_format='JSON');";
        let (status, body) = ksql(&addr, setup).await;
        assert_eq!(status, 200, "{body}");
        let keyed = |key: &str, value: Json, timestamp: i64| Input {
            partition: None,
            key: Some(Bytes::from(key.to_string())),
            value: Some(Bytes::from(value.to_string())),
            timestamp: Some(timestamp),
        };
        produce(
            &client,
            "users",
            vec![
                keyed("ann", json!({"NAME": "Ann", "AGE": 30}), 1),
                keyed("bob", json!({"NAME": "Bob", "AGE": 12}), 2),
            ],
        )
        .await;
        produce(
            &client,
            "clicks",
            vec![
                keyed("ann", json!({"PAGE": "home"}), 3),
                keyed("cy", json!({"PAGE": "faq"}), 4),
                keyed("bob", json!({"PAGE": "shop"}), 5),
            ],
        )
        .await;
        let mut response = push_from_earliest(&addr, "SELECT c.user, c.page, u.name FROM clicks c LEFT JOIN users u ON c.user = u.id EMIT CHANGES LIMIT 3;").await;
        let metadata: Json = serde_json::from_str(&response.next_line().await.unwrap()).unwrap();
        assert_eq!(metadata["columnNames"], json!(["USER", "PAGE", "NAME"]));
        assert_eq!(
            response.next_line().await.as_deref(),
            Some(r#"["ann","home","Ann"]"#)
        );
        assert_eq!(
            response.next_line().await.as_deref(),
            Some(r#"["cy","faq",null]"#)
        );
        assert_eq!(
            response.next_line().await.as_deref(),
            Some(r#"["bob","shop","Bob"]"#)
        );
        assert_eq!(response.next_line().await, None);
        // A table's rows, filtered: those that pass.
        let mut response = push_from_earliest(
            &addr,
            "SELECT id, name FROM users WHERE age >= 18 EMIT CHANGES LIMIT 1;",
        )
        .await;
        response.next_line().await.unwrap();
        assert_eq!(
            response.next_line().await.as_deref(),
            Some(r#"["ann","Ann"]"#)
        );
        assert_eq!(response.next_line().await, None);
    });
}

#[test]
fn a_push_query_from_latest_sees_every_record_written_after_it_answers() {
    on_server(|addr, client| async move {
        ksql(&addr, SETUP).await;
        produce(
            &client,
            "views",
            vec![json_value(json!({"PAGE": "before", "MS": 1}))],
        )
        .await;
        // No properties: ksqlDB's default, `latest`.
        let request = json!({"sql": "SELECT page FROM views EMIT CHANGES LIMIT 1;"}).to_string();
        let mut response = Streamed::post(&addr, "/query-stream", &request, "*/*").await;
        assert_eq!(response.status, 200, "{}", response.head);
        response.next_line().await.unwrap();
        produce(
            &client,
            "views",
            vec![json_value(json!({"PAGE": "after", "MS": 2}))],
        )
        .await;
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["after"]"#));
        assert_eq!(response.next_line().await, None);
    });
}

#[test]
fn the_original_query_endpoint_has_a_header_rows_and_a_final_message() {
    on_server(|addr, client| async move {
        ksql(&addr, SETUP).await;
        produce(
            &client,
            "views",
            vec![json_value(json!({"PAGE": "x", "MS": 3}))],
        )
        .await;
        let request = json!({
            "ksql": "SELECT * FROM views EMIT CHANGES LIMIT 1;",
            "streamsProperties": {"ksql.streams.auto.offset.reset": "earliest"},
        })
        .to_string();
        let mut response = Streamed::post(&addr, "/query", &request, "application/json").await;
        assert_eq!(response.status, 200, "{}", response.head);
        let mut body = String::new();
        while let Some(line) = response.next_line().await {
            body.push_str(&line);
        }
        let parsed: Json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(parsed[0]["header"]["schema"], "`PAGE` STRING, `MS` INTEGER");
        assert_eq!(parsed[1]["row"]["columns"], json!(["x", 3]));
        assert_eq!(parsed[2]["finalMessage"], "Limit Reached");
    });
}

#[test]
fn a_pull_query_answers_at_once_on_both_query_endpoints() {
    on_server(|addr, client| async move {
        ksql(&addr, SETUP).await;
        produce(
            &client,
            "views",
            vec![
                json_value(json!({"PAGE": "x", "MS": 3})),
                json_value(json!({"PAGE": "y", "MS": 300})),
            ],
        )
        .await;
        // `/query-stream`: the metadata line, a line per row, then the end.
        let request = json!({"sql": "SELECT page FROM views WHERE ms > 100;"}).to_string();
        let mut response = Streamed::post(&addr, "/query-stream", &request, "*/*").await;
        assert_eq!(response.status, 200, "{}", response.head);
        let metadata: Json = serde_json::from_str(&response.next_line().await.unwrap()).unwrap();
        assert_eq!(metadata["columnNames"], json!(["PAGE"]));
        assert_eq!(metadata["columnTypes"], json!(["STRING"]));
        assert!(metadata["queryId"].as_str().unwrap().starts_with("query_"));
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["y"]"#));
        assert_eq!(response.next_line().await, None, "the answer ends");
        // `/query`: one JSON array, ending with ksqlDB's final message for a stream.
        let request = json!({"ksql": "SELECT * FROM views;"}).to_string();
        let mut response = Streamed::post(&addr, "/query", &request, "application/json").await;
        assert_eq!(response.status, 200, "{}", response.head);
        let mut body = String::new();
        while let Some(line) = response.next_line().await {
            body.push_str(&line);
        }
        let parsed: Json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(parsed[0]["header"]["schema"], "`PAGE` STRING, `MS` INTEGER");
        assert_eq!(parsed[1]["row"]["columns"], json!(["x", 3]));
        assert_eq!(parsed[2]["row"]["columns"], json!(["y", 300]));
        assert_eq!(parsed[3]["finalMessage"], "Query Completed");
    });
}

#[test]
fn close_query_ends_a_push_query_and_bad_queries_are_statement_errors() {
    on_server(|addr, client| async move {
        ksql(&addr, SETUP).await;
        let request = json!({"sql": "SELECT page FROM views EMIT CHANGES;", "properties": {"auto.offset.reset": "earliest"}}).to_string();
        let mut response = Streamed::post(&addr, "/query-stream", &request, "*/*").await;
        let metadata: Json = serde_json::from_str(&response.next_line().await.unwrap()).unwrap();
        produce(
            &client,
            "views",
            vec![json_value(json!({"PAGE": "one", "MS": 1}))],
        )
        .await;
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["one"]"#));
        let close = json!({"queryId": metadata["queryId"]}).to_string();
        let (status, _) = common::http_raw(&addr, "POST", "/close-query", &close).await;
        assert_eq!(status, 200);
        assert_eq!(response.next_line().await, None, "the response ends");
        let (status, _) = common::http_raw(&addr, "POST", "/close-query", &close).await;
        assert_eq!(status, 400, "the query is gone");

        for (sql, expected) in [
            (
                "SELECT nope FROM views EMIT CHANGES;",
                "Column 'NOPE' cannot be resolved.",
            ),
            (
                "SELECT page, COUNT(*) FROM views GROUP BY page;",
                "Pull queries don't support GROUP BY clauses",
            ),
            (
                "SELECT page FROM missing EMIT CHANGES;",
                "MISSING does not exist.",
            ),
            ("SHOW STREAMS;", "not supported for this resource"),
        ] {
            let request = json!({"sql": sql}).to_string();
            let mut response = Streamed::post(&addr, "/query-stream", &request, "*/*").await;
            assert_eq!(response.status, 400, "{sql}");
            let mut body = String::new();
            while let Some(line) = response.next_line().await {
                body.push_str(&line);
            }
            let error: Json = serde_json::from_str(&body).unwrap();
            assert_eq!(error["@type"], "statement_error", "{sql}");
            assert!(
                error["message"].as_str().unwrap().contains(expected),
                "{sql}: {error}"
            );
        }
        // A request is checked whole: a bad insert after a good one writes neither.
        let before = common::record_count(&client, "views").await;
        let (status, error) = ksql(
            &addr,
            "INSERT INTO views (page, ms) VALUES ('ok', 1); INSERT INTO views (page, ms) VALUES ('bad', 'x');",
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("Expected type INTEGER for field `MS`"),
            "{error}"
        );
        assert_eq!(common::record_count(&client, "views").await, before);

        // The functions queries may call.
        let (status, listing) = ksql(&addr, "SHOW FUNCTIONS;").await;
        assert_eq!(status, 200);
        assert_eq!(listing[0]["@type"], "function_names");
        let functions = listing[0]["functions"].as_array().unwrap();
        assert_eq!(functions.len(), 120, "the count README gives");
        assert!(
            functions.contains(&json!({"name": "EXPLODE", "category": "TABLE", "type": "TABLE"}))
        );
        assert!(
            functions.contains(&json!({"name": "UCASE", "category": "STRING", "type": "SCALAR"}))
        );
        assert!(functions
            .contains(&json!({"name": "COUNT", "category": "AGGREGATE", "type": "AGGREGATE"})));
        // /ksql sends queries to the query endpoints, as ksqlDB does.
        let (status, error) = ksql(&addr, "SELECT * FROM views EMIT CHANGES;").await;
        assert_eq!(status, 400);
        assert!(
            error["message"].as_str().unwrap().contains("'/query'"),
            "{error}"
        );
    });
}

#[test]
fn a_persistent_query_goes_on_after_a_restart_without_loss_or_repeats() {
    on_server(|_addr, client| async move {
        // A server of its own, to restart.
        let server = serve(&client, "restarted_").await;
        let addr = server.local_addr().to_string();
        let (status, body) = ksql_with(
            &addr,
            &format!(
                "{SETUP} CREATE STREAM slow AS SELECT page, ms FROM views WHERE ms >= 100 EMIT CHANGES;"
            ),
            json!({"auto.offset.reset": "earliest"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let query_id = body[1]["commandStatus"]["queryId"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(query_id.starts_with("CSAS_SLOW_"), "{body}");
        assert_eq!(
            body[1]["commandStatus"]["message"],
            format!("Created query with ID {query_id}")
        );
        let batch = |from: i32, to: i32| {
            (from..to)
                .map(|i| json_value(json!({"PAGE": format!("p{i}"), "MS": i * 10})))
                .collect::<Vec<_>>()
        };
        // Pages 10..20 are slow (ms >= 100).
        produce(&client, "views", batch(0, 20)).await;
        assert_eq!(
            consume(&client, "SLOW", 10, Duration::from_secs(20))
                .await
                .len(),
            10
        );

        let (_, listing) = ksql(&addr, "SHOW QUERIES;").await;
        let queries = listing[0]["queries"].as_array().unwrap();
        assert_eq!(queries.len(), 1, "{listing}");
        assert_eq!(queries[0]["id"], query_id.as_str());
        assert_eq!(queries[0]["state"], "RUNNING");
        assert_eq!(queries[0]["sinkKafkaTopics"], json!(["SLOW"]));

        server.shutdown().await;
        produce(&client, "views", batch(20, 30)).await;
        let server = serve(&client, "restarted_").await;
        let addr = server.local_addr().to_string();
        let pages: Vec<String> = consume(&client, "SLOW", 20, Duration::from_secs(20))
            .await
            .iter()
            .map(|r| {
                let v: Json = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                v["PAGE"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(pages.len(), 20, "{pages:?}");
        let distinct: BTreeSet<&String> = pages.iter().collect();
        assert_eq!(distinct.len(), 20, "no page twice: {pages:?}");
        assert_eq!(common::record_count(&client, "SLOW").await, 20);

        // EXPLAIN shows DataFusion's plan and the Streams topology.
        let (status, explained) = ksql(&addr, &format!("EXPLAIN {query_id};")).await;
        assert_eq!(status, 200, "{explained}");
        let description = &explained[0]["queryDescription"];
        assert_eq!(explained[0]["@type"], "queryDescription");
        assert_eq!(description["state"], "RUNNING");
        assert_eq!(description["queryType"], "PERSISTENT");
        assert_eq!(description["sinks"], json!(["SLOW"]));
        let plan = description["executionPlan"].as_str().unwrap();
        assert!(
            plan.contains("TableScan: VIEWS") && plan.contains("MS >= Int32(100)"),
            "{plan}"
        );
        assert!(
            description["topology"]
                .as_str()
                .unwrap()
                .contains("batch source views"),
            "{description}"
        );
        let (status, explained) = ksql(&addr, "EXPLAIN SELECT page FROM views EMIT CHANGES;").await;
        assert_eq!(status, 200, "{explained}");
        assert_eq!(explained[0]["queryDescription"]["queryType"], "PUSH");

        // A source a query writes cannot be dropped until the query is terminated.
        let (status, error) = ksql(&addr, "DROP STREAM slow;").await;
        assert_eq!(status, 400);
        assert!(
            error["message"].as_str().unwrap().contains(&format!(
                "The following queries write into this source: [{query_id}]"
            )),
            "{error}"
        );
        let (status, error) = ksql(&addr, "TERMINATE nope_1;").await;
        assert_eq!(status, 400);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("Unknown queryId: NOPE_1"),
            "{error}"
        );
        let (status, body) = ksql(&addr, &format!("TERMINATE {query_id};")).await;
        assert_eq!(status, 200, "{body}");
        let (_, listing) = ksql(&addr, "SHOW QUERIES;").await;
        assert_eq!(listing[0]["queries"], json!([]));
        let (status, body) = ksql(&addr, "DROP STREAM slow; DROP STREAM views;").await;
        assert_eq!(status, 200, "{body}");
        server.shutdown().await;
    });
}

#[test]
fn two_servers_of_one_service_share_a_persistent_querys_partitions() {
    on_server(|_addr, client| async move {
        let first = serve(&client, "shared_").await;
        let second = serve(&client, "shared_").await;
        let (status, body) = ksql_with(
            &first.local_addr().to_string(),
            "CREATE STREAM clicks (user_id STRING KEY, url STRING) \
             WITH (kafka_topic='clicks', partitions=4, value_format='JSON'); \
             CREATE STREAM upper_clicks AS SELECT user_id, UCASE(url) AS url FROM clicks EMIT CHANGES;",
            json!({"auto.offset.reset": "earliest"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        // Both servers run the query: the second learns it from the command topic, in its
        // own time (PENDING until its runner has started it).
        let second_addr = second.local_addr().to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, listing) = ksql(&second_addr, "SHOW QUERIES;").await;
            if listing[0]["queries"][0]["state"] == "RUNNING" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the second server did not run the query within 20 s: {listing}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let records: Vec<Input> = (0..200)
            .map(|i| Input {
                partition: None,
                key: Some(Bytes::from(format!("user{i}"))),
                value: Some(Bytes::from(json!({"URL": format!("/p{i}")}).to_string())),
                timestamp: None,
            })
            .collect();
        produce(&client, "clicks", records).await;
        let rows = consume(&client, "UPPER_CLICKS", 200, Duration::from_secs(30)).await;
        let keys: BTreeSet<Bytes> = rows.iter().filter_map(|r| r.key.clone()).collect();
        assert_eq!(rows.len(), 200);
        assert_eq!(keys.len(), 200, "every record once");
        // The group of the query's application has a member on each server.
        let group = "_confluent-ksql-shared_query_".to_string()
            + body[1]["commandStatus"]["queryId"].as_str().unwrap();
        let described = client.describe_group(&group).await.unwrap();
        assert_eq!(described.members.len(), 2, "{described:?}");
        second.shutdown().await;
        first.shutdown().await;
    });
}

#[test]
fn an_aggregation_goes_on_from_its_restored_state_after_a_restart() {
    on_server(|_addr, client| async move {
        let server = serve(&client, "aggregating_").await;
        let addr = server.local_addr().to_string();
        let properties = json!({"auto.offset.reset": "earliest", "cache.max.bytes.buffering": 0});
        let (status, body) = ksql_with(
            &addr,
            &format!(
                "{SETUP} CREATE TABLE per_page AS SELECT page, COUNT(*) AS n, SUM(ms) AS total FROM views GROUP BY page;"
            ),
            properties.clone(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let query_id = body[1]["commandStatus"]["queryId"].as_str().unwrap();
        assert!(query_id.starts_with("CTAS_PER_PAGE_"), "{body}");
        let batch = |from: i32, to: i32| {
            (from..to)
                .map(|i| json_value(json!({"PAGE": format!("p{}", i % 2), "MS": i})))
                .collect::<Vec<_>>()
        };
        produce(&client, "views", batch(0, 10)).await;
        assert_eq!(
            consume(&client, "PER_PAGE", 10, Duration::from_secs(20))
                .await
                .len(),
            10
        );
        // The repartition topic and the store's changelog are the query's, named as ksqlDB
        // names them.
        let app = format!("_confluent-ksql-aggregating_query_{query_id}");
        let topics: Vec<String> = client
            .describe_topics(None)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        for suffix in [
            "Aggregate-GroupBy-repartition",
            "Aggregate-Aggregate-Materialize-changelog",
        ] {
            assert!(
                topics.iter().any(|t| *t == format!("{app}-{suffix}")),
                "{suffix} in {topics:?}"
            );
        }

        server.shutdown().await;
        produce(&client, "views", batch(10, 14)).await;
        let server = serve(&client, "aggregating_").await;
        let addr = server.local_addr().to_string();
        let rows = consume(&client, "PER_PAGE", 14, Duration::from_secs(20)).await;
        assert_eq!(rows.len(), 14);
        assert_eq!(common::record_count(&client, "PER_PAGE").await, 14);
        // The last update of each page counts every record once: the state was restored.
        let last: Vec<Json> = rows[10..]
            .iter()
            .map(|r| serde_json::from_slice(r.value.as_ref().unwrap()).unwrap())
            .collect();
        assert_eq!(last[2], json!({"N": 7, "TOTAL": 42}), "{last:?}");
        assert_eq!(last[3], json!({"N": 7, "TOTAL": 49}), "{last:?}");

        // A push query aggregates too, each update of a group a row.
        let request = json!({
            "sql": "SELECT page, COUNT(*) AS n FROM views GROUP BY page EMIT CHANGES LIMIT 3;",
            "properties": properties,
        })
        .to_string();
        let mut response = Streamed::post(&addr, "/query-stream", &request, "*/*").await;
        assert_eq!(response.status, 200, "{}", response.head);
        let metadata: Json = serde_json::from_str(&response.next_line().await.unwrap()).unwrap();
        assert_eq!(metadata["columnNames"], json!(["PAGE", "N"]));
        assert_eq!(metadata["columnTypes"], json!(["STRING", "BIGINT"]));
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["p0",1]"#));
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["p1",1]"#));
        assert_eq!(response.next_line().await.as_deref(), Some(r#"["p0",2]"#));
        assert_eq!(response.next_line().await, None);
        server.shutdown().await;
    });
}

/// A headless server's queries file.
const APP_SQL: &str = "-- the app\n\
    SET 'auto.offset.reset' = 'earliest';\n\
    CREATE STREAM clicks (user STRING KEY, ms INT) WITH (kafka_topic='clicks', partitions=1, value_format='JSON');\n\
    CREATE STREAM slow WITH (kafka_topic='slow_clicks') AS\n\
      SELECT user, ms FROM clicks WHERE ms > 100;\n";

#[test]
fn a_headless_server_runs_its_queries_file_and_refuses_interactive_use() {
    on_server(|_, client| async move {
        let engine = sluice_ksql::engine::Engine::start_headless(client.clone(), "app_")
            .await
            .unwrap();
        let entities = engine.run_queries_file("app.sql", APP_SQL).await.unwrap();
        let query_id = entities
            .iter()
            .find_map(|e| e["commandStatus"]["queryId"].as_str())
            .unwrap()
            .to_string();
        // Numbered by the file's commands (SET is none): every server of the file names it
        // alike.
        assert_eq!(query_id, "CSAS_SLOW_1");
        let server = sluice_ksql::rest::KsqlServer::start_headless(
            std::sync::Arc::new(engine),
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let addr = server.local_addr().to_string();
        produce(
            &client,
            "clicks",
            vec![json_value(json!({"MS": 5})), json_value(json!({"MS": 500}))],
        )
        .await;
        let got = consume(&client, "slow_clicks", 1, Duration::from_secs(20)).await;
        assert_eq!(got.len(), 1);
        let value: Json = serde_json::from_slice(got[0].value.as_ref().unwrap()).unwrap();
        assert_eq!(value, json!({"MS": 500}));
        // Monitoring works; statements do not.
        let (status, info) = common::http(&addr, "GET", "/info", None).await;
        assert_eq!(status, 200);
        assert_eq!(info["KsqlServerInfo"]["ksqlServiceId"], "app_");
        let (status, refused) = ksql(&addr, "SHOW STREAMS;").await;
        assert_eq!(status, 403);
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("headless mode"),
            "{refused}"
        );
        server.shutdown().await;
    });
}

#[test]
fn a_bad_queries_file_stops_with_the_line_and_the_reason() {
    on_server(|_, client| async move {
        let engine = sluice_ksql::engine::Engine::start_headless(client.clone(), "bad_")
            .await
            .unwrap();
        // A statement that fails its checks: the whole file is refused before any runs.
        let file = format!("{APP_SQL}CREATE STREAM worse AS SELECT nope FROM clicks;\n");
        let err = engine.run_queries_file("app.sql", &file).await.unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("app.sql, line 6: "), "{message}");
        assert!(message.contains("NOPE"), "{message}");
        assert!(
            client.topic("slow_clicks", false).await.is_err(),
            "nothing ran: {message}"
        );
        // A statement headless mode does not take, in ksqlDB's words.
        let file = "CREATE STREAM s (v INT) WITH (kafka_topic='s', partitions=1, value_format='JSON');\n\nSELECT * FROM s;\n";
        let err = engine.run_queries_file("app.sql", file).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("app.sql, line 3: Unsupported statement. Only the following statements are supporting in standalone mode:"),
            "{message}"
        );
        // A parse error: its line and column in the file.
        let err = engine
            .run_queries_file("app.sql", "\n\nCREATE STREM s;")
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("app.sql: line 3:"), "{err}");
    });
}

#[test]
fn print_shows_a_topics_records_as_ksqldb_does() {
    on_server(|addr, client| async move {
        ksql(&addr, SETUP).await;
        produce(
            &client,
            "views",
            vec![
                json_value(json!({"PAGE": "x", "MS": 3})),
                json_value(json!({"PAGE": "y", "MS": 4})),
                json_value(json!({"PAGE": "z", "MS": 5})),
            ],
        )
        .await;
        let request =
            json!({"ksql": "PRINT 'views' FROM BEGINNING INTERVAL 2 LIMIT 2;"}).to_string();
        let mut response = Streamed::post(&addr, "/query", &request, "application/json").await;
        assert_eq!(response.status, 200, "{}", response.head);
        let mut lines = Vec::new();
        while let Some(line) = response.next_line().await {
            if !line.is_empty() {
                lines.push(line);
            }
        }
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(lines[0], "Key format: ¯\\_(ツ)_/¯ - no data processed");
        assert_eq!(lines[1], "Value format: JSON or KAFKA_STRING");
        // Every second record, two of them.
        for (line, value) in lines[2..]
            .iter()
            .zip([r#"{"MS":3,"PAGE":"x"}"#, r#"{"MS":5,"PAGE":"z"}"#])
        {
            assert!(line.starts_with("rowtime: "), "{line}");
            assert!(
                line.ends_with(&format!(", key: <null>, value: {value}, partition: 0")),
                "{line}"
            );
        }
        let request = json!({"ksql": "PRINT 'nope';"}).to_string();
        let (status, error) = common::http(&addr, "POST", "/query", Some(&request)).await;
        assert_eq!(status, 400);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("Could not find topic 'nope'"),
            "{error}"
        );
    });
}

#[test]
fn inserts_stream_acknowledges_each_row_and_stops_at_a_bad_one() {
    on_server(|addr, client| async move {
        ksql(&addr, SETUP).await;
        let body = [
            json!({"target": "views"}),
            json!({"page": "a", "ms": 1}),
            json!({"PAGE": "b", "MS": 2}),
            json!({"PAGE": "c", "MS": "not a number"}),
            json!({"PAGE": "d", "MS": 4}),
        ]
        .iter()
        .map(Json::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        let mut response = Streamed::post(&addr, "/inserts-stream", &body, "*/*").await;
        assert_eq!(response.status, 200, "{}", response.head);
        let mut lines = Vec::new();
        while let Some(line) = response.next_line().await {
            lines.push(line);
        }
        // ksqlDB's acknowledgement, field for field.
        assert_eq!(lines[0], r#"{"status":"ok","seq":0}"#);
        let acks: Vec<Json> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(acks[1], json!({"status": "ok", "seq": 1}));
        assert_eq!(acks[2]["status"], "error");
        assert_eq!(acks[2]["seq"], 2);
        assert_eq!(acks.len(), 3, "the bad row ends the stream: {acks:?}");
        let got = consume(&client, "views", 2, Duration::from_secs(10)).await;
        let values: Vec<Json> = got
            .iter()
            .map(|r| serde_json::from_slice(r.value.as_ref().unwrap()).unwrap())
            .collect();
        assert_eq!(
            values,
            vec![json!({"PAGE": "a", "MS": 1}), json!({"PAGE": "b", "MS": 2})]
        );
        // An unknown target is refused before any row.
        let body = format!("{}\n{}", json!({"target": "nope"}), json!({"PAGE": "x"}));
        let response = Streamed::post(&addr, "/inserts-stream", &body, "*/*").await;
        assert_eq!(response.status, 400, "{}", response.head);
    });
}

#[test]
fn push_queries_of_windowed_sources_show_each_row_with_its_window() {
    on_server(|addr, client| async move {
        let setup = "CREATE TABLE counts (page STRING PRIMARY KEY, n BIGINT) \
                     WITH (kafka_topic='counts', partitions=1, value_format='JSON', \
                     window_type='TUMBLING', window_size='10 SECONDS'); \
                     CREATE STREAM visits (user STRING KEY, pages INT) \
                     WITH (kafka_topic='visits', partitions=1, value_format='JSON', \
                     window_type='SESSION');";
        let (status, body) = ksql(&addr, setup).await;
        assert_eq!(status, 200, "{body}");
        // Keys as Kafka Streams writes windowed ones: a time window's start, a session's
        // end then start (8 big-endian bytes each).
        let windowed = |key: &str, bounds: &[i64], value: Json| {
            let mut bytes = key.as_bytes().to_vec();
            for bound in bounds {
                bytes.extend(bound.to_be_bytes());
            }
            Input {
                partition: None,
                key: Some(Bytes::from(bytes)),
                value: Some(Bytes::from(value.to_string())),
                timestamp: Some(bounds[0]),
            }
        };
        produce(
            &client,
            "counts",
            vec![
                windowed("a", &[0], json!({"N": 2})),
                // A key too short for its window is skipped.
                Input {
                    partition: None,
                    key: Some(Bytes::from_static(b"abc")),
                    value: Some(Bytes::from(json!({"N": 9}).to_string())),
                    timestamp: Some(5),
                },
                windowed("b", &[10_000], json!({"N": 1})),
            ],
        )
        .await;
        produce(
            &client,
            "visits",
            vec![windowed("ann", &[7_000, 1_000], json!({"PAGES": 3}))],
        )
        .await;
        let mut response = push_from_earliest(
            &addr,
            "SELECT * FROM counts WHERE n > 0 EMIT CHANGES LIMIT 2;",
        )
        .await;
        let metadata: Json = serde_json::from_str(&response.next_line().await.unwrap()).unwrap();
        assert_eq!(
            metadata["columnNames"],
            json!(["PAGE", "WINDOWSTART", "WINDOWEND", "N"])
        );
        assert_eq!(
            response.next_line().await.as_deref(),
            Some(r#"["a",0,10000,2]"#)
        );
        assert_eq!(
            response.next_line().await.as_deref(),
            Some(r#"["b",10000,20000,1]"#)
        );
        assert_eq!(response.next_line().await, None);
        // A session's bounds, in an expression.
        let mut response = push_from_earliest(&addr, "SELECT user, WINDOWEND - WINDOWSTART AS length, pages FROM visits EMIT CHANGES LIMIT 1;").await;
        response.next_line().await.unwrap();
        assert_eq!(
            response.next_line().await.as_deref(),
            Some(r#"["ann",6000,3]"#)
        );
        assert_eq!(response.next_line().await, None);
        // Persistent queries of windowed tables are refused, in ksqlDB's words.
        let (status, body) = ksql(&addr, "CREATE TABLE copy AS SELECT * FROM counts;").await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("KSQL does not support persistent queries on windowed tables."),
            "{body}"
        );
    });
}
