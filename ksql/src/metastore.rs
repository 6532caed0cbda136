//! What the server knows: its streams, tables and types, and the rules ksqlDB checks
//! their statements against (names, key columns, `WITH` properties, formats).
//!
//! Names follow ksqlDB: an unquoted identifier is upper-cased, a backticked one kept as
//! written. The metastore only holds definitions; topics and queries are the engine's.

use std::collections::BTreeMap;

use crate::error::{KsqlError, Result};
use crate::parser::ast::{
    ColumnConstraint, ColumnDef, CreateSource, Ident, Properties, PropertyValue, SourceKind,
    SqlType, Statement,
};

/// Pseudo columns every source has; no column may take their names.
pub const PSEUDO_COLUMNS: [&str; 5] = [
    "ROWTIME",
    "ROWPARTITION",
    "ROWOFFSET",
    "WINDOWSTART",
    "WINDOWEND",
];

/// ksqlDB's name for an identifier: unquoted ones upper-cased.
pub fn name_of(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_uppercase(),
    }
}

/// A serialization format of keys or values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `JSON`.
    Json,
    /// `KAFKA`: Kafka's primitive serializers.
    Kafka,
    /// `DELIMITED`: comma (or `VALUE_DELIMITER`) separated values.
    Delimited,
    /// `NONE`: no key.
    None,
}

impl Format {
    fn parse(property: &str, value: &str) -> Result<Format> {
        match value.to_ascii_uppercase().as_str() {
            "JSON" => Ok(Format::Json),
            "KAFKA" => Ok(Format::Kafka),
            "DELIMITED" => Ok(Format::Delimited),
            "NONE" => Ok(Format::None),
            "AVRO" | "PROTOBUF" | "PROTOBUF_NOSR" | "JSON_SR" => Err(KsqlError::statement(format!(
                "{property} {}: this format needs a schema registry, which Sluice does not have yet; use JSON, KAFKA, DELIMITED or NONE",
                value.to_ascii_uppercase()
            ))),
            other => Err(KsqlError::statement(format!(
                "Unknown format: {other}; {property} must be one of JSON, KAFKA, DELIMITED, NONE (AVRO, PROTOBUF and JSON_SR need a schema registry)"
            ))),
        }
    }

    /// ksqlDB's name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Kafka => "KAFKA",
            Format::Delimited => "DELIMITED",
            Format::None => "NONE",
        }
    }
}

/// A windowed source's window (`WINDOW_TYPE`, `WINDOW_SIZE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    /// `TUMBLING`, `HOPPING` or `SESSION`.
    pub kind: String,
    /// `WINDOW_SIZE` in ms (none for sessions).
    pub size_ms: Option<u64>,
}

/// A source's `WITH` properties, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceProperties {
    /// `KAFKA_TOPIC`.
    pub topic: String,
    /// `KEY_FORMAT` (or `FORMAT`; default `KAFKA`).
    pub key_format: Format,
    /// `VALUE_FORMAT` (or `FORMAT`).
    pub value_format: Format,
    /// `PARTITIONS`: create the topic with this many.
    pub partitions: Option<u32>,
    /// `REPLICAS`.
    pub replicas: Option<u16>,
    /// `TIMESTAMP`: the column a record's time comes from.
    pub timestamp: Option<String>,
    /// `TIMESTAMP_FORMAT`.
    pub timestamp_format: Option<String>,
    /// `VALUE_DELIMITER`.
    pub value_delimiter: Option<String>,
    /// `KEY_DELIMITER`.
    pub key_delimiter: Option<String>,
    /// `WRAP_SINGLE_VALUE`.
    pub wrap_single_value: Option<bool>,
    /// `WINDOW_TYPE` / `WINDOW_SIZE`.
    pub window: Option<WindowInfo>,
    /// `RETENTION` (ms).
    pub retention_ms: Option<u64>,
}

/// The properties `CREATE STREAM|TABLE` takes (ksqlDB's `CreateSourceProperties`).
const SOURCE_PROPERTIES: &[&str] = &[
    "KAFKA_TOPIC",
    "KEY_FORMAT",
    "VALUE_FORMAT",
    "FORMAT",
    "PARTITIONS",
    "REPLICAS",
    "TIMESTAMP",
    "TIMESTAMP_FORMAT",
    "VALUE_DELIMITER",
    "KEY_DELIMITER",
    "WRAP_SINGLE_VALUE",
    "WINDOW_TYPE",
    "WINDOW_SIZE",
    "RETENTION",
];

