//! `InsertField`: adds the record's topic, partition, timestamp or a static string as fields.

use super::{map_put, require_map, require_struct, struct_basics, struct_of, PartTransform};
use std::sync::Arc;

use crate::data::{logical, SchemaBuilder, SchemaRef, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::TransformConfig;

const PURPOSE: &str = "InsertField";

/// A field to insert: its name and whether it is optional (a `?` suffix or none) or required
/// (a `!` suffix).
#[derive(Debug, Clone)]
struct Spec {
    name: String,
    optional: bool,
}

impl Spec {
    fn parse(config: &TransformConfig, key: &str) -> Option<Spec> {
        let raw = config.get(key)?.trim();
        let (name, optional) = if let Some(name) = raw.strip_suffix('!') {
            (name, false)
        } else {
            (raw.strip_suffix('?').unwrap_or(raw), true)
        };
        (!name.is_empty()).then(|| Spec {
            name: name.to_string(),
            optional,
        })
    }
}

/// Kafka's `InsertField$Key` / `InsertField$Value`: `topic.field`, `partition.field`,
/// `timestamp.field` (a `Timestamp`) and `static.field` with `static.value`.
///
/// `offset.field` is accepted but, as Kafka does for source records, refused at run time: a
/// [`ConnectRecord`] has no Kafka offset.
pub struct InsertField {
    topic: Option<Spec>,
    partition: Option<Spec>,
    offset: Option<Spec>,
    timestamp: Option<Spec>,
    static_field: Option<Spec>,
    static_value: Option<String>,
}

impl InsertField {
    /// From its config; at least one field must be named.
    pub fn new(config: &TransformConfig) -> Result<InsertField> {
        let t = InsertField {
            topic: Spec::parse(config, "topic.field"),
            partition: Spec::parse(config, "partition.field"),
            offset: Spec::parse(config, "offset.field"),
            timestamp: Spec::parse(config, "timestamp.field"),
            static_field: Spec::parse(config, "static.field"),
            static_value: config.get("static.value").map(str::to_string),
        };
        if t.fields(&ConnectRecord::new("", None, Value::Null))
            .is_empty()
            && t.offset.is_none()
        {
            return Err(config.error(
                "topic.field",
                "",
                "InsertField needs one of topic.field, partition.field, offset.field, timestamp.field or static.field",
            ));
        }
        Ok(t)
    }

    /// The fields to add, in Kafka's order, with their schemas and this record's values.
    fn fields(&self, record: &ConnectRecord) -> Vec<(&Spec, SchemaRef, Value)> {
        let schema = |spec: &Spec, builder: SchemaBuilder| {
            let builder = if spec.optional {
                builder.optional()
            } else {
                builder
            };
            Arc::new(builder.build_unchecked())
        };
        let or_null = |v: Option<Value>| v.unwrap_or(Value::Null);
        let added = [
            (
                &self.topic,
                SchemaBuilder::string(),
                Value::String(record.topic.clone()),
            ),
            (
                &self.partition,
                SchemaBuilder::int32(),
                or_null(record.kafka_partition.map(Value::Int32)),
            ),
            (
                &self.timestamp,
                logical::timestamp(),
                or_null(record.timestamp.map(Value::Int64)),
            ),
            (
                &self.static_field,
                SchemaBuilder::string(),
                or_null(self.static_value.clone().map(Value::String)),
            ),
        ];
        added
            .into_iter()
            .filter_map(|(spec, builder, value)| {
                let spec = spec.as_ref()?;
                Some((spec, schema(spec, builder), value))
            })
            .collect()
    }

    fn refuse_offset(&self) -> Result<()> {
        match &self.offset {
            Some(spec) => Err(ConnectError::Data(format!(
                "{PURPOSE}: offset.field {} needs a sink record's Kafka offset, which this record does not have",
                spec.name
            ))),
            None => Ok(()),
        }
    }
}

impl PartTransform for InsertField {
    fn schemaless(&self, record: &ConnectRecord, value: &Value) -> Result<Value> {
        self.refuse_offset()?;
        let mut entries: Vec<(String, Value)> = require_map(value, PURPOSE)?
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (spec, _, v) in self.fields(record) {
            map_put(&mut entries, &spec.name, v);
        }
        Ok(Value::string_map(entries))
    }

    fn with_schema(
        &self,
        record: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)> {
        self.refuse_offset()?;
        let value = require_struct(value, PURPOSE)?;
        let added = self.fields(record);
        let builder = schema.fields.iter().fold(struct_basics(schema), |b, f| {
            b.field(f.name.clone(), f.schema.clone())
        });
        let new_schema = added
            .iter()
            .fold(builder, |b, (spec, s, _)| {
                b.field(spec.name.clone(), s.clone())
            })
            .build()
            .map_err(|e| ConnectError::Data(format!("{PURPOSE}: {e}")))?;
        let old = schema
            .fields
            .iter()
            .map(|f| (f.name.as_str(), value.get_at(f.index).clone()));
        let new = added
            .iter()
            .map(|(spec, _, v)| (spec.name.as_str(), v.clone()));
        let out = struct_of(&new_schema, old.chain(new), PURPOSE)?;
        Ok((new_schema, out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, schema, struct_value, transform};
    use super::*;
    use crate::data::{Schema, Type};

    fn record() -> ConnectRecord {
        let mut r = ConnectRecord::new("orders", None, Value::Null).with_timestamp(1234);
        r.kafka_partition = Some(3);
        r
    }

    #[test]
    fn schema_d_values_get_typed_fields() {
        let t = transform(
            "org.apache.kafka.connect.transforms.InsertField$Value",
            &[
                ("topic.field", "topic!"),
                ("partition.field", "part"),
                ("timestamp.field", "ts?"),
                ("static.field", "src"),
                ("static.value", "files"),
            ],
        )
        .unwrap();
        let s = schema(&[("id", Schema::primitive(Type::Int32))]);
        let mut r = record();
        r.value_schema = Some(s.clone());
        r.value = struct_value(&s, &[("id", Value::Int32(7))]);
        let out = run(t.as_ref(), r).unwrap();
        let os = out.value_schema.unwrap();
        let names: Vec<&str> = os.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "topic", "part", "ts", "src"]);
        assert!(!os.field("topic").unwrap().schema.optional);
        assert!(os.field("part").unwrap().schema.optional);
        assert_eq!(
            os.field("ts").unwrap().schema.name.as_deref(),
            Some(logical::TIMESTAMP)
        );
        let v = out.value.as_struct().unwrap();
        assert_eq!(v.get("id"), Some(&Value::Int32(7)));
        assert_eq!(v.get("topic"), Some(&Value::String("orders".into())));
        assert_eq!(v.get("part"), Some(&Value::Int32(3)));
        assert_eq!(v.get("ts"), Some(&Value::Int64(1234)));
        assert_eq!(v.get("src"), Some(&Value::String("files".into())));
    }

    #[test]
    fn schemaless_keys_get_entries_and_tombstones_pass() {
        let t = transform(
            "InsertField$Key",
            &[("partition.field", "p"), ("topic.field", "k")],
        )
        .unwrap();
        let r = record().with_key(None, Value::string_map([("k", Value::Int8(1))]));
        let out = run(t.as_ref(), r).unwrap();
        assert_eq!(
            out.key,
            Value::string_map([
                ("k", Value::String("orders".into())),
                ("p", Value::Int32(3))
            ])
        );
        // The value is untouched; a null key passes.
        assert_eq!(out.value, Value::Null);
        assert_eq!(run(t.as_ref(), record()).unwrap(), record());
    }

    #[test]
    fn bad_configs_and_data_are_errors() {
        let err = transform("InsertField$Value", &[]).err().unwrap();
        assert!(
            err.to_string().contains("transforms.t.topic.field"),
            "{err}"
        );
        let t = transform("InsertField$Value", &[("topic.field", "t")]).unwrap();
        let err = run(t.as_ref(), ConnectRecord::new("x", None, Value::Int32(1))).unwrap_err();
        assert!(err.to_string().contains("needs a map"), "{err}");
        // A required partition with no partition cannot be put.
        let t = transform("InsertField$Value", &[("partition.field", "p!")]).unwrap();
        let s = schema(&[("id", Schema::primitive(Type::Int32))]);
        let v = struct_value(&s, &[("id", Value::Int32(1))]);
        let err = run(t.as_ref(), ConnectRecord::new("x", Some(s), v)).unwrap_err();
        assert!(err.to_string().contains("field p"), "{err}");
        let t = transform("InsertField$Value", &[("offset.field", "o")]).unwrap();
        let err = run(
            t.as_ref(),
            ConnectRecord::new("x", None, Value::string_map([("a", Value::Null)])),
        )
        .unwrap_err();
        assert!(err.to_string().contains("offset.field o"), "{err}");
    }
}
