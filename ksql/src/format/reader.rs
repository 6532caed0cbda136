//! Columns read by the encoder: each array downcast once to its concrete type (nested
//! ones with their children), then read by row.

use arrow::array::{
    Array, AsArray, BinaryArray, BinaryViewArray, BooleanArray, Decimal128Array, LargeBinaryArray,
    LargeStringArray, ListArray, MapArray, PrimitiveArray, StringArray, StringViewArray,
    StructArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType,
    TimestampMillisecondType,
};

use super::text::{push_base64, push_decimal, push_f64, push_i64, write_json_str};
use super::Kind;

/// A column (or a nested child) downcast to what its type says.
#[derive(Debug)]
pub(crate) enum Reader<'a> {
    Boolean(&'a BooleanArray),
    Int(&'a PrimitiveArray<Int32Type>),
    Bigint(&'a PrimitiveArray<Int64Type>),
    Double(&'a PrimitiveArray<Float64Type>),
    Decimal(&'a Decimal128Array, i8),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    BinaryView(&'a BinaryViewArray),
    Date(&'a PrimitiveArray<Date32Type>),
    Time(&'a PrimitiveArray<Time32MillisecondType>),
    Timestamp(&'a PrimitiveArray<TimestampMillisecondType>),
    List(&'a ListArray, Box<Reader<'a>>),
    Map(&'a MapArray, Box<Reader<'a>>, Box<Reader<'a>>),
    Struct(&'a StructArray, Vec<(&'a str, Reader<'a>)>),
}

impl<'a> Reader<'a> {
    /// `array` read as a column of `kind`; an error if it is not of its Arrow type (strings
    /// and bytes may also be large or views; decimals of any precision at the right scale).
    pub(crate) fn new(kind: &'a Kind, array: &'a dyn Array) -> Result<Reader<'a>, String> {
        let mismatch = || {
            format!(
                "expected an array of {}, got {}",
                kind.data_type(),
                array.data_type()
            )
        };
        let reader = match kind {
            Kind::Boolean => array.as_boolean_opt().map(Reader::Boolean),
            Kind::Int => array.as_primitive_opt().map(Reader::Int),
            Kind::Bigint => array.as_primitive_opt().map(Reader::Bigint),
            Kind::Double => array.as_primitive_opt().map(Reader::Double),
            Kind::Date => array.as_primitive_opt().map(Reader::Date),
            Kind::Time => array.as_primitive_opt().map(Reader::Time),
            Kind::Timestamp => array.as_primitive_opt().map(Reader::Timestamp),
            Kind::Decimal { scale, .. } => match array.data_type() {
                DataType::Decimal128(_, s) if s == scale => {
                    array.as_primitive_opt().map(|a| Reader::Decimal(a, *scale))
                }
                _ => None,
            },
            Kind::String => match array.data_type() {
                DataType::Utf8 => array.as_string_opt().map(Reader::Utf8),
                DataType::LargeUtf8 => array.as_string_opt().map(Reader::LargeUtf8),
                DataType::Utf8View => array.as_string_view_opt().map(Reader::Utf8View),
                _ => None,
            },
            Kind::Bytes => match array.data_type() {
                DataType::Binary => array.as_binary_opt().map(Reader::Binary),
                DataType::LargeBinary => array.as_binary_opt().map(Reader::LargeBinary),
                DataType::BinaryView => array.as_binary_view_opt().map(Reader::BinaryView),
                _ => None,
            },
            Kind::Array(item) => match array.as_list_opt::<i32>() {
                Some(list) => Some(Reader::List(
                    list,
                    Box::new(Reader::new(item, list.values().as_ref())?),
                )),
                None => None,
            },
            Kind::Map(key, value) => match array.as_map_opt() {
                Some(map) => Some(Reader::Map(
                    map,
                    Box::new(Reader::new(key, map.keys().as_ref())?),
                    Box::new(Reader::new(value, map.values().as_ref())?),
                )),
                None => None,
            },
            Kind::Struct(fields) => match array.as_struct_opt() {
                Some(st) if st.num_columns() == fields.len() => Some(Reader::Struct(
                    st,
                    fields
                        .iter()
                        .zip(st.columns())
                        .map(|((name, kind), child)| {
                            Ok((name.as_str(), Reader::new(kind, child.as_ref())?))
                        })
                        .collect::<Result<Vec<_>, String>>()?,
                )),
                _ => None,
            },
        };
        reader.ok_or_else(mismatch)
    }

    fn array(&self) -> &dyn Array {
        match self {
            Reader::Boolean(a) => *a,
            Reader::Int(a) => *a,
            Reader::Bigint(a) => *a,
            Reader::Double(a) => *a,
            Reader::Decimal(a, _) => *a,
            Reader::Utf8(a) => *a,
            Reader::LargeUtf8(a) => *a,
            Reader::Utf8View(a) => *a,
            Reader::Binary(a) => *a,
            Reader::LargeBinary(a) => *a,
            Reader::BinaryView(a) => *a,
            Reader::Date(a) => *a,
            Reader::Time(a) => *a,
            Reader::Timestamp(a) => *a,
            Reader::List(a, _) => *a,
            Reader::Map(a, _, _) => *a,
            Reader::Struct(a, _) => *a,
        }
    }

    #[inline]
    pub(crate) fn is_null(&self, row: usize) -> bool {
        self.array().is_null(row)
    }

    /// ksqlDB's name of the column's base type.
    pub(crate) fn base_name(&self) -> &'static str {
        match self {
            Reader::Boolean(_) => "BOOLEAN",
            Reader::Int(_) => "INTEGER",
            Reader::Bigint(_) => "BIGINT",
            Reader::Double(_) => "DOUBLE",
            Reader::Decimal(..) => "DECIMAL",
            Reader::Utf8(_) | Reader::LargeUtf8(_) | Reader::Utf8View(_) => "STRING",
            Reader::Binary(_) | Reader::LargeBinary(_) | Reader::BinaryView(_) => "BYTES",
            Reader::Date(_) => "DATE",
            Reader::Time(_) => "TIME",
            Reader::Timestamp(_) => "TIMESTAMP",
            Reader::List(..) => "ARRAY",
            Reader::Map(..) => "MAP",
            Reader::Struct(..) => "STRUCT",
        }
    }

    /// The bytes of a string or bytes value (`None` for other types).
    pub(crate) fn bytes(&self, row: usize) -> Option<&'a [u8]> {
        Some(match self {
            Reader::Utf8(a) => a.value(row).as_bytes(),
            Reader::LargeUtf8(a) => a.value(row).as_bytes(),
            Reader::Utf8View(a) => a.value(row).as_bytes(),
            Reader::Binary(a) => a.value(row),
            Reader::LargeBinary(a) => a.value(row),
            Reader::BinaryView(a) => a.value(row),
            _ => return None,
        })
    }

    fn str(&self, row: usize) -> Option<&'a str> {
        Some(match self {
            Reader::Utf8(a) => a.value(row),
            Reader::LargeUtf8(a) => a.value(row),
            Reader::Utf8View(a) => a.value(row),
            _ => return None,
        })
    }

    /// Appends the text of a non-null primitive value (`DELIMITED` fields, JSON map keys):
    /// numbers in decimal, doubles shortest, decimals at their scale, bytes in Base64.
    pub(crate) fn write_text(&self, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Reader::Boolean(a) => {
                out.extend_from_slice(if a.value(row) { b"true" } else { b"false" })
            }
            Reader::Int(a) => push_i64(out, i64::from(a.value(row))),
            Reader::Bigint(a) => push_i64(out, a.value(row)),
            Reader::Double(a) => push_f64(out, a.value(row)),
            Reader::Decimal(a, scale) => push_decimal(out, a.value(row), *scale),
            Reader::Utf8(_) | Reader::LargeUtf8(_) | Reader::Utf8View(_) => {
                out.extend_from_slice(self.bytes(row).unwrap_or_default())
            }
            Reader::Binary(_) | Reader::LargeBinary(_) | Reader::BinaryView(_) => {
                push_base64(out, self.bytes(row).unwrap_or_default())?
            }
            Reader::Date(a) => push_i64(out, i64::from(a.value(row))),
            Reader::Time(a) => push_i64(out, i64::from(a.value(row))),
            Reader::Timestamp(a) => push_i64(out, a.value(row)),
            Reader::List(..) | Reader::Map(..) | Reader::Struct(..) => {
                return Err(format!(
                    "a value of type {} cannot be written as text",
                    self.base_name()
                ))
            }
        }
        Ok(())
    }

    /// Appends the value at `row` as JSON.
    pub(crate) fn write_json(&self, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
        if self.is_null(row) {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        match self {
            Reader::Double(a) => {
                let v = a.value(row);
                if v.is_finite() {
                    push_f64(out, v);
                } else {
                    out.push(b'"');
                    push_f64(out, v);
                    out.push(b'"');
                }
            }
            Reader::Utf8(_) | Reader::LargeUtf8(_) | Reader::Utf8View(_) => {
                write_json_str(out, self.str(row).unwrap_or_default())
            }
            Reader::Binary(_) | Reader::LargeBinary(_) | Reader::BinaryView(_) => {
                out.push(b'"');
                push_base64(out, self.bytes(row).unwrap_or_default())?;
                out.push(b'"');
            }
            Reader::List(list, item) => {
                let offsets = list.value_offsets();
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                out.push(b'[');
                for i in start..end {
                    if i > start {
                        out.push(b',');
                    }
                    item.write_json(i, out)?;
                }
                out.push(b']');
            }
            Reader::Map(map, keys, values) => {
                let offsets = map.value_offsets();
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                out.push(b'{');
                for i in start..end {
                    if i > start {
                        out.push(b',');
                    }
                    if keys.is_null(i) {
                        out.extend_from_slice(b"\"null\"");
                    } else if let Some(key) = keys.str(i) {
                        write_json_str(out, key);
                    } else {
                        let at = out.len();
                        keys.write_text(i, out)?;
                        // Numbers, booleans and Base64 need no escaping.
                        out.insert(at, b'"');
                        out.push(b'"');
                    }
                    out.push(b':');
                    values.write_json(i, out)?;
                }
                out.push(b'}');
            }
            Reader::Struct(_, fields) => {
                out.push(b'{');
                for (i, (name, field)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_str(out, name);
                    out.push(b':');
                    field.write_json(row, out)?;
                }
                out.push(b'}');
            }
            _ => self.write_text(row, out)?,
        }
        Ok(())
    }
}
