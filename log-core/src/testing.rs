//! Support for integration tests that run against any Kafka broker, not only an in-process
//! node (the workspace's own tests use it; small enough to need no feature flag).
//!
//! With `SLUICE_TEST_BOOTSTRAP=host:port` set (`compat/kafka/run-layers.sh` sets it to an
//! Apache Kafka broker it started), a test fixture uses that broker instead of starting a node:
//! it first empties it with [`reset_external_broker`], so that each test starts, as on a fresh
//! node, with no topics and no groups. Such tests run one at a time (`--test-threads=1`).

use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use crate::client::{Client, ClientOptions};
use crate::error::{Error, Result};

/// Environment variable naming the external broker tests run against.
pub const BOOTSTRAP_ENV: &str = "SLUICE_TEST_BOOTSTRAP";

/// The external broker to test against, if `SLUICE_TEST_BOOTSTRAP` names one.
pub fn external_bootstrap() -> Option<String> {
    std::env::var(BOOTSTRAP_ENV)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Deletes every topic of the broker at `bootstrap` except the internal ones (`__*`) and
/// every consumer group, and waits (up to 30 s) until its metadata shows no topic left.
pub async fn reset_external_broker(bootstrap: &str) -> Result<()> {
    let client = Client::connect(bootstrap, ClientOptions::default()).await?;
    let groups: Vec<String> = client
        .list_groups()
        .await?
        .into_iter()
        .map(|(group, _, _)| group)
        .collect();
    if !groups.is_empty() {
        for (group, result) in client.delete_groups(&groups).await? {
            match result {
                Ok(()) => {}
                // Members left by a test that failed keep their group until their sessions
                // time out; later tests use other group ids.
                Err(Error::Broker {
                    code: ResponseError::NonEmptyGroup,
                    ..
                }) => eprintln!("group {group} still has members; left as it is"),
                Err(err) => {
                    return Err(Error::InvalidArgument(format!(
                        "delete group {group}: {err}"
                    )))
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let topics = user_topics(&client).await?;
        if topics.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what: format!("deleting topics {topics:?} of the external broker"),
                after_ms: 30_000,
            });
        }
        client.delete_topics(&topics).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn user_topics(client: &Client) -> Result<Vec<String>> {
    let metadata = client.metadata(None, false).await?;
    Ok(metadata
        .topics
        .iter()
        .filter_map(|topic| topic.name.as_ref().map(|n| n.0.to_string()))
        .filter(|name| !name.starts_with("__"))
        .collect())
}
