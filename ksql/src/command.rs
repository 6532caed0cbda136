//! The command topic: every DDL statement the server accepts, in order, as ksqlDB keeps them
//! (`_confluent-ksql-<ksql.service.id>_command_topic`, one partition, kept forever).
//!
//! A statement is checked, then written; a runner task reads the topic from its start and
//! applies each command to the metastore, so a restarted server rebuilds what it knew and
//! servers sharing a service id agree. The server that took a statement waits for the runner
//! to apply it and answers with what that did; `commandSequenceNumber` is its offset.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{json, Value as Json};
use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
use sluice_log::client::{Client, NewTopic};
use sluice_log::TopicPartition;
use tokio::sync::watch;

use crate::error::{KsqlError, Result};
use crate::metastore::{name_of, MetaStore};
use crate::parser::ast::{SourceKind, Statement};
use crate::parser::parse_one;
use crate::queries::{
    prepare_create_as_select, prepare_insert_select, PreparedQuery, QueryManager,
};

/// The command topic of `service_id` (ksqlDB's name).
pub fn command_topic(service_id: &str) -> String {
    format!("_confluent-ksql-{service_id}_command_topic")
}

/// How long a statement waits for the runner to apply it (ksqlDB's
/// `ksql.server.command.response.timeout.ms`).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What applying a command did: its message, or why it failed.
pub type Applied = std::result::Result<String, String>;

/// The metastore as the command topic makes it, and what each command did.
#[derive(Default)]
pub struct Commands {
    /// The metastore after every command read so far.
    pub metastore: MetaStore,
    /// What recent commands did, by offset (the last thousand).
    outcomes: BTreeMap<i64, Applied>,
    /// What the last command of each command id did (ksqlDB's `/status`).
    statuses: BTreeMap<String, Applied>,
}

impl Commands {
    /// The outcome of the last command of each command id (`stream/`S`/create`, ...).
    pub fn statuses(&self) -> &BTreeMap<String, Applied> {
        &self.statuses
    }
}

/// The service's commands: written to its command topic and applied by the runner reading
/// it (an interactive server), or applied in place (a headless server's, kept nowhere but
/// in its queries file, as ksqlDB's headless mode keeps them).
pub struct CommandLog {
    state: Arc<Mutex<Commands>>,
    backing: Backing,
}

enum Backing {
    Topic {
        topic: Arc<str>,
        producer: Producer,
        /// The next offset the runner will read (everything before it is applied).
        applied: watch::Receiver<i64>,
        runner: tokio::task::JoinHandle<()>,
    },
    /// Each command applied as it comes, numbered in order from 0 (so that every headless
    /// server running one file names its queries alike and they share their work).
    Local {
        next: tokio::sync::Mutex<i64>,
        queries: Arc<QueryManager>,
    },
}

impl Drop for CommandLog {
    fn drop(&mut self) {
        if let Backing::Topic { runner, .. } = &self.backing {
            runner.abort();
        }
    }
}

impl CommandLog {
    /// Opens the command topic of `service_id` (creating it) and applies what it holds
    /// before returning; the persistent queries it holds are started by `queries`.
    pub async fn open(
        client: Arc<Client>,
        service_id: &str,
        queries: Arc<QueryManager>,
    ) -> Result<CommandLog> {
        let topic: Arc<str> = command_topic(service_id).into();
        let created = client
            .create_topics(
                &[NewTopic {
                    name: topic.to_string(),
                    partitions: 1,
                    replication_factor: -1,
                    configs: [
                        ("cleanup.policy".to_string(), "delete".to_string()),
                        ("retention.ms".to_string(), "-1".to_string()),
                    ]
                    .into(),
                }],
                false,
            )
            .await
            .map_err(|e| KsqlError::statement(format!("the command topic {topic}: {e}")))?;
        for (_, result) in created {
            match result {
                Ok(()) => {}
                Err(e)
                    if e.response_error() == kafka_protocol::ResponseError::TopicAlreadyExists => {}
                Err(e) => {
                    return Err(KsqlError::statement(format!(
                        "the command topic {topic}: {e}"
                    )))
                }
            }
        }
        let end = client
            .list_offset(&topic, 0, -1)
            .await
            .map_err(|e| KsqlError::statement(format!("the command topic {topic}: {e}")))?;
        let consumer = Consumer::assign(
            client.clone(),
            vec![(
                TopicPartition {
                    topic: topic.clone(),
                    partition: 0,
                },
                StartOffset::Beginning,
            )],
            ConsumerConfig {
                max_wait: Duration::from_millis(100),
                ..ConsumerConfig::default()
            },
        )
        .await
        .map_err(|e| KsqlError::statement(format!("the command topic {topic}: {e}")))?;
        let state: Arc<Mutex<Commands>> = Arc::default();
        let (applied_tx, mut applied) = watch::channel(0i64);
        let runner = tokio::spawn(run(consumer, state.clone(), applied_tx, queries, end));
        // What the topic holds is applied before the server answers anything.
        let replayed = tokio::time::timeout(
            Duration::from_secs(60),
            applied.wait_for(|next| *next >= end),
        )
        .await
        .is_ok_and(|waited| waited.is_ok());
        if !replayed {
            runner.abort();
            return Err(KsqlError::statement(format!(
                "the command topic {topic}: its {end} commands were not read within 60 s"
            )));
        }
        let producer = Producer::new(
            client,
            ProducerConfig {
                acks: -1,
                linger: Duration::ZERO,
                ..ProducerConfig::default()
            },
        );
        Ok(CommandLog {
            state,
            backing: Backing::Topic {
                topic,
                producer,
                applied,
                runner,
            },
        })
    }

