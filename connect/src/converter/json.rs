//! Kafka Connect's `JsonConverter`: with `schemas.enable=true` each message is an envelope
//! `{"schema":…,"payload":…}`, without it the bare value. The output is byte for byte what
//! Kafka's converter (Jackson) writes — key order, number formats, escapes, base64 bytes — so
//! that either side reads the other's topics and tools that compare bytes agree.

use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;

use super::{Converter, SchemaAndValue};
use crate::data::{logical, Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::error::{ConnectError, Result};

/// How decimals are written (`decimal.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalFormat {
    /// The unscaled value's bytes in base64 (Kafka's default).
    Base64,
    /// A JSON number.
    Numeric,
}

/// Kafka Connect's JSON converter.
#[derive(Debug, Clone)]
pub struct JsonConverter {
    schemas_enable: bool,
    decimal_format: DecimalFormat,
    replace_null_with_default: bool,
    /// The last schema read and written (Kafka's `schemas.cache.size`, of one): a stream's
    /// records nearly always share theirs, whose JSON is most of each envelope.
    cache: std::sync::Arc<parking_lot::Mutex<SchemaCache>>,
}

/// The last schema read (its JSON text) and written (its `Arc`, and the JSON written).
#[derive(Debug, Default)]
struct SchemaCache {
    read: Option<(Box<str>, Option<SchemaRef>)>,
    written: Option<(SchemaRef, String)>,
}

/// An envelope with its parts left as text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    schema: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

impl JsonConverter {
    /// A converter with or without the schema envelope, and Kafka's other defaults.
    pub fn new(schemas_enable: bool) -> JsonConverter {
        JsonConverter {
            schemas_enable,
            decimal_format: DecimalFormat::Base64,
            replace_null_with_default: true,
            cache: Default::default(),
        }
    }

    /// Configured from Kafka's keys: `schemas.enable` (true), `decimal.format` (BASE64 or
    /// NUMERIC), `replace.null.with.default` (true), `schemas.cache.size` (accepted; the
    /// converter keeps the last schema read and written, a cache of one).
    pub fn configure<'a>(props: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut converter = JsonConverter::new(true);
        for (key, value) in props {
            match key {
                "schemas.enable" => converter.schemas_enable = super::bool_config(key, value)?,
                "replace.null.with.default" => {
                    converter.replace_null_with_default = super::bool_config(key, value)?
                }
                "decimal.format" => {
                    converter.decimal_format = match value.to_ascii_uppercase().as_str() {
                        "BASE64" => DecimalFormat::Base64,
                        "NUMERIC" => DecimalFormat::Numeric,
                        _ => {
                            return Err(ConnectError::config(
                                key,
                                value,
                                "expected BASE64 or NUMERIC",
                            ))
                        }
                    }
                }
                "schemas.cache.size" => {
                    value
                        .parse::<u32>()
                        .map_err(|_| ConnectError::config(key, value, "expected a whole number"))?;
                }
                _ => {}
            }
        }
        Ok(converter)
    }
}

impl JsonConverter {
    /// `schema` in Connect's JSON form (the envelope's `schema` part): connectors that store
    /// data away from Kafka (the S3 sink's files) keep the Connect schema with it this way.
    pub fn schema_json(&self, schema: &Schema) -> Result<String> {
        let mut out = String::new();
        write_schema(self, schema, &mut out)?;
        Ok(out)
    }

    /// A schema read back from [`schema_json`](Self::schema_json)'s form (none for `null`).
    pub fn parse_schema(json: &serde_json::Value) -> Result<Option<SchemaRef>> {
        to_schema(json)
    }
}

