//! `TimestampRouter`: topics named after the record's timestamp.

use super::date_format::DateFormat;
use super::{data_error, TransformConfig, Transformation};
use crate::error::Result;
use crate::record::ConnectRecord;

/// Kafka's `TimestampRouter`: the topic becomes `topic.format` (default
/// `${topic}-${timestamp}`) with `${topic}` the old topic and `${timestamp}` the record's
/// timestamp in `timestamp.format` (a SimpleDateFormat pattern, default `yyyyMMdd`, UTC). A
/// record without a timestamp is an error.
pub struct TimestampRouter {
    topic_format: String,
    timestamp_format: DateFormat,
}

impl TimestampRouter {
    /// From `topic.format` and `timestamp.format`.
    pub fn new(config: &TransformConfig) -> Result<TimestampRouter> {
        let topic_format = config
            .get("topic.format")
            .unwrap_or("${topic}-${timestamp}")
            .to_string();
        let pattern = config.get("timestamp.format").unwrap_or("yyyyMMdd");
        let timestamp_format = DateFormat::new(pattern)
            .map_err(|reason| config.error("timestamp.format", pattern, &reason))?;
        Ok(TimestampRouter {
            topic_format,
            timestamp_format,
        })
    }
}

impl Transformation for TimestampRouter {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let error = |message: String| data_error("TimestampRouter", &record.topic, message);
        let timestamp = record
            .timestamp
            .ok_or_else(|| error("the record has no timestamp".into()))?;
        let formatted = self.timestamp_format.format(timestamp).map_err(error)?;
        // Replaced in Kafka's order: the topic first, then the timestamp.
        record.topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &formatted);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_config;
    use super::*;
    use crate::data::{Schema, Type, Value};

    // 2024-03-05T07:08:09Z
    const MS: i64 = 1_709_622_489_000;

    #[test]
    fn topics_get_the_formatted_timestamp() {
        let router = TimestampRouter::new(&test_config(&[])).unwrap();
        let schemaless = ConnectRecord::new("logs", None, Value::Null).with_timestamp(MS);
        assert_eq!(
            router.apply(schemaless).unwrap().unwrap().topic,
            "logs-20240305"
        );
        let router = TimestampRouter::new(&test_config(&[
            ("topic.format", "${timestamp}.${topic}"),
            ("timestamp.format", "yyyy-MM-dd'T'HH"),
        ]))
        .unwrap();
        let schemad = ConnectRecord::new(
            "logs",
            Some(Schema::primitive(Type::Int32)),
            Value::Int32(1),
        )
        .with_timestamp(MS);
        let out = router.apply(schemad).unwrap().unwrap();
        assert_eq!(out.topic, "2024-03-05T07.logs");
        assert_eq!(out.value, Value::Int32(1));
    }

    #[test]
    fn a_record_without_timestamp_and_a_bad_format_are_errors() {
        let router = TimestampRouter::new(&test_config(&[])).unwrap();
        let err = router
            .apply(ConnectRecord::new("logs", None, Value::Null))
            .unwrap_err();
        assert!(err.to_string().contains("logs"), "{err}");
        assert!(err.to_string().contains("no timestamp"), "{err}");
        let err = TimestampRouter::new(&test_config(&[("timestamp.format", "yyyy-ww")]))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("transforms.t.timestamp.format"),
            "{err}"
        );
    }
}
