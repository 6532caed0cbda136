//! The engine: runs statements against the metastore and the Kafka cluster, answering with
//! ksqlDB's REST entities (`currentStatus`, `streams`, `tables`, `sourceDescription`,
//! `kafka_topics`, `type_list`, `properties`) or its errors.
//!
//! So far it runs DDL (creating and deleting topics as ksqlDB does), `SHOW`, `LIST` and
//! `DESCRIBE`; statements that run queries say they are not implemented yet.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use serde_json::{json, Value as Json};
use sluice_log::client::{Client, NewTopic};

use crate::command::CommandLog;
use crate::error::{KsqlError, Result};
use crate::metastore::{name_of, DataSource, MetaStore, SourceProperties};
use crate::parser::ast::{
    ColumnConstraint, Listing, ParsedStatement, SourceKind, SqlType, Statement,
};
use crate::parser::parse;

/// A statement's failure as ksqlDB reports it: its error entity and HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementFailure {
    /// The HTTP status (400 for the user's errors, 500 for the server's).
    pub status: u16,
    /// `{"@type", "error_code", "message", "statementText", "entities"}`.
    pub body: Json,
}

/// The server's state and its Kafka client.
pub struct Engine {
    client: Arc<Client>,
    commands: CommandLog,
    service_id: String,
}

impl Engine {
    /// An engine on `client`'s cluster for the service `service_id` (`ksql.service.id`),
    /// its metastore rebuilt from the service's command topic.
    pub async fn start(client: Arc<Client>, service_id: &str) -> Result<Engine> {
        let commands = CommandLog::open(client.clone(), service_id).await?;
        Ok(Engine {
            client,
            commands,
            service_id: service_id.to_string(),
        })
    }

    /// The metastore as the command topic has made it so far.
    pub fn metastore(&self) -> MetaStore {
        self.commands.state().lock().metastore.clone()
    }

    /// Writes a checked DDL statement to the command topic and answers with what applying
    /// it did (ksqlDB's `currentStatus`).
    async fn submit(&self, text: &str, command_id: &str) -> Result<Json> {
        let (offset, applied) = self.commands.submit(command_id, text).await?;
        let message = applied.map_err(KsqlError::statement)?;
        Ok(json!({
            "@type": "currentStatus",
            "statementText": text,
            "commandId": command_id,
            "commandStatus": {"status": "SUCCESS", "message": message, "queryId": null},
            "commandSequenceNumber": offset,
            "warnings": [],
        }))
    }

    /// `ksql.service.id`.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The cluster's id (for `/info`).
    pub async fn kafka_cluster_id(&self) -> Option<String> {
        self.client
            .describe_cluster()
            .await
            .ok()
            .and_then(|c| c.cluster_id)
    }

    /// Runs every statement of `sql` in order (ksqlDB's `POST /ksql`): the entities, or at
    /// the first failure its error entity, carrying the entities before it.
    pub async fn execute(&self, sql: &str) -> std::result::Result<Vec<Json>, StatementFailure> {
        let statements = parse(sql).map_err(|err| failure(&err, sql, Vec::new()))?;
        let mut sandbox = self.metastore();
        for parsed in &statements {
            if let Err(err) = self.check(&mut sandbox, parsed).await {
                return Err(failure(&err, &format!("{};", parsed.text), Vec::new()));
            }
        }
        let mut entities = Vec::new();
        for parsed in statements {
            match self.statement(&parsed).await {
                Ok(entity) => entities.push(entity),
                Err(err) => return Err(failure(&err, &format!("{};", parsed.text), entities)),
            }
        }
        Ok(entities)
    }

