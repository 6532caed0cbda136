//! Persistent and push queries: planned, compiled and run as Sluice Streams applications.
//!
//! A persistent query (`CREATE STREAM ... AS SELECT`) is the streams application
//! `_confluent-ksql-<service id>query_<query id>`: every server of the service runs it, and
//! the group shares its partitions; it goes on from its committed offsets after a restart.
//! A push query (`SELECT ... EMIT CHANGES`) is a transient application of its own whose rows
//! go to the client that asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value as Json};
use sluice_log::client::Client;
use sluice_streams::{KafkaStreams, StreamsConfig};

use crate::error::{KsqlError, Result};
use crate::exec::topology::QueryCounters;
use crate::exec::{CompiledQuery, SinkEncoders};
use crate::format::SerdeOptions;
use crate::metastore::{
    name_of, Column, DataSource, Format, MetaStore, QueryInfo, SourceProperties,
};
use crate::parser::ast::{ColumnConstraint, CreateAsSelect, PropertyValue, SourceKind};
use crate::plan::{plan_query, PlannedQuery};

/// A persistent query ready to run: what it writes and how.
pub struct PreparedQuery {
    /// The sink, as the metastore will hold it.
    pub sink: DataSource,
    /// The query's metadata.
    pub info: QueryInfo,
    /// The compiled query.
    pub compiled: Arc<CompiledQuery>,
    /// DataFusion's plan, for `EXPLAIN`.
    pub planned: PlannedQuery,
    /// A `CREATE SOURCE TABLE`'s query: it keeps the table's records for pull queries and
    /// writes nothing (its sink is the table itself).
    pub materializes_source: bool,
}

impl PreparedQuery {
    /// `planned`, writing into `sink`, compiled; the sink's encoders checked to hold its
    /// columns now rather than at the first row.
    fn new(
        sink: DataSource,
        info: QueryInfo,
        planned: PlannedQuery,
        metastore: &MetaStore,
    ) -> Result<PreparedQuery> {
        sink_encoders(&sink, &planned)?;
        let compiled =
            Arc::new(CompiledQuery::compile(&planned, metastore)?.with_sink_timestamp(&sink)?);
        Ok(PreparedQuery {
            sink,
            info,
            compiled,
            planned,
            materializes_source: false,
        })
    }

    /// The query of `CREATE SOURCE TABLE` `name` (at command `offset`): ksqlDB's
    /// `CST_<NAME>_<offset>`, keeping the table's records by key for pull queries.
    pub fn source_table(
        name: &str,
        text: &str,
        metastore: &MetaStore,
        offset: i64,
    ) -> Result<PreparedQuery> {
        let table = metastore
            .source(name)
            .ok_or_else(|| KsqlError::statement(format!("{name} does not exist.")))?
            .clone();
        let query = crate::parser::parse_one(&format!("SELECT * FROM {};", quoted_name(name)))?;
        let crate::parser::ast::Statement::Query(query) = query.statement else {
            return Err(KsqlError::statement("cannot plan the source table's query"));
        };
        let planned = plan_query(&query, metastore)?;
        if table.properties.window.is_some() {
            return Err(crate::plan::not_yet(
                "CREATE SOURCE TABLE of a windowed topic",
            ));
        }
        let compiled = Arc::new(CompiledQuery::compile(&planned, metastore)?);
        Ok(PreparedQuery {
            info: QueryInfo {
                id: format!("CST_{name}_{offset}"),
                sql: text.to_string(),
                sink: name.to_string(),
                sources: vec![name.to_string()],
            },
            sink: table,
            compiled,
            planned,
            materializes_source: true,
        })
    }

    /// Its topology, for `EXPLAIN` (counting nothing).
    pub fn topology(&self) -> Result<sluice_streams::Topology> {
        if self.materializes_source {
            return crate::exec::topology::source_table(&self.sink.properties.topic);
        }
        crate::exec::topology::persistent(
            self.compiled.clone(),
            sink_encoders(&self.sink, &self.planned)?,
            (
                &self.sink.properties.topic,
                self.sink.kind == SourceKind::Table,
            ),
            Arc::default(),
        )
    }
}

