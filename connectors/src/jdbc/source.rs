//! The JDBC source: tables (or one query) read into topics, in Confluent's four modes.
//!
//! - `bulk`: the whole table every `poll.interval.ms`; no offsets.
//! - `incrementing`: rows whose `incrementing.column.name` is above the last one read.
//! - `timestamp`: rows whose first non-null `timestamp.column.name` is after the last one
//!   read and before the database's time minus `timestamp.delay.interval.ms`.
//! - `timestamp+incrementing`: both, exact even when rows share a timestamp.
//!
//! Each table's query runs until its result ends, `batch.max.rows` rows per poll, streamed
//! (the task does not hold a table in memory); then the table waits `poll.interval.ms`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use parking_lot::Mutex;
use sluice_connect::connector::{
    parse_list, BoxFuture, ConfigDef, ConfigKey, Connector, ConnectorContext, ExactlyOnceSupport,
    Importance, Props, SourceConnector, SourceRecord, SourceTask, SourceTaskContext, Validation,
};
use sluice_connect::data::{SchemaBuilder, SchemaRef, Struct, Value};
use sluice_connect::{ConnectError, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::database::{ConnectionConfig, Database, Dialect, Param, TableId};
use super::types::{Column, ColumnKind, NumericMapping, Target};
use super::{CONNECTION_ATTEMPTS, CONNECTION_BACKOFF_MS, CONNECTION_PASSWORD, CONNECTION_URL};
use super::{CONNECTION_USER, DIALECT_NAME};

const MODE: &str = "mode";
const INCREMENTING_COLUMN: &str = "incrementing.column.name";
const TIMESTAMP_COLUMNS: &str = "timestamp.column.name";
const TIMESTAMP_INITIAL: &str = "timestamp.initial";
const QUERY: &str = "query";
const QUERY_SUFFIX: &str = "query.suffix";
const TABLE_WHITELIST: &str = "table.whitelist";
const TABLE_BLACKLIST: &str = "table.blacklist";
const TABLE_INCLUDE: &str = "table.include.list";
const TABLE_EXCLUDE: &str = "table.exclude.list";
const TABLE_TYPES: &str = "table.types";
const SCHEMA_PATTERN: &str = "schema.pattern";
const TOPIC_PREFIX: &str = "topic.prefix";
const POLL_INTERVAL_MS: &str = "poll.interval.ms";
const BATCH_MAX_ROWS: &str = "batch.max.rows";
const TABLE_POLL_INTERVAL_MS: &str = "table.poll.interval.ms";
const NUMERIC_MAPPING: &str = "numeric.mapping";
const NUMERIC_PRECISION_MAPPING: &str = "numeric.precision.mapping";
const TIMESTAMP_DELAY_MS: &str = "timestamp.delay.interval.ms";
const QUOTE_IDENTIFIERS: &str = "quote.sql.identifiers";
const DB_TIMEZONE: &str = "db.timezone";
const VALIDATE_NON_NULL: &str = "validate.non.null";
/// The task config that lists a task's tables (Confluent's).
const TABLES: &str = "tables";

/// The partition keys and offset keys (Confluent's, protocol 1).
const PROTOCOL_KEY: &str = "protocol";
const TABLE_KEY: &str = "table";
const QUERY_KEY: &str = "query";
const INCREMENTING_KEY: &str = "incrementing";
const TIMESTAMP_KEY: &str = "timestamp";
const TIMESTAMP_NANOS_KEY: &str = "timestamp_nanos";

/// The name of the extra column that carries a row's timestamp at full precision.
const TIMESTAMP_ALIAS: &str = "__sluice_timestamp";

/// How long an idle poll waits before it returns no records (so the task can be stopped).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Which rows a query reads (Confluent's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything, every time.
    Bulk,
    /// Rows above the last incrementing id.
    Incrementing,
    /// Rows after the last timestamp.
    Timestamp,
    /// Rows after the last (timestamp, id).
    TimestampIncrementing,
}

impl Mode {
    fn parse(value: &str) -> Result<Mode> {
        Ok(match value.trim() {
            "bulk" => Mode::Bulk,
            "incrementing" => Mode::Incrementing,
            "timestamp" => Mode::Timestamp,
            "timestamp+incrementing" => Mode::TimestampIncrementing,
            other => {
                return Err(ConnectError::config(
                    MODE,
                    other,
                    "Invalid value; must be one of bulk, timestamp, incrementing, timestamp+incrementing",
                ))
            }
        })
    }

    fn incrementing(self) -> bool {
        matches!(self, Mode::Incrementing | Mode::TimestampIncrementing)
    }

