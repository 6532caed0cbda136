//! Config files as Kafka Connect users write them: Java `.properties` (worker configs and
//! standalone connector configs) and the JSON bodies the REST API takes.

use std::path::Path;

use crate::connector::Props;
use crate::error::{ConnectError, Result};

/// Parses Java properties text: `key=value`, `key: value` or `key value`; `#` and `!` start
/// comments; a line ending in an odd number of backslashes continues on the next; `\t`,
/// `\n`, `\r`, `\\`, `\=`, `\:` and `\uXXXX` escapes.
pub fn parse_properties(text: &str) -> Result<Props> {
    let mut props = Props::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let mut logical = line.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while continues(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_entry(&logical);
        let key = unescape(key).map_err(|e| line_error(number, &e))?;
        let value = unescape(value).map_err(|e| line_error(number, &e))?;
        props.insert(key, value);
    }
    Ok(props)
}

fn line_error(number: usize, reason: &str) -> ConnectError {
    ConnectError::Data(format!("line {}: {reason}", number + 1))
}

/// Whether a line ends in an odd number of backslashes (an unescaped one).
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// The key ends at the first unescaped `=`, `:` or whitespace; the separator and whitespace
/// around it go.
fn split_entry(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' => break,
            _ => i += 1,
        }
    }
    let i = i.min(bytes.len());
    let key = &line[..i];
    let mut rest = line[i..].trim_start_matches([' ', '\t']);
    if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start_matches([' ', '\t']);
    }
    (key, rest)
}

fn unescape(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("\\u{hex} is not a \\uXXXX escape"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// A connector config file: `.json` (Kafka's REST body `{"name", "config": {...}}` or a flat
/// object of settings) or properties (anything else). The name comes from the file's `name`.
pub fn read_connector_config(path: &Path) -> Result<(String, Props)> {
    let mut props = read_config_file(path)?;
    let name = props
        .get("name")
        .cloned()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            ConnectError::Data(format!(
                "{}: a connector config needs a `name`",
                path.display()
            ))
        })?;
    props.insert("name".into(), name.clone());
    Ok((name, props))
}

/// The settings of a config file, as [`read_connector_config`] reads them, with or without a
/// `name`.
pub fn read_config_file(path: &Path) -> Result<Props> {
    let fail = |reason: String| ConnectError::Data(format!("{}: {reason}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let props = if path.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let mut props = json_props(json.get("config").unwrap_or(&json)).map_err(fail)?;
        if let Some(serde_json::Value::String(name)) = json.get("name") {
            props.entry("name".into()).or_insert_with(|| name.clone());
        }
        props
    } else {
        parse_properties(&text).map_err(|e| fail(e.to_string()))?
    };
    Ok(props)
}

/// A JSON object of settings as properties: numbers and booleans as their text.
pub fn json_props(config: &serde_json::Value) -> std::result::Result<Props, String> {
    let serde_json::Value::Object(entries) = config else {
        return Err("a connector config is a JSON object of settings".into());
    };
    let mut props = Props::new();
    for (key, value) in entries {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            other => return Err(format!("config {key} must be a string, not {other}")),
        };
        props.insert(key.clone(), text);
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties_as_connect_standalone_reads_them() {
        let text = "# worker\n! also a comment\nbootstrap.servers=localhost:9092\n\
            key.converter : org.apache.kafka.connect.storage.StringConverter\n\
            name local-file-source\n  file = /tmp/a\\\n    b.txt\nempty=\n\
            sep=\\t\\u0041\\=\\:\nwindows=C\\:\\\\data\n";
        let props = parse_properties(text).unwrap();
        assert_eq!(props["bootstrap.servers"], "localhost:9092");
        assert_eq!(
            props["key.converter"],
            "org.apache.kafka.connect.storage.StringConverter"
        );
        assert_eq!(props["name"], "local-file-source");
        assert_eq!(props["file"], "/tmp/ab.txt");
        assert_eq!(props["empty"], "");
        assert_eq!(props["sep"], "\tA=:");
        assert_eq!(props["windows"], "C:\\data");
        let err = parse_properties("a\nb=\\u12").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn connector_files_in_json_or_properties() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("sink.json");
        std::fs::write(
            &json,
            r#"{"name": "sink", "config": {"connector.class": "FileStreamSink", "tasks.max": 1}}"#,
        )
        .unwrap();
        let (name, props) = read_connector_config(&json).unwrap();
        assert_eq!(name, "sink");
        assert_eq!(props["tasks.max"], "1");
        assert_eq!(props["name"], "sink");
        let flat = dir.path().join("source.properties");
        std::fs::write(&flat, "name=src\nconnector.class=FileStreamSource\n").unwrap();
        assert_eq!(read_connector_config(&flat).unwrap().0, "src");
        std::fs::write(&flat, "connector.class=FileStreamSource\n").unwrap();
        let err = read_connector_config(&flat).unwrap_err();
        assert!(err.to_string().contains("needs a `name`"), "{err}");
        std::fs::write(&json, "{oops").unwrap();
        let err = read_connector_config(&json).unwrap_err();
        assert!(err.to_string().contains("sink.json"), "{err}");
    }
}
