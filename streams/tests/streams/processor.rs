//! The processor API in the test driver and on a node: a custom processor keeps counts in a
//! logged store and forwards them on stream-time and wall-clock punctuations.

use std::sync::Arc;
use std::time::Duration;

use sluice_streams::serdes::{I64Serde, StringSerde};

use crate::fixtures::{create, on_embedded_node, start_app};
use sluice_streams::{
    Consumed, Processor, ProcessorContext, Produced, PunctuationType, Record, ScheduleId,
    StreamsBuilder, TestInputTopic, TestOutputTopic, Topology, TopologyTestDriver,
};

/// Counts records per key in store `counts`; every 10 ms of stream time forwards each count,
/// every second of wall-clock time forwards how many records the task saw.
#[derive(Default)]
struct CountingProcessor {
    stream_schedule: Option<ScheduleId>,
    seen: i64,
}

impl Processor<String, String, String, i64> for CountingProcessor {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) {
        self.stream_schedule =
            Some(ctx.schedule(Duration::from_millis(10), PunctuationType::StreamTime));
        ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime);
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) {
        self.seen += 1;
        let Ok(mut store) = ctx.key_value_store("counts", &StringSerde, &I64Serde) else {
            return;
        };
        let count = store.get(&record.key).ok().flatten().unwrap_or(0) + 1;
        let _ = store.put(&record.key, &count, record.timestamp);
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        schedule: ScheduleId,
        timestamp: i64,
    ) {
        if Some(schedule) != self.stream_schedule {
            let seen = self.seen;
            ctx.forward(Record {
                key: "seen".to_string(),
                value: seen,
                timestamp,
                headers: Vec::new(),
            });
            return;
        }
        let counts = ctx
            .key_value_store("counts", &StringSerde, &I64Serde)
            .and_then(|store| store.all())
            .unwrap_or_default();
        for (key, value) in counts {
            ctx.forward(Record {
                key,
                value,
                timestamp,
                headers: Vec::new(),
            });
        }
    }
}

fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    builder.add_state_store("counts");
    builder
        .stream("events", Consumed::with(StringSerde, StringSerde))
        .process(CountingProcessor::default, &["counts"])
        .to("reports", Produced::with(StringSerde, I64Serde));
    builder.build().unwrap()
}

fn reports(driver: &mut TopologyTestDriver) -> Vec<(String, i64)> {
    let output = TestOutputTopic::new("reports", StringSerde, I64Serde);
    driver.read_key_values(&output).unwrap()
}

#[test]
fn punctuations_follow_stream_time_and_the_wall_clock() {
    let mut driver = TopologyTestDriver::new(topology());
    let events = TestInputTopic::new("events", StringSerde, StringSerde);
    let s = |v: &str| v.to_string();
    for (key, at) in [("a", 0), ("b", 3), ("a", 9)] {
        driver.pipe_input(&events, &s(key), &s("e"), at).unwrap();
    }
    // Stream time 9: the first stream-time punctuation is due at 10.
    assert_eq!(reports(&mut driver), vec![]);
    driver.pipe_input(&events, &s("a"), &s("e"), 10).unwrap();
    assert_eq!(reports(&mut driver), vec![(s("a"), 3), (s("b"), 1)]);
    // A jump over several intervals punctuates once.
    driver.pipe_input(&events, &s("b"), &s("e"), 45).unwrap();
    assert_eq!(reports(&mut driver), vec![(s("a"), 3), (s("b"), 2)]);
    driver.pipe_input(&events, &s("b"), &s("e"), 49).unwrap();
    assert_eq!(reports(&mut driver), vec![]);
    // The wall clock moves only when the test says so.
    driver
        .advance_wall_clock_time(Duration::from_millis(999))
        .unwrap();
    assert_eq!(reports(&mut driver), vec![]);
    driver
        .advance_wall_clock_time(Duration::from_millis(1))
        .unwrap();
    assert_eq!(reports(&mut driver), vec![(s("seen"), 6)]);
    // The store is logged like the DSL's.
    let changelog = driver.read_raw("topology-test-driver-counts-changelog");
    assert_eq!(changelog.len(), 6);
    let store = driver
        .key_value_store("counts", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(store.get(&s("b")).unwrap(), Some(3));
}

/// Tags each record with where it came from (`record_position`); its one schedule cancels
/// itself the first time it runs.
#[derive(Default)]
struct PositionProcessor;

impl Processor<String, String, String, String> for PositionProcessor {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, String>) {
        ctx.schedule(Duration::from_millis(10), PunctuationType::StreamTime);
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) {
        let (topic, partition, offset) = ctx.record_position();
        let value = format!("{topic}-{partition}@{offset}");
        ctx.forward(Record {
            key: record.key,
            value,
            timestamp: record.timestamp,
            headers: Vec::new(),
        });
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        schedule: ScheduleId,
        timestamp: i64,
    ) {
        ctx.cancel(schedule);
        ctx.forward(Record {
            key: "punctuated".to_string(),
            value: timestamp.to_string(),
            timestamp,
            headers: Vec::new(),
        });
    }
}

