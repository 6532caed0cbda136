//! A compact binary encoding of the values an aggregation keeps and moves: group keys and
//! aggregate arguments on the repartition topic, aggregate states in the store and its
//! changelog. Self-describing (a type tag before each value), so a state read back after a
//! restart needs nothing but its bytes; only the primitive types ksqlDB's aggregates take.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion_common::ScalarValue;

use crate::error::{KsqlError, Result};

const NULL: u8 = 0;
const BOOLEAN: u8 = 1;
const INT: u8 = 2;
const BIGINT: u8 = 3;
const DOUBLE: u8 = 4;
const DECIMAL: u8 = 5;
const STRING: u8 = 6;
const BYTES: u8 = 7;
const DATE: u8 = 8;
const TIME: u8 = 9;
const TIMESTAMP: u8 = 10;

/// Whether values of `ty` can be encoded (ksqlDB's primitive types, as Arrow holds them).
pub fn supports(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Null
            | DataType::Boolean
            | DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Time32(TimeUnit::Millisecond)
            | DataType::Timestamp(TimeUnit::Millisecond, None)
    )
}

/// Appends `value` to `out`. A null keeps its type (so a state's null decodes to the null of
/// its type).
pub fn put_value(out: &mut Vec<u8>, value: &ScalarValue) -> Result<()> {
    fn present<T>(out: &mut Vec<u8>, tag: u8, v: &Option<T>, put: impl FnOnce(&mut Vec<u8>, &T)) {
        out.push(tag);
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                put(out, v);
            }
        }
    }
    match value {
        ScalarValue::Null => out.push(NULL),
        ScalarValue::Boolean(v) => present(out, BOOLEAN, v, |o, v| o.push(u8::from(*v))),
        ScalarValue::Int32(v) => present(out, INT, v, |o, v| o.extend(v.to_le_bytes())),
        ScalarValue::Int64(v) => present(out, BIGINT, v, |o, v| o.extend(v.to_le_bytes())),
        ScalarValue::Float64(v) => present(out, DOUBLE, v, |o, v| o.extend(v.to_le_bytes())),
        ScalarValue::Decimal128(v, p, s) => {
            out.push(DECIMAL);
            out.push(*p);
            out.push(*s as u8);
            match v {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend(v.to_le_bytes());
                }
            }
        }
        ScalarValue::Utf8(v) => present(out, STRING, v, |o, v| put_bytes(o, v.as_bytes())),
        ScalarValue::Binary(v) => present(out, BYTES, v, |o, v| put_bytes(o, v)),
        ScalarValue::Date32(v) => present(out, DATE, v, |o, v| o.extend(v.to_le_bytes())),
        ScalarValue::Time32Millisecond(v) => {
            present(out, TIME, v, |o, v| o.extend(v.to_le_bytes()))
        }
        ScalarValue::TimestampMillisecond(v, None) => {
            present(out, TIMESTAMP, v, |o, v| o.extend(v.to_le_bytes()))
        }
        other => {
            return Err(KsqlError::Serde(format!(
                "an aggregation cannot hold values of type {}",
                other.data_type()
            )))
        }
    }
    Ok(())
}

/// Appends a length (LEB128) and the bytes.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends `n` as LEB128.
pub fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a signed 64-bit integer.
pub fn put_i64(out: &mut Vec<u8>, n: i64) {
    out.extend(n.to_le_bytes());
}

/// Encodes `values` as one row.
pub fn encode_row(values: &[ScalarValue]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * 9 + 1);
    put_len(&mut out, values.len());
    for value in values {
        put_value(&mut out, value)?;
    }
    Ok(out)
}

/// Decodes a row [`encode_row`] wrote.
pub fn decode_row(bytes: &[u8]) -> Result<Vec<ScalarValue>> {
    let mut reader = Reader::new(bytes);
    let n = reader.length()?;
    let mut values = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        values.push(reader.value()?);
    }
    reader.finish()?;
    Ok(values)
}

