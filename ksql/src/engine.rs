//! The engine: runs statements against the metastore and the Kafka cluster, answering with
//! ksqlDB's REST entities (`currentStatus`, `streams`, `tables`, `sourceDescription`,
//! `kafka_topics`, `type_list`, `properties`) or its errors.
//!
//! It runs DDL (creating and deleting topics as ksqlDB does), `CREATE STREAM ... AS SELECT`
//! and `TERMINATE` (through the command topic, whose runner starts and stops the persistent
//! queries), `SET`/`UNSET`, `SHOW`, `LIST` and `DESCRIBE`, and starts push queries for the
//! REST API's query endpoints.

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
use crate::queries::{prepare_create_as_select, prepare_insert_select, QueryManager};
use crate::variables::Variables;

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
    queries: Arc<QueryManager>,
    service_id: String,
    /// Writes the records of `INSERT INTO ... VALUES`.
    producer: sluice_log::client::producer::Producer,
    /// The running push queries' stop signals, by query id (`/close-query`).
    transient: parking_lot::Mutex<BTreeMap<String, tokio::sync::oneshot::Sender<()>>>,
}

/// Streams properties (`streamsProperties`, `SET`), by name.
pub type StreamsProperties = serde_json::Map<String, Json>;

/// What a query request gets: a push query's running rows, or a pull query's answer.
pub enum Answer {
    /// `EMIT CHANGES`: rows as they come.
    Push(crate::queries::PushQuery),
    /// Without `EMIT`: the rows there are now.
    Pull(crate::pull::PullResult),
    /// `PRINT`: a topic's records as text lines.
    Print(crate::print::Printing),
}

impl Engine {
    /// An engine on `client`'s cluster for the service `service_id` (`ksql.service.id`),
    /// its metastore rebuilt from the service's command topic.
    pub async fn start(client: Arc<Client>, service_id: &str) -> Result<Engine> {
        let queries = Arc::new(QueryManager::new(client.clone(), service_id));
        let commands = CommandLog::open(client.clone(), service_id, queries.clone()).await?;
        Ok(Engine::with(client, commands, queries, service_id))
    }

    fn with(
        client: Arc<Client>,
        commands: CommandLog,
        queries: Arc<QueryManager>,
        service_id: &str,
    ) -> Engine {
        let producer_client = client.clone();
        Engine {
            client,
            commands,
            queries,
            service_id: service_id.to_string(),
            producer: sluice_log::client::producer::Producer::new(
                producer_client,
                sluice_log::client::producer::ProducerConfig {
                    acks: -1,
                    linger: std::time::Duration::ZERO,
                    ..Default::default()
                },
            ),
            transient: parking_lot::Mutex::new(BTreeMap::new()),
        }
    }

    /// A headless engine (ksqlDB's headless mode, `ksql.queries.file`): its statements come
    /// from a file ([`Engine::run_queries_file`]), applied in place with no command topic, so
    /// every server of `service_id` that runs the same file runs the same queries (same ids,
    /// same applications) and they share their work.
    pub async fn start_headless(client: Arc<Client>, service_id: &str) -> Result<Engine> {
        let queries = Arc::new(QueryManager::new(client.clone(), service_id));
        let commands = CommandLog::local(queries.clone());
        Ok(Engine::with(client, commands, queries, service_id))
    }

