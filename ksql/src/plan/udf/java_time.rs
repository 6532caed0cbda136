//! Java's `DateTimeFormatter` patterns, which ksqlDB's date and time functions take
//! (`yyyy-MM-dd'T'HH:mm:ss.SSSX`), compiled once into items run on chrono: formatting as
//! `DateTimeFormatter.ofPattern(p)` formats (English names), and parsing as
//! `DateTimeFormatterBuilder().parseCaseInsensitive().appendPattern(p)` parses (strict, its
//! adjacent value parsing of `yyyyMMdd`), resolved as `ResolverStyle.SMART` resolves the
//! fields (a day past the month's end clamped, `24:00`, `hh` without `a` in the morning).
//!
//! [`parse_timestamp`] then builds the instant as ksqlDB's `StringToTimestampParser` does:
//! from 1970-01-01T00:00 in the zone parsed (else the one given), each field parsed set in
//! turn — so a pattern without a date is a time on 1970-01-01, and a local time in a
//! daylight-saving gap moves as `ZonedDateTime.with` moves it.
//!
//! Supported letters: `G u y Q q M L D d E a h K k H m s S n N A V z O X x Z`, quoted
//! literals, `[ ]` optional sections. Locale-dependent week fields (`Y w W e c F`), padding
//! (`p`) and full zone names (`zzzz`) are refused with an error rather than approximated.
//! Short zone names (`z`) are the tz database's abbreviations (`PDT`, `BST`, `CET`), which
//! are Java's for the zones that have letters; zones the tz database gives numeric
//! abbreviations (`+04`) print those.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike,
};
use chrono_tz::{OffsetName, Tz};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Errors carry Java's messages (ksqlDB logs them).
pub(crate) type Result<T> = std::result::Result<T, String>;

// ---------------------------------------------------------------------------------------
// Zones

/// A `java.time.ZoneId`: a region of the tz database, or a fixed offset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Zone {
    /// Its ID as Java gives it (`America/Los_Angeles`, `UTC`, `Z`, `+05:30`, `GMT+01:00`).
    id: String,
    rules: Rules,
    /// A `ZoneOffset` (its ID is the offset), not a region.
    is_offset: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rules {
    Tz(Tz),
    Fixed(i32),
}

impl Zone {
    /// UTC as the fixed offset `Z`.
    pub(crate) fn utc() -> Zone {
        Zone::offset(0)
    }

    /// `ZoneId.of("GMT")`: what `FORMAT_TIMESTAMP` and `PARSE_TIMESTAMP` default to.
    pub(crate) fn gmt() -> Zone {
        Zone {
            id: "GMT".to_string(),
            rules: Rules::Fixed(0),
            is_offset: false,
        }
    }

    /// The zone ksqlDB calls the system default: a Sluice node's is UTC.
    pub(crate) fn system_default() -> Zone {
        Zone {
            id: "UTC".to_string(),
            rules: Rules::Fixed(0),
            is_offset: false,
        }
    }

    fn offset(seconds: i32) -> Zone {
        Zone {
            id: offset_id(seconds),
            rules: Rules::Fixed(seconds),
            is_offset: true,
        }
    }

    /// `ZoneId.of(id)`.
    pub(crate) fn of(id: &str) -> Result<Zone> {
        if id == "Z" || id.starts_with('+') || id.starts_with('-') {
            return zone_offset_of(id).map(Zone::offset);
        }
        for prefix in ["UTC", "GMT", "UT"] {
            if id == prefix {
                return Ok(Zone {
                    id: id.to_string(),
                    rules: Rules::Fixed(0),
                    is_offset: false,
                });
            }
            if let Some(rest) = id.strip_prefix(prefix) {
                if rest.starts_with('+') || rest.starts_with('-') {
                    let seconds = zone_offset_of(rest)?;
                    let id = if seconds == 0 {
                        prefix.to_string()
                    } else {
                        format!("{prefix}{}", offset_id(seconds))
                    };
                    return Ok(Zone {
                        id,
                        rules: Rules::Fixed(seconds),
                        is_offset: false,
                    });
                }
            }
        }
        let valid = id.len() >= 2
            && id.starts_with(|c: char| c.is_ascii_alphabetic())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "~/._+-".contains(c));
        if !valid {
            return Err(format!(
                "Invalid ID for region-based ZoneId, invalid format: {id}"
            ));
        }
        match id.parse::<Tz>() {
            Ok(tz) => Ok(Zone {
                id: id.to_string(),
                rules: Rules::Tz(tz),
                is_offset: false,
            }),
            Err(_) => Err(format!("Unknown time-zone ID: {id}")),
        }
    }

    /// The zone a name parsed from text names: a tz database ID (any case) or one of the
    /// short names Java's English names parse to.
    pub(crate) fn by_name(name: &str) -> Option<Zone> {
        zone_names().get(&name.to_ascii_lowercase()).map(|tz| Zone {
            id: tz.name().to_string(),
            rules: Rules::Tz(*tz),
            is_offset: false,
        })
    }

    /// The offset (seconds east of UTC) at the instant `utc`.
    pub(crate) fn offset_at(&self, utc: &NaiveDateTime) -> i32 {
        match self.rules {
            Rules::Fixed(seconds) => seconds,
            Rules::Tz(tz) => tz.offset_from_utc_datetime(utc).fix().local_minus_utc(),
        }
    }

    /// Java's `ZonedDateTime.ofLocal(local, zone, preferred)`: a local time in a gap moves
    /// forward by the gap's length; in an overlap the preferred offset if valid, else the
    /// earlier.
    fn resolve_local(&self, local: NaiveDateTime, preferred: Option<i32>) -> (NaiveDateTime, i32) {
        let Rules::Tz(tz) = self.rules else {
            return (local, self.offset_at(&local));
        };
        match tz.offset_from_local_datetime(&local) {
            LocalResult::Single(offset) => (local, offset.fix().local_minus_utc()),
            LocalResult::Ambiguous(earlier, later) => {
                let (earlier, later) = (
                    earlier.fix().local_minus_utc(),
                    later.fix().local_minus_utc(),
                );
                match preferred {
                    Some(p) if p == later => (local, later),
                    _ => (local, earlier),
                }
            }
            LocalResult::None => {
                // Transitions are months apart: a day before and after are on either side.
                let day = 86_400;
                let before = plus_seconds(local, -day).map_or(0, |t| self.offset_at(&t));
                let after = plus_seconds(local, day).map_or(0, |t| self.offset_at(&t));
                let moved = plus_seconds(local, i64::from(after - before)).unwrap_or(local);
                (moved, after)
            }
        }
    }

    /// Whether `offset` is one the zone has at local time `local`.
    fn is_valid_offset(&self, local: &NaiveDateTime, offset: i32) -> bool {
        match self.rules {
            Rules::Fixed(seconds) => seconds == offset,
            Rules::Tz(tz) => match tz.offset_from_local_datetime(local) {
                LocalResult::Single(o) => o.fix().local_minus_utc() == offset,
                LocalResult::Ambiguous(a, b) => {
                    a.fix().local_minus_utc() == offset || b.fix().local_minus_utc() == offset
                }
                LocalResult::None => false,
            },
        }
    }

    /// The short name `z` prints at the instant `utc`.
    fn short_name(&self, utc: &NaiveDateTime) -> String {
        match self.rules {
            Rules::Tz(tz) => tz
                .offset_from_utc_datetime(utc)
                .abbreviation()
                .map_or_else(|| self.id.clone(), str::to_string),
            Rules::Fixed(_) => self.id.clone(),
        }
    }
}

/// `local` moved by `seconds`, if still in range.
fn plus_seconds(local: NaiveDateTime, seconds: i64) -> Result<NaiveDateTime> {
    local
        .checked_add_signed(Duration::seconds(seconds))
        .ok_or_else(|| "Instant exceeds minimum or maximum instant".to_string())
}

/// `ZoneOffset.of(id)`: `Z`, `+h`, `+hh`, `+hh:mm`, `+hhmm`, `+hh:mm:ss`, `+hhmmss`.
fn zone_offset_of(id: &str) -> Result<i32> {
    let invalid = || format!("Invalid ID for ZoneOffset, invalid format: {id}");
    if id == "Z" {
        return Ok(0);
    }
    let (sign, digits) = match id.as_bytes().first() {
        Some(b'+') => (1, &id[1..]),
        Some(b'-') => (-1, &id[1..]),
        _ => return Err(invalid()),
    };
    let two = |s: &str, at: usize| -> Result<i32> {
        s.get(at..at + 2)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(invalid)
    };
    let colon = |s: &str, at: usize| s.as_bytes().get(at) == Some(&b':');
    let (h, m, s) = match digits.len() {
        1 => (
            digits
                .parse::<i32>()
                .ok()
                .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(invalid)?,
            0,
            0,
        ),
        2 => (two(digits, 0)?, 0, 0),
        4 => (two(digits, 0)?, two(digits, 2)?, 0),
        5 if colon(digits, 2) => (two(digits, 0)?, two(digits, 3)?, 0),
        6 => (two(digits, 0)?, two(digits, 2)?, two(digits, 4)?),
        8 if colon(digits, 2) && colon(digits, 5) => {
            (two(digits, 0)?, two(digits, 3)?, two(digits, 6)?)
        }
        _ => return Err(invalid()),
    };
    if h > 18 || m > 59 || s > 59 || (h == 18 && (m > 0 || s > 0)) {
        return Err(format!(
            "Zone offset not in valid range: -18:00 to +18:00 ({id})"
        ));
    }
    Ok(sign * (h * 3600 + m * 60 + s))
}

