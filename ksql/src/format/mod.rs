//! ksqlDB's serialization formats for keys and values (`JSON`, `KAFKA`, `DELIMITED`, `NONE`):
//! record bytes read into Apache Arrow columns, and rows of Arrow columns written as record
//! bytes, with ksqlDB 0.29's rules (field names matched as its JSON deserializer matches them,
//! its coercions, its error messages, single values unwrapped where ksqlDB unwraps them).
//!
//! The decoder appends straight into typed column builders chosen once in
//! [`RowDecoder::new`]; the builders can be cut back to a row count, so a record that fails
//! half-way leaves no trace. JSON is read by a small pull parser of this module (no
//! intermediate tree): strings without escapes are copied once, from the record into the
//! column. The encoder downcasts each column once per call ([`RowEncoder::bind`] once per
//! batch) and writes straight into the caller's buffer.

mod builder;
mod delimited;
mod json;
mod kafka;
mod reader;
mod text;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use crate::error::KsqlError;
use crate::metastore::Format;
use crate::parser::ast::SqlType;
use crate::Result;

use builder::Builder;
use reader::Reader;

/// The Arrow type of a ksqlDB type: `BOOLEAN` → Boolean, `INT` → Int32, `BIGINT` → Int64,
/// `DOUBLE` → Float64, `DECIMAL(p, s)` → Decimal128(p, s), `STRING` → Utf8, `BYTES` → Binary,
/// `DATE` → Date32, `TIME` → Time32(Millisecond), `TIMESTAMP` → Timestamp(Millisecond, None),
/// `ARRAY<T>` → List (item field `item`, nullable), `MAP<K, V>` → Map (field `entries`:
/// Struct {`key` non-null, `value` nullable}, unsorted), `STRUCT<...>` → Struct (fields
/// nullable, names as given).
///
/// Errors (`KsqlError::Statement`) for a type name left unresolved (`CREATE TYPE` names are
/// resolved by the caller) and for decimals Arrow cannot hold (precision above 38).
pub fn arrow_type(ty: &SqlType) -> Result<DataType> {
    Ok(Kind::of(ty)?.data_type())
}

/// Options of the formats.
#[derive(Debug, Clone, PartialEq)]
pub struct SerdeOptions {
    /// `WRAP_SINGLE_VALUE`: whether a value of a single column is a JSON object holding it
    /// (`true`, ksqlDB's default) or the bare value. Keys of one column are always bare.
    pub wrap_single_value: bool,
    /// `VALUE_DELIMITER` / `KEY_DELIMITER` of `DELIMITED` (default `,`).
    pub delimiter: char,
}

impl Default for SerdeOptions {
    fn default() -> SerdeOptions {
        SerdeOptions {
            wrap_single_value: true,
            delimiter: ',',
        }
    }
}

/// A column type resolved once: what the builders, readers and parsers work from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Boolean,
    Int,
    Bigint,
    Double,
    Decimal { precision: u8, scale: i8 },
    String,
    Bytes,
    Date,
    Time,
    Timestamp,
    Array(Box<Kind>),
    Map(Box<Kind>, Box<Kind>),
    Struct(Vec<(String, Kind)>),
}

impl Kind {
    fn of(ty: &SqlType) -> Result<Kind> {
        Ok(match ty {
            SqlType::Boolean => Kind::Boolean,
            SqlType::Int => Kind::Int,
            SqlType::Bigint => Kind::Bigint,
            SqlType::Double => Kind::Double,
            SqlType::Decimal { precision, scale } => {
                if *precision < 1 || *precision > 38 {
                    return Err(KsqlError::statement(format!(
                        "DECIMAL precision must be between 1 and 38: {ty}"
                    )));
                }
                if scale > precision {
                    return Err(KsqlError::statement(format!(
                        "DECIMAL scale must not be greater than its precision: {ty}"
                    )));
                }
                Kind::Decimal {
                    precision: *precision as u8,
                    scale: *scale as i8,
                }
            }
            SqlType::String => Kind::String,
            SqlType::Bytes => Kind::Bytes,
            SqlType::Date => Kind::Date,
            SqlType::Time => Kind::Time,
            SqlType::Timestamp => Kind::Timestamp,
            SqlType::Array(item) => Kind::Array(Box::new(Kind::of(item)?)),
            SqlType::Map(key, value) => {
                Kind::Map(Box::new(Kind::of(key)?), Box::new(Kind::of(value)?))
            }
            SqlType::Struct(fields) => Kind::Struct(
                fields
                    .iter()
                    .map(|(name, ty)| Ok((name.clone(), Kind::of(ty)?)))
                    .collect::<Result<_>>()?,
            ),
            SqlType::Named(name) => {
                return Err(KsqlError::statement(format!(
                    "Type '{name}' is not resolved: custom types must be replaced by their definition before serialization"
                )))
            }
        })
    }

