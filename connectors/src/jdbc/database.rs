//! A connection pool to one database, whichever of the three it is, and what the connectors
//! ask of it: tables, their columns, rows as Connect values, statements.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sluice_connect::connector::Props;
use sluice_connect::data::Value;
use sluice_connect::{ConnectError, Result};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{
    AssertSqlSafe, Column as _, ConnectOptions, Connection, Executor, Row, SqlSafeStr, Statement,
    TypeInfo,
};
use tokio::sync::mpsc;

use super::types::{self, Column, ColumnKind, Target};
use super::{CONNECTION_ATTEMPTS, CONNECTION_BACKOFF_MS, CONNECTION_PASSWORD, CONNECTION_URL};
use super::{CONNECTION_USER, DIALECT_NAME};

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// Confluent's dialect name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSqlDatabaseDialect",
            Dialect::MySql => "MySqlDatabaseDialect",
            Dialect::Sqlite => "SqliteDatabaseDialect",
        }
    }

    /// `name` quoted as an identifier.
    pub fn quote(self, name: &str) -> String {
        match self {
            Dialect::MySql => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// The `n`th (from 1) bind parameter's placeholder.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            _ => "?".to_string(),
        }
    }

    /// The most bind parameters one statement may carry.
    pub fn max_parameters(self) -> usize {
        match self {
            Dialect::Postgres | Dialect::MySql => 65_535,
            Dialect::Sqlite => 32_766,
        }
    }
}

/// Where and how to connect, from a connector's properties.
#[derive(Clone)]
pub struct ConnectionConfig {
    /// The JDBC URL as given.
    pub url: String,
    /// The dialect.
    pub dialect: Dialect,
    /// Host (PostgreSQL, MySQL).
    host: String,
    /// Port, when given.
    port: Option<u16>,
    /// Database (PostgreSQL, MySQL) or file (SQLite).
    database: String,
    /// The user.
    user: Option<String>,
    /// The password.
    password: Option<String>,
    /// Tries before giving up.
    pub attempts: u32,
    /// The wait between tries.
    pub backoff: Duration,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ConnectionConfig {
    /// Reads `connection.*` (and `dialect.name`) from `props`.
    pub fn from_props(props: &Props) -> Result<ConnectionConfig> {
        let url = props
            .get(CONNECTION_URL)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let bad = |reason: &str| ConnectionConfig::bad_url(&url, reason);
        let rest = url
            .strip_prefix("jdbc:")
            .ok_or_else(|| bad("a JDBC URL starts with jdbc: (jdbc:postgresql://host:5432/db, jdbc:mysql://host:3306/db, jdbc:sqlite:/path/file.db)"))?;
        let (scheme, rest) = rest
            .split_once(':')
            .ok_or_else(|| bad("no database after jdbc:"))?;
        let mut dialect = match scheme {
            "postgresql" | "postgres" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::MySql,
            "sqlite" => Dialect::Sqlite,
            other => {
                return Err(bad(&format!(
                    "unsupported database {other:?} (postgresql, mysql, mariadb or sqlite)"
                )))
            }
        };
        if let Some(name) = props.get(DIALECT_NAME).filter(|s| !s.trim().is_empty()) {
            dialect = match name.trim() {
                "PostgreSqlDatabaseDialect" => Dialect::Postgres,
                "MySqlDatabaseDialect" => Dialect::MySql,
                "SqliteDatabaseDialect" => Dialect::Sqlite,
                other => {
                    return Err(ConnectError::config(
                        DIALECT_NAME,
                        other,
                        "supported dialects: PostgreSqlDatabaseDialect, MySqlDatabaseDialect, SqliteDatabaseDialect",
                    ))
                }
            };
        }
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (host, port, database) = if dialect == Dialect::Sqlite {
            // jdbc:sqlite:/path, jdbc:sqlite:file.db, jdbc:sqlite::memory:
            (String::new(), None, location.to_string())
        } else {
            let authority = location
                .strip_prefix("//")
                .ok_or_else(|| bad("expected //host:port/database after the database name"))?;
            let (hostport, database) = authority.split_once('/').unwrap_or((authority, ""));
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| bad(&format!("port {p:?} is not a number")))?,
                    ),
                ),
                None => (hostport.to_string(), None),
            };
            if host.is_empty() {
                return Err(bad("no host"));
            }
            (host, port, database.to_string())
        };
        let non_empty = |key: &str| props.get(key).filter(|s| !s.is_empty()).cloned();
        let number = |key: &str, default: u64| -> Result<u64> {
            match props.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
                None => Ok(default),
                Some(s) => s
                    .parse()
                    .map_err(|_| ConnectError::config(key, s, "Not a number of type INT/LONG")),
            }
        };
        Ok(ConnectionConfig {
            dialect,
            host,
            port,
            database,
            user: non_empty(CONNECTION_USER).or_else(|| param("user")),
            password: non_empty(CONNECTION_PASSWORD).or_else(|| param("password")),
            attempts: number(CONNECTION_ATTEMPTS, 3)?.max(1) as u32,
            backoff: Duration::from_millis(number(CONNECTION_BACKOFF_MS, 10_000)?),
            url,
        })
    }

    fn bad_url(url: &str, reason: &str) -> ConnectError {
        ConnectError::config(CONNECTION_URL, url, reason)
    }

    /// The URL without credentials, for messages.
    pub fn describe(&self) -> String {
        let user = self.user.as_deref().unwrap_or("(no user)");
        match self.dialect {
            Dialect::Sqlite => format!("SQLite database {}", self.database),
            _ => format!("{} as {user}", self.url.split('?').next().unwrap_or("")),
        }
    }
}

