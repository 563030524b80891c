"""KIP-848 consumer groups with real clients: librdkafka (confluent-kafka) and Apache
Kafka 4.4's Java consumer (ConsoleConsumer), both with `group.protocol=consumer`.

Three members on a six-partition topic get every partition exactly once; one member leaves,
one crashes (its session times out on the broker: `group.consumer.session.timeout.ms`), one
joins; after each step all partitions are covered exactly once and, with synchronous commits
(OffsetCommit v9 with the member epoch), no record is lost. The admin client lists the group
as a consumer-type group, describes it (ConsumerGroupDescribe) and reads its committed
offsets. The Java consumer reads a three-partition topic in a consumer group and commits
on close.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.clients.conftest import in_thread, produce, wait_for


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {
        "listeners": "PLAINTEXT://127.0.0.1:0",
        "log.dirs": str(tmp_path / "data"),
        "offsets.topic.num.partitions": "5",
        "group.consumer.session.timeout.ms": "2000",
        "group.consumer.heartbeat.interval.ms": "200",
    }


CONF = {"group.protocol": "consumer", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 1000}


class Member:
    """A librdkafka KIP-848 consumer polled from the test thread, tracking its assignment
    (the consumer protocol hands partitions out incrementally)."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **CONF})
        self.assigned: set[int] = set()
        self.values: list[bytes] = []
        self.stale_commits = 0
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.assigned |= {p.partition for p in partitions}

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.assigned -= {p.partition for p in partitions}

    def poll(self) -> None:
        from confluent_kafka import KafkaError, KafkaException

        msg = self.consumer.poll(0.05)
        if msg is not None and msg.error() is None:
            self.values.append(msg.value())
            try:
                self.consumer.commit(message=msg, asynchronous=False)
            except KafkaException as exc:
                # A commit racing an epoch bump is refused (the record is redelivered:
                # at-least-once); any other failure fails the test.
                if exc.args[0].code() != KafkaError.STALE_MEMBER_EPOCH:
                    raise
                self.stale_commits += 1


def covered_once(members: list[Member], partitions: int) -> bool:
    seen = [p for m in members for p in m.assigned]
    return sorted(seen) == list(range(partitions))


def poll_all(members: list[Member]) -> Callable[[], None]:
    def step() -> None:
        for m in members:
            m.poll()
    return step


CRASHING_MEMBER = """
import sys
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2],
              "group.protocol": "consumer", "enable.auto.commit": False,
              "auto.offset.reset": "earliest"})
owned = set()
def on_assign(consumer, partitions):
    owned.update(p.partition for p in partitions)
    print("assigned", ",".join(str(p) for p in sorted(owned)), flush=True)
def on_revoke(consumer, partitions):
    owned.difference_update(p.partition for p in partitions)
    print("assigned", ",".join(str(p) for p in sorted(owned)), flush=True)
c.subscribe([sys.argv[3]], on_assign=on_assign, on_revoke=on_revoke)
while True:
    m = c.poll(0.05)
    if m is not None and m.error() is None:
        # Reported before the commit: a kill in between must not hide a committed record.
        print("value", m.value().decode(), flush=True)
        try:
            c.commit(message=m, asynchronous=False)
        except Exception as exc:
            if "STALE_MEMBER_EPOCH" not in str(exc):
                raise
"""


def churn(bootstrap: str) -> dict[str, Any]:
    group, topic = "kip848", "kip848"
    a = Member(bootstrap, group, topic)
    b = Member(bootstrap, group, topic)
    crasher = subprocess.Popen([sys.executable, "-c", CRASHING_MEMBER, bootstrap, group, topic],
                               stdout=subprocess.PIPE, text=True)
    crashed_values: list[str] = []
    crashed: list[int] = []
    try:
        assert crasher.stdout is not None
        os.set_blocking(crasher.stdout.fileno(), False)

        def read_crasher() -> None:
            assert crasher.stdout is not None
            for line in crasher.stdout.readlines():
                kind, _, rest = line.strip().partition(" ")
                if kind == "assigned":
                    crashed[:] = [int(p) for p in rest.split(",") if p]
                elif kind == "value":
                    crashed_values.append(rest)

        def step3() -> None:
            a.poll()
            b.poll()
            read_crasher()

        def three_cover() -> bool:
            seen = sorted([*a.assigned, *b.assigned, *crashed])
            return seen == list(range(6)) and all(
                len(s) == 2 for s in (a.assigned, b.assigned, crashed))

        wait_for(three_cover, step3, "three members to share six partitions, two each")
        steps: dict[str, Any] = {"three": sorted(map(sorted, [a.assigned, b.assigned,
                                                              crashed]))}
        # One member leaves cleanly (epoch -1).
        a.consumer.close()

        def step2() -> None:
            b.poll()
            read_crasher()

        wait_for(lambda: sorted([*b.assigned, *crashed]) == list(range(6))
                 and len(crashed) == 3 and len(b.assigned) == 3, step2,
                 "the remaining members to take over after a leave")
        steps["after_leave"] = sorted(b.assigned)
        # One crashes: the broker's session timeout removes it.
        crasher.send_signal(signal.SIGKILL)
        crasher.wait()
        read_crasher()
        wait_for(lambda: b.assigned == set(range(6)), b.poll,
                 "the survivor to take over after the crash")
        # One joins.
        c = Member(bootstrap, group, topic)
        wait_for(lambda: covered_once([b, c], 6) and len(c.assigned) == 3, poll_all([b, c]),
                 "a new member to get its share")
        steps["after_join"] = sorted(map(sorted, [b.assigned, c.assigned]))
        return {"steps": steps, "members": [b, c], "a": a,
                "crashed_values": [v.encode() for v in crashed_values]}
    finally:
        if crasher.poll() is None:
            crasher.kill()
            crasher.wait()


