package dev.sluice.compat;

import static dev.sluice.compat.Compat.AWAIT;
import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.await;
import static dev.sluice.compat.Compat.consumer;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.seed;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** KafkaConsumer with the classic group protocol. */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ConsumerTest {

    /**
     * A group member polling in a thread of its own (a KafkaConsumer is single-threaded): what
     * its ConsumerRebalanceListener saw, and the partitions it owns.
     */
    static final class Member implements AutoCloseable {
        final String name;
        final List<String> events = new CopyOnWriteArrayList<>();
        final List<Set<TopicPartition>> revocations = new CopyOnWriteArrayList<>();
        final Set<TopicPartition> owned = ConcurrentHashMap.newKeySet();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        private volatile boolean stop;
        private final Thread thread;

        Member(String name, String group, String topic, Map<String, Object> overrides) {
            this.name = name;
            Map<String, Object> o = new HashMap<>(overrides);
            o.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
            this.thread = new Thread(() -> run(group, topic, o), "member-" + name);
            thread.setDaemon(true);
            thread.start();
        }

        private void run(String group, String topic, Map<String, Object> overrides) {
            try (KafkaConsumer<String, String> c = consumer(group, overrides)) {
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                        events.add("revoked " + Compat.sorted(ps.stream().map(TopicPartition::partition)
                                .collect(Collectors.toList())));
                        if (!ps.isEmpty()) {
                            revocations.add(new HashSet<>(ps));
                        }
                        owned.removeAll(ps);
                    }

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                        events.add("assigned " + Compat.sorted(ps.stream().map(TopicPartition::partition)
                                .collect(Collectors.toList())));
                        owned.addAll(ps);
                    }

                    @Override
                    public void onPartitionsLost(Collection<TopicPartition> ps) {
                        events.add("lost " + ps);
                        owned.removeAll(ps);
                    }
                });
                while (!stop) {
                    c.poll(Duration.ofMillis(100));
                }
            } catch (Throwable t) {
                failure.set(t);
            }
        }

        Set<Integer> ownedPartitions() {
            return owned.stream().map(TopicPartition::partition).collect(Collectors.toSet());
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            thread.join(60_000);
            if (failure.get() != null) {
                throw new AssertionError(name + " failed", failure.get());
            }
        }

        @Override
        public String toString() {
            return name + " owns " + Compat.sorted(ownedPartitions()) + ", events " + events;
        }
    }

    private static String topic(String prefix, int partitions) throws Exception {
        String t = unique(prefix);
        try (Admin admin = admin()) {
            createTopic(admin, t, partitions);
        }
        return t;
    }

    private static Set<Integer> range(int n) {
        return IntStream.range(0, n).boxed().collect(Collectors.toSet());
    }

    /** Waits until the members own disjoint sets of 2 partitions of 4 together, all of them. */
    private static void awaitSplit(Member a, Member b) {
        await(() -> "the two members split the 4 partitions: " + a + "; " + b, AWAIT, () -> {
            Set<Integer> x = a.ownedPartitions();
            Set<Integer> y = b.ownedPartitions();
            Set<Integer> all = new HashSet<>(x);
            all.addAll(y);
            return x.size() == 2 && y.size() == 2 && all.equals(range(4));
        });
    }

    /** RangeAssignor (eager): the first member gives up everything when the second joins. */
    @Test
    void rangeAssignment() throws Exception {
        String t = topic("consumer-range", 4);
        String g = unique("consumer-range-group");
        Map<String, Object> o = Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
        try (Member a = new Member("a", g, t, o)) {
            await(() -> "a owns all 4 partitions: " + a, AWAIT, () -> a.ownedPartitions().equals(range(4)));
            try (Member b = new Member("b", g, t, o)) {
                awaitSplit(a, b);
                // Eager: a was revoked all it had before the new assignment.
                assertTrue(a.revocations.stream().anyMatch(r -> r.size() == 4), a.toString());
                // Range over 4 partitions and 2 members: contiguous halves.
                Set<Integer> x = a.ownedPartitions();
                assertTrue(x.equals(Set.of(0, 1)) || x.equals(Set.of(2, 3)), a + "; " + b);
            }
            await(() -> "a owns all 4 partitions again after b left: " + a, AWAIT, () -> a.ownedPartitions().equals(range(4)));
        }
    }

    /** CooperativeStickyAssignor: only the partitions that move are revoked, in a second rebalance. */
    @Test
    void cooperativeStickyAssignment() throws Exception {
        String t = topic("consumer-coop", 4);
        String g = unique("consumer-coop-group");
        Map<String, Object> o = Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                CooperativeStickyAssignor.class.getName());
        try (Member a = new Member("a", g, t, o)) {
            await(() -> "a owns all 4 partitions: " + a, AWAIT, () -> a.ownedPartitions().equals(range(4)));
            try (Member b = new Member("b", g, t, o)) {
                awaitSplit(a, b);
                // a kept 2 of its partitions: it was revoked only the 2 that b got.
                Set<TopicPartition> revoked = new HashSet<>();
                a.revocations.forEach(revoked::addAll);
                assertEquals(b.owned, revoked, a + "; " + b);
                assertTrue(a.revocations.stream().allMatch(r -> r.size() <= 2), a.toString());
                assertTrue(b.revocations.isEmpty(), b.toString());
            }
            await(() -> "a owns all 4 partitions again after b left: " + a, AWAIT, () -> a.ownedPartitions().equals(range(4)));
            assertEquals(1, a.revocations.size(), "a's revocations: " + a);
        }
    }

    /**
     * Static membership (group.instance.id): a member that closes and comes back within the
     * session timeout gets its partitions back, without a rebalance (the other keeps its own).
     */
    @Test
    void staticMembership() throws Exception {
        String t = topic("consumer-static", 4);
        String g = unique("consumer-static-group");
        Map<String, Object> common = Map.of(
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName(),
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 60_000);
        Map<String, Object> oa = new HashMap<>(common);
        oa.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-a");
        Map<String, Object> ob = new HashMap<>(common);
        ob.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-b");
        try (Member b = new Member("b", g, t, ob)) {
            Set<Integer> aHad;
            try (Member a = new Member("a", g, t, oa)) {
                awaitSplit(a, b);
                aHad = a.ownedPartitions();
            }
            // a closed without leaving the group (static members do not send LeaveGroup).
            Set<Integer> bHas = b.ownedPartitions();
            int bRevocations = b.revocations.size();
            long start = System.nanoTime();
            try (Member a2 = new Member("a2", g, t, oa)) {
                await(() -> "a2 (instance-a again) owns " + aHad + ": " + a2 + "; " + b, AWAIT,
                        () -> a2.ownedPartitions().equals(aHad));
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                assertTrue(ms < 30_000, "a2 got its partitions after " + ms + " ms (session timeout 60 s)");
                assertEquals(bHas, b.ownedPartitions(), b.toString());
                assertEquals(bRevocations, b.revocations.size(), "b was not revoked anything: " + b);
            }
        }
    }

    private static List<ProducerRecord<String, String>> records(String t, int partition, int n, long ts0) {
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            rs.add(new ProducerRecord<>(t, partition, ts0 + 1000L * i, "k" + i, "v" + i));
        }
        return rs;
    }

    /** commitSync, committed(), and a new member of the group resuming from the committed offset. */
    @Test
    void commitAndResume() throws Exception {
        String t = topic("consumer-commit", 1);
        String g = unique("consumer-commit-group");
        TopicPartition tp = new TopicPartition(t, 0);
        seed(t, records(t, 0, 10, System.currentTimeMillis()));
        try (KafkaConsumer<String, String> c = consumer(g, Map.of(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 3))) {
            c.subscribe(List.of(t));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.nanoTime() + AWAIT.toNanos();
            while (got.size() < 3 && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            assertEquals(List.of("v0", "v1", "v2"), got.stream().map(ConsumerRecord::value).collect(Collectors.toList()));
            c.commitSync(Map.of(tp, new OffsetAndMetadata(4, "meta-4")));
            OffsetAndMetadata committed = c.committed(Set.of(tp)).get(tp);
            assertEquals(4, committed.offset());
            assertEquals("meta-4", committed.metadata());
        }
        try (KafkaConsumer<String, String> c = consumer(g, Map.of())) {
            c.subscribe(List.of(t));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.nanoTime() + AWAIT.toNanos();
            while (got.size() < 6 && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            assertEquals(List.of(4L, 5L, 6L, 7L, 8L, 9L), got.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
            assertEquals(4, c.committed(Set.of(tp)).get(tp).offset());
            c.commitSync();
            assertEquals(10, c.committed(Set.of(tp)).get(tp).offset());
        }
    }

    /** seek, offsetsForTimes, beginningOffsets and endOffsets on assigned partitions. */
    @Test
    void seekAndOffsets() throws Exception {
        String t = topic("consumer-seek", 2);
        long ts0 = System.currentTimeMillis() - 3_600_000L;
        seed(t, records(t, 0, 10, ts0));
        TopicPartition p0 = new TopicPartition(t, 0);
        TopicPartition p1 = new TopicPartition(t, 1);
        try (KafkaConsumer<String, String> c = consumer(null, Map.of())) {
            assertEquals(Map.of(p0, 0L, p1, 0L), c.beginningOffsets(List.of(p0, p1)));
            assertEquals(Map.of(p0, 10L, p1, 0L), c.endOffsets(List.of(p0, p1)));

            Map<TopicPartition, OffsetAndTimestamp> ft = c.offsetsForTimes(Map.of(p0, ts0 + 2500, p1, ts0));
            assertEquals(3, ft.get(p0).offset(), "offsetsForTimes(ts0 + 2.5 s): " + ft);
            assertEquals(ts0 + 3000, ft.get(p0).timestamp(), "offsetsForTimes(ts0 + 2.5 s): " + ft);
            assertNull(ft.get(p1), "no record in partition 1");
            Map<TopicPartition, OffsetAndTimestamp> none = c.offsetsForTimes(Map.of(p0, ts0 + 10_000));
            assertNull(none.get(p0), "no record at or after the last timestamp + 1 s");
            OffsetAndTimestamp first = c.offsetsForTimes(Map.of(p0, 0L)).get(p0);
            assertEquals(0, first.offset(), "offsetsForTimes(0): " + first);
            assertEquals(ts0, first.timestamp(), "offsetsForTimes(0): " + first);

            c.assign(List.of(p0));
            c.seek(p0, 7);
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.nanoTime() + AWAIT.toNanos();
            while (got.size() < 3 && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            assertEquals(List.of(7L, 8L, 9L), got.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
            assertEquals(List.of("v7", "v8", "v9"), got.stream().map(ConsumerRecord::value).collect(Collectors.toList()));
            assertEquals(ts0 + 7000, got.get(0).timestamp());
            assertEquals(10, c.position(p0));

            c.seek(p0, 2);
            got.clear();
            deadline = System.nanoTime() + AWAIT.toNanos();
            while (got.isEmpty() && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            assertEquals(2L, got.get(0).offset());
            c.seekToEnd(List.of(p0));
            assertEquals(10, c.position(p0));
            c.seekToBeginning(List.of(p0));
            assertEquals(0, c.position(p0));
        }
    }
}
