//! Values as text: parsing a string into a column's type (JSON strings, `DELIMITED` fields,
//! JSON map keys), exact decimals, and writing numbers, decimals and JSON strings.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use super::builder::Builder;

/// Base64 as Java's `Base64.getEncoder()` writes it and `Base64.getDecoder()` reads it
/// (standard alphabet; padding written, optional when read).
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Why a text could not become a value of a column's type.
#[derive(Debug)]
pub(crate) enum TextError {
    /// Not a value of the type (`Can't coerce string to type`).
    Coerce,
    /// A decimal that does not fit: ksqlDB's message.
    Decimal(String),
    /// Not Base64.
    Base64,
    /// The type is not one a text can hold (ARRAY, MAP, STRUCT).
    NotScalar,
    /// The batch is full (offsets would overflow).
    Full(String),
}

/// Appends the value `text` holds to a scalar builder: ksqlDB's coercions from strings.
pub(crate) fn append_text(builder: &mut Builder, text: &str) -> Result<(), TextError> {
    match builder {
        Builder::Boolean { values, nulls } => {
            let v = if text.eq_ignore_ascii_case("true") {
                true
            } else if text.eq_ignore_ascii_case("false") {
                false
            } else {
                return Err(TextError::Coerce);
            };
            Builder::append_bool(values, nulls, v);
        }
        Builder::Int(p) => p.push(text.parse().map_err(|_| TextError::Coerce)?),
        Builder::Bigint(p) => p.push(text.parse().map_err(|_| TextError::Coerce)?),
        Builder::Date(p) => p.push(text.parse().map_err(|_| TextError::Coerce)?),
        Builder::Time(p) => p.push(text.parse().map_err(|_| TextError::Coerce)?),
        Builder::Timestamp(p) => p.push(text.parse().map_err(|_| TextError::Coerce)?),
        Builder::Double(p) => p.push(parse_double(text).ok_or(TextError::Coerce)?),
        Builder::Decimal {
            prim,
            precision,
            scale,
        } => prim.push(parse_decimal(text, *precision, *scale)?),
        Builder::String(v) => v.push(text.as_bytes()).map_err(TextError::Full)?,
        Builder::Bytes(v) => {
            if BASE64.decode_vec(text, &mut v.data).is_err() {
                v.discard_open();
                return Err(TextError::Base64);
            }
            v.close().map_err(TextError::Full)?;
        }
        Builder::Array { .. } | Builder::Map { .. } | Builder::Struct { .. } => {
            return Err(TextError::NotScalar)
        }
    }
    Ok(())
}

/// A double as Java's `Double.parseDouble` reads one (surrounding blanks ignored; `NaN`,
/// `Infinity`).
pub(crate) fn parse_double(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| c <= ' ');
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => {
            // Rust also reads "inf" and "nan", which Java does not.
            if t.bytes()
                .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
            {
                return None;
            }
            t.parse().ok()
        }
    }
}

