//! The record that converters produce and transforms change: topic, partition, key and value
//! with their schemas, timestamp and headers (Kafka Connect's `ConnectRecord`).

use crate::data::{SchemaRef, Value};

/// A header: a key and a value with an optional schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The value's schema, if it has one.
    pub schema: Option<SchemaRef>,
    /// The value.
    pub value: Value,
}

/// A record's headers, in order; a key may repeat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// Appends a header.
    pub fn add(&mut self, key: impl Into<String>, schema: Option<SchemaRef>, value: Value) {
        self.0.push(Header {
            key: key.into(),
            schema,
            value,
        });
    }

    /// Removes every header named `key`.
    pub fn remove_all(&mut self, key: &str) {
        self.0.retain(|h| h.key != key);
    }

    /// The last header named `key` (Kafka's `lastWithName`).
    pub fn last_with_name(&self, key: &str) -> Option<&Header> {
        self.0.iter().rev().find(|h| h.key == key)
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A record between a connector and Kafka (the common part of Connect's source and sink
/// records).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRecord {
    /// The topic.
    pub topic: String,
    /// The partition, when one is chosen.
    pub kafka_partition: Option<i32>,
    /// The key's schema (none: schemaless).
    pub key_schema: Option<SchemaRef>,
    /// The key.
    pub key: Value,
    /// The value's schema (none: schemaless).
    pub value_schema: Option<SchemaRef>,
    /// The value.
    pub value: Value,
    /// The timestamp (ms), if any.
    pub timestamp: Option<i64>,
    /// The headers.
    pub headers: Headers,
}

impl ConnectRecord {
    /// A record of `topic` with a value and nothing else.
    pub fn new(topic: impl Into<String>, value_schema: Option<SchemaRef>, value: Value) -> Self {
        ConnectRecord {
            topic: topic.into(),
            kafka_partition: None,
            key_schema: None,
            key: Value::Null,
            value_schema,
            value,
            timestamp: None,
            headers: Headers::new(),
        }
    }

    /// The same record with `key` and its schema.
    pub fn with_key(mut self, key_schema: Option<SchemaRef>, key: Value) -> Self {
        self.key_schema = key_schema;
        self.key = key;
        self
    }

    /// The same record with a timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}
