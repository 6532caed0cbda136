//! Kafka Connect's REST API on a standalone worker and an embedded node, called over HTTP as
//! curl or Kafka's tools call it: create, inspect, pause, resume, stop, alter offsets, restart,
//! validate and delete connectors, with Kafka Connect's status codes and error bodies.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use sluice_connect::rest::{RestClient, RestServer};
use sluice_connect::worker::{Worker, WorkerConfig};

use common::*;

/// The status of `method path` without a body.
async fn call(rest: &RestClient, method: &str, path: &str) -> u16 {
    rest.request(method, path, None).await.unwrap().0
}

/// Waits until the sink connector has committed `offset` of its one partition.
async fn sink_reaches(rest: &RestClient, offset: i64) {
    await_get(rest, "/connectors/sink/offsets", |b| {
        b["offsets"][0]["offset"]["kafka_offset"] == offset
    })
    .await;
}

fn numbers(name: &str) -> Vec<i64> {
    collected()
        .lock()
        .unwrap()
        .get(name)
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r.record.value.as_i64())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_rest_api_drives_connectors_as_kafka_connects_does() {
    on_embedded_node(|client, dir| async move {
        let config = WorkerConfig {
            offset_file: Some(dir.join("connect.offsets")),
            offset_flush_interval: Duration::from_millis(100),
            key_converter: (
                "org.apache.kafka.connect.json.JsonConverter".into(),
                props(&[]),
            ),
            ..WorkerConfig::default()
        };
        let worker = Arc::new(Worker::new(client, config, plugins()).unwrap());
        let server = RestServer::start(worker.clone(), "127.0.0.1:0")
            .await
            .unwrap();
        let rest = RestClient::new(&format!("http://{}", server.local_addr())).unwrap();

        let (status, root) = rest.get("/").await.unwrap();
        assert_eq!(status, 200);
        assert!(
            root["version"].is_string() && root["kafka_cluster_id"].is_string(),
            "{root}"
        );
        let (_, plugins) = rest.get("/connector-plugins").await.unwrap();
        assert!(
            plugins.as_array().unwrap().contains(&json!({
                "class": "com.example.CountingSource", "type": "source", "version": env!("CARGO_PKG_VERSION")
            })),
            "{plugins}"
        );

        // A bad config names its problem and creates nothing.
        let (status, err) = rest
            .request(
                "POST",
                "/connectors",
                Some(&json!({"name": "count", "config": {"connector.class": "CountingSource", "topic": "numbers"}})),
            )
            .await
            .unwrap();
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error_code"], 400);
        assert!(err["message"].as_str().unwrap().contains("limit"), "{err}");
        assert_eq!(rest.get("/connectors").await.unwrap().1, json!([]));

        let count = json!({"connector.class": "CountingSource", "topic": "numbers", "limit": 300, "tasks.max": "1"});
        let (status, created) = rest
            .request(
                "POST",
                "/connectors",
                Some(&json!({"name": "count", "config": count})),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["name"], "count");
        assert_eq!(created["type"], "source");
        assert_eq!(created["config"]["limit"], "300");
        assert_eq!(created["config"]["name"], "count");
        assert_eq!(created["tasks"], json!([{"connector": "count", "task": 0}]));
        let (status, err) = rest
            .request(
                "POST",
                "/connectors",
                Some(&json!({"name": "count", "config": count})),
            )
            .await
            .unwrap();
        assert_eq!((status, &err["error_code"]), (409, &json!(409)), "{err}");

        // PUT .../config creates when the connector is new.
        let sink =
            json!({"connector.class": "CollectingSink", "topics": "numbers", "collector": "rest"});
        let (status, _) = rest
            .request("PUT", "/connectors/sink/config", Some(&sink))
            .await
            .unwrap();
        assert_eq!(status, 201);
        sink_reaches(&rest, 300).await;
        assert_eq!(numbers("rest"), (0..300).collect::<Vec<_>>());

        // KIP-558: the topics each connector has used; a reset forgets them until used again.
        for name in ["count", "sink"] {
            let (status, topics) = rest
                .get(&format!("/connectors/{name}/topics"))
                .await
                .unwrap();
            assert_eq!(status, 200);
            assert_eq!(topics, json!({name: {"topics": ["numbers"]}}));
        }
        assert_eq!(
            call(&rest, "PUT", "/connectors/sink/topics/reset").await,
            200
        );
        assert_eq!(
            rest.get("/connectors/sink/topics").await.unwrap().1,
            json!({"sink": {"topics": []}})
        );
        let (status, err) = rest.get("/connectors/nope/topics").await.unwrap();
        assert_eq!((status, &err["error_code"]), (404, &json!(404)), "{err}");

        let worker_id = server.local_addr().to_string();
        let (_, status) = rest.get("/connectors/count/status").await.unwrap();
        assert_eq!(
            status,
            json!({"name": "count", "connector": {"state": "RUNNING", "worker_id": worker_id},
                   "tasks": [{"id": 0, "state": "RUNNING", "worker_id": worker_id}], "type": "source"})
        );
        let (_, all) = rest
            .get("/connectors?expand=status&expand=info")
            .await
            .unwrap();
        assert_eq!(all["sink"]["status"]["type"], "sink");
        assert_eq!(all["count"]["info"]["config"]["topic"], "numbers");
        let (_, tasks) = rest.get("/connectors/count/tasks").await.unwrap();
        assert_eq!(tasks[0]["id"], json!({"connector": "count", "task": 0}));
        assert_eq!(tasks[0]["config"]["limit"], "300");
        let (_, task) = rest.get("/connectors/count/tasks/0/status").await.unwrap();
        assert_eq!(task["state"], "RUNNING");
        let (status, err) = rest.get("/connectors/count/tasks/5/status").await.unwrap();
        assert_eq!(
            (status, err["message"].as_str()),
            (404, Some("Task count-5 not found"))
        );

        // A paused sink takes nothing while the source goes on to 600.
        assert_eq!(call(&rest, "PUT", "/connectors/sink/pause").await, 202);
        await_get(&rest, "/connectors/sink/status", |b| {
            b["connector"]["state"] == "PAUSED" && b["tasks"][0]["state"] == "PAUSED"
        })
        .await;
        let mut more = count.clone();
        more["limit"] = json!("600");
        let (status, updated) = rest
            .request("PUT", "/connectors/count/config", Some(&more))
            .await
            .unwrap();
        assert_eq!((status, &updated["config"]["limit"]), (200, &json!("600")));
        await_get(&rest, "/connectors/count/offsets", |b| {
            b["offsets"] == json!([{"partition": {"counter": "main"}, "offset": {"next": 600}}])
        })
        .await;
        // The 300 new records are in the log. A running sink would have put them and shown
        // them at its next flush (every 100 ms here); the paused one keeps flushing (its
        // committed offsets) and shows none.
        let flushed = flushes("rest");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while flushes("rest") < flushed + 5 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the paused sink stopped flushing"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(numbers("rest").len(), 300, "a paused sink took records");
        assert_eq!(call(&rest, "PUT", "/connectors/sink/resume").await, 202);
        sink_reaches(&rest, 600).await;
        assert_eq!(numbers("rest"), (0..600).collect::<Vec<_>>());
        // Used again since its reset.
        assert_eq!(
            rest.get("/connectors/sink/topics").await.unwrap().1,
            json!({"sink": {"topics": ["numbers"]}})
        );

        // Offsets change only when the connector is stopped.
        let rewind =
            json!({"offsets": [{"partition": {"counter": "main"}, "offset": {"next": 550}}]});
        let (status, err) = rest
            .request("PATCH", "/connectors/count/offsets", Some(&rewind))
            .await
            .unwrap();
        assert_eq!(status, 400);
        assert!(
            err["message"].as_str().unwrap().contains("STOPPED"),
            "{err}"
        );
        assert_eq!(call(&rest, "PUT", "/connectors/count/stop").await, 204);
        let (_, stopped) = rest.get("/connectors/count/status").await.unwrap();
        assert_eq!(stopped["connector"]["state"], "STOPPED");
        assert_eq!(stopped["tasks"], json!([]));
        let (status, answer) = rest
            .request("PATCH", "/connectors/count/offsets", Some(&rewind))
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["message"],
            "The offsets for this connector have been altered successfully"
        );
        // Resumed from 550: those 50 numbers come again, as they would in Kafka Connect.
        assert_eq!(call(&rest, "PUT", "/connectors/count/resume").await, 202);
        sink_reaches(&rest, 650).await;
        let seen = numbers("rest");
        assert_eq!(seen[600..], (550..600).collect::<Vec<_>>()[..]);

        // Restarts: the connector alone (204), with its tasks (202 and the status), one task.
        let (status, body) = rest
            .request("POST", "/connectors/count/restart", None)
            .await
            .unwrap();
        assert_eq!((status, body), (204, Json::Null));
        let (status, body) = rest
            .request(
                "POST",
                "/connectors/count/restart?includeTasks=true&onlyFailed=false",
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, 202);
        assert_eq!(body["tasks"][0]["state"], "RUNNING", "{body}");
        assert_eq!(
            call(&rest, "POST", "/connectors/count/tasks/0/restart").await,
            204
        );
        assert_eq!(
            call(&rest, "POST", "/connectors/count/tasks/9/restart").await,
            404
        );
        assert_eq!(
            call(
                &rest,
                "POST",
                "/connectors/count/restart?includeTasks=maybe"
            )
            .await,
            400
        );
        // Restarted tasks resume from the committed offset: nothing more is sent.
        assert_eq!(numbers("rest").len(), 650);

        // Validation: every setting with its errors, nothing created.
        let (status, infos) = rest
            .request(
                "PUT",
                "/connector-plugins/CountingSource/config/validate",
                Some(&json!({"connector.class": "CountingSource", "name": "v", "topic": "t", "tasks.max": "x"})),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{infos}");
        assert_eq!(infos["name"], "com.example.CountingSource");
        assert_eq!(infos["error_count"], 2, "{infos}");
        let errors_of = |name: &str| {
            infos["configs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["value"]["name"] == name)
                .map(|c| c["value"]["errors"].clone())
        };
        assert_eq!(errors_of("topic"), Some(json!([])));
        assert_eq!(errors_of("limit").unwrap().as_array().unwrap().len(), 1);
        assert_eq!(errors_of("tasks.max").unwrap().as_array().unwrap().len(), 1);
        let (status, _) = rest
            .request(
                "PUT",
                "/connector-plugins/CountingSource/config/validate",
                Some(&json!({"connector.class": "CollectingSink"})),
            )
            .await
            .unwrap();
        assert_eq!(status, 400);
        let (status, _) = rest
            .request(
                "PUT",
                "/connector-plugins/Nope/config/validate",
                Some(&json!({})),
            )
            .await
            .unwrap();
        assert_eq!(status, 404);
        let (_, infos) = rest
            .request(
                "PUT",
                "/connector-plugins/CollectingSink/config/validate",
                Some(&json!({"name": "v", "topics": "t", "collector": "c",
                    "consumer.override.session.timeout.ms": "soon"})),
            )
            .await
            .unwrap();
        assert_eq!(infos["error_count"], 1, "{infos}");
        assert!(
            infos["configs"].as_array().unwrap().iter().any(|c| {
                c["value"]["name"] == "consumer.override.*"
                    && c["value"]["errors"][0]
                        .as_str()
                        .unwrap_or("")
                        .contains("session.timeout.ms")
            }),
            "{infos}"
        );
        let (_, definitions) = rest
            .get("/connector-plugins/CountingSource/config")
            .await
            .unwrap();
        assert!(definitions
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "limit" && d["type"] == "LONG"));

        // Malformed requests.
        let (status, err) = rest
            .request("POST", "/connectors", Some(&json!("not an object")))
            .await
            .unwrap();
        assert_eq!(status, 400, "{err}");
        let (status, err) = rest.get("/no/such/path").await.unwrap();
        assert_eq!((status, err["error_code"].clone()), (404, json!(404)));
        let (status, err) = rest
            .request("DELETE", "/connectors/nope", None)
            .await
            .unwrap();
        assert_eq!(
            (status, err["message"].as_str()),
            (404, Some("Connector nope not found"))
        );
        assert_eq!(call(&rest, "PATCH", "/connectors").await, 405);

        // A stopped sink's committed offsets can be reset.
        rest.request("PUT", "/connectors/sink/stop", None)
            .await
            .unwrap();
        assert_eq!(call(&rest, "DELETE", "/connectors/sink/offsets").await, 200);
        assert_eq!(
            rest.get("/connectors/sink/offsets").await.unwrap().1,
            json!({"offsets": []})
        );

        assert_eq!(call(&rest, "DELETE", "/connectors/count").await, 204);
        assert_eq!(rest.get("/connectors/count").await.unwrap().0, 404);
        assert_eq!(rest.get("/connectors").await.unwrap().1, json!(["sink"]));
        server.shutdown().await;
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn bodies_that_are_not_json_get_a_400_naming_the_place() {
    on_embedded_node(|client, _dir| async move {
        let worker = Arc::new(Worker::new(client, WorkerConfig::default(), plugins()).unwrap());
        let server = RestServer::start(worker.clone(), "127.0.0.1:0")
            .await
            .unwrap();
        // A raw request, as a hand-typed curl sends it.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        let body = "{\"name\": \"x\",\n \"config\": {oops}}";
        let request = format!(
            "POST /connectors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("line 2 column"), "{answer}");
        assert!(answer.contains("\"error_code\":400"), "{answer}");
        assert!(RestClient::new("https://localhost:8083").is_err());
        assert!(RestClient::new("localhost").is_err());
        server.shutdown().await;
        worker.shutdown().await.unwrap();
    });
}

#[test]
fn topic_tracking_settings_turn_the_topics_endpoints_off_with_a_403() {
    on_embedded_node(|client, _dir| async move {
        let answer = |config: WorkerConfig| {
            let client = client.clone();
            async move {
                let worker = Arc::new(Worker::new(client, config, plugins()).unwrap());
                let server = RestServer::start(worker.clone(), "127.0.0.1:0")
                    .await
                    .unwrap();
                let rest = RestClient::new(&format!("http://{}", server.local_addr())).unwrap();
                let sink = json!({"connector.class": "CollectingSink", "topics": "quiet",
                                  "collector": "quiet"});
                let (status, _) = rest
                    .request("PUT", "/connectors/quiet/config", Some(&sink))
                    .await
                    .unwrap();
                assert_eq!(status, 201);
                let got = rest.get("/connectors/quiet/topics").await.unwrap();
                let reset = rest
                    .request("PUT", "/connectors/quiet/topics/reset", None)
                    .await
                    .unwrap();
                server.shutdown().await;
                worker.shutdown().await.unwrap();
                (got, reset)
            }
        };
        let off = WorkerConfig::from_props(&props(&[("topic.tracking.enable", "false")])).unwrap();
        let ((status, body), (reset_status, _)) = answer(off).await;
        assert_eq!((status, reset_status), (403, 403));
        assert_eq!(
            body,
            json!({"error_code": 403, "message": "Topic tracking is disabled."})
        );
        let no_reset =
            WorkerConfig::from_props(&props(&[("topic.tracking.allow.reset", "FALSE")])).unwrap();
        let ((status, _), (reset_status, body)) = answer(no_reset).await;
        assert_eq!((status, reset_status), (200, 403));
        assert_eq!(body["message"], "Topic tracking reset is disabled.");
        let err = WorkerConfig::from_props(&props(&[("topic.tracking.enable", "yes")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("topic.tracking.enable"), "{err}");
    });
}