#[test]
fn processors_see_each_records_position_and_a_cancelled_schedule_stops() {
    let builder = StreamsBuilder::new();
    builder
        .stream("events", Consumed::with(StringSerde, StringSerde))
        .process(|| PositionProcessor, &[])
        .to("tagged", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let events = TestInputTopic::new("events", StringSerde, StringSerde);
    for (key, at) in [("a", 0), ("b", 10), ("c", 20), ("d", 45)] {
        driver
            .pipe_input(&events, &key.to_string(), &"e".to_string(), at)
            .unwrap();
    }
    let output = TestOutputTopic::new("tagged", StringSerde, StringSerde);
    let tagged = driver.read_key_values(&output).unwrap();
    let expected: Vec<(String, String)> = [
        ("a", "events-0@0"),
        ("b", "events-0@1"),
        // Due at stream time 10, then cancelled: 20 and 45 punctuate nothing.
        ("punctuated", "10"),
        ("c", "events-0@2"),
        ("d", "events-0@3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(tagged, expected);
}

#[test]
fn a_processor_may_only_use_stores_that_were_added() {
    let builder = StreamsBuilder::new();
    builder
        .stream("events", Consumed::with(StringSerde, StringSerde))
        .process(CountingProcessor::default, &["counts"])
        .to("reports", Produced::with(StringSerde, I64Serde));
    let err = builder.build().unwrap_err();
    assert!(err.to_string().contains("store counts"), "{err}");
}

#[test]
fn wall_clock_punctuations_run_on_a_node_without_new_records() {
    on_embedded_node(|client| async move {
        create(&client, "events", 1).await;
        create(&client, "reports", 1).await;
        let extra = [("consumer.fetch.max.wait.ms", "50")];
        let app = start_app(&client, Arc::new(topology()), "punctuating", &extra).await;
        // No record ever arrives: the wall clock alone makes the task report, once a second.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while client.list_offset("reports", 0, -1).await.unwrap() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no punctuation came"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.close().await.unwrap();
    });
}

#[test]
fn a_processors_store_can_be_kept_on_disk() {
    let builder = StreamsBuilder::new();
    builder.add_persistent_state_store("counts");
    builder
        .stream("events", Consumed::with(StringSerde, StringSerde))
        .process(CountingProcessor::default, &["counts"])
        .to("reports", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    assert!(topology.is_persistent("counts"));
    // The test driver keeps it in memory, and it works as before.
    let mut driver = TopologyTestDriver::new(topology);
    let events = TestInputTopic::new("events", StringSerde, StringSerde);
    driver
        .pipe_input(&events, &"a".to_string(), &"e".to_string(), 10)
        .unwrap();
    let store = driver
        .key_value_store("counts", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(store.get(&"a".to_string()).unwrap(), Some(1));
}