    async fn statement(&self, parsed: &ParsedStatement) -> Result<Json> {
        let text = format!("{};", parsed.text);
        match &parsed.statement {
            Statement::CreateSource(create) => {
                // Checked first: the topic is created only for a statement that will apply.
                let mut store = self.metastore();
                let outcome = store.apply(&parsed.statement, &text)?;
                let name = name_of(&create.name);
                if !outcome.message.contains("already exists") {
                    if let Some(source) = store.source(&name) {
                        self.ensure_topic(source, create.kind).await?;
                    }
                }
                self.submit(&text, &command_id(create.kind, &name, "create"))
                    .await
            }
            Statement::CreateType { name, .. } | Statement::DropType { name, .. } => {
                self.metastore().apply(&parsed.statement, &text)?;
                let action = if matches!(parsed.statement, Statement::CreateType { .. }) {
                    "create"
                } else {
                    "drop"
                };
                self.submit(&text, &format!("type/`{}`/{action}", name_of(name)))
                    .await
            }
            Statement::Alter { kind, name, .. } => {
                self.metastore().apply(&parsed.statement, &text)?;
                self.submit(&text, &command_id(*kind, &name_of(name), "alter"))
                    .await
            }
            Statement::Drop {
                kind,
                name,
                delete_topic,
                ..
            } => {
                let name = name_of(name);
                let mut store = self.metastore();
                let topic = store.source(&name).map(|s| s.properties.topic.clone());
                store.apply(&parsed.statement, &text)?;
                let status = self
                    .submit(&text, &command_id(*kind, &name, "drop"))
                    .await?;
                if let (true, Some(topic)) = (*delete_topic, topic) {
                    for (topic, result) in
                        self.client.delete_topics(&[topic]).await.map_err(kafka)?
                    {
                        result.map_err(|e| {
                            KsqlError::statement(format!("Could not delete the topic {topic}: {e}"))
                        })?;
                    }
                }
                Ok(status)
            }
            Statement::Show { what, extended } => self.show(*what, *extended, &text).await,
            Statement::Describe {
                name: Some(name),
                extended,
                ..
            } => {
                let name = name_of(name);
                let source = self.metastore().source(&name).cloned().ok_or_else(|| {
                    KsqlError::statement(format!(
                        "Could not find STREAM/TABLE '{name}' in the Metastore"
                    ))
                })?;
                let mut description = describe(&source, *extended);
                // The topic's partitions and replicas as the cluster has them.
                let topic = &source.properties.topic;
                if let Ok(found) = self
                    .client
                    .describe_topics(Some(std::slice::from_ref(topic)))
                    .await
                {
                    if let Some(t) = found.iter().find(|t| &t.name == topic) {
                        description["partitions"] = json!(t.partitions.len());
                        description["replication"] =
                            json!(t.partitions.first().map_or(0, |p| p.replicas.len()));
                    }
                }
                Ok(json!({
                    "@type": "sourceDescription",
                    "statementText": text,
                    "sourceDescription": description,
                    "warnings": [],
                }))
            }
            Statement::Describe {
                all: Some(kind),
                extended,
                ..
            } => {
                let store = self.metastore();
                let descriptions: Vec<Json> = store
                    .sources()
                    .filter(|s| s.kind == *kind)
                    .map(|s| describe(s, *extended))
                    .collect();
                Ok(json!({
                    "@type": "source_descriptions",
                    "statementText": text,
                    "sourceDescriptions": descriptions,
                    "warnings": [],
                }))
            }
            other => Err(not_implemented(other)),
        }
    }

