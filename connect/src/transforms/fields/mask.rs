//! `MaskField`: replaces fields with their type's "zero" or a configured replacement.

use bytes::Bytes;

use super::{require_map, require_struct, required_list, struct_of, to_map, PartTransform};
use crate::data::{logical, Schema, SchemaRef, Type, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::TransformConfig;

const PURPOSE: &str = "MaskField";

/// Kafka's `MaskField$Key` / `MaskField$Value`: the fields in `fields` become the zero of
/// their type (0, 0.0, false, "", empty bytes, an empty array or map, a zero decimal, the epoch
/// for dates and times) or, with `replacement`, that text parsed into the field's type.
///
/// A schemaless map's listed fields that are absent stay absent (Kafka adds them as null).
pub struct MaskField {
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    /// From `fields` (required) and `replacement` (optional, not empty).
    pub fn new(config: &TransformConfig) -> Result<MaskField> {
        let fields = required_list(config, "fields")?;
        let replacement = match config.get("replacement") {
            Some("") => return Err(config.error("replacement", "", "must not be empty when set")),
            other => other.map(str::to_string),
        };
        Ok(MaskField {
            fields,
            replacement,
        })
    }

    fn masks(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f == name)
    }

    /// The masked form of `value` of field `field` (`schema` when the record has one).
    fn masked(&self, field: &str, schema: Option<&Schema>, value: &Value) -> Result<Value> {
        let Some(ty) = schema.map(|s| s.ty).or_else(|| value.schema_type()) else {
            return Ok(Value::Null);
        };
        if value.is_null() {
            return Ok(Value::Null);
        }
        let name = schema.and_then(|s| s.name.as_deref());
        let cannot = |what: &str| {
            ConnectError::Data(format!("{PURPOSE}: cannot mask field {field}, a {what}"))
        };
        let Some(text) = &self.replacement else {
            return Ok(match ty {
                Type::Int8 => Value::Int8(0),
                Type::Int16 => Value::Int16(0),
                Type::Int32 => Value::Int32(0),
                Type::Int64 => Value::Int64(0),
                Type::Float32 => Value::Float32(0.0),
                Type::Float64 => Value::Float64(0.0),
                Type::Boolean => Value::Boolean(false),
                Type::String => Value::String(String::new()),
                Type::Bytes if name == Some(logical::DECIMAL) => {
                    Value::Bytes(logical::decimal_bytes(0))
                }
                Type::Bytes => Value::Bytes(Bytes::new()),
                Type::Array => Value::Array(Vec::new()),
                Type::Map => Value::Map(Vec::new()),
                Type::Struct => return Err(cannot("struct")),
            });
        };
        if let Some(logical @ (logical::DATE | logical::TIME | logical::TIMESTAMP)) = name {
            return Err(cannot(&format!("{logical}, with a custom replacement")));
        }
        let bad = || {
            ConnectError::Data(format!(
                "{PURPOSE}: replacement {text:?} for field {field} is not a {ty}"
            ))
        };
        let t = text.trim();
        Ok(match ty {
            Type::Int8 => Value::Int8(t.parse().map_err(|_| bad())?),
            Type::Int16 => Value::Int16(t.parse().map_err(|_| bad())?),
            Type::Int32 => Value::Int32(t.parse().map_err(|_| bad())?),
            Type::Int64 => Value::Int64(t.parse().map_err(|_| bad())?),
            Type::Float32 => Value::Float32(t.parse().map_err(|_| bad())?),
            Type::Float64 => Value::Float64(t.parse().map_err(|_| bad())?),
            Type::Boolean => match t.to_ascii_lowercase().as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => return Err(bad()),
            },
            Type::String => Value::String(text.clone()),
            Type::Bytes if name == Some(logical::DECIMAL) => {
                let scale = schema.map(logical::decimal_scale).transpose()?.unwrap_or(0);
                Value::Bytes(logical::decimal_bytes(logical::decimal_parse(t, scale)?))
            }
            other => return Err(cannot(&format!("{other}, with a custom replacement"))),
        })
    }
}

