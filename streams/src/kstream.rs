//! `KStream`: an unbounded stream of records, and its stateless operators with Kafka Streams'
//! names (`filter`, `map_values`, `flat_map`, `split`, `merge`, `to`, ...).
//!
//! Every operator adds a node to the topology and returns the stream of its output; a stream
//! may feed several operators (each gets every record, cloned). Closures are shared by all the
//! tasks of the application, so they are `Fn + Send + Sync`; per-task state belongs in state
//! stores, not in the closures.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ktable::{Change, Grouped, KGroupedStream, KTable};
use crate::serdes::{self, Serde};
use crate::topology::{
    BatchOutput, BuilderState, Children, Consumed, OutputRecord, Produced, RawRecord, Record,
    TaskContext, TopicRef,
};

/// A stream of records with keys of `K` and values of `V` (Kafka's `KStream<K, V>`).
pub struct KStream<K, V> {
    pub(crate) state: Arc<BuilderState>,
    pub(crate) children: Arc<Children<K, V>>,
    /// Whether an operator upstream may have changed the keys (map, flat_map, select_key), so
    /// that records of one key may sit in different partitions: grouping then needs a
    /// repartition.
    pub(crate) key_changed: bool,
    /// The topics the records come from (for co-partitioning checks).
    pub(crate) sources: Arc<Vec<TopicRef>>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            state: self.state.clone(),
            children: self.children.clone(),
            key_changed: self.key_changed,
            sources: self.sources.clone(),
        }
    }
}

