//! Columns: what a database type is read as, and the Connect schema it becomes (Confluent's
//! `GenericDatabaseDialect.addFieldToSchema`, with `numeric.mapping`).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use sluice_connect::data::{logical, SchemaBuilder, SchemaRef, Value};
use sluice_connect::{ConnectError, Result};

use super::database::Dialect;

/// What a column holds, as far as reading it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `BOOLEAN` (MySQL's `TINYINT(1)`).
    Boolean,
    /// An integer of `bytes` bytes (1, 2, 4 or 8); `unsigned` for MySQL's unsigned ones.
    Integer {
        /// Its width in bytes.
        bytes: u8,
        /// Whether it is unsigned.
        unsigned: bool,
    },
    /// `REAL` / `FLOAT`.
    Float32,
    /// `DOUBLE PRECISION` / `DOUBLE`.
    Float64,
    /// `NUMERIC` / `DECIMAL` with a precision and scale (none when the type declares none,
    /// as PostgreSQL's unconstrained `NUMERIC`).
    Decimal {
        /// Digits in all.
        precision: Option<u32>,
        /// Digits after the point.
        scale: Option<i32>,
    },
    /// Character types.
    String,
    /// Binary types.
    Bytes,
    /// `DATE`.
    Date,
    /// `TIME`.
    Time,
    /// `TIMESTAMP` / `DATETIME` without a time zone: read in `db.timezone`.
    Timestamp,
    /// `TIMESTAMP WITH TIME ZONE` (and MySQL's `TIMESTAMP`, stored in UTC).
    TimestampTz,
    /// Any other type (JSON, UUID, intervals, enums, ...): read as its text.
    Text,
    /// A timestamp read as nanoseconds since the epoch (`tz`: with time zone): the source's
    /// offsets, which keep the precision a `Timestamp` (milliseconds) would lose.
    TimestampNanos {
        /// Whether the column is with time zone.
        tz: bool,
    },
}

/// How `NUMERIC`/`DECIMAL` columns become Connect types (Confluent's `numeric.mapping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NumericMapping {
    /// Always the `Decimal` logical type.
    #[default]
    None,
    /// Integers when the scale is 0 and the precision fits (below 19 digits).
    PrecisionOnly,
    /// Integers as above, `float64` when there are digits after the point and the precision
    /// is below 19.
    BestFit,
    /// As `best_fit`, but `float64` for every column with digits after the point.
    BestFitEagerDouble,
}

impl NumericMapping {
    /// Parses a `numeric.mapping` value.
    pub fn parse(value: &str) -> Result<NumericMapping> {
        Ok(match value.trim().to_ascii_lowercase().as_str() {
            "none" | "" => NumericMapping::None,
            "precision_only" => NumericMapping::PrecisionOnly,
            "best_fit" => NumericMapping::BestFit,
            "best_fit_eager_double" => NumericMapping::BestFitEagerDouble,
            _ => {
                return Err(ConnectError::config(
                    "numeric.mapping",
                    value,
                    "Invalid value; must be one of none, precision_only, best_fit, best_fit_eager_double",
                ))
            }
        })
    }
}

/// What a decimal column's values are turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The column's own kind.
    Native,
    /// An integer of this many bytes.
    Integer(u8),
    /// A `float64`.
    Float64,
    /// A `Decimal` of this scale.
    Decimal(i32),
}

/// A column of a table or a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// The database's name for its type (for messages).
    pub type_name: String,
    /// What it holds.
    pub kind: ColumnKind,
    /// Whether it may be null.
    pub nullable: bool,
}

impl Column {
    /// The Connect type its values become under `mapping`.
    pub fn target(&self, mapping: NumericMapping) -> Target {
        let ColumnKind::Decimal { precision, scale } = self.kind else {
            return Target::Native;
        };
        let int_of = |p: u32| match p {
            0..=2 => 1,
            3..=4 => 2,
            5..=9 => 4,
            _ => 8,
        };
        match (mapping, precision, scale) {
            (NumericMapping::None, _, Some(s)) => Target::Decimal(s),
            (NumericMapping::None, _, None) => Target::Decimal(0),
            (_, Some(p), Some(s)) if s <= 0 && p < 19 => Target::Integer(int_of(p)),
            (NumericMapping::BestFitEagerDouble, _, Some(s)) if s > 0 => Target::Float64,
            (NumericMapping::BestFit, Some(p), Some(s)) if s > 0 && p < 19 => Target::Float64,
            // Unconstrained NUMERIC: any precision and scale; a double is the best fit.
            (NumericMapping::BestFit | NumericMapping::BestFitEagerDouble, None, None) => {
                Target::Float64
            }
            (_, _, s) => Target::Decimal(s.unwrap_or(0)),
        }
    }

