//! Connect's logical types: named schemas over a physical type, with Kafka's names so that
//! converters and connectors of either side read them alike.
//!
//! | logical type | name | physical value |
//! |---|---|---|
//! | decimal | `org.apache.kafka.connect.data.Decimal` (parameter `scale`) | `Bytes`: the unscaled value, big-endian two's complement |
//! | date | `org.apache.kafka.connect.data.Date` | `Int32`: days since 1970-01-01 |
//! | time | `org.apache.kafka.connect.data.Time` | `Int32`: milliseconds since midnight |
//! | timestamp | `org.apache.kafka.connect.data.Timestamp` | `Int64`: milliseconds since the epoch |

use bytes::Bytes;

use super::{Schema, SchemaBuilder, Value};
use crate::error::{ConnectError, Result};

/// The decimal logical type's schema name.
pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
/// The decimal schema's parameter that holds the scale.
pub const DECIMAL_SCALE: &str = "scale";
/// The date logical type's schema name.
pub const DATE: &str = "org.apache.kafka.connect.data.Date";
/// The time logical type's schema name.
pub const TIME: &str = "org.apache.kafka.connect.data.Time";
/// The timestamp logical type's schema name.
pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 24 * 60 * 60 * 1000;

/// A decimal schema of `scale` digits after the point (Kafka's `Decimal.builder`).
pub fn decimal(scale: i32) -> SchemaBuilder {
    SchemaBuilder::bytes()
        .name(DECIMAL)
        .version(1)
        .parameter(DECIMAL_SCALE, scale.to_string())
}

/// A date schema (Kafka's `Date.builder`).
pub fn date() -> SchemaBuilder {
    SchemaBuilder::int32().name(DATE).version(1)
}

/// A time-of-day schema (Kafka's `Time.builder`).
pub fn time() -> SchemaBuilder {
    SchemaBuilder::int32().name(TIME).version(1)
}

/// A timestamp schema (Kafka's `Timestamp.builder`).
pub fn timestamp() -> SchemaBuilder {
    SchemaBuilder::int64().name(TIMESTAMP).version(1)
}

/// The scale of a decimal schema.
pub fn decimal_scale(schema: &Schema) -> Result<i32> {
    schema
        .parameter(DECIMAL_SCALE)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ConnectError::Schema(format!(
                "a {DECIMAL} schema needs an integer parameter {DECIMAL_SCALE}"
            ))
        })
}

/// The bytes of an unscaled decimal value: the shortest big-endian two's complement (as
/// Java's `BigInteger.toByteArray`).
pub fn decimal_bytes(unscaled: i128) -> Bytes {
    let full = unscaled.to_be_bytes();
    let mut start = 0;
    // Drop leading bytes that only repeat the sign.
    while start < full.len() - 1 {
        let (byte, next) = (full[start], full[start + 1]);
        let redundant = (byte == 0x00 && next & 0x80 == 0) || (byte == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    Bytes::copy_from_slice(&full[start..])
}

/// The unscaled value of a decimal's bytes.
pub fn decimal_unscaled(bytes: &[u8]) -> Result<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(ConnectError::Data(format!(
            "a decimal of {} bytes (1 to 16 are supported)",
            bytes.len()
        )));
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0x00 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Ok(i128::from_be_bytes(full))
}

/// A decimal as text: `unscaled × 10^-scale`, in plain notation (`-12.340`).
pub fn decimal_to_string(unscaled: i128, scale: i32) -> String {
    if scale <= 0 {
        let zeros = "0".repeat(scale.unsigned_abs() as usize);
        return format!("{unscaled}{}", if unscaled == 0 { "" } else { &zeros });
    }
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if unscaled < 0 { "-" } else { "" })
}

