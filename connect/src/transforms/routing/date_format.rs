//! The `java.text.SimpleDateFormat` patterns Connect configs use, translated into chrono's
//! format items and always applied in UTC (as `TimestampRouter` and `TimestampConverter` set
//! their formats' time zone).

use std::fmt::Write;

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, StrftimeItems};
use chrono::DateTime;

/// A SimpleDateFormat pattern, ready to format and parse epoch milliseconds in UTC.
#[derive(Debug, Clone)]
pub(super) struct DateFormat {
    items: Vec<Item<'static>>,
}

impl DateFormat {
    /// Translates `pattern`; the error says which part is not supported.
    pub(super) fn new(pattern: &str) -> Result<DateFormat, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut items = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // `''` is a quote; otherwise quoted text runs to the next lone quote.
                i += 1;
                if chars.get(i) == Some(&'\'') {
                    literal.push('\'');
                    i += 1;
                    continue;
                }
                loop {
                    match (chars.get(i), chars.get(i + 1)) {
                        (None, _) => return Err("a quote is not closed".into()),
                        (Some('\''), Some('\'')) => {
                            literal.push('\'');
                            i += 2;
                        }
                        (Some('\''), _) => {
                            i += 1;
                            break;
                        }
                        (Some(&other), _) => {
                            literal.push(other);
                            i += 1;
                        }
                    }
                }
                continue;
            }
            if !c.is_ascii_alphabetic() {
                literal.push(c);
                i += 1;
                continue;
            }
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            i += run;
            if !literal.is_empty() {
                items.push(Item::OwnedLiteral(std::mem::take(&mut literal).into()));
            }
            let numeric = |n: Numeric| match run {
                1 => Ok(Item::Numeric(n, Pad::None)),
                2 => Ok(Item::Numeric(n, Pad::Zero)),
                _ => Err(unsupported(c, run)),
            };
            let item = match c {
                'y' if run == 2 => Item::Numeric(Numeric::YearMod100, Pad::Zero),
                'y' => Item::Numeric(Numeric::Year, Pad::Zero),
                'M' if run == 3 => Item::Fixed(Fixed::ShortMonthName),
                'M' if run > 3 => Item::Fixed(Fixed::LongMonthName),
                'M' => numeric(Numeric::Month)?,
                'd' => numeric(Numeric::Day)?,
                'H' => numeric(Numeric::Hour)?,
                'h' => numeric(Numeric::Hour12)?,
                'm' => numeric(Numeric::Minute)?,
                's' => numeric(Numeric::Second)?,
                // Three digits of milliseconds: chrono's `%3f` (without a dot).
                'S' if run == 3 => match StrftimeItems::new("%3f").next() {
                    Some(item) => item,
                    None => return Err(unsupported(c, run)),
                },
                'E' if run <= 3 => Item::Fixed(Fixed::ShortWeekdayName),
                'E' => Item::Fixed(Fixed::LongWeekdayName),
                'a' if run == 1 => Item::Fixed(Fixed::UpperAmPm),
                // In UTC the ISO 8601 forms write `Z`.
                'X' if run <= 2 => Item::Fixed(Fixed::TimezoneOffsetZ),
                'X' if run == 3 => Item::Fixed(Fixed::TimezoneOffsetColonZ),
                'Z' if run == 1 => Item::Fixed(Fixed::TimezoneOffset),
                _ => return Err(unsupported(c, run)),
            };
            items.push(item);
        }
        if !literal.is_empty() {
            items.push(Item::OwnedLiteral(literal.into()));
        }
        Ok(DateFormat { items })
    }

    /// `ms` since the epoch, formatted in UTC.
    pub(super) fn format(&self, ms: i64) -> Result<String, String> {
        let time = DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| format!("{ms} ms is out of the range of dates"))?;
        let mut out = String::new();
        write!(out, "{}", time.format_with_items(self.items.iter()))
            .map_err(|_| format!("{ms} ms cannot be formatted"))?;
        Ok(out)
    }

    /// `text` as ms since the epoch: UTC unless it has an offset; a missing date is
    /// 1970-01-01 and a missing time midnight, as SimpleDateFormat has them. A two-digit year
    /// is 1970–2069 (SimpleDateFormat's window moves with the clock).
    pub(super) fn parse(&self, text: &str) -> Result<i64, String> {
        let mut parsed = Parsed::new();
        let bad = |e: chrono::ParseError| format!("{text:?} does not fit the format: {e}");
        chrono::format::parse(&mut parsed, text, self.items.iter()).map_err(bad)?;
        type Fill = fn(&mut Parsed) -> chrono::ParseResult<()>;
        let missing: [(bool, Fill); 6] = [
            (
                parsed.year().is_none() && parsed.year_mod_100().is_none(),
                |p| p.set_year(1970),
            ),
            (parsed.month().is_none(), |p| p.set_month(1)),
            (parsed.day().is_none(), |p| p.set_day(1)),
            (parsed.hour_div_12().is_none(), |p| p.set_ampm(false)),
            (parsed.hour_mod_12().is_none(), |p| p.set_hour12(12)),
            (parsed.minute().is_none(), |p| p.set_minute(0)),
        ];
        for (is_missing, fill) in missing {
            if is_missing {
                fill(&mut parsed).map_err(bad)?;
            }
        }
        if parsed.second().is_none() {
            parsed.set_second(0).map_err(bad)?;
        }
        match parsed.offset() {
            Some(_) => parsed.to_datetime().map(|t| t.timestamp_millis()),
            None => parsed
                .to_naive_datetime_with_offset(0)
                .map(|t| t.and_utc().timestamp_millis()),
        }
        .map_err(bad)
    }
}

