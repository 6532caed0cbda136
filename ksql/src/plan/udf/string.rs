//! ksqlDB's string functions (`STRING`) DataFusion has none alike for. Positions and lengths
//! count as Java's do, in UTF-16 code units.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Int32Array, Int32Builder, ListBuilder, MapBuilder,
    MapFieldNames, StringArray, StringBuilder,
};
use arrow::datatypes::DataType;
use datafusion_common::Result as DfResult;

use super::{
    arg, each_row, list_of, overloads, returns, sig, string_map_of, var, Call, KsqlUdf, Overload,
    Param,
};

const CATEGORY: &str = "STRING";

pub(super) fn functions() -> Vec<KsqlUdf> {
    use Param::{Bytes, Int, String as Str};
    const INSTR: &[Overload] = &[
        sig(&[Str, Str]),
        sig(&[Str, Str, Int]),
        sig(&[Str, Str, Int, Int]),
    ];
    const MASK_PART: &[Overload] = &[sig(&[Str, Int]), sig(&[Str, Int, Str, Str, Str, Str])];
    vec![
        KsqlUdf::new(
            "SUBSTRING",
            "substring",
            CATEGORY,
            "Returns the portion of the string or bytes passed in value.",
            overloads![
                sig(&[Str, Int]),
                sig(&[Str, Int, Int]),
                sig(&[Bytes, Int]),
                sig(&[Bytes, Int, Int]),
            ],
            |args| {
                Ok(match args.first() {
                    Some(DataType::Binary) => DataType::Binary,
                    _ => DataType::Utf8,
                })
            },
            substring,
        ),
        KsqlUdf::new(
            "INSTR",
            "instr",
            CATEGORY,
            "Returns the position of substring in the provided string",
            INSTR,
            returns!(DataType::Int32),
            instr,
        ),
        KsqlUdf::new(
            "SPLIT",
            "split",
            CATEGORY,
            "Splits a string or bytes into an array of substrings or bytes based on a delimiter.",
            overloads![sig(&[Str, Str]), sig(&[Bytes, Bytes])],
            |args| {
                Ok(list_of(match args.first() {
                    Some(DataType::Binary) => DataType::Binary,
                    _ => DataType::Utf8,
                }))
            },
            split,
        ),
        KsqlUdf::new(
            "SPLIT_TO_MAP",
            "split_to_map",
            CATEGORY,
            "Splits a string into key-value pairs and creates a map from them.",
            overloads![sig(&[Str, Str, Str])],
            returns!(string_map_of(DataType::Utf8)),
            split_to_map,
        ),
        KsqlUdf::new(
            "ELT",
            "elt",
            CATEGORY,
            "ELT() returns the Nth element of the list of strings.",
            overloads![var(&[Int, Str])],
            returns!(DataType::Utf8),
            elt,
        ),
        KsqlUdf::new(
            "FIELD",
            "field",
            CATEGORY,
            "Returns the position (1-indexed) of str in args, or 0 if not found.",
            overloads![var(&[Str, Str])],
            returns!(DataType::Int32),
            field,
        ),
        KsqlUdf::new(
            "MASK",
            "mask",
            CATEGORY,
            "Returns a version of the input string with every character replaced by a mask.",
            overloads![sig(&[Str]), sig(&[Str, Str, Str, Str, Str])],
            returns!(DataType::Utf8),
            |call| mask_part(call, Part::All),
        ),
        KsqlUdf::new(
            "MASK_LEFT",
            "mask_left",
            CATEGORY,
            "Returns a version of the input string with the specified number of characters, starting from the beginning of the string, masked out.",
            MASK_PART,
            returns!(DataType::Utf8),
            |call| mask_part(call, Part::Left),
        ),
        KsqlUdf::new(
            "MASK_RIGHT",
            "mask_right",
            CATEGORY,
            "Returns a version of the input string with the specified number of characters, starting from the end of the string, masked out.",
            MASK_PART,
            returns!(DataType::Utf8),
            |call| mask_part(call, Part::Right),
        ),
        KsqlUdf::new(
            "MASK_KEEP_LEFT",
            "mask_keep_left",
            CATEGORY,
            "Returns a version of the input string with all but the specified number of left-most characters masked out.",
            MASK_PART,
            returns!(DataType::Utf8),
            |call| mask_part(call, Part::KeepLeft),
        ),
        KsqlUdf::new(
            "MASK_KEEP_RIGHT",
            "mask_keep_right",
            CATEGORY,
            "Returns a version of the input string with all but the specified number of right-most characters masked out.",
            MASK_PART,
            returns!(DataType::Utf8),
            |call| mask_part(call, Part::KeepRight),
        ),
        KsqlUdf::new(
            "UUID",
            "UUID",
            CATEGORY,
            "Create a Universally Unique Identifier (UUID) generated according to RFC 4122.",
            overloads![sig(&[]), sig(&[Bytes])],
            returns!(DataType::Utf8),
            uuid,
        )
        .volatile(),
    ]
}

