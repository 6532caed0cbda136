//! `PARSE_DATE`'s patterns: `java.text.SimpleDateFormat`'s, parsed as ksqlDB parses them
//! (Apache Commons' `FastDateFormat` in GMT): numbers as wide as the letters when another
//! number follows, else any number of digits; month and day names in English, any case, long
//! or short; text after the pattern ignored; the fields combined by a lenient
//! `GregorianCalendar` (February 30th is March 2nd, a two-digit year within 80 years before
//! and 20 after today).
//!
//! Week fields (`w W F`) are refused rather than approximated.

use chrono::{Datelike, Duration, NaiveDate};

use super::java_time::Zone;

type Result<T> = std::result::Result<T, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Era,
    Year,
    /// A year of `y` or `yy`: below 100, within the 100 years around today.
    AbbreviatedYear,
    Month,
    DayOfMonth,
    DayOfYear,
    /// `u`: 1 Monday ... 7 Sunday.
    DayNumberOfWeek,
    DayOfWeek,
    AmPm,
    HourOfDay,
    /// `k`: 1-24.
    HourOfDay1,
    /// `K`: 0-11.
    Hour,
    /// `h`: 1-12.
    Hour12,
    Minute,
    Second,
    Millisecond,
}

#[derive(Debug, Clone, PartialEq)]
enum Strategy {
    Literal(String),
    Number(Field),
    Text(Field),
    /// `z`, `Z`: `+hhmm`, `GMT+h:mm` or a zone's name.
    TimeZone,
    /// `X`, `XX`, `XXX`: `Z`, `+hh`, `+hhmm`, `+hh:mm`.
    Iso8601(usize),
}

/// A compiled `SimpleDateFormat` pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SimplePattern {
    /// Each strategy and, for a number followed by a number, its width.
    strategies: Vec<(Strategy, usize)>,
}

impl SimplePattern {
    /// Compiles `pattern` (`FastDateParser`'s rules).
    pub(crate) fn compile(pattern: &str) -> Result<SimplePattern> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut strategies: Vec<(Strategy, usize)> = Vec::new();
        let mut at = 0;
        while at < chars.len() {
            let c = chars[at];
            let start = at;
            if c.is_ascii_alphabetic() {
                while at < chars.len() && chars[at] == c {
                    at += 1;
                }
                let width = at - start;
                let strategy = match c {
                    'G' => Strategy::Text(Field::Era),
                    'y' | 'Y' if width > 2 => Strategy::Number(Field::Year),
                    'y' | 'Y' => Strategy::Number(Field::AbbreviatedYear),
                    'M' | 'L' if width >= 3 => Strategy::Text(Field::Month),
                    'M' | 'L' => Strategy::Number(Field::Month),
                    'd' => Strategy::Number(Field::DayOfMonth),
                    'D' => Strategy::Number(Field::DayOfYear),
                    'u' => Strategy::Number(Field::DayNumberOfWeek),
                    'E' => Strategy::Text(Field::DayOfWeek),
                    'a' => Strategy::Text(Field::AmPm),
                    'H' => Strategy::Number(Field::HourOfDay),
                    'k' => Strategy::Number(Field::HourOfDay1),
                    'K' => Strategy::Number(Field::Hour),
                    'h' => Strategy::Number(Field::Hour12),
                    'm' => Strategy::Number(Field::Minute),
                    's' => Strategy::Number(Field::Second),
                    'S' => Strategy::Number(Field::Millisecond),
                    'z' | 'Z' => Strategy::TimeZone,
                    'X' if width <= 3 => Strategy::Iso8601(width),
                    'X' => return Err("invalid number of X".to_string()),
                    'w' | 'W' | 'F' => {
                        return Err(format!(
                            "Format '{c}' (weeks) is not supported by Sluice's PARSE_DATE"
                        ))
                    }
                    _ => return Err(format!("Format '{c}' not supported")),
                };
                strategies.push((strategy, width));
                continue;
            }
            let mut literal = String::new();
            while at < chars.len() && !chars[at].is_ascii_alphabetic() {
                if chars[at] == '\'' {
                    at += 1;
                    if chars.get(at) == Some(&'\'') {
                        literal.push('\'');
                        at += 1;
                        continue;
                    }
                    // A quoted run, letters and all.
                    loop {
                        match chars.get(at) {
                            None => return Err(format!("Unterminated quote at position {start}")),
                            Some('\'') if chars.get(at + 1) == Some(&'\'') => {
                                literal.push('\'');
                                at += 2;
                            }
                            Some('\'') => {
                                at += 1;
                                break;
                            }
                            Some(c) => {
                                literal.push(*c);
                                at += 1;
                            }
                        }
                    }
                } else {
                    literal.push(chars[at]);
                    at += 1;
                }
            }
            strategies.push((Strategy::Literal(literal), 0));
        }
        Ok(SimplePattern { strategies })
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
/// From Sunday, as `Calendar.DAY_OF_WEEK` counts (1 is Sunday).
const DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// The names of a text field (long and short, lower case) and their values, longest first.
fn names(field: Field) -> Vec<(String, i64)> {
    let mut names: Vec<(String, i64)> = match field {
        Field::Month => MONTHS
            .iter()
            .enumerate()
            .flat_map(|(i, m)| [(m.to_string(), i as i64), (m[..3].to_string(), i as i64)])
            .collect(),
        Field::DayOfWeek => DAYS
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                [
                    (d.to_string(), i as i64 + 1),
                    (d[..3].to_string(), i as i64 + 1),
                ]
            })
            .collect(),
        Field::AmPm => vec![("am".to_string(), 0), ("pm".to_string(), 1)],
        Field::Era => vec![("bc".to_string(), 0), ("ad".to_string(), 1)],
        _ => Vec::new(),
    };
    names.dedup();
    names.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    names
}

