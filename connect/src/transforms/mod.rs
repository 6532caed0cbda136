//! Single message transforms (SMTs) and predicates, with Kafka Connect's class names and
//! configs, and the chain a connector's `transforms` / `predicates` properties build.
//!
//! ```text
//! transforms=addSource,route
//! transforms.addSource.type=org.apache.kafka.connect.transforms.InsertField$Value
//! transforms.addSource.static.field=source
//! transforms.addSource.static.value=files
//! transforms.route.type=RegexRouter
//! transforms.route.regex=(.*)
//! transforms.route.replacement=copy-$1
//! transforms.route.predicate=isOrders
//! predicates=isOrders
//! predicates.isOrders.type=TopicNameMatches
//! predicates.isOrders.pattern=orders.*
//! ```
//!
//! A transform applies to keys or values as its class says (`InsertField$Key`,
//! `InsertField$Value`); with `predicate`, only to the records the predicate holds for (or, with
//! `negate=true`, does not).

mod fields;
mod headers;
mod predicates;
mod routing;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use predicates::{HasHeaderKey, RecordIsTombstone, TopicNameMatches};

use crate::error::{ConnectError, Result};
use crate::record::ConnectRecord;

/// A single message transform (Kafka Connect's `Transformation`).
pub trait Transformation: Send + Sync {
    /// The record changed, or `None` to drop it.
    fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>>;
}

/// A condition on records (Kafka Connect's `Predicate`).
pub trait Predicate: Send + Sync {
    /// Whether the predicate holds for `record`.
    fn test(&self, record: &ConnectRecord) -> bool;
}

/// Which part of a record a transform works on (the `$Key` / `$Value` of its class name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The key (and key schema).
    Key,
    /// The value (and value schema).
    Value,
}

/// The properties of one transform or predicate, with its alias for error messages.
#[derive(Debug, Clone)]
pub struct TransformConfig {
    prefix: String,
    props: BTreeMap<String, String>,
}

impl TransformConfig {
    /// The properties of the transform or predicate `prefix` names (`transforms.route`), without
    /// that prefix.
    pub fn new(prefix: &str, props: BTreeMap<String, String>) -> TransformConfig {
        TransformConfig {
            prefix: prefix.to_string(),
            props,
        }
    }

    /// The properties under `prefix.` in `all`.
    pub fn from_prefixed(prefix: &str, all: &BTreeMap<String, String>) -> TransformConfig {
        let dotted = format!("{prefix}.");
        let props = all
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|k| (k.to_string(), v.clone())))
            .collect();
        TransformConfig::new(prefix, props)
    }

    /// Property `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    /// Property `key`, which must be set and not empty.
    pub fn required(&self, key: &str) -> Result<&str> {
        match self.get(key).map(str::trim) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(self.error(key, "", "is required")),
        }
    }

    /// Property `key` as a comma-separated list (empty when unset).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(crate::connector::parse_list)
            .unwrap_or_default()
    }

    /// Property `key` as a boolean, `default` when unset.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => crate::converter::parse_bool_config(v)
                .ok_or_else(|| self.error(key, v, "expected true or false")),
        }
    }

    /// A config error for property `key` of this transform, named in full
    /// (`transforms.route.regex`).
    pub fn error(&self, key: &str, value: &str, reason: &str) -> ConnectError {
        ConnectError::config(&format!("{}.{key}", self.prefix), value, reason)
    }
}

/// The class name without Kafka's package, and the part its `$Key` / `$Value` suffix names.
fn short_name(class: &str) -> (&str, Option<Part>) {
    let class = class.trim();
    let (class, part) = match class.rsplit_once('$') {
        Some((base, "Key")) => (base, Some(Part::Key)),
        Some((base, "Value")) => (base, Some(Part::Value)),
        _ => (class, None),
    };
    (class.rsplit('.').next().unwrap_or(class), part)
}

/// The transform `class` names (Kafka's class names, with or without the package), built from
/// its config.
pub fn transformation(class: &str, config: &TransformConfig) -> Result<Box<dyn Transformation>> {
    let (name, part) = short_name(class);
    let built = headers::build(name, part, config)
        .or_else(|| fields::build(name, part, config))
        .or_else(|| routing::build(name, part, config));
    match built {
        Some(transform) => transform,
        None => Err(config.error(
            "type",
            class,
            "not a known transformation (Kafka's SMTs: InsertField$Value, RegexRouter, ...; those with $Key/$Value need the suffix)",
        )),
    }
}

/// The predicate `class` names, built from its config.
pub fn predicate(class: &str, config: &TransformConfig) -> Result<Arc<dyn Predicate>> {
    let (name, _) = short_name(class);
    match predicates::build(name, config) {
        Some(predicate) => predicate,
        None => Err(config.error(
            "type",
            class,
            "not a known predicate (TopicNameMatches, HasHeaderKey, RecordIsTombstone)",
        )),
    }
}

/// A struct builder with `schema`'s name, version, doc and parameters and no fields (Kafka's
/// `SchemaUtil.copySchemaBasics` onto `SchemaBuilder.struct()`: optionality is not copied, as
/// there).
pub(crate) fn struct_basics(schema: &crate::data::Schema) -> crate::data::SchemaBuilder {
    let mut builder = crate::data::SchemaBuilder::struct_()
        .maybe_name(schema.name.clone())
        .maybe_version(schema.version);
    if let Some(doc) = &schema.doc {
        builder = builder.doc(doc.clone());
    }
    for (key, value) in &schema.parameters {
        builder = builder.parameter(key.clone(), value.clone());
    }
    builder
}

