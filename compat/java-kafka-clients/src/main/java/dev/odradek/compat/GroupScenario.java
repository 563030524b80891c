package dev.odradek.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;

/**
 * The {@code consumer-group} scenario: three members of one group in this process, one stopped
 * after all three hold partitions, the other two finish the topic.
 *
 * <p>How it works: 600 records go to a 6-partition topic (100 per partition) before any member
 * starts. Each member is a {@link KafkaConsumer} on its own thread (the consumer is not
 * thread-safe) with the default group protocol (classic) and assignors; after every poll it
 * records what it read, commits synchronously, and publishes a snapshot of its assignment. The
 * members join one after another, each once the previous one holds partitions; when all three
 * hold partitions the second is closed (it leaves the group). The scenario then waits until the
 * group's committed offsets (read with the Admin client) are 100 on every partition, every record
 * has been read by some member, and the two remaining members' assignments cover the 6
 * partitions; at that point the assignments must not overlap, neither in the members' own view
 * nor in the group description the broker gives.
 */
final class GroupScenario {
    private static final int PARTITIONS = 6;
    private static final int PER_PARTITION = 100;
    private static final long WAIT_MS = 40_000;

    private final Clients clients;
    private final Admin admin;
    private final String topic;
    private final String group;
    /** "partition:offset" of every record any member read. */
    private final Set<String> consumed = ConcurrentHashMap.newKeySet();

    GroupScenario(Clients clients, Admin admin, String topic, String group) {
        this.clients = clients;
        this.admin = admin;
        this.topic = topic;
        this.group = group;
    }

    Main.Outcome run(Main.Step step) throws Exception {
        step.set("creating " + topic + " with 6 partitions");
        Clients.createTopics(admin, Map.of(topic, PARTITIONS));
        step.set("producing 600 records");
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = clients.producer(Map.of())) {
            for (int p = 0; p < PARTITIONS; p++) {
                for (int i = 0; i < PER_PARTITION; i++) {
                    acks.add(producer.send(new ProducerRecord<>(topic, p, null,
                            Scenarios.utf8(p + "-" + i))));
                }
            }
            producer.flush();
            for (Future<RecordMetadata> ack : acks) {
                ack.get(Clients.CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            }
        }

        List<Member> members = new ArrayList<>();
        try {
            for (int m = 0; m < 3; m++) {
                Member member = new Member("member-" + m);
                members.add(member);
                step.set("starting " + member.name);
                member.start();
                List<Member> started = List.copyOf(members);
                Check.eventually(WAIT_MS, started.size() + " members all holding partitions",
                        () -> started.stream().allMatch(x -> {
                            x.raise();
                            return !x.assignment.isEmpty();
                        }));
            }

            Member leaving = members.remove(1);
            step.set("stopping " + leaving.name);
            leaving.stop();
            leaving.raise();

            step.set("waiting for the two remaining members to finish the topic");
            Check.eventually(WAIT_MS, "committed offsets 100 on every partition, every record "
                    + "read, and the 6 partitions assigned to the remaining members",
                    () -> {
                        members.forEach(Member::raise);
                        return committedEverywhere() && consumed.size() == PARTITIONS * PER_PARTITION
                                && union(members).size() == PARTITIONS;
                    });
            int total = members.stream().mapToInt(x -> x.assignment.size()).sum();
            Check.equal(PARTITIONS, total, "partitions held by the remaining members "
                    + members.stream().map(x -> x.name + "=" + x.assignment).toList()
                    + " (a partition owned twice?)");

            step.set("describing " + group);
            checkDescription();
        } finally {
            for (Member member : members) {
                member.stop();
            }
        }
        for (Member member : members) {
            member.raise();
        }
        return Main.Outcome.pass();
    }

    private boolean committedEverywhere() {
        try {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(Clients.CALL_TIMEOUT_MS,
                            TimeUnit.MILLISECONDS);
            for (int p = 0; p < PARTITIONS; p++) {
                OffsetAndMetadata o = offsets.get(new TopicPartition(topic, p));
                if (o == null || o.offset() != PER_PARTITION) {
                    return false;
                }
            }
            return true;
        } catch (Exception e) {
            throw new IllegalStateException("listConsumerGroupOffsets " + group + " failed", e);
        }
    }

    private static Set<TopicPartition> union(List<Member> members) {
        Set<TopicPartition> all = new HashSet<>();
        members.forEach(m -> all.addAll(m.assignment));
        return all;
    }

    /** The broker's view: a stable group of two members whose assignments split the topic. */
    private void checkDescription() {
        Map<String, Set<TopicPartition>> seen = new HashMap<>();
        Check.eventually(WAIT_MS, "group " + group + " described as Stable with 2 members",
                () -> {
                    ConsumerGroupDescription d = describeGroup();
                    seen.clear();
                    for (MemberDescription m : d.members()) {
                        seen.put(m.consumerId(), m.assignment().topicPartitions());
                    }
                    return d.groupState() == GroupState.STABLE && d.members().size() == 2;
                });
        Set<TopicPartition> all = new HashSet<>();
        int total = 0;
        for (Set<TopicPartition> assigned : seen.values()) {
            all.addAll(assigned);
            total += assigned.size();
        }
        Check.that(all.size() == PARTITIONS && total == PARTITIONS,
                "the described assignment does not split the 6 partitions: " + seen);
    }

    private ConsumerGroupDescription describeGroup() {
        try {
            return admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                    .get(Clients.CALL_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("describeConsumerGroups " + group + " failed", e);
        }
    }

    /** One group member on its own thread. */
    private final class Member implements Runnable {
        final String name;
        final Thread thread;
        volatile Set<TopicPartition> assignment = Set.of();
        volatile boolean stopping;
        volatile Throwable error;

        Member(String name) {
            this.name = name;
            this.thread = new Thread(this, name);
            this.thread.setDaemon(true);
        }

        void start() {
            thread.start();
        }

        @Override
        public void run() {
            // A new group must read what was produced before it joined (the default is latest).
            Map<String, Object> settings = Map.of(
                    ConsumerConfig.GROUP_ID_CONFIG, group,
                    ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            try (KafkaConsumer<byte[], byte[]> consumer = clients.consumer(settings)) {
                consumer.subscribe(List.of(topic));
                while (!stopping) {
                    boolean any = false;
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                        consumed.add(r.partition() + ":" + r.offset());
                        any = true;
                    }
                    if (any) {
                        consumer.commitSync(Duration.ofMillis(Clients.CALL_TIMEOUT_MS));
                    }
                    assignment = Set.copyOf(consumer.assignment());
                }
            } catch (Throwable t) {
                error = t;
            }
        }

        /** Ask the member to leave and wait for its consumer to close. */
        void stop() throws InterruptedException {
            stopping = true;
            thread.join(WAIT_MS);
        }

        /** Rethrow what broke this member's thread, if anything. */
        void raise() {
            Throwable t = error;
            if (t != null) {
                throw new IllegalStateException(name + " failed", t);
            }
        }
    }
}