    pub(crate) fn data_type(&self) -> DataType {
        match self {
            Kind::Boolean => DataType::Boolean,
            Kind::Int => DataType::Int32,
            Kind::Bigint => DataType::Int64,
            Kind::Double => DataType::Float64,
            Kind::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            Kind::String => DataType::Utf8,
            Kind::Bytes => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time32(TimeUnit::Millisecond),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            Kind::Array(item) => {
                DataType::List(Arc::new(Field::new("item", item.data_type(), true)))
            }
            Kind::Map(key, value) => DataType::Map(map_entries_field(key, value), false),
            Kind::Struct(fields) => DataType::Struct(struct_fields(fields)),
        }
    }

    fn is_primitive(&self) -> bool {
        !matches!(self, Kind::Array(_) | Kind::Map(..) | Kind::Struct(_))
    }
}

pub(crate) fn map_entries_field(key: &Kind, value: &Kind) -> Arc<Field> {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(map_kv_fields(key, value)),
        false,
    ))
}

pub(crate) fn map_kv_fields(key: &Kind, value: &Kind) -> Fields {
    Fields::from(vec![
        Field::new("key", key.data_type(), false),
        Field::new("value", value.data_type(), true),
    ])
}

pub(crate) fn struct_fields(fields: &[(String, Kind)]) -> Fields {
    fields
        .iter()
        .map(|(name, kind)| Field::new(name, kind.data_type(), true))
        .collect()
}

/// The columns of one part (key or value) in one format, checked: what `new` of the decoder
/// and the encoder both start from.
#[derive(Debug, Clone)]
struct Layout {
    format: Format,
    names: Vec<String>,
    kinds: Vec<Kind>,
    is_key: bool,
    /// JSON: the single column is the bare value.
    unwrapped: bool,
}