    /// Runs a headless server's queries file (`sql`, read from `file`): the statements
    /// ksqlDB's headless mode takes (`CREATE STREAM|TABLE`, `... AS SELECT`, `CREATE TYPE`,
    /// `INSERT INTO ... SELECT`, `SET`, `UNSET`), checked whole before any runs. The first
    /// bad statement is the error: its line in the file and why, in ksqlDB's words.
    pub async fn run_queries_file(&self, file: &str, sql: &str) -> Result<Vec<Json>> {
        let at = |line: u64| format!("{file}, line {line}");
        let statements =
            parse(sql).map_err(|err| KsqlError::statement(format!("{file}: {err}")))?;
        for parsed in &statements {
            let allowed = matches!(
                parsed.statement,
                Statement::CreateSource(_)
                    | Statement::CreateAsSelect(_)
                    | Statement::CreateType { .. }
                    | Statement::InsertSelect { .. }
                    | Statement::Set { .. }
                    | Statement::Unset(_)
            );
            if !allowed {
                return Err(KsqlError::statement(format!(
                    "{}: Unsupported statement. Only the following statements are supporting in standalone mode:\nCREATE STREAM\nCREATE STREAM AS SELECT\nCREATE TABLE\nCREATE TABLE AS SELECT\nINSERT INTO\nREGISTER TYPE\nSET\nUNSET\nStatement: {}",
                    at(parsed.line),
                    parsed.text
                )));
            }
        }
        self.execute(sql, &StreamsProperties::new())
            .await
            .map_err(|failure| {
                let text = failure.body["statementText"].as_str().unwrap_or("");
                let line = statements
                    .iter()
                    .find(|p| text.trim_end_matches(';') == p.text)
                    .map_or(1, |p| p.line);
                let message = failure.body["message"].as_str().unwrap_or("").to_string();
                KsqlError::statement(format!("{}: {message}\nStatement: {text}", at(line)))
            })
    }

    /// Runs the query `sql` (one `SELECT` or `PRINT`) with the request's streams
    /// `properties`: a push query (`EMIT CHANGES`) or a `PRINT` starts, a pull query answers.
    pub async fn query(&self, sql: &str, properties: &StreamsProperties) -> Result<Answer> {
        self.query_with_variables(sql, properties, Variables::new())
            .await
    }

    /// [`Engine::query`] with the request's `sessionVariables` substituted for `${name}`.
    pub async fn query_with_variables(
        &self,
        sql: &str,
        properties: &StreamsProperties,
        variables: Variables,
    ) -> Result<Answer> {
        let statements = if variables.is_empty() && !crate::variables::uses_variables(sql) {
            parse(sql)?
        } else {
            crate::variables::parse_with_variables(sql, variables)?
                .into_iter()
                .map(|(parsed, _)| parsed)
                .collect()
        };
        let [parsed] = statements.as_slice() else {
            return Err(KsqlError::statement(
                "Expected exactly one KSQL statement; found ".to_string()
                    + &statements.len().to_string(),
            ));
        };
        if let Statement::Print {
            topic,
            from_beginning,
            interval,
            limit,
        } = &parsed.statement
        {
            let printing = crate::print::start(
                self.client.clone(),
                topic,
                *from_beginning,
                *interval,
                *limit,
            )
            .await?;
            return Ok(Answer::Print(printing));
        }
        let Statement::Query(query) = &parsed.statement else {
            return Err(KsqlError::statement(format!(
                "Statement type `{}' not supported for this resource",
                statement_name(&parsed.statement)
            )));
        };
        if query.emit.is_none() {
            let pulled = crate::pull::run(
                query,
                &self.metastore(),
                (&self.client, &self.queries),
                properties,
            )
            .await?;
            return Ok(Answer::Pull(pulled));
        }
        if query.emit == Some(crate::parser::ast::Emit::Final) && query.window.is_none() {
            return Err(KsqlError::statement(
                "EMIT FINAL is only supported for windowed aggregations.",
            ));
        }
        let (stop, closed) = tokio::sync::oneshot::channel();
        let push = crate::queries::start_push(
            self.client.clone(),
            &self.service_id,
            query,
            &self.metastore(),
            properties,
            closed,
        )
        .await?;
        self.transient.lock().insert(push.id.clone(), stop);
        Ok(Answer::Push(push))
    }