/// `ZoneOffset.getId()`: `Z`, `+05:30`, `-08:00:30`.
fn offset_id(seconds: i32) -> String {
    if seconds == 0 {
        return "Z".to_string();
    }
    let abs = seconds.unsigned_abs();
    let sign = if seconds < 0 { '-' } else { '+' };
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// What a zone name parsed (`z`, `VV`) resolves to: tz database IDs, any case, and the
/// short names Java's English names parse to (each the zone Java prefers for it).
fn zone_names() -> &'static HashMap<String, Tz> {
    static NAMES: OnceLock<HashMap<String, Tz>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: HashMap<String, Tz> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| (tz.name().to_ascii_lowercase(), *tz))
            .collect();
        for (name, tz) in [
            ("pst", Tz::America__Los_Angeles),
            ("pdt", Tz::America__Los_Angeles),
            ("mst", Tz::America__Denver),
            ("mdt", Tz::America__Denver),
            ("cst", Tz::America__Chicago),
            ("cdt", Tz::America__Chicago),
            ("est", Tz::America__New_York),
            ("edt", Tz::America__New_York),
            ("akst", Tz::America__Anchorage),
            ("akdt", Tz::America__Anchorage),
            ("hst", Tz::Pacific__Honolulu),
            ("bst", Tz::Europe__London),
            ("cet", Tz::Europe__Paris),
            ("cest", Tz::Europe__Paris),
            ("eet", Tz::Europe__Bucharest),
            ("eest", Tz::Europe__Bucharest),
            ("wet", Tz::Europe__Lisbon),
            ("west", Tz::Europe__Lisbon),
            ("jst", Tz::Asia__Tokyo),
            ("aest", Tz::Australia__Sydney),
            ("aedt", Tz::Australia__Sydney),
            ("nzst", Tz::Pacific__Auckland),
            ("nzdt", Tz::Pacific__Auckland),
        ] {
            names.insert(name.to_string(), tz);
        }
        names
    })
}

// ---------------------------------------------------------------------------------------
// Patterns

/// A date-time field (`java.time.temporal.ChronoField`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Era,
    YearOfEra,
    Year,
    Quarter,
    Month,
    DayOfYear,
    DayOfMonth,
    DayOfWeek,
    AmPm,
    HourOfAmPm,
    ClockHourOfAmPm,
    HourOfDay,
    ClockHourOfDay,
    Minute,
    Second,
    NanoOfSecond,
    NanoOfDay,
    MilliOfDay,
}

const N_FIELDS: usize = 18;