impl Converter for JsonConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        let mut out = String::new();
        if self.schemas_enable {
            out.push_str("{\"schema\":");
            match schema {
                Some(schema) => {
                    let mut cache = self.cache.lock();
                    match &cache.written {
                        Some((last, text)) if Arc::ptr_eq(last, schema) || **last == **schema => {
                            out.push_str(text)
                        }
                        _ => {
                            let mut text = String::new();
                            write_schema(self, schema, &mut text)?;
                            out.push_str(&text);
                            cache.written = Some((schema.clone(), text));
                        }
                    }
                }
                None => out.push_str("null"),
            }
            out.push_str(",\"payload\":");
        }
        write_value(self, schema.map(|s| &**s), value, &mut out)?;
        if self.schemas_enable {
            out.push('}');
        }
        Ok(Some(Bytes::from(out)))
    }

    fn to_connect_data(&self, _topic: &str, bytes: Option<&[u8]>) -> Result<SchemaAndValue> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        if self.schemas_enable {
            // The fastest path: the envelope as Kafka's converter writes it, `{"schema":`, the
            // last schema's text, `,"payload":`, a value and `}`: the schema is compared,
            // not scanned. A payload that does not parse takes the paths below.
            let fast = {
                let cache = self.cache.lock();
                cache.read.as_ref().and_then(|(text, schema)| {
                    bytes
                        .strip_prefix(br#"{"schema":"#.as_slice())
                        .and_then(|rest| rest.strip_prefix(text.as_bytes()))
                        .and_then(|rest| rest.strip_prefix(br#","payload":"#.as_slice()))
                        .and_then(|rest| rest.strip_suffix(b"}"))
                        .map(|payload| (payload, schema.clone()))
                })
            };
            if let Some((payload, schema)) = fast {
                if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(payload) {
                    let value = to_value(schema.as_ref(), &payload)?;
                    return Ok(SchemaAndValue { schema, value });
                }
            }
            // The fast path: the schema's text as the last record's, only the payload parsed.
            // Anything else (not an envelope, a new schema) takes the full path below, which
            // also gives Kafka's messages for what is wrong.
            if let Ok(envelope) = serde_json::from_slice::<RawEnvelope<'_>>(bytes) {
                let cached = {
                    let cache = self.cache.lock();
                    match &cache.read {
                        Some((text, schema)) if **text == *envelope.schema.get() => {
                            Some(schema.clone())
                        }
                        _ => None,
                    }
                };
                let schema = match cached {
                    Some(schema) => schema,
                    None => {
                        let json: serde_json::Value = serde_json::from_str(envelope.schema.get())
                            .map_err(|e| ConnectError::Data(format!("Converting byte[] to Kafka Connect data failed due to serialization error: {e}")))?;
                        let schema = to_schema(&json)?;
                        self.cache.lock().read =
                            Some((envelope.schema.get().into(), schema.clone()));
                        schema
                    }
                };
                let payload: serde_json::Value = serde_json::from_str(envelope.payload.get())
                    .map_err(|e| ConnectError::Data(format!("Converting byte[] to Kafka Connect data failed due to serialization error: {e}")))?;
                let value = to_value(schema.as_ref(), &payload)?;
                return Ok(SchemaAndValue { schema, value });
            }
        }
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            ConnectError::Data(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
            ))
        })?;
        if !self.schemas_enable {
            return Ok(SchemaAndValue {
                schema: None,
                value: to_value(None, &json)?,
            });
        }
        let envelope = json
            .as_object()
            .filter(|o| o.len() == 2 && o.contains_key("schema") && o.contains_key("payload"));
        let Some(envelope) = envelope else {
            return Err(ConnectError::Data(
                "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.".into(),
            ));
        };
        let schema = to_schema(&envelope["schema"])?;
        let value = to_value(schema.as_ref(), &envelope["payload"])?;
        Ok(SchemaAndValue { schema, value })
    }
}

fn write_schema(config: &JsonConverter, schema: &Schema, out: &mut String) -> Result<()> {
    write_schema_body(config, schema, out)?;
    out.push('}');
    Ok(())
}

/// Writes a schema's object without its closing brace, so that a struct field can append its
/// name after the schema's own keys, as Kafka's converter does.
fn write_schema_body(config: &JsonConverter, schema: &Schema, out: &mut String) -> Result<()> {
    out.push_str("{\"type\":");
    write_string(json_type_name(schema.ty), out);
    match schema.ty {
        Type::Array => {
            out.push_str(",\"items\":");
            write_part_schema(config, schema.value_schema.as_deref(), out)?;
        }
        Type::Map => {
            out.push_str(",\"keys\":");
            write_part_schema(config, schema.key_schema.as_deref(), out)?;
            out.push_str(",\"values\":");
            write_part_schema(config, schema.value_schema.as_deref(), out)?;
        }
        Type::Struct => {
            out.push_str(",\"fields\":[");
            for (i, field) in schema.fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_schema_body(config, &field.schema, out)?;
                out.push_str(",\"field\":");
                write_string(&field.name, out);
                out.push('}');
            }
            out.push(']');
        }
        _ => {}
    }
    let _ = write!(out, ",\"optional\":{}", schema.optional);
    if let Some(name) = &schema.name {
        out.push_str(",\"name\":");
        write_string(name, out);
    }
    if let Some(version) = schema.version {
        let _ = write!(out, ",\"version\":{version}");
    }
    if let Some(doc) = &schema.doc {
        out.push_str(",\"doc\":");
        write_string(doc, out);
    }
    if !schema.parameters.is_empty() {
        out.push_str(",\"parameters\":{");
        for (i, (key, value)) in schema.parameters.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(key, out);
            out.push(':');
            write_string(value, out);
        }
        out.push('}');
    }
    if let Some(default) = &schema.default {
        out.push_str(",\"default\":");
        write_value(config, Some(schema), default, out)?;
    }
    Ok(())
}

