//! Global tables: a stream joins them by a key it derives, with no co-partitioning, in the
//! test driver and on a node (loaded before processing starts, kept current afterwards).

use std::sync::Arc;

use bytes::Bytes;
use sluice_streams::serdes::StringSerde;
use sluice_streams::{
    Consumed, Materialized, Produced, StreamsBuilder, TestInputTopic, TestOutputTopic, Topology,
    TopologyTestDriver,
};

use crate::fixtures::{create, eventually, on_embedded_node, start_app};

/// Orders (keyed by order id, valued `customer:item`) joined with the customers' names from
/// a global table keyed by customer id.
fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    let customers = builder.global_table(
        "customers",
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde).named("customers"),
    );
    let orders = builder.stream("orders", Consumed::with(StringSerde, StringSerde));
    let customer_of =
        |_: &String, order: &String| order.split(':').next().unwrap_or("").to_string();
    orders
        .join_global(&customers, customer_of, |_, order, name| {
            format!("{order} for {name}")
        })
        .to("named-orders", Produced::with(StringSerde, StringSerde));
    orders
        .left_join_global(&customers, customer_of, |_, order, name: Option<String>| {
            format!("{order} for {}", name.unwrap_or_else(|| "nobody".into()))
        })
        .to("all-orders", Produced::with(StringSerde, StringSerde));
    builder.build().unwrap()
}

#[test]
fn streams_join_global_tables_by_a_key_they_derive() {
    let topology = topology();
    // No co-partitioning: the table is whole in every instance.
    assert!(topology.copartition_groups("app").is_empty());
    assert!(!topology
        .subscribed_topics("app")
        .contains(&"customers".to_string()));
    let mut driver = TopologyTestDriver::new(topology);
    let customers = TestInputTopic::new("customers", StringSerde, StringSerde);
    let orders = TestInputTopic::new("orders", StringSerde, StringSerde);
    let s = |v: &str| v.to_string();
    driver
        .pipe_input(&orders, &s("o1"), &s("c1:book"), 1)
        .unwrap();
    driver
        .pipe_input(&customers, &s("c1"), &s("Ann"), 2)
        .unwrap();
    driver
        .pipe_input(&orders, &s("o2"), &s("c1:pen"), 3)
        .unwrap();
    driver
        .pipe_raw("customers", Some("c1".into()), None, Vec::new(), 4)
        .unwrap();
    driver
        .pipe_input(&orders, &s("o3"), &s("c1:ink"), 5)
        .unwrap();
    let named = TestOutputTopic::new("named-orders", StringSerde, StringSerde);
    assert_eq!(
        driver.read_key_values(&named).unwrap(),
        vec![(s("o2"), s("c1:pen for Ann"))]
    );
    let all = TestOutputTopic::new("all-orders", StringSerde, StringSerde);
    let values: Vec<String> = driver
        .read_key_values(&all)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values,
        ["c1:book for nobody", "c1:pen for Ann", "c1:ink for nobody"]
    );
}

#[test]
fn a_node_loads_the_global_table_first_and_keeps_it_current() {
    on_embedded_node(|client| async move {
        // Partition counts differ: fine for a global table.
        create(&client, "customers", 3).await;
        create(&client, "orders", 2).await;
        create(&client, "named-orders", 1).await;
        create(&client, "all-orders", 1).await;
        let names: Vec<(Option<&str>, Bytes)> = (0..30)
            .map(|i| {
                (
                    Some(["c1", "c2", "c3"][i % 3]),
                    Bytes::from(format!("name-{i}")),
                )
            })
            .collect();
        crate::runtime::produce(&client, "customers", &names).await;
        let app = start_app(&client, Arc::new(topology()), "global-join", &[]).await;
        // Loaded before the first order: the last name of each customer.
        let store = app.store("customers", StringSerde, StringSerde).unwrap();
        assert_eq!(
            store.get(&"c3".to_string()).unwrap(),
            Some("name-29".into())
        );
        let orders: Vec<(Option<&str>, Bytes)> = vec![
            (Some("o1"), Bytes::from_static(b"c1:book")),
            (Some("o2"), Bytes::from_static(b"c2:pen")),
        ];
        crate::runtime::produce(&client, "orders", &orders).await;
        let mut named: Vec<String> = crate::runtime::read_all(&client, "named-orders", 2)
            .await
            .into_iter()
            .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
            .collect();
        named.sort();
        assert_eq!(named, ["c1:book for name-27", "c2:pen for name-28"]);
        // An update after the start reaches the global table.
        crate::runtime::produce(
            &client,
            "customers",
            &[(Some("c4"), Bytes::from_static(b"Dan"))],
        )
        .await;
        eventually("the new customer in the global table", || {
            store.get(&"c4".to_string()).ok().flatten() == Some("Dan".to_string())
        })
        .await;
        app.close().await.unwrap();
    });
}