    fn timestamp(self) -> bool {
        matches!(self, Mode::Timestamp | Mode::TimestampIncrementing)
    }
}

fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::string(CONNECTION_URL, "JDBC connection URL: jdbc:postgresql://host:5432/db, jdbc:mysql://host:3306/db, jdbc:mariadb://..., jdbc:sqlite:/path/file.db.")
                .required(),
        )
        .define(ConfigKey::string(CONNECTION_USER, "JDBC connection user."))
        .define(ConfigKey::new(CONNECTION_PASSWORD, sluice_connect::connector::ConfigType::Password, "JDBC connection password."))
        .define(ConfigKey::int(CONNECTION_ATTEMPTS, "Maximum number of attempts to connect.").default_value("3"))
        .define(ConfigKey::long(CONNECTION_BACKOFF_MS, "Backoff time in milliseconds between connection attempts.").default_value("10000"))
        .define(ConfigKey::string(DIALECT_NAME, "The dialect to use instead of the one the URL implies.").default_value(""))
        .define(ConfigKey::string(MODE, "The mode for updating a table each time it is polled: bulk, incrementing, timestamp, timestamp+incrementing.").required())
        .define(ConfigKey::string(INCREMENTING_COLUMN, "The name of the strictly incrementing column to use to detect new rows.").default_value(""))
        .define(ConfigKey::list(TIMESTAMP_COLUMNS, "Comma separated list of one or more timestamp columns to detect new or modified rows using the COALESCE SQL function.").default_value(""))
        .define(ConfigKey::long(TIMESTAMP_INITIAL, "The epoch timestamp (ms) used for initial queries in timestamp modes; -1 for the current time.").importance(Importance::Low))
        .define(ConfigKey::string(QUERY, "If specified, the query to perform to select new or updated rows.").default_value(""))
        .define(ConfigKey::string(QUERY_SUFFIX, "Suffix to append at the end of the generated query.").default_value(""))
        .define(ConfigKey::list(TABLE_WHITELIST, "List of tables to include in copying.").default_value(""))
        .define(ConfigKey::list(TABLE_BLACKLIST, "List of tables to exclude from copying.").default_value(""))
        .define(ConfigKey::list(TABLE_INCLUDE, "List of tables to include in copying (table.whitelist's newer name).").default_value(""))
        .define(ConfigKey::list(TABLE_EXCLUDE, "List of tables to exclude from copying (table.blacklist's newer name).").default_value(""))
        .define(ConfigKey::list(TABLE_TYPES, "The types of tables to include: TABLE, VIEW.").default_value("TABLE"))
        .define(ConfigKey::string(SCHEMA_PATTERN, "Schema pattern (SQL LIKE) to fetch table metadata from the database (PostgreSQL).").importance(Importance::Low))
        .define(ConfigKey::string(TOPIC_PREFIX, "Prefix to prepend to table names to generate the name of the topic to publish data to, or, with a custom query, the full name of the topic.").required())
        .define(ConfigKey::int(POLL_INTERVAL_MS, "Frequency in ms to poll for new data in each table.").default_value("5000"))
        .define(ConfigKey::int(BATCH_MAX_ROWS, "Maximum number of rows to include in a single batch when polling for new data.").default_value("100"))
        .define(ConfigKey::long(TABLE_POLL_INTERVAL_MS, "Frequency in ms to poll for new or removed tables.").default_value("60000"))
        .define(ConfigKey::string(NUMERIC_MAPPING, "Map NUMERIC values by precision and optionally scale to integral or decimal types: none, precision_only, best_fit, best_fit_eager_double.").default_value("none"))
        .define(ConfigKey::boolean(NUMERIC_PRECISION_MAPPING, "Deprecated: numeric.mapping=precision_only.").default_value("false").importance(Importance::Low))
        .define(ConfigKey::long(TIMESTAMP_DELAY_MS, "How long to wait after a row with a certain timestamp appears before including it.").default_value("0"))
        .define(ConfigKey::string(QUOTE_IDENTIFIERS, "When to quote table names, column names, and other identifiers: always, never.").default_value("always"))
        .define(ConfigKey::string(DB_TIMEZONE, "Name of the JDBC timezone used to read timestamps without time zone (UTC only).").default_value("UTC"))
        .define(ConfigKey::boolean(VALIDATE_NON_NULL, "Accepted for compatibility; columns may be nullable.").default_value("true").importance(Importance::Low))
}

