//! Routing, filtering and schema transforms: `RegexRouter`, `TimestampRouter`,
//! `TimestampConverter`, `Filter`, `SetSchemaMetadata` and `HeaderFrom`.

mod date_format;
mod filter;
mod header_from;
mod regex_router;
mod set_schema_metadata;
mod timestamp_converter;
mod timestamp_router;

pub use filter::Filter;
pub use header_from::HeaderFrom;
pub use regex_router::RegexRouter;
pub use set_schema_metadata::SetSchemaMetadata;
pub use timestamp_converter::TimestampConverter;
pub use timestamp_router::TimestampRouter;

use super::{needs_part, Part, TransformConfig, Transformation};
use crate::data::{SchemaRef, Struct, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;

pub(super) fn build(
    name: &str,
    part: Option<Part>,
    config: &TransformConfig,
) -> Option<Result<Box<dyn Transformation>>> {
    fn boxed<T: Transformation + 'static>(t: Result<T>) -> Result<Box<dyn Transformation>> {
        t.map(|t| Box::new(t) as _)
    }
    Some(match name {
        "RegexRouter" => boxed(RegexRouter::new(config)),
        "TimestampRouter" => boxed(TimestampRouter::new(config)),
        "Filter" => Ok(Box::new(Filter)),
        "TimestampConverter" => needs_part(config, name, part)
            .and_then(|part| boxed(TimestampConverter::new(part, config))),
        "SetSchemaMetadata" => needs_part(config, name, part)
            .and_then(|part| boxed(SetSchemaMetadata::new(part, config))),
        "HeaderFrom" => {
            needs_part(config, name, part).and_then(|part| boxed(HeaderFrom::new(part, config)))
        }
        _ => return None,
    })
}

/// Takes the schema and value of a record's `part` out of it (leaving a schemaless null).
fn take_part(record: &mut ConnectRecord, part: Part) -> (Option<SchemaRef>, Value) {
    let (schema, value) = match part {
        Part::Key => (&mut record.key_schema, &mut record.key),
        Part::Value => (&mut record.value_schema, &mut record.value),
    };
    (schema.take(), std::mem::replace(value, Value::Null))
}

/// Puts the schema and value of a record's `part` back.
fn set_part(record: &mut ConnectRecord, part: Part, schema: Option<SchemaRef>, value: Value) {
    match part {
        Part::Key => (record.key_schema, record.key) = (schema, value),
        Part::Value => (record.value_schema, record.value) = (schema, value),
    }
}

/// `key` or `value`, for messages.
fn part_name(part: Part) -> &'static str {
    match part {
        Part::Key => "key",
        Part::Value => "value",
    }
}

/// A data error that names the transform and the record's topic.
fn data_error(transform: &str, topic: &str, message: impl std::fmt::Display) -> ConnectError {
    ConnectError::Data(format!("{transform} (topic {topic}): {message}"))
}

use super::struct_basics;

/// `schema` with the default `default` (when there is one). A struct default must be a struct
/// of the schema itself (without its default), so `rebuild` first moves it onto `schema`.
fn with_default(
    schema: SchemaRef,
    default: Option<&Value>,
    rebuild: impl Fn(&Struct, &SchemaRef) -> Result<Struct>,
) -> Result<SchemaRef> {
    let value = match default {
        None => return Ok(schema),
        Some(Value::Struct(old)) => Value::Struct(rebuild(old, &schema)?),
        Some(other) => other.clone(),
    };
    schema.to_builder().default_value(value).build()
}

/// The value of map entry `key` of a schemaless map (string keys), if present.
fn map_get<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Value::String(s) if s == key))
        .map(|(_, v)| v)
}

#[cfg(test)]
use super::test_config;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_knows_this_groups_names_and_wants_a_part_where_kafka_has_two() {
        let cfg = test_config(&[("regex", "a"), ("replacement", "b")]);
        assert!(build("RegexRouter", None, &cfg).is_some_and(|t| t.is_ok()));
        assert!(build("Filter", None, &cfg).is_some_and(|t| t.is_ok()));
        assert!(build("InsertField", Some(Part::Value), &cfg).is_none());
        let cfg = test_config(&[("schema.name", "n")]);
        let err = build("SetSchemaMetadata", None, &cfg)
            .unwrap()
            .err()
            .unwrap();
        assert!(err.to_string().contains("SetSchemaMetadata$Key"), "{err}");
        assert!(build("SetSchemaMetadata", Some(Part::Key), &cfg).is_some_and(|t| t.is_ok()));
    }
}
