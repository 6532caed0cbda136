//! ksqlDB's mathematical functions DataFusion has none alike for: `ROUND` and `TRUNC` (their
//! result types and `BigDecimal` rounding of the double's decimal text), `LOG` (natural, or
//! in a base), `CBRT`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Float64Array, Float64Builder, Int32Array,
    Int64Builder,
};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};
use datafusion_common::{plan_err, Result as DfResult};

use super::{arg, each_row, opt_arg, overloads, returns, sig, Call, KsqlUdf, Overload, Param};

const CATEGORY: &str = "MATHEMATICAL";

pub(super) fn functions() -> Vec<KsqlUdf> {
    use Param::{Bigint, Decimal, Double, Int};
    const ROUNDING: &[Overload] = &[
        sig(&[Bigint]),
        sig(&[Int]),
        sig(&[Double]),
        sig(&[Double, Int]),
        sig(&[Decimal]),
        sig(&[Decimal, Int]),
    ];
    vec![
        KsqlUdf::new(
            "ROUND",
            "Round",
            CATEGORY,
            "Round a value to the number of decimal places as specified by scale to the right of the decimal point. Numbers equidistant to the nearest value are rounded up (in the positive direction).",
            ROUNDING,
            rounding_type,
            round,
        ),
        KsqlUdf::new(
            "TRUNC",
            "trunc",
            CATEGORY,
            "Truncates a value to the number of decimal places as specified by scale to the right of the decimal point.",
            ROUNDING,
            rounding_type,
            trunc,
        ),
        KsqlUdf::new(
            "LOG",
            "log",
            CATEGORY,
            "The logarithm of a value: natural with one argument, in the base given first with two.",
            overloads![sig(&[Double]), sig(&[Double, Double])],
            returns!(DataType::Float64),
            log,
        ),
        KsqlUdf::new(
            "CBRT",
            "cbrt",
            CATEGORY,
            "The cube root of a value.",
            overloads![sig(&[Double])],
            returns!(DataType::Float64),
            cbrt,
        ),
    ]
}

/// `ROUND` and `TRUNC`: `BIGINT` of integers and of a double alone, `DOUBLE` of a double
/// with decimal places, `DECIMAL(p - s, 0)` of a decimal alone, its own type with places.
fn rounding_type(args: &[DataType]) -> DfResult<DataType> {
    match args {
        [DataType::Decimal128(p, s)] => {
            let precision = i16::from(*p) - i16::from(*s);
            match u8::try_from(precision) {
                Ok(precision) if precision >= 1 => Ok(DataType::Decimal128(precision, 0)),
                _ => plan_err!("DECIMAL precision must be >= 1: DECIMAL({precision}, 0)"),
            }
        }
        [DataType::Decimal128(p, s), _] => Ok(DataType::Decimal128(*p, *s)),
        [DataType::Float64, _] => Ok(DataType::Float64),
        _ => Ok(DataType::Int64),
    }
}

/// How `BigDecimal.setScale` drops digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Away from zero from the half up.
    HalfUp,
    /// Away from zero past the half.
    HalfDown,
    /// Towards zero.
    Down,
}

/// `|unscaled|` at `scale` to `places` decimal places (the result's unscaled value at
/// `places`), as `BigDecimal.setScale(places, mode)` rounds; the sign is the caller's.
fn set_scale(magnitude: u128, scale: i64, places: i64, mode: Mode) -> Option<u128> {
    if places >= scale {
        let up = u32::try_from(places - scale).ok()?;
        return magnitude.checked_mul(10u128.checked_pow(up)?);
    }
    let drop = places.abs_diff(scale);
    let Some(divisor) = u32::try_from(drop).ok().and_then(|d| 10u128.checked_pow(d)) else {
        // More digits dropped than a u128 holds: what is left rounds to 0.
        return Some(0);
    };
    let (quotient, remainder) = (magnitude / divisor, magnitude % divisor);
    let half = divisor / 2;
    let up = match mode {
        Mode::HalfUp => remainder >= half,
        Mode::HalfDown => remainder > half,
        Mode::Down => false,
    };
    Some(quotient + u128::from(up))
}

/// `magnitude` at scale `from` as the same value at scale `to` (exact: only ever padded, or
/// cut of zeros).
fn rescale(magnitude: u128, from: i64, to: i64) -> Option<u128> {
    let factor = 10u128.checked_pow(u32::try_from(from.abs_diff(to)).ok()?)?;
    if to >= from {
        magnitude.checked_mul(factor)
    } else {
        Some(magnitude / factor)
    }
}

