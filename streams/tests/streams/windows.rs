//! Windowed aggregations, run by the test driver: tumbling and hopping windows, grace, late
//! records dropped and counted, windowed keys as Kafka writes them.

use std::time::Duration;

use sluice_streams::serdes::{I64Serde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, TestInputTopic, TestOutputTopic,
    TimeWindows, TopologyTestDriver, Window, Windowed, WindowedSerde,
};

fn clicks(
    windows: TimeWindows,
    size: Duration,
) -> (TopologyTestDriver, TestOutputTopic<Windowed<String>, i64>) {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with_key(StringSerde))
        .windowed_by(windows)
        .count(Materialized::counts().named("clicks-per-window"))
        .to_stream()
        .to(
            "counts",
            Produced::with(WindowedSerde::new(StringSerde, size), I64Serde),
        );
    let driver = TopologyTestDriver::new(builder.build().unwrap());
    (
        driver,
        TestOutputTopic::new("counts", WindowedSerde::new(StringSerde, size), I64Serde),
    )
}

fn pipe(driver: &mut TopologyTestDriver, records: &[(&str, i64)]) {
    let input = TestInputTopic::new("clicks", StringSerde, StringSerde);
    for (key, timestamp) in records {
        driver
            .pipe_input(&input, &key.to_string(), &"/".to_string(), *timestamp)
            .unwrap();
    }
}

fn w(key: &str, start: i64, end: i64) -> Windowed<String> {
    Windowed {
        key: key.to_string(),
        window: Window { start, end },
    }
}

#[test]
fn tumbling_windows_count_per_key_and_drop_records_after_the_grace_period() {
    let size = Duration::from_millis(10);
    let (mut driver, out) = clicks(
        TimeWindows::of_size_and_grace(size, Duration::from_millis(5)),
        size,
    );
    // 12 is in window [10, 20); 3 is late but within grace (stream time 12 < 10 + 5);
    // after 16, window [0, 10) is closed: a record at 4 is dropped.
    pipe(
        &mut driver,
        &[
            ("ann", 1),
            ("ann", 5),
            ("bob", 7),
            ("ann", 12),
            ("ann", 3),
            ("ann", 16),
            ("ann", 4),
        ],
    );
    let updates = driver.read_key_values(&out).unwrap();
    assert_eq!(
        updates,
        vec![
            (w("ann", 0, 10), 1),
            (w("ann", 0, 10), 2),
            (w("bob", 0, 10), 1),
            (w("ann", 10, 20), 1),
            (w("ann", 0, 10), 3),
            (w("ann", 10, 20), 2),
        ]
    );
    assert_eq!(driver.dropped_records(), 1);
}

