//! Grouping and aggregation, run by the test driver: counts, reductions and aggregates kept in
//! stores, logged to changelogs, queryable.

use bytes::Bytes;
use sluice_streams::serdes::{I64Serde, JsonSerde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, StreamsError, TestInputTopic,
    TestOutputTopic, TopologyTestDriver,
};

fn pipe(driver: &mut TopologyTestDriver, topic: &str, records: &[(&str, &str)]) {
    let input = TestInputTopic::new(topic, StringSerde, StringSerde);
    for (idx, (key, value)) in records.iter().enumerate() {
        driver
            .pipe_input(
                &input,
                &key.to_string(),
                &value.to_string(),
                100 + idx as i64,
            )
            .unwrap();
    }
}

#[test]
fn count_reduce_and_aggregate_per_key_with_queryable_stores() {
    let builder = StreamsBuilder::new();
    let views = builder.stream("views", Consumed::with(StringSerde, StringSerde));
    let grouped = views.group_by_key(Grouped::with_key(StringSerde));
    let counts = grouped.count(Materialized::counts().named("view-counts"));
    assert_eq!(counts.store_name(), Some("view-counts"));
    counts
        .to_stream()
        .to("counts", Produced::with(StringSerde, I64Serde));
    grouped
        .reduce(
            |longest, page| {
                if page.len() > longest.len() {
                    page
                } else {
                    longest
                }
            },
            Materialized::with(StringSerde).named("longest"),
        )
        .to_stream()
        .to("longest", Produced::with(StringSerde, StringSerde));
    grouped
        .aggregate(
            Vec::<String>::new,
            |_, page, mut pages| {
                pages.push(page);
                pages
            },
            Materialized::with(JsonSerde::<Vec<String>>::new()),
        )
        .to_stream()
        .map_values(|pages| pages.join(","))
        .to("pages", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    assert_eq!(topology.stores().len(), 3, "{:?}", topology.stores());
    let mut driver = TopologyTestDriver::with_application_id(topology, "views-app");
    pipe(
        &mut driver,
        "views",
        &[
            ("ann", "/a"),
            ("bob", "/home"),
            ("ann", "/about"),
            ("ann", "/b"),
        ],
    );

    // Every update goes downstream (no cache), with the input record's timestamp.
    let out = TestOutputTopic::new("counts", StringSerde, I64Serde);
    let updates = driver.read_output(&out).unwrap();
    assert_eq!(
        updates
            .iter()
            .map(|r| (r.key.as_str(), r.value, r.timestamp))
            .collect::<Vec<_>>(),
        vec![
            ("ann", 1, 100),
            ("bob", 1, 101),
            ("ann", 2, 102),
            ("ann", 3, 103)
        ]
    );
    let longest = TestOutputTopic::new("longest", StringSerde, StringSerde);
    let last: Vec<(String, String)> = driver.read_key_values(&longest).unwrap();
    assert_eq!(
        last.last().unwrap(),
        &("ann".to_string(), "/about".to_string())
    );
    let pages = TestOutputTopic::new("pages", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&pages).unwrap().last().unwrap().1,
        "/a,/about,/b"
    );

    // The stores answer point and full queries.
    let store = driver
        .key_value_store("view-counts", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(store.get(&"ann".to_string()).unwrap(), Some(3));
    assert_eq!(store.get(&"carl".to_string()).unwrap(), None);
    assert_eq!(
        store.all().unwrap(),
        vec![("ann".to_string(), 3), ("bob".to_string(), 1)]
    );
    assert_eq!(store.approximate_num_entries(), 2);
    assert_eq!(
        store.range(&"a".to_string(), &"az".to_string()).unwrap(),
        vec![("ann".to_string(), 3)]
    );
    assert!(store
        .range(&"z".to_string(), &"a".to_string())
        .unwrap()
        .is_empty());
    assert!(driver
        .key_value_store("nothing", StringSerde, I64Serde)
        .is_err());

    // Each update is logged to the store's changelog, on the task's partition, as bytes.
    let changelog = driver.read_raw("views-app-view-counts-changelog");
    assert_eq!(changelog.len(), 4);
    assert!(changelog.iter().all(|r| r.partition == Some(0)));
    assert_eq!(changelog[3].key, Some(Bytes::from("ann")));
    assert_eq!(
        changelog[3].value,
        Some(Bytes::copy_from_slice(&3i64.to_be_bytes()))
    );
}

#[test]
fn unnamed_stores_get_kafkas_generated_names_and_names_must_be_unique() {
    let builder = StreamsBuilder::new();
    let table = builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with_key(StringSerde))
        .count(Materialized::counts());
    let name = table.store_name().unwrap_or_default();
    assert!(name.starts_with("KSTREAM-AGGREGATE-STATE-STORE-"), "{name}");

    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .group_by_key(Grouped::with_key(StringSerde));
    grouped.count(Materialized::counts().named("same"));
    grouped.count(Materialized::counts().named("same"));
    let err = builder.build().unwrap_err();
    assert!(
        err.to_string().contains("store name same is used twice"),
        "{err}"
    );
}

