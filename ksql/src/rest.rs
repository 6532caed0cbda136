//! ksqlDB's REST API (axum): `POST /ksql`, `GET /info`, `GET /healthcheck`, with ksqlDB's
//! paths, bodies and errors (`{"@type", "error_code", "message"}`), so its clients work.
//! Queries (`/query`, `/query-stream`) come with the query engine.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value as Json};

use crate::engine::Engine;
use crate::error::{KsqlError, Result};

/// ksqlDB's REST media type (also accepted: `application/json`).
const KSQL_JSON: &str = "application/vnd.ksql.v1+json";

/// The version `/info` reports: the ksqlDB release whose API this follows.
pub const KSQL_VERSION: &str = "0.29.0";

/// A running REST server.
pub struct KsqlServer {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl KsqlServer {
    /// Serves `engine` on `listen` (`host:port`; port 0: an ephemeral one).
    pub async fn start(engine: Arc<Engine>, listen: &str) -> Result<KsqlServer> {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
            KsqlError::statement(format!("ksql.listeners {listen}: cannot listen: {err}"))
        })?;
        let addr = listener.local_addr().map_err(|err| {
            KsqlError::statement(format!("ksql.listeners {listen}: cannot listen: {err}"))
        })?;
        let app = router(engine);
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
            shutdown,
            handle,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests and waits for those in progress.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.handle.await;
    }
}

/// The routes of ksqlDB's REST API served so far.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/ksql", post(ksql))
        .route("/info", get(info))
        .route("/healthcheck", get(healthcheck))
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
    match engine.execute(sql).await {
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
