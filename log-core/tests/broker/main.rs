//! The broker against real Kafka clients: kcat (librdkafka) and the Python clients
//! (confluent-kafka, kafka-python, aiokafka), plus malformed input.

#[path = "../fixtures/mod.rs"]
mod fixtures;
mod kcat;
mod python;
mod robustness;
