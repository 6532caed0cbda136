//! `Cast`: changes the type of the part or of some of its fields.

use base64::Engine as _;

use super::{require_map, require_struct, struct_basics, struct_of, to_map, PartTransform};
use crate::data::{logical, Schema, SchemaBuilder, SchemaRef, Type, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;
use crate::transforms::TransformConfig;

const PURPOSE: &str = "Cast";
const TARGETS: [Type; 8] = [
    Type::Int8,
    Type::Int16,
    Type::Int32,
    Type::Int64,
    Type::Float32,
    Type::Float64,
    Type::Boolean,
    Type::String,
];

/// Kafka's `Cast$Key` / `Cast$Value`: `spec` is one type for the whole (primitive) part, or
/// `field:type` pairs. Targets are the integer and float types, `boolean` and `string`;
/// sources are those and `bytes` (to string only, as base64). Strings parse to numbers,
/// numbers and booleans convert as Java's do (`true` is 1, a number is true when its integer
/// part is not 0), decimals convert by value, and dates, times and timestamps cast to string
/// as ISO 8601 text.
pub struct Cast {
    whole: Option<Type>,
    fields: Vec<(String, Type)>,
}

impl Cast {
    /// From `spec` (required).
    pub fn new(config: &TransformConfig) -> Result<Cast> {
        let spec = config.required("spec")?;
        let err = |reason: &str| config.error("spec", spec, reason);
        let target = |name: &str| {
            Type::from_name(name.trim())
                .filter(|t| TARGETS.contains(t))
                .ok_or_else(|| err(&format!("{name:?} is not a cast target: one of int8, int16, int32, int64, float32, float64, boolean, string")))
        };
        let items = config.list("spec");
        if let [single] = &items[..] {
            if !single.contains(':') {
                return Ok(Cast {
                    whole: Some(target(single)?),
                    fields: Vec::new(),
                });
            }
        }
        let fields = items
            .iter()
            .map(|item| match item.split_once(':') {
                Some((field, ty)) if !field.trim().is_empty() => Ok((field.trim().to_string(), target(ty)?)),
                _ => Err(err(&format!(
                    "{item:?}: a cast of the whole value must be the only one; otherwise each is field:type"
                ))),
            })
            .collect::<Result<_>>()?;
        Ok(Cast {
            whole: None,
            fields,
        })
    }

    fn target_of(&self, field: &str) -> Option<Type> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, t)| *t)
    }
}

/// The schema of a cast: `target`, optional and with a default as `orig` is.
fn cast_schema(orig: &Schema, target: Type, at: &str) -> Result<SchemaRef> {
    let mut builder = SchemaBuilder::new(target);
    if orig.optional {
        builder = builder.optional();
    }
    if let Some(default) = &orig.default {
        builder = builder.default_value(cast(Some(orig), default, target, at)?);
    }
    builder.build()
}

