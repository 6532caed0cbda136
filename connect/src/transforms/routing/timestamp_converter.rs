//! `TimestampConverter`: timestamps between strings, unix times and Connect's logical types.

use super::date_format::DateFormat;
use super::{
    data_error, map_get, part_name, set_part, struct_basics, take_part, with_default, Part,
    TransformConfig, Transformation,
};
use crate::data::{logical, Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;

/// The forms a timestamp takes (`target.type`'s values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// A string in `format`.
    String,
    /// An int64 count of `unix.precision` units since the epoch.
    Unix,
    /// The logical `Date` (int32 days).
    Date,
    /// The logical `Time` (int32 ms of the day).
    Time,
    /// The logical `Timestamp` (int64 ms).
    Timestamp,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::String => "string",
            Form::Unix => "unix",
            Form::Date => "Date",
            Form::Time => "Time",
            Form::Timestamp => "Timestamp",
        }
    }

    /// The form a schema stands for: a logical type by name, else string or int64 (unix).
    fn of_schema(schema: &Schema) -> Option<Form> {
        match (schema.name.as_deref(), schema.ty) {
            (Some(logical::TIMESTAMP), _) => Some(Form::Timestamp),
            (Some(logical::DATE), _) => Some(Form::Date),
            (Some(logical::TIME), _) => Some(Form::Time),
            (_, Type::String) => Some(Form::String),
            (_, Type::Int64) => Some(Form::Unix),
            _ => None,
        }
    }

    /// The schema of this form.
    fn schema(self, optional: bool) -> Result<SchemaRef> {
        let builder = match self {
            Form::String => SchemaBuilder::string(),
            Form::Unix => SchemaBuilder::int64(),
            Form::Date => logical::date(),
            Form::Time => logical::time(),
            Form::Timestamp => logical::timestamp(),
        };
        if optional {
            builder.optional()
        } else {
            builder
        }
        .build()
    }
}

/// The unit of unix times (`unix.precision`).
#[derive(Debug, Clone, Copy)]
enum Precision {
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
}

/// Kafka's `TimestampConverter$Key` / `$Value`: converts the whole part, or its struct field
/// / map entry `field`, to `target.type` (`string`, `unix`, `Date`, `Time`, `Timestamp`).
/// Strings are read and written with `format` (a SimpleDateFormat pattern, UTC), unix times
/// counted in `unix.precision` (default `milliseconds`). With a schema, the input's form comes
/// from the schema and the output's schema is the target's (optionality kept); schemaless,
/// strings and int64 unix times are read. Nulls stay null.
pub struct TimestampConverter {
    part: Part,
    field: String,
    target: Form,
    format: Option<DateFormat>,
    precision: Precision,
}

impl TimestampConverter {
    /// From `field`, `target.type`, `format` and `unix.precision`.
    pub fn new(part: Part, config: &TransformConfig) -> Result<TimestampConverter> {
        let field = config.get("field").unwrap_or("").trim().to_string();
        let target = match config.required("target.type")? {
            "string" => Form::String,
            "unix" => Form::Unix,
            "Date" => Form::Date,
            "Time" => Form::Time,
            "Timestamp" => Form::Timestamp,
            other => {
                return Err(config.error(
                    "target.type",
                    other,
                    "expected one of string, unix, Date, Time, Timestamp",
                ))
            }
        };
        let format = match config.get("format").map(str::trim) {
            None | Some("") if target == Form::String => {
                return Err(config.error("format", "", "is required when target.type is string"))
            }
            None | Some("") => None,
            Some(pattern) => Some(
                DateFormat::new(pattern)
                    .map_err(|reason| config.error("format", pattern, &reason))?,
            ),
        };
        let precision = match config.get("unix.precision").unwrap_or("milliseconds") {
            "seconds" => Precision::Seconds,
            "milliseconds" => Precision::Milliseconds,
            "microseconds" => Precision::Microseconds,
            "nanoseconds" => Precision::Nanoseconds,
            other => {
                return Err(config.error(
                    "unix.precision",
                    other,
                    "expected seconds, milliseconds, microseconds or nanoseconds",
                ))
            }
        };
        Ok(TimestampConverter {
            part,
            field,
            target,
            format,
            precision,
        })
    }

