//! The JDBC connectors: [`JdbcSourceConnector`] reads tables (or a query) of PostgreSQL,
//! MySQL/MariaDB or SQLite into topics; [`JdbcSinkConnector`] writes topics into tables.
//!
//! Their configs are those of Confluent's JDBC connectors (`connection.url` as a JDBC URL,
//! `mode`, `incrementing.column.name`, `insert.mode`, `pk.mode`, ...), and so are the source's
//! partitions and offsets (`{"protocol": "1", "table": "db.schema.table"}` or
//! `{"query": "query"}`, and `{"incrementing": n}` / `{"timestamp": ms, "timestamp_nanos": ns}`),
//! so that a config written for Confluent's connectors works unchanged. The databases are
//! reached with sqlx: no JDBC driver, no JVM.
//!
//! | `connection.url` | database |
//! |---|---|
//! | `jdbc:postgresql://host:5432/db` | PostgreSQL |
//! | `jdbc:mysql://host:3306/db`, `jdbc:mariadb://host:3306/db` | MySQL, MariaDB |
//! | `jdbc:sqlite:/path/file.db` | SQLite (the file is created when missing) |
//!
//! `user` and `password` in the URL's query string are read as the JDBC drivers read them;
//! `connection.user` and `connection.password` win over them.

mod database;
mod sink;
mod source;
mod types;

pub use database::{ConnectionConfig, Database, Dialect, TableId};
pub use sink::{JdbcSinkConnector, JdbcSinkTask};
pub use source::{JdbcSourceConnector, JdbcSourceTask};
pub use types::{Column, ColumnKind, NumericMapping};

/// The names the runtime resolves to [`JdbcSourceConnector`] (Confluent's class last).
pub const SOURCE_CLASS_NAMES: &[&str] = &[
    "JdbcSource",
    "JdbcSourceConnector",
    "io.confluent.connect.jdbc.JdbcSourceConnector",
];

/// The names the runtime resolves to [`JdbcSinkConnector`] (Confluent's class last).
pub const SINK_CLASS_NAMES: &[&str] = &[
    "JdbcSink",
    "JdbcSinkConnector",
    "io.confluent.connect.jdbc.JdbcSinkConnector",
];

/// The database's JDBC URL.
pub const CONNECTION_URL: &str = "connection.url";
/// The user to log in as.
pub const CONNECTION_USER: &str = "connection.user";
/// The user's password.
pub const CONNECTION_PASSWORD: &str = "connection.password";
/// How many times to try connecting before failing.
pub const CONNECTION_ATTEMPTS: &str = "connection.attempts";
/// How long to wait between two attempts to connect.
pub const CONNECTION_BACKOFF_MS: &str = "connection.backoff.ms";
/// Overrides the dialect the URL implies (Confluent's names: `PostgreSqlDatabaseDialect`, ...).
pub const DIALECT_NAME: &str = "dialect.name";
