//! ksqlDB's statements. Expressions, select items and identifiers are sqlparser's; what
//! ksqlDB adds (sources, windows, `WITHIN`, `EMIT`, `PARTITION BY`, its types and commands)
//! is here.

use std::fmt;
use std::time::Duration;

pub use sqlparser::ast::{Expr, Ident, SelectItem, Value};

/// A statement and the text it was parsed from (ksqlDB's `statementText`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    /// The statement's text, without the `;` that ends it.
    pub text: String,
    /// Where it starts (1-based line and column).
    pub line: u64,
    /// Its column.
    pub column: u64,
    /// The statement.
    pub statement: Statement,
}

/// A stream or a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `STREAM`.
    Stream,
    /// `TABLE`.
    Table,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        })
    }
}

/// One of ksqlDB's statements.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (columns) WITH (...)`.
    CreateSource(CreateSource),
    /// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (...)] AS SELECT ...`.
    CreateAsSelect(CreateAsSelect),
    /// `INSERT INTO name [WITH (QUERY_ID='...')] SELECT ...`.
    InsertSelect {
        /// The stream written to.
        target: Ident,
        /// `WITH` properties (`QUERY_ID`).
        properties: Properties,
        /// The query.
        query: Box<Query>,
    },
    /// `INSERT INTO name [(columns)] VALUES (values)`.
    InsertValues {
        /// The stream or table written to.
        target: Ident,
        /// The columns named, if any (else every column in order).
        columns: Vec<Ident>,
        /// The values.
        values: Vec<Expr>,
    },
    /// A push (`EMIT CHANGES`) or pull query.
    Query(Box<Query>),
    /// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]`.
    Drop {
        /// Stream or table.
        kind: SourceKind,
        /// Its name.
        name: Ident,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `DELETE TOPIC`.
        delete_topic: bool,
    },
    /// `CREATE TYPE [IF NOT EXISTS] name AS type`.
    CreateType {
        /// The type's name.
        name: Ident,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// What it stands for.
        ty: SqlType,
    },
    /// `DROP TYPE [IF EXISTS] name`.
    DropType {
        /// The type's name.
        name: Ident,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `ALTER STREAM|TABLE name ADD [COLUMN] c type, ...`.
    Alter {
        /// Stream or table.
        kind: SourceKind,
        /// Its name.
        name: Ident,
        /// The columns added.
        columns: Vec<ColumnDef>,
    },
    /// `SHOW|LIST ... [EXTENDED]`.
    Show {
        /// What is listed.
        what: Listing,
        /// `EXTENDED`.
        extended: bool,
    },
    /// `DESCRIBE [EXTENDED] name` (or `DESCRIBE STREAMS|TABLES [EXTENDED]`).
    Describe {
        /// The source described; `None` with `all` for every stream or table.
        name: Option<Ident>,
        /// `DESCRIBE STREAMS` / `DESCRIBE TABLES`.
        all: Option<SourceKind>,
        /// `EXTENDED`.
        extended: bool,
    },
    /// `DESCRIBE FUNCTION name`.
    DescribeFunction(Ident),
    /// `EXPLAIN query_id` or `EXPLAIN statement`.
    Explain(Explained),
    /// `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`.
    Print {
        /// The topic's name.
        topic: String,
        /// `FROM BEGINNING`.
        from_beginning: bool,
        /// Every n-th record (`INTERVAL` / `SAMPLE`).
        interval: Option<u64>,
        /// `LIMIT`.
        limit: Option<u64>,
    },
    /// `SET 'name' = 'value'`.
    Set {
        /// The property.
        name: String,
        /// Its value.
        value: String,
    },
    /// `UNSET 'name'`.
    Unset(String),
    /// `DEFINE name = 'value'`.
    Define {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
    },
    /// `UNDEFINE name`.
    Undefine(String),
    /// `RUN SCRIPT 'path'`.
    RunScript(String),
    /// `TERMINATE query_id` or `TERMINATE ALL`.
    Terminate(Option<String>),
}

/// What `SHOW` / `LIST` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `STREAMS`.
    Streams,
    /// `TABLES`.
    Tables,
    /// `QUERIES`.
    Queries,
    /// `TOPICS` (`ALL TOPICS` with internal ones).
    Topics {
        /// `ALL`.
        all: bool,
    },
    /// `PROPERTIES`.
    Properties,
    /// `FUNCTIONS`.
    Functions,
    /// `TYPES`.
    Types,
    /// `VARIABLES`.
    Variables,
    /// `CONNECTORS`.
    Connectors,
}

/// What `EXPLAIN` explains.
#[derive(Debug, Clone, PartialEq)]
pub enum Explained {
    /// A running query, by id.
    QueryId(String),
    /// A statement, planned but not run.
    Statement(Box<Statement>),
}

/// `CREATE ... STREAM|TABLE` with columns.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    /// Stream or table.
    pub kind: SourceKind,
    /// Its name.
    pub name: Ident,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// `SOURCE`: read-only, materialised for pull queries.
    pub source: bool,
    /// The columns (none: inferred from a schema registry, which Sluice has not yet).
    pub columns: Vec<ColumnDef>,
    /// `WITH (...)`.
    pub properties: Properties,
}

/// `CREATE ... STREAM|TABLE ... AS SELECT`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateAsSelect {
    /// Stream or table.
    pub kind: SourceKind,
    /// Its name.
    pub name: Ident,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// `WITH (...)`.
    pub properties: Properties,
    /// The query.
    pub query: Box<Query>,
}

