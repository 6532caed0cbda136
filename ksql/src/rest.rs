//! ksqlDB's REST API (axum): `POST /ksql`, `POST /query`, `POST /query-stream`,
//! `POST /close-query`, `GET /info`, `GET /healthcheck`, with ksqlDB's paths, bodies and
//! errors (`{"@type", "error_code", "message"}`), so its clients work.
//!
//! Push queries stream their rows in a chunked response for as long as the client stays:
//! `/query` in ksqlDB's original shape (a JSON array of `{"header"}`, `{"row"}` objects and
//! a `{"finalMessage"}`), `/query-stream` as ksqlDB's "delimited" lines (a metadata object,
//! then one JSON array per row) or, if the client accepts only `application/json`, one JSON
//! array of them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value as Json};

use crate::engine::{Answer, Engine, StreamsProperties};
use crate::error::{KsqlError, Result};
use crate::variables::Variables;

/// ksqlDB's REST media type (also accepted: `application/json`).
const KSQL_JSON: &str = "application/vnd.ksql.v1+json";

/// The version `/info` reports: the ksqlDB release whose API this follows.
pub const KSQL_VERSION: &str = "0.29.0";

/// A running REST server.
pub struct KsqlServer {
    addr: SocketAddr,
    engine: Arc<Engine>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl KsqlServer {
    /// Serves `engine` on `listen` (`host:port`; port 0: an ephemeral one).
    pub async fn start(engine: Arc<Engine>, listen: &str) -> Result<KsqlServer> {
        KsqlServer::serve(engine.clone(), listen, router(engine)).await
    }

    /// Serves a headless `engine` on `listen`: `/info` and `/healthcheck` only, every
    /// interactive endpoint refused (ksqlDB's headless mode takes no statements but its
    /// queries file).
    pub async fn start_headless(engine: Arc<Engine>, listen: &str) -> Result<KsqlServer> {
        let app = Router::new()
            .route("/info", get(info))
            .route("/healthcheck", get(healthcheck))
            .fallback(|| async {
                reply(
                    StatusCode::FORBIDDEN,
                    json!({
                        "@type": "generic_error",
                        "error_code": 40300,
                        "message": "The server is running in headless mode (ksql.queries.file): interactive use is disabled.",
                    }),
                )
            })
            .with_state(engine.clone());
        KsqlServer::serve(engine, listen, app).await
    }

    async fn serve(engine: Arc<Engine>, listen: &str, app: Router) -> Result<KsqlServer> {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
            KsqlError::statement(format!("ksql.listeners {listen}: cannot listen: {err}"))
        })?;
        let addr = listener.local_addr().map_err(|err| {
            KsqlError::statement(format!("ksql.listeners {listen}: cannot listen: {err}"))
        })?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(%err, "ksql REST server stopped");
            }
        });
        tracing::info!(%addr, "ksql REST API listening");
        Ok(KsqlServer {
            addr,
            engine,
            shutdown,
            handle,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, ends the push queries (their responses finish), waits for
    /// the requests in progress (5 s at most), then stops the persistent queries this server
    /// runs (their offsets committed: another server, or this one restarted, goes on).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        self.engine.close_push_queries();
        let mut handle = self.handle;
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut handle)
            .await
            .is_err()
        {
            handle.abort();
        }
        self.engine.shutdown().await;
    }
}

/// The routes of ksqlDB's REST API served so far.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/ksql", post(ksql))
        .route("/query", post(query))
        .route("/query-stream", post(query_stream))
        .route("/close-query", post(close_query))
        .route("/inserts-stream", post(inserts_stream))
        .route("/info", get(info))
        .route("/healthcheck", get(healthcheck))
        .route("/status", get(statuses))
        .route("/status/{kind}/{entity}/{action}", get(status))
        .with_state(engine)
}

fn reply(status: StatusCode, body: Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, KSQL_JSON)],
        body.to_string(),
    )
        .into_response()
}

/// ksqlDB's error for a request it cannot read.
fn bad_request(message: impl Into<String>) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"@type": "generic_error", "error_code": 40000, "message": message.into()}),
    )
}