/// The calendar's fields as set, each with when it was set (`Calendar`'s stamps).
#[derive(Debug, Default)]
struct Fields {
    values: [Option<(i64, u32)>; 16],
    next_stamp: u32,
    /// The zone's offset, if the text named one.
    zone: Option<Zone>,
    offset: Option<i32>,
}

impl Fields {
    fn set(&mut self, field: Field, value: i64) {
        self.next_stamp += 1;
        self.values[field as usize] = Some((value, self.next_stamp));
    }

    fn get(&self, field: Field) -> Option<i64> {
        self.values[field as usize].map(|(v, _)| v)
    }

    fn stamp(&self, field: Field) -> u32 {
        self.values[field as usize].map_or(0, |(_, s)| s)
    }
}

/// `text` parsed with `pattern` in GMT: the epoch day, refusing a time of day other than
/// midnight as ksqlDB's `PARSE_DATE` does.
pub(crate) fn parse_date(pattern: &SimplePattern, text: &str, this_year: i32) -> Result<i32> {
    let fields = parse_fields(pattern, text, this_year)?;
    let millis = compute(&fields)?;
    const DAY: i64 = 86_400_000;
    if millis % DAY != 0 {
        return Err("Date format contains time field.".to_string());
    }
    i32::try_from(millis / DAY).map_err(|_| format!("Date out of range: {text}"))
}

