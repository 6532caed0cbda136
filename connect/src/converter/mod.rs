//! Converters between Connect's data and the bytes of Kafka records' keys, values and headers
//! (Kafka Connect's `Converter`), chosen by the class names Connect users write in
//! `key.converter` / `value.converter`.

mod json;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

pub use json::{DecimalFormat, JsonConverter};

use crate::data::{Schema, SchemaRef, Type, Value};
use crate::error::{ConnectError, Result};

/// `true` or `false` in any case, as Kafka's config parser reads booleans.
pub(crate) fn parse_bool_config(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Setting `key`'s boolean `value`, or an error naming it.
pub(crate) fn bool_config(key: &str, value: &str) -> Result<bool> {
    parse_bool_config(value)
        .ok_or_else(|| ConnectError::config(key, value, "expected true or false"))
}

/// A value with its schema (none: schemaless).
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaAndValue {
    /// The schema.
    pub schema: Option<SchemaRef>,
    /// The value.
    pub value: Value,
}

impl SchemaAndValue {
    /// No schema, no value.
    pub fn null() -> SchemaAndValue {
        SchemaAndValue {
            schema: None,
            value: Value::Null,
        }
    }
}

/// Turns Connect data into bytes and back. The methods keep Kafka's names
/// (`fromConnectData`, `toConnectData`), which Connect users know.
#[allow(clippy::wrong_self_convention)]
pub trait Converter: Send + Sync {
    /// The bytes of `value` (with `schema`) for a record of `topic`; `None` for a null record
    /// part (a tombstone's value).
    fn from_connect_data(
        &self,
        topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Bytes>>;

    /// [`from_connect_data`](Self::from_connect_data) of a value the caller gives up, which
    /// a converter may turn into bytes without copying (the string converter does).
    fn from_connect_data_owned(
        &self,
        topic: &str,
        schema: Option<&SchemaRef>,
        value: Value,
    ) -> Result<Option<Bytes>> {
        self.from_connect_data(topic, schema, &value)
    }

    /// The data in `bytes` (`None`: the record part is null) of a record of `topic`.
    fn to_connect_data(&self, topic: &str, bytes: Option<&[u8]>) -> Result<SchemaAndValue>;
}

/// Kafka Connect's `StringConverter`: values as their text in UTF-8; reads give optional
/// strings.
#[derive(Debug, Clone, Default)]
pub struct StringConverter;

impl Converter for StringConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        _schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        Ok(match value {
            Value::Null => None,
            Value::String(s) => Some(Bytes::from(s.clone())),
            other => Some(Bytes::from(display(other))),
        })
    }

    fn from_connect_data_owned(
        &self,
        topic: &str,
        schema: Option<&SchemaRef>,
        value: Value,
    ) -> Result<Option<Bytes>> {
        match value {
            Value::String(s) => Ok(Some(Bytes::from(s))),
            other => self.from_connect_data(topic, schema, &other),
        }
    }

    fn to_connect_data(&self, _topic: &str, bytes: Option<&[u8]>) -> Result<SchemaAndValue> {
        let value = match bytes {
            None => Value::Null,
            Some(bytes) => Value::String(
                String::from_utf8(bytes.to_vec())
                    .map_err(|e| ConnectError::Data(format!("not UTF-8 text: {e}")))?,
            ),
        };
        Ok(SchemaAndValue {
            schema: Some(Schema::optional_primitive(Type::String)),
            value,
        })
    }
}

/// A value as Java's `toString` would show it, for the string converter and string casts.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Int64(v) => v.to_string(),
        Value::Float32(v) => java_float(f64::from(*v), &v.to_string(), &format!("{v:e}")),
        Value::Float64(v) => java_float(*v, &v.to_string(), &format!("{v:e}")),
        Value::Boolean(v) => v.to_string(),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => format!("{:?}", b.as_ref()),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(display).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}={}", display(k), display(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Struct(s) => format!(
            "Struct{{{}}}",
            s.schema()
                .fields
                .iter()
                .filter(|f| !s.raw_values()[f.index].is_null())
                .map(|f| format!("{}={}", f.name, display(&s.raw_values()[f.index])))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// Java's `Double.toString` of a finite float (`NaN` and `Infinity` as Java spells them).