    /// Stops push query `id` (`/close-query`); false if no such query runs.
    pub fn close_query(&self, id: &str) -> bool {
        match self.transient.lock().remove(id) {
            Some(stop) => {
                let _ = stop.send(());
                true
            }
            None => false,
        }
    }

    /// Stops every push query (the server shutting down).
    pub fn close_push_queries(&self) {
        for (_, stop) in std::mem::take(&mut *self.transient.lock()) {
            let _ = stop.send(());
        }
    }

    /// Forgets push query `id` once it has ended.
    pub fn forget_query(&self, id: &str) {
        self.transient.lock().remove(id);
    }

    /// Stops the persistent queries this server runs (their offsets stay committed).
    pub async fn shutdown(&self) {
        self.queries.stop_all().await;
    }

    /// The Kafka client.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The metastore as the command topic has made it so far.
    pub fn metastore(&self) -> MetaStore {
        self.commands.state().lock().metastore.clone()
    }

    /// Writes a checked DDL statement to the command topic and answers with what applying
    /// it did (ksqlDB's `currentStatus`).
    async fn submit(
        &self,
        text: &str,
        command_id: &str,
        properties: &StreamsProperties,
    ) -> Result<Json> {
        let (offset, applied) = self.commands.submit(command_id, text, properties).await?;
        let message = applied.map_err(KsqlError::statement)?;
        let query_id = message
            .strip_prefix("Created query with ID ")
            .map(str::to_string);
        Ok(json!({
            "@type": "currentStatus",
            "statementText": text,
            "commandId": command_id,
            "commandStatus": {"status": "SUCCESS", "message": message, "queryId": query_id},
            "commandSequenceNumber": offset,
            "warnings": [],
        }))
    }

