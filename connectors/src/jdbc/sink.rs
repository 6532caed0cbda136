//! The JDBC sink: records written as rows, in Confluent's `insert.mode`s and `pk.mode`s.
//!
//! Each `put` is written in one transaction: consecutive rows for the same table, columns
//! and operation go in one prepared multi-row statement (up to `batch.size` rows, and the
//! database's limit on parameters). When the transaction fails for a reason in the data (a
//! constraint, a value the column refuses), it is rolled back and the records are written
//! one by one, and those the database refuses go to the runtime's error handling with its
//! message (the task fails, or with `errors.tolerance=all` they are skipped and sent to the
//! dead letter queue). A lost connection is retried `max.retries` times.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use sluice_connect::connector::{
    parse_list, BoxFuture, ConfigDef, ConfigKey, ConfigType, Connector, ConnectorContext,
    ErrantRecordReporter, Props, SinkConnector, SinkRecord, SinkTask, SinkTaskContext,
    TopicPartition, Validation,
};
use sluice_connect::data::{logical, SchemaRef, Type, Value};
use sluice_connect::{ConnectError, Result};

use super::database::{db_error, safe, ConnectionConfig, Database, Dialect, Pool, TableId};
use super::types::Column;
use super::{CONNECTION_ATTEMPTS, CONNECTION_BACKOFF_MS, CONNECTION_PASSWORD, CONNECTION_URL};
use super::{CONNECTION_USER, DIALECT_NAME};

const INSERT_MODE: &str = "insert.mode";
const BATCH_SIZE: &str = "batch.size";
const DELETE_ENABLED: &str = "delete.enabled";
const TABLE_NAME_FORMAT: &str = "table.name.format";
const PK_MODE: &str = "pk.mode";
const PK_FIELDS: &str = "pk.fields";
const FIELDS_WHITELIST: &str = "fields.whitelist";
const AUTO_CREATE: &str = "auto.create";
const AUTO_EVOLVE: &str = "auto.evolve";
const QUOTE_IDENTIFIERS: &str = "quote.sql.identifiers";
const MAX_RETRIES: &str = "max.retries";
const RETRY_BACKOFF_MS: &str = "retry.backoff.ms";
const DB_TIMEZONE: &str = "db.timezone";

/// The default key column names of `pk.mode=kafka` (Confluent's).
const KAFKA_PK: [&str; 3] = ["__connect_topic", "__connect_partition", "__connect_offset"];
/// The default key column of a primitive record key (Confluent's).
const KEY_COLUMN: &str = "__connect_key";

/// How rows are written (`insert.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InsertMode {
    Insert,
    Upsert,
    Update,
}

/// Where the primary key comes from (`pk.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::string(CONNECTION_URL, "JDBC connection URL: jdbc:postgresql://host:5432/db, jdbc:mysql://host:3306/db, jdbc:mariadb://..., jdbc:sqlite:/path/file.db.").required())
        .define(ConfigKey::string(CONNECTION_USER, "JDBC connection user."))
        .define(ConfigKey::new(CONNECTION_PASSWORD, ConfigType::Password, "JDBC connection password."))
        .define(ConfigKey::int(CONNECTION_ATTEMPTS, "Maximum number of attempts to connect.").default_value("3"))
        .define(ConfigKey::long(CONNECTION_BACKOFF_MS, "Backoff time in milliseconds between connection attempts.").default_value("10000"))
        .define(ConfigKey::string(DIALECT_NAME, "The dialect to use instead of the one the URL implies.").default_value(""))
        .define(ConfigKey::string(INSERT_MODE, "The insertion mode to use: insert, upsert, update.").default_value("insert"))
        .define(ConfigKey::int(BATCH_SIZE, "Specifies how many records to attempt to batch together for insertion into the destination table, when possible.").default_value("3000"))
        .define(ConfigKey::boolean(DELETE_ENABLED, "Whether to treat null record values as deletes. Requires pk.mode to be record_key.").default_value("false"))
        .define(ConfigKey::string(TABLE_NAME_FORMAT, "A format string for the destination table name, which may contain '${topic}' as a placeholder for the originating topic name.").default_value("${topic}"))
        .define(ConfigKey::string(PK_MODE, "The primary key mode: none, kafka, record_key, record_value.").default_value("none"))
        .define(ConfigKey::list(PK_FIELDS, "List of comma-separated primary key field names; its meaning depends on pk.mode.").default_value(""))
        .define(ConfigKey::list(FIELDS_WHITELIST, "List of comma-separated record value field names; if empty, all fields from the record value are used.").default_value(""))
        .define(ConfigKey::boolean(AUTO_CREATE, "Whether to automatically create the destination table based on record schema if it is found to be missing by issuing CREATE.").default_value("false"))
        .define(ConfigKey::boolean(AUTO_EVOLVE, "Whether to automatically add columns in the table schema when found to be missing relative to the record schema by issuing ALTER.").default_value("false"))
        .define(ConfigKey::string(QUOTE_IDENTIFIERS, "When to quote table names, column names, and other identifiers: always, never.").default_value("always"))
        .define(ConfigKey::int(MAX_RETRIES, "The maximum number of times to retry on errors before failing the task.").default_value("10"))
        .define(ConfigKey::int(RETRY_BACKOFF_MS, "The time in milliseconds to wait following an error before a retry attempt is made.").default_value("3000"))
        .define(ConfigKey::string(DB_TIMEZONE, "Name of the JDBC timezone that should be used in the connector when inserting time-based values (UTC only).").default_value("UTC"))
}

