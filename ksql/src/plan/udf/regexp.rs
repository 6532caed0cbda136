//! ksqlDB's regular-expression functions (`REGULAR EXPRESSION`), taking Java's
//! `java.util.regex` patterns. They run on the `regex` crate after a translation to its
//! dialect where Java's meaning differs: `\d \w \s` (and their negations) are ASCII, `.` stops
//! at every line terminator Java knows, `\Q...\E` quotes, `\e` is escape, `\p{Alpha}` and the
//! other POSIX classes are ASCII. Matching repeats as Java's `Matcher.find` does (after an
//! empty match the search moves on by a character), and replacements are Java's (`$1`,
//! `${name}`, `\$`).
//!
//! What the `regex` crate cannot run — look-around, back-references, possessive and atomic
//! groups — fails to compile: the row's result is null and the error logged. So do Java's
//! `$` before a final line terminator and ASCII-only case folding of `(?i)`, which are not
//! translated.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, ListBuilder, StringArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion_common::Result as DfResult;
use regex::{Captures, Regex};

use super::{arg, each_row, list_of, opt_arg, overloads, returns, sig, Call, KsqlUdf, Memo, Param};

const CATEGORY: &str = "REGULAR EXPRESSION";

pub(super) fn functions() -> Vec<KsqlUdf> {
    use Param::{Int, String as Str};
    vec![
        KsqlUdf::new(
            "REGEXP_EXTRACT",
            "regexp_extract",
            CATEGORY,
            "extract the first subtring matched by a regex pattern",
            overloads![sig(&[Str, Str]), sig(&[Str, Str, Int])],
            returns!(DataType::Utf8),
            regexp_extract,
        ),
        KsqlUdf::new(
            "REGEXP_EXTRACT_ALL",
            "regexp_extract_all",
            CATEGORY,
            "Extracts the all subtrings matched by a regex pattern",
            overloads![sig(&[Str, Str]), sig(&[Str, Str, Int])],
            returns!(list_of(DataType::Utf8)),
            regexp_extract_all,
        ),
        KsqlUdf::new(
            "REGEXP_REPLACE",
            "regexp_replace",
            CATEGORY,
            "Replaces all matches of a regexp in a string with a new substring.",
            overloads![sig(&[Str, Str, Str])],
            returns!(DataType::Utf8),
            regexp_replace,
        ),
        KsqlUdf::new(
            "REGEXP_SPLIT_TO_ARRAY",
            "regexp_split_to_array",
            CATEGORY,
            "Splits a string into an array of substrings based on a regexp.",
            overloads![sig(&[Str, Str])],
            returns!(list_of(DataType::Utf8)),
            regexp_split_to_array,
        ),
    ]
}

/// A Java pattern compiled (`Pattern.compile`), or why not.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern)?;
    Regex::new(&translated).map_err(|e| {
        format!("Invalid regular expression pattern (or one Sluice cannot run): {pattern}: {e}")
    })
}

/// Java's pattern in the `regex` crate's dialect (see the module's documentation).
fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    // `.` matches line terminators too under DOTALL: then it stays as it is.
    let dot_all = pattern.contains("(?s") || has_flag_group(pattern, 's');
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut class_depth = 0usize;
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        match c {
            '\\' => {
                let Some(&next) = chars.get(at + 1) else {
                    return Err(format!(
                        "Unexpected internal error near index {at}: {pattern}"
                    ));
                };
                at += 2;
                match next {
                    'Q' => {
                        // Quoted up to \E (or the end).
                        let rest: String = chars[at..].iter().collect();
                        let (quoted, skip) = match rest.find("\\E") {
                            Some(end) => (&rest[..end], end + 2),
                            None => (rest.as_str(), rest.len()),
                        };
                        out.push_str(&regex::escape(quoted));
                        at += quoted.chars().count() + (skip - quoted.len());
                    }
                    'd' | 'w' | 's' if class_depth > 0 => out.push_str(match next {
                        'd' => "0-9",
                        'w' => "0-9A-Za-z_",
                        _ => "\\t\\n\\x0B\\x0C\\r ",
                    }),
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                        out.push_str("(?-u:\\");
                        out.push(next);
                        out.push(')');
                    }
                    'e' => out.push_str("\\x1B"),
                    'p' | 'P' if chars.get(at) == Some(&'{') => {
                        let end = chars[at..]
                            .iter()
                            .position(|c| *c == '}')
                            .ok_or_else(|| format!("Unclosed character family: {pattern}"))?;
                        let name: String = chars[at + 1..at + end].iter().collect();
                        at += end + 1;
                        match posix_class(&name) {
                            Some(class) if class_depth > 0 && next == 'p' => out.push_str(class),
                            Some(class) => {
                                out.push_str(if next == 'P' { "[^" } else { "[" });
                                out.push_str(class);
                                out.push(']');
                            }
                            None => {
                                out.push('\\');
                                out.push(next);
                                out.push('{');
                                out.push_str(&name);
                                out.push('}');
                            }
                        }
                    }
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
                continue;
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                // A `^` or `]` right after the opening bracket belongs to the class.
                if chars.get(at + 1) == Some(&'^') {
                    out.push('^');
                    at += 1;
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            '.' if class_depth == 0 && !dot_all => {
                out.push_str("[^\\n\\r\\x{85}\\x{2028}\\x{2029}]");
            }
            _ => out.push(c),
        }
        at += 1;
    }
    Ok(out)
}