impl Layout {
    fn new(
        format: Format,
        columns: &[(String, SqlType)],
        options: &SerdeOptions,
        is_key: bool,
    ) -> Result<Layout> {
        let kinds = columns
            .iter()
            .map(|(_, ty)| Kind::of(ty))
            .collect::<Result<Vec<_>>>()?;
        let names: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
        let listed = || {
            columns
                .iter()
                .map(|(name, ty)| format!("`{name}` {ty}{}", if is_key { " KEY" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match format {
            Format::None => {
                if !columns.is_empty() {
                    return Err(KsqlError::statement(format!(
                        "The 'NONE' format can only be used when no columns are defined. Got: [{}]",
                        listed()
                    )));
                }
            }
            Format::Kafka => {
                if columns.len() > 1 {
                    return Err(KsqlError::statement(format!(
                        "The 'KAFKA' format only supports a single field. Got: [{}]",
                        listed()
                    )));
                }
                if let Some((kind, (_, ty))) = kinds.iter().zip(columns).next() {
                    if !matches!(
                        kind,
                        Kind::Int | Kind::Bigint | Kind::Double | Kind::String | Kind::Bytes
                    ) {
                        return Err(KsqlError::statement(format!(
                            "The 'KAFKA' format does not support type '{}'",
                            type_word(ty)
                        )));
                    }
                }
            }
            Format::Delimited => {
                for (kind, (_, ty)) in kinds.iter().zip(columns) {
                    if !kind.is_primitive() {
                        return Err(KsqlError::statement(format!(
                            "The 'DELIMITED' format does not support type '{}'",
                            type_word(ty)
                        )));
                    }
                }
                if matches!(options.delimiter, '"' | '\r' | '\n') {
                    return Err(KsqlError::statement(format!(
                        "Invalid delimiter '{}': the 'DELIMITED' format cannot use a quote or a line break as its delimiter",
                        options.delimiter.escape_default()
                    )));
                }
            }
            Format::Json => {}
        }
        let unwrapped =
            format == Format::Json && columns.len() == 1 && (is_key || !options.wrap_single_value);
        Ok(Layout {
            format,
            names,
            kinds,
            is_key,
            unwrapped,
        })
    }
}

/// How ksqlDB names a type in its format errors: the base name (`ARRAY`, `DECIMAL`, ...).
fn type_word(ty: &SqlType) -> String {
    match ty {
        SqlType::Array(_) => "ARRAY".to_string(),
        SqlType::Map(..) => "MAP".to_string(),
        SqlType::Struct(_) => "STRUCT".to_string(),
        SqlType::Decimal { .. } => "DECIMAL".to_string(),
        other => other.to_string(),
    }
}

/// Reads records' key or value bytes into Arrow columns, one builder per column.
pub struct RowDecoder {
    layout: Layout,
    columns: Vec<Builder>,
    rows: usize,
    json: json::JsonState,
    delimited: delimited::DelimitedState,
}

impl std::fmt::Debug for RowDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowDecoder")
            .field("format", &self.layout.format)
            .field("columns", &self.layout.names)
            .field("rows", &self.rows)
            .finish()
    }
}

impl RowDecoder {
    /// A decoder of `columns` (the name and type of each column this part, key or value,
    /// holds, in order) in `format`.
    ///
    /// Errors (`KsqlError::Statement`) if the format cannot hold these columns: `KAFKA` with
    /// more than one column or a type other than `INT`, `BIGINT`, `DOUBLE`, `STRING` and
    /// `BYTES`; `DELIMITED` with an `ARRAY`, `MAP` or `STRUCT`; `NONE` with any column.
    pub fn new(
        format: Format,
        columns: &[(String, SqlType)],
        options: SerdeOptions,
        is_key: bool,
    ) -> Result<RowDecoder> {
        let layout = Layout::new(format, columns, &options, is_key)?;
        let builders = layout.kinds.iter().map(Builder::new).collect();
        let json = json::JsonState::new(&layout.names);
        let delimited = delimited::DelimitedState::new(options.delimiter);
        Ok(RowDecoder {
            layout,
            columns: builders,
            rows: 0,
            json,
            delimited,
        })
    }

    /// Appends one record's bytes as one row. `None` (no key, or a tombstone value) appends a
    /// row of nulls.
    ///
    /// On error (`KsqlError::Serde`, naming the column and the problem in ksqlDB's words) the
    /// decoder is left exactly as before the call.
    pub fn append(&mut self, bytes: Option<&[u8]>) -> Result<()> {
        let row = self.rows;
        let outcome = match bytes {
            None => {
                for column in &mut self.columns {
                    column.append_null();
                }
                Ok(())
            }
            Some(bytes) => match self.layout.format {
                Format::None => Ok(()),
                Format::Kafka => match self.columns.first_mut() {
                    Some(column) => kafka::decode(bytes, column, &self.layout.names[0]),
                    None => Ok(()),
                },
                Format::Json => self.json.decode(
                    bytes,
                    &self.layout.names,
                    &mut self.columns,
                    row,
                    self.layout.unwrapped,
                ),
                Format::Delimited => {
                    self.delimited
                        .decode(bytes, &self.layout.names, &mut self.columns)
                }
            },
        };
        match outcome {
            Ok(()) => {
                debug_assert!(self.columns.iter().all(|c| c.len() == row + 1));
                self.rows += 1;
                Ok(())
            }
            Err(message) => {
                for column in &mut self.columns {
                    column.truncate(row);
                }
                Err(KsqlError::Serde(message))
            }
        }
    }

    /// Rows appended since the last [`finish`](RowDecoder::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`finish`](RowDecoder::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The columns built so far (one array per column, each [`len`](RowDecoder::len) long,
    /// of the [`arrow_type`] of its column); the decoder starts again empty.
    pub fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.columns.iter_mut().map(Builder::finish).collect()
    }
}

/// Writes one row of Arrow columns as a record's key or value bytes.
#[derive(Debug)]
pub struct RowEncoder {
    layout: Layout,
    /// JSON: `"NAME":` for each column, escaped, the first after `{`, the others after `,`.
    json_keys: Vec<Vec<u8>>,
    delimiter: [u8; 4],
    delimiter_len: usize,
}

impl RowEncoder {
    /// An encoder of `columns` in `format`; errors as [`RowDecoder::new`].
    pub fn new(
        format: Format,
        columns: &[(String, SqlType)],
        options: SerdeOptions,
        is_key: bool,
    ) -> Result<RowEncoder> {
        let layout = Layout::new(format, columns, &options, is_key)?;
        let json_keys = layout
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut key = vec![if i == 0 { b'{' } else { b',' }];
                text::write_json_str(&mut key, name);
                key.push(b':');
                key
            })
            .collect();
        let mut delimiter = [0u8; 4];
        let delimiter_len = options.delimiter.encode_utf8(&mut delimiter).len();
        Ok(RowEncoder {
            layout,
            json_keys,
            delimiter,
            delimiter_len,
        })
    }

    /// Appends the encoding of row `row` of `columns` (one array per column, in the order
    /// given to `new`, each of the [`arrow_type`] of its column) to `out`.
    ///
    /// Returns `Ok(false)` and writes nothing when the row encodes as a null record: always
    /// in `NONE`; a `KAFKA` column that is null; a bare (unwrapped) JSON value that is null;
    /// a key whose columns are all null. `Ok(true)` otherwise. On error (`KsqlError::Serde`:
    /// a column of the wrong type, a row out of bounds) nothing is written.
    ///
    /// Each column is downcast once per call; [`bind`](RowEncoder::bind) does it once for
    /// all the rows of a batch.
    pub fn encode(&self, columns: &[ArrayRef], row: usize, out: &mut Vec<u8>) -> Result<bool> {
        self.check_count(columns)?;
        let len = columns.iter().map(|c| c.len()).min().unwrap_or(usize::MAX);
        self.encode_row(
            &Lazy {
                encoder: self,
                arrays: columns,
            },
            row,
            len,
            out,
        )
    }

    /// `columns` checked and downcast once, to encode many of their rows.
    pub fn bind<'a>(&'a self, columns: &'a [ArrayRef]) -> Result<BoundColumns<'a>> {
        self.check_count(columns)?;
        let readers = self
            .layout
            .kinds
            .iter()
            .zip(columns)
            .zip(&self.layout.names)
            .map(|((kind, array), name)| {
                Reader::new(kind, array.as_ref())
                    .map_err(|problem| KsqlError::Serde(cannot_serialize(name, &problem)))
            })
            .collect::<Result<Vec<_>>>()?;
        let len = columns.iter().map(|c| c.len()).min().unwrap_or(usize::MAX);
        Ok(BoundColumns {
            encoder: self,
            readers,
            len,
        })
    }

    fn check_count(&self, columns: &[ArrayRef]) -> Result<()> {
        if columns.len() != self.layout.kinds.len() {
            return Err(KsqlError::Serde(format!(
                "Expected {} columns to serialize, got {}",
                self.layout.kinds.len(),
                columns.len()
            )));
        }
        Ok(())
    }

    fn encode_row<C: Columns>(
        &self,
        columns: &C,
        row: usize,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<bool> {
        let layout = &self.layout;
        let count = layout.kinds.len();
        if layout.format == Format::None || count == 0 && layout.is_key {
            return Ok(false);
        }
        if row >= len {
            return Err(KsqlError::Serde(format!(
                "Row {row} is out of the columns' bounds ({len} rows)"
            )));
        }
        if layout.is_key && (0..count).all(|i| columns.is_null(i, row)) {
            return Ok(false);
        }
        let start = out.len();
        let outcome = match layout.format {
            Format::None => Ok(false),
            Format::Kafka => columns.with(0, |reader| kafka::encode(reader, row, out)),
            Format::Json if layout.unwrapped => {
                if columns.is_null(0, row) {
                    Ok(false)
                } else {
                    columns.with(0, |reader| reader.write_json(row, out).map(|()| true))
                }
            }
            Format::Json => self.write_json_object(columns, row, out).map(|()| true),
            Format::Delimited => self.write_delimited(columns, row, out).map(|()| true),
        };
        match outcome {
            Ok(true) => Ok(true),
            Ok(false) => {
                out.truncate(start);
                Ok(false)
            }
            Err(message) => {
                out.truncate(start);
                Err(KsqlError::Serde(message))
            }
        }
    }

    fn write_json_object<C: Columns>(
        &self,
        columns: &C,
        row: usize,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        if self.json_keys.is_empty() {
            out.extend_from_slice(b"{}");
            return Ok(());
        }
        for (i, key) in self.json_keys.iter().enumerate() {
            out.extend_from_slice(key);
            if columns.is_null(i, row) {
                out.extend_from_slice(b"null");
            } else {
                columns.with(i, |reader| reader.write_json(row, out))?;
            }
        }
        out.push(b'}');
        Ok(())
    }

    fn write_delimited<C: Columns>(
        &self,
        columns: &C,
        row: usize,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        let delimiter = &self.delimiter[..self.delimiter_len];
        for i in 0..self.layout.kinds.len() {
            if i > 0 {
                out.extend_from_slice(delimiter);
            }
            if !columns.is_null(i, row) {
                columns.with(i, |reader| {
                    delimited::write_field(reader, row, delimiter, out)
                })?;
            }
        }
        Ok(())
    }
}