/// The source's settings, checked.
#[derive(Debug, Clone)]
struct SourceConfig {
    mode: Mode,
    incrementing: Option<String>,
    timestamps: Vec<String>,
    timestamp_initial: Option<i64>,
    query: Option<String>,
    query_suffix: String,
    include: Vec<String>,
    exclude: Vec<String>,
    table_types: Vec<String>,
    schema_pattern: Option<String>,
    topic_prefix: String,
    poll_interval: Duration,
    batch_max_rows: usize,
    table_poll_interval: Duration,
    numeric_mapping: NumericMapping,
    delay: Duration,
    quote: bool,
}

fn number(props: &Props, key: &str, default: i64) -> Result<i64> {
    match props.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| ConnectError::config(key, s, "Not a number")),
    }
}

fn string(props: &Props, key: &str) -> Option<String> {
    props
        .get(key)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl SourceConfig {
    fn parse(props: &Props) -> Result<SourceConfig> {
        let mode = Mode::parse(props.get(MODE).map(String::as_str).unwrap_or_default())?;
        let incrementing = string(props, INCREMENTING_COLUMN);
        let timestamps = parse_list(
            props
                .get(TIMESTAMP_COLUMNS)
                .map(String::as_str)
                .unwrap_or(""),
        );
        if mode.incrementing() && incrementing.is_none() {
            return Err(ConnectError::config(
                INCREMENTING_COLUMN,
                "",
                format!(
                    "mode {} needs the incrementing column's name",
                    mode_name(mode)
                ),
            ));
        }
        if mode.timestamp() && timestamps.is_empty() {
            return Err(ConnectError::config(
                TIMESTAMP_COLUMNS,
                "",
                format!(
                    "mode {} needs at least one timestamp column",
                    mode_name(mode)
                ),
            ));
        }
        let list = |key: &str| parse_list(props.get(key).map(String::as_str).unwrap_or(""));
        let (mut include, mut exclude) = (list(TABLE_WHITELIST), list(TABLE_BLACKLIST));
        include.extend(list(TABLE_INCLUDE));
        exclude.extend(list(TABLE_EXCLUDE));
        if !include.is_empty() && !exclude.is_empty() {
            return Err(ConnectError::config(
                TABLE_WHITELIST,
                &include.join(","),
                "Only one of table.whitelist/table.include.list or table.blacklist/table.exclude.list can be set",
            ));
        }
        let query = string(props, QUERY);
        if query.is_some() && !(include.is_empty() && exclude.is_empty()) {
            return Err(ConnectError::config(
                QUERY,
                query.as_deref().unwrap_or_default(),
                "Do not specify table filtering for query-based source",
            ));
        }
        let mut numeric_mapping = NumericMapping::parse(
            props
                .get(NUMERIC_MAPPING)
                .map(String::as_str)
                .unwrap_or("none"),
        )?;
        if numeric_mapping == NumericMapping::None
            && props
                .get(NUMERIC_PRECISION_MAPPING)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            numeric_mapping = NumericMapping::PrecisionOnly;
        }
        let quote = match props
            .get(QUOTE_IDENTIFIERS)
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => true,
            Some(s) if s == "always" || s.is_empty() => true,
            Some(s) if s == "never" => false,
            Some(s) => {
                return Err(ConnectError::config(
                    QUOTE_IDENTIFIERS,
                    &s,
                    "Invalid value; must be always or never",
                ))
            }
        };
        if let Some(tz) = string(props, DB_TIMEZONE) {
            if !matches!(tz.as_str(), "UTC" | "Etc/UTC" | "GMT" | "Z") {
                return Err(ConnectError::config(
                    DB_TIMEZONE,
                    &tz,
                    "only UTC is supported: timestamps without a time zone are read as UTC",
                ));
            }
        }
        let batch_max_rows = number(props, BATCH_MAX_ROWS, 100)?;
        if batch_max_rows < 1 {
            return Err(ConnectError::config(
                BATCH_MAX_ROWS,
                &batch_max_rows.to_string(),
                "Value must be at least 1",
            ));
        }
        let ms = |key, default| -> Result<Duration> {
            Ok(Duration::from_millis(
                number(props, key, default)?.max(0) as u64
            ))
        };
        Ok(SourceConfig {
            mode,
            incrementing,
            timestamps,
            timestamp_initial: props
                .get(TIMESTAMP_INITIAL)
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<i64>()
                        .map_err(|_| ConnectError::config(TIMESTAMP_INITIAL, s, "Not a number"))
                })
                .transpose()?,
            query,
            query_suffix: props.get(QUERY_SUFFIX).cloned().unwrap_or_default(),
            include,
            exclude,
            table_types: list(TABLE_TYPES),
            schema_pattern: string(props, SCHEMA_PATTERN),
            topic_prefix: string(props, TOPIC_PREFIX).unwrap_or_default(),
            poll_interval: ms(POLL_INTERVAL_MS, 5000)?,
            batch_max_rows: batch_max_rows as usize,
            table_poll_interval: ms(TABLE_POLL_INTERVAL_MS, 60_000)?,
            numeric_mapping,
            delay: ms(TIMESTAMP_DELAY_MS, 0)?,
            quote,
        })
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Bulk => "bulk",
        Mode::Incrementing => "incrementing",
        Mode::Timestamp => "timestamp",
        Mode::TimestampIncrementing => "timestamp+incrementing",
    }
}

