//! `JSON` read into column builders by a pull parser: one pass over the record, values
//! appended as they are met, with ksqlDB's coercions, field matching and error messages.

use std::fmt;

use super::builder::{Builder, Offsets};
use super::text::{append_text, parse_decimal, write_json_str, TextError};

/// Deeper nesting than this is refused (the parser recurses).
const MAX_DEPTH: u32 = 256;

/// A field name matched a column exactly.
const EXACT: u8 = 2;
/// A field name matched a column once upper-cased.
const UPPER: u8 = 1;

/// What the JSON decoder keeps between records.
pub(crate) struct JsonState {
    scratch: Vec<u8>,
    seen: Vec<u8>,
    clash: bool,
}

impl JsonState {
    pub(crate) fn new(names: &[String]) -> JsonState {
        JsonState {
            scratch: Vec::new(),
            seen: vec![0; names.len()],
            clash: names_clash(names),
        }
    }

    /// Appends the record `bytes` as row `row` of `columns`: exactly one value each.
    pub(crate) fn decode(
        &mut self,
        bytes: &[u8],
        names: &[String],
        columns: &mut [Builder],
        row: usize,
        unwrapped: bool,
    ) -> Result<(), String> {
        // A byte order mark is skipped, as Jackson skips it.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut p = Parser {
            s: bytes,
            i: 0,
            depth: 0,
            scratch: &mut self.scratch,
        };
        p.ws();
        if p.i == bytes.len() {
            // No JSON at all: as a null record.
            for column in columns.iter_mut() {
                column.append_null();
            }
            return Ok(());
        }
        if unwrapped && columns.len() == 1 {
            p.value(&mut columns[0], &Path::Root)?;
        } else {
            match p.peek() {
                Some(b'{') => {
                    p.fields(names, columns, self.clash, row, &Path::Root, &mut self.seen)?
                }
                Some(b'n') => {
                    p.literal(b"null")?;
                    for column in columns.iter_mut() {
                        column.append_null();
                    }
                }
                _ => {
                    let node = p.node()?;
                    return Err(convert_error(node, "STRUCT", &Path::Root));
                }
            }
        }
        p.ws();
        if p.i != bytes.len() {
            return Err(p.syntax("unexpected data after the end of the JSON value"));
        }
        Ok(())
    }
}

/// Whether two of `names` differ only in case, so that one JSON field can feed both.
pub(crate) fn names_clash(names: &[String]) -> bool {
    names
        .iter()
        .any(|a| names.iter().any(|b| a != b && upper_eq(a, b)))
}

/// Whether `key` upper-cased is `name` (how ksqlDB matches a JSON field to a column it did not
/// match exactly).
fn upper_eq(key: &str, name: &str) -> bool {
    if key.is_ascii() {
        key.len() == name.len()
            && key
                .bytes()
                .zip(name.bytes())
                .all(|(k, n)| k.to_ascii_uppercase() == n)
    } else {
        key.chars().flat_map(char::to_uppercase).eq(name.chars())
    }
}

/// Where a value is, as ksqlDB's errors write it: `$.COL.FIELD[2]`.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Field(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// The kind of a JSON value, by the name of Jackson's node class (ksqlDB's errors give it).
#[derive(Clone, Copy, Debug)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    BigInteger,
    Double,
    Text,
    Object,
    Array,
}

impl Node {
    fn name(self) -> &'static str {
        match self {
            Node::Null => "NullNode",
            Node::Boolean => "BooleanNode",
            Node::Int => "IntNode",
            Node::Long => "LongNode",
            Node::BigInteger => "BigIntegerNode",
            Node::Double => "DoubleNode",
            Node::Text => "TextNode",
            Node::Object => "ObjectNode",
            Node::Array => "ArrayNode",
        }
    }

    fn of_number(text: &str, integer: bool) -> Node {
        if !integer {
            Node::Double
        } else {
            match text.parse::<i64>() {
                Ok(v) if i32::try_from(v).is_ok() => Node::Int,
                Ok(_) => Node::Long,
                Err(_) => Node::BigInteger,
            }
        }
    }
}

fn convert_error(node: Node, required: &str, path: &Path) -> String {
    format!(
        "Can't convert type. sourceType: {}, requiredType: {required}, path: {path}",
        node.name()
    )
}

fn text_error(error: TextError, builder: &Builder, path: &Path) -> String {
    match error {
        TextError::Coerce | TextError::Base64 => format!(
            "Can't coerce string to type. targetType: {}, path: {path}",
            builder.base_name()
        ),
        TextError::Decimal(message) => format!("{message}, path: {path}"),
        TextError::NotScalar => convert_error(Node::Text, builder.base_name(), path),
        TextError::Full(message) => message,
    }
}