impl PartTransform for MaskField {
    fn schemaless(&self, _: &ConnectRecord, value: &Value) -> Result<Value> {
        let entries = require_map(value, PURPOSE)?;
        let masked = entries
            .into_iter()
            .map(|(k, v)| {
                let v = if self.masks(k) {
                    self.masked(k, None, v)?
                } else {
                    v.clone()
                };
                Ok((k, v))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(to_map(masked))
    }

    fn with_schema(
        &self,
        _: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)> {
        let value = require_struct(value, PURPOSE)?;
        let values = schema
            .fields
            .iter()
            .map(|f| {
                let v = value.get_at(f.index);
                let v = if self.masks(&f.name) {
                    self.masked(&f.name, Some(&f.schema), v)?
                } else {
                    v.clone()
                };
                Ok((f.name.as_str(), v))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((schema.clone(), struct_of(schema, values, PURPOSE)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, schema, struct_value, transform};
    use super::*;

    #[test]
    fn schema_d_fields_become_zeros_of_their_type() {
        let t = transform("MaskField$Value", &[("fields", "n,s,d,day,b,keep_null")]).unwrap();
        let dec = logical::decimal(2).build().unwrap();
        let s = schema(&[
            ("n", Schema::primitive(Type::Int64)),
            ("s", Schema::primitive(Type::String)),
            ("d", dec),
            ("day", logical::date().build().unwrap()),
            ("b", Schema::primitive(Type::Boolean)),
            ("keep_null", Schema::optional_primitive(Type::Int32)),
            ("other", Schema::primitive(Type::Int32)),
        ]);
        let v = struct_value(
            &s,
            &[
                ("n", Value::Int64(99)),
                ("s", "secret".into()),
                ("d", Value::Bytes(logical::decimal_bytes(1234))),
                ("day", Value::Int32(19000)),
                ("b", Value::Boolean(true)),
                ("other", Value::Int32(5)),
            ],
        );
        let out = run(t.as_ref(), ConnectRecord::new("t", Some(s.clone()), v)).unwrap();
        assert_eq!(out.value_schema, Some(s));
        let v = out.value.as_struct().unwrap();
        assert_eq!(v.get("n"), Some(&Value::Int64(0)));
        assert_eq!(v.get("s"), Some(&Value::String(String::new())));
        assert_eq!(v.get("d"), Some(&Value::Bytes(logical::decimal_bytes(0))));
        assert_eq!(v.get("day"), Some(&Value::Int32(0)));
        assert_eq!(v.get("b"), Some(&Value::Boolean(false)));
        assert_eq!(v.get("keep_null"), Some(&Value::Null));
        assert_eq!(v.get("other"), Some(&Value::Int32(5)));
    }

    #[test]
    fn schemaless_keys_take_the_replacement_in_the_fields_type() {
        let t = transform(
            "MaskField$Key",
            &[("fields", "n,s,f"), ("replacement", "42")],
        )
        .unwrap();
        let key = Value::string_map([
            ("n", Value::Int16(7)),
            ("s", "x".into()),
            ("f", Value::Float64(1.5)),
            ("o", Value::Int8(1)),
        ]);
        let out = run(
            t.as_ref(),
            ConnectRecord::new("t", None, Value::Null).with_key(None, key),
        )
        .unwrap();
        assert_eq!(
            out.key,
            Value::string_map([
                ("n", Value::Int16(42)),
                ("s", "42".into()),
                ("f", Value::Float64(42.0)),
                ("o", Value::Int8(1)),
            ])
        );
        let t = transform("MaskField$Key", &[("fields", "a"), ("replacement", "zero")]).unwrap();
        let key = Value::string_map([("a", Value::Int32(3))]);
        let err = run(
            t.as_ref(),
            ConnectRecord::new("t", None, Value::Null).with_key(None, key),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"zero\" for field a is not a int32"),
            "{err}"
        );
    }

    #[test]
    fn bad_configs_and_structs_are_errors() {
        let err = transform("MaskField$Value", &[]).err().unwrap();
        assert!(err.to_string().contains("transforms.t.fields"), "{err}");
        let err = transform("MaskField$Value", &[("fields", "a"), ("replacement", "")])
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("transforms.t.replacement"),
            "{err}"
        );
        let inner = schema(&[("x", Schema::primitive(Type::Int32))]);
        let s = schema(&[("in", inner.clone())]);
        let v = struct_value(
            &s,
            &[("in", struct_value(&inner, &[("x", Value::Int32(1))]))],
        );
        let t = transform("MaskField$Value", &[("fields", "in")]).unwrap();
        let err = run(t.as_ref(), ConnectRecord::new("t", Some(s), v)).unwrap_err();
        assert!(
            err.to_string().contains("cannot mask field in, a struct"),
            "{err}"
        );
    }
}