fn parse_fields(pattern: &SimplePattern, text: &str, this_year: i32) -> Result<Fields> {
    let unparseable = || format!("Unparseable date: \"{text}\"");
    let chars: Vec<char> = text.chars().collect();
    let mut fields = Fields::default();
    let mut at = 0;
    for (index, (strategy, _)) in pattern.strategies.iter().enumerate() {
        // A number followed by a number is as wide as its letters.
        let width = match (strategy, pattern.strategies.get(index + 1)) {
            (Strategy::Number(_), Some((Strategy::Number(_), _))) => pattern.strategies[index].1,
            _ => 0,
        };
        match strategy {
            Strategy::Literal(literal) => {
                for expected in literal.chars() {
                    if chars.get(at) != Some(&expected) {
                        return Err(unparseable());
                    }
                    at += 1;
                }
            }
            Strategy::Number(field) => {
                if width == 0 {
                    while chars.get(at).is_some_and(|c| c.is_whitespace()) {
                        at += 1;
                    }
                }
                let end_limit = if width == 0 {
                    chars.len()
                } else {
                    (at + width).min(chars.len())
                };
                let start = at;
                while at < end_limit && chars[at].is_ascii_digit() {
                    at += 1;
                }
                if at == start {
                    return Err(unparseable());
                }
                let digits: String = chars[start..at].iter().collect();
                // Integer.parseInt: at most an int.
                let value: i64 = digits
                    .parse::<i32>()
                    .map_err(|_| format!("For input string: \"{digits}\""))?
                    .into();
                let value = match field {
                    Field::AbbreviatedYear if value < 100 => adjust_year(value, this_year),
                    Field::AbbreviatedYear => value,
                    Field::Month => value - 1,
                    Field::DayNumberOfWeek => {
                        fields.set(Field::DayOfWeek, if value == 7 { 1 } else { value + 1 });
                        continue;
                    }
                    Field::HourOfDay1 => {
                        fields.set(Field::HourOfDay, if value == 24 { 0 } else { value });
                        continue;
                    }
                    Field::Hour12 => {
                        fields.set(Field::Hour, if value == 12 { 0 } else { value });
                        continue;
                    }
                    _ => value,
                };
                let field = if *field == Field::AbbreviatedYear {
                    Field::Year
                } else {
                    *field
                };
                fields.set(field, value);
            }
            Strategy::Text(field) => {
                let rest: String = chars[at..].iter().collect::<String>().to_lowercase();
                let found = names(*field)
                    .into_iter()
                    .find(|(name, _)| rest.starts_with(name.as_str()));
                let Some((name, value)) = found else {
                    return Err(unparseable());
                };
                at += name.chars().count();
                fields.set(*field, value);
            }
            Strategy::TimeZone => {
                let (offset, end) = parse_zone(&chars, at).ok_or_else(unparseable)?;
                match offset {
                    ParsedZone::Offset(seconds) => fields.offset = Some(seconds),
                    ParsedZone::Zone(zone) => fields.zone = Some(zone),
                }
                at = end;
            }
            Strategy::Iso8601(width) => {
                let (seconds, end) = parse_iso8601(&chars, at, *width).ok_or_else(unparseable)?;
                fields.offset = Some(seconds);
                at = end;
            }
        }
    }
    Ok(fields)
}

/// A two-digit year in the century from 80 years ago (`FastDateParser.adjustYear`).
fn adjust_year(two_digits: i64, this_year: i32) -> i64 {
    let start = i64::from(this_year) - 80;
    let century = start / 100 * 100;
    let start_year = start - century;
    if two_digits >= start_year {
        century + two_digits
    } else {
        century + two_digits + 100
    }
}

enum ParsedZone {
    Offset(i32),
    Zone(Zone),
}

/// `+hhmm`, `GMT+h:mm`, or a zone's ID or short name.
fn parse_zone(chars: &[char], at: usize) -> Option<(ParsedZone, usize)> {
    let digit = |i: usize| -> Option<i32> {
        chars
            .get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| i32::from(*c as u8 - b'0'))
    };
    let sign = |i: usize| match chars.get(i) {
        Some('+') => Some(1),
        Some('-') => Some(-1),
        _ => None,
    };
    if let Some(s) = sign(at) {
        let (h1, h2, m1, m2) = (
            digit(at + 1)?,
            digit(at + 2)?,
            digit(at + 3)?,
            digit(at + 4)?,
        );
        let seconds = s * ((h1 * 10 + h2) * 3600 + (m1 * 10 + m2) * 60);
        return Some((ParsedZone::Offset(seconds), at + 5));
    }
    let rest: String = chars[at..].iter().collect();
    if rest.to_ascii_uppercase().starts_with("GMT") {
        if let Some(s) = sign(at + 3) {
            let mut pos = at + 4;
            let mut hours = digit(pos)?;
            pos += 1;
            if let Some(d) = digit(pos) {
                hours = hours * 10 + d;
                pos += 1;
            }
            if chars.get(pos) != Some(&':') {
                return None;
            }
            let minutes = digit(pos + 1)? * 10 + digit(pos + 2)?;
            return Some((
                ParsedZone::Offset(s * (hours * 3600 + minutes * 60)),
                pos + 3,
            ));
        }
    }
    // A zone's name: the longest run that names one.
    let mut end = at;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || "/_+-".contains(chars[end])) {
        end += 1;
    }
    while end > at {
        let candidate: String = chars[at..end].iter().collect();
        if let Some(zone) = Zone::by_name(&candidate) {
            return Some((ParsedZone::Zone(zone), end));
        }
        end -= 1;
    }
    None
}

