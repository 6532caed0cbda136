package dev.sluice.compat;

import static dev.sluice.compat.Compat.AWAIT;
import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.await;
import static dev.sluice.compat.Compat.bootstrap;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.seed;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Kafka Streams: word count (at_least_once and exactly_once_v2) and a windowed count. */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class StreamsTest {

    private Path stateDir;

    @BeforeEach
    void stateDir() throws IOException {
        stateDir = Files.createTempDirectory("streams-state");
    }

    @AfterEach
    void removeStateDir() throws IOException {
        try (Stream<Path> s = Files.walk(stateDir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private Properties streamsProps(String appId) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        // Results soon rather than every 30 s: commit often, no record cache.
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        return p;
    }

    /**
     * Runs the topology, reading the output topic (String keys, Long values) until the last value
     * per key equals the expected map; then closes the application.
     */
    private static void runAndAwait(StreamsBuilder builder, Properties props, String output,
            Map<String, Long> expected, Consumer<KafkaStreams> whileRunning) throws Exception {
        AtomicReference<Throwable> streamsError = new AtomicReference<>();
        Map<String, Long> last = new ConcurrentHashMap<>();
        try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
            streams.setUncaughtExceptionHandler(e -> {
                streamsError.set(e);
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.start();
            await(() -> "the Streams application is RUNNING (" + streams.state() + ")", AWAIT, () -> {
                if (streamsError.get() != null) {
                    throw new AssertionError("Streams failed: " + Compat.causes(streamsError.get()), streamsError.get());
                }
                return streams.state() == KafkaStreams.State.RUNNING;
            });
            whileRunning.accept(streams);
            Properties cp = Compat.consumerProps(null);
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = c.partitionsFor(output, Duration.ofSeconds(30)).stream()
                        .map(pi -> new TopicPartition(output, pi.partition())).collect(Collectors.toList());
                c.assign(tps);
                c.seekToBeginning(tps);
                await(() -> "the output " + output + " has the counts " + new TreeMap<>(expected) + " (so far "
                        + new TreeMap<>(last) + ")", Duration.ofSeconds(120), () -> {
                    if (streamsError.get() != null) {
                        throw new AssertionError("Streams failed: " + Compat.causes(streamsError.get()), streamsError.get());
                    }
                    c.poll(Duration.ofMillis(200)).forEach(r -> last.put(r.key(), r.value()));
                    return last.equals(expected);
                });
            }
            streams.close(Duration.ofSeconds(30));
            assertTrue(streams.state() == KafkaStreams.State.NOT_RUNNING, "state after close: " + streams.state());
        }
    }

    @Test
    void wordCount() throws Exception {
        wordCount(StreamsConfig.AT_LEAST_ONCE);
    }

    /** The same under exactly_once_v2: transactions, read_committed, offsets in the transaction. */
    @Test
    void wordCountExactlyOnce() throws Exception {
        wordCount(StreamsConfig.EXACTLY_ONCE_V2);
    }

    private void wordCount(String guarantee) throws Exception {
        String app = unique("streams-wordcount");
        String input = app + "-input";
        String output = app + "-output";
        try (Admin admin = admin()) {
            createTopic(admin, input, 2);
            createTopic(admin, output, 2);
        }
        List<String> lines = List.of("the quick brown fox", "jumps over the lazy dog", "The dog barks",
                "a fox and a dog", "the end");
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            rs.add(new ProducerRecord<>(input, i % 2, null, lines.get(i)));
        }
        seed(input, rs);
        Map<String, Long> expected = lines.stream()
                .flatMap(l -> Arrays.stream(l.toLowerCase(Locale.ROOT).split("\\W+")))
                .collect(Collectors.groupingBy(w -> w, TreeMap::new, Collectors.counting()));

        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> text = b.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        text.flatMapValues(v -> Arrays.asList(v.toLowerCase(Locale.ROOT).split("\\W+")))
                .groupBy((k, word) -> word, Grouped.with("by-word", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("word-counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        Properties props = streamsProps(app);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        runAndAwait(b, props, output, expected, streams -> { });

        // The repartition topic and the changelog that the topology needs exist.
        try (Admin admin = admin()) {
            Set<String> names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            assertTrue(names.contains(app + "-by-word-repartition"), "topics: " + names);
            assertTrue(names.contains(app + "-word-counts-changelog"), "topics: " + names);
            var configs = admin.describeConfigs(List.of(new org.apache.kafka.common.config.ConfigResource(
                    org.apache.kafka.common.config.ConfigResource.Type.TOPIC, app + "-word-counts-changelog")))
                    .all().get(30, TimeUnit.SECONDS).values().iterator().next();
            assertEquals("compact", configs.get("cleanup.policy").value());
        }
    }

    @Test
    void windowedCount() throws Exception {
        String app = unique("streams-windowed");
        String input = app + "-input";
        String output = app + "-output";
        try (Admin admin = admin()) {
            createTopic(admin, input, 1);
            createTopic(admin, output, 1);
        }
        long size = 10_000;
        long t0 = (System.currentTimeMillis() - 600_000) / size * size; // a window start, 10 minutes ago
        long[][] events = { // key index, offset from t0
            {0, 1_000}, {0, 2_000}, {1, 3_000}, {0, 9_999}, {0, 10_000}, {1, 15_000}, {1, 19_000}, {0, 25_000},
            {1, 21_000}, {1, 29_999},
        };
        String[] keys = {"alpha", "beta"};
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        Map<String, Long> expected = new TreeMap<>();
        for (long[] e : events) {
            String key = keys[(int) e[0]];
            long ts = t0 + e[1];
            rs.add(new ProducerRecord<>(input, 0, ts, key, "x"));
            expected.merge(key + "@" + (ts / size * size - t0), 1L, Long::sum);
        }
        seed(input, rs);
        // alpha: [0,10s) 3, [10s,20s) 1, [20s,30s) 1; beta: [0,10s) 1, [10s,20s) 2, [20s,30s) 2
        assertEquals(Map.of("alpha@0", 3L, "alpha@10000", 1L, "alpha@20000", 1L, "beta@0", 1L, "beta@10000", 2L,
                "beta@20000", 2L), expected);

        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .groupByKey()
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(size), Duration.ofHours(1)))
                .count()
                .toStream((wk, v) -> wk.key() + "@" + (wk.window().start() - t0))
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        runAndAwait(b, streamsProps(app), output, expected, streams -> { });
    }
}