async fn ksql(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    let request: Json = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return bad_request(format!("Invalid JSON in request: {err}")),
    };
    let Some(sql) = request.get("ksql").and_then(Json::as_str) else {
        return bad_request("The request has no \"ksql\" field with the statements to run");
    };
    let properties = match properties(&request, "streamsProperties") {
        Ok(p) => p,
        Err(message) => return bad_request(message),
    };
    let variables = match session_variables(&request) {
        Ok(variables) => variables,
        Err(message) => return bad_request(message),
    };
    match engine
        .execute_with_variables(sql, &properties, variables)
        .await
    {
        Ok(entities) => reply(StatusCode::OK, Json::Array(entities)),
        Err(failure) => reply(
            StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST),
            failure.body,
        ),
    }
}

async fn info(State(engine): State<Arc<Engine>>) -> Response {
    reply(
        StatusCode::OK,
        json!({"KsqlServerInfo": {
            "version": KSQL_VERSION,
            "kafkaClusterId": engine.kafka_cluster_id().await.unwrap_or_default(),
            "ksqlServiceId": engine.service_id(),
            "serverStatus": "RUNNING",
        }}),
    )
}

/// ksqlDB's status of a command's outcome: `SUCCESS` with its message, or `ERROR`.
fn command_status(outcome: &crate::command::Applied) -> Json {
    match outcome {
        Ok(message) => json!({
            "status": "SUCCESS",
            "message": message,
            "queryId": message.strip_prefix("Created query with ID "),
        }),
        Err(message) => json!({"status": "ERROR", "message": message, "queryId": null}),
    }
}

/// `GET /status`: every command id's last status.
async fn statuses(State(engine): State<Arc<Engine>>) -> Response {
    let statuses: serde_json::Map<String, Json> = engine
        .command_statuses()
        .iter()
        .map(|(id, outcome)| (id.clone(), command_status(outcome)["status"].clone()))
        .collect();
    reply(StatusCode::OK, json!({"commandStatuses": statuses}))
}

/// `GET /status/<type>/<entity>/<action>`: one command's status (the entity with or
/// without ksqlDB's backquotes).
async fn status(
    State(engine): State<Arc<Engine>>,
    axum::extract::Path((kind, entity, action)): axum::extract::Path<(String, String, String)>,
) -> Response {
    let statuses = engine.command_statuses();
    let quoted = format!("{kind}/`{}`/{action}", entity.trim_matches('`'));
    let plain = format!("{kind}/{entity}/{action}");
    match statuses.get(&quoted).or_else(|| statuses.get(&plain)) {
        Some(outcome) => reply(StatusCode::OK, command_status(outcome)),
        None => reply(
            StatusCode::NOT_FOUND,
            json!({"@type": "generic_error", "error_code": 40400, "message": "Command not found"}),
        ),
    }
}

async fn healthcheck(State(engine): State<Arc<Engine>>) -> Response {
    let kafka = engine.kafka_cluster_id().await.is_some();
    let status = if kafka {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply(
        status,
        json!({
            "isHealthy": kafka,
            "details": {
                "metastore": {"isHealthy": true},
                "kafka": {"isHealthy": kafka},
                "commandRunner": {"isHealthy": true},
            },
        }),
    )
}

/// The properties object `field` of a request (none: empty).
/// ksqlDB's `sessionVariables`: the CLI's variables, for `${name}` in the statements.
fn session_variables(request: &Json) -> std::result::Result<Variables, String> {
    Ok(properties(request, "sessionVariables")?
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Json::String(s) => s,
                other => other.to_string(),
            };
            (name.to_ascii_uppercase(), value)
        })
        .collect())
}

fn properties(request: &Json, field: &str) -> std::result::Result<StreamsProperties, String> {
    match request.get(field) {
        None | Some(Json::Null) => Ok(StreamsProperties::new()),
        Some(Json::Object(map)) => Ok(map.clone()),
        Some(_) => Err(format!("\"{field}\" must be an object")),
    }
}

/// A statement error for a query request (ksqlDB's shape, status 400).
fn statement_error(err: &KsqlError, sql: &str) -> Response {
    reply(
        StatusCode::BAD_REQUEST,
        json!({
            "@type": "statement_error",
            "error_code": 40001,
            "message": err.to_string(),
            "statementText": sql,
            "entities": [],
        }),
    )
}

/// Runs the query of a request body whose fields `sql_field` and `properties_field` hold
/// the query and its properties; else the error response.
async fn start_query(
    engine: &Engine,
    body: &[u8],
    sql_field: &str,
    properties_field: &str,
) -> std::result::Result<Answer, Box<Response>> {
    let request: Json = serde_json::from_slice(body)
        .map_err(|err| Box::new(bad_request(format!("Invalid JSON in request: {err}"))))?;
    let Some(sql) = request.get(sql_field).and_then(Json::as_str) else {
        return Err(Box::new(bad_request(format!(
            "The request has no \"{sql_field}\" field with the query to run"
        ))));
    };
    let properties =
        properties(&request, properties_field).map_err(|m| Box::new(bad_request(m)))?;
    let variables = session_variables(&request).map_err(|m| Box::new(bad_request(m)))?;
    engine
        .query_with_variables(sql, &properties, variables)
        .await
        .map_err(|err| Box::new(statement_error(&err, sql)))
}