/// The tables the connector found, shared by its monitor and `task_configs`.
#[derive(Default)]
struct Tables {
    /// None until the first listing.
    current: Option<Vec<TableId>>,
}

/// `io.confluent.connect.jdbc.JdbcSourceConnector`: splits the tables among tasks and watches
/// the database for new and removed ones every `table.poll.interval.ms`.
#[derive(Default)]
pub struct JdbcSourceConnector {
    tables: Arc<Mutex<Tables>>,
    monitor: Option<JoinHandle<()>>,
}

impl JdbcSourceConnector {
    /// A connector, not started.
    pub fn new() -> JdbcSourceConnector {
        JdbcSourceConnector::default()
    }
}

impl Connector for JdbcSourceConnector {
    fn config(&self) -> ConfigDef {
        config_def()
    }

    fn validate(&self, props: &Props) -> Validation {
        let mut validation = config_def().validate(props);
        if validation.error_count() == 0 {
            if let Err(err) = SourceConfig::parse(props)
                .and_then(|_| ConnectionConfig::from_props(props).map(drop))
            {
                let (key, message) = match &err {
                    ConnectError::Config { key, reason, .. } => (key.clone(), reason.clone()),
                    other => (MODE.to_string(), other.to_string()),
                };
                validation.add_error(&key, message);
            }
        }
        validation
    }

    fn start(&mut self, props: &Props, ctx: ConnectorContext) -> Result<()> {
        let config = SourceConfig::parse(props)?;
        let connection = ConnectionConfig::from_props(props)?;
        if config.query.is_some() {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConnectError::Task("the JDBC source connector starts inside a Tokio runtime".into())
        })?;
        // The first listing is waited for (as Confluent's connector waits for its table
        // monitor's first fetch): task configs given before it would name no tables, and a
        // distributed worker would write them, rebalance, and start over.
        if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            let first = tokio::task::block_in_place(|| {
                runtime.block_on(async {
                    let db = Database::connect(&connection, 1).await?;
                    let found = list_tables(&db, &config).await;
                    db.close().await;
                    found
                })
            })?;
            self.tables.lock().current = Some(first);
        }
        let tables = self.tables.clone();
        self.monitor = Some(runtime.spawn(monitor_tables(connection, config, tables, ctx)));
        Ok(())
    }

    fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        let config = SourceConfig::parse(props)?;
        if config.query.is_some() {
            return Ok(vec![props.clone()]);
        }
        let Some(tables) = self.tables.lock().current.clone() else {
            // The monitor asks for task configs again once it has listed the tables.
            return Ok(Vec::new());
        };
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let groups = max_tasks.clamp(1, tables.len());
        let per = tables.len().div_ceil(groups);
        Ok(tables
            .chunks(per)
            .map(|chunk| {
                let mut task = props.clone();
                task.insert(
                    TABLES.to_string(),
                    chunk
                        .iter()
                        .map(TableId::unquoted)
                        .collect::<Vec<_>>()
                        .join(","),
                );
                task
            })
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(monitor) = self.monitor.take() {
            monitor.abort();
        }
        Ok(())
    }
}

impl SourceConnector for JdbcSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(JdbcSourceTask::new())
    }

    /// Incrementing modes resume exactly from their offsets; bulk and timestamp-only modes
    /// read rows again (or, for rows sharing a timestamp, may skip them).
    fn exactly_once_support(&self, props: &Props) -> Option<ExactlyOnceSupport> {
        let mode = Mode::parse(props.get(MODE).map(String::as_str).unwrap_or_default()).ok()?;
        Some(if mode.incrementing() {
            ExactlyOnceSupport::Supported
        } else {
            ExactlyOnceSupport::Unsupported
        })
    }
}