/// Where the text of skipped or copied values goes.
trait Sink {
    fn push(&mut self, byte: u8);
    fn extend(&mut self, bytes: &[u8]);
    fn string(&mut self, s: &str);
}

impl Sink for Vec<u8> {
    fn push(&mut self, byte: u8) {
        Vec::push(self, byte)
    }
    fn extend(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes)
    }
    fn string(&mut self, s: &str) {
        write_json_str(self, s)
    }
}

/// Values skipped: checked, not kept.
struct Discard;

impl Sink for Discard {
    fn push(&mut self, _: u8) {}
    fn extend(&mut self, _: &[u8]) {}
    fn string(&mut self, _: &str) {}
}

/// Columns a field name matched.
enum Targets {
    None,
    One(usize, u8),
    Many(Vec<(usize, u8)>),
}

fn find_field(key: &str, names: &[String], hint: usize, clash: bool) -> Targets {
    if clash {
        let list: Vec<(usize, u8)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                if name == key {
                    Some((i, EXACT))
                } else if upper_eq(key, name) {
                    Some((i, UPPER))
                } else {
                    None
                }
            })
            .collect();
        return match list.as_slice() {
            [] => Targets::None,
            [(i, how)] => Targets::One(*i, *how),
            _ => Targets::Many(list),
        };
    }
    // Without names differing only in case, a field matches one column at most.
    if let Some(name) = names.get(hint) {
        if name == key {
            return Targets::One(hint, EXACT);
        }
        if upper_eq(key, name) {
            return Targets::One(hint, UPPER);
        }
    }
    if let Some(i) = names.iter().position(|name| name == key) {
        return Targets::One(i, EXACT);
    }
    match names.iter().position(|name| upper_eq(key, name)) {
        Some(i) => Targets::One(i, UPPER),
        None => Targets::None,
    }
}

struct Parser<'a, 's> {
    s: &'a [u8],
    i: usize,
    depth: u32,
    scratch: &'s mut Vec<u8>,
}

