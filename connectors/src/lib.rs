//! Connectors bundled with Sluice, implementing `sluice-connect`'s connector traits.
//!
//! - [`file`]: Kafka Connect's file connectors — [`FileStreamSourceConnector`] tails a text
//!   file into a topic, one record per line, resuming from the committed byte offset;
//!   [`FileStreamSinkConnector`] appends each record's value to a file as a line. Their
//!   configs (`file`, `topic`, `batch.size`), source partitions and offsets
//!   (`{"filename": ...}`, `{"position": ...}`) are Kafka's, so existing configs and stored
//!   offsets carry over.
//!
//! - [`jdbc`]: Confluent's JDBC connectors — [`jdbc::JdbcSourceConnector`] reads tables or a
//!   query of PostgreSQL, MySQL/MariaDB or SQLite into topics (bulk, incrementing, timestamp,
//!   timestamp+incrementing); [`jdbc::JdbcSinkConnector`] writes records into tables (insert,
//!   upsert, update, deletes), with Confluent's config keys, class names and offsets.
//!
//! The class names the runtime resolves to each connector are in
//! [`file::SOURCE_CLASS_NAMES`], [`file::SINK_CLASS_NAMES`], [`jdbc::SOURCE_CLASS_NAMES`] and
//! [`jdbc::SINK_CLASS_NAMES`].

pub mod file;
pub mod jdbc;
pub mod s3;

use sluice_connect::worker::{ConnectorFactory, Plugins};

pub use file::{
    FileStreamSinkConnector, FileStreamSinkTask, FileStreamSourceConnector, FileStreamSourceTask,
    SINK_CLASS_NAMES, SOURCE_CLASS_NAMES,
};

/// Adds this crate's connectors to `plugins`, under each of Kafka's names for them.
pub fn register(plugins: &mut Plugins) {
    let (source_class, source_aliases) = canonical(SOURCE_CLASS_NAMES);
    plugins.register(
        source_class,
        source_aliases,
        ConnectorFactory::Source(|| Box::new(FileStreamSourceConnector::new())),
    );
    let (sink_class, sink_aliases) = canonical(SINK_CLASS_NAMES);
    plugins.register(
        sink_class,
        sink_aliases,
        ConnectorFactory::Sink(|| Box::new(FileStreamSinkConnector::new())),
    );
    let (class, aliases) = canonical(jdbc::SOURCE_CLASS_NAMES);
    plugins.register(
        class,
        aliases,
        ConnectorFactory::Source(|| Box::new(jdbc::JdbcSourceConnector::new())),
    );
    let (class, aliases) = canonical(jdbc::SINK_CLASS_NAMES);
    plugins.register(
        class,
        aliases,
        ConnectorFactory::Sink(|| Box::new(jdbc::JdbcSinkConnector::new())),
    );
    let (class, aliases) = canonical(s3::SINK_CLASS_NAMES);
    plugins.register(
        class,
        aliases,
        ConnectorFactory::Sink(|| Box::new(s3::S3SinkConnector::new())),
    );
    let (class, aliases) = canonical(s3::SOURCE_CLASS_NAMES);
    plugins.register(
        class,
        aliases,
        ConnectorFactory::Source(|| Box::new(s3::S3SourceConnector::new())),
    );
}

/// Every connector of this crate, for a worker.
pub fn plugins() -> Plugins {
    let mut plugins = Plugins::new();
    register(&mut plugins);
    plugins
}

/// The fully qualified name (the last, and longest) and the others as aliases.
fn canonical(names: &'static [&'static str]) -> (&'static str, &'static [&'static str]) {
    match names.split_last() {
        Some((class, aliases)) => (class, aliases),
        None => ("", names),
    }
}
