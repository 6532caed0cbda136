//! `sluice ksql [http://host:8088]`: ksqlDB's interactive CLI against a ksql server's REST
//! API (Sluice's, or ksqlDB's own): the `ksql> ` prompt with line editing and history,
//! statements over several lines until `;`, answers as bordered tables, push query rows as
//! they come until Ctrl-C or `LIMIT`, `RUN SCRIPT`, and ksqlDB's CLI commands (`help`,
//! `output`, `server`, `spool`, `history`, ...). `-e` and `-f` run statements and exit.
//!
//! As ksqlDB's CLI does, statements are parsed here first (a syntax error shows its line and
//! column and sends nothing), `DEFINE`d variables are substituted here, `SET` properties are
//! kept here and sent with every request, `SELECT` streams from `/query-stream`, `PRINT` from
//! `/query`, and other statements go to `/ksql` together.

mod commands;
pub mod render;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use serde_json::{json, Map, Value as Json};
use sluice_ksql::client::{KsqlClient, QueryLine, StatementsAnswer};
use sluice_ksql::parser::ast::{Listing, Statement};
use sluice_ksql::parser::split_statements;
use sluice_ksql::variables::parse_with_variables;
use sluice_ksql::KsqlError;

use commands::CliCommand;
use render::RowFormat;

#[derive(Debug, clap::Args)]
pub struct KsqlArgs {
    /// The ksql server (its REST API), e.g. the `ksql.listeners` of `sluice start`.
    #[arg(default_value = "http://127.0.0.1:8088", env = "SLUICE_KSQL_URL")]
    server: String,
    /// Run these statements and exit (a `;` is added at the end if missing).
    #[arg(short = 'e', long)]
    execute: Option<String>,
    /// Run the statements of this file and exit (as if typed; nothing runs if one does not
    /// parse).
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// A variable for `${name}` in the statements; repeatable.
    #[arg(short = 'd', long = "define", value_name = "NAME=VALUE")]
    define: Vec<String>,
    /// How answers are shown: TABULAR or JSON.
    #[arg(long, default_value = "TABULAR", value_parser = parse_output)]
    output: Output,
    /// End every query after this many rows.
    #[arg(long, value_name = "ROWS")]
    query_row_limit: Option<u64>,
    /// End every query after this many milliseconds.
    #[arg(long, value_name = "MS")]
    query_timeout: Option<u64>,
}

/// How answers are shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output {
    /// Tables and blocks of text.
    Tabular,
    /// The server's JSON, pretty-printed.
    Json,
}

fn parse_output(value: &str) -> Result<Output, String> {
    match value.to_ascii_uppercase().as_str() {
        "TABULAR" => Ok(Output::Tabular),
        "JSON" => Ok(Output::Json),
        _ => Err(format!(
            "Invalid output format: '{value}' (valid formats: 'JSON', 'TABULAR')"
        )),
    }
}

/// Runs the CLI.
pub fn run(args: KsqlArgs) -> anyhow::Result<()> {
    let runtime = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    );
    let client = KsqlClient::new(&args.server)?;
    let mut session = Session::new(client, runtime.clone(), args.output);
    session.row_limit = args.query_row_limit;
    session.query_timeout = args.query_timeout.map(Duration::from_millis);
    for define in &args.define {
        let Some((name, value)) = define.split_once('=') else {
            anyhow::bail!("--define {define}: expected NAME=VALUE");
        };
        session.define(name.trim(), value);
    }
    let batch = match (&args.execute, &args.file) {
        (Some(statements), _) => {
            let mut statements = statements.trim().to_string();
            if !statements.ends_with(';') {
                statements.push(';');
            }
            Some(statements)
        }
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("Failed to read file: {}", file.display()))?,
        ),
        (None, None) => None,
    };
    if let Some(statements) = batch {
        session.catch_interrupts()?;
        session.width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
        if let Err(message) = session.server_info() {
            anyhow::bail!("{message}");
        }
        return match session.handle(&statements) {
            Ok(_) => Ok(()),
            Err(Failed) => anyhow::bail!("a statement failed (above)"),
        };
    }
    interactive(session)
}

