//! The S3 connectors' file formats (Confluent's `format.class`): JSON lines, Avro container
//! files, Parquet (arrow's writer) and raw bytes. A file of Avro or Parquet carries the
//! Connect schema of its records in its metadata (`connect.schema`, Connect's JSON schema
//! form), so the S3 source gives records back with the schema they were written with.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder,
    Time32MillisecondBuilder, TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, Time32MillisecondType, TimestampMillisecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sluice_connect::converter::{Converter, JsonConverter};
use sluice_connect::data::{logical, Schema, SchemaRef, Struct, Type, Value};
use sluice_connect::{ConnectError, Result};

/// The metadata key of a file's Connect schema.
pub const SCHEMA_METADATA: &str = "connect.schema";

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON value per line (`.json`), written as Kafka's `JsonConverter` without schemas.
    Json,
    /// An Avro object container file (`.avro`).
    Avro,
    /// A Parquet file (`.<codec>.parquet`).
    Parquet,
    /// Each value's bytes followed by a separator (`.bin`).
    ByteArray,
}

impl Format {
    /// The format of a `format.class` (Confluent's class names, or `json`, `avro`, ...).
    pub fn from_class(class: &str) -> Result<Format> {
        let simple = class
            .rsplit('.')
            .next()
            .unwrap_or(class)
            .to_ascii_lowercase();
        Ok(match simple.as_str() {
            "jsonformat" | "json" => Format::Json,
            "avroformat" | "avro" => Format::Avro,
            "parquetformat" | "parquet" => Format::Parquet,
            "bytearrayformat" | "bytearray" => Format::ByteArray,
            _ => {
                return Err(ConnectError::config(
                    "format.class",
                    class,
                    "supported: io.confluent.connect.s3.format.json.JsonFormat, io.confluent.connect.s3.format.avro.AvroFormat, io.confluent.connect.s3.format.parquet.ParquetFormat, io.confluent.connect.s3.format.bytearray.ByteArrayFormat",
                ))
            }
        })
    }

    /// The file name extension, with its dot (`.json`, `.snappy.parquet`, ...).
    pub fn extension(self, codec: ParquetCodec) -> String {
        match self {
            Format::Json => ".json".into(),
            Format::Avro => ".avro".into(),
            Format::ByteArray => ".bin".into(),
            Format::Parquet => match codec {
                ParquetCodec::None => ".parquet".into(),
                ParquetCodec::Snappy => ".snappy.parquet".into(),
                ParquetCodec::Zstd => ".zstd.parquet".into(),
            },
        }
    }
}

/// `parquet.codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetCodec {
    /// Uncompressed.
    None,
    /// Snappy (Confluent's default).
    #[default]
    Snappy,
    /// Zstandard.
    Zstd,
}

impl ParquetCodec {
    /// Parses `parquet.codec`.
    pub fn parse(value: &str) -> Result<ParquetCodec> {
        Ok(match value.trim().to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => ParquetCodec::None,
            "snappy" | "" => ParquetCodec::Snappy,
            "zstd" => ParquetCodec::Zstd,
            other => {
                return Err(ConnectError::config(
                    "parquet.codec",
                    other,
                    "supported: none, snappy, zstd",
                ))
            }
        })
    }
}

/// A file being filled with the values of records.
pub struct FileBuilder {
    format: Format,
    codec: ParquetCodec,
    separator: Vec<u8>,
    /// The schema of the file's values (Avro, Parquet: one per file).
    schema: Option<SchemaRef>,
    /// JSON and bytes: the file itself; Avro and Parquet: built at the end from `values`.
    text: Vec<u8>,
    values: Vec<Value>,
    /// Values so far.
    count: usize,
    /// Bytes so far (Avro and Parquet: an estimate).
    size: usize,
}