/// `POST /query` (`{"ksql": "SELECT ... EMIT CHANGES;", "streamsProperties": {}}`): the
/// push query's rows as ksqlDB's original endpoint streams them.
async fn query(
    State(engine): State<Arc<Engine>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let push = match start_query(&engine, &body, "ksql", "streamsProperties").await {
        Ok(Answer::Push(push)) => push,
        Ok(Answer::Print(printing)) => {
            // ksqlDB's PRINT: text lines as they come, until LIMIT or the client goes.
            let lines = futures_util::stream::unfold(printing, |mut printing| async move {
                let line = printing.lines.recv().await?;
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(line + "\n")),
                    printing,
                ))
            });
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                axum::body::Body::from_stream(lines),
            )
                .into_response();
        }
        Ok(Answer::Pull(pulled)) => {
            // ksqlDB's pull answer: the header (key columns marked), then every row.
            let schema = pulled
                .columns
                .iter()
                .map(|c| format!("`{}` {}{}", c.name, c.ty, if c.key { " KEY" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ");
            let mut body =
                Vec::with_capacity(64 + pulled.rows.iter().map(|r| r.len() + 24).sum::<usize>());
            body.push(b'[');
            body.extend_from_slice(
                json!({"header": {"queryId": pulled.id, "schema": schema}})
                    .to_string()
                    .as_bytes(),
            );
            for row in &pulled.rows {
                body.extend_from_slice(b",\n{\"row\":{\"columns\":");
                body.extend_from_slice(row);
                body.extend_from_slice(b"}}");
            }
            if let Some(message) = pulled.final_message {
                body.extend_from_slice(b",\n");
                body.extend_from_slice(json!({"finalMessage": message}).to_string().as_bytes());
            }
            body.extend_from_slice(b"]\n");
            // In the media type the client asked for (ksqlDB's, or plain JSON).
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let content_type = if accept.contains(KSQL_JSON) {
                KSQL_JSON
            } else {
                "application/json"
            };
            return (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
        }
        Err(response) => return *response,
    };
    let schema = push
        .columns
        .iter()
        .map(|c| format!("`{}` {}", c.name, c.ty))
        .collect::<Vec<_>>()
        .join(", ");
    let header = format!(
        "[{},\n",
        json!({"header": {"queryId": push.id, "schema": schema}})
    );
    let stream = rows_stream(engine, push, Framing::Original, header);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// `POST /query-stream` (`{"sql": "...", "properties": {}}`): the push query's rows in
/// ksqlDB's newer shape.
async fn query_stream(
    State(engine): State<Arc<Engine>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let answer = match start_query(&engine, &body, "sql", "properties").await {
        Ok(answer) => answer,
        Err(response) => return *response,
    };
    let json_array = wants_json_array(&headers);
    let push = match answer {
        Answer::Push(push) => push,
        Answer::Pull(pulled) => return pulled_stream(&pulled, json_array),
        Answer::Print(_) => {
            let sql = serde_json::from_slice::<Json>(&body)
                .ok()
                .and_then(|r| r["sql"].as_str().map(str::to_string))
                .unwrap_or_default();
            return statement_error(
                &KsqlError::statement(
                    "Statement type `PRINT' not supported for this resource: use /query",
                ),
                &sql,
            );
        }
    };
    let metadata = stream_metadata(&push.id, &push.columns);
    let (framing, first, content_type) = if json_array {
        (
            Framing::JsonArray,
            format!("[{metadata}"),
            "application/json",
        )
    } else {
        (
            Framing::Delimited,
            format!("{metadata}\n"),
            "application/vnd.ksqlapi.delimited.v1",
        )
    };
    let stream = rows_stream(engine, push, framing, first);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// `/query-stream`'s metadata object: the query's id and its columns' names and types.
fn stream_metadata(id: &str, columns: &[crate::plan::OutputColumn]) -> Json {
    json!({
        "queryId": id,
        "columnNames": columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "columnTypes": columns.iter().map(|c| c.ty.to_string()).collect::<Vec<_>>(),
    })
}

/// A pull query's answer on `/query-stream`: the metadata, then every row (delimited, or
/// one JSON array).
fn pulled_stream(pulled: &crate::pull::PullResult, json_array: bool) -> Response {
    let metadata = stream_metadata(&pulled.id, &pulled.columns);
    let mut body = Vec::new();
    if json_array {
        body.push(b'[');
        body.extend_from_slice(metadata.to_string().as_bytes());
        for row in &pulled.rows {
            body.push(b',');
            body.extend_from_slice(row);
        }
        body.push(b']');
    } else {
        body.extend_from_slice(metadata.to_string().as_bytes());
        body.push(b'\n');
        for row in &pulled.rows {
            body.extend_from_slice(row);
            body.push(b'\n');
        }
    }
    let content_type = if json_array {
        "application/json"
    } else {
        "application/vnd.ksqlapi.delimited.v1"
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `POST /close-query` (`{"queryId": "..."}`).
async fn close_query(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    let request: Json = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return bad_request(format!("Invalid JSON in request: {err}")),
    };
    let Some(id) = request.get("queryId").and_then(Json::as_str) else {
        return bad_request("The request has no \"queryId\" field");
    };
    if engine.close_query(id) {
        (StatusCode::OK, "").into_response()
    } else {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"@type": "generic_error", "error_code": 40004, "message": format!("No query with id {id}")}),
        )
    }
}

/// How a push query's rows are framed.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// `/query`: `{"row":{"columns":[...]}},\n` each, `{"finalMessage":"..."}]` at the end.
    Original,
    /// `/query-stream` delimited: one JSON array per line.
    Delimited,
    /// `/query-stream` as JSON: `,[...]` each, `]` at the end.
    JsonArray,
}

/// Whether the client takes the new endpoints' answers as one JSON array: ksqlDB answers
/// in JSON only to a client that accepts JSON and not the delimited form.
fn wants_json_array(headers: &axum::http::HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("application/vnd.ksqlapi.delimited.v1")
}

/// The next line of a streamed request body (`buf` holds what came after the last line);
/// none at the end of the body. A last line without a newline counts.
async fn next_line(
    data: &mut axum::body::BodyDataStream,
    buf: &mut Vec<u8>,
) -> Option<std::result::Result<Vec<u8>, String>> {
    use futures_util::StreamExt;
    loop {
        if let Some(at) = buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=at).collect();
            line.pop();
            return Some(Ok(line));
        }
        match data.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(err)) => return Some(Err(err.to_string())),
            None if buf.is_empty() => return None,
            None => return Some(Ok(std::mem::take(buf))),
        }
    }
}