/// The pool of one of the three databases.
#[derive(Clone, Debug)]
pub enum Pool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL / MariaDB.
    MySql(MySqlPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// A connected database.
#[derive(Clone, Debug)]
pub struct Database {
    /// Which one.
    pub dialect: Dialect,
    /// Its connections.
    pub pool: Pool,
    /// Its name (PostgreSQL, MySQL: the database; SQLite: none), the first part of table ids.
    pub catalog: Option<String>,
    /// How it was reached (for messages).
    pub description: String,
}

/// A table: its catalog (database), schema and name, as Confluent's `TableId`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId {
    /// The database (PostgreSQL, MySQL).
    pub catalog: Option<String>,
    /// The schema (PostgreSQL).
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableId {
    /// `catalog.schema.name`, leaving out what is unset (the source partition's `table`).
    pub fn unquoted(&self) -> String {
        [&self.catalog, &self.schema, &Some(self.name.clone())]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The table in SQL: `"schema"."name"` (the catalog is the connection's own).
    pub fn quoted(&self, dialect: Dialect, quote: bool) -> String {
        let q = |s: &str| {
            if quote {
                dialect.quote(s)
            } else {
                s.to_string()
            }
        };
        match &self.schema {
            Some(schema) => format!("{}.{}", q(schema), q(&self.name)),
            None => q(&self.name),
        }
    }

    /// Whether `pattern` (`name`, `schema.name` or `catalog.schema.name`) names this table.
    pub fn matches(&self, pattern: &str) -> bool {
        let pattern = pattern.trim();
        pattern == self.name
            || self
                .schema
                .as_ref()
                .is_some_and(|s| pattern == format!("{s}.{}", self.name))
            || self
                .catalog
                .as_ref()
                .is_some_and(|c| pattern == format!("{c}.{}", self.name))
            || pattern == self.unquoted()
    }
}

/// information_schema.columns of PostgreSQL: name, type, nullable, precision, scale.
type PgColumnRow = (String, String, String, Option<i32>, Option<i32>);
/// information_schema.columns of MySQL: name, type, declaration, nullable, precision, scale.
type MySqlColumnRow = (String, String, String, String, Option<u64>, Option<u64>);

/// A value bound to a statement: an offset in a WHERE clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// An integer.
    Long(i64),
    /// A timestamp without time zone (UTC).
    Timestamp(NaiveDateTime),
    /// A timestamp with time zone.
    TimestampTz(DateTime<Utc>),
}

/// A database error as a Connect error, saying what was being done.
pub fn db_error(what: &str, err: sqlx::Error) -> ConnectError {
    let detail = match &err {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    ConnectError::Task(format!("{what}: {detail}"))
}

impl Database {
    /// Connects, trying `connection.attempts` times `connection.backoff.ms` apart.
    pub async fn connect(config: &ConnectionConfig, max_connections: u32) -> Result<Database> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Database::connect_once(config, max_connections).await {
                Ok(db) => return Ok(db),
                Err(err) if attempt >= config.attempts || !retriable(&err) => {
                    return Err(db_error(
                        &format!("cannot connect to {}", config.describe()),
                        err,
                    ))
                }
                Err(err) => {
                    tracing::warn!(
                        "connecting to {} failed (attempt {attempt} of {}): {err}; trying again in {:?}",
                        config.describe(),
                        config.attempts,
                        config.backoff
                    );
                    tokio::time::sleep(config.backoff).await;
                }
            }
        }
    }

    async fn connect_once(
        config: &ConnectionConfig,
        max_connections: u32,
    ) -> std::result::Result<Database, sqlx::Error> {
        let acquire = Duration::from_secs(30);
        let description = config.describe();
        Ok(match config.dialect {
            Dialect::Postgres => {
                let mut options = PgConnectOptions::new_without_pgpass()
                    .host(&config.host)
                    .port(config.port.unwrap_or(5432))
                    .ssl_mode(PgSslMode::Disable)
                    .application_name("sluice-connect");
                if !config.database.is_empty() {
                    options = options.database(&config.database);
                }
                if let Some(user) = &config.user {
                    options = options.username(user);
                }
                if let Some(password) = &config.password {
                    options = options.password(password);
                }
                // One connection first: the pool would retry a refused one until its
                // acquire timeout, and connection.attempts is the connector's to count.
                options.connect().await?.close().await?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(acquire)
                    .connect_with(options)
                    .await?;
                let catalog: String = sqlx::query_scalar("SELECT current_database()")
                    .fetch_one(&pool)
                    .await?;
                Database {
                    dialect: Dialect::Postgres,
                    pool: Pool::Postgres(pool),
                    catalog: Some(catalog),
                    description,
                }
            }
            Dialect::MySql => {
                let mut options = MySqlConnectOptions::new()
                    .host(&config.host)
                    .port(config.port.unwrap_or(3306))
                    .ssl_mode(MySqlSslMode::Disabled)
                    .timezone(Some("+00:00".to_string()));
                if !config.database.is_empty() {
                    options = options.database(&config.database);
                }
                if let Some(user) = &config.user {
                    options = options.username(user);
                }
                if let Some(password) = &config.password {
                    options = options.password(password);
                }
                // One connection first: the pool would retry a refused one until its
                // acquire timeout, and connection.attempts is the connector's to count.
                options.connect().await?.close().await?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(acquire)
                    .connect_with(options)
                    .await?;
                let catalog: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
                    .fetch_one(&pool)
                    .await?;
                Database {
                    dialect: Dialect::MySql,
                    pool: Pool::MySql(pool),
                    catalog,
                    description,
                }
            }
            Dialect::Sqlite => {
                let options = if config.database == ":memory:" || config.database.is_empty() {
                    SqliteConnectOptions::from_str("sqlite::memory:")?
                } else {
                    SqliteConnectOptions::new()
                        .filename(&config.database)
                        .create_if_missing(true)
                };
                // One connection first: the pool would retry a refused one until its
                // acquire timeout, and connection.attempts is the connector's to count.
                options.connect().await?.close().await?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(acquire)
                    .connect_with(options.busy_timeout(Duration::from_secs(30)))
                    .await?;
                Database {
                    dialect: Dialect::Sqlite,
                    pool: Pool::Sqlite(pool),
                    catalog: None,
                    description,
                }
            }
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }

    /// Runs a statement that returns no rows (DDL).
    pub async fn execute(&self, sql: &str) -> Result<()> {
        let what = || format!("{} failed on {}", first_words(sql), self.description);
        match &self.pool {
            Pool::Postgres(p) => sqlx::raw_sql(safe(sql)).execute(p).await.map(drop),
            Pool::MySql(p) => sqlx::raw_sql(safe(sql)).execute(p).await.map(drop),
            Pool::Sqlite(p) => sqlx::raw_sql(safe(sql)).execute(p).await.map(drop),
        }
        .map_err(|e| db_error(&what(), e))
    }

    /// The tables (and, with `VIEW` in `types`, views) the user can read, in name order.
    pub async fn tables(
        &self,
        types: &[String],
        schema_pattern: Option<&str>,
    ) -> Result<Vec<TableId>> {
        let want_views = types.iter().any(|t| t.eq_ignore_ascii_case("VIEW"));
        let want_tables = types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case("TABLE"));
        let kinds = match (want_tables, want_views) {
            (true, true) => "'BASE TABLE', 'VIEW'",
            (false, true) => "'VIEW'",
            _ => "'BASE TABLE'",
        };
        let what = || format!("listing the tables of {}", self.description);
        let mut tables = match &self.pool {
            Pool::Postgres(p) => {
                let sql = format!(
                    "SELECT table_schema::text, table_name::text FROM information_schema.tables \
                     WHERE table_type IN ({kinds}) AND table_schema NOT IN ('pg_catalog', 'information_schema') \
                     AND ($1::text IS NULL OR table_schema LIKE $1) ORDER BY 1, 2"
                );
                let rows: Vec<(String, String)> = sqlx::query_as(safe(&sql))
                    .bind(schema_pattern)
                    .fetch_all(p)
                    .await
                    .map_err(|e| db_error(&what(), e))?;
                rows.into_iter()
                    .map(|(schema, name)| TableId {
                        catalog: self.catalog.clone(),
                        schema: Some(schema),
                        name,
                    })
                    .collect::<Vec<_>>()
            }
            Pool::MySql(p) => {
                let sql = format!(
                    "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                     WHERE table_schema = DATABASE() AND table_type IN ({kinds}) ORDER BY 1"
                );
                let rows: Vec<(String,)> = sqlx::query_as(safe(&sql))
                    .fetch_all(p)
                    .await
                    .map_err(|e| db_error(&what(), e))?;
                rows.into_iter()
                    .map(|(name,)| TableId {
                        catalog: self.catalog.clone(),
                        schema: None,
                        name,
                    })
                    .collect()
            }
            Pool::Sqlite(p) => {
                let kinds = match (want_tables, want_views) {
                    (true, true) => "'table', 'view'",
                    (false, true) => "'view'",
                    _ => "'table'",
                };
                let sql = format!(
                    "SELECT name FROM sqlite_master WHERE type IN ({kinds}) \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name"
                );
                let rows: Vec<(String,)> = sqlx::query_as(safe(&sql))
                    .fetch_all(p)
                    .await
                    .map_err(|e| db_error(&what(), e))?;
                rows.into_iter()
                    .map(|(name,)| TableId {
                        catalog: None,
                        schema: None,
                        name,
                    })
                    .collect()
            }
        };
        tables.sort();
        Ok(tables)
    }

    /// The table named `name` (`name` or `schema.name`), if it exists.
    pub async fn find_table(&self, name: &str) -> Result<Option<TableId>> {
        let (schema, table) = match name.rsplit_once('.') {
            Some((schema, table)) => (Some(schema.rsplit('.').next().unwrap_or(schema)), table),
            None => (None, name),
        };
        let what = || format!("looking for table {name} in {}", self.description);
        Ok(match &self.pool {
            Pool::Postgres(p) => {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT table_schema::text FROM information_schema.tables WHERE table_name = $1 \
                     AND table_schema = COALESCE($2, current_schema()) LIMIT 1",
                )
                .bind(table)
                .bind(schema)
                .fetch_optional(p)
                .await
                .map_err(|e| db_error(&what(), e))?;
                found.map(|(schema,)| TableId {
                    catalog: self.catalog.clone(),
                    schema: Some(schema),
                    name: table.to_string(),
                })
            }
            Pool::MySql(p) => {
                let found: Option<(i64,)> = sqlx::query_as(
                    "SELECT 1 FROM information_schema.tables WHERE table_name = ? \
                     AND table_schema = COALESCE(?, DATABASE()) LIMIT 1",
                )
                .bind(table)
                .bind(schema)
                .fetch_optional(p)
                .await
                .map_err(|e| db_error(&what(), e))?;
                found.map(|_| TableId {
                    catalog: schema.map(str::to_string).or_else(|| self.catalog.clone()),
                    schema: None,
                    name: table.to_string(),
                })
            }
            Pool::Sqlite(p) => {
                let found: Option<(i64,)> = sqlx::query_as(
                    "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?",
                )
                .bind(table)
                .fetch_optional(p)
                .await
                .map_err(|e| db_error(&what(), e))?;
                found.map(|_| TableId {
                    catalog: None,
                    schema: None,
                    name: table.to_string(),
                })
            }
        })
    }

    /// A table's columns, in order.
    pub async fn columns(&self, table: &TableId) -> Result<Vec<Column>> {
        let what = || {
            format!(
                "reading the columns of {} in {}",
                table.unquoted(),
                self.description
            )
        };
        let dialect = self.dialect;
        let columns = match &self.pool {
            Pool::Postgres(p) => {
                let rows: Vec<PgColumnRow> = sqlx::query_as(
                    "SELECT column_name::text, data_type::text, is_nullable::text, \
                     numeric_precision::int, numeric_scale::int FROM information_schema.columns \
                     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                )
                .bind(table.schema.as_deref().unwrap_or("public"))
                .bind(&table.name)
                .fetch_all(p)
                .await
                .map_err(|e| db_error(&what(), e))?;
                rows.into_iter()
                    .map(|(name, ty, nullable, precision, scale)| {
                        // information_schema gives numeric precision for integers too.
                        let kind =
                            types::kind_of(dialect, &ty, &ty, precision.map(|p| p as u32), scale);
                        Column {
                            name,
                            type_name: ty,
                            kind,
                            nullable: nullable == "YES",
                        }
                    })
                    .collect::<Vec<_>>()
            }
            Pool::MySql(p) => {
                let rows: Vec<MySqlColumnRow> = sqlx::query_as(
                    "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), \
                         CAST(column_type AS CHAR), CAST(is_nullable AS CHAR), \
                         CAST(numeric_precision AS UNSIGNED), CAST(numeric_scale AS UNSIGNED) \
                         FROM information_schema.columns \
                         WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
                         ORDER BY ordinal_position",
                )
                .bind(table.catalog.as_deref())
                .bind(&table.name)
                .fetch_all(p)
                .await
                .map_err(|e| db_error(&what(), e))?;
                rows.into_iter()
                    .map(|(name, ty, full, nullable, precision, scale)| Column {
                        kind: types::kind_of(
                            dialect,
                            &ty,
                            &full,
                            precision.map(|p| p as u32),
                            scale.map(|s| s as i32),
                        ),
                        name,
                        type_name: full,
                        nullable: nullable == "YES",
                    })
                    .collect()
            }
            Pool::Sqlite(p) => {
                let sql = format!("PRAGMA table_info({})", Dialect::Sqlite.quote(&table.name));
                let rows = sqlx::query(safe(&sql))
                    .fetch_all(p)
                    .await
                    .map_err(|e| db_error(&what(), e))?;
                let mut columns = Vec::new();
                for row in rows {
                    let name: String = row.try_get("name").map_err(|e| db_error(&what(), e))?;
                    let ty: String = row.try_get("type").map_err(|e| db_error(&what(), e))?;
                    let notnull: i64 = row.try_get("notnull").map_err(|e| db_error(&what(), e))?;
                    let pk: i64 = row.try_get("pk").map_err(|e| db_error(&what(), e))?;
                    columns.push(Column {
                        kind: types::kind_of(dialect, &ty, &ty, None, None),
                        name,
                        type_name: ty,
                        nullable: notnull == 0 && pk == 0,
                    });
                }
                columns
            }
        };
        Ok(columns)
    }

    /// The column sets of `table`'s primary key and unique indexes (whole columns, no
    /// predicate, enforced at once): what an `ON CONFLICT` may name. `None` on MySQL, whose
    /// upsert answers any unique key. None at all on SQLite: a table there may declare
    /// `ON CONFLICT IGNORE|REPLACE` on its key, which a plain `INSERT` follows and an upsert
    /// overrides, so an insert is never taken for an upsert there.
    pub async fn unique_keys(&self, table: &TableId) -> Result<Option<Vec<Vec<String>>>> {
        let what = || {
            format!(
                "reading the unique keys of {} in {}",
                table.unquoted(),
                self.description
            )
        };
        let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
        match &self.pool {
            Pool::MySql(_) => return Ok(None),
            Pool::Sqlite(_) => return Ok(Some(Vec::new())),
            Pool::Postgres(p) => {
                // Key columns only (not INCLUDE ones), of valid, immediate, whole-table
                // unique indexes on columns.
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT i.indexrelid::regclass::text, a.attname::text FROM pg_index i \
                     JOIN pg_attribute a ON a.attrelid = i.indrelid \
                     AND a.attnum = ANY((i.indkey::int2[])[0:i.indnkeyatts - 1]) \
                     WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid \
                     AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL",
                )
                .bind(table.quoted(Dialect::Postgres, true))
                .fetch_all(p)
                .await
                .map_err(|e| db_error(&what(), e))?;
                for (index, column) in rows {
                    keys.entry(index).or_default().push(column);
                }
            }
        }
        Ok(Some(keys.into_values().collect()))
    }

    /// The columns a query returns (every one nullable: a query's result does not say).
    pub async fn query_columns(&self, sql: &str) -> Result<Vec<Column>> {
        let what = || format!("preparing the query on {}", self.description);
        let dialect = self.dialect;
        let column = |name: &str, ty: &str| Column {
            name: name.to_string(),
            type_name: ty.to_string(),
            kind: types::kind_of(dialect, &driver_type_name(dialect, ty), ty, None, None),
            nullable: true,
        };
        Ok(match &self.pool {
            Pool::Postgres(p) => {
                let statement = p
                    .prepare(safe(sql).into_sql_str())
                    .await
                    .map_err(|e| db_error(&what(), e))?;
                statement
                    .columns()
                    .iter()
                    .map(|c| column(c.name(), c.type_info().name()))
                    .collect()
            }
            Pool::MySql(p) => {
                let statement = p
                    .prepare(safe(sql).into_sql_str())
                    .await
                    .map_err(|e| db_error(&what(), e))?;
                statement
                    .columns()
                    .iter()
                    .map(|c| column(c.name(), c.type_info().name()))
                    .collect()
            }
            Pool::Sqlite(p) => {
                let statement = p
                    .prepare(safe(sql).into_sql_str())
                    .await
                    .map_err(|e| db_error(&what(), e))?;
                statement
                    .columns()
                    .iter()
                    .map(|c| column(c.name(), c.type_info().name()))
                    .collect()
            }
        })
    }

    /// The database's current time in UTC (the upper bound of timestamp modes).
    pub async fn now(&self) -> Result<NaiveDateTime> {
        let what = || format!("reading the current time of {}", self.description);
        match &self.pool {
            Pool::Postgres(p) => sqlx::query_scalar::<_, DateTime<Utc>>("SELECT CURRENT_TIMESTAMP")
                .fetch_one(p)
                .await
                .map(|t| t.naive_utc()),
            Pool::MySql(p) => {
                sqlx::query_scalar::<_, NaiveDateTime>("SELECT UTC_TIMESTAMP(6)")
                    .fetch_one(p)
                    .await
            }
            Pool::Sqlite(_) => Ok(Utc::now().naive_utc()),
        }
        .map_err(|e| db_error(&what(), e))
    }

    /// Runs `sql` with `params`, sending each row as the values of `columns` (read as
    /// `targets`) to `rows` until the result ends, the receiver goes or an error (sent too).
    pub async fn stream_rows(
        &self,
        sql: String,
        params: Vec<Param>,
        columns: Vec<Column>,
        targets: Vec<Target>,
        rows: mpsc::Sender<Result<Vec<Value>>>,
    ) {
        use futures_util::TryStreamExt;
        let what = || format!("querying {}", self.description);
        macro_rules! run {
            ($pool:expr, $decode:ident) => {{
                let mut query = sqlx::query(safe(&sql));
                for param in &params {
                    query = match param {
                        Param::Long(n) => query.bind(*n),
                        Param::Timestamp(t) => query.bind(*t),
                        Param::TimestampTz(t) => query.bind(*t),
                    };
                }
                let mut stream = query.fetch($pool);
                loop {
                    let next = match stream.try_next().await {
                        Ok(Some(row)) => $decode(&row, &columns, &targets),
                        Ok(None) => return,
                        Err(e) => Err(db_error(&what(), e)),
                    };
                    let failed = next.is_err();
                    if rows.send(next).await.is_err() || failed {
                        return;
                    }
                }
            }};
        }
        match &self.pool {
            Pool::Postgres(p) => run!(p, pg_row),
            Pool::MySql(p) => run!(p, mysql_row),
            Pool::Sqlite(p) => run!(p, sqlite_row),
        }
    }
}

/// SQL this crate built: identifiers quoted by the dialect, values bound as parameters, or
/// the user's own query (a connector config is trusted as the database's user is).
pub fn safe(sql: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.to_string())
}

