//! Suppression in the test driver: final results of windows once they close (by `suppress`
//! and by the emit strategy), rate limiting by a time limit, an early emit when the buffer is
//! full, and the build error for a table that has no windows.

use std::time::Duration;

use sluice_streams::serdes::{I64Serde, StringSerde};
use sluice_streams::{
    Consumed, EmitStrategy, Grouped, KStream, Materialized, Produced, StreamsBuilder, Suppressed,
    TestInputTopic, TestOutputTopic, TimeWindows, TopologyTestDriver, Window, Windowed,
    WindowedSerde,
};

fn ten_ms() -> Duration {
    Duration::from_millis(10)
}

fn windowed_serde() -> WindowedSerde<String> {
    WindowedSerde::new(StringSerde, ten_ms())
}

fn events(builder: &StreamsBuilder) -> KStream<String, String> {
    builder.stream("events", Consumed::with(StringSerde, StringSerde))
}

fn pipe(driver: &mut TopologyTestDriver, records: &[(&str, i64)]) {
    let input = TestInputTopic::new("events", StringSerde, StringSerde);
    for (key, at) in records {
        driver
            .pipe_input(&input, &key.to_string(), &"e".to_string(), *at)
            .unwrap();
    }
}

fn final_counts(driver: &mut TopologyTestDriver) -> Vec<(Windowed<String>, i64)> {
    let output = TestOutputTopic::new("final", windowed_serde(), I64Serde);
    driver.read_key_values(&output).unwrap()
}

fn at(key: &str, start: i64) -> Windowed<String> {
    Windowed {
        key: key.to_string(),
        window: Window {
            start,
            end: start + 10,
        },
    }
}

/// Records of two windows; the first closes at stream time 15, the second at 25.
const RECORDS: &[(&str, i64)] = &[("a", 1), ("a", 3), ("b", 4), ("a", 8), ("a", 12), ("a", 14)];

fn check_final_results(driver: &mut TopologyTestDriver) {
    pipe(driver, RECORDS);
    assert_eq!(final_counts(driver), vec![]);
    // Stream time reaches 15: the first window's results, final, once each.
    pipe(driver, &[("c", 15)]);
    assert_eq!(final_counts(driver), vec![(at("a", 0), 3), (at("b", 0), 1)]);
    // Too late for the closed window; the aggregation drops it.
    pipe(driver, &[("a", 9), ("z", 40)]);
    assert_eq!(
        final_counts(driver),
        vec![(at("a", 10), 2), (at("c", 10), 1)]
    );
    assert_eq!(driver.dropped_records(), 1);
}

#[test]
fn suppressed_windows_forward_their_final_result_once_they_close() {
    let builder = StreamsBuilder::new();
    events(&builder)
        .group_by_key(Grouped::with_key(StringSerde))
        .windowed_by(TimeWindows::of_size_and_grace(
            ten_ms(),
            Duration::from_millis(5),
        ))
        .count(Materialized::counts().named("counts"))
        .suppress(Suppressed::until_window_closes().with_name("final-counts"))
        .to_stream()
        .to("final", Produced::with(windowed_serde(), I64Serde));
    let topology = builder.build().unwrap();
    assert_eq!(topology.stores(), vec!["counts", "final-counts"]);
    let mut driver = TopologyTestDriver::new(topology);
    check_final_results(&mut driver);
    // What the buffer held went to its changelog, and was deleted from it when forwarded.
    let changelog = driver.read_raw("topology-test-driver-final-counts-changelog");
    assert!(changelog.iter().any(|r| r.value.is_none()), "{changelog:?}");
}

#[test]
fn the_on_window_close_emit_strategy_forwards_final_results_too() {
    let builder = StreamsBuilder::new();
    let counts = events(&builder)
        .group_by_key(Grouped::with_key(StringSerde))
        .windowed_by(TimeWindows::of_size_and_grace(
            ten_ms(),
            Duration::from_millis(5),
        ))
        .emit_strategy(EmitStrategy::on_window_close())
        .count(Materialized::counts().named("counts"));
    // The aggregation's store stays the table's, for queries.
    assert_eq!(counts.store_name(), Some("counts"));
    counts
        .to_stream()
        .to("final", Produced::with(windowed_serde(), I64Serde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    check_final_results(&mut driver);
}

#[test]
fn a_time_limit_forwards_each_keys_latest_update_at_most_once_per_limit() {
    let builder = StreamsBuilder::new();
    let counts = events(&builder)
        .group_by_key(Grouped::with_key(StringSerde))
        .count(Materialized::counts());
    counts
        .suppress(Suppressed::until_time_limit(ten_ms()))
        .to_stream()
        .to("limited", Produced::with(StringSerde, I64Serde));
    counts
        .suppress(Suppressed::until_time_limit(Duration::from_secs(1)).with_max_records(1))
        .to_stream()
        .to("bounded", Produced::with(StringSerde, I64Serde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    pipe(&mut driver, &[("a", 0), ("a", 5), ("b", 6), ("a", 10)]);
    let limited = TestOutputTopic::new("limited", StringSerde, I64Serde);
    assert_eq!(
        driver.read_key_values(&limited).unwrap(),
        vec![("a".to_string(), 3)]
    );
    pipe(&mut driver, &[("c", 20)]);
    assert_eq!(
        driver.read_key_values(&limited).unwrap(),
        vec![("b".to_string(), 1)]
    );
    // A buffer of one key lets the soonest due go early when a second key comes.
    let bounded = TestOutputTopic::new("bounded", StringSerde, I64Serde);
    assert_eq!(
        driver.read_key_values(&bounded).unwrap(),
        vec![
            ("a".to_string(), 2),
            ("b".to_string(), 1),
            ("a".to_string(), 3),
        ]
    );
}

#[test]
fn suppressing_until_windows_close_needs_a_windowed_aggregation() {
    let builder = StreamsBuilder::new();
    builder
        .stream("windowed", Consumed::with(windowed_serde(), I64Serde))
        .to_table(windowed_serde(), Materialized::with(I64Serde))
        .suppress(Suppressed::until_window_closes());
    let err = builder.build().unwrap_err();
    assert!(
        err.to_string()
            .contains("needs the table of a windowed aggregation"),
        "{err}"
    );
}
