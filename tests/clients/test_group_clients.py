"""Real consumer groups against the broker (classic protocol).

confluent-kafka (librdkafka), kafka-python and aiokafka consumers subscribe in groups, get
every partition exactly once through joins, leaves, a crash and new members, commit
offsets, and resume from them, also after a broker restart. Static membership and
cooperative-sticky rebalancing with librdkafka; admin clients list, describe and delete
groups and their offsets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

from broker.config import BrokerConfig
from broker.server import Broker
from protocol.records import build_batch
from tests.clients.conftest import in_asyncio, in_thread, produce, wait_for

TIMEOUT_S = 40


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {
        "listeners": "PLAINTEXT://127.0.0.1:0",
        "log.dirs": str(tmp_path / "data"),
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "500",
        "offsets.topic.num.partitions": "5",
    }


# ------------------------------------------------------------------------ confluent-kafka


class Member:
    """A librdkafka consumer polled from the test thread, tracking its assignment."""

    def __init__(self, bootstrap: str, group: str, topic: str, **extra: Any) -> None:
        from confluent_kafka import Consumer

        conf = {"bootstrap.servers": bootstrap, "group.id": group,
                "enable.auto.commit": False, "auto.offset.reset": "earliest",
                "session.timeout.ms": 1500, "heartbeat.interval.ms": 200,
                "topic.metadata.refresh.interval.ms": 1000}
        conf.update(extra)
        self.consumer = Consumer(conf)
        self.assigned: set[int] = set()
        self.values: list[bytes] = []
        self.revocations = 0
        self.incremental = conf.get("partition.assignment.strategy") == "cooperative-sticky"
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        if self.incremental:
            self.assigned |= {p.partition for p in partitions}
        else:
            self.assigned = {p.partition for p in partitions}

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.revocations += 1
        if self.incremental:
            self.assigned -= {p.partition for p in partitions}
        else:
            self.assigned = set()

    def poll(self) -> None:
        msg = self.consumer.poll(0.05)
        if msg is not None and msg.error() is None:
            self.values.append(msg.value())
            self.consumer.commit(message=msg, asynchronous=False)


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
              "enable.auto.commit": False, "auto.offset.reset": "earliest",
              "session.timeout.ms": 1500, "heartbeat.interval.ms": 200})
def on_assign(consumer, partitions):
    print("assigned", ",".join(str(p.partition) for p in partitions), flush=True)
c.subscribe([sys.argv[3]], on_assign=on_assign)
while True:
    m = c.poll(0.05)
    if m is not None and m.error() is None:
        c.commit(message=m, asynchronous=False)
        print("value", m.value().decode(), flush=True)
"""


def churn(bootstrap: str, crash_script: str) -> dict[str, Any]:
    group, topic = "churn", "churn"
    a = Member(bootstrap, group, topic)
    b = Member(bootstrap, group, topic)
    crasher = subprocess.Popen([sys.executable, "-c", crash_script, bootstrap, group, topic],
                               stdout=subprocess.PIPE, text=True)
    crashed_values: list[str] = []
    crashed_assignment: list[str] = []
    try:
        # The subprocess reports its assignment; wait until it has one and a, b cover the rest.
        os.set_blocking(crasher.stdout.fileno(), False)  # type: ignore[union-attr]

        def read_crasher() -> None:
            assert crasher.stdout is not None
            for line in crasher.stdout.readlines():
                kind, _, rest = line.strip().partition(" ")
                if kind == "assigned":
                    crashed_assignment[:] = [rest]
                elif kind == "value":
                    crashed_values.append(rest)

        def three_cover() -> bool:
            if not crashed_assignment or not crashed_assignment[0]:
                return False
            theirs = [int(p) for p in crashed_assignment[0].split(",")]
            seen = sorted([*a.assigned, *b.assigned, *theirs])
            return seen == list(range(6)) and bool(a.assigned) and bool(b.assigned)

        def step3() -> None:
            a.poll()
            b.poll()
            read_crasher()

        wait_for(three_cover, step3, "three members to share six partitions")

        def three_cover_two() -> bool:
            theirs = [int(p) for p in crashed_assignment[0].split(",") if p]
            return sorted([*b.assigned, *theirs]) == list(range(6)) and len(theirs) == 3
        steps = {"three": sorted(map(sorted, [a.assigned, b.assigned]))}

        # One member leaves cleanly.
        a.consumer.close()
        def step2() -> None:
            b.poll()
            read_crasher()

        wait_for(lambda: three_cover_two(), step2,
                 "the remaining members to take over after a leave")
        steps["after_leave"] = sorted(b.assigned)
        # One crashes: its session times out.
        crasher.send_signal(signal.SIGKILL)
        crasher.wait()
        read_crasher()
        wait_for(lambda: b.assigned == set(range(6)), b.poll,
                 "the survivor to take over after the crash")
        # One joins.
        c = Member(bootstrap, group, topic)
        wait_for(lambda: covered_once([b, c], 6) and bool(c.assigned), poll_all([b, c]),
                 "a new member to get its share")
        steps["after_join"] = sorted(map(sorted, [b.assigned, c.assigned]))
        return {"steps": steps, "members": [b, c], "a": a,
                "crashed_values": [v.encode() for v in crashed_values]}
    finally:
        if crasher.poll() is None:
            crasher.kill()
            crasher.wait()