/// What a stream's key and value types must allow: being cloned for a second reader and shared
/// with the tasks' threads.
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(state: Arc<BuilderState>, children: Arc<Children<K, V>>) -> KStream<K, V> {
        KStream {
            state,
            children,
            key_changed: false,
            sources: Arc::new(Vec::new()),
        }
    }

    pub(crate) fn with_sources(mut self, sources: Vec<TopicRef>) -> KStream<K, V> {
        self.sources = Arc::new(sources);
        self
    }

    pub(crate) fn with_key_changed(mut self, key_changed: bool) -> KStream<K, V> {
        self.key_changed = key_changed;
        self
    }

    /// Adds a node fed by this stream; `node` gets each record and the new node's children.
    fn then<K2: Data, V2: Data>(
        &self,
        what: &str,
        node: impl Fn(&mut TaskContext, Record<K, V>, &Children<K2, V2>) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let out = self.state.new_children::<K2, V2>(what.to_string());
        let downstream = out.clone();
        self.children
            .add(Arc::new(move |ctx, record| node(ctx, record, &downstream)));
        KStream {
            state: self.state.clone(),
            children: out,
            key_changed: self.key_changed,
            sources: self.sources.clone(),
        }
    }

    /// The records for which `predicate` holds.
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.then("filter", move |ctx, record, out| {
            if predicate(&record.key, &record.value) {
                out.forward(ctx, record);
            }
        })
    }

    /// The records for which `predicate` does not hold.
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.then("filter_not", move |ctx, record, out| {
            if !predicate(&record.key, &record.value) {
                out.forward(ctx, record);
            }
        })
    }

    /// Each record as a new key and value (timestamp and headers kept). A changed key means a
    /// later grouping or join repartitions.
    pub fn map<K2: Data, V2: Data>(
        &self,
        mapper: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        self.then("map", move |ctx, record, out| {
            let (key, value) = mapper(record.key, record.value);
            out.forward(
                ctx,
                Record {
                    key,
                    value,
                    timestamp: record.timestamp,
                    headers: record.headers,
                },
            );
        })
        .with_key_changed(true)
    }

    /// Each record with a new value, the key kept.
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.map_values_with_key(move |_, value| mapper(value))
    }

    /// Each record with a new value computed from its timestamp and value (what Kafka's
    /// `processValues` sees of a record through `record.timestamp()`).
    pub fn map_values_with_timestamp<V2: Data>(
        &self,
        mapper: impl Fn(i64, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.then("map_values", move |ctx, record, out| {
            let value = mapper(record.timestamp, record.value);
            out.forward(
                ctx,
                Record {
                    key: record.key,
                    value,
                    timestamp: record.timestamp,
                    headers: record.headers,
                },
            );
        })
    }

    /// Each record with a new value computed from its key and value (Kafka's
    /// `ValueMapperWithKey`).
    pub fn map_values_with_key<V2: Data>(
        &self,
        mapper: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.then("map_values", move |ctx, record, out| {
            let value = mapper(&record.key, record.value);
            out.forward(
                ctx,
                Record {
                    key: record.key,
                    value,
                    timestamp: record.timestamp,
                    headers: record.headers,
                },
            );
        })
    }

    /// Zero or more records for each record, each with the input's timestamp and headers.
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        mapper: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        self.then("flat_map", move |ctx, record, out| {
            for (key, value) in mapper(record.key, record.value) {
                out.forward(
                    ctx,
                    Record {
                        key,
                        value,
                        timestamp: record.timestamp,
                        headers: record.headers.clone(),
                    },
                );
            }
        })
        .with_key_changed(true)
    }

    /// Zero or more values for each record, each with the input's key.
    pub fn flat_map_values<V2: Data, I>(
        &self,
        mapper: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        self.then("flat_map_values", move |ctx, record, out| {
            for value in mapper(record.value) {
                out.forward(
                    ctx,
                    Record {
                        key: record.key.clone(),
                        value,
                        timestamp: record.timestamp,
                        headers: record.headers.clone(),
                    },
                );
            }
        })
    }

    /// Each record with a new key computed from it, the value kept.
    pub fn select_key<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        self.then("select_key", move |ctx, record, out| {
            let key = selector(&record.key, &record.value);
            out.forward(
                ctx,
                Record {
                    key,
                    value: record.value,
                    timestamp: record.timestamp,
                    headers: record.headers,
                },
            );
        })
        .with_key_changed(true)
    }

    /// Calls `action` on each record and passes it on unchanged.
    pub fn peek(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        self.then("peek", move |ctx, record, out| {
            action(&record.key, &record.value);
            out.forward(ctx, record);
        })
    }

    /// Calls `action` on each record; the end of this branch of the topology.
    pub fn foreach(&self, action: impl Fn(K, V) + Send + Sync + 'static) {
        let _: KStream<K, V> = self.then("foreach", move |_ctx, record, _out| {
            action(record.key, record.value);
        });
    }

    /// The records of this stream and of `other`, as they come (Kafka's `merge`).
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let out = self.state.new_children::<K, V>("merge".to_string());
        for input in [&self.children, &other.children] {
            let downstream = out.clone();
            input.add(Arc::new(move |ctx, record| downstream.forward(ctx, record)));
        }
        KStream::new(self.state.clone(), out)
            .with_key_changed(self.key_changed || other.key_changed)
    }

    /// Groups the records by their key, to aggregate them (Kafka's `groupByKey`). After an
    /// operator that changes keys (`map`, `flat_map`, `select_key`) records of one key may sit
    /// in different partitions, so the stream goes through a repartition topic first, written
    /// with `grouped`'s serdes (`Grouped::with`; `Grouped::with_key` has no value serde, and
    /// `build` then says so).
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        if !self.key_changed {
            return KGroupedStream::new(self.clone(), grouped.key);
        }
        let Some(value) = grouped.value.clone() else {
            self.state.error(
                "grouping after an operator that changes keys (map, flat_map, select_key) repartitions the stream, which needs a value serde: use Grouped::with(key_serde, value_serde)".to_string(),
            );
            return KGroupedStream::new(self.clone(), grouped.key);
        };
        let repartitioned = Repartitioned {
            name: grouped.name.clone(),
            key: grouped.key.clone(),
            value,
        };
        KGroupedStream::new(self.repartition(repartitioned), grouped.key)
    }

    /// Each record joined with the table's current value for its key, when the table has one
    /// (Kafka's KStream–KTable inner `join`): `joiner(key, value, table_value)`. The stream and
    /// the table must be co-partitioned (checked when the application starts).
    pub fn join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&K, V, VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.lookup_join(table, "join", move |key, value, found| {
            found.map(|table_value| joiner(key, value, table_value))
        })
    }

    /// Each record joined with the table's current value for its key, or `None` when there is
    /// none (Kafka's KStream–KTable `leftJoin`).
    pub fn left_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&K, V, Option<VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.lookup_join(table, "left_join", move |key, value, found| {
            Some(joiner(key, value, found))
        })
    }

    fn lookup_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        what: &str,
        join: impl Fn(&K, V, Option<VT>) -> Option<VR> + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        if self.key_changed {
            self.state.error(format!(
                "{what} after an operator that changes keys (map, flat_map, select_key) needs the stream repartitioned first, so that each key meets its table row in one task: call repartition() before {what}"
            ));
        }
        self.state.copartition(
            self.sources
                .iter()
                .chain(table.sources.iter())
                .cloned()
                .collect(),
        );
        let getter = table.getter.clone();
        self.then(
            &format!(
                "{what} with table {}",
                table.store.as_deref().unwrap_or("(derived)")
            ),
            move |ctx, record, out| {
                let found = match getter(ctx, &record.key) {
                    Ok(found) => found,
                    Err(err) => return ctx.errors.push(err),
                };
                if let Some(value) = join(&record.key, record.value, found) {
                    out.forward(
                        ctx,
                        Record {
                            key: record.key,
                            value,
                            timestamp: record.timestamp,
                            headers: record.headers,
                        },
                    );
                }
            },
        )
    }

    /// The stream read as a table (Kafka's `toTable`): each record upserts its key in the
    /// table's store, keys serialised with `key`, values with `materialized`'s serde.
    pub fn to_table(
        &self,
        key: impl Serde<K> + 'static,
        materialized: crate::ktable::Materialized<V>,
    ) -> KTable<K, V> {
        upsert_table(self, key, materialized, Some)
    }

    /// Splits the stream by predicates (Kafka's `split()`): each record goes to the first
    /// branch whose predicate holds.
    pub fn split(&self) -> BranchedKStream<K, V> {
        BranchedKStream {
            stream: self.clone(),
            branches: Vec::new(),
        }
    }

    /// Writes every record to `topic` (Kafka's `to`).
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        self.state.add_sink(topic);
        let topic: Arc<str> = topic.into();
        let _: KStream<K, V> = self.then(&format!("sink {topic}"), move |ctx, record, _out| {
            let partition = produced.partitioner.as_ref().map(|partitioner| {
                partitioner(&record.key, &record.value, ctx.partition_count(&topic))
            });
            write_output(
                ctx,
                topic.clone(),
                partition,
                &*produced.key,
                &*produced.value,
                record,
            );
        });
    }

    /// Writes the stream to an internal topic and reads it back, so that each key's records
    /// sit in one partition (Kafka's `repartition`): the topic is
    /// `<application.id>-<name>-repartition`, with as many partitions as the widest source
    /// topic, created when the application starts.
    pub fn repartition(&self, repartitioned: Repartitioned<K, V>) -> KStream<K, V> {
        let (suffix, key, value) = self.write_repartition(repartitioned);
        let children = self.state.new_children::<K, V>(format!("source {suffix}"));
        self.state.add_internal_source(
            &suffix,
            children.clone(),
            Consumed {
                key,
                value,
                timestamp_extractor: None,
            },
        );
        KStream::new(self.state.clone(), children).with_sources(vec![TopicRef::Internal(suffix)])
    }

    /// Like [`KStream::repartition`], the records read back a run at a time (the records of
    /// one partition that one poll brought, as [`crate::StreamsBuilder::batch_stream`] reads
    /// a topic) by `process`, which may look keys up in `table` as the task of the run holds
    /// it: a stream–table join of whole runs after a key change. The topic is
    /// co-partitioned with the table's sources; `process` deserialises the records itself.
    pub fn repartition_in_runs<KT, VT, K2, V2, F>(
        &self,
        repartitioned: Repartitioned<K, V>,
        table: &KTable<KT, VT>,
        process: F,
    ) -> KStream<K2, V2>
    where
        KT: Data,
        VT: Data,
        K2: Data,
        V2: Data,
        F: Fn(
                &[RawRecord],
                &dyn Fn(&KT) -> crate::Result<Option<VT>>,
                &mut BatchOutput<K2, V2>,
            ) -> crate::Result<()>
            + Send
            + Sync
            + 'static,
    {
        let (suffix, _, _) = self.write_repartition(repartitioned);
        self.state.copartition(
            std::iter::once(TopicRef::Internal(suffix.clone()))
                .chain(table.sources.iter().cloned())
                .collect(),
        );
        let children = self
            .state
            .new_children::<K2, V2>(format!("batch source {suffix}"));
        let getter = table.getter.clone();
        let source = crate::topology::batch_node(children.clone(), move |ctx, run, out| {
            let lookup = |key: &KT| getter(ctx, key);
            process(run, &lookup, out)
        });
        self.state.add_internal_batch_source(&suffix, source);
        KStream::new(self.state.clone(), children).with_sources(vec![TopicRef::Internal(suffix)])
    }

    /// Writes the stream to its repartition topic: the topic's suffix and serdes.
    #[allow(clippy::type_complexity)]
    fn write_repartition(
        &self,
        repartitioned: Repartitioned<K, V>,
    ) -> (String, Arc<dyn Serde<K>>, Arc<dyn Serde<V>>) {
        let name = repartitioned
            .name
            .unwrap_or_else(|| self.state.generated_name("KSTREAM-REPARTITION"));
        let suffix = format!("{name}-repartition");
        let (key, value) = (repartitioned.key, repartitioned.value);
        let sink_suffix = suffix.clone();
        let (sink_key, sink_value) = (key.clone(), value.clone());
        let _: KStream<K, V> = self.then(&format!("sink {suffix}"), move |ctx, record, _out| {
            let topic = ctx.internal_topic(&sink_suffix);
            // The producer's partitioner (murmur2 of the key bytes) places each key, as Kafka's.
            write_output(ctx, topic, None, &*sink_key, &*sink_value, record);
        });
        (suffix, key, value)
    }

    /// Groups the records by a new key from `selector` (Kafka's `groupBy`), through a
    /// repartition topic that `grouped`'s serdes write.
    pub fn group_by<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<K2, V> {
        self.select_key(selector).group_by_key(grouped)
    }
}

