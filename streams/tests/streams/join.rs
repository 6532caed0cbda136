//! KStream–KTable joins: in the test driver, and the co-partitioning check on a node.

use std::sync::Arc;

use sluice_streams::serdes::StringSerde;

use crate::fixtures::{create, on_embedded_node};
use sluice_streams::{
    Consumed, KafkaStreams, Materialized, Produced, Repartitioned, StreamsBuilder, StreamsConfig,
    StreamsError, TestInputTopic, TestOutputTopic, TopologyTestDriver,
};

fn enrichment() -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    let regions = builder.table(
        "user-regions",
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde).named("regions"),
    );
    let views = builder.stream("page-views", Consumed::with(StringSerde, StringSerde));
    views
        .join(&regions, |_, page, region| format!("{page}@{region}"))
        .to("views-by-region", Produced::with(StringSerde, StringSerde));
    views
        .left_join(&regions, |_, page, region: Option<String>| {
            format!("{page}@{}", region.unwrap_or_else(|| "unknown".into()))
        })
        .to("views-left", Produced::with(StringSerde, StringSerde));
    builder
}

#[test]
fn stream_records_meet_the_tables_latest_value_for_their_key() {
    let topology = enrichment().build().unwrap();
    assert_eq!(topology.copartition_groups("app").len(), 2);
    let mut driver = TopologyTestDriver::new(topology);
    let regions = TestInputTopic::new("user-regions", StringSerde, StringSerde);
    let views = TestInputTopic::new("page-views", StringSerde, StringSerde);
    let s = |v: &str| v.to_string();
    driver
        .pipe_input(&views, &s("ann"), &s("/early"), 1)
        .unwrap();
    driver.pipe_input(&regions, &s("ann"), &s("eu"), 2).unwrap();
    driver
        .pipe_input(&views, &s("ann"), &s("/home"), 3)
        .unwrap();
    driver.pipe_input(&regions, &s("ann"), &s("us"), 4).unwrap();
    driver
        .pipe_input(&views, &s("ann"), &s("/cart"), 5)
        .unwrap();
    driver
        .pipe_input(&views, &s("bob"), &s("/home"), 6)
        .unwrap();
    // A tombstone deletes the row: later views of the key find nothing.
    driver
        .pipe_raw("user-regions", Some("ann".into()), None, Vec::new(), 7)
        .unwrap();
    driver
        .pipe_input(&views, &s("ann"), &s("/late"), 8)
        .unwrap();

    let inner = TestOutputTopic::new("views-by-region", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&inner).unwrap(),
        vec![(s("ann"), s("/home@eu")), (s("ann"), s("/cart@us"))]
    );
    let left = TestOutputTopic::new("views-left", StringSerde, StringSerde);
    let values: Vec<String> = driver
        .read_key_values(&left)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values,
        [
            "/early@unknown",
            "/home@eu",
            "/cart@us",
            "/home@unknown",
            "/late@unknown"
        ]
    );
    let store = driver
        .key_value_store("regions", StringSerde, StringSerde)
        .unwrap();
    assert_eq!(store.get(&s("ann")).unwrap(), None);
}

#[test]
fn joining_after_a_key_change_needs_a_repartition_first() {
    let builder = StreamsBuilder::new();
    let table = builder.table(
        "t",
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde),
    );
    builder
        .stream("s", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, v| v.clone())
        .join(&table, |_, a, b| format!("{a}{b}"))
        .to("out", Produced::with(StringSerde, StringSerde));
    let err = builder.build().unwrap_err();
    assert!(
        err.to_string().contains("repartition() before join"),
        "{err}"
    );

    let builder = StreamsBuilder::new();
    let table = builder.table(
        "t",
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde),
    );
    builder
        .stream("s", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, v| v.clone())
        .repartition(Repartitioned::with(StringSerde, StringSerde).named("by-value"))
        .join(&table, |_, a, b| format!("{a}{b}"))
        .to("out", Produced::with(StringSerde, StringSerde));
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.copartition_groups("app"),
        vec![vec![
            "app-by-value-repartition".to_string(),
            "t".to_string()
        ]]
    );
}

