//! The stateless DSL, run by the test driver.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use sluice_streams::serdes::{I64Serde, JsonSerde, OptionSerde, StringSerde};
use sluice_streams::{
    Consumed, Produced, StreamsBuilder, StreamsError, TestInputTopic, TestOutputTopic,
    TopologyTestDriver,
};

fn strings(
    topic: &str,
) -> (
    TestInputTopic<String, String>,
    TestOutputTopic<String, String>,
) {
    (
        TestInputTopic::new(topic, StringSerde, StringSerde),
        TestOutputTopic::new(topic, StringSerde, StringSerde),
    )
}

fn pipe_all(
    driver: &mut TopologyTestDriver,
    input: &TestInputTopic<String, String>,
    records: &[(&str, &str)],
) {
    for (idx, (key, value)) in records.iter().enumerate() {
        driver
            .pipe_input(
                input,
                &key.to_string(),
                &value.to_string(),
                1_000 + idx as i64,
            )
            .unwrap();
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn filter_map_and_flat_map_transform_each_record() {
    let builder = StreamsBuilder::new();
    let lines = builder.stream("lines", Consumed::with(StringSerde, StringSerde));
    lines
        .flat_map_values(|line: String| line.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|_, word| !word.is_empty())
        .map(|key, word| (word.to_uppercase(), format!("{key}:{word}")))
        .to("words", Produced::with(StringSerde, StringSerde));
    lines
        .filter_not(|key, _| key == "skip")
        .map_values(|line| line.len() as i64)
        .to("lengths", Produced::with(StringSerde, I64Serde));
    lines
        .select_key(|_, line| line.split(' ').next().unwrap_or_default().to_string())
        .map_values_with_key(|key, line| format!("{key}|{line}"))
        .to("rekeyed", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let (input, _) = strings("lines");
    pipe_all(&mut driver, &input, &[("a", "x  y"), ("skip", "zz")]);
    let (_, words) = strings("words");
    assert_eq!(
        driver.read_key_values(&words).unwrap(),
        pairs(&[("X", "a:x"), ("Y", "a:y"), ("ZZ", "skip:zz")])
    );
    let lengths = TestOutputTopic::new("lengths", StringSerde, I64Serde);
    assert_eq!(
        driver.read_key_values(&lengths).unwrap(),
        vec![("a".to_string(), 4)]
    );
    let (_, rekeyed) = strings("rekeyed");
    let records = driver.read_output(&rekeyed).unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.key.clone(), r.value.clone()))
            .collect::<Vec<_>>(),
        pairs(&[("x", "x|x  y"), ("zz", "zz|zz")])
    );
    // Timestamps travel with the records.
    assert_eq!(
        records.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
        vec![1_000, 1_001]
    );
    // Reading again returns only what came since.
    assert!(driver.read_output(&rekeyed).unwrap().is_empty());
}

#[test]
fn map_values_with_timestamp_sees_each_records_time() {
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Consumed::with(StringSerde, StringSerde))
        .map_values_with_timestamp(|timestamp, line: String| format!("{timestamp}:{line}"))
        .to("stamped", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let (input, _) = strings("lines");
    pipe_all(&mut driver, &input, &[("a", "x"), ("b", "y")]);
    let (_, stamped) = strings("stamped");
    let records = driver.read_output(&stamped).unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.key.clone(), r.value.clone(), r.timestamp))
            .collect::<Vec<_>>(),
        vec![
            ("a".to_string(), "1000:x".to_string(), 1_000),
            ("b".to_string(), "1001:y".to_string(), 1_001)
        ]
    );
}