    fn format(&self) -> Result<&DateFormat, String> {
        self.format
            .as_ref()
            .ok_or_else(|| "string timestamps need the `format` config".to_string())
    }

    /// `value` in form `from` as ms since the epoch.
    fn read_millis(&self, value: &Value, from: Form) -> Result<i64, String> {
        Ok(match (from, value) {
            (Form::String, Value::String(s)) => self.format()?.parse(s)?,
            (Form::Unix, Value::Int64(n)) => match self.precision {
                // Java's TimeUnit conversions: truncating, saturating.
                Precision::Seconds => n.saturating_mul(1000),
                Precision::Milliseconds => *n,
                Precision::Microseconds => n / 1000,
                Precision::Nanoseconds => n / 1_000_000,
            },
            (Form::Date, Value::Int32(days)) => i64::from(*days) * logical::MS_PER_DAY,
            (Form::Time, Value::Int32(ms)) => i64::from(*ms),
            (Form::Timestamp, Value::Int64(ms)) => *ms,
            _ => {
                return Err(format!(
                    "a {} value is not a {} timestamp",
                    value.type_name(),
                    from.name()
                ))
            }
        })
    }

    /// `ms` in the target form.
    fn write_millis(&self, ms: i64) -> Result<Value, String> {
        Ok(match self.target {
            Form::String => Value::String(self.format()?.format(ms)?),
            Form::Unix => Value::Int64(match self.precision {
                Precision::Seconds => ms / 1000,
                Precision::Milliseconds => ms,
                Precision::Microseconds => ms.saturating_mul(1000),
                Precision::Nanoseconds => ms.saturating_mul(1_000_000),
            }),
            Form::Date => Value::Int32(
                i32::try_from(ms.div_euclid(logical::MS_PER_DAY))
                    .map_err(|_| format!("{ms} ms is out of the range of dates"))?,
            ),
            // Less than a day's ms always fits.
            Form::Time => Value::Int32(ms.rem_euclid(logical::MS_PER_DAY) as i32),
            Form::Timestamp => Value::Int64(ms),
        })
    }

    /// `value` converted to the target; its form is `from`, or inferred when schemaless.
    fn convert(&self, value: &Value, from: Option<Form>) -> Result<Value, String> {
        if let Value::Null = value {
            return Ok(Value::Null);
        }
        let from = match (from, value) {
            (Some(form), _) => form,
            (None, Value::String(_)) => Form::String,
            (None, Value::Int64(_)) => Form::Unix,
            (None, other) => {
                return Err(format!(
                    "a schemaless {} value is not a timestamp (strings and int64 unix times are)",
                    other.type_name()
                ))
            }
        };
        self.write_millis(self.read_millis(value, from)?)
    }