impl Field {
    /// Java's name (its messages use it).
    fn name(self) -> &'static str {
        match self {
            Field::Era => "Era",
            Field::YearOfEra => "YearOfEra",
            Field::Year => "Year",
            Field::Quarter => "QuarterOfYear",
            Field::Month => "MonthOfYear",
            Field::DayOfYear => "DayOfYear",
            Field::DayOfMonth => "DayOfMonth",
            Field::DayOfWeek => "DayOfWeek",
            Field::AmPm => "AmPmOfDay",
            Field::HourOfAmPm => "HourOfAmPm",
            Field::ClockHourOfAmPm => "ClockHourOfAmPm",
            Field::HourOfDay => "HourOfDay",
            Field::ClockHourOfDay => "ClockHourOfDay",
            Field::Minute => "MinuteOfHour",
            Field::Second => "SecondOfMinute",
            Field::NanoOfSecond => "NanoOfSecond",
            Field::NanoOfDay => "NanoOfDay",
            Field::MilliOfDay => "MilliOfDay",
        }
    }

    /// The valid values (`ChronoField.range()`; day of month's largest).
    fn range(self) -> (i64, i64) {
        match self {
            Field::Era | Field::AmPm => (0, 1),
            Field::YearOfEra => (1, 1_000_000_000),
            Field::Year => (-999_999_999, 999_999_999),
            Field::Quarter => (1, 4),
            Field::Month => (1, 12),
            Field::DayOfYear => (1, 366),
            Field::DayOfMonth => (1, 31),
            Field::DayOfWeek => (1, 7),
            Field::HourOfAmPm => (0, 11),
            Field::ClockHourOfAmPm => (1, 12),
            Field::HourOfDay => (0, 23),
            Field::ClockHourOfDay => (1, 24),
            Field::Minute | Field::Second => (0, 59),
            Field::NanoOfSecond => (0, 999_999_999),
            Field::NanoOfDay => (0, 86_400 * 1_000_000_000 - 1),
            Field::MilliOfDay => (0, 86_400_000 - 1),
        }
    }

    fn check(self, value: i64) -> Result<i64> {
        let (min, max) = self.range();
        if value < min || value > max {
            return Err(format!(
                "Invalid value for {} (valid values {min} - {max}): {value}",
                self.name()
            ));
        }
        Ok(value)
    }

    fn is_date(self) -> bool {
        matches!(
            self,
            Field::Era
                | Field::YearOfEra
                | Field::Year
                | Field::Month
                | Field::DayOfYear
                | Field::DayOfMonth
                | Field::DayOfWeek
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignStyle {
    Normal,
    NotNegative,
    ExceedsPad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextStyle {
    Short,
    Full,
    Narrow,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Literal(String),
    Number {
        field: Field,
        min: usize,
        max: usize,
        sign: SignStyle,
        /// Java's `subsequentWidth`: -1 fixed width (adjacent to an earlier value), > 0 the
        /// digits the fixed-width values right after it take.
        subsequent: i32,
    },
    /// `yy`: two digits of a year from 2000.
    Reduced {
        field: Field,
        subsequent: i32,
    },
    /// `S...`: the nano-of-second as a fraction of `width` digits.
    Fraction {
        width: usize,
    },
    Text {
        field: Field,
        style: TextStyle,
    },
    ZoneId,
    ZoneText,
    /// `X`, `x`, `Z`: one of Java's offset patterns (`+HH:MM`, ...), and the text of zero.
    Offset {
        pattern: usize,
        zero: &'static str,
    },
    /// `O`, `ZZZZ`: `GMT+8` or (`full`) `GMT+08:00`.
    LocalizedOffset {
        full: bool,
    },
    Optional(Vec<Item>),
}

/// Java's offset patterns (`DateTimeFormatterBuilder.OffsetIdPrinterParser.PATTERNS`).
const OFFSET_PATTERNS: [&str; 11] = [
    "+HH",
    "+HHmm",
    "+HH:mm",
    "+HHMM",
    "+HH:MM",
    "+HHMMss",
    "+HH:MM:ss",
    "+HHMMSS",
    "+HH:MM:SS",
    "+HHmmss",
    "+HH:mm:ss",
];

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    items: Vec<Item>,
}

/// Builds items as `DateTimeFormatterBuilder` does, tracking the active value parser for
/// adjacent value parsing.
struct Builder {
    /// Open sections: the outermost first.
    sections: Vec<(Vec<Item>, Option<usize>)>,
}

impl Builder {
    fn current(&mut self) -> &mut (Vec<Item>, Option<usize>) {
        // The builder always holds the outermost section.
        let last = self.sections.len() - 1;
        &mut self.sections[last]
    }

    fn append(&mut self, item: Item) {
        let (items, active) = self.current();
        items.push(item);
        *active = None;
    }

    /// `appendValue(NumberPrinterParser)`: a fixed-width value right after another value
    /// makes that one leave it its digits.
    fn append_value(&mut self, mut item: Item) {
        let (items, active) = self.current();
        if let Some(base) = *active {
            let (fixed, width) = match &item {
                Item::Number { min, max, sign, .. } => {
                    (*min == *max && *sign == SignStyle::NotNegative, *max)
                }
                Item::Reduced { .. } => (true, 2),
                Item::Fraction { width } => (true, *width),
                _ => (false, 0),
            };
            if fixed {
                match &mut items[base] {
                    Item::Number { subsequent, .. } | Item::Reduced { subsequent, .. } => {
                        *subsequent = (*subsequent).max(0) + width as i32;
                    }
                    _ => {}
                }
                set_fixed(&mut item);
                items.push(item);
                return;
            }
            set_fixed(&mut items[base]);
        }
        items.push(item);
        *active = Some(items.len() - 1);
    }
}

fn set_fixed(item: &mut Item) {
    if let Item::Number { subsequent, .. } | Item::Reduced { subsequent, .. } = item {
        *subsequent = -1;
    }
}

impl Pattern {
    /// Compiles a pattern, refusing what `DateTimeFormatter.ofPattern` refuses (and the
    /// letters Sluice does not do).
    pub(crate) fn compile(pattern: &str) -> Result<Pattern> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut builder = Builder {
            sections: vec![(Vec::new(), None)],
        };
        let mut at = 0;
        while at < chars.len() {
            let c = chars[at];
            if c.is_ascii_alphabetic() {
                let start = at;
                while at < chars.len() && chars[at] == c {
                    at += 1;
                }
                letters(&mut builder, c, at - start)?;
                continue;
            }
            match c {
                '\'' => {
                    // A quoted literal; '' inside is a quote, '' alone too.
                    let mut literal = String::new();
                    at += 1;
                    let mut closed = false;
                    while at < chars.len() {
                        if chars[at] == '\'' {
                            if chars.get(at + 1) == Some(&'\'') {
                                literal.push('\'');
                                at += 2;
                                continue;
                            }
                            closed = true;
                            at += 1;
                            break;
                        }
                        literal.push(chars[at]);
                        at += 1;
                    }
                    if !closed {
                        return Err(format!(
                            "Pattern ends with an incomplete string literal: {pattern}"
                        ));
                    }
                    builder.append(Item::Literal(if literal.is_empty() {
                        "'".to_string()
                    } else {
                        literal
                    }));
                    continue;
                }
                '[' => {
                    builder.current().1 = None;
                    builder.sections.push((Vec::new(), None));
                }
                ']' => {
                    if builder.sections.len() == 1 {
                        return Err(
                            "Pattern invalid as it contains ] without previous [".to_string()
                        );
                    }
                    close_section(&mut builder);
                }
                '{' | '}' | '#' => {
                    return Err(format!("Pattern includes reserved character: '{c}'"));
                }
                _ => builder.append(Item::Literal(c.to_string())),
            }
            at += 1;
        }
        while builder.sections.len() > 1 {
            close_section(&mut builder);
        }
        let items = builder
            .sections
            .pop()
            .map(|(items, _)| items)
            .unwrap_or_default();
        Ok(Pattern { items })
    }
}

fn close_section(builder: &mut Builder) {
    if let Some((items, _)) = builder.sections.pop() {
        if !items.is_empty() {
            builder.append(Item::Optional(items));
        }
    }
}

/// `DateTimeFormatterBuilder.parseField`: a run of `count` letters `c`.
fn letters(builder: &mut Builder, c: char, count: usize) -> Result<()> {
    let too_many = || Err(format!("Too many pattern letters: {c}"));
    // `appendValue` and `appendFraction` take at most 19 and 9 digits.
    if count > 19 && "yuDnNA".contains(c) {
        return Err(format!(
            "The minimum width must be from 1 to 19 inclusive but was {count}"
        ));
    }
    if count > 9 && c == 'S' {
        return Err(format!(
            "Minimum width must be from 0 to 9 inclusive but was {count}"
        ));
    }
    let number = |field, min, max, sign| Item::Number {
        field,
        min,
        max,
        sign,
        subsequent: 0,
    };
    let value = |field: Field, count: usize| {
        if count == 1 {
            number(field, 1, 19, SignStyle::Normal)
        } else {
            number(field, count, count, SignStyle::NotNegative)
        }
    };
    let text_style = |count: usize| match count {
        4 => TextStyle::Full,
        5 => TextStyle::Narrow,
        _ => TextStyle::Short,
    };
    match c {
        'G' => {
            if count > 5 {
                return too_many();
            }
            builder.append(Item::Text {
                field: Field::Era,
                style: text_style(count),
            });
        }
        'y' | 'u' => {
            let field = if c == 'y' {
                Field::YearOfEra
            } else {
                Field::Year
            };
            if count == 2 {
                builder.append_value(Item::Reduced {
                    field,
                    subsequent: 0,
                });
            } else if count < 4 {
                builder.append_value(number(field, count, 19, SignStyle::Normal));
            } else {
                builder.append_value(number(field, count, 19, SignStyle::ExceedsPad));
            }
        }
        'Q' | 'q' | 'M' | 'L' => {
            let field = if c == 'Q' || c == 'q' {
                Field::Quarter
            } else {
                Field::Month
            };
            match count {
                1 | 2 => builder.append_value(value(field, count)),
                3..=5 => builder.append(Item::Text {
                    field,
                    style: text_style(count),
                }),
                _ => return too_many(),
            }
        }
        'd' | 'h' | 'H' | 'k' | 'K' | 'm' | 's' => {
            let field = match c {
                'd' => Field::DayOfMonth,
                'h' => Field::ClockHourOfAmPm,
                'H' => Field::HourOfDay,
                'k' => Field::ClockHourOfDay,
                'K' => Field::HourOfAmPm,
                'm' => Field::Minute,
                _ => Field::Second,
            };
            if count > 2 {
                return too_many();
            }
            builder.append_value(value(field, count));
        }
        'D' => match count {
            1 => builder.append_value(value(Field::DayOfYear, 1)),
            2 => builder.append_value(number(Field::DayOfYear, 2, 3, SignStyle::NotNegative)),
            3 => builder.append_value(value(Field::DayOfYear, 3)),
            _ => return too_many(),
        },
        'E' => {
            if count > 5 {
                return too_many();
            }
            builder.append(Item::Text {
                field: Field::DayOfWeek,
                style: text_style(count),
            });
        }
        'a' => {
            if count > 1 {
                return too_many();
            }
            builder.append(Item::Text {
                field: Field::AmPm,
                style: TextStyle::Short,
            });
        }
        'S' => builder.append_value(Item::Fraction { width: count }),
        'n' => builder.append_value(value(Field::NanoOfSecond, count)),
        'N' => builder.append_value(value(Field::NanoOfDay, count)),
        'A' => builder.append_value(value(Field::MilliOfDay, count)),
        'V' => {
            if count != 2 {
                return Err("Pattern letter count must be 2: V".to_string());
            }
            builder.append(Item::ZoneId);
        }
        'z' => match count {
            1..=3 => builder.append(Item::ZoneText),
            4 => return Err("Full time-zone names (zzzz) are not supported".to_string()),
            _ => return too_many(),
        },
        'O' => match count {
            1 => builder.append(Item::LocalizedOffset { full: false }),
            4 => builder.append(Item::LocalizedOffset { full: true }),
            _ => return Err("Pattern letter count must be 1 or 4: O".to_string()),
        },
        'X' | 'x' => {
            if count > 5 {
                return too_many();
            }
            let pattern = [1, 3, 4, 5, 6][count - 1];
            let zero = if c == 'X' {
                "Z"
            } else {
                ["+00", "+0000", "+00:00", "+0000", "+00:00"][count - 1]
            };
            builder.append(Item::Offset { pattern, zero });
        }
        'Z' => match count {
            1..=3 => builder.append(Item::Offset {
                pattern: 3,
                zero: "+0000",
            }),
            4 => builder.append(Item::LocalizedOffset { full: true }),
            5 => builder.append(Item::Offset {
                pattern: 6,
                zero: "Z",
            }),
            _ => return too_many(),
        },
        'Y' | 'w' | 'W' | 'e' | 'c' | 'F' | 'p' => {
            return Err(format!(
                "Pattern letter '{c}' (locale-dependent weeks, padding) is not supported"
            ))
        }
        _ => return Err(format!("Unknown pattern letter: {c}")),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Formatting

/// What a value to format has: a date, a time, a zone (a `TIMESTAMP` has all three).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Temporal<'a> {
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    /// The zone, its offset and the instant in UTC.
    zone: Option<(&'a Zone, i32, NaiveDateTime)>,
}

impl<'a> Temporal<'a> {
    /// A `LocalDate`.
    pub(crate) fn date(date: NaiveDate) -> Temporal<'a> {
        Temporal {
            date: Some(date),
            time: None,
            zone: None,
        }
    }

    /// A `LocalTime`.
    pub(crate) fn time(time: NaiveTime) -> Temporal<'a> {
        Temporal {
            date: None,
            time: Some(time),
            zone: None,
        }
    }

    /// The instant `millis` (since the epoch) in `zone`: a `ZonedDateTime`.
    pub(crate) fn instant(millis: i64, zone: &'a Zone) -> Result<Temporal<'a>> {
        let utc = DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| format!("Instant exceeds minimum or maximum instant: {millis}"))?
            .naive_utc();
        let offset = zone.offset_at(&utc);
        let local = plus_seconds(utc, i64::from(offset))?;
        Ok(Temporal {
            date: Some(local.date()),
            time: Some(local.time()),
            zone: Some((zone, offset, utc)),
        })
    }

    fn get(&self, field: Field) -> Option<i64> {
        let date = || self.date;
        let time = || self.time;
        Some(match field {
            Field::Era => i64::from(date()?.year() > 0),
            Field::YearOfEra => {
                let year = i64::from(date()?.year());
                if year > 0 {
                    year
                } else {
                    1 - year
                }
            }
            Field::Year => i64::from(date()?.year()),
            Field::Quarter => i64::from((date()?.month() - 1) / 3 + 1),
            Field::Month => i64::from(date()?.month()),
            Field::DayOfYear => i64::from(date()?.ordinal()),
            Field::DayOfMonth => i64::from(date()?.day()),
            Field::DayOfWeek => i64::from(date()?.weekday().number_from_monday()),
            Field::AmPm => i64::from(time()?.hour() / 12),
            Field::HourOfAmPm => i64::from(time()?.hour() % 12),
            Field::ClockHourOfAmPm => match time()?.hour() % 12 {
                0 => 12,
                h => i64::from(h),
            },
            Field::HourOfDay => i64::from(time()?.hour()),
            Field::ClockHourOfDay => match time()?.hour() {
                0 => 24,
                h => i64::from(h),
            },
            Field::Minute => i64::from(time()?.minute()),
            Field::Second => i64::from(time()?.second()),
            Field::NanoOfSecond => i64::from(time()?.nanosecond()),
            Field::NanoOfDay => {
                let t = time()?;
                i64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(t.nanosecond())
            }
            Field::MilliOfDay => {
                let t = time()?;
                i64::from(t.num_seconds_from_midnight()) * 1000
                    + i64::from(t.nanosecond() / 1_000_000)
            }
        })
    }
}

impl Pattern {
    /// `temporal` formatted (`DateTimeFormatter.format`).
    pub(crate) fn format(&self, temporal: &Temporal) -> Result<String> {
        let mut out = String::new();
        format_items(&self.items, temporal, &mut out, false)?;
        Ok(out)
    }
}

/// Formats `items`; in an optional section a missing field ends it unprinted (`Ok(false)`).
fn format_items(items: &[Item], t: &Temporal, out: &mut String, optional: bool) -> Result<bool> {
    let field_value = |field: Field| -> Result<Option<i64>> {
        match t.get(field) {
            Some(v) => Ok(Some(v)),
            None if optional => Ok(None),
            None => Err(format!("Unsupported field: {}", field.name())),
        }
    };
    let zone = || -> Result<Option<(&Zone, i32, NaiveDateTime)>> {
        match t.zone {
            Some(z) => Ok(Some(z)),
            None if optional => Ok(None),
            None => Err("Unable to extract ZoneId from temporal".to_string()),
        }
    };
    for item in items {
        match item {
            Item::Literal(text) => out.push_str(text),
            Item::Number {
                field,
                min,
                max,
                sign,
                ..
            } => {
                let Some(value) = field_value(*field)? else {
                    return Ok(false);
                };
                let digits = value.unsigned_abs().to_string();
                if digits.len() > *max {
                    return Err(format!(
                        "Field {} cannot be printed as the value {value} exceeds the maximum print width of {max}",
                        field.name()
                    ));
                }
                if value >= 0 {
                    if *sign == SignStyle::ExceedsPad
                        && *min < 19
                        && value >= 10i64.pow(*min as u32)
                    {
                        out.push('+');
                    }
                } else if *sign == SignStyle::NotNegative {
                    return Err(format!(
                        "Field {} cannot be printed as the value {value} cannot be negative according to the SignStyle",
                        field.name()
                    ));
                } else {
                    out.push('-');
                }
                for _ in digits.len()..*min {
                    out.push('0');
                }
                out.push_str(&digits);
            }
            Item::Reduced { field, .. } => {
                let Some(value) = field_value(*field)? else {
                    return Ok(false);
                };
                let _ = std::fmt::Write::write_fmt(out, format_args!("{:02}", value.abs() % 100));
            }
            Item::Fraction { width } => {
                let Some(nanos) = field_value(Field::NanoOfSecond)? else {
                    return Ok(false);
                };
                // The fraction's digits, truncated or padded with zeros to the width.
                let digits = format!("{nanos:09}");
                let mut text: String = digits.chars().take(*width).collect();
                while text.len() < *width {
                    text.push('0');
                }
                out.push_str(&text);
            }
            Item::Text { field, style } => {
                let Some(value) = field_value(*field)? else {
                    return Ok(false);
                };
                out.push_str(&text_of(*field, *style, value));
            }
            Item::ZoneId => {
                let Some((zone, ..)) = zone()? else {
                    return Ok(false);
                };
                out.push_str(&zone.id);
            }
            Item::ZoneText => {
                let Some((zone, _, utc)) = zone()? else {
                    return Ok(false);
                };
                if zone.is_offset {
                    out.push_str(&zone.id);
                } else {
                    out.push_str(&zone.short_name(&utc));
                }
            }
            Item::Offset { pattern, zero } => {
                let Some((_, offset, _)) = offset_of(t, optional)? else {
                    return Ok(false);
                };
                format_offset(out, *pattern, zero, offset);
            }
            Item::LocalizedOffset { full } => {
                let Some((_, offset, _)) = offset_of(t, optional)? else {
                    return Ok(false);
                };
                format_localized_offset(out, *full, offset);
            }
            Item::Optional(inner) => {
                let mut section = String::new();
                if format_items(inner, t, &mut section, true)? {
                    out.push_str(&section);
                }
            }
        }
    }
    Ok(true)
}

fn offset_of<'a>(
    t: &Temporal<'a>,
    optional: bool,
) -> Result<Option<(&'a Zone, i32, NaiveDateTime)>> {
    match t.zone {
        Some(z) => Ok(Some(z)),
        None if optional => Ok(None),
        None => Err("Unsupported field: OffsetSeconds".to_string()),
    }
}