/// A failure already shown to the user.
#[derive(Debug)]
struct Failed;

/// What the loop does after an input.
enum Flow {
    Next,
    Exit,
    ClearScreen,
}

/// The CLI's state: the server, the `SET` properties, the variables, how answers are shown.
struct Session {
    client: KsqlClient,
    runtime: Arc<tokio::runtime::Runtime>,
    /// `SET` properties, sent as `streamsProperties` with every request.
    properties: Map<String, Json>,
    /// `DEFINE`d variables by upper-cased name: the name as defined and the value.
    variables: BTreeMap<String, (String, String)>,
    output: Output,
    /// `set cli WRAP`.
    wrap: bool,
    /// `set cli COLUMN-WIDTH` (0: the terminal's width shared by the columns).
    column_width: usize,
    /// The terminal's width, when known.
    width: Option<usize>,
    row_limit: Option<u64>,
    query_timeout: Option<Duration>,
    interrupts: Option<tokio::signal::unix::Signal>,
    /// The inputs of this session, for `history`.
    history: Vec<String>,
    out: Printer,
}

/// Standard output, and the spool file while `spool` is on.
struct Printer {
    spool: Option<(PathBuf, std::fs::File)>,
    color: bool,
}

impl Printer {
    /// `text` as it is.
    fn print(&mut self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        if let Some((_, file)) = &mut self.spool {
            let _ = file.write_all(text.as_bytes());
        }
    }

    /// `text` and a new line.
    fn line(&mut self, text: &str) {
        self.print(&format!("{text}\n"));
    }

    /// An error: red on a terminal.
    fn error(&mut self, text: &str) {
        if self.color {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "\x1b[31m{text}\x1b[0m");
            let _ = stdout.flush();
            if let Some((_, file)) = &mut self.spool {
                let _ = writeln!(file, "{text}");
            }
        } else {
            self.line(text);
        }
    }
}

impl Session {
    fn new(client: KsqlClient, runtime: Arc<tokio::runtime::Runtime>, output: Output) -> Session {
        Session {
            client,
            runtime,
            properties: Map::new(),
            variables: BTreeMap::new(),
            output,
            wrap: true,
            column_width: 0,
            width: None,
            row_limit: None,
            query_timeout: None,
            interrupts: None,
            history: Vec::new(),
            out: Printer {
                spool: None,
                color: std::io::stdout().is_terminal(),
            },
        }
    }