async def test_confluent_group_churn_covers_every_partition_and_loses_nothing(broker):
    broker.broker.topics.create("churn", 6)
    first = produce(broker, "churn", 6, 5, "first")
    result = await in_thread(churn, broker.bootstrap, CRASHING_MEMBER)
    b, c = result["members"]
    second = produce(broker, "churn", 6, 5, "second")

    def drain() -> list[bytes]:
        wait_for(lambda: second <= set(b.values) | set(c.values), poll_all([b, c]),
                 "the records produced after the churn")
        for m in (b, c):
            m.consumer.close()
        return []

    await in_thread(drain)
    consumed = set(result["a"].values) | set(b.values) | set(c.values) \
        | set(result["crashed_values"])
    assert first | second <= consumed
    # Every partition's committed offset is its log end: nothing left behind.
    group = broker.broker.groups.coordinator.groups["churn"]
    for p in range(6):
        assert group.offsets[("churn", p)].offset == broker.broker.topics.log("churn", p) \
            .log_end_offset
    assert len(result["steps"]["after_join"][0]) + len(result["steps"]["after_join"][1]) == 6


def static_restart(bootstrap: str, coordinator: Any) -> dict[str, Any]:
    group, topic = "static", "static"
    other = Member(bootstrap, group, topic)
    static = Member(bootstrap, group, topic, **{"group.instance.id": "instance-1",
                                                "session.timeout.ms": 6000})
    wait_for(lambda: covered_once([other, static], 4) and bool(static.assigned)
             and bool(other.assigned), poll_all([other, static]), "two members")
    before = (coordinator.groups[group].generation_id, sorted(static.assigned),
              sorted(other.assigned))
    revocations = other.revocations
    # A static member's close does not leave the group (KIP-345); its restart takes its
    # old identity back.
    static.consumer.close()
    again = Member(bootstrap, group, topic, **{"group.instance.id": "instance-1",
                                               "session.timeout.ms": 6000})
    wait_for(lambda: bool(again.assigned), poll_all([other, again]),
             "the restarted static member's assignment")
    for _ in range(10):
        poll_all([other, again])()
    after = (coordinator.groups[group].generation_id, sorted(again.assigned),
             sorted(other.assigned))
    other_revoked = other.revocations - revocations
    again.consumer.close()
    other.consumer.close()
    return {"before": before, "after": after, "other_revoked": other_revoked}


async def test_confluent_static_member_restarts_without_rebalance(broker):
    broker.broker.topics.create("static", 4)
    result = await in_thread(static_restart, broker.bootstrap, broker.broker.groups.coordinator)
    assert result["after"] == result["before"]
    assert result["other_revoked"] == 0


