//! Foreign-key table joins: in the test driver (rows that change the row they name, rows
//! named before they exist, deletes on both sides) and on a node whose two tables have
//! different partition counts, one written by a producer partitioning otherwise than
//! murmur2.

use std::sync::Arc;

use bytes::Bytes;
use sluice_streams::serdes::{OptionSerde, StringSerde};
use sluice_streams::{
    Consumed, KTable, Materialized, Produced, StreamsBuilder, TestOutputTopic, Topology,
    TopologyTestDriver,
};

use crate::fixtures::{create, eventually, on_embedded_node, start_app};

fn table(builder: &StreamsBuilder, topic: &str) -> KTable<String, String> {
    builder.table(
        topic,
        Consumed::with(StringSerde, StringSerde),
        Materialized::with(StringSerde).named(&format!("{topic}-store")),
    )
}

/// Orders (`product:quantity`) joined with the products' names.
fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    let orders = table(&builder, "orders");
    let products = table(&builder, "products");
    // An order without a product (no `:`) names none.
    let product_of = |order: &String| {
        order
            .split_once(':')
            .map(|(product, _)| product.to_string())
    };
    let quantity = |order: &String| order.split(':').nth(1).unwrap_or("?").to_string();
    orders
        .join_foreign_key(
            &products,
            product_of,
            move |order, name| format!("{} x {name}", quantity(order)),
            Materialized::with(StringSerde).named("order-lines"),
        )
        .to_stream_with_tombstones()
        .to(
            "order-lines",
            Produced::with(StringSerde, OptionSerde(StringSerde)),
        );
    orders
        .left_join_foreign_key(
            &products,
            product_of,
            move |order, name| {
                format!("{} x {}", quantity(order), name.map_or("?", String::as_str))
            },
            Materialized::with(StringSerde).named("all-order-lines"),
        )
        .to_stream_with_tombstones()
        .to(
            "all-order-lines",
            Produced::with(StringSerde, OptionSerde(StringSerde)),
        );
    builder.build().unwrap()
}

fn upsert(driver: &mut TopologyTestDriver, topic: &str, key: &str, value: Option<&str>) {
    let value = value.map(|v| Bytes::copy_from_slice(v.as_bytes()));
    driver
        .pipe_raw(
            topic,
            Some(Bytes::copy_from_slice(key.as_bytes())),
            value,
            Vec::new(),
            1,
        )
        .unwrap();
}

fn changes(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(String, Option<String>)> {
    let output = TestOutputTopic::new(topic, StringSerde, OptionSerde(StringSerde));
    driver.read_key_values(&output).unwrap()
}

#[test]
fn rows_follow_the_row_their_foreign_key_names() {
    let topology = topology();
    assert!(
        topology
            .internal_topics()
            .contains(&"order-lines-subscription-registration-topic".to_string()),
        "{:?}",
        topology.internal_topics()
    );
    let mut driver = TopologyTestDriver::new(topology);
    upsert(&mut driver, "products", "p1", Some("pen"));
    upsert(&mut driver, "orders", "o1", Some("p1:2"));
    upsert(&mut driver, "products", "p1", Some("fountain pen"));
    // The order names another product, one that does not exist yet.
    upsert(&mut driver, "orders", "o1", Some("p2:1"));
    upsert(&mut driver, "products", "p2", Some("ink"));
    // The order left p1: p1's changes no longer reach it.
    upsert(&mut driver, "products", "p1", Some("pencil"));
    upsert(&mut driver, "orders", "o1", None);
    upsert(&mut driver, "orders", "o2", Some("p2:3"));
    // A deleted product deletes the inner join's rows that name it.
    upsert(&mut driver, "products", "p2", None);
    // An order that names no product joins nothing: its left-joined row goes too.
    upsert(&mut driver, "orders", "o2", Some("nothing"));
    let row = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
    assert_eq!(
        changes(&mut driver, "order-lines"),
        vec![
            row("o1", Some("2 x pen")),
            row("o1", Some("2 x fountain pen")),
            row("o1", None),
            row("o1", Some("1 x ink")),
            row("o1", None),
            row("o2", Some("3 x ink")),
            row("o2", None),
        ]
    );
    assert_eq!(
        changes(&mut driver, "all-order-lines"),
        vec![
            row("o1", Some("2 x pen")),
            row("o1", Some("2 x fountain pen")),
            row("o1", Some("1 x ?")),
            row("o1", Some("1 x ink")),
            row("o1", None),
            row("o2", Some("3 x ink")),
            row("o2", Some("3 x ?")),
            row("o2", None),
        ]
    );
}

#[test]
fn a_node_joins_tables_of_different_partition_counts_by_foreign_key() {
    on_embedded_node(|client| async move {
        create(&client, "orders", 2).await;
        create(&client, "products", 3).await;
        create(&client, "order-lines", 1).await;
        create(&client, "all-order-lines", 1).await;
        let app = start_app(&client, Arc::new(topology()), "fk", &[]).await;
        let products: Vec<_> = (0..6)
            .map(|i| {
                (
                    Some(["p0", "p1", "p2", "p3", "p4", "p5"][i]),
                    Bytes::from(format!("item{i}")),
                )
            })
            .collect();
        crate::runtime::produce(&client, "products", &products).await;
        // The orders in partitions of the producer's choosing, not murmur2's (as kcat's
        // partitioner places them): each answer must still reach its order's partition.
        let keys: Vec<String> = (0..12).map(|i| format!("o{i}")).collect();
        let orders: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let order = Bytes::from(format!("p{}:{i}", i % 6));
                (Some(key.as_str()), order, Some((i / 2 % 2) as i32))
            })
            .collect();
        crate::runtime::produce_to(&client, "orders", &orders).await;
        let store = app.store("order-lines", StringSerde, StringSerde).unwrap();
        eventually("every order line joined", || {
            (0..12).all(|i| {
                store.get(&format!("o{i}")).ok().flatten() == Some(format!("{i} x item{}", i % 6))
            })
        })
        .await;
        // The subscription topic follows the products' partitioning, the answers the orders'.
        let registration = client
            .topic("fk-order-lines-subscription-registration-topic", false)
            .await
            .unwrap();
        assert_eq!(registration.leaders.len(), 3);
        let response = client
            .topic("fk-order-lines-subscription-response-topic", false)
            .await
            .unwrap();
        assert_eq!(response.leaders.len(), 2);
        app.close().await.unwrap();
    });
}
