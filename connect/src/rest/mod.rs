//! Kafka Connect's REST API on a worker (axum): the same paths, JSON bodies, status codes and
//! `{"error_code", "message"}` errors as Kafka Connect, so its users' scripts and tools work
//! against Sluice. [`RestClient`] calls it (the CLI, tests and benchmarks use it).
//!
//! Errors map as Kafka Connect maps them: a bad config or request is 400, an unknown connector,
//! task or plugin 404, a connector that already exists 409, anything else 500.

mod client;
mod json;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value as Json};

pub use client::RestClient;

use crate::connector::Props;
use crate::error::{ConnectError, Result};
use crate::herder::Herder;
use crate::worker::Worker;

/// A running REST server.
pub struct RestServer {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl RestServer {
    /// Serves `worker`'s REST API on `listen` (`host:port`; port 0: an ephemeral one). The
    /// worker's id in statuses becomes the bound `host:port`.
    pub async fn start(worker: Arc<Worker>, listen: &str) -> Result<RestServer> {
        let listener = RestServer::bind(listen).await?;
        let addr = listener.local_addr().map_err(|err| {
            ConnectError::config("listeners", listen, format!("cannot listen: {err}"))
        })?;
        worker.set_worker_id(&addr.to_string());
        RestServer::serve(listener, worker)
    }

    /// Binds `listen` (`host:port`) for [`RestServer::serve`]: a distributed worker needs its
    /// address, which names it to the group, before it starts.
    pub async fn bind(listen: &str) -> Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind(listen).await.map_err(|err| {
            ConnectError::config("listeners", listen, format!("cannot listen: {err}"))
        })
    }

    /// Serves `herder`'s REST API on a bound listener.
    pub fn serve(listener: tokio::net::TcpListener, herder: Arc<dyn Herder>) -> Result<RestServer> {
        let addr = listener.local_addr().map_err(|err| {
            ConnectError::config("listeners", "", format!("cannot listen: {err}"))
        })?;
        let app = router(herder);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(%err, "Connect REST server stopped");
            }
        });
        tracing::info!(%addr, "Connect REST API listening");
        Ok(RestServer {
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

/// The routes of Kafka Connect's REST API.
pub fn router(worker: Arc<dyn Herder>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/connectors", get(list_connectors).post(create_connector))
        .route(
            "/connectors/{name}",
            get(connector_info).delete(delete_connector),
        )
        .route(
            "/connectors/{name}/config",
            get(connector_config).put(put_connector_config),
        )
        .route("/connectors/{name}/status", get(connector_status))
        .route("/connectors/{name}/restart", post(restart_connector))
        .route("/connectors/{name}/pause", put(pause_connector))
        .route("/connectors/{name}/resume", put(resume_connector))
        .route("/connectors/{name}/stop", put(stop_connector))
        .route("/connectors/{name}/tasks", get(task_configs))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route(
            "/connectors/{name}/offsets",
            get(get_offsets).delete(reset_offsets).patch(alter_offsets),
        )
        .route("/connectors/{name}/topics", get(connector_topics))
        .route(
            "/connectors/{name}/topics/reset",
            put(reset_connector_topics),
        )
        .route("/connector-plugins", get(connector_plugins))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route(
            "/connector-plugins/{plugin}/config/validate",
            put(validate_config),
        )
        .fallback(not_found_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(worker)
}

type Shared = State<Arc<dyn Herder>>;

/// A response: a status and a JSON body (none for 204).
struct Reply(StatusCode, Option<Json>);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.1 {
            Some(body) => (self.0, axum::Json(body)).into_response(),
            None => self.0.into_response(),
        }
    }
}

/// An error as Kafka Connect sends it.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.0.as_u16(), "message": self.1});
        (self.0, axum::Json(body)).into_response()
    }
}

