package dev.odradek.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;

/**
 * The scenarios of compat/SCENARIOS.md through the Java producer, consumer and Admin.
 *
 * <p>Every client keeps Kafka's defaults except where a scenario needs otherwise, and each such
 * setting is commented where it is made: {@code compression.type} for the codec scenarios,
 * {@code auto.offset.reset=earliest} for group members that must read what was produced before
 * they joined, {@code enable.auto.commit=false} where the scenario commits an exact offset, and
 * {@code isolation.level=read_committed}/{@code transactional.id} for transactions. Checks read
 * back with a group-less consumer (assign + seek to beginning) or with the Admin client.
 */
final class Scenarios implements AutoCloseable {
    static final long CALL = Clients.CALL_TIMEOUT_MS;
    static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");

    private final String bootstrap;
    private final String runId;
    private final Clients clients;
    private Admin admin;

    Scenarios(String bootstrap, String runId) {
        this.bootstrap = bootstrap;
        this.runId = runId;
        this.clients = new Clients(bootstrap);
    }

    /** One Admin client for the whole run (created on first use). */
    private synchronized Admin admin() {
        if (admin == null) {
            admin = clients.admin();
        }
        return admin;
    }

    @Override
    public synchronized void close() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
    }

    String topic(String scenario) {
        return "compat-" + Main.CLIENT + "-" + scenario + "-" + runId;
    }

    static String codecTopic(String codec, String writer, String runId) {
        return "compat-codec-" + codec + "-" + writer + "-" + runId;
    }

    Main.Outcome run(String scenario, Main.Step step) throws Exception {
        if (scenario.startsWith("produce-codec-")) {
            return produceCodec(scenario.substring("produce-codec-".length()), step);
        }
        if (scenario.startsWith("consume-codec-")) {
            String rest = scenario.substring("consume-codec-".length());
            int colon = rest.indexOf(':');
            Check.that(colon > 0, "consume-codec scenario without a writer: " + scenario);
            return consumeCodec(rest.substring(0, colon), rest.substring(colon + 1), step);
        }
        return switch (scenario) {
            case "metadata" -> metadata(step);
            case "topics-admin" -> topicsAdmin(step);
            case "produce-consume" -> produceConsume(step);
            case "list-offsets-by-time" -> listOffsetsByTime(step);
            case "consumer-group" -> new GroupScenario(clients, admin(), topic("consumer-group"),
                    "compat-" + Main.CLIENT + "-group-" + runId).run(step);
            case "resume-committed" -> resumeCommitted(step);
            case "idempotent-producer" -> idempotentProducer(step);
            case "transactions" -> transactions(step);
            case "delete-records" -> deleteRecords(step);
            default -> throw new Check.Mismatch("unknown scenario " + scenario);
        };
    }

    // -- metadata ---------------------------------------------------------------------------

    private Main.Outcome metadata(Main.Step step) throws Exception {
        String topic = topic("metadata");
        step.set("creating " + topic);
        Clients.createTopics(admin(), Map.of(topic, 1));

        step.set("describing the cluster");
        Collection<Node> nodes = admin().describeCluster().nodes().get(CALL, TimeUnit.MILLISECONDS);
        Check.equal(1, nodes.size(), "brokers in the cluster");
        Node node = nodes.iterator().next();
        Check.equal(bootstrap, node.host() + ":" + node.port(), "the broker's address");

        step.set("listing topics with the Admin client");
        Set<String> names = admin().listTopics().names().get(CALL, TimeUnit.MILLISECONDS);
        Check.that(names.contains(topic), topic + " missing from the topic list " + names);
        TopicDescription description = admin().describeTopics(List.of(topic)).allTopicNames()
                .get(CALL, TimeUnit.MILLISECONDS).get(topic);
        Check.equal(1, description.partitions().size(), "partitions of " + topic);

        step.set("reading Metadata with a consumer");
        try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(Map.of())) {
            Map<String, List<PartitionInfo>> topics = consumer.listTopics(Duration.ofMillis(CALL));
            Check.that(topics.containsKey(topic), topic + " missing from the consumer's metadata");
            List<PartitionInfo> partitions = topics.get(topic);
            Check.equal(1, partitions.size(), "partitions of " + topic + " in Metadata");
            Node leader = partitions.get(0).leader();
            Check.that(leader != null, "partition 0 of " + topic + " has no leader");
            Check.equal(bootstrap, leader.host() + ":" + leader.port(), "the leader's address");
        }
        return Main.Outcome.pass();
    }

    // -- topics-admin -----------------------------------------------------------------------

    private Main.Outcome topicsAdmin(Main.Step step) throws Exception {
        String topic = topic("topics-admin");
        Admin admin = admin();
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);

        step.set("creating " + topic + " with 3 partitions and retention.ms=3600000");
        NewTopic newTopic = new NewTopic(topic, java.util.Optional.of(3), java.util.Optional.empty())
                .configs(Map.of("retention.ms", "3600000"));
        admin.createTopics(List.of(newTopic)).all().get(CALL, TimeUnit.MILLISECONDS);

        step.set("describing " + topic);
        int brokerId = admin.describeCluster().nodes().get(CALL, TimeUnit.MILLISECONDS)
                .iterator().next().id();
        TopicDescription description = describe(admin, topic);
        Check.equal(3, description.partitions().size(), "partitions after create");
        description.partitions().forEach(p -> {
            Check.that(p.leader() != null, "partition " + p.partition() + " has no leader");
            Check.equal(brokerId, p.leader().id(), "leader of partition " + p.partition());
        });

        step.set("describing the configs of " + topic);
        Check.equal("3600000", retention(admin, resource), "retention.ms after create");

        step.set("altering retention.ms to 7200000");
        AlterConfigOp set = new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"),
                AlterConfigOp.OpType.SET);
        admin.incrementalAlterConfigs(Map.of(resource, List.of(set))).all()
                .get(CALL, TimeUnit.MILLISECONDS);
        Check.eventually(10_000, "retention.ms reads back as 7200000",
                () -> "7200000".equals(retention(admin, resource)));

        step.set("growing " + topic + " to 5 partitions");
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all()
                .get(CALL, TimeUnit.MILLISECONDS);
        Check.eventually(10_000, topic + " described with 5 partitions",
                () -> describe(admin, topic).partitions().size() == 5);

        step.set("deleting " + topic);
        admin.deleteTopics(List.of(topic)).all().get(CALL, TimeUnit.MILLISECONDS);
        Check.eventually(10_000, topic + " gone from the topic list",
                () -> !names(admin).contains(topic));
        return Main.Outcome.pass();
    }

    private static TopicDescription describe(Admin admin, String topic) {
        try {
            return admin.describeTopics(List.of(topic)).allTopicNames()
                    .get(CALL, TimeUnit.MILLISECONDS).get(topic);
        } catch (Exception e) {
            throw new IllegalStateException("describeTopics " + topic + " failed", e);
        }
    }

    private static Set<String> names(Admin admin) {
        try {
            return admin.listTopics().names().get(CALL, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("listTopics failed", e);
        }
    }

    private static String retention(Admin admin, ConfigResource resource) {
        try {
            Config config = admin.describeConfigs(List.of(resource)).all()
                    .get(CALL, TimeUnit.MILLISECONDS).get(resource);
            ConfigEntry entry = config.get("retention.ms");
            return entry == null ? null : entry.value();
        } catch (Exception e) {
            throw new IllegalStateException("describeConfigs " + resource.name() + " failed", e);
        }
    }

    // -- produce-consume --------------------------------------------------------------------

    private Main.Outcome produceConsume(Main.Step step) throws Exception {
        String topic = topic("produce-consume");
        TopicPartition tp = new TopicPartition(topic, 0);
        step.set("creating " + topic);
        Clients.createTopics(admin(), Map.of(topic, 1));

        byte[] big = new byte[1_000_000];
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) ('a' + i % 26);
        }
        List<Header> headers = List.of(new RecordHeader("h1", utf8("v1")),
                new RecordHeader("h2", new byte[0]));
        List<ProducerRecord<byte[], byte[]>> sent = List.of(
                new ProducerRecord<>(topic, 0, 1_700_000_000_000L, utf8("key"), utf8("value"),
                        headers),
                new ProducerRecord<>(topic, 0, null, null),
                new ProducerRecord<>(topic, 0, new byte[0], new byte[0]),
                new ProducerRecord<>(topic, 0, utf8("big"), big));

        List<RecordMetadata> acks = new ArrayList<>();
        // The default max.request.size (1048576) already admits a 1,000,000-byte record.
        try (KafkaProducer<byte[], byte[]> producer = clients.producer(Map.of())) {
            for (int i = 0; i < sent.size(); i++) {
                step.set("producing record " + i);
                acks.add(producer.send(sent.get(i)).get(CALL, TimeUnit.MILLISECONDS));
                Check.equal((long) i, acks.get(i).offset(), "offset acknowledged for record " + i);
            }
        }

        step.set("consuming " + topic + " from the beginning");
        List<ConsumerRecord<byte[], byte[]>> got;
        try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(Map.of())) {
            got = Clients.readToEnd(consumer, List.of(tp), 30_000);
        }
        Check.equal(4, got.size(), "records consumed");
        for (int i = 0; i < 4; i++) {
            ProducerRecord<byte[], byte[]> s = sent.get(i);
            ConsumerRecord<byte[], byte[]> r = got.get(i);
            Check.equal((long) i, r.offset(), "offset of record " + i);
            Check.bytes(s.key(), r.key(), "key of record " + i);
            Check.bytes(s.value(), r.value(), "value of record " + i);
            Check.equal(TimestampType.CREATE_TIME, r.timestampType(), "timestamp type " + i);
            Check.equal(acks.get(i).timestamp(), r.timestamp(), "timestamp of record " + i);
            Check.equal(headerList(s.headers()), headerList(r.headers()), "headers of record " + i);
        }
        Check.equal(1_700_000_000_000L, got.get(0).timestamp(), "timestamp of record 0");
        return Main.Outcome.pass();
    }

    /** Headers as comparable "key=[bytes]" strings, in order. */
    static List<String> headerList(Iterable<Header> headers) {
        List<String> out = new ArrayList<>();
        for (Header h : headers) {
            out.add(h.key() + "=" + (h.value() == null ? "null" : Arrays.toString(h.value())));
        }
        return out;
    }

    // -- codecs -----------------------------------------------------------------------------

    static byte[] codecValue(String codec, int i) {
        return utf8(("codec " + codec + " record " + i + " ").repeat(8));
    }

    private Main.Outcome produceCodec(String codec, Main.Step step) throws Exception {
        Check.that(CODECS.contains(codec), "unknown codec " + codec);
        String topic = codecTopic(codec, Main.CLIENT, runId);
        step.set("creating " + topic);
        Clients.createTopics(admin(), Map.of(topic, 1));

        step.set("producing 100 records with compression.type=" + codec);
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        // The scenario's one setting: the codec.
        try (KafkaProducer<byte[], byte[]> producer =
                clients.producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec))) {
            for (int i = 0; i < 100; i++) {
                List<Header> headers = List.of(new RecordHeader("i", utf8(Integer.toString(i))));
                acks.add(producer.send(new ProducerRecord<>(topic, 0, null, utf8("k" + i),
                        codecValue(codec, i), headers)));
            }
            producer.flush();
            for (int i = 0; i < 100; i++) {
                Check.equal((long) i, acks.get(i).get(CALL, TimeUnit.MILLISECONDS).offset(),
                        "offset acknowledged for record " + i);
            }
        }
        return Main.Outcome.pass();
    }

    private Main.Outcome consumeCodec(String codec, String writer, Main.Step step) {
        Check.that(CODECS.contains(codec), "unknown codec " + codec);
        String topic = codecTopic(codec, writer, runId);
        step.set("consuming " + topic);
        List<ConsumerRecord<byte[], byte[]>> got;
        try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(Map.of())) {
            got = Clients.readToEnd(consumer, List.of(new TopicPartition(topic, 0)), 30_000);
        }
        Check.equal(100, got.size(), "records in " + topic);
        for (int i = 0; i < 100; i++) {
            ConsumerRecord<byte[], byte[]> r = got.get(i);
            Check.equal((long) i, r.offset(), "offset of record " + i);
            Check.bytes(utf8("k" + i), r.key(), "key of record " + i);
            Check.bytes(codecValue(codec, i), r.value(), "value of record " + i);
            Check.equal(List.of("i=" + Arrays.toString(utf8(Integer.toString(i)))),
                    headerList(r.headers()), "headers of record " + i);
        }
        return Main.Outcome.pass();
    }

    // -- list-offsets-by-time ---------------------------------------------------------------

    private Main.Outcome listOffsetsByTime(Main.Step step) throws Exception {
        String topic = topic("list-offsets-by-time");
        TopicPartition tp = new TopicPartition(topic, 0);
        step.set("creating " + topic);
        // 2023 timestamps: retention.ms=-1 so that no retention pass deletes them meanwhile.
        admin().createTopics(List.of(new NewTopic(topic, java.util.Optional.of(1),
                java.util.Optional.empty()).configs(Map.of("retention.ms", "-1"))))
                .all().get(CALL, TimeUnit.MILLISECONDS);
        long t0 = 1_700_000_000_000L;

        step.set("producing 3 records with create times");
        try (KafkaProducer<byte[], byte[]> producer = clients.producer(Map.of())) {
            for (int i = 0; i < 3; i++) {
                producer.send(new ProducerRecord<>(topic, 0, t0 + 1000L * i, null,
                        utf8("t" + i))).get(CALL, TimeUnit.MILLISECONDS);
            }
        }

        step.set("listing offsets with the Admin client");
        Check.equal(0L, adminOffset(tp, OffsetSpec.earliest()), "earliest offset");
        Check.equal(3L, adminOffset(tp, OffsetSpec.latest()), "latest offset");
        Check.equal(1L, adminOffset(tp, OffsetSpec.forTimestamp(t0 + 500)), "offset for t0+500");
        Check.equal(2L, adminOffset(tp, OffsetSpec.forTimestamp(t0 + 2000)), "offset for t0+2000");
        Check.equal(-1L, adminOffset(tp, OffsetSpec.forTimestamp(t0 + 3000)),
                "offset for t0+3000 (after the last record)");

        step.set("listing offsets with the consumer");
        try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(Map.of())) {
            Duration d = Duration.ofMillis(CALL);
            Check.equal(0L, consumer.beginningOffsets(List.of(tp), d).get(tp), "beginningOffsets");
            Check.equal(3L, consumer.endOffsets(List.of(tp), d).get(tp), "endOffsets");
            Map<TopicPartition, OffsetAndTimestamp> at;
            at = consumer.offsetsForTimes(Map.of(tp, t0 + 500), d);
            Check.equal(1L, at.get(tp) == null ? null : at.get(tp).offset(), "offsetsForTimes t0+500");
            at = consumer.offsetsForTimes(Map.of(tp, t0 + 2000), d);
            Check.equal(2L, at.get(tp) == null ? null : at.get(tp).offset(), "offsetsForTimes t0+2000");
            Check.equal(t0 + 2000, at.get(tp).timestamp(), "timestamp found for t0+2000");
            at = consumer.offsetsForTimes(Map.of(tp, t0 + 3000), d);
            Check.that(at.get(tp) == null, "offsetsForTimes t0+3000: expected none, got " + at.get(tp));
        }
        return Main.Outcome.pass();
    }

    private long adminOffset(TopicPartition tp, OffsetSpec spec) throws Exception {
        Map<TopicPartition, ListOffsetsResultInfo> result = admin().listOffsets(Map.of(tp, spec))
                .all().get(CALL, TimeUnit.MILLISECONDS);
        return result.get(tp).offset();
    }

    // -- resume-committed -------------------------------------------------------------------

    private Main.Outcome resumeCommitted(Main.Step step) throws Exception {
        String topic = topic("resume-committed");
        String group = "compat-" + Main.CLIENT + "-resume-" + runId;
        TopicPartition tp = new TopicPartition(topic, 0);
        step.set("creating " + topic);
        Clients.createTopics(admin(), Map.of(topic, 1));
        produceNumbered(topic, 1, 10, step);

        // A new group must start from the records produced before it (the default is latest),
        // and the consumer commits exactly offset 4 itself (auto-commit would commit its
        // position on close).
        Map<String, Object> settings = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);

        step.set("first consumer of " + group + " reading 4 records");
        try (KafkaConsumer<byte[], byte[]> first = clients.consumer(settings)) {
            first.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> got = pollAtLeast(first, 4, 30_000);
            for (int i = 0; i < 4; i++) {
                Check.equal((long) i, got.get(i).offset(), "offset of the first consumer's record");
            }
            first.commitSync(Map.of(tp, new OffsetAndMetadata(4)), Duration.ofMillis(CALL));
        }

        step.set("second consumer of " + group + " resuming");
        try (KafkaConsumer<byte[], byte[]> second = clients.consumer(settings)) {
            second.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> got = pollAtLeast(second, 6, 30_000);
            List<Long> offsets = got.stream().map(ConsumerRecord::offset).toList();
            Check.equal(List.of(4L, 5L, 6L, 7L, 8L, 9L), offsets, "offsets read after resuming");
            for (ConsumerRecord<byte[], byte[]> r : got) {
                Check.bytes(utf8("record " + r.offset()), r.value(), "value at " + r.offset());
            }
            OffsetAndMetadata committed = second.committed(Set.of(tp), Duration.ofMillis(CALL))
                    .get(tp);
            Check.equal(4L, committed == null ? null : committed.offset(), "committed offset");
        }
        return Main.Outcome.pass();
    }

    /** Poll a subscribed consumer until it has returned at least {@code count} records. */
    static List<ConsumerRecord<byte[], byte[]>> pollAtLeast(KafkaConsumer<byte[], byte[]> consumer,
            int count, long millis) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (out.size() < count) {
            if (System.nanoTime() > deadline) {
                throw new Check.Mismatch("polled " + out.size() + " of " + count
                        + " records within " + millis + " ms");
            }
            consumer.poll(Duration.ofMillis(200)).forEach(out::add);
        }
        return out;
    }

    /** Produce {@code count} records "record i" round-robin over partitions, acks awaited. */
    private void produceNumbered(String topic, int partitions, int count, Main.Step step)
            throws Exception {
        step.set("producing " + count + " records to " + topic);
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = clients.producer(Map.of())) {
            for (int i = 0; i < count; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, i % partitions,
                        utf8("k" + i), utf8("record " + i))));
            }
            producer.flush();
            for (Future<RecordMetadata> ack : acks) {
                ack.get(CALL, TimeUnit.MILLISECONDS);
            }
        }
    }

    // -- idempotent-producer ----------------------------------------------------------------

    private Main.Outcome idempotentProducer(Main.Step step) throws Exception {
        String topic = topic("idempotent-producer");
        step.set("creating " + topic);
        Clients.createTopics(admin(), Map.of(topic, 3));

        step.set("producing 1000 records with the idempotent producer");
        // enable.idempotence=true and retries=MAX_INT are the defaults; set idempotence
        // explicitly so a config conflict fails loudly instead of silently turning it off.
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer =
                clients.producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true))) {
            for (int i = 0; i < 1000; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, i % 3, utf8("k" + i),
                        utf8(Integer.toString(i)))));
            }
            producer.flush();
            for (Future<RecordMetadata> ack : acks) {
                ack.get(CALL, TimeUnit.MILLISECONDS);
            }
        }

        step.set("consuming " + topic);
        List<TopicPartition> tps = List.of(new TopicPartition(topic, 0),
                new TopicPartition(topic, 1), new TopicPartition(topic, 2));
        List<ConsumerRecord<byte[], byte[]>> got;
        try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(Map.of())) {
            got = Clients.readToEnd(consumer, tps, 30_000);
        }
        Check.equal(1000, got.size(), "records consumed");
        Map<Integer, Integer> last = new HashMap<>();
        boolean[] seen = new boolean[1000];
        for (ConsumerRecord<byte[], byte[]> r : got) {
            int i = Integer.parseInt(new String(r.value(), StandardCharsets.UTF_8));
            Check.that(!seen[i], "record " + i + " consumed twice");
            seen[i] = true;
            Check.equal(i % 3, r.partition(), "partition of record " + i);
            int previous = last.getOrDefault(r.partition(), -1);
            Check.that(i > previous, "record " + i + " after record " + previous
                    + " in partition " + r.partition());
            last.put(r.partition(), i);
        }
        return Main.Outcome.pass();
    }

    // -- transactions -----------------------------------------------------------------------

    private Main.Outcome transactions(Main.Step step) throws Exception {
        String topic = topic("transactions");
        TopicPartition tp = new TopicPartition(topic, 0);
        step.set("creating " + topic);
        Clients.createTopics(admin(), Map.of(topic, 1));

        String txnId = "compat-" + Main.CLIENT + "-txn-" + runId;
        try (KafkaProducer<byte[], byte[]> producer =
                clients.producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId))) {
            step.set("initTransactions for " + txnId);
            producer.initTransactions();
            step.set("committing a transaction of 10 records");
            producer.beginTransaction();
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, 0, null, utf8("committed " + i)));
            }
            producer.commitTransaction();
            step.set("aborting a transaction of 10 records");
            producer.beginTransaction();
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, 0, null, utf8("aborted " + i)));
            }
            producer.flush();
            producer.abortTransaction();
        }

        step.set("reading with isolation.level=read_committed");
        List<String> committed = values(readWith("read_committed", tp));
        List<String> expectedCommitted = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            expectedCommitted.add("committed " + i);
        }
        Check.equal(expectedCommitted, committed, "read_committed records");

        step.set("reading with isolation.level=read_uncommitted");
        List<String> all = values(readWith("read_uncommitted", tp));
        List<String> expectedAll = new ArrayList<>(expectedCommitted);
        for (int i = 0; i < 10; i++) {
            expectedAll.add("aborted " + i);
        }
        Check.equal(expectedAll, all, "read_uncommitted records");
        return Main.Outcome.pass();
    }

    private List<ConsumerRecord<byte[], byte[]>> readWith(String isolation, TopicPartition tp) {
        try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation))) {
            return Clients.readToEnd(consumer, List.of(tp), 30_000);
        }
    }

    private static List<String> values(List<ConsumerRecord<byte[], byte[]>> records) {
        return records.stream()
                .map(r -> r.value() == null ? "null" : new String(r.value(), StandardCharsets.UTF_8))
                .toList();
    }

    // -- delete-records ---------------------------------------------------------------------

    private Main.Outcome deleteRecords(Main.Step step) throws Exception {
        String topic = topic("delete-records");
        TopicPartition tp = new TopicPartition(topic, 0);
        step.set("creating " + topic);
        Clients.createTopics(admin(), Map.of(topic, 1));
        produceNumbered(topic, 1, 10, step);

        step.set("deleting records before offset 5");
        long low = admin().deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(5)))
                .lowWatermarks().get(tp).get(CALL, TimeUnit.MILLISECONDS).lowWatermark();
        Check.equal(5L, low, "low watermark returned by DeleteRecords");
        Check.equal(5L, adminOffset(tp, OffsetSpec.earliest()), "earliest offset");

        step.set("consuming " + topic + " from the beginning");
        List<ConsumerRecord<byte[], byte[]>> got;
        try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(Map.of())) {
            got = Clients.readToEnd(consumer, List.of(tp), 30_000);
        }
        Check.equal(List.of(5L, 6L, 7L, 8L, 9L),
                got.stream().map(ConsumerRecord::offset).toList(), "offsets read");
        for (ConsumerRecord<byte[], byte[]> r : got) {
            Check.bytes(utf8("record " + r.offset()), r.value(), "value at " + r.offset());
        }
        return Main.Outcome.pass();
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