/// The sink's settings, checked.
#[derive(Debug, Clone)]
struct SinkConfig {
    insert_mode: InsertMode,
    batch_size: usize,
    delete_enabled: bool,
    table_format: String,
    pk_mode: PkMode,
    pk_fields: Vec<String>,
    fields_whitelist: Vec<String>,
    auto_create: bool,
    auto_evolve: bool,
    quote: bool,
    max_retries: u32,
    retry_backoff: Duration,
}

fn flag(props: &Props, key: &str) -> bool {
    props
        .get(key)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl SinkConfig {
    fn parse(props: &Props) -> Result<SinkConfig> {
        let get = |key: &str, default: &str| {
            props
                .get(key)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let insert_mode = match get(INSERT_MODE, "insert").to_ascii_lowercase().as_str() {
            "insert" => InsertMode::Insert,
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            other => {
                return Err(ConnectError::config(
                    INSERT_MODE,
                    other,
                    "Invalid value; must be one of insert, upsert, update",
                ))
            }
        };
        let pk_mode = match get(PK_MODE, "none").to_ascii_lowercase().as_str() {
            "none" => PkMode::None,
            "kafka" => PkMode::Kafka,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            other => {
                return Err(ConnectError::config(
                    PK_MODE,
                    other,
                    "Invalid value; must be one of none, kafka, record_key, record_value",
                ))
            }
        };
        let delete_enabled = flag(props, DELETE_ENABLED);
        if delete_enabled && pk_mode != PkMode::RecordKey {
            return Err(ConnectError::config(
                DELETE_ENABLED,
                "true",
                "Primary key mode must be 'record_key' when delete support is enabled",
            ));
        }
        if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
            return Err(ConnectError::config(
                PK_MODE,
                "none",
                format!(
                    "insert.mode={} needs a primary key: set pk.mode to kafka, record_key or record_value",
                    get(INSERT_MODE, "insert")
                ),
            ));
        }
        let pk_fields = parse_list(&get(PK_FIELDS, ""));
        if pk_mode == PkMode::Kafka && !pk_fields.is_empty() && pk_fields.len() != 3 {
            return Err(ConnectError::config(
                PK_FIELDS,
                &pk_fields.join(","),
                "PK mode for table is kafka so there should either be no field names defined for defaults to be applicable, or exactly 3",
            ));
        }
        let number = |key: &str, default: i64| -> Result<i64> {
            let raw = get(key, &default.to_string());
            raw.parse()
                .map_err(|_| ConnectError::config(key, &raw, "Not a number of type INT"))
        };
        let batch_size = number(BATCH_SIZE, 3000)?;
        if batch_size < 1 {
            return Err(ConnectError::config(
                BATCH_SIZE,
                &batch_size.to_string(),
                "Value must be at least 1",
            ));
        }
        let quote = match get(QUOTE_IDENTIFIERS, "always")
            .to_ascii_lowercase()
            .as_str()
        {
            "always" => true,
            "never" => false,
            other => {
                return Err(ConnectError::config(
                    QUOTE_IDENTIFIERS,
                    other,
                    "Invalid value; must be always or never",
                ))
            }
        };
        let tz = get(DB_TIMEZONE, "UTC");
        if !matches!(tz.as_str(), "UTC" | "Etc/UTC" | "GMT" | "Z") {
            return Err(ConnectError::config(
                DB_TIMEZONE,
                &tz,
                "only UTC is supported: time-based values are written as UTC",
            ));
        }
        Ok(SinkConfig {
            insert_mode,
            batch_size: batch_size as usize,
            delete_enabled,
            table_format: get(TABLE_NAME_FORMAT, "${topic}"),
            pk_mode,
            pk_fields,
            fields_whitelist: parse_list(&get(FIELDS_WHITELIST, "")),
            auto_create: flag(props, AUTO_CREATE),
            auto_evolve: flag(props, AUTO_EVOLVE),
            quote,
            max_retries: number(MAX_RETRIES, 10)?.max(0) as u32,
            retry_backoff: Duration::from_millis(number(RETRY_BACKOFF_MS, 3000)?.max(0) as u64),
        })
    }
}

/// `io.confluent.connect.jdbc.JdbcSinkConnector`: `tasks.max` identical tasks sharing the
/// topics' partitions.
#[derive(Default)]
pub struct JdbcSinkConnector;

impl JdbcSinkConnector {
    /// A connector, not started.
    pub fn new() -> JdbcSinkConnector {
        JdbcSinkConnector
    }
}

impl Connector for JdbcSinkConnector {
    fn config(&self) -> ConfigDef {
        config_def()
    }

    fn validate(&self, props: &Props) -> Validation {
        let mut validation = config_def().validate(props);
        if validation.error_count() == 0 {
            if let Err(err) =
                SinkConfig::parse(props).and_then(|_| ConnectionConfig::from_props(props).map(drop))
            {
                let (key, message) = match &err {
                    ConnectError::Config { key, reason, .. } => (key.clone(), reason.clone()),
                    other => (INSERT_MODE.to_string(), other.to_string()),
                };
                validation.add_error(&key, message);
            }
        }
        validation
    }

    fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<()> {
        SinkConfig::parse(props)?;
        ConnectionConfig::from_props(props)?;
        Ok(())
    }

    fn task_configs(&self, props: &Props, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![props.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for JdbcSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(JdbcSinkTask::new())
    }
}

/// A column's value in a row, with the schema it is bound by.
#[derive(Debug, Clone)]
struct Cell {
    schema: SchemaRef,
    value: Value,
}

/// What one record becomes.
#[derive(Debug, Clone)]
struct Row {
    table: String,
    /// Key columns, then the others.
    key: Vec<(String, Cell)>,
    values: Vec<(String, Cell)>,
    delete: bool,
    /// The record's index in the `put`.
    record: usize,
}

impl Row {
    /// The columns and operation: rows of one shape share a statement.
    fn shape(&self) -> (String, bool, Vec<&str>, Vec<&str>) {
        (
            self.table.clone(),
            self.delete,
            self.key.iter().map(|(n, _)| n.as_str()).collect(),
            self.values.iter().map(|(n, _)| n.as_str()).collect(),
        )
    }
}

/// A table as the sink knows it.
#[derive(Debug, Clone)]
struct KnownTable {
    id: TableId,
    columns: Vec<Column>,
}

/// `io.confluent.connect.jdbc.sink.JdbcSinkTask`.
#[derive(Default)]
pub struct JdbcSinkTask {
    config: Option<SinkConfig>,
    connection: Option<ConnectionConfig>,
    db: Option<Database>,
    tables: HashMap<String, KnownTable>,
    reporter: Option<ErrantRecordReporter>,
    /// Failed attempts of the current `put` (Confluent's remaining retries).
    retries: u32,
}

impl JdbcSinkTask {
    /// A task, not started.
    pub fn new() -> JdbcSinkTask {
        JdbcSinkTask::default()
    }

    fn config(&self) -> Result<&SinkConfig> {
        self.config
            .as_ref()
            .ok_or_else(|| ConnectError::Task("JDBC sink task used before it started".into()))
    }

    async fn database(&mut self) -> Result<Database> {
        if let Some(db) = &self.db {
            return Ok(db.clone());
        }
        let connection = self
            .connection
            .as_ref()
            .ok_or_else(|| ConnectError::Task("JDBC sink task used before it started".into()))?;
        let db = Database::connect(connection, 1).await?;
        self.db = Some(db.clone());
        Ok(db)
    }

    /// The row of `record` (index `index`), or why it cannot be written.
    fn row(&self, config: &SinkConfig, record: &SinkRecord, index: usize) -> Result<Row> {
        let r = &record.record;
        let table = config.table_format.replace("${topic}", &r.topic);
        let value_struct = match (&r.value, &r.value_schema) {
            (Value::Struct(s), Some(_)) => Some(s),
            (Value::Null, _) => None,
            _ => {
                return Err(ConnectError::Data(format!(
                    "Sink connector requires records with a non-null Struct value and non-null Struct schema, but found record at (topic='{}',partition={},offset={}) with a {} value and {} value schema",
                    r.topic,
                    r.kafka_partition.unwrap_or(0),
                    record.kafka_offset,
                    r.value.type_name(),
                    if r.value_schema.is_some() { "a" } else { "no" }
                )))
            }
        };
        let delete = value_struct.is_none();
        if delete && !config.delete_enabled {
            return Err(ConnectError::Data(format!(
                "record at (topic='{}',partition={},offset={}) has a null value (a tombstone) and delete.enabled=false",
                r.topic,
                r.kafka_partition.unwrap_or(0),
                record.kafka_offset
            )));
        }
        let primitive = |ty: Type| sluice_connect::data::Schema::primitive(ty);
        let mut key = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();
        match config.pk_mode {
            PkMode::None => {}
            PkMode::Kafka => {
                let names: Vec<String> = if config.pk_fields.len() == 3 {
                    config.pk_fields.clone()
                } else {
                    KAFKA_PK.iter().map(|s| s.to_string()).collect()
                };
                key.push((
                    names[0].clone(),
                    Cell {
                        schema: primitive(Type::String),
                        value: Value::String(r.topic.clone()),
                    },
                ));
                key.push((
                    names[1].clone(),
                    Cell {
                        schema: primitive(Type::Int32),
                        value: Value::Int32(r.kafka_partition.unwrap_or(0)),
                    },
                ));
                key.push((
                    names[2].clone(),
                    Cell {
                        schema: primitive(Type::Int64),
                        value: Value::Int64(record.kafka_offset),
                    },
                ));
            }
            PkMode::RecordKey => {
                let schema = r.key_schema.as_ref().ok_or_else(|| {
                    ConnectError::Data(format!(
                        "pk.mode=record_key needs records with a key schema, but the record at (topic='{}',partition={},offset={}) has none",
                        r.topic, r.kafka_partition.unwrap_or(0), record.kafka_offset
                    ))
                })?;
                match (&r.key, schema.ty) {
                    (Value::Struct(s), Type::Struct) => {
                        let names: Vec<String> = if config.pk_fields.is_empty() {
                            schema.fields.iter().map(|f| f.name.clone()).collect()
                        } else {
                            config.pk_fields.clone()
                        };
                        for name in names {
                            let field = schema.field(&name).ok_or_else(|| {
                                ConnectError::Data(format!("PK field {name} is not in the record key's schema"))
                            })?;
                            key.push((name.clone(), Cell { schema: field.schema.clone(), value: s.get(&name).cloned().unwrap_or(Value::Null) }));
                        }
                    }
                    (Value::Null, _) => {
                        return Err(ConnectError::Data(format!(
                            "pk.mode=record_key needs a non-null key, but the record at (topic='{}',partition={},offset={}) has none",
                            r.topic, r.kafka_partition.unwrap_or(0), record.kafka_offset
                        )))
                    }
                    (value, _) => {
                        if config.pk_fields.len() > 1 {
                            return Err(ConnectError::Data(format!(
                                "the record key is a primitive {}, so pk.fields must name one column, not {}",
                                value.type_name(),
                                config.pk_fields.len()
                            )));
                        }
                        let name = config.pk_fields.first().cloned().unwrap_or_else(|| KEY_COLUMN.to_string());
                        key.push((name, Cell { schema: schema.clone(), value: value.clone() }));
                    }
                }
            }
            PkMode::RecordValue => {
                let Some(s) = value_struct else {
                    return Err(ConnectError::Data(
                        "pk.mode=record_value needs a value".into(),
                    ));
                };
                let names: Vec<String> = if config.pk_fields.is_empty() {
                    s.schema().fields.iter().map(|f| f.name.clone()).collect()
                } else {
                    config.pk_fields.clone()
                };
                for name in names {
                    let field = s.schema().field(&name).ok_or_else(|| {
                        ConnectError::Data(format!(
                            "PK field {name} is not in the record value's schema"
                        ))
                    })?;
                    key.push((
                        name.clone(),
                        Cell {
                            schema: field.schema.clone(),
                            value: s.get(&name).cloned().unwrap_or(Value::Null),
                        },
                    ));
                }
            }
        }
        taken.extend(key.iter().map(|(n, _)| n.clone()));
        let mut values = Vec::new();
        if let Some(s) = value_struct {
            for field in &s.schema().fields {
                if taken.contains(&field.name) {
                    continue;
                }
                if !config.fields_whitelist.is_empty()
                    && !config.fields_whitelist.contains(&field.name)
                {
                    continue;
                }
                values.push((
                    field.name.clone(),
                    Cell {
                        schema: field.schema.clone(),
                        value: s.get_at(field.index).clone(),
                    },
                ));
            }
        }
        Ok(Row {
            table,
            key,
            values,
            delete,
            record: index,
        })
    }

    /// Makes sure `row`'s table exists with its columns (creating or altering it as allowed).
    async fn prepare_table(&mut self, db: &Database, config: &SinkConfig, row: &Row) -> Result<()> {
        let known = match self.tables.get(&row.table) {
            Some(known) => known.clone(),
            None => {
                let known = match db.find_table(&row.table).await? {
                    Some(id) => KnownTable { columns: db.columns(&id).await?, id },
                    None if !config.auto_create => {
                        return Err(ConnectError::Task(format!(
                            "Table \"{}\" is missing and auto-creation is disabled (auto.create=false) in {}",
                            row.table, db.description
                        )))
                    }
                    None if row.delete => {
                        return Err(ConnectError::Task(format!(
                            "Table \"{}\" is missing and a delete has no columns to create it with",
                            row.table
                        )))
                    }
                    None => {
                        let id = table_id(&row.table, db);
                        let sql = create_table(db.dialect, config.quote, &id, row);
                        tracing::info!(%sql, "JDBC sink: creating table");
                        db.execute(&sql).await?;
                        KnownTable { columns: db.columns(&id).await?, id }
                    }
                };
                self.tables.insert(row.table.clone(), known.clone());
                known
            }
        };
        let has = |name: &str| {
            known
                .columns
                .iter()
                .any(|c| c.name == name || c.name.eq_ignore_ascii_case(name))
        };
        let missing: Vec<&(String, Cell)> = row
            .key
            .iter()
            .chain(&row.values)
            .filter(|(name, _)| !has(name))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|(n, _)| n.as_str()).collect();
        if !config.auto_evolve {
            return Err(ConnectError::Task(format!(
                "Table \"{}\" is missing fields ({}) and auto-evolution is disabled (auto.evolve=false)",
                row.table,
                names.join(", ")
            )));
        }
        for (name, cell) in &missing {
            if !cell.schema.optional && cell.schema.default.is_none() {
                return Err(ConnectError::Task(format!(
                    "Cannot ALTER TABLE \"{}\" to add missing field {name}, as the field is not optional and does not have a default value",
                    row.table
                )));
            }
        }
        for (name, cell) in &missing {
            let sql = format!(
                "ALTER TABLE {} ADD {} {} NULL",
                known.id.quoted(db.dialect, config.quote),
                quote(db.dialect, config.quote, name),
                sql_type(db.dialect, &cell.schema, false)
            );
            tracing::info!(%sql, "JDBC sink: adding a column");
            db.execute(&sql).await?;
        }
        let columns = db.columns(&known.id).await?;
        self.tables.insert(
            row.table.clone(),
            KnownTable {
                id: known.id,
                columns,
            },
        );
        Ok(())
    }

    async fn put_records(&mut self, records: &[SinkRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let config = self.config()?.clone();
        let db = match self.database().await {
            Ok(db) => db,
            Err(err) => return self.retry_or_fail(err).await,
        };
        let mut rows = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            match self.row(&config, record, index) {
                Ok(row) => rows.push(row),
                Err(err) => self.report(record, err).await?,
            }
        }
        for row in &rows {
            let needs = !self.tables.contains_key(&row.table) || {
                let known = &self.tables[&row.table];
                row.key.iter().chain(&row.values).any(|(n, _)| {
                    !known
                        .columns
                        .iter()
                        .any(|c| &c.name == n || c.name.eq_ignore_ascii_case(n))
                })
            };
            if needs {
                self.prepare_table(&db, &config, row).await?;
            }
        }
        let started = std::time::Instant::now();
        let written = write(&db, &config, &self.tables, &rows).await;
        tracing::debug!(
            rows = rows.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "JDBC sink: a put written"
        );
        match written {
            Ok(()) => {
                self.retries = 0;
                Ok(())
            }
            Err(WriteError::Connection(err)) => {
                self.db = None;
                self.retry_or_fail(err).await
            }
            Err(WriteError::Data(err)) => {
                tracing::warn!(%err, "JDBC sink: the batch failed; writing its records one by one");
                for row in &rows {
                    match write(&db, &config, &self.tables, std::slice::from_ref(row)).await {
                        Ok(()) => {}
                        Err(WriteError::Connection(err)) => {
                            self.db = None;
                            return self.retry_or_fail(err).await;
                        }
                        Err(WriteError::Data(err)) => {
                            self.report(&records[row.record], err).await?
                        }
                    }
                }
                self.retries = 0;
                Ok(())
            }
        }
    }

    /// Hands a record that cannot be written to the runtime (or fails the task without a
    /// reporter).
    async fn report(&self, record: &SinkRecord, err: ConnectError) -> Result<()> {
        match &self.reporter {
            Some(reporter) => reporter.report(record, err).await,
            None => Err(err),
        }
    }

    /// After `retry.backoff.ms`, a retriable error while retries remain (Confluent's
    /// `max.retries`: the runtime puts the records again), else the error.
    async fn retry_or_fail(&mut self, err: ConnectError) -> Result<()> {
        let (max_retries, backoff) = {
            let config = self.config()?;
            (config.max_retries, config.retry_backoff)
        };
        if self.retries < max_retries {
            self.retries += 1;
            tracing::warn!(%err, attempt = self.retries, "JDBC sink: write failed; the records will be put again after retry.backoff.ms");
            tokio::time::sleep(backoff).await;
            return Err(ConnectError::Retriable(err.to_string()));
        }
        Err(err)
    }
}

/// How a write failed.
enum WriteError {
    /// The connection (try again later).
    Connection(ConnectError),
    /// The statement (the data or the table).
    Data(ConnectError),
}

fn write_error(what: &str, err: sqlx::Error) -> WriteError {
    let connection = matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
    );
    let err = db_error(what, err);
    if connection {
        WriteError::Connection(err)
    } else {
        WriteError::Data(err)
    }
}