/// Serialises `record` with `key` and `value` into an output of `ctx` to `topic`; a record
/// that does not serialise is the task's error.
fn write_output<K, V>(
    ctx: &mut TaskContext,
    topic: Arc<str>,
    partition: Option<i32>,
    key: &dyn Serde<K>,
    value: &dyn Serde<V>,
    record: Record<K, V>,
) {
    let key = serdes::serialize(key, &topic, "key", &record.key);
    let value = serdes::serialize(value, &topic, "value", &record.value);
    match (key, value) {
        (Ok(key), Ok(value)) => ctx.outputs.push(OutputRecord {
            topic,
            partition,
            key,
            value,
            timestamp: record.timestamp,
            headers: record.headers,
        }),
        (Err(err), _) | (_, Err(err)) => ctx.errors.push(err),
    }
}

/// How a repartition topic is named and (de)serialised (Kafka's `Repartitioned`).
pub struct Repartitioned<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key: Arc<dyn Serde<K>>,
    pub(crate) value: Arc<dyn Serde<V>>,
}

impl<K: Data, V: Data> KStream<K, Option<V>> {
    /// The stream read as a table, a `None` value deleting its key (Kafka's `toTable` of a
    /// stream whose null values are tombstones).
    pub fn to_table_with_tombstones(
        &self,
        key: impl Serde<K> + 'static,
        materialized: crate::ktable::Materialized<V>,
    ) -> KTable<K, V> {
        upsert_table(self, key, materialized, |value| value)
    }
}