    /// Creates the source's topic when it is missing and `PARTITIONS` says how (ksqlDB's
    /// rule); a missing topic without it is an error.
    /// Whether the source's topic must be created: an existing topic must have the
    /// partitions `PARTITIONS` asks for; a missing one needs `PARTITIONS` (ksqlDB's rules).
    async fn topic_to_create(&self, source: &DataSource, kind: SourceKind) -> Result<bool> {
        let props: &SourceProperties = &source.properties;
        let existing = match self
            .client
            .describe_topics(Some(std::slice::from_ref(&props.topic)))
            .await
        {
            Ok(topics) => topics
                .into_iter()
                .find(|t| t.name == props.topic && !t.partitions.is_empty()),
            Err(err) if err.response_error() == ResponseError::UnknownTopicOrPartition => None,
            Err(err) => return Err(kafka(err)),
        };
        match (existing, props.partitions) {
            (Some(topic), Some(wanted)) if topic.partitions.len() != wanted as usize => {
                Err(KsqlError::statement(format!(
                    "A Kafka topic with the name '{}' already exists, with different partition/replica configuration than required. KSQL expects {wanted} partitions (topic has {}).",
                    props.topic,
                    topic.partitions.len()
                )))
            }
            (Some(_), _) => Ok(false),
            (None, Some(_)) => Ok(true),
            (None, None) => Err(KsqlError::statement(format!(
                "Topic '{topic}' does not exist. If you want to create a new topic for the {kind} please re-run the statement providing the required 'PARTITIONS' configuration in the WITH clause (and optionally 'REPLICAS'). For example: CREATE {upper} {name} (...) WITH (KAFKA_TOPIC='{topic}', PARTITIONS=2, REPLICAS=1, ...);",
                topic = props.topic,
                kind = kind.to_string().to_ascii_lowercase(),
                upper = kind,
                name = source.name,
            ))),
        }
    }

    /// Creates the source's topic when [`Engine::topic_to_create`] says so.
    async fn ensure_topic(&self, source: &DataSource, kind: SourceKind) -> Result<()> {
        if !self.topic_to_create(source, kind).await? {
            return Ok(());
        }
        let props = &source.properties;
        let mut configs = BTreeMap::new();
        // A table keeps the latest value per key; a windowed one is kept by time instead.
        if kind == SourceKind::Table && props.window.is_none() {
            configs.insert("cleanup.policy".to_string(), "compact".to_string());
        }
        let created = self
            .client
            .create_topics(
                &[NewTopic {
                    name: props.topic.clone(),
                    partitions: props
                        .partitions
                        .and_then(|p| i32::try_from(p).ok())
                        .unwrap_or(-1),
                    replication_factor: props
                        .replicas
                        .and_then(|r| i16::try_from(r).ok())
                        .unwrap_or(-1),
                    configs,
                }],
                false,
            )
            .await
            .map_err(kafka)?;
        for (topic, result) in created {
            result.map_err(|e| {
                KsqlError::statement(format!("Could not create the topic {topic}: {e}"))
            })?;
        }
        Ok(())
    }

    /// Checks `parsed` against `sandbox` (applying it there) without touching the cluster:
    /// ksqlDB checks a request's statements together before it runs any.
    async fn check(&self, sandbox: &mut MetaStore, parsed: &ParsedStatement) -> Result<()> {
        let text = format!("{};", parsed.text);
        match &parsed.statement {
            Statement::CreateSource(create) => {
                let outcome = sandbox.apply(&parsed.statement, &text)?;
                if !outcome.message.contains("already exists") {
                    if let Some(source) = sandbox.source(&name_of(&create.name)) {
                        self.topic_to_create(source, create.kind).await?;
                    }
                }
            }
            Statement::Drop {
                name,
                delete_topic: true,
                ..
            } => {
                let name = name_of(name);
                if let Some(source) = sandbox.source(&name) {
                    let topic = &source.properties.topic;
                    if source.read_only {
                        return Err(KsqlError::statement(format!(
                            "Cannot delete topic for read-only source: {name}"
                        )));
                    }
                    let others: Vec<&str> = sandbox
                        .sources()
                        .filter(|s| s.name != name && &s.properties.topic == topic)
                        .map(|s| s.name.as_str())
                        .collect();
                    if !others.is_empty() {
                        return Err(KsqlError::statement(format!(
                            "Refusing to delete topic. Found other data sources ({}) using topic {topic}",
                            others.join(", ")
                        )));
                    }
                    if topic.starts_with('_') || topic.starts_with("__") {
                        return Err(KsqlError::statement(format!(
                            "Refusing to delete topic {topic}: it is an internal topic"
                        )));
                    }
                }
                sandbox.apply(&parsed.statement, &text)?;
            }
            Statement::CreateType { .. }
            | Statement::DropType { .. }
            | Statement::Alter { .. }
            | Statement::Drop { .. } => {
                sandbox.apply(&parsed.statement, &text)?;
            }
            Statement::Show { .. } | Statement::Describe { .. } => {}
            other => return Err(not_implemented(other)),
        }
        Ok(())
    }

