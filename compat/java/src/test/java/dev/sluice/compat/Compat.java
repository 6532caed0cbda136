package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What the tests share: the broker under test (system property {@code bootstrap}, set by run.sh),
 * unique names (so that the suite can run again on the same broker), clients, Kafka's
 * command-line tools as subprocesses, and {@link #await}.
 */
public final class Compat {
    private Compat() {}

    /** Bounds a single tool run. */
    public static final Duration TOOL_TIMEOUT = Duration.ofSeconds(90);
    /** Bounds the wait for something the broker does asynchronously. */
    public static final Duration AWAIT = Duration.ofSeconds(60);

    private static final String RUN = Long.toString(System.currentTimeMillis() % 100_000_000L, 36);
    private static final AtomicInteger SEQ = new AtomicInteger();

    public static String bootstrap() {
        return System.getProperty("bootstrap", "127.0.0.1:9092");
    }

    /** "sluice" or "kafka": only for messages; the assertions are the same for both. */
    public static String brokerKind() {
        return System.getProperty("broker.kind", "sluice");
    }

    /** A name no earlier run on this broker has used: PREFIX-RUN-N. */
    public static String unique(String prefix) {
        return prefix + "-" + RUN + "-" + SEQ.incrementAndGet();
    }

    // ---- clients --------------------------------------------------------------------------

    public static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 20_000);
        return Admin.create(p);
    }

    /** Producer properties with Kafka's defaults (idempotent, acks=all) and String serdes. */
    public static Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000);
        return p;
    }

    public static KafkaProducer<String, String> producer(Map<String, Object> overrides) {
        Properties p = producerProps();
        p.putAll(overrides);
        return new KafkaProducer<>(p);
    }

    /** Consumer properties: String serdes, from the earliest offset, no auto commit. */
    public static Properties consumerProps(String groupId) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        if (groupId != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        }
        return p;
    }

    public static KafkaConsumer<String, String> consumer(String groupId, Map<String, Object> overrides) {
        Properties p = consumerProps(groupId);
        p.putAll(overrides);
        return new KafkaConsumer<>(p);
    }

    public static void createTopic(Admin admin, String topic, int partitions) throws Exception {
        createTopic(admin, topic, partitions, Map.of());
    }

    public static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs)))
                .all().get(30, TimeUnit.SECONDS);
        // Until every partition has a leader, a producer's first send may wait for metadata.
        await("topic " + topic + " has " + partitions + " partitions with leaders", AWAIT, () -> {
            try {
                var d = admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
                return d.partitions().size() == partitions
                        && d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty());
            } catch (Exception e) {
                return false;
            }
        });
    }

    /**
     * Writes records (key, value) to explicit partitions (null: by key) with a producer that does
     * not need InitProducerId (enable.idempotence=false, acks=all): for tests whose subject is not
     * the producer, so that they do not depend on idempotence.
     */
    public static void seed(String topic, List<ProducerRecord<String, String>> records) throws Exception {
        try (KafkaProducer<String, String> p = producer(Map.of(
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false", ProducerConfig.ACKS_CONFIG, "all"))) {
            List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
            for (ProducerRecord<String, String> r : records) {
                fs.add(p.send(r));
            }
            for (var f : fs) {
                f.get(60, TimeUnit.SECONDS);
            }
        }
    }

    /** N records KEY-i/VALUE-i to one partition. */
    public static void seed(String topic, int partition, int n) throws Exception {
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            rs.add(new ProducerRecord<>(topic, partition, "k" + i, "v" + i));
        }
        seed(topic, rs);
    }

    /**
     * Reads every partition of the topic from the beginning (assign, no group) until n records
     * arrived; fails if they do not within the timeout or more arrive.
     */
    public static List<ConsumerRecord<String, String>> readAll(String topic, int n, Duration timeout) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(null, Map.of())) {
            List<TopicPartition> tps = c.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                    .map(pi -> new TopicPartition(pi.topic(), pi.partition()))
                    .collect(Collectors.toList());
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (out.size() < n && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            if (out.size() < n) {
                fail("read " + out.size() + " of " + n + " records from " + topic + " within " + timeout
                        + ": " + describe(out));
            }
            // Anything beyond n would be a duplicate: check the end offsets say n.
            long total = c.endOffsets(tps).values().stream().mapToLong(Long::longValue).sum()
                    - c.beginningOffsets(tps).values().stream().mapToLong(Long::longValue).sum();
            assertEquals(n, total, "records in " + topic);
        }
        return out;
    }

    public static String describe(List<ConsumerRecord<String, String>> rs) {
        return rs.stream().limit(20).map(r -> r.partition() + "@" + r.offset() + ":" + r.key() + "=" + r.value())
                .collect(Collectors.joining(", ", "[", rs.size() > 20 ? ", ...]" : "]"));
    }

    public static Map<TopicPartition, Long> offsets(Admin admin, String topic, int partitions, OffsetSpec spec)
            throws Exception {
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (int i = 0; i < partitions; i++) {
            req.put(new TopicPartition(topic, i), spec);
        }
        Map<TopicPartition, Long> out = new HashMap<>();
        admin.listOffsets(req).all().get(30, TimeUnit.SECONDS).forEach((tp, info) -> out.put(tp, info.offset()));
        return out;
    }

    /** "Type: message <- Type: message ..." along the causes, for a failure message. */
    public static String causes(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = t; c != null && b.length() < 2000; c = c.getCause() == c ? null : c.getCause()) {
            if (b.length() > 0) {
                b.append(" <- ");
            }
            b.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
        }
        return b.toString();
    }

    public static Throwable cause(ExecutionException e) {
        return e.getCause() == null ? e : e.getCause();
    }

    // ---- waiting ---------------------------------------------------------------------------

    /** Waits until the condition holds, polling it; fails with WHAT after the timeout. */
    public static void await(String what, Duration timeout, BooleanSupplier condition) {
        await(() -> what, timeout, condition);
    }

    /** Like {@link #await(String, Duration, BooleanSupplier)}, WHAT computed on failure (state then). */
    public static void await(Supplier<String> what, Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        long pause = 10;
        while (true) {
            if (condition.getAsBoolean()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out after " + timeout.toSeconds() + " s waiting until " + what.get());
            }
            try {
                Thread.sleep(pause); // polling interval of the condition, not a synchronisation
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                fail("interrupted waiting until " + what.get());
            }
            pause = Math.min(pause * 2, 250);
        }
    }

    /** Waits until the supplier returns a value that is not null; returns it. */
    public static <T> T awaitValue(String what, Duration timeout, Supplier<T> supplier) {
        Object[] box = new Object[1];
        await(what, timeout, () -> (box[0] = supplier.get()) != null);
        @SuppressWarnings("unchecked")
        T t = (T) box[0];
        return t;
    }

    // ---- Kafka's command-line tools ---------------------------------------------------------

    /** What a tool run left: its exit code and output. */
    public record ToolResult(String name, List<String> args, int exitCode, String stdout, String stderr) {
        public String out() {
            return stdout;
        }

        public List<String> lines() {
            return stdout.lines().collect(Collectors.toList());
        }

        /** Fails unless the tool exited with 0. */
        public ToolResult ok() {
            if (exitCode != 0) {
                fail(this + " exited with " + exitCode);
            }
            return this;
        }

        @Override
        public String toString() {
            return name + " " + String.join(" ", args) + "\n--- stdout:\n" + clip(stdout) + "--- stderr:\n"
                    + clip(stderr);
        }

        private static String clip(String s) {
            return s.length() > 4000 ? s.substring(0, 4000) + "\n[...]\n" : s;
        }
    }

    /** Runs a Kafka tool (fetch.sh tool NAME ARGS) without input. */
    public static ToolResult tool(String name, String... args) {
        return toolWithInput(null, name, args);
    }

    /** Runs a Kafka tool with this text on its stdin (then closed), bounded by TOOL_TIMEOUT. */
    public static ToolResult toolWithInput(String stdin, String name, String... args) {
        String fetch = System.getProperty("kafka.fetch");
        if (fetch == null || !new File(fetch).isFile()) {
            fail("system property kafka.fetch does not name compat/kafka/fetch.sh: " + fetch);
        }
        List<String> cmd = new ArrayList<>(List.of("bash", fetch, "tool", name));
        cmd.addAll(Arrays.asList(args));
        Path out = null;
        Path err = null;
        try {
            out = Files.createTempFile("tool-out", ".txt");
            err = Files.createTempFile("tool-err", ".txt");
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
            // A JVM per tool on a small machine: keep its heap and start-up small.
            pb.environment().put("KAFKA_TOOL_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto");
            Process p = pb.start();
            try (OutputStream in = p.getOutputStream()) {
                if (stdin != null) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            if (!p.waitFor(TOOL_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                fail("timed out after " + TOOL_TIMEOUT.toSeconds() + " s: "
                        + new ToolResult(name, Arrays.asList(args), -1, Files.readString(out), Files.readString(err)));
            }
            return new ToolResult(name, Arrays.asList(args), p.exitValue(), Files.readString(out), Files.readString(err));
        } catch (IOException e) {
            throw new RuntimeException("running " + cmd, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuntimeException("interrupted running " + cmd, e);
        } finally {
            try {
                if (out != null) Files.deleteIfExists(out);
                if (err != null) Files.deleteIfExists(err);
            } catch (IOException ignored) {
                // temp files
            }
        }
    }

    /** A temporary file with this content, deleted when the JVM exits. */
    public static Path tempFile(String prefix, String content) throws IOException {
        Path f = Files.createTempFile(prefix, ".tmp");
        f.toFile().deleteOnExit();
        Files.writeString(f, content);
        return f;
    }

    public static <T> List<T> sorted(Collection<T> c) {
        List<T> l = new ArrayList<>(c);
        l.sort(null);
        return l;
    }
}
