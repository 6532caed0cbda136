//! Sluice Connect: moving data between Kafka topics and other systems by configuration, as
//! Kafka Connect does, with its names, data model and JSON formats so that Connect users'
//! configs and habits carry over.
//!
//! - [`data`]: schemas, values and structs, with the logical types decimal, date, time and
//!   timestamp.
//! - [`converter`]: record keys and values to and from bytes — `JsonConverter` (with and
//!   without the schema envelope, byte for byte as Kafka's), `StringConverter`,
//!   `ByteArrayConverter` — chosen by Kafka's class names.
//! - [`transforms`]: single message transforms and predicates with Kafka's names and configs.
//! - [`connector`]: what connector authors implement — `SourceConnector`, `SourceTask`,
//!   `SinkConnector`, `SinkTask` — with Kafka's life cycle, config definitions and contexts.
//! - [`worker`]: the standalone worker that runs connectors and their tasks on a cluster,
//!   with source offsets in a local file and sink offsets committed in the connector's group;
//!   connectors can be paused, resumed, stopped, restarted and their offsets altered.
//! - [`rest`]: Kafka Connect's REST API on a worker, and a client of it.
//! - [`properties`]: worker and connector config files (Java properties, JSON).
//!
//! ```
//! use sluice_connect::converter::{Converter, JsonConverter};
//! use sluice_connect::data::{Schema, SchemaBuilder, Struct, Type, Value};
//!
//! let schema = SchemaBuilder::struct_()
//!     .name("user")
//!     .field("name", Schema::primitive(Type::String))
//!     .build()?;
//! let mut user = Struct::new(schema.clone());
//! user.put("name", "ann".into())?;
//! let json = JsonConverter::new(true).from_connect_data("users", Some(&schema), &Value::Struct(user))?;
//! assert_eq!(
//!     std::str::from_utf8(json.as_deref().unwrap()).unwrap(),
//!     r#"{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"name"}],"optional":false,"name":"user"},"payload":{"name":"ann"}}"#
//! );
//! # Ok::<(), sluice_connect::ConnectError>(())
//! ```

pub mod connector;
pub mod converter;
pub mod data;
pub mod distributed;
mod error;
pub mod herder;
pub mod properties;
pub mod record;
pub mod rest;
pub mod transforms;
pub mod worker;

pub use error::{ConnectError, Result};
pub use record::{ConnectRecord, Header, Headers};
