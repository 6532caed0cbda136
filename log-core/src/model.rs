//! The names every layer shares: a topic partition and its directory name.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A partition of a topic: the unit of ordering, storage and replication.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number, from 0.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition (names are validated where they enter: see [`validate_topic_name`]).
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from(topic),
            partition,
        }
    }

    /// The partition's directory name, `<topic>-<partition>`, as Kafka names it.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name `<topic>-<partition>` (the topic may itself contain '-').
    pub fn from_dir_name(name: &str) -> Result<TopicPartition> {
        let invalid = |reason: &str| Error::InvalidTopicPartition {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let (topic, partition) = name
            .rsplit_once('-')
            .ok_or_else(|| invalid("expected <topic>-<partition>"))?;
        let partition: i32 = partition
            .parse()
            .map_err(|_| invalid("partition is not a number"))?;
        if partition < 0 {
            return Err(invalid("negative partition"));
        }
        validate_topic_name(topic)?;
        Ok(TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Checks a topic name as Kafka does: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(topic: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidTopicPartition {
        name: topic.to_owned(),
        reason,
    };
    if topic.is_empty() {
        return Err(invalid("topic name is empty".into()));
    }
    if topic == "." || topic == ".." {
        return Err(invalid("topic name cannot be \".\" or \"..\"".into()));
    }
    if topic.len() > MAX_TOPIC_NAME_LEN {
        return Err(invalid(format!(
            "topic name is longer than {MAX_TOPIC_NAME_LEN} characters"
        )));
    }
    if topic
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        // Kafka's words, so that tools and tests see the same message from either broker.
        return Err(invalid(format!(
            "'{topic}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip_and_bad_names_are_rejected() {
        let tp = TopicPartition::new("my-topic.v2", 17);
        assert_eq!(tp.dir_name(), "my-topic.v2-17");
        assert_eq!(TopicPartition::from_dir_name("my-topic.v2-17").unwrap(), tp);
        assert!(TopicPartition::from_dir_name("topic").is_err());
        assert!(TopicPartition::from_dir_name("topic-x").is_err());
        assert!(TopicPartition::from_dir_name("-3").is_err());
        assert!(validate_topic_name("a b")
            .unwrap_err()
            .to_string()
            .contains("contains one or more characters other than ASCII alphanumerics"));
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name("..").is_err());
    }
}
