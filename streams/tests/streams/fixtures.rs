//! Fixtures the node tests share: an embedded node with a client, an application started on
//! it, topics, and bounded waits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_log::client::{Client, ClientOptions, NewTopic};
use sluice_streams::{KafkaStreams, StreamsConfig, Topology};

/// Runs `scenario` with a client of a fresh embedded node, on a two-thread runtime, bounded by
/// 60 s; the node shuts down afterwards. With `SLUICE_TEST_BOOTSTRAP` set, the scenario runs
/// against that broker instead (Apache Kafka, from `compat/kafka/run-layers.sh`), emptied first.
pub fn on_embedded_node<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<Client>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(bootstrap) = sluice_log::testing::external_bootstrap() {
        runtime
            .block_on(async {
                sluice_log::testing::reset_external_broker(&bootstrap)
                    .await
                    .unwrap();
                let client = Client::connect(&bootstrap, ClientOptions::default())
                    .await
                    .unwrap();
                tokio::time::timeout(Duration::from_secs(60), scenario(client)).await
            })
            .expect("the scenario finishes within 60 s");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = sluice_log::Sluice::embedded(dir.path())
        .config("group.initial.rebalance.delay.ms", "0")
        .start()
        .unwrap();
    runtime
        .block_on(async {
            let client = node.client().await.unwrap();
            tokio::time::timeout(Duration::from_secs(60), scenario(client)).await
        })
        .expect("the scenario finishes within 60 s");
    node.shutdown().unwrap();
}

/// Starts application `application_id` of `topology` with quick commits and heartbeats (what
/// every scenario here wants) plus `extra` properties.
pub async fn start_app(
    client: &Arc<Client>,
    topology: Arc<Topology>,
    application_id: &str,
    extra: &[(&str, &str)],
) -> KafkaStreams {
    let mut props = vec![
        ("application.id", application_id),
        ("commit.interval.ms", "100"),
        ("consumer.heartbeat.interval.ms", "100"),
    ];
    props.extend_from_slice(extra);
    KafkaStreams::start(
        topology,
        StreamsConfig::from_props(props).unwrap(),
        client.clone(),
    )
    .await
    .unwrap()
}

/// Record caches off: every update goes out at once (for tests that count them).
pub const NO_CACHE: &[(&str, &str)] = &[("statestore.cache.max.bytes", "0")];

/// Waits (up to 10 s) until `condition` holds.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn create(client: &Arc<Client>, name: &str, partitions: i32) {
    let topic = NewTopic {
        name: name.into(),
        partitions,
        replication_factor: 1,
        configs: BTreeMap::new(),
    };
    let created = client.create_topics(&[topic], false).await.unwrap();
    assert!(created[0].1.is_ok(), "{:?}", created[0].1);
}
