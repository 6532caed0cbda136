//! ksqlDB's JSON functions (`JSON`). JSON text is read as ksqlDB's Jackson reads it (its
//! strict syntax, the first value with anything after it ignored, numbers kept exactly:
//! `1.23450` stays `1.23450`) and written as Jackson writes nodes (compact, `1E+2` for the
//! decimal `1e2`, `\u001F` escapes).

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, ListBuilder, StringArray, StringBuilder,
};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use datafusion_common::Result as DfResult;

use super::java_time::{Pattern, Temporal, Zone};
use super::{
    arg, each_row, list_of, overloads, returns, sig, string_map_of, var, Call, KsqlUdf, Memo, Param,
};

const CATEGORY: &str = "JSON";

pub(super) fn functions() -> Vec<KsqlUdf> {
    use Param::{Any, String as Str};
    vec![
        KsqlUdf::new(
            "EXTRACTJSONFIELD",
            "extractjsonfield",
            CATEGORY,
            "Given a STRING that contains JSON data, extract the value at the specified JSONPath or NULL if the specified path does not exist.",
            overloads![sig(&[Str, Str])],
            returns!(DataType::Utf8),
            extract_json_field,
        ),
        KsqlUdf::new(
            "IS_JSON_STRING",
            "IS_JSON_STRING",
            CATEGORY,
            "Given a string, returns true if it can be parsed as a valid JSON value, false otherwise.",
            overloads![sig(&[Str])],
            returns!(DataType::Boolean),
            is_json_string,
        ),
        KsqlUdf::new(
            "JSON_ARRAY_LENGTH",
            "JSON_ARRAY_LENGTH",
            CATEGORY,
            "Given a string, parses it as a JSON value and returns the length of the top-level array.",
            overloads![sig(&[Str])],
            returns!(DataType::Int32),
            json_array_length,
        ),
        KsqlUdf::new(
            "JSON_KEYS",
            "JSON_KEYS",
            CATEGORY,
            "Given a string, parses it as a JSON object and returns a ksqlDB array of strings representing the top-level keys.",
            overloads![sig(&[Str])],
            returns!(list_of(DataType::Utf8)),
            json_keys,
        ),
        KsqlUdf::new(
            "JSON_ARRAY_CONTAINS",
            "JSON_ARRAY_CONTAINS",
            CATEGORY,
            "Parses a JSON array and determines whether or not the supplied value is contained within the array.",
            overloads![sig(&[Str, Any])],
            returns!(DataType::Boolean),
            json_array_contains,
        ),
        KsqlUdf::new(
            "TO_JSON_STRING",
            "TO_JSON_STRING",
            CATEGORY,
            "Given any ksqlDB type returns the equivalent JSON string.",
            overloads![sig(&[Any])],
            returns!(DataType::Utf8),
            to_json_string,
        ),
        KsqlUdf::new(
            "JSON_CONCAT",
            "JSON_CONCAT",
            CATEGORY,
            "Given N strings, parse them as JSON values and return a string representing their concatenation.",
            overloads![var(&[Str, Str])],
            returns!(DataType::Utf8),
            json_concat,
        ),
        KsqlUdf::new(
            "JSON_ITEMS",
            "JSON_ITEMS",
            CATEGORY,
            "Given a string with JSON array, converts it to a ksqlDB array of JSON strings.",
            overloads![sig(&[Str])],
            returns!(list_of(DataType::Utf8)),
            json_items,
        ),
        KsqlUdf::new(
            "JSON_RECORDS",
            "JSON_RECORDS",
            CATEGORY,
            "Given a string, parses it as a JSON object and returns a map representing the top-level keys and values.",
            overloads![sig(&[Str])],
            returns!(string_map_of(DataType::Utf8)),
            json_records,
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// JSON as Jackson reads and writes it

/// A JSON value as Jackson's tree holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    /// An integer: its digits (a `-` first), as parsed.
    Int(String),
    /// A number with a fraction or exponent: its exact decimal, unscaled digits (a `-`
    /// first) and scale (a `BigDecimal`).
    Decimal(String, i64),
    Text(String),
    Array(Vec<Node>),
    /// Fields in order of first appearance; a repeated name's last value.
    Object(Vec<(String, Node)>),
}

/// Deeper nesting is refused (Jackson's later versions limit it to 1000 too): writing and
/// dropping a node recurse.
const MAX_DEPTH: usize = 1000;

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> String {
        format!("Invalid JSON: {what} at position {}", self.at)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// A field's name and its colon, at the name's opening quote (after spaces).
    fn field_name(&mut self) -> Result<String, String> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a field name"));
        }
        let name = self.string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.error("expected ':'"));
        }
        self.at += 1;
        Ok(name)
    }

    /// One value, containers and all. Iterative, with the open containers on a stack of
    /// its own, so deep input cannot exhaust the thread's stack.
    fn value(&mut self) -> Result<Node, String> {
        enum Open {
            Array(Vec<Node>),
            /// The fields so far and the name of the one being read.
            Object(Vec<(String, Node)>, String),
        }
        let mut open: Vec<Open> = Vec::new();
        loop {
            if open.len() > MAX_DEPTH {
                return Err(self.error("nesting too deep"));
            }
            self.skip_whitespace();
            let mut node = match self.peek() {
                None => return Err(self.error("unexpected end of input")),
                Some(b'{') => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                        Node::Object(Vec::new())
                    } else {
                        let name = self.field_name()?;
                        open.push(Open::Object(Vec::new(), name));
                        continue;
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.at += 1;
                        Node::Array(Vec::new())
                    } else {
                        open.push(Open::Array(Vec::new()));
                        continue;
                    }
                }
                Some(b'"') => Node::Text(self.string()?),
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(_) => self.word()?,
            };
            // The value is whole: into its container, closing those that end with it.
            loop {
                match open.last_mut() {
                    None => return Ok(node),
                    Some(Open::Array(items)) => {
                        items.push(node);
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.at += 1;
                                break;
                            }
                            Some(b']') => {
                                self.at += 1;
                                let Some(Open::Array(items)) = open.pop() else {
                                    return Err(self.error("unbalanced array"));
                                };
                                node = Node::Array(items);
                            }
                            _ => return Err(self.error("expected ',' or ']'")),
                        }
                    }
                    Some(Open::Object(fields, name)) => {
                        let name = std::mem::take(name);
                        match fields.iter_mut().find(|(n, _)| *n == name) {
                            Some(field) => field.1 = node,
                            None => fields.push((name, node)),
                        }
                        self.skip_whitespace();
                        match self.peek() {
                            Some(b',') => {
                                self.at += 1;
                                let next = self.field_name()?;
                                if let Some(Open::Object(_, name)) = open.last_mut() {
                                    *name = next;
                                }
                                break;
                            }
                            Some(b'}') => {
                                self.at += 1;
                                let Some(Open::Object(fields, _)) = open.pop() else {
                                    return Err(self.error("unbalanced object"));
                                };
                                node = Node::Object(fields);
                            }
                            _ => return Err(self.error("expected ',' or '}'")),
                        }
                    }
                }
            }
        }
    }

    /// `true`, `false` or `null`.
    fn word(&mut self) -> Result<Node, String> {
        for (word, node) in [
            ("true", Node::Bool(true)),
            ("false", Node::Bool(false)),
            ("null", Node::Null),
        ] {
            if self.text[self.at..].starts_with(word.as_bytes()) {
                let end = self.at + word.len();
                // `trueish` is one unrecognised token.
                if self
                    .text
                    .get(end)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    break;
                }
                self.at = end;
                return Ok(node);
            }
        }
        Err(self.error("unrecognized token"))
    }

    fn string(&mut self) -> Result<String, String> {
        // At the opening quote.
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.at += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&unit) {
                                // A surrogate pair, if the low half follows.
                                if self.text[self.at..].starts_with(b"\\u") {
                                    self.at += 2;
                                    let low = self.hex4()?;
                                    char::decode_utf16([unit, low])
                                        .next()
                                        .and_then(Result::ok)
                                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                                } else {
                                    char::REPLACEMENT_CHARACTER
                                }
                            } else {
                                char::from_u32(u32::from(unit))
                                    .unwrap_or(char::REPLACEMENT_CHARACTER)
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.error("unrecognized character escape")),
                    }
                }
                0x00..=0x1f => return Err(self.error("illegal unquoted character")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8"))
    }

    fn hex4(&mut self) -> Result<u16, String> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("expected 4 hex digits"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.error("expected hex digits"))?;
        let unit = u16::from_str_radix(text, 16).map_err(|_| self.error("expected hex digits"))?;
        self.at += 4;
        Ok(unit)
    }

    fn number(&mut self) -> Result<Node, String> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = |r: &mut Reader| {
            let from = r.at;
            while r.peek().is_some_and(|b| b.is_ascii_digit()) {
                r.at += 1;
            }
            r.at - from
        };
        let int_start = self.at;
        let n_int = digits(self);
        if n_int == 0 {
            return Err(self.error("expected a digit"));
        }
        if n_int > 1 && self.text[int_start] == b'0' {
            return Err(self.error("leading zeroes not allowed"));
        }
        let int_digits = &self.text[int_start..int_start + n_int];
        let mut fraction: &[u8] = &[];
        let mut exponent: i64 = 0;
        let mut is_decimal = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            let from = self.at;
            if digits(self) == 0 {
                return Err(self.error("decimal point not followed by a digit"));
            }
            fraction = &self.text[from..self.at];
            is_decimal = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            let sign_negative = match self.peek() {
                Some(b'-') => {
                    self.at += 1;
                    true
                }
                Some(b'+') => {
                    self.at += 1;
                    false
                }
                _ => false,
            };
            let from = self.at;
            if digits(self) == 0 {
                return Err(self.error("exponent indicator not followed by a digit"));
            }
            let text = std::str::from_utf8(&self.text[from..self.at]).unwrap_or("");
            exponent = text
                .parse::<i64>()
                .ok()
                .filter(|e| *e < i64::from(i32::MAX))
                .ok_or_else(|| self.error("exponent too large"))?;
            if sign_negative {
                exponent = -exponent;
            }
            is_decimal = true;
        }
        let _ = start;
        if !is_decimal {
            let text = std::str::from_utf8(int_digits).unwrap_or("0");
            // `-0` is the int 0.
            let text = if text == "0" || !negative {
                text.to_string()
            } else {
                format!("-{text}")
            };
            return Ok(Node::Int(text));
        }
        let mut unscaled: String = std::str::from_utf8(int_digits).unwrap_or("").to_string();
        unscaled.push_str(std::str::from_utf8(fraction).unwrap_or(""));
        let trimmed = unscaled.trim_start_matches('0');
        let magnitude = if trimmed.is_empty() { "0" } else { trimmed };
        let unscaled = if negative && magnitude != "0" {
            format!("-{magnitude}")
        } else {
            magnitude.to_string()
        };
        Ok(Node::Decimal(unscaled, fraction.len() as i64 - exponent))
    }
}