impl<'a> Parser<'a, '_> {
    fn syntax(&self, what: &str) -> String {
        match self.s.get(self.i) {
            Some(&c) if c.is_ascii_graphic() || c == b' ' => format!(
                "Invalid JSON at offset {}: {what} (found '{}')",
                self.i, c as char
            ),
            Some(&c) => format!(
                "Invalid JSON at offset {}: {what} (found byte 0x{c:02x})",
                self.i
            ),
            None => format!("Invalid JSON: {what} (found the end of the input)"),
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "Invalid JSON at offset {}: nested deeper than {MAX_DEPTH} levels",
                self.i
            ));
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.syntax("unrecognized token"))
        }
    }

    fn boolean(&mut self) -> Result<bool, String> {
        if self.peek() == Some(b't') {
            self.literal(b"true").map(|()| true)
        } else {
            self.literal(b"false").map(|()| false)
        }
    }

    /// After a value inside `[...]` or `{...}`: `true` if another follows, `false` at the
    /// closing `close`.
    fn next_or_close(&mut self, close: u8) -> Result<bool, String> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.syntax(if close == b'}' {
                "expected ',' or '}'"
            } else {
                "expected ',' or ']'"
            })),
        }
    }

    fn colon(&mut self) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(b':') {
            self.i += 1;
            Ok(())
        } else {
            Err(self.syntax("expected ':'"))
        }
    }

    /// At `{` or `[`: enters it; `true` if it is empty (and then already left).
    fn open(&mut self, close: u8) -> Result<bool, String> {
        self.enter()?;
        self.i += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            self.depth -= 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn field_name(&mut self) -> Result<&str, String> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(self.syntax("expected a field name (a double-quoted string)"));
        }
        self.string()
    }

    /// A JSON number's text, and whether it is an integer (no fraction, no exponent).
    fn number(&mut self) -> Result<(&'a str, bool), String> {
        let s = self.s;
        let start = self.i;
        let mut i = self.i;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        match s.get(i) {
            Some(b'0') => {
                i += 1;
                if matches!(s.get(i), Some(b'0'..=b'9')) {
                    self.i = i;
                    return Err(self.syntax("leading zeroes are not allowed in numbers"));
                }
            }
            Some(b'1'..=b'9') => {
                while matches!(s.get(i), Some(b'0'..=b'9')) {
                    i += 1;
                }
            }
            _ => {
                self.i = i;
                return Err(self.syntax("expected a digit"));
            }
        }
        let mut integer = true;
        if s.get(i) == Some(&b'.') {
            integer = false;
            i += 1;
            if !matches!(s.get(i), Some(b'0'..=b'9')) {
                self.i = i;
                return Err(self.syntax("expected a digit after the decimal point"));
            }
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !matches!(s.get(i), Some(b'0'..=b'9')) {
                self.i = i;
                return Err(self.syntax("expected a digit in the exponent"));
            }
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        self.i = i;
        // Only ASCII digits, signs, '.' and 'e' were accepted.
        let text = std::str::from_utf8(&s[start..i]).map_err(|_| self.syntax("bad number"))?;
        Ok((text, integer))
    }

    /// At `"`: the string, unescaped.
    fn string(&mut self) -> Result<&str, String> {
        let s = self.s;
        let start = self.i + 1;
        let mut j = start;
        // The plain run of the string, up to its end, an escape or a control character
        // (one table look-up a byte).
        while let Some(&c) = s.get(j) {
            if crate::format::text::NEEDS_ESCAPE[c as usize] {
                break;
            }
            j += 1;
        }
        match s.get(j) {
            Some(b'"') => {
                self.i = j + 1;
                return std::str::from_utf8(&s[start..j]).map_err(|e| {
                    format!(
                        "Invalid JSON at offset {}: invalid UTF-8 in a string",
                        start + e.valid_up_to()
                    )
                });
            }
            None => {
                self.i = j;
                return Err(self.syntax("unterminated string"));
            }
            _ => {}
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&s[start..j]);
        loop {
            match s.get(j) {
                None => {
                    self.i = j;
                    return Err(self.syntax("unterminated string"));
                }
                Some(b'"') => {
                    self.i = j + 1;
                    break;
                }
                Some(b'\\') => {
                    j += 1;
                    let unescaped = match s.get(j) {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'b') => 0x08,
                        Some(b'f') => 0x0c,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'u') => {
                            j += 1;
                            let c = self.unicode_escape(&mut j)?;
                            let mut buf = [0u8; 4];
                            self.scratch
                                .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => {
                            self.i = j;
                            return Err(self.syntax("unrecognized character escape"));
                        }
                    };
                    self.scratch.push(unescaped);
                    j += 1;
                }
                Some(&c) if c < 0x20 => {
                    self.i = j;
                    return Err(self.syntax(
                        "illegal unquoted control character: it has to be escaped to be included in a string",
                    ));
                }
                Some(_) => {
                    let run = j;
                    while let Some(&c) = s.get(j) {
                        if c == b'"' || c == b'\\' || c < 0x20 {
                            break;
                        }
                        j += 1;
                    }
                    self.scratch.extend_from_slice(&s[run..j]);
                }
            }
        }
        std::str::from_utf8(self.scratch).map_err(|_| {
            format!(
                "Invalid JSON before offset {}: invalid UTF-8 in a string",
                self.i
            )
        })
    }

    /// After `\u` (at `*j`): the character of the escape, a surrogate pair read whole.
    fn unicode_escape(&mut self, j: &mut usize) -> Result<char, String> {
        let first = self.hex4(j)?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if self.s.get(*j) == Some(&b'\\') && self.s.get(*j + 1) == Some(&b'u') {
                *j += 2;
                let second = self.hex4(j)?;
                if !(0xDC00..0xE000).contains(&second) {
                    self.i = *j;
                    return Err(self.syntax("invalid low surrogate in a \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            } else {
                self.i = *j;
                return Err(self.syntax("unpaired surrogate in a \\u escape"));
            }
        } else if (0xDC00..0xE000).contains(&first) {
            self.i = *j;
            return Err(self.syntax("unpaired surrogate in a \\u escape"));
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.syntax("invalid \\u escape"))
    }

    fn hex4(&mut self, j: &mut usize) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..4 {
            let digit = self.s.get(*j).and_then(|&c| (c as char).to_digit(16));
            match digit {
                Some(d) => v = v * 16 + d,
                None => {
                    self.i = *j;
                    return Err(self.syntax("expected 4 hex digits in a \\u escape"));
                }
            }
            *j += 1;
        }
        Ok(v)
    }

    /// Reads one value, checking it, writing its compact text to `out`.
    fn copy<S: Sink>(&mut self, out: &mut S) -> Result<(), String> {
        self.ws();
        match self.peek() {
            Some(b'{') => {
                out.push(b'{');
                if !self.open(b'}')? {
                    loop {
                        let key = self.field_name()?;
                        out.string(key);
                        self.colon()?;
                        out.push(b':');
                        self.copy(out)?;
                        if !self.next_or_close(b'}')? {
                            break;
                        }
                        out.push(b',');
                    }
                    self.depth -= 1;
                }
                out.push(b'}');
            }
            Some(b'[') => {
                out.push(b'[');
                if !self.open(b']')? {
                    loop {
                        self.copy(out)?;
                        if !self.next_or_close(b']')? {
                            break;
                        }
                        out.push(b',');
                    }
                    self.depth -= 1;
                }
                out.push(b']');
            }
            Some(b'"') => {
                let s = self.string()?;
                out.string(s);
            }
            Some(b't') => {
                self.literal(b"true")?;
                out.extend(b"true");
            }
            Some(b'f') => {
                self.literal(b"false")?;
                out.extend(b"false");
            }
            Some(b'n') => {
                self.literal(b"null")?;
                out.extend(b"null");
            }
            Some(b'-' | b'0'..=b'9') => {
                let (text, _) = self.number()?;
                out.extend(text.as_bytes());
            }
            _ => return Err(self.syntax("expected a JSON value")),
        }
        Ok(())
    }

    fn skip(&mut self) -> Result<(), String> {
        self.copy(&mut Discard)
    }

    /// Reads one value, checking it; what kind it was.
    fn node(&mut self) -> Result<Node, String> {
        self.ws();
        let node = match self.peek() {
            Some(b'{') => Node::Object,
            Some(b'[') => Node::Array,
            Some(b'"') => Node::Text,
            Some(b't' | b'f') => Node::Boolean,
            Some(b'n') => Node::Null,
            Some(b'-' | b'0'..=b'9') => {
                let (text, integer) = self.number()?;
                return Ok(Node::of_number(text, integer));
            }
            _ => return Err(self.syntax("expected a JSON value")),
        };
        self.skip()?;
        Ok(node)
    }

    /// Reads one value into `b` (appending exactly one row to it).
    fn value(&mut self, b: &mut Builder, path: &Path) -> Result<(), String> {
        self.ws();
        match self.peek() {
            Some(b'"') => match b {
                Builder::String(v) => {
                    let s = self.string()?;
                    v.push(s.as_bytes())
                }
                Builder::Array { .. } | Builder::Map { .. } | Builder::Struct { .. } => {
                    Err(convert_error(Node::Text, b.base_name(), path))
                }
                _ => {
                    let s = self.string()?;
                    match append_text(b, s) {
                        Ok(()) => Ok(()),
                        Err(e) => Err(text_error(e, b, path)),
                    }
                }
            },
            Some(b'-' | b'0'..=b'9') => {
                let (text, integer) = self.number()?;
                number_into(b, text, integer, path)
            }
            Some(b'{') => match b {
                Builder::Struct {
                    names,
                    children,
                    nulls,
                    clash,
                    ..
                } => {
                    let row = nulls.len();
                    let mut small = [0u8; 16];
                    let mut large = Vec::new();
                    let seen: &mut [u8] = if names.len() <= small.len() {
                        &mut small[..names.len()]
                    } else {
                        large.resize(names.len(), 0);
                        &mut large
                    };
                    self.fields(names, children, *clash, row, path, seen)?;
                    nulls.append_non_null();
                    Ok(())
                }
                Builder::Map {
                    offsets,
                    keys,
                    values,
                    ..
                } => self.map(offsets, keys, values, path),
                Builder::String(v) => {
                    self.copy(&mut v.data)?;
                    v.close()
                }
                _ => Err(convert_error(Node::Object, b.base_name(), path)),
            },
            Some(b'[') => match b {
                Builder::Array { offsets, item, .. } => {
                    if !self.open(b']')? {
                        let mut index = 0;
                        loop {
                            self.value(item, &Path::Index(path, index))?;
                            index += 1;
                            if !self.next_or_close(b']')? {
                                break;
                            }
                        }
                        self.depth -= 1;
                    }
                    offsets.close(item.len())
                }
                Builder::String(v) => {
                    self.copy(&mut v.data)?;
                    v.close()
                }
                _ => Err(convert_error(Node::Array, b.base_name(), path)),
            },
            Some(b't' | b'f') => {
                let v = self.boolean()?;
                match b {
                    Builder::Boolean { values, nulls } => {
                        Builder::append_bool(values, nulls, v);
                        Ok(())
                    }
                    Builder::String(s) => s.push(if v { b"true" } else { b"false" }),
                    _ => Err(convert_error(Node::Boolean, b.base_name(), path)),
                }
            }
            Some(b'n') => {
                self.literal(b"null")?;
                b.append_null();
                Ok(())
            }
            _ => Err(self.syntax("expected a JSON value")),
        }
    }

    /// At `{`: the fields of an object into `children` (row `row` of each): fields matched
    /// to names as ksqlDB matches them — exactly, else upper-cased; an exact match wins, the
    /// last of equals wins; fields not matched are skipped, children not matched get null.
    fn fields(
        &mut self,
        names: &[String],
        children: &mut [Builder],
        clash: bool,
        row: usize,
        path: &Path,
        seen: &mut [u8],
    ) -> Result<(), String> {
        seen.fill(0);
        if !self.open(b'}')? {
            let mut hint = 0;
            loop {
                let targets = {
                    let key = self.field_name()?;
                    find_field(key, names, hint, clash)
                };
                self.colon()?;
                match targets {
                    Targets::None => self.skip()?,
                    Targets::One(i, how) => {
                        if how == UPPER && seen[i] == EXACT {
                            self.skip()?;
                        } else {
                            self.assign(&names[i], &mut children[i], &mut seen[i], how, row, path)?;
                        }
                        hint = i + 1;
                    }
                    Targets::Many(list) => {
                        let start = self.i;
                        let mut read = false;
                        for (i, how) in list {
                            if how == UPPER && seen[i] == EXACT {
                                continue;
                            }
                            self.i = start;
                            self.assign(&names[i], &mut children[i], &mut seen[i], how, row, path)?;
                            read = true;
                        }
                        if !read {
                            self.skip()?;
                        }
                    }
                }
                if !self.next_or_close(b'}')? {
                    break;
                }
            }
            self.depth -= 1;
        }
        for (child, seen) in children.iter_mut().zip(seen.iter()) {
            if *seen == 0 {
                child.append_null();
            }
        }
        Ok(())
    }

    fn assign(
        &mut self,
        name: &str,
        child: &mut Builder,
        seen: &mut u8,
        how: u8,
        row: usize,
        path: &Path,
    ) -> Result<(), String> {
        if *seen != 0 {
            // A later field for the same column replaces the earlier one.
            child.truncate(row);
        }
        self.value(child, &Path::Field(path, name))?;
        *seen = how;
        Ok(())
    }

    /// At `{`: a map's entries, keys parsed from their text.
    fn map(
        &mut self,
        offsets: &mut Offsets,
        keys: &mut Builder,
        values: &mut Builder,
        path: &Path,
    ) -> Result<(), String> {
        if !self.open(b'}')? {
            let mut key_text = String::new();
            loop {
                {
                    let key = self.field_name()?;
                    let added = match keys {
                        Builder::String(v) => v.push(key.as_bytes()),
                        _ => append_text(keys, key).map_err(|e| text_error(e, keys, path)),
                    };
                    key_text.clear();
                    key_text.push_str(key);
                    added?;
                }
                self.colon()?;
                self.value(values, &Path::Field(path, &key_text))?;
                if !self.next_or_close(b'}')? {
                    break;
                }
            }
            self.depth -= 1;
        }
        offsets.close(keys.len())
    }
}

