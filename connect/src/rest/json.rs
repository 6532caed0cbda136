//! The JSON shapes of Kafka Connect's REST API.

use serde_json::{json, Value as Json};

use super::{bad_request, Failure};
use crate::connector::{ConfigKey, ConfigValue, Importance, Props};
use crate::converter::{Converter, JsonConverter};
use crate::data::Value;
use crate::error::ConnectError;
use crate::worker::{ConfigInfos, ConnectorInfo, ConnectorStatus, State};

/// `{"name", "config", "tasks": [{"connector", "task"}], "type"}`.
pub(super) fn info(info: &ConnectorInfo) -> Json {
    json!({
        "name": info.name,
        "config": info.config,
        "tasks": (0..info.tasks)
            .map(|task| json!({"connector": info.name, "task": task}))
            .collect::<Vec<_>>(),
        "type": info.kind,
    })
}

fn state(state: &State, worker_id: &str) -> serde_json::Map<String, Json> {
    let mut out = serde_json::Map::new();
    out.insert("state".into(), json!(state.name()));
    out.insert("worker_id".into(), json!(worker_id));
    if let State::Failed(reason) = state {
        out.insert("trace".into(), json!(reason));
    }
    out
}

/// `{"id", "state", "worker_id"}` (and `"trace"` when failed).
pub(super) fn task_status(id: usize, task: &State, worker_id: &str) -> Json {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(id));
    out.extend(state(task, worker_id));
    Json::Object(out)
}

/// `{"name", "connector": {"state", "worker_id"}, "tasks": [...], "type"}`.
pub(super) fn status(name: &str, status: &ConnectorStatus) -> Json {
    let worker_id = status.worker_id.as_str();
    json!({
        "name": name,
        "connector": Json::Object(state(&status.state, worker_id)),
        "tasks": status
            .tasks
            .iter()
            .enumerate()
            .map(|(id, task)| {
                let on = status.task_worker_ids.get(id).map_or(worker_id, String::as_str);
                task_status(id, task, on)
            })
            .collect::<Vec<_>>(),
        "type": status.kind,
    })
}

/// A config object as properties (numbers and booleans as their text, as Kafka Connect reads
/// `"tasks.max": 1`; null leaves a setting out).
pub(super) fn props(config: &Json) -> Result<Props, Failure> {
    crate::properties::json_props(config).map_err(bad_request)
}

fn to_json(value: &Value) -> Result<Json, Failure> {
    let bytes = JsonConverter::new(false)
        .from_connect_data("offsets", None, value)
        .map_err(Failure::from)?
        .unwrap_or_default();
    serde_json::from_slice(&bytes)
        .map_err(|err| Failure::from(ConnectError::Data(format!("offset is not JSON: {err}"))))
}

fn from_json(value: &Json) -> Result<Value, Failure> {
    let bytes = serde_json::to_vec(value)
        .map_err(|err| bad_request(format!("offset is not JSON: {err}")))?;
    Ok(JsonConverter::new(false)
        .to_connect_data("offsets", Some(&bytes))
        .map_err(Failure::from)?
        .value)
}

/// `{"offsets": [{"partition": {...}, "offset": {...}}]}`.
pub(super) fn offsets(offsets: &[(Value, Value)]) -> Result<Json, Failure> {
    let mut list = Vec::with_capacity(offsets.len());
    for (partition, offset) in offsets {
        list.push(json!({"partition": to_json(partition)?, "offset": to_json(offset)?}));
    }
    Ok(json!({ "offsets": list }))
}

/// The body of `PATCH /connectors/{name}/offsets`: partitions and their new offsets (null:
/// forget the partition).
pub(super) fn offsets_request(body: &Json) -> Result<Vec<(Value, Value)>, Failure> {
    let Some(Json::Array(items)) = body.get("offsets") else {
        return Err(bad_request(
            "The request needs \"offsets\": a list of {\"partition\", \"offset\"} objects",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(partition) = item.get("partition").filter(|p| !p.is_null()) else {
            return Err(bad_request(format!(
                "Each offset needs a \"partition\" object; got {item}"
            )));
        };
        let offset = item.get("offset").unwrap_or(&Json::Null);
        out.push((from_json(partition)?, from_json(offset)?));
    }
    Ok(out)
}

fn importance(importance: Importance) -> &'static str {
    match importance {
        Importance::High => "HIGH",
        Importance::Medium => "MEDIUM",
        Importance::Low => "LOW",
    }
}

/// A setting's definition, as `config/validate` and `GET /connector-plugins/{p}/config` show it.
pub(super) fn definition(key: &ConfigKey, order: usize) -> Json {
    json!({
        "name": key.name,
        "type": key.ty.name(),
        "required": key.required,
        "default_value": key.default,
        "importance": importance(key.importance),
        "documentation": key.doc,
        "group": null,
        "width": "NONE",
        "display_name": key.name,
        "dependents": [],
        "order": order,
    })
}

fn value(value: &ConfigValue) -> Json {
    json!({
        "name": value.name,
        "value": value.value,
        "recommended_values": [],
        "errors": value.errors,
        "visible": true,
    })
}

/// `{"name", "error_count", "groups", "configs": [{"definition", "value"}]}`.
pub(super) fn config_infos(infos: &ConfigInfos) -> Json {
    json!({
        "name": infos.class,
        "error_count": infos.error_count(),
        "groups": ["Common"],
        "configs": infos
            .configs
            .iter()
            .enumerate()
            .map(|(order, (key, v))| json!({"definition": definition(key, order), "value": value(v)}))
            .collect::<Vec<_>>(),
    })
}
