//! Kafka's predicates: `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`.

use std::sync::Arc;

use super::{Predicate, TransformConfig};
use crate::error::Result;
use crate::record::ConnectRecord;

pub(super) fn build(name: &str, config: &TransformConfig) -> Option<Result<Arc<dyn Predicate>>> {
    Some(match name {
        "TopicNameMatches" => TopicNameMatches::new(config).map(|p| Arc::new(p) as _),
        "HasHeaderKey" => HasHeaderKey::new(config).map(|p| Arc::new(p) as _),
        "RecordIsTombstone" => Ok(Arc::new(RecordIsTombstone) as _),
        _ => return None,
    })
}

/// Holds for records whose topic matches `pattern` as a whole (Java's `Matcher.matches`).
pub struct TopicNameMatches {
    pattern: regex::Regex,
}

impl TopicNameMatches {
    /// From `pattern` (required).
    pub fn new(config: &TransformConfig) -> Result<TopicNameMatches> {
        let pattern = config.required("pattern")?;
        let anchored = format!("^(?:{pattern})$");
        let pattern = regex::Regex::new(&anchored).map_err(|e| {
            config.error(
                "pattern",
                pattern,
                &format!("not a regular expression: {e}"),
            )
        })?;
        Ok(TopicNameMatches { pattern })
    }
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &ConnectRecord) -> bool {
        self.pattern.is_match(&record.topic)
    }
}

/// Holds for records with at least one header named `name`.
pub struct HasHeaderKey {
    name: String,
}

impl HasHeaderKey {
    /// From `name` (required).
    pub fn new(config: &TransformConfig) -> Result<HasHeaderKey> {
        Ok(HasHeaderKey {
            name: config.required("name")?.to_string(),
        })
    }
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.headers.last_with_name(&self.name).is_some()
    }
}

/// Holds for tombstones: records whose value is null.
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.value.is_null()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Schema, Type, Value};

    use crate::transforms::test_config as config;

    #[test]
    fn predicates_test_topics_headers_and_tombstones() {
        let topic = TopicNameMatches::new(&config(&[("pattern", "orders-.*")])).unwrap();
        let schema = Some(Schema::primitive(Type::String));
        assert!(topic.test(&ConnectRecord::new("orders-eu", schema.clone(), "v".into())));
        // The whole name must match.
        assert!(!topic.test(&ConnectRecord::new("old-orders-eu", None, Value::Null)));
        let err = TopicNameMatches::new(&config(&[("pattern", "(")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("transforms.t.pattern"), "{err}");

        let has = HasHeaderKey::new(&config(&[("name", "trace")])).unwrap();
        let mut record = ConnectRecord::new("t", schema, "v".into());
        assert!(!has.test(&record));
        record.headers.add("trace", None, Value::Null);
        assert!(has.test(&record));

        assert!(!RecordIsTombstone.test(&record));
        assert!(RecordIsTombstone.test(&ConnectRecord::new("t", None, Value::Null)));
    }
}
