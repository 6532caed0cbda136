//! `SetSchemaMetadata`: a new name and/or version for the key or value schema.

use super::{
    data_error, part_name, set_part, take_part, with_default, Part, TransformConfig, Transformation,
};
use crate::data::{SchemaRef, Struct, Value};
use crate::error::Result;
use crate::record::ConnectRecord;

/// Kafka's `SetSchemaMetadata$Key` / `$Value`: sets the schema's name (`schema.name`) and/or
/// version (`schema.version`), keeping the rest. A schemaless part is an error; a struct value
/// is re-created with the new schema (only the top level: nested structs keep theirs).
pub struct SetSchemaMetadata {
    part: Part,
    name: Option<String>,
    version: Option<i32>,
}

impl SetSchemaMetadata {
    /// From `schema.name` and `schema.version` (an integer); either may be unset.
    pub fn new(part: Part, config: &TransformConfig) -> Result<SetSchemaMetadata> {
        let name = config.get("schema.name").map(str::to_string);
        let version = match config.get("schema.version").map(str::trim) {
            None => None,
            Some(v) => Some(
                v.parse()
                    .map_err(|_| config.error("schema.version", v, "expected an integer"))?,
            ),
        };
        Ok(SetSchemaMetadata {
            part,
            name,
            version,
        })
    }
}

/// A struct of `schema` with `old`'s values, field by field (the schemas have the same fields).
fn rebuild_struct(old: &Struct, schema: &SchemaRef) -> Result<Struct> {
    let mut new = Struct::new(schema.clone());
    for field in &schema.fields {
        if let Some(value) = old.get(&field.name) {
            new.put(&field.name, value.clone())?;
        }
    }
    Ok(new)
}

impl Transformation for SetSchemaMetadata {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = take_part(&mut record, self.part);
        let Some(schema) = schema else {
            return Err(data_error(
                "SetSchemaMetadata",
                &record.topic,
                format!("the {} has no schema to update", part_name(self.part)),
            ));
        };
        let renamed = schema
            .to_builder()
            .no_default()
            .maybe_name(self.name.clone().or_else(|| schema.name.clone()))
            .maybe_version(self.version.or(schema.version))
            .build()?;
        let updated = with_default(renamed, schema.default.as_ref(), rebuild_struct)?;
        let value = match value {
            Value::Struct(old) => Value::Struct(rebuild_struct(&old, &updated)?),
            other => other,
        };
        set_part(&mut record, self.part, Some(updated), value);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_config;
    use super::*;
    use crate::data::{Schema, SchemaBuilder, Type};

    fn point() -> SchemaRef {
        SchemaBuilder::struct_()
            .name("point")
            .version(1)
            .doc("a point")
            .field("x", Schema::primitive(Type::Int32))
            .build()
            .unwrap()
    }

    #[test]
    fn value_schemas_are_renamed_and_structs_rebuilt() {
        let t = SetSchemaMetadata::new(
            Part::Value,
            &test_config(&[("schema.name", "geo.Point"), ("schema.version", "3")]),
        )
        .unwrap();
        let mut p = Struct::new(point());
        p.put("x", Value::Int32(4)).unwrap();
        let out = t
            .apply(ConnectRecord::new("t", Some(point()), Value::Struct(p)))
            .unwrap()
            .unwrap();
        let schema = out.value_schema.unwrap();
        assert_eq!(schema.name.as_deref(), Some("geo.Point"));
        assert_eq!(schema.version, Some(3));
        assert_eq!(schema.doc.as_deref(), Some("a point"));
        let Value::Struct(s) = &out.value else {
            panic!("{:?}", out.value)
        };
        assert_eq!(s.schema(), &schema);
        assert_eq!(s.get("x"), Some(&Value::Int32(4)));
        schema.validate(&out.value, "value").unwrap();
    }

    #[test]
    fn keys_keep_what_is_not_set_and_nulls_pass() {
        let t =
            SetSchemaMetadata::new(Part::Key, &test_config(&[("schema.version", "2")])).unwrap();
        let record = ConnectRecord::new("t", None, "v".into()).with_key(
            Some(
                SchemaBuilder::string()
                    .optional()
                    .name("id")
                    .build()
                    .unwrap(),
            ),
            Value::Null,
        );
        let out = t.apply(record).unwrap().unwrap();
        let schema = out.key_schema.unwrap();
        assert_eq!(
            (schema.name.as_deref(), schema.version, schema.optional),
            (Some("id"), Some(2), true)
        );
        assert_eq!(out.key, Value::Null);
        assert_eq!(out.value, Value::String("v".into()));
    }

    #[test]
    fn struct_defaults_follow_the_new_schema() {
        let mut default = Struct::new(point());
        default.put("x", Value::Int32(0)).unwrap();
        let with_default = point()
            .to_builder()
            .default_value(Value::Struct(default))
            .build()
            .unwrap();
        let t =
            SetSchemaMetadata::new(Part::Value, &test_config(&[("schema.name", "p2")])).unwrap();
        let out = t
            .apply(ConnectRecord::new("t", Some(with_default), Value::Null))
            .unwrap()
            .unwrap();
        let schema = out.value_schema.unwrap();
        let Some(Value::Struct(d)) = &schema.default else {
            panic!("{schema:?}")
        };
        assert_eq!(d.schema().name.as_deref(), Some("p2"));
        assert_eq!(d.get("x"), Some(&Value::Int32(0)));
    }

    #[test]
    fn schemaless_parts_and_bad_versions_are_errors() {
        let t = SetSchemaMetadata::new(Part::Value, &test_config(&[("schema.name", "n")])).unwrap();
        let err = t
            .apply(ConnectRecord::new("orders", None, "v".into()))
            .unwrap_err();
        assert!(
            err.to_string().contains("orders") && err.to_string().contains("value has no schema"),
            "{err}"
        );
        let err = SetSchemaMetadata::new(Part::Value, &test_config(&[("schema.version", "v2")]))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("transforms.t.schema.version"),
            "{err}"
        );
    }
}