/// Plans `CREATE STREAM ... AS SELECT` against `metastore`; `sequence` numbers its id
/// (the command's offset: every server names it alike).
pub fn prepare_create_as_select(
    create: &CreateAsSelect,
    text: &str,
    metastore: &MetaStore,
    sequence: i64,
) -> Result<PreparedQuery> {
    let sink_name = name_of(&create.name);
    let planned = plan_query(&create.query, metastore)?;
    refuse_windowed_sources(&planned, metastore)?;
    // The sink's TIMESTAMP column first, as ksqlDB checks it.
    let property = |name: &str| match create.properties.get(name) {
        Some(crate::parser::ast::PropertyValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    crate::exec::SinkTimestamp::of(
        &planned.columns,
        property("TIMESTAMP"),
        property("TIMESTAMP_FORMAT"),
    )?;
    let source = &planned.source;
    if create.query.emit == Some(crate::parser::ast::Emit::Final) && planned.window.is_none() {
        return Err(KsqlError::statement(
            "EMIT FINAL is only supported for windowed aggregations.",
        ));
    }
    let produces = if planned.grouped {
        SourceKind::Table
    } else {
        source.kind
    };
    match (create.kind, produces) {
        (SourceKind::Stream, SourceKind::Stream) | (SourceKind::Table, SourceKind::Table) => {}
        (SourceKind::Stream, SourceKind::Table) => {
            return Err(KsqlError::statement(
                "Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead.",
            ))
        }
        (SourceKind::Table, SourceKind::Stream) => {
            return Err(KsqlError::statement(
                "Invalid result type. Your SELECT query produces a STREAM. Please use CREATE STREAM AS SELECT statement instead.",
            ))
        }
    }
    if planned.grouped && source.properties.value_format == Format::Kafka {
        return Err(KsqlError::statement(format!(
            "Source(s) {} are using the 'KAFKA' value format. This format does not yet support GROUP BY.",
            source.name
        )));
    }
    if planned.grouped && !planned.missing_keys.is_empty() {
        let missing = &planned.missing_keys;
        let (keys, expressions) = if missing.len() == 1 {
            ("Key", "expression")
        } else {
            ("Keys", "expressions")
        };
        return Err(KsqlError::statement(format!(
            "{keys} missing from projection (ie, SELECT).\nThe query used to build `{sink_name}` must include the grouping {expressions} {} in its projection (eg, SELECT {}...).",
            and_list(missing),
            missing.join(", ")
        )));
    }
    if let (false, Some(join)) = (planned.missing_keys.is_empty(), &planned.join) {
        if join.foreign_key {
            let (column, columns) = if planned.missing_keys.len() == 1 {
                ("column", "column")
            } else {
                ("columns", "columns")
            };
            let missing: Vec<String> = planned
                .missing_keys
                .iter()
                .map(|k| format!("`{k}`"))
                .collect();
            return Err(KsqlError::statement(format!(
                "Primary key {column} missing in projection. For foreign-key table-table joins, the projection must include all primary key columns from the left input table (`{}`). Missing {columns}: {}.",
                planned.source.name,
                missing.join(", ")
            )));
        }
    }
    if let (Some(missing), Some(_)) = (planned.missing_keys.first(), &planned.join) {
        if missing == "ROWKEY" {
            return Err(KsqlError::statement(format!(
                "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{sink_name}` must include the join expression ROWKEY in its projection (eg, SELECT ROWKEY...).\nROWKEY was added as a synthetic key column because the join criteria did not match any source column. This expression must be included in the projection and may be aliased."
            )));
        }
        let first = missing
            .split(" or ")
            .next()
            .and_then(|m| m.split(", ").next())
            .unwrap_or(missing);
        let expressions = if missing.contains(" or ") {
            "expressions"
        } else {
            "expression"
        };
        return Err(KsqlError::statement(format!(
            "Key missing from projection (ie, SELECT).\nThe query used to build `{sink_name}` must include the join {expressions} {missing} in its projection (eg, SELECT {first}...)."
        )));
    }
    if let Some(missing) = planned.missing_keys.first() {
        let what = if planned.partitioned {
            "partitioning expression"
        } else {
            "key column"
        };
        return Err(KsqlError::statement(format!(
            "Key missing from projection (ie, SELECT).\nThe query used to build `{sink_name}` must include the {what} {missing} in its projection (eg, SELECT {missing}...)."
        )));
    }
    if planned.grouped && planned.columns.iter().all(|c| c.key) {
        return Err(KsqlError::statement(
            "The projection contains no value columns.",
        ));
    }
    if create.query.limit.is_some() {
        return Err(KsqlError::statement(
            "CREATE STREAM AS SELECT statements don't support LIMIT clause.",
        ));
    }
    for not_allowed in ["WINDOW_TYPE", "WINDOW_SIZE"] {
        if create.properties.get(not_allowed).is_some() {
            return Err(KsqlError::statement(format!(
                "Invalid config variable(s) in the WITH clause: {not_allowed}"
            )));
        }
    }
    // The sink's formats default to the source's; a key with no columns is written as NONE.
    let has_key = planned.columns.iter().any(|c| c.key);
    let mut with = create.properties.clone();
    let given = |name: &str| create.properties.get(name).is_some();
    if !given("FORMAT") {
        if !given("VALUE_FORMAT") {
            with.0.push((
                "VALUE_FORMAT".into(),
                PropertyValue::String(source.properties.value_format.name().into()),
            ));
        }
        if !given("KEY_FORMAT") {
            let key_format = match (has_key, source.properties.key_format) {
                (false, _) => Format::None,
                // A stream without a key grouped into a table: ksqlDB's default key format.
                (true, Format::None) => Format::Kafka,
                (true, format) => format,
            };
            with.0.push((
                "KEY_FORMAT".into(),
                PropertyValue::String(key_format.name().into()),
            ));
        }
    }
    let mut properties = SourceProperties::check(&with, Some(&sink_name))?;
    // A windowed aggregation's table is windowed: its keys end with their windows.
    properties.window = planned
        .window
        .as_ref()
        .map(|w| crate::exec::aggregate::Windowing::of(w, planned.emit_final).info());
    let mut columns: Vec<Column> = Vec::new();
    for key in [true, false] {
        for c in planned.columns.iter().filter(|c| c.key == key) {
            columns.push(Column {
                name: c.name.clone(),
                ty: c.ty.clone(),
                constraint: match (key, create.kind) {
                    (false, _) => ColumnConstraint::None,
                    (true, SourceKind::Stream) => ColumnConstraint::Key,
                    (true, SourceKind::Table) => ColumnConstraint::PrimaryKey,
                },
            });
        }
    }
    let key_columns: Vec<&Column> = columns.iter().filter(|c| c.is_key()).collect();
    if properties.key_format == Format::Kafka && key_columns.len() > 1 {
        let schema = key_columns
            .iter()
            .map(|c| format!("`{}` {} KEY", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(KsqlError::statement(format!(
            "Key format does not support schema.\nformat: KAFKA\nschema: Persistence{{columns=[{schema}], features=[]}}\nreason: The 'KAFKA' format only supports a single field. Got: [{schema}]"
        )));
    }
    if properties.key_format == Format::None && has_key {
        return Err(KsqlError::statement(
            "The 'NONE' format can only be used when no columns are defined.",
        ));
    }
    let sink = DataSource {
        name: sink_name.clone(),
        kind: create.kind,
        read_only: false,
        columns,
        properties,
        sql: text.to_string(),
    };
    let info = QueryInfo {
        id: match create.kind {
            SourceKind::Stream => format!("CSAS_{sink_name}_{sequence}"),
            SourceKind::Table => format!("CTAS_{sink_name}_{sequence}"),
        },
        sql: text.to_string(),
        sink: sink_name,
        sources: planned.source_names(),
    };
    PreparedQuery::new(sink, info, planned, metastore)
}

/// Plans `INSERT INTO target SELECT ...` against `metastore`: a persistent query writing
/// into the existing stream `target`, whose columns the query's result must match; its id
/// is the `QUERY_ID` property or `INSERTQUERY_<sequence>`.
pub fn prepare_insert_select(
    target: &crate::parser::ast::Ident,
    properties: &crate::parser::ast::Properties,
    query: &crate::parser::ast::Query,
    text: &str,
    metastore: &MetaStore,
    sequence: i64,
) -> Result<PreparedQuery> {
    let target_name = name_of(target);
    let sink = metastore
        .source(&target_name)
        .ok_or_else(|| KsqlError::statement(format!("{target_name} does not exist.")))?
        .clone();
    if sink.kind == SourceKind::Table {
        return Err(KsqlError::statement(format!(
            "INSERT INTO can only be used to insert into a stream. {target_name} is a table."
        )));
    }
    if sink.read_only {
        return Err(KsqlError::statement(format!(
            "Cannot insert into read-only stream: {target_name}"
        )));
    }
    let planned = plan_query(query, metastore)?;
    refuse_windowed_sources(&planned, metastore)?;
    if planned.grouped || planned.source.kind == SourceKind::Table {
        return Err(KsqlError::statement(format!(
            "Incompatible data sink and query result. Data sink ({target_name}) type is KSTREAM but select query result is KTABLE."
        )));
    }
    if planned.source.name == target_name {
        return Err(KsqlError::statement(format!(
            "Cannot insert into {target_name} from {target_name}: a query cannot write the stream it reads"
        )));
    }
    if let Some(missing) = planned.missing_keys.first() {
        return Err(KsqlError::statement(format!(
            "Key missing from projection (ie, SELECT).\nThe query used to build `{target_name}` must include the key column {missing} in its projection (eg, SELECT {missing}...)."
        )));
    }
    if query.limit.is_some() {
        return Err(KsqlError::statement(
            "INSERT INTO statements don't support LIMIT clause.",
        ));
    }
    // The result's columns, key first, against the sink's (without its header columns).
    let describe = |columns: &mut dyn Iterator<Item = (&str, String, bool)>| {
        columns
            .map(|(name, ty, key)| format!("`{name}` {ty}{}", if key { " KEY" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut result: Vec<&crate::plan::OutputColumn> =
        planned.columns.iter().filter(|c| c.key).collect();
    result.extend(planned.columns.iter().filter(|c| !c.key));
    let result_schema = describe(
        &mut result
            .iter()
            .map(|c| (c.name.as_str(), c.ty.to_string(), c.key)),
    );
    let sink_columns = sink
        .columns
        .iter()
        .filter(|c| !c.is_header())
        .map(|c| {
            Ok((
                c.name.as_str(),
                metastore.resolve(&c.ty)?.to_string(),
                c.is_key(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let sink_schema = describe(&mut sink_columns.iter().map(|(n, t, k)| (*n, t.clone(), *k)));
    if result_schema != sink_schema {
        return Err(KsqlError::statement(format!(
            "Incompatible schema between results and sink.\nResult schema is {result_schema}\nSink schema is {sink_schema}"
        )));
    }
    let id = match properties.get("QUERY_ID") {
        Some(PropertyValue::String(id)) => id.to_ascii_uppercase(),
        Some(other) => {
            return Err(KsqlError::statement(format!(
                "Invalid value for QUERY_ID: {other}"
            )))
        }
        None => format!("INSERTQUERY_{sequence}"),
    };
    let info = QueryInfo {
        id,
        sql: text.to_string(),
        sink: target_name,
        sources: planned.source_names(),
    };
    PreparedQuery::new(sink, info, planned, metastore)
}

/// `A, B and C`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The encoders writing `planned`'s rows into `sink`.
pub fn sink_encoders(sink: &DataSource, planned: &PlannedQuery) -> Result<SinkEncoders> {
    let options = SerdeOptions {
        wrap_single_value: sink.properties.wrap_single_value.unwrap_or(true),
        delimiter: crate::exec::delimiter(sink.properties.value_delimiter.as_deref())?,
    };
    SinkEncoders::new(
        &planned.columns,
        sink.properties.key_format,
        sink.properties.value_format,
        options,
    )
}

/// The streams properties of a request or a command (`streamsProperties`), as a streams
/// configuration for `application_id`: `auto.offset.reset` (ksqlDB's default: `latest`),
/// Kafka Streams' own properties, and `ksql.` properties (not used yet) set aside.
pub fn streams_config(
    application_id: &str,
    properties: &Map<String, Json>,
) -> Result<StreamsConfig> {
    // Later settings win (a request's over the defaults).
    let mut props: BTreeMap<String, String> = [
        ("application.id".into(), application_id.into()),
        ("consumer.auto.offset.reset".into(), "latest".into()),
        // Rows show up within a commit interval at worst; ksqlDB's default is 2 s.
        ("commit.interval.ms".into(), "2000".into()),
        // Push queries and persistent queries skip records they cannot read.
        (
            "default.deserialization.exception.handler".into(),
            "LogAndContinueExceptionHandler".into(),
        ),
    ]
    .into_iter()
    .collect();
    for (name, value) in properties {
        let value = match value {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let name = name.strip_prefix("ksql.streams.").unwrap_or(name);
        match name {
            "auto.offset.reset" => {
                if value != "earliest" && value != "latest" {
                    return Err(KsqlError::statement(format!(
                        "Invalid value {value} for configuration auto.offset.reset: String must be one of: latest, earliest"
                    )));
                }
                props.insert("consumer.auto.offset.reset".into(), value);
            }
            "processing.guarantee"
            | "commit.interval.ms"
            | "num.stream.threads"
            | "cache.max.bytes.buffering"
            | "statestore.cache.max.bytes" => {
                props.insert(name.to_string(), value);
            }
            // ksqlDB's clients send properties Sluice does not use (ksqlDB's own, client
            // tuning): set aside, as ksqlDB sets aside what it does not know.
            other => {
                tracing::debug!(
                    property = other,
                    "a streams property Sluice's ksql does not use"
                );
            }
        }
    }
    StreamsConfig::from_props(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| KsqlError::statement(e.to_string()))
}

/// A persistent query this server runs.
struct RunningQuery {
    streams: Option<KafkaStreams>,
    /// What it runs (a pull query of its sink reads its stores through it).
    compiled: Arc<CompiledQuery>,
    counters: Arc<QueryCounters>,
    /// Why it is not running, if it failed.
    error: Option<String>,
}

/// The persistent queries this server runs.
pub struct QueryManager {
    client: Arc<Client>,
    service_id: String,
    running: tokio::sync::Mutex<BTreeMap<String, RunningQuery>>,
    /// Each query's counters, readable without waiting for a start or stop.
    counters: Mutex<BTreeMap<String, Arc<QueryCounters>>>,
}

/// A query's state as `SHOW QUERIES` reports it.
#[derive(Debug, Clone)]
pub struct QueryStatus {
    /// `RUNNING` or `ERROR`.
    pub state: &'static str,
    /// Records read, rows written, records skipped.
    pub counts: (u64, u64, u64),
}

impl QueryManager {
    /// A manager running queries on `client`'s cluster for `service_id`.
    pub fn new(client: Arc<Client>, service_id: &str) -> QueryManager {
        QueryManager {
            client,
            service_id: service_id.to_string(),
            running: tokio::sync::Mutex::new(BTreeMap::new()),
            counters: Mutex::new(BTreeMap::new()),
        }
    }

    /// The application id of persistent query `id` (ksqlDB's).
    pub fn application_id(&self, id: &str) -> String {
        format!("_confluent-ksql-{}query_{id}", self.service_id)
    }

    /// Starts persistent query `prepared` with the command's `properties`.
    pub async fn start(&self, prepared: &PreparedQuery, properties: &Map<String, Json>) {
        let id = prepared.info.id.clone();
        let counters = Arc::new(QueryCounters::default());
        self.counters.lock().insert(id.clone(), counters.clone());
        let started = async {
            let config = streams_config(&self.application_id(&id), properties)?;
            if prepared.materializes_source {
                let topology =
                    crate::exec::topology::source_table(&prepared.sink.properties.topic)?;
                return KafkaStreams::start(Arc::new(topology), config, self.client.clone())
                    .await
                    .map_err(|e| KsqlError::statement(e.to_string()));
            }
            let encoders = sink_encoders(&prepared.sink, &prepared.planned)?;
            let topology = crate::exec::topology::persistent(
                prepared.compiled.clone(),
                encoders,
                (
                    &prepared.sink.properties.topic,
                    prepared.sink.kind == SourceKind::Table,
                ),
                counters.clone(),
            )?;
            KafkaStreams::start(Arc::new(topology), config, self.client.clone())
                .await
                .map_err(|e| KsqlError::statement(e.to_string()))
        }
        .await;
        let running = match started {
            Ok(streams) => {
                tracing::info!(query = %id, "ksql: persistent query running");
                RunningQuery {
                    streams: Some(streams),
                    compiled: prepared.compiled.clone(),
                    counters,
                    error: None,
                }
            }
            Err(err) => {
                tracing::error!(query = %id, %err, "ksql: persistent query failed to start");
                RunningQuery {
                    streams: None,
                    compiled: prepared.compiled.clone(),
                    counters,
                    error: Some(err.to_string()),
                }
            }
        };
        self.running.lock().await.insert(id, running);
    }

    /// Stops persistent query `id` (its consumer group keeps its offsets).
    pub async fn stop(&self, id: &str) {
        let query = self.running.lock().await.remove(id);
        self.counters.lock().remove(id);
        if let Some(RunningQuery {
            streams: Some(streams),
            ..
        }) = query
        {
            if let Err(err) = streams.close().await {
                tracing::warn!(query = %id, %err, "ksql: the query's threads stopped with an error");
            }
        }
    }

    /// Stops every query (the server shutting down).
    pub async fn stop_all(&self) {
        let ids: Vec<String> = self.running.lock().await.keys().cloned().collect();
        for id in ids {
            self.stop(&id).await;
        }
    }

    /// `read(streams, compiled)` of persistent query `id`, running here: how pull queries
    /// read the stores of the query that materialises their table.
    pub async fn read_state<R>(
        &self,
        id: &str,
        read: impl FnOnce(&KafkaStreams, &CompiledQuery) -> Result<R>,
    ) -> Result<R> {
        let running = self.running.lock().await;
        match running.get(id) {
            Some(RunningQuery {
                streams: Some(streams),
                compiled,
                ..
            }) if !streams.has_failed_thread() => read(streams, compiled),
            Some(RunningQuery { error, .. }) => Err(KsqlError::statement(format!(
                "The query {id}, which materialises the table, is not running{}",
                error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ))),
            None => Err(KsqlError::statement(format!(
                "The query {id}, which materialises the table, does not run on this server"
            ))),
        }
    }

    /// The state of query `id`, if this server runs it.
    pub async fn status(&self, id: &str) -> Option<QueryStatus> {
        let running = self.running.lock().await;
        let query = running.get(id)?;
        let failed = query.error.is_some()
            || query
                .streams
                .as_ref()
                .is_some_and(|s| s.has_failed_thread());
        let c = &query.counters;
        use std::sync::atomic::Ordering::Relaxed;
        Some(QueryStatus {
            state: if failed { "ERROR" } else { "RUNNING" },
            counts: (
                c.records_in.load(Relaxed),
                c.rows_out.load(Relaxed),
                c.skipped.load(Relaxed),
            ),
        })
    }
}

/// A running push query (`SELECT ... EMIT CHANGES`): its rows as JSON arrays, until the
/// client goes, its `LIMIT` is reached or `/close-query` stops it.
pub struct PushQuery {
    /// Its id (`transient_<SOURCE>_<n>`).
    pub id: String,
    /// Its columns.
    pub columns: Vec<crate::plan::OutputColumn>,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// Each row, as a JSON array.
    pub rows: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    /// Set when `rows` was full: the client reads more slowly than rows come.
    overflow: Arc<std::sync::atomic::AtomicBool>,
    /// Fires when `/close-query` asks it to stop.
    pub closed: tokio::sync::oneshot::Receiver<()>,
    guard: PushGuard,
}

/// Stops a push query's application when the query is dropped (the client went away).
struct PushGuard {
    streams: Option<KafkaStreams>,
    client: Arc<Client>,
    application_id: String,
}

impl Drop for PushGuard {
    fn drop(&mut self) {
        if let Some(streams) = self.streams.take() {
            let (client, group) = (self.client.clone(), self.application_id.clone());
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(err) = streams.close().await {
                        tracing::debug!(%err, "ksql: a push query's threads stopped with an error");
                    }
                    // A transient query's group is of no further use.
                    let _ = client.delete_groups(&[group]).await;
                });
            }
        }
    }
}

impl PushQuery {
    /// The id of this push query.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The application running it.
    pub fn application_id(&self) -> &str {
        &self.guard.application_id
    }

    /// Why the query cannot go on, if it cannot: its stream thread stopped, or the client
    /// reads more slowly than rows come and the rows waiting filled the buffer.
    pub fn failure(&self) -> Option<String> {
        if self.overflow.load(std::sync::atomic::Ordering::Acquire) {
            return Some(format!(
                "The push query was stopped: {PUSH_BUFFER_ROWS} rows waited for the client, which reads them more slowly than they come"
            ));
        }
        match &self.guard.streams {
            Some(streams) if streams.has_failed_thread() => Some(
                "The push query was stopped: its stream thread failed (see the server's log)"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// How many rows a push query holds for a client that has not read them yet.
const PUSH_BUFFER_ROWS: usize = 100_000;

/// A persistent query reads no windowed table (ksqlDB's rule, in its words), nor yet a
/// windowed stream (its sink's windowed keys are not written yet).
fn refuse_windowed_sources(planned: &PlannedQuery, metastore: &MetaStore) -> Result<()> {
    for name in planned.source_names() {
        let Some(source) = metastore.source(&name) else {
            continue;
        };
        match (source.properties.window.is_some(), source.kind) {
            (true, SourceKind::Table) => {
                return Err(KsqlError::statement(
                    "KSQL does not support persistent queries on windowed tables.",
                ))
            }
            (true, SourceKind::Stream) => {
                return Err(crate::plan::not_yet(
                    "A persistent query of a windowed stream",
                ))
            }
            (false, _) => {}
        }
    }
    Ok(())
}

/// Each join's two sides have as many partitions (ksqlDB's check, in its words; a
/// foreign-key join's need not): a join's left side has its leftmost source's count, or
/// an n-way join's inner join the count of its right source, as ksqlDB counts them. A
/// topic that cannot be described is left to the query's own start-up check.
pub async fn check_join_partitions(client: &Client, planned: &PlannedQuery) -> Result<()> {
    let Some(join) = &planned.join else {
        return Ok(());
    };
    let mut levels = Vec::new();
    let mut at = Some(join);
    while let Some(level) = at {
        levels.push(level);
        at = level.inner.as_deref();
    }
    let partitions = |topic: String| async move {
        client
            .topic(&topic, false)
            .await
            .ok()
            .map(|metadata| metadata.leaders.len())
            .filter(|&n| n > 0)
    };
    let leftmost = &planned.source.name;
    let mut left = partitions(planned.source.properties.topic.clone()).await;
    for level in levels.into_iter().rev() {
        let right = partitions(level.right.properties.topic.clone()).await;
        if let (false, Some(l), Some(r)) = (level.foreign_key, left, right) {
            if l != r {
                let name = &level.right.name;
                return Err(KsqlError::statement(format!(
                    "Can't join `{leftmost}` with `{name}` since the number of partitions don't match. `{leftmost}` partitions = {l}; `{name}` partitions = {r}. Please repartition either one so that the number of partitions match."
                )));
            }
        }
        left = right;
    }
    Ok(())
}

/// How long a push query may take to get its partitions.
const PUSH_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts the push query `query` (already checked to be `EMIT CHANGES`) on `client`.
pub async fn start_push(
    client: Arc<Client>,
    service_id: &str,
    query: &crate::parser::ast::Query,
    metastore: &MetaStore,
    properties: &Map<String, Json>,
    closed: tokio::sync::oneshot::Receiver<()>,
) -> Result<PushQuery> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let planned = plan_query(query, metastore)?;
    check_join_partitions(&client, &planned).await?;
    let compiled = Arc::new(CompiledQuery::compile(&planned, metastore)?);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("transient_{}_{millis}{n}", planned.source.name);
    let application_id = format!("_confluent-ksql-{service_id}{id}");
    let config = streams_config(&application_id, properties)?;
    let (tx, rows) = tokio::sync::mpsc::channel(PUSH_BUFFER_ROWS);
    let overflow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counters = Arc::new(QueryCounters::default());
    let topology = crate::exec::topology::push(compiled, tx, overflow.clone(), counters)?;
    let streams = KafkaStreams::start(Arc::new(topology), config, client.clone())
        .await
        .map_err(|e| KsqlError::statement(e.to_string()))?;
    let guard = PushGuard {
        streams: Some(streams),
        client,
        application_id,
    };
    // The query answers once it reads its partitions, so that a record written after the
    // answer is in its rows even from `latest` (a new group's first rebalance waits out the
    // broker's initial rebalance delay, 3 s by default).
    let assigned = match &guard.streams {
        Some(streams) => streams.wait_until_assigned(PUSH_START_TIMEOUT).await,
        None => false,
    };
    if !assigned {
        return Err(KsqlError::statement(format!(
            "the push query did not get its partitions within {} s",
            PUSH_START_TIMEOUT.as_secs()
        )));
    }
    Ok(PushQuery {
        id,
        columns: planned.columns,
        limit: query.limit,
        rows,
        overflow,
        closed,
        guard,
    })
}

/// `name` as an identifier ksqlDB's parser reads back as it is (quoted).
fn quoted_name(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