fn text(name: &str, value: &PropertyValue) -> Result<String> {
    match value {
        PropertyValue::String(s) => Ok(s.clone()),
        other => Err(KsqlError::statement(format!(
            "Invalid value for {name}: {other} (a quoted string is expected)"
        ))),
    }
}

fn whole(name: &str, value: &PropertyValue) -> Result<u64> {
    let raw = match value {
        PropertyValue::Number(n) => n.clone(),
        PropertyValue::String(s) => s.clone(),
        PropertyValue::Boolean(b) => b.to_string(),
    };
    raw.trim().parse().map_err(|_| {
        KsqlError::statement(format!(
            "Invalid value for {name}: {raw} (a whole number is expected)"
        ))
    })
}

/// `'7 DAYS'`-style durations in ms (ksqlDB's `WINDOW_SIZE` and `RETENTION`).
fn duration_ms(name: &str, value: &PropertyValue) -> Result<u64> {
    let raw = text(name, value)?;
    let mut parts = raw.split_whitespace();
    let bad = || {
        KsqlError::statement(format!(
            "Invalid value for {name}: '{raw}' (a duration such as '10 SECONDS' is expected)"
        ))
    };
    let n: u64 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let unit = parts.next().ok_or_else(bad)?.to_ascii_uppercase();
    let ms = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => return Err(bad()),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(n.saturating_mul(ms))
}