/// `OffsetIdPrinterParser.format`.
fn format_offset(out: &mut String, pattern: usize, zero: &str, offset: i32) {
    if offset == 0 {
        out.push_str(zero);
        return;
    }
    let colon = OFFSET_PATTERNS[pattern].contains(':');
    let abs = offset.unsigned_abs();
    let (h, m, s) = (abs / 3600 % 100, abs / 60 % 60, abs % 60);
    out.push(if offset < 0 { '-' } else { '+' });
    let _ = std::fmt::Write::write_fmt(out, format_args!("{h:02}"));
    let sep = if colon { ":" } else { "" };
    if (3..=8).contains(&pattern) || (pattern >= 9 && s > 0) || (pattern >= 1 && m > 0) {
        let _ = std::fmt::Write::write_fmt(out, format_args!("{sep}{m:02}"));
        if pattern == 7 || pattern == 8 || (pattern >= 5 && s > 0) {
            let _ = std::fmt::Write::write_fmt(out, format_args!("{sep}{s:02}"));
        }
    }
}

/// `LocalizedOffsetIdPrinterParser.format`.
fn format_localized_offset(out: &mut String, full: bool, offset: i32) {
    out.push_str("GMT");
    if offset == 0 {
        return;
    }
    let abs = offset.unsigned_abs();
    let (h, m, s) = (abs / 3600 % 100, abs / 60 % 60, abs % 60);
    out.push(if offset < 0 { '-' } else { '+' });
    if full {
        let _ = std::fmt::Write::write_fmt(out, format_args!("{h:02}:{m:02}"));
        if s != 0 {
            let _ = std::fmt::Write::write_fmt(out, format_args!(":{s:02}"));
        }
    } else {
        let _ = std::fmt::Write::write_fmt(out, format_args!("{h}"));
        if m != 0 || s != 0 {
            let _ = std::fmt::Write::write_fmt(out, format_args!(":{m:02}"));
            if s != 0 {
                let _ = std::fmt::Write::write_fmt(out, format_args!(":{s:02}"));
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// English text of a field's value (Java's `en` names).
fn text_of(field: Field, style: TextStyle, value: i64) -> String {
    let at = |v: i64, n: usize| usize::try_from(v).ok().filter(|i| *i < n);
    let named = match field {
        Field::Month => at(value - 1, 12).map(|i| MONTHS[i]).map(|m| match style {
            TextStyle::Full => m.to_string(),
            TextStyle::Short => m[..3].to_string(),
            TextStyle::Narrow => m[..1].to_string(),
        }),
        Field::DayOfWeek => at(value - 1, 7).map(|i| DAYS[i]).map(|d| match style {
            TextStyle::Full => d.to_string(),
            TextStyle::Short => d[..3].to_string(),
            TextStyle::Narrow => d[..1].to_string(),
        }),
        Field::Era => at(value, 2).map(|i| {
            match style {
                TextStyle::Full => ["Before Christ", "Anno Domini"][i],
                TextStyle::Short => ["BC", "AD"][i],
                TextStyle::Narrow => ["B", "A"][i],
            }
            .to_string()
        }),
        Field::AmPm => at(value, 2).map(|i| ["AM", "PM"][i].to_string()),
        Field::Quarter => at(value - 1, 4).map(|i| match style {
            TextStyle::Full => {
                ["1st quarter", "2nd quarter", "3rd quarter", "4th quarter"][i].to_string()
            }
            TextStyle::Short => format!("Q{}", i + 1),
            TextStyle::Narrow => format!("{}", i + 1),
        }),
        _ => None,
    };
    named.unwrap_or_else(|| value.to_string())
}

/// The names a text field parses from, longest first (Java tries them so).
fn texts(field: Field, style: TextStyle) -> Vec<(String, i64)> {
    let values: &[i64] = match field {
        Field::Month => &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        Field::DayOfWeek => &[1, 2, 3, 4, 5, 6, 7],
        Field::Era | Field::AmPm => &[0, 1],
        Field::Quarter => &[1, 2, 3, 4],
        _ => &[],
    };
    let mut names: Vec<(String, i64)> = values
        .iter()
        .map(|v| (text_of(field, style, *v), *v))
        .collect();
    names.sort_by_key(|(name, _)| std::cmp::Reverse(name.chars().count()));
    names
}

// ---------------------------------------------------------------------------------------
// Parsing

/// The fields a parse found (Java's `Parsed` before resolving).
#[derive(Debug, Clone, Default)]
struct Parsed {
    fields: [Option<i64>; N_FIELDS],
    offset: Option<i64>,
    zone: Option<Zone>,
}

impl Parsed {
    fn get(&self, field: Field) -> Option<i64> {
        self.fields[field as usize]
    }

    /// `setParsedField`: a second, different value of a field fails the parse there.
    fn set(&mut self, field: Field, value: i64) -> bool {
        let slot = &mut self.fields[field as usize];
        match *slot {
            Some(old) if old != value => false,
            _ => {
                *slot = Some(value);
                true
            }
        }
    }

    fn take(&mut self, field: Field) -> Option<i64> {
        self.fields[field as usize].take()
    }
}

fn chars_equal(a: char, b: char) -> bool {
    a == b || a.to_uppercase().eq(b.to_uppercase()) || a.to_lowercase().eq(b.to_lowercase())
}

fn starts_with_ci(text: &[char], at: usize, prefix: &str) -> bool {
    let mut i = at;
    for p in prefix.chars() {
        match text.get(i) {
            Some(c) if chars_equal(*c, p) => i += 1,
            _ => return false,
        }
    }
    true
}

/// Parses `items` from `text` at `at`: the position after them, or `Err(position)` where
/// the parse failed.
fn parse_items(
    items: &[Item],
    text: &[char],
    mut at: usize,
    parsed: &mut Parsed,
) -> std::result::Result<usize, usize> {
    for item in items {
        at = parse_item(item, text, at, parsed)?;
    }
    Ok(at)
}

fn parse_item(
    item: &Item,
    text: &[char],
    at: usize,
    parsed: &mut Parsed,
) -> std::result::Result<usize, usize> {
    match item {
        Item::Literal(literal) => {
            if starts_with_ci(text, at, literal) {
                Ok(at + literal.chars().count())
            } else {
                Err(at)
            }
        }
        Item::Number {
            field,
            min,
            max,
            sign,
            subsequent,
        } => {
            let (value, end) = parse_number(text, at, *min, *max, *sign, *subsequent)?;
            if parsed.set(*field, value) {
                Ok(end)
            } else {
                Err(at)
            }
        }
        Item::Reduced { field, subsequent } => {
            let (value, end) = parse_number(text, at, 2, 2, SignStyle::NotNegative, *subsequent)?;
            // Two digits: a year from 2000 to 2099.
            let value = if end - at == 2 && value >= 0 {
                2000 + value
            } else {
                value
            };
            if parsed.set(*field, value) {
                Ok(end)
            } else {
                Err(at)
            }
        }
        Item::Fraction { width } => {
            if at == text.len() {
                return Err(at);
            }
            let min_end = at + width;
            if min_end > text.len() {
                return Err(at);
            }
            let max_end = (at + width).min(text.len());
            let mut total: i64 = 0;
            let mut pos = at;
            while pos < max_end {
                let c = text[pos];
                pos += 1;
                match c.to_digit(10).filter(|_| c.is_ascii_digit()) {
                    Some(d) => total = total * 10 + i64::from(d),
                    None => {
                        // Java's check comes after its increment: one digit short passes.
                        if pos < min_end {
                            return Err(at);
                        }
                        pos -= 1;
                        break;
                    }
                }
            }
            let digits = pos - at;
            let nanos = total * 10i64.pow(9u32.saturating_sub(digits as u32));
            if parsed.set(Field::NanoOfSecond, nanos) {
                Ok(pos)
            } else {
                Err(at)
            }
        }
        Item::Text { field, style } => {
            for (name, value) in texts(*field, *style) {
                if starts_with_ci(text, at, &name) {
                    return if parsed.set(*field, value) {
                        Ok(at + name.chars().count())
                    } else {
                        Err(at)
                    };
                }
            }
            Err(at)
        }
        Item::ZoneId => parse_zone(text, at, parsed, false),
        Item::ZoneText => parse_zone(text, at, parsed, true),
        Item::Offset { pattern, zero } => {
            let (offset, end) = parse_offset(text, at, *pattern, zero)?;
            parsed.offset = Some(offset);
            Ok(end)
        }
        Item::LocalizedOffset { full } => {
            let (offset, end) = parse_localized_offset(text, at, *full)?;
            parsed.offset = Some(offset);
            Ok(end)
        }
        Item::Optional(inner) => {
            let mut attempt = parsed.clone();
            match parse_items(inner, text, at, &mut attempt) {
                Ok(end) => {
                    *parsed = attempt;
                    Ok(end)
                }
                Err(_) => Ok(at),
            }
        }
    }
}

/// `NumberPrinterParser.parse` in strict mode.
fn parse_number(
    text: &[char],
    start: usize,
    min: usize,
    max: usize,
    sign: SignStyle,
    subsequent: i32,
) -> std::result::Result<(i64, usize), usize> {
    let length = text.len();
    if start == length {
        return Err(start);
    }
    let mut position = start;
    let (mut negative, mut positive) = (false, false);
    match text[position] {
        '+' => {
            if sign != SignStyle::ExceedsPad {
                return Err(position);
            }
            positive = true;
            position += 1;
        }
        '-' => {
            if sign == SignStyle::NotNegative {
                return Err(position);
            }
            negative = true;
            position += 1;
        }
        _ => {}
    }
    let min_end = position + min;
    if min_end > length {
        return Err(position);
    }
    let mut max_width = max + subsequent.max(0) as usize;
    let mut total: i64 = 0;
    let mut pos = position;
    for pass in 0..2 {
        let max_end = (pos + max_width).min(length);
        while pos < max_end {
            let c = text[pos];
            pos += 1;
            if !c.is_ascii_digit() {
                pos -= 1;
                if pos < min_end {
                    return Err(position);
                }
                break;
            }
            total = total
                .checked_mul(10)
                .and_then(|t| t.checked_add(i64::from(c as u8 - b'0')))
                .ok_or(position)?;
        }
        if subsequent > 0 && pass == 0 {
            // Again, leaving the fixed-width values after it their digits.
            let parsed_len = pos - position;
            max_width = min.max(parsed_len.saturating_sub(subsequent as usize));
            pos = position;
            total = 0;
        } else {
            break;
        }
    }
    if negative {
        if total == 0 {
            return Err(position - 1);
        }
        total = -total;
    } else if sign == SignStyle::ExceedsPad {
        let parsed_len = pos - position;
        if positive {
            if parsed_len <= min {
                return Err(position - 1);
            }
        } else if parsed_len > min {
            return Err(position);
        }
    }
    Ok((total, pos))
}

/// Two digits at `at` (at most 59), after a colon if `colon`.
fn offset_digits(text: &[char], at: usize, colon: bool, first: bool) -> Option<(i64, usize)> {
    let mut pos = at;
    if colon && !first {
        if text.get(pos) != Some(&':') {
            return None;
        }
        pos += 1;
    }
    let (a, b) = (text.get(pos)?, text.get(pos + 1)?);
    if !a.is_ascii_digit() || !b.is_ascii_digit() {
        return None;
    }
    let value = i64::from(*a as u8 - b'0') * 10 + i64::from(*b as u8 - b'0');
    if value > 59 {
        return None;
    }
    Some((value, pos + 2))
}

/// `OffsetIdPrinterParser.parse` (Java 11) of one of [`OFFSET_PATTERNS`].
fn parse_offset(
    text: &[char],
    at: usize,
    pattern: usize,
    zero: &str,
) -> std::result::Result<(i64, usize), usize> {
    if at == text.len() {
        return Err(at);
    }
    if starts_with_ci(text, at, zero) {
        return Ok((0, at + zero.chars().count()));
    }
    let sign = match text[at] {
        '+' => 1,
        '-' => -1,
        _ => return Err(at),
    };
    let colon = OFFSET_PATTERNS[pattern].contains(':');
    let Some((hours, mut pos)) = offset_digits(text, at + 1, colon, true) else {
        return Err(at);
    };
    let (mut minutes, mut seconds) = (0, 0);
    let minute_needed = (3..=8).contains(&pattern);
    let has_minutes = pattern >= 1;
    if has_minutes {
        match offset_digits(text, pos, colon, false) {
            Some((m, end)) => {
                minutes = m;
                pos = end;
                let second_needed = pattern == 7 || pattern == 8;
                if pattern >= 5 {
                    match offset_digits(text, pos, colon, false) {
                        Some((s, end)) => {
                            seconds = s;
                            pos = end;
                        }
                        None if second_needed => return Err(at),
                        None => {}
                    }
                }
            }
            None if minute_needed => return Err(at),
            None => {}
        }
    }
    if hours > 23 {
        return Err(at);
    }
    Ok((sign * (hours * 3600 + minutes * 60 + seconds), pos))
}

/// `GMT`, then an offset as `O` prints it.
fn parse_localized_offset(
    text: &[char],
    at: usize,
    full: bool,
) -> std::result::Result<(i64, usize), usize> {
    if !starts_with_ci(text, at, "GMT") {
        return Err(at);
    }
    let mut pos = at + 3;
    let sign = match text.get(pos) {
        Some('+') => 1,
        Some('-') => -1,
        _ => return Ok((0, pos)),
    };
    pos += 1;
    let digit = |i: usize| {
        text.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| i64::from(*c as u8 - b'0'))
    };
    let hours = match (digit(pos), digit(pos + 1)) {
        (Some(a), Some(b)) => {
            pos += 2;
            a * 10 + b
        }
        (Some(a), None) if !full => {
            pos += 1;
            a
        }
        _ => return Err(at),
    };
    let mut total = hours * 3600;
    match offset_digits(text, pos, true, false) {
        Some((m, end)) => {
            total += m * 60;
            pos = end;
            if let Some((s, end)) = offset_digits(text, pos, true, false) {
                total += s;
                pos = end;
            }
        }
        None if full => return Err(at),
        None => {}
    }
    if hours > 23 {
        return Err(at);
    }
    Ok((sign * total, pos))
}

/// `ZoneTextPrinterParser.parse` / `ZoneIdPrinterParser.parse`: an offset, `UTC`/`GMT`/`UT`
/// (with an offset), a zone ID or name (longest match), or `Z`.
fn parse_zone(
    text: &[char],
    at: usize,
    parsed: &mut Parsed,
    with_names: bool,
) -> std::result::Result<usize, usize> {
    let Some(&first) = text.get(at) else {
        return Err(at);
    };
    if first == '+' || first == '-' {
        let (offset, end) = parse_offset(text, at, 6, "Z")?;
        parsed.zone = Some(Zone::offset(offset as i32));
        return Ok(end);
    }
    for prefix in ["UTC", "GMT", "UT"] {
        if starts_with_ci(text, at, prefix) {
            let after = at + prefix.len();
            if prefix == "GMT" && text.get(after) == Some(&'0') {
                break;
            }
            let id: String = text[at..after]
                .iter()
                .collect::<String>()
                .to_ascii_uppercase();
            match text.get(after) {
                Some('+') | Some('-') => {
                    if let Ok((offset, end)) = parse_offset(text, after, 6, "Z") {
                        parsed.zone = Some(Zone {
                            id: if offset == 0 {
                                id
                            } else {
                                format!("{id}{}", offset_id(offset as i32))
                            },
                            rules: Rules::Fixed(offset as i32),
                            is_offset: false,
                        });
                        return Ok(end);
                    }
                }
                _ => {}
            }
            parsed.zone = Some(Zone {
                id,
                rules: Rules::Fixed(0),
                is_offset: false,
            });
            return Ok(after);
        }
    }
    // The longest zone ID or name at `at`.
    let mut end = at;
    while end < text.len() && (text[end].is_ascii_alphanumeric() || "~/._+-".contains(text[end])) {
        end += 1;
    }
    let names = zone_names();
    while end > at {
        let candidate: String = text[at..end]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        let found = names
            .get(&candidate)
            .filter(|tz| with_names || tz.name().eq_ignore_ascii_case(&candidate));
        if let Some(tz) = found {
            parsed.zone = Some(Zone {
                id: tz.name().to_string(),
                rules: Rules::Tz(*tz),
                is_offset: false,
            });
            return Ok(end);
        }
        end -= 1;
    }
    if chars_equal(first, 'Z') {
        parsed.zone = Some(Zone::utc());
        return Ok(at + 1);
    }
    Err(at)
}

/// The fields of `text` resolved (`ResolverStyle.SMART`).
#[derive(Debug)]
struct Resolved {
    date: Option<NaiveDate>,
    time: Option<NaiveTime>,
    /// Fields left over (not combined into the date or time).
    fields: Parsed,
}

impl Pattern {
    fn parse_resolved(&self, text: &str) -> Result<Resolved> {
        let chars: Vec<char> = text.chars().collect();
        let mut parsed = Parsed::default();
        match parse_items(&self.items, &chars, 0, &mut parsed) {
            Ok(end) if end == chars.len() => {}
            Ok(end) => {
                return Err(format!(
                    "Text '{text}' could not be parsed, unparsed text found at index {end}"
                ))
            }
            Err(at) => return Err(format!("Text '{text}' could not be parsed at index {at}")),
        }
        resolve(parsed).map_err(|e| format!("Text '{text}' could not be parsed: {e}"))
    }
}

fn resolve(mut p: Parsed) -> Result<Resolved> {
    // Year of era (and era) to year.
    if let Some(yoe) = p.take(Field::YearOfEra) {
        Field::YearOfEra.check(yoe)?;
        let year = match p.take(Field::Era) {
            None => match p.get(Field::Year) {
                Some(y) if y <= 0 => 1 - yoe,
                _ => yoe,
            },
            Some(1) => yoe,
            Some(0) => 1 - yoe,
            Some(era) => return Err(format!("Invalid value for era: {era}")),
        };
        if !p.set(Field::Year, year) {
            return Err(format!(
                "Conflict found: Year {} differs from Year {year}",
                p.get(Field::Year).unwrap_or_default()
            ));
        }
    } else if let Some(era) = p.get(Field::Era) {
        Field::Era.check(era)?;
    }
    let mut date = None;
    if let Some(year) = p.get(Field::Year) {
        let year = Field::Year.check(year)?;
        if let (Some(month), Some(day)) = (p.get(Field::Month), p.get(Field::DayOfMonth)) {
            let month = Field::Month.check(month)?;
            let day = Field::DayOfMonth.check(day)?;
            // SMART: a day past the month's end is its last day.
            let last = days_in_month(year, month as u32);
            date = Some(ymd(year, month as u32, (day as u32).min(last))?);
            p.take(Field::Year);
            p.take(Field::Month);
            p.take(Field::DayOfMonth);
        } else if let Some(doy) = p.get(Field::DayOfYear) {
            let doy = Field::DayOfYear.check(doy)?;
            let year32 = i32::try_from(year).map_err(|_| "Year out of range".to_string())?;
            date = Some(NaiveDate::from_yo_opt(year32, doy as u32).ok_or_else(|| {
                format!("Invalid date 'DayOfYear 366' as '{year}' is not a leap year")
            })?);
            p.take(Field::Year);
            p.take(Field::DayOfYear);
        }
    }
    // Hours: clock hours, and hours of the half day with AM/PM, to the hour of the day.
    // SMART takes 0 for the clock hours too.
    if let Some(k) = p.take(Field::ClockHourOfDay) {
        if k != 0 {
            Field::ClockHourOfDay.check(k)?;
        }
        set_resolved(&mut p, Field::HourOfDay, if k == 24 { 0 } else { k })?;
    }
    if let Some(h) = p.take(Field::ClockHourOfAmPm) {
        if h != 0 {
            Field::ClockHourOfAmPm.check(h)?;
        }
        set_resolved(&mut p, Field::HourOfAmPm, if h == 12 { 0 } else { h })?;
    }
    if let (Some(ap), Some(hap)) = (p.get(Field::AmPm), p.get(Field::HourOfAmPm)) {
        let ap = Field::AmPm.check(ap)?;
        let hap = Field::HourOfAmPm.check(hap)?;
        p.take(Field::AmPm);
        p.take(Field::HourOfAmPm);
        set_resolved(&mut p, Field::HourOfDay, ap * 12 + hap)?;
    }
    if let Some(nod) = p.take(Field::NanoOfDay) {
        let nod = Field::NanoOfDay.check(nod)?;
        let second = nod / 1_000_000_000;
        set_resolved(&mut p, Field::HourOfDay, second / 3600)?;
        set_resolved(&mut p, Field::Minute, second / 60 % 60)?;
        set_resolved(&mut p, Field::Second, second % 60)?;
        set_resolved(&mut p, Field::NanoOfSecond, nod % 1_000_000_000)?;
    }
    if let Some(mod_) = p.take(Field::MilliOfDay) {
        let mod_ = Field::MilliOfDay.check(mod_)?;
        let second = mod_ / 1000;
        set_resolved(&mut p, Field::HourOfDay, second / 3600)?;
        set_resolved(&mut p, Field::Minute, second / 60 % 60)?;
        set_resolved(&mut p, Field::Second, second % 60)?;
        set_resolved(&mut p, Field::NanoOfSecond, mod_ % 1000 * 1_000_000)?;
    }
    let mut time = None;
    let mut excess_day = false;
    if let Some(hod) = p.get(Field::HourOfDay) {
        let (moh, som, nos) = (
            p.get(Field::Minute),
            p.get(Field::Second),
            p.get(Field::NanoOfSecond),
        );
        // Java leaves the fields as they are when the parts missing cannot default to 0.
        let incomplete = (moh.is_none() && (som.is_some() || nos.is_some()))
            || (moh.is_some() && som.is_none() && nos.is_some());
        if !incomplete {
            let (moh, som, nos) = (moh.unwrap_or(0), som.unwrap_or(0), nos.unwrap_or(0));
            if hod == 24 && moh == 0 && som == 0 && nos == 0 {
                time = Some(NaiveTime::MIN);
                excess_day = true;
            } else {
                let hod = Field::HourOfDay.check(hod)?;
                let moh = Field::Minute.check(moh)?;
                let som = Field::Second.check(som)?;
                let nos = Field::NanoOfSecond.check(nos)?;
                time = NaiveTime::from_hms_nano_opt(hod as u32, moh as u32, som as u32, nos as u32);
            }
            for field in [
                Field::HourOfDay,
                Field::Minute,
                Field::Second,
                Field::NanoOfSecond,
            ] {
                p.take(field);
            }
        }
    }
    if excess_day {
        date = match date {
            Some(d) => Some(d.succ_opt().ok_or("Date out of range")?),
            None => None,
        };
    }
    // What is left and the date or time has must agree with them.
    for field in all_fields() {
        let Some(value) = p.get(field) else { continue };
        // The quarter (an `IsoFields` field) is checked against the date too.
        let derived = if field.is_date() || field == Field::Quarter {
            date.map(|d| Temporal::date(d).get(field))
        } else {
            time.map(|t| Temporal::time(t).get(field))
        };
        if let Some(Some(derived)) = derived {
            if derived != value {
                return Err(format!(
                    "Conflict found: Field {} {derived} differs from {} {value} derived from {}",
                    field.name(),
                    field.name(),
                    match (date, time) {
                        (Some(d), _) if field.is_date() || field == Field::Quarter => {
                            d.to_string()
                        }
                        (_, Some(t)) => t.to_string(),
                        _ => String::new(),
                    }
                ));
            }
            p.take(field);
        }
    }
    Ok(Resolved {
        date,
        time,
        fields: p,
    })
}

fn set_resolved(p: &mut Parsed, field: Field, value: i64) -> Result<()> {
    if p.set(field, value) {
        Ok(())
    } else {
        Err(format!(
            "Conflict found: {} {} differs from {} {value}",
            field.name(),
            p.get(field).unwrap_or_default(),
            field.name()
        ))
    }
}

fn all_fields() -> [Field; N_FIELDS] {
    [
        Field::Era,
        Field::YearOfEra,
        Field::Year,
        Field::Quarter,
        Field::Month,
        Field::DayOfYear,
        Field::DayOfMonth,
        Field::DayOfWeek,
        Field::AmPm,
        Field::HourOfAmPm,
        Field::ClockHourOfAmPm,
        Field::HourOfDay,
        Field::ClockHourOfDay,
        Field::Minute,
        Field::Second,
        Field::NanoOfSecond,
        Field::NanoOfDay,
        Field::MilliOfDay,
    ]
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn ymd(year: i64, month: u32, day: u32) -> Result<NaiveDate> {
    i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        .ok_or_else(|| format!("Invalid date: year {year} is out of range"))
}

/// A `ZonedDateTime` being built: its local date-time, offset and zone.
struct Zoned<'a> {
    local: NaiveDateTime,
    offset: i32,
    zone: &'a Zone,
}

impl Zoned<'_> {
    /// `ZonedDateTime.with(field)` of a local field: the new local time, resolved keeping
    /// the offset where it is still valid.
    fn with_local(&mut self, local: NaiveDateTime) {
        let (local, offset) = self.zone.resolve_local(local, Some(self.offset));
        self.local = local;
        self.offset = offset;
    }

    fn with_date(&mut self, date: NaiveDate) {
        self.with_local(date.and_time(self.local.time()));
    }

    fn with_time(&mut self, time: NaiveTime) {
        self.with_local(self.local.date().and_time(time));
    }

    fn epoch_millis(&self) -> Result<i64> {
        let utc = plus_seconds(self.local, -i64::from(self.offset))?;
        Ok(utc.and_utc().timestamp_millis())
    }
}

/// `LocalDate.with(field, value)` for the date fields ksqlDB's parser sets.
fn plus_days(date: NaiveDate, days: i64) -> Result<NaiveDate> {
    date.checked_add_signed(Duration::days(days))
        .ok_or_else(|| "Date out of range".to_string())
}

fn date_with(date: NaiveDate, field: Field, value: i64) -> Result<NaiveDate> {
    let value = field.check(value)?;
    let out = match field {
        Field::DayOfWeek => {
            plus_days(date, value - i64::from(date.weekday().number_from_monday()))?
        }
        Field::DayOfMonth => date.with_day(value as u32).ok_or_else(|| {
            format!(
                "Invalid date '{} {value}'",
                MONTHS[date.month0() as usize].to_ascii_uppercase()
            )
        })?,
        Field::DayOfYear => date.with_ordinal(value as u32).ok_or_else(|| {
            format!(
                "Invalid date 'DayOfYear {value}' as '{}' is not a leap year",
                date.year()
            )
        })?,
        Field::Month => {
            let last = days_in_month(i64::from(date.year()), value as u32);
            ymd(i64::from(date.year()), value as u32, date.day().min(last))?
        }
        Field::Year => {
            let last = days_in_month(value, date.month());
            ymd(value, date.month(), date.day().min(last))?
        }
        Field::Era => {
            let era = i64::from(date.year() > 0);
            if era == value {
                date
            } else {
                let year = 1 - i64::from(date.year());
                ymd(
                    year,
                    date.month(),
                    date.day().min(days_in_month(year, date.month())),
                )?
            }
        }
        _ => date,
    };
    Ok(out)
}

/// `LocalTime.with(field, value)` for the time fields.
fn time_with(time: NaiveTime, field: Field, value: i64) -> Result<NaiveTime> {
    let value = field.check(value)?;
    let hour = i64::from(time.hour());
    let plus_hours = |h: i64| time + Duration::hours(h);
    let out = match field {
        Field::NanoOfSecond => time.with_nanosecond(value as u32).unwrap_or(time),
        Field::Second => time.with_second(value as u32).unwrap_or(time),
        Field::Minute => time.with_minute(value as u32).unwrap_or(time),
        Field::HourOfDay => time.with_hour(value as u32).unwrap_or(time),
        Field::HourOfAmPm => plus_hours(value - hour % 12),
        Field::AmPm => plus_hours((value - hour / 12) * 12),
        _ => time,
    };
    Ok(out)
}

/// A time's fields in `ChronoField` order (nano of second, nano of day, micro of second,
/// micro of day, milli of second, milli of day, second, second of day, minute, minute of
/// day, hour of AM/PM, clock hour of AM/PM, hour, clock hour, AM/PM), each as the change of
/// a local time `ZonedDateTime.with` makes.
fn time_steps(t: NaiveTime) -> Vec<Box<dyn Fn(NaiveTime) -> NaiveTime>> {
    let nano = t.nanosecond();
    let nano_of_day = t;
    let (h, m, s) = (t.hour(), t.minute(), t.second());
    let sec_of_day = i64::from(t.num_seconds_from_midnight());
    let min_of_day = i64::from(h * 60 + m);
    let with_nano = move |x: NaiveTime| x.with_nanosecond(nano).unwrap_or(x);
    let set_all = move |_: NaiveTime| nano_of_day;
    let micro_nano = nano / 1000 * 1000;
    let milli_nano = nano / 1_000_000 * 1_000_000;
    let micro_of_day = nano_of_day
        .with_nanosecond(micro_nano)
        .unwrap_or(nano_of_day);
    let milli_of_day = nano_of_day
        .with_nanosecond(milli_nano)
        .unwrap_or(nano_of_day);
    vec![
        Box::new(with_nano),
        Box::new(set_all),
        Box::new(move |x: NaiveTime| x.with_nanosecond(micro_nano).unwrap_or(x)),
        Box::new(move |_| micro_of_day),
        Box::new(move |x: NaiveTime| x.with_nanosecond(milli_nano).unwrap_or(x)),
        Box::new(move |_| milli_of_day),
        Box::new(move |x: NaiveTime| x.with_second(s).unwrap_or(x)),
        Box::new(move |x: NaiveTime| {
            x + Duration::seconds(sec_of_day - i64::from(x.num_seconds_from_midnight()))
        }),
        Box::new(move |x: NaiveTime| x.with_minute(m).unwrap_or(x)),
        Box::new(move |x: NaiveTime| {
            x + Duration::minutes(min_of_day - i64::from(x.hour() * 60 + x.minute()))
        }),
        Box::new(move |x: NaiveTime| {
            x + Duration::hours(i64::from(h % 12) - i64::from(x.hour() % 12))
        }),
        Box::new(move |x: NaiveTime| {
            x + Duration::hours(i64::from(h % 12) - i64::from(x.hour() % 12))
        }),
        Box::new(move |x: NaiveTime| x.with_hour(h).unwrap_or(x)),
        Box::new(move |x: NaiveTime| x.with_hour(h).unwrap_or(x)),
        Box::new(move |x: NaiveTime| {
            x + Duration::hours((i64::from(h / 12) - i64::from(x.hour() / 12)) * 12)
        }),
    ]
}

/// A date's fields in `ChronoField` order (day of week, aligned days of week in month and
/// year, day of month, day of year, epoch day, aligned weeks, month, proleptic month, year
/// of era, year, era), each as the change of a local date `ZonedDateTime.with` makes.
fn date_steps(d: NaiveDate) -> Vec<Box<dyn Fn(NaiveDate) -> NaiveDate>> {
    let dow = i64::from(d.weekday().number_from_monday());
    let aligned_dom = i64::from((d.day() - 1) % 7 + 1);
    let aligned_doy = i64::from((d.ordinal() - 1) % 7 + 1);
    let (day, ordinal) = (d.day(), d.ordinal());
    let aligned_wom = i64::from((d.day() - 1) / 7 + 1);
    let aligned_woy = i64::from((d.ordinal() - 1) / 7 + 1);
    let (year, month) = (d.year(), d.month());
    let proleptic = i64::from(year) * 12 + i64::from(month) - 1;
    let with_year = move |x: NaiveDate| {
        let last = days_in_month(i64::from(year), x.month());
        NaiveDate::from_ymd_opt(year, x.month(), x.day().min(last)).unwrap_or(x)
    };
    vec![
        Box::new(move |x: NaiveDate| {
            plus_days(x, dow - i64::from(x.weekday().number_from_monday())).unwrap_or(x)
        }),
        Box::new(move |x: NaiveDate| {
            plus_days(x, aligned_dom - i64::from((x.day() - 1) % 7 + 1)).unwrap_or(x)
        }),
        Box::new(move |x: NaiveDate| {
            plus_days(x, aligned_doy - i64::from((x.ordinal() - 1) % 7 + 1)).unwrap_or(x)
        }),
        Box::new(move |x: NaiveDate| x.with_day(day).unwrap_or(x)),
        Box::new(move |x: NaiveDate| {
            // ksqlDB sets the year first for day 366 (1970 is no leap year).
            let x = if ordinal == 366 { with_year(x) } else { x };
            x.with_ordinal(ordinal).unwrap_or(x)
        }),
        Box::new(move |_| d),
        Box::new(move |x: NaiveDate| {
            plus_days(x, 7 * (aligned_wom - i64::from((x.day() - 1) / 7 + 1))).unwrap_or(x)
        }),
        Box::new(move |x: NaiveDate| {
            plus_days(x, 7 * (aligned_woy - i64::from((x.ordinal() - 1) / 7 + 1))).unwrap_or(x)
        }),
        Box::new(move |x: NaiveDate| {
            let last = days_in_month(i64::from(x.year()), month);
            NaiveDate::from_ymd_opt(x.year(), month, x.day().min(last)).unwrap_or(x)
        }),
        Box::new(move |x: NaiveDate| {
            let current = i64::from(x.year()) * 12 + i64::from(x.month()) - 1;
            let months = proleptic - current;
            if months >= 0 {
                x.checked_add_months(chrono::Months::new(months as u32))
                    .unwrap_or(x)
            } else {
                x.checked_sub_months(chrono::Months::new(months.unsigned_abs() as u32))
                    .unwrap_or(x)
            }
        }),
        Box::new(with_year),
        Box::new(with_year),
        Box::new(with_year),
    ]
}

/// `text` parsed with `pattern` into milliseconds since the epoch, as ksqlDB's
/// `StringToTimestampParser`: in the zone the text names, else `zone`.
pub(crate) fn parse_timestamp(pattern: &Pattern, text: &str, zone: &Zone) -> Result<i64> {
    let resolved = pattern.parse_resolved(text)?;
    let fields = &resolved.fields;
    let parsed_zone = fields.zone.clone().or_else(|| {
        fields
            .offset
            .and_then(|o| i32::try_from(o).ok())
            .map(Zone::offset)
    });
    let zone = parsed_zone.as_ref().unwrap_or(zone);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)
        .unwrap_or_default()
        .and_time(NaiveTime::MIN);
    let (local, offset) = zone.resolve_local(epoch, None);
    let mut z = Zoned {
        local,
        offset,
        zone,
    };
    let leftover = |field: Field| fields.get(field);
    // Time fields first, in ChronoField order.
    if let Some(time) = resolved.time {
        for step in time_steps(time) {
            let t = step(z.local.time());
            z.with_time(t);
        }
    } else {
        for field in [
            Field::NanoOfSecond,
            Field::Second,
            Field::Minute,
            Field::HourOfAmPm,
            Field::HourOfDay,
            Field::AmPm,
        ] {
            if let Some(value) = leftover(field) {
                let t = time_with(z.local.time(), field, value)?;
                z.with_time(t);
            }
        }
    }
    if let Some(date) = resolved.date {
        for step in date_steps(date) {
            let d = step(z.local.date());
            z.with_date(d);
        }
    } else {
        for field in [
            Field::DayOfWeek,
            Field::DayOfMonth,
            Field::DayOfYear,
            Field::Month,
            Field::Year,
            Field::Era,
        ] {
            if let Some(value) = leftover(field) {
                let mut current = z.local.date();
                if field == Field::DayOfYear && value == 366 {
                    let Some(year) = leftover(Field::Year) else {
                        return Err("Leap day cannot be parsed without supplying the year field"
                            .to_string());
                    };
                    current = date_with(current, Field::Year, year)?;
                }
                let d = date_with(current, field, value)?;
                z.with_date(d);
            }
        }
    }
    // A date, a time and a zone or offset make an instant, which wins.
    if let (Some(date), Some(time)) = (resolved.date, resolved.time) {
        let instant_zone = match fields.offset {
            Some(o) => Some(Zone::offset(o as i32)),
            None => fields.zone.clone(),
        };
        if let Some(instant_zone) = instant_zone {
            let (local, offset) = instant_zone.resolve_local(date.and_time(time), None);
            let utc = plus_seconds(local, -i64::from(offset))?;
            let utc_seconds = utc.and_utc().timestamp();
            let nanos = z.local.time().nanosecond();
            let instant = DateTime::from_timestamp(utc_seconds, nanos)
                .ok_or("Instant out of range")?
                .naive_utc();
            z.offset = z.zone.offset_at(&instant);
            z.local = plus_seconds(instant, i64::from(z.offset))?;
        }
    }
    if let Some(offset) = fields.offset.and_then(|o| i32::try_from(o).ok()) {
        if offset != z.offset && z.zone.is_valid_offset(&z.local, offset) {
            z.offset = offset;
        }
    }
    z.epoch_millis()
}

/// `LocalDate.parse(text, formatter)`.
pub(crate) fn parse_local_date(pattern: &Pattern, text: &str) -> Result<NaiveDate> {
    let resolved = pattern.parse_resolved(text)?;
    resolved.date.ok_or_else(|| {
        format!(
            "Text '{text}' could not be parsed: Unable to obtain LocalDate from TemporalAccessor"
        )
    })
}

/// `LocalTime.from(formatter.parse(text))`, refusing dates as ksqlDB's `PARSE_TIME` does.
pub(crate) fn parse_local_time(pattern: &Pattern, text: &str) -> Result<NaiveTime> {
    let resolved = pattern.parse_resolved(text)?;
    let has_date_field = resolved.date.is_some()
        || all_fields()
            .into_iter()
            .any(|f| f.is_date() && resolved.fields.get(f).is_some());
    if has_date_field {
        return Err("Time format contains date field.".to_string());
    }
    resolved.time.ok_or_else(|| {
        format!(
            "Text '{text}' could not be parsed: Unable to obtain LocalTime from TemporalAccessor"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_ms(pattern: &str, millis: i64, zone: &str) -> Result<String> {
        let zone = Zone::of(zone)?;
        Pattern::compile(pattern)?.format(&Temporal::instant(millis, &zone)?)
    }

    fn parse_ms(pattern: &str, text: &str, zone: &str) -> Result<i64> {
        parse_timestamp(&Pattern::compile(pattern)?, text, &Zone::of(zone)?)
    }

    #[test]
    fn formats_as_java() {
        // ksqlDB's own cases (timestamp-to-string.json).
        assert_eq!(
            format_ms(
                "yyyy-MM-dd HH:mm:ss zzz",
                1526075913000,
                "America/Los_Angeles"
            )
            .unwrap(),
            "2018-05-11 14:58:33 PDT"
        );
        assert_eq!(
            format_ms("yyyy-MM-dd HH:mm:ss zzz", 1526075913000, "Europe/London").unwrap(),
            "2018-05-11 22:58:33 BST"
        );
        assert_eq!(
            format_ms("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", 1526075913123, "+05:30").unwrap(),
            "2018-05-12T03:28:33.123+05:30"
        );
        assert_eq!(
            format_ms("yyyy-MM-dd'T'HH:mm:ss.SX", 1526075913123, "UTC").unwrap(),
            "2018-05-11T21:58:33.1Z"
        );
        assert_eq!(
            format_ms(
                "EEE, d MMM yy h:mm a Z '(''quoted'')'",
                1526075913000,
                "GMT"
            )
            .unwrap(),
            "Fri, 11 May 18 9:58 PM +0000 ('quoted')"
        );
        assert_eq!(
            format_ms(
                "EEEE MMMM G QQQ QQQQ D xx O OOOO VV",
                1526075913000,
                "Asia/Kolkata"
            )
            .unwrap(),
            "Saturday May AD Q2 2nd quarter 132 +0530 GMT+5:30 GMT+05:30 Asia/Kolkata"
        );
        assert_eq!(
            format_ms("uuuu yyyy y k K", -62135596800000 - 86_400_000, "UTC").unwrap(),
            "0000 0001 1 24 0"
        );
        // A millisecond before the epoch.
        assert_eq!(
            format_ms("yyyy-MM-dd HH:mm:ss.SSS", -1, "UTC").unwrap(),
            "1969-12-31 23:59:59.999"
        );
        assert_eq!(format_ms("[HH:mm]", 0, "UTC").unwrap(), "00:00");
    }

    #[test]
    fn dates_and_times_format_only_their_fields() {
        let date = NaiveDate::from_ymd_opt(1969, 12, 31).unwrap();
        let pattern = Pattern::compile("dd-MM-yyyy'Sophia'").unwrap();
        assert_eq!(
            pattern.format(&Temporal::date(date)).unwrap(),
            "31-12-1969Sophia"
        );
        let pattern = Pattern::compile("dd-MMM-yyyy").unwrap();
        let date = NaiveDate::from_ymd_opt(2022, 1, 1).unwrap();
        assert_eq!(
            pattern.format(&Temporal::date(date)).unwrap(),
            "01-Jan-2022"
        );
        let err = Pattern::compile("yyyy HH")
            .unwrap()
            .format(&Temporal::date(date));
        assert_eq!(err.unwrap_err(), "Unsupported field: HourOfDay");
        let optional = Pattern::compile("yyyy-MM-dd[ HH:mm]").unwrap();
        assert_eq!(
            optional.format(&Temporal::date(date)).unwrap(),
            "2022-01-01"
        );
        let time = NaiveTime::from_hms_milli_opt(13, 5, 7, 40).unwrap();
        let pattern = Pattern::compile("hh:mm:ss.SSS a").unwrap();
        assert_eq!(
            pattern.format(&Temporal::time(time)).unwrap(),
            "01:05:07.040 PM"
        );
    }

    #[test]
    fn patterns_java_refuses_are_refused() {
        assert!(Pattern::compile("yyyy-MM-dd'T").is_err());
        assert!(Pattern::compile("HHH").is_err());
        assert!(Pattern::compile("yyyy]").is_err());
        assert!(Pattern::compile("#").is_err());
        assert!(Pattern::compile("b").is_err());
        assert!(Pattern::compile("V").is_err());
        assert!(Pattern::compile("ww").is_err());
        assert!(Pattern::compile(&"y".repeat(20)).is_err());
        assert!(Pattern::compile(&"S".repeat(10)).is_err());
        // '' is a quote.
        let p = Pattern::compile("''yy''").unwrap();
        assert_eq!(
            p.format(&Temporal::date(
                NaiveDate::from_ymd_opt(2018, 1, 1).unwrap()
            ))
            .unwrap(),
            "'18'"
        );
    }

    #[test]
    fn parses_as_ksqldb() {
        // ksqlDB's own cases (stringtimestamp.json).
        let p = "yyyy-MM-dd'T'HH:mm:ssX";
        assert_eq!(
            parse_ms(p, "2018-05-11T21:58:33Z", "UTC").unwrap(),
            1526075913000
        );
        assert_eq!(
            parse_ms(p, "2020-05-11T21:58:33z", "UTC").unwrap(),
            1589234313000
        );
        assert_eq!(
            parse_ms("yyyy-MM-dd'T'HH:mm:ss", "2019-05-11T21:58:33", "GMT").unwrap(),
            1557611913000
        );
        // PST names Los Angeles, whose May is daylight time.
        assert_eq!(
            parse_ms(
                "yyyy-MM-dd'T'HH:mm:ss zzz",
                "2018-05-11T21:58:33 PST",
                "GMT"
            )
            .unwrap(),
            1526101113000
        );
        assert_eq!(
            parse_ms(
                "yyyy-MM-dd HH:mm:ss.SSS",
                "2018-05-11 21:58:33.123",
                "+01:00"
            )
            .unwrap(),
            1526075913123 - 3_600_000
        );
        // Adjacent values: the year leaves the month and day their digits.
        assert_eq!(
            parse_ms("yyyyMMddHHmmss", "20180511215833", "UTC").unwrap(),
            1526075913000
        );
        // Case does not matter; a time alone is on 1970-01-01; a date alone at midnight.
        assert_eq!(parse_ms("hh:mm a", "01:30 pm", "UTC").unwrap(), 48_600_000);
        assert_eq!(
            parse_ms("dd-MMM-yyyy", "01-JAN-2022", "UTC").unwrap(),
            1640995200000
        );
        assert_eq!(
            parse_ms("MMM yyyy", "feb 1970", "UTC").unwrap(),
            31 * 86_400_000
        );
        // SMART: a day past the month's end is its last day.
        assert_eq!(
            parse_ms("yyyy-MM-dd", "2019-02-30", "UTC").unwrap(),
            parse_ms("yyyy-MM-dd", "2019-02-28", "UTC").unwrap()
        );
        // 24:00 is midnight of the next day.
        assert_eq!(
            parse_ms("yyyy-MM-dd HH:mm", "2019-02-28 24:00", "UTC").unwrap(),
            parse_ms("yyyy-MM-dd", "2019-03-01", "UTC").unwrap()
        );
        // An offset in the text wins over the zone given.
        assert_eq!(
            parse_ms(
                "yyyy-MM-dd HH:mm xxx",
                "1970-01-01 01:00 +01:00",
                "America/New_York"
            )
            .unwrap(),
            0
        );
        // Optional sections.
        let p = "yyyy-MM-dd['T'HH:mm]";
        assert_eq!(parse_ms(p, "1970-01-02", "UTC").unwrap(), 86_400_000);
        assert_eq!(parse_ms(p, "1970-01-02T00:01", "UTC").unwrap(), 86_460_000);
    }

    #[test]
    fn bad_text_is_refused() {
        let p = "yyyy-MM-dd";
        assert!(parse_ms(p, "2018-13-01", "UTC")
            .unwrap_err()
            .contains("MonthOfYear"));
        assert!(parse_ms(p, "2018-05-11x", "UTC")
            .unwrap_err()
            .contains("unparsed text"));
        assert!(parse_ms(p, "18-05-11", "UTC")
            .unwrap_err()
            .contains("index 0"));
        assert!(parse_ms(p, "", "UTC").is_err());
        // yyyy takes more digits only after a sign.
        assert!(parse_ms("yyyy", "12345", "UTC").is_err());
        assert!(parse_ms("EEE yyyy-MM-dd", "Mon 2018-05-11", "UTC")
            .unwrap_err()
            .contains("Conflict"));
        assert!(Zone::of("PST").is_err());
        assert!(Zone::of("Mars/Olympus").is_err());
    }

    #[test]
    fn zones_as_java_names_them() {
        assert_eq!(Zone::of("+5").unwrap().id, "+05:00");
        assert_eq!(Zone::of("UTC+01:30").unwrap().id, "UTC+01:30");
        assert_eq!(Zone::of("GMT+0").unwrap().id, "GMT");
        assert!(Zone::of("+19:00").is_err());
        assert_eq!(Zone::of("US/Pacific").unwrap().id, "US/Pacific");
        // A gap moves the local time forward; an overlap keeps the earlier offset.
        let ny = Zone::of("America/New_York").unwrap();
        let gap = NaiveDate::from_ymd_opt(2021, 3, 14)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        let (local, offset) = ny.resolve_local(gap, None);
        assert_eq!((local.time().hour(), offset), (3, -4 * 3600));
        let overlap = NaiveDate::from_ymd_opt(2021, 11, 7)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(ny.resolve_local(overlap, None).1, -4 * 3600);
        assert_eq!(ny.resolve_local(overlap, Some(-5 * 3600)).1, -5 * 3600);
    }

    #[test]
    fn local_dates_and_times() {
        let p = Pattern::compile("yyyy-MM-dd'Lit'").unwrap();
        assert_eq!(
            parse_local_date(&p, "2018-05-11Lit").unwrap(),
            NaiveDate::from_ymd_opt(2018, 5, 11).unwrap()
        );
        let p = Pattern::compile("MMM-yyyy").unwrap();
        assert!(parse_local_date(&p, "JAN-2022").is_err());
        let p = Pattern::compile("HH:mm:ss").unwrap();
        assert_eq!(
            parse_local_time(&p, "00:00:01").unwrap(),
            NaiveTime::from_hms_opt(0, 0, 1).unwrap()
        );
        let p = Pattern::compile("yyyy HH").unwrap();
        assert_eq!(
            parse_local_time(&p, "2000 01").unwrap_err(),
            "Time format contains date field."
        );
    }
}