/// A JSON number into `b`, by ksqlDB's coercions.
fn number_into(b: &mut Builder, text: &str, integer: bool, path: &Path) -> Result<(), String> {
    let required = b.base_name();
    let wrong = || convert_error(Node::of_number(text, integer), required, path);
    match b {
        Builder::Int(p) => p.push(int32(text, integer).ok_or_else(wrong)?),
        Builder::Date(p) => p.push(int32(text, integer).ok_or_else(wrong)?),
        Builder::Time(p) => p.push(int32(text, integer).ok_or_else(wrong)?),
        Builder::Bigint(p) => p.push(int64(text, integer).ok_or_else(wrong)?),
        Builder::Timestamp(p) => p.push(int64(text, integer).ok_or_else(wrong)?),
        Builder::Double(p) => p.push(text.parse::<f64>().map_err(|_| wrong())?),
        Builder::Decimal {
            prim,
            precision,
            scale,
        } => match parse_decimal(text, *precision, *scale) {
            Ok(v) => prim.push(v),
            Err(TextError::Decimal(message)) => return Err(format!("{message}, path: {path}")),
            Err(_) => return Err(wrong()),
        },
        Builder::String(v) => v.push(text.as_bytes())?,
        _ => return Err(wrong()),
    }
    Ok(())
}

#[inline]
fn int64(text: &str, integer: bool) -> Option<i64> {
    if integer {
        text.parse().ok()
    } else {
        None
    }
}

#[inline]
fn int32(text: &str, integer: bool) -> Option<i32> {
    if integer {
        text.parse().ok()
    } else {
        None
    }
}