    /// The field schema of this column under `mapping`.
    pub fn schema(&self, mapping: NumericMapping) -> SchemaRef {
        let builder = match (self.kind, self.target(mapping)) {
            (_, Target::Integer(1)) => SchemaBuilder::int8(),
            (_, Target::Integer(2)) => SchemaBuilder::int16(),
            (_, Target::Integer(4)) => SchemaBuilder::int32(),
            (_, Target::Integer(_)) | (ColumnKind::TimestampNanos { .. }, _) => {
                SchemaBuilder::int64()
            }
            (_, Target::Float64) => SchemaBuilder::float64(),
            (_, Target::Decimal(scale)) => logical::decimal(scale),
            (ColumnKind::Boolean, _) => SchemaBuilder::boolean(),
            (ColumnKind::Integer { bytes, unsigned }, _) => match (bytes, unsigned) {
                (1, false) => SchemaBuilder::int8(),
                (1, true) | (2, false) => SchemaBuilder::int16(),
                (2, true) | (3, _) | (4, false) => SchemaBuilder::int32(),
                (8, true) => logical::decimal(0),
                _ => SchemaBuilder::int64(),
            },
            (ColumnKind::Float32, _) => SchemaBuilder::float32(),
            (ColumnKind::Float64, _) => SchemaBuilder::float64(),
            (ColumnKind::Decimal { .. }, _) => logical::decimal(0),
            (ColumnKind::String | ColumnKind::Text, _) => SchemaBuilder::string(),
            (ColumnKind::Bytes, _) => SchemaBuilder::bytes(),
            (ColumnKind::Date, _) => logical::date(),
            (ColumnKind::Time, _) => logical::time(),
            (ColumnKind::Timestamp | ColumnKind::TimestampTz, _) => logical::timestamp(),
        };
        let builder = if self.nullable {
            builder.optional()
        } else {
            builder
        };
        // The builders above are all valid schemas.
        builder.build().unwrap_or_else(|_| {
            sluice_connect::data::Schema::optional_primitive(sluice_connect::data::Type::String)
        })
    }
}

/// The kind of a column from its database type: `name` as information_schema's `data_type`,
/// PRAGMA `table_info`'s declared type or the driver's type name, `full` the whole declaration
/// (MySQL's `column_type`, `tinyint(1) unsigned`), with the precision and scale when known.
pub fn kind_of(
    dialect: Dialect,
    name: &str,
    full: &str,
    precision: Option<u32>,
    scale: Option<i32>,
) -> ColumnKind {
    let lower = name.trim().to_ascii_lowercase();
    let full = full.trim().to_ascii_lowercase();
    let unsigned = full.contains("unsigned");
    let int = |bytes| ColumnKind::Integer { bytes, unsigned };
    let decimal = || ColumnKind::Decimal {
        precision: precision.filter(|p| *p > 0),
        scale: if precision.unwrap_or(0) > 0 {
            scale
        } else {
            None
        },
    };
    match dialect {
        Dialect::Postgres => match lower.as_str() {
            "boolean" | "bool" => ColumnKind::Boolean,
            "smallint" | "int2" | "smallserial" => int(2),
            "integer" | "int" | "int4" | "serial" => int(4),
            "bigint" | "int8" | "bigserial" => int(8),
            "real" | "float4" => ColumnKind::Float32,
            "double precision" | "float8" => ColumnKind::Float64,
            "numeric" | "decimal" => decimal(),
            "text" | "character varying" | "varchar" | "character" | "char" | "bpchar" | "name" => {
                ColumnKind::String
            }
            "bytea" => ColumnKind::Bytes,
            "date" => ColumnKind::Date,
            "time without time zone" | "time" => ColumnKind::Time,
            "timestamp without time zone" | "timestamp" => ColumnKind::Timestamp,
            "timestamp with time zone" | "timestamptz" => ColumnKind::TimestampTz,
            _ => ColumnKind::Text,
        },
        Dialect::MySql => match lower.as_str() {
            "tinyint" | "boolean" if full.starts_with("tinyint(1)") || lower == "boolean" => {
                ColumnKind::Boolean
            }
            "tinyint" => int(1),
            "smallint" => int(2),
            "mediumint" => ColumnKind::Integer { bytes: 3, unsigned },
            "int" | "integer" => int(4),
            "bigint" => int(8),
            "float" => ColumnKind::Float32,
            "double" | "real" => ColumnKind::Float64,
            "decimal" | "numeric" => decimal(),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                ColumnKind::String
            }
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                ColumnKind::Bytes
            }
            "date" => ColumnKind::Date,
            "time" => ColumnKind::Time,
            "datetime" => ColumnKind::Timestamp,
            "timestamp" => ColumnKind::TimestampTz,
            _ => ColumnKind::Text,
        },
        Dialect::Sqlite => sqlite_kind(&lower),
    }
}