/// `POST /inserts-stream`: the body's first line `{"target": "S"}` names the stream (or
/// table) to insert into, each line after it is a row (a JSON object of its columns); each
/// row is acknowledged once written (`{"status":"ok","seq":n}`), in order, as ksqlDB's
/// endpoint does, and the first row that cannot be ends the response with its error. The
/// rows are read as they come, so a client can wait for each acknowledgement.
async fn inserts_stream(
    State(engine): State<Arc<Engine>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    let json_array = wants_json_array(&headers);
    let mut data = body.into_data_stream();
    let mut buf = Vec::new();
    let args = match next_line(&mut data, &mut buf).await {
        Some(Ok(line)) => line,
        Some(Err(err)) => return bad_request(format!("Failed to read the request: {err}")),
        None => return bad_request("The request has no arguments line ({\"target\": ...})"),
    };
    let target = match serde_json::from_slice::<Json>(&args) {
        Ok(args) => match args.get("target").and_then(Json::as_str) {
            Some(target) => target.to_string(),
            None => return bad_request("Invalid target name: the arguments have no \"target\""),
        },
        Err(err) => return bad_request(format!("Invalid JSON in the arguments: {err}")),
    };
    let target = match engine.insert_target(&target) {
        Ok(target) => target,
        Err(err) => return statement_error(&err, &String::from_utf8_lossy(&args)),
    };
    let (tx, acks) = tokio::sync::mpsc::channel::<String>(256);
    tokio::spawn(async move {
        let mut seq = 0i64;
        while let Some(line) = next_line(&mut data, &mut buf).await {
            let inserted = match line {
                Ok(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(line) => engine
                    .insert_json(&target, &line)
                    .await
                    .map_err(|e| e.to_string()),
                Err(err) => Err(format!("Failed to read the request: {err}")),
            };
            // ksqlDB's fields in its order (serde_json's maps would sort them).
            let (ack, failed) = match inserted {
                Ok(()) => (format!("{{\"status\":\"ok\",\"seq\":{seq}}}"), false),
                Err(message) => (
                    format!(
                        "{{\"status\":\"error\",\"seq\":{seq},\"error_code\":40000,\"message\":{}}}",
                        Json::String(message)
                    ),
                    true,
                ),
            };
            if tx.send(ack).await.is_err() || failed {
                return;
            }
            seq += 1;
        }
    });
    // (acknowledgements, nothing sent yet, the end sent)
    let framed = futures_util::stream::unfold(
        (acks, true, false),
        move |(mut acks, first, ended)| async move {
            if ended {
                return None;
            }
            let (text, ended) = match acks.recv().await {
                Some(ack) if json_array => {
                    (format!("{}{ack}", if first { "[" } else { "," }), false)
                }
                Some(ack) => (format!("{ack}\n"), false),
                // A JSON array closes ("[]" if it had nothing); delimited lines just end.
                None if json_array => ((if first { "[]" } else { "]" }).to_string(), true),
                None => return None,
            };
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(text)),
                (acks, false, ended),
            ))
        },
    );
    let content_type = if json_array {
        "application/json"
    } else {
        "application/vnd.ksqlapi.delimited.v1"
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(framed),
    )
        .into_response()
}

