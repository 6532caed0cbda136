package dev.sluice.compat;

import static dev.sluice.compat.Compat.AWAIT;
import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.await;
import static dev.sluice.compat.Compat.bootstrap;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.offsets;
import static dev.sluice.compat.Compat.seed;
import static dev.sluice.compat.Compat.tempFile;
import static dev.sluice.compat.Compat.tool;
import static dev.sluice.compat.Compat.toolWithInput;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Kafka's command-line tools as users type them (the quickstart and the operations guide), with
 * their default settings.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class ToolsTest {

    private static int nodeId(Admin admin) throws Exception {
        var nodes = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS);
        assertEquals(1, nodes.size(), "nodes: " + nodes);
        return nodes.iterator().next().id();
    }

    /** kafka-topics: --create, --describe, --list, --create of an existing topic, --alter. */
    @Test
    void topics() throws Exception {
        String b = bootstrap();
        String t = unique("tools-topic");
        try (Admin admin = admin()) {
            int node = nodeId(admin);

            var created = tool("kafka-topics", "--create", "--bootstrap-server", b, "--replication-factor", "1",
                    "--partitions", "3", "--topic", t).ok();
            assertTrue(created.out().contains("Created topic " + t + "."), created.toString());

            var described = tool("kafka-topics", "--describe", "--bootstrap-server", b, "--topic", t).ok();
            assertDescribes(described, t, 3, node);

            var listed = tool("kafka-topics", "--list", "--bootstrap-server", b).ok();
            assertTrue(listed.lines().contains(t), listed.toString());

            var again = tool("kafka-topics", "--create", "--bootstrap-server", b, "--replication-factor", "1",
                    "--partitions", "3", "--topic", t);
            assertNotEquals(0, again.exitCode(), again.toString());
            assertTrue((again.stdout() + again.stderr()).contains("Topic '" + t + "' already exists."),
                    again.toString());

            tool("kafka-topics", "--alter", "--bootstrap-server", b, "--topic", t, "--partitions", "6").ok();
            await(t + " has 6 partitions", AWAIT, () -> {
                try {
                    return admin.describeTopics(List.of(t)).allTopicNames().get().get(t).partitions().size() == 6;
                } catch (Exception e) {
                    return false;
                }
            });
            assertDescribes(tool("kafka-topics", "--describe", "--bootstrap-server", b, "--topic", t).ok(), t, 6,
                    node);
        }
    }

    private static void assertDescribes(Compat.ToolResult r, String t, int partitions, int node) {
        String out = r.out();
        assertTrue(Pattern.compile("Topic: " + Pattern.quote(t) + "\\s+TopicId: \\S+\\s+PartitionCount: "
                + partitions + "\\s+ReplicationFactor: 1\\s").matcher(out).find(), r.toString());
        Pattern line = Pattern.compile("^\\s*Topic: " + Pattern.quote(t)
                + "\\s+Partition: (\\d+)\\s+Leader: (\\S+)\\s+Replicas: (\\S+)\\s+Isr: (\\S+)", Pattern.MULTILINE);
        Matcher m = line.matcher(out);
        Set<Integer> seen = new HashSet<>();
        while (m.find()) {
            seen.add(Integer.parseInt(m.group(1)));
            String id = Integer.toString(node);
            assertEquals(id, m.group(2), "Leader of partition " + m.group(1) + "\n" + r);
            assertEquals(id, m.group(3), "Replicas of partition " + m.group(1) + "\n" + r);
            assertEquals(id, m.group(4), "Isr of partition " + m.group(1) + "\n" + r);
        }
        Set<Integer> all = new HashSet<>();
        for (int i = 0; i < partitions; i++) {
            all.add(i);
        }
        assertEquals(all, seen, "partition lines\n" + r);
    }

    private static List<String> keyedLines(int n) {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            lines.add("key" + (i % 7) + ":value" + i);
        }
        return lines;
    }

    /** Parses the console consumer's "key\tvalue" lines (print.key=true) into a multiset. */
    private static Map<String, Integer> multiset(List<String> lines) {
        Map<String, Integer> m = new TreeMap<>();
        for (String l : lines) {
            m.merge(l, 1, Integer::sum);
        }
        return m;
    }

    private static Compat.ToolResult consoleConsume(String t, String group, int n) {
        List<String> args = new ArrayList<>(List.of("--bootstrap-server", bootstrap(), "--topic", t,
                "--from-beginning", "--max-messages", Integer.toString(n), "--formatter-property",
                "print.key=true", "--timeout-ms", "60000"));
        if (group != null) {
            args.add("--group");
            args.add(group);
        }
        return tool("kafka-console-consumer", args.toArray(new String[0])).ok();
    }

    private static List<String> consumedLines(Compat.ToolResult r) {
        return r.lines().stream().filter(l -> l.startsWith("key")).collect(Collectors.toList());
    }

    /**
     * The quickstart's console producer (default settings: idempotent, so InitProducerId) with keys,
     * and the console consumer reading every key/value back.
     */
    @Test
    void consoleProducerAndConsumer() throws Exception {
        String b = bootstrap();
        String t = unique("tools-console");
        try (Admin admin = admin()) {
            createTopic(admin, t, 3);
        }
        List<String> lines = keyedLines(30);
        toolWithInput(String.join("\n", lines) + "\n", "kafka-console-producer", "--bootstrap-server", b,
                "--topic", t, "--reader-property", "parse.key=true", "--reader-property", "key.separator=:").ok();

        var consumed = consoleConsume(t, null, lines.size());
        List<String> expected = lines.stream().map(l -> l.replace(':', '\t')).collect(Collectors.toList());
        assertEquals(multiset(expected), multiset(consumedLines(consumed)), consumed.toString());
        assertTrue(consumed.stderr().contains("Processed a total of " + lines.size() + " messages"),
                consumed.toString());
        // Within a partition (a key's records are in one), the order is the producer's.
        Map<String, List<String>> byKey = new HashMap<>();
        for (String l : consumedLines(consumed)) {
            byKey.computeIfAbsent(l.split("\t")[0], k -> new ArrayList<>()).add(l);
        }
        for (var e : byKey.entrySet()) {
            List<String> want = expected.stream().filter(l -> l.startsWith(e.getKey() + "\t"))
                    .collect(Collectors.toList());
            assertEquals(want, e.getValue(), "order of key " + e.getKey());
        }
    }

    /**
     * kafka-consumer-groups: --describe after the console consumer committed, --list,
     * --reset-offsets --to-earliest --execute (then the consumer reads everything again), --delete.
     */
    @Test
    void consumerGroups() throws Exception {
        String b = bootstrap();
        String t = unique("tools-groups");
        String g = unique("tools-group");
        List<ProducerRecord<String, String>> records = new ArrayList<>();
        List<String> expected = new ArrayList<>();
        int[] perPartition = {5, 0, 7};
        for (int p = 0; p < perPartition.length; p++) {
            for (int i = 0; i < perPartition[p]; i++) {
                records.add(new ProducerRecord<>(t, p, "key" + p, "value" + p + "-" + i));
                expected.add("key" + p + "\tvalue" + p + "-" + i);
            }
        }
        try (Admin admin = admin()) {
            createTopic(admin, t, 3);
            seed(t, records);

            var consumed = consoleConsume(t, g, expected.size());
            assertEquals(multiset(expected), multiset(consumedLines(consumed)), consumed.toString());

            var described = tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g).ok();
            assertTrue(described.out().matches("(?s).*GROUP\\s+TOPIC\\s+PARTITION\\s+CURRENT-OFFSET\\s+"
                    + "LOG-END-OFFSET\\s+LAG\\s+CONSUMER-ID\\s+HOST\\s+CLIENT-ID.*"), described.toString());
            Pattern row = Pattern.compile("^" + Pattern.quote(g) + "\\s+" + Pattern.quote(t)
                    + "\\s+(\\d+)\\s+(\\S+)\\s+(\\S+)\\s+(\\S+)", Pattern.MULTILINE);
            Matcher m = row.matcher(described.out());
            Map<Integer, String> rows = new TreeMap<>();
            while (m.find()) {
                rows.put(Integer.parseInt(m.group(1)), m.group(2) + " " + m.group(3) + " " + m.group(4));
            }
            Map<Integer, String> want = new TreeMap<>();
            for (int p = 0; p < perPartition.length; p++) {
                // CURRENT-OFFSET LOG-END-OFFSET LAG
                want.put(p, perPartition[p] + " " + perPartition[p] + " 0");
            }
            assertEquals(want, rows, described.toString());

            var listed = tool("kafka-consumer-groups", "--bootstrap-server", b, "--list").ok();
            assertTrue(listed.lines().contains(g), listed.toString());

            var reset = tool("kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--to-earliest",
                    "--topic", t, "--group", g, "--execute").ok();
            Pattern resetRow = Pattern.compile("^" + Pattern.quote(g) + "\\s+" + Pattern.quote(t)
                    + "\\s+(\\d+)\\s+(\\d+)\\s*$", Pattern.MULTILINE);
            Matcher rm = resetRow.matcher(reset.out());
            Map<Integer, Long> newOffsets = new TreeMap<>();
            while (rm.find()) {
                newOffsets.put(Integer.parseInt(rm.group(1)), Long.parseLong(rm.group(2)));
            }
            assertEquals(Map.of(0, 0L, 1, 0L, 2, 0L), newOffsets, reset.toString());
            var committed = admin.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            for (int p = 0; p < 3; p++) {
                assertEquals(0L, committed.get(new TopicPartition(t, p)).offset(), "committed offset of " + p);
            }

            // The group's consumer reads everything again, from the reset offsets.
            var again = consoleConsume(t, g, expected.size());
            assertEquals(multiset(expected), multiset(consumedLines(again)), again.toString());

            var deleted = tool("kafka-consumer-groups", "--bootstrap-server", b, "--delete", "--group", g).ok();
            assertTrue(deleted.out().contains("Deletion of requested consumer groups ('" + g + "') was successful."),
                    deleted.toString());
            var listedAfter = tool("kafka-consumer-groups", "--bootstrap-server", b, "--list").ok();
            assertTrue(!listedAfter.lines().contains(g), listedAfter.toString());
        }
    }

    /** kafka-configs --alter --add-config, --describe, --delete-config on a topic. */
    @Test
    void configs() throws Exception {
        String b = bootstrap();
        String t = unique("tools-configs");
        try (Admin admin = admin()) {
            createTopic(admin, t, 1);
        }
        var alter = tool("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "topics",
                "--entity-name", t, "--add-config", "retention.ms=123456789").ok();
        assertTrue(alter.out().contains("Completed updating config for topic " + t + "."), alter.toString());

        var described = tool("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "topics",
                "--entity-name", t).ok();
        assertTrue(described.out().contains("Dynamic configs for topic " + t + " are:"), described.toString());
        assertTrue(described.out().contains(
                "retention.ms=123456789 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=123456789}"),
                described.toString());

        tool("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "topics", "--entity-name", t,
                "--delete-config", "retention.ms").ok();
        var after = tool("kafka-configs", "--bootstrap-server", b, "--describe", "--entity-type", "topics",
                "--entity-name", t).ok();
        assertTrue(after.out().contains("Dynamic configs for topic " + t + " are:"), after.toString());
        assertTrue(!after.out().contains("retention.ms"), after.toString());
    }

    /** kafka-get-offsets prints TOPIC:PARTITION:OFFSET lines (latest by default, --time -2 earliest). */
    @Test
    void getOffsets() throws Exception {
        String b = bootstrap();
        String t = unique("tools-offsets");
        try (Admin admin = admin()) {
            createTopic(admin, t, 3);
            seed(t, 0, 4);
            seed(t, 2, 9);
        }
        var latest = tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t).ok();
        assertEquals(Set.of(t + ":0:4", t + ":1:0", t + ":2:9"), new HashSet<>(latest.lines()), latest.toString());
        var earliest = tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", "-2").ok();
        assertEquals(Set.of(t + ":0:0", t + ":1:0", t + ":2:0"), new HashSet<>(earliest.lines()),
                earliest.toString());
    }

    /** kafka-delete-records --offset-json-file moves the low watermark. */
    @Test
    void deleteRecords() throws Exception {
        String b = bootstrap();
        String t = unique("tools-delete-records");
        try (Admin admin = admin()) {
            createTopic(admin, t, 2);
            seed(t, 0, 10);
            seed(t, 1, 3);
            var json = tempFile("offsets", "{\"partitions\":[{\"topic\":\"" + t + "\",\"partition\":0,\"offset\":6},"
                    + "{\"topic\":\"" + t + "\",\"partition\":1,\"offset\":-1}],\"version\":1}");
            var r = tool("kafka-delete-records", "--bootstrap-server", b, "--offset-json-file", json.toString()).ok();
            assertTrue(r.out().contains("partition: " + t + "-0\tlow_watermark: 6"), r.toString());
            // offset -1: up to the high watermark.
            assertTrue(r.out().contains("partition: " + t + "-1\tlow_watermark: 3"), r.toString());
            assertEquals(Map.of(new TopicPartition(t, 0), 6L, new TopicPartition(t, 1), 3L),
                    offsets(admin, t, 2, OffsetSpec.earliest()));
            assertEquals(Map.of(new TopicPartition(t, 0), 10L, new TopicPartition(t, 1), 3L),
                    offsets(admin, t, 2, OffsetSpec.latest()));
            var earliest = tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", "-2").ok();
            assertEquals(Set.of(t + ":0:6", t + ":1:3"), new HashSet<>(earliest.lines()), earliest.toString());
        }
    }

    /** kafka-producer-perf-test with the producer's defaults (idempotent). */
    @Test
    void producerPerfTest() throws Exception {
        String b = bootstrap();
        String t = unique("tools-perf-produce");
        try (Admin admin = admin()) {
            createTopic(admin, t, 3);
            var r = tool("kafka-producer-perf-test", "--topic", t, "--num-records", "2000", "--record-size", "100",
                    "--throughput", "-1", "--producer-props", "bootstrap.servers=" + b).ok();
            assertTrue(Pattern.compile("^2000 records sent, ", Pattern.MULTILINE).matcher(r.out()).find(),
                    r.toString());
            long total = offsets(admin, t, 3, OffsetSpec.latest()).values().stream().mapToLong(Long::longValue).sum();
            assertEquals(2000, total, "records in " + t);
        }
    }

    /** kafka-consumer-perf-test reads 2000 records. */
    @Test
    void consumerPerfTest() throws Exception {
        String b = bootstrap();
        String t = unique("tools-perf-consume");
        try (Admin admin = admin()) {
            createTopic(admin, t, 3);
        }
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        String value = "x".repeat(100);
        for (int i = 0; i < 2000; i++) {
            rs.add(new ProducerRecord<>(t, i % 3, null, value));
        }
        seed(t, rs);
        var r = tool("kafka-consumer-perf-test", "--bootstrap-server", b, "--topic", t, "--messages", "2000").ok();
        // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
        List<String> header = List.of(r.lines().stream().filter(l -> l.startsWith("start.time")).findFirst()
                .orElseThrow(() -> new AssertionError("no header\n" + r)).split(",\\s*"));
        int col = header.indexOf("data.consumed.in.nMsg");
        String data = r.lines().stream().filter(l -> l.matches("^\\d{4}-.*")).findFirst()
                .orElseThrow(() -> new AssertionError("no result line\n" + r));
        assertEquals("2000", data.split(",\\s*")[col], r.toString());
    }

    /**
     * kafka-leader-election --election-type PREFERRED: on one node the leader is already the
     * preferred replica (ElectLeaders answers ELECTION_NOT_NEEDED).
     */
    @Test
    void leaderElection() throws Exception {
        String b = bootstrap();
        String t = unique("tools-election");
        try (Admin admin = admin()) {
            createTopic(admin, t, 2);
        }
        var one = tool("kafka-leader-election", "--bootstrap-server", b, "--election-type", "PREFERRED", "--topic", t,
                "--partition", "0").ok();
        assertEquals("Valid replica already elected for partitions " + t + "-0", one.out().strip(), one.toString());
        var all = tool("kafka-leader-election", "--bootstrap-server", b, "--election-type", "PREFERRED",
                "--all-topic-partitions").ok();
        // Kafka leaves out of its answer the partitions whose leader is already the preferred one.
        assertTrue(!all.out().contains("Error"), all.toString());
    }

    /**
     * kafka-transactions describe-producers (DescribeProducers): the idempotent producer that
     * wrote three records, with its last sequence number.
     */
    @Test
    void describeProducers() throws Exception {
        String t = unique("tools-producers");
        try (Admin admin = admin()) {
            createTopic(admin, t, 1);
        }
        try (var producer = Compat.producer(Map.of())) {
            for (int i = 0; i < 3; i++) {
                producer.send(new ProducerRecord<>(t, 0, "k" + i, "v" + i)).get(60, TimeUnit.SECONDS);
            }
        }
        var r = tool("kafka-transactions", "--bootstrap-server", bootstrap(), "describe-producers", "--topic", t,
                "--partition", "0").ok();
        List<String> lines = r.lines();
        assertTrue(lines.get(0).matches(
                "ProducerId\\s+ProducerEpoch\\s+LatestCoordinatorEpoch\\s+LastSequence\\s+LastTimestamp\\s+CurrentTransactionStartOffset\\s*"),
                r.toString());
        assertEquals(2, lines.size(), r.toString());
        String[] row = lines.get(1).trim().split("\\s+");
        assertTrue(Long.parseLong(row[0]) >= 0, r.toString());
        assertEquals("0", row[1], r.toString());
        assertEquals("2", row[3], r.toString());
        assertEquals("None", row[5], r.toString());
    }

    /** kafka-transactions list (ListTransactions): no open transactions, just the header. */
    @Test
    void transactionsList() {
        var r = tool("kafka-transactions", "--bootstrap-server", bootstrap(), "list").ok();
        assertTrue(r.lines().get(0).matches("TransactionalId\\s+Coordinator\\s+ProducerId\\s+TransactionState\\s*"),
                r.toString());
    }
}