/// Reads what the `put_` functions wrote.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn corrupt(&self) -> KsqlError {
        KsqlError::Serde(format!(
            "an aggregation's bytes end or are corrupt at byte {} of {}",
            self.at,
            self.bytes.len()
        ))
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or_else(|| self.corrupt())?;
        let slice = self.bytes.get(self.at..end).ok_or_else(|| self.corrupt())?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self.take(N)?;
        slice.try_into().map_err(|_| self.corrupt())
    }

    /// A byte.
    pub fn byte(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A LEB128 length.
    pub fn length(&mut self) -> Result<usize> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= usize::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or_else(|| self.corrupt())?;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.corrupt())
    }

    /// A signed 64-bit integer.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.length()?;
        self.take(n)
    }

    /// A value [`put_value`] wrote.
    pub fn value(&mut self) -> Result<ScalarValue> {
        let tag = self.byte()?;
        if tag == NULL {
            return Ok(ScalarValue::Null);
        }
        let (precision, scale) = if tag == DECIMAL {
            (self.byte()?, self.byte()? as i8)
        } else {
            (0, 0)
        };
        let present = match self.byte()? {
            0 => false,
            1 => true,
            _ => return Err(self.corrupt()),
        };
        macro_rules! read {
            ($variant:ident, $read:expr) => {
                ScalarValue::$variant(if present { Some($read) } else { None })
            };
        }
        Ok(match tag {
            BOOLEAN => read!(Boolean, self.byte()? != 0),
            INT => read!(Int32, i32::from_le_bytes(self.array()?)),
            BIGINT => read!(Int64, self.i64()?),
            DOUBLE => read!(Float64, f64::from_le_bytes(self.array()?)),
            DECIMAL => {
                let v = if present {
                    Some(i128::from_le_bytes(self.array()?))
                } else {
                    None
                };
                ScalarValue::Decimal128(v, precision, scale)
            }
            STRING => read!(
                Utf8,
                String::from_utf8(self.bytes()?.to_vec()).map_err(|_| self.corrupt())?
            ),
            BYTES => read!(Binary, self.bytes()?.to_vec()),
            DATE => read!(Date32, i32::from_le_bytes(self.array()?)),
            TIME => read!(Time32Millisecond, i32::from_le_bytes(self.array()?)),
            TIMESTAMP => {
                let v = if present { Some(self.i64()?) } else { None };
                ScalarValue::TimestampMillisecond(v, None)
            }
            _ => return Err(self.corrupt()),
        })
    }

    /// Checks every byte was read.
    pub fn finish(&self) -> Result<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(self.corrupt())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar() -> impl Strategy<Value = ScalarValue> {
        prop_oneof![
            Just(ScalarValue::Null),
            any::<Option<bool>>().prop_map(ScalarValue::Boolean),
            any::<Option<i32>>().prop_map(ScalarValue::Int32),
            any::<Option<i64>>().prop_map(ScalarValue::Int64),
            any::<Option<i64>>().prop_map(|v| ScalarValue::Float64(v.map(|v| v as f64 / 7.0))),
            (any::<Option<i64>>(), 1u8..38, 0i8..10).prop_map(|(v, p, s)| ScalarValue::Decimal128(
                v.map(i128::from),
                p,
                s
            )),
            any::<Option<String>>().prop_map(ScalarValue::Utf8),
            any::<Option<Vec<u8>>>().prop_map(ScalarValue::Binary),
            any::<Option<i32>>().prop_map(ScalarValue::Date32),
            any::<Option<i32>>().prop_map(ScalarValue::Time32Millisecond),
            any::<Option<i64>>().prop_map(|v| ScalarValue::TimestampMillisecond(v, None)),
        ]
    }

    proptest! {
        #[test]
        fn rows_round_trip(values in proptest::collection::vec(scalar(), 0..8)) {
            let bytes = encode_row(&values).unwrap();
            prop_assert_eq!(decode_row(&bytes).unwrap(), values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_row(&bytes);
        }
    }

    #[test]
    fn a_truncated_row_is_an_error() {
        let bytes = encode_row(&[ScalarValue::Utf8(Some("hello".into()))]).unwrap();
        assert!(decode_row(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_row(&[bytes.as_slice(), &[0]].concat()).is_err());
    }

    #[test]
    fn nested_types_are_refused_with_their_type() {
        let list = ScalarValue::new_list_nullable(&[ScalarValue::Int32(Some(1))], &DataType::Int32);
        let err = encode_row(&[ScalarValue::List(list)]).unwrap_err();
        assert!(
            err.to_string().contains("cannot hold values of type List"),
            "{err}"
        );
    }
}