#[test]
fn grouping_by_a_new_key_goes_through_a_repartition_topic() {
    // Word count: the classic. Words become keys, so the counts need a repartition.
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, word| word.clone(),
            Grouped::with(StringSerde, StringSerde).named("words"),
        )
        .count(Materialized::counts().named("word-counts"))
        .to_stream()
        .to("counts", Produced::with(StringSerde, I64Serde));
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.internal_topics(),
        vec!["words-repartition".to_string()]
    );
    assert_eq!(
        topology.subscribed_topics("wc"),
        vec!["lines".to_string(), "wc-words-repartition".to_string()]
    );
    let mut driver = TopologyTestDriver::with_application_id(topology, "wc");
    pipe(
        &mut driver,
        "lines",
        &[("1", "the cat"), ("2", "The dog"), ("3", "a cat")],
    );
    let counts = TestOutputTopic::new("counts", StringSerde, I64Serde);
    let updates = driver.read_key_values(&counts).unwrap();
    assert_eq!(
        updates,
        [
            ("the", 1),
            ("cat", 1),
            ("the", 2),
            ("dog", 1),
            ("a", 1),
            ("cat", 2)
        ]
        .map(|(w, n)| (w.to_string(), n))
        .to_vec()
    );
    // The words went through wc-words-repartition, keyed by word.
    let repartitioned = driver.read_raw("wc-words-repartition");
    assert_eq!(repartitioned.len(), 6);
    assert_eq!(repartitioned[0].key, Some(Bytes::from("the")));
    let store = driver
        .key_value_store("word-counts", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(store.get(&"cat".to_string()).unwrap(), Some(2));

    // group_by_key after a key change repartitions too; without a value serde it cannot.
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, value| value.clone())
        .group_by_key(Grouped::with_key(StringSerde))
        .count(Materialized::counts());
    let err = builder.build().unwrap_err();
    assert!(matches!(err, StreamsError::Topology(_)), "{err}");
    assert!(
        err.to_string()
            .contains("Grouped::with(key_serde, value_serde)"),
        "{err}"
    );
    // Keys kept (filter, map_values): no repartition at all.
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, StringSerde))
        .filter(|_, v| !v.is_empty())
        .map_values(|v| v.len() as i64)
        .group_by_key(Grouped::with_key(StringSerde))
        .reduce(|a, b| a + b, Materialized::with(I64Serde));
    assert!(builder.build().unwrap().internal_topics().is_empty());
}

#[test]
fn a_stored_value_that_does_not_deserialise_is_an_error_not_a_panic() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(StringSerde, I64Serde))
        .group_by_key(Grouped::with_key(StringSerde))
        .reduce(|a, b| a + b, Materialized::with(I64Serde).named("sums"));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let input = TestInputTopic::new("in", StringSerde, I64Serde);
    driver.pipe_input(&input, &"k".to_string(), &5, 1).unwrap();
    driver.pipe_input(&input, &"k".to_string(), &6, 2).unwrap();
    let sums = driver
        .key_value_store("sums", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(sums.get(&"k".to_string()).unwrap(), Some(11));
    // The same store read with the wrong value serde names the problem.
    let wrong = driver
        .key_value_store("sums", StringSerde, StringSerde)
        .unwrap();
    assert!(
        wrong.get(&"k".to_string()).is_ok(),
        "8 bytes are a valid (odd) UTF-8 string here"
    );
    let wrong = driver
        .key_value_store("sums", StringSerde, JsonSerde::<Vec<i64>>::new())
        .unwrap();
    let err = wrong.get(&"k".to_string()).unwrap_err();
    assert!(err.to_string().contains("sums"), "{err}");
}

#[test]
fn the_record_cache_forwards_one_update_per_key_and_commit() {
    let builder = StreamsBuilder::new();
    // Each line's words, under the line's key: one input record updates its key many times.
    let words = builder
        .stream("lines", Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .group_by_key(Grouped::with_key(StringSerde));
    words
        .count(Materialized::counts().named("cached"))
        .to_stream()
        .to("cached-counts", Produced::with(StringSerde, I64Serde));
    words
        .count(
            Materialized::counts()
                .named("uncached")
                .with_caching_disabled(),
        )
        .to_stream()
        .to("every-count", Produced::with(StringSerde, I64Serde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    pipe(
        &mut driver,
        "lines",
        &[("l1", "a b a a"), ("l2", "c"), ("l1", "d e")],
    );
    // The driver commits after each input record, as Kafka's does: the cache forwards each
    // key once per record, with its latest count.
    let cached = TestOutputTopic::new("cached-counts", StringSerde, I64Serde);
    let every = TestOutputTopic::new("every-count", StringSerde, I64Serde);
    assert_eq!(driver.read_key_values(&every).unwrap().len(), 7);
    let s = |v: &str| v.to_string();
    assert_eq!(
        driver.read_key_values(&cached).unwrap(),
        vec![(s("l1"), 4), (s("l2"), 1), (s("l1"), 6)]
    );
    // The changelog got the same one write per key and commit.
    let changelog = driver.read_raw("topology-test-driver-cached-changelog");
    assert_eq!(changelog.len(), 3);
}