def cooperative(bootstrap: str, coordinator: Any) -> dict[str, Any]:
    group, topic = "coop", "coop"
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = Member(bootstrap, group, topic, **conf)
    wait_for(lambda: a.assigned == set(range(6)), a.poll, "the first member")
    protocol = coordinator.groups[group].protocol_name
    b = Member(bootstrap, group, topic, **conf)
    wait_for(lambda: covered_once([a, b], 6) and len(b.assigned) == 3, poll_all([a, b]),
             "the incremental rebalance")
    result = {"kept": sorted(a.assigned), "b": sorted(b.assigned),
              "a_revocations": a.revocations, "protocol": protocol}
    a.consumer.close()
    b.consumer.close()
    return result


async def test_confluent_cooperative_sticky(broker):
    broker.broker.topics.create("coop", 6)
    result = await in_thread(cooperative, broker.bootstrap, broker.broker.groups.coordinator)
    assert len(result["kept"]) == 3
    assert sorted(result["kept"] + result["b"]) == list(range(6))
    # Incremental: a gave up only the partitions that moved (one partial revocation).
    assert result["a_revocations"] == 1
    assert result["protocol"] == "cooperative-sticky"


# -------------------------------------------------------------------- kafka-python, mixed


def kafka_python_member(topic: str, bootstrap: str, **config: Any) -> Any:
    """A kafka-python consumer subscribed to `topic`, holding the topic's metadata before it
    first joins its group.

    kafka-python 3.0.12 runs a rebalance as a task on its I/O thread, and `poll()` picks
    the result up. Two flaws bite when that task completes while `poll()` is not waiting
    for it (the caller is busy elsewhere, or `poll()`'s timeout ran out):
    - if the rejoin was triggered by new metadata, the leader's own assignment marks it as
      no longer needed, so the result is never applied: the member stops heartbeating and
      the coordinator expires it after `session_timeout_ms`;
    - otherwise the finished task is thrown away and the member joins again; a leader
      rejoining forces a rebalance (as in Kafka), so a leader that keeps missing its result
      keeps the group rebalancing.
    Knowing the topic's partitions before the first join avoids the first; tests that put
    kafka-python beside other clients let a librdkafka member join first and lead, so that
    a repeated join from kafka-python (a follower) is answered without a rebalance.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, **config)
    assert topic in consumer.topics()
    return consumer


def kafka_python_group(bootstrap: str, expected: int) -> dict[str, Any]:
    from kafka import TopicPartition

    def consumer() -> Any:
        return kafka_python_member("kp", bootstrap, group_id="kp",
                                   enable_auto_commit=False, auto_offset_reset="earliest",
                                   request_timeout_ms=30000, session_timeout_ms=6000,
                                   heartbeat_interval_ms=500)

    first = consumer()
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < expected and time.monotonic() < deadline:
        for records in first.poll(timeout_ms=200).values():
            got.extend(r.value for r in records)
    first.commit()
    committed = {p: first.committed(TopicPartition("kp", p)) for p in range(2)}
    first.close()
    return {"got": got, "committed": committed}


def kafka_python_resume(bootstrap: str) -> list[bytes]:
    consumer = kafka_python_member("kp", bootstrap, group_id="kp",
                                   enable_auto_commit=False, auto_offset_reset="earliest",
                                   request_timeout_ms=30000, session_timeout_ms=6000)
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < 2 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(r.value for r in records)
    consumer.close()
    return got


async def test_kafka_python_group_commits_and_resumes(broker):
    broker.broker.topics.create("kp", 2)
    values = produce(broker, "kp", 2, 3)
    result = await in_thread(kafka_python_group, broker.bootstrap, 6)
    assert sorted(result["got"]) == sorted(values)
    assert result["committed"] == {0: 3, 1: 3}
    later = produce(broker, "kp", 2, 1, "later")
    assert sorted(await in_thread(kafka_python_resume, broker.bootstrap)) == sorted(later)


def mixed_group(bootstrap: str) -> dict[str, Any]:
    ck = Member(bootstrap, "mixed", "mixed", **{"session.timeout.ms": 6000})
    # librdkafka first, so that it leads the group (see kafka_python_member). What it reads
    # meanwhile is neither kept nor committed: the records are all read again once shared.
    wait_for(lambda: ck.assigned == set(range(4)), lambda: ck.consumer.poll(0.05),
             "librdkafka to take the topic")
    kp = kafka_python_member("mixed", bootstrap, group_id="mixed",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             session_timeout_ms=6000, heartbeat_interval_ms=300,
                             request_timeout_ms=30000)
    kp_values: list[bytes] = []

    def step() -> None:
        for records in kp.poll(timeout_ms=50).values():
            kp_values.extend(r.value for r in records)
        ck.poll()

    def shared() -> bool:
        kp_parts = {tp.partition for tp in kp.assignment()}
        return (bool(kp_parts) and bool(ck.assigned) and not kp_parts & ck.assigned
                and kp_parts | ck.assigned == set(range(4)))

    wait_for(shared, step, "kafka-python and librdkafka to share the topic")
    wait_for(lambda: len(kp_values) + len(ck.values) >= 8, step, "every record")
    result = {"kp": {tp.partition for tp in kp.assignment()}, "ck": set(ck.assigned),
              "values": kp_values + ck.values}
    kp.close()
    ck.consumer.close()
    return result


async def test_kafka_python_and_confluent_in_one_group(broker):
    broker.broker.topics.create("mixed", 4)
    values = produce(broker, "mixed", 4, 2)
    result = await in_thread(mixed_group, broker.bootstrap)
    assert result["kp"] | result["ck"] == {0, 1, 2, 3}
    assert not result["kp"] & result["ck"]
    assert values <= set(result["values"])


# ------------------------------------------------------------------------------- aiokafka


async def aiokafka_group(bootstrap: str) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer("aio", bootstrap_servers=bootstrap, group_id="aio",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=6000, heartbeat_interval_ms=500)
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < 6 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                got.extend(r.value for r in records)
        await consumer.commit()
        committed = {p: await consumer.committed(TopicPartition("aio", p)) for p in range(3)}
        return {"got": got, "committed": committed,
                "assignment": {tp.partition for tp in consumer.assignment()}}
    finally:
        await consumer.stop()


async def test_aiokafka_group(broker):
    broker.broker.topics.create("aio", 3)
    values = produce(broker, "aio", 3, 2)
    result = await in_asyncio(aiokafka_group, broker.bootstrap)
    assert sorted(result["got"]) == sorted(values)
    assert result["assignment"] == {0, 1, 2}
    assert result["committed"] == {0: 2, 1: 2, 2: 2}
    # aiokafka left the group on stop: it is Empty, its offsets kept.
    assert broker.broker.groups.coordinator.groups["aio"].state.value == "Empty"


# ----------------------------------------------------------------------- broker restart


def commit_some(bootstrap: str) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "restart",
                         "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition("restart", 0, 4), TopicPartition("restart", 1, 1)],
                    asynchronous=False)
    consumer.close()


def resume(bootstrap: str) -> list[bytes]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "restart",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000})
    consumer.subscribe(["restart"])
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < 5 and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    return got


async def test_commit_survives_a_broker_restart(broker_config):
    config = dict(broker_config)
    first = Broker(BrokerConfig(config))
    async with trio.open_nursery() as nursery:
        ports = await nursery.start(first.serve)
        first.topics.create("restart", 2)
        for p in range(2):
            first.topics.log("restart", p).append(
                build_batch([(None, f"{p}-{i}".encode()) for i in range(5)]))
        await in_thread(commit_some, f"127.0.0.1:{ports[0]}")
        nursery.cancel_scope.cancel()
    second = Broker(BrokerConfig(config))
    async with trio.open_nursery() as nursery:
        ports = await nursery.start(second.serve)
        offsets = second.groups.coordinator.fetch_offsets("restart", None)
        assert {tp: om.offset for tp, om in offsets.items() if om} == {
            ("restart", 0): 4, ("restart", 1): 1}
        got = await in_thread(resume, f"127.0.0.1:{ports[0]}")
        nursery.cancel_scope.cancel()
    # Exactly from the committed offsets: nothing before them, nothing missing.
    assert sorted(got) == [b"0-4", b"1-1", b"1-2", b"1-3", b"1-4"]


# -------------------------------------------------------------------------- admin clients


def confluent_admin(bootstrap: str) -> dict[str, Any]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    out: dict[str, Any] = {}
    listed = admin.list_consumer_groups(request_timeout=20).result(timeout=30)
    out["listed"] = sorted((g.group_id, g.state.name) for g in listed.valid)
    described = admin.describe_consumer_groups(["adm"], request_timeout=20)["adm"] \
        .result(timeout=30)
    out["described"] = (described.group_id, described.state.name, len(described.members))
    offsets = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("adm")])["adm"].result(timeout=30)
    out["offsets"] = sorted((tp.topic, tp.partition, tp.offset)
                            for tp in offsets.topic_partitions)
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        "adm", [TopicPartition("adm", 0, 7)])])["adm"].result(timeout=30)
    offsets = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("adm", [TopicPartition("adm", 0)])])["adm"] \
        .result(timeout=30)
    out["altered"] = [(tp.partition, tp.offset) for tp in offsets.topic_partitions]
    admin.delete_consumer_groups(["adm"], request_timeout=20)["adm"].result(timeout=30)
    out["after_delete"] = sorted(
        g.group_id for g in admin.list_consumer_groups(request_timeout=20)
        .result(timeout=30).valid)
    return out


async def test_confluent_admin_lists_describes_alters_and_deletes_groups(broker):
    broker.broker.topics.create("adm", 2)
    coordinator = broker.broker.groups.coordinator
    from broker.groups.coordinator import OffsetAndMetadata

    broker.broker.groups.ensure_offsets_topic()
    coordinator.commit_offsets(group_id="adm", generation_id=-1, member_id="",
                               group_instance_id=None, api_version=8,
                               offsets={("adm", 0): OffsetAndMetadata(3),
                                        ("adm", 1): OffsetAndMetadata(5)})
    result = await in_thread(confluent_admin, broker.bootstrap)
    assert ("adm", "EMPTY") in result["listed"]
    assert result["described"] == ("adm", "EMPTY", 0)
    assert result["offsets"] == [("adm", 0, 3), ("adm", 1, 5)]
    assert result["altered"] == [(0, 7)]
    assert "adm" not in result["after_delete"]


def kafka_python_admin(bootstrap: str) -> dict[str, Any]:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.structs import OffsetAndMetadata

    # A session long enough that a loaded machine starving the heartbeat thread does not
    # expire the member before the group is listed as Stable.
    consumer = kafka_python_member("kpa", bootstrap, group_id="kpa",
                                   enable_auto_commit=False, auto_offset_reset="earliest",
                                   session_timeout_ms=30000, heartbeat_interval_ms=1000)
    deadline = time.monotonic() + TIMEOUT_S
    got = 0
    while got < 2 and time.monotonic() < deadline:
        got += sum(len(r) for r in consumer.poll(timeout_ms=200).values())
    consumer.commit()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    tp = TopicPartition("kpa", 0)
    out: dict[str, Any] = {}
    out["listed"] = admin.list_groups()
    out["listed_stable"] = admin.list_groups(states_filter=["Stable"])
    out["listed_empty"] = admin.list_groups(states_filter=["Empty"])
    out["described"] = admin.describe_groups(["kpa"])["kpa"]
    out["offsets"] = {t.partition: om.offset
                      for t, om in admin.list_group_offsets({"kpa": None})["kpa"].items()}
    # A member subscribes to the topic: its offsets cannot be deleted.
    out["delete_subscribed"] = {t.partition: e.__name__ for t, e in
                                admin.delete_group_offsets("kpa", [tp]).items()}
    consumer.close()
    out["altered"] = {t.partition: e.__name__ for t, e in admin.alter_group_offsets(
        "kpa", {tp: OffsetAndMetadata(1, "", -1)}).items()}
    out["offsets_after_alter"] = {t.partition: om.offset for t, om in
                                  admin.list_group_offsets({"kpa": [tp]})["kpa"].items()}
    out["deleted"] = admin.delete_groups(["kpa"])
    out["after"] = admin.list_groups()
    admin.close()
    return out


def _group_ids(listed: list[Any]) -> set[str]:
    return {g["group_id"] if isinstance(g, dict) else g[0] for g in listed}


async def test_kafka_python_admin_lists_describes_alters_and_deletes_groups(broker):
    broker.broker.topics.create("kpa", 1)
    produce(broker, "kpa", 1, 2)
    result = await in_thread(kafka_python_admin, broker.bootstrap)
    assert "kpa" in _group_ids(result["listed"])
    assert "kpa" in _group_ids(result["listed_stable"])
    assert "kpa" not in _group_ids(result["listed_empty"])
    described = result["described"]
    assert (described["group_state"], described["protocol_type"],
            described["protocol_data"]) == ("Stable", "consumer", "range")
    assert len(described["members"]) == 1
    assert result["offsets"] == {0: 2}
    assert result["delete_subscribed"] == {0: "GroupSubscribedToTopicError"}
    assert result["altered"] == {0: "NoError"}
    assert result["offsets_after_alter"] == {0: 1}
    assert result["deleted"] == {"kpa": "OK"}
    assert "kpa" not in _group_ids(result["after"])


# ------------------------------------------------------- three client libraries, one group


def three_clients_group(bootstrap: str) -> dict[str, Any]:
    """librdkafka and kafka-python polled here, aiokafka in its own thread and loop."""
    import asyncio
    import threading

    from aiokafka import AIOKafkaConsumer

    stop = threading.Event()
    aio: dict[str, Any] = {"parts": set(), "values": [], "error": None}

    async def run_aiokafka() -> None:
        consumer = AIOKafkaConsumer("trio3", bootstrap_servers=bootstrap, group_id="trio3",
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    session_timeout_ms=6000, heartbeat_interval_ms=300)
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=50)
                for records in batches.values():
                    aio["values"].extend(r.value for r in records)
                aio["parts"] = {tp.partition for tp in consumer.assignment()}
        finally:
            await consumer.stop()

    def aiokafka_thread() -> None:
        try:
            asyncio.run(run_aiokafka())
        except Exception as exc:  # reported to the test below
            aio["error"] = exc

    ck = Member(bootstrap, "trio3", "trio3", **{"session.timeout.ms": 6000})
    # librdkafka first, so that it leads the group (see kafka_python_member). What it reads
    # meanwhile is neither kept nor committed: the records are all read again once shared.
    wait_for(lambda: ck.assigned == set(range(6)), lambda: ck.consumer.poll(0.05),
             "librdkafka to take the topic")
    thread = threading.Thread(target=aiokafka_thread, daemon=True)
    thread.start()
    kp = kafka_python_member("trio3", bootstrap, group_id="trio3",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             session_timeout_ms=6000, heartbeat_interval_ms=300,
                             request_timeout_ms=30000)
    kp_values: list[bytes] = []

    def step() -> None:
        for records in kp.poll(timeout_ms=50).values():
            kp_values.extend(r.value for r in records)
        ck.poll()

    def shared() -> bool:
        kp_parts = {tp.partition for tp in kp.assignment()}
        parts = [kp_parts, set(ck.assigned), set(aio["parts"])]
        return (all(parts) and sum(len(p) for p in parts) == 6
                and set().union(*parts) == set(range(6)))

    try:
        wait_for(shared, step, "three client libraries to share the topic")
        wait_for(lambda: len(kp_values) + len(ck.values) + len(aio["values"]) >= 12, step,
                 "every record")
        return {"kp": {tp.partition for tp in kp.assignment()}, "ck": set(ck.assigned),
                "aio": set(aio["parts"]), "values": kp_values + ck.values + aio["values"],
                "error": aio["error"]}
    finally:
        stop.set()
        thread.join(30)
        kp.close()
        ck.consumer.close()


async def test_kafka_python_confluent_and_aiokafka_in_one_group(broker):
    broker.broker.topics.create("trio3", 6)
    values = produce(broker, "trio3", 6, 2)
    result = await in_thread(three_clients_group, broker.bootstrap)
    assert result["error"] is None
    assert result["kp"] and result["ck"] and result["aio"]
    assert result["kp"] | result["ck"] | result["aio"] == set(range(6))
    assert not (result["kp"] & result["ck"] or result["kp"] & result["aio"]
                or result["ck"] & result["aio"])
    assert values <= set(result["values"])
