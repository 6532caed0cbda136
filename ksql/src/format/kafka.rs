//! `KAFKA`: Kafka's primitive serializers (`IntegerSerializer`, `LongSerializer`,
//! `DoubleSerializer`, `StringSerializer`, `ByteArraySerializer`) for a single column.

use super::builder::Builder;
use super::reader::Reader;

/// Appends `bytes` as the value of the single column `column` (named `name`).
pub(crate) fn decode(bytes: &[u8], column: &mut Builder, name: &str) -> Result<(), String> {
    match column {
        Builder::Int(p) => {
            let v: [u8; 4] = bytes.try_into().map_err(|_| {
                format!("Size of data received by IntegerDeserializer is not 4 (column `{name}`)")
            })?;
            p.push(i32::from_be_bytes(v));
        }
        Builder::Bigint(p) => {
            let v: [u8; 8] = bytes.try_into().map_err(|_| {
                format!("Size of data received by LongDeserializer is not 8 (column `{name}`)")
            })?;
            p.push(i64::from_be_bytes(v));
        }
        Builder::Double(p) => {
            let v: [u8; 8] = bytes.try_into().map_err(|_| {
                format!("Size of data received by DoubleDeserializer is not 8 (column `{name}`)")
            })?;
            p.push(f64::from_be_bytes(v));
        }
        Builder::String(v) => {
            if let Err(e) = std::str::from_utf8(bytes) {
                return Err(format!(
                    "Error when deserializing byte[] to string: invalid UTF-8 at byte {} (column `{name}`)",
                    e.valid_up_to()
                ));
            }
            v.push(bytes)?;
        }
        Builder::Bytes(v) => v.push(bytes)?,
        other => {
            // Refused when the decoder was made.
            return Err(format!(
                "The 'KAFKA' format does not support type '{}'",
                other.base_name()
            ));
        }
    }
    Ok(())
}

/// Appends row `row` of the single column; `Ok(false)` (nothing written) if it is null.
pub(crate) fn encode(reader: &Reader, row: usize, out: &mut Vec<u8>) -> Result<bool, String> {
    if reader.is_null(row) {
        return Ok(false);
    }
    match reader {
        Reader::Int(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
        Reader::Bigint(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
        Reader::Double(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
        Reader::Utf8(_)
        | Reader::LargeUtf8(_)
        | Reader::Utf8View(_)
        | Reader::Binary(_)
        | Reader::LargeBinary(_)
        | Reader::BinaryView(_) => out.extend_from_slice(reader.bytes(row).unwrap_or_default()),
        other => {
            return Err(format!(
                "The 'KAFKA' format does not support type '{}'",
                other.base_name()
            ))
        }
    }
    Ok(true)
}