#[test]
fn hopping_windows_count_each_record_in_every_window_it_falls_in() {
    let size = Duration::from_millis(10);
    let windows = TimeWindows::of_size_with_no_grace(size).advance_by(Duration::from_millis(5));
    let (mut driver, out) = clicks(windows, size);
    pipe(&mut driver, &[("ann", 7), ("ann", 12)]);
    let updates = driver.read_key_values(&out).unwrap();
    assert_eq!(
        updates,
        vec![
            (w("ann", 0, 10), 1),
            (w("ann", 5, 15), 1),
            (w("ann", 5, 15), 2),
            (w("ann", 10, 20), 1)
        ]
    );
    // The store holds one entry per key and window.
    let store = driver
        .key_value_store("clicks-per-window", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(store.approximate_num_entries(), 3);
    // Kafka's window fetch: a key's aggregates by window start, in a time range.
    assert_eq!(
        store
            .fetch_windows(&"ann".to_string(), &StringSerde, 0, 10)
            .unwrap(),
        vec![(0, 1), (5, 2), (10, 1)]
    );
    assert_eq!(
        store
            .fetch_windows(&"ann".to_string(), &StringSerde, 4, 9)
            .unwrap(),
        vec![(5, 2)]
    );
    assert!(store
        .fetch_windows(&"bob".to_string(), &StringSerde, 0, 100)
        .unwrap()
        .is_empty());
}

#[test]
fn nexmark_q5_names_each_windows_hottest_auction() {
    use sluice_streams::nexmark::{self, AuctionCount, AuctionCountSerde, Bid, BidSerde};
    let builder = StreamsBuilder::new();
    nexmark::q5(&builder, "bids", "hot-items", false);
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let bids = TestInputTopic::new("bids", I64Serde, BidSerde);
    for (auction, at) in [(1, 100), (2, 200), (1, 300), (2, 400), (2, 500), (1, 2_100)] {
        let bid = Bid {
            auction,
            bidder: 7,
            price: 100,
            channel: "Google".into(),
            url: String::new(),
            date_time: at,
        };
        // The bid's own time counts, not the record's.
        driver.pipe_input(&bids, &auction, &bid, 0).unwrap();
    }
    let output = TestOutputTopic::new("hot-items", I64Serde, AuctionCountSerde);
    let mut last = std::collections::BTreeMap::new();
    for (start, hot) in driver.read_key_values(&output).unwrap() {
        last.insert(start, hot);
    }
    // Window 0 ends in a tie at three bids each: the lower id wins.
    let hot = |auction, count| AuctionCount { auction, count };
    assert_eq!(last, [(0, hot(1, 3)), (2_000, hot(1, 1))].into());
}

#[test]
fn sliding_windows_end_at_each_record_and_start_after_each() {
    use sluice_streams::SlidingWindows;
    let builder = StreamsBuilder::new();
    let d = Duration::from_millis(10);
    builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with_key(StringSerde))
        .windowed_by_sliding(
            SlidingWindows::of_time_difference_and_grace(d, Duration::from_millis(100)),
            StringSerde,
        )
        .count(Materialized::counts().named("sliding-counts"))
        .to_stream()
        .to(
            "counts",
            Produced::with(WindowedSerde::new(StringSerde, d), I64Serde),
        );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let clicks = TestInputTopic::new("clicks", StringSerde, StringSerde);
    let output = TestOutputTopic::new("counts", WindowedSerde::new(StringSerde, d), I64Serde);
    let mut pipe = |at: i64| -> Vec<(i64, i64, i64)> {
        driver
            .pipe_input(&clicks, &"a".to_string(), &"/".to_string(), at)
            .unwrap();
        let mut updates: Vec<(i64, i64, i64)> = driver
            .read_key_values(&output)
            .unwrap()
            .into_iter()
            .map(|(w, n)| (w.window.start, w.window.end, n))
            .collect();
        updates.sort();
        updates
    };
    // Early records share the window [0, d].
    assert_eq!(pipe(5), vec![(0, 10, 1)]);
    // 8 joins [0, 10] and opens the window right after 5.
    assert_eq!(pipe(8), vec![(0, 10, 2), (6, 16, 1)]);
    assert_eq!(pipe(20), vec![(10, 20, 1)]);
    // Out of order: 12 lands in every window that spans it, and makes its own two.
    assert_eq!(
        pipe(12),
        vec![(2, 12, 3), (6, 16, 2), (9, 19, 1), (10, 20, 2), (13, 23, 1)]
    );
    // Far past the grace period: its windows are closed.
    assert_eq!(pipe(300), vec![(290, 300, 1)]);
    assert_eq!(pipe(1), vec![]);
    assert_eq!(driver.dropped_records(), 1);
    // The records no open window reaches were purged: only 300 is kept.
    let records = driver
        .key_value_store(
            "sliding-counts-records",
            sluice_streams::serdes::BytesSerde,
            sluice_streams::serdes::BytesSerde,
        )
        .unwrap();
    assert_eq!(records.approximate_num_entries(), 1);
}

#[test]
fn windows_past_their_retention_leave_the_store_and_the_changelog() {
    use sluice_streams::{SessionWindowedSerde, SessionWindows};
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream("clicks", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with_key(StringSerde));
    let ten = Duration::from_millis(10);
    grouped
        .windowed_by(TimeWindows::of_size_with_no_grace(ten))
        .count(
            Materialized::counts()
                .named("windows")
                .with_retention(Duration::from_millis(50)),
        );
    grouped
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(ten))
        .count(
            Materialized::counts()
                .named("sessions")
                .with_retention(Duration::from_millis(50)),
        );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let clicks = TestInputTopic::new("clicks", StringSerde, StringSerde);
    for (key, at) in [("a", 0), ("a", 30), ("b", 100)] {
        driver
            .pipe_input(&clicks, &key.to_string(), &"/".to_string(), at)
            .unwrap();
    }
    // Stream time 100, retention 50: what ended before 50 is gone.
    let windows = driver
        .key_value_store("windows", WindowedSerde::new(StringSerde, ten), I64Serde)
        .unwrap();
    let starts: Vec<(String, i64)> = windows
        .all()
        .unwrap()
        .into_iter()
        .map(|(w, _)| (w.key, w.window.start))
        .collect();
    assert_eq!(starts, vec![("b".to_string(), 100)]);
    let sessions = driver
        .key_value_store("sessions", SessionWindowedSerde::new(StringSerde), I64Serde)
        .unwrap();
    assert_eq!(sessions.approximate_num_entries(), 1);
    let changelog = driver.read_raw("topology-test-driver-windows-changelog");
    assert_eq!(changelog.iter().filter(|r| r.value.is_none()).count(), 2);
}