/// The type names of Kafka's JSON schemas: Connect's, but `float` and `double` for the floats.
fn json_type_name(ty: Type) -> &'static str {
    match ty {
        Type::Float32 => "float",
        Type::Float64 => "double",
        other => other.name(),
    }
}

fn write_part_schema(
    config: &JsonConverter,
    part: Option<&Schema>,
    out: &mut String,
) -> Result<()> {
    match part {
        Some(part) => write_schema(config, part, out),
        None => Err(ConnectError::Schema(
            "an array or map schema without the schema of its parts".into(),
        )),
    }
}

fn write_value(
    config: &JsonConverter,
    schema: Option<&Schema>,
    value: &Value,
    out: &mut String,
) -> Result<()> {
    if value.is_null() {
        match schema {
            None => out.push_str("null"),
            Some(schema) => match (&schema.default, config.replace_null_with_default) {
                (Some(default), true) => return write_value(config, Some(schema), default, out),
                _ if schema.optional || schema.default.is_some() => out.push_str("null"),
                _ => {
                    return Err(ConnectError::Data(
                        "Conversion error: null value for field that is required and has no default value".into(),
                    ))
                }
            },
        }
        return Ok(());
    }
    if let Some(schema) = schema {
        if schema.ty != value.schema_type().unwrap_or(schema.ty) {
            return Err(ConnectError::Data(format!(
                "Invalid type for {}: {}",
                schema.ty.name().to_ascii_uppercase(),
                value.type_name()
            )));
        }
        if schema.name.as_deref() == Some(logical::DECIMAL) {
            if let (Value::Bytes(bytes), DecimalFormat::Numeric) = (value, config.decimal_format) {
                let unscaled = logical::decimal_unscaled(bytes)?;
                out.push_str(&logical::decimal_to_string(
                    unscaled,
                    logical::decimal_scale(schema)?,
                ));
                return Ok(());
            }
        }
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Int8(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int16(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int32(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Int64(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float32(v) => write_float(f64::from(*v), &v.to_string(), &format!("{v:e}"), out),
        Value::Float64(v) => write_float(*v, &v.to_string(), &format!("{v:e}"), out),
        Value::Boolean(v) => {
            let _ = write!(out, "{v}");
        }
        Value::String(s) => write_string(s, out),
        Value::Bytes(b) => {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.value_schema.as_deref());
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(config, item_schema, item, out)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let (key_schema, value_schema) = match schema {
                Some(s) => (s.key_schema.as_deref(), s.value_schema.as_deref()),
                None => (None, None),
            };
            // String keys make an object; any other keys an array of [key, value] pairs.
            let object = match key_schema {
                Some(keys) => keys.ty == Type::String,
                None => entries.iter().all(|(k, _)| matches!(k, Value::String(_))),
            };
            out.push(if object { '{' } else { '[' });
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if object {
                    match key {
                        Value::String(k) => write_string(k, out),
                        _ => write_string("null", out),
                    }
                    out.push(':');
                    write_value(config, value_schema, value, out)?;
                } else {
                    out.push('[');
                    write_value(config, key_schema, key, out)?;
                    out.push(',');
                    write_value(config, value_schema, value, out)?;
                    out.push(']');
                }
            }
            out.push(if object { '}' } else { ']' });
        }
        Value::Struct(s) => {
            if let Some(schema) = schema {
                if s.schema().as_ref() != schema {
                    return Err(ConnectError::Data("Mismatching schema.".into()));
                }
            }
            out.push('{');
            for (i, field) in s.schema().fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(&field.name, out);
                out.push(':');
                write_value(
                    config,
                    Some(&field.schema),
                    &s.raw_values()[field.index],
                    out,
                )?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A float as Jackson writes it: Java's `Double.toString` / `Float.toString`, with the
/// non-finite values quoted.
fn write_float(value: f64, plain: &str, scientific: &str, out: &mut String) {
    let text = super::java_float(value, plain, scientific);
    if value.is_finite() {
        out.push_str(&text);
    } else {
        out.push('"');
        out.push_str(&text);
        out.push('"');
    }
}

/// A JSON string as Jackson escapes it: `"` and `\`, the short escapes for backspace, tab,
/// newline, form feed and carriage return, `\u00XX` (upper-case hex) for other control
/// characters; everything else as is.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A schema read from its JSON form (null: no schema).
fn to_schema(json: &serde_json::Value) -> Result<Option<SchemaRef>> {
    if json.is_null() {
        return Ok(None);
    }
    let bad = |reason: &str| ConnectError::Data(reason.to_string());
    let ty = json
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| bad("Schema must contain 'type' field"))?;
    let part = |key: &str, what: &str| -> Result<SchemaRef> {
        match json.get(key) {
            Some(part) if !part.is_null() => {
                to_schema(part)?.ok_or_else(|| bad(&format!("{what} schema is null")))
            }
            _ => Err(bad(&format!("{what} schema did not specify the {key}"))),
        }
    };
    let mut builder = match ty {
        "array" => SchemaBuilder::array(part("items", "Array")?),
        "map" => SchemaBuilder::map(part("keys", "Map")?, part("values", "Map")?),
        "struct" => {
            let fields = json
                .get("fields")
                .and_then(|f| f.as_array())
                .ok_or_else(|| bad("Struct schema's \"fields\" argument is not an array."))?;
            let mut builder = SchemaBuilder::struct_();
            for field in fields {
                let name = field
                    .get("field")
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| bad("Struct schema's field name not specified properly"))?;
                let schema =
                    to_schema(field)?.ok_or_else(|| bad("Struct schema's field schema is null"))?;
                builder = builder.field(name, schema);
            }
            builder
        }
        "boolean" => SchemaBuilder::boolean(),
        "int8" => SchemaBuilder::int8(),
        "int16" => SchemaBuilder::int16(),
        "int32" => SchemaBuilder::int32(),
        "int64" => SchemaBuilder::int64(),
        "float" => SchemaBuilder::float32(),
        "double" => SchemaBuilder::float64(),
        "bytes" => SchemaBuilder::bytes(),
        "string" => SchemaBuilder::string(),
        other => return Err(bad(&format!("Unknown schema type: {other}"))),
    };
    if json.get("optional").and_then(|o| o.as_bool()) == Some(true) {
        builder = builder.optional();
    }
    if let Some(name) = json.get("name").and_then(|n| n.as_str()) {
        builder = builder.name(name);
    }
    if let Some(version) = json.get("version").and_then(|v| v.as_i64()) {
        let version = i32::try_from(version).map_err(|_| bad("Schema version is out of range"))?;
        builder = builder.version(version);
    }
    if let Some(doc) = json.get("doc").and_then(|d| d.as_str()) {
        builder = builder.doc(doc);
    }
    if let Some(params) = json.get("parameters").and_then(|p| p.as_object()) {
        for (key, value) in params {
            let value = value
                .as_str()
                .ok_or_else(|| bad("Schema parameters must have string values."))?;
            builder = builder.parameter(key.as_str(), value);
        }
    }
    if let Some(default) = json.get("default") {
        let without_default = builder.clone().build()?;
        builder = builder.default_value(to_value(Some(&without_default), default)?);
    }
    builder.build().map(Some)
}

/// A value read from JSON with its schema, or, without one, as Connect infers it (integers as
/// `int64`, other numbers as `float64`, objects as maps of strings).
fn to_value(schema: Option<&SchemaRef>, json: &serde_json::Value) -> Result<Value> {
    use serde_json::Value as J;
    let Some(schema) = schema else {
        return Ok(match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Boolean(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int64(i),
                None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| to_value(None, item))
                    .collect::<Result<_>>()?,
            ),
            J::Object(fields) => Value::Map(
                fields
                    .iter()
                    .map(|(k, v)| Ok((Value::String(k.clone()), to_value(None, v)?)))
                    .collect::<Result<_>>()?,
            ),
        });
    };
    if json.is_null() {
        if let Some(default) = &schema.default {
            return Ok(default.clone());
        }
        if schema.optional {
            return Ok(Value::Null);
        }
        return Err(ConnectError::Data(format!(
            "Invalid null value for required {} field",
            schema.ty.name().to_ascii_uppercase()
        )));
    }
    let mismatch = || {
        ConnectError::Data(format!(
            "a JSON {} where the schema wants {}",
            json_kind(json),
            schema.ty
        ))
    };
    let int = |min: i64, max: i64| -> Result<i64> {
        json.as_i64()
            .filter(|i| (min..=max).contains(i))
            .ok_or_else(|| ConnectError::Data(format!("{json} is not a {} value", schema.ty)))
    };
    Ok(match schema.ty {
        Type::Boolean => Value::Boolean(json.as_bool().ok_or_else(mismatch)?),
        Type::Int8 => Value::Int8(int(i8::MIN.into(), i8::MAX.into())? as i8),
        Type::Int16 => Value::Int16(int(i16::MIN.into(), i16::MAX.into())? as i16),
        Type::Int32 => Value::Int32(int(i32::MIN.into(), i32::MAX.into())? as i32),
        Type::Int64 => Value::Int64(int(i64::MIN, i64::MAX)?),
        Type::Float32 => Value::Float32(float(json).ok_or_else(mismatch)? as f32),
        Type::Float64 => Value::Float64(float(json).ok_or_else(mismatch)?),
        Type::String => Value::String(json.as_str().ok_or_else(mismatch)?.to_string()),
        Type::Bytes => match json {
            // A NUMERIC decimal.
            J::Number(n) if schema.name.as_deref() == Some(logical::DECIMAL) => {
                let unscaled =
                    logical::decimal_parse(&n.to_string(), logical::decimal_scale(schema)?)?;
                Value::Bytes(logical::decimal_bytes(unscaled))
            }
            J::String(s) => Value::Bytes(Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| ConnectError::Data(format!("bytes that are not base64: {e}")))?,
            )),
            _ => return Err(mismatch()),
        },
        Type::Array => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let item_schema = schema.value_schema.as_ref();
            Value::Array(
                items
                    .iter()
                    .map(|item| to_value(item_schema, item))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Map => {
            let (keys, values) = (schema.key_schema.as_ref(), schema.value_schema.as_ref());
            let mut entries = Vec::new();
            if keys.is_some_and(|k| k.ty == Type::String) {
                for (k, v) in json.as_object().ok_or_else(mismatch)? {
                    entries.push((Value::String(k.clone()), to_value(values, v)?));
                }
            } else {
                for pair in json.as_array().ok_or_else(mismatch)? {
                    match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => entries.push((to_value(keys, k)?, to_value(values, v)?)),
                        _ => {
                            return Err(ConnectError::Data(
                                "Found invalid map entry instead of array tuple".into(),
                            ))
                        }
                    }
                }
            }
            Value::Map(entries)
        }
        Type::Struct => {
            let object = json.as_object().ok_or_else(mismatch)?;
            let mut values = Vec::with_capacity(schema.fields.len());
            for field in &schema.fields {
                values.push(to_value(
                    Some(&field.schema),
                    object.get(&field.name).unwrap_or(&J::Null),
                )?);
            }
            Value::Struct(Struct::from_values(schema.clone(), values)?)
        }
    })
}

