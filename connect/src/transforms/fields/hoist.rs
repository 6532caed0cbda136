//! `HoistField`: wraps the part in a struct or map of one field.

use super::{struct_of, to_map, PartTransform};
use crate::data::{SchemaBuilder, SchemaRef, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::TransformConfig;

/// Kafka's `HoistField$Key` / `HoistField$Value`: the part becomes field `field` of a new
/// struct (whose one field has the part's schema) or, schemaless, of a map.
///
/// A null part passes through (Kafka would wrap it).
pub struct HoistField {
    field: String,
}

impl HoistField {
    /// From `field` (required).
    pub fn new(config: &TransformConfig) -> Result<HoistField> {
        Ok(HoistField {
            field: config.required("field")?.to_string(),
        })
    }
}

impl PartTransform for HoistField {
    fn schemaless(&self, _: &ConnectRecord, value: &Value) -> Result<Value> {
        Ok(to_map([(self.field.as_str(), value.clone())]))
    }

    fn with_schema(
        &self,
        _: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)> {
        let new_schema = SchemaBuilder::struct_()
            .field(self.field.clone(), schema.clone())
            .build()
            .map_err(|e| ConnectError::Data(format!("HoistField: {e}")))?;
        let out = struct_of(
            &new_schema,
            [(self.field.as_str(), value.clone())],
            "HoistField",
        )?;
        Ok((new_schema, out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, transform};
    use super::*;
    use crate::data::{Schema, Type};

    #[test]
    fn schema_d_values_are_wrapped_in_a_struct() {
        let t = transform("HoistField$Value", &[("field", "line")]).unwrap();
        let s = Schema::primitive(Type::String);
        let out = run(
            t.as_ref(),
            ConnectRecord::new("t", Some(s.clone()), "hi".into()),
        )
        .unwrap();
        let os = out.value_schema.unwrap();
        assert_eq!(os.ty, Type::Struct);
        assert_eq!(os.field("line").unwrap().schema, s);
        assert_eq!(
            out.value.as_struct().unwrap().get("line"),
            Some(&Value::String("hi".into()))
        );
        // A value that does not fit its schema is refused.
        let err = run(
            t.as_ref(),
            ConnectRecord::new("t", Some(s), Value::Int32(1)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("field line"), "{err}");
    }

    #[test]
    fn schemaless_keys_are_wrapped_in_a_map() {
        let t = transform("HoistField$Key", &[("field", "id")]).unwrap();
        let r = ConnectRecord::new("t", None, Value::Null).with_key(None, Value::Int64(5));
        let out = run(t.as_ref(), r).unwrap();
        assert_eq!(out.key, Value::string_map([("id", Value::Int64(5))]));
        assert_eq!(out.key_schema, None);
        let err = transform("HoistField$Key", &[("field", " ")])
            .err()
            .unwrap();
        assert!(err.to_string().contains("transforms.t.field"), "{err}");
    }
}
