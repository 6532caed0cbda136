//! Sluice Streams: stream processing with Kafka Streams' concepts and an idiomatic Rust API,
//! over Sluice or any Kafka-compatible cluster.
//!
//! Build a [`Topology`] with the DSL — [`StreamsBuilder::stream`] reads a topic into a
//! [`KStream`], operators transform it, [`KStream::to`] writes it out — with typed keys and
//! values that [serdes](serdes) turn into bytes. [`TopologyTestDriver`] runs a topology with no
//! broker, deterministically, for tests.
//!
//! ```
//! use sluice_streams::serdes::StringSerde;
//! use sluice_streams::{Consumed, Produced, StreamsBuilder, TestInputTopic, TestOutputTopic,
//!     TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("sentences", Consumed::with(StringSerde, StringSerde))
//!     .flat_map_values(|line: String| {
//!         line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()
//!     })
//!     .filter(|_, word| word.len() > 2)
//!     .to("words", Produced::with(StringSerde, StringSerde));
//! let mut driver = TopologyTestDriver::new(builder.build()?);
//!
//! let input = TestInputTopic::new("sentences", StringSerde, StringSerde);
//! driver.pipe_input(&input, &"k".to_string(), &"The quick brown fox".to_string(), 1_000)?;
//! let output = TestOutputTopic::new("words", StringSerde, StringSerde);
//! let words: Vec<String> = driver.read_key_values(&output)?.into_iter().map(|(_, w)| w).collect();
//! assert_eq!(words, ["the", "quick", "brown", "fox"]);
//! # Ok::<(), sluice_streams::StreamsError>(())
//! ```
//!
//! [`KafkaStreams`] runs a topology against a cluster — an embedded Sluice node, a Sluice
//! broker over TCP, or any Kafka-compatible one — with `num.stream.threads` group members,
//! at-least-once.
//!
//! What is here so far: serdes; the stateless DSL; grouping with count/reduce/aggregate,
//! repartition topics, tables (from topics and streams) with `filter`/`map_values`, table
//! aggregations with subtractors, global tables; KStream–KTable, KStream–GlobalKTable,
//! KTable–KTable (by key and by foreign key) and windowed KStream–KStream joins; tumbling,
//! hopping, sliding and session windows, suppression until windows close or a time limit;
//! key-value stores with changelog topics and record caches, in memory or also on disk
//! (`Materialized::persistent`, SQLite); the processor API with punctuation; the test driver;
//! the at-least-once runtime with interactive queries and an uncaught-exception handler; Avro
//! serdes (without a schema registry, which comes with its issue).

pub mod driver;
pub mod error;
pub mod fk_join;
pub mod global;
pub mod join;
pub mod kstream;
pub mod ktable;
pub mod nexmark;
pub mod processor;
pub mod runtime;
pub mod serdes;
pub mod session;
pub mod sliding;
pub mod state_dir;
pub mod store;
pub mod suppress;
pub mod topology;
pub mod window;

pub use driver::{TestInputTopic, TestOutputTopic, TestTopic, TopologyTestDriver};
pub use error::{Result, StreamsError};
pub use global::GlobalKTable;
pub use join::{JoinWindows, StreamJoined};
pub use kstream::{BranchedKStream, KStream, Repartitioned};
pub use ktable::{Change, Grouped, KGroupedStream, KGroupedTable, KTable, Materialized};
pub use processor::{
    KeyValueStoreHandle, Processor, ProcessorContext, PunctuationType, ScheduleId,
};
pub use runtime::{
    DeserializationHandler, KafkaStreams, StreamThreadExceptionResponse, StreamsConfig,
    StreamsMetrics, UncaughtExceptionHandler,
};
pub use session::{SessionWindowedKStream, SessionWindowedSerde, SessionWindows};
pub use sliding::{SlidingWindowedKStream, SlidingWindows};
pub use store::{KeyValueStore, ReadOnlyKeyValueStore, SharedStore};
pub use suppress::Suppressed;
pub use topology::{
    BatchOutput, Consumed, OutputRecord, Produced, RawRecord, Record, StreamsBuilder, TaskContext,
    Topology,
};
pub use window::{EmitStrategy, TimeWindowedKStream, TimeWindows, Window, Windowed, WindowedSerde};