/// `value` (of `schema`, or of its own type without one) cast to `target`; `at` names it.
fn cast(schema: Option<&Schema>, value: &Value, target: Type, at: &str) -> Result<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let Some(source) = schema.map(|s| s.ty).or_else(|| value.schema_type()) else {
        return Ok(Value::Null);
    };
    if !source.is_primitive() {
        return Err(ConnectError::Data(format!(
            "{PURPOSE}: {at}: cannot cast from {source}"
        )));
    }
    let bad = || {
        ConnectError::Data(format!(
            "{PURPOSE}: {at}: cannot cast {} to {target}",
            crate::converter::display(value)
        ))
    };
    let name = schema.and_then(|s| s.name.as_deref());
    if target == Type::String {
        return Ok(Value::String(match (name, value) {
            (Some(logical::DATE), Value::Int32(days)) => iso_date(i64::from(*days)),
            (Some(logical::TIME), Value::Int32(ms)) => iso_time(i64::from(*ms)),
            (Some(logical::TIMESTAMP), Value::Int64(ms)) => {
                let (days, ms) = (
                    ms.div_euclid(logical::MS_PER_DAY),
                    ms.rem_euclid(logical::MS_PER_DAY),
                );
                format!("{}T{}", iso_date(days), iso_time(ms))
            }
            (Some(logical::DECIMAL), Value::Bytes(b)) => {
                let scale = schema.map(logical::decimal_scale).transpose()?.unwrap_or(0);
                logical::decimal_to_string(logical::decimal_unscaled(b)?, scale)
            }
            (_, Value::Bytes(b)) => base64::engine::general_purpose::STANDARD.encode(b),
            _ => crate::converter::display(value),
        }));
    }
    // Everything else goes through one number: an integer, a float, or text to parse.
    enum Num {
        Int(i64),
        Float(f64),
    }
    let num = match value {
        Value::Boolean(b) => Num::Int(i64::from(*b)),
        Value::Float32(f) => Num::Float(f64::from(*f)),
        Value::Float64(f) => Num::Float(*f),
        Value::String(s) => {
            let s = s.trim();
            return match target {
                Type::Boolean => Ok(Value::Boolean(s.eq_ignore_ascii_case("true"))),
                Type::Int8 => s.parse().map(Value::Int8).map_err(|_| bad()),
                Type::Int16 => s.parse().map(Value::Int16).map_err(|_| bad()),
                Type::Int32 => s.parse().map(Value::Int32).map_err(|_| bad()),
                Type::Int64 => s.parse().map(Value::Int64).map_err(|_| bad()),
                Type::Float32 => s.parse().map(Value::Float32).map_err(|_| bad()),
                _ => s.parse().map(Value::Float64).map_err(|_| bad()),
            };
        }
        Value::Bytes(b) if name == Some(logical::DECIMAL) => {
            let scale = schema.map(logical::decimal_scale).transpose()?.unwrap_or(0);
            let unscaled = logical::decimal_unscaled(b)?;
            let unit = 10f64.powi(scale);
            match target {
                Type::Float32 | Type::Float64 => Num::Float(unscaled as f64 / unit),
                // Java's BigDecimal.longValue: drop the fraction, keep the low bits.
                _ if scale >= 0 => {
                    Num::Int((unscaled / 10i128.pow(scale.unsigned_abs().min(38))) as i64)
                }
                _ => {
                    Num::Int(unscaled.wrapping_mul(10i128.pow(scale.unsigned_abs().min(38))) as i64)
                }
            }
        }
        other => match other.as_i64() {
            Some(n) => Num::Int(n),
            None => return Err(bad()),
        },
    };
    // Java's narrowing: integers wrap; floats saturate to int/long first, then wrap.
    Ok(match (num, target) {
        (Num::Int(n), Type::Boolean) => Value::Boolean(n != 0),
        (Num::Float(f), Type::Boolean) => Value::Boolean(f as i64 != 0),
        (Num::Int(n), Type::Int8) => Value::Int8(n as i8),
        (Num::Int(n), Type::Int16) => Value::Int16(n as i16),
        (Num::Int(n), Type::Int32) => Value::Int32(n as i32),
        (Num::Int(n), Type::Int64) => Value::Int64(n),
        (Num::Int(n), Type::Float32) => Value::Float32(n as f32),
        (Num::Int(n), _) => Value::Float64(n as f64),
        (Num::Float(f), Type::Int8) => Value::Int8(f as i32 as i8),
        (Num::Float(f), Type::Int16) => Value::Int16(f as i32 as i16),
        (Num::Float(f), Type::Int32) => Value::Int32(f as i32),
        (Num::Float(f), Type::Int64) => Value::Int64(f as i64),
        (Num::Float(f), Type::Float32) => Value::Float32(f as f32),
        (Num::Float(f), _) => Value::Float64(f),
    })
}

