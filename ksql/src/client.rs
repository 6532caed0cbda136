//! A client of ksqlDB's REST API (Sluice's server or ksqlDB's own): statements on `/ksql`,
//! queries and `PRINT` streamed from `/query` (read as they come, as ksqlDB's CLI reads
//! them: the server's final message included), `/close-query` and `/info`. HTTP/1.1; a query has its own connection so closing
//! it (or dropping it) ends the query on the server.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value as Json};

use crate::error::{KsqlError, Result};

/// How long a statement request, or a query's first answer, may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Calls a ksql server's REST API at `http://host:port`.
#[derive(Debug, Clone)]
pub struct KsqlClient {
    /// `host:port`.
    authority: String,
}

/// A server's answer to `POST /ksql`: the HTTP status and its JSON (an array of entities
/// on success, an error object otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct StatementsAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Json,
}

/// A running query's answer: its id and columns, then its rows as they come.
pub struct QueryRows {
    /// The query's id (for `/close-query`).
    pub query_id: String,
    /// The columns' names.
    pub column_names: Vec<String>,
    /// The columns' types, as ksqlDB writes them (`INTEGER`, `STRUCT<...>`).
    pub column_types: Vec<String>,
    body: Incoming,
    buf: Vec<u8>,
}

/// One line of a query's answer after its header.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryLine {
    /// A row: one JSON value per column.
    Row(Vec<Json>),
    /// The server's error that ended the query (`{"@type":"generic_error",...}`).
    Error(Json),
    /// A message that ended the query (`{"finalMessage":"Query Completed"}`).
    Final(String),
}

/// `PRINT`'s answer: text lines as they come.
pub struct PrintLines {
    body: Incoming,
    buf: Vec<u8>,
}

