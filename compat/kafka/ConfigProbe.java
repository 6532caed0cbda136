// Probe of Apache Kafka's topic configs, used to write topic-configs.md.
// Run with the reference Kafka's jars (Java 17 single-file launch):
//   compat/kafka/fetch.sh java compat/kafka/ConfigProbe.java SUBCOMMAND ARGS...
//
// Subcommands:
//   schema                                  LogConfig's ConfigDef: name, type, default, validator,
//                                           broker synonyms (in order), importance (no broker needed)
//   schema-docs                             name<TAB>documentation of each LogConfig key
//   describe BOOTSTRAP TOPIC [NAME...]      Admin.describeConfigs with synonyms and documentation
//   raw-describe BOOTSTRAP TOPIC [NAME...]  DescribeConfigs v4 on a socket: the response fields as sent
//                                           (config_type numbers, config_source numbers, synonyms)
//   create BOOTSTRAP TOPIC [K=V...]         Admin.createTopics (1 partition, RF 1), prints outcome
//   create-validate BOOTSTRAP TOPIC [K=V...]  same with validateOnly
//   alter BOOTSTRAP TOPIC [K=V...]          IncrementalAlterConfigs SET of each K=V (one request)
//   alter-delete BOOTSTRAP TOPIC [K...]     IncrementalAlterConfigs DELETE of each K
//   alter-op BOOTSTRAP TOPIC OP K[=V]...    IncrementalAlterConfigs with OP (SET, DELETE, APPEND, SUBTRACT)
//   raw-alter BOOTSTRAP TOPIC [K=V...]      legacy AlterConfigs (API 33) v1 on a socket (Admin no
//                                           longer has alterConfigs in 4.x)
//   produce BOOTSTRAP TOPIC CODEC [TS...]   KafkaProducer with compression.type=CODEC, one record per
//                                           TS (ms since epoch, or "now", "now-N", "now+N"),
//                                           prints offset/timestamp or the error
//   raw-produce BOOTSTRAP TOPIC CODEC [TS...]  one v2 batch (CreateTime, one record per TS, "-1" allowed)
//                                           sent as Produce v11 (acks=-1) on a socket; prints the
//                                           partition response as sent (error, message, record_errors)
//   consume BOOTSTRAP TOPIC                 reads partition 0 from the start, prints
//                                           offset, timestampType, timestamp, value
import java.io.*;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.*;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.message.DescribeConfigsRequestData;
import org.apache.kafka.common.message.DescribeConfigsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.*;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ConfigProbe {
    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: ConfigProbe SUBCOMMAND ARGS... (see the header of ConfigProbe.java)");
            System.exit(2);
        }
        String cmd = args[0];
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        switch (cmd) {
            case "schema" -> schema();
            case "schema-docs" -> schemaDocs();
            case "describe" -> describe(rest[0], rest[1], tail(rest, 2));
            case "raw-describe" -> rawDescribe(rest[0], rest[1], tail(rest, 2));
            case "raw-describe-broker" -> rawDescribeResource(rest[0], ConfigResource.Type.BROKER, rest[1], tail(rest, 2));
            case "create" -> create(rest[0], rest[1], kv(tail(rest, 2)), false);
            case "create-validate" -> create(rest[0], rest[1], kv(tail(rest, 2)), true);
            case "alter" -> alter(rest[0], rest[1], kv(tail(rest, 2)), false);
            case "alter-delete" -> alter(rest[0], rest[1], keysOnly(tail(rest, 2)), true);
            case "alter-op" -> alterOp(rest[0], rest[1], AlterConfigOp.OpType.valueOf(rest[2]), tail(rest, 3));
            case "raw-alter" -> rawAlter(rest[0], rest[1], kv(tail(rest, 2)));
            case "produce" -> produce(rest[0], rest[1], rest[2], tail(rest, 3));
            case "consume" -> consume(rest[0], rest[1]);
            case "raw-produce" -> rawProduce(rest[0], rest[1], rest[2], tail(rest, 3));
            default -> { System.err.println("unknown subcommand " + cmd); System.exit(2); }
        }
    }

    static String[] tail(String[] a, int from) { return Arrays.copyOfRange(a, Math.min(from, a.length), a.length); }

    static LinkedHashMap<String, String> kv(String[] a) {
        LinkedHashMap<String, String> m = new LinkedHashMap<>();
        for (String s : a) {
            int i = s.indexOf('=');
            m.put(s.substring(0, i), s.substring(i + 1));
        }
        return m;
    }

    static LinkedHashMap<String, String> keysOnly(String[] a) {
        LinkedHashMap<String, String> m = new LinkedHashMap<>();
        for (String s : a) m.put(s, null);
        return m;
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    static void printError(String what, Throwable t) {
        Throwable c = (t instanceof ExecutionException && t.getCause() != null) ? t.getCause() : t;
        String code = (c instanceof ApiException) ? Errors.forException(c).name() + " (" + Errors.forException(c).code() + ")" : "-";
        System.out.println(what + ": ERROR " + code + " " + c.getClass().getName() + ": " + c.getMessage());
    }

    // ---------------------------------------------------------------- schema
    static void schema() throws Exception {
        Class<?> logConfig = Class.forName("org.apache.kafka.storage.internals.log.LogConfig");
        @SuppressWarnings("unchecked")
        Map<String, ConfigDef.ConfigKey> keys = (Map<String, ConfigDef.ConfigKey>) logConfig.getMethod("configKeys").invoke(null);
        @SuppressWarnings("unchecked")
        List<String> nonInternal = (List<String>) logConfig.getMethod("nonInternalConfigNames").invoke(null);
        Class<?> syn = Class.forName("org.apache.kafka.server.config.ServerTopicConfigSynonyms");
        @SuppressWarnings("unchecked")
        Map<String, List<?>> all = (Map<String, List<?>>) syn.getField("ALL_TOPIC_CONFIG_SYNONYMS").get(null);
        Class<?> cs = Class.forName("org.apache.kafka.server.config.ConfigSynonym");
        Object hours = cs.getField("HOURS_TO_MILLISECONDS").get(null);
        Object minutes = cs.getField("MINUTES_TO_MILLISECONDS").get(null);
        ConfigDef broker = (ConfigDef) Class.forName("org.apache.kafka.server.config.AbstractKafkaConfig").getField("CONFIG_DEF").get(null);
        Map<String, ConfigDef.ConfigKey> bkeys = broker.configKeys();

        List<String> names = new ArrayList<>(keys.keySet());
        Collections.sort(names);
        for (String n : names) {
            ConfigDef.ConfigKey k = keys.get(n);
            StringBuilder sb = new StringBuilder();
            sb.append("name=").append(n);
            sb.append("\tinternal=").append(!nonInternal.contains(n));
            sb.append("\ttype=").append(k.type);
            sb.append("\tdefault=").append(k.hasDefault() ? ConfigDef.convertToString(k.defaultValue, k.type) : "<none>");
            sb.append("\tvalidator=").append(k.validator == null ? "-" : k.validator.toString());
            sb.append("\timportance=").append(k.importance);
            List<?> s = all.get(n);
            List<String> sn = new ArrayList<>();
            if (s != null) for (Object o : s) {
                String sname = (String) cs.getMethod("name").invoke(o);
                Object conv = cs.getMethod("converter").invoke(o);
                String suffix = conv == hours ? " (hours->ms)" : conv == minutes ? " (minutes->ms)" : "";
                ConfigDef.ConfigKey bk = bkeys.get(sname);
                String bdef = bk == null ? "?" : (bk.hasDefault() ? String.valueOf(ConfigDef.convertToString(bk.defaultValue, bk.type)) : "<none>");
                String btype = bk == null ? "?" : bk.type.toString();
                String bval = bk == null || bk.validator == null ? "-" : bk.validator.toString();
                sn.add(sname + suffix + " {type=" + btype + ", default=" + bdef + ", validator=" + bval + "}");
            }
            sb.append("\tsynonyms=").append(sn);
            System.out.println(sb);
        }
    }

    static void schemaDocs() throws Exception {
        Class<?> logConfig = Class.forName("org.apache.kafka.storage.internals.log.LogConfig");
        @SuppressWarnings("unchecked")
        Map<String, ConfigDef.ConfigKey> keys = (Map<String, ConfigDef.ConfigKey>) logConfig.getMethod("configKeys").invoke(null);
        new TreeMap<>(keys).forEach((n, k) -> System.out.println(n + "\t" + k.documentation));
    }

    // ---------------------------------------------------------------- describe (Admin)
    static void describe(String bootstrap, String topic, String[] only) throws Exception {
        try (Admin a = admin(bootstrap)) {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config c = a.describeConfigs(List.of(r), new DescribeConfigsOptions().includeSynonyms(true).includeDocumentation(true))
                    .all().get().get(r);
            List<ConfigEntry> es = new ArrayList<>(c.entries());
            es.sort(Comparator.comparing(ConfigEntry::name));
            Set<String> want = new HashSet<>(Arrays.asList(only));
            for (ConfigEntry e : es) {
                if (!want.isEmpty() && !want.contains(e.name())) continue;
                StringBuilder sb = new StringBuilder();
                sb.append(e.name()).append(" = ").append(e.value() == null ? "null" : "\"" + e.value() + "\"");
                sb.append(" | source=").append(e.source());
                sb.append(" | type=").append(e.type());
                sb.append(" | sensitive=").append(e.isSensitive());
                sb.append(" | readOnly=").append(e.isReadOnly());
                String doc = e.documentation();
                sb.append(" | doc=").append(doc == null ? "null" : doc.isEmpty() ? "\"\"" : "(" + doc.length() + " chars) " + abbrev(doc));
                sb.append(" | synonyms=[");
                boolean first = true;
                for (ConfigEntry.ConfigSynonym s : e.synonyms()) {
                    if (!first) sb.append(", ");
                    first = false;
                    sb.append(s.source()).append(":").append(s.name()).append("=").append(s.value());
                }
                sb.append("]");
                System.out.println(sb);
            }
        }
    }

    static String abbrev(String s) {
        s = s.replace('\n', ' ');
        return s.length() <= 60 ? "\"" + s + "\"" : "\"" + s.substring(0, 60) + "...\"";
    }

    // ---------------------------------------------------------------- raw requests
    static int corr = 1;

    static AbstractResponse roundTrip(String bootstrap, AbstractRequest.Builder<?> b, short version) throws IOException {
        String[] hp = bootstrap.split(",")[0].split(":");
        try (Socket s = new Socket(hp[0], Integer.parseInt(hp[1]))) {
            AbstractRequest req = b.build(version);
            RequestHeader h = new RequestHeader(req.apiKey(), version, "config-probe", corr++);
            ByteBuffer body = req.serializeWithHeader(h);
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
            out.writeInt(body.remaining());
            out.write(body.array(), body.arrayOffset() + body.position(), body.remaining());
            out.flush();
            DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
            int len = in.readInt();
            byte[] buf = new byte[len];
            in.readFully(buf);
            return AbstractResponse.parseResponse(ByteBuffer.wrap(buf), h);
        }
    }

    static void rawDescribe(String bootstrap, String topic, String[] only) throws Exception {
        rawDescribeResource(bootstrap, ConfigResource.Type.TOPIC, topic, only);
    }

    // Options before the names: --no-synonyms, --no-docs, --version=N (default 4).
    static void rawDescribeResource(String bootstrap, ConfigResource.Type type, String name, String[] args) throws Exception {
        boolean syn = true, docs = true;
        short v = 4;
        List<String> only = new ArrayList<>();
        for (String a : args) {
            if (a.equals("--no-synonyms")) syn = false;
            else if (a.equals("--no-docs")) docs = false;
            else if (a.startsWith("--version=")) v = Short.parseShort(a.substring(10));
            else only.add(a);
        }
        System.out.println("DescribeConfigs v" + v + " include_synonyms=" + syn + " include_documentation=" + docs
                + " keys=" + (only.isEmpty() ? "null" : only));
        DescribeConfigsRequestData d = new DescribeConfigsRequestData()
                .setIncludeSynonyms(syn).setIncludeDocumentation(docs);
        DescribeConfigsRequestData.DescribeConfigsResource res = new DescribeConfigsRequestData.DescribeConfigsResource()
                .setResourceType(type.id()).setResourceName(name)
                .setConfigurationKeys(only.isEmpty() ? null : only);
        d.setResources(List.of(res));
        DescribeConfigsResponse resp = (DescribeConfigsResponse) roundTrip(bootstrap, new DescribeConfigsRequest.Builder(d), v);
        for (DescribeConfigsResponseData.DescribeConfigsResult r : resp.data().results()) {
            System.out.println("resource type=" + r.resourceType() + " name=" + r.resourceName()
                    + " error_code=" + r.errorCode() + " error_message=" + (r.errorMessage() == null ? "null" : "\"" + r.errorMessage() + "\""));
            for (DescribeConfigsResponseData.DescribeConfigsResourceResult c : r.configs()) {
                StringBuilder sb = new StringBuilder();
                sb.append("  ").append(c.name()).append(" value=").append(c.value() == null ? "null" : "\"" + c.value() + "\"")
                        .append(" read_only=").append(c.readOnly())
                        .append(" config_source=").append(c.configSource())
                        .append(" is_sensitive=").append(c.isSensitive())
                        .append(" config_type=").append(c.configType())
                        .append(" documentation=").append(c.documentation() == null ? "null" : "(" + c.documentation().length() + " chars)")
                        .append(" synonyms=[");
                boolean first = true;
                for (DescribeConfigsResponseData.DescribeConfigsSynonym s : c.synonyms()) {
                    if (!first) sb.append(", ");
                    first = false;
                    sb.append("{name=").append(s.name()).append(", value=").append(s.value()).append(", source=").append(s.source()).append("}");
                }
                sb.append("]");
                System.out.println(sb);
            }
        }
    }

    static void rawAlter(String bootstrap, String topic, Map<String, String> kv) throws Exception {
        List<AlterConfigsRequest.ConfigEntry> entries = new ArrayList<>();
        kv.forEach((k, v) -> entries.add(new AlterConfigsRequest.ConfigEntry(k, v)));
        Map<ConfigResource, AlterConfigsRequest.Config> m = Map.of(new ConfigResource(ConfigResource.Type.TOPIC, topic),
                new AlterConfigsRequest.Config(entries));
        AlterConfigsResponse resp = (AlterConfigsResponse) roundTrip(bootstrap, new AlterConfigsRequest.Builder(m, false), (short) 1);
        resp.data().responses().forEach(r -> System.out.println("AlterConfigs(v1) " + kv + ": error_code="
                + Errors.forCode(r.errorCode()).name() + " (" + r.errorCode() + ") error_message=" + (r.errorMessage() == null ? "null" : "\"" + r.errorMessage() + "\"")));
    }

    // ---------------------------------------------------------------- create / alter
    static void create(String bootstrap, String topic, Map<String, String> configs, boolean validateOnly) throws Exception {
        try (Admin a = admin(bootstrap)) {
            NewTopic t = new NewTopic(topic, 1, (short) 1).configs(configs);
            String what = (validateOnly ? "CreateTopics(validateOnly) " : "CreateTopics ") + topic + " " + configs;
            try {
                CreateTopicsResult r = a.createTopics(List.of(t), new CreateTopicsOptions().validateOnly(validateOnly));
                r.all().get();
                System.out.println(what + ": OK");
            } catch (Exception e) {
                printError(what, e);
            }
        }
    }

    static void alter(String bootstrap, String topic, Map<String, String> kv, boolean delete) throws Exception {
        try (Admin a = admin(bootstrap)) {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            List<AlterConfigOp> ops = new ArrayList<>();
            kv.forEach((k, v) -> ops.add(new AlterConfigOp(new ConfigEntry(k, v), delete ? AlterConfigOp.OpType.DELETE : AlterConfigOp.OpType.SET)));
            String what = "IncrementalAlterConfigs " + (delete ? "DELETE " + kv.keySet() : "SET " + kv) + " on " + topic;
            try {
                a.incrementalAlterConfigs(Map.of(r, ops)).all().get();
                System.out.println(what + ": OK");
            } catch (Exception e) {
                printError(what, e);
            }
        }
    }

    static void alterOp(String bootstrap, String topic, AlterConfigOp.OpType op, String[] items) throws Exception {
        try (Admin a = admin(bootstrap)) {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            List<AlterConfigOp> ops = new ArrayList<>();
            for (String it : items) {
                int i = it.indexOf('=');
                ops.add(new AlterConfigOp(new ConfigEntry(i < 0 ? it : it.substring(0, i), i < 0 ? null : it.substring(i + 1)), op));
            }
            String what = "IncrementalAlterConfigs " + op + " " + Arrays.toString(items) + " on " + topic;
            try {
                a.incrementalAlterConfigs(Map.of(r, ops)).all().get();
                System.out.println(what + ": OK");
            } catch (Exception e) {
                printError(what, e);
            }
        }
    }

    // ---------------------------------------------------------------- produce / consume
    static long parseTs(String s, long now) {
        if (s.equals("now")) return now;
        if (s.startsWith("now-")) return now - Long.parseLong(s.substring(4));
        if (s.startsWith("now+")) return now + Long.parseLong(s.substring(4));
        return Long.parseLong(s);
    }

    static void produce(String bootstrap, String topic, String codec, String[] ts) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.RETRIES_CONFIG, 0);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 50);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 10000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
        if (ts.length == 0) ts = new String[]{"now", "now"};
        long now = System.currentTimeMillis();
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            List<Long> sent = new ArrayList<>();
            for (int i = 0; i < ts.length; i++) {
                long t = parseTs(ts[i], now);
                sent.add(t);
                fs.add(pr.send(new ProducerRecord<>(topic, 0, t, "k" + i, "value-" + i + "-" + "x".repeat(200))));
            }
            pr.flush();
            for (int i = 0; i < fs.size(); i++) {
                try {
                    RecordMetadata m = fs.get(i).get();
                    System.out.println("record " + i + " ts=" + sent.get(i) + ": offset=" + m.offset() + " timestamp=" + m.timestamp());
                } catch (Exception e) {
                    printError("record " + i + " ts=" + sent.get(i), e);
                }
            }
        }
    }

    static void rawProduce(String bootstrap, String topic, String codec, String[] ts) throws Exception {
        long now = System.currentTimeMillis();
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(1 << 16);
        org.apache.kafka.common.record.internal.MemoryRecordsBuilder b = org.apache.kafka.common.record.internal.MemoryRecords.builder(
                buf, org.apache.kafka.common.compress.Compression.of(codec).build(),
                org.apache.kafka.common.record.TimestampType.CREATE_TIME, 0L);
        for (int i = 0; i < ts.length; i++) {
            long t = parseTs(ts[i], now);
            b.append(new org.apache.kafka.common.record.internal.SimpleRecord(t, ("k" + i).getBytes(), ("v" + i).getBytes()));
        }
        org.apache.kafka.common.message.ProduceRequestData d = new org.apache.kafka.common.message.ProduceRequestData()
                .setAcks((short) -1).setTimeoutMs(5000);
        org.apache.kafka.common.message.ProduceRequestData.TopicProduceDataCollection tc =
                new org.apache.kafka.common.message.ProduceRequestData.TopicProduceDataCollection();
        tc.add(new org.apache.kafka.common.message.ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(List.of(
                new org.apache.kafka.common.message.ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(b.build()))));
        d.setTopicData(tc);
        short v = 11;
        ProduceResponse resp = (ProduceResponse) roundTrip(bootstrap, new ProduceRequest.Builder(v, v, d), v);
        System.out.println("Produce v" + v + " " + topic + " codec=" + codec + " timestamps=" + Arrays.toString(ts) + " (broker-ish now=" + now + ")");
        resp.data().responses().forEach(t -> t.partitionResponses().forEach(pr -> {
            StringBuilder sb = new StringBuilder();
            sb.append("  partition=").append(pr.index()).append(" error_code=").append(Errors.forCode(pr.errorCode()).name())
                    .append(" (").append(pr.errorCode()).append(") error_message=")
                    .append(pr.errorMessage() == null ? "null" : "\"" + pr.errorMessage() + "\"")
                    .append(" base_offset=").append(pr.baseOffset()).append(" log_append_time_ms=").append(pr.logAppendTimeMs())
                    .append(" log_start_offset=").append(pr.logStartOffset()).append(" record_errors=[");
            boolean first = true;
            for (var re : pr.recordErrors()) {
                if (!first) sb.append(", ");
                first = false;
                sb.append("{batch_index=").append(re.batchIndex()).append(", batch_index_error_message=")
                        .append(re.batchIndexErrorMessage() == null ? "null" : "\"" + re.batchIndexErrorMessage() + "\"").append("}");
            }
            sb.append("]");
            System.out.println(sb);
        }));
    }

    static void consume(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            long deadline = System.currentTimeMillis() + 10000;
            while (c.position(tp) < end && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(java.time.Duration.ofMillis(500))) {
                    System.out.println("offset=" + r.offset() + " timestampType=" + r.timestampType() + " timestamp=" + r.timestamp()
                            + " key=" + r.key() + " value=" + abbrev(r.value()));
                }
            }
        }
    }
}
