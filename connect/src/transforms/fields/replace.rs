//! `ReplaceField`: keeps, drops and renames fields.

use super::{require_map, require_struct, struct_basics, struct_of, to_map, PartTransform};
use crate::data::{SchemaRef, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::TransformConfig;

const PURPOSE: &str = "ReplaceField";

/// Kafka's `ReplaceField$Key` / `ReplaceField$Value`: `exclude` (fields dropped), `include`
/// (when set, only these are kept) and `renames` (`old:new` pairs); `blacklist` and `whitelist`
/// are the deprecated names of `exclude` and `include`.
pub struct ReplaceField {
    exclude: Vec<String>,
    include: Vec<String>,
    renames: Vec<(String, String)>,
}

impl ReplaceField {
    /// From its config.
    pub fn new(config: &TransformConfig) -> Result<ReplaceField> {
        // The new names win over the deprecated ones, as in Kafka.
        let either = |new: &str, old: &str| {
            if config.get(new).is_some() {
                config.list(new)
            } else {
                config.list(old)
            }
        };
        let renames = config
            .list("renames")
            .into_iter()
            .map(|pair| match pair.split(':').collect::<Vec<_>>()[..] {
                [old, new] if !old.trim().is_empty() && !new.trim().is_empty() => {
                    Ok((old.trim().to_string(), new.trim().to_string()))
                }
                _ => Err(config.error(
                    "renames",
                    config.get("renames").unwrap_or(""),
                    &format!("invalid rename mapping {pair:?}: expected old:new"),
                )),
            })
            .collect::<Result<_>>()?;
        Ok(ReplaceField {
            exclude: either("exclude", "blacklist"),
            include: either("include", "whitelist"),
            renames,
        })
    }

    fn keeps(&self, name: &str) -> bool {
        !self.exclude.iter().any(|f| f == name)
            && (self.include.is_empty() || self.include.iter().any(|f| f == name))
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(old, _)| old == name)
            .map_or(name, |(_, new)| new.as_str())
    }
}

impl PartTransform for ReplaceField {
    fn schemaless(&self, _: &ConnectRecord, value: &Value) -> Result<Value> {
        let entries = require_map(value, PURPOSE)?;
        Ok(to_map(
            entries
                .into_iter()
                .filter(|(k, _)| self.keeps(k))
                .map(|(k, v)| (self.renamed(k), v.clone())),
        ))
    }

    fn with_schema(
        &self,
        _: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)> {
        let value = require_struct(value, PURPOSE)?;
        let kept: Vec<_> = schema
            .fields
            .iter()
            .filter(|f| self.keeps(&f.name))
            .collect();
        let new_schema = kept
            .iter()
            .fold(struct_basics(schema), |b, f| {
                b.field(self.renamed(&f.name), f.schema.clone())
            })
            .build()
            .map_err(|e| ConnectError::Data(format!("{PURPOSE}: {e}")))?;
        let values = kept
            .iter()
            .map(|f| (self.renamed(&f.name), value.get_at(f.index).clone()));
        let out = struct_of(&new_schema, values, PURPOSE)?;
        Ok((new_schema, out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, schema, struct_value, transform};
    use super::*;
    use crate::data::{Schema, Type};

    #[test]
    fn schema_d_values_keep_drop_and_rename() {
        let t = transform(
            "ReplaceField$Value",
            &[("exclude", "secret"), ("renames", "id:key, name:who")],
        )
        .unwrap();
        let s = schema(&[
            ("id", Schema::primitive(Type::Int32)),
            ("secret", Schema::primitive(Type::String)),
            ("name", Schema::optional_primitive(Type::String)),
        ]);
        let v = struct_value(
            &s,
            &[
                ("id", Value::Int32(1)),
                ("secret", "x".into()),
                ("name", "ann".into()),
            ],
        );
        let out = run(t.as_ref(), ConnectRecord::new("t", Some(s), v)).unwrap();
        let os = out.value_schema.unwrap();
        let names: Vec<&str> = os.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["key", "who"]);
        assert!(os.field("who").unwrap().schema.optional);
        let v = out.value.as_struct().unwrap();
        assert_eq!(v.get("key"), Some(&Value::Int32(1)));
        assert_eq!(v.get("who"), Some(&Value::String("ann".into())));
    }

    #[test]
    fn schemaless_keys_honour_include_and_the_deprecated_names() {
        let t = transform(
            "ReplaceField$Key",
            &[("whitelist", "a,b"), ("blacklist", "b")],
        )
        .unwrap();
        let key = Value::string_map([
            ("a", Value::Int32(1)),
            ("b", Value::Int32(2)),
            ("c", Value::Int32(3)),
        ]);
        let out = run(
            t.as_ref(),
            ConnectRecord::new("t", None, Value::Null).with_key(None, key),
        )
        .unwrap();
        assert_eq!(out.key, Value::string_map([("a", Value::Int32(1))]));
        // `include` overrides `whitelist`.
        let t = transform("ReplaceField$Key", &[("include", "c"), ("whitelist", "a")]).unwrap();
        let key = Value::string_map([("a", Value::Int32(1)), ("c", Value::Int32(3))]);
        let out = run(
            t.as_ref(),
            ConnectRecord::new("t", None, Value::Null).with_key(None, key),
        )
        .unwrap();
        assert_eq!(out.key, Value::string_map([("c", Value::Int32(3))]));
    }

    #[test]
    fn bad_renames_and_shapes_are_errors() {
        let err = transform("ReplaceField$Value", &[("renames", "a:b,c")])
            .err()
            .unwrap();
        assert!(err.to_string().contains("transforms.t.renames"), "{err}");
        let t = transform("ReplaceField$Value", &[("exclude", "a")]).unwrap();
        let err = run(t.as_ref(), ConnectRecord::new("t", None, "text".into())).unwrap_err();
        assert!(
            err.to_string().contains("ReplaceField needs a map"),
            "{err}"
        );
    }
}