    /// From now on Ctrl-C (SIGINT) ends a running query, not the CLI. Called after the line
    /// editor installed its own handler, so that this one comes first (and passes the signal
    /// on to the editor's, which only looks at it when a read of the terminal is interrupted).
    fn catch_interrupts(&mut self) -> std::io::Result<()> {
        let _entered = self.runtime.enter();
        self.interrupts = Some(tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::interrupt(),
        )?);
        Ok(())
    }

    fn define(&mut self, name: &str, value: &str) {
        self.variables.insert(
            name.to_ascii_uppercase(),
            (name.to_string(), value.to_string()),
        );
    }

    /// `GET /info`: the server's version and status, or why it cannot be reached.
    fn server_info(&self) -> Result<(String, String), String> {
        let info = self
            .runtime
            .block_on(self.client.info())
            .map_err(|err| unreachable_server(&self.client.url(), &err))?;
        let info = &info["KsqlServerInfo"];
        let field = |name: &str| info[name].as_str().unwrap_or("<unknown>").to_string();
        Ok((field("version"), field("serverStatus")))
    }

    /// One complete input: a CLI command, or statements (parsed here first: nothing runs if
    /// one does not parse).
    fn handle(&mut self, input: &str) -> Result<Flow, Failed> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(Flow::Next);
        }
        if let Some(command) = commands::parse(input) {
            return match command {
                Ok(command) => self.command(command),
                Err(message) => {
                    self.out.error(&message);
                    Err(Failed)
                }
            };
        }
        self.statements(input)
    }

    fn statements(&mut self, input: &str) -> Result<Flow, Failed> {
        let variables = self
            .variables
            .iter()
            .map(|(upper, (_, value))| (upper.clone(), value.clone()))
            .collect();
        let parsed = match parse_with_variables(input, variables) {
            Ok(parsed) => parsed,
            Err(err) => {
                self.out.error(&syntax_error(input, &err));
                return Err(Failed);
            }
        };
        // Statements the server runs go to `/ksql` together; the rest are run here in order.
        let mut batch = String::new();
        for (statement, _) in parsed {
            let text = statement.text.clone() + ";";
            match &statement.statement {
                Statement::Query(_) => {
                    self.flush(&mut batch)?;
                    self.query(&text)?;
                }
                Statement::Print { .. } => {
                    self.flush(&mut batch)?;
                    self.print_topic(&text)?;
                }
                Statement::Set { name, value } => {
                    self.flush(&mut batch)?;
                    let message = match self.properties.insert(name.clone(), json!(value)) {
                        Some(old) => format!(
                            "Successfully changed local property '{name}' from '{}' to '{value}'.",
                            old.as_str().unwrap_or_default()
                        ),
                        None => format!(
                            "Successfully changed local property '{name}' to '{value}'. Use the UNSET command to revert your change."
                        ),
                    };
                    self.out.line(&message);
                }
                Statement::Unset(name) => {
                    self.flush(&mut batch)?;
                    match self.properties.remove(name) {
                        Some(old) => self.out.line(&format!(
                            "Successfully unset local property '{name}' (value was '{}').",
                            old.as_str().unwrap_or_default()
                        )),
                        None => {
                            self.out.error(&format!(
                                "Cannot unset local property '{name}' which was never set in the first place"
                            ));
                            return Err(Failed);
                        }
                    }
                }
                Statement::Define { name, value } => {
                    self.flush(&mut batch)?;
                    self.define(name, value);
                }
                Statement::Undefine(name) => {
                    self.flush(&mut batch)?;
                    if self.variables.remove(&name.to_ascii_uppercase()).is_none() {
                        self.out.error(&format!(
                            "Cannot undefine variable '{name}' which was never defined."
                        ));
                        return Err(Failed);
                    }
                }
                Statement::Show {
                    what: Listing::Variables,
                    ..
                } => {
                    self.flush(&mut batch)?;
                    let variables: Vec<Json> = self
                        .variables
                        .values()
                        .map(|(name, value)| json!({"name": name, "value": value}))
                        .collect();
                    let entity = json!({"@type": "variables", "statementText": text,
                        "variables": variables, "warnings": []});
                    self.show_entities(&[entity])?;
                }
                Statement::RunScript(path) => {
                    self.flush(&mut batch)?;
                    self.run_script(path)?;
                }
                _ => {
                    batch.push_str(&text);
                    batch.push('\n');
                }
            }
        }
        self.flush(&mut batch)?;
        Ok(Flow::Next)
    }

    /// Sends the statements gathered for `/ksql`, and shows the answer.
    fn flush(&mut self, batch: &mut String) -> Result<(), Failed> {
        if batch.is_empty() {
            return Ok(());
        }
        let statements = std::mem::take(batch);
        let answer = self.runtime.block_on(self.client.statements(
            &statements,
            &self.properties,
            &Map::new(),
        ));
        match answer {
            Ok(StatementsAnswer {
                status: 200,
                body: Json::Array(entities),
            }) => self.show_entities(&entities),
            Ok(answer) => {
                self.server_error(&answer);
                Err(Failed)
            }
            Err(err) => {
                self.out.error(&request_failed(&err));
                Err(Failed)
            }
        }
    }

    fn show_entities(&mut self, entities: &[Json]) -> Result<(), Failed> {
        if self.output == Output::Json {
            self.out.line(&render::pretty_json(&json!(entities)));
            return Ok(());
        }
        let (text, error) = render::entities(entities, self.width);
        self.out.print(&text);
        match error {
            Some(error) => {
                self.out.error(&error);
                Err(Failed)
            }
            None => Ok(()),
        }
    }

    /// A server's error answer: the entities that were made before it, then its message.
    fn server_error(&mut self, answer: &StatementsAnswer) {
        if self.output == Output::Json {
            self.out.line(&render::pretty_json(&answer.body));
            return;
        }
        if let Some(entities) = answer.body["entities"].as_array() {
            if !entities.is_empty() {
                let (text, _) = render::entities(entities, self.width);
                self.out.print(&text);
            }
        }
        let message = answer.body["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("The server answered {}: {}", answer.status, answer.body));
        self.out.error(&message);
    }

    /// A query's answer once the server accepted it; else its error, shown.
    fn accepted<T>(
        &mut self,
        started: sluice_ksql::Result<Result<T, StatementsAnswer>>,
    ) -> Result<T, Failed> {
        match started {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(answer)) => {
                self.server_error(&answer);
                Err(Failed)
            }
            Err(err) => {
                self.out.error(&request_failed(&err));
                Err(Failed)
            }
        }
    }

    /// Whether Ctrl-C came (and was not seen yet).
    fn interrupted_already(&mut self) -> bool {
        let mut seen = false;
        if let Some(signals) = self.interrupts.as_mut() {
            while signals.recv().now_or_never().is_some() {
                seen = true;
            }
        }
        seen
    }

    /// A `SELECT`: the header, then each row as it comes, until the server ends the query,
    /// `--query-row-limit`, `--query-timeout` or Ctrl-C ends it.
    fn query(&mut self, sql: &str) -> Result<(), Failed> {
        self.interrupted_already();
        let runtime = self.runtime.clone();
        runtime.block_on(async {
            let started = self.client.query(sql, &self.properties, &Map::new()).await;
            let mut rows = self.accepted(started)?;
            let format = RowFormat::new(
                rows.column_names.len(),
                self.width.unwrap_or(80),
                self.column_width,
                self.wrap,
            );
            match self.output {
                Output::Tabular => self.out.print(&format.header(&rows.column_names)),
                Output::Json => self.out.line(&render::pretty_json(&json!({
                    "queryId": rows.query_id,
                    "columnNames": rows.column_names,
                    "columnTypes": rows.column_types,
                }))),
            }
            let deadline = self.query_timeout.map(|t| tokio::time::Instant::now() + t);
            let mut sent = 0u64;
            // Whether the server ended the query (else this CLI closes it).
            let mut ended = false;
            let mut failed = false;
            loop {
                if self.row_limit.is_some_and(|limit| sent >= limit) {
                    break;
                }
                let interrupted = interrupt(self.interrupts.as_mut());
                let timeout = async move {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let line = tokio::select! {
                    line = rows.next() => line,
                    _ = interrupted => break,
                    _ = timeout => break,
                };
                match line {
                    Ok(Some(QueryLine::Row(values))) => {
                        sent += 1;
                        match self.output {
                            Output::Tabular => {
                                let cells: Vec<String> = values.iter().map(render::cell).collect();
                                self.out.print(&format.row(&cells));
                            }
                            Output::Json => self
                                .out
                                .line(&render::pretty_json(&json!({"columns": values}))),
                        }
                    }
                    Ok(Some(QueryLine::Final(message))) => {
                        self.out.line(&message);
                        ended = true;
                        break;
                    }
                    Ok(Some(QueryLine::Error(error))) => {
                        let message = error["message"]
                            .as_str()
                            .map_or_else(|| error.to_string(), str::to_string);
                        self.out.error(&message);
                        ended = true;
                        failed = true;
                        break;
                    }
                    Ok(None) => {
                        ended = true;
                        break;
                    }
                    Err(err) => {
                        self.out.error(&err.to_string());
                        ended = true;
                        failed = true;
                        break;
                    }
                }
            }
            let query_id = rows.query_id.clone();
            drop(rows);
            if !ended {
                // The connection is gone, which ends the query too; this ends it at once.
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    self.client.close_query(&query_id),
                )
                .await;
            }
            self.out.line("Query terminated");
            if failed {
                Err(Failed)
            } else {
                Ok(())
            }
        })
    }

    /// `PRINT`: the topic's records as the server formats them, until `LIMIT` or Ctrl-C.
    fn print_topic(&mut self, sql: &str) -> Result<(), Failed> {
        self.interrupted_already();
        let runtime = self.runtime.clone();
        runtime.block_on(async {
            let started = self.client.print(sql, &self.properties, &Map::new()).await;
            let mut lines = self.accepted(started)?;
            loop {
                let interrupted = interrupt(self.interrupts.as_mut());
                let line = tokio::select! {
                    line = lines.next() => line,
                    _ = interrupted => break,
                };
                match line {
                    Ok(Some(line)) if line.trim().is_empty() => {}
                    Ok(Some(line)) => self.out.line(&line),
                    Ok(None) => break,
                    Err(err) => {
                        self.out.error(&err.to_string());
                        break;
                    }
                }
            }
            self.out.line("Topic printing ceased");
            Ok(())
        })
    }

    /// `RUN SCRIPT 'file'`: the file's statements, as if typed.
    fn run_script(&mut self, path: &str) -> Result<Flow, Failed> {
        let script = match std::fs::read_to_string(path) {
            Ok(script) => script,
            Err(err) => {
                self.out
                    .error(&format!("Failed to read file: {path} ({err})"));
                return Err(Failed);
            }
        };
        self.statements(&script)
    }

    /// A CLI command.
    fn command(&mut self, command: CliCommand) -> Result<Flow, Failed> {
        match command {
            CliCommand::Help => self.out.print(commands::HELP),
            CliCommand::Clear => return Ok(Flow::ClearScreen),
            CliCommand::Exit => return Ok(Flow::Exit),
            CliCommand::History => {
                let lines: String = self
                    .history
                    .iter()
                    .enumerate()
                    .map(|(i, line)| format!("{:4}: {line}\n", i + 1))
                    .collect();
                self.out.print(&lines);
            }
            CliCommand::Output(None) => {
                let name = match self.output {
                    Output::Tabular => "TABULAR",
                    Output::Json => "JSON",
                };
                self.out.line(&format!("Current output format: {name}"));
            }
            CliCommand::Output(Some(format)) => match parse_output(&format) {
                Ok(output) => {
                    self.output = output;
                    self.out.line(&format!(
                        "Output format set to {}",
                        format.to_ascii_uppercase()
                    ));
                }
                Err(message) => {
                    self.out.error(&message);
                    return Err(Failed);
                }
            },
            CliCommand::Version => match self.server_info() {
                Ok((version, _)) => self.out.line(&format!("Version: {version}")),
                Err(message) => {
                    self.out.error(&message);
                    return Err(Failed);
                }
            },
            CliCommand::Server(None) => {
                let url = self.client.url();
                self.out.line(&url);
            }
            CliCommand::Server(Some(url)) => {
                match KsqlClient::new(&url) {
                    Ok(client) => self.client = client,
                    Err(err) => {
                        self.out.error(&err.to_string());
                        return Err(Failed);
                    }
                }
                let url = self.client.url();
                self.out.line(&format!("Server now: {url}"));
                if let Err(message) = self.server_info() {
                    self.out.error(&message);
                    return Err(Failed);
                }
            }
            CliCommand::Spool(path) => return self.spool(path),
            CliCommand::RunScript(path) => return self.run_script(&path),
            CliCommand::SetCli(name, value) => match name.to_ascii_uppercase().as_str() {
                "WRAP" => match value.to_ascii_uppercase().as_str() {
                    "ON" => self.wrap = true,
                    "OFF" => self.wrap = false,
                    _ => {
                        self.out.error(&format!(
                            "Invalid value {value} for configuration WRAP: String must be one of: ON, OFF"
                        ));
                        return Err(Failed);
                    }
                },
                "COLUMN-WIDTH" => match value.parse() {
                    Ok(width) => self.column_width = width,
                    Err(_) => {
                        self.out.error(&format!(
                            "Invalid value {value} for configuration COLUMN-WIDTH: Not a number"
                        ));
                        return Err(Failed);
                    }
                },
                _ => {
                    self.out.error(&format!(
                        "Undefined property: {name}. Valid properties are: [WRAP, COLUMN-WIDTH]"
                    ));
                    return Err(Failed);
                }
            },
        }
        Ok(Flow::Next)
    }

    /// `spool path` / `spool off`.
    fn spool(&mut self, path: String) -> Result<Flow, Failed> {
        if path.eq_ignore_ascii_case("off") {
            if let Some((path, _)) = self.out.spool.take() {
                self.out
                    .line(&format!("Spool written to {}", path.display()));
            }
            return Ok(Flow::Next);
        }
        if self.out.spool.is_some() {
            self.out
                .error("Cannot set two spools! Please issue SPOOL OFF.");
            return Err(Failed);
        }
        let path = std::path::absolute(&path).unwrap_or_else(|_| PathBuf::from(&path));
        match std::fs::File::create(&path) {
            Ok(file) => {
                self.out.line(&format!(
                    "Session will be spooled to {}\nEnter SPOOL OFF to disable",
                    path.display()
                ));
                self.out.spool = Some((path, file));
                Ok(Flow::Next)
            }
            Err(err) => {
                self.out
                    .error(&format!("Cannot spool to {}: {err}", path.display()));
                Err(Failed)
            }
        }
    }
}