    fn schema_form(schema: &Schema, at: &str) -> Result<Form, String> {
        Form::of_schema(schema).ok_or_else(|| {
            format!(
                "{at}: a {} schema{} is not a timestamp",
                schema.ty,
                schema
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })
    }

    /// `old` on `schema` (which has `field` converted).
    fn convert_struct(&self, old: &Struct, schema: &SchemaRef) -> Result<Struct> {
        let mut new = Struct::new(schema.clone());
        for field in &old.schema().fields {
            let mut value = old.get_at(field.index).clone();
            if field.name == self.field {
                let form =
                    Self::schema_form(&field.schema, &field.name).map_err(ConnectError::Data)?;
                value = self
                    .convert(&value, Some(form))
                    .map_err(|e| ConnectError::Data(format!("field {}: {e}", field.name)))?;
            }
            new.put(&field.name, value)?;
        }
        Ok(new)
    }

    /// The struct schema with `field`'s schema the target's.
    fn convert_schema(&self, schema: &Schema) -> Result<SchemaRef> {
        let mut builder = struct_basics(schema);
        for field in &schema.fields {
            let field_schema = if field.name == self.field {
                self.target.schema(field.schema.optional)?
            } else {
                field.schema.clone()
            };
            builder = builder.field(field.name.clone(), field_schema);
        }
        if schema.optional {
            builder = builder.optional();
        }
        with_default(builder.build()?, schema.default.as_ref(), |old, new| {
            self.convert_struct(old, new)
        })
    }

    fn apply_part(
        &self,
        schema: Option<SchemaRef>,
        value: Value,
    ) -> Result<(Option<SchemaRef>, Value), String> {
        let part = part_name(self.part);
        match schema {
            None if self.field.is_empty() || value == Value::Null => {
                Ok((None, self.convert(&value, None)?))
            }
            None => match value {
                Value::Map(mut entries) => {
                    let converted = self
                        .convert(map_get(&entries, &self.field).unwrap_or(&Value::Null), None)
                        .map_err(|e| format!("entry {}: {e}", self.field))?;
                    // As Kafka's `put`: the entry is set, added when missing.
                    match entries
                        .iter_mut()
                        .find(|(k, _)| matches!(k, Value::String(s) if *s == self.field))
                    {
                        Some(entry) => entry.1 = converted,
                        None => entries.push((Value::String(self.field.clone()), converted)),
                    }
                    Ok((None, Value::Map(entries)))
                }
                other => Err(format!(
                    "a schemaless {part} must be a map to convert field {}, not {}",
                    self.field,
                    other.type_name()
                )),
            },
            Some(schema) if self.field.is_empty() => {
                let form = Self::schema_form(&schema, part)?;
                let value = self.convert(&value, Some(form))?;
                let schema = self
                    .target
                    .schema(schema.optional)
                    .map_err(|e| e.to_string())?;
                Ok((Some(schema), value))
            }
            Some(schema) => {
                if schema.ty != Type::Struct {
                    return Err(format!(
                        "the {part} schema is {}, not a struct with field {}",
                        schema.ty, self.field
                    ));
                }
                let updated = self.convert_schema(&schema).map_err(|e| e.to_string())?;
                let value = match value {
                    Value::Null => Value::Null,
                    Value::Struct(old) => Value::Struct(
                        self.convert_struct(&old, &updated)
                            .map_err(|e| e.to_string())?,
                    ),
                    other => {
                        return Err(format!(
                            "a {} {part} for a struct schema",
                            other.type_name()
                        ))
                    }
                };
                Ok((Some(updated), value))
            }
        }
    }
}

impl Transformation for TimestampConverter {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let (schema, value) = take_part(&mut record, self.part);
        let (schema, value) = self
            .apply_part(schema, value)
            .map_err(|e| data_error("TimestampConverter", &record.topic, e))?;
        set_part(&mut record, self.part, schema, value);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_config;
    use super::*;

    // 2024-03-05T07:08:09.123Z
    const MS: i64 = 1_709_622_489_123;
    const DAYS: i32 = 19_787;
    const MS_OF_DAY: i32 = ((7 * 60 + 8) * 60 + 9) * 1000 + 123;

    fn converter(part: Part, pairs: &[(&str, &str)]) -> TimestampConverter {
        TimestampConverter::new(part, &test_config(pairs)).unwrap()
    }

    fn event_schema(ts: SchemaRef) -> SchemaRef {
        SchemaBuilder::struct_()
            .name("event")
            .field("id", Schema::primitive(Type::Int32))
            .field("ts", ts)
            .build()
            .unwrap()
    }