/// Whether an inline flag group (`(?is)`, `(?i-s:...)`) turns `flag` on.
fn has_flag_group(pattern: &str, flag: char) -> bool {
    pattern.match_indices("(?").any(|(at, _)| {
        pattern[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .any(|c| c == flag)
    })
}

/// Java's POSIX character classes (ASCII), as the inside of a bracketed class.
fn posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "Lower" => "a-z",
        "Upper" => "A-Z",
        "ASCII" => "\\x00-\\x7F",
        "Alpha" => "a-zA-Z",
        "Digit" => "0-9",
        "Alnum" => "a-zA-Z0-9",
        "Punct" => "!-/:-@\\[-`{-~",
        "Graph" => "!-~",
        "Print" => " -~",
        "Blank" => " \\t",
        "Cntrl" => "\\x00-\\x1F\\x7F",
        "XDigit" => "0-9a-fA-F",
        "Space" => " \\t\\n\\x0B\\x0C\\r",
        _ => return None,
    })
}

/// The matches of `regex` in `text` as `Matcher.find` finds them: after an empty match the
/// next search starts a character later, and an empty match may follow a non-empty one.
pub(super) fn java_matches<'t>(regex: &Regex, text: &'t str) -> Vec<Captures<'t>> {
    let mut found = Vec::new();
    let mut from = 0;
    while from <= text.len() {
        let Some(captures) = regex.captures_at(text, from) else {
            break;
        };
        let Some(whole) = captures.get(0) else {
            break;
        };
        from = if whole.start() == whole.end() {
            whole.end() + text[whole.end()..].chars().next().map_or(1, char::len_utf8)
        } else {
            whole.end()
        };
        found.push(captures);
    }
    found
}

/// A group of a match as Java's `Matcher.group(n)`: none if it did not take part, an error
/// past the group count or below 0.
fn group<'t>(captures: &Captures<'t>, n: i32) -> Result<Option<&'t str>, String> {
    let index = usize::try_from(n).map_err(|_| format!("No group {n}"))?;
    if index >= captures.len() {
        return Err(format!("No group {n}"));
    }
    Ok(captures.get(index).map(|m| m.as_str()))
}