/// The unscaled value of the decimal `text` (`[+-]digits[.digits][e[+-]digits]`, as
/// `new BigDecimal(text)` reads it) at `scale`, if it fits `DECIMAL(precision, scale)`
/// exactly; else ksqlDB's `DecimalUtil.ensureFit` message.
pub(crate) fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, TextError> {
    let b = text.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_end = i;
    let (frac_start, frac_end) = if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (start, i)
    } else {
        (i, i)
    };
    if int_end == int_start && frac_end == frac_start {
        return Err(TextError::Coerce);
    }
    let mut exponent: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            exponent = (exponent * 10 + i64::from(b[i] - b'0')).min(1 << 40);
            i += 1;
        }
        if i == start {
            return Err(TextError::Coerce);
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    if i != b.len() {
        return Err(TextError::Coerce);
    }
    let int_len = int_end - int_start;
    let digits = int_len + (frac_end - frac_start);
    let digit = |k: usize| -> i128 {
        let c = if k < int_len {
            b[int_start + k]
        } else {
            b[frac_start + k - int_len]
        };
        i128::from(c - b'0')
    };
    let Some(first) = (0..digits).find(|&k| digit(k) != 0) else {
        return Ok(0);
    };
    // The decimal point sits before digit `point` of the digits (which may be outside them).
    let point = int_len as i64 + exponent;
    let scale = i64::from(scale);
    let precision_i = i64::from(precision);
    let int_digits = point - first as i64;
    if int_digits > precision_i - scale {
        return Err(TextError::Decimal(format!(
            "Numeric field overflow: A field with precision {precision} and scale {scale} must round to an absolute value less than 10^{}. Got {text}",
            precision_i - scale
        )));
    }
    let cut = point + scale;
    let last_nonzero = (0..digits).rev().find(|&k| digit(k) != 0).unwrap_or(first);
    if last_nonzero as i64 >= cut {
        let required_scale = (digits - int_len) as i64 - exponent;
        return Err(TextError::Decimal(format!(
            "Cannot fit decimal '{text}' into DECIMAL({precision}, {scale}) without rounding. (Requires {},{})",
            digits - first,
            required_scale
        )));
    }
    let mut unscaled: i128 = 0;
    let mut k = first as i64;
    while k < cut {
        let d = if (k as usize) < digits {
            digit(k as usize)
        } else {
            0
        };
        unscaled = unscaled * 10 + d;
        k += 1;
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// "00" to "99": two digits at a time.
const PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Writes the decimal digits of `n` at the end of `buf`; where they start.
fn digits(mut n: u128, buf: &mut [u8; 40]) -> usize {
    let mut pos = buf.len();
    // Above u64, one digit at a time (u128 division is slow, and such values are rare).
    while n > u128::from(u64::MAX) {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut n = n as u64;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + n as u8;
    }
    pos
}

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_i64(out: &mut Vec<u8>, v: i64) {
    push_i128(out, i128::from(v));
}

/// Appends `v` in decimal.
pub(crate) fn push_i128(out: &mut Vec<u8>, v: i128) {
    let mut buf = [0u8; 40];
    let start = digits(v.unsigned_abs(), &mut buf);
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[start..]);
}

/// Appends the decimal of unscaled value `v` at `scale`, with exactly `scale` digits after
/// the point (`12.30`, `-0.05`, `7`).
pub(crate) fn push_decimal(out: &mut Vec<u8>, v: i128, scale: i8) {
    if scale <= 0 {
        push_i128(out, v);
        if v != 0 {
            out.extend(std::iter::repeat_n(b'0', scale.unsigned_abs() as usize));
        }
        return;
    }
    let scale = scale as usize;
    let mut buf = [0u8; 40];
    let start = digits(v.unsigned_abs(), &mut buf);
    let digits = &buf[start..];
    if v < 0 {
        out.push(b'-');
    }
    if digits.len() <= scale {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    } else {
        let split = digits.len() - scale;
        out.extend_from_slice(&digits[..split]);
        out.push(b'.');
        out.extend_from_slice(&digits[split..]);
    }
}

/// Appends a finite double as its shortest text that reads back exactly (`1.0`, `0.1`,
/// `1e20`); `NaN`, `Infinity` and `-Infinity` as Java writes them.
pub(crate) fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"Infinity");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Infinity");
    } else {
        // serde_json writes finite doubles with Ryu: the shortest digits that read back
        // exactly, in exponent form when shorter (`1e20`). Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &v);
    }
}

/// Appends `s` as a JSON string: quoted, `"`, `\` and control characters escaped.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 1);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // Most bytes need no escape: one table look-up each.
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The bytes a JSON string escapes: `"`, `\` and the control characters (where a
/// reader's plain run of a string stops, too).
pub(crate) const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `bytes` in Base64 (standard alphabet, padded).
pub(crate) fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), String> {
    let len = base64::encoded_len(bytes.len(), true)
        .ok_or_else(|| "BYTES value too large to encode".to_string())?;
    let start = out.len();
    out.resize(start + len, 0);
    match BASE64.encode_slice(bytes, &mut out[start..]) {
        Ok(written) => {
            out.truncate(start + written);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(format!("BYTES value could not be encoded: {e}"))
        }
    }
}