/// A table of `stream`'s records: `value_of(value)` upserts each record's key in the table's
/// store (`None` deletes it); each change goes on with the value it replaces. A delete of a
/// key the table does not hold changes nothing and goes nowhere.
fn upsert_table<K: Data, X: Data, V: Data>(
    stream: &KStream<K, X>,
    key: impl Serde<K> + 'static,
    materialized: crate::ktable::Materialized<V>,
    value_of: impl Fn(X) -> Option<V> + Send + Sync + 'static,
) -> KTable<K, V> {
    let store = stream
        .state
        .materialize(&materialized, "KSTREAM-TOTABLE-STATE-STORE");
    let key: Arc<dyn Serde<K>> = Arc::new(key);
    let (key_serde, value_serde, store_name) =
        (key.clone(), materialized.value.clone(), store.clone());
    let table = stream.then(
        &format!("to_table into store {store}"),
        move |ctx, record: Record<K, X>, out: &Children<K, Change<V>>| {
            // Kafka Streams skips records without key bytes in stateful operators.
            let Some(key_bytes) = ctx.store_key(&*key_serde, &store_name, &record.key) else {
                return;
            };
            let old = match ctx.get_stored(&store_name, &key_bytes, &*value_serde) {
                Ok(old) => old,
                Err(err) => return ctx.errors.push(err),
            };
            let new = value_of(record.value);
            if new.is_none() && old.is_none() {
                // Nothing to delete: no change.
                return;
            }
            let stored = match &new {
                Some(new) => match serdes::serialize(&*value_serde, &store_name, "value", new) {
                    Ok(bytes) => bytes,
                    Err(err) => return ctx.errors.push(err),
                },
                None => None,
            };
            ctx.put_logged(&store_name, key_bytes, stored, record.timestamp);
            let change = Change { new, old };
            crate::ktable::forward_change(
                ctx,
                out,
                record.key,
                change,
                record.timestamp,
                record.headers,
            );
        },
    );
    KTable::materialized(
        stream.state.clone(),
        table.children,
        store,
        key,
        materialized.value,
        stream.sources.clone(),
    )
}

