//! `Filter`: drops records.

use super::Transformation;
use crate::error::Result;
use crate::record::ConnectRecord;

/// Kafka's `Filter`: drops every record it is applied to; with a `predicate`, only the
/// records the predicate holds for.
pub struct Filter;

impl Transformation for Filter {
    fn apply(&self, _record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::data::{Schema, Type, Value};
    use crate::transforms::TransformChain;

    #[test]
    fn filter_drops_what_its_predicate_selects() {
        assert!(Filter
            .apply(ConnectRecord::new(
                "t",
                Some(Schema::primitive(Type::String)),
                "v".into()
            ))
            .unwrap()
            .is_none());
        let props: BTreeMap<String, String> = [
            ("transforms", "drop"),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.drop.predicate", "isTombstone"),
            ("predicates", "isTombstone"),
            ("predicates.isTombstone.type", "RecordIsTombstone"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let chain = TransformChain::from_config(&props).unwrap();
        assert!(chain
            .apply(ConnectRecord::new("t", None, Value::Null))
            .unwrap()
            .is_none());
        let kept = chain
            .apply(ConnectRecord::new("t", None, "v".into()))
            .unwrap();
        assert_eq!(kept.map(|r| r.value), Some(Value::String("v".into())));
    }
}
