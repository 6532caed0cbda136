//! Field transforms, with Kafka's class names and configs: `InsertField`, `ReplaceField`,
//! `MaskField`, `ValueToKey`, `ExtractField`, `HoistField`, `Cast` and `Flatten`.
//!
//! All but `ValueToKey` come as `$Key` and `$Value`. A record whose part is null (a tombstone)
//! passes through unchanged; a schemaless part must be a map with string keys, a schema'd one a
//! struct, where the transform works on fields.

mod cast;
mod extract;
mod flatten;
mod hoist;
mod insert;
mod mask;
mod replace;
mod value_to_key;

pub use cast::Cast;
pub use extract::ExtractField;
pub use flatten::Flatten;
pub use hoist::HoistField;
pub use insert::InsertField;
pub use mask::MaskField;
pub use replace::ReplaceField;
pub use value_to_key::ValueToKey;

use super::{Part, TransformConfig, Transformation};
use crate::data::{SchemaRef, Struct, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;

pub(super) fn build(
    name: &str,
    part: Option<Part>,
    config: &TransformConfig,
) -> Option<Result<Box<dyn Transformation>>> {
    fn on_part<T: PartTransform + 'static>(
        part: Result<Part>,
        inner: impl FnOnce() -> Result<T>,
    ) -> Result<Box<dyn Transformation>> {
        let part = part?;
        Ok(Box::new(OnPart {
            part,
            inner: inner()?,
        }))
    }
    let needs = |name| super::needs_part(config, name, part);
    Some(match name {
        "InsertField" => on_part(needs(name), || InsertField::new(config)),
        "ReplaceField" => on_part(needs(name), || ReplaceField::new(config)),
        "MaskField" => on_part(needs(name), || MaskField::new(config)),
        "ExtractField" => on_part(needs(name), || ExtractField::new(config)),
        "HoistField" => on_part(needs(name), || HoistField::new(config)),
        "Cast" => on_part(needs(name), || Cast::new(config)),
        "Flatten" => on_part(needs(name), || Flatten::new(config)),
        "ValueToKey" => ValueToKey::new(config).map(|t| Box::new(t) as _),
        _ => return None,
    })
}

/// A transform of one part of a record (key or value), told apart by whether it has a schema.
pub(crate) trait PartTransform: Send + Sync {
    /// The new schemaless part (`value` is not null).
    fn schemaless(&self, record: &ConnectRecord, value: &Value) -> Result<Value>;
    /// The new part and its schema (`value` is not null).
    fn with_schema(
        &self,
        record: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)>;
}

/// A [`PartTransform`] applied to the part of its `$Key` / `$Value` class name.
pub(crate) struct OnPart<T> {
    pub(crate) part: Part,
    pub(crate) inner: T,
}

impl<T: PartTransform> Transformation for OnPart<T> {
    fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = part_of(&record, self.part);
        if value.is_null() {
            return Ok(Some(record));
        }
        let (schema, value) = match schema {
            None => (None, self.inner.schemaless(&record, value)?),
            Some(schema) => {
                let (schema, value) = self.inner.with_schema(&record, schema, value)?;
                (Some(schema), value)
            }
        };
        Ok(Some(with_part(record, self.part, schema, value)))
    }
}

/// The schema and value of `part` of `record`.
pub(crate) fn part_of(record: &ConnectRecord, part: Part) -> (Option<&SchemaRef>, &Value) {
    match part {
        Part::Key => (record.key_schema.as_ref(), &record.key),
        Part::Value => (record.value_schema.as_ref(), &record.value),
    }
}

/// `record` with `part` replaced.
pub(crate) fn with_part(
    mut record: ConnectRecord,
    part: Part,
    schema: Option<SchemaRef>,
    value: Value,
) -> ConnectRecord {
    match part {
        Part::Key => {
            record.key_schema = schema;
            record.key = value;
        }
        Part::Value => {
            record.value_schema = schema;
            record.value = value;
        }
    }
    record
}

/// The struct a schema'd part must be (Kafka's `requireStruct`).
pub(crate) fn require_struct<'a>(value: &'a Value, purpose: &str) -> Result<&'a Struct> {
    value.as_struct().ok_or_else(|| {
        ConnectError::Data(format!(
            "{purpose} needs a struct for a record with a schema, found a {}",
            value.type_name()
        ))
    })
}