    async fn show(&self, what: Listing, extended: bool, text: &str) -> Result<Json> {
        Ok(match what {
            Listing::Streams | Listing::Tables => {
                let kind = if what == Listing::Streams {
                    SourceKind::Stream
                } else {
                    SourceKind::Table
                };
                let store = self.metastore();
                let sources: Vec<Json> = store
                    .sources()
                    .filter(|s| s.kind == kind)
                    .map(|s| {
                        if extended {
                            describe(s, true)
                        } else {
                            json!({
                                "type": kind.to_string(),
                                "name": s.name,
                                "topic": s.properties.topic,
                                "keyFormat": s.properties.key_format.name(),
                                "valueFormat": s.properties.value_format.name(),
                                "isWindowed": s.properties.window.is_some(),
                            })
                        }
                    })
                    .collect();
                match (kind, extended) {
                    (_, true) => {
                        json!({"@type": "source_descriptions", "statementText": text, "sourceDescriptions": sources, "warnings": []})
                    }
                    (SourceKind::Stream, false) => {
                        json!({"@type": "streams", "statementText": text, "streams": sources, "warnings": []})
                    }
                    (SourceKind::Table, false) => {
                        json!({"@type": "tables", "statementText": text, "tables": sources, "warnings": []})
                    }
                }
            }
            Listing::Topics { all } => {
                let mut topics = self.client.describe_topics(None).await.map_err(kafka)?;
                topics.retain(|t| all || !(t.internal || t.name.starts_with('_')));
                topics.sort_by(|a, b| a.name.cmp(&b.name));
                let topics: Vec<Json> = topics
                    .iter()
                    .map(|t| json!({"name": t.name, "replicaInfo": t.partitions.iter().map(|p| p.replicas.len()).collect::<Vec<_>>()}))
                    .collect();
                json!({"@type": "kafka_topics", "statementText": text, "topics": topics, "warnings": []})
            }
            Listing::Types => {
                let store = self.metastore();
                let types: serde_json::Map<String, Json> = store
                    .types()
                    .iter()
                    .map(|(name, ty)| (name.clone(), schema_info(ty)))
                    .collect();
                json!({"@type": "type_list", "statementText": text, "types": types, "warnings": []})
            }
            Listing::Properties => json!({
                "@type": "properties",
                "statementText": text,
                "properties": [
                    {"name": "ksql.service.id", "scope": "KSQL", "value": self.service_id},
                ],
                "overwrittenProperties": [],
                "defaultProperties": [],
                "warnings": [],
            }),
            other => {
                let name = match other {
                    Listing::Queries => "QUERIES",
                    Listing::Functions => "FUNCTIONS",
                    Listing::Variables => "VARIABLES",
                    _ => "CONNECTORS",
                };
                return Err(KsqlError::statement(format!(
                    "SHOW {name} is not implemented in Sluice yet (issue 18 is under way)"
                )));
            }
        })
    }
}

fn not_implemented(statement: &Statement) -> KsqlError {
    KsqlError::statement(format!(
        "{} statements are not implemented in Sluice yet (issue 18 is under way: DDL, SHOW, LIST and DESCRIBE run so far)",
        statement_name(statement)
    ))
}

fn kafka(err: sluice_log::Error) -> KsqlError {
    KsqlError::statement(format!("Kafka: {err}"))
}

fn command_id(kind: SourceKind, name: &str, action: &str) -> String {
    format!(
        "{}/`{name}`/{action}",
        kind.to_string().to_ascii_lowercase()
    )
}