/// `BigDecimal.valueOf(v).setScale(places, mode).doubleValue()`: the double's decimal text
/// (Java's `Double.toString`, the shortest digits) rounded.
fn round_double(v: f64, places: i32, mode: Mode) -> Result<f64, String> {
    if !v.is_finite() {
        return Err(format!("Character {} is neither a decimal digit number, decimal point, nor \"e\" notation exponential mark.", if v.is_nan() { "N" } else { "I" }));
    }
    if v == 0.0 {
        return Ok(0.0);
    }
    let sci = format!("{:e}", v.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // The digits as an integer at a scale: v = digits × 10^-scale.
    let scale = digits.len() as i64 - 1 - exponent;
    let magnitude: u128 = digits.parse().map_err(|_| format!("bad digits {digits}"))?;
    let places = i64::from(places);
    let rounded =
        set_scale(magnitude, scale, places, mode).ok_or_else(|| "Overflow".to_string())?;
    let sign = if v < 0.0 { "-" } else { "" };
    let text = format!("{sign}{rounded}e{}", -places);
    text.parse::<f64>().map_err(|e| e.to_string())
}

/// Java's `Math.round(double)`: the nearest long, halves up, NaN 0.
fn java_round(v: f64) -> i64 {
    let floor = v.floor();
    let rounded = if v - floor >= 0.5 { floor + 1.0 } else { floor };
    rounded as i64
}

fn round(call: &Call) -> DfResult<ArrayRef> {
    rounding(call, false)
}

fn trunc(call: &Call) -> DfResult<ArrayRef> {
    rounding(call, true)
}

fn rounding(call: &Call, truncate: bool) -> DfResult<ArrayRef> {
    let places = opt_arg::<Int32Array>(call, 1)?;
    let values = &call.args[0];
    let place = |row: usize| places.map(|p| (!p.is_null(row)).then(|| p.value(row)));
    match values.data_type() {
        DataType::Int64 | DataType::Int32 => {
            let mut out = Int64Builder::with_capacity(call.rows);
            if values.data_type() == &DataType::Int64 {
                out.extend(values.as_primitive::<Int64Type>().iter());
            } else {
                out.extend(
                    values
                        .as_primitive::<Int32Type>()
                        .iter()
                        .map(|v| v.map(i64::from)),
                );
            }
            Ok(Arc::new(out.finish()))
        }
        DataType::Float64 => {
            let doubles: &Float64Array = values.as_primitive::<Float64Type>();
            if places.is_none() {
                let mut out = Int64Builder::with_capacity(call.rows);
                out.extend(
                    doubles
                        .iter()
                        .map(|v| v.map(|v| if truncate { v as i64 } else { java_round(v) })),
                );
                return Ok(Arc::new(out.finish()));
            }
            let mut out = Float64Builder::with_capacity(call.rows);
            each_row(
                call,
                |row| {
                    let (false, Some(Some(places))) = (doubles.is_null(row), place(row)) else {
                        return Ok(None);
                    };
                    let v = doubles.value(row);
                    let mode = match (truncate, v > 0.0) {
                        (true, _) => Mode::Down,
                        (false, true) => Mode::HalfUp,
                        (false, false) => Mode::HalfDown,
                    };
                    round_double(v, places, mode).map(Some)
                },
                |v| out.append_option(v),
            );
            Ok(Arc::new(out.finish()))
        }
        DataType::Decimal128(_, scale) => {
            let scale = i64::from(*scale);
            let decimals = values.as_primitive::<Decimal128Type>();
            let (out_precision, out_scale) = match call.return_type {
                DataType::Decimal128(p, s) => (*p, *s),
                other => {
                    return datafusion_common::internal_err!(
                        "{}: a DECIMAL result expected, not {other}",
                        call.name
                    )
                }
            };
            let mut out = Decimal128Builder::with_capacity(call.rows);
            each_row(
                call,
                |row| {
                    if decimals.is_null(row) {
                        return Ok(None);
                    }
                    let places = match place(row) {
                        None => 0,
                        Some(None) => return Ok(None),
                        Some(Some(p)) => i64::from(p),
                    };
                    let v = decimals.value(row);
                    let mode = match (truncate, v > 0) {
                        (true, _) => Mode::Down,
                        (false, true) => Mode::HalfUp,
                        (false, false) => Mode::HalfDown,
                    };
                    let overflow = || "Overflow".to_string();
                    // Rounded at `places` when that drops digits, then at the result's scale
                    // (the decimal's own with places, 0 without).
                    let (magnitude, at) = if places >= scale {
                        (v.unsigned_abs(), scale)
                    } else {
                        let rounded = set_scale(v.unsigned_abs(), scale, places, mode)
                            .ok_or_else(overflow)?;
                        (rounded, places)
                    };
                    let magnitude =
                        rescale(magnitude, at, i64::from(out_scale)).ok_or_else(overflow)?;
                    let magnitude = i128::try_from(magnitude).map_err(|_| overflow())?;
                    Ok(Some(if v < 0 { -magnitude } else { magnitude }))
                },
                |v| out.append_option(v),
            );
            let out = out
                .finish()
                .with_precision_and_scale(out_precision, out_scale)?;
            Ok(Arc::new(out))
        }
        other => datafusion_common::internal_err!("{}: unexpected argument {other}", call.name),
    }
}

fn log(call: &Call) -> DfResult<ArrayRef> {
    let first = arg::<Float64Array>(call, 0)?;
    let out: Float64Array = match opt_arg::<Float64Array>(call, 1)? {
        None => first.iter().map(|v| v.map(f64::ln)).collect(),
        Some(values) => first
            .iter()
            .zip(values.iter())
            .map(|(base, value)| match (base, value) {
                (Some(base), Some(value)) => Some(if base <= 0.0 || base == 1.0 {
                    f64::NAN
                } else {
                    value.ln() / base.ln()
                }),
                _ => None,
            })
            .collect(),
    };
    Ok(Arc::new(out))
}

fn cbrt(call: &Call) -> DfResult<ArrayRef> {
    let values = arg::<Float64Array>(call, 0)?;
    let out: Float64Array = values.iter().map(|v| v.map(f64::cbrt)).collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_doubles_as_ksqldb() {
        // ksqlDB's own cases (math.json, round).
        let r = |v: f64, p: i32| {
            let mode = if v > 0.0 {
                Mode::HalfUp
            } else {
                Mode::HalfDown
            };
            round_double(v, p, mode).unwrap()
        };
        assert_eq!(r(1.234567, 2), 1.23);
        assert_eq!(r(12345.678, 1), 12345.7);
        assert_eq!(r(-12345.678, 2), -12345.68);
        assert_eq!(r(12345.678, -1), 12350.0);
        assert_eq!(r(-12345.678, -2), -12300.0);
        assert_eq!(r(1.5, 10), 1.5);
        assert_eq!(r(111.0, -1), 110.0);
        // Halves: up for positives, towards zero for negatives.
        assert_eq!(r(2.5, 0), 3.0);
        assert_eq!(r(-2.5, 0), -2.0);
        assert_eq!(r(0.125, 2), 0.13);
        assert_eq!(r(5.0, -1), 10.0);
        assert_eq!(r(0.5, -1), 0.0);
        assert!(round_double(f64::NAN, 1, Mode::HalfUp).is_err());
        assert_eq!(round_double(-1.7, 0, Mode::Down).unwrap(), -1.0);
        assert_eq!(java_round(-1.5), -1);
        assert_eq!(java_round(1.5), 2);
        assert_eq!(java_round(0.49999999999999994), 0);
        assert_eq!(java_round(f64::NAN), 0);
        assert_eq!(java_round(1e300), i64::MAX);
    }

    #[test]
    fn rounds_decimals_exactly() {
        // 12345678987654321.2345678987654321 at scale 16.
        let v: u128 = 123456789876543212345678987654321;
        assert_eq!(set_scale(v, 16, 0, Mode::HalfUp), Some(12345678987654321));
        assert_eq!(set_scale(v, 16, 2, Mode::HalfUp), Some(1234567898765432123));
        assert_eq!(set_scale(v, 16, -2, Mode::HalfUp), Some(123456789876543));
        assert_eq!(set_scale(15, 1, 0, Mode::HalfDown), Some(1));
        assert_eq!(set_scale(15, 1, 0, Mode::HalfUp), Some(2));
        assert_eq!(set_scale(19, 1, 0, Mode::Down), Some(1));
        assert_eq!(set_scale(5, 0, -100, Mode::HalfUp), Some(0));
    }

    #[test]
    fn result_types_as_ksqldb() {
        assert_eq!(rounding_type(&[DataType::Int32]).unwrap(), DataType::Int64);
        assert_eq!(
            rounding_type(&[DataType::Float64]).unwrap(),
            DataType::Int64
        );
        assert_eq!(
            rounding_type(&[DataType::Float64, DataType::Int32]).unwrap(),
            DataType::Float64
        );
        assert_eq!(
            rounding_type(&[DataType::Decimal128(33, 16)]).unwrap(),
            DataType::Decimal128(17, 0)
        );
        assert_eq!(
            rounding_type(&[DataType::Decimal128(33, 16), DataType::Int32]).unwrap(),
            DataType::Decimal128(33, 16)
        );
        assert!(rounding_type(&[DataType::Decimal128(2, 2)]).is_err());
    }
}