/// `yyyy-MM-dd` of days since the epoch (the proleptic Gregorian calendar).
fn iso_date(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `HH:mm:ss.SSSZ` of milliseconds since midnight, UTC.
fn iso_time(ms: i64) -> String {
    let (s, ms) = (ms / 1000, ms % 1000);
    format!("{:02}:{:02}:{:02}.{ms:03}Z", s / 3600, s / 60 % 60, s % 60)
}

impl PartTransform for Cast {
    fn schemaless(&self, _: &ConnectRecord, value: &Value) -> Result<Value> {
        if let Some(target) = self.whole {
            return cast(None, value, target, "the value");
        }
        let entries = require_map(value, PURPOSE)?;
        let cast_entries = entries
            .into_iter()
            .map(|(k, v)| match self.target_of(k) {
                Some(target) => Ok((k, cast(None, v, target, &format!("field {k}"))?)),
                None => Ok((k, v.clone())),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(to_map(cast_entries))
    }

    fn with_schema(
        &self,
        _: &ConnectRecord,
        schema: &SchemaRef,
        value: &Value,
    ) -> Result<(SchemaRef, Value)> {
        if let Some(target) = self.whole {
            let new_schema = cast_schema(schema, target, "the value")?;
            return Ok((new_schema, cast(Some(schema), value, target, "the value")?));
        }
        let value = require_struct(value, PURPOSE)?;
        let mut builder = struct_basics(schema);
        let mut values = Vec::new();
        for f in &schema.fields {
            let v = value.get_at(f.index);
            match self.target_of(&f.name) {
                Some(target) => {
                    let at = format!("field {}", f.name);
                    builder = builder.field(f.name.clone(), cast_schema(&f.schema, target, &at)?);
                    values.push((f.name.as_str(), cast(Some(&f.schema), v, target, &at)?));
                }
                None => {
                    builder = builder.field(f.name.clone(), f.schema.clone());
                    values.push((f.name.as_str(), v.clone()));
                }
            }
        }
        let new_schema = builder.build()?;
        let out = struct_of(&new_schema, values, PURPOSE)?;
        Ok((new_schema, out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run, schema, struct_value, transform};
    use super::*;

    #[test]
    fn schema_d_fields_change_type() {
        let t = transform(
            "Cast$Value",
            &[(
                "spec",
                "age:int32, score:float64, on:boolean, day:string, amount:int64",
            )],
        )
        .unwrap();
        let s = schema(&[
            ("age", SchemaBuilder::string().optional().build().unwrap()),
            ("score", Schema::primitive(Type::Int16)),
            ("on", Schema::primitive(Type::Float32)),
            ("day", logical::timestamp().build().unwrap()),
            ("amount", logical::decimal(2).build().unwrap()),
            ("keep", Schema::primitive(Type::Int8)),
        ]);
        let v = struct_value(
            &s,
            &[
                ("age", "41".into()),
                ("score", Value::Int16(7)),
                ("on", Value::Float32(0.5)),
                ("day", Value::Int64(86_400_000 + 3_723_004)),
                ("amount", Value::Bytes(logical::decimal_bytes(-1299))),
                ("keep", Value::Int8(1)),
            ],
        );
        let out = run(t.as_ref(), ConnectRecord::new("t", Some(s), v)).unwrap();
        let os = out.value_schema.unwrap();
        assert_eq!(os.field("age").unwrap().schema.ty, Type::Int32);
        assert!(os.field("age").unwrap().schema.optional);
        assert_eq!(os.field("day").unwrap().schema.name, None);
        assert_eq!(os.field("keep").unwrap().schema.ty, Type::Int8);
        let v = out.value.as_struct().unwrap();
        assert_eq!(v.get("age"), Some(&Value::Int32(41)));
        assert_eq!(v.get("score"), Some(&Value::Float64(7.0)));
        // As Java's: 0.5's integer part is 0.
        assert_eq!(v.get("on"), Some(&Value::Boolean(false)));
        assert_eq!(
            v.get("day"),
            Some(&Value::String("1970-01-02T01:02:03.004Z".into()))
        );
        assert_eq!(v.get("amount"), Some(&Value::Int64(-12)));
        assert_eq!(v.get("keep"), Some(&Value::Int8(1)));
    }

    #[test]
    fn whole_keys_and_schemaless_fields_cast() {
        let t = transform("Cast$Key", &[("spec", "int8")]).unwrap();
        let r = ConnectRecord::new("t", None, Value::Null)
            .with_key(Some(Schema::primitive(Type::Int32)), Value::Int32(300));
        let out = run(t.as_ref(), r).unwrap();
        assert_eq!(out.key, Value::Int8(44));
        assert_eq!(out.key_schema.unwrap().ty, Type::Int8);
        let t = transform("Cast$Value", &[("spec", "a:string,b:int16,c:string")]).unwrap();
        let v = Value::string_map([
            ("a", Value::Float64(1.5)),
            ("b", Value::Boolean(true)),
            ("c", Value::Bytes(bytes::Bytes::from_static(b"hi"))),
        ]);
        let out = run(t.as_ref(), ConnectRecord::new("t", None, v)).unwrap();
        assert_eq!(
            out.value,
            Value::string_map([
                ("a", "1.5".into()),
                ("b", Value::Int16(1)),
                ("c", "aGk=".into())
            ])
        );
        assert_eq!(iso_date(-1), "1969-12-31");
        assert_eq!(iso_date(19_000), "2022-01-08");
    }

    #[test]
    fn bad_specs_and_values_are_errors() {
        for spec in ["uuid", "a:int32,int64", "a:bytes", ":int8"] {
            let err = transform("Cast$Value", &[("spec", spec)]).err().unwrap();
            assert!(
                err.to_string().contains("transforms.t.spec"),
                "{spec}: {err}"
            );
        }
        let t = transform("Cast$Value", &[("spec", "n:int32")]).unwrap();
        let v = Value::string_map([("n", "twelve".into())]);
        let err = run(t.as_ref(), ConnectRecord::new("t", None, v)).unwrap_err();
        assert!(
            err.to_string()
                .contains("field n: cannot cast twelve to int32"),
            "{err}"
        );
        let t = transform("Cast$Value", &[("spec", "int32")]).unwrap();
        let err = run(
            t.as_ref(),
            ConnectRecord::new("t", None, Value::Array(vec![])),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot cast from array"), "{err}");
    }
}