    /// Commands applied in place, with no command topic (headless mode); the queries they
    /// make are started by `queries`.
    pub fn local(queries: Arc<QueryManager>) -> CommandLog {
        CommandLog {
            state: Arc::default(),
            backing: Backing::Local {
                next: tokio::sync::Mutex::new(0),
                queries,
            },
        }
    }

    /// The metastore and outcomes, as far as the runner has read.
    pub fn state(&self) -> &Arc<Mutex<Commands>> {
        &self.state
    }

    /// Writes `statement` (its text) under `command_id`, with the request's streams
    /// `properties`, and waits for the runner to apply it: its offset and what it did.
    pub async fn submit(
        &self,
        command_id: &str,
        statement: &str,
        properties: &serde_json::Map<String, Json>,
    ) -> Result<(i64, Applied)> {
        let value = json!({
            "statement": statement,
            "streamsProperties": properties,
            "originalProperties": {},
        });
        let (topic, producer, applied) = match &self.backing {
            Backing::Topic {
                topic,
                producer,
                applied,
                ..
            } => (topic, producer, applied),
            Backing::Local { next, queries } => {
                // One command at a time, in order, as the runner would apply them.
                let mut next = next.lock().await;
                let offset = *next;
                *next += 1;
                let bytes = value.to_string();
                let applied_now = apply(
                    &mut self.state.lock().metastore,
                    Some(bytes.as_bytes()),
                    offset,
                );
                let (outcome, effect) = match applied_now {
                    Ok((message, effect)) => (Ok(message), effect),
                    Err(err) => (Err(err), Effect::None),
                };
                match effect {
                    Effect::None => {}
                    Effect::Start(prepared, properties) => {
                        queries.start(&prepared, &properties).await
                    }
                    Effect::Stop(ids) => {
                        for id in ids {
                            queries.stop(&id).await;
                        }
                    }
                }
                let mut state = self.state.lock();
                state
                    .statuses
                    .insert(command_id.to_string(), outcome.clone());
                state.outcomes.insert(offset, outcome.clone());
                while state.outcomes.len() > 1000 {
                    state.outcomes.pop_first();
                }
                return Ok((offset, outcome));
            }
        };
        let delivery = producer
            .send(ProducerRecord {
                topic: topic.clone(),
                partition: Some(0),
                key: Some(Bytes::from(command_id.to_string())),
                value: Some(Bytes::from(value.to_string())),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                KsqlError::statement(format!("Could not write to the command topic: {e}"))
            })?;
        let offset = delivery
            .await
            .map_err(|e| {
                KsqlError::statement(format!("Could not write to the command topic: {e}"))
            })?
            .offset;
        let mut applied = applied.clone();
        let waited =
            tokio::time::timeout(RESPONSE_TIMEOUT, applied.wait_for(|next| *next > offset)).await;
        if !matches!(waited, Ok(Ok(_))) {
            return Err(KsqlError::statement(format!(
                "Timed out while waiting for a previous command to execute. command sequence number: {offset}"
            )));
        }
        let outcome = self
            .state
            .lock()
            .outcomes
            .get(&offset)
            .cloned()
            .unwrap_or_else(|| Err("the command's outcome is no longer kept".to_string()));
        Ok((offset, outcome))
    }
}

/// What a command asks of the running queries.
enum Effect {
    None,
    Start(Box<PreparedQuery>, serde_json::Map<String, Json>),
    Stop(Vec<String>),
}

