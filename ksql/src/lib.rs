//! Sluice's ksqlDB: continuous SQL over topics in ksqlDB's dialect.
//!
//! This crate grows in layers, lowest first:
//! - [`parser`]: ksqlDB's statements (`CREATE STREAM`, `CREATE TABLE ... AS SELECT`, push and
//!   pull queries with `WINDOW`, `WITHIN`, `PARTITION BY` and `EMIT`, `SHOW`, `DESCRIBE`,
//!   `PRINT`, `SET`, `DEFINE`, ...) into an AST whose expressions are sqlparser's, with
//!   errors that give the line and column and what was expected.
//! - [`metastore`]: the streams, tables and types, and ksqlDB's rules for them (names,
//!   key columns, `WITH` properties, formats).
//! - [`format`]: ksqlDB's key and value formats (JSON, KAFKA, DELIMITED, NONE) between record
//!   bytes and Arrow columns.
//!
//! - [`aggregate`]: ksqlDB's aggregate functions, their signatures for DataFusion and their
//!   per-group states.
//! - [`plan`]: a query as a DataFusion logical plan; [`exec`]: the plan compiled into a
//!   Sluice Streams topology over Arrow batches; [`queries`]: persistent and push queries run;
//!   [`pull`]: pull queries answered from the state of the queries that materialise tables
//!   (and scans of streams); [`print`]: `PRINT`, a topic's records as text.
//! - [`command`]: the command topic that keeps every DDL statement in order, applied by a
//!   runner so a restarted server, and every server of one service id, agree.
//! - [`engine`]: statements run against the metastore and the cluster (topics created and
//!   deleted as ksqlDB does), answered with ksqlDB's REST entities.
//! - [`variables`]: `DEFINE`d variables substituted into the statements after them.
//! - [`rest`]: ksqlDB's REST API (`POST /ksql`, `/query`, `/query-stream`, `/close-query`,
//!   `/inserts-stream`, `/info`, `/healthcheck`, `/status`).
//! - [`client`]: a client of ksqlDB's REST API (the CLI's).
//!
//! Still to come (issue 18): n-way joins.

pub mod aggregate;
pub mod client;
pub mod command;
pub mod engine;
pub mod error;
pub mod exec;
pub mod format;
pub mod metastore;
pub mod parser;
pub mod plan;
pub mod print;
pub mod pull;
pub mod queries;
pub mod rest;
pub mod variables;

pub use error::{KsqlError, Result};