impl KsqlClient {
    /// A client of the server at `url` (`http://host:port`, or just `host:port`).
    pub fn new(url: &str) -> Result<KsqlClient> {
        let url = url.trim().trim_end_matches('/');
        if url.starts_with("https://") {
            return Err(KsqlError::Client(format!(
                "{url}: HTTPS is not supported; use http://"
            )));
        }
        let authority = url.strip_prefix("http://").unwrap_or(url);
        if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
            return Err(KsqlError::Client(format!(
                "{url:?} is not a server address: expected http://host:port"
            )));
        }
        Ok(KsqlClient {
            authority: authority.to_string(),
        })
    }

    /// The server's address, `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.authority)
    }

    /// `GET /info`: `{"KsqlServerInfo": {"version", "kafkaClusterId", "ksqlServiceId",
    /// "serverStatus"}}`.
    pub async fn info(&self) -> Result<Json> {
        let (status, body) = self.request("GET", "/info", None).await?;
        if status != 200 {
            return Err(KsqlError::Client(format!(
                "GET {}/info answered {status}: {body}",
                self.url()
            )));
        }
        Ok(body)
    }

    /// `POST /ksql` with `statements`, the request's `streamsProperties` and
    /// `sessionVariables`.
    pub async fn statements(
        &self,
        statements: &str,
        properties: &Map<String, Json>,
        variables: &Map<String, Json>,
    ) -> Result<StatementsAnswer> {
        let body = json!({
            "ksql": statements,
            "streamsProperties": properties,
            "sessionVariables": variables,
        });
        let (status, body) = self.request("POST", "/ksql", Some(&body)).await?;
        Ok(StatementsAnswer { status, body })
    }

    /// `POST /query`: runs a push or pull query; its header once the server accepted it, or
    /// the server's error as a [`StatementsAnswer`] (status and error object).
    pub async fn query(
        &self,
        sql: &str,
        properties: &Map<String, Json>,
        variables: &Map<String, Json>,
    ) -> Result<std::result::Result<QueryRows, StatementsAnswer>> {
        let body = match self.post_query(sql, properties, variables).await? {
            Ok(body) => body,
            Err(answer) => return Ok(Err(answer)),
        };
        let mut rows = QueryRows {
            query_id: String::new(),
            column_names: Vec::new(),
            column_types: Vec::new(),
            body,
            buf: Vec::new(),
        };
        let header = tokio::time::timeout(REQUEST_TIMEOUT, rows.element())
            .await
            .map_err(|_| self.timeout("/query"))??;
        let Some(header) = header
            .as_ref()
            .map(|h| &h["header"])
            .filter(|h| h.is_object())
        else {
            return Err(KsqlError::Client(format!(
                "the query's answer does not start with its header: {}",
                header.unwrap_or_default()
            )));
        };
        rows.query_id = header["queryId"].as_str().unwrap_or_default().to_string();
        for (name, ty) in schema_columns(header["schema"].as_str().unwrap_or_default()) {
            rows.column_names.push(name);
            rows.column_types.push(ty);
        }
        Ok(Ok(rows))
    }

    /// `POST /query` with a `PRINT` statement: its lines, or the server's error.
    pub async fn print(
        &self,
        sql: &str,
        properties: &Map<String, Json>,
        variables: &Map<String, Json>,
    ) -> Result<std::result::Result<PrintLines, StatementsAnswer>> {
        let body = match self.post_query(sql, properties, variables).await? {
            Ok(body) => body,
            Err(answer) => return Ok(Err(answer)),
        };
        Ok(Ok(PrintLines {
            body,
            buf: Vec::new(),
        }))
    }

    /// `POST /query`: the answer's body to read as it comes, or the server's error.
    async fn post_query(
        &self,
        sql: &str,
        properties: &Map<String, Json>,
        variables: &Map<String, Json>,
    ) -> Result<std::result::Result<Incoming, StatementsAnswer>> {
        let body =
            json!({"ksql": sql, "streamsProperties": properties, "sessionVariables": variables});
        let (status, body) = self.stream("/query", &body, "application/json").await?;
        if status != 200 {
            let answer = collect_json(body).await?;
            return Ok(Err(StatementsAnswer {
                status,
                body: answer,
            }));
        }
        Ok(Ok(body))
    }

    /// `POST /close-query`: ends the push query `query_id`.
    pub async fn close_query(&self, query_id: &str) -> Result<()> {
        let (status, body) = self
            .request("POST", "/close-query", Some(&json!({"queryId": query_id})))
            .await?;
        match status {
            200 => Ok(()),
            _ => Err(KsqlError::Client(format!(
                "closing query {query_id}: {status} {body}"
            ))),
        }
    }

    fn timeout(&self, path: &str) -> KsqlError {
        KsqlError::Client(format!(
            "{}{path}: no answer within {}s",
            self.url(),
            REQUEST_TIMEOUT.as_secs()
        ))
    }

    /// `method path` with an optional JSON body: the status and the JSON answer (null when
    /// the answer has no body).
    async fn request(&self, method: &str, path: &str, body: Option<&Json>) -> Result<(u16, Json)> {
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            let (status, body) = self.send(method, path, body, "application/json").await?;
            Ok((status, collect_json(body).await?))
        })
        .await
        .map_err(|_| self.timeout(path))?
    }

    /// `POST path` whose answer is read as it comes.
    async fn stream(&self, path: &str, body: &Json, accept: &str) -> Result<(u16, Incoming)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.send("POST", path, Some(body), accept))
            .await
            .map_err(|_| self.timeout(path))?
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Json>,
        accept: &str,
    ) -> Result<(u16, Incoming)> {
        let url = self.url();
        let fail = |what: &str, err: &dyn std::fmt::Display| {
            KsqlError::Client(format!("{method} {url}{path}: {what}: {err}"))
        };
        let payload = match body {
            Some(json) => Bytes::from(json.to_string()),
            None => Bytes::new(),
        };
        let mut request = hyper::Request::builder()
            .method(hyper::Method::from_bytes(method.as_bytes()).map_err(|e| fail("method", &e))?)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::ACCEPT, accept);
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(payload))
            .map_err(|e| fail("request", &e))?;
        let mut sender = self
            .connect()
            .await
            .map_err(|e| KsqlError::Unreachable(format!("{method} {url}{path}: connect: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail("send", &e))?;
        Ok((response.status().as_u16(), response.into_body()))
    }

    async fn connect(&self) -> std::io::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        // The connection ends with the answer's body (dropped or read to its end).
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "ksql REST connection closed");
            }
        });
        sender.ready().await.map_err(std::io::Error::other)?;
        Ok(sender)
    }
}