/// The response body of a push query: `first`, then each row framed, until the client goes
/// (the body is dropped, and with it the query), `LIMIT` rows were sent, or `/close-query`.
fn rows_stream(
    engine: Arc<Engine>,
    push: crate::queries::PushQuery,
    framing: Framing,
    first: String,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, std::convert::Infallible>> + Send {
    struct State {
        engine: Arc<Engine>,
        push: crate::queries::PushQuery,
        sent: u64,
        first: Option<String>,
        done: bool,
        /// How often the query's health is looked at while no row comes.
        check: tokio::time::Interval,
    }
    impl Drop for State {
        fn drop(&mut self) {
            self.engine.forget_query(&self.push.id);
        }
    }
    let state = State {
        engine,
        push,
        sent: 0,
        first: Some(first),
        done: false,
        check: tokio::time::interval(std::time::Duration::from_secs(1)),
    };
    futures_util::stream::unfold(state, move |mut state| async move {
        if let Some(first) = state.first.take() {
            return Some((Ok(Bytes::from(first)), state));
        }
        if state.done {
            return None;
        }
        let ending = |message: Option<&str>| match (framing, message) {
            (Framing::Original, Some(m)) => format!("{}]\n", json!({"finalMessage": m})),
            (Framing::Original, None) => "]\n".to_string(),
            (Framing::JsonArray, _) => "]".to_string(),
            (Framing::Delimited, _) => String::new(),
        };
        if state.push.limit.is_some_and(|limit| state.sent >= limit) {
            state.done = true;
            return Some((Ok(Bytes::from(ending(Some("Limit Reached")))), state));
        }
        let row = loop {
            tokio::select! {
                row = state.push.rows.recv() => break row,
                _ = &mut state.push.closed => break None,
                _ = state.check.tick() => {
                    if let Some(failure) = state.push.failure() {
                        state.done = true;
                        let error = json!({"@type": "generic_error", "error_code": 50000, "message": failure});
                        let end = match framing {
                            Framing::Original => format!("{}]\n", json!({"errorMessage": error})),
                            Framing::Delimited => format!("{error}\n"),
                            Framing::JsonArray => format!(",{error}]"),
                        };
                        return Some((Ok(Bytes::from(end)), state));
                    }
                }
            }
        };
        match row {
            Some(row) => {
                state.sent += 1;
                let mut out = Vec::with_capacity(row.len() + 24);
                match framing {
                    Framing::Original => {
                        out.extend_from_slice(b"{\"row\":{\"columns\":");
                        out.extend_from_slice(&row);
                        out.extend_from_slice(b"}},\n");
                    }
                    Framing::Delimited => {
                        out.extend_from_slice(&row);
                        out.push(b'\n');
                    }
                    Framing::JsonArray => {
                        out.push(b',');
                        out.extend_from_slice(&row);
                    }
                }
                Some((Ok(Bytes::from(out)), state))
            }
            None => {
                state.done = true;
                let end = ending(None);
                if end.is_empty() {
                    None
                } else {
                    Some((Ok(Bytes::from(end)), state))
                }
            }
        }
    })
}
