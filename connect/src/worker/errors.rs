//! What a task does with a record that fails conversion or a transform (Kafka's KIP-298):
//! `errors.tolerance=none` (the default) fails the task; `all` skips the record, logging it
//! with `errors.log.enable` and, for sinks, writing the original record to the dead letter
//! queue `errors.deadletterqueue.topic.name` — with the error's context in `__connect.errors.*`
//! headers when `errors.deadletterqueue.context.headers.enable=true`.
//!
//! A conversion or transform that fails with [`ConnectError::Retriable`] (Kafka's
//! `RetriableException`) is tried again, with a delay doubling from 300 ms up to
//! `errors.retry.delay.max.ms` (60 s), for `errors.retry.timeout` (0: never, the default; -1:
//! forever); other failures, and retriable ones past the timeout, go to the tolerance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::{Client, NewTopic};

use crate::connector::Props;
use crate::error::{ConnectError, Result};

/// The stage a record failed in (Kafka's `Stage`, as the context headers name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The key converter.
    KeyConverter,
    /// The value converter.
    ValueConverter,
    /// A transform.
    Transformation,
    /// The task's `put`, through its errant record reporter.
    TaskPut,
}

impl Stage {
    /// Kafka's name: `KEY_CONVERTER`, `VALUE_CONVERTER`, `TRANSFORMATION`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::TaskPut => "TASK_PUT",
        }
    }
}

/// A connector's `errors.*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorPolicy {
    /// `errors.tolerance=all`: skip failing records instead of failing the task.
    pub tolerate_all: bool,
    /// `errors.log.enable`.
    pub log: bool,
    /// `errors.log.include.messages`: the record's position in the log line.
    pub log_messages: bool,
    /// `errors.deadletterqueue.topic.name` (sinks).
    pub dead_letter_topic: Option<String>,
    /// `errors.deadletterqueue.topic.replication.factor` (Kafka's default: 3).
    pub dead_letter_replication: i16,
    /// `errors.deadletterqueue.context.headers.enable`.
    pub context_headers: bool,
    /// `errors.retry.timeout`: how long a retriable failure is retried (none: forever).
    pub retry_timeout: Option<Duration>,
    /// `errors.retry.delay.max.ms`: the longest wait between two tries.
    pub retry_delay_max: Duration,
}

impl Default for ErrorPolicy {
    /// Kafka's defaults: fail on the first error, no retries, no dead letter queue.
    fn default() -> ErrorPolicy {
        ErrorPolicy {
            tolerate_all: false,
            log: false,
            log_messages: false,
            dead_letter_topic: None,
            dead_letter_replication: 3,
            context_headers: false,
            retry_timeout: Some(Duration::ZERO),
            retry_delay_max: Duration::from_secs(60),
        }
    }
}

/// The first wait before a retry (Kafka's `RetryWithToleranceOperator`).
const RETRY_DELAY_START: Duration = Duration::from_millis(300);

/// What a stage returns: its value, or the stage it failed in and why.
pub(crate) type StageResult<T> = std::result::Result<T, (Stage, ConnectError)>;