/// Jackson's `readTree`: the first value of `text` (what follows it is ignored, but a
/// number at the top must end at a space or the end), or `None` for nothing but spaces
/// (Jackson's missing node).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, String> {
    let mut reader = Reader {
        text: text.as_bytes(),
        at: 0,
    };
    reader.skip_whitespace();
    if reader.peek().is_none() {
        return Ok(None);
    }
    let node = reader.value()?;
    if matches!(node, Node::Int(_) | Node::Decimal(..)) {
        if let Some(b) = reader.peek() {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Err(reader.error("expected space separating root-level values"));
            }
        }
    }
    Ok(Some(node))
}

/// `BigDecimal.toString()` (`plain`: `toPlainString()`) of `unscaled` at `scale`.
pub(super) fn big_decimal(unscaled: &str, scale: i64, plain: bool) -> String {
    let (sign, coefficient) = match unscaled.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", unscaled),
    };
    let len = coefficient.len() as i64;
    let adjusted = -scale + (len - 1);
    let mut out = String::from(sign);
    if plain || (scale >= 0 && adjusted >= -6) {
        if scale <= 0 {
            out.push_str(coefficient);
            if coefficient != "0" || plain {
                for _ in 0..(-scale) {
                    out.push('0');
                }
            }
        } else if len > scale {
            let split = (len - scale) as usize;
            out.push_str(&coefficient[..split]);
            out.push('.');
            out.push_str(&coefficient[split..]);
        } else {
            out.push_str("0.");
            for _ in 0..(scale - len) {
                out.push('0');
            }
            out.push_str(coefficient);
        }
        return out;
    }
    out.push_str(&coefficient[..1]);
    if len > 1 {
        out.push('.');
        out.push_str(&coefficient[1..]);
    }
    out.push('E');
    if adjusted > 0 {
        out.push('+');
    }
    out.push_str(&adjusted.to_string());
    out
}

