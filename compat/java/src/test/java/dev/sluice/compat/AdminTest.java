package dev.sluice.compat;

import static dev.sluice.compat.Compat.AWAIT;
import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.await;
import static dev.sluice.compat.Compat.cause;
import static dev.sluice.compat.Compat.consumer;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.seed;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The Admin client. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AdminTest {

    private static TopicDescription describe(Admin admin, String t) throws Exception {
        return admin.describeTopics(List.of(t)).allTopicNames().get(30, TimeUnit.SECONDS).get(t);
    }

    private static Node theNode(Admin admin) throws Exception {
        var nodes = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS);
        assertEquals(1, nodes.size(), "nodes: " + nodes);
        return nodes.iterator().next();
    }

    @Test
    void describeCluster() throws Exception {
        try (Admin admin = admin()) {
            var c = admin.describeCluster();
            Node node = theNode(admin);
            String[] hostPort = Compat.bootstrap().split(":");
            assertEquals(Integer.parseInt(hostPort[1]), node.port());
            String clusterId = c.clusterId().get(30, TimeUnit.SECONDS);
            assertNotNull(clusterId);
            assertFalse(clusterId.isEmpty());
            Node controller = c.controller().get(30, TimeUnit.SECONDS);
            assertEquals(node.id(), controller.id(), "controller");
        }
    }

    @Test
    void createDescribeDeleteTopics() throws Exception {
        String t = unique("admin-topic");
        try (Admin admin = admin()) {
            Node node = theNode(admin);
            admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all().get(30, TimeUnit.SECONDS);

            await(t + " listed", AWAIT, () -> {
                try {
                    return admin.listTopics().names().get().contains(t);
                } catch (Exception e) {
                    return false;
                }
            });
            TopicDescription d = describe(admin, t);
            assertEquals(t, d.name());
            assertFalse(d.isInternal());
            assertEquals(2, d.partitions().size());
            for (var p : d.partitions()) {
                assertEquals(node.id(), p.leader().id(), "leader of " + p.partition());
                assertEquals(List.of(node.id()), p.replicas().stream().map(Node::id).collect(Collectors.toList()));
                assertEquals(List.of(node.id()), p.isr().stream().map(Node::id).collect(Collectors.toList()));
            }
            assertEquals(d.topicId(), admin.describeTopics(List.of(t)).allTopicNames().get().get(t).topicId());

            ExecutionException exists = assertThrows(ExecutionException.class,
                    () -> admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicExistsException.class, cause(exists));

            admin.deleteTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
            await(t + " no longer listed", AWAIT, () -> {
                try {
                    return !admin.listTopics().names().get().contains(t);
                } catch (Exception e) {
                    return false;
                }
            });
            ExecutionException unknown = assertThrows(ExecutionException.class,
                    () -> admin.describeTopics(List.of(t)).allTopicNames().get(30, TimeUnit.SECONDS));
            assertInstanceOf(UnknownTopicOrPartitionException.class, cause(unknown));
            ExecutionException unknownDelete = assertThrows(ExecutionException.class,
                    () -> admin.deleteTopics(List.of(t)).all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(UnknownTopicOrPartitionException.class, cause(unknownDelete));
        }
    }

    /** CreateTopics answers (v5+) the topic's partitions, replication factor and configs. */
    @Test
    void createTopicsResult() throws Exception {
        String t = unique("admin-create-result");
        try (Admin admin = admin()) {
            var result = admin.createTopics(List.of(new NewTopic(t, 3, (short) 1)
                    .configs(Map.of("cleanup.policy", "compact", "retention.ms", "3600000"))));
            result.all().get(30, TimeUnit.SECONDS);
            assertEquals(3, result.numPartitions(t).get());
            assertEquals(1, result.replicationFactor(t).get());
            assertNotNull(result.topicId(t).get());
            Config config = result.config(t).get();
            ConfigEntry policy = config.get("cleanup.policy");
            assertNotNull(policy, "cleanup.policy in the CreateTopics response's configs: " + config);
            assertEquals("compact", policy.value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, policy.source());
            assertEquals("3600000", config.get("retention.ms").value());
            ConfigEntry segment = config.get("segment.bytes");
            assertNotNull(segment, "segment.bytes in the CreateTopics response's configs: " + config);
            assertEquals("1073741824", segment.value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, segment.source());
        }
    }

    private static ConfigEntry topicConfig(Admin admin, String t, String name) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
        Config c = admin.describeConfigs(List.of(r)).all().get(30, TimeUnit.SECONDS).get(r);
        return c.get(name);
    }

    @Test
    void topicConfigs() throws Exception {
        String t = unique("admin-configs");
        try (Admin admin = admin()) {
            createTopic(admin, t, 1);
            ConfigEntry retention = topicConfig(admin, t, "retention.ms");
            assertEquals("604800000", retention.value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, retention.source());
            assertEquals("delete", topicConfig(admin, t, "cleanup.policy").value());

            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
            admin.incrementalAlterConfigs(Map.of(r, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                    .all().get(30, TimeUnit.SECONDS);
            ConfigEntry set = topicConfig(admin, t, "retention.ms");
            assertEquals("3600000", set.value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, set.source());
            assertEquals("delete,compact", topicConfig(admin, t, "cleanup.policy").value(),
                    "cleanup.policy after APPEND compact to the default delete (the value keeps its order)");

            admin.incrementalAlterConfigs(Map.of(r, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SUBTRACT))))
                    .all().get(30, TimeUnit.SECONDS);
            ConfigEntry back = topicConfig(admin, t, "retention.ms");
            assertEquals("604800000", back.value());
            assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, back.source());
            assertEquals("delete", topicConfig(admin, t, "cleanup.policy").value(), "cleanup.policy after SUBTRACT compact");
        }
    }

    @Test
    void createPartitions() throws Exception {
        String t = unique("admin-partitions");
        try (Admin admin = admin()) {
            createTopic(admin, t, 2);
            admin.createPartitions(Map.of(t, NewPartitions.increaseTo(5))).all().get(30, TimeUnit.SECONDS);
            await(t + " has 5 partitions", AWAIT, () -> {
                try {
                    return describe(admin, t).partitions().size() == 5;
                } catch (Exception e) {
                    return false;
                }
            });
            assertEquals(List.of(0, 1, 2, 3, 4), describe(admin, t).partitions().stream()
                    .map(p -> p.partition()).collect(Collectors.toList()));
            // Fewer partitions than now: InvalidPartitionsException.
            ExecutionException fewer = assertThrows(ExecutionException.class,
                    () -> admin.createPartitions(Map.of(t, NewPartitions.increaseTo(3))).all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(org.apache.kafka.common.errors.InvalidPartitionsException.class, cause(fewer));
        }
    }

    @Test
    void listOffsets() throws Exception {
        String t = unique("admin-list-offsets");
        try (Admin admin = admin()) {
            createTopic(admin, t, 2);
            long base = System.currentTimeMillis() - 60_000;
            seed(t, List.of(
                    new ProducerRecord<>(t, 0, base + 1000, "a", "1"),
                    new ProducerRecord<>(t, 0, base + 3000, "b", "2"),
                    new ProducerRecord<>(t, 0, base + 2000, "c", "3")));
            TopicPartition p0 = new TopicPartition(t, 0);
            TopicPartition p1 = new TopicPartition(t, 1);
            var earliest = admin.listOffsets(Map.of(p0, OffsetSpec.earliest(), p1, OffsetSpec.earliest()))
                    .all().get(30, TimeUnit.SECONDS);
            assertEquals(0, earliest.get(p0).offset());
            assertEquals(0, earliest.get(p1).offset());
            var latest = admin.listOffsets(Map.of(p0, OffsetSpec.latest(), p1, OffsetSpec.latest()))
                    .all().get(30, TimeUnit.SECONDS);
            assertEquals(3, latest.get(p0).offset());
            assertEquals(0, latest.get(p1).offset());
            var at = admin.listOffsets(Map.of(p0, OffsetSpec.forTimestamp(base + 1500))).all().get(30, TimeUnit.SECONDS);
            assertEquals(1, at.get(p0).offset(), "first offset with timestamp >= base+1500");
            assertEquals(base + 3000, at.get(p0).timestamp());
            var none = admin.listOffsets(Map.of(p0, OffsetSpec.forTimestamp(base + 5000))).all().get(30, TimeUnit.SECONDS);
            assertEquals(-1, none.get(p0).offset(), "no timestamp >= base+5000");
        }
    }

    /** OffsetSpec.maxTimestamp() (ListOffsets v7, timestamp -3): the record with the largest timestamp. */
    @Test
    void listOffsetsMaxTimestamp() throws Exception {
        String t = unique("admin-max-timestamp");
        try (Admin admin = admin()) {
            createTopic(admin, t, 1);
            long base = System.currentTimeMillis() - 60_000;
            // One batch (one send after the other, then a flush): the maximum is inside it.
            seed(t, List.of(
                    new ProducerRecord<>(t, 0, base + 1000, "a", "1"),
                    new ProducerRecord<>(t, 0, base + 3000, "b", "2"),
                    new ProducerRecord<>(t, 0, base + 2000, "c", "3")));
            TopicPartition p0 = new TopicPartition(t, 0);
            var max = admin.listOffsets(Map.of(p0, OffsetSpec.maxTimestamp())).all().get(30, TimeUnit.SECONDS);
            // Kafka: the offset of the record itself, not the last offset of its batch.
            assertEquals(1, max.get(p0).offset(), "offset of the largest timestamp");
            assertEquals(base + 3000, max.get(p0).timestamp());
        }
    }

    @Test
    void consumerGroups() throws Exception {
        String t = unique("admin-groups");
        String g = unique("admin-group");
        try (Admin admin = admin()) {
            createTopic(admin, t, 2);
            Compat.seed(t, 0, 3);
            Compat.seed(t, 1, 2);
            try (KafkaConsumer<String, String> c = consumer(g, Map.of())) {
                c.subscribe(List.of(t));
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                long deadline = System.nanoTime() + AWAIT.toNanos();
                while (got.size() < 5 && System.nanoTime() < deadline) {
                    c.poll(Duration.ofMillis(200)).forEach(got::add);
                }
                assertEquals(5, got.size(), Compat.describe(got));
                c.commitSync();

                Set<String> listed = admin.listConsumerGroups().all().get(30, TimeUnit.SECONDS).stream()
                        .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
                assertTrue(listed.contains(g), "listed: " + listed);

                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(g)).describedGroups().get(g)
                        .get(30, TimeUnit.SECONDS);
                assertEquals(g, d.groupId());
                assertEquals(GroupState.STABLE, d.groupState());
                assertEquals("range", d.partitionAssignor());
                assertEquals(1, d.members().size(), d.toString());
                var member = d.members().iterator().next();
                assertEquals(Set.of(new TopicPartition(t, 0), new TopicPartition(t, 1)),
                        member.assignment().topicPartitions());
                assertEquals(theNode(admin).id(), d.coordinator().id());

                Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(g)
                        .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                assertEquals(3, offsets.get(new TopicPartition(t, 0)).offset());
                assertEquals(2, offsets.get(new TopicPartition(t, 1)).offset());

                // A group with members cannot be deleted.
                ExecutionException notEmpty = assertThrows(ExecutionException.class,
                        () -> admin.deleteConsumerGroups(List.of(g)).all().get(30, TimeUnit.SECONDS));
                assertInstanceOf(org.apache.kafka.common.errors.GroupNotEmptyException.class, cause(notEmpty));
            }
            ConsumerGroupDescription empty = admin.describeConsumerGroups(List.of(g)).describedGroups().get(g)
                    .get(30, TimeUnit.SECONDS);
            assertEquals(GroupState.EMPTY, empty.groupState());
            assertTrue(empty.members().isEmpty());

            admin.deleteConsumerGroups(List.of(g)).all().get(30, TimeUnit.SECONDS);
            Set<String> after = admin.listConsumerGroups().all().get(30, TimeUnit.SECONDS).stream()
                    .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
            assertFalse(after.contains(g), "listed after delete: " + after);
            ExecutionException gone = assertThrows(ExecutionException.class,
                    () -> admin.deleteConsumerGroups(List.of(g)).all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(GroupIdNotFoundException.class, cause(gone));
        }
    }
}