/// The unscaled value of decimal text at `scale` (more fraction digits than the scale are an
/// error, fewer are filled with zeros).
pub fn decimal_parse(text: &str, scale: i32) -> Result<i128> {
    let bad = || ConnectError::Data(format!("{text:?} is not a decimal of scale {scale}"));
    let trimmed = text.trim();
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if scale < 0 {
        // A negative scale counts zeros before the point: the integer must end in them.
        if !frac.trim_end_matches('0').is_empty() {
            return Err(bad());
        }
        let whole: i128 = int.parse().map_err(|_| bad())?;
        let unit = 10i128.checked_pow(scale.unsigned_abs()).ok_or_else(bad)?;
        if whole % unit != 0 {
            return Err(bad());
        }
        return Ok(if negative {
            -whole / unit
        } else {
            whole / unit
        });
    }
    let scale_digits = usize::try_from(scale).map_err(|_| bad())?;
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > scale_digits {
        return Err(bad());
    }
    let digits = format!("{int}{frac:0<scale_digits$}");
    let mut value: i128 = if digits.is_empty() {
        0
    } else {
        digits[..int.len() + scale_digits.min(digits.len() - int.len())]
            .parse()
            .map_err(|_| bad())?
    };
    if negative {
        value = -value;
    }
    Ok(value)
}

/// Checks the physical value of a logical type (the physical type itself is checked by
/// [`Schema::validate`]).
pub(crate) fn validate(schema: &Schema, value: &Value, at: &str) -> Result<()> {
    match (schema.name.as_deref(), value) {
        (Some(DECIMAL), Value::Bytes(bytes)) => {
            decimal_scale(schema)?;
            decimal_unscaled(bytes).map(|_| ())
        }
        (Some(TIME), Value::Int32(ms)) if !(0..MS_PER_DAY as i32).contains(ms) => Err(
            ConnectError::Data(format!("{at}: a time of {ms} ms is not within one day")),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimals_are_javas_big_integer_bytes() {
        // BigInteger.valueOf(n).toByteArray() for these n.
        assert_eq!(&decimal_bytes(0)[..], &[0x00]);
        assert_eq!(&decimal_bytes(127)[..], &[0x7f]);
        assert_eq!(&decimal_bytes(128)[..], &[0x00, 0x80]);
        assert_eq!(&decimal_bytes(-1)[..], &[0xff]);
        assert_eq!(&decimal_bytes(-128)[..], &[0x80]);
        assert_eq!(&decimal_bytes(-129)[..], &[0xff, 0x7f]);
        assert_eq!(&decimal_bytes(1234)[..], &[0x04, 0xd2]);
        assert_eq!(decimal_to_string(-12340, 3), "-12.340");
        assert_eq!(decimal_to_string(5, 3), "0.005");
        assert_eq!(decimal_to_string(5, 0), "5");
        assert_eq!(decimal_to_string(12, -2), "1200");
        assert_eq!(decimal_parse("1200", -2).unwrap(), 12);
        assert!(decimal_parse("1210", -2).is_err());
        assert_eq!(decimal_parse("12.34", 3).unwrap(), 12340);
        assert_eq!(decimal_parse("-0.5", 1).unwrap(), -5);
        assert!(decimal_parse("1.2345", 2).is_err());
        assert!(decimal_parse("1.2.3", 2).is_err());
        assert!(decimal_parse("", 2).is_err());
    }

    #[test]
    fn logical_values_are_checked() {
        let time = time().build().unwrap();
        assert!(time.validate(&Value::Int32(1000), "t").is_ok());
        assert!(time.validate(&Value::Int32(-1), "t").is_err());
        let no_scale = SchemaBuilder::bytes().name(DECIMAL).build().unwrap();
        assert!(no_scale
            .validate(&Value::Bytes(decimal_bytes(1)), "d")
            .is_err());
    }

    proptest! {
        #[test]
        fn decimal_bytes_round_trip(n in any::<i128>()) {
            prop_assert_eq!(decimal_unscaled(&decimal_bytes(n)).unwrap(), n);
        }

        #[test]
        fn decimal_text_round_trips(n in -1_000_000_000_000i128..1_000_000_000_000, scale in 0i32..8) {
            prop_assert_eq!(decimal_parse(&decimal_to_string(n, scale), scale).unwrap(), n);
        }
    }
}