impl<K, V> Repartitioned<K, V> {
    /// Keys with `key`, values with `value`; a generated name.
    pub fn with(
        key: impl Serde<K> + 'static,
        value: impl Serde<V> + 'static,
    ) -> Repartitioned<K, V> {
        Repartitioned {
            name: None,
            key: Arc::new(key),
            value: Arc::new(value),
        }
    }

    /// The topic's name (between the application id and `-repartition`).
    pub fn named(mut self, name: &str) -> Repartitioned<K, V> {
        self.name = Some(name.to_string());
        self
    }
}

/// A predicate of a branch.
type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream being split into named branches (Kafka's `BranchedKStream`).
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    /// A branch named `name` for the records `predicate` holds for (and no earlier one did).
    pub fn branch(
        mut self,
        name: &str,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> BranchedKStream<K, V> {
        self.branches.push((name.to_string(), Box::new(predicate)));
        self
    }

    /// The branches, and one named `name` for the records no predicate held for.
    pub fn default_branch(self, name: &str) -> HashMap<String, KStream<K, V>> {
        self.finish(Some(name))
    }

    /// The branches; records no predicate held for are dropped.
    pub fn no_default_branch(self) -> HashMap<String, KStream<K, V>> {
        self.finish(None)
    }

    fn finish(self, default: Option<&str>) -> HashMap<String, KStream<K, V>> {
        let state = self.stream.state.clone();
        let mut outputs = Vec::new();
        let mut streams = HashMap::new();
        let names = self
            .branches
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(default)
            .map(str::to_string)
            .collect::<Vec<_>>();
        for name in &names {
            let out = state.new_children::<K, V>(format!("branch {name}"));
            streams.insert(
                name.clone(),
                KStream::new(state.clone(), out.clone())
                    .with_key_changed(self.stream.key_changed)
                    .with_sources(self.stream.sources.to_vec()),
            );
            outputs.push(out);
        }
        let predicates = self
            .branches
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<_>>();
        self.stream.children.add(Arc::new(move |ctx, record| {
            let chosen = predicates
                .iter()
                .position(|predicate| predicate(&record.key, &record.value))
                .or_else(|| (outputs.len() > predicates.len()).then_some(predicates.len()));
            if let Some(idx) = chosen {
                outputs[idx].forward(ctx, record);
            }
        }));
        streams
    }
}
