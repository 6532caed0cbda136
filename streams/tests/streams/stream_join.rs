//! KStream–KStream joins over time windows in the test driver: inner, left and outer, with
//! Kafka 3.1's semantics for records that never meet a partner, late records dropped.

use std::time::Duration;

use sluice_streams::serdes::StringSerde;
use sluice_streams::{
    Consumed, JoinWindows, KStream, Produced, StreamJoined, StreamsBuilder, TestInputTopic,
    TestOutputTopic, TopologyTestDriver,
};

type Streams = (KStream<String, String>, KStream<String, String>);

fn sides(builder: &StreamsBuilder) -> Streams {
    (
        builder.stream("left", Consumed::with(StringSerde, StringSerde)),
        builder.stream("right", Consumed::with(StringSerde, StringSerde)),
    )
}

fn joined(name: &str) -> StreamJoined<String, String, String> {
    StreamJoined::with(StringSerde, StringSerde, StringSerde).with_store_name(name)
}

fn show(value: Option<&String>) -> String {
    value.cloned().unwrap_or_else(|| "null".to_string())
}

/// Pipes `(side, value, timestamp)` records, all of key `k`.
fn pipe(driver: &mut TopologyTestDriver, records: &[(&str, &str, i64)]) {
    for (side, value, at) in records {
        let topic = TestInputTopic::new(side, StringSerde, StringSerde);
        driver
            .pipe_input(&topic, &"k".to_string(), &value.to_string(), *at)
            .unwrap();
    }
}

fn read(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(String, i64)> {
    let output = TestOutputTopic::new(topic, StringSerde, StringSerde);
    driver
        .read_output(&output)
        .unwrap()
        .into_iter()
        .map(|record| (record.value, record.timestamp))
        .collect()
}

const RECORDS: &[(&str, &str, i64)] = &[
    ("left", "a", 0),
    ("right", "x", 5),
    ("right", "x2", 5),
    ("left", "b", 20),
    ("right", "y", 25),
    ("right", "z", 100),
    // Late: its window closed when stream time reached 100.
    ("left", "c", 8),
    ("left", "d", 150),
    ("right", "w", 200),
];

fn ten_ms() -> JoinWindows {
    JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))
}

fn own(v: &(&str, i64)) -> (String, i64) {
    (v.0.to_string(), v.1)
}

#[test]
fn inner_joins_pair_records_of_a_key_within_the_window() {
    let builder = StreamsBuilder::new();
    let (left, right) = sides(&builder);
    left.join_stream(
        &right,
        |_, l, r| format!("{l}+{r}"),
        ten_ms(),
        joined("inner"),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.stores(),
        vec!["inner-other-join-store", "inner-this-join-store"]
    );
    assert_eq!(
        topology.copartition_groups("app"),
        vec![vec!["left", "right"]]
    );
    let mut driver = TopologyTestDriver::new(topology);
    pipe(&mut driver, RECORDS);
    let expected: Vec<_> = [("a+x", 5), ("a+x2", 5), ("b+y", 25)]
        .iter()
        .map(own)
        .collect();
    assert_eq!(read(&mut driver, "out"), expected);
    assert_eq!(driver.dropped_records(), 1);
    // Every record went to its side's store and changelog.
    let changelog = driver.read_raw("topology-test-driver-inner-this-join-store-changelog");
    assert!(changelog.len() >= 4, "{changelog:?}");
}

#[test]
fn left_joins_emit_a_lonely_record_only_after_its_window_closed() {
    let builder = StreamsBuilder::new();
    let (left, right) = sides(&builder);
    left.left_join_stream(
        &right,
        |_, l, r| format!("{l}+{}", show(r)),
        ten_ms(),
        joined("left-join"),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    // `a` waits, then meets `x`: never `a+null`.
    pipe(&mut driver, &RECORDS[..2]);
    assert_eq!(read(&mut driver, "out"), vec![("a+x".to_string(), 5)]);
    pipe(&mut driver, &RECORDS[2..8]);
    // `d` waits until stream time passes 150 + 10.
    let expected: Vec<_> = [("a+x2", 5), ("b+y", 25)].iter().map(own).collect();
    assert_eq!(read(&mut driver, "out"), expected);
    pipe(&mut driver, &RECORDS[8..]);
    assert_eq!(read(&mut driver, "out"), vec![("d+null".to_string(), 150)]);
}

#[test]
fn outer_joins_emit_lonely_records_of_both_sides() {
    let builder = StreamsBuilder::new();
    let (left, right) = sides(&builder);
    left.outer_join_stream(
        &right,
        |_, l, r| format!("{}+{}", show(l), show(r)),
        ten_ms(),
        joined("outer"),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    pipe(&mut driver, RECORDS);
    let expected: Vec<_> = [
        ("a+x", 5),
        ("a+x2", 5),
        ("b+y", 25),
        ("null+z", 100),
        ("d+null", 150),
    ]
    .iter()
    .map(own)
    .collect();
    assert_eq!(read(&mut driver, "out"), expected);
}

#[test]
fn asymmetric_windows_and_grace_decide_who_meets_whom() {
    let builder = StreamsBuilder::new();
    let (left, right) = sides(&builder);
    // A right record joins a left one from 0 to 10 ms after it; late ones for 20 ms more.
    let windows = JoinWindows::of_time_difference_and_grace(
        Duration::from_millis(0),
        Duration::from_millis(20),
    )
    .after(Duration::from_millis(10));
    left.join_stream(
        &right,
        |_, l, r| format!("{l}+{r}"),
        windows,
        joined("after"),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    pipe(
        &mut driver,
        &[
            ("left", "a", 100),
            ("right", "early", 95),
            ("right", "in", 105),
            ("right", "edge", 110),
            ("right", "past", 111),
            ("left", "b", 140),
            // Out of order but within the grace period: stream time 140 < 125 + 10 + 20.
            ("left", "c", 125),
            // Past it: 100 + 10 + 20 < 140.
            ("left", "late", 100),
        ],
    );
    let expected: Vec<_> = [("a+in", 105), ("a+edge", 110)].iter().map(own).collect();
    assert_eq!(read(&mut driver, "out"), expected);
    assert_eq!(driver.dropped_records(), 1);
}

#[test]
fn eager_windows_emit_an_unmatched_record_at_once_and_the_join_when_a_partner_comes() {
    let builder = StreamsBuilder::new();
    let (left, right) = sides(&builder);
    left.outer_join_stream(
        &right,
        |_, l, r| format!("{}+{}", show(l), show(r)),
        JoinWindows::of(Duration::from_millis(10)),
        joined("eager"),
    )
    .to("out", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    pipe(
        &mut driver,
        &[("left", "a", 0), ("right", "x", 5), ("right", "y", 50)],
    );
    assert_eq!(
        read(&mut driver, "out"),
        vec![
            (s("a+null"), 0),
            (s("a+x"), 5),
            // Nothing within 10 ms of 50 on the left: at once, not when the window closes.
            (s("null+y"), 50),
        ]
    );
}

fn s(v: &str) -> String {
    v.to_string()
}