impl SourceProperties {
    /// Checks `properties` for a stream or table (`topic_default`: the name a derived
    /// source's topic takes when `KAFKA_TOPIC` is not given; `None` where it is required).
    pub fn check(properties: &Properties, topic_default: Option<&str>) -> Result<SourceProperties> {
        let unknown: Vec<&str> = properties
            .0
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !SOURCE_PROPERTIES.contains(n))
            .collect();
        if !unknown.is_empty() {
            return Err(KsqlError::statement(format!(
                "Invalid config variable(s) in the WITH clause: {}",
                unknown.join(",")
            )));
        }
        let get = |name: &str| properties.get(name);
        let topic = match (get("KAFKA_TOPIC"), topic_default) {
            (Some(v), _) => text("KAFKA_TOPIC", v)?,
            (None, Some(default)) => default.to_string(),
            (None, None) => {
                return Err(KsqlError::statement(
                    "Missing required property \"KAFKA_TOPIC\" which has no default value.",
                ))
            }
        };
        if topic.is_empty() {
            return Err(KsqlError::statement("KAFKA_TOPIC may not be empty"));
        }
        let format = get("FORMAT")
            .map(|v| text("FORMAT", v).and_then(|f| Format::parse("FORMAT", &f)))
            .transpose()?;
        if format.is_some() && (get("KEY_FORMAT").is_some() || get("VALUE_FORMAT").is_some()) {
            let other = if get("KEY_FORMAT").is_some() {
                "KEY_FORMAT"
            } else {
                "VALUE_FORMAT"
            };
            return Err(KsqlError::statement(format!(
                "Cannot supply both 'FORMAT' and '{other}' properties, as 'FORMAT' sets both key and value formats. Either use just 'FORMAT', or use '{other}'."
            )));
        }
        let key_format = match get("KEY_FORMAT") {
            Some(v) => Format::parse("KEY_FORMAT", &text("KEY_FORMAT", v)?)?,
            None => format.unwrap_or(Format::Kafka),
        };
        let value_format = match (get("VALUE_FORMAT"), format) {
            (Some(v), _) => Format::parse("VALUE_FORMAT", &text("VALUE_FORMAT", v)?)?,
            (None, Some(f)) => f,
            (None, None) => {
                return Err(KsqlError::statement(
                    "Missing required property \"VALUE_FORMAT\" which has no default value.",
                ))
            }
        };
        if value_format == Format::None {
            return Err(KsqlError::statement(
                "The 'NONE' format can only be used as the KEY_FORMAT",
            ));
        }
        let partitions = match get("PARTITIONS")
            .map(|v| whole("PARTITIONS", v))
            .transpose()?
        {
            Some(0) => return Err(KsqlError::statement("PARTITIONS must be at least 1")),
            Some(n) if n > i32::MAX as u64 => {
                return Err(KsqlError::statement(format!(
                    "PARTITIONS must be at most {}",
                    i32::MAX
                )))
            }
            other => other.map(|n| n as u32),
        };
        let replicas = match get("REPLICAS").map(|v| whole("REPLICAS", v)).transpose()? {
            Some(n) if n == 0 || n > i16::MAX as u64 => {
                return Err(KsqlError::statement(format!(
                    "REPLICAS must be between 1 and {}",
                    i16::MAX
                )))
            }
            other => other.map(|n| n as u16),
        };
        let window = match get("WINDOW_TYPE") {
            Some(v) => {
                let kind = text("WINDOW_TYPE", v)?.to_ascii_uppercase();
                if !matches!(kind.as_str(), "TUMBLING" | "HOPPING" | "SESSION") {
                    return Err(KsqlError::statement(format!(
                        "Invalid value for WINDOW_TYPE: {kind} (TUMBLING, HOPPING or SESSION)"
                    )));
                }
                let size_ms = get("WINDOW_SIZE")
                    .map(|v| duration_ms("WINDOW_SIZE", v))
                    .transpose()?;
                match (kind.as_str(), size_ms) {
                    ("SESSION", Some(_)) => {
                        return Err(KsqlError::statement(
                            "'WINDOW_SIZE' should not be set for SESSION windows.",
                        ))
                    }
                    ("TUMBLING" | "HOPPING", None) => {
                        return Err(KsqlError::statement(format!(
                            "{kind} windows require 'WINDOW_SIZE' to be provided in the WITH clause. For example: 'WINDOW_SIZE'='10 SECONDS'"
                        )))
                    }
                    _ => {}
                }
                Some(WindowInfo { kind, size_ms })
            }
            None if get("WINDOW_SIZE").is_some() => {
                return Err(KsqlError::statement(
                    "'WINDOW_SIZE' should not be set if 'WINDOW_TYPE' is not set.",
                ))
            }
            None => None,
        };
        let string = |name: &str| get(name).map(|v| text(name, v)).transpose();
        Ok(SourceProperties {
            topic,
            key_format,
            value_format,
            partitions,
            replicas,
            timestamp: string("TIMESTAMP")?.map(|t| t.to_ascii_uppercase()),
            timestamp_format: string("TIMESTAMP_FORMAT")?,
            value_delimiter: string("VALUE_DELIMITER")?,
            key_delimiter: string("KEY_DELIMITER")?,
            wrap_single_value: match get("WRAP_SINGLE_VALUE") {
                None => None,
                Some(PropertyValue::Boolean(b)) => Some(*b),
                Some(other) => {
                    return Err(KsqlError::statement(format!(
                        "Invalid value for WRAP_SINGLE_VALUE: {other} (true or false)"
                    )))
                }
            },
            window,
            retention_ms: get("RETENTION")
                .map(|v| duration_ms("RETENTION", v))
                .transpose()?,
        })
    }
}

/// A column of a source, named as ksqlDB names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type (named types resolved).
    pub ty: SqlType,
    /// Key, header or value column.
    pub constraint: ColumnConstraint,
}

impl Column {
    /// Whether it is read from the record's key.
    pub fn is_key(&self) -> bool {
        matches!(
            self.constraint,
            ColumnConstraint::Key | ColumnConstraint::PrimaryKey
        )
    }

    /// Whether it is read from the record's headers (`HEADERS`, `HEADER('k')`): not
    /// written by inserts or queries.
    pub fn is_header(&self) -> bool {
        matches!(
            self.constraint,
            ColumnConstraint::Headers | ColumnConstraint::Header(_)
        )
    }
}

/// A stream or table.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    /// Its name.
    pub name: String,
    /// Stream or table.
    pub kind: SourceKind,
    /// `CREATE SOURCE`: read-only.
    pub read_only: bool,
    /// Key columns first, then the others, in the order declared.
    pub columns: Vec<Column>,
    /// Its properties.
    pub properties: SourceProperties,
    /// The statement that made it.
    pub sql: String,
}