/// The config of transform `transforms.t` with these properties, for tests.
#[cfg(test)]
pub(crate) fn test_config(pairs: &[(&str, &str)]) -> TransformConfig {
    let props = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TransformConfig::new("transforms.t", props)
}

/// A record that a transform with a `$Key` / `$Value` variant was named without one.
fn needs_part(config: &TransformConfig, name: &str, part: Option<Part>) -> Result<Part> {
    part.ok_or_else(|| {
        config.error(
            "type",
            name,
            &format!("say which part: {name}$Key or {name}$Value"),
        )
    })
}

struct Step {
    alias: String,
    transform: Box<dyn Transformation>,
    predicate: Option<(Arc<dyn Predicate>, bool)>,
}

/// A connector's transforms in order, each with its predicate.
#[derive(Default)]
pub struct TransformChain {
    steps: Vec<Step>,
}

impl std::fmt::Debug for TransformChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.steps.iter().map(|s| &s.alias))
            .finish()
    }
}

impl TransformChain {
    /// The chain a connector config's `transforms`, `transforms.<alias>.*`, `predicates` and
    /// `predicates.<alias>.*` properties describe; an unknown class, a missing setting or a
    /// predicate that is not declared is an error naming the property.
    pub fn from_config(props: &BTreeMap<String, String>) -> Result<TransformChain> {
        let aliases = |key: &str| -> Vec<String> {
            props
                .get(key)
                .map(|v| crate::connector::parse_list(v))
                .unwrap_or_default()
        };
        let mut declared: BTreeMap<String, Arc<dyn Predicate>> = BTreeMap::new();
        for alias in aliases("predicates") {
            let config = TransformConfig::from_prefixed(&format!("predicates.{alias}"), props);
            let class = config.required("type")?.to_string();
            declared.insert(alias, predicate(&class, &config)?);
        }
        let mut steps = Vec::new();
        for alias in aliases("transforms") {
            let config = TransformConfig::from_prefixed(&format!("transforms.{alias}"), props);
            let class = config.required("type")?.to_string();
            let transform = transformation(&class, &config)?;
            let predicate = match config.get("predicate").map(str::trim) {
                None | Some("") => None,
                Some(name) => {
                    let found = declared.get(name).cloned().ok_or_else(|| {
                        config.error(
                            "predicate",
                            name,
                            "is not one of the predicates declared in `predicates`",
                        )
                    })?;
                    Some((found, config.bool_or("negate", false)?))
                }
            };
            steps.push(Step {
                alias,
                transform,
                predicate,
            });
        }
        Ok(TransformChain { steps })
    }

    /// Runs `record` through the transforms in order; `None` once one drops it.
    pub fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        for step in &self.steps {
            if let Some((predicate, negate)) = &step.predicate {
                if predicate.test(&record) == *negate {
                    continue;
                }
            }
            match step.transform.apply(record) {
                Ok(Some(next)) => record = next,
                Ok(None) => return Ok(None),
                Err(err) => {
                    return Err(ConnectError::Data(format!(
                        "transform {}: {err}",
                        step.alias
                    )))
                }
            }
        }
        Ok(Some(record))
    }

    /// How many transforms there are.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Value;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_chain_runs_in_order_and_predicates_choose_the_records() {
        let chain = TransformChain::from_config(&props(&[
            ("transforms", "tag, drop"),
            (
                "transforms.tag.type",
                "org.apache.kafka.connect.transforms.InsertHeader",
            ),
            ("transforms.tag.header", "seen"),
            ("transforms.tag.value.literal", "yes"),
            ("transforms.drop.type", "DropHeaders"),
            ("transforms.drop.headers", "seen"),
            ("transforms.drop.predicate", "hasTrace"),
            ("transforms.drop.negate", "true"),
            ("predicates", "hasTrace"),
            (
                "predicates.hasTrace.type",
                "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
            ),
            ("predicates.hasTrace.name", "trace"),
        ]))
        .unwrap();
        assert_eq!(chain.len(), 2);
        // No trace header: the negated predicate holds, so the header is dropped again.
        let plain = ConnectRecord::new("t", None, Value::Null);
        let out = chain.apply(plain).unwrap().unwrap();
        assert!(out.headers.last_with_name("seen").is_none());
        // With a trace header the drop is skipped.
        let mut traced = ConnectRecord::new("t", None, Value::Null);
        traced.headers.add("trace", None, "1".into());
        let out = chain.apply(traced).unwrap().unwrap();
        assert_eq!(
            out.headers.last_with_name("seen").map(|h| &h.value),
            Some(&Value::String("yes".into()))
        );
    }

    #[test]
    fn bad_chains_name_the_property_at_fault() {
        let err = TransformChain::from_config(&props(&[
            ("transforms", "x"),
            ("transforms.x.type", "com.example.Nope"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("transforms.x.type"), "{err}");
        let err = TransformChain::from_config(&props(&[("transforms", "x")])).unwrap_err();
        assert!(err.to_string().contains("transforms.x.type"), "{err}");
        let err = TransformChain::from_config(&props(&[
            ("transforms", "x"),
            ("transforms.x.type", "DropHeaders"),
            ("transforms.x.headers", "a"),
            ("transforms.x.predicate", "missing"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("transforms.x.predicate"), "{err}");
        assert_eq!(
            short_name("org.apache.kafka.connect.transforms.InsertField$Value"),
            ("InsertField", Some(Part::Value))
        );
    }
}