/// `REGEXP_EXTRACT(pattern, input [, group])`.
fn regexp_extract(call: &Call) -> DfResult<ArrayRef> {
    let patterns = arg::<StringArray>(call, 0)?;
    let inputs = arg::<StringArray>(call, 1)?;
    let groups = opt_arg::<Int32Array>(call, 2)?;
    let mut memo: Memo<Result<Regex, String>> = Memo::default();
    let mut out = StringBuilder::new();
    each_row(
        call,
        |row| {
            let group_number = match groups {
                Some(g) if g.is_null(row) => return Ok(None),
                Some(g) => g.value(row),
                None => 0,
            };
            if patterns.is_null(row) || inputs.is_null(row) {
                return Ok(None);
            }
            let regex = memo
                .get(patterns.value(row), compile)
                .as_ref()
                .map_err(Clone::clone)?;
            // A group past the pattern's count is null, whether it matches or not.
            if usize::try_from(group_number).is_ok_and(|g| g >= regex.captures_len()) {
                return Ok(None);
            }
            match java_matches(regex, inputs.value(row)).first() {
                Some(captures) => Ok(group(captures, group_number)?.map(str::to_string)),
                None => Ok(None),
            }
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// `REGEXP_EXTRACT_ALL(pattern, input [, group])`.
fn regexp_extract_all(call: &Call) -> DfResult<ArrayRef> {
    let patterns = arg::<StringArray>(call, 0)?;
    let inputs = arg::<StringArray>(call, 1)?;
    let groups = opt_arg::<Int32Array>(call, 2)?;
    let mut memo: Memo<Result<Regex, String>> = Memo::default();
    let mut out = ListBuilder::new(StringBuilder::new());
    each_row(
        call,
        |row| {
            let group_number = match groups {
                Some(g) if g.is_null(row) => return Ok(None),
                Some(g) => g.value(row),
                None => 0,
            };
            if patterns.is_null(row) || inputs.is_null(row) {
                return Ok(None);
            }
            let regex = memo
                .get(patterns.value(row), compile)
                .as_ref()
                .map_err(Clone::clone)?;
            if usize::try_from(group_number).is_ok_and(|g| g >= regex.captures_len()) {
                return Ok(None);
            }
            java_matches(regex, inputs.value(row))
                .iter()
                .map(|captures| group(captures, group_number).map(|g| g.map(str::to_string)))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        },
        |value: Option<Vec<Option<String>>>| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// Java's `Matcher.appendReplacement` of `replacement` for one match (`names`: the
/// pattern's named groups).
fn expand(
    replacement: &str,
    captures: &Captures,
    names: &[&str],
    out: &mut String,
) -> Result<(), String> {
    let chars: Vec<char> = replacement.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '\\' => {
                let escaped = chars
                    .get(at + 1)
                    .ok_or("character to be escaped is missing")?;
                out.push(*escaped);
                at += 2;
            }
            '$' => {
                at += 1;
                let Some(&next) = chars.get(at) else {
                    return Err("Illegal group reference: group index is missing".to_string());
                };
                let text = if next == '{' {
                    let end = chars[at..]
                        .iter()
                        .position(|c| *c == '}')
                        .ok_or("named capturing group is missing trailing '}'")?;
                    let name: String = chars[at + 1..at + end].iter().collect();
                    at += end + 1;
                    if name.is_empty() {
                        return Err("named capturing group has 0 length name".to_string());
                    }
                    if !names.contains(&name.as_str()) {
                        return Err(format!("No group with name {{{name}}}"));
                    }
                    captures.name(&name).map(|m| m.as_str())
                } else {
                    let first = next.to_digit(10).ok_or("Illegal group reference")? as usize;
                    at += 1;
                    // More digits while they make a group that exists.
                    let mut number = first;
                    while let Some(d) = chars.get(at).and_then(|c| c.to_digit(10)) {
                        let longer = number * 10 + d as usize;
                        if longer >= captures.len() {
                            break;
                        }
                        number = longer;
                        at += 1;
                    }
                    if number >= captures.len() {
                        return Err(format!("No group {number}"));
                    }
                    captures.get(number).map(|m| m.as_str())
                };
                out.push_str(text.unwrap_or(""));
            }
            c => {
                out.push(c);
                at += 1;
            }
        }
    }
    Ok(())
}

/// `str.replaceAll(regexp, replacement)`.
pub(super) fn replace_all(regex: &Regex, text: &str, replacement: &str) -> Result<String, String> {
    let names: Vec<&str> = regex.capture_names().flatten().collect();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for captures in java_matches(regex, text) {
        let Some(whole) = captures.get(0) else {
            continue;
        };
        out.push_str(&text[last..whole.start()]);
        expand(replacement, &captures, &names, &mut out)?;
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// `REGEXP_REPLACE(str, regexp, replacement)`.
fn regexp_replace(call: &Call) -> DfResult<ArrayRef> {
    let texts = arg::<StringArray>(call, 0)?;
    let patterns = arg::<StringArray>(call, 1)?;
    let replacements = arg::<StringArray>(call, 2)?;
    let mut memo: Memo<Result<Regex, String>> = Memo::default();
    let mut out = StringBuilder::new();
    each_row(
        call,
        |row| {
            if texts.is_null(row) || patterns.is_null(row) || replacements.is_null(row) {
                return Ok(None);
            }
            let regex = memo
                .get(patterns.value(row), compile)
                .as_ref()
                .map_err(Clone::clone)?;
            replace_all(regex, texts.value(row), replacements.value(row)).map(Some)
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

/// Splits as ksqlDB's `RegexpSplitToArray`: Java's `Pattern.split` (no trailing empty
/// strings) for a pattern that matches the empty string, else Guava's splitter (every
/// piece).
fn split(regex: &Regex, pattern: &str, text: &str) -> Vec<String> {
    // `p.matcher("").matches()`: the only match of "" is all of it.
    let matches_empty = pattern.is_empty() || regex.is_match("");
    let mut pieces = Vec::new();
    if matches_empty {
        let mut index = 0;
        for captures in java_matches(regex, text) {
            let Some(m) = captures.get(0) else { continue };
            if index == 0 && m.start() == 0 && m.end() == 0 {
                continue;
            }
            pieces.push(text[index..m.start()].to_string());
            index = m.end();
        }
        if index == 0 {
            return vec![text.to_string()];
        }
        pieces.push(text[index..].to_string());
        while pieces.last().is_some_and(String::is_empty) {
            pieces.pop();
        }
    } else {
        let mut start = 0;
        while let Some(m) = regex.find_at(text, start) {
            pieces.push(text[start..m.start()].to_string());
            start = m.end();
        }
        pieces.push(text[start..].to_string());
    }
    pieces
}

/// `REGEXP_SPLIT_TO_ARRAY(string, regexp)`.
fn regexp_split_to_array(call: &Call) -> DfResult<ArrayRef> {
    let texts = arg::<StringArray>(call, 0)?;
    let patterns = arg::<StringArray>(call, 1)?;
    let mut memo: Memo<Result<Regex, String>> = Memo::default();
    let mut out = ListBuilder::new(StringBuilder::new());
    each_row(
        call,
        |row| {
            if texts.is_null(row) || patterns.is_null(row) {
                return Ok(None);
            }
            let pattern = patterns.value(row);
            let regex = memo.get(pattern, compile).as_ref().map_err(Clone::clone)?;
            Ok(Some(
                split(regex, pattern, texts.value(row))
                    .into_iter()
                    .map(Some)
                    .collect::<Vec<_>>(),
            ))
        },
        |value| out.append_option(value),
    );
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(pattern: &str, input: &str, group_number: i32) -> Option<String> {
        let regex = compile(pattern).unwrap();
        let matches = java_matches(&regex, input);
        matches
            .first()
            .and_then(|c| group(c, group_number).unwrap().map(str::to_string))
    }

    #[test]
    fn extracts_as_ksqldb() {
        // ksqlDB's own cases (regex.json).
        assert_eq!(
            extract("test.", "some_test_string", 0).as_deref(),
            Some("test_")
        );
        assert_eq!(extract("test.", "anothertest", 0), None);
        assert_eq!(
            extract("(.*) (.*)", "steven zhang", 2).as_deref(),
            Some("zhang")
        );
        let regex = compile("(\\w+) (\\w*)").unwrap();
        let all: Vec<Option<&str>> = java_matches(&regex, "apurva mehta agavra ")
            .iter()
            .map(|c| group(c, 2).unwrap())
            .collect();
        assert_eq!(all, [Some("mehta"), Some("")]);
    }

    #[test]
    fn translates_java_dialect() {
        // \d is ASCII in Java.
        assert!(!compile("^\\d$").unwrap().is_match("٣"));
        assert!(compile("^[\\d]$").unwrap().is_match("3"));
        // . stops at \r too.
        assert!(!compile("a.b").unwrap().is_match("a\rb"));
        assert!(compile("(?s)a.b").unwrap().is_match("a\rb"));
        // \Q...\E quotes.
        assert!(compile("\\Q.*\\E").unwrap().is_match("x.*y"));
        assert!(!compile("\\Q.*\\E").unwrap().is_match("xy"));
        // POSIX classes are ASCII.
        assert!(!compile("^\\p{Alpha}$").unwrap().is_match("é"));
        assert!(compile("^\\p{L}$").unwrap().is_match("é"));
        // What the regex crate cannot run is an error.
        assert!(compile("(a)\\1").is_err());
        assert!(compile("a(?=b)").is_err());
    }

    #[test]
    fn replaces_as_java() {
        let r = |p: &str, t: &str, rep: &str| replace_all(&compile(p).unwrap(), t, rep);
        assert_eq!(r("a*", "baaac", "X").unwrap(), "XbXXcX");
        assert_eq!(
            r("(\\w+)@(\\w+)", "me@host", "$2 at $1").unwrap(),
            "host at me"
        );
        assert_eq!(
            r("(?<user>\\w+)@", "me@host", "${user}!").unwrap(),
            "me!host"
        );
        assert_eq!(r("o", "foo", "\\$").unwrap(), "f$$");
        // $12 is group 1 then '2' when there is no group 12.
        assert_eq!(r("(a)", "a", "$12").unwrap(), "a2");
        assert!(r("(a)", "a", "$2").is_err());
        assert!(r("a", "a", "$x").is_err());
        assert!(r("a", "a", "\\").is_err());
        assert_eq!(r("x", "abc", "y").unwrap(), "abc");
    }

    #[test]
    fn splits_as_ksqldb() {
        let s = |p: &str, t: &str| split(&compile(p).unwrap(), p, t);
        // ksqlDB's own cases (split.json).
        assert_eq!(s("(ab|cd)", "aabcda"), ["a", "", "a"]);
        assert_eq!(s("(ab|cd)", "aabdcda"), ["a", "d", "a"]);
        assert_eq!(s("(ab|cd)", "zxy"), ["zxy"]);
        // Patterns matching the empty string split as Pattern.split.
        assert_eq!(s("", "abc"), ["a", "b", "c"]);
        // Java finds the empty match right after "xx" too.
        assert_eq!(s("x*", "axxb"), ["a", "", "b"]);
        assert_eq!(s("", ""), [""]);
        assert_eq!(s(",", ",a,,"), ["", "a", "", ""]);
    }
}