impl DataSource {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The names of its key columns, in order.
    pub fn key_names(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.is_key())
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// What a DDL statement did (ksqlDB's `currentStatus` message).
#[derive(Debug, Clone, PartialEq)]
pub struct DdlOutcome {
    /// "Stream created", "Table dropped", ...
    pub message: String,
}

/// A persistent query (`CREATE ... AS SELECT`, `INSERT INTO ... SELECT`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryInfo {
    /// Its id (`CSAS_<SINK>_<n>`).
    pub id: String,
    /// The statement that made it.
    pub sql: String,
    /// The source it writes.
    pub sink: String,
    /// The sources it reads.
    pub sources: Vec<String>,
}

/// The streams, tables, types and persistent queries.
#[derive(Debug, Clone, Default)]
pub struct MetaStore {
    sources: BTreeMap<String, DataSource>,
    types: BTreeMap<String, SqlType>,
    queries: BTreeMap<String, QueryInfo>,
}

impl MetaStore {
    /// An empty metastore.
    pub fn new() -> MetaStore {
        MetaStore::default()
    }

    /// The source named `name`.
    pub fn source(&self, name: &str) -> Option<&DataSource> {
        self.sources.get(name)
    }

    /// Every source, by name.
    pub fn sources(&self) -> impl Iterator<Item = &DataSource> {
        self.sources.values()
    }

    /// Every type made with `CREATE TYPE`, by name.
    pub fn types(&self) -> &BTreeMap<String, SqlType> {
        &self.types
    }

    /// The persistent queries, by id.
    pub fn queries(&self) -> impl Iterator<Item = &QueryInfo> {
        self.queries.values()
    }

    /// The persistent query `id`.
    pub fn query(&self, id: &str) -> Option<&QueryInfo> {
        self.queries.get(id)
    }

    /// Adds the sink of a `CREATE ... AS SELECT` and the query writing it: the outcome's
    /// message is ksqlDB's ("Created query with ID ...").
    pub fn add_query_with_sink(
        &mut self,
        sink: DataSource,
        query: QueryInfo,
        or_replace: bool,
    ) -> Result<DdlOutcome> {
        if let Some(existing) = self.sources.get(&sink.name) {
            if !or_replace || existing.kind != sink.kind {
                return Err(KsqlError::statement(format!(
                    "Cannot add {} '{}': A {} with the same name already exists",
                    lower(sink.kind),
                    sink.name,
                    lower(existing.kind)
                )));
            }
            if self.queries.values().any(|q| q.sink == sink.name) {
                return Err(KsqlError::statement(format!(
                    "CREATE OR REPLACE of {} is not supported by Sluice's ksql yet while a query writes it; terminate the query first",
                    sink.name
                )));
            }
        }
        if self.queries.contains_key(&query.id) {
            return Err(KsqlError::statement(format!(
                "Query {} already exists",
                query.id
            )));
        }
        let message = format!("Created query with ID {}", query.id);
        self.sources.insert(sink.name.clone(), sink);
        self.queries.insert(query.id.clone(), query);
        Ok(DdlOutcome { message })
    }

    /// Adds the persistent query `query` writing into its existing sink (`INSERT INTO ...
    /// SELECT`).
    pub fn add_query(&mut self, query: QueryInfo) -> Result<DdlOutcome> {
        if !self.sources.contains_key(&query.sink) {
            return Err(KsqlError::statement(format!(
                "{} does not exist.",
                query.sink
            )));
        }
        if self.queries.contains_key(&query.id) {
            return Err(KsqlError::statement(format!(
                "Query {} already exists",
                query.id
            )));
        }
        let message = format!("Created query with ID {}", query.id);
        self.queries.insert(query.id.clone(), query);
        Ok(DdlOutcome { message })
    }

    /// The query that materialises source table `name` for pull queries (ksqlDB's
    /// `CST_<NAME>_<n>`, made with it by `CREATE SOURCE TABLE`), if it runs.
    pub fn materializing(&self, name: &str) -> Vec<String> {
        self.queries
            .values()
            .filter(|q| {
                q.id.starts_with("CST_")
                    && q.sink == name
                    && q.sources.len() == 1
                    && q.sources[0] == name
            })
            .map(|q| q.id.clone())
            .collect()
    }