async def test_librdkafka_kip848_churn_covers_every_partition_and_loses_nothing(
        broker, make_topic):
    make_topic("kip848", partitions=6)
    first = produce(broker, "kip848", 6, 5, "first")
    result = await in_thread(churn, broker.bootstrap)
    steps = result["steps"]
    assert [len(s) for s in steps["three"]] == [2, 2, 2]
    assert steps["after_leave"] and len(steps["after_leave"]) == 3
    assert [len(s) for s in steps["after_join"]] == [3, 3]
    b, c = result["members"]
    # More records after the churn: the two members consume them and everything before.
    second = produce(broker, "kip848", 6, 5, "second")

    def drain() -> set[bytes]:
        seen = {*result["a"].values, *b.values, *c.values, *result["crashed_values"]}
        wait_for(lambda: (first | second) <= {*seen, *b.values, *c.values},
                 poll_all([b, c]), "every record to be consumed")
        return {*seen, *b.values, *c.values}

    consumed = await in_thread(drain)
    assert (first | second) <= consumed
    group = broker.broker.groups.consumer.groups["kip848"]
    assert group.state == "Stable"
    assert len(group.members) == 2

    def admin_view() -> tuple[Any, Any]:
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        listed = admin.list_consumer_groups().result(timeout=20)
        described = admin.describe_consumer_groups(["kip848"])["kip848"].result(timeout=20)
        offsets = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions("kip848", [TopicPartition("kip848", p)
                                                     for p in range(6)])]
        )["kip848"].result(timeout=20)
        return listed, described, offsets

    owned = sorted(map(sorted, [b.assigned, c.assigned]))
    try:
        listed, described, offsets = await in_thread(admin_view)
    finally:
        await in_thread(b.consumer.close)
        await in_thread(c.consumer.close)
    mine = [g for g in listed.valid if g.group_id == "kip848"]
    assert len(mine) == 1
    assert mine[0].type.name == "CONSUMER"
    # librdkafka describes a consumer-type group with ConsumerGroupDescribe.
    assert described.type.name == "CONSUMER" and described.state.name == "STABLE"
    assert sorted(sorted(tp.partition for tp in m.assignment.topic_partitions)
                  for m in described.members) == owned
    # Every record of the second round was consumed and committed: offset 10 everywhere.
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == \
        [(p, 10) for p in range(6)]


KAFKA_LIB = Path(__file__).resolve().parents[2] / "compat" / "apache-kafka" / "lib"


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                    reason="Kafka's Java tools need a JDK, and Maven to fetch their jars")
async def test_java_consumer_with_the_consumer_protocol(broker, make_topic):
    subprocess.run(["bash", str(KAFKA_LIB.parent / "fetch.sh")], check=True)
    make_topic("jt", partitions=3)
    values = produce(broker, "jt", 3, 4, "java")
    with trio.fail_after(60):
        done = await trio.run_process(
            ["java", "-cp", f"{KAFKA_LIB}/*", "org.apache.kafka.tools.consumer.ConsoleConsumer",
             "--bootstrap-server", broker.bootstrap, "--topic", "jt", "--group", "jg",
             "--command-property", "group.protocol=consumer", "--from-beginning",
             "--max-messages", "12", "--timeout-ms", "30000"],
            capture_stdout=True, capture_stderr=True, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert set(out.split()) == {v.decode() for v in values}
    groups = broker.broker.groups
    # It joined (and left) through ConsumerGroupHeartbeat, not JoinGroup.
    group = groups.consumer.groups["jg"]
    assert group.group_epoch >= 2 and group.members == {}
    assert groups.coordinator.list_groups() == []
    committed = groups.coordinator.fetch_offsets("jg", [("jt", p) for p in range(3)])
    assert {tp: om.offset for tp, om in committed.items() if om is not None} == {
        ("jt", p): 4 for p in range(3)}
