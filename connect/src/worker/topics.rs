//! The topics each connector uses (KIP-558): a source's tasks record every topic they produce
//! to, a sink's every topic they consume from, so `GET /connectors/{name}/topics` can say
//! which topics a connector touched since it was created or last reset.
//!
//! A standalone worker keeps them in memory. A distributed worker also writes each newly seen
//! topic to the status topic (`status-topic-<topic>:connector-<name>` →
//! `{"topic": {"name", "connector", "task", "discoverTimestamp"}}`, Kafka Connect's records),
//! and reads every worker's from it, so any worker answers; a reset writes tombstones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;

/// A topic newly seen by a task, to be shared with the other workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicUse {
    /// The connector.
    pub connector: String,
    /// The topic.
    pub topic: String,
    /// The task that saw it first.
    pub task: usize,
}

/// The topics of every connector this worker knows of.
#[derive(Debug, Default)]
pub struct ActiveTopics {
    by_connector: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Bumped by every reset, so that tasks forget the topics they already reported.
    resets: AtomicU64,
    /// Where newly seen topics go to be shared (a distributed worker's status writer).
    shared: Mutex<Option<mpsc::UnboundedSender<TopicUse>>>,
}

impl ActiveTopics {
    /// The topics `connector` has used, sorted.
    pub fn topics(&self, connector: &str) -> Vec<String> {
        self.by_connector
            .lock()
            .get(connector)
            .map(|topics| topics.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets `connector`'s topics (a reset, or its deletion).
    pub fn reset(&self, connector: &str) {
        self.by_connector.lock().remove(connector);
        self.resets.fetch_add(1, Ordering::AcqRel);
    }

    /// Sends newly seen topics to `sink` from now on.
    pub(crate) fn share_with(&self, sink: mpsc::UnboundedSender<TopicUse>) {
        *self.shared.lock() = Some(sink);
    }

    /// Stops sharing newly seen topics (the writer's channel closes).
    pub(crate) fn stop_sharing(&self) {
        *self.shared.lock() = None;
    }

    /// A task of `connector` uses `topic`.
    fn record(&self, connector: &str, topic: &str, task: usize) {
        if self.learn(connector, topic) {
            if let Some(sink) = self.shared.lock().as_ref() {
                let _ = sink.send(TopicUse {
                    connector: connector.to_string(),
                    topic: topic.to_string(),
                    task,
                });
            }
        }
    }

    /// Notes that `connector` uses `topic` (also what another worker recorded, read from the
    /// status topic); true when it is new.
    pub(crate) fn learn(&self, connector: &str, topic: &str) -> bool {
        self.by_connector
            .lock()
            .entry(connector.to_string())
            .or_default()
            .insert(topic.to_string())
    }

    /// A tombstone read from the status topic: `topic` is no longer `connector`'s.
    pub(crate) fn unlearn(&self, connector: &str, topic: &str) {
        let mut all = self.by_connector.lock();
        if let Some(topics) = all.get_mut(connector) {
            topics.remove(topic);
            if topics.is_empty() {
                all.remove(connector);
            }
        }
        drop(all);
        self.resets.fetch_add(1, Ordering::AcqRel);
    }
}

/// One task's record of the topics it has reported, so that a record costs an atomic load
/// and a comparison, not a lock.
#[derive(Debug, Default)]
pub(crate) struct TaskTopics {
    seen: Vec<String>,
    resets: u64,
}

impl TaskTopics {
    /// Notes that task `task` of `connector` uses `topic`.
    pub(crate) fn note(
        &mut self,
        active: &ActiveTopics,
        connector: &str,
        task: usize,
        topic: &str,
    ) {
        let resets = active.resets.load(Ordering::Acquire);
        if resets != self.resets {
            self.seen.clear();
            self.resets = resets;
        }
        // The last topic first: most records share their predecessor's.
        if self.seen.last().is_some_and(|t| t == topic) {
            return;
        }
        if let Some(i) = self.seen.iter().position(|t| t == topic) {
            let last = self.seen.len() - 1;
            self.seen.swap(i, last);
            return;
        }
        active.record(connector, topic, task);
        self.seen.push(topic.to_string());
    }
}

/// The status-topic key of `topic` used by `connector` (Kafka's
/// `status-topic-<t>:connector-<c>`; topic names cannot hold a `:`, so it splits back).
pub(crate) fn status_key(topic: &str, connector: &str) -> String {
    format!("status-topic-{topic}:connector-{connector}")
}

/// The topic and connector of a status-topic key, if it is one of these.
pub(crate) fn parse_status_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("status-topic-")?.split_once(":connector-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_report_each_topic_once_until_a_reset() {
        let active = ActiveTopics::default();
        let (sink, mut shared) = mpsc::unbounded_channel();
        active.share_with(sink);
        let mut task = TaskTopics::default();
        for topic in ["a", "a", "b", "a", "b"] {
            task.note(&active, "c", 0, topic);
        }
        assert_eq!(active.topics("c"), ["a", "b"]);
        let first = shared.try_recv().unwrap();
        assert_eq!((first.topic.as_str(), first.task), ("a", 0));
        assert_eq!(shared.try_recv().unwrap().topic, "b");
        assert!(shared.try_recv().is_err(), "each topic is shared once");

        active.reset("c");
        assert!(active.topics("c").is_empty());
        task.note(&active, "c", 0, "b");
        assert_eq!(active.topics("c"), ["b"], "seen again after the reset");
        assert_eq!(shared.try_recv().unwrap().topic, "b");
    }

    #[test]
    fn status_keys_are_kafkas_and_split_back() {
        let key = status_key("orders-v1", "my-sink");
        assert_eq!(key, "status-topic-orders-v1:connector-my-sink");
        assert_eq!(parse_status_key(&key), Some(("orders-v1", "my-sink")));
        assert_eq!(parse_status_key("status-task-x-0"), None);
    }

    #[test]
    fn learned_topics_show_and_tombstones_remove_them() {
        let active = ActiveTopics::default();
        active.learn("c", "t");
        assert_eq!(active.topics("c"), ["t"]);
        active.unlearn("c", "t");
        assert!(active.topics("c").is_empty());
    }
}
