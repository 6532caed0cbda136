//! `Flatten`: nested structs or maps become top-level fields named by their path.

use super::{require_map, require_struct, struct_basics, struct_of, PartTransform};
use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::TransformConfig;

const PURPOSE: &str = "Flatten";

/// Kafka's `Flatten$Key` / `Flatten$Value`: nested structs (with a schema) or maps (without)
/// become fields `outer<delimiter>inner`, `delimiter` being `.` unless set. A field under an
/// optional struct becomes optional, and takes its default from the parent's default when it
/// has none. Arrays (and maps under a schema) are kept whole.
pub struct Flatten {
    delimiter: String,
}

impl Flatten {
    /// From `delimiter`.
    pub fn new(config: &TransformConfig) -> Result<Flatten> {
        Ok(Flatten {
            delimiter: config.get("delimiter").unwrap_or(".").to_string(),
        })
    }

    fn name(&self, prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}{}{name}", self.delimiter)
        }
    }

    fn flatten_map(
        &self,
        value: &Value,
        prefix: &str,
        out: &mut Vec<(String, Value)>,
    ) -> Result<()> {
        for (key, v) in require_map(value, PURPOSE)? {
            let name = self.name(prefix, key);
            match v {
                Value::Map(_) => self.flatten_map(v, &name, out)?,
                Value::Struct(_) => {
                    return Err(ConnectError::Data(format!(
                        "{PURPOSE}: field {name} is a struct in a record without a schema"
                    )))
                }
                _ => out.push((name, v.clone())),
            }
        }
        Ok(())
    }

    fn flatten_schema(
        &self,
        schema: &Schema,
        prefix: &str,
        optional: bool,
        parent_default: Option<&Struct>,
        out: SchemaBuilder,
    ) -> Result<SchemaBuilder> {
        let mut out = out;
        for f in &schema.fields {
            let name = self.name(prefix, &f.name);
            let optional = optional || f.schema.optional;
            let default = f
                .schema
                .default
                .clone()
                .or_else(|| parent_default.map(|d| d.get_at(f.index).clone()))
                .filter(|d| !d.is_null());
            if f.schema.ty == Type::Struct {
                let default = default.as_ref().and_then(Value::as_struct);
                out = self.flatten_schema(&f.schema, &name, optional, default, out)?;
            } else {
                let mut builder = f.schema.to_builder().no_default();
                if optional {
                    builder = builder.optional();
                }
                if let Some(d) = default {
                    builder = builder.default_value(d);
                }
                out = out.field(name, builder.build()?);
            }
        }
        Ok(out)
    }

    fn flatten_struct(&self, value: &Struct, prefix: &str, out: &mut Vec<(String, Value)>) {
        for f in &value.schema().fields {
            let name = self.name(prefix, &f.name);
            match value.get_at(f.index) {
                Value::Struct(inner) if f.schema.ty == Type::Struct => {
                    self.flatten_struct(inner, &name, out)
                }
                // A null nested struct leaves its fields unset.
                _ if f.schema.ty == Type::Struct => {}
                v => out.push((name, v.clone())),
            }
        }
    }
}

impl PartTransform for Flatten {
    fn schemaless(&self, _: &ConnectRecord, value: &Value) -> Result<Value> {
        let mut out = Vec::new();
        self.flatten_map(value, "", &mut out)?;
        Ok(Value::string_map(out))
    }

    fn with_schema(
        &self,
        _: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)> {
        let value = require_struct(value, PURPOSE)?;
        let default = schema.default.as_ref().and_then(Value::as_struct);
        let new_schema = self
            .flatten_schema(schema, "", schema.optional, default, struct_basics(schema))?
            .build()
            .map_err(|e| ConnectError::Data(format!("{PURPOSE}: {e}")))?;
        let mut values = Vec::new();
        self.flatten_struct(value, "", &mut values);
        let out = struct_of(
            &new_schema,
            values.iter().map(|(n, v)| (n.as_str(), v.clone())),
            PURPOSE,
        )?;
        Ok((new_schema, out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, schema, struct_value, transform};
    use super::*;

    #[test]
    fn schema_d_structs_flatten_and_optionality_propagates() {
        let t = transform("Flatten$Value", &[("delimiter", "_")]).unwrap();
        let point = schema(&[
            ("x", Schema::primitive(Type::Int32)),
            ("y", Schema::primitive(Type::Int32)),
        ]);
        let optional_point = SchemaBuilder::struct_()
            .field("z", Schema::primitive(Type::Int32))
            .optional()
            .build()
            .unwrap();
        let s = schema(&[
            ("id", Schema::primitive(Type::String)),
            ("at", point.clone()),
            ("maybe", optional_point),
        ]);
        let v = struct_value(
            &s,
            &[
                ("id", "a".into()),
                (
                    "at",
                    struct_value(&point, &[("x", Value::Int32(1)), ("y", Value::Int32(2))]),
                ),
            ],
        );
        let out = run(t.as_ref(), ConnectRecord::new("t", Some(s), v)).unwrap();
        let os = out.value_schema.unwrap();
        let names: Vec<&str> = os.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "at_x", "at_y", "maybe_z"]);
        assert!(!os.field("at_x").unwrap().schema.optional);
        assert!(os.field("maybe_z").unwrap().schema.optional);
        let v = out.value.as_struct().unwrap();
        assert_eq!(v.get("at_y"), Some(&Value::Int32(2)));
        assert_eq!(v.get("maybe_z"), Some(&Value::Null));
    }

    #[test]
    fn schemaless_keys_flatten_nested_maps() {
        let t = transform("Flatten$Key", &[]).unwrap();
        let key = Value::string_map([
            (
                "a",
                Value::string_map([
                    ("b", Value::Int32(1)),
                    ("c", Value::string_map([("d", Value::Null)])),
                ]),
            ),
            ("e", Value::Array(vec![Value::Int8(1)])),
        ]);
        let out = run(
            t.as_ref(),
            ConnectRecord::new("t", None, Value::Null).with_key(None, key),
        )
        .unwrap();
        assert_eq!(
            out.key,
            Value::string_map([
                ("a.b", Value::Int32(1)),
                ("a.c.d", Value::Null),
                ("e", Value::Array(vec![Value::Int8(1)])),
            ])
        );
    }

    #[test]
    fn wrong_shapes_and_clashes_are_errors() {
        let t = transform("Flatten$Value", &[]).unwrap();
        let err = run(t.as_ref(), ConnectRecord::new("t", None, Value::Int32(1))).unwrap_err();
        assert!(err.to_string().contains("Flatten needs a map"), "{err}");
        // `a.b` flattened clashes with a field already named `a.b`.
        let inner = schema(&[("b", Schema::primitive(Type::Int32))]);
        let s = schema(&[
            ("a", inner.clone()),
            ("a.b", Schema::primitive(Type::Int32)),
        ]);
        let v = struct_value(
            &s,
            &[
                ("a", struct_value(&inner, &[("b", Value::Int32(1))])),
                ("a.b", Value::Int32(2)),
            ],
        );
        let err = run(t.as_ref(), ConnectRecord::new("t", Some(s), v)).unwrap_err();
        assert!(err.to_string().contains("a.b"), "{err}");
    }
}