impl ErrorPolicy {
    /// Reads the `errors.*` properties of a connector config.
    pub fn from_props(props: &Props) -> Result<ErrorPolicy> {
        let flag = |key: &str| -> Result<bool> {
            match props.get(key) {
                None => Ok(false),
                Some(v) => crate::converter::parse_bool_config(v)
                    .ok_or_else(|| ConnectError::config(key, v, "expected true or false")),
            }
        };
        let tolerate_all = match props.get("errors.tolerance").map(|v| v.trim()) {
            None | Some("none") => false,
            Some("all") => true,
            Some(other) => {
                return Err(ConnectError::config(
                    "errors.tolerance",
                    other,
                    "expected none or all",
                ))
            }
        };
        let millis = |key: &str, default: i64| -> Result<i64> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|ms| *ms >= -1)
                    .ok_or_else(|| {
                        ConnectError::config(key, v, "expected milliseconds (-1: forever)")
                    }),
            }
        };
        let retry_timeout = match millis("errors.retry.timeout", 0)? {
            -1 => None,
            ms => Some(Duration::from_millis(ms as u64)),
        };
        let retry_delay_max = match millis("errors.retry.delay.max.ms", 60_000)? {
            -1 => Duration::MAX,
            ms => Duration::from_millis(ms as u64),
        };
        let dead_letter_topic = props
            .get("errors.deadletterqueue.topic.name")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let dead_letter_replication =
            match props.get("errors.deadletterqueue.topic.replication.factor") {
                None => 3,
                Some(v) => v
                    .trim()
                    .parse::<i16>()
                    .ok()
                    .filter(|rf| *rf >= 1 || *rf == -1)
                    .ok_or_else(|| {
                        ConnectError::config(
                            "errors.deadletterqueue.topic.replication.factor",
                            v,
                            "expected a replication factor (-1: the broker's default)",
                        )
                    })?,
            };
        Ok(ErrorPolicy {
            tolerate_all,
            log: flag("errors.log.enable")?,
            log_messages: flag("errors.log.include.messages")?,
            dead_letter_topic,
            dead_letter_replication,
            context_headers: flag("errors.deadletterqueue.context.headers.enable")?,
            retry_timeout,
            retry_delay_max,
        })
    }

    /// Whether retriable failures are retried at all.
    pub fn retries(&self) -> bool {
        self.retry_timeout != Some(Duration::ZERO)
    }

    /// Runs `op` until it succeeds, fails with a failure that is not retriable, or the retry
    /// timeout has passed.
    pub(crate) async fn retry<T>(&self, mut op: impl FnMut() -> StageResult<T>) -> StageResult<T> {
        let started = Instant::now();
        let mut delay = RETRY_DELAY_START;
        loop {
            match op() {
                Err((stage, ConnectError::Retriable(reason))) => {
                    let left = self
                        .retry_timeout
                        .map(|timeout| timeout.saturating_sub(started.elapsed()));
                    if left == Some(Duration::ZERO) {
                        return Err((stage, ConnectError::Retriable(reason)));
                    }
                    let wait = delay
                        .min(self.retry_delay_max)
                        .min(left.unwrap_or(Duration::MAX));
                    tracing::debug!(stage = stage.name(), %reason, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                    delay = delay.saturating_mul(2);
                }
                other => return other,
            }
        }
    }
}

/// Where a failed record came from, for logs and the dead letter queue.
pub(crate) struct FailedRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
}

/// Applies a task's error policy: decides whether a failure stops the task, logs it, and
/// sends sink records to the dead letter queue.
pub(crate) struct ErrorReporter {
    policy: ErrorPolicy,
    connector: String,
    task: usize,
    dead_letters: Option<(Arc<str>, Producer)>,
}

impl ErrorReporter {
    /// A reporter for task `task` of `connector`; a sink's dead letter queue gets its topic
    /// created (when missing) and a producer of its own (sources have none, as in Kafka).
    pub(crate) async fn new(
        client: &Arc<Client>,
        policy: ErrorPolicy,
        connector: &str,
        task: usize,
        sink: bool,
    ) -> Result<ErrorReporter> {
        let dead_letters = match &policy.dead_letter_topic {
            Some(topic) if policy.tolerate_all && sink => {
                let created = client
                    .create_topics(
                        &[NewTopic {
                            name: topic.clone(),
                            partitions: 1,
                            replication_factor: policy.dead_letter_replication,
                            configs: Default::default(),
                        }],
                        false,
                    )
                    .await?;
                for (name, outcome) in created {
                    match outcome {
                        Ok(()) => {
                            tracing::info!(%connector, topic = %name, "created the dead letter queue")
                        }
                        Err(sluice_log::Error::Broker {
                            code: kafka_protocol::ResponseError::TopicAlreadyExists,
                            ..
                        }) => {}
                        Err(err) => return Err(ConnectError::Client(err)),
                    }
                }
                let producer = Producer::new(
                    client.sibling().await?,
                    ProducerConfig {
                        acks: -1,
                        ..ProducerConfig::default()
                    },
                );
                Some((Arc::from(topic.as_str()), producer))
            }
            _ => None,
        };
        Ok(ErrorReporter {
            policy,
            connector: connector.to_string(),
            task,
            dead_letters,
        })
    }