fn float(json: &serde_json::Value) -> Option<f64> {
    match json {
        serde_json::Value::Number(n) => n.as_f64(),
        // Jackson's quoted non-finite numbers.
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_sharing_a_schema_read_alike_and_a_new_schema_is_read_anew() {
        let converter = JsonConverter::new(true);
        let int = r#"{"schema":{"type":"int32","optional":false},"payload":7}"#;
        let text = r#"{"schema":{"type":"string","optional":true},"payload":"x"}"#;
        for _ in 0..2 {
            let a = converter
                .to_connect_data("t", Some(int.as_bytes()))
                .unwrap();
            assert_eq!(a.value, Value::Int32(7));
            assert_eq!(a.schema.as_ref().map(|s| s.ty), Some(Type::Int32));
            let b = converter
                .to_connect_data("t", Some(text.as_bytes()))
                .unwrap();
            assert_eq!(b.value, Value::String("x".into()));
            assert!(b.schema.as_ref().is_some_and(|s| s.optional));
        }
        // Spaced out, the same envelope takes the slower paths to the same value; a payload
        // with text after it is refused however it is read.
        let spaced = r#"{ "schema": {"type":"string","optional":true} , "payload": "x" }"#;
        let c = converter
            .to_connect_data("t", Some(spaced.as_bytes()))
            .unwrap();
        assert_eq!(c.value, Value::String("x".into()));
        let trailing = r#"{"schema":{"type":"string","optional":true},"payload":"x" "y"}"#;
        assert!(converter
            .to_connect_data("t", Some(trailing.as_bytes()))
            .is_err());
        // A payload that does not fit the cached schema is still refused.
        let bad = r#"{"schema":{"type":"int32","optional":false},"payload":"seven"}"#;
        assert!(converter
            .to_connect_data("t", Some(bad.as_bytes()))
            .is_err());
        // So is an envelope with another field, with Kafka's message.
        let extra = r#"{"schema":{"type":"int32","optional":false},"payload":7,"x":1}"#;
        let err = converter
            .to_connect_data("t", Some(extra.as_bytes()))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("requires \"schema\" and \"payload\""),
            "{err}"
        );
        // Written schemas come from the cache too, byte for byte the same.
        let schema = SchemaBuilder::int32().build().unwrap();
        let once = converter
            .from_connect_data("t", Some(&schema), &Value::Int32(1))
            .unwrap();
        let twice = converter
            .from_connect_data("t", Some(&schema), &Value::Int32(1))
            .unwrap();
        assert_eq!(once, twice);
    }
    use crate::data::logical;
    use proptest::prelude::{any, Strategy};

    fn text(bytes: Option<Bytes>) -> String {
        String::from_utf8(bytes.unwrap().to_vec()).unwrap()
    }

    fn order_schema() -> SchemaRef {
        SchemaBuilder::struct_()
            .name("com.example.Order")
            .version(2)
            .field("id", Schema::primitive(Type::Int64))
            .field("item", Schema::optional_primitive(Type::String))
            .field(
                "tags",
                SchemaBuilder::array(Schema::primitive(Type::String))
                    .optional()
                    .build()
                    .unwrap(),
            )
            .field("price", logical::decimal(2).build().unwrap())
            .field("placed", logical::timestamp().build().unwrap())
            .field(
                "qty",
                SchemaBuilder::int32()
                    .default_value(Value::Int32(1))
                    .build()
                    .unwrap(),
            )
            .field(
                "attrs",
                SchemaBuilder::map(
                    Schema::primitive(Type::String),
                    Schema::primitive(Type::Float64),
                )
                .optional()
                .build()
                .unwrap(),
            )
            .build()
            .unwrap()
    }

    fn order() -> Value {
        let mut order = Struct::new(order_schema());
        order.put("id", Value::Int64(42)).unwrap();
        order.put("item", "tea \"green\"\n".into()).unwrap();
        order
            .put("tags", Value::Array(vec!["a".into(), "b".into()]))
            .unwrap();
        order
            .put("price", Value::Bytes(logical::decimal_bytes(1234)))
            .unwrap();
        order
            .put("placed", Value::Int64(1_700_000_000_000))
            .unwrap();
        order
            .put(
                "attrs",
                Value::string_map([("w", Value::Float64(0.5)), ("h", Value::Float64(1e20))]),
            )
            .unwrap();
        Value::Struct(order)
    }

    /// What Kafka's JsonConverter (3.x) writes for the same schema and struct.
    const KAFKA_ENVELOPE: &str = concat!(
        r#"{"schema":{"type":"struct","fields":["#,
        r#"{"type":"int64","optional":false,"field":"id"},"#,
        r#"{"type":"string","optional":true,"field":"item"},"#,
        r#"{"type":"array","items":{"type":"string","optional":false},"optional":true,"field":"tags"},"#,
        r#"{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"field":"price"},"#,
        r#"{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"placed"},"#,
        r#"{"type":"int32","optional":false,"default":1,"field":"qty"},"#,
        r#"{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"double","optional":false},"optional":true,"field":"attrs"}],"#,
        r#""optional":false,"name":"com.example.Order","version":2},"#,
        r#""payload":{"id":42,"item":"tea \"green\"\n","tags":["a","b"],"price":"BNI=","placed":1700000000000,"qty":1,"attrs":{"w":0.5,"h":1.0E20}}}"#
    );

    #[test]
    fn the_envelope_is_byte_for_byte_kafkas() {
        let converter = JsonConverter::new(true);
        let schema = order_schema();
        let json = text(
            converter
                .from_connect_data("orders", Some(&schema), &order())
                .unwrap(),
        );
        assert_eq!(json, KAFKA_ENVELOPE);
    }

    #[test]
    fn kafkas_envelope_reads_back_to_the_same_schema_and_value() {
        let converter = JsonConverter::new(true);
        let read = converter
            .to_connect_data("orders", Some(KAFKA_ENVELOPE.as_bytes()))
            .unwrap();
        let schema = read.schema.unwrap();
        assert_eq!(*schema, *order_schema());
        // The unset field with a default reads back as the default, now set.
        let mut expected = order().as_struct().unwrap().clone();
        expected.put("qty", Value::Int32(1)).unwrap();
        assert_eq!(read.value, Value::Struct(expected));
    }

    #[test]
    fn the_schema_type_names_kafka_writes_are_float_and_double() {
        let converter = JsonConverter::new(true);
        let f = Schema::primitive(Type::Float32);
        let out = text(
            converter
                .from_connect_data("t", Some(&f), &Value::Float32(0.1))
                .unwrap(),
        );
        assert_eq!(
            out,
            r#"{"schema":{"type":"float","optional":false},"payload":0.1}"#
        );
        let back = converter
            .to_connect_data("t", Some(out.as_bytes()))
            .unwrap();
        assert_eq!(back.schema.unwrap().ty, Type::Float32);
        assert_eq!(back.value, Value::Float32(0.1));
    }

    #[test]
    fn without_schemas_values_are_bare_and_inferred() {
        let converter = JsonConverter::configure([("schemas.enable", "false")]).unwrap();
        let value = Value::string_map([
            ("n", Value::Int64(3)),
            ("x", Value::Float64(2.5)),
            ("ok", Value::Boolean(true)),
            ("list", Value::Array(vec![Value::Null, "s".into()])),
        ]);
        let out = text(converter.from_connect_data("t", None, &value).unwrap());
        assert_eq!(out, r#"{"n":3,"x":2.5,"ok":true,"list":[null,"s"]}"#);
        let back = converter
            .to_connect_data("t", Some(out.as_bytes()))
            .unwrap();
        assert!(back.schema.is_none());
        // Objects read back as maps (their keys sorted).
        assert_eq!(back.value.map_get("n"), Some(&Value::Int64(3)));
        assert_eq!(back.value.map_get("x"), Some(&Value::Float64(2.5)));
        assert_eq!(
            back.value.map_get("list"),
            Some(&Value::Array(vec![Value::Null, "s".into()]))
        );
        // With a schema but no envelope, the schema shapes the bare value.
        let schema = order_schema();
        let out = text(
            converter
                .from_connect_data("t", Some(&schema), &order())
                .unwrap(),
        );
        assert!(out.starts_with(r#"{"id":42,"#), "{out}");
        assert_eq!(
            converter
                .from_connect_data("t", None, &Value::Null)
                .unwrap(),
            None
        );
        assert_eq!(
            converter.to_connect_data("t", None).unwrap().value,
            Value::Null
        );
    }

    #[test]
    fn numbers_strings_and_bytes_are_written_as_jackson_writes_them() {
        let converter = JsonConverter::configure([("schemas.enable", "false")]).unwrap();
        let write = |v: Value| text(converter.from_connect_data("t", None, &v).unwrap());
        assert_eq!(write(Value::Float64(1.0)), "1.0");
        assert_eq!(write(Value::Float64(1234567.0)), "1234567.0");
        assert_eq!(write(Value::Float64(12345678.0)), "1.2345678E7");
        assert_eq!(write(Value::Float64(0.001)), "0.001");
        assert_eq!(write(Value::Float64(0.0001)), "1.0E-4");
        assert_eq!(write(Value::Float64(-2.5e-10)), "-2.5E-10");
        assert_eq!(write(Value::Float64(f64::NAN)), "\"NaN\"");
        assert_eq!(write(Value::Float32(1.1)), "1.1");
        assert_eq!(write(Value::Float32(3e10)), "3.0E10");
        assert_eq!(write("\u{1}\u{1f}\t/é".into()), "\"\\u0001\\u001F\\t/é\"");
        assert_eq!(write(Value::Bytes(Bytes::from_static(b"hi!"))), "\"aGkh\"");
        // Non-string keys: an array of pairs.
        assert_eq!(
            write(Value::Map(vec![(Value::Int32(1), "one".into())])),
            r#"[[1,"one"]]"#
        );
    }

    #[test]
    fn decimals_may_be_numeric() {
        let converter = JsonConverter::configure([("decimal.format", "NUMERIC")]).unwrap();
        let schema = logical::decimal(2).build().unwrap();
        let value = Value::Bytes(logical::decimal_bytes(-1234));
        let out = text(
            converter
                .from_connect_data("t", Some(&schema), &value)
                .unwrap(),
        );
        assert!(out.ends_with(r#""payload":-12.34}"#), "{out}");
        let back = converter
            .to_connect_data("t", Some(out.as_bytes()))
            .unwrap();
        assert_eq!(back.value, value);
    }

    fn schemaless_value() -> impl Strategy<Value = Value> {
        use proptest::prelude::{prop_oneof, Just};
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int64),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float64),
            any::<bool>().prop_map(Value::Boolean),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(Value::string_map),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever the converter writes without schemas reads back to the same value (the
        /// types JSON can tell apart: int64, float64, boolean, string, arrays, string maps).
        #[test]
        fn schemaless_json_round_trips(value in schemaless_value()) {
            let converter = JsonConverter::new(false);
            let bytes = converter.from_connect_data("t", None, &value).unwrap();
            let back = converter.to_connect_data("t", bytes.as_deref()).unwrap();
            proptest::prop_assert_eq!(back.value, value);
        }

        /// A schema'd int32/float32/string struct survives the envelope both ways.
        #[test]
        fn enveloped_structs_round_trip(n in any::<i32>(), f in any::<f32>().prop_filter("finite", |f| f.is_finite()), s in any::<String>()) {
            let schema = SchemaBuilder::struct_()
                .field("n", Schema::primitive(Type::Int32))
                .field("f", Schema::primitive(Type::Float32))
                .field("s", Schema::optional_primitive(Type::String))
                .build()
                .unwrap();
            let mut value = Struct::new(schema.clone());
            value.put("n", Value::Int32(n)).unwrap();
            value.put("f", Value::Float32(f)).unwrap();
            value.put("s", Value::String(s)).unwrap();
            let value = Value::Struct(value);
            let converter = JsonConverter::new(true);
            let bytes = converter.from_connect_data("t", Some(&schema), &value).unwrap();
            let back = converter.to_connect_data("t", bytes.as_deref()).unwrap();
            proptest::prop_assert_eq!(back.schema.as_deref(), Some(&*schema));
            proptest::prop_assert_eq!(back.value, value);
        }
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let converter = JsonConverter::new(true);
        let err = converter
            .to_connect_data("t", Some(br#"{"a":1}"#))
            .unwrap_err();
        assert!(err.to_string().contains("schemas.enable=false"), "{err}");
        let err = converter.to_connect_data("t", Some(b"{nope")).unwrap_err();
        assert!(err.to_string().contains("serialization error"), "{err}");
        let err = converter
            .to_connect_data(
                "t",
                Some(br#"{"schema":{"type":"int8","optional":false},"payload":300}"#),
            )
            .unwrap_err();
        assert!(err.to_string().contains("300 is not a int8"), "{err}");
        let err = converter
            .to_connect_data(
                "t",
                Some(br#"{"schema":{"type":"int32","optional":false},"payload":null}"#),
            )
            .unwrap_err();
        assert!(err.to_string().contains("required INT32"), "{err}");
        let err = converter
            .to_connect_data("t", Some(br#"{"schema":{"type":"uuid"},"payload":1}"#))
            .unwrap_err();
        assert!(
            err.to_string().contains("Unknown schema type: uuid"),
            "{err}"
        );
        let required = Schema::primitive(Type::String);
        let err = converter
            .from_connect_data("t", Some(&required), &Value::Null)
            .unwrap_err();
        assert!(err.to_string().contains("required"), "{err}");
        let err = converter
            .from_connect_data("t", Some(&required), &Value::Int32(1))
            .unwrap_err();
        assert!(err.to_string().contains("Invalid type for STRING"), "{err}");
        assert!(JsonConverter::configure([("schemas.enable", "yes")]).is_err());
    }
}
