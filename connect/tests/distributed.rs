//! Distributed workers: two workers of one group on an embedded node share connectors, any
//! worker's REST API sees the whole group's configs and statuses, and when a worker dies
//! (its process gone, no goodbye) its connectors restart on the other, resuming from the
//! offsets it committed.

mod common;

use std::time::Duration;

use serde_json::{json, Value as Json};
use sluice_connect::rest::RestClient;

use common::*;

/// The numbers `collector` was handed, sorted, repeats kept: while no worker dies, each must
/// arrive exactly once.
fn numbers(collector: &str) -> Vec<i64> {
    let mut seen: Vec<i64> = collected()
        .lock()
        .unwrap()
        .get(collector)
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r.record.value.as_i64())
                .collect()
        })
        .unwrap_or_default();
    seen.sort_unstable();
    seen
}

/// The numbers `collector` was handed, sorted and without repeats: a worker that is killed
/// may have sent records whose offsets it had not committed yet, which its successor rightly
/// sends again (at least once).
fn distinct_numbers(collector: &str) -> Vec<i64> {
    let mut seen = numbers(collector);
    seen.dedup();
    seen
}

#[test]
fn two_workers_share_connectors_and_the_survivor_takes_over_a_dead_ones() {
    let dir = tempfile::tempdir().unwrap();
    let node = sluice_log::Sluice::embedded(dir.path().join("node"))
        .config("group.initial.rebalance.delay.ms", "0")
        .start()
        .unwrap();
    let a = WorkerProcess::start(&node);
    let b = WorkerProcess::start(&node);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a_url, b_url) = (a.url(), b.url());
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    // Which worker runs the source (to kill it), found out below.
    let source_owner = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let rest_a = RestClient::new(&a_url).unwrap();
            let rest_b = RestClient::new(&b_url).unwrap();
            let (status, created) = rest_a
                .request(
                    "POST",
                    "/connectors",
                    Some(&json!({"name": "count", "config": {
                        "connector.class": "CountingSource", "topic": "numbers", "limit": "200"}})),
                )
                .await
                .unwrap();
            assert_eq!(status, 201, "{created}");
            let (status, _) = rest_b
                .request(
                    "PUT",
                    "/connectors/collect/config",
                    Some(&json!({"connector.class": "CollectingSink", "topics": "numbers", "collector": "dist", "tasks.max": "2",
                        // A dead worker's sink task leaves the sink's group within 6 s.
                        "consumer.override.session.timeout.ms": "6000",
                        "consumer.override.heartbeat.interval.ms": "100"})),
                )
                .await
                .unwrap();
            assert_eq!(status, 201);
            // Either worker sees both, with the group's statuses.
            assert_eq!(rest_b.get("/connectors").await.unwrap().1, json!(["collect", "count"]));
            let (status, err) = rest_b
                .request("POST", "/connectors", Some(&json!({"name": "count", "config": {
                    "connector.class": "CountingSource", "topic": "numbers", "limit": "1"}})))
                .await
                .unwrap();
            assert_eq!(status, 409, "{err}");
            let running = |b: &Json| {
                b["connector"]["state"] == "RUNNING" && b["tasks"][0]["state"] == "RUNNING"
            };
            // Once both workers are in the group, each runs one connector (the first
            // generations may have had one worker only).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let owners = loop {
                let count = await_get(&rest_b, "/connectors/count/status", running).await;
                let collect = await_get(&rest_a, "/connectors/collect/status", running).await;
                let owners = [
                    count["connector"]["worker_id"].as_str().unwrap().to_string(),
                    collect["connector"]["worker_id"].as_str().unwrap().to_string(),
                ];
                if owners[0] != owners[1] {
                    break owners;
                }
                assert!(tokio::time::Instant::now() < deadline, "one worker runs both: {owners:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(owners.contains(&a_id) && owners.contains(&b_id), "{owners:?}");
            // A connector's tasks are spread over the group too.
            let spread = await_get(&rest_a, "/connectors/collect/status", |b| {
                b["tasks"].as_array().is_some_and(|t| {
                    t.len() == 2
                        && t.iter().all(|t| t["state"] == "RUNNING")
                        && t[0]["worker_id"] != t[1]["worker_id"]
                })
            })
            .await;
            let (_, task) = rest_b.get("/connectors/collect/tasks/1/status").await.unwrap();
            assert_eq!(task["worker_id"], spread["tasks"][1]["worker_id"]);
            // Each worker knows every connector's topics (KIP-558), through the status topic;
            // a reset on one worker empties them on both.
            for rest in [&rest_a, &rest_b] {
                for name in ["count", "collect"] {
                    await_get(rest, &format!("/connectors/{name}/topics"), |b| {
                        b[name]["topics"] == json!(["numbers"])
                    })
                    .await;
                }
            }
            let (status, _) = rest_a
                .request("PUT", "/connectors/count/topics/reset", None)
                .await
                .unwrap();
            assert_eq!(status, 200);
            await_get(&rest_b, "/connectors/count/topics", |b| {
                b["count"]["topics"] == json!([])
            })
            .await;
            // With the group formed, two creates of one name at once, one on each worker: the
            // leader decides, once (the other worker forwards its request).
            let twin = json!({"name": "twin", "config": {
                "connector.class": "CountingSource", "topic": "twins", "limit": "1"}});
            let (first, second) = tokio::join!(
                rest_a.request("POST", "/connectors", Some(&twin)),
                rest_b.request("POST", "/connectors", Some(&twin))
            );
            let (first, second) = (first.unwrap().0, second.unwrap().0);
            let mut codes = [first, second];
            codes.sort_unstable();
            assert_eq!(codes, [201, 409]);
            assert_eq!(rest_a.request("DELETE", "/connectors/twin", None).await.unwrap().0, 204);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            // Before any worker dies, every number arrives exactly once (a repeat stays and
            // fails the comparison).
            while numbers("dist").len() < 200 {
                assert!(tokio::time::Instant::now() < deadline, "the sink has {:?}", numbers("dist").len());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(numbers("dist"), (0..200).collect::<Vec<_>>());
            // Task configs and offsets are shared too.
            let (_, tasks) = rest_a.get("/connectors/count/tasks").await.unwrap();
            assert_eq!(tasks[0]["config"]["limit"], "200", "{tasks}");
            await_get(&rest_a, "/connectors/count/offsets", |b| {
                b["offsets"][0]["offset"]["next"] == 200
            })
            .await;
            owners[0].clone()
        })
        .await
        .expect("the first part finishes within 60 s")
    });

    let (dead, survivor) = if source_owner == a_id { (a, b) } else { (b, a) };
    let survivor_url = survivor.url();
    let survivor_id = survivor.id.clone();
    dead.kill();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let rest = RestClient::new(&survivor_url).unwrap();
            // After the dead worker's session times out, the survivor runs the source.
            await_get(&rest, "/connectors/count/status", |b| {
                b["connector"]["worker_id"] == survivor_id.as_str()
                    && b["connector"]["state"] == "RUNNING"
                    && b["tasks"][0]["state"] == "RUNNING"
            })
            .await;
            // It resumes from the dead worker's committed offset: more numbers, none lost.
            let (status, _) = rest
                .request(
                    "PUT",
                    "/connectors/count/config",
                    Some(&json!({"connector.class": "CountingSource", "topic": "numbers", "limit": "400"})),
                )
                .await
                .unwrap();
            assert_eq!(status, 200);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while distinct_numbers("dist") != (0..400).collect::<Vec<_>>() {
                assert!(tokio::time::Instant::now() < deadline, "the sink has {} numbers", distinct_numbers("dist").len());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Pause, resume, restart, stop and offsets work across the group too.
            let (status, _) = rest.request("PUT", "/connectors/collect/pause", None).await.unwrap();
            assert_eq!(status, 202);
            await_get(&rest, "/connectors/collect/status", |b| {
                b["connector"]["state"] == "PAUSED" && b["tasks"][0]["state"] == "PAUSED"
            })
            .await;
            rest.request("PUT", "/connectors/collect/resume", None).await.unwrap();
            await_get(&rest, "/connectors/collect/status", |b| {
                b["connector"]["state"] == "RUNNING" && b["tasks"][0]["state"] == "RUNNING"
            })
            .await;
            let (status, restarting) = rest
                .request("POST", "/connectors/collect/restart?includeTasks=true", None)
                .await
                .unwrap();
            assert_eq!(status, 202, "{restarting}");
            let (status, _) = rest
                .request("POST", "/connectors/collect/tasks/0/restart", None)
                .await
                .unwrap();
            assert_eq!(status, 204);
            let (status, _) = rest
                .request("POST", "/connectors/collect/tasks/7/restart", None)
                .await
                .unwrap();
            assert_eq!(status, 404);
            await_get(&rest, "/connectors/collect/status", |b| b["tasks"][0]["state"] == "RUNNING").await;
            // Offsets cannot change while the connector runs.
            let (status, _) = rest.request("DELETE", "/connectors/count/offsets", None).await.unwrap();
            assert_eq!(status, 400);
            rest.request("PUT", "/connectors/count/stop", None).await.unwrap();
            await_get(&rest, "/connectors/count/status", |b| b["connector"]["state"] == "STOPPED").await;
            let (status, _) = rest.request("DELETE", "/connectors/count/offsets", None).await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(rest.get("/connectors/count/offsets").await.unwrap().1, json!({"offsets": []}));
            let (status, _) = rest.request("DELETE", "/connectors/count", None).await.unwrap();
            assert_eq!(status, 204);
            assert_eq!(rest.get("/connectors").await.unwrap().1, json!(["collect"]));
        })
        .await
        .expect("the take-over finishes within 60 s")
    });
    survivor.shutdown();
    node.shutdown().unwrap();
}