#[test]
fn an_application_whose_join_inputs_differ_in_partitions_does_not_start() {
    on_embedded_node(|client| async move {
        create(&client, "page-views", 4).await;
        create(&client, "user-regions", 2).await;
        let config = StreamsConfig::from_props([("application.id", "enrich")]).unwrap();
        let err = KafkaStreams::start(Arc::new(enrichment().build().unwrap()), config, client)
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, StreamsError::Topology(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("page-views has 4 partitions and user-regions has 2"),
            "{message}"
        );
    });
}

#[test]
fn a_stream_read_as_a_table_serves_joins_and_queries() {
    let builder = StreamsBuilder::new();
    // Latest address per user, from a stream of address changes.
    let addresses = builder
        .stream("address-changes", Consumed::with(StringSerde, StringSerde))
        .to_table(
            StringSerde,
            Materialized::with(StringSerde).named("addresses"),
        );
    builder
        .stream("orders", Consumed::with(StringSerde, StringSerde))
        .join(&addresses, |_, item, address| {
            format!("{item} -> {address}")
        })
        .to("shipments", Produced::with(StringSerde, StringSerde));
    addresses
        .to_stream()
        .to("address-log", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let changes = TestInputTopic::new("address-changes", StringSerde, StringSerde);
    let orders = TestInputTopic::new("orders", StringSerde, StringSerde);
    let s = |v: &str| v.to_string();
    driver
        .pipe_input(&changes, &s("ann"), &s("1 Main St"), 1)
        .unwrap();
    driver
        .pipe_input(&orders, &s("ann"), &s("book"), 2)
        .unwrap();
    driver
        .pipe_input(&changes, &s("ann"), &s("9 Elm St"), 3)
        .unwrap();
    driver
        .pipe_input(&orders, &s("ann"), &s("lamp"), 4)
        .unwrap();
    let shipments = TestOutputTopic::new("shipments", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&shipments).unwrap(),
        vec![
            (s("ann"), s("book -> 1 Main St")),
            (s("ann"), s("lamp -> 9 Elm St"))
        ]
    );
    let log = TestOutputTopic::new("address-log", StringSerde, StringSerde);
    assert_eq!(driver.read_key_values(&log).unwrap().len(), 2);
    let store = driver
        .key_value_store("addresses", StringSerde, StringSerde)
        .unwrap();
    assert_eq!(store.get(&s("ann")).unwrap(), Some(s("9 Elm St")));
}

#[test]
fn a_batch_source_looks_a_runs_keys_up_in_a_table_of_its_task() {
    let builder = StreamsBuilder::new();
    let regions = builder.table(
        "user-regions",
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde).named("regions"),
    );
    builder
        .batch_stream_with_table(
            "page-views",
            &regions,
            |run, lookup, out: &mut sluice_streams::BatchOutput<String, String>| {
                for (index, raw) in run.iter().enumerate() {
                    let key = String::from_utf8_lossy(raw.key.as_deref().unwrap_or_default());
                    let page = String::from_utf8_lossy(raw.value.as_deref().unwrap_or_default());
                    let region = lookup(&key.to_string())?.unwrap_or_else(|| "unknown".into());
                    out.push((
                        index,
                        sluice_streams::Record {
                            key: key.into_owned(),
                            value: format!("{page}@{region}"),
                            timestamp: raw.timestamp,
                            headers: Vec::new(),
                        },
                    ));
                }
                Ok(())
            },
        )
        .to("views-by-region", Produced::with(StringSerde, StringSerde));
    let mut driver = TopologyTestDriver::new(builder.build().unwrap());
    let regions = TestInputTopic::new("user-regions", StringSerde, StringSerde);
    let views = TestInputTopic::new("page-views", StringSerde, StringSerde);
    let s = |v: &str| v.to_string();
    driver.pipe_input(&views, &s("ann"), &s("home"), 1).unwrap();
    driver.pipe_input(&regions, &s("ann"), &s("eu"), 2).unwrap();
    driver.pipe_input(&views, &s("ann"), &s("shop"), 3).unwrap();
    let output = TestOutputTopic::new("views-by-region", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&output).unwrap(),
        vec![(s("ann"), s("home@unknown")), (s("ann"), s("shop@eu"))]
    );
}