    #[test]
    fn a_whole_schemad_value_converts_between_every_form() {
        let iso = "yyyy-MM-dd'T'HH:mm:ss.SSSX";
        let cases: Vec<(SchemaRef, Value)> = vec![
            (logical::timestamp().build().unwrap(), Value::Int64(MS)),
            (Schema::primitive(Type::Int64), Value::Int64(MS)),
            (
                Schema::primitive(Type::String),
                Value::String("2024-03-05T07:08:09.123Z".into()),
            ),
        ];
        for (schema, value) in cases {
            for (target, expected, name) in [
                ("Timestamp", Value::Int64(MS), Some(logical::TIMESTAMP)),
                ("Date", Value::Int32(DAYS), Some(logical::DATE)),
                ("Time", Value::Int32(MS_OF_DAY), Some(logical::TIME)),
                ("unix", Value::Int64(MS), None),
                (
                    "string",
                    Value::String("2024-03-05T07:08:09.123Z".into()),
                    None,
                ),
            ] {
                let t = converter(Part::Value, &[("target.type", target), ("format", iso)]);
                let out = t
                    .apply(ConnectRecord::new("t", Some(schema.clone()), value.clone()))
                    .unwrap()
                    .unwrap();
                assert_eq!(out.value, expected, "{schema:?} to {target}");
                let out_schema = out.value_schema.unwrap();
                assert_eq!(out_schema.name.as_deref(), name);
                out_schema.validate(&out.value, "value").unwrap();
            }
        }
        // Dates and times in: a date is midnight, a time is on 1970-01-01.
        let t = converter(Part::Value, &[("target.type", "unix")]);
        let date = ConnectRecord::new(
            "t",
            Some(logical::date().build().unwrap()),
            Value::Int32(DAYS),
        );
        assert_eq!(
            t.apply(date).unwrap().unwrap().value,
            Value::Int64(i64::from(DAYS) * logical::MS_PER_DAY)
        );
        let time = ConnectRecord::new(
            "t",
            Some(logical::time().build().unwrap()),
            Value::Int32(MS_OF_DAY),
        );
        assert_eq!(
            t.apply(time).unwrap().unwrap().value,
            Value::Int64(i64::from(MS_OF_DAY))
        );
    }

