//! Table operations in the test driver: updates as changes (filter, map_values, deletes),
//! table–table joins, and table aggregations that subtract what a row no longer contributes.

use bytes::Bytes;
use sluice_streams::serdes::{I64Serde, OptionSerde, StringSerde};
use sluice_streams::{
    Consumed, Grouped, KTable, Materialized, Produced, StreamsBuilder, TestInputTopic,
    TestOutputTopic, TopologyTestDriver,
};

fn s(v: &str) -> String {
    v.to_string()
}

fn table(builder: &StreamsBuilder, topic: &str) -> KTable<String, String> {
    builder.table(
        topic,
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde).named(&format!("{topic}-store")),
    )
}

/// Pipes `value` (None: a tombstone) for `key` into `topic`.
fn upsert(driver: &mut TopologyTestDriver, topic: &str, key: &str, value: Option<&str>, at: i64) {
    driver
        .pipe_raw(
            topic,
            Some(Bytes::copy_from_slice(key.as_bytes())),
            value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            Vec::new(),
            at,
        )
        .unwrap();
}

fn changelog(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(String, Option<String>)> {
    let output = TestOutputTopic::new(topic, StringSerde, OptionSerde(StringSerde));
    driver.read_key_values(&output).unwrap()
}

#[test]
fn filtered_and_mapped_tables_pass_deletes_on_and_serve_joins() {
    let builder = StreamsBuilder::new();
    let users = table(&builder, "users");
    let adults = users
        .filter(|_, age| age.parse::<u32>().is_ok_and(|age| age >= 18))
        .map_values(|name, age| format!("{name} is {age}"));
    assert_eq!(adults.store_name(), None);
    users
        .filter_not(|_, age| age.parse::<u32>().is_ok())
        .to_stream_with_tombstones()
        .to(
            "unreadable-ages",
            Produced::with(StringSerde, OptionSerde(StringSerde)),
        );
    adults.to_stream_with_tombstones().to(
        "adults",
        Produced::with(StringSerde, OptionSerde(StringSerde)),
    );
    // A stream joins the derived table: lookups apply the filter and the mapper.
    builder
        .stream("visits", Consumed::with(StringSerde, StringSerde))
        .join(&adults, |_, page, about| format!("{page}: {about}"))
        .to("adult-visits", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let visits = TestInputTopic::new("visits", StringSerde, StringSerde);

    upsert(&mut driver, "users", "ann", Some("17"), 1);
    upsert(&mut driver, "users", "bob", Some("30"), 2);
    driver.pipe_input(&visits, &s("ann"), &s("/a"), 3).unwrap();
    driver.pipe_input(&visits, &s("bob"), &s("/b"), 4).unwrap();
    upsert(&mut driver, "users", "ann", Some("18"), 5);
    // Bob's row stops matching, then Ann's is deleted: both leave the filtered table.
    upsert(&mut driver, "users", "bob", Some("x"), 6);
    upsert(&mut driver, "users", "ann", None, 7);
    // A delete of a row the filter never kept changes nothing downstream.
    upsert(&mut driver, "users", "cid", Some("3"), 8);
    upsert(&mut driver, "users", "cid", None, 9);
    driver.pipe_input(&visits, &s("bob"), &s("/c"), 10).unwrap();

    assert_eq!(
        changelog(&mut driver, "adults"),
        vec![
            (s("bob"), Some(s("bob is 30"))),
            (s("ann"), Some(s("ann is 18"))),
            (s("bob"), None),
            (s("ann"), None),
        ]
    );
    // Bob's "x" is the only age that does not parse.
    assert_eq!(
        changelog(&mut driver, "unreadable-ages"),
        vec![(s("bob"), Some(s("x")))]
    );
    let joined = TestOutputTopic::new("adult-visits", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&joined).unwrap(),
        vec![(s("bob"), s("/b: bob is 30"))]
    );
}

#[test]
fn table_table_joins_follow_kafkas_inner_left_and_outer_semantics() {
    let builder = StreamsBuilder::new();
    let left = table(&builder, "left");
    let right = table(&builder, "right");
    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| s("null"));
    left.join(&right, |l, r| format!("{l}+{r}"))
        .to_stream_with_tombstones()
        .to(
            "inner",
            Produced::with(StringSerde, OptionSerde(StringSerde)),
        );
    left.left_join(&right, move |l, r| format!("{l}+{}", show(r)))
        .to_stream_with_tombstones()
        .to(
            "left-join",
            Produced::with(StringSerde, OptionSerde(StringSerde)),
        );
    left.outer_join(&right, move |l, r| format!("{}+{}", show(l), show(r)))
        .to_stream_with_tombstones()
        .to(
            "outer",
            Produced::with(StringSerde, OptionSerde(StringSerde)),
        );
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.copartition_groups("app"),
        vec![vec![s("left"), s("right")]; 3]
    );
    let mut driver = TopologyTestDriver::new(topology);

    upsert(&mut driver, "left", "k", Some("a"), 1);
    upsert(&mut driver, "right", "k", Some("x"), 2);
    upsert(&mut driver, "left", "k", None, 3);
    upsert(&mut driver, "right", "k", None, 4);
    upsert(&mut driver, "right", "k", Some("y"), 5);
    upsert(&mut driver, "left", "k", Some("b"), 6);

    let row = |v: Option<&str>| (s("k"), v.map(s));
    assert_eq!(
        changelog(&mut driver, "inner"),
        vec![row(Some("a+x")), row(None), row(Some("b+y"))]
    );
    assert_eq!(
        changelog(&mut driver, "left-join"),
        vec![
            row(Some("a+null")),
            row(Some("a+x")),
            row(None),
            row(Some("b+y")),
        ]
    );
    assert_eq!(
        changelog(&mut driver, "outer"),
        vec![
            row(Some("a+null")),
            row(Some("a+x")),
            row(Some("null+x")),
            row(None),
            row(Some("null+y")),
            row(Some("b+y")),
        ]
    );
}