impl From<ConnectError> for Failure {
    fn from(err: ConnectError) -> Failure {
        let status = match &err {
            ConnectError::Config { .. }
            | ConnectError::Invalid(_)
            | ConnectError::BadRequest(_)
            | ConnectError::Schema(_)
            | ConnectError::Data(_) => StatusCode::BAD_REQUEST,
            ConnectError::NotFound(_) => StatusCode::NOT_FOUND,
            ConnectError::Conflict(_) => StatusCode::CONFLICT,
            ConnectError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConnectError::Task(_)
            | ConnectError::Retriable(_)
            | ConnectError::Client(_)
            | ConnectError::Http(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut message = err.to_string();
        if let ConnectError::Invalid(_) = err {
            message.push_str(
                "\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
            );
        }
        Failure(status, message)
    }
}

type Answer = std::result::Result<Reply, Failure>;

fn ok(body: Json) -> Answer {
    Ok(Reply(StatusCode::OK, Some(body)))
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, message.into())
}

fn connector_not_found(name: &str) -> Failure {
    Failure(StatusCode::NOT_FOUND, format!("Connector {name} not found"))
}

/// The request body as JSON, or a 400 naming where it stops being JSON.
fn body_json(body: &Bytes) -> std::result::Result<Json, Failure> {
    if body.is_empty() {
        return Err(bad_request("The request needs a JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|err| bad_request(format!("Invalid JSON in the request body: {err}")))
}

/// `name=value` pairs of a query string (repeated names kept, as `expand=status&expand=info`).
fn query_pairs(query: &Option<String>) -> Vec<(String, String)> {
    query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (pair.to_string(), String::new()),
        })
        .collect()
}

/// A boolean query parameter (absent: false), refusing anything but `true`/`false`.
fn query_flag(pairs: &[(String, String)], name: &str) -> std::result::Result<bool, Failure> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(false),
        Some((_, v)) => match v.to_ascii_lowercase().as_str() {
            "true" | "" => Ok(true),
            "false" => Ok(false),
            other => Err(bad_request(format!(
                "Query parameter {name} must be true or false, not {other:?}"
            ))),
        },
    }
}

async fn root(State(worker): Shared) -> Answer {
    let cluster = worker
        .client()
        .describe_cluster()
        .await
        .ok()
        .and_then(|c| c.cluster_id);
    ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("SLUICE_GIT_COMMIT").unwrap_or("unknown"),
        "kafka_cluster_id": cluster,
    }))
}

async fn list_connectors(State(worker): Shared, RawQuery(query): RawQuery) -> Answer {
    let pairs = query_pairs(&query);
    let mut expand: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v.as_str())
        .collect();
    expand.sort_unstable();
    expand.dedup();
    if let Some(other) = expand.iter().find(|e| !matches!(**e, "status" | "info")) {
        return Err(bad_request(format!(
            "expand must be status or info, not {other:?}"
        )));
    }
    let names = worker.connectors().await;
    if expand.is_empty() {
        return ok(json!(names));
    }
    let mut all = serde_json::Map::new();
    for name in names {
        let mut entry = serde_json::Map::new();
        if expand.contains(&"info") {
            if let Some(info) = worker.connector_info(&name).await {
                entry.insert("info".into(), json::info(&info));
            }
        }
        if expand.contains(&"status") {
            if let Some(status) = worker.status(&name).await {
                entry.insert("status".into(), json::status(&name, &status));
            }
        }
        all.insert(name, Json::Object(entry));
    }
    ok(Json::Object(all))
}

/// A config write this worker is not the one to make: sent on to the group's leader (with
/// `forward=false`, as Kafka Connect marks requests it forwards), whose answer is returned.
/// None: handle it here.
async fn to_leader(
    worker: &Arc<dyn Herder>,
    query: &Option<String>,
    method: &str,
    path: &str,
    body: Option<&Json>,
) -> Option<Answer> {
    let pairs = query_pairs(query);
    if pairs.iter().any(|(k, v)| k == "forward" && v == "false") {
        return None;
    }
    let leader = worker.leader_url()?;
    let outcome = async {
        let rest = RestClient::new(&leader)?;
        rest.request(method, &format!("{path}?forward=false"), body)
            .await
    }
    .await;
    Some(match outcome {
        Ok((status, answer)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = (!answer.is_null()).then_some(answer);
            if status.is_success() {
                Ok(Reply(status, body))
            } else {
                let message = body
                    .as_ref()
                    .and_then(|b| b["message"].as_str())
                    .unwrap_or("the leader refused the request")
                    .to_string();
                Err(Failure(status, message))
            }
        }
        Err(err) => Err(Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Forwarding the request to the leader at {leader} failed: {err}"),
        )),
    })
}