    /// This metastore without the source `name` and the queries writing it: what a
    /// `CREATE ... AS SELECT` making it was planned against (`EXPLAIN`).
    pub fn forget_sink(&mut self, name: &str) {
        self.sources.remove(name);
        self.queries.retain(|_, q| q.sink != name);
    }

    /// Removes the persistent query `id` (`TERMINATE`).
    pub fn terminate(&mut self, id: &str) -> Result<DdlOutcome> {
        match self.queries.remove(id) {
            Some(_) => Ok(DdlOutcome {
                message: "Query terminated.".to_string(),
            }),
            None => Err(KsqlError::statement(format!("Unknown queryId: {id}"))),
        }
    }

    /// `ty` with the types made by `CREATE TYPE` put in place of their names.
    pub fn resolve(&self, ty: &SqlType) -> Result<SqlType> {
        Ok(match ty {
            SqlType::Named(name) => {
                let key = name.to_ascii_uppercase();
                self.types
                    .get(&key)
                    .or_else(|| self.types.get(name))
                    .cloned()
                    .ok_or_else(|| KsqlError::statement(format!("Unknown type: {name}")))?
            }
            SqlType::Array(item) => SqlType::Array(Box::new(self.resolve(item)?)),
            SqlType::Map(key, value) => {
                SqlType::Map(Box::new(self.resolve(key)?), Box::new(self.resolve(value)?))
            }
            SqlType::Struct(fields) => SqlType::Struct(
                fields
                    .iter()
                    .map(|(n, t)| Ok((n.clone(), self.resolve(t)?)))
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Applies a DDL statement that needs no topic or query (`CREATE STREAM|TABLE` with
    /// columns, `CREATE TYPE`, `DROP TYPE`, `ALTER`, `DROP STREAM|TABLE`); `sql` is its text.
    pub fn apply(&mut self, statement: &Statement, sql: &str) -> Result<DdlOutcome> {
        match statement {
            Statement::CreateSource(create) => self.create_source(create, sql),
            Statement::CreateType {
                name,
                if_not_exists,
                ty,
            } => {
                let name = name_of(name);
                if self.types.contains_key(&name) {
                    if *if_not_exists {
                        return Ok(DdlOutcome {
                            message: format!("Type {name} already exists"),
                        });
                    }
                    return Err(KsqlError::statement(format!(
                        "Cannot register custom type '{name}' since it is already registered with type: {}",
                        self.types[&name]
                    )));
                }
                let resolved = self.resolve(ty)?;
                self.types.insert(name.clone(), resolved);
                Ok(DdlOutcome {
                    message: format!("Registered custom type with name '{name}' and SQL type {ty}"),
                })
            }
            Statement::DropType { name, if_exists } => {
                let name = name_of(name);
                if self.types.remove(&name).is_none() && !*if_exists {
                    return Err(KsqlError::statement(format!("Type {name} does not exist.")));
                }
                Ok(DdlOutcome {
                    message: format!("Dropped type '{name}'"),
                })
            }
            Statement::Drop {
                kind,
                name,
                if_exists,
                ..
            } => {
                let name = name_of(name);
                let Some(source) = self.sources.get(&name) else {
                    if *if_exists {
                        return Ok(DdlOutcome {
                            message: format!("Source `{name}` does not exist."),
                        });
                    }
                    return Err(KsqlError::statement(format!(
                        "Source {name} does not exist."
                    )));
                };
                if source.kind != *kind {
                    return Err(KsqlError::statement(format!(
                        "Incompatible data source type is {}, but statement was DROP {kind}",
                        source.kind
                    )));
                }
                // A source table's own query (`CST_`) goes with it, as in ksqlDB.
                let own = self.materializing(&name);
                let writers: Vec<&str> = self
                    .queries
                    .values()
                    .filter(|q| q.sink == name && !own.contains(&q.id))
                    .map(|q| q.id.as_str())
                    .collect();
                let readers: Vec<&str> = self
                    .queries
                    .values()
                    .filter(|q| q.sources.contains(&name) && !own.contains(&q.id))
                    .map(|q| q.id.as_str())
                    .collect();
                if !writers.is_empty() || !readers.is_empty() {
                    let mut message = format!("Cannot drop {name}.");
                    if !readers.is_empty() {
                        message.push_str(&format!(
                            "\nThe following queries read from this source: [{}].",
                            readers.join(", ")
                        ));
                    }
                    if !writers.is_empty() {
                        message.push_str(&format!(
                            "\nThe following queries write into this source: [{}].",
                            writers.join(", ")
                        ));
                    }
                    message.push_str("\nYou need to terminate them before dropping ");
                    message.push_str(&name);
                    message.push('.');
                    return Err(KsqlError::statement(message));
                }
                let topic = source.properties.topic.clone();
                for id in &own {
                    self.queries.remove(id);
                }
                self.sources.remove(&name);
                Ok(DdlOutcome {
                    message: format!("Source `{name}` (topic: {topic}) was dropped."),
                })
            }
            Statement::Alter {
                kind,
                name,
                columns,
            } => {
                let name = name_of(name);
                let resolved: Vec<Column> = columns
                    .iter()
                    .map(|c| self.column(c))
                    .collect::<Result<_>>()?;
                let Some(source) = self.sources.get_mut(&name) else {
                    return Err(KsqlError::statement(format!(
                        "Source {name} does not exist."
                    )));
                };
                if source.kind != *kind {
                    return Err(KsqlError::statement(format!(
                        "Incompatible data source type is {}, but statement was ALTER {kind}",
                        source.kind
                    )));
                }
                if source.read_only {
                    return Err(KsqlError::statement(format!(
                        "Cannot alter {} '{name}': ALTER command is not supported for read-only {}s",
                        lower(*kind),
                        lower(*kind)
                    )));
                }
                for (i, column) in resolved.iter().enumerate() {
                    let repeated = resolved[..i].iter().any(|c| c.name == column.name);
                    if repeated || source.column(&column.name).is_some() {
                        return Err(KsqlError::statement(format!(
                            "Cannot add column `{}` to schema. A column with the same name already exists.",
                            column.name
                        )));
                    }
                }
                source.columns.extend(resolved);
                Ok(DdlOutcome {
                    message: format!("{} altered.", title(*kind)),
                })
            }
            _ => Err(KsqlError::statement(
                "not a statement the metastore applies on its own",
            )),
        }
    }

    fn column(&self, def: &ColumnDef) -> Result<Column> {
        let name = name_of(&def.name);
        if PSEUDO_COLUMNS.contains(&name.as_str()) {
            return Err(KsqlError::statement(format!(
                "'{name}' is a reserved column name. You cannot use it as a name for a column."
            )));
        }
        Ok(Column {
            name,
            ty: self.resolve(&def.ty)?,
            constraint: def.constraint.clone(),
        })
    }

    fn create_source(&mut self, create: &CreateSource, sql: &str) -> Result<DdlOutcome> {
        let name = name_of(&create.name);
        let noun = title(create.kind);
        if let Some(existing) = self.sources.get(&name) {
            if create.if_not_exists {
                return Ok(DdlOutcome {
                    message: format!(
                        "A {} with the same name already exists",
                        lower(existing.kind)
                    ),
                });
            }
            if !create.or_replace || existing.kind != create.kind {
                return Err(KsqlError::statement(format!(
                    "Cannot add {} '{name}': A {} with the same name already exists",
                    lower(create.kind),
                    lower(existing.kind)
                )));
            }
        }
        if create.columns.is_empty() {
            return Err(KsqlError::statement(format!(
                "The statement does not define any columns: {noun}s without columns take them from a schema registry, which Sluice does not have yet"
            )));
        }
        let properties = SourceProperties::check(&create.properties, None)?;
        let mut key = Vec::new();
        let mut values = Vec::new();
        for def in &create.columns {
            let column = self.column(def)?;
            if key
                .iter()
                .chain(&values)
                .any(|c: &Column| c.name == column.name)
            {
                return Err(KsqlError::statement(format!(
                    "Duplicate column names: {}",
                    column.name
                )));
            }
            match (&column.constraint, create.kind) {
                (ColumnConstraint::PrimaryKey, SourceKind::Stream) => {
                    return Err(KsqlError::statement(format!(
                        "Column `{}` is a 'PRIMARY KEY' column: please use 'KEY' for streams.\nTables have PRIMARY KEYs, which are unique and NON NULL.\nStreams have KEYs, which have no uniqueness or NULL constraints.",
                        column.name
                    )))
                }
                (ColumnConstraint::Key, SourceKind::Table) => {
                    return Err(KsqlError::statement(format!(
                        "Column `{}` is a 'KEY' column: please use 'PRIMARY KEY' for tables.\nTables have PRIMARY KEYs, which are unique and NON NULL.\nStreams have KEYs, which have no uniqueness or NULL constraints.",
                        column.name
                    )))
                }
                (ColumnConstraint::Headers, _) if !is_headers_type(&column.ty) => {
                    return Err(KsqlError::statement(format!(
                        "Invalid type for HEADERS column `{}`: expected ARRAY<STRUCT<`KEY` STRING, `VALUE` BYTES>>, got {}",
                        column.name, column.ty
                    )))
                }
                (ColumnConstraint::Header(_), _) if column.ty != SqlType::Bytes => {
                    return Err(KsqlError::statement(format!(
                        "Invalid type for HEADER('{}') column `{}`: expected BYTES, got {}",
                        header_key(&column.constraint),
                        column.name,
                        column.ty
                    )))
                }
                _ => {}
            }
            if column.is_key() {
                key.push(column);
            } else {
                values.push(column);
            }
        }
        if create.kind == SourceKind::Table && key.is_empty() {
            return Err(KsqlError::statement(
                "Tables require a PRIMARY KEY. Please define the PRIMARY KEY.\nUse a partial schema to define the primary key and still load the value columns from the Schema Registry, for example:\n\tCREATE TABLE t (ID INT PRIMARY KEY) WITH (...);",
            ));
        }
        if properties.key_format == Format::None && !key.is_empty() {
            return Err(KsqlError::statement(format!(
                "The 'NONE' format can only be used when no columns are defined. Got: [`{}` {} KEY]",
                key[0].name, key[0].ty
            )));
        }
        if properties.key_format == Format::Kafka && key.len() > 1 {
            return Err(KsqlError::statement(
                "The 'KAFKA' format only supports a single field. Got: multiple key columns; use KEY_FORMAT='JSON' or 'DELIMITED'",
            ));
        }
        if values
            .iter()
            .all(|c| !matches!(c.constraint, ColumnConstraint::None))
        {
            return Err(KsqlError::statement(format!(
                "The statement does not define any value columns for the {}",
                lower(create.kind)
            )));
        }
        if let Some(ts) = &properties.timestamp {
            if !key.iter().chain(&values).any(|c| &c.name == ts) {
                return Err(KsqlError::statement(format!(
                    "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{ts}'"
                )));
            }
        }
        let replaced = self.sources.contains_key(&name);
        key.extend(values);
        self.sources.insert(
            name.clone(),
            DataSource {
                name,
                kind: create.kind,
                read_only: create.source,
                columns: key,
                properties,
                sql: sql.to_string(),
            },
        );
        Ok(DdlOutcome {
            message: if replaced {
                format!("{noun} replaced")
            } else {
                format!("{noun} created")
            },
        })
    }
}

fn title(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "Stream",
        SourceKind::Table => "Table",
    }
}

fn lower(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
    }
}

fn header_key(constraint: &ColumnConstraint) -> &str {
    match constraint {
        ColumnConstraint::Header(k) => k,
        _ => "",
    }
}

/// `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`, field names in any case.
fn is_headers_type(ty: &SqlType) -> bool {
    let SqlType::Array(item) = ty else {
        return false;
    };
    let SqlType::Struct(fields) = item.as_ref() else {
        return false;
    };
    matches!(fields.as_slice(), [(k, SqlType::String), (v, SqlType::Bytes)]
        if k.eq_ignore_ascii_case("key") && v.eq_ignore_ascii_case("value"))
}

#[cfg(test)]
mod tests;