fn cannot_serialize(name: &str, problem: &str) -> String {
    format!("Column `{name}` cannot be serialized: {problem}")
}

/// The columns of a row being encoded, however they are held.
trait Columns {
    fn is_null(&self, column: usize, row: usize) -> bool;
    /// Runs `f` on the reader of `column`.
    fn with<R>(
        &self,
        column: usize,
        f: impl FnOnce(&Reader) -> std::result::Result<R, String>,
    ) -> std::result::Result<R, String>;
}

/// Columns downcast when they are read (one row encoded).
struct Lazy<'a> {
    encoder: &'a RowEncoder,
    arrays: &'a [ArrayRef],
}

impl Columns for Lazy<'_> {
    #[inline]
    fn is_null(&self, column: usize, row: usize) -> bool {
        self.arrays[column].is_null(row)
    }

    #[inline]
    fn with<R>(
        &self,
        column: usize,
        f: impl FnOnce(&Reader) -> std::result::Result<R, String>,
    ) -> std::result::Result<R, String> {
        let layout = &self.encoder.layout;
        let reader = Reader::new(&layout.kinds[column], self.arrays[column].as_ref())
            .map_err(|problem| cannot_serialize(&layout.names[column], &problem))?;
        f(&reader)
    }
}

/// A batch's columns bound to a [`RowEncoder`]: their rows encoded one by one without
/// checking and downcasting the columns again.
#[derive(Debug)]
pub struct BoundColumns<'a> {
    encoder: &'a RowEncoder,
    readers: Vec<Reader<'a>>,
    len: usize,
}

impl BoundColumns<'_> {
    /// As [`RowEncoder::encode`], for row `row` of the bound columns.
    pub fn encode(&self, row: usize, out: &mut Vec<u8>) -> Result<bool> {
        self.encoder.encode_row(self, row, self.len, out)
    }
}

impl Columns for BoundColumns<'_> {
    #[inline]
    fn is_null(&self, column: usize, row: usize) -> bool {
        self.readers[column].is_null(row)
    }

    #[inline]
    fn with<R>(
        &self,
        column: usize,
        f: impl FnOnce(&Reader) -> std::result::Result<R, String>,
    ) -> std::result::Result<R, String> {
        f(&self.readers[column])
    }
}
