//! The broker against real Kafka clients: kcat (librdkafka) and the Python clients
//! (confluent-kafka, kafka-python, aiokafka), kafkajs, the native client, plus malformed input.

mod admin;
mod client;
mod embedded;
#[path = "../fixtures/mod.rs"]
mod fixtures;
mod idempotence;
mod kcat;
mod membership;
mod mixed_group;
mod node;
mod python;
mod robustness;
mod topic_configs;
mod transactions;
