//! The JDBC sink: records written as rows, in Confluent's `insert.mode`s and `pk.mode`s.
//!
//! Each `put` is written in one transaction: consecutive rows for the same table, columns
//! and operation go in one prepared statement (up to `batch.size` rows: on PostgreSQL one
//! array per column through `UNNEST`, elsewhere a multi-row `VALUES` within the database's
//! limit on parameters). The transaction runs on a task of its own while the next `put`
//! converts its records; `put` and `flush` wait for it first. Upserts are tried as plain
//! inserts where a success means the same thing ([`Optimism`]). When the transaction fails
//! for a reason in the data (a constraint, a value the column refuses), it is rolled back
//! and the records are written one by one, and those the database refuses go to the
//! runtime's error handling with its message (the task fails, or with
//! `errors.tolerance=all` they are skipped and sent to the dead letter queue). A lost
//! connection is retried `max.retries` times.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
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

/// A table as the sink knows it.
#[derive(Debug, Clone)]
struct KnownTable {
    id: TableId,
    columns: Vec<Column>,
    /// Its primary key's and unique indexes' columns (`None`: any key will do).
    unique_keys: Option<Vec<Vec<String>>>,
}

impl KnownTable {
    /// Read from the database.
    async fn read(db: &Database, id: TableId) -> Result<KnownTable> {
        Ok(KnownTable {
            columns: db.columns(&id).await?,
            unique_keys: db.unique_keys(&id).await?,
            id,
        })
    }

    /// Whether an upsert of `row` is the plain insert of it when that succeeds: its key
    /// columns are exactly a unique key of the table (names compared exactly when they are
    /// quoted, as the database then compares them).
    fn upsert_is_insert(&self, row: &Row, quoted: bool) -> bool {
        let Some(keys) = &self.unique_keys else {
            return true;
        };
        let same = |a: &str, b: &str| a == b || (!quoted && a.eq_ignore_ascii_case(b));
        keys.iter().any(|key| {
            key.len() == row.key.len()
                && row
                    .key
                    .iter()
                    .all(|(name, _)| key.iter().any(|k| same(k, name)))
        })
    }
}

/// `io.confluent.connect.jdbc.sink.JdbcSinkTask`.
#[derive(Default)]
pub struct JdbcSinkTask {
    config: Option<Arc<SinkConfig>>,
    connection: Option<ConnectionConfig>,
    db: Option<Database>,
    tables: Arc<HashMap<String, KnownTable>>,
    reporter: Option<ErrantRecordReporter>,
    /// Failed attempts of the current batch (Confluent's remaining retries).
    retries: u32,
    /// The batch being written while the next `put` converts its records.
    in_flight: Option<InFlight>,
    /// When upserts are first tried as plain inserts.
    optimism: Optimism,
}

/// Upserts tried as plain inserts: a database does much less for an `INSERT` than for an
/// upsert (PostgreSQL's `ON CONFLICT` checks, inserts speculatively and confirms each row),
/// and a batch of new keys is written the same either way. A batch whose insert meets an
/// existing key is rolled back and upserted; plain inserts are then tried again only after
/// 2, 4, ... 64 batches, so a topic of updates pays for one failed try in 64 at most.
#[derive(Debug, Default)]
struct Optimism {
    /// Batches to upsert before the next try.
    wait: u32,
    /// Tries that met an existing key in a row.
    misses: u32,
}

impl Optimism {
    /// Whether the next batch is tried as plain inserts.
    fn next(&mut self) -> bool {
        if self.wait > 0 {
            self.wait -= 1;
            return false;
        }
        true
    }

    /// What a try did.
    fn tried(&mut self, hit: bool) {
        if hit {
            self.misses = 0;
        } else {
            self.misses = (self.misses + 1).min(6);
            self.wait = 1 << self.misses;
        }
    }
}

