//! `DELIMITED`: one line of fields separated by the delimiter, quoted as RFC 4180 (and Apache
//! Commons CSV, which ksqlDB uses) quotes them; an empty field is null.

use super::builder::Builder;
use super::reader::Reader;
use super::text::{append_text, TextError};

/// A field of a line: where it is, and whether it was quoted with doubled quotes inside.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

/// What the DELIMITED decoder keeps between records.
pub(crate) struct DelimitedState {
    delimiter: [u8; 4],
    delimiter_len: usize,
    spans: Vec<Span>,
    scratch: Vec<u8>,
}

impl DelimitedState {
    pub(crate) fn new(delimiter: char) -> DelimitedState {
        let mut bytes = [0u8; 4];
        let delimiter_len = delimiter.encode_utf8(&mut bytes).len();
        DelimitedState {
            delimiter: bytes,
            delimiter_len,
            spans: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Appends the line `bytes` as one row of `columns`.
    pub(crate) fn decode(
        &mut self,
        bytes: &[u8],
        names: &[String],
        columns: &mut [Builder],
    ) -> Result<(), String> {
        self.split(bytes)?;
        if columns.is_empty() && self.spans.len() == 1 && self.spans[0].start == self.spans[0].end {
            // An empty line holds no field at all.
            return Ok(());
        }
        if self.spans.len() != columns.len() {
            return Err(format!(
                "Unexpected field count, csvFields:{} schemaFields:{}",
                self.spans.len(),
                columns.len()
            ));
        }
        for ((span, column), name) in self.spans.iter().zip(columns.iter_mut()).zip(names) {
            if span.start == span.end {
                column.append_null();
                continue;
            }
            let raw = &bytes[span.start..span.end];
            let field: &[u8] = if span.escaped {
                self.scratch.clear();
                let mut i = 0;
                while i < raw.len() {
                    self.scratch.push(raw[i]);
                    // Inside quotes a quote is always doubled.
                    i += if raw[i] == b'"' { 2 } else { 1 };
                }
                &self.scratch
            } else {
                raw
            };
            let text = std::str::from_utf8(field).map_err(|e| {
                format!(
                    "Error deserializing delimited field `{name}`: invalid UTF-8 at byte {}",
                    span.start + e.valid_up_to()
                )
            })?;
            if let Err(e) = append_text(column, text) {
                return Err(match e {
                    TextError::Decimal(message) => {
                        format!("Error deserializing delimited field `{name}`: {message}")
                    }
                    TextError::Full(message) => message,
                    TextError::Base64 => format!(
                        "Error deserializing delimited field `{name}`: '{text}' is not a valid Base64 BYTES value"
                    ),
                    TextError::Coerce | TextError::NotScalar => format!(
                        "Error deserializing delimited field `{name}`: '{text}' is not a valid {} value",
                        column.base_name()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Splits the first line of `bytes` into `self.spans`.
    fn split(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.spans.clear();
        let delimiter = &self.delimiter[..self.delimiter_len];
        let single = (self.delimiter_len == 1).then_some(self.delimiter[0]);
        let at_delimiter = |i: usize| match single {
            Some(d) => bytes.get(i) == Some(&d),
            None => bytes[i..].starts_with(delimiter),
        };
        let mut i = 0;
        loop {
            if bytes.get(i) == Some(&b'"') {
                let start = i + 1;
                let mut j = start;
                let mut escaped = false;
                let end = loop {
                    match bytes[j.min(bytes.len())..].iter().position(|&c| c == b'"') {
                        None => {
                            return Err(
                                "Error deserializing delimited: EOF reached before encapsulated token finished"
                                    .to_string(),
                            )
                        }
                        Some(k) => {
                            let quote = j + k;
                            if bytes.get(quote + 1) == Some(&b'"') {
                                escaped = true;
                                j = quote + 2;
                            } else {
                                break quote;
                            }
                        }
                    }
                };
                self.spans.push(Span {
                    start,
                    end,
                    escaped,
                });
                i = end + 1;
                if i < bytes.len() && !at_delimiter(i) && bytes[i] != b'\r' && bytes[i] != b'\n' {
                    return Err(format!(
                        "Error deserializing delimited: invalid char between encapsulated token and delimiter at byte {i}"
                    ));
                }
            } else {
                let start = i;
                while i < bytes.len() && !at_delimiter(i) && bytes[i] != b'\r' && bytes[i] != b'\n'
                {
                    i += 1;
                }
                self.spans.push(Span {
                    start,
                    end: i,
                    escaped: false,
                });
            }
            if i < bytes.len() && at_delimiter(i) {
                i += delimiter.len();
                continue;
            }
            // The end of the input or of the first line: what follows a line break is not
            // read (ksqlDB reads the first record).
            return Ok(());
        }
    }
}

/// Appends the field of a non-null value, quoted if it must be.
pub(crate) fn write_field(
    reader: &Reader,
    row: usize,
    delimiter: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let start = out.len();
    reader.write_text(row, out)?;
    let field = &out[start..];
    if field.is_empty() {
        // An empty string, told apart from null (ksqlDB reads both as null).
        out.extend_from_slice(b"\"\"");
    } else if needs_quotes(field, delimiter) {
        let text = out.split_off(start);
        out.push(b'"');
        for &c in &text {
            out.push(c);
            if c == b'"' {
                out.push(b'"');
            }
        }
        out.push(b'"');
    }
    Ok(())
}

fn needs_quotes(field: &[u8], delimiter: &[u8]) -> bool {
    let special = |c: &u8| matches!(c, b'"' | b'\r' | b'\n');
    match delimiter {
        [d] => field.iter().any(|c| c == d || special(c)),
        _ => field.iter().any(special) || field.windows(delimiter.len()).any(|w| w == delimiter),
    }
}