impl FileBuilder {
    /// An empty file of `format`.
    pub fn new(format: Format, codec: ParquetCodec, separator: &[u8]) -> FileBuilder {
        FileBuilder {
            format,
            codec,
            separator: separator.to_vec(),
            schema: None,
            text: Vec::new(),
            values: Vec::new(),
            count: 0,
            size: 0,
        }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Its size so far, in bytes (an estimate before Avro and Parquet files are encoded).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether a value of `schema` may join this file: Avro and Parquet files hold values of
    /// one schema (a new schema starts a new file, Confluent's `schema.compatibility=NONE`).
    pub fn accepts(&self, schema: Option<&SchemaRef>) -> bool {
        match self.format {
            Format::Json | Format::ByteArray => true,
            _ => self.values.is_empty() || self.schema.as_ref() == schema,
        }
    }

    /// Adds a record's value.
    pub fn push(&mut self, topic: &str, schema: Option<&SchemaRef>, value: &Value) -> Result<()> {
        self.push_value(topic, schema, value)?;
        self.count += 1;
        Ok(())
    }

    fn push_value(&mut self, topic: &str, schema: Option<&SchemaRef>, value: &Value) -> Result<()> {
        match self.format {
            Format::Json => {
                let json = JsonConverter::new(false)
                    .from_connect_data(topic, schema, value)?
                    .unwrap_or_else(|| Bytes::from_static(b"null"));
                self.text.extend_from_slice(&json);
                self.text.push(b'\n');
                self.size = self.text.len();
            }
            Format::ByteArray => {
                let bytes = match value {
                    Value::Bytes(b) => b.to_vec(),
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => {
                        return Err(ConnectError::Data(format!(
                            "ByteArrayFormat writes bytes or strings, not a {} value (use the ByteArrayConverter)",
                            other.type_name()
                        )))
                    }
                };
                self.text.extend_from_slice(&bytes);
                self.text.extend_from_slice(&self.separator);
                self.size = self.text.len();
            }
            Format::Avro | Format::Parquet => {
                let Some(schema) = schema else {
                    return Err(ConnectError::Data(format!(
                        "{:?} files need records with a value schema (a converter with schemas, such as JsonConverter with schemas.enable=true)",
                        self.format
                    )));
                };
                if schema.ty != Type::Struct && self.format == Format::Parquet {
                    return Err(ConnectError::Data(format!(
                        "Parquet files hold struct values, not {}",
                        schema.ty.name()
                    )));
                }
                schema.validate(value, "value")?;
                self.schema = Some(schema.clone());
                self.size += estimate(value);
                self.values.push(value.clone());
            }
        }
        Ok(())
    }

    /// The file's bytes.
    pub fn finish(self) -> Result<Vec<u8>> {
        match self.format {
            Format::Json | Format::ByteArray => Ok(self.text),
            Format::Avro => {
                let schema = self
                    .schema
                    .ok_or_else(|| ConnectError::Data("an empty Avro file".into()))?;
                write_avro(&schema, &self.values)
            }
            Format::Parquet => {
                let schema = self
                    .schema
                    .ok_or_else(|| ConnectError::Data("an empty Parquet file".into()))?;
                write_parquet(&schema, &self.values, self.codec)
            }
        }
    }
}

/// A value's size, roughly, in bytes.
fn estimate(value: &Value) -> usize {
    match value {
        Value::Null | Value::Boolean(_) | Value::Int8(_) => 1,
        Value::Int16(_) => 2,
        Value::Int32(_) | Value::Float32(_) => 4,
        Value::Int64(_) | Value::Float64(_) => 8,
        Value::String(s) => s.len() + 1,
        Value::Bytes(b) => b.len() + 1,
        Value::Array(items) => items.iter().map(estimate).sum::<usize>() + 1,
        Value::Map(entries) => {
            entries
                .iter()
                .map(|(k, v)| estimate(k) + estimate(v))
                .sum::<usize>()
                + 1
        }
        Value::Struct(s) => s.raw_values().iter().map(estimate).sum(),
    }
}

/// The records of a file: each value with its schema (none for JSON and bytes).
pub fn read_file(
    format: Format,
    bytes: Bytes,
    separator: &[u8],
) -> Result<Vec<(Option<SchemaRef>, Value)>> {
    match format {
        Format::Json => {
            let converter = JsonConverter::new(false);
            let mut out = Vec::new();
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let data = converter.to_connect_data("", Some(line))?;
                out.push((None, data.value));
            }
            Ok(out)
        }
        Format::ByteArray => {
            let mut out = Vec::new();
            let mut rest: &[u8] = &bytes;
            while !rest.is_empty() {
                let end = if separator.is_empty() {
                    rest.len()
                } else {
                    rest.windows(separator.len())
                        .position(|w| w == separator)
                        .unwrap_or(rest.len())
                };
                out.push((
                    Some(Schema::optional_primitive(Type::Bytes)),
                    Value::Bytes(Bytes::copy_from_slice(&rest[..end])),
                ));
                rest = &rest[(end + separator.len()).min(rest.len())..];
            }
            Ok(out)
        }
        Format::Avro => read_avro(&bytes),
        Format::Parquet => read_parquet(bytes),
    }
}