/// `s` as Jackson quotes it.
fn push_quoted(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Node {
    /// Jackson's compact text of the node (`JsonNode.toString()`; `plain_decimals`: as the
    /// UDFs' own mapper writes them, `BigDecimal`s without exponents).
    pub(crate) fn write(&self, out: &mut String, plain_decimals: bool) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Int(digits) => out.push_str(digits),
            Node::Decimal(unscaled, scale) => {
                out.push_str(&big_decimal(unscaled, *scale, plain_decimals))
            }
            Node::Text(s) => push_quoted(out, s),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out, plain_decimals);
                }
                out.push(']');
            }
            Node::Object(fields) => {
                out.push('{');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_quoted(out, name);
                    out.push(':');
                    value.write(out, plain_decimals);
                }
                out.push('}');
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, false);
        out
    }

    /// `asText()` of a text node, else the node's JSON.
    fn text_or_json(&self) -> String {
        match self {
            Node::Text(s) => s.clone(),
            other => other.text(),
        }
    }
}

/// ksqlDB's `JsonPathTokenizer`: `$`, then `.name` or `[name]` or `["quoted"]` steps.
fn json_path(path: &str) -> Result<Vec<String>, String> {
    let invalid = || format!("Invalid JSON path: '{path}'");
    let chars: Vec<char> = path.chars().collect();
    if chars.first() != Some(&'$') {
        return Err(invalid());
    }
    let unquoted_subscript = |c: char| c == '_' || c.is_alphanumeric();
    let mut tokens = Vec::new();
    let mut at = 1;
    while at < chars.len() {
        match chars[at] {
            '.' => {
                at += 1;
                let start = at;
                while at < chars.len()
                    && (chars[at] == ':' || chars[at] == '@' || unquoted_subscript(chars[at]))
                {
                    at += 1;
                }
                if at == start {
                    return Err(invalid());
                }
                tokens.push(chars[start..at].iter().collect());
            }
            '[' => {
                at += 1;
                let token = if chars.get(at) == Some(&'"') {
                    at += 1;
                    let mut token = String::new();
                    loop {
                        match chars.get(at) {
                            None => return Err(invalid()),
                            Some('"') => {
                                at += 1;
                                break;
                            }
                            Some('\\') => match chars.get(at + 1) {
                                Some(c @ ('"' | '\\')) => {
                                    token.push(*c);
                                    at += 2;
                                }
                                _ => return Err(invalid()),
                            },
                            Some(c) => {
                                token.push(*c);
                                at += 1;
                            }
                        }
                    }
                    token
                } else {
                    let start = at;
                    while at < chars.len() && unquoted_subscript(chars[at]) {
                        at += 1;
                    }
                    if at == start {
                        return Err(invalid());
                    }
                    chars[start..at].iter().collect()
                };
                if chars.get(at) != Some(&']') {
                    return Err(invalid());
                }
                at += 1;
                tokens.push(token);
            }
            _ => return Err(invalid()),
        }
    }
    Ok(tokens)
}