fn unsupported(letter: char, run: usize) -> String {
    format!(
        "the pattern letter(s) {:?} are not supported (use yyyy, yy, MM, M, dd, d, HH, H, hh, h, a, mm, m, ss, s, SSS, EEE, X, XXX, Z and 'quoted text')",
        letter.to_string().repeat(run)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-03-05T07:08:09.123Z
    const MS: i64 = 1_709_622_489_123;

    fn fmt(pattern: &str) -> String {
        DateFormat::new(pattern).unwrap().format(MS).unwrap()
    }

    #[test]
    fn patterns_format_as_simple_date_format_does_in_utc() {
        assert_eq!(fmt("yyyyMMdd"), "20240305");
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
            "2024-03-05T07:08:09.123Z"
        );
        assert_eq!(fmt("yy/M/d H:m:s"), "24/3/5 7:8:9");
        assert_eq!(
            fmt("dd MMM yyyy EEE hh a Z X"),
            "05 Mar 2024 Tue 07 AM +0000 Z"
        );
        assert_eq!(fmt("'at' HH 'o''clock' '' 100%"), "at 07 o'clock ' 100%");
        assert!(DateFormat::new("yyyy").unwrap().format(i64::MAX).is_err());
    }

    #[test]
    fn patterns_parse_with_defaults_and_offsets() {
        let full = DateFormat::new("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap();
        assert_eq!(full.parse("2024-03-05T07:08:09.123Z").unwrap(), MS);
        assert_eq!(full.parse("2024-03-05T09:08:09.123+02:00").unwrap(), MS);
        let day = DateFormat::new("yyyyMMdd").unwrap();
        assert_eq!(day.parse("20240305").unwrap(), MS - MS % 86_400_000);
        let time = DateFormat::new("HH:mm").unwrap();
        assert_eq!(time.parse("07:08").unwrap(), (7 * 60 + 8) * 60_000);
        let twelve = DateFormat::new("h:mm a").unwrap();
        assert_eq!(twelve.parse("7:08 PM").unwrap(), (19 * 60 + 8) * 60_000);
        let short_year = DateFormat::new("yyMMdd").unwrap();
        assert_eq!(short_year.parse("240305").unwrap(), MS - MS % 86_400_000);
        let err = day.parse("2024-03-05").unwrap_err();
        assert!(err.contains("\"2024-03-05\""), "{err}");
    }

    #[test]
    fn unsupported_letters_and_open_quotes_are_refused() {
        let err = DateFormat::new("yyyy-ww").unwrap_err();
        assert!(err.contains("\"ww\""), "{err}");
        assert!(DateFormat::new("ss.S").unwrap_err().contains("\"S\""));
        assert!(DateFormat::new("ddd").is_err());
        assert!(DateFormat::new("'open").unwrap_err().contains("quote"));
    }
}