#[test]
fn flat_map_peek_foreach_and_merge() {
    let seen = Arc::new(AtomicUsize::new(0));
    let consumed = Arc::new(AtomicUsize::new(0));
    let builder = StreamsBuilder::new();
    let left = builder.stream("left", Consumed::with(StringSerde, StringSerde));
    let right = builder.stream("right", Consumed::with(StringSerde, StringSerde));
    let counter = seen.clone();
    left.merge(&right)
        .peek(move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .flat_map(|key, value| vec![(key.clone(), value.clone()), (value, key)])
        .to("merged", Produced::with(StringSerde, StringSerde));
    let counter = consumed.clone();
    right.foreach(move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    pipe_all(&mut driver, &strings("left").0, &[("l", "1")]);
    pipe_all(&mut driver, &strings("right").0, &[("r", "2"), ("r", "3")]);
    let (_, merged) = strings("merged");
    assert_eq!(
        driver.read_key_values(&merged).unwrap(),
        pairs(&[
            ("l", "1"),
            ("1", "l"),
            ("r", "2"),
            ("2", "r"),
            ("r", "3"),
            ("3", "r")
        ])
    );
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    assert_eq!(consumed.load(Ordering::Relaxed), 2);
}

#[test]
fn split_sends_each_record_to_the_first_matching_branch() {
    let builder = StreamsBuilder::new();
    let mut branches = builder
        .stream("numbers", Consumed::with(StringSerde, I64Serde))
        .split()
        .branch("negative", |_, n| *n < 0)
        .branch("small", |_, n| *n < 10)
        .default_branch("large");
    for name in ["negative", "small", "large"] {
        branches
            .remove(name)
            .unwrap()
            .to(name, Produced::with(StringSerde, I64Serde));
    }
    let without_default = builder
        .stream("more", Consumed::with(StringSerde, I64Serde))
        .split()
        .branch("even", |_, n| n % 2 == 0)
        .no_default_branch();
    without_default["even"].to("even", Produced::with(StringSerde, I64Serde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = TestInputTopic::new("numbers", StringSerde, I64Serde);
    let more = TestInputTopic::new("more", StringSerde, I64Serde);
    for (idx, n) in [-5i64, 3, 42, -1, 9, 10].iter().enumerate() {
        driver
            .pipe_input(&input, &"k".to_string(), n, idx as i64)
            .unwrap();
        driver
            .pipe_input(&more, &"k".to_string(), n, idx as i64)
            .unwrap();
    }
    let read = |driver: &mut TopologyTestDriver, topic: &str| -> Vec<i64> {
        let output = TestOutputTopic::new(topic, StringSerde, I64Serde);
        driver
            .read_key_values(&output)
            .unwrap()
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    };
    assert_eq!(read(&mut driver, "negative"), vec![-5, -1]);
    assert_eq!(read(&mut driver, "small"), vec![3, 9]);
    assert_eq!(read(&mut driver, "large"), vec![42, 10]);
    assert_eq!(read(&mut driver, "even"), vec![42, 10]);
}

#[test]
fn sinks_partition_with_their_partitioner_and_through_topics_feed_back() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .to(
            "by-length",
            Produced::with(StringSerde, StringSerde).with_partitioner(
                |key: &String, _: &String, partitions| key.len() as i32 % partitions,
            ),
        );
    // A topic written and read by the same topology: records come back and go on.
    builder
        .stream("by-length", Consumed::with(StringSerde, StringSerde))
        .map_values(|v| format!("{v}!"))
        .to("out", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.source_topics(),
        vec!["by-length".to_string(), "in".to_string()]
    );
    assert_eq!(
        topology.sink_topics(),
        vec!["by-length".to_string(), "out".to_string()]
    );
    let mut driver = TopologyTestDriver::new(topology);
    driver.set_partition_count("by-length", 3);
    pipe_all(&mut driver, &strings("in").0, &[("abcd", "1"), ("ab", "2")]);
    let partitions: Vec<Option<i32>> = driver
        .read_raw("by-length")
        .iter()
        .map(|r| r.partition)
        .collect();
    assert_eq!(partitions, vec![Some(1), Some(2)]);
    assert_eq!(
        driver.read_key_values(&strings("out").1).unwrap(),
        pairs(&[("abcd", "1!"), ("ab", "2!")])
    );
}

#[test]
fn timestamps_json_values_and_absent_payloads() {
    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    struct View {
        page: String,
        at: i64,
    }
    let builder = StreamsBuilder::new();
    builder
        .stream(
            "views",
            Consumed::with(OptionSerde(StringSerde), JsonSerde::<View>::new())
                .with_timestamp_extractor(|raw| {
                    serde_json::from_slice::<View>(raw.value.as_deref().unwrap_or_default())
                        .map_or(raw.timestamp, |view| view.at)
                }),
        )
        .map_values(|view| view.page)
        .to(
            "pages",
            Produced::with(OptionSerde(StringSerde), StringSerde),
        );
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = TestInputTopic::new("views", OptionSerde(StringSerde), JsonSerde::<View>::new());
    let view = View {
        page: "/home".into(),
        at: 77,
    };
    driver.pipe_input(&input, &None, &view, 5).unwrap();
    assert_eq!(driver.stream_time(), 77);
    let output = TestOutputTopic::new("pages", OptionSerde(StringSerde), StringSerde);
    let records = driver.read_output(&output).unwrap();
    assert_eq!(
        (
            records[0].key.clone(),
            records[0].value.as_str(),
            records[0].timestamp
        ),
        (None, "/home", 77)
    );
}

#[test]
fn bad_input_and_misuse_are_clear_errors() {
    let builder = StreamsBuilder::new();
    builder
        .stream("numbers", Consumed::with(StringSerde, I64Serde))
        .to("copy", Produced::with(StringSerde, I64Serde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    // Three bytes are no i64: the record's topic and part are named.
    let err = driver
        .pipe_raw(
            "numbers",
            Some(Bytes::from("k")),
            Some(Bytes::from_static(&[1, 2, 3])),
            Vec::new(),
            0,
        )
        .unwrap_err();
    assert!(
        matches!(&err, StreamsError::Serde { action: "deserialize", part: "value", topic, .. } if topic == "numbers"),
        "{err}"
    );
    assert!(err.to_string().contains("3 bytes, not 8"), "{err}");
    // A null key with a serde that has no absent value.
    let err = driver
        .pipe_raw(
            "numbers",
            None,
            Some(Bytes::from_static(&[0; 8])),
            Vec::new(),
            0,
        )
        .unwrap_err();
    assert!(err.to_string().contains("key"), "{err}");
    let err = driver
        .pipe_raw("elsewhere", None, None, Vec::new(), 0)
        .unwrap_err();
    assert!(
        matches!(err, StreamsError::UnknownTopic(ref t) if t == "elsewhere"),
        "{err}"
    );
    let err = driver
        .read_output(&TestOutputTopic::new("numbers", StringSerde, I64Serde))
        .unwrap_err();
    assert!(matches!(err, StreamsError::UnknownTopic(_)), "{err}");
    // The driver goes on after an error.
    driver
        .pipe_input(
            &TestInputTopic::new("numbers", StringSerde, I64Serde),
            &"k".to_string(),
            &7,
            1,
        )
        .unwrap();
    let copy = TestOutputTopic::new("copy", StringSerde, I64Serde);
    assert_eq!(
        driver.read_key_values(&copy).unwrap(),
        vec![("k".to_string(), 7)]
    );
    let err = StreamsBuilder::new().build().unwrap_err();
    assert!(err.to_string().contains("reads no topic"), "{err}");
}
