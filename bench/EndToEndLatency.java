// End-to-end latency at a fixed produce rate, for bench/peers.sh (run with
// `compat/kafka/fetch.sh java bench/EndToEndLatency.java ARGS`, Kafka's jars on the classpath).
//
// One KafkaProducer (acks=1, linger.ms=0) sends SIZE-byte records to partition 0 of TOPIC at
// RATE records/s; the first 8 bytes of each value are System.nanoTime() at the send() call. A
// KafkaConsumer in the same process (assigned partition 0, starting at its end) reads them and
// records nanoTime() - sent. Records sent during the first WARMUP seconds are not counted; the
// next MEASURE seconds are. Pacing: every ~100 µs the producer sends the records that are due by
// then (no busy-spin, so the pacing itself does not take a core of a 2-core machine).
//
// Usage: EndToEndLatency BOOTSTRAP TOPIC RATE WARMUP_S MEASURE_S [SIZE=100]
// Prints one line of JSON: {"rate":..,"achieved_rate":..,"count":..,"p50_ms":..,"p99_ms":..,
// "p999_ms":..,"max_ms":..,"mean_ms":..,"lost":..,"over_10ms":..,"max_at_s":..,
// "max_ms_per_second":[..]} (max_at_s and the per-second maxima are by send time in the window)
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class EndToEndLatency {
    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: EndToEndLatency BOOTSTRAP TOPIC RATE WARMUP_S MEASURE_S [SIZE]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long rate = Long.parseLong(args[2]);
        double warmupS = Double.parseDouble(args[3]);
        double measureS = Double.parseDouble(args[4]);
        int size = args.length > 5 ? Integer.parseInt(args[5]) : 100;
        if (size < 8) size = 8;

        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("acks", "1");
        pp.put("linger.ms", "0");
        pp.put("key.serializer", ByteArraySerializer.class.getName());
        pp.put("value.serializer", ByteArraySerializer.class.getName());
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("key.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("value.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("enable.auto.commit", "false");
        cp.put("max.poll.records", "10000");

        TopicPartition tp = new TopicPartition(topic, 0);
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        consumer.assign(List.of(tp));
        consumer.seekToEnd(List.of(tp));
        consumer.position(tp); // resolve the end offset before the first record is sent
        // One record to connect the producer (metadata, connection) before the clock starts.
        producer.send(new ProducerRecord<>(topic, 0, null, new byte[size])).get();

        // Room for a catch-up burst after a stall (more records sent in the window than rate says).
        long expected = (long) Math.ceil(rate * measureS * 1.5) + 1024;
        long[] lat = new long[(int) Math.min(expected, Integer.MAX_VALUE - 16)];
        AtomicLong measured = new AtomicLong();
        AtomicLong overflow = new AtomicLong();
        long[] worst = new long[2]; // {latency, send time} of the slowest record
        long[] secondMax = new long[(int) Math.ceil(measureS)]; // slowest record per second
        AtomicBoolean stop = new AtomicBoolean();
        long start = System.nanoTime() + 50_000_000L;
        long measureFrom = start + (long) (warmupS * 1e9);
        long measureTo = measureFrom + (long) (measureS * 1e9);

        Thread reader = new Thread(() -> {
            int n = 0;
            long lastSeen = 0;
            while (!stop.get()) {
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(100));
                long now = System.nanoTime();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    byte[] v = r.value();
                    if (v == null || v.length < 8) continue;
                    long sent = ByteBuffer.wrap(v).getLong();
                    if (sent >= measureFrom && sent < measureTo) {
                        long l = now - sent;
                        if (n < lat.length) lat[n++] = l; else overflow.incrementAndGet();
                        if (l > worst[0]) { worst[0] = l; worst[1] = sent; }
                        int sec = (int) Math.min(secondMax.length - 1, (sent - measureFrom) / 1_000_000_000L);
                        if (l > secondMax[sec]) secondMax[sec] = l;
                    }
                    lastSeen = sent;
                }
                measured.set(n);
                if (lastSeen >= measureTo) break;
            }
        }, "e2e-consumer");
        reader.setDaemon(true);
        reader.start();

        byte[] proto = new byte[size];
        Arrays.fill(proto, (byte) 'x');
        long sentCount = 0, sentMeasured = 0;
        long end = measureTo + 20_000_000L; // a few records after the window end the reader
        while (true) {
            long now = System.nanoTime();
            if (now >= end) break;
            if (now < start) {
                LockSupport.parkNanos(start - now);
                continue;
            }
            long due = (long) ((now - start) * (rate / 1e9)) + 1;
            while (sentCount < due) {
                byte[] v = proto.clone();
                long t = System.nanoTime();
                ByteBuffer.wrap(v).putLong(t);
                producer.send(new ProducerRecord<>(topic, 0, null, v));
                sentCount++;
                if (t >= measureFrom && t < measureTo) sentMeasured++;
            }
            LockSupport.parkNanos(100_000L);
        }
        producer.flush();
        reader.join(30_000);
        stop.set(true);
        reader.join(5_000);
        producer.close(Duration.ofSeconds(5));
        consumer.close(Duration.ofSeconds(5));

        int n = (int) measured.get();
        long over10 = 0;
        for (int i = 0; i < n; i++) if (lat[i] > 10_000_000L) over10++;
        long[] s = Arrays.copyOf(lat, n);
        Arrays.sort(s);
        double mean = 0;
        for (long x : s) mean += x;
        mean = n > 0 ? mean / n / 1e6 : Double.NaN;
        System.out.printf(java.util.Locale.ROOT,
            "{\"rate\":%d,\"achieved_rate\":%.0f,\"count\":%d,\"sent_in_window\":%d,\"lost\":%d,"
                + "\"over_10ms\":%d,\"max_at_s\":%.3f,"
                + "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,"
                + "\"max_ms_per_second\":[%s]}%n",
            rate, sentMeasured / measureS, n, sentMeasured, sentMeasured - n - overflow.get(),
            over10, (worst[1] - measureFrom) / 1e9,
            pct(s, 0.50), pct(s, 0.99), pct(s, 0.999), n > 0 ? s[n - 1] / 1e6 : Double.NaN, mean,
            java.util.Arrays.stream(secondMax).mapToObj(x -> String.format(java.util.Locale.ROOT, "%.1f", x / 1e6))
                .collect(java.util.stream.Collectors.joining(",")));
        System.exit(0);
    }

    static double pct(long[] sorted, double q) {
        if (sorted.length == 0) return Double.NaN;
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
    }
}