/// Whether connecting may work on another try (the server is not up yet), as opposed to a
/// refusal (a wrong password, a missing database).
fn retriable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    )
}

/// The first two words of a statement (`CREATE TABLE`), for messages.
fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// A driver's type name in the words information_schema uses for it.
fn driver_type_name(dialect: Dialect, name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match dialect {
        Dialect::MySql => lower.trim_end_matches(" unsigned").to_string(),
        _ => lower,
    }
}

/// Reads column `i` as `T`, naming the column in errors.
fn get<'r, R, T>(row: &'r R, i: usize, column: &Column) -> Result<Option<T>>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get_unchecked::<Option<T>, _>(i).map_err(|e| {
        ConnectError::Data(format!(
            "column {} ({}) cannot be read: {e}",
            column.name, column.type_name
        ))
    })
}

/// Nanoseconds since the epoch of a UTC date and time (saturating past 2262).
fn nanos(at: NaiveDateTime) -> Value {
    Value::Int64(at.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX))
}

fn or_null<T>(value: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    value.map_or(Value::Null, f)
}

/// A decimal text (or null) as the column's target value.
fn decimal(text: Option<&str>, target: Target, column: &Column) -> Result<Value> {
    match text {
        None => Ok(Value::Null),
        Some(text) => types::decimal_value(text, target, column),
    }
}