/// Reads the command topic for good, applying each command to the metastore and starting
/// and stopping persistent queries. While it replays the commands that were there at
/// start-up (up to `replay_end`), queries start only once every command is read: those
/// terminated later in the topic never start.
async fn run(
    mut consumer: Consumer,
    state: Arc<Mutex<Commands>>,
    applied: watch::Sender<i64>,
    queries: Arc<QueryManager>,
    replay_end: i64,
) {
    let mut replaying = replay_end > 0;
    let mut pending: BTreeMap<String, (Box<PreparedQuery>, serde_json::Map<String, Json>)> =
        BTreeMap::new();
    loop {
        let records = match consumer.poll_timeout(500, Duration::from_millis(500)).await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(%err, "ksql: reading the command topic failed; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for record in records {
            let applied_now = apply(
                &mut state.lock().metastore,
                record.value.as_deref(),
                record.offset,
            );
            let (outcome, effect) = match applied_now {
                Ok((message, effect)) => (Ok(message), effect),
                Err(err) => (Err(err), Effect::None),
            };
            if let Err(err) = &outcome {
                tracing::debug!(offset = record.offset, %err, "ksql: a command was refused");
            }
            match effect {
                Effect::None => {}
                Effect::Start(prepared, properties) if replaying => {
                    pending.insert(prepared.info.id.clone(), (prepared, properties));
                }
                Effect::Start(prepared, properties) => queries.start(&prepared, &properties).await,
                Effect::Stop(ids) => {
                    for id in ids {
                        if pending.remove(&id).is_none() {
                            queries.stop(&id).await;
                        }
                    }
                }
            }
            if replaying && record.offset + 1 >= replay_end {
                replaying = false;
                for (_, (prepared, properties)) in std::mem::take(&mut pending) {
                    queries.start(&prepared, &properties).await;
                }
            }
            let mut state = state.lock();
            if let Some(id) = record.key.as_deref() {
                let id = String::from_utf8_lossy(id).into_owned();
                state.statuses.insert(id, outcome.clone());
            }
            state.outcomes.insert(record.offset, outcome);
            while state.outcomes.len() > 1000 {
                state.outcomes.pop_first();
            }
            drop(state);
            applied.send_replace(record.offset + 1);
        }
    }
}

/// Applies one command's statement (at `offset`): its message and what it asks of the
/// running queries.
fn apply(
    metastore: &mut MetaStore,
    value: Option<&[u8]>,
    offset: i64,
) -> std::result::Result<(String, Effect), String> {
    let command: Json = value
        .and_then(|v| serde_json::from_slice(v).ok())
        .ok_or_else(|| "not a command".to_string())?;
    let text = command
        .get("statement")
        .and_then(Json::as_str)
        .ok_or_else(|| "a command without a statement".to_string())?;
    let properties = command
        .get("streamsProperties")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    let parsed = parse_one(text).map_err(|e| e.to_string())?;
    match &parsed.statement {
        Statement::CreateAsSelect(create) => {
            let prepared = prepare_create_as_select(create, text, metastore, offset)
                .map_err(|e| e.to_string())?;
            let outcome = metastore
                .add_query_with_sink(
                    prepared.sink.clone(),
                    prepared.info.clone(),
                    create.or_replace,
                )
                .map_err(|e| e.to_string())?;
            Ok((
                outcome.message,
                Effect::Start(Box::new(prepared), properties),
            ))
        }
        Statement::InsertSelect {
            target,
            properties: with,
            query,
        } => {
            let prepared = prepare_insert_select(target, with, query, text, metastore, offset)
                .map_err(|e| e.to_string())?;
            let outcome = metastore
                .add_query(prepared.info.clone())
                .map_err(|e| e.to_string())?;
            Ok((
                outcome.message,
                Effect::Start(Box::new(prepared), properties),
            ))
        }
        Statement::Terminate(target) => {
            let ids: Vec<String> = match target {
                // Query ids are upper case; ksqlDB takes them in any case.
                Some(id) => vec![id.to_ascii_uppercase()],
                None => metastore.queries().map(|q| q.id.clone()).collect(),
            };
            for id in &ids {
                metastore.terminate(id).map_err(|e| e.to_string())?;
            }
            Ok(("Query terminated.".to_string(), Effect::Stop(ids)))
        }
        // `CREATE SOURCE TABLE`: ksqlDB's query materialising it for pull queries.
        Statement::CreateSource(create) if create.source && create.kind == SourceKind::Table => {
            let mut updated = metastore.clone();
            let outcome = updated
                .apply(&parsed.statement, text)
                .map_err(|e| e.to_string())?;
            let name = name_of(&create.name);
            if metastore.source(&name).is_some() {
                // `IF NOT EXISTS` of a table there already: nothing new to run.
                *metastore = updated;
                return Ok((outcome.message, Effect::None));
            }
            let prepared = PreparedQuery::source_table(&name, text, &updated, offset)
                .map_err(|e| e.to_string())?;
            updated
                .add_query(prepared.info.clone())
                .map_err(|e| e.to_string())?;
            *metastore = updated;
            Ok((
                outcome.message,
                Effect::Start(Box::new(prepared), properties),
            ))
        }
        // Dropping a source table ends the query that materialises it (ksqlDB's).
        Statement::Drop { name, .. } => {
            let materialising = metastore.materializing(&name_of(name));
            let outcome = metastore
                .apply(&parsed.statement, text)
                .map_err(|e| e.to_string())?;
            Ok((outcome.message, Effect::Stop(materialising)))
        }
        statement => metastore
            .apply(statement, text)
            .map(|outcome| (outcome.message, Effect::None))
            .map_err(|e| e.to_string()),
    }
}
