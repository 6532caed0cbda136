//! Session windows in the test driver: sessions grow, merge when a record bridges them
//! (the merged-away ones deleted downstream), and late records are dropped and counted.

use std::time::Duration;

use sluice_streams::serdes::{I64Serde, OptionSerde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, Materialized, Produced, SessionWindowedSerde, SessionWindows,
    StreamsBuilder, TestInputTopic, TestOutputTopic, TopologyTestDriver, Window, Windowed,
};

fn session(key: &str, start: i64, end: i64) -> Windowed<String> {
    Windowed {
        key: key.to_string(),
        window: Window { start, end },
    }
}

#[test]
fn sessions_grow_merge_and_close() {
    let builder = StreamsBuilder::new();
    let sessions = builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with_key(StringSerde))
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_millis(10),
            Duration::from_millis(10),
        ));
    sessions
        // A day's retention keeps the closed sessions readable below (by default they go
        // once gap plus grace has passed).
        .count(
            Materialized::counts()
                .named("sessions")
                .with_retention(Duration::from_secs(86_400)),
        )
        .to_stream_with_tombstones()
        .to(
            "session-counts",
            Produced::with(
                SessionWindowedSerde::new(StringSerde),
                OptionSerde(I64Serde),
            ),
        );
    sessions
        .reduce(|a, b| format!("{a},{b}"), Materialized::with(StringSerde))
        .to_stream()
        .to(
            "session-pages",
            Produced::with(SessionWindowedSerde::new(StringSerde), StringSerde),
        );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let clicks = TestInputTopic::new("clicks", StringSerde, StringSerde);
    for (key, page, at) in [
        ("u", "a", 0),
        ("u", "b", 5),
        ("u", "c", 30),
        // Out of order, within the grace period: a session of its own.
        ("u", "d", 18),
        // Bridges [18, 18] and [30, 30].
        ("u", "e", 24),
        ("v", "f", 25),
        // Would extend [0, 5], closed since stream time passed 5 + 10 + 10.
        ("u", "late", 2),
    ] {
        driver
            .pipe_input(&clicks, &key.to_string(), &page.to_string(), at)
            .unwrap();
    }
    let output = TestOutputTopic::new(
        "session-counts",
        SessionWindowedSerde::new(StringSerde),
        OptionSerde(I64Serde),
    );
    assert_eq!(
        driver.read_key_values(&output).unwrap(),
        vec![
            (session("u", 0, 0), Some(1)),
            (session("u", 0, 0), None),
            (session("u", 0, 5), Some(2)),
            (session("u", 30, 30), Some(1)),
            (session("u", 18, 18), Some(1)),
            (session("u", 18, 18), None),
            (session("u", 30, 30), None),
            (session("u", 18, 30), Some(3)),
            (session("v", 25, 25), Some(1)),
        ]
    );
    let pages = TestOutputTopic::new(
        "session-pages",
        SessionWindowedSerde::new(StringSerde),
        StringSerde,
    );
    let pages = driver.read_key_values(&pages).unwrap();
    assert_eq!(
        pages[pages.len() - 2],
        (session("u", 18, 30), "d,c,e".to_string())
    );
    // Each of the two aggregations dropped the late record.
    assert_eq!(driver.dropped_records(), 2);
    let store = driver
        .key_value_store("sessions", SessionWindowedSerde::new(StringSerde), I64Serde)
        .unwrap();
    assert_eq!(
        store.all().unwrap(),
        vec![
            (session("u", 0, 5), 2),
            (session("u", 18, 30), 3),
            (session("v", 25, 25), 1),
        ]
    );
    // Kafka's findSessions: u's sessions ending at 10 or later and starting by 20.
    let found = store
        .fetch_sessions(&"u".to_string(), &StringSerde, 10, 20)
        .unwrap();
    assert_eq!(found, vec![(Window { start: 18, end: 30 }, 3)]);
    let all_of_u = store
        .fetch_sessions(&"u".to_string(), &StringSerde, 0, i64::MAX)
        .unwrap();
    assert_eq!(all_of_u.len(), 2);
}
