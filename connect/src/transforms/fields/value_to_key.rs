//! `ValueToKey`: the key becomes some of the value's fields.

use super::{require_map, require_struct, required_list, struct_of, to_map};
use crate::data::{SchemaBuilder, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::{TransformConfig, Transformation};

const PURPOSE: &str = "ValueToKey";

/// Kafka's `ValueToKey`: the key becomes a struct (with a new struct schema) or a map of the
/// value's `fields`. A schemaless value's missing fields are null in the key, as in Kafka.
pub struct ValueToKey {
    fields: Vec<String>,
}

impl ValueToKey {
    /// From `fields` (required).
    pub fn new(config: &TransformConfig) -> Result<ValueToKey> {
        Ok(ValueToKey {
            fields: required_list(config, "fields")?,
        })
    }
}

impl Transformation for ValueToKey {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if record.value.is_null() {
            return Ok(Some(record));
        }
        match &record.value_schema {
            None => {
                let entries = require_map(&record.value, PURPOSE)?;
                let key = self.fields.iter().map(|f| {
                    let v = entries
                        .iter()
                        .find(|(k, _)| k == f)
                        .map_or(Value::Null, |(_, v)| (*v).clone());
                    (f.as_str(), v)
                });
                record.key = to_map(key);
                record.key_schema = None;
            }
            Some(schema) => {
                let value = require_struct(&record.value, PURPOSE)?;
                let mut builder = SchemaBuilder::struct_();
                for name in &self.fields {
                    let field = schema.field(name).ok_or_else(|| {
                        ConnectError::Data(format!(
                            "{PURPOSE}: field {name} does not exist in the value schema"
                        ))
                    })?;
                    builder = builder.field(name.clone(), field.schema.clone());
                }
                let key_schema = builder
                    .build()
                    .map_err(|e| ConnectError::Data(format!("{PURPOSE}: {e}")))?;
                let values = self
                    .fields
                    .iter()
                    .map(|f| (f.as_str(), value.get(f).cloned().unwrap_or(Value::Null)));
                record.key = struct_of(&key_schema, values, PURPOSE)?;
                record.key_schema = Some(key_schema);
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, schema, struct_value, transform};
    use super::*;
    use crate::data::{Schema, Type};

    #[test]
    fn schema_d_values_give_a_struct_key() {
        let t = transform(
            "org.apache.kafka.connect.transforms.ValueToKey",
            &[("fields", "b,a")],
        )
        .unwrap();
        let s = schema(&[
            ("a", Schema::primitive(Type::Int32)),
            ("b", Schema::optional_primitive(Type::String)),
            ("c", Schema::primitive(Type::Int32)),
        ]);
        let v = struct_value(
            &s,
            &[
                ("a", Value::Int32(1)),
                ("b", "x".into()),
                ("c", Value::Int32(3)),
            ],
        );
        let out = run(
            t.as_ref(),
            ConnectRecord::new("t", Some(s.clone()), v.clone()),
        )
        .unwrap();
        let ks = out.key_schema.unwrap();
        let names: Vec<&str> = ks.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(ks.field("b").unwrap().schema.optional);
        let k = out.key.as_struct().unwrap();
        assert_eq!(k.get("a"), Some(&Value::Int32(1)));
        assert_eq!(k.get("b"), Some(&Value::String("x".into())));
        assert_eq!(out.value, v);
        let t = transform("ValueToKey", &[("fields", "zz")]).unwrap();
        let err = run(t.as_ref(), ConnectRecord::new("t", Some(s), v)).unwrap_err();
        assert!(err.to_string().contains("field zz does not exist"), "{err}");
    }

    #[test]
    fn schemaless_values_give_a_map_key() {
        let t = transform("ValueToKey", &[("fields", "a,missing")]).unwrap();
        let v = Value::string_map([("a", Value::Int32(1)), ("c", Value::Int32(3))]);
        let r = ConnectRecord::new("t", None, v)
            .with_key(Some(Schema::primitive(Type::Int8)), Value::Int8(0));
        let out = run(t.as_ref(), r).unwrap();
        assert_eq!(
            out.key,
            Value::string_map([("a", Value::Int32(1)), ("missing", Value::Null)])
        );
        assert_eq!(out.key_schema, None);
        let err = run(t.as_ref(), ConnectRecord::new("t", None, Value::Int32(1))).unwrap_err();
        assert!(err.to_string().contains("needs a map"), "{err}");
        assert!(transform("ValueToKey", &[("fields", "")]).is_err());
    }
}