async fn create_connector(State(worker): Shared, RawQuery(query): RawQuery, raw: Bytes) -> Answer {
    let body = body_json(&raw)?;
    if let Some(answer) = to_leader(&worker, &query, "POST", "/connectors", Some(&body)).await {
        return answer;
    }
    let config = match body.get("config") {
        Some(config) => json::props(config)?,
        None => return Err(bad_request("The request needs a \"config\" object")),
    };
    let name = match body.get("name") {
        Some(Json::String(name)) => name.clone(),
        Some(_) => return Err(bad_request("\"name\" must be a string")),
        None => match config.get("name") {
            Some(name) => name.clone(),
            None => return Err(bad_request("The request needs the connector's \"name\"")),
        },
    };
    let info = worker.create_connector(&name, config).await?;
    Ok(Reply(StatusCode::CREATED, Some(json::info(&info))))
}

async fn connector_info(State(worker): Shared, Path(name): Path<String>) -> Answer {
    match worker.connector_info(&name).await {
        Some(info) => ok(json::info(&info)),
        None => Err(connector_not_found(&name)),
    }
}

async fn delete_connector(
    State(worker): Shared,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let path = format!("/connectors/{}", encode_segment(&name));
    if let Some(answer) = to_leader(&worker, &query, "DELETE", &path, None).await {
        return answer;
    }
    worker.delete_connector(&name).await?;
    Ok(Reply(StatusCode::NO_CONTENT, None))
}

async fn connector_config(State(worker): Shared, Path(name): Path<String>) -> Answer {
    match worker.connector_config(&name).await {
        Some(config) => ok(json!(config)),
        None => Err(connector_not_found(&name)),
    }
}

async fn put_connector_config(
    State(worker): Shared,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    raw: Bytes,
) -> Answer {
    let body = body_json(&raw)?;
    let path = format!("/connectors/{}/config", encode_segment(&name));
    if let Some(answer) = to_leader(&worker, &query, "PUT", &path, Some(&body)).await {
        return answer;
    }
    let config: Props = json::props(&body)?;
    let (created, info) = worker.put_connector_config(&name, config).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Reply(status, Some(json::info(&info))))
}

async fn connector_status(State(worker): Shared, Path(name): Path<String>) -> Answer {
    match worker.status(&name).await {
        Some(status) => ok(json::status(&name, &status)),
        None => Err(connector_not_found(&name)),
    }
}

async fn restart_connector(
    State(worker): Shared,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let pairs = query_pairs(&query);
    let include_tasks = query_flag(&pairs, "includeTasks")?;
    let only_failed = query_flag(&pairs, "onlyFailed")?;
    let status = worker
        .restart_connector(&name, include_tasks, only_failed)
        .await?;
    // Kafka Connect: the old connector-only restart answers 204; the others 202 and the status.
    if !include_tasks && !only_failed {
        return Ok(Reply(StatusCode::NO_CONTENT, None));
    }
    Ok(Reply(
        StatusCode::ACCEPTED,
        Some(json::status(&name, &status)),
    ))
}

async fn pause_connector(State(worker): Shared, Path(name): Path<String>) -> Answer {
    worker.pause_connector(&name).await?;
    Ok(Reply(StatusCode::ACCEPTED, None))
}

async fn resume_connector(State(worker): Shared, Path(name): Path<String>) -> Answer {
    worker.resume_connector(&name).await?;
    Ok(Reply(StatusCode::ACCEPTED, None))
}

async fn stop_connector(State(worker): Shared, Path(name): Path<String>) -> Answer {
    worker.stop_connector(&name).await?;
    Ok(Reply(StatusCode::NO_CONTENT, None))
}

async fn task_configs(State(worker): Shared, Path(name): Path<String>) -> Answer {
    match worker.task_configs(&name).await {
        Some(configs) => ok(Json::Array(
            configs
                .into_iter()
                .enumerate()
                .map(
                    |(id, config)| json!({"id": {"connector": name, "task": id}, "config": config}),
                )
                .collect(),
        )),
        None => Err(connector_not_found(&name)),
    }
}

