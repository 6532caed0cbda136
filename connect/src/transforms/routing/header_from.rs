//! `HeaderFrom`: struct fields or map entries copied or moved into headers.

use super::{
    data_error, map_get, part_name, set_part, struct_basics, take_part, Part, TransformConfig,
    Transformation,
};
use crate::data::{Struct, Value};
use crate::error::Result;
use crate::record::ConnectRecord;

/// Kafka's `HeaderFrom$Key` / `$Value`: for each of `fields`, adds the header of the same
/// position in `headers` with the field's value (and, with a schema, the field's schema);
/// `operation=move` also removes the fields, `copy` keeps them. The part must be a struct
/// (with a schema) or a map (schemaless); a null part is an error, as in Kafka.
pub struct HeaderFrom {
    part: Part,
    fields: Vec<String>,
    headers: Vec<String>,
    move_fields: bool,
}

impl HeaderFrom {
    /// From `fields`, `headers` (lists of the same length) and `operation` (`copy` or `move`).
    pub fn new(part: Part, config: &TransformConfig) -> Result<HeaderFrom> {
        let fields = config.list("fields");
        if fields.is_empty() {
            return Err(config.error("fields", "", "needs at least one field name"));
        }
        let headers = config.list("headers");
        if headers.len() != fields.len() {
            return Err(config.error(
                "headers",
                config.get("headers").unwrap_or(""),
                &format!(
                    "must name as many headers as `fields` names fields ({})",
                    fields.len()
                ),
            ));
        }
        let move_fields = match config.required("operation")? {
            "move" => true,
            "copy" => false,
            other => return Err(config.error("operation", other, "expected move or copy")),
        };
        Ok(HeaderFrom {
            part,
            fields,
            headers,
            move_fields,
        })
    }
}

impl Transformation for HeaderFrom {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let part = part_name(self.part);
        let (schema, value) = take_part(&mut record, self.part);
        let error = |message: String| data_error("HeaderFrom", &record.topic, message);
        let (schema, value) = match (schema, value) {
            (Some(schema), Value::Struct(old)) => {
                for (field, header) in self.fields.iter().zip(&self.headers) {
                    let found = schema.field(field).ok_or_else(|| {
                        error(format!("field {field} is not in the {part} schema"))
                    })?;
                    let value = old.get_at(found.index).clone();
                    record
                        .headers
                        .add(header.clone(), Some(found.schema.clone()), value);
                }
                if !self.move_fields {
                    (Some(schema), Value::Struct(old))
                } else {
                    let mut builder = struct_basics(&schema);
                    for field in schema
                        .fields
                        .iter()
                        .filter(|f| !self.fields.contains(&f.name))
                    {
                        builder = builder.field(field.name.clone(), field.schema.clone());
                    }
                    let moved = builder.build()?;
                    let mut new = Struct::new(moved.clone());
                    for field in &moved.fields {
                        if let Some(value) = old.get(&field.name) {
                            new.put(&field.name, value.clone())?;
                        }
                    }
                    (Some(moved), Value::Struct(new))
                }
            }
            (None, Value::Map(mut entries)) => {
                for (field, header) in self.fields.iter().zip(&self.headers) {
                    let value = map_get(&entries, field).cloned().unwrap_or(Value::Null);
                    record.headers.add(header.clone(), None, value);
                }
                if self.move_fields {
                    entries
                        .retain(|(k, _)| !matches!(k, Value::String(s) if self.fields.contains(s)));
                }
                (None, Value::Map(entries))
            }
            (schema, other) => {
                let wanted = if schema.is_some() {
                    "a struct"
                } else {
                    "a map (schemaless)"
                };
                return Err(error(format!(
                    "the {part} must be {wanted} to take headers from, not {}",
                    other.type_name()
                )));
            }
        };
        set_part(&mut record, self.part, schema, value);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_config;
    use super::*;
    use crate::data::{Schema, SchemaBuilder, SchemaRef, Type};

    fn header_from(part: Part, operation: &str) -> HeaderFrom {
        HeaderFrom::new(
            part,
            &test_config(&[
                ("fields", "id,region"),
                ("headers", "h-id, h-region"),
                ("operation", operation),
            ]),
        )
        .unwrap()
    }