/// A column of a stream or table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// Its name.
    pub name: Ident,
    /// Its type.
    pub ty: SqlType,
    /// `KEY`, `PRIMARY KEY`, `HEADERS` or `HEADER('k')`.
    pub constraint: ColumnConstraint,
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnConstraint {
    /// The record's value.
    None,
    /// `KEY` (a stream's key column).
    Key,
    /// `PRIMARY KEY` (a table's).
    PrimaryKey,
    /// `HEADERS`: every header, as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`.
    Headers,
    /// `HEADER('k')`: the last header named `k`, as `BYTES`.
    Header(String),
}

/// A column type in ksqlDB's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    /// `BOOLEAN`.
    Boolean,
    /// `INT` / `INTEGER`.
    Int,
    /// `BIGINT`.
    Bigint,
    /// `DOUBLE`.
    Double,
    /// `DECIMAL(precision, scale)`.
    Decimal {
        /// Digits in all.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// `STRING` / `VARCHAR`.
    String,
    /// `BYTES`.
    Bytes,
    /// `DATE`.
    Date,
    /// `TIME`.
    Time,
    /// `TIMESTAMP`.
    Timestamp,
    /// `ARRAY<T>`.
    Array(Box<SqlType>),
    /// `MAP<K, V>`.
    Map(Box<SqlType>, Box<SqlType>),
    /// `STRUCT<name T, ...>`.
    Struct(Vec<(String, SqlType)>),
    /// A type made with `CREATE TYPE`, by name.
    Named(String),
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Int => f.write_str("INTEGER"),
            SqlType::Bigint => f.write_str("BIGINT"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::String => f.write_str("STRING"),
            SqlType::Bytes => f.write_str("BYTES"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Array(item) => write!(f, "ARRAY<{item}>"),
            SqlType::Map(key, value) => write!(f, "MAP<{key}, {value}>"),
            SqlType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (name, ty)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{name}` {ty}")?;
                }
                f.write_str(">")
            }
            SqlType::Named(name) => f.write_str(name),
        }
    }
}

/// `WITH (NAME = value, ...)`: names upper-cased, values as written (strings unquoted).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Properties(pub Vec<(String, PropertyValue)>);

impl Properties {
    /// The value of `name` (any case), if given.
    pub fn get(&self, name: &str) -> Option<&PropertyValue> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// A property's value.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// `'text'`.
    String(String),
    /// A number, as written.
    Number(String),
    /// `true` / `false`.
    Boolean(bool),
}

impl fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::String(s) => f.write_str(s),
            PropertyValue::Number(n) => f.write_str(n),
            PropertyValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// A `SELECT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What it selects.
    pub projection: Vec<SelectItem>,
    /// `FROM`.
    pub from: Relation,
    /// `JOIN`s, in order.
    pub joins: Vec<Join>,
    /// `WINDOW`.
    pub window: Option<Window>,
    /// `WHERE`.
    pub selection: Option<Expr>,
    /// `GROUP BY`.
    pub group_by: Vec<Expr>,
    /// `HAVING`.
    pub having: Option<Expr>,
    /// `PARTITION BY`.
    pub partition_by: Vec<Expr>,
    /// `EMIT CHANGES` / `EMIT FINAL` (none: a pull query).
    pub emit: Option<Emit>,
    /// `LIMIT`.
    pub limit: Option<u64>,
}

/// A source in `FROM` or `JOIN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// The stream or table.
    pub name: Ident,
    /// `[AS] alias`.
    pub alias: Option<Ident>,
}

/// How rows are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// `[INNER] JOIN`.
    Inner,
    /// `LEFT [OUTER] JOIN`.
    Left,
    /// `RIGHT [OUTER] JOIN`.
    Right,
    /// `FULL [OUTER] JOIN`.
    Full,
}

/// A `JOIN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Inner, left, right or full.
    pub kind: JoinKind,
    /// The source joined.
    pub relation: Relation,
    /// `WITHIN` (stream–stream joins).
    pub within: Option<Within>,
    /// `ON`.
    pub on: Expr,
}

/// `WITHIN n unit` or `WITHIN (before, after)`, `[GRACE PERIOD n unit]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Within {
    /// How far the other side's records may come before.
    pub before: Duration,
    /// How far after.
    pub after: Duration,
    /// `GRACE PERIOD`.
    pub grace: Option<Duration>,
}

/// `WINDOW TUMBLING|HOPPING|SESSION (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Its kind and sizes.
    pub kind: WindowKind,
    /// `RETENTION`.
    pub retention: Option<Duration>,
    /// `GRACE PERIOD`.
    pub grace: Option<Duration>,
}

/// A window's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLING (SIZE n unit)`.
    Tumbling {
        /// Its size.
        size: Duration,
    },
    /// `HOPPING (SIZE n unit, ADVANCE BY n unit)`.
    Hopping {
        /// Its size.
        size: Duration,
        /// How far each window starts after the previous.
        advance: Duration,
    },
    /// `SESSION (n unit)`: records closer than the gap share a window.
    Session {
        /// The inactivity gap.
        gap: Duration,
    },
}

/// `EMIT CHANGES` or `EMIT FINAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// Every change (a push query; a persistent query's default).
    Changes,
    /// A window's result once it closes.
    Final,
}
