//! ksqlDB's variables: `DEFINE name = 'value';` for the statements after it (and a request's
//! `sessionVariables`), `UNDEFINE name;`, and `${name}` in a statement replaced by its value
//! before the statement is parsed — inside a string literal with its quotes doubled, elsewhere
//! as it is (an identifier, a number). A `${name}` no variable has stays as it is, for the
//! parser to refuse. Names are matched in any case.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::parser::ast::{ParsedStatement, Statement};
use crate::parser::{parse, split_statements};

/// Variables by name (upper-cased).
pub type Variables = BTreeMap<String, String>;

/// Each statement of `sql` parsed after its `${...}` were replaced by the variables
/// `DEFINE` and `UNDEFINE` left before it (starting from `variables`), with the variables as
/// they stood before it. Errors keep their line and column in `sql`.
pub fn parse_with_variables(
    sql: &str,
    mut variables: Variables,
) -> Result<Vec<(ParsedStatement, Variables)>> {
    let mut out = Vec::new();
    for piece in split_statements(sql) {
        let (start, chunk) = (piece.start, piece.text);
        // The chunk where it was: blank lines and columns before it keep positions true.
        let before = &sql[..start];
        let lines = before.matches('\n').count();
        let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1);
        let text = format!(
            "{}{}{}",
            "\n".repeat(lines),
            " ".repeat(column),
            substitute(chunk, &variables)
        );
        for parsed in parse(&text)? {
            let snapshot = variables.clone();
            match &parsed.statement {
                Statement::Define { name, value } => {
                    variables.insert(name.to_ascii_uppercase(), value.clone());
                }
                Statement::Undefine(name) => {
                    variables.remove(&name.to_ascii_uppercase());
                }
                _ => {}
            }
            out.push((trimmed(parsed), snapshot));
        }
    }
    Ok(out)
}

/// A statement parsed from a padded chunk: its text without the padding.
fn trimmed(mut parsed: ParsedStatement) -> ParsedStatement {
    parsed.text = parsed.text.trim_start().to_string();
    parsed
}

/// Whether `sql` needs variables handled: it has a `${` or defines some.
pub fn uses_variables(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    sql.contains("${") || upper.contains("DEFINE")
}

/// `text` with each `${name}` of a defined variable replaced: in a string literal, its
/// value's quotes doubled.
fn substitute(text: &str, variables: &Variables) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            in_string = !in_string;
        }
        if c == '$' && rest[1..].starts_with('{') {
            if let Some(end) = rest.find('}') {
                let name = &rest[2..end];
                if let Some(value) = variables.get(&name.to_ascii_uppercase()) {
                    if in_string {
                        out.push_str(&value.replace('\'', "''"));
                    } else {
                        out.push_str(value);
                    }
                    rest = &rest[end + 1..];
                    continue;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_replace_identifiers_and_string_contents_in_the_statements_after_them() {
        let sql = "DEFINE topic = 'orders'; DEFINE name = 'it''s';\n\
                   CREATE STREAM ${topic} (v STRING) WITH (kafka_topic='${TOPIC}', value_format='json');\n\
                   INSERT INTO ${topic} (v) VALUES ('${name}'); UNDEFINE topic; SELECT * FROM ${topic};";
        let err = parse_with_variables(sql, Variables::new())
            .unwrap_err()
            .to_string();
        // The last statement's `${topic}` is undefined again: the parser's error, on line 3.
        assert!(err.starts_with("line 3:"), "{err}");
        let sql = &sql[..sql.rfind("SELECT").unwrap()];
        let parsed = parse_with_variables(sql, Variables::new()).unwrap();
        assert_eq!(parsed.len(), 5);
        assert_eq!(
            parsed[2].0.text,
            "CREATE STREAM orders (v STRING) WITH (kafka_topic='orders', value_format='json')"
        );
        assert_eq!(parsed[3].0.text, "INSERT INTO orders (v) VALUES ('it''s')");
        assert_eq!(parsed[2].0.line, 2, "lines are the request's");
        // The variables each statement saw.
        assert_eq!(parsed[0].1, Variables::new());
        assert_eq!(parsed[4].1.get("TOPIC").map(String::as_str), Some("orders"));
    }
}