/// Java's `Integer.parseInt` (a sign, then ASCII digits).
fn java_int(token: &str) -> Option<i32> {
    token.parse().ok()
}

/// `EXTRACTJSONFIELD(json, path)` on one value.
fn extract(json: &str, tokens: &[String]) -> Result<Option<String>, String> {
    let root = parse(json).map_err(|e| format!("Invalid JSON format:{json}: {e}"))?;
    let Some(mut node) = root.as_ref() else {
        // The missing node: no step finds anything in it, and it prints as nothing.
        return Ok(tokens.is_empty().then(String::new));
    };
    for token in tokens {
        let next = match node {
            Node::Array(items) => {
                let Some(index) = java_int(token) else {
                    return Ok(None);
                };
                usize::try_from(index).ok().and_then(|i| items.get(i))
            }
            Node::Object(fields) => fields.iter().find(|(n, _)| n == token).map(|(_, v)| v),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return Ok(None),
        }
    }
    Ok(Some(node.text_or_json()))
}

fn extract_json_field(call: &Call) -> DfResult<ArrayRef> {
    let inputs = arg::<StringArray>(call, 0)?;
    let paths = arg::<StringArray>(call, 1)?;
    let mut memo: Memo<Result<Vec<String>, String>> = Memo::default();
    let mut out = StringBuilder::new();
    each_row(
        call,
        |row| {
            if inputs.is_null(row) || paths.is_null(row) {
                return Ok(None);
            }
            let tokens = memo
                .get(paths.value(row), json_path)
                .as_ref()
                .map_err(Clone::clone)?;
            extract(inputs.value(row), tokens)
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

fn is_json_string(call: &Call) -> DfResult<ArrayRef> {
    let inputs = arg::<StringArray>(call, 0)?;
    let mut out = BooleanBuilder::with_capacity(call.rows);
    for row in 0..call.rows {
        out.append_value(!inputs.is_null(row) && matches!(parse(inputs.value(row)), Ok(Some(_))));
    }
    Ok(Arc::new(out.finish()))
}

/// The node of each row's JSON (a parse failure logged, its row null).
fn each_node<T>(
    call: &Call,
    mut row_value: impl FnMut(Option<Node>) -> Option<T>,
    append: impl FnMut(Option<T>),
) -> DfResult<()> {
    let inputs = arg::<StringArray>(call, 0)?;
    each_row(
        call,
        |row| {
            if inputs.is_null(row) {
                return Ok(None);
            }
            let json = inputs.value(row);
            let node = parse(json).map_err(|e| format!("Invalid JSON format:{json}: {e}"))?;
            Ok(row_value(node))
        },
        append,
    );
    Ok(())
}

fn json_array_length(call: &Call) -> DfResult<ArrayRef> {
    let mut out = Int32Builder::with_capacity(call.rows);
    each_node(
        call,
        |node| match node {
            Some(Node::Array(items)) => i32::try_from(items.len()).ok(),
            _ => None,
        },
        |v| out.append_option(v),
    )?;
    Ok(Arc::new(out.finish()))
}

fn json_keys(call: &Call) -> DfResult<ArrayRef> {
    let mut out = ListBuilder::new(StringBuilder::new());
    each_node(
        call,
        |node| match node {
            Some(Node::Object(fields)) => Some(
                fields
                    .into_iter()
                    .map(|(name, _)| Some(name))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        },
        |v| out.append_option(v),
    )?;
    Ok(Arc::new(out.finish()))
}

fn json_items(call: &Call) -> DfResult<ArrayRef> {
    let inputs = arg::<StringArray>(call, 0)?;
    let mut out = ListBuilder::new(StringBuilder::new());
    each_row(
        call,
        |row| {
            if inputs.is_null(row) {
                return Ok(None);
            }
            let json = inputs.value(row);
            // Jackson reads a list: anything but an array fails.
            match parse(json) {
                Ok(Some(Node::Array(items))) => Ok(Some(
                    items.iter().map(|i| Some(i.text())).collect::<Vec<_>>(),
                )),
                Ok(_) => Err(format!("Invalid JSON format:{json}: not an array")),
                Err(e) => Err(format!("Invalid JSON format:{json}: {e}")),
            }
        },
        |v| out.append_option(v),
    );
    Ok(Arc::new(out.finish()))
}

fn json_records(call: &Call) -> DfResult<ArrayRef> {
    let mut out = super::string::string_map_builder();
    let mut rows = Vec::with_capacity(call.rows);
    each_node(
        call,
        |node| match node {
            Some(Node::Object(fields)) => Some(
                fields
                    .into_iter()
                    .map(|(name, value)| (name, value.text_or_json()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        },
        |v| rows.push(v),
    )?;
    for row in rows {
        match row {
            Some(fields) => {
                for (name, value) in fields {
                    out.keys().append_value(name);
                    out.values().append_value(value);
                }
                out.append(true)?;
            }
            None => out.append(false)?,
        }
    }
    Ok(Arc::new(out.finish()))
}

fn json_concat(call: &Call) -> DfResult<ArrayRef> {
    let inputs = (0..call.args.len())
        .map(|at| arg::<StringArray>(call, at))
        .collect::<DfResult<Vec<_>>>()?;
    let mut out = StringBuilder::new();
    each_row(
        call,
        |row| {
            let mut nodes = Vec::with_capacity(inputs.len());
            for input in &inputs {
                if input.is_null(row) {
                    return Ok(None);
                }
                let json = input.value(row);
                match parse(json).map_err(|e| format!("Invalid JSON format:{json}: {e}"))? {
                    Some(node) => nodes.push(node),
                    None => return Ok(None),
                }
            }
            let all_objects = nodes.iter().all(|n| matches!(n, Node::Object(_)));
            let mut nodes = nodes.into_iter();
            let Some(mut result) = nodes.next() else {
                return Ok(None);
            };
            for node in nodes {
                result = if all_objects {
                    let (Node::Object(mut fields), Node::Object(more)) = (result, node) else {
                        return Ok(None);
                    };
                    for (name, value) in more {
                        match fields.iter_mut().find(|(n, _)| *n == name) {
                            Some(field) => field.1 = value,
                            None => fields.push((name, value)),
                        }
                    }
                    Node::Object(fields)
                } else {
                    let as_items = |n: Node| match n {
                        Node::Array(items) => items,
                        other => vec![other],
                    };
                    let mut items = as_items(result);
                    items.extend(as_items(node));
                    Node::Array(items)
                };
            }
            let mut text = String::new();
            result.write(&mut text, true);
            Ok(Some(text))
        },
        |v| out.append_option(v),
    );
    Ok(Arc::new(out.finish()))
}

// ---------------------------------------------------------------------------------------
// JSON_ARRAY_CONTAINS

/// The value looked for, as ksqlDB's Java sees it.
#[derive(Debug, Clone, PartialEq)]
enum Wanted {
    Null,
    Int(i32),
    Long(i64),
    Double(f64),
    Text(String),
    Bool(bool),
    /// A type no JSON token is compared with: never found.
    Other,
}

impl Wanted {
    /// Whether array element `node` equals the value, as Jackson reads it to the value's
    /// Java class; `None` if Jackson cannot (an integer out of the value's range), which
    /// ends the search with `false`.
    fn matches(&self, node: &Node) -> Option<bool> {
        Some(match (self, node) {
            (Wanted::Null, Node::Null) => true,
            (Wanted::Int(v), Node::Int(digits)) => digits.parse::<i32>().ok()? == *v,
            (Wanted::Long(v), Node::Int(digits)) => digits.parse::<i64>().ok()? == *v,
            (Wanted::Double(v), Node::Decimal(unscaled, scale)) => {
                let text = format!("{unscaled}e{}", -scale);
                // Double.equals: bit for bit.
                text.parse::<f64>()
                    .is_ok_and(|d| d.to_bits() == v.to_bits())
            }
            (Wanted::Text(v), Node::Text(s)) => v == s,
            (Wanted::Bool(v), Node::Bool(b)) => v == b,
            _ => false,
        })
    }
}

/// Jackson's streaming reading of `json`: the elements are read one after the other until
/// one matches (so what follows a match is not checked); anything not an array, or broken
/// before a match, is `false`.
fn array_contains(json: &str, wanted: &Wanted) -> bool {
    let mut reader = Reader {
        text: json.as_bytes(),
        at: 0,
    };
    reader.skip_whitespace();
    if reader.peek() != Some(b'[') {
        return false;
    }
    reader.at += 1;
    reader.skip_whitespace();
    if reader.peek() == Some(b']') {
        return false;
    }
    loop {
        let Ok(node) = reader.value() else {
            return false;
        };
        match wanted.matches(&node) {
            Some(true) => return true,
            Some(false) => {}
            None => return false,
        }
        reader.skip_whitespace();
        match reader.peek() {
            Some(b',') => reader.at += 1,
            _ => return false,
        }
    }
}

fn json_array_contains(call: &Call) -> DfResult<ArrayRef> {
    let inputs = arg::<StringArray>(call, 0)?;
    let values = &call.args[1];
    let mut out = BooleanBuilder::with_capacity(call.rows);
    for row in 0..call.rows {
        if inputs.is_null(row) {
            out.append_null();
            continue;
        }
        let wanted = if super::is_null(values.as_ref(), row) {
            Wanted::Null
        } else {
            match values.data_type() {
                DataType::Int32 => Wanted::Int(values.as_primitive::<Int32Type>().value(row)),
                DataType::Int64 => Wanted::Long(values.as_primitive::<Int64Type>().value(row)),
                DataType::Float64 => {
                    Wanted::Double(values.as_primitive::<Float64Type>().value(row))
                }
                DataType::Utf8 => Wanted::Text(values.as_string::<i32>().value(row).to_string()),
                DataType::Boolean => Wanted::Bool(values.as_boolean().value(row)),
                _ => Wanted::Other,
            }
        };
        out.append_value(array_contains(inputs.value(row), &wanted));
    }
    Ok(Arc::new(out.finish()))
}

// ---------------------------------------------------------------------------------------
// TO_JSON_STRING

/// Java's `Double.toString` (Jackson writes doubles so): plain from 10^-3 to 10^7, else
/// `1.0E10`; the shortest digits that read back.
pub(crate) fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    // `{:e}`: the shortest digits, `d.ddde<exp>`.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let abs = v.abs();
    if (1e-3..1e7).contains(&abs) {
        let point = exponent + 1;
        let (int_part, frac_part) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat((-point) as usize), digits),
            )
        } else if (point as usize) >= digits.len() {
            (
                format!("{}{}", digits, "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac_part = if frac_part.is_empty() {
            "0".to_string()
        } else {
            frac_part
        };
        format!("{sign}{int_part}.{frac_part}")
    } else {
        let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{rest}E{exponent}", &digits[..1])
    }
}

/// Java's `String.compareTo`: by UTF-16 code units.
pub(super) fn java_compare(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Row `row` of `array` as ksqlDB's `TO_JSON_STRING` writes it.
fn write_value(array: &dyn Array, row: usize, out: &mut String) -> Result<(), String> {
    if super::is_null(array, row) {
        out.push_str("null");
        return Ok(());
    }
    match array.data_type() {
        DataType::Boolean => out.push_str(if array.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        DataType::Int8 => out.push_str(&array.as_primitive::<Int8Type>().value(row).to_string()),
        DataType::Int16 => out.push_str(&array.as_primitive::<Int16Type>().value(row).to_string()),
        DataType::Int32 => out.push_str(&array.as_primitive::<Int32Type>().value(row).to_string()),
        DataType::Int64 => out.push_str(&array.as_primitive::<Int64Type>().value(row).to_string()),
        DataType::Float32 => {
            let v = f64::from(array.as_primitive::<Float32Type>().value(row));
            push_double(out, v);
        }
        DataType::Float64 => push_double(out, array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            out.push_str(&big_decimal(&v.to_string(), i64::from(*scale), true));
        }
        DataType::Utf8 => push_quoted(out, array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => push_quoted(out, array.as_string::<i64>().value(row)),
        DataType::Binary => {
            use base64::Engine as _;
            let bytes = array.as_binary::<i32>().value(row);
            push_quoted(
                out,
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let date = days
                .checked_add(719_163)
                .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                .ok_or_else(|| format!("Invalid date: {days}"))?;
            push_quoted(out, &java_local_date(date));
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            // `LocalTime.ofSecondOfDay(ms / 1000).toString()`: no seconds when they are 0.
            let millis = array.as_primitive::<Time32MillisecondType>().value(row);
            let seconds = millis / 1000;
            if !(0..86_400).contains(&seconds) {
                return Err(format!("Invalid value for SecondOfDay: {seconds}"));
            }
            let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
            let text = if s == 0 {
                format!("{h:02}:{m:02}")
            } else {
                format!("{h:02}:{m:02}:{s:02}")
            };
            push_quoted(out, &text);
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            static PATTERN: std::sync::OnceLock<Result<Pattern, String>> =
                std::sync::OnceLock::new();
            let millis = array.as_primitive::<TimestampMillisecondType>().value(row);
            let zone = Zone::utc();
            let pattern = PATTERN
                .get_or_init(|| Pattern::compile("yyyy-MM-dd'T'HH:mm:ss.SSS"))
                .as_ref()
                .map_err(Clone::clone)?;
            let text = pattern.format(&Temporal::instant(millis, &zone)?)?;
            push_quoted(out, &text);
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let items = match array.data_type() {
                DataType::List(_) => array.as_list::<i32>().value(row),
                _ => array.as_list::<i64>().value(row),
            };
            out.push('[');
            for i in 0..items.len() {
                if i > 0 {
                    out.push(',');
                }
                write_value(items.as_ref(), i, out)?;
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut pairs = Vec::with_capacity(entries.len());
            for i in 0..entries.len() {
                // Keys as their text (`toString()`), sorted (a `TreeMap`).
                let mut key = String::new();
                write_value(keys.as_ref(), i, &mut key)?;
                let key = match keys.data_type() {
                    DataType::Utf8 => keys.as_string::<i32>().value(i).to_string(),
                    _ => key,
                };
                pairs.push((key, i));
            }
            pairs.sort_by(|a, b| java_compare(&a.0, &b.0));
            // A repeated key keeps its last value (`TreeMap.put`).
            pairs.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 = later.1;
                }
                same
            });
            out.push('{');
            for (n, (key, i)) in pairs.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                push_quoted(out, key);
                out.push(':');
                write_value(values.as_ref(), *i, out)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let structs = array.as_struct();
            let mut order: Vec<usize> = (0..fields.len()).collect();
            order.sort_by(|a, b| java_compare(fields[*a].name(), fields[*b].name()));
            out.push('{');
            for (n, i) in order.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                push_quoted(out, fields[i].name());
                out.push(':');
                write_value(structs.column(i).as_ref(), row, out)?;
            }
            out.push('}');
        }
        other => {
            return Err(format!(
                "JSON serialization error: unsupported type {other}"
            ))
        }
    }
    Ok(())
}

/// A double as Jackson writes one: `NaN` and the infinities quoted.
fn push_double(out: &mut String, v: f64) {
    let text = java_double(v);
    if v.is_finite() {
        out.push_str(&text);
    } else {
        push_quoted(out, &text);
    }
}

/// `LocalDate.toString()`: four-digit years, a sign past 9999 or before year 0.
fn java_local_date(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let year = date.year();
    let year_text = if year > 9999 {
        format!("+{year}")
    } else if year < 0 {
        format!("-{:04}", -year)
    } else {
        format!("{year:04}")
    };
    format!("{year_text}-{:02}-{:02}", date.month(), date.day())
}

fn to_json_string(call: &Call) -> DfResult<ArrayRef> {
    let values = &call.args[0];
    let mut out = StringBuilder::new();
    each_row(
        call,
        |row| {
            let mut text = String::new();
            write_value(values.as_ref(), row, &mut text)?;
            Ok(Some(text))
        },
        |v| out.append_option(v),
    );
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        parse(text).unwrap().unwrap().text()
    }

    #[test]
    fn reads_and_writes_as_jackson() {
        assert_eq!(
            json(r#" {"a": [1, 2.50, -0, 1e2, 0.0000001, "x\u001f\"y"]} trailing"#),
            r#"{"a":[1,2.50,0,1E+2,1E-7,"x\u001F\"y"]}"#
        );
        assert_eq!(json(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        assert_eq!(json("12345678901234567890123"), "12345678901234567890123");
        assert_eq!(json("-1.5E-3"), "-0.0015");
        assert_eq!(parse("   ").unwrap(), None);
        for bad in [
            "abc",
            "01",
            "1.",
            "1abc",
            "[1,]",
            "{'a':1}",
            "\"\u{1}\"",
            "truex",
            "-",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(2000);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn big_decimals_print_as_java() {
        assert_eq!(big_decimal("123", 5, false), "0.00123");
        assert_eq!(big_decimal("123", 10, false), "1.23E-8");
        assert_eq!(big_decimal("1", -2, false), "1E+2");
        assert_eq!(big_decimal("1", -2, true), "100");
        assert_eq!(big_decimal("-12345", 2, false), "-123.45");
        assert_eq!(big_decimal("0", 3, false), "0.000");
    }

    #[test]
    fn extracts_as_ksqldb() {
        let path = |p: &str| json_path(p).unwrap();
        let doc = r#"{"name": "cdc", "@type": "UDF", "array": [1.23450, {"x": null}]}"#;
        assert_eq!(
            extract(doc, &path("$.name")).unwrap().as_deref(),
            Some("cdc")
        );
        assert_eq!(
            extract(doc, &path("$.@type")).unwrap().as_deref(),
            Some("UDF")
        );
        assert_eq!(
            extract(doc, &path("$.array[0]")).unwrap().as_deref(),
            Some("1.23450")
        );
        assert_eq!(
            extract(doc, &path("$.array[1].x")).unwrap().as_deref(),
            Some("null")
        );
        assert_eq!(
            extract(doc, &path("$[\"array\"][1]")).unwrap().as_deref(),
            Some(r#"{"x":null}"#)
        );
        assert_eq!(extract(doc, &path("$.missing")).unwrap(), None);
        assert!(extract("not json", &path("$.a")).is_err());
        // `-1` is no subscript: the path is invalid (ksqlDB's null, with an error logged).
        assert!(json_path("$.array[-1]").is_err());
        assert!(json_path("name").is_err());
        assert!(json_path("$.").is_err());
        assert!(json_path("$[\"a").is_err());
    }

    #[test]
    fn array_contains_as_ksqldb() {
        let text = Wanted::Text("Pink".to_string());
        assert!(array_contains(r#"["Pink", "Yellow"]"#, &text));
        assert!(!array_contains(r#"["Red", "Green"]"#, &text));
        assert!(array_contains(r#"["Pink", broken"#, &text));
        assert!(!array_contains(r#"{"Pink": 1}"#, &text));
        assert!(array_contains("[1, null]", &Wanted::Null));
        assert!(array_contains("[1, 2]", &Wanted::Long(2)));
        assert!(!array_contains("[1]", &Wanted::Double(1.0)));
        assert!(array_contains("[1.0]", &Wanted::Double(1.0)));
        assert!(!array_contains("[3000000000]", &Wanted::Int(-1294967296)));
    }

    #[test]
    fn doubles_print_as_java() {
        assert_eq!(java_double(123.456), "123.456");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.5e-4), "1.5E-4");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(-2.5e10), "-2.5E10");
        assert_eq!(java_double(f64::NAN), "NaN");
    }
}