/// Orders (`customer` → `item`) re-keyed by item and read back in runs, each looked up in
/// the prices table of its task.
fn priced_orders() -> sluice_streams::Topology {
    let builder = StreamsBuilder::new();
    let prices = builder.table(
        "prices",
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde).named("prices"),
    );
    builder
        .stream("orders", Consumed::with(StringSerde, StringSerde))
        .select_key(|_, item| item.clone())
        .map_values_with_key(|item, _| item.clone())
        .repartition_in_runs(
            Repartitioned::with(StringSerde, StringSerde).named("by-item"),
            &prices,
            |run, lookup, out: &mut sluice_streams::BatchOutput<String, String>| {
                for (index, raw) in run.iter().enumerate() {
                    let item = String::from_utf8_lossy(raw.key.as_deref().unwrap_or_default());
                    if let Some(price) = lookup(&item.to_string())? {
                        out.push((
                            index,
                            sluice_streams::Record {
                                key: item.into_owned(),
                                value: price,
                                timestamp: raw.timestamp,
                                headers: Vec::new(),
                            },
                        ));
                    }
                }
                Ok(())
            },
        )
        .to("priced", Produced::with(StringSerde, StringSerde));
    builder.build().unwrap()
}

#[test]
fn a_stream_repartitioned_and_read_in_runs_meets_the_table_of_its_new_key() {
    let topology = priced_orders();
    assert_eq!(
        topology.copartition_groups("app"),
        vec![vec![
            "app-by-item-repartition".to_string(),
            "prices".to_string()
        ]]
    );
    let mut driver = TopologyTestDriver::new(topology);
    let prices = TestInputTopic::new("prices", StringSerde, StringSerde);
    let orders = TestInputTopic::new("orders", StringSerde, StringSerde);
    let s = |v: &str| v.to_string();
    driver.pipe_input(&orders, &s("ann"), &s("pen"), 1).unwrap();
    driver
        .pipe_input(&prices, &s("pen"), &s("1.50"), 2)
        .unwrap();
    driver.pipe_input(&orders, &s("bob"), &s("pen"), 3).unwrap();
    driver.pipe_input(&orders, &s("bob"), &s("ink"), 4).unwrap();
    let output = TestOutputTopic::new("priced", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&output).unwrap(),
        vec![(s("pen"), s("1.50"))]
    );
}

#[test]
fn a_node_reads_a_repartition_topic_in_runs() {
    on_embedded_node(|client| async move {
        create(&client, "orders", 2).await;
        create(&client, "prices", 2).await;
        create(&client, "priced", 1).await;
        let app = crate::fixtures::start_app(&client, Arc::new(priced_orders()), "runs", &[]).await;
        let prices: Vec<_> = (0..8)
            .map(|i| {
                (
                    Some(["a", "b", "c", "d", "e", "f", "g", "h"][i]),
                    bytes::Bytes::from(format!("{i}")),
                )
            })
            .collect();
        crate::runtime::produce(&client, "prices", &prices).await;
        // Each order keyed by its customer: its item's price lives in another partition for
        // some, which only the repartition topic brings it to.
        let orders: Vec<_> = (0..16)
            .map(|i| {
                let customer = ["ann", "bob", "cy", "dee"][i % 4];
                (
                    Some(customer),
                    bytes::Bytes::from(["a", "b", "c", "d", "e", "f", "g", "h"][i % 8]),
                )
            })
            .collect();
        crate::runtime::produce(&client, "orders", &orders).await;
        let mut priced = crate::runtime::read_all(&client, "priced", 16).await;
        priced.sort();
        let mut wanted: Vec<(String, bytes::Bytes)> = (0..16)
            .map(|i| {
                let item = ["a", "b", "c", "d", "e", "f", "g", "h"][i % 8];
                (item.to_string(), bytes::Bytes::from(format!("{}", i % 8)))
            })
            .collect();
        wanted.sort();
        assert_eq!(priced, wanted);
        app.close().await.unwrap();
    });
}
