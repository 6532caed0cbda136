package dev.sluice.compat;

import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.await;
import static dev.sluice.compat.Compat.bootstrap;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.offsets;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A Kafka Streams word count under exactly_once_v2 whose process is killed with SIGKILL again
 * and again while lines keep coming: its output, read read_committed, holds every word's counts
 * exactly once (1, 2, ..., n in order).
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class StreamsExactlyOnceKillTest {
    private static final String[] WORDS = {"alpha", "beta", "gamma", "delta", "epsilon"};

    private Process spawn(String app, String input, String output, Path stateDir) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        Process child = new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
                EosWordCountApp.class.getName(), bootstrap(), app, input, output, stateDir.toString())
                .redirectErrorStream(true)
                .start();
        BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        for (String line; (line = out.readLine()) != null; ) {
            if (line.equals("RUNNING")) {
                // Keep draining its output so that it never blocks on a full pipe.
                Thread drain = new Thread(() -> {
                    try {
                        while (out.readLine() != null) { }
                    } catch (IOException e) {
                        // the process is gone
                    }
                });
                drain.setDaemon(true);
                drain.start();
                return child;
            }
            seen.append(line).append('\n');
        }
        throw new AssertionError("the application ended before RUNNING:\n" + seen);
    }

    private static void kill(Process child) throws InterruptedException {
        child.destroyForcibly(); // SIGKILL
        child.waitFor(30, TimeUnit.SECONDS);
    }

    @Test
    void wordCountKilledAgainAndAgainCountsEveryWordOnce() throws Exception {
        String app = unique("streams-eos-kill");
        String input = app + "-input";
        String output = app + "-output";
        try (Admin admin = admin()) {
            createTopic(admin, input, 2);
            createTopic(admin, output, 1);
        }
        Path stateDir = Files.createTempDirectory("streams-eos-kill");
        Map<String, Long> expected = new TreeMap<>();
        int[] lineNo = {0};
        try (Admin admin = admin(); KafkaProducer<String, String> producer = Compat.producer(Map.of())) {
            Runnable sendLines = () -> {
                for (int i = 0; i < 30; i++) {
                    lineNo[0]++;
                    List<String> line = new ArrayList<>();
                    for (int k = 0; k < 3; k++) {
                        String w = WORDS[(lineNo[0] * 7 + k * 3) % WORDS.length];
                        line.add(w);
                        expected.merge(w, 1L, Long::sum);
                    }
                    producer.send(new ProducerRecord<>(input, Integer.toString(lineNo[0] % 3), String.join(" ", line)));
                }
                producer.flush();
            };
            for (int round = 0; round < 4; round++) {
                Process child = spawn(app, input, output, stateDir);
                long before = offsets(admin, output, 1, OffsetSpec.latest()).values().iterator().next();
                sendLines.run();
                // Killed once it has written some of this round's results, committed or not.
                await(() -> "round output", Duration.ofSeconds(60), () -> {
                    try {
                        return offsets(admin, output, 1, OffsetSpec.latest()).values().iterator().next() >= before + 20;
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
                kill(child);
            }
            Process child = spawn(app, input, output, stateDir);
            try {
                sendLines.run();
                Properties cp = Compat.consumerProps(null);
                cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
                cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
                Map<String, List<Long>> seen = new TreeMap<>();
                try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp)) {
                    TopicPartition tp = new TopicPartition(output, 0);
                    c.assign(List.of(tp));
                    c.seekToBeginning(List.of(tp));
                    await(() -> "every word's last count " + expected + " (so far " + seen + ")", Duration.ofSeconds(90), () -> {
                        c.poll(Duration.ofMillis(200)).forEach(r -> seen.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value()));
                        return expected.entrySet().stream().allMatch(e -> {
                            List<Long> counts = seen.get(e.getKey());
                            return counts != null && counts.get(counts.size() - 1).equals(e.getValue());
                        });
                    });
                }
                for (Map.Entry<String, Long> e : expected.entrySet()) {
                    List<Long> once = LongStream.rangeClosed(1, e.getValue()).boxed().collect(Collectors.toList());
                    assertEquals(once, seen.get(e.getKey()), "the counts of " + e.getKey() + ": every one once, in order");
                }
            } finally {
                kill(child);
                try (Stream<Path> s = Files.walk(stateDir)) {
                    s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
    }
}