/// The UTF-16 code units of `s`: Java's `String` positions.
fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// The first index of `needle` in `haystack` at or after `from` (`String.indexOf`).
fn index_of(haystack: &[u16], needle: &[u16], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return (from <= haystack.len()).then_some(from);
    }
    if needle.len() > haystack.len() {
        return None;
    }
    (from..=haystack.len() - needle.len()).find(|&at| &haystack[at..at + needle.len()] == needle)
}

/// Commons Lang's `StringUtils.ordinalIndexOf`: the index of the `ordinal`th occurrence
/// (occurrences may overlap), or -1.
fn ordinal_index_of(haystack: &[u16], needle: &[u16], ordinal: i32) -> i64 {
    if ordinal <= 0 {
        return -1;
    }
    if needle.is_empty() {
        return 0;
    }
    let mut found = 0;
    let mut index: i64 = -1;
    while found < ordinal {
        match index_of(haystack, needle, (index + 1) as usize) {
            Some(at) => index = at as i64,
            None => return -1,
        }
        found += 1;
    }
    index
}

/// `INSTR(str, substring [, position [, occurrence]])` as ksqlDB's `Instr`.
fn instr_of(s: &str, sub: &str, position: i32, occurrence: i32) -> i32 {
    let length = s.encode_utf16().count() as i64;
    let position = i64::from(position);
    if position.abs() > length {
        return 0;
    }
    let (text, needle, position, reversed) = if position < 0 {
        // `StringBuilder.reverse` keeps surrogate pairs whole: code points reversed.
        let reverse = |x: &str| utf16(&x.chars().rev().collect::<String>());
        (reverse(s), reverse(sub), -position, true)
    } else {
        (utf16(s), utf16(sub), position, false)
    };
    // `StringUtils.substring(str, position - 1)`: a negative start counts from the end.
    let mut start = position - 1;
    if start < 0 {
        start += length;
    }
    let start = start.clamp(0, length) as usize;
    let i = ordinal_index_of(&text[start..], &needle, occurrence);
    if i == -1 {
        return 0;
    }
    let found = if reversed {
        length - position - i - needle.len() as i64 + 2
    } else {
        i + position
    };
    found as i32
}