fn pg_row(row: &PgRow, columns: &[Column], targets: &[Target]) -> Result<Vec<Value>> {
    use sqlx::ValueRef as _;
    let mut values = Vec::with_capacity(columns.len());
    for (i, (column, target)) in columns.iter().zip(targets).enumerate() {
        let value = match column.kind {
            ColumnKind::Boolean => or_null(get::<_, bool>(row, i, column)?, Value::Boolean),
            ColumnKind::Integer { bytes: 2, .. } => {
                or_null(get::<_, i16>(row, i, column)?, Value::Int16)
            }
            ColumnKind::Integer { bytes: 4, .. } => {
                or_null(get::<_, i32>(row, i, column)?, Value::Int32)
            }
            ColumnKind::Integer { .. } => or_null(get::<_, i64>(row, i, column)?, Value::Int64),
            ColumnKind::Float32 => or_null(get::<_, f32>(row, i, column)?, Value::Float32),
            ColumnKind::Float64 => or_null(get::<_, f64>(row, i, column)?, Value::Float64),
            ColumnKind::Decimal { .. } => {
                let raw = row
                    .try_get_raw(i)
                    .map_err(|e| ConnectError::Data(format!("column {}: {e}", column.name)))?;
                if raw.is_null() {
                    Value::Null
                } else {
                    let bytes = raw
                        .as_bytes()
                        .map_err(|e| ConnectError::Data(format!("column {}: {e}", column.name)))?;
                    let text = types::pg_numeric_text(bytes).ok_or_else(|| {
                        ConnectError::Data(format!(
                            "column {} ({}): NaN and infinities have no Connect decimal",
                            column.name, column.type_name
                        ))
                    })?;
                    decimal(Some(&text), *target, column)?
                }
            }
            ColumnKind::String => or_null(get::<_, String>(row, i, column)?, Value::String),
            ColumnKind::Bytes => or_null(get::<_, Vec<u8>>(row, i, column)?, |b| {
                Value::Bytes(b.into())
            }),
            ColumnKind::Date => or_null(get::<_, NaiveDate>(row, i, column)?, types::date_value),
            ColumnKind::Time => or_null(get::<_, NaiveTime>(row, i, column)?, types::time_value),
            ColumnKind::Timestamp => or_null(
                get::<_, NaiveDateTime>(row, i, column)?,
                types::timestamp_value,
            ),
            ColumnKind::TimestampTz => or_null(get::<_, DateTime<Utc>>(row, i, column)?, |t| {
                Value::Int64(t.timestamp_millis())
            }),
            ColumnKind::TimestampNanos { tz: true } => {
                or_null(get::<_, DateTime<Utc>>(row, i, column)?, |t| {
                    nanos(t.naive_utc())
                })
            }
            ColumnKind::TimestampNanos { tz: false } => {
                or_null(get::<_, NaiveDateTime>(row, i, column)?, nanos)
            }
            ColumnKind::Text => {
                let raw = row
                    .try_get_raw(i)
                    .map_err(|e| ConnectError::Data(format!("column {}: {e}", column.name)))?;
                if raw.is_null() {
                    Value::Null
                } else {
                    let type_name = raw.type_info().name().to_ascii_uppercase();
                    let bytes = raw
                        .as_bytes()
                        .map_err(|e| ConnectError::Data(format!("column {}: {e}", column.name)))?;
                    let text = match (raw.format(), type_name.as_str()) {
                        (sqlx::postgres::PgValueFormat::Text, _) => {
                            Some(String::from_utf8_lossy(bytes).into_owned())
                        }
                        (_, "UUID") => types::uuid_text(bytes),
                        (_, "JSONB") => bytes
                            .split_first()
                            .map(|(_, rest)| String::from_utf8_lossy(rest).into_owned()),
                        (_, "TEXT" | "JSON" | "XML" | "CITEXT" | "UNKNOWN") => {
                            Some(String::from_utf8_lossy(bytes).into_owned())
                        }
                        _ => None,
                    };
                    Value::String(text.ok_or_else(|| {
                        ConnectError::Data(format!(
                            "column {} has type {}, which is not read in query mode: cast it \
                             in the query (CAST({} AS TEXT))",
                            column.name, column.type_name, column.name
                        ))
                    })?)
                }
            }
        };
        values.push(value);
    }
    Ok(values)
}

