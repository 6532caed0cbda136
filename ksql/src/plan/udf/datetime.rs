//! ksqlDB's date and time functions (`DATE / TIME`): `TIMESTAMP`s as milliseconds since the
//! epoch, `DATE`s as days, `TIME`s as milliseconds of the day, patterns as Java's
//! `DateTimeFormatter` takes them (`java_time.rs`; `PARSE_DATE`'s as `SimpleDateFormat`'s,
//! `simple_date.rs`), zones by `java.time.ZoneId` IDs.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, Date32Builder, Int32Array, Int32Builder, Int64Array,
    Int64Builder, StringArray, StringBuilder, Time32MillisecondArray, Time32MillisecondBuilder,
    TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use datafusion_common::Result as DfResult;

use super::java_time::{self, Pattern, Temporal, Zone};
use super::simple_date::{self, SimplePattern};
use super::{
    arg, each_row, opt_arg, overloads, returns, sig, Call, KsqlUdf, Memo, Overload, Param,
};

const CATEGORY: &str = "DATE / TIME";

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

pub(super) fn functions() -> Vec<KsqlUdf> {
    use Param::{Bigint, Date, Int, String as Str, Time, Timestamp};
    const MILLIS_PATTERN: &[Overload] = &[sig(&[Bigint, Str]), sig(&[Bigint, Str, Str])];
    const STRING_PATTERN: &[Overload] = &[sig(&[Str, Str]), sig(&[Str, Str, Str])];
    const TIMESTAMP_PATTERN: &[Overload] = &[sig(&[Timestamp, Str]), sig(&[Timestamp, Str, Str])];
    vec![
        KsqlUdf::new(
            "TIMESTAMPTOSTRING",
            "timestamptostring",
            CATEGORY,
            "Converts a number of milliseconds since 1970-01-01 00:00:00 UTC/GMT into the string representation of the timestamp in the given format. The system default time zone (UTC on a Sluice node) is used when no time zone is explicitly provided.",
            MILLIS_PATTERN,
            returns!(DataType::Utf8),
            timestamp_to_string,
        ),
        KsqlUdf::new(
            "STRINGTOTIMESTAMP",
            "stringtotimestamp",
            CATEGORY,
            "Converts a string representation of a date in the given format into the number of milliseconds since 1970-01-01 00:00:00 UTC/GMT. The system default time zone (UTC on a Sluice node) is used when no time zone is explicitly provided.",
            STRING_PATTERN,
            returns!(DataType::Int64),
            string_to_timestamp,
        ),
        KsqlUdf::new(
            "FORMAT_TIMESTAMP",
            "format_timestamp",
            CATEGORY,
            "Converts a TIMESTAMP value into the string representation of the timestamp in the given format.",
            TIMESTAMP_PATTERN,
            returns!(DataType::Utf8),
            format_timestamp,
        ),
        KsqlUdf::new(
            "PARSE_TIMESTAMP",
            "parse_timestamp",
            CATEGORY,
            "Converts a string representation of a date in the given format into a TIMESTAMP value.",
            STRING_PATTERN,
            returns!(TIMESTAMP),
            parse_timestamp,
        ),
        KsqlUdf::new(
            "UNIX_TIMESTAMP",
            "unix_timestamp",
            CATEGORY,
            "Returns the current number of milliseconds for the system since 1970-01-01 00:00:00 UTC/GMT, or those of the TIMESTAMP given.",
            overloads![sig(&[]), sig(&[Timestamp])],
            returns!(DataType::Int64),
            unix_timestamp,
        )
        .volatile(),
        KsqlUdf::new(
            "UNIX_DATE",
            "unix_date",
            CATEGORY,
            "Returns the current number of days for the system since 1970-01-01 00:00:00 UTC/GMT, or those of the DATE given.",
            overloads![sig(&[]), sig(&[Date])],
            returns!(DataType::Int32),
            unix_date,
        )
        .volatile(),
        KsqlUdf::new(
            "FROM_UNIXTIME",
            "from_unixtime",
            CATEGORY,
            "Converts the number of milliseconds since 1970-01-01 00:00:00 UTC/GMT into a TIMESTAMP value.",
            overloads![sig(&[Bigint])],
            returns!(TIMESTAMP),
            from_unixtime,
        ),
        KsqlUdf::new(
            "DATETOSTRING",
            "datetostring",
            CATEGORY,
            "Converts the number of days since 1970-01-01 00:00:00 UTC/GMT to a date string using the given format pattern.",
            overloads![sig(&[Int, Str])],
            returns!(DataType::Utf8),
            date_to_string,
        ),
        KsqlUdf::new(
            "STRINGTODATE",
            "stringtodate",
            CATEGORY,
            "Converts a string representation of a date in the given format into the number of days since 1970-01-01 00:00:00 UTC/GMT.",
            overloads![sig(&[Str, Str])],
            returns!(DataType::Int32),
            string_to_date,
        ),
        KsqlUdf::new(
            "FORMAT_DATE",
            "format_date",
            CATEGORY,
            "Converts a DATE value to a string using the given format pattern.",
            overloads![sig(&[Date, Str])],
            returns!(DataType::Utf8),
            format_date,
        ),
        KsqlUdf::new(
            "PARSE_DATE",
            "parse_date",
            CATEGORY,
            "Converts a string representation of a date in the given format (java.text.SimpleDateFormat's) into a DATE value.",
            overloads![sig(&[Str, Str])],
            returns!(DataType::Date32),
            parse_date,
        ),
        KsqlUdf::new(
            "FROM_DAYS",
            "from_days",
            CATEGORY,
            "Converts a number of days since epoch to a DATE value.",
            overloads![sig(&[Int])],
            returns!(DataType::Date32),
            from_days,
        ),
        KsqlUdf::new(
            "FORMAT_TIME",
            "format_time",
            CATEGORY,
            "Converts a TIME value into the string representation of the time in the given format.",
            overloads![sig(&[Time, Str])],
            returns!(DataType::Utf8),
            format_time,
        ),
        KsqlUdf::new(
            "PARSE_TIME",
            "parse_time",
            CATEGORY,
            "Converts a string representation of a time in the given format into a TIME value.",
            overloads![sig(&[Str, Str])],
            returns!(DataType::Time32(TimeUnit::Millisecond)),
            parse_time,
        ),
        KsqlUdf::new(
            "CONVERT_TZ",
            "convert_tz",
            CATEGORY,
            "Converts a TIMESTAMP value from one timezone to another.",
            overloads![sig(&[Timestamp, Str, Str])],
            returns!(TIMESTAMP),
            convert_tz,
        ),
    ]
}