    #[test]
    fn unix_precision_scales_in_and_out() {
        let seconds = converter(
            Part::Value,
            &[("target.type", "Timestamp"), ("unix.precision", "seconds")],
        );
        let out = seconds
            .apply(ConnectRecord::new("t", None, Value::Int64(1_709_622_489)))
            .unwrap()
            .unwrap();
        assert_eq!(out.value, Value::Int64(1_709_622_489_000));
        let nanos = converter(
            Part::Value,
            &[("target.type", "unix"), ("unix.precision", "microseconds")],
        );
        let out = nanos
            .apply(ConnectRecord::new(
                "t",
                Some(logical::timestamp().build().unwrap()),
                Value::Int64(MS),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(out.value, Value::Int64(MS * 1000));
        // Before the epoch, a date is the day the instant falls in.
        let date = converter(Part::Value, &[("target.type", "Date")]);
        let out = date
            .apply(ConnectRecord::new("t", None, Value::Int64(-1)))
            .unwrap()
            .unwrap();
        assert_eq!(out.value, Value::Int32(-1));
    }

    #[test]
    fn a_struct_field_converts_and_its_schema_follows() {
        let t = converter(
            Part::Value,
            &[
                ("field", "ts"),
                ("target.type", "string"),
                ("format", "yyyy-MM-dd"),
            ],
        );
        let schema = event_schema(logical::timestamp().optional().build().unwrap());
        let mut event = Struct::new(schema.clone());
        event.put("id", Value::Int32(1)).unwrap();
        event.put("ts", Value::Int64(MS)).unwrap();
        let out = t
            .apply(ConnectRecord::new(
                "t",
                Some(schema.clone()),
                Value::Struct(event),
            ))
            .unwrap()
            .unwrap();
        let out_schema = out.value_schema.clone().unwrap();
        let ts = &out_schema.field("ts").unwrap().schema;
        assert_eq!(
            (ts.ty, ts.optional, ts.name.as_deref()),
            (Type::String, true, None)
        );
        assert_eq!(out_schema.name.as_deref(), Some("event"));
        let Value::Struct(s) = &out.value else {
            panic!("{:?}", out.value)
        };
        assert_eq!(s.get("ts"), Some(&Value::String("2024-03-05".into())));
        assert_eq!(s.get("id"), Some(&Value::Int32(1)));
        // A null field and a null struct stay null, with the new schema.
        let empty = Struct::new(schema.clone());
        let mut with_id = empty;
        with_id.put("id", Value::Int32(2)).unwrap();
        let out = t
            .apply(ConnectRecord::new(
                "t",
                Some(schema.clone()),
                Value::Struct(with_id),
            ))
            .unwrap()
            .unwrap();
        let Value::Struct(s) = &out.value else {
            panic!("{:?}", out.value)
        };
        assert_eq!(s.get("ts"), Some(&Value::Null));
        let out = t
            .apply(ConnectRecord::new("t", Some(schema), Value::Null))
            .unwrap()
            .unwrap();
        assert_eq!(out.value, Value::Null);
        assert_eq!(
            out.value_schema.unwrap().field("ts").unwrap().schema.ty,
            Type::String
        );
    }

    #[test]
    fn keys_and_schemaless_maps_convert() {
        let t = converter(
            Part::Key,
            &[
                ("field", "ts"),
                ("target.type", "Timestamp"),
                ("format", "yyyyMMdd"),
            ],
        );
        let key = Value::string_map([
            ("ts", Value::String("20240305".into())),
            ("n", Value::Int32(1)),
        ]);
        let out = t
            .apply(ConnectRecord::new("t", None, "v".into()).with_key(None, key))
            .unwrap()
            .unwrap();
        let expected = Value::string_map([
            ("ts", Value::Int64(MS - MS % logical::MS_PER_DAY)),
            ("n", Value::Int32(1)),
        ]);
        assert_eq!(out.key, expected);
        assert_eq!(out.value, Value::String("v".into()));
        // A null key passes through.
        let out = t
            .apply(ConnectRecord::new("t", None, "v".into()))
            .unwrap()
            .unwrap();
        assert_eq!(out.key, Value::Null);
    }

    #[test]
    fn bad_configs_and_data_are_errors_naming_them() {
        for (pairs, key) in [
            (vec![("target.type", "date")], "target.type"),
            (vec![("target.type", "string")], "format"),
            (
                vec![("target.type", "unix"), ("format", "yyyy-ww")],
                "format",
            ),
            (
                vec![("target.type", "unix"), ("unix.precision", "minutes")],
                "unix.precision",
            ),
            (vec![], "target.type"),
        ] {
            let err = TimestampConverter::new(Part::Value, &test_config(&pairs))
                .err()
                .unwrap();
            assert!(
                err.to_string().contains(&format!("transforms.t.{key}")),
                "{err}"
            );
        }
        let t = converter(Part::Value, &[("field", "id"), ("target.type", "unix")]);
        let schema = event_schema(Schema::primitive(Type::Int64));
        let mut event = Struct::new(schema.clone());
        event.put("id", Value::Int32(1)).unwrap();
        event.put("ts", Value::Int64(1)).unwrap();
        let err = t
            .apply(ConnectRecord::new(
                "orders",
                Some(schema),
                Value::Struct(event),
            ))
            .unwrap_err();
        assert!(
            err.to_string().contains("orders") && err.to_string().contains("id: a int32 schema"),
            "{err}"
        );
        let err = t
            .apply(ConnectRecord::new("orders", None, "text".into()))
            .unwrap_err();
        assert!(err.to_string().contains("must be a map"), "{err}");
        let whole = converter(Part::Value, &[("target.type", "unix")]);
        let err = whole
            .apply(ConnectRecord::new("orders", None, "2024".into()))
            .unwrap_err();
        assert!(err.to_string().contains("need the `format`"), "{err}");
        let err = whole
            .apply(ConnectRecord::new("orders", None, Value::Int32(5)))
            .unwrap_err();
        assert!(err.to_string().contains("schemaless int32"), "{err}");
    }
}