fn mysql_row(row: &MySqlRow, columns: &[Column], targets: &[Target]) -> Result<Vec<Value>> {
    let mut values = Vec::with_capacity(columns.len());
    for (i, (column, target)) in columns.iter().zip(targets).enumerate() {
        let value = match column.kind {
            ColumnKind::Boolean => {
                or_null(get::<_, i64>(row, i, column)?, |n| Value::Boolean(n != 0))
            }
            ColumnKind::Integer {
                bytes: 8,
                unsigned: true,
            } => or_null(get::<_, u64>(row, i, column)?, |n| {
                Value::Bytes(sluice_connect::data::logical::decimal_bytes(i128::from(n)))
            }),
            ColumnKind::Integer { bytes, unsigned } => {
                let n = if unsigned {
                    get::<_, u64>(row, i, column)?.map(|n| n as i64)
                } else {
                    get::<_, i64>(row, i, column)?
                };
                or_null(n, |n| match (bytes, unsigned) {
                    (1, false) => Value::Int8(n as i8),
                    (1, true) | (2, false) => Value::Int16(n as i16),
                    (2, true) | (3, _) | (4, false) => Value::Int32(n as i32),
                    _ => Value::Int64(n),
                })
            }
            ColumnKind::Float32 => or_null(get::<_, f32>(row, i, column)?, Value::Float32),
            ColumnKind::Float64 => or_null(get::<_, f64>(row, i, column)?, Value::Float64),
            ColumnKind::Decimal { .. } => {
                let text = get::<_, String>(row, i, column)?;
                decimal(text.as_deref(), *target, column)?
            }
            ColumnKind::String | ColumnKind::Text => {
                or_null(get::<_, String>(row, i, column)?, Value::String)
            }
            ColumnKind::Bytes => or_null(get::<_, Vec<u8>>(row, i, column)?, |b| {
                Value::Bytes(b.into())
            }),
            ColumnKind::Date => or_null(get::<_, NaiveDate>(row, i, column)?, types::date_value),
            ColumnKind::Time => or_null(get::<_, NaiveTime>(row, i, column)?, types::time_value),
            ColumnKind::Timestamp | ColumnKind::TimestampTz => or_null(
                get::<_, NaiveDateTime>(row, i, column)?,
                types::timestamp_value,
            ),
            ColumnKind::TimestampNanos { .. } => {
                or_null(get::<_, NaiveDateTime>(row, i, column)?, nanos)
            }
        };
        values.push(value);
    }
    Ok(values)
}