/// Resolves at the next Ctrl-C (never when they are not caught).
async fn interrupt(signals: Option<&mut tokio::signal::unix::Signal>) {
    match signals {
        Some(signals) => {
            signals.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// A statement that does not parse, as ksqlDB's CLI shows it, with a caret under the place.
fn syntax_error(input: &str, err: &KsqlError) -> String {
    match err {
        KsqlError::Parse {
            line,
            column,
            message,
        } => {
            let source = input
                .lines()
                .nth((*line as usize).saturating_sub(1))
                .unwrap_or(input);
            let prefix = "Statement: ";
            format!(
                "line {line}:{column}: Syntax Error\n{message}\n{prefix}{source}\n{}^",
                " ".repeat(prefix.len() + (*column as usize).saturating_sub(1))
            )
        }
        other => other.to_string(),
    }
}

/// A request that got no answer (ksqlDB's CLI adds why when the server cannot be reached).
fn request_failed(err: &KsqlError) -> String {
    match err {
        KsqlError::Unreachable(_) => format!(
            "{err}\nCaused by: Could not connect to the server. Please check the server details are correct and that the server is running."
        ),
        _ => err.to_string(),
    }
}

/// The box ksqlDB's CLI shows when its server does not answer `/info`.
fn unreachable_server(url: &str, err: &KsqlError) -> String {
    let stars = "*".repeat(80);
    format!(
        "\n{}ERROR{}\nRemote server at {url} does not appear to be a valid KSQL\nserver. Please ensure that the URL provided is for an active KSQL server.\n\nThe server responded with the following error: \n{err}\n{stars}\n",
        "*".repeat(37),
        "*".repeat(38),
    )
}

/// Whether `buffer` is a whole input: a CLI command, or statements whose last `;` came.
fn complete(buffer: &str) -> bool {
    let buffer = buffer.trim();
    buffer.is_empty()
        || commands::parse(buffer).is_some()
        || split_statements(buffer)
            .last()
            .is_none_or(|last| last.terminated)
}

/// The interactive loop.
fn interactive(mut session: Session) -> anyhow::Result<()> {
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .history_ignore_dups(true)?
        .max_history_size(1000)?
        .build();
    let mut editor = rustyline::DefaultEditor::with_config(config)?;
    session.catch_interrupts()?;
    let history_file =
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ksql-history"));
    if let Some(file) = &history_file {
        let _ = editor.load_history(file);
    }
    session.width = terminal_width(&mut editor);
    session.out.print(&banner(&session));
    let mut buffer = String::new();
    let mut failures = 0usize;
    // Whether the last line ended with `\`: the next one continues it on the same line.
    let mut joined = false;
    loop {
        let prompt = if buffer.is_empty() { "ksql> " } else { ">" };
        match editor.readline(prompt) {
            Ok(line) => {
                if let Some((_, file)) = &mut session.out.spool {
                    let _ = write!(file, "\n{prompt}{line}\n");
                }
                if !buffer.is_empty() && !joined {
                    buffer.push('\n');
                }
                let trimmed = line.trim_end();
                match trimmed.strip_suffix('\\') {
                    Some(part) => {
                        buffer.push_str(part);
                        joined = true;
                        continue;
                    }
                    None => {
                        buffer.push_str(trimmed);
                        joined = false;
                    }
                }
                if !complete(&buffer) {
                    continue;
                }
                let input = std::mem::take(&mut buffer);
                let input = input.trim();
                if input.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(input);
                session.history.push(input.to_string());
                session.width = terminal_width(&mut editor);
                match session.handle(input) {
                    Ok(Flow::Exit) => break,
                    Ok(Flow::ClearScreen) => {
                        let _ = editor.clear_screen();
                    }
                    Ok(Flow::Next) => {}
                    Err(Failed) => failures += 1,
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => {
                // Ctrl-C at the prompt drops what was typed.
                session.out.line("^C");
                buffer.clear();
                joined = false;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(err) => return Err(err.into()),
        }
    }
    session.out.line("Exiting ksql.");
    if let Some(file) = &history_file {
        let _ = editor.save_history(file);
    }
    // Statements piped in fail as a script does.
    if failures > 0 && !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{failures} input{} failed (above)",
            if failures == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// The terminal's width in columns, when it says.
fn terminal_width(editor: &mut rustyline::DefaultEditor) -> Option<usize> {
    editor
        .dimensions()
        .map(|(columns, _)| usize::from(columns))
        .filter(|columns| *columns > 0)
}

/// The welcome text: the CLI's and the server's versions, and where to find help.
fn banner(session: &Session) -> String {
    let url = session.client.url();
    let (version, status, warning) = match session.server_info() {
        Ok((version, status)) => (version, status, String::new()),
        Err(message) => ("<unknown>".into(), "<unknown>".into(), message),
    };
    format!(
        "\nSluice ksql CLI {}, a client of ksqlDB's REST API\n\nCLI v{}, Server v{version} located at {url}\nServer Status: {status}\n{warning}\nHaving trouble? Type 'help' (case-insensitive) for a rundown of how things work!\n\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_server_that_cannot_be_reached_is_called_unreachable() {
        let refused = KsqlError::Unreachable("POST http://x/ksql: connect: refused".into());
        assert!(request_failed(&refused).contains("Could not connect to the server"));
        let late = KsqlError::Client("POST http://x/ksql: no answer within 30s".into());
        assert_eq!(
            request_failed(&late),
            "POST http://x/ksql: no answer within 30s"
        );
    }

    #[test]
    fn input_is_whole_at_a_semicolon_outside_quotes_or_at_a_cli_command() {
        assert!(complete("SHOW STREAMS;"));
        assert!(complete("SELECT *\nFROM s EMIT CHANGES;"));
        assert!(!complete("SELECT *\nFROM s EMIT CHANGES"));
        assert!(!complete("INSERT INTO s VALUES ('a;"));
        assert!(complete("-- only a comment"));
        assert!(complete("exit"));
        assert!(complete("output json"));
        assert!(complete("RUN SCRIPT '/tmp/x.sql'"));
    }

    #[test]
    fn a_syntax_error_points_at_its_column() {
        let err = sluice_ksql::parser::parse("SHOW STREAMS;\nSELEC * FROM s;").unwrap_err();
        let shown = syntax_error("SHOW STREAMS;\nSELEC * FROM s;", &err);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[0].starts_with("line 2:1: Syntax Error"), "{shown}");
        assert_eq!(lines[2], "Statement: SELEC * FROM s;");
        assert_eq!(lines[3], "           ^");
    }
}