/// Lists the tables now and every `table.poll.interval.ms`, asking for new task configs when
/// they change; a listing that fails fails the connector.
async fn monitor_tables(
    connection: ConnectionConfig,
    config: SourceConfig,
    tables: Arc<Mutex<Tables>>,
    ctx: ConnectorContext,
) {
    let db = match Database::connect(&connection, 1).await {
        Ok(db) => db,
        Err(err) => {
            ctx.raise_error(err.to_string());
            return;
        }
    };
    loop {
        match list_tables(&db, &config).await {
            Ok(found) => {
                let changed = {
                    let mut tables = tables.lock();
                    let changed = tables.current.as_ref() != Some(&found);
                    if changed {
                        tracing::info!(
                            tables = ?found.iter().map(TableId::unquoted).collect::<Vec<_>>(),
                            "JDBC source: tables to read"
                        );
                        tables.current = Some(found);
                    }
                    changed
                };
                if changed {
                    ctx.request_task_reconfiguration();
                }
            }
            Err(err) => {
                ctx.raise_error(err.to_string());
                db.close().await;
                return;
            }
        }
        tokio::time::sleep(config.table_poll_interval.max(Duration::from_millis(100))).await;
    }
}

/// The tables to read: listed, filtered by the include or exclude lists. A table the include
/// list names that does not exist is an error.
async fn list_tables(db: &Database, config: &SourceConfig) -> Result<Vec<TableId>> {
    let all = db
        .tables(&config.table_types, config.schema_pattern.as_deref())
        .await?;
    if !config.include.is_empty() {
        if let Some(missing) = config
            .include
            .iter()
            .find(|name| !all.iter().any(|t| t.matches(name)))
        {
            return Err(ConnectError::Task(format!(
                "table {missing} in {TABLE_WHITELIST} does not exist in {} (or is not readable by this user)",
                db.description
            )));
        }
        return Ok(all
            .into_iter()
            .filter(|t| config.include.iter().any(|name| t.matches(name)))
            .collect());
    }
    Ok(all
        .into_iter()
        .filter(|t| !config.exclude.iter().any(|name| t.matches(name)))
        .collect())
}

/// What a querier reads: a table or the custom query.
#[derive(Debug, Clone)]
enum Source {
    Table(TableId),
    Query(String),
}

/// One table's (or the query's) reading state.
struct Querier {
    source: Source,
    topic: String,
    partition: Value,
    columns: Vec<Column>,
    targets: Vec<Target>,
    schema: SchemaRef,
    /// The index of the incrementing column.
    incrementing: Option<usize>,
    /// Whether the timestamp column is with time zone.
    timestamp_tz: bool,
    /// The last incrementing id read.
    last_id: Option<i64>,
    /// The last timestamp read, as nanoseconds since the epoch.
    last_timestamp: Option<i64>,
    /// The running query's rows.
    rows: Option<mpsc::Receiver<Result<Vec<Value>>>>,
    /// When the next query may start.
    next_run: Instant,
}

/// `io.confluent.connect.jdbc.source.JdbcSourceTask`: reads its tables in turn.
#[derive(Default)]
pub struct JdbcSourceTask {
    config: Option<SourceConfig>,
    db: Option<Database>,
    queriers: VecDeque<Querier>,
}

impl JdbcSourceTask {
    /// A task, not started.
    pub fn new() -> JdbcSourceTask {
        JdbcSourceTask::default()
    }

    async fn start_task(&mut self, props: &Props, ctx: SourceTaskContext) -> Result<()> {
        let config = SourceConfig::parse(props)?;
        let connection = ConnectionConfig::from_props(props)?;
        let db = Database::connect(&connection, 1).await?;
        let sources: Vec<Source> = match &config.query {
            Some(query) => vec![Source::Query(query.clone())],
            None => {
                let names = parse_list(props.get(TABLES).map(String::as_str).unwrap_or(""));
                if names.is_empty() {
                    return Err(ConnectError::config(
                        TABLES,
                        "",
                        "a JDBC source task needs its tables (set by the connector) or a query",
                    ));
                }
                let mut found = Vec::new();
                for name in names {
                    // The unquoted id's last two parts are the schema and the table.
                    let lookup = match db.dialect {
                        Dialect::Postgres => name
                            .split_once('.')
                            .map(|(_, rest)| rest)
                            .filter(|rest| rest.contains('.'))
                            .unwrap_or(&name)
                            .to_string(),
                        _ => name.rsplit('.').next().unwrap_or(&name).to_string(),
                    };
                    let table = db.find_table(&lookup).await?.ok_or_else(|| {
                        ConnectError::Task(format!(
                            "table {name} does not exist in {}",
                            db.description
                        ))
                    })?;
                    found.push(Source::Table(table));
                }
                found
            }
        };
        let now = Instant::now();
        for source in sources {
            let querier = self.querier(&db, &config, source, &ctx, now).await?;
            self.queriers.push_back(querier);
        }
        self.db = Some(db);
        self.config = Some(config);
        Ok(())
    }