/// The task id of a path, or a 404 as Kafka Connect answers for one that is not a number.
fn task_id(name: &str, task: &str) -> std::result::Result<usize, Failure> {
    task.parse::<usize>().map_err(|_| {
        Failure(
            StatusCode::NOT_FOUND,
            format!("Task {name}-{task} not found"),
        )
    })
}

async fn task_status(State(worker): Shared, Path((name, task)): Path<(String, String)>) -> Answer {
    let id = task_id(&name, &task)?;
    let status = worker
        .status(&name)
        .await
        .ok_or_else(|| connector_not_found(&name))?;
    match status.tasks.get(id) {
        Some(state) => {
            let on = status.task_worker_ids.get(id).unwrap_or(&status.worker_id);
            ok(json::task_status(id, state, on))
        }
        None => Err(Failure(
            StatusCode::NOT_FOUND,
            format!("Task {name}-{id} not found"),
        )),
    }
}

async fn restart_task(State(worker): Shared, Path((name, task)): Path<(String, String)>) -> Answer {
    let id = task_id(&name, &task)?;
    worker.restart_task(&name, id).await?;
    Ok(Reply(StatusCode::NO_CONTENT, None))
}

async fn connector_topics(State(worker): Shared, Path(name): Path<String>) -> Answer {
    let topics = worker.connector_topics(&name).await?;
    ok(json!({ name: {"topics": topics} }))
}

async fn reset_connector_topics(State(worker): Shared, Path(name): Path<String>) -> Answer {
    worker.reset_connector_topics(&name).await?;
    Ok(Reply(StatusCode::OK, None))
}

async fn get_offsets(State(worker): Shared, Path(name): Path<String>) -> Answer {
    let offsets = worker.connector_offsets(&name).await?;
    ok(json::offsets(&offsets)?)
}

async fn reset_offsets(State(worker): Shared, Path(name): Path<String>) -> Answer {
    worker.reset_offsets(&name).await?;
    ok(json!({"message": "The offsets for this connector have been reset successfully"}))
}

async fn alter_offsets(State(worker): Shared, Path(name): Path<String>, body: Bytes) -> Answer {
    let offsets = json::offsets_request(&body_json(&body)?)?;
    worker.alter_offsets(&name, offsets).await?;
    ok(json!({"message": "The offsets for this connector have been altered successfully"}))
}

async fn connector_plugins(State(worker): Shared, RawQuery(query): RawQuery) -> Answer {
    let pairs = query_pairs(&query);
    // Only connectors are plugins with a class here (transforms and converters are built in).
    let _connectors_only = query_flag(&pairs, "connectorsOnly")?;
    ok(Json::Array(
        worker
            .plugins()
            .all()
            .iter()
            .map(|p| json!({"class": p.class, "type": p.kind(), "version": env!("CARGO_PKG_VERSION")}))
            .collect(),
    ))
}

async fn plugin_config(State(worker): Shared, Path(plugin): Path<String>) -> Answer {
    let infos = worker.validate(&plugin, &Props::new())?;
    ok(Json::Array(
        infos
            .configs
            .iter()
            .enumerate()
            .map(|(order, (key, _))| json::definition(key, order))
            .collect(),
    ))
}

async fn validate_config(State(worker): Shared, Path(plugin): Path<String>, body: Bytes) -> Answer {
    let mut config = json::props(&body_json(&body)?)?;
    if let Some(given) = config.get("connector.class") {
        let named = worker.plugins().find(&plugin).map(|p| p.class.clone());
        let given_class = worker.plugins().find(given).map(|p| p.class.clone());
        if named.is_some() && named != given_class {
            return Err(bad_request(format!(
                "Included connector type {given} does not match request type {plugin}"
            )));
        }
    }
    config
        .entry("connector.class".into())
        .or_insert_with(|| plugin.clone());
    let infos = worker.validate(&plugin, &config)?;
    ok(json::config_infos(&infos))
}

/// Percent-encodes a path segment (connector names may hold spaces or slashes).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

async fn not_found_route() -> Failure {
    Failure(StatusCode::NOT_FOUND, "HTTP 404 Not Found".into())
}

async fn method_not_allowed() -> Failure {
    Failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP 405 Method Not Allowed".into(),
    )
}