fn schema_text(schema: &Schema) -> Result<String> {
    JsonConverter::new(false).schema_json(schema)
}

fn schema_from_text(text: &str) -> Result<SchemaRef> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ConnectError::Data(format!("the file's {SCHEMA_METADATA} is not JSON: {e}"))
    })?;
    JsonConverter::parse_schema(&json)?
        .ok_or_else(|| ConnectError::Data(format!("the file's {SCHEMA_METADATA} is null")))
}

// ---- Avro ----

/// The Avro schema of a Connect schema (records named after the Connect schema, or
/// `ConnectDefault<n>` as Confluent's `AvroData` names unnamed ones).
fn avro_schema(schema: &Schema, names: &mut usize) -> serde_json::Value {
    use serde_json::json;
    let base = match schema.name.as_deref() {
        Some(logical::DECIMAL) => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": logical::decimal_scale(schema).unwrap_or(0)})
        }
        Some(logical::DATE) => json!({"type": "int", "logicalType": "date"}),
        Some(logical::TIME) => json!({"type": "int", "logicalType": "time-millis"}),
        Some(logical::TIMESTAMP) => json!({"type": "long", "logicalType": "timestamp-millis"}),
        _ => match schema.ty {
            Type::Int8 | Type::Int16 | Type::Int32 => json!("int"),
            Type::Int64 => json!("long"),
            Type::Float32 => json!("float"),
            Type::Float64 => json!("double"),
            Type::Boolean => json!("boolean"),
            Type::String => json!("string"),
            Type::Bytes => json!("bytes"),
            Type::Array => {
                let items = schema
                    .value_schema
                    .as_deref()
                    .map(|s| avro_schema(s, names))
                    .unwrap_or(json!("null"));
                json!({"type": "array", "items": items})
            }
            Type::Map => {
                // Avro maps have string keys; others become arrays of key/value records.
                let values = schema
                    .value_schema
                    .as_deref()
                    .map(|s| avro_schema(s, names))
                    .unwrap_or(json!("null"));
                match schema.key_schema.as_deref() {
                    Some(k) if k.ty == Type::String => json!({"type": "map", "values": values}),
                    key => {
                        *names += 1;
                        let keys = key.map(|s| avro_schema(s, names)).unwrap_or(json!("null"));
                        json!({"type": "array", "items": {"type": "record", "name": format!("MapEntry{names}"), "fields": [{"name": "key", "type": keys}, {"name": "value", "type": values}]}})
                    }
                }
            }
            Type::Struct => {
                *names += 1;
                let name = schema
                    .name
                    .as_deref()
                    .map(avro_name)
                    .unwrap_or_else(|| format!("ConnectDefault{names}"));
                let fields: Vec<serde_json::Value> = schema
                    .fields
                    .iter()
                    .map(|f| {
                        let ty = avro_schema(&f.schema, names);
                        if f.schema.optional {
                            json!({"name": f.name, "type": ty, "default": null})
                        } else {
                            json!({"name": f.name, "type": ty})
                        }
                    })
                    .collect();
                json!({"type": "record", "name": name, "fields": fields})
            }
        },
    };
    if schema.optional {
        json!(["null", base])
    } else {
        base
    }
}

