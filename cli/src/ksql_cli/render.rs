//! How `sluice ksql` shows a server's answers, as ksqlDB's CLI does: entities of `/ksql` as
//! bordered tables and `Label : value` blocks, query rows in fixed-width cells, or (with
//! `output JSON`) the JSON pretty-printed the way ksqlDB's CLI (Jackson) prints it.

use serde_json::Value as Json;

/// A table as ksqlDB's CLI prints one: ` a | b ` rows (every cell padded to its column's
/// widest line, a trailing space included), dashed lines under the header and after the rows.
#[derive(Debug, Default)]
pub struct Table {
    /// Lines before the header.
    pub before: Vec<String>,
    /// The column names.
    pub header: Vec<String>,
    /// The rows, a cell per column.
    pub rows: Vec<Vec<String>>,
    /// Lines after the closing dashes.
    pub after: Vec<String>,
}

impl Table {
    /// A table of `header` and `rows`.
    pub fn new(header: &[&str], rows: Vec<Vec<String>>) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
            ..Table::default()
        }
    }

    /// The table's text (lines ending in `\n`); dashed lines no longer than `width`.
    pub fn render(&self, width: Option<usize>) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                let cells = self.rows.iter().filter_map(|row| row.get(i));
                let longest = cells
                    .flat_map(|cell| cell.lines())
                    .map(|line| line.chars().count())
                    .max()
                    .unwrap_or(0);
                longest.max(self.header[i].chars().count())
            })
            .collect();
        let row_text = |cells: &[String]| {
            let padded: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| pad(cells.get(i).map_or("", String::as_str), *w))
                .collect();
            format!(" {} \n", padded.join(" | "))
        };
        let length = widths
            .iter()
            .map(|w| w + 3)
            .sum::<usize>()
            .saturating_sub(1);
        let dashes = format!("{}\n", "-".repeat(width.map_or(length, |w| length.min(w))));
        let mut out = String::new();
        for line in &self.before {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&row_text(&self.header));
        out.push_str(&dashes);
        for row in &self.rows {
            out.push_str(&row_text(row));
        }
        out.push_str(&dashes);
        for line in &self.after {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// `text` padded with spaces to `width` characters.
fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

/// A string field of `json` ("" when absent).
fn text(json: &Json, field: &str) -> String {
    match &json[field] {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// A `/ksql` answer's entities as ksqlDB's CLI shows them: each after an empty line, with its
/// statement's text first when there are several, and its warnings after. A command that
/// failed (`commandStatus.status` ERROR) shows only the first line of its message, as an error.
pub fn entities(list: &[Json], width: Option<usize>) -> (String, Option<String>) {
    let failed: Vec<String> = list
        .iter()
        .filter(|e| e["commandStatus"]["status"] == "ERROR")
        .map(|e| first_line(&text(&e["commandStatus"], "message")))
        .collect();
    if !failed.is_empty() {
        return (String::new(), Some(failed.join("\n")));
    }
    let mut out = String::new();
    for entity in list {
        out.push('\n');
        if list.len() > 1 {
            out.push_str(&text(entity, "statementText"));
            out.push('\n');
        }
        out.push_str(&entity_text(entity, width));
        for warning in entity["warnings"].as_array().into_iter().flatten() {
            out.push_str(&format!("WARNING: {}\n", text(warning, "message")));
        }
    }
    (out, None)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// One entity, by its `@type`; an unknown one as JSON.
pub fn entity_text(entity: &Json, width: Option<usize>) -> String {
    let rows_of = |field: &str| entity[field].as_array().cloned().unwrap_or_default();
    match entity["@type"].as_str().unwrap_or_default() {
        "currentStatus" => Table::new(
            &["Message"],
            vec![vec![first_line(&text(&entity["commandStatus"], "message"))]],
        )
        .render(width),
        "warning_entity" => {
            Table::new(&["Message"], vec![vec![text(entity, "message")]]).render(width)
        }
        kind @ ("streams" | "tables") => {
            let mut sources = rows_of(kind);
            sources.sort_by_key(|s| text(s, "name"));
            let name = if kind == "streams" {
                "Stream Name"
            } else {
                "Table Name"
            };
            let rows = sources
                .iter()
                .map(|s| {
                    vec![
                        text(s, "name"),
                        text(s, "topic"),
                        text(s, "keyFormat"),
                        text(s, "valueFormat"),
                        s["isWindowed"].as_bool().unwrap_or(false).to_string(),
                    ]
                })
                .collect();
            Table::new(
                &[
                    name,
                    "Kafka Topic",
                    "Key Format",
                    "Value Format",
                    "Windowed",
                ],
                rows,
            )
            .render(width)
        }
        "queries" => {
            let rows = rows_of("queries")
                .iter()
                .map(|q| {
                    vec![
                        text(q, "id"),
                        text(q, "queryType"),
                        status_count(&q["statusCount"]),
                        joined(&q["sinks"]),
                        joined(&q["sinkKafkaTopics"]),
                        text(q, "queryString").replace('\n', " "),
                    ]
                })
                .collect();
            let mut table = Table::new(
                &[
                    "Query ID",
                    "Query Type",
                    "Status",
                    "Sink Name",
                    "Sink Kafka Topic",
                    "Query String",
                ],
                rows,
            );
            table
                .after
                .push("For detailed information on a Query run: EXPLAIN <Query ID>;".into());
            table.render(width)
        }
        "kafka_topics" => {
            let rows = rows_of("topics")
                .iter()
                .map(|t| {
                    let replicas: Vec<String> = t["replicaInfo"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(Json::to_string)
                        .collect();
                    let shown = match replicas.first() {
                        None => "0".to_string(),
                        Some(first) if replicas.iter().all(|r| r == first) => first.clone(),
                        Some(_) => replicas.join(", "),
                    };
                    vec![text(t, "name"), replicas.len().to_string(), shown]
                })
                .collect();
            Table::new(&["Kafka Topic", "Partitions", "Partition Replicas"], rows).render(width)
        }
        "properties" => {
            let listed = |field: &str, name: &str| {
                entity[field]
                    .as_array()
                    .is_some_and(|names| names.iter().any(|n| n == name))
            };
            let mut properties = rows_of("properties");
            properties.sort_by_key(|p| text(p, "name"));
            let rows = properties
                .iter()
                .map(|p| {
                    let name = text(p, "name");
                    let overridden = if listed("overwrittenProperties", &name) {
                        "SESSION"
                    } else if listed("defaultProperties", &name) {
                        ""
                    } else {
                        "SERVER"
                    };
                    let value = match &p["value"] {
                        Json::Null => "NULL".to_string(),
                        _ => text(p, "value"),
                    };
                    vec![name, text(p, "scope"), overridden.to_string(), value]
                })
                .collect();
            Table::new(
                &["Property", "Scope", "Default override", "Effective Value"],
                rows,
            )
            .render(width)
        }
        "function_names" => {
            let mut functions = rows_of("functions");
            functions.sort_by_key(|f| (text(f, "category"), text(f, "name")));
            let mut rows: Vec<Vec<String>> = Vec::new();
            let mut category = None;
            for f in &functions {
                let this = text(f, "category");
                if category.as_ref().is_some_and(|c| *c != this) {
                    rows.push(vec![" ".into(), " ".into()]);
                }
                rows.push(vec![text(f, "name"), this.clone()]);
                category = Some(this);
            }
            let mut table = Table::new(&["Function Name", "Category"], rows);
            table.after.push(
                "For detailed information about a function, run: DESCRIBE FUNCTION <Function Name>;"
                    .into(),
            );
            table.render(width)
        }
        "type_list" => {
            let rows = entity["types"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, schema)| vec![name.clone(), type_string(schema)])
                .collect();
            Table::new(&["Type Name", "Schema"], rows).render(width)
        }
        "variables" => {
            let mut variables = rows_of("variables");
            variables.sort_by_key(|v| text(v, "name"));
            let rows = variables
                .iter()
                .map(|v| vec![text(v, "name"), text(v, "value")])
                .collect();
            Table::new(&["Variable Name", "Value"], rows).render(width)
        }
        "sourceDescription" => source_description(&entity["sourceDescription"], width),
        "source_descriptions" => rows_of("sourceDescriptions")
            .iter()
            .map(|d| source_description(d, width) + "\n")
            .collect(),
        "queryDescription" => query_description(&entity["queryDescription"], width),
        "describe_function" => describe_function(entity),
        _ => pretty_json(entity) + "\n",
    }
}

/// `{"RUNNING": 1, "ERROR": 2}` as ksqlDB's CLI shows it: `RUNNING:1,ERROR:2`.
fn status_count(counts: &Json) -> String {
    let order = ["RUNNING", "ERROR", "UNRESPONSIVE", "PAUSED"];
    let Some(counts) = counts.as_object() else {
        return String::new();
    };
    let mut states: Vec<(&String, &Json)> = counts.iter().collect();
    states.sort_by_key(|(state, _)| order.iter().position(|o| o == state).unwrap_or(order.len()));
    states
        .iter()
        .map(|(state, n)| format!("{state}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn joined(values: &Json) -> String {
    values
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect::<Vec<_>>()
        .join(",")
}

/// A column's schema (`{"type":"ARRAY","memberSchema":{...}}`) as ksqlDB's CLI writes it:
/// `VARCHAR(STRING)`, `ARRAY<INTEGER>`, `MAP<STRING, BIGINT>`, `STRUCT<A INTEGER>`,
/// `DECIMAL(10, 2)`.
pub fn type_string(schema: &Json) -> String {
    let kind = schema["type"].as_str().unwrap_or_default();
    match kind {
        "STRING" => "VARCHAR(STRING)".to_string(),
        "ARRAY" => format!("ARRAY<{}>", type_string(&schema["memberSchema"])),
        "MAP" => format!("MAP<STRING, {}>", type_string(&schema["memberSchema"])),
        "STRUCT" => {
            let fields: Vec<String> = schema["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| format!("{} {}", text(f, "name"), type_string(&f["schema"])))
                .collect();
            format!("STRUCT<{}>", fields.join(", "))
        }
        "DECIMAL" => format!(
            "DECIMAL({}, {})",
            schema["parameters"]["precision"], schema["parameters"]["scale"]
        ),
        other => other.to_string(),
    }
}

/// The `Field | Type` table of a source's or query's columns.
fn fields_table(fields: &Json, kind: &str, window: &Json) -> Table {
    let rows = fields
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let ty = type_string(&f["schema"]);
            let ty = match f["type"].as_str() {
                Some("KEY") => {
                    let key = if kind == "TABLE" {
                        "(primary key)"
                    } else {
                        "(key)"
                    };
                    let mut shown = format!("{ty:<16} {key}");
                    if let Some(window) = window.as_str() {
                        shown.push_str(&format!(" (Window type: {window})"));
                    }
                    shown
                }
                Some("HEADER") => match f["headerKey"].as_str() {
                    Some(key) => format!("{ty:<16} (header('{key}'))"),
                    None => format!("{ty:<16} (headers)"),
                },
                _ => ty,
            };
            vec![text(f, "name"), ty]
        })
        .collect();
    Table::new(&["Field", "Type"], rows)
}

/// `DESCRIBE [EXTENDED]`.
fn source_description(d: &Json, width: Option<usize>) -> String {
    let kind = text(d, "type");
    let label = |name: &str, value: String| format!("{name:<20} : {value}");
    let mut table = fields_table(&d["fields"], &kind, &d["windowType"]);
    table.before.push(label("Name", text(d, "name")));
    if d["extended"] != true {
        table.after.push(
            "For runtime statistics and query details run: DESCRIBE <Stream,Table> EXTENDED;"
                .into(),
        );
        return table.render(width);
    }
    table.before.push(label("Type", kind.clone()));
    let timestamp = text(d, "timestamp");
    table.before.push(label(
        "Timestamp field",
        if timestamp.is_empty() {
            "Not set - using <ROWTIME>".to_string()
        } else {
            timestamp
        },
    ));
    table.before.push(label("Key format", text(d, "keyFormat")));
    table
        .before
        .push(label("Value format", text(d, "valueFormat")));
    let mut topic = text(d, "topic");
    if d["partitions"].as_u64().unwrap_or(0) != 0 {
        topic.push_str(&format!(
            " (partitions: {}, replication: {})",
            d["partitions"], d["replication"]
        ));
    }
    table.before.push(label("Kafka topic", topic));
    table.before.push(label("Statement", text(d, "statement")));
    table.before.push(String::new());
    let mut out = table.render(width);
    for (field, heading, hint) in [
        (
            "readQueries",
            format!("Queries that read from this {kind}"),
            "For query topology and execution plan please run: EXPLAIN <QueryId>",
        ),
        (
            "writeQueries",
            format!("Queries that write from this {kind}"),
            "For query topology and execution plan please run: EXPLAIN <QueryId>",
        ),
    ] {
        let queries = d[field].as_array().cloned().unwrap_or_default();
        if queries.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n{heading}\n-----------------------------------\n"
        ));
        for q in &queries {
            let state = match text(q, "state") {
                s if s.is_empty() => "N/A".to_string(),
                s => s,
            };
            out.push_str(&format!(
                "{} ({state}) : {}\n",
                text(q, "id"),
                text(q, "queryString").replace('\n', " ")
            ));
        }
        out.push_str(&format!("\n{hint}\n"));
    }
    out.push_str("\nLocal runtime statistics\n------------------------\n");
    for field in ["statistics", "errorStats"] {
        let value = text(d, field);
        if !value.is_empty() {
            out.push_str(&value);
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "(Statistics of the local KSQL server interaction with the Kafka topic {})\n",
        text(d, "topic")
    ));
    out
}

/// `DESCRIBE FUNCTION`: `Label       : value` lines, then each variation indented.
fn describe_function(f: &Json) -> String {
    let label = |name: &str, value: String| format!("{name:<12}: {value}\n");
    let mut out = String::new();
    out.push_str(&label("Name", text(f, "name").to_ascii_uppercase()));
    out.push_str(&label("Author", text(f, "author")));
    let version = text(f, "version");
    if !version.trim().is_empty() {
        out.push_str(&label("Version", version));
    }
    out.push_str(&label("Overview", text(f, "description")));
    out.push_str(&label("Type", text(f, "type")));
    out.push_str(&label("Jar", text(f, "path")));
    out.push_str(&label("Variations", String::new()));
    let name = text(f, "name").to_ascii_uppercase();
    for variation in f["functions"].as_array().into_iter().flatten() {
        let args: Vec<String> = variation["arguments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let ty = text(a, "type");
                let ty = if a["isVariadic"] == true {
                    format!("{ty}[]")
                } else {
                    ty
                };
                match text(a, "name") {
                    n if n.is_empty() => ty,
                    n => format!("{n} {ty}"),
                }
            })
            .collect();
        out.push_str(&format!(
            "\n\tVariation   : {name}({})\n\tReturns     : {}\n",
            args.join(", "),
            text(variation, "returnType")
        ));
        let description = text(variation, "description");
        if !description.is_empty() {
            out.push_str(&format!("\tDescription : {description}\n"));
        }
    }
    out
}

/// `EXPLAIN`.
fn query_description(q: &Json, width: Option<usize>) -> String {
    let label = |name: &str, value: String| format!("{name:<20} : {value}\n");
    let mut out = String::from("\n");
    out.push_str(&label("ID", text(q, "id")));
    out.push_str(&label("Query Type", text(q, "queryType")));
    let sql = text(q, "statementText");
    if !sql.is_empty() {
        out.push_str(&label("SQL", sql));
    }
    out.push('\n');
    out.push_str(&fields_table(&q["fields"], "", &q["windowType"]).render(width));
    let names = |field: &str| -> String {
        q[field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or_default().to_string() + "\n")
            .collect()
    };
    out.push_str(&format!(
        "\nSources that this query reads from: \n-----------------------------------\n{}\nFor source description please run: DESCRIBE [EXTENDED] <SourceId>\n",
        names("sources")
    ));
    out.push_str(&format!(
        "\nSinks that this query writes to: \n-----------------------------------\n{}\nFor sink description please run: DESCRIBE [EXTENDED] <SinkId>\n",
        names("sinks")
    ));
    out.push_str(&format!(
        "\nExecution plan      \n--------------      \n{}\n",
        text(q, "executionPlan").trim_end()
    ));
    out.push_str(&format!(
        "\nProcessing topology \n------------------- \n{}\n",
        text(q, "topology").trim_end()
    ));
    if let Some(overridden) = q["overriddenProperties"].as_object() {
        if !overridden.is_empty() {
            let rows = overridden
                .iter()
                .map(|(k, v)| {
                    vec![
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    ]
                })
                .collect();
            let mut table = Table::new(&["Property", "Value"], rows);
            table.before = vec![
                String::new(),
                "Overridden Properties".into(),
                "---------------------".into(),
            ];
            out.push_str(&table.render(width));
        }
    }
    out
}

/// A value of a query's row as ksqlDB's CLI shows it: strings without quotes, arrays as
/// `[a, b]`, structs and maps as `{A=1, B=x}` (Java's `toString`).
pub fn cell(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => "null".to_string(),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(cell).collect();
            format!("[{}]", items.join(", "))
        }
        Json::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", cell(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

/// The fixed-width cells of a query's rows: every column `width` characters wide.
pub struct RowFormat {
    /// Each column's width.
    pub width: usize,
    /// Long values go on extra lines (else cut, ending in `...`).
    pub wrap: bool,
}

impl RowFormat {
    /// ksqlDB's choice: `column_width` if set, else the terminal's width shared by the
    /// columns (at least 5 each).
    pub fn new(columns: usize, terminal: usize, column_width: usize, wrap: bool) -> RowFormat {
        let width = if column_width > 0 {
            column_width
        } else {
            (terminal / columns.max(1)).saturating_sub(2).max(5)
        };
        RowFormat { width, wrap }
    }

    /// The `+-----+` line.
    pub fn border(&self, columns: usize) -> String {
        format!(
            "+{}\n",
            format!("{}+", "-".repeat(self.width)).repeat(columns)
        )
    }

    /// The header: a border, the names (wrapped), a border.
    pub fn header(&self, names: &[String]) -> String {
        let border = self.border(names.len());
        let wrapped = RowFormat {
            width: self.width,
            wrap: true,
        };
        format!("{border}{}{border}", wrapped.row(names))
    }

    /// A row: `|value |value |`, on several lines when a value is longer than a cell.
    pub fn row(&self, cells: &[String]) -> String {
        let chunks: Vec<Vec<String>> = cells
            .iter()
            .map(|cell| {
                let chars: Vec<char> = cell.replace('\n', " ").chars().collect();
                if chars.is_empty() {
                    return vec![String::new()];
                }
                chars
                    .chunks(self.width)
                    .map(|c| c.iter().collect())
                    .collect()
            })
            .collect();
        let lines = if self.wrap {
            chunks.iter().map(Vec::len).max().unwrap_or(1)
        } else {
            1
        };
        let mut out = String::new();
        for line in 0..lines {
            out.push('|');
            for chunk in &chunks {
                let mut part = chunk.get(line).cloned().unwrap_or_default();
                if !self.wrap && chunk.len() > 1 && chunk[1..].iter().any(|c| !c.trim().is_empty())
                {
                    let kept: String = part.chars().take(self.width.saturating_sub(3)).collect();
                    part = kept + "...";
                }
                out.push_str(&pad(&part, self.width));
                out.push('|');
            }
            out.push('\n');
        }
        out
    }
}

/// JSON as ksqlDB's CLI pretty-prints it (Jackson's default printer): `"key" : value`, two
/// spaces per level, arrays on one line (`[ 1, 2 ]`, `[ {` ... `} ]`), `[ ]` and `{ }` empty.
pub fn pretty_json(value: &Json) -> String {
    let mut out = String::new();
    write_pretty(value, 0, &mut out);
    out
}

fn write_pretty(value: &Json, depth: usize, out: &mut String) {
    match value {
        Json::Object(fields) if fields.is_empty() => out.push_str("{ }"),
        Json::Object(fields) => {
            out.push_str("{\n");
            for (i, (key, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&"  ".repeat(depth + 1));
                out.push_str(&Json::String(key.clone()).to_string());
                out.push_str(" : ");
                write_pretty(v, depth + 1, out);
            }
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
        Json::Array(items) if items.is_empty() => out.push_str("[ ]"),
        Json::Array(items) => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_pretty(v, depth, out);
            }
            out.push_str(" ]");
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_is_a_one_cell_table_with_trailing_spaces() {
        let (out, error) = entities(
            &[
                json!({"@type": "currentStatus", "statementText": "CREATE STREAM ...",
                "commandStatus": {"status": "SUCCESS", "message": "Stream created"}}),
            ],
            Some(120),
        );
        assert_eq!(error, None);
        assert_eq!(
            out,
            "\n Message        \n----------------\n Stream created \n----------------\n"
        );
    }

    #[test]
    fn streams_are_listed_by_name_and_several_entities_show_their_statements() {
        let list = [
            json!({"@type": "streams", "statementText": "SHOW STREAMS;", "streams": [
                {"name": "PAGEVIEWS", "topic": "pageviews", "keyFormat": "KAFKA", "valueFormat": "JSON", "isWindowed": false},
                {"name": "KSQL_PROCESSING_LOG", "topic": "default_ksql_processing_log", "keyFormat": "KAFKA", "valueFormat": "JSON", "isWindowed": false},
            ], "warnings": [{"message": "careful"}]}),
            json!({"@type": "warning_entity", "statementText": "X;", "message": "hm"}),
        ];
        let (out, _) = entities(&list, None);
        let expected = "\nSHOW STREAMS;\n Stream Name         | Kafka Topic                 | Key Format | Value Format | Windowed \n\
                        ------------------------------------------------------------------------------------------\n \
                        KSQL_PROCESSING_LOG | default_ksql_processing_log | KAFKA      | JSON         | false    \n \
                        PAGEVIEWS           | pageviews                   | KAFKA      | JSON         | false    \n\
                        ------------------------------------------------------------------------------------------\n\
                        WARNING: careful\n\nX;\n Message \n---------\n hm      \n---------\n";
        assert_eq!(out, expected);
        // Dashes stop at the terminal's width.
        let (narrow, _) = entities(&list[..1], Some(30));
        assert!(
            narrow.contains(&format!("\n{}\n", "-".repeat(30))),
            "{narrow}"
        );
    }

    #[test]
    fn a_failed_command_shows_only_its_first_line_as_an_error() {
        let (out, error) = entities(
            &[
                json!({"@type": "currentStatus", "commandStatus": {"status": "ERROR", "message": "boom\ndetails"}}),
            ],
            None,
        );
        assert_eq!((out.as_str(), error.as_deref()), ("", Some("boom")));
    }

    #[test]
    fn describe_marks_key_columns_and_spells_types_as_ksqldb() {
        let entity = json!({"@type": "sourceDescription", "sourceDescription": {
        "name": "PAGEVIEWS", "type": "STREAM", "extended": false, "windowType": null,
        "fields": [
            {"name": "PAGEID", "type": "KEY", "schema": {"type": "STRING"}},
            {"name": "TAGS", "schema": {"type": "ARRAY", "memberSchema": {"type": "INTEGER"}}},
            {"name": "PRICE", "schema": {"type": "DECIMAL", "parameters": {"precision": 10, "scale": 2}}},
            {"name": "S", "schema": {"type": "STRUCT", "fields": [{"name": "A", "schema": {"type": "MAP", "memberSchema": {"type": "BIGINT"}}}]}},
        ]}});
        assert_eq!(
            entity_text(&entity, None),
            "Name                 : PAGEVIEWS\n \
             Field  | Type                          \n\
             ----------------------------------------\n \
             PAGEID | VARCHAR(STRING)  (key)        \n \
             TAGS   | ARRAY<INTEGER>                \n \
             PRICE  | DECIMAL(10, 2)                \n \
             S      | STRUCT<A MAP<STRING, BIGINT>> \n\
             ----------------------------------------\n\
             For runtime statistics and query details run: DESCRIBE <Stream,Table> EXTENDED;\n"
        );
    }

    #[test]
    fn a_function_is_described_with_its_variations() {
        let entity = json!({"@type": "describe_function", "name": "topk", "author": "Sluice",
            "version": "", "description": "The top k values.", "type": "AGGREGATE", "path": "internal",
            "functions": [{"arguments": [{"name": "", "type": "INT", "isVariadic": false},
                {"name": "k", "type": "INT", "isVariadic": true}], "returnType": "ARRAY<INT>", "description": ""}]});
        assert_eq!(
            entity_text(&entity, None),
            "Name        : TOPK\nAuthor      : Sluice\nOverview    : The top k values.\nType        : AGGREGATE\n\
             Jar         : internal\nVariations  : \n\n\tVariation   : TOPK(INT, k INT[])\n\tReturns     : ARRAY<INT>\n"
        );
    }

    #[test]
    fn functions_are_grouped_by_category_with_a_blank_row_between() {
        let entity = json!({"@type": "function_names", "functions": [
            {"name": "ABS", "category": "MATHEMATICAL"},
            {"name": "CAST", "category": "CONVERSIONS"},
            {"name": "CEIL", "category": "MATHEMATICAL"},
        ]});
        let out = entity_text(&entity, None);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[2], " CAST          | CONVERSIONS  ");
        assert_eq!(lines[3], "               |              ");
        assert_eq!(lines[4], " ABS           | MATHEMATICAL ");
        assert_eq!(lines[5], " CEIL          | MATHEMATICAL ");
    }

    #[test]
    fn query_rows_fill_fixed_cells_and_wrap_or_cut_long_values() {
        let format = RowFormat::new(2, 60, 0, true);
        assert_eq!(format.width, 28);
        let header = format.header(&["ID".into(), "V".into()]);
        assert_eq!(
            header,
            format!(
                "+{0}+{0}+\n|ID{1}|V{2}|\n+{0}+{0}+\n",
                "-".repeat(28),
                " ".repeat(26),
                " ".repeat(27)
            )
        );
        let value = cell(&json!([100.0, 110.99, "a long long value here and more"]));
        assert_eq!(value, "[100.0, 110.99, a long long value here and more]");
        let row = format.row(&["1".into(), value.clone()]);
        assert_eq!(row.lines().count(), 2, "{row}");
        assert_eq!(
            row,
            "|1                           |[100.0, 110.99, a long long |\n\
             |                            |value here and more]        |\n"
        );
        let cut = RowFormat::new(2, 60, 0, false).row(&["1".into(), value]);
        assert_eq!(
            cut,
            "|1                           |[100.0, 110.99, a long lo...|\n"
        );
        assert_eq!(cell(&json!({"A": 1, "B": null})), "{A=1, B=null}");
        assert_eq!(RowFormat::new(40, 80, 0, true).width, 5);
    }

    #[test]
    fn json_is_pretty_printed_as_jackson_does() {
        let value = json!([{"@type": "currentStatus", "commandStatus": {"status": "SUCCESS"}, "warnings": []}]);
        assert_eq!(
            pretty_json(&value),
            "[ {\n  \"@type\" : \"currentStatus\",\n  \"commandStatus\" : {\n    \"status\" : \"SUCCESS\"\n  },\n  \"warnings\" : [ ]\n} ]"
        );
    }
}