/// SQLite's declared types, by its affinity rules, with the names people declare for dates,
/// decimals and booleans read as those.
fn sqlite_kind(declared: &str) -> ColumnKind {
    let base = declared.split('(').next().unwrap_or("").trim();
    let (precision, scale) = parenthesised(declared);
    match base {
        "boolean" | "bool" => ColumnKind::Boolean,
        "date" => ColumnKind::Date,
        "time" => ColumnKind::Time,
        "datetime" | "timestamp" => ColumnKind::Timestamp,
        "decimal" | "numeric" => ColumnKind::Decimal {
            precision,
            scale: precision.map(|_| scale.unwrap_or(0)),
        },
        _ if base.contains("int") => ColumnKind::Integer {
            bytes: 8,
            unsigned: false,
        },
        _ if base.contains("char") || base.contains("clob") || base.contains("text") => {
            ColumnKind::String
        }
        _ if base.contains("blob") => ColumnKind::Bytes,
        _ if base.contains("real") || base.contains("floa") || base.contains("doub") => {
            ColumnKind::Float64
        }
        _ => ColumnKind::Text,
    }
}

/// The numbers of a declaration such as `decimal(10,2)`.
fn parenthesised(declared: &str) -> (Option<u32>, Option<i32>) {
    let Some(inner) = declared
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inner, _)| inner)
    else {
        return (None, None);
    };
    let mut parts = inner.split(',').map(str::trim);
    let precision = parts.next().and_then(|p| p.parse().ok());
    let scale = parts.next().and_then(|s| s.parse().ok());
    (precision, scale)
}

/// A decimal's text as the Connect value of `target`, or an error naming the column.
pub fn decimal_value(text: &str, target: Target, column: &Column) -> Result<Value> {
    let bad = |why: String| {
        ConnectError::Data(format!(
            "column {} ({}): value {text} {why}",
            column.name, column.type_name
        ))
    };
    match target {
        Target::Integer(bytes) => {
            let whole = text.split_once('.').map_or(text, |(int, frac)| {
                if frac.bytes().all(|b| b == b'0') {
                    int
                } else {
                    text
                }
            });
            let n: i64 = whole
                .parse()
                .map_err(|_| bad("is not an integer of 64 bits".into()))?;
            Ok(match bytes {
                1 => Value::Int8(i8::try_from(n).map_err(|e| bad(e.to_string()))?),
                2 => Value::Int16(i16::try_from(n).map_err(|e| bad(e.to_string()))?),
                4 => Value::Int32(i32::try_from(n).map_err(|e| bad(e.to_string()))?),
                _ => Value::Int64(n),
            })
        }
        Target::Float64 => text
            .parse::<f64>()
            .map(Value::Float64)
            .map_err(|e| bad(e.to_string())),
        Target::Decimal(_) | Target::Native => {
            let scale = match target {
                Target::Decimal(s) => s,
                _ => 0,
            };
            // Trailing zeros past the scale carry nothing (PostgreSQL prints NUMERIC with its
            // display scale); other digits past it would be lost, so they are an error.
            let trimmed = match text.split_once('.') {
                Some((int, frac)) if frac.len() > scale.max(0) as usize => {
                    let keep = frac.trim_end_matches('0');
                    if keep.len() > scale.max(0) as usize {
                        return Err(bad(format!(
                            "has more digits after the point than the column's scale {scale} \
                             (declare the column NUMERIC(p,s), or set numeric.mapping=best_fit)"
                        )));
                    }
                    if keep.is_empty() {
                        int.to_string()
                    } else {
                        format!("{int}.{keep}")
                    }
                }
                _ => text.to_string(),
            };
            let unscaled =
                logical::decimal_parse(&trimmed, scale).map_err(|e| bad(e.to_string()))?;
            Ok(Value::Bytes(logical::decimal_bytes(unscaled)))
        }
    }
}

/// Days since the epoch.
pub fn date_value(date: NaiveDate) -> Value {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Value::Int32((date - epoch).num_days() as i32)
}

/// Milliseconds since midnight.
pub fn time_value(time: NaiveTime) -> Value {
    Value::Int32((time.num_seconds_from_midnight() * 1000 + time.nanosecond() / 1_000_000) as i32)
}

/// Milliseconds since the epoch of a UTC date and time.
pub fn timestamp_value(at: NaiveDateTime) -> Value {
    Value::Int64(at.and_utc().timestamp_millis())
}

