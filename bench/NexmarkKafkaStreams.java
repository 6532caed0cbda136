// Nexmark q1 and q5 as a Kafka Streams (Java) application: the same computations as
// sluice_streams::nexmark::{q1, q5}, over the same bids (written by `sluice bench streams
// --produce-only`), with one stream thread, so that bench/peers.sh can compare events/s per
// thread with Sluice Streams on the same broker.
//
// Usage (Kafka's jars on the classpath: compat/kafka/fetch.sh java bench/NexmarkKafkaStreams.java ...):
//   NexmarkKafkaStreams BOOTSTRAP q1|q5 INPUT_TOPIC EVENTS [COMMIT_INTERVAL_MS [at_least_once|exactly_once_v2]]
// Prints one JSON object: {"query", "events", "events_per_sec", "elapsed_ms", "outputs"}.
// Timed from the application's RUNNING state until it has committed every bid (and, for q5,
// every record of its repartition topic), as `sluice bench streams` times Sluice Streams. The output is checked: q1 has one
// record per bid; q5's last update of each window names the hottest auction a plain loop finds.

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;

public class NexmarkKafkaStreams {
    static final TimeWindows Q5_WINDOWS =
            TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(10)).advanceBy(Duration.ofSeconds(2));

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: NexmarkKafkaStreams BOOTSTRAP q1|q5 INPUT_TOPIC EVENTS [COMMIT_INTERVAL_MS [at_least_once|exactly_once_v2]]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String query = args[1];
        String input = args[2];
        long events = Long.parseLong(args[3]);
        String commitInterval = args.length > 4 ? args[4] : "100";
        String guarantee = args.length > 5 ? args[5] : StreamsConfig.AT_LEAST_ONCE;
        boolean exactlyOnce = guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2);
        if (!exactlyOnce && !guarantee.equals(StreamsConfig.AT_LEAST_ONCE)) {
            throw new IllegalArgumentException("processing guarantee must be at_least_once or exactly_once_v2, not " + guarantee);
        }
        if (!query.equals("q1") && !query.equals("q5")) {
            throw new IllegalArgumentException("query must be q1 or q5, not " + query);
        }
        String run = UUID.randomUUID().toString().substring(0, 8);
        String appId = "nexmark-" + query + "-java-" + run;
        String output = "nexmark-out-" + query + "-java-" + run;

        Properties adminProps = new Properties();
        adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(adminProps)) {
            admin.createTopics(List.of(new NewTopic(output, 1, (short) 1))).all().get();

            StreamsBuilder builder = new StreamsBuilder();
            if (query.equals("q1")) {
                builder.stream(input, Consumed.with(Serdes.Long(), new BidSerde()))
                        .mapValues(NexmarkKafkaStreams::q1Convert)
                        .to(output, Produced.with(Serdes.Long(), new BidSerde()));
            } else {
                TimestampExtractor bidTime = (record, partitionTime) -> {
                    byte[] v = (byte[]) record.value();
                    return v != null && v.length >= 32 ? ByteBuffer.wrap(v, 24, 8).getLong() : record.timestamp();
                };
                // Read as bytes for the extractor, then decoded: the same work as Sluice's q5.
                builder.stream(input, Consumed.with(Serdes.Long(), Serdes.ByteArray()).withTimestampExtractor(bidTime))
                        .mapValues(BidSerde::decode)
                        .groupByKey(Grouped.with(Serdes.Long(), new BidSerde()))
                        .windowedBy(Q5_WINDOWS)
                        .count(Materialized.as("bids-per-auction"))
                        .toStream()
                        .map((windowed, count) -> KeyValue.pair(windowed.window().start(),
                                new long[] {windowed.key(), count}))
                        .groupByKey(Grouped.with("bids-per-window", Serdes.Long(), new CountSerde()))
                        .reduce(NexmarkKafkaStreams::hotter, Materialized.with(Serdes.Long(), new CountSerde()))
                        .toStream()
                        .to(output, Produced.with(Serdes.Long(), new CountSerde()));
            }

            Properties props = new Properties();
            props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
            props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
            props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Integer.parseInt(commitInterval));
            props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("nexmark-state").toString());
            props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
            props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
            props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
            if (!exactlyOnce) {
                // Under exactly-once the producer is transactional: acks=all.
                props.put(StreamsConfig.producerPrefix(ProducerConfig.ACKS_CONFIG), "1");
            }
            props.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 65536);
            props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);

            KafkaStreams streams = new KafkaStreams(builder.build(), props);
            // Timed from RUNNING (the first rebalance done, tasks assigned): JVM start, class
            // loading and the group join are not the thread's throughput. (`sluice bench
            // streams` starts its clock when KafkaStreams::start returns, before its group join:
            // that favours Kafka Streams, if anything.)
            java.util.concurrent.CountDownLatch running = new java.util.concurrent.CountDownLatch(1);
            streams.setStateListener((now, before) -> {
                if (now == KafkaStreams.State.RUNNING) {
                    running.countDown();
                }
            });
            streams.start();
            if (!running.await(120, java.util.concurrent.TimeUnit.SECONDS)) {
                throw new IllegalStateException("the application was not RUNNING within 120 s");
            }
            long started = System.nanoTime();
            TopicPartition in = new TopicPartition(input, 0);
            TopicPartition repartition = new TopicPartition(appId + "-bids-per-window-repartition", 0);
            long deadline = started + Duration.ofSeconds(600).toNanos();
            while (true) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the bids were not all processed within 600 s");
                }
                if (streams.state() == KafkaStreams.State.ERROR) {
                    throw new IllegalStateException("the application failed");
                }
                Map<TopicPartition, OffsetAndMetadata> committed =
                        admin.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get();
                OffsetAndMetadata bids = committed.get(in);
                if (bids != null && bids.offset() >= events) {
                    if (query.equals("q1")) {
                        break;
                    }
                    long end = admin.listOffsets(Map.of(repartition, OffsetSpec.latest())).all().get()
                            .get(repartition).offset();
                    OffsetAndMetadata done = committed.get(repartition);
                    if (done != null && done.offset() >= end) {
                        break;
                    }
                    // Under exactly-once the topic ends with the last transaction's marker,
                    // which the committed position may stop short of: done once no
                    // transaction is open (the last stable offset is the end) and every record
                    // before that marker is committed.
                    if (exactlyOnce && done != null && done.offset() >= end - 1) {
                        long stable = admin.listOffsets(Map.of(repartition, OffsetSpec.latest()),
                                new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all().get()
                                .get(repartition).offset();
                        if (stable == end) {
                            break;
                        }
                    }
                }
                Thread.sleep(20);
            }
            long elapsedNanos = System.nanoTime() - started;
            streams.close(Duration.ofSeconds(60));

            TopicPartition out = new TopicPartition(output, 0);
            long end = admin.listOffsets(Map.of(out, OffsetSpec.latest())).all().get().get(out).offset();
            // Under exactly-once the output holds transaction markers too: its records are
            // counted by reading them.
            List<ConsumerRecord<byte[], byte[]>> outputs =
                    exactlyOnce || !query.equals("q1") ? readAll(bootstrap, out, end) : List.of();
            long written = exactlyOnce ? outputs.size() : end;
            if (query.equals("q1")) {
                if (written != events) {
                    throw new IllegalStateException(written + " outputs, not one per bid (" + events + ")");
                }
            } else {
                Map<Long, long[]> expected = expectedHottest(bootstrap, in, events);
                Map<Long, long[]> last = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : outputs) {
                    last.put(ByteBuffer.wrap(r.key()).getLong(), CountSerde.decode(r.value()));
                }
                if (last.size() != expected.size()) {
                    throw new IllegalStateException(last.size() + " windows, the loop found " + expected.size());
                }
                for (var e : expected.entrySet()) {
                    long[] got = last.get(e.getKey());
                    if (got == null || got[0] != e.getValue()[0] || got[1] != e.getValue()[1]) {
                        throw new IllegalStateException("window " + e.getKey() + ": the hot item differs from the loop's");
                    }
                }
            }
            double secs = elapsedNanos / 1e9;
            System.out.printf("{\"query\":\"%s\",\"events\":%d,\"events_per_sec\":%.1f,\"elapsed_ms\":%.1f,\"outputs\":%d}%n",
                    query, events, events / secs, secs * 1000, written);
        }
    }

    /** Nexmark q1: the price from dollars to euros (as Sluice's q1_convert: price * 908 / 1000). */
    static Bid q1Convert(Bid bid) {
        return new Bid(bid.auction, bid.bidder, bid.price * 908 / 1000, bid.dateTime, bid.channel, bid.url);
    }

    /** The hotter of two auction counts: more bids, or the lower id on a tie (Sluice's hotter). */
    static long[] hotter(long[] a, long[] b) {
        if (b[1] > a[1] || (b[1] == a[1] && b[0] < a[0])) {
            return b;
        }
        return a;
    }

    /** Each window's hottest auction, computed by a plain loop over the bids. */
    static Map<Long, long[]> expectedHottest(String bootstrap, TopicPartition in, long events) {
        Map<Long, Map<Long, Long>> counts = new HashMap<>();
        Map<Long, long[]> hottest = new HashMap<>();
        long size = 10_000, advance = 2_000;
        for (ConsumerRecord<byte[], byte[]> r : readAll(bootstrap, in, events)) {
            Bid bid = BidSerde.decode(r.value());
            long t = bid.dateTime;
            // The hopping windows holding t: starts from the last one at or before t back while
            // start + size > t (Kafka's TimeWindows.windowsFor).
            long lastStart = t - Math.floorMod(t, advance);
            for (long start = lastStart; start > t - size && start >= 0; start -= advance) {
                long count = counts.computeIfAbsent(start, k -> new HashMap<>()).merge(bid.auction, 1L, Long::sum);
                long[] counted = {bid.auction, count};
                hottest.merge(start, counted, NexmarkKafkaStreams::hotter);
            }
        }
        return hottest;
    }

    /** Every committed record of `tp` below offset `end` (markers take offsets too). */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String bootstrap, TopicPartition tp, long end) {
        Properties p = new Properties();
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        var records = new java.util.ArrayList<ConsumerRecord<byte[], byte[]>>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + Duration.ofSeconds(300).toNanos();
            while (consumer.position(tp) < end) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("read " + records.size() + " records of " + tp + " up to " + consumer.position(tp) + " of " + end);
                }
                consumer.poll(Duration.ofMillis(200)).forEach(records::add);
            }
        }
        return records;
    }

    record Bid(long auction, long bidder, long price, long dateTime, String channel, String url) {}

    /** Sluice's BidSerde: four big-endian longs, then channel and url as u16 length + UTF-8. */
    static final class BidSerde implements Serde<Bid>, Serializer<Bid>, Deserializer<Bid> {
        static Bid decode(byte[] bytes) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            long auction = b.getLong(), bidder = b.getLong(), price = b.getLong(), dateTime = b.getLong();
            return new Bid(auction, bidder, price, dateTime, text(b), text(b));
        }

        static String text(ByteBuffer b) {
            byte[] s = new byte[Short.toUnsignedInt(b.getShort())];
            b.get(s);
            return new String(s, java.nio.charset.StandardCharsets.UTF_8);
        }

        @Override
        public byte[] serialize(String topic, Bid bid) {
            byte[] channel = bid.channel.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            byte[] url = bid.url.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(36 + channel.length + url.length);
            b.putLong(bid.auction).putLong(bid.bidder).putLong(bid.price).putLong(bid.dateTime);
            b.putShort((short) channel.length).put(channel).putShort((short) url.length).put(url);
            return b.array();
        }

        @Override
        public Bid deserialize(String topic, byte[] bytes) {
            return bytes == null ? null : decode(bytes);
        }

        @Override
        public void configure(Map<String, ?> configs, boolean isKey) {}

        @Override
        public void close() {}

        @Override
        public Serializer<Bid> serializer() {
            return this;
        }

        @Override
        public Deserializer<Bid> deserializer() {
            return this;
        }
    }

    /** Sluice's AuctionCountSerde: auction and count, two big-endian longs. */
    static final class CountSerde implements Serde<long[]>, Serializer<long[]>, Deserializer<long[]> {
        static long[] decode(byte[] bytes) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            return new long[] {b.getLong(), b.getLong()};
        }

        @Override
        public byte[] serialize(String topic, long[] v) {
            return v == null ? null : ByteBuffer.allocate(16).putLong(v[0]).putLong(v[1]).array();
        }

        @Override
        public long[] deserialize(String topic, byte[] bytes) {
            return bytes == null ? null : decode(bytes);
        }

        @Override
        public void configure(Map<String, ?> configs, boolean isKey) {}

        @Override
        public void close() {}

        @Override
        public Serializer<long[]> serializer() {
            return this;
        }

        @Override
        public Deserializer<long[]> deserializer() {
            return this;
        }
    }
}