/// A `put`'s rows, written in one transaction by a task of their own.
struct Batch {
    config: Arc<SinkConfig>,
    tables: Arc<HashMap<String, KnownTable>>,
    rows: Vec<Row>,
    /// The records of `rows` (by [`Row::record`]), to report those the database refuses.
    records: Vec<SinkRecord>,
    reporter: Option<ErrantRecordReporter>,
    /// An upsert tried as plain inserts first (see [`Optimism`]).
    optimistic: bool,
}

/// A batch being written, and whether its plain inserts worked (when tried).
struct InFlight {
    write: tokio::task::JoinHandle<(std::result::Result<(), WriteError>, Option<bool>)>,
    batch: Arc<Batch>,
}

impl Batch {
    /// Writes the rows in one transaction; when the data fails it, they are written one by
    /// one and those the database refuses are reported (a [`WriteError::Fatal`] when the
    /// error policy fails the task).
    /// With the outcome, whether plain inserts worked when they were tried.
    async fn write(&self, db: &Database) -> (std::result::Result<(), WriteError>, Option<bool>) {
        let mut tried = None;
        if self.optimistic {
            let started = std::time::Instant::now();
            let inserted = write(
                db,
                &self.config,
                &self.tables,
                &self.rows,
                InsertMode::Insert,
            )
            .await;
            tracing::debug!(
                rows = self.rows.len(),
                elapsed_us = started.elapsed().as_micros() as u64,
                ok = inserted.is_ok(),
                "JDBC sink: a batch tried as plain inserts"
            );
            match inserted {
                Ok(()) => return (Ok(()), Some(true)),
                Err(WriteError::Connection(err)) => {
                    return (Err(WriteError::Connection(err)), None)
                }
                // An existing key (or something else the upsert will say again).
                Err(_) => tried = Some(false),
            }
        }
        (self.upsert(db).await, tried)
    }

    /// Writes the rows in the configured mode.
    async fn upsert(&self, db: &Database) -> std::result::Result<(), WriteError> {
        let started = std::time::Instant::now();
        let mode = self.config.insert_mode;
        let written = write(db, &self.config, &self.tables, &self.rows, mode).await;
        tracing::debug!(
            rows = self.rows.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "JDBC sink: a batch written"
        );
        let Err(WriteError::Data(err) | WriteError::DuplicateKey(err)) = written else {
            return written;
        };
        tracing::warn!(%err, "JDBC sink: the batch failed; writing its records one by one");
        for row in &self.rows {
            match write(
                db,
                &self.config,
                &self.tables,
                std::slice::from_ref(row),
                mode,
            )
            .await
            {
                Ok(()) => {}
                Err(WriteError::Data(err) | WriteError::DuplicateKey(err)) => {
                    let record = &self.records[row.record];
                    let reported = match &self.reporter {
                        Some(reporter) => reporter.report(record, err).await,
                        None => Err(err),
                    };
                    reported.map_err(WriteError::Fatal)?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }
}

impl JdbcSinkTask {
    /// A task, not started.
    pub fn new() -> JdbcSinkTask {
        JdbcSinkTask::default()
    }

    fn config(&self) -> Result<Arc<SinkConfig>> {
        self.config
            .clone()
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
                    Some(id) => KnownTable::read(db, id).await?,
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
                        KnownTable::read(db, id).await?
                    }
                };
                Arc::make_mut(&mut self.tables).insert(row.table.clone(), known.clone());
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
        Arc::make_mut(&mut self.tables).insert(row.table.clone(), KnownTable { columns, ..known });
        Ok(())
    }

    async fn put_records(&mut self, records: &[SinkRecord]) -> Result<()> {
        if records.is_empty() {
            // The runtime's idle call: a finished write's failure is not left waiting.
            if self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.write.is_finished())
            {
                self.settle().await?;
            }
            return Ok(());
        }
        let config = self.config()?;
        // Converted while the previous batch is written.
        let mut rows = Vec::with_capacity(records.len());
        let mut references = Vec::with_capacity(records.len());
        for record in records {
            match self.row(&config, record, references.len()) {
                Ok(row) => {
                    rows.push(row);
                    references.push(record.reference());
                }
                Err(err) => self.report(record, err).await?,
            }
        }
        self.settle().await?;
        if rows.is_empty() {
            return Ok(());
        }
        let db = match self.database().await {
            Ok(db) => db,
            Err(err) => return self.retry_or_fail(err).await,
        };
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
        let optimistic = config.insert_mode == InsertMode::Upsert
            && self.upserts_are_inserts(&rows)
            && self.optimism.next();
        let batch = Arc::new(Batch {
            config,
            tables: self.tables.clone(),
            rows,
            records: references,
            reporter: self.reporter.clone(),
            optimistic,
        });
        let write = tokio::spawn({
            let batch = batch.clone();
            async move { batch.write(&db).await }
        });
        self.in_flight = Some(InFlight { write, batch });
        Ok(())
    }