fn statement_name(statement: &Statement) -> &'static str {
    match statement {
        Statement::CreateAsSelect(_) => "CREATE ... AS SELECT",
        Statement::InsertSelect { .. } => "INSERT INTO ... SELECT",
        Statement::InsertValues { .. } => "INSERT INTO ... VALUES",
        Statement::Query(_) => "SELECT",
        Statement::DescribeFunction(_) => "DESCRIBE FUNCTION",
        Statement::Explain(_) => "EXPLAIN",
        Statement::Print { .. } => "PRINT",
        Statement::Set { .. } | Statement::Unset(_) => "SET and UNSET",
        Statement::Define { .. } | Statement::Undefine(_) => "DEFINE and UNDEFINE",
        Statement::RunScript(_) => "RUN SCRIPT",
        Statement::Terminate(_) => "TERMINATE",
        _ => "These",
    }
}

/// ksqlDB's `SchemaInfo` of a type: `{"type", "fields", "memberSchema"}`.
fn schema_info(ty: &SqlType) -> Json {
    match ty {
        SqlType::Array(item) => {
            json!({"type": "ARRAY", "fields": null, "memberSchema": schema_info(item)})
        }
        SqlType::Map(_, value) => {
            json!({"type": "MAP", "fields": null, "memberSchema": schema_info(value)})
        }
        SqlType::Struct(fields) => json!({
            "type": "STRUCT",
            "fields": fields.iter().map(|(n, t)| json!({"name": n, "schema": schema_info(t)})).collect::<Vec<_>>(),
            "memberSchema": null,
        }),
        SqlType::Decimal { precision, scale } => json!({
            "type": "DECIMAL", "fields": null, "memberSchema": null,
            "parameters": {"precision": precision, "scale": scale},
        }),
        other => json!({"type": match other {
            SqlType::Boolean => "BOOLEAN",
            SqlType::Int => "INTEGER",
            SqlType::Bigint => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::Bytes => "BYTES",
            SqlType::Date => "DATE",
            SqlType::Time => "TIME",
            SqlType::Timestamp => "TIMESTAMP",
            _ => "STRING",
        }, "fields": null, "memberSchema": null}),
    }
}

/// ksqlDB's `SourceDescription` (its fields as ksqlDB names them; statistics empty).
fn describe(source: &DataSource, extended: bool) -> Json {
    let p = &source.properties;
    let fields: Vec<Json> = source
        .columns
        .iter()
        .map(|c| {
            let mut field = json!({"name": c.name, "schema": schema_info(&c.ty)});
            match &c.constraint {
                ColumnConstraint::Key | ColumnConstraint::PrimaryKey => {
                    field["type"] = json!("KEY")
                }
                ColumnConstraint::Headers => field["type"] = json!("HEADER"),
                ColumnConstraint::Header(key) => {
                    field["type"] = json!("HEADER");
                    field["headerKey"] = json!(key);
                }
                ColumnConstraint::None => {}
            }
            field
        })
        .collect();
    json!({
        "name": source.name,
        "windowType": p.window.as_ref().map(|w| w.kind.clone()),
        "readQueries": [],
        "writeQueries": [],
        "fields": fields,
        "type": source.kind.to_string(),
        "timestamp": p.timestamp.clone().unwrap_or_default(),
        "statistics": "",
        "errorStats": "",
        "extended": extended,
        "keyFormat": p.key_format.name(),
        "valueFormat": p.value_format.name(),
        "topic": p.topic,
        "partitions": p.partitions.unwrap_or(0),
        "replication": p.replicas.unwrap_or(0),
        "statement": source.sql,
        "queryOffsetSummaries": [],
        "sourceConstraints": [],
        "clusterStatistics": [],
        "clusterErrorStats": [],
    })
}

/// The error entity of `err` for the statement `text` (ksqlDB's `KsqlStatementErrorMessage`).
fn failure(err: &KsqlError, text: &str, entities: Vec<Json>) -> StatementFailure {
    StatementFailure {
        status: 400,
        body: json!({
            "@type": "statement_error",
            "error_code": 40001,
            "message": err.to_string(),
            "statementText": text,
            "entities": entities,
        }),
    }
}