fn quote(dialect: Dialect, quote: bool, name: &str) -> String {
    if quote {
        dialect.quote(name)
    } else {
        name.to_string()
    }
}

/// The id a table name (`name` or `schema.name`) gets when the sink creates it.
fn table_id(name: &str, db: &Database) -> TableId {
    match name.rsplit_once('.') {
        Some((schema, table)) if db.dialect == Dialect::Postgres => TableId {
            catalog: db.catalog.clone(),
            schema: Some(schema.to_string()),
            name: table.to_string(),
        },
        _ => TableId {
            catalog: db.catalog.clone(),
            schema: None,
            name: name.rsplit('.').next().unwrap_or(name).to_string(),
        },
    }
}

/// The column type a schema becomes (Confluent's dialects' `getSqlType`).
fn sql_type(dialect: Dialect, schema: &SchemaRef, key: bool) -> String {
    let scale = logical::decimal_scale(schema).unwrap_or(0);
    match (schema.name.as_deref(), dialect) {
        (Some(logical::DECIMAL), Dialect::Postgres) => return "DECIMAL".into(),
        (Some(logical::DECIMAL), Dialect::MySql) => return format!("DECIMAL(65,{scale})"),
        (Some(logical::DECIMAL), Dialect::Sqlite) => return "NUMERIC".into(),
        (Some(logical::DATE), _) => return "DATE".into(),
        (Some(logical::TIME), Dialect::MySql) => return "TIME(3)".into(),
        (Some(logical::TIME), _) => return "TIME".into(),
        (Some(logical::TIMESTAMP), Dialect::MySql) => return "DATETIME(3)".into(),
        (Some(logical::TIMESTAMP), Dialect::Postgres) => return "TIMESTAMP".into(),
        (Some(logical::TIMESTAMP), Dialect::Sqlite) => return "DATETIME".into(),
        _ => {}
    }
    let t = match (schema.ty, dialect) {
        (Type::Int8, Dialect::MySql) => "TINYINT",
        (Type::Int8 | Type::Int16, Dialect::Postgres | Dialect::MySql) => "SMALLINT",
        (Type::Int32, Dialect::Postgres | Dialect::MySql) => "INT",
        (Type::Int64, Dialect::Postgres | Dialect::MySql) => "BIGINT",
        (Type::Int8 | Type::Int16 | Type::Int32 | Type::Int64, Dialect::Sqlite) => "INTEGER",
        (Type::Float32, Dialect::Postgres) => "REAL",
        (Type::Float32, Dialect::MySql) => "FLOAT",
        (Type::Float64, Dialect::Postgres) => "DOUBLE PRECISION",
        (Type::Float64, Dialect::MySql) => "DOUBLE",
        (Type::Float32 | Type::Float64, Dialect::Sqlite) => "REAL",
        (Type::Boolean, Dialect::Postgres) => "BOOLEAN",
        (Type::Boolean, Dialect::MySql) => "TINYINT(1)",
        (Type::Boolean, Dialect::Sqlite) => "BOOLEAN",
        (Type::String, Dialect::MySql) if key => "VARCHAR(256)",
        (Type::String, Dialect::MySql) => "TEXT",
        (Type::Bytes, Dialect::Postgres) => "BYTEA",
        (Type::Bytes, Dialect::MySql) if key => "VARBINARY(1024)",
        (Type::Bytes, Dialect::MySql) => "LONGBLOB",
        (Type::Bytes, Dialect::Sqlite) => "BLOB",
        _ => "TEXT",
    };
    t.to_string()
}

