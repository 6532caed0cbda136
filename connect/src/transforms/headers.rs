//! Header transforms: `InsertHeader` (a literal header on every record) and `DropHeaders`.

use super::{Part, TransformConfig, Transformation};
use crate::data::{Schema, SchemaRef, Type, Value};
use crate::error::Result;
use crate::record::ConnectRecord;

pub(super) fn build(
    name: &str,
    _part: Option<Part>,
    config: &TransformConfig,
) -> Option<Result<Box<dyn Transformation>>> {
    Some(match name {
        "InsertHeader" => InsertHeader::new(config).map(|t| Box::new(t) as _),
        "DropHeaders" => DropHeaders::new(config).map(|t| Box::new(t) as _),
        _ => return None,
    })
}

/// Kafka's `InsertHeader`: adds header `header` with `value.literal`, typed as Connect's
/// `Values.parseString` would type it (booleans, the smallest integer type that holds the
/// number, other numbers as `float64`, anything else a string).
pub struct InsertHeader {
    header: String,
    schema: SchemaRef,
    value: Value,
}

impl InsertHeader {
    /// From `header` and `value.literal`.
    pub fn new(config: &TransformConfig) -> Result<InsertHeader> {
        let header = config.required("header")?.to_string();
        let literal = config
            .get("value.literal")
            .ok_or_else(|| config.error("value.literal", "", "is required"))?;
        let (schema, value) = parse_literal(literal);
        Ok(InsertHeader {
            header,
            schema,
            value,
        })
    }
}

/// A literal's schema and value, inferred as Connect's `Values.parseString` does for scalars.
pub(crate) fn parse_literal(literal: &str) -> (SchemaRef, Value) {
    let trimmed = literal.trim();
    if trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false") {
        return (
            Schema::primitive(Type::Boolean),
            Value::Boolean(trimmed.eq_ignore_ascii_case("true")),
        );
    }
    if let Ok(n) = trimmed.parse::<i64>() {
        return if let Ok(v) = i8::try_from(n) {
            (Schema::primitive(Type::Int8), Value::Int8(v))
        } else if let Ok(v) = i16::try_from(n) {
            (Schema::primitive(Type::Int16), Value::Int16(v))
        } else if let Ok(v) = i32::try_from(n) {
            (Schema::primitive(Type::Int32), Value::Int32(v))
        } else {
            (Schema::primitive(Type::Int64), Value::Int64(n))
        };
    }
    if trimmed.contains(['.', 'e', 'E']) {
        if let Ok(f) = trimmed.parse::<f64>() {
            if f.is_finite() {
                return (Schema::primitive(Type::Float64), Value::Float64(f));
            }
        }
    }
    (
        Schema::primitive(Type::String),
        Value::String(literal.to_string()),
    )
}

impl Transformation for InsertHeader {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        record.headers.add(
            self.header.clone(),
            Some(self.schema.clone()),
            self.value.clone(),
        );
        Ok(Some(record))
    }
}

/// Kafka's `DropHeaders`: removes every header named in `headers`.
pub struct DropHeaders {
    headers: Vec<String>,
}

impl DropHeaders {
    /// From `headers` (a list, required).
    pub fn new(config: &TransformConfig) -> Result<DropHeaders> {
        let headers = config.list("headers");
        if headers.is_empty() {
            return Err(config.error("headers", "", "needs at least one header name"));
        }
        Ok(DropHeaders { headers })
    }
}

impl Transformation for DropHeaders {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        for header in &self.headers {
            record.headers.remove_all(header);
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::transforms::test_config as config;

    #[test]
    fn insert_header_types_its_literal() {
        for (literal, ty, value) in [
            ("on", Type::String, Value::String("on".into())),
            ("true", Type::Boolean, Value::Boolean(true)),
            ("42", Type::Int8, Value::Int8(42)),
            ("4200", Type::Int16, Value::Int16(4200)),
            ("4200000000", Type::Int64, Value::Int64(4_200_000_000)),
            ("2.5", Type::Float64, Value::Float64(2.5)),
        ] {
            let t =
                InsertHeader::new(&config(&[("header", "h"), ("value.literal", literal)])).unwrap();
            // Schema'd and schemaless records alike get the header.
            let record = ConnectRecord::new("t", Some(Schema::primitive(Type::String)), "v".into());
            let out = t.apply(record).unwrap().unwrap();
            let header = out.headers.last_with_name("h").unwrap();
            assert_eq!(header.schema.as_ref().unwrap().ty, ty, "{literal}");
            assert_eq!(header.value, value, "{literal}");
            let schemaless = t
                .apply(ConnectRecord::new("t", None, Value::Null))
                .unwrap()
                .unwrap();
            assert_eq!(schemaless.headers.len(), 1);
        }
        let err = InsertHeader::new(&config(&[("header", "h")]))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("transforms.t.value.literal"),
            "{err}"
        );
    }

    #[test]
    fn drop_headers_removes_every_header_of_the_names() {
        let t = DropHeaders::new(&config(&[("headers", "a, b")])).unwrap();
        let mut record = ConnectRecord::new("t", None, Value::Null);
        for key in ["a", "c", "a", "b"] {
            record.headers.add(key, None, Value::Null);
        }
        let out = t.apply(record).unwrap().unwrap();
        let left: Vec<&str> = out.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(left, ["c"]);
        assert!(DropHeaders::new(&config(&[])).is_err());
    }
}
