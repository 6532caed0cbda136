//! ksqlDB's REST API on a server over an embedded node, called over HTTP.

mod common;

use std::time::Duration;

use serde_json::json;

use common::{http, ksql, names, on_server, partitions, serve};

#[test]
fn info_and_healthcheck_answer_as_ksqldb() {
    on_server(|addr, _client| async move {
        let (status, info) = http(&addr, "GET", "/info", None).await;
        assert_eq!(status, 200);
        let info = &info["KsqlServerInfo"];
        assert_eq!(info["serverStatus"], "RUNNING");
        assert_eq!(info["ksqlServiceId"], "default_");
        assert!(
            !info["kafkaClusterId"].as_str().unwrap().is_empty(),
            "{info}"
        );
        assert!(info["version"].as_str().unwrap().starts_with("0."));
        let (status, health) = http(&addr, "GET", "/healthcheck", None).await;
        assert_eq!(status, 200);
        assert_eq!(health["isHealthy"], true);
        assert_eq!(health["details"]["kafka"]["isHealthy"], true);
    });
}

#[test]
fn status_tells_each_commands_outcome() {
    on_server(|addr, _client| async move {
        let (status, _) = ksql(
            &addr,
            "CREATE STREAM s (id INT KEY, v STRING) WITH (kafka_topic='s', partitions=1, value_format='JSON'); \
             CREATE STREAM t AS SELECT * FROM s;",
        )
        .await;
        assert_eq!(status, 200);
        let (status, all) = http(&addr, "GET", "/status", None).await;
        assert_eq!(status, 200);
        assert_eq!(
            all["commandStatuses"]["stream/`S`/create"], "SUCCESS",
            "{all}"
        );
        assert_eq!(
            all["commandStatuses"]["stream/`T`/create"], "SUCCESS",
            "{all}"
        );
        let (status, one) = http(&addr, "GET", "/status/stream/%60T%60/create", None).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["status"], "SUCCESS");
        assert!(
            one["queryId"].as_str().unwrap().starts_with("CSAS_T_"),
            "{one}"
        );
        // The entity without its backquotes, too.
        let (status, one) = http(&addr, "GET", "/status/stream/S/create", None).await;
        assert_eq!((status, &one["message"]), (200, &json!("Stream created")));
        let (status, missing) = http(&addr, "GET", "/status/stream/NOPE/create", None).await;
        assert_eq!(status, 404);
        assert_eq!(missing["error_code"], 40400);
        assert_eq!(missing["message"], "Command not found");
    });
}