    fn order() -> (SchemaRef, Value) {
        let schema = SchemaBuilder::struct_()
            .name("order")
            .field("id", Schema::primitive(Type::Int32))
            .field("region", Schema::optional_primitive(Type::String))
            .field("total", Schema::primitive(Type::Float64))
            .build()
            .unwrap();
        let mut s = Struct::new(schema.clone());
        s.put("id", Value::Int32(7)).unwrap();
        s.put("total", Value::Float64(9.5)).unwrap();
        (schema, Value::Struct(s))
    }

    #[test]
    fn schemad_values_copy_and_move_fields_into_headers() {
        let (schema, value) = order();
        let record = ConnectRecord::new("t", Some(schema.clone()), value.clone());
        let copied = header_from(Part::Value, "copy")
            .apply(record.clone())
            .unwrap()
            .unwrap();
        assert_eq!(copied.value, value);
        let id = copied.headers.last_with_name("h-id").unwrap();
        assert_eq!(
            (&id.value, id.schema.as_ref().map(|s| s.ty)),
            (&Value::Int32(7), Some(Type::Int32))
        );
        let region = copied.headers.last_with_name("h-region").unwrap();
        assert_eq!(
            (&region.value, region.schema.as_ref().map(|s| s.optional)),
            (&Value::Null, Some(true))
        );

        let moved = header_from(Part::Value, "move")
            .apply(record)
            .unwrap()
            .unwrap();
        let moved_schema = moved.value_schema.clone().unwrap();
        let names: Vec<&str> = moved_schema
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["total"]);
        assert_eq!(moved_schema.name.as_deref(), Some("order"));
        moved_schema.validate(&moved.value, "value").unwrap();
        assert_eq!(moved.headers.len(), 2);
    }

    #[test]
    fn schemaless_keys_copy_and_move_map_entries() {
        let key = Value::string_map([("id", Value::Int32(7)), ("other", Value::Boolean(true))]);
        let record = ConnectRecord::new("t", None, "v".into()).with_key(None, key.clone());
        let copied = header_from(Part::Key, "copy")
            .apply(record.clone())
            .unwrap()
            .unwrap();
        assert_eq!(copied.key, key);
        let moved = header_from(Part::Key, "move")
            .apply(record)
            .unwrap()
            .unwrap();
        assert_eq!(
            moved.key,
            Value::string_map([("other", Value::Boolean(true))])
        );
        let id = moved.headers.last_with_name("h-id").unwrap();
        assert_eq!((&id.value, &id.schema), (&Value::Int32(7), &None));
        // A missing entry gives a null header, as Kafka's `Map.get` does.
        assert_eq!(
            moved.headers.last_with_name("h-region").unwrap().value,
            Value::Null
        );
        assert_eq!(moved.value, Value::String("v".into()));
    }

    #[test]
    fn bad_configs_and_shapes_are_errors() {
        for (pairs, key) in [
            (
                vec![("fields", "a,b"), ("headers", "x"), ("operation", "copy")],
                "headers",
            ),
            (
                vec![("fields", "a"), ("headers", "x"), ("operation", "cut")],
                "operation",
            ),
            (vec![("headers", "x"), ("operation", "copy")], "fields"),
        ] {
            let err = HeaderFrom::new(Part::Value, &test_config(&pairs))
                .err()
                .unwrap();
            assert!(
                err.to_string().contains(&format!("transforms.t.{key}")),
                "{err}"
            );
        }
        let t = header_from(Part::Value, "copy");
        let err = t
            .apply(ConnectRecord::new("orders", None, "text".into()))
            .unwrap_err();
        assert!(
            err.to_string().contains("orders") && err.to_string().contains("a map"),
            "{err}"
        );
        let err = t
            .apply(ConnectRecord::new(
                "orders",
                Some(Schema::optional_primitive(Type::String)),
                Value::Null,
            ))
            .unwrap_err();
        assert!(err.to_string().contains("must be a struct"), "{err}");
        let narrow = SchemaBuilder::struct_()
            .field("id", Schema::primitive(Type::Int32))
            .build()
            .unwrap();
        let mut s = Struct::new(narrow.clone());
        s.put("id", Value::Int32(1)).unwrap();
        let err = t
            .apply(ConnectRecord::new("orders", Some(narrow), Value::Struct(s)))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("field region is not in the value schema"),
            "{err}"
        );
    }
}