    async fn querier(
        &self,
        db: &Database,
        config: &SourceConfig,
        source: Source,
        ctx: &SourceTaskContext,
        now: Instant,
    ) -> Result<Querier> {
        let (columns, topic, partition, legacy, schema_name) = match &source {
            Source::Table(table) => (
                db.columns(table).await?,
                format!("{}{}", config.topic_prefix, table.name),
                Value::string_map([
                    (PROTOCOL_KEY, Value::from("1")),
                    (TABLE_KEY, Value::from(table.unquoted())),
                ]),
                Some(Value::string_map([(
                    TABLE_KEY,
                    Value::from(table.name.clone()),
                )])),
                Some(table.name.clone()),
            ),
            Source::Query(query) => (
                db.query_columns(query).await?,
                config.topic_prefix.clone(),
                Value::string_map([(QUERY_KEY, Value::from(QUERY))]),
                None,
                None,
            ),
        };
        let what = match &source {
            Source::Table(t) => format!("table {}", t.unquoted()),
            Source::Query(_) => "the query".to_string(),
        };
        let find = |name: &str| {
            columns.iter().position(|c| c.name == name).ok_or_else(|| {
                ConnectError::Task(format!(
                    "column {name} does not exist in {what} (its columns: {})",
                    columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        };
        let incrementing = match (&config.incrementing, config.mode.incrementing()) {
            (Some(name), true) => {
                let i = find(name)?;
                if !matches!(
                    columns[i].kind,
                    ColumnKind::Integer { .. }
                        | ColumnKind::Decimal {
                            scale: Some(0) | None,
                            ..
                        }
                ) {
                    return Err(ConnectError::Task(format!(
                        "incrementing column {name} of {what} has type {}, not an integer",
                        columns[i].type_name
                    )));
                }
                Some(i)
            }
            _ => None,
        };
        let mut timestamp_tz = false;
        if config.mode.timestamp() {
            for (n, name) in config.timestamps.iter().enumerate() {
                let i = find(name)?;
                match columns[i].kind {
                    ColumnKind::Timestamp => {}
                    ColumnKind::TimestampTz if n == 0 => timestamp_tz = true,
                    ColumnKind::TimestampTz => {}
                    // SQLite keeps dates as text or numbers; its declared DATE columns too.
                    ColumnKind::Date | ColumnKind::Text | ColumnKind::String
                        if db.dialect == Dialect::Sqlite => {}
                    _ => {
                        return Err(ConnectError::Task(format!(
                            "timestamp column {name} of {what} has type {}, not a timestamp",
                            columns[i].type_name
                        )))
                    }
                }
            }
        }
        let targets: Vec<Target> = columns
            .iter()
            .map(|c| c.target(config.numeric_mapping))
            .collect();
        let mut builder = SchemaBuilder::struct_();
        if let Some(name) = schema_name {
            builder = builder.name(name);
        }
        for column in &columns {
            builder = builder.field(column.name.clone(), column.schema(config.numeric_mapping));
        }
        let schema = builder.build()?;
        // The committed offset: under protocol 1's partition, else the older one's.
        let offset = ctx
            .offset(&partition)
            .or_else(|| legacy.as_ref().and_then(|p| ctx.offset(p)));
        let last_id = offset
            .as_ref()
            .and_then(|o| o.map_get(INCREMENTING_KEY))
            .and_then(Value::as_i64);
        let last_timestamp = match offset
            .as_ref()
            .and_then(|o| o.map_get(TIMESTAMP_KEY))
            .and_then(Value::as_i64)
        {
            Some(ms) => {
                let nanos = offset
                    .as_ref()
                    .and_then(|o| o.map_get(TIMESTAMP_NANOS_KEY))
                    .and_then(Value::as_i64)
                    .unwrap_or((ms.rem_euclid(1000)) * 1_000_000);
                Some(ms.div_euclid(1000) * 1_000_000_000 + nanos)
            }
            None if config.mode.timestamp() => match config.timestamp_initial {
                Some(-1) => Some(db.now().await?.and_utc().timestamp_nanos_opt().unwrap_or(0)),
                Some(ms) => Some(ms * 1_000_000),
                None => None,
            },
            None => None,
        };
        Ok(Querier {
            source,
            topic,
            partition,
            columns,
            targets,
            schema,
            incrementing,
            timestamp_tz,
            last_id,
            last_timestamp,
            rows: None,
            next_run: now,
        })
    }

    /// The SQL and parameters of `querier`'s next query.
    async fn statement(
        &self,
        querier: &Querier,
    ) -> Result<(String, Vec<Param>, Vec<Column>, Vec<Target>)> {
        let (Some(config), Some(db)) = (&self.config, &self.db) else {
            return Err(ConnectError::Task(
                "JDBC source task polled before it started".into(),
            ));
        };
        let dialect = db.dialect;
        let q = |name: &str| {
            if config.quote {
                dialect.quote(name)
            } else {
                name.to_string()
            }
        };
        let mut columns = querier.columns.clone();
        let mut targets = querier.targets.clone();
        let (select, from, prefix) = match &querier.source {
            Source::Table(table) => {
                let list: Vec<String> = querier
                    .columns
                    .iter()
                    .map(|c| match (c.kind, dialect) {
                        // Types read as text are cast to it here (a query's are the user's).
                        (ColumnKind::Text, Dialect::Postgres) => {
                            format!("CAST({} AS TEXT) AS {}", q(&c.name), q(&c.name))
                        }
                        (ColumnKind::Text, Dialect::MySql) => {
                            format!("CAST({} AS CHAR) AS {}", q(&c.name), q(&c.name))
                        }
                        _ => q(&c.name),
                    })
                    .collect();
                (
                    list.join(", "),
                    table.quoted(dialect, config.quote),
                    String::new(),
                )
            }
            Source::Query(query) => (
                "sluice_query.*".to_string(),
                format!("({query}) sluice_query"),
                "sluice_query.".to_string(),
            ),
        };
        let timestamps: Vec<String> = config
            .timestamps
            .iter()
            .map(|c| format!("{prefix}{}", q(c)))
            .collect();
        // COALESCE of one argument is an error in SQLite.
        let timestamp = match timestamps.as_slice() {
            [one] => one.clone(),
            many => format!("COALESCE({})", many.join(", ")),
        };
        // SQLite keeps timestamps as text in whatever form they were written: both sides of
        // each comparison are put in one form first.
        let normal = |expr: String| match dialect {
            Dialect::Sqlite => format!("strftime('%Y-%m-%d %H:%M:%f', {expr})"),
            _ => expr,
        };
        let timestamp = normal(timestamp);
        let select = if config.mode.timestamp() {
            columns.push(Column {
                name: TIMESTAMP_ALIAS.to_string(),
                type_name: "timestamp".to_string(),
                kind: ColumnKind::TimestampNanos {
                    tz: querier.timestamp_tz,
                },
                nullable: true,
            });
            targets.push(Target::Native);
            format!("{select}, {timestamp} AS {}", q(TIMESTAMP_ALIAS))
        } else {
            select
        };
        let incrementing = config
            .incrementing
            .as_deref()
            .map(|c| format!("{prefix}{}", q(c)))
            .unwrap_or_default();
        let mut params = Vec::new();
        let n = std::sync::atomic::AtomicUsize::new(0);
        let next = || dialect.placeholder(n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
        let next_ts = || normal(next());
        let ts_param = |nanos: i64| {
            let at = DateTime::from_timestamp_nanos(nanos);
            if querier.timestamp_tz {
                Param::TimestampTz(at)
            } else {
                Param::Timestamp(at.naive_utc())
            }
        };
        let upper = || async {
            let now: NaiveDateTime = db.now().await?;
            let bound = now - chrono::Duration::from_std(config.delay).unwrap_or_default();
            Ok::<_, ConnectError>(bound.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX))
        };
        let last_ts = querier.last_timestamp.unwrap_or(0);
        let (filter, order) = match config.mode {
            Mode::Bulk => (String::new(), String::new()),
            Mode::Incrementing => {
                params.push(Param::Long(querier.last_id.unwrap_or(-1)));
                (
                    format!(" WHERE {incrementing} > {}", next()),
                    format!(" ORDER BY {incrementing} ASC"),
                )
            }
            Mode::Timestamp => {
                params.push(ts_param(last_ts));
                params.push(ts_param(upper().await?));
                (
                    format!(
                        " WHERE {timestamp} > {} AND {timestamp} < {}",
                        next_ts(),
                        next_ts()
                    ),
                    format!(" ORDER BY {timestamp} ASC"),
                )
            }
            Mode::TimestampIncrementing => {
                let upper = upper().await?;
                params.push(ts_param(upper));
                params.push(ts_param(last_ts));
                params.push(Param::Long(querier.last_id.unwrap_or(-1)));
                params.push(ts_param(last_ts));
                (
                    format!(
                        " WHERE {timestamp} < {} AND (({timestamp} = {} AND {incrementing} > {}) OR {timestamp} > {})",
                        next_ts(),
                        next_ts(),
                        next(),
                        next_ts()
                    ),
                    format!(" ORDER BY {timestamp}, {incrementing} ASC"),
                )
            }
        };
        let suffix = if config.query_suffix.trim().is_empty() {
            String::new()
        } else {
            format!(" {}", config.query_suffix.trim())
        };
        let sql = format!("SELECT {select} FROM {from}{filter}{order}{suffix}");
        Ok((sql, params, columns, targets))
    }

    async fn poll_rows(&mut self) -> Result<Vec<SourceRecord>> {
        let Some(config) = self.config.clone() else {
            return Err(ConnectError::Task(
                "JDBC source task polled before it started".into(),
            ));
        };
        let deadline = Instant::now() + IDLE_POLL;
        loop {
            // The querier that is running, or due soonest.
            let Some(index) = (0..self.queriers.len()).min_by_key(|&i| {
                let q = &self.queriers[i];
                (q.rows.is_none(), q.next_run)
            }) else {
                tokio::time::sleep_until(deadline).await;
                return Ok(Vec::new());
            };
            if self.queriers[index].rows.is_none() {
                let due = self.queriers[index].next_run;
                if due > Instant::now() {
                    if due >= deadline {
                        tokio::time::sleep_until(deadline).await;
                        return Ok(Vec::new());
                    }
                    tokio::time::sleep_until(due).await;
                }
                let (sql, params, columns, targets) = self.statement(&self.queriers[index]).await?;
                tracing::debug!(%sql, "JDBC source: querying");
                let (tx, rx) = mpsc::channel(config.batch_max_rows.clamp(64, 10_000) * 2);
                let db = self
                    .db
                    .clone()
                    .ok_or_else(|| ConnectError::Task("not connected".into()))?;
                tokio::spawn(
                    async move { db.stream_rows(sql, params, columns, targets, tx).await },
                );
                self.queriers[index].rows = Some(rx);
            }
            let querier = &mut self.queriers[index];
            let mut records = Vec::new();
            let mut ended = false;
            while records.len() < config.batch_max_rows {
                let Some(rows) = querier.rows.as_mut() else {
                    break;
                };
                let next = if records.is_empty() {
                    rows.recv().await
                } else {
                    match rows.try_recv() {
                        Ok(row) => Some(row),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                    }
                };
                let Some(row) = next else {
                    ended = true;
                    break;
                };
                records.push(querier.record(row?, config.mode)?);
            }
            if ended {
                querier.rows = None;
                querier.next_run = Instant::now() + config.poll_interval;
                // The next querier takes its turn (Confluent's round robin).
                if let Some(done) = self.queriers.remove(index) {
                    self.queriers.push_back(done);
                }
            }
            if !records.is_empty() {
                return Ok(records);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }
}

impl Querier {
    /// A row as a record, advancing the offsets.
    fn record(&mut self, mut row: Vec<Value>, mode: Mode) -> Result<SourceRecord> {
        let mut offset = Vec::new();
        if mode.timestamp() {
            let ts = row.pop().unwrap_or(Value::Null);
            // The extra column holds the row's timestamp in nanoseconds: Confluent's offset
            // keeps milliseconds and, apart, the nanoseconds of the second.
            let nanos = ts.as_i64().ok_or_else(|| {
                ConnectError::Data(format!(
                    "a row of {} has no timestamp (every timestamp column is null)",
                    self.topic
                ))
            })?;
            self.last_timestamp = Some(nanos);
            offset.push((TIMESTAMP_KEY, Value::Int64(nanos.div_euclid(1_000_000))));
            offset.push((
                TIMESTAMP_NANOS_KEY,
                Value::Int64(nanos.rem_euclid(1_000_000_000)),
            ));
        }
        if let Some(i) = self.incrementing {
            let id = match &row[i] {
                Value::Bytes(b) => sluice_connect::data::logical::decimal_unscaled(b)
                    .ok()
                    .and_then(|n| i64::try_from(n).ok()),
                other => other.as_i64(),
            }
            .ok_or_else(|| {
                ConnectError::Data(format!(
                    "a row of {} has a null or too large incrementing column {}",
                    self.topic, self.columns[i].name
                ))
            })?;
            self.last_id = Some(id);
            offset.push((INCREMENTING_KEY, Value::Int64(id)));
        }
        let value = Value::Struct(Struct::from_values(self.schema.clone(), row)?);
        let offset = if offset.is_empty() {
            Value::Null
        } else {
            Value::string_map(offset)
        };
        Ok(SourceRecord::new(
            self.partition.clone(),
            offset,
            &self.topic,
            Some(self.schema.clone()),
            value,
        ))
    }
}

impl SourceTask for JdbcSourceTask {
    fn start<'a>(
        &'a mut self,
        props: &'a Props,
        ctx: SourceTaskContext,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.start_task(props, ctx))
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>> {
        Box::pin(self.poll_rows())
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.queriers.clear();
            if let Some(db) = self.db.take() {
                db.close().await;
            }
            Ok(())
        })
    }
}