    /// Handles a record that failed in `stage`: the error itself when the task must stop,
    /// else `Ok` after logging and reporting it.
    pub(crate) async fn failed(
        &self,
        stage: Stage,
        error: ConnectError,
        record: FailedRecord<'_>,
    ) -> Result<()> {
        let error = ConnectError::Data(format!("{} failed: {error}", stage.name()));
        if !self.policy.tolerate_all {
            return Err(ConnectError::Task(format!(
                "Tolerance exceeded in error handler: {error}"
            )));
        }
        if self.policy.log {
            if self.policy.log_messages {
                tracing::error!(connector = %self.connector, task = self.task, topic = record.topic, partition = record.partition, offset = record.offset, %error, "a record failed and is skipped");
            } else {
                tracing::error!(connector = %self.connector, task = self.task, %error, "a record failed and is skipped");
            }
        }
        if let Some((topic, producer)) = &self.dead_letters {
            let mut headers = record.headers;
            if self.policy.context_headers {
                let mut context = |key: &str, value: String| {
                    headers.push((format!("__connect.errors.{key}"), Some(Bytes::from(value))))
                };
                context("topic", record.topic.to_string());
                context("partition", record.partition.to_string());
                context("offset", record.offset.to_string());
                context("connector.name", self.connector.clone());
                context("task.id", self.task.to_string());
                context("stage", stage.name().to_string());
                context(
                    "exception.class.name",
                    "org.apache.kafka.connect.errors.DataException".into(),
                );
                context("exception.message", error.to_string());
            }
            let delivery = producer
                .send(ProducerRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: record.key,
                    value: record.value,
                    headers,
                    timestamp: None,
                })
                .await?;
            // Written before the record's offset can be committed.
            producer.flush().await;
            delivery.await?;
        }
        Ok(())
    }

    /// Flushes and closes the dead letter queue's producer.
    pub(crate) async fn close(self) {
        if let Some((_, producer)) = self.dead_letters {
            producer.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::test_props as props;

    #[tokio::test]
    async fn retriable_failures_are_retried_until_the_retry_timeout() {
        let policy = |pairs: &[(&str, &str)]| {
            ErrorPolicy::from_props(&crate::connector::test_props(pairs)).unwrap()
        };
        let off = policy(&[]);
        assert!(!off.retries(), "Kafka's default errors.retry.timeout is 0");
        let forever = policy(&[("errors.retry.timeout", "-1")]);
        assert_eq!(forever.retry_timeout, None);

        let quick = policy(&[
            ("errors.retry.timeout", "10000"),
            ("errors.retry.delay.max.ms", "5"),
        ]);
        let mut calls = 0;
        let outcome = quick
            .retry(|| {
                calls += 1;
                if calls < 3 {
                    Err((
                        Stage::ValueConverter,
                        ConnectError::Retriable("busy".into()),
                    ))
                } else {
                    Ok(calls)
                }
            })
            .await;
        assert_eq!(outcome.unwrap(), 3);

        // Not retriable: tried once.
        let mut calls = 0;
        let outcome: StageResult<()> = quick
            .retry(|| {
                calls += 1;
                Err((Stage::Transformation, ConnectError::Data("bad".into())))
            })
            .await;
        assert!(matches!(
            outcome,
            Err((Stage::Transformation, ConnectError::Data(_)))
        ));
        assert_eq!(calls, 1);

        // Past the timeout, the retriable failure itself comes back.
        let short = policy(&[
            ("errors.retry.timeout", "50"),
            ("errors.retry.delay.max.ms", "10"),
        ]);
        let started = Instant::now();
        let outcome: StageResult<()> = short
            .retry(|| Err((Stage::KeyConverter, ConnectError::Retriable("down".into()))))
            .await;
        assert!(matches!(
            outcome,
            Err((Stage::KeyConverter, ConnectError::Retriable(_)))
        ));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn error_policies_read_kafkas_settings() {
        assert_eq!(
            ErrorPolicy::from_props(&props(&[])).unwrap(),
            ErrorPolicy {
                dead_letter_replication: 3,
                ..ErrorPolicy::default()
            }
        );
        let policy = ErrorPolicy::from_props(&props(&[
            ("errors.tolerance", "all"),
            ("errors.log.enable", "true"),
            ("errors.deadletterqueue.topic.name", "dlq"),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("errors.retry.timeout", "-1"),
        ]))
        .unwrap();
        assert!(policy.tolerate_all && policy.log && policy.context_headers);
        assert_eq!(policy.dead_letter_topic.as_deref(), Some("dlq"));
        assert_eq!(policy.dead_letter_replication, 1);
        for (key, value) in [
            ("errors.tolerance", "some"),
            ("errors.log.enable", "yes"),
            ("errors.retry.timeout", "soon"),
            ("errors.deadletterqueue.topic.replication.factor", "0"),
        ] {
            let err = ErrorPolicy::from_props(&props(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
