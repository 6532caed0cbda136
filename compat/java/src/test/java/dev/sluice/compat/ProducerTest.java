package dev.sluice.compat;

import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.describe;
import static dev.sluice.compat.Compat.producer;
import static dev.sluice.compat.Compat.readAll;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** KafkaProducer: defaults, compression, acks, headers, explicit partition and timestamp. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ProducerTest {

    private static final Duration READ = Duration.ofSeconds(60);

    /** Sends n records k{i}/v{i} (keyed: spread over the partitions), returns their metadata. */
    private static List<RecordMetadata> produce(String topic, int n, Map<String, Object> overrides) throws Exception {
        List<RecordMetadata> out = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer(overrides)) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(p.send(new ProducerRecord<>(topic, "k" + i, "v" + i + "-" + "payload".repeat(i % 5))));
            }
            p.flush();
            for (Future<RecordMetadata> f : fs) {
                out.add(f.get(60, TimeUnit.SECONDS));
            }
        }
        return out;
    }

    private static void assertReadBack(String topic, int n) {
        List<ConsumerRecord<String, String>> got = readAll(topic, n, READ);
        Map<String, String> byKey = new HashMap<>();
        for (ConsumerRecord<String, String> r : got) {
            assertEquals(null, byKey.put(r.key(), r.value()), "duplicate key " + r.key() + ": " + describe(got));
        }
        for (int i = 0; i < n; i++) {
            assertEquals("v" + i + "-" + "payload".repeat(i % 5), byKey.get("k" + i), "value of k" + i);
        }
        // Within a partition, the producer's order.
        Map<Integer, List<Integer>> order = new HashMap<>();
        for (ConsumerRecord<String, String> r : got) {
            order.computeIfAbsent(r.partition(), p -> new ArrayList<>()).add(Integer.parseInt(r.key().substring(1)));
        }
        for (var e : order.entrySet()) {
            List<Integer> sorted = e.getValue().stream().sorted().collect(Collectors.toList());
            assertEquals(sorted, e.getValue(), "order in partition " + e.getKey());
        }
    }

    private static String topic(String prefix, int partitions) throws Exception {
        String t = unique(prefix);
        try (Admin admin = admin()) {
            createTopic(admin, t, partitions);
        }
        return t;
    }

    /** The default producer: enable.idempotence=true, acks=all (InitProducerId, then Produce). */
    @Test
    void defaultProducer() throws Exception {
        String t = topic("producer-default", 3);
        List<RecordMetadata> md = produce(t, 100, Map.of());
        for (RecordMetadata m : md) {
            assertEquals(t, m.topic());
            assertEquals(true, m.hasOffset(), "offset of " + m);
        }
        assertReadBack(t, 100);
    }

    @ParameterizedTest(name = "compression.type={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void compression(String type) throws Exception {
        String t = topic("producer-" + type, 2);
        produce(t, 200, Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, type, ProducerConfig.LINGER_MS_CONFIG, 20));
        assertReadBack(t, 200);
    }

    @ParameterizedTest(name = "acks={0}")
    @ValueSource(strings = {"0", "1", "all"})
    void acks(String acks) throws Exception {
        String t = topic("producer-acks-" + acks, 2);
        Map<String, Object> o = new HashMap<>();
        o.put(ProducerConfig.ACKS_CONFIG, acks);
        if (!acks.equals("all")) {
            o.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false"); // idempotence requires acks=all
        }
        List<RecordMetadata> md = produce(t, 50, o);
        if (acks.equals("0")) {
            // No answer, so no offset.
            md.forEach(m -> assertEquals(false, m.hasOffset(), "acks=0 offset of " + m));
        } else {
            md.forEach(m -> assertEquals(true, m.hasOffset(), "offset of " + m));
        }
        assertReadBack(t, 50);
    }

    /** Headers, an explicit partition and an explicit timestamp, read back by a consumer. */
    @Test
    void headersPartitionTimestamp() throws Exception {
        String t = topic("producer-headers", 3);
        long ts = 1_700_000_000_123L;
        List<Header> headers = List.of(new RecordHeader("h1", "one".getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("h2", new byte[] {0, 1, 2, (byte) 255}),
                new RecordHeader("h1", "again".getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("empty", new byte[0]));
        RecordMetadata md;
        RecordMetadata md2;
        try (KafkaProducer<String, String> p = producer(Map.of())) {
            md = p.send(new ProducerRecord<>(t, 2, ts, "the-key", "the-value", headers)).get(60, TimeUnit.SECONDS);
            md2 = p.send(new ProducerRecord<>(t, 2, ts + 5, null, "no-key")).get(60, TimeUnit.SECONDS);
        }
        assertEquals(2, md.partition());
        assertEquals(0, md.offset());
        assertEquals(ts, md.timestamp());
        assertEquals(1, md2.offset());

        List<ConsumerRecord<String, String>> got = readAll(t, 2, READ);
        ConsumerRecord<String, String> r = got.stream().filter(x -> x.offset() == 0).findFirst().orElseThrow();
        assertEquals(2, r.partition());
        assertEquals("the-key", r.key());
        assertEquals("the-value", r.value());
        assertEquals(ts, r.timestamp());
        assertEquals(org.apache.kafka.common.record.TimestampType.CREATE_TIME, r.timestampType());
        Header[] h = r.headers().toArray();
        assertEquals(4, h.length, "headers");
        for (int i = 0; i < 4; i++) {
            assertEquals(headers.get(i).key(), h[i].key());
            assertArrayEquals(headers.get(i).value(), h[i].value(), "header " + i);
        }
        ConsumerRecord<String, String> r2 = got.stream().filter(x -> x.offset() == 1).findFirst().orElseThrow();
        assertEquals(null, r2.key());
        assertEquals("no-key", r2.value());
        assertEquals(ts + 5, r2.timestamp());
        assertEquals(0, r2.headers().toArray().length);
    }
}