/// Compiled patterns and zones of a call, kept from row to row.
#[derive(Default)]
struct Memos {
    patterns: Memo<Result<Pattern, String>>,
    zones: Memo<Result<Zone, String>>,
}

impl Memos {
    fn pattern(&mut self, text: &str) -> Result<&Pattern, String> {
        self.patterns
            .get(text, Pattern::compile)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn zone(&mut self, id: &str) -> Result<Zone, String> {
        self.zones.get(id, Zone::of).clone()
    }
}

/// `TIMESTAMPTOSTRING(millis, pattern [, zone])`.
fn timestamp_to_string(call: &Call) -> DfResult<ArrayRef> {
    let millis = arg::<Int64Array>(call, 0)?;
    format_instants(
        call,
        |row| (!millis.is_null(row)).then(|| millis.value(row)),
        Zone::system_default(),
    )
}

/// `FORMAT_TIMESTAMP(timestamp, pattern [, zone])`.
fn format_timestamp(call: &Call) -> DfResult<ArrayRef> {
    let timestamps = arg::<TimestampMillisecondArray>(call, 0)?;
    format_instants(
        call,
        |row| (!timestamps.is_null(row)).then(|| timestamps.value(row)),
        Zone::gmt(),
    )
}

fn format_instants(
    call: &Call,
    instant: impl Fn(usize) -> Option<i64>,
    default_zone: Zone,
) -> DfResult<ArrayRef> {
    let patterns = arg::<StringArray>(call, 1)?;
    let zones = opt_arg::<StringArray>(call, 2)?;
    let mut memos = Memos::default();
    let mut out = StringBuilder::with_capacity(call.rows, call.rows * 20);
    each_row(
        call,
        |row| {
            let (Some(millis), false) = (instant(row), patterns.is_null(row)) else {
                return Ok(None);
            };
            let pattern_text = patterns.value(row);
            let zone = match zones {
                Some(zones) if zones.is_null(row) => return Ok(None),
                Some(zones) => memos.zone(zones.value(row)),
                None => Ok(default_zone.clone()),
            };
            let formatted = zone.and_then(|zone| {
                let temporal = Temporal::instant(millis, &zone)?;
                memos.pattern(pattern_text)?.format(&temporal)
            });
            formatted.map(Some).map_err(|e| {
                format!("Failed to format timestamp {millis} with formatter '{pattern_text}': {e}")
            })
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// The instants of `STRINGTOTIMESTAMP` and `PARSE_TIMESTAMP`.
fn parse_instants(
    call: &Call,
    default_zone: Zone,
    mut append: impl FnMut(Option<i64>),
) -> DfResult<()> {
    let texts = arg::<StringArray>(call, 0)?;
    let patterns = arg::<StringArray>(call, 1)?;
    let zones = opt_arg::<StringArray>(call, 2)?;
    let mut memos = Memos::default();
    each_row(
        call,
        |row| {
            if texts.is_null(row) || patterns.is_null(row) {
                return Ok(None);
            }
            let (text, pattern_text) = (texts.value(row), patterns.value(row));
            let zone = match zones {
                Some(zones) if zones.is_null(row) => return Ok(None),
                Some(zones) => memos.zone(zones.value(row)),
                None => Ok(default_zone.clone()),
            };
            let parsed = zone.and_then(|zone| {
                java_time::parse_timestamp(memos.pattern(pattern_text)?, text, &zone)
            });
            parsed.map(Some).map_err(|e| {
                format!("Failed to parse timestamp '{text}' with formatter '{pattern_text}': {e}")
            })
        },
        &mut append,
    );
    Ok(())
}

/// `STRINGTOTIMESTAMP(text, pattern [, zone])`: a `BIGINT`.
fn string_to_timestamp(call: &Call) -> DfResult<ArrayRef> {
    let mut out = Int64Builder::with_capacity(call.rows);
    parse_instants(call, Zone::system_default(), |v| out.append_option(v))?;
    Ok(Arc::new(out.finish()))
}

/// `PARSE_TIMESTAMP(text, pattern [, zone])`: a `TIMESTAMP`.
fn parse_timestamp(call: &Call) -> DfResult<ArrayRef> {
    let mut out = TimestampMillisecondBuilder::with_capacity(call.rows);
    parse_instants(call, Zone::gmt(), |v| out.append_option(v))?;
    Ok(Arc::new(out.finish()))
}

/// `UNIX_TIMESTAMP([timestamp])`.
fn unix_timestamp(call: &Call) -> DfResult<ArrayRef> {
    let mut out = Int64Builder::with_capacity(call.rows);
    match opt_arg::<TimestampMillisecondArray>(call, 0)? {
        Some(timestamps) => out.extend(timestamps.iter()),
        None => {
            let now = chrono::Utc::now().timestamp_millis();
            out.extend(std::iter::repeat_n(Some(now), call.rows));
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `UNIX_DATE([date])`.
fn unix_date(call: &Call) -> DfResult<ArrayRef> {
    let mut out = Int32Builder::with_capacity(call.rows);
    match opt_arg::<Date32Array>(call, 0)? {
        Some(dates) => out.extend(dates.iter()),
        None => {
            // Today in the system's zone (a Sluice node's is UTC).
            let today = epoch_day(chrono::Utc::now().date_naive());
            out.extend(std::iter::repeat_n(Some(today), call.rows));
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `FROM_UNIXTIME(millis)`.
fn from_unixtime(call: &Call) -> DfResult<ArrayRef> {
    let millis = arg::<Int64Array>(call, 0)?;
    let mut out = TimestampMillisecondBuilder::with_capacity(call.rows);
    out.extend(millis.iter());
    Ok(Arc::new(out.finish()))
}

/// `FROM_DAYS(days)`.
fn from_days(call: &Call) -> DfResult<ArrayRef> {
    let days = arg::<Int32Array>(call, 0)?;
    let mut out = Date32Builder::with_capacity(call.rows);
    out.extend(days.iter());
    Ok(Arc::new(out.finish()))
}

fn epoch_day(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - 719_163
}

fn from_epoch_day(days: i32) -> Result<NaiveDate, String> {
    days.checked_add(719_163)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| format!("Invalid value for EpochDay: {days}"))
}

/// `DATETOSTRING(days, pattern)` and `FORMAT_DATE(date, pattern)`.
fn format_days(call: &Call, days: impl Fn(usize) -> Option<i32>) -> DfResult<ArrayRef> {
    let patterns = arg::<StringArray>(call, 1)?;
    let mut memos = Memos::default();
    let mut out = StringBuilder::with_capacity(call.rows, call.rows * 10);
    each_row(
        call,
        |row| {
            let (Some(days), false) = (days(row), patterns.is_null(row)) else {
                return Ok(None);
            };
            let pattern_text = patterns.value(row);
            let formatted = from_epoch_day(days)
                .and_then(|date| memos.pattern(pattern_text)?.format(&Temporal::date(date)));
            formatted.map(Some).map_err(|e| {
                format!("Failed to format date {days} with formatter '{pattern_text}': {e}")
            })
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

fn date_to_string(call: &Call) -> DfResult<ArrayRef> {
    let days = arg::<Int32Array>(call, 0)?;
    format_days(call, |row| (!days.is_null(row)).then(|| days.value(row)))
}

fn format_date(call: &Call) -> DfResult<ArrayRef> {
    let dates = arg::<Date32Array>(call, 0)?;
    format_days(call, |row| (!dates.is_null(row)).then(|| dates.value(row)))
}

/// `STRINGTODATE(text, pattern)`: the epoch day of `LocalDate.parse`.
fn string_to_date(call: &Call) -> DfResult<ArrayRef> {
    let texts = arg::<StringArray>(call, 0)?;
    let patterns = arg::<StringArray>(call, 1)?;
    let mut memos = Memos::default();
    let mut out = Int32Builder::with_capacity(call.rows);
    each_row(
        call,
        |row| {
            if texts.is_null(row) || patterns.is_null(row) {
                return Ok(None);
            }
            let (text, pattern_text) = (texts.value(row), patterns.value(row));
            memos
                .pattern(pattern_text)
                .and_then(|p| java_time::parse_local_date(p, text))
                .map(|date| Some(epoch_day(date)))
                .map_err(|e| {
                    format!("Failed to parse date '{text}' with formatter '{pattern_text}': {e}")
                })
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// `PARSE_DATE(text, pattern)`: `SimpleDateFormat`'s pattern, in GMT.
fn parse_date(call: &Call) -> DfResult<ArrayRef> {
    let texts = arg::<StringArray>(call, 0)?;
    let patterns = arg::<StringArray>(call, 1)?;
    let mut memo: Memo<Result<SimplePattern, String>> = Memo::default();
    let this_year = chrono::Utc::now().year();
    let mut out = Date32Builder::with_capacity(call.rows);
    each_row(
        call,
        |row| {
            if texts.is_null(row) || patterns.is_null(row) {
                return Ok(None);
            }
            let (text, pattern_text) = (texts.value(row), patterns.value(row));
            memo.get(pattern_text, SimplePattern::compile)
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|p| simple_date::parse_date(p, text, this_year))
                .map(Some)
                .map_err(|e| {
                    format!("Failed to parse date '{text}' with formatter '{pattern_text}': {e}")
                })
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// `FORMAT_TIME(time, pattern)`.
fn format_time(call: &Call) -> DfResult<ArrayRef> {
    let times = arg::<Time32MillisecondArray>(call, 0)?;
    let patterns = arg::<StringArray>(call, 1)?;
    let mut memos = Memos::default();
    let mut out = StringBuilder::with_capacity(call.rows, call.rows * 10);
    each_row(
        call,
        |row| {
            if times.is_null(row) || patterns.is_null(row) {
                return Ok(None);
            }
            let (millis, pattern_text) = (times.value(row), patterns.value(row));
            let time = u32::try_from(millis)
                .ok()
                .and_then(|ms| {
                    NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, ms % 1000 * 1_000_000)
                })
                .ok_or_else(|| format!("Invalid value for NanoOfDay: {millis}000000"));
            time.and_then(|time| memos.pattern(pattern_text)?.format(&Temporal::time(time)))
                .map(Some)
                .map_err(|e| {
                    format!("Failed to format time {millis} with formatter '{pattern_text}': {e}")
                })
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// `PARSE_TIME(text, pattern)`.
fn parse_time(call: &Call) -> DfResult<ArrayRef> {
    let texts = arg::<StringArray>(call, 0)?;
    let patterns = arg::<StringArray>(call, 1)?;
    let mut memos = Memos::default();
    let mut out = Time32MillisecondBuilder::with_capacity(call.rows);
    each_row(
        call,
        |row| {
            if texts.is_null(row) || patterns.is_null(row) {
                return Ok(None);
            }
            let (text, pattern_text) = (texts.value(row), patterns.value(row));
            memos
                .pattern(pattern_text)
                .and_then(|p| java_time::parse_local_time(p, text))
                .map(|t| {
                    Some((t.num_seconds_from_midnight() * 1000 + t.nanosecond() / 1_000_000) as i32)
                })
                .map_err(|e| {
                    format!("Failed to parse time '{text}' with formatter '{pattern_text}': {e}")
                })
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// `CONVERT_TZ(timestamp, from, to)`: the timestamp moved by the difference of the zones'
/// offsets at that instant.
fn convert_tz(call: &Call) -> DfResult<ArrayRef> {
    let timestamps = arg::<TimestampMillisecondArray>(call, 0)?;
    let from = arg::<StringArray>(call, 1)?;
    let to = arg::<StringArray>(call, 2)?;
    let (mut from_memo, mut to_memo) = (Memos::default(), Memos::default());
    let mut out = TimestampMillisecondBuilder::with_capacity(call.rows);
    each_row(
        call,
        |row| {
            if timestamps.is_null(row) || from.is_null(row) || to.is_null(row) {
                return Ok(None);
            }
            let millis = timestamps.value(row);
            let from_zone = from_memo.zone(from.value(row));
            let to_zone = to_memo.zone(to.value(row));
            let (from_zone, to_zone) = match (from_zone, to_zone) {
                (Ok(f), Ok(t)) => (f, t),
                (Err(e), _) | (_, Err(e)) => return Err(format!("Invalid time zone: {e}")),
            };
            let instant = chrono::DateTime::from_timestamp_millis(millis)
                .ok_or_else(|| format!("Invalid timestamp: {millis}"))?
                .naive_utc();
            let shift = i64::from(to_zone.offset_at(&instant) - from_zone.offset_at(&instant));
            Ok(millis.checked_add(shift * 1000))
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(args: Vec<ArrayRef>, rows: usize, return_type: &'a DataType) -> Call<'a> {
        Call {
            args,
            rows,
            return_type,
            name: "TEST",
        }
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    #[test]
    fn timestamp_to_string_nulls_and_bad_patterns_are_null() {
        let millis: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(1526075913000),
            None,
            Some(0),
            Some(0),
        ]));
        let patterns = strings(&[
            Some("yyyy-MM-dd HH:mm:ss zzz"),
            Some("yyyy"),
            None,
            Some("yyyy-MM-dd'T"),
        ]);
        let zones = strings(&[
            Some("America/Los_Angeles"),
            Some("UTC"),
            Some("UTC"),
            Some("UTC"),
        ]);
        let out =
            timestamp_to_string(&call(vec![millis, patterns, zones], 4, &DataType::Utf8)).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "2018-05-11 14:58:33 PDT");
        assert!(out.is_null(1) && out.is_null(2) && out.is_null(3));
    }

    #[test]
    fn string_to_timestamp_in_the_system_zone_unless_given() {
        let texts = strings(&[Some("2018-05-11 21:58:33"), Some("nonsense"), None]);
        let patterns = strings(&[Some("yyyy-MM-dd HH:mm:ss"); 3]);
        let out = string_to_timestamp(&call(
            vec![texts.clone(), patterns.clone()],
            3,
            &DataType::Int64,
        ))
        .unwrap();
        let out = out.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(out.value(0), 1526075913000);
        assert!(out.is_null(1) && out.is_null(2));
        let zones = strings(&[Some("Europe/Paris"), Some("UTC"), Some("UTC")]);
        let out =
            string_to_timestamp(&call(vec![texts, patterns, zones], 3, &DataType::Int64)).unwrap();
        let out = out.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(out.value(0), 1526075913000 - 2 * 3_600_000);
    }

    #[test]
    fn dates_and_times() {
        let days: ArrayRef = Arc::new(Int32Array::from(vec![Some(17662), Some(-1), None]));
        let patterns = strings(&[Some("yyyy-MM-dd"), Some("dd-MM-yyyy'Sophia'"), Some("yyyy")]);
        let out = date_to_string(&call(vec![days, patterns], 3, &DataType::Utf8)).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "2018-05-11");
        assert_eq!(out.value(1), "31-12-1969Sophia");
        assert!(out.is_null(2));

        let texts = strings(&[Some("01-Jan-2022"), Some("2022")]);
        let patterns = strings(&[Some("dd-MMM-yyyy"), Some("yyyy")]);
        let out = string_to_date(&call(vec![texts, patterns], 2, &DataType::Int32)).unwrap();
        let out = out.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(out.value(0), 18993);
        assert!(out.is_null(1), "LocalDate.parse needs a whole date");

        let times: ArrayRef = Arc::new(Time32MillisecondArray::from(vec![
            Some(3_723_004),
            Some(-1),
        ]));
        let patterns = strings(&[Some("HH:mm:ss.SSS"); 2]);
        let out = format_time(&call(vec![times, patterns], 2, &DataType::Utf8)).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "01:02:03.004");
        assert!(out.is_null(1));

        let texts = strings(&[Some("01:02:03.004"), Some("2020-01-01 01:02")]);
        let patterns = strings(&[Some("HH:mm:ss.SSS"), Some("yyyy-MM-dd HH:mm")]);
        let out = parse_time(&call(vec![texts, patterns], 2, &DataType::Int32)).unwrap();
        let out = out
            .as_any()
            .downcast_ref::<Time32MillisecondArray>()
            .unwrap();
        assert_eq!(out.value(0), 3_723_004);
        assert!(out.is_null(1), "a date field is refused");
    }

    #[test]
    fn convert_tz_moves_by_the_offsets_difference() {
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![
            Some(1526075913000),
            Some(0),
        ]));
        let from = strings(&[Some("UTC"), Some("Nowhere/Land")]);
        let to = strings(&[Some("America/Los_Angeles"), Some("UTC")]);
        let out = convert_tz(&call(vec![ts, from, to], 2, &TIMESTAMP)).unwrap();
        let out = out
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(out.value(0), 1526075913000 - 7 * 3_600_000);
        assert!(out.is_null(1));
    }
}