    /// Whether every row's upsert is its plain insert when that succeeds.
    fn upserts_are_inserts(&self, rows: &[Row]) -> bool {
        let quoted = self.config.as_ref().is_some_and(|c| c.quote);
        let mut checked: Option<&Row> = None;
        rows.iter().all(|row| {
            // Rows of one shape share the answer.
            if checked.is_some_and(|c| same_shape(c, row, false)) {
                return true;
            }
            checked = Some(row);
            row.delete
                || self
                    .tables
                    .get(&row.table)
                    .is_some_and(|t| t.upsert_is_insert(row, quoted))
        })
    }

    /// Waits for the batch being written; a lost connection is retried here (`max.retries`
    /// times, `retry.backoff.ms` apart).
    async fn settle(&mut self) -> Result<()> {
        let Some(InFlight { write, batch }) = self.in_flight.take() else {
            return Ok(());
        };
        let (mut outcome, tried) = write.await.unwrap_or_else(|err| {
            let err = ConnectError::Task(format!("the JDBC sink's write stopped: {err}"));
            (Err(WriteError::Fatal(err)), None)
        });
        if let Some(hit) = tried {
            self.optimism.tried(hit);
        }
        loop {
            match outcome {
                Ok(()) => {
                    self.retries = 0;
                    return Ok(());
                }
                Err(
                    WriteError::Data(err) | WriteError::DuplicateKey(err) | WriteError::Fatal(err),
                ) => return Err(err),
                Err(WriteError::Connection(err)) => {
                    self.db = None;
                    let config = self.config()?;
                    if self.retries >= config.max_retries {
                        return Err(err);
                    }
                    self.retries += 1;
                    tracing::warn!(%err, attempt = self.retries, "JDBC sink: write failed; the batch is written again after retry.backoff.ms");
                    tokio::time::sleep(config.retry_backoff).await;
                    outcome = match self.database().await {
                        Ok(db) => batch.upsert(&db).await,
                        Err(err) => Err(WriteError::Connection(err)),
                    };
                }
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
    /// A key already in the table (a unique constraint).
    DuplicateKey(ConnectError),
    /// A refused record the error policy does not tolerate.
    Fatal(ConnectError),
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
    let duplicate = err
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation());
    let err = db_error(what, err);
    if connection {
        WriteError::Connection(err)
    } else if duplicate {
        WriteError::DuplicateKey(err)
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

/// How a statement's parameters are bound.
enum Binds<'a> {
    /// Cell by cell, in order.
    Cells(Vec<&'a Cell>),
    /// One array per column (PostgreSQL's `UNNEST`): the rows, key columns then the others.
    Columns(&'a [Row]),
}

/// One statement: SQL and how its parameters are bound.
struct Statement<'a> {
    sql: String,
    binds: Binds<'a>,
}

/// `row`'s `n`th column: key columns, then the others.
fn column(row: &Row, n: usize) -> &Cell {
    match row.key.get(n) {
        Some((_, cell)) => cell,
        None => &row.values[n - row.key.len()].1,
    }
}

/// Whether `a` and `b` go in one statement: the same table, operation and column names
/// (and, with `types`, the same schema per column: one array each).
fn same_shape(a: &Row, b: &Row, types: bool) -> bool {
    let same_columns = |x: &[(String, Cell)], y: &[(String, Cell)]| {
        x.len() == y.len()
            && x.iter().zip(y).all(|((n, c), (m, d))| {
                n == m
                    && (!types
                        || std::sync::Arc::ptr_eq(&c.schema, &d.schema)
                        || c.schema == d.schema)
            })
    };
    a.table == b.table
        && a.delete == b.delete
        && same_columns(&a.key, &b.key)
        && same_columns(&a.values, &b.values)
}

/// A hash of a row's key values (rows of one upsert statement must have different keys; a
/// collision only ends a statement early).
fn key_hash(row: &Row) -> u64 {
    use std::hash::{Hash, Hasher};
    fn value(v: &Value, h: &mut impl Hasher) {
        std::mem::discriminant(v).hash(h);
        match v {
            Value::Null => {}
            Value::Int8(n) => n.hash(h),
            Value::Int16(n) => n.hash(h),
            Value::Int32(n) => n.hash(h),
            Value::Int64(n) => n.hash(h),
            Value::Float32(n) => n.to_bits().hash(h),
            Value::Float64(n) => n.to_bits().hash(h),
            Value::Boolean(b) => b.hash(h),
            Value::String(s) => s.hash(h),
            Value::Bytes(b) => b.hash(h),
            // Not column values (refused when bound); hashed by their text.
            other => format!("{other:?}").hash(h),
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (_, cell) in &row.key {
        value(&cell.value, &mut h);
    }
    h.finish()
}

/// The array type a column of `schema` is bound as on PostgreSQL (see [`bind_pg_column`]).
fn pg_array_type(schema: &SchemaRef) -> Result<&'static str> {
    Ok(match schema.name.as_deref() {
        Some(logical::DECIMAL) => "NUMERIC[]",
        Some(logical::DATE) => "DATE[]",
        Some(logical::TIME) => "TIME[]",
        Some(logical::TIMESTAMP) => "TIMESTAMP[]",
        _ => match schema.ty {
            Type::Int8 | Type::Int16 => "SMALLINT[]",
            Type::Int32 => "INT[]",
            Type::Int64 => "BIGINT[]",
            Type::Float32 => "REAL[]",
            Type::Float64 => "DOUBLE PRECISION[]",
            Type::Boolean => "BOOLEAN[]",
            Type::String => "TEXT[]",
            Type::Bytes => "BYTEA[]",
            ty => return Err(not_a_column(ty)),
        },
    })
}

fn not_a_column(ty: Type) -> ConnectError {
    ConnectError::Data(format!(
        "a {} field cannot be written to a column (only primitive and logical types can)",
        ty.name()
    ))
}

/// The statements that write `rows`, in order.
fn statements<'a>(
    dialect: Dialect,
    config: &SinkConfig,
    tables: &HashMap<String, KnownTable>,
    rows: &'a [Row],
    mode: InsertMode,
) -> std::result::Result<Vec<Statement<'a>>, WriteError> {
    let q = |name: &str| quote(dialect, config.quote, name);
    let placeholder = |n: usize, cell: &Cell| {
        let p = dialect.placeholder(n);
        if dialect == Dialect::Postgres && cell.schema.name.as_deref() == Some(logical::DECIMAL) {
            format!("CAST({p} AS NUMERIC)")
        } else {
            p
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let first = &rows[i];
        let Some(table) = tables.get(&first.table) else {
            i += 1;
            continue;
        };
        let table_sql = table.id.quoted(dialect, config.quote);
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
        if first.delete || mode == InsertMode::Update {
            // One row per statement (a prepared statement, cached by the connection).
            let row = first;
            if row.delete {
                out.push(Statement {
                    sql: format!("DELETE FROM {table_sql} WHERE {}", where_key(0, row)),
                    binds: Binds::Cells(row.key.iter().map(|(_, c)| c).collect()),
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
                    binds: Binds::Cells(
                        row.values.iter().chain(&row.key).map(|(_, c)| c).collect(),
                    ),
                });
            }
            i += 1;
            continue;
        }
        // Consecutive rows of this shape, up to the batch size (and the parameter limit of
        // a multi-row VALUES), no key twice (an upsert may not touch a row twice in one
        // statement). PostgreSQL gets one array per column: one small statement, prepared
        // once whatever the number of rows, instead of a VALUES list planned every time.
        let arrays = dialect == Dialect::Postgres;
        let width = first.key.len() + first.values.len();
        let limit = if arrays {
            config.batch_size
        } else {
            config
                .batch_size
                .min(dialect.max_parameters() / width.max(1))
                .max(1)
        };
        let mut keys: HashSet<u64> = HashSet::new();
        let mut end = i;
        while end < rows.len() && end - i < limit && same_shape(first, &rows[end], arrays) {
            if !rows[end].key.is_empty() && !keys.insert(key_hash(&rows[end])) {
                break;
            }
            end += 1;
        }
        let names: Vec<String> = first
            .key
            .iter()
            .chain(&first.values)
            .map(|(n, _)| q(n))
            .collect();
        let (mut sql, binds) = if arrays {
            let mut unnest = Vec::with_capacity(width);
            for n in 0..width {
                let ty = pg_array_type(&column(first, n).schema).map_err(WriteError::Data)?;
                unnest.push(format!("CAST(${} AS {ty})", n + 1));
            }
            (
                format!(
                    "INSERT INTO {table_sql} ({}) SELECT * FROM UNNEST({})",
                    names.join(","),
                    unnest.join(",")
                ),
                Binds::Columns(&rows[i..end]),
            )
        } else {
            let mut cells = Vec::with_capacity((end - i) * width);
            let mut sql = format!("INSERT INTO {table_sql} ({}) VALUES ", names.join(","));
            for (t, row) in rows[i..end].iter().enumerate() {
                sql.push_str(if t == 0 { "(" } else { ",(" });
                for (k, (_, cell)) in row.key.iter().chain(&row.values).enumerate() {
                    cells.push(cell);
                    if k > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&placeholder(cells.len(), cell));
                }
                sql.push(')');
            }
            (sql, Binds::Cells(cells))
        };
        if mode == InsertMode::Upsert && !first.key.is_empty() {
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
        out.push(Statement { sql, binds });
        i = end;
    }
    Ok(out)
}

/// Writes `rows` in one transaction, in `mode`.
async fn write(
    db: &Database,
    config: &SinkConfig,
    tables: &HashMap<String, KnownTable>,
    rows: &[Row],
    mode: InsertMode,
) -> std::result::Result<(), WriteError> {
    let statements = statements(db.dialect, config, tables, rows, mode)?;
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
        ($pool:expr, $bind:ident, $columns:expr) => {{
            let mut tx = $pool
                .begin()
                .await
                .map_err(|e| write_error("starting a transaction", e))?;
            for statement in &statements {
                let mut query = sqlx::query(safe(&statement.sql));
                match &statement.binds {
                    Binds::Cells(cells) => {
                        for cell in cells {
                            query = $bind(query, *cell).map_err(WriteError::Data)?;
                        }
                    }
                    Binds::Columns(rows) => query = $columns(query, rows)?,
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
    fn no_columns<Q>(_: Q, _: &&[Row]) -> std::result::Result<Q, WriteError> {
        Err(WriteError::Data(ConnectError::Task(
            "column arrays are bound on PostgreSQL only".into(),
        )))
    }
    match &db.pool {
        Pool::Postgres(p) => run!(p, bind_pg, bind_pg_columns),
        Pool::MySql(p) => run!(p, bind_mysql, no_columns),
        Pool::Sqlite(p) => run!(p, bind_sqlite, no_columns),
    }
    Ok(())
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds `rows`' columns as one array each, typed as [`pg_array_type`] says.
fn bind_pg_columns<'q>(
    mut query: PgQuery<'q>,
    rows: &&'q [Row],
) -> std::result::Result<PgQuery<'q>, WriteError> {
    let rows: &'q [Row] = rows;
    let Some(first) = rows.first() else {
        return Ok(query);
    };
    for n in 0..first.key.len() + first.values.len() {
        query = bind_pg_column(query, rows, n).map_err(WriteError::Data)?;
    }
    Ok(query)
}

fn bind_pg_column<'q>(query: PgQuery<'q>, rows: &'q [Row], n: usize) -> Result<PgQuery<'q>> {
    let schema = &column(&rows[0], n).schema;
    macro_rules! array {
        ($pattern:pat => $element:expr) => {{
            let mut array = Vec::with_capacity(rows.len());
            for row in rows {
                let cell = column(row, n);
                array.push(match &cell.value {
                    Value::Null => None,
                    $pattern => Some($element),
                    v => {
                        return Err(ConnectError::Data(format!(
                            "a {} value does not fit its schema ({:?})",
                            v.type_name(),
                            cell.schema.ty
                        )))
                    }
                });
            }
            query.bind(array)
        }};
    }
    Ok(match schema.name.as_deref() {
        Some(logical::DECIMAL) => {
            let scale = logical::decimal_scale(schema)?;
            array!(Value::Bytes(b) => logical::decimal_to_string(logical::decimal_unscaled(b)?, scale))
        }
        Some(logical::DATE) => array!(Value::Int32(days) => date(*days)?),
        Some(logical::TIME) => array!(Value::Int32(ms) => time(*ms)?),
        Some(logical::TIMESTAMP) => array!(Value::Int64(ms) => timestamp(*ms)?),
        _ => match schema.ty {
            Type::Int8 => array!(Value::Int8(v) => i16::from(*v)),
            Type::Int16 => array!(Value::Int16(v) => *v),
            Type::Int32 => array!(Value::Int32(v) => *v),
            Type::Int64 => array!(Value::Int64(v) => *v),
            Type::Float32 => array!(Value::Float32(v) => *v),
            Type::Float64 => array!(Value::Float64(v) => *v),
            Type::Boolean => array!(Value::Boolean(v) => *v),
            Type::String => array!(Value::String(v) => v.as_str()),
            Type::Bytes => array!(Value::Bytes(v) => v.as_ref()),
            ty => return Err(not_a_column(ty)),
        },
    })
}

/// A cell's value as the Rust type bound for its schema, null included (typed, so the
/// database knows the parameter's type).
macro_rules! bind_cell {
    ($name:ident, $db:ty, $int8:ty, $bool_as_int:expr) => {
        fn $name<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            cell: &'q Cell,
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
                    (Type::String, Value::String(s)) => query.bind(Some(s.as_str())),
                    (Type::Bytes, Value::Bytes(b)) => query.bind(Some(b.as_ref())),
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
            self.config = Some(Arc::new(SinkConfig::parse(props)?));
            self.connection = Some(ConnectionConfig::from_props(props)?);
            // Connecting now: a wrong URL or password fails the task at once, by name.
            self.database().await?;
            Ok(())
        })
    }

    fn put<'a>(&'a mut self, records: &'a [SinkRecord]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.put_records(records))
    }

    /// Every `put` is written and committed once the batch being written is.
    fn flush<'a>(
        &'a mut self,
        _offsets: &'a BTreeMap<TopicPartition, i64>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.settle())
    }

    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // Not committed (the runtime flushes before it stops when it can): a failure
            // here only means those records are put again.
            if let Err(err) = self.settle().await {
                tracing::warn!(%err, "JDBC sink: the last batch was not written");
            }
            if let Some(db) = self.db.take() {
                db.close().await;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_inserts_are_tried_again_after_longer_waits_while_they_miss() {
        let mut optimism = Optimism::default();
        assert!(optimism.next());
        optimism.tried(true);
        assert!(optimism.next(), "a hit keeps trying");
        let mut waits = Vec::new();
        for _ in 0..8 {
            optimism.tried(false);
            let mut upserted = 0;
            while !optimism.next() {
                upserted += 1;
            }
            waits.push(upserted);
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 64, 64]);
        optimism.tried(true);
        assert!(optimism.next());
        optimism.tried(false);
        assert!(!optimism.next(), "a miss after a hit waits again from 2");
        assert!(!optimism.next());
        assert!(optimism.next());
    }
}