fn sqlite_row(row: &SqliteRow, columns: &[Column], targets: &[Target]) -> Result<Vec<Value>> {
    let mut values = Vec::with_capacity(columns.len());
    for (i, (column, target)) in columns.iter().zip(targets).enumerate() {
        let value = match column.kind {
            ColumnKind::Boolean => {
                or_null(get::<_, i64>(row, i, column)?, |n| Value::Boolean(n != 0))
            }
            ColumnKind::Integer { .. } => or_null(get::<_, i64>(row, i, column)?, Value::Int64),
            ColumnKind::Float32 => {
                or_null(get::<_, f64>(row, i, column)?, |f| Value::Float32(f as f32))
            }
            ColumnKind::Float64 => or_null(get::<_, f64>(row, i, column)?, Value::Float64),
            ColumnKind::Decimal { .. } => {
                let text = get::<_, String>(row, i, column)?;
                decimal(text.as_deref(), *target, column)?
            }
            ColumnKind::String | ColumnKind::Text => {
                or_null(get::<_, String>(row, i, column)?, Value::String)
            }
            ColumnKind::Bytes => or_null(get::<_, Vec<u8>>(row, i, column)?, |b| {
                Value::Bytes(b.into())
            }),
            ColumnKind::Date => or_null(get::<_, NaiveDate>(row, i, column)?, types::date_value),
            ColumnKind::Time => or_null(get::<_, NaiveTime>(row, i, column)?, types::time_value),
            ColumnKind::Timestamp | ColumnKind::TimestampTz => or_null(
                get::<_, NaiveDateTime>(row, i, column)?,
                types::timestamp_value,
            ),
            ColumnKind::TimestampNanos { .. } => {
                or_null(get::<_, NaiveDateTime>(row, i, column)?, nanos)
            }
        };
        values.push(value);
    }
    Ok(values)
}