/// The entries of a map with string keys, which a schemaless part must be (Kafka's
/// `requireMap`).
pub(crate) fn require_map<'a>(
    value: &'a Value,
    purpose: &str,
) -> Result<Vec<(&'a str, &'a Value)>> {
    let Value::Map(entries) = value else {
        return Err(ConnectError::Data(format!(
            "{purpose} needs a map for a record without a schema, found a {}",
            value.type_name()
        )));
    };
    entries
        .iter()
        .map(|(k, v)| match k.as_str() {
            Some(k) => Ok((k, v)),
            None => Err(ConnectError::Data(format!(
                "{purpose} needs a map with string keys, found a {} key",
                k.type_name()
            ))),
        })
        .collect()
}

/// A schemaless map from string-keyed entries.
pub(crate) fn to_map<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::string_map(entries)
}

/// Sets `key` in string-keyed `entries`, in place if present (as Java's `Map.put`).
pub(crate) fn map_put(entries: &mut Vec<(String, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

pub(crate) use super::struct_basics;

/// A struct of `schema` with the given field values, each checked against its field.
pub(crate) fn struct_of<'a>(
    schema: &SchemaRef,
    values: impl IntoIterator<Item = (&'a str, Value)>,
    purpose: &str,
) -> Result<Value> {
    let mut out = Struct::new(schema.clone());
    for (name, value) in values {
        out.put(name, value)
            .map_err(|e| ConnectError::Data(format!("{purpose}: field {name}: {e}")))?;
    }
    Ok(Value::Struct(out))
}

/// A non-empty list property.
pub(crate) fn required_list(config: &TransformConfig, key: &str) -> Result<Vec<String>> {
    let list = config.list(key);
    if list.is_empty() {
        return Err(config.error(
            key,
            config.get(key).unwrap_or(""),
            "needs at least one field name",
        ));
    }
    Ok(list)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::{Schema, SchemaBuilder, Type};

    pub(crate) use crate::transforms::test_config as config;

    /// Builds transform `class` (with its `$Key`/`$Value`) through the public entry point.
    pub(crate) fn transform(
        class: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Box<dyn Transformation>> {
        super::super::transformation(class, &config(pairs))
    }

    /// Applies `t`, expecting a record back.
    pub(crate) fn run(t: &dyn Transformation, record: ConnectRecord) -> Result<ConnectRecord> {
        t.apply(record)?
            .ok_or_else(|| ConnectError::Data("record dropped".into()))
    }

    /// A struct schema of the given fields.
    pub(crate) fn schema(fields: &[(&str, SchemaRef)]) -> SchemaRef {
        fields
            .iter()
            .fold(SchemaBuilder::struct_(), |b, (n, s)| b.field(*n, s.clone()))
            .build()
            .unwrap()
    }

    /// A struct of `schema` with the given values.
    pub(crate) fn struct_value(schema: &SchemaRef, values: &[(&str, Value)]) -> Value {
        struct_of(schema, values.iter().map(|(n, v)| (*n, v.clone())), "test").unwrap()
    }

    #[test]
    fn names_need_their_part_and_unknown_names_are_not_ours() {
        let c = config(&[("field", "f")]);
        assert!(build("Nope", None, &c).is_none());
        let err = build("HoistField", None, &c).unwrap().err().unwrap();
        assert!(err.to_string().contains("HoistField$Key"), "{err}");
        assert!(build("ValueToKey", None, &config(&[("fields", "a")]))
            .unwrap()
            .is_ok());
        for name in [
            "InsertField",
            "ReplaceField",
            "MaskField",
            "ExtractField",
            "HoistField",
            "Cast",
            "Flatten",
        ] {
            assert!(build(name, Some(Part::Key), &c).is_some(), "{name}");
        }
    }

    #[test]
    fn wrong_shapes_are_errors_and_nulls_pass() {
        let t = transform("HoistField$Value", &[("field", "f")]).unwrap();
        let tomb = ConnectRecord::new("t", Some(Schema::primitive(Type::Int32)), Value::Null);
        assert_eq!(run(t.as_ref(), tomb.clone()).unwrap(), tomb);
        let err = require_map(&Value::Int32(1), "X").unwrap_err();
        assert!(err.to_string().contains("X needs a map"), "{err}");
        let bad_key = Value::Map(vec![(Value::Int32(1), Value::Null)]);
        assert!(require_map(&bad_key, "X").is_err());
        assert!(require_struct(&Value::Int32(1), "X").is_err());
    }
}