pub(crate) fn java_float(value: f64, plain: &str, scientific: &str) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e7).contains(&magnitude) {
        return if plain.contains('.') {
            plain.to_string()
        } else {
            format!("{plain}.0")
        };
    }
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    let point = if mantissa.contains('.') { "" } else { ".0" };
    format!("{mantissa}{point}E{exponent}")
}

/// Kafka Connect's `ByteArrayConverter`: bytes as they are.
#[derive(Debug, Clone, Default)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if let Some(schema) = schema {
            if schema.ty != Type::Bytes {
                return Err(ConnectError::Data(format!(
                    "Invalid schema type for ByteArrayConverter: {}",
                    schema.ty.name().to_ascii_uppercase()
                )));
            }
        }
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            other => Err(ConnectError::Data(format!(
                "ByteArrayConverter is not compatible with objects of type {}",
                other.type_name()
            ))),
        }
    }

    fn to_connect_data(&self, _topic: &str, bytes: Option<&[u8]>) -> Result<SchemaAndValue> {
        Ok(SchemaAndValue {
            schema: Some(Schema::optional_primitive(Type::Bytes)),
            value: bytes.map_or(Value::Null, |b| Value::Bytes(Bytes::copy_from_slice(b))),
        })
    }
}

/// The converter a `key.converter` / `value.converter` class names, configured with the
/// properties given for it (those after its prefix: `value.converter.schemas.enable` is
/// `schemas.enable` here). Kafka's full class names and their short forms are accepted.
pub fn converter_for(class: &str, props: &BTreeMap<String, String>) -> Result<Arc<dyn Converter>> {
    let short = class.rsplit('.').next().unwrap_or(class);
    let props = props.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    Ok(match short {
        "JsonConverter" => Arc::new(JsonConverter::configure(props)?),
        "StringConverter" => {
            for (key, value) in props {
                if key == "converter.encoding"
                    && !matches!(value.to_ascii_uppercase().as_str(), "UTF8" | "UTF-8")
                {
                    return Err(ConnectError::config(key, value, "only UTF-8 is supported"));
                }
            }
            Arc::new(StringConverter)
        }
        "ByteArrayConverter" => Arc::new(ByteArrayConverter),
        _ => {
            return Err(ConnectError::config(
                "converter",
                class,
                "not a known converter (JsonConverter, StringConverter, ByteArrayConverter)",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converters_are_found_by_kafkas_class_names() {
        let none = BTreeMap::new();
        for class in [
            "org.apache.kafka.connect.json.JsonConverter",
            "JsonConverter",
            "org.apache.kafka.connect.storage.StringConverter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
        ] {
            assert!(converter_for(class, &none).is_ok(), "{class}");
        }
        let err = match converter_for("io.confluent.connect.avro.AvroConverter", &none) {
            Err(err) => err,
            Ok(_) => panic!("AvroConverter is not here yet"),
        };
        assert!(err.to_string().contains("not a known converter"), "{err}");
        let latin1: BTreeMap<String, String> =
            [("converter.encoding".to_string(), "ISO-8859-1".to_string())].into();
        assert!(converter_for("StringConverter", &latin1).is_err());
    }

    #[test]
    fn strings_and_bytes_pass_through() {
        let s = StringConverter;
        assert_eq!(
            s.from_connect_data("t", None, &Value::Int32(5)).unwrap(),
            Some(Bytes::from_static(b"5"))
        );
        let read = s.to_connect_data("t", Some(b"hello")).unwrap();
        assert_eq!(read.value, Value::String("hello".into()));
        assert!(read.schema.unwrap().optional);
        assert!(s.to_connect_data("t", Some(&[0xff, 0xfe])).is_err());
        let b = ByteArrayConverter;
        let bytes = Value::Bytes(Bytes::from_static(&[1, 2]));
        assert_eq!(
            b.from_connect_data("t", None, &bytes).unwrap(),
            Some(Bytes::from_static(&[1, 2]))
        );
        let string_schema = Schema::primitive(Type::String);
        let err = b
            .from_connect_data("t", Some(&string_schema), &bytes)
            .unwrap_err();
        assert!(err.to_string().contains("Invalid schema type"), "{err}");
        assert_eq!(b.to_connect_data("t", None).unwrap().value, Value::Null);
    }

    #[test]
    fn displayed_floats_follow_java() {
        assert_eq!(display(&Value::Float64(1e21)), "1.0E21");
        assert_eq!(display(&Value::Float64(3.0)), "3.0");
        assert_eq!(display(&Value::Float32(0.25)), "0.25");
    }
}
