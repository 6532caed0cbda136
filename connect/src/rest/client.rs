//! A client of Kafka Connect's REST API (Sluice's or Kafka's): HTTP/1.1 over one kept-alive
//! connection, JSON in and out.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;

use crate::error::{ConnectError, Result};

/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Calls a Connect worker's REST API at `http://host:port`.
pub struct RestClient {
    /// `host:port`.
    authority: String,
    connection: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl RestClient {
    /// A client of the worker at `url` (`http://host:port`, or just `host:port`).
    pub fn new(url: &str) -> Result<RestClient> {
        let url = url.trim().trim_end_matches('/');
        if url.starts_with("https://") {
            return Err(ConnectError::Http(format!(
                "{url}: HTTPS is not supported; use http://"
            )));
        }
        let authority = url.strip_prefix("http://").unwrap_or(url);
        if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
            return Err(ConnectError::Http(format!(
                "{url:?} is not a worker URL: expected http://host:port"
            )));
        }
        Ok(RestClient {
            authority: authority.to_string(),
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// `host:port` of the worker.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends `method path` with an optional JSON body; the status and the JSON answer (null
    /// when the answer has no body).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Json>,
    ) -> Result<(u16, Json)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.send(method, path, body))
            .await
            .map_err(|_| {
                ConnectError::Http(format!(
                    "{method} http://{}{path}: no answer within {}s",
                    self.authority,
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<(u16, Json)> {
        self.request("GET", path, None).await
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Json>) -> Result<(u16, Json)> {
        let fail = |what: &str, err: &dyn std::fmt::Display| {
            ConnectError::Http(format!(
                "{method} http://{}{path}: {what}: {err}",
                self.authority
            ))
        };
        let payload = match body {
            Some(json) => Bytes::from(serde_json::to_vec(json).map_err(|e| fail("encode", &e))?),
            None => Bytes::new(),
        };
        let mut request = hyper::Request::builder()
            .method(hyper::Method::from_bytes(method.as_bytes()).map_err(|e| fail("method", &e))?)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(payload))
            .map_err(|e| fail("request", &e))?;
        let mut connection = self.connection.lock().await;
        // A kept-alive connection the worker closed is replaced once.
        let alive = match connection.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        let sender = match connection.as_mut() {
            Some(sender) if alive => sender,
            _ => connection.insert(self.connect().await.map_err(|e| fail("connect", &e))?),
        };
        let response = sender.send_request(request).await;
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                *connection = None;
                return Err(fail("send", &err));
            }
        };
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail("read the answer", &e))?
            .to_bytes();
        drop(connection);
        if bytes.is_empty() {
            return Ok((status, Json::Null));
        }
        let json = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                &format!(
                    "answer {status} is not JSON ({})",
                    String::from_utf8_lossy(&bytes)
                ),
                &e,
            )
        })?;
        Ok((status, json))
    }

    async fn connect(&self) -> std::io::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "Connect REST connection closed");
            }
        });
        sender.ready().await.map_err(std::io::Error::other)?;
        Ok(sender)
    }
}