/// PostgreSQL's binary `NUMERIC` as decimal text (`-12.340`), or None for NaN and infinities.
pub fn pg_numeric_text(bytes: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> {
        Some(i16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]))
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)? as usize;
    if sign != 0x0000 && sign != 0x4000 {
        return None;
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<_>>()?;
    let mut int = String::new();
    for group in 0..=weight.max(-1) {
        let d = digits.get(group as usize).copied().unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int.push_str(&d.to_string());
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut group = weight + 1;
    while frac.len() < dscale {
        let d = if group < 0 {
            0
        } else {
            digits.get(group as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        group += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

/// A PostgreSQL UUID's 16 bytes as its text.
pub fn uuid_text(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn postgres_numerics_read_as_their_text() {
        // 12345.678 = [1, 2345, 6780] weight 1, dscale 3.
        assert_eq!(
            pg_numeric_text(&numeric(3, 1, 0, 3, &[1, 2345, 6780])).as_deref(),
            Some("12345.678")
        );
        // -0.0012 = [12] weight -1, dscale 4.
        assert_eq!(
            pg_numeric_text(&numeric(1, -1, 0x4000, 4, &[12])).as_deref(),
            Some("-0.0012")
        );
        assert_eq!(
            pg_numeric_text(&numeric(0, 0, 0, 2, &[])).as_deref(),
            Some("0.00")
        );
        // 10000 = [1] weight 1.
        assert_eq!(
            pg_numeric_text(&numeric(1, 1, 0, 0, &[1])).as_deref(),
            Some("10000")
        );
        assert_eq!(pg_numeric_text(&numeric(0, 0, 0xC000, 0, &[])), None);
        assert_eq!(pg_numeric_text(&[0, 1]), None);
    }

    #[test]
    fn numeric_mapping_picks_integers_doubles_or_decimals() {
        let col = |precision, scale| Column {
            name: "n".into(),
            type_name: "numeric".into(),
            kind: ColumnKind::Decimal { precision, scale },
            nullable: false,
        };
        assert_eq!(
            col(Some(5), Some(0)).target(NumericMapping::None),
            Target::Decimal(0)
        );
        assert_eq!(
            col(Some(5), Some(0)).target(NumericMapping::PrecisionOnly),
            Target::Integer(4)
        );
        assert_eq!(
            col(Some(10), Some(2)).target(NumericMapping::PrecisionOnly),
            Target::Decimal(2)
        );
        assert_eq!(
            col(Some(10), Some(2)).target(NumericMapping::BestFit),
            Target::Float64
        );
        assert_eq!(
            col(Some(30), Some(2)).target(NumericMapping::BestFit),
            Target::Decimal(2)
        );
        assert_eq!(
            col(Some(30), Some(2)).target(NumericMapping::BestFitEagerDouble),
            Target::Float64
        );
        let c = col(Some(10), Some(2));
        assert_eq!(
            decimal_value("12.50", Target::Decimal(2), &c).unwrap(),
            Value::Bytes(logical::decimal_bytes(1250))
        );
        assert_eq!(
            decimal_value("12.500", Target::Decimal(2), &c).unwrap(),
            Value::Bytes(logical::decimal_bytes(1250))
        );
        let lost = decimal_value("1.25", Target::Decimal(0), &c).unwrap_err();
        assert!(lost.to_string().contains("scale 0"), "{lost}");
        assert_eq!(
            decimal_value("7", Target::Integer(1), &c).unwrap(),
            Value::Int8(7)
        );
        assert!(decimal_value("300", Target::Integer(1), &c).is_err());
    }

    #[test]
    fn database_types_map_to_kinds() {
        assert_eq!(
            kind_of(Dialect::MySql, "tinyint", "tinyint(1)", Some(3), Some(0)),
            ColumnKind::Boolean
        );
        assert_eq!(
            kind_of(Dialect::MySql, "int", "int(10) unsigned", Some(10), Some(0)),
            ColumnKind::Integer {
                bytes: 4,
                unsigned: true
            }
        );
        assert_eq!(
            kind_of(Dialect::Postgres, "numeric", "", None, None),
            ColumnKind::Decimal {
                precision: None,
                scale: None
            }
        );
        assert_eq!(
            kind_of(Dialect::Sqlite, "DECIMAL(10,2)", "", None, None),
            ColumnKind::Decimal {
                precision: Some(10),
                scale: Some(2)
            }
        );
        assert_eq!(
            kind_of(Dialect::Sqlite, "VARCHAR(20)", "", None, None),
            ColumnKind::String
        );
        assert_eq!(
            kind_of(Dialect::Postgres, "jsonb", "", None, None),
            ColumnKind::Text
        );
    }
}