#[test]
fn ddl_creates_topics_lists_describes_and_drops() {
    on_server(|addr, client| async move {
        let (status, entities) = ksql(
            &addr,
            "CREATE STREAM pageviews (user_id STRING KEY, page STRING, ts BIGINT)
               WITH (kafka_topic='pageviews', value_format='json', partitions=3, timestamp='ts');",
        )
        .await;
        assert_eq!(status, 200, "{entities}");
        let created = &entities[0];
        assert_eq!(created["@type"], "currentStatus");
        assert_eq!(created["commandId"], "stream/`PAGEVIEWS`/create");
        assert_eq!(created["commandStatus"]["status"], "SUCCESS");
        assert_eq!(created["commandStatus"]["message"], "Stream created");
        assert!(created["statementText"]
            .as_str()
            .unwrap()
            .starts_with("CREATE STREAM pageviews"));
        assert_eq!(partitions(&client, "pageviews").await, Some(3));

        // Several statements: each answers in order.
        let (status, entities) = ksql(
            &addr,
            "CREATE TYPE address AS STRUCT<street STRING, city STRING>;
             CREATE TABLE users (id BIGINT PRIMARY KEY, name STRING, home address)
               WITH (kafka_topic='users', format='json', partitions=1);
             SHOW TABLES; SHOW STREAMS; LIST TOPICS; SHOW TYPES; DESCRIBE users EXTENDED;",
        )
        .await;
        assert_eq!(status, 200, "{entities}");
        let types: Vec<&str> = entities
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["@type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "currentStatus",
                "currentStatus",
                "tables",
                "streams",
                "kafka_topics",
                "type_list",
                "sourceDescription"
            ]
        );
        assert_eq!(
            entities[2]["tables"],
            json!([{"type": "TABLE", "name": "USERS", "topic": "users", "keyFormat": "JSON", "valueFormat": "JSON", "isWindowed": false}])
        );
        assert_eq!(entities[3]["streams"][0]["name"], "PAGEVIEWS");
        let topics: Vec<&str> = entities[4]["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(topics, ["pageviews", "users"]);
        assert_eq!(entities[4]["topics"][0]["replicaInfo"], json!([1, 1, 1]));
        assert_eq!(entities[5]["types"]["ADDRESS"]["type"], "STRUCT");
        let users = &entities[6]["sourceDescription"];
        assert_eq!(users["type"], "TABLE");
        assert_eq!(users["extended"], true);
        assert_eq!(users["partitions"], 1);
        assert_eq!(
            users["fields"][0],
            json!({"name": "ID", "schema": {"type": "BIGINT", "fields": null, "memberSchema": null}, "type": "KEY"})
        );
        // Struct fields are upper-cased unless quoted, as columns are.
        assert_eq!(users["fields"][2]["schema"]["fields"][1]["name"], "CITY");

        let (status, entities) = ksql(&addr, "DROP STREAM pageviews DELETE TOPIC;").await;
        assert_eq!(status, 200, "{entities}");
        assert_eq!(
            entities[0]["commandStatus"]["message"],
            "Source `PAGEVIEWS` (topic: pageviews) was dropped."
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while partitions(&client, "pageviews").await.is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the topic is deleted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn errors_are_ksqldb_error_entities() {
    on_server(|addr, client| async move {
        // A missing topic without PARTITIONS: ksqlDB's message, nothing created.
        let (status, error) = ksql(
            &addr,
            "CREATE STREAM ok (v STRING) WITH (kafka_topic='ok', value_format='json', partitions=1);
             CREATE TABLE t (id INT PRIMARY KEY, v STRING) WITH (kafka_topic='nowhere', value_format='json');",
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(error["@type"], "statement_error");
        assert_eq!(error["error_code"], 40001);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("Topic 'nowhere' does not exist. If you want to create a new topic for the table please re-run the statement providing the required 'PARTITIONS' configuration"),
            "{error}"
        );
        assert!(error["statementText"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE t"));
        // A request is checked whole before any of it runs: the stream before it is not
        // created either.
        assert_eq!(error["entities"], json!([]));
        assert_eq!(partitions(&client, "nowhere").await, None);
        assert_eq!(partitions(&client, "ok").await, None);
        let (_, streams) = ksql(&addr, "SHOW STREAMS;").await;
        assert_eq!(streams[0]["streams"], json!([]));
        let (status, _) = ksql(
            &addr,
            "CREATE STREAM ok (v STRING) WITH (kafka_topic='ok', value_format='json', partitions=1);",
        )
        .await;
        assert_eq!(status, 200);
        // An existing topic with other partitions than PARTITIONS asks for.
        let (status, error) = ksql(
            &addr,
            "CREATE STREAM ok2 (v STRING) WITH (kafka_topic='ok', value_format='json', partitions=4);",
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("KSQL expects 4 partitions (topic has 1)"),
            "{error}"
        );
        // DELETE TOPIC refuses a topic other sources read, a read-only source's and an
        // internal one.
        let (status, _) = ksql(
            &addr,
            "CREATE STREAM ok_too (v STRING) WITH (kafka_topic='ok', value_format='json');
             CREATE SOURCE STREAM ro (v STRING) WITH (kafka_topic='ro', value_format='json', partitions=1);
             CREATE STREAM commands (v STRING) WITH (kafka_topic='_confluent-ksql-default__command_topic', value_format='json');",
        )
        .await;
        assert_eq!(status, 200);
        for (statement, says) in [
            (
                "DROP STREAM ok DELETE TOPIC;",
                "Refusing to delete topic. Found other data sources (OK_TOO) using topic ok",
            ),
            (
                "DROP STREAM ro DELETE TOPIC;",
                "Cannot delete topic for read-only source: RO",
            ),
            (
                "DROP STREAM commands DELETE TOPIC;",
                "it is an internal topic",
            ),
        ] {
            let (status, error) = ksql(&addr, statement).await;
            assert_eq!(status, 400, "{statement}");
            assert!(
                error["message"].as_str().unwrap().contains(says),
                "{statement}: {error}"
            );
        }
        assert_eq!(partitions(&client, "ok").await, Some(1));
        let (_, tables) = ksql(&addr, "SHOW TABLES;").await;
        assert_eq!(tables[0]["tables"], json!([]));

        // A syntax error: where and what.
        let (status, error) = ksql(&addr, "CREATE STRAEM s (v STRING);").await;
        assert_eq!(status, 400);
        assert_eq!(
            error["message"],
            "line 1:8: expected STREAM, TABLE or TYPE after CREATE, found 'STRAEM'"
        );
        // DESCRIBE FUNCTION: ksqlDB's entity, a variation per signature.
        let (status, described) = ksql(&addr, "DESCRIBE FUNCTION substring;").await;
        assert_eq!(status, 200, "{described}");
        assert_eq!(described[0]["@type"], "describe_function");
        assert_eq!(described[0]["name"], "SUBSTRING");
        assert_eq!(described[0]["type"], "SCALAR");
        let takes = |types: &[&str], returns: &str| {
            described[0]["functions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| {
                    let args: Vec<&str> = v["arguments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a["type"].as_str())
                        .collect();
                    args == types && v["returnType"] == returns
                })
        };
        assert!(takes(&["VARCHAR", "INT"], "VARCHAR"), "{described}");
        assert!(takes(&["BYTES", "INT", "INT"], "BYTES"), "{described}");
        let (status, error) = ksql(&addr, "DESCRIBE FUNCTION nope;").await;
        assert_eq!(status, 400);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("Can't find any functions with the name 'NOPE'"),
            "{error}"
        );
        // A body that is not a request.
        let (status, error) = http(&addr, "POST", "/ksql", Some("{not json")).await;
        assert_eq!(status, 400);
        assert_eq!(error["@type"], "generic_error");
        assert_eq!(error["error_code"], 40000);
        let (status, error) =
            http(&addr, "POST", "/ksql", Some("{\"sql\": \"SHOW STREAMS;\"}")).await;
        assert_eq!(status, 400);
        assert!(error["message"].as_str().unwrap().contains("\"ksql\""));
    });
}

#[test]
fn definitions_survive_a_restart_and_servers_of_one_service_share_them() {
    on_server(|addr, client| async move {
        let (status, entities) = ksql(
            &addr,
            "CREATE TYPE money AS DECIMAL(10, 2);
             CREATE STREAM orders (id BIGINT KEY, total money) WITH (kafka_topic='orders', value_format='json', partitions=2);
             CREATE TABLE totals (id BIGINT PRIMARY KEY, total money) WITH (kafka_topic='totals', value_format='json', partitions=1);
             ALTER STREAM orders ADD COLUMN note STRING;
             DROP TABLE totals;",
        )
        .await;
        assert_eq!(status, 200, "{entities}");
        let sequence: Vec<i64> = entities
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["commandSequenceNumber"].as_i64().unwrap())
            .collect();
        assert_eq!(
            sequence,
            [0, 1, 2, 3, 4],
            "each command's offset in the command topic"
        );

        // A second server of the same service: it reads the same commands.
        let twin = serve(&client, "default_").await;
        let twin_addr = twin.local_addr().to_string();
        let (_, listed) = ksql(&twin_addr, "SHOW STREAMS; SHOW TABLES; SHOW TYPES;").await;
        assert_eq!(names(&listed[0], "streams"), ["ORDERS"]);
        assert_eq!(names(&listed[1], "tables"), Vec::<String>::new());
        assert_eq!(listed[2]["types"]["MONEY"]["type"], "DECIMAL");
        let (_, described) = ksql(&twin_addr, "DESCRIBE orders;").await;
        let fields: Vec<&str> = described[0]["sourceDescription"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["ID", "TOTAL", "NOTE"]);
        // What the twin takes, the first server applies too.
        let (status, created) = ksql(
            &twin_addr,
            "CREATE STREAM clicks (v STRING) WITH (kafka_topic='clicks', value_format='json', partitions=1);",
        )
        .await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created[0]["commandSequenceNumber"], 5);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, listed) = ksql(&addr, "SHOW STREAMS;").await;
            if names(&listed[0], "streams") == ["CLICKS", "ORDERS"] {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{listed}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A name taken on the other server is refused here too.
        let (status, refused) = ksql(
            &addr,
            "CREATE STREAM clicks (v STRING) WITH (kafka_topic='clicks', value_format='json');",
        )
        .await;
        assert_eq!(status, 400);
        assert!(refused["message"]
            .as_str()
            .unwrap()
            .contains("A stream with the same name already exists"));
        twin.shutdown().await;

        // A restart (a new server, the old one gone) rebuilds the same metastore; another
        // service id has its own.
        let restarted = serve(&client, "default_").await;
        let (_, listed) = ksql(&restarted.local_addr().to_string(), "SHOW STREAMS;").await;
        assert_eq!(names(&listed[0], "streams"), ["CLICKS", "ORDERS"]);
        restarted.shutdown().await;
        let other = serve(&client, "other_").await;
        let (_, listed) = ksql(
            &other.local_addr().to_string(),
            "SHOW STREAMS; LIST ALL TOPICS;",
        )
        .await;
        assert_eq!(names(&listed[0], "streams"), Vec::<String>::new());
        let topics = names(&listed[1], "topics");
        for topic in [
            "_confluent-ksql-default__command_topic",
            "_confluent-ksql-other__command_topic",
        ] {
            assert!(topics.contains(&topic.to_string()), "{topics:?}");
        }
        other.shutdown().await;
    });
}

/// PyPI's `ksqldb` client (installed by `.ci/run`) drives the server with its own calls.
#[test]
fn the_ksqldb_python_client_creates_lists_inserts_queries_and_reads_errors() {
    on_server(|addr, _client| async move {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/ksqldb_client.py"
        );
        let url = format!("http://{addr}");
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("timeout")
                .args(["60", "python3", script, &url])
                .output()
        })
        .await
        .unwrap()
        .expect("python3 with PyPI's ksqldb (installed by .ci/run)");
        assert!(
            output.status.success() && output.stdout.starts_with(b"ok"),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

#[test]
fn variables_are_defined_listed_substituted_and_undefined() {
    on_server(|addr, _| async move {
        let request = json!({
            "ksql": "DEFINE topic = 'clicks'; DEFINE fmt = 'JSON'; SHOW VARIABLES;\n\
                     CREATE STREAM ${topic} (v STRING) WITH (kafka_topic='${topic}', partitions=1, value_format='${fmt}');\n\
                     UNDEFINE fmt; UNDEFINE never; SHOW VARIABLES;",
            "sessionVariables": {"suffix": "_s"},
        })
        .to_string();
        let (status, entities) = http(&addr, "POST", "/ksql", Some(&request)).await;
        assert_eq!(status, 200, "{entities}");
        let entities = entities.as_array().unwrap();
        // DEFINE and UNDEFINE answer nothing; UNDEFINE of what was never defined warns.
        assert_eq!(entities.len(), 4, "{entities:?}");
        assert_eq!(entities[0]["@type"], "variables");
        assert_eq!(
            entities[0]["variables"],
            json!([
                {"name": "FMT", "value": "JSON"},
                {"name": "SUFFIX", "value": "_s"},
                {"name": "TOPIC", "value": "clicks"},
            ])
        );
        assert_eq!(
            entities[1]["statementText"],
            "CREATE STREAM clicks (v STRING) WITH (kafka_topic='clicks', partitions=1, value_format='JSON');"
        );
        assert_eq!(entities[2]["@type"], "warning_entity");
        assert_eq!(
            entities[2]["message"],
            "Cannot undefine variable 'never' which was never defined"
        );
        assert_eq!(
            entities[3]["variables"],
            json!([{"name": "SUFFIX", "value": "_s"}, {"name": "TOPIC", "value": "clicks"}])
        );
        let (_, listed) = ksql(&addr, "SHOW STREAMS;").await;
        assert_eq!(names(&listed[0], "streams"), vec!["CLICKS"]);
    });
}