impl QueryRows {
    /// The next element of `/query`'s JSON array, read as it comes (one per line).
    async fn element(&mut self) -> Result<Option<Json>> {
        loop {
            let Some(line) = next_line(&mut self.body, &mut self.buf).await? else {
                return Ok(None);
            };
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            let text = text.strip_prefix('[').unwrap_or(text);
            let text = text.strip_suffix(']').unwrap_or(text).trim_end();
            let text = text.strip_suffix(',').unwrap_or(text);
            if text.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(text).map(Some).map_err(|err| {
                KsqlError::Client(format!(
                    "a line of the query's answer is not JSON ({err}): {text}"
                ))
            });
        }
    }

    /// The next row (or the error or message that ended the query); none at the end.
    pub async fn next(&mut self) -> Result<Option<QueryLine>> {
        let Some(element) = self.element().await? else {
            return Ok(None);
        };
        if let Some(columns) = element["row"]["columns"].as_array() {
            return Ok(Some(QueryLine::Row(columns.clone())));
        }
        if let Some(message) = element["finalMessage"].as_str() {
            return Ok(Some(QueryLine::Final(message.to_string())));
        }
        match element.get("errorMessage") {
            Some(error) => Ok(Some(QueryLine::Error(error.clone()))),
            None => Ok(Some(QueryLine::Error(element))),
        }
    }
}

/// A quoted name's text (a doubled backtick is one) and what follows its closing backtick.
fn closing_backtick(rest: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().is_some_and(|(_, next)| *next == '`') {
                chars.next();
            } else {
                return Some((name, &rest[i + 1..]));
            }
        }
        name.push(c);
    }
    None
}

/// The columns of a query header's schema (`` `ID` INTEGER KEY, `S` STRUCT<`A` INT> ``):
/// each one's name and type (`KEY` left out).
pub fn schema_columns(schema: &str) -> Vec<(String, String)> {
    let mut columns = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in schema.char_indices() {
        match c {
            '`' => quoted = !quoted,
            '<' | '(' if !quoted => depth += 1,
            '>' | ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&schema[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&schema[start..]);
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, ty) = match part.strip_prefix('`').and_then(closing_backtick) {
            Some((name, ty)) => (name, ty.trim()),
            None => match part.split_once(' ') {
                Some((name, ty)) => (name.to_string(), ty.trim()),
                None => (part.to_string(), ""),
            },
        };
        let ty = ty.strip_suffix(" KEY").unwrap_or(ty);
        columns.push((name, ty.to_string()));
    }
    columns
}

impl PrintLines {
    /// The next line printed; none at the end.
    pub async fn next(&mut self) -> Result<Option<String>> {
        Ok(next_line(&mut self.body, &mut self.buf)
            .await?
            .map(|line| String::from_utf8_lossy(&line).into_owned()))
    }
}

/// The next line of `body` (`buf` holds what came after the last one); none at its end. A
/// last line without a newline counts.
async fn next_line(body: &mut Incoming, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>> {
    loop {
        if let Some(at) = buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=at).collect();
            line.pop();
            return Ok(Some(line));
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(err)) => {
                return Err(KsqlError::Client(format!(
                    "reading the server's answer: {err}"
                )))
            }
            None if buf.is_empty() => return Ok(None),
            None => return Ok(Some(std::mem::take(buf))),
        }
    }
}

/// A whole answer as JSON (null when empty).
async fn collect_json(body: Incoming) -> Result<Json> {
    let bytes = body
        .collect()
        .await
        .map_err(|err| KsqlError::Client(format!("reading the server's answer: {err}")))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Null);
    }
    serde_json::from_slice(&bytes).map_err(|err| {
        KsqlError::Client(format!(
            "the server's answer is not JSON ({err}): {}",
            String::from_utf8_lossy(&bytes)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_header_names_its_columns_nested_types_and_all() {
        assert_eq!(
            schema_columns("`ID` INTEGER KEY, `S` STRUCT<`A` INTEGER, `B` MAP<STRING, DECIMAL(4, 2)>>, `we``ird` STRING"),
            vec![
                ("ID".to_string(), "INTEGER".to_string()),
                ("S".to_string(), "STRUCT<`A` INTEGER, `B` MAP<STRING, DECIMAL(4, 2)>>".to_string()),
                ("we`ird".to_string(), "STRING".to_string()),
            ]
        );
        assert!(schema_columns("").is_empty());
    }
}
