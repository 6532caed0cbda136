package dev.sluice.compat;

import static dev.sluice.compat.Compat.AWAIT;
import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.await;
import static dev.sluice.compat.Compat.consumer;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.producer;
import static dev.sluice.compat.Compat.seed;
import static dev.sluice.compat.Compat.tool;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Transactions with the Java clients: commit and abort seen by read_committed and
 * read_uncommitted consumers, the last stable offset, consume-transform-produce with
 * sendOffsetsToTransaction, zombie fencing, and {@code kafka-transactions}.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TransactionsTest {

    private static KafkaProducer<String, String> transactional(String id) {
        return producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id));
    }

    /** Values of partition 0 of {@code topic} read from the start under {@code isolation}. */
    private static List<String> values(String topic, String isolation, int expected) {
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(null,
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation))) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            int quietPolls = 0;
            while (System.nanoTime() < deadline && (out.size() < expected || quietPolls < 3)) {
                var records = c.poll(Duration.ofMillis(200));
                records.forEach(r -> out.add(r.value()));
                quietPolls = records.isEmpty() && out.size() >= expected ? quietPolls + 1 : 0;
            }
        }
        return out;
    }

    private static long latest(Admin admin, String topic, IsolationLevel isolation) throws Exception {
        TopicPartition tp = new TopicPartition(topic, 0);
        return admin.listOffsets(Map.of(tp, OffsetSpec.latest()), new ListOffsetsOptions(isolation))
                .partitionResult(tp).get(30, TimeUnit.SECONDS).offset();
    }

    @Test
    void committedAndAbortedTransactionsAndTheLastStableOffset() throws Exception {
        String topic = unique("txn-java");
        try (Admin admin = admin(); KafkaProducer<String, String> p = transactional(unique("txn-java-id"))) {
            createTopic(admin, topic, 1);
            p.initTransactions();
            p.beginTransaction();
            for (int i = 0; i < 3; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k", "committed-" + i));
            }
            p.commitTransaction();
            p.beginTransaction();
            for (int i = 0; i < 2; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k", "aborted-" + i));
            }
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 0, "k", "open"));
            p.flush();
            // 3 records + marker + 2 records + marker: the open record is at 7.
            assertEquals(7, latest(admin, topic, IsolationLevel.READ_COMMITTED));
            assertEquals(8, latest(admin, topic, IsolationLevel.READ_UNCOMMITTED));
            assertEquals(List.of("committed-0", "committed-1", "committed-2"),
                    values(topic, "read_committed", 3));
            p.commitTransaction();
            // Kafka writes the markers after it answers EndTxn: the LSO follows shortly.
            await("the last stable offset passes the COMMIT marker", AWAIT, () -> {
                try {
                    return latest(admin, topic, IsolationLevel.READ_COMMITTED) == 9;
                } catch (Exception e) {
                    return false;
                }
            });
            assertEquals(List.of("committed-0", "committed-1", "committed-2", "open"),
                    values(topic, "read_committed", 4));
            assertEquals(List.of("committed-0", "committed-1", "committed-2", "aborted-0", "aborted-1", "open"),
                    values(topic, "read_uncommitted", 6));
        }
    }

    @Test
    void consumeTransformProduceCommitsOffsetsInTheTransaction() throws Exception {
        String input = unique("txn-ctp-in");
        String output = unique("txn-ctp-out");
        String group = unique("txn-ctp-group");
        try (Admin admin = admin()) {
            createTopic(admin, input, 1);
            createTopic(admin, output, 1);
        }
        List<ProducerRecord<String, String>> seeded = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            seeded.add(new ProducerRecord<>(input, 0, "k" + i, "v" + i));
        }
        seed(input, seeded);
        TopicPartition in = new TopicPartition(input, 0);
        try (KafkaConsumer<String, String> c = consumer(group,
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
                KafkaProducer<String, String> p = transactional(unique("txn-ctp-id"))) {
            p.initTransactions();
            c.subscribe(List.of(input));
            int copied = 0;
            boolean abortedOnce = false;
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (copied < 20 && System.nanoTime() < deadline) {
                var records = c.poll(Duration.ofMillis(200));
                if (records.isEmpty()) {
                    continue;
                }
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    p.send(new ProducerRecord<>(output, 0, r.key(), r.value().toUpperCase()));
                    offsets.put(in, new OffsetAndMetadata(r.offset() + 1));
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                if (!abortedOnce) {
                    // The first batch is aborted: its outputs vanish and its offsets are not
                    // committed, so it is read again.
                    abortedOnce = true;
                    p.abortTransaction();
                    c.seek(in, records.iterator().next().offset());
                    continue;
                }
                p.commitTransaction();
                copied += records.count();
            }
            assertEquals(20, copied);
        }
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            expected.add("V" + i);
        }
        assertEquals(expected, values(output, "read_committed", 20));
        try (Admin admin = admin()) {
            var committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                    .get(30, TimeUnit.SECONDS);
            assertEquals(20, committed.get(in).offset());
        }
    }

    @Test
    void aZombieProducerIsFenced() throws Exception {
        String topic = unique("txn-zombie");
        String id = unique("txn-zombie-id");
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1);
        }
        try (KafkaProducer<String, String> zombie = transactional(id);
                KafkaProducer<String, String> successor = transactional(id)) {
            zombie.initTransactions();
            zombie.beginTransaction();
            zombie.send(new ProducerRecord<>(topic, 0, "k", "zombie"));
            zombie.flush();
            successor.initTransactions(); // aborts the zombie's transaction
            KafkaException e = assertThrows(KafkaException.class, zombie::commitTransaction);
            assertTrue(e.getClass().getSimpleName().matches("ProducerFencedException|InvalidProducerEpochException"
                    + "|InvalidTxnStateException|TransactionAbortedException"), "fenced with " + e);
            successor.beginTransaction();
            successor.send(new ProducerRecord<>(topic, 0, "k", "successor"));
            successor.commitTransaction();
        }
        assertEquals(List.of("successor"), values(topic, "read_committed", 1));
    }

    @Test
    void kafkaTransactionsListsDescribesAndAbortsAHangingTransaction() throws Exception {
        String topic = unique("txn-tool");
        String id = unique("txn-tool-id");
        try (Admin admin = admin(); KafkaProducer<String, String> p = transactional(id)) {
            createTopic(admin, topic, 1);
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 0, "k", "hanging")).get(30, TimeUnit.SECONDS);
            String bootstrap = Compat.bootstrap();
            var list = tool("kafka-transactions", "--bootstrap-server", bootstrap, "list");
            list.ok();
            assertTrue(list.out().lines().anyMatch(l -> l.contains(id) && l.contains("Ongoing")), list.toString());
            var describe = tool("kafka-transactions", "--bootstrap-server", bootstrap, "describe",
                    "--transactional-id", id);
            describe.ok();
            assertTrue(describe.out().contains("Ongoing") && describe.out().contains(topic + "-0"),
                    describe.toString());
            var producers = tool("kafka-transactions", "--bootstrap-server", bootstrap, "describe-producers",
                    "--topic", topic, "--partition", "0");
            producers.ok();
            // The open transaction starts at offset 0 (CurrentTransactionStartOffset).
            assertTrue(producers.out().lines().skip(1).anyMatch(l -> l.trim().endsWith("0")), producers.toString());
            assertEquals(0, latest(admin, topic, IsolationLevel.READ_COMMITTED));
            // An operator aborts it from the partition's side (WriteTxnMarkers).
            var abort = tool("kafka-transactions", "--bootstrap-server", bootstrap, "abort",
                    "--topic", topic, "--partition", "0", "--start-offset", "0");
            abort.ok();
            await("the last stable offset passes the aborted transaction", AWAIT, () -> {
                try {
                    return latest(admin, topic, IsolationLevel.READ_COMMITTED) == 2;
                } catch (Exception e) {
                    return false;
                }
            });
        }
        assertEquals(List.of(), values(topic, "read_committed", 0));
    }
}
