//! `ExtractField`: the part becomes one of its fields.

use super::{require_map, require_struct, PartTransform};
use crate::data::{SchemaRef, Type, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::TransformConfig;

const PURPOSE: &str = "ExtractField";

/// Kafka's `ExtractField$Key` / `ExtractField$Value`: the part becomes field `field` (with
/// its schema). With `field.syntax.version=V2`, `field` is a dotted path into nested fields
/// (`` `a.b`.c `` quotes a name with dots in backticks); V1, the default, takes it whole.
///
/// A missing field is null without a schema and an error with one, as in Kafka.
pub struct ExtractField {
    path: Vec<String>,
}

impl ExtractField {
    /// From `field` (required) and `field.syntax.version` (`V1` or `V2`).
    pub fn new(config: &TransformConfig) -> Result<ExtractField> {
        let field = config.required("field")?;
        let path = match config.get("field.syntax.version").map(str::trim) {
            None => vec![field.to_string()],
            Some(v) if v.eq_ignore_ascii_case("v1") => vec![field.to_string()],
            Some(v) if v.eq_ignore_ascii_case("v2") => {
                parse_path(field).map_err(|reason| config.error("field", field, &reason))?
            }
            Some(v) => return Err(config.error("field.syntax.version", v, "expected V1 or V2")),
        };
        Ok(ExtractField { path })
    }

    fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// The names of a V2 field path: split on dots, except inside backticks at the start of a
/// name (where `` \` `` is a backtick).
fn parse_path(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut name = String::new();
        if chars.peek() == Some(&'`') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("a backtick-quoted name is not closed".into()),
                    Some('\\') if chars.peek() == Some(&'`') => {
                        chars.next();
                        name.push('`');
                    }
                    Some('`') => break,
                    Some(c) => name.push(c),
                }
            }
            match chars.next() {
                None => {
                    names.push(name);
                    return Ok(names);
                }
                Some('.') => {}
                Some(_) => return Err("a quoted name must be followed by a dot or the end".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        names.push(name);
                        return Ok(names);
                    }
                    Some('.') => break,
                    Some(c) => name.push(c),
                }
            }
        }
        names.push(name);
    }
}

impl PartTransform for ExtractField {
    fn schemaless(&self, _: &ConnectRecord, value: &Value) -> Result<Value> {
        let mut current = value;
        for (i, name) in self.path.iter().enumerate() {
            // The top must be a map; deeper, anything else means the field is missing.
            let entries = match require_map(current, PURPOSE) {
                Ok(entries) => entries,
                Err(e) if i == 0 => return Err(e),
                Err(_) => return Ok(Value::Null),
            };
            match entries.into_iter().find(|(k, _)| k == name) {
                Some((_, v)) => current = v,
                None => return Ok(Value::Null),
            }
        }
        Ok(current.clone())
    }

    fn with_schema(
        &self,
        _: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)> {
        require_struct(value, PURPOSE)?;
        let unknown = || ConnectError::Data(format!("{PURPOSE}: unknown field {}", self.dotted()));
        // The schema is found even where a parent struct is null.
        let mut field_schema = schema.clone();
        for name in &self.path {
            field_schema = match field_schema.ty {
                Type::Struct => field_schema.field(name).map(|f| f.schema.clone()),
                _ => None,
            }
            .ok_or_else(unknown)?;
        }
        let mut current = value.clone();
        for name in &self.path {
            current = match &current {
                Value::Struct(s) => s.get(name).cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            };
        }
        Ok((field_schema, current))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, schema, struct_value, transform};
    use super::*;
    use crate::data::Schema;

    #[test]
    fn schema_d_keys_become_the_field_and_its_schema() {
        let t = transform("ExtractField$Key", &[("field", "id")]).unwrap();
        let s = schema(&[
            ("id", Schema::primitive(Type::Int64)),
            ("x", Schema::primitive(Type::Int8)),
        ]);
        let k = struct_value(&s, &[("id", Value::Int64(9)), ("x", Value::Int8(1))]);
        let r = ConnectRecord::new("t", None, "v".into()).with_key(Some(s.clone()), k.clone());
        let out = run(t.as_ref(), r).unwrap();
        assert_eq!(out.key, Value::Int64(9));
        assert_eq!(out.key_schema, Some(Schema::primitive(Type::Int64)));
        assert_eq!(out.value, Value::String("v".into()));
        let t = transform("ExtractField$Key", &[("field", "nope")]).unwrap();
        let r = ConnectRecord::new("t", None, Value::Null).with_key(Some(s), k);
        let err = run(t.as_ref(), r).unwrap_err();
        assert!(err.to_string().contains("unknown field nope"), "{err}");
    }

    #[test]
    fn v2_paths_reach_nested_fields() {
        let inner = schema(&[("b.c", Schema::primitive(Type::String))]);
        let s = schema(&[("a", inner.clone())]);
        let v = struct_value(
            &s,
            &[("a", struct_value(&inner, &[("b.c", "deep".into())]))],
        );
        let t = transform(
            "ExtractField$Value",
            &[("field", "a.`b.c`"), ("field.syntax.version", "v2")],
        )
        .unwrap();
        let out = run(t.as_ref(), ConnectRecord::new("t", Some(s), v)).unwrap();
        assert_eq!(out.value, Value::String("deep".into()));
        // Schemaless: nested maps; a missing step is null.
        let m = Value::string_map([("a", Value::string_map([("b.c", Value::Int32(1))]))]);
        let out = run(t.as_ref(), ConnectRecord::new("t", None, m.clone())).unwrap();
        assert_eq!(out.value, Value::Int32(1));
        // V1 takes the name whole.
        let t = transform("ExtractField$Value", &[("field", "a.`b.c`")]).unwrap();
        assert_eq!(
            run(t.as_ref(), ConnectRecord::new("t", None, m))
                .unwrap()
                .value,
            Value::Null
        );
        assert_eq!(parse_path("a.b").unwrap(), ["a", "b"]);
        assert_eq!(parse_path("`x\\`y`.z").unwrap(), ["x`y", "z"]);
    }

    #[test]
    fn bad_configs_and_shapes_are_errors() {
        let err = transform("ExtractField$Value", &[]).err().unwrap();
        assert!(err.to_string().contains("transforms.t.field"), "{err}");
        let err = transform(
            "ExtractField$Value",
            &[("field", "a"), ("field.syntax.version", "V3")],
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("transforms.t.field.syntax.version"),
            "{err}"
        );
        let err = transform(
            "ExtractField$Value",
            &[("field", "`a"), ("field.syntax.version", "V2")],
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("not closed"), "{err}");
        let t = transform("ExtractField$Value", &[("field", "a")]).unwrap();
        let err = run(t.as_ref(), ConnectRecord::new("t", None, Value::Int32(1))).unwrap_err();
        assert!(err.to_string().contains("needs a map"), "{err}");
    }
}