/// `X`: `Z` or `+hh`; `XX`: `+hhmm`; `XXX`: `+hh:mm`.
fn parse_iso8601(chars: &[char], at: usize, width: usize) -> Option<(i32, usize)> {
    if chars.get(at) == Some(&'Z') {
        return Some((0, at + 1));
    }
    let sign = match chars.get(at) {
        Some('+') => 1,
        Some('-') => -1,
        _ => return None,
    };
    let two = |i: usize| -> Option<i32> {
        let (a, b) = (chars.get(i)?, chars.get(i + 1)?);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| i32::from(*a as u8 - b'0') * 10 + i32::from(*b as u8 - b'0'))
    };
    let hours = two(at + 1)?;
    match width {
        1 => Some((sign * hours * 3600, at + 3)),
        2 => Some((sign * (hours * 3600 + two(at + 3)? * 60), at + 5)),
        _ => {
            if chars.get(at + 3) != Some(&':') {
                return None;
            }
            Some((sign * (hours * 3600 + two(at + 4)? * 60), at + 6))
        }
    }
}

/// The milliseconds since the epoch a lenient `GregorianCalendar` computes from `fields`.
fn compute(fields: &Fields) -> Result<i64> {
    let out_of_range = || "Date out of range".to_string();
    let mut year = fields.get(Field::Year).unwrap_or(1970);
    if fields.get(Field::Era) == Some(0) {
        year = 1 - year;
    }
    // The date: by day of month, day of year or (alone) the first such weekday of the
    // month, whichever was set last (`GregorianCalendar`'s field selection).
    let (dom, doy, dow) = (
        fields.stamp(Field::DayOfMonth),
        fields.stamp(Field::DayOfYear),
        fields.stamp(Field::DayOfWeek),
    );
    let month = fields.get(Field::Month).unwrap_or(0);
    let month_start = |year: i64, month: i64| -> Result<NaiveDate> {
        let year = year + month.div_euclid(12);
        let month = month.rem_euclid(12) as u32 + 1;
        i32::try_from(year)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, month, 1))
            .ok_or_else(out_of_range)
    };
    let plus_days = |date: NaiveDate, days: i64| -> Result<NaiveDate> {
        date.checked_add_signed(Duration::try_days(days).ok_or_else(out_of_range)?)
            .ok_or_else(out_of_range)
    };
    let date = if doy > dom {
        let start = month_start(year, 0)?;
        plus_days(start, fields.get(Field::DayOfYear).unwrap_or(1) - 1)?
    } else if dom == 0 && doy == 0 && dow > 0 {
        let start = month_start(year, month)?;
        let wanted = fields.get(Field::DayOfWeek).unwrap_or(1) - 1;
        let first = i64::from(start.weekday().num_days_from_sunday());
        plus_days(start, (wanted - first).rem_euclid(7))?
    } else {
        let start = month_start(year, month)?;
        plus_days(start, fields.get(Field::DayOfMonth).unwrap_or(1) - 1)?
    };
    // The time: the hour of the day, or the hour of AM/PM, whichever was set last.
    let hod_stamp = fields.stamp(Field::HourOfDay);
    let (hour_stamp, am_pm_stamp) = (fields.stamp(Field::Hour), fields.stamp(Field::AmPm));
    let mut best = if hour_stamp > 0 && am_pm_stamp > 0 {
        hod_stamp.max(hour_stamp.max(am_pm_stamp))
    } else {
        hod_stamp
    };
    if best == 0 {
        best = hour_stamp.max(am_pm_stamp);
    }
    let hour = if best != 0 && best == hod_stamp {
        fields.get(Field::HourOfDay).unwrap_or(0)
    } else {
        fields.get(Field::AmPm).unwrap_or(0) * 12 + fields.get(Field::Hour).unwrap_or(0)
    };
    let time_millis = ((hour * 60 + fields.get(Field::Minute).unwrap_or(0)) * 60
        + fields.get(Field::Second).unwrap_or(0))
        * 1000
        + fields.get(Field::Millisecond).unwrap_or(0);
    let days = i64::from(date.num_days_from_ce() - 719_163);
    let local_millis = days * 86_400_000 + time_millis;
    let offset_seconds = match (&fields.zone, fields.offset) {
        (_, Some(offset)) => i64::from(offset),
        (Some(zone), None) => {
            let local = chrono::DateTime::from_timestamp_millis(local_millis)
                .ok_or_else(out_of_range)?
                .naive_utc();
            i64::from(zone.offset_at(&local))
        }
        (None, None) => 0,
    };
    Ok(local_millis - offset_seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pattern: &str, text: &str) -> Result<i32> {
        parse_date(&SimplePattern::compile(pattern)?, text, 2026)
    }

    #[test]
    fn parses_as_ksqldb() {
        // ksqlDB's own cases (parse-date.json).
        assert_eq!(parse("yyyy-MM-dd'Lit'", "2018-05-11Lit"), Ok(17662));
        assert_eq!(parse("dd/MM/yyyy", "11/05/2019"), Ok(18027));
        assert_eq!(parse("dd-MMM-yyyy", "01-Jan-2022"), Ok(18993));
        assert_eq!(parse("dd-MM-yyyy", "01-01-1970"), Ok(0));
        assert_eq!(parse("dd-MMM-yyyy", "01-JAN-2022"), Ok(18993));
        assert_eq!(parse("MMM-yyyy", "JAN-2022"), Ok(18993));
        // Adjacent numbers take their letters' widths; text after the pattern is ignored.
        assert_eq!(parse("yyyyMMdd", "20180511"), Ok(17662));
        assert_eq!(parse("yyyy-MM-dd", "2018-05-11 and more"), Ok(17662));
        // Lenient: February 30th is March 2nd.
        assert_eq!(
            parse("yyyy-MM-dd", "2019-02-30"),
            parse("yyyy-MM-dd", "2019-03-02")
        );
        // Two-digit years: from 80 years ago.
        assert_eq!(
            parse("yy-MM-dd", "46-01-01"),
            parse("yyyy-MM-dd", "1946-01-01")
        );
        assert_eq!(
            parse("yy-MM-dd", "45-01-01"),
            parse("yyyy-MM-dd", "2045-01-01")
        );
        assert_eq!(
            parse("EEEE, MMMM d, yyyy", "Friday, May 11, 2018"),
            Ok(17662)
        );
        assert_eq!(parse("yyyy-MM-dd X", "2018-05-11 Z"), Ok(17662));
    }

    #[test]
    fn refuses_what_ksqldb_refuses() {
        assert_eq!(
            parse("yyyy-MM-dd HH", "2018-05-11 01").unwrap_err(),
            "Date format contains time field."
        );
        assert!(parse("yyyy-MM-dd", "2018/05/11").is_err());
        assert!(parse("yyyy-MMM-dd", "2018-Foo-11").is_err());
        assert!(SimplePattern::compile("yyyy-'MM").is_err());
        assert!(SimplePattern::compile("yyyy-ww").is_err());
        assert!(SimplePattern::compile("yyyy-bb").is_err());
    }
}