/// `CREATE TABLE` for `row`'s columns, its key columns the primary key.
fn create_table(dialect: Dialect, q: bool, id: &TableId, row: &Row) -> String {
    let mut columns: Vec<String> = Vec::new();
    for (name, cell) in &row.key {
        columns.push(format!(
            "{} {} NOT NULL",
            quote(dialect, q, name),
            sql_type(dialect, &cell.schema, true)
        ));
    }
    for (name, cell) in &row.values {
        let null = if cell.schema.optional {
            "NULL"
        } else {
            "NOT NULL"
        };
        columns.push(format!(
            "{} {} {null}",
            quote(dialect, q, name),
            sql_type(dialect, &cell.schema, false)
        ));
    }
    if !row.key.is_empty() {
        columns.push(format!(
            "PRIMARY KEY({})",
            row.key
                .iter()
                .map(|(n, _)| quote(dialect, q, n))
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    format!(
        "CREATE TABLE {} (\n{})",
        id.quoted(dialect, q),
        columns.join(",\n")
    )
}

/// One statement: SQL and its rows' cells in bind order.
struct Statement {
    sql: String,
    cells: Vec<Cell>,
}

/// The statements that write `rows`, in order.
fn statements(
    dialect: Dialect,
    config: &SinkConfig,
    tables: &HashMap<String, KnownTable>,
    rows: &[Row],
) -> Vec<Statement> {
    let q = |name: &str| quote(dialect, config.quote, name);
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let first = &rows[i];
        let Some(table) = tables.get(&first.table) else {
            i += 1;
            continue;
        };
        let table_sql = table.id.quoted(dialect, config.quote);
        let shape = first.shape();
        let placeholder = |n: usize, cell: &Cell| {
            let p = dialect.placeholder(n);
            if dialect == Dialect::Postgres && cell.schema.name.as_deref() == Some(logical::DECIMAL)
            {
                format!("CAST({p} AS NUMERIC)")
            } else {
                p
            }
        };
        let where_key = |start: usize, row: &Row| -> String {
            row.key
                .iter()
                .enumerate()
                .map(|(k, (name, cell))| {
                    format!("{} = {}", q(name), placeholder(start + k + 1, cell))
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        if first.delete || config.insert_mode == InsertMode::Update {
            // One row per statement (a prepared statement, cached by the connection).
            let row = first;
            if row.delete {
                out.push(Statement {
                    sql: format!("DELETE FROM {table_sql} WHERE {}", where_key(0, row)),
                    cells: row.key.iter().map(|(_, c)| c.clone()).collect(),
                });
            } else if !row.values.is_empty() {
                let set = row
                    .values
                    .iter()
                    .enumerate()
                    .map(|(k, (name, cell))| format!("{} = {}", q(name), placeholder(k + 1, cell)))
                    .collect::<Vec<_>>()
                    .join(", ");
                out.push(Statement {
                    sql: format!(
                        "UPDATE {table_sql} SET {set} WHERE {}",
                        where_key(row.values.len(), row)
                    ),
                    cells: row
                        .values
                        .iter()
                        .chain(&row.key)
                        .map(|(_, c)| c.clone())
                        .collect(),
                });
            }
            i += 1;
            continue;
        }
        // Consecutive rows of this shape, up to the batch size and the parameter limit, no
        // key twice (an upsert may not touch a row twice in one statement).
        let width = first.key.len() + first.values.len();
        let limit = config
            .batch_size
            .min(dialect.max_parameters() / width.max(1))
            .max(1);
        let mut keys: HashSet<Vec<String>> = HashSet::new();
        let mut end = i;
        while end < rows.len() && end - i < limit && rows[end].shape() == shape {
            if !rows[end].key.is_empty() {
                let key: Vec<String> = rows[end]
                    .key
                    .iter()
                    .map(|(_, c)| format!("{:?}", c.value))
                    .collect();
                if !keys.insert(key) {
                    break;
                }
            }
            end += 1;
        }
        let names: Vec<String> = first
            .key
            .iter()
            .chain(&first.values)
            .map(|(n, _)| q(n))
            .collect();
        let mut cells = Vec::with_capacity((end - i) * width);
        let mut tuples = Vec::with_capacity(end - i);
        for row in &rows[i..end] {
            let mut tuple = Vec::with_capacity(width);
            for (_, cell) in row.key.iter().chain(&row.values) {
                cells.push(cell.clone());
                tuple.push(placeholder(cells.len(), cell));
            }
            tuples.push(format!("({})", tuple.join(",")));
        }
        let mut sql = format!(
            "INSERT INTO {table_sql} ({}) VALUES {}",
            names.join(","),
            tuples.join(",")
        );
        if config.insert_mode == InsertMode::Upsert && !first.key.is_empty() {
            let keys: Vec<String> = first.key.iter().map(|(n, _)| q(n)).collect();
            let others: Vec<String> = first.values.iter().map(|(n, _)| q(n)).collect();
            match dialect {
                Dialect::MySql => {
                    let update = if others.is_empty() { &keys } else { &others };
                    sql.push_str(" ON DUPLICATE KEY UPDATE ");
                    sql.push_str(
                        &update
                            .iter()
                            .map(|c| format!("{c}=VALUES({c})"))
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                }
                _ => {
                    sql.push_str(&format!(" ON CONFLICT ({}) ", keys.join(",")));
                    if others.is_empty() {
                        sql.push_str("DO NOTHING");
                    } else {
                        sql.push_str("DO UPDATE SET ");
                        sql.push_str(
                            &others
                                .iter()
                                .map(|c| format!("{c}=EXCLUDED.{c}"))
                                .collect::<Vec<_>>()
                                .join(","),
                        );
                    }
                }
            }
        }
        out.push(Statement { sql, cells });
        i = end;
    }
    out
}

/// Writes `rows` in one transaction.
async fn write(
    db: &Database,
    config: &SinkConfig,
    tables: &HashMap<String, KnownTable>,
    rows: &[Row],
) -> std::result::Result<(), WriteError> {
    let statements = statements(db.dialect, config, tables, rows);
    let what = |s: &Statement| {
        format!(
            "{} failed on {}",
            s.sql
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            db.description
        )
    };
    macro_rules! run {
        ($pool:expr, $bind:ident) => {{
            let mut tx = $pool
                .begin()
                .await
                .map_err(|e| write_error("starting a transaction", e))?;
            for statement in &statements {
                let mut query = sqlx::query(safe(&statement.sql));
                for cell in &statement.cells {
                    query = $bind(query, cell).map_err(WriteError::Data)?;
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| write_error(&what(statement), e))?;
            }
            tx.commit()
                .await
                .map_err(|e| write_error("committing", e))?;
        }};
    }
    match &db.pool {
        Pool::Postgres(p) => run!(p, bind_pg),
        Pool::MySql(p) => run!(p, bind_mysql),
        Pool::Sqlite(p) => run!(p, bind_sqlite),
    }
    Ok(())
}

/// A cell's value as the Rust type bound for its schema, null included (typed, so the
/// database knows the parameter's type).
macro_rules! bind_cell {
    ($name:ident, $db:ty, $int8:ty, $bool_as_int:expr) => {
        fn $name<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            cell: &Cell,
        ) -> Result<sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>> {
            let v = &cell.value;
            let bad = || ConnectError::Data(format!("a {} value does not fit its schema ({:?})", v.type_name(), cell.schema.ty));
            Ok(match cell.schema.name.as_deref() {
                Some(logical::DECIMAL) => {
                    let scale = logical::decimal_scale(&cell.schema)?;
                    query.bind(match v {
                        Value::Null => None,
                        Value::Bytes(b) => Some(logical::decimal_to_string(logical::decimal_unscaled(b)?, scale)),
                        _ => return Err(bad()),
                    })
                }
                Some(logical::DATE) => query.bind(match v {
                    Value::Null => None,
                    Value::Int32(days) => Some(date(*days)?),
                    _ => return Err(bad()),
                }),
                Some(logical::TIME) => query.bind(match v {
                    Value::Null => None,
                    Value::Int32(ms) => Some(time(*ms)?),
                    _ => return Err(bad()),
                }),
                Some(logical::TIMESTAMP) => query.bind(match v {
                    Value::Null => None,
                    Value::Int64(ms) => Some(timestamp(*ms)?),
                    _ => return Err(bad()),
                }),
                _ => match (cell.schema.ty, v) {
                    (Type::Int8, Value::Int8(n)) => query.bind(Some(<$int8>::from(*n))),
                    (Type::Int8, Value::Null) => query.bind(None::<$int8>),
                    (Type::Int16, Value::Int16(n)) => query.bind(Some(*n)),
                    (Type::Int16, Value::Null) => query.bind(None::<i16>),
                    (Type::Int32, Value::Int32(n)) => query.bind(Some(*n)),
                    (Type::Int32, Value::Null) => query.bind(None::<i32>),
                    (Type::Int64, Value::Int64(n)) => query.bind(Some(*n)),
                    (Type::Int64, Value::Null) => query.bind(None::<i64>),
                    (Type::Float32, Value::Float32(n)) => query.bind(Some(*n)),
                    (Type::Float32, Value::Null) => query.bind(None::<f32>),
                    (Type::Float64, Value::Float64(n)) => query.bind(Some(*n)),
                    (Type::Float64, Value::Null) => query.bind(None::<f64>),
                    (Type::Boolean, Value::Boolean(b)) => {
                        if $bool_as_int { query.bind(Some(i16::from(*b))) } else { query.bind(Some(*b)) }
                    }
                    (Type::Boolean, Value::Null) => {
                        if $bool_as_int { query.bind(None::<i16>) } else { query.bind(None::<bool>) }
                    }
                    (Type::String, Value::String(s)) => query.bind(Some(s.clone())),
                    (Type::Bytes, Value::Bytes(b)) => query.bind(Some(b.to_vec())),
                    (Type::String, Value::Null) => query.bind(None::<String>),
                    (Type::Bytes, Value::Null) => query.bind(None::<Vec<u8>>),
                    (ty, _) => {
                        return Err(ConnectError::Data(format!(
                            "a {} field cannot be written to a column (only primitive and logical types can)",
                            ty.name()
                        )))
                    }
                },
            })
        }
    };
}

bind_cell!(bind_pg, sqlx::Postgres, i16, false);
bind_cell!(bind_mysql, sqlx::MySql, i8, false);
bind_cell!(bind_sqlite, sqlx::Sqlite, i8, false);

fn date(days: i32) -> Result<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(i64::from(days))))
        .ok_or_else(|| {
            ConnectError::Data(format!("date {days} days from 1970-01-01 is out of range"))
        })
}

fn time(ms: i32) -> Result<NaiveTime> {
    let ms = ms.max(0) as u32;
    NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000)
        .ok_or_else(|| ConnectError::Data(format!("time {ms} ms after midnight is out of range")))
}

fn timestamp(ms: i64) -> Result<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc())
        .ok_or_else(|| ConnectError::Data(format!("timestamp {ms} ms is out of range")))
}

impl SinkTask for JdbcSinkTask {
    fn initialize(&mut self, context: SinkTaskContext) {
        self.reporter = context.errant_record_reporter().cloned();
    }

    fn start<'a>(&'a mut self, props: &'a Props) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.config = Some(SinkConfig::parse(props)?);
            self.connection = Some(ConnectionConfig::from_props(props)?);
            // Connecting now: a wrong URL or password fails the task at once, by name.
            self.database().await?;
            Ok(())
        })
    }

    fn put<'a>(&'a mut self, records: &'a [SinkRecord]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_records(records))
    }

    /// Every `put` was written and committed before it returned.
    fn flush<'a>(
        &'a mut self,
        _offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if let Some(db) = self.db.take() {
                db.close().await;
            }
            Ok(())
        })
    }
}
