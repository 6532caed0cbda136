package dev.sluice.compat;

import static dev.sluice.compat.Compat.AWAIT;
import static dev.sluice.compat.Compat.admin;
import static dev.sluice.compat.Compat.await;
import static dev.sluice.compat.Compat.bootstrap;
import static dev.sluice.compat.Compat.createTopic;
import static dev.sluice.compat.Compat.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.utils.internals.Exit;
import org.apache.kafka.connect.cli.ConnectDistributed;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.runtime.Connect;
import org.apache.kafka.connect.sink.SinkConnector;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.apache.kafka.connect.source.SourceConnector;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A Kafka Connect distributed worker (connect-runtime, in this JVM) on the broker, with a source
 * and a sink connector of this test's own, managed through the REST API.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class ConnectTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    // ---- the connectors ---------------------------------------------------------------------

    /** Emits "count" records "record-i" to "topic", source partition {source: NAME}, offset {position: i}. */
    public static class CountingSource extends SourceConnector {
        private Map<String, String> props;

        @Override
        public void start(Map<String, String> props) {
            this.props = props;
        }

        @Override
        public Class<? extends Task> taskClass() {
            return CountingTask.class;
        }

        @Override
        public List<Map<String, String>> taskConfigs(int maxTasks) {
            return List.of(props);
        }

        @Override
        public void stop() {}

        @Override
        public ConfigDef config() {
            return new ConfigDef()
                    .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "where to write")
                    .define("count", ConfigDef.Type.INT, ConfigDef.Importance.HIGH, "how many records");
        }

        @Override
        public String version() {
            return "1";
        }
    }

    public static class CountingTask extends SourceTask {
        private String topic;
        private int count;
        private int next;
        private Map<String, String> partition;

        @Override
        public void start(Map<String, String> props) {
            topic = props.get("topic");
            count = Integer.parseInt(props.get("count"));
            partition = Map.of("source", props.get("name"));
            Map<String, Object> offset = context.offsetStorageReader().offset(partition);
            next = offset == null ? 0 : ((Number) offset.get("position")).intValue() + 1;
        }

        @Override
        public List<SourceRecord> poll() throws InterruptedException {
            if (next >= count) {
                Thread.sleep(100); // nothing more to emit; the worker calls poll again
                return null;
            }
            List<SourceRecord> out = new ArrayList<>();
            for (int i = 0; i < 10 && next < count; i++, next++) {
                out.add(new SourceRecord(partition, Map.of("position", next), topic, null,
                        Schema.STRING_SCHEMA, "key-" + next, Schema.STRING_SCHEMA, "record-" + next));
            }
            return out;
        }

        @Override
        public void stop() {}

        @Override
        public String version() {
            return "1";
        }
    }

    /** Sink records by connector name. */
    static final Map<String, List<String>> SINKS = new ConcurrentHashMap<>();

    /** Collects the values of the records of "topics" into SINKS[name]. */
    public static class CollectingSink extends SinkConnector {
        private Map<String, String> props;

        @Override
        public void start(Map<String, String> props) {
            this.props = props;
        }

        @Override
        public Class<? extends Task> taskClass() {
            return CollectingTask.class;
        }

        @Override
        public List<Map<String, String>> taskConfigs(int maxTasks) {
            return List.of(props);
        }

        @Override
        public void stop() {}

        @Override
        public ConfigDef config() {
            return new ConfigDef();
        }

        @Override
        public String version() {
            return "1";
        }
    }

    public static class CollectingTask extends SinkTask {
        private List<String> sink;

        @Override
        public void start(Map<String, String> props) {
            sink = SINKS.computeIfAbsent(props.get("name"), n -> new CopyOnWriteArrayList<>());
        }

        @Override
        public void put(Collection<SinkRecord> records) {
            for (SinkRecord r : records) {
                sink.add(r.key() + "=" + r.value());
            }
        }

        @Override
        public void stop() {}

        @Override
        public String version() {
            return "1";
        }
    }

    // ---- REST ------------------------------------------------------------------------------

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    private static HttpResponse<String> http(String method, URI uri, String body) {
        try {
            HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(30))
                    .header("Content-Type", "application/json").header("Accept", "application/json");
            b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
            return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new RuntimeException(method + " " + uri, e);
        }
    }

    private static JsonNode json(HttpResponse<String> r) {
        try {
            return JSON.readTree(r.body());
        } catch (Exception e) {
            throw new AssertionError("not JSON: " + r.statusCode() + " " + r.body(), e);
        }
    }

    /** POST /connectors, again while the worker answers 409 (rebalancing: it has not joined yet). */
    private static void createConnector(URI base, String name, Map<String, String> config) throws Exception {
        String body = JSON.writeValueAsString(Map.of("name", name, "config", config));
        HttpResponse<String>[] last = new HttpResponse[1];
        await(() -> "POST /connectors " + name + " succeeds (last answer: "
                + (last[0] == null ? "none" : last[0].statusCode() + " " + last[0].body()) + ")", AWAIT, () -> {
            last[0] = http("POST", base.resolve("/connectors"), body);
            if (last[0].statusCode() == 201) {
                return true;
            }
            if (last[0].statusCode() == 409 || last[0].statusCode() == 503) {
                return false;
            }
            throw new AssertionError("POST /connectors " + name + ": " + last[0].statusCode() + " " + last[0].body());
        });
    }

    private static void awaitRunning(URI base, String name) {
        String[] last = {""};
        await(() -> name + " and its task are RUNNING (status: " + last[0] + ")", AWAIT, () -> {
            HttpResponse<String> r = http("GET", base.resolve("/connectors/" + name + "/status"), null);
            last[0] = r.statusCode() + " " + r.body();
            if (r.statusCode() != 200) {
                return false;
            }
            JsonNode s = json(r);
            if (s.path("connector").path("state").asText().equals("FAILED")
                    || s.path("tasks").path(0).path("state").asText().equals("FAILED")) {
                throw new AssertionError(name + " failed: " + r.body());
            }
            return s.path("connector").path("state").asText().equals("RUNNING")
                    && s.path("tasks").size() == 1
                    && s.path("tasks").path(0).path("state").asText().equals("RUNNING");
        });
    }

    @Test
    void sourceAndSinkConnectors() throws Exception {
        String id = unique("connect");
        String topic = id + "-data";
        int n = 50;
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1);
        }
        Map<String, String> worker = new HashMap<>();
        worker.put("bootstrap.servers", bootstrap());
        worker.put("group.id", id + "-cluster");
        worker.put("config.storage.topic", id + "-configs");
        worker.put("offset.storage.topic", id + "-offsets");
        worker.put("status.storage.topic", id + "-status");
        worker.put("config.storage.replication.factor", "1");
        worker.put("offset.storage.replication.factor", "1");
        worker.put("status.storage.replication.factor", "1");
        worker.put("key.converter", "org.apache.kafka.connect.storage.StringConverter");
        worker.put("value.converter", "org.apache.kafka.connect.storage.StringConverter");
        worker.put("listeners", "http://127.0.0.1:0");
        worker.put("offset.flush.interval.ms", "500");
        worker.put("plugin.discovery", "service_load");

        // startConnect calls Exit.exit when the worker cannot start: an exception here instead.
        Exit.setExitProcedure((code, message) -> {
            throw new IllegalStateException("Connect exited with " + code + ": " + message);
        });
        Connect<?> connect = new ConnectDistributed().startConnect(worker);
        try {
            URI base = connect.rest().serverUrl();
            await("the worker's REST API answers GET /connectors", AWAIT,
                    () -> http("GET", base.resolve("/connectors"), null).statusCode() == 200);

            String source = id + "-source";
            String sink = id + "-sink";
            createConnector(base, source, Map.of("connector.class", CountingSource.class.getName(), "tasks.max", "1",
                    "topic", topic, "count", Integer.toString(n)));
            createConnector(base, sink, Map.of("connector.class", CollectingSink.class.getName(), "tasks.max", "1",
                    "topics", topic));
            awaitRunning(base, source);
            awaitRunning(base, sink);

            List<String> expected = IntStream.range(0, n).mapToObj(i -> "key-" + i + "=record-" + i)
                    .collect(Collectors.toList());
            await(() -> "the sink collected " + n + " records (has " + SINKS.getOrDefault(sink, List.of()).size() + ")",
                    AWAIT, () -> SINKS.getOrDefault(sink, List.of()).size() >= n);
            assertEquals(expected, SINKS.get(sink), "the sink's records, in order (one partition)");

            // The source's offsets (offset.storage.topic) and the sink's (its consumer group's).
            String[] lastSource = {""};
            await(() -> "GET /connectors/" + source + "/offsets shows position " + (n - 1) + " (" + lastSource[0] + ")",
                    AWAIT, () -> {
                        HttpResponse<String> r = http("GET", base.resolve("/connectors/" + source + "/offsets"), null);
                        lastSource[0] = r.statusCode() + " " + r.body();
                        JsonNode o = json(r).path("offsets");
                        return r.statusCode() == 200 && o.size() == 1
                                && o.path(0).path("partition").path("source").asText().equals(source)
                                && o.path(0).path("offset").path("position").asInt() == n - 1;
                    });
            String[] lastSink = {""};
            await(() -> "GET /connectors/" + sink + "/offsets shows kafka_offset " + n + " (" + lastSink[0] + ")", AWAIT,
                    () -> {
                        HttpResponse<String> r = http("GET", base.resolve("/connectors/" + sink + "/offsets"), null);
                        lastSink[0] = r.statusCode() + " " + r.body();
                        JsonNode o = json(r).path("offsets");
                        return r.statusCode() == 200 && o.size() == 1
                                && o.path(0).path("partition").path("kafka_topic").asText().equals(topic)
                                && o.path(0).path("partition").path("kafka_partition").asInt() == 0
                                && o.path(0).path("offset").path("kafka_offset").asLong() == n;
                    });

            HttpResponse<String> list = http("GET", base.resolve("/connectors"), null);
            assertEquals(Set.of(source, sink), Set.copyOf(JSON.convertValue(json(list), List.class)), list.body());
            assertEquals(204, http("DELETE", base.resolve("/connectors/" + source), null).statusCode());
            assertEquals(204, http("DELETE", base.resolve("/connectors/" + sink), null).statusCode());
        } finally {
            connect.stop();
            Exit.resetExitProcedure();
        }
        // The worker's internal topics, compacted, as Connect created them.
        try (Admin admin = admin()) {
            Set<String> names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            assertTrue(names.containsAll(Set.of(id + "-configs", id + "-offsets", id + "-status")), "topics: " + names);
        }
    }
}