/// A Connect schema name as an Avro full name (letters, digits and `_`, dots between).
fn avro_name(name: &str) -> String {
    name.split('.')
        .map(|part| {
            let clean: String = part
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            {
                clean
            } else {
                format!("_{clean}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn to_avro(schema: &Schema, value: &Value) -> Result<apache_avro::types::Value> {
    use apache_avro::types::Value as A;
    let plain = match (schema.name.as_deref(), value) {
        (_, Value::Null) => A::Null,
        (Some(logical::DECIMAL), Value::Bytes(b)) => {
            A::Decimal(apache_avro::Decimal::from(b.to_vec()))
        }
        (Some(logical::DATE), Value::Int32(d)) => A::Date(*d),
        (Some(logical::TIME), Value::Int32(t)) => A::TimeMillis(*t),
        (Some(logical::TIMESTAMP), Value::Int64(t)) => A::TimestampMillis(*t),
        (_, Value::Int8(n)) => A::Int(i32::from(*n)),
        (_, Value::Int16(n)) => A::Int(i32::from(*n)),
        (_, Value::Int32(n)) => A::Int(*n),
        (_, Value::Int64(n)) => A::Long(*n),
        (_, Value::Float32(n)) => A::Float(*n),
        (_, Value::Float64(n)) => A::Double(*n),
        (_, Value::Boolean(b)) => A::Boolean(*b),
        (_, Value::String(s)) => A::String(s.clone()),
        (_, Value::Bytes(b)) => A::Bytes(b.to_vec()),
        (_, Value::Array(items)) => {
            let item = schema
                .value_schema
                .as_deref()
                .ok_or_else(|| ConnectError::Data("an array schema without items".into()))?;
            A::Array(
                items
                    .iter()
                    .map(|v| to_avro(item, v))
                    .collect::<Result<_>>()?,
            )
        }
        (_, Value::Map(entries)) => {
            let (k, v) = match (schema.key_schema.as_deref(), schema.value_schema.as_deref()) {
                (Some(k), Some(v)) => (k, v),
                _ => {
                    return Err(ConnectError::Data(
                        "a map schema without keys or values".into(),
                    ))
                }
            };
            if k.ty == Type::String {
                A::Map(
                    entries
                        .iter()
                        .map(|(key, value)| {
                            Ok((
                                key.as_str().unwrap_or_default().to_string(),
                                to_avro(v, value)?,
                            ))
                        })
                        .collect::<Result<_>>()?,
                )
            } else {
                A::Array(
                    entries
                        .iter()
                        .map(|(key, value)| {
                            Ok(A::Record(vec![
                                ("key".into(), to_avro(k, key)?),
                                ("value".into(), to_avro(v, value)?),
                            ]))
                        })
                        .collect::<Result<_>>()?,
                )
            }
        }
        (_, Value::Struct(s)) => A::Record(
            schema
                .fields
                .iter()
                .map(|f| Ok((f.name.clone(), to_avro(&f.schema, s.get_at(f.index))?)))
                .collect::<Result<_>>()?,
        ),
    };
    Ok(if schema.optional {
        match plain {
            A::Null => A::Union(0, Box::new(A::Null)),
            other => A::Union(1, Box::new(other)),
        }
    } else {
        plain
    })
}

fn from_avro(schema: &SchemaRef, value: apache_avro::types::Value) -> Result<Value> {
    use apache_avro::types::Value as A;
    let bad = |v: &A| {
        ConnectError::Data(format!(
            "an Avro {v:?} does not fit the file's Connect schema ({})",
            schema.ty.name()
        ))
    };
    let value = match value {
        A::Union(_, inner) => *inner,
        other => other,
    };
    Ok(match value {
        A::Null => Value::Null,
        A::Boolean(b) => Value::Boolean(b),
        A::Int(n) | A::Date(n) | A::TimeMillis(n) => match schema.ty {
            Type::Int8 => Value::Int8(n as i8),
            Type::Int16 => Value::Int16(n as i16),
            _ => Value::Int32(n),
        },
        A::Long(n) | A::TimestampMillis(n) => Value::Int64(n),
        A::Float(f) => Value::Float32(f),
        A::Double(f) => Value::Float64(f),
        A::String(s) => Value::String(s),
        A::Bytes(b) => Value::Bytes(b.into()),
        A::Decimal(d) => Value::Bytes(
            Vec::<u8>::try_from(&d)
                .map_err(|e| ConnectError::Data(e.to_string()))?
                .into(),
        ),
        A::Array(items) => match (
            schema.ty,
            schema.value_schema.as_ref(),
            schema.key_schema.as_ref(),
        ) {
            (Type::Map, Some(vs), Some(ks)) => Value::Map(
                items
                    .into_iter()
                    .map(|entry| match entry {
                        A::Record(mut fields) if fields.len() == 2 => {
                            let v = fields.pop().map(|f| f.1).unwrap_or(A::Null);
                            let k = fields.pop().map(|f| f.1).unwrap_or(A::Null);
                            Ok((from_avro(ks, k)?, from_avro(vs, v)?))
                        }
                        other => Err(bad(&other)),
                    })
                    .collect::<Result<_>>()?,
            ),
            (_, Some(item), _) => Value::Array(
                items
                    .into_iter()
                    .map(|v| from_avro(item, v))
                    .collect::<Result<_>>()?,
            ),
            _ => return Err(ConnectError::Data("an array schema without items".into())),
        },
        A::Map(entries) => {
            let vs = schema
                .value_schema
                .as_ref()
                .ok_or_else(|| ConnectError::Data("a map schema without values".into()))?;
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((Value::String(k), from_avro(vs, v)?)))
                    .collect::<Result<_>>()?,
            )
        }
        A::Record(fields) => {
            let mut values = vec![Value::Null; schema.fields.len()];
            for (name, v) in fields {
                if let Some(field) = schema.field(&name) {
                    values[field.index] = from_avro(&field.schema, v)?;
                }
            }
            Value::Struct(Struct::from_values(schema.clone(), values)?)
        }
        other => return Err(bad(&other)),
    })
}

fn write_avro(schema: &SchemaRef, values: &[Value]) -> Result<Vec<u8>> {
    let avro = avro_schema(schema, &mut 0);
    let parsed = apache_avro::Schema::parse(&avro)
        .map_err(|e| ConnectError::Data(format!("Avro schema {avro}: {e}")))?;
    let mut writer = apache_avro::Writer::with_codec(&parsed, Vec::new(), apache_avro::Codec::Null)
        .map_err(|e| ConnectError::Data(e.to_string()))?;
    writer
        .add_user_metadata(SCHEMA_METADATA.to_string(), schema_text(schema)?)
        .map_err(|e| ConnectError::Data(e.to_string()))?;
    for value in values {
        writer
            .append_value(to_avro(schema, value)?)
            .map_err(|e| ConnectError::Data(format!("writing an Avro record: {e}")))?;
    }
    writer
        .into_inner()
        .map_err(|e| ConnectError::Data(e.to_string()))
}

fn read_avro(bytes: &[u8]) -> Result<Vec<(Option<SchemaRef>, Value)>> {
    let reader = apache_avro::Reader::new(bytes)
        .map_err(|e| ConnectError::Data(format!("not an Avro file: {e}")))?;
    let text = reader
        .user_metadata()
        .get(SCHEMA_METADATA)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| ConnectError::Data(format!("the Avro file has no {SCHEMA_METADATA} metadata (it was not written by Sluice's S3 sink)")))?;
    let schema = schema_from_text(&text)?;
    let mut out = Vec::new();
    for value in reader {
        let value =
            value.map_err(|e| ConnectError::Data(format!("reading an Avro record: {e}")))?;
        out.push((Some(schema.clone()), from_avro(&schema, value)?));
    }
    Ok(out)
}

// ---- Parquet ----

fn arrow_type(schema: &Schema, name: &str) -> Result<DataType> {
    Ok(match (schema.name.as_deref(), schema.ty) {
        (Some(logical::DECIMAL), _) => DataType::Decimal128(38, logical::decimal_scale(schema)? as i8),
        (Some(logical::DATE), _) => DataType::Date32,
        (Some(logical::TIME), _) => DataType::Time32(TimeUnit::Millisecond),
        (Some(logical::TIMESTAMP), _) => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        (_, Type::Int8) => DataType::Int8,
        (_, Type::Int16) => DataType::Int16,
        (_, Type::Int32) => DataType::Int32,
        (_, Type::Int64) => DataType::Int64,
        (_, Type::Float32) => DataType::Float32,
        (_, Type::Float64) => DataType::Float64,
        (_, Type::Boolean) => DataType::Boolean,
        (_, Type::String) => DataType::Utf8,
        (_, Type::Bytes) => DataType::Binary,
        (_, ty) => {
            return Err(ConnectError::Data(format!(
                "field {name} is a {}: Parquet files here hold primitive and logical fields (use Avro for nested ones)",
                ty.name()
            )))
        }
    })
}

fn column(schema: &Schema, name: &str, values: &[&Value]) -> Result<ArrayRef> {
    let bad = |v: &Value| {
        ConnectError::Data(format!(
            "field {name}: a {} value in a {} column",
            v.type_name(),
            schema.ty.name()
        ))
    };
    macro_rules! build {
        ($builder:expr, $pat:pat => $out:expr) => {{
            let mut b = $builder;
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    $pat => b.append_value($out),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let n = values.len();
    Ok(match arrow_type(schema, name)? {
        DataType::Decimal128(_, scale) => {
            let mut b = Decimal128Builder::with_capacity(n)
                .with_precision_and_scale(38, scale)
                .map_err(|e| ConnectError::Data(e.to_string()))?;
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Bytes(bytes) => b.append_value(logical::decimal_unscaled(bytes)?),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Date32 => build!(Date32Builder::with_capacity(n), Value::Int32(d) => *d),
        DataType::Time32(_) => {
            build!(Time32MillisecondBuilder::with_capacity(n), Value::Int32(d) => *d)
        }
        DataType::Timestamp(_, _) => {
            build!(TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC"), Value::Int64(t) => *t)
        }
        DataType::Int8 => build!(Int8Builder::with_capacity(n), Value::Int8(x) => *x),
        DataType::Int16 => build!(Int16Builder::with_capacity(n), Value::Int16(x) => *x),
        DataType::Int32 => build!(Int32Builder::with_capacity(n), Value::Int32(x) => *x),
        DataType::Int64 => build!(Int64Builder::with_capacity(n), Value::Int64(x) => *x),
        DataType::Float32 => build!(Float32Builder::with_capacity(n), Value::Float32(x) => *x),
        DataType::Float64 => build!(Float64Builder::with_capacity(n), Value::Float64(x) => *x),
        DataType::Boolean => build!(BooleanBuilder::with_capacity(n), Value::Boolean(x) => *x),
        DataType::Utf8 => {
            build!(StringBuilder::with_capacity(n, n * 16), Value::String(s) => s.as_str())
        }
        _ => build!(BinaryBuilder::with_capacity(n, n * 16), Value::Bytes(b) => b.as_ref()),
    })
}

fn write_parquet(schema: &SchemaRef, values: &[Value], codec: ParquetCodec) -> Result<Vec<u8>> {
    let fields: Vec<ArrowField> = schema
        .fields
        .iter()
        .map(|f| {
            Ok(ArrowField::new(
                f.name.clone(),
                arrow_type(&f.schema, &f.name)?,
                f.schema.optional,
            ))
        })
        .collect::<Result<_>>()?;
    let arrow = Arc::new(ArrowSchema::new(fields));
    let mut columns = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        let cells: Vec<&Value> = values
            .iter()
            .map(|v| match v {
                Value::Struct(s) => s.get_at(field.index),
                _ => &Value::Null,
            })
            .collect();
        columns.push(column(&field.schema, &field.name, &cells)?);
    }
    let batch = RecordBatch::try_new(arrow.clone(), columns)
        .map_err(|e| ConnectError::Data(format!("building Parquet columns: {e}")))?;
    let compression = match codec {
        ParquetCodec::None => Compression::UNCOMPRESSED,
        ParquetCodec::Snappy => Compression::SNAPPY,
        ParquetCodec::Zstd => Compression::ZSTD(ZstdLevel::default()),
    };
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_METADATA.to_string(),
            schema_text(schema)?,
        )]))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, arrow, Some(props))
        .map_err(|e| ConnectError::Data(e.to_string()))?;
    writer
        .write(&batch)
        .map_err(|e| ConnectError::Data(format!("writing Parquet: {e}")))?;
    writer
        .close()
        .map_err(|e| ConnectError::Data(format!("writing Parquet: {e}")))?;
    Ok(out)
}