fn instr(call: &Call) -> DfResult<ArrayRef> {
    let strings = arg::<StringArray>(call, 0)?;
    let subs = arg::<StringArray>(call, 1)?;
    let positions = super::opt_arg::<Int32Array>(call, 2)?;
    let occurrences = super::opt_arg::<Int32Array>(call, 3)?;
    let mut out = Int32Builder::with_capacity(call.rows);
    each_row(
        call,
        |row| {
            // Position and occurrence are Java ints: a null one fails the call.
            let int = |a: Option<&Int32Array>| match a {
                None => Ok(1),
                Some(a) if a.is_null(row) => Err(()),
                Some(a) => Ok(a.value(row)),
            };
            let (Ok(position), Ok(occurrence)) = (int(positions), int(occurrences)) else {
                return Ok(None);
            };
            if strings.is_null(row) || subs.is_null(row) {
                return Ok(Some(0));
            }
            Ok(Some(instr_of(
                strings.value(row),
                subs.value(row),
                position,
                occurrence,
            )))
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// ksqlDB's `Substring`: the range `[start, end)` of a value `len` long taken from 1-based
/// `pos` (from the end if negative), `length` long if given.
fn substring_range(len: usize, pos: i32, length: Option<i32>) -> (usize, usize) {
    let len = len as i64;
    let pos = i64::from(pos);
    let start = if pos < 0 {
        (len + pos).max(0)
    } else {
        (pos - 1).min(len).max(0)
    };
    let end = match length {
        Some(length) => (start + i64::from(length)).min(len).max(start),
        None => len,
    };
    (start as usize, end as usize)
}

/// `SUBSTRING(str, pos [, len])`, of strings (UTF-16 positions, as Java's `String`) or
/// bytes.
fn substring(call: &Call) -> DfResult<ArrayRef> {
    let positions = arg::<Int32Array>(call, 1)?;
    let lengths = super::opt_arg::<Int32Array>(call, 2)?;
    let range = |row: usize, len: usize| -> Option<(usize, usize)> {
        if positions.is_null(row) || lengths.is_some_and(|l| l.is_null(row)) {
            return None;
        }
        let length = lengths.map(|l| l.value(row));
        Some(substring_range(len, positions.value(row), length))
    };
    if call.args.first().map(|a| a.data_type()) == Some(&DataType::Binary) {
        let values = arg::<BinaryArray>(call, 0)?;
        let mut out = BinaryBuilder::new();
        for row in 0..call.rows {
            let bytes = (!values.is_null(row)).then(|| values.value(row));
            let part = bytes.and_then(|b| range(row, b.len()).map(|(from, to)| &b[from..to]));
            out.append_option(part);
        }
        return Ok(Arc::new(out.finish()));
    }
    let strings = arg::<StringArray>(call, 0)?;
    let mut out = StringBuilder::new();
    for row in 0..call.rows {
        if strings.is_null(row) {
            out.append_null();
            continue;
        }
        let s = strings.value(row);
        let units = if s.is_ascii() { Vec::new() } else { utf16(s) };
        let len = if s.is_ascii() { s.len() } else { units.len() };
        match range(row, len) {
            None => out.append_null(),
            // ASCII: code units are bytes.
            Some((from, to)) if s.is_ascii() => out.append_value(&s[from..to]),
            Some((from, to)) => out.append_value(String::from_utf16_lossy(&units[from..to])),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `SPLIT(string, delimiter)` (an empty delimiter splits every character) and its bytes
/// form.
fn split(call: &Call) -> DfResult<ArrayRef> {
    if call.args.first().map(|a| a.data_type()) == Some(&DataType::Binary) {
        return split_bytes(call);
    }
    let strings = arg::<StringArray>(call, 0)?;
    let delimiters = arg::<StringArray>(call, 1)?;
    let mut out = ListBuilder::new(StringBuilder::new());
    for row in 0..call.rows {
        if strings.is_null(row) || delimiters.is_null(row) {
            out.append_null();
            continue;
        }
        let (s, delimiter) = (strings.value(row), delimiters.value(row));
        if delimiter.is_empty() {
            if s.is_empty() {
                out.values().append_value("");
            }
            let mut buf = [0u8; 4];
            for c in s.chars() {
                out.values().append_value(c.encode_utf8(&mut buf));
            }
        } else {
            for part in s.split(delimiter) {
                out.values().append_value(part);
            }
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

fn split_bytes(call: &Call) -> DfResult<ArrayRef> {
    let values = arg::<BinaryArray>(call, 0)?;
    let delimiters = arg::<BinaryArray>(call, 1)?;
    let mut out = ListBuilder::new(BinaryBuilder::new());
    for row in 0..call.rows {
        if values.is_null(row) || delimiters.is_null(row) {
            out.append_null();
            continue;
        }
        let (bytes, delimiter) = (values.value(row), delimiters.value(row));
        if bytes.is_empty() {
            out.values().append_value(b"");
        } else if delimiter.is_empty() {
            for b in bytes {
                out.values().append_value([*b]);
            }
        } else {
            let mut offset = 0;
            while let Some(at) = bytes[offset..]
                .windows(delimiter.len())
                .position(|w| w == delimiter)
            {
                out.values().append_value(&bytes[offset..offset + at]);
                offset += at + delimiter.len();
            }
            out.values().append_value(&bytes[offset..]);
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

/// A `MAP<STRING, STRING>` builder in the layout ksql holds maps in.
pub(super) fn string_map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(
        Some(MapFieldNames {
            entry: "entries".to_string(),
            key: "key".to_string(),
            value: "value".to_string(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    )
}

/// `SPLIT_TO_MAP(input, entryDelimiter, kvDelimiter)`.
fn split_to_map(call: &Call) -> DfResult<ArrayRef> {
    let inputs = arg::<StringArray>(call, 0)?;
    let entry_delimiters = arg::<StringArray>(call, 1)?;
    let kv_delimiters = arg::<StringArray>(call, 2)?;
    let mut out = string_map_builder();
    for row in 0..call.rows {
        if inputs.is_null(row) || entry_delimiters.is_null(row) || kv_delimiters.is_null(row) {
            out.append(false)?;
            continue;
        }
        let (input, entry_delimiter, kv_delimiter) = (
            inputs.value(row),
            entry_delimiters.value(row),
            kv_delimiters.value(row),
        );
        if entry_delimiter.is_empty() || kv_delimiter.is_empty() || entry_delimiter == kv_delimiter
        {
            out.append(false)?;
            continue;
        }
        // Entries without the key-value delimiter are dropped; a repeated key keeps its
        // last value; a value is what lies between the first and second delimiters.
        let mut entries: Vec<(&str, &str)> = Vec::new();
        for entry in input.split(entry_delimiter).filter(|e| !e.is_empty()) {
            if !entry.contains(kv_delimiter) {
                continue;
            }
            let mut parts = entry.split(kv_delimiter);
            let (key, value) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => entries.push((key, value)),
            }
        }
        for (key, value) in entries {
            out.keys().append_value(key);
            out.values().append_value(value);
        }
        out.append(true)?;
    }
    Ok(Arc::new(out.finish()))
}

/// `ELT(n, strings...)`.
fn elt(call: &Call) -> DfResult<ArrayRef> {
    let ns = arg::<Int32Array>(call, 0)?;
    let strings = (1..call.args.len())
        .map(|at| arg::<StringArray>(call, at))
        .collect::<DfResult<Vec<_>>>()?;
    let mut out = StringBuilder::new();
    for row in 0..call.rows {
        let chosen = (!ns.is_null(row))
            .then(|| ns.value(row))
            .filter(|n| *n >= 1)
            .and_then(|n| strings.get(n as usize - 1))
            .filter(|s| !s.is_null(row))
            .map(|s| s.value(row));
        out.append_option(chosen);
    }
    Ok(Arc::new(out.finish()))
}

/// `FIELD(str, strings...)`.
fn field(call: &Call) -> DfResult<ArrayRef> {
    let needles = arg::<StringArray>(call, 0)?;
    let strings = (1..call.args.len())
        .map(|at| arg::<StringArray>(call, at))
        .collect::<DfResult<Vec<_>>>()?;
    let mut out = Int32Builder::with_capacity(call.rows);
    for row in 0..call.rows {
        let position = if needles.is_null(row) {
            0
        } else {
            let needle = needles.value(row);
            strings
                .iter()
                .position(|s| !s.is_null(row) && s.value(row) == needle)
                .map_or(0, |at| at as i32 + 1)
        };
        out.append_value(position);
    }
    Ok(Arc::new(out.finish()))
}

/// Which part of the string a `MASK` function masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    All,
    Left,
    Right,
    KeepLeft,
    KeepRight,
}

/// ksqlDB's `Masker`: a mask for upper-case letters, lower-case letters, digits and the
/// rest; `None` leaves such characters as they are.
#[derive(Debug, Clone, Copy)]
struct Masker {
    upper: Option<char>,
    lower: Option<char>,
    digit: Option<char>,
    other: Option<char>,
}

const DEFAULT_MASKER: Masker = Masker {
    upper: Some('X'),
    lower: Some('x'),
    digit: Some('n'),
    other: Some('-'),
};

/// `Character.getType(c)` is `UPPERCASE_LETTER`: Unicode's Uppercase without its
/// Other_Uppercase (Roman numerals, circled and squared letters).
fn is_java_upper(c: char) -> bool {
    c.is_uppercase() && !matches!(c as u32, 0x2160..=0x216F | 0x24B6..=0x24CF | 0x1F130..=0x1F189)
}

/// `LOWERCASE_LETTER`: Unicode's Lowercase without its Other_Lowercase (ordinal
/// indicators, modifier letters, Roman numerals, circled letters, ...).
fn is_java_lower(c: char) -> bool {
    c.is_lowercase()
        && !matches!(
            c as u32,
            0xAA | 0xBA
                | 0x2B0..=0x2B8
                | 0x2C0..=0x2C1
                | 0x2E0..=0x2E4
                | 0x345
                | 0x37A
                | 0x10FC
                | 0x1D2C..=0x1D6A
                | 0x1D78
                | 0x1D9B..=0x1DBF
                | 0x2071
                | 0x207F
                | 0x2090..=0x209C
                | 0x2170..=0x217F
                | 0x24D0..=0x24E9
                | 0x2C7C..=0x2C7D
                | 0xA69C..=0xA69D
                | 0xA770
                | 0xA7F2..=0xA7F4
                | 0xA7F8..=0xA7F9
                | 0xAB5C..=0xAB5F
                | 0xAB69
                | 0x10780..=0x107BA
                | 0x1E030..=0x1E06D
        )
}

/// `DECIMAL_DIGIT_NUMBER` (Unicode's Nd as Java 11 knows it: runs of ten digits).
fn is_java_digit(c: char) -> bool {
    const ZEROS: &[u32] = &[
        0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
        0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
        0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
        0xFF10, 0x104A0, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
        0x116C0, 0x11730, 0x118E0, 0x11C50, 0x11D50, 0x16A60, 0x16B50, 0x1E950,
    ];
    let c = c as u32;
    (0x1D7CE..=0x1D7FF).contains(&c) || ZEROS.iter().any(|zero| (*zero..zero + 10).contains(&c))
}

impl Masker {
    /// `Masker.mask`: each UTF-16 position's code point masked (the second half of a
    /// surrogate pair is a character of its own, masked as "other").
    fn mask(&self, units: &[u16], out: &mut Vec<u16>) {
        let mut buf = [0u16; 2];
        for at in 0..units.len() {
            let unit = units[at];
            let code_point = match (unit, units.get(at + 1)) {
                (0xD800..=0xDBFF, Some(low @ 0xDC00..=0xDFFF)) => {
                    char::decode_utf16([unit, *low]).next().and_then(Result::ok)
                }
                _ => char::from_u32(u32::from(unit)),
            };
            let mask = match code_point {
                Some(c) if is_java_upper(c) => self.upper,
                Some(c) if is_java_lower(c) => self.lower,
                Some(c) if is_java_digit(c) => self.digit,
                _ => self.other,
            };
            match (mask, code_point) {
                (Some(m), _) => out.extend_from_slice(m.encode_utf16(&mut buf)),
                (None, Some(c)) => out.extend_from_slice(c.encode_utf16(&mut buf)),
                (None, None) => out.push(unit),
            }
        }
    }
}

/// A mask argument: one character, or `None` for a null one (that kind stays unmasked).
fn mask_character(mask: Option<&str>) -> Result<Option<char>, String> {
    let Some(mask) = mask else {
        return Ok(None);
    };
    let mut chars = mask.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.len_utf16() == 1 => Ok(Some(c)),
        _ => Err(format!(
            "Invalid mask character. Must be only single character, but was '{mask}'"
        )),
    }
}

/// `MASK(str [, upper, lower, digit, other])` and its `LEFT`, `RIGHT`, `KEEP_LEFT` and
/// `KEEP_RIGHT` forms (`numChars` second).
fn mask_part(call: &Call, part: Part) -> DfResult<ArrayRef> {
    let inputs = arg::<StringArray>(call, 0)?;
    let counts = if part == Part::All {
        None
    } else {
        Some(arg::<Int32Array>(call, 1)?)
    };
    let first_mask = if part == Part::All { 1 } else { 2 };
    let masks = (first_mask..call.args.len())
        .map(|at| arg::<StringArray>(call, at))
        .collect::<DfResult<Vec<_>>>()?;
    let mut out = StringBuilder::new();
    each_row(
        call,
        |row| {
            let count = match counts {
                Some(c) if c.is_null(row) => return Ok(None),
                Some(c) => c.value(row),
                None => 0,
            };
            let masker = if masks.is_empty() {
                DEFAULT_MASKER
            } else {
                let m = |i: usize| {
                    mask_character((!masks[i].is_null(row)).then(|| masks[i].value(row)))
                };
                Masker {
                    upper: m(0)?,
                    lower: m(1)?,
                    digit: m(2)?,
                    other: m(3)?,
                }
            };
            if count < 0 {
                let name = call.name.to_ascii_lowercase();
                return Err(format!(
                    "function {name} requires a non-negative number of characters to mask or skip"
                ));
            }
            if inputs.is_null(row) {
                return Ok(None);
            }
            let units = utf16(inputs.value(row));
            let (n, count) = (units.len(), count as usize);
            // The masked range, in UTF-16 positions as Java's substrings cut.
            let (from, to) = match part {
                Part::All => (0, n),
                Part::Left => (0, count.min(n)),
                Part::Right => (n.saturating_sub(count), n),
                Part::KeepLeft => (count.min(n), n),
                Part::KeepRight => (0, n.saturating_sub(count)),
            };
            let mut masked = Vec::with_capacity(n);
            masked.extend_from_slice(&units[..from]);
            masker.mask(&units[from..to], &mut masked);
            masked.extend_from_slice(&units[to..]);
            Ok(Some(String::from_utf16_lossy(&masked)))
        },
        |v| out.append_option(v),
    );
    Ok(Arc::new(out.finish()))
}

/// `UUID()`: a random (version 4) UUID; `UUID(bytes)`: the 16 bytes as a UUID.
fn uuid(call: &Call) -> DfResult<ArrayRef> {
    let mut out = StringBuilder::with_capacity(call.rows, call.rows * 36);
    match super::opt_arg::<BinaryArray>(call, 0)? {
        None => {
            for _ in 0..call.rows {
                out.append_value(uuid::Uuid::new_v4().to_string());
            }
        }
        Some(bytes) => {
            for row in 0..call.rows {
                let value = (!bytes.is_null(row))
                    .then(|| uuid::Uuid::from_slice(bytes.value(row)).ok())
                    .flatten()
                    .map(|u| u.to_string());
                out.append_option(value);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ListArray, MapArray};

    #[test]
    fn substring_as_ksqldb() {
        let sub = |s: &str, pos: i32, len: Option<i32>| {
            let (from, to) = substring_range(s.len(), pos, len);
            s[from..to].to_string()
        };
        // ksqlDB's own cases (substring.json), and its positions 0 and below.
        assert_eq!(sub("some_string", 6, None), "string");
        assert_eq!(sub("short", 6, None), "");
        assert_eq!(sub("some_string", 6, Some(3)), "str");
        assert_eq!(sub("another", 6, Some(3)), "er");
        assert_eq!(sub("some string", 0, Some(2)), "so");
        assert_eq!(sub("abcdef", -2, None), "ef");
        assert_eq!(sub("abcdef", -10, Some(2)), "ab");
        assert_eq!(sub("abcdef", 2, Some(-1)), "");
    }

    #[test]
    fn instr_as_ksqldb() {
        // ksqlDB's own cases (instr.json).
        assert_eq!(instr_of("corporate floor", "or", 1, 1), 2);
        assert_eq!(instr_of("should I stay or should I go", "or", 1, 1), 15);
        assert_eq!(instr_of("no substring", "or", 1, 1), 0);
        assert_eq!(instr_of("corporate floor", "or", 4, 1), 5);
        assert_eq!(instr_of("short", "or", 4, 1), 0);
        assert_eq!(instr_of("corporate floor", "or", 4, 2), 14);
        assert_eq!(instr_of("corporate floor", "or", -4, 1), 5);
        assert_eq!(instr_of("corporate floor", "or", -4, 2), 2);
        assert_eq!(instr_of("short", "or", -4, 2), 0);
        // Past the length, occurrence 0, the empty substring.
        assert_eq!(instr_of("abc", "c", 4, 1), 0);
        assert_eq!(instr_of("abc", "c", 1, 0), 0);
        assert_eq!(instr_of("abc", "", 2, 1), 2);
        // UTF-16 positions, as Java counts them.
        assert_eq!(instr_of("😀ab", "b", 1, 1), 4);
    }

    fn call(args: Vec<ArrayRef>, rows: usize) -> Call<'static> {
        Call {
            args,
            rows,
            return_type: &DataType::Null,
            name: "TEST",
        }
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn list_values(list: &ListArray, row: usize) -> Vec<String> {
        let values = list.value(row);
        let values = values.as_any().downcast_ref::<StringArray>().unwrap();
        values
            .iter()
            .map(|v| v.unwrap_or("<null>").to_string())
            .collect()
    }

    #[test]
    fn split_keeps_empty_parts_and_splits_every_character_on_empty() {
        let s = strings(&[Some("..a.."), Some("a$$b.c"), Some("abc"), Some(""), None]);
        let d = strings(&[Some("."), Some("$$"), Some(""), Some(""), Some(".")]);
        let out = split(&call(vec![s, d], 5)).unwrap();
        let out = out.as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(list_values(out, 0), ["", "", "a", "", ""]);
        assert_eq!(list_values(out, 1), ["a", "b.c"]);
        assert_eq!(list_values(out, 2), ["a", "b", "c"]);
        assert_eq!(list_values(out, 3), [""]);
        assert!(out.is_null(4));
        assert_eq!(out.data_type(), &list_of(DataType::Utf8));
    }

    #[test]
    fn split_to_map_as_ksqldb() {
        let input = "apple:green/banana:yellow/cherry:red";
        let inputs = strings(&[
            Some(input),
            Some(input),
            Some("apple:green//banana:yellow//cherry:red/"),
            Some(input),
            Some(input),
            Some(""),
            Some("a:1/a:2"),
        ]);
        let entries = strings(&[
            Some("/"),
            Some("&&"),
            Some("/"),
            Some("/"),
            Some(""),
            Some("/"),
            Some("/"),
        ]);
        let kvs = strings(&[
            Some(":"),
            Some(":"),
            Some(":"),
            Some("="),
            Some(":"),
            Some(":"),
            Some(":"),
        ]);
        let out = split_to_map(&call(vec![inputs, entries, kvs], 7)).unwrap();
        assert_eq!(out.data_type(), &string_map_of(DataType::Utf8));
        let out = out.as_any().downcast_ref::<MapArray>().unwrap();
        let pairs = |row: usize| -> Vec<(String, String)> {
            let entries = out.value(row);
            let keys = entries
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let values = entries
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            (0..keys.len())
                .map(|i| (keys.value(i).to_string(), values.value(i).to_string()))
                .collect()
        };
        assert_eq!(pairs(0).len(), 3);
        assert_eq!(
            pairs(1),
            [("apple".to_string(), "green/banana".to_string())]
        );
        assert_eq!(pairs(2).len(), 3);
        assert!(pairs(3).is_empty());
        assert!(out.is_null(4));
        assert!(pairs(5).is_empty());
        assert_eq!(pairs(6), [("a".to_string(), "2".to_string())]);
    }

    #[test]
    fn elt_and_field_undo_each_other() {
        let n: ArrayRef = Arc::new(Int32Array::from(vec![Some(2), Some(0), Some(3), None]));
        let a = strings(&[Some("a"), Some("a"), Some("a"), Some("a")]);
        let b = strings(&[Some("b"), Some("b"), Some("b"), Some("b")]);
        let out = elt(&call(vec![n, a.clone(), b.clone()], 4)).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "b");
        assert!(out.is_null(1) && out.is_null(2) && out.is_null(3));
        let needle = strings(&[Some("b"), Some("c"), None, Some("a")]);
        let out = field(&call(vec![needle, a, b], 4)).unwrap();
        let out = out.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(out.values().to_vec(), [2, 0, 0, 1]);
    }

    fn mask_of(
        part: Part,
        input: &str,
        count: i32,
        masks: Option<[Option<&str>; 4]>,
    ) -> Option<String> {
        let mut args: Vec<ArrayRef> = vec![strings(&[Some(input)])];
        if part != Part::All {
            args.push(Arc::new(Int32Array::from(vec![count])));
        }
        if let Some(masks) = masks {
            args.extend(masks.iter().map(|m| strings(&[*m])));
        }
        let out = mask_part(&call(args, 1), part).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        (!out.is_null(0)).then(|| out.value(0).to_string())
    }

    #[test]
    fn masks_as_ksqldb() {
        assert_eq!(
            mask_of(Part::All, "AbCd#$123xy Z", 0, None).unwrap(),
            "XxXx--nnnxx-X"
        );
        assert_eq!(
            mask_of(
                Part::All,
                "AbCd#$123xy Z",
                0,
                Some([Some("Q"), Some("q"), None, Some("=")])
            )
            .unwrap(),
            "QqQq==123qq=Q"
        );
        assert_eq!(
            mask_of(Part::Left, "AbCd#$123xy Z", 5, None).unwrap(),
            "XxXx-$123xy Z"
        );
        assert_eq!(
            mask_of(Part::Right, "AbCd#$123xy Z", 5, None).unwrap(),
            "AbCd#$12nxx-X"
        );
        assert_eq!(
            mask_of(Part::KeepLeft, "AbCd#$123xy Z", 5, None).unwrap(),
            "AbCd#-nnnxx-X"
        );
        assert_eq!(
            mask_of(Part::KeepRight, "AbCd#$123xy Z", 5, None).unwrap(),
            "XxXx--nn3xy Z"
        );
        assert_eq!(mask_of(Part::Left, "Ab", 10, None).unwrap(), "Xx");
        // Java's categories: Roman numerals and ordinal indicators are not letters, Arabic-
        // Indic digits are digits.
        assert_eq!(mask_of(Part::All, "ÉéⅧª٣", 0, None).unwrap(), "Xx--n");
        // A negative count or a mask of two characters fails the row: null.
        assert_eq!(mask_of(Part::Left, "Ab", -1, None), None);
        assert_eq!(
            mask_of(Part::All, "Ab", 0, Some([Some("QQ"), None, None, None])),
            None
        );
    }

    #[test]
    fn uuid_from_bytes_needs_sixteen() {
        let bytes: ArrayRef = Arc::new(BinaryArray::from(vec![
            Some(&[0u8; 16][..]),
            Some(&[1u8; 3][..]),
        ]));
        let out = uuid(&call(vec![bytes], 2)).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "00000000-0000-0000-0000-000000000000");
        assert!(out.is_null(1));
        let out = uuid(&call(vec![], 2)).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0).len(), 36);
        assert_ne!(out.value(0), out.value(1));
    }
}