    /// Each command id's last outcome (ksqlDB's `/status`).
    pub fn command_statuses(&self) -> BTreeMap<String, crate::command::Applied> {
        self.commands.state().lock().statuses().clone()
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

    /// Runs every statement of `sql` in order (ksqlDB's `POST /ksql`) with the request's
    /// `streamsProperties` (which `SET` and `UNSET` change for the statements after them):
    /// the entities, or at the first failure its error entity, carrying the entities before
    /// it.
    pub async fn execute(
        &self,
        sql: &str,
        properties: &StreamsProperties,
    ) -> std::result::Result<Vec<Json>, StatementFailure> {
        self.execute_with_variables(sql, properties, Variables::new())
            .await
    }

    /// [`Engine::execute`] with the request's `sessionVariables` (ksqlDB's variables,
    /// which `DEFINE` and `UNDEFINE` change for the statements after them).
    pub async fn execute_with_variables(
        &self,
        sql: &str,
        properties: &StreamsProperties,
        variables: Variables,
    ) -> std::result::Result<Vec<Json>, StatementFailure> {
        let with_variables = if variables.is_empty() && !crate::variables::uses_variables(sql) {
            parse(sql).map(|parsed| {
                parsed
                    .into_iter()
                    .map(|p| (p, Variables::new()))
                    .collect::<Vec<_>>()
            })
        } else {
            crate::variables::parse_with_variables(sql, variables)
        };
        let with_variables = with_variables.map_err(|err| failure(&err, sql, Vec::new()))?;
        let statements: Vec<&ParsedStatement> = with_variables.iter().map(|(p, _)| p).collect();
        // The request's properties are those its queries will run with: checked first.
        crate::queries::streams_config("check", properties)
            .map_err(|err| failure(&err, sql, Vec::new()))?;
        let mut sandbox = self.metastore();
        for parsed in &statements {
            if let Err(err) = self.check(&mut sandbox, parsed).await {
                return Err(failure(&err, &format!("{};", parsed.text), Vec::new()));
            }
        }
        let mut properties = properties.clone();
        let mut entities = Vec::new();
        for (parsed, variables) in &with_variables {
            match self.statement(parsed, &mut properties, variables).await {
                Ok(Some(entity)) => entities.push(entity),
                Ok(None) => {}
                Err(err) => return Err(failure(&err, &format!("{};", parsed.text), entities)),
            }
        }
        Ok(entities)
    }

    async fn statement(
        &self,
        parsed: &ParsedStatement,
        properties: &mut StreamsProperties,
        variables: &Variables,
    ) -> Result<Option<Json>> {
        let text = format!("{};", parsed.text);
        match &parsed.statement {
            // Variables were applied as the request was read; ksqlDB answers DEFINE with no
            // entity, and UNDEFINE of a variable never defined with a warning.
            Statement::Define { .. } => Ok(None),
            Statement::Undefine(name) => Ok((!variables.contains_key(&name.to_ascii_uppercase()))
                .then(|| {
                    json!({
                        "@type": "warning_entity",
                        "statementText": text,
                        "message": format!("Cannot undefine variable '{name}' which was never defined"),
                        "warnings": [],
                    })
                })),
            Statement::Show {
                what: Listing::Variables,
                ..
            } => Ok(Some(json!({
                "@type": "variables",
                "statementText": text,
                "variables": variables
                    .iter()
                    .map(|(name, value)| json!({"name": name, "value": value}))
                    .collect::<Vec<_>>(),
                "warnings": [],
            }))),
            // What SET and UNSET change holds for the rest of the request (ksqlDB answers
            // them with no entity).
            Statement::Set { name, value } => {
                check_property(name, value)?;
                properties.insert(name.clone(), Json::String(value.clone()));
                Ok(None)
            }
            Statement::Unset(name) => {
                properties.remove(name);
                Ok(None)
            }
            // ksqlDB answers an insert with no entity once the record is written.
            Statement::InsertValues {
                target,
                columns,
                values,
            } => {
                self.insert_values(target, columns, values).await?;
                Ok(None)
            }
            other => self.run_statement(other, &text, properties).await.map(Some),
        }
    }

    async fn run_statement(
        &self,
        statement: &Statement,
        text: &str,
        properties: &StreamsProperties,
    ) -> Result<Json> {
        let text = text.to_string();
        match statement {
            Statement::CreateAsSelect(create) => {
                let store = self.metastore();
                let prepared = prepare_create_as_select(create, &text, &store, -1)?;
                crate::queries::check_join_partitions(&self.client, &prepared.planned).await?;
                store
                    .clone()
                    .add_query_with_sink(prepared.sink.clone(), prepared.info.clone(), create.or_replace)?;
                let source_topic = &prepared.planned.source.properties.topic;
                self.ensure_sink_topic(&prepared.sink, source_topic).await?;
                self.submit(
                    &text,
                    &command_id(create.kind, &prepared.sink.name, "create"),
                    properties,
                )
                .await
            }
            Statement::InsertSelect {
                target,
                properties: with,
                query,
            } => {
                let mut store = self.metastore();
                let prepared = prepare_insert_select(target, with, query, &text, &store, -1)?;
                crate::queries::check_join_partitions(&self.client, &prepared.planned).await?;
                store.add_query(prepared.info.clone())?;
                self.submit(
                    &text,
                    &format!("stream/`{}`/insert", prepared.sink.name),
                    properties,
                )
                .await
            }
            Statement::Terminate(target) => {
                if let Some(id) = target {
                    let id = id.to_ascii_uppercase();
                    if self.metastore().query(&id).is_none() {
                        return Err(KsqlError::statement(format!("Unknown queryId: {id}")));
                    }
                }
                let command = match target {
                    Some(id) => format!("terminate/{}/execute", id.to_ascii_uppercase()),
                    None => "terminate/ALL/execute".to_string(),
                };
                self.submit(&text, &command, properties).await
            }
            Statement::Explain(explained) => self.explain(explained, &text).await,
            Statement::Query(_) | Statement::Print { .. } => Err(KsqlError::statement(
                "The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* SELECT",
            )),
            Statement::CreateSource(create) => {
                // Checked first: the topic is created only for a statement that will apply.
                let mut store = self.metastore();
                let outcome = store.apply(statement, &text)?;
                let name = name_of(&create.name);
                if !outcome.message.contains("already exists") {
                    if let Some(source) = store.source(&name) {
                        self.ensure_topic(source, create.kind).await?;
                    }
                }
                self.submit(&text, &command_id(create.kind, &name, "create"), properties)
                    .await
            }
            Statement::CreateType { name, .. } | Statement::DropType { name, .. } => {
                self.metastore().apply(statement, &text)?;
                let action = if matches!(statement, Statement::CreateType { .. }) {
                    "create"
                } else {
                    "drop"
                };
                self.submit(
                    &text,
                    &format!("type/`{}`/{action}", name_of(name)),
                    properties,
                )
                .await
            }
            Statement::Alter { kind, name, .. } => {
                self.metastore().apply(statement, &text)?;
                self.submit(&text, &command_id(*kind, &name_of(name), "alter"), properties)
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
                store.apply(statement, &text)?;
                let status = self
                    .submit(&text, &command_id(*kind, &name, "drop"), properties)
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
            Statement::DescribeFunction(name) => describe_function(&name_of(name), &text),
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

    /// Whether the source's topic must be created: an existing topic must have the
    /// partitions `PARTITIONS` asks for; a missing one needs `PARTITIONS` (ksqlDB's rules).
    async fn topic_to_create(&self, source: &DataSource, kind: SourceKind) -> Result<bool> {
        let props: &SourceProperties = &source.properties;
        match (self.existing_topic(&props.topic).await?, props.partitions) {
            (Some(topic), Some(wanted)) if topic.partitions.len() != wanted as usize => {
                Err(partitions_differ(&props.topic, wanted, topic.partitions.len()))
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

    /// Topic `name` as the cluster describes it, if it exists.
    async fn existing_topic(
        &self,
        name: &str,
    ) -> Result<Option<sluice_log::client::admin::TopicDescription>> {
        match self.client.describe_topics(Some(&[name.to_string()])).await {
            Ok(topics) => Ok(topics
                .into_iter()
                .find(|t| t.name == name && !t.partitions.is_empty())),
            Err(err) if err.response_error() == ResponseError::UnknownTopicOrPartition => Ok(None),
            Err(err) => Err(kafka(err)),
        }
    }

    /// Creates topic `name` (-1: the broker's default); one that exists already is fine
    /// (another server of the service may have made it first).
    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replicas: Option<u16>,
        configs: BTreeMap<String, String>,
    ) -> Result<()> {
        let created = self
            .client
            .create_topics(
                &[NewTopic {
                    name: name.to_string(),
                    partitions,
                    replication_factor: replicas.and_then(|r| i16::try_from(r).ok()).unwrap_or(-1),
                    configs,
                }],
                false,
            )
            .await
            .map_err(kafka)?;
        for (topic, result) in created {
            match result {
                Ok(()) => {}
                Err(e) if e.response_error() == ResponseError::TopicAlreadyExists => {}
                Err(e) => {
                    return Err(KsqlError::statement(format!(
                        "Could not create the topic {topic}: {e}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// `EXPLAIN query_id` or `EXPLAIN statement`: ksqlDB's `queryDescription`, its
    /// `executionPlan` DataFusion's optimised plan and its `topology` the Streams topology
    /// the query runs as.
    async fn explain(&self, explained: &crate::parser::ast::Explained, text: &str) -> Result<Json> {
        use crate::parser::ast::Explained;
        let store = self.metastore();
        let (id, statement_text, statement, running) = match explained {
            Explained::QueryId(id) => {
                let id = id.to_ascii_uppercase();
                let info = store.query(&id).ok_or_else(|| {
                    KsqlError::statement(format!("Query with id:{id} does not exist, use SHOW QUERIES to view the full set of running queries."))
                })?;
                let parsed = crate::parser::parse_one(&info.sql)?;
                (id, info.sql.clone(), parsed.statement, true)
            }
            Explained::Statement(statement) => (
                String::new(),
                text.to_string(),
                (**statement).clone(),
                false,
            ),
        };
        let persistent = match &statement {
            Statement::CreateAsSelect(create) => {
                // The plan against the metastore before the sink existed.
                let mut before = store.clone();
                if running {
                    before.forget_sink(&name_of(&create.name));
                }
                Some(prepare_create_as_select(
                    create,
                    &statement_text,
                    &before,
                    -1,
                )?)
            }
            Statement::InsertSelect {
                target,
                properties,
                query,
            } => Some(prepare_insert_select(
                target,
                properties,
                query,
                &statement_text,
                &store,
                -1,
            )?),
            _ => None,
        };
        let (planned, topology, sinks, query_type) = match (&statement, persistent) {
            (_, Some(prepared)) => {
                let topology = prepared.topology()?;
                (
                    prepared.planned,
                    topology,
                    vec![prepared.sink.name],
                    "PERSISTENT",
                )
            }
            (Statement::Query(query), None) => {
                let planned = crate::plan::plan_query(query, &store)?;
                let compiled = Arc::new(crate::exec::CompiledQuery::compile(&planned, &store)?);
                let (tx, _rx) = tokio::sync::mpsc::channel(1);
                let topology =
                    crate::exec::topology::push(compiled, tx, Arc::default(), Arc::default())?;
                (planned, topology, Vec::new(), "PUSH")
            }
            (other, None) => {
                return Err(KsqlError::statement(format!(
                    "EXPLAIN takes a query or a query id, not {}",
                    statement_name(other)
                )))
            }
        };
        let state = match (running, self.queries.status(&id).await) {
            (true, Some(status)) => json!(status.state),
            _ => Json::Null,
        };
        Ok(json!({
            "@type": "queryDescription",
            "statementText": text,
            "queryDescription": {
                "id": id,
                "statementText": statement_text,
                "windowType": null,
                "fields": planned.columns.iter().map(|c| {
                    let mut field = json!({"name": c.name, "schema": schema_info(&c.ty)});
                    if c.key {
                        field["type"] = json!("KEY");
                    }
                    field
                }).collect::<Vec<_>>(),
                "sources": planned.source_names(),
                "sinks": sinks,
                "topology": topology.describe(),
                "executionPlan": planned.plan.display_indent().to_string(),
                "overriddenProperties": {},
                "ksqlHostQueryStatus": {},
                "queryType": query_type,
                "queryErrors": [],
                "tasksMetadata": [],
                "state": state,
            },
            "warnings": [],
        }))
    }

    /// Writes the record of `INSERT INTO target [(columns)] VALUES (values)` (acks=all).
    async fn insert_values(
        &self,
        target: &crate::parser::ast::Ident,
        columns: &[crate::parser::ast::Ident],
        values: &[crate::parser::ast::Expr],
    ) -> Result<()> {
        let name = name_of(target);
        let store = self.metastore();
        let source = insert_target(&store, &name)?;
        let ((key, value), timestamp) =
            crate::exec::insert_record(source, columns, values, &store)?;
        self.write_insert(source, (key, value), timestamp).await
    }

    /// Checks that `target` takes inserts (`/inserts-stream`'s first line): its name as
    /// the metastore has it.
    pub fn insert_target(&self, target: &str) -> Result<String> {
        let store = self.metastore();
        let name = name_of(&crate::parser::ast::Ident::new(target));
        let source = insert_target(&store, &name)?;
        if source.properties.window.is_some() {
            return Err(KsqlError::statement(
                "Cannot insert values into windowed stream/table",
            ));
        }
        Ok(source.name.clone())
    }

    /// Inserts the JSON object `row` into `target` (a row of `/inserts-stream`), once it
    /// is acknowledged by every in-sync replica.
    pub async fn insert_json(&self, target: &str, row: &[u8]) -> Result<()> {
        let store = self.metastore();
        let source = insert_target(&store, target)?;
        let record = crate::exec::json_insert(source, row, &store)?;
        self.write_insert(source, record, None).await
    }

    async fn write_insert(
        &self,
        source: &DataSource,
        (key, value): crate::exec::EncodedRecord,
        timestamp: Option<i64>,
    ) -> Result<()> {
        let name = &source.name;
        let failed = |e: sluice_log::Error| {
            KsqlError::statement(format!("Failed to insert values into '{name}': {e}"))
        };
        let delivery = self
            .producer
            .send(sluice_log::client::producer::ProducerRecord {
                topic: source.properties.topic.clone().into(),
                key,
                value,
                timestamp,
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        delivery.await.map_err(failed)?;
        Ok(())
    }

    /// Creates the topic of a `CREATE ... AS SELECT`'s sink unless it exists: with
    /// `PARTITIONS` and `REPLICAS` if given, else as many partitions as the source's topic
    /// (ksqlDB's rule); an existing topic must have the partitions asked for.
    async fn ensure_sink_topic(&self, sink: &DataSource, source_topic: &str) -> Result<()> {
        let props = &sink.properties;
        if let Some(topic) = self.existing_topic(&props.topic).await? {
            return match props.partitions {
                Some(wanted) if topic.partitions.len() != wanted as usize => Err(
                    partitions_differ(&props.topic, wanted, topic.partitions.len()),
                ),
                _ => Ok(()),
            };
        }
        let partitions = match props.partitions {
            Some(p) => i32::try_from(p).unwrap_or(i32::MAX),
            None => self
                .existing_topic(source_topic)
                .await?
                .map(|t| t.partitions.len() as i32)
                .ok_or_else(|| {
                    KsqlError::statement(format!("Kafka topic does not exist: {source_topic}"))
                })?,
        };
        self.create_topic(&props.topic, partitions, props.replicas, BTreeMap::new())
            .await
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
        let partitions = props
            .partitions
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(-1);
        self.create_topic(&props.topic, partitions, props.replicas, configs)
            .await
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
            Statement::CreateAsSelect(create) => {
                let prepared = prepare_create_as_select(create, &text, sandbox, -1)?;
                sandbox.add_query_with_sink(prepared.sink, prepared.info, create.or_replace)?;
            }
            Statement::InsertSelect {
                target,
                properties,
                query,
            } => {
                let prepared =
                    prepare_insert_select(target, properties, query, &text, sandbox, -1)?;
                sandbox.add_query(prepared.info)?;
            }
            Statement::Terminate(Some(id)) => {
                sandbox.terminate(&id.to_ascii_uppercase())?;
            }
            Statement::Terminate(None) => {
                let ids: Vec<String> = sandbox.queries().map(|q| q.id.clone()).collect();
                for id in ids {
                    sandbox.terminate(&id)?;
                }
            }
            Statement::Set { name, value } => check_property(name, value)?,
            // The values are checked too, so that a request whose last insert is bad
            // writes none of its records.
            Statement::InsertValues {
                target,
                columns,
                values,
            } => {
                let source = insert_target(sandbox, &name_of(target))?;
                crate::exec::insert_record(source, columns, values, sandbox)?;
            }
            Statement::Show { .. }
            | Statement::Describe { .. }
            | Statement::DescribeFunction(_)
            | Statement::Explain(_)
            | Statement::Unset(_)
            | Statement::Query(_)
            | Statement::Define { .. }
            | Statement::Undefine(_)
            | Statement::Print { .. } => {}
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
            Listing::Queries => {
                let store = self.metastore();
                let mut queries = Vec::new();
                for query in store.queries() {
                    let status = self.queries.status(&query.id).await;
                    let state = status.as_ref().map_or("PENDING", |s| s.state);
                    let sink_topic = store
                        .source(&query.sink)
                        .map(|s| s.properties.topic.clone())
                        .unwrap_or_default();
                    queries.push(json!({
                        "queryString": query.sql,
                        "sinks": [query.sink],
                        "sinkKafkaTopics": [sink_topic],
                        "id": query.id,
                        "statusCount": {state: 1},
                        "queryType": "PERSISTENT",
                        "state": state,
                    }));
                }
                json!({"@type": "queries", "statementText": text, "queries": queries, "warnings": []})
            }
            Listing::Functions => {
                let functions: Vec<Json> = crate::plan::functions::Functions::get()
                    .infos()
                    .map(|f| json!({"name": f.name, "category": f.category, "type": f.kind.name()}))
                    .collect();
                json!({"@type": "function_names", "statementText": text, "functions": functions, "warnings": []})
            }
            other => {
                let name = match other {
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

/// ksqlDB's error for an existing topic without the partitions `PARTITIONS` asks for.
fn partitions_differ(topic: &str, wanted: u32, has: usize) -> KsqlError {
    KsqlError::statement(format!(
        "A Kafka topic with the name '{topic}' already exists, with different partition/replica configuration than required. KSQL expects {wanted} partitions (topic has {has})."
    ))
}

/// The source `INSERT INTO name` writes: it must exist and not be read-only.
fn insert_target<'a>(store: &'a MetaStore, name: &str) -> Result<&'a DataSource> {
    let source = store.source(name).ok_or_else(|| {
        KsqlError::statement(format!(
            "Cannot insert values into an unknown stream/table: {name}"
        ))
    })?;
    if source.read_only {
        return Err(KsqlError::statement(format!(
            "Cannot insert values into read-only {}: {name}",
            source.kind.to_string().to_ascii_lowercase()
        )));
    }
    Ok(source)
}

/// Whether `SET name = value` sets a property queries take.
fn check_property(name: &str, value: &str) -> Result<()> {
    let properties = [(name.to_string(), Json::String(value.to_string()))]
        .into_iter()
        .collect();
    crate::queries::streams_config("check", &properties).map(|_| ())
}

/// `DESCRIBE FUNCTION name`: ksqlDB's `describe_function` entity (each signature's
/// parameters, unnamed, and result type).
fn describe_function(name: &str, text: &str) -> Result<Json> {
    let functions = crate::plan::functions::Functions::get();
    let info = functions.info(name).ok_or_else(|| {
        KsqlError::statement(format!("Can't find any functions with the name '{name}'"))
    })?;
    let variations: Vec<Json> = functions
        .variations(name)
        .into_iter()
        .map(|v| {
            let last = v.args.len().saturating_sub(1);
            json!({
                "arguments": v.args.iter().enumerate().map(|(i, ty)| json!({
                    "name": "",
                    "type": ty,
                    "description": "",
                    "isVariadic": v.variadic && i == last,
                })).collect::<Vec<_>>(),
                "returnType": v.returns,
                // The overview says what it does; a signature adds nothing to it.
                "description": "",
            })
        })
        .collect();
    Ok(json!({
        "@type": "describe_function",
        "statementText": text,
        "name": info.name,
        "description": info.description,
        "author": "Sluice",
        "version": env!("CARGO_PKG_VERSION"),
        "path": "internal",
        "functions": variations,
        "type": info.kind.name(),
        "warnings": [],
    }))
}

fn not_implemented(statement: &Statement) -> KsqlError {
    KsqlError::statement(format!(
        "{} statements are not implemented in Sluice yet (issue 18 is under way: DDL, CREATE STREAM ... AS SELECT, TERMINATE, push queries, SHOW, LIST and DESCRIBE run so far)",
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
        Statement::Query(_) => "Query",
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