fn read_parquet(bytes: Bytes) -> Result<Vec<(Option<SchemaRef>, Value)>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| ConnectError::Data(format!("not a Parquet file: {e}")))?;
    let text = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kvs| kvs.iter().find(|kv| kv.key == SCHEMA_METADATA))
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| ConnectError::Data(format!("the Parquet file has no {SCHEMA_METADATA} metadata (it was not written by Sluice's S3 sink)")))?;
    let schema = schema_from_text(&text)?;
    let reader = builder
        .build()
        .map_err(|e| ConnectError::Data(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| ConnectError::Data(format!("reading Parquet: {e}")))?;
        let mut rows: Vec<Vec<Value>> =
            vec![Vec::with_capacity(schema.fields.len()); batch.num_rows()];
        for field in &schema.fields {
            let array = batch.column_by_name(&field.name).ok_or_else(|| {
                ConnectError::Data(format!("the Parquet file has no column {}", field.name))
            })?;
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(cell(&field.schema, array, i)?);
            }
        }
        for row in rows {
            out.push((
                Some(schema.clone()),
                Value::Struct(Struct::from_values(schema.clone(), row)?),
            ));
        }
    }
    Ok(out)
}

fn cell(schema: &Schema, array: &ArrayRef, i: usize) -> Result<Value> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Decimal128(_, _) => Value::Bytes(logical::decimal_bytes(
            array.as_primitive::<Decimal128Type>().value(i),
        )),
        DataType::Date32 => Value::Int32(array.as_primitive::<Date32Type>().value(i)),
        DataType::Time32(_) => Value::Int32(array.as_primitive::<Time32MillisecondType>().value(i)),
        DataType::Timestamp(_, _) => {
            Value::Int64(array.as_primitive::<TimestampMillisecondType>().value(i))
        }
        DataType::Int8 => Value::Int8(array.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => Value::Int16(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => Value::Int32(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => Value::Int64(array.as_primitive::<Int64Type>().value(i)),
        DataType::Float32 => Value::Float32(array.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => Value::Float64(array.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Value::Boolean(array.as_boolean().value(i)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        DataType::Binary => Value::Bytes(Bytes::copy_from_slice(array.as_binary::<i32>().value(i))),
        other => {
            return Err(ConnectError::Data(format!(
                "a Parquet column of type {other} for a Connect {} field",
                schema.ty.name()
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_connect::data::SchemaBuilder;

    fn sample() -> (SchemaRef, Vec<Value>) {
        let schema = SchemaBuilder::struct_()
            .name("com.example.Order")
            .field("id", SchemaBuilder::int64().build().unwrap())
            .field("small", SchemaBuilder::int8().optional().build().unwrap())
            .field("name", SchemaBuilder::string().optional().build().unwrap())
            .field("amount", logical::decimal(2).optional().build().unwrap())
            .field("day", logical::date().build().unwrap())
            .field("at", logical::timestamp().build().unwrap())
            .field("raw", SchemaBuilder::bytes().optional().build().unwrap())
            .field("ok", SchemaBuilder::boolean().build().unwrap())
            .field(
                "ratio",
                SchemaBuilder::float64().optional().build().unwrap(),
            )
            .build()
            .unwrap();
        let values = (0..50)
            .map(|i: i64| {
                Value::Struct(
                    Struct::from_values(
                        schema.clone(),
                        vec![
                            Value::Int64(i),
                            if i % 3 == 0 {
                                Value::Null
                            } else {
                                Value::Int8(i as i8)
                            },
                            if i % 4 == 0 {
                                Value::Null
                            } else {
                                Value::String(format!("n{i} é"))
                            },
                            if i % 5 == 0 {
                                Value::Null
                            } else {
                                Value::Bytes(logical::decimal_bytes(i128::from(i) * 101 - 700))
                            },
                            Value::Int32(19_000 + i as i32),
                            Value::Int64(1_700_000_000_000 + i),
                            if i % 2 == 0 {
                                Value::Null
                            } else {
                                Value::Bytes(Bytes::from(vec![i as u8; 3]))
                            },
                            Value::Boolean(i % 2 == 0),
                            if i % 6 == 0 {
                                Value::Null
                            } else {
                                Value::Float64(i as f64 / 3.0)
                            },
                        ],
                    )
                    .unwrap(),
                )
            })
            .collect();
        (schema, values)
    }

    #[test]
    fn avro_and_parquet_files_give_back_the_values_and_schemas_they_were_written_with() {
        let (schema, values) = sample();
        for (format, codec) in [
            (Format::Avro, ParquetCodec::Snappy),
            (Format::Parquet, ParquetCodec::Snappy),
            (Format::Parquet, ParquetCodec::Zstd),
            (Format::Parquet, ParquetCodec::None),
        ] {
            let mut file = FileBuilder::new(format, codec, b"\n");
            for v in &values {
                assert!(file.accepts(Some(&schema)));
                file.push("t", Some(&schema), v).unwrap();
            }
            assert_eq!(file.len(), 50);
            let bytes = file.finish().unwrap();
            let back = read_file(format, Bytes::from(bytes), b"\n").unwrap();
            assert_eq!(back.len(), values.len(), "{format:?}");
            for ((s, v), expected) in back.iter().zip(&values) {
                assert_eq!(s.as_ref(), Some(&schema), "{format:?}");
                assert_eq!(v, expected, "{format:?}");
            }
        }
    }

    #[test]
    fn json_and_byte_files_are_lines() {
        let mut file = FileBuilder::new(Format::Json, ParquetCodec::None, b"\n");
        file.push("t", None, &Value::string_map([("a", Value::Int64(1))]))
            .unwrap();
        file.push("t", None, &Value::String("x".into())).unwrap();
        let bytes = file.finish().unwrap();
        assert_eq!(bytes, b"{\"a\":1}\n\"x\"\n");
        let back = read_file(Format::Json, Bytes::from(bytes), b"\n").unwrap();
        assert_eq!(back[1].1, Value::String("x".into()));
        let mut file = FileBuilder::new(Format::ByteArray, ParquetCodec::None, b"\n");
        file.push("t", None, &Value::Bytes(Bytes::from_static(b"ab")))
            .unwrap();
        file.push("t", None, &Value::Bytes(Bytes::from_static(b"c")))
            .unwrap();
        let back = read_file(
            Format::ByteArray,
            Bytes::from(file.finish().unwrap()),
            b"\n",
        )
        .unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].1, Value::Bytes(Bytes::from_static(b"c")));
        assert!(Format::from_class("io.confluent.connect.s3.format.parquet.ParquetFormat").is_ok());
        assert!(Format::from_class("com.example.Nope").is_err());
    }
}