#[test]
fn table_aggregations_take_back_rows_that_move_or_go() {
    let builder = StreamsBuilder::new();
    let users = table(&builder, "user-regions");
    let by_region = users.group_by(
        |_, region| (region.clone(), 1i64),
        Grouped::with(StringSerde, I64Serde).named("users-by-region"),
    );
    by_region
        .count(Materialized::counts().named("region-counts"))
        .to_stream()
        .to("region-counts", Produced::with(StringSerde, I64Serde));
    by_region
        .reduce(|a, b| a + b, |a, b| a - b, Materialized::with(I64Serde))
        .to_stream()
        .to("region-sums", Produced::with(StringSerde, I64Serde));
    users
        .group_by(
            |user, region| (region.clone(), user.clone()),
            Grouped::with(StringSerde, StringSerde),
        )
        .aggregate(
            String::new,
            |_, user, users| format!("{users}+{user}"),
            |_, user, users| users.replace(&format!("+{user}"), ""),
            Materialized::with(StringSerde).named("region-users"),
        )
        .to_stream()
        .to("region-users", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    assert!(
        topology
            .internal_topics()
            .contains(&s("users-by-region-repartition")),
        "{:?}",
        topology.internal_topics()
    );
    let mut driver = TopologyTestDriver::with_application_id(topology, "regions-app");

    upsert(&mut driver, "user-regions", "ann", Some("eu"), 1);
    upsert(&mut driver, "user-regions", "bob", Some("eu"), 2);
    upsert(&mut driver, "user-regions", "ann", Some("us"), 3);
    // The same region again: one update with both values, the count stays.
    upsert(&mut driver, "user-regions", "ann", Some("us"), 4);
    upsert(&mut driver, "user-regions", "bob", None, 5);

    let counts = TestOutputTopic::new("region-counts", StringSerde, I64Serde);
    assert_eq!(
        driver.read_key_values(&counts).unwrap(),
        vec![
            (s("eu"), 1),
            (s("eu"), 2),
            (s("eu"), 1),
            (s("us"), 1),
            (s("us"), 1),
            (s("eu"), 0),
        ]
    );
    let sums = TestOutputTopic::new("region-sums", StringSerde, I64Serde);
    let sums = driver.read_key_values(&sums).unwrap();
    assert_eq!(sums.last(), Some(&(s("eu"), 0)));
    let members = TestOutputTopic::new("region-users", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&members).unwrap(),
        vec![
            (s("eu"), s("+ann")),
            (s("eu"), s("+ann+bob")),
            (s("eu"), s("+bob")),
            (s("us"), s("+ann")),
            (s("us"), s("+ann")),
            (s("eu"), s("")),
        ]
    );
    let store = driver
        .key_value_store("region-counts", StringSerde, I64Serde)
        .unwrap();
    assert_eq!(store.all().unwrap(), vec![(s("eu"), 0), (s("us"), 1)]);
    // The repartition topic carries each update: the move as two, the same region as one.
    let repartition = driver.read_raw("regions-app-users-by-region-repartition");
    assert_eq!(repartition.len(), 6, "{repartition:?}");
}

#[test]
fn a_stream_with_tombstones_read_as_a_table_deletes_rows_it_holds() {
    let builder = StreamsBuilder::new();
    let latest = builder
        .stream(
            "updates",
            Consumed::with(StringSerde, OptionSerde(StringSerde)),
        )
        .to_table_with_tombstones(StringSerde, Materialized::with(StringSerde).named("latest"));
    latest
        .changes()
        .map_values(|change| format!("{:?} -> {:?}", change.old, change.new))
        .to("changes", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    upsert(&mut driver, "updates", "a", Some("1"), 1);
    // A delete of a row the table never held changes nothing.
    upsert(&mut driver, "updates", "b", None, 2);
    upsert(&mut driver, "updates", "a", Some("2"), 3);
    upsert(&mut driver, "updates", "a", None, 4);
    let output = TestOutputTopic::new("changes", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&output).unwrap(),
        vec![
            (s("a"), s("None -> Some(\"1\")")),
            (s("a"), s("Some(\"1\") -> Some(\"2\")")),
            (s("a"), s("Some(\"2\") -> None")),
        ]
    );
    let store = driver
        .key_value_store("latest", StringSerde, StringSerde)
        .unwrap();
    assert_eq!(store.get(&s("a")).unwrap(), None);
}
