package dev.odradek.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Client factories with Kafka's default settings: only {@code bootstrap.servers}, byte-array
 * (de)serializers (so null and empty keys and values stay distinct) and what a scenario asks
 * for are set. Also the common "read a partition from the beginning to its end" step.
 */
final class Clients {
    /** Bound of one admin call or one acknowledged send. */
    static final long CALL_TIMEOUT_MS = 30_000;

    private final String bootstrap;

    Clients(String bootstrap) {
        this.bootstrap = bootstrap;
    }

    Admin admin() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        return Admin.create(p);
    }

    KafkaProducer<byte[], byte[]> producer(Map<String, Object> settings) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.putAll(settings);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> settings) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.putAll(settings);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Create topics (replication factor: the broker's default) and wait for the answer. */
    static void createTopics(Admin admin, Map<String, Integer> partitions) throws Exception {
        List<NewTopic> topics = new ArrayList<>();
        partitions.forEach((name, count) -> topics.add(
                new NewTopic(name, java.util.Optional.of(count), java.util.Optional.empty())));
        admin.createTopics(topics).all().get(CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    /**
     * Read the given partitions from their log start to the end offset seen when reading
     * starts ({@code endOffsets}: the high watermark, or the last stable offset under
     * read_committed), by assignment (no group). Fails when the end is not reached in time.
     */
    static List<ConsumerRecord<byte[], byte[]>> readToEnd(
            KafkaConsumer<byte[], byte[]> consumer, Collection<TopicPartition> partitions,
            long millis) {
        Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofMillis(millis));
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (!reached(consumer, end)) {
            if (System.nanoTime() > deadline) {
                throw new Check.Mismatch("read " + out.size() + " records, did not reach the end "
                        + "offsets " + end + " within " + millis + " ms");
            }
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                out.add(r);
            }
        }
        return out;
    }

    private static boolean reached(KafkaConsumer<byte[], byte[]> consumer,
            Map<TopicPartition, Long> end) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (consumer.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }
}
